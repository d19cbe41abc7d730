#include "arch/x86/cpuid.h"

#include <errno.h>
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
