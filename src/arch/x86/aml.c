/* AML encoder: see aml.h. Section numbers are ACPI 6.5. */
#include "arch/x86/aml.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* §20.3 opcodes and prefixes used here. */
enum {
	ZERO_OP = 0x00, ONE_OP = 0x01, ONES_OP = 0xff,
	NAME_OP = 0x08, SCOPE_OP = 0x10, BUFFER_OP = 0x11, PACKAGE_OP = 0x12, METHOD_OP = 0x14,
	BYTE_PREFIX = 0x0a, WORD_PREFIX = 0x0b, DWORD_PREFIX = 0x0c, STRING_PREFIX = 0x0d,
	QWORD_PREFIX = 0x0e, EXT_OP_PREFIX = 0x5b, DEVICE_OP = 0x82,
	DUAL_NAME_PREFIX = 0x2e, MULTI_NAME_PREFIX = 0x2f, NULL_NAME = 0x00,
};

/* §6.4 resource descriptor tags. */
enum {
	RES_IRQ_NO_FLAGS = 0x22, RES_IO = 0x47, RES_END_TAG = 0x79,
	RES_MEMORY32_FIXED = 0x86, RES_DWORD_SPACE = 0x87, RES_WORD_SPACE = 0x88,
	RES_EXT_INTERRUPT = 0x89, RES_QWORD_SPACE = 0x8a,
};

enum kind {
	K_TERMS,        /* bytes as they are: data, names, term lists */
	K_BLOCK,        /* op, PkgLength, bytes: Scope, Device, Method */
	K_PACKAGE,      /* PackageOp, PkgLength, NumElements, elements */
	K_RESOURCES,    /* BufferOp, PkgLength, BufferSize, descriptors, EndTag */
	K_DESC,         /* one resource descriptor: only inside K_RESOURCES */
};

struct aml {
	enum kind kind;
	uint8_t op[2];
	unsigned nop;
	unsigned count;         /* K_PACKAGE: elements so far */
	int err;                /* first error; the bytes are then meaningless */
	uint8_t *buf;
	size_t len, cap;
};

static void fail(struct aml *a, int err)
{
	if (!a->err)
		a->err = err;
}

static void put(struct aml *a, const void *p, size_t n)
{
	if (a->err || !n)
		return;
	if (n > a->cap - a->len) {
		size_t cap = a->cap ? a->cap : 64;
		while (cap - a->len < n)
			cap *= 2;
		uint8_t *b = realloc(a->buf, cap);
		if (!b) {
			fail(a, -ENOMEM);
			return;
		}
		a->buf = b;
		a->cap = cap;
	}
	memcpy(a->buf + a->len, p, n);
	a->len += n;
}

static void put8(struct aml *a, uint8_t v)
{
	put(a, &v, 1);
}

/* n bytes of v, little-endian (AML and descriptors both are). */
static void put_le(struct aml *a, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		put8(a, (uint8_t)(v >> (8 * i)));
}

static struct aml *node(enum kind k)
{
	struct aml *a = calloc(1, sizeof(*a));
	if (a)
		a->kind = k;
	return a;
}

/* §20.2.4 PkgLength: counts itself and the body. One byte up to 63, else
 * the lead byte's bits 7-6 say how many bytes follow, bits 3-0 hold the
 * low nibble and each following byte the next 8 bits. */
static void put_pkglen(struct aml *a, size_t body)
{
	if (body + 1 < 0x40) {
		put8(a, (uint8_t)(body + 1));
		return;
	}
	for (unsigned n = 2; n <= 4; n++) {
		size_t total = body + n;
		if (total >> (4 + 8 * (n - 1)))
			continue;
		put8(a, (uint8_t)((n - 1) << 6 | (total & 0xf)));
		put_le(a, total >> 4, n - 1);
		return;
	}
	fail(a, -EINVAL);       /* 2^28 bytes: not ours to build */
}

static bool seg_char(char c, bool lead)
{
	return (c >= 'A' && c <= 'Z') || c == '_' || (!lead && c >= '0' && c <= '9');
}

