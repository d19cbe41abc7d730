/* MP tables: see mptable.h. Section numbers are MultiProcessor
 * Specification 1.4's. */
#include "arch/x86/mptable.h"

#include <string.h>

#include "arch/x86/acpi.h"
#include "arch/x86/layout.h"
#include "devices/pci.h"

/* §4.1 MP Floating Pointer Structure */
struct mpf {
	char signature[4];              /* "_MP_" */
	uint32_t config;                /* the configuration table */
	uint8_t length;                 /* 16-byte units: 1 */
	uint8_t spec;                   /* 4: version 1.4 */
	uint8_t checksum;               /* all 16 bytes sum to 0 */
	uint8_t feature[5];             /* 0: a table, no default configuration,
					 * virtual wire mode (no IMCR) */
} __attribute__((packed));

/* §4.2 MP Configuration Table Header */
struct mpc_header {
	char signature[4];              /* "PCMP" */
	uint16_t length;                /* the base table, header included */
	uint8_t spec;
	uint8_t checksum;
	char oem_id[8];
	char product_id[12];
	uint32_t oem_table;
	uint16_t oem_table_size;
	uint16_t entries;
	uint32_t lapic_address;
	uint16_t ext_length;
	uint8_t ext_checksum;
	uint8_t reserved;
} __attribute__((packed));

/* §4.3.1 Processor Entries */
struct mpc_cpu {
	uint8_t type;                   /* 0 */
	uint8_t apic_id;
	uint8_t apic_version;
	uint8_t flags;
	uint32_t signature;             /* CPUID 1 EAX; 0: CPUID tells */
	uint32_t features;              /* CPUID 1 EDX; 0 likewise */
	uint32_t reserved[2];
} __attribute__((packed));

/* §4.3.2 Bus Entries */
struct mpc_bus {
	uint8_t type;                   /* 1 */
	uint8_t bus_id;
	char bus_type[6];
} __attribute__((packed));

/* §4.3.3 I/O APIC Entries */
struct mpc_ioapic {
	uint8_t type;                   /* 2 */
	uint8_t apic_id;
	uint8_t apic_version;
	uint8_t flags;
	uint32_t address;
} __attribute__((packed));

/* §4.3.4 I/O Interrupt Assignment and §4.3.5 Local Interrupt Assignment
 * Entries (type 3 and 4: the same layout). */
struct mpc_irq {
	uint8_t type;
	uint8_t irq_type;
	uint16_t flags;                 /* MPS_INTI_* */
	uint8_t src_bus;
	uint8_t src_irq;                /* PCI: slot << 2 | pin (0 = INTA#) */
	uint8_t dst_apic;               /* 0xff: every local APIC */
	uint8_t dst_pin;                /* IOAPIC INTINn, or LINTn */
} __attribute__((packed));

_Static_assert(sizeof(struct mpf) == 16, "MP floating pointer size");
_Static_assert(sizeof(struct mpc_header) == 44, "MP table header size");
_Static_assert(sizeof(struct mpc_cpu) == 20, "MP processor entry size");
_Static_assert(sizeof(struct mpc_bus) == 8 && sizeof(struct mpc_ioapic) == 8 &&
	       sizeof(struct mpc_irq) == 8, "MP entry sizes");

enum { MP_CPU = 0, MP_BUS = 1, MP_IOAPIC = 2, MP_IOINT = 3, MP_LINT = 4 };
enum { MP_INT = 0, MP_NMI = 1, MP_EXTINT = 3 };
enum { BUS_PCI = 0, BUS_ISA = 1 };      /* the PCI bus's ID is its number */

#define MP_CPU_ENABLED         0x01
#define MP_CPU_BSP             0x02
#define MP_IOAPIC_ENABLED      0x01
/* What KVM's in-kernel LAPIC and IOAPIC report in their version registers. */
#define MP_LAPIC_VERSION       0x14
#define MP_IOAPIC_VERSION      0x11
#define ISA_IRQS               16
#define ISA_CASCADE_IRQ        2        /* the slave 8259: no IOAPIC pin of its own */

static unsigned listed_cpus(unsigned ncpus)
{
	return ncpus < MPTABLE_MAX_CPUS ? ncpus : MPTABLE_MAX_CPUS;
}

static unsigned irq_entries(void)
{
	return (ISA_IRQS - 1) + PCI_SLOTS;
}

