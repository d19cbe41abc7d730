/* Control protocol: request parsing and validation, dispatch through a
 * command table, reply and event objects. No I/O here. */
#include "control/protocol.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum ctl_status ctl_error(struct ctl_reply *rep, const char *code, const char *fmt, ...)
{
	va_list ap;
	rep->code = code;
	va_start(ap, fmt);
	vsnprintf(rep->message, sizeof(rep->message), fmt, ap);
	va_end(ap);
	return CTL_ERROR;
}

void protocol_quote(char *buf, size_t size, const char *s, size_t len, size_t max)
{
	size_t n = 0;
	if (!size)
		return;
	for (size_t i = 0; i < len && i < max && n + 1 < size; i++) {
		unsigned char c = (unsigned char)s[i];
		buf[n++] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '?';
	}
	if (len > max && n + 4 < size) {
		memcpy(buf + n, "...", 3);
		n += 3;
	}
	buf[n] = '\0';
}

const struct ctl_command *protocol_find(const struct ctl_command *table, const char *name, size_t len)
{
	for (const struct ctl_command *c = table; c->name; c++)
		if (strlen(c->name) == len && !memcmp(c->name, name, len))
			return c;
	return NULL;
}

static const char *type_name(enum ctl_arg_type t)
{
	switch (t) {
	case CTL_ARG_INT: return "an integer";
	case CTL_ARG_BOOL: return "a boolean";
	case CTL_ARG_STRING: return "a string";
	}
	return "?";
}

static const struct ctl_arg *find_arg(const struct ctl_arg *args, const char *name)
{
	for (const struct ctl_arg *a = args; a && a->name; a++)
		if (!strcmp(a->name, name))
			return a;
	return NULL;
}

/* One argument against its declaration. */
static int check_arg(const struct ctl_arg *a, json_object *v, struct ctl_reply *err)
{
	switch (a->type) {
	case CTL_ARG_INT: {
		if (!json_object_is_type(v, json_type_int))
			break;
		/* Values above INT64_MAX come back clamped, so still out of range. */
		int64_t x = json_object_get_int64(v);
		if (x < a->min || x > a->max) {
			ctl_error(err, CTL_ERR_ARGS, "argument '%s' must be from %lld to %lld", a->name,
				  (long long)a->min, (long long)a->max);
			return -1;
		}
		return 0;
	}
	case CTL_ARG_BOOL:
		if (!json_object_is_type(v, json_type_boolean))
			break;
		return 0;
	case CTL_ARG_STRING: {
		if (!json_object_is_type(v, json_type_string))
			break;
		int64_t n = json_object_get_string_len(v);
		if (n < a->min || n > a->max || memchr(json_object_get_string(v), '\0', (size_t)n)) {
			ctl_error(err, CTL_ERR_ARGS, "argument '%s' must be a string of %lld to %lld bytes without NUL",
				  a->name, (long long)a->min, (long long)a->max);
			return -1;
		}
		return 0;
	}
	}
	ctl_error(err, CTL_ERR_ARGS, "argument '%s' must be %s", a->name, type_name(a->type));
	return -1;
}

static int check_args(const struct ctl_command *cmd, json_object *args, struct ctl_reply *err)
{
	char q[80];
	json_object_object_foreach(args, key, val) {
		const struct ctl_arg *a = find_arg(cmd->args, key);
		if (!a) {
			protocol_quote(q, sizeof(q), key, strlen(key), CTL_MAX_NAME_LEN);
			ctl_error(err, CTL_ERR_ARGS, "command '%s' takes no argument '%s'", cmd->name, q);
			return -1;
		}
		if (check_arg(a, val, err))
			return -1;
	}
	for (const struct ctl_arg *a = cmd->args; a && a->name; a++) {
		if (a->required && !json_object_object_get_ex(args, a->name, NULL)) {
			ctl_error(err, CTL_ERR_ARGS, "command '%s' needs argument '%s'", cmd->name, a->name);
			return -1;
		}
	}
	return 0;
}

static bool valid_id(json_object *id)
{
	if (json_object_is_type(id, json_type_int))
		return true;
	if (json_object_is_type(id, json_type_string)) {
		int n = json_object_get_string_len(id);
		return n <= CTL_MAX_ID_LEN;
	}
	return false;
}

/* Parse text into one JSON value; strict (RFC 8259, valid UTF-8, nothing
 * after the value but whitespace). */
