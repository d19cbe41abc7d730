/* The DSDT Ember builds, decoded the way an OS does (a small AML walker of
 * its own: named objects with their full paths, integers, packages,
 * buffers, resource descriptors) and checked against what Ember wires: the
 * host bridge's windows, INTx routing, COM1 and the optional devices.
 *
 * `test_dsdt --dump DIR` writes the tables of a VM with every optional
 * device as DIR/SIG.aml instead, for iasl (tests/integration/test_acpi_iasl.sh). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arch/x86/acpi.h"
#include "arch/x86/layout.h"
#include "devices/pci.h"
#include "mem.h"

#define HDR_LEN   36
#define MAX_OBJS  128
#define MAX_RES   16

static struct guest_mem M;

/* ---- reading the tables ------------------------------------------------ */

static const uint8_t *gp(uint64_t gpa, uint64_t len)
{
	const uint8_t *p = mem_ptr(&M, gpa, len);

	assert_non_null(p);
	return p;
}

static uint64_t le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static uint32_t rd32(uint64_t gpa)
{
	return (uint32_t)le(gp(gpa, 4), 4);
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	for (size_t i = 0; i < n; i++)
		s += p[i];
	return s;
}

/* Build for cfg; the DSDT through RSDP -> RSDT -> FACP. */
static uint64_t build(const struct acpi_config *cfg, uint64_t *rsdp_out)
{
	uint64_t rsdp, rsdt, dsdt = 0;

	assert_int_equal(acpi_build(&M, cfg, &rsdp), 0);
	rsdt = rd32(rsdp + 16);
	for (uint32_t off = HDR_LEN; off < rd32(rsdt + 4); off += 4) {
		uint32_t t = rd32(rsdt + off);
		if (!memcmp(gp(t, 4), "FACP", 4))
			dsdt = rd32(t + 40);
	}
	assert_int_not_equal(dsdt, 0);
	assert_memory_equal(gp(dsdt, 4), "DSDT", 4);
	assert_int_equal(sum(gp(dsdt, rd32(dsdt + 4)), rd32(dsdt + 4)), 0);
	if (rsdp_out)
		*rsdp_out = rsdp;
	return dsdt;
}

/* ---- an AML walker ------------------------------------------------------ */

struct cur {
	const uint8_t *p, *end;
};

struct obj {
	char path[64];          /* "\\_SB_.PCI0._HID" */
	char kind;              /* 'S'cope, 'D'evice, 'M'ethod, 'N'ame */
	struct cur data;        /* N: the value; M: flags, then the body */
};

static struct obj objs[MAX_OBJS];
static unsigned nobjs;

static uint8_t take(struct cur *c)
{
	assert_true(c->p < c->end);
	return *c->p++;
}

/* §20.2.4 PkgLength: the body's length after it, checked to fit. */
static size_t pkglen(struct cur *c)
{
	uint8_t lead = take(c);
	unsigned n = lead >> 6;
	size_t len = n ? lead & 0x0f : lead & 0x3f;

	for (unsigned i = 0; i < n; i++)
		len |= (size_t)take(c) << (4 + 8 * i);
	assert_true(len >= n + 1);
	len -= n + 1;
	assert_true(len <= (size_t)(c->end - c->p));
	return len;
}

/* §20.2.2 NameString, as text: "\\_SB_.PCI0", "GSIA". */
static void name_string(struct cur *c, char *out, size_t cap)
{
	size_t n = 0, segs = 1;

	while (c->p < c->end && (*c->p == '\\' || *c->p == '^')) {
		assert_true(n + 1 < cap);
		out[n++] = (char)take(c);
	}
	uint8_t b = take(c);
	if (b == 0x00)
		segs = 0;
	else if (b == 0x2e)
		segs = 2;
	else if (b == 0x2f)
		segs = take(c);
	else
		c->p--;
	for (size_t s = 0; s < segs; s++) {
		assert_true(n + 6 < cap);
		if (s)
			out[n++] = '.';
		for (int i = 0; i < 4; i++) {
			char ch = (char)take(c);
			assert_true((ch >= 'A' && ch <= 'Z') || ch == '_' || (i && ch >= '0' && ch <= '9'));
			out[n++] = ch;
		}
	}
	out[n] = '\0';
}

