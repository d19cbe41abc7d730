/* virtio-blk (§5.2) on a raw image file: read, write, flush (fdatasync),
 * get-id, discard and write-zeroes, many requests in flight through
 * io_uring, all on the event loop. */
#ifndef EMBER_VIRTIO_BLK_H
#define EMBER_VIRTIO_BLK_H

#include <linux/virtio_blk.h>
#include <stdbool.h>
#include <stddef.h>

#include "devices/virtio/virtio.h"

#define BLK_QUEUE_SIZE 256
#define BLK_SEG_MAX    (BLK_QUEUE_SIZE - 2)   /* data segments besides header and status */
#define BLK_IOV_MAX    (BLK_SEG_MAX + 2)

struct blk_opts {
	const char *path;
	bool readonly;
	const char *serial;        /* up to VIRTIO_BLK_ID_BYTES; NULL = none */
	bool have_fd;              /* fd: path opened already; the device uses a duplicate */
	int fd;
};

/* The image as the device opens it: read-only or read-write. The fd, or
 * -errno with "--disk PATH: why" in err. */
int virtio_blk_open_image(const char *path, bool readonly, char *err, size_t errlen);

/* Opens the image (err gets "PATH: why" on failure) and sets up the device.
 * 0 or -errno. */
int virtio_blk_create(const struct virtio_env *env, const struct blk_opts *o,
		      struct virtio_dev **out, char *err, size_t errlen);
void virtio_blk_destroy(struct virtio_dev *vd);

/* One request as the chain frames it. The chain's iovecs are trimmed in
 * place so that data/ndata cover only the payload. */
struct blk_request {
	uint32_t type;
	uint64_t sector;
	struct iovec *data;
	unsigned ndata;
	uint64_t data_len;
	uint8_t *status;
};

/* Frame a chain: 16-byte header from the readable part (in any split),
 * status byte = the last writable byte. -EINVAL when there is no room for
 * either: the device cannot even report the failure. */
int blk_parse(struct vq_elem *e, struct blk_request *r);

/* Check a framed request against a disk of `sectors` sectors: returns the
 * VIRTIO_BLK_S_* status it must fail with, or VIRTIO_BLK_S_OK. */
uint8_t blk_check(const struct blk_request *r, uint64_t sectors, bool readonly);

#endif
