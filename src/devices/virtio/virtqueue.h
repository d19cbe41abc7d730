/* The split virtqueue (virtio 1.2 §2.7) as a device walks it, checked: the
 * rings and every buffer go through mem_ptr, chains are bounded by the
 * queue size (or the indirect table's size), indirect tables follow
 * §2.7.5.3 (no nesting, no NEXT beside INDIRECT), and readable buffers must
 * come before writable ones. A broken ring makes vq_pop fail; the device
 * then sets DEVICE_NEEDS_RESET. Single consumer: one thread at a time. */
#ifndef EMBER_VIRTQUEUE_H
#define EMBER_VIRTQUEUE_H

#include <linux/virtio_ring.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "mem.h"

struct virtq {
	/* What the driver programmed through the transport. */
	uint16_t size;               /* queue_size: a power of two <= max_size */
	uint16_t max_size;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	bool enabled;

	/* Set by vq_start. */
	const struct guest_mem *mem;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	bool event_idx, indirect;
	uint16_t last_avail;         /* next avail ring slot to take */
	uint16_t used_idx;           /* our copy of used->idx */
	uint16_t signalled;          /* used_idx when we last interrupted */
	bool signalled_valid;
};

/* One buffer chain: iov[0..nout) are device-readable, iov[nout..nout+nin)
 * device-writable. */
struct vq_elem {
	uint16_t head;
	unsigned nout, nin;
	uint64_t out_len, in_len;
	struct iovec *iov;
};

/* Map the rings the driver programmed; 0, or -EINVAL when the size is not
 * a power of two up to max_size or a ring is misaligned or not in RAM. */
int vq_start(struct virtq *vq, const struct guest_mem *mem, bool event_idx, bool indirect);
/* Back to the reset state (max_size is kept). */
void vq_reset(struct virtq *vq);

/* Take the next available chain into e (iov has room for cap entries).
 * Returns 1, 0 when nothing is available, or -EIO/-EFAULT/-E2BIG when the
 * driver broke the ring or the chain: the device must stop using the
 * queue. */
int vq_pop(struct virtq *vq, struct vq_elem *e, struct iovec *iov, unsigned cap);
/* What a vq_pop error means, for the NEEDS_RESET message. */
const char *vq_strerror(int err);
/* Return a chain to the driver with len bytes written into it (the used
 * ring entry and index are marked dirty for migration; the buffers are the
 * device's to mark, with vq_mark_written, after writing them). */
void vq_push(struct virtq *vq, uint16_t head, uint32_t len);
/* The device wrote the first len bytes of iov[0..n) (pointers from vq_pop):
 * record the pages for dirty tracking. */
void vq_mark_written(const struct virtq *vq, const struct iovec *iov, unsigned n, uint64_t len);
/* After pushes: does the driver want an interrupt now (flags or
 * used_event)? Records the point for the next call. */
bool vq_should_notify(struct virtq *vq);
/* With EVENT_IDX, ask for a kick once the driver adds past what we took;
 * returns true when more chains arrived meanwhile (pop again). */
bool vq_rearm(struct virtq *vq);

#endif
