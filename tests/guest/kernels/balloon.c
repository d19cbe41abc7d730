/* virtio-balloon from the guest (lib/balloon.c): tests/integration/
 * test_balloon.sh watches the host side (memory the memfd holds) while
 * this kernel works. Command line:
 *   mode=report  [mib=256] [hold_ms=4500] [delay_ms=2000] [loops=1]
 *       allocate and touch MIB at CPL3, free it ("balloon: freed"), run the
 *       driver for hold_ms (reporting on the reporting queue when the
 *       device offers it), then reuse the blocks: zeros when they were
 *       reported, the old contents when not; writable either way. With
 *       loops=N the touch/free cycle repeats (the benchmark).
 *   mode=inflate [mib=128] [timeout_ms=60000]
 *       touch and free MIB ("balloon: ready"), then follow the host's
 *       target (ember ctl balloon set) until the balloon was inflated and
 *       deflated back to 0; the deflated pages read zeros and work.
 *   mode=migrate [mib=64] [timeout_ms=120000] [hold_ms=6000]
 *       touch MIB and keep it ("balloon: ready"), follow the host's
 *       target until the balloon was inflated and deflated back to 0 (the
 *       host snapshots or migrates the VM meanwhile and sets the target
 *       on the restored one), then free the kept memory ("balloon:
 *       freed"), drive for hold_ms (statistics; reporting 2 s after the
 *       free) and check that the freed blocks were reported and read back
 *       as zeros (the host discarded them), then take new data.
 *   mode=bad     hostile requests: PFNs in the MMIO hole, past RAM, cut
 *       short; reports unaligned, across the RAM/MMIO boundary, outside
 *       RAM. Needs RAM up to 3 GiB (--memory 3200M).
 *   mode=poison  PAGE_POISON with poison_val 0xaaaaaaaa: reported blocks
 *       keep their poison; with poison_val 0 they read back as zeros. */
#include "balloon.h"
#include "kit.h"

#define VEC_CONFIG 0x40
#define WANT ((1ull << VIRTIO_BALLOON_F_STATS_VQ) | (1ull << VIRTIO_BALLOON_F_DEFLATE_ON_OOM) | \
	      (1ull << VIRTIO_BALLOON_F_REPORTING))

static struct pga pga;
static struct gballoon gb;
static uint64_t blocks[PGA_MAX_BLOCKS];
static unsigned nblocks;

static uint64_t arg(const char *key, uint64_t def)
{
	uint64_t v;
	return cmdline_get_u64(key, &v) ? v : def;
}

/* ---- work at CPL3 -------------------------------------------------------------- */

static uint64_t pattern(uint64_t addr) { return addr * 0x9e3779b97f4a7c15ull | 1; }

struct work { unsigned n; uint64_t bad; uint64_t nonzero_pages; uint8_t fill; };

static long touch_user(void *p)
{
	struct work *w = p;
	nblocks = 0;
	for (unsigned i = 0; i < w->n; i++) {
		uint64_t b = pga_alloc(&pga);
		if (!b)
			return -1;
		blocks[nblocks++] = b;
		for (uint64_t a = b; a < b + PGA_BLOCK; a += 8)
			*(volatile uint64_t *)a = w->fill ? w->fill * 0x0101010101010101ull : pattern(a);
	}
	return 0;
}

static long free_user(void *p)
{
	for (unsigned i = 0; i < nblocks; i++)
		pga_free(&pga, blocks[i]);
	return 0;
}

/* Reallocate the same amount: count pages that are not all zero and pages
 * that lost the pattern, then write and read back a new one. */
static long reuse_user(void *p)
{
	struct work *w = p;
	w->bad = w->nonzero_pages = 0;
	nblocks = 0;
	for (unsigned i = 0; i < w->n; i++) {
		uint64_t b = pga_alloc(&pga);
		if (!b)
			return -1;
		blocks[nblocks++] = b;
		for (uint64_t pg = b; pg < b + PGA_BLOCK; pg += 4096) {
			uint64_t any = 0;
			for (uint64_t a = pg; a < pg + 4096; a += 8)
				any |= *(volatile uint64_t *)a;
			w->nonzero_pages += any != 0;
		}
		for (uint64_t a = b; a < b + PGA_BLOCK; a += 8)
			*(volatile uint64_t *)a = ~pattern(a);
		for (uint64_t a = b; a < b + PGA_BLOCK; a += 8)
			w->bad += *(volatile uint64_t *)a != ~pattern(a);
	}
	return 0;
}

