#include "devices/virtio/blk.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define SECTOR 512u
#define RING_DISK 0   /* the disk's index among the ring's registered files */
#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))
/* Requests this big go to io_uring's worker threads (IOSQE_ASYNC): a
 * buffered read or write is a copy, done inline by io_uring_enter on the
 * loop thread otherwise, one after the other; the workers copy in
 * parallel and each completes on its own. Small requests stay inline,
 * where they cost least. */
#define ASYNC_BYTES (128 * 1024)

/* Where a write-zeroes request is: a file system without
 * FALLOC_FL_ZERO_RANGE (tmpfs) gets a hole punched and, unless the driver
 * allowed unmapping, the range allocated again, as QEMU does. */
enum zero_step { ZERO_RANGE, ZERO_PUNCH, ZERO_ALLOCATE };

struct blk_req {
	struct vq_elem e;
	struct blk_request r;
	uint32_t used_len;
	/* discard and write zeroes: the range checked at the start, kept
	 * because the guest may rewrite its segment meanwhile */
	off_t range_off, range_len;
	bool unmap;
	enum zero_step zero_step;
	uint16_t slot;                /* its index in vblk.reqs */
	struct iovec iov[BLK_IOV_MAX];
};

struct vblk {
	struct virtio_dev vd;
	struct virtio_blk_config cfg;
	int fd;
	bool readonly;
	char serial[VIRTIO_BLK_ID_BYTES];
	uint64_t sectors;
	struct io_uring ring;
	bool ring_ok;
	int ring_efd;                 /* completions, watched by the loop */
	/* Request slots, each allocated when first used: all of them are
	 * 1 MiB (256 iovecs each), which most disks never fill. */
	struct blk_req *reqs[BLK_QUEUE_SIZE];
	uint16_t free[BLK_QUEUE_SIZE];
	unsigned nfree;
	unsigned inflight;            /* submitted to io_uring */
	bool pushed;                  /* used ring changed since the last interrupt check */
	bool no_zero_range;           /* the disk's file system refused FALLOC_FL_ZERO_RANGE */
};

/* ---- Framing (pure: the fuzz target drives these) ------------------------- */

static bool gather(const struct iovec *iov, unsigned n, void *dst, size_t len)
{
	uint8_t *d = dst;
	for (unsigned i = 0; i < n && len; i++) {
		size_t c = iov[i].iov_len < len ? iov[i].iov_len : len;
		memcpy(d, iov[i].iov_base, c);
		d += c;
		len -= c;
	}
	return len == 0;
}

/* Drop skip bytes from the front of iov[0..*n): advances *iov. */
static void iov_skip(struct iovec **iov, unsigned *n, size_t skip)
{
	while (*n && skip) {
		if ((*iov)->iov_len > skip) {
			(*iov)->iov_base = (uint8_t *)(*iov)->iov_base + skip;
			(*iov)->iov_len -= skip;
			return;
		}
		skip -= (*iov)->iov_len;
		(*iov)++;
		(*n)--;
	}
}

int blk_parse(struct vq_elem *e, struct blk_request *r)
{
	struct virtio_blk_outhdr h;
	memset(r, 0, sizeof(*r));
	if (e->in_len < 1 || !gather(e->iov, e->nout, &h, sizeof(h)))
		return -EINVAL;
	r->type = h.type;
	r->sector = h.sector;
	struct iovec *in = e->iov + e->nout;
	struct iovec *last = &in[e->nin - 1];
	while (last > in && last->iov_len == 0)   /* vq_pop keeps none, but be safe */
		last--;
	r->status = (uint8_t *)last->iov_base + last->iov_len - 1;
	if (r->type == VIRTIO_BLK_T_IN || r->type == VIRTIO_BLK_T_GET_ID) {
		/* Payload: the writable part minus the status byte. */
		last->iov_len--;
		r->data = in;
		r->ndata = e->nin;
		r->data_len = e->in_len - 1;
	} else {
		r->data = e->iov;
		r->ndata = e->nout;
		iov_skip(&r->data, &r->ndata, sizeof(h));
		r->data_len = e->out_len - sizeof(h);
	}
	return 0;
}

