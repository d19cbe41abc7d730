/* The control protocol without a VM: request parsing and validation, error
 * replies for every kind of bad input, dispatch, replies and events. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "control/protocol.h"

static int calls;

/* Echoes its arguments as the result. */
static enum ctl_status h_echo(void *ctx, const struct ctl_request *req, struct ctl_reply *rep)
{
	calls++;
	rep->result = json_object_get(req->args);
	return CTL_OK;
}

static enum ctl_status h_fail(void *ctx, const struct ctl_request *req, struct ctl_reply *rep)
{
	calls++;
	return ctl_error(rep, CTL_ERR_STATE, "not now (%d)", 42);
}

static json_object *kept_id;

static enum ctl_status h_defer(void *ctx, const struct ctl_request *req, struct ctl_reply *rep)
{
	calls++;
	kept_id = json_object_get(req->id);
	return CTL_DEFERRED;
}

static const struct ctl_arg echo_args[] = {
	{ "n", CTL_ARG_INT, false, -5, 100, "a number" },
	{ "flag", CTL_ARG_BOOL, false, 0, 0, "a flag" },
	{ "name", CTL_ARG_STRING, false, 1, 8, "a short name" },
	{ NULL },
};

static const struct ctl_arg need_args[] = {
	{ "path", CTL_ARG_STRING, true, 1, 4096, "required" },
	{ NULL },
};

static const struct ctl_command table[] = {
	{ "echo", "echo the args", echo_args, h_echo },
	{ "noargs", "takes nothing", NULL, h_echo },
	{ "need", "needs path", need_args, h_echo },
	{ "fail", "always fails", NULL, h_fail },
	{ "defer", "replies later", NULL, h_defer },
	{ NULL },
};

static json_object *handle(const char *line)
{
	return protocol_handle(table, line, strlen(line), NULL);
}

static json_object *member(json_object *o, const char *key)
{
	json_object *v = NULL;
	json_object_object_get_ex(o, key, &v);
	return v;
}

/* The reply is an error with this code; returns its id member. */
static void expect_error(const char *line, const char *code)
{
	calls = 0;
	json_object *r = handle(line);
	if (!r)
		fail_msg("no reply to %s", line);
	assert_false(json_object_get_boolean(member(r, "ok")));
	json_object *e = member(r, "error");
	assert_non_null(e);
	const char *got = json_object_get_string(member(e, "code"));
	if (strcmp(got, code))
		fail_msg("%s: code %s, expected %s (%s)", line, got, code, json_object_get_string(member(e, "message")));
	assert_true(strlen(json_object_get_string(member(e, "message"))) > 0);
	assert_true(json_object_object_get_ex(r, "id", NULL));
	assert_int_equal(calls, 0);
	json_object_put(r);
}

static void test_ok_reply(void **state)
{
	calls = 0;
	json_object *r = handle("{\"id\":7,\"command\":\"echo\",\"args\":{\"n\":3,\"flag\":true,\"name\":\"ab\"}}");
	assert_non_null(r);
	assert_int_equal(calls, 1);
	assert_true(json_object_get_boolean(member(r, "ok")));
	assert_int_equal(json_object_get_int(member(r, "id")), 7);
	json_object *res = member(r, "result");
	assert_int_equal(json_object_get_int(member(res, "n")), 3);
	assert_true(json_object_get_boolean(member(res, "flag")));
	assert_string_equal(json_object_get_string(member(res, "name")), "ab");
	size_t len;
	const char *text = protocol_text(r, &len);
	assert_null(memchr(text, '\n', len));
	json_object_put(r);
}

static void test_string_id_and_whitespace(void **state)
{
	json_object *r = handle("  { \"command\" : \"noargs\", \"id\" : \"abc\" }  \r");
	assert_non_null(r);
	assert_true(json_object_get_boolean(member(r, "ok")));
	assert_string_equal(json_object_get_string(member(r, "id")), "abc");
	/* No args member: an empty object is the result of echo. */
	assert_int_equal(json_object_object_length(member(r, "result")), 0);
	json_object_put(r);
}

