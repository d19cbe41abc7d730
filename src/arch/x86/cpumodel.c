/* The CPU model policy: models table, "MODEL,+f,-f" parsing, and the guest
 * CPUID built from the host's supported CPUID. */
#include "arch/x86/cpumodel.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/cpufeat.h"

#define END F_NONE

/* KVM-emulated features every model offers: they cost nothing on any
 * host with an in-kernel irqchip and kvmclock, and Linux guests want them. */
#define KVM_BASE F_HYPERVISOR, F_X2APIC, F_TSC_DEADLINE_TIMER, F_ARAT, \
	F_KVMCLOCK, F_KVM_NOPIODELAY, F_KVMCLOCK2, F_KVM_ASYNCPF, F_KVM_ASYNCPF_INT, \
	F_KVM_STEAL_TIME, F_KVM_PV_EOI, F_KVM_PV_UNHALT, F_KVMCLOCK_STABLE_BIT
/* The x86-64 psABI levels (x86-64-ABI, "Micro-Architecture Levels"), with
 * the leaf-1 basics 64-bit kernels use. Not VME: virtual-8086 mode does not
 * exist in long mode, the psABI does not list it, and a host CPU without it
 * (QEMU's TCG, so the nested SVM test host) could run no model at all. */
#define LEVEL1 F_FPU, F_DE, F_PSE, F_TSC, F_MSR, F_PAE, F_MCE, F_CX8, F_APIC, \
	F_SEP, F_MTRR, F_PGE, F_MCA, F_CMOV, F_PAT, F_PSE36, F_CLFLUSH, F_MMX, F_FXSR, \
	F_SSE, F_SSE2, F_SYSCALL, F_NX, F_LM
#define LEVEL2 F_CX16, F_LAHF_LM, F_POPCNT, F_PNI, F_SSE4_1, F_SSE4_2, F_SSSE3
#define LEVEL3 F_AVX, F_AVX2, F_BMI1, F_BMI2, F_F16C, F_FMA, F_ABM, F_MOVBE, F_XSAVE
#define LEVEL4 F_AVX512F, F_AVX512BW, F_AVX512CD, F_AVX512DQ, F_AVX512VL

static const int16_t v1[] = { KVM_BASE, LEVEL1, END };
static const int16_t v2[] = { KVM_BASE, LEVEL1, LEVEL2, END };
static const int16_t v3[] = { KVM_BASE, LEVEL1, LEVEL2, LEVEL3, END };
static const int16_t v4[] = { KVM_BASE, LEVEL1, LEVEL2, LEVEL3, LEVEL4, END };

struct model_def {
	const char *name;
	const char *desc;
	const int16_t *features;   /* NULL: host */
};

static const struct model_def models[] = {
	{ "host", "everything this host's KVM supports (default)", NULL },
	{ "x86-64", "x86-64 baseline (psABI level 1), no PMU", v1 },
	{ "x86-64-v1", "same as x86-64", v1 },
	{ "x86-64-v2", "level 1 + cx16 lahf_lm popcnt pni ssse3 sse4_1 sse4_2, no PMU", v2 },
	{ "x86-64-v3", "level 2 + avx avx2 bmi1 bmi2 f16c fma abm movbe xsave, no PMU", v3 },
	{ "x86-64-v4", "level 3 + avx512f avx512bw avx512cd avx512dq avx512vl, no PMU", v4 },
};
#define NMODELS (sizeof(models) / sizeof(models[0]))

const struct cpumodel_info *cpumodel_list(void)
{
	static struct cpumodel_info list[NMODELS + 1];
	for (size_t i = 0; i < NMODELS; i++)
		list[i] = (struct cpumodel_info){ models[i].name, models[i].desc };
	return list;
}

/* Features a backend cannot run in guest kernel mode: on kvm_pvm, guest
 * CPL0 code is emulated and the emulator fails `lock cmpxchg16b` and
 * xsave/xrstor (KVM_EXIT_INTERNAL_ERROR). "host" hides them there unless
 * the user asks for them with +name. */
static const int16_t pvm_cpl0_broken[] = { F_CX16, F_XSAVE, END };

