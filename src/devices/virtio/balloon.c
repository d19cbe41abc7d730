#include "devices/virtio/balloon.h"

#include <errno.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "sandbox/sandbox.h"

/* What each queue is for; the numbering depends on the features (§5.5.2). */
enum role { R_NONE, R_INFLATE, R_DEFLATE, R_STATS, R_REPORT };

/* Ranges the discard thread may hold at once (FREE mode). */
#define PENDING_RANGES 4096

struct range {
	uint64_t off, len;
};

struct vballoon {
	struct virtio_dev vd;
	struct virtio_balloon_config cfg;
	struct balloon_opts o;
	struct discard_map *rec;
	enum role role[VIRTIO_MAX_QUEUES];
	unsigned report_q;

	/* The buffer the driver left in the stats queue (§5.5.6.3). */
	bool stats_held;
	uint16_t stats_head;
	int stats_timer;

	struct balloon_info c;        /* counters and guest stats; vd.lock */
	uint64_t told_actual_ns;      /* last on_stats call for a change of actual */
	/* A new target while the VM was paused for a save: its interrupt
	 * would be lost with the paused VM's interrupt state, so it goes out
	 * on the first kick after resume (or after the load elsewhere). */
	bool config_pending;

	/* FREE mode: the discard thread. Lock order: vd.lock, then jlock. */
	bool worker_started;
	pthread_t worker;
	pthread_mutex_t jlock;
	pthread_cond_t jwork, jidle;
	bool jstop, jbusy, jstalled;
	uint64_t jgen;                /* bumped by reset: older work is not returned */
	struct range *pend;           /* PENDING_RANGES */
	unsigned npend;
	uint16_t heads[BALLOON_QUEUE];
	unsigned nheads;
	/* Buffers the thread punched, not yet returned (it returns them
	 * once it has vd.lock; a quiesce or reset may take them first). */
	uint16_t done[BALLOON_QUEUE];
	unsigned ndone;
};

static const char *const stat_names[BALLOON_STATS_MAX] = {
	"swap_in", "swap_out", "major_faults", "minor_faults", "free_memory", "total_memory",
	"available_memory", "disk_caches", "hugetlb_allocations", "hugetlb_failures",
	"oom_kills", "alloc_stalls", "async_scans", "direct_scans", "async_reclaims", "direct_reclaims",
};

const char *balloon_stat_name(unsigned tag)
{
	return tag < BALLOON_STATS_MAX ? stat_names[tag] : NULL;
}

/* ---- Parsers -------------------------------------------------------------- */

struct run_state {
	const struct guest_mem *m;
	void (*fn)(void *, uint64_t, uint64_t);
	void *opaque;
	uint64_t off, len;            /* the run being built; len 0 = none */
	uint64_t *refused, taken;
};

static void run_flush(struct run_state *s)
{
	if (s->len)
		s->fn(s->opaque, s->off, s->len);
	s->len = 0;
}

static void run_add(struct run_state *s, uint32_t pfn)
{
	uint64_t off;
	if (mem_range_offset(s->m, (uint64_t)pfn * BALLOON_PAGE, BALLOON_PAGE, &off)) {
		(*s->refused)++;
		return;
	}
	s->taken++;
	/* Adjacent in the memfd and in guest-physical space: one run. */
	if (s->len && off == s->off + s->len &&
	    mem_gpa_of(s->m, s->off) + s->len == (uint64_t)pfn * BALLOON_PAGE) {
		s->len += BALLOON_PAGE;
		return;
	}
	run_flush(s);
	s->off = off;
	s->len = BALLOON_PAGE;
}

uint64_t balloon_pfn_runs(const struct guest_mem *m, const struct iovec *iov, unsigned n,
			  void (*fn)(void *opaque, uint64_t off, uint64_t len), void *opaque,
			  uint64_t *refused)
{
	struct run_state s = { .m = m, .fn = fn, .opaque = opaque, .refused = refused };
	uint8_t part[4];
	unsigned have = 0;
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *p = iov[i].iov_base;
		size_t len = iov[i].iov_len;
		while (len) {
			if (have == 0 && len >= 4) {
				uint32_t pfn;
				memcpy(&pfn, p, 4);       /* le32 on a little-endian host */
				run_add(&s, pfn);
				p += 4;
				len -= 4;
				continue;
			}
			part[have++] = *p++;
			len--;
			if (have == 4) {
				uint32_t pfn;
				memcpy(&pfn, part, 4);
				run_add(&s, pfn);
				have = 0;
			}
		}
	}
	if (have)
		(*refused)++;             /* a PFN cut short */
	run_flush(&s);
	return s.taken;
}

