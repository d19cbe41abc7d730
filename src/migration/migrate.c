/* Pre-copy live migration: the source's migration thread and the
 * destination's incoming side. */
#include "migration/migrate.h"

#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control/control.h"
#include "dirty.h"
#include "log.h"
#include "migration/channel.h"
#include "migration/snapshot.h"
#include "migration/vmsave.h"
#include "sandbox/sandbox.h"
#include "vcpu.h"
#include "vm.h"

#define PAGE_SIZE 4096u
/* Pages re-protected per KVM_CLEAR_DIRTY_LOG: each call takes KVM's MMU
 * lock against the faulting vCPUs and flushes their TLBs. 4096 (16 MiB)
 * spent 80 ms of a 1 GiB pass in the ioctl under a 800 MB/s writer; 65536
 * spends 3 ms (bench/migration.sh), at the price of re-protecting pages
 * up to 256 MiB before they are copied. */
#define REARM_CHUNK 65536u
#define MAX_PASSES 64              /* then the rest goes however long it takes */
#define DOWNTIME_GOAL_NS 5000000ull /* below the limit: stop once a pause is this short */
#define THROTTLE_AFTER_PASS 3      /* not converging by then: limit the dirty rate */
#define SEND_TIMEOUT_S 30
#define ACK_TIMEOUT_S 60
#define PROGRESS_EVERY_NS 250000000ull

struct migration {
	struct vm *vm;
	pthread_t thread;
	bool started, done;
	char uri[256];
	struct channel_addr addr;
	struct migrate_params p;
	int fd;

	pthread_mutex_t lock;       /* the figures below, for status */
	const char *status;         /* "active", "completed", "failed" */
	char error[300];
	unsigned pass;
	uint64_t bytes_sent, remaining_bytes, dirty_rate_bps, expected_downtime_ns;
	uint64_t pages_sent, zero_pages, pass_pages, harvest_ns, track_ns, throttle_bps;
	uint64_t downtime_ns, total_ns, pause_ns;
	uint64_t start_ns, last_event_ns;
};

int migrate_uri_check(const char *uri, char *err, size_t errlen)
{
	struct channel_addr a;
	return channel_parse(uri, &a, err, errlen);
}

static json_object *ju64(uint64_t v)
{
	return json_object_new_int64(v > INT64_MAX ? INT64_MAX : (int64_t)v);
}

/* With m->lock held. */
static json_object *progress_json(struct migration *m)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "status", json_object_new_string(m->status));
	json_object_object_add(o, "uri", json_object_new_string(m->uri));
	json_object_object_add(o, "backend", json_object_new_string(dirty_backend_name(m->vm->dirty.backend)));
	json_object_object_add(o, "pass", json_object_new_int((int)m->pass));
	json_object_object_add(o, "bytes_sent", ju64(m->bytes_sent));
	json_object_object_add(o, "pages_sent", ju64(m->pages_sent));
	json_object_object_add(o, "zero_pages", ju64(m->zero_pages));
	json_object_object_add(o, "pass_pages", ju64(m->pass_pages));
	json_object_object_add(o, "remaining_bytes", ju64(m->remaining_bytes));
	json_object_object_add(o, "dirty_rate_mbps", json_object_new_double((double)m->dirty_rate_bps / 1e6));
	json_object_object_add(o, "expected_downtime_ms", json_object_new_double((double)m->expected_downtime_ns / 1e6));
	json_object_object_add(o, "harvest_us", json_object_new_double((double)m->harvest_ns / 1e3));
	json_object_object_add(o, "track_us", json_object_new_double((double)m->track_ns / 1e3));
	json_object_object_add(o, "ring_full_exits", ju64(__atomic_load_n(&m->vm->dirty.stats.ring_full_exits,
									    __ATOMIC_RELAXED)));
	json_object_object_add(o, "ring_overruns", ju64(__atomic_load_n(&m->vm->dirty.stats.ring_overruns,
									  __ATOMIC_RELAXED)));
	json_object_object_add(o, "throttle_mbps", json_object_new_double((double)m->throttle_bps / 1e6));
	json_object_object_add(o, "elapsed_ms", json_object_new_double((double)((m->total_ns ? m->total_ns :
										now_ns() - m->start_ns)) / 1e6));
	if (m->downtime_ns)
		json_object_object_add(o, "downtime_ms", json_object_new_double((double)m->downtime_ns / 1e6));
	if (m->pause_ns)
		json_object_object_add(o, "paused_ms", json_object_new_double((double)m->pause_ns / 1e6));
	if (m->error[0])
		json_object_object_add(o, "error", json_object_new_string(m->error));
	return o;
}