/* §20.2.2 NameString: '\' or '^'s, then no segment (NullName), one, two
 * (DualNamePrefix) or more (MultiNamePrefix, count). */
static void put_name(struct aml *a, const char *path)
{
	const char *p = path;
	bool prefix = *p == '\\' || *p == '^';
	if (*p == '\\')
		put8(a, (uint8_t)*p++);
	else
		while (*p == '^')
			put8(a, (uint8_t)*p++);
	size_t segs = *p ? 1 : 0;
	for (const char *q = p; *q; q++)
		segs += *q == '.';
	if (segs == 0 && prefix)
		put8(a, NULL_NAME);
	else if (segs == 2)
		put8(a, DUAL_NAME_PREFIX);
	else if (segs > 2 && segs <= 255) {
		put8(a, MULTI_NAME_PREFIX);
		put8(a, (uint8_t)segs);
	} else if (segs != 1) {
		fail(a, -EINVAL);
		return;
	}
	for (size_t s = 0; s < segs; s++) {
		char seg[4] = { '_', '_', '_', '_' };
		size_t n = 0;
		for (; *p && *p != '.'; p++, n++) {
			if (n == 4 || !seg_char(*p, n == 0)) {
				fail(a, -EINVAL);
				return;
			}
			seg[n] = *p;
		}
		if (!n) {
			fail(a, -EINVAL);
			return;
		}
		put(a, seg, 4);
		p += *p == '.';
	}
}

struct aml *aml_new(void)
{
	return node(K_TERMS);
}

struct aml *aml_int(uint64_t v)
{
	struct aml *a = node(K_TERMS);
	if (!a)
		return NULL;
	if (v == 0 || v == 1)
		put8(a, v ? ONE_OP : ZERO_OP);
	else if (v == UINT64_MAX)
		put8(a, ONES_OP);
	else {
		static const uint8_t prefix[] = { BYTE_PREFIX, WORD_PREFIX, 0, DWORD_PREFIX,
						  0, 0, 0, QWORD_PREFIX };
		unsigned n = v <= 0xff ? 1 : v <= 0xffff ? 2 : v <= 0xffffffff ? 4 : 8;
		put8(a, prefix[n - 1]);
		put_le(a, v, n);
	}
	return a;
}

struct aml *aml_string(const char *s)
{
	struct aml *a = node(K_TERMS);
	if (!a)
		return NULL;
	put8(a, STRING_PREFIX);
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p > 0x7f)
			fail(a, -EINVAL);       /* §20.2.3: AsciiCharList */
	put(a, s, strlen(s) + 1);
	return a;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* §19.3.4 EISAID: three letters of 5 bits (A = 1) and four hex digits, as
 * a big-endian DWord. */
struct aml *aml_eisaid(const char *id)
{
	struct aml *a = node(K_TERMS);
	if (!a)
		return NULL;
	uint32_t v = 0;
	bool ok = strlen(id) == 7;
	for (unsigned i = 0; ok && i < 3; i++) {
		ok = id[i] >= 'A' && id[i] <= 'Z';
		v |= (uint32_t)(id[i] - 'A' + 1) << (26 - 5 * i);
	}
	for (unsigned i = 3; ok && i < 7; i++) {
		int d = hex_digit(id[i]);
		ok = d >= 0;
		v |= (uint32_t)d << (4 * (6 - i));
	}
	if (!ok)
		fail(a, -EINVAL);
	put8(a, DWORD_PREFIX);
	for (int i = 3; i >= 0; i--)
		put8(a, (uint8_t)(v >> (8 * i)));
	return a;
}

struct aml *aml_name(const char *path)
{
	struct aml *a = node(K_TERMS);
	if (a)
		put_name(a, path);
	return a;
}

struct aml *aml_package(void)
{
	return node(K_PACKAGE);
}

struct aml *aml_name_decl(const char *name, struct aml *value)
{
	struct aml *a = node(K_TERMS);
	if (!a) {
		aml_free(value);
		return NULL;
	}
	put8(a, NAME_OP);
	put_name(a, name);
	return aml_append(a, value);
}

