#include "arch/x86/multiboot.h"

#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "arch/x86/boot.h"
#include "arch/x86/layout.h"

#define fail(...) (snprintf(err, errlen, __VA_ARGS__), -EINVAL)

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

int mb_find_header(const uint8_t *d, size_t size, struct mb_kernel *k, char *err, size_t errlen)
{
	size_t limit = size < MB_SEARCH_LEN ? size : MB_SEARCH_LEN;
	for (size_t off = 0; off + 4 <= limit; off += 4) {
		if (rd32(d + off) != MB_HEADER_MAGIC)
			continue;
		if (off + 12 > size)
			return fail("multiboot header at offset 0x%zx is truncated", off);
		uint32_t flags = rd32(d + off + 4), sum = rd32(d + off + 8);
		if ((uint32_t)(MB_HEADER_MAGIC + flags + sum) != 0)
			return fail("multiboot header at offset 0x%zx has a bad checksum", off);
		uint32_t unmet = flags & MB_HF_REQUIRED_MASK & ~MB_HF_SUPPORTED;
		if (unmet & MB_HF_VIDEO)
			return fail("multiboot header asks for a video mode, which Ember does not offer");
		if (unmet)
			return fail("multiboot header requires features 0x%x that Ember does not know", unmet);
		if ((flags & MB_HF_AOUT_KLUDGE) && off + 32 > size)
			return fail("multiboot header at offset 0x%zx is truncated (address fields)", off);
		k->header_offset = (uint32_t)off;
		k->flags = flags;
		return 1;
	}
	return 0;
}

static int add_segment(struct mb_kernel *k, uint64_t paddr, uint64_t offset, uint64_t filesz,
		       uint64_t memsz, size_t size, unsigned i, char *err, size_t errlen)
{
	uint64_t fend, mend;
	if (memsz == 0)
		return 0;
	if (filesz > memsz || __builtin_add_overflow(offset, filesz, &fend) || fend > size)
		return fail("ELF segment %u lies outside the file", i);
	if (__builtin_add_overflow(paddr, memsz, &mend) || mend > (1ULL << 52))
		return fail("ELF segment %u at 0x%llx wraps around", i, (unsigned long long)paddr);
	if (k->nsegs == MB_MAX_SEGMENTS)
		return fail("more than %d loadable ELF segments", MB_MAX_SEGMENTS);
	k->segs[k->nsegs++] = (struct mb_segment){ .paddr = paddr, .offset = offset,
						   .filesz = filesz, .memsz = memsz };
	if (paddr < k->load_start)
		k->load_start = paddr;
	if (mend > k->load_end)
		k->load_end = mend;
	return 0;
}

/* The entry point: e_entry is a virtual address; kernels linked at their
 * load address have vaddr == paddr, others are translated through the
 * segment that holds it. */
static bool translate_entry(uint64_t e_entry, uint64_t vaddr, uint64_t paddr, uint64_t memsz,
			    uint64_t *entry)
{
	uint64_t vend;
	if (__builtin_add_overflow(vaddr, memsz, &vend) || e_entry < vaddr || e_entry >= vend)
		return false;
	*entry = e_entry - vaddr + paddr;
	return true;
}

