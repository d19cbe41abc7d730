/* The multiboot kit's runtime: see kit.h. Kernel-mode code is emulated on
 * some hosts (kvm_pvm), so everything here keeps its loops short. */
#include "kit.h"

#define COM1 0x3f8
#define DEBUG_EXIT_PORT 0xf4
#define STACK_SIZE 8192

extern char stacks[];
extern const uint32_t isr_table[256];

/* 64-bit division for 32-bit code (what libgcc would provide). */
uint64_t __udivmoddi4(uint64_t n, uint64_t d, uint64_t *rem);
uint64_t __udivmoddi4(uint64_t n, uint64_t d, uint64_t *rem)
{
	uint64_t q = 0, r = 0;
	for (int i = 63; i >= 0; i--) {
		r = r << 1 | ((n >> i) & 1);
		if (r >= d) {
			r -= d;
			q |= 1ull << i;
		}
	}
	if (rem)
		*rem = r;
	return q;
}
uint64_t __udivdi3(uint64_t n, uint64_t d);
uint64_t __udivdi3(uint64_t n, uint64_t d) { return __udivmoddi4(n, d, 0); }
uint64_t __umoddi3(uint64_t n, uint64_t d);
uint64_t __umoddi3(uint64_t n, uint64_t d) { uint64_t r; __udivmoddi4(n, d, &r); return r; }

/* ---- strings ------------------------------------------------------------ */
size_t strlen(const char *s) { size_t n = 0; while (s[n]) n++; return n; }
int strncmp(const char *a, const char *b, size_t n)
{
	for (; n; n--, a++, b++)
		if (*a != *b || !*a)
			return (unsigned char)*a - (unsigned char)*b;
	return 0;
}
int strcmp(const char *a, const char *b) { return strncmp(a, b, (size_t)-1); }
void *memset(void *d, int c, size_t n) { char *p = d; while (n--) *p++ = (char)c; return d; }
void *memcpy(void *d, const void *s, size_t n) { char *p = d; const char *q = s; while (n--) *p++ = *q++; return d; }
int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *p = a, *q = b;
	for (; n; n--, p++, q++)
		if (*p != *q)
			return *p - *q;
	return 0;
}

/* ---- console -------------------------------------------------------------- */
static volatile int console_lock;

static void serial_putc(char c)
{
	while (!(inb(COM1 + 5) & 0x20))
		;
	outb(COM1, (uint8_t)c);
}

static void put_num(char **p, char *end, uint64_t v, unsigned base, int width, char pad, bool neg)
{
	char tmp[24];
	int n = 0;
	do {
		tmp[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	if (neg)
		tmp[n++] = '-';
	for (int i = n; i < width; i++)
		if (*p < end)
			*(*p)++ = pad;
	while (n--)
		if (*p < end)
			*(*p)++ = tmp[n];
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	char *p = buf, *end = buf + (size ? size - 1 : 0);
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			if (p < end)
				*p++ = *fmt;
			continue;
		}
		fmt++;
		char pad = ' ';
		int width = 0, lng = 0;
		if (*fmt == '0')
			pad = '0', fmt++;
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		while (*fmt == 'l')
			lng++, fmt++;
		switch (*fmt) {
		case 'd': {
			int64_t v = lng >= 2 ? va_arg(ap, int64_t) : va_arg(ap, int32_t);
			put_num(&p, end, v < 0 ? (uint64_t)-v : (uint64_t)v, 10, width, pad, v < 0);
			break;
		}
		case 'u': case 'x': {
			uint64_t v = lng >= 2 ? va_arg(ap, uint64_t) : va_arg(ap, uint32_t);
			put_num(&p, end, v, *fmt == 'x' ? 16 : 10, width, pad, false);
			break;
		}
		case 's': {
			const char *s = va_arg(ap, const char *);
			for (s = s ? s : "(null)"; *s; s++)
				if (p < end)
					*p++ = *s;
			break;
		}
		case 'c':
			if (p < end)
				*p++ = (char)va_arg(ap, int);
			break;
		default:
			if (p < end)
				*p++ = *fmt;
		}
	}
	if (size)
		*p = '\0';
	return (int)(p - buf);
}

int snprintf(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vsnprintf(buf, n, fmt, ap);
	va_end(ap);
	return r;
}

static int vprint(const char *fmt, va_list ap)
{
	char buf[256];
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	while (__atomic_exchange_n(&console_lock, 1, __ATOMIC_ACQUIRE))
		pause();
	for (char *s = buf; *s; s++)
		serial_putc(*s);
	__atomic_store_n(&console_lock, 0, __ATOMIC_RELEASE);
	return n;
}

int printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vprint(fmt, ap);
	va_end(ap);
	return r;
}

/* ---- results (kvm-unit-tests' format) -------------------------------------- */
static volatile int tests, failures, skips;

