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
/* cpuid_has for a loop over features: they come grouped by leaf
 * (cpufeat_list.h), so the entry is looked up again only when the leaf
 * changes (each lookup scans every entry). Start with { .c = cpuid }; c
 * may change its values but must not gain or lose entries meanwhile. */
struct cpuid_cursor {
	const struct kvm_cpuid2 *c;
	uint32_t leaf, subleaf;
	const struct kvm_cpuid_entry2 *e;
	bool valid;
};
bool cpuid_cursor_has(struct cpuid_cursor *k, int f);
/* Sets the bit; false when the leaf is absent from c. */
bool cpuid_set(struct kvm_cpuid2 *c, int f);
void cpuid_clear(struct kvm_cpuid2 *c, int f);
/* Clears f and, transitively, every feature that needs it. */
void cpuid_clear_with_dependents(struct kvm_cpuid2 *c, int f);
/* The first feature f needs that c lacks, F_NONE when all are there. */
int cpufeat_missing_dependency(const struct kvm_cpuid2 *c, int f);

/* The bits of CPUID.leaf.subleaf's register `reg` that KVM rewrites
 * from the vCPU's own state whenever that state changes (Linux 6.1
 * arch/x86/kvm/cpuid.c __kvm_update_cpuid_runtime: leaf 1 ECX.OSXSAVE
 * from CR4, EDX.APIC from APIC_BASE, leaf 7.0 ECX.OSPKE from CR4, 0xD.0
 * and 0xD.1 EBX the XSAVE area sizes for XCR0 and XCR0|XSS; KVM's own
 * selftest cpuid_test.c masks the same fields). 0 for a field KVM keeps
 * as given. */
uint32_t cpuid_runtime_mask(uint32_t leaf, uint32_t subleaf, unsigned reg);
/* Whether feature f is one of those bits. */
bool cpufeat_is_runtime(int f);

/* Compares two CPUIDs entry by entry: the same (function, index) pairs,
 * the same flags and registers; with_runtime false leaves out
 * cpuid_runtime_mask(). 0 when they agree; else 1, and buf says which
 * entry differs with both sides in full ("CPUID 0x1.0: saved flags 0 eax
 * ... edx ...; shown ... (ecx: osxsave)", "shown: none" when one side
 * lacks it). Pure. */
int cpuid_diff(const struct kvm_cpuid2 *saved, const struct kvm_cpuid2 *shown, bool with_runtime,
	       char *buf, size_t len);
/* The first (function, index) pair c lists twice, as an index into
 * c->entries, or -1. */
int cpuid_find_duplicate(const struct kvm_cpuid2 *c);

/* Size in bytes of a struct kvm_cpuid2 with n entries. */
size_t cpuid_size(unsigned n);
/* A copy (malloc) of c, with room for `extra` more entries. */
struct kvm_cpuid2 *cpuid_dup(const struct kvm_cpuid2 *c, unsigned extra);
/* A struct kvm_cpuid2 (malloc) holding the len / sizeof(entry) entries
 * at `entries` (a saved field; the caller checked len). NULL on ENOMEM. */
struct kvm_cpuid2 *cpuid_from_entries(const void *entries, size_t len);

#endif
