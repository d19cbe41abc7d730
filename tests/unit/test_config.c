/* Option parsing: sizes, numbers, and every bad `ember run` input fails
 * with EXIT_USAGE before a VM exists. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"

static void test_parse_size(void **state)
{
	uint64_t v;
	assert_int_equal(parse_size("512M", &v), 0);
	assert_true(v == 512ULL << 20);
	assert_int_equal(parse_size("2G", &v), 0);
	assert_true(v == 2ULL << 30);
	assert_int_equal(parse_size("2GiB", &v), 0);
	assert_true(v == 2ULL << 30);
	assert_int_equal(parse_size("4096", &v), 0);
	assert_true(v == 4096);
	assert_int_equal(parse_size("64k", &v), 0);
	assert_true(v == 65536);
	assert_int_equal(parse_size("", &v), -EINVAL);
	assert_int_equal(parse_size("-1G", &v), -EINVAL);
	assert_int_equal(parse_size("12X", &v), -EINVAL);
	assert_int_equal(parse_size("M", &v), -EINVAL);
	assert_int_equal(parse_size("99999999999999T", &v), -ERANGE);
}

static void test_parse_uint(void **state)
{
	unsigned v;
	assert_int_equal(parse_uint("4", 1, 8, &v), 0);
	assert_int_equal(v, 4);
	assert_int_equal(parse_uint("0", 1, 8, &v), -ERANGE);
	assert_int_equal(parse_uint("9", 1, 8, &v), -ERANGE);
	assert_int_equal(parse_uint("x", 1, 8, &v), -EINVAL);
	assert_int_equal(parse_uint("-2", 1, 8, &v), -EINVAL);
	assert_int_equal(parse_uint("3x", 1, 8, &v), -EINVAL);
}

static int parse(struct vm_config *cfg, int argc, char **argv)
{
	/* Errors go to stderr; keep test output clean. */
	FILE *saved = stderr;
	stderr = fopen("/dev/null", "w");
	int r = config_parse_run(argc, argv, cfg);
	fclose(stderr);
	stderr = saved;
	return r;
}

#define ARGS(...) (char *[]){ "run", __VA_ARGS__, NULL }
#define NARGS(...) (int)(sizeof((char *[]){ "run", __VA_ARGS__ }) / sizeof(char *))

static void test_run_good(void **state)
{
	struct vm_config cfg;
	assert_int_equal(parse(&cfg, NARGS("--kernel", "/dev/null", "--memory", "1G", "--cpus", "3",
					   "--cmdline", "a b", "--debug-exit", "--on-reboot", "restart"),
			       ARGS("--kernel", "/dev/null", "--memory", "1G", "--cpus", "3",
				    "--cmdline", "a b", "--debug-exit", "--on-reboot", "restart")), 0);
	assert_string_equal(cfg.kernel, "/dev/null");
	assert_true(cfg.mem_size == 1ULL << 30);
	assert_int_equal(cfg.ncpus, 3);
	assert_string_equal(cfg.cmdline, "a b");
	assert_true(cfg.debug_exit);
	assert_int_equal(cfg.on_reboot, ON_REBOOT_RESTART);
	assert_false(cfg.bios_state || cfg.fw_cfg || cfg.rtc || cfg.pc_testdev);
}

/* --test-devices is every device kvm-unit-tests expects, and what a BIOS
 * leaves; --bios-state alone is only that. */
static void test_test_devices(void **state)
{
	struct vm_config cfg;
	assert_int_equal(parse(&cfg, NARGS("--kernel", "/dev/null", "--test-devices"),
			       ARGS("--kernel", "/dev/null", "--test-devices")), 0);
	assert_true(cfg.debug_exit && cfg.fw_cfg && cfg.pc_testdev && cfg.rtc && cfg.bios_state);
	assert_false(cfg.pit_discard);
	assert_int_equal(parse(&cfg, NARGS("--kernel", "/dev/null", "--bios-state"),
			       ARGS("--kernel", "/dev/null", "--bios-state")), 0);
	assert_true(cfg.bios_state);
	assert_false(cfg.debug_exit || cfg.fw_cfg || cfg.pc_testdev || cfg.rtc);
}