size_t mptable_size(unsigned ncpus)
{
	return sizeof(struct mpf) + sizeof(struct mpc_header) +
	       listed_cpus(ncpus) * sizeof(struct mpc_cpu) + 2 * sizeof(struct mpc_bus) +
	       sizeof(struct mpc_ioapic) + (irq_entries() + 2) * sizeof(struct mpc_irq);
}

static uint8_t *put(uint8_t *p, const void *e, size_t len)
{
	memcpy(p, e, len);
	return p + len;
}

static uint8_t *put_irq(uint8_t *p, uint8_t type, uint8_t irq_type, uint16_t flags,
			uint8_t src_bus, uint8_t src_irq, uint8_t dst_apic, uint8_t dst_pin)
{
	struct mpc_irq e = { .type = type, .irq_type = irq_type, .flags = flags, .src_bus = src_bus,
			     .src_irq = src_irq, .dst_apic = dst_apic, .dst_pin = dst_pin };
	return put(p, &e, sizeof(e));
}

/* The interrupt routing of the MADT (ISA) and of vm_pci.c (PCI). */
static uint8_t *put_routing(uint8_t *p)
{
	for (unsigned irq = 0; irq < ISA_IRQS; irq++) {
		uint16_t flags = irq == IRQ_ACPI_SCI ? MPS_INTI_LEVEL | MPS_INTI_ACTIVE_HIGH
						     : MPS_INTI_CONFORMS;
		if (irq != ISA_CASCADE_IRQ)
			p = put_irq(p, MP_IOINT, MP_INT, flags, BUS_ISA, (uint8_t)irq, ACPI_IOAPIC_ID,
				    (uint8_t)irq);
	}
	for (unsigned slot = 0; slot < PCI_SLOTS; slot++)
		p = put_irq(p, MP_IOINT, MP_INT, MPS_INTI_LEVEL | MPS_INTI_ACTIVE_HIGH, BUS_PCI,
			    (uint8_t)(slot << 2), ACPI_IOAPIC_ID, IRQ_PCI_INTX(slot));
	p = put_irq(p, MP_LINT, MP_EXTINT, MPS_INTI_CONFORMS, BUS_ISA, 0, 0xff, 0);
	return put_irq(p, MP_LINT, MP_NMI, MPS_INTI_CONFORMS, BUS_ISA, 0, 0xff, 1);
}

void mptable_write(void *buf, uint64_t gpa, unsigned ncpus)
{
	struct mpf *f = buf;
	struct mpc_header *h = (struct mpc_header *)(f + 1);
	uint8_t *p = (uint8_t *)(h + 1);
	unsigned cpus = listed_cpus(ncpus);

	for (unsigned i = 0; i < cpus; i++) {
		struct mpc_cpu c = { .type = MP_CPU, .apic_id = (uint8_t)i,
				     .apic_version = MP_LAPIC_VERSION,
				     .flags = MP_CPU_ENABLED | (i == 0 ? MP_CPU_BSP : 0) };
		p = put(p, &c, sizeof(c));
	}
	struct mpc_bus pci = { .type = MP_BUS, .bus_id = BUS_PCI };
	struct mpc_bus isa = { .type = MP_BUS, .bus_id = BUS_ISA };
	memcpy(pci.bus_type, "PCI   ", sizeof(pci.bus_type));
	memcpy(isa.bus_type, "ISA   ", sizeof(isa.bus_type));
	struct mpc_ioapic io = { .type = MP_IOAPIC, .apic_id = ACPI_IOAPIC_ID,
				 .apic_version = MP_IOAPIC_VERSION, .flags = MP_IOAPIC_ENABLED,
				 .address = (uint32_t)LAYOUT_IOAPIC };
	p = put(p, &pci, sizeof(pci));
	p = put(p, &isa, sizeof(isa));
	p = put(p, &io, sizeof(io));
	p = put_routing(p);

	*h = (struct mpc_header){
		.length = (uint16_t)(p - (uint8_t *)h), .spec = 4,
		.entries = (uint16_t)(cpus + 3 + irq_entries() + 2),
		.lapic_address = (uint32_t)LAYOUT_LAPIC,
	};
	memcpy(h->signature, "PCMP", sizeof(h->signature));
	memcpy(h->oem_id, "EMBER   ", sizeof(h->oem_id));
	memcpy(h->product_id, "EMBERVM     ", sizeof(h->product_id));
	h->checksum = acpi_checksum(h, h->length);
	*f = (struct mpf){ .config = (uint32_t)(gpa + sizeof(*f)), .length = 1, .spec = 4 };
	memcpy(f->signature, "_MP_", sizeof(f->signature));
	f->checksum = acpi_checksum(f, sizeof(*f));
}
