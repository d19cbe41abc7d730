#include "devices/virtio/virtio.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"

#define STATUS_DRIVER_BITS (VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | \
			    VIRTIO_CONFIG_S_DRIVER_OK | VIRTIO_CONFIG_S_FEATURES_OK | \
			    VIRTIO_CONFIG_S_FAILED)

bool virtio_has_feature(const struct virtio_dev *vd, unsigned bit)
{
	return vd->guest_features & (1ULL << bit);
}

static void config_interrupt(struct virtio_dev *vd)
{
	if (pci_msix_enabled(&vd->pci)) {
		if (vd->msix_config != VIRTIO_MSI_NO_VECTOR)
			pci_msix_notify(&vd->pci, vd->msix_config);
	} else {
		vd->isr |= VIRTIO_PCI_ISR_CONFIG;
		pci_set_intx(&vd->pci, true);
	}
}

void virtio_config_changed(struct virtio_dev *vd)
{
	vd->config_generation++;
	if (vd->status & VIRTIO_CONFIG_S_DRIVER_OK)
		config_interrupt(vd);
}

void virtio_set_broken(struct virtio_dev *vd, const char *why)
{
	vd->bad_requests++;
	if (vd->broken)
		return;
	/* A guest can break and reset a device in a loop: do not flood. */
	if (vd->bad_requests <= 10)
		log_warn("%s: %s; device needs reset", vd->name, why);
	else
		log_debug("%s: %s; device needs reset", vd->name, why);
	vd->broken = true;
	/* §2.1.2: the device SHOULD send a configuration change notification. */
	config_interrupt(vd);
}

void virtio_queue_interrupt(struct virtio_dev *vd, unsigned q)
{
	if (!vq_should_notify(&vd->vq[q]))
		return;
	if (pci_msix_enabled(&vd->pci)) {
		if (vd->queue_vector[q] != VIRTIO_MSI_NO_VECTOR)
			pci_msix_notify(&vd->pci, vd->queue_vector[q]);
	} else {
		vd->isr |= 1;
		pci_set_intx(&vd->pci, true);
	}
}

static bool running(const struct virtio_dev *vd)
{
	return (vd->status & VIRTIO_CONFIG_S_DRIVER_OK) && !vd->broken;
}

void virtio_kick(struct virtio_dev *vd, unsigned q)
{
	if (q >= vd->nqueues)
		return;
	pthread_mutex_lock(&vd->lock);
	if (running(vd) && vd->vq[q].enabled && !vd->quiesced)
		vd->ops->notify(vd, q);
	pthread_mutex_unlock(&vd->lock);
}

static void on_kick(void *opaque, uint32_t events)
{
	struct virtio_kick *k = opaque;
	uint64_t v;
	if (read(k->vd->kick_fd[k->q], &v, sizeof(v)) < 0)
		return;         /* spurious wakeup: nothing counted */
	virtio_kick(k->vd, k->q);
}

static void device_reset(struct virtio_dev *vd)
{
	if (vd->ops->reset)
		vd->ops->reset(vd);
	for (unsigned q = 0; q < vd->nqueues; q++) {
		vq_reset(&vd->vq[q]);
		vd->queue_vector[q] = VIRTIO_MSI_NO_VECTOR;
	}
	vd->guest_features = 0;
	vd->dfselect = vd->gfselect = 0;
	vd->status = 0;
	vd->broken = false;
	vd->msix_config = VIRTIO_MSI_NO_VECTOR;
	vd->queue_select = 0;
	vd->isr = 0;
	pci_set_intx(&vd->pci, false);
}

static void status_write(struct virtio_dev *vd, uint8_t val)
{
	if (val == 0) {
		device_reset(vd);
		return;
	}
	uint8_t old = vd->status;
	val &= STATUS_DRIVER_BITS;
	if ((val & VIRTIO_CONFIG_S_FEATURES_OK) && !(old & VIRTIO_CONFIG_S_FEATURES_OK)) {
		/* §3.1.1: refuse features we did not offer, and legacy. */
		if ((vd->guest_features & ~vd->host_features) ||
		    !(vd->guest_features & (1ULL << VIRTIO_F_VERSION_1)))
			val &= (uint8_t)~VIRTIO_CONFIG_S_FEATURES_OK;
	}
	if (old & VIRTIO_CONFIG_S_FEATURES_OK)
		val |= VIRTIO_CONFIG_S_FEATURES_OK;   /* cannot be taken back without reset */
	vd->status = val;
	if ((val & VIRTIO_CONFIG_S_DRIVER_OK) && !(old & VIRTIO_CONFIG_S_DRIVER_OK)) {
		if (!(val & VIRTIO_CONFIG_S_FEATURES_OK)) {
			virtio_set_broken(vd, "DRIVER_OK without FEATURES_OK");
			return;
		}
		if (vd->ops->activate)
			vd->ops->activate(vd);
		/* Buffers made available before DRIVER_OK are not lost. */
		for (unsigned q = 0; q < vd->nqueues; q++)
			if (vd->kick_fd[q] >= 0 && vd->vq[q].enabled)
				eventfd_write(vd->kick_fd[q], 1);
	}
}

