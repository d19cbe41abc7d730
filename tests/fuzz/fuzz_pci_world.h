/* Shared by fuzz_pci, fuzz_virtio and fuzz_devstate: a VM's PCI side
 * without KVM, as vm_pci.c builds it. Guest RAM from mem_create (256 KiB,
 * between guard pages), the port and MMIO buses a vCPU dispatches on, the
 * host bridge (mechanism #1, ECAM, BAR windows), and in slots 1-5
 * virtio-blk (on a 64 KiB memfd image), virtio-net (on a socketpair
 * instead of a tap), virtio-rng, pci-testdev and virtio-balloon
 * (reporting, DONTNEED), all on a real event loop. The VM's KVM side is
 * faked (DESIGN rule 1), with checks: MSI routes and INTx levels, and
 * ioeventfds that, like KVM's, take a guest write of the registered
 * length at the registered address before it reaches the bus. The world
 * is built once and put back to its reset state before each input
 * (world_reset); world_check asserts what no guest may change. */
#ifndef FUZZ_PCI_WORLD_H
#define FUZZ_PCI_WORLD_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "arch/x86/layout.h"
#include "bus.h"
#include "devices/pci.h"
#include "devices/pci_testdev.h"
#include "devices/virtio/balloon.h"
#include "devices/virtio/blk.h"
#include "devices/virtio/net.h"
#include "devices/virtio/rng.h"
#include "devices/virtio/virtio.h"
#include "discard.h"
#include "log.h"
#include "loop.h"
#include "mem.h"

#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, "check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); abort(); } } while (0)

#define W_RAM      (256 * 1024)
#define W_DISK     (64 * 1024)
#define W_ROUTES   128          /* MSI routes the fake sink hands out */
#define W_IOEVENTS 64

enum { V_BLK, V_NET, V_RNG, V_BALLOON, V_COUNT };
/* PCI functions in slot order: the bridge, blk, net, rng, testdev, balloon. */
#define W_PCI 6

struct w_ioevent {
	uint64_t addr;
	unsigned len;
	int fd;
};

static struct world {
	struct guest_mem mem;
	struct bus pio, mmio;
	struct loop loop;
	struct pci_host host;
	struct msi_sink msi;
	unsigned routes;
	uint64_t fired;
	struct ioevent_sink ioev;
	struct w_ioevent ioevents[W_IOEVENTS];
	unsigned nioevents;
	struct irq_line intx[PCI_SLOTS];
	int intx_level[PCI_SLOTS];
	struct discard_map discard;
	struct virtio_dev *vd[V_COUNT];
	struct pci_testdev *testdev;
	struct pci_dev *pci[W_PCI];
	uint8_t cfg0[W_PCI][PCI_CFG_BYTES];   /* config space after plugging */
	uint8_t ro[W_PCI][PCI_CFG_BYTES];     /* bits no guest may change */
	int disk, net_dev, net_peer;
	bool ready;
} w;

static int w_msi_alloc(struct msi_sink *s)
{
	CHECK(w.routes < W_ROUTES);
	return (int)w.routes++;
}

static int w_msi_set(struct msi_sink *s, int h, uint64_t addr, uint32_t data)
{
	CHECK(h >= 0 && (unsigned)h < w.routes);
	return (addr >> 20) == 0xfee ? 0 : -EINVAL;   /* KVM takes any address; be picky */
}

static void w_msi_fire(struct msi_sink *s, int h)
{
	CHECK(h >= 0 && (unsigned)h < w.routes);
	w.fired++;
}

/* KVM refuses a second ioeventfd on the same address and length. */
static int w_ioev_add(struct ioevent_sink *s, uint64_t addr, unsigned len, int fd)
{
	for (unsigned i = 0; i < w.nioevents; i++)
		if (w.ioevents[i].addr == addr && w.ioevents[i].len == len)
			return -EEXIST;
	CHECK(w.nioevents < W_IOEVENTS);
	w.ioevents[w.nioevents++] = (struct w_ioevent){ addr, len, fd };
	return 0;
}

