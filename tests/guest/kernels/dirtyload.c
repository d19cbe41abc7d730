/* A dirtying workload for snapshot and migration tests and benchmarks.
 * Every page of RAM above 16 MiB holds a pattern derived from its number
 * and a version; a CPL3 writer rewrites pages with the next version at a
 * set rate (`rate=MBPS`, 0 = idle; `pattern=seq|random`), a table in RAM
 * keeps each page's version and a running checksum sums a hash of every
 * (page, version). The rate is kept against TSC time (a writer that was
 * held up, e.g. throttled, catches up by at most CATCHUP_MS). After
 * `seconds=N` (0 = run until stopped), or as soon as a 'v' arrives on the
 * serial port (a benchmark's "check now"), the guest checks every page
 * against the table, the checksum, that all `cpus=N` vCPUs are online and
 * that its 2 ms timer still ticks, and exits through the debug-exit port
 * (Ember exits 1 on success, 3 on failure).
 *
 * Lines on the serial port: "dirtyload: ready" once every page has been
 * written, "dirtyload: alive T writes W ms M" each second (T = seconds of
 * loop time, W = page writes so far, M = TSC milliseconds since boot: the
 * write rate a benchmark sees is dW/dM). */
#include "kit.h"

#define TIMER_VECTOR 0x40
#define TICK_US 2000                 /* the timer period */
#define MSR_APIC_BASE 0x1b
#define X2APIC_EOI    0x80b
#define X2APIC_SVR    0x80f
#define X2APIC_LVTT   0x832
#define X2APIC_TMICT  0x838
#define X2APIC_TDCR   0x83e
#define REGION_START  (16ull << 20)
#define MAX_RANGES    8
#define CATCHUP_MS    10              /* the most a late writer makes up for */
#define COM1          0x3f8
#define POLL_TICKS    10              /* serial input checked every 20 ms (one exit) */

struct range { uint64_t start, pages, first; };

static struct range ranges[MAX_RANGES];
static int nranges;
static uint64_t npages;               /* working pages (the table's pages excluded) */
static uint32_t *ver;                 /* version of each working page */
static uint64_t table_pages;

/* The state the writer keeps in RAM (migrated with everything else). */
struct work {
	uint64_t budget;                  /* pages it may write now */
	uint64_t cursor, rng;
	uint64_t csum, writes;
	bool random;
};
static struct work w;
volatile long ticks;

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t *page_addr(uint64_t i)
{
	int r = 0;
	while (r < nranges - 1 && i >= ranges[r].first + ranges[r].pages)
		r++;
	return (uint64_t *)(uintptr_t)(ranges[r].start + (i - ranges[r].first) * 4096);
}

static uint64_t hash(uint64_t i, uint32_t v)
{
	return mix(i << 32 | v);
}

static void fill(uint64_t *p, uint64_t i, uint32_t v)
{
	uint64_t x = hash(i, v);
	p[0] = i << 32 | v;
	for (unsigned k = 1; k < 512; k++)
		p[k] = x + k * 0x9e3779b97f4a7c15ull;
}

static bool check(const uint64_t *p, uint64_t i, uint32_t v)
{
	uint64_t x = hash(i, v);
	if (p[0] != (i << 32 | v))
		return false;
	for (unsigned k = 1; k < 512; k++)
		if (p[k] != x + k * 0x9e3779b97f4a7c15ull)
			return false;
	return true;
}

static void write_page(uint64_t i)
{
	uint32_t old = ver[i], v = old + 1;
	fill(page_addr(i), i, v);
	ver[i] = v;
	w.csum += hash(i, v) - (old ? hash(i, old) : 0);
	w.writes++;
}

/* CPL3: spend the budget. */
static long writer(void *arg)
{
	(void)arg;
	while (w.budget) {
		uint64_t i;
		if (w.random) {
			w.rng = mix(w.rng);
			i = w.rng % npages;
		} else {
			i = w.cursor++;
			if (w.cursor == npages)
				w.cursor = 0;
		}
		write_page(i);
		w.budget--;
	}
	return 0;
}

static long first_fill(void *arg)
{
	(void)arg;
	for (uint64_t i = 0; i < npages; i++)
		write_page(i);
	return 0;
}

struct verdict { uint64_t bad, first_bad, csum, writes; };

static long verify(void *arg)
{
	struct verdict *vd = arg;
	for (uint64_t i = 0; i < npages; i++) {
		if (!check(page_addr(i), i, ver[i]) && !vd->bad++)
			vd->first_bad = i;
		vd->csum += ver[i] ? hash(i, ver[i]) : 0;
		vd->writes += ver[i];
	}
	return 0;
}

void timer_tick(void);
void timer_tick(void)
{
	ticks++;
	wrmsr(X2APIC_EOI, 0);
}

__asm__(".text\n"
	".globl dl_timer_stub\n"
	"dl_timer_stub:\n"
	"  push %rax; push %rcx; push %rdx; push %rsi; push %rdi\n"
	"  push %r8; push %r9; push %r10; push %r11\n"
	"  cld\n"
	"  call timer_tick\n"
	"  pop %r11; pop %r10; pop %r9; pop %r8\n"
	"  pop %rdi; pop %rsi; pop %rdx; pop %rcx; pop %rax\n"
	"  iretq\n");
extern char dl_timer_stub[];

struct __attribute__((packed)) idtr { uint16_t limit; uint64_t base; };

