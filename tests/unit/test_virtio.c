/* The split-virtqueue walker and the virtio PCI transport without KVM:
 * guest memory from mem_create, a fake msi_sink and INTx line, virtio-rng
 * as the device behind the transport (virtio-blk for its request slots). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "devices/virtio/blk.h"
#include "devices/virtio/rng.h"
#include "devices/virtio/virtqueue.h"
#include "migration/state.h"

#define DESC  0x1000
#define AVAIL 0x2000
#define USED  0x3000
#define BUF   0x10000

static struct guest_mem mem;

static int setup(void **state)
{
	return mem_create(&mem, 1 << 20) ? -1 : 0;
}

static int teardown(void **state)
{
	mem_destroy(&mem);
	return 0;
}

static struct vring_desc *desc(unsigned i) { return mem_ptr(&mem, DESC + 16 * i, 16); }
static struct vring_avail *avail(void) { return mem_ptr(&mem, AVAIL, 4 + 2 * 16 + 2); }
static struct vring_used *used(void) { return mem_ptr(&mem, USED, 4 + 8 * 16 + 2); }

static void ring_init(struct virtq *vq, uint16_t size, bool indirect)
{
	memset(mem.host, 0, 1 << 20);
	memset(vq, 0, sizeof(*vq));
	vq->max_size = 256;
	vq->size = size;
	vq->desc_gpa = DESC;
	vq->avail_gpa = AVAIL;
	vq->used_gpa = USED;
	assert_int_equal(vq_start(vq, &mem, false, indirect), 0);
}

static void publish(uint16_t head)
{
	struct vring_avail *a = avail();
	a->ring[a->idx % 16] = head;
	a->idx++;
}

static void test_chain(void **state)
{
	struct virtq vq;
	struct iovec iov[8];
	struct vq_elem e;
	ring_init(&vq, 16, false);
	assert_int_equal(vq_pop(&vq, &e, iov, 8), 0);
	*desc(3) = (struct vring_desc){ BUF, 16, VRING_DESC_F_NEXT, 5 };
	*desc(5) = (struct vring_desc){ BUF + 0x100, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 7 };
	*desc(7) = (struct vring_desc){ BUF + 0x400, 1, VRING_DESC_F_WRITE, 0 };
	publish(3);
	assert_int_equal(vq_pop(&vq, &e, iov, 8), 1);
	assert_int_equal(e.head, 3);
	assert_int_equal(e.nout, 1);
	assert_int_equal(e.nin, 2);
	assert_int_equal(e.out_len, 16);
	assert_int_equal(e.in_len, 513);
	assert_ptr_equal(iov[1].iov_base, mem_ptr(&mem, BUF + 0x100, 512));
	vq_push(&vq, e.head, 513);
	assert_int_equal(used()->idx, 1);
	assert_int_equal(used()->ring[0].id, 3);
	assert_int_equal(used()->ring[0].len, 513);
	assert_true(vq_should_notify(&vq));
	avail()->flags = VRING_AVAIL_F_NO_INTERRUPT;
	vq_push(&vq, 3, 0);
	assert_false(vq_should_notify(&vq));
}

static void test_bad_chains(void **state)
{
	struct virtq vq;
	struct iovec iov[4], big[32];
	struct vq_elem e;

	ring_init(&vq, 16, false);
	publish(16);                                      /* head out of range */
	assert_int_equal(vq_pop(&vq, &e, iov, 4), -EIO);

	ring_init(&vq, 16, false);
	*desc(0) = (struct vring_desc){ BUF, 16, VRING_DESC_F_NEXT, 1 };
	*desc(1) = (struct vring_desc){ BUF, 16, VRING_DESC_F_NEXT, 0 };
	publish(0);                                       /* loop */
	assert_int_equal(vq_pop(&vq, &e, big, 32), -EIO);

	ring_init(&vq, 16, false);
	*desc(0) = (struct vring_desc){ 0xfffff000, 4096, 0, 0 };
	publish(0);                                       /* not RAM */
	assert_int_equal(vq_pop(&vq, &e, iov, 4), -EFAULT);

	ring_init(&vq, 16, false);
	*desc(0) = (struct vring_desc){ ~0ULL - 10, 100, 0, 0 };
	publish(0);                                       /* wraps */
	assert_int_equal(vq_pop(&vq, &e, iov, 4), -EFAULT);

	ring_init(&vq, 16, false);
	*desc(0) = (struct vring_desc){ BUF, 1, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1 };
	*desc(1) = (struct vring_desc){ BUF, 1, 0, 0 };
	publish(0);                                       /* readable after writable */
	assert_int_equal(vq_pop(&vq, &e, iov, 4), -EIO);

	ring_init(&vq, 16, false);
	*desc(0) = (struct vring_desc){ BUF, 16, VRING_DESC_F_INDIRECT, 0 };
	publish(0);                                       /* indirect not negotiated */
	assert_int_equal(vq_pop(&vq, &e, iov, 4), -EIO);

	ring_init(&vq, 16, false);
	avail()->idx = 17;                                /* more than the ring holds */
	assert_int_equal(vq_pop(&vq, &e, iov, 4), -EIO);

	ring_init(&vq, 16, false);
	for (unsigned i = 0; i < 5; i++)
		*desc(i) = (struct vring_desc){ BUF, 1, VRING_DESC_F_NEXT, (uint16_t)(i + 1) };
	*desc(5) = (struct vring_desc){ BUF, 1, 0, 0 };
	publish(0);                                       /* 6 buffers, room for 4 */
	assert_int_equal(vq_pop(&vq, &e, iov, 4), -E2BIG);
}