static json_object *parse_json(const char *line, size_t len, struct ctl_reply *err)
{
	if (memchr(line, '\0', len)) {
		ctl_error(err, CTL_ERR_PARSE, "NUL byte in request");
		return NULL;
	}
	json_tokener *tok = json_tokener_new_ex(CTL_MAX_DEPTH);
	if (!tok) {
		ctl_error(err, CTL_ERR_INTERNAL, "out of memory");
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	json_object *o = json_tokener_parse_ex(tok, line, (int)len);
	enum json_tokener_error e = json_tokener_get_error(tok);
	if (e == json_tokener_continue) {
		/* End of input: lets a bare number finish, fails the unclosed. */
		o = json_tokener_parse_ex(tok, "", 1);
		e = json_tokener_get_error(tok);
	} else if (e == json_tokener_success && json_tokener_get_parse_end(tok) < len) {
		/* Strict mode stops at the value's end; only whitespace may follow. */
		for (size_t i = json_tokener_get_parse_end(tok); i < len; i++) {
			if (!strchr(" \t\r", line[i])) {
				e = json_tokener_error_parse_unexpected;
				break;
			}
		}
	}
	if (e == json_tokener_success && !o) {
		/* json-c's representation of a JSON null. */
		ctl_error(err, CTL_ERR_INVALID, "a request is a JSON object");
	} else if (e != json_tokener_success) {
		ctl_error(err, CTL_ERR_PARSE, "not valid JSON: %s", json_tokener_error_desc(e));
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

int protocol_parse(const struct ctl_command *table, const char *line, size_t len,
		   struct ctl_request *req, struct ctl_reply *err, json_object **id_out)
{
	char q[80];
	json_object *id = NULL, *cmd = NULL, *args = NULL;
	bool has_args = false;   /* "args": null is there, and wrong */
	memset(req, 0, sizeof(*req));
	*id_out = NULL;
	if (len > CTL_MAX_LINE) {
		ctl_error(err, CTL_ERR_TOO_LONG, "request longer than %d bytes", CTL_MAX_LINE);
		return -1;
	}
	json_object *root = parse_json(line, len, err);
	if (!root)
		return -1;
	if (!json_object_is_type(root, json_type_object)) {
		ctl_error(err, CTL_ERR_INVALID, "a request is a JSON object");
		goto fail;
	}
	json_object_object_foreach(root, key, val) {
		if (!strcmp(key, "id")) {
			id = val;
		} else if (!strcmp(key, "command")) {
			cmd = val;
		} else if (!strcmp(key, "args")) {
			args = val;
			has_args = true;
		} else {
			protocol_quote(q, sizeof(q), key, strlen(key), CTL_MAX_NAME_LEN);
			ctl_error(err, CTL_ERR_INVALID, "unknown request member '%s' (expected id, command, args)", q);
			goto fail;
		}
	}
	if (!id) {
		ctl_error(err, CTL_ERR_INVALID, "request has no 'id'");
		goto fail;
	}
	if (!valid_id(id)) {
		ctl_error(err, CTL_ERR_INVALID, "'id' must be an integer or a string of at most %d bytes",
			  CTL_MAX_ID_LEN);
		goto fail;
	}
	if (!cmd || !json_object_is_type(cmd, json_type_string)) {
		ctl_error(err, CTL_ERR_INVALID, "request needs 'command' (a string)");
		goto fail;
	}
	const char *name = json_object_get_string(cmd);
	size_t name_len = (size_t)json_object_get_string_len(cmd);
	req->cmd = protocol_find(table, name, name_len);
	if (!req->cmd) {
		protocol_quote(q, sizeof(q), name, name_len, CTL_MAX_NAME_LEN);
		ctl_error(err, CTL_ERR_UNKNOWN, "unknown command '%s' (try 'help')", q);
		goto fail;
	}
	if (!has_args) {
		args = json_object_new_object();
		if (!args || json_object_object_add(root, "args", args)) {
			json_object_put(args);
			ctl_error(err, CTL_ERR_INTERNAL, "out of memory");
			goto fail;
		}
	} else if (!json_object_is_type(args, json_type_object)) {
		ctl_error(err, CTL_ERR_ARGS, "'args' must be an object");
		goto fail;
	}
	if (check_args(req->cmd, args, err))
		goto fail;
	req->root = root;
	req->id = id;
	req->args = args;
	return 0;
fail:
	/* An error reply names the request it answers when it can. */
	if (json_object_is_type(root, json_type_object) &&
	    json_object_object_get_ex(root, "id", &id) && valid_id(id))
		*id_out = json_object_get(id);
	req->cmd = NULL;
	json_object_put(root);
	return -1;
}

void protocol_request_free(struct ctl_request *req)
{
	json_object_put(req->root);
	memset(req, 0, sizeof(*req));
}

static bool blank(const char *line, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!strchr(" \t\r", line[i]))
			return false;
	return true;
}

json_object *protocol_handle(const struct ctl_command *table, const char *line, size_t len, void *ctx)
{
	struct ctl_request req;
	struct ctl_reply rep = { 0 };
	json_object *id = NULL, *out;
	if (blank(line, len))
		return NULL;
	if (protocol_parse(table, line, len, &req, &rep, &id)) {
		out = protocol_error(id, rep.code, rep.message);
		json_object_put(id);
		return out;
	}
	switch (req.cmd->handler(ctx, &req, &rep)) {
	case CTL_OK:
		out = protocol_ok(req.id, rep.result);
		break;
	case CTL_DEFERRED:
		json_object_put(rep.result);
		out = NULL;
		break;
	case CTL_ERROR:
	default:
		json_object_put(rep.result);
		out = protocol_error(req.id, rep.code ? rep.code : CTL_ERR_INTERNAL, rep.message);
		break;
	}
	protocol_request_free(&req);
	return out;
}

json_object *protocol_ok(json_object *id, json_object *result)
{
	json_object *o = json_object_new_object();
	if (!result)
		result = json_object_new_object();
	json_object_object_add(o, "id", json_object_get(id));
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	json_object_object_add(o, "result", result);
	return o;
}

json_object *protocol_error(json_object *id, const char *code, const char *message)
{
	json_object *o = json_object_new_object();
	json_object *e = json_object_new_object();
	json_object_object_add(e, "code", json_object_new_string(code));
	json_object_object_add(e, "message", json_object_new_string(message));
	json_object_object_add(o, "id", json_object_get(id));
	json_object_object_add(o, "ok", json_object_new_boolean(0));
	json_object_object_add(o, "error", e);
	return o;
}

json_object *protocol_event(const char *name, json_object *data)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "event", json_object_new_string(name));
	if (data) {
		json_object_object_foreach(data, key, val) {
			if (strcmp(key, "event"))
				json_object_object_add(o, key, json_object_get(val));
		}
		json_object_put(data);
	}
	return o;
}

const char *protocol_text(json_object *o, size_t *len)
{
	return json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, len);
}
