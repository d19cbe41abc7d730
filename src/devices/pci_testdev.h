/* QEMU's "pci-testdev" (1b36:0005, --pci-testdev), as kvm-unit-tests'
 * pci-testdev library and vmexit tests use it: BAR0 (4 KiB memory) and
 * BAR1 (256 I/O ports) each start with a header (docs/specs/pci-testdev.rst
 * in QEMU): writing a test number to byte 0 selects a test, and the header
 * then reads back its access width, the offset and data to write, the
 * number of writes seen at that offset, and its name. Each BAR offers three
 * tests (QEMU's no-eventfd, wildcard-eventfd, datamatch-eventfd), all
 * 4-byte writes; Ember counts every write at the test's offset in
 * userspace (QEMU's eventfd tests count 0, the writes ending in the kernel;
 * kvm-unit-tests accepts either). */
#ifndef EMBER_DEVICES_PCI_TESTDEV_H
#define EMBER_DEVICES_PCI_TESTDEV_H

#include "devices/pci.h"

#define PCI_DEVICE_REDHAT_TEST 0x0005
#define PCI_TESTDEV_MEM_SIZE   4096
#define PCI_TESTDEV_IO_SIZE    256

/* Header fields, at the start of each BAR. */
#define PCI_TESTDEV_TEST   0   /* u8, write: select a test */
#define PCI_TESTDEV_WIDTH  1   /* u8: 1, 2 or 4; anything else: no such test */
#define PCI_TESTDEV_OFFSET 4   /* u32: where in the BAR the test writes */
#define PCI_TESTDEV_DATA   8   /* u32: what it writes */
#define PCI_TESTDEV_COUNT  12  /* u32: writes seen since the test was selected */
#define PCI_TESTDEV_NAME   16  /* NUL-terminated */
#define PCI_TESTDEV_TESTS  3

struct pci_testdev;

struct pci_testdev_bar {          /* a BAR's opaque */
	struct pci_testdev *t;
	uint8_t test;                 /* selected; PCI_TESTDEV_TESTS: none */
	uint32_t count;
};

struct pci_testdev {
	struct pci_dev pci;
	pthread_mutex_t lock;
	struct pci_testdev_bar bar[2];    /* memory, I/O */
};

/* Initialised, not plugged (pci_host_add(host, &t->pci)). NULL on ENOMEM. */
struct pci_testdev *pci_testdev_create(void);
void pci_testdev_destroy(struct pci_testdev *t);

#endif