static void emit(struct migration *m)
{
	pthread_mutex_lock(&m->lock);
	json_object *o = progress_json(m);
	m->last_event_ns = now_ns();
	pthread_mutex_unlock(&m->lock);
	events_emit(m->vm->control, "migration", o);
}

json_object *migrate_status(struct vm *vm)
{
	struct migration *m = vm->migration;
	if (!m)
		return NULL;
	pthread_mutex_lock(&m->lock);
	json_object *o = progress_json(m);
	pthread_mutex_unlock(&m->lock);
	return o;
}

/* ---- the source ------------------------------------------------------------------ */

struct sender {
	struct migration *m;
	struct state_writer w;
	struct channel_sink sink;
	uint64_t *dirty;            /* pages to send (npages bits) */
	uint8_t *buf;               /* VMSAVE_PAGES_MAX pages */
	uint64_t batch[VMSAVE_PAGES_MAX];
	unsigned nbatch;
	bool sent_once;             /* the first pass is out */
	/* First pass: the memfd's next hole at or after hole_from (SEEK_HOLE
	 * walks the file up to the hole it finds: ask again only past it). */
	uint64_t hole_from, next_hole;
};

static int flush_batch(struct sender *s)
{
	if (!s->nbatch)
		return 0;
	struct migration *m = s->m;
	uint64_t zero = 0;
	int r = vm_save_pages(m->vm, &s->w, s->batch, s->nbatch, s->buf, &zero);
	pthread_mutex_lock(&m->lock);
	m->pages_sent += s->nbatch;
	m->zero_pages += zero;
	m->bytes_sent = s->sink.bytes;
	if (m->remaining_bytes >= (uint64_t)s->nbatch * PAGE_SIZE)
		m->remaining_bytes -= (uint64_t)s->nbatch * PAGE_SIZE;
	pthread_mutex_unlock(&m->lock);
	s->nbatch = 0;
	dirty_poll(&m->vm->dirty);
	if (now_ns() - m->last_event_ns > PROGRESS_EVERY_NS)
		emit(m);
	return r;
}

/* Sends every page set in s->dirty and clears it. With manual protection
 * each chunk is re-protected just before its pages are read. */
