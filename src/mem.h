/* Guest RAM: one memfd mapped once in Ember, split into guest-physical
 * regions around the MMIO hole. Every guest-physical access from Ember goes
 * through the checked accessors here (DESIGN rule 3). */
#ifndef EMBER_MEM_H
#define EMBER_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MEM_MAX_REGIONS 2

struct mem_region {
	uint64_t gpa;      /* guest-physical start */
	uint64_t size;     /* bytes */
	uint64_t offset;   /* offset into the memfd and into guest_mem.host */
};

/* Guard bytes of PROT_NONE address space below and above Ember's mapping
 * of guest RAM: an access that escaped the checks below and ran off either
 * edge faults instead of reading or writing Ember's own memory. */
#define MEM_GUARD_SIZE (2ULL << 20)

struct guest_mem {
	int fd;                 /* memfd backing all of guest RAM */
	uint8_t *host;          /* Ember's mapping of the whole memfd */
	uint64_t size;          /* total RAM bytes */
	uint8_t *reserved;      /* the whole reservation: guard, RAM, guard */
	uint64_t reserved_len;
	struct mem_region regions[MEM_MAX_REGIONS];
	int nregions;
	/* While dirty tracking runs: one bit per page (RAM offset / 4096) that
	 * Ember itself wrote, since KVM only logs the guest's own writes. */
	uint64_t *dirty_log;
	/* mem_use_thp() advised the mapping for transparent huge pages. */
	bool thp;
};

/* Create RAM of `size` bytes laid out around the 32-bit MMIO hole, mapped
 * between two MEM_GUARD_SIZE guards (2 MiB aligned). Returns 0 or -errno. */
int mem_create(struct guest_mem *m, uint64_t size);
void mem_destroy(struct guest_mem *m);
/* The layout alone: the regions mem_create would make for `size` bytes,
 * with no memory behind them (host NULL, fd -1; mem_ptr gives NULL). What
 * the boot checks measure a kernel against before the VM exists; the
 * layout functions below (mem_is_ram, mem_low_end, mem_range_offset) work
 * on it. 0 or -EINVAL. Needs no mem_destroy. */
int mem_layout(struct guest_mem *m, uint64_t size);

/* Transparent huge pages for guest RAM. The memfd lives on the kernel's
 * internal shmem mount, which follows
 * /sys/kernel/mm/transparent_hugepage/shmem_enabled (the per-size
 * hugepages-*kB/shmem_enabled files rule anonymous shared memory only).
 * With huge pages, a free page report or balloon discard of an aligned
 * 2 MiB block frees one huge page instead of 512 small ones. */
#define MEM_THP_SYSFS "/sys/kernel/mm/transparent_hugepage/shmem_enabled"
/* The selected word ("[advise]") of shmem_enabled's text into word; ""
 * when there is none. */
void mem_thp_setting(const char *text, char *word, size_t len);
/* Read the host's setting (MEM_THP_SYSFS) into word: "" when the kernel
 * has no shmem THP. Read it before the jail and the seccomp filters. */
void mem_thp_host_setting(char *word, size_t len);
/* Whether a setting gives a MADV_HUGEPAGE memfd mapping huge pages:
 * advise, within_size, always, force (not never, deny, ""). */
bool mem_thp_allows(const char *word);
/* Advise the whole mapping of RAM for huge pages (MADV_HUGEPAGE; RAM and
 * the memfd offsets are 2 MiB aligned alike, so every aligned 2 MiB of the
 * file can be one huge page; a tail under 2 MiB stays small pages). Sets
 * m->thp. Call before the guest runs (before the seccomp filters on a first
 * VM; the rebuild list allows it for later ones). 0 or -errno. */
int mem_use_thp(struct guest_mem *m);

/* Host pointer for [gpa, gpa+len) when the whole range is RAM inside one
 * region; NULL otherwise (overflow, hole, past the end). */
void *mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len);

/* Ember wrote [gpa, gpa+len) through a mem_ptr() pointer: record it for
 * dirty tracking (snapshots, migration). Call after the write. Devices that
 * write guest RAM other than through mem_write must call this. */
void mem_mark_dirty(const struct guest_mem *m, uint64_t gpa, uint64_t len);
/* The same for a host pointer into Ember's mapping of RAM (what a device
 * holds after mem_ptr, e.g. in an iovec); ranges outside RAM are ignored. */
void mem_mark_dirty_host(const struct guest_mem *m, const void *p, uint64_t len);

/* The RAM offset (memfd offset) of gpa, or UINT64_MAX when gpa is not RAM. */
uint64_t mem_offset(const struct guest_mem *m, uint64_t gpa);

/* Copy in/out of guest RAM (mem_write marks the pages dirty); -EFAULT when
 * the range is not all RAM. */
int mem_write(const struct guest_mem *m, uint64_t gpa, const void *src, size_t len);
int mem_read(const struct guest_mem *m, void *dst, uint64_t gpa, size_t len);

/* True when [gpa, gpa+len) is entirely guest RAM (may span regions). */
bool mem_is_ram(const struct guest_mem *m, uint64_t gpa, uint64_t len);

/* The last guest-physical address + 1 of RAM below 4 GiB. */
uint64_t mem_low_end(const struct guest_mem *m);

/* Offset in the memfd of [gpa, gpa+len) when it is RAM inside one region
 * (what mem_ptr needs to give a pointer); -EFAULT otherwise. */
int mem_range_offset(const struct guest_mem *m, uint64_t gpa, uint64_t len, uint64_t *off);
/* The guest-physical address of memfd offset off (< size). */
uint64_t mem_gpa_of(const struct guest_mem *m, uint64_t off);

/* Give the host memory behind memfd bytes [off, off+len) back: punch a
 * hole (FALLOC_FL_PUNCH_HOLE), so the host frees the pages and the guest
 * reads zeros there until it writes again. off and len 4 KiB multiples
 * inside RAM; 0 or -errno. For a shared memfd this is what frees memory:
 * MADV_DONTNEED only drops page-table entries (the file keeps the pages)
 * and MADV_FREE is refused (EINVAL). */
int mem_discard(const struct guest_mem *m, uint64_t off, uint64_t len);
/* Bytes of guest RAM the host holds now: the memfd's allocated blocks
 * (fstat st_blocks * 512), which is what discarding gives back. */
uint64_t mem_resident(const struct guest_mem *m);
/* The first memfd offset in [off, end) that holds data (lseek SEEK_DATA:
 * no page is read or allocated); end when all of it is a hole. A hole
 * reads as zeros, so a snapshot may skip it without reading it (reading
 * would allocate the page). */
uint64_t mem_next_data(const struct guest_mem *m, uint64_t off, uint64_t end);
/* The first offset in [off, end) that is a hole (SEEK_HOLE); end if none. */
uint64_t mem_next_hole(const struct guest_mem *m, uint64_t off, uint64_t end);

#endif
