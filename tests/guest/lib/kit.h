/* The Ember guest kit: a freestanding runtime for Ember's bare-metal test
 * kernels. A kernel is one C file that includes this header and defines
 * kmain() (run on the BSP once the kit is set up) and optionally ap_main()
 * (run on every other vCPU). See tests/guest/README.md. */
#ifndef KIT_H
#define KIT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "x86.h"

#define KIT_MAX_CPUS        64
#define KIT_STACK_SIZE      (32 * 1024)   /* per-CPU kernel stack block */
#define KIT_IST_SIZE        (4 * 1024)    /* bottom of the block: #DF/NMI/#MC stack */
#define KIT_USER_STACK_SIZE (16 * 1024)   /* per-CPU stack for run_user() */

#define PAGE_SIZE  4096ul
#define LARGE_PAGE (2ul << 20)
#define KiB (1ull << 10)
#define MiB (1ull << 20)
#define GiB (1ull << 30)

/* The kit's GDT (same kernel selectors as Ember's boot GDT; the user/kernel
 * layout also fits syscall/sysret's STAR convention). */
#define KERNEL_CS  0x10
#define KERNEL_DS  0x18
#define USER_DS    0x23
#define USER_CS    0x2b
#define TSS_SEL(cpu) (0x30 + 16 * (cpu))

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define ALIGN_UP(x, a) (((x) + (a) - 1) & ~((__typeof__(x))(a) - 1))
#define ALIGN_DOWN(x, a) ((x) & ~((__typeof__(x))(a) - 1))
#define noreturn __attribute__((noreturn))
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))

/* ---- What a kernel defines --------------------------------------------- */
/* Runs on the BSP (CPU 0) after the kit is set up. Returning calls
 * report_summary(). */
void kmain(void);
/* Runs on each AP (CPU 1..N-1) after its setup. The kit's weak default
 * returns at once; on return the AP halts for good (IF=0). */
void ap_main(int cpu);

/* ---- string.c ------------------------------------------------------------ */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
size_t strnlen(const char *s, size_t max);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strchr(const char *s, int c);
/* Like strtoull (base 0: 0x/0 prefixes). */
unsigned long long strtoull(const char *s, char **end, int base);
/* A size: number (base 0) with an optional K/M/G/T suffix (powers of 2).
 * Returns false unless the whole string parses. */
bool parse_size(const char *s, uint64_t *out);

/* ---- printf.c / serial.c ------------------------------------------------- */
/* printf family: %d %i %u %x %X %o %c %s %p %%, flags - 0 # + space, width
 * and precision (also *), length hh h l ll z j t. Output from several CPUs
 * never interleaves within one printf call. */
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int snprintf(char *buf, size_t size, const char *fmt, ...) PRINTF_LIKE(3, 4);
int vprintf(const char *fmt, va_list ap);
int printf(const char *fmt, ...) PRINTF_LIKE(1, 2);
int puts(const char *s);      /* s and a newline */
int putchar(int c);
void serial_putc(char c);     /* raw byte to COM1 (no locking) */
void serial_write(const char *s, size_t n);
/* The console lock printf takes; recursive per CPU. Hold it to print several
 * lines as one block. */
void console_lock(void);
void console_unlock(void);

/* ---- boot.c: boot_params, e820, command line ----------------------------- */
#define E820_RAM      1
#define E820_RESERVED 2
#define E820_ACPI     3
#define E820_NVS      4
#define E820_MAX      128
struct e820_range {
	uint64_t addr, size;
	uint32_t type;
};
uint64_t boot_params_phys(void);      /* RSI at entry */
int e820_count(void);
const struct e820_range *e820_get(int i);
uint64_t e820_ram_total(void);        /* sum of type-1 sizes */
uint64_t e820_ram_top(void);          /* highest end of any type-1 range */
/* True when some RAM range intersects [addr, addr+size). */
bool e820_ram_overlaps(uint64_t addr, uint64_t size);
const char *cmdline(void);            /* "" when there is none */
/* Finds "key=value" (or a bare "key", value "") among the space-separated
 * words of the command line; copies the value NUL-terminated. */
bool cmdline_get(const char *key, char *buf, size_t len);
bool cmdline_has(const char *key);
/* The value parsed by parse_size(); false when missing or malformed. */
bool cmdline_get_u64(const char *key, uint64_t *val);

