/* The feature-name table and the feature dependency table. */
#include "arch/x86/cpufeat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct cpu_feature cpu_features[F_COUNT] = {
#define X(id, n, l, s, r, b) [F_##id] = { .name = n, .leaf = l, .subleaf = s, .reg = r, .bit = b },
#include "arch/x86/cpufeat_list.h"
#undef X
};

/* { needed, needing }: `needing` cannot be offered without `needed`. */
static const int16_t deps[][2] = {
	{ F_SSE, F_SSE2 }, { F_SSE2, F_PNI }, { F_PNI, F_SSSE3 }, { F_SSSE3, F_SSE4_1 },
	{ F_SSE4_1, F_SSE4_2 }, { F_SSE2, F_AES }, { F_SSE2, F_PCLMULQDQ },
	{ F_FXSR, F_SSE }, { F_FXSR, F_FXSR_OPT },
	{ F_XSAVE, F_XSAVEOPT }, { F_XSAVE, F_XSAVEC }, { F_XSAVE, F_XGETBV1 },
	{ F_XSAVE, F_XSAVES }, { F_XSAVE, F_XFD }, { F_XSAVE, F_AVX }, { F_XSAVE, F_MPX },
	{ F_XSAVE, F_PKU }, { F_XSAVE, F_AMX_TILE }, { F_XSAVES, F_SHSTK }, { F_XSAVES, F_IBT },
	{ F_XSAVES, F_ARCH_LBR }, { F_XSAVES, F_INTEL_PT }, { F_XSAVES, F_UINTR },
	{ F_AVX, F_FMA }, { F_AVX, F_F16C }, { F_AVX, F_AVX2 }, { F_AVX, F_AVX512F },
	{ F_AVX, F_VAES }, { F_AVX, F_VPCLMULQDQ }, { F_AVX, F_AVX_VNNI }, { F_AVX, F_AVX_IFMA },
	{ F_AVX, F_XOP }, { F_AVX, F_FMA4 }, { F_AVX, F_SHA512 }, { F_AVX, F_SM3 }, { F_AVX, F_SM4 },
	{ F_AVX512F, F_AVX512DQ }, { F_AVX512F, F_AVX512IFMA }, { F_AVX512F, F_AVX512PF },
	{ F_AVX512F, F_AVX512ER }, { F_AVX512F, F_AVX512CD }, { F_AVX512F, F_AVX512BW },
	{ F_AVX512F, F_AVX512VL }, { F_AVX512F, F_AVX512VBMI }, { F_AVX512F, F_AVX512_VBMI2 },
	{ F_AVX512F, F_AVX512_VNNI }, { F_AVX512F, F_AVX512_BITALG },
	{ F_AVX512F, F_AVX512_VPOPCNTDQ }, { F_AVX512F, F_AVX512_4VNNIW },
	{ F_AVX512F, F_AVX512_4FMAPS }, { F_AVX512F, F_AVX512_VP2INTERSECT },
	{ F_AVX512F, F_AVX512_FP16 }, { F_AVX512F, F_AVX512_BF16 },
	{ F_AMX_TILE, F_AMX_BF16 }, { F_AMX_TILE, F_AMX_INT8 }, { F_AMX_TILE, F_AMX_FP16 },
	{ F_APIC, F_X2APIC }, { F_APIC, F_TSC_DEADLINE_TIMER }, { F_TSC, F_TSC_DEADLINE_TIMER },
	{ F_TSC, F_RDTSCP }, { F_TSC, F_INVTSC }, { F_TSC, F_TSC_ADJUST },
	{ F_MCE, F_MCA }, { F_PKU, F_OSPKE }, { F_XSAVE, F_OSXSAVE },
	{ F_SPEC_CTRL, F_INTEL_STIBP }, { F_SPEC_CTRL, F_SPEC_CTRL_SSBD },
	{ F_KVMCLOCK2, F_KVMCLOCK_STABLE_BIT },
	{ F_KVM_ASYNCPF, F_KVM_ASYNCPF_VMEXIT }, { F_KVM_ASYNCPF, F_KVM_ASYNCPF_INT },
	{ F_PERFCTR_CORE, F_PERFMON_V2 },
};

/* QEMU's spellings (target/i386/cpu.c) where they differ from Linux's
 * beyond '-' for '_', so QEMU command lines (tools/ember-qemu) work. */
static const char *const qemu_aliases[][2] = {
	{ "sse3", "pni" }, { "tsc-deadline", "tsc_deadline_timer" }, { "sse4.1", "sse4_1" },
	{ "sse4.2", "sse4_2" }, { "pclmuldq", "pclmulqdq" }, { "ds-cpl", "ds_cpl" },
	{ "lahf-lm", "lahf_lm" }, { "cmp-legacy", "cmp_legacy" }, { "fxsr-opt", "fxsr_opt" },
	{ "syscall", "syscall" }, { "i64", "lm" }, { "pdpe1gb", "pdpe1gb" },
};

static int lookup_exact(const char *name)
{
	for (int i = 0; i < F_COUNT; i++)
		if (!strcmp(cpu_features[i].name, name))
			return i;
	return F_NONE;
}

