/* The kit's GDT (kernel and DPL3 user segments, one TSS per CPU), IDT (the
 * 32 exception vectors plus the DPL3 run_user return gate) and exception
 * handling: per-CPU hooks, catch_exception() and the default report. */
#include "kit_internal.h"

#define GDT_FIXED 6                               /* null, unused, kcode, kdata, udata, ucode */
#define GDT_ENTRIES (GDT_FIXED + 2 * KIT_MAX_CPUS) /* + a 16-byte TSS descriptor per CPU */
#define IDT_ENTRIES 256

static uint64_t gdt[GDT_ENTRIES] __attribute__((aligned(16))) = {
	[0] = 0,
	[1] = 0,
	[2] = 0x00af9b000000ffffull,   /* 0x10 kernel code: 64-bit, DPL0 */
	[3] = 0x00cf93000000ffffull,   /* 0x18 kernel data */
	[4] = 0x00cff3000000ffffull,   /* 0x20 user data, DPL3 (selector 0x23) */
	[5] = 0x00affb000000ffffull,   /* 0x28 user code: 64-bit, DPL3 (selector 0x2b) */
};

struct gate {
	uint16_t off0, sel;
	uint8_t ist, type;
	uint16_t off1;
	uint32_t off2, reserved;
} __attribute__((packed));

static struct gate idt[IDT_ENTRIES] __attribute__((aligned(16)));

struct __attribute__((packed)) dtr {
	uint16_t limit;
	uint64_t base;
};

uint8_t kit_stacks[KIT_MAX_CPUS][KIT_STACK_SIZE] __attribute__((aligned(4096)));
struct percpu kit_percpu[KIT_MAX_CPUS];

static void set_gate(int vec, void (*handler)(void), int dpl, int ist)
{
	uint64_t a = (uintptr_t)handler;
	idt[vec] = (struct gate){
		.off0 = (uint16_t)a, .sel = KERNEL_CS, .ist = (uint8_t)ist,
		.type = (uint8_t)(0x8e | (dpl << 5)),   /* present, 64-bit interrupt gate */
		.off1 = (uint16_t)(a >> 16), .off2 = (uint32_t)(a >> 32),
	};
}

void idt_set_gate(int vector, void (*handler)(void))
{
	if (vector >= 32 && vector < IDT_ENTRIES)
		set_gate(vector, handler, 0, 0);
}

void desc_init_bsp(void)
{
	for (int v = 0; v < 32; v++) {
		/* #DF, NMI and #MC on IST1: they must work even with a bad stack. */
		int ist = (v == 8 || v == 2 || v == 18) ? 1 : 0;
		/* int3 is a software interrupt: its gate's DPL is checked, so
		 * CPL3 code gets #BP only through a DPL3 gate (#GP otherwise,
		 * as SVM shows; kvm_pvm let it through). */
		int dpl = v == 3 ? 3 : 0;
		set_gate(v, (void (*)(void))kit_exc_stubs[v], dpl, ist);
	}
	set_gate(KIT_USER_VECTOR, kit_user_return_stub, 3, 0);
	/* Load it at once (gates use selector 0x10, which Ember's boot GDT has
	 * too), so a fault while reading boot_params or ACPI gets reported. */
	struct dtr i = { sizeof(idt) - 1, (uintptr_t)idt };
	__asm__ volatile("lidt %0" : : "m"(i) : "memory");
}

void desc_init_cpu(int cpu)
{
	struct percpu *pc = &kit_percpu[cpu];
	pc->id = cpu;
	pc->tss.iopb = sizeof(struct tss);           /* no I/O bitmap: all ports #GP at CPL3 */
	pc->tss.rsp0 = (uintptr_t)kit_stacks[cpu + 1];
	pc->tss.ist[0] = (uintptr_t)kit_stacks[cpu] + KIT_IST_SIZE;
	uint64_t base = (uintptr_t)&pc->tss, limit = sizeof(struct tss) - 1;
	int slot = TSS_SEL(cpu) / 8;
	gdt[slot] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89ull << 40) |
		    ((limit >> 16) << 48) | (((base >> 24) & 0xff) << 56);
	gdt[slot + 1] = base >> 32;

	struct dtr g = { sizeof(gdt) - 1, (uintptr_t)gdt };
	struct dtr i = { sizeof(idt) - 1, (uintptr_t)idt };
	__asm__ volatile(
		"lgdt %0\n\t"
		"pushq %2\n\t"
		"leaq 1f(%%rip), %%rax\n\t"
		"pushq %%rax\n\t"
		"lretq\n"
		"1:\n\t"
		"movl %3, %%eax\n\t"
		"movl %%eax, %%ds\n\t"
		"movl %%eax, %%es\n\t"
		"movl %%eax, %%ss\n\t"
		"xorl %%eax, %%eax\n\t"
		"movl %%eax, %%fs\n\t"
		"movl %%eax, %%gs\n\t"
		"lidt %1\n\t"
		: : "m"(g), "m"(i), "i"(KERNEL_CS), "i"(KERNEL_DS) : "rax", "memory");
	__asm__ volatile("ltr %w0" : : "r"((uint16_t)TSS_SEL(cpu)));
}

