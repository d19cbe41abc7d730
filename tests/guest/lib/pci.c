/* Guest-kit PCI and device interrupts (see pci.h). */
#include "pci.h"
#include "kit_internal.h"

#define PCI_VENDOR   0x00
#define PCI_COMMAND  0x04
#define PCI_STATUS   0x06
#define PCI_CLASS    0x08
#define PCI_BAR0     0x10
#define PCI_CAP_PTR  0x34
#define CMD_MEM      0x2
#define STATUS_CAPS  0x10
#define MSIX_ID      0x11

static uint64_t ecam_base;
static bool ecam_checked, force_cf8;

uint64_t pci_ecam(void)
{
	if (!ecam_checked) {
		const struct acpi_sdt *m = acpi_find_table("MCFG", 0);
		/* header, 8 reserved bytes, then {base, segment, start bus, end bus} */
		if (m && m->length >= sizeof(*m) + 8 + 16)
			memcpy(&ecam_base, (const uint8_t *)m + sizeof(*m) + 8, 8);
		ecam_checked = true;
	}
	return ecam_base;
}

void pci_use_cf8(bool on)
{
	force_cf8 = on;
}

static volatile uint8_t *ecam_ptr(const struct pci_fn *f, unsigned off)
{
	return (volatile uint8_t *)(uintptr_t)(pci_ecam() + ((uint64_t)f->slot << 15) + off);
}

uint32_t pci_read(const struct pci_fn *f, unsigned off, unsigned size)
{
	if (pci_ecam() && !force_cf8) {
		volatile uint8_t *p = ecam_ptr(f, off);
		return size == 1 ? *p : size == 2 ? *(volatile uint16_t *)p : *(volatile uint32_t *)p;
	}
	outl(0xcf8, 0x80000000u | (uint32_t)f->slot << 11 | (off & 0xfc));
	uint16_t port = (uint16_t)(0xcfc + (off & 3));
	return size == 1 ? inb(port) : size == 2 ? inw(port) : inl(port);
}

void pci_write(const struct pci_fn *f, unsigned off, unsigned size, uint32_t v)
{
	if (pci_ecam() && !force_cf8) {
		volatile uint8_t *p = ecam_ptr(f, off);
		if (size == 1)
			*p = (uint8_t)v;
		else if (size == 2)
			*(volatile uint16_t *)p = (uint16_t)v;
		else
			*(volatile uint32_t *)p = v;
		return;
	}
	outl(0xcf8, 0x80000000u | (uint32_t)f->slot << 11 | (off & 0xfc));
	uint16_t port = (uint16_t)(0xcfc + (off & 3));
	if (size == 1)
		outb(port, (uint8_t)v);
	else if (size == 2)
		outw(port, (uint16_t)v);
	else
		outl(port, v);
}

int pci_scan(struct pci_fn *out, int max)
{
	int n = 0;
	for (unsigned s = 0; s < 32 && n < max; s++) {
		struct pci_fn f = { .slot = (uint8_t)s };
		uint32_t id = pci_read(&f, PCI_VENDOR, 4);
		if ((id & 0xffff) == 0xffff)
			continue;
		f.vendor = (uint16_t)id;
		f.device = (uint16_t)(id >> 16);
		f.class_code = pci_read(&f, PCI_CLASS, 4) >> 8;
		out[n++] = f;
	}
	return n;
}

bool pci_find(uint16_t vendor, uint16_t device, int n, struct pci_fn *out)
{
	struct pci_fn all[PCI_MAX_FNS];
	int cnt = pci_scan(all, PCI_MAX_FNS);
	for (int i = 0; i < cnt; i++) {
		if (all[i].vendor == vendor && all[i].device == device && n-- == 0) {
			*out = all[i];
			return true;
		}
	}
	return false;
}

uint64_t pci_bar(const struct pci_fn *f, int bar)
{
	uint32_t lo = pci_read(f, PCI_BAR0 + 4 * bar, 4);
	uint64_t a = lo & ~0xfull;
	if ((lo & 6) == 4)
		a |= (uint64_t)pci_read(f, PCI_BAR0 + 4 * bar + 4, 4) << 32;
	return a;
}

uint64_t pci_bar_size(const struct pci_fn *f, int bar)
{
	unsigned reg = PCI_BAR0 + 4 * bar;
	uint16_t cmd = (uint16_t)pci_read(f, PCI_COMMAND, 2);
	pci_write(f, PCI_COMMAND, 2, cmd & ~CMD_MEM);      /* no decoding while probing */
	uint32_t old = pci_read(f, reg, 4);
	pci_write(f, reg, 4, 0xffffffff);
	uint32_t probe = pci_read(f, reg, 4);
	pci_write(f, reg, 4, old);
	pci_write(f, PCI_COMMAND, 2, cmd);
	probe &= ~0xfu;
	return probe ? (uint64_t)(~probe + 1) : 0;
}

uint8_t pci_cap(const struct pci_fn *f, uint8_t id, uint8_t from)
{
	if (!(pci_read(f, PCI_STATUS, 2) & STATUS_CAPS))
		return 0;
	uint8_t p = from ? (uint8_t)pci_read(f, from + 1, 1) : (uint8_t)pci_read(f, PCI_CAP_PTR, 1);
	for (int hops = 0; p >= 0x40 && hops < 48; hops++) {
		p &= 0xfc;
		if (pci_read(f, p, 1) == id)
			return p;
		p = (uint8_t)pci_read(f, p + 1, 1);
	}
	return 0;
}

