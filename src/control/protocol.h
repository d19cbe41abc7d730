/* The control protocol: one JSON request per line in, one JSON reply (or
 * event) per line out. Parsing, validation against a command table and
 * reply building; pure (no sockets, no VM), so it is unit-tested and fuzzed
 * on its own. docs/control-api.md is the user-facing description. */
#ifndef EMBER_CONTROL_PROTOCOL_H
#define EMBER_CONTROL_PROTOCOL_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CTL_MAX_LINE      (64 * 1024)  /* bytes in one request, newline excluded */
#define CTL_MAX_ID_LEN    128          /* a string id */
#define CTL_MAX_NAME_LEN  64           /* command and argument names */
#define CTL_MAX_DEPTH     16           /* JSON nesting */

/* Error codes (the "code" of an error reply). */
#define CTL_ERR_PARSE     "parse-error"       /* not one JSON value on the line */
#define CTL_ERR_INVALID   "invalid-request"   /* JSON, but not a request */
#define CTL_ERR_UNKNOWN   "unknown-command"
#define CTL_ERR_ARGS      "invalid-argument"  /* unknown, missing, wrong type, out of range */
#define CTL_ERR_STATE     "bad-state"         /* not possible in the VM's state */
#define CTL_ERR_TOO_LONG  "line-too-long"     /* then the connection closes */
#define CTL_ERR_CLIENTS   "too-many-clients"  /* then the connection closes */
#define CTL_ERR_INTERNAL  "internal-error"

enum ctl_arg_type { CTL_ARG_INT, CTL_ARG_BOOL, CTL_ARG_STRING };

/* One argument a command accepts; arrays end with a NULL name. */
struct ctl_arg {
	const char *name;
	enum ctl_arg_type type;
	bool required;
	int64_t min, max;          /* CTL_ARG_INT: inclusive range; STRING: length range */
	const char *help;
};

struct ctl_command;

/* A request that passed validation. args is always an object whose members
 * all appear in cmd->args with the declared type and range. */
struct ctl_request {
	json_object *root;         /* owns id and args */
	json_object *id;           /* int or string */
	json_object *args;
	const struct ctl_command *cmd;
};

/* What a handler produces: a result object on success (NULL means {}), or
 * an error code and message. */
struct ctl_reply {
	json_object *result;
	const char *code;
	char message[256];
};

enum ctl_status {
	CTL_OK,
	CTL_ERROR,
	CTL_DEFERRED,   /* the handler kept req->id and replies later */
};

typedef enum ctl_status ctl_handler_fn(void *ctx, const struct ctl_request *req, struct ctl_reply *rep);

/* A command: adding one is one table entry and one handler. Tables end
 * with a NULL name. */
struct ctl_command {
	const char *name;
	const char *summary;
	const struct ctl_arg *args;   /* NULL: takes no arguments */
	ctl_handler_fn *handler;
};

/* Set rep to an error; returns CTL_ERROR for `return ctl_error(...)`. */
enum ctl_status ctl_error(struct ctl_reply *rep, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Parse and validate one line (without its newline). 0 and *req filled
 * (free with protocol_request_free), or -1 and *err filled; *id_out then
 * holds the request's id when one could be read (a new reference, or NULL). */
int protocol_parse(const struct ctl_command *table, const char *line, size_t len,
		   struct ctl_request *req, struct ctl_reply *err, json_object **id_out);
void protocol_request_free(struct ctl_request *req);

/* Handle one line: parse, validate, call the handler. Returns the reply
 * object to send (caller puts it), or NULL for a blank line or a deferred
 * reply. */
json_object *protocol_handle(const struct ctl_command *table, const char *line, size_t len, void *ctx);

const struct ctl_command *protocol_find(const struct ctl_command *table, const char *name, size_t len);

/* {"id":id,"ok":true,"result":result}; takes the result reference. */
json_object *protocol_ok(json_object *id, json_object *result);
/* {"id":id,"ok":false,"error":{"code":code,"message":message}} */
json_object *protocol_error(json_object *id, const char *code, const char *message);
/* {"event":name, ...members of data}; takes the data reference. */
json_object *protocol_event(const char *name, json_object *data);

/* The compact one-line text of o (no newline); valid while o lives. */
const char *protocol_text(json_object *o, size_t *len);

/* A JSON-safe rendering of untrusted bytes for messages: printable ASCII
 * up to max bytes, the rest as '?', "..." when cut. */
void protocol_quote(char *buf, size_t size, const char *s, size_t len, size_t max);

#endif
