/* Snapshot writing (on a thread of the control plane's) and lazy restore
 * (a userfaultfd loader thread). */
#include "migration/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "control/control.h"
#include "dirty.h"
#include "log.h"
#include "migration/vmsave.h"
#include "sandbox/sandbox.h"
#include "vm.h"

#define PAGE_SIZE 4096u
#define CHUNK_PAGES (SNAPSHOT_CHUNK / PAGE_SIZE)
#define MAX_LAYERS 16                  /* a diff on a diff on ... a full snapshot */
#define STATE_FILE_MAX (256u << 20)

/* "memory" v1 */
enum { T_FILE = 1, T_ID, T_SIZE, T_CHUNK, T_CRCS, T_BASE_DIR, T_BASE_ID, T_PRESENT };

struct snapshot_track {
	pthread_t thread;
	bool joinable, busy;
	char dir[PATH_MAX];
	bool diff;
	/* The last snapshot written: the base of the next diff. */
	bool have_last;
	char last_dir[PATH_MAX];
	uint64_t last_id;
	uint32_t *crcs;                /* per chunk, of the RAM the last snapshot holds */
};

static uint64_t nchunks_of(uint64_t size)
{
	return (size + SNAPSHOT_CHUNK - 1) / SNAPSHOT_CHUNK;
}

static uint32_t crc_buf(const void *p, size_t len)
{
	return state_crc32(0, p, len);
}

static uint32_t zero_crc(size_t len)
{
	static const uint8_t zero[SNAPSHOT_CHUNK];
	return crc_buf(zero, len);
}

static bool page_zero(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)p;
	for (unsigned i = 0; i < PAGE_SIZE / 8; i++)
		if (w[i])
			return false;
	return true;
}

/* Does the file have data (not a hole) in [off, off+len)? */
static bool has_data(int fd, uint64_t off, uint64_t len)
{
	off_t d = lseek(fd, (off_t)off, SEEK_DATA);
	if (d < 0)
		return errno != ENXIO;   /* ENXIO: only a hole to the end */
	return (uint64_t)d < off + len;
}

