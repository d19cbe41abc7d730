/* Migration of a virtio PCI device: its PCI function, the transport's
 * registers and queues, the backend's fields; quiesce/resume around a
 * pause. Everything loaded is checked against this device: a stream is
 * input, never trusted. */
#include <errno.h>
#include <sys/eventfd.h>

#include "devices/virtio/balloon.h"
#include "devices/virtio/virtio.h"

#define STATUS_BITS (VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | \
		     VIRTIO_CONFIG_S_DRIVER_OK | VIRTIO_CONFIG_S_FEATURES_OK | \
		     VIRTIO_CONFIG_S_FAILED)

enum {
	T_NQUEUES = 1, T_HOST_FEATURES, T_GUEST_FEATURES, T_DFSELECT, T_GFSELECT, T_STATUS,
	T_BROKEN, T_GENERATION, T_MSIX_CONFIG, T_QUEUE_SELECT, T_ISR,
	T_PCI = 0x10,                   /* .. 0x14: pci_dev_save */
	T_QUEUE = 0x100,                /* + 0x10 * q + Q_* */
};
enum { Q_SIZE, Q_DESC, Q_AVAIL, Q_USED, Q_ENABLED, Q_LAST_AVAIL, Q_USED_IDX, Q_SIGNALLED,
       Q_SIGNALLED_VALID, Q_VECTOR };

static uint16_t qtag(unsigned q, unsigned k)
{
	return (uint16_t)(T_QUEUE + 0x10 * q + k);
}

static int vstate_save(void *opaque, struct state_writer *w)
{
	struct virtio_dev *vd = opaque;
	pci_dev_save(&vd->pci, w, T_PCI);
	pthread_mutex_lock(&vd->lock);
	state_put_u32(w, T_NQUEUES, vd->nqueues);
	state_put_u64(w, T_HOST_FEATURES, vd->host_features);
	state_put_u64(w, T_GUEST_FEATURES, vd->guest_features);
	state_put_u32(w, T_DFSELECT, vd->dfselect);
	state_put_u32(w, T_GFSELECT, vd->gfselect);
	state_put_u8(w, T_STATUS, vd->status);
	state_put_u8(w, T_BROKEN, vd->broken);
	state_put_u8(w, T_GENERATION, vd->config_generation);
	state_put_u16(w, T_MSIX_CONFIG, vd->msix_config);
	state_put_u16(w, T_QUEUE_SELECT, vd->queue_select);
	state_put_u8(w, T_ISR, vd->isr);
	for (unsigned q = 0; q < vd->nqueues; q++) {
		const struct virtq *vq = &vd->vq[q];
		state_put_u16(w, qtag(q, Q_SIZE), vq->size);
		state_put_u64(w, qtag(q, Q_DESC), vq->desc_gpa);
		state_put_u64(w, qtag(q, Q_AVAIL), vq->avail_gpa);
		state_put_u64(w, qtag(q, Q_USED), vq->used_gpa);
		state_put_u8(w, qtag(q, Q_ENABLED), vq->enabled);
		state_put_u16(w, qtag(q, Q_LAST_AVAIL), vq->last_avail);
		state_put_u16(w, qtag(q, Q_USED_IDX), vq->used_idx);
		state_put_u16(w, qtag(q, Q_SIGNALLED), vq->signalled);
		state_put_u8(w, qtag(q, Q_SIGNALLED_VALID), vq->signalled_valid);
		state_put_u16(w, qtag(q, Q_VECTOR), vd->queue_vector[q]);
	}
	int r = vd->ops->save ? vd->ops->save(vd, w) : 0;
	pthread_mutex_unlock(&vd->lock);
	return r;
}

static bool vector_ok(const struct virtio_dev *vd, uint16_t v)
{
	return v == VIRTIO_MSI_NO_VECTOR || v < vd->pci.msix.nvec;
}

struct qstate {
	struct virtq vq;
	uint16_t vector;
	uint8_t enabled, signalled_valid;
};

