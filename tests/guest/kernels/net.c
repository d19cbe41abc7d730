/* virtio-net from the guest, through a tap in a network namespace the test
 * made (test_virtio.sh): ARP for the host's address, then an ICMP echo; the
 * host kernel answers both. Receive interrupts by MSI-X.
 * Command line: mac=52:54:00:12:34:56 ip=10.99.0.2 host=10.99.0.1. */
#include <linux/virtio_net.h>

#include "kit.h"
#include "virtio.h"

#define RXQ 0
#define TXQ 1
#define NRX 8
#define VEC_RX 0x41
#define HDR sizeof(struct virtio_net_hdr_mrg_rxbuf)

static uint8_t rxring[VRING_BYTES] __attribute__((aligned(4096)));
static uint8_t txring[VRING_BYTES] __attribute__((aligned(4096)));
static uint8_t rxbuf[NRX][2048] __attribute__((aligned(64)));
static uint8_t txbuf[2048] __attribute__((aligned(64)));
static struct vdev dev;
static uint8_t mac[6], host_mac[6];
static uint8_t my_ip[4], host_ip[4];

static bool parse_ip(const char *key, uint8_t ip[4])
{
	char s[32], *p = s;
	if (!cmdline_get(key, s, sizeof(s)))
		return false;
	for (int i = 0; i < 4; i++) {
		ip[i] = (uint8_t)strtoull(p, &p, 10);
		if (i < 3 && *p++ != '.')
			return false;
	}
	return true;
}

static void post_rx(uint16_t i)
{
	gvq_desc(&dev.vq[RXQ], i, rxbuf[i], sizeof(rxbuf[i]), VRING_DESC_F_WRITE, 0);
	gvq_publish(&dev.vq[RXQ], i);
}

static bool send(const void *frame, uint32_t len)
{
	struct gvq *q = &dev.vq[TXQ];
	uint32_t id, l;
	memset(txbuf, 0, HDR);
	memcpy(txbuf + HDR, frame, len);
	gvq_desc(q, 0, txbuf, (uint32_t)HDR + len, 0, 0);
	gvq_publish(q, 0);
	gvq_kick(q);
	return gvq_wait(q, &id, &l, 3000);
}

/* Next received frame (without the header) matching ethertype; others
 * (IPv6 chatter) are dropped. Buffers go straight back to the device. */
static const uint8_t *recv(uint16_t ethertype, uint32_t *len, uint8_t *copy)
{
	struct gvq *q = &dev.vq[RXQ];
	uint32_t id, l;
	uint64_t end = uptime_ms() + 5000;
	while (uptime_ms() < end) {
		if (!gvq_wait(q, &id, &l, 1000))
			continue;
		if (id >= NRX || l < HDR + 14)
			return NULL;
		const uint8_t *f = rxbuf[id] + HDR;
		bool match = (f[12] << 8 | f[13]) == ethertype;
		if (match) {
			*len = l - (uint32_t)HDR;
			memcpy(copy, f, *len);
		}
		post_rx((uint16_t)id);
		gvq_kick(q);
		if (match)
			return copy;
	}
	return NULL;
}

static uint16_t csum(const uint8_t *p, unsigned n)
{
	uint32_t s = 0;
	for (unsigned i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

void kmain(void)
{
	static uint8_t frame[1600], in[2048];
	char macs[32] = "";
	cmdline_get("mac", macs, sizeof(macs));
	if (!report(parse_ip("ip", my_ip) && parse_ip("host", host_ip), "ip= and host= on the command line"))
		return;
	if (!report(vdev_open(&dev, 1, 0), "virtio-net found (1af4:1041)"))
		return;
	uint64_t want = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_NET_F_MAC) | (1ull << VIRTIO_NET_F_STATUS);
	report(vdev_negotiate(&dev, want), "FEATURES_OK");
	volatile struct virtio_net_config *cfg = (volatile void *)dev.devcfg;
	for (int i = 0; i < 6; i++)
		mac[i] = cfg->mac[i];
	char got[32];
	snprintf(got, sizeof(got), "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
	report(!strcmp(got, macs), "MAC from config space %s", got);
	report(cfg->status & VIRTIO_NET_S_LINK_UP, "link up");
	irq_init();
	msix_route(&dev.msix, 1, VEC_RX);
	msix_enable(&dev.msix, true);
	report(vdev_queue(&dev, RXQ, 16, rxring, 1) && vdev_queue(&dev, TXQ, 16, txring, VIRTIO_MSI_NO_VECTOR),
	       "rx and tx queues");
	for (uint16_t i = 0; i < NRX; i++)
		post_rx(i);
	vdev_driver_ok(&dev);
	gvq_kick(&dev.vq[RXQ]);

	/* ARP who-has host_ip */
	memset(frame, 0xff, 6);
	memcpy(frame + 6, mac, 6);
	frame[12] = 0x08; frame[13] = 0x06;
	uint8_t arp[28] = { 0, 1, 8, 0, 6, 4, 0, 1 };
	memcpy(arp + 8, mac, 6);
	memcpy(arp + 14, my_ip, 4);
	memset(arp + 18, 0, 6);
	memcpy(arp + 24, host_ip, 4);
	memcpy(frame + 14, arp, 28);
	report(send(frame, 42), "ARP request sent");
	uint32_t len = 0;
	const uint8_t *r = recv(0x0806, &len, in);
	bool arp_ok = r && len >= 42 && r[21] == 2 && !memcmp(r + 28, host_ip, 4) && !memcmp(r, mac, 6);
	if (arp_ok)
		memcpy(host_mac, r + 22, 6);
	report(arp_ok, "ARP reply from the host (%02x:%02x:%02x:%02x:%02x:%02x)", host_mac[0], host_mac[1],
	       host_mac[2], host_mac[3], host_mac[4], host_mac[5]);
	bool irq = irq_wait(VEC_RX, 1, 2000);
	report(irq, "receive interrupt by MSI-X (%ld)", irq_count(VEC_RX));

	/* ICMP echo request */
	memcpy(frame, host_mac, 6);
	memcpy(frame + 6, mac, 6);
	frame[12] = 0x08; frame[13] = 0x00;
	uint8_t *ip = frame + 14, *icmp = ip + 20;
	const unsigned payload = 32;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	ip[2] = (uint8_t)((20 + 8 + payload) >> 8);
	ip[3] = (uint8_t)(20 + 8 + payload);
	ip[8] = 64;
	ip[9] = 1;
	memcpy(ip + 12, my_ip, 4);
	memcpy(ip + 16, host_ip, 4);
	uint16_t c = csum(ip, 20);
	ip[10] = (uint8_t)(c >> 8); ip[11] = (uint8_t)c;
	memset(icmp, 0, 8);
	icmp[0] = 8;
	icmp[4] = 0x12; icmp[5] = 0x34; icmp[7] = 1;
	for (unsigned i = 0; i < payload; i++)
		icmp[8 + i] = (uint8_t)('a' + i % 26);
	c = csum(icmp, 8 + payload);
	icmp[2] = (uint8_t)(c >> 8); icmp[3] = (uint8_t)c;
	report(send(frame, 14 + 20 + 8 + payload), "ICMP echo request sent");
	r = recv(0x0800, &len, in);
	bool echo = r && len >= 14 + 20 + 8 + payload && r[14 + 9] == 1 && r[34] == 0 &&
		    r[38] == 0x12 && r[39] == 0x34 && !memcmp(r + 42, icmp + 8, payload);
	report(echo, "ICMP echo reply with our payload");
	vdev_reset(&dev);
}
