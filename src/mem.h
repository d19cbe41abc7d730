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

struct guest_mem {
	int fd;                 /* memfd backing all of guest RAM */
	uint8_t *host;          /* Ember's mapping of the whole memfd */
	uint64_t size;          /* total RAM bytes */
	struct mem_region regions[MEM_MAX_REGIONS];
	int nregions;
	/* While dirty tracking runs: one bit per page (RAM offset / 4096) that
	 * Ember itself wrote, since KVM only logs the guest's own writes. */
	uint64_t *dirty_log;
};

/* Create RAM of `size` bytes laid out around the 32-bit MMIO hole.
 * Returns 0 or -errno. */
int mem_create(struct guest_mem *m, uint64_t size);
void mem_destroy(struct guest_mem *m);

/* Host pointer for [gpa, gpa+len) when the whole range is RAM inside one
 * region; NULL otherwise (overflow, hole, past the end). */
void *mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len);

/* Ember wrote [gpa, gpa+len) through a mem_ptr() pointer: record it for
 * dirty tracking (snapshots, migration). Call after the write. Devices that
 * write guest RAM other than through mem_write must call this. */
void mem_mark_dirty(const struct guest_mem *m, uint64_t gpa, uint64_t len);

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

#endif