static struct virtq *selected(struct virtio_dev *vd)
{
	return vd->queue_select < vd->nqueues ? &vd->vq[vd->queue_select] : NULL;
}

static uint16_t check_vector(const struct virtio_dev *vd, uint16_t v)
{
	return v < vd->pci.msix.nvec ? v : VIRTIO_MSI_NO_VECTOR;
}

static uint64_t common_read(struct virtio_dev *vd, unsigned off, unsigned size)
{
	struct virtq *vq = selected(vd);
	unsigned q = vd->queue_select;
	switch (off) {
	case VIRTIO_PCI_COMMON_DFSELECT: return vd->dfselect;
	case VIRTIO_PCI_COMMON_DF:
		return vd->dfselect < 2 ? (uint32_t)(vd->host_features >> (32 * vd->dfselect)) : 0;
	case VIRTIO_PCI_COMMON_GFSELECT: return vd->gfselect;
	case VIRTIO_PCI_COMMON_GF:
		return vd->gfselect < 2 ? (uint32_t)(vd->guest_features >> (32 * vd->gfselect)) : 0;
	case VIRTIO_PCI_COMMON_MSIX: return vd->msix_config;
	case VIRTIO_PCI_COMMON_NUMQ: return vd->nqueues;
	case VIRTIO_PCI_COMMON_STATUS:
		return vd->status | (vd->broken ? VIRTIO_CONFIG_S_NEEDS_RESET : 0);
	case VIRTIO_PCI_COMMON_CFGGENERATION: return vd->config_generation;
	case VIRTIO_PCI_COMMON_Q_SELECT: return vd->queue_select;
	}
	if (!vq)
		return 0;       /* §4.1.4.3: a queue that does not exist has size 0 */
	switch (off) {
	case VIRTIO_PCI_COMMON_Q_SIZE: return vq->size;
	case VIRTIO_PCI_COMMON_Q_MSIX: return vd->queue_vector[q];
	case VIRTIO_PCI_COMMON_Q_ENABLE: return vq->enabled;
	case VIRTIO_PCI_COMMON_Q_NOFF: return q;
	case VIRTIO_PCI_COMMON_Q_DESCLO: return (uint32_t)vq->desc_gpa;
	case VIRTIO_PCI_COMMON_Q_DESCHI: return (uint32_t)(vq->desc_gpa >> 32);
	case VIRTIO_PCI_COMMON_Q_AVAILLO: return (uint32_t)vq->avail_gpa;
	case VIRTIO_PCI_COMMON_Q_AVAILHI: return (uint32_t)(vq->avail_gpa >> 32);
	case VIRTIO_PCI_COMMON_Q_USEDLO: return (uint32_t)vq->used_gpa;
	case VIRTIO_PCI_COMMON_Q_USEDHI: return (uint32_t)(vq->used_gpa >> 32);
	}
	(void)size;
	return 0;
}

static void set_lo(uint64_t *a, uint32_t v) { *a = (*a & ~0xffffffffULL) | v; }
static void set_hi(uint64_t *a, uint32_t v) { *a = (*a & 0xffffffffULL) | (uint64_t)v << 32; }

