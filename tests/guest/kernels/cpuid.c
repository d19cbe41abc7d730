/* CPUID as the guest sees it: prints every leaf of the basic (0..max),
 * hypervisor (0x40000000..max) and extended (0x80000000..max) ranges, with
 * subleaves 0..63 for the leaves that have subleaves, one line each:
 *   CPUID <leaf>.<subleaf>: <eax> <ebx> <ecx> <edx>      (hex)
 * tests/integration/test_cpu.sh compares them with `ember cpu --json`.
 * Runs at CPL0, where KVM answers CPUID from the vCPU's table (at CPL3 an
 * AMD CPU may answer natively). */
#include "kit.h"

static bool has_subleaves(uint32_t leaf)
{
	static const uint32_t indexed[] = { 0x4, 0x7, 0xb, 0xd, 0xf, 0x10, 0x12, 0x14, 0x17, 0x18,
					    0x1d, 0x1e, 0x1f, 0x20, 0x23, 0x24, 0x8000001d,
					    0x80000020, 0x80000026 };
	for (size_t i = 0; i < ARRAY_SIZE(indexed); i++)
		if (indexed[i] == leaf)
			return true;
	return false;
}

static unsigned dump_range(uint32_t first)
{
	uint32_t max = cpuid(first).eax;
	if (max < first || max - first > 0xff)
		max = first;
	unsigned lines = 0;
	for (uint32_t leaf = first; leaf <= max; leaf++) {
		unsigned subs = has_subleaves(leaf) ? 64 : 1;
		for (uint32_t sub = 0; sub < subs; sub++) {
			struct cpuid_regs r = cpuid_count(leaf, sub);
			printf("CPUID %08x.%02x: %08x %08x %08x %08x\n", leaf, sub, r.eax, r.ebx, r.ecx, r.edx);
			lines++;
		}
	}
	return lines;
}

void kmain(void)
{
	unsigned n = dump_range(0);
	n += dump_range(0x40000000);
	n += dump_range(0x80000000);
	report(n > 3, "printed %u CPUID lines", n);
	report(cpuid(1).ecx >> 31, "the hypervisor bit is set");
}
