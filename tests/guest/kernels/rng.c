/* virtio-rng from the guest: bytes arrive (MSI-X interrupt), differ
 * between requests; then the INTx fallback: MSI-X off, the IOAPIC pin from
 * PCI_INTERRUPT_LINE, the ISR read clears the line. */
#include "kit.h"
#include "virtio.h"

#define VEC_QUEUE 0x41
#define VEC_INTX  0x42

static uint8_t ring[VRING_BYTES] __attribute__((aligned(4096)));
static uint8_t a[64], b[64];
static struct vdev dev;
static volatile uint8_t isr_seen;

static bool fetch(uint8_t *buf, uint32_t len, uint32_t *got)
{
	struct gvq *q = &dev.vq[0];
	uint32_t id;
	gvq_desc(q, 0, buf, len, VRING_DESC_F_WRITE, 0);
	gvq_publish(q, 0);
	gvq_kick(q);
	return gvq_wait(q, &id, got, 5000) && id == 0;
}

static void intx_handler(uint8_t vector)
{
	isr_seen |= *dev.isr;     /* read-to-clear drops the line before the EOI */
}

static bool setup(uint16_t vector)
{
	uint64_t want = (1ull << VIRTIO_F_VERSION_1);
	if (!vdev_negotiate(&dev, want) || !vdev_queue(&dev, 0, 16, ring, vector))
		return false;
	vdev_driver_ok(&dev);
	return true;
}

void kmain(void)
{
	if (!report(vdev_open(&dev, 4, 0), "virtio-rng found (1af4:1044)"))
		return;
	irq_init();
	msix_route(&dev.msix, 1, VEC_QUEUE);
	msix_enable(&dev.msix, true);
	report(setup(1), "set up with MSI-X vector 1 for the queue");
	uint32_t la = 0, lb = 0;
	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	bool ok = fetch(a, sizeof(a), &la);
	report(ok && la == sizeof(a), "64 random bytes (used len %u)", la);
	report(fetch(b, sizeof(b), &lb) && lb == sizeof(b), "64 more");
	int zeros = 0;
	for (unsigned i = 0; i < sizeof(a); i++)
		zeros += a[i] == 0;
	report(zeros < 16 && memcmp(a, b, sizeof(a)), "bytes look random (%d zeros) and differ", zeros);
	/* Two used buffers, one or two interrupts (the IRR bit coalesces them). */
	ok = irq_wait(VEC_QUEUE, 1, 2000);
	report(ok, "MSI-X interrupt for the queue (%ld)", irq_count(VEC_QUEUE));

	/* INTx: no MSI-X, the line in config space routes to the IOAPIC. */
	msix_enable(&dev.msix, false);
	uint8_t line = (uint8_t)pci_read(&dev.f, 0x3c, 1), pin = (uint8_t)pci_read(&dev.f, 0x3d, 1);
	report(pin == 1 && line >= 16 && line < 24, "INTA# on GSI %u", line);
	irq_set_handler(VEC_INTX, intx_handler);
	ioapic_route(line, VEC_INTX, false);
	report(setup(VIRTIO_MSI_NO_VECTOR), "set up again without MSI-X");
	report(fetch(a, sizeof(a), &la) && la == sizeof(a), "bytes with INTx");
	ok = irq_wait(VEC_INTX, 1, 2000);
	report(ok && (isr_seen & 1), "INTx interrupt, ISR queue bit (%ld, isr %#x)", irq_count(VEC_INTX), isr_seen);
	long n = irq_count(VEC_INTX);
	irq_wait(VEC_INTX, n + 1, 200);
	report(irq_count(VEC_INTX) == n, "the ISR read deasserted the line (no storm)");
	ioapic_route(line, VEC_INTX, true);
	vdev_reset(&dev);
}
