#include "arch/x86/boot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch/x86/acpi.h"
#include "arch/x86/kernel.h"
#include "arch/x86/layout.h"
#include "arch/x86/multiboot.h"
#include "host.h"

static void e820_add(struct boot_e820_entry *t, int *n, int max, uint64_t addr, uint64_t size, uint32_t type)
{
	if (*n < max && size)
		t[(*n)++] = (struct boot_e820_entry){ .addr = addr, .size = size, .type = type };
}

int e820_build(const struct guest_mem *m, struct boot_e820_entry *t, int max)
{
	int n = 0;
	uint64_t low_end = mem_low_end(m);
	e820_add(t, &n, max, 0, LAYOUT_LOW_RAM_END, E820_RAM);
	e820_add(t, &n, max, LAYOUT_LOW_RAM_END, LAYOUT_BIOS_END - LAYOUT_LOW_RAM_END, E820_RESERVED);
	if (low_end > LAYOUT_HIGH_START)
		e820_add(t, &n, max, LAYOUT_HIGH_START, low_end - LAYOUT_HIGH_START, E820_RAM);
	/* Linux only trusts ECAM that the firmware reserved. */
	e820_add(t, &n, max, LAYOUT_PCI_ECAM, LAYOUT_PCI_ECAM_SIZE, E820_RESERVED);
	for (int i = 1; i < m->nregions; i++)
		e820_add(t, &n, max, m->regions[i].gpa, m->regions[i].size, E820_RAM);
	return n;
}

void boot_write_page_tables(const struct guest_mem *m)
{
	uint64_t *pml4 = mem_ptr(m, LAYOUT_PML4, 4096);
	uint64_t *pdpt = mem_ptr(m, LAYOUT_PDPT, 4096);
	uint64_t *pd = mem_ptr(m, LAYOUT_PD, LAYOUT_PD_END - LAYOUT_PD);
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	pml4[0] = LAYOUT_PDPT | 0x3;                    /* present, writable */
	for (uint64_t i = 0; i < 4; i++)
		pdpt[i] = (LAYOUT_PD + i * 4096) | 0x3;
	for (uint64_t i = 0; i < 4 * 512; i++)
		pd[i] = (i << 21) | 0x83;               /* present, writable, 2 MiB page */

	/* null, null, 64-bit code (0x10), data (0x18), TSS (0x20) */
	uint64_t gdt[5] = { 0, 0, 0x00af9b000000ffffULL, 0x00cf93000000ffffULL, 0x00808b0000000067ULL };
	mem_write(m, LAYOUT_BOOT_GDT, gdt, sizeof(gdt));
}

void boot_write_gdt32(const struct guest_mem *m)
{
	/* null, null, 32-bit code (0x10), data (0x18), 32-bit TSS (0x20) */
	uint64_t gdt[5] = { 0, 0, 0x00cf9b000000ffffULL, 0x00cf93000000ffffULL, 0x00808b0000000067ULL };
	mem_write(m, LAYOUT_BOOT_GDT, gdt, sizeof(gdt));
}

/* The kernel or initrd: the process's mapping when `ember run` opened it
 * (borrowed), else mapped here. */
static int boot_file(const struct vm_config *cfg, const char *what, struct file_map *f, char *err,
		     size_t errlen)
{
	bool kernel = !strcmp(what, "kernel");
	if (cfg->files) {
		*f = kernel ? cfg->files->kernel : cfg->files->initrd;
		f->owned = false;
		if (f->data)
			return 0;
	}
	return map_file(what, kernel ? cfg->kernel : cfg->initrd, f, err, errlen);
}

