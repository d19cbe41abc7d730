#include "devices/virtio/rng.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

/* Per chain: enough for any driver, small enough to keep the loop snappy. */
#define RNG_MAX_PER_CHAIN (64 * 1024)
#define RNG_IOV_MAX 64

static void rng_notify(struct virtio_dev *vd, unsigned q)
{
	struct virtq *vq = &vd->vq[q];
	struct iovec iov[RNG_IOV_MAX];
	struct vq_elem e;
	bool pushed = false;
	do {
		int r;
		while ((r = vq_pop(vq, &e, iov, RNG_IOV_MAX)) > 0) {
			size_t done = 0;
			for (unsigned i = e.nout; i < e.nout + e.nin && done < RNG_MAX_PER_CHAIN; i++) {
				size_t want = iov[i].iov_len;
				if (want > RNG_MAX_PER_CHAIN - done)
					want = RNG_MAX_PER_CHAIN - done;
				ssize_t n = getrandom(iov[i].iov_base, want, GRND_NONBLOCK);
				if (n <= 0)
					break;
				done += (size_t)n;
				if ((size_t)n < want)
					break;
			}
			vq_mark_written(vq, iov + e.nout, e.nin, done);
			vq_push(vq, e.head, (uint32_t)done);
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

static const struct virtio_ops rng_ops = { .notify = rng_notify };

int virtio_rng_create(const struct virtio_env *env, struct virtio_dev **out)
{
	struct virtio_dev *vd = calloc(1, sizeof(*vd));
	if (!vd)
		return -ENOMEM;
	struct virtio_setup s = {
		.name = "virtio-rng", .device_id = VIRTIO_ID_RNG, .class_code = 0xff0000,
		.nqueues = 1, .queue_max = 256, .ops = &rng_ops, .env = *env,
	};
	int r = virtio_init(vd, &s);
	if (r) {
		virtio_destroy(vd);
		free(vd);
		return r;
	}
	*out = vd;
	return 0;
}

void virtio_rng_destroy(struct virtio_dev *vd)
{
	if (!vd)
		return;
	virtio_destroy(vd);
	free(vd);
}
