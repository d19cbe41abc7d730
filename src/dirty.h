/* Dirty page tracking for snapshots and live migration: one interface over
 * KVM's two mechanisms, the per-slot dirty bitmap (KVM_GET_DIRTY_LOG, with
 * KVM_CLEAR_DIRTY_LOG where manual protection is offered) and the per-vCPU
 * dirty ring (KVM_CAP_DIRTY_LOG_RING[_ACQ_REL]), plus the pages Ember writes
 * into guest RAM itself, which KVM never sees (mem_mark_dirty).
 *
 * Pages are numbered by their offset in guest RAM (the memfd) / 4096, the
 * same numbering on every VM of the same memory size. docs/migration.md has
 * the rule `auto` follows and the measurements behind it. */
#ifndef EMBER_DIRTY_H
#define EMBER_DIRTY_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct vm;
struct vcpu;

enum dirty_backend { DIRTY_BITMAP, DIRTY_RING };
/* --dirty-tracking */
enum dirty_choice { DIRTY_CHOICE_AUTO, DIRTY_CHOICE_BITMAP, DIRTY_CHOICE_RING };

#define DIRTY_RING_DEFAULT_ENTRIES 4096u   /* 64 KiB of kvm_dirty_gfn per vCPU */
#define DIRTY_PAGE_SHIFT 12

struct dirty_ring {
	struct kvm_dirty_gfn *gfns;   /* mmap of the vCPU fd at KVM_DIRTY_LOG_PAGE_OFFSET */
	uint32_t fetch;               /* next entry to harvest (free-running) */
	uint64_t harvested;           /* entries harvested from this ring, ever */
	uint64_t full_exits;          /* KVM_EXIT_DIRTY_RING_FULL seen */
	uint64_t polls;               /* harvests by dirty_poll */
	uint64_t allow_ns;            /* dirty limit: when this vCPU's budget is back to 0 */
	uint64_t empty_full_exits;    /* in a row: full exits with nothing to harvest */
	uint32_t kvm_reset;           /* KVM's reset index, from KVM_RESET_DIRTY_RINGS' counts */
	uint32_t redo_until;          /* after an overrun: RESET entries before this are done */
};

struct dirty_stats {
	uint64_t syncs;               /* dirty_sync calls */
	uint64_t pages;               /* pages reported by the last sync */
	uint64_t sync_ns;             /* time the last sync took (the harvest cost) */
	/* Tracking work outside dirty_sync, ever (atomic adds): re-arming
	 * (KVM_CLEAR_DIRTY_LOG) and ring harvests on full exits and polls. */
	uint64_t track_ns;
	uint64_t bad_entries;         /* ring entries naming no RAM (ignored) */
	uint64_t ring_full_exits;
	uint64_t ring_overruns;       /* KVM pushed past the end of a ring (kvm_pvm) */
	uint64_t ring_lost;           /* ring entries KVM overwrote before Ember read them */
};

struct dirty {
	struct vm *vm;
	enum dirty_backend backend;
	bool active;                  /* logging on */
	uint64_t npages;              /* guest RAM pages */
	uint64_t *acc;                /* pages harvested, not yet handed out (atomic ops) */
	uint64_t *ember;              /* pages Ember wrote (mem_mark_dirty); guest_mem points here */
	pthread_mutex_t lock;         /* harvesting: rings, KVM ioctls, acc */

	/* bitmap */
	bool manual_protect;          /* KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 enabled */
	bool initially_set;           /* ... with KVM_DIRTY_LOG_INITIALLY_SET */
	uint64_t *scratch;            /* KVM_GET_DIRTY_LOG buffer, one region at a time */

	/* ring */
	uint32_t ring_entries;        /* power of two */
	bool acq_rel;                 /* KVM_CAP_DIRTY_LOG_RING_ACQ_REL (else the plain cap) */
	struct dirty_ring *rings;     /* one per vCPU */
	unsigned nrings;

	/* dirty limit (throttling): pages per second per vCPU, 0 = none */
	uint64_t limit_pps;
	uint64_t global_allow_ns;     /* bitmap backend: one budget for all vCPUs */

	struct dirty_stats stats;
	bool broken;                  /* KVM lost entries: the log cannot be trusted */
};

