/* Port-I/O and MMIO dispatch: an address range maps to a device's
 * callbacks. Ranges never overlap; unhandled accesses are counted, reads of
 * them return all-ones. Devices see offsets relative to their range. */
#ifndef EMBER_BUS_H
#define EMBER_BUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bus_ops {
	/* size is 1, 2, 4 or 8; the value is little-endian in the low bytes. */
	uint64_t (*read)(void *opaque, uint64_t offset, unsigned size);
	void (*write)(void *opaque, uint64_t offset, unsigned size, uint64_t value);
};

struct bus_range {
	uint64_t base;
	uint64_t len;
	const struct bus_ops *ops;
	void *opaque;
	const char *name;
};

struct bus {
	const char *name;            /* "pio" or "mmio", for messages */
	pthread_rwlock_t lock;       /* writers: (un)register; readers: dispatch */
	struct bus_range *ranges;    /* sorted by base */
	size_t count, cap;
	uint64_t unhandled_reads;
	uint64_t unhandled_writes;
};

void bus_init(struct bus *b, const char *name);
void bus_destroy(struct bus *b);

/* Add [base, base+len). -EEXIST when it overlaps a registered range,
 * -EINVAL when len is 0 or the range wraps. */
int bus_register(struct bus *b, uint64_t base, uint64_t len,
		 const struct bus_ops *ops, void *opaque, const char *name);
/* Remove the range that starts at base and belongs to opaque. */
int bus_unregister(struct bus *b, uint64_t base, void *opaque);

/* Dispatch one access. Returns false when no device claims the address:
 * the read value is then all-ones and the write is dropped. */
bool bus_read(struct bus *b, uint64_t addr, unsigned size, uint64_t *value);
bool bus_write(struct bus *b, uint64_t addr, unsigned size, uint64_t value);

/* The range containing addr, copied out (for diagnostics); false if none. */
bool bus_find(struct bus *b, uint64_t addr, struct bus_range *out);
/* Copy up to max ranges, in address order; returns how many there are. */
size_t bus_list(struct bus *b, struct bus_range *out, size_t max);

#endif
