#include "devices/fw_cfg.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct fw_cfg {
	pthread_mutex_t lock;      /* vCPUs may read items concurrently */
	uint16_t selector;
	uint32_t offset;           /* next byte of the selected item */
	uint16_t ncpus;
	uint64_t ram_size;
};

struct fw_cfg *fw_cfg_create(unsigned ncpus, uint64_t ram_size)
{
	struct fw_cfg *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	pthread_mutex_init(&f->lock, NULL);
	f->ncpus = (uint16_t)(ncpus > 0xffff ? 0xffff : ncpus);
	f->ram_size = ram_size;
	return f;
}

void fw_cfg_destroy(struct fw_cfg *f)
{
	if (!f)
		return;
	pthread_mutex_destroy(&f->lock);
	free(f);
}

/* Byte `off` of item `key`; items are little-endian except FILE_DIR. Past
 * an item's end, and for items Ember does not have, reads return 0. */
static uint8_t item_byte(const struct fw_cfg *f, uint16_t key, uint32_t off)
{
	uint64_t v;
	unsigned len;
	switch (key & 0x3fff) {   /* bit 14: write, bit 15: arch-specific */
	case FW_CFG_SIGNATURE:
		return off < 4 ? (uint8_t)"QEMU"[off] : 0;
	case FW_CFG_ID: v = 1; len = 4; break;
	case FW_CFG_RAM_SIZE: v = f->ram_size; len = 8; break;
	case FW_CFG_NB_CPUS:
	case FW_CFG_MAX_CPUS: v = f->ncpus; len = 2; break;
	default: return 0;        /* FILE_DIR: a count of 0 files */
	}
	return off < len ? (uint8_t)(v >> (8 * off)) : 0;
}

static uint64_t fw_cfg_read(void *opaque, uint64_t port_off, unsigned size)
{
	struct fw_cfg *f = opaque;
	if (port_off != 1)
		return 0;   /* the selector port reads as 0 */
	uint64_t v = 0;
	pthread_mutex_lock(&f->lock);
	/* Wider reads of the data port return consecutive bytes, as QEMU does. */
	for (unsigned i = 0; i < size; i++)
		v |= (uint64_t)item_byte(f, f->selector, f->offset++) << (8 * i);
	pthread_mutex_unlock(&f->lock);
	return v;
}

static void fw_cfg_write(void *opaque, uint64_t port_off, unsigned size, uint64_t value)
{
	struct fw_cfg *f = opaque;
	if (port_off != 0)
		return;     /* data writes are not supported (QEMU ignores them too) */
	pthread_mutex_lock(&f->lock);
	f->selector = (uint16_t)value;
	f->offset = 0;
	pthread_mutex_unlock(&f->lock);
}

const struct bus_ops fw_cfg_ops = { .read = fw_cfg_read, .write = fw_cfg_write };