/* Reused pages that kept their old contents (no reporting). */
static long kept_user(void *p)
{
	struct work *w = p;
	w->bad = 0;
	for (unsigned i = 0; i < nblocks; i++)
		for (uint64_t a = blocks[i]; a < blocks[i] + PGA_BLOCK; a += 4096)
			w->bad += *(volatile uint64_t *)a != pattern(a);
	return 0;
}

struct drive { uint64_t until_ms; int stop; };

static long drive_user(void *p)
{
	struct drive *d = p;
	while (uptime_ms() < d->until_ms && !gb.failed) {
		gb_poll(&gb);
		if (d->stop == 1 && gb.inflated_pages && !gb.actual && !gb.num_pages)
			return 1;               /* inflated and deflated again */
		cpu_relax();
	}
	return 0;
}

static void drive(uint64_t ms, int stop)
{
	struct drive d = { uptime_ms() + ms, stop };
	run_user_irq(drive_user, &d);
}

static void setup(uint64_t want, uint32_t poison)
{
	/* Blocks from 16 MiB (above the kernel, its stacks and tables) to the
	 * end of the RAM range below 3 GiB. */
	uint64_t end = 0;
	for (int i = 0; i < e820_count(); i++) {
		const struct e820_range *r = e820_get(i);
		if (r->type == E820_RAM && r->addr <= 16 * MiB && r->addr + r->size > end)
			end = r->addr + r->size;
	}
	pga_init(&pga, 16 * MiB, end);
	/* Firmware (QEMU's SeaBIOS) may leave the 8259 PIC unmasked with its
	 * timer on vector 8: the driver runs with IF=1, so mask it. */
	outb(0xff, 0x21);
	outb(0xff, 0xa1);
	volatile uint32_t *lint0 = (volatile uint32_t *)(uintptr_t)(acpi_lapic_phys() + 0x350);
	*lint0 |= 1u << 16;                    /* and its ExtINT line into the LAPIC */
	irq_init();
	if (!report(gb_init(&gb, &pga, want, poison, VEC_CONFIG), "virtio-balloon found and set up"))
		report_summary();
	printf("balloon: features %#lx (stats %d, deflate-on-oom %d, reporting %d, poison %d), %u blocks of 2 MiB\n",
	       (unsigned long)gb.dev.features, gb_has(&gb, VIRTIO_BALLOON_F_STATS_VQ),
	       gb_has(&gb, VIRTIO_BALLOON_F_DEFLATE_ON_OOM), gb_has(&gb, VIRTIO_BALLOON_F_REPORTING),
	       gb_has(&gb, VIRTIO_BALLOON_F_PAGE_POISON), pga.n);
}

/* The kit's milliseconds come from a TSC frequency CPUID may not give
 * (then it assumes 2 GHz): turn real milliseconds into kit ones with the
 * TSC measured over 100 ms of the ACPI PM timer, so the report delay is
 * Linux's 2 s of real time. */
static uint64_t kit_ms(uint64_t real_ms)
{
	uint16_t tmr = acpi_pm_tmr_port();
	uint32_t p0 = inl(tmr), p1;
	uint64_t t0 = rdtsc();
	do
		p1 = inl(tmr);
	while (p1 - p0 < ACPI_PM_TMR_HZ / 10);
	uint64_t hz = (rdtsc() - t0) * ACPI_PM_TMR_HZ / (p1 - p0);
	return hz ? real_ms * hz / tsc_hz() : real_ms;
}

/* ---- mode=report ------------------------------------------------------------------ */