static const char *const names[32] = {
	"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS", "#NP", "#SS", "#GP",
	"#PF", "#15", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "#22", "#23", "#24", "#25", "#26", "#27",
	"#HV", "#VC", "#SX", "#31",
};

const char *exc_name(int vector)
{
	return vector >= 0 && vector < 32 ? names[vector] : "#??";
}

void exc_print(const struct exc_frame *f, const char *note)
{
	console_lock();
	printf("EXCEPTION vector=%d error=%#x rip=%#lx cs=%#x", (int)f->vector, (unsigned)f->error,
	       (unsigned long)f->rip, (unsigned)f->cs);
	printf(" (%s cpu %d", exc_name((int)f->vector), smp_id());
	if (f->vector == 14)
		printf(" cr2=%#lx", (unsigned long)read_cr2());
	printf(")%s%s\n", note ? " " : "", note ? note : "");
	console_unlock();
}

static void fill_info(struct exc_info *info, const struct exc_frame *f)
{
	info->vector = (int)f->vector;
	info->error = f->error;
	info->rip = f->rip;
	info->cs = f->cs;
	info->rflags = f->rflags;
	info->rsp = f->rsp;
	info->cr2 = f->vector == 14 ? read_cr2() : 0;
}

static void dump_regs(const struct exc_frame *f)
{
	console_lock();
	printf("#  rax=%016lx rbx=%016lx rcx=%016lx rdx=%016lx\n", f->rax, f->rbx, f->rcx, f->rdx);
	printf("#  rsi=%016lx rdi=%016lx rbp=%016lx rsp=%016lx\n", f->rsi, f->rdi, f->rbp, f->rsp);
	printf("#  r8 =%016lx r9 =%016lx r10=%016lx r11=%016lx\n", f->r8, f->r9, f->r10, f->r11);
	printf("#  r12=%016lx r13=%016lx r14=%016lx r15=%016lx\n", f->r12, f->r13, f->r14, f->r15);
	printf("#  rflags=%#lx ss=%#lx cr2=%#lx cr3=%#lx\n", f->rflags, f->ss, read_cr2(), read_cr3());
	console_unlock();
}

void exc_dispatch(struct exc_frame *f);
void exc_dispatch(struct exc_frame *f)
{
	struct percpu *pc = this_cpu();
	if ((f->cs & 3) == 3) {
		if (pc->user_active && f->rip == (uintptr_t)kit_user_int && (f->vector == 6 || f->vector == 13)) {
			/* The return gate as a fault (see isr.S): fn's result in rax. */
			pc->user_active = 0;
			kit_user_resume(pc->user_kernel_rsp, (long)f->rax);
		}
		if (pc->user_active) {
			exc_print(f, "at CPL3 in run_user");
			fill_info(&pc->user_fault, f);
			pc->user_active = 0;
			kit_user_resume(pc->user_kernel_rsp, RUN_USER_EXC(f->vector));
		}
		exc_print(f, "at CPL3 outside run_user");
		dump_regs(f);
		report(false, "unexpected exception at CPL3");
		report_summary();
	}
	if (pc->hook && f->vector != 8 && pc->hook(f))
		return;
	struct catch_frame *c = pc->catch_top;
	if (c && f->vector != 8) {
		exc_print(f, "caught");
		if (c->info)
			fill_info(c->info, f);
		pc->catch_top = c->prev;
		kit_longjmp(&c->jb, (int)f->vector + 1);
	}
	exc_print(f, "unhandled");
	dump_regs(f);
	report(false, "unexpected exception %s on cpu %d", exc_name((int)f->vector), smp_id());
	report_summary();
}

exc_hook_t exc_set_hook(exc_hook_t hook)
{
	struct percpu *pc = this_cpu();
	exc_hook_t old = pc->hook;
	pc->hook = hook;
	return old;
}

int catch_exception(void (*fn)(void *), void *arg, struct exc_info *info)
{
	struct percpu *pc = this_cpu();
	struct catch_frame c = { .info = info, .prev = pc->catch_top };
	int r = kit_setjmp(&c.jb);
	if (r)
		return r - 1;           /* exc_dispatch already popped c */
	pc->catch_top = &c;
	barrier();
	fn(arg);
	barrier();
	pc->catch_top = c.prev;
	return -1;
}

struct msr_op { uint32_t msr; uint64_t val; };
static void do_rdmsr(void *arg) { struct msr_op *o = arg; o->val = rdmsr(o->msr); }
static void do_wrmsr(void *arg) { struct msr_op *o = arg; wrmsr(o->msr, o->val); }

int rdmsr_safe(uint32_t msr, uint64_t *val)
{
	struct msr_op o = { msr, 0 };
	int v = catch_exception(do_rdmsr, &o, NULL);
	*val = v < 0 ? o.val : 0;
	return v;
}

int wrmsr_safe(uint32_t msr, uint64_t val)
{
	struct msr_op o = { msr, val };
	return catch_exception(do_wrmsr, &o, NULL);
}
