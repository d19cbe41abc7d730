#include "devices/virtio/virtqueue.h"

#include <errno.h>
#include <string.h>

/* Room a chain may take even through indirect tables: one pass over every
 * descriptor of the queue plus one full indirect table. */
#define VQ_MAX_INDIRECT 1024u

void vq_reset(struct virtq *vq)
{
	uint16_t max = vq->max_size;
	memset(vq, 0, sizeof(*vq));
	vq->max_size = max;
	vq->size = max;
}

static bool aligned(uint64_t a, uint64_t al)
{
	return (a & (al - 1)) == 0;
}

int vq_start(struct virtq *vq, const struct guest_mem *mem, bool event_idx, bool indirect)
{
	uint16_t n = vq->size;
	if (n == 0 || n > vq->max_size || (n & (n - 1)))
		return -EINVAL;
	/* §2.7: alignment 16 / 2 / 4; the event fields trail each ring. */
	if (!aligned(vq->desc_gpa, 16) || !aligned(vq->avail_gpa, 2) || !aligned(vq->used_gpa, 4))
		return -EINVAL;
	vq->desc = mem_ptr(mem, vq->desc_gpa, 16ull * n);
	vq->avail = mem_ptr(mem, vq->avail_gpa, 6 + 2ull * n);
	vq->used = mem_ptr(mem, vq->used_gpa, 6 + 8ull * n);
	if (!vq->desc || !vq->avail || !vq->used)
		return -EINVAL;
	vq->mem = mem;
	vq->event_idx = event_idx;
	vq->indirect = indirect;
	vq->last_avail = 0;
	vq->used_idx = 0;
	vq->signalled_valid = false;
	return 0;
}

/* A snapshot of one descriptor: the guest may change the ring under us,
 * so each field is read exactly once. */
static void read_desc(const struct vring_desc *table, unsigned i, struct vring_desc *out)
{
	/* memcpy: indirect tables need no alignment (§2.7.5.3). */
	memcpy(out, (const uint8_t *)table + (size_t)i * sizeof(*out), sizeof(*out));
	__asm__ volatile("" : : "r"(out) : "memory");   /* one copy, used from here on */
}

struct walk {
	struct vq_elem *e;
	unsigned cap;
	const struct guest_mem *mem;
};

static int add_buf(struct walk *w, const struct vring_desc *d)
{
	struct vq_elem *e = w->e;
	bool write = d->flags & VRING_DESC_F_WRITE;
	if (!write && e->nin)
		return -EIO;            /* readable after writable */
	if (d->len == 0)
		return 0;
	void *p = mem_ptr(w->mem, d->addr, d->len);
	if (!p)
		return -EFAULT;
	if (e->nout + e->nin >= w->cap)
		return -E2BIG;
	e->iov[e->nout + e->nin] = (struct iovec){ .iov_base = p, .iov_len = d->len };
	if (write) {
		e->nin++;
		e->in_len += d->len;
	} else {
		e->nout++;
		e->out_len += d->len;
	}
	if (e->in_len + e->out_len > UINT32_MAX)
		return -EIO;            /* the used length must fit in 32 bits */
	return 0;
}

/* §2.7.5.3.2: an indirect table is one whole chain of its own. */
static int walk_indirect(struct walk *w, const struct vring_desc *ind)
{
	if (ind->flags & VRING_DESC_F_NEXT || ind->len == 0 || ind->len % sizeof(struct vring_desc))
		return -EIO;
	uint32_t n = ind->len / sizeof(struct vring_desc);
	if (n > VQ_MAX_INDIRECT)
		return -E2BIG;
	const struct vring_desc *table = mem_ptr(w->mem, ind->addr, ind->len);
	if (!table)
		return -EFAULT;
	uint32_t i = 0;
	for (uint32_t count = 0;; count++) {
		struct vring_desc d;
		if (count == n)
			return -EIO;    /* the chain loops */
		read_desc(table, i, &d);
		if (d.flags & VRING_DESC_F_INDIRECT)
			return -EIO;    /* no tables inside tables */
		int r = add_buf(w, &d);
		if (r)
			return r;
		if (!(d.flags & VRING_DESC_F_NEXT))
			return 0;
		if (d.next >= n)
			return -EIO;
		i = d.next;
	}
}

