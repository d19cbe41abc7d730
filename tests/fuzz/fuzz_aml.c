/* libFuzzer target: the AML encoder (src/arch/x86/aml.c) round trip. The
 * input is a program of constructor calls with their arguments: leaves
 * (integers, strings, EISA IDs, name references, Name(), the resource
 * descriptors, once with a child, which none may have) appended to the
 * innermost open node, blocks (Package,
 * Scope, Device, Method, ResourceTemplate) opened and closed as a stack.
 * The harness keeps its own account of what each call asked for and
 * whether the ACPI 6.5 rules allow it (names of A-Z, 0-9 and _, at most
 * four characters a segment; ASCII strings; IRQs below 16; ...). A tree
 * the rules allow must encode, one they do not must fail (the error
 * sticks), and what encodes decodes (a walker of its own, §20) to exactly
 * what was asked: every PkgLength closing where its block ends, package
 * counts, BufferSize, descriptor lengths, the end tag's checksum. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/aml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, "check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); abort(); } } while (0)

/* ---- what was asked: a list of events in the order the bytes hold them -- */

enum ev { E_INT, E_STR, E_NAME, E_DECL, E_SCOPE, E_DEVICE, E_METHOD, E_PACKAGE, E_RES, E_DESC, E_END };

struct event {
	enum ev kind;
	uint64_t v;             /* E_INT value, E_METHOD args, E_PACKAGE count */
	char s[128];            /* name (as encoded: padded segments) or string */
};

#define MAX_EVENTS 2048
struct events {
	struct event e[MAX_EVENTS];
	unsigned n;
	bool full;
};

static struct event *add(struct events *l, enum ev k)
{
	if (l->n == MAX_EVENTS) {
		l->full = true;
		static struct event spare;
		return &spare;
	}
	struct event *e = &l->e[l->n++];
	memset(e, 0, sizeof(*e));
	e->kind = k;
	return e;
}

/* ---- the input -------------------------------------------------------------- */

struct in {
	const uint8_t *p;
	size_t left;
};

static uint8_t byte(struct in *in)
{
	if (!in->left)
		return 0;
	in->left--;
	return *in->p++;
}

/* 1, 2, 4 or 8 bytes, as the selector says: small values are common. */
static uint64_t number(struct in *in)
{
	unsigned n = 1u << (byte(in) & 3);
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)byte(in) << (8 * i);
	return v;
}

/* A C string of up to max bytes from the input (no NUL inside). */
static void text(struct in *in, char *out, size_t max)
{
	size_t n = byte(in) % (max + 1), k = 0;
	for (size_t i = 0; i < n; i++) {
		char c = (char)byte(in);
		if (c)
			out[k++] = c;
	}
	out[k] = '\0';
}

/* ---- the rules (ACPI 6.5 §20.2.2) and the encoding they give ------------------ */

static bool lead_char(char c) { return (c >= 'A' && c <= 'Z') || c == '_'; }
static bool name_char(char c) { return lead_char(c) || (c >= '0' && c <= '9'); }

/* path -> *enc as the decoder prints it ("\\_SB_.PCI0"); false when the
 * rules refuse it. */
static bool name_rule(const char *path, char *enc, size_t cap)
{
	const char *p = path;
	size_t k = 0;
	bool prefix = false;
	if (*p == '\\') {
		enc[k++] = *p++;
		prefix = true;
	} else {
		while (*p == '^' && k < cap - 1) {
			enc[k++] = *p++;
			prefix = true;
		}
	}
	if (!*p) {
		enc[k] = '\0';
		return prefix;
	}
	unsigned segs = 0;
	while (*p) {
		const char *s = p;
		while (*p && *p != '.')
			p++;
		size_t n = (size_t)(p - s);
		if (n == 0 || n > 4 || !lead_char(s[0]) || k + 6 > cap)
			return false;
		for (size_t i = 1; i < n; i++)
			if (!name_char(s[i]))
				return false;
		if (segs++)
			enc[k++] = '.';
		for (size_t i = 0; i < 4; i++)
			enc[k++] = i < n ? s[i] : '_';
		if (*p == '.' && !*++p)
			return false;   /* "A." */
	}
	enc[k] = '\0';
	return segs <= 255;
}

