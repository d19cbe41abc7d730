/* The MSR -> CPUID feature table and the filtered save list. */
#include "arch/x86/msr.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "arch/x86/cpufeat.h"
#include "arch/x86/cpumodel.h"

enum msr_cond {
	C_ALWAYS,       /* architectural on every x86-64 KVM guest */
	C_FEAT,         /* any of feat[] */
	C_WRITE_ONLY,   /* a command MSR: nothing to read back */
	C_NOT_STATE,    /* read-only, set another way, or host-only */
	C_PMU_AMD,      /* AMD PMU (no CPUID bit for the legacy counters); feat[] if given */
	C_PMU_AMD_V2,   /* PerfMonV2 with core counters (CPUID 0x80000022 EBX[3:0] > 0) */
	C_PMU_INTEL_GP, /* Intel GP counter n: n < CPUID.0AH:EAX[15:8]; feat[] if given */
	C_PMU_INTEL_FIXED, /* fixed counter n: n < CPUID.0AH:EDX[4:0] */
	C_PMU_INTEL_V2, /* needs architectural PMU version 2 */
	C_MCG_CTL,      /* needs MCG_CAP.MCG_CTL_P */
	C_MCE_BANK,     /* bank n: n < MCG_CAP[7:0] */
	C_AMD,          /* AMD guests */
};

struct msr_rule {
	uint32_t first, last;
	const char *name;
	uint8_t cond;
	bool extra;            /* KVM handles it but does not list it: Ember adds it */
	int16_t feat[4];       /* F_*, F_NONE-terminated when shorter */
	const char *note;      /* why, for C_NOT_STATE */
};

#define F1(a) { a, F_NONE, F_NONE, F_NONE }
#define F2(a, b) { a, b, F_NONE, F_NONE }
#define NOF { F_NONE, F_NONE, F_NONE, F_NONE }

