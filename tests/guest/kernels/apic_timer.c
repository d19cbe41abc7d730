/* The LAPIC timer in its three modes: one-shot, periodic and TSC-deadline,
 * each firing in its expected window (never early; late by at most a
 * generous slack, since guest kernel code may be emulated). KVM's LAPIC
 * timer counts at 1 GHz with divide-by-1. */
#include "kit.h"

#define VEC 0x40
#define SLACK_NS 200000000ull     /* 200 ms */

struct interrupt_frame;
static volatile int fired;
static volatile uint64_t fire_tsc[8];

__attribute__((interrupt)) static void timer_irq(struct interrupt_frame *f)
{
	if (fired < 8)
		fire_tsc[fired] = rdtsc();
	fired++;
	apic_write(APIC_EOI, 0);
}

static uint64_t ns_to_tsc(uint64_t ns) { return ns * (tsc_hz() / 1000) / 1000000; }
static uint64_t tsc_to_ns(uint64_t c) { return c * 1000000 / (tsc_hz() / 1000); }

/* sti; hlt until n interrupts came or the timeout passed (kvm_pvm injects
 * into emulated CPL0 code when it halts). */
static void wait_fired(int n, uint64_t timeout_ns)
{
	uint64_t end = rdtsc() + ns_to_tsc(timeout_ns);
	while (fired < n && rdtsc() < end)
		__asm__ volatile("sti; hlt; cli" ::: "memory");
	cli();
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
	       "one-shot: 10 ms timer fired after %lu us", (unsigned long)(took / 1000));
	mdelay(20);
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
	       "periodic: 5 periods of 5 ms took %lu us", (unsigned long)(took / 1000));
}

static void tsc_deadline(void)
{
	if (!(cpuid(1).ecx & (1u << 24))) {
		report_skip("TSC-deadline: not in CPUID");
		return;
	}
	fired = 0;
	apic_write(APIC_LVTT, VEC | (2 << 17));
	uint64_t deadline = rdtsc() + ns_to_tsc(10000000);   /* 10 ms */
	int v = wrmsr_safe(MSR_TSC_DEADLINE, deadline);
	report(v == -1, "TSC-deadline: the MSR is writable (vector %d)", v);
	wait_fired(1, 10000000 + SLACK_NS);
	report(fired == 1, "TSC-deadline: fired once (%d)", fired);
	report(fired && fire_tsc[0] >= deadline, "TSC-deadline: not before the deadline");
	uint64_t late = fired ? tsc_to_ns(fire_tsc[0] - deadline) : 0;
	report(fired && late <= SLACK_NS, "TSC-deadline: %lu us after the deadline", (unsigned long)(late / 1000));
	uint64_t after;
	rdmsr_safe(MSR_TSC_DEADLINE, &after);
	report(after == 0, "TSC-deadline: the MSR reads 0 once it fired");
	apic_write(APIC_LVTT, 1 << 16);  /* masked */
}

void kmain(void)
{
	idt_set_gate(VEC, (void (*)(void))timer_irq);
	apic_write(APIC_SVR, 0x1ff);     /* software enable, spurious vector 0xff */
	printf("# TSC: %lu kHz\n", (unsigned long)(tsc_hz() / 1000));
	one_shot();
	periodic();
	tsc_deadline();
}
