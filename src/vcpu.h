/* One thread per vCPU: the KVM_RUN loop, exit dispatch to the buses,
 * pause/stop handshakes, per-exit-reason counters. */
#ifndef EMBER_VCPU_H
#define EMBER_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct vm;

#define VCPU_EXIT_REASONS 64

struct vcpu {
	struct vm *vm;
	unsigned index;               /* also the APIC ID */
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool started;
	uint64_t exits[VCPU_EXIT_REASONS];   /* by KVM_EXIT_* reason */
	uint64_t first_run_ns;               /* when KVM_RUN was first entered */
	uint64_t throttle_until_ns;          /* dirty limit: do not run before this */
	struct kvm_lapic_state reset_lapic;  /* as created (virtual wire): a reset restores it */
};

int vcpu_create(struct vm *vm, unsigned index, struct vcpu **out);
void vcpu_destroy(struct vcpu *v);
/* Set registers for the first instruction (boot protocol state). */
int vcpu_init_boot_state(struct vcpu *v);
int vcpu_start(struct vcpu *v);
/* A CPU reset on the way back from S3, while the vCPU is parked: the BSP
 * starts in real mode at the waking vector (CS:IP = vector >> 4 : vector &
 * 0xf), an AP waits for INIT/SIPI; the LAPIC goes back to its state at
 * creation, pending events are dropped. 0 or -errno. */
int vcpu_reset_for_wake(struct vcpu *v, uint32_t waking_vector);
/* Make the vCPU leave KVM_RUN soon (signal + immediate_exit). */
void vcpu_kick(struct vcpu *v);

#endif
