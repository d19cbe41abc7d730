/* The guest's CPUID: what KVM supports, shaped into one consistent CPU
 * with per-vCPU APIC IDs and topology for --cpus. */
#ifndef EMBER_X86_CPUID_H
#define EMBER_X86_CPUID_H

#include <linux/kvm.h>

/* KVM_GET_SUPPORTED_CPUID, allocated (free()). NULL with errno on failure. */
struct kvm_cpuid2 *cpuid_get_supported(int kvm_fd);

/* Rewrite entries for vCPU `index` of `ncpus`: APIC IDs, topology leaves,
 * the hypervisor bit. Pure: unit-testable. */
void cpuid_apply_topology(struct kvm_cpuid2 *c, unsigned index, unsigned ncpus);

/* Find a leaf/subleaf (subleaf ignored for leaves without KVM_CPUID_FLAG_SIGNIFCANT_INDEX). */
struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, unsigned function, unsigned index);

#endif
