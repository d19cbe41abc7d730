/* QEMU's pci-testdev (--pci-testdev) as kvm-unit-tests' pci-testdev library
 * drives it: find 1b36:0005, then on BAR0 (memory) and BAR1 (I/O ports)
 * select tests 0, 1, ... until one reports no valid width; each must start
 * with count 0 and then count exactly the 16 writes of its data at its
 * offset; the eventfd tests may count 0 instead (QEMU's end in the kernel).
 * Both BARs must offer three tests. */
#include "kit.h"
#include "pci.h"

#define NR_WRITES 16

struct access {
	uint8_t (*rd8)(uint64_t a);
	uint32_t (*rd32)(uint64_t a);
	void (*wr)(uint64_t a, unsigned width, uint32_t v);
};

static uint8_t mem_rd8(uint64_t a) { return *(volatile uint8_t *)(uintptr_t)a; }
static uint32_t mem_rd32(uint64_t a) { return *(volatile uint32_t *)(uintptr_t)a; }
static void mem_wr(uint64_t a, unsigned width, uint32_t v)
{
	if (width == 1)
		*(volatile uint8_t *)(uintptr_t)a = (uint8_t)v;
	else if (width == 2)
		*(volatile uint16_t *)(uintptr_t)a = (uint16_t)v;
	else
		*(volatile uint32_t *)(uintptr_t)a = v;
}
static uint8_t io_rd8(uint64_t a) { return inb((uint16_t)a); }
static uint32_t io_rd32(uint64_t a) { return inl((uint16_t)a); }
static void io_wr(uint64_t a, unsigned width, uint32_t v)
{
	if (width == 1)
		outb((uint16_t)a, (uint8_t)v);
	else if (width == 2)
		outw((uint16_t)a, (uint16_t)v);
	else
		outl((uint16_t)a, v);
}

static bool contains(const char *s, const char *sub)
{
	for (size_t n = strlen(sub); *s; s++)
		if (!strncmp(s, sub, n))
			return true;
	return false;
}

static const struct access mem = { mem_rd8, mem_rd32, mem_wr }, io = { io_rd8, io_rd32, io_wr };

/* Runs every test the BAR at base offers; returns how many passed in a row. */
static int run_bar(const char *what, uint64_t base, const struct access *x)
{
	int n;
	for (n = 0; n < 16; n++) {
		x->wr(base, 1, (uint32_t)n);                         /* select test n */
		uint32_t count = x->rd32(base + 12);
		uint8_t width = x->rd8(base + 1);
		if (width != 1 && width != 2 && width != 4)
			break;
		uint32_t off = x->rd32(base + 4), data = x->rd32(base + 8);
		char name[32];
		for (unsigned i = 0; i < sizeof(name) - 1; i++)
			if (!(name[i] = (char)x->rd8(base + 16 + i)))
				break;
		name[sizeof(name) - 1] = 0;
		for (int i = 0; i < NR_WRITES; i++)
			x->wr(base + off, width, data);
		uint32_t after = x->rd32(base + 12);
		bool eventfd = contains(name, "eventfd") && !contains(name, "no-eventfd");
		if (!report(count == 0 && (after == NR_WRITES || (eventfd && after == 0)),
			    "pci-testdev %s test %d (%s): %u writes counted", what, n, name, after))
			break;
	}
	return n;
}

void kmain(void)
{
	struct pci_fn f;
	if (!report(pci_find(0x1b36, 0x0005, 0, &f), "pci-testdev 1b36:0005 found"))
		return;
	uint32_t bar1 = pci_read(&f, 0x14, 4);
	uint64_t mbase = pci_bar(&f, 0);
	report(mbase && !(pci_read(&f, 0x10, 4) & 1), "BAR0 is memory at %#lx", (unsigned long)mbase);
	report((bar1 & 1) && (bar1 & ~3u) >= 0x1000 && (bar1 & ~3u) < 0x10000, "BAR1 is I/O at %#x", bar1 & ~3u);
	report(pci_read(&f, 0x04, 2) & 3, "I/O and memory decoding on");
	report(run_bar("mem", mbase, &mem) == 3, "three memory tests pass");
	report(run_bar("io", bar1 & ~3u, &io) == 3, "three I/O tests pass");
}
