/* What Ember hands over in the Linux zero page (struct boot_params at RSI):
 * the e820 map, the command line and the ACPI RSDP. Copied once by the BSP
 * before anything can overwrite the low pages. */
#include "kit_internal.h"

/* Offsets in struct boot_params (asm/bootparam.h). */
#define BP_ACPI_RSDP_ADDR 0x070   /* u64 */
#define BP_E820_ENTRIES   0x1e8   /* u8 */
#define BP_CMD_LINE_PTR   0x228   /* u32, hdr.cmd_line_ptr */
#define BP_CMDLINE_SIZE   0x238   /* u32, hdr.cmdline_size */
#define BP_E820_TABLE     0x2d0   /* struct boot_e820_entry[128], 20 bytes each */
#define BP_E820_MAX       128
#define CMDLINE_MAX       4096

static uint64_t bp_phys;
static struct e820_range e820[E820_MAX];
static int e820_n;
static char cmdline_buf[CMDLINE_MAX];
uint64_t kit_rsdp_hint;

static inline const volatile uint8_t *phys(uint64_t pa) { return (const volatile uint8_t *)(uintptr_t)pa; }

void boot_init(uint64_t boot_params)
{
	bp_phys = boot_params;
	if (!boot_params)
		return;
	const volatile uint8_t *bp = phys(boot_params);
	kit_rsdp_hint = *(const volatile uint64_t *)(bp + BP_ACPI_RSDP_ADDR);
	int n = bp[BP_E820_ENTRIES];
	if (n > BP_E820_MAX)
		n = BP_E820_MAX;
	for (int i = 0; i < n; i++) {
		const volatile uint8_t *e = bp + BP_E820_TABLE + 20 * i;
		e820[i].addr = *(const volatile uint64_t *)e;
		e820[i].size = *(const volatile uint64_t *)(e + 8);
		e820[i].type = *(const volatile uint32_t *)(e + 16);
	}
	e820_n = n;
	uint32_t cl = *(const volatile uint32_t *)(bp + BP_CMD_LINE_PTR);
	if (cl) {
		const volatile char *src = (const volatile char *)(uintptr_t)cl;
		size_t i;
		for (i = 0; i < CMDLINE_MAX - 1 && src[i]; i++)
			cmdline_buf[i] = src[i];
		cmdline_buf[i] = 0;
	}
}

uint64_t boot_params_phys(void) { return bp_phys; }
int e820_count(void) { return e820_n; }
const struct e820_range *e820_get(int i) { return i >= 0 && i < e820_n ? &e820[i] : NULL; }

uint64_t e820_ram_total(void)
{
	uint64_t t = 0;
	for (int i = 0; i < e820_n; i++)
		if (e820[i].type == E820_RAM)
			t += e820[i].size;
	return t;
}

uint64_t e820_ram_top(void)
{
	uint64_t top = 0;
	for (int i = 0; i < e820_n; i++)
		if (e820[i].type == E820_RAM && e820[i].addr + e820[i].size > top)
			top = e820[i].addr + e820[i].size;
	return top;
}

bool e820_ram_overlaps(uint64_t addr, uint64_t size)
{
	for (int i = 0; i < e820_n; i++)
		if (e820[i].type == E820_RAM && e820[i].addr < addr + size && addr < e820[i].addr + e820[i].size)
			return true;
	return false;
}

const char *cmdline(void) { return cmdline_buf; }

bool cmdline_get(const char *key, char *buf, size_t len)
{
	size_t klen = strlen(key);
	const char *p = cmdline_buf;
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == '\n')
			p++;
		const char *w = p;
		while (*p && *p != ' ' && *p != '\t' && *p != '\n')
			p++;
		size_t wlen = (size_t)(p - w);
		if (wlen < klen || strncmp(w, key, klen))
			continue;
		if (wlen == klen || w[klen] == '=') {
			const char *v = wlen == klen ? w + klen : w + klen + 1;
			size_t vlen = (size_t)(p - v);
			if (len) {
				if (vlen >= len)
					vlen = len - 1;
				memcpy(buf, v, vlen);
				buf[vlen] = 0;
			}
			return true;
		}
	}
	return false;
}

bool cmdline_has(const char *key) { return cmdline_get(key, NULL, 0); }

bool cmdline_get_u64(const char *key, uint64_t *val)
{
	char v[64];
	return cmdline_get(key, v, sizeof(v)) && parse_size(v, val);
}
