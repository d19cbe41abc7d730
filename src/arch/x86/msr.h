/* The MSRs Ember saves and restores for a guest: KVM's lists
 * (KVM_GET_MSR_INDEX_LIST, KVM_GET_MSR_FEATURE_INDEX_LIST) plus the few KVM
 * handles without listing (MTRRs, MCE banks), each kept only when the
 * guest CPU has the feature the MSR belongs to. KVM once listed
 * MSR_IA32_UMWAIT_CONTROL on CPUs without WAITPKG and broke restores; the
 * table here makes every MSR name its feature, and an MSR Ember has no
 * rule for is not saved (reported by `ember cpu`). */
#ifndef EMBER_X86_MSR_H
#define EMBER_X86_MSR_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

#define MSR_IA32_TSC            0x10
#define MSR_IA32_TSC_DEADLINE   0x6e0
#define MSR_IA32_UMWAIT_CONTROL 0xe1
#define MSR_IA32_MCG_CAP        0x179
#define MSR_IA32_SYSENTER_ESP   0x175
#define MSR_IA32_SYSENTER_EIP   0x176
#define MCG_CTL_P               (1ull << 8)
#define EMBER_MCE_BANKS         10

/* What the filter needs to know about the guest CPU. */
struct msr_guest {
	const struct kvm_cpuid2 *cpuid;
	bool pmu;              /* the guest has a PMU */
	uint64_t mcg_cap;      /* what Ember set with KVM_X86_SETUP_MCE; 0 without MCE */
};

struct msr_list {
	uint32_t *index;
	unsigned n;
};

/* KVM_GET_MSR_INDEX_LIST and KVM_GET_MSR_FEATURE_INDEX_LIST merged, sorted,
 * without repeats. 0 or -errno. */
int msr_kvm_lists(int kvm_fd, struct msr_list *out);

/* Whether the MSR is saved for this guest; *why (may be NULL) says why
 * not ("guest lacks waitpkg", "write-only", "unknown to Ember"). */
bool msr_saved(uint32_t index, const struct msr_guest *g, const char **why);

/* The save list: candidates from KVM plus Ember's own, filtered by
 * msr_saved(), sorted. `dropped` (may be NULL) gets the rest of the
 * candidates. 0 or -ENOMEM. */
int msr_build_list(const struct msr_list *kvm, const struct msr_guest *g, struct msr_list *save,
		   struct msr_list *dropped);
void msr_list_free(struct msr_list *l);
bool msr_list_has(const struct msr_list *l, uint32_t index);

/* For test_msr: the rule table is in index order with disjoint ranges,
 * which the lookup relies on. */
bool msr_rules_sorted(void);

/* Ember's name for the MSR ("IA32_UMWAIT_CONTROL"), NULL when it has none. */
const char *msr_name(uint32_t index);

/* The MCG_CAP Ember gives a guest with this CPUID, given what KVM supports
 * (KVM_X86_GET_MCE_CAP_SUPPORTED, 0 when KVM lacks it): EMBER_MCE_BANKS
 * banks and MCG_CTL_P; 0 when the guest has no MCE/MCA. */
uint64_t msr_mcg_cap(const struct kvm_cpuid2 *cpuid, uint64_t supported);

#endif