static int send_dirty(struct sender *s, bool paused)
{
	struct vm *vm = s->m->vm;
	uint64_t npages = vm->dirty.npages;
	for (uint64_t base = 0; base < npages; base += REARM_CHUNK) {
		uint64_t n = npages - base < REARM_CHUNK ? npages - base : REARM_CHUNK;
		bool any = false;
		for (uint64_t w = base / 64; w < (base + n + 63) / 64; w++)
			any |= s->dirty[w] != 0;
		if (!any)
			continue;
		if (!paused)
			dirty_rearm(&vm->dirty, s->dirty, base, n);
		/* Holes in the memfd (discarded by the balloon, never written)
		 * are zeros: never read (that would allocate them). The first
		 * pass skips them, the destination's fresh RAM is zeros there;
		 * later they go as zero pages. A page dirtied since the first
		 * pass holds data unless the balloon discarded it after: later
		 * passes look only at what the discard record names (SEEK_HOLE
		 * walks the memfd to its next hole, far past a dirty page). */
		uint64_t hole[(REARM_CHUNK + 63) / 64 + 1] = { 0 };
		for (uint64_t off = base * PAGE_SIZE, end = (base + n) * PAGE_SIZE; off < end;) {
			uint64_t h, d, len;
			if (!s->sent_once) {
				if (off < s->hole_from || off >= s->next_hole) {
					s->hole_from = off;
					s->next_hole = mem_next_hole(&vm->mem, off, npages * PAGE_SIZE);
				}
				if ((h = s->next_hole) >= end)
					break;
				d = mem_next_data(&vm->mem, h, end);
			} else if (vm->discard.bits && discard_next_skippable(&vm->discard, &vm->mem, off, end, &h, &len)) {
				d = h + len;
			} else {
				break;
			}
			for (uint64_t p = h / PAGE_SIZE; p < d / PAGE_SIZE; p++) {
				if (s->sent_once)
					hole[(p - base) / 64] |= 1ull << ((p - base) % 64);
				else
					s->dirty[p / 64] &= ~(1ull << (p % 64));
			}
			off = d;
		}
		for (uint64_t w = base / 64; w < (base + n + 63) / 64; w++) {
			uint64_t bits = s->dirty[w];
			s->dirty[w] = 0;
			while (bits) {
				unsigned b = (unsigned)__builtin_ctzll(bits);
				bits &= bits - 1;
				uint64_t p = w * 64 + b;
				bool is_hole = hole[(p - base) / 64] >> ((p - base) % 64) & 1;
				s->batch[s->nbatch++] = p | (is_hole ? VMSAVE_PAGE_HOLE : 0);
				if (s->nbatch == VMSAVE_PAGES_MAX) {
					int r = flush_batch(s);
					if (r)
						return r;
				}
			}
		}
	}
	s->sent_once = true;
	return flush_batch(s);
}

/* A reply from the destination that explains a failed send, if one came. */
static void read_refusal(struct migration *m, char *why, size_t len)
{
	struct channel_msg msg;
	channel_set_timeout(m->fd, 2);
	if (channel_recv_msg(m->fd, &msg) == 0 && msg.kind == CHANNEL_READY && msg.status)
		snprintf(why, len, "the destination refused the stream: %.200s", msg.text);
}

static int fail(struct migration *m, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct migration *m, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	pthread_mutex_lock(&m->lock);
	if (!m->error[0])
		vsnprintf(m->error, sizeof(m->error), fmt, ap);
	pthread_mutex_unlock(&m->lock);
	va_end(ap);
	return err;
}

/* A "sync" mark, then the destination's word that it loaded everything
 * before it: 0, or the failure recorded (a refusal with the
 * destination's reason). */
static int sync_with_destination(struct migration *m, struct sender *s)
{
	int r = vm_save_sync(&s->w);
	if (r)
		return r;
	struct channel_msg ack;
	channel_set_timeout(m->fd, ACK_TIMEOUT_S);
	r = channel_recv_msg(m->fd, &ack);
	channel_set_timeout(m->fd, SEND_TIMEOUT_S);
	if (!r && ack.kind == CHANNEL_SYNCED)
		return 0;
	if (!r && ack.kind == CHANNEL_READY && ack.status)
		return fail(m, ack.status, "the destination refused the stream: %.200s", ack.text);
	return fail(m, r ? r : -EPROTO, "no answer to a sync mark from the destination: %s",
		    r ? strerror(-r) : "unexpected message");
}

