/* The registry of device state sections: a device joins it once at
 * creation with a name, an instance number, the section version it writes
 * and save/load callbacks; vm_save writes one section per entry and vm_load
 * hands each section to its entry, checking that every registered device
 * was loaded exactly once. Devices stay free of the stream format's
 * plumbing and of KVM (DESIGN rule 2). */
#ifndef EMBER_MIGRATION_DEVSTATE_H
#define EMBER_MIGRATION_DEVSTATE_H

#include <stdbool.h>
#include <stdint.h>

#include "migration/state.h"

struct devstate_ops {
	const char *name;        /* section name, 1-15 bytes, not a name vm_save uses itself */
	uint32_t version;        /* written; also the newest read */
	/* Put the device's fields (the section is open). The VM is paused. */
	int (*save)(void *opaque, struct state_writer *w);
	/* Read every field; r->version <= version. Fail with state_fail(). */
	int (*load)(void *opaque, struct state_reader *r);
	/* Optional: the VM was paused; finish in-flight work (push it to the
	 * guest, so it is in RAM before the last dirty pass) and start none
	 * until resume. */
	void (*quiesce)(void *opaque);
	/* Optional: the VM runs again; pick up what waited. */
	void (*resume)(void *opaque);
};

struct devstate_entry {
	const struct devstate_ops *ops;
	uint32_t instance;
	void *opaque;
	bool loaded;
};

struct devstate {
	struct devstate_entry *e;
	unsigned n, cap;
};

/* 0, -EEXIST for a name/instance already there, -ENOMEM. */
int devstate_register(struct devstate *ds, const struct devstate_ops *ops, uint32_t instance, void *opaque);
void devstate_free(struct devstate *ds);
/* One section per entry, in registration order. */
int devstate_save(struct devstate *ds, struct state_writer *w);
/* The entry for section r->name[r->instance]; -ENOENT (with r->msg) when
 * no device of that name exists, -EINVAL when loaded twice. */
int devstate_load(struct devstate *ds, struct state_reader *r);
/* Every entry's quiesce / resume hook, in registration order. */
void devstate_quiesce(struct devstate *ds);
void devstate_resume(struct devstate *ds);
/* Before a load / after: NULL, or the first entry not loaded. */
void devstate_reset_loaded(struct devstate *ds);
const struct devstate_entry *devstate_missing(const struct devstate *ds);

#endif
