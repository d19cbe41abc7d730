/* CPU identity, spinlocks, barriers and TSC time. A CPU's index is derived
 * from its stack pointer (each CPU runs on its own block of kit_stacks, or on
 * its own user stack), so it works before any per-CPU register is set up and
 * at CPL3. */
#include "kit_internal.h"

extern uint8_t kit_user_stacks[KIT_MAX_CPUS][KIT_USER_STACK_SIZE];
volatile long kit_online;
static uint64_t tsc0, hz;

int smp_id(void)
{
	uintptr_t sp = read_rsp();
	uintptr_t k = (uintptr_t)kit_stacks, u = (uintptr_t)kit_user_stacks;
	if (sp - k < sizeof(kit_stacks))
		return (int)((sp - k) / KIT_STACK_SIZE);
	if (sp - u < sizeof(kit_user_stacks))
		return (int)((sp - u) / KIT_USER_STACK_SIZE);
	return 0;
}

int smp_cpus(void)
{
	int n = acpi_cpu_count();
	return n > 0 ? n : 1;
}

int smp_online(void) { return (int)kit_online; }

bool smp_wait_online(int n, uint64_t timeout_ms)
{
	return wait_until_ge(&kit_online, n, timeout_ms);
}

void spin_lock(struct spinlock *l)
{
	while (atomic_xchg(&l->v, 1))
		while (l->v)
			cpu_relax();
}

void spin_unlock(struct spinlock *l)
{
	barrier();
	l->v = 0;
}

bool barrier_wait(struct smp_barrier *b, int n, uint64_t timeout_ms)
{
	long gen = b->gen;
	if (atomic_inc(&b->count) == n) {
		b->count = 0;
		barrier();
		atomic_inc(&b->gen);
		return true;
	}
	uint64_t start = rdtsc(), limit = timeout_ms * (tsc_hz() / 1000);
	while (b->gen == gen) {
		if (rdtsc() - start > limit)
			return false;
		cpu_relax();
	}
	return true;
}

bool wait_until_ge(const volatile long *p, long n, uint64_t timeout_ms)
{
	uint64_t start = rdtsc(), limit = timeout_ms * (tsc_hz() / 1000);
	while (*p < n) {
		if (rdtsc() - start > limit)
			return *p >= n;
		cpu_relax();
	}
	return true;
}

void smp_init_time(void)
{
	tsc0 = rdtsc();
	uint32_t max = cpuid(0).eax;
	if (max >= 0x15) {
		struct cpuid_regs r = cpuid(0x15);
		if (r.eax && r.ebx && r.ecx)
			hz = (uint64_t)r.ecx * r.ebx / r.eax;
	}
	if (!hz && max >= 0x16)
		hz = (uint64_t)(cpuid(0x16).eax & 0xffff) * 1000000;
	if (!hz && (cpuid(1).ecx & (1u << 31)) && cpuid(0x40000000).eax >= 0x40000010)
		hz = (uint64_t)cpuid(0x40000010).eax * 1000;
}

static uint32_t pm_tmr_read(void) { return inl(acpi_pm_tmr_port()); }

/* Channel 0 counts down; inverted, it counts up like the PM timer. */
static uint32_t pit_read(void)
{
	outb(0x43, 0x00);                       /* latch channel 0 */
	uint32_t lo = inb(0x40);
	return ~(lo | (uint32_t)inb(0x40) << 8);
}

/* TSC cycles over `want` ticks of a counter (mask: its width) at ref_hz,
 * scaled to Hz; 0 when the counter does not move (no such timer). */
static uint64_t measure(uint32_t (*read)(void), uint32_t mask, uint32_t want, uint64_t ref_hz)
{
	uint32_t t0 = read() & mask;
	uint64_t c0 = rdtsc();
	for (unsigned i = 0; i < 100000; i++) {
		uint32_t d = (read() - t0) & mask;
		if (d >= want)
			return (rdtsc() - c0) * ref_hz / d;
		if (i == 1000 && d == 0)
			break;
	}
	return 0;
}

/* Without a frequency from CPUID (AMD hosts, QEMU without invtsc): ~10 ms
 * of the ACPI PM timer, else of PIT channel 0 (QEMU's microvm has no PM
 * timer). The PIT is left counting; its IRQ 0 is masked (PIC/IOAPIC). */
void smp_calibrate_tsc(void)
{
	if (hz)
		return;
	hz = measure(pm_tmr_read, 0xffffff, ACPI_PM_TMR_HZ / 100, ACPI_PM_TMR_HZ);
	if (!hz) {
		outb(0x43, 0x34);                /* channel 0, lo/hi, mode 2 */
		outb(0x40, 0xff);
		outb(0x40, 0xff);
		hz = measure(pit_read, 0xffff, 11932, 1193182);
	}
}

uint64_t tsc_hz(void) { return hz ? hz : 2000000000ull; }
uint64_t uptime_ms(void) { return (rdtsc() - tsc0) / (tsc_hz() / 1000); }

void mdelay(uint64_t ms)
{
	uint64_t start = rdtsc(), limit = ms * (tsc_hz() / 1000);
	while (rdtsc() - start < limit)
		cpu_relax();
}