int balloon_report_range(const struct guest_mem *m, const struct iovec *iov, uint64_t *off, uint64_t *len)
{
	const uint8_t *p = iov->iov_base;
	if (!m->host || p < m->host || (uint64_t)(p - m->host) >= m->size)
		return -EINVAL;
	uint64_t o = (uint64_t)(p - m->host), l = iov->iov_len;
	if ((o | l) % BALLOON_PAGE || l == 0 || l > m->size - o)
		return -EINVAL;
	*off = o;
	*len = l;
	return 0;
}

unsigned balloon_parse_stats(const struct iovec *iov, unsigned n, uint64_t stat[BALLOON_STATS_MAX], uint32_t *mask)
{
	uint8_t e[10];
	unsigned have = 0, count = 0;
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *p = iov[i].iov_base;
		for (size_t k = 0; k < iov[i].iov_len; k++) {
			e[have++] = p[k];
			if (have < sizeof(e))
				continue;
			have = 0;
			count++;
			uint16_t tag;
			uint64_t val;
			memcpy(&tag, e, 2);
			memcpy(&val, e + 2, 8);
			if (tag < BALLOON_STATS_MAX) {    /* §5.5.6.3.1: ignore the rest */
				stat[tag] = val;
				*mask |= 1u << tag;
			}
		}
	}
	return count;
}

/* ---- Discarding -------------------------------------------------------------- */

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void add(uint64_t *counter, uint64_t v)
{
	__atomic_add_fetch(counter, v, __ATOMIC_RELAXED);
}

/* Punch memfd [off, off+len) and record it. Any thread. */
static void discard(struct vballoon *b, uint64_t off, uint64_t len)
{
	uint64_t t = mono_ns();
	int r = mem_discard(b->vd.mem, off, len);
	add(&b->c.discard_ns, mono_ns() - t);
	if (r) {
		add(&b->c.discard_errors, 1);
		if (__atomic_load_n(&b->c.discard_errors, __ATOMIC_RELAXED) <= 3)
			log_warn("%s: discarding %#llx+%#llx: %s", b->vd.name, (unsigned long long)off,
				 (unsigned long long)len, strerror(-r));
		return;
	}
	if (b->rec)
		discard_set(b->rec, off, len);
	/* The page changed (it is zeros now): a migration in progress must
	 * send it again, a diff snapshot must hold it. A run never crosses a
	 * region, so its guest-physical range is linear. */
	mem_mark_dirty(b->vd.mem, mem_gpa_of(b->vd.mem, off), len);
	add(&b->c.discarded_bytes, len);
}

static void inflate_run(void *opaque, uint64_t off, uint64_t len)
{
	discard(opaque, off, len);
}

/* Deflated pages are the guest's again: it will write them (with
 * PAGE_POISON it must), so they leave the record. The memfd keeps its
 * hole until then: nothing to do on the host. */
static void deflate_run(void *opaque, uint64_t off, uint64_t len)
{
	struct vballoon *b = opaque;
	if (b->rec)
		discard_clear(b->rec, off, len);
}

/* §5.5.6.4: with PAGE_POISON and a non-zero poison_val the driver expects
 * reported pages to keep that value, and a discarded page reads back as
 * zeros: report them, but keep them. (poison_val 0 means init_on_free:
 * zeros are what the guest wants.) Inflated pages are discarded anyway:
 * the driver rewrites poison_val into a page when it deflates it. */
static bool keep_reports(const struct vballoon *b)
{
	return virtio_has_feature(&b->vd, VIRTIO_BALLOON_F_PAGE_POISON) && b->cfg.poison_val != 0;
}

/* ---- The FREE mode discard thread ----------------------------------------------- */

static int cmp_range(const void *a, const void *b)
{
	const struct range *x = a, *y = b;
	return x->off < y->off ? -1 : x->off > y->off;
}

/* Punch ranges r[0..n), sorted here, adjacent and overlapping ones merged. */
static void discard_ranges(struct vballoon *b, struct range *r, unsigned n)
{
	qsort(r, n, sizeof(*r), cmp_range);
	for (unsigned i = 0; i < n;) {
		uint64_t off = r[i].off, end = r[i].off + r[i].len;
		for (i++; i < n && r[i].off <= end; i++)
			if (r[i].off + r[i].len > end)
				end = r[i].off + r[i].len;
		discard(b, off, end - off);
	}
}

/* Return n report buffers to the driver (vd.lock held). */
static void return_reports(struct vballoon *b, const uint16_t *heads, unsigned n)
{
	if (!n || b->vd.broken || !(b->vd.status & VIRTIO_CONFIG_S_DRIVER_OK))
		return;
	for (unsigned i = 0; i < n; i++)
		vq_push(&b->vd.vq[b->report_q], heads[i], 0);
	add(&b->c.reports, n);
	virtio_queue_interrupt(&b->vd, b->report_q);
}