int vq_pop(struct virtq *vq, struct vq_elem *e, struct iovec *iov, unsigned cap)
{
	uint16_t avail_idx = __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE);
	uint16_t pending = (uint16_t)(avail_idx - vq->last_avail);
	if (pending == 0)
		return 0;
	if (pending > vq->size)
		return -EIO;            /* the driver claims more than the ring holds */
	uint16_t head = __atomic_load_n(&vq->avail->ring[vq->last_avail & (vq->size - 1)],
					__ATOMIC_RELAXED);
	if (head >= vq->size)
		return -EIO;
	*e = (struct vq_elem){ .head = head, .iov = iov };
	struct walk w = { .e = e, .cap = cap, .mem = vq->mem };
	unsigned i = head;
	for (unsigned count = 0;; count++) {
		struct vring_desc d;
		if (count == vq->size)
			return -EIO;    /* longer than the queue: it loops */
		read_desc(vq->desc, i, &d);
		int r;
		if (d.flags & VRING_DESC_F_INDIRECT) {
			if (!vq->indirect)
				return -EIO;
			/* Only as the last of a chain (§2.7.5.3.1). */
			r = walk_indirect(&w, &d);
			if (r)
				return r;
			break;
		}
		r = add_buf(&w, &d);
		if (r)
			return r;
		if (!(d.flags & VRING_DESC_F_NEXT))
			break;
		if (d.next >= vq->size)
			return -EIO;
		i = d.next;
	}
	vq->last_avail++;
	return 1;
}

void vq_push(struct virtq *vq, uint16_t head, uint32_t len)
{
	struct vring_used_elem *u = &vq->used->ring[vq->used_idx & (vq->size - 1)];
	__atomic_store_n(&u->id, head, __ATOMIC_RELAXED);
	__atomic_store_n(&u->len, len, __ATOMIC_RELAXED);
	vq->used_idx++;
	__atomic_store_n(&vq->used->idx, vq->used_idx, __ATOMIC_RELEASE);
	/* KVM does not see Ember's writes: the migration must. */
	mem_mark_dirty_host(vq->mem, u, sizeof(*u));
	mem_mark_dirty_host(vq->mem, &vq->used->idx, sizeof(vq->used->idx));
}

void vq_mark_written(const struct virtq *vq, const struct iovec *iov, unsigned n, uint64_t len)
{
	for (unsigned i = 0; i < n && len; i++) {
		uint64_t c = iov[i].iov_len < len ? iov[i].iov_len : len;
		mem_mark_dirty_host(vq->mem, iov[i].iov_base, c);
		len -= c;
	}
}

bool vq_should_notify(struct virtq *vq)
{
	/* The used index must be visible before we read the driver's wishes
	 * (the driver does the mirror image). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	uint16_t old = vq->signalled, now = vq->used_idx;
	bool valid = vq->signalled_valid;
	vq->signalled = now;
	vq->signalled_valid = true;
	if (vq->event_idx) {
		uint16_t ev = __atomic_load_n(&vq->avail->ring[vq->size], __ATOMIC_RELAXED);
		return !valid || vring_need_event(ev, now, old);
	}
	return !(__atomic_load_n(&vq->avail->flags, __ATOMIC_RELAXED) & VRING_AVAIL_F_NO_INTERRUPT);
}

bool vq_rearm(struct virtq *vq)
{
	if (vq->event_idx) {
		uint16_t *avail_event = (uint16_t *)&vq->used->ring[vq->size];
		__atomic_store_n(avail_event, vq->last_avail, __ATOMIC_RELAXED);
		mem_mark_dirty_host(vq->mem, avail_event, sizeof(*avail_event));
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
	}
	return __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE) != vq->last_avail;
}

const char *vq_strerror(int err)
{
	switch (err) {
	case -EFAULT: return "descriptor buffer or indirect table outside guest RAM";
	case -E2BIG: return "descriptor chain longer than the device takes";
	default: return "descriptor ring or chain breaks the virtio rules (index, loop, flags, order)";
	}
}
