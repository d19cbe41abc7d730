/* virtio-balloon (§5.5) with free page reporting: the inflate and deflate
 * queues (arrays of 4 KiB PFNs; inflated pages are discarded), the
 * statistics queue, the reporting queue (each buffer a guest-physical
 * range: discarded, then returned), DEFLATE_ON_OOM and PAGE_POISON. Every
 * discard punches a hole in the guest RAM memfd and is written into a
 * struct discard_map (src/discard.h). Queues are numbered densely over the
 * negotiated features (inflate, deflate, then stats and reporting when
 * negotiated), as Linux's virtio_pci numbers them. */
#ifndef EMBER_VIRTIO_BALLOON_H
#define EMBER_VIRTIO_BALLOON_H

#include <linux/virtio_balloon.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "devices/virtio/virtio.h"
#include "discard.h"

#define BALLOON_PAGE     4096ull
#define BALLOON_QUEUE    128
#define BALLOON_IOV_MAX  BALLOON_QUEUE
#define BALLOON_STATS_MAX 16      /* tags 0-15: the spec's 0-9 and Linux's 10-15 */

/* How a discard frees host memory. Guest RAM is a shared memfd, where
 * madvise(MADV_DONTNEED) frees nothing and MADV_FREE is refused, so both
 * punch holes (FALLOC_FL_PUNCH_HOLE); they differ in where and when:
 *   DONTNEED: at once, on the event loop, before the buffer is returned;
 *   FREE:     lazily, on a discard thread at a lower priority (nice 5)
 *             that batches what is queued (adjacent ranges merged) and
 *             returns the buffers when their ranges are punched, so the
 *             event loop never spends time freeing pages. */
enum balloon_discard { BALLOON_DONTNEED, BALLOON_FREE };

/* What `balloon stats` shows. Counters are since the VM started (a
 * restored or migrated VM carries them). */
struct balloon_info {
	uint64_t target_bytes, actual_bytes;   /* num_pages and actual, in bytes */
	uint64_t features;                     /* negotiated (0 before FEATURES_OK) */
	bool driver_ok;
	bool poison;                           /* PAGE_POISON negotiated */
	uint32_t poison_val;
	uint64_t inflated_pages, deflated_pages;
	uint64_t reports;                      /* report buffers returned */
	uint64_t reported_bytes;               /* bytes in them (discarded or not) */
	uint64_t discarded_bytes;              /* punched: inflate + reports */
	uint64_t kept_bytes;                   /* reported but kept: poison_val != 0 */
	uint64_t refused;                      /* PFNs and ranges refused (not RAM, unaligned) */
	uint64_t discard_errors;               /* fallocate failures */
	uint64_t discard_ns;                   /* time spent punching holes */
	/* The guest's statistics from the last buffer it returned. */
	bool have_stats;
	uint64_t stats_at_ns;                  /* CLOCK_MONOTONIC when they came */
	uint32_t stats_mask;                   /* bit t: stat[t] was supplied */
	uint64_t stat[BALLOON_STATS_MAX];
};

struct balloon_opts {
	uint64_t size;                /* initial target in bytes (num_pages * 4 KiB) */
	bool deflate_on_oom;
	bool reporting;               /* offer VIRTIO_BALLOON_F_REPORTING */
	enum balloon_discard mode;
	unsigned stats_interval;      /* seconds between requests for statistics; 0 = none */
	/* The guest returned statistics or changed `actual` (loop thread, the
	 * device lock held: do not call back into the device): e.g. to emit
	 * an event. */
	void (*on_stats)(void *opaque, const struct balloon_info *info);
	void *opaque;
};

/* Migration: the "virtio-balloon" section (src/devices/virtio/state.c)
 * carries, after the transport and its queues, the device's options, its
 * configuration (num_pages, actual, poison_val), the statistics buffer the
 * driver left, Ember's counters with the guest's last statistics, the
 * discarded-range record, and whether a new target's interrupt is still
 * owed (a target set while the VM was paused: the interrupt goes out on
 * the first kick after resume or load). Loading checks each field against this device:
 * the guest-visible options (size, deflate-on-oom, free page reporting on
 * or off) must be this device's; the discard mode and the statistics
 * interval are this host's (recorded, not taken). Version 1 held the
 * transport alone and is refused. A quiesced device (the VM paused) has
 * no report in flight: FREE mode finishes its queued work first. */
#define BALLOON_STATE_VERSION 2
/* The options as streams carry them (here and in the "vm" section). */
enum { BALLOON_OPT_DEFLATE_ON_OOM = 1, BALLOON_OPT_REPORTING = 2, BALLOON_OPT_FREE = 4,
       BALLOON_OPT_ALL = 7 };

int virtio_balloon_create(const struct virtio_env *env, const struct balloon_opts *o,
			  struct discard_map *rec, struct virtio_dev **out);
void virtio_balloon_destroy(struct virtio_dev *vd);

/* Ask the guest for a balloon of `bytes` (rounded down to 4 KiB):
 * num_pages and a configuration interrupt (deferred while the device is
 * quiesced). -EINVAL above guest RAM. */
int balloon_set_target(struct virtio_dev *vd, uint64_t bytes);
void balloon_get_info(struct virtio_dev *vd, struct balloon_info *out);
/* Ask the guest for fresh statistics (give back the buffer it left in the
 * stats queue); they arrive later through on_stats. False when the guest
 * has left no buffer (no STATS_VQ, or a request is still out) or the
 * device is quiesced (the VM paused for a save). */
bool balloon_request_stats(struct virtio_dev *vd);
/* "free_memory" for VIRTIO_BALLOON_S_MEMFREE, ...; NULL for unknown tags. */
const char *balloon_stat_name(unsigned tag);

/* ---- Parsers of guest input (pure: unit-tested and fuzzed) ------------- */

/* The le32 PFNs of an inflate/deflate buffer (iov[0..n), entries may be
 * split across buffers): fn(opaque, off, len) for each run of consecutive
 * pages that are RAM, as memfd offsets (a run never crosses a region).
 * PFNs outside RAM (past the end, in the MMIO hole) and trailing bytes
 * that are not a whole PFN count into *refused. Returns the PFNs taken. */
uint64_t balloon_pfn_runs(const struct guest_mem *m, const struct iovec *iov, unsigned n,
			  void (*fn)(void *opaque, uint64_t off, uint64_t len), void *opaque,
			  uint64_t *refused);
/* One reported range (a buffer the walker mapped): its memfd offset and
 * length, or -EINVAL when it is not 4 KiB aligned in start and length or
 * not inside m. */
int balloon_report_range(const struct guest_mem *m, const struct iovec *iov, uint64_t *off, uint64_t *len);
/* A statistics buffer: 10-byte { le16 tag, le64 val } entries, in any
 * order; unknown tags are ignored, a trailing partial entry too. Fills
 * stat[] and *mask; returns the entries read. */
unsigned balloon_parse_stats(const struct iovec *iov, unsigned n, uint64_t stat[BALLOON_STATS_MAX], uint32_t *mask);

#endif
