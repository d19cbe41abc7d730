/* The guest CPU of one VM, as KVM gets it: the model (cpumodel.h), the MSR
 * save list that follows its CPUID (msr.h), the MCE setup, and which
 * state ioctls this host's KVM has. Shared by `ember run` and `ember cpu`. */
#ifndef EMBER_X86_GUESTCPU_H
#define EMBER_X86_GUESTCPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arch/x86/cpumodel.h"
#include "arch/x86/msr.h"

struct guest_cpu {
	struct cpu_host host;
	struct cpu_model model;
	uint64_t mcg_cap;             /* KVM_X86_SETUP_MCE value, 0 without MCE */
	uint64_t host_mce_cap;        /* KVM_X86_GET_MCE_CAP_SUPPORTED */
	struct msr_list kvm_msrs;     /* KVM's MSR lists */
	struct msr_list msrs;         /* what Ember saves and restores */
	struct msr_list dropped;      /* KVM listed these; the guest CPU lacks them */
	/* The model came from a snapshot or stream's vm section (v4): the
	 * vCPU sections then load their own CPUID without replacing it. */
	bool model_from_state;
	/* What the state ioctls look like here. */
	unsigned xsave_size;          /* KVM_CAP_XSAVE2 size, 4096 with KVM_CAP_XSAVE, 0 without */
	bool sregs2, xcrs, debugregs, vcpu_events, tsc_offset_attr, nested_state;
	int nested_state_size;        /* KVM_CAP_NESTED_STATE */
	int tsc_khz;                  /* host TSC frequency KVM reports, 0 if unknown */
	int scratch_vm, scratch_vcpu; /* the probe VM, closed by guest_cpu_free */
};

/* Reads what the host offers and builds the model for `spec`. 0, -EINVAL
 * for a bad or unsatisfiable spec (one-line message in err, a user
 * error), or another -errno (message in err too). */
int guest_cpu_init(struct guest_cpu *g, int kvm_fd, const char *backend, const char *spec,
		   char *err, size_t errlen);
/* Whether this host's KVM gives a guest exactly `cpuid` (a saved one):
 * every feature supported, and KVM_SET_CPUID2 on vcpu_fd (-1: the scratch
 * vCPU) then KVM_GET_CPUID2 shows it unchanged but for the fields KVM
 * derives from the vCPU's state (cpuid_runtime_mask). 0, or -errno with
 * the first difference, both entries in full, in err. */
int guest_cpu_check_cpuid(struct guest_cpu *g, int vcpu_fd, const struct kvm_cpuid2 *cpuid, char *err,
			  size_t errlen);
/* Replaces the model's CPUID (e.g. from a snapshot) after checking KVM can
 * provide it; recomputes the MSR list. 0 or -EINVAL with err. */
int guest_cpu_replace_cpuid(struct guest_cpu *g, const struct kvm_cpuid2 *cpuid, char *err,
			    size_t errlen);
void guest_cpu_free(struct guest_cpu *g);

/* KVM_GET_CPUID2: the vCPU's CPUID (malloc) with nent the number of
 * entries KVM really has, also from a KVM that does not report it (before
 * Linux 6.5). NULL with errno. */
struct kvm_cpuid2 *cpuid_vcpu_get(int vcpu_fd);
/* KVM_SET_CPUID2 then KVM_GET_CPUID2: the CPUID the guest will really
 * see (malloc), NULL with errno when KVM refuses it. */
struct kvm_cpuid2 *cpuid_effective(int vcpu_fd, const struct kvm_cpuid2 *c);

/* VM-wide setup before any vCPU exists (PMU on/off). 0 or -errno. */
int guest_cpu_setup_vm(struct guest_cpu *g, int vm_fd);
/* KVM_SET_CPUID2 (with this vCPU's topology) and MCE banks. 0 or -errno. */
int guest_cpu_setup_vcpu(struct guest_cpu *g, int vcpu_fd, unsigned index, unsigned ncpus);

#endif
