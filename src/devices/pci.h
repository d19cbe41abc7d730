/* PCI: a host bridge on bus 0 reached through configuration mechanism #1
 * (ports 0xcf8/0xcfc) and ECAM, per-function configuration space with
 * memory and I/O BARs and a capability list, MSI-X (table and PBA inside a BAR) and
 * INTx. BARs are decoded only inside the PCI MMIO windows; the host
 * registers those windows on the MMIO bus and dispatches to BARs itself, so
 * a guest moving BARs never re-enters the bus registry. */
#ifndef EMBER_PCI_H
#define EMBER_PCI_H

#include <linux/pci_regs.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "bus.h"
#include "irq.h"
#include "migration/devstate.h"
#include "msi.h"

#define PCI_SLOTS        32
#define PCI_BARS         6
#define PCI_CFG_BYTES    256      /* conventional space; ECAM's 256..4095 read 0 */
#define PCI_MSIX_MAX     64
#define PCI_VENDOR_REDHAT 0x1b36  /* the host bridge's IDs, as QEMU's "gpex" */
#define PCI_DEVICE_REDHAT_HOST 0x0008

struct pci_dev;

struct pci_bar {
	uint64_t size;            /* power of two, >= 4 KiB (memory) or 4..256 (I/O); 0 = BAR unused */
	bool is64;
	bool io;                  /* an I/O BAR: ports in the host's I/O window */
	uint64_t addr;            /* as the BAR registers say now */
	uint64_t mapped;          /* address decoded now; 0 = not decoded */
	const struct bus_ops *ops;
	void *opaque;
};

struct pci_msix {
	unsigned nvec;            /* 0 = no MSI-X */
	int bar;
	uint32_t table_off, pba_off;
	uint8_t cap;              /* config offset of the capability */
	pthread_mutex_t lock;     /* table, PBA, control (vCPU vs backend threads) */
	struct {
		uint32_t addr_lo, addr_hi, data, ctrl;
	} table[PCI_MSIX_MAX];
	uint64_t pba;
	uint64_t dirty;           /* entries whose route is not pushed yet */
	int handle[PCI_MSIX_MAX];
	bool enabled, masked;
	struct msi_sink *sink;
};

struct pci_dev {
	const char *name;
	uint8_t cfg[PCI_CFG_BYTES];
	uint8_t wmask[PCI_CFG_BYTES];     /* bits the guest may change */
	uint8_t cap_last;                 /* offset of the last capability, 0 = none */
	unsigned cap_free;                /* where the next capability goes */
	struct pci_bar bar[PCI_BARS];
	struct pci_msix msix;
	struct irq_line *intx;
	bool intx_level;
	unsigned slot;
	struct pci_host *host;
	/* A BAR's decoded address changed (0 = no longer decoded): the device
	 * moves its doorbells. Called with the host's config lock held. */
	void (*bar_moved)(struct pci_dev *d, int bar, uint64_t old_addr, uint64_t new_addr);
	/* Optional hooks for config registers the device implements itself
	 * (after the generic write has been applied / instead of the read). */
	void (*cfg_written)(struct pci_dev *d, unsigned off, unsigned size, uint32_t val);
	bool (*cfg_read)(struct pci_dev *d, unsigned off, unsigned size, uint32_t *val);
	void *opaque;
};

struct pci_host {
	struct pci_dev bridge;
	struct pci_dev *slots[PCI_SLOTS];
	pthread_rwlock_t lock;    /* config writes (BAR moves) vs BAR dispatch */
	/* The BARs that decode now, in slot then BAR order (the precedence
	 * of overlapping BARs): what a guest access is matched against.
	 * Rebuilt, under the write lock, when a BAR's decoding changes. */
	struct { struct pci_dev *d; uint8_t bar; } decoded[(PCI_SLOTS - 1) * PCI_BARS];
	unsigned ndecoded;
	uint32_t cf8;             /* configuration mechanism #1 address */
	uint64_t mmio32_base, mmio32_next, mmio32_end;
	uint64_t mmio64_base, mmio64_next, mmio64_end;
	uint64_t io_base, io_next, io_end;    /* I/O BAR window (PCI_IO_WINDOW..) */
};

/* Ports for I/O BARs, where PC firmware puts them. */
#define PCI_IO_WINDOW     0xc000
#define PCI_IO_WINDOW_END 0x10000

