/* Kernel image parsing, the boot plan and loading, boot_params and the
 * e820 map. */
#include <elf.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "arch/x86/boot.h"
#include "arch/x86/boot_plan.h"
#include "arch/x86/kernel.h"
#include "arch/x86/layout.h"

static char err[256];

/* A minimal bzImage: 4+1 setup sectors, then a payload. */
static uint8_t *make_bzimage(size_t *size, uint16_t protocol, uint16_t xloadflags)
{
	*size = 5 * 512 + 8192;
	uint8_t *d = calloc(1, *size);
	d[0x1f1] = 4;
	memcpy(d + 0x202, "HdrS", 4);
	d[0x201] = 0x66;                  /* jump: header extends to 0x268 */
	d[0x206] = protocol & 0xff;
	d[0x207] = protocol >> 8;
	d[0x211] = 0x01;                  /* LOADED_HIGH */
	d[0x236] = xloadflags & 0xff;
	uint32_t init_size = 0x200000, cmdline_size = 2048, initrd_max = 0x7fffffff;
	memcpy(d + 0x260, &init_size, 4);
	memcpy(d + 0x238, &cmdline_size, 4);
	memcpy(d + 0x22c, &initrd_max, 4);
	memset(d + 5 * 512, 0xcc, 8192);
	return d;
}

struct elf_image {
	Elf64_Ehdr eh;
	Elf64_Phdr ph[2];
	Elf64_Nhdr nh;
	char name[8];
	uint32_t desc;
	uint8_t code[64];
};

static struct elf_image *make_elf(uint64_t paddr, uint64_t vaddr, bool note)
{
	struct elf_image *e = calloc(1, sizeof(*e));
	memcpy(e->eh.e_ident, ELFMAG, SELFMAG);
	e->eh.e_ident[EI_CLASS] = ELFCLASS64;
	e->eh.e_ident[EI_DATA] = ELFDATA2LSB;
	e->eh.e_type = ET_EXEC;
	e->eh.e_machine = EM_X86_64;
	e->eh.e_entry = vaddr + 0x10;
	e->eh.e_phoff = offsetof(struct elf_image, ph);
	e->eh.e_phentsize = sizeof(Elf64_Phdr);
	e->eh.e_phnum = note ? 2 : 1;
	e->ph[0] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_offset = offsetof(struct elf_image, code),
				 .p_vaddr = vaddr, .p_paddr = paddr, .p_filesz = 64, .p_memsz = 0x2000 };
	e->ph[1] = (Elf64_Phdr){ .p_type = PT_NOTE, .p_offset = offsetof(struct elf_image, nh),
				 .p_filesz = sizeof(Elf64_Nhdr) + 8 + 4 };
	e->nh = (Elf64_Nhdr){ .n_namesz = 6, .n_descsz = 4, .n_type = EMBER_NOTE_START_ALL };
	memcpy(e->name, "Ember", 6);
	memset(e->code, 0x90, sizeof(e->code));
	return e;
}

static void test_bzimage_parse(void **state)
{
	size_t size;
	uint8_t *d = make_bzimage(&size, 0x20f, 1);
	struct kernel_image k;
	assert_int_equal(kernel_parse(d, size, &k, err, sizeof(err)), 0);
	assert_int_equal(k.format, KERNEL_BZIMAGE);
	assert_int_equal(k.setup_size, 5 * 512);
	assert_true(k.entry == BZIMAGE_LOAD_ADDR + 0x200);
	assert_int_equal(k.cmdline_size, 2048);
	free(d);

	d = make_bzimage(&size, 0x20b, 1);
	assert_int_equal(kernel_parse(d, size, &k, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "too old"));
	free(d);

	d = make_bzimage(&size, 0x20f, 0);
	assert_int_equal(kernel_parse(d, size, &k, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "64-bit"));
	free(d);

	d = make_bzimage(&size, 0x20f, 1);
	d[0x1f1] = 200;                   /* setup larger than the file */
	assert_int_equal(kernel_parse(d, size, &k, err, sizeof(err)), -EINVAL);
	free(d);
}

