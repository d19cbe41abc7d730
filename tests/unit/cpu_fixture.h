/* CPUID fixtures for the CPU model and MSR tests: synthetic hosts whose
 * KVM supports every feature Ember names (Intel and AMD flavours), and the
 * KVM_GET_SUPPORTED_CPUID recorded on the kvm_pvm development host. */
#ifndef TEST_CPU_FIXTURE_H
#define TEST_CPU_FIXTURE_H

#include <stdlib.h>
#include <string.h>

#include "arch/x86/cpufeat.h"
#include "arch/x86/cpumodel.h"

static struct kvm_cpuid_entry2 *fx_add(struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx, uint32_t flags)
{
	struct kvm_cpuid_entry2 *e = cpuid_entry(c, fn, idx);
	if (e && (!(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e->index == idx))
		return e;
	e = &c->entries[c->nent++];
	memset(e, 0, sizeof(*e));
	e->function = fn;
	e->index = idx;
	e->flags = flags;
	return e;
}

static void fx_vendor(struct kvm_cpuid2 *c, const char *v, uint32_t max)
{
	struct kvm_cpuid_entry2 *e = fx_add(c, 0, 0, 0);
	e->eax = max;
	memcpy(&e->ebx, v, 4);
	memcpy(&e->edx, v + 4, 4);
	memcpy(&e->ecx, v + 8, 4);
}

/* Every named feature, plus the leaves that describe them. */
static struct kvm_cpuid2 *fx_rich(bool amd)
{
	struct kvm_cpuid2 *c = calloc(1, cpuid_size(128));
	fx_vendor(c, amd ? "AuthenticAMD" : "GenuineIntel", 0x1f);
	fx_add(c, 1, 0, 0)->eax = amd ? 0x00a20f12 : 0x000806f8;
	fx_add(c, 6, 0, 0);
	fx_add(c, 7, 0, KVM_CPUID_FLAG_SIGNIFCANT_INDEX)->eax = 2;
	fx_add(c, 7, 1, KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
	fx_add(c, 7, 2, KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
	struct kvm_cpuid_entry2 *a = fx_add(c, 0xa, 0, 0);
	if (!amd) {
		a->eax = 2 | (8 << 8) | (48 << 16);
		a->edx = 3 | (48 << 5);
	}
	fx_add(c, 0xb, 0, KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
	struct kvm_cpuid_entry2 *d0 = fx_add(c, 0xd, 0, KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
	d0->eax = 0x602e7;
	d0->ecx = 0x2b00;
	fx_add(c, 0xd, 1, KVM_CPUID_FLAG_SIGNIFCANT_INDEX)->ecx = 0x1900;
	for (uint32_t i = 2; i <= 18; i++) {
		struct kvm_cpuid_entry2 *e = fx_add(c, 0xd, i, KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
		e->eax = 64;
		e->ebx = 576 + 64 * i;
		e->ecx = (0x1900u >> i) & 1;
	}
	fx_add(c, 0x12, 0, KVM_CPUID_FLAG_SIGNIFCANT_INDEX)->eax = 1;
	fx_add(c, 0x14, 0, KVM_CPUID_FLAG_SIGNIFCANT_INDEX)->eax = 1;
	fx_add(c, 0x1d, 0, KVM_CPUID_FLAG_SIGNIFCANT_INDEX)->eax = 1;
	fx_add(c, 0x1e, 0, KVM_CPUID_FLAG_SIGNIFCANT_INDEX)->ebx = 0x4010;
	fx_add(c, 0x40000000, 0, 0)->eax = 0x40000001;
	fx_add(c, 0x40000001, 0, 0);
	fx_add(c, 0x80000000, 0, 0)->eax = 0x80000022;
	fx_add(c, 0x80000001, 0, 0);
	fx_add(c, 0x80000007, 0, 0);
	fx_add(c, 0x80000008, 0, 0)->eax = 0x3030;
	fx_add(c, 0x8000001e, 0, 0);
	fx_add(c, 0x80000021, 0, 0);
	fx_add(c, 0x80000022, 0, 0)->ebx = amd ? 6 : 0;
	for (int f = 0; f < F_COUNT; f++)
		cpuid_set(c, f);
	cpuid_clear(c, F_OSXSAVE);
	cpuid_clear(c, F_OSPKE);
	if (amd) {
		/* AMD copies these leaf-1 EDX bits into 0x80000001 EDX. */
		fx_add(c, 0x80000001, 0, 0)->edx |= 0x0183f3ff;
	}
	return c;
}

/* KVM_GET_SUPPORTED_CPUID on the kvm_pvm host (AMD family 0x1a), plus the
 * TSC deadline timer and hypervisor bits cpuid_host_caps() adds. */
static const uint32_t pvm_host_raw[][7] = {
	{ 0x0, 0, 0, 0x00000010, 0x68747541, 0x444d4163, 0x69746e65 },
	{ 0x1, 0, 0, 0x00b00f21, 0x00020800, 0x81202000 | (1u << 24), 0x078bfbff },
	{ 0x6, 0, 0, 0x00000004, 0, 0, 0 },
	{ 0x7, 0, 1, 0x00000001, 0x01800002, 0x18010104, 0xbc000000 },
	{ 0x7, 1, 1, 0, 0, 0, 0 },
	{ 0xa, 0, 0, 0, 0, 0, 0 },
	{ 0xb, 0, 1, 0, 0, 0, 0 },
	{ 0xd, 0, 1, 0x000002e7, 0x00000988, 0x00000988, 0 },
	{ 0xd, 1, 1, 0, 0, 0, 0 },
	{ 0xd, 2, 1, 0x00000100, 0x00000240, 0, 0 },
	{ 0x80000000, 0, 0, 0x80000022, 0x68747541, 0x444d4163, 0x69746e65 },
	{ 0x80000001, 0, 0, 0x00b00f21, 0x40000000, 0x00400393, 0x23d3fbff },
	{ 0x80000007, 0, 0, 0, 0, 0, 0x00000100 },
	{ 0x80000008, 0, 0, 0x00003934, 0x510ad205, 0x00007001, 0 },
	{ 0x8000001d, 3, 1, 0x00004163, 0x03c0003f, 0x00007fff, 0x00000001 },
	{ 0x8000001e, 0, 0, 0, 0, 0, 0 },
	{ 0x80000021, 0, 0, 0x58100367, 0, 0x00000006, 0 },
	{ 0x80000022, 0, 0, 0x00000001, 0, 0, 0 },
	{ 0x40000000, 0, 0, 0x40000001, 0x4b4d564b, 0x564b4d56, 0x0000004d },
	{ 0x40000001, 0, 0, 0x01007efb, 0, 0, 0 },
};

static struct kvm_cpuid2 *fx_pvm_host(void)
{
	size_t n = sizeof(pvm_host_raw) / sizeof(pvm_host_raw[0]);
	struct kvm_cpuid2 *c = calloc(1, cpuid_size((unsigned)n));
	c->nent = (uint32_t)n;
	for (size_t i = 0; i < n; i++)
		c->entries[i] = (struct kvm_cpuid_entry2){
			.function = pvm_host_raw[i][0], .index = pvm_host_raw[i][1],
			.flags = pvm_host_raw[i][2] ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0,
			.eax = pvm_host_raw[i][3], .ebx = pvm_host_raw[i][4],
			.ecx = pvm_host_raw[i][5], .edx = pvm_host_raw[i][6],
		};
	return c;
}

#endif