static int w_ioev_del(struct ioevent_sink *s, uint64_t addr, unsigned len, int fd)
{
	for (unsigned i = 0; i < w.nioevents; i++) {
		if (w.ioevents[i].addr == addr && w.ioevents[i].len == len && w.ioevents[i].fd == fd) {
			w.ioevents[i] = w.ioevents[--w.nioevents];
			return 0;
		}
	}
	return -ENOENT;
}

static void w_intx_set(struct irq_line *line, int level)
{
	CHECK(level == 0 || level == 1);
	w.intx_level[line - w.intx] = level;
}

/* A guest MMIO write as KVM delivers it: to an ioeventfd, else the bus. */
static void w_mmio_write(uint64_t addr, unsigned size, uint64_t v)
{
	for (unsigned i = 0; i < w.nioevents; i++) {
		if (w.ioevents[i].addr == addr && w.ioevents[i].len == size) {
			CHECK(eventfd_write(w.ioevents[i].fd, 1) == 0);
			return;
		}
	}
	bus_write(&w.mmio, addr, size, v);
}

static uint64_t w_mmio_read(uint64_t addr, unsigned size)
{
	uint64_t v = 0;
	bus_read(&w.mmio, addr, size, &v);
	return v;
}

static struct virtio_env w_env(unsigned slot)
{
	return (struct virtio_env){ .mem = &w.mem, .loop = &w.loop, .msi = &w.msi, .ioev = &w.ioev,
				    .intx = &w.intx[slot] };
}

static void w_plug(unsigned slot, struct pci_dev *d)
{
	CHECK(pci_host_add(&w.host, d) == 0);
	CHECK(d->slot == slot);
	w.pci[slot] = d;
}

static void world_setup(void)
{
	log_level = LOG_ERROR;          /* NEEDS_RESET warnings by the million */
	CHECK(mem_create(&w.mem, W_RAM) == 0);
	bus_init(&w.pio, "pio");
	bus_init(&w.mmio, "mmio");
	CHECK(loop_init(&w.loop) == 0);
	w.msi = (struct msi_sink){ w_msi_alloc, w_msi_set, w_msi_fire, NULL };
	w.ioev = (struct ioevent_sink){ w_ioev_add, w_ioev_del, NULL };
	for (unsigned s = 0; s < PCI_SLOTS; s++)
		w.intx[s] = (struct irq_line){ .set_level = w_intx_set, .gsi = 16 + s % 8 };
	pci_host_init(&w.host, LAYOUT_PCI_MMIO32, LAYOUT_PCI_MMIO32_END, LAYOUT_PCI_MMIO64,
		      LAYOUT_PCI_MMIO64_END);
	CHECK(pci_host_attach(&w.host, &w.pio, &w.mmio, LAYOUT_PCI_ECAM, LAYOUT_PCI_ECAM_SIZE) == 0);
	w.pci[0] = &w.host.bridge;

	char path[64], err[256] = "";
	w.disk = memfd_create("fuzz-disk", MFD_CLOEXEC);
	CHECK(w.disk >= 0 && ftruncate(w.disk, W_DISK) == 0);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", w.disk);
	struct virtio_env env = w_env(1);
	struct blk_opts bo = { .path = path, .serial = "fuzz-serial" };
	if (virtio_blk_create(&env, &bo, &w.vd[V_BLK], err, sizeof(err))) {
		fprintf(stderr, "virtio-blk: %s\n", err);
		abort();
	}
	w_plug(1, &w.vd[V_BLK]->pci);

	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
	w.net_dev = sv[0];
	w.net_peer = sv[1];
	static const uint8_t mac[6] = { 0x52, 0x54, 0, 0x12, 0x34, 0x56 };
	env = w_env(2);
	CHECK(virtio_net_create_fd(&env, w.net_dev, "fuzz-sock", mac, &w.vd[V_NET]) == 0);
	w_plug(2, &w.vd[V_NET]->pci);

	env = w_env(3);
	CHECK(virtio_rng_create(&env, &w.vd[V_RNG]) == 0);
	w_plug(3, &w.vd[V_RNG]->pci);

	CHECK((w.testdev = pci_testdev_create()) != NULL);
	w_plug(4, &w.testdev->pci);

	CHECK(discard_init(&w.discard, W_RAM) == 0);
	struct balloon_opts o = { .size = 16 * 4096, .deflate_on_oom = true, .reporting = true,
				  .mode = BALLOON_DONTNEED };
	env = w_env(5);
	CHECK(virtio_balloon_create(&env, &o, &w.discard, &w.vd[V_BALLOON]) == 0);
	w_plug(5, &w.vd[V_BALLOON]->pci);

	for (unsigned i = 0; i < W_PCI; i++) {
		memcpy(w.cfg0[i], w.pci[i]->cfg, PCI_CFG_BYTES);
		for (unsigned off = 0; off < PCI_CFG_BYTES; off++)
			w.ro[i][off] = (uint8_t)~w.pci[i]->wmask[off];
		w.ro[i][PCI_STATUS] = 0;        /* the interrupt bit follows INTx */
	}
	w.ready = true;
}