static int parse_elf(const uint8_t *d, size_t size, struct mb_kernel *k, char *err, size_t errlen)
{
	if (size < EI_NIDENT || d[EI_DATA] != ELFDATA2LSB)
		return fail("ELF is not little-endian");
	bool is64 = d[EI_CLASS] == ELFCLASS64;
	if (!is64 && d[EI_CLASS] != ELFCLASS32)
		return fail("ELF class %u is neither 32- nor 64-bit", d[EI_CLASS]);
	uint64_t phoff, entry, phentsize;
	unsigned phnum, machine, type;
	if (is64) {
		Elf64_Ehdr eh;
		if (size < sizeof(eh))
			return fail("ELF header truncated");
		memcpy(&eh, d, sizeof(eh));
		phoff = eh.e_phoff, entry = eh.e_entry, phentsize = eh.e_phentsize;
		phnum = eh.e_phnum, machine = eh.e_machine, type = eh.e_type;
		if (phentsize != sizeof(Elf64_Phdr) || machine != EM_X86_64)
			return fail("ELF64 is not for x86-64");
	} else {
		Elf32_Ehdr eh;
		if (size < sizeof(eh))
			return fail("ELF header truncated");
		memcpy(&eh, d, sizeof(eh));
		phoff = eh.e_phoff, entry = eh.e_entry, phentsize = eh.e_phentsize;
		phnum = eh.e_phnum, machine = eh.e_machine, type = eh.e_type;
		if (phentsize != sizeof(Elf32_Phdr) || machine != EM_386)
			return fail("ELF32 is not for i386");
	}
	if (type != ET_EXEC)
		return fail("ELF is not an executable");
	if (phnum == 0 || phoff > size || (size - phoff) / phentsize < phnum)
		return fail("ELF program headers out of the file");
	k->elf_class = is64 ? 64 : 32;
	bool found = false;
	uint64_t pentry = 0;
	for (unsigned i = 0; i < phnum; i++) {
		uint64_t ptype, off, vaddr, paddr, filesz, memsz;
		if (is64) {
			Elf64_Phdr p;
			memcpy(&p, d + phoff + i * phentsize, sizeof(p));
			ptype = p.p_type, off = p.p_offset, vaddr = p.p_vaddr, paddr = p.p_paddr;
			filesz = p.p_filesz, memsz = p.p_memsz;
		} else {
			Elf32_Phdr p;
			memcpy(&p, d + phoff + i * phentsize, sizeof(p));
			ptype = p.p_type, off = p.p_offset, vaddr = p.p_vaddr, paddr = p.p_paddr;
			filesz = p.p_filesz, memsz = p.p_memsz;
		}
		if (ptype != PT_LOAD)
			continue;
		int r = add_segment(k, paddr, off, filesz, memsz, size, i, err, errlen);
		if (r)
			return r;
		if (!found && memsz)
			found = translate_entry(entry, vaddr, paddr, memsz, &pentry);
	}
	if (k->nsegs == 0)
		return fail("ELF has no loadable segment");
	if (!found)
		return fail("ELF entry point 0x%llx is in no loadable segment", (unsigned long long)entry);
	if (pentry >= (1ULL << 32))
		return fail("entry point 0x%llx is above 4 GiB: a multiboot kernel starts in 32-bit mode",
			    (unsigned long long)pentry);
	k->entry = (uint32_t)pentry;
	return 0;
}

/* Multiboot 3.1.3: with bit 16 the header's own address fields say where
 * the file goes; the header sits at header_addr once loaded. */
static int parse_aout(const uint8_t *d, size_t size, struct mb_kernel *k, char *err, size_t errlen)
{
	const uint8_t *h = d + k->header_offset;
	uint32_t header_addr = rd32(h + 12), load_addr = rd32(h + 16);
	uint32_t load_end = rd32(h + 20), bss_end = rd32(h + 24), entry = rd32(h + 28);
	if (load_addr > header_addr || header_addr - load_addr > k->header_offset)
		return fail("multiboot header: load_addr 0x%x does not fit header_addr 0x%x", load_addr,
			    header_addr);
	uint64_t file_off = k->header_offset - (header_addr - load_addr);
	uint64_t filesz = load_end ? (uint64_t)load_end - load_addr : size - file_off;
	if (load_end && load_end <= load_addr)
		return fail("multiboot header: load_end_addr 0x%x is not above load_addr 0x%x", load_end,
			    load_addr);
	if (file_off + filesz > size)
		return fail("multiboot header: load range is past the end of the file");
	uint64_t memsz = filesz;
	if (bss_end) {
		if (bss_end < load_addr + filesz)
			return fail("multiboot header: bss_end_addr 0x%x is below the loaded image", bss_end);
		memsz = (uint64_t)bss_end - load_addr;
	}
	int r = add_segment(k, load_addr, file_off, filesz, memsz, size, 0, err, errlen);
	if (r)
		return r;
	if (k->nsegs == 0)
		return fail("multiboot header: nothing to load");
	if (entry < load_addr || entry >= load_addr + memsz)
		return fail("multiboot header: entry_addr 0x%x is outside the loaded image", entry);
	k->entry = entry;
	k->elf_class = 0;
	return 0;
}

int mb_parse(const uint8_t *d, size_t size, struct mb_kernel *k, char *err, size_t errlen)
{
	memset(k, 0, sizeof(*k));
	k->load_start = UINT64_MAX;
	int r = mb_find_header(d, size, k, err, errlen);
	if (r < 0)
		return r;
	if (r == 0) {
		snprintf(err, errlen, "no multiboot header in the first 8 KiB");
		return -ENOENT;
	}
	if (k->flags & MB_HF_AOUT_KLUDGE)
		return parse_aout(d, size, k, err, errlen);
	if (size < SELFMAG || memcmp(d, ELFMAG, SELFMAG))
		return fail("multiboot kernel is not ELF and has no load addresses (header flag 16)");
	return parse_elf(d, size, k, err, errlen);
}

static bool overlaps(uint64_t a, uint64_t b, const struct mb_range *r)
{
	return a < r->end && r->start < b;
}

