/* libFuzzer target: the control protocol's request parser and dispatch.
 * The input is a stream of request lines, as a client would send them; the
 * real command table is used with handlers that check every request they
 * get obeys its command's argument declarations. Each reply must be one line
 * of JSON that parses back to an object with the reply members. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/internal.h"
#include "control/protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, "check failed: %s\n", #cond); abort(); } } while (0)

static struct ctl_command *table;

static const struct ctl_arg *spec(const struct ctl_command *c, const char *name)
{
	for (const struct ctl_arg *a = c->args; a && a->name; a++)
		if (!strcmp(a->name, name))
			return a;
	return NULL;
}

static enum ctl_status checking_handler(void *ctx, const struct ctl_request *req, struct ctl_reply *rep)
{
	CHECK(req->cmd && req->id && req->args);
	CHECK(json_object_is_type(req->id, json_type_int) || json_object_is_type(req->id, json_type_string));
	CHECK(json_object_is_type(req->args, json_type_object));
	json_object_object_foreach(req->args, key, val) {
		const struct ctl_arg *a = spec(req->cmd, key);
		CHECK(a);
		switch (a->type) {
		case CTL_ARG_INT:
			CHECK(json_object_is_type(val, json_type_int));
			CHECK(json_object_get_int64(val) >= a->min && json_object_get_int64(val) <= a->max);
			break;
		case CTL_ARG_BOOL:
			CHECK(json_object_is_type(val, json_type_boolean));
			break;
		case CTL_ARG_STRING:
			CHECK(json_object_is_type(val, json_type_string));
			break;
		}
	}
	for (const struct ctl_arg *a = req->cmd->args; a && a->name; a++)
		CHECK(!a->required || json_object_object_get_ex(req->args, a->name, NULL));
	/* Take every way out a real handler can. */
	switch (json_object_object_length(req->args) % 3) {
	case 0:
		rep->result = json_object_get(req->args);
		return CTL_OK;
	case 1:
		return ctl_error(rep, CTL_ERR_STATE, "fuzz %s", req->cmd->name);
	default: {
		/* A deferred reply built later from the kept id. */
		json_object *id = json_object_get(req->id);
		json_object *late = protocol_ok(id, NULL);
		json_object_put(id);
		json_object_put(late);
		return CTL_DEFERRED;
	}
	}
}

static void setup(void)
{
	size_t n = 0;
	while (control_commands[n].name)
		n++;
	table = calloc(n + 1, sizeof(*table));
	if (!table)
		abort();
	for (size_t i = 0; i < n; i++) {
		table[i] = control_commands[i];
		table[i].handler = checking_handler;
	}
}

static void check_reply(json_object *r)
{
	size_t len;
	const char *text = protocol_text(r, &len);
	CHECK(text && len > 0);
	CHECK(!memchr(text, '\n', len));
	json_object *back = json_tokener_parse(text);
	CHECK(back && json_object_is_type(back, json_type_object));
	json_object *ok, *id;
	CHECK(json_object_object_get_ex(back, "ok", &ok) && json_object_is_type(ok, json_type_boolean));
	CHECK(json_object_object_get_ex(back, "id", &id));
	if (json_object_get_boolean(ok)) {
		CHECK(json_object_object_get_ex(back, "result", NULL));
	} else {
		json_object *e, *code, *msg;
		CHECK(json_object_object_get_ex(back, "error", &e));
		CHECK(json_object_object_get_ex(e, "code", &code) && json_object_is_type(code, json_type_string));
		CHECK(json_object_object_get_ex(e, "message", &msg) && json_object_is_type(msg, json_type_string));
	}
	json_object_put(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!table)
		setup();
	const char *p = (const char *)data, *end = p + size;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		json_object *r = protocol_handle(table, p, len, NULL);
		if (r) {
			check_reply(r);
			json_object_put(r);
		}
		p += len + (nl ? 1 : 0);
	}
	return 0;
}