static void queue_write(struct virtio_dev *vd, unsigned off, uint32_t v)
{
	unsigned q = vd->queue_select;
	struct virtq *vq = selected(vd);
	if (!vq)
		return;
	if (off == VIRTIO_PCI_COMMON_Q_MSIX) {
		vd->queue_vector[q] = check_vector(vd, (uint16_t)v);
		return;
	}
	if (vq->enabled)
		return;         /* §4.1.4.3.2: no changes to a live queue */
	switch (off) {
	case VIRTIO_PCI_COMMON_Q_SIZE: vq->size = (uint16_t)v; break;
	case VIRTIO_PCI_COMMON_Q_DESCLO: set_lo(&vq->desc_gpa, v); break;
	case VIRTIO_PCI_COMMON_Q_DESCHI: set_hi(&vq->desc_gpa, v); break;
	case VIRTIO_PCI_COMMON_Q_AVAILLO: set_lo(&vq->avail_gpa, v); break;
	case VIRTIO_PCI_COMMON_Q_AVAILHI: set_hi(&vq->avail_gpa, v); break;
	case VIRTIO_PCI_COMMON_Q_USEDLO: set_lo(&vq->used_gpa, v); break;
	case VIRTIO_PCI_COMMON_Q_USEDHI: set_hi(&vq->used_gpa, v); break;
	case VIRTIO_PCI_COMMON_Q_ENABLE:
		if (v != 1)
			break;
		if (!(vd->status & VIRTIO_CONFIG_S_FEATURES_OK)) {
			virtio_set_broken(vd, "queue enabled before FEATURES_OK");
			break;
		}
		if (vq_start(vq, vd->mem, virtio_has_feature(vd, VIRTIO_RING_F_EVENT_IDX),
			     virtio_has_feature(vd, VIRTIO_RING_F_INDIRECT_DESC))) {
			char why[96];
			snprintf(why, sizeof(why), "queue %u: bad size %u or ring addresses", q, vq->size);
			virtio_set_broken(vd, why);
			break;
		}
		vq->enabled = true;
		break;
	}
}

static void common_write(struct virtio_dev *vd, unsigned off, unsigned size, uint32_t v)
{
	switch (off) {
	case VIRTIO_PCI_COMMON_DFSELECT: vd->dfselect = v; return;
	case VIRTIO_PCI_COMMON_GFSELECT: vd->gfselect = v; return;
	case VIRTIO_PCI_COMMON_GF:
		if (vd->status & VIRTIO_CONFIG_S_FEATURES_OK || vd->gfselect >= 2)
			return;
		if (vd->gfselect)
			set_hi(&vd->guest_features, v);
		else
			set_lo(&vd->guest_features, v);
		return;
	case VIRTIO_PCI_COMMON_MSIX: vd->msix_config = check_vector(vd, (uint16_t)v); return;
	case VIRTIO_PCI_COMMON_STATUS: status_write(vd, (uint8_t)v); return;
	case VIRTIO_PCI_COMMON_Q_SELECT: vd->queue_select = (uint16_t)v; return;
	case VIRTIO_PCI_COMMON_DF:
	case VIRTIO_PCI_COMMON_NUMQ:
	case VIRTIO_PCI_COMMON_CFGGENERATION:
	case VIRTIO_PCI_COMMON_Q_NOFF:
		return;         /* read-only */
	}
	(void)size;
	queue_write(vd, off, v);
}

/* Natural widths only (§4.1.3.1); anything else reads 0 and is dropped. */
static unsigned common_width(unsigned off)
{
	switch (off) {
	case VIRTIO_PCI_COMMON_STATUS:
	case VIRTIO_PCI_COMMON_CFGGENERATION:
		return 1;
	case VIRTIO_PCI_COMMON_MSIX: case VIRTIO_PCI_COMMON_NUMQ: case VIRTIO_PCI_COMMON_Q_SELECT:
	case VIRTIO_PCI_COMMON_Q_SIZE: case VIRTIO_PCI_COMMON_Q_MSIX: case VIRTIO_PCI_COMMON_Q_ENABLE:
	case VIRTIO_PCI_COMMON_Q_NOFF:
		return 2;
	default:
		return off < sizeof(struct virtio_pci_common_cfg) && !(off & 3) ? 4 : 0;
	}
}

uint64_t virtio_bar_read(void *opaque, uint64_t off, unsigned size)
{
	struct virtio_dev *vd = opaque;
	uint64_t v = 0;
	pthread_mutex_lock(&vd->lock);
	if (off < VIRTIO_ISR_OFF) {
		if (common_width((unsigned)off) == size)
			v = common_read(vd, (unsigned)off, size);
	} else if (off == VIRTIO_ISR_OFF) {
		/* Read to clear, and the INTx line follows (§4.1.4.5). */
		v = vd->isr;
		vd->isr = 0;
		pci_set_intx(&vd->pci, false);
	} else if (off >= VIRTIO_DEVCFG_OFF && off < VIRTIO_DEVCFG_OFF + VIRTIO_DEVCFG_MAX) {
		uint64_t c = off - VIRTIO_DEVCFG_OFF;
		for (unsigned i = 0; i < size && c + i < vd->config_len; i++)
			v |= (uint64_t)vd->config[c + i] << (8 * i);
	}
	pthread_mutex_unlock(&vd->lock);
	return v;
}