static void *worker_main(void *opaque)
{
	struct vballoon *b = opaque;
	/* Lazy, but not starved: a lower priority than the vCPUs and the
	 * loop (SCHED_IDLE made a report wait seconds on a busy host). */
	setpriority(PRIO_PROCESS, (id_t)gettid(), 5);
	struct range *r = malloc(PENDING_RANGES * sizeof(*r));
	uint16_t heads[BALLOON_QUEUE];
	pthread_mutex_lock(&b->jlock);
	while (r) {
		while (!b->jstop && !b->nheads)
			pthread_cond_wait(&b->jwork, &b->jlock);
		if (b->jstop)
			break;
		unsigned nr = b->npend, nh = b->nheads;
		uint64_t gen = b->jgen;
		memcpy(r, b->pend, nr * sizeof(*r));
		memcpy(heads, b->heads, nh * sizeof(*heads));
		b->npend = b->nheads = 0;
		b->jbusy = true;
		pthread_mutex_unlock(&b->jlock);

		discard_ranges(b, r, nr);

		/* Punched: the buffers wait in done[] for vd.lock, unless the
		 * driver reset the device meanwhile (then they are not its to
		 * get). */
		pthread_mutex_lock(&b->jlock);
		b->jbusy = false;
		if (gen == b->jgen) {
			memcpy(b->done + b->ndone, heads, nh * sizeof(*heads));
			b->ndone += nh;
		}
		pthread_cond_broadcast(&b->jidle);
		pthread_mutex_unlock(&b->jlock);

		pthread_mutex_lock(&b->vd.lock);
		pthread_mutex_lock(&b->jlock);
		unsigned nd = b->ndone;
		bool stalled = b->jstalled;
		memcpy(heads, b->done, nd * sizeof(*heads));
		b->ndone = 0;
		b->jstalled = false;
		pthread_mutex_unlock(&b->jlock);
		return_reports(b, heads, nd);
		/* Chains left in the ring while we were full: take them. */
		if (stalled && !b->vd.broken && (b->vd.status & VIRTIO_CONFIG_S_DRIVER_OK))
			eventfd_write(b->vd.kick_fd[b->report_q], 1);
		pthread_mutex_unlock(&b->vd.lock);
		pthread_mutex_lock(&b->jlock);
	}
	pthread_mutex_unlock(&b->jlock);
	free(r);
	return NULL;
}

/* Reset: forget queued work, wait for a punch in progress (it may still
 * land in pages the driver reported; it must not land after the driver
 * thinks the device is fresh). vd.lock held: the thread never needs it to
 * finish a punch. */
static void worker_reset(struct vballoon *b)
{
	if (!b->worker_started)
		return;
	pthread_mutex_lock(&b->jlock);
	b->jgen++;
	b->npend = b->nheads = b->ndone = 0;
	b->jstalled = false;
	while (b->jbusy)
		pthread_cond_wait(&b->jidle, &b->jlock);
	pthread_mutex_unlock(&b->jlock);
}

/* The VM paused for a save (vd.lock held): nothing may stay in flight, a
 * report the stream does not hold would never come back to the driver. So
 * wait for a punch in progress, punch what is queued here and now, and
 * return every buffer, as the thread would have; no new work comes while
 * quiesced (kicks wait for resume). A chain left in the ring when the
 * queue was full is the driver's still: the destination's (or resume's)
 * kick takes it. */
static void balloon_quiesce(struct virtio_dev *vd)
{
	struct vballoon *b = vd->backend;
	if (!b->worker_started)
		return;
	pthread_mutex_lock(&b->jlock);
	while (b->jbusy)
		pthread_cond_wait(&b->jidle, &b->jlock);
	discard_ranges(b, b->pend, b->npend);
	return_reports(b, b->heads, b->nheads);
	return_reports(b, b->done, b->ndone);
	b->npend = b->nheads = b->ndone = 0;
	b->jstalled = false;
	pthread_mutex_unlock(&b->jlock);
}

static void tell(struct vballoon *b);
static void info_locked(struct vballoon *b, struct balloon_info *out);

/* ---- Queues ------------------------------------------------------------------- */

static void pfn_queue(struct vballoon *b, unsigned q, bool inflate)
{
	struct virtio_dev *vd = &b->vd;
	struct virtq *vq = &vd->vq[q];
	struct iovec iov[BALLOON_IOV_MAX];
	struct vq_elem e;
	bool pushed = false;
	do {
		int r;
		while ((r = vq_pop(vq, &e, iov, BALLOON_IOV_MAX)) > 0) {
			uint64_t refused = 0;
			/* The PFNs are in the readable part (§5.5.6). */
			uint64_t n = balloon_pfn_runs(vd->mem, iov, e.nout, inflate ? inflate_run : deflate_run,
						      b, &refused);
			if (refused && b->c.refused < 10)
				log_warn("%s: %s: %llu PFNs outside guest RAM refused", vd->name,
					 inflate ? "inflate" : "deflate", (unsigned long long)refused);
			b->c.refused += refused;
			if (inflate)
				b->c.inflated_pages += n;
			else
				b->c.deflated_pages += n;
			vq_push(vq, e.head, 0);
			pushed = true;
		}
		if (r < 0) {
			virtio_set_broken(vd, vq_strerror(r));
			break;
		}
	} while (vq_rearm(vq));
	if (pushed)
		virtio_queue_interrupt(vd, q);
}

