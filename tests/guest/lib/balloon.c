/* Guest-kit virtio-balloon driver and block allocator (see balloon.h). */
#include "balloon.h"

#define PFN_BATCH 256                     /* PFNs per inflate/deflate buffer (Linux's) */
#define TIMEOUT_MS 5000
#define CONFIG_POLL_MS 50

static uint8_t rings[4][VRING_BYTES] __attribute__((aligned(4096)));
static uint32_t pfn_buf[PFN_BATCH];
static struct virtio_balloon_stat stat_buf[8];

/* ---- allocator ------------------------------------------------------------- */

static void set_state(struct pga *a, unsigned i, enum pga_state s)
{
	a->count[a->st[i]]--;
	a->st[i] = (uint8_t)s;
	a->count[s]++;
}

void pga_init(struct pga *a, uint64_t start, uint64_t end)
{
	memset(a, 0, sizeof(*a));
	a->base = ALIGN_UP(start, PGA_BLOCK);
	uint64_t top = ALIGN_DOWN(end, PGA_BLOCK);
	a->n = top > a->base ? (unsigned)((top - a->base) / PGA_BLOCK) : 0;
	if (a->n > PGA_MAX_BLOCKS)
		a->n = PGA_MAX_BLOCKS;
	a->count[BS_FREE] = a->n;             /* st[] is all BS_FREE (0) */
}

unsigned pga_index(const struct pga *a, uint64_t addr)
{
	return (unsigned)((addr - a->base) / PGA_BLOCK);
}

uint64_t pga_alloc(struct pga *a)
{
	/* Like the buddy allocator after page_reporting: reported blocks sit
	 * at the tail of the free list, so hot (unreported) ones go first. */
	for (int pass = 0; pass < 2; pass++) {
		enum pga_state want = pass ? BS_REPORTED : BS_FREE;
		if (!a->count[want])
			continue;
		for (unsigned i = 0; i < a->n; i++) {
			if (a->st[i] == want) {
				set_state(a, i, BS_USED);
				a->allocs++;
				return a->base + (uint64_t)i * PGA_BLOCK;
			}
		}
	}
	return 0;
}

void pga_free(struct pga *a, uint64_t addr)
{
	unsigned i = pga_index(a, addr);
	if (i >= a->n || a->st[i] != BS_USED)
		return;
	set_state(a, i, BS_FREE);
	if (!a->pending_since_ms)
		a->pending_since_ms = uptime_ms() ? uptime_ms() : 1;
}

/* ---- the device ----------------------------------------------------------------- */

bool gb_has(const struct gballoon *b, unsigned feature)
{
	return b->dev.features >> feature & 1;
}

static volatile struct virtio_balloon_config *cfg(struct gballoon *b)
{
	return (volatile struct virtio_balloon_config *)b->dev.devcfg;
}

static bool wait(struct gballoon *b, struct gvq *q, uint64_t timeout_ms)
{
	uint32_t id, len;
	if (gvq_wait(q, &id, &len, timeout_ms))
		return true;
	b->failed = true;
	return false;
}

static void fill_stats(struct gballoon *b)
{
	const struct pga *a = b->a;
	uint64_t free_ = (uint64_t)(a->count[BS_FREE] + a->count[BS_REPORTED]) * PGA_BLOCK;
	struct virtio_balloon_stat s[] = {
		{ VIRTIO_BALLOON_S_SWAP_IN, 0 }, { VIRTIO_BALLOON_S_SWAP_OUT, 0 },
		{ VIRTIO_BALLOON_S_MAJFLT, 0 }, { VIRTIO_BALLOON_S_MINFLT, a->allocs },
		{ VIRTIO_BALLOON_S_MEMFREE, free_ }, { VIRTIO_BALLOON_S_MEMTOT, (uint64_t)a->n * PGA_BLOCK },
		{ VIRTIO_BALLOON_S_AVAIL, free_ }, { VIRTIO_BALLOON_S_CACHES, 0 },
	};
	memcpy(stat_buf, s, sizeof(s));
}