static void vreport(const char *what, const char *fmt, va_list ap)
{
	char buf[200];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	printf("%s: %s\n", what, buf);
}

void report(bool ok, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	__atomic_add_fetch(&tests, 1, __ATOMIC_RELAXED);
	if (!ok)
		__atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);
	vreport(ok ? "PASS" : "FAIL", fmt, ap);
	va_end(ap);
}

void report_skip(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	__atomic_add_fetch(&tests, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&skips, 1, __ATOMIC_RELAXED);
	vreport("SKIP", fmt, ap);
	va_end(ap);
}

int report_summary(void)
{
	printf("SUMMARY: %d tests, %d unexpected failures, %d skipped\n", tests, failures, skips);
	return failures ? 1 : (skips && skips == tests ? 77 >> 1 : 0);
}

void exit(int code)
{
	outl(DEBUG_EXIT_PORT, (uint32_t)code);
	for (;;)
		asm volatile("cli; hlt");
}

/* ---- exceptions ------------------------------------------------------------ */
struct gate { uint16_t off_lo, sel; uint8_t zero, type; uint16_t off_hi; } __attribute__((packed));
static struct gate idt[256];
static irq_handler handlers[256];
volatile uint32_t exc_resume[MAX_CPUS];
volatile int exc_vector[MAX_CPUS];
volatile uint32_t exc_error[MAX_CPUS];

int cpu_index(void)
{
	uint32_t sp;
	asm volatile("mov %%esp, %0" : "=r"(sp));
	return (int)((sp - (uint32_t)stacks) / STACK_SIZE);
}

static void set_gate(int v, uint32_t addr)
{
	idt[v] = (struct gate){ .off_lo = (uint16_t)addr, .sel = 0x08, .type = 0x8e,
				.off_hi = (uint16_t)(addr >> 16) };
}

void set_irq_handler(int vector, irq_handler h)
{
	handlers[vector] = h;
}

void isr_dispatch(struct frame *f);
void isr_dispatch(struct frame *f)
{
	int c = cpu_index();
	if (handlers[f->vector]) {
		handlers[f->vector](f);
		return;
	}
	if (f->vector < 32 && c < MAX_CPUS && exc_resume[c]) {
		exc_vector[c] = (int)f->vector;
		exc_error[c] = f->error;
		f->eip = exc_resume[c];
		exc_resume[c] = 0;
		return;
	}
	printf("FAIL: unexpected exception %u (error 0x%x) at eip 0x%x on CPU %d\n",
	       f->vector, f->error, f->eip, c);
	report_summary();
	exit(1);
}

static void idt_load(void)
{
	struct { uint16_t limit; uint32_t base; } __attribute__((packed)) d = { sizeof(idt) - 1, (uint32_t)idt };
	asm volatile("lidt %0" :: "m"(d));
}

int rdmsr_safe(uint32_t msr, uint64_t *val)
{
	uint32_t lo = 0, hi = 0;
	int v = CATCH(asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr)));
	*val = (uint64_t)hi << 32 | lo;
	return v;
}

int wrmsr_safe(uint32_t msr, uint64_t val)
{
	return CATCH(asm volatile("wrmsr" :: "c"(msr), "a"((uint32_t)val), "d"((uint32_t)(val >> 32))));
}

/* ---- ACPI, PM timer, fw_cfg ------------------------------------------------- */
struct sdt { char sig[4]; uint32_t len; uint8_t rev, sum; char oem[6], table[8]; uint32_t oemrev, cid, crev; } __attribute__((packed));

static const char *find_rsdp(void)
{
	for (uint32_t a = 0xe0000; a < 0x100000; a += 16)
		if (!memcmp((const void *)a, "RSD PTR ", 8))
			return (const char *)a;
	return NULL;
}

const void *acpi_find(const char *sig)
{
	const char *rsdp = find_rsdp();
	if (!rsdp)
		return NULL;
	const struct sdt *rsdt = (const void *)*(const uint32_t *)(rsdp + 16);
	unsigned n = (rsdt->len - sizeof(*rsdt)) / 4;
	const uint32_t *e = (const uint32_t *)(rsdt + 1);
	for (unsigned i = 0; i < n; i++)
		if (!memcmp((const void *)e[i], sig, 4))
			return (const void *)e[i];
	return NULL;
}

int acpi_madt_cpus(void)
{
	const struct sdt *madt = acpi_find("APIC");
	if (!madt)
		return 0;
	const uint8_t *p = (const uint8_t *)madt + 44, *end = (const uint8_t *)madt + madt->len;
	int n = 0;
	for (; p + 2 <= end && p[1]; p += p[1])
		if ((p[0] == 0 && (p[4] & 1)) || (p[0] == 9 && (p[8] & 1)))
			n++;
	return n;
}