/* ---- the decoder ------------------------------------------------------------ */

struct cur {
	const uint8_t *p, *end;
};

static uint8_t take(struct cur *c)
{
	CHECK(c->p < c->end);
	return *c->p++;
}

static uint64_t le(struct cur *c, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)take(c) << (8 * i);
	return v;
}

/* §20.2.4: the block's end, checked inside the enclosing one. */
static const uint8_t *pkglen(struct cur *c)
{
	const uint8_t *start = c->p;
	uint8_t lead = take(c);
	unsigned n = lead >> 6;
	size_t len = n ? lead & 0xf : lead & 0x3f;
	if (n)
		CHECK(!(lead & 0x30));
	for (unsigned i = 0; i < n; i++)
		len |= (size_t)take(c) << (4 + 8 * i);
	/* The shortest form, as the encoder promises. */
	CHECK(n == 0 ? len < 0x40 : len >= 0x40 && (n == 1 || len >> (4 + 8 * (n - 1))));
	CHECK(len <= (size_t)(c->end - start));
	return start + len;
}

static void name_string(struct cur *c, char *out, size_t cap)
{
	size_t k = 0;
	uint8_t b = *c->p;
	if (b == '\\') {
		out[k++] = (char)take(c);
	} else {
		while (c->p < c->end && *c->p == '^' && k < cap - 1)
			out[k++] = (char)take(c);
	}
	b = take(c);
	unsigned segs;
	if (b == 0x00) {
		CHECK(k > 0);          /* NullName only after a prefix, as encoded */
		out[k] = '\0';
		return;
	} else if (b == 0x2e) {
		segs = 2;
	} else if (b == 0x2f) {
		segs = take(c);
		CHECK(segs > 2);
	} else {
		c->p--;
		segs = 1;
	}
	for (unsigned s = 0; s < segs; s++) {
		CHECK(k + 6 < cap);
		if (s)
			out[k++] = '.';
		for (unsigned i = 0; i < 4; i++) {
			char ch = (char)take(c);
			CHECK(i ? name_char(ch) : lead_char(ch));
			out[k++] = ch;
		}
	}
	out[k] = '\0';
}

static bool int_op(uint8_t b)
{
	return b == 0x00 || b == 0x01 || b == 0xff || b == 0x0a || b == 0x0b || b == 0x0c || b == 0x0e;
}

static uint64_t integer(struct cur *c)
{
	uint8_t b = take(c);
	switch (b) {
	case 0x00: return 0;
	case 0x01: return 1;
	case 0xff: return UINT64_MAX;
	case 0x0a: return le(c, 1);
	case 0x0b: return le(c, 2);
	case 0x0c: return le(c, 4);
	default: CHECK(b == 0x0e); return le(c, 8);
	}
}

static void term_list(struct cur *c, struct events *out);

static void resource_template(struct cur *c, const uint8_t *end, struct events *out)
{
	const uint8_t *start = c->p;
	CHECK(int_op(*c->p));
	uint64_t size = integer(c);
	const uint8_t *body = c->p;
	CHECK(size == (uint64_t)(end - body));
	add(out, E_RES);
	uint8_t sum = 0;
	for (const uint8_t *q = body; q < end; q++)
		sum += *q;
	CHECK(sum == 0);
	struct cur d = { body, end };
	for (;;) {
		const uint8_t *at = d.p;
		uint8_t tag = take(&d);
		size_t len = tag & 0x80 ? (size_t)le(&d, 2) : tag & 7;
		if (tag == 0x79) {
			CHECK(len == 1 && d.p + 1 == end);
			break;
		}
		CHECK(len <= (size_t)(end - d.p));
		d.p += len;
		add(out, E_DESC);
		(void)at;
	}
	c->p = end;
	add(out, E_END);
	(void)start;
}

