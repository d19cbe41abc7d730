/* ACPI tables for an x86 guest: RSDP, RSDT/XSDT, FADT, FACS, DSDT, MADT and
 * MCFG, written once into the BIOS area of guest RAM before the first vCPU
 * runs, so the guest finds its CPUs, interrupt routing and PM registers. */
#ifndef EMBER_X86_ACPI_H
#define EMBER_X86_ACPI_H

#include <stdbool.h>
#include <stdint.h>

#include "mem.h"

/* The IOAPIC ID the MADT reports. 0 is what KVM's in-kernel IOAPIC resets
 * its ID register to (and what QEMU and Firecracker's MADTs use); 64-bit
 * Linux only needs it unique among IOAPICs. An MP table should agree. */
#define ACPI_IOAPIC_ID 0

struct acpi_config {
	unsigned ncpus;          /* vCPUs: APIC IDs and ACPI UIDs 0..ncpus-1 */
	bool pci_ecam;           /* add an MCFG for LAYOUT_PCI_ECAM, bus 0..0 */
	/* room for later: the PM timer is always there */
};

/* Write RSDP/RSDT/XSDT/FADT/FACS/DSDT/MADT(/MCFG) into guest RAM between
 * LAYOUT_BIOS_START and LAYOUT_BIOS_END; the RSDP's guest-physical address
 * (always LAYOUT_BIOS_START) goes to *rsdp_gpa. vCPUs with APIC IDs below
 * 255 get xAPIC MADT entries, the rest x2APIC ones.
 * Returns 0, -EINVAL (ncpus 0), -ENOSPC (the tables do not fit: guest RAM
 * is then left untouched) or -EFAULT (the BIOS area is not guest RAM). */
int acpi_build(const struct guest_mem *m, const struct acpi_config *cfg, uint64_t *rsdp_gpa);

/* The FACS firmware waking vector the guest left for an S3 resume (real
 * mode, CS:IP = vector >> 4 : vector & 0xf), found from the RSDP at
 * rsdp_gpa. 0, or -ENOENT when the tables lead nowhere. */
int acpi_read_waking_vector(const struct guest_mem *m, uint64_t rsdp_gpa, uint32_t *vector);

#endif