static int run_source(struct migration *m, struct sender *s, bool *paused)
{
	struct vm *vm = m->vm;
	struct dirty *d = &vm->dirty;
	char err[256];
	int r;
	m->fd = channel_connect(&m->addr, err, sizeof(err));
	if (m->fd < 0)
		return fail(m, m->fd, "%s", err);
	channel_set_timeout(m->fd, SEND_TIMEOUT_S);
	s->sink = (struct channel_sink){ .fd = m->fd, .limit_bps = m->p.bandwidth_mbps * 1000000ull,
					 .start_ns = now_ns() };
	restore_wait_loaded(vm);
	if ((r = state_writer_init(&s->w, channel_sink(&s->sink))) || (r = vm_save_shape(vm, &s->w)))
		return fail(m, r, "sending the machine description: %s", strerror(-r));
	/* The destination makes the VM from the "vm" section and checks its
	 * CPU: a refusal (another CPU model, a CPU this host cannot give)
	 * comes back before any RAM is sent. */
	if ((r = sync_with_destination(m, s))) {
		if (m->error[0])
			return r;
		goto send_failed;
	}
	if ((r = dirty_start(d)))
		return fail(m, r, "starting dirty logging: %s", strerror(-r));

	uint64_t limit_ns = m->p.downtime_ms * 1000000ull, bw = 0, rate = 0, t_prev = 0, prev_pages = 0;
	bool drained = false;
	uint64_t track0 = __atomic_load_n(&d->stats.track_ns, __ATOMIC_RELAXED);
	for (unsigned pass = 1;; pass++) {
		uint64_t t0 = now_ns();
		if ((r = dirty_sync(d, s->dirty)))
			return fail(m, r, "harvesting dirty pages: %s", strerror(-r));
		/* The first pass sends all of RAM, also when the dirty log was
		 * on already (a snapshot keeps it on for diffs) and finds only
		 * what changed since. */
		if (pass == 1)
			bitmap_fill(s->dirty, d->npages);
		uint64_t harvest = now_ns() - t0, pages = bitmap_count(s->dirty, d->npages);
		/* The tracking work of the pass before this sync (re-arms, ring
		 * harvests on full exits): a harvest cost too. */
		uint64_t track1 = __atomic_load_n(&d->stats.track_ns, __ATOMIC_RELAXED), track = track1 - track0;
		track0 = track1;
		uint64_t bytes = pages * PAGE_SIZE;
		/* The dirty rate: what this sync found, over the time since the
		 * last one (the first finds all of RAM). */
		if (pass > 1 && t0 > t_prev)
			rate = bytes * 1000000000ull / (t0 - t_prev);
		t_prev = t0;
		/* What a pause now would cost: the rest at the rate measured. */
		uint64_t expect = !bytes ? 0 : bw ? bytes * 1000000000ull / bw : UINT64_MAX;
		pthread_mutex_lock(&m->lock);
		m->pass = pass;
		m->pass_pages = pages;
		m->remaining_bytes = bytes;
		m->harvest_ns = harvest;
		m->track_ns = track;
		m->expected_downtime_ns = expect == UINT64_MAX ? 0 : expect;
		m->dirty_rate_bps = rate;
		pthread_mutex_unlock(&m->lock);
		emit(m);
		/* Within the limit, go on while passes still halve what is left,
		 * down to DOWNTIME_GOAL_NS: the pause is then that short where
		 * the guest allows it, not merely within the limit, for a pass
		 * or two more. */
		bool shrinking = prev_pages && pages * 2 < prev_pages && pages > VMSAVE_PAGES_MAX &&
				 expect > DOWNTIME_GOAL_NS;
		if (pass > 1 && ((expect <= limit_ns && !shrinking) || pass >= MAX_PASSES)) {
			if (drained)
				break;
			/* What the socket buffers and the destination still hold
			 * would count as downtime: wait until it has loaded
			 * everything sent, then look at what was dirtied meanwhile
			 * (the guest runs on). */
			if ((r = sync_with_destination(m, s))) {
				if (m->error[0])
					return r;
				goto send_failed;
			}
			drained = true;
			pass--;   /* the same pass, looked at again */
			continue;
		}
		drained = false;
		prev_pages = pages;
		/* Not converging: the guest dirties faster than the link takes
		 * it away. Limit every vCPU's dirty rate to a shrinking share of
		 * the bandwidth (the dirty ring enforces it per vCPU). */
		if (pass >= THROTTLE_AFTER_PASS && bw && rate * 10 > bw * 3 && expect > limit_ns) {
			uint64_t share = m->throttle_bps ? m->throttle_bps / 2 : bw / 4;
			if (share < 1000000)
				share = 1000000;
			pthread_mutex_lock(&m->lock);
			m->throttle_bps = share;
			pthread_mutex_unlock(&m->lock);
			dirty_set_limit(d, share);
			log_info("migration: pass %u: dirty rate %.0f MB/s against %.0f MB/s sent: limiting "
				 "vCPUs to %.0f MB/s", pass, (double)rate / 1e6, (double)bw / 1e6, (double)share / 1e6);
		}
		uint64_t sent0 = s->sink.bytes, ts = now_ns();
		if ((r = send_dirty(s, false)))
			goto send_failed;
		uint64_t dt = now_ns() - ts, sent = s->sink.bytes - sent0;
		if (dt && sent && (sent >= (8u << 20) || !bw))
			bw = sent * 1000000000ull / dt;
		log_info("migration: pass %u: %llu pages, %.1f MiB in %.1f ms, harvest %.0f us, tracking %.0f us",
			 pass, (unsigned long long)pages, (double)sent / 1048576.0, (double)dt / 1e6, (double)harvest / 1e3,
			 (double)(__atomic_load_n(&d->stats.track_ns, __ATOMIC_RELAXED) - track0) / 1e3);
	}

	if (d->broken)
		return fail(m, -EIO, "the dirty ring lost entries (KVM): a copy would be inconsistent");
	/* Stop and copy. */
	uint64_t t_pause = now_ns();
	if ((r = vm_pause(vm)))
		return fail(m, r, "the VM is stopping");
	*paused = true;
	uint64_t t_paused = now_ns();
	dirty_set_limit(d, 0);
	if ((r = dirty_sync(d, s->dirty)))
		return fail(m, r, "harvesting dirty pages: %s", strerror(-r));
	uint64_t last = bitmap_count(s->dirty, d->npages);
	if ((r = send_dirty(s, true)))
		goto send_failed;
	uint64_t t_pages = now_ns();
	if ((r = vm_save_state(vm, &s->w)) || (r = state_writer_finish(&s->w)))
		goto send_failed;
	pthread_mutex_lock(&m->lock);
	m->bytes_sent = s->sink.bytes;
	m->remaining_bytes = 0;
	pthread_mutex_unlock(&m->lock);
	uint64_t t_sent = now_ns();

	if (d->broken)
		return fail(m, -EIO, "the dirty ring lost entries (KVM): a copy would be inconsistent");
	struct channel_msg msg;
	channel_set_timeout(m->fd, ACK_TIMEOUT_S);
	if ((r = channel_recv_msg(m->fd, &msg)))
		return fail(m, r, "no answer from the destination: %s", r == -ECONNRESET ? "it closed the connection" :
			    strerror(-r));
	if (msg.kind != CHANNEL_READY)
		return fail(m, -EPROTO, "the destination answered out of turn (%u)", msg.kind);
	if (msg.status)
		return fail(m, msg.status, "the destination refused the stream: %.200s", msg.text);
	/* The point of no return: once "go" is sent the destination runs. */
	if ((r = channel_send_msg(m->fd, CHANNEL_GO, 0, 0, NULL)))
		return fail(m, r, "sending go: %s", strerror(-r));
	uint64_t t_go = now_ns(), resumed = 0;
	if (channel_recv_msg(m->fd, &msg) == 0 && msg.kind == CHANNEL_RESUMED)
		resumed = msg.time_ns;
	uint64_t end = now_ns();
	log_info("migration: paused: %.2f ms pausing, %.2f ms for the last %llu pages, %.2f ms the state, "
		 "%.2f ms until the destination was ready, %.2f ms until it ran", (double)(t_paused - t_pause) / 1e6,
		 (double)(t_pages - t_paused) / 1e6, (unsigned long long)last, (double)(t_sent - t_pages) / 1e6,
		 (double)(t_go - t_sent) / 1e6,
		 (double)((resumed > t_go ? resumed : end) - t_go) / 1e6);
	pthread_mutex_lock(&m->lock);
	m->pause_ns = end - t_pause;
	/* CLOCK_MONOTONIC is one clock on one host: loopback migrations get the
	 * true pause-to-resume time; else the pause to the destination's word. */
	m->downtime_ns = resumed > t_pause && resumed <= end ? resumed - t_pause : end - t_pause;
	pthread_mutex_unlock(&m->lock);
	return 1;   /* done: the VM has moved */

send_failed:
	read_refusal(m, err, sizeof(err));
	if (err[0] && strstr(err, "refused"))
		return fail(m, r, "%s", err);
	return fail(m, r, "sending to the destination: %s", r == -EPIPE || r == -ECONNRESET ?
		    "the connection broke (destination gone?)" : strerror(-r));
}

