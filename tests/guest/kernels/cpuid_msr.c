/* CPUID and MSRs as the guest sees them: the hypervisor and KVM leaves,
 * per-vCPU APIC IDs, and MSRs that exist exactly when their CPUID feature
 * does (the MSR_IA32_UMWAIT_CONTROL seed: no WAITPKG, no MSR). Prints
 * "x2apic on|off, tsc-deadline on|off" for tools/ember-qemu's test. */
#include "kit.h"

#define MSR_TSC            0x10
#define MSR_UMWAIT_CONTROL 0xe1
#define MSR_BOGUS          0x4b564dff   /* past KVM's PV MSRs: no such MSR */

static void msr_follows(const char *name, uint32_t msr, bool has)
{
	uint64_t v;
	int vec = rdmsr_safe(msr, &v);
	report(has ? vec == -1 : vec == 13, "%s (MSR %#x) %s (vector %d)", name, msr,
	       has ? "reads: CPUID has the feature" : "#GP: CPUID lacks the feature", vec);
}

void kmain(void)
{
	struct cpuid_regs l0 = cpuid(0), l1 = cpuid(1);
	report(l0.eax >= 1, "max basic leaf %u", l0.eax);
	report(l1.ecx & (1u << 31), "CPUID.1:ECX.hypervisor is set");
	struct cpuid_regs h = cpuid(0x40000000);
	char sig[13];
	memcpy(sig, &h.ebx, 4);
	memcpy(sig + 4, &h.ecx, 4);
	memcpy(sig + 8, &h.edx, 4);
	sig[12] = 0;
	report(!memcmp(sig, "KVMKVMKVM\0\0\0", 12), "leaf 0x40000000 is KVM's signature");
	report(h.eax >= 0x40000001, "KVM leaves go up to %#x", h.eax);
	report(cpuid(0x40000001).eax != 0, "KVM features leaf 0x40000001 is not empty");
	uint32_t id = apic_id();
	report((l1.ebx >> 24) == id, "CPUID.1:EBX[31:24] %u = LAPIC ID %u", l1.ebx >> 24, id);
	if (l0.eax >= 0xb)
		report(cpuid_count(0xb, 0).edx == id, "CPUID.0xB:EDX x2APIC ID = %u", cpuid_count(0xb, 0).edx);
	bool x2apic = l1.ecx & (1u << 21);
	printf("x2apic %s, tsc-deadline %s\n", x2apic ? "on" : "off", (l1.ecx & (1u << 24)) ? "on" : "off");

	msr_follows("IA32_TSC", MSR_TSC, l1.edx & (1u << 4));
	msr_follows("IA32_TSC_DEADLINE", MSR_TSC_DEADLINE, l1.ecx & (1u << 24));
	bool waitpkg = l0.eax >= 7 && (cpuid_count(7, 0).ecx & (1u << 5));
	msr_follows("UMWAIT_CONTROL", MSR_UMWAIT_CONTROL, waitpkg);
	uint64_t v;
	report(rdmsr_safe(MSR_BOGUS, &v) == 13, "an MSR that does not exist: #GP");
	report(wrmsr_safe(MSR_BOGUS, 1) == 13, "writing it: #GP");

	/* x2APIC: enabling it works only when CPUID offers it. Last: the
	 * xAPIC MMIO page is gone afterwards. */
	uint64_t base;
	rdmsr_safe(MSR_APIC_BASE, &base);
	int vec = wrmsr_safe(MSR_APIC_BASE, base | APIC_BASE_X2APIC);
	report(x2apic ? vec == -1 : vec == 13, "enabling x2APIC %s (vector %d)",
	       x2apic ? "works" : "is refused without CPUID.x2apic", vec);
	if (x2apic && vec == -1) {
		uint64_t x2id;
		report(rdmsr_safe(0x802, &x2id) == -1 && x2id == id, "x2APIC ID MSR 0x802 = %u", (uint32_t)x2id);
	}
}
