/* Host CPUID capabilities and the per-vCPU topology leaves. */
#include "arch/x86/cpuid.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "arch/x86/cpufeat.h"

struct kvm_cpuid2 *cpuid_get_supported(int kvm_fd)
{
	for (unsigned n = 128; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, cpuid_size(n));
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

int cpuid_host_caps(int kvm_fd, const char *backend, struct cpu_host *host)
{
	memset(host, 0, sizeof(*host));
	host->backend = backend;
	host->supported = cpuid_get_supported(kvm_fd);
	if (!host->supported)
		return -errno;
	/* api.rst, KVM_GET_SUPPORTED_CPUID: the TSC deadline timer is not
	 * listed there; KVM_CAP_TSC_DEADLINE_TIMER says the in-kernel LAPIC
	 * has it. */
	if (ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0)
		cpuid_set(host->supported, F_TSC_DEADLINE_TIMER);
	cpuid_set(host->supported, F_HYPERVISOR);
	/* KVM answers KVM_CAP_PMU_CAPABILITY only when it virtualizes a PMU. */
	host->pmu = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_PMU_CAPABILITY) > 0;
	return 0;
}

void cpuid_host_free(struct cpu_host *host)
{
	free(host->supported);
	host->supported = NULL;
}

static unsigned bits_for(unsigned n)
{
	unsigned b = 0;
	while ((1u << b) < n)
		b++;
	return b;
}

/* SDM vol. 2A CPUID leaves 01H, 04H, 0BH, 1FH; AMD APM vol. 3 E.4
 * (0x80000008 ECX, 0x8000001D, 0x8000001E). */
static void apply_topology(struct kvm_cpuid2 *c, unsigned index, unsigned ncpus)
{
	unsigned core_bits = bits_for(ncpus);
	unsigned all_cores = (1u << core_bits) - 1;
	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		switch (e->function) {
		case 1:
			e->ebx = (e->ebx & 0x0000ffff) | (index << 24) |
				 ((ncpus > 255 ? 255 : ncpus) << 16);
			if (ncpus > 1)
				e->edx |= 1u << 28;         /* HTT: ebx[23:16] is valid */
			else
				e->edx &= ~(1u << 28);
			break;
		case 4:
			/* Cores per package - 1 in [31:26]; threads sharing the cache. */
			if (e->eax & 0x1f) {
				unsigned level = (e->eax >> 5) & 7;
				unsigned sharing = level == 3 ? all_cores : 0;
				e->eax = (e->eax & 0x3ff) | (sharing << 14) | ((all_cores & 0x3f) << 26);
			}
			break;
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
		case 0x80000001:
			/* AMD: CmpLegacy says the HTT count is cores. */
			if (cpuid_is_amd(c)) {
				if (ncpus > 1)
					e->ecx |= 1u << 1;
				else
					e->ecx &= ~(1u << 1);
			}
			break;
		case 0x80000008:
			if (cpuid_is_amd(c))
				e->ecx = (e->ecx & ~0xf0ffu) | (core_bits << 12) | ((ncpus - 1) & 0xff);
			break;
		case 0x8000001d:
			if (e->eax & 0x1f) {
				unsigned level = (e->eax >> 5) & 7;
				unsigned sharing = level == 3 ? all_cores : 0;
				e->eax = (e->eax & ~(0xfffu << 14)) | (sharing << 14);
			}
			break;
		case 0x8000001e:
			if (cpuid_has(c, F_TOPOEXT)) {
				e->eax = index;             /* extended APIC ID */
				e->ebx = index & 0xff;      /* core ID; one thread per core */
				e->ecx = 0;                 /* node 0, one node */
			}
			break;
		default:
			break;
		}
	}
}

/* Leaves 0xB and 0x1F list levels until an invalid one: give them the
 * SMT, core and terminating subleaves even when KVM listed only subleaf 0. */
static void add_topology_subleaves(struct kvm_cpuid2 *c)
{
	static const uint32_t leaves[] = { 0xb, 0x1f };
	for (unsigned l = 0; l < 2; l++) {
		struct kvm_cpuid_entry2 *e0 = cpuid_entry(c, leaves[l], 0);
		if (!e0)
			continue;
		uint32_t flags = e0->flags | KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
		e0->flags = flags;
		for (uint32_t sub = 1; sub <= 2; sub++) {
			if (cpuid_entry(c, leaves[l], sub))
				continue;
			c->entries[c->nent++] = (struct kvm_cpuid_entry2){
				.function = leaves[l], .index = sub, .flags = flags,
			};
		}
	}
}

struct kvm_cpuid2 *cpuid_for_vcpu(const struct kvm_cpuid2 *c, unsigned index, unsigned ncpus)
{
	struct kvm_cpuid2 *v = cpuid_dup(c, 4);
	if (v) {
		add_topology_subleaves(v);
		apply_topology(v, index, ncpus);
	}
	return v;
}