static void *source_thread(void *arg)
{
	struct migration *m = arg;
	struct vm *vm = m->vm;
	struct sender s = { .m = m };
	s.dirty = calloc((vm->dirty.npages + 63) / 64, 8);
	s.buf = malloc((size_t)VMSAVE_PAGES_MAX * PAGE_SIZE);
	bool paused = false;
	int r = s.dirty && s.buf ? run_source(m, &s, &paused) : fail(m, -ENOMEM, "out of memory");
	state_writer_destroy(&s.w);
	free(s.dirty);
	free(s.buf);
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
	pthread_mutex_lock(&m->lock);
	m->total_ns = now_ns() - m->start_ns;
	m->status = r == 1 ? "completed" : "failed";
	pthread_mutex_unlock(&m->lock);
	for (unsigned i = 0; i < vm->dirty.nrings; i++)
		log_info("migration: ring %u: %llu entries harvested, %llu full exits, %llu polls", i,
			 (unsigned long long)vm->dirty.rings[i].harvested, (unsigned long long)vm->dirty.rings[i].full_exits,
			 (unsigned long long)vm->dirty.rings[i].polls);
	if (r == 1) {
		dirty_stop(&vm->dirty);
		log_info("migration to %s completed: %.1f ms total, downtime %.2f ms", m->uri,
			 (double)m->total_ns / 1e6, (double)m->downtime_ns / 1e6);
		emit(m);
		vm_stop(vm, STOP_MIGRATED, EXIT_GUEST_OFF);
	} else {
		/* Nothing is lost: the destination never got "go". */
		dirty_set_limit(&vm->dirty, 0);
		if (!snapshot_tracking(vm))
			dirty_stop(&vm->dirty);
		if (paused)
			vm_resume(vm);
		/* (a VM that stopped under it, e.g. powered off, does not go on) */
		log_error("migration to %s failed: %s; %s", m->uri, m->error,
			  __atomic_load_n(&vm->state, __ATOMIC_SEQ_CST) == VM_STOPPING ? "the VM stopped meanwhile"
										      : "the VM goes on here");
		emit(m);
	}
	__atomic_store_n(&m->done, true, __ATOMIC_RELEASE);
	return NULL;
}