static void w_drain(int fd)
{
	uint8_t buf[256];
	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
		;
}

/* What a system reset does to PCI: every function back to its config
 * space at boot (BARs where firmware put them), MSI-X off and masked,
 * virtio devices reset; then guest RAM cleared and the net link empty. */
static void world_reset(void)
{
	if (!w.ready)
		world_setup();
	bus_write(&w.pio, PCI_CF8_PORT, 4, 0);
	for (unsigned v = 0; v < V_COUNT; v++)
		virtio_bar_write(w.vd[v], VIRTIO_PCI_COMMON_STATUS, 1, 0);
	for (unsigned i = 0; i < W_PCI; i++) {
		struct pci_dev *d = w.pci[i];
		for (unsigned off = 0; off < PCI_CFG_BYTES; off += 4) {
			uint32_t m, v;
			memcpy(&m, d->wmask + off, 4);
			memcpy(&v, w.cfg0[i] + off, 4);
			if (m)
				pci_cfg_write(d, off, 4, v);
		}
		struct pci_msix *x = &d->msix;
		pthread_mutex_lock(&x->lock);
		for (unsigned e = 0; e < x->nvec; e++)
			x->table[e].addr_lo = x->table[e].addr_hi = x->table[e].data = 0,
			x->table[e].ctrl = PCI_MSIX_ENTRY_CTRL_MASKBIT;
		x->pba = x->dirty = 0;
		pthread_mutex_unlock(&x->lock);
	}
	for (int b = 0; b < 2; b++) {
		w.testdev->bar[b].test = PCI_TESTDEV_TESTS;
		w.testdev->bar[b].count = 0;
	}
	balloon_set_target(w.vd[V_BALLOON], 16 * 4096);
	while (loop_run_once(&w.loop, 0) > 0)
		;
	w_drain(w.net_dev);
	w_drain(w.net_peer);
	memset(w.mem.host, 0, W_RAM);
}

/* The address the guest would find in BAR b of function d (0: none). */
static uint64_t w_bar_addr(const struct pci_dev *d, unsigned b)
{
	if (b >= PCI_BARS || !d->bar[b].size)
		return 0;
	return d->bar[b].addr;
}

/* What no guest can change, after every access. Not instrumented: its
 * comparisons would only slow the fuzzer down and mislead it, and ASan's
 * checks of its reads (of the world's own arrays, 24 KiB of config space
 * a call) were a third of fuzz_pci's time. */