static struct aml *block(uint8_t op0, uint8_t op1, const char *name)
{
	struct aml *a = node(K_BLOCK);
	if (!a)
		return NULL;
	a->op[0] = op0;
	a->op[1] = op1;
	a->nop = op1 ? 2 : 1;
	put_name(a, name);
	return a;
}

struct aml *aml_scope(const char *path)
{
	return block(SCOPE_OP, 0, path);
}

struct aml *aml_device(const char *name)
{
	return block(EXT_OP_PREFIX, DEVICE_OP, name);
}

struct aml *aml_method(const char *name, unsigned nargs)
{
	struct aml *a = block(METHOD_OP, 0, name);
	if (a && nargs > 7)
		fail(a, -EINVAL);
	if (a)
		put8(a, (uint8_t)(nargs & 7));  /* MethodFlags: ArgCount, NotSerialized, SyncLevel 0 */
	return a;
}

struct aml *aml_resource_template(void)
{
	return node(K_RESOURCES);
}

static struct aml *desc(uint8_t tag)
{
	struct aml *a = node(K_DESC);
	if (a)
		put8(a, tag);
	return a;
}

/* §6.4.2.5 I/O Port Descriptor */
struct aml *aml_io(uint16_t min, uint16_t max, uint8_t align, uint8_t len)
{
	struct aml *a = desc(RES_IO);
	if (!a)
		return NULL;
	put8(a, 1);                     /* decodes 16 address bits */
	put_le(a, min, 2);
	put_le(a, max, 2);
	put8(a, align);
	put8(a, len);
	return a;
}

/* §6.4.2.1 IRQ Descriptor, the 2-byte form: a mask of ISA IRQs. */
struct aml *aml_irq_no_flags(unsigned irq)
{
	struct aml *a = desc(RES_IRQ_NO_FLAGS);
	if (!a)
		return NULL;
	if (irq >= 16)
		fail(a, -EINVAL);
	put_le(a, 1u << (irq & 15), 2);
	return a;
}

/* §6.4.3.6 Extended Interrupt Descriptor with one interrupt. */
struct aml *aml_interrupt(unsigned flags, uint32_t gsi)
{
	struct aml *a = desc(RES_EXT_INTERRUPT);
	if (!a)
		return NULL;
	if (flags & ~(AML_INTR_EDGE | AML_INTR_ACTIVE_LOW | AML_INTR_SHARED))
		fail(a, -EINVAL);
	put_le(a, 6, 2);                /* length: flags, count, one DWord */
	put8(a, (uint8_t)(flags | 1));  /* bit 0: ResourceConsumer */
	put8(a, 1);
	put_le(a, gsi, 4);
	return a;
}

/* §6.4.3.4 32-Bit Fixed Memory Range Descriptor */
struct aml *aml_memory32_fixed(uint32_t base, uint32_t len)
{
	struct aml *a = desc(RES_MEMORY32_FIXED);
	if (!a)
		return NULL;
	put_le(a, 9, 2);
	put8(a, 1);                     /* read-write */
	put_le(a, base, 4);
	put_le(a, len, 4);
	return a;
}

/* §6.4.3.5 Address Space Resource Descriptors (QWord, DWord, Word: width
 * w bytes): type, general flags, type-specific flags, then granularity,
 * min, max, translation offset and length. */
enum { SPACE_MEMORY = 0, SPACE_IO = 1, SPACE_BUS = 2 };
#define SPACE_MIN_FIXED  (1u << 2)
#define SPACE_MAX_FIXED  (1u << 3)
#define SPACE_IO_ENTIRE  3u             /* _RNG: ISA and non-ISA ranges */
#define SPACE_MEM_RW     1u             /* read-write, non-cacheable */

