/* The control commands: one table entry and one handler each. Handlers run
 * on the loop thread and must not block for long (vm_pause waits for the
 * vCPUs to park, which is bounded). */
#include "control/internal.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "devices/acpi_pm.h"
#include "devices/serial.h"
#include "log.h"
#include "migration/migrate.h"
#include "migration/snapshot.h"
#include "vcpu.h"
#include "version.h"
#include "vm.h"

#define SHUTDOWN_DEFAULT_TIMEOUT 10   /* seconds */
#define MAX_LISTED_RANGES        256

static const char *state_name(enum vm_state s)
{
	switch (s) {
	case VM_CREATED: return "created";
	case VM_RUNNING: return "running";
	case VM_PAUSED: return "paused";
	case VM_STOPPING: return "stopping";
	}
	return "unknown";
}

static const char *stop_reason_name(enum vm_stop_reason r)
{
	switch (r) {
	case STOP_NONE: return "none";
	case STOP_POWEROFF: return "poweroff";
	case STOP_RESET: return "reset";
	case STOP_DEBUG_EXIT: return "debug-exit";
	case STOP_CRASH: return "crash";
	case STOP_QUIT: return "quit";
	case STOP_ERROR: return "error";
	case STOP_MIGRATED: return "migrated";
	}
	return "unknown";
}

/* Names for KVM_EXIT_* (include/uapi/linux/kvm.h), as stats shows them. */
static const char *const exit_names[VCPU_EXIT_REASONS] = {
	[KVM_EXIT_UNKNOWN] = "unknown",
	[KVM_EXIT_EXCEPTION] = "exception",
	[KVM_EXIT_IO] = "io",
	[KVM_EXIT_HYPERCALL] = "hypercall",
	[KVM_EXIT_DEBUG] = "debug",
	[KVM_EXIT_HLT] = "hlt",
	[KVM_EXIT_MMIO] = "mmio",
	[KVM_EXIT_IRQ_WINDOW_OPEN] = "irq_window_open",
	[KVM_EXIT_SHUTDOWN] = "shutdown",
	[KVM_EXIT_FAIL_ENTRY] = "fail_entry",
	[KVM_EXIT_INTR] = "intr",
	[KVM_EXIT_SET_TPR] = "set_tpr",
	[KVM_EXIT_TPR_ACCESS] = "tpr_access",
	[KVM_EXIT_NMI] = "nmi",
	[KVM_EXIT_INTERNAL_ERROR] = "internal_error",
	[KVM_EXIT_WATCHDOG] = "watchdog",
	[KVM_EXIT_EPR] = "epr",
	[KVM_EXIT_SYSTEM_EVENT] = "system_event",
	[KVM_EXIT_IOAPIC_EOI] = "ioapic_eoi",
	[KVM_EXIT_HYPERV] = "hyperv",
	[KVM_EXIT_X86_RDMSR] = "x86_rdmsr",
	[KVM_EXIT_X86_WRMSR] = "x86_wrmsr",
	[KVM_EXIT_DIRTY_RING_FULL] = "dirty_ring_full",
	[KVM_EXIT_AP_RESET_HOLD] = "ap_reset_hold",
	[KVM_EXIT_X86_BUS_LOCK] = "x86_bus_lock",
	[KVM_EXIT_XEN] = "xen",
	[KVM_EXIT_NOTIFY] = "notify",
};

static json_object *uptime_ms(const struct vm *vm)
{
	return json_object_new_int64((int64_t)((now_ns() - vm->start_ns) / 1000000));
}

static enum vm_state vm_state_now(struct vm *vm)
{
	return __atomic_load_n(&vm->state, __ATOMIC_SEQ_CST);
}

static json_object *json_u64(uint64_t v)
{
	return json_object_new_int64(v > INT64_MAX ? INT64_MAX : (int64_t)v);
}

/* ---- events ---------------------------------------------------------------- */

void control_state_event(struct vm *vm, enum vm_state state)
{
	if (!vm->control)
		return;
	json_object *d = json_object_new_object();
	json_object_object_add(d, "state", json_object_new_string(state_name(state)));
	if (state == VM_STOPPING) {
		json_object_object_add(d, "reason", json_object_new_string(stop_reason_name(vm->stop_reason)));
		json_object_object_add(d, "exit_code", json_object_new_int(vm->exit_code));
	}
	json_object_object_add(d, "uptime_ms", uptime_ms(vm));
	events_emit(vm->control, "state", d);
}

/* ---- status ---------------------------------------------------------------- */

