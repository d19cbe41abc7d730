/* Save a whole VM into the state stream and load it into a freshly
 * created VM of the same shape: the interface snapshots and migration
 * use. The stream: "vm" (shape), "ram" chunks, "irqchip", "pit", one
 * "cpu" per vCPU, "clock", "end". Devices of Ember's own (serial, ACPI PM)
 * are not in it yet. */
#ifndef EMBER_MIGRATION_VMSAVE_H
#define EMBER_MIGRATION_VMSAVE_H

#include <stddef.h>

#include "migration/state.h"

struct vm;

#define VMSAVE_RAM_CHUNK (4u << 20)

/* The VM must be paused (vm_pause) or not started. Writes the whole
 * stream, "end" included. 0 or -errno (logged). */
int vm_save(struct vm *vm, struct state_writer *w);
/* Loads into a VM made by vm_create() that has not run. 0 or -errno with a
 * one-line message in err. */
int vm_load(struct vm *vm, struct state_source src, char *err, size_t errlen);

#endif
