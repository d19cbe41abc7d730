/* Descriptor tables, in the spirit of the nVMX GDTR/IDTR seed: LGDT/LIDT
 * with various bases and limits read back exactly by SGDT/SIDT, and a #GP
 * (error code = the selector) for a selector past the GDT limit. */
#include "kit.h"

struct dtr { uint16_t limit; uint64_t base; } __attribute__((packed));

static struct dtr sgdt(void) { struct dtr d; __asm__ volatile("sgdt %0" : "=m"(d)); return d; }
static struct dtr sidt(void) { struct dtr d; __asm__ volatile("sidt %0" : "=m"(d)); return d; }

/* Nothing may fault or take an interrupt until the table is restored. */
static void check_pair(const char *what, struct dtr set, bool gdt)
{
	struct dtr saved = gdt ? sgdt() : sidt(), got;
	if (gdt) {
		__asm__ volatile("lgdt %0" : : "m"(set));
		got = sgdt();
		__asm__ volatile("lgdt %0" : : "m"(saved));
	} else {
		__asm__ volatile("lidt %0" : : "m"(set));
		got = sidt();
		__asm__ volatile("lidt %0" : : "m"(saved));
	}
	report(got.base == set.base && got.limit == set.limit,
	       "%s base %#lx limit %#x reads back (got %#lx/%#x)", what, (unsigned long)set.base, set.limit,
	       (unsigned long)got.base, got.limit);
}

static uint16_t load_sel;
static void load_fs(void *arg) { __asm__ volatile("mov %0, %%fs" : : "r"(load_sel)); }

void kmain(void)
{
	static const struct dtr cases[] = {
		{ 0x0000, 0x0000000000000000 }, { 0xffff, 0x0000000000000000 }, { 0x0007, 0x0000000000001000 },
		{ 0x0fff, 0x0000000000123458 }, { 0x1234, 0x0000000000000003 }, { 0xffff, 0x00000000fffffff0 },
		{ 0x0001, 0x0000000080000000 }, { 0x00ff, 0x00000000fee00000 }, { 0x0fff, 0x00007ffffffff000 },
		{ 0x0017, 0xffff800000001000 }, { 0xffff, 0xfffffffffffffff0 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		check_pair("GDTR", cases[i], true);
		check_pair("IDTR", cases[i], false);
	}

	/* Shrink the kit's GDT to null, (unused), kernel CS 0x10, kernel DS
	 * 0x18 (limit 0x1f): 0x18 still loads, 0x20 and 0x28 are past the limit
	 * and raise #GP with the selector as the error code. Exceptions still
	 * work: they load CS 0x10 and SS 0x18 only. */
	struct dtr gdt = sgdt(), small = { 0x1f, gdt.base };
	report(gdt.limit > 0x2f, "the kit's GDT limit %#x covers its user segments", gdt.limit);
	struct exc_info in, past, far;
	__asm__ volatile("lgdt %0" : : "m"(small));
	load_sel = KERNEL_DS;
	int v_in = catch_exception(load_fs, NULL, &in);
	load_sel = 0x20;
	int v_past = catch_exception(load_fs, NULL, &past);
	load_sel = 0x28;
	int v_far = catch_exception(load_fs, NULL, &far);
	load_sel = 0;
	int v_null = catch_exception(load_fs, NULL, NULL);
	__asm__ volatile("lgdt %0" : : "m"(gdt));
	report(v_in == -1, "selector 0x18 inside the limit loads (vector %d)", v_in);
	report(v_past == 13 && past.error == 0x20, "selector 0x20 past the limit: #GP(0x20) (vector %d, error %#lx)",
	       v_past, (unsigned long)past.error);
	report(v_far == 13 && far.error == 0x28, "selector 0x28 past the limit: #GP(0x28) (vector %d, error %#lx)",
	       v_far, (unsigned long)far.error);
	report(v_null == -1, "the null selector loads into FS (vector %d)", v_null);
}
