/* What a VM boots, checked before the VM exists: the kernel and initrd the
 * config names, parsed (bzImage, ELF64 or multiboot) and measured against
 * the RAM layout --memory gives, every placement decided. Bad input is so
 * refused (exit 2) before /dev/kvm is opened, the same on a host without
 * KVM; boot_prepare() then only writes the plan into guest RAM. */
#ifndef EMBER_X86_BOOT_PLAN_H
#define EMBER_X86_BOOT_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "arch/x86/boot.h"
#include "arch/x86/kernel.h"
#include "arch/x86/multiboot.h"
#include "config.h"
#include "host.h"

struct boot_plan {
	enum boot_mode mode;
	uint64_t mem_size;                /* the RAM layout it was measured against */
	struct file_map kernel, initrd;   /* cfg->files' (borrowed), else mapped here */
	/* BOOT_LONG64: a Linux bzImage or an ELF64 */
	struct kernel_image image;
	uint32_t cmdline_max;             /* boot_params' cmdline_size */
	uint64_t initrd_gpa;
	/* BOOT_PROT32: multiboot */
	struct mb_kernel mb;
	struct mb_boot_args mb_args;      /* the command line is mb_cmdline */
	struct mb_placement mb_place;
	char *mb_cmdline;
};

/* Map (or borrow from cfg->files) the kernel and initrd cfg names and plan
 * their boot in cfg->mem_size of RAM with cfg->cmdline. 0; EXIT_USAGE with
 * a one-line reason in err when they cannot boot so; EXIT_VMM_ERROR when
 * memory ran out. Nothing to free after a failure. */
int boot_plan_make(struct boot_plan *p, const struct vm_config *cfg, char *err, size_t errlen);
/* Safe on a zeroed plan. */
void boot_plan_free(struct boot_plan *p);

#endif