static bool range_ok(uint64_t sector, uint64_t nsect, uint64_t disk)
{
	return sector <= disk && nsect <= disk - sector;
}

uint8_t blk_check(const struct blk_request *r, uint64_t sectors, bool readonly)
{
	switch (r->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		if (r->type == VIRTIO_BLK_T_OUT && readonly)
			return VIRTIO_BLK_S_IOERR;
		if (r->data_len % SECTOR || !range_ok(r->sector, r->data_len / SECTOR, sectors))
			return VIRTIO_BLK_S_IOERR;
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_FLUSH:
	case VIRTIO_BLK_T_GET_ID:
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES: {
		struct virtio_blk_discard_write_zeroes seg;
		if (readonly)
			return VIRTIO_BLK_S_IOERR;
		/* max_discard_seg = max_write_zeroes_seg = 1 */
		if (r->data_len != sizeof(seg) || !gather(r->data, r->ndata, &seg, sizeof(seg)))
			return VIRTIO_BLK_S_UNSUPP;
		uint32_t allowed = r->type == VIRTIO_BLK_T_WRITE_ZEROES ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0;
		if (seg.flags & ~allowed)
			return VIRTIO_BLK_S_UNSUPP;
		if (!range_ok(seg.sector, seg.num_sectors, sectors))
			return VIRTIO_BLK_S_IOERR;
		return VIRTIO_BLK_S_OK;
	}
	default:
		return VIRTIO_BLK_S_UNSUPP;
	}
}

/* ---- Running requests ---------------------------------------------------- */

static void finish(struct vblk *b, struct blk_req *q, uint8_t status)
{
	*q->r.status = status;
	uint32_t used = 1;
	if (status == VIRTIO_BLK_S_OK && (q->r.type == VIRTIO_BLK_T_IN || q->r.type == VIRTIO_BLK_T_GET_ID))
		used += q->used_len;
	/* Read data (io_uring wrote it straight into guest RAM) and the
	 * status byte: pages a migration must send again. A failed read may
	 * have written part of the buffers: mark them all. */
	if (q->r.type == VIRTIO_BLK_T_IN || q->r.type == VIRTIO_BLK_T_GET_ID)
		vq_mark_written(&b->vd.vq[0], q->r.data, q->r.ndata, q->r.data_len);
	mem_mark_dirty_host(b->vd.mem, q->r.status, 1);
	if (!b->vd.broken) {
		vq_push(&b->vd.vq[0], q->e.head, used);
		b->pushed = true;
	}
	b->free[b->nfree++] = q->slot;
}

static void scatter(const struct iovec *iov, unsigned n, const void *src, size_t len)
{
	const uint8_t *s = src;
	for (unsigned i = 0; i < n && len; i++) {
		size_t c = iov[i].iov_len < len ? iov[i].iov_len : len;
		memcpy(iov[i].iov_base, s, c);
		s += c;
		len -= c;
	}
}

static struct io_uring_sqe *get_sqe(struct vblk *b)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);
	if (!sqe) {
		io_uring_submit(&b->ring);
		sqe = io_uring_get_sqe(&b->ring);
	}
	return sqe;
}

static void prep_range(struct io_uring_sqe *sqe, struct blk_req *q)
{
	static const int mode[] = {
		[ZERO_RANGE] = FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
		[ZERO_PUNCH] = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		[ZERO_ALLOCATE] = FALLOC_FL_KEEP_SIZE,
	};
	io_uring_prep_fallocate(sqe, RING_DISK, mode[q->zero_step], q->range_off, q->range_len);
}

static void queue_sqe(struct vblk *b, struct blk_req *q, struct io_uring_sqe *sqe)
{
	sqe->flags |= IOSQE_FIXED_FILE;
	if (q->r.data_len >= ASYNC_BYTES)
		sqe->flags |= IOSQE_ASYNC;
	io_uring_sqe_set_data(sqe, q);
	b->inflight++;
}