int cpufeat_lookup(const char *name)
{
	int f = lookup_exact(name);
	if (f != F_NONE)
		return f;
	for (size_t i = 0; i < sizeof(qemu_aliases) / sizeof(qemu_aliases[0]); i++)
		if (!strcmp(qemu_aliases[i][0], name))
			return lookup_exact(qemu_aliases[i][1]);
	/* QEMU writes "spec-ctrl" for Linux's "spec_ctrl". */
	char norm[64];
	size_t n = strlen(name);
	if (n >= sizeof(norm) || !strchr(name, '-'))
		return F_NONE;
	for (size_t i = 0; i <= n; i++)
		norm[i] = name[i] == '-' ? '_' : name[i];
	return lookup_exact(norm);
}

struct kvm_cpuid_entry2 *cpuid_entry(const struct kvm_cpuid2 *c, uint32_t leaf, uint32_t subleaf)
{
	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = (struct kvm_cpuid_entry2 *)&c->entries[i];
		if (e->function != leaf)
			continue;
		if (!(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e->index == subleaf)
			return e;
	}
	return NULL;
}

uint32_t *cpuid_reg_ptr(struct kvm_cpuid_entry2 *e, unsigned reg)
{
	switch (reg) {
	case EAX: return &e->eax;
	case EBX: return &e->ebx;
	case ECX: return &e->ecx;
	default: return &e->edx;
	}
}

bool cpuid_has(const struct kvm_cpuid2 *c, int f)
{
	if (f < 0 || f >= F_COUNT)
		return false;
	const struct cpu_feature *d = &cpu_features[f];
	struct kvm_cpuid_entry2 *e = cpuid_entry(c, d->leaf, d->subleaf);
	return e && (*cpuid_reg_ptr(e, d->reg) >> d->bit & 1);
}

bool cpuid_cursor_has(struct cpuid_cursor *k, int f)
{
	if (f < 0 || f >= F_COUNT)
		return false;
	const struct cpu_feature *d = &cpu_features[f];
	if (!k->valid || k->leaf != d->leaf || k->subleaf != d->subleaf) {
		k->e = cpuid_entry(k->c, d->leaf, d->subleaf);
		k->leaf = d->leaf;
		k->subleaf = d->subleaf;
		k->valid = true;
	}
	return k->e && (*cpuid_reg_ptr((struct kvm_cpuid_entry2 *)k->e, d->reg) >> d->bit & 1);
}

bool cpuid_set(struct kvm_cpuid2 *c, int f)
{
	const struct cpu_feature *d = &cpu_features[f];
	struct kvm_cpuid_entry2 *e = cpuid_entry(c, d->leaf, d->subleaf);
	if (!e)
		return false;
	*cpuid_reg_ptr(e, d->reg) |= 1u << d->bit;
	return true;
}

void cpuid_clear(struct kvm_cpuid2 *c, int f)
{
	const struct cpu_feature *d = &cpu_features[f];
	struct kvm_cpuid_entry2 *e = cpuid_entry(c, d->leaf, d->subleaf);
	if (e)
		*cpuid_reg_ptr(e, d->reg) &= ~(1u << d->bit);
}

void cpuid_clear_with_dependents(struct kvm_cpuid2 *c, int f)
{
	cpuid_clear(c, f);
	for (size_t i = 0; i < sizeof(deps) / sizeof(deps[0]); i++)
		if (deps[i][0] == f && cpuid_has(c, deps[i][1]))
			cpuid_clear_with_dependents(c, deps[i][1]);
}

int cpufeat_missing_dependency(const struct kvm_cpuid2 *c, int f)
{
	for (size_t i = 0; i < sizeof(deps) / sizeof(deps[0]); i++)
		if (deps[i][1] == f && !cpuid_has(c, deps[i][0]))
			return deps[i][0];
	return F_NONE;
}

size_t cpuid_size(unsigned n)
{
	return sizeof(struct kvm_cpuid2) + (size_t)n * sizeof(struct kvm_cpuid_entry2);
}

struct kvm_cpuid2 *cpuid_dup(const struct kvm_cpuid2 *c, unsigned extra)
{
	struct kvm_cpuid2 *d = calloc(1, cpuid_size(c->nent + extra));
	if (d)
		memcpy(d, c, cpuid_size(c->nent));
	return d;
}

struct kvm_cpuid2 *cpuid_from_entries(const void *entries, size_t len)
{
	unsigned n = (unsigned)(len / sizeof(struct kvm_cpuid_entry2));
	struct kvm_cpuid2 *c = calloc(1, cpuid_size(n));
	if (c) {
		c->nent = n;
		memcpy(c->entries, entries, (size_t)n * sizeof(struct kvm_cpuid_entry2));
	}
	return c;
}

static const struct {
	uint32_t leaf, subleaf;
	uint8_t reg;
	uint32_t mask;
} runtime_fields[] = {
	{ 0x1, 0, ECX, 1u << 27 },   /* OSXSAVE = CR4.OSXSAVE */
	{ 0x1, 0, EDX, 1u << 9 },    /* APIC = APIC_BASE.EN */
	{ 0x7, 0, ECX, 1u << 4 },    /* OSPKE = CR4.PKE */
	{ 0xd, 0, EBX, ~0u },        /* XSAVE size for XCR0 */
	{ 0xd, 1, EBX, ~0u },        /* XSAVES/XSAVEC size for XCR0 | XSS */
};

