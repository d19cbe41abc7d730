/* The record of guest RAM Ember discarded (balloon inflation, free page
 * reporting): one bit per 4 KiB page of the memfd. It serves two readers:
 * accounting (how much memory the balloon and reporting gave back, for
 * `status` and `balloon stats`) and snapshots/migration, which must not
 * read a discarded page (reading a hole in a memfd allocates it) and need
 * not send it (it is zeros on the other side).
 *
 * A bit says "Ember punched this page"; the guest may have written the
 * page since (a reported page is the guest's again once the report is
 * acknowledged, a deflated one too). So the record alone is not proof: a
 * page may be skipped only when it is in the record AND the memfd still
 * has a hole there (SEEK_DATA/SEEK_HOLE, which read nothing).
 * discard_next_skippable() answers exactly that. discard_refresh() drops
 * pages the guest wrote again from the record, so the accounting follows.
 * Thread-safe (one mutex). */
#ifndef EMBER_DISCARD_H
#define EMBER_DISCARD_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mem.h"

#define DISCARD_PAGE 4096ull

struct discard_map {
	pthread_mutex_t lock;
	uint64_t *bits;          /* bit n: memfd page n */
	uint64_t npages;
	uint64_t count;          /* bits set */
};

/* A map for `bytes` of RAM (a 4 KiB multiple), all clear. 0 or -ENOMEM. */
int discard_init(struct discard_map *d, uint64_t bytes);
void discard_free(struct discard_map *d);

/* Record / forget memfd bytes [off, off+len) (4 KiB multiples; the part
 * past the end is ignored). Return how many pages changed state. */
uint64_t discard_set(struct discard_map *d, uint64_t off, uint64_t len);
uint64_t discard_clear(struct discard_map *d, uint64_t off, uint64_t len);
/* Pages in the record now. */
uint64_t discard_pages(struct discard_map *d);
bool discard_test(struct discard_map *d, uint64_t off);

/* The first run of recorded pages at or after memfd offset `from`, before
 * `end`: true and [*start, *start + *len), or false when there is none. */
bool discard_next_run(struct discard_map *d, uint64_t from, uint64_t end, uint64_t *start, uint64_t *len);

/* For snapshots and migration: the first memfd range at or after `from`
 * (before `end`) that may be skipped, i.e. recorded AND still a hole in
 * m's memfd. true and [*start, *start + *len), or false. Reads no guest
 * memory. Callers working in guest-physical addresses convert with
 * mem_range_offset()/mem_gpa_of(). */
bool discard_next_skippable(struct discard_map *d, const struct guest_mem *m, uint64_t from,
			    uint64_t end, uint64_t *start, uint64_t *len);
/* True when every page of memfd [off, off+len) may be skipped. */
bool discard_skippable(struct discard_map *d, const struct guest_mem *m, uint64_t off, uint64_t len);

/* The record as the state stream carries it: discard_words() 64-bit
 * words, bit n of the whole = memfd page n (host byte order, little-endian
 * on x86). export copies it into buf (discard_words() words); import
 * replaces the record with len bytes of words: -EINVAL when len is not
 * this map's size or a bit past the last page is set (nothing changed). */
size_t discard_words(const struct discard_map *d);
void discard_export(struct discard_map *d, uint64_t *buf);
int discard_import(struct discard_map *d, const void *buf, size_t len);

/* Forget recorded pages that hold data again (the guest wrote them).
 * Returns the pages dropped. One lseek per run of recorded pages. */
uint64_t discard_refresh(struct discard_map *d, const struct guest_mem *m);

#endif
