#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch/x86/cpumodel.h"
#include "dirty.h"
#include "migration/migrate.h"
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
	       "                       x86-64-v2, x86-64-v3, x86-64-v4 (see ember cpu --list); with\n"
	       "                       --restore/--incoming: the model the VM must have (else refused)\n"
	       "  --on-reboot exit|restart  what a guest reset does (default exit)\n"
	       "  --debug-exit         isa-debug-exit device at port 0xf4: a write of V exits with (V<<1)|1\n"
	       "  --disk PATH[,readonly][,serial=ID]  virtio-blk on a raw image (repeatable)\n"
	       "  --net tap=NAME[,mac=MAC]  virtio-net on an existing tap device\n"
	       "  --rng                virtio-rng, fed from getrandom(2)\n"
	       "  --balloon [size=SIZE][,deflate-on-oom][,free-page-reporting[=dontneed|free]][,stats-interval=S]\n"
	       "                       virtio-balloon: initial balloon SIZE (default 0), let the guest\n"
	       "                       deflate when it runs out of memory, take free page reports and\n"
	       "                       give their memory back to the host (at once, or lazily with =free),\n"
	       "                       ask for guest memory statistics every S seconds (see ember ctl balloon)\n"
	       "  --fw-cfg             QEMU fw_cfg device (ports 0x510/0x511): vCPU count, RAM size\n"
	       "  --pc-testdev         QEMU pc-testdev (ports 0xe0-0xeb, 0x2000-0x2017, MMIO 0xff000000)\n"
	       "  --rtc                MC146818 CMOS clock at ports 0x70/0x71\n"
	       "  --pci-testdev        QEMU pci-testdev (1b36:0005) on the PCI bus (not in --test-devices)\n"
	       "  --bios-state         what a PC BIOS leaves: real-mode IVT and handlers, BIOS data\n"
	       "                       area, 8259s at vectors 0x08/0x70 (IRQ 0 open), PIT at 18.2 Hz\n"
	       "  --test-devices       all of the above: what kvm-unit-tests expects\n"
	       "  --pit-discard        the PIT drops ticks the guest missed instead of reinjecting them\n"
	       "  --result-fd FD       write the exit status as one byte to FD once the guest is done\n"
	       "                       (before the VM's teardown; ember test uses it)\n"
	       "  --api-socket PATH    serve the JSON control API on a UNIX socket (see ember ctl)\n"
	       "  --dirty-tracking auto|bitmap|ring  KVM dirty log for snapshots and migration (default auto)\n"
	       "  --dirty-ring-size N  dirty ring entries per vCPU, a power of two (default 4096)\n"
	       "  --restore DIR        resume the VM saved by `ember ctl SOCK snapshot DIR` (instead of --kernel)\n"
	       "  --incoming URI       wait for a live migration on tcp:HOST:PORT or unix:PATH (instead of --kernel)\n"
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

static int check_disk(const struct disk_config *d)
{
	int fd = open(d->path, (d->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0)
		return usage_error("--disk %s: %s%s", d->path, strerror(errno),
				   errno == EACCES || errno == EROFS ? " (add ,readonly?)" : "");
	struct stat st;
	int r = fstat(fd, &st);
	close(fd);
	if (r == 0 && !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return usage_error("--disk %s: not a regular file or block device", d->path);
	if (r == 0 && S_ISREG(st.st_mode) && st.st_size % 512)
		return usage_error("--disk %s: size %lld is not a multiple of 512 bytes", d->path,
				   (long long)st.st_size);
	return 0;
}

static int spec_error(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int spec_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* Next comma-separated item of *s into buf; false at the end. */
static bool next_item(const char **s, char *buf, size_t len, bool *too_long)
{
	if (!*s)
		return false;
	const char *c = strchr(*s, ',');
	size_t n = c ? (size_t)(c - *s) : strlen(*s);
	*too_long = n >= len;
	if (!*too_long) {
		memcpy(buf, *s, n);
		buf[n] = '\0';
	}
	*s = c ? c + 1 : NULL;
	return true;
}

int parse_disk(const char *spec, struct disk_config *d, char *err, size_t errlen)
{
	char item[CONFIG_PATH_MAX];
	bool long_;
	memset(d, 0, sizeof(*d));
	if (!next_item(&spec, d->path, sizeof(d->path), &long_) || long_ || !d->path[0])
		return spec_error(err, errlen, long_ ? "path too long" : "no image path");
	while (next_item(&spec, item, sizeof(item), &long_)) {
		if (long_)
			return spec_error(err, errlen, "option too long");
		if (!strcmp(item, "readonly") || !strcmp(item, "ro")) {
			d->readonly = true;
		} else if (!strncmp(item, "serial=", 7)) {
			if (strlen(item + 7) > sizeof(d->serial) - 1)
				return spec_error(err, errlen, "serial is longer than %zu characters",
						  sizeof(d->serial) - 1);
			strcpy(d->serial, item + 7);
		} else {
			return spec_error(err, errlen, "unknown option '%s' (readonly, serial=ID)", item);
		}
	}
	return 0;
}

static bool parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	char end;
	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &end) != 6)
		return false;
	if (strlen(s) != 17)
		return false;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	return !(mac[0] & 1);   /* a unicast address */
}