static void test_blank_lines(void **state)
{
	assert_null(handle(""));
	assert_null(handle("   \t\r"));
}

static void test_not_json(void **state)
{
	expect_error("{", CTL_ERR_PARSE);
	expect_error("hello", CTL_ERR_PARSE);
	expect_error("{\"id\":1,\"command\":\"noargs\"} trailing", CTL_ERR_PARSE);
	expect_error("{\"id\":1,\"command\":\"noargs\"}{\"id\":2,\"command\":\"noargs\"}", CTL_ERR_PARSE);
	expect_error("{\"id\":1,\"command\":\"noargs\",}", CTL_ERR_PARSE);
	expect_error("{\"id\":1 /* c */,\"command\":\"noargs\"}", CTL_ERR_PARSE);
	expect_error("{\"id\":1,\"command\":\"noar\xff\xfe\"}", CTL_ERR_PARSE);   /* bad UTF-8 */
	/* A NUL byte inside the line. */
	const char with_nul[] = "{\"id\":1,\0\"command\":\"noargs\"}";
	json_object *r = protocol_handle(table, with_nul, sizeof(with_nul) - 1, NULL);
	assert_non_null(r);
	assert_false(json_object_get_boolean(member(r, "ok")));
	json_object_put(r);
	/* Nesting deeper than CTL_MAX_DEPTH. */
	char deep[512] = "{\"id\":1,\"command\":\"echo\",\"args\":{\"x\":";
	for (int i = 0; i < 40; i++)
		strcat(deep, "[");
	for (int i = 0; i < 40; i++)
		strcat(deep, "]");
	strcat(deep, "}}");
	expect_error(deep, CTL_ERR_PARSE);
}

static void test_not_a_request(void **state)
{
	expect_error("[1,2]", CTL_ERR_INVALID);
	expect_error("42", CTL_ERR_INVALID);
	expect_error("\"status\"", CTL_ERR_INVALID);
	expect_error("null", CTL_ERR_INVALID);
	expect_error("{}", CTL_ERR_INVALID);
	expect_error("{\"command\":\"noargs\"}", CTL_ERR_INVALID);             /* no id */
	expect_error("{\"id\":null,\"command\":\"noargs\"}", CTL_ERR_INVALID);
	expect_error("{\"id\":1.5,\"command\":\"noargs\"}", CTL_ERR_INVALID);
	expect_error("{\"id\":{},\"command\":\"noargs\"}", CTL_ERR_INVALID);
	expect_error("{\"id\":true,\"command\":\"noargs\"}", CTL_ERR_INVALID);
	/* json-c reads NaN (and 'single quotes') even in strict mode; the id
	 * check still turns a NaN id away. */
	expect_error("{\"id\":NaN,\"command\":\"noargs\"}", CTL_ERR_INVALID);
	expect_error("{\"id\":1,\"command\":\"echo\",\"args\":{\"n\":NaN}}", CTL_ERR_ARGS);
	expect_error("{\"id\":1}", CTL_ERR_INVALID);                            /* no command */
	expect_error("{\"id\":1,\"command\":5}", CTL_ERR_INVALID);
	expect_error("{\"id\":1,\"command\":null}", CTL_ERR_INVALID);
	expect_error("{\"id\":1,\"command\":\"noargs\",\"extra\":1}", CTL_ERR_INVALID);
	char longid[400];
	snprintf(longid, sizeof(longid), "{\"id\":\"%0200d\",\"command\":\"noargs\"}", 0);
	expect_error(longid, CTL_ERR_INVALID);
}

static void test_error_echoes_id(void **state)
{
	json_object *r = handle("{\"id\":99,\"command\":\"nosuch\"}");
	assert_int_equal(json_object_get_int(member(r, "id")), 99);
	assert_string_equal(json_object_get_string(member(member(r, "error"), "code")), CTL_ERR_UNKNOWN);
	json_object_put(r);
	/* Unparseable: the id is null. */
	r = handle("{oops");
	assert_true(json_object_is_type(member(r, "id"), json_type_null));
	json_object_put(r);
	/* An unusable id is not echoed. */
	r = handle("{\"id\":[1],\"command\":\"noargs\"}");
	assert_true(json_object_is_type(member(r, "id"), json_type_null));
	json_object_put(r);
}

