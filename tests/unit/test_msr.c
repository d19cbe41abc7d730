/* The MSR save list follows the guest CPUID: for every named model on
 * every recorded host, no MSR in the list lacks the feature it belongs to
 * (the UMWAIT_CONTROL/WAITPKG bug class); write-only, host-only and
 * unknown MSRs are never saved. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "arch/x86/msr.h"
#include "cpu_fixture.h"

/* KVM as if it listed every MSR Ember has a rule for and a few it has not. */
static struct msr_list kvm_everything(void)
{
	static const uint32_t ranges[][2] = {
		{ 0x10, 0x12 }, { 0x1b, 0x1b }, { 0x34, 0x34 }, { 0x3a, 0x3b }, { 0x48, 0x49 },
		{ 0x8b, 0x8f }, { 0x9e, 0x9e }, { 0xc1, 0xc8 }, { 0xce, 0xce }, { 0xe1, 0xe1 },
		{ 0xfe, 0xfe }, { 0x10a, 0x10b }, { 0x122, 0x122 }, { 0x140, 0x140 }, { 0x174, 0x17b },
		{ 0x186, 0x18d }, { 0x1a0, 0x1a0 }, { 0x1c4, 0x1c5 }, { 0x1d9, 0x1d9 }, { 0x1db, 0x1de },
		{ 0x1fc, 0x1fc }, { 0x277, 0x277 }, { 0x309, 0x30b }, { 0x345, 0x345 }, { 0x38d, 0x390 },
		{ 0x3f1, 0x3f2 }, { 0x4c1, 0x4c8 }, { 0x4d0, 0x4d0 }, { 0x560, 0x561 }, { 0x570, 0x572 },
		{ 0x580, 0x587 }, { 0x600, 0x600 }, { 0x6a0, 0x6a8 }, { 0x6e0, 0x6e1 }, { 0xd90, 0xd90 },
		{ 0xda0, 0xda0 }, { 0x14ce, 0x14cf }, { 0x4b564d00, 0x4b564d07 }, { 0xc0000081, 0xc0000084 },
		{ 0xc0000102, 0xc0000104 }, { 0xc0000300, 0xc0000303 }, { 0xc0010000, 0xc0010007 },
		{ 0xc0010015, 0xc0010015 }, { 0xc0010114, 0xc0010117 }, { 0xc001011f, 0xc001011f },
		{ 0xc0010140, 0xc0010141 }, { 0xc0010200, 0xc001020b }, { 0xc0011029, 0xc0011029 },
		{ 0x40000000, 0x40000001 }, { 0x12345678, 0x12345678 },
	};
	struct msr_list l = { calloc(512, sizeof(uint32_t)), 0 };
	for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++)
		for (uint32_t m = ranges[i][0]; m <= ranges[i][1]; m++)
			l.index[l.n++] = m;
	return l;
}

/* The feature(s) an MSR belongs to, written out independently of msr.c's
 * table: any of them must be in the guest CPUID. */
static bool belongs(uint32_t m, const struct kvm_cpuid2 *c, bool pmu)
{
	bool amd = cpuid_is_amd(c);
#define H(f) cpuid_has(c, F_##f)
	switch (m) {
	case 0xe1: return H(WAITPKG);
	case 0xc0000103: return H(RDTSCP) || H(RDPID);
	case 0xda0: return H(XSAVES);
	case 0x6e0: return H(TSC_DEADLINE_TIMER);
	case 0x48: return H(SPEC_CTRL) || H(AMD_IBRS) || H(AMD_STIBP) || H(AMD_SSBD);
	case 0x49: case 0x10b: return false;            /* write-only */
	case 0x6e1: return H(PKS);
	case 0x3b: return H(TSC_ADJUST);
	case 0x10a: return H(ARCH_CAPABILITIES);
	case 0x345: return H(PDCM);
	case 0x11: case 0x12: return H(KVMCLOCK);
	case 0x4b564d00: case 0x4b564d01: return H(KVMCLOCK2);
	case 0x4b564d02: return H(KVM_ASYNCPF);
	case 0x4b564d03: return H(KVM_STEAL_TIME);
	case 0x4b564d04: return H(KVM_PV_EOI);
	case 0x4b564d05: return H(KVM_POLL_CONTROL);
	case 0x4b564d06: case 0x4b564d07: return H(KVM_ASYNCPF_INT);
	case 0xc0010117: case 0xc0010114: return H(SVM);
	case 0xc0000104: return H(TSCRATEMSR);      /* KVM: tsc_scaling_enabled */
	case 0x1c4: case 0x1c5: return H(XFD);
	case 0x174: case 0x175: case 0x176: return H(SEP);
	case 0x9e: case 0xfe: case 0x179: case 0x4d0: case 0x1b: return false;
	default: break;
	}
	if ((m >= 0xc1 && m <= 0xc8) || (m >= 0x186 && m <= 0x18d) || (m >= 0x309 && m <= 0x30b) ||
	    (m >= 0x38d && m <= 0x390))
		return pmu && !amd && cpuid_entry(c, 0xa, 0) && (cpuid_entry(c, 0xa, 0)->eax & 0xff);
	if ((m >= 0xc0010000 && m <= 0xc0010007) || (m >= 0xc0010200 && m <= 0xc001020b) ||
	    (m >= 0xc0000300 && m <= 0xc0000303))
		return pmu && amd;
	return true;
#undef H
}

