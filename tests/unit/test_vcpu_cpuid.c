/* Reading a vCPU's CPUID back and comparing CPUIDs: cpuid_vcpu_get against
 * a fake KVM_GET_CPUID2 that behaves as Linux before 6.5 (nent left as
 * given on success: the cause of issue #14, snapshots refused on SVM) and
 * as later ones; cpuid_diff with and without the fields KVM derives from
 * the vCPU's state; duplicates; what the supported check leaves out. */
#include <errno.h>
#include <linux/kvm.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "arch/x86/guestcpu.h"
#include "cpu_fixture.h"

int __wrap_ioctl(int fd, unsigned long req, ...);
int __real_ioctl(int fd, unsigned long req, ...);

#define FAKE_FD 1000
static struct kvm_cpuid2 *vcpu_cpuid;  /* what the fake vCPU holds */
static bool old_kvm;                   /* nent untouched on success */
static unsigned calls;

int __wrap_ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	va_start(ap, req);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	if (fd != FAKE_FD)
		return __real_ioctl(fd, req, arg);
	calls++;
	if (req != KVM_GET_CPUID2) {
		errno = ENOTTY;
		return -1;
	}
	struct kvm_cpuid2 *c = arg;
	if (c->nent < vcpu_cpuid->nent) {
		errno = E2BIG;
		return -1;
	}
	memcpy(c->entries, vcpu_cpuid->entries, vcpu_cpuid->nent * sizeof(c->entries[0]));
	if (!old_kvm)
		c->nent = vcpu_cpuid->nent;
	return 0;
}

static struct kvm_cpuid2 *numbered(unsigned n)
{
	struct kvm_cpuid2 *c = calloc(1, cpuid_size(n));
	c->nent = n;
	for (unsigned i = 0; i < n; i++)
		c->entries[i] = (struct kvm_cpuid_entry2){ .function = 0x40000000 + i, .eax = i + 1, .edx = ~i };
	return c;
}

static void test_count_both_kernels(void **state)
{
	static const unsigned counts[] = { 1, 2, 37, 66, 255, 256, 257, 300, 1024 };
	for (int old = 0; old <= 1; old++) {
		for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
			vcpu_cpuid = numbered(counts[k]);
			old_kvm = old;
			calls = 0;
			struct kvm_cpuid2 *got = cpuid_vcpu_get(FAKE_FD);
			assert_non_null(got);
			assert_int_equal(got->nent, counts[k]);
			assert_memory_equal(got->entries, vcpu_cpuid->entries, counts[k] * sizeof(got->entries[0]));
			/* A new KVM answers in one call once the buffer fits
			 * (unless it fits exactly: that looks like an old one);
			 * an old one costs a binary search, not a walk. */
			bool exact = counts[k] == 256 || counts[k] == 1024;
			assert_true(calls <= (old || exact ? 16u : 2u));
			free(got);
			free(vcpu_cpuid);
		}
	}
}

static void test_other_errors(void **state)
{
	struct kvm_cpuid2 *got = cpuid_vcpu_get(-1);   /* EBADF from the real ioctl */
	assert_null(got);
	assert_int_equal(errno, EBADF);
}

/* What went wrong on SVM: the vCPU's 30-odd entries saved as 256, the
 * rest zeros, i.e. "0.0" again and again. */
static void test_duplicates(void **state)
{
	struct kvm_cpuid2 *c = fx_pvm_host();
	assert_int_equal(cpuid_find_duplicate(c), -1);
	struct kvm_cpuid2 *padded = cpuid_dup(c, 8);
	padded->nent += 8;   /* zero entries: function 0 index 0 */
	assert_int_equal(cpuid_find_duplicate(padded), (int)c->nent);
	free(padded);
	free(c);
}

static void test_diff(void **state)
{
	char buf[512];
	struct kvm_cpuid2 *a = fx_rich(false), *b = cpuid_dup(a, 1);
	assert_int_equal(cpuid_diff(a, b, true, buf, sizeof(buf)), 0);

	/* Fields KVM derives from CR4, APIC_BASE, XCR0: left out, or not. */
	cpuid_entry(b, 1, 0)->ecx ^= 1u << 27;          /* osxsave */
	cpuid_entry(b, 1, 0)->edx ^= 1u << 9;           /* apic */
	cpuid_entry(b, 0xd, 0)->ebx += 64;
	assert_int_equal(cpuid_diff(a, b, false, buf, sizeof(buf)), 0);
	assert_int_equal(cpuid_diff(a, b, true, buf, sizeof(buf)), 1);
	assert_non_null(strstr(buf, "CPUID 0x1.0: saved: flags 0 eax "));
	assert_non_null(strstr(buf, "; shown: flags 0 eax "));
	assert_non_null(strstr(buf, "(ecx: osxsave; edx: apic)"));
	free(b);

	/* Any other bit counts either way, and names its feature. */
	b = cpuid_dup(a, 1);
	cpuid_entry(b, 7, 0)->ebx ^= 1u << 5;           /* avx2 */
	assert_int_equal(cpuid_diff(a, b, false, buf, sizeof(buf)), 1);
	assert_non_null(strstr(buf, "CPUID 0x7.0:"));
	assert_non_null(strstr(buf, "(ebx: avx2)"));
	free(b);

	/* Flags, a missing entry, an extra one. */
	b = cpuid_dup(a, 1);
	cpuid_entry(b, 0x80000001, 0)->flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
	assert_int_equal(cpuid_diff(a, b, false, buf, sizeof(buf)), 1);
	assert_non_null(strstr(buf, "CPUID 0x80000001.0: saved: flags 0 "));
	free(b);
	b = cpuid_dup(a, 1);
	b->nent--;
	assert_int_equal(cpuid_diff(a, b, false, buf, sizeof(buf)), 1);
	assert_non_null(strstr(buf, "shown: none"));
	assert_int_equal(cpuid_diff(b, a, false, buf, sizeof(buf)), 1);
	assert_non_null(strstr(buf, "saved: none"));
	free(b);
	free(a);
}

/* A saved CPUID may show what KVM itself set from the guest's state, and
 * Ember's own topology bits: KVM's support is not asked for those. */
static void test_supported_leaves_out(void **state)
{
	char err[256];
	struct kvm_cpuid2 *sup = fx_rich(true), *g = cpuid_dup(sup, 0);
	cpuid_clear(sup, F_OSXSAVE);
	cpuid_clear(sup, F_OSPKE);
	cpuid_clear(sup, F_HT);
	cpuid_clear(sup, F_CMP_LEGACY);
	cpuid_set(g, F_OSXSAVE);
	cpuid_set(g, F_OSPKE);
	cpuid_set(g, F_HT);
	cpuid_set(g, F_CMP_LEGACY);
	assert_int_equal(cpumodel_check_supported(g, sup, err, sizeof(err)), 0);
	cpuid_clear(sup, F_AVX2);
	assert_int_equal(cpumodel_check_supported(g, sup, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "cannot provide avx2"));
	free(g);
	free(sup);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_count_both_kernels),
		cmocka_unit_test(test_other_errors),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_diff),
		cmocka_unit_test(test_supported_leaves_out),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