/* ---- acpi.c ---------------------------------------------------------------- */
struct acpi_sdt {
	char signature[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	uint32_t creator_id;
	uint32_t creator_revision;
} __attribute__((packed));

uint64_t acpi_rsdp_phys(void);        /* 0 when not found */
int acpi_rsdp_revision(void);
/* A table by signature ("APIC", "FACP", "MCFG", ...) from the XSDT (RSDT when
 * there is no XSDT); NULL when absent. n picks among several (0 = first). */
const struct acpi_sdt *acpi_find_table(const char *sig, int n);
bool acpi_checksum_ok(const void *p, size_t len);
int acpi_cpu_count(void);             /* enabled local (x2)APIC entries in the MADT; 0 without MADT */
uint32_t acpi_cpu_apic_id(int i);     /* i < acpi_cpu_count() */
uint64_t acpi_lapic_phys(void);
uint16_t acpi_pm1a_cnt_port(void);    /* from the FADT; 0x604 when absent */
uint16_t acpi_pm1a_evt_port(void);    /* PM1a status (+2: enable); 0x600 when absent */
uint16_t acpi_pm_tmr_port(void);      /* 32-bit, 3.579545 MHz; 0x608 when absent */
#define ACPI_PM_TMR_HZ 3579545u

/* ---- power.c ---------------------------------------------------------------- */
#define DEBUG_EXIT_PORT 0xf4
/* isa-debug-exit with code (Ember exits (code << 1) | 1), then ACPI soft-off,
 * then cli; hlt forever. */
noreturn void exit(int code);
noreturn void poweroff(void);         /* ACPI S5 (Ember exits 0) */
noreturn void halt_forever(void);

/* ---- exceptions: desc.c, isr.S -------------------------------------------- */
/* Saved by the exception entry; a hook may change it (rip, rax, ...) and
 * resume. */
struct exc_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss;
};
struct exc_info {
	int vector;
	uint64_t error, rip, cs, rflags, rsp, cr2;
};
/* Called first for every exception taken at CPL0 on this CPU. Return true to
 * resume at frame->rip (after changing it if need be), false to go on with
 * the default handling (catch_exception, else report and exit(1)). */
typedef bool (*exc_hook_t)(struct exc_frame *frame);
exc_hook_t exc_set_hook(exc_hook_t hook);   /* per-CPU; returns the previous */
/* Runs fn(arg). When it raises an exception at CPL0, prints the EXCEPTION
 * line, fills *info (may be NULL) and returns the vector, having unwound fn;
 * returns -1 when fn returns normally. Nests. */
int catch_exception(void (*fn)(void *), void *arg, struct exc_info *info);
/* rdmsr/wrmsr under catch_exception: -1 when it worked, else the vector
 * (13 for #GP). *val is 0 after a fault. */
int rdmsr_safe(uint32_t msr, uint64_t *val);
int wrmsr_safe(uint32_t msr, uint64_t val);
const char *exc_name(int vector);
/* Points IDT vector (32..255) at handler: a DPL0 interrupt gate shared by
 * every CPU. The handler returns with iretq: e.g. a C function with
 * __attribute__((interrupt)). */
void idt_set_gate(int vector, void (*handler)(void));
/* The line every reported exception prints:
 *   EXCEPTION vector=%d error=%#x rip=%#lx cs=%#x ...      */
void exc_print(const struct exc_frame *f, const char *note);

/* ---- paging.c ---------------------------------------------------------------- */
#define PTE_P   0x001ull
#define PTE_W   0x002ull
#define PTE_U   0x004ull
#define PTE_PWT 0x008ull
#define PTE_PCD 0x010ull
#define PTE_PS  0x080ull
#define PTE_ADDR 0x000ffffffffff000ull
/* Identity-maps the 2 MiB page at phys (aligned down) with P|W|U|PS|extra.
 * False when out of page-table space (the kit maps up to 64 GiB). */
bool map_2m(uint64_t phys, uint64_t extra_flags);
void unmap_2m(uint64_t phys);
bool is_mapped(uint64_t addr);
/* The lowest 2 MiB-aligned address at or above 2 MiB that the kit left
 * unmapped (e.g. for #PF tests). */
uint64_t unmapped_addr(void);

/* ---- smp.c: CPUs, atomics, time -------------------------------------------- */
int smp_id(void);               /* this CPU: 0 (BSP) .. KIT_MAX_CPUS-1 */
int smp_cpus(void);             /* CPUs the MADT lists (>= 1) */
int smp_online(void);           /* CPUs that finished the kit's per-CPU setup */
/* BSP: waits until n CPUs are online; false on timeout. */
bool smp_wait_online(int n, uint64_t timeout_ms);

static inline long atomic_read(const volatile long *p) { return *p; }
static inline void atomic_set(volatile long *p, long v) { *p = v; }
/* Adds v; returns the new value (lock xadd). */
static inline long atomic_add(volatile long *p, long v)
{
	long old = v;
	__asm__ volatile("lock xaddq %0, %1" : "+r"(old), "+m"(*p) : : "memory", "cc");
	return old + v;
}
static inline long atomic_inc(volatile long *p) { return atomic_add(p, 1); }
/* Returns the value before (== old when it swapped). lock cmpxchg, 8 bytes. */
static inline long atomic_cmpxchg(volatile long *p, long old, long new_)
{
	long prev;
	__asm__ volatile("lock cmpxchgq %2, %1" : "=a"(prev), "+m"(*p) : "r"(new_), "0"(old) : "memory", "cc");
	return prev;
}
static inline long atomic_xchg(volatile long *p, long v)
{
	__asm__ volatile("xchgq %0, %1" : "+r"(v), "+m"(*p) : : "memory");
	return v;
}

