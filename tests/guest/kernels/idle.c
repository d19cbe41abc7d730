/* A guest that stays up until asked to go: prints "idle: ready", then halts
 * with interrupts on. The ACPI power button (ember ctl shutdown) raises the
 * SCI, routed through the IOAPIC to idle_sci(), which powers off. Command
 * line: "nopowerbutton" never enables the button, like a guest that ignores
 * the request (ember ctl shutdown must then time out); "button=reset" resets
 * through the i8042 instead of powering off. */
#include "kit.h"

#define PM1_PWRBTN     (1u << 8)
#define SCI_IRQ        9              /* the FADT's SCI_INT, level, active high */
#define SCI_VECTOR     0x41
#define IOAPIC_BASE    0xfec00000ul
#define LAPIC_EOI      0xb0
#define LAPIC_SVR      0xf0
#define I8042_CMD      0x64
#define I8042_RESET    0xfe

void idle_sci(void);
void idle_sci_entry(void);

/* Interrupt entry: save the registers a C call may clobber. At entry RSP is
 * 8 mod 16 (the CPU aligned it, then pushed 5 words); 9 pushes realign it. */
__asm__(".text\n"
	".global idle_sci_entry\n"
	"idle_sci_entry:\n\t"
	"pushq %rax\n\tpushq %rcx\n\tpushq %rdx\n\tpushq %rsi\n\tpushq %rdi\n\t"
	"pushq %r8\n\tpushq %r9\n\tpushq %r10\n\tpushq %r11\n\t"
	"cld\n\t"
	"call idle_sci\n\t"
	"popq %r11\n\tpopq %r10\n\tpopq %r9\n\tpopq %r8\n\t"
	"popq %rdi\n\tpopq %rsi\n\tpopq %rdx\n\tpopq %rcx\n\tpopq %rax\n\t"
	"iretq\n");

static volatile uint32_t *lapic_reg(unsigned off)
{
	return (volatile uint32_t *)(uintptr_t)(acpi_lapic_phys() + off);
}

void idle_sci(void)
{
	uint16_t sts = inw(acpi_pm1a_evt_port());
	outw(acpi_pm1a_evt_port(), sts);    /* write 1 to clear: the level drops */
	if (sts & PM1_PWRBTN) {
		char action[16];
		if (cmdline_get("button", action, sizeof(action)) && !strcmp(action, "reset")) {
			printf("idle: power button pressed, resetting\n");
			outb(I8042_CMD, I8042_RESET);
		}
		printf("idle: power button pressed, powering off\n");
		poweroff();
	}
	*lapic_reg(LAPIC_EOI) = 0;
}

static void set_gate(int vec, void (*fn)(void))
{
	struct __attribute__((packed)) { uint16_t limit; uint64_t base; } idtr;
	__asm__ volatile("sidt %0" : "=m"(idtr));
	uint64_t a = (uintptr_t)fn;
	uint32_t *g = (uint32_t *)(uintptr_t)(idtr.base + 16ul * (unsigned)vec);
	g[0] = (uint32_t)(a & 0xffff) | ((uint32_t)KERNEL_CS << 16);
	g[1] = (uint32_t)(a & 0xffff0000u) | 0x8e00u;   /* present, DPL0, interrupt gate */
	g[2] = (uint32_t)(a >> 32);
	g[3] = 0;
}

static void ioapic_write(unsigned reg, uint32_t v)
{
	*(volatile uint32_t *)IOAPIC_BASE = reg;
	*(volatile uint32_t *)(IOAPIC_BASE + 0x10) = v;
}

void kmain(void)
{
	bool button = !cmdline_has("nopowerbutton");
	/* The 8259s stay masked: the SCI comes through the IOAPIC only. */
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
	if (button) {
		set_gate(SCI_VECTOR, idle_sci_entry);
		*lapic_reg(LAPIC_SVR) = 0x1ff;                /* APIC on, spurious vector 0xff */
		ioapic_write(0x10 + 2 * SCI_IRQ + 1, 0);      /* destination: APIC ID 0 */
		ioapic_write(0x10 + 2 * SCI_IRQ, SCI_VECTOR | (1u << 15));   /* level, high, unmasked */
		outw(acpi_pm1a_evt_port() + 2, PM1_PWRBTN);   /* PM1a_EN */
	}
	printf("idle: ready on %d vCPUs%s\n", smp_cpus(), button ? "" : " (ignoring the power button)");
	for (;;) {
		sti();
		hlt();
	}
}
