/* virtio-blk and virtio-rng across a snapshot or a migration: the guest
 * sets both devices up with MSI-X, writes sectors 0-7 (pattern A), prints
 * "migvirtio: ready" and then, for `seconds=N` of guest time, loops:
 * write a sector of 64-127 with a pattern naming the round, read it back,
 * compare, fetch random bytes; every request must complete and be
 * interrupted by MSI-X. The host snapshots or migrates it meanwhile. At
 * the end sectors 0-7 must still hold pattern A. Exit status 1 = all
 * passed. */
#include <linux/virtio_blk.h>

#include "kit.h"
#include "virtio.h"

#define VEC_BLK 0x41
#define VEC_RNG 0x42

static uint8_t blk_ring[VRING_BYTES] __attribute__((aligned(4096)));
static uint8_t rng_ring[VRING_BYTES] __attribute__((aligned(4096)));
static uint8_t wbuf[512] __attribute__((aligned(512)));
static uint8_t rbuf[512] __attribute__((aligned(512)));
static uint8_t rnd[32];
static struct virtio_blk_outhdr hdr;
static volatile uint8_t status;
static struct vdev blk, rng;

struct tally { unsigned long ok, bad, noirq; };
static struct tally blk_t, rng_t;

static void fill(uint8_t *b, char tag, unsigned long round, unsigned long sector)
{
	for (unsigned i = 0; i < 512; i += 16)
		snprintf((char *)b + i, 16, "%c%06lu:%06lu", tag, round % 1000000, sector);
}

/* Wait for the one request in flight: used entry, then its interrupt. */
static bool finish(struct vdev *d, uint8_t vec, struct tally *t, long before, uint32_t *len)
{
	uint32_t id;
	if (!gvq_wait(&d->vq[0], &id, len, 5000)) {
		t->bad++;
		return false;
	}
	if (!irq_wait(vec, before + 1, 2000))
		t->noirq++;
	return true;
}

static int blk_req(uint32_t type, uint64_t sector, void *data, bool dev_writes)
{
	struct gvq *q = &blk.vq[0];
	uint32_t len;
	long before = irq_count(VEC_BLK);
	hdr = (struct virtio_blk_outhdr){ .type = type, .sector = sector };
	status = 0xee;
	gvq_desc(q, 0, &hdr, sizeof(hdr), VRING_DESC_F_NEXT, 1);
	gvq_desc(q, 1, data, 512, VRING_DESC_F_NEXT | (dev_writes ? VRING_DESC_F_WRITE : 0), 2);
	gvq_desc(q, 2, (void *)&status, 1, VRING_DESC_F_WRITE, 0);
	gvq_publish(q, 0);
	gvq_kick(q);
	if (!finish(&blk, VEC_BLK, &blk_t, before, &len))
		return 0xee;
	return status;
}

static void rng_req(void)
{
	struct gvq *q = &rng.vq[0];
	uint32_t len = 0;
	long before = irq_count(VEC_RNG);
	memset(rnd, 0, sizeof(rnd));
	gvq_desc(q, 0, rnd, sizeof(rnd), VRING_DESC_F_WRITE, 0);
	gvq_publish(q, 0);
	gvq_kick(q);
	if (finish(&rng, VEC_RNG, &rng_t, before, &len)) {
		if (len == sizeof(rnd))
			rng_t.ok++;
		else
			rng_t.bad++;
	}
}

/* Write, read back, compare one sector. */
static void round_trip(char tag, unsigned long round, uint64_t sector)
{
	fill(wbuf, tag, round, sector);
	memset(rbuf, 0, sizeof(rbuf));
	if (blk_req(VIRTIO_BLK_T_OUT, sector, wbuf, false) == VIRTIO_BLK_S_OK &&
	    blk_req(VIRTIO_BLK_T_IN, sector, rbuf, true) == VIRTIO_BLK_S_OK &&
	    !memcmp(wbuf, rbuf, sizeof(rbuf)))
		blk_t.ok++;
	else
		blk_t.bad++;
}

static bool setup(struct vdev *d, uint16_t id, uint64_t want, void *ring, uint8_t vec)
{
	if (!vdev_open(d, id, 0) || !d->has_msix)
		return false;
	/* No EVENT_IDX: every used buffer interrupts. */
	if (!vdev_negotiate(d, want))
		return false;
	msix_route(&d->msix, 1, vec);
	msix_enable(&d->msix, true);
	if (!vdev_queue(d, 0, 16, ring, 1))
		return false;
	vdev_driver_ok(d);
	return true;
}

void kmain(void)
{
	uint64_t seconds = 4;
	cmdline_get_u64("seconds", &seconds);
	irq_init();
	if (!report(setup(&blk, 2, 1ull << VIRTIO_F_VERSION_1, blk_ring, VEC_BLK), "virtio-blk set up with MSI-X") ||
	    !report(setup(&rng, 4, 1ull << VIRTIO_F_VERSION_1, rng_ring, VEC_RNG), "virtio-rng set up with MSI-X"))
		return;
	for (unsigned s = 0; s < 8; s++)
		round_trip('A', 0, s);
	rng_req();
	report(blk_t.ok == 8 && !blk_t.bad && !blk_t.noirq && rng_t.ok == 1,
	       "before: 8 sectors written and read back, interrupts arrived");
	struct tally b0 = blk_t, r0 = rng_t;
	printf("migvirtio: ready\n");

	uint64_t end = uptime_ms() + seconds * 1000, next = uptime_ms() + 1000;
	unsigned long round = 1;
	for (; uptime_ms() < end; round++) {
		round_trip('B', round, 64 + round % 64);
		rng_req();
		if (uptime_ms() >= next) {
			printf("migvirtio: alive %lu\n", round);
			next += 1000;
		}
	}
	report(blk_t.ok > b0.ok && blk_t.bad == 0, "during: %lu block round trips, %lu bad",
	       blk_t.ok - b0.ok, blk_t.bad);
	report(rng_t.ok > r0.ok && rng_t.bad == 0, "during: %lu rng fetches, %lu bad", rng_t.ok - r0.ok, rng_t.bad);
	report(blk_t.noirq == 0 && rng_t.noirq == 0, "every request interrupted by MSI-X (%lu, %lu missing)",
	       blk_t.noirq, rng_t.noirq);
	unsigned long ok = blk_t.ok;
	for (unsigned s = 0; s < 8; s++) {
		uint8_t want[512];
		fill(want, 'A', 0, s);
		memset(rbuf, 0, sizeof(rbuf));
		if (blk_req(VIRTIO_BLK_T_IN, s, rbuf, true) == VIRTIO_BLK_S_OK && !memcmp(want, rbuf, sizeof(rbuf)))
			blk_t.ok++;
	}
	report(blk_t.ok == ok + 8, "sectors 0-7 still hold what was written before");
	printf("migvirtio: rounds %lu\n", round);
}
