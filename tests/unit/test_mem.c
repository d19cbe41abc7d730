/* Guest RAM: the checked accessors refuse every range that is not wholly
 * RAM (edges, the MMIO hole, wrap-around), and the guard pages around
 * Ember's mapping make an access that escaped them fault. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <valgrind/valgrind.h>

#include "arch/x86/layout.h"
#include "mem.h"

/* Every access of len bytes at gpa through the three accessors agrees
 * with `ok`. */
static void expect_access(const struct guest_mem *m, uint64_t gpa, uint64_t len, bool ok)
{
	uint8_t buf[16] = { 0 };
	size_t n = len < sizeof(buf) ? (size_t)len : sizeof(buf);
	if (ok) {
		assert_non_null(mem_ptr(m, gpa, len));
		assert_int_equal(mem_read(m, buf, gpa, n), 0);
		assert_int_equal(mem_write(m, gpa, buf, n), 0);
	} else {
		assert_null(mem_ptr(m, gpa, len));
		if (len <= sizeof(buf)) {
			assert_int_equal(mem_read(m, buf, gpa, n), -EFAULT);
			assert_int_equal(mem_write(m, gpa, buf, n), -EFAULT);
		}
	}
}

static void test_edges_low(void **state)
{
	struct guest_mem m;
	uint64_t size = 64 * MiB;
	assert_int_equal(mem_create(&m, size), 0);
	expect_access(&m, 0, 1, true);
	expect_access(&m, size - 8, 8, true);
	expect_access(&m, size - 7, 8, false);      /* one byte past the end */
	expect_access(&m, size, 1, false);
	expect_access(&m, 0, size, true);
	expect_access(&m, 0, size + 1, false);
	expect_access(&m, UINT64_MAX, 2, false);     /* gpa + len wraps */
	expect_access(&m, UINT64_MAX - 7, 16, false);
	expect_access(&m, 8, UINT64_MAX, false);
	expect_access(&m, LAYOUT_HIGH_RAM, 1, false); /* no high RAM */
	assert_false(mem_is_ram(&m, size - 1, 2));
	assert_false(mem_is_ram(&m, UINT64_MAX, 2));
	mem_destroy(&m);
}

/* RAM above 3 GiB is split around the hole; no range spans it. */
static void test_edges_hole(void **state)
{
	struct guest_mem m;
	uint64_t size = LAYOUT_MMIO_HOLE + 4 * MiB;
	assert_int_equal(mem_create(&m, size), 0);
	assert_int_equal(m.nregions, 2);
	expect_access(&m, LAYOUT_MMIO_HOLE - 8, 8, true);
	expect_access(&m, LAYOUT_MMIO_HOLE - 4, 8, false);
	expect_access(&m, LAYOUT_MMIO_HOLE, 1, false);
	expect_access(&m, LAYOUT_HIGH_RAM - 1, 2, false);
	expect_access(&m, LAYOUT_HIGH_RAM, 8, true);
	expect_access(&m, LAYOUT_HIGH_RAM + 4 * MiB - 8, 8, true);
	expect_access(&m, LAYOUT_HIGH_RAM + 4 * MiB - 4, 8, false);
	/* Across the hole is RAM on both ends but not one host range. */
	assert_null(mem_ptr(&m, LAYOUT_MMIO_HOLE - 4096, LAYOUT_HIGH_RAM - LAYOUT_MMIO_HOLE + 8192));
	mem_destroy(&m);
}

/* The permissions /proc/self/maps shows at address a ("---p" for a guard). */
static bool maps_perms(const void *a, char perms[5])
{
	FILE *f = fopen("/proc/self/maps", "r");
	if (!f)
		return false;
	unsigned long lo, hi;
	char p[5];
	bool found = false;
	while (fscanf(f, "%lx-%lx %4s%*[^\n]", &lo, &hi, p) == 3) {
		if ((uintptr_t)a >= lo && (uintptr_t)a < hi) {
			memcpy(perms, p, 5);
			found = true;
			break;
		}
	}
	fclose(f);
	return found;
}

