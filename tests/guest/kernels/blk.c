/* virtio-blk from the guest's side: PCI enumeration (ECAM and 0xcf8), the
 * virtio capabilities, MSI-X, then reads, writes, flush, get-id, discard,
 * write-zeroes, requests past the end or malformed, an indirect request
 * and 32 requests in flight. The host side (test_virtio.sh) fills sector
 * 16 with a pattern first and checks sectors 8 and 24-31 afterwards.
 * Command line: sectors=N serial=ID [ro]. */
#include <linux/virtio_blk.h>

#include "kit.h"
#include "virtio.h"

#define VEC_CONFIG 0x40
#define VEC_QUEUE  0x41
#define INFLIGHT   32

static uint8_t ring[VRING_BYTES] __attribute__((aligned(4096)));
static uint8_t bufs[INFLIGHT][4096] __attribute__((aligned(4096)));
static struct virtio_blk_outhdr hdrs[INFLIGHT];
static volatile uint8_t status[INFLIGHT];
static struct vring_desc itable[3] __attribute__((aligned(16)));
static struct vdev dev;

/* Slot k uses descriptors 3k..3k+2: header, data, status. */
static void post(int k, uint32_t type, uint64_t sector, void *data, uint32_t len, bool dev_writes)
{
	struct gvq *q = &dev.vq[0];
	uint16_t d = (uint16_t)(3 * k);
	hdrs[k] = (struct virtio_blk_outhdr){ .type = type, .sector = sector };
	status[k] = 0xee;
	gvq_desc(q, d, &hdrs[k], sizeof(hdrs[k]), VRING_DESC_F_NEXT, (uint16_t)(d + 1));
	if (len) {
		gvq_desc(q, (uint16_t)(d + 1), data, len,
			 VRING_DESC_F_NEXT | (dev_writes ? VRING_DESC_F_WRITE : 0), (uint16_t)(d + 2));
		gvq_desc(q, (uint16_t)(d + 2), (void *)&status[k], 1, VRING_DESC_F_WRITE, 0);
	} else {
		gvq_desc(q, d, &hdrs[k], sizeof(hdrs[k]), VRING_DESC_F_NEXT, (uint16_t)(d + 2));
		gvq_desc(q, (uint16_t)(d + 2), (void *)&status[k], 1, VRING_DESC_F_WRITE, 0);
	}
	gvq_publish(q, d);
}

/* One request, synchronously; returns the status byte (0xee: no answer). */
static int req(uint32_t type, uint64_t sector, void *data, uint32_t len, bool dev_writes, uint32_t *used_len)
{
	uint32_t id, l = 0;
	post(0, type, sector, data, len, dev_writes);
	gvq_kick(&dev.vq[0]);
	if (!gvq_wait(&dev.vq[0], &id, &l, 5000))
		return 0xee;
	if (used_len)
		*used_len = l;
	return status[0];
}

static const char host_pattern[] = "EMBER-HOST-PATTERN";
static const char guest_pattern[] = "EMBER-GUEST-WROTE-THIS";

static long check_read_back(void *arg)
{
	const uint8_t *b = arg;
	if (memcmp(b, guest_pattern, sizeof(guest_pattern)))
		return 1;
	for (unsigned i = sizeof(guest_pattern); i < 4096; i++)
		if (b[i] != (uint8_t)i)
			return 2;
	return 0;
}

static long fill_guest_pattern(void *arg)
{
	uint8_t *b = arg;
	for (unsigned i = 0; i < 4096; i++)
		b[i] = (uint8_t)i;
	memcpy(b, guest_pattern, sizeof(guest_pattern));
	return 0;
}

static void pci_checks(void)
{
	struct pci_fn host = { .slot = 0 };
	report(pci_ecam() == 0xe0000000, "MCFG gives ECAM at %#lx", (unsigned long)pci_ecam());
	uint32_t id_ecam = pci_read(&host, 0, 4);
	pci_use_cf8(true);
	uint32_t id_cf8 = pci_read(&host, 0, 4);
	uint32_t cls = pci_read(&host, 8, 4) >> 8;
	pci_use_cf8(false);
	report(id_ecam == 0x00081b36 && id_cf8 == id_ecam, "host bridge 1b36:0008 through ECAM and 0xcf8");
	report(cls == 0x060000, "host bridge class 06.00.00");
	struct pci_fn none = { .slot = 31 };
	report(pci_read(&none, 0, 4) == 0xffffffff, "empty slot reads all-ones");
}

