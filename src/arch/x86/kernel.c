#include "arch/x86/kernel.h"

#include <asm/bootparam.h>
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "arch/x86/layout.h"

#define fail(...) (snprintf(err, errlen, __VA_ARGS__), -EINVAL)

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const uint8_t *p) { return (uint32_t)le16(p) | (uint32_t)le16(p + 2) << 16; }

/* Documentation/arch/x86/boot.rst: the setup header starts at 0x1f1 and the
 * magic "HdrS" sits at 0x202; the 64-bit entry needs protocol >= 2.12 with
 * XLF_KERNEL_64. */
static int parse_bzimage(const uint8_t *d, size_t size, struct kernel_image *k, char *err, size_t errlen)
{
	if (size < 0x268)
		return fail("bzImage too short");
	k->protocol = le16(d + 0x206);
	if (k->protocol < 0x20c)
		return fail("boot protocol %u.%02u is too old for the 64-bit entry (need 2.12)",
			    k->protocol >> 8, k->protocol & 0xff);
	uint16_t xloadflags = le16(d + 0x236);
	if (!(xloadflags & XLF_KERNEL_64))
		return fail("bzImage has no 64-bit entry point (XLF_KERNEL_64 not set)");
	if (!(d[0x211] & LOADED_HIGH))
		return fail("bzImage is a zImage (not loaded high)");
	unsigned setup_sects = d[0x1f1] ? d[0x1f1] : 4;
	k->setup_size = (size_t)(setup_sects + 1) * 512;
	if (k->setup_size >= size)
		return fail("bzImage setup (%zu bytes) is larger than the file", k->setup_size);
	k->init_size = le32(d + 0x260);
	k->initrd_addr_max = le32(d + 0x22c);
	k->cmdline_size = le32(d + 0x238);
	uint64_t payload = size - k->setup_size;
	uint64_t need = k->init_size > payload ? k->init_size : payload;
	k->format = KERNEL_BZIMAGE;
	k->load_start = BZIMAGE_LOAD_ADDR;
	k->load_end = BZIMAGE_LOAD_ADDR + need;
	k->entry = BZIMAGE_LOAD_ADDR + 0x200;
	return 0;
}

/* ELF structures are copied out of the file, never read in place: the
 * file's offsets (e_phoff, a note's) need not be aligned for them. */
static Elf64_Phdr phdr(const uint8_t *d, const Elf64_Ehdr *eh, unsigned i)
{
	Elf64_Phdr p;
	memcpy(&p, d + eh->e_phoff + (size_t)i * sizeof(p), sizeof(p));
	return p;
}

static bool has_start_note(const uint8_t *d, size_t size, uint64_t off, uint64_t len)
{
	uint64_t end;
	if (__builtin_add_overflow(off, len, &end) || end > size)
		return false;
	while (off + sizeof(Elf64_Nhdr) <= end) {
		Elf64_Nhdr nh;
		memcpy(&nh, d + off, sizeof(nh));
		const Elf64_Nhdr *n = &nh;
		uint64_t name_off = off + sizeof(*n);
		uint64_t desc_off = name_off + ((n->n_namesz + 3ULL) & ~3ULL);
		uint64_t next = desc_off + ((n->n_descsz + 3ULL) & ~3ULL);
		if (next > end)
			return false;
		if (n->n_namesz == sizeof(EMBER_NOTE_NAME) && n->n_type == EMBER_NOTE_START_ALL &&
		    !memcmp(d + name_off, EMBER_NOTE_NAME, sizeof(EMBER_NOTE_NAME)))
			return true;
		off = next;
	}
	return false;
}