static int get_queue(struct virtio_dev *vd, struct state_reader *r, unsigned q, struct qstate *s)
{
	int e;
	s->vq = (struct virtq){ .max_size = vd->vq[q].max_size };
	if ((e = state_get_u16(r, qtag(q, Q_SIZE), &s->vq.size)) ||
	    (e = state_get_u64(r, qtag(q, Q_DESC), &s->vq.desc_gpa)) ||
	    (e = state_get_u64(r, qtag(q, Q_AVAIL), &s->vq.avail_gpa)) ||
	    (e = state_get_u64(r, qtag(q, Q_USED), &s->vq.used_gpa)) ||
	    (e = state_get_u8(r, qtag(q, Q_ENABLED), &s->enabled)) ||
	    (e = state_get_u16(r, qtag(q, Q_LAST_AVAIL), &s->vq.last_avail)) ||
	    (e = state_get_u16(r, qtag(q, Q_USED_IDX), &s->vq.used_idx)) ||
	    (e = state_get_u16(r, qtag(q, Q_SIGNALLED), &s->vq.signalled)) ||
	    (e = state_get_u8(r, qtag(q, Q_SIGNALLED_VALID), &s->signalled_valid)) ||
	    (e = state_get_u16(r, qtag(q, Q_VECTOR), &s->vector)))
		return e;
	if (s->enabled > 1 || s->signalled_valid > 1)
		return state_fail(r, "queue %u: flags out of range", q);
	if (!vector_ok(vd, s->vector))
		return state_fail(r, "queue %u: MSI-X vector %u of %u", q, s->vector, vd->pci.msix.nvec);
	return 0;
}

static int vstate_load(void *opaque, struct state_reader *r)
{
	struct virtio_dev *vd = opaque;
	uint32_t nq, dfsel, gfsel;
	uint64_t hf, gf;
	uint8_t status, broken, gen, isr;
	uint16_t msix_config, qsel;
	struct qstate qs[VIRTIO_MAX_QUEUES];
	int e;
	/* The PCI function first: it takes the host lock, which comes before
	 * vd->lock (config writes reach the transport that way). */
	if ((e = pci_dev_load(&vd->pci, r, T_PCI)))
		return e;
	if ((e = state_get_u32(r, T_NQUEUES, &nq)) || (e = state_get_u64(r, T_HOST_FEATURES, &hf)) ||
	    (e = state_get_u64(r, T_GUEST_FEATURES, &gf)) || (e = state_get_u32(r, T_DFSELECT, &dfsel)) ||
	    (e = state_get_u32(r, T_GFSELECT, &gfsel)) || (e = state_get_u8(r, T_STATUS, &status)) ||
	    (e = state_get_u8(r, T_BROKEN, &broken)) || (e = state_get_u8(r, T_GENERATION, &gen)) ||
	    (e = state_get_u16(r, T_MSIX_CONFIG, &msix_config)) ||
	    (e = state_get_u16(r, T_QUEUE_SELECT, &qsel)) || (e = state_get_u8(r, T_ISR, &isr)))
		return e;
	if (nq != vd->nqueues)
		return state_fail(r, "%u queues in the stream, %u here", nq, vd->nqueues);
	if (gf & ~vd->host_features)
		return state_fail(r, "negotiated features 0x%llx not offered here (0x%llx)",
				  (unsigned long long)gf, (unsigned long long)vd->host_features);
	if (status & ~STATUS_BITS || broken > 1 || isr & ~(VIRTIO_PCI_ISR_CONFIG | 1u))
		return state_fail(r, "status 0x%x, broken %u or ISR 0x%x out of range", status, broken, isr);
	if ((status & VIRTIO_CONFIG_S_FEATURES_OK) && !(gf & (1ULL << VIRTIO_F_VERSION_1)))
		return state_fail(r, "FEATURES_OK without VERSION_1");
	if (!vector_ok(vd, msix_config))
		return state_fail(r, "config MSI-X vector %u of %u", msix_config, vd->pci.msix.nvec);
	bool event_idx = gf & (1ULL << VIRTIO_RING_F_EVENT_IDX);
	bool indirect = gf & (1ULL << VIRTIO_RING_F_INDIRECT_DESC);
	for (unsigned q = 0; q < nq; q++) {
		if ((e = get_queue(vd, r, q, &qs[q])))
			return e;
		if (!qs[q].enabled)
			continue;
		if (!(status & VIRTIO_CONFIG_S_FEATURES_OK))
			return state_fail(r, "queue %u enabled before FEATURES_OK", q);
		/* The rings through the checked path, as when the driver
		 * enabled the queue; vq_start zeroes the indexes. */
		struct virtq *vq = &qs[q].vq;
		uint16_t la = vq->last_avail, ui = vq->used_idx, sig = vq->signalled;
		if (vq_start(vq, vd->mem, event_idx, indirect))
			return state_fail(r, "queue %u: size %u or ring addresses not valid here", q, vq->size);
		/* A device never holds more chains than the ring has entries
		 * (found by fuzz_devstate: the stream could claim any). */
		if ((uint16_t)(la - ui) > vq->size)
			return state_fail(r, "queue %u: %u chains in flight on a ring of %u", q,
					  (uint16_t)(la - ui), vq->size);
		vq->last_avail = la;
		vq->used_idx = ui;
		vq->signalled = sig;
		vq->signalled_valid = qs[q].signalled_valid;
		vq->enabled = true;
	}
	struct virtio_load t = { .features = gf, .status = status, .broken = broken };
	for (unsigned q = 0; q < nq; q++)
		t.queue_size[q] = qs[q].enabled ? qs[q].vq.size : 0;
	pthread_mutex_lock(&vd->lock);
	if (vd->ops->load && (e = vd->ops->load(vd, r, &t))) {
		pthread_mutex_unlock(&vd->lock);
		return e;
	}
	vd->guest_features = gf;
	vd->dfselect = dfsel;
	vd->gfselect = gfsel;
	vd->status = status;
	vd->broken = broken;
	vd->config_generation = gen;
	vd->msix_config = msix_config;
	vd->queue_select = qsel;
	vd->isr = isr;
	for (unsigned q = 0; q < nq; q++) {
		if (!qs[q].enabled) {
			/* Only what the driver may program; no ring mapped. */
			struct virtq *vq = &vd->vq[q];
			vq_reset(vq);
			vq->size = qs[q].vq.size;
			vq->desc_gpa = qs[q].vq.desc_gpa;
			vq->avail_gpa = qs[q].vq.avail_gpa;
			vq->used_gpa = qs[q].vq.used_gpa;
		} else {
			vd->vq[q] = qs[q].vq;
		}
		vd->queue_vector[q] = qs[q].vector;
	}
	/* The backend's side of DRIVER_OK (tap offloads, receive), and
	 * kicks the source had not handled yet, which are not in the stream:
	 * look at every live queue once the loop runs. */
	if ((status & VIRTIO_CONFIG_S_DRIVER_OK) && !broken && vd->ops->activate)
		vd->ops->activate(vd);
	if ((status & VIRTIO_CONFIG_S_DRIVER_OK) && !broken)
		for (unsigned q = 0; q < nq; q++)
			if (vd->vq[q].enabled && vd->kick_fd[q] >= 0)
				eventfd_write(vd->kick_fd[q], 1);
	pthread_mutex_unlock(&vd->lock);
	return 0;
}

