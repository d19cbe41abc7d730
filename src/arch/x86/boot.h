/* Preparing guest memory for the first instruction: writing the kernel and
 * initrd where their boot plan put them, the command line, boot_params with
 * the e820 map, ACPI tables, the identity page tables and boot GDT. */
#ifndef EMBER_X86_BOOT_H
#define EMBER_X86_BOOT_H

#include <asm/bootparam.h>
#include <asm/e820.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "mem.h"

/* The CPU mode the boot vCPU starts in. */
enum boot_mode {
	BOOT_LONG64,                /* Linux 64-bit boot protocol, guest-kit ELF64 */
	BOOT_PROT32,                /* multiboot: 32-bit protected mode, paging off */
};

struct boot_info {
	enum boot_mode mode;
	uint64_t entry;             /* physical entry point */
	uint64_t boot_params;       /* RSI at entry (BOOT_LONG64) */
	uint32_t mb_info;           /* EBX at entry (BOOT_PROT32); EAX = MB_BOOT_MAGIC */
	bool start_all_vcpus;       /* guest-kit kernels: APs start at entry too */
	uint64_t rsdp;              /* ACPI RSDP address */
};

/* Fill table with Ember's memory map for m; returns the entry count. */
int e820_build(const struct guest_mem *m, struct boot_e820_entry *table, int max);

/* Write the boot cfg->boot plans (src/arch/x86/boot_plan.h) into m, fresh
 * RAM of the size it was planned for: kernel, initrd or multiboot
 * information, command line, boot_params, ACPI tables, page tables. Without
 * a plan (cfg->boot NULL) it plans here first. 0; EXIT_USAGE with a
 * one-line message in err when there was no plan and the files cannot be
 * booted; EXIT_VMM_ERROR when m is not what the plan measured. */
int boot_prepare(const struct guest_mem *m, const struct vm_config *cfg, struct boot_info *out,
		 char *err, size_t errlen);

/* Write the identity map of 0-4 GiB (2 MiB pages) and the boot GDT. */
void boot_write_page_tables(const struct guest_mem *m);

/* Write the flat 32-bit boot GDT (same selectors) for multiboot entry. */
void boot_write_gdt32(const struct guest_mem *m);

/* Boot GDT selectors (Linux's __BOOT_CS/__BOOT_DS). */
#define BOOT_GDT_CODE 0x10
#define BOOT_GDT_DATA 0x18
#define BOOT_GDT_TSS  0x20

#endif