static const struct msr_rule rules[] = {
	{ 0x10, 0x10, "IA32_TSC", C_FEAT, false, F1(F_TSC), NULL },
	{ 0x11, 0x11, "KVM_WALL_CLOCK", C_FEAT, false, F1(F_KVMCLOCK), NULL },
	{ 0x12, 0x12, "KVM_SYSTEM_TIME", C_FEAT, false, F1(F_KVMCLOCK), NULL },
	{ 0x1b, 0x1b, "IA32_APIC_BASE", C_NOT_STATE, false, NOF, "saved with the segment registers" },
	{ 0x34, 0x34, "SMI_COUNT", C_ALWAYS, false, NOF, NULL },
	{ 0x3a, 0x3a, "IA32_FEATURE_CONTROL", C_FEAT, false, F2(F_VMX, F_SGX_LC), NULL },
	{ 0x3b, 0x3b, "IA32_TSC_ADJUST", C_FEAT, false, F1(F_TSC_ADJUST), NULL },
	{ 0x48, 0x48, "IA32_SPEC_CTRL", C_FEAT, false,
	  { F_SPEC_CTRL, F_AMD_IBRS, F_AMD_STIBP, F_AMD_SSBD }, NULL },
	{ 0x49, 0x49, "IA32_PRED_CMD", C_WRITE_ONLY, false, NOF, NULL },
	{ 0x8b, 0x8b, "IA32_UCODE_REV", C_ALWAYS, false, NOF, NULL },
	{ 0x8c, 0x8f, "IA32_SGXLEPUBKEYHASH", C_FEAT, false, F1(F_SGX_LC), NULL },
	{ 0x9e, 0x9e, "IA32_SMBASE", C_NOT_STATE, false, NOF, "host-only (Ember offers no SMM)" },
	{ 0xc1, 0xc8, "IA32_PMC", C_PMU_INTEL_GP, false, NOF, NULL },
	{ 0xce, 0xce, "PLATFORM_INFO", C_ALWAYS, false, NOF, NULL },
	{ 0xe1, 0xe1, "IA32_UMWAIT_CONTROL", C_FEAT, false, F1(F_WAITPKG), NULL },
	{ 0xfe, 0xfe, "IA32_MTRRCAP", C_NOT_STATE, false, NOF, "read-only" },
	{ 0x10a, 0x10a, "IA32_ARCH_CAPABILITIES", C_FEAT, false, F1(F_ARCH_CAPABILITIES), NULL },
	{ 0x10b, 0x10b, "IA32_FLUSH_CMD", C_WRITE_ONLY, false, NOF, NULL },
	{ 0x122, 0x122, "IA32_TSX_CTRL", C_FEAT, false, F1(F_ARCH_CAPABILITIES), NULL },
	{ 0x140, 0x140, "MISC_FEATURES_ENABLES", C_ALWAYS, false, NOF, NULL },
	{ 0x174, 0x176, "IA32_SYSENTER", C_FEAT, false, F1(F_SEP), NULL },
	{ 0x179, 0x179, "IA32_MCG_CAP", C_NOT_STATE, false, NOF, "set with KVM_X86_SETUP_MCE" },
	{ 0x17a, 0x17a, "IA32_MCG_STATUS", C_FEAT, false, F1(F_MCA), NULL },
	{ 0x17b, 0x17b, "IA32_MCG_CTL", C_MCG_CTL, false, NOF, NULL },
	{ 0x186, 0x18d, "IA32_PERFEVTSEL", C_PMU_INTEL_GP, false, NOF, NULL },
	{ 0x1a0, 0x1a0, "IA32_MISC_ENABLE", C_ALWAYS, false, NOF, NULL },
	{ 0x1c4, 0x1c5, "IA32_XFD", C_FEAT, false, F1(F_XFD), NULL },
	{ 0x1d9, 0x1d9, "IA32_DEBUGCTL", C_ALWAYS, false, NOF, NULL },
	{ 0x1db, 0x1de, "LAST_BRANCH_IP", C_ALWAYS, false, NOF, NULL },
	{ 0x1fc, 0x1fc, "IA32_POWER_CTL", C_ALWAYS, false, NOF, NULL },
	{ 0x200, 0x20f, "IA32_MTRR_PHYS", C_FEAT, true, F1(F_MTRR), NULL },
	{ 0x250, 0x250, "IA32_MTRR_FIX64K", C_FEAT, true, F1(F_MTRR), NULL },
	{ 0x258, 0x259, "IA32_MTRR_FIX16K", C_FEAT, true, F1(F_MTRR), NULL },
	{ 0x268, 0x26f, "IA32_MTRR_FIX4K", C_FEAT, true, F1(F_MTRR), NULL },
	{ 0x277, 0x277, "IA32_PAT", C_FEAT, false, F1(F_PAT), NULL },
	{ 0x2ff, 0x2ff, "IA32_MTRR_DEF_TYPE", C_FEAT, true, F1(F_MTRR), NULL },
	{ 0x309, 0x30b, "IA32_FIXED_CTR", C_PMU_INTEL_FIXED, false, NOF, NULL },
	{ 0x345, 0x345, "IA32_PERF_CAPABILITIES", C_FEAT, false, F1(F_PDCM), NULL },
	{ 0x38d, 0x390, "IA32_PERF_GLOBAL", C_PMU_INTEL_V2, false, NOF, NULL },
	{ 0x3f1, 0x3f2, "IA32_PEBS", C_PMU_INTEL_V2, false, F1(F_DTS), NULL },
	{ 0x400, 0x47f, "IA32_MC_BANK", C_MCE_BANK, true, NOF, NULL },
	{ 0x4c1, 0x4c8, "IA32_A_PMC", C_PMU_INTEL_GP, false, F1(F_PDCM), NULL },
	{ 0x4d0, 0x4d0, "IA32_MCG_EXT_CTL", C_NOT_STATE, false, NOF, "needs LMCE, which Ember does not offer" },
	{ 0x560, 0x561, "IA32_RTIT_OUTPUT", C_FEAT, false, F1(F_INTEL_PT), NULL },
	{ 0x570, 0x572, "IA32_RTIT_CTL", C_FEAT, false, F1(F_INTEL_PT), NULL },
	{ 0x580, 0x587, "IA32_RTIT_ADDR", C_FEAT, false, F1(F_INTEL_PT), NULL },
	{ 0x600, 0x600, "IA32_DS_AREA", C_PMU_INTEL_V2, false, F1(F_DTS), NULL },
	{ 0x6a0, 0x6a0, "IA32_U_CET", C_FEAT, false, F2(F_SHSTK, F_IBT), NULL },
	{ 0x6a2, 0x6a2, "IA32_S_CET", C_FEAT, false, F2(F_SHSTK, F_IBT), NULL },
	{ 0x6a4, 0x6a8, "IA32_PL_SSP", C_FEAT, false, F1(F_SHSTK), NULL },
	{ 0x6e0, 0x6e0, "IA32_TSC_DEADLINE", C_FEAT, false, F1(F_TSC_DEADLINE_TIMER), NULL },
	{ 0x6e1, 0x6e1, "IA32_PKRS", C_FEAT, false, F1(F_PKS), NULL },
	{ 0xd90, 0xd90, "IA32_BNDCFGS", C_FEAT, false, F1(F_MPX), NULL },
	{ 0xda0, 0xda0, "IA32_XSS", C_FEAT, false, F1(F_XSAVES), NULL },
	{ 0x1200, 0x121f, "ARCH_LBR_INFO", C_FEAT, false, F1(F_ARCH_LBR), NULL },
	{ 0x14ce, 0x14cf, "ARCH_LBR_CTL", C_FEAT, false, F1(F_ARCH_LBR), NULL },
	{ 0x1500, 0x151f, "ARCH_LBR_FROM", C_FEAT, false, F1(F_ARCH_LBR), NULL },
	{ 0x1600, 0x161f, "ARCH_LBR_TO", C_FEAT, false, F1(F_ARCH_LBR), NULL },
	{ 0x4b564d00, 0x4b564d01, "KVM_CLOCK_NEW", C_FEAT, false, F1(F_KVMCLOCK2), NULL },
	{ 0x4b564d02, 0x4b564d02, "KVM_ASYNC_PF_EN", C_FEAT, false, F1(F_KVM_ASYNCPF), NULL },
	{ 0x4b564d03, 0x4b564d03, "KVM_STEAL_TIME", C_FEAT, false, F1(F_KVM_STEAL_TIME), NULL },
	{ 0x4b564d04, 0x4b564d04, "KVM_PV_EOI_EN", C_FEAT, false, F1(F_KVM_PV_EOI), NULL },
	{ 0x4b564d05, 0x4b564d05, "KVM_POLL_CONTROL", C_FEAT, false, F1(F_KVM_POLL_CONTROL), NULL },
	{ 0x4b564d06, 0x4b564d07, "KVM_ASYNC_PF_INT", C_FEAT, false, F1(F_KVM_ASYNCPF_INT), NULL },
	{ 0xc0000081, 0xc0000081, "STAR", C_FEAT, false, F1(F_SYSCALL), NULL },
	{ 0xc0000082, 0xc0000084, "LSTAR_CSTAR_SFMASK", C_FEAT, false, F1(F_LM), NULL },
	{ 0xc0000102, 0xc0000102, "KERNEL_GS_BASE", C_FEAT, false, F1(F_LM), NULL },
	{ 0xc0000103, 0xc0000103, "TSC_AUX", C_FEAT, false, F2(F_RDTSCP, F_RDPID), NULL },
	{ 0xc0000104, 0xc0000104, "AMD64_TSC_RATIO", C_FEAT, false, F1(F_TSCRATEMSR), NULL },
	{ 0xc0000300, 0xc0000303, "AMD64_PERF_CNTR_GLOBAL", C_PMU_AMD_V2, false, F1(F_PERFMON_V2), NULL },
	{ 0xc0010000, 0xc0010007, "K7_PERF", C_PMU_AMD, false, NOF, NULL },
	{ 0xc0010015, 0xc0010015, "K7_HWCR", C_ALWAYS, false, NOF, NULL },
	{ 0xc0010114, 0xc0010114, "VM_CR", C_FEAT, false, F1(F_SVM), NULL },
	{ 0xc0010117, 0xc0010117, "VM_HSAVE_PA", C_FEAT, false, F1(F_SVM), NULL },
	{ 0xc001011f, 0xc001011f, "AMD64_VIRT_SPEC_CTRL", C_FEAT, false, F1(F_VIRT_SSBD), NULL },
	{ 0xc0010140, 0xc0010141, "AMD64_OSVW", C_FEAT, false, F1(F_OSVW), NULL },
	{ 0xc0010200, 0xc001020b, "F15H_PERF", C_PMU_AMD, false, F1(F_PERFCTR_CORE), NULL },
	{ 0xc0011029, 0xc0011029, "AMD64_DE_CFG", C_AMD, false, NOF, NULL },
};
#define NRULES (sizeof(rules) / sizeof(rules[0]))

