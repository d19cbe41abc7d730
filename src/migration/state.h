/* The versioned state stream that snapshots and migration use (DESIGN
 * rule 2). A stream is a header and named sections ("cpu" instance 1,
 * version 1); a section holds typed fields (tag, type, length, value).
 * Every section carries a CRC-32 of its header and of its payload; the
 * reader checks magic, versions, lengths and both CRCs before any loader
 * sees a byte, and a mismatch is refused, never trusted. Loaders are
 * looked up by section name.
 *
 * Stream:   "EMBRSTAT" u32 format-version u32 0
 * Section:  u32 'SECT' char name[16] u32 instance u32 version u32 0
 *           u64 payload-length u32 payload-crc32 u32 header-crc32, payload
 * Field:    u16 tag u8 type u8 flags u32 length, value, zeros to 8 bytes
 * The last section is "end" with an empty payload. Little-endian. */
#ifndef EMBER_MIGRATION_STATE_H
#define EMBER_MIGRATION_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STATE_FORMAT_VERSION 1
#define STATE_NAME_MAX 16                 /* section name bytes, NUL-padded */
#define STATE_SECTION_MAX (64u << 20)     /* largest payload a reader accepts */

enum state_type { ST_U8 = 1, ST_U16, ST_U32, ST_U64, ST_BLOB };
/* A field expected to differ between two saves of the same paused guest
 * (clocks, timer counts): state_compare() skips its value. */
#define SF_VOLATILE 0x01

/* Where a writer's bytes go / a reader's come from. write/read move
 * exactly len bytes; 0 or -errno (read: -ENODATA at end of input). */
struct state_sink {
	int (*write)(void *opaque, const void *buf, size_t len);
	void *opaque;
};
struct state_source {
	int (*read)(void *opaque, void *buf, size_t len);
	void *opaque;
};

/* CRC-32 (zlib's polynomial and conventions: crc32(crc, p, len) with crc
 * 0 to start), continued from crc: the sections' checksum, also used for
 * snapshot memory chunks and migration messages. */
uint32_t state_crc32(uint32_t crc, const void *p, size_t len);

/* A growable memory buffer usable as both. */
struct state_buf {
	uint8_t *data;
	size_t len, cap, pos;
};
struct state_sink state_buf_sink(struct state_buf *b);
struct state_source state_buf_source(struct state_buf *b);   /* reads from pos */
void state_buf_free(struct state_buf *b);
struct state_sink state_fd_sink(int *fd);
struct state_source state_fd_source(int *fd);

struct state_writer {
	struct state_sink sink;
	struct state_buf sec;       /* the open section's payload */
	bool in_section;
	char name[STATE_NAME_MAX];
	uint32_t instance, version;
	int err;                    /* first error, sticky */
};

int state_writer_init(struct state_writer *w, struct state_sink sink);   /* writes the header */
int state_begin_section(struct state_writer *w, const char *name, uint32_t instance, uint32_t version);
void state_put_u8(struct state_writer *w, uint16_t tag, uint8_t v);
void state_put_u16(struct state_writer *w, uint16_t tag, uint16_t v);
void state_put_u32(struct state_writer *w, uint16_t tag, uint32_t v);
void state_put_u64(struct state_writer *w, uint16_t tag, uint64_t v);
void state_put_blob(struct state_writer *w, uint16_t tag, const void *p, size_t len);
/* Same, flagged SF_VOLATILE. */
void state_put_u64_volatile(struct state_writer *w, uint16_t tag, uint64_t v);
void state_put_u32_volatile(struct state_writer *w, uint16_t tag, uint32_t v);
int state_end_section(struct state_writer *w);
/* Appends the sections another writer put into b (a state_buf_sink), its
 * header left out: state taken earlier, written in its place here. */
int state_writer_append(struct state_writer *w, const struct state_buf *b);
/* Writes the "end" section; returns the first error of the whole stream. */
int state_writer_finish(struct state_writer *w);
void state_writer_destroy(struct state_writer *w);

/* One section's fields, handed to its loader. The getters check tag, type
 * and length; on a mismatch they return -EBADMSG and set msg. */
struct state_reader {
	const uint8_t *p;
	size_t len, pos;
	char name[STATE_NAME_MAX + 1];
	uint32_t instance, version;
	char msg[256];
};
int state_get_u8(struct state_reader *r, uint16_t tag, uint8_t *v);
int state_get_u16(struct state_reader *r, uint16_t tag, uint16_t *v);
int state_get_u32(struct state_reader *r, uint16_t tag, uint32_t *v);
int state_get_u64(struct state_reader *r, uint16_t tag, uint64_t *v);
/* Exactly len bytes. */
int state_get_blob(struct state_reader *r, uint16_t tag, void *buf, size_t len);
/* Any length; *p points into the section (valid during the load call). */
int state_get_blob_ref(struct state_reader *r, uint16_t tag, const void **p, size_t *len);
/* The tag of the next field, -1 at the end of the section. */
int state_peek_tag(const struct state_reader *r);
/* Sets msg ("what") for a loader's own check and returns -EINVAL. */
int state_fail(struct state_reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

struct state_loader {
	const char *name;
	uint32_t max_version;          /* newest version this Ember reads */
	int (*load)(void *opaque, struct state_reader *r);
	void *opaque;
};

/* Reads a whole stream, checking every section before handing it to the
 * loader of that name. A loader must read every field. 0 or -errno with a
 * one-line message in err ("section cpu[1]: ..."). */
int state_load(struct state_source src, const struct state_loader *loaders, size_t nloaders,
	       char *err, size_t errlen);

/* The same on a stream that goes on after "end" (a socket): stops after
 * the end section without looking further. */
int state_load_stream(struct state_source src, const struct state_loader *loaders, size_t nloaders,
		      char *err, size_t errlen);
/* A loader with this name gets every section no other loader names
 * (its max_version applies: use UINT32_MAX and check in the loader). */
#define STATE_ANY_SECTION "*"

/* Compares two streams section by section and field by field, skipping
 * the values of SF_VOLATILE fields. 0 when equal, 1 when they differ (the
 * first difference described in msg), -errno when one does not parse.
 * *volatile_skipped (may be NULL) counts the fields skipped. */
int state_compare(const struct state_buf *a, const struct state_buf *b, unsigned *volatile_skipped,
		  char *msg, size_t msglen);

#endif