uint64_t mb_find_free(const struct mb_range *busy, unsigned n, uint64_t lo, uint64_t hi,
		      uint64_t size, uint64_t align)
{
	uint64_t addr = (lo + align - 1) & ~(align - 1);
	if (addr == 0 || size == 0)
		return 0;
	for (;;) {
		uint64_t end;
		if (__builtin_add_overflow(addr, size, &end) || end > hi)
			return 0;
		bool moved = false;
		for (unsigned i = 0; i < n; i++) {
			if (overlaps(addr, end, &busy[i])) {
				addr = (busy[i].end + align - 1) & ~(align - 1);
				moved = true;
				break;
			}
		}
		if (!moved)
			return addr;
	}
}

/* Places no boot information goes: page 0 (an AP's SIPI trampoline), Ember's
 * GDT page, the window real-mode tests load at, and the BIOS area with the
 * ACPI tables. Kernel segments may use the first and third. */
static const struct mb_range low_reserved[] = {
	{ 0, 0x2000 },
	{ 0x8000, 0xe000 },
	{ LAYOUT_LOW_RAM_END, LAYOUT_HIGH_START },
};
/* What a kernel segment must not cover: tables Ember writes itself. */
static const struct mb_range ember_tables[] = {
	{ LAYOUT_BOOT_GDT, LAYOUT_BOOT_GDT + 0x1000 },
	{ LAYOUT_LOW_RAM_END, LAYOUT_HIGH_START },
};
#define MB_INFO_LIMIT   (4 * MiB)
#define MB_LOADER_NAME  "ember"

static int check_segments(const struct mb_kernel *k, const struct guest_mem *m, char *err, size_t errlen)
{
	for (unsigned i = 0; i < k->nsegs; i++) {
		const struct mb_segment *s = &k->segs[i];
		uint64_t end = s->paddr + s->memsz, off;
		if (mem_range_offset(m, s->paddr, s->memsz, &off)) {
			snprintf(err, errlen, "segment %u [0x%llx, 0x%llx) is outside guest RAM (RAM below 4 GiB ends at 0x%llx): give more --memory",
				 i, (unsigned long long)s->paddr, (unsigned long long)end,
				 (unsigned long long)mem_low_end(m));
			return -ENOSPC;
		}
		for (unsigned j = 0; j < sizeof(ember_tables) / sizeof(ember_tables[0]); j++) {
			if (overlaps(s->paddr, end, &ember_tables[j])) {
				snprintf(err, errlen, "segment %u [0x%llx, 0x%llx) overlaps Ember's boot tables at [0x%llx, 0x%llx)",
					 i, (unsigned long long)s->paddr, (unsigned long long)end,
					 (unsigned long long)ember_tables[j].start,
					 (unsigned long long)ember_tables[j].end);
				return -EINVAL;
			}
		}
	}
	return 0;
}

/* The boot information block: info, module list, memory map, then the
 * strings. The memory map is the e820 map the Linux path uses. */
struct mb_block {
	struct mb_mmap_entry mmap[16];
	unsigned nmmap;
	const char *cmdline, *modname;
	size_t cmdlen, modlen;            /* with the NUL */
	size_t off_mods, off_mmap, off_cmd, off_modname, off_loader, size;
};

static void block_layout(const struct guest_mem *m, const struct mb_boot_args *a, struct mb_block *b)
{
	struct boot_e820_entry t[16];
	int n = e820_build(m, t, 16);
	b->nmmap = 0;
	for (int i = 0; i < n && b->nmmap < 16; i++)
		b->mmap[b->nmmap++] = (struct mb_mmap_entry){ .size = 20, .base_addr = t[i].addr,
							     .length = t[i].size, .type = t[i].type };
	b->cmdline = a->cmdline ? a->cmdline : "";
	b->modname = a->module_name ? a->module_name : "";
	b->cmdlen = strlen(b->cmdline) + 1;
	b->modlen = strlen(b->modname) + 1;
	b->off_mods = sizeof(struct mb_info);
	b->off_mmap = b->off_mods + sizeof(struct mb_module);
	b->off_cmd = b->off_mmap + b->nmmap * sizeof(struct mb_mmap_entry);
	b->off_modname = b->off_cmd + b->cmdlen;
	b->off_loader = b->off_modname + b->modlen;
	b->size = b->off_loader + sizeof(MB_LOADER_NAME);
}

int mb_place(const struct mb_kernel *k, const struct guest_mem *m, const struct mb_boot_args *a,
	     struct mb_placement *pl, char *err, size_t errlen)
{
	int r = check_segments(k, m, err, errlen);
	if (r)
		return r;

