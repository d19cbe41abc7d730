#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arch/x86/cpumodel.h"
#include "log.h"
#include "version.h"

int parse_size(const char *s, uint64_t *out)
{
	if (!s || !*s || *s == '-' || *s == '+')
		return -EINVAL;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	unsigned shift = 0;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	default: break;
	}
	if (shift && (*end == 'i' || *end == 'I'))
		end++;
	if (shift && (*end == 'b' || *end == 'B'))
		end++;
	if (*end)
		return -EINVAL;
	if (shift && v > (~0ULL >> shift))
		return -ERANGE;
	*out = (uint64_t)v << shift;
	return 0;
}

int parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
	if (!s || !*s || *s == '-' || *s == '+')
		return -EINVAL;
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || end == s)
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*out = (unsigned)v;
	return 0;
}

void config_usage_run(void)
{
	printf("usage: ember run --kernel PATH [options]\n"
	       "\n"
	       "  --kernel PATH        Linux bzImage, Linux vmlinux (ELF64), an ELF64 guest-kit kernel, or a\n"
	       "                       multiboot v1 kernel (ELF32/ELF64, e.g. kvm-unit-tests' x86 .flat files)\n"
	       "  --initrd PATH        initial ramdisk (a multiboot kernel gets it as its one module)\n"
	       "  --cmdline STR        kernel command line\n"
	       "  --memory SIZE        guest RAM, e.g. 512M, 2G (default 256M)\n"
	       "  --cpus N             number of vCPUs (default 1)\n"
	       "  --cpu MODEL[,+FEAT,-FEAT...]  guest CPU model: host (default), x86-64,\n"
	       "                       x86-64-v2, x86-64-v3, x86-64-v4 (see ember cpu --list)\n"
	       "  --on-reboot exit|restart  what a guest reset does (default exit)\n"
	       "  --debug-exit         isa-debug-exit device at port 0xf4: a write of V exits with (V<<1)|1\n"
	       "  --fw-cfg             QEMU fw_cfg device (ports 0x510/0x511): vCPU count, RAM size\n"
	       "  --pc-testdev         QEMU pc-testdev (ports 0xe0-0xeb, 0x2000-0x2017, MMIO 0xff000000)\n"
	       "  --rtc                MC146818 CMOS clock at ports 0x70/0x71\n"
	       "  --test-devices       all of the above: what kvm-unit-tests expects\n"
	       "  --pit-discard        the PIT drops ticks the guest missed instead of reinjecting them\n"
	       "  --result-fd FD       write the exit status as one byte to FD once the guest is done\n"
	       "                       (before the VM's teardown; ember test uses it)\n"
	       "  --api-socket PATH    serve the JSON control API on a UNIX socket (see ember ctl)\n"
	       "  --seccomp MODE       kill (default): a thread's forbidden system call ends Ember;\n"
	       "                       log: the kernel logs it and lets it through; off: no filters\n"
	       "  --jail DIR --uid U --gid G  after opening every file: a new mount namespace with DIR\n"
	       "                       as its root, user U, group G, no capabilities (docs/threat-model.md)\n"
	       "  --log-level LEVEL    error, warn (default), info or debug\n"
	       "  -h, --help           this text\n"
	       "  --version            print the version\n"
	       "\n"
	       "Exit status: 0 guest powered off, 2 bad input, 4 guest crashed, 6 VMM error,\n"
	       "odd values from the guest's debug-exit port. Console: Ctrl-A x quits.\n");
}

/* One-line error for bad user input, then EXIT_USAGE. */
static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "ember: error: %s\n", buf);
	return EXIT_USAGE;
}

static int check_readable(const char *what, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return usage_error("%s %s: %s", what, path, strerror(errno));
	close(fd);
	return 0;
}

enum {
	OPT_KERNEL = 0x100, OPT_INITRD, OPT_CMDLINE, OPT_MEMORY, OPT_CPUS,
	OPT_ON_REBOOT, OPT_DEBUG_EXIT, OPT_LOG_LEVEL, OPT_VERSION, OPT_API_SOCKET, OPT_CPU,
	OPT_TEST_SAVE_RESTORE, OPT_FW_CFG, OPT_PC_TESTDEV, OPT_RTC, OPT_TEST_DEVICES,
	OPT_RESULT_FD, OPT_PIT_DISCARD, OPT_SECCOMP, OPT_JAIL, OPT_UID, OPT_GID, OPT_TEST_VIOLATE,
};

