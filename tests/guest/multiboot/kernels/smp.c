/* INIT/SIPI bring-up of every vCPU: the BSP starts the APs in real mode at
 * 0000:0000 (SIPI vector 0); every vCPU the firmware reports (fw_cfg and the
 * ACPI MADT) must come up, each with its own APIC ID. */
#include "kit.h"

static volatile uint32_t apic_ids[MAX_CPUS], cpuid_ids[MAX_CPUS];
static volatile int seen;

static void ap(int index)
{
	apic_ids[index] = apic_read(APIC_ID) >> 24;
	cpuid_ids[index] = cpuid(1, 0).b >> 24;
	__atomic_add_fetch(&seen, 1, __ATOMIC_SEQ_CST);
}

int kmain(int argc, char **argv)
{
	int n = fwcfg_read16(0x05);
	int madt = acpi_madt_cpus();
	report(n >= 1 && n <= MAX_CPUS, "fw_cfg reports %d vCPUs", n);
	report(madt == n, "the MADT lists the same number of CPUs (%d)", madt);
	uint64_t base;
	rdmsr_safe(MSR_APIC_BASE, &base);
	report((base & 0xfffff000) == LAPIC_BASE && (base & 0x100), "BSP: APIC base 0x%x with the BSP flag",
	       (uint32_t)base);
	apic_write(APIC_SVR, 0x1ff);
	apic_ids[0] = apic_read(APIC_ID) >> 24;
	cpuid_ids[0] = cpuid(1, 0).b >> 24;
	int up = 1 + smp_start_aps(ap, n - 1, 5000);
	while (seen < up - 1)
		pause();
	report(up == n, "all %d vCPUs came up after INIT/SIPI (%d did)", n, up);
	bool ids_ok = true;
	uint64_t mask = 0;
	for (int i = 0; i < up; i++) {
		if (apic_ids[i] != cpuid_ids[i] || apic_ids[i] >= 64 || (mask & (1ull << apic_ids[i])))
			ids_ok = false;
		mask |= 1ull << (apic_ids[i] & 63);
	}
	report(ids_ok, "APIC IDs are distinct and match CPUID.1:EBX[31:24] on every vCPU");
	report(mask == (n >= 64 ? ~0ull : (1ull << n) - 1), "APIC IDs are 0..%d", n - 1);
	return report_summary();
}