	struct mb_range busy[MB_MAX_SEGMENTS + 8];
	unsigned nbusy = 0;
	for (unsigned i = 0; i < sizeof(low_reserved) / sizeof(low_reserved[0]); i++)
		busy[nbusy++] = low_reserved[i];
	for (unsigned i = 0; i < k->nsegs; i++)
		busy[nbusy++] = (struct mb_range){ k->segs[i].paddr, k->segs[i].paddr + k->segs[i].memsz };

	struct mb_block b;
	block_layout(m, a, &b);
	if (b.cmdlen > 64 * KiB) {
		snprintf(err, errlen, "command line is %zu bytes; at most 64 KiB", b.cmdlen - 1);
		return -E2BIG;
	}
	uint64_t top = mem_low_end(m) < MB_INFO_LIMIT ? mem_low_end(m) : MB_INFO_LIMIT;
	pl->info = mb_find_free(busy, nbusy, 0x1000, top, b.size, 16);
	if (!pl->info) {
		snprintf(err, errlen, "no room below 4 MiB for the multiboot information (%zu bytes)", b.size);
		return -ENOSPC;
	}
	busy[nbusy++] = (struct mb_range){ pl->info, pl->info + b.size };

	pl->module = 0;
	if (a->module) {
		/* Below 4 MiB when it fits there (kvm-unit-tests' allocator owns
		 * the RAM above the kernel), else anywhere in low RAM. */
		pl->module = mb_find_free(busy, nbusy, 0x1000, top, a->module_size, 4096);
		if (!pl->module)
			pl->module = mb_find_free(busy, nbusy, 0x1000, mem_low_end(m), a->module_size, 4096);
		if (!pl->module) {
			snprintf(err, errlen, "module (%zu KiB) does not fit in guest RAM next to the kernel: give more --memory",
				 a->module_size >> 10);
			return -ENOSPC;
		}
	}
	return 0;
}

int mb_write(const struct mb_kernel *k, const uint8_t *data, const struct guest_mem *m,
	     const struct mb_boot_args *a, const struct mb_placement *pl, uint32_t *info_gpa)
{
	struct mb_block b;
	block_layout(m, a, &b);
	/* Where mb_place put them, in RAM of the layout it measured: only a
	 * different layout fails here. */
	uint8_t *p = mem_ptr(m, pl->info, b.size);
	if (!p)
		return -EFAULT;
	for (unsigned i = 0; i < k->nsegs; i++) {
		const struct mb_segment *s = &k->segs[i];
		uint8_t *dst = mem_ptr(m, s->paddr, s->memsz);
		if (!dst)
			return -EFAULT;
		memcpy(dst, data + s->offset, s->filesz);
		memset(dst + s->filesz, 0, s->memsz - s->filesz);
	}
	if (a->module && mem_write(m, pl->module, a->module, a->module_size))
		return -EFAULT;

	memset(p, 0, b.size);
	struct mb_info info = {
		.flags = MB_INFO_MEMORY | MB_INFO_CMDLINE | MB_INFO_MMAP | MB_INFO_LOADER_NAME,
		.mem_lower = (uint32_t)(LAYOUT_LOW_RAM_END / KiB),
		.mem_upper = (uint32_t)((mem_low_end(m) - LAYOUT_HIGH_START) / KiB),
		.cmdline = (uint32_t)(pl->info + b.off_cmd),
		.mmap_length = (uint32_t)(b.nmmap * sizeof(struct mb_mmap_entry)),
		.mmap_addr = (uint32_t)(pl->info + b.off_mmap),
		.boot_loader_name = (uint32_t)(pl->info + b.off_loader),
	};
	if (a->module) {
		info.flags |= MB_INFO_MODS;
		info.mods_count = 1;
		info.mods_addr = (uint32_t)(pl->info + b.off_mods);
		struct mb_module mod = { .mod_start = (uint32_t)pl->module,
					 .mod_end = (uint32_t)(pl->module + a->module_size),
					 .string = (uint32_t)(pl->info + b.off_modname) };
		memcpy(p + b.off_mods, &mod, sizeof(mod));
	}
	memcpy(p, &info, sizeof(info));
	memcpy(p + b.off_mmap, b.mmap, b.nmmap * sizeof(b.mmap[0]));
	memcpy(p + b.off_cmd, b.cmdline, b.cmdlen);
	memcpy(p + b.off_modname, b.modname, b.modlen);
	memcpy(p + b.off_loader, MB_LOADER_NAME, sizeof(MB_LOADER_NAME));
	*info_gpa = (uint32_t)pl->info;
	return 0;
}
