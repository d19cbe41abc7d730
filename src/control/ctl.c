/* `ember ctl SOCKET COMMAND [NAME=VALUE...]`: send one request, wait for
 * its reply (skipping events), print it for people or, with --json, as the
 * reply line itself. `ember ctl SOCKET watch` prints events instead. */
#include "control/ctl.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "control/protocol.h"

enum { CTL_EXIT_OK = 0, CTL_EXIT_REPLY_ERROR = 1, CTL_EXIT_USAGE = 2, CTL_EXIT_CONN = 3 };

#define DEFAULT_TIMEOUT_S 30
#define MAX_REPLY (64 * 1024 * 1024)

static void ctl_usage(FILE *f)
{
	fprintf(f, "usage: ember ctl [--json] [--timeout SECONDS] [--args JSON] SOCKET COMMAND [NAME=VALUE...]\n"
		   "       ember ctl [--json] SOCKET watch\n"
		   "       ember ctl [--json] SOCKET balloon set SIZE | balloon stats\n"
		   "\n"
		   "Sends COMMAND to the VM whose `ember run --api-socket SOCKET` is listening\n"
		   "and prints the reply. `ember ctl SOCKET help` lists the commands.\n"
		   "NAME=VALUE arguments: integers, true/false, anything else is a string;\n"
		   "--args takes a JSON object for exact types. `watch` prints events until the\n"
		   "VM goes away.\n"
		   "\n"
		   "  --json            print the reply (or each event) as the JSON line it came as\n"
		   "  --timeout S       give up after S seconds without a reply (default 30, plus\n"
		   "                    the shutdown timeout for shutdown; 0 waits forever)\n"
		   "\n"
		   "Exit status: 0 success, 1 the VM answered with an error, 2 bad usage,\n"
		   "3 no connection or no reply. See docs/control-api.md.\n");
}

static int usage_fail(const char *fmt, const char *arg)
{
	fprintf(stderr, "ember: error: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (see ember ctl --help)\n");
	return CTL_EXIT_USAGE;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* NAME=VALUE -> args[NAME]: an integer, true/false, or a string. */
static int add_arg(json_object *args, const char *spec)
{
	const char *eq = strchr(spec, '=');
	if (!eq || eq == spec)
		return usage_fail("argument '%s' is not NAME=VALUE", spec);
	char *name = strndup(spec, (size_t)(eq - spec));
	const char *val = eq + 1;
	json_object *v;
	char *end;
	errno = 0;
	long long n = strtoll(val, &end, 10);
	if (*val && !*end && !errno)
		v = json_object_new_int64(n);
	else if (!strcmp(val, "true") || !strcmp(val, "false"))
		v = json_object_new_boolean(!strcmp(val, "true"));
	else
		v = json_object_new_string(val);
	json_object_object_add(args, name, v);
	free(name);
	return 0;
}

static int connect_socket(const char *path, int timeout_s)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "ember: error: %s: path too long for a UNIX socket\n", path);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path));
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "ember: error: socket: %s\n", strerror(errno));
		return -1;
	}
	/* connect() on a full backlog and a blocked send both honour this. */
	struct timeval tv = { .tv_sec = timeout_s };
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "ember: error: %s: %s%s\n", path, strerror(errno),
			errno == ENOENT || errno == ECONNREFUSED ? " (is `ember run --api-socket` running?)" : "");
		close(fd);
		return -1;
	}
	return fd;
}

static int send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads lines; calls on_line(line, len, opaque) for each until it returns
 * nonzero (its value is returned), the peer closes (0) or the deadline
 * passes (-ETIMEDOUT). deadline_ms 0 = none. */
struct reader {
	int fd;
	char *buf;
	size_t len, cap;
};

static int read_line(struct reader *r, uint64_t deadline_ms, char **line, size_t *len)
{
	for (;;) {
		char *nl = r->len ? memchr(r->buf, '\n', r->len) : NULL;
		if (nl) {
			*line = r->buf;
			*len = (size_t)(nl - r->buf);
			return 1;
		}
		if (r->len == r->cap) {
			if (r->cap >= MAX_REPLY)
				return -EMSGSIZE;
			size_t cap = r->cap ? r->cap * 2 : 65536;
			char *p = realloc(r->buf, cap);
			if (!p)
				return -ENOMEM;
			r->buf = p;
			r->cap = cap;
		}
		int wait = -1;
		if (deadline_ms) {
			uint64_t now = mono_ms();
			if (now >= deadline_ms)
				return -ETIMEDOUT;
			wait = (int)(deadline_ms - now);
		}
		struct pollfd p = { .fd = r->fd, .events = POLLIN };
		int pr = poll(&p, 1, wait);
		if (pr < 0 && errno != EINTR)
			return -errno;
		if (pr <= 0)
			continue;
		ssize_t n = recv(r->fd, r->buf + r->len, r->cap - r->len, 0);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		if (n == 0)
			return 0;
		r->len += (size_t)n;
	}
}