/* A reported range that passed the checks: discard now, keep, or queue. */
static void report_range(struct vballoon *b, uint64_t off, uint64_t len)
{
	b->c.reported_bytes += len;
	if (keep_reports(b)) {
		b->c.kept_bytes += len;
		return;
	}
	if (b->o.mode == BALLOON_DONTNEED) {
		discard(b, off, len);
		return;
	}
	b->pend[b->npend++] = (struct range){ off, len };   /* jlock held */
}

static void report_queue(struct vballoon *b, unsigned q)
{
	struct virtio_dev *vd = &b->vd;
	struct virtq *vq = &vd->vq[q];
	struct iovec iov[BALLOON_IOV_MAX];
	struct vq_elem e;
	bool lazy = b->o.mode == BALLOON_FREE && b->worker_started;
	bool pushed = false, queued = false;
	b->report_q = q;
	if (lazy)
		pthread_mutex_lock(&b->jlock);
	do {
		for (;;) {
			if (lazy && (b->npend + BALLOON_IOV_MAX > PENDING_RANGES || b->nheads == BALLOON_QUEUE)) {
				b->jstalled = true;      /* the thread kicks us when it has room */
				goto out;
			}
			int r = vq_pop(vq, &e, iov, BALLOON_IOV_MAX);
			if (r == 0)
				break;
			if (r < 0) {
				virtio_set_broken(vd, vq_strerror(r));
				goto out;
			}
			for (unsigned i = 0; i < e.nout + e.nin; i++) {
				uint64_t off, len;
				if (balloon_report_range(vd->mem, &iov[i], &off, &len)) {
					if (b->c.refused++ < 10)
						log_warn("%s: report of %zu bytes that is not 4 KiB aligned refused",
							 vd->name, iov[i].iov_len);
					continue;
				}
				report_range(b, off, len);
			}
			if (lazy && !keep_reports(b)) {
				b->heads[b->nheads++] = e.head;
				queued = true;
			} else {
				vq_push(vq, e.head, 0);
				b->c.reports++;
				pushed = true;
			}
		}
	} while (vq_rearm(vq));
out:
	if (lazy) {
		if (queued)
			pthread_cond_signal(&b->jwork);
		pthread_mutex_unlock(&b->jlock);
	}
	if (pushed)
		virtio_queue_interrupt(vd, q);
}

static void stats_queue(struct vballoon *b, unsigned q)
{
	struct virtio_dev *vd = &b->vd;
	struct virtq *vq = &vd->vq[q];
	struct iovec iov[BALLOON_IOV_MAX];
	struct vq_elem e;
	bool got = false;
	do {
		int r;
		while ((r = vq_pop(vq, &e, iov, BALLOON_IOV_MAX)) > 0) {
			/* At most one buffer is the driver's rule; an extra one
			 * goes straight back so the older is not lost. */
			if (b->stats_held)
				vq_push(vq, b->stats_head, 0);
			b->stats_head = e.head;
			b->stats_held = true;
			uint32_t mask = 0;
			uint64_t stat[BALLOON_STATS_MAX] = { 0 };
			balloon_parse_stats(iov, e.nout, stat, &mask);
			memcpy(b->c.stat, stat, sizeof(stat));
			b->c.stats_mask = mask;
			b->c.have_stats = true;
			b->c.stats_at_ns = mono_ns();
			got = true;
		}
		if (r < 0) {
			virtio_set_broken(vd, vq_strerror(r));
			return;
		}
	} while (vq_rearm(vq));
	if (got)
		tell(b);
}

static void balloon_notify(struct virtio_dev *vd, unsigned q)
{
	struct vballoon *b = vd->backend;
	if (b->config_pending) {
		b->config_pending = false;
		virtio_config_changed(vd);
	}
	switch (b->role[q]) {
	case R_INFLATE: pfn_queue(b, q, true); break;
	case R_DEFLATE: pfn_queue(b, q, false); break;
	case R_STATS: stats_queue(b, q); break;
	case R_REPORT: report_queue(b, q); break;
	case R_NONE: break;       /* a queue this driver did not negotiate */
	}
}

/* §5.5.2: the queues that exist for the negotiated features, in order. */
static void assign_roles(struct vballoon *b)
{
	unsigned q = 0;
	memset(b->role, 0, sizeof(b->role));
	b->role[q++] = R_INFLATE;
	b->role[q++] = R_DEFLATE;
	if (virtio_has_feature(&b->vd, VIRTIO_BALLOON_F_STATS_VQ))
		b->role[q++] = R_STATS;
	if (virtio_has_feature(&b->vd, VIRTIO_BALLOON_F_REPORTING)) {
		b->report_q = q;
		b->role[q++] = R_REPORT;
	}
}

