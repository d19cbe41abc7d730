/* virtio-balloon without KVM: the discarded-range record, the parsers of
 * guest input (PFN arrays, report ranges, statistics), the --balloon
 * option, and the device behind the virtio transport on a real memfd
 * (guest memory from mem_create, with the 3-4 GiB hole), a fake MSI sink:
 * inflate/deflate, reports in both discard modes, PAGE_POISON, statistics,
 * dense queue numbering, a new target's configuration interrupt; its state
 * section saved and loaded into a fresh device (and refused when a field
 * is out of range or foreign), quiesce in FREE mode. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <linux/pci_regs.h>
#include <zlib.h>

#include "config.h"
#include "devices/virtio/balloon.h"
#include "discard.h"
#include "migration/state.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)
#define PG  4096ull

/* Rings and buffers at the bottom of RAM, data pages from 16 MiB up. */
#define DESC  0x1000
#define AVAIL 0x3000
#define USED  0x4000
#define QSTRIDE 0x10000           /* queue q's rings at q * QSTRIDE */
#define BUF   0x100000
#define DATA  (16 * MiB)

static struct guest_mem mem;      /* 3 GiB + 64 MiB: low RAM, the hole, high RAM */

static int setup(void **state)
{
	return mem_create(&mem, 3 * GiB + 64 * MiB) ? -1 : 0;
}

static int teardown(void **state)
{
	mem_destroy(&mem);
	return 0;
}

/* Touch n pages at gpa so the memfd holds them. */
static void fill(uint64_t gpa, uint64_t len, uint8_t v)
{
	memset(mem_ptr(&mem, gpa, len), v, len);
}

static bool is_hole(uint64_t gpa, uint64_t len)
{
	uint64_t off;
	assert_int_equal(mem_range_offset(&mem, gpa, len, &off), 0);
	return mem_next_data(&mem, off, off + len) == off + len;
}

/* ---- the record ------------------------------------------------------------- */

static void test_discard_map(void **state)
{
	struct discard_map d;
	uint64_t s, n;
	assert_int_equal(discard_init(&d, 64 * MiB), 0);
	assert_int_equal(discard_set(&d, 4 * PG, 3 * PG), 3);
	assert_int_equal(discard_set(&d, 5 * PG, 3 * PG), 1);      /* 2 already set */
	assert_int_equal(discard_pages(&d), 4);
	assert_true(discard_test(&d, 7 * PG));
	assert_false(discard_test(&d, 8 * PG));
	assert_true(discard_next_run(&d, 0, 64 * MiB, &s, &n));
	assert_true(s == 4 * PG && n == 4 * PG);
	assert_int_equal(discard_clear(&d, 5 * PG, PG), 1);
	assert_true(discard_next_run(&d, 5 * PG, 64 * MiB, &s, &n));
	assert_true(s == 6 * PG && n == 2 * PG);
	/* Across words, and clamped at the end. */
	assert_int_equal(discard_set(&d, 60 * PG, 10 * PG), 10);
	assert_int_equal(discard_set(&d, 64 * MiB - PG, 8 * PG), 1);
	assert_int_equal(discard_set(&d, UINT64_MAX - PG, 2 * PG), 0);
	assert_true(discard_next_run(&d, 8 * PG, 64 * MiB, &s, &n));
	assert_true(s == 60 * PG && n == 10 * PG);
	assert_int_equal(discard_clear(&d, 0, 64 * MiB), 14);
	assert_int_equal(discard_pages(&d), 0);
	assert_false(discard_next_run(&d, 0, 64 * MiB, &s, &n));
	discard_free(&d);
}

/* Skippable = recorded and still a hole; refresh forgets rewritten pages. */
static void test_discard_skippable(void **state)
{
	struct discard_map d;
	uint64_t s, n, off;
	assert_int_equal(discard_init(&d, mem.size), 0);
	fill(DATA, 8 * PG, 0x11);
	assert_int_equal(mem_range_offset(&mem, DATA, 8 * PG, &off), 0);
	assert_false(is_hole(DATA, PG));
	assert_int_equal(mem_discard(&mem, off, 8 * PG), 0);
	discard_set(&d, off, 8 * PG);
	assert_true(is_hole(DATA, 8 * PG));
	assert_true(discard_skippable(&d, &mem, off, 8 * PG));
	/* The guest writes page 3 again: pages 0-2 and 4-7 stay skippable. */
	fill(DATA + 3 * PG, PG, 0x22);
	assert_false(discard_skippable(&d, &mem, off, 8 * PG));
	assert_true(discard_next_skippable(&d, &mem, off, off + 8 * PG, &s, &n));
	assert_true(s == off && n == 3 * PG);
	assert_true(discard_next_skippable(&d, &mem, off + 3 * PG, off + 8 * PG, &s, &n));
	assert_true(s == off + 4 * PG && n == 4 * PG);
	/* A hole Ember did not make is not in the record. */
	assert_false(discard_skippable(&d, &mem, off + 64 * PG, PG));
	assert_int_equal(discard_refresh(&d, &mem), 1);
	assert_int_equal(discard_pages(&d), 7);
	assert_false(discard_test(&d, off + 3 * PG));
	assert_int_equal(mem_discard(&mem, off, 8 * PG), 0);
	assert_int_equal(mem_discard(&mem, off + 1, PG), -EINVAL);
	assert_int_equal(mem_discard(&mem, mem.size, PG), -EINVAL);
	discard_free(&d);
}

/* The record as a stream carries it: words out, words in; a wrong size
 * or a page past the end is refused and changes nothing. */