static void post_stats(struct gballoon *b)
{
	struct gvq *q = &b->dev.vq[b->q_stats];
	fill_stats(b);
	gvq_desc(q, 0, stat_buf, sizeof(stat_buf), 0, 0);
	gvq_publish(q, 0);
	gvq_kick(q);
	b->stats_sent++;
}

static bool setup(struct gballoon *b, uint64_t want, uint32_t poison_val)
{
	struct vdev *d = &b->dev;
	want |= 1ull << VIRTIO_F_VERSION_1;
	if (!vdev_negotiate(d, want)) {
		printf("# balloon: FEATURES_OK refused (wanted %#lx)\n", (unsigned long)want);
		return false;
	}
	if (d->has_msix)
		d->common->msix_config = 0;
	if (gb_has(b, VIRTIO_BALLOON_F_PAGE_POISON))
		cfg(b)->poison_val = poison_val;          /* before DRIVER_OK (§5.5.6.4.1) */
	/* §5.5.2: the queues that exist, numbered densely. */
	unsigned q = 0;
	bool ok = vdev_queue(d, q++, 16, rings[0], VIRTIO_MSI_NO_VECTOR) &&
		  vdev_queue(d, q++, 16, rings[1], VIRTIO_MSI_NO_VECTOR);
	b->q_stats = b->q_report = -1;
	if (gb_has(b, VIRTIO_BALLOON_F_STATS_VQ)) {
		b->q_stats = (int)q;
		ok = ok && vdev_queue(d, q, 16, rings[q], VIRTIO_MSI_NO_VECTOR);
		q++;
	}
	if (gb_has(b, VIRTIO_BALLOON_F_REPORTING)) {
		b->q_report = (int)q;
		ok = ok && vdev_queue(d, q, REPORT_CAPACITY, rings[q], VIRTIO_MSI_NO_VECTOR);
		q++;
	}
	if (!ok) {
		printf("# balloon: setting up the queues failed (%u queues, stats %d, report %d)\n", d->common->num_queues, b->q_stats, b->q_report);
		return false;
	}
	vdev_driver_ok(d);
	b->actual = 0;
	cfg(b)->actual = 0;
	if (b->q_stats >= 0)
		post_stats(b);
	return !(vdev_status(d) & VIRTIO_CONFIG_S_NEEDS_RESET);
}

bool gb_init(struct gballoon *b, struct pga *a, uint64_t want, uint32_t poison_val, uint8_t config_vector)
{
	memset(b, 0, sizeof(*b));
	b->a = a;
	b->report_delay_ms = 2000;
	b->config_vector = config_vector;
	if (!vdev_open(&b->dev, VIRTIO_ID_BALLOON, 0)) {
		printf("# balloon: no virtio-balloon on PCI\n");
		return false;
	}
	/* Without MSI-X (QEMU's balloon has none) the target is polled only. */
	if (b->dev.has_msix) {
		msix_route(&b->dev.msix, 0, config_vector);
		msix_enable(&b->dev.msix, true);
	}
	return setup(b, want, poison_val);
}

bool gb_reinit(struct gballoon *b, uint64_t want, uint32_t poison_val)
{
	b->failed = false;
	return setup(b, want, poison_val);
}

bool gb_report_ranges(struct gballoon *b, const uint64_t *addr, const uint32_t *len, unsigned n,
		      uint64_t timeout_ms)
{
	if (b->q_report < 0 || !n || n > REPORT_CAPACITY)
		return false;
	struct gvq *q = &b->dev.vq[b->q_report];
	for (unsigned i = 0; i < n; i++)
		gvq_desc(q, (uint16_t)i, (const void *)(uintptr_t)addr[i], len[i],
			 VRING_DESC_F_WRITE | (i + 1 < n ? VRING_DESC_F_NEXT : 0), (uint16_t)(i + 1));
	gvq_publish(q, 0);
	gvq_kick(q);
	return wait(b, q, timeout_ms);
}

/* One pass, as page_reporting_cycle: isolate up to 32 free blocks, report
 * them, put them back marked reported; until none is left. */
