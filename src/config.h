/* What the user asked for on the command line, checked before any guest
 * runs. `ember run` options become a struct vm_config. */
#ifndef EMBER_CONFIG_H
#define EMBER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
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

#define CONFIG_MAX_DISKS 16
#define CONFIG_MAX_NETS  4
#define CONFIG_PATH_MAX  1024

/* --disk PATH[,readonly][,serial=ID] */
struct disk_config {
	char path[CONFIG_PATH_MAX];
	bool readonly;
	char serial[21];          /* VIRTIO_BLK_ID_BYTES + NUL; "" = none */
};

/* --net tap=NAME[,mac=MAC] */
struct net_config {
	char tap[16];             /* IFNAMSIZ */
	uint8_t mac[6];
	bool has_mac;
};

/* --balloon [size=SIZE][,deflate-on-oom][,free-page-reporting[=dontneed|free]][,stats-interval=S] */
struct balloon_config {
	bool enabled;
	uint64_t size;            /* initial balloon target, bytes */
	bool deflate_on_oom;
	bool reporting;           /* free page reporting */
	bool reporting_free;      /* =free: lazy discards (else dontneed) */
	unsigned stats_interval;  /* seconds; 0 = statistics only on request */
};
struct host_files;
struct boot_plan;

struct vm_config {
	const char *kernel;
	const char *initrd;
	const char *cmdline;
	uint64_t mem_size;
	unsigned ncpus;
	enum on_reboot on_reboot;
	bool debug_exit;          /* isa-debug-exit at port 0xf4 */
	struct disk_config disks[CONFIG_MAX_DISKS];
	unsigned ndisks;
	struct net_config nets[CONFIG_MAX_NETS];
	unsigned nnets;
	bool rng;                 /* virtio-rng */
	struct balloon_config balloon;
	const char *cpu;          /* --cpu MODEL,+feat,-feat (default "host") */
	const char *expect_cpu;   /* --cpu with --restore/--incoming: the VM must be this model */
	unsigned test_save_restore_ms;  /* hidden: save/restore self-test after this many ms */
	/* Test devices kvm-unit-tests expects (--test-devices = all of them). */
	bool fw_cfg;              /* QEMU fw_cfg at 0x510 (vCPU count, RAM size) */
	bool pc_testdev;          /* QEMU pc-testdev: ports 0xe0-0xeb, 0x2000-0x2017, MMIO 0xff000000 */
	bool pci_testdev;         /* QEMU pci-testdev (1b36:0005) on the PCI bus */
	bool rtc;                 /* MC146818 CMOS clock at 0x70/0x71 */
	bool pit_discard;         /* --pit-discard: the PIT drops lost ticks (no reinjection) */
	bool bios_state;          /* --bios-state: IVT, BDA, 8259s and PIT as a PC BIOS leaves them */
	int result_fd;            /* --result-fd: the exit code as one byte, before teardown; -1 none */
	const char *api_socket;   /* control socket path (docs/control-api.md) or NULL */
	int dirty_choice;         /* enum dirty_choice: --dirty-tracking auto|bitmap|ring */
	unsigned dirty_ring_entries;   /* --dirty-ring-size (entries per vCPU), 0 = default */
	const char *restore;      /* --restore DIR: the machine and its state come from a snapshot */
	const char *incoming;     /* --incoming tcp:HOST:PORT|unix:PATH: ... from a live migration */
	bool from_state;          /* restore or incoming: no kernel is loaded, no boot state set */
	enum sandbox_mode seccomp;  /* --seccomp kill (default), log, off */
	const char *jail;         /* --jail DIR: pivot_root there, then run as uid/gid */
	unsigned uid, gid;        /* --uid, --gid (with --jail) */
	int test_violate;         /* hidden: this thread kind makes a forbidden call; -1 none */
	bool test_violate_ioctl;  /* ... a forbidden ioctl rather than execve */
	/* Opened once by `ember run` before the jail and the filters
	 * (src/host.h); NULL: each VM opens its own. */
	const struct host_files *files;
	/* The kernel and initrd checked and placed by `ember run` before
	 * /dev/kvm is opened (src/arch/x86/boot_plan.h); NULL: each VM plans
	 * its own boot (a restored VM's restart, the tests). */
	const struct boot_plan *boot;
};

/* Parse one --disk / --net value into d / n; on error writes a message
 * (without the "ember: error: " prefix) to err and returns -EINVAL. */
int parse_disk(const char *spec, struct disk_config *d, char *err, size_t errlen);
int parse_net(const char *spec, struct net_config *n, char *err, size_t errlen);
int parse_balloon(const char *spec, struct balloon_config *b, char *err, size_t errlen);
/* b as a --balloon value parse_balloon reads back ("(none)" when not enabled). */
void balloon_config_str(const struct balloon_config *b, char *buf, size_t len);

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