static void balloon_activate(struct virtio_dev *vd)
{
	struct vballoon *b = vd->backend;
	assign_roles(b);
	if (keep_reports(b))
		log_info("%s: the guest poisons free pages with %#x: reported pages are kept, not discarded",
			 vd->name, b->cfg.poison_val);
}

static void balloon_reset(struct virtio_dev *vd)
{
	struct vballoon *b = vd->backend;
	worker_reset(b);
	memset(b->role, 0, sizeof(b->role));
	b->stats_held = false;
	b->config_pending = false;    /* a fresh driver reads num_pages anyway */
	/* A fresh driver owns all its memory: nothing is in the balloon. */
	b->cfg.actual = 0;
	b->cfg.poison_val = 0;
}

static void balloon_config_write(struct virtio_dev *vd, unsigned off, unsigned size, uint64_t val)
{
	struct vballoon *b = vd->backend;
	uint8_t *c = (uint8_t *)&b->cfg;
	uint32_t old_actual = b->cfg.actual;
	/* Only actual (4-7) and poison_val (12-15) are the driver's. */
	for (unsigned i = 0; i < size && off + i < sizeof(b->cfg); i++) {
		unsigned at = off + i;
		if ((at >= 4 && at < 8) || (at >= 12 && at < 16))
			c[at] = (uint8_t)(val >> (8 * i));
	}
	if (b->cfg.actual != old_actual) {
		b->c.actual_bytes = (uint64_t)b->cfg.actual * BALLOON_PAGE;
		/* A driver updates actual page by page or block by block: say
		 * so when it is done, and at most 4 times a second meanwhile. */
		uint64_t now = mono_ns();
		if (b->cfg.actual == b->cfg.num_pages || now - b->told_actual_ns >= 250000000ull) {
			b->told_actual_ns = now;
			tell(b);
		}
	}
}

/* ---- Migration (balloon.h) ------------------------------------------------------- */

enum {
	T_OPT_SIZE = VIRTIO_STATE_BACKEND, T_OPT_FLAGS, T_OPT_STATS_INTERVAL,
	T_NUM_PAGES, T_ACTUAL, T_POISON_VAL, T_STATS_HELD, T_STATS_HEAD,
	T_INFLATED, T_DEFLATED, T_REPORTS, T_REPORTED, T_DISCARDED, T_KEPT, T_REFUSED,
	T_DISCARD_ERRORS, T_DISCARD_NS, T_HAVE_STATS, T_STATS_AGE, T_STATS_MASK, T_STATS, T_RECORD,
	T_CONFIG_PENDING,
};

static uint32_t opt_flags(const struct balloon_opts *o)
{
	return (o->deflate_on_oom ? BALLOON_OPT_DEFLATE_ON_OOM : 0) | (o->reporting ? BALLOON_OPT_REPORTING : 0) |
	       (o->reporting && o->mode == BALLOON_FREE ? BALLOON_OPT_FREE : 0);
}

static int balloon_save(struct virtio_dev *vd, struct state_writer *w)
{
	struct vballoon *b = vd->backend;
	if (b->worker_started) {
		pthread_mutex_lock(&b->jlock);
		bool idle = !b->jbusy && !b->npend && !b->nheads && !b->ndone;
		pthread_mutex_unlock(&b->jlock);
		if (!idle)
			return -EBUSY;     /* not quiesced: the stream would lose reports */
	}
	struct balloon_info c;
	info_locked(b, &c);
	state_put_u64(w, T_OPT_SIZE, b->o.size);
	state_put_u32(w, T_OPT_FLAGS, opt_flags(&b->o));
	state_put_u32(w, T_OPT_STATS_INTERVAL, b->o.stats_interval);
	state_put_u32(w, T_NUM_PAGES, b->cfg.num_pages);
	state_put_u32(w, T_ACTUAL, b->cfg.actual);
	state_put_u32(w, T_POISON_VAL, b->cfg.poison_val);
	state_put_u8(w, T_STATS_HELD, b->stats_held);
	state_put_u16(w, T_STATS_HEAD, b->stats_held ? b->stats_head : 0);
	state_put_u64(w, T_INFLATED, c.inflated_pages);
	state_put_u64(w, T_DEFLATED, c.deflated_pages);
	state_put_u64(w, T_REPORTS, c.reports);
	state_put_u64(w, T_REPORTED, c.reported_bytes);
	state_put_u64(w, T_DISCARDED, c.discarded_bytes);
	state_put_u64(w, T_KEPT, c.kept_bytes);
	state_put_u64(w, T_REFUSED, c.refused);
	state_put_u64(w, T_DISCARD_ERRORS, c.discard_errors);
	state_put_u64(w, T_DISCARD_NS, c.discard_ns);
	state_put_u8(w, T_HAVE_STATS, c.have_stats);
	/* The clock is this process's: carry the statistics' age. */
	uint64_t now = mono_ns();
	state_put_u64_volatile(w, T_STATS_AGE, c.have_stats && now > c.stats_at_ns ? now - c.stats_at_ns : 0);
	state_put_u32(w, T_STATS_MASK, c.stats_mask);
	state_put_blob(w, T_STATS, c.stat, sizeof(c.stat));
	/* The record as it is (not refreshed: a save reads nothing of the
	 * memfd, and two saves of a paused VM are equal); the destination's
	 * `status` refreshes it against its own memfd. */
	size_t nw = b->rec ? discard_words(b->rec) : 0;
	uint64_t *words = nw ? malloc(nw * sizeof(*words)) : NULL;
	if (nw && !words)
		return -ENOMEM;
	if (nw)
		discard_export(b->rec, words);
	state_put_blob(w, T_RECORD, words, nw * sizeof(*words));
	free(words);
	state_put_u8(w, T_CONFIG_PENDING, b->config_pending);
	return 0;
}

