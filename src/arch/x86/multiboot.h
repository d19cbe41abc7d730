/* Multiboot v1 kernels (the format of kvm-unit-tests' x86 .flat files):
 * finding and checking the header, the ELF32/ELF64 (or a.out-kludge)
 * payload, and writing the boot information (command line, modules,
 * memory map) the kernel finds in EBX at its 32-bit protected-mode entry.
 * Parsing and placing are pure (no guest RAM needed) so they run before the
 * VM exists and can be unit-tested and fuzzed; writing goes only through
 * the checked guest-memory accessors. */
#ifndef EMBER_X86_MULTIBOOT_H
#define EMBER_X86_MULTIBOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mem.h"

#define MB_HEADER_MAGIC     0x1BADB002u   /* in the kernel's first 8 KiB */
#define MB_BOOT_MAGIC       0x2BADB002u   /* EAX at entry */
#define MB_SEARCH_LEN       8192

/* Header flags: bits 0-15 are requirements a loader must meet or refuse. */
#define MB_HF_PAGE_ALIGN    (1u << 0)     /* modules page aligned */
#define MB_HF_MEMINFO       (1u << 1)     /* mem_* and mmap wanted */
#define MB_HF_VIDEO         (1u << 2)     /* a video mode: Ember has none */
#define MB_HF_AOUT_KLUDGE   (1u << 16)    /* the address fields are valid */
#define MB_HF_REQUIRED_MASK 0x0000ffffu
#define MB_HF_SUPPORTED     (MB_HF_PAGE_ALIGN | MB_HF_MEMINFO | MB_HF_AOUT_KLUDGE)

/* Info flags (what struct mb_info holds). */
#define MB_INFO_MEMORY      (1u << 0)
#define MB_INFO_CMDLINE     (1u << 2)
#define MB_INFO_MODS        (1u << 3)
#define MB_INFO_MMAP        (1u << 6)
#define MB_INFO_LOADER_NAME (1u << 9)

/* The boot information structure (Multiboot 0.6.96, section 3.3). */
struct mb_info {
	uint32_t flags;
	uint32_t mem_lower, mem_upper;   /* KiB below 640K / from 1 MiB */
	uint32_t boot_device;
	uint32_t cmdline;
	uint32_t mods_count, mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length, mmap_addr;
	uint32_t drives_length, drives_addr;
	uint32_t config_table;
	uint32_t boot_loader_name;
	uint32_t apm_table;
	uint32_t vbe[6];
} __attribute__((packed));

struct mb_module {
	uint32_t mod_start, mod_end;
	uint32_t string;
	uint32_t reserved;
} __attribute__((packed));

struct mb_mmap_entry {
	uint32_t size;                   /* of the rest: 20 */
	uint64_t base_addr, length;
	uint32_t type;                   /* 1 RAM, 2 reserved */
} __attribute__((packed));

#define MB_MAX_SEGMENTS 16

struct mb_segment {
	uint64_t paddr;
	uint64_t offset;                 /* in the file */
	uint64_t filesz, memsz;
};

struct mb_kernel {
	uint32_t header_offset;          /* of the magic in the file */
	uint32_t flags;                  /* header flags */
	uint32_t entry;                  /* physical, entered in 32-bit mode */
	unsigned nsegs;
	struct mb_segment segs[MB_MAX_SEGMENTS];
	uint64_t load_start, load_end;   /* the range the segments span */
	int elf_class;                   /* 32, 64, or 0 for the a.out kludge */
};

/* Look for the header in the first 8 KiB. 1 when a header is found and
 * valid (k->header_offset and k->flags set), 0 when there is no magic at
 * all, -EINVAL (reason in err) when the magic is there but the header is
 * malformed: truncated, a bad checksum, or a requirement Ember cannot meet. */
int mb_find_header(const uint8_t *data, size_t size, struct mb_kernel *k, char *err, size_t errlen);

/* Find the header and describe the payload: the ELF PT_LOAD segments at
 * their physical addresses (ELF32 or ELF64), or the a.out kludge range.
 * Checks that every segment lies in the file and the entry in a segment;
 * not yet where they go in RAM. 0, or -EINVAL with a reason in err
 * (-ENOENT when the file has no multiboot header). */
int mb_parse(const uint8_t *data, size_t size, struct mb_kernel *k, char *err, size_t errlen);

/* What the loader puts next to the kernel. */
struct mb_boot_args {
	const char *cmdline;             /* whole command line, argv[0] first */
	const uint8_t *module;           /* one module (the -initrd file), or NULL */
	size_t module_size;
	const char *module_name;         /* its string */
};

/* A half-open guest-physical range. */
struct mb_range {
	uint64_t start, end;
};

/* Lowest address >= lo, aligned, where [addr, addr+size) is below hi and
 * overlaps none of busy[0..n). 0 when there is none (0 is never handed out:
 * lo must be above it). Pure: used to place the boot information. */
uint64_t mb_find_free(const struct mb_range *busy, unsigned n, uint64_t lo, uint64_t hi,
		      uint64_t size, uint64_t align);

/* Where the boot information block and the module go. */
struct mb_placement {
	uint64_t info;                   /* the block: info, module list, memory map, strings */
	uint64_t module;                 /* 0 without a module */
};

/* Check that the segments fit in the RAM of m and stay off Ember's
 * tables, and place the info structure, command line, module and memory
 * map below 4 MiB (off the kernel and the low pages an AP trampoline or a
 * real-mode test uses). Pure: m may be a mem_layout() with no memory
 * behind it, so bad kernels are refused before any VM exists. 0, or
 * -errno with a one-line reason in err. */
int mb_place(const struct mb_kernel *k, const struct guest_mem *m, const struct mb_boot_args *args,
	     struct mb_placement *pl, char *err, size_t errlen);

/* Copy the segments and the module into guest RAM of the layout mb_place
 * measured, at its places, and write the boot information; *info_gpa gets
 * the address for EBX. 0, or -EFAULT when m's layout is not that one. */
int mb_write(const struct mb_kernel *k, const uint8_t *data, const struct guest_mem *m,
	     const struct mb_boot_args *args, const struct mb_placement *pl, uint32_t *info_gpa);

#endif
