/* virtio-blk benchmark, the same kernel under Ember and QEMU (bench/blk.sh):
 * sequential 1 MiB reads and writes (4 in flight) and 4 KiB random reads
 * and writes (32 in flight), polling the used ring at CPL3 with
 * interrupts suppressed (VRING_AVAIL_F_NO_INTERRUPT), one doorbell per
 * batch. Time from the TSC, calibrated against the ACPI PM timer. Prints
 * "RESULT name value unit" lines between BENCH-START and BENCH-END.
 * Command line: sectors=N [mib=M] [ios=N]. */
#include <linux/virtio_blk.h>

#include "kit.h"
#include "virtio.h"

#define QSIZE 128
#define MAXQD 32
#define BIG   (1024 * 1024)

static uint8_t ring[VRING_BYTES] __attribute__((aligned(4096)));
static uint8_t big[4][BIG] __attribute__((aligned(4096)));
static uint8_t small[MAXQD][4096] __attribute__((aligned(4096)));
static struct virtio_blk_outhdr hdrs[MAXQD];
static volatile uint8_t status[MAXQD];
static struct vdev dev;
static uint64_t sectors;

struct job {
	uint32_t type;
	unsigned qd, size;
	uint64_t count;
	bool random;
	uint64_t cycles, errors;
};

static void post(struct gvq *q, unsigned k, const struct job *j, uint64_t sector)
{
	uint16_t d = (uint16_t)(3 * k);
	void *buf = j->size == BIG ? (void *)big[k] : (void *)small[k];
	hdrs[k] = (struct virtio_blk_outhdr){ .type = j->type, .sector = sector };
	q->desc[d] = (struct vring_desc){ (uintptr_t)&hdrs[k], sizeof(hdrs[k]), VRING_DESC_F_NEXT, (uint16_t)(d + 1) };
	q->desc[d + 1] = (struct vring_desc){ (uintptr_t)buf, j->size,
		(uint16_t)(VRING_DESC_F_NEXT | (j->type == VIRTIO_BLK_T_IN ? VRING_DESC_F_WRITE : 0)), (uint16_t)(d + 2) };
	q->desc[d + 2] = (struct vring_desc){ (uintptr_t)&status[k], 1, VRING_DESC_F_WRITE, 0 };
	q->avail->ring[q->avail_idx % q->size] = d;
	q->avail_idx++;
}

/* Runs at CPL3: no printing, only rings and MMIO. */
static long run_job(void *arg)
{
	struct job *j = arg;
	struct gvq *q = &dev.vq[0];
	uint64_t span = sectors - j->size / 512, seq = 0, rnd = 0x9e3779b97f4a7c15ull;
	uint64_t issued = 0, done = 0;
	uint64_t t0 = rdtsc();
	for (unsigned k = 0; k < j->qd && issued < j->count; k++, issued++) {
		uint64_t s;
		if (j->random) {
			rnd = rnd * 6364136223846793005ull + 1442695040888963407ull;
			s = ((rnd >> 20) % span) & ~7ull;
		} else {
			s = seq;
			seq = (seq + j->size / 512) % span;
		}
		post(q, k, j, s);
	}
	__asm__ volatile("" ::: "memory");
	q->avail->idx = q->avail_idx;
	gvq_kick(q);
	while (done < j->count) {
		uint32_t id, len;
		bool any = false;
		while (gvq_used(q, &id, &len)) {
			unsigned k = id / 3;
			done++;
			any = true;
			if (status[k] != VIRTIO_BLK_S_OK)
				j->errors++;
			if (issued < j->count) {
				uint64_t s;
				if (j->random) {
					rnd = rnd * 6364136223846793005ull + 1442695040888963407ull;
					s = ((rnd >> 20) % span) & ~7ull;
				} else {
					s = seq;
					seq = (seq + j->size / 512) % span;
				}
				post(q, k, j, s);
				issued++;
			}
		}
		if (any) {
			__asm__ volatile("" ::: "memory");
			if (q->avail->idx != q->avail_idx) {
				q->avail->idx = q->avail_idx;
				gvq_kick(q);
			}
		} else {
			cpu_relax();
		}
	}
	j->cycles = rdtsc() - t0;
	return 0;
}

/* TSC ticks per second, against the ACPI PM timer (3.579545 MHz). */
static uint64_t calibrate(void)
{
	const uint8_t *fadt = (const uint8_t *)acpi_find_table("FACP", 0);
	uint16_t port = 0x608;
	if (fadt)
		port = (uint16_t)(fadt[76] | fadt[77] << 8);
	uint32_t p0 = inl(port) & 0xffffff;
	uint64_t t0 = rdtsc();
	uint32_t p1;
	do
		p1 = inl(port) & 0xffffff;
	while (((p1 - p0) & 0xffffff) < 357954);     /* 100 ms */
	uint64_t t1 = rdtsc();
	return (t1 - t0) * 3579545ull / ((p1 - p0) & 0xffffff);
}

static void run(const char *name, struct job *j, uint64_t hz)
{
	run_user(run_job, j);
	uint64_t us = j->cycles * 1000000ull / hz;
	if (j->size == BIG)
		printf("RESULT %s %lu MiB/s (%lu requests, %lu errors, %lu us)\n", name,
		       (unsigned long)(j->count * 1000000ull / (us ? us : 1)), (unsigned long)j->count,
		       (unsigned long)j->errors, (unsigned long)us);
	else
		printf("RESULT %s %lu IOPS (%lu requests, %lu errors, %lu us)\n", name,
		       (unsigned long)(j->count * 1000000ull / (us ? us : 1)), (unsigned long)j->count,
		       (unsigned long)j->errors, (unsigned long)us);
	report(j->errors == 0, "%s: no errors", name);
}

void kmain(void)
{
	uint64_t mib = 512, ios = 50000;
	cmdline_get_u64("sectors", &sectors);
	cmdline_get_u64("mib", &mib);
	cmdline_get_u64("ios", &ios);
	if (!report(sectors >= 4096 && vdev_open(&dev, 2, 0), "virtio-blk found, sectors=%lu", (unsigned long)sectors))
		exit(1);
	if (!report(vdev_negotiate(&dev, 1ull << VIRTIO_F_VERSION_1) &&
		    vdev_queue(&dev, 0, QSIZE, ring, VIRTIO_MSI_NO_VECTOR), "set up"))
		exit(1);
	dev.vq[0].avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
	vdev_driver_ok(&dev);
	uint64_t hz = calibrate();
	printf("# TSC %lu kHz\n", (unsigned long)(hz / 1000));
	puts("BENCH-START");
	mdelay(500);
	struct job sw = { VIRTIO_BLK_T_OUT, 4, BIG, mib, false, 0, 0 };
	struct job sr = { VIRTIO_BLK_T_IN, 4, BIG, mib, false, 0, 0 };
	struct job rr = { VIRTIO_BLK_T_IN, MAXQD, 4096, ios, true, 0, 0 };
	struct job rw = { VIRTIO_BLK_T_OUT, MAXQD, 4096, ios, true, 0, 0 };
	run("seq-write-1M", &sw, hz);
	run("seq-read-1M", &sr, hz);
	run("rand-read-4K", &rr, hz);
	run("rand-write-4K", &rw, hz);
	printf("REQUESTS %lu\n", (unsigned long)(sw.count + sr.count + rr.count + rw.count));
	puts("BENCH-END");
	mdelay(1000);
}