/* Drop the line read_line returned. */
static void consume_line(struct reader *r, size_t len)
{
	memmove(r->buf, r->buf + len + 1, r->len - len - 1);
	r->len -= len + 1;
}

/* ---- human-readable output ------------------------------------------------ */

static json_object *get(json_object *o, const char *key)
{
	json_object *v = NULL;
	json_object_object_get_ex(o, key, &v);
	return v;
}

static const char *get_str(json_object *o, const char *key)
{
	json_object *v = get(o, key);
	return v ? json_object_get_string(v) : "?";
}

static int64_t get_int(json_object *o, const char *key)
{
	json_object *v = get(o, key);
	return v ? json_object_get_int64(v) : 0;
}

static void print_status(json_object *r)
{
	printf("state:    %s", get_str(r, "state"));
	if (get(r, "stop_reason"))
		printf(" (%s)", get_str(r, "stop_reason"));
	printf("\n");
	printf("uptime:   %.3f s\n", (double)get_int(r, "uptime_ms") / 1000.0);
	printf("vcpus:    %" PRId64 "\n", get_int(r, "vcpus"));
	printf("memory:   %" PRId64 " MiB%s\n", get_int(r, "memory_bytes") >> 20,
	       json_object_get_boolean(get(r, "memory_thp")) ? " (transparent huge pages)" : "");
	printf("backend:  %s\n", get_str(r, "backend"));
	printf("kernel:   %s\n", get_str(r, "kernel"));
	printf("pid:      %" PRId64 "\n", get_int(r, "pid"));
	json_object *devs = get(r, "devices");
	size_t n = devs && json_object_is_type(devs, json_type_array) ? json_object_array_length(devs) : 0;
	printf("devices:\n");
	for (size_t i = 0; i < n; i++) {
		json_object *d = json_object_array_get_idx(devs, i);
		int64_t base = get_int(d, "base"), size = get_int(d, "size");
		printf("  %-12s %-4s 0x%" PRIx64 "-0x%" PRIx64 "\n", get_str(d, "name"), get_str(d, "bus"),
		       (uint64_t)base, (uint64_t)(base + size - 1));
	}
	if (json_object_get_boolean(get(r, "shutdown_pending")))
		printf("shutdown: pending (power button pressed)\n");
	if (get(r, "memory_resident_bytes"))
		printf("resident: %" PRId64 " MiB of guest RAM held by the host\n", get_int(r, "memory_resident_bytes") >> 20);
	json_object *b = get(r, "balloon");
	if (b)
		printf("balloon:  %" PRId64 " MiB (target %" PRId64 " MiB), reporting %s, %" PRId64 " MiB discarded now, %" PRId64 " MiB reported in all\n",
		       get_int(b, "actual_bytes") >> 20, get_int(b, "target_bytes") >> 20, get_str(b, "free_page_reporting"),
		       get_int(b, "discarded_bytes") >> 20, get_int(b, "reported_bytes") >> 20);
}

static void print_balloon_set(json_object *r)
{
	printf("balloon target: %" PRId64 " MiB (now %" PRId64 " MiB; the guest gets there on its own time)\n",
	       get_int(r, "target_bytes") >> 20, get_int(r, "actual_bytes") >> 20);
}

