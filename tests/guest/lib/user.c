/* run_user(): call a function at CPL3 on this CPU's user stack. The way in
 * is an iretq (kit_user_enter), the way back the DPL3 gate at vector 0x80
 * (kit_user_return_stub) or, on an exception at CPL3, exc_dispatch; both end
 * in kit_user_resume, which restores the kernel stack saved on entry. */
#include "kit_internal.h"

uint8_t kit_user_stacks[KIT_MAX_CPUS][KIT_USER_STACK_SIZE] __attribute__((aligned(4096)));

long run_user(long (*fn)(void *), void *arg)
{
	struct percpu *pc = this_cpu();
	int cpu = pc->id;
	if (pc->user_active)
		return RUN_USER_EXC(255);          /* no nesting */
	memset(&pc->user_fault, 0, sizeof(pc->user_fault));
	pc->user_fault.vector = -1;
	pc->user_active = 1;
	/* TSS.RSP0 sits at offset 4 (unaligned, which x86 does not mind). */
	uint64_t *rsp0 = (uint64_t *)((uint8_t *)&pc->tss + __builtin_offsetof(struct tss, rsp0));
	long r = kit_user_enter(fn, arg, (uintptr_t)kit_user_stacks[cpu + 1], &pc->user_kernel_rsp, rsp0);
	pc->user_active = 0;
	return r;
}

noreturn void kit_user_return(long value);
noreturn void kit_user_return(long value)
{
	struct percpu *pc = this_cpu();
	pc->user_active = 0;
	kit_user_resume(pc->user_kernel_rsp, value);
}

const struct exc_info *run_user_fault(void)
{
	return &this_cpu()->user_fault;
}

/* RFLAGS run_user code starts with. irq_wait (pci.c) sets IF for a while:
 * kvm_pvm injects interrupts only while the guest runs natively at CPL3,
 * never into emulated CPL0 code. */
uint64_t kit_user_rflags = 0x2;

long run_user_irq(long (*fn)(void *), void *arg)
{
	kit_user_rflags = 0x202;
	long r = run_user(fn, arg);
	kit_user_rflags = 0x2;
	return r;
}
