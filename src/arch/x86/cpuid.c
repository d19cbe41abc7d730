#include "arch/x86/cpuid.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/ioctl.h>

struct kvm_cpuid2 *cpuid_get_supported(int kvm_fd)
{
	for (unsigned n = 128; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
		if (!c)
			return NULL;
		c->nent = n;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
			return c;
		int err = errno;
		free(c);
		if (err != E2BIG) {
			errno = err;
			return NULL;
		}
	}
	errno = E2BIG;
	return NULL;
}

struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, unsigned function, unsigned index)
{
	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		if (e->function != function)
			continue;
		if (!(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e->index == index)
			return e;
	}
	return NULL;
}

static unsigned bits_for(unsigned n)
{
	unsigned b = 0;
	while ((1u << b) < n)
		b++;
	return b;
}

/* One package of ncpus cores, one thread per core (SDM vol. 2A, CPUID
 * leaves 01H, 04H, 0BH, 1FH). */
void cpuid_apply_topology(struct kvm_cpuid2 *c, unsigned index, unsigned ncpus)
{
	unsigned core_bits = bits_for(ncpus);
	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		switch (e->function) {
		case 1:
			e->ebx = (e->ebx & 0x0000ffff) | (index << 24) |
				 ((ncpus > 255 ? 255 : ncpus) << 16);
			e->ecx |= 1u << 31;                 /* hypervisor present */
			if (ncpus > 1)
				e->edx |= 1u << 28;         /* HTT: ebx[23:16] is valid */
			else
				e->edx &= ~(1u << 28);
			break;
		case 4: {
			/* Cores per package - 1 in [31:26]; threads sharing the cache. */
			unsigned level = (e->eax >> 5) & 7;
			unsigned sharing = level == 3 ? (1u << core_bits) - 1 : 0;
			e->eax = (e->eax & 0x3ff) | (sharing << 14) |
				 ((((1u << core_bits) - 1) & 0x3f) << 26);
			break;
		}
		case 0xb:
		case 0x1f:
			e->edx = index;
			if (e->index == 0) {
				e->eax = 0;                 /* SMT: no shift */
				e->ebx = 1;
				e->ecx = 0 | (1u << 8);
			} else if (e->index == 1) {
				e->eax = core_bits;
				e->ebx = ncpus;
				e->ecx = 1 | (2u << 8);     /* core level */
			} else {
				e->eax = e->ebx = 0;
				e->ecx = e->index;          /* invalid level */
			}
			break;
		default:
			break;
		}
	}
}

/* Names as QEMU spells them (target/i386/cpu.c feature_word_info). */
static const struct cpuid_feature features[] = {
	{ "vmx", 1, 0, 2, 5 },          { "pcid", 1, 0, 2, 17 },
	{ "x2apic", 1, 0, 2, 21 },      { "movbe", 1, 0, 2, 22 },
	{ "popcnt", 1, 0, 2, 23 },      { "tsc-deadline", 1, 0, 2, 24 },
	{ "aes", 1, 0, 2, 25 },         { "xsave", 1, 0, 2, 26 },
	{ "avx", 1, 0, 2, 28 },         { "rdrand", 1, 0, 2, 30 },
	{ "hypervisor", 1, 0, 2, 31 },
	{ "fsgsbase", 7, 0, 1, 0 },     { "bmi1", 7, 0, 1, 3 },
	{ "hle", 7, 0, 1, 4 },          { "avx2", 7, 0, 1, 5 },
	{ "smep", 7, 0, 1, 7 },         { "erms", 7, 0, 1, 9 },
	{ "invpcid", 7, 0, 1, 10 },     { "rtm", 7, 0, 1, 11 },
	{ "mpx", 7, 0, 1, 14 },         { "avx512f", 7, 0, 1, 16 },
	{ "rdseed", 7, 0, 1, 18 },      { "adx", 7, 0, 1, 19 },
	{ "smap", 7, 0, 1, 20 },        { "clflushopt", 7, 0, 1, 23 },
	{ "clwb", 7, 0, 1, 24 },        { "umip", 7, 0, 2, 2 },
	{ "pku", 7, 0, 2, 3 },          { "la57", 7, 0, 2, 16 },
	{ "rdpid", 7, 0, 2, 22 },       { "spec-ctrl", 7, 0, 3, 26 },
	{ "arch-capabilities", 7, 0, 3, 29 },
	{ "svm", 0x80000001, 0, 2, 2 }, { "nx", 0x80000001, 0, 3, 20 },
	{ "pdpe1gb", 0x80000001, 0, 3, 26 }, { "rdtscp", 0x80000001, 0, 3, 27 },
	{ "kvmclock", 0x40000001, 0, 0, 3 }, { "kvm-pv-eoi", 0x40000001, 0, 0, 6 },
};