int parse_net(const char *spec, struct net_config *n, char *err, size_t errlen)
{
	char item[64];
	bool long_;
	memset(n, 0, sizeof(*n));
	while (next_item(&spec, item, sizeof(item), &long_)) {
		if (long_)
			return spec_error(err, errlen, "option too long");
		if (!strncmp(item, "tap=", 4)) {
			if (!item[4] || strlen(item + 4) >= sizeof(n->tap))
				return spec_error(err, errlen, "tap name must be 1 to %zu characters",
						  sizeof(n->tap) - 1);
			strcpy(n->tap, item + 4);
		} else if (!strncmp(item, "mac=", 4)) {
			if (!parse_mac(item + 4, n->mac))
				return spec_error(err, errlen, "mac=%s: not a unicast MAC like 52:54:00:12:34:56",
						  item + 4);
			n->has_mac = true;
		} else {
			return spec_error(err, errlen, "unknown option '%s' (tap=NAME, mac=MAC)", item);
		}
	}
	if (!n->tap[0])
		return spec_error(err, errlen, "no tap=NAME");
	return 0;
}

int parse_balloon(const char *spec, struct balloon_config *b, char *err, size_t errlen)
{
	char item[64];
	bool long_;
	memset(b, 0, sizeof(*b));
	b->enabled = true;
	while (spec && *spec && next_item(&spec, item, sizeof(item), &long_)) {
		if (long_)
			return spec_error(err, errlen, "option too long");
		if (!strncmp(item, "size=", 5)) {
			if (parse_size(item + 5, &b->size) || b->size % 4096)
				return spec_error(err, errlen, "size=%s: not a size in 4K pages (e.g. 256M)", item + 5);
		} else if (!strcmp(item, "deflate-on-oom")) {
			b->deflate_on_oom = true;
		} else if (!strcmp(item, "free-page-reporting") || !strcmp(item, "free-page-reporting=dontneed")) {
			b->reporting = true;
			b->reporting_free = false;
		} else if (!strcmp(item, "free-page-reporting=free")) {
			b->reporting = b->reporting_free = true;
		} else if (!strncmp(item, "free-page-reporting=", 20)) {
			return spec_error(err, errlen, "%s: must be dontneed or free", item);
		} else if (!strncmp(item, "stats-interval=", 15)) {
			if (parse_uint(item + 15, 0, 3600, &b->stats_interval))
				return spec_error(err, errlen, "%s: seconds from 0 to 3600", item);
		} else {
			return spec_error(err, errlen, "unknown option '%s' (size=SIZE, deflate-on-oom, "
					  "free-page-reporting[=dontneed|free], stats-interval=S)", item);
		}
	}
	return 0;
}