int migrate_start(struct vm *vm, const char *uri, const struct migrate_params *p, char *err, size_t errlen)
{
	struct migration *m = vm->migration;
	if (m && !__atomic_load_n(&m->done, __ATOMIC_ACQUIRE)) {
		snprintf(err, errlen, "a migration is already running");
		return -EBUSY;
	}
	struct channel_addr a;
	int r = channel_parse(uri, &a, err, errlen);
	if (r)
		return r;
	if (!channel_numeric(&a)) {
		snprintf(err, errlen, "%s: give a numeric address: a running VM looks no names up (its sandbox)", a.host);
		return -EINVAL;
	}
	if (m) {
		pthread_join(m->thread, NULL);
		pthread_mutex_destroy(&m->lock);
		free(m);
		vm->migration = NULL;
	}
	if (!(m = calloc(1, sizeof(*m)))) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	m->vm = vm;
	m->addr = a;
	m->p = *p;
	m->fd = -1;
	m->status = "active";
	m->start_ns = now_ns();
	snprintf(m->uri, sizeof(m->uri), "%s", uri);
	pthread_mutex_init(&m->lock, NULL);
	vm->migration = m;
	struct sandbox_fds fds = SANDBOX_NO_FDS;
	fds.vm = vm->vm_fd;
	if ((r = sandbox_thread_create(&m->thread, THREAD_MIGRATION, &fds, "migrate", source_thread, m))) {
		vm->migration = NULL;
		free(m);
		snprintf(err, errlen, "starting the migration thread: %s", strerror(-r));
		return r;
	}
	m->started = true;
	return 0;
}