/* The host bridge at 00:00.0 with BAR windows [mmio32, mmio32_end) and
 * [mmio64, mmio64_end). */
void pci_host_init(struct pci_host *h, uint64_t mmio32, uint64_t mmio32_end,
		   uint64_t mmio64, uint64_t mmio64_end);
void pci_host_destroy(struct pci_host *h);
/* Register ports 0xcf8-0xcff, ECAM and the BAR windows (memory and I/O) on
 * the buses. */
int pci_host_attach(struct pci_host *h, struct bus *pio, struct bus *mmio, uint64_t ecam,
		    uint64_t ecam_size);

extern const struct bus_ops pci_cf8_ops;    /* PCI_CF8_PORTS ports at 0xcf8, opaque = host */
extern const struct bus_ops pci_ecam_ops;   /* opaque = host */
/* A guest access at a guest-physical address inside a window. */
uint64_t pci_window_read(struct pci_host *h, uint64_t addr, unsigned size);
void pci_window_write(struct pci_host *h, uint64_t addr, unsigned size, uint64_t value);
/* A guest access at a port inside the I/O window. */
uint64_t pci_io_read(struct pci_host *h, uint64_t port, unsigned size);
void pci_io_write(struct pci_host *h, uint64_t port, unsigned size, uint64_t value);

#define PCI_CF8_PORT  0xcf8
#define PCI_CF8_PORTS 8          /* address (0xcf8) and data (0xcfc) */

/* Function setup, before pci_host_add. */
void pci_dev_init(struct pci_dev *d, const char *name, uint16_t vendor, uint16_t device,
		  uint32_t class_code, uint8_t revision, uint16_t subsys_vendor, uint16_t subsys_id);
void pci_dev_destroy(struct pci_dev *d);
int pci_add_bar(struct pci_dev *d, int bar, uint64_t size, bool is64,
		const struct bus_ops *ops, void *opaque);
/* An I/O BAR of size ports (a power of two, 4 to 256). */
int pci_add_io_bar(struct pci_dev *d, int bar, uint64_t size, const struct bus_ops *ops, void *opaque);
/* Append a capability of len bytes (id and next pointer included) and
 * return its config offset, or 0 when it does not fit. */
uint8_t pci_add_cap(struct pci_dev *d, uint8_t id, const void *body, unsigned len);
/* MSI-X with nvec vectors, table at table_off and PBA at pba_off in bar. */
int pci_add_msix(struct pci_dev *d, unsigned nvec, int bar, uint32_t table_off,
		 uint32_t pba_off, struct msi_sink *sink);
/* INTA# through line; PCI_INTERRUPT_LINE reads line->gsi. */
void pci_set_intx_line(struct pci_dev *d, struct irq_line *line);

/* Plug d into the first free slot, place its BARs; 0 or -errno. */
int pci_host_add(struct pci_host *h, struct pci_dev *d);

/* Config space access (offsets within the function), as the guest does it. */
uint32_t pci_cfg_read(struct pci_dev *d, unsigned off, unsigned size);
void pci_cfg_write(struct pci_dev *d, unsigned off, unsigned size, uint32_t val);

/* Interrupts from the device. pci_msix_enabled: MSI-X is on (messages go
 * out through pci_msix_notify; INTx is not used). pci_msix_notify sends
 * vector or leaves it pending while masked; out-of-range vectors are
 * ignored. */
bool pci_msix_enabled(struct pci_dev *d);
void pci_msix_notify(struct pci_dev *d, unsigned vector);
void pci_set_intx(struct pci_dev *d, bool level);

/* Migration: a function's guest-visible state (config space, MSI-X table
 * and PBA, INTx level) as fields tag0..tag0+4 of the open section. Loading
 * checks the slot and every read-only byte against this function (a
 * stream for another device is refused), takes only writable bits,
 * re-decodes the BARs (doorbells move with them) and re-points every
 * MSI-X route. The VM is paused; 0 or state_fail(). */
void pci_dev_save(struct pci_dev *d, struct state_writer *w, uint16_t tag0);
int pci_dev_load(struct pci_dev *d, struct state_reader *r, uint16_t tag0);
/* "pci-host": the bridge's config space and the 0xcf8 address latch. */
extern const struct devstate_ops pci_host_state_ops;

static inline uint16_t pci_cfg_get16(const struct pci_dev *d, unsigned off)
{
	return (uint16_t)(d->cfg[off] | d->cfg[off + 1] << 8);
}

#endif
