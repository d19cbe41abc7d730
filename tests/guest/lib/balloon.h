/* Guest-kit virtio-balloon driver and the page allocator it serves: Linux's
 * page_reporting at small scale. The allocator hands out 2 MiB blocks (the
 * pageblock order on x86) and keeps, like the buddy allocator's free
 * lists, whether a free block was reported already: fresh free blocks go
 * out first, reported ones last. The driver, a poll function that is safe
 * at CPL3 (everything is MMIO or memory), reports free blocks a delay
 * after the first free (Linux: 2 s), up to 32 blocks per buffer chain;
 * inflates and deflates in whole blocks (512 PFNs) to follow num_pages;
 * answers statistics requests. */
#ifndef KIT_BALLOON_H
#define KIT_BALLOON_H

#include <linux/virtio_balloon.h>

#include "kit.h"
#include "virtio.h"

#define PGA_BLOCK      (2ul << 20)
#define PGA_MAX_BLOCKS 2048               /* 4 GiB */
#define REPORT_CAPACITY 32                /* Linux's PAGE_REPORTING_CAPACITY */

enum pga_state { BS_FREE, BS_REPORTED, BS_USED, BS_ISOLATED, BS_BALLOON, BS_STATES };

struct pga {
	uint64_t base;                        /* first block */
	unsigned n;
	uint8_t st[PGA_MAX_BLOCKS];
	unsigned count[BS_STATES];
	uint64_t allocs;
	uint64_t pending_since_ms;            /* first free since the last report pass; 0 = none */
};

/* Manage [start, end) (rounded in to whole blocks). */
void pga_init(struct pga *a, uint64_t start, uint64_t end);
/* A block's address, or 0 when none is free. Unreported blocks first. */
uint64_t pga_alloc(struct pga *a);
void pga_free(struct pga *a, uint64_t addr);
unsigned pga_index(const struct pga *a, uint64_t addr);

struct gballoon {
	struct vdev dev;
	struct pga *a;
	int q_stats, q_report;                /* -1 when not negotiated */
	uint32_t actual;                      /* pages in the balloon */
	uint32_t num_pages;                   /* the device's last target */
	uint64_t report_delay_ms;
	long config_irqs_seen;
	uint8_t config_vector;
	uint64_t next_config_poll_ms;
	/* What happened, for the test's reports. */
	uint64_t report_passes, reported_blocks, report_timeouts;
	uint64_t last_report_done_ms;
	uint64_t inflated_pages, deflated_pages, stats_sent;
	bool failed;                          /* the device did not answer */
};

/* Find the balloon, negotiate want (& offered), poison_val when PAGE_POISON
 * is in it, queues (dense numbering), config interrupts on MSI-X entry 0 ->
 * config_vector, the first statistics buffer; DRIVER_OK. */
bool gb_init(struct gballoon *b, struct pga *a, uint64_t want, uint32_t poison_val, uint8_t config_vector);
/* Reset the device and set it up again (after NEEDS_RESET). */
bool gb_reinit(struct gballoon *b, uint64_t want, uint32_t poison_val);
/* One turn: statistics, balloon size, reporting when due. CPL3-safe. */
void gb_poll(struct gballoon *b);
/* Report every free unreported block now; returns how many. */
unsigned gb_report_now(struct gballoon *b);
/* Send one chain on the reporting queue: n ranges, device-writable.
 * True when the device used it within timeout_ms. (The hostile tests use
 * this with ranges of their own.) */
bool gb_report_ranges(struct gballoon *b, const uint64_t *addr, const uint32_t *len, unsigned n,
		      uint64_t timeout_ms);
/* Send PFNs on the inflate (or deflate) queue, as given. */
bool gb_send_pfns(struct gballoon *b, bool inflate, const uint32_t *pfns, unsigned bytes, uint64_t timeout_ms);
bool gb_has(const struct gballoon *b, unsigned feature);

#endif