bool migrate_active(struct vm *vm)
{
	return vm->migration && !__atomic_load_n(&vm->migration->done, __ATOMIC_ACQUIRE);
}

void migrate_finish(struct vm *vm)
{
	struct migration *m = vm->migration;
	if (!m)
		return;
	if (!__atomic_load_n(&m->done, __ATOMIC_ACQUIRE) && m->fd >= 0)
		shutdown(m->fd, SHUT_RDWR);   /* the VM stopped under it: unblock the thread */
	pthread_join(m->thread, NULL);
	pthread_mutex_destroy(&m->lock);
	free(m);
	vm->migration = NULL;
}

/* ---- the destination ----------------------------------------------------------------- */

static int incoming_sync(struct vm_restore *rs)
{
	return channel_send_msg(rs->sync_fd, CHANNEL_SYNCED, 0, 0, NULL);
}

int migrate_incoming(const struct vm_config *cfg, struct vm *vm, struct vm_restore *rs, int *conn_fd)
{
	struct channel_addr a;
	char err[512];
	*conn_fd = -1;
	memset(vm, 0, sizeof(*vm));
	if (channel_parse(cfg->incoming, &a, err, sizeof(err))) {
		fprintf(stderr, "ember: error: --incoming %s\n", err);
		return EXIT_USAGE;
	}
	int lfd = channel_listen(&a, err, sizeof(err));
	if (lfd < 0) {
		fprintf(stderr, "ember: error: --incoming: %s\n", err);
		return EXIT_USAGE;
	}
	log_info("incoming migration: waiting on %s", cfg->incoming);
	int fd = channel_accept(lfd, &a);
	close(lfd);
	if (a.kind == CHANNEL_UNIX)
		unlink(a.path);
	if (fd < 0) {
		log_error("incoming migration: accept: %s", strerror(-fd));
		return EXIT_VMM_ERROR;
	}
	uint64_t t0 = now_ns();
	channel_set_timeout(fd, SEND_TIMEOUT_S);
	memset(rs, 0, sizeof(*rs));
	rs->create = vm_restore_create;
	rs->target = vm;
	rs->cmdline = cfg;
	rs->sync = incoming_sync;
	rs->sync_fd = fd;
	int sfd = fd;
	int r = vm_restore_load(rs, state_fd_source(&sfd), true, err, sizeof(err));
	if (r) {
		char why[600];
		snprintf(why, sizeof(why), "%s", r == -ECANCELED ? "the destination could not create the VM" : err);
		channel_send_msg(fd, CHANNEL_READY, r, 0, why);
		close(fd);
		if (rs->vm)
			vm_destroy(rs->vm);
		fprintf(stderr, "ember: error: incoming migration refused: %s\n", why);
		return r == -ECANCELED && rs->create_status ? rs->create_status : EXIT_USAGE;
	}
	log_info("incoming migration: loaded in %.1f ms (%llu pages)", (double)(now_ns() - t0) / 1e6,
		 (unsigned long long)rs->pages_loaded);
	struct channel_msg msg;
	channel_set_timeout(fd, ACK_TIMEOUT_S);
	if ((r = channel_send_msg(fd, CHANNEL_READY, 0, 0, NULL)) || (r = channel_recv_msg(fd, &msg)) ||
	    msg.kind != CHANNEL_GO) {
		close(fd);
		vm_destroy(vm);
		fprintf(stderr, "ember: error: incoming migration: the source did not confirm (%s); not resuming "
			"(the VM goes on at the source)\n", r ? strerror(-r) : "unexpected message");
		return EXIT_VMM_ERROR;
	}
	*conn_fd = fd;
	return 0;
}

void migrate_incoming_resumed(int conn_fd)
{
	if (conn_fd < 0)
		return;
	channel_send_msg(conn_fd, CHANNEL_RESUMED, 0, now_ns(), NULL);
	close(conn_fd);
}
