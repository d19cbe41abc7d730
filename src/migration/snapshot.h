/* Snapshots: `ember ctl SOCK snapshot DIR [diff=true]` pauses the VM and
 * writes DIR/state (the state stream: the machine, every device, every
 * vCPU, and a "memory" section with a checksum per 1 MiB of RAM) and
 * DIR/memory (guest RAM as a sparse file: zero pages and pages the balloon
 * gave back are holes). A diff snapshot holds only the pages dirtied since
 * the VM's previous snapshot (the dirty log stays on after a snapshot for
 * that) and names that one as its base.
 *
 * `ember run --restore DIR` creates the VM the state describes and resumes
 * it at once: guest RAM is a fresh memfd registered with userfaultfd, and a
 * loader thread fills it from the memory file(s), pages the guest touches
 * first, checking each chunk's checksum, then unregisters. After that the
 * VM is an ordinary one (snapshot and migration work as usual). */
#ifndef EMBER_MIGRATION_SNAPSHOT_H
#define EMBER_MIGRATION_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

struct vm;
struct vm_restore;

#define SNAPSHOT_CHUNK (1u << 20)

/* Control thread: write a snapshot on a thread; progress and the result are
 * "snapshot" events. 0, -EBUSY, or -errno with a message in err. */
int snapshot_start(struct vm *vm, const char *dir, bool diff, char *err, size_t errlen);
/* After vm_run returned: wait for a snapshot being written, stop the lazy
 * loader, free what snapshots kept. */
void snapshot_finish(struct vm *vm);
/* The dirty log is on for a later diff snapshot. */
bool snapshot_tracking(struct vm *vm);

/* --restore: read cfg->restore, create the VM into vm (rs holds its config)
 * and load it. 0, or an exit code with the reason printed. */
int snapshot_restore(const struct vm_config *cfg, struct vm *vm, struct vm_restore *rs);
/* Wait until a restored VM's RAM is all loaded (no-op otherwise). */
void restore_wait_loaded(struct vm *vm);

#endif
