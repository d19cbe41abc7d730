/* Memory map: e820 RAM adds up to what --memory gave (mem=SIZE on the
 * command line; Ember reports it minus the 0x9fc00-0x100000 hole, RAM above
 * 3 GiB moved to 4 GiB), no RAM in the legacy or the 3-4 GiB MMIO hole,
 * and the first and last 4 KiB page of every RAM range holds a pattern
 * (written to all pages first, then read back: catches aliasing). */
#include "kit.h"

#define LOW_HOLE_START 0x9fc00ull
#define LOW_HOLE_END   0x100000ull
#define HOLE_START     0xc0000000ull
#define HOLE_END       0x100000000ull
#define MAX_PAGES      16

extern uint8_t __kernel_start[], __kernel_end[];

static uint64_t pages[MAX_PAGES];
static int npages;
static uint64_t saved[MAX_PAGES][512];

static void add_page(uint64_t a)
{
	if (npages == MAX_PAGES)
		return;
	for (int i = 0; i < npages; i++)
		if (pages[i] == a)
			return;
	pages[npages++] = a;
}

static uint64_t pattern(uint64_t page, int i)
{
	return (page + (uint64_t)i * 8) ^ 0x5a5aa5a5c3c33c3cull;
}

void kmain(void)
{
	int n = e820_count();
	uint64_t mem = 0;
	bool have_mem = cmdline_get_u64("mem", &mem);
	printf("# mem: %d e820 entries, cmdline \"%s\"\n", n, cmdline());
	for (int i = 0; i < n; i++) {
		const struct e820_range *r = e820_get(i);
		printf("#   [%#014lx-%#014lx) type %u\n", (unsigned long)r->addr,
		       (unsigned long)(r->addr + r->size), r->type);
	}
	report(n > 0, "e820 has entries");

	uint64_t total = e820_ram_total(), top = e820_ram_top();
	if (have_mem) {
		uint64_t want_total = mem - (LOW_HOLE_END - LOW_HOLE_START);
		uint64_t want_top = mem <= HOLE_START ? mem : HOLE_END + (mem - HOLE_START);
		report(total == want_total, "e820 RAM total %#lx == mem %#lx minus the low hole (%#lx)",
		       (unsigned long)total, (unsigned long)mem, (unsigned long)want_total);
		report(top == want_top, "RAM top %#lx == %#lx", (unsigned long)top, (unsigned long)want_top);
		report(e820_ram_overlaps(HOLE_END, 1) == (mem > HOLE_START), "RAM at 4 GiB iff mem > 3 GiB");
	} else {
		report_skip("no mem=SIZE on the command line");
	}
	uint64_t ram_want;
	if (cmdline_get_u64("ram", &ram_want))
		report(total == ram_want, "e820 RAM total %#lx == ram=%#lx", (unsigned long)total,
		       (unsigned long)ram_want);

	report(!e820_ram_overlaps(HOLE_START, HOLE_END - HOLE_START), "no RAM in the 3-4 GiB MMIO hole");
	report(!e820_ram_overlaps(LOW_HOLE_START, LOW_HOLE_END - LOW_HOLE_START),
	       "no RAM in 0x9fc00-0x100000");
	bool sorted = true;
	for (int i = 1; i < n; i++)
		if (e820_get(i)->addr < e820_get(i - 1)->addr + e820_get(i - 1)->size)
			sorted = false;
	report(sorted, "e820 entries are sorted and do not overlap");

	/* First and last page of every RAM range, stepping around this kernel. */
	uint64_t ks = (uintptr_t)__kernel_start, ke = (uintptr_t)__kernel_end;
	for (int i = 0; i < n; i++) {
		const struct e820_range *r = e820_get(i);
		if (r->type != E820_RAM)
			continue;
		uint64_t first = ALIGN_UP(r->addr, PAGE_SIZE), end = ALIGN_DOWN(r->addr + r->size, PAGE_SIZE);
		if (first < ke && first + PAGE_SIZE > ks)
			first = ALIGN_UP(ke, PAGE_SIZE);
		uint64_t last = end - PAGE_SIZE;
		if (last < ke && last + PAGE_SIZE > ks)
			continue;
		if (first + PAGE_SIZE <= end)
			add_page(first);
		if (last >= first && end >= PAGE_SIZE)
			add_page(last);
	}
	for (int p = 0; p < npages; p++) {
		volatile uint64_t *q = (volatile uint64_t *)(uintptr_t)pages[p];
		report(is_mapped(pages[p]), "page %#lx is mapped", (unsigned long)pages[p]);
		for (int i = 0; i < 512; i++) {
			saved[p][i] = q[i];
			q[i] = pattern(pages[p], i);
		}
	}
	for (int p = 0; p < npages; p++) {
		volatile uint64_t *q = (volatile uint64_t *)(uintptr_t)pages[p];
		int bad = 0;
		for (int i = 0; i < 512; i++) {
			if (q[i] != pattern(pages[p], i))
				bad++;
			q[i] = saved[p][i];
		}
		report(!bad, "pattern reads back at RAM page %#lx (%d bad words)", (unsigned long)pages[p], bad);
	}
	report(npages >= 2, "tested %d pages", npages);
}
