/* PVH boot (pvh.S): struct hvm_start_info -> the Linux zero page fields the
 * kit reads (boot.c): e820 map, command line, RSDP. */
#include "kit_internal.h"

struct hvm_start_info {
	uint32_t magic, version, flags, nr_modules;
	uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr;
	uint64_t memmap_paddr;           /* version >= 1 */
	uint32_t memmap_entries, reserved;
};

struct hvm_memmap_entry {
	uint64_t addr, size;
	uint32_t type, reserved;
};

#define HVM_START_MAGIC 0x336ec578

static uint8_t zero_page[4096] __attribute__((aligned(4096)));

uint64_t kit_pvh_boot_params(uint32_t start_info);
uint64_t kit_pvh_boot_params(uint32_t start_info)
{
	const struct hvm_start_info *si = (const void *)(uintptr_t)start_info;
	if (!si || si->magic != HVM_START_MAGIC)
		return 0;
	memcpy(zero_page + 0x070, &si->rsdp_paddr, 8);
	uint32_t cl = (uint32_t)si->cmdline_paddr;
	memcpy(zero_page + 0x228, &cl, 4);
	unsigned n = si->version >= 1 ? si->memmap_entries : 0;
	if (n > 128)
		n = 128;
	const struct hvm_memmap_entry *m = (const void *)(uintptr_t)si->memmap_paddr;
	for (unsigned i = 0; i < n; i++) {
		uint8_t *e = zero_page + 0x2d0 + 20 * i;
		memcpy(e, &m[i].addr, 8);
		memcpy(e + 8, &m[i].size, 8);
		memcpy(e + 16, &m[i].type, 4);
	}
	zero_page[0x1e8] = (uint8_t)n;
	return (uintptr_t)zero_page;
}