static void test_unknown_command(void **state)
{
	expect_error("{\"id\":1,\"command\":\"nosuch\"}", CTL_ERR_UNKNOWN);
	expect_error("{\"id\":1,\"command\":\"\"}", CTL_ERR_UNKNOWN);
	expect_error("{\"id\":1,\"command\":\"ECHO\"}", CTL_ERR_UNKNOWN);
	expect_error("{\"id\":1,\"command\":\"echo\\u0000x\"}", CTL_ERR_UNKNOWN);
	/* The message quotes the name, cut and made printable. */
	char big[300];
	snprintf(big, sizeof(big), "{\"id\":1,\"command\":\"%0200d\\n\"}", 0);
	json_object *r = handle(big);
	const char *msg = json_object_get_string(member(member(r, "error"), "message"));
	assert_true(strlen(msg) < 160);
	assert_null(strchr(msg, '\n'));
	json_object_put(r);
}

static void test_bad_args(void **state)
{
	expect_error("{\"id\":1,\"command\":\"echo\",\"args\":[]}", CTL_ERR_ARGS);
	expect_error("{\"id\":1,\"command\":\"echo\",\"args\":5}", CTL_ERR_ARGS);
	expect_error("{\"id\":1,\"command\":\"echo\",\"args\":null}", CTL_ERR_ARGS);
	expect_error("{\"id\":1,\"command\":\"echo\",\"args\":{\"bogus\":1}}", CTL_ERR_ARGS);
	expect_error("{\"id\":1,\"command\":\"noargs\",\"args\":{\"n\":1}}", CTL_ERR_ARGS);
	expect_error("{\"id\":1,\"command\":\"echo\",\"args\":{\"n\":\"3\"}}", CTL_ERR_ARGS);
	expect_error("{\"id\":1,\"command\":\"echo\",\"args\":{\"n\":3.0}}", CTL_ERR_ARGS);
	expect_error("{\"id\":1,\"command\":\"echo\",\"args\":{\"n\":1e2}}", CTL_ERR_ARGS);
	expect_error("{\"id\":1,\"command\":\"echo\",\"args\":{\"n\":true}}", CTL_ERR_ARGS);
	expect_error("{\"id\":1,\"command\":\"echo\",\"args\":{\"n\":null}}", CTL_ERR_ARGS);
	expect_error("{\"id\":1,\"command\":\"echo\",\"args\":{\"n\":101}}", CTL_ERR_ARGS);
	expect_error("{\"id\":1,\"command\":\"echo\",\"args\":{\"n\":-6}}", CTL_ERR_ARGS);
	expect_error("{\"id\":1,\"command\":\"echo\",\"args\":{\"n\":99999999999999999999}}", CTL_ERR_ARGS);
	expect_error("{\"id\":1,\"command\":\"echo\",\"args\":{\"n\":-99999999999999999999}}", CTL_ERR_ARGS);
	expect_error("{\"id\":1,\"command\":\"echo\",\"args\":{\"flag\":1}}", CTL_ERR_ARGS);
	expect_error("{\"id\":1,\"command\":\"echo\",\"args\":{\"flag\":\"true\"}}", CTL_ERR_ARGS);
	expect_error("{\"id\":1,\"command\":\"echo\",\"args\":{\"name\":\"\"}}", CTL_ERR_ARGS);
	expect_error("{\"id\":1,\"command\":\"echo\",\"args\":{\"name\":\"123456789\"}}", CTL_ERR_ARGS);
	expect_error("{\"id\":1,\"command\":\"echo\",\"args\":{\"name\":\"a\\u0000b\"}}", CTL_ERR_ARGS);
	expect_error("{\"id\":1,\"command\":\"echo\",\"args\":{\"name\":[\"x\"]}}", CTL_ERR_ARGS);
	expect_error("{\"id\":1,\"command\":\"need\"}", CTL_ERR_ARGS);
	expect_error("{\"id\":1,\"command\":\"need\",\"args\":{}}", CTL_ERR_ARGS);
	/* Range ends are allowed. */
	json_object *r = handle("{\"id\":1,\"command\":\"echo\",\"args\":{\"n\":-5}}");
	assert_true(json_object_get_boolean(member(r, "ok")));
	json_object_put(r);
	r = handle("{\"id\":1,\"command\":\"echo\",\"args\":{\"n\":100,\"name\":\"12345678\"}}");
	assert_true(json_object_get_boolean(member(r, "ok")));
	json_object_put(r);
	r = handle("{\"id\":1,\"command\":\"need\",\"args\":{\"path\":\"/x\"}}");
	assert_true(json_object_get_boolean(member(r, "ok")));
	json_object_put(r);
}

