#include "devices/pc_testdev.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct pc_testdev {
	pthread_mutex_t lock;
	uint32_t scratch;
	struct irq_line *irqs;
	const struct guest_mem *mem;
	uint8_t iomem[PC_TESTDEV_IOMEM_LEN];
};

struct pc_testdev *pc_testdev_create(struct irq_line *irqs, const struct guest_mem *mem)
{
	struct pc_testdev *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	pthread_mutex_init(&t->lock, NULL);
	t->irqs = irqs;
	t->mem = mem;
	return t;
}

void pc_testdev_destroy(struct pc_testdev *t)
{
	if (!t)
		return;
	pthread_mutex_destroy(&t->lock);
	free(t);
}

/* How many bytes of an access at off of size fit in a range of len. */
static unsigned clamp(uint64_t off, unsigned size, uint64_t len)
{
	return off >= len ? 0 : (off + size > len ? (unsigned)(len - off) : size);
}

/* The scratch register: a narrow access at offset n touches bytes n.. only. */
static uint64_t scratch_read(void *opaque, uint64_t off, unsigned size)
{
	struct pc_testdev *t = opaque;
	unsigned n = clamp(off, size, 4);
	pthread_mutex_lock(&t->lock);
	uint64_t v = 0;
	memcpy(&v, (uint8_t *)&t->scratch + off, n);
	pthread_mutex_unlock(&t->lock);
	return v;
}

static void scratch_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct pc_testdev *t = opaque;
	unsigned n = clamp(off, size, 4);
	pthread_mutex_lock(&t->lock);
	memcpy((uint8_t *)&t->scratch + off, &value, n);
	pthread_mutex_unlock(&t->lock);
}

const struct bus_ops pc_testdev_scratch_ops = { .read = scratch_read, .write = scratch_write };

/* Taking the page away from Ember's own mapping and giving it back makes
 * the host kernel invalidate KVM's mapping of it (MMU notifiers), as QEMU's
 * device does; the contents stay. */
static void flush_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct pc_testdev *t = opaque;
	if (off != 0 || size != 4 || !t->mem)
		return;
	void *page = mem_ptr(t->mem, (uint32_t)value & ~0xfffu, 4096);
	if (!page)
		return;
	mprotect(page, 4096, PROT_NONE);
	mprotect(page, 4096, PROT_READ | PROT_WRITE);
}

static uint64_t zero_read(void *opaque, uint64_t off, unsigned size)
{
	return 0;
}

const struct bus_ops pc_testdev_flush_ops = { .read = zero_read, .write = flush_write };

static void irq_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct pc_testdev *t = opaque;
	unsigned n = clamp(off, size, PC_TESTDEV_IRQS);
	for (unsigned i = 0; i < n; i++)
		irq_set(&t->irqs[off + i], ((value >> (8 * i)) & 0xff) != 0);
}

const struct bus_ops pc_testdev_irq_ops = { .read = zero_read, .write = irq_write };

static uint64_t iomem_read(void *opaque, uint64_t off, unsigned size)
{
	struct pc_testdev *t = opaque;
	uint64_t v = 0;
	pthread_mutex_lock(&t->lock);
	memcpy(&v, t->iomem + off, clamp(off, size, PC_TESTDEV_IOMEM_LEN));
	pthread_mutex_unlock(&t->lock);
	return v;
}

static void iomem_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct pc_testdev *t = opaque;
	pthread_mutex_lock(&t->lock);
	memcpy(t->iomem + off, &value, clamp(off, size, PC_TESTDEV_IOMEM_LEN));
	pthread_mutex_unlock(&t->lock);
}

const struct bus_ops pc_testdev_iomem_ops = { .read = iomem_read, .write = iomem_write };

int pc_testdev_register(struct pc_testdev *t, struct bus *pio, struct bus *mmio)
{
	int r;
	if ((r = bus_register(pio, PC_TESTDEV_PORT_IOPORT, 4, &pc_testdev_scratch_ops, t, "pc-testdev")) ||
	    (r = bus_register(pio, PC_TESTDEV_PORT_FLUSH, 4, &pc_testdev_flush_ops, t, "pc-testdev-flush")) ||
	    (r = bus_register(pio, PC_TESTDEV_PORT_BYTE, 4, &pc_testdev_scratch_ops, t, "pc-testdev-byte")) ||
	    (r = bus_register(pio, PC_TESTDEV_PORT_IRQ, PC_TESTDEV_IRQS, &pc_testdev_irq_ops, t,
			      "pc-testdev-irq")) ||
	    (r = bus_register(mmio, PC_TESTDEV_IOMEM, PC_TESTDEV_IOMEM_LEN, &pc_testdev_iomem_ops, t,
			      "pc-testdev-iomem")))
		return r;
	return 0;
}