/* Start one request: to io_uring, or finished here when it needs no I/O. */
static void start(struct vblk *b, struct blk_req *q)
{
	struct blk_request *r = &q->r;
	/* A slot is reused: a read of no data must not report the bytes of
	 * the request the slot held before. */
	q->used_len = 0;
	uint8_t st = blk_check(r, b->sectors, b->readonly);
	if (st != VIRTIO_BLK_S_OK) {
		finish(b, q, st);
		return;
	}
	if (r->type == VIRTIO_BLK_T_GET_ID) {
		size_t n = r->data_len < sizeof(b->serial) ? r->data_len : sizeof(b->serial);
		scatter(r->data, r->ndata, b->serial, n);
		q->used_len = (uint32_t)n;
		finish(b, q, VIRTIO_BLK_S_OK);
		return;
	}
	if ((r->type == VIRTIO_BLK_T_IN || r->type == VIRTIO_BLK_T_OUT) && r->data_len == 0) {
		finish(b, q, VIRTIO_BLK_S_OK);
		return;
	}
	struct io_uring_sqe *sqe = get_sqe(b);
	if (!sqe) {
		finish(b, q, VIRTIO_BLK_S_IOERR);
		return;
	}
	off_t off = (off_t)(r->sector * SECTOR);
	switch (r->type) {
	case VIRTIO_BLK_T_IN:
		io_uring_prep_readv(sqe, RING_DISK, r->data, r->ndata, off);
		break;
	case VIRTIO_BLK_T_OUT:
		io_uring_prep_writev(sqe, RING_DISK, r->data, r->ndata, off);
		break;
	case VIRTIO_BLK_T_FLUSH:
		io_uring_prep_fsync(sqe, RING_DISK, IORING_FSYNC_DATASYNC);
		break;
	default: {      /* discard, write zeroes: checked by blk_check */
		struct virtio_blk_discard_write_zeroes seg;
		gather(r->data, r->ndata, &seg, sizeof(seg));
		q->range_off = (off_t)(seg.sector * SECTOR);
		q->range_len = (off_t)((uint64_t)seg.num_sectors * SECTOR);
		q->unmap = r->type == VIRTIO_BLK_T_DISCARD || (seg.flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
		q->zero_step = q->unmap || b->no_zero_range ? ZERO_PUNCH : ZERO_RANGE;
		prep_range(sqe, q);
		break;
	}
	}
	q->used_len = (uint32_t)r->data_len;
	queue_sqe(b, q, sqe);
}

/* The ring can do only what the device asks of it: io_uring operations
 * are not system calls, so the seccomp filters do not see them; the
 * kernel's ring restrictions hold them to the four operations below on the
 * disk file (registered as RING_DISK, fixed files required) and forbid
 * any later io_uring_register. The ring is created disabled and enabled
 * once restricted. */
static int ring_setup(struct vblk *b)
{
	struct io_uring_params p = { .flags = IORING_SETUP_R_DISABLED };
	int r = io_uring_queue_init_params(BLK_QUEUE_SIZE, &b->ring, &p);
	if (r)
		return r;
	b->ring_ok = true;
	b->ring_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (b->ring_efd < 0)
		return -errno;
	static const uint8_t ops[] = { IORING_OP_READV, IORING_OP_WRITEV, IORING_OP_FSYNC, IORING_OP_FALLOCATE };
	struct io_uring_restriction res[NELEMS(ops) + 2] = {
		{ .opcode = IORING_RESTRICTION_SQE_FLAGS_ALLOWED, .sqe_flags = IOSQE_ASYNC },
		{ .opcode = IORING_RESTRICTION_SQE_FLAGS_REQUIRED, .sqe_flags = IOSQE_FIXED_FILE },
	};
	for (unsigned i = 0; i < NELEMS(ops); i++)
		res[i + 2] = (struct io_uring_restriction){ .opcode = IORING_RESTRICTION_SQE_OP, .sqe_op = ops[i] };
	if ((r = io_uring_register_eventfd(&b->ring, b->ring_efd)) ||
	    (r = io_uring_register_files(&b->ring, &b->fd, 1)) ||
	    (r = io_uring_register_restrictions(&b->ring, res, NELEMS(res))) ||
	    (r = io_uring_enable_rings(&b->ring)))
		return r;
	return 0;
}

/* Resubmit a write-zeroes request at its next step; false when the ring
 * has no room (the request then fails). The caller's loop submits it. */
static bool next_zero_step(struct vblk *b, struct blk_req *q, enum zero_step step)
{
	struct io_uring_sqe *sqe = get_sqe(b);
	if (!sqe)
		return false;
	q->zero_step = step;
	prep_range(sqe, q);
	queue_sqe(b, q, sqe);
	return true;
}

static void complete(struct vblk *b, struct blk_req *q, int res)
{
	uint8_t st = VIRTIO_BLK_S_OK;
	switch (q->r.type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		if (res < 0 || (uint64_t)res != q->r.data_len)
			st = VIRTIO_BLK_S_IOERR;
		break;
	case VIRTIO_BLK_T_DISCARD:
		/* Advisory: a file system that cannot punch holes loses nothing. */
		if (res < 0 && res != -EOPNOTSUPP)
			st = VIRTIO_BLK_S_IOERR;
		break;
	case VIRTIO_BLK_T_WRITE_ZEROES:
		if (res == -EOPNOTSUPP && q->zero_step == ZERO_RANGE) {
			b->no_zero_range = true;
			if (next_zero_step(b, q, ZERO_PUNCH))
				return;
		} else if (res >= 0 && q->zero_step == ZERO_PUNCH && !q->unmap) {
			if (next_zero_step(b, q, ZERO_ALLOCATE))
				return;
			res = -EAGAIN;  /* zeroed, but left unallocated */
		}
		if (res < 0)
			st = VIRTIO_BLK_S_IOERR;
		break;
	default:
		if (res < 0)
			st = VIRTIO_BLK_S_IOERR;
		break;
	}
	finish(b, q, st);
}

static unsigned reap(struct vblk *b)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;
	io_uring_for_each_cqe(&b->ring, head, cqe) {
		complete(b, io_uring_cqe_get_data(cqe), cqe->res);
		n++;
	}
	io_uring_cq_advance(&b->ring, n);
	b->inflight -= n;
	if (io_uring_sq_ready(&b->ring))   /* a write-zeroes at its next step */
		io_uring_submit(&b->ring);
	return n;
}

