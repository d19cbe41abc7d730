/* libFuzzer target: PCI as a guest reaches it, through the port and MMIO
 * buses a vCPU dispatches on (fuzz_pci_world.h): configuration mechanism
 * #1 and ECAM (any bus, slot, function, register, width), BAR sizing and
 * placement, capability lists, MSI-X table and PBA, pci-testdev's BARs,
 * and the virtio modern transport of blk, net, rng and balloon (common
 * configuration: feature and queue select, queue size, addresses, vectors
 * and enable, device status and reset; ISR, device configuration,
 * doorbells, the PCI configuration access capability), interleaved with
 * guest RAM writes, event loop turns (kicks run the devices) and what the
 * host side does (interrupts, balloon requests, frames from the network).
 *
 * The input is a stream of 8-byte operations { op, a, b, c, value (le32) }:
 * op bits 0-2 the kind (below), bits 3-4 the width (1, 2, 4, 8 bytes), bit
 * 5 a variant, bit 7 write (else read). Nothing may crash, hang, touch
 * memory outside guest RAM, or change what no guest may change
 * (world_check). */
#include "fuzz_pci_world.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum {
	K_CF8,          /* a port in 0xcf8-0xcff, raw */
	K_CFG1,         /* mechanism #1: latch slot a&31, fn a>>5, register b (variant: bus c), then data */
	K_ECAM,         /* ECAM: slot a&31, fn a>>5, register b | (c&15) << 8 (variant: bus c>>4) */
	K_BAR,          /* function a%6, BAR a>>4 &7, offset b | c<<8, where the BAR register says */
	K_COMMON,       /* virtio a%4, common config field b%19 at its width (variant: op's width) */
	K_VREGION,      /* virtio a%4: b&3 = ISR, device config, doorbell, MSI-X table/PBA */
	K_RAM,          /* 4 bytes of guest RAM at (a | b<<8 | c<<16) % RAM */
	K_HOST,         /* the host side: a&7 picks what (below) */
};

static const struct { uint16_t off; uint8_t width; } common[] = {
	{ VIRTIO_PCI_COMMON_DFSELECT, 4 }, { VIRTIO_PCI_COMMON_DF, 4 },
	{ VIRTIO_PCI_COMMON_GFSELECT, 4 }, { VIRTIO_PCI_COMMON_GF, 4 },
	{ VIRTIO_PCI_COMMON_MSIX, 2 }, { VIRTIO_PCI_COMMON_NUMQ, 2 },
	{ VIRTIO_PCI_COMMON_STATUS, 1 }, { VIRTIO_PCI_COMMON_CFGGENERATION, 1 },
	{ VIRTIO_PCI_COMMON_Q_SELECT, 2 }, { VIRTIO_PCI_COMMON_Q_SIZE, 2 },
	{ VIRTIO_PCI_COMMON_Q_MSIX, 2 }, { VIRTIO_PCI_COMMON_Q_ENABLE, 2 },
	{ VIRTIO_PCI_COMMON_Q_NOFF, 2 },
	{ VIRTIO_PCI_COMMON_Q_DESCLO, 4 }, { VIRTIO_PCI_COMMON_Q_DESCHI, 4 },
	{ VIRTIO_PCI_COMMON_Q_AVAILLO, 4 }, { VIRTIO_PCI_COMMON_Q_AVAILHI, 4 },
	{ VIRTIO_PCI_COMMON_Q_USEDLO, 4 }, { VIRTIO_PCI_COMMON_Q_USEDHI, 4 },
};
#define NCOMMON (sizeof(common) / sizeof(common[0]))

/* One access on a bus: a port (io) or a guest-physical address. */
static void guest_access(bool io, uint64_t addr, unsigned size, bool write, uint64_t v)
{
	if (io) {
		if (size > 4)
			size = 4;       /* IN/OUT move at most 4 bytes */
		if (write)
			bus_write(&w.pio, addr, size, v);
		else
			bus_read(&w.pio, addr, size, &v);
	} else if (write) {
		w_mmio_write(addr, size, v);
	} else {
		w_mmio_read(addr, size);
	}
}

