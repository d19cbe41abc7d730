/* The balloon's control commands (balloon-set, balloon-stats), its part of
 * `status` and the balloon-stats event (docs/control-api.md). */
#include "control/internal.h"

#include <errno.h>
#include <string.h>

#include "config.h"
#include "devices/virtio/balloon.h"
#include "mem.h"

static json_object *u64(uint64_t v)
{
	return json_object_new_int64(v > INT64_MAX ? INT64_MAX : (int64_t)v);
}

static const char *reporting_mode(const struct vm *vm)
{
	const struct balloon_config *b = &vm->cfg->balloon;
	return !b->reporting ? "off" : b->reporting_free ? "free" : "dontneed";
}

/* Pages the record holds now, after dropping what the guest wrote again. */
static uint64_t discarded_now(struct vm *vm)
{
	discard_refresh(&vm->discard, &vm->mem);
	return discard_pages(&vm->discard) * DISCARD_PAGE;
}

json_object *balloon_status_json(struct vm *vm)
{
	if (!vm->balloon)
		return NULL;
	struct balloon_info i;
	balloon_get_info(vm->balloon, &i);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "target_bytes", u64(i.target_bytes));
	json_object_object_add(o, "actual_bytes", u64(i.actual_bytes));
	json_object_object_add(o, "free_page_reporting", json_object_new_string(reporting_mode(vm)));
	json_object_object_add(o, "discarded_bytes", u64(discarded_now(vm)));
	json_object_object_add(o, "reported_bytes", u64(i.reported_bytes));
	return o;
}

/* The whole picture; `now` adds what costs a syscall or two (the record's
 * refresh), which the event skips. */
static json_object *stats_json(struct vm *vm, const struct balloon_info *i, bool now)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "target_bytes", u64(i->target_bytes));
	json_object_object_add(o, "actual_bytes", u64(i->actual_bytes));
	json_object_object_add(o, "driver_ok", json_object_new_boolean(i->driver_ok));
	json_object *f = json_object_new_object();
	json_object_object_add(f, "stats", json_object_new_boolean(i->features >> VIRTIO_BALLOON_F_STATS_VQ & 1));
	json_object_object_add(f, "deflate_on_oom",
			       json_object_new_boolean(i->features >> VIRTIO_BALLOON_F_DEFLATE_ON_OOM & 1));
	json_object_object_add(f, "reporting", json_object_new_boolean(i->features >> VIRTIO_BALLOON_F_REPORTING & 1));
	json_object_object_add(f, "page_poison", json_object_new_boolean(i->poison));
	json_object_object_add(o, "features", f);
	if (i->poison)
		json_object_object_add(o, "poison_val", u64(i->poison_val));
	json_object_object_add(o, "free_page_reporting", json_object_new_string(reporting_mode(vm)));

	json_object *g = json_object_new_object();
	if (i->have_stats) {
		for (unsigned t = 0; t < BALLOON_STATS_MAX; t++)
			if (i->stats_mask >> t & 1)
				json_object_object_add(g, balloon_stat_name(t), u64(i->stat[t]));
		json_object_object_add(g, "age_ms", u64((now_ns() - i->stats_at_ns) / 1000000));
	}
	json_object_object_add(o, "guest", g);

	json_object *e = json_object_new_object();
	json_object_object_add(e, "reports", u64(i->reports));
	json_object_object_add(e, "reported_pages", u64(i->reported_bytes / BALLOON_PAGE));
	json_object_object_add(e, "reported_bytes", u64(i->reported_bytes));
	json_object_object_add(e, "inflated_pages", u64(i->inflated_pages));
	json_object_object_add(e, "deflated_pages", u64(i->deflated_pages));
	json_object_object_add(e, "discarded_bytes_total", u64(i->discarded_bytes));
	if (now)
		json_object_object_add(e, "discarded_bytes", u64(discarded_now(vm)));
	json_object_object_add(e, "kept_bytes", u64(i->kept_bytes));
	json_object_object_add(e, "refused", u64(i->refused));
	json_object_object_add(e, "discard_errors", u64(i->discard_errors));
	json_object_object_add(e, "discard_us", u64(i->discard_ns / 1000));
	json_object_object_add(e, "guest_memory_bytes", u64(vm->mem.size));
	json_object_object_add(e, "guest_memory_resident_bytes", u64(mem_resident(&vm->mem)));
	json_object_object_add(o, "ember", e);
	return o;
}

void control_balloon_event(struct vm *vm, const struct balloon_info *info)
{
	if (!vm->control)
		return;
	events_emit(vm->control, "balloon-stats", stats_json(vm, info, false));
}

static enum ctl_status no_balloon(struct ctl_reply *rep)
{
	return ctl_error(rep, CTL_ERR_STATE, "this VM has no balloon (ember run --balloon)");
}

enum ctl_status cmd_balloon_set(void *opaque, const struct ctl_request *req, struct ctl_reply *rep)
{
	struct ctl_ctx *ctx = opaque;
	struct vm *vm = ctx->vm;
	json_object *v;
	uint64_t bytes = 0;
	bool have_size = json_object_object_get_ex(req->args, "size", &v);
	if (have_size && parse_size(json_object_get_string(v), &bytes))
		return ctl_error(rep, CTL_ERR_ARGS, "size '%s' is not a size (e.g. 512M, 1G, 0)",
				 json_object_get_string(v));
	if (json_object_object_get_ex(req->args, "bytes", &v)) {
		if (have_size)
			return ctl_error(rep, CTL_ERR_ARGS, "give size or bytes, not both");
		bytes = (uint64_t)json_object_get_int64(v);
		have_size = true;
	}
	if (!have_size)
		return ctl_error(rep, CTL_ERR_ARGS, "missing argument 'size' (e.g. 512M) or 'bytes'");
	if (!vm->balloon)
		return no_balloon(rep);
	if (bytes > vm->mem.size)
		return ctl_error(rep, CTL_ERR_ARGS, "%llu MiB is more than the guest's %llu MiB of RAM",
				 (unsigned long long)(bytes >> 20), (unsigned long long)(vm->mem.size >> 20));
	int r = balloon_set_target(vm->balloon, bytes);
	if (r)
		return ctl_error(rep, CTL_ERR_INTERNAL, "balloon: %s", strerror(-r));
	struct balloon_info i;
	balloon_get_info(vm->balloon, &i);
	rep->result = json_object_new_object();
	json_object_object_add(rep->result, "target_bytes", u64(i.target_bytes));
	json_object_object_add(rep->result, "actual_bytes", u64(i.actual_bytes));
	return CTL_OK;
}

enum ctl_status cmd_balloon_stats(void *opaque, const struct ctl_request *req, struct ctl_reply *rep)
{
	struct ctl_ctx *ctx = opaque;
	struct vm *vm = ctx->vm;
	if (!vm->balloon)
		return no_balloon(rep);
	struct balloon_info i;
	balloon_get_info(vm->balloon, &i);
	rep->result = stats_json(vm, &i, true);
	/* Fresh guest figures for the next reply and the event. */
	json_object_object_add(rep->result, "refresh_requested",
			       json_object_new_boolean(balloon_request_stats(vm->balloon)));
	return CTL_OK;
}
