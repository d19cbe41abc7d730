/* libFuzzer target: each virtio device's request handling as a running
 * guest drives it: virtio-blk (io_uring on a memfd image), virtio-net
 * (transmit to, and receive from, a socketpair standing in for the tap),
 * virtio-rng and virtio-balloon (inflate, deflate, statistics, free page
 * reporting) behind the modern PCI transport, in the world of
 * fuzz_pci_world.h. The harness is the driver: it negotiates features and
 * sets up every queue through the BAR, as Linux does, on rings whose
 * contents (and every buffer) come from the input; then it rings
 * doorbells (ioeventfds, run by the event loop), injects frames, asks for
 * balloon changes, resets and sets up again, as a script in the input says.
 *
 * Input: byte 0: bits 0-1 the device (blk, net, rng, balloon), bits 2-7
 * log2 of the queue size (mod 9); byte 1: bit 0 EVENT_IDX, bit 1
 * INDIRECT_DESC, bit 2 MSI-X (else INTx); byte 2: bit k takes the k-th
 * device feature offered; byte 3: the script's length n (mod 33); n script
 * bytes (below); the rest is guest RAM from address 0, where the rings
 * are as w_ring_layout() puts them from base 0. */
#include "fuzz_pci_world.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HDR 4

static struct virtio_dev *vd;
static unsigned kind;

static void cw(unsigned off, unsigned width, uint64_t v) { w_cw(vd, off, width, v); }
static uint64_t cr(unsigned off, unsigned width) { return w_cr(vd, off, width); }

static void driver_init(const uint8_t *hdr)
{
	w_driver_init(vd, (uint16_t)(1u << ((hdr[0] >> 2) % 9)), hdr[1], hdr[2], hdr[1] & 4, 0);
}

/* Frames the device sent: each has at least the 12-byte header. */
static void drain_tx(void)
{
	uint8_t buf[70000];
	ssize_t n;
	while ((n = recv(w.net_peer, buf, sizeof(buf), MSG_DONTWAIT)) >= 0)
		CHECK(n >= 12);
}

/* One script byte s; s >> 6 picks:
 *   0 the doorbell of queue s & 7 (a queue past the last one too), a loop turn
 *   1 net: a frame of (s & 63) * 24 + 12 bytes of the input from the wire;
 *     balloon: a target of s & 63 pages
 *   2 a loop turn (balloon, s odd: ask for statistics first)
 *   3 s & 7: 0 read the ISR, 1 reset and set up again (requests in flight),
 *     2 MSI-X function mask to bit 3, 3 read the device config, 4 the driver
 *     sets FAILED, 5 a configuration change, 6 a device config write,
 *     7 a loop turn */
static void script(uint8_t s, const uint8_t *ram, size_t ramlen, const uint8_t *hdr)
{
	unsigned arg = s & 63;
	switch (s >> 6) {
	case 0: {       /* a doorbell: a 2-byte write, taken by the ioeventfd */
		unsigned q = s & 7;
		cw(VIRTIO_NOTIFY_OFF + VIRTIO_NOTIFY_MULT * q, 2, q);
		w_settle();
		break;
	}
	case 1:
		if (kind == V_NET) {    /* a frame, from bytes of the input */
			size_t off = arg * 64u, len = arg * 24u + 12;
			if (off > ramlen)
				off = ramlen;
			if (len > ramlen - off)
				len = ramlen - off;
			if (send(w.net_peer, ram + off, len, MSG_DONTWAIT) < 0)
				w_drain(w.net_peer);
		} else if (kind == V_BALLOON) {
			balloon_set_target(vd, arg * 4096ull);
		}
		w_settle();
		break;
	case 2:
		if (kind == V_BALLOON && (s & 1))
			balloon_request_stats(vd);
		w_settle();
		break;
	default:
		switch (s & 7) {
		case 0:
			cr(VIRTIO_ISR_OFF, 1);
			break;
		case 1:         /* reset with requests in flight, then set up again */
			driver_init(hdr);
			w_settle();
			break;
		case 2:         /* MSI-X function mask on or off */
			w_ecam_write(vd, vd->pci.msix.cap + PCI_MSIX_FLAGS, 2,
				   (hdr[1] & 4 ? PCI_MSIX_FLAGS_ENABLE : 0) | (s & 8 ? PCI_MSIX_FLAGS_MASKALL : 0));
			break;
		case 3:
			for (unsigned o = 0; o < vd->config_len; o += 4)
				cr(VIRTIO_DEVCFG_OFF + o, 4);
			break;
		case 4:         /* the driver gives up on the device */
			cw(VIRTIO_PCI_COMMON_STATUS, 1, cr(VIRTIO_PCI_COMMON_STATUS, 1) | VIRTIO_CONFIG_S_FAILED);
			break;
		case 5:
			pthread_mutex_lock(&vd->lock);
			virtio_config_changed(vd);
			pthread_mutex_unlock(&vd->lock);
			break;
		case 6:         /* a device config write (the balloon's actual) */
			cw(VIRTIO_DEVCFG_OFF + (s >> 3 & 7) * 2, 4, s * 0x01010101u);
			break;
		default:
			w_settle();
			break;
		}
		break;
	}
	world_check();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	world_reset();
	if (size < HDR)
		return 0;
	kind = data[0] & 3;
	vd = w.vd[kind];
	size_t n = data[3] % 33u;
	if (n > size - HDR)
		n = size - HDR;
	const uint8_t *steps = data + HDR, *ram = steps + n;
	size_t ramlen = size - HDR - n;
	memcpy(w.mem.host, ram, ramlen < W_RAM ? ramlen : W_RAM);
	driver_init(data);
	w_settle();
	world_check();
	for (size_t i = 0; i < n; i++)
		script(steps[i], ram, ramlen, data);
	w_settle();
	drain_tx();
	world_check();
	return 0;
}