static struct blk_req *slot(struct vblk *b, uint16_t i)
{
	if (!b->reqs[i] && (b->reqs[i] = malloc(sizeof(*b->reqs[i]))))
		b->reqs[i]->slot = i;
	return b->reqs[i];
}

static void run_queue(struct vblk *b)
{
	struct virtio_dev *vd = &b->vd;
	struct virtq *vq = &vd->vq[0];
	do {
		while (b->nfree) {
			struct blk_req *q = slot(b, b->free[b->nfree - 1]);
			if (!q) {
				virtio_set_broken(vd, "no memory for a request");
				goto out;
			}
			int r = vq_pop(vq, &q->e, q->iov, BLK_IOV_MAX);
			if (r == 0)
				break;
			if (r < 0) {
				virtio_set_broken(vd, vq_strerror(r));
				goto out;
			}
			b->nfree--;
			if (blk_parse(&q->e, &q->r)) {
				b->free[b->nfree++] = q->slot;
				virtio_set_broken(vd, "request without a 16-byte header or a status byte");
				goto out;
			}
			start(b, q);
		}
		if (io_uring_sq_ready(&b->ring))
			io_uring_submit(&b->ring);
		/* Buffered I/O from the page cache is often done already. */
		reap(b);
	} while (b->nfree && vq_rearm(vq));
out:
	if (io_uring_sq_ready(&b->ring))
		io_uring_submit(&b->ring);
	if (b->pushed) {
		b->pushed = false;
		virtio_queue_interrupt(vd, 0);
	}
}