unsigned gb_report_now(struct gballoon *b)
{
	struct pga *a = b->a;
	uint64_t addr[REPORT_CAPACITY];
	uint32_t len[REPORT_CAPACITY];
	unsigned total = 0, i = 0;
	a->pending_since_ms = 0;
	while (a->count[BS_FREE] && !b->failed) {
		unsigned n = 0;
		for (; i < a->n && n < REPORT_CAPACITY; i++) {
			if (a->st[i] != BS_FREE)
				continue;
			set_state(a, i, BS_ISOLATED);
			addr[n] = a->base + (uint64_t)i * PGA_BLOCK;
			len[n++] = PGA_BLOCK;
		}
		if (!n)
			break;
		bool ok = gb_report_ranges(b, addr, len, n, TIMEOUT_MS);
		for (unsigned k = 0; k < n; k++)
			set_state(a, pga_index(a, addr[k]), ok ? BS_REPORTED : BS_FREE);
		if (!ok) {
			b->report_timeouts++;
			break;
		}
		total += n;
	}
	b->report_passes++;
	b->reported_blocks += total;
	b->last_report_done_ms = uptime_ms();
	return total;
}

bool gb_send_pfns(struct gballoon *b, bool inflate, const uint32_t *pfns, unsigned bytes, uint64_t timeout_ms)
{
	struct gvq *q = &b->dev.vq[inflate ? 0 : 1];
	gvq_desc(q, 0, pfns, bytes, 0, 0);
	gvq_publish(q, 0);
	gvq_kick(q);
	return wait(b, q, timeout_ms);
}

/* The 512 PFNs of one block, in buffers of 256. */
static bool send_block(struct gballoon *b, bool inflate, uint64_t block)
{
	for (unsigned part = 0; part < PGA_BLOCK / 4096 / PFN_BATCH; part++) {
		for (unsigned k = 0; k < PFN_BATCH; k++)
			pfn_buf[k] = (uint32_t)(block / 4096) + part * PFN_BATCH + k;
		if (!gb_send_pfns(b, inflate, pfn_buf, sizeof(pfn_buf), TIMEOUT_MS))
			return false;
	}
	return true;
}

static void adjust(struct gballoon *b)
{
	struct pga *a = b->a;
	const uint32_t per = PGA_BLOCK / 4096;
	while (!b->failed && b->num_pages >= b->actual + per) {
		uint64_t blk = pga_alloc(a);
		if (!blk)
			break;                           /* nothing left to give */
		set_state(a, pga_index(a, blk), BS_BALLOON);
		if (!send_block(b, true, blk))
			break;
		b->actual += per;
		b->inflated_pages += per;
		cfg(b)->actual = b->actual;
	}
	while (!b->failed && b->actual >= per && b->num_pages <= b->actual - per) {
		unsigned i = 0;
		while (i < a->n && a->st[i] != BS_BALLOON)
			i++;
		if (i == a->n)
			break;
		if (!send_block(b, false, a->base + (uint64_t)i * PGA_BLOCK))
			break;
		set_state(a, i, BS_FREE);                /* a hole: reads as zeros */
		b->actual -= per;
		b->deflated_pages += per;
		cfg(b)->actual = b->actual;
	}
}

void gb_poll(struct gballoon *b)
{
	uint64_t now = uptime_ms();
	if (b->failed)
		return;
	/* Statistics: the device used our buffer to ask for new ones. */
	if (b->q_stats >= 0) {
		uint32_t id, len;
		if (gvq_used(&b->dev.vq[b->q_stats], &id, &len))
			post_stats(b);
	}
	/* The target: on a configuration interrupt, and now and then anyway. */
	long irqs = irq_count(b->config_vector);
	if (irqs != b->config_irqs_seen || now >= b->next_config_poll_ms) {
		b->config_irqs_seen = irqs;
		b->next_config_poll_ms = now + CONFIG_POLL_MS;
		b->num_pages = cfg(b)->num_pages;
		adjust(b);
	}
	if (b->q_report >= 0 && b->a->pending_since_ms && now >= b->a->pending_since_ms + b->report_delay_ms)
		gb_report_now(b);
}