__attribute__((no_sanitize("coverage", "address")))
static void world_check(void)
{
	CHECK(w.nioevents <= W_IOEVENTS);
	for (unsigned i = 0; i < W_PCI; i++) {
		const struct pci_dev *d = w.pci[i];
		uint64_t changed = 0;
		for (unsigned off = 0; off < PCI_CFG_BYTES; off += 8) {
			uint64_t now, then, ro;
			memcpy(&now, d->cfg + off, 8);
			memcpy(&then, w.cfg0[i] + off, 8);
			memcpy(&ro, w.ro[i] + off, 8);
			changed |= (now ^ then) & ro;
		}
		CHECK(!changed);     /* a read-only config bit changed */
		for (unsigned b = 0; b < PCI_BARS; b++) {
			const struct pci_bar *bar = &d->bar[b];
			if (!bar->mapped)
				continue;
			CHECK(bar->mapped == bar->addr);
			uint64_t end = bar->mapped + bar->size;
			if (bar->io)
				CHECK(bar->mapped >= PCI_IO_WINDOW && end <= PCI_IO_WINDOW_END);
			else
				CHECK((bar->mapped >= LAYOUT_PCI_MMIO32 && end <= LAYOUT_PCI_MMIO32_END) ||
				      (bar->mapped >= LAYOUT_PCI_MMIO64 && end <= LAYOUT_PCI_MMIO64_END));
		}
		if (d->msix.nvec && d->msix.nvec < 64)
			CHECK(!(d->msix.pba >> d->msix.nvec));
	}
	for (unsigned v = 0; v < V_COUNT; v++) {
		const struct virtio_dev *vd = w.vd[v];
		CHECK(vd->msix_config == VIRTIO_MSI_NO_VECTOR || vd->msix_config < vd->pci.msix.nvec);
		for (unsigned q = 0; q < vd->nqueues; q++) {
			const struct virtq *vq = &vd->vq[q];
			CHECK(vd->queue_vector[q] == VIRTIO_MSI_NO_VECTOR ||
			      vd->queue_vector[q] < vd->pci.msix.nvec);
			if (!vq->enabled)
				continue;
			CHECK(vq->size && !(vq->size & (vq->size - 1)) && vq->size <= vq->max_size);
			CHECK(mem_ptr(&w.mem, vq->desc_gpa, 16ull * vq->size) == vq->desc);
			/* The device never returns more chains than it took. */
			CHECK((uint16_t)(vq->last_avail - vq->used_idx) <= vq->size);
		}
	}
}

/* The driver's side, through the bus: BAR 0 registers and ECAM. */
static inline void w_cw(struct virtio_dev *vd, unsigned off, unsigned width, uint64_t v)
{
	w_mmio_write(w_bar_addr(&vd->pci, 0) + off, width, v);
}

static inline uint64_t w_cr(struct virtio_dev *vd, unsigned off, unsigned width)
{
	return w_mmio_read(w_bar_addr(&vd->pci, 0) + off, width);
}

static inline void w_ecam_write(struct virtio_dev *vd, unsigned reg, unsigned width, uint32_t v)
{
	w_mmio_write(LAYOUT_PCI_ECAM + ((uint64_t)vd->pci.slot << 15) + reg, width, v);
}

/* Where a queue's rings go: with queue size N, queue q's descriptor table
 * at base + q * (32 N + 64), its avail ring right after the table, its
 * used ring after that, 4-byte aligned (make_seeds.py does the same). */
static inline void w_ring_layout(uint64_t base, unsigned q, uint16_t n, uint64_t *desc, uint64_t *avail,
				 uint64_t *used)
{
	*desc = base + (uint64_t)q * (32u * n + 64);
	*avail = *desc + 16u * n;
	*used = *avail + ((6u + 2u * n + 3) & ~3u);
}

/* Features: VERSION_1, EVENT_IDX (ring bit 0), INDIRECT_DESC (bit 1) and
 * the device features pick selects (bit k: the k-th one offered). */
static inline uint64_t w_choose_features(uint64_t offered, uint8_t ring, uint8_t pick)
{
	uint64_t f = 1ULL << VIRTIO_F_VERSION_1;
	if (ring & 1)
		f |= 1ULL << VIRTIO_RING_F_EVENT_IDX;
	if (ring & 2)
		f |= 1ULL << VIRTIO_RING_F_INDIRECT_DESC;
	unsigned k = 0;
	for (unsigned bit = 0; bit < 24; bit++)
		if (offered & (1ULL << bit) && (pick >> k++ & 1))
			f |= 1ULL << bit;
	return f & offered;
}

/* Linux's virtio_pci_modern probe and setup: reset, features, MSI-X
 * (vector 0 for configuration changes, q + 1 for queue q) or INTx, every
 * queue at size qsize (or the device's maximum) in RAM from ring_base,
 * DRIVER_OK. */
