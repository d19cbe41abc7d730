/* Live migration, pre-copy: the source copies guest RAM while the guest
 * runs, pass after pass of the pages dirtied meanwhile, until what is left
 * fits the downtime limit; then it pauses the VM, sends the rest and the
 * device and vCPU state, and the destination resumes. Transport: a TCP or
 * UNIX stream socket carrying the state stream (state.h) one way and small
 * replies the other way. Nothing is lost on failure: until the destination
 * has loaded and checked everything and the source has told it to go, the
 * source keeps (or resumes) its VM. docs/migration.md describes it all. */
#ifndef EMBER_MIGRATION_MIGRATE_H
#define EMBER_MIGRATION_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct vm;
struct vm_restore;

#define MIGRATE_DEFAULT_DOWNTIME_MS 50

/* tcp:HOST:PORT or unix:PATH. 0, or -EINVAL with "URI: why" in err. */
int migrate_uri_check(const char *uri, char *err, size_t errlen);

struct migrate_params {
	uint64_t downtime_ms;     /* the pause the guest may see (default 50) */
	uint64_t bandwidth_mbps;  /* MB/s the stream may use, 0 = unlimited */
};

/* Source: start migrating vm to uri on a thread of its own; progress and
 * the result are "migration" events on the control socket. On success the
 * VM stops with STOP_MIGRATED. 0, -EBUSY (one is running), or -errno with
 * a message in err. */
int migrate_start(struct vm *vm, const char *uri, const struct migrate_params *p, char *err, size_t errlen);
/* A migration thread is running. */
bool migrate_active(struct vm *vm);
/* After vm_run returned: stop a migration still running and wait for it. */
void migrate_finish(struct vm *vm);
/* A JSON-ready summary of the current/last migration for `status`
 * (NULL when none ran). */
struct json_object *migrate_status(struct vm *vm);

/* Destination: listen on cfg->incoming, take one connection, create the
 * VM the stream describes (into vm, with rs->cfg built from the stream and
 * cfg's own options) and load it, tell the source, and wait for its go.
 * Returns 0 with the VM ready to run (call migrate_incoming_resumed just
 * before vm_run), or an exit code with the reason printed. */
int migrate_incoming(const struct vm_config *cfg, struct vm *vm, struct vm_restore *rs, int *conn_fd);
/* Tell the source the VM runs (its downtime clock stops), close. */
void migrate_incoming_resumed(int conn_fd);

#endif