static void add_ranges(json_object *list, struct bus *b)
{
	struct bus_range r[MAX_LISTED_RANGES];
	size_t n = bus_list(b, r, MAX_LISTED_RANGES);
	for (size_t i = 0; i < n && i < MAX_LISTED_RANGES; i++) {
		json_object *d = json_object_new_object();
		json_object_object_add(d, "name", json_object_new_string(r[i].name ? r[i].name : "?"));
		json_object_object_add(d, "bus", json_object_new_string(b->name));
		json_object_object_add(d, "base", json_u64(r[i].base));
		json_object_object_add(d, "size", json_u64(r[i].len));
		json_object_array_add(list, d);
	}
}

static enum ctl_status cmd_status(void *opaque, const struct ctl_request *req, struct ctl_reply *rep)
{
	struct ctl_ctx *ctx = opaque;
	struct vm *vm = ctx->vm;
	json_object *o = json_object_new_object();
	enum vm_state st = vm_state_now(vm);
	json_object_object_add(o, "state", json_object_new_string(state_name(st)));
	if (st == VM_STOPPING)
		json_object_object_add(o, "stop_reason", json_object_new_string(stop_reason_name(vm->stop_reason)));
	json_object_object_add(o, "uptime_ms", uptime_ms(vm));
	json_object_object_add(o, "vcpus", json_object_new_int((int)vm->ncpus));
	json_object_object_add(o, "memory_bytes", json_u64(vm->mem.size));
	/* What the host holds for guest RAM now (the memfd's blocks). */
	json_object_object_add(o, "memory_resident_bytes", json_u64(mem_resident(&vm->mem)));
	/* Guest RAM advised for transparent huge pages (the host allows them). */
	json_object_object_add(o, "memory_thp", json_object_new_boolean(vm->mem.thp));
	json_object *balloon = balloon_status_json(vm);
	if (balloon)
		json_object_object_add(o, "balloon", balloon);
	json_object_object_add(o, "backend", json_object_new_string(vm->backend ? vm->backend : "unknown"));
	json_object_object_add(o, "kernel", json_object_new_string(vm->cfg->kernel));
	json_object *devs = json_object_new_array();
	add_ranges(devs, &vm->pio);
	add_ranges(devs, &vm->mmio);
	json_object_object_add(o, "devices", devs);
	json_object_object_add(o, "shutdown_pending", json_object_new_boolean(ctx->srv->shutdowns != NULL));
	json_object *mig = migrate_status(vm);
	if (mig)
		json_object_object_add(o, "migration", mig);
	json_object_object_add(o, "dirty_tracking", json_object_new_string(dirty_backend_name(vm->dirty.backend)));
	json_object_object_add(o, "pid", json_object_new_int((int)getpid()));
	json_object_object_add(o, "version", json_object_new_string(EMBER_VERSION));
	rep->result = o;
	return CTL_OK;
}

/* ---- pause, resume, quit ----------------------------------------------------- */

static enum ctl_status state_result(struct vm *vm, struct ctl_reply *rep)
{
	rep->result = json_object_new_object();
	json_object_object_add(rep->result, "state", json_object_new_string(state_name(vm_state_now(vm))));
	return CTL_OK;
}

/* pause and resume: vm_pause/vm_resume, then the state they left. */
static enum ctl_status change_state(struct vm *vm, int (*fn)(struct vm *), const char *what,
				    struct ctl_reply *rep)
{
	int r = fn(vm);
	if (r == -ESHUTDOWN)
		return ctl_error(rep, CTL_ERR_STATE, "the VM is stopping");
	if (r == -EBUSY)
		return ctl_error(rep, CTL_ERR_STATE, "the guest is in S3 (suspend to RAM): only its wake event resumes it");
	if (r)
		return ctl_error(rep, CTL_ERR_INTERNAL, "%s: %s", what, strerror(-r));
	return state_result(vm, rep);
}

static enum ctl_status cmd_pause(void *opaque, const struct ctl_request *req, struct ctl_reply *rep)
{
	return change_state(((struct ctl_ctx *)opaque)->vm, vm_pause, "pause", rep);
}

static enum ctl_status cmd_resume(void *opaque, const struct ctl_request *req, struct ctl_reply *rep)
{
	return change_state(((struct ctl_ctx *)opaque)->vm, vm_resume, "resume", rep);
}

static enum ctl_status cmd_quit(void *opaque, const struct ctl_request *req, struct ctl_reply *rep)
{
	struct ctl_ctx *ctx = opaque;
	log_info("control: quit requested");
	vm_stop(ctx->vm, STOP_QUIT, EXIT_GUEST_OFF);
	return state_result(ctx->vm, rep);
}

/* ---- shutdown ----------------------------------------------------------------- */