static void test_indirect(void **state)
{
	struct virtq vq;
	struct iovec iov[8];
	struct vq_elem e;
	ring_init(&vq, 16, true);
	struct vring_desc *t = mem_ptr(&mem, BUF + 0x1000, 48);
	t[0] = (struct vring_desc){ BUF, 16, VRING_DESC_F_NEXT, 1 };
	t[1] = (struct vring_desc){ BUF + 0x100, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2 };
	t[2] = (struct vring_desc){ BUF + 0x400, 1, VRING_DESC_F_WRITE, 0 };
	*desc(0) = (struct vring_desc){ BUF + 0x1000, 48, VRING_DESC_F_INDIRECT, 0 };
	publish(0);
	assert_int_equal(vq_pop(&vq, &e, iov, 8), 1);
	assert_int_equal(e.nout + e.nin, 3);

	t[2] = (struct vring_desc){ BUF + 0x1000, 16, VRING_DESC_F_INDIRECT, 0 };
	publish(0);                                       /* nested */
	assert_int_equal(vq_pop(&vq, &e, iov, 8), -EIO);

	ring_init(&vq, 16, true);
	t = mem_ptr(&mem, BUF + 0x1000, 48);
	t[0] = (struct vring_desc){ BUF, 16, VRING_DESC_F_NEXT, 0 };
	*desc(0) = (struct vring_desc){ BUF + 0x1000, 32, VRING_DESC_F_INDIRECT, 0 };
	publish(0);                                       /* loops inside the table */
	assert_int_equal(vq_pop(&vq, &e, iov, 8), -EIO);
}

static void test_start_checks(void **state)
{
	struct virtq vq = { .max_size = 256, .size = 100, .desc_gpa = DESC, .avail_gpa = AVAIL, .used_gpa = USED };
	assert_int_equal(vq_start(&vq, &mem, false, false), -EINVAL);    /* not a power of two */
	vq.size = 512;
	assert_int_equal(vq_start(&vq, &mem, false, false), -EINVAL);    /* above max */
	vq.size = 16;
	vq.desc_gpa = DESC + 8;
	assert_int_equal(vq_start(&vq, &mem, false, false), -EINVAL);    /* misaligned */
	vq.desc_gpa = (1 << 20) - 16;
	assert_int_equal(vq_start(&vq, &mem, false, false), -EINVAL);    /* runs past RAM */
}

/* ---- the transport, with virtio-rng behind it ------------------------------ */

