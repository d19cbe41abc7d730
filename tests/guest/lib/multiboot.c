/* Booted by a multiboot loader (mb_entry.S, the .flat build): the boot
 * information becomes the Linux zero page fields boot.c reads (memory map,
 * command line without the kernel's file name; the RSDP is found by the
 * BIOS-area scan), and the APs, which wait for INIT/SIPI, are woken. */
#include "kit_internal.h"

#define MB_BOOT_MAGIC   0x2BADB002u
#define MB_INFO_MEMORY  (1u << 0)
#define MB_INFO_CMDLINE (1u << 2)
#define MB_INFO_MMAP    (1u << 6)

/* Zero page offsets (asm/bootparam.h), as boot.c reads them. */
#define BP_E820_ENTRIES 0x1e8
#define BP_CMD_LINE_PTR 0x228
#define BP_E820_TABLE   0x2d0
#define BP_E820_MAX     128

uint32_t kit_mb_magic, kit_mb_info_phys;     /* EAX, EBX at entry (mb_entry.S) */
uint64_t kit_mb_zero_page;                   /* 0 unless booted by multiboot */
static uint8_t zero_page[4096] __attribute__((aligned(4096)));
extern const char kit_sipi_start[], kit_sipi_end[];

static void add_e820(int *n, uint64_t addr, uint64_t size, uint32_t type)
{
	if (*n >= BP_E820_MAX)
		return;
	uint8_t *e = zero_page + BP_E820_TABLE + 20 * *n;
	memcpy(e, &addr, 8);
	memcpy(e + 8, &size, 8);
	memcpy(e + 16, &type, 4);
	(*n)++;
}

uint64_t kit_mb_boot(void);
uint64_t kit_mb_boot(void)
{
	kit_mb_zero_page = (uintptr_t)zero_page;
	const struct multiboot_info *mi = multiboot_info();
	if (!mi)
		return kit_mb_zero_page;
	int n = 0;
	if (mi->flags & MB_INFO_MMAP) {
		uint64_t a = mi->mmap_addr, end = a + mi->mmap_length;
		while (a + sizeof(struct multiboot_mmap) <= end) {
			const struct multiboot_mmap *m = (const void *)(uintptr_t)a;
			add_e820(&n, m->addr, m->len, m->type);
			a += m->size + 4;
		}
	} else if (mi->flags & MB_INFO_MEMORY) {
		add_e820(&n, 0, (uint64_t)mi->mem_lower << 10, E820_RAM);
		add_e820(&n, 1ull << 20, (uint64_t)mi->mem_upper << 10, E820_RAM);
	}
	zero_page[BP_E820_ENTRIES] = (uint8_t)n;
	if ((mi->flags & MB_INFO_CMDLINE) && mi->cmdline) {
		/* Ember and QEMU (and GRUB) put the kernel's file name first. */
		const char *s = (const char *)(uintptr_t)mi->cmdline;
		while (*s && *s != ' ')
			s++;
		while (*s == ' ')
			s++;
		uint32_t p = (uint32_t)(uintptr_t)s;
		memcpy(zero_page + BP_CMD_LINE_PTR, &p, 4);
	}
	return kit_mb_zero_page;
}

const struct multiboot_info *multiboot_info(void)
{
	if (!kit_mb_zero_page || kit_mb_magic != MB_BOOT_MAGIC || !kit_mb_info_phys)
		return NULL;
	return (const struct multiboot_info *)(uintptr_t)kit_mb_info_phys;
}

uint32_t multiboot_magic(void) { return kit_mb_zero_page ? kit_mb_magic : 0; }

/* The trampoline goes to physical 0 (SIPI vector 0; Ember keeps the
 * multiboot information off that page); INIT then SIPI to all but self,
 * through the xAPIC's ICR. The APs arrive at _start and join kit_start. */
void kit_mb_start_aps(void)
{
	if (acpi_cpu_count() <= 1)
		return;
	uintptr_t tramp = 0;
	memcpy((void *)tramp, kit_sipi_start, (size_t)(kit_sipi_end - kit_sipi_start));
	volatile uint32_t *lapic = (volatile uint32_t *)(uintptr_t)acpi_lapic_phys();
	lapic[0x310 / 4] = 0;
	lapic[0x300 / 4] = 0x000c4500;       /* INIT, assert, all excluding self */
	lapic[0x300 / 4] = 0x000c4600;       /* STARTUP, vector 0 */
}
