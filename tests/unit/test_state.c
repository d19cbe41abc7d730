/* The state stream: round trip, loader dispatch, versions, strict field
 * checks, compare with volatile fields, and hostile input: every flipped
 * byte and every truncation of a valid stream is refused with a message,
 * never trusted, never a crash. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "migration/state.h"

struct seen {
	int cpu_calls, ram_calls;
	uint64_t u64;
	uint32_t u32;
	uint16_t u16;
	uint8_t u8;
	char blob[32];
	uint32_t last_instance;
};

static void write_stream(struct state_buf *b, uint64_t clock, uint32_t cpu_version)
{
	struct state_writer w;
	memset(b, 0, sizeof(*b));
	assert_int_equal(state_writer_init(&w, state_buf_sink(b)), 0);
	for (uint32_t i = 0; i < 2; i++) {
		assert_int_equal(state_begin_section(&w, "cpu", i, cpu_version), 0);
		state_put_u64(&w, 1, 0x1122334455667788ull + i);
		state_put_u32(&w, 2, 0xdeadbeef);
		state_put_u16(&w, 3, 0xbeef);
		state_put_u8(&w, 4, 7);
		state_put_blob(&w, 5, "hello, state", 12);
		state_put_u64_volatile(&w, 6, clock);
		assert_int_equal(state_end_section(&w), 0);
	}
	assert_int_equal(state_begin_section(&w, "ram", 0, 1), 0);
	state_put_blob(&w, 1, "", 0);
	assert_int_equal(state_end_section(&w), 0);
	assert_int_equal(state_writer_finish(&w), 0);
	state_writer_destroy(&w);
}

static int load_cpu(void *opaque, struct state_reader *r)
{
	struct seen *s = opaque;
	uint64_t clock;
	int e;
	if ((e = state_get_u64(r, 1, &s->u64)) || (e = state_get_u32(r, 2, &s->u32)) ||
	    (e = state_get_u16(r, 3, &s->u16)) || (e = state_get_u8(r, 4, &s->u8)) ||
	    (e = state_get_blob(r, 5, s->blob, 12)) || (e = state_get_u64(r, 6, &clock)))
		return e;
	s->cpu_calls++;
	s->last_instance = r->instance;
	return 0;
}

static int load_ram(void *opaque, struct state_reader *r)
{
	struct seen *s = opaque;
	const void *p;
	size_t len;
	int e = state_get_blob_ref(r, 1, &p, &len);
	if (!e && len != 0)
		return state_fail(r, "len %zu", len);
	s->ram_calls++;
	return e;
}

static int load(struct state_buf *b, struct seen *s, char *err, size_t len)
{
	const struct state_loader loaders[] = {
		{ "cpu", 1, load_cpu, s },
		{ "ram", 1, load_ram, s },
	};
	memset(s, 0, sizeof(*s));
	b->pos = 0;
	return state_load(state_buf_source(b), loaders, 2, err, len);
}

static void test_round_trip(void **state)
{
	struct state_buf b;
	struct seen s;
	char err[256];
	write_stream(&b, 1000, 1);
	assert_int_equal(load(&b, &s, err, sizeof(err)), 0);
	assert_int_equal(s.cpu_calls, 2);
	assert_int_equal(s.ram_calls, 1);
	assert_int_equal(s.last_instance, 1);
	assert_true(s.u64 == 0x1122334455667789ull && s.u32 == 0xdeadbeef && s.u16 == 0xbeef && s.u8 == 7);
	assert_memory_equal(s.blob, "hello, state", 12);
	state_buf_free(&b);
}

static void test_versions_and_names(void **state)
{
	struct state_buf b;
	struct seen s;
	char err[256];
	write_stream(&b, 1, 2);
	assert_int_equal(load(&b, &s, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "section cpu[0] version 2: this Ember reads up to 1"));
	state_buf_free(&b);

	write_stream(&b, 1, 1);
	const struct state_loader only_ram[] = { { "ram", 1, load_ram, &s } };
	b.pos = 0;
	assert_int_equal(state_load(state_buf_source(&b), only_ram, 1, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "unknown section 'cpu'"));
	state_buf_free(&b);
}

/* Sections written ahead into a buffer (a snapshot's state at the pause)
 * and appended after a later one read as one stream, in the order written. */
static void test_append(void **state)
{
	struct state_buf early = { 0 }, b = { 0 };
	struct state_writer w;
	struct seen s;
	char err[256];
	assert_int_equal(state_writer_init(&w, state_buf_sink(&early)), 0);
	for (uint32_t i = 0; i < 2; i++) {
		assert_int_equal(state_begin_section(&w, "cpu", i, 1), 0);
		state_put_u64(&w, 1, 0x1122334455667788ull + i);
		state_put_u32(&w, 2, 0xdeadbeef);
		state_put_u16(&w, 3, 0xbeef);
		state_put_u8(&w, 4, 7);
		state_put_blob(&w, 5, "hello, state", 12);
		state_put_u64_volatile(&w, 6, 5);
		assert_int_equal(state_end_section(&w), 0);
	}
	state_writer_destroy(&w);

	assert_int_equal(state_writer_init(&w, state_buf_sink(&b)), 0);
	assert_int_equal(state_begin_section(&w, "ram", 0, 1), 0);
	state_put_blob(&w, 1, "", 0);
	assert_int_equal(state_end_section(&w), 0);
	assert_int_equal(state_writer_append(&w, &early), 0);
	assert_int_equal(state_writer_finish(&w), 0);
	state_writer_destroy(&w);
	assert_int_equal(load(&b, &s, err, sizeof(err)), 0);
	assert_int_equal(s.cpu_calls, 2);
	assert_int_equal(s.ram_calls, 1);
	assert_int_equal(s.last_instance, 1);

	/* inside a section, or a buffer that is no stream: refused, sticky */
	struct state_buf junk = { 0 }, c = { 0 };
	assert_int_equal(state_buf_sink(&junk).write(&junk, "not a stream, no", 16), 0);
	assert_int_equal(state_writer_init(&w, state_buf_sink(&c)), 0);
	assert_int_equal(state_writer_append(&w, &junk), -EINVAL);
	assert_int_equal(state_writer_finish(&w), -EINVAL);
	state_writer_destroy(&w);
	state_buf_free(&c);
	assert_int_equal(state_writer_init(&w, state_buf_sink(&c)), 0);
	assert_int_equal(state_begin_section(&w, "ram", 0, 1), 0);
	assert_int_equal(state_writer_append(&w, &early), -EINVAL);
	state_writer_destroy(&w);
	state_buf_free(&c);
	state_buf_free(&junk);
	state_buf_free(&early);
	state_buf_free(&b);
}