uint32_t pm_timer_port(void)
{
	const uint8_t *fadt = acpi_find("FACP");
	return fadt ? *(const uint32_t *)(fadt + 76) : 0;
}

static uint64_t khz;

uint64_t tsc_khz(void)
{
	if (khz)
		return khz;
	uint32_t port = pm_timer_port();
	if (!port)
		return khz = 1000000;   /* a guess: 1 GHz */
	/* ~10 ms of PM timer ticks (3.579545 MHz) against the TSC. */
	uint32_t t0 = inl((uint16_t)port);
	uint64_t c0 = rdtsc();
	uint32_t t1;
	do
		t1 = inl((uint16_t)port);
	while (((t1 - t0) & 0xffffff) < 35795);
	uint64_t c1 = rdtsc();
	uint32_t ticks = (t1 - t0) & 0xffffff;
	khz = (c1 - c0) * 3579545ull / ticks / 1000;
	return khz;
}

uint64_t tsc_to_ns(uint64_t cycles) { return cycles * 1000000ull / tsc_khz(); }

void udelay(uint64_t us)
{
	uint64_t end = rdtsc() + us * tsc_khz() / 1000;
	while (rdtsc() < end)
		pause();
}

static uint64_t fwcfg_read(uint16_t key, int bytes)
{
	uint64_t v = 0;
	outw(0x510, key);
	for (int i = 0; i < bytes; i++)
		v |= (uint64_t)inb(0x511) << (8 * i);
	return v;
}
uint16_t fwcfg_read16(uint16_t key) { return (uint16_t)fwcfg_read(key, 2); }
uint64_t fwcfg_read64(uint16_t key) { return fwcfg_read(key, 8); }

/* ---- SMP ------------------------------------------------------------------------ */
extern char sipi_start[], sipi_end[];
extern volatile uint32_t ap_next;
static void (*ap_fn)(int);
static volatile int aps_up;

void ap_entry(int index);
void ap_entry(int index)
{
	idt_load();
	__atomic_add_fetch(&aps_up, 1, __ATOMIC_SEQ_CST);
	if (ap_fn)
		ap_fn(index + 1);
	for (;;)
		asm volatile("cli; hlt");
}

int smp_start_aps(void (*fn)(int), int expect, uint64_t timeout_ms)
{
	ap_fn = fn;
	memcpy((void *)0, sipi_start, (size_t)(sipi_end - sipi_start));
	apic_write(APIC_ICR_HI, 0);
	apic_write(APIC_ICR_LO, 0x000c4500);   /* INIT, all but self */
	apic_write(APIC_ICR_LO, 0x000c4600);   /* SIPI vector 0 */
	uint64_t end = rdtsc() + timeout_ms * tsc_khz();
	while (aps_up < expect && rdtsc() < end)
		pause();
	return aps_up;
}

/* ---- environment and entry ------------------------------------------------------- */
static char env[4096];
static const char *envp[64];
static char args[512];
static char *argv[32];

const char *getenv(const char *name)
{
	size_t n = strlen(name);
	for (int i = 0; envp[i]; i++)
		if (!strncmp(envp[i], name, n) && envp[i][n] == '=')
			return envp[i] + n + 1;
	return NULL;
}

static void setup_env(void)
{
	if (!(mb_info->flags & 8) || mb_info->mods_count < 1)
		return;
	const struct mb_module *m = (const void *)mb_info->mods_addr;
	uint32_t len = m->end - m->start;
	if (len > sizeof(env) - 1)
		len = sizeof(env) - 1;
	memcpy(env, (const void *)m->start, len);
	int n = 0;
	for (char *p = env; *p && n < 63;) {
		char *nl = p;
		while (*nl && *nl != '\n')
			nl++;
		bool more = *nl;
		*nl = '\0';
		if (*p && *p != '#')
			envp[n++] = p;
		p = more ? nl + 1 : nl;
	}
}

static int setup_args(void)
{
	int argc = 0;
	if (!(mb_info->flags & 4))
		return 0;
	const char *s = (const char *)mb_info->cmdline;
	size_t len = strlen(s);
	if (len >= sizeof(args))
		len = sizeof(args) - 1;
	memcpy(args, s, len);
	for (char *p = args; *p && argc < 31;) {
		while (*p == ' ')
			*p++ = '\0';
		if (!*p)
			break;
		argv[argc++] = p;
		while (*p && *p != ' ')
			p++;
	}
	return argc;
}

void kit_main(void);
void kit_main(void)
{
	for (int v = 0; v < 256; v++)
		set_gate(v, isr_table[v]);
	idt_load();
	if (mb_magic != 0x2BADB002) {
		printf("FAIL: EAX at entry was 0x%x, not the multiboot magic\n", mb_magic);
		exit(1);
	}
	setup_env();
	int argc = setup_args();
	exit(kmain(argc, argv));
}
