/* The guest-physical memory map of an Ember x86 VM: where firmware-like
 * tables, boot structures and MMIO windows live. One place, so the loaders,
 * the e820 builder, ACPI and the devices agree. */
#ifndef EMBER_X86_LAYOUT_H
#define EMBER_X86_LAYOUT_H

#define KiB (1ULL << 10)
#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

/* Low memory (first MiB). Page 0 stays clear (real-mode IVT, AP trampoline). */
#define LAYOUT_BOOT_GDT        0x1000ULL   /* Ember's boot GDT (64-bit entry) */
#define LAYOUT_BOOT_PARAMS     0x7000ULL   /* Linux zero page (struct boot_params) */
#define LAYOUT_PML4            0x9000ULL   /* identity map: PML4 */
#define LAYOUT_PDPT            0xa000ULL   /* identity map: PDPT */
#define LAYOUT_PD              0xb000ULL   /* identity map: 4 PDs, 2 MiB pages, 0-4 GiB */
#define LAYOUT_PD_END          0xf000ULL
#define LAYOUT_CMDLINE         0x20000ULL  /* kernel command line */
#define LAYOUT_CMDLINE_MAX     0x10000ULL
#define LAYOUT_EBDA_START      0x9fc00ULL  /* EBDA (--bios-state writes its size byte) */
#define LAYOUT_LOW_RAM_END     0x9fc00ULL  /* e820: RAM below this, reserved up to 1 MiB */
#define LAYOUT_BIOS_START      0xe0000ULL  /* ACPI RSDP and tables (scanned 0xe0000-0xfffff) */
#define LAYOUT_MPTABLE_MIN     0xf0000ULL  /* MP table, after ACPI's: Linux scans 0xf0000-0xfffff */
#define LAYOUT_BIOS_STUBS      0xfff00ULL  /* --bios-state: real-mode interrupt handlers (F000:FF00) */
#define LAYOUT_BIOS_STUBS_SIZE 0x100ULL
#define LAYOUT_BIOS_END        0x100000ULL
#define LAYOUT_HIGH_START      0x100000ULL /* 1 MiB: kernels load here and above */

/* The 32-bit MMIO hole. RAM below 4 GiB ends at LAYOUT_MMIO_HOLE. */
#define LAYOUT_MMIO_HOLE       0xc0000000ULL
#define LAYOUT_PCI_MMIO32      0xc0000000ULL /* 32-bit BAR window */
#define LAYOUT_PCI_MMIO32_END  0xe0000000ULL
#define LAYOUT_PCI_ECAM        0xe0000000ULL /* ECAM, bus 0 only: 1 MiB */
#define LAYOUT_PCI_ECAM_SIZE   0x100000ULL
#define LAYOUT_IOAPIC          0xfec00000ULL
#define LAYOUT_LAPIC           0xfee00000ULL
#define LAYOUT_KVM_IDENTITY    0xfeffc000ULL /* KVM_SET_IDENTITY_MAP_ADDR (1 page) */
#define LAYOUT_KVM_TSS         0xfeffd000ULL /* KVM_SET_TSS_ADDR (3 pages) */
#define LAYOUT_HIGH_RAM        0x100000000ULL /* RAM above the hole starts at 4 GiB */
#define LAYOUT_PCI_MMIO64      0x8000000000ULL /* 64-bit BAR window at 512 GiB */
#define LAYOUT_PCI_MMIO64_END  0x9000000000ULL /* ... 64 GiB of it */

/* Fixed I/O ports. */
#define PORT_SERIAL_COM1       0x3f8
#define PORT_I8042_DATA        0x60
#define PORT_I8042_CMD         0x64
#define PORT_ACPI_PM1A_EVT     0x600  /* 4 bytes: status, enable */
#define PORT_ACPI_PM1A_CNT     0x604  /* 2 bytes: SLP_TYP/SLP_EN */
#define PORT_ACPI_PM_TMR       0x608  /* 4 bytes: 3.579545 MHz timer */
#define PORT_DEBUG_EXIT        0xf4   /* isa-debug-exit (--debug-exit) */

/* ACPI sleep types Ember's DSDT gives \_S5 (soft off) and \_S3 (suspend
 * to RAM; 1 as on QEMU's pc machine, which kvm-unit-tests' s3 writes
 * without reading \_S3). */
#define ACPI_S5_SLP_TYP        5
#define ACPI_S3_SLP_TYP        1
#define ACPI_SLP_EN            (1u << 13)

/* Interrupt lines (GSIs on the IOAPIC). */
#define IRQ_SERIAL_COM1        4
#define IRQ_ACPI_SCI           9
/* PCI INTx: slot N's INTA# drives GSI 16 + N % 8, level, active high (the
 * line is the OR of the slots that share it; vm_pci.c). The DSDT's _PRT and
 * the MP table say the same. */
#define IRQ_PCI_INTX_FIRST     16
#define IRQ_PCI_INTX_COUNT     8
#define IRQ_PCI_INTX(slot)     (IRQ_PCI_INTX_FIRST + (slot) % IRQ_PCI_INTX_COUNT)

#endif
