/* virtio-net (§5.1) on an existing tap device with a virtio-net header
 * (IFF_VNET_HDR, TUNSETVNETHDRSZ 12): receive queue 0, transmit queue 1,
 * both on the event loop. Checksum offload both ways and TSO from the
 * guest go straight through to the tap (TUNSETOFFLOAD follows the
 * negotiated features); no control queue, no mergeable buffers. */
#ifndef EMBER_VIRTIO_NET_H
#define EMBER_VIRTIO_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/virtio/virtio.h"

struct net_opts {
	const char *tap;
	const uint8_t *mac;          /* NULL: a random locally administered one */
	bool have_fd;                /* fd: the tap, opened already (tap_open); the device uses a duplicate */
	int fd;
	const char *ifname;          /* with have_fd: its interface name */
};

/* A tap as the device needs it: IFF_VNET_HDR with the 12-byte header,
 * non-blocking, no offloads until the driver negotiates them. ifname gets
 * the interface's name (IFNAMSIZ). The fd, or -errno with "--net tap=NAME:
 * why" in err. */
int tap_open(const char *name, char *ifname, char *err, size_t errlen);

int virtio_net_create(const struct virtio_env *env, const struct net_opts *o,
		      struct virtio_dev **out, char *err, size_t errlen);
/* The same on fd, a descriptor set up as virtio_net_create sets up its tap
 * (IFF_VNET_HDR with a 12-byte header, non-blocking): one opened
 * elsewhere, or a test's socketpair. The device owns fd from here on
 * (closed on failure too); name is for messages. */
int virtio_net_create_fd(const struct virtio_env *env, int fd, const char *name, const uint8_t *mac,
			 struct virtio_dev **out);
void virtio_net_destroy(struct virtio_dev *vd);

#endif
