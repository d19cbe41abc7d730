/* What a multiboot loader and QEMU's test devices hand a kvm-unit-tests
 * kernel (run the .flat): the magic, the command line (the kernel's file
 * name first), the module with KEY=VALUE lines, the memory map, fw_cfg, the
 * RTC, pc-testdev's scratch port and MMIO, and PCI config space (a host
 * bridge at 00:00.0 or no PCI at all, an empty slot). Run with
 * --cmdline "alpha beta" and an initrd holding "MBINFO_KEY=42" to check
 * those too; without them those checks skip. */
#include "kit.h"

extern uint8_t __kernel_start[], __kernel_end[];

static bool is_bcd(uint8_t v) { return (v & 0xf) < 10 && (v >> 4) < 10; }

static uint8_t cmos(uint8_t reg)
{
	outb(0x70, reg);
	return inb(0x71);
}

static bool word_is(const char *s, const char *w)
{
	size_t n = strlen(w);
	return !strncmp(s, w, n) && (s[n] == ' ' || s[n] == 0);
}

/* The value of KEY in the module's KEY=VALUE lines, into buf. */
static bool module_get(const struct multiboot_info *mi, const char *key, char *buf, size_t len)
{
	if (!(mi->flags & (1u << 3)) || !mi->mods_count)
		return false;
	const struct multiboot_module *m = (const void *)(uintptr_t)mi->mods_addr;
	const char *p = (const char *)(uintptr_t)m->mod_start, *end = (const char *)(uintptr_t)m->mod_end;
	size_t klen = strlen(key);
	while (p < end) {
		const char *nl = p;
		while (nl < end && *nl != '\n')
			nl++;
		if ((size_t)(nl - p) > klen && !strncmp(p, key, klen) && p[klen] == '=') {
			size_t n = (size_t)(nl - p) - klen - 1;
			n = n < len - 1 ? n : len - 1;
			memcpy(buf, p + klen + 1, n);
			buf[n] = 0;
			return true;
		}
		p = nl + 1;
	}
	return false;
}

static void boot_information(const struct multiboot_info *mi)
{
	report(mi->flags & 1, "memory info present (mem_upper %u KiB)", mi->mem_upper);
	const char *cl = (mi->flags & 4) ? (const char *)(uintptr_t)mi->cmdline : "";
	const char *sp = strchr(cl, ' ');
	size_t w0 = sp ? (size_t)(sp - cl) : strlen(cl);
	report(w0 >= 5 && !strncmp(cl + w0 - 5, ".flat", 5), "the command line starts with the kernel file (%s)", cl);
	if (sp && *cmdline())
		report(word_is(cmdline(), "alpha") && word_is(cmdline() + 6, "beta"), "arguments follow: %s", cmdline());
	else
		report_skip("no arguments given");
	char v[16];
	if (mi->mods_count)
		report(module_get(mi, "MBINFO_KEY", v, sizeof(v)) && !strcmp(v, "42"), "module: MBINFO_KEY=42");
	else
		report_skip("no module given");
	/* Ember puts it below 4 MiB, QEMU right after the kernel: both in RAM
	 * and off the kernel image. */
	uint64_t ks = (uintptr_t)__kernel_start, ke = (uintptr_t)__kernel_end;
	bool off = true;
	uint64_t at[] = { (uintptr_t)mi, mi->mmap_addr, mi->cmdline, mi->mods_count ? mi->mods_addr : 0 };
	for (size_t i = 0; i < ARRAY_SIZE(at); i++)
		off &= !at[i] || ((at[i] < ks || at[i] >= ke) && e820_ram_overlaps(at[i], 1));
	report(off, "boot information in RAM, off the kernel image");

	/* The memory map: RAM at 0, the kernel (at 1 MiB) inside RAM. */
	bool low = false, kernel = false;
	uint64_t ram = 0;
	for (uint64_t a = mi->mmap_addr; a < (uint64_t)mi->mmap_addr + mi->mmap_length;) {
		const struct multiboot_mmap *m = (const void *)(uintptr_t)a;
		if (m->type == 1) {
			ram += m->len;
			low |= m->addr == 0;
			kernel |= m->addr <= 0x100000 && m->addr + m->len > 0x200000;
		}
		a += m->size + 4;
	}
	report(low && kernel, "memory map: RAM at 0 and under the kernel");
	if (fw_cfg_present()) {
		uint64_t fw_ram = fw_cfg_read64(FW_CFG_RAM_SIZE);
		report(fw_ram >= ram && fw_ram - ram < (1 << 20), "fw_cfg RAM_SIZE %lu MiB matches the map (%lu MiB)",
		       (unsigned long)(fw_ram >> 20), (unsigned long)(ram >> 20));
	} else {
		report(false, "fw_cfg signature QEMU");
	}
}

void kmain(void)
{
	const struct multiboot_info *mi = multiboot_info();
	report(multiboot_magic() == 0x2BADB002, "entered with the multiboot magic (%#x)", multiboot_magic());
	if (mi)
		boot_information(mi);

	/* RTC: BCD time fields by default, and a date after 2020. */
	uint8_t sec = cmos(0), min = cmos(2), hour = cmos(4), year = cmos(9), cent = cmos(0x32);
	report(is_bcd(sec) && is_bcd(min) && is_bcd(hour) && is_bcd(year), "RTC time %x:%x:%x is BCD", hour, min, sec);
	report(cent == 0x20 && year >= 0x20, "RTC year 20%x", year);
	report(cmos(0xd) & 0x80, "RTC register D: valid");

	/* pc-testdev. */
	outl(0xe0, 0x12345678);
	report(inl(0xe0) == 0x12345678 && inb(0xe8) == 0x78, "pc-testdev scratch port (0xe0, 0xe8 bytewise)");
	volatile uint32_t *iomem = (volatile uint32_t *)0xff000000ul;
	iomem[3] = 0xdeadbeef;
	report(iomem[3] == 0xdeadbeef, "pc-testdev MMIO scratch at 0xff000000");
	/* PCI through 0xcf8/0xcfc: Ember's host bridge is 1b36:0008, QEMU pc's
	 * an i440FX, microvm has none; whichever it is, 00:00.0 is a host
	 * bridge (class 06 00) and the empty slot 00:1f.0 reads all-ones. */
	outl(0xcf8, 0x80000000);
	uint32_t id = inl(0xcfc);
	outl(0xcf8, 0x80000008);
	uint32_t class = inl(0xcfc) >> 16;
	report(id == 0xffffffff || class == 0x0600, "PCI config: 00:00.0 is %s (%04x:%04x)",
	       id == 0xffffffff ? "absent" : "a host bridge", id & 0xffff, id >> 16);
	if (id != 0xffffffff && fw_cfg_present())
		report(id == 0x00081b36 || id == 0x12378086, "PCI host bridge is Ember's or QEMU pc's");
	outl(0xcf8, 0x8000f800);
	report(inl(0xcfc) == 0xffffffff, "PCI config: an empty slot (00:1f.0) reads all-ones");
}
