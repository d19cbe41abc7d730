/* The CPU model policy: spec parsing, named models on recorded hosts,
 * backend masks, feature dependencies, the XSAVE leaf, topology. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "arch/x86/cpuid.h"
#include "cpu_fixture.h"

static char err[512];

static int build(struct cpu_model *m, const char *spec, struct kvm_cpuid2 *sup, const char *backend, bool pmu)
{
	struct cpu_host h = { .supported = sup, .pmu = pmu, .backend = backend };
	err[0] = '\0';
	return cpumodel_build(m, spec, &h, err, sizeof(err));
}

static void test_spec_errors(void **state)
{
	assert_int_equal(cpumodel_check_spec("host", err, sizeof(err)), 0);
	assert_int_equal(cpumodel_check_spec("x86-64-v3,-avx2,+pmu", err, sizeof(err)), 0);
	assert_int_equal(cpumodel_check_spec("pentium9", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "unknown CPU model 'pentium9'"));
	assert_int_equal(cpumodel_check_spec("host,+frob", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "unknown CPU feature 'frob'"));
	assert_int_equal(cpumodel_check_spec("host,cx16", err, sizeof(err)), -EINVAL);
	assert_int_equal(cpumodel_check_spec("host,+", err, sizeof(err)), -EINVAL);
	assert_int_equal(cpumodel_check_spec("", err, sizeof(err)), -EINVAL);
	assert_int_equal(cpumodel_check_spec(",host", err, sizeof(err)), -EINVAL);
	assert_null(strchr(err, '\n'));
}

static void test_every_name_resolves(void **state)
{
	for (int f = 0; f < F_COUNT; f++) {
		assert_int_equal(cpufeat_lookup(cpu_features[f].name), f);
		assert_true(cpu_features[f].bit < 32 && cpu_features[f].reg <= EDX);
	}
}

/* Named models are exact on a host that has everything: the features of
 * the level and nothing from the host beyond them. */
static void test_named_models_exact(void **state)
{
	for (int amd = 0; amd <= 1; amd++) {
		struct kvm_cpuid2 *sup = fx_rich(amd);
		struct cpu_model m;
		assert_int_equal(build(&m, "x86-64-v2", sup, "kvm_intel", true), 0);
		assert_true(cpuid_has(m.cpuid, F_CX16) && cpuid_has(m.cpuid, F_SSE4_2));
		assert_false(cpuid_has(m.cpuid, F_AVX) || cpuid_has(m.cpuid, F_WAITPKG) ||
			     cpuid_has(m.cpuid, F_RDTSCP) || cpuid_has(m.cpuid, F_XSAVE));
		assert_false(m.pmu);
		assert_int_equal(cpuid_entry(m.cpuid, 0xa, 0)->eax, 0);
		assert_int_equal(cpuid_entry(m.cpuid, 0xd, 0)->eax, 0);
		cpumodel_free(&m);
		assert_int_equal(build(&m, "x86-64-v3", sup, "kvm_intel", true), 0);
		assert_true(cpuid_has(m.cpuid, F_AVX2) && cpuid_has(m.cpuid, F_XSAVE));
		assert_false(cpuid_has(m.cpuid, F_AVX512F) || cpuid_has(m.cpuid, F_XSAVES));
		/* XSAVE leaf: x87 | SSE | AVX only, sizes to match. */
		assert_int_equal(cpuid_entry(m.cpuid, 0xd, 0)->eax, 0x7);
		assert_int_equal(cpuid_entry(m.cpuid, 0xd, 0)->ecx, 576 + 64 * 2 + 64);
		assert_int_equal(cpuid_entry(m.cpuid, 0xd, 5)->eax, 0);
		cpumodel_free(&m);
		assert_int_equal(build(&m, "x86-64-v4", sup, "kvm_intel", true), 0);
		assert_true(cpuid_has(m.cpuid, F_AVX512VL));
		assert_int_equal(cpuid_entry(m.cpuid, 0xd, 0)->eax, 0xe7);
		cpumodel_free(&m);
		free(sup);
	}
}

static void test_named_model_missing_features(void **state)
{
	struct kvm_cpuid2 *sup = fx_pvm_host();
	struct cpu_model m;
	assert_int_equal(build(&m, "x86-64", sup, "kvm_pvm", true), 0);
	assert_true(cpuid_has(m.cpuid, F_LM) && cpuid_has(m.cpuid, F_SSE2));
	cpumodel_free(&m);
	assert_int_equal(build(&m, "x86-64-v2", sup, "kvm_pvm", true), -EINVAL);
	assert_non_null(strstr(err, "cannot provide"));
	assert_non_null(strstr(err, "pni"));
	assert_null(m.cpuid);
	free(sup);
}