static void mode_report(void)
{
	unsigned n = (unsigned)(arg("mib", 256) * MiB / PGA_BLOCK);
	uint64_t hold = arg("hold_ms", 4500), loops = arg("loops", 1);
	gb.report_delay_ms = kit_ms(arg("delay_ms", 2000));
	hold = kit_ms(hold);
	bool reporting = gb_has(&gb, VIRTIO_BALLOON_F_REPORTING);
	struct work w = { .n = n };
	for (uint64_t l = 0; l < loops; l++) {
		if (!report(run_user(touch_user, &w) == 0, "touched %u MiB at CPL3 (loop %lu)", n * 2, (unsigned long)l))
			return;
		printf("balloon: touched %u MiB at %lu ms\n", n * 2, (unsigned long)uptime_ms());
		/* Printed before the free: whoever times from it starts early. */
		printf("balloon: freeing %u MiB\n", n * 2);
		uint64_t freed = uptime_ms();
		run_user(free_user, NULL);
		printf("balloon: freed %u MiB at %lu ms\n", n * 2, (unsigned long)freed);
		uint64_t passes = gb.report_passes;
		drive(hold, 0);
		if (reporting) {
			report(gb.report_passes > passes && !gb.failed && !gb.report_timeouts,
			       "reported %lu blocks, done %lu ms after the free", (unsigned long)gb.reported_blocks,
			       (unsigned long)(gb.last_report_done_ms - freed));
			printf("balloon: reported at %lu ms\n", (unsigned long)gb.last_report_done_ms);
		} else {
			report(gb.report_passes == 0, "no reporting queue: nothing reported");
		}
		if (l + 1 < loops)
			continue;
		if (reporting) {
			run_user(reuse_user, &w);
			report(w.nonzero_pages == 0, "reused pages read back as zero (%lu of %u pages not)",
			       (unsigned long)w.nonzero_pages, n * 512);
		} else {
			run_user(kept_user, &w);
			report(w.bad == 0, "without reporting the freed blocks kept their contents (%lu pages lost)",
			       (unsigned long)w.bad);
			run_user(reuse_user, &w);
		}
		report(w.bad == 0, "reused pages take new data (%lu words wrong)", (unsigned long)w.bad);
		run_user(free_user, NULL);
	}
}

/* ---- mode=inflate ------------------------------------------------------------------ */

static void mode_inflate(void)
{
	unsigned n = (unsigned)(arg("mib", 128) * MiB / PGA_BLOCK);
	struct work w = { .n = n };
	if (!report(run_user(touch_user, &w) == 0, "touched %u MiB", n * 2))
		return;
	run_user(free_user, NULL);
	printf("balloon: ready\n");
	drive(arg("timeout_ms", 60000), 1);
	report(!gb.failed && gb.inflated_pages && !gb.actual, "inflated %lu pages on request, deflated %lu back",
	       (unsigned long)gb.inflated_pages, (unsigned long)gb.deflated_pages);
	report(gb.stats_sent >= 2, "statistics sent (%lu buffers)", (unsigned long)gb.stats_sent);
	report(irq_count(VEC_CONFIG) > 0, "configuration change interrupts (%ld)", irq_count(VEC_CONFIG));
	/* The blocks went into the balloon lowest first (all were free and
	 * unreported): reallocating that many gets the same ones back. */
	w.n = (unsigned)(gb.deflated_pages / 512);
	run_user(reuse_user, &w);
	report(w.n && w.nonzero_pages == 0, "the %u deflated blocks read back as zero (%lu pages not)", w.n,
	       (unsigned long)w.nonzero_pages);
	report(w.bad == 0, "deflated pages take new data");
	printf("balloon: deflated pages work\n");
}

/* ---- mode=migrate ----------------------------------------------------------------------- */

/* The kept blocks, freed and reported: count pages that are not all zero,
 * then write and read back a new pattern. */
static long recheck_user(void *p)
{
	struct work *w = p;
	w->bad = w->nonzero_pages = 0;
	for (unsigned i = 0; i < nblocks; i++) {
		uint64_t b = blocks[i];
		for (uint64_t pg = b; pg < b + PGA_BLOCK; pg += 4096) {
			uint64_t any = 0;
			for (uint64_t a = pg; a < pg + 4096; a += 8)
				any |= *(volatile uint64_t *)a;
			w->nonzero_pages += any != 0;
		}
		for (uint64_t a = b; a < b + PGA_BLOCK; a += 8)
			*(volatile uint64_t *)a = ~pattern(a);
		for (uint64_t a = b; a < b + PGA_BLOCK; a += 8)
			w->bad += *(volatile uint64_t *)a != ~pattern(a);
	}
	return 0;
}