static int build_acpi(const struct guest_mem *m, const struct vm_config *cfg, struct boot_info *out,
		      char *err, size_t errlen)
{
	struct acpi_config acfg = { .ncpus = cfg->ncpus, .pci_ecam = true, .rtc = cfg->rtc,
				    .fw_cfg = cfg->fw_cfg };
	int aerr = acpi_build(m, &acfg, &out->rsdp);
	if (aerr == -ENOSPC)
		snprintf(err, errlen, "--cpus %u: too many CPUs for the ACPI tables", cfg->ncpus);
	else if (aerr)
		snprintf(err, errlen, "ACPI tables: %s", strerror(-aerr));
	return aerr ? EXIT_USAGE : 0;
}

/* Multiboot v1 (kvm-unit-tests' .flat files): the command line is the
 * kernel's path then --cmdline, as QEMU passes it, so argv[0] is the file;
 * the initrd is the one module. */
static int boot_multiboot(const struct guest_mem *m, const struct vm_config *cfg,
			  const struct mb_kernel *mk, const struct file_map *kf, struct boot_info *out,
			  char *err, size_t errlen)
{
	struct file_map rf = { 0 };
	char why[256];
	int ret = EXIT_USAGE;
	size_t len = strlen(cfg->kernel) + 1 + strlen(cfg->cmdline) + 1;
	char *cmdline = malloc(len);
	if (!cmdline) {
		snprintf(err, errlen, "out of memory");
		return EXIT_VMM_ERROR;
	}
	snprintf(cmdline, len, "%s%s%s", cfg->kernel, *cfg->cmdline ? " " : "", cfg->cmdline);
	struct mb_boot_args args = { .cmdline = cmdline };
	if (cfg->initrd) {
		if (boot_file(cfg, "initrd", &rf, err, errlen))
			goto out;
		args.module = rf.data;
		args.module_size = rf.size;
		args.module_name = cfg->initrd;
	}
	if (mb_load(mk, kf->data, m, &args, &out->mb_info, why, sizeof(why))) {
		snprintf(err, errlen, "kernel %s: %s", cfg->kernel, why);
		goto out;
	}
	if ((ret = build_acpi(m, cfg, out, err, errlen)))
		goto out;
	boot_write_gdt32(m);
	out->mode = BOOT_PROT32;
	out->entry = mk->entry;
	ret = 0;
out:
	unmap_file(&rf);
	free(cmdline);
	return ret;
}

/* Highest page-aligned address for the initrd below both the kernel's limit
 * and the end of low RAM, above the kernel. */
static int place_initrd(const struct guest_mem *m, const struct kernel_image *k, size_t size,
			uint64_t *addr, char *err, size_t errlen)
{
	uint64_t top = mem_low_end(m);
	uint64_t limit = k->initrd_addr_max ? (uint64_t)k->initrd_addr_max + 1 : 0x38000000ULL;
	if (top > limit)
		top = limit;
	uint64_t floor = (k->load_end + 4095) & ~4095ULL;
	uint64_t aligned = ((uint64_t)size + 4095) & ~4095ULL;
	if (aligned > top || top - aligned < floor) {
		snprintf(err, errlen, "initrd (%zu KiB) does not fit in guest RAM above the kernel: give more --memory",
			 size >> 10);
		return -ENOSPC;
	}
	*addr = (top - aligned) & ~4095ULL;
	return 0;
}

static void fill_setup_header(struct boot_params *bp, const struct kernel_image *k)
{
	if (k->format == KERNEL_BZIMAGE) {
		/* Copy the kernel's own setup header (0x1f1 up to 0x202 + jump length). */
		size_t end = 0x202 + k->data[0x201];
		if (end > sizeof(*bp))
			end = sizeof(*bp);
		if (end > k->size)
			end = k->size;
		memcpy((uint8_t *)bp + 0x1f1, k->data + 0x1f1, end - 0x1f1);
	} else {
		bp->hdr.boot_flag = 0xaa55;
		bp->hdr.header = 0x53726448;     /* "HdrS" */
		bp->hdr.version = 0x020f;
		bp->hdr.kernel_alignment = 0x1000000;
	}
	bp->hdr.type_of_loader = 0xff;
	bp->hdr.loadflags |= CAN_USE_HEAP | LOADED_HIGH;
	bp->hdr.heap_end_ptr = 0xfe00;
	bp->hdr.vid_mode = 0xffff;
}

