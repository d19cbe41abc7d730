/* CPL3: run_user() runs a function in ring 3 that checks CS.RPL == 3 and
 * does 100 million steps of a 64-bit LCG (native speed at CPL3), whose final
 * state and running sum the kernel knows in closed form (jump-ahead by
 * squaring the affine map). Privileged instructions (cli, hlt, port I/O),
 * int3 and a load from an unmapped page at CPL3 must come back from
 * run_user as the right exception, and run_user must work again after. */
#include "kit.h"

#define LCG_A 6364136223846793005ull
#define LCG_C 1442695040888963407ull
#define BIG_N 100000000ull

struct lcg_job {
	uint64_t n, seed;
	uint64_t x, sum;    /* out */
	uint16_t cs;        /* out */
};

static long lcg_user(void *arg)
{
	struct lcg_job *j = arg;
	j->cs = read_cs();
	if ((j->cs & 3) != 3)
		return -1;
	uint64_t x = j->seed, sum = 0;
	for (uint64_t i = 0; i < j->n; i++) {
		x = x * LCG_A + LCG_C;
		sum += x;
	}
	j->x = x;
	j->sum = sum;
	return 42;
}

/* After k steps from x0: x_k = A x0 + C and sum_{i=1..k} x_i = P x0 + Q. */
struct lcg_jump { uint64_t a, c, p, q; };

static struct lcg_jump jump_compose(struct lcg_jump f, struct lcg_jump g)
{
	/* f's steps, then g's. */
	return (struct lcg_jump){
		.a = g.a * f.a,
		.c = g.a * f.c + g.c,
		.p = f.p + g.p * f.a,
		.q = f.q + g.p * f.c + g.q,
	};
}

static void lcg_closed_form(uint64_t n, uint64_t seed, uint64_t *x, uint64_t *sum)
{
	struct lcg_jump r = { 1, 0, 0, 0 }, b = { LCG_A, LCG_C, LCG_A, LCG_C };
	for (; n; n >>= 1) {
		if (n & 1)
			r = jump_compose(r, b);
		b = jump_compose(b, b);
	}
	*x = r.a * seed + r.c;
	*sum = r.p * seed + r.q;
}

static long do_cli(void *arg) { __asm__ volatile("cli"); return 0; }
static long do_hlt(void *arg) { __asm__ volatile("hlt"); return 0; }
static long do_outb(void *arg) { outb(0x80, 1); return 0; }
static long do_load(void *arg) { return *(volatile long *)arg; }
extern const char user_bp_after[];
static long do_int3(void *arg)
{
	__asm__ volatile("int3\n.globl user_bp_after\nuser_bp_after: nop" ::: "memory");
	return 0;
}

static void expect_fault(const char *what, long (*fn)(void *), void *arg, int vector, uint64_t error)
{
	long r = run_user(fn, arg);
	const struct exc_info *f = run_user_fault();
	report(run_user_faulted(r) && run_user_vector(r) == vector && f->vector == vector,
	       "%s at CPL3 raises %s (run_user returned %#lx)", what, exc_name(vector), (unsigned long)r);
	report(f->error == error && (f->cs & 3) == 3, "%s: error code %#lx, cs %#lx", what,
	       (unsigned long)f->error, (unsigned long)f->cs);
}

void kmain(void)
{
	/* Small run: CPL0 loop, CPL3 loop and closed form agree. */
	struct lcg_job small = { .n = 1000, .seed = 12345 };
	uint64_t kx = small.seed, ksum = 0, fx, fsum;
	for (uint64_t i = 0; i < small.n; i++) {
		kx = kx * LCG_A + LCG_C;
		ksum += kx;
	}
	lcg_closed_form(small.n, small.seed, &fx, &fsum);
	report(kx == fx && ksum == fsum, "closed form matches a CPL0 loop for n=1000");
	long r = run_user(lcg_user, &small);
	report(r == 42, "run_user returned %ld", r);
	report((small.cs & 3) == 3, "user code ran with CS %#x (RPL 3)", small.cs);
	report(small.x == kx && small.sum == ksum, "CPL3 result matches for n=1000");

	struct lcg_job big = { .n = BIG_N, .seed = 0x243f6a8885a308d3ull };
	uint64_t t0 = rdtsc();
	r = run_user(lcg_user, &big);
	uint64_t cycles = rdtsc() - t0;
	lcg_closed_form(big.n, big.seed, &fx, &fsum);
	report(r == 42, "run_user of %llu LCG steps returned %ld (%lu ms)", BIG_N, r,
	       (unsigned long)(cycles / (tsc_hz() / 1000)));
	report(big.x == fx, "LCG state %#lx == closed form %#lx", (unsigned long)big.x, (unsigned long)fx);
	report(big.sum == fsum, "LCG sum %#lx == closed form %#lx", (unsigned long)big.sum,
	       (unsigned long)fsum);

	expect_fault("cli", do_cli, NULL, 13, 0);
	expect_fault("hlt", do_hlt, NULL, 13, 0);
	expect_fault("outb", do_outb, NULL, 13, 0);
	uint64_t bad = unmapped_addr() + 0x40;
	expect_fault("int3", do_int3, NULL, 3, 0);
	report(run_user_fault()->rip == (uintptr_t)user_bp_after, "#BP RIP %#lx is after the int3 (%p)",
	       (unsigned long)run_user_fault()->rip, user_bp_after);
	expect_fault("load from an unmapped page", do_load, (void *)bad, 14, 4 /* user, read, not present */);
	report(run_user_fault()->cr2 == bad, "CPL3 #PF CR2 %#lx", (unsigned long)run_user_fault()->cr2);

	small.x = small.sum = 0;
	r = run_user(lcg_user, &small);
	report(r == 42 && small.x == kx, "run_user works again after faults");
}
