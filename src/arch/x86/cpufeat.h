/* CPUID feature flags by name (cpufeat_list.h): lookup, test/set/clear in
 * a struct kvm_cpuid2, and which features need which (so removing a
 * feature removes what depends on it). Pure: no KVM needed. */
#ifndef EMBER_X86_CPUFEAT_H
#define EMBER_X86_CPUFEAT_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum cpuid_reg { EAX, EBX, ECX, EDX };

enum cpu_feature_id {
#define X(id, name, leaf, sub, reg, bit) F_##id,
#include "arch/x86/cpufeat_list.h"
#undef X
	F_COUNT,
	F_NONE = -1,
};

struct cpu_feature {
	const char *name;
	uint32_t leaf, subleaf;
	uint8_t reg;                  /* enum cpuid_reg */
	uint8_t bit;
};

extern const struct cpu_feature cpu_features[F_COUNT];

/* F_* for a name, F_NONE when unknown. */
int cpufeat_lookup(const char *name);

/* The entry for leaf/subleaf; for a leaf without
 * KVM_CPUID_FLAG_SIGNIFCANT_INDEX any subleaf matches. NULL when absent. */
struct kvm_cpuid_entry2 *cpuid_entry(const struct kvm_cpuid2 *c, uint32_t leaf, uint32_t subleaf);
uint32_t *cpuid_reg_ptr(struct kvm_cpuid_entry2 *e, unsigned reg);

bool cpuid_has(const struct kvm_cpuid2 *c, int f);
/* Sets the bit; false when the leaf is absent from c. */
bool cpuid_set(struct kvm_cpuid2 *c, int f);
void cpuid_clear(struct kvm_cpuid2 *c, int f);
/* Clears f and, transitively, every feature that needs it. */
void cpuid_clear_with_dependents(struct kvm_cpuid2 *c, int f);
/* The first feature f needs that c lacks, F_NONE when all are there. */
int cpufeat_missing_dependency(const struct kvm_cpuid2 *c, int f);

/* Size in bytes of a struct kvm_cpuid2 with n entries. */
size_t cpuid_size(unsigned n);
/* A copy (malloc) of c, with room for `extra` more entries. */
struct kvm_cpuid2 *cpuid_dup(const struct kvm_cpuid2 *c, unsigned extra);

#endif
