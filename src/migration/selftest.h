/* The save/restore self-test behind the hidden `ember run
 * --test-save-restore-after MS`: pause the VM after MS ms, save it to
 * memory, let cmd_run destroy it and create a fresh VM (new KVM fds), load,
 * save again, compare the two saves field by field (SF_VOLATILE values,
 * the clocks and timer counts that run while paused, excepted), resume. */
#ifndef EMBER_MIGRATION_SELFTEST_H
#define EMBER_MIGRATION_SELFTEST_H

#include <stdbool.h>

#include "migration/state.h"

struct vm;

struct selftest {
	unsigned ms;
	bool fired;               /* the VM was paused, saved and stopped */
	struct state_buf saved;
	int timer_fd;
};

/* Arms the timer on vm's loop. 0 or -errno. */
int selftest_arm(struct vm *vm, struct selftest *st);
/* Loads the saved state into `fresh`, saves again and compares. 0, or an
 * exit code (EXIT_VMM_ERROR) with the reason logged. */
int selftest_restore(struct vm *fresh, struct selftest *st);
void selftest_free(struct selftest *st);

#endif