static int get_counters(struct state_reader *r, struct balloon_info *c, uint64_t *age)
{
	int e;
	uint8_t have;
	if ((e = state_get_u64(r, T_INFLATED, &c->inflated_pages)) ||
	    (e = state_get_u64(r, T_DEFLATED, &c->deflated_pages)) ||
	    (e = state_get_u64(r, T_REPORTS, &c->reports)) ||
	    (e = state_get_u64(r, T_REPORTED, &c->reported_bytes)) ||
	    (e = state_get_u64(r, T_DISCARDED, &c->discarded_bytes)) ||
	    (e = state_get_u64(r, T_KEPT, &c->kept_bytes)) ||
	    (e = state_get_u64(r, T_REFUSED, &c->refused)) ||
	    (e = state_get_u64(r, T_DISCARD_ERRORS, &c->discard_errors)) ||
	    (e = state_get_u64(r, T_DISCARD_NS, &c->discard_ns)) ||
	    (e = state_get_u8(r, T_HAVE_STATS, &have)) ||
	    (e = state_get_u64(r, T_STATS_AGE, age)) ||
	    (e = state_get_u32(r, T_STATS_MASK, &c->stats_mask)) ||
	    (e = state_get_blob(r, T_STATS, c->stat, sizeof(c->stat))))
		return e;
	if ((c->reported_bytes | c->discarded_bytes | c->kept_bytes) % BALLOON_PAGE ||
	    c->kept_bytes > c->reported_bytes)
		return state_fail(r, "byte counters not in whole pages or kept (%llu) above reported (%llu)",
				  (unsigned long long)c->kept_bytes, (unsigned long long)c->reported_bytes);
	if (have > 1 || c->stats_mask >> BALLOON_STATS_MAX || (!have && c->stats_mask))
		return state_fail(r, "guest statistics: flag %u, mask %#x out of range", have, c->stats_mask);
	c->have_stats = have;
	return 0;
}