static void on_shutdown_timer(void *opaque, uint32_t events)
{
	struct control_server *srv = opaque;
	uint64_t n;
	if (read(srv->shutdown_timer, &n, sizeof(n)) < 0)
		return;
	if (vm_state_now(srv->vm) == VM_STOPPING)
		return;
	log_warn("control: the guest did not power off in time; stopping it");
	srv->shutdown_forced = true;
	json_object *d = json_object_new_object();
	json_object_object_add(d, "forced", json_object_new_boolean(1));
	events_emit(srv, "shutdown-timeout", d);
	vm_stop(srv->vm, STOP_QUIT, EXIT_GUEST_OFF);
}

int shutdown_arm(struct control_server *srv, uint64_t timeout_ns)
{
	uint64_t deadline = now_ns() + timeout_ns;
	if (srv->shutdown_timer < 0) {
		int fd = loop_add_timer(&srv->vm->loop, timeout_ns, 0, on_shutdown_timer, srv);
		if (fd < 0)
			return fd;
		srv->shutdown_timer = fd;
		srv->shutdown_deadline = deadline;
	} else if (deadline < srv->shutdown_deadline) {
		/* A shorter timeout than the pending one wins. */
		struct itimerspec its = {
			.it_value = { (time_t)(timeout_ns / 1000000000ULL), (long)(timeout_ns % 1000000000ULL) },
		};
		if (!timeout_ns)
			its.it_value.tv_nsec = 1;
		if (timerfd_settime(srv->shutdown_timer, 0, &its, NULL) < 0)
			return -errno;
		srv->shutdown_deadline = deadline;
	}
	return 0;
}

void shutdown_finish(struct control_server *srv)
{
	struct vm *vm = srv->vm;
	while (srv->shutdowns) {
		struct shutdown_wait *w = srv->shutdowns;
		srv->shutdowns = w->next;
		if (w->client) {
			json_object *o = json_object_new_object();
			json_object_object_add(o, "forced", json_object_new_boolean(srv->shutdown_forced));
			json_object_object_add(o, "stop_reason",
					       json_object_new_string(stop_reason_name(vm->stop_reason)));
			json_object_object_add(o, "exit_code", json_object_new_int(vm->exit_code));
			client_send(w->client, protocol_ok(w->id, o));
		}
		json_object_put(w->id);
		free(w);
	}
	if (srv->shutdown_timer >= 0) {
		loop_remove(&vm->loop, srv->shutdown_timer);
		close(srv->shutdown_timer);
		srv->shutdown_timer = -1;
	}
	srv->shutdown_forced = false;
}

static const struct ctl_arg shutdown_args[] = {
	{ "timeout", CTL_ARG_INT, false, 0, 86400,
	  "seconds the guest has to power off before Ember stops it (default 10)" },
	{ 0 },
};

/* Press the ACPI power button; reply when the VM has stopped, by the
 * guest's hand or, after the timeout, by Ember's. */
static enum ctl_status cmd_shutdown(void *opaque, const struct ctl_request *req, struct ctl_reply *rep)
{
	struct ctl_ctx *ctx = opaque;
	struct control_server *srv = ctx->srv;
	json_object *t;
	int64_t timeout = SHUTDOWN_DEFAULT_TIMEOUT;
	if (json_object_object_get_ex(req->args, "timeout", &t))
		timeout = json_object_get_int64(t);
	enum vm_state st = vm_state_now(ctx->vm);
	if (st == VM_PAUSED)
		return ctl_error(rep, CTL_ERR_STATE, "the VM is paused: resume it so the guest can shut down, or quit");
	struct shutdown_wait *w = calloc(1, sizeof(*w));
	if (!w)
		return ctl_error(rep, CTL_ERR_INTERNAL, "out of memory");
	if (st != VM_STOPPING) {
		int r = shutdown_arm(srv, (uint64_t)timeout * 1000000000ULL);
		if (r) {
			free(w);
			return ctl_error(rep, CTL_ERR_INTERNAL, "shutdown timer: %s", strerror(-r));
		}
		log_info("control: pressing the ACPI power button (timeout %lld s)", (long long)timeout);
		acpi_pm_press_power_button(ctx->vm->pm);
	}
	w->client = ctx->client;
	w->id = json_object_get(req->id);
	w->next = srv->shutdowns;
	srv->shutdowns = w;
	return CTL_DEFERRED;
}

/* ---- stats ------------------------------------------------------------------ */

static json_object *bus_stats(struct bus *b)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "unhandled_reads", json_u64(__atomic_load_n(&b->unhandled_reads, __ATOMIC_RELAXED)));
	json_object_object_add(o, "unhandled_writes", json_u64(__atomic_load_n(&b->unhandled_writes, __ATOMIC_RELAXED)));
	return o;
}