/* One term of a term list or a package element. */
static void term(struct cur *c, struct events *out)
{
	uint8_t b = *c->p;
	struct event *e;
	if (int_op(b)) {
		add(out, E_INT)->v = integer(c);
	} else if (b == 0x0d) {
		take(c);
		e = add(out, E_STR);
		size_t k = 0;
		while ((b = take(c)))
			if (k < sizeof(e->s) - 1)
				e->s[k++] = (char)b;
		e->s[k] = '\0';
	} else if (b == 0x08) {
		take(c);
		e = add(out, E_DECL);
		name_string(c, e->s, sizeof(e->s));
		term(c, out);   /* its value */
	} else if (b == 0x10 || b == 0x14 || (b == 0x5b && c->p + 1 < c->end && c->p[1] == 0x82)) {
		take(c);
		if (b == 0x5b)
			take(c);
		const uint8_t *end = pkglen(c);
		struct cur in = { c->p, end };
		e = add(out, b == 0x10 ? E_SCOPE : b == 0x14 ? E_METHOD : E_DEVICE);
		name_string(&in, e->s, sizeof(e->s));
		if (b == 0x14)
			e->v = take(&in);
		term_list(&in, out);
		c->p = end;
		add(out, E_END);
	} else if (b == 0x12) {
		take(c);
		const uint8_t *end = pkglen(c);
		struct cur in = { c->p, end };
		unsigned n = take(&in), got = 0;
		add(out, E_PACKAGE)->v = n;
		while (in.p < end) {
			term(&in, out);
			got++;
		}
		CHECK(got == n);
		c->p = end;
		add(out, E_END);
	} else if (b == 0x11) {
		take(c);
		const uint8_t *end = pkglen(c);
		resource_template(c, end, out);
	} else {
		name_string(c, add(out, E_NAME)->s, sizeof(out->e[0].s));
	}
}

static void term_list(struct cur *c, struct events *out)
{
	while (c->p < c->end)
		term(c, out);
}

/* ---- the program ------------------------------------------------------------- */

#define DEPTH 16

struct frame {
	struct aml *node;
	enum ev kind;              /* E_SCOPE... or E_INT for the root */
	unsigned begin;            /* its event in `asked` */
	unsigned count;
	bool ok;                   /* the rules allow everything in it so far */
};

static struct frame stack[DEPTH + 1];
/* What was asked, in the order the bytes will hold it: nothing goes into
 * a node's parent while the node is open, so a block's events follow its
 * own and its siblings' in the order they were made. */
static struct events asked;
static bool trace;   /* FUZZ_AML_TRACE=1: each call and what the rules say of it */

/* Append a leaf (or a closed block) to the innermost open node, whose
 * events already hold the child's. */
static void put_child(struct frame *top, struct aml *child, bool ok, bool is_desc)
{
	bool in_res = top->kind == E_RES;
	top->node = aml_append(top->node, child);
	CHECK(top->node != NULL);
	top->ok = top->ok && ok && is_desc == in_res && !(top->kind == E_PACKAGE && top->count == 255);
	top->count++;
}

static bool span_ok(uint64_t min, uint64_t max, uint64_t width_max)
{
	min &= width_max;
	max &= width_max;
	return min <= max && max - min < width_max;
}