struct fake_sink { struct msi_sink s; int next, fired[4]; };
static int f_alloc(struct msi_sink *s) { return ((struct fake_sink *)s)->next++; }
static int f_set(struct msi_sink *s, int h, uint64_t a, uint32_t d) { return 0; }
static void f_fire(struct msi_sink *s, int h) { ((struct fake_sink *)s)->fired[h]++; }
static int line_level;
static void line_set(struct irq_line *l, int level) { line_level = level; }

#define C(field) offsetof(struct virtio_pci_common_cfg, field)

static void test_transport_rng(void **state)
{
	struct fake_sink sink = { { f_alloc, f_set, f_fire, NULL }, 0, { 0 } };
	struct irq_line line = { .set_level = line_set, .gsi = 16 };
	struct virtio_env env = { .mem = &mem, .msi = &sink.s, .intx = &line };
	struct virtio_dev *vd;
	memset(mem.host, 0, 1 << 20);
	assert_int_equal(virtio_rng_create(&env, &vd), 0);
	assert_int_equal(virtio_bar_read(vd, C(num_queues), 2), 1);
	virtio_bar_write(vd, C(device_feature_select), 4, 1);
	assert_true(virtio_bar_read(vd, C(device_feature), 4) & (1u << (VIRTIO_F_VERSION_1 - 32)));
	virtio_bar_write(vd, C(device_status), 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	/* Without VERSION_1: FEATURES_OK does not stick. */
	virtio_bar_write(vd, C(device_status), 1, 0x0b);
	assert_false(virtio_bar_read(vd, C(device_status), 1) & VIRTIO_CONFIG_S_FEATURES_OK);
	virtio_bar_write(vd, C(guest_feature_select), 4, 1);
	virtio_bar_write(vd, C(guest_feature), 4, 1u << (VIRTIO_F_VERSION_1 - 32));
	virtio_bar_write(vd, C(device_status), 1, 0x0b);
	assert_true(virtio_bar_read(vd, C(device_status), 1) & VIRTIO_CONFIG_S_FEATURES_OK);
	/* Queue 0: 16 entries, no MSI-X vector (INTx + ISR). */
	virtio_bar_write(vd, C(queue_select), 2, 0);
	virtio_bar_write(vd, C(queue_size), 2, 16);
	virtio_bar_write(vd, C(queue_desc_lo), 4, DESC);
	virtio_bar_write(vd, C(queue_avail_lo), 4, AVAIL);
	virtio_bar_write(vd, C(queue_used_lo), 4, USED);
	virtio_bar_write(vd, C(queue_msix_vector), 2, 9);          /* out of range */
	assert_int_equal(virtio_bar_read(vd, C(queue_msix_vector), 2), VIRTIO_MSI_NO_VECTOR);
	virtio_bar_write(vd, C(queue_enable), 2, 1);
	assert_int_equal(virtio_bar_read(vd, C(queue_enable), 2), 1);
	virtio_bar_write(vd, C(device_status), 1, 0x0f);
	*desc(0) = (struct vring_desc){ BUF, 32, VRING_DESC_F_WRITE, 0 };
	publish(0);
	virtio_kick(vd, 0);
	assert_int_equal(used()->idx, 1);
	assert_int_equal(used()->ring[0].len, 32);
	assert_int_equal(line_level, 1);
	assert_int_equal(virtio_bar_read(vd, VIRTIO_ISR_OFF, 1), 1);   /* read clears, drops INTx */
	assert_int_equal(line_level, 0);
	assert_int_equal(virtio_bar_read(vd, VIRTIO_ISR_OFF, 1), 0);
	/* A broken chain: NEEDS_RESET, a config interrupt; reset clears it. */
	publish(7);
	*desc(7) = (struct vring_desc){ 0xfffff000, 32, VRING_DESC_F_WRITE, 0 };
	virtio_kick(vd, 0);
	assert_true(virtio_bar_read(vd, C(device_status), 1) & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_int_equal(virtio_bar_read(vd, VIRTIO_ISR_OFF, 1), VIRTIO_PCI_ISR_CONFIG);
	virtio_bar_write(vd, C(device_status), 1, 0);
	assert_int_equal(virtio_bar_read(vd, C(device_status), 1), 0);
	assert_int_equal(virtio_bar_read(vd, C(queue_enable), 2), 0);
	virtio_rng_destroy(vd);
}

/* Drive VD to DRIVER_OK with VERSION_1 and queue 0 (16 entries at DESC,
 * AVAIL, USED) live; its MSI-X vector set when VECTOR >= 0. */
static void drive_queue0(struct virtio_dev *vd, int vector)
{
	virtio_bar_write(vd, C(guest_feature_select), 4, 1);
	virtio_bar_write(vd, C(guest_feature), 4, 1u << (VIRTIO_F_VERSION_1 - 32));
	virtio_bar_write(vd, C(device_status), 1, 0x0b);
	virtio_bar_write(vd, C(queue_size), 2, 16);
	virtio_bar_write(vd, C(queue_desc_lo), 4, DESC);
	virtio_bar_write(vd, C(queue_avail_lo), 4, AVAIL);
	virtio_bar_write(vd, C(queue_used_lo), 4, USED);
	if (vector >= 0)
		virtio_bar_write(vd, C(queue_msix_vector), 2, (uint32_t)vector);
	virtio_bar_write(vd, C(queue_enable), 2, 1);
	virtio_bar_write(vd, C(device_status), 1, 0x0f);
}

/* An rng driven up to DRIVER_OK with queue 0 (16 entries) live. */
static struct virtio_dev *rng_live(struct fake_sink *sink, struct irq_line *line)
{
	struct virtio_env env = { .mem = &mem, .msi = &sink->s, .intx = line };
	struct virtio_dev *vd;
	assert_int_equal(virtio_rng_create(&env, &vd), 0);
	drive_queue0(vd, 1);
	return vd;
}

static bool page_dirty(const uint64_t *log, uint64_t gpa)
{
	uint64_t p = mem_offset(&mem, gpa) >> 12;
	return log[p >> 6] & (1ull << (p & 63));
}

/* Writes Ember makes into guest RAM (buffers, used ring) reach the dirty
 * log that migration reads; pages nobody wrote stay clean. */
static void test_dirty_writes(void **state)
{
	struct fake_sink sink = { { f_alloc, f_set, f_fire, NULL }, 0, { 0 } };
	struct irq_line line = { .set_level = line_set, .gsi = 16 };
	uint64_t log[(1 << 20) / 4096 / 64] = { 0 };
	memset(mem.host, 0, 1 << 20);
	struct virtio_dev *vd = rng_live(&sink, &line);
	/* A buffer across a page boundary: both pages. */
	*desc(0) = (struct vring_desc){ BUF + 0x2ff0, 0x20, VRING_DESC_F_WRITE, 0 };
	publish(0);
	mem.dirty_log = log;
	virtio_kick(vd, 0);
	mem.dirty_log = NULL;
	assert_int_equal(used()->idx, 1);
	assert_true(page_dirty(log, USED));
	assert_true(page_dirty(log, BUF + 0x2000));
	assert_true(page_dirty(log, BUF + 0x3000));
	assert_false(page_dirty(log, BUF + 0x1000));
	assert_false(page_dirty(log, BUF + 0x4000));
	assert_false(page_dirty(log, DESC));
	assert_false(page_dirty(log, AVAIL));
	/* Host pointers outside RAM are ignored, not marked. */
	mem.dirty_log = log;
	mem_mark_dirty_host(&mem, mem.host + mem.size, 1);
	mem_mark_dirty_host(&mem, mem.host + mem.size - 1, 2);
	mem.dirty_log = NULL;
	virtio_rng_destroy(vd);
}

static int save_dev(struct virtio_dev *vd, struct state_buf *b)
{
	const struct devstate_ops *ops = virtio_state_ops(vd);
	struct state_writer w;
	memset(b, 0, sizeof(*b));
	int r = state_writer_init(&w, state_buf_sink(b));
	if (!r)
		r = state_begin_section(&w, ops->name, 0, ops->version);
	if (!r)
		r = ops->save(vd, &w);
	if (!r)
		r = state_end_section(&w);
	if (!r)
		r = state_writer_finish(&w);
	state_writer_destroy(&w);
	return r;
}

static int load_dev(struct virtio_dev *vd, struct state_buf *b, char *err, size_t n)
{
	const struct devstate_ops *ops = virtio_state_ops(vd);
	struct state_loader l = { ops->name, ops->version, ops->load, vd };
	b->pos = 0;
	return state_load(state_buf_source(b), &l, 1, err, n);
}

/* Save a live device, load into a fresh one: it carries on where the
 * first stopped (indexes, vector), and the rings are re-mapped. */
static void test_state_roundtrip(void **state)
{
	struct fake_sink sink = { { f_alloc, f_set, f_fire, NULL }, 0, { 0 } };
	struct irq_line line = { .set_level = line_set, .gsi = 16 };
	memset(mem.host, 0, 1 << 20);
	struct virtio_dev *a = rng_live(&sink, &line);
	*desc(0) = (struct vring_desc){ BUF, 32, VRING_DESC_F_WRITE, 0 };
	publish(0);
	virtio_kick(a, 0);
	assert_int_equal(used()->idx, 1);
	struct state_buf b;
	assert_int_equal(save_dev(a, &b), 0);

	struct fake_sink sink2 = { { f_alloc, f_set, f_fire, NULL }, 0, { 0 } };
	struct virtio_env env = { .mem = &mem, .msi = &sink2.s, .intx = &line };
	struct virtio_dev *c;
	char err[256] = "";
	assert_int_equal(virtio_rng_create(&env, &c), 0);
	assert_int_equal(load_dev(c, &b, err, sizeof(err)), 0);
	assert_int_equal(c->status, a->status);
	assert_int_equal(c->guest_features, a->guest_features);
	assert_true(c->vq[0].enabled);
	assert_int_equal(c->vq[0].last_avail, 1);
	assert_int_equal(c->vq[0].used_idx, 1);
	assert_int_equal(c->queue_vector[0], 1);
	assert_ptr_equal(c->vq[0].used, a->vq[0].used);
	*desc(1) = (struct vring_desc){ BUF + 64, 16, VRING_DESC_F_WRITE, 0 };
	publish(1);
	virtio_kick(c, 0);
	assert_int_equal(used()->idx, 2);
	assert_int_equal(used()->ring[1].id, 1);
	assert_int_equal(used()->ring[1].len, 16);
	state_buf_free(&b);
	virtio_rng_destroy(c);
	virtio_rng_destroy(a);
}

enum hostile { H_QSIZE, H_RING, H_FEATURES, H_VECTOR, H_STATUS, H_READONLY_CFG, H_NQUEUES, H_INFLIGHT };

/* A stream that names impossible or foreign state is refused. */
static void test_state_hostile(void **state)
{
	static const char *const want[] = {
		[H_QSIZE] = "queue 0: size", [H_RING] = "queue 0: size",
		[H_FEATURES] = "not offered", [H_VECTOR] = "MSI-X vector",
		[H_STATUS] = "out of range", [H_READONLY_CFG] = "read-only config byte",
		[H_NQUEUES] = "queues in the stream", [H_INFLIGHT] = "chains in flight",
	};
	for (unsigned h = H_QSIZE; h <= H_INFLIGHT; h++) {
		struct fake_sink sink = { { f_alloc, f_set, f_fire, NULL }, 0, { 0 } };
		struct irq_line line = { .set_level = line_set, .gsi = 16 };
		memset(mem.host, 0, 1 << 20);
		struct virtio_dev *a = rng_live(&sink, &line);
		switch (h) {
		case H_QSIZE: a->vq[0].size = 3; break;
		case H_RING: a->vq[0].used_gpa = (1 << 20) - 8; break;
		case H_FEATURES: a->guest_features |= 1ULL << 50; break;
		case H_VECTOR: a->queue_vector[0] = 7; break;
		case H_STATUS: a->status |= 0x20; break;
		case H_READONLY_CFG: a->pci.cfg[PCI_DEVICE_ID] ^= 1; break;
		case H_NQUEUES: a->nqueues = 2; a->vq[1] = a->vq[0]; a->vq[1].enabled = false; break;
		/* More chains out than the ring holds (found by fuzz_devstate). */
		case H_INFLIGHT: a->vq[0].last_avail = (uint16_t)(a->vq[0].used_idx + a->vq[0].size + 1); break;
		}
		struct state_buf b;
		assert_int_equal(save_dev(a, &b), 0);
		struct fake_sink sink2 = { { f_alloc, f_set, f_fire, NULL }, 0, { 0 } };
		struct virtio_env env = { .mem = &mem, .msi = &sink2.s, .intx = &line };
		struct virtio_dev *c;
		char err[256] = "";
		assert_int_equal(virtio_rng_create(&env, &c), 0);
		int r = load_dev(c, &b, err, sizeof(err));
		if (r == 0 || !strstr(err, want[h]))
			fail_msg("case %u: load returned %d, \"%s\" (wanted \"%s\")", h, r, err, want[h]);
		assert_false(c->vq[0].enabled && h != H_READONLY_CFG);
		state_buf_free(&b);
		if (h == H_NQUEUES)
			a->nqueues = 1;
		if (h == H_READONLY_CFG)
			a->pci.cfg[PCI_DEVICE_ID] ^= 1;
		virtio_rng_destroy(c);
		virtio_rng_destroy(a);
	}
}

/* A virtio-blk request: 16-byte header at BUF, the data buffer (if any)
 * at BUF + 0x100, the status byte at BUF + 0x800, chain from descriptor 0. */
static void blk_request(uint32_t type, uint32_t data_len)
{
	struct virtio_blk_outhdr h = { .type = type };
	assert_int_equal(mem_write(&mem, BUF, &h, sizeof(h)), 0);
	*desc(0) = (struct vring_desc){ BUF, 16, VRING_DESC_F_NEXT, data_len ? 1 : 2 };
	*desc(1) = (struct vring_desc){ BUF + 0x100, data_len, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2 };
	*desc(2) = (struct vring_desc){ BUF + 0x800, 1, VRING_DESC_F_WRITE, 0 };
	publish(0);
}

/* A request slot is reused (the free slots are a stack): what the request
 * before left in it must not leak into the next one's used length. A read
 * of no data writes only its status byte: used length 1. */
static void test_blk_slot_reuse(void **state)
{
	int fd = memfd_create("test-disk", MFD_CLOEXEC);
	assert_true(fd >= 0 && ftruncate(fd, 1 << 20) == 0);
	char path[64], err[256];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	struct fake_sink sink = { { f_alloc, f_set, f_fire, NULL }, 0, { 0 } };
	struct irq_line line = { .set_level = line_set, .gsi = 16 };
	struct virtio_env env = { .mem = &mem, .msi = &sink.s, .intx = &line };
	struct blk_opts o = { .path = path, .serial = "slot-reuse" };
	struct virtio_dev *vd;
	memset(mem.host, 0, 1 << 20);
	assert_int_equal(virtio_blk_create(&env, &o, &vd, err, sizeof(err)), 0);
	drive_queue0(vd, -1);
	blk_request(VIRTIO_BLK_T_GET_ID, VIRTIO_BLK_ID_BYTES);
	virtio_kick(vd, 0);
	assert_int_equal(used()->idx, 1);
	assert_int_equal(used()->ring[0].len, 1 + VIRTIO_BLK_ID_BYTES);
	assert_memory_equal(mem_ptr(&mem, BUF + 0x100, 10), "slot-reuse", 10);
	blk_request(VIRTIO_BLK_T_IN, 0);
	virtio_kick(vd, 0);
	assert_int_equal(used()->idx, 2);
	assert_int_equal(*(uint8_t *)mem_ptr(&mem, BUF + 0x800, 1), VIRTIO_BLK_S_OK);
	assert_int_equal(used()->ring[1].len, 1);
	virtio_blk_destroy(vd);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chain),
		cmocka_unit_test(test_bad_chains),
		cmocka_unit_test(test_indirect),
		cmocka_unit_test(test_start_checks),
		cmocka_unit_test(test_transport_rng),
		cmocka_unit_test(test_dirty_writes),
		cmocka_unit_test(test_state_roundtrip),
		cmocka_unit_test(test_state_hostile),
		cmocka_unit_test(test_blk_slot_reuse),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