static uint64_t integer(struct cur *c)
{
	static const unsigned width[16] = { [0xa] = 1, [0xb] = 2, [0xc] = 4, [0xe] = 8 };
	uint8_t op = take(c);

	if (op == 0x00 || op == 0x01)
		return op;
	if (op == 0xff)
		return UINT64_MAX;
	assert_true(op < 16 && width[op]);
	assert_true((size_t)(c->end - c->p) >= width[op]);
	uint64_t v = le(c->p, width[op]);
	c->p += width[op];
	/* Ember's encoder always picks the shortest form. */
	assert_true(width[op] == 1 ? v > 1 : v >> (4 * width[op]));
	return v;
}

/* Skip one data object (or name) and say what it was. */
static char skip_object(struct cur *c)
{
	uint8_t op = *c->p;
	char name[64];

	if (op == 0x0d) {
		while (take(c))
			;
		return 's';
	}
	if (op == 0x11 || op == 0x12) {
		take(c);
		c->p += pkglen(c);
		return op == 0x11 ? 'b' : 'p';
	}
	if (op == '\\' || op == '^' || op == '_' || (op >= 'A' && op <= 'Z') || op == 0x2e ||
	    op == 0x2f) {
		name_string(c, name, sizeof(name));
		return 'n';
	}
	integer(c);
	return 'i';
}

static void join(char *out, size_t cap, const char *scope, const char *name)
{
	if (name[0] == '\\')
		snprintf(out, cap, "%s", name);
	else
		snprintf(out, cap, "%s%s%s", scope, strcmp(scope, "\\") ? "." : "", name);
}

static void add(char kind, const char *path, struct cur data)
{
	assert_true(nobjs < MAX_OBJS);
	for (unsigned i = 0; i < nobjs; i++)
		if (!strcmp(objs[i].path, path) && (kind != 'S' || objs[i].kind != 'S'))
			fail_msg("%s defined twice", path);
	objs[nobjs].kind = kind;
	objs[nobjs].data = data;
	snprintf(objs[nobjs].path, sizeof(objs[nobjs].path), "%s", path);
	nobjs++;
}

/* A term list of Name, Scope, Device and Method terms: all the DSDT has. */
static void walk(struct cur c, const char *scope)
{
	while (c.p < c.end) {
		uint8_t op = take(&c);
		char name[64], path[64];

		if (op == 0x08) {
			name_string(&c, name, sizeof(name));
			join(path, sizeof(path), scope, name);
			struct cur v = { c.p, c.end };
			skip_object(&c);
			v.end = c.p;
			add('N', path, v);
			continue;
		}
		char kind = op == 0x10 ? 'S' : op == 0x14 ? 'M' : 'D';
		if (op == 0x5b)
			assert_int_equal(take(&c), 0x82);
		else if (op != 0x10 && op != 0x14)
			fail_msg("unexpected opcode 0x%02x in %s", op, scope);
		size_t len = pkglen(&c);
		struct cur body = { c.p, c.p + len };
		c.p += len;
		name_string(&body, name, sizeof(name));
		join(path, sizeof(path), scope, name);
		add(kind, path, body);
		if (kind != 'M')
			walk(body, path);
	}
}

static void decode(uint64_t dsdt)
{
	uint32_t len = rd32(dsdt + 4);
	struct cur c = { gp(dsdt + HDR_LEN, len - HDR_LEN), NULL };

	assert_int_equal(gp(dsdt, 9)[8], 2);    /* revision 2: 64-bit integers */
	c.end = c.p + len - HDR_LEN;
	nobjs = 0;
	walk(c, "\\");
}

static const struct obj *find(const char *path)
{
	for (unsigned i = 0; i < nobjs; i++)
		if (!strcmp(objs[i].path, path))
			return &objs[i];
	return NULL;
}

static const struct obj *must_find(const char *path, char kind)
{
	const struct obj *o = find(path);

	if (!o)
		fail_msg("%s missing", path);
	assert_int_equal(o->kind, kind);
	return o;
}

static uint64_t int_named(const char *path)
{
	struct cur c = must_find(path, 'N')->data;
	uint64_t v = integer(&c);

	assert_ptr_equal(c.p, c.end);
	return v;
}

