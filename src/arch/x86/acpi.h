/* ACPI tables for an x86 guest: RSDP, RSDT/XSDT, FADT, FACS, DSDT, MADT and
 * MCFG, written once into the BIOS area of guest RAM before the first vCPU
 * runs, so the guest finds its CPUs, interrupt routing, PM registers, the
 * PCI host bridge and the platform devices; with them the MP table
 * (mptable.h) for kernels booted without ACPI. */
#ifndef EMBER_X86_ACPI_H
#define EMBER_X86_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mem.h"

/* The IOAPIC ID the MADT reports. 0 is what KVM's in-kernel IOAPIC resets
 * its ID register to (and what QEMU and Firecracker's MADTs use); 64-bit
 * Linux only needs it unique among IOAPICs. An MP table should agree. */
#define ACPI_IOAPIC_ID 0

/* The DSDT always has \_SB.PCI0 (the host bridge, its windows and _PRT),
 * the INTx link devices \_SB.GSIA-GSIH, \_SB.COM1, \_S5 and \_S3; the
 * optional devices only when the VM has them. */
struct acpi_config {
	unsigned ncpus;          /* vCPUs: APIC IDs and ACPI UIDs 0..ncpus-1 */
	bool pci_ecam;           /* an MCFG for LAYOUT_PCI_ECAM, bus 0..0, and \_SB.MBRD reserving it */
	bool rtc;                /* \_SB.RTC (--rtc) */
	bool fw_cfg;             /* \_SB.FWCF (--fw-cfg) */
};

/* Write RSDP/RSDT/XSDT/FADT/FACS/DSDT/MADT(/MCFG) and the MP table into
 * guest RAM between LAYOUT_BIOS_START and LAYOUT_BIOS_STUBS; the RSDP's
 * guest-physical address (always LAYOUT_BIOS_START) goes to *rsdp_gpa.
 * vCPUs with APIC IDs below 255 get xAPIC MADT entries, the rest x2APIC
 * ones. Returns 0, -EINVAL (ncpus 0), -ENOSPC (the tables do not fit:
 * guest RAM is then left untouched), -ENOMEM or -EFAULT (the BIOS area is
 * not guest RAM). */
int acpi_build(const struct guest_mem *m, const struct acpi_config *cfg, uint64_t *rsdp_gpa);

/* The byte that makes len bytes sum to zero, as ACPI and MP tables want. */
uint8_t acpi_checksum(const void *p, size_t len);

/* The FACS firmware waking vector the guest left for an S3 resume (real
 * mode, CS:IP = vector >> 4 : vector & 0xf), found from the RSDP at
 * rsdp_gpa. 0, or -ENOENT when the tables lead nowhere. */
int acpi_read_waking_vector(const struct guest_mem *m, uint64_t rsdp_gpa, uint32_t *vector);

#endif
