#include "arch/x86/boot.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "arch/x86/acpi.h"
#include "arch/x86/boot_plan.h"
#include "arch/x86/layout.h"

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

/* Writing what the plan says can only fail when m is not the RAM it
 * measured: Ember's own error, not the user's. */
static int write_failed(char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen, "%s: guest RAM is not what the boot plan measured", what);
	return EXIT_VMM_ERROR;
}

static int boot_multiboot(const struct guest_mem *m, const struct vm_config *cfg, const struct boot_plan *p,
			  struct boot_info *out, char *err, size_t errlen)
{
	if (mb_write(&p->mb, p->kernel.data, m, &p->mb_args, &p->mb_place, &out->mb_info))
		return write_failed(err, errlen, "multiboot kernel");
	int ret = build_acpi(m, cfg, out, err, errlen);
	if (ret)
		return ret;
	boot_write_gdt32(m);
	out->mode = BOOT_PROT32;
	out->entry = p->mb.entry;
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

static int boot_linux(const struct guest_mem *m, const struct vm_config *cfg, const struct boot_plan *p,
		      struct boot_info *out, char *err, size_t errlen)
{
	const struct kernel_image *k = &p->image;
	struct boot_params *bp = mem_ptr(m, LAYOUT_BOOT_PARAMS, sizeof(*bp));
	if (!bp || kernel_load(k, m))
		return write_failed(err, errlen, "kernel");
	out->entry = k->entry;
	out->start_all_vcpus = k->start_all_vcpus;

	memset(bp, 0, sizeof(*bp));
	fill_setup_header(bp, k);
	if (mem_write(m, LAYOUT_CMDLINE, cfg->cmdline, strlen(cfg->cmdline) + 1))
		return write_failed(err, errlen, "command line");
	bp->hdr.cmd_line_ptr = (uint32_t)LAYOUT_CMDLINE;
	bp->hdr.cmdline_size = p->cmdline_max;
	if (p->initrd.data) {
		if (mem_write(m, p->initrd_gpa, p->initrd.data, p->initrd.size))
			return write_failed(err, errlen, "initrd");
		bp->hdr.ramdisk_image = (uint32_t)p->initrd_gpa;
		bp->hdr.ramdisk_size = (uint32_t)p->initrd.size;
	}

	bp->e820_entries = (uint8_t)e820_build(m, bp->e820_table, E820_MAX_ENTRIES_ZEROPAGE);

	int ret = build_acpi(m, cfg, out, err, errlen);
	if (ret)
		return ret;
	bp->acpi_rsdp_addr = out->rsdp;
	boot_write_page_tables(m);
	out->mode = BOOT_LONG64;
	out->boot_params = LAYOUT_BOOT_PARAMS;
	return 0;
}

int boot_prepare(const struct guest_mem *m, const struct vm_config *cfg, struct boot_info *out,
		 char *err, size_t errlen)
{
	struct boot_plan own;
	const struct boot_plan *p = cfg->boot;
	int ret;

	memset(out, 0, sizeof(*out));
	if (!p) {
		if ((ret = boot_plan_make(&own, cfg, err, errlen)))
			return ret;
		p = &own;
	}
	if (p->mem_size != m->size)
		ret = write_failed(err, errlen, "boot");
	else if (p->mode == BOOT_PROT32)
		ret = boot_multiboot(m, cfg, p, out, err, errlen);
	else
		ret = boot_linux(m, cfg, p, out, err, errlen);
	if (p == &own)
		boot_plan_free(&own);
	return ret;
}