static void test_discard_export_import(void **state)
{
	struct discard_map a, b;
	assert_int_equal(discard_init(&a, 1000 * PG), 0);        /* 1000 pages: 16 words, the last partial */
	assert_int_equal(discard_init(&b, 1000 * PG), 0);
	assert_int_equal(discard_words(&a), 16);
	discard_set(&a, 3 * PG, 5 * PG);
	discard_set(&a, 990 * PG, 10 * PG);
	uint64_t w[16];
	discard_export(&a, w);
	assert_int_equal(discard_import(&b, w, sizeof(w)), 0);
	assert_int_equal(discard_pages(&b), 15);
	assert_true(discard_test(&b, 999 * PG) && discard_test(&b, 3 * PG) && !discard_test(&b, 8 * PG));
	assert_int_equal(discard_import(&b, w, sizeof(w) - 8), -EINVAL);
	w[15] |= 1ull << (1000 % 64);                             /* page 1000 does not exist */
	assert_int_equal(discard_import(&b, w, sizeof(w)), -EINVAL);
	assert_int_equal(discard_pages(&b), 15);
	discard_free(&a);
	discard_free(&b);
}

/* ---- parsers ------------------------------------------------------------------ */

struct runs { uint64_t off[16], len[16]; unsigned n; };

static void collect(void *opaque, uint64_t off, uint64_t len)
{
	struct runs *r = opaque;
	assert_true(r->n < 16);
	r->off[r->n] = off;
	r->len[r->n++] = len;
}

static void test_pfn_runs(void **state)
{
	uint32_t pfns[] = {
		0x1000, 0x1001, 0x1002,          /* one run of 3 */
		0x1010,                          /* alone */
		0xc0000,                         /* 3 GiB: the MMIO hole */
		0xfee00,                         /* the LAPIC */
		0x100000, 0x100001,              /* 4 GiB: high RAM, a run of 2 */
		0x104000,                        /* past the end of RAM */
		0xbffff,                         /* last page below the hole */
	};
	struct runs r = { .n = 0 };
	uint64_t refused = 0;
	/* Split the array at an odd byte: entries straddle the buffers. */
	struct iovec iov[2] = { { pfns, 13 }, { (uint8_t *)pfns + 13, sizeof(pfns) - 13 } };
	uint64_t taken = balloon_pfn_runs(&mem, iov, 2, collect, &r, &refused);
	assert_int_equal(taken, 7);
	assert_int_equal(refused, 3);
	assert_int_equal(r.n, 4);
	assert_true(r.off[0] == 0x1000 * PG && r.len[0] == 3 * PG);
	assert_true(r.off[1] == 0x1010 * PG && r.len[1] == PG);
	assert_true(r.off[2] == 3 * GiB && r.len[2] == 2 * PG);      /* high RAM's memfd offset */
	assert_true(r.off[3] == 3 * GiB - PG && r.len[3] == PG);
	/* 3 GiB - 4K and 4 GiB are adjacent in the memfd, not in the guest. */
	uint32_t edge[] = { 0xbffff, 0x100000 };
	struct iovec e = { edge, sizeof(edge) };
	r.n = 0;
	refused = 0;
	assert_int_equal(balloon_pfn_runs(&mem, &e, 1, collect, &r, &refused), 2);
	assert_int_equal(r.n, 2);
	/* A PFN cut short at the end. */
	uint8_t odd[6] = { 0x00, 0x10, 0, 0, 0x01, 0x10 };
	struct iovec o = { odd, sizeof(odd) };
	r.n = 0;
	refused = 0;
	assert_int_equal(balloon_pfn_runs(&mem, &o, 1, collect, &r, &refused), 1);
	assert_int_equal(refused, 1);
}

static void test_report_range(void **state)
{
	uint64_t off, len;
	struct iovec ok = { mem_ptr(&mem, DATA, 2 * MiB), 2 * MiB };
	assert_int_equal(balloon_report_range(&mem, &ok, &off, &len), 0);
	assert_true(off == DATA && len == 2 * MiB);
	struct iovec mis = { mem_ptr(&mem, DATA + 512, PG), PG };
	assert_int_equal(balloon_report_range(&mem, &mis, &off, &len), -EINVAL);
	struct iovec part = { mem_ptr(&mem, DATA, PG + 1), PG + 1 };
	assert_int_equal(balloon_report_range(&mem, &part, &off, &len), -EINVAL);
	uint8_t outside[PG];
	struct iovec o = { outside, sizeof(outside) };
	assert_int_equal(balloon_report_range(&mem, &o, &off, &len), -EINVAL);
}

static void test_parse_stats(void **state)
{
	uint8_t buf[40];
	uint64_t v[BALLOON_STATS_MAX] = { 0 };
	uint32_t mask = 0;
	struct { uint16_t tag; uint64_t val; } __attribute__((packed)) e[] = {
		{ VIRTIO_BALLOON_S_MEMFREE, 123 << 20 }, { 99, 1 }, { VIRTIO_BALLOON_S_MEMTOT, 256 << 20 },
	};
	memcpy(buf, e, sizeof(e));
	struct iovec iov[2] = { { buf, 7 }, { buf + 7, sizeof(e) - 7 + 4 } };   /* + a partial entry */
	assert_int_equal(balloon_parse_stats(iov, 2, v, &mask), 3);
	assert_int_equal(mask, (1u << VIRTIO_BALLOON_S_MEMFREE) | (1u << VIRTIO_BALLOON_S_MEMTOT));
	assert_true(v[VIRTIO_BALLOON_S_MEMFREE] == 123 << 20);
	assert_true(v[VIRTIO_BALLOON_S_MEMTOT] == 256 << 20);
	assert_string_equal(balloon_stat_name(VIRTIO_BALLOON_S_AVAIL), "available_memory");
	assert_null(balloon_stat_name(16));
}