/* Feature registers: the ones the name table covers. A named model clears
 * them whole, so bits Ember has no name for never leak from the host. */
static const struct { uint32_t leaf, subleaf; uint8_t reg; } feature_regs[] = {
	{ 0x1, 0, EDX }, { 0x1, 0, ECX }, { 0x6, 0, EAX }, { 0x7, 0, EBX }, { 0x7, 0, ECX },
	{ 0x7, 0, EDX }, { 0x7, 1, EAX }, { 0x7, 1, EBX }, { 0x7, 1, ECX }, { 0x7, 1, EDX },
	{ 0x7, 2, EDX }, { 0xd, 1, EAX }, { 0x80000001, 0, ECX }, { 0x80000001, 0, EDX },
	{ 0x80000007, 0, EDX }, { 0x80000008, 0, EBX }, { 0x80000021, 0, EAX },
	{ 0x80000022, 0, EAX }, { 0x40000001, 0, EAX }, { 0x40000001, 0, EDX },
};
/* AMD's 0x80000001 EDX repeats these leaf-1 EDX bits. */
#define AMD_LEAF1_MIRROR 0x0183f3ffu

static int errf(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int errf(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

void cpuid_vendor(const struct kvm_cpuid2 *c, char buf[13])
{
	struct kvm_cpuid_entry2 *e = cpuid_entry(c, 0, 0);
	memset(buf, 0, 13);
	if (!e)
		return;
	memcpy(buf, &e->ebx, 4);
	memcpy(buf + 4, &e->edx, 4);
	memcpy(buf + 8, &e->ecx, 4);
}

bool cpuid_is_amd(const struct kvm_cpuid2 *c)
{
	char v[13];
	cpuid_vendor(c, v);
	return !strcmp(v, "AuthenticAMD") || !strcmp(v, "HygonGenuine");
}

static const struct model_def *find_model(const char *name)
{
	for (size_t i = 0; i < NMODELS; i++)
		if (!strcmp(models[i].name, name))
			return &models[i];
	return NULL;
}

/* One "+name" / "-name" item of a spec. */
struct flag {
	bool add;
	int feature;   /* F_*, or F_COUNT for the "pmu" pseudo-feature */
	char name[48];
};
#define FLAG_PMU F_COUNT
#define MAX_FLAGS 64

/* Splits "MODEL,+f,-f" into the model and the flags. */
static int parse_spec(const char *spec, const struct model_def **model, struct flag *flags,
		      unsigned *nflags, char *err, size_t errlen)
{
	if (!spec || !*spec)
		return errf(err, errlen, "--cpu: empty model (see ember cpu --list)");
	if (strlen(spec) >= CPUMODEL_SPEC_MAX)
		return errf(err, errlen, "--cpu: specification too long");
	char buf[CPUMODEL_SPEC_MAX];
	strcpy(buf, spec);
	char *save = NULL;
	char *tok = strtok_r(buf, ",", &save);
	if (!tok || spec[0] == ',')
		return errf(err, errlen, "--cpu %s: no model name before the features", spec);
	*model = find_model(tok);
	if (!*model)
		return errf(err, errlen, "--cpu %s: unknown CPU model '%s' (see ember cpu --list)", spec, tok);
	*nflags = 0;
	while ((tok = strtok_r(NULL, ",", &save))) {
		if ((tok[0] != '+' && tok[0] != '-') || !tok[1])
			return errf(err, errlen, "--cpu %s: '%s' must be +FEATURE or -FEATURE", spec, tok);
		if (*nflags == MAX_FLAGS)
			return errf(err, errlen, "--cpu %s: more than %d features", spec, MAX_FLAGS);
		struct flag *f = &flags[(*nflags)++];
		f->add = tok[0] == '+';
		snprintf(f->name, sizeof(f->name), "%s", tok + 1);
		if (!strcmp(tok + 1, "pmu")) {
			f->feature = FLAG_PMU;
			continue;
		}
		f->feature = cpufeat_lookup(tok + 1);
		if (f->feature == F_NONE)
			return errf(err, errlen, "--cpu %s: unknown CPU feature '%s' (see ember cpu --list-features)",
				    spec, tok + 1);
	}
	return 0;
}

int cpumodel_check_spec(const char *spec, char *err, size_t errlen)
{
	const struct model_def *m;
	struct flag flags[MAX_FLAGS];
	unsigned n;
	return parse_spec(spec, &m, flags, &n, err, errlen);
}

static bool user_asked(const struct flag *flags, unsigned n, int f)
{
	for (unsigned i = 0; i < n; i++)
		if (flags[i].feature == f)
			return true;
	return false;
}

static void zero_leaf(struct kvm_cpuid2 *c, uint32_t leaf)
{
	for (unsigned i = 0; i < c->nent; i++)
		if (c->entries[i].function == leaf)
			c->entries[i].eax = c->entries[i].ebx = c->entries[i].ecx = c->entries[i].edx = 0;
}

/* Leaf 0xD: only the state components whose features the guest has, and
 * the XSAVE area sizes that follow (SDM vol. 1, 13.2). */
static void fix_xsave_leaf(struct kvm_cpuid2 *c)
{
	if (!cpuid_has(c, F_XSAVE)) {
		zero_leaf(c, 0xd);
		return;
	}
	uint64_t mask = 0x3;                                  /* x87, SSE */
	if (cpuid_has(c, F_AVX)) mask |= 1ull << 2;
	if (cpuid_has(c, F_MPX)) mask |= 3ull << 3;
	if (cpuid_has(c, F_AVX512F)) mask |= 7ull << 5;
	if (cpuid_has(c, F_INTEL_PT)) mask |= 1ull << 8;
	if (cpuid_has(c, F_PKU)) mask |= 1ull << 9;
	if (cpuid_has(c, F_ENQCMD)) mask |= 1ull << 10;
	if (cpuid_has(c, F_SHSTK) || cpuid_has(c, F_IBT)) mask |= 3ull << 11;
	if (cpuid_has(c, F_UINTR)) mask |= 1ull << 14;
	if (cpuid_has(c, F_ARCH_LBR)) mask |= 1ull << 15;
	if (cpuid_has(c, F_AMX_TILE)) mask |= 3ull << 17;

	uint32_t max_end = 512 + 64;                          /* legacy area + header */
	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		if (e->function != 0xd || e->index < 2)
			continue;
		if (e->index >= 64 || !(mask >> e->index & 1)) {
			e->eax = e->ebx = e->ecx = e->edx = 0;
			continue;
		}
		/* User components (ECX bit 0 clear) sit at EBX in the standard format. */
		if (!(e->ecx & 1) && e->ebx + e->eax > max_end)
			max_end = e->ebx + e->eax;
	}
	struct kvm_cpuid_entry2 *e0 = cpuid_entry(c, 0xd, 0);
	if (e0) {
		e0->eax &= (uint32_t)mask;
		e0->edx &= (uint32_t)(mask >> 32);
		e0->ecx = max_end;
		e0->ebx = 512 + 64;                           /* for XCR0 = x87: KVM updates it */
	}
	struct kvm_cpuid_entry2 *e1 = cpuid_entry(c, 0xd, 1);
	if (e1) {
		e1->ecx &= (uint32_t)mask;
		e1->edx &= (uint32_t)(mask >> 32);
		if (!cpuid_has(c, F_XSAVES))
			e1->ecx = e1->edx = 0;
		e1->ebx = 0;                                  /* size for XCR0|XSS: KVM updates it */
	}
}

/* Leaves that only describe a feature go when the feature goes. */
static void fix_feature_leaves(struct kvm_cpuid2 *c, bool pmu)
{
	if (!pmu) {
		zero_leaf(c, 0xa);
		zero_leaf(c, 0x80000022);
		static const int16_t pmu_features[] = { F_PDCM, F_PERFCTR_CORE, F_PERFCTR_NB,
							F_PERFCTR_LLC, F_PERFMON_V2, F_ARCH_LBR, END };
		for (const int16_t *f = pmu_features; *f != END; f++)
			cpuid_clear_with_dependents(c, *f);
	}
	if (!cpuid_has(c, F_SGX))
		zero_leaf(c, 0x12);
	if (!cpuid_has(c, F_INTEL_PT))
		zero_leaf(c, 0x14);
	if (!cpuid_has(c, F_AMX_TILE)) {
		zero_leaf(c, 0x1d);
		zero_leaf(c, 0x1e);
	}
	if (!cpuid_has(c, F_ARCH_LBR))
		zero_leaf(c, 0x1c);
	/* Bits the guest OS sets at run time; KVM computes them. */
	cpuid_clear(c, F_OSXSAVE);
	cpuid_clear(c, F_OSPKE);
	fix_xsave_leaf(c);
}

static void clear_feature_regs(struct kvm_cpuid2 *c)
{
	for (size_t i = 0; i < sizeof(feature_regs) / sizeof(feature_regs[0]); i++) {
		struct kvm_cpuid_entry2 *e = cpuid_entry(c, feature_regs[i].leaf, feature_regs[i].subleaf);
		if (e)
			*cpuid_reg_ptr(e, feature_regs[i].reg) = 0;
	}
}

/* Appends ", name" to a list in buf. */
static void list_add(char *buf, size_t len, const char *name)
{
	size_t used = strlen(buf);
	snprintf(buf + used, len - used, "%s%s", used ? ", " : "", name);
}

static int apply_named_model(struct kvm_cpuid2 *c, const struct model_def *model,
			     const struct kvm_cpuid2 *supported, const char *spec, char *err, size_t errlen)
{
	struct kvm_cpuid_entry2 *sup81 = cpuid_entry(supported, 0x80000001, 0);
	clear_feature_regs(c);
	char missing[256] = "";
	for (const int16_t *f = model->features; *f != END; f++) {
		if (!cpuid_has(supported, *f) || !cpuid_set(c, *f))
			list_add(missing, sizeof(missing), cpu_features[*f].name);
	}
	if (missing[0])
		return errf(err, errlen, "--cpu %s: this host's KVM cannot provide %s (see ember cpu)",
			    spec, missing);
	struct kvm_cpuid_entry2 *l1 = cpuid_entry(c, 1, 0), *l81 = cpuid_entry(c, 0x80000001, 0);
	if (cpuid_is_amd(c) && l1 && l81 && sup81)
		l81->edx |= l1->edx & sup81->edx & AMD_LEAF1_MIRROR;
	return 0;
}

int cpumodel_build(struct cpu_model *m, const char *spec, const struct cpu_host *host,
		   char *err, size_t errlen)
{
	memset(m, 0, sizeof(*m));
	const struct model_def *model;
	struct flag flags[MAX_FLAGS];
	unsigned nflags;
	int r = parse_spec(spec, &model, flags, &nflags, err, errlen);
	if (r)
		return r;
	snprintf(m->spec, sizeof(m->spec), "%s", spec);
	snprintf(m->base, sizeof(m->base), "%s", model->name);

	struct kvm_cpuid2 *c = cpuid_dup(host->supported, 0);
	if (!c)
		return -ENOMEM;
	m->cpuid = c;
	if (model->features) {
		if ((r = apply_named_model(c, model, host->supported, spec, err, errlen)))
			goto fail;
		m->pmu = false;
	} else {
		m->pmu = host->pmu;
		if (host->backend && !strcmp(host->backend, "kvm_pvm")) {
			for (const int16_t *f = pvm_cpl0_broken; *f != END; f++) {
				if (!cpuid_has(c, *f) || user_asked(flags, nflags, *f))
					continue;
				cpuid_clear_with_dependents(c, *f);
				list_add(m->backend_masked, sizeof(m->backend_masked), cpu_features[*f].name);
			}
		}
	}

	/* Before the flags: -hypervisor takes it away like any feature. */
	cpuid_set(c, F_HYPERVISOR);
	for (unsigned i = 0; i < nflags; i++) {
		const struct flag *f = &flags[i];
		if (f->feature == FLAG_PMU) {
			if (f->add && !host->pmu) {
				r = errf(err, errlen, "--cpu %s: this host's KVM gives guests no PMU", spec);
				goto fail;
			}
			m->pmu = f->add;
			continue;
		}
		if (!f->add) {
			cpuid_clear_with_dependents(c, f->feature);
			continue;
		}
		if (!cpuid_has(host->supported, f->feature) || !cpuid_set(c, f->feature)) {
			r = errf(err, errlen, "--cpu %s: this host's KVM cannot provide '%s'", spec, f->name);
			goto fail;
		}
		int dep = cpufeat_missing_dependency(c, f->feature);
		if (dep != F_NONE) {
			r = errf(err, errlen, "--cpu %s: '%s' needs '%s', which this model lacks",
				 spec, f->name, cpu_features[dep].name);
			goto fail;
		}
	}
	/* Without a PMU the leaves go and the PMU features with them: one
	 * the spec adds by name is refused, not dropped without a word. */
	bool had[MAX_FLAGS];
	for (unsigned i = 0; i < nflags; i++)
		had[i] = flags[i].add && flags[i].feature != FLAG_PMU && cpuid_has(c, flags[i].feature);
	fix_feature_leaves(c, m->pmu);
	for (unsigned i = 0; i < nflags; i++) {
		if (had[i] && !cpuid_has(c, flags[i].feature)) {
			r = errf(err, errlen, "--cpu %s: '%s' needs the PMU, which this model has not (+pmu)",
				 spec, flags[i].name);
			goto fail;
		}
	}
	return 0;
fail:
	cpumodel_free(m);
	return r;
}

void cpumodel_free(struct cpu_model *m)
{
	free(m->cpuid);
	m->cpuid = NULL;
}

int cpumodel_check_supported(const struct kvm_cpuid2 *guest, const struct kvm_cpuid2 *supported,
			     char *err, size_t errlen)
{
	char missing[256] = "";
	/* Not KVM's to support: the hypervisor bit, the topology bits Ember
	 * writes per vCPU (cpuid.c: HTT and CmpLegacy with --cpus > 1), the
	 * bits KVM derives from the vCPU's state (cpuid_runtime_mask). */
	struct cpuid_cursor kg = { .c = guest }, ks = { .c = supported };
	for (int f = 0; f < F_COUNT; f++)
		if (cpuid_cursor_has(&kg, f) && !cpuid_cursor_has(&ks, f) && f != F_HYPERVISOR && f != F_HT &&
		    f != F_CMP_LEGACY && !cpufeat_is_runtime(f))
			list_add(missing, sizeof(missing), cpu_features[f].name);
	char gv[13], sv[13];
	cpuid_vendor(guest, gv);
	cpuid_vendor(supported, sv);
	if (strcmp(gv, sv))
		return errf(err, errlen, "the saved CPU is %s, this host is %s", gv, sv);
	if (missing[0])
		return errf(err, errlen, "this host's KVM cannot provide %s", missing);
	return 0;
}

int cpumodel_diff(const struct kvm_cpuid2 *a, const struct kvm_cpuid2 *b, char *err, size_t errlen)
{
	char va[13], vb[13];
	cpuid_vendor(a, va);
	cpuid_vendor(b, vb);
	if (strcmp(va, vb))
		return errf(err, errlen, "%s, not %s", va, vb), 1;
	const struct kvm_cpuid_entry2 *sa = cpuid_entry(a, 1, 0), *sb = cpuid_entry(b, 1, 0);
	uint32_t siga = sa ? sa->eax : 0, sigb = sb ? sb->eax : 0;
	if (siga != sigb)
		return errf(err, errlen, "signature (family, model, stepping) %#x, not %#x", siga, sigb), 1;
	char only_a[512] = "", only_b[512] = "";
	struct cpuid_cursor ka = { .c = a }, kb = { .c = b };
	for (int f = 0; f < F_COUNT; f++) {
		if (f == F_HT || f == F_CMP_LEGACY || cpufeat_is_runtime(f))
			continue;
		bool in_a = cpuid_cursor_has(&ka, f);
		if (in_a == cpuid_cursor_has(&kb, f))
			continue;
		list_add(in_a ? only_a : only_b, sizeof(only_a), cpu_features[f].name);
	}
	if (!only_a[0] && !only_b[0])
		return 0;
	errf(err, errlen, "%s%s%s%s%s", only_a[0] ? "it has " : "", only_a, only_a[0] && only_b[0] ? "; " : "",
	     only_b[0] ? "it lacks " : "", only_b);
	return 1;
}
