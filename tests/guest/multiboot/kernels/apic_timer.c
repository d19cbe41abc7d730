/* The LAPIC timer in its three modes: one-shot, periodic and TSC-deadline,
 * each firing in its expected window (never early; late by at most a
 * generous slack, since guest kernel code may be emulated). KVM's LAPIC
 * timer counts at 1 GHz with divide-by-1. */
#include "kit.h"

#define VEC 0x40
#define SLACK_NS 200000000ull     /* 200 ms */

static volatile int fired;
static volatile uint64_t fire_tsc[8];

static void timer_irq(struct frame *f)
{
	if (fired < 8)
		fire_tsc[fired] = rdtsc();
	fired++;
	apic_write(APIC_EOI, 0);
}

/* sti; hlt until n interrupts came or the timeout passed. */
static void wait_fired(int n, uint64_t timeout_ns)
{
	uint64_t end = rdtsc() + timeout_ns / 1000 * tsc_khz() / 1000;
	while (fired < n && rdtsc() < end)
		asm volatile("sti; hlt; cli");
	asm volatile("cli");
}

static void one_shot(void)
{
	const uint64_t ns = 10000000;    /* 10 ms */
	fired = 0;
	apic_write(APIC_TDCR, 0xb);      /* divide by 1 */
	apic_write(APIC_LVTT, VEC);      /* one-shot */
	uint64_t t0 = rdtsc();
	apic_write(APIC_TMICT, (uint32_t)ns);
	wait_fired(1, ns + SLACK_NS);
	uint64_t took = fired ? tsc_to_ns(fire_tsc[0] - t0) : 0;
	report(fired == 1, "one-shot: fired once (%d)", fired);
	report(fired && took >= ns * 9 / 10 && took <= ns + SLACK_NS,
	       "one-shot: 10 ms timer fired after %u us", (uint32_t)(took / 1000));
	udelay(20000);
	report(fired == 1, "one-shot: did not fire again (%d)", fired);
	report(apic_read(APIC_TMCCT) == 0, "one-shot: current count is 0 after expiry");
}

static void periodic(void)
{
	const uint64_t ns = 5000000;     /* 5 ms */
	fired = 0;
	apic_write(APIC_LVTT, VEC | (1 << 17));
	uint64_t t0 = rdtsc();
	apic_write(APIC_TMICT, (uint32_t)ns);
	wait_fired(5, 5 * ns + SLACK_NS);
	apic_write(APIC_TMICT, 0);       /* stop */
	uint64_t took = fired >= 5 ? tsc_to_ns(fire_tsc[4] - t0) : 0;
	report(fired >= 5, "periodic: fired %d times", fired);
	report(fired >= 5 && took >= 5 * ns * 9 / 10 && took <= 5 * ns + SLACK_NS,
	       "periodic: 5 periods of 5 ms took %u us", (uint32_t)(took / 1000));
}

static void tsc_deadline(void)
{
	if (!(cpuid(1, 0).c & (1u << 24))) {
		report_skip("TSC-deadline: not in CPUID");
		return;
	}
	fired = 0;
	apic_write(APIC_LVTT, VEC | (2 << 17));
	uint64_t deadline = rdtsc() + 10000 * tsc_khz() / 1000;   /* 10 ms */
	int v = wrmsr_safe(MSR_TSC_DEADLINE, deadline);
	report(v == -1, "TSC-deadline: the MSR is writable (vector %d)", v);
	wait_fired(1, 10000000 + SLACK_NS);
	report(fired == 1, "TSC-deadline: fired once (%d)", fired);
	report(fired && fire_tsc[0] >= deadline, "TSC-deadline: not before the deadline");
	report(fired && tsc_to_ns(fire_tsc[0] - deadline) <= SLACK_NS, "TSC-deadline: %u us after the deadline",
	       fired ? (uint32_t)(tsc_to_ns(fire_tsc[0] - deadline) / 1000) : 0);
	uint64_t after;
	rdmsr_safe(MSR_TSC_DEADLINE, &after);
	report(after == 0, "TSC-deadline: the MSR reads 0 once it fired");
	apic_write(APIC_LVTT, 1 << 16);  /* masked */
}

int kmain(int argc, char **argv)
{
	set_irq_handler(VEC, timer_irq);
	apic_write(APIC_SVR, 0x1ff);     /* software enable, spurious vector 0xff */
	printf("TSC: %u kHz\n", (uint32_t)tsc_khz());
	one_shot();
	periodic();
	tsc_deadline();
	return report_summary();
}