/* EISAID as an integer reads the compressed ID's bytes little-endian. */
static uint64_t eisaid(const char *id)
{
	uint32_t v = 0;

	for (int i = 0; i < 3; i++)
		v |= (uint32_t)(id[i] - 'A' + 1) << (26 - 5 * i);
	v |= (uint32_t)strtoul(id + 3, NULL, 16);
	return __builtin_bswap32(v);
}

/* The elements of the package named path (or at c). */
static unsigned package(struct cur *c, struct cur *elems)
{
	assert_int_equal(take(c), 0x12);
	size_t len = pkglen(c);
	elems->p = c->p;
	elems->end = c->p + len;
	c->p += len;
	return take(elems);
}

/* ---- resource templates (§6.4) ----------------------------------------- */

struct res {
	uint8_t tag;            /* small: type << 3 | len; large: 0x80 | type */
	const uint8_t *d;       /* the body, after tag (and length) */
	size_t len;
};

/* The descriptors of the buffer named path: one EndTag, last, with the
 * checksum that makes the template sum to zero. */
static unsigned resources(const char *path, struct res *r)
{
	struct cur c = must_find(path, 'N')->data;
	unsigned n = 0;

	assert_int_equal(take(&c), 0x11);
	size_t len = pkglen(&c);
	struct cur b = { c.p, c.p + len };
	assert_ptr_equal(b.end, c.end);
	uint64_t size = integer(&b);
	assert_int_equal(size, (uint64_t)(b.end - b.p));
	const uint8_t *start = b.p;
	for (;;) {
		uint8_t tag = take(&b);
		size_t dlen = tag & 0x80 ? (size_t)le(b.p, 2) : tag & 7;
		if (tag & 0x80)
			b.p += 2;
		assert_true(dlen <= (size_t)(b.end - b.p));
		if (tag == 0x79) {
			assert_int_equal(b.p + 1, b.end);       /* the end tag ends it */
			assert_int_equal(sum(start, (size_t)(b.end - start)), 0);
			return n;
		}
		assert_true(n < MAX_RES);
		r[n++] = (struct res){ .tag = tag, .d = b.p, .len = dlen };
		b.p += dlen;
	}
}

/* IO (Decode16, base, base, _, len) */
static void expect_io(const struct res *r, uint16_t base, uint8_t len)
{
	assert_int_equal(r->tag, 0x47);
	assert_int_equal(r->d[0], 1);
	assert_int_equal(le(r->d + 1, 2), base);
	assert_int_equal(le(r->d + 3, 2), base);
	assert_int_equal(r->d[6], len);
}

/* A produced address space of type (0 memory, 1 I/O, 2 bus) [min, max]. */
static void expect_space(const struct res *r, uint8_t tag, uint8_t type, uint64_t min, uint64_t max)
{
	unsigned w = tag == 0x88 ? 2 : tag == 0x87 ? 4 : 8;

	assert_int_equal(r->tag, tag);
	assert_int_equal(r->len, 3 + 5 * w);
	assert_int_equal(r->d[0], type);
	assert_int_equal(r->d[1], 0x0c);        /* producer, MinFixed, MaxFixed, PosDecode */
	assert_int_equal(le(r->d + 3, w), 0);   /* granularity */
	assert_int_equal(le(r->d + 3 + w, w), min);
	assert_int_equal(le(r->d + 3 + 2 * w, w), max);
	assert_int_equal(le(r->d + 3 + 3 * w, w), 0);   /* translation */
	assert_int_equal(le(r->d + 3 + 4 * w, w), max - min + 1);
}

/* Interrupt (ResourceConsumer, Level, ActiveHigh, Shared) {gsi} */
static void expect_level_high_shared(const struct res *r, uint32_t gsi)
{
	assert_int_equal(r->tag, 0x89);
	assert_int_equal(r->len, 6);
	assert_int_equal(r->d[0], 0x09);
	assert_int_equal(r->d[1], 1);
	assert_int_equal(le(r->d + 2, 4), gsi);
}

/* ---- the checks --------------------------------------------------------- */

static int setup(void **state)
{
	assert_int_equal(mem_create(&M, 64 * MiB), 0);
	return 0;
}

static int teardown(void **state)
{
	mem_destroy(&M);
	return 0;
}

