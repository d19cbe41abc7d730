#include "arch/x86/boot_plan.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/layout.h"

#define fail(...) (snprintf(err, errlen, __VA_ARGS__), EXIT_USAGE)

/* The kernel or initrd: the process's mapping when `ember run` opened it
 * (borrowed), else mapped here. */
static int plan_file(const struct vm_config *cfg, bool kernel, struct file_map *f, char *err, size_t errlen)
{
	if (cfg->files) {
		*f = kernel ? cfg->files->kernel : cfg->files->initrd;
		f->owned = false;
		if (f->data)
			return 0;
	}
	return map_file(kernel ? "kernel" : "initrd", kernel ? cfg->kernel : cfg->initrd, f, err, errlen) ?
	       EXIT_USAGE : 0;
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

/* Linux's 64-bit boot protocol (bzImage) or an ELF64 entered in long mode. */
static int plan_linux(struct boot_plan *p, const struct vm_config *cfg, const struct guest_mem *layout,
		      char *err, size_t errlen)
{
	char why[256];
	if (kernel_parse(p->kernel.data, p->kernel.size, &p->image, why, sizeof(why)) ||
	    kernel_fits(&p->image, layout, why, sizeof(why)))
		return fail("kernel %s: %s", cfg->kernel, why);
	size_t cmdlen = strlen(cfg->cmdline);
	uint64_t cmdmax = p->image.cmdline_size ? p->image.cmdline_size : LAYOUT_CMDLINE_MAX - 1;
	if (cmdmax > LAYOUT_CMDLINE_MAX - 1)
		cmdmax = LAYOUT_CMDLINE_MAX - 1;
	if (cmdlen > cmdmax)
		return fail("--cmdline is %zu bytes; this kernel takes at most %llu", cmdlen,
			    (unsigned long long)cmdmax);
	p->cmdline_max = (uint32_t)cmdmax;
	if (cfg->initrd) {
		int r = plan_file(cfg, false, &p->initrd, err, errlen);
		if (r)
			return r;
		if (place_initrd(layout, &p->image, p->initrd.size, &p->initrd_gpa, why, sizeof(why)))
			return fail("initrd %s: %s", cfg->initrd, why);
	}
	p->mode = BOOT_LONG64;
	return 0;
}

/* Multiboot v1 (kvm-unit-tests' .flat files): the command line is the
 * kernel's path then --cmdline, as QEMU passes it, so argv[0] is the file;
 * the initrd is the one module. */
static int plan_multiboot(struct boot_plan *p, const struct vm_config *cfg, const struct guest_mem *layout,
			  char *err, size_t errlen)
{
	size_t len = strlen(cfg->kernel) + 1 + strlen(cfg->cmdline) + 1;
	if (!(p->mb_cmdline = malloc(len))) {
		snprintf(err, errlen, "out of memory");
		return EXIT_VMM_ERROR;
	}
	snprintf(p->mb_cmdline, len, "%s%s%s", cfg->kernel, *cfg->cmdline ? " " : "", cfg->cmdline);
	p->mb_args.cmdline = p->mb_cmdline;
	if (cfg->initrd) {
		int r = plan_file(cfg, false, &p->initrd, err, errlen);
		if (r)
			return r;
		p->mb_args.module = p->initrd.data;
		p->mb_args.module_size = p->initrd.size;
		p->mb_args.module_name = cfg->initrd;
	}
	char why[256];
	if (mb_place(&p->mb, layout, &p->mb_args, &p->mb_place, why, sizeof(why)))
		return fail("kernel %s: %s", cfg->kernel, why);
	p->mode = BOOT_PROT32;
	return 0;
}

int boot_plan_make(struct boot_plan *p, const struct vm_config *cfg, char *err, size_t errlen)
{
	memset(p, 0, sizeof(*p));
	struct guest_mem layout;
	if (mem_layout(&layout, cfg->mem_size))
		return fail("--memory: %llu bytes is not a RAM size", (unsigned long long)cfg->mem_size);
	p->mem_size = cfg->mem_size;
	int ret = plan_file(cfg, true, &p->kernel, err, errlen);
	if (ret)
		return ret;
	/* A bzImage may carry stray magic; anything else with a multiboot
	 * header boots through it. */
	const struct file_map *k = &p->kernel;
	bool bzimage = k->size >= 0x206 && !memcmp(k->data + 0x202, "HdrS", 4);
	char why[256];
	int r = bzimage ? -ENOENT : mb_parse(k->data, k->size, &p->mb, why, sizeof(why));
	if (r == 0)
		ret = plan_multiboot(p, cfg, &layout, err, errlen);
	else if (r != -ENOENT)
		ret = fail("kernel %s: %s", cfg->kernel, why);
	else
		ret = plan_linux(p, cfg, &layout, err, errlen);
	if (ret)
		boot_plan_free(p);
	return ret;
}

void boot_plan_free(struct boot_plan *p)
{
	unmap_file(&p->kernel);
	unmap_file(&p->initrd);
	free(p->mb_cmdline);
	p->mb_cmdline = NULL;
	p->mb_args.cmdline = NULL;
}
