/* What a multiboot loader and QEMU's test devices hand a kvm-unit-tests
 * kernel: the magic, argv (argv[0] is the kernel's file name), the module
 * with KEY=VALUE lines, the memory map, fw_cfg, the RTC, pc-testdev's
 * scratch port and MMIO. Expects to be run with --cmdline "alpha beta" and
 * an initrd holding "MBINFO_KEY=42"; checks skip what was not given. */
#include "kit.h"

static bool is_bcd(uint8_t v) { return (v & 0xf) < 10 && (v >> 4) < 10; }

static uint8_t cmos(uint8_t reg) { outb(0x70, reg); return inb(0x71); }

int kmain(int argc, char **argv)
{
	report(mb_info->flags & 1, "memory info present (mem_upper %u KiB)", mb_info->mem_upper);
	report(argc >= 1 && strlen(argv[0]) >= 5 && !strcmp(argv[0] + strlen(argv[0]) - 5, ".flat"),
	       "argv[0] is the kernel file (%s)", argc ? argv[0] : "");
	if (argc >= 3)
		report(!strcmp(argv[1], "alpha") && !strcmp(argv[2], "beta"), "arguments follow: %s %s",
		       argv[1], argv[2]);
	else
		report_skip("no arguments given");
	const char *v = getenv("MBINFO_KEY");
	if (mb_info->mods_count)
		report(v && !strcmp(v, "42"), "module: MBINFO_KEY=%s", v ? v : "(missing)");
	else
		report_skip("no module given");
	report(mb_info->mods_addr < 0x400000 && mb_info->mmap_addr < 0x400000 &&
	       mb_info->cmdline < 0x400000 && (uint32_t)mb_info < 0x400000,
	       "boot information below 4 MiB");

	/* The memory map: RAM at 0, the kernel (at 1 MiB) inside RAM. */
	bool low = false, kernel = false;
	uint64_t ram = 0;
	for (uint32_t a = mb_info->mmap_addr; a < mb_info->mmap_addr + mb_info->mmap_length;) {
		const struct mb_mmap *m = (const void *)a;
		if (m->type == 1) {
			ram += m->len;
			low |= m->addr == 0;
			kernel |= m->addr <= 0x100000 && m->addr + m->len > 0x200000;
		}
		a += m->size + 4;
	}
	report(low && kernel, "memory map: RAM at 0 and under the kernel");
	uint64_t fw_ram = fwcfg_read64(0x03);
	report(fw_ram >= ram && fw_ram - ram < (1 << 20), "fw_cfg RAM_SIZE %u MiB matches the map (%u MiB)",
	       (uint32_t)(fw_ram >> 20), (uint32_t)(ram >> 20));
	char sig[5] = { 0 };
	outw(0x510, 0);
	for (int i = 0; i < 4; i++)
		sig[i] = (char)inb(0x511);
	report(!strcmp(sig, "QEMU"), "fw_cfg signature %s", sig);

	/* RTC: BCD time fields by default, and a date after 2020. */
	uint8_t sec = cmos(0), min = cmos(2), hour = cmos(4), year = cmos(9), cent = cmos(0x32);
	report(is_bcd(sec) && is_bcd(min) && is_bcd(hour) && is_bcd(year), "RTC time %x:%x:%x is BCD", hour, min, sec);
	report(cent == 0x20 && year >= 0x20, "RTC year 20%x", year);
	report(cmos(0xd) & 0x80, "RTC register D: valid");

	/* pc-testdev. */
	outl(0xe0, 0x12345678);
	report(inl(0xe0) == 0x12345678 && inb(0xe8) == 0x78, "pc-testdev scratch port (0xe0, 0xe8 bytewise)");
	volatile uint32_t *iomem = (volatile uint32_t *)0xff000000;
	iomem[3] = 0xdeadbeef;
	report(iomem[3] == 0xdeadbeef, "pc-testdev MMIO scratch at 0xff000000");
	outl(0xcf8, 0x80000000);
	report(inl(0xcfc) == 0x00081b36, "PCI config: host bridge 1b36:0008 at 00:00.0");
	outl(0xcf8, 0x8000f800);
	report(inl(0xcfc) == 0xffffffff, "PCI config: an empty slot (00:1f.0) reads all-ones");
	return report_summary();
}