static void mode_migrate(void)
{
	unsigned n = (unsigned)(arg("mib", 64) * MiB / PGA_BLOCK);
	struct work w = { .n = n };
	if (!report(run_user(touch_user, &w) == 0, "touched %u MiB and kept it", n * 2))
		return;
	printf("balloon: ready\n");
	drive(arg("timeout_ms", 120000), 1);
	report(!gb.failed && gb.inflated_pages && !gb.actual, "inflated %lu pages on request, deflated %lu back",
	       (unsigned long)gb.inflated_pages, (unsigned long)gb.deflated_pages);
	uint64_t passes = gb.report_passes, stats = gb.stats_sent;
	run_user(free_user, NULL);
	printf("balloon: freed %u MiB\n", n * 2);
	drive(kit_ms(arg("hold_ms", 6000)), 0);
	report(gb.stats_sent > stats, "statistics requests answered after the free (%lu)",
	       (unsigned long)(gb.stats_sent - stats));
	if (!gb_has(&gb, VIRTIO_BALLOON_F_REPORTING)) {
		report(false, "free page reporting negotiated");
		return;
	}
	report(gb.report_passes > passes && !gb.failed && !gb.report_timeouts, "the freed blocks were reported (%lu blocks)",
	       (unsigned long)gb.reported_blocks);
	run_user(recheck_user, &w);
	report(w.nonzero_pages == 0, "reported blocks read back as zero (%lu of %u pages not)",
	       (unsigned long)w.nonzero_pages, n * 512);
	report(w.bad == 0, "and take new data (%lu words wrong)", (unsigned long)w.bad);
	printf("balloon: migrate checks done\n");
}

/* ---- mode=bad ------------------------------------------------------------------------ */

#define CANARY 0x5ca1ab1e5ca1ab1eull

static bool canary_ok(uint64_t addr) { return *(volatile uint64_t *)addr == CANARY; }
static bool needs_reset(void) { return vdev_status(&gb.dev) & VIRTIO_CONFIG_S_NEEDS_RESET; }

static void mode_bad(void)
{
	const uint64_t edge = 0xc0000000ull - 4096;   /* the last RAM page below the hole */
	uint64_t blk = pga_alloc(&pga);
	if (!report(blk && is_mapped(edge), "a block and RAM up to 3 GiB (--memory 3200M)"))
		return;
	*(volatile uint64_t *)edge = CANARY;
	*(volatile uint64_t *)blk = CANARY;
	*(volatile uint64_t *)(blk + 4096) = CANARY;

	/* Inflate: the hole, the LAPIC, far past RAM; none of it RAM. */
	static uint32_t pfns[4] = { 0xc0000, 0xfee00, 0x7fffffff, 0xffffffff };
	report(gb_send_pfns(&gb, true, pfns, sizeof(pfns), 5000) && !needs_reset(),
	       "inflate PFNs outside RAM: request completed, device fine");
	report(canary_ok(edge), "the RAM page next to the hole kept its data");
	/* A PFN cut short (6 bytes: one PFN and half of the next). */
	pfns[0] = (uint32_t)(blk / 4096);
	report(gb_send_pfns(&gb, true, pfns, 6, 5000) && !needs_reset(), "a cut-short PFN array completed");
	report(!canary_ok(blk) && canary_ok(blk + 4096), "the whole PFN was inflated, the cut one was not");
	pfns[0] = (uint32_t)(blk / 4096);
	gb_send_pfns(&gb, false, pfns, 4, 5000);
	*(volatile uint64_t *)blk = CANARY;

	/* Reports: unaligned start, unaligned length. */
	uint64_t a[2] = { blk + 512, blk };
	uint32_t l[2] = { 4096, 4096 + 1 };
	report(gb_report_ranges(&gb, a, l, 2, 5000) && !needs_reset(), "unaligned reports completed, device fine");
	report(canary_ok(blk) && canary_ok(blk + 4096), "unaligned reports discarded nothing");

	/* Across the end of RAM into the MMIO hole: the walker refuses the
	 * chain (NEEDS_RESET); nothing is discarded. */
	a[0] = edge;
	l[0] = 2 * 4096;
	gb_report_ranges(&gb, a, l, 1, 1000);
	report(needs_reset(), "report across RAM into the MMIO hole: DEVICE_NEEDS_RESET");
	report(canary_ok(edge), "the RAM part of it was not discarded");
	report(gb_reinit(&gb, WANT, 0), "reset and set up again");
	a[0] = 0x200000000ull;                          /* 8 GiB: no RAM there */
	l[0] = PGA_BLOCK;
	gb_report_ranges(&gb, a, l, 1, 1000);
	report(needs_reset(), "report outside RAM: DEVICE_NEEDS_RESET");
	report(gb_reinit(&gb, WANT, 0), "reset and set up again");
	/* And a good report still works: the block reads zeros after. */
	a[0] = blk;
	l[0] = PGA_BLOCK;
	report(gb_report_ranges(&gb, a, l, 1, 5000) && !needs_reset(), "a good report afterwards");
	report(!canary_ok(blk) && *(volatile uint64_t *)blk == 0, "and it was discarded");
	report(canary_ok(edge), "the page next to the hole still has its data");
}