static int parse_elf64(const uint8_t *d, size_t size, struct kernel_image *k, char *err, size_t errlen)
{
	Elf64_Ehdr ehdr;
	const Elf64_Ehdr *eh = &ehdr;
	if (size < sizeof(*eh))
		return fail("ELF header truncated");
	memcpy(&ehdr, d, sizeof(ehdr));
	if (eh->e_ident[EI_CLASS] != ELFCLASS64)
		return fail("ELF is not 64-bit (32-bit ELF needs multiboot)");
	if (eh->e_ident[EI_DATA] != ELFDATA2LSB || eh->e_machine != EM_X86_64)
		return fail("ELF is not for x86-64");
	if (eh->e_type != ET_EXEC)
		return fail("ELF is not an executable");
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0 ||
	    eh->e_phoff > size || (size - eh->e_phoff) / sizeof(Elf64_Phdr) < eh->e_phnum)
		return fail("ELF program headers out of the file");
	uint64_t lo = UINT64_MAX, hi = 0;
	bool entry_found = false;
	k->entry = eh->e_entry;
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr ph = phdr(d, eh, i), *p = &ph;
		if (p->p_type == PT_NOTE && has_start_note(d, size, p->p_offset, p->p_filesz))
			k->start_all_vcpus = true;
		if (p->p_type != PT_LOAD || p->p_memsz == 0)
			continue;
		uint64_t fend, mend, vend;
		if (p->p_filesz > p->p_memsz || __builtin_add_overflow(p->p_offset, p->p_filesz, &fend) ||
		    fend > size)
			return fail("ELF segment %u lies outside the file", i);
		if (__builtin_add_overflow(p->p_paddr, p->p_memsz, &mend))
			return fail("ELF segment %u wraps around", i);
		if (p->p_paddr < LAYOUT_HIGH_START)
			return fail("ELF segment %u at 0x%llx is below 1 MiB, over Ember's boot tables",
				    i, (unsigned long long)p->p_paddr);
		lo = p->p_paddr < lo ? p->p_paddr : lo;
		hi = mend > hi ? mend : hi;
		/* e_entry may be physical (vmlinux: phys_startup_64) or virtual:
		 * translate a virtual one through the segment holding it. */
		if (!entry_found && eh->e_entry >= p->p_paddr && eh->e_entry < mend) {
			k->entry = eh->e_entry;
			entry_found = true;
		} else if (!entry_found && !__builtin_add_overflow(p->p_vaddr, p->p_memsz, &vend) &&
			   eh->e_entry >= p->p_vaddr && eh->e_entry < vend) {
			k->entry = eh->e_entry - p->p_vaddr + p->p_paddr;
			entry_found = true;
		}
	}
	if (hi == 0)
		return fail("ELF has no loadable segment");
	if (!entry_found)
		return fail("ELF entry point 0x%llx is in no loadable segment",
			    (unsigned long long)eh->e_entry);
	k->format = KERNEL_ELF64;
	k->load_start = lo;
	k->load_end = hi;
	return 0;
}

int kernel_parse(const uint8_t *data, size_t size, struct kernel_image *k, char *err, size_t errlen)
{
	memset(k, 0, sizeof(*k));
	k->data = data;
	k->size = size;
	if (size >= 0x206 && !memcmp(data + 0x202, "HdrS", 4))
		return parse_bzimage(data, size, k, err, errlen);
	if (size >= SELFMAG && !memcmp(data, ELFMAG, SELFMAG))
		return parse_elf64(data, size, k, err, errlen);
	return fail("not a bzImage or ELF64 kernel");
}

int kernel_fits(const struct kernel_image *k, const struct guest_mem *m, char *err, size_t errlen)
{
	uint64_t off;
	if (mem_range_offset(m, k->load_start, k->load_end - k->load_start, &off)) {
		snprintf(err, errlen, "kernel needs [0x%llx, 0x%llx) but guest RAM ends at 0x%llx: give more --memory",
			 (unsigned long long)k->load_start, (unsigned long long)k->load_end,
			 (unsigned long long)mem_low_end(m));
		return -ENOSPC;
	}
	return 0;
}

int kernel_load(const struct kernel_image *k, const struct guest_mem *m)
{
	if (k->format == KERNEL_BZIMAGE)
		return mem_write(m, BZIMAGE_LOAD_ADDR, k->data + k->setup_size, k->size - k->setup_size);
	Elf64_Ehdr eh;
	memcpy(&eh, k->data, sizeof(eh));
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		const Elf64_Phdr ph = phdr(k->data, &eh, i), *p = &ph;
		if (p->p_type != PT_LOAD || p->p_memsz == 0)
			continue;
		uint8_t *dst = mem_ptr(m, p->p_paddr, p->p_memsz);
		if (!dst)
			return -EFAULT;   /* inside [load_start, load_end), which kernel_fits checked */
		/* The rest of p_memsz (bss) is not cleared: guest RAM is a fresh
		 * memfd, already zero, and writing zeros would fault in every page. */
		memcpy(dst, k->data + p->p_offset, p->p_filesz);
	}
	return 0;
}