static void test_api_socket(void **state)
{
	struct vm_config cfg;
	assert_int_equal(parse(&cfg, NARGS("--kernel", "/dev/null"), ARGS("--kernel", "/dev/null")), 0);
	assert_null(cfg.api_socket);
	assert_int_equal(parse(&cfg, NARGS("--kernel", "/dev/null", "--api-socket", "/run/x.sock"),
			       ARGS("--kernel", "/dev/null", "--api-socket", "/run/x.sock")), 0);
	assert_string_equal(cfg.api_socket, "/run/x.sock");
	/* sun_path: 107 bytes and the NUL. */
	char p107[108], p108[109];
	memset(p107, 'a', 107);
	p107[107] = '\0';
	memset(p108, 'a', 108);
	p108[108] = '\0';
	assert_int_equal(parse(&cfg, NARGS("--kernel", "/dev/null", "--api-socket", p107),
			       ARGS("--kernel", "/dev/null", "--api-socket", p107)), 0);
	assert_int_equal(parse(&cfg, NARGS("--kernel", "/dev/null", "--api-socket", p108),
			       ARGS("--kernel", "/dev/null", "--api-socket", p108)), EXIT_USAGE);
	assert_int_equal(parse(&cfg, NARGS("--kernel", "/dev/null", "--api-socket", ""),
			       ARGS("--kernel", "/dev/null", "--api-socket", "")), EXIT_USAGE);
	assert_int_equal(parse(&cfg, NARGS("--kernel", "/dev/null", "--api-socket"),
			       ARGS("--kernel", "/dev/null", "--api-socket")), EXIT_USAGE);
}

static void test_run_bad(void **state)
{
	struct vm_config cfg;
	assert_int_equal(parse(&cfg, NARGS("--memory", "1G"), ARGS("--memory", "1G")), EXIT_USAGE);
	assert_int_equal(parse(&cfg, NARGS("--kernel", "/nonexistent/k"), ARGS("--kernel", "/nonexistent/k")), EXIT_USAGE);
	assert_int_equal(parse(&cfg, NARGS("--kernel", "/dev/null", "--memory", "0"),
			       ARGS("--kernel", "/dev/null", "--memory", "0")), EXIT_USAGE);
	assert_int_equal(parse(&cfg, NARGS("--kernel", "/dev/null", "--memory", "100T"),
			       ARGS("--kernel", "/dev/null", "--memory", "100T")), EXIT_USAGE);
	assert_int_equal(parse(&cfg, NARGS("--kernel", "/dev/null", "--cpus", "0"),
			       ARGS("--kernel", "/dev/null", "--cpus", "0")), EXIT_USAGE);
	assert_int_equal(parse(&cfg, NARGS("--kernel", "/dev/null", "--bogus"),
			       ARGS("--kernel", "/dev/null", "--bogus")), EXIT_USAGE);
	assert_int_equal(parse(&cfg, NARGS("--kernel"), ARGS("--kernel")), EXIT_USAGE);
	assert_int_equal(parse(&cfg, NARGS("--kernel", "/dev/null", "--initrd", "/nonexistent/i"),
			       ARGS("--kernel", "/dev/null", "--initrd", "/nonexistent/i")), EXIT_USAGE);
	assert_int_equal(parse(&cfg, NARGS("--kernel", "/dev/null", "extra"),
			       ARGS("--kernel", "/dev/null", "extra")), EXIT_USAGE);
	assert_int_equal(parse(&cfg, NARGS("--kernel", "/dev/null", "--on-reboot", "maybe"),
			       ARGS("--kernel", "/dev/null", "--on-reboot", "maybe")), EXIT_USAGE);
}

/* With --incoming/--restore the machine is the state's; --cpu there names
 * the model that VM must have. */
static void test_from_state(void **state)
{
	struct vm_config cfg;
	assert_int_equal(parse(&cfg, NARGS("--incoming", "unix:/tmp/x.mig"), ARGS("--incoming", "unix:/tmp/x.mig")), 0);
	assert_true(cfg.from_state);
	assert_null(cfg.expect_cpu);
	assert_int_equal(parse(&cfg, NARGS("--incoming", "unix:/tmp/x.mig", "--cpu", "x86-64-v2"),
			       ARGS("--incoming", "unix:/tmp/x.mig", "--cpu", "x86-64-v2")), 0);
	assert_string_equal(cfg.expect_cpu, "x86-64-v2");
	assert_int_equal(parse(&cfg, NARGS("--incoming", "unix:/tmp/x.mig", "--cpu", "pentium9"),
			       ARGS("--incoming", "unix:/tmp/x.mig", "--cpu", "pentium9")), EXIT_USAGE);
	assert_int_equal(parse(&cfg, NARGS("--incoming", "unix:/tmp/x.mig", "--cpus", "2"),
			       ARGS("--incoming", "unix:/tmp/x.mig", "--cpus", "2")), EXIT_USAGE);
	assert_int_equal(parse(&cfg, NARGS("--kernel", "/dev/null", "--cpu", "x86-64-v2"),
			       ARGS("--kernel", "/dev/null", "--cpu", "x86-64-v2")), 0);
	assert_null(cfg.expect_cpu);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_from_state),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_parse_uint),
		cmocka_unit_test(test_run_good),
		cmocka_unit_test(test_test_devices),
		cmocka_unit_test(test_run_bad),
		cmocka_unit_test(test_api_socket),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