static void test_option(void **state)
{
	struct balloon_config b;
	char err[256];
	assert_int_equal(parse_balloon(NULL, &b, err, sizeof(err)), 0);
	assert_true(b.enabled && !b.reporting && b.size == 0);
	assert_int_equal(parse_balloon("size=64M,deflate-on-oom,free-page-reporting,stats-interval=2", &b, err,
				       sizeof(err)), 0);
	assert_true(b.size == 64 * MiB && b.deflate_on_oom && b.reporting && !b.reporting_free);
	assert_int_equal(b.stats_interval, 2);
	assert_int_equal(parse_balloon("free-page-reporting=free", &b, err, sizeof(err)), 0);
	assert_true(b.reporting && b.reporting_free);
	assert_int_equal(parse_balloon("free-page-reporting=dontneed", &b, err, sizeof(err)), 0);
	assert_true(b.reporting && !b.reporting_free);
	assert_int_equal(parse_balloon("free-page-reporting=madv", &b, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "dontneed or free"));
	assert_int_equal(parse_balloon("size=1000", &b, err, sizeof(err)), -EINVAL);
	assert_int_equal(parse_balloon("stats-interval=9999", &b, err, sizeof(err)), -EINVAL);
	assert_int_equal(parse_balloon("huge", &b, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "unknown option 'huge'"));
}

/* ---- the device behind the transport ---------------------------------------------- */

struct fake_sink { struct msi_sink s; int next, fired[8]; };
static int f_alloc(struct msi_sink *s) { return ((struct fake_sink *)s)->next++; }
static int f_set(struct msi_sink *s, int h, uint64_t a, uint32_t d) { return 0; }
static void f_fire(struct msi_sink *s, int h) { ((struct fake_sink *)s)->fired[h]++; }

#define C(f) offsetof(struct virtio_pci_common_cfg, f)

static struct fake_sink sink;
static unsigned stats_calls;
static struct balloon_info last_info;

static void on_stats(void *opaque, const struct balloon_info *i)
{
	stats_calls++;
	last_info = *i;
}

/* The driver's view of queue q. */
struct dq { struct vring_desc *desc; struct vring_avail *avail; struct vring_used *used; uint16_t next, seen; };
static struct dq dq[4];

static struct virtio_dev *make_opts(struct discard_map *rec, const struct balloon_opts *o)
{
	struct virtio_env env = { .mem = &mem, .msi = &sink.s };
	struct virtio_dev *vd = NULL;
	memset(&sink, 0, sizeof(sink));
	sink.s = (struct msi_sink){ f_alloc, f_set, f_fire, NULL };
	assert_int_equal(virtio_balloon_create(&env, o, rec, &vd), 0);
	return vd;
}

static struct virtio_dev *make(struct discard_map *rec, bool reporting, enum balloon_discard mode)
{
	struct balloon_opts o = { .size = 8 * MiB, .reporting = reporting, .mode = mode, .deflate_on_oom = true,
				  .on_stats = on_stats };
	return make_opts(rec, &o);
}

static uint32_t features_lo(uint64_t f) { return (uint32_t)f; }

