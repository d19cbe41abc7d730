#include "mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch/x86/layout.h"

int mem_layout(struct guest_mem *m, uint64_t size)
{
	memset(m, 0, sizeof(*m));
	m->fd = -1;
	if (size == 0 || size % (4 * KiB))
		return -EINVAL;
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

int mem_create(struct guest_mem *m, uint64_t size)
{
	int r = mem_layout(m, size);
	if (r)
		return r;
	int fd = memfd_create("ember-ram", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	/* Reserve guard + RAM + guard (+ slack to align RAM to 2 MiB, which
	 * lets the host back it with huge pages), then map the memfd over the
	 * middle. The guards stay PROT_NONE for the VM's life. */
	uint64_t len = size + 2 * MEM_GUARD_SIZE + MEM_GUARD_SIZE;
	uint8_t *res = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (res == MAP_FAILED) {
		int err = -errno;
		close(fd);
		return err;
	}
	uintptr_t at = ((uintptr_t)res + MEM_GUARD_SIZE + MEM_GUARD_SIZE - 1) & ~(uintptr_t)(MEM_GUARD_SIZE - 1);
	void *host = mmap((void *)at, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE | MAP_FIXED, fd, 0);
	if (host == MAP_FAILED) {
		int err = -errno;
		munmap(res, len);
		close(fd);
		return err;
	}
	/* Guest RAM is never part of a core dump of Ember. */
	madvise(host, size, MADV_DONTDUMP);
	m->fd = fd;
	m->host = host;
	m->reserved = res;
	m->reserved_len = len;
	return 0;
}

void mem_destroy(struct guest_mem *m)
{
	if (m->reserved)
		munmap(m->reserved, m->reserved_len);
	if (m->fd >= 0)
		close(m->fd);
	m->host = m->reserved = NULL;
	m->fd = -1;
}

void mem_thp_setting(const char *text, char *word, size_t len)
{
	if (!len)
		return;
	word[0] = 0;
	const char *a = strchr(text, '['), *b = a ? strchr(a, ']') : NULL;
	if (!a || !b || (size_t)(b - a - 1) >= len)
		return;
	memcpy(word, a + 1, (size_t)(b - a - 1));
	word[b - a - 1] = 0;
}

void mem_thp_host_setting(char *word, size_t len)
{
	char text[128];
	if (len)
		word[0] = 0;
	FILE *f = fopen(MEM_THP_SYSFS, "re");
	if (!f)
		return;
	if (fgets(text, sizeof(text), f))
		mem_thp_setting(text, word, len);
	fclose(f);
}

bool mem_thp_allows(const char *word)
{
	static const char *const yes[] = { "advise", "within_size", "always", "force" };
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		if (!strcmp(word, yes[i]))
			return true;
	return false;
}

int mem_use_thp(struct guest_mem *m)
{
	if (!m->host)
		return -EINVAL;
	if (madvise(m->host, m->size, MADV_HUGEPAGE) < 0)
		return -errno;
	m->thp = true;
	return 0;
}

int mem_range_offset(const struct guest_mem *m, uint64_t gpa, uint64_t len, uint64_t *off)
{
	uint64_t end;
	if (__builtin_add_overflow(gpa, len, &end))
		return -EFAULT;
	for (int i = 0; i < m->nregions; i++) {
		const struct mem_region *r = &m->regions[i];
		if (gpa >= r->gpa && end <= r->gpa + r->size) {
			*off = r->offset + (gpa - r->gpa);
			return 0;
		}
	}
	return -EFAULT;
}

void *mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	uint64_t off;
	if (!m->host || mem_range_offset(m, gpa, len, &off))
		return NULL;
	return m->host + off;
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

static void mark_offsets(uint64_t *log, uint64_t off, uint64_t last)
{
	for (uint64_t p = off >> 12; p <= last >> 12; p++)
		__atomic_fetch_or(&log[p >> 6], 1ull << (p & 63), __ATOMIC_RELEASE);
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
	mark_offsets(log, off, last);
}

void mem_mark_dirty_host(const struct guest_mem *m, const void *p, uint64_t len)
{
	uint64_t *log = __atomic_load_n(&m->dirty_log, __ATOMIC_ACQUIRE);
	uintptr_t a = (uintptr_t)p, base = (uintptr_t)m->host;
	if (!log || !len || a < base || a - base >= m->size || len > m->size - (a - base))
		return;
	mark_offsets(log, a - base, a - base + len - 1);
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

uint64_t mem_gpa_of(const struct guest_mem *m, uint64_t off)
{
	for (int i = 0; i < m->nregions; i++) {
		const struct mem_region *r = &m->regions[i];
		if (off >= r->offset && off - r->offset < r->size)
			return r->gpa + (off - r->offset);
	}
	return UINT64_MAX;
}

int mem_discard(const struct guest_mem *m, uint64_t off, uint64_t len)
{
	uint64_t end;
	if ((off | len) & 4095 || __builtin_add_overflow(off, len, &end) || end > m->size)
		return -EINVAL;
	if (m->fd < 0)
		return -EBADF;
	if (!len)
		return 0;
	if (fallocate(m->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) < 0)
		return -errno;
	return 0;
}

uint64_t mem_resident(const struct guest_mem *m)
{
	struct stat st;
	if (m->fd < 0 || fstat(m->fd, &st) < 0)
		return 0;
	return (uint64_t)st.st_blocks * 512;
}

/* lseek SEEK_DATA/SEEK_HOLE clamped to [off, end); ENXIO means "none". */
static uint64_t seek_clamped(const struct guest_mem *m, uint64_t off, uint64_t end, int whence)
{
	if (off >= end)
		return end;
	if (m->fd < 0)
		return whence == SEEK_DATA ? off : end;    /* no file: all data */
	off_t r = lseek(m->fd, (off_t)off, whence);
	if (r < 0 && errno == ENXIO && whence == SEEK_DATA)
		return end;             /* no data after off */
	if (r < 0)                      /* cannot tell: say "data", never skip */
		return whence == SEEK_DATA ? off : end;
	return (uint64_t)r < end ? (uint64_t)r : end;
}

uint64_t mem_next_data(const struct guest_mem *m, uint64_t off, uint64_t end)
{
	return seek_clamped(m, off, end, SEEK_DATA);
}

uint64_t mem_next_hole(const struct guest_mem *m, uint64_t off, uint64_t end)
{
	return seek_clamped(m, off, end, SEEK_HOLE);
}