static void on_segv(int sig)
{
	_exit(42);
}

/* Touch one byte at p in a child: true when the child faulted. */
static bool faults(volatile uint8_t *p)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		signal(SIGSEGV, on_segv);
		signal(SIGBUS, on_segv);
		*p = 1;
		_exit(0);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) && WEXITSTATUS(st) == 42;
}

static void test_guard_pages(void **state)
{
	struct guest_mem m;
	uint64_t size = 8 * MiB;
	assert_int_equal(mem_create(&m, size), 0);
	assert_true(m.host - m.reserved >= (ptrdiff_t)MEM_GUARD_SIZE);
	assert_true(m.reserved + m.reserved_len - (m.host + size) >= (ptrdiff_t)MEM_GUARD_SIZE);
	assert_int_equal((uintptr_t)m.host % MEM_GUARD_SIZE, 0);
	char perms[5];
	const uint8_t *probes[] = { m.host - 1, m.host - MEM_GUARD_SIZE, m.host + size,
				    m.host + size + MEM_GUARD_SIZE - 1 };
	for (unsigned i = 0; i < 4; i++) {
		assert_true(maps_perms(probes[i], perms));
		assert_string_equal(perms, "---p");
	}
	assert_true(maps_perms(m.host, perms));
	assert_string_equal(perms, "rw-s");
	/* Valgrind would (rightly) report the deliberate faults. */
	if (!RUNNING_ON_VALGRIND) {
		assert_true(faults(m.host - 1));
		assert_true(faults(m.host + size));
		assert_false(faults(m.host + size - 1));
	}
	mem_destroy(&m);
}

/* The value of field `key` ("VmFlags:", "ShmemPmdMapped:") of the mapping
 * holding a, from /proc/self/smaps ("" if none). */
static void smaps_field(const void *a, const char *key, char *val, size_t len)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	bool in = false;
	val[0] = 0;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
			in = (uintptr_t)a >= lo && (uintptr_t)a < hi;
		else if (in && !strncmp(line, key, strlen(key))) {
			snprintf(val, len, "%s", line + strlen(key));
			break;
		}
	}
	fclose(f);
}

static void smaps_flags(const void *a, char *flags, size_t len)
{
	smaps_field(a, "VmFlags:", flags, len);
}

/* KiB of the mapping holding a that Ember's page tables map with huge
 * pages (shmem, a memfd included: "ShmemPmdMapped"). */
static unsigned long pmd_mapped_kib(const void *a)
{
	char v[64];
	smaps_field(a, "ShmemPmdMapped:", v, sizeof(v));
	return strtoul(v, NULL, 10);
}

static bool has_flag(const char *flags, const char *flag)
{
	char want[8];
	snprintf(want, sizeof(want), " %s ", flag);
	char padded[512];
	snprintf(padded, sizeof(padded), " %s", flags);
	padded[strcspn(padded, "\n")] = ' ';
	return strstr(padded, want) != NULL;
}

/* The selected word of shmem_enabled, and which ones give huge pages. */
static void test_thp_setting(void **state)
{
	char w[16];
	mem_thp_setting("always within_size advise [never] deny force\n", w, sizeof(w));
	assert_string_equal(w, "never");
	assert_false(mem_thp_allows(w));
	mem_thp_setting("always [within_size] advise never deny force", w, sizeof(w));
	assert_string_equal(w, "within_size");
	assert_true(mem_thp_allows(w));
	mem_thp_setting("[always] within_size advise never deny force", w, sizeof(w));
	assert_true(mem_thp_allows(w));
	mem_thp_setting("always within_size [advise] never deny force", w, sizeof(w));
	assert_true(mem_thp_allows(w));
	mem_thp_setting("always within_size advise never deny [force]", w, sizeof(w));
	assert_true(mem_thp_allows(w));
	mem_thp_setting("always within_size advise never [deny] force", w, sizeof(w));
	assert_false(mem_thp_allows(w));
	/* Garbage, a word too long for the buffer, nothing selected. */
	mem_thp_setting("always advise never", w, sizeof(w));
	assert_string_equal(w, "");
	assert_false(mem_thp_allows(w));
	mem_thp_setting("[unterminated", w, sizeof(w));
	assert_string_equal(w, "");
	char small[4];
	mem_thp_setting("[advise]", small, sizeof(small));
	assert_string_equal(small, "");
	/* The host's own, whatever it is, parses to a known word or nothing. */
	mem_thp_host_setting(w, sizeof(w));
	const char *known[] = { "", "never", "advise", "within_size", "always", "deny", "force" };
	bool ok = false;
	for (unsigned i = 0; i < 7; i++)
		ok |= !strcmp(w, known[i]);
	assert_true(ok);
}

