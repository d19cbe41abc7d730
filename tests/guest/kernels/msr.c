/* MSRs inside the guest: reads every MSR named in msrs=HEX,HEX,... with
 * rdmsr (each must be readable) and every one in gp=HEX,... (each must
 * raise #GP), under catch_exception. test_cpu.sh passes the save list of
 * `ember cpu --json` as msrs= and MSR_IA32_UMWAIT_CONTROL (0xe1) as gp= on
 * a CPU model without WAITPKG. */
#include "kit.h"

static char list[4096];

static void do_rdmsr(void *arg)
{
	uint32_t *msr = arg;
	volatile uint64_t v = rdmsr(*msr);
	(void)v;
}

/* Calls fn for each hex number of a comma-separated list; returns how
 * many there were, -1 on a malformed list. */
static int each_msr(const char *key, void (*fn)(uint32_t msr, bool expect_gp), bool expect_gp)
{
	if (!cmdline_get(key, list, sizeof(list)))
		return 0;
	int n = 0;
	for (char *p = list; *p;) {
		char *end;
		unsigned long long v = strtoull(p, &end, 16);
		if (end == p || (*end && *end != ',') || v > 0xffffffffull)
			return -1;
		fn((uint32_t)v, expect_gp);
		n++;
		p = *end ? end + 1 : end;
	}
	return n;
}

static void check(uint32_t msr, bool expect_gp)
{
	struct exc_info info;
	int vec = catch_exception(do_rdmsr, &msr, &info);
	if (expect_gp)
		report(vec == 13, "rdmsr %#x raises #GP (vector %d)", msr, vec);
	else
		report(vec == -1, "rdmsr %#x reads (vector %d)", msr, vec);
}

void kmain(void)
{
	int ok = each_msr("msrs", check, false);
	int gp = each_msr("gp", check, true);
	report(ok >= 0 && gp >= 0, "MSR lists parse (%d readable, %d #GP expected)", ok, gp);
	report(ok + gp > 0, "some MSRs were checked");
}