uint32_t cpuid_runtime_mask(uint32_t leaf, uint32_t subleaf, unsigned reg)
{
	uint32_t m = 0;
	for (size_t i = 0; i < sizeof(runtime_fields) / sizeof(runtime_fields[0]); i++)
		if (runtime_fields[i].leaf == leaf && runtime_fields[i].subleaf == subleaf &&
		    runtime_fields[i].reg == reg)
			m |= runtime_fields[i].mask;
	return m;
}

bool cpufeat_is_runtime(int f)
{
	const struct cpu_feature *d = &cpu_features[f];
	return cpuid_runtime_mask(d->leaf, d->subleaf, d->reg) >> d->bit & 1;
}

/* The entry for exactly (function, index): both sides of a comparison list
 * the subleaves they have, whether or not the index is significant. */
static const struct kvm_cpuid_entry2 *exact_entry(const struct kvm_cpuid2 *c, uint32_t function, uint32_t index)
{
	for (unsigned i = 0; i < c->nent; i++)
		if (c->entries[i].function == function && c->entries[i].index == index)
			return &c->entries[i];
	return NULL;
}

int cpuid_find_duplicate(const struct kvm_cpuid2 *c)
{
	for (unsigned i = 0; i < c->nent; i++)
		if (exact_entry(c, c->entries[i].function, c->entries[i].index) != &c->entries[i])
			return (int)i;
	return -1;
}

static void put_entry(char *buf, size_t len, const char *side, const struct kvm_cpuid_entry2 *e)
{
	size_t used = strlen(buf);
	if (!e)
		snprintf(buf + used, len - used, "%s: none", side);
	else
		snprintf(buf + used, len - used, "%s: flags %#x eax %08x ebx %08x ecx %08x edx %08x", side,
			 e->flags, e->eax, e->ebx, e->ecx, e->edx);
}

/* " (ecx: osxsave; edx: apic)": the named features whose bits differ. */
static void put_feature_names(char *buf, size_t len, const struct kvm_cpuid_entry2 *a,
			      const struct kvm_cpuid_entry2 *b, const uint32_t masks[4])
{
	static const char regname[4][4] = { "eax", "ebx", "ecx", "edx" };
	char names[256] = "";
	for (unsigned reg = EAX; reg <= EDX; reg++) {
		uint32_t x = (*cpuid_reg_ptr((struct kvm_cpuid_entry2 *)a, reg) ^
			      *cpuid_reg_ptr((struct kvm_cpuid_entry2 *)b, reg)) & masks[reg];
		bool first = true;
		for (int f = 0; f < F_COUNT && x; f++) {
			const struct cpu_feature *d = &cpu_features[f];
			if (d->leaf != a->function || d->subleaf != a->index || d->reg != reg || !(x >> d->bit & 1))
				continue;
			size_t used = strlen(names);
			if (first)
				snprintf(names + used, sizeof(names) - used, "%s%s: %s", used ? "; " : "",
					 regname[reg], d->name);
			else
				snprintf(names + used, sizeof(names) - used, " %s", d->name);
			first = false;
		}
	}
	if (names[0]) {
		size_t used = strlen(buf);
		snprintf(buf + used, len - used, " (%s)", names);
	}
}

int cpuid_diff(const struct kvm_cpuid2 *saved, const struct kvm_cpuid2 *shown, bool with_runtime,
	       char *buf, size_t len)
{
	buf[0] = '\0';
	for (unsigned pass = 0; pass < 2; pass++) {
		const struct kvm_cpuid2 *c = pass ? shown : saved, *other = pass ? saved : shown;
		for (unsigned i = 0; i < c->nent; i++) {
			const struct kvm_cpuid_entry2 *e = &c->entries[i];
			const struct kvm_cpuid_entry2 *o = exact_entry(other, e->function, e->index);
			const struct kvm_cpuid_entry2 *s = pass ? o : e, *h = pass ? e : o;
			uint32_t masks[4];
			bool same = o && o->flags == e->flags;
			for (unsigned reg = EAX; reg <= EDX; reg++) {
				masks[reg] = with_runtime ? ~0u : ~cpuid_runtime_mask(e->function, e->index, reg);
				if (o && (*cpuid_reg_ptr((struct kvm_cpuid_entry2 *)e, reg) ^
					  *cpuid_reg_ptr((struct kvm_cpuid_entry2 *)o, reg)) & masks[reg])
					same = false;
			}
			if (same)
				continue;
			snprintf(buf, len, "CPUID %#x.%u: ", e->function, e->index);
			put_entry(buf, len, "saved", s);
			size_t used = strlen(buf);
			snprintf(buf + used, len - used, "; ");
			put_entry(buf, len, "shown", h);
			if (s && h)
				put_feature_names(buf, len, s, h, masks);
			return 1;
		}
	}
	return 0;
}
