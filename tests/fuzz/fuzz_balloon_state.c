/* libFuzzer target: loading the "virtio-balloon" state section
 * (balloon.h), as a snapshot file or a migration peer would feed it. The
 * input is the backend's part of the section (the fields after the
 * transport's, tags from VIRTIO_STATE_BACKEND); the harness puts it behind
 * the transport fields of a real save of a fresh balloon, with valid
 * lengths and checksums, and loads that into a fresh balloon on 16 MiB of
 * guest RAM. Whatever the fields say, the load must be refused or leave a
 * device whose figures stay inside RAM; nothing may crash or touch memory
 * outside the input and the device. Seeds: tests/fuzz/make_seeds.py. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "devices/virtio/balloon.h"
#include "migration/state.h"

#define RAM (16u << 20)
#define STREAM_HDR 16            /* "EMBRSTAT", format version, 0 */
#define SECT_HDR 48

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct guest_mem mem;
static struct discard_map rec;
static uint8_t *tmpl;            /* a saved stream: header, balloon section, end */
static size_t prefix_len;        /* transport bytes of its payload */
static size_t end_off, end_len;  /* the "end" section */

static int f_alloc(struct msi_sink *s) { return 0; }
static int f_set(struct msi_sink *s, int h, uint64_t a, uint32_t d) { return 0; }
static void f_fire(struct msi_sink *s, int h) { }
static struct msi_sink sink = { f_alloc, f_set, f_fire, NULL };

static struct virtio_dev *fresh(void)
{
	struct virtio_env env = { .mem = &mem, .msi = &sink };
	struct balloon_opts o = { .deflate_on_oom = true, .reporting = true, .mode = BALLOON_DONTNEED };
	struct virtio_dev *vd = NULL;
	if (virtio_balloon_create(&env, &o, &rec, &vd))
		abort();
	return vd;
}

static uint32_t crc(const uint8_t *p, size_t n)
{
	return (uint32_t)crc32(crc32(0L, Z_NULL, 0), p, (uInt)n);
}

/* Save a fresh balloon once: where its backend fields start. */
static void init(void)
{
	if (mem_create(&mem, RAM) || discard_init(&rec, RAM))
		abort();
	struct virtio_dev *vd = fresh();
	const struct devstate_ops *ops = virtio_state_ops(vd);
	struct state_buf b = { 0 };
	struct state_writer w;
	if (state_writer_init(&w, state_buf_sink(&b)) || state_begin_section(&w, ops->name, 0, ops->version) ||
	    ops->save(vd, &w) || state_end_section(&w) || state_writer_finish(&w))
		abort();
	state_writer_destroy(&w);
	virtio_balloon_destroy(vd);
	uint64_t plen;
	memcpy(&plen, b.data + STREAM_HDR + 32, 8);
	const uint8_t *p = b.data + STREAM_HDR + SECT_HDR;
	for (size_t at = 0; at < plen;) {
		uint16_t tag;
		uint32_t len;
		memcpy(&tag, p + at, 2);
		memcpy(&len, p + at + 4, 4);
		if (tag >= VIRTIO_STATE_BACKEND) {
			prefix_len = at;
			break;
		}
		at += 8 + ((size_t)len + 7) / 8 * 8;
	}
	if (!prefix_len)
		abort();
	end_off = STREAM_HDR + SECT_HDR + plen;
	end_len = b.len - end_off;
	tmpl = b.data;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!tmpl)
		init();
	if (size > (1u << 20))
		return 0;
	size_t plen = prefix_len + size, total = STREAM_HDR + SECT_HDR + plen + end_len;
	uint8_t *s = malloc(total);
	if (!s)
		return 0;
	memcpy(s, tmpl, STREAM_HDR + SECT_HDR + prefix_len);
	memcpy(s + STREAM_HDR + SECT_HDR + prefix_len, data, size);
	memcpy(s + STREAM_HDR + SECT_HDR + plen, tmpl + end_off, end_len);
	uint8_t *h = s + STREAM_HDR;
	uint64_t pl = plen;
	memcpy(h + 32, &pl, 8);
	uint32_t c = crc(h + SECT_HDR, plen);
	memcpy(h + 40, &c, 4);
	c = crc(h, 44);
	memcpy(h + 44, &c, 4);

	struct virtio_dev *vd = fresh();
	const struct devstate_ops *ops = virtio_state_ops(vd);
	struct state_loader l = { ops->name, ops->version, ops->load, vd };
	struct state_buf b = { .data = s, .len = total };
	char err[256];
	if (state_load(state_buf_source(&b), &l, 1, err, sizeof(err)) == 0) {
		struct balloon_info i;
		balloon_get_info(vd, &i);
		if (i.target_bytes > RAM || discard_pages(&rec) > RAM / 4096)
			abort();
		balloon_request_stats(vd);
		balloon_set_target(vd, 4096);
	}
	virtio_balloon_destroy(vd);
	free(s);
	return 0;
}
