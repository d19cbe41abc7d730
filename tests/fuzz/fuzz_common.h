/* Shared by the virtio fuzz targets: a 64 KiB fake guest RAM at gpa 0 and
 * a split queue at fixed addresses whose contents come from the input:
 *   byte 0: log2(queue size) (mod 9), byte 1: bit 0 EVENT_IDX, bit 1
 *   INDIRECT_DESC, bytes 2..: copied to gpa 0 (descriptor table at 0,
 *   avail ring at 0x1000, used ring at 0x2000, buffers anywhere: addresses
 *   past 64 KiB must be refused). */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio/virtqueue.h"
#include "mem.h"

#define FUZZ_RAM (64 * 1024)

static struct guest_mem fuzz_mem;

static inline int fuzz_queue(const uint8_t *data, size_t size, struct virtq *vq)
{
	if (!fuzz_mem.host) {
		fuzz_mem.host = malloc(FUZZ_RAM);
		fuzz_mem.size = FUZZ_RAM;
		fuzz_mem.fd = -1;
		fuzz_mem.regions[0] = (struct mem_region){ .gpa = 0, .size = FUZZ_RAM, .offset = 0 };
		fuzz_mem.nregions = 1;
	}
	if (size < 2)
		return -1;
	memset(fuzz_mem.host, 0, FUZZ_RAM);
	size_t n = size - 2 < FUZZ_RAM ? size - 2 : FUZZ_RAM;
	memcpy(fuzz_mem.host, data + 2, n);
	memset(vq, 0, sizeof(*vq));
	vq->max_size = 256;
	vq->size = (uint16_t)(1u << (data[0] % 9));
	vq->desc_gpa = 0;
	vq->avail_gpa = 0x1000;
	vq->used_gpa = 0x2000;
	return vq_start(vq, &fuzz_mem, data[1] & 1, data[1] & 2);
}

/* Touch every byte the device was given, so ASan sees any stray pointer. */
static inline unsigned fuzz_touch(const struct vq_elem *e)
{
	unsigned sum = 0;
	for (unsigned i = 0; i < e->nout + e->nin; i++) {
		const uint8_t *p = e->iov[i].iov_base;
		sum += p[0] + p[e->iov[i].iov_len - 1];
	}
	return sum;
}

#endif
