/* What the host's KVM offers a guest CPU (KVM_GET_SUPPORTED_CPUID and the
 * capabilities that complete it), and the per-vCPU topology leaves: APIC
 * IDs, 0xB/0x1F, cache sharing, AMD core counts, consistent with --cpus. */
#ifndef EMBER_X86_CPUID_H
#define EMBER_X86_CPUID_H

#include <linux/kvm.h>

#include "arch/x86/cpumodel.h"

/* KVM_GET_SUPPORTED_CPUID, allocated (free()). NULL with errno on failure. */
struct kvm_cpuid2 *cpuid_get_supported(int kvm_fd);

/* Fills host: the supported CPUID plus what KVM emulates without listing
 * it there (TSC deadline timer with KVM_CAP_TSC_DEADLINE_TIMER, the
 * hypervisor bit), whether guests get a PMU, the backend. 0 or -errno. */
int cpuid_host_caps(int kvm_fd, const char *backend, struct cpu_host *host);
void cpuid_host_free(struct cpu_host *host);

/* A copy of c (malloc) with the entries for vCPU `index` of `ncpus`: APIC
 * IDs, topology leaves, cache sharing. One package, one thread per core.
 * NULL on allocation failure. Pure: unit-testable. */
struct kvm_cpuid2 *cpuid_for_vcpu(const struct kvm_cpuid2 *c, unsigned index, unsigned ncpus);

#endif
