/* COM1 (16550 at 0x3f8) output and the console lock. Every port access is a
 * VM exit, so no LSR polling beyond one read per byte. */
#include "kit_internal.h"

#define COM1     0x3f8
#define COM1_LSR (COM1 + 5)
#define LSR_THRE 0x20

void serial_putc(char c)
{
	/* Bounded: a missing UART reads 0xff (THRE set) anyway. */
	for (int i = 0; i < 1000 && !(inb(COM1_LSR) & LSR_THRE); i++)
		cpu_relax();
	outb(COM1, (uint8_t)c);
}

void serial_write(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		serial_putc(s[i]);
}

static struct spinlock console;
static volatile long console_owner = -1;

void console_lock(void)
{
	struct percpu *pc = this_cpu();
	if (console_owner == smp_id()) {
		pc->console_depth++;
		return;
	}
	spin_lock(&console);
	console_owner = smp_id();
	pc->console_depth = 1;
}

void console_unlock(void)
{
	struct percpu *pc = this_cpu();
	if (--pc->console_depth > 0)
		return;
	console_owner = -1;
	spin_unlock(&console);
}
