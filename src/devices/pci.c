#include "devices/pci.h"

#include <errno.h>
#include <string.h>

#include "log.h"

#define CMD_WRITABLE (PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | \
		      PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE)
#define MSIX_ENTRY_SIZE 16

static void put_le(uint8_t *p, unsigned size, uint32_t v)
{
	for (unsigned i = 0; i < size; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le(const uint8_t *p, unsigned size)
{
	uint32_t v = 0;
	for (unsigned i = 0; i < size; i++)
		v |= (uint32_t)p[i] << (8 * i);
	return v;
}

void pci_dev_init(struct pci_dev *d, const char *name, uint16_t vendor, uint16_t device,
		  uint32_t class_code, uint8_t revision, uint16_t subsys_vendor, uint16_t subsys_id)
{
	memset(d, 0, sizeof(*d));
	d->name = name;
	put_le(d->cfg + PCI_VENDOR_ID, 2, vendor);
	put_le(d->cfg + PCI_DEVICE_ID, 2, device);
	d->cfg[PCI_REVISION_ID] = revision;
	put_le(d->cfg + PCI_CLASS_PROG, 3, class_code);
	d->cfg[PCI_HEADER_TYPE] = PCI_HEADER_TYPE_NORMAL;
	put_le(d->cfg + PCI_SUBSYSTEM_VENDOR_ID, 2, subsys_vendor);
	put_le(d->cfg + PCI_SUBSYSTEM_ID, 2, subsys_id);
	put_le(d->wmask + PCI_COMMAND, 2, CMD_WRITABLE);
	d->wmask[PCI_CACHE_LINE_SIZE] = 0xff;
	d->wmask[PCI_LATENCY_TIMER] = 0xff;
	d->wmask[PCI_INTERRUPT_LINE] = 0xff;
	pthread_mutex_init(&d->msix.lock, NULL);
}

void pci_dev_destroy(struct pci_dev *d)
{
	pthread_mutex_destroy(&d->msix.lock);
}

int pci_add_bar(struct pci_dev *d, int bar, uint64_t size, bool is64,
		const struct bus_ops *ops, void *opaque)
{
	if (bar < 0 || bar >= PCI_BARS || (is64 && bar == PCI_BARS - 1) || size < 4096 ||
	    (size & (size - 1)) || size > (1ULL << 31) || d->bar[bar].size)
		return -EINVAL;
	unsigned reg = PCI_BASE_ADDRESS_0 + 4 * (unsigned)bar;
	d->bar[bar] = (struct pci_bar){ .size = size, .is64 = is64, .ops = ops, .opaque = opaque };
	d->cfg[reg] = is64 ? PCI_BASE_ADDRESS_MEM_TYPE_64 : PCI_BASE_ADDRESS_MEM_TYPE_32;
	/* Sizing: the guest writes all-ones and reads back ~(size - 1). */
	put_le(d->wmask + reg, 4, (uint32_t)~(size - 1) & PCI_BASE_ADDRESS_MEM_MASK);
	if (is64)
		put_le(d->wmask + reg + 4, 4, 0xffffffff);
	return 0;
}

int pci_add_io_bar(struct pci_dev *d, int bar, uint64_t size, const struct bus_ops *ops, void *opaque)
{
	if (bar < 0 || bar >= PCI_BARS || size < 4 || size > 256 || (size & (size - 1)) || d->bar[bar].size)
		return -EINVAL;
	unsigned reg = PCI_BASE_ADDRESS_0 + 4 * (unsigned)bar;
	d->bar[bar] = (struct pci_bar){ .size = size, .io = true, .ops = ops, .opaque = opaque };
	d->cfg[reg] = PCI_BASE_ADDRESS_SPACE_IO;
	/* 16-bit ports: the upper half reads 0 after sizing, as on x86. */
	put_le(d->wmask + reg, 4, (uint32_t)~(size - 1) & PCI_BASE_ADDRESS_IO_MASK & 0xffff);
	return 0;
}

uint8_t pci_add_cap(struct pci_dev *d, uint8_t id, const void *body, unsigned len)
{
	unsigned off = d->cap_free ? d->cap_free : 0x40;
	if (len < 2 || off + len > PCI_CFG_BYTES)
		return 0;
	memcpy(d->cfg + off, body, len);
	d->cfg[off + PCI_CAP_LIST_ID] = id;
	d->cfg[off + PCI_CAP_LIST_NEXT] = 0;
	if (d->cap_last)
		d->cfg[d->cap_last + PCI_CAP_LIST_NEXT] = (uint8_t)off;
	else
		d->cfg[PCI_CAPABILITY_LIST] = (uint8_t)off;
	d->cap_last = (uint8_t)off;
	d->cap_free = (off + len + 3) & ~3u;
	d->cfg[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
	return (uint8_t)off;
}

/* ---- MSI-X ------------------------------------------------------------- */

int pci_add_msix(struct pci_dev *d, unsigned nvec, int bar, uint32_t table_off,
		 uint32_t pba_off, struct msi_sink *sink)
{
	struct pci_msix *m = &d->msix;
	if (!nvec || nvec > PCI_MSIX_MAX || bar < 0 || bar >= PCI_BARS || !d->bar[bar].size ||
	    (table_off | pba_off) & 7 || table_off + nvec * MSIX_ENTRY_SIZE > d->bar[bar].size ||
	    pba_off + 8 > d->bar[bar].size)
		return -EINVAL;
	uint8_t cap[12] = { 0 };
	put_le(cap + PCI_MSIX_FLAGS, 2, (nvec - 1) & PCI_MSIX_FLAGS_QSIZE);
	put_le(cap + PCI_MSIX_TABLE, 4, table_off | (uint32_t)bar);
	put_le(cap + PCI_MSIX_PBA, 4, pba_off | (uint32_t)bar);
	uint8_t off = pci_add_cap(d, PCI_CAP_ID_MSIX, cap, sizeof(cap));
	if (!off)
		return -ENOSPC;
	/* Enable and function mask are the only writable bits. */
	d->wmask[off + PCI_MSIX_FLAGS + 1] = (PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL) >> 8;
	m->cap = off;
	m->nvec = nvec;
	m->bar = bar;
	m->table_off = table_off;
	m->pba_off = pba_off;
	m->sink = sink;
	for (unsigned i = 0; i < nvec; i++) {
		m->table[i].ctrl = PCI_MSIX_ENTRY_CTRL_MASKBIT;   /* masked at reset */
		int h = sink->alloc(sink);
		if (h < 0)
			return h;
		m->handle[i] = h;
	}
	return 0;
}

static bool vector_live(const struct pci_msix *m, unsigned v)
{
	return m->enabled && !m->masked && !(m->table[v].ctrl & PCI_MSIX_ENTRY_CTRL_MASKBIT);
}

/* Caller holds m->lock. Pushes the route if needed, then sends. */
static void msix_send(struct pci_msix *m, unsigned v)
{
	if (m->dirty & (1ULL << v)) {
		uint64_t addr = (uint64_t)m->table[v].addr_hi << 32 | m->table[v].addr_lo;
		int r = m->sink->set(m->sink, m->handle[v], addr, m->table[v].data);
		if (r)
			log_warn("MSI-X vector %u: route update failed: %s", v, strerror(-r));
		m->dirty &= ~(1ULL << v);
	}
	m->sink->fire(m->sink, m->handle[v]);
}

/* After a change of mask state: deliver what became deliverable. */
static void msix_flush_pending(struct pci_msix *m)
{
	for (unsigned v = 0; v < m->nvec; v++) {
		if ((m->pba & (1ULL << v)) && vector_live(m, v)) {
			m->pba &= ~(1ULL << v);
			msix_send(m, v);
		}
	}
}

bool pci_msix_enabled(struct pci_dev *d)
{
	return __atomic_load_n(&d->msix.enabled, __ATOMIC_ACQUIRE);
}

void pci_msix_notify(struct pci_dev *d, unsigned vector)
{
	struct pci_msix *m = &d->msix;
	if (vector >= m->nvec)
		return;
	pthread_mutex_lock(&m->lock);
	if (m->enabled) {
		if (vector_live(m, vector))
			msix_send(m, vector);
		else
			m->pba |= 1ULL << vector;
	}
	pthread_mutex_unlock(&m->lock);
}

static void msix_ctrl_written(struct pci_dev *d)
{
	struct pci_msix *m = &d->msix;
	uint16_t flags = pci_cfg_get16(d, m->cap + PCI_MSIX_FLAGS);
	pthread_mutex_lock(&m->lock);
	m->enabled = flags & PCI_MSIX_FLAGS_ENABLE;
	m->masked = flags & PCI_MSIX_FLAGS_MASKALL;
	msix_flush_pending(m);
	pthread_mutex_unlock(&m->lock);
	if (m->enabled && d->intx_level)
		irq_set(d->intx, 0);    /* INTx is off while MSI-X is on */
}

/* Dword access to the table or PBA; off is relative to the BAR. */
static uint32_t msix_read32(struct pci_msix *m, uint64_t off)
{
	uint32_t v = 0;
	pthread_mutex_lock(&m->lock);
	if (off >= m->table_off && off < m->table_off + m->nvec * MSIX_ENTRY_SIZE) {
		uint64_t i = (off - m->table_off) / MSIX_ENTRY_SIZE;
		switch ((off - m->table_off) % MSIX_ENTRY_SIZE) {
		case PCI_MSIX_ENTRY_LOWER_ADDR: v = m->table[i].addr_lo; break;
		case PCI_MSIX_ENTRY_UPPER_ADDR: v = m->table[i].addr_hi; break;
		case PCI_MSIX_ENTRY_DATA: v = m->table[i].data; break;
		default: v = m->table[i].ctrl; break;
		}
	} else if (off >= m->pba_off && off < m->pba_off + 8) {
		v = (uint32_t)(m->pba >> (8 * (off - m->pba_off)));
	}
	pthread_mutex_unlock(&m->lock);
	return v;
}

static void msix_write32(struct pci_msix *m, uint64_t off, uint32_t v)
{
	if (off < m->table_off || off >= m->table_off + m->nvec * MSIX_ENTRY_SIZE)
		return;         /* the PBA is read-only */
	uint64_t i = (off - m->table_off) / MSIX_ENTRY_SIZE;
	pthread_mutex_lock(&m->lock);
	switch ((off - m->table_off) % MSIX_ENTRY_SIZE) {
	case PCI_MSIX_ENTRY_LOWER_ADDR: m->table[i].addr_lo = v & ~3u; m->dirty |= 1ULL << i; break;
	case PCI_MSIX_ENTRY_UPPER_ADDR: m->table[i].addr_hi = v; m->dirty |= 1ULL << i; break;
	case PCI_MSIX_ENTRY_DATA: m->table[i].data = v; m->dirty |= 1ULL << i; break;
	default:
		m->table[i].ctrl = v & PCI_MSIX_ENTRY_CTRL_MASKBIT;
		msix_flush_pending(m);
		break;
	}
	pthread_mutex_unlock(&m->lock);
}

static bool msix_claims(const struct pci_dev *d, int bar, uint64_t off)
{
	const struct pci_msix *m = &d->msix;
	return m->nvec && m->bar == bar &&
	       ((off >= m->table_off && off < m->table_off + m->nvec * MSIX_ENTRY_SIZE) ||
		(off >= m->pba_off && off < m->pba_off + 8));
}

/* ---- INTx -------------------------------------------------------------- */

void pci_set_intx_line(struct pci_dev *d, struct irq_line *line)
{
	d->intx = line;
	d->cfg[PCI_INTERRUPT_PIN] = 1;     /* INTA# */
	d->cfg[PCI_INTERRUPT_LINE] = (uint8_t)line->gsi;
}

static void intx_update(struct pci_dev *d)
{
	bool disabled = pci_cfg_get16(d, PCI_COMMAND) & PCI_COMMAND_INTX_DISABLE;
	irq_set(d->intx, d->intx_level && !disabled && !d->msix.enabled);
}

void pci_set_intx(struct pci_dev *d, bool level)
{
	if (!d->intx)
		return;
	pthread_mutex_lock(&d->msix.lock);
	d->intx_level = level;
	if (level)
		d->cfg[PCI_STATUS] |= PCI_STATUS_INTERRUPT;
	else
		d->cfg[PCI_STATUS] &= (uint8_t)~PCI_STATUS_INTERRUPT;
	intx_update(d);
	pthread_mutex_unlock(&d->msix.lock);
}

/* ---- BARs and config space ---------------------------------------------- */

static uint64_t bar_reg_addr(const struct pci_dev *d, int i)
{
	unsigned reg = PCI_BASE_ADDRESS_0 + 4 * (unsigned)i;
	if (d->bar[i].io)
		return get_le(d->cfg + reg, 4) & PCI_BASE_ADDRESS_IO_MASK;
	uint64_t a = get_le(d->cfg + reg, 4) & PCI_BASE_ADDRESS_MEM_MASK;
	if (d->bar[i].is64)
		a |= (uint64_t)get_le(d->cfg + reg + 4, 4) << 32;
	return a;
}

static bool in_window(const struct pci_host *h, uint64_t addr, uint64_t size, bool io)
{
	uint64_t end;
	if (__builtin_add_overflow(addr, size, &end))
		return false;
	if (io)
		return addr >= h->io_base && end <= h->io_end;
	return (addr >= h->mmio32_base && end <= h->mmio32_end) ||
	       (addr >= h->mmio64_base && end <= h->mmio64_end);
}

static void rebuild_decoded(struct pci_host *h)
{
	h->ndecoded = 0;
	for (unsigned s = 1; s < PCI_SLOTS; s++)
		for (int i = 0; h->slots[s] && i < PCI_BARS; i++)
			if (h->slots[s]->bar[i].mapped) {
				h->decoded[h->ndecoded].d = h->slots[s];
				h->decoded[h->ndecoded++].bar = (uint8_t)i;
			}
}

/* Recompute what each BAR decodes after a change to COMMAND or a BAR.
 * Caller holds the host lock for writing (or the device is not plugged). */
static void update_mappings(struct pci_dev *d)
{
	bool changed = false;
	uint16_t cmd = pci_cfg_get16(d, PCI_COMMAND);
	for (int i = 0; i < PCI_BARS; i++) {
		struct pci_bar *b = &d->bar[i];
		if (!b->size)
			continue;
		uint64_t a = bar_reg_addr(d, i);
		bool on = cmd & (b->io ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY);
		uint64_t now = on && a && d->host && in_window(d->host, a, b->size, b->io) ? a : 0;
		b->addr = a;
		if (now == b->mapped)
			continue;
		uint64_t old = b->mapped;
		b->mapped = now;
		changed = true;
		if (d->bar_moved)
			d->bar_moved(d, i, old, now);
	}
	if (changed && d->host)
		rebuild_decoded(d->host);
}

uint32_t pci_cfg_read(struct pci_dev *d, unsigned off, unsigned size)
{
	uint32_t v;
	if (off >= PCI_CFG_BYTES || off + size > PCI_CFG_BYTES)
		return 0;
	if (d->cfg_read && d->cfg_read(d, off, size, &v))
		return v;
	if (off <= PCI_STATUS && off + size > PCI_STATUS)
		pthread_mutex_lock(&d->msix.lock);   /* the interrupt status bit */
	else
		return get_le(d->cfg + off, size);
	v = get_le(d->cfg + off, size);
	pthread_mutex_unlock(&d->msix.lock);
	return v;
}

static void cfg_write_locked(struct pci_dev *d, unsigned off, unsigned size, uint32_t val)
{
	if (off >= PCI_CFG_BYTES || off + size > PCI_CFG_BYTES)
		return;
	pthread_mutex_lock(&d->msix.lock);
	for (unsigned i = 0; i < size; i++) {
		uint8_t m = d->wmask[off + i];
		d->cfg[off + i] = (uint8_t)((d->cfg[off + i] & ~m) | ((val >> (8 * i)) & m));
	}
	if (off < PCI_COMMAND + 2 && off + size > PCI_COMMAND)
		intx_update(d);
	pthread_mutex_unlock(&d->msix.lock);

	if ((off < PCI_COMMAND + 2 && off + size > PCI_COMMAND) ||
	    (off < PCI_BASE_ADDRESS_5 + 4 && off + size > PCI_BASE_ADDRESS_0))
		update_mappings(d);
	if (d->msix.nvec && off < d->msix.cap + 4u && off + size > d->msix.cap + 2u)
		msix_ctrl_written(d);
	if (d->cfg_written)
		d->cfg_written(d, off, size, val);
}

void pci_cfg_write(struct pci_dev *d, unsigned off, unsigned size, uint32_t val)
{
	if (d->host)
		pthread_rwlock_wrlock(&d->host->lock);
	cfg_write_locked(d, off, size, val);
	if (d->host)
		pthread_rwlock_unlock(&d->host->lock);
}

/* ---- The host bridge ---------------------------------------------------- */

void pci_host_init(struct pci_host *h, uint64_t mmio32, uint64_t mmio32_end,
		   uint64_t mmio64, uint64_t mmio64_end)
{
	memset(h, 0, sizeof(*h));
	pthread_rwlock_init(&h->lock, NULL);
	h->mmio32_base = h->mmio32_next = mmio32;
	h->mmio32_end = mmio32_end;
	h->mmio64_base = h->mmio64_next = mmio64;
	h->mmio64_end = mmio64_end;
	h->io_base = h->io_next = PCI_IO_WINDOW;
	h->io_end = PCI_IO_WINDOW_END;
	pci_dev_init(&h->bridge, "host-bridge", PCI_VENDOR_REDHAT, PCI_DEVICE_REDHAT_HOST,
		     0x060000, 0, PCI_VENDOR_REDHAT, 0);
	h->bridge.host = h;
	h->slots[0] = &h->bridge;
}

void pci_host_destroy(struct pci_host *h)
{
	pci_dev_destroy(&h->bridge);
	pthread_rwlock_destroy(&h->lock);
}

static int place(uint64_t *next, uint64_t end, uint64_t size, uint64_t *addr)
{
	uint64_t a = (*next + size - 1) & ~(size - 1);
	if (a < *next || a > end || size > end - a)
		return -ENOSPC;
	*addr = a;
	*next = a + size;
	return 0;
}

int pci_host_add(struct pci_host *h, struct pci_dev *d)
{
	unsigned slot;
	for (slot = 1; slot < PCI_SLOTS && h->slots[slot]; slot++)
		;
	if (slot == PCI_SLOTS)
		return -ENOSPC;
	/* Firmware's job: give every BAR an address and turn decoding on. */
	for (int i = 0; i < PCI_BARS; i++) {
		struct pci_bar *b = &d->bar[i];
		uint64_t a;
		if (!b->size)
			continue;
		int r = b->io ? place(&h->io_next, h->io_end, b->size, &a)
			: b->is64 ? place(&h->mmio64_next, h->mmio64_end, b->size, &a)
				  : place(&h->mmio32_next, h->mmio32_end, b->size, &a);
		if (r)
			return r;
		unsigned reg = PCI_BASE_ADDRESS_0 + 4 * (unsigned)i;
		put_le(d->cfg + reg, 4, (uint32_t)a | (d->cfg[reg] & 0xf));
		if (b->is64)
			put_le(d->cfg + reg + 4, 4, (uint32_t)(a >> 32));
	}
	pthread_rwlock_wrlock(&h->lock);
	d->host = h;
	d->slot = slot;
	h->slots[slot] = d;
	cfg_write_locked(d, PCI_COMMAND, 2, pci_cfg_get16(d, PCI_COMMAND) | PCI_COMMAND_MEMORY | PCI_COMMAND_IO);
	pthread_rwlock_unlock(&h->lock);
	return 0;
}

/* Bus 0, function 0 only: everything else is absent (reads all-ones). */
static struct pci_dev *lookup(struct pci_host *h, unsigned bus, unsigned slot, unsigned fn)
{
	if (bus != 0 || fn != 0 || slot >= PCI_SLOTS)
		return NULL;
	return h->slots[slot];
}

static uint64_t ones(unsigned size)
{
	return size >= 8 ? ~0ULL : (1ULL << (8 * size)) - 1;
}

static uint64_t cfg_access_read(struct pci_host *h, unsigned bus, unsigned slot, unsigned fn,
				unsigned reg, unsigned size)
{
	struct pci_dev *d = lookup(h, bus, slot, fn);
	if (!d || size > 4 || (reg & 3) + size > 4)
		return ones(size);
	if (reg >= PCI_CFG_BYTES)
		return 0;      /* no extended capabilities */
	pthread_rwlock_rdlock(&h->lock);
	uint32_t v = pci_cfg_read(d, reg, size);
	pthread_rwlock_unlock(&h->lock);
	return v;
}

static void cfg_access_write(struct pci_host *h, unsigned bus, unsigned slot, unsigned fn,
			     unsigned reg, unsigned size, uint32_t val)
{
	struct pci_dev *d = lookup(h, bus, slot, fn);
	if (!d || size > 4 || (reg & 3) + size > 4 || reg >= PCI_CFG_BYTES)
		return;
	pci_cfg_write(d, reg, size, val);
}

/* Configuration mechanism #1: 0xcf8 holds enable|bus|dev|fn|reg, 0xcfc-0xcff
 * the data. */
static uint64_t cf8_read(void *opaque, uint64_t off, unsigned size)
{
	struct pci_host *h = opaque;
	uint32_t a = __atomic_load_n(&h->cf8, __ATOMIC_RELAXED);
	if (off < 4)
		return off == 0 && size == 4 ? a : ones(size);
	if (!(a & 0x80000000u))
		return ones(size);
	return cfg_access_read(h, (a >> 16) & 0xff, (a >> 11) & 0x1f, (a >> 8) & 7,
			       (a & 0xfc) + (unsigned)(off - 4), size);
}

static void cf8_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct pci_host *h = opaque;
	if (off < 4) {
		if (off == 0 && size == 4)
			__atomic_store_n(&h->cf8, (uint32_t)value & 0x80fffffcu, __ATOMIC_RELAXED);
		return;
	}
	uint32_t a = __atomic_load_n(&h->cf8, __ATOMIC_RELAXED);
	if (a & 0x80000000u)
		cfg_access_write(h, (a >> 16) & 0xff, (a >> 11) & 0x1f, (a >> 8) & 7,
				 (a & 0xfc) + (unsigned)(off - 4), size, (uint32_t)value);
}

const struct bus_ops pci_cf8_ops = { .read = cf8_read, .write = cf8_write };

/* ECAM: bus << 20 | device << 15 | function << 12 | register. */
static uint64_t ecam_read(void *opaque, uint64_t off, unsigned size)
{
	return cfg_access_read(opaque, (unsigned)(off >> 20), (off >> 15) & 0x1f, (off >> 12) & 7,
			       off & 0xfff, size);
}

static void ecam_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	cfg_access_write(opaque, (unsigned)(off >> 20), (off >> 15) & 0x1f, (off >> 12) & 7,
			 off & 0xfff, size, (uint32_t)value);
}

const struct bus_ops pci_ecam_ops = { .read = ecam_read, .write = ecam_write };

/* BAR dispatch inside a window (io: the I/O window). Caller holds the host
 * lock for reading. */
static struct pci_dev *bar_lookup(struct pci_host *h, uint64_t addr, bool io, int *bar, uint64_t *off)
{
	for (unsigned k = 0; k < h->ndecoded; k++) {
		struct pci_dev *d = h->decoded[k].d;
		const struct pci_bar *b = &d->bar[h->decoded[k].bar];
		if (b->io == io && addr >= b->mapped && addr - b->mapped < b->size) {
			*bar = h->decoded[k].bar;
			*off = addr - b->mapped;
			return d;
		}
	}
	return NULL;
}

/* An access to a memory (io false) or I/O BAR; MSI-X lives in memory BARs. */
static uint64_t bar_read(struct pci_host *h, uint64_t addr, bool io, unsigned size)
{
	uint64_t v = ones(size), off;
	int bar;
	pthread_rwlock_rdlock(&h->lock);
	struct pci_dev *d = bar_lookup(h, addr, io, &bar, &off);
	if (d && msix_claims(d, bar, off)) {
		if (size == 4 && !(off & 3))
			v = msix_read32(&d->msix, off);
		else if (size == 8 && !(off & 7))
			v = msix_read32(&d->msix, off) | (uint64_t)msix_read32(&d->msix, off + 4) << 32;
		else
			v = 0;
	} else if (d && d->bar[bar].ops && d->bar[bar].ops->read) {
		v = d->bar[bar].ops->read(d->bar[bar].opaque, off, size);
	}
	pthread_rwlock_unlock(&h->lock);
	return v;
}

static void bar_write(struct pci_host *h, uint64_t addr, bool io, unsigned size, uint64_t value)
{
	uint64_t off;
	int bar;
	pthread_rwlock_rdlock(&h->lock);
	struct pci_dev *d = bar_lookup(h, addr, io, &bar, &off);
	if (d && msix_claims(d, bar, off)) {
		if (size == 4 && !(off & 3)) {
			msix_write32(&d->msix, off, (uint32_t)value);
		} else if (size == 8 && !(off & 7)) {
			msix_write32(&d->msix, off, (uint32_t)value);
			msix_write32(&d->msix, off + 4, (uint32_t)(value >> 32));
		}
	} else if (d && d->bar[bar].ops && d->bar[bar].ops->write) {
		d->bar[bar].ops->write(d->bar[bar].opaque, off, size, value);
	}
	pthread_rwlock_unlock(&h->lock);
}

uint64_t pci_window_read(struct pci_host *h, uint64_t addr, unsigned size)
{
	return bar_read(h, addr, false, size);
}

void pci_window_write(struct pci_host *h, uint64_t addr, unsigned size, uint64_t value)
{
	bar_write(h, addr, false, size, value);
}

uint64_t pci_io_read(struct pci_host *h, uint64_t port, unsigned size)
{
	return bar_read(h, port, true, size);
}

void pci_io_write(struct pci_host *h, uint64_t port, unsigned size, uint64_t value)
{
	bar_write(h, port, true, size, value);
}

static uint64_t winio_read(void *o, uint64_t off, unsigned size)
{
	struct pci_host *h = o;
	return pci_io_read(h, h->io_base + off, size);
}

static void winio_write(void *o, uint64_t off, unsigned size, uint64_t v)
{
	struct pci_host *h = o;
	pci_io_write(h, h->io_base + off, size, v);
}

static uint64_t win32_read(void *o, uint64_t off, unsigned size)
{
	struct pci_host *h = o;
	return pci_window_read(h, h->mmio32_base + off, size);
}

static void win32_write(void *o, uint64_t off, unsigned size, uint64_t v)
{
	struct pci_host *h = o;
	pci_window_write(h, h->mmio32_base + off, size, v);
}

static uint64_t win64_read(void *o, uint64_t off, unsigned size)
{
	struct pci_host *h = o;
	return pci_window_read(h, h->mmio64_base + off, size);
}

static void win64_write(void *o, uint64_t off, unsigned size, uint64_t v)
{
	struct pci_host *h = o;
	pci_window_write(h, h->mmio64_base + off, size, v);
}

static const struct bus_ops win32_ops = { .read = win32_read, .write = win32_write };
static const struct bus_ops win64_ops = { .read = win64_read, .write = win64_write };
static const struct bus_ops winio_ops = { .read = winio_read, .write = winio_write };

int pci_host_attach(struct pci_host *h, struct bus *pio, struct bus *mmio, uint64_t ecam,
		    uint64_t ecam_size)
{
	int r;
	if ((r = bus_register(pio, PCI_CF8_PORT, PCI_CF8_PORTS, &pci_cf8_ops, h, "pci-cf8")) ||
	    (r = bus_register(mmio, ecam, ecam_size, &pci_ecam_ops, h, "pci-ecam")) ||
	    (r = bus_register(mmio, h->mmio32_base, h->mmio32_end - h->mmio32_base, &win32_ops, h,
			      "pci-mmio32")) ||
	    (r = bus_register(mmio, h->mmio64_base, h->mmio64_end - h->mmio64_base, &win64_ops, h,
			      "pci-mmio64")) ||
	    (r = bus_register(pio, h->io_base, h->io_end - h->io_base, &winio_ops, h, "pci-io")))
		return r;
	return 0;
}

/* ---- State ---------------------------------------------------------------- */

enum { T_SLOT, T_CFG, T_MSIX_TABLE, T_PBA, T_INTX };

void pci_dev_save(struct pci_dev *d, struct state_writer *w, uint16_t tag0)
{
	struct pci_msix *m = &d->msix;
	uint32_t table[PCI_MSIX_MAX * 4];
	pthread_mutex_lock(&m->lock);
	state_put_u32(w, tag0 + T_SLOT, d->slot);
	state_put_blob(w, tag0 + T_CFG, d->cfg, PCI_CFG_BYTES);
	for (unsigned i = 0; i < m->nvec; i++) {
		table[i * 4] = m->table[i].addr_lo;
		table[i * 4 + 1] = m->table[i].addr_hi;
		table[i * 4 + 2] = m->table[i].data;
		table[i * 4 + 3] = m->table[i].ctrl;
	}
	state_put_blob(w, tag0 + T_MSIX_TABLE, table, m->nvec * MSIX_ENTRY_SIZE);
	state_put_u64(w, tag0 + T_PBA, m->pba);
	state_put_u8(w, tag0 + T_INTX, d->intx_level);
	pthread_mutex_unlock(&m->lock);
}

int pci_dev_load(struct pci_dev *d, struct state_reader *r, uint16_t tag0)
{
	struct pci_msix *m = &d->msix;
	uint8_t cfg[PCI_CFG_BYTES], intx;
	uint32_t slot, table[PCI_MSIX_MAX * 4];
	uint64_t pba;
	int e;
	if ((e = state_get_u32(r, tag0 + T_SLOT, &slot)) ||
	    (e = state_get_blob(r, tag0 + T_CFG, cfg, sizeof(cfg))) ||
	    (e = state_get_blob(r, tag0 + T_MSIX_TABLE, table, m->nvec * MSIX_ENTRY_SIZE)) ||
	    (e = state_get_u64(r, tag0 + T_PBA, &pba)) || (e = state_get_u8(r, tag0 + T_INTX, &intx)))
		return e;
	if (slot != d->slot)
		return state_fail(r, "%s is in slot %u here, %u in the stream", d->name, d->slot, slot);
	for (unsigned i = 0; i < PCI_CFG_BYTES; i++) {
		if (i == PCI_STATUS || i == PCI_STATUS + 1)
			continue;       /* the interrupt bit follows the INTx level */
		if ((cfg[i] ^ d->cfg[i]) & ~d->wmask[i])
			return state_fail(r, "%s: read-only config byte 0x%02x is 0x%02x here, 0x%02x in the stream",
					  d->name, i, d->cfg[i], cfg[i]);
	}
	if (d->host)
		pthread_rwlock_wrlock(&d->host->lock);
	pthread_mutex_lock(&m->lock);
	for (unsigned i = 0; i < PCI_CFG_BYTES; i++)
		d->cfg[i] = (uint8_t)((d->cfg[i] & ~d->wmask[i]) | (cfg[i] & d->wmask[i]));
	d->intx_level = intx != 0;
	if (d->intx_level)
		d->cfg[PCI_STATUS] |= PCI_STATUS_INTERRUPT;
	else
		d->cfg[PCI_STATUS] &= (uint8_t)~PCI_STATUS_INTERRUPT;
	for (unsigned i = 0; i < m->nvec; i++) {
		m->table[i].addr_lo = table[i * 4] & ~3u;
		m->table[i].addr_hi = table[i * 4 + 1];
		m->table[i].data = table[i * 4 + 2];
		m->table[i].ctrl = table[i * 4 + 3] & PCI_MSIX_ENTRY_CTRL_MASKBIT;
		m->dirty |= 1ULL << i;
	}
	m->pba = m->nvec ? pba & (m->nvec == 64 ? ~0ULL : (1ULL << m->nvec) - 1) : 0;
	if (m->nvec) {
		uint16_t flags = pci_cfg_get16(d, m->cap + PCI_MSIX_FLAGS);
		m->enabled = flags & PCI_MSIX_FLAGS_ENABLE;
		m->masked = flags & PCI_MSIX_FLAGS_MASKALL;
		/* The routes now, not at the first message: KVM's table is
		 * what the guest programmed on the source. */
		for (unsigned i = 0; i < m->nvec; i++) {
			uint64_t addr = (uint64_t)m->table[i].addr_hi << 32 | m->table[i].addr_lo;
			if (!addr)
				continue;
			int err = m->sink->set(m->sink, m->handle[i], addr, m->table[i].data);
			if (err)
				log_warn("%s: MSI-X vector %u: route: %s", d->name, i, strerror(-err));
			else
				m->dirty &= ~(1ULL << i);
		}
		msix_flush_pending(m);
	}
	if (d->intx)
		intx_update(d);
	pthread_mutex_unlock(&m->lock);
	/* BARs: decoded where the stream says if that is inside a window
	 * (else not at all, as for a guest placing them there). */
	update_mappings(d);
	if (d->host)
		pthread_rwlock_unlock(&d->host->lock);
	return 0;
}

enum { T_CF8 = 1, T_BRIDGE = 0x10 };

static int host_save(void *opaque, struct state_writer *w)
{
	struct pci_host *h = opaque;
	state_put_u32(w, T_CF8, __atomic_load_n(&h->cf8, __ATOMIC_RELAXED));
	pci_dev_save(&h->bridge, w, T_BRIDGE);
	return 0;
}

static int host_load(void *opaque, struct state_reader *r)
{
	struct pci_host *h = opaque;
	uint32_t cf8;
	int e = state_get_u32(r, T_CF8, &cf8);
	if (e)
		return e;
	__atomic_store_n(&h->cf8, cf8 & 0x80fffffcu, __ATOMIC_RELAXED);
	return pci_dev_load(&h->bridge, r, T_BRIDGE);
}

const struct devstate_ops pci_host_state_ops = { .name = "pci-host", .version = 1,
						 .save = host_save, .load = host_load };
