#include "mem.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arch/x86/layout.h"

int mem_create(struct guest_mem *m, uint64_t size)
{
	memset(m, 0, sizeof(*m));
	m->fd = -1;
	if (size == 0 || size % (4 * KiB))
		return -EINVAL;
	int fd = memfd_create("ember-ram", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	void *host = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
	if (host == MAP_FAILED) {
		int err = -errno;
		close(fd);
		return err;
	}
	/* Guest RAM is never part of a core dump of Ember. */
	madvise(host, size, MADV_DONTDUMP);
	m->fd = fd;
	m->host = host;
	m->size = size;
	uint64_t low = size < LAYOUT_MMIO_HOLE ? size : LAYOUT_MMIO_HOLE;
	m->regions[0] = (struct mem_region){ .gpa = 0, .size = low, .offset = 0 };
	m->nregions = 1;
	if (size > low) {
		m->regions[1] = (struct mem_region){ .gpa = LAYOUT_HIGH_RAM, .size = size - low, .offset = low };
		m->nregions = 2;
	}
	return 0;
}

void mem_destroy(struct guest_mem *m)
{
	if (m->host)
		munmap(m->host, m->size);
	if (m->fd >= 0)
		close(m->fd);
	m->host = NULL;
	m->fd = -1;
}

void *mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	uint64_t end;
	if (__builtin_add_overflow(gpa, len, &end))
		return NULL;
	for (int i = 0; i < m->nregions; i++) {
		const struct mem_region *r = &m->regions[i];
		if (gpa >= r->gpa && end <= r->gpa + r->size)
			return m->host + r->offset + (gpa - r->gpa);
	}
	return NULL;
}

bool mem_is_ram(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	uint64_t end;
	if (__builtin_add_overflow(gpa, len, &end))
		return false;
	while (gpa < end) {
		bool found = false;
		for (int i = 0; i < m->nregions; i++) {
			const struct mem_region *r = &m->regions[i];
			if (gpa >= r->gpa && gpa < r->gpa + r->size) {
				gpa = r->gpa + r->size;
				found = true;
				break;
			}
		}
		if (!found)
			return false;
	}
	return true;
}

uint64_t mem_offset(const struct guest_mem *m, uint64_t gpa)
{
	for (int i = 0; i < m->nregions; i++) {
		const struct mem_region *r = &m->regions[i];
		if (gpa >= r->gpa && gpa - r->gpa < r->size)
			return r->offset + (gpa - r->gpa);
	}
	return UINT64_MAX;
}

void mem_mark_dirty(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	uint64_t *log = __atomic_load_n(&m->dirty_log, __ATOMIC_ACQUIRE);
	if (!log || !len)
		return;
	uint64_t off = mem_offset(m, gpa), last = mem_offset(m, gpa + len - 1);
	if (off == UINT64_MAX || last == UINT64_MAX)
		return;
	/* A range within one region (mem_ptr's rule), so offsets are linear. */
	for (uint64_t p = off >> 12; p <= last >> 12; p++)
		__atomic_fetch_or(&log[p >> 6], 1ull << (p & 63), __ATOMIC_RELEASE);
}

int mem_write(const struct guest_mem *m, uint64_t gpa, const void *src, size_t len)
{
	void *p = mem_ptr(m, gpa, len);
	if (!p)
		return -EFAULT;
	memcpy(p, src, len);
	mem_mark_dirty(m, gpa, len);
	return 0;
}

int mem_read(const struct guest_mem *m, void *dst, uint64_t gpa, size_t len)
{
	const void *p = mem_ptr(m, gpa, len);
	if (!p)
		return -EFAULT;
	memcpy(dst, p, len);
	return 0;
}

uint64_t mem_low_end(const struct guest_mem *m)
{
	return m->regions[0].gpa + m->regions[0].size;
}