void balloon_config_str(const struct balloon_config *b, char *buf, size_t len)
{
	if (!b->enabled) {
		snprintf(buf, len, "(none)");
		return;
	}
	char size[32];
	if (b->size % (1ull << 20))
		snprintf(size, sizeof(size), "%lluK", (unsigned long long)(b->size >> 10));
	else
		snprintf(size, sizeof(size), "%lluM", (unsigned long long)(b->size >> 20));
	snprintf(buf, len, "size=%s%s%s,stats-interval=%u", size, b->deflate_on_oom ? ",deflate-on-oom" : "",
		 !b->reporting ? "" : b->reporting_free ? ",free-page-reporting=free" : ",free-page-reporting=dontneed",
		 b->stats_interval);
}

enum {
	OPT_KERNEL = 0x100, OPT_INITRD, OPT_CMDLINE, OPT_MEMORY, OPT_CPUS,
	OPT_ON_REBOOT, OPT_DEBUG_EXIT, OPT_LOG_LEVEL, OPT_VERSION, OPT_API_SOCKET, OPT_CPU,
	OPT_DISK, OPT_NET, OPT_RNG, OPT_BALLOON,
	OPT_TEST_SAVE_RESTORE, OPT_FW_CFG, OPT_PC_TESTDEV, OPT_RTC, OPT_TEST_DEVICES,
	OPT_RESULT_FD, OPT_PIT_DISCARD, OPT_DIRTY_TRACKING, OPT_DIRTY_RING_SIZE, OPT_RESTORE, OPT_INCOMING,
	OPT_BIOS_STATE, OPT_PCI_TESTDEV, OPT_SECCOMP, OPT_JAIL, OPT_UID, OPT_GID, OPT_TEST_VIOLATE,
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
	{ "bios-state", no_argument, NULL, OPT_BIOS_STATE },
	{ "pci-testdev", no_argument, NULL, OPT_PCI_TESTDEV },
	{ "api-socket", required_argument, NULL, OPT_API_SOCKET },
	{ "dirty-tracking", required_argument, NULL, OPT_DIRTY_TRACKING },
	{ "dirty-ring-size", required_argument, NULL, OPT_DIRTY_RING_SIZE },
	{ "restore", required_argument, NULL, OPT_RESTORE },
	{ "incoming", required_argument, NULL, OPT_INCOMING },
	{ "seccomp", required_argument, NULL, OPT_SECCOMP },
	{ "jail", required_argument, NULL, OPT_JAIL },
	{ "uid", required_argument, NULL, OPT_UID },
	{ "gid", required_argument, NULL, OPT_GID },
	/* Hidden, for tests: a thread of KIND (main, vcpu, io, migration) makes
	 * a system call no filter allows; KIND-ioctl: an ioctl its list lacks. */
	{ "test-seccomp-violate", required_argument, NULL, OPT_TEST_VIOLATE },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "disk", required_argument, NULL, OPT_DISK },
	{ "net", required_argument, NULL, OPT_NET },
	{ "rng", no_argument, NULL, OPT_RNG },
	{ "balloon", optional_argument, NULL, OPT_BALLOON },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

static bool is_machine_option(int c)
{
	switch (c) {
	case OPT_KERNEL: case OPT_INITRD: case OPT_CMDLINE: case OPT_MEMORY: case OPT_CPUS:
	case OPT_DEBUG_EXIT: case OPT_FW_CFG: case OPT_PC_TESTDEV: case OPT_RTC: case OPT_TEST_DEVICES:
	case OPT_PIT_DISCARD: case OPT_TEST_SAVE_RESTORE:
		return true;
	default:
		return false;
	}
}

