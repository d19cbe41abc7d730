/* SMP bring-up: every vCPU checks in (Ember starts them all at the entry
 * point of the .elf; in the .flat, booted by multiboot, the kit wakes them by
 * INIT/SIPI); the BSP waits, bounded, until as many CPUs checked in as the
 * MADT lists (and fw_cfg, when there is one), and checks that against cpus=N
 * from the command line when given. Each CPU
 * also runs code at CPL3 (its own TSS and user stack) and hammers a shared
 * counter with lock xadd there, and all meet at a barrier. */
#include "kit.h"

#define USER_ADDS 200000

static volatile long checked_in, done, shared_counter;
static volatile long seen_apic[KIT_MAX_CPUS];
static volatile long user_ok[KIT_MAX_CPUS];
static volatile long barrier_ok[KIT_MAX_CPUS];
static struct smp_barrier bar;

static long user_work(void *arg)
{
	long cpu = (long)arg;
	if ((read_cs() & 3) != 3)
		return -1;
	for (int i = 0; i < USER_ADDS; i++)
		atomic_inc(&shared_counter);
	return cpu * 1000 + 7;
}

static void cpu_work(int cpu)
{
	seen_apic[cpu] = (long)(cpuid(1).ebx >> 24) + 1;
	atomic_inc(&checked_in);
	user_ok[cpu] = run_user(user_work, (void *)(long)cpu) == cpu * 1000 + 7;
	barrier_ok[cpu] = barrier_wait(&bar, smp_cpus(), 10000);
	atomic_inc(&done);
}

void ap_main(int cpu)
{
	cpu_work(cpu);
}

void kmain(void)
{
	int madt = acpi_cpu_count();
	uint64_t want = 0;
	bool have_want = cmdline_get_u64("cpus", &want);
	printf("# smp: MADT lists %d CPUs, cmdline \"%s\"\n", madt, cmdline());

	const struct acpi_sdt *t = acpi_find_table("APIC", 0);
	report(t && acpi_checksum_ok(t, t->length), "MADT present with a valid checksum");
	t = acpi_find_table("FACP", 0);
	report(t && acpi_checksum_ok(t, t->length), "FADT present with a valid checksum");
	report(madt >= 1, "MADT lists at least one CPU (%d)", madt);
	if (fw_cfg_present())
		report(fw_cfg_read16(FW_CFG_NB_CPUS) == madt, "fw_cfg lists %u CPUs too",
		       fw_cfg_read16(FW_CFG_NB_CPUS));
	uint64_t base = rdmsr(MSR_APIC_BASE);
	report((base & ~0xfffull) == acpi_lapic_phys() && (base & APIC_BASE_BSP) && (base & APIC_BASE_ENABLE),
	       "BSP: APIC base %#lx, enabled, BSP flag", (unsigned long)base);

	cpu_work(0);
	bool all = wait_until_ge(&checked_in, madt, 10000);
	long n = checked_in;
	report(all && n == madt, "%ld CPUs checked in, MADT lists %d", n, madt);
	if (have_want)
		report(n == (long)want, "%ld CPUs checked in, cmdline cpus=%lu", n, (unsigned long)want);
	else
		report_skip("no cpus=N on the command line");
	report(smp_online() == n, "kit counted %d CPUs online", smp_online());

	bool done_all = wait_until_ge(&done, n, 10000);
	report(done_all, "%ld of %ld CPUs finished their work", (long)done, n);
	for (int i = 0; i < madt && i < KIT_MAX_CPUS; i++) {
		uint32_t id = acpi_cpu_apic_id(i);
		bool found = id < KIT_MAX_CPUS && seen_apic[id] == (long)id + 1;
		report(found, "MADT CPU %d (APIC ID %u) is running", i, id);
	}
	for (int i = 0; i < n && i < KIT_MAX_CPUS; i++) {
		report(user_ok[i], "cpu %d ran code at CPL3", i);
		report(barrier_ok[i], "cpu %d passed the barrier", i);
	}
	report(shared_counter == n * USER_ADDS, "shared counter %ld == %ld CPUs x %d lock xadd at CPL3",
	       (long)shared_counter, n, USER_ADDS);
}
