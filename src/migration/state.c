/* The state stream: writer, checked reader, loader dispatch, compare. */
#include "migration/state.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <isa-l/crc.h>

static const char stream_magic[8] = { 'E', 'M', 'B', 'R', 'S', 'T', 'A', 'T' };
#define SECTION_MAGIC 0x54434553u   /* "SECT" */
#define SECTION_HDR 48
#define FIELD_HDR 8
/* Field values are padded to 8 bytes so a loader may use them in place. */
#define PADDED(len) (((uint64_t)(len) + 7) & ~(uint64_t)7)

/* CRC-32 as zlib's crc32() computes it, with ISA-L's PCLMULQDQ code
 * (about ten times zlib's speed: every page of a migration passes through
 * it on both sides). */
static uint32_t crc(const void *p, size_t len)
{
	return state_crc32(0, p, len);
}

uint32_t state_crc32(uint32_t crc, const void *p, size_t len)
{
	const uint8_t *b = p;
	while (len) {
		uint64_t n = len > (1u << 30) ? (1u << 30) : len;
		crc = crc32_gzip_refl(crc, b, n);
		b += n;
		len -= n;
	}
	return crc;
}

/* ---- buffers and fds -------------------------------------------------- */

static int buf_reserve(struct state_buf *b, size_t more)
{
	if (more > SIZE_MAX - b->len)
		return -EOVERFLOW;
	size_t need = b->len + more;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	uint8_t *p = realloc(b->data, cap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

static int buf_append(struct state_buf *b, const void *p, size_t len)
{
	int r = buf_reserve(b, len);
	if (r)
		return r;
	if (len)
		memcpy(b->data + b->len, p, len);
	b->len += len;
	return 0;
}

static int buf_write(void *opaque, const void *p, size_t len)
{
	return buf_append(opaque, p, len);
}

static int buf_read(void *opaque, void *p, size_t len)
{
	struct state_buf *b = opaque;
	if (b->pos == b->len && len)
		return -ENODATA;
	if (len > b->len - b->pos)
		return -EPIPE;
	memcpy(p, b->data + b->pos, len);
	b->pos += len;
	return 0;
}

struct state_sink state_buf_sink(struct state_buf *b)
{
	return (struct state_sink){ buf_write, b };
}

struct state_source state_buf_source(struct state_buf *b)
{
	return (struct state_source){ buf_read, b };
}

void state_buf_free(struct state_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

static int fd_write(void *opaque, const void *p, size_t len)
{
	int fd = *(int *)opaque;
	const uint8_t *b = p;
	while (len) {
		ssize_t n = write(fd, b, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

static int fd_read(void *opaque, void *p, size_t len)
{
	int fd = *(int *)opaque;
	uint8_t *b = p;
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(fd, b + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return got ? -EPIPE : -ENODATA;
		got += (size_t)n;
	}
	return 0;
}

struct state_sink state_fd_sink(int *fd)
{
	return (struct state_sink){ fd_write, fd };
}

struct state_source state_fd_source(int *fd)
{
	return (struct state_source){ fd_read, fd };
}

/* ---- writer ------------------------------------------------------------ */

static void put_le32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put_le64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get_le32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get_le64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

int state_writer_init(struct state_writer *w, struct state_sink sink)
{
	memset(w, 0, sizeof(*w));
	w->sink = sink;
	uint8_t hdr[16];
	memcpy(hdr, stream_magic, 8);
	put_le32(hdr + 8, STATE_FORMAT_VERSION);
	put_le32(hdr + 12, 0);
	return w->err = sink.write(sink.opaque, hdr, sizeof(hdr));
}

int state_begin_section(struct state_writer *w, const char *name, uint32_t instance, uint32_t version)
{
	if (w->err)
		return w->err;
	if (w->in_section || strlen(name) >= STATE_NAME_MAX || !name[0])
		return w->err = -EINVAL;
	memset(w->name, 0, sizeof(w->name));
	memcpy(w->name, name, strlen(name));
	w->instance = instance;
	w->version = version;
	w->sec.len = 0;
	w->in_section = true;
	return 0;
}

static void put_field(struct state_writer *w, uint16_t tag, uint8_t type, uint8_t flags,
		      const void *p, size_t len)
{
	if (w->err)
		return;
	if (!w->in_section || len > UINT32_MAX) {
		w->err = -EINVAL;
		return;
	}
	uint8_t h[FIELD_HDR];
	memcpy(h, &tag, 2);
	h[2] = type;
	h[3] = flags;
	put_le32(h + 4, (uint32_t)len);
	static const uint8_t pad[8];
	int r = buf_append(&w->sec, h, sizeof(h));
	if (!r)
		r = buf_append(&w->sec, p, len);
	if (!r)
		r = buf_append(&w->sec, pad, (size_t)(PADDED(len) - len));
	if (r)
		w->err = r;
}

void state_put_u8(struct state_writer *w, uint16_t tag, uint8_t v) { put_field(w, tag, ST_U8, 0, &v, 1); }
void state_put_u16(struct state_writer *w, uint16_t tag, uint16_t v) { put_field(w, tag, ST_U16, 0, &v, 2); }
void state_put_u32(struct state_writer *w, uint16_t tag, uint32_t v) { put_field(w, tag, ST_U32, 0, &v, 4); }
void state_put_u64(struct state_writer *w, uint16_t tag, uint64_t v) { put_field(w, tag, ST_U64, 0, &v, 8); }
void state_put_blob(struct state_writer *w, uint16_t tag, const void *p, size_t len)
{
	put_field(w, tag, ST_BLOB, 0, p, len);
}
void state_put_u64_volatile(struct state_writer *w, uint16_t tag, uint64_t v)
{
	put_field(w, tag, ST_U64, SF_VOLATILE, &v, 8);
}
void state_put_u32_volatile(struct state_writer *w, uint16_t tag, uint32_t v)
{
	put_field(w, tag, ST_U32, SF_VOLATILE, &v, 4);
}

int state_end_section(struct state_writer *w)
{
	if (w->err)
		return w->err;
	if (!w->in_section)
		return w->err = -EINVAL;
	if (w->sec.len > STATE_SECTION_MAX)
		return w->err = -EFBIG;
	uint8_t h[SECTION_HDR];
	put_le32(h, SECTION_MAGIC);
	memcpy(h + 4, w->name, STATE_NAME_MAX);
	put_le32(h + 20, w->instance);
	put_le32(h + 24, w->version);
	put_le32(h + 28, 0);
	put_le64(h + 32, w->sec.len);
	put_le32(h + 40, crc(w->sec.data, w->sec.len));
	put_le32(h + 44, crc(h, 44));
	w->in_section = false;
	int r = w->sink.write(w->sink.opaque, h, sizeof(h));
	if (!r && w->sec.len)
		r = w->sink.write(w->sink.opaque, w->sec.data, w->sec.len);
	return w->err = r;
}

int state_writer_append(struct state_writer *w, const struct state_buf *b)
{
	if (w->err)
		return w->err;
	if (w->in_section || b->len < 16 || memcmp(b->data, stream_magic, 8))
		return w->err = -EINVAL;
	return w->err = b->len > 16 ? w->sink.write(w->sink.opaque, b->data + 16, b->len - 16) : 0;
}

int state_writer_finish(struct state_writer *w)
{
	if (!state_begin_section(w, "end", 0, 1))
		state_end_section(w);
	return w->err;
}

void state_writer_destroy(struct state_writer *w)
{
	state_buf_free(&w->sec);
}

/* ---- reader -------------------------------------------------------------- */

static int rfail(struct state_reader *r, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int rfail(struct state_reader *r, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
	va_end(ap);
	return err;
}

int state_fail(struct state_reader *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* Parses the field header at r->pos; checks it lies inside the section. */
static int next_field(const struct state_reader *r, uint16_t *tag, uint8_t *type, uint8_t *flags,
		      uint32_t *len)
{
	if (r->len - r->pos < FIELD_HDR)
		return -ENODATA;
	const uint8_t *h = r->p + r->pos;
	memcpy(tag, h, 2);
	*type = h[2];
	*flags = h[3];
	*len = get_le32(h + 4);
	if (PADDED(*len) > r->len - r->pos - FIELD_HDR)
		return -EBADMSG;
	return 0;
}

int state_peek_tag(const struct state_reader *r)
{
	uint16_t tag;
	uint8_t type, flags;
	uint32_t len;
	return next_field(r, &tag, &type, &flags, &len) ? -1 : tag;
}

static int get_field(struct state_reader *r, uint16_t want_tag, uint8_t want_type, const void **p,
		     uint32_t *len)
{
	uint16_t tag;
	uint8_t type, flags;
	int e = next_field(r, &tag, &type, &flags, len);
	if (e == -ENODATA)
		return rfail(r, -EBADMSG, "field %u missing (section ends)", want_tag);
	if (e)
		return rfail(r, -EBADMSG, "field %u: length %u runs past the section", tag, *len);
	if (tag != want_tag)
		return rfail(r, -EBADMSG, "expected field %u, found field %u", want_tag, tag);
	if (type != want_type)
		return rfail(r, -EBADMSG, "field %u: type %u, expected %u", tag, type, want_type);
	*p = r->p + r->pos + FIELD_HDR;
	r->pos += FIELD_HDR + (size_t)PADDED(*len);
	return 0;
}

static int get_fixed(struct state_reader *r, uint16_t tag, uint8_t type, void *v, uint32_t size)
{
	const void *p;
	uint32_t len;
	int e = get_field(r, tag, type, &p, &len);
	if (e)
		return e;
	if (len != size)
		return rfail(r, -EBADMSG, "field %u: length %u, expected %u", tag, len, size);
	memcpy(v, p, size);
	return 0;
}

int state_get_u8(struct state_reader *r, uint16_t tag, uint8_t *v) { return get_fixed(r, tag, ST_U8, v, 1); }
int state_get_u16(struct state_reader *r, uint16_t tag, uint16_t *v) { return get_fixed(r, tag, ST_U16, v, 2); }
int state_get_u32(struct state_reader *r, uint16_t tag, uint32_t *v) { return get_fixed(r, tag, ST_U32, v, 4); }
int state_get_u64(struct state_reader *r, uint16_t tag, uint64_t *v) { return get_fixed(r, tag, ST_U64, v, 8); }

int state_get_blob(struct state_reader *r, uint16_t tag, void *buf, size_t len)
{
	if (len > UINT32_MAX)
		return rfail(r, -EINVAL, "field %u: too long", tag);
	return get_fixed(r, tag, ST_BLOB, buf, (uint32_t)len);
}

int state_get_blob_ref(struct state_reader *r, uint16_t tag, const void **p, size_t *len)
{
	uint32_t l;
	int e = get_field(r, tag, ST_BLOB, p, &l);
	if (!e)
		*len = l;
	return e;
}

/* ---- sections -------------------------------------------------------------- */

struct section {
	char name[STATE_NAME_MAX + 1];
	uint32_t instance, version;
	uint8_t *payload;
	size_t len;
};

static int errf(char *err, size_t len, int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int errf(char *err, size_t len, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return code;
}

static int read_stream_header(struct state_source *src, char *err, size_t errlen)
{
	uint8_t h[16];
	int r = src->read(src->opaque, h, sizeof(h));
	if (r)
		return errf(err, errlen, -EBADMSG, "not an Ember state stream (%s)",
			    r == -ENODATA ? "empty" : r == -EPIPE ? "truncated header" : strerror(-r));
	if (memcmp(h, stream_magic, 8))
		return errf(err, errlen, -EBADMSG, "not an Ember state stream (bad magic)");
	uint32_t v = get_le32(h + 8);
	if (v != STATE_FORMAT_VERSION)
		return errf(err, errlen, -EPROTO, "state stream format %u, this Ember reads %u", v,
			    STATE_FORMAT_VERSION);
	if (get_le32(h + 12))
		return errf(err, errlen, -EBADMSG, "state stream header has unknown flags %#x", get_le32(h + 12));
	return 0;
}

/* Reads and checks one section; the payload is malloc'd. */
static int read_section(struct state_source *src, struct section *s, char *err, size_t errlen)
{
	uint8_t h[SECTION_HDR];
	memset(s, 0, sizeof(*s));
	int r = src->read(src->opaque, h, sizeof(h));
	if (r == -ENODATA || r == -EPIPE)
		return errf(err, errlen, -EBADMSG, "stream truncated: no end section");
	if (r)
		return errf(err, errlen, r, "reading the stream: %s", strerror(-r));
	if (get_le32(h) != SECTION_MAGIC)
		return errf(err, errlen, -EBADMSG, "corrupt stream: bad section magic");
	if (get_le32(h + 44) != crc(h, 44))
		return errf(err, errlen, -EBADMSG, "corrupt stream: section header checksum mismatch");
	memcpy(s->name, h + 4, STATE_NAME_MAX);
	s->name[STATE_NAME_MAX] = '\0';
	s->instance = get_le32(h + 20);
	s->version = get_le32(h + 24);
	uint64_t len = get_le64(h + 32);
	if (len > STATE_SECTION_MAX)
		return errf(err, errlen, -EBADMSG, "section %s[%u]: %llu bytes is more than the %u allowed",
			    s->name, s->instance, (unsigned long long)len, STATE_SECTION_MAX);
	s->len = (size_t)len;
	s->payload = malloc(s->len ? s->len : 1);
	if (!s->payload)
		return errf(err, errlen, -ENOMEM, "section %s: out of memory", s->name);
	r = s->len ? src->read(src->opaque, s->payload, s->len) : 0;
	if (r) {
		free(s->payload);
		s->payload = NULL;
		return errf(err, errlen, -EBADMSG, "section %s[%u]: truncated", s->name, s->instance);
	}
	if (get_le32(h + 40) != crc(s->payload, s->len)) {
		free(s->payload);
		s->payload = NULL;
		return errf(err, errlen, -EBADMSG, "section %s[%u]: payload checksum mismatch (corrupt)",
			    s->name, s->instance);
	}
	return 0;
}

static bool is_end(const struct section *s)
{
	return !strcmp(s->name, "end");
}

static int load_stream(struct state_source src, const struct state_loader *loaders, size_t nloaders,
		       bool check_trailer, char *err, size_t errlen)
{
	int r = read_stream_header(&src, err, errlen);
	while (!r) {
		struct section s;
		if ((r = read_section(&src, &s, err, errlen)))
			break;
		if (is_end(&s)) {
			r = s.len ? errf(err, errlen, -EBADMSG, "end section is not empty") : 0;
			free(s.payload);
			if (!r && check_trailer) {
				uint8_t extra;
				if (src.read(src.opaque, &extra, 1) != -ENODATA)
					r = errf(err, errlen, -EBADMSG, "data after the end section");
			}
			return r;
		}
		const struct state_loader *l = NULL;
		for (size_t i = 0; i < nloaders; i++)
			if (!strcmp(loaders[i].name, s.name))
				l = &loaders[i];
		for (size_t i = 0; i < nloaders && !l; i++)
			if (!strcmp(loaders[i].name, STATE_ANY_SECTION))
				l = &loaders[i];
		if (!l)
			r = errf(err, errlen, -ENOENT, "unknown section '%s' in the stream", s.name);
		else if (s.version == 0 || s.version > l->max_version)
			r = errf(err, errlen, -EPROTO, "section %s[%u] version %u: this Ember reads up to %u",
				 s.name, s.instance, s.version, l->max_version);
		if (!r) {
			struct state_reader rd = { .p = s.payload, .len = s.len, .instance = s.instance,
						   .version = s.version };
			memcpy(rd.name, s.name, sizeof(rd.name));
			r = l->load(l->opaque, &rd);
			if (!r && rd.pos != rd.len)
				r = state_fail(&rd, "%zu bytes left unread", rd.len - rd.pos);
			if (r)
				errf(err, errlen, r, "section %s[%u]: %s", s.name, s.instance,
				     rd.msg[0] ? rd.msg : strerror(-r));
		}
		free(s.payload);
	}
	return r;
}

int state_load(struct state_source src, const struct state_loader *loaders, size_t nloaders,
	       char *err, size_t errlen)
{
	return load_stream(src, loaders, nloaders, true, err, errlen);
}

int state_load_stream(struct state_source src, const struct state_loader *loaders, size_t nloaders,
		      char *err, size_t errlen)
{
	return load_stream(src, loaders, nloaders, false, err, errlen);
}

/* ---- compare ------------------------------------------------------------------ */

static int compare_fields(const struct section *a, const struct section *b, unsigned *skipped,
			  char *msg, size_t msglen)
{
	struct state_reader ra = { .p = a->payload, .len = a->len };
	struct state_reader rb = { .p = b->payload, .len = b->len };
	for (unsigned n = 0;; n++) {
		uint16_t ta = 0, tb = 0;
		uint8_t ya = 0, yb = 0, fa = 0, fb = 0;
		uint32_t la = 0, lb = 0;
		int ea = next_field(&ra, &ta, &ya, &fa, &la), eb = next_field(&rb, &tb, &yb, &fb, &lb);
		if (ea == -ENODATA && eb == -ENODATA)
			return 0;
		if (ea == -EBADMSG || eb == -EBADMSG || (ea == -ENODATA) != (eb == -ENODATA) ||
		    (ea == -ENODATA && ra.pos != ra.len) || (eb == -ENODATA && rb.pos != rb.len))
			return errf(msg, msglen, 1, "section %s[%u]: field #%u: the layouts differ", a->name,
				    a->instance, n);
		if (ta != tb || ya != yb || la != lb || fa != fb)
			return errf(msg, msglen, 1, "section %s[%u]: field #%u: tag/type/length %u/%u/%u vs %u/%u/%u",
				    a->name, a->instance, n, ta, ya, la, tb, yb, lb);
		const uint8_t *pa = ra.p + ra.pos + FIELD_HDR, *pb = rb.p + rb.pos + FIELD_HDR;
		if (fa & SF_VOLATILE) {
			if (skipped)
				(*skipped)++;
		} else if (memcmp(pa, pb, la)) {
			uint32_t off = 0;
			while (pa[off] == pb[off])
				off++;
			return errf(msg, msglen, 1, "section %s[%u]: field %u differs at byte %u (%#x vs %#x)",
				    a->name, a->instance, ta, off, pa[off], pb[off]);
		}
		ra.pos += FIELD_HDR + (size_t)PADDED(la);
		rb.pos += FIELD_HDR + (size_t)PADDED(lb);
	}
}

int state_compare(const struct state_buf *a, const struct state_buf *b, unsigned *volatile_skipped,
		  char *msg, size_t msglen)
{
	struct state_buf ca = *a, cb = *b;
	ca.pos = cb.pos = 0;
	struct state_source sa = state_buf_source(&ca), sb = state_buf_source(&cb);
	if (volatile_skipped)
		*volatile_skipped = 0;
	int r = read_stream_header(&sa, msg, msglen);
	if (!r)
		r = read_stream_header(&sb, msg, msglen);
	while (!r) {
		struct section x, y;
		if ((r = read_section(&sa, &x, msg, msglen)))
			break;
		if ((r = read_section(&sb, &y, msg, msglen))) {
			free(x.payload);
			break;
		}
		if (strcmp(x.name, y.name) || x.instance != y.instance || x.version != y.version)
			r = errf(msg, msglen, 1, "section %s[%u] v%u vs %s[%u] v%u", x.name, x.instance,
				 x.version, y.name, y.instance, y.version);
		else
			r = compare_fields(&x, &y, volatile_skipped, msg, msglen);
		bool end = is_end(&x);
		free(x.payload);
		free(y.payload);
		if (!r && end)
			return 0;
	}
	return r;
}