/* Before any vCPU exists: choose the backend (a ring must be enabled on the
 * VM before its vCPUs are created, api.rst 8.29) and set it up. A ring that
 * KVM does not offer falls back to the bitmap with a warning. ring_entries
 * 0 = default. 0 or -errno. */
int dirty_init(struct dirty *d, struct vm *vm, enum dirty_choice choice, uint32_t ring_entries);
void dirty_destroy(struct dirty *d);
/* After KVM_CREATE_VCPU: map the vCPU's ring. */
int dirty_vcpu_init(struct dirty *d, struct vcpu *v);
void dirty_vcpu_destroy(struct dirty *d, struct vcpu *v);

/* Start logging (KVM_MEM_LOG_DIRTY_PAGES on every slot). Every page counts
 * as dirty from here on until handed out by dirty_sync: with
 * KVM_DIRTY_LOG_INITIALLY_SET KVM says so itself, otherwise the first sync
 * reports all pages. */
int dirty_start(struct dirty *d);
/* Stop logging; nothing pending is kept. */
void dirty_stop(struct dirty *d);

/* OR into out (npages bits) every page dirtied since the last sync (or
 * since dirty_start). With the ring the rings are harvested and reset;
 * with the bitmap and manual protection, write protection is NOT re-armed
 * here: call dirty_rearm() for a range just before reading its pages. */
int dirty_sync(struct dirty *d, uint64_t *out);
/* Re-arm write protection for the pages set in bits[first/64 ...] within
 * [first, first + n) (first a multiple of 64): KVM_CLEAR_DIRTY_LOG with
 * manual protection, nothing otherwise. */
void dirty_rearm(struct dirty *d, const uint64_t *bits, uint64_t first, uint64_t n);

/* Ring backend, while a copy runs (the migration thread between batches):
 * harvest and reset every ring that is 1/DIRTY_POLL_FRACTION full or more.
 * The vCPUs then seldom fill their rings (each full exit stops a vCPU),
 * and KVM's pushes stay far from the end of the ring, which kvm_pvm
 * overruns when a vCPU fills it in emulated kernel code (docs/migration.md).
 * The pages go to the next dirty_sync. A no-op with the bitmap. */
#define DIRTY_POLL_FRACTION 4
void dirty_poll(struct dirty *d);
/* vCPU thread, on KVM_EXIT_DIRTY_RING_FULL: harvest this vCPU's ring and
 * reset it before the vCPU runs again, then sleep off any dirty limit. */
void dirty_ring_full(struct dirty *d, struct vcpu *v);
/* vCPU thread, before KVM_RUN: sleep while this vCPU is over its dirty
 * limit (bounded; returns early when the VM leaves the running state). */
void dirty_throttle_point(struct dirty *d, struct vcpu *v);
/* Limit every vCPU to bytes_per_s of newly dirtied memory (0 = no limit). */
void dirty_set_limit(struct dirty *d, uint64_t bytes_per_s);

const char *dirty_backend_name(enum dirty_backend b);
int dirty_parse_choice(const char *s, enum dirty_choice *out);

/* Ring entries, from index `fetch` on, that are neither DIRTY nor followed
 * by nothing: the number of non-DIRTY entries before the next DIRTY one
 * (0 if gfns[fetch] is DIRTY; entries if none is). With the vCPU out of the
 * guest, a gap before a DIRTY entry means KVM overran the ring (see
 * docs/migration.md, "The dirty ring on kvm_pvm"). */
uint32_t dirty_ring_gap(const struct kvm_dirty_gfn *gfns, uint32_t entries, uint32_t fetch);

/* Bitmap helpers. */
static inline void bit_set(uint64_t *bm, uint64_t i) { bm[i >> 6] |= 1ull << (i & 63); }
static inline bool bit_test(const uint64_t *bm, uint64_t i) { return bm[i >> 6] >> (i & 63) & 1; }
uint64_t bitmap_count(const uint64_t *bm, uint64_t nbits);
/* Set bits 0..nbits-1 (the bits past them in the last word are cleared). */
void bitmap_fill(uint64_t *bm, uint64_t nbits);

#endif
