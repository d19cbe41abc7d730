/* ACPI S3, suspend to RAM: the guest writes SLP_TYP = ACPI_S3_SLP_TYP with
 * SLP_EN; every vCPU stops, memory stays, and a wake event the guest enabled
 * (the RTC alarm: RTC_EN in PM1_EN and AIE in the RTC) resets the vCPUs: the
 * BSP runs from the FACS waking vector in real mode, the APs wait for
 * INIT/SIPI, as a firmware resume leaves them. */
#ifndef EMBER_SUSPEND_H
#define EMBER_SUSPEND_H

#include <stdbool.h>

struct vm;

/* Before the VM runs: the loop source S3 entry goes through. 0 or -errno. */
int vm_suspend_init(struct vm *vm);
void vm_suspend_destroy(struct vm *vm);
/* From the vCPU thread that set SLP_EN: stop every vCPU before it runs
 * another guest instruction and let the loop thread arm the wake. False
 * when the VM is not running (it stays in S0). */
bool vm_suspend(struct vm *vm);

#endif