static void print_balloon_stats(json_object *r)
{
	printf("balloon:   %" PRId64 " MiB, target %" PRId64 " MiB%s\n", get_int(r, "actual_bytes") >> 20,
	       get_int(r, "target_bytes") >> 20, json_object_get_boolean(get(r, "driver_ok")) ? "" : " (no driver yet)");
	json_object *f = get(r, "features");
	printf("features: ");
	if (f && json_object_is_type(f, json_type_object)) {
		json_object_object_foreach(f, key, val)
			printf(" %s=%s", key, json_object_get_boolean(val) ? "yes" : "no");
	}
	printf("\nreporting: %s\n", get_str(r, "free_page_reporting"));
	json_object *g = get(r, "guest");
	printf("guest:    ");
	if (g && json_object_object_length(g)) {
		json_object_object_foreach(g, key, val)
			printf(" %s=%" PRId64, key, json_object_get_int64(val));
	} else {
		printf(" no statistics yet");
	}
	printf("\n");
	json_object *e = get(r, "ember");
	printf("ember:     %" PRId64 " reports, %" PRId64 " pages reported, %" PRId64 " pages inflated, %" PRId64 " deflated\n",
	       get_int(e, "reports"), get_int(e, "reported_pages"), get_int(e, "inflated_pages"), get_int(e, "deflated_pages"));
	printf("           %" PRId64 " MiB discarded now, %" PRId64 " MiB in all (%" PRId64 " ms), %" PRId64 " MiB kept (poison), %" PRId64 " refused\n",
	       get_int(e, "discarded_bytes") >> 20, get_int(e, "discarded_bytes_total") >> 20, get_int(e, "discard_us") / 1000,
	       get_int(e, "kept_bytes") >> 20, get_int(e, "refused"));
	printf("host:      %" PRId64 " of %" PRId64 " MiB of guest RAM resident\n",
	       get_int(e, "guest_memory_resident_bytes") >> 20, get_int(e, "guest_memory_bytes") >> 20);
}

static void print_stats(json_object *r)
{
	json_object *cpus = get(r, "vcpus");
	size_t n = cpus && json_object_is_type(cpus, json_type_array) ? json_object_array_length(cpus) : 0;
	for (size_t i = 0; i < n; i++) {
		json_object *c = json_object_array_get_idx(cpus, i);
		printf("vcpu%" PRId64 ": %" PRId64 " exits", get_int(c, "index"), get_int(c, "exits_total"));
		json_object *ex = get(c, "exits");
		const char *sep = ": ";
		if (ex && json_object_is_type(ex, json_type_object)) {
			json_object_object_foreach(ex, key, val) {
				printf("%s%s %" PRId64, sep, key, json_object_get_int64(val));
				sep = ", ";
			}
		}
		printf("\n");
	}
	json_object *serial = get(get(r, "devices"), "serial");
	if (serial)
		printf("serial: %" PRId64 " bytes sent\n", get_int(serial, "tx_bytes"));
	json_object *buses = get(r, "buses");
	if (buses && json_object_is_type(buses, json_type_object)) {
		json_object_object_foreach(buses, key, val) {
			printf("%s: %" PRId64 " unhandled reads, %" PRId64 " unhandled writes\n", key,
			       get_int(val, "unhandled_reads"), get_int(val, "unhandled_writes"));
		}
	}
	json_object *ctl = get(r, "control");
	if (ctl)
		printf("control: %" PRId64 " clients, %" PRId64 " events dropped\n", get_int(ctl, "clients"),
		       get_int(ctl, "events_dropped"));
}

static void print_help(json_object *r)
{
	json_object *cmds = get(r, "commands");
	size_t n = cmds && json_object_is_type(cmds, json_type_array) ? json_object_array_length(cmds) : 0;
	printf("commands:\n");
	for (size_t i = 0; i < n; i++) {
		json_object *c = json_object_array_get_idx(cmds, i);
		printf("  %-10s %s\n", get_str(c, "name"), get_str(c, "summary"));
		json_object *args = get(c, "args");
		size_t na = args && json_object_is_type(args, json_type_array) ? json_object_array_length(args) : 0;
		for (size_t j = 0; j < na; j++) {
			json_object *a = json_object_array_get_idx(args, j);
			printf("  %10s %s=%s%s: %s\n", "", get_str(a, "name"), get_str(a, "type"),
			       json_object_get_boolean(get(a, "required")) ? " (required)" : "", get_str(a, "help"));
		}
	}
	printf("  %-10s %s\n", "watch", "(ember ctl only) print events until the VM goes away");
}

static void print_shutdown(json_object *r)
{
	if (json_object_get_boolean(get(r, "forced")))
		printf("the guest did not power off in time: Ember stopped the VM\n");
	else
		printf("the VM stopped: %s (exit code %" PRId64 ")\n", get_str(r, "stop_reason"),
		       get_int(r, "exit_code"));
}

static void print_state(json_object *r)
{
	printf("%s\n", get_str(r, "state"));
}