static void start_timer(void)
{
	struct idtr i;
	__asm__ volatile("sidt %0" : "=m"(i));
	uint8_t *g = (uint8_t *)(uintptr_t)i.base + 16 * TIMER_VECTOR;
	uint64_t a = (uintptr_t)dl_timer_stub;
	uint16_t cs = KERNEL_CS;
	memset(g, 0, 16);
	memcpy(g, &a, 2);
	memcpy(g + 2, &cs, 2);
	g[5] = 0x8e;
	uint16_t mid = (uint16_t)(a >> 16);
	uint32_t hi = (uint32_t)(a >> 32);
	memcpy(g + 6, &mid, 2);
	memcpy(g + 8, &hi, 4);
	/* x2APIC, periodic; KVM's APIC timer counts at 1 GHz, divided by 16. */
	wrmsr(MSR_APIC_BASE, rdmsr(MSR_APIC_BASE) | (1ull << 10) | (1ull << 11));
	wrmsr(X2APIC_SVR, 0x1ff);
	wrmsr(X2APIC_TDCR, 0x3);
	wrmsr(X2APIC_LVTT, (1u << 17) | TIMER_VECTOR);
	wrmsr(X2APIC_TMICT, TICK_US * 1000 / 16);
}

static void wait_tick(void)
{
	long t = ticks;
	while (ticks == t) {
		sti();
		hlt();
		cli();
	}
}

/* A 'v' on the serial port: verify now. */
static bool verify_asked(void)
{
	while (inb(COM1 + 5) & 1)
		if (inb(COM1) == 'v')
			return true;
	return false;
}

static void setup_ranges(void)
{
	for (int k = 0; k < e820_count() && nranges < MAX_RANGES; k++) {
		const struct e820_range *e = e820_get(k);
		if (e->type != E820_RAM)
			continue;
		uint64_t s = e->addr < REGION_START ? REGION_START : e->addr, end = e->addr + e->size;
		s = (s + 4095) & ~4095ull;
		end &= ~4095ull;
		if (end <= s)
			continue;
		ranges[nranges] = (struct range){ s, (end - s) / 4096, npages };
		npages += ranges[nranges].pages;
		nranges++;
	}
	/* The version table takes the first pages. */
	table_pages = (npages * 4 + 4096 * 2) / 4097 + 1;
	ver = (uint32_t *)(uintptr_t)ranges[0].start;
	ranges[0].start += table_pages * 4096;
	ranges[0].pages -= table_pages;
	npages -= table_pages;
	for (int r = 1; r < nranges; r++)
		ranges[r].first -= table_pages;
	memset(ver, 0, npages * 4);
}

void kmain(void)
{
	uint64_t rate = 0, seconds = 10, cpus = 1;
	char pat[16] = "random";
	cmdline_get_u64("rate", &rate);
	cmdline_get_u64("seconds", &seconds);
	cmdline_get_u64("cpus", &cpus);
	cmdline_get("pattern", pat, sizeof(pat));
	w.random = strcmp(pat, "seq") != 0;
	w.rng = 12345;
	setup_ranges();
	printf("# dirtyload: %lu pages (%lu MiB) from %#lx, rate %lu MB/s %s, %lu s\n", (unsigned long)npages,
	       (unsigned long)(npages >> 8), (unsigned long)ranges[0].start, (unsigned long)rate, pat,
	       (unsigned long)seconds);
	run_user(first_fill, NULL);
	start_timer();
	printf("dirtyload: ready\n");

	/* Writes due by now at the rate, from TSC time. */
	uint64_t pages_per_s = rate * 1000000ull / 4096, tsc_per_us = tsc_hz() / 1000000, start = rdtsc();
	uint64_t issued = 0;
	uint64_t catchup = pages_per_s * CATCHUP_MS / 1000 + 1;
	uint64_t end = seconds * 1000000 / TICK_US;
	for (uint64_t t = 0; !seconds || t < end; t++) {
		wait_tick();
		uint64_t due = (rdtsc() - start) / tsc_per_us * pages_per_s / 1000000;
		if (due > issued + catchup)
			issued = due - catchup;
		w.budget = due - issued;
		issued = due;
		if (w.budget)
			run_user(writer, NULL);
		if (t % (1000000 / TICK_US) == 0)
			printf("dirtyload: alive %lu writes %lu ms %lu\n", (unsigned long)(t * TICK_US / 1000000),
			       (unsigned long)w.writes, (unsigned long)uptime_ms());
		if (t % POLL_TICKS == 0 && verify_asked())
			break;
	}
	struct verdict vd = { 0 };
	run_user(verify, &vd);
	report(vd.bad == 0, "every page holds its pattern (%lu bad, first %lu)", (unsigned long)vd.bad,
	       (unsigned long)vd.first_bad);
	report(vd.csum == w.csum, "checksum %#lx matches the running one %#lx", (unsigned long)vd.csum,
	       (unsigned long)w.csum);
	report(vd.writes == w.writes, "%lu page writes recorded (%lu counted)", (unsigned long)vd.writes,
	       (unsigned long)w.writes);
	report(smp_online() == (int)cpus, "%d of %lu vCPUs online", smp_online(), (unsigned long)cpus);
	long t0 = ticks;
	uint64_t until = uptime_ms() + 2000;
	while (ticks < t0 + 20 && uptime_ms() < until)
		wait_tick();
	report(ticks >= t0 + 20, "the timer still ticks (%ld ticks)", ticks - t0);
	wrmsr(X2APIC_TMICT, 0);
}