/* Binary search: rules[] is sorted by index with disjoint ranges
 * (msr_rules_sorted, checked by test_msr). A list build looks up some 200
 * MSRs. */
static const struct msr_rule *find_rule(uint32_t index)
{
	size_t lo = 0, hi = NRULES;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (index < rules[mid].first)
			hi = mid;
		else if (index > rules[mid].last)
			lo = mid + 1;
		else
			return &rules[mid];
	}
	return NULL;
}

bool msr_rules_sorted(void)
{
	for (size_t i = 0; i < NRULES; i++)
		if (rules[i].first > rules[i].last || (i && rules[i].first <= rules[i - 1].last))
			return false;
	return true;
}

const char *msr_name(uint32_t index)
{
	const struct msr_rule *r = find_rule(index);
	return r ? r->name : NULL;
}

/* True when no feature is listed or the guest has one of them. why NULL:
 * the caller only filters (msr_build_list), so no reason is formatted. */
static bool any_feature(const struct msr_rule *r, const struct kvm_cpuid2 *c, const char **why)
{
	if (r->feat[0] == F_NONE)
		return true;
	for (int i = 0; i < 4 && r->feat[i] != F_NONE; i++)
		if (cpuid_has(c, r->feat[i]))
			return true;
	if (!why)
		return false;
	static __thread char buf[96];
	snprintf(buf, sizeof(buf), "guest lacks %s", cpu_features[r->feat[0]].name);
	for (int i = 1; i < 4 && r->feat[i] != F_NONE; i++) {
		size_t n = strlen(buf);
		snprintf(buf + n, sizeof(buf) - n, "|%s", cpu_features[r->feat[i]].name);
	}
	*why = buf;
	return false;
}

