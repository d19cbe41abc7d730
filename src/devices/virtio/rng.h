/* virtio-rng (§5.4): one queue, filled from getrandom(2) on the event loop. */
#ifndef EMBER_VIRTIO_RNG_H
#define EMBER_VIRTIO_RNG_H

#include "devices/virtio/virtio.h"

int virtio_rng_create(const struct virtio_env *env, struct virtio_dev **out);
void virtio_rng_destroy(struct virtio_dev *vd);

#endif