/* Negotiate `want` and set up nq queues with vectors; DRIVER_OK. */
static void bring_up(struct virtio_dev *vd, uint64_t want, unsigned nq)
{
	virtio_bar_write(vd, C(device_status), 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	virtio_bar_write(vd, C(guest_feature_select), 4, 0);
	virtio_bar_write(vd, C(guest_feature), 4, features_lo(want));
	virtio_bar_write(vd, C(guest_feature_select), 4, 1);
	virtio_bar_write(vd, C(guest_feature), 4, 1u << (VIRTIO_F_VERSION_1 - 32));
	virtio_bar_write(vd, C(device_status), 1, 0x0b);
	assert_true(virtio_bar_read(vd, C(device_status), 1) & VIRTIO_CONFIG_S_FEATURES_OK);
	for (unsigned q = 0; q < nq; q++) {
		uint64_t base = q * QSTRIDE;
		memset(mem_ptr(&mem, base, QSTRIDE), 0, QSTRIDE);
		dq[q] = (struct dq){ mem_ptr(&mem, base + DESC, 16 * 16), mem_ptr(&mem, base + AVAIL, 6 + 2 * 16),
				     mem_ptr(&mem, base + USED, 6 + 8 * 16), 0, 0 };
		virtio_bar_write(vd, C(queue_select), 2, q);
		virtio_bar_write(vd, C(queue_size), 2, 16);
		virtio_bar_write(vd, C(queue_desc_lo), 4, (uint32_t)(base + DESC));
		virtio_bar_write(vd, C(queue_avail_lo), 4, (uint32_t)(base + AVAIL));
		virtio_bar_write(vd, C(queue_used_lo), 4, (uint32_t)(base + USED));
		virtio_bar_write(vd, C(queue_enable), 2, 1);
	}
	virtio_bar_write(vd, C(device_status), 1, 0x0f);
	assert_false(virtio_bar_read(vd, C(device_status), 1) & VIRTIO_CONFIG_S_NEEDS_RESET);
}

/* Publish one chain of n buffers on queue q (device-writable if w). */
static void post(unsigned q, const uint64_t *gpa, const uint32_t *len, unsigned n, bool w)
{
	struct dq *d = &dq[q];
	for (unsigned i = 0; i < n; i++)
		d->desc[i] = (struct vring_desc){ gpa[i], len[i],
			(uint16_t)((i + 1 < n ? VRING_DESC_F_NEXT : 0) | (w ? VRING_DESC_F_WRITE : 0)), (uint16_t)(i + 1) };
	d->avail->ring[d->avail->idx % 16] = 0;
	d->avail->idx++;
}

static bool used(unsigned q)
{
	if (dq[q].used->idx == dq[q].seen)
		return false;
	dq[q].seen++;
	return true;
}

/* The FREE mode thread answers a little later. */
static bool wait_used(unsigned q)
{
	for (int i = 0; i < 2000; i++) {
		if (used(q))
			return true;
		usleep(1000);
	}
	return false;
}

static void post_pfns(unsigned q, const uint32_t *pfns, unsigned n)
{
	memcpy(mem_ptr(&mem, BUF, 4 * n), pfns, 4 * n);
	uint64_t g = BUF;
	uint32_t l = 4 * n;
	post(q, &g, &l, 1, false);
}

static void test_inflate_deflate(void **state)
{
	struct discard_map rec;
	assert_int_equal(discard_init(&rec, mem.size), 0);
	struct virtio_dev *vd = make(&rec, true, BALLOON_DONTNEED);
	/* Before negotiation: num_pages from size=8M, 4 queues, features. */
	assert_int_equal(virtio_bar_read(vd, VIRTIO_DEVCFG_OFF, 4), 8 * MiB / PG);
	assert_int_equal(virtio_bar_read(vd, C(num_queues), 2), 4);
	virtio_bar_write(vd, C(device_feature_select), 4, 0);
	uint32_t f = (uint32_t)virtio_bar_read(vd, C(device_feature), 4);
	assert_true(f & (1u << VIRTIO_BALLOON_F_REPORTING));
	assert_true(f & (1u << VIRTIO_BALLOON_F_STATS_VQ));
	assert_true(f & (1u << VIRTIO_BALLOON_F_DEFLATE_ON_OOM));
	assert_false(f & (1u << VIRTIO_BALLOON_F_MUST_TELL_HOST));
	bring_up(vd, 1u << VIRTIO_BALLOON_F_STATS_VQ, 3);

	fill(DATA, 4 * PG, 0x5a);
	fill(3 * GiB - PG, PG, 0x5a);
	uint32_t pfns[] = { DATA / PG, DATA / PG + 1, DATA / PG + 2, 0xc0000, 0x200000, 0xbffff };
	post_pfns(0, pfns, 6);
	uint64_t before = mem_resident(&mem);
	virtio_kick(vd, 0);
	assert_true(used(0));
	assert_true(is_hole(DATA, 3 * PG));
	assert_false(is_hole(DATA + 3 * PG, PG));             /* not in the request */
	assert_true(is_hole(3 * GiB - PG, PG));
	assert_true(mem_resident(&mem) <= before - 4 * PG);
	assert_int_equal(*(uint8_t *)mem_ptr(&mem, DATA, 1), 0);
	assert_int_equal(discard_pages(&rec), 4);
	struct balloon_info i;
	balloon_get_info(vd, &i);
	assert_int_equal(i.inflated_pages, 4);
	assert_int_equal(i.refused, 2);
	assert_int_equal(i.discarded_bytes, 4 * PG);

	/* The driver says how many it has. */
	virtio_bar_write(vd, VIRTIO_DEVCFG_OFF + 4, 4, 4);
	balloon_get_info(vd, &i);
	assert_int_equal(i.actual_bytes, 4 * PG);
	assert_int_equal(last_info.actual_bytes, 4 * PG);
	/* num_pages is the device's: a write is ignored. */
	virtio_bar_write(vd, VIRTIO_DEVCFG_OFF, 4, 1);
	assert_int_equal(virtio_bar_read(vd, VIRTIO_DEVCFG_OFF, 4), 8 * MiB / PG);

	uint32_t back[] = { DATA / PG, DATA / PG + 1 };
	post_pfns(1, back, 2);
	virtio_kick(vd, 1);
	assert_true(used(1));
	assert_int_equal(discard_pages(&rec), 2);
	balloon_get_info(vd, &i);
	assert_int_equal(i.deflated_pages, 2);
	virtio_balloon_destroy(vd);
	discard_free(&rec);
}

static void test_target(void **state)
{
	struct virtio_dev *vd = make(NULL, false, BALLOON_DONTNEED);
	assert_int_equal(virtio_bar_read(vd, C(num_queues), 2), 3);
	/* Before DRIVER_OK a new target is only in the config. */
	uint8_t gen = (uint8_t)virtio_bar_read(vd, C(config_generation), 1);
	assert_int_equal(balloon_set_target(vd, 16 * MiB + 100), 0);
	assert_int_equal(virtio_bar_read(vd, VIRTIO_DEVCFG_OFF, 4), 16 * MiB / PG);
	assert_int_not_equal(virtio_bar_read(vd, C(config_generation), 1), gen);
	assert_int_equal(balloon_set_target(vd, mem.size + PG), -EINVAL);
	bring_up(vd, 0, 2);
	/* MSI-X on, entry 0 (the config vector) unmasked. */
	vd->pci.msix.table[0].ctrl = 0;
	pci_cfg_write(&vd->pci, vd->pci.msix.cap + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE);
	virtio_bar_write(vd, C(msix_config), 2, 0);
	int fired = sink.fired[0];
	assert_int_equal(balloon_set_target(vd, 32 * MiB), 0);
	assert_int_equal(sink.fired[0], fired + 1);
	assert_int_equal(balloon_set_target(vd, 32 * MiB), 0);      /* no change, no interrupt */
	assert_int_equal(sink.fired[0], fired + 1);
	assert_false(balloon_request_stats(vd));                     /* STATS_VQ not negotiated */
	virtio_balloon_destroy(vd);
}

static void report_test(enum balloon_discard mode)
{
	struct discard_map rec;
	assert_int_equal(discard_init(&rec, mem.size), 0);
	struct virtio_dev *vd = make(&rec, true, mode);
	/* Without STATS_VQ the reporting queue is queue 2 (dense numbering). */
	bring_up(vd, 1u << VIRTIO_BALLOON_F_REPORTING, 3);
	fill(DATA, 8 * MiB, 0x77);
	uint64_t g[3] = { DATA, DATA + 4 * MiB, DATA + 6 * MiB + 512 };
	uint32_t l[3] = { 2 * MiB, 2 * MiB, PG };
	post(2, g, l, 3, true);
	virtio_kick(vd, 2);
	assert_true(wait_used(2));
	assert_true(is_hole(DATA, 2 * MiB));
	assert_false(is_hole(DATA + 2 * MiB, PG));
	assert_true(is_hole(DATA + 4 * MiB, 2 * MiB));
	assert_false(is_hole(DATA + 6 * MiB, 2 * PG));               /* unaligned: refused */
	assert_int_equal(discard_pages(&rec), 4 * MiB / PG);
	struct balloon_info i;
	balloon_get_info(vd, &i);
	assert_int_equal(i.reports, 1);
	assert_int_equal(i.reported_bytes, 4 * MiB);
	assert_int_equal(i.refused, 1);
	/* Reused: zeros, and writable. */
	assert_int_equal(*(uint8_t *)mem_ptr(&mem, DATA + 100, 1), 0);
	fill(DATA, PG, 0x33);
	/* A report outside RAM breaks the ring: NEEDS_RESET, nothing else. */
	uint64_t bad = 3 * GiB - PG;
	uint32_t badlen = 2 * PG;
	post(2, &bad, &badlen, 1, true);
	virtio_kick(vd, 2);
	assert_true(virtio_bar_read(vd, C(device_status), 1) & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_false(is_hole(DATA, PG));
	virtio_bar_write(vd, C(device_status), 1, 0);
	virtio_balloon_destroy(vd);
	discard_free(&rec);
}

static void test_report_dontneed(void **state) { report_test(BALLOON_DONTNEED); }
static void test_report_free(void **state) { report_test(BALLOON_FREE); }

static void test_poison(void **state)
{
	struct virtio_dev *vd = make(NULL, true, BALLOON_DONTNEED);
	virtio_bar_write(vd, C(device_status), 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	virtio_bar_write(vd, VIRTIO_DEVCFG_OFF + 12, 4, 0xaaaaaaaa);   /* before DRIVER_OK */
	bring_up(vd, (1u << VIRTIO_BALLOON_F_PAGE_POISON) | (1u << VIRTIO_BALLOON_F_STATS_VQ) |
		     (1u << VIRTIO_BALLOON_F_REPORTING), 4);
	fill(DATA, 2 * MiB, 0xaa);
	uint64_t g = DATA;
	uint32_t l = 2 * MiB;
	post(3, &g, &l, 1, true);
	virtio_kick(vd, 3);
	assert_true(used(3));
	assert_false(is_hole(DATA, 2 * MiB));                         /* kept: poison_val != 0 */
	assert_int_equal(*(uint8_t *)mem_ptr(&mem, DATA, 1), 0xaa);
	struct balloon_info i;
	balloon_get_info(vd, &i);
	assert_true(i.poison && i.poison_val == 0xaaaaaaaa);
	assert_int_equal(i.kept_bytes, 2 * MiB);
	/* Inflated pages are discarded anyway (the driver rewrites them). */
	uint32_t pfn = DATA / PG;
	post_pfns(0, &pfn, 1);
	virtio_kick(vd, 0);
	assert_true(is_hole(DATA, PG));
	/* poison_val 0 (init_on_free): zeros are fine, reports discard. */
	virtio_bar_write(vd, C(device_status), 1, 0);
	virtio_bar_write(vd, VIRTIO_DEVCFG_OFF + 12, 4, 0);
	bring_up(vd, (1u << VIRTIO_BALLOON_F_PAGE_POISON) | (1u << VIRTIO_BALLOON_F_STATS_VQ) |
		     (1u << VIRTIO_BALLOON_F_REPORTING), 4);
	post(3, &g, &l, 1, true);
	virtio_kick(vd, 3);
	assert_true(used(3));
	assert_true(is_hole(DATA, 2 * MiB));
	virtio_balloon_destroy(vd);
}

static void test_stats(void **state)
{
	struct virtio_dev *vd = make(NULL, false, BALLOON_DONTNEED);
	bring_up(vd, 1u << VIRTIO_BALLOON_F_STATS_VQ, 3);
	struct { uint16_t tag; uint64_t val; } __attribute__((packed)) e[2] = {
		{ VIRTIO_BALLOON_S_MEMFREE, 100 * MiB }, { VIRTIO_BALLOON_S_MEMTOT, 200 * MiB },
	};
	memcpy(mem_ptr(&mem, BUF, sizeof(e)), e, sizeof(e));
	uint64_t g = BUF;
	uint32_t l = sizeof(e);
	stats_calls = 0;
	post(2, &g, &l, 1, false);
	virtio_kick(vd, 2);
	assert_false(used(2));                    /* held until the host asks */
	assert_int_equal(stats_calls, 1);
	assert_true(last_info.have_stats && last_info.stat[VIRTIO_BALLOON_S_MEMFREE] == 100 * MiB);
	assert_true(balloon_request_stats(vd));
	assert_true(used(2));
	assert_false(balloon_request_stats(vd));  /* the guest has not answered yet */
	e[0].val = 50 * MiB;
	memcpy(mem_ptr(&mem, BUF, sizeof(e)), e, sizeof(e));
	post(2, &g, &l, 1, false);
	virtio_kick(vd, 2);
	struct balloon_info i;
	balloon_get_info(vd, &i);
	assert_true(i.stat[VIRTIO_BALLOON_S_MEMFREE] == 50 * MiB);
	assert_int_equal(i.stats_mask, (1u << VIRTIO_BALLOON_S_MEMFREE) | (1u << VIRTIO_BALLOON_S_MEMTOT));
	virtio_balloon_destroy(vd);
}

/* ---- state ------------------------------------------------------------------------- */

/* The balloon's fields in its section (balloon.c): the format, pinned. */
enum {
	T_OPT_SIZE = VIRTIO_STATE_BACKEND, T_OPT_FLAGS, T_OPT_STATS_INTERVAL,
	T_NUM_PAGES, T_ACTUAL, T_POISON_VAL, T_STATS_HELD, T_STATS_HEAD,
	T_INFLATED, T_DEFLATED, T_REPORTS, T_REPORTED, T_DISCARDED, T_KEPT, T_REFUSED,
	T_DISCARD_ERRORS, T_DISCARD_NS, T_HAVE_STATS, T_STATS_AGE, T_STATS_MASK, T_STATS, T_RECORD,
	T_CONFIG_PENDING,
};

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
	err[0] = '\0';
	return state_load(state_buf_source(b), &l, 1, err, n);
}

static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static void wr32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

/* Rewrite the first section of a saved stream as a hostile writer would,
 * with valid checksums: field `tag` takes `val` (its own width), or, with
 * tag 0, the section's version becomes val. */
static void patch(struct state_buf *b, uint16_t tag, uint64_t val)
{
	uint8_t *h = b->data + 16;                /* after "EMBRSTAT" and the format version */
	uint64_t plen;
	memcpy(&plen, h + 32, 8);
	uint8_t *p = h + 48;
	if (!tag) {
		wr32(h + 24, (uint32_t)val);
	} else {
		bool found = false;
		for (uint64_t at = 0; at < plen;) {
			uint16_t t;
			memcpy(&t, p + at, 2);
			uint32_t len = rd32(p + at + 4);
			if (t == tag) {
				assert_true(len <= 8);
				memcpy(p + at + 8, &val, len);
				found = true;
				break;
			}
			at += 8 + (len + 7) / 8 * 8;
		}
		assert_true(found);
	}
	wr32(h + 40, (uint32_t)crc32(crc32(0L, Z_NULL, 0), p, (uInt)plen));
	wr32(h + 44, (uint32_t)crc32(crc32(0L, Z_NULL, 0), h, 44));
}

#define WANT_ALL ((1u << VIRTIO_BALLOON_F_STATS_VQ) | (1u << VIRTIO_BALLOON_F_REPORTING) | \
		  (1u << VIRTIO_BALLOON_F_DEFLATE_ON_OOM))

/* A running balloon with history: 3 pages inflated (in the record), 2 MiB
 * reported, a target, actual, the driver's statistics buffer held. */
static struct virtio_dev *busy_balloon(struct discard_map *rec, enum balloon_discard mode)
{
	struct virtio_dev *vd = make(rec, true, mode);
	bring_up(vd, WANT_ALL, 4);
	fill(DATA, 4 * MiB, 0x5a);
	uint32_t pfns[] = { DATA / PG, DATA / PG + 1, DATA / PG + 2 };
	post_pfns(0, pfns, 3);
	virtio_kick(vd, 0);
	assert_true(used(0));
	virtio_bar_write(vd, VIRTIO_DEVCFG_OFF + 4, 4, 3);
	uint64_t g = DATA + 2 * MiB;
	uint32_t l = 2 * MiB;
	post(3, &g, &l, 1, true);
	virtio_kick(vd, 3);
	assert_true(wait_used(3));
	struct { uint16_t tag; uint64_t val; } __attribute__((packed)) e[1] = { { VIRTIO_BALLOON_S_MEMFREE, 77 * MiB } };
	memcpy(mem_ptr(&mem, 2 * QSTRIDE + BUF, sizeof(e)), e, sizeof(e));
	g = 2 * QSTRIDE + BUF;
	l = sizeof(e);
	post(2, &g, &l, 1, false);
	virtio_kick(vd, 2);
	assert_false(used(2));                                      /* held */
	assert_int_equal(balloon_set_target(vd, 12 * MiB), 0);
	return vd;
}

/* Save a balloon that has been working, load it into a fresh one: the
 * target, actual, counters, guest statistics and the record carry over,
 * the held statistics buffer is the new device's to give back, and the
 * queues go on where they were. */
static void test_state_roundtrip(void **state)
{
	struct discard_map ra, rb;
	assert_int_equal(discard_init(&ra, mem.size), 0);
	assert_int_equal(discard_init(&rb, mem.size), 0);
	struct virtio_dev *a = busy_balloon(&ra, BALLOON_DONTNEED);
	struct balloon_info ia, ib;
	balloon_get_info(a, &ia);
	struct state_buf b;
	assert_int_equal(save_dev(a, &b), 0);
	virtio_balloon_destroy(a);

	struct virtio_dev *c = make(&rb, true, BALLOON_FREE);      /* the mode is this host's */
	char err[256];
	assert_int_equal(load_dev(c, &b, err, sizeof(err)), 0);
	balloon_get_info(c, &ib);
	assert_int_equal(ib.target_bytes, 12 * MiB);
	assert_int_equal(ib.actual_bytes, 3 * PG);
	assert_int_equal(ib.inflated_pages, 3);
	assert_int_equal(ib.reports, 1);
	assert_int_equal(ib.reported_bytes, 2 * MiB);
	assert_int_equal(ib.discarded_bytes, ia.discarded_bytes);
	assert_true(ib.features == ia.features && ib.driver_ok);
	assert_true(ib.have_stats && ib.stat[VIRTIO_BALLOON_S_MEMFREE] == 77 * MiB);
	assert_int_equal(ib.stats_mask, 1u << VIRTIO_BALLOON_S_MEMFREE);
	assert_int_equal(discard_pages(&rb), discard_pages(&ra));
	assert_true(discard_test(&rb, DATA + 2 * PG) && discard_test(&rb, DATA + 2 * MiB) && !discard_test(&rb, DATA + 3 * PG));
	/* The held buffer: asking for statistics returns it. */
	assert_true(balloon_request_stats(c));
	assert_true(used(2));
	/* The queues work on: inflate one more page, report in FREE mode. */
	uint32_t pfn = DATA / PG + 3;
	post_pfns(0, &pfn, 1);
	virtio_kick(c, 0);
	assert_true(used(0));
	assert_true(is_hole(DATA + 3 * PG, PG));
	fill(DATA + 8 * MiB, 2 * MiB, 0x66);
	uint64_t g = DATA + 8 * MiB;
	uint32_t l = 2 * MiB;
	post(3, &g, &l, 1, true);
	virtio_kick(c, 3);
	assert_true(wait_used(3));
	assert_true(is_hole(DATA + 8 * MiB, 2 * MiB));
	balloon_get_info(c, &ib);
	assert_int_equal(ib.inflated_pages, 4);
	assert_int_equal(ib.reports, 2);
	/* Two saves of the same state are equal (the statistics' age aside). */
	struct state_buf b2, b3;
	assert_int_equal(save_dev(c, &b2), 0);
	assert_int_equal(save_dev(c, &b3), 0);
	char msg[256];
	assert_int_equal(state_compare(&b2, &b3, NULL, msg, sizeof(msg)), 0);
	state_buf_free(&b);
	state_buf_free(&b2);
	state_buf_free(&b3);
	virtio_balloon_destroy(c);
	discard_free(&ra);
	discard_free(&rb);
}

/* FREE mode: a report the thread has not returned yet is returned by
 * quiesce (the VM paused for a save), so the state holds none in flight. */
static void test_state_quiesce_free(void **state)
{
	struct discard_map rec;
	assert_int_equal(discard_init(&rec, mem.size), 0);
	struct virtio_dev *vd = make(&rec, true, BALLOON_FREE);
	bring_up(vd, 1u << VIRTIO_BALLOON_F_REPORTING, 3);
	const struct devstate_ops *ops = virtio_state_ops(vd);
	for (int round = 0; round < 20; round++) {
		fill(DATA, 8 * MiB, 0x42);
		uint64_t g[4] = { DATA, DATA + 2 * MiB, DATA + 4 * MiB, DATA + 6 * MiB };
		uint32_t l[4] = { 2 * MiB, 2 * MiB, 2 * MiB, 2 * MiB };
		post(2, g, l, 4, true);
		virtio_kick(vd, 2);
		ops->quiesce(vd);
		/* No waiting: it is back and punched now. */
		assert_true(used(2));
		assert_true(is_hole(DATA, 8 * MiB));
		struct state_buf b;
		assert_int_equal(save_dev(vd, &b), 0);
		state_buf_free(&b);
		ops->resume(vd);
	}
	struct balloon_info i;
	balloon_get_info(vd, &i);
	assert_int_equal(i.reports, 20);
	virtio_balloon_destroy(vd);
	discard_free(&rec);
}

/* A target set while the VM is paused for a save: no interrupt then (it
 * would be lost with the saved interrupt state), none for a statistics
 * request either; the interrupt goes out on the first kick after the load
 * elsewhere (or after resume here). */
static void test_state_pending_target(void **state)
{
	struct discard_map ra, rb;
	assert_int_equal(discard_init(&ra, mem.size), 0);
	assert_int_equal(discard_init(&rb, mem.size), 0);
	struct virtio_dev *a = busy_balloon(&ra, BALLOON_DONTNEED);
	/* MSI-X on, entry 0 (the config vector) unmasked. */
	a->pci.msix.table[0].ctrl = 0;
	pci_cfg_write(&a->pci, a->pci.msix.cap + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE);
	virtio_bar_write(a, C(msix_config), 2, 0);
	const struct devstate_ops *ops = virtio_state_ops(a);
	ops->quiesce(a);
	int fired = sink.fired[0];
	assert_int_equal(balloon_set_target(a, 20 * MiB), 0);
	assert_int_equal(sink.fired[0], fired);
	assert_false(balloon_request_stats(a));
	assert_false(used(2));
	struct state_buf b;
	assert_int_equal(save_dev(a, &b), 0);
	/* Resume here: the kicks of resume (the test runs them) send it. */
	ops->resume(a);
	virtio_kick(a, 0);
	assert_int_equal(sink.fired[0], fired + 1);
	virtio_kick(a, 0);
	assert_int_equal(sink.fired[0], fired + 1);                 /* once */
	virtio_balloon_destroy(a);
	/* Elsewhere: the loaded device owes it too. */
	struct virtio_dev *c = make(&rb, true, BALLOON_DONTNEED);
	char err[256];
	assert_int_equal(load_dev(c, &b, err, sizeof(err)), 0);
	assert_int_equal(virtio_bar_read(c, VIRTIO_DEVCFG_OFF, 4), 20 * MiB / PG);
	fired = sink.fired[0];
	virtio_kick(c, 1);
	assert_int_equal(sink.fired[0], fired + 1);
	assert_true(balloon_request_stats(c));
	state_buf_free(&b);
	virtio_balloon_destroy(c);
	discard_free(&ra);
	discard_free(&rb);
}

enum hostile { H_VERSION, H_TARGET, H_FLAGS, H_FREE_ALONE, H_FEATURES, H_SIZE, H_HEAD, H_HELD, H_HAVE,
	       H_MASK, H_KEPT, H_UNALIGNED, H_RECORD, H_NO_RECORD, H_PENDING, H_COUNT };

/* A stream with a field out of range, or for another balloon, is refused
 * with a message naming it, and the device stays as it was. */
static void test_state_hostile(void **state)
{
	static const char *const want[H_COUNT] = {
		[H_VERSION] = "holds no balloon state", [H_TARGET] = "target of", [H_FLAGS] = "options out of range",
		[H_FREE_ALONE] = "options out of range", [H_FEATURES] = "not offered here", [H_SIZE] = "the balloon was",
		[H_HEAD] = "statistics buffer 16", [H_HELD] = "statistics buffer flag", [H_HAVE] = "guest statistics",
		[H_MASK] = "guest statistics", [H_KEPT] = "kept", [H_UNALIGNED] = "whole pages",
		[H_RECORD] = "record", [H_NO_RECORD] = "record", [H_PENDING] = "pending config flag",
	};
	struct discard_map ra;
	assert_int_equal(discard_init(&ra, mem.size), 0);
	struct virtio_dev *a = busy_balloon(&ra, BALLOON_DONTNEED);
	for (unsigned h = 0; h < H_COUNT; h++) {
		struct state_buf b;
		assert_int_equal(save_dev(a, &b), 0);
		struct discard_map rb;
		assert_int_equal(discard_init(&rb, h == H_RECORD ? mem.size - 64 * PG : mem.size), 0);
		struct balloon_opts o = { .size = 8 * MiB, .reporting = true, .deflate_on_oom = true };
		switch (h) {
		case H_VERSION: patch(&b, 0, 1); break;
		case H_TARGET: patch(&b, T_NUM_PAGES, mem.size / PG + 1); break;
		case H_FLAGS: patch(&b, T_OPT_FLAGS, 0x83); break;
		case H_FREE_ALONE: patch(&b, T_OPT_FLAGS, 4); break;
		case H_FEATURES: o.deflate_on_oom = false; break;
		case H_SIZE: o.size = 16 * MiB; break;
		case H_HEAD: patch(&b, T_STATS_HEAD, 16); break;    /* the stats queue has 16 entries */
		case H_HELD: patch(&b, T_STATS_HELD, 2); break;
		case H_HAVE: patch(&b, T_HAVE_STATS, 2); break;
		case H_MASK: patch(&b, T_STATS_MASK, 1u << 16); break;
		case H_KEPT: patch(&b, T_KEPT, 4 * MiB); break;
		case H_UNALIGNED: patch(&b, T_DISCARDED, 4097); break;
		case H_PENDING: patch(&b, T_CONFIG_PENDING, 7); break;
		}
		struct virtio_dev *c = make_opts(h == H_NO_RECORD ? NULL : &rb, &o);
		char err[256];
		int r = load_dev(c, &b, err, sizeof(err));
		if (r == 0 || !strstr(err, want[h]))
			fail_msg("case %u: load returned %d, \"%s\" (wanted \"%s\")", h, r, err, want[h]);
		struct balloon_info i;
		balloon_get_info(c, &i);
		assert_true(!i.driver_ok && i.inflated_pages == 0 && i.target_bytes == o.size);
		assert_int_equal(discard_pages(&rb), 0);
		virtio_balloon_destroy(c);
		discard_free(&rb);
		state_buf_free(&b);
	}
	virtio_balloon_destroy(a);
	discard_free(&ra);
}

static void test_option_string(void **state)
{
	struct balloon_config b, back;
	char s[160], err[256];
	const char *specs[] = { "size=64M,deflate-on-oom,free-page-reporting=free,stats-interval=3", "",
				"size=12K,free-page-reporting", "stats-interval=0" };
	for (unsigned i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
		assert_int_equal(parse_balloon(specs[i], &b, err, sizeof(err)), 0);
		balloon_config_str(&b, s, sizeof(s));
		assert_int_equal(parse_balloon(s, &back, err, sizeof(err)), 0);
		assert_memory_equal(&b, &back, sizeof(b));
	}
	b.enabled = false;
	balloon_config_str(&b, s, sizeof(s));
	assert_string_equal(s, "(none)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_discard_map),
		cmocka_unit_test(test_discard_skippable),
		cmocka_unit_test(test_pfn_runs),
		cmocka_unit_test(test_report_range),
		cmocka_unit_test(test_parse_stats),
		cmocka_unit_test(test_option),
		cmocka_unit_test(test_inflate_deflate),
		cmocka_unit_test(test_target),
		cmocka_unit_test(test_report_dontneed),
		cmocka_unit_test(test_report_free),
		cmocka_unit_test(test_poison),
		cmocka_unit_test(test_stats),
		cmocka_unit_test(test_discard_export_import),
		cmocka_unit_test(test_option_string),
		cmocka_unit_test(test_state_roundtrip),
		cmocka_unit_test(test_state_quiesce_free),
		cmocka_unit_test(test_state_pending_target),
		cmocka_unit_test(test_state_hostile),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
