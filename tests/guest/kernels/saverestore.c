/* Save/restore across a running guest (with `ember run
 * --test-save-restore-after MS`): a long CPL3 computation with a known
 * result (an LCG, closed form as in user.c) runs while the x2APIC timer
 * counts every millisecond (run_user() runs with IF=0, so no tick is taken
 * during it); the VM is paused, saved, restored into a fresh VM and
 * resumed in the middle of it. Afterwards the result must match, the
 * timer must still be armed, and, with interrupts on, ticks must arrive. */
#include "kit.h"

#define LCG_A 6364136223846793005ull
#define LCG_C 1442695040888963407ull
#define TIMER_VECTOR 0x40

#define MSR_APIC_BASE 0x1b
#define X2APIC_EOI    0x80b
#define X2APIC_SVR    0x80f
#define X2APIC_IRR0   0x810
#define X2APIC_LVTT   0x832
#define X2APIC_TMICT  0x838
#define X2APIC_TMCCT  0x839
#define X2APIC_TDCR   0x83e

struct job { uint64_t n, seed, x, sum; };

static long lcg_user(void *arg)
{
	struct job *j = arg;
	uint64_t x = j->seed, sum = 0;
	for (uint64_t i = 0; i < j->n; i++) {
		x = x * LCG_A + LCG_C;
		sum += x;
	}
	j->x = x;
	j->sum = sum;
	return 7;
}

struct jump { uint64_t a, c, p, q; };

static struct jump compose(struct jump f, struct jump g)
{
	return (struct jump){ g.a * f.a, g.a * f.c + g.c, f.p + g.p * f.a, f.q + g.p * f.c + g.q };
}

static void closed_form(uint64_t n, uint64_t seed, uint64_t *x, uint64_t *sum)
{
	struct jump r = { 1, 0, 0, 0 }, b = { LCG_A, LCG_C, LCG_A, LCG_C };
	for (; n; n >>= 1) {
		if (n & 1)
			r = compose(r, b);
		b = compose(b, b);
	}
	*x = r.a * seed + r.c;
	*sum = r.p * seed + r.q;
}

volatile long ticks;

/* The timer handler: count, EOI. Called from timer_stub below. */
void timer_tick(void);
void timer_tick(void)
{
	ticks++;
	wrmsr(X2APIC_EOI, 0);
}

__asm__(".text\n"
	".globl timer_stub\n"
	"timer_stub:\n"
	"  push %rax; push %rcx; push %rdx; push %rsi; push %rdi\n"
	"  push %r8; push %r9; push %r10; push %r11\n"
	"  cld\n"
	"  call timer_tick\n"
	"  pop %r11; pop %r10; pop %r9; pop %r8\n"
	"  pop %rdi; pop %rsi; pop %rdx; pop %rcx; pop %rax\n"
	"  iretq\n");
extern char timer_stub[];

struct __attribute__((packed)) idtr { uint16_t limit; uint64_t base; };

/* Adds an interrupt gate to the kit's IDT (sidt finds it). */
static void set_timer_gate(void)
{
	struct idtr i;
	__asm__ volatile("sidt %0" : "=m"(i));
	uint8_t *g = (uint8_t *)(uintptr_t)i.base + 16 * TIMER_VECTOR;
	uint64_t a = (uintptr_t)timer_stub;
	uint16_t cs = KERNEL_CS;
	memset(g, 0, 16);
	memcpy(g, &a, 2);
	memcpy(g + 2, &cs, 2);
	g[5] = 0x8e;                         /* present, DPL0, 64-bit interrupt gate */
	uint16_t mid = (uint16_t)(a >> 16);
	uint32_t hi = (uint32_t)(a >> 32);
	memcpy(g + 6, &mid, 2);
	memcpy(g + 8, &hi, 4);
}

void kmain(void)
{
	uint64_t n = 1000000000ull;
	cmdline_get_u64("steps", &n);
	set_timer_gate();
	/* x2APIC on, software-enabled, a 1 ms periodic timer (KVM's APIC
	 * timer counts at 1 GHz: divide by 16, 62500 counts). */
	wrmsr(MSR_APIC_BASE, rdmsr(MSR_APIC_BASE) | (1ull << 10) | (1ull << 11));
	wrmsr(X2APIC_SVR, 0x1ff);
	wrmsr(X2APIC_TDCR, 0x3);
	wrmsr(X2APIC_LVTT, (1u << 17) | TIMER_VECTOR);
	wrmsr(X2APIC_TMICT, 62500);

	struct job j = { .n = n, .seed = 12345 };
	printf("# saverestore: %lu LCG steps at CPL3 begin at %lu ms\n", (unsigned long)n,
	       (unsigned long)uptime_ms());
	uint64_t t0 = uptime_ms();
	long r = run_user(lcg_user, &j);
	uint64_t t1 = uptime_ms();
	printf("# saverestore: CPL3 computation took %lu ms\n", (unsigned long)(t1 - t0));
	uint64_t x, sum;
	closed_form(n, j.seed, &x, &sum);
	report(r == 7, "run_user returned 7 (%ld)", r);
	report(j.x == x && j.sum == sum, "LCG result %#lx/%#lx matches the closed form %#lx/%#lx",
	       (unsigned long)j.x, (unsigned long)j.sum, (unsigned long)x, (unsigned long)sum);
	uint64_t lvtt = rdmsr(X2APIC_LVTT), tmcct = rdmsr(X2APIC_TMCCT);
	printf("# saverestore: IRR[64..95] %#lx LVTT %#lx TMCCT %#lx\n", (unsigned long)rdmsr(X2APIC_IRR0 + 2),
	       (unsigned long)lvtt, (unsigned long)tmcct);
	report(lvtt == ((1u << 17) | TIMER_VECTOR) && rdmsr(X2APIC_TMICT) == 62500 && tmcct && tmcct <= 62500,
	       "the periodic timer is still armed after the CPL3 computation");
	report(ticks == 0, "no tick was delivered with IF=0 (%ld)", (long)ticks);

	sti();
	uint64_t until = uptime_ms() + 5000;
	while (ticks < 20 && uptime_ms() < until)
		hlt();
	cli();
	report(ticks >= 20, "%ld timer ticks arrived with interrupts on", (long)ticks);
	wrmsr(X2APIC_TMICT, 0);
}