int boot_prepare(const struct guest_mem *m, const struct vm_config *cfg, struct boot_info *out,
		 char *err, size_t errlen)
{
	struct file_map kf = { 0 }, rf = { 0 };
	struct kernel_image k;
	char why[256];
	int ret = EXIT_USAGE;

	memset(out, 0, sizeof(*out));
	if (boot_file(cfg, "kernel", &kf, err, errlen))
		return EXIT_USAGE;
	/* A bzImage may carry stray magic; anything else with a multiboot
	 * header boots through it. */
	bool bzimage = kf.size >= 0x206 && !memcmp(kf.data + 0x202, "HdrS", 4);
	struct mb_kernel mk;
	int r = bzimage ? -ENOENT : mb_parse(kf.data, kf.size, &mk, why, sizeof(why));
	if (r == 0) {
		ret = boot_multiboot(m, cfg, &mk, &kf, out, err, errlen);
		goto out;
	}
	if (r != -ENOENT) {
		snprintf(err, errlen, "kernel %s: %s", cfg->kernel, why);
		goto out;
	}
	if (kernel_parse(kf.data, kf.size, &k, why, sizeof(why))) {
		snprintf(err, errlen, "kernel %s: %s", cfg->kernel, why);
		goto out;
	}
	if (kernel_load(&k, m, &out->entry, why, sizeof(why))) {
		snprintf(err, errlen, "kernel %s: %s", cfg->kernel, why);
		goto out;
	}
	out->start_all_vcpus = k.start_all_vcpus;

	struct boot_params *bp = mem_ptr(m, LAYOUT_BOOT_PARAMS, sizeof(*bp));
	memset(bp, 0, sizeof(*bp));
	fill_setup_header(bp, &k);

	size_t cmdlen = strlen(cfg->cmdline);
	uint64_t cmdmax = k.cmdline_size ? k.cmdline_size : LAYOUT_CMDLINE_MAX - 1;
	if (cmdmax > LAYOUT_CMDLINE_MAX - 1)
		cmdmax = LAYOUT_CMDLINE_MAX - 1;
	if (cmdlen > cmdmax) {
		snprintf(err, errlen, "--cmdline is %zu bytes; this kernel takes at most %llu", cmdlen,
			 (unsigned long long)cmdmax);
		goto out;
	}
	mem_write(m, LAYOUT_CMDLINE, cfg->cmdline, cmdlen + 1);
	bp->hdr.cmd_line_ptr = (uint32_t)LAYOUT_CMDLINE;
	bp->hdr.cmdline_size = (uint32_t)cmdmax;

	if (cfg->initrd) {
		if (boot_file(cfg, "initrd", &rf, err, errlen))
			goto out;
		uint64_t addr;
		if (place_initrd(m, &k, rf.size, &addr, why, sizeof(why))) {
			snprintf(err, errlen, "initrd %s: %s", cfg->initrd, why);
			goto out;
		}
		mem_write(m, addr, rf.data, rf.size);
		bp->hdr.ramdisk_image = (uint32_t)addr;
		bp->hdr.ramdisk_size = (uint32_t)rf.size;
	}

	bp->e820_entries = (uint8_t)e820_build(m, bp->e820_table, E820_MAX_ENTRIES_ZEROPAGE);

	if (build_acpi(m, cfg, out, err, errlen))
		goto out;
	bp->acpi_rsdp_addr = out->rsdp;
	boot_write_page_tables(m);
	out->mode = BOOT_LONG64;
	out->boot_params = LAYOUT_BOOT_PARAMS;
	ret = 0;
out:
	unmap_file(&kf);
	unmap_file(&rf);
	return ret;
}
