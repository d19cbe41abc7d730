/* Exceptions: #UD (at the global label ud2_here, whose printed RIP the
 * integration test compares with nm), #DE, #GP, #PF on an unmapped page and
 * #BP, each caught through catch_exception() with its vector, RIP (and
 * error code / CR2) checked; then an exception hook that resumes after
 * a ud2. (No int3 here: kvm_pvm cannot emulate it at CPL0; user.c tests
 * #BP at CPL3.) */
#include "kit.h"

extern const char ud2_here[], de_here[], gp_here[], pf_here[], ud2_resume_here[];

static __attribute__((noinline, noclone)) void do_ud2(void *arg)
{
	__asm__ volatile(".globl ud2_here\nud2_here: ud2" ::: "memory");
}

static __attribute__((noinline, noclone)) void do_de(void *arg)
{
	__asm__ volatile("xor %%edx, %%edx\n\tmov $1, %%eax\n\txor %%ecx, %%ecx\n"
			 ".globl de_here\nde_here: divl %%ecx" ::: "rax", "rcx", "rdx", "memory");
}

static __attribute__((noinline, noclone)) void do_gp(void *arg)
{
	/* A non-canonical address: #GP(0). */
	__asm__ volatile("movabs $0x8000000000000000, %%rax\n"
			 ".globl gp_here\ngp_here: movq (%%rax), %%rax" ::: "rax", "memory");
}

static __attribute__((noinline, noclone)) void do_pf(void *arg)
{
	uint64_t addr = *(uint64_t *)arg;
	__asm__ volatile(".globl pf_here\npf_here: movq (%0), %0" : "+r"(addr) : : "memory");
}

static void nested(void *arg)
{
	*(int *)arg = catch_exception(do_de, NULL, NULL);
	do_ud2(NULL);
}

static volatile int hook_calls;

static bool skip_ud2(struct exc_frame *f)
{
	if (f->vector != 6 || f->rip != (uintptr_t)ud2_resume_here)
		return false;
	hook_calls++;
	f->rip += 2;                 /* ud2 is 0f 0b */
	return true;
}

static void check(const char *what, void (*fn)(void *), void *arg, int vector, const void *rip,
		  struct exc_info *out)
{
	struct exc_info info = { .vector = -1 };
	int v = catch_exception(fn, arg, &info);
	report(v == vector && info.vector == vector, "%s raises vector %d (got %d)", what, vector, v);
	report(info.rip == (uintptr_t)rip, "%s RIP %#lx == %p", what, (unsigned long)info.rip, rip);
	report(info.cs == KERNEL_CS, "%s CS %#lx", what, (unsigned long)info.cs);
	if (out)
		*out = info;
}

void kmain(void)
{
	struct exc_info info;
	check("ud2", do_ud2, NULL, 6, ud2_here, NULL);
	check("div by zero", do_de, NULL, 0, de_here, NULL);
	check("non-canonical load", do_gp, NULL, 13, gp_here, &info);
	report(info.error == 0, "#GP error code 0 (%#lx)", (unsigned long)info.error);

	uint64_t addr = unmapped_addr();
	printf("# exception: unmapped address %#lx (RAM top %#lx)\n", (unsigned long)addr,
	       (unsigned long)e820_ram_top());
	report(addr && !is_mapped(addr), "found an unmapped address");
	addr += 0x1238;
	check("load from unmapped page", do_pf, &addr, 14, pf_here, &info);
	report(info.cr2 == addr, "#PF CR2 %#lx == %#lx", (unsigned long)info.cr2, (unsigned long)addr);
	report((info.error & 7) == 0, "#PF error code %#lx: not-present read at CPL0",
	       (unsigned long)info.error);

	/* Nesting: a caught function that catches an exception itself first. */
	int inner = -2;
	int outer = catch_exception(nested, &inner, NULL);
	report(inner == 0 && outer == 6, "nested catch_exception: inner %d, outer %d", inner, outer);

	exc_set_hook(skip_ud2);
	__asm__ volatile(".globl ud2_resume_here\nud2_resume_here: ud2" ::: "memory");
	exc_set_hook(NULL);
	report(hook_calls == 1, "hook resumed after ud2 (%d call)", hook_calls);
}