static int load_cpu_wrong(void *opaque, struct state_reader *r)
{
	uint32_t v;
	return state_get_u32(r, 1, &v);     /* field 1 is a u64 */
}

static int load_cpu_partial(void *opaque, struct state_reader *r)
{
	uint64_t v;
	return state_get_u64(r, 1, &v);     /* leaves fields unread */
}

static void test_strict_fields(void **state)
{
	struct state_buf b;
	char err[256];
	write_stream(&b, 1, 1);
	const struct state_loader wrong[] = { { "cpu", 1, load_cpu_wrong, NULL } };
	assert_int_equal(state_load(state_buf_source(&b), wrong, 1, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "section cpu[0]: field 1: type 4, expected 3"));
	b.pos = 0;
	const struct state_loader partial[] = { { "cpu", 1, load_cpu_partial, NULL } };
	assert_int_equal(state_load(state_buf_source(&b), partial, 1, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "left unread"));
	state_buf_free(&b);
}

static void test_compare(void **state)
{
	struct state_buf a, b, c;
	char msg[256];
	unsigned skipped;
	write_stream(&a, 1, 1);
	write_stream(&b, 99999, 1);      /* only the volatile clock differs */
	assert_int_equal(state_compare(&a, &b, &skipped, msg, sizeof(msg)), 0);
	assert_int_equal(skipped, 2);
	write_stream(&c, 1, 1);
	/* Change the u32 of cpu[1]: the byte after "0xdeadbeef"'s header. */
	uint32_t v = 0xdeadbeef;
	uint8_t *hit = NULL;
	for (size_t i = 0; i + 4 <= c.len; i++)
		if (!memcmp(c.data + i, &v, 4))
			hit = c.data + i;
	assert_non_null(hit);
	hit[0] ^= 1;
	assert_int_equal(state_compare(&a, &c, NULL, msg, sizeof(msg)), -EBADMSG);  /* CRC catches it */
	state_buf_free(&a);
	state_buf_free(&b);
	state_buf_free(&c);
}

/* Every single-byte corruption and every truncation is refused. */
static void test_hostile_streams(void **state)
{
	struct state_buf good, bad;
	struct seen s;
	char err[256];
	write_stream(&good, 5, 1);
	for (size_t i = 0; i < good.len; i++) {
		for (int bit = 0; bit < 8; bit += 3) {
			bad = good;
			bad.data = malloc(good.len);
			memcpy(bad.data, good.data, good.len);
			bad.data[i] ^= (uint8_t)(1u << bit);
			err[0] = '\0';
			int r = load(&bad, &s, err, sizeof(err));
			if (r == 0)
				fail_msg("flipping bit %d of byte %zu was accepted", bit, i);
			assert_true(err[0] != '\0');
			free(bad.data);
		}
	}
	for (size_t n = 0; n < good.len; n++) {
		bad = good;
		bad.len = n;
		assert_int_not_equal(load(&bad, &s, err, sizeof(err)), 0);
	}
	/* Trailing garbage after the end section. */
	bad = good;
	bad.data = malloc(good.len + 1);
	memcpy(bad.data, good.data, good.len);
	bad.data[good.len] = 0;
	bad.len = good.len + 1;
	assert_int_equal(load(&bad, &s, err, sizeof(err)), -EBADMSG);
	free(bad.data);
	/* Random junk of every small length. */
	srand(1);
	for (int t = 0; t < 2000; t++) {
		size_t n = (size_t)(rand() % 200);
		uint8_t junk[200];
		for (size_t i = 0; i < n; i++)
			junk[i] = (uint8_t)rand();
		if (n >= 8)
			memcpy(junk, "EMBRSTAT", 8);
		bad = (struct state_buf){ .data = junk, .len = n };
		assert_int_not_equal(load(&bad, &s, err, sizeof(err)), 0);
	}
	state_buf_free(&good);
}

static void test_writer_errors(void **state)
{
	struct state_buf b = { 0 };
	struct state_writer w;
	assert_int_equal(state_writer_init(&w, state_buf_sink(&b)), 0);
	assert_int_equal(state_begin_section(&w, "a-name-that-is-too-long", 0, 1), -EINVAL);
	assert_int_equal(state_writer_finish(&w), -EINVAL);   /* sticky */
	state_writer_destroy(&w);
	state_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_versions_and_names),
		cmocka_unit_test(test_append),
		cmocka_unit_test(test_strict_fields),
		cmocka_unit_test(test_compare),
		cmocka_unit_test(test_hostile_streams),
		cmocka_unit_test(test_writer_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
