/* A hostile driver (DESIGN rule 3): rings and chains that break every rule
 * the device must check, bad queue setup, writes to read-only registers,
 * BARs moved over RAM and over each other. After each case the device
 * must show DEVICE_NEEDS_RESET (or refuse/ignore the access), Ember must
 * keep running, and after a reset a good request must work again.
 * Needs --disk (>= 1 MiB, sector 16 = "EMBER-HOST-PATTERN") and --rng. */
#include <linux/virtio_blk.h>

#include "kit.h"
#include "virtio.h"

static uint8_t ring[VRING_BYTES] __attribute__((aligned(4096)));
static uint8_t buf[4096] __attribute__((aligned(4096)));
static struct vring_desc table[8] __attribute__((aligned(16)));
static struct vring_desc table2[2] __attribute__((aligned(16)));
static struct virtio_blk_outhdr hdr;
static volatile uint8_t st;
static struct vdev dev, rng;

#define QSIZE 16

static bool fresh(void)
{
	uint64_t want = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_RING_F_INDIRECT_DESC);
	if (!vdev_negotiate(&dev, want) || !vdev_queue(&dev, 0, QSIZE, ring, VIRTIO_MSI_NO_VECTOR))
		return false;
	vdev_driver_ok(&dev);
	return true;
}

static bool needs_reset(void)
{
	uint64_t end = uptime_ms() + 2000;
	while (uptime_ms() < end)
		if (vdev_status(&dev) & VIRTIO_CONFIG_S_NEEDS_RESET)
			return true;
	return false;
}

