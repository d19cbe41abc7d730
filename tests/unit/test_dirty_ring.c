/* dirty_ring_gap: finding KVM's next published entry after an overrun. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "dirty.h"

#define N 16u

static void test_gap(void **state)
{
	(void)state;
	struct kvm_dirty_gfn g[N];
	memset(g, 0, sizeof(g));
	/* Empty ring: nothing published. */
	assert_int_equal(dirty_ring_gap(g, N, 5), N);
	/* Published at the index: no gap. */
	g[5].flags = KVM_DIRTY_GFN_F_DIRTY;
	assert_int_equal(dirty_ring_gap(g, N, 5), 0);
	/* The overrun state: reset (0) entries, then KVM's newer ones,
	 * across the wrap and with a free-running index. */
	g[5].flags = 0;
	g[2].flags = KVM_DIRTY_GFN_F_DIRTY;
	assert_int_equal(dirty_ring_gap(g, N, 5 + 4 * N), N - 3);
	/* RESET entries do not count as published. */
	g[2].flags = KVM_DIRTY_GFN_F_RESET;
	assert_int_equal(dirty_ring_gap(g, N, 5), N);
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_gap) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