static uint32_t leaf_reg(const struct kvm_cpuid2 *c, uint32_t leaf, unsigned reg)
{
	struct kvm_cpuid_entry2 *e = cpuid_entry(c, leaf, 0);
	return e ? *cpuid_reg_ptr(e, reg) : 0;
}

/* msr_saved with the rule found already (NULL: none). */
static bool rule_saves(const struct msr_rule *r, uint32_t index, const struct msr_guest *g, const char **why)
{
	const char *dummy;
	/* Where the caller wants no reason, any_feature formats none. */
	const char **feat_why = why;
	if (!why)
		why = &dummy;
	if (!r) {
		*why = "unknown to Ember";
		return false;
	}
	unsigned n = index - r->first;
	/* Read only by the PMU and vendor rules: each read is a CPUID
	 * lookup, and a list build asks about some 200 MSRs. */
	uint32_t pmu_eax = 0, pmu_edx = 0;
	bool amd = false;
	if (r->cond == C_PMU_INTEL_GP || r->cond == C_PMU_INTEL_FIXED || r->cond == C_PMU_INTEL_V2) {
		pmu_eax = leaf_reg(g->cpuid, 0xa, EAX);
		pmu_edx = leaf_reg(g->cpuid, 0xa, EDX);
	}
	if (r->cond == C_PMU_AMD || r->cond == C_PMU_AMD_V2 || r->cond == C_AMD)
		amd = cpuid_is_amd(g->cpuid);
	switch (r->cond) {
	case C_ALWAYS:
		return true;
	case C_FEAT:
		return any_feature(r, g->cpuid, feat_why);
	case C_WRITE_ONLY:
		*why = "write-only";
		return false;
	case C_NOT_STATE:
		*why = r->note;
		return false;
	case C_PMU_AMD:
		if (!g->pmu || !amd) {
			*why = g->pmu ? "not an AMD guest" : "guest has no PMU";
			return false;
		}
		return any_feature(r, g->cpuid, feat_why);
	case C_PMU_AMD_V2:
		/* KVM gives the global registers only with counters to control
		 * (amd_pmu_refresh); a PerfMonV2 bit with zero counters, as
		 * kvm_pvm reports, leaves them #GP in the guest. */
		if (!g->pmu || !amd || !(leaf_reg(g->cpuid, 0x80000022, EBX) & 0xf)) {
			*why = !g->pmu ? "guest has no PMU" : "guest has no PerfMonV2 core counters";
			return false;
		}
		return any_feature(r, g->cpuid, feat_why);
	case C_PMU_INTEL_GP:
		if (!g->pmu || (pmu_eax & 0xff) < 1 || n >= ((pmu_eax >> 8) & 0xff)) {
			*why = "guest has no such PMU counter";
			return false;
		}
		return any_feature(r, g->cpuid, feat_why);
	case C_PMU_INTEL_FIXED:
		if (!g->pmu || (pmu_eax & 0xff) < 2 || n >= (pmu_edx & 0x1f)) {
			*why = "guest has no such fixed PMU counter";
			return false;
		}
		return true;
	case C_PMU_INTEL_V2:
		if (!g->pmu || (pmu_eax & 0xff) < 2) {
			*why = "guest has no architectural PMU v2";
			return false;
		}
		return any_feature(r, g->cpuid, feat_why);
	case C_MCG_CTL:
		if (!(g->mcg_cap & MCG_CTL_P)) {
			*why = "MCG_CAP has no MCG_CTL_P";
			return false;
		}
		return true;
	case C_MCE_BANK:
		if (n / 4 >= (g->mcg_cap & 0xff)) {
			*why = "no such MCE bank";
			return false;
		}
		return true;
	case C_AMD:
		if (!amd) {
			*why = "not an AMD guest";
			return false;
		}
		return true;
	}
	*why = "no rule";
	return false;
}

