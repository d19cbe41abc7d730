/* The kit's page tables: an identity map, 2 MiB pages, U=1 everywhere so
 * run_user() code can touch anything, covering every e820 RAM range (rounded
 * out to 2 MiB) and the 3-4 GiB MMIO hole (uncached). Everything else is
 * left unmapped. Built once by the BSP (a few thousand PD entries at most:
 * cheap even when CPL0 is emulated) and loaded by every CPU. The tables are
 * in .bss, which Ember zero-fills. */
#include "kit_internal.h"

#define MAX_PDS 64                      /* 64 GiB of 2 MiB mappings */
#define TABLE_FLAGS (PTE_P | PTE_W | PTE_U)
#define HOLE_START 0xc0000000ull
#define HOLE_END   0x100000000ull

static uint64_t pml4[512] __attribute__((aligned(4096)));
static uint64_t pdpt[512] __attribute__((aligned(4096)));
static uint64_t pds[MAX_PDS][512] __attribute__((aligned(4096)));
static int pds_used;
static struct spinlock pt_lock;

static uint64_t *pd_for(uint64_t phys, bool create)
{
	uint64_t i = phys >> 30;
	if (i >= 512)
		return NULL;
	if (!(pdpt[i] & PTE_P)) {
		if (!create || pds_used == MAX_PDS)
			return NULL;
		pdpt[i] = (uintptr_t)pds[pds_used++] | TABLE_FLAGS;
	}
	return (uint64_t *)(uintptr_t)(pdpt[i] & PTE_ADDR);
}

bool map_2m(uint64_t phys, uint64_t extra_flags)
{
	phys = ALIGN_DOWN(phys, LARGE_PAGE);
	spin_lock(&pt_lock);
	uint64_t *pd = pd_for(phys, true);
	if (pd)
		pd[(phys >> 21) & 511] = phys | TABLE_FLAGS | PTE_PS | extra_flags;
	spin_unlock(&pt_lock);
	if (pd)
		invlpg((void *)(uintptr_t)phys);
	return pd != NULL;
}

void unmap_2m(uint64_t phys)
{
	phys = ALIGN_DOWN(phys, LARGE_PAGE);
	spin_lock(&pt_lock);
	uint64_t *pd = pd_for(phys, false);
	if (pd)
		pd[(phys >> 21) & 511] = 0;
	spin_unlock(&pt_lock);
	invlpg((void *)(uintptr_t)phys);
}

bool is_mapped(uint64_t addr)
{
	uint64_t *pd = pd_for(addr, false);
	return pd && (pd[(addr >> 21) & 511] & PTE_P);
}

uint64_t unmapped_addr(void)
{
	for (uint64_t gb = 0; gb < 512; gb++) {
		if (!(pdpt[gb] & PTE_P))
			return gb ? gb << 30 : LARGE_PAGE;
		const uint64_t *pd = (const uint64_t *)(uintptr_t)(pdpt[gb] & PTE_ADDR);
		for (int i = gb ? 0 : 1; i < 512; i++)
			if (!(pd[i] & PTE_P))
				return (gb << 30) | ((uint64_t)i << 21);
	}
	return 0;
}

/* Boot-time bulk mapping: no lock, no invlpg (the tables are not live yet),
 * a tight loop per PD since every CPL0 instruction counts. */
static void map_range(uint64_t start, uint64_t end, uint64_t extra)
{
	uint64_t a = ALIGN_DOWN(start, LARGE_PAGE);
	while (a < end) {
		uint64_t *pd = pd_for(a, true);
		if (!pd) {
			printf("# paging: out of page tables at %#lx\n", (unsigned long)a);
			return;
		}
		uint64_t gend = ALIGN_DOWN(a, GiB) + GiB;
		uint64_t stop = end < gend ? end : gend;
		uint64_t flags = TABLE_FLAGS | PTE_PS | extra;
		for (; a < stop; a += LARGE_PAGE)
			pd[(a >> 21) & 511] = a | flags;
	}
}

void paging_init(void)
{
	pml4[0] = (uintptr_t)pdpt | TABLE_FLAGS;
	int n = e820_count();
	bool any = false;
	for (int i = 0; i < n; i++) {
		const struct e820_range *r = e820_get(i);
		if (r->type != E820_RAM || !r->size)
			continue;
		map_range(r->addr, r->addr + r->size, 0);
		any = true;
	}
	/* The first 2 MiB always: boot structures, ACPI tables, this kernel. */
	map_range(0, LARGE_PAGE, 0);
	if (!any) {
		puts("# paging: no e820 RAM, mapping 0-3 GiB");
		map_range(0, HOLE_START, 0);
	}
	map_range(HOLE_START, HOLE_END, PTE_PCD | PTE_PWT);
}

void paging_load(void)
{
	write_cr3((uintptr_t)pml4);
}
