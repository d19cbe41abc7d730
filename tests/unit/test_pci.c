/* PCI core without KVM: config mechanism #1 and ECAM, BAR sizing and
 * moves (doorbell callbacks, window limits), the capability list, MSI-X
 * masking/pending through a fake msi_sink, INTx through a fake line. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "devices/pci.h"
#include "devices/pci_testdev.h"
#include "migration/state.h"

struct fake_sink {
	struct msi_sink s;
	int next, fired[8], sets;
	uint64_t addr[8];
	uint32_t data[8];
};

static int f_alloc(struct msi_sink *s) { return ((struct fake_sink *)s)->next++; }
static int f_set(struct msi_sink *s, int h, uint64_t a, uint32_t d)
{
	struct fake_sink *f = (struct fake_sink *)s;
	f->addr[h] = a;
	f->data[h] = d;
	f->sets++;
	return 0;
}
static void f_fire(struct msi_sink *s, int h) { ((struct fake_sink *)s)->fired[h]++; }

static uint64_t bar_reads;
static uint64_t dev_read(void *o, uint64_t off, unsigned size) { bar_reads++; return 0x1000 + off; }
static void dev_write(void *o, uint64_t off, unsigned size, uint64_t v) {}
static const struct bus_ops dev_ops = { dev_read, dev_write };

static int moves;
static uint64_t moved_to;
static void on_move(struct pci_dev *d, int bar, uint64_t old, uint64_t now) { moves++; moved_to = now; }

static int line_level;
static void line_set(struct irq_line *l, int level) { line_level = level; }

#define W32 0xc0000000ULL
struct rig {
	struct pci_host h;
	struct pci_dev d;
	struct fake_sink sink;
	struct irq_line line;
};

static void rig_init(struct rig *r)
{
	memset(r, 0, sizeof(*r));
	r->sink.s = (struct msi_sink){ f_alloc, f_set, f_fire, NULL };
	r->line = (struct irq_line){ .set_level = line_set, .gsi = 17 };
	pci_host_init(&r->h, W32, 0xe0000000ULL, 0x8000000000ULL, 0x9000000000ULL);
	pci_dev_init(&r->d, "t", 0x1af4, 0x1042, 0x018000, 1, 0x1af4, 0x1100);
	r->d.bar_moved = on_move;
	assert_int_equal(pci_add_bar(&r->d, 0, 0x4000, false, &dev_ops, r), 0);
	assert_int_equal(pci_add_msix(&r->d, 2, 0, 0x3000, 0x3800, &r->sink.s), 0);
	pci_set_intx_line(&r->d, &r->line);
	moves = 0;
	assert_int_equal(pci_host_add(&r->h, &r->d), 0);
}

static void rig_destroy(struct rig *r)
{
	pci_dev_destroy(&r->d);
	pci_host_destroy(&r->h);
}

static void test_config_access(void **state)
{
	struct rig r;
	rig_init(&r);
	/* 0xcf8: enable | slot 1 | reg 0 */
	pci_cf8_ops.write(&r.h, 0, 4, 0x80000800);
	assert_int_equal(pci_cf8_ops.read(&r.h, 4, 4), 0x10421af4);
	assert_int_equal(pci_cf8_ops.read(&r.h, 6, 2), 0x1042);
	pci_cf8_ops.write(&r.h, 0, 4, 0x00000800);     /* enable bit clear */
	assert_int_equal(pci_cf8_ops.read(&r.h, 4, 4), 0xffffffff);
	/* ECAM: host bridge at slot 0, device at slot 1, nothing at 2, fn 1 absent */
	assert_int_equal(pci_ecam_ops.read(&r.h, 0, 4), 0x00081b36);
	assert_int_equal(pci_ecam_ops.read(&r.h, 1 << 15, 2), 0x1af4);
	assert_int_equal(pci_ecam_ops.read(&r.h, 2 << 15, 4), 0xffffffff);
	assert_int_equal(pci_ecam_ops.read(&r.h, (1 << 15) | (1 << 12), 4), 0xffffffff);
	assert_int_equal(pci_ecam_ops.read(&r.h, (1 << 15) | 0x100, 4), 0);   /* no ext caps */
	assert_int_equal(pci_ecam_ops.read(&r.h, (1 << 15) | 3, 2), 0xffff);  /* crosses a dword */
	/* read-only IDs, writable interrupt line */
	pci_ecam_ops.write(&r.h, 1 << 15, 4, 0);
	assert_int_equal(pci_ecam_ops.read(&r.h, 1 << 15, 4), 0x10421af4);
	assert_int_equal(pci_cfg_read(&r.d, PCI_INTERRUPT_LINE, 1), 17);
	assert_int_equal(pci_cfg_read(&r.d, PCI_INTERRUPT_PIN, 1), 1);
	rig_destroy(&r);
}

