#include "bus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

void bus_init(struct bus *b, const char *name)
{
	memset(b, 0, sizeof(*b));
	b->name = name;
	pthread_rwlock_init(&b->lock, NULL);
}

void bus_destroy(struct bus *b)
{
	free(b->ranges);
	b->ranges = NULL;
	b->count = b->cap = 0;
	pthread_rwlock_destroy(&b->lock);
}

/* Index of the first range whose end is above addr (caller holds the lock). */
static size_t lower_bound(const struct bus *b, uint64_t addr)
{
	size_t lo = 0, hi = b->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct bus_range *r = &b->ranges[mid];
		if (r->base + r->len <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static const struct bus_range *lookup(const struct bus *b, uint64_t addr)
{
	size_t i = lower_bound(b, addr);
	if (i < b->count && b->ranges[i].base <= addr)
		return &b->ranges[i];
	return NULL;
}

int bus_register(struct bus *b, uint64_t base, uint64_t len,
		 const struct bus_ops *ops, void *opaque, const char *name)
{
	uint64_t end;
	if (len == 0 || __builtin_add_overflow(base, len, &end))
		return -EINVAL;
	pthread_rwlock_wrlock(&b->lock);
	size_t i = lower_bound(b, base);
	if (i < b->count && b->ranges[i].base < end) {
		pthread_rwlock_unlock(&b->lock);
		return -EEXIST;
	}
	if (b->count == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 16;
		struct bus_range *r = realloc(b->ranges, cap * sizeof(*r));
		if (!r) {
			pthread_rwlock_unlock(&b->lock);
			return -ENOMEM;
		}
		b->ranges = r;
		b->cap = cap;
	}
	memmove(&b->ranges[i + 1], &b->ranges[i], (b->count - i) * sizeof(*b->ranges));
	b->ranges[i] = (struct bus_range){ base, len, ops, opaque, name };
	b->count++;
	pthread_rwlock_unlock(&b->lock);
	return 0;
}

int bus_unregister(struct bus *b, uint64_t base, void *opaque)
{
	int ret = -ENOENT;
	pthread_rwlock_wrlock(&b->lock);
	size_t i = lower_bound(b, base);
	if (i < b->count && b->ranges[i].base == base && b->ranges[i].opaque == opaque) {
		memmove(&b->ranges[i], &b->ranges[i + 1], (b->count - i - 1) * sizeof(*b->ranges));
		b->count--;
		ret = 0;
	}
	pthread_rwlock_unlock(&b->lock);
	return ret;
}

bool bus_read(struct bus *b, uint64_t addr, unsigned size, uint64_t *value)
{
	pthread_rwlock_rdlock(&b->lock);
	const struct bus_range *r = lookup(b, addr);
	if (r && r->ops->read) {
		*value = r->ops->read(r->opaque, addr - r->base, size);
		pthread_rwlock_unlock(&b->lock);
		return true;
	}
	pthread_rwlock_unlock(&b->lock);
	__atomic_add_fetch(&b->unhandled_reads, 1, __ATOMIC_RELAXED);
	log_debug("%s: unhandled read of %u bytes at 0x%llx", b->name, size, (unsigned long long)addr);
	*value = size >= 8 ? ~0ULL : (1ULL << (size * 8)) - 1;
	return false;
}

bool bus_write(struct bus *b, uint64_t addr, unsigned size, uint64_t value)
{
	pthread_rwlock_rdlock(&b->lock);
	const struct bus_range *r = lookup(b, addr);
	if (r && r->ops->write) {
		r->ops->write(r->opaque, addr - r->base, size, value);
		pthread_rwlock_unlock(&b->lock);
		return true;
	}
	pthread_rwlock_unlock(&b->lock);
	__atomic_add_fetch(&b->unhandled_writes, 1, __ATOMIC_RELAXED);
	log_debug("%s: unhandled write of %u bytes at 0x%llx = 0x%llx", b->name, size,
		  (unsigned long long)addr, (unsigned long long)value);
	return false;
}

bool bus_find(struct bus *b, uint64_t addr, struct bus_range *out)
{
	pthread_rwlock_rdlock(&b->lock);
	const struct bus_range *r = lookup(b, addr);
	if (r)
		*out = *r;
	pthread_rwlock_unlock(&b->lock);
	return r != NULL;
}

size_t bus_list(struct bus *b, struct bus_range *out, size_t max)
{
	pthread_rwlock_rdlock(&b->lock);
	size_t n = b->count;
	if (n && max)
		memcpy(out, b->ranges, (n < max ? n : max) * sizeof(*out));
	pthread_rwlock_unlock(&b->lock);
	return n;
}
