/* What the user asked for on the command line, checked before any guest
 * runs. `ember run` options become a struct vm_config. */
#ifndef EMBER_CONFIG_H
#define EMBER_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "sandbox/sandbox.h"


/* Exit codes. Odd codes (2k+1) are reserved for the guest's debug-exit
 * port, so Ember's own codes are even. */
enum {
	EXIT_GUEST_OFF = 0,     /* guest powered off, or reset with --on-reboot exit */
	EXIT_USAGE = 2,         /* bad command line or input file */
	EXIT_GUEST_CRASH = 4,   /* triple fault, KVM internal error, failed entry */
	EXIT_VMM_ERROR = 6,     /* Ember itself failed at run time */
	EXIT_SECCOMP = 8,       /* a thread made a system call its seccomp filter forbids */
};

enum on_reboot { ON_REBOOT_EXIT, ON_REBOOT_RESTART };

struct host_files;

struct vm_config {
	const char *kernel;
	const char *initrd;
	const char *cmdline;
	uint64_t mem_size;
	unsigned ncpus;
	enum on_reboot on_reboot;
	bool debug_exit;          /* isa-debug-exit at port 0xf4 */
	const char *cpu;          /* --cpu MODEL,+feat,-feat (default "host") */
	unsigned test_save_restore_ms;  /* hidden: save/restore self-test after this many ms */
	/* Test devices kvm-unit-tests expects (--test-devices = all of them). */
	bool fw_cfg;              /* QEMU fw_cfg at 0x510 (vCPU count, RAM size) */
	bool pc_testdev;          /* QEMU pc-testdev: ports 0xe0-0xeb, 0x2000-0x2017, MMIO 0xff000000 */
	bool rtc;                 /* MC146818 CMOS clock at 0x70/0x71 */
	bool pit_discard;         /* --pit-discard: the PIT drops lost ticks (no reinjection) */
	int result_fd;            /* --result-fd: the exit code as one byte, before teardown; -1 none */
	const char *api_socket;   /* control socket path (docs/control-api.md) or NULL */
	enum sandbox_mode seccomp;  /* --seccomp kill (default), log, off */
	const char *jail;         /* --jail DIR: pivot_root there, then run as uid/gid */
	unsigned uid, gid;        /* --uid, --gid (with --jail) */
	int test_violate;         /* hidden: this thread kind makes a forbidden call; -1 none */
	bool test_violate_ioctl;  /* ... a forbidden ioctl rather than execve */
	/* Opened once by `ember run` before the jail and the filters
	 * (src/host.h); NULL: each VM opens its own. */
	const struct host_files *files;
};

/* Parse a size such as 512M, 2G, 4096K or a plain byte count.
 * Returns 0 or -EINVAL. */
int parse_size(const char *s, uint64_t *out);

/* Parse a decimal unsigned int in [min, max]; 0 or -EINVAL/-ERANGE. */
int parse_uint(const char *s, unsigned min, unsigned max, unsigned *out);

/* Parse `ember run` arguments (argv[0] is "run"). On error prints one line
 * naming the problem and returns EXIT_USAGE; returns 1 after --help or
 * --version output; 0 when cfg is ready. Checks files are readable. */
int config_parse_run(int argc, char **argv, struct vm_config *cfg);

void config_usage_run(void);

#endif
