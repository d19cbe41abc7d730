/* Guest-kit virtio driver (see virtio.h). */
#include "virtio.h"

#define PCI_CAP_ID_VNDR 0x09

bool vdev_open(struct vdev *d, uint16_t device_id, int n)
{
	memset(d, 0, sizeof(*d));
	if (!pci_find(VIRTIO_VENDOR, (uint16_t)(0x1040 + device_id), n, &d->f))
		return false;
	for (uint8_t c = pci_cap(&d->f, PCI_CAP_ID_VNDR, 0); c; c = pci_cap(&d->f, PCI_CAP_ID_VNDR, c)) {
		uint8_t type = (uint8_t)pci_read(&d->f, c + 3, 1);
		uint8_t bar = (uint8_t)pci_read(&d->f, c + 4, 1);
		uint32_t off = pci_read(&d->f, c + 8, 4);
		uint32_t len = pci_read(&d->f, c + 12, 4);
		uint8_t *p = (uint8_t *)(uintptr_t)(pci_bar(&d->f, bar) + off);
		switch (type) {
		case VIRTIO_PCI_CAP_COMMON_CFG: d->common = (void *)p; break;
		case VIRTIO_PCI_CAP_ISR_CFG: d->isr = p; break;
		case VIRTIO_PCI_CAP_DEVICE_CFG: d->devcfg = p; d->devcfg_len = len; break;
		case VIRTIO_PCI_CAP_NOTIFY_CFG:
			d->notify_base = p;
			d->notify_mult = pci_read(&d->f, c + 16, 4);
			break;
		case VIRTIO_PCI_CAP_PCI_CFG: d->has_pci_cfg_cap = true; break;
		}
	}
	d->has_msix = msix_init(&d->msix, &d->f);
	pci_write(&d->f, 0x04, 2, pci_read(&d->f, 0x04, 2) | 0x6);   /* memory, bus master */
	return d->common && d->isr && d->notify_base;
}

uint8_t vdev_status(struct vdev *d)
{
	return d->common->device_status;
}

void vdev_reset(struct vdev *d)
{
	d->common->device_status = 0;
	for (int i = 0; i < 1000 && d->common->device_status; i++)
		cpu_relax();
}

bool vdev_negotiate(struct vdev *d, uint64_t want)
{
	vdev_reset(d);
	d->common->device_status = VIRTIO_CONFIG_S_ACKNOWLEDGE;
	d->common->device_status = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER;
	uint64_t offered = 0;
	for (uint32_t i = 0; i < 2; i++) {
		d->common->device_feature_select = i;
		offered |= (uint64_t)d->common->device_feature << (32 * i);
	}
	d->features = offered & want;
	for (uint32_t i = 0; i < 2; i++) {
		d->common->guest_feature_select = i;
		d->common->guest_feature = (uint32_t)(d->features >> (32 * i));
	}
	d->common->device_status = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
				   VIRTIO_CONFIG_S_FEATURES_OK;
	return d->common->device_status & VIRTIO_CONFIG_S_FEATURES_OK;
}

bool vdev_queue(struct vdev *d, unsigned q, uint16_t size, void *ring_mem, uint16_t vector)
{
	struct gvq *v = &d->vq[q];
	uint8_t *m = ring_mem;
	d->common->queue_select = (uint16_t)q;
	if (d->common->queue_size < size || size > 256)
		return false;
	memset(m, 0, VRING_BYTES);
	*v = (struct gvq){
		.size = size, .index = (uint16_t)q,
		.desc = (void *)m, .avail = (void *)(m + 16 * size), .used = (void *)(m + 8192),
	};
	d->common->queue_size = size;
	d->common->queue_desc_lo = (uint32_t)(uintptr_t)v->desc;
	d->common->queue_desc_hi = 0;
	d->common->queue_avail_lo = (uint32_t)(uintptr_t)v->avail;
	d->common->queue_avail_hi = 0;
	d->common->queue_used_lo = (uint32_t)(uintptr_t)v->used;
	d->common->queue_used_hi = 0;
	d->common->queue_msix_vector = vector;
	v->notify = (volatile uint16_t *)(d->notify_base + d->common->queue_notify_off * d->notify_mult);
	d->common->queue_enable = 1;
	return d->common->queue_enable == 1;
}

void vdev_driver_ok(struct vdev *d)
{
	d->common->device_status = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
				   VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK;
}

void gvq_desc(struct gvq *q, uint16_t i, const void *addr, uint32_t len, uint16_t flags, uint16_t next)
{
	q->desc[i] = (struct vring_desc){ .addr = (uint64_t)(uintptr_t)addr, .len = len,
					  .flags = flags, .next = next };
}

void gvq_publish(struct gvq *q, uint16_t head)
{
	q->avail->ring[q->avail_idx % q->size] = head;
	__asm__ volatile("" ::: "memory");   /* x86: stores stay in order */
	q->avail->idx = ++q->avail_idx;
}

void gvq_kick(struct gvq *q)
{
	__asm__ volatile("mfence" ::: "memory");
	*q->notify = q->index;
}

bool gvq_used(struct gvq *q, uint32_t *id, uint32_t *len)
{
	if (*(volatile uint16_t *)&q->used->idx == q->last_used)
		return false;
	__asm__ volatile("" ::: "memory");
	struct vring_used_elem *e = &q->used->ring[q->last_used % q->size];
	*id = e->id;
	*len = e->len;
	q->last_used++;
	return true;
}

bool gvq_wait(struct gvq *q, uint32_t *id, uint32_t *len, uint64_t timeout_ms)
{
	uint64_t end = uptime_ms() + timeout_ms;
	while (!gvq_used(q, id, len)) {
		if (uptime_ms() > end)
			return false;
		cpu_relax();
	}
	return true;
}