static enum ctl_status cmd_stats(void *opaque, const struct ctl_request *req, struct ctl_reply *rep)
{
	struct ctl_ctx *ctx = opaque;
	struct vm *vm = ctx->vm;
	json_object *o = json_object_new_object();
	json_object *cpus = json_object_new_array();
	for (unsigned i = 0; i < vm->ncpus; i++) {
		const struct vcpu *v = vm->vcpus[i];
		json_object *c = json_object_new_object();
		json_object *exits = json_object_new_object();
		uint64_t total = 0;
		for (unsigned r = 0; r < VCPU_EXIT_REASONS; r++) {
			uint64_t n = __atomic_load_n(&v->exits[r], __ATOMIC_RELAXED);
			if (!n)
				continue;
			total += n;
			char unknown[24];
			const char *name = exit_names[r];
			if (!name) {
				snprintf(unknown, sizeof(unknown), "reason_%u", r);
				name = unknown;
			}
			json_object_object_add(exits, name, json_u64(n));
		}
		json_object_object_add(c, "index", json_object_new_int((int)i));
		json_object_object_add(c, "exits", exits);
		json_object_object_add(c, "exits_total", json_u64(total));
		json_object_array_add(cpus, c);
	}
	json_object_object_add(o, "vcpus", cpus);
	json_object *devs = json_object_new_object();
	json_object *serial = json_object_new_object();
	json_object_object_add(serial, "tx_bytes", json_u64(serial_tx_bytes(vm->serial)));
	json_object_object_add(devs, "serial", serial);
	json_object_object_add(o, "devices", devs);
	json_object *buses = json_object_new_object();
	json_object_object_add(buses, "pio", bus_stats(&vm->pio));
	json_object_object_add(buses, "mmio", bus_stats(&vm->mmio));
	json_object_object_add(o, "buses", buses);
	json_object *ctl = json_object_new_object();
	json_object_object_add(ctl, "clients", json_object_new_int((int)ctx->srv->nclients));
	pthread_mutex_lock(&ctx->srv->ev_lock);
	unsigned dropped = ctx->srv->ev_dropped;
	pthread_mutex_unlock(&ctx->srv->ev_lock);
	json_object_object_add(ctl, "events_dropped", json_object_new_int64(dropped));
	json_object_object_add(o, "control", ctl);
	json_object_object_add(o, "uptime_ms", uptime_ms(vm));
	rep->result = o;
	return CTL_OK;
}

/* ---- snapshot, migrate ------------------------------------------------------------ */

static const struct ctl_arg snapshot_args[] = {
	{ "path", CTL_ARG_STRING, true, 1, 4000, "directory to write the snapshot to (state + memory files)" },
	{ "diff", CTL_ARG_BOOL, false, 0, 0,
	  "only the pages changed since this VM's previous snapshot, which becomes its base" },
	{ 0 },
};

/* The work runs on a thread; the reply says it started, a "snapshot"
 * event says how it ended (ember ctl waits for it). */
static enum ctl_status cmd_snapshot(void *opaque, const struct ctl_request *req, struct ctl_reply *rep)
{
	struct ctl_ctx *ctx = opaque;
	json_object *a;
	bool diff = json_object_object_get_ex(req->args, "diff", &a) && json_object_get_boolean(a);
	json_object_object_get_ex(req->args, "path", &a);
	const char *path = json_object_get_string(a);
	if (vm_state_now(ctx->vm) == VM_STOPPING)
		return ctl_error(rep, CTL_ERR_STATE, "the VM is stopping");
	if (migrate_active(ctx->vm))
		return ctl_error(rep, CTL_ERR_STATE, "a migration is running");
	char err[256];
	int r = snapshot_start(ctx->vm, path, diff, err, sizeof(err));
	if (r)
		return ctl_error(rep, r == -EBUSY ? CTL_ERR_STATE : CTL_ERR_INTERNAL, "%s", err);
	rep->result = json_object_new_object();
	json_object_object_add(rep->result, "status", json_object_new_string("started"));
	json_object_object_add(rep->result, "path", json_object_new_string(path));
	return CTL_OK;
}

static const struct ctl_arg migrate_args[] = {
	{ "uri", CTL_ARG_STRING, true, 1, 300, "tcp:HOST:PORT or unix:PATH of `ember run --incoming`" },
	{ "downtime_limit", CTL_ARG_INT, false, 1, 600000, "longest pause the guest may see, ms (default 50)" },
	{ "bandwidth", CTL_ARG_INT, false, 0, 1000000, "MB/s the migration may use (default 0: unlimited)" },
	{ 0 },
};