static void leaf(struct in *in, struct frame *top, uint8_t op)
{
#define ev asked
	struct event *e;
	struct aml *a = NULL;
	bool ok = true, is_desc = false;
	char buf[64];
	switch (op) {
	case 0: {
		uint64_t v = number(in);
		a = aml_int(v);
		add(&ev, E_INT)->v = v;
		break;
	}
	case 1:
		text(in, buf, 24);
		a = aml_string(buf);
		e = add(&ev, E_STR);
		snprintf(e->s, sizeof(e->s), "%s", buf);
		for (const char *p = buf; *p; p++)
			ok = ok && (unsigned char)*p <= 0x7f;
		break;
	case 2: {
		/* Mostly well-formed: PNP plus the input's hex digits. */
		uint8_t sel = byte(in);
		if (sel & 1) {
			text(in, buf, 9);
		} else {
			static const char hex[] = "0123456789ABCDEF";
			uint16_t d = (uint16_t)number(in);
			snprintf(buf, sizeof(buf), "%c%c%c%c%c%c%c", 'A' + sel / 2 % 26, 'N', 'P', hex[d >> 12],
				 hex[d >> 8 & 15], hex[d >> 4 & 15], hex[d & 15]);
		}
		a = aml_eisaid(buf);
		uint32_t v = 0;
		ok = strlen(buf) == 7;
		for (unsigned i = 0; ok && i < 3; i++) {
			ok = buf[i] >= 'A' && buf[i] <= 'Z';
			v |= (uint32_t)(buf[i] - 'A' + 1) << (26 - 5 * i);
		}
		for (unsigned i = 3; ok && i < 7; i++) {
			const char *h = strchr("0123456789ABCDEF", buf[i]);
			ok = buf[i] && h;
			if (ok)
				v |= (uint32_t)(h - "0123456789ABCDEF") << (4 * (6 - i));
		}
		add(&ev, E_INT)->v = __builtin_bswap32(v);
		break;
	}
	case 3:
		text(in, buf, 40);
		a = aml_name(buf);
		ok = name_rule(buf, add(&ev, E_NAME)->s, sizeof(e->s));
		break;
	case 4: {
		text(in, buf, 12);
		uint64_t v = number(in);
		a = aml_name_decl(buf, aml_int(v));
		ok = name_rule(buf, add(&ev, E_DECL)->s, sizeof(e->s));
		add(&ev, E_INT)->v = v;
		break;
	}
	default: {
		/* A descriptor; its bytes are checked by the unit tests, here
		 * that they come back whole where they were put. */
		is_desc = true;
		uint64_t x = number(in), y = number(in);
		unsigned k = op % 8;
		switch (k) {
		case 0: a = aml_io((uint16_t)x, (uint16_t)y, (uint8_t)(x >> 16), (uint8_t)(x >> 24)); break;
		case 1: a = aml_irq_no_flags((unsigned)(x % 20)); ok = x % 20 < 16; break;
		case 2: a = aml_interrupt((unsigned)(x & 0x1e), (uint32_t)y); ok = !(x & 0x10); break;
		case 3: a = aml_memory32_fixed((uint32_t)x, (uint32_t)y); break;
		/* min <= max, and the length max - min + 1 fits the width. */
		case 4: a = aml_word_bus_number((uint16_t)x, (uint16_t)y); ok = span_ok(x, y, 0xffff); break;
		case 5: a = aml_word_io((uint16_t)x, (uint16_t)y); ok = span_ok(x, y, 0xffff); break;
		case 6: a = aml_dword_memory((uint32_t)x, (uint32_t)y); ok = span_ok(x, y, 0xffffffff); break;
		default: a = aml_qword_memory(x, y); ok = span_ok(x, y, UINT64_MAX); break;
		}
		/* A descriptor takes no children: the error must stick. */
		if (op >= 13) {
			a = aml_append(a, aml_int(x));
			ok = false;
		}
		/* The bytes are taken from the encoding itself (a node knows
		 * them only once appended): the walk checks their framing. */
		add(&ev, E_DESC);
		break;
	}
	}
	CHECK(a != NULL);
	if (trace)
		fprintf(stderr, "fuzz_aml: leaf %u%s: %s\n", op, is_desc ? " (descriptor)" : "", ok ? "valid" : "invalid");
#undef ev
	put_child(top, a, ok, is_desc);
	if (trace && !top->ok)
		fprintf(stderr, "fuzz_aml:   its node is invalid now\n");
}