/* ---- mode=poison ------------------------------------------------------------------------ */

static long poisoned_user(void *p)
{
	struct work *w = p;
	w->bad = 0;
	for (unsigned i = 0; i < nblocks; i++)
		for (uint64_t a = blocks[i]; a < blocks[i] + PGA_BLOCK; a += 4096)
			w->bad += *(volatile uint64_t *)a != w->fill * 0x0101010101010101ull;
	return 0;
}

static void mode_poison(void)
{
	report(gb_has(&gb, VIRTIO_BALLOON_F_PAGE_POISON), "PAGE_POISON negotiated, poison_val 0xaaaaaaaa");
	struct work w = { .n = 16, .fill = 0xaa };
	run_user(touch_user, &w);
	run_user(free_user, NULL);                      /* free pages hold the poison */
	report(gb_report_now(&gb) >= 16 && !gb.failed, "16 poisoned blocks reported");
	run_user(poisoned_user, &w);
	report(w.bad == 0, "with poison_val != 0 reported blocks keep the poison (%lu pages lost it)",
	       (unsigned long)w.bad);
	/* poison_val 0 (init_on_free): the device may discard. */
	report(gb_reinit(&gb, WANT | (1ull << VIRTIO_BALLOON_F_PAGE_POISON), 0), "set up again with poison_val 0");
	for (unsigned i = 0; i < pga.n; i++)
		if (pga.st[i] == BS_REPORTED)
			pga.st[i] = BS_FREE;            /* report them again */
	pga.count[BS_FREE] += pga.count[BS_REPORTED];
	pga.count[BS_REPORTED] = 0;
	report(gb_report_now(&gb) >= 16 && !gb.failed, "reported again");
	w.fill = 0;
	run_user(poisoned_user, &w);
	report(w.bad == 0, "with poison_val 0 they read back as zeros (%lu pages not)", (unsigned long)w.bad);
}

void kmain(void)
{
	char mode[16] = "report";
	cmdline_get("mode", mode, sizeof(mode));
	if (!strcmp(mode, "poison"))
		setup(WANT | (1ull << VIRTIO_BALLOON_F_PAGE_POISON), 0xaaaaaaaa);
	else
		setup(WANT, 0);
	if (!strcmp(mode, "report"))
		mode_report();
	else if (!strcmp(mode, "inflate"))
		mode_inflate();
	else if (!strcmp(mode, "migrate"))
		mode_migrate();
	else if (!strcmp(mode, "bad"))
		mode_bad();
	else if (!strcmp(mode, "poison"))
		mode_poison();
	else
		report(false, "unknown mode=%s", mode);
}