static void test_too_long(void **state)
{
	size_t n = CTL_MAX_LINE + 10;
	char *line = malloc(n);
	memset(line, ' ', n);
	struct ctl_request req;
	struct ctl_reply err = { 0 };
	json_object *id;
	assert_int_equal(protocol_parse(table, line, n, &req, &err, &id), -1);
	assert_string_equal(err.code, CTL_ERR_TOO_LONG);
	assert_null(id);
	free(line);
}

static void test_handler_error_and_defer(void **state)
{
	calls = 0;
	json_object *r = handle("{\"id\":\"x\",\"command\":\"fail\"}");
	assert_int_equal(calls, 1);
	assert_false(json_object_get_boolean(member(r, "ok")));
	assert_string_equal(json_object_get_string(member(r, "id")), "x");
	assert_string_equal(json_object_get_string(member(member(r, "error"), "code")), CTL_ERR_STATE);
	assert_string_equal(json_object_get_string(member(member(r, "error"), "message")), "not now (42)");
	json_object_put(r);

	assert_null(handle("{\"id\":5,\"command\":\"defer\"}"));
	assert_non_null(kept_id);
	/* The handler's reference outlives the request. */
	r = protocol_ok(kept_id, NULL);
	assert_int_equal(json_object_get_int(member(r, "id")), 5);
	assert_true(json_object_get_boolean(member(r, "ok")));
	json_object_put(r);
	json_object_put(kept_id);
	kept_id = NULL;
}

static void test_event(void **state)
{
	json_object *d = json_object_new_object();
	json_object_object_add(d, "state", json_object_new_string("paused"));
	json_object_object_add(d, "event", json_object_new_string("spoofed"));
	json_object *e = protocol_event("state", d);
	assert_string_equal(json_object_get_string(member(e, "event")), "state");
	assert_string_equal(json_object_get_string(member(e, "state")), "paused");
	assert_false(json_object_object_get_ex(e, "id", NULL));
	json_object_put(e);
	e = protocol_event("ping", NULL);
	assert_string_equal(json_object_get_string(member(e, "event")), "ping");
	json_object_put(e);
}

static void test_quote(void **state)
{
	char buf[16];
	protocol_quote(buf, sizeof(buf), "ab\"c\n", 5, 64);
	assert_string_equal(buf, "ab?c?");
	protocol_quote(buf, sizeof(buf), "abcdefghij", 10, 4);
	assert_string_equal(buf, "abcd...");
	protocol_quote(buf, 4, "abcdefghij", 10, 64);
	assert_string_equal(buf, "abc");
}

static void test_find(void **state)
{
	assert_ptr_equal(protocol_find(table, "echo", 4), &table[0]);
	assert_null(protocol_find(table, "echo", 3));
	assert_null(protocol_find(table, "echoo", 5));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ok_reply),
		cmocka_unit_test(test_string_id_and_whitespace),
		cmocka_unit_test(test_blank_lines),
		cmocka_unit_test(test_not_json),
		cmocka_unit_test(test_not_a_request),
		cmocka_unit_test(test_error_echoes_id),
		cmocka_unit_test(test_unknown_command),
		cmocka_unit_test(test_bad_args),
		cmocka_unit_test(test_too_long),
		cmocka_unit_test(test_handler_error_and_defer),
		cmocka_unit_test(test_event),
		cmocka_unit_test(test_quote),
		cmocka_unit_test(test_find),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
