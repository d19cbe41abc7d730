/* Device state sections: registration, saving, dispatch on load. */
#include "migration/devstate.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int devstate_register(struct devstate *ds, const struct devstate_ops *ops, uint32_t instance, void *opaque)
{
	if (!ops->name[0] || strlen(ops->name) >= STATE_NAME_MAX || !ops->version)
		return -EINVAL;
	for (unsigned i = 0; i < ds->n; i++)
		if (!strcmp(ds->e[i].ops->name, ops->name) && ds->e[i].instance == instance)
			return -EEXIST;
	if (ds->n == ds->cap) {
		unsigned cap = ds->cap ? ds->cap * 2 : 8;
		struct devstate_entry *e = realloc(ds->e, cap * sizeof(*e));
		if (!e)
			return -ENOMEM;
		ds->e = e;
		ds->cap = cap;
	}
	ds->e[ds->n++] = (struct devstate_entry){ .ops = ops, .instance = instance, .opaque = opaque };
	return 0;
}

void devstate_free(struct devstate *ds)
{
	free(ds->e);
	memset(ds, 0, sizeof(*ds));
}

int devstate_save(struct devstate *ds, struct state_writer *w)
{
	for (unsigned i = 0; i < ds->n; i++) {
		const struct devstate_entry *e = &ds->e[i];
		int r = state_begin_section(w, e->ops->name, e->instance, e->ops->version);
		if (!r)
			r = e->ops->save(e->opaque, w);
		if (!r)
			r = state_end_section(w);
		if (r)
			return r;
	}
	return 0;
}

int devstate_load(struct devstate *ds, struct state_reader *r)
{
	for (unsigned i = 0; i < ds->n; i++) {
		struct devstate_entry *e = &ds->e[i];
		if (strcmp(e->ops->name, r->name) || e->instance != r->instance)
			continue;
		if (e->loaded)
			return state_fail(r, "loaded twice");
		if (r->version == 0 || r->version > e->ops->version)
			return state_fail(r, "version %u: this Ember reads up to %u", r->version, e->ops->version);
		int err = e->ops->load(e->opaque, r);
		if (!err)
			e->loaded = true;
		return err;
	}
	state_fail(r, "no such device in this VM (unknown section)");
	return -ENOENT;
}

void devstate_reset_loaded(struct devstate *ds)
{
	for (unsigned i = 0; i < ds->n; i++)
		ds->e[i].loaded = false;
}

const struct devstate_entry *devstate_missing(const struct devstate *ds)
{
	for (unsigned i = 0; i < ds->n; i++)
		if (!ds->e[i].loaded)
			return &ds->e[i];
	return NULL;
}

void devstate_quiesce(struct devstate *ds)
{
	for (unsigned i = 0; i < ds->n; i++)
		if (ds->e[i].ops->quiesce)
			ds->e[i].ops->quiesce(ds->e[i].opaque);
}

void devstate_resume(struct devstate *ds)
{
	for (unsigned i = 0; i < ds->n; i++)
		if (ds->e[i].ops->resume)
			ds->e[i].ops->resume(ds->e[i].opaque);
}