void virtio_bar_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct virtio_dev *vd = opaque;
	if (off >= VIRTIO_NOTIFY_OFF && off < VIRTIO_NOTIFY_OFF + VIRTIO_NOTIFY_MULT * vd->nqueues) {
		/* A doorbell without an ioeventfd behind it: same path. */
		unsigned q = (unsigned)(off - VIRTIO_NOTIFY_OFF) / VIRTIO_NOTIFY_MULT;
		eventfd_write(vd->kick_fd[q], 1);
		return;
	}
	pthread_mutex_lock(&vd->lock);
	if (off < VIRTIO_ISR_OFF) {
		if (common_width((unsigned)off) == size)
			common_write(vd, (unsigned)off, size, (uint32_t)val);
	} else if (off >= VIRTIO_DEVCFG_OFF && off < VIRTIO_DEVCFG_OFF + vd->config_len) {
		if (vd->ops->config_write)
			vd->ops->config_write(vd, (unsigned)(off - VIRTIO_DEVCFG_OFF), size, val);
	}
	pthread_mutex_unlock(&vd->lock);
}

static const struct bus_ops virtio_bar_ops = { .read = virtio_bar_read, .write = virtio_bar_write };

/* Doorbells follow BAR 0: one ioeventfd per queue at its notify address. */
static void bar_moved(struct pci_dev *d, int bar, uint64_t old, uint64_t now)
{
	struct virtio_dev *vd = d->opaque;
	if (bar != 0 || !vd->ioev)
		return;
	for (unsigned q = 0; q < vd->nqueues; q++) {
		uint64_t o = VIRTIO_NOTIFY_OFF + VIRTIO_NOTIFY_MULT * q;
		if (old)
			vd->ioev->del(vd->ioev, old + o, 2, vd->kick_fd[q]);
		if (now) {
			int r = vd->ioev->add(vd->ioev, now + o, 2, vd->kick_fd[q]);
			if (r)
				log_debug("%s: doorbell %u at 0x%llx: %s (writes will exit instead)",
					  vd->name, q, (unsigned long long)(now + o), strerror(-r));
		}
	}
	vd->notify_addr = now ? now + VIRTIO_NOTIFY_OFF : 0;
}

/* VIRTIO_PCI_CAP_PCI_CFG (§4.1.4.9): a window onto BAR 0 through config
 * space, for drivers that cannot map the BAR. */
static bool cfgcap_access(struct virtio_dev *vd, uint32_t *off, unsigned *len)
{
	const uint8_t *c = vd->pci.cfg + vd->cfg_cap;
	uint32_t o, l;
	memcpy(&o, c + offsetof(struct virtio_pci_cap, offset), 4);
	memcpy(&l, c + offsetof(struct virtio_pci_cap, length), 4);
	if (c[offsetof(struct virtio_pci_cap, bar)] != 0 || (l != 1 && l != 2 && l != 4) ||
	    o % l || o >= VIRTIO_BAR_SIZE)
		return false;
	*off = o;
	*len = l;
	return true;
}

static bool in_cfg_data(const struct virtio_dev *vd, unsigned off, unsigned size)
{
	unsigned data = vd->cfg_cap + offsetof(struct virtio_pci_cfg_cap, pci_cfg_data);
	return off < data + 4 && off + size > data;
}

static bool cfg_read(struct pci_dev *d, unsigned off, unsigned size, uint32_t *val)
{
	struct virtio_dev *vd = d->opaque;
	uint32_t o;
	unsigned l;
	if (!in_cfg_data(vd, off, size) || !cfgcap_access(vd, &o, &l))
		return false;
	if (o >= VIRTIO_MSIX_OFF)
		*val = 0;       /* MSI-X is not reachable through the window */
	else
		*val = (uint32_t)virtio_bar_read(vd, o, l);
	return true;
}

static void cfg_written(struct pci_dev *d, unsigned off, unsigned size, uint32_t val)
{
	struct virtio_dev *vd = d->opaque;
	uint32_t o, data;
	unsigned l;
	if (!in_cfg_data(vd, off, size) || !cfgcap_access(vd, &o, &l) || o >= VIRTIO_MSIX_OFF)
		return;
	memcpy(&data, d->cfg + vd->cfg_cap + offsetof(struct virtio_pci_cfg_cap, pci_cfg_data), 4);
	virtio_bar_write(vd, o, l, data & (l == 4 ? 0xffffffffu : (1u << (8 * l)) - 1));
}

static uint8_t add_vcap(struct virtio_dev *vd, uint8_t type, uint32_t off, uint32_t len,
			const void *extra, unsigned extra_len)
{
	uint8_t buf[sizeof(struct virtio_pci_cap) + 8] = { 0 };
	struct virtio_pci_cap cap = {
		.cap_len = (uint8_t)(sizeof(cap) + extra_len), .cfg_type = type, .bar = 0,
		.offset = off, .length = len,
	};
	memcpy(buf, &cap, sizeof(cap));
	if (extra_len)
		memcpy(buf + sizeof(cap), extra, extra_len);
	return pci_add_cap(&vd->pci, PCI_CAP_ID_VNDR, buf, sizeof(cap) + extra_len);
}