static inline void w_driver_init(struct virtio_dev *vd, uint16_t qsize, uint8_t ring, uint8_t pick,
				 bool msix, uint64_t ring_base)
{
	uint8_t st = VIRTIO_CONFIG_S_ACKNOWLEDGE;
	w_cw(vd, VIRTIO_PCI_COMMON_STATUS, 1, 0);
	w_cw(vd, VIRTIO_PCI_COMMON_STATUS, 1, st);
	w_cw(vd, VIRTIO_PCI_COMMON_STATUS, 1, st |= VIRTIO_CONFIG_S_DRIVER);
	uint64_t offered = 0;
	for (unsigned s = 0; s < 2; s++) {
		w_cw(vd, VIRTIO_PCI_COMMON_DFSELECT, 4, s);
		offered |= w_cr(vd, VIRTIO_PCI_COMMON_DF, 4) << (32 * s);
	}
	uint64_t f = w_choose_features(offered, ring, pick);
	for (unsigned s = 0; s < 2; s++) {
		w_cw(vd, VIRTIO_PCI_COMMON_GFSELECT, 4, s);
		w_cw(vd, VIRTIO_PCI_COMMON_GF, 4, (uint32_t)(f >> (32 * s)));
	}
	w_cw(vd, VIRTIO_PCI_COMMON_STATUS, 1, st |= VIRTIO_CONFIG_S_FEATURES_OK);
	CHECK(w_cr(vd, VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_FEATURES_OK);   /* all offered */

	unsigned nq = (unsigned)w_cr(vd, VIRTIO_PCI_COMMON_NUMQ, 2);
	CHECK(nq == vd->nqueues);
	if (msix) {
		w_ecam_write(vd, vd->pci.msix.cap + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE);
		for (unsigned e = 0; e <= nq; e++) {
			unsigned t = VIRTIO_MSIX_OFF + 16 * e;
			w_cw(vd, t + PCI_MSIX_ENTRY_LOWER_ADDR, 4, 0xfee00000u);
			w_cw(vd, t + PCI_MSIX_ENTRY_UPPER_ADDR, 4, 0);
			w_cw(vd, t + PCI_MSIX_ENTRY_DATA, 4, 0x30 + e);
			w_cw(vd, t + PCI_MSIX_ENTRY_VECTOR_CTRL, 4, 0);
		}
		w_cw(vd, VIRTIO_PCI_COMMON_MSIX, 2, 0);
	}
	for (unsigned q = 0; q < nq; q++) {
		w_cw(vd, VIRTIO_PCI_COMMON_Q_SELECT, 2, q);
		uint16_t max = (uint16_t)w_cr(vd, VIRTIO_PCI_COMMON_Q_SIZE, 2);
		uint16_t n = qsize < max ? qsize : max;
		uint64_t desc, avail, used;
		w_ring_layout(ring_base, q, n, &desc, &avail, &used);
		w_cw(vd, VIRTIO_PCI_COMMON_Q_SIZE, 2, n);
		w_cw(vd, VIRTIO_PCI_COMMON_Q_DESCLO, 4, (uint32_t)desc);
		w_cw(vd, VIRTIO_PCI_COMMON_Q_DESCHI, 4, 0);
		w_cw(vd, VIRTIO_PCI_COMMON_Q_AVAILLO, 4, (uint32_t)avail);
		w_cw(vd, VIRTIO_PCI_COMMON_Q_AVAILHI, 4, 0);
		w_cw(vd, VIRTIO_PCI_COMMON_Q_USEDLO, 4, (uint32_t)used);
		w_cw(vd, VIRTIO_PCI_COMMON_Q_USEDHI, 4, 0);
		if (msix)
			w_cw(vd, VIRTIO_PCI_COMMON_Q_MSIX, 2, q + 1);
		w_cw(vd, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
		CHECK(w_cr(vd, VIRTIO_PCI_COMMON_Q_ENABLE, 2) == 1);
	}
	w_cw(vd, VIRTIO_PCI_COMMON_STATUS, 1, st | VIRTIO_CONFIG_S_DRIVER_OK);
}

/* Run what the event loop has ready (kicks, completions, frames). */
static inline void w_settle(void)
{
	for (int i = 0; i < 8 && loop_run_once(&w.loop, 0) > 0; i++)
		;
}

#endif