void kmain(void)
{
	uint64_t sectors = 0;
	char serial[32] = "";
	bool ro = cmdline_has("ro");
	cmdline_get_u64("sectors", &sectors);
	cmdline_get("serial", serial, sizeof(serial));

	pci_checks();
	if (!report(vdev_open(&dev, 2, 0), "virtio-blk found (1af4:1042) with common/notify/isr caps"))
		return;
	uint64_t bar = pci_bar(&dev.f, 0), size = pci_bar_size(&dev.f, 0);
	report(bar >= 0xc0000000 && bar + size <= 0xe0000000 && size >= 0x4000,
	       "BAR0 %#lx size %#lx in the 32-bit window", (unsigned long)bar, (unsigned long)size);
	report(pci_bar(&dev.f, 0) == bar, "BAR0 survives sizing");
	report(dev.devcfg && dev.devcfg_len >= sizeof(struct virtio_blk_config) && dev.has_pci_cfg_cap,
	       "device config and PCI config access capabilities");
	report(dev.has_msix && dev.msix.nvec >= 2, "MSI-X capability with %u vectors", dev.msix.nvec);

	uint64_t want = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_BLK_F_FLUSH) |
			(1ull << VIRTIO_BLK_F_RO) | (1ull << VIRTIO_BLK_F_DISCARD) |
			(1ull << VIRTIO_BLK_F_WRITE_ZEROES) | (1ull << VIRTIO_RING_F_INDIRECT_DESC) |
			(1ull << VIRTIO_RING_F_EVENT_IDX);
	report(vdev_negotiate(&dev, want), "FEATURES_OK accepted");
	report(dev.features & (1ull << VIRTIO_RING_F_EVENT_IDX), "EVENT_IDX negotiated (the kernel polls; kicks always)");
	report(!!(dev.features & (1ull << VIRTIO_BLK_F_RO)) == ro, "RO feature %s", ro ? "offered" : "absent");
	volatile struct virtio_blk_config *cfg = (volatile void *)dev.devcfg;
	report(cfg->capacity == sectors, "capacity %lu sectors", (unsigned long)cfg->capacity);

	irq_init();
	msix_route(&dev.msix, 0, VEC_CONFIG);
	msix_route(&dev.msix, 1, VEC_QUEUE);
	msix_enable(&dev.msix, true);
	dev.common->msix_config = 0;
	report(vdev_queue(&dev, 0, 128, ring, 1), "queue 0 enabled");
	vdev_driver_ok(&dev);
	report(vdev_status(&dev) & VIRTIO_CONFIG_S_DRIVER_OK, "DRIVER_OK");

	uint8_t *b = bufs[0];
	uint32_t used = 0;
	int st;
	memset(b, 0, 64);
	report(req(VIRTIO_BLK_T_GET_ID, 0, b, VIRTIO_BLK_ID_BYTES, true, &used) == VIRTIO_BLK_S_OK &&
	       !strncmp((char *)b, serial, VIRTIO_BLK_ID_BYTES), "get-id returns serial '%s'", serial);
	st = req(VIRTIO_BLK_T_IN, 16, b, 512, true, &used);
	report(st == VIRTIO_BLK_S_OK && !memcmp(b, host_pattern, sizeof(host_pattern)) && used == 513,
	       "read sees the host's pattern at sector 16 (used len %u)", used);
	bool got_irq = irq_wait(VEC_QUEUE, 1, 2000);
	report(got_irq, "queue interrupt arrived by MSI-X (%ld so far)", irq_count(VEC_QUEUE));

	run_user(fill_guest_pattern, b);
	st = req(VIRTIO_BLK_T_OUT, 8, b, 4096, false, NULL);
	if (ro) {
		report(st == VIRTIO_BLK_S_IOERR, "write to a read-only disk fails (status %d)", st);
		report(req(VIRTIO_BLK_T_WRITE_ZEROES, 0, NULL, 0, false, NULL) != VIRTIO_BLK_S_OK,
		       "write-zeroes on a read-only disk fails");
	} else {
		report(st == VIRTIO_BLK_S_OK, "write 4 KiB at sector 8");
		report(req(VIRTIO_BLK_T_FLUSH, 0, NULL, 0, false, NULL) == VIRTIO_BLK_S_OK, "flush");
		memset(bufs[1], 0, 4096);
		report(req(VIRTIO_BLK_T_IN, 8, bufs[1], 4096, true, NULL) == VIRTIO_BLK_S_OK &&
		       run_user(check_read_back, bufs[1]) == 0, "read back what was written");
		struct virtio_blk_discard_write_zeroes seg = { .sector = 24, .num_sectors = 8 };
		memcpy(bufs[2], &seg, sizeof(seg));
		report(req(VIRTIO_BLK_T_WRITE_ZEROES, 0, bufs[2], sizeof(seg), false, NULL) == VIRTIO_BLK_S_OK,
		       "write-zeroes sectors 24-31");
		seg = (struct virtio_blk_discard_write_zeroes){ .sector = 40, .num_sectors = 8 };
		memcpy(bufs[2], &seg, sizeof(seg));
		report(req(VIRTIO_BLK_T_DISCARD, 0, bufs[2], sizeof(seg), false, NULL) == VIRTIO_BLK_S_OK,
		       "discard sectors 40-47");
	}
	report(req(VIRTIO_BLK_T_IN, sectors, b, 512, true, NULL) == VIRTIO_BLK_S_IOERR,
	       "read at the capacity fails with IOERR");
	report(req(VIRTIO_BLK_T_IN, sectors - 1, b, 1024, true, NULL) == VIRTIO_BLK_S_IOERR,
	       "read across the end fails with IOERR");
	report(req(VIRTIO_BLK_T_IN, ~0ull, b, 512, true, NULL) == VIRTIO_BLK_S_IOERR,
	       "read at sector 2^64-1 fails with IOERR");
	report(req(VIRTIO_BLK_T_IN, 0, b, 100, true, NULL) == VIRTIO_BLK_S_IOERR,
	       "read of 100 bytes (not whole sectors) fails with IOERR");
	report(req(99, 0, b, 512, true, NULL) == VIRTIO_BLK_S_UNSUPP, "unknown request type: UNSUPP");

	/* Indirect: header, data, status in a table. */
	struct gvq *q = &dev.vq[0];
	hdrs[0] = (struct virtio_blk_outhdr){ .type = VIRTIO_BLK_T_IN, .sector = 16 };
	status[0] = 0xee;
	memset(b, 0, 512);
	itable[0] = (struct vring_desc){ (uintptr_t)&hdrs[0], sizeof(hdrs[0]), VRING_DESC_F_NEXT, 1 };
	itable[1] = (struct vring_desc){ (uintptr_t)b, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2 };
	itable[2] = (struct vring_desc){ (uintptr_t)&status[0], 1, VRING_DESC_F_WRITE, 0 };
	gvq_desc(q, 0, itable, sizeof(itable), VRING_DESC_F_INDIRECT, 0);
	gvq_publish(q, 0);
	gvq_kick(q);
	uint32_t id, len;
	report(gvq_wait(q, &id, &len, 5000) && status[0] == VIRTIO_BLK_S_OK &&
	       !memcmp(b, host_pattern, sizeof(host_pattern)), "indirect read");

	/* Many in flight: one kick for 32 reads. */
	for (int k = 0; k < INFLIGHT; k++)
		post(k, VIRTIO_BLK_T_IN, (uint64_t)k * 8, bufs[k], 4096, true);
	gvq_kick(q);
	int got = 0, ok = 0;
	while (got < INFLIGHT && gvq_wait(q, &id, &len, 5000)) {
		got++;
		ok += id % 3 == 0 && id / 3 < INFLIGHT && status[id / 3] == VIRTIO_BLK_S_OK;
	}
	report(got == INFLIGHT && ok == INFLIGHT, "%d requests in flight: %d completed, %d ok", INFLIGHT, got, ok);
	report(!memcmp(bufs[2], host_pattern, sizeof(host_pattern)), "in-flight read of sector 16 right");
	report(!(vdev_status(&dev) & VIRTIO_CONFIG_S_NEEDS_RESET), "device never needed a reset");
	vdev_reset(&dev);
	report(vdev_status(&dev) == 0, "reset reads back 0");
}
