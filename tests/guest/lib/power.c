/* Ending the VM: isa-debug-exit (port 0xf4, --debug-exit), ACPI S5 soft-off
 * through the FADT's PM1a control port, and halting for good. */
#include "kit_internal.h"

#define SLP_TYP_S5 5
#define SLP_EN     (1u << 13)

noreturn void halt_forever(void)
{
	for (;;) {
		cli();
		hlt();
	}
}

noreturn void poweroff(void)
{
	outw(acpi_pm1a_cnt_port(), (SLP_TYP_S5 << 10) | SLP_EN);
	halt_forever();
}

noreturn void exit(int code)
{
	outl(DEBUG_EXIT_PORT, (uint32_t)code);
	poweroff();
}
