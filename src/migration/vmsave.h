/* Save a whole VM into the state stream and load it back: the interface
 * the save/restore self-test, snapshots and live migration share.
 *
 * Stream order: "vm" (the machine: vCPUs, RAM size and layout, CPU model,
 * device options, the balloon's options), guest RAM as "ram" chunks
 * (self-test), "pages" batches (migration, with "sync" marks the
 * destination acknowledges) or one "memory" section naming a memory file
 * (snapshots),
 * "irqchip", "pit", one section per registered device (devstate.h), one
 * "cpu" per vCPU, "clock", "end". */
#ifndef EMBER_MIGRATION_VMSAVE_H
#define EMBER_MIGRATION_VMSAVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "migration/state.h"

struct vm;

#define VMSAVE_RAM_CHUNK (4u << 20)
#define VMSAVE_PAGES_MAX 256u   /* pages in one "pages" section */

/* The VM must be paused (vm_pause) or not started. Writes the whole
 * stream, "end" included, RAM as "ram" chunks. 0 or -errno (logged). */
int vm_save(struct vm *vm, struct state_writer *w);
/* The "vm" section alone. */
int vm_save_shape(struct vm *vm, struct state_writer *w);
/* Everything after RAM: irqchip, PIT, devices, vCPUs, clock ("end" not
 * included). The VM must be paused. */
int vm_save_state(struct vm *vm, struct state_writer *w);
/* One "pages" section: n pages (RAM page numbers) read from guest RAM now
 * through buf (VMSAVE_PAGES_MAX * 4096 bytes); all-zero pages go as a flag
 * without data and are counted in *zero_pages. A page number with
 * VMSAVE_PAGE_HOLE set is a hole in the memfd (balloon-discarded or never
 * written): sent as a zero page without reading it (reading a hole
 * allocates it). */
#define VMSAVE_PAGE_HOLE (1ull << 62)
int vm_save_pages(struct vm *vm, struct state_writer *w, const uint64_t *pages, unsigned n,
		  uint8_t *buf, uint64_t *zero_pages);
/* An empty "sync" section: the destination answers once it has loaded
 * everything before it. */
int vm_save_sync(struct state_writer *w);

/* Loading, with hooks for a VM that does not exist yet. */
struct vm_restore {
	struct vm *vm;              /* loaded into; NULL: create() makes it after "vm" */
	/* from_state: the machine described by the "vm" section; create()
	 * makes rs->vm from it (0, or an exit code with the reason printed). */
	struct vm_config cfg;
	int (*create)(struct vm_restore *rs);
	/* A "sync" section (migration): answer that everything before it is
	 * loaded. NULL: the section is refused. */
	int (*sync)(struct vm_restore *rs);
	int sync_fd;
	/* The "memory" section of a snapshot (snapshot.c). */
	int (*memory)(struct vm_restore *rs, struct state_reader *r);
	void *opaque;
	/* For vm_restore_create: the VM object to create and the command
	 * line's own options (API socket, dirty tracking, result fd). */
	struct vm *target;
	const struct vm_config *cmdline;
	int create_status;          /* vm_create's exit code */
	uint64_t create_ns, pit_wait_ns;   /* time in vm_create, waiting for the PIT */
	uint64_t pages_loaded;      /* "pages" loaded (migration progress) */
	/* internal: what has been loaded, in order */
	bool vm_seen, ram_seen, irqchip, pit, clock;
	unsigned cpus;
	uint64_t ram_next;
	uint32_t ram_chunks;
	char spec[128], kernel[256], cmdline_str[1024];
};

/* Read a stream into rs (stream: stop after "end", e.g. on a socket).
 * 0, or -errno with a one-line message in err; -ECANCELED when create()
 * failed (its message was printed; rs->cfg.result_fd unused). */
int vm_restore_load(struct vm_restore *rs, struct state_source src, bool stream, char *err, size_t errlen);
/* A create() hook: vm_create(rs->target) with the stream's machine and
 * the command line's own options. */
int vm_restore_create(struct vm_restore *rs);
/* Loads into a VM made by vm_create() that has not run. 0 or -errno with a
 * one-line message in err. */
int vm_load(struct vm *vm, struct state_source src, char *err, size_t errlen);

#endif
