/* Unit tests for the AML encoder: the bytes of each construct as ACPI 6.5
 * §20 and §6.4 spell them, PkgLength at each of its four sizes (decoded
 * back), resource template checksums, and errors that stick. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arch/x86/aml.h"

/* Encode a and compare with the expected bytes. */
#define EXPECT(a, ...) expect_bytes((a), (const uint8_t[]){ __VA_ARGS__ }, \
				    sizeof((const uint8_t[]){ __VA_ARGS__ }))

static void expect_bytes(struct aml *a, const uint8_t *want, size_t n)
{
	uint8_t *got;
	size_t len;

	assert_int_equal(aml_take(a, &got, &len), 0);
	assert_int_equal(len, n);
	assert_memory_equal(got, want, n);
	free(got);
}

static void expect_err(struct aml *a, int err)
{
	uint8_t *got = NULL;
	size_t len = 0;

	assert_int_equal(aml_take(a, &got, &len), err);
	assert_null(got);
}

static void test_integers(void **state)
{
	EXPECT(aml_int(0), 0x00);
	EXPECT(aml_int(1), 0x01);
	EXPECT(aml_int(2), 0x0a, 0x02);
	EXPECT(aml_int(0xff), 0x0a, 0xff);
	EXPECT(aml_int(0x100), 0x0b, 0x00, 0x01);
	EXPECT(aml_int(0xffff), 0x0b, 0xff, 0xff);
	EXPECT(aml_int(0x10000), 0x0c, 0x00, 0x00, 0x01, 0x00);
	EXPECT(aml_int(0xffffffff), 0x0c, 0xff, 0xff, 0xff, 0xff);
	EXPECT(aml_int(0x100000000), 0x0e, 0, 0, 0, 0, 1, 0, 0, 0);
	EXPECT(aml_int(0x8000000000), 0x0e, 0, 0, 0, 0, 0x80, 0, 0, 0);
	EXPECT(aml_int(UINT64_MAX - 1), 0x0e, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
	EXPECT(aml_int(UINT64_MAX), 0xff);              /* OnesOp */
}

static void test_names(void **state)
{
	EXPECT(aml_name("_HID"), '_', 'H', 'I', 'D');
	EXPECT(aml_name("RTC"), 'R', 'T', 'C', '_');    /* padded */
	EXPECT(aml_name("\\_SB.PCI0"), '\\', 0x2e, '_', 'S', 'B', '_', 'P', 'C', 'I', '0');
	EXPECT(aml_name("\\_SB.PCI0.GSIA"), '\\', 0x2f, 3, '_', 'S', 'B', '_', 'P', 'C', 'I', '0',
	       'G', 'S', 'I', 'A');
	EXPECT(aml_name("^^GSIA"), '^', '^', 'G', 'S', 'I', 'A');
	EXPECT(aml_name("\\"), '\\', 0x00);             /* the root: NullName */
	EXPECT(aml_name("A1_9"), 'A', '1', '_', '9');

	static const char *const bad[] = { "", "pci0", "ABCDE", "1ABC", "A..B", "A.", ".A", "\\.",
					   "A-B", "^\\A" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_err(aml_name(bad[i]), -EINVAL);
}

static void test_strings_and_eisaid(void **state)
{
	EXPECT(aml_string("QEMU0002"), 0x0d, 'Q', 'E', 'M', 'U', '0', '0', '0', '2', 0x00);
	EXPECT(aml_string(""), 0x0d, 0x00);
	expect_err(aml_string("caf\xc3\xa9"), -EINVAL);
	/* EISAID: big-endian, letters in 5 bits from 'A' = 1. */
	EXPECT(aml_eisaid("PNP0A08"), 0x0c, 0x41, 0xd0, 0x0a, 0x08);
	EXPECT(aml_eisaid("PNP0A03"), 0x0c, 0x41, 0xd0, 0x0a, 0x03);
	EXPECT(aml_eisaid("PNP0501"), 0x0c, 0x41, 0xd0, 0x05, 0x01);
	EXPECT(aml_eisaid("PNP0C0F"), 0x0c, 0x41, 0xd0, 0x0c, 0x0f);
	EXPECT(aml_eisaid("ZZZFFFF"), 0x0c, 0x6b, 0x5a, 0xff, 0xff);
	expect_err(aml_eisaid("pnp0a08"), -EINVAL);
	expect_err(aml_eisaid("PNP0A0"), -EINVAL);
	expect_err(aml_eisaid("PNP0A08A"), -EINVAL);
	expect_err(aml_eisaid("PNP0A0g"), -EINVAL);
}

/* §20.2.4: the PkgLength at p, and how many bytes it took. */
static size_t decode_pkglen(const uint8_t *p, unsigned *nbytes)
{
	unsigned n = (p[0] >> 6) + 1;
	size_t len;

	if (n == 1) {
		*nbytes = 1;
		return p[0] & 0x3f;
	}
	assert_int_equal(p[0] & 0x30, 0);       /* bits 5-4 are reserved in the long forms */
	len = p[0] & 0x0f;
	for (unsigned i = 1; i < n; i++)
		len |= (size_t)p[i] << (4 + 8 * (i - 1));
	*nbytes = n;
	return len;
}

/* Scope (S) { Name (X, "...") } with a body of exactly body bytes: the
 * scope's name (4), NameOp and its name (5), the string (2 + chars). */
static void check_pkglen(size_t body, unsigned want_bytes)
{
	size_t chars = body - 11;
	char *s = malloc(chars + 1);
	uint8_t *got;
	size_t len;
	unsigned n;

	assert_non_null(s);
	memset(s, 'x', chars);
	s[chars] = '\0';
	assert_int_equal(aml_take(aml_with(aml_scope("S"), aml_name_decl("X", aml_string(s))),
				  &got, &len), 0);
	free(s);
	assert_int_equal(got[0], 0x10);                 /* ScopeOp */
	size_t pkglen = decode_pkglen(got + 1, &n);
	assert_int_equal(n, want_bytes);
	assert_int_equal(pkglen, n + body);
	assert_int_equal(len, 1 + n + body);            /* it counts itself and the body */
	assert_memory_equal(got + 1 + n, "S___\x08X___\x0dx", 11);
	assert_int_equal(got[len - 1], 0x00);
	free(got);
}

static void test_pkglen_forms(void **state)
{
	check_pkglen(12, 1);
	check_pkglen(62, 1);                    /* 63 in all: the last one-byte length */
	check_pkglen(63, 2);
	check_pkglen(4093, 2);                  /* 4095: the last two-byte length */
	check_pkglen(4094, 3);
	check_pkglen((1u << 20) - 4, 3);
	check_pkglen((1u << 20) - 3, 4);
	check_pkglen(3u << 20, 4);
}

static void test_blocks(void **state)
{
	EXPECT(aml_device("COM1"), 0x5b, 0x82, 0x05, 'C', 'O', 'M', '1');
	EXPECT(aml_method("_SRS", 1), 0x14, 0x06, '_', 'S', 'R', 'S', 0x01);
	EXPECT(aml_method("_DIS", 0), 0x14, 0x06, '_', 'D', 'I', 'S', 0x00);
	EXPECT(aml_with(aml_scope("\\_SB"), aml_with(aml_device("RTC"),
						     aml_name_decl("_UID", aml_int(0)))),
	       0x10, 0x13, '\\', '_', 'S', 'B', '_',
	       0x5b, 0x82, 0x0b, 'R', 'T', 'C', '_',
	       0x08, '_', 'U', 'I', 'D', 0x00);
	expect_err(aml_method("_ABC", 8), -EINVAL);
	/* A term list is its terms, nothing around them. */
	EXPECT(aml_with(aml_new(), aml_int(2), aml_name("ABCD")), 0x0a, 0x02, 'A', 'B', 'C', 'D');
	EXPECT(aml_new());
}

static void test_packages(void **state)
{
	EXPECT(aml_with(aml_package(), aml_int(5), aml_int(5), aml_int(0), aml_int(0)),
	       0x12, 0x08, 0x04, 0x0a, 0x05, 0x0a, 0x05, 0x00, 0x00);
	EXPECT(aml_package(), 0x12, 0x02, 0x00);
	EXPECT(aml_with(aml_package(), aml_with(aml_package(), aml_int(0xffff), aml_name("\\L")),
			aml_string("a")),
	       0x12, 0x10, 0x02,
	       0x12, 0x0a, 0x02, 0x0b, 0xff, 0xff, '\\', 'L', '_', '_', '_',
	       0x0d, 'a', 0x00);

	struct aml *p = aml_package();
	for (int i = 0; i < 255; i++)
		p = aml_append(p, aml_int(0));
	uint8_t *got;
	size_t len;
	assert_int_equal(aml_take(p, &got, &len), 0);
	unsigned n;
	assert_int_equal(decode_pkglen(got + 1, &n), len - 1);
	assert_int_equal(got[1 + n], 255);      /* NumElements */
	free(got);

	p = aml_package();
	for (int i = 0; i < 256; i++)
		p = aml_append(p, aml_int(0));
	expect_err(p, -EINVAL);                 /* needs a VarPackage */
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	for (size_t i = 0; i < n; i++)
		s += p[i];
	return s;
}

static void test_resource_template(void **state)
{
	/* Empty: BufferSize 2, the EndTag and a checksum of -0x79. */
	EXPECT(aml_resource_template(), 0x11, 0x05, 0x0a, 0x02, 0x79, 0x87);
	/* IO (Decode16, 0x3f8, 0x3f8, 1, 8) and IRQNoFlags () {4}: the
	 * template sums to zero, end tag included. */
	uint8_t *got;
	size_t len;
	assert_int_equal(aml_take(aml_with(aml_resource_template(),
					   aml_io(0x3f8, 0x3f8, 1, 8), aml_irq_no_flags(4)),
				  &got, &len), 0);
	static const uint8_t want[] = {
		0x11, 0x10, 0x0a, 0x0d,
		0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08,
		0x22, 0x10, 0x00,
		0x79,
	};
	assert_int_equal(len, sizeof(want) + 1);
	assert_memory_equal(got, want, sizeof(want));
	assert_int_equal(sum(got + 4, len - 4), 0);
	free(got);
	/* A big template: a two-byte PkgLength and a Word BufferSize. */
	struct aml *t = aml_resource_template();
	for (int i = 0; i < 20; i++)
		t = aml_append(t, aml_io((uint16_t)i, (uint16_t)i, 1, 1));
	assert_int_equal(aml_take(t, &got, &len), 0);
	unsigned n;
	assert_int_equal(decode_pkglen(got + 1, &n), len - 1);
	assert_int_equal(n, 2);
	assert_int_equal(got[3], 0x0a);                 /* 162 bytes still fit a byte */
	assert_int_equal(got[4], 20 * 8 + 2);
	assert_int_equal(sum(got + 5, len - 5), 0);
	free(got);
}

static void test_descriptors(void **state)
{
#define RT(...) aml_with(aml_resource_template(), __VA_ARGS__)
	/* Each inside a template; skip the buffer header (4 bytes for these
	 * sizes) and check the descriptor and the end tag. */
	struct {
		struct aml *a;
		const uint8_t *want;
		size_t n;
	} cases[] = {
#define CASE(a, ...) { RT(a), (const uint8_t[]){ __VA_ARGS__ }, sizeof((const uint8_t[]){ __VA_ARGS__ }) }
		CASE(aml_word_bus_number(0, 0),
		     0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0),
		CASE(aml_word_io(0xc000, 0xffff),
		     0x88, 0x0d, 0x00, 0x01, 0x0c, 0x03, 0, 0, 0x00, 0xc0, 0xff, 0xff, 0, 0, 0x00, 0x40),
		CASE(aml_dword_memory(0xc0000000, 0xdfffffff),
		     0x87, 0x17, 0x00, 0x00, 0x0c, 0x01, 0, 0, 0, 0, 0, 0, 0, 0xc0, 0xff, 0xff, 0xff, 0xdf,
		     0, 0, 0, 0, 0, 0, 0, 0x20),
		CASE(aml_qword_memory(0x8000000000, 0x8fffffffff),
		     0x8a, 0x2b, 0x00, 0x00, 0x0c, 0x01, 0, 0, 0, 0, 0, 0, 0, 0,
		     0, 0, 0, 0, 0x80, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x8f, 0, 0, 0,
		     0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0),
		CASE(aml_interrupt(AML_INTR_SHARED, 16), 0x89, 0x06, 0x00, 0x09, 0x01, 0x10, 0, 0, 0),
		CASE(aml_interrupt(AML_INTR_EDGE | AML_INTR_ACTIVE_LOW, 300),
		     0x89, 0x06, 0x00, 0x07, 0x01, 0x2c, 0x01, 0, 0),
		CASE(aml_irq_no_flags(15), 0x22, 0x00, 0x80),
		CASE(aml_memory32_fixed(0xe0000000, 0x100000),
		     0x86, 0x09, 0x00, 0x01, 0, 0, 0, 0xe0, 0, 0, 0x10, 0),
		CASE(aml_io(0x70, 0x70, 1, 2), 0x47, 0x01, 0x70, 0x00, 0x70, 0x00, 0x01, 0x02),
#undef CASE
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t *got;
		size_t len;
		assert_int_equal(aml_take(cases[i].a, &got, &len), 0);
		size_t hdr = 4;                         /* BufferOp, PkgLength, BytePrefix n */
		assert_int_equal(got[2], 0x0a);
		assert_int_equal(len, hdr + cases[i].n + 2);
		assert_int_equal(got[hdr - 1], cases[i].n + 2);
		assert_memory_equal(got + hdr, cases[i].want, cases[i].n);
		assert_int_equal(got[len - 2], 0x79);
		assert_int_equal(sum(got + hdr, len - hdr), 0);
		free(got);
	}
	/* Lengths that do not fit, ranges upside down, bad flags. */
	expect_err(RT(aml_word_io(0, 0xffff)), -EINVAL);
	expect_err(RT(aml_word_io(2, 1)), -EINVAL);
	expect_err(RT(aml_qword_memory(0, UINT64_MAX)), -EINVAL);
	expect_err(RT(aml_irq_no_flags(16)), -EINVAL);
	expect_err(RT(aml_interrupt(1, 16)), -EINVAL);
#undef RT
}

/* Errors stick and travel up; nothing leaks (ASan checks). */
static void test_errors(void **state)
{
	expect_err(NULL, -ENOMEM);
	expect_err(aml_append(aml_device("DEV0"), NULL), -ENOMEM);
	assert_null(aml_append(NULL, aml_int(5)));
	/* A descriptor outside a template, anything else inside one. */
	expect_err(aml_with(aml_device("DEV0"), aml_io(0, 0, 1, 1)), -EINVAL);
	expect_err(aml_with(aml_resource_template(), aml_int(1)), -EINVAL);
	expect_err(aml_name_decl("_CRS", aml_io(0, 0, 1, 1)), -EINVAL);
	/* Nothing inside a descriptor: its bytes would run past its length. */
	expect_err(aml_with(aml_resource_template(), aml_with(aml_io(0, 0, 1, 1), aml_int(7))), -EINVAL);
	expect_err(aml_with(aml_resource_template(), aml_with(aml_irq_no_flags(4), aml_irq_no_flags(5))),
		   -EINVAL);
	/* Deep down, after good siblings. */
	expect_err(aml_with(aml_scope("\\_SB"), aml_device("GOOD"),
			    aml_with(aml_device("BAD0"), aml_name_decl("_HID", aml_eisaid("bad")))),
		   -EINVAL);
	expect_err(aml_name_decl("toolong", aml_int(0)), -EINVAL);
	/* The first error wins. */
	expect_err(aml_with(aml_new(), aml_name("bad"), NULL), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_integers),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_strings_and_eisaid),
		cmocka_unit_test(test_pkglen_forms),
		cmocka_unit_test(test_blocks),
		cmocka_unit_test(test_packages),
		cmocka_unit_test(test_resource_template),
		cmocka_unit_test(test_descriptors),
		cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
