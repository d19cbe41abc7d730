/* Guest-kit virtio: the modern PCI transport (capabilities, feature
 * negotiation, status, queue setup, MSI-X vectors) and a bare split
 * virtqueue where the test picks descriptor indexes itself, so hostile
 * tests can write whatever they like into the rings. Everything is MMIO:
 * usable at CPL3 too. */
#ifndef KIT_VIRTIO_H
#define KIT_VIRTIO_H

#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>

#include "pci.h"

#define VIRTIO_VENDOR 0x1af4
#define VQ_MAX 4
/* Ring memory a queue of up to 256 entries needs (desc, avail, used). */
#define VRING_BYTES (3 * 4096)

struct gvq {
	uint16_t size;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t avail_idx;          /* next avail index to publish */
	uint16_t last_used;
	volatile uint16_t *notify;
	uint16_t index;
};

struct vdev {
	struct pci_fn f;
	struct msix msix;
	bool has_msix;
	volatile struct virtio_pci_common_cfg *common;
	volatile uint8_t *isr, *devcfg, *notify_base;
	uint32_t notify_mult, devcfg_len;
	bool has_pci_cfg_cap;
	uint64_t features;
	struct gvq vq[VQ_MAX];
};

/* Find the n-th virtio device of this type and map its structures. */
bool vdev_open(struct vdev *d, uint16_t device_id, int n);
void vdev_reset(struct vdev *d);           /* status 0, waits until it reads 0 */
uint8_t vdev_status(struct vdev *d);
/* Reset, ACKNOWLEDGE, DRIVER, features = offered & want, FEATURES_OK;
 * true when the device kept FEATURES_OK. */
bool vdev_negotiate(struct vdev *d, uint64_t want);
/* Program queue q (size entries, rings in ring_mem of VRING_BYTES, MSI-X
 * vector or VIRTIO_MSI_NO_VECTOR) and enable it. */
bool vdev_queue(struct vdev *d, unsigned q, uint16_t size, void *ring_mem, uint16_t vector);
void vdev_driver_ok(struct vdev *d);

void gvq_desc(struct gvq *q, uint16_t i, const void *addr, uint32_t len, uint16_t flags, uint16_t next);
void gvq_publish(struct gvq *q, uint16_t head);
void gvq_kick(struct gvq *q);
bool gvq_used(struct gvq *q, uint32_t *id, uint32_t *len);
bool gvq_wait(struct gvq *q, uint32_t *id, uint32_t *len, uint64_t timeout_ms);

#endif