static const struct option run_options[] = {
	{ "kernel", required_argument, NULL, OPT_KERNEL },
	{ "initrd", required_argument, NULL, OPT_INITRD },
	{ "cmdline", required_argument, NULL, OPT_CMDLINE },
	{ "memory", required_argument, NULL, OPT_MEMORY },
	{ "cpus", required_argument, NULL, OPT_CPUS },
	{ "cpu", required_argument, NULL, OPT_CPU },
	/* Hidden, for tests: pause after MS ms, save, restore into a fresh
	 * VM, save again, compare, go on (src/migration/selftest.c). */
	{ "test-save-restore-after", required_argument, NULL, OPT_TEST_SAVE_RESTORE },
	{ "on-reboot", required_argument, NULL, OPT_ON_REBOOT },
	{ "debug-exit", no_argument, NULL, OPT_DEBUG_EXIT },
	{ "fw-cfg", no_argument, NULL, OPT_FW_CFG },
	{ "pc-testdev", no_argument, NULL, OPT_PC_TESTDEV },
	{ "rtc", no_argument, NULL, OPT_RTC },
	{ "test-devices", no_argument, NULL, OPT_TEST_DEVICES },
	{ "result-fd", required_argument, NULL, OPT_RESULT_FD },
	{ "pit-discard", no_argument, NULL, OPT_PIT_DISCARD },
	{ "api-socket", required_argument, NULL, OPT_API_SOCKET },
	{ "seccomp", required_argument, NULL, OPT_SECCOMP },
	{ "jail", required_argument, NULL, OPT_JAIL },
	{ "uid", required_argument, NULL, OPT_UID },
	{ "gid", required_argument, NULL, OPT_GID },
	/* Hidden, for tests: a thread of KIND (main, vcpu, io, migration) makes
	 * a system call no filter allows; KIND-ioctl: an ioctl its list lacks. */
	{ "test-seccomp-violate", required_argument, NULL, OPT_TEST_VIOLATE },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

int config_parse_run(int argc, char **argv, struct vm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->mem_size = 256ULL << 20;
	cfg->ncpus = 1;
	cfg->cmdline = "";
	cfg->cpu = "host";
	cfg->result_fd = -1;
	cfg->test_violate = -1;
	bool have_uid = false, have_gid = false;

	optind = 1;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, ":h", run_options, NULL)) != -1) {
		switch (c) {
		case OPT_KERNEL: cfg->kernel = optarg; break;
		case OPT_INITRD: cfg->initrd = optarg; break;
		case OPT_CMDLINE: cfg->cmdline = optarg; break;
		case OPT_MEMORY:
			if (parse_size(optarg, &cfg->mem_size))
				return usage_error("--memory %s: not a size (use e.g. 512M or 2G)", optarg);
			break;
		case OPT_CPUS:
			if (parse_uint(optarg, 1, 4096, &cfg->ncpus))
				return usage_error("--cpus %s: must be a number from 1", optarg);
			break;
		case OPT_CPU: {
			char err[256];
			if (cpumodel_check_spec(optarg, err, sizeof(err)))
				return usage_error("%s", err);
			cfg->cpu = optarg;
			break;
		}
		case OPT_TEST_SAVE_RESTORE:
			if (parse_uint(optarg, 1, 3600000, &cfg->test_save_restore_ms))
				return usage_error("--test-save-restore-after %s: milliseconds from 1", optarg);
			break;
		case OPT_ON_REBOOT:
			if (!strcmp(optarg, "exit"))
				cfg->on_reboot = ON_REBOOT_EXIT;
			else if (!strcmp(optarg, "restart"))
				cfg->on_reboot = ON_REBOOT_RESTART;
			else
				return usage_error("--on-reboot %s: must be exit or restart", optarg);
			break;
		case OPT_DEBUG_EXIT: cfg->debug_exit = true; break;
		case OPT_FW_CFG: cfg->fw_cfg = true; break;
		case OPT_PC_TESTDEV: cfg->pc_testdev = true; break;
		case OPT_RTC: cfg->rtc = true; break;
		case OPT_PIT_DISCARD: cfg->pit_discard = true; break;
		case OPT_TEST_DEVICES:
			cfg->debug_exit = cfg->fw_cfg = cfg->pc_testdev = cfg->rtc = true;
			break;
		case OPT_RESULT_FD: {
			unsigned fd;
			if (parse_uint(optarg, 3, 1 << 20, &fd) || fcntl((int)fd, F_GETFD) < 0)
				return usage_error("--result-fd %s: not an open file descriptor above 2", optarg);
			cfg->result_fd = (int)fd;
			break;
		}
		case OPT_API_SOCKET:
			/* sun_path holds 108 bytes with the NUL. */
			if (!*optarg || strlen(optarg) > 107)
				return usage_error("--api-socket: the path must be 1 to 107 bytes");
			cfg->api_socket = optarg;
			break;
		case OPT_SECCOMP:
			if (!strcmp(optarg, "kill"))
				cfg->seccomp = SANDBOX_KILL;
			else if (!strcmp(optarg, "log"))
				cfg->seccomp = SANDBOX_LOG;
			else if (!strcmp(optarg, "off"))
				cfg->seccomp = SANDBOX_OFF;
			else
				return usage_error("--seccomp %s: must be kill, log or off", optarg);
			break;
		case OPT_JAIL:
			if (optarg[0] != '/')
				return usage_error("--jail %s: give an absolute path", optarg);
			cfg->jail = optarg;
			break;
		case OPT_UID:
			if (parse_uint(optarg, 0, 0xfffffffe, &cfg->uid))
				return usage_error("--uid %s: a numeric user id", optarg);
			have_uid = true;
			break;
		case OPT_GID:
			if (parse_uint(optarg, 0, 0xfffffffe, &cfg->gid))
				return usage_error("--gid %s: a numeric group id", optarg);
			have_gid = true;
			break;
		case OPT_TEST_VIOLATE: {
			char kind[32];
			snprintf(kind, sizeof(kind), "%s", optarg);
			char *dash = strchr(kind, '-');
			if (dash && !strcmp(dash, "-ioctl")) {
				*dash = '\0';
				cfg->test_violate_ioctl = true;
			}
			if ((cfg->test_violate = sandbox_kind_lookup(kind)) < 0)
				return usage_error("--test-seccomp-violate %s: main, vcpu, io or migration[-ioctl]",
						   optarg);
			break;
		}
		case OPT_LOG_LEVEL:
			if (!strcmp(optarg, "error")) log_level = LOG_ERROR;
			else if (!strcmp(optarg, "warn")) log_level = LOG_WARN;
			else if (!strcmp(optarg, "info")) log_level = LOG_INFO;
			else if (!strcmp(optarg, "debug")) log_level = LOG_DEBUG;
			else return usage_error("--log-level %s: must be error, warn, info or debug", optarg);
			break;
		case 'h':
			config_usage_run();
			return 1;
		case OPT_VERSION:
			printf("ember %s\n", EMBER_VERSION);
			return 1;
		case ':':
			return usage_error("%s needs a value", argv[optind - 1]);
		default:
			return usage_error("unknown option %s (see ember run --help)", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument %s (see ember run --help)", argv[optind]);
	if (!cfg->kernel)
		return usage_error("no kernel: give --kernel PATH");
	if ((have_uid || have_gid) && !cfg->jail)
		return usage_error("--uid and --gid go with --jail DIR");
	if (cfg->jail && (!have_uid || !have_gid))
		return usage_error("--jail needs --uid and --gid: the user and group Ember runs as in it");
	if (cfg->jail && cfg->uid == 0)
		return usage_error("--uid 0: a jail that keeps root is none; give an unprivileged user");
	if (cfg->mem_size == 0)
		return usage_error("--memory 0: a guest needs some memory");
	if (cfg->mem_size < 2 * (1ULL << 20))
		return usage_error("--memory: at least 2M is needed");
	if (cfg->mem_size % 4096)
		return usage_error("--memory: must be a multiple of 4K");
	uint64_t host = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
	if (cfg->mem_size > host)
		return usage_error("--memory: %llu MiB is more than this host has (%llu MiB)",
				   (unsigned long long)(cfg->mem_size >> 20),
				   (unsigned long long)(host >> 20));
	/* Worded as QEMU words it: kvm-unit-tests' runner looks for "could not
	 * load kernel" to tell a working VMM from one that declines options. */
	int fd = open(cfg->kernel, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return usage_error("could not load kernel %s: %s", cfg->kernel, strerror(errno));
	close(fd);
	int ret = 0;
	if (cfg->initrd)
		ret = check_readable("initrd", cfg->initrd);
	return ret;
}