static void blk_notify(struct virtio_dev *vd, unsigned q)
{
	run_queue(vd->backend);
}

static void on_completion(void *opaque, uint32_t events)
{
	struct vblk *b = opaque;
	uint64_t v;
	if (read(b->ring_efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&b->vd.lock);
	unsigned before = b->nfree;
	reap(b);
	bool live = (b->vd.status & VIRTIO_CONFIG_S_DRIVER_OK) && !b->vd.broken && b->vd.vq[0].enabled &&
		    !b->vd.quiesced;
	if (live && before == 0 && b->nfree)
		run_queue(b);           /* chains were waiting for a free slot */
	else if (b->pushed && live) {
		b->pushed = false;
		virtio_queue_interrupt(&b->vd, 0);
	}
	b->pushed = false;
	pthread_mutex_unlock(&b->vd.lock);
}

/* Complete everything in flight. */
static void wait_inflight(struct vblk *b)
{
	while (b->ring_ok && b->inflight) {
		struct io_uring_cqe *cqe;
		int r = io_uring_wait_cqe(&b->ring, &cqe);
		if (r < 0 && r != -EINTR) {
			log_error("%s: waiting for I/O: %s", b->vd.name, strerror(-r));
			break;
		}
		reap(b);
	}
}

/* Wait for everything in flight; nothing goes back to the (old) rings. */
static void drain(struct vblk *b)
{
	if (!b->ring_ok)
		return;
	bool was = b->vd.broken;
	b->vd.broken = true;            /* finish() must not push */
	wait_inflight(b);
	b->vd.broken = was;
	b->pushed = false;
}

/* The VM paused for a save: requests in flight complete into the used
 * ring (and guest RAM, marked dirty) now, so the state holds none. */
static void blk_quiesce(struct virtio_dev *vd)
{
	struct vblk *b = vd->backend;
	wait_inflight(b);
	if (b->pushed && (vd->status & VIRTIO_CONFIG_S_DRIVER_OK) && !vd->broken)
		virtio_queue_interrupt(vd, 0);
	b->pushed = false;
}

enum { T_CAPACITY = VIRTIO_STATE_BACKEND, T_READONLY };

static int blk_save(struct virtio_dev *vd, struct state_writer *w)
{
	struct vblk *b = vd->backend;
	if (b->inflight)
		return -EBUSY;          /* not quiesced: the stream would lose requests */
	state_put_u64(w, T_CAPACITY, b->sectors);
	state_put_u8(w, T_READONLY, b->readonly);
	return 0;
}

static int blk_load(struct virtio_dev *vd, struct state_reader *r, const struct virtio_load *t)
{
	struct vblk *b = vd->backend;
	uint64_t sectors;
	uint8_t ro;
	int e;
	if ((e = state_get_u64(r, T_CAPACITY, &sectors)) || (e = state_get_u8(r, T_READONLY, &ro)))
		return e;
	/* The driver sized its view of the disk on the source. */
	if (sectors != b->sectors || !ro != !b->readonly)
		return state_fail(r, "the disk has %llu sectors%s here, %llu%s in the stream",
				  (unsigned long long)b->sectors, b->readonly ? " (read-only)" : "",
				  (unsigned long long)sectors, ro ? " (read-only)" : "");
	return 0;
}

static void blk_reset(struct virtio_dev *vd)
{
	drain(vd->backend);
}

static const struct virtio_ops blk_ops = { .notify = blk_notify, .reset = blk_reset, .quiesce = blk_quiesce,
					  .save = blk_save, .load = blk_load };

int virtio_blk_open_image(const char *path, bool readonly, char *err, size_t errlen)
{
	int fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "--disk %s: %s", path, strerror(e));
		return -e;
	}
	return fd;
}