static int pwrite_all(int fd, const uint8_t *p, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int pread_all(int fd, uint8_t *p, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0) {   /* past the end of a short file: zeros */
			memset(p, 0, len);
			return 0;
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* ---- writing ---------------------------------------------------------------------- */

/* crc continued over len zero bytes. */
static uint32_t crc_zeros(uint32_t crc, uint64_t len)
{
	static const uint8_t zero[SNAPSHOT_CHUNK];
	while (len) {
		size_t n = len < sizeof(zero) ? (size_t)len : sizeof(zero);
		crc = state_crc32(crc, zero, n);
		len -= n;
	}
	return crc;
}

struct snap_result {
	uint64_t data_pages, pages_considered;
	uint64_t pause_ns, total_ns, memory_ns;
};

struct snap_result;
/* Pages [a, b) (all data in the memfd): those in `only` (all without it)
 * that are not zero go to fd at their RAM offsets, in runs. */
static int write_pages(int fd, const uint8_t *host, uint64_t a, uint64_t b, const uint64_t *only,
		       struct snap_result *res);

/* Writes RAM pages (all, or those in `only`) that are not zero into fd at
 * their RAM offsets, and the chunk checksums into crcs. */
static int write_memory(struct vm *vm, int fd, const uint64_t *only, uint32_t *crcs, const uint32_t *base_crcs,
			struct snap_result *res)
{
	struct guest_mem *m = &vm->mem;
	uint64_t npages = m->size / PAGE_SIZE, nch = nchunks_of(m->size);
	/* SEEK_HOLE walks the memfd up to the hole it finds: ask again only
	 * past the last answer (asking per chunk walked the rest of RAM for
	 * every MiB: 2.9 s of a 1 GiB snapshot's pause). */
	uint64_t hole_from = 0, next_hole = 0;
	for (uint64_t c = 0; c < nch; c++) {
		uint64_t first = c * CHUNK_PAGES, n = npages - first < CHUNK_PAGES ? npages - first : CHUNK_PAGES;
		size_t len = (size_t)n * PAGE_SIZE;
		bool want = !only;
		for (uint64_t p = first; !want && p < first + n; p += 64)
			want = only[p >> 6] != 0;
		if (!want) {
			crcs[c] = base_crcs[c];
			continue;
		}
		/* A hole in guest RAM (never written, or given back by the
		 * balloon) is zeros: neither read (that would allocate it) nor
		 * written. */
		if (!has_data(m->fd, first * PAGE_SIZE, len)) {
			crcs[c] = zero_crc(len);
			continue;
		}
		/* Holes inside the chunk too: the CRC takes zeros for them,
		 * only the data parts are read. */
		uint32_t crc = 0;
		uint64_t off = first * PAGE_SIZE, end = off + len;
		while (off < end) {
			uint64_t d = mem_next_data(m, off, end);
			crc = crc_zeros(crc, d - off);
			if (d >= end)
				break;
			if (d < hole_from || d >= next_hole) {
				hole_from = d;
				next_hole = mem_next_hole(m, d, m->size);
			}
			uint64_t h = next_hole < end ? next_hole : end;
			crc = state_crc32(crc, m->host + d, h - d);
			int r = write_pages(fd, m->host, d / PAGE_SIZE, h / PAGE_SIZE, only, res);
			if (r)
				return r;
			off = h;
		}
		crcs[c] = crc;
	}
	return 0;
}

static int write_pages(int fd, const uint8_t *host, uint64_t a, uint64_t b, const uint64_t *only,
		       struct snap_result *res)
{
	uint64_t run = 0, run_len = 0;
	for (uint64_t p = a; p <= b; p++) {
		bool in = p < b && (!only || bit_test(only, p));
		bool w = in && !page_zero(host + p * PAGE_SIZE);
		res->pages_considered += in;
		if (w) {
			if (!run_len)
				run = p;
			run_len++;
			res->data_pages++;
			continue;
		}
		if (run_len) {
			int r = pwrite_all(fd, host + run * PAGE_SIZE, run_len * PAGE_SIZE, run * PAGE_SIZE);
			if (r)
				return r;
			run_len = 0;
		}
	}
	return 0;
}

struct snap_ctx {
	struct vm *vm;
	uint64_t id, base_id;
	const char *base_dir;
	const uint32_t *crcs;
	const uint64_t *present;      /* diff: the pages the file holds */
};

static int put_memory_section(struct state_writer *w, const struct snap_ctx *c)
{
	struct vm *vm = c->vm;
	uint64_t nch = nchunks_of(vm->mem.size);
	int r = state_begin_section(w, "memory", 0, 1);
	if (r)
		return r;
	state_put_blob(w, T_FILE, "memory", 6);
	state_put_u64(w, T_ID, c->id);
	state_put_u64(w, T_SIZE, vm->mem.size);
	state_put_u32(w, T_CHUNK, SNAPSHOT_CHUNK);
	state_put_blob(w, T_CRCS, c->crcs, nch * 4);
	state_put_blob(w, T_BASE_DIR, c->base_dir ? c->base_dir : "", c->base_dir ? strlen(c->base_dir) : 0);
	state_put_u64(w, T_BASE_ID, c->base_id);
	state_put_blob(w, T_PRESENT, c->present, c->present ? (vm->dirty.npages + 63) / 64 * 8 : 0);
	return state_end_section(w);
}

static int open_tmp(const char *dir, const char *name, char *path, size_t len)
{
	snprintf(path, len, "%s/%s.tmp", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	return fd < 0 ? -errno : fd;
}

static int commit(const char *dir, const char *name, const char *tmp)
{
	char final[PATH_MAX + 16];
	snprintf(final, sizeof(final), "%s/%s", dir, name);
	return rename(tmp, final) < 0 ? -errno : 0;
}

static int take_snapshot(struct vm *vm, struct snapshot_track *t, struct snap_result *res, char *err, size_t errlen)
{
	uint64_t t0 = now_ns();
	struct dirty *d = &vm->dirty;
	bool diff = t->diff;
	if (diff && d->broken) {
		snprintf(err, errlen, "the dirty ring lost entries (KVM): take a full snapshot");
		return -EIO;
	}
	if (diff && !(t->have_last && d->active)) {
		snprintf(err, errlen, "no base for a diff snapshot: take a full snapshot of this VM first");
		return -ENOENT;
	}
	if (mkdir(t->dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "%.300s: %s", t->dir, strerror(errno));
		return -errno;
	}
	char absdir[PATH_MAX];
	if (!realpath(t->dir, absdir)) {
		snprintf(err, errlen, "%.300s: %s", t->dir, strerror(errno));
		return -errno;
	}
	if (diff && !strcmp(absdir, t->last_dir)) {
		snprintf(err, errlen, "%.300s holds the base snapshot: write the diff elsewhere", t->dir);
		return -EEXIST;
	}
	restore_wait_loaded(vm);
	uint64_t nch = nchunks_of(vm->mem.size), words = (d->npages + 63) / 64;
	uint64_t *dirty = calloc(words, 8);
	uint32_t *crcs = calloc(nch, 4);
	char mtmp[PATH_MAX + 16], stmp[PATH_MAX + 16];
	int mfd = -1, sfd = -1, r;
	struct state_buf sb = { 0 };   /* the state at the pause, below */
	if (!dirty || !crcs) {
		r = -ENOMEM;
		goto out;
	}
	uint64_t id;
	if (getrandom(&id, sizeof(id), 0) != sizeof(id))
		id = now_ns() ^ (uint64_t)getpid() << 32;

	if ((r = vm_pause(vm))) {
		snprintf(err, errlen, "the VM is stopping");
		goto out;
	}
	uint64_t tp = now_ns();
	bool tp_synced = false;
	/* Keep the dirty log on from here: the next snapshot may be a diff. */
	if ((r = dirty_start(d)) || (r = dirty_sync(d, dirty))) {
		snprintf(err, errlen, "dirty log: %s", strerror(-r));
		goto resume;
	}
	tp_synced = true;
	dirty_rearm(d, dirty, 0, d->npages);
	if ((mfd = open_tmp(absdir, "memory", mtmp, sizeof(mtmp))) < 0 ||
	    (sfd = open_tmp(absdir, "state", stmp, sizeof(stmp))) < 0) {
		r = mfd < 0 ? mfd : sfd;
		snprintf(err, errlen, "%.300s: %s", absdir, strerror(-r));
		goto resume;
	}
	if (ftruncate(mfd, (off_t)vm->mem.size) < 0) {
		r = -errno;
		snprintf(err, errlen, "%.300s: %s", mtmp, strerror(errno));
		goto resume;
	}
	/* The vCPUs, devices and clock as they are at the pause, before the
	 * memory is written: kvmclock and the TSC run while the VM is paused,
	 * and read after the memory write they were ahead of RAM by its time
	 * (3 s for a Linux guest in the nested test host), which a restored
	 * guest saw as a jump of its clock. Their sections follow the memory
	 * section in the stream (it holds the CRCs the write computes). */
	struct state_writer sw;
	r = state_writer_init(&sw, state_buf_sink(&sb));
	if (!r)
		r = vm_save_state(vm, &sw);
	state_writer_destroy(&sw);
	if (r) {
		snprintf(err, errlen, "saving the VM's state: %s", strerror(-r));
		goto resume;
	}
	uint64_t tm = now_ns();
	if ((r = write_memory(vm, mfd, diff ? dirty : NULL, crcs, t->crcs, res))) {
		snprintf(err, errlen, "%.300s: %s", mtmp, strerror(-r));
		goto resume;
	}
	res->memory_ns = now_ns() - tm;
	struct snap_ctx c = { .vm = vm, .id = id, .crcs = crcs };
	if (diff) {
		c.base_dir = t->last_dir;
		c.base_id = t->last_id;
		c.present = dirty;
	}
	struct state_writer w;
	r = state_writer_init(&w, state_fd_sink(&sfd));
	if (!r)
		r = vm_save_shape(vm, &w);
	if (!r)
		r = put_memory_section(&w, &c);
	if (!r)
		r = state_writer_append(&w, &sb);
	if (!r)
		r = state_writer_finish(&w);
	state_writer_destroy(&w);
	if (r) {
		snprintf(err, errlen, "%.300s: %s", stmp, strerror(-r));
		goto resume;
	}
	/* Guest RAM and the state are in the files (the page cache): the
	 * guest goes on while they reach the disk. */
	res->pause_ns = now_ns() - tp;
	vm_resume(vm);
	/* Durable, then visible: the memory file first, the state last, so a
	 * state file always has its memory beside it. */
	if (fdatasync(mfd) < 0 || fdatasync(sfd) < 0 || (r = commit(absdir, "memory", mtmp)) ||
	    (r = commit(absdir, "state", stmp))) {
		r = r ? r : -errno;
		snprintf(err, errlen, "%.300s: %s", absdir, strerror(-r));
		/* The dirty log was harvested for a snapshot that is not
		 * there: the next one must be full. */
		t->have_last = false;
		goto out;
	}
	t->have_last = true;
	snprintf(t->last_dir, sizeof(t->last_dir), "%s", absdir);
	t->last_id = id;
	free(t->crcs);
	t->crcs = crcs;
	crcs = NULL;
	goto out;
resume:
	res->pause_ns = now_ns() - tp;
	vm_resume(vm);
	if (r && tp_synced)
		t->have_last = false;   /* as above */
out:
	if (mfd >= 0)
		close(mfd);
	if (sfd >= 0)
		close(sfd);
	if (r) {
		unlink(mtmp);
		unlink(stmp);
	}
	free(dirty);
	free(crcs);
	state_buf_free(&sb);
	res->total_ns = now_ns() - t0;
	return r;
}

static void *snapshot_thread(void *arg)
{
	struct vm *vm = arg;
	struct snapshot_track *t = vm->snap;
	struct snap_result res = { 0 };
	char err[512] = "";
	int r = take_snapshot(vm, t, &res, err, sizeof(err));
	json_object *o = json_object_new_object();
	json_object_object_add(o, "status", json_object_new_string(r ? "failed" : "completed"));
	json_object_object_add(o, "path", json_object_new_string(t->dir));
	json_object_object_add(o, "diff", json_object_new_boolean(t->diff));
	if (r) {
		json_object_object_add(o, "error", json_object_new_string(err));
		log_error("snapshot %s: %s", t->dir, err);
	} else {
		json_object_object_add(o, "data_pages", json_object_new_int64((int64_t)res.data_pages));
		json_object_object_add(o, "bytes_written", json_object_new_int64((int64_t)(res.data_pages * PAGE_SIZE)));
		json_object_object_add(o, "paused_ms", json_object_new_double((double)res.pause_ns / 1e6));
		json_object_object_add(o, "memory_ms", json_object_new_double((double)res.memory_ns / 1e6));
		json_object_object_add(o, "total_ms", json_object_new_double((double)res.total_ns / 1e6));
		log_info("snapshot %s: %llu data pages, paused %.1f ms", t->dir, (unsigned long long)res.data_pages,
			 (double)res.pause_ns / 1e6);
	}
	events_emit(vm->control, "snapshot", o);
	__atomic_store_n(&t->busy, false, __ATOMIC_RELEASE);
	return NULL;
}

int snapshot_start(struct vm *vm, const char *dir, bool diff, char *err, size_t errlen)
{
	struct snapshot_track *t = vm->snap;
	if (t && __atomic_load_n(&t->busy, __ATOMIC_ACQUIRE)) {
		snprintf(err, errlen, "a snapshot is being written");
		return -EBUSY;
	}
	if (strlen(dir) >= PATH_MAX - 32) {
		snprintf(err, errlen, "path too long");
		return -ENAMETOOLONG;
	}
	if (!t) {
		if (!(t = calloc(1, sizeof(*t)))) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		vm->snap = t;
	}
	if (t->joinable) {
		pthread_join(t->thread, NULL);
		t->joinable = false;
	}
	snprintf(t->dir, sizeof(t->dir), "%s", dir);
	t->diff = diff;
	t->busy = true;
	struct sandbox_fds fds = SANDBOX_NO_FDS;
	fds.vm = vm->vm_fd;
	int r = sandbox_thread_create(&t->thread, THREAD_MIGRATION, &fds, "snapshot", snapshot_thread, vm);
	if (r) {
		t->busy = false;
		snprintf(err, errlen, "starting the snapshot thread: %s", strerror(-r));
		return r;
	}
	t->joinable = true;
	return 0;
}

bool snapshot_tracking(struct vm *vm)
{
	return vm->snap && vm->snap->have_last;
}

static void lazy_stop(struct vm *vm);

void snapshot_finish(struct vm *vm)
{
	lazy_stop(vm);
	struct snapshot_track *t = vm->snap;
	if (!t)
		return;
	if (t->joinable)
		pthread_join(t->thread, NULL);
	free(t->crcs);
	free(t);
	vm->snap = NULL;
}

/* ---- restoring ------------------------------------------------------------------------ */

struct layer {
	int fd;
	uint64_t *present;            /* NULL: every page (a full snapshot) */
};

struct lazy_restore {
	struct vm *vm;
	int uffd, stop_fd;
	pthread_t thread;
	bool thread_started;
	struct layer layers[MAX_LAYERS];
	int nlayers;
	uint32_t *crcs;
	uint64_t nchunks, next;
	uint8_t *state;               /* per chunk: 0 not loaded, 1 loaded, 2 zero (left as holes) */
	uint8_t *buf;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	uint64_t faults, chunks_copied, t0;
};

enum { CH_MISSING, CH_LOADED, CH_ZERO };

static void lazy_free(struct lazy_restore *lz)
{
	for (int i = 0; i < lz->nlayers; i++) {
		if (lz->layers[i].fd >= 0)
			close(lz->layers[i].fd);
		free(lz->layers[i].present);
	}
	if (lz->uffd >= 0)
		close(lz->uffd);
	if (lz->stop_fd >= 0)
		close(lz->stop_fd);
	free(lz->crcs);
	free(lz->state);
	free(lz->buf);
	pthread_mutex_destroy(&lz->lock);
	pthread_cond_destroy(&lz->cond);
	free(lz);
}

/* Fill lz->buf with chunk c from the layers; false when every page of it
 * is a hole in its layer (all zeros, nothing read). */
static int read_chunk(struct lazy_restore *lz, uint64_t c, size_t len, bool *zero)
{
	uint64_t first = c * CHUNK_PAGES, n = len / PAGE_SIZE;
	*zero = true;
	for (uint64_t i = 0; i < n;) {
		int li = 0;
		while (li < lz->nlayers - 1 && !bit_test(lz->layers[li].present, first + i))
			li++;
		uint64_t j = i + 1;
		while (j < n) {
			int lj = 0;
			while (lj < lz->nlayers - 1 && !bit_test(lz->layers[lj].present, first + j))
				lj++;
			if (lj != li)
				break;
			j++;
		}
		uint64_t off = (first + i) * PAGE_SIZE, rl = (j - i) * PAGE_SIZE;
		if (has_data(lz->layers[li].fd, off, rl)) {
			int r = pread_all(lz->layers[li].fd, lz->buf + i * PAGE_SIZE, rl, off);
			if (r)
				return r;
			*zero = false;
		} else {
			memset(lz->buf + i * PAGE_SIZE, 0, rl);
		}
		i = j;
	}
	return 0;
}

static int uffd_ioctl_range(int uffd, unsigned long req, uint64_t start, uint64_t len, const void *src)
{
	if (req == UFFDIO_COPY) {
		struct uffdio_copy cp = { .dst = start, .src = (uint64_t)(uintptr_t)src, .len = len };
		if (ioctl(uffd, UFFDIO_COPY, &cp) < 0 && errno != EEXIST)
			return -errno;
	} else if (req == UFFDIO_ZEROPAGE) {
		struct uffdio_zeropage z = { .range = { start, len } };
		if (ioctl(uffd, UFFDIO_ZEROPAGE, &z) < 0 && errno != EEXIST)
			return -errno;
	} else {
		struct uffdio_range w = { start, len };
		if (ioctl(uffd, UFFDIO_WAKE, &w) < 0)
			return -errno;
	}
	return 0;
}

/* Load chunk c into guest RAM (fault: a vCPU waits on it). */
static int load_chunk(struct lazy_restore *lz, uint64_t c, bool fault)
{
	struct guest_mem *m = &lz->vm->mem;
	uint64_t start = c * SNAPSHOT_CHUNK;
	size_t len = m->size - start < SNAPSHOT_CHUNK ? (size_t)(m->size - start) : SNAPSHOT_CHUNK;
	uint64_t dst = (uint64_t)(uintptr_t)(m->host + start);
	if (lz->state[c] == CH_LOADED)
		return fault ? uffd_ioctl_range(lz->uffd, UFFDIO_WAKE, dst, len, NULL) : 0;
	if (lz->state[c] == CH_MISSING) {
		bool zero;
		int r = read_chunk(lz, c, len, &zero);
		if (r) {
			log_error("--restore: reading the memory file: %s", strerror(-r));
			return r;
		}
		uint32_t want = zero ? zero_crc(len) : crc_buf(lz->buf, len);
		if (want != lz->crcs[c]) {
			log_error("--restore: the snapshot's memory is corrupt at %#llx-%#llx (checksum mismatch): "
				  "the VM cannot go on", (unsigned long long)start, (unsigned long long)(start + len - 1));
			return -EBADMSG;
		}
		if (zero) {
			lz->state[c] = CH_ZERO;
		} else {
			if ((r = uffd_ioctl_range(lz->uffd, UFFDIO_COPY, dst, len, lz->buf)))
				return r;
			lz->state[c] = CH_LOADED;
			lz->chunks_copied++;
			return 0;
		}
	}
	/* A zero chunk stays a hole unless the guest touches it. */
	if (fault) {
		int r = uffd_ioctl_range(lz->uffd, UFFDIO_ZEROPAGE, dst, len, NULL);
		if (r)
			return r;
		lz->state[c] = CH_LOADED;
	}
	return 0;
}

static void lazy_fatal(struct lazy_restore *lz)
{
	vm_stop(lz->vm, STOP_ERROR, EXIT_VMM_ERROR);
	/* Let every waiting vCPU go on (into the stop) with zeros. */
	struct guest_mem *m = &lz->vm->mem;
	for (uint64_t c = 0; c < lz->nchunks; c++) {
		if (lz->state[c] == CH_LOADED)
			continue;
		uint64_t start = c * SNAPSHOT_CHUNK;
		size_t len = m->size - start < SNAPSHOT_CHUNK ? (size_t)(m->size - start) : SNAPSHOT_CHUNK;
		uffd_ioctl_range(lz->uffd, UFFDIO_ZEROPAGE, (uint64_t)(uintptr_t)(m->host + start), len, NULL);
	}
}

static void *lazy_thread(void *arg)
{
	struct lazy_restore *lz = arg;
	struct guest_mem *m = &lz->vm->mem;
	bool failed = false;
	for (;;) {
		while (lz->next < lz->nchunks && lz->state[lz->next] != CH_MISSING)
			lz->next++;
		if (lz->next >= lz->nchunks)
			break;   /* everything is in (zero chunks stay holes) */
		struct pollfd p[2] = { { lz->uffd, POLLIN, 0 }, { lz->stop_fd, POLLIN, 0 } };
		int n = poll(p, 2, 0);
		if (n < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (p[0].revents & POLLIN) {
			struct uffd_msg msg[16];
			ssize_t got = read(lz->uffd, msg, sizeof(msg));
			for (ssize_t i = 0; i < got / (ssize_t)sizeof(msg[0]); i++) {
				if (msg[i].event != UFFD_EVENT_PAGEFAULT)
					continue;
				uint64_t off = msg[i].arg.pagefault.address - (uint64_t)(uintptr_t)m->host;
				lz->faults++;
				if (off < m->size && load_chunk(lz, off / SNAPSHOT_CHUNK, true)) {
					failed = true;
					break;
				}
			}
		} else if (load_chunk(lz, lz->next, false)) {
			failed = true;
		}
		if (failed)
			break;
	}
	if (failed) {
		lazy_fatal(lz);
	} else if (lz->next >= lz->nchunks) {
		struct uffdio_range r = { (uint64_t)(uintptr_t)m->host, m->size };
		if (ioctl(lz->uffd, UFFDIO_UNREGISTER, &r) < 0)
			log_warn("--restore: UFFDIO_UNREGISTER: %s", strerror(errno));
		log_info("--restore: guest RAM loaded in %.1f ms (%llu chunks copied, %llu faults)",
			 (double)(now_ns() - lz->t0) / 1e6, (unsigned long long)lz->chunks_copied,
			 (unsigned long long)lz->faults);
	}
	pthread_mutex_lock(&lz->lock);
	lz->done = true;
	pthread_cond_broadcast(&lz->cond);
	pthread_mutex_unlock(&lz->lock);
	return NULL;
}

void restore_wait_loaded(struct vm *vm)
{
	struct lazy_restore *lz = vm->lazy;
	if (!lz)
		return;
	pthread_mutex_lock(&lz->lock);
	while (!lz->done)
		pthread_cond_wait(&lz->cond, &lz->lock);
	pthread_mutex_unlock(&lz->lock);
}

static void lazy_stop(struct vm *vm)
{
	struct lazy_restore *lz = vm->lazy;
	if (!lz)
		return;
	if (lz->thread_started) {
		uint64_t one = 1;
		if (write(lz->stop_fd, &one, sizeof(one)) < 0)
			log_warn("--restore: stopping the loader: %s", strerror(errno));
		pthread_join(lz->thread, NULL);
	}
	lazy_free(lz);
	vm->lazy = NULL;
}

/* Without userfaultfd: load everything now. */
static int eager_load(struct lazy_restore *lz)
{
	struct guest_mem *m = &lz->vm->mem;
	for (uint64_t c = 0; c < lz->nchunks; c++) {
		uint64_t start = c * SNAPSHOT_CHUNK;
		size_t len = m->size - start < SNAPSHOT_CHUNK ? (size_t)(m->size - start) : SNAPSHOT_CHUNK;
		bool zero;
		int r = read_chunk(lz, c, len, &zero);
		if (r)
			return r;
		if ((zero ? zero_crc(len) : crc_buf(lz->buf, len)) != lz->crcs[c])
			return -EBADMSG;
		if (!zero)
			memcpy(m->host + start, lz->buf, len);
	}
	return 0;
}

static int start_lazy(struct lazy_restore *lz)
{
	struct guest_mem *m = &lz->vm->mem;
	lz->uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (lz->uffd >= 0) {
		struct uffdio_api api = { .api = UFFD_API };
		struct uffdio_register reg = { .range = { (uint64_t)(uintptr_t)m->host, m->size },
					       .mode = UFFDIO_REGISTER_MODE_MISSING };
		if (ioctl(lz->uffd, UFFDIO_API, &api) == 0 && ioctl(lz->uffd, UFFDIO_REGISTER, &reg) == 0 &&
		    (reg.ioctls & (1ull << _UFFDIO_COPY)) && (reg.ioctls & (1ull << _UFFDIO_ZEROPAGE))) {
			lz->stop_fd = eventfd(0, EFD_CLOEXEC);
			struct sandbox_fds fds = SANDBOX_NO_FDS;
			if (lz->stop_fd >= 0 &&
			    sandbox_thread_create(&lz->thread, THREAD_MIGRATION, &fds, "restore", lazy_thread, lz) == 0) {
				lz->thread_started = true;
				return 0;
			}
		}
		log_warn("--restore: userfaultfd unusable here (%s): loading all of RAM first", strerror(errno));
		close(lz->uffd);
		lz->uffd = -1;
	} else {
		log_warn("--restore: no userfaultfd (%s): loading all of RAM first", strerror(errno));
	}
	int r = eager_load(lz);
	lz->done = true;
	return r;
}

/* Reads a snapshot's state file into b. */
static int read_state_file(const char *dir, struct state_buf *b, char *err, size_t errlen)
{
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/state", dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(err, errlen, "%.300s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -ENOENT;
	}
	if (st.st_size <= 0 || (uint64_t)st.st_size > STATE_FILE_MAX) {
		close(fd);
		snprintf(err, errlen, "%.300s: not a state file (%lld bytes)", path, (long long)st.st_size);
		return -EBADMSG;
	}
	memset(b, 0, sizeof(*b));
	b->data = malloc((size_t)st.st_size);
	b->cap = b->len = (size_t)st.st_size;
	int r = b->data ? pread_all(fd, b->data, b->len, 0) : -ENOMEM;
	close(fd);
	if (r) {
		state_buf_free(b);
		snprintf(err, errlen, "%.300s: %s", path, strerror(-r));
	}
	return r;
}

struct memory_load {
	struct lazy_restore *lz;
	const char *dir;
	int depth;
	uint64_t want_id;             /* a base: the id its diff names */
	uint64_t ram_size;
	bool base_only;               /* reading a base: only "memory" matters */
};

static int load_memory_section(struct memory_load *ml, struct state_reader *r);

static int skip_section(void *opaque, struct state_reader *r)
{
	(void)opaque;
	r->pos = r->len;
	return 0;
}

static int base_memory(void *opaque, struct state_reader *r)
{
	return load_memory_section(opaque, r);
}

static int open_base(struct memory_load *ml, const char *dir, uint64_t id, struct state_reader *r)
{
	if (ml->depth + 1 >= MAX_LAYERS)
		return state_fail(r, "more than %d snapshots stacked", MAX_LAYERS);
	struct state_buf b;
	char err[512];
	if (read_state_file(dir, &b, err, sizeof(err)))
		return state_fail(r, "base snapshot: %s", err);
	struct memory_load sub = { .lz = ml->lz, .dir = dir, .depth = ml->depth + 1, .want_id = id,
				   .ram_size = ml->ram_size, .base_only = true };
	const struct state_loader loaders[] = {
		{ "memory", 1, base_memory, &sub },
		{ STATE_ANY_SECTION, UINT32_MAX, skip_section, NULL },
	};
	int e = state_load(state_buf_source(&b), loaders, 2, err, sizeof(err));
	state_buf_free(&b);
	if (e)
		return state_fail(r, "base snapshot %.200s: %.200s", dir, err);
	return 0;
}

static int load_memory_section(struct memory_load *ml, struct state_reader *r)
{
	struct lazy_restore *lz = ml->lz;
	char file[64], base_dir[PATH_MAX];
	uint64_t id, size, base_id;
	uint32_t chunk;
	const void *crcs, *present;
	size_t ncrc, npres;
	int e;
	const void *p;
	size_t len;
	if ((e = state_get_blob_ref(r, T_FILE, &p, &len)))
		return e;
	if (len == 0 || len >= sizeof(file) || memchr(p, '/', len) || memchr(p, 0, len))
		return state_fail(r, "bad memory file name");
	memcpy(file, p, len);
	file[len] = '\0';
	if ((e = state_get_u64(r, T_ID, &id)) || (e = state_get_u64(r, T_SIZE, &size)) ||
	    (e = state_get_u32(r, T_CHUNK, &chunk)) || (e = state_get_blob_ref(r, T_CRCS, &crcs, &ncrc)) ||
	    (e = state_get_blob_ref(r, T_BASE_DIR, &p, &len)))
		return e;
	if (len >= sizeof(base_dir) || memchr(p, 0, len))
		return state_fail(r, "bad base directory");
	memcpy(base_dir, p, len);
	base_dir[len] = '\0';
	if ((e = state_get_u64(r, T_BASE_ID, &base_id)) || (e = state_get_blob_ref(r, T_PRESENT, &present, &npres)))
		return e;
	uint64_t npages = ml->ram_size / PAGE_SIZE;
	if (size != ml->ram_size)
		return state_fail(r, "memory of %llu bytes for %llu bytes of RAM", (unsigned long long)size,
				  (unsigned long long)ml->ram_size);
	if (chunk != SNAPSHOT_CHUNK || ncrc != nchunks_of(size) * 4)
		return state_fail(r, "chunking %u/%zu not understood", chunk, ncrc);
	if (ml->want_id && id != ml->want_id)
		return state_fail(r, "is not the snapshot the diff was taken against (it was replaced?)");
	bool is_diff = base_dir[0] != '\0';
	if (is_diff != (npres != 0) || (is_diff && npres != (npages + 63) / 64 * 8))
		return state_fail(r, "inconsistent diff description");
	/* The newest layer's checksums describe the whole merged RAM. */
	if (ml->depth == 0) {
		lz->nchunks = nchunks_of(size);
		if (!(lz->crcs = malloc(ncrc)))
			return -ENOMEM;
		memcpy(lz->crcs, crcs, ncrc);
	}
	char path[PATH_MAX * 2];
	snprintf(path, sizeof(path), "%s/%s", ml->dir, file);
	struct layer *l = &lz->layers[lz->nlayers];
	l->fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (l->fd < 0 || fstat(l->fd, &st) < 0)
		return state_fail(r, "%.300s: %s", path, strerror(errno));
	lz->nlayers++;
	if ((uint64_t)st.st_size != size)
		return state_fail(r, "%.300s: %lld bytes, expected %llu (truncated?)", path, (long long)st.st_size,
				  (unsigned long long)size);
	if (is_diff) {
		if (!(l->present = malloc(npres)))
			return -ENOMEM;
		memcpy(l->present, present, npres);
		return open_base(ml, base_dir, base_id, r);
	}
	return 0;
}

static int restore_memory(struct vm_restore *rs, struct state_reader *r)
{
	struct vm *vm = rs->vm;
	struct lazy_restore *lz = calloc(1, sizeof(*lz));
	if (!lz)
		return -ENOMEM;
	lz->vm = vm;
	lz->uffd = lz->stop_fd = -1;
	pthread_mutex_init(&lz->lock, NULL);
	pthread_cond_init(&lz->cond, NULL);
	for (int i = 0; i < MAX_LAYERS; i++)
		lz->layers[i].fd = -1;
	vm->lazy = lz;
	struct memory_load ml = { .lz = lz, .dir = rs->opaque, .ram_size = vm->mem.size };
	int e = load_memory_section(&ml, r);
	if (e)
		return e;
	if (!(lz->state = calloc(lz->nchunks, 1)) || !(lz->buf = malloc(SNAPSHOT_CHUNK)))
		return -ENOMEM;
	lz->t0 = now_ns();
	if ((e = start_lazy(lz)))
		return state_fail(r, "loading the memory file: %s", e == -EBADMSG ? "checksum mismatch (corrupt)" :
				  strerror(-e));
	return 0;
}

int snapshot_restore(const struct vm_config *cfg, struct vm *vm, struct vm_restore *rs)
{
	char err[600];
	struct state_buf b;
	uint64_t t0 = now_ns();
	memset(vm, 0, sizeof(*vm));
	memset(rs, 0, sizeof(*rs));
	if (read_state_file(cfg->restore, &b, err, sizeof(err))) {
		fprintf(stderr, "ember: error: --restore: %s\n", err);
		return EXIT_USAGE;
	}
	rs->create = vm_restore_create;
	rs->target = vm;
	rs->cmdline = cfg;
	rs->memory = restore_memory;
	rs->opaque = (void *)cfg->restore;
	int r = vm_restore_load(rs, state_buf_source(&b), false, err, sizeof(err));
	state_buf_free(&b);
	if (r) {
		if (rs->vm) {
			snapshot_finish(rs->vm);
			vm_destroy(rs->vm);
		}
		if (r == -ECANCELED && rs->create_status)
			return rs->create_status;
		fprintf(stderr, "ember: error: --restore %s: %s\n", cfg->restore, err);
		return EXIT_USAGE;
	}
	log_info("--restore: %.2f ms since start: VM created in %.2f ms, state loaded in %.2f ms (%.2f ms of it "
		 "waiting for the PIT)", (double)(now_ns() - ember_start_ns) / 1e6, (double)rs->create_ns / 1e6,
		 (double)(now_ns() - t0 - rs->create_ns) / 1e6, (double)rs->pit_wait_ns / 1e6);
	return 0;
}
