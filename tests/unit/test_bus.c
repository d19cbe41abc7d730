/* Bus dispatch: registration, overlap checks, offsets, unhandled access. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bus.h"

struct fake { uint64_t last_off, last_val; unsigned last_size; int writes; };

static uint64_t fake_read(void *o, uint64_t off, unsigned size)
{
	struct fake *f = o;
	f->last_off = off;
	f->last_size = size;
	return 0x1000 + off;
}

static void fake_write(void *o, uint64_t off, unsigned size, uint64_t v)
{
	struct fake *f = o;
	f->last_off = off;
	f->last_size = size;
	f->last_val = v;
	f->writes++;
}

static const struct bus_ops ops = { fake_read, fake_write };

static void test_dispatch_offsets(void **state)
{
	struct bus b;
	struct fake a = { 0 }, c = { 0 };
	bus_init(&b, "test");
	assert_int_equal(bus_register(&b, 0x3f8, 8, &ops, &a, "a"), 0);
	assert_int_equal(bus_register(&b, 0x60, 5, &ops, &c, "c"), 0);
	uint64_t v;
	assert_true(bus_read(&b, 0x3fd, 1, &v));
	assert_int_equal(v, 0x1005);
	assert_int_equal(a.last_off, 5);
	assert_true(bus_write(&b, 0x64, 2, 0xfe));
	assert_int_equal(c.last_off, 4);
	assert_int_equal(c.last_val, 0xfe);
	assert_int_equal(c.last_size, 2);
	bus_destroy(&b);
}

static void test_overlap_rejected(void **state)
{
	struct bus b;
	struct fake a = { 0 };
	bus_init(&b, "test");
	assert_int_equal(bus_register(&b, 0x100, 0x10, &ops, &a, "a"), 0);
	assert_int_equal(bus_register(&b, 0x10f, 1, &ops, &a, "x"), -EEXIST);
	assert_int_equal(bus_register(&b, 0xf0, 0x11, &ops, &a, "x"), -EEXIST);
	assert_int_equal(bus_register(&b, 0x0, 0x1000, &ops, &a, "x"), -EEXIST);
	assert_int_equal(bus_register(&b, 0xf0, 0x10, &ops, &a, "below"), 0);
	assert_int_equal(bus_register(&b, 0x110, 0x10, &ops, &a, "above"), 0);
	assert_int_equal(bus_register(&b, 0x200, 0, &ops, &a, "empty"), -EINVAL);
	assert_int_equal(bus_register(&b, UINT64_MAX - 1, 4, &ops, &a, "wraps"), -EINVAL);
	bus_destroy(&b);
}

static void test_unhandled_all_ones(void **state)
{
	struct bus b;
	bus_init(&b, "test");
	uint64_t v = 0;
	assert_false(bus_read(&b, 0x1234, 1, &v));
	assert_int_equal(v, 0xff);
	assert_false(bus_read(&b, 0x1234, 2, &v));
	assert_int_equal(v, 0xffff);
	assert_false(bus_read(&b, 0x1234, 4, &v));
	assert_int_equal(v, 0xffffffffu);
	assert_false(bus_read(&b, 0x1234, 8, &v));
	assert_true(v == UINT64_MAX);
	assert_false(bus_write(&b, 0x1234, 4, 1));
	assert_int_equal(b.unhandled_reads, 4);
	assert_int_equal(b.unhandled_writes, 1);
	bus_destroy(&b);
}

static void test_unregister_and_many(void **state)
{
	struct bus b;
	struct fake f[100];
	bus_init(&b, "test");
	for (int i = 99; i >= 0; i--)
		assert_int_equal(bus_register(&b, 0x1000 + (uint64_t)i * 0x10, 0x10, &ops, &f[i], "n"), 0);
	uint64_t v;
	for (int i = 0; i < 100; i++) {
		assert_true(bus_read(&b, 0x1000 + (uint64_t)i * 0x10 + 3, 1, &v));
		assert_ptr_equal(f[i].last_off, 3);
	}
	assert_int_equal(bus_unregister(&b, 0x1010, &f[0]), -ENOENT);   /* wrong owner */
	assert_int_equal(bus_unregister(&b, 0x1010, &f[1]), 0);
	assert_false(bus_read(&b, 0x1015, 1, &v));
	assert_true(bus_read(&b, 0x1025, 1, &v));
	bus_destroy(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dispatch_offsets),
		cmocka_unit_test(test_overlap_rejected),
		cmocka_unit_test(test_unhandled_all_ones),
		cmocka_unit_test(test_unregister_and_many),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