static void check_model(const char *spec, struct kvm_cpuid2 *sup, const char *backend)
{
	char err[256];
	struct cpu_host h = { .supported = sup, .pmu = true, .backend = backend };
	struct cpu_model m;
	int r = cpumodel_build(&m, spec, &h, err, sizeof(err));
	if (r) {
		assert_non_null(strstr(err, "cannot provide"));   /* an honest refusal */
		return;
	}
	struct msr_list kvm = kvm_everything(), save, dropped;
	struct msr_guest g = { .cpuid = m.cpuid, .pmu = m.pmu, .mcg_cap = msr_mcg_cap(m.cpuid, MCG_CTL_P) };
	assert_int_equal(msr_build_list(&kvm, &g, &save, &dropped), 0);
	assert_true(save.n > 10);
	for (unsigned i = 0; i < save.n; i++) {
		if (!belongs(save.index[i], m.cpuid, m.pmu))
			fail_msg("--cpu %s: MSR %#x is saved but the guest lacks its feature", spec, save.index[i]);
		assert_true(save.index[i] != 0x12345678 && save.index[i] != 0x40000000);
		assert_true(!i || save.index[i] > save.index[i - 1]);
	}
	/* Nothing is lost silently: every KVM MSR is saved or dropped. */
	for (unsigned i = 0; i < kvm.n; i++)
		assert_true(msr_list_has(&save, kvm.index[i]) ^ msr_list_has(&dropped, kvm.index[i]));
	msr_list_free(&kvm);
	msr_list_free(&save);
	msr_list_free(&dropped);
	cpumodel_free(&m);
}

static void test_every_model_every_host(void **state)
{
	struct kvm_cpuid2 *hosts[] = { fx_rich(false), fx_rich(true), fx_pvm_host() };
	const char *backends[] = { "kvm_intel", "kvm_amd", "kvm_pvm" };
	for (int h = 0; h < 3; h++) {
		for (const struct cpumodel_info *mi = cpumodel_list(); mi->name; mi++) {
			check_model(mi->name, hosts[h], backends[h]);
			char spec[64];
			snprintf(spec, sizeof(spec), "%s,-pmu", mi->name);
			check_model(spec, hosts[h], backends[h]);
		}
		check_model("host,-waitpkg,-rdtscp,-rdpid,-xsave,-tsc_deadline_timer,-pks", hosts[h], backends[h]);
		free(hosts[h]);
	}
}

static void test_umwait_follows_waitpkg(void **state)
{
	struct kvm_cpuid2 *sup = fx_rich(false);
	char err[256];
	struct cpu_host h = { .supported = sup, .pmu = true, .backend = "kvm_intel" };
	struct cpu_model m;
	assert_int_equal(cpumodel_build(&m, "host", &h, err, sizeof(err)), 0);
	struct msr_guest g = { .cpuid = m.cpuid, .pmu = true };
	const char *why = NULL;
	assert_true(msr_saved(MSR_IA32_UMWAIT_CONTROL, &g, &why));
	cpumodel_free(&m);
	assert_int_equal(cpumodel_build(&m, "host,-waitpkg", &h, err, sizeof(err)), 0);
	g.cpuid = m.cpuid;
	assert_false(msr_saved(MSR_IA32_UMWAIT_CONTROL, &g, &why));
	assert_string_equal(why, "guest lacks waitpkg");
	assert_false(msr_saved(0x49, &g, &why));
	assert_string_equal(why, "write-only");
	assert_false(msr_saved(0x12345678, &g, &why));
	assert_string_equal(why, "unknown to Ember");
	assert_string_equal(msr_name(0xe1), "IA32_UMWAIT_CONTROL");
	cpumodel_free(&m);
	free(sup);
}

static void test_mce_banks(void **state)
{
	struct kvm_cpuid2 *sup = fx_rich(false);
	struct msr_guest g = { .cpuid = sup, .pmu = false, .mcg_cap = msr_mcg_cap(sup, MCG_CTL_P | 0x20) };
	assert_int_equal(g.mcg_cap, EMBER_MCE_BANKS | MCG_CTL_P);
	assert_true(msr_saved(0x400, &g, NULL));
	assert_true(msr_saved(0x400 + 4 * EMBER_MCE_BANKS - 1, &g, NULL));
	assert_false(msr_saved(0x400 + 4 * EMBER_MCE_BANKS, &g, NULL));
	assert_true(msr_saved(0x17b, &g, NULL));
	g.mcg_cap = msr_mcg_cap(sup, 0);
	assert_false(msr_saved(0x17b, &g, NULL) || msr_saved(0x400, &g, NULL));
	free(sup);
}

/* The lookup is a binary search over the rule table: it must stay sorted,
 * and the first and last MSR of a range and the ones just outside it find
 * what a linear reading of the table would. */
static void test_rule_lookup(void **state)
{
	assert_true(msr_rules_sorted());
	assert_string_equal(msr_name(0x10), "IA32_TSC");
	assert_null(msr_name(0xf));
	assert_string_equal(msr_name(0x174), "IA32_SYSENTER");
	assert_string_equal(msr_name(0x176), "IA32_SYSENTER");
	assert_null(msr_name(0x177));
	assert_string_equal(msr_name(0x47f), "IA32_MC_BANK");
	assert_string_equal(msr_name(0xc0011029), "AMD64_DE_CFG");
	assert_null(msr_name(0xc001102a));
	assert_null(msr_name(UINT32_MAX));
	assert_null(msr_name(0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_model_every_host),
		cmocka_unit_test(test_umwait_follows_waitpkg),
		cmocka_unit_test(test_mce_banks),
		cmocka_unit_test(test_rule_lookup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