static void print_started(json_object *r)
{
	printf("%s: %s\n", get_str(r, "status"), get(r, "path") ? get_str(r, "path") : get_str(r, "uri"));
}

static double get_dbl(json_object *o, const char *key)
{
	json_object *v = get(o, key);
	return v ? json_object_get_double(v) : 0;
}

/* One progress line per "migration" event. */
static void print_migration(json_object *e)
{
	const char *st = get_str(e, "status");
	if (!strcmp(st, "active")) {
		printf("pass %" PRId64 ": sent %.1f MiB, remaining %.1f MiB, dirty rate %.1f MB/s, "
		       "expected downtime %.1f ms%s\n", get_int(e, "pass"), (double)get_int(e, "bytes_sent") / 1048576.0,
		       (double)get_int(e, "remaining_bytes") / 1048576.0, get_dbl(e, "dirty_rate_mbps"),
		       get_dbl(e, "expected_downtime_ms"), get_dbl(e, "throttle_mbps") > 0 ? " (throttled)" : "");
	} else if (!strcmp(st, "completed")) {
		printf("completed: %" PRId64 " passes, %.1f MiB sent, %.1f ms total, downtime %.2f ms (%s)\n",
		       get_int(e, "pass"), (double)get_int(e, "bytes_sent") / 1048576.0, get_dbl(e, "elapsed_ms"),
		       get_dbl(e, "downtime_ms"), get_str(e, "backend"));
	} else {
		fprintf(stderr, "ember: error: migration failed: %s\n", get_str(e, "error"));
	}
	fflush(stdout);
}

static void print_snapshot(json_object *e)
{
	if (!strcmp(get_str(e, "status"), "completed"))
		printf("snapshot %s%s: %.1f MiB written, paused %.1f ms, %.1f ms total\n", get_str(e, "path"),
		       json_object_get_boolean(get(e, "diff")) ? " (diff)" : "",
		       (double)get_int(e, "bytes_written") / 1048576.0, get_dbl(e, "paused_ms"), get_dbl(e, "total_ms"));
	else
		fprintf(stderr, "ember: error: snapshot %s failed: %s\n", get_str(e, "path"), get_str(e, "error"));
}

static const struct {
	const char *command;
	void (*print)(json_object *result);
} printers[] = {
	{ "snapshot", print_started },
	{ "migrate", print_started },
	{ "status", print_status },
	{ "stats", print_stats },
	{ "help", print_help },
	{ "shutdown", print_shutdown },
	{ "pause", print_state },
	{ "resume", print_state },
	{ "quit", print_state },
	{ "balloon-set", print_balloon_set },
	{ "balloon-stats", print_balloon_stats },
};