bool msr_saved(uint32_t index, const struct msr_guest *g, const char **why)
{
	return rule_saves(find_rule(index), index, g, why);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Sorts and removes repeats in place. */
static void sort_unique(struct msr_list *l)
{
	if (!l->n)
		return;
	qsort(l->index, l->n, sizeof(l->index[0]), cmp_u32);
	unsigned w = 1;
	for (unsigned i = 1; i < l->n; i++)
		if (l->index[i] != l->index[w - 1])
			l->index[w++] = l->index[i];
	l->n = w;
}

static int get_list(int kvm_fd, unsigned long req, struct msr_list *out)
{
	struct kvm_msr_list probe = { .nmsrs = 0 };
	if (ioctl(kvm_fd, req, &probe) < 0 && errno != E2BIG)
		return -errno;
	unsigned n = probe.nmsrs;
	struct kvm_msr_list *l = calloc(1, sizeof(*l) + (n + 1) * sizeof(uint32_t));
	if (!l)
		return -ENOMEM;
	l->nmsrs = n;
	if (n && ioctl(kvm_fd, req, l) < 0) {
		int err = -errno;
		free(l);
		return err;
	}
	uint32_t *grown = realloc(out->index, (out->n + l->nmsrs + 1) * sizeof(uint32_t));
	if (!grown) {
		free(l);
		return -ENOMEM;
	}
	out->index = grown;
	memcpy(out->index + out->n, l->indices, l->nmsrs * sizeof(uint32_t));
	out->n += l->nmsrs;
	free(l);
	return 0;
}

int msr_kvm_lists(int kvm_fd, struct msr_list *out)
{
	memset(out, 0, sizeof(*out));
	int r = get_list(kvm_fd, KVM_GET_MSR_INDEX_LIST, out);
	if (!r && ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_GET_MSR_FEATURES) > 0)
		r = get_list(kvm_fd, KVM_GET_MSR_FEATURE_INDEX_LIST, out);
	if (r) {
		msr_list_free(out);
		return r;
	}
	sort_unique(out);
	return 0;
}