static void check_pci0(void)
{
	struct res r[MAX_RES];

	must_find("\\_SB_", 'S');
	must_find("\\_SB_.PCI0", 'D');
	assert_int_equal(int_named("\\_SB_.PCI0._HID"), eisaid("PNP0A08"));
	assert_int_equal(int_named("\\_SB_.PCI0._CID"), eisaid("PNP0A03"));
	assert_int_equal(int_named("\\_SB_.PCI0._SEG"), 0);
	assert_int_equal(int_named("\\_SB_.PCI0._BBN"), 0);
	assert_int_equal(int_named("\\_SB_.PCI0._UID"), 0);
	/* The windows Ember assigns BARs from (README: 32-bit 0xc0000000-
	 * 0xe0000000, 64-bit at 512 GiB, I/O 0xc000-0xffff) and bus 0, the
	 * only bus the MCFG's ECAM covers. */
	assert_int_equal(resources("\\_SB_.PCI0._CRS", r), 5);
	expect_space(&r[0], 0x88, 2, 0, 0);
	expect_io(&r[1], 0xcf8, 8);
	expect_space(&r[2], 0x88, 1, 0xc000, 0xffff);
	assert_int_equal(r[2].d[2], 3);                 /* EntireRange */
	expect_space(&r[3], 0x87, 0, 0xc0000000, 0xdfffffff);
	expect_space(&r[4], 0x8a, 0, 512 * GiB, 576 * GiB - 1);
	assert_int_equal(r[3].d[2], 1);                 /* read-write, non-cacheable */
	assert_int_equal(r[4].d[2], 1);
}

/* One _PRT entry per slot, INTA# only, through the link of GSI 16 + slot % 8. */
static void check_prt(void)
{
	struct cur c = must_find("\\_SB_.PCI0._PRT", 'N')->data, entries, e;

	assert_int_equal(package(&c, &entries), PCI_SLOTS);
	for (unsigned slot = 0; slot < PCI_SLOTS; slot++) {
		char link[64], want[16];
		assert_int_equal(package(&entries, &e), 4);
		assert_int_equal(integer(&e), (uint64_t)slot << 16 | 0xffff);
		assert_int_equal(integer(&e), 0);
		name_string(&e, link, sizeof(link));
		snprintf(want, sizeof(want), "\\_SB_.GSI%c", 'A' + slot % 8);
		assert_string_equal(link, want);
		assert_int_equal(integer(&e), 0);
		assert_ptr_equal(e.p, e.end);
		assert_int_equal(IRQ_PCI_INTX(slot), 16 + slot % 8);    /* what vm_pci.c wires */
	}
	assert_ptr_equal(entries.p, entries.end);
}

static void check_links(void)
{
	for (unsigned i = 0; i < 8; i++) {
		char dev[32], path[48];
		struct res r[MAX_RES];
		snprintf(dev, sizeof(dev), "\\_SB_.GSI%c", 'A' + i);
		must_find(dev, 'D');
		snprintf(path, sizeof(path), "%s._HID", dev);
		assert_int_equal(int_named(path), eisaid("PNP0C0F"));
		snprintf(path, sizeof(path), "%s._UID", dev);
		assert_int_equal(int_named(path), i);
		snprintf(path, sizeof(path), "%s._CRS", dev);
		assert_int_equal(resources(path, r), 1);
		expect_level_high_shared(&r[0], 16 + i);
		snprintf(path, sizeof(path), "%s._PRS", dev);
		assert_int_equal(resources(path, r), 1);
		expect_level_high_shared(&r[0], 16 + i);
		/* Linux calls _SRS (one argument, the buffer) before using it. */
		snprintf(path, sizeof(path), "%s._SRS", dev);
		assert_int_equal(must_find(path, 'M')->data.p[0] & 7, 1);
		snprintf(path, sizeof(path), "%s._DIS", dev);
		assert_int_equal(must_find(path, 'M')->data.p[0] & 7, 0);
	}
	assert_null(find("\\_SB_.GSII"));
}

static void check_com1(void)
{
	struct res r[MAX_RES];

	must_find("\\_SB_.COM1", 'D');
	assert_int_equal(int_named("\\_SB_.COM1._HID"), eisaid("PNP0501"));
	assert_int_equal(resources("\\_SB_.COM1._CRS", r), 2);
	expect_io(&r[0], 0x3f8, 8);
	assert_int_equal(r[1].tag, 0x22);               /* IRQNoFlags () {4} */
	assert_int_equal(le(r[1].d, 2), 1u << 4);
}