/* A good 512-byte read of sector 16 through descriptors 0-2. */
static bool good_read(void)
{
	struct gvq *q = &dev.vq[0];
	uint32_t id, len;
	hdr = (struct virtio_blk_outhdr){ .type = VIRTIO_BLK_T_IN, .sector = 16 };
	st = 0xee;
	memset(buf, 0, 32);
	gvq_desc(q, 0, &hdr, sizeof(hdr), VRING_DESC_F_NEXT, 1);
	gvq_desc(q, 1, buf, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
	gvq_desc(q, 2, (void *)&st, 1, VRING_DESC_F_WRITE, 0);
	gvq_publish(q, 0);
	gvq_kick(q);
	return gvq_wait(q, &id, &len, 3000) && st == VIRTIO_BLK_S_OK && !memcmp(buf, "EMBER-HOST-PATTERN", 18);
}

/* Run one bad case: set up, let `bad` scribble, kick, expect NEEDS_RESET,
 * then reset and check the device works again. */
static void expect_broken(const char *what, void (*bad)(struct gvq *q))
{
	if (!fresh()) {
		report(false, "%s: setup", what);
		return;
	}
	bad(&dev.vq[0]);
	gvq_kick(&dev.vq[0]);
	bool broken = needs_reset();
	report(broken, "%s -> DEVICE_NEEDS_RESET", what);
	bool ok = fresh() && !(vdev_status(&dev) & VIRTIO_CONFIG_S_NEEDS_RESET) && good_read();
	report(ok, "%s: works again after reset", what);
}

static void hdr_desc(struct gvq *q, uint16_t i, uint16_t next)
{
	hdr = (struct virtio_blk_outhdr){ .type = VIRTIO_BLK_T_IN, .sector = 16 };
	gvq_desc(q, i, &hdr, sizeof(hdr), VRING_DESC_F_NEXT, next);
}

static void head_out_of_range(struct gvq *q) { gvq_publish(q, 300); }
static void next_out_of_range(struct gvq *q) { hdr_desc(q, 0, 200); gvq_publish(q, 0); }
static void chain_loops(struct gvq *q)
{
	hdr_desc(q, 0, 1);
	gvq_desc(q, 1, buf, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
	gvq_desc(q, 2, buf, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1);
	gvq_publish(q, 0);
}
static void buffer_outside_ram(struct gvq *q)
{
	hdr_desc(q, 0, 1);
	gvq_desc(q, 1, (void *)0xd0000000ul, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
	gvq_desc(q, 2, (void *)&st, 1, VRING_DESC_F_WRITE, 0);
	gvq_publish(q, 0);
}
static void buffer_far_away(struct gvq *q)
{
	hdr_desc(q, 0, 1);
	gvq_desc(q, 1, (void *)0x7ffffffff000ul, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
	gvq_desc(q, 2, (void *)&st, 1, VRING_DESC_F_WRITE, 0);
	gvq_publish(q, 0);
}
static void length_wraps(struct gvq *q)
{
	hdr_desc(q, 0, 1);
	gvq_desc(q, 1, buf, 0xffffffffu, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
	gvq_desc(q, 2, (void *)&st, 1, VRING_DESC_F_WRITE, 0);
	gvq_publish(q, 0);
}
static void address_wraps(struct gvq *q)
{
	hdr_desc(q, 0, 1);
	gvq_desc(q, 1, (void *)~0ul, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
	gvq_desc(q, 2, (void *)&st, 1, VRING_DESC_F_WRITE, 0);
	gvq_publish(q, 0);
}
static void readable_after_writable(struct gvq *q)
{
	hdr_desc(q, 0, 1);
	gvq_desc(q, 1, (void *)&st, 1, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
	gvq_desc(q, 2, buf, 512, 0, 0);
	gvq_publish(q, 0);
}
static void indirect_in_indirect(struct gvq *q)
{
	table2[0] = (struct vring_desc){ (uintptr_t)&st, 1, VRING_DESC_F_WRITE, 0 };
	table[0] = (struct vring_desc){ (uintptr_t)&hdr, sizeof(hdr), VRING_DESC_F_NEXT, 1 };
	table[1] = (struct vring_desc){ (uintptr_t)table2, sizeof(table2), VRING_DESC_F_INDIRECT, 0 };
	gvq_desc(q, 0, table, 2 * sizeof(table[0]), VRING_DESC_F_INDIRECT, 0);
	gvq_publish(q, 0);
}
static void indirect_with_next(struct gvq *q)
{
	table[0] = (struct vring_desc){ (uintptr_t)&st, 1, VRING_DESC_F_WRITE, 0 };
	gvq_desc(q, 0, table, sizeof(table[0]), VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 1);
	gvq_publish(q, 0);
}
static void indirect_loops(struct gvq *q)
{
	table[0] = (struct vring_desc){ (uintptr_t)&hdr, sizeof(hdr), VRING_DESC_F_NEXT, 1 };
	table[1] = (struct vring_desc){ (uintptr_t)buf, 16, VRING_DESC_F_NEXT, 0 };
	gvq_desc(q, 0, table, 2 * sizeof(table[0]), VRING_DESC_F_INDIRECT, 0);
	gvq_publish(q, 0);
}
static void indirect_bad_len(struct gvq *q)
{
	gvq_desc(q, 0, table, 17, VRING_DESC_F_INDIRECT, 0);
	gvq_publish(q, 0);
}
static void indirect_next_out_of_table(struct gvq *q)
{
	table[0] = (struct vring_desc){ (uintptr_t)&hdr, sizeof(hdr), VRING_DESC_F_NEXT, 5 };
	gvq_desc(q, 0, table, 2 * sizeof(table[0]), VRING_DESC_F_INDIRECT, 0);
	gvq_publish(q, 0);
}
static void avail_idx_jumps(struct gvq *q)
{
	q->avail->idx = (uint16_t)(q->avail_idx + 1000);
}
static void no_status_byte(struct gvq *q)
{
	hdr = (struct virtio_blk_outhdr){ .type = VIRTIO_BLK_T_IN, .sector = 16 };
	gvq_desc(q, 0, &hdr, sizeof(hdr), 0, 0);
	gvq_publish(q, 0);
}
static void short_header(struct gvq *q)
{
	gvq_desc(q, 0, &hdr, 8, VRING_DESC_F_NEXT, 1);
	gvq_desc(q, 1, (void *)&st, 1, VRING_DESC_F_WRITE, 0);
	gvq_publish(q, 0);
}

/* Queue setup the device must refuse. */
static void bad_queue(const char *what, uint16_t size, uint64_t desc)
{
	uint64_t want = 1ull << VIRTIO_F_VERSION_1;
	vdev_negotiate(&dev, want);
	volatile struct virtio_pci_common_cfg *c = dev.common;
	c->queue_select = 0;
	c->queue_size = size;
	c->queue_desc_lo = (uint32_t)desc;
	c->queue_desc_hi = (uint32_t)(desc >> 32);
	c->queue_avail_lo = (uint32_t)(uintptr_t)ring + 4096;
	c->queue_used_lo = (uint32_t)(uintptr_t)ring + 8192;
	c->queue_enable = 1;
	report(needs_reset() && c->queue_enable == 0, "%s: queue refused, DEVICE_NEEDS_RESET", what);
	report(fresh() && good_read(), "%s: works again after reset", what);
}

static void registers(void)
{
	volatile struct virtio_pci_common_cfg *c = dev.common;
	volatile struct virtio_blk_config *cfg = (volatile void *)dev.devcfg;
	fresh();
	uint64_t cap = cfg->capacity;
	cfg->capacity = 1;
	*(volatile uint32_t *)&cfg->seg_max = 7;
	report(cfg->capacity == cap, "write to read-only capacity ignored");
	uint16_t nq = c->num_queues;
	c->num_queues = 77;
	c->device_feature_select = 0;
	uint32_t f = c->device_feature;
	c->device_feature = 0;
	report(c->num_queues == nq && c->device_feature == f, "num_queues and device_feature are read-only");
	c->queue_select = 5;
	report(c->queue_size == 0, "a queue that does not exist has size 0");
	c->queue_select = 0;
	c->queue_msix_vector = 999;
	report(c->queue_msix_vector == VIRTIO_MSI_NO_VECTOR, "MSI-X vector out of range reads NO_VECTOR");
	c->queue_size = 8;
	report(c->queue_size == QSIZE, "queue size of a live queue cannot change");
	report(good_read(), "device still works after the register abuse");

	/* FEATURES_OK without VERSION_1 (legacy): refused. */
	vdev_reset(&dev);
	c->device_status = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER;
	c->guest_feature_select = 0;
	c->guest_feature = 0;
	c->guest_feature_select = 1;
	c->guest_feature = 0;
	c->device_status = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK;
	report(!(c->device_status & VIRTIO_CONFIG_S_FEATURES_OK), "FEATURES_OK without VERSION_1 refused");
	c->guest_feature_select = 1;
	c->guest_feature = 0x80000000u;     /* bit 63: never offered */
	c->guest_feature_select = 0;
	c->device_status = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK;
	report(!(c->device_status & VIRTIO_CONFIG_S_FEATURES_OK), "FEATURES_OK with an unoffered feature refused");
}

static void bars(void)
{
	uint64_t b0 = pci_bar(&dev.f, 0), r0 = pci_bar(&rng.f, 0);
	/* Over RAM: our own buffer's page. RAM must stay RAM. */
	memcpy(buf, "RAM-STAYS-RAM", 14);
	pci_write(&dev.f, 0x10, 4, (uint32_t)(uintptr_t)buf);
	report(!memcmp(buf, "RAM-STAYS-RAM", 14), "BAR moved over RAM: RAM still reads as RAM");
	pci_write(&dev.f, 0x10, 4, (uint32_t)b0);
	report(fresh() && good_read(), "BAR moved back: device works");
	/* Over each other: blk's BAR onto rng's, then back. */
	pci_write(&dev.f, 0x10, 4, (uint32_t)r0);
	volatile struct virtio_pci_common_cfg *c = (volatile void *)(uintptr_t)r0;
	report(c->num_queues >= 1, "BARs on top of each other: reads still answer");
	pci_write(&dev.f, 0x10, 4, (uint32_t)b0);
	report(fresh() && good_read(), "BARs apart again: blk works");
	/* Outside every window (the LAPIC page): not decoded there. */
	pci_write(&dev.f, 0x10, 4, 0xfee00000u);
	pci_write(&dev.f, 0x10, 4, (uint32_t)b0);
	report(fresh() && good_read(), "BAR moved onto the LAPIC and back: device works");
}

void kmain(void)
{
	if (!report(vdev_open(&dev, 2, 0) && vdev_open(&rng, 4, 0), "virtio-blk and virtio-rng found"))
		return;
	report(fresh() && good_read(), "a good request works");
	expect_broken("avail head 300 of 16", head_out_of_range);
	expect_broken("next index 200 of 16", next_out_of_range);
	expect_broken("chain that loops", chain_loops);
	expect_broken("buffer in the MMIO hole", buffer_outside_ram);
	expect_broken("buffer at 128 TiB", buffer_far_away);
	expect_broken("length 0xffffffff", length_wraps);
	expect_broken("address that wraps", address_wraps);
	expect_broken("readable after writable", readable_after_writable);
	expect_broken("indirect table inside an indirect table", indirect_in_indirect);
	expect_broken("INDIRECT together with NEXT", indirect_with_next);
	expect_broken("indirect chain that loops", indirect_loops);
	expect_broken("indirect table length 17", indirect_bad_len);
	expect_broken("indirect next past the table", indirect_next_out_of_table);
	expect_broken("avail idx 1000 ahead", avail_idx_jumps);
	expect_broken("blk request without a status byte", no_status_byte);
	expect_broken("blk header of 8 bytes", short_header);
	bad_queue("queue size 100 (not a power of two)", 100, (uintptr_t)ring);
	bad_queue("queue size 512 (above the maximum)", 512, (uintptr_t)ring);
	bad_queue("descriptor ring in the MMIO hole", QSIZE, 0xd0000000ul);
	bad_queue("misaligned descriptor ring", QSIZE, (uintptr_t)ring + 8);
	registers();
	bars();
	vdev_reset(&dev);
}
