/* The guest's CPUID: what KVM supports, shaped into one consistent CPU
 * with per-vCPU APIC IDs and topology for --cpus. */
#ifndef EMBER_X86_CPUID_H
#define EMBER_X86_CPUID_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>

/* A CPUID feature bit a user can turn on or off by name (--cpu host,-x2apic),
 * with QEMU's names. */
struct cpuid_feature {
	const char *name;
	unsigned function, index;
	unsigned reg;                 /* 0 eax, 1 ebx, 2 ecx, 3 edx */
	unsigned bit;
};

#define CPU_MAX_CHANGES 32

/* The --cpu option: a model (only "host" or "max": what KVM offers) and
 * feature changes applied in order. */
struct cpu_spec {
	unsigned nchanges;
	struct {
		const struct cpuid_feature *feature;
		bool on;
	} changes[CPU_MAX_CHANGES];
};

/* Parse "MODEL[,+f|-f|f=on|f=off]...". 0, or -EINVAL with a reason in err. */
int cpu_spec_parse(const char *s, struct cpu_spec *spec, char *err, size_t errlen);

/* Apply the changes to c. A feature turned on that `supported` lacks is
 * refused: 0, or -ENOTSUP with the feature named in err. Pure. */
int cpuid_apply_spec(struct kvm_cpuid2 *c, const struct kvm_cpuid2 *supported,
		     const struct cpu_spec *spec, char *err, size_t errlen);

/* KVM_GET_SUPPORTED_CPUID, allocated (free()). NULL with errno on failure. */
struct kvm_cpuid2 *cpuid_get_supported(int kvm_fd);

/* Rewrite entries for vCPU `index` of `ncpus`: APIC IDs, topology leaves,
 * the hypervisor bit. Pure: unit-testable. */
void cpuid_apply_topology(struct kvm_cpuid2 *c, unsigned index, unsigned ncpus);

/* Find a leaf/subleaf (subleaf ignored for leaves without KVM_CPUID_FLAG_SIGNIFCANT_INDEX). */
struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, unsigned function, unsigned index);

#endif