int config_parse_run(int argc, char **argv, struct vm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->mem_size = 256ULL << 20;
	cfg->ncpus = 1;
	cfg->cmdline = "";
	cfg->cpu = "host";
	cfg->result_fd = -1;
	/* A forbidden system call ends Ember (docs/threat-model.md, "Default:
	 * kill"); --seccomp log lets it through, logged. */
	cfg->seccomp = SANDBOX_KILL;
	cfg->test_violate = -1;
	bool have_uid = false, have_gid = false, cpu_given = false;

	optind = 1;
	opterr = 0;
	int c, idx;
	/* The first option that describes the machine: with --restore or
	 * --incoming the machine comes from the saved state instead. */
	const char *machine_opt = NULL;
	while ((idx = -1, c = getopt_long(argc, argv, ":h", run_options, &idx)) != -1) {
		if (!machine_opt && idx >= 0 && is_machine_option(c))
			machine_opt = run_options[idx].name;
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
			cpu_given = true;
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
		case OPT_RNG: cfg->rng = true; break;
		case OPT_BALLOON: {
			char err[256];
			/* `--balloon OPTS` as well as `--balloon=OPTS`: `ember
			 * run` has no positional arguments, so a next word that
			 * is not an option is the balloon's. */
			const char *spec = optarg;
			if (!spec && optind < argc && argv[optind][0] != '-')
				spec = argv[optind++];
			if (parse_balloon(spec, &cfg->balloon, err, sizeof(err)))
				return usage_error("--balloon %s: %s", spec ? spec : "", err);
			break;
		}
		case OPT_DISK: {
			char err[256];
			if (cfg->ndisks == CONFIG_MAX_DISKS)
				return usage_error("--disk: at most %d disks", CONFIG_MAX_DISKS);
			if (parse_disk(optarg, &cfg->disks[cfg->ndisks], err, sizeof(err)))
				return usage_error("--disk %s: %s", optarg, err);
			cfg->ndisks++;
			break;
		}
		case OPT_NET: {
			char err[256];
			if (cfg->nnets == CONFIG_MAX_NETS)
				return usage_error("--net: at most %d network devices", CONFIG_MAX_NETS);
			if (parse_net(optarg, &cfg->nets[cfg->nnets], err, sizeof(err)))
				return usage_error("--net %s: %s", optarg, err);
			cfg->nnets++;
			break;
		}
		case OPT_FW_CFG: cfg->fw_cfg = true; break;
		case OPT_PC_TESTDEV: cfg->pc_testdev = true; break;
		case OPT_RTC: cfg->rtc = true; break;
		case OPT_PIT_DISCARD: cfg->pit_discard = true; break;
		case OPT_BIOS_STATE: cfg->bios_state = true; break;
		case OPT_PCI_TESTDEV: cfg->pci_testdev = true; break;
		case OPT_TEST_DEVICES:
			cfg->debug_exit = cfg->fw_cfg = cfg->pc_testdev = cfg->rtc = cfg->bios_state = true;
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
		case OPT_DIRTY_TRACKING: {
			enum dirty_choice dc;
			if (dirty_parse_choice(optarg, &dc))
				return usage_error("--dirty-tracking %s: must be auto, bitmap or ring", optarg);
			cfg->dirty_choice = (int)dc;
			break;
		}
		case OPT_DIRTY_RING_SIZE:
			if (parse_uint(optarg, 256, 1u << 20, &cfg->dirty_ring_entries) ||
			    (cfg->dirty_ring_entries & (cfg->dirty_ring_entries - 1)))
				return usage_error("--dirty-ring-size %s: a power of two from 256 to 1048576", optarg);
			break;
		case OPT_RESTORE: cfg->restore = optarg; break;
		case OPT_INCOMING: {
			char err[256];
			if (migrate_uri_check(optarg, err, sizeof(err)))
				return usage_error("--incoming %s", err);
			cfg->incoming = optarg;
			break;
		}
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
	if (cfg->restore && cfg->incoming)
		return usage_error("--restore and --incoming exclude each other");
	if (cfg->restore || cfg->incoming) {
		if (machine_opt)
			return usage_error("--%s: the machine comes from the %s, not from options", machine_opt,
					   cfg->restore ? "snapshot (--restore)" : "migration stream (--incoming)");
		cfg->from_state = true;
		/* --cpu names the model the VM in the state must have: a VM of
		 * another is refused before any of it is loaded. */
		cfg->expect_cpu = cpu_given ? cfg->cpu : NULL;
		return cfg->restore ? check_readable("--restore", cfg->restore) : 0;
	}
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
	if (cfg->balloon.size > cfg->mem_size)
		return usage_error("--balloon size=%llu MiB is more than the guest's %llu MiB of RAM",
				   (unsigned long long)(cfg->balloon.size >> 20),
				   (unsigned long long)(cfg->mem_size >> 20));
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
	for (unsigned i = 0; !ret && i < cfg->ndisks; i++)
		ret = check_disk(&cfg->disks[i]);
	return ret;
}
