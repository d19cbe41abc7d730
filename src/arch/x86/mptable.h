/* The Intel MultiProcessor Specification 1.4 tables, for kernels that boot
 * without ACPI (Linux with acpi=off): the CPUs, the IOAPIC, a PCI bus (0)
 * and an ISA bus (1), and where every interrupt lands: ISA IRQs on the
 * IOAPIC pins of the same number (as the MADT has it), each PCI slot's
 * INTA# on IRQ_PCI_INTX(slot) (level, active high), ExtINT on LINT0 and
 * NMI on LINT1. Pure: acpi.c places it in the BIOS area. */
#ifndef EMBER_X86_MPTABLE_H
#define EMBER_X86_MPTABLE_H

#include <stddef.h>
#include <stdint.h>

/* MPS INTI flags (§4.3.4; the MADT's interrupt source overrides use them
 * too, ACPI 6.5 §5.2.12.5): polarity in bits 1-0, trigger mode in bits
 * 3-2; 0 conforms to the bus (ISA: edge, active high). */
#define MPS_INTI_CONFORMS      0x0
#define MPS_INTI_ACTIVE_HIGH   0x1
#define MPS_INTI_LEVEL         (0x3 << 2)

/* APIC IDs above 254 do not fit the table's 8-bit fields: only the first
 * MPTABLE_MAX_CPUS vCPUs are listed. */
#define MPTABLE_MAX_CPUS 255u

/* Bytes of the floating pointer and the configuration table behind it. */
size_t mptable_size(unsigned ncpus);
/* Write both into buf (mptable_size(ncpus) bytes), which the guest sees at
 * gpa: 16-byte aligned and where the OS scans for "_MP_" (the BIOS ROM
 * area from 0xf0000, or the first KiB of the EBDA). */
void mptable_write(void *buf, uint64_t gpa, unsigned ncpus);

#endif