static void test_bar_sizing_and_moves(void **state)
{
	struct rig r;
	rig_init(&r);
	assert_int_equal(moves, 1);                      /* mapped at plug time */
	assert_int_equal(moved_to, W32);
	assert_true(pci_cfg_read(&r.d, PCI_COMMAND, 2) & PCI_COMMAND_MEMORY);
	pci_cfg_write(&r.d, PCI_COMMAND, 2, 0);          /* decode off: unmapped */
	assert_int_equal(moved_to, 0);
	pci_cfg_write(&r.d, PCI_BASE_ADDRESS_0, 4, 0xffffffff);
	assert_int_equal(pci_cfg_read(&r.d, PCI_BASE_ADDRESS_0, 4), 0xffffc000);
	pci_cfg_write(&r.d, PCI_BASE_ADDRESS_0, 4, 0xc0100000);
	pci_cfg_write(&r.d, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	assert_int_equal(moved_to, 0xc0100000);
	bar_reads = 0;
	assert_int_equal(pci_window_read(&r.h, 0xc0100010, 4), 0x1010);
	assert_int_equal(bar_reads, 1);
	assert_int_equal(pci_window_read(&r.h, W32 + 0x10, 4), 0xffffffff);   /* old place: nothing */
	/* Over RAM (outside the windows): not decoded. */
	pci_cfg_write(&r.d, PCI_BASE_ADDRESS_0, 4, 0x00100000);
	assert_int_equal(moved_to, 0);
	pci_cfg_write(&r.d, PCI_BASE_ADDRESS_0, 4, 0xdfffc000);    /* last slot of the window */
	assert_int_equal(moved_to, 0xdfffc000);
	rig_destroy(&r);
}

/* I/O BARs: type bit, 16-bit sizing, placed in the I/O window at plug
 * time, decoded only with PCI_COMMAND_IO and only inside the window,
 * dispatched by port and never by a memory address. */
static void test_io_bar(void **state)
{
	struct pci_host h;
	struct pci_dev d;
	pci_host_init(&h, W32, 0xe0000000ULL, 0x8000000000ULL, 0x9000000000ULL);
	pci_dev_init(&d, "io", 0x1b36, 0x0005, 0xff0000, 0, 0x1b36, 0);
	assert_int_equal(pci_add_io_bar(&d, 1, 3, &dev_ops, NULL), -EINVAL);     /* not a power of two */
	assert_int_equal(pci_add_io_bar(&d, 1, 512, &dev_ops, NULL), -EINVAL);   /* over 256 */
	assert_int_equal(pci_add_io_bar(&d, 1, 256, &dev_ops, NULL), 0);
	assert_int_equal(pci_add_io_bar(&d, 1, 256, &dev_ops, NULL), -EINVAL);   /* taken */
	assert_int_equal(pci_host_add(&h, &d), 0);
	assert_int_equal(pci_cfg_read(&d, PCI_BASE_ADDRESS_1, 4), PCI_IO_WINDOW | PCI_BASE_ADDRESS_SPACE_IO);
	assert_int_equal(pci_cfg_read(&d, PCI_COMMAND, 2) & PCI_COMMAND_IO, PCI_COMMAND_IO);
	bar_reads = 0;
	assert_int_equal(pci_io_read(&h, PCI_IO_WINDOW + 4, 2), 0x1004);
	assert_int_equal(pci_window_read(&h, PCI_IO_WINDOW + 4, 2), 0xffff);      /* not memory */
	assert_int_equal(pci_io_read(&h, PCI_IO_WINDOW + 256, 1), 0xff);         /* past the BAR */
	assert_int_equal(bar_reads, 1);
	/* Sizing: all-ones reads back the size mask in 16 bits, type bit kept. */
	pci_cfg_write(&d, PCI_BASE_ADDRESS_1, 4, 0xffffffff);
	assert_int_equal(pci_cfg_read(&d, PCI_BASE_ADDRESS_1, 4), 0xff01);
	/* Moved, with and without I/O decoding; outside the window: off. */
	pci_cfg_write(&d, PCI_BASE_ADDRESS_1, 4, 0xd000);
	assert_int_equal(pci_io_read(&h, 0xd010, 2), 0x1010);
	pci_cfg_write(&d, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	assert_int_equal(pci_io_read(&h, 0xd010, 2), 0xffff);
	pci_cfg_write(&d, PCI_COMMAND, 2, PCI_COMMAND_IO);
	pci_cfg_write(&d, PCI_BASE_ADDRESS_1, 4, 0x0300);
	assert_int_equal(pci_io_read(&h, 0x0310, 1), 0xff);
	pci_dev_destroy(&d);
	pci_host_destroy(&h);
}

/* pci-testdev as kvm-unit-tests drives it, through both BARs. */
static void test_pci_testdev(void **state)
{
	struct pci_host h;
	pci_host_init(&h, W32, 0xe0000000ULL, 0x8000000000ULL, 0x9000000000ULL);
	struct pci_testdev *t = pci_testdev_create();
	assert_non_null(t);
	assert_int_equal(pci_host_add(&h, &t->pci), 0);
	assert_int_equal(pci_cfg_read(&t->pci, PCI_VENDOR_ID, 4), 0x00051b36);
	uint64_t mem = pci_cfg_read(&t->pci, PCI_BASE_ADDRESS_0, 4) & ~0xfull;
	uint64_t io = pci_cfg_read(&t->pci, PCI_BASE_ADDRESS_1, 4) & ~3ull;
	for (int b = 0; b < 2; b++) {
		uint64_t base = b ? io : mem;
		uint64_t (*rd)(struct pci_host *, uint64_t, unsigned) = b ? pci_io_read : pci_window_read;
		void (*wr)(struct pci_host *, uint64_t, unsigned, uint64_t) = b ? pci_io_write : pci_window_write;
		assert_int_equal(rd(&h, base + PCI_TESTDEV_WIDTH, 1), 0);          /* none selected */
		for (unsigned n = 0; n < PCI_TESTDEV_TESTS; n++) {
			wr(&h, base + PCI_TESTDEV_TEST, 1, n);
			assert_int_equal(rd(&h, base + PCI_TESTDEV_COUNT, 4), 0);
			assert_int_equal(rd(&h, base + PCI_TESTDEV_WIDTH, 1), 4);
			uint32_t off = (uint32_t)rd(&h, base + PCI_TESTDEV_OFFSET, 4);
			uint32_t data = (uint32_t)rd(&h, base + PCI_TESTDEV_DATA, 4);
			for (int i = 0; i < 16; i++)
				wr(&h, base + off, 4, data);
			wr(&h, base + off, 1, data);                             /* wrong width */
			if (n == 2)
				wr(&h, base + off, 4, data ^ 1);                     /* no match */
			assert_int_equal(rd(&h, base + PCI_TESTDEV_COUNT, 4), 16);
			char name[32];
			for (unsigned i = 0; i < sizeof(name); i++)
				name[i] = (char)rd(&h, base + PCI_TESTDEV_NAME + i, 1);
			assert_non_null(strstr(name, b ? "portio-" : "mmio-"));
		}
		wr(&h, base + PCI_TESTDEV_TEST, 1, PCI_TESTDEV_TESTS);               /* past the last */
		assert_int_not_equal(rd(&h, base + PCI_TESTDEV_WIDTH, 1), 4);
	}
	pci_testdev_destroy(t);
	pci_host_destroy(&h);
}

static void test_capability_list(void **state)
{
	struct rig r;
	rig_init(&r);
	uint8_t body[8] = { 0 };
	uint8_t second = pci_add_cap(&r.d, PCI_CAP_ID_VNDR, body, sizeof(body));
	assert_true(pci_cfg_read(&r.d, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	uint8_t first = (uint8_t)pci_cfg_read(&r.d, PCI_CAPABILITY_LIST, 1);
	assert_int_equal(pci_cfg_read(&r.d, first, 1), PCI_CAP_ID_MSIX);
	assert_int_equal(pci_cfg_read(&r.d, first + 1, 1), second);
	assert_int_equal(pci_cfg_read(&r.d, second, 1), PCI_CAP_ID_VNDR);
	assert_int_equal(pci_cfg_read(&r.d, second + 1, 1), 0);
	uint8_t big[200] = { 0 };
	assert_int_equal(pci_add_cap(&r.d, PCI_CAP_ID_VNDR, big, sizeof(big)), 0);   /* no room */
	rig_destroy(&r);
}

static void test_msix(void **state)
{
	struct rig r;
	rig_init(&r);
	uint8_t cap = r.d.msix.cap;
	/* Disabled: nothing goes out, nothing pending. */
	pci_msix_notify(&r.d, 1);
	assert_int_equal(r.sink.fired[1], 0);
	/* Program entry 1 (still masked), enable the function. */
	pci_window_write(&r.h, W32 + 0x3010, 4, 0xfee00000);
	pci_window_write(&r.h, W32 + 0x3014, 4, 0);
	pci_window_write(&r.h, W32 + 0x3018, 4, 0x41);
	pci_cfg_write(&r.d, cap + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE);
	assert_true(pci_msix_enabled(&r.d));
	pci_msix_notify(&r.d, 1);                        /* masked: pending */
	assert_int_equal(r.sink.fired[1], 0);
	assert_int_equal(pci_window_read(&r.h, W32 + 0x3800, 8), 2);
	pci_window_write(&r.h, W32 + 0x301c, 4, 0);      /* unmask: delivered */
	assert_int_equal(r.sink.fired[1], 1);
	assert_int_equal(r.sink.addr[1], 0xfee00000);
	assert_int_equal(r.sink.data[1], 0x41);
	assert_int_equal(pci_window_read(&r.h, W32 + 0x3800, 8), 0);
	pci_msix_notify(&r.d, 1);
	assert_int_equal(r.sink.fired[1], 2);
	assert_int_equal(r.sink.sets, 1);                /* route pushed once */
	/* Function mask, then unmask: pending fires once. */
	pci_cfg_write(&r.d, cap + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
	pci_msix_notify(&r.d, 1);
	pci_msix_notify(&r.d, 1);
	assert_int_equal(r.sink.fired[1], 2);
	pci_cfg_write(&r.d, cap + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE);
	assert_int_equal(r.sink.fired[1], 3);
	pci_msix_notify(&r.d, 7);                        /* out of range: ignored */
	/* Table size field is read-only. */
	pci_cfg_write(&r.d, cap + PCI_MSIX_FLAGS, 2, 0x07ff | PCI_MSIX_FLAGS_ENABLE);
	assert_int_equal(pci_cfg_read(&r.d, cap + PCI_MSIX_FLAGS, 2) & PCI_MSIX_FLAGS_QSIZE, 1);
	rig_destroy(&r);
}

static int state_put(struct pci_dev *d, struct state_buf *b)
{
	struct state_writer w;
	memset(b, 0, sizeof(*b));
	int r = state_writer_init(&w, state_buf_sink(b));
	if (!r)
		r = state_begin_section(&w, "pcidev", 0, 1);
	if (!r)
		pci_dev_save(d, &w, 1);
	if (!r)
		r = state_end_section(&w);
	if (!r)
		r = state_writer_finish(&w);
	state_writer_destroy(&w);
	return r;
}

static int pcidev_load(void *opaque, struct state_reader *r)
{
	return pci_dev_load(opaque, r, 1);
}

static int state_get(struct pci_dev *d, struct state_buf *b, char *err, size_t n)
{
	struct state_loader l = { "pcidev", 1, pcidev_load, d };
	b->pos = 0;
	return state_load(state_buf_source(b), &l, 1, err, n);
}

/* Save a programmed function, load into a fresh one: BAR moved (the
 * doorbell callback runs), MSI-X enabled with its routes pushed at once,
 * pending bits kept; a BAR outside the windows is not decoded; a stream
 * of another device is refused. */
static void test_state(void **state)
{
	struct rig a, b;
	struct state_buf buf;
	char err[256] = "";
	rig_init(&a);
	uint8_t cap = a.d.msix.cap;
	pci_window_write(&a.h, W32 + 0x3010, 4, 0xfee00000);
	pci_window_write(&a.h, W32 + 0x3018, 4, 0x41);
	pci_cfg_write(&a.d, cap + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE);
	pci_msix_notify(&a.d, 1);                        /* masked: pending */
	pci_cfg_write(&a.d, PCI_BASE_ADDRESS_0, 4, 0xc0100000);
	assert_int_equal(state_put(&a.d, &buf), 0);

	rig_init(&b);
	moves = 0;
	assert_int_equal(state_get(&b.d, &buf, err, sizeof(err)), 0);
	assert_int_equal(moves, 1);
	assert_int_equal(moved_to, 0xc0100000);
	assert_int_equal(b.d.bar[0].mapped, 0xc0100000);
	assert_true(pci_msix_enabled(&b.d));
	assert_int_equal(b.sink.sets, 1);                /* entry 1's route, now */
	assert_int_equal(b.sink.addr[1], 0xfee00000);
	assert_int_equal(b.sink.data[1], 0x41);
	assert_int_equal(pci_window_read(&b.h, 0xc0100000 + 0x3800, 8), 2);
	pci_window_write(&b.h, 0xc0100000 + 0x301c, 4, 0);   /* unmask: the pending one */
	assert_int_equal(b.sink.fired[1], 1);
	state_buf_free(&buf);

	/* A BAR over RAM in the stream: loaded, not decoded. */
	pci_cfg_write(&a.d, PCI_BASE_ADDRESS_0, 4, 0x00100000);
	assert_int_equal(state_put(&a.d, &buf), 0);
	assert_int_equal(state_get(&b.d, &buf, err, sizeof(err)), 0);
	assert_int_equal(b.d.bar[0].mapped, 0);
	assert_int_equal(pci_window_read(&b.h, 0xc0100000, 4), 0xffffffff);
	state_buf_free(&buf);

	/* Another device's function: refused, nothing changed. */
	a.d.cfg[PCI_DEVICE_ID] ^= 1;
	assert_int_equal(state_put(&a.d, &buf), 0);
	assert_int_not_equal(state_get(&b.d, &buf, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "read-only config byte"));
	state_buf_free(&buf);
	rig_destroy(&a);
	rig_destroy(&b);
}

static void test_intx(void **state)
{
	struct rig r;
	rig_init(&r);
	pci_set_intx(&r.d, true);
	assert_int_equal(line_level, 1);
	assert_true(pci_cfg_read(&r.d, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	pci_cfg_write(&r.d, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_INTX_DISABLE);
	assert_int_equal(line_level, 0);
	pci_cfg_write(&r.d, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	assert_int_equal(line_level, 1);
	pci_set_intx(&r.d, false);
	assert_int_equal(line_level, 0);
	rig_destroy(&r);
}

static uint64_t other_read(void *o, uint64_t off, unsigned size) { return 0x2000 + off; }
static const struct bus_ops other_ops = { other_read, dev_write };

/* Two BARs over each other: the lower slot's decodes; when it stops
 * decoding (or moves away) the other one does, and it wins again when it
 * comes back. */
static void test_overlapping_bars(void **state)
{
	struct rig r;
	rig_init(&r);
	struct pci_dev d2;
	pci_dev_init(&d2, "t2", 0x1af4, 0x1044, 0x00ff00, 1, 0x1af4, 0x1100);
	assert_int_equal(pci_add_bar(&d2, 0, 0x4000, false, &other_ops, NULL), 0);
	assert_int_equal(pci_host_add(&r.h, &d2), 0);
	assert_int_equal(d2.slot, 2);
	assert_int_equal(pci_window_read(&r.h, W32 + 0x4010, 4), 0x2010);   /* where firmware put it */
	pci_cfg_write(&d2, PCI_BASE_ADDRESS_0, 4, (uint32_t)W32);
	assert_int_equal(pci_window_read(&r.h, W32 + 0x10, 4), 0x1010);     /* slot 1 wins */
	assert_int_equal(pci_window_read(&r.h, W32 + 0x4010, 4), 0xffffffff);
	pci_cfg_write(&r.d, PCI_COMMAND, 2, 0);
	assert_int_equal(pci_window_read(&r.h, W32 + 0x10, 4), 0x2010);
	pci_cfg_write(&r.d, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	assert_int_equal(pci_window_read(&r.h, W32 + 0x10, 4), 0x1010);
	pci_cfg_write(&r.d, PCI_BASE_ADDRESS_0, 4, (uint32_t)W32 + 0x8000);
	assert_int_equal(pci_window_read(&r.h, W32 + 0x10, 4), 0x2010);
	assert_int_equal(pci_window_read(&r.h, W32 + 0x8010, 4), 0x1010);
	pci_dev_destroy(&d2);
	rig_destroy(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_access),
		cmocka_unit_test(test_bar_sizing_and_moves),
		cmocka_unit_test(test_io_bar),
		cmocka_unit_test(test_pci_testdev),
		cmocka_unit_test(test_capability_list),
		cmocka_unit_test(test_msix),
		cmocka_unit_test(test_intx),
		cmocka_unit_test(test_overlapping_bars),
		cmocka_unit_test(test_state),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