static void vstate_quiesce(void *opaque)
{
	struct virtio_dev *vd = opaque;
	pthread_mutex_lock(&vd->lock);
	vd->quiesced = true;
	if (vd->ops->quiesce)
		vd->ops->quiesce(vd);
	pthread_mutex_unlock(&vd->lock);
}

static void vstate_resume(void *opaque)
{
	struct virtio_dev *vd = opaque;
	pthread_mutex_lock(&vd->lock);
	if (vd->quiesced) {
		vd->quiesced = false;
		/* Kicks taken while quiet were dropped: look again. */
		for (unsigned q = 0; q < vd->nqueues; q++)
			if (vd->vq[q].enabled && vd->kick_fd[q] >= 0)
				eventfd_write(vd->kick_fd[q], 1);
	}
	pthread_mutex_unlock(&vd->lock);
}

#define VIRTIO_STATE_OPS(n, v) { .name = n, .version = v, .save = vstate_save, .load = vstate_load, \
				 .quiesce = vstate_quiesce, .resume = vstate_resume }
static const struct devstate_ops blk_state = VIRTIO_STATE_OPS("virtio-blk", 1);
static const struct devstate_ops net_state = VIRTIO_STATE_OPS("virtio-net", 1);
static const struct devstate_ops rng_state = VIRTIO_STATE_OPS("virtio-rng", 1);
/* v1 (the transport alone) was written only briefly; balloon.c refuses it. */
static const struct devstate_ops balloon_state = VIRTIO_STATE_OPS("virtio-balloon", BALLOON_STATE_VERSION);
static const struct devstate_ops other_state = VIRTIO_STATE_OPS("virtio", 1);

const struct devstate_ops *virtio_state_ops(const struct virtio_dev *vd)
{
	switch (vd->device_id) {
	case VIRTIO_ID_BLOCK: return &blk_state;
	case VIRTIO_ID_NET: return &net_state;
	case VIRTIO_ID_RNG: return &rng_state;
	case VIRTIO_ID_BALLOON: return &balloon_state;
	default: return &other_state;
	}
}
