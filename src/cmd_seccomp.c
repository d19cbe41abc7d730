#include "cmd_seccomp.h"

#include <stdio.h>
#include <string.h>

#include "config.h"
#include "sandbox/sandbox.h"

int cmd_seccomp(int argc, char **argv)
{
	unsigned flags = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--restart")) {
			flags |= SANDBOX_REBUILD;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			printf("usage: ember seccomp [--restart]\n"
			       "\n"
			       "Lists the system calls (and ioctl requests) each kind of Ember thread may\n"
			       "make while a guest runs. --restart: the main thread's list with\n"
			       "--on-reboot restart or the save/restore self-test, which build VMs after\n"
			       "the filters are in.\n");
			return 0;
		} else {
			fprintf(stderr, "ember: error: seccomp: unknown argument %s\n", argv[i]);
			return EXIT_USAGE;
		}
	}
	sandbox_print(stdout, flags);
	for (int k = 0; k < THREAD_KINDS; k++) {
		int n = sandbox_filter_insns((enum thread_kind)k, flags);
		if (n < 0) {
			fprintf(stderr, "ember: error: seccomp: the %s filter cannot be built: %s\n",
				sandbox_kind_name((enum thread_kind)k), strerror(-n));
			return EXIT_VMM_ERROR;
		}
		printf("%s%s: %d BPF instructions", k ? ", " : "filter sizes: ", sandbox_kind_name((enum thread_kind)k), n);
	}
	printf("\n");
	return 0;
}