/* mem_create alone leaves the mapping as it was (no huge-page advice: a
 * host with shmem_enabled=never sees no change); mem_use_thp advises all of
 * RAM and none of the guards, and RAM stays what it was. */
static void test_thp_advice(void **state)
{
	struct guest_mem m;
	uint64_t size = 8 * MiB + 4 * KiB;   /* a tail under 2 MiB stays small */
	char flags[512];
	assert_int_equal(mem_create(&m, size), 0);
	assert_false(m.thp);
	smaps_flags(m.host, flags, sizeof(flags));
	assert_true(has_flag(flags, "sh"));     /* found the shared mapping */
	assert_false(has_flag(flags, "hg"));
	assert_int_equal(mem_write(&m, 4096, "ember", 6), 0);
	int r = mem_use_thp(&m);
	if (r == -EINVAL) {                     /* a kernel without THP */
		mem_destroy(&m);
		skip();
	}
	assert_int_equal(r, 0);
	assert_true(m.thp);
	smaps_flags(m.host, flags, sizeof(flags));
	assert_true(has_flag(flags, "hg"));
	smaps_flags(m.host + size - 1, flags, sizeof(flags));
	assert_true(has_flag(flags, "hg"));
	smaps_flags(m.host - 1, flags, sizeof(flags));
	assert_false(has_flag(flags, "hg"));
	smaps_flags(m.host + size, flags, sizeof(flags));
	assert_false(has_flag(flags, "hg"));
	char back[6];
	assert_int_equal(mem_read(&m, back, 4096, 6), 0);
	assert_string_equal(back, "ember");
	/* A whole 2 MiB block, then one 4 KiB page inside another: each gives
	 * back exactly what it covers, whether the host made the block one
	 * huge page (shmem_enabled=advise: the punch splits it) or 512. */
	memset(m.host + 2 * MiB, 1, 4 * MiB);
	char host[16];
	mem_thp_host_setting(host, sizeof(host));
	unsigned long huge = pmd_mapped_kib(m.host);
	print_message("shmem_enabled %s: %lu KiB of RAM on huge pages\n", host[0] ? host : "absent", huge);
	if (!mem_thp_allows(host))
		assert_int_equal(huge, 0);
	uint64_t held = mem_resident(&m);
	assert_true(held >= 4 * MiB + 4 * KiB);
	assert_int_equal(mem_discard(&m, 2 * MiB, 2 * MiB), 0);
	assert_int_equal(mem_resident(&m), held - 2 * MiB);
	assert_int_equal(mem_discard(&m, 4 * MiB, 4 * KiB), 0);
	assert_int_equal(mem_resident(&m), held - 2 * MiB - 4 * KiB);
	assert_int_equal(mem_read(&m, back, 4 * MiB, 1), 0);
	assert_int_equal(back[0], 0);
	assert_int_equal(mem_read(&m, back, 4 * MiB + 4 * KiB, 1), 0);
	assert_int_equal(back[0], 1);
	assert_int_equal(mem_read(&m, back, 4096, 6), 0);
	assert_string_equal(back, "ember");
	mem_destroy(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_edges_low),
		cmocka_unit_test(test_edges_hole),
		cmocka_unit_test(test_guard_pages),
		cmocka_unit_test(test_thp_setting),
		cmocka_unit_test(test_thp_advice),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
