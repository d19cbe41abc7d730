#include "discard.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int discard_init(struct discard_map *d, uint64_t bytes)
{
	memset(d, 0, sizeof(*d));
	d->npages = bytes / DISCARD_PAGE;
	d->bits = calloc((d->npages + 63) / 64 ? (d->npages + 63) / 64 : 1, sizeof(uint64_t));
	if (!d->bits)
		return -ENOMEM;
	pthread_mutex_init(&d->lock, NULL);
	return 0;
}

void discard_free(struct discard_map *d)
{
	if (!d->bits)
		return;
	free(d->bits);
	d->bits = NULL;
	pthread_mutex_destroy(&d->lock);
}

/* Pages [first, last) of the map, clamped. */
static bool page_span(const struct discard_map *d, uint64_t off, uint64_t len, uint64_t *first, uint64_t *last)
{
	uint64_t end;
	if (__builtin_add_overflow(off, len, &end))
		end = UINT64_MAX;
	*first = off / DISCARD_PAGE;
	*last = end / DISCARD_PAGE;
	if (*last > d->npages)
		*last = d->npages;
	return *first < *last;
}

/* Mask of bits [lo, hi) of one word, 0 <= lo < hi <= 64. */
static uint64_t word_mask(unsigned lo, unsigned hi)
{
	uint64_t m = hi == 64 ? ~0ull : (1ull << hi) - 1;
	return m & ~((1ull << lo) - 1);
}

/* Set or clear pages [first, last); returns how many changed. Lock held. */
static uint64_t change(struct discard_map *d, uint64_t first, uint64_t last, bool set)
{
	uint64_t changed = 0;
	while (first < last) {
		uint64_t w = first / 64;
		unsigned lo = (unsigned)(first % 64);
		unsigned hi = last - w * 64 >= 64 ? 64 : (unsigned)(last - w * 64);
		uint64_t m = word_mask(lo, hi);
		uint64_t old = d->bits[w];
		d->bits[w] = set ? old | m : old & ~m;
		changed += (uint64_t)__builtin_popcountll((old ^ d->bits[w]) & m);
		first = w * 64 + hi;
	}
	if (set)
		d->count += changed;
	else
		d->count -= changed;
	return changed;
}

static uint64_t change_range(struct discard_map *d, uint64_t off, uint64_t len, bool set)
{
	uint64_t a, b, n;
	if (!page_span(d, off, len, &a, &b))
		return 0;
	pthread_mutex_lock(&d->lock);
	n = change(d, a, b, set);
	pthread_mutex_unlock(&d->lock);
	return n;
}

uint64_t discard_set(struct discard_map *d, uint64_t off, uint64_t len)
{
	return change_range(d, off, len, true);
}

uint64_t discard_clear(struct discard_map *d, uint64_t off, uint64_t len)
{
	return change_range(d, off, len, false);
}

uint64_t discard_pages(struct discard_map *d)
{
	pthread_mutex_lock(&d->lock);
	uint64_t n = d->count;
	pthread_mutex_unlock(&d->lock);
	return n;
}

bool discard_test(struct discard_map *d, uint64_t off)
{
	uint64_t p = off / DISCARD_PAGE;
	if (p >= d->npages)
		return false;
	pthread_mutex_lock(&d->lock);
	bool r = d->bits[p / 64] >> (p % 64) & 1;
	pthread_mutex_unlock(&d->lock);
	return r;
}

/* First page in [p, last) whose bit equals `want`; last when none. */
static uint64_t find_bit(const struct discard_map *d, uint64_t p, uint64_t last, bool want)
{
	while (p < last) {
		uint64_t w = d->bits[p / 64];
		if (!want)
			w = ~w;
		w &= ~0ull << (p % 64);
		if (w) {
			uint64_t q = p / 64 * 64 + (uint64_t)__builtin_ctzll(w);
			return q < last ? q : last;
		}
		p = p / 64 * 64 + 64;
	}
	return last;
}

/* Lock held. */
static bool next_run(const struct discard_map *d, uint64_t from, uint64_t end, uint64_t *start, uint64_t *len)
{
	uint64_t a, b;
	if (!page_span(d, from, end > from ? end - from : 0, &a, &b))
		return false;
	uint64_t s = find_bit(d, a, b, true);
	if (s == b)
		return false;
	uint64_t e = find_bit(d, s, b, false);
	*start = s * DISCARD_PAGE;
	*len = (e - s) * DISCARD_PAGE;
	return true;
}

bool discard_next_run(struct discard_map *d, uint64_t from, uint64_t end, uint64_t *start, uint64_t *len)
{
	pthread_mutex_lock(&d->lock);
	bool r = next_run(d, from, end, start, len);
	pthread_mutex_unlock(&d->lock);
	return r;
}

bool discard_next_skippable(struct discard_map *d, const struct guest_mem *m, uint64_t from,
			    uint64_t end, uint64_t *start, uint64_t *len)
{
	uint64_t s, n;
	if (end > m->size)
		end = m->size;
	while (discard_next_run(d, from, end, &s, &n)) {
		/* Within the run, the first hole and where data starts again. */
		uint64_t hole = mem_next_hole(m, s, s + n);
		if (hole < s + n) {
			uint64_t data = mem_next_data(m, hole, s + n);
			*start = hole;
			*len = data - hole;
			return true;
		}
		from = s + n;
	}
	return false;
}

bool discard_skippable(struct discard_map *d, const struct guest_mem *m, uint64_t off, uint64_t len)
{
	uint64_t s, n, end;
	if (!len || __builtin_add_overflow(off, len, &end) || end > m->size)
		return false;
	return discard_next_skippable(d, m, off, end, &s, &n) && s == off && n == len;
}

size_t discard_words(const struct discard_map *d)
{
	return (size_t)((d->npages + 63) / 64);
}

void discard_export(struct discard_map *d, uint64_t *buf)
{
	pthread_mutex_lock(&d->lock);
	memcpy(buf, d->bits, discard_words(d) * sizeof(uint64_t));
	pthread_mutex_unlock(&d->lock);
}

int discard_import(struct discard_map *d, const void *buf, size_t len)
{
	size_t n = discard_words(d);
	if (len != n * sizeof(uint64_t))
		return -EINVAL;
	uint64_t last = 0, count = 0;
	if (n)
		memcpy(&last, (const uint8_t *)buf + (n - 1) * sizeof(uint64_t), sizeof(last));
	/* Bits past the last page would be pages that do not exist. */
	if (d->npages % 64 && last >> (d->npages % 64))
		return -EINVAL;
	pthread_mutex_lock(&d->lock);
	memcpy(d->bits, buf, len);
	for (size_t i = 0; i < n; i++)
		count += (uint64_t)__builtin_popcountll(d->bits[i]);
	d->count = count;
	pthread_mutex_unlock(&d->lock);
	return 0;
}

uint64_t discard_refresh(struct discard_map *d, const struct guest_mem *m)
{
	uint64_t from = 0, s, n, dropped = 0;
	pthread_mutex_lock(&d->lock);
	while (next_run(d, from, m->size, &s, &n)) {
		uint64_t end = s + n, off = s;
		while (off < end) {
			uint64_t data = mem_next_data(m, off, end);
			if (data == end)
				break;
			uint64_t hole = mem_next_hole(m, data, end);
			dropped += change(d, data / DISCARD_PAGE, hole / DISCARD_PAGE, false);
			off = hole;
		}
		from = end;
	}
	pthread_mutex_unlock(&d->lock);
	return dropped;
}