static void open_block(struct in *in, struct frame *f, uint8_t op)
{
	f->ok = true;
	f->count = 0;
	f->begin = asked.n;
	char buf[48];
	static const enum ev kinds[] = { E_PACKAGE, E_RES, E_SCOPE, E_DEVICE, E_METHOD };
	f->kind = kinds[op];
	struct event *e = add(&asked, f->kind);
	switch (op) {
	case 0: f->node = aml_package(); break;
	case 1: f->node = aml_resource_template(); break;
	default:
		text(in, buf, 20);
		f->ok = name_rule(buf, e->s, sizeof(e->s));
		if (op == 2) {
			f->node = aml_scope(buf);
		} else if (op == 3) {
			f->node = aml_device(buf);
		} else {
			e->v = byte(in) % 9;
			f->ok = f->ok && e->v <= 7;
			f->node = aml_method(buf, (unsigned)e->v);
		}
	}
	CHECK(f->node != NULL);
	if (trace)
		fprintf(stderr, "fuzz_aml: open %u \"%s\": %s\n", op, e->s, f->ok ? "valid" : "invalid");
}

/* Close the innermost block into its parent. */
static void close_block(struct frame *parent, struct frame *f)
{
	if (f->kind == E_PACKAGE && f->begin < asked.n)
		asked.e[f->begin].v = f->count;
	add(&asked, E_END);
	put_child(parent, f->node, f->ok, false);
	f->node = NULL;
}

static bool same(const struct event *want, const struct event *got)
{
	if (want->kind != got->kind)
		return false;
	switch (want->kind) {
	case E_INT: return want->v == got->v;
	case E_STR: case E_NAME: case E_DECL: case E_SCOPE: case E_DEVICE: return !strcmp(want->s, got->s);
	case E_METHOD: return !strcmp(want->s, got->s) && want->v == got->v;
	case E_PACKAGE: return want->v == got->v;
	default: return true;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size };
	unsigned depth = 0;
	trace = getenv("FUZZ_AML_TRACE") != NULL;
	stack[0].node = aml_new();
	stack[0].kind = E_INT;
	stack[0].ok = true;
	stack[0].count = 0;
	asked.n = 0;
	asked.full = false;
	CHECK(stack[0].node != NULL);
	while (in.left) {
		uint8_t op = byte(&in);
		if (op < 0x80) {
			leaf(&in, &stack[depth], op % 5);
		} else if (op < 0xa0 && depth < DEPTH) {
			/* Leaves into a descriptor, or a descriptor, by choice. */
			leaf(&in, &stack[depth], 5 + op % 16);
		} else if (op < 0xe0 && depth < DEPTH) {
			depth++;
			open_block(&in, &stack[depth], op % 5);
		} else if (depth) {
			close_block(&stack[depth - 1], &stack[depth]);
			depth--;
		}
	}
	while (depth) {
		close_block(&stack[depth - 1], &stack[depth]);
		depth--;
	}
	uint8_t *bytes = NULL;
	size_t len = 0;
	int r = aml_take(stack[0].node, &bytes, &len);
	if (trace)
		fprintf(stderr, "fuzz_aml: aml_take %d, the rules say %s\n", r, stack[0].ok ? "valid" : "invalid");
	CHECK(r == 0 || r == -EINVAL);
	CHECK((r == 0) == stack[0].ok);
	if (r)
		return 0;
	static struct events got;
	got.n = 0;
	got.full = false;
	struct cur c = { bytes, bytes + len };
	term_list(&c, &got);
	free(bytes);
	if (asked.full || got.full)
		return 0;
	CHECK(got.n == asked.n);
	for (unsigned i = 0; i < got.n; i++)
		CHECK(same(&asked.e[i], &got.e[i]));
	return 0;
}
