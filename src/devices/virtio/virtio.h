/* A virtio 1.2 device behind the modern PCI transport (§4.1): common,
 * notify, ISR and device configuration structures plus the PCI
 * configuration access capability in BAR 0, MSI-X vectors, INTx when MSI-X
 * is off. Kicks arrive on one eventfd per queue (an ioeventfd when the VM
 * gives one, else the transport signals it on the MMIO write) and are
 * handled on the event loop; device backends implement struct virtio_ops.
 * Threads: vCPUs touch the transport registers, the loop runs the queues;
 * both hold vd->lock. */
#ifndef EMBER_VIRTIO_H
#define EMBER_VIRTIO_H

#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_pci.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/pci.h"
#include "devices/virtio/virtqueue.h"
#include "migration/devstate.h"
#include "loop.h"
#include "mem.h"
#include "msi.h"

#define VIRTIO_MAX_QUEUES   8
#define VIRTIO_PCI_VENDOR   0x1af4
#define VIRTIO_PCI_DEVICE_BASE 0x1040   /* + device ID: modern-only (§4.1.2.1) */

/* BAR 0 layout. */
#define VIRTIO_BAR_SIZE      0x4000
#define VIRTIO_COMMON_OFF    0x0000
#define VIRTIO_ISR_OFF       0x0800
#define VIRTIO_DEVCFG_OFF    0x1000
#define VIRTIO_DEVCFG_MAX    0x1000
#define VIRTIO_NOTIFY_OFF    0x2000
#define VIRTIO_NOTIFY_MULT   4         /* each queue its own doorbell */
#define VIRTIO_MSIX_OFF      0x3000
#define VIRTIO_PBA_OFF       0x3800

/* Features every Ember virtio device offers. */
#define VIRTIO_COMMON_FEATURES ((1ULL << VIRTIO_F_VERSION_1) | \
				(1ULL << VIRTIO_RING_F_EVENT_IDX) | \
				(1ULL << VIRTIO_RING_F_INDIRECT_DESC))

struct virtio_dev;
struct virtio_load;

struct virtio_ops {
	/* Queue q was kicked (loop thread, vd->lock held, DRIVER_OK set,
	 * queue enabled, device not broken). */
	void (*notify)(struct virtio_dev *vd, unsigned q);
	/* DRIVER_OK was set (vd->lock held). */
	void (*activate)(struct virtio_dev *vd);
	/* The driver reset the device: stop and forget in-flight work
	 * (vd->lock held). */
	void (*reset)(struct virtio_dev *vd);
	/* Device config write (vd->lock held); NULL = read-only config. */
	void (*config_write)(struct virtio_dev *vd, unsigned off, unsigned size, uint64_t val);
	/* Migration, all optional (vd->lock held). quiesce: the VM paused:
	 * finish in-flight requests and push them to the used ring. save /
	 * load: the backend's own fields (tags from VIRTIO_STATE_BACKEND);
	 * load runs after the transport's fields were read and checked but
	 * before they are taken (t: what will be), and takes its own only
	 * when every check passed. */
	void (*quiesce)(struct virtio_dev *vd);
	int (*save)(struct virtio_dev *vd, struct state_writer *w);
	int (*load)(struct virtio_dev *vd, struct state_reader *r, const struct virtio_load *t);
};

#define VIRTIO_STATE_BACKEND 0x400

/* The transport state a load is about to take (see virtio_ops.load). */
struct virtio_load {
	uint64_t features;               /* negotiated */
	uint8_t status;
	bool broken;
	uint16_t queue_size[VIRTIO_MAX_QUEUES];   /* 0: the queue is not enabled */
};

struct virtio_dev {
	struct pci_dev pci;
	pthread_mutex_t lock;
	const char *name;
	uint16_t device_id;
	const struct virtio_ops *ops;
	void *backend;

	uint64_t host_features, guest_features;
	uint32_t dfselect, gfselect;
	uint8_t status;
	bool broken;                     /* DEVICE_NEEDS_RESET */
	bool quiesced;                   /* the VM is paused: kicks wait for resume */
	uint8_t config_generation;
	uint16_t msix_config;
	uint16_t queue_select;
	uint8_t isr;

	unsigned nqueues;
	struct virtq vq[VIRTIO_MAX_QUEUES];
	uint16_t queue_vector[VIRTIO_MAX_QUEUES];
	int kick_fd[VIRTIO_MAX_QUEUES];
	struct virtio_kick { struct virtio_dev *vd; unsigned q; } kick[VIRTIO_MAX_QUEUES];

	uint8_t *config;                 /* device config, config_len bytes */
	unsigned config_len;

	uint8_t cfg_cap;                 /* VIRTIO_PCI_CAP_PCI_CFG offset */
	uint64_t notify_addr;            /* where the doorbells are decoded, 0 = nowhere */
	const struct guest_mem *mem;
	struct loop *loop;
	struct ioevent_sink *ioev;
	uint64_t bad_requests;           /* chains the device refused */
};

/* What the VM hands every virtio device it creates. */
struct virtio_env {
	const struct guest_mem *mem;
	struct loop *loop;               /* NULL: kicks are only taken by virtio_kick */
	struct msi_sink *msi;
	struct ioevent_sink *ioev;       /* NULL: doorbells exit to the transport */
	struct irq_line *intx;           /* INTA#; NULL = none */
};

struct virtio_setup {
	const char *name;
	uint16_t device_id;
	uint32_t class_code;
	unsigned nqueues;
	uint16_t queue_max;
	uint64_t features;               /* device features; common ones are added */
	void *config;
	unsigned config_len;
	const struct virtio_ops *ops;
	void *backend;
	struct virtio_env env;
};

/* Set up vd (not yet plugged: pci_host_add(&vd->pci) next). 0 or -errno. */
int virtio_init(struct virtio_dev *vd, const struct virtio_setup *s);
void virtio_destroy(struct virtio_dev *vd);

/* Run queue q's kick as the loop would (tests; takes vd->lock). */
void virtio_kick(struct virtio_dev *vd, unsigned q);
/* After vq_push: interrupt the driver if it wants one (vd->lock held). */
void virtio_queue_interrupt(struct virtio_dev *vd, unsigned q);
/* The driver broke the rules: DEVICE_NEEDS_RESET and a config interrupt
 * (vd->lock held). */
void virtio_set_broken(struct virtio_dev *vd, const char *why);
bool virtio_has_feature(const struct virtio_dev *vd, unsigned bit);
/* The device changed its configuration: new config_generation and, once
 * the driver is running, a configuration change interrupt (vd->lock held). */
void virtio_config_changed(struct virtio_dev *vd);

/* Migration (state.c): the section of a virtio device ("virtio-blk",
 * "virtio-net", "virtio-rng", "virtio-balloon"; opaque = the virtio_dev): PCI function,
 * transport (status, features, queues with their indexes and vectors) and
 * the backend's fields. Loading checks every value against this device
 * and re-maps the rings through the checked path. */
const struct devstate_ops *virtio_state_ops(const struct virtio_dev *vd);

/* The BAR 0 handlers (for tests; the PCI host calls them). */
uint64_t virtio_bar_read(void *opaque, uint64_t off, unsigned size);
void virtio_bar_write(void *opaque, uint64_t off, unsigned size, uint64_t val);

#endif