static void test_host_and_flags(void **state)
{
	struct kvm_cpuid2 *sup = fx_rich(false);
	struct cpu_model m;
	assert_int_equal(build(&m, "host", sup, "kvm_intel", true), 0);
	assert_true(cpuid_has(m.cpuid, F_CX16) && cpuid_has(m.cpuid, F_WAITPKG) && m.pmu);
	assert_string_equal(m.backend_masked, "");
	cpumodel_free(&m);
	/* kvm_pvm: host hides what the emulator cannot run at CPL0. */
	assert_int_equal(build(&m, "host", sup, "kvm_pvm", true), 0);
	assert_false(cpuid_has(m.cpuid, F_CX16) || cpuid_has(m.cpuid, F_XSAVE) || cpuid_has(m.cpuid, F_AVX));
	assert_non_null(strstr(m.backend_masked, "cx16"));
	cpumodel_free(&m);
	assert_int_equal(build(&m, "host,+cx16", sup, "kvm_pvm", true), 0);
	assert_true(cpuid_has(m.cpuid, F_CX16));
	cpumodel_free(&m);
	/* -xsave takes what needs it along, and the XSAVE leaf. */
	assert_int_equal(build(&m, "host,-xsave,-pmu", sup, "kvm_intel", true), 0);
	assert_false(cpuid_has(m.cpuid, F_AVX) || cpuid_has(m.cpuid, F_AVX512BW) || cpuid_has(m.cpuid, F_XSAVES));
	assert_int_equal(cpuid_entry(m.cpuid, 0xd, 0)->eax, 0);
	assert_false(m.pmu);
	assert_int_equal(cpuid_entry(m.cpuid, 0xa, 0)->eax, 0);
	cpumodel_free(&m);
	/* +feature needs its dependencies and KVM's support. */
	assert_int_equal(build(&m, "x86-64,+avx", sup, "kvm_intel", true), -EINVAL);
	assert_non_null(strstr(err, "needs 'xsave'"));
	assert_int_equal(build(&m, "x86-64,+xsave,+avx", sup, "kvm_intel", true), 0);
	cpumodel_free(&m);
	assert_int_equal(build(&m, "host,+pmu", sup, "kvm_intel", false), -EINVAL);
	free(sup);
	sup = fx_pvm_host();
	assert_int_equal(build(&m, "host,+waitpkg", sup, "kvm_pvm", true), -EINVAL);
	assert_non_null(strstr(err, "cannot provide 'waitpkg'"));
	free(sup);
}

static void test_supported_check(void **state)
{
	struct kvm_cpuid2 *rich = fx_rich(false), *pvm = fx_pvm_host();
	assert_int_equal(cpumodel_check_supported(pvm, rich, err, sizeof(err)), -EINVAL);  /* vendor */
	struct kvm_cpuid2 *amd = fx_rich(true);
	assert_int_equal(cpumodel_check_supported(amd, pvm, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "cannot provide"));
	assert_int_equal(cpumodel_check_supported(pvm, amd, err, sizeof(err)), 0);
	free(rich);
	free(pvm);
	free(amd);
}

/* Same model or not: vendor, signature, named features; not the bits the
 * topology or KVM set per vCPU. */
static void test_model_diff(void **state)
{
	struct kvm_cpuid2 *sup = fx_rich(true);
	struct cpu_model v2, host;
	assert_int_equal(build(&v2, "x86-64-v2", sup, "kvm_amd", false), 0);
	assert_int_equal(build(&host, "host", sup, "kvm_amd", false), 0);
	assert_int_equal(cpumodel_diff(v2.cpuid, v2.cpuid, err, sizeof(err)), 0);
	struct kvm_cpuid2 *vcpu3 = cpuid_for_vcpu(v2.cpuid, 3, 4);
	cpuid_set(vcpu3, F_OSXSAVE);
	assert_int_equal(cpumodel_diff(vcpu3, v2.cpuid, err, sizeof(err)), 0);
	assert_int_equal(cpumodel_diff(host.cpuid, v2.cpuid, err, sizeof(err)), 1);
	assert_non_null(strstr(err, "it has "));
	assert_non_null(strstr(err, "avx2"));
	assert_null(strstr(err, "it lacks"));
	assert_int_equal(cpumodel_diff(v2.cpuid, host.cpuid, err, sizeof(err)), 1);
	assert_true(strncmp(err, "it lacks ", 9) == 0);
	cpuid_entry(vcpu3, 1, 0)->eax ^= 0x10;
	assert_int_equal(cpumodel_diff(vcpu3, v2.cpuid, err, sizeof(err)), 1);
	assert_non_null(strstr(err, "signature"));
	struct kvm_cpuid2 *intel = fx_rich(false);
	assert_int_equal(cpumodel_diff(intel, sup, err, sizeof(err)), 1);
	assert_non_null(strstr(err, "GenuineIntel, not AuthenticAMD"));
	free(intel);
	free(vcpu3);
	cpumodel_free(&v2);
	cpumodel_free(&host);
	free(sup);
}

