/* Save and load the x86 VM-wide state KVM keeps: the in-kernel irqchip
 * (PIC master, PIC slave, IOAPIC), the PIT and kvmclock. */
#ifndef EMBER_X86_VM_STATE_H
#define EMBER_X86_VM_STATE_H

#include "migration/state.h"

struct vm;

/* Sections "irqchip" and "pit"; their loaders. */
int vm_arch_save_devices(struct vm *vm, struct state_writer *w);
int vm_arch_load_irqchip(void *vm, struct state_reader *r);
int vm_arch_load_pit(void *vm, struct state_reader *r);
/* Section "clock": saved last and loaded last, after the vCPUs' TSCs. */
int vm_arch_save_clock(struct vm *vm, struct state_writer *w);
int vm_arch_load_clock(void *vm, struct state_reader *r);

#endif
