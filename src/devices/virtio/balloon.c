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

		qsort(r, nr, sizeof(*r), cmp_range);
		for (unsigned i = 0; i < nr;) {
			uint64_t off = r[i].off, end = r[i].off + r[i].len;
			for (i++; i < nr && r[i].off <= end; i++)
				if (r[i].off + r[i].len > end)
					end = r[i].off + r[i].len;
			discard(b, off, end - off);
		}

		pthread_mutex_lock(&b->jlock);
		b->jbusy = false;
		pthread_cond_broadcast(&b->jidle);
		pthread_mutex_unlock(&b->jlock);

		/* Hand the buffers back, unless the driver reset the device
		 * meanwhile (then they are not its to get). */
		pthread_mutex_lock(&b->vd.lock);
		pthread_mutex_lock(&b->jlock);
		bool same = gen == b->jgen, stalled = b->jstalled;
		b->jstalled = false;
		pthread_mutex_unlock(&b->jlock);
		if (same && !b->vd.broken && (b->vd.status & VIRTIO_CONFIG_S_DRIVER_OK)) {
			for (unsigned i = 0; i < nh; i++)
				vq_push(&b->vd.vq[b->report_q], heads[i], 0);
			add(&b->c.reports, nh);
			virtio_queue_interrupt(&b->vd, b->report_q);
			/* Chains left in the ring while we were full: take them. */
			if (stalled)
				eventfd_write(b->vd.kick_fd[b->report_q], 1);
		}
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
	b->npend = b->nheads = 0;
	b->jstalled = false;
	while (b->jbusy)
		pthread_cond_wait(&b->jidle, &b->jlock);
	pthread_mutex_unlock(&b->jlock);
}

static void tell(struct vballoon *b);

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

static const struct virtio_ops balloon_ops = {
	.notify = balloon_notify,
	.activate = balloon_activate,
	.reset = balloon_reset,
	.config_write = balloon_config_write,
};

/* ---- Host side ------------------------------------------------------------------- */

bool balloon_request_stats(struct virtio_dev *vd)
{
	struct vballoon *b = vd->backend;
	bool asked = false;
	pthread_mutex_lock(&vd->lock);
	for (unsigned q = 0; q < vd->nqueues; q++) {
		if (b->role[q] != R_STATS || !b->stats_held || vd->broken ||
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