static const struct cpuid_feature *feature_by_name(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(features) / sizeof(features[0]); i++)
		if (strlen(features[i].name) == len && !strncmp(features[i].name, name, len))
			return &features[i];
	return NULL;
}

int cpu_spec_parse(const char *s, struct cpu_spec *spec, char *err, size_t errlen)
{
	memset(spec, 0, sizeof(*spec));
	const char *comma = strchr(s, ',');
	size_t mlen = comma ? (size_t)(comma - s) : strlen(s);
	if (!((mlen == 4 && !strncmp(s, "host", 4)) || (mlen == 3 && !strncmp(s, "max", 3)))) {
		snprintf(err, errlen, "CPU model '%.*s' is not supported: Ember offers host (= max), what KVM supports",
			 (int)mlen, s);
		return -EINVAL;
	}
	while (comma) {
		const char *p = comma + 1;
		comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		bool on;
		const char *name = p;
		size_t nlen = len;
		if (len && (*p == '+' || *p == '-')) {
			on = *p == '+';
			name++, nlen--;
		} else {
			const char *eq = memchr(p, '=', len);
			if (!eq) {
				snprintf(err, errlen, "CPU option '%.*s': use +FEATURE, -FEATURE or FEATURE=on|off",
					 (int)len, p);
				return -EINVAL;
			}
			nlen = (size_t)(eq - p);
			size_t vlen = len - nlen - 1;
			if (vlen == 2 && !strncmp(eq + 1, "on", 2))
				on = true;
			else if (vlen == 3 && !strncmp(eq + 1, "off", 3))
				on = false;
			else {
				snprintf(err, errlen, "CPU option '%.*s' is not supported", (int)len, p);
				return -EINVAL;
			}
		}
		const struct cpuid_feature *f = feature_by_name(name, nlen);
		if (!f) {
			snprintf(err, errlen, "CPU feature '%.*s' is not known to Ember", (int)nlen, name);
			return -EINVAL;
		}
		if (spec->nchanges == CPU_MAX_CHANGES) {
			snprintf(err, errlen, "more than %d CPU feature changes", CPU_MAX_CHANGES);
			return -EINVAL;
		}
		spec->changes[spec->nchanges].feature = f;
		spec->changes[spec->nchanges++].on = on;
	}
	return 0;
}

static uint32_t *entry_reg(struct kvm_cpuid_entry2 *e, unsigned reg)
{
	switch (reg) {
	case 0: return &e->eax;
	case 1: return &e->ebx;
	case 2: return &e->ecx;
	default: return &e->edx;
	}
}

int cpuid_apply_spec(struct kvm_cpuid2 *c, const struct kvm_cpuid2 *supported,
		     const struct cpu_spec *spec, char *err, size_t errlen)
{
	for (unsigned i = 0; i < spec->nchanges; i++) {
		const struct cpuid_feature *f = spec->changes[i].feature;
		struct kvm_cpuid_entry2 *e = cpuid_find(c, f->function, f->index);
		struct kvm_cpuid_entry2 *s = cpuid_find((struct kvm_cpuid2 *)supported, f->function, f->index);
		uint32_t mask = 1u << f->bit;
		if (!spec->changes[i].on) {
			if (e)
				*entry_reg(e, f->reg) &= ~mask;
			continue;
		}
		if (!e || !s || !(*entry_reg(s, f->reg) & mask)) {
			snprintf(err, errlen, "CPU feature '%s' is not offered by this host's KVM", f->name);
			return -ENOTSUP;
		}
		*entry_reg(e, f->reg) |= mask;
	}
	return 0;
}