static int balloon_load(struct virtio_dev *vd, struct state_reader *r, const struct virtio_load *t)
{
	struct vballoon *b = vd->backend;
	uint64_t size, age;
	uint32_t flags, interval, num_pages, actual, poison_val;
	uint8_t held, pending;
	uint16_t head;
	struct balloon_info c = { 0 };
	const void *rec;
	size_t reclen;
	int e;
	if (r->version < 2)
		return state_fail(r, "version %u holds no balloon state (an Ember that did not migrate the balloon)",
				  r->version);
	if ((e = state_get_u64(r, T_OPT_SIZE, &size)) || (e = state_get_u32(r, T_OPT_FLAGS, &flags)) ||
	    (e = state_get_u32(r, T_OPT_STATS_INTERVAL, &interval)) ||
	    (e = state_get_u32(r, T_NUM_PAGES, &num_pages)) || (e = state_get_u32(r, T_ACTUAL, &actual)) ||
	    (e = state_get_u32(r, T_POISON_VAL, &poison_val)) || (e = state_get_u8(r, T_STATS_HELD, &held)) ||
	    (e = state_get_u16(r, T_STATS_HEAD, &head)) || (e = get_counters(r, &c, &age)) ||
	    (e = state_get_blob_ref(r, T_RECORD, &rec, &reclen)) ||
	    (e = state_get_u8(r, T_CONFIG_PENDING, &pending)))
		return e;
	if (flags & ~(uint32_t)BALLOON_OPT_ALL || ((flags & BALLOON_OPT_FREE) && !(flags & BALLOON_OPT_REPORTING)) ||
	    interval > 3600 || size % BALLOON_PAGE)
		return state_fail(r, "options out of range (flags %#x, stats-interval %u, size %llu)", flags, interval,
				  (unsigned long long)size);
	/* What the driver saw must be what this device offers; the discard
	 * mode and the interval are this host's business. */
	uint32_t mine = opt_flags(&b->o);
	if (size != b->o.size || (flags ^ mine) & (BALLOON_OPT_DEFLATE_ON_OOM | BALLOON_OPT_REPORTING))
		return state_fail(r, "the balloon was size=%llu MiB%s%s, here size=%llu MiB%s%s",
				  (unsigned long long)(size >> 20), flags & BALLOON_OPT_DEFLATE_ON_OOM ? ",deflate-on-oom" : "",
				  flags & BALLOON_OPT_REPORTING ? ",free-page-reporting" : "",
				  (unsigned long long)(b->o.size >> 20), mine & BALLOON_OPT_DEFLATE_ON_OOM ? ",deflate-on-oom" : "",
				  mine & BALLOON_OPT_REPORTING ? ",free-page-reporting" : "");
	/* num_pages is Ember's (never above RAM); actual and poison_val are
	 * the driver's to write, any value, so any value is taken. */
	if ((uint64_t)num_pages * BALLOON_PAGE > vd->mem->size)
		return state_fail(r, "target of %u pages, more than the guest's RAM", num_pages);
	/* The statistics buffer: only a running driver with the stats queue
	 * (always queue 2, §5.5.2) leaves one, inside that queue. */
	if (held > 1 || pending > 1)
		return state_fail(r, "statistics buffer flag %u or pending config flag %u", held, pending);
	if (held) {
		bool running = (t->status & VIRTIO_CONFIG_S_DRIVER_OK) && (t->features >> VIRTIO_BALLOON_F_STATS_VQ & 1);
		if (!running || head >= t->queue_size[2])
			return state_fail(r, "statistics buffer %u held without a stats queue of that size", head);
	}
	if (b->rec ? discard_import(b->rec, rec, reclen) : reclen != 0)
		return state_fail(r, "discarded-range record of %zu bytes, %zu expected or bits past the end of RAM",
				  reclen, b->rec ? discard_words(b->rec) * sizeof(uint64_t) : 0);
	b->cfg.num_pages = num_pages;
	b->cfg.actual = actual;
	b->cfg.poison_val = poison_val;
	b->stats_held = held;
	b->stats_head = held ? head : 0;
	b->config_pending = pending;
	uint64_t now = mono_ns();
	c.stats_at_ns = c.have_stats ? (age < now ? now - age : 0) : 0;
	c.target_bytes = (uint64_t)num_pages * BALLOON_PAGE;
	c.actual_bytes = (uint64_t)actual * BALLOON_PAGE;
	b->c = c;
	return 0;
}

static const struct virtio_ops balloon_ops = {
	.notify = balloon_notify,
	.activate = balloon_activate,
	.reset = balloon_reset,
	.config_write = balloon_config_write,
	.quiesce = balloon_quiesce,
	.save = balloon_save,
	.load = balloon_load,
};

/* ---- Host side ------------------------------------------------------------------- */

bool balloon_request_stats(struct virtio_dev *vd)
{
	struct vballoon *b = vd->backend;
	bool asked = false;
	pthread_mutex_lock(&vd->lock);
	for (unsigned q = 0; q < vd->nqueues; q++) {
		/* Quiesced: the VM is paused for a save, its RAM may be sent
		 * already; the next tick asks. */
		if (b->role[q] != R_STATS || !b->stats_held || vd->broken || vd->quiesced ||
		    !(vd->status & VIRTIO_CONFIG_S_DRIVER_OK))
			continue;
		/* Using the buffer is the request (§5.5.6.3). */
		vq_push(&vd->vq[q], b->stats_head, 0);
		b->stats_held = false;
		virtio_queue_interrupt(vd, q);
		asked = true;
	}
	pthread_mutex_unlock(&vd->lock);
	return asked;
}

static void on_stats_timer(void *opaque, uint32_t events)
{
	struct vballoon *b = opaque;
	uint64_t n;
	if (read(b->stats_timer, &n, sizeof(n)) < 0)
		return;
	balloon_request_stats(&b->vd);
}

int balloon_set_target(struct virtio_dev *vd, uint64_t bytes)
{
	struct vballoon *b = vd->backend;
	if (bytes > vd->mem->size)
		return -EINVAL;
	pthread_mutex_lock(&vd->lock);
	uint32_t pages = (uint32_t)(bytes / BALLOON_PAGE);
	if (pages != b->cfg.num_pages) {
		b->cfg.num_pages = pages;
		if (vd->quiesced)
			b->config_pending = true;
		else
			virtio_config_changed(vd);
	}
	pthread_mutex_unlock(&vd->lock);
	return 0;
}