static void test_elf_parse(void **state)
{
	struct kernel_image k;
	struct elf_image *e = make_elf(0x100000, 0x100000, true);
	assert_int_equal(kernel_parse((void *)e, sizeof(*e), &k, err, sizeof(err)), 0);
	assert_int_equal(k.format, KERNEL_ELF64);
	assert_true(k.entry == 0x100010);
	assert_true(k.start_all_vcpus);
	assert_true(k.load_end == 0x102000);
	free(e);

	/* vmlinux: virtual entry translated to physical; no note. */
	e = make_elf(0x1000000, 0xffffffff81000000ULL, false);
	assert_int_equal(kernel_parse((void *)e, sizeof(*e), &k, err, sizeof(err)), 0);
	assert_true(k.entry == 0x1000010);
	assert_false(k.start_all_vcpus);
	free(e);

	/* Segment over Ember's boot tables. */
	e = make_elf(0x8000, 0x8000, false);
	assert_int_equal(kernel_parse((void *)e, sizeof(*e), &k, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "below 1 MiB"));
	free(e);

	/* Segment beyond the file. */
	e = make_elf(0x100000, 0x100000, false);
	e->ph[0].p_filesz = 1 << 20;
	e->ph[0].p_memsz = 1 << 20;
	assert_int_equal(kernel_parse((void *)e, sizeof(*e), &k, err, sizeof(err)), -EINVAL);
	free(e);

	/* Wrapping segment. */
	e = make_elf(0x100000, 0x100000, false);
	e->ph[0].p_paddr = UINT64_MAX - 0x100;
	assert_int_equal(kernel_parse((void *)e, sizeof(*e), &k, err, sizeof(err)), -EINVAL);
	free(e);

	/* 32-bit ELF and garbage. */
	e = make_elf(0x100000, 0x100000, false);
	e->eh.e_ident[EI_CLASS] = ELFCLASS32;
	assert_int_equal(kernel_parse((void *)e, sizeof(*e), &k, err, sizeof(err)), -EINVAL);
	free(e);
	uint8_t junk[4096] = { 1, 2, 3 };
	assert_int_equal(kernel_parse(junk, sizeof(junk), &k, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a bzImage or ELF64"));
	assert_int_equal(kernel_parse(junk, 3, &k, err, sizeof(err)), -EINVAL);
}

static void test_elf_load(void **state)
{
	struct guest_mem m;
	assert_int_equal(mem_create(&m, 16 << 20), 0);
	struct kernel_image k;
	struct elf_image *e = make_elf(0x200000, 0x200000, false);
	assert_int_equal(kernel_parse((void *)e, sizeof(*e), &k, err, sizeof(err)), 0);
	assert_int_equal(kernel_fits(&k, &m, err, sizeof(err)), 0);
	assert_int_equal(kernel_load(&k, &m), 0);
	const uint8_t *p = mem_ptr(&m, 0x200000, 0x2000);
	assert_int_equal(p[0], 0x90);
	assert_int_equal(p[63], 0x90);
	assert_int_equal(p[64], 0);        /* bss zeroed */
	assert_int_equal(p[0x1fff], 0);
	free(e);

	/* Does not fit in 16 MiB: said by the layout alone, before any RAM
	 * exists; loading it anyway writes nothing. */
	e = make_elf(0x2000000, 0x2000000, false);
	assert_int_equal(kernel_parse((void *)e, sizeof(*e), &k, err, sizeof(err)), 0);
	struct guest_mem layout;
	assert_int_equal(mem_layout(&layout, 16 << 20), 0);
	assert_null(layout.host);
	assert_int_equal(kernel_fits(&k, &layout, err, sizeof(err)), -ENOSPC);
	assert_non_null(strstr(err, "--memory"));
	assert_int_equal(kernel_load(&k, &m), -EFAULT);
	assert_int_equal(mem_layout(&layout, 64 << 20), 0);
	assert_int_equal(kernel_fits(&k, &layout, err, sizeof(err)), 0);
	free(e);
	mem_destroy(&m);
}

static uint64_t ram_total(const struct boot_e820_entry *t, int n)
{
	uint64_t sum = 0;
	for (int i = 0; i < n; i++)
		if (t[i].type == E820_RAM)
			sum += t[i].size;
	return sum;
}

/* Regression (fuzz_boot): program headers and notes at offsets that are
 * not aligned for them were read in place (undefined behaviour, caught by
 * UBSan). The same image moved to an odd offset parses and loads alike. */
static void test_elf_unaligned_headers(void **state)
{
	struct elf_image *e = make_elf(0x100000, 0x100000, true);
	size_t shift = 5, size = sizeof(*e) + shift;
	uint8_t *d = calloc(1, size);
	memcpy(d, &e->eh, sizeof(e->eh));
	memcpy(d + sizeof(e->eh) + shift, (uint8_t *)e + sizeof(e->eh), sizeof(*e) - sizeof(e->eh));
	Elf64_Ehdr eh;
	memcpy(&eh, d, sizeof(eh));
	eh.e_phoff += shift;
	memcpy(d, &eh, sizeof(eh));
	for (unsigned i = 0; i < 2; i++) {
		Elf64_Phdr ph;
		memcpy(&ph, d + eh.e_phoff + i * sizeof(ph), sizeof(ph));
		ph.p_offset += shift;
		memcpy(d + eh.e_phoff + i * sizeof(ph), &ph, sizeof(ph));
	}
	struct kernel_image k;
	assert_int_equal(kernel_parse(d, size, &k, err, sizeof(err)), 0);
	assert_true(k.entry == 0x100010);
	assert_true(k.start_all_vcpus);
	struct guest_mem m;
	assert_int_equal(mem_create(&m, 16 << 20), 0);
	assert_int_equal(kernel_load(&k, &m), 0);
	assert_int_equal(*(uint8_t *)mem_ptr(&m, 0x100000, 1), 0x90);
	mem_destroy(&m);
	free(d);
	free(e);
}

static void test_e820(void **state)
{
	struct guest_mem m;
	struct boot_e820_entry t[16];
	assert_int_equal(mem_create(&m, 128 << 20), 0);
	int n = e820_build(&m, t, 16);
	assert_int_equal(n, 4);
	assert_true(t[0].addr == 0 && t[0].size == 0x9fc00 && t[0].type == E820_RAM);
	assert_true(t[1].addr == 0x9fc00 && t[1].type == E820_RESERVED);
	assert_true(t[2].addr == 0x100000 && t[2].addr + t[2].size == 128 << 20);
	assert_true(ram_total(t, n) == (128 << 20) - (0x100000 - 0x9fc00));
	mem_destroy(&m);

	/* 4 GiB: RAM splits around the hole at 3 GiB. */
	assert_int_equal(mem_create(&m, 4ULL << 30), 0);
	n = e820_build(&m, t, 16);
	assert_int_equal(n, 5);
	assert_true(t[2].addr + t[2].size == LAYOUT_MMIO_HOLE);
	assert_true(t[4].addr == LAYOUT_HIGH_RAM && t[4].size == 1ULL << 30);
	assert_true(ram_total(t, n) == (4ULL << 30) - (0x100000 - 0x9fc00));
	for (int i = 0; i < n; i++)
		if (t[i].type == E820_RAM)
			assert_true(t[i].addr + t[i].size <= LAYOUT_MMIO_HOLE || t[i].addr >= LAYOUT_HIGH_RAM);
	mem_destroy(&m);
}

static void test_mem_checks(void **state)
{
	struct guest_mem m;
	assert_int_equal(mem_create(&m, 4ULL << 30), 0);
	assert_non_null(mem_ptr(&m, 0, 4096));
	assert_null(mem_ptr(&m, LAYOUT_MMIO_HOLE - 4096, 8192));     /* runs into the hole */
	assert_null(mem_ptr(&m, LAYOUT_IOAPIC, 4));
	assert_non_null(mem_ptr(&m, LAYOUT_HIGH_RAM, 4096));
	assert_null(mem_ptr(&m, LAYOUT_HIGH_RAM + (1ULL << 30) - 4, 8));  /* past the end */
	assert_null(mem_ptr(&m, UINT64_MAX - 2, 8));                 /* wraps */
	assert_false(mem_is_ram(&m, LAYOUT_MMIO_HOLE - 4096, 8192));
	assert_true(mem_is_ram(&m, 0, LAYOUT_MMIO_HOLE));
	uint8_t b[8] = { 0 };
	assert_int_equal(mem_write(&m, LAYOUT_IOAPIC, b, 8), -EFAULT);
	assert_int_equal(mem_read(&m, b, UINT64_MAX, 8), -EFAULT);
	assert_int_equal(mem_create(&m, 0), -EINVAL);
	mem_destroy(&m);
	struct guest_mem bad;
	assert_int_equal(mem_create(&bad, 4095), -EINVAL);
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
}

/* A bzImage at kpath and the initrd at ipath, both made from templates
 * ("/tmp/...-XXXXXX"). */
static void make_boot_files(char *kpath, char *ipath, const void *initrd, size_t initrd_size)
{
	close(mkstemp(kpath));
	close(mkstemp(ipath));
	size_t size;
	uint8_t *bz = make_bzimage(&size, 0x20f, 1);
	write_file(kpath, bz, size);
	free(bz);
	write_file(ipath, initrd, initrd_size);
}

/* What boot_prepare() wrote for the bzImage + initrd of test_boot_plan. */
static void check_linux_boot(const struct guest_mem *m, const struct boot_info *bi, const uint8_t *initrd,
			     size_t initrd_size)
{
	assert_true(bi->entry == 0x100200);
	assert_true(bi->boot_params == LAYOUT_BOOT_PARAMS);
	const struct boot_params *bp = mem_ptr(m, LAYOUT_BOOT_PARAMS, sizeof(*bp));
	assert_int_equal(bp->hdr.header, 0x53726448);
	assert_int_equal(bp->hdr.type_of_loader, 0xff);
	assert_int_equal(bp->hdr.cmd_line_ptr, LAYOUT_CMDLINE);
	assert_string_equal((const char *)mem_ptr(m, LAYOUT_CMDLINE, 1), "console=ttyS0 x=1");
	assert_int_equal(bp->hdr.ramdisk_size, initrd_size);
	assert_int_equal(bp->hdr.ramdisk_image % 4096, 0);
	assert_true(bp->hdr.ramdisk_image + initrd_size <= 64 << 20);
	assert_memory_equal(mem_ptr(m, bp->hdr.ramdisk_image, initrd_size), initrd, initrd_size);
	assert_int_equal(bp->e820_entries, 4);
	assert_true(bp->acpi_rsdp_addr == bi->rsdp && bi->rsdp >= LAYOUT_BIOS_START);
	/* The kernel payload is at 1 MiB. */
	assert_int_equal(*(uint8_t *)mem_ptr(m, 0x100000, 1), 0xcc);
	/* Identity map: PML4 -> PDPT, PD entry 1 maps 2 MiB. */
	const uint64_t *pml4 = mem_ptr(m, LAYOUT_PML4, 8);
	const uint64_t *pd = mem_ptr(m, LAYOUT_PD, 16);
	assert_true((pml4[0] & ~0xfffULL) == LAYOUT_PDPT);
	assert_true(pd[1] == ((2ULL << 20) | 0x83));
}

/* The boot is planned (parsed, measured, placed) with no guest RAM at all,
 * as `ember run` does before it opens /dev/kvm; every VM of the process
 * then only writes the plan. */
static void test_boot_plan(void **state)
{
	char kpath[] = "/tmp/ember-kernel-XXXXXX", ipath[] = "/tmp/ember-initrd-XXXXXX";
	uint8_t initrd[10000];
	memset(initrd, 0x5a, sizeof(initrd));
	make_boot_files(kpath, ipath, initrd, sizeof(initrd));

	struct vm_config cfg = { .kernel = kpath, .initrd = ipath, .cmdline = "console=ttyS0 x=1",
				 .mem_size = 64 << 20, .ncpus = 2 };
	struct boot_plan plan;
	assert_int_equal(boot_plan_make(&plan, &cfg, err, sizeof(err)), 0);
	assert_int_equal(plan.mode, BOOT_LONG64);
	assert_int_equal(plan.image.format, KERNEL_BZIMAGE);
	assert_true(plan.initrd_gpa % 4096 == 0 && plan.initrd_gpa >= plan.image.load_end);
	assert_int_equal(plan.cmdline_max, 2048);
	/* The files are read once, by the plan: the VMs need them no more. */
	unlink(kpath);
	unlink(ipath);
	cfg.boot = &plan;
	struct boot_info bi;
	for (int vm = 0; vm < 2; vm++) {        /* the first VM, then a restart */
		struct guest_mem m;
		assert_int_equal(mem_create(&m, 64 << 20), 0);
		assert_int_equal(boot_prepare(&m, &cfg, &bi, err, sizeof(err)), 0);
		check_linux_boot(&m, &bi, initrd, sizeof(initrd));
		mem_destroy(&m);
	}
	/* RAM of another size than planned for is Ember's error. */
	struct guest_mem small;
	assert_int_equal(mem_create(&small, 16 << 20), 0);
	assert_int_equal(boot_prepare(&small, &cfg, &bi, err, sizeof(err)), EXIT_VMM_ERROR);
	mem_destroy(&small);
	boot_plan_free(&plan);
	boot_plan_free(&plan);                  /* twice is harmless */
}

/* Every refusal comes from the plan, before any RAM exists. */
static void test_boot_plan_refusals(void **state)
{
	char kpath[] = "/tmp/ember-kernel-XXXXXX", ipath[] = "/tmp/ember-initrd-XXXXXX";
	uint8_t *big = calloc(1, 2 << 20);
	make_boot_files(kpath, ipath, big, 2 << 20);
	free(big);
	struct vm_config cfg = { .kernel = kpath, .initrd = ipath, .cmdline = "", .mem_size = 4 << 20,
				 .ncpus = 1 };
	struct boot_plan plan;

	/* An initrd that does not fit above the kernel (1 MiB + 2 MiB init_size). */
	assert_int_equal(boot_plan_make(&plan, &cfg, err, sizeof(err)), EXIT_USAGE);
	assert_non_null(strstr(err, "initrd"));
	assert_non_null(strstr(err, "does not fit"));
	/* A kernel that does not fit at all. */
	cfg.mem_size = 2 << 20;
	assert_int_equal(boot_plan_make(&plan, &cfg, err, sizeof(err)), EXIT_USAGE);
	assert_non_null(strstr(err, "give more --memory"));
	/* Command line too long for the kernel. */
	cfg.mem_size = 64 << 20;
	cfg.initrd = NULL;
	char *longline = malloc(5000);
	memset(longline, 'a', 4999);
	longline[4999] = 0;
	cfg.cmdline = longline;
	assert_int_equal(boot_plan_make(&plan, &cfg, err, sizeof(err)), EXIT_USAGE);
	assert_non_null(strstr(err, "cmdline"));
	free(longline);
	cfg.cmdline = "";
	/* Neither bzImage nor ELF64 nor multiboot; an empty file; a multiboot
	 * header with a bad checksum; a directory. */
	write_file(kpath, "not a kernel, just some text long enough to look at", 52);
	assert_int_equal(boot_plan_make(&plan, &cfg, err, sizeof(err)), EXIT_USAGE);
	assert_non_null(strstr(err, "not a bzImage or ELF64"));
	write_file(kpath, "", 0);
	assert_int_equal(boot_plan_make(&plan, &cfg, err, sizeof(err)), EXIT_USAGE);
	assert_non_null(strstr(err, "empty"));
	uint32_t mb[3] = { 0x1BADB002, 0, 0x12345 };
	write_file(kpath, mb, sizeof(mb));
	assert_int_equal(boot_plan_make(&plan, &cfg, err, sizeof(err)), EXIT_USAGE);
	assert_non_null(strstr(err, "bad checksum"));
	cfg.kernel = "/tmp";
	assert_int_equal(boot_plan_make(&plan, &cfg, err, sizeof(err)), EXIT_USAGE);
	assert_non_null(strstr(err, "not a regular file"));
	/* Without a plan, boot_prepare makes one and refuses alike. */
	cfg.kernel = kpath;
	struct guest_mem m;
	struct boot_info bi;
	assert_int_equal(mem_create(&m, 64 << 20), 0);
	assert_int_equal(boot_prepare(&m, &cfg, &bi, err, sizeof(err)), EXIT_USAGE);
	assert_non_null(strstr(err, "bad checksum"));
	mem_destroy(&m);

	unlink(kpath);
	unlink(ipath);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bzimage_parse),
		cmocka_unit_test(test_elf_parse),
		cmocka_unit_test(test_elf_load),
		cmocka_unit_test(test_elf_unaligned_headers),
		cmocka_unit_test(test_e820),
		cmocka_unit_test(test_mem_checks),
		cmocka_unit_test(test_boot_plan),
		cmocka_unit_test(test_boot_plan_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