static struct aml *addr_space(uint8_t tag, unsigned w, uint8_t type, uint8_t tflags,
			      uint64_t min, uint64_t max)
{
	struct aml *a = desc(tag);
	if (!a)
		return NULL;
	uint64_t len = max - min + 1;
	uint64_t limit = w == 8 ? UINT64_MAX : (1ULL << (8 * w)) - 1;
	if (min > max || !len || len > limit)
		fail(a, -EINVAL);
	put_le(a, 3 + 5 * w, 2);
	put8(a, type);
	put8(a, SPACE_MIN_FIXED | SPACE_MAX_FIXED);     /* producer, positive decode */
	put8(a, tflags);
	put_le(a, 0, w);
	put_le(a, min, w);
	put_le(a, max, w);
	put_le(a, 0, w);
	put_le(a, len, w);
	return a;
}

struct aml *aml_word_bus_number(uint16_t min, uint16_t max)
{
	return addr_space(RES_WORD_SPACE, 2, SPACE_BUS, 0, min, max);
}

struct aml *aml_word_io(uint16_t min, uint16_t max)
{
	return addr_space(RES_WORD_SPACE, 2, SPACE_IO, SPACE_IO_ENTIRE, min, max);
}

struct aml *aml_dword_memory(uint32_t min, uint32_t max)
{
	return addr_space(RES_DWORD_SPACE, 4, SPACE_MEMORY, SPACE_MEM_RW, min, max);
}

struct aml *aml_qword_memory(uint64_t min, uint64_t max)
{
	return addr_space(RES_QWORD_SPACE, 8, SPACE_MEMORY, SPACE_MEM_RW, min, max);
}

/* c's final encoding at the end of dst. */
static void encode(struct aml *dst, const struct aml *c)
{
	switch (c->kind) {
	case K_TERMS:
	case K_DESC:
		break;
	case K_BLOCK:
		put(dst, c->op, c->nop);
		put_pkglen(dst, c->len);
		break;
	case K_PACKAGE:
		put8(dst, PACKAGE_OP);
		put_pkglen(dst, 1 + c->len);
		put8(dst, (uint8_t)c->count);
		break;
	case K_RESOURCES: {
		/* §6.4.2.9 End Tag: the checksum makes the whole template,
		 * end tag included, sum to zero. */
		uint8_t sum = RES_END_TAG;
		for (size_t i = 0; i < c->len; i++)
			sum += c->buf[i];
		uint8_t end[2] = { RES_END_TAG, (uint8_t)-sum };
		struct aml *size = aml_int(c->len + sizeof(end));
		if (!size) {
			fail(dst, -ENOMEM);
			return;
		}
		put8(dst, BUFFER_OP);
		put_pkglen(dst, size->len + c->len + sizeof(end));
		put(dst, size->buf, size->len);
		put(dst, c->buf, c->len);
		put(dst, end, sizeof(end));
		aml_free(size);
		return;
	}
	}
	put(dst, c->buf, c->len);
}

struct aml *aml_append(struct aml *parent, struct aml *child)
{
	if (!parent) {
		aml_free(child);
		return NULL;
	}
	if (!child)
		fail(parent, -ENOMEM);
	else if (child->err)
		fail(parent, child->err);
	else if ((child->kind == K_DESC) != (parent->kind == K_RESOURCES) || parent->kind == K_DESC ||
		 (parent->kind == K_PACKAGE && parent->count == 255))
		fail(parent, -EINVAL);
	else {
		encode(parent, child);
		parent->count++;
	}
	aml_free(child);
	return parent;
}

struct aml *aml_append_all(struct aml *parent, struct aml *const *children, size_t n)
{
	for (size_t i = 0; i < n; i++)
		parent = aml_append(parent, children[i]);
	return parent;
}

int aml_take(struct aml *a, uint8_t **bytes, size_t *len)
{
	struct aml *out = aml_append(aml_new(), a);
	if (!out)
		return -ENOMEM;
	int err = out->err;
	if (!err && !out->buf && !(out->buf = malloc(1)))
		err = -ENOMEM;          /* an empty list: still a buffer to free */
	if (!err) {
		*bytes = out->buf;
		*len = out->len;
		out->buf = NULL;
	}
	aml_free(out);
	return err;
}

void aml_free(struct aml *a)
{
	if (a) {
		free(a->buf);
		free(a);
	}
}
