/* A small runtime for Ember's multiboot test kernels: 32-bit protected
 * mode, paging off (physical = linear), serial output, kvm-unit-tests-style
 * report()/report_summary() and exit through the debug-exit port, exception
 * catching, fw_cfg, ACPI, LAPIC and SMP bring-up by INIT/SIPI. A kernel
 * defines kmain(); main returns the exit code. */
#ifndef MBKIT_H
#define MBKIT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MAX_CPUS 64
#define LAPIC_BASE 0xfee00000u
#define APIC_ID      0x020
#define APIC_EOI     0x0b0
#define APIC_SVR     0x0f0
#define APIC_ICR_LO  0x300
#define APIC_ICR_HI  0x310
#define APIC_LVTT    0x320
#define APIC_TMICT   0x380
#define APIC_TMCCT   0x390
#define APIC_TDCR    0x3e0
#define MSR_APIC_BASE    0x1b
#define MSR_TSC_DEADLINE 0x6e0

int kmain(int argc, char **argv);

/* Output and results. */
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vsnprintf(char *buf, size_t n, const char *fmt, va_list ap);
int snprintf(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void report(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void report_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int report_summary(void);             /* 0 when nothing failed */
void exit(int code) __attribute__((noreturn));   /* debug-exit: Ember exits (code << 1) | 1 */

/* Strings. */
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
const char *getenv(const char *name);  /* from the multiboot module (KEY=VALUE lines) */

/* Boot information. */
struct mb_info {
	uint32_t flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr;
	uint32_t syms[4], mmap_length, mmap_addr, drives_length, drives_addr, config_table;
	uint32_t boot_loader_name;
} __attribute__((packed));
struct mb_module { uint32_t start, end, string, reserved; };
struct mb_mmap { uint32_t size; uint64_t addr, len; uint32_t type; } __attribute__((packed));
extern uint32_t mb_magic;
extern struct mb_info *mb_info;

/* CPU. */
struct cpuid { uint32_t a, b, c, d; };
static inline struct cpuid cpuid(uint32_t leaf, uint32_t sub)
{
	struct cpuid r;
	asm volatile("cpuid" : "=a"(r.a), "=b"(r.b), "=c"(r.c), "=d"(r.d) : "a"(leaf), "c"(sub));
	return r;
}
static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}
static inline void outb(uint16_t p, uint8_t v) { asm volatile("outb %0, %1" :: "a"(v), "Nd"(p)); }
static inline void outw(uint16_t p, uint16_t v) { asm volatile("outw %0, %1" :: "a"(v), "Nd"(p)); }
static inline void outl(uint16_t p, uint32_t v) { asm volatile("outl %0, %1" :: "a"(v), "Nd"(p)); }
static inline uint8_t inb(uint16_t p) { uint8_t v; asm volatile("inb %1, %0" : "=a"(v) : "Nd"(p)); return v; }
static inline uint32_t inl(uint16_t p) { uint32_t v; asm volatile("inl %1, %0" : "=a"(v) : "Nd"(p)); return v; }
static inline uint32_t mmio_read(uint32_t a) { return *(volatile uint32_t *)a; }
static inline void mmio_write(uint32_t a, uint32_t v) { *(volatile uint32_t *)a = v; }
static inline uint32_t apic_read(uint32_t reg) { return mmio_read(LAPIC_BASE + reg); }
static inline void apic_write(uint32_t reg, uint32_t v) { mmio_write(LAPIC_BASE + reg, v); }
static inline void pause(void) { asm volatile("pause" ::: "memory"); }

/* rdmsr/wrmsr that catch #GP: the vector taken (13) or -1. */
int rdmsr_safe(uint32_t msr, uint64_t *val);
int wrmsr_safe(uint32_t msr, uint64_t val);

/* Exceptions and interrupts. */
struct frame {
	uint32_t edi, esi, ebp, esp0, ebx, edx, ecx, eax;
	uint32_t vector, error, eip, cs, eflags;
};
typedef void (*irq_handler)(struct frame *f);
void set_irq_handler(int vector, irq_handler h);   /* also installs the IDT gate */
/* Arm a catch: an exception on this CPU resumes at `resume` (see CATCH). */
extern volatile uint32_t exc_resume[MAX_CPUS];
extern volatile int exc_vector[MAX_CPUS];
extern volatile uint32_t exc_error[MAX_CPUS];
int cpu_index(void);                  /* from the stack pointer */
/* Runs the statement; evaluates to the exception vector it raised, or -1. */
#define CATCH(stmt) ({ \
	int __c = cpu_index(); \
	exc_vector[__c] = -1; \
	asm volatile("movl $1f, %0" : "=m"(exc_resume[__c])); \
	stmt; \
	asm volatile("1:" ::: "memory"); \
	exc_resume[__c] = 0; \
	exc_vector[__c]; })

/* Time: the ACPI PM timer (from the FADT) calibrates the TSC. */
uint32_t pm_timer_port(void);         /* 0 without ACPI */
uint64_t tsc_khz(void);
uint64_t tsc_to_ns(uint64_t cycles);
void udelay(uint64_t us);

/* Platform. */
uint16_t fwcfg_read16(uint16_t key);
uint64_t fwcfg_read64(uint16_t key);
const void *acpi_find(const char *sig);  /* RSDT/XSDT table, or NULL */
int acpi_madt_cpus(void);

/* SMP: start every AP by INIT/SIPI; each runs fn(index) (index 1..n-1 in
 * arrival order) then halts. Returns how many came up within timeout_ms. */
int smp_start_aps(void (*fn)(int), int expect, uint64_t timeout_ms);

#endif
