/* The seccomp allow lists (src/sandbox/filters.c): the rules that keep
 * them narrow hold for every kind, and every filter builds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <cmocka.h>
#include <seccomp.h>

#include "sandbox/filters.h"
#include "sandbox/sandbox.h"

/* The groups a kind's filter is built from (main's with rebuild too). */
static unsigned groups_of(int kind, bool rebuild, const struct sc_group **out)
{
	unsigned n = 0;
	for (const struct sc_group *const *g = sc_kinds[kind].groups; *g; g++)
		out[n++] = *g;
	if (rebuild)
		out[n++] = &sc_group_rebuild;
	return n;
}

static bool has_cmp(const struct sc_rule *r, unsigned arg)
{
	for (unsigned i = 0; i < sc_rule_ncmp(r); i++)
		if (r->cmp[i].arg == arg)
			return true;
	return false;
}

/* No ioctl without its request checked, no executable memory, and no
 * comparison hidden behind an empty slot. */
static void test_rules_are_narrow(void **state)
{
	const struct sc_group *groups[SC_MAX_GROUPS + 2];
	for (int k = 0; k < THREAD_KINDS; k++) {
		unsigned n = groups_of(k, k == THREAD_MAIN, groups);
		for (unsigned g = 0; g < n; g++)
			for (unsigned i = 0; i < groups[g]->n; i++) {
				const struct sc_rule *r = &groups[g]->rules[i];
				if (r->nr == SCMP_SYS(ioctl))
					assert_true(has_cmp(r, 1));
				if (r->nr == SCMP_SYS(mmap) || r->nr == SCMP_SYS(mprotect)) {
					assert_true(has_cmp(r, 2));
					assert_int_equal(r->cmp[0].mask & PROT_EXEC, PROT_EXEC);
				}
				for (unsigned j = sc_rule_ncmp(r); j < 3; j++)
					assert_int_equal(r->cmp[j].arg, 0);
				assert_non_null(r->name);
				assert_int_not_equal(r->nr, __NR_SCMP_ERROR);
			}
	}
}

static bool allows(int kind, const char *name)
{
	for (const struct sc_group *const *g = sc_kinds[kind].groups; *g; g++)
		for (unsigned i = 0; i < (*g)->n; i++)
			if (!strcmp((*g)->rules[i].name, name) && !(*g)->rules[i].enosys)
				return true;
	return false;
}

/* The SIGSYS report needs these on whichever thread it runs. */
static void test_report_can_run_everywhere(void **state)
{
	static const char *const needed[] = { "write", "exit_group", "rt_sigreturn", "exit" };
	for (int k = 0; k < THREAD_KINDS; k++)
		for (unsigned i = 0; i < 4; i++)
			assert_true(allows(k, needed[i]));
	/* and nothing can start a program */
	static const char *const never[] = { "execve", "execveat", "open", "fork", "vfork",
					     "ptrace", "mount", "chroot", "setuid", "kill" };
	for (int k = 0; k < THREAD_KINDS; k++)
		for (unsigned i = 0; i < sizeof(never) / sizeof(never[0]); i++)
			assert_false(allows(k, never[i]));
	/* Only a snapshot opens files, and only to create them. */
	for (int k = 0; k < THREAD_KINDS; k++)
		if (k != THREAD_MIGRATION)
			assert_false(allows(k, "openat"));
	assert_true(allows(THREAD_MIGRATION, "openat"));
	for (const struct sc_group *const *g = sc_kinds[THREAD_MIGRATION].groups; *g; g++)
		for (unsigned i = 0; i < (*g)->n; i++)
			if ((*g)->rules[i].nr == SCMP_SYS(openat)) {
				assert_true(has_cmp(&(*g)->rules[i], 2));
				assert_int_equal((*g)->rules[i].cmp[0].val & O_CREAT, O_CREAT);
			}
	/* the guest-facing threads reach no network */
	static const char *const no_net[] = { "socket", "connect", "bind", "listen" };
	for (unsigned i = 0; i < 4; i++) {
		assert_false(allows(THREAD_MAIN, no_net[i]));
		assert_false(allows(THREAD_VCPU, no_net[i]));
	}
}

static void test_filters_build(void **state)
{
	for (int k = 0; k < THREAD_KINDS; k++) {
		int n = sandbox_filter_insns((enum thread_kind)k, 0);
		assert_true(n > 10);
		assert_true(n < 4096);     /* the kernel's limit per filter */
	}
	assert_true(sandbox_filter_insns(THREAD_MAIN, SANDBOX_REBUILD) > sandbox_filter_insns(THREAD_MAIN, 0));
}

static void test_kind_names(void **state)
{
	for (int k = 0; k < THREAD_KINDS; k++)
		assert_int_equal(sandbox_kind_lookup(sandbox_kind_name((enum thread_kind)k)), k);
	assert_int_equal(sandbox_kind_lookup("vcpu"), THREAD_VCPU);
	assert_int_equal(sandbox_kind_lookup("nope"), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rules_are_narrow),
		cmocka_unit_test(test_report_can_run_everywhere),
		cmocka_unit_test(test_filters_build),
		cmocka_unit_test(test_kind_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