/* ---- MSI-X -------------------------------------------------------------- */

bool msix_init(struct msix *m, const struct pci_fn *f)
{
	m->f = f;
	m->cap = pci_cap(f, MSIX_ID, 0);
	if (!m->cap)
		return false;
	m->nvec = (pci_read(f, m->cap + 2, 2) & 0x7ff) + 1;
	uint32_t t = pci_read(f, m->cap + 4, 4);
	m->table = (volatile uint32_t *)(uintptr_t)(pci_bar(f, t & 7) + (t & ~7u));
	return true;
}

void msix_route(struct msix *m, unsigned entry, uint8_t vector)
{
	volatile uint32_t *e = m->table + 4 * entry;
	e[3] = 1;                                        /* masked while changing */
	e[0] = 0xfee00000u | (kit_percpu[smp_id()].apic_id << 12);
	e[1] = 0;
	e[2] = vector;                                   /* fixed, edge */
	e[3] = 0;
}

void msix_mask(struct msix *m, unsigned entry, bool masked)
{
	m->table[4 * entry + 3] = masked;
}

void msix_enable(struct msix *m, bool on)
{
	uint16_t ctl = (uint16_t)pci_read(m->f, m->cap + 2, 2);
	ctl = on ? (ctl | 0x8000) & ~0x4000 : ctl & ~0x8000;
	pci_write(m->f, m->cap + 2, 2, ctl);
}

/* ---- Interrupts ---------------------------------------------------------- */

#define LAPIC_EOI 0xb0
#define LAPIC_SVR 0xf0
#define LAPIC_TPR 0x80

static volatile long counts[IRQ_VECS];
static void (*handlers[IRQ_VECS])(uint8_t vector);
extern const uint64_t kit_irq_stubs[IRQ_VECS];

static volatile uint32_t *lapic(unsigned reg)
{
	return (volatile uint32_t *)(uintptr_t)(acpi_lapic_phys() + reg);
}

void kit_irq_dispatch(uint64_t vector);
void kit_irq_dispatch(uint64_t vector)
{
	unsigned i = (unsigned)(vector - IRQ_VEC_BASE);
	if (i < IRQ_VECS) {
		counts[i]++;
		if (handlers[i])
			handlers[i]((uint8_t)vector);
	}
	*lapic(LAPIC_EOI) = 0;
}

struct __attribute__((packed)) idtr {
	uint16_t limit;
	uint64_t base;
};

void irq_init(void)
{
	struct idtr d;
	__asm__ volatile("sidt %0" : "=m"(d));
	for (unsigned i = 0; i < IRQ_VECS; i++) {
		uint64_t a = kit_irq_stubs[i];
		uint32_t *g = (uint32_t *)(uintptr_t)(d.base + 16 * (IRQ_VEC_BASE + i));
		g[0] = (uint32_t)(a & 0xffff) | (uint32_t)KERNEL_CS << 16;
		g[1] = (uint32_t)(a & 0xffff0000u) | 0x8e00;   /* present, interrupt gate */
		g[2] = (uint32_t)(a >> 32);
		g[3] = 0;
	}
	*lapic(LAPIC_TPR) = 0;
	*lapic(LAPIC_SVR) = 0x1ff;                        /* software enable, spurious 0xff */
}

void irq_set_handler(uint8_t vector, void (*fn)(uint8_t vector))
{
	handlers[vector - IRQ_VEC_BASE] = fn;
}

long irq_count(uint8_t vector)
{
	return counts[vector - IRQ_VEC_BASE];
}

struct wait_args {
	unsigned i;
	long n;
	uint64_t end;
};

static long wait_user(void *arg)
{
	struct wait_args *w = arg;
	while (counts[w->i] < w->n) {
		if (uptime_ms() > w->end)
			return 0;
		cpu_relax();
	}
	return 1;
}

/* Spins at CPL3 with IF=1: kvm_pvm delivers interrupts only to guest code
 * running natively (CPL3), not to emulated CPL0 code, so sti; hlt at CPL0
 * would never see them. The handlers still run at CPL0. */
bool irq_wait(uint8_t vector, long n, uint64_t timeout_ms)
{
	struct wait_args w = { vector - IRQ_VEC_BASE, n, uptime_ms() + timeout_ms };
	if (counts[w.i] >= n)
		return true;
	kit_user_rflags = 0x202;
	long r = run_user(wait_user, &w);
	kit_user_rflags = 0x2;
	return r == 1;
}

#define IOAPIC_BASE 0xfec00000ul

void ioapic_route(unsigned pin, uint8_t vector, bool masked)
{
	volatile uint32_t *sel = (volatile uint32_t *)IOAPIC_BASE;
	volatile uint32_t *win = (volatile uint32_t *)(IOAPIC_BASE + 0x10);
	uint32_t lo = vector | (1u << 15) | (masked ? 1u << 16 : 0);   /* level, active high */
	*sel = 0x10 + 2 * pin + 1;
	*win = kit_percpu[smp_id()].apic_id << 24;
	*sel = 0x10 + 2 * pin;
	*win = lo;
}
