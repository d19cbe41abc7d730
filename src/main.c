/* ember: one process, one VM. The command line picks a subcommand. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>
#include <string.h>

#include "arch/x86/boot_plan.h"
#include "cmd_cpu.h"
#include "cmd_seccomp.h"
#include "config.h"
#include "control/control.h"
#include "control/ctl.h"
#include "host.h"
#include "log.h"
#include "migration/migrate.h"
#include "migration/selftest.h"
#include "migration/snapshot.h"
#include "migration/vmsave.h"
#include "sandbox/jail.h"
#include "sandbox/sandbox.h"
#include "test_runner.h"
#include "version.h"
#include "vm.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: ember COMMAND [options]\n"
		   "\n"
		   "commands:\n"
		   "  run       run a VM (ember run --help)\n"
		   "  cpu       show the guest CPU model and the MSRs saved (ember cpu --help)\n"
		   "  test      run test kernels, each in its own VM, and summarize (ember test --help)\n"
		   "  ctl       control a running VM through its --api-socket (ember ctl --help)\n"
		   "  seccomp   list the system calls each kind of thread may make (ember seccomp --help)\n"
		   "  version   print the version\n");
}

/* What `ember run` does before its first VM, in this order: the user's
 * files, the boot they plan and the control socket; then /dev/kvm, the
 * jail and the filters. So bad input is refused (exit 2) before /dev/kvm
 * is opened, alike on a host with KVM and on one without. Everything on
 * the host is opened here, once: after the jail and the filters nothing
 * more can be (docs/threat-model.md). 0, or an exit code with the message
 * printed; the caller closes what was opened. */
static int run_setup(struct vm_config *cfg, struct host_files *files, struct boot_plan *plan,
		     struct control_server **ctl)
{
	char err[512];
	int r;
	if ((r = host_files_open(files, cfg)))
		return r;
	cfg->files = files;
	if (!cfg->from_state) {
		if ((r = boot_plan_make(plan, cfg, err, sizeof(err)))) {
			fprintf(stderr, "ember: error: %s\n", err);
			return r;
		}
		cfg->boot = plan;
	}
	/* The control socket outlives guest restarts: clients stay connected. */
	if (cfg->api_socket && control_open(cfg->api_socket, ctl, err, sizeof(err))) {
		fprintf(stderr, "ember: error: %s\n", err);
		return EXIT_USAGE;
	}
	if ((r = host_files_open_kvm(files)))
		return r;
	if (cfg->jail && jail_enter(cfg->jail, cfg->uid, cfg->gid, err, sizeof(err))) {
		fprintf(stderr, "ember: error: %s\n", err);
		return EXIT_USAGE;
	}
	/* A VM built after the filters (a restart, the self-test's fresh VM)
	 * needs what building takes on the main thread. */
	bool rebuild = cfg->on_reboot == ON_REBOOT_RESTART || cfg->test_save_restore_ms;
	if (sandbox_setup(cfg->seccomp, rebuild ? SANDBOX_REBUILD : 0))
		return EXIT_VMM_ERROR;
	return 0;
}

/* The VMs of one `ember run`: the first, then one per guest restart or
 * self-test restore. Returns the exit code. */
static int run_vms(const struct vm_config *cfg, struct control_server *ctl)
{
	struct selftest st = { .ms = cfg->test_save_restore_ms, .timer_fd = -1 };
	bool restore_next = false, first = true;
	/* --restore/--incoming: the machine comes from the state; a guest reset
	 * with --on-reboot restart then boots the kernel it names afresh. */
	static struct vm_restore rs;
	int conn_fd = -1, r;
	for (;;) {
		struct vm vm;
		if (first && cfg->from_state) {
			r = cfg->restore ? snapshot_restore(cfg, &vm, &rs) : migrate_incoming(cfg, &vm, &rs, &conn_fd);
			if (r)
				return r;   /* nothing was created, or it is gone already */
		} else if (cfg->from_state) {
			rs.cfg.from_state = false;
			r = vm_create(&vm, &rs.cfg);
		} else {
			r = vm_create(&vm, cfg);
		}
		first = false;
		if (!r && restore_next) {
			restore_next = false;
			r = selftest_restore(&vm, &st);
		} else if (!r && st.ms && !st.fired && selftest_arm(&vm, &st)) {
			r = EXIT_VMM_ERROR;
		}
		if (!r && ctl && (r = control_attach(ctl, &vm))) {
			log_error("control socket: %s", strerror(-r));
			r = EXIT_VMM_ERROR;
		}
		if (r) {
			control_detach(ctl);
			vm_destroy(&vm);
			break;
		}
		migrate_incoming_resumed(conn_fd);
		conn_fd = -1;
		enum vm_stop_reason why = vm_run(&vm);
		control_detach(ctl);
		r = vm.exit_code;
		bool restart = why == STOP_RESET && cfg->on_reboot == ON_REBOOT_RESTART &&
			       !(cfg->from_state && !rs.kernel[0]);
		if (!restart && cfg->result_fd >= 0) {
			uint8_t code = (uint8_t)r;
			if (write(cfg->result_fd, &code, 1) != 1)
				log_warn("--result-fd: %s", strerror(errno));
			close(cfg->result_fd);
		}
		vm_destroy(&vm);
		if (st.fired && st.saved.len) {
			restore_next = true;   /* go on in a fresh VM from the saved state */
			continue;
		}
		if (restart) {
			log_info("guest reset: restarting");
			continue;
		}
		if (why == STOP_RESET)
			log_info("guest reset: exiting (--on-reboot exit)");
		break;
	}
	selftest_free(&st);
	return r;
}

static int cmd_run(int argc, char **argv)
{
	struct vm_config cfg;
	int r = config_parse_run(argc, argv, &cfg);
	if (r)
		return r == 1 ? 0 : r;
	struct host_files files;
	struct boot_plan plan = { 0 };
	struct control_server *ctl = NULL;
	r = run_setup(&cfg, &files, &plan, &ctl);
	if (!r)
		r = run_vms(&cfg, ctl);
	control_close(ctl);
	boot_plan_free(&plan);
	host_files_close(&files);
	return r;
}

int main(int argc, char **argv)
{
	ember_start_ns = now_ns();
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(cmd, "cpu"))
		return cmd_cpu(argc - 1, argv + 1);
	if (!strcmp(cmd, "test"))
		return cmd_test(argc - 1, argv + 1);
	if (!strcmp(cmd, "ctl"))
		return cmd_ctl(argc - 1, argv + 1);
	if (!strcmp(cmd, "seccomp"))
		return cmd_seccomp(argc - 1, argv + 1);
	if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
		printf("ember %s\n", EMBER_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "ember: error: unknown command '%s' (see ember --help)\n", cmd);
	return EXIT_USAGE;
}
