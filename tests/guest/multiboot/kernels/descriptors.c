/* Descriptor tables, in the spirit of the nVMX GDTR/IDTR seed: LGDT/LIDT
 * with various bases and limits read back exactly by SGDT/SIDT, and a #GP
 * (error code = the selector) for a selector past the GDT limit. */
#include "kit.h"

struct dtr { uint16_t limit; uint32_t base; } __attribute__((packed));

static struct dtr sgdt(void) { struct dtr d; asm volatile("sgdt %0" : "=m"(d)); return d; }
static struct dtr sidt(void) { struct dtr d; asm volatile("sidt %0" : "=m"(d)); return d; }

static void check_pair(const char *what, struct dtr set, bool gdt)
{
	struct dtr saved = gdt ? sgdt() : sidt(), got;
	/* Nothing may fault or reload a segment until the table is restored. */
	if (gdt) {
		asm volatile("lgdt %0" :: "m"(set));
		got = sgdt();
		asm volatile("lgdt %0" :: "m"(saved));
	} else {
		asm volatile("lidt %0" :: "m"(set));
		got = sidt();
		asm volatile("lidt %0" :: "m"(saved));
	}
	report(got.base == set.base && got.limit == set.limit,
	       "%s base 0x%x limit 0x%x reads back (got 0x%x/0x%x)", what, set.base, set.limit,
	       got.base, got.limit);
}

int kmain(int argc, char **argv)
{
	static const struct dtr cases[] = {
		{ 0x0000, 0x00000000 }, { 0xffff, 0x00000000 }, { 0x0007, 0x00001000 },
		{ 0x0fff, 0x00123458 }, { 0x1234, 0x00000003 }, { 0xffff, 0xfffffff0 },
		{ 0x0001, 0x80000000 }, { 0x00ff, 0xfee00000 },
	};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		check_pair("GDTR", cases[i], true);
		check_pair("IDTR", cases[i], false);
	}

	/* The kit's GDT has 5 entries (limit 0x27). Shrink it to 3 (limit
	 * 0x17): selector 0x10 still loads, 0x18 and 0x20 are past the limit. */
	struct dtr gdt = sgdt(), small = { 0x17, gdt.base };
	report(gdt.limit == 0x27, "the kit's GDT limit is 0x27 (got 0x%x)", gdt.limit);
	asm volatile("lgdt %0" :: "m"(small));
	uint16_t sel = 0x10, sel_past = 0x18, sel_far = 0x20;
	int v_ok = CATCH(asm volatile("mov %0, %%fs" :: "r"(sel)));
	int v_past = CATCH(asm volatile("mov %0, %%fs" :: "r"(sel_past)));
	uint32_t err_past = exc_error[0];
	int v_far = CATCH(asm volatile("mov %0, %%gs" :: "r"(sel_far)));
	uint32_t err_far = exc_error[0];
	asm volatile("lgdt %0" :: "m"(gdt));
	asm volatile("mov %0, %%fs; mov %0, %%gs" :: "r"(sel));
	report(v_ok == -1, "selector 0x10 inside the limit loads (vector %d)", v_ok);
	report(v_past == 13 && err_past == 0x18, "selector 0x18 past the limit: #GP(0x18) (vector %d, error 0x%x)",
	       v_past, err_past);
	report(v_far == 13 && err_far == 0x20, "selector 0x20 past the limit: #GP(0x20) (vector %d, error 0x%x)",
	       v_far, err_far);
	/* A null selector in a data segment register is allowed. */
	uint16_t null = 0;
	int v_null = CATCH(asm volatile("mov %0, %%gs" :: "r"(null)));
	asm volatile("mov %0, %%gs" :: "r"(sel));
	report(v_null == -1, "the null selector loads into GS (vector %d)", v_null);
	return report_summary();
}