static bool sorted_unique(const struct msr_list *l)
{
	for (unsigned i = 1; i < l->n; i++)
		if (l->index[i] <= l->index[i - 1])
			return false;
	return true;
}

/* The candidates are KVM's list (sorted: msr_kvm_lists makes it so) and
 * the rules' extras (in the table's order, which is sorted), merged in one
 * pass whose rule cursor only moves forward: no sort, no search. */
int msr_build_list(const struct msr_list *kvm, const struct msr_guest *g, struct msr_list *save,
		   struct msr_list *dropped)
{
	memset(save, 0, sizeof(*save));
	if (dropped)
		memset(dropped, 0, sizeof(*dropped));
	struct msr_list k = *kvm, copy = { 0 };
	if (!sorted_unique(&k)) {      /* a caller's own list */
		if (!(copy.index = malloc((k.n + 1) * sizeof(uint32_t))))
			return -ENOMEM;
		memcpy(copy.index, k.index, k.n * sizeof(uint32_t));
		copy.n = k.n;
		sort_unique(&copy);
		k = copy;
	}
	unsigned extras = 0;
	for (size_t i = 0; i < NRULES; i++)
		extras += rules[i].extra ? rules[i].last - rules[i].first + 1 : 0;
	save->index = malloc((k.n + extras + 1) * sizeof(uint32_t));
	if (dropped)
		dropped->index = malloc((k.n + 1) * sizeof(uint32_t));
	if (!save->index || (dropped && !dropped->index)) {
		msr_list_free(save);
		if (dropped)
			msr_list_free(dropped);
		msr_list_free(&copy);
		return -ENOMEM;
	}
	unsigned ki = 0;
	size_t xr = 0, rc = 0;              /* the next extra's rule; the rule cursor */
	uint64_t xm = rules[0].first;       /* the next extra in rules[xr] */
	for (;;) {
		while (xr < NRULES && (!rules[xr].extra || xm > rules[xr].last)) {
			xr++;
			xm = xr < NRULES ? rules[xr].first : 0;
		}
		bool have_k = ki < k.n, have_x = xr < NRULES;
		if (!have_k && !have_x)
			break;
		uint32_t idx = !have_x || (have_k && k.index[ki] <= xm) ? k.index[ki] : (uint32_t)xm;
		bool listed = have_k && k.index[ki] == idx;
		ki += listed;
		if (have_x && xm == idx)
			xm++;
		while (rc < NRULES && rules[rc].last < idx)
			rc++;
		const struct msr_rule *r = rc < NRULES && rules[rc].first <= idx ? &rules[rc] : NULL;
		if (rule_saves(r, idx, g, NULL))
			save->index[save->n++] = idx;
		else if (dropped && listed)
			dropped->index[dropped->n++] = idx;
	}
	msr_list_free(&copy);
	return 0;
}

void msr_list_free(struct msr_list *l)
{
	free(l->index);
	l->index = NULL;
	l->n = 0;
}

bool msr_list_has(const struct msr_list *l, uint32_t index)
{
	return l->n && bsearch(&index, l->index, l->n, sizeof(uint32_t), cmp_u32);
}

uint64_t msr_mcg_cap(const struct kvm_cpuid2 *cpuid, uint64_t supported)
{
	if (!cpuid_has(cpuid, F_MCE) || !cpuid_has(cpuid, F_MCA))
		return 0;
	/* KVM_X86_GET_MCE_CAP_SUPPORTED gives capability bits; KVM takes up
	 * to 32 banks. Ember's choice is fixed so it is the same on every host. */
	if (!supported)
		return 0;
	return EMBER_MCE_BANKS | (supported & MCG_CTL_P);
}
