/* Kit-private declarations shared by the lib/ sources. Kernels use kit.h only. */
#ifndef KIT_INTERNAL_H
#define KIT_INTERNAL_H

#include "kit.h"

struct tss {
	uint32_t reserved0;
	uint64_t rsp0, rsp1, rsp2;
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iopb;
} __attribute__((packed));

struct kit_jmp_buf {
	uint64_t rbx, rbp, r12, r13, r14, r15, rsp, rip;
};

struct catch_frame {
	struct kit_jmp_buf jb;
	struct exc_info *info;
	struct catch_frame *prev;
};

struct percpu {
	int id;
	uint32_t apic_id;
	struct tss tss __attribute__((aligned(16)));
	exc_hook_t hook;
	struct catch_frame *catch_top;
	/* run_user */
	uint64_t user_kernel_rsp;     /* kernel rsp saved by kit_user_enter */
	int user_active;
	struct exc_info user_fault;
	/* console lock recursion */
	int console_depth;
} __attribute__((aligned(64)));

extern struct percpu kit_percpu[KIT_MAX_CPUS];
extern uint8_t kit_stacks[KIT_MAX_CPUS][KIT_STACK_SIZE];
extern uint8_t __kernel_start[], __kernel_end[];

static inline struct percpu *this_cpu(void) { return &kit_percpu[smp_id()]; }

/* Entry/exit helpers in isr.S. */
int kit_setjmp(struct kit_jmp_buf *jb) __attribute__((returns_twice));
noreturn void kit_longjmp(struct kit_jmp_buf *jb, int val);
long kit_user_enter(long (*fn)(void *), void *arg, uint64_t user_rsp,
		    uint64_t *saved_rsp, uint64_t *tss_rsp0);
noreturn void kit_user_resume(uint64_t saved_rsp, long value);
extern const uint64_t kit_exc_stubs[32];
void kit_user_return_stub(void);
extern const char kit_user_int[];

/* Setup steps, called by start.c. */
void boot_init(uint64_t boot_params);
void acpi_init(void);
void desc_init_bsp(void);
void desc_init_cpu(int cpu);
void paging_init(void);
void paging_load(void);
void smp_init_time(void);
void smp_calibrate_tsc(void);         /* after acpi_init, when CPUID had no frequency */
/* multiboot.c: set when booted by multiboot; the APs then need INIT/SIPI. */
extern uint64_t kit_mb_zero_page;
void kit_mb_start_aps(void);

#define KIT_USER_VECTOR 0x80

/* RFLAGS for run_user code (0x2; 0x202 lets interrupts in at CPL3). */
extern uint64_t kit_user_rflags;

#endif
