/* Save and load one vCPU's complete state into the state stream (section
 * "cpu", instance = vCPU index): CPUID, TSC frequency, general and segment
 * registers (sregs2 where KVM has it), FPU/XSAVE, XCRs, the MSR list that
 * follows the CPUID, LAPIC, MP state, debug registers, vCPU events, nested
 * state where KVM_CAP_NESTED_STATE says so. The vCPU must not be running. */
#ifndef EMBER_X86_VCPU_STATE_H
#define EMBER_X86_VCPU_STATE_H

#include "migration/state.h"

struct vcpu;

#define VCPU_STATE_SECTION "cpu"
#define VCPU_STATE_VERSION 1

int vcpu_state_save(struct vcpu *v, struct state_writer *w);
/* Applies the section in the order KVM needs (api.rst; QEMU's
 * kvm_arch_put_registers): CPUID, TSC kHz, sregs, regs, XSAVE, XCRs, MSRs,
 * LAPIC, TSC deadline, MP state, debug registers, events last. */
int vcpu_state_load(struct vcpu *v, struct state_reader *r);

#endif