static int open_image(struct vblk *b, const struct blk_opts *o, char *err, size_t errlen)
{
	if (!o->have_fd) {
		b->fd = virtio_blk_open_image(o->path, o->readonly, err, errlen);
		if (b->fd < 0)
			return b->fd;
	} else if ((b->fd = fcntl(o->fd, F_DUPFD_CLOEXEC, 0)) < 0) {
		int e = errno;
		snprintf(err, errlen, "--disk %s: %s", o->path, strerror(e));
		return -e;
	}
	struct stat st;
	uint64_t bytes = 0;
	if (fstat(b->fd, &st) < 0)
		return -errno;
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(b->fd, BLKGETSIZE64, &bytes) < 0)
			return -errno;
	} else if (S_ISREG(st.st_mode)) {
		bytes = (uint64_t)st.st_size;
	} else {
		snprintf(err, errlen, "--disk %s: not a file or block device", o->path);
		return -EINVAL;
	}
	b->sectors = bytes / SECTOR;
	return 0;
}

int virtio_blk_create(const struct virtio_env *env, const struct blk_opts *o,
		      struct virtio_dev **out, char *err, size_t errlen)
{
	struct vblk *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->fd = b->ring_efd = -1;
	b->readonly = o->readonly;
	if (o->serial)
		memcpy(b->serial, o->serial, strnlen(o->serial, sizeof(b->serial)));   /* no NUL at 20 */
	int r = open_image(b, o, err, errlen);
	if (r)
		goto fail;
	for (unsigned i = 0; i < BLK_QUEUE_SIZE; i++)
		b->free[i] = (uint16_t)(BLK_QUEUE_SIZE - 1 - i);
	b->nfree = BLK_QUEUE_SIZE;
	if ((r = ring_setup(b)))
		goto fail_msg;

	struct virtio_blk_config *c = &b->cfg;
	c->capacity = b->sectors;
	c->seg_max = BLK_SEG_MAX;
	c->blk_size = SECTOR;
	c->max_discard_sectors = UINT32_MAX;
	c->max_discard_seg = 1;
	c->discard_sector_alignment = 4096 / SECTOR;
	c->max_write_zeroes_sectors = UINT32_MAX;
	c->max_write_zeroes_seg = 1;
	c->write_zeroes_may_unmap = 1;
	uint64_t f = (1ULL << VIRTIO_BLK_F_SEG_MAX) | (1ULL << VIRTIO_BLK_F_BLK_SIZE) |
		     (1ULL << VIRTIO_BLK_F_FLUSH) | (1ULL << VIRTIO_BLK_F_DISCARD) |
		     (1ULL << VIRTIO_BLK_F_WRITE_ZEROES);
	if (o->readonly)
		f |= 1ULL << VIRTIO_BLK_F_RO;
	struct virtio_setup s = {
		.name = "virtio-blk", .device_id = VIRTIO_ID_BLOCK, .class_code = 0x018000,
		.nqueues = 1, .queue_max = BLK_QUEUE_SIZE, .features = f,
		.config = c, .config_len = sizeof(*c), .ops = &blk_ops, .backend = b, .env = *env,
	};
	if ((r = virtio_init(&b->vd, &s)))
		goto fail_msg;
	if (env->loop && (r = loop_add(env->loop, b->ring_efd, EPOLLIN, on_completion, b)))
		goto fail_msg;
	*out = &b->vd;
	return 0;
fail_msg:
	snprintf(err, errlen, "--disk %s: %s", o->path, strerror(-r));
fail:
	virtio_blk_destroy(&b->vd);
	return r;
}

void virtio_blk_destroy(struct virtio_dev *vd)
{
	if (!vd)
		return;
	struct vblk *b = (struct vblk *)vd;
	drain(b);
	if (b->ring_efd >= 0) {
		if (vd->loop)
			loop_remove(vd->loop, b->ring_efd);
		close(b->ring_efd);
	}
	if (b->ring_ok)
		io_uring_queue_exit(&b->ring);
	virtio_destroy(vd);
	if (b->fd >= 0)
		close(b->fd);
	for (unsigned i = 0; i < BLK_QUEUE_SIZE; i++)
		free(b->reqs[i]);
	free(b);
}