struct spinlock { volatile long v; };
void spin_lock(struct spinlock *l);
void spin_unlock(struct spinlock *l);

/* Sense-reversing barrier for n CPUs; zero-initialise. false on timeout. */
struct smp_barrier { volatile long count, gen; };
bool barrier_wait(struct smp_barrier *b, int n, uint64_t timeout_ms);

/* Spins until *p >= n; false on timeout. */
bool wait_until_ge(const volatile long *p, long n, uint64_t timeout_ms);

/* From CPUID (0x15/0x16/0x40000010), else measured at boot against the
 * ACPI PM timer or PIT channel 0, else 2 GHz. */
uint64_t tsc_hz(void);
uint64_t uptime_ms(void);       /* TSC-based, since the BSP entered */
void mdelay(uint64_t ms);

/* ---- user.c: running code at CPL3 --------------------------------------------- */
/* Runs fn(arg) at CPL3 (RFLAGS=0x2, IOPL 0) on this CPU's user stack and
 * returns its result. When fn raises an exception, prints the EXCEPTION line
 * and returns RUN_USER_EXC(vector); run_user_fault() has the details. All of
 * memory is mapped U=1, so fn may be any kernel function that does not do
 * privileged things. */
long run_user(long (*fn)(void *), void *arg);
/* run_user with RFLAGS.IF set: device interrupts are taken meanwhile (on
 * kvm_pvm only CPL3 code gets them; the handlers still run at CPL0). */
long run_user_irq(long (*fn)(void *), void *arg);
#define RUN_USER_EXC(v) ((long)(-0x7fffffffffffffffll - 1) + (long)(v))
static inline bool run_user_faulted(long r) { return (uint64_t)r - (uint64_t)RUN_USER_EXC(0) < 256; }
static inline int run_user_vector(long r) { return (int)((uint64_t)r - (uint64_t)RUN_USER_EXC(0)); }
const struct exc_info *run_user_fault(void);

/* ---- apic.c: the local APIC (xAPIC MMIO) ----------------------------------------- */
#define APIC_ID      0x020
#define APIC_TPR     0x080
#define APIC_EOI     0x0b0
#define APIC_SVR     0x0f0
#define APIC_ICR_LO  0x300
#define APIC_ICR_HI  0x310
#define APIC_LVTT    0x320
#define APIC_TMICT   0x380
#define APIC_TMCCT   0x390
#define APIC_TDCR    0x3e0
#define MSR_APIC_BASE     0x1b
#define APIC_BASE_BSP     (1ull << 8)
#define APIC_BASE_X2APIC  (1ull << 10)
#define APIC_BASE_ENABLE  (1ull << 11)
#define MSR_TSC_DEADLINE  0x6e0
uint32_t apic_read(uint32_t reg);
void apic_write(uint32_t reg, uint32_t v);
uint32_t apic_id(void);               /* this CPU's, from the APIC_ID register */

/* ---- fw_cfg.c: QEMU's firmware configuration (ports 0x510/0x511) ------------------ */
#define FW_CFG_SIGNATURE 0x00
#define FW_CFG_RAM_SIZE  0x03
#define FW_CFG_NB_CPUS   0x05
bool fw_cfg_present(void);            /* the signature reads "QEMU" */
uint16_t fw_cfg_read16(uint16_t key);
uint32_t fw_cfg_read32(uint16_t key);
uint64_t fw_cfg_read64(uint16_t key);

/* ---- multiboot.c: the .flat build, booted by a multiboot loader --------------- */
/* Multiboot 0.6.96 section 3.3. */
struct multiboot_info {
	uint32_t flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr;
	uint32_t syms[4], mmap_length, mmap_addr, drives_length, drives_addr, config_table;
	uint32_t boot_loader_name;
} __attribute__((packed));
struct multiboot_module { uint32_t mod_start, mod_end, string, reserved; };
struct multiboot_mmap { uint32_t size; uint64_t addr, len; uint32_t type; } __attribute__((packed));
/* The boot information (EBX at entry), NULL unless this kernel was booted
 * by a multiboot loader with the magic in EAX. */
const struct multiboot_info *multiboot_info(void);
uint32_t multiboot_magic(void);       /* EAX at entry; 0 when not booted by multiboot */

/* ---- report.c: TAP-ish results ------------------------------------------------ */
/* Prints "ok N - msg" or "not ok N - msg"; returns ok. */
bool report(bool ok, const char *fmt, ...) PRINTF_LIKE(2, 3);
void report_skip(const char *fmt, ...) PRINTF_LIKE(1, 2);   /* "ok N - msg # SKIP" */
int report_failures(void);
/* Prints "SUMMARY: N tests, M failures" and exit(M ? 1 : 0). */
noreturn void report_summary(void);

#endif
