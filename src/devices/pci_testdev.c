/* QEMU's pci-testdev: see pci_testdev.h. */
#include "devices/pci_testdev.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const test_names[PCI_TESTDEV_TESTS] = {
	"no-eventfd", "wildcard-eventfd", "datamatch-eventfd",
};
#define TEST_AREA   0x40            /* the tests' offsets: 0x40, 0x44, 0x48 */
#define TEST_WIDTH  4
#define DATAMATCH   0xfa            /* QEMU's IOTEST_DATAMATCH */

static uint32_t test_offset(unsigned test) { return TEST_AREA + TEST_WIDTH * test; }

/* The header of the selected test as bytes, then the access's slice. */
static uint64_t testdev_read(void *opaque, uint64_t off, unsigned size)
{
	struct pci_testdev_bar *b = opaque;
	uint8_t img[TEST_AREA] = { 0 };
	pthread_mutex_lock(&b->t->lock);
	unsigned test = b->test;
	uint32_t count = b->count;
	pthread_mutex_unlock(&b->t->lock);
	if (test < PCI_TESTDEV_TESTS) {
		uint32_t o = test_offset(test), data = test == 2 ? DATAMATCH : 0;
		img[PCI_TESTDEV_WIDTH] = TEST_WIDTH;
		memcpy(img + PCI_TESTDEV_OFFSET, &o, 4);
		memcpy(img + PCI_TESTDEV_DATA, &data, 4);
		memcpy(img + PCI_TESTDEV_COUNT, &count, 4);
		/* QEMU's names: "mmio-" or "portio-" and the test's. */
		snprintf((char *)img + PCI_TESTDEV_NAME, sizeof(img) - PCI_TESTDEV_NAME, "%s-%s",
			 b == &b->t->bar[0] ? "mmio" : "portio", test_names[test]);
	}
	uint64_t v = 0;
	for (unsigned i = 0; i < size && i < 8; i++)
		if (off + i < sizeof(img))
			v |= (uint64_t)img[off + i] << (8 * i);
	return v;
}

static void testdev_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct pci_testdev_bar *b = opaque;
	pthread_mutex_lock(&b->t->lock);
	if (off == PCI_TESTDEV_TEST) {
		b->test = (uint8_t)value < PCI_TESTDEV_TESTS ? (uint8_t)value : PCI_TESTDEV_TESTS;
		b->count = 0;
	} else if (b->test < PCI_TESTDEV_TESTS && off == test_offset(b->test) && size == TEST_WIDTH &&
		   (b->test != 2 || (uint32_t)value == DATAMATCH)) {
		b->count++;
	}
	pthread_mutex_unlock(&b->t->lock);
}

static const struct bus_ops testdev_ops = { .read = testdev_read, .write = testdev_write };

struct pci_testdev *pci_testdev_create(void)
{
	struct pci_testdev *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	pthread_mutex_init(&t->lock, NULL);
	for (int i = 0; i < 2; i++)
		t->bar[i] = (struct pci_testdev_bar){ .t = t, .test = PCI_TESTDEV_TESTS };
	pci_dev_init(&t->pci, "pci-testdev", PCI_VENDOR_REDHAT, PCI_DEVICE_REDHAT_TEST, 0xff0000, 0,
		     PCI_VENDOR_REDHAT, 0);
	if (pci_add_bar(&t->pci, 0, PCI_TESTDEV_MEM_SIZE, false, &testdev_ops, &t->bar[0]) ||
	    pci_add_io_bar(&t->pci, 1, PCI_TESTDEV_IO_SIZE, &testdev_ops, &t->bar[1])) {
		pci_testdev_destroy(t);
		return NULL;
	}
	return t;
}

void pci_testdev_destroy(struct pci_testdev *t)
{
	if (!t)
		return;
	pci_dev_destroy(&t->pci);
	pthread_mutex_destroy(&t->lock);
	free(t);
}