/* Package (4) { a, a, 0, 0 } */
static void check_sleep(const char *path, unsigned slp_typ)
{
	struct cur c = must_find(path, 'N')->data, e;

	assert_int_equal(package(&c, &e), 4);
	assert_int_equal(integer(&e), slp_typ);
	assert_int_equal(integer(&e), slp_typ);
	assert_int_equal(integer(&e), 0);
	assert_int_equal(integer(&e), 0);
	assert_ptr_equal(e.p, e.end);
}

static void check_common(void)
{
	check_pci0();
	check_prt();
	check_links();
	check_com1();
	check_sleep("\\_S5_", 5);
	check_sleep("\\_S3_", 1);
}

/* A VM without the optional devices: none of them described. */
static void test_default(void **state)
{
	struct acpi_config cfg = { .ncpus = 1, .pci_ecam = true };

	decode(build(&cfg, NULL));
	check_common();
	assert_null(find("\\_SB_.RTC_"));
	assert_null(find("\\_SB_.FWCF"));
	must_find("\\_SB_.MBRD", 'D');
}

static void test_all_devices(void **state)
{
	struct acpi_config cfg = { .ncpus = 4, .pci_ecam = true, .rtc = true, .fw_cfg = true };
	struct res r[MAX_RES];
	struct cur c;

	decode(build(&cfg, NULL));
	check_common();
	/* --rtc: the CMOS ports, no IRQ (Ember's RTC raises none). */
	assert_int_equal(int_named("\\_SB_.RTC_._HID"), eisaid("PNP0B00"));
	assert_int_equal(resources("\\_SB_.RTC_._CRS", r), 1);
	expect_io(&r[0], 0x70, 2);
	/* --fw-cfg, as QEMU names it: selector and data port. */
	c = must_find("\\_SB_.FWCF._HID", 'N')->data;
	assert_int_equal(c.end - c.p, 10);
	assert_memory_equal(c.p, "\x0dQEMU0002", 10);
	assert_int_equal(int_named("\\_SB_.FWCF._STA"), 0xb);
	assert_int_equal(resources("\\_SB_.FWCF._CRS", r), 1);
	expect_io(&r[0], 0x510, 2);
	/* The ECAM, reserved as a motherboard resource. */
	assert_int_equal(int_named("\\_SB_.MBRD._HID"), eisaid("PNP0C02"));
	assert_int_equal(resources("\\_SB_.MBRD._CRS", r), 1);
	assert_int_equal(r[0].tag, 0x86);
	assert_int_equal(le(r[0].d + 1, 4), LAYOUT_PCI_ECAM);
	assert_int_equal(le(r[0].d + 5, 4), 1 * MiB);
}

static void test_no_ecam(void **state)
{
	struct acpi_config cfg = { .ncpus = 2 };

	decode(build(&cfg, NULL));
	check_common();
	assert_null(find("\\_SB_.MBRD"));
}

/* Every table reachable from the RSDP, as DIR/SIG.aml. */
static int dump(const char *dir)
{
	struct acpi_config cfg = { .ncpus = 4, .pci_ecam = true, .rtc = true, .fw_cfg = true };
	uint64_t rsdp, tables[8];
	unsigned n = 0;

	assert_int_equal(mem_create(&M, 64 * MiB), 0);
	tables[n++] = build(&cfg, &rsdp);
	uint64_t xsdt = le(gp(rsdp + 24, 8), 8);
	for (uint32_t off = HDR_LEN; off < rd32(xsdt + 4) && n < 8; off += 8)
		tables[n++] = le(gp(xsdt + off, 8), 8);
	for (unsigned i = 0; i < n; i++) {
		char path[4096];
		const uint8_t *sig = gp(tables[i], 4);
		uint32_t len = rd32(tables[i] + 4);
		snprintf(path, sizeof(path), "%s/%.4s.aml", dir, (const char *)sig);
		FILE *f = fopen(path, "wb");
		if (!f || fwrite(gp(tables[i], len), 1, len, f) != len || fclose(f)) {
			perror(path);
			return 1;
		}
	}
	mem_destroy(&M);
	return 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_default, setup, teardown),
		cmocka_unit_test_setup_teardown(test_all_devices, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_ecam, setup, teardown),
	};

	if (argc == 3 && !strcmp(argv[1], "--dump"))
		return dump(argv[2]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