static void host_side(const uint8_t *op, uint32_t value)
{
	struct virtio_dev *vd = w.vd[op[2] % V_COUNT];
	switch (op[1] & 7) {
	case 0:
		loop_run_once(&w.loop, 0);
		break;
	case 1:         /* a backend's interrupt, any vector */
		pci_msix_notify(w.pci[op[2] % W_PCI], op[3] % 70);
		break;
	case 2:
		pci_set_intx(w.pci[op[2] % W_PCI], op[3] & 1);
		break;
	case 3:
		pthread_mutex_lock(&vd->lock);
		virtio_config_changed(vd);
		pthread_mutex_unlock(&vd->lock);
		break;
	case 4:
		balloon_set_target(w.vd[V_BALLOON], (uint64_t)value * 4096);
		break;
	case 5:
		balloon_request_stats(w.vd[V_BALLOON]);
		break;
	case 6: {       /* a frame from the network (header and all) */
		uint8_t frame[1600];
		size_t len = (size_t)op[3] * 6 % sizeof(frame);
		for (size_t i = 0; i < len; i++)
			frame[i] = (uint8_t)(value >> (8 * (i & 3)));
		if (send(w.net_peer, frame, len, MSG_DONTWAIT) < 0)
			w_drain(w.net_peer);
		break;
	}
	default:        /* a kick, as the loop would take it */
		virtio_kick(vd, op[3] % (VIRTIO_MAX_QUEUES + 1));
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned sizes[] = { 1, 2, 4, 8 };
	world_reset();
	for (size_t i = 0; i + 8 <= size; i += 8) {
		const uint8_t *op = data + i;
		uint32_t value;
		memcpy(&value, op + 4, 4);
		uint64_t v = value | (uint64_t)value << 32;
		unsigned sz = sizes[(op[0] >> 3) & 3];
		bool write = op[0] & 0x80, variant = op[0] & 0x20;
		unsigned slot = op[1] & 31, fn = op[1] >> 5;
		switch (op[0] & 7) {
		case K_CF8:
			guest_access(true, PCI_CF8_PORT + (op[1] & 7), sz, write, v);
			break;
		case K_CFG1: {
			uint32_t latch = 0x80000000u | (variant ? (uint32_t)op[3] << 16 : 0) | slot << 11 |
					 fn << 8 | (op[2] & 0xfcu);
			bus_write(&w.pio, PCI_CF8_PORT, 4, latch);
			guest_access(true, PCI_CF8_PORT + 4 + (op[2] & 3), sz, write, v);
			break;
		}
		case K_ECAM: {
			uint64_t off = (uint64_t)slot << 15 | fn << 12 | op[2] | (op[3] & 15u) << 8;
			if (variant)
				off |= (uint64_t)(op[3] >> 4) << 20;
			guest_access(false, LAYOUT_PCI_ECAM + off, sz, write, v);
			break;
		}
		case K_BAR: {
			const struct pci_dev *d = w.pci[(op[1] & 15) % W_PCI];
			unsigned b = (op[1] >> 4) & 7;
			uint64_t base = w_bar_addr(d, b), off = op[2] | (uint64_t)op[3] << 8;
			bool io = b < PCI_BARS && d->bar[b].io;
			if (base)
				off %= 2 * d->bar[b].size;      /* and past the end */
			else
				base = io ? PCI_IO_WINDOW : LAYOUT_PCI_MMIO32;
			guest_access(io, base + off, sz, write, v);
			break;
		}
		case K_COMMON: {
			struct virtio_dev *vd = w.vd[op[1] % V_COUNT];
			unsigned f = op[2] % NCOMMON;
			/* Ring addresses: mostly somewhere in RAM, aligned. */
			if (common[f].width == 4 && (common[f].off & 4) == 0 && common[f].off >= 32 && op[3] & 1)
				v = value % W_RAM & ~63u;
			guest_access(false, w_bar_addr(&vd->pci, 0) + common[f].off, variant ? sz : common[f].width,
			       write, v);
			break;
		}
		case K_VREGION: {
			struct virtio_dev *vd = w.vd[op[1] % V_COUNT];
			static const uint64_t region[] = { VIRTIO_ISR_OFF, VIRTIO_DEVCFG_OFF, VIRTIO_NOTIFY_OFF,
							   VIRTIO_MSIX_OFF };
			uint64_t off = region[op[2] & 3] + ((op[2] >> 2) & 15) * 256 + op[3];
			guest_access(false, w_bar_addr(&vd->pci, 0) + off, sz, write, v);
			break;
		}
		case K_RAM:
			mem_write(&w.mem, (op[1] | op[2] << 8 | (uint64_t)op[3] << 16) % (W_RAM - 3), &value, 4);
			break;
		default:
			host_side(op, value);
			break;
		}
		world_check();
	}
	while (loop_run_once(&w.loop, 0) > 0)
		;
	world_check();
	return 0;
}