int virtio_init(struct virtio_dev *vd, const struct virtio_setup *s)
{
	memset(vd, 0, sizeof(*vd));
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		vd->kick_fd[q] = -1;
	if (!s->nqueues || s->nqueues > VIRTIO_MAX_QUEUES || s->config_len > VIRTIO_DEVCFG_MAX ||
	    !s->queue_max || (s->queue_max & (s->queue_max - 1)))
		return -EINVAL;
	pthread_mutex_init(&vd->lock, NULL);
	vd->name = s->name;
	vd->device_id = s->device_id;
	vd->ops = s->ops;
	vd->backend = s->backend;
	vd->host_features = s->features | VIRTIO_COMMON_FEATURES;
	vd->config = s->config;
	vd->config_len = s->config_len;
	vd->nqueues = s->nqueues;
	vd->mem = s->env.mem;
	vd->loop = s->env.loop;
	vd->ioev = s->env.ioev;
	vd->msix_config = VIRTIO_MSI_NO_VECTOR;

	struct pci_dev *d = &vd->pci;
	pci_dev_init(d, s->name, VIRTIO_PCI_VENDOR, (uint16_t)(VIRTIO_PCI_DEVICE_BASE + s->device_id),
		     s->class_code, 1, VIRTIO_PCI_VENDOR, 0x1100);
	d->opaque = vd;
	d->bar_moved = bar_moved;
	d->cfg_read = cfg_read;
	d->cfg_written = cfg_written;
	int r = pci_add_bar(d, 0, VIRTIO_BAR_SIZE, false, &virtio_bar_ops, vd);
	if (r)
		return r;
	uint32_t mult = VIRTIO_NOTIFY_MULT;
	if (!add_vcap(vd, VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_COMMON_OFF,
		      sizeof(struct virtio_pci_common_cfg), NULL, 0) ||
	    !add_vcap(vd, VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_NOTIFY_OFF,
		      VIRTIO_NOTIFY_MULT * s->nqueues, &mult, sizeof(mult)) ||
	    !add_vcap(vd, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_ISR_OFF, 1, NULL, 0) ||
	    (s->config_len && !add_vcap(vd, VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_DEVCFG_OFF,
					s->config_len, NULL, 0)))
		return -ENOSPC;
	uint8_t data[4] = { 0 };
	vd->cfg_cap = add_vcap(vd, VIRTIO_PCI_CAP_PCI_CFG, 0, 0, data, sizeof(data));
	if (!vd->cfg_cap)
		return -ENOSPC;
	/* bar, offset, length and the data window are the driver's to set. */
	d->wmask[vd->cfg_cap + offsetof(struct virtio_pci_cap, bar)] = 0xff;
	memset(d->wmask + vd->cfg_cap + offsetof(struct virtio_pci_cap, offset), 0xff, 8);
	memset(d->wmask + vd->cfg_cap + offsetof(struct virtio_pci_cfg_cap, pci_cfg_data), 0xff, 4);
	if ((r = pci_add_msix(d, s->nqueues + 1, 0, VIRTIO_MSIX_OFF, VIRTIO_PBA_OFF, s->env.msi)))
		return r;
	if (s->env.intx)
		pci_set_intx_line(d, s->env.intx);

	for (unsigned q = 0; q < s->nqueues; q++) {
		vd->vq[q].max_size = s->queue_max;
		vq_reset(&vd->vq[q]);
		vd->queue_vector[q] = VIRTIO_MSI_NO_VECTOR;
		vd->kick_fd[q] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (vd->kick_fd[q] < 0)
			return -errno;
		vd->kick[q] = (struct virtio_kick){ vd, q };
		if (s->env.loop && (r = loop_add(s->env.loop, vd->kick_fd[q], EPOLLIN, on_kick, &vd->kick[q])))
			return r;
	}
	return 0;
}

void virtio_destroy(struct virtio_dev *vd)
{
	for (unsigned q = 0; q < vd->nqueues; q++) {
		if (vd->kick_fd[q] < 0)
			continue;
		if (vd->loop)
			loop_remove(vd->loop, vd->kick_fd[q]);
		close(vd->kick_fd[q]);
		vd->kick_fd[q] = -1;
	}
	pci_dev_destroy(&vd->pci);
	pthread_mutex_destroy(&vd->lock);
}