/* Runs on the migration thread; "migration" events report each pass and
 * the end (ember ctl prints a progress line from them). */
static enum ctl_status cmd_migrate(void *opaque, const struct ctl_request *req, struct ctl_reply *rep)
{
	struct ctl_ctx *ctx = opaque;
	json_object *a;
	struct migrate_params p = { .downtime_ms = MIGRATE_DEFAULT_DOWNTIME_MS };
	if (json_object_object_get_ex(req->args, "downtime_limit", &a))
		p.downtime_ms = (uint64_t)json_object_get_int64(a);
	if (json_object_object_get_ex(req->args, "bandwidth", &a))
		p.bandwidth_mbps = (uint64_t)json_object_get_int64(a);
	json_object_object_get_ex(req->args, "uri", &a);
	const char *uri = json_object_get_string(a);
	enum vm_state st = vm_state_now(ctx->vm);
	if (st != VM_RUNNING && st != VM_PAUSED)
		return ctl_error(rep, CTL_ERR_STATE, "the VM is %s", state_name(st));
	char err[300];
	int r = migrate_start(ctx->vm, uri, &p, err, sizeof(err));
	if (r)
		return ctl_error(rep, r == -EBUSY ? CTL_ERR_STATE : r == -EINVAL ? CTL_ERR_ARGS : CTL_ERR_INTERNAL,
				 "%s", err);
	rep->result = json_object_new_object();
	json_object_object_add(rep->result, "status", json_object_new_string("started"));
	json_object_object_add(rep->result, "uri", json_object_new_string(uri));
	return CTL_OK;
}

/* ---- help --------------------------------------------------------------------- */

static const char *arg_type_name(enum ctl_arg_type t)
{
	return t == CTL_ARG_INT ? "integer" : t == CTL_ARG_BOOL ? "boolean" : "string";
}

static enum ctl_status cmd_help(void *opaque, const struct ctl_request *req, struct ctl_reply *rep)
{
	json_object *list = json_object_new_array();
	for (const struct ctl_command *c = control_commands; c->name; c++) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "name", json_object_new_string(c->name));
		json_object_object_add(o, "summary", json_object_new_string(c->summary));
		json_object *args = json_object_new_array();
		for (const struct ctl_arg *a = c->args; a && a->name; a++) {
			json_object *ao = json_object_new_object();
			json_object_object_add(ao, "name", json_object_new_string(a->name));
			json_object_object_add(ao, "type", json_object_new_string(arg_type_name(a->type)));
			json_object_object_add(ao, "required", json_object_new_boolean(a->required));
			json_object_object_add(ao, "help", json_object_new_string(a->help ? a->help : ""));
			json_object_array_add(args, ao);
		}
		json_object_object_add(o, "args", args);
		json_object_array_add(list, o);
	}
	rep->result = json_object_new_object();
	json_object_object_add(rep->result, "commands", list);
	return CTL_OK;
}

static const struct ctl_arg balloon_set_args[] = {
	{ "size", CTL_ARG_STRING, false, 1, 32, "the balloon's new size, e.g. 512M, 1G or 0 (ember ctl SOCK balloon set SIZE)" },
	{ "bytes", CTL_ARG_INT, false, 0, INT64_MAX, "the same in bytes" },
	{ 0 },
};

const struct ctl_command control_commands[] = {
	{ "help", "list the commands and their arguments", NULL, cmd_help },
	{ "status", "state, uptime, vCPUs, memory, devices, KVM backend", NULL, cmd_status },
	{ "pause", "stop running the vCPUs (the guest's clocks keep going)", NULL, cmd_pause },
	{ "resume", "run the vCPUs again", NULL, cmd_resume },
	{ "shutdown", "press the ACPI power button; stop the VM if the guest has not powered off after the timeout",
	  shutdown_args, cmd_shutdown },
	{ "quit", "stop the VM now", NULL, cmd_quit },
	{ "stats", "vCPU exits by reason, device and bus counters", NULL, cmd_stats },
	{ "balloon-set", "ask the guest for a balloon of this size (ember ctl SOCK balloon set SIZE)",
	  balloon_set_args, cmd_balloon_set },
	{ "balloon-stats", "balloon size, the guest's memory statistics, pages reported, bytes discarded, host memory of guest RAM",
	  NULL, cmd_balloon_stats },
	{ "snapshot", "pause, save the VM to a directory (state + memory), resume", snapshot_args, cmd_snapshot },
	{ "migrate", "live-migrate the VM to `ember run --incoming URI`", migrate_args, cmd_migrate },
	{ 0 },
};