static void test_topology(void **state)
{
	struct kvm_cpuid2 *sup = fx_rich(true);
	struct kvm_cpuid2 *v = cpuid_for_vcpu(sup, 3, 4);
	assert_int_equal(cpuid_entry(v, 1, 0)->ebx >> 24, 3);
	assert_int_equal((cpuid_entry(v, 1, 0)->ebx >> 16) & 0xff, 4);
	assert_true(cpuid_entry(v, 1, 0)->edx >> 28 & 1);
	assert_int_equal(cpuid_entry(v, 0xb, 0)->edx, 3);
	assert_int_equal(cpuid_entry(v, 0xb, 1)->ebx, 4);
	assert_int_equal(cpuid_entry(v, 0xb, 1)->eax, 2);
	assert_int_equal((cpuid_entry(v, 0xb, 2)->ecx >> 8) & 0xff, 0);
	assert_int_equal(cpuid_entry(v, 0x80000008, 0)->ecx & 0xff, 3);
	assert_int_equal(cpuid_entry(v, 0x8000001e, 0)->eax, 3);
	free(v);
	v = cpuid_for_vcpu(sup, 0, 1);
	assert_false(cpuid_entry(v, 1, 0)->edx >> 28 & 1);
	free(v);
	free(sup);
}

/* -hypervisor removes the bit like any feature (Ember used to set it again
 * after the flags, so the removal was dropped without a word). */
static void test_remove_hypervisor(void **state)
{
	struct kvm_cpuid2 *sup = fx_rich(false);
	struct cpu_host h = { .supported = sup, .pmu = true, .backend = "kvm_intel" };
	static const char *const specs[] = { "host,-hypervisor", "x86-64,-hypervisor", "x86-64-v3,-avx2,-hypervisor" };
	char msg[256];
	struct cpu_model m;
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(cpumodel_build(&m, specs[i], &h, msg, sizeof(msg)), 0);
		assert_false(cpuid_has(m.cpuid, F_HYPERVISOR));
		cpumodel_free(&m);
	}
	assert_int_equal(cpumodel_build(&m, "x86-64", &h, msg, sizeof(msg)), 0);
	assert_true(cpuid_has(m.cpuid, F_HYPERVISOR));
	cpumodel_free(&m);
	assert_int_equal(cpumodel_build(&m, "host,-hypervisor,+hypervisor", &h, msg, sizeof(msg)), 0);
	assert_true(cpuid_has(m.cpuid, F_HYPERVISOR));
	cpumodel_free(&m);
	free(sup);
}

/* A PMU feature asked for by name on a model without a PMU is refused
 * (it used to be dropped without a word); with +pmu it is there. */
static void test_pmu_feature_needs_pmu(void **state)
{
	struct kvm_cpuid2 *sup = fx_rich(true);
	struct cpu_host h = { .supported = sup, .pmu = true, .backend = "kvm_amd" };
	char msg[256];
	struct cpu_model m;
	assert_int_equal(cpumodel_build(&m, "x86-64,+perfctr_llc", &h, msg, sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "'perfctr_llc' needs the PMU"));
	assert_int_equal(cpumodel_build(&m, "host,-pmu,+perfctr_core", &h, msg, sizeof(msg)), -EINVAL);
	assert_int_equal(cpumodel_build(&m, "x86-64,+pmu,+perfctr_llc", &h, msg, sizeof(msg)), 0);
	assert_true(m.pmu && cpuid_has(m.cpuid, F_PERFCTR_LLC));
	cpumodel_free(&m);
	assert_int_equal(cpumodel_build(&m, "x86-64,+perfctr_llc,+pmu", &h, msg, sizeof(msg)), 0);
	cpumodel_free(&m);
	assert_int_equal(cpumodel_build(&m, "x86-64,+perfctr_llc,-perfctr_llc", &h, msg, sizeof(msg)), 0);
	cpumodel_free(&m);
	free(sup);
}

/* The cursor answers as cpuid_has does, in feature order, out of order,
 * and for a leaf the CPUID lacks. */
static void test_cursor(void **state)
{
	struct kvm_cpuid2 *cs[3] = { fx_rich(true), fx_rich(false), fx_pvm_host() };
	cpuid_clear(cs[1], F_AVX);   /* a clear bit amid set ones */
	for (int i = 0; i < 3; i++) {
		struct cpuid_cursor k = { .c = cs[i] }, back = { .c = cs[i] };
		for (int f = 0; f < F_COUNT; f++)
			assert_int_equal(cpuid_cursor_has(&k, f), cpuid_has(cs[i], f));
		for (int f = F_COUNT - 1; f >= 0; f -= 7)
			assert_int_equal(cpuid_cursor_has(&back, f), cpuid_has(cs[i], f));
		assert_false(cpuid_cursor_has(&k, F_NONE));
		assert_false(cpuid_cursor_has(&k, F_COUNT));
		free(cs[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spec_errors),
		cmocka_unit_test(test_every_name_resolves),
		cmocka_unit_test(test_named_models_exact),
		cmocka_unit_test(test_named_model_missing_features),
		cmocka_unit_test(test_host_and_flags),
		cmocka_unit_test(test_supported_check),
		cmocka_unit_test(test_model_diff),
		cmocka_unit_test(test_topology),
		cmocka_unit_test(test_cursor),
		cmocka_unit_test(test_remove_hypervisor),
		cmocka_unit_test(test_pmu_feature_needs_pmu),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
