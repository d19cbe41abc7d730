/* Guest-kit PCI: bus 0 enumeration through ECAM (from the ACPI MCFG) or,
 * without it, configuration mechanism #1; BARs, the capability list,
 * MSI-X; device interrupts on IDT vectors IRQ_VEC_BASE.. with a LAPIC EOI;
 * and the IOAPIC for INTx. ECAM and BAR accesses are MMIO, so they also
 * work at CPL3 (run_user); port I/O does not. */
#ifndef KIT_PCI_H
#define KIT_PCI_H

#include "kit.h"

#define PCI_MAX_FNS 32
#define IRQ_VEC_BASE 0x40
#define IRQ_VECS     16

struct pci_fn {
	uint8_t slot;
	uint16_t vendor, device;
	uint32_t class_code;
};

uint64_t pci_ecam(void);                /* ECAM base from the MCFG, 0 = none */
void pci_use_cf8(bool on);              /* force 0xcf8/0xcfc (CPL0 only) */
uint32_t pci_read(const struct pci_fn *f, unsigned off, unsigned size);
void pci_write(const struct pci_fn *f, unsigned off, unsigned size, uint32_t v);
/* Functions on bus 0 (function 0 of each slot); returns how many. */
int pci_scan(struct pci_fn *out, int max);
bool pci_find(uint16_t vendor, uint16_t device, int n, struct pci_fn *out);
uint64_t pci_bar(const struct pci_fn *f, int bar);        /* address (mem BARs) */
uint64_t pci_bar_size(const struct pci_fn *f, int bar);   /* by the all-ones probe */
/* Offset of the first capability with this id at or after `from` in the
 * list (from = 0: the head); 0 when absent. Loops and bad pointers stop. */
uint8_t pci_cap(const struct pci_fn *f, uint8_t id, uint8_t from);

struct msix {
	const struct pci_fn *f;
	uint8_t cap;
	unsigned nvec;
	volatile uint32_t *table;
};
bool msix_init(struct msix *m, const struct pci_fn *f);
void msix_route(struct msix *m, unsigned entry, uint8_t vector);  /* to this CPU, unmasked */
void msix_mask(struct msix *m, unsigned entry, bool masked);
void msix_enable(struct msix *m, bool on);

/* Interrupts. irq_init: LAPIC on, IDT gates for the IRQ vectors. The
 * optional handler runs in interrupt context before the EOI. */
void irq_init(void);
void irq_set_handler(uint8_t vector, void (*fn)(uint8_t vector));
long irq_count(uint8_t vector);
/* Enable interrupts until count(vector) >= n or timeout; true on success. */
bool irq_wait(uint8_t vector, long n, uint64_t timeout_ms);
/* IOAPIC pin -> vector, level-triggered, active high, to this CPU. */
void ioapic_route(unsigned pin, uint8_t vector, bool masked);

#endif
