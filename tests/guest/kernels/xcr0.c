/* XSETBV and CPUID leaf 0xD: the guest enables every XSAVE component
 * CPUID.(0xD,0) EDX:EAX offers, then checks what Linux's
 * fpu__init_system_xstate checks: CPUID.(0xD,0).EBX (the XSAVE area for the
 * components enabled in XCR0; KVM recomputes it when the guest's XSETBV
 * exits) equals the end of the highest enabled component
 * (offset + size from subleaf i), and XCR0 reads back as written after
 * exits to the host (each printf is a port write). */
#include "kit.h"

#define CR4_OSXSAVE (1ul << 18)

static inline uint64_t xgetbv0(void)
{
	uint32_t lo, hi;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return ((uint64_t)hi << 32) | lo;
}
static inline void xsetbv0(uint64_t v)
{
	__asm__ volatile("xsetbv" : : "c"(0), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}

void kmain(void)
{
	if (!(cpuid(1).ecx & (1u << 26))) {
		report_skip("no xsave in CPUID");
		report_summary();
	}
	write_cr4(read_cr4() | CR4_OSXSAVE);
	struct cpuid_regs d = cpuid_count(0xd, 0);
	/* user components only: supervisor ones are XSS's */
	uint64_t want = (((uint64_t)d.edx << 32) | d.eax) & ~0x100ull & 0x2ffull;
	uint32_t end = 576;
	for (int i = 2; i < 64; i++) {
		if (!(want >> i & 1))
			continue;
		struct cpuid_regs c = cpuid_count(0xd, (uint32_t)i);
		if (c.ebx + c.eax > end)
			end = c.ebx + c.eax;
		printf("component %d: size %u offset %u\n", i, c.eax, c.ebx);
	}
	printf("XCR0 before: %#lx, CPUID.(0xD,0).EBX %u\n", (unsigned long)xgetbv0(), cpuid_count(0xd, 0).ebx);
	xsetbv0(want);
	uint64_t now = xgetbv0();
	uint32_t ebx = cpuid_count(0xd, 0).ebx;
	printf("XCR0 written %#lx, read %#lx; CPUID.(0xD,0).EBX %u, components end at %u\n",
	       (unsigned long)want, (unsigned long)now, ebx, end);
	report(now == want, "XCR0 reads back as written");
	report(ebx == end, "CPUID.(0xD,0).EBX follows XCR0 (%u, expected %u)", ebx, end);
	for (int i = 0; i < 3; i++)
		printf("after an exit: XCR0 %#lx\n", (unsigned long)xgetbv0());
	report(xgetbv0() == want, "XCR0 survives exits to the host");
	report_summary();
}