static void print_result(const char *command, json_object *result)
{
	for (size_t i = 0; i < sizeof(printers) / sizeof(printers[0]); i++) {
		if (!strcmp(printers[i].command, command)) {
			printers[i].print(result);
			return;
		}
	}
	printf("%s\n", json_object_to_json_string_ext(result, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
}

static void print_event(json_object *ev)
{
	printf("%s", get_str(ev, "event"));
	json_object_object_foreach(ev, key, val) {
		if (strcmp(key, "event"))
			printf(" %s=%s", key, json_object_get_string(val));
	}
	printf("\n");
}

/* ---- the command ------------------------------------------------------------ */

static json_object *parse_line(const char *line, size_t len)
{
	json_tokener *tok = json_tokener_new();
	json_object *o = tok ? json_tokener_parse_ex(tok, line, (int)len) : NULL;
	if (tok && !o && json_tokener_get_error(tok) == json_tokener_continue)
		o = json_tokener_parse_ex(tok, "", 1);
	json_tokener_free(tok);
	if (o && !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		o = NULL;
	}
	return o;
}

static int watch(struct reader *rd, bool as_json)
{
	for (;;) {
		char *line;
		size_t len;
		int r = read_line(rd, 0, &line, &len);
		if (r == 0)
			return CTL_EXIT_OK;
		if (r < 0) {
			fprintf(stderr, "ember: error: reading events: %s\n", strerror(-r));
			return CTL_EXIT_CONN;
		}
		json_object *o = parse_line(line, len);
		if (o && get(o, "event")) {
			if (as_json)
				printf("%.*s\n", (int)len, line);
			else
				print_event(o);
			fflush(stdout);
		}
		json_object_put(o);
		consume_line(rd, len);
	}
}

/* snapshot and migrate reply when the work starts; their end is an
 * event. Print the events of that kind until it ends. */
static int follow(struct reader *rd, const char *event, bool as_json)
{
	for (;;) {
		char *line;
		size_t len;
		int r = read_line(rd, 0, &line, &len);
		if (r <= 0) {
			fprintf(stderr, "ember: error: the VM closed the connection before the %s ended\n", event);
			return CTL_EXIT_CONN;
		}
		json_object *o = parse_line(line, len);
		int ret = -1;
		if (o && !strcmp(get_str(o, "event"), event)) {
			const char *st = get_str(o, "status");
			if (as_json)
				printf("%.*s\n", (int)len, line);
			else if (!strcmp(event, "migration"))
				print_migration(o);
			else
				print_snapshot(o);
			fflush(stdout);
			if (!strcmp(st, "completed"))
				ret = CTL_EXIT_OK;
			else if (!strcmp(st, "failed"))
				ret = CTL_EXIT_REPLY_ERROR;
		}
		json_object_put(o);
		consume_line(rd, len);
		if (ret >= 0)
			return ret;
	}
}

/* Wait for the reply to request id 1 and print it. */
static int await_reply(struct reader *rd, const char *command, bool as_json, uint64_t deadline_ms)
{
	for (;;) {
		char *line;
		size_t len;
		int r = read_line(rd, deadline_ms, &line, &len);
		if (r == 0) {
			fprintf(stderr, "ember: error: the VM closed the connection before replying\n");
			return CTL_EXIT_CONN;
		}
		if (r < 0) {
			fprintf(stderr, "ember: error: no reply: %s\n", strerror(-r));
			return CTL_EXIT_CONN;
		}
		json_object *o = parse_line(line, len);
		if (!o) {
			fprintf(stderr, "ember: error: the reply is not a JSON object\n");
			return CTL_EXIT_CONN;
		}
		json_object *id = get(o, "id");
		/* Events and, on a shared id space, nothing else come first. */
		if (get(o, "event") || !(id == NULL || json_object_is_type(id, json_type_null) ||
					  json_object_get_int64(id) == 1)) {
			json_object_put(o);
			consume_line(rd, len);
			continue;
		}
		int ret;
		bool ok = json_object_get_boolean(get(o, "ok"));
		if (as_json)
			printf("%.*s\n", (int)len, line);
		if (ok) {
			if (!as_json)
				print_result(command, get(o, "result"));
			ret = CTL_EXIT_OK;
		} else {
			json_object *e = get(o, "error");
			if (!as_json)
				fprintf(stderr, "ember: error: %s: %s [%s]\n", command, get_str(e, "message"),
					get_str(e, "code"));
			ret = CTL_EXIT_REPLY_ERROR;
		}
		json_object_put(o);
		consume_line(rd, len);
		if (ret == CTL_EXIT_OK && !strcmp(command, "migrate"))
			ret = follow(rd, "migration", as_json);
		else if (ret == CTL_EXIT_OK && !strcmp(command, "snapshot"))
			ret = follow(rd, "snapshot", as_json);
		return ret;
	}
}

enum { OPT_JSON = 0x100, OPT_TIMEOUT, OPT_ARGS };

static const struct option ctl_options[] = {
	{ "json", no_argument, NULL, OPT_JSON },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "args", required_argument, NULL, OPT_ARGS },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

int cmd_ctl(int argc, char **argv)
{
	bool as_json = false, timeout_given = false;
	unsigned timeout_s = DEFAULT_TIMEOUT_S;
	const char *args_json = NULL;
	optind = 1;
	opterr = 0;
	int c;
	/* '+': options come before SOCKET; NAME=VALUE may look like anything. */
	while ((c = getopt_long(argc, argv, "+:h", ctl_options, NULL)) != -1) {
		switch (c) {
		case OPT_JSON: as_json = true; break;
		case OPT_TIMEOUT:
			if (parse_uint(optarg, 0, 86400 * 7, &timeout_s))
				return usage_fail("--timeout %s: must be a number of seconds", optarg);
			timeout_given = true;
			break;
		case OPT_ARGS: args_json = optarg; break;
		case 'h': ctl_usage(stdout); return CTL_EXIT_OK;
		case ':': return usage_fail("%s needs a value", argv[optind - 1]);
		default: return usage_fail("unknown option %s", argv[optind - 1]);
		}
	}
	if (argc - optind < 2) {
		ctl_usage(stderr);
		return CTL_EXIT_USAGE;
	}
	const char *path = argv[optind], *command = argv[optind + 1];
	bool watching = !strcmp(command, "watch");
	int first_arg = optind + 2;
	const char *positional_size = NULL;
	/* `balloon set SIZE` and `balloon stats` are balloon-set/balloon-stats. */
	if (!strcmp(command, "balloon")) {
		const char *sub = optind + 2 < argc ? argv[optind + 2] : "";
		if (!strcmp(sub, "set") && optind + 3 < argc && !strchr(argv[optind + 3], '=')) {
			command = "balloon-set";
			positional_size = argv[optind + 3];
			first_arg = optind + 4;
		} else if (!strcmp(sub, "stats")) {
			command = "balloon-stats";
			first_arg = optind + 3;
		} else {
			return usage_fail("balloon %s: use 'balloon set SIZE' or 'balloon stats'", sub);
		}
	}

	json_object *args = NULL;
	if (args_json) {
		args = parse_line(args_json, strlen(args_json));
		if (!args)
			return usage_fail("--args %s: not a JSON object", args_json);
	} else {
		args = json_object_new_object();
	}
	/* `snapshot DIR`, `migrate URI --downtime-limit MS --bandwidth MBPS`:
	 * a positional argument and --name VALUE options become NAME=VALUE. */
	const char *positional = !strcmp(command, "snapshot") ? "path" : !strcmp(command, "migrate") ? "uri" : NULL;
	if (positional_size)
		json_object_object_add(args, "size", json_object_new_string(positional_size));
	for (int i = first_arg; i < argc; i++) {
		int bad = watching;
		if (!bad && !strncmp(argv[i], "--", 2) && argv[i][2]) {
			char spec[512];
			size_t k = 0;
			for (const char *p = argv[i] + 2; *p && *p != '=' && k < 200; p++)
				spec[k++] = *p == '-' ? '_' : *p;
			spec[k] = '\0';
			const char *eq = strchr(argv[i], '=');
			if (eq)
				snprintf(spec + k, sizeof(spec) - k, "%s", eq);
			else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2))
				snprintf(spec + k, sizeof(spec) - k, "=%s", argv[++i]);
			else
				snprintf(spec + k, sizeof(spec) - k, "=true");
			bad = add_arg(args, spec);
		} else if (!bad && positional && !strchr(argv[i], '=')) {
			json_object_object_add(args, positional, json_object_new_string(argv[i]));
			positional = NULL;
		} else if (!bad) {
			bad = add_arg(args, argv[i]);
		}
		if (bad) {
			json_object_put(args);
			return watching ? usage_fail("watch takes no arguments, got '%s'", argv[i]) : CTL_EXIT_USAGE;
		}
	}
	/* shutdown's own timeout must fit in ours. */
	json_object *t;
	if (!strcmp(command, "shutdown") && !timeout_given && timeout_s) {
		int64_t st = json_object_object_get_ex(args, "timeout", &t) ? json_object_get_int64(t) : 10;
		if (st > 0 && st < 86400)
			timeout_s += (unsigned)st;
	}

	int fd = connect_socket(path, timeout_s ? (int)timeout_s : 0);
	if (fd < 0) {
		json_object_put(args);
		return CTL_EXIT_CONN;
	}
	struct reader rd = { .fd = fd };
	int ret;
	if (watching) {
		json_object_put(args);
		ret = watch(&rd, as_json);
	} else {
		json_object *req = json_object_new_object();
		json_object_object_add(req, "id", json_object_new_int(1));
		json_object_object_add(req, "command", json_object_new_string(command));
		if (json_object_object_length(args))
			json_object_object_add(req, "args", args);
		else
			json_object_put(args);
		size_t len;
		const char *text = protocol_text(req, &len);
		char *line = malloc(len + 1);
		int r = line ? 0 : -ENOMEM;
		if (line) {
			memcpy(line, text, len);
			line[len] = '\n';
			r = send_all(fd, line, len + 1);
			free(line);
		}
		json_object_put(req);
		if (r) {
			fprintf(stderr, "ember: error: %s: sending the request: %s\n", path, strerror(-r));
			ret = CTL_EXIT_CONN;
		} else {
			ret = await_reply(&rd, command, as_json, timeout_s ? mono_ms() + timeout_s * 1000ULL : 0);
		}
	}
	free(rd.buf);
	close(fd);
	return ret;
}