/* vd.lock held. */
static void info_locked(struct vballoon *b, struct balloon_info *out)
{
	struct virtio_dev *vd = &b->vd;
	*out = b->c;
	/* Counters the discard thread adds to without the device lock. */
	out->discarded_bytes = __atomic_load_n(&b->c.discarded_bytes, __ATOMIC_RELAXED);
	out->discard_ns = __atomic_load_n(&b->c.discard_ns, __ATOMIC_RELAXED);
	out->discard_errors = __atomic_load_n(&b->c.discard_errors, __ATOMIC_RELAXED);
	out->reports = __atomic_load_n(&b->c.reports, __ATOMIC_RELAXED);
	out->target_bytes = (uint64_t)b->cfg.num_pages * BALLOON_PAGE;
	out->actual_bytes = (uint64_t)b->cfg.actual * BALLOON_PAGE;
	out->features = vd->status & VIRTIO_CONFIG_S_FEATURES_OK ? vd->guest_features : 0;
	out->driver_ok = vd->status & VIRTIO_CONFIG_S_DRIVER_OK;
	out->poison = virtio_has_feature(vd, VIRTIO_BALLOON_F_PAGE_POISON);
	out->poison_val = b->cfg.poison_val;
}

void balloon_get_info(struct virtio_dev *vd, struct balloon_info *out)
{
	pthread_mutex_lock(&vd->lock);
	info_locked(vd->backend, out);
	pthread_mutex_unlock(&vd->lock);
}

static void tell(struct vballoon *b)
{
	if (!b->o.on_stats)
		return;
	struct balloon_info info;
	info_locked(b, &info);
	b->o.on_stats(b->o.opaque, &info);
}

int virtio_balloon_create(const struct virtio_env *env, const struct balloon_opts *o,
			  struct discard_map *rec, struct virtio_dev **out)
{
	if (o->size > env->mem->size)
		return -EINVAL;
	struct vballoon *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->o = *o;
	b->rec = rec;
	b->stats_timer = -1;
	b->cfg.num_pages = (uint32_t)(o->size / BALLOON_PAGE);
	pthread_mutex_init(&b->jlock, NULL);
	pthread_cond_init(&b->jwork, NULL);
	pthread_cond_init(&b->jidle, NULL);
	uint64_t f = (1ULL << VIRTIO_BALLOON_F_STATS_VQ) | (1ULL << VIRTIO_BALLOON_F_PAGE_POISON);
	unsigned nq = 3;
	if (o->deflate_on_oom)
		f |= 1ULL << VIRTIO_BALLOON_F_DEFLATE_ON_OOM;
	if (o->reporting) {
		f |= 1ULL << VIRTIO_BALLOON_F_REPORTING;
		nq++;
	}
	struct virtio_setup s = {
		.name = "virtio-balloon", .device_id = VIRTIO_ID_BALLOON, .class_code = 0x050000,
		.nqueues = nq, .queue_max = BALLOON_QUEUE, .features = f,
		.config = &b->cfg, .config_len = sizeof(b->cfg), .ops = &balloon_ops, .backend = b,
		.env = *env,
	};
	int r = virtio_init(&b->vd, &s);
	if (r)
		goto fail;
	if (o->reporting && o->mode == BALLOON_FREE) {
		if (!(b->pend = malloc(PENDING_RANGES * sizeof(*b->pend)))) {
			r = -ENOMEM;
			goto fail;
		}
		struct sandbox_fds fds = SANDBOX_NO_FDS;
		if ((r = sandbox_thread_create(&b->worker, THREAD_IO, &fds, "balloon", worker_main, b)))
			goto fail;
		b->worker_started = true;
	}
	if (o->stats_interval && env->loop) {
		uint64_t ns = (uint64_t)o->stats_interval * 1000000000ull;
		b->stats_timer = loop_add_timer(env->loop, ns, ns, on_stats_timer, b);
		if (b->stats_timer < 0) {
			r = b->stats_timer;
			goto fail;
		}
	}
	*out = &b->vd;
	return 0;
fail:
	virtio_balloon_destroy(&b->vd);
	return r;
}

void virtio_balloon_destroy(struct virtio_dev *vd)
{
	if (!vd)
		return;
	struct vballoon *b = vd->backend ? vd->backend : (struct vballoon *)vd;
	if (b->worker_started) {
		pthread_mutex_lock(&b->jlock);
		b->jstop = true;
		pthread_cond_broadcast(&b->jwork);
		pthread_mutex_unlock(&b->jlock);
		pthread_join(b->worker, NULL);
	}
	if (b->stats_timer >= 0) {
		if (vd->loop)
			loop_remove(vd->loop, b->stats_timer);
		close(b->stats_timer);
	}
	virtio_destroy(vd);
	pthread_mutex_destroy(&b->jlock);
	pthread_cond_destroy(&b->jwork);
	pthread_cond_destroy(&b->jidle);
	free(b->pend);
	free(b);
}
