/* Multiboot parsing and loading, the test devices, --cpu parsing and the
 * ember test verdicts. No /dev/kvm needed. */
#include <elf.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "arch/x86/cpuid.h"
#include "arch/x86/layout.h"
#include "arch/x86/multiboot.h"
#include "devices/fw_cfg.h"
#include "devices/pc_testdev.h"
#include "devices/rtc.h"
#include "test_runner.h"

static char err[256];

struct mb_elf32 {
	Elf32_Ehdr eh;
	Elf32_Phdr ph;
	uint32_t mb[3];
	uint8_t code[64];
};

static struct mb_elf32 *make_elf32(uint32_t paddr, uint32_t memsz)
{
	struct mb_elf32 *e = calloc(1, sizeof(*e));
	memcpy(e->eh.e_ident, ELFMAG, SELFMAG);
	e->eh.e_ident[EI_CLASS] = ELFCLASS32;
	e->eh.e_ident[EI_DATA] = ELFDATA2LSB;
	e->eh.e_type = ET_EXEC;
	e->eh.e_machine = EM_386;
	e->eh.e_phoff = offsetof(struct mb_elf32, ph);
	e->eh.e_phentsize = sizeof(Elf32_Phdr);
	e->eh.e_phnum = 1;
	e->eh.e_entry = paddr + 12;
	e->ph = (Elf32_Phdr){ .p_type = PT_LOAD, .p_offset = offsetof(struct mb_elf32, mb),
			      .p_vaddr = paddr, .p_paddr = paddr, .p_filesz = 12 + 64, .p_memsz = memsz };
	e->mb[0] = MB_HEADER_MAGIC;
	e->mb[1] = 0;
	e->mb[2] = -MB_HEADER_MAGIC;
	return e;
}

static void test_header(void **state)
{
	struct mb_elf32 *e = make_elf32(0x100000, 0x2000);
	struct mb_kernel k;
	assert_int_equal(mb_parse((uint8_t *)e, sizeof(*e), &k, err, sizeof(err)), 0);
	assert_int_equal(k.elf_class, 32);
	assert_int_equal(k.entry, 0x10000c);
	assert_int_equal(k.nsegs, 1);
	assert_true(k.load_end == 0x102000);
	e->mb[2] = 0x1234;             /* bad checksum */
	assert_int_equal(mb_parse((uint8_t *)e, sizeof(*e), &k, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "checksum"));
	e->mb[1] = MB_HF_VIDEO;        /* a requirement Ember cannot meet */
	e->mb[2] = -(MB_HEADER_MAGIC + MB_HF_VIDEO);
	assert_int_equal(mb_parse((uint8_t *)e, sizeof(*e), &k, err, sizeof(err)), -EINVAL);
	e->mb[0] = 0;                  /* no header */
	assert_int_equal(mb_parse((uint8_t *)e, sizeof(*e), &k, err, sizeof(err)), -ENOENT);
	/* Truncated: the magic in the last 4 bytes. */
	uint8_t tail[8] = { 0 };
	uint32_t m = MB_HEADER_MAGIC;
	memcpy(tail + 4, &m, 4);
	assert_int_equal(mb_parse(tail, sizeof(tail), &k, err, sizeof(err)), -EINVAL);
	free(e);
}

static void test_bad_segments(void **state)
{
	struct mb_elf32 *e = make_elf32(0x100000, 0x2000);
	struct mb_kernel k;
	e->ph.p_filesz = 0x100000;     /* past the file */
	assert_int_equal(mb_parse((uint8_t *)e, sizeof(*e), &k, err, sizeof(err)), -EINVAL);
	e->ph.p_filesz = 76;
	e->eh.e_entry = 0x900000;      /* entry in no segment */
	assert_int_equal(mb_parse((uint8_t *)e, sizeof(*e), &k, err, sizeof(err)), -EINVAL);
	e->eh.e_phnum = 60000;         /* headers past the file */
	assert_int_equal(mb_parse((uint8_t *)e, sizeof(*e), &k, err, sizeof(err)), -EINVAL);
	free(e);
}

static void test_find_free(void **state)
{
	struct mb_range busy[] = { { 0, 0x2000 }, { 0x8000, 0xe000 }, { 0x100000, 0x200000 } };
	assert_true(mb_find_free(busy, 3, 0x1000, 0x400000, 0x100, 16) == 0x2000);
	assert_true(mb_find_free(busy, 3, 0x1000, 0x400000, 0x7000, 4096) == 0xe000);
	assert_true(mb_find_free(busy, 3, 0x1000, 0x400000, 0x100000, 4096) == 0x200000);
	assert_true(mb_find_free(busy, 3, 0x1000, 0x300000, 0x200000, 4096) == 0);
	assert_true(mb_find_free(busy, 3, 0x1000, UINT64_MAX, UINT64_MAX - 0x10, 16) == 0);
}

static void test_load(void **state)
{
	struct guest_mem m;
	assert_int_equal(mem_create(&m, 16 * MiB), 0);
	struct mb_elf32 *e = make_elf32(0x100000, 0x2000);
	struct mb_kernel k;
	assert_int_equal(mb_parse((uint8_t *)e, sizeof(*e), &k, err, sizeof(err)), 0);
	const char env[] = "A=1\nB=2\n";
	struct mb_boot_args a = { .cmdline = "x86/t.flat arg", .module = (const uint8_t *)env,
				  .module_size = sizeof(env) - 1, .module_name = "env" };
	/* Placed on the layout alone (no RAM: before the VM exists), written
	 * into RAM of that layout. */
	struct guest_mem layout;
	assert_int_equal(mem_layout(&layout, 16 * MiB), 0);
	struct mb_placement pl;
	assert_int_equal(mb_place(&k, &layout, &a, &pl, err, sizeof(err)), 0);
	uint32_t info_gpa;
	assert_int_equal(mb_write(&k, (uint8_t *)e, &m, &a, &pl, &info_gpa), 0);
	assert_true(info_gpa == pl.info);
	struct mb_info *info = mem_ptr(&m, info_gpa, sizeof(*info));
	assert_non_null(info);
	assert_true(info_gpa >= 0x2000 && info_gpa < 4 * MiB);
	assert_int_equal(info->flags & (MB_INFO_MEMORY | MB_INFO_CMDLINE | MB_INFO_MODS | MB_INFO_MMAP),
			 MB_INFO_MEMORY | MB_INFO_CMDLINE | MB_INFO_MODS | MB_INFO_MMAP);
	assert_int_equal(info->mem_upper, (16 * MiB - MiB) / KiB);
	assert_string_equal((char *)mem_ptr(&m, info->cmdline, 15), "x86/t.flat arg");
	struct mb_module *mod = mem_ptr(&m, info->mods_addr, sizeof(*mod));
	assert_int_equal(info->mods_count, 1);
	assert_int_equal(mod->mod_end - mod->mod_start, sizeof(env) - 1);
	assert_memory_equal(mem_ptr(&m, mod->mod_start, 8), env, 8);
	/* Nothing of the info over the kernel, page 0, 0x1000 or 0x8000-0xe000. */
	uint32_t lo = info_gpa, hi = info->mmap_addr + info->mmap_length;
	assert_true(!(lo < 0x2000) && !(lo < 0xe000 && hi > 0x8000) && !(hi > 0x100000 && lo < 0x102000));
	assert_true(mod->mod_start % 4096 == 0 && mod->mod_end <= 4 * MiB);
	assert_memory_equal(mem_ptr(&m, 0x10000c, 4), e->code, 4);
	/* RAM of another layout than placed for takes nothing. */
	struct guest_mem small;
	assert_int_equal(mem_create(&small, 2 * MiB), 0);
	struct mb_placement far = pl;
	far.info = 3 * MiB;
	assert_int_equal(mb_write(&k, (uint8_t *)e, &small, &a, &far, &info_gpa), -EFAULT);
	mem_destroy(&small);

	/* A module too big for RAM is refused. */
	a.module_size = 32 * MiB;
	a.module = (const uint8_t *)"";          /* never read: it does not fit */
	assert_int_equal(mb_place(&k, &layout, &a, &pl, err, sizeof(err)), -ENOSPC);
	assert_non_null(strstr(err, "does not fit"));
	/* A command line above 64 KiB is refused. */
	a.module = NULL;
	char *longline = malloc(70000);
	memset(longline, 'a', 69999);
	longline[69999] = 0;
	a.cmdline = longline;
	assert_int_equal(mb_place(&k, &layout, &a, &pl, err, sizeof(err)), -E2BIG);
	free(longline);
	a.cmdline = "t.flat";
	/* Segments outside RAM or over the BIOS area are refused. */
	e->ph.p_paddr = e->ph.p_vaddr = 0x2000000;
	e->eh.e_entry = 0x2000000;
	assert_int_equal(mb_parse((uint8_t *)e, sizeof(*e), &k, err, sizeof(err)), 0);
	assert_int_equal(mb_place(&k, &layout, &a, &pl, err, sizeof(err)), -ENOSPC);
	assert_non_null(strstr(err, "outside guest RAM"));
	e->ph.p_paddr = e->ph.p_vaddr = 0xf0000;
	e->eh.e_entry = 0xf0000;
	assert_int_equal(mb_parse((uint8_t *)e, sizeof(*e), &k, err, sizeof(err)), 0);
	assert_int_equal(mb_place(&k, &layout, &a, &pl, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "Ember's boot tables"));
	free(e);
	mem_destroy(&m);
}

static void test_fw_cfg(void **state)
{
	struct fw_cfg *f = fw_cfg_create(3, 256 * MiB);
	fw_cfg_ops.write(f, 0, 2, FW_CFG_SIGNATURE);
	char sig[5] = { 0 };
	for (int i = 0; i < 4; i++)
		sig[i] = (char)fw_cfg_ops.read(f, 1, 1);
	assert_string_equal(sig, "QEMU");
	fw_cfg_ops.write(f, 0, 2, FW_CFG_NB_CPUS);
	assert_int_equal(fw_cfg_ops.read(f, 1, 1) | fw_cfg_ops.read(f, 1, 1) << 8, 3);
	assert_int_equal(fw_cfg_ops.read(f, 1, 1), 0);          /* past the item */
	fw_cfg_ops.write(f, 0, 2, FW_CFG_RAM_SIZE);
	uint64_t ram = 0;
	for (int i = 0; i < 8; i++)
		ram |= fw_cfg_ops.read(f, 1, 1) << (8 * i);
	assert_true(ram == 256 * MiB);
	fw_cfg_ops.write(f, 0, 2, 0x11);                        /* unknown: 0 */
	assert_int_equal(fw_cfg_ops.read(f, 1, 1), 0);
	fw_cfg_destroy(f);
}

static int levels[PC_TESTDEV_IRQS];
static void fake_set(struct irq_line *l, int level) { levels[l->gsi] = level; }

static void test_pc_testdev(void **state)
{
	struct irq_line irqs[PC_TESTDEV_IRQS];
	for (unsigned i = 0; i < PC_TESTDEV_IRQS; i++)
		irqs[i] = (struct irq_line){ .set_level = fake_set, .gsi = i };
	struct pc_testdev *t = pc_testdev_create(irqs, NULL);
	pc_testdev_scratch_ops.write(t, 0, 4, 0x12345678);
	assert_int_equal(pc_testdev_scratch_ops.read(t, 0, 4), 0x12345678);
	assert_int_equal(pc_testdev_scratch_ops.read(t, 1, 1), 0x56);
	pc_testdev_scratch_ops.write(t, 2, 1, 0xab);
	assert_int_equal(pc_testdev_scratch_ops.read(t, 0, 4), 0x12ab5678);
	pc_testdev_scratch_ops.write(t, 3, 4, 0xffffffff);      /* clamped at the end */
	assert_int_equal(pc_testdev_scratch_ops.read(t, 0, 4), 0xffab5678);
	pc_testdev_irq_ops.write(t, 10, 1, 7);
	assert_int_equal(levels[10], 1);
	pc_testdev_irq_ops.write(t, 10, 1, 0);
	assert_int_equal(levels[10], 0);
	pc_testdev_irq_ops.write(t, 23, 4, 0x01010101);         /* only line 23 exists */
	assert_int_equal(levels[23], 1);
	pc_testdev_iomem_ops.write(t, 0x100, 8, 0x1122334455667788ULL);
	assert_true(pc_testdev_iomem_ops.read(t, 0x100, 8) == 0x1122334455667788ULL);
	pc_testdev_iomem_ops.write(t, PC_TESTDEV_IOMEM_LEN - 2, 8, ~0ULL);
	assert_int_equal(pc_testdev_iomem_ops.read(t, PC_TESTDEV_IOMEM_LEN - 2, 8), 0xffff);
	pc_testdev_flush_ops.write(t, 0, 4, 0x1000);            /* no memory: ignored */
	pc_testdev_destroy(t);
}

/* 2023-11-14 22:13:20 UTC, a Tuesday; tests move it. */
static uint64_t fake_ns = 1700000000ull * 1000000000ull;
static uint64_t fixed_now(void) { return fake_ns; }

static uint8_t cmos(struct rtc *r, uint8_t reg)
{
	rtc_ops.write(r, 0, 1, reg);
	return (uint8_t)rtc_ops.read(r, 1, 1);
}

static void test_rtc(void **state)
{
	struct rtc *r = rtc_create(fixed_now);
	assert_int_equal(cmos(r, RTC_SECONDS), 0x20);
	assert_int_equal(cmos(r, RTC_MINUTES), 0x13);
	assert_int_equal(cmos(r, RTC_HOURS), 0x22);
	assert_int_equal(cmos(r, RTC_DAY), 0x14);
	assert_int_equal(cmos(r, RTC_MONTH), 0x11);
	assert_int_equal(cmos(r, RTC_YEAR), 0x23);
	assert_int_equal(cmos(r, RTC_CENTURY), 0x20);
	assert_int_equal(cmos(r, RTC_WEEKDAY), 3);
	assert_int_equal(cmos(r, RTC_REG_D), RTC_D_VRT);
	rtc_ops.write(r, 0, 1, RTC_REG_B);                      /* binary, 12-hour */
	rtc_ops.write(r, 1, 1, RTC_B_BINARY);
	assert_int_equal(cmos(r, RTC_HOURS), 0x80 | 10);
	assert_int_equal(cmos(r, RTC_YEAR), 23);
	rtc_ops.write(r, 0, 1, RTC_YEAR);                       /* set the year */
	rtc_ops.write(r, 1, 1, 30);
	assert_int_equal(cmos(r, RTC_YEAR), 30);
	assert_int_equal(cmos(r, RTC_MONTH), 11);
	rtc_ops.write(r, 0, 1, 0x40);                           /* CMOS RAM */
	rtc_ops.write(r, 1, 1, 0x5a);
	assert_int_equal(cmos(r, 0x40), 0x5a);
	rtc_destroy(r);
}

static void rtc_set(struct rtc *r, uint8_t reg, uint8_t v)
{
	rtc_ops.write(r, 0, 1, reg);
	rtc_ops.write(r, 1, 1, v);
}

/* Update-in-progress, the alarm and update-ended flags, and when the alarm
 * next fires (what wakes a VM from S3). */
static void test_rtc_alarm(void **state)
{
	const uint64_t s = 1000000000ull, t0 = 1700000000ull * s;   /* 22:13:20 */
	fake_ns = t0;
	struct rtc *r = rtc_create(fixed_now);
	uint64_t when;
	/* UIP: in the last 244 us of a second, and once after an update
	 * that fell between two reads; never with SET. */
	assert_int_equal(cmos(r, RTC_REG_A) & RTC_A_UIP, 0);
	fake_ns = t0 + s - RTC_UIP_NS;
	assert_int_equal(cmos(r, RTC_REG_A) & RTC_A_UIP, RTC_A_UIP);
	assert_int_equal(cmos(r, RTC_REG_A), 0x26 | RTC_A_UIP);
	fake_ns = t0 + s + s / 2;
	assert_int_equal(cmos(r, RTC_REG_A) & RTC_A_UIP, RTC_A_UIP);   /* the update passed */
	assert_int_equal(cmos(r, RTC_REG_A) & RTC_A_UIP, 0);           /* once */
	rtc_set(r, RTC_REG_B, RTC_B_24H | RTC_B_SET);
	fake_ns = t0 + 3 * s - RTC_UIP_NS;
	assert_int_equal(cmos(r, RTC_REG_A) & RTC_A_UIP, 0);
	rtc_set(r, RTC_REG_B, RTC_B_24H);
	fake_ns = t0;

	/* Register C: nothing until a second passes, then UF; read clears. */
	fake_ns = t0 + s / 2;
	assert_int_equal(cmos(r, RTC_REG_C), 0);
	fake_ns = t0 + s;
	assert_int_equal(cmos(r, RTC_REG_C), RTC_C_UF);
	assert_int_equal(cmos(r, RTC_REG_C), 0);

	/* An alarm at 22:13:25 (BCD): AF once that second has come, IRQF
	 * with AIE; rtc_next_alarm needs AIE and names that second. */
	rtc_set(r, RTC_SECONDS_ALARM, 0x25);
	rtc_set(r, RTC_MINUTES_ALARM, 0x13);
	rtc_set(r, RTC_HOURS_ALARM, 0x22);
	assert_false(rtc_next_alarm(r, &when));
	rtc_set(r, RTC_REG_B, RTC_B_24H | RTC_B_AIE);
	assert_true(rtc_next_alarm(r, &when));
	assert_true(when == t0 + 5 * s);
	fake_ns = t0 + 4 * s;
	assert_int_equal(cmos(r, RTC_REG_C), RTC_C_UF);
	fake_ns = t0 + 7 * s;
	assert_int_equal(cmos(r, RTC_REG_C), RTC_C_UF | RTC_C_AF | RTC_C_IRQF);
	/* Now the next one is a day later. */
	assert_true(rtc_next_alarm(r, &when));
	assert_true(when == t0 + 5 * s + 86400 * s);
	/* "Don't care" in every byte: every second. */
	rtc_set(r, RTC_SECONDS_ALARM, RTC_ALARM_DONT_CARE);
	rtc_set(r, RTC_MINUTES_ALARM, 0xff);
	rtc_set(r, RTC_HOURS_ALARM, RTC_ALARM_DONT_CARE);
	assert_true(rtc_next_alarm(r, &when));
	assert_true(when == t0 + 8 * s);
	/* A day or more without reading C: the alarm has certainly fired. */
	rtc_set(r, RTC_SECONDS_ALARM, 0x59);
	rtc_set(r, RTC_MINUTES_ALARM, 0x59);
	rtc_set(r, RTC_HOURS_ALARM, 0x23);
	fake_ns = t0 + 3 * 86400 * s;
	assert_int_equal(cmos(r, RTC_REG_C) & RTC_C_AF, RTC_C_AF);
	/* An alarm that never matches (minute 0x61 in BCD): none within a day. */
	rtc_set(r, RTC_MINUTES_ALARM, 0x61);
	assert_false(rtc_next_alarm(r, &when));
	rtc_destroy(r);
	fake_ns = 1700000000ull * s;
}

static void test_verdicts(void **state)
{
	char why[200];
	assert_int_equal(test_classify(W_EXITCODE(1, 0), false, 5, why, sizeof(why)), TEST_PASS);
	assert_int_equal(test_classify(W_EXITCODE(3, 0), false, 5, why, sizeof(why)), TEST_FAIL);
	assert_int_equal(test_classify(W_EXITCODE(77, 0), false, 5, why, sizeof(why)), TEST_SKIP);
	assert_int_equal(test_classify(W_EXITCODE(0, 0), false, 5, why, sizeof(why)), TEST_FAIL);
	assert_int_equal(test_classify(W_EXITCODE(4, 0), false, 5, why, sizeof(why)), TEST_FAIL);
	assert_non_null(strstr(why, "crashed"));
	assert_int_equal(test_classify(W_EXITCODE(161, 0), false, 5, why, sizeof(why)), TEST_FAIL);
	assert_non_null(strstr(why, "bad debug-exit code 80"));
	assert_int_equal(test_classify(W_EXITCODE(1, 0), true, 5, why, sizeof(why)), TEST_FAIL);
	assert_non_null(strstr(why, "timeout"));
	assert_int_equal(test_classify(9, false, 5, why, sizeof(why)), TEST_FAIL);   /* SIGKILL */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header),
		cmocka_unit_test(test_bad_segments),
		cmocka_unit_test(test_find_free),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_fw_cfg),
		cmocka_unit_test(test_pc_testdev),
		cmocka_unit_test(test_rtc),
		cmocka_unit_test(test_rtc_alarm),
		cmocka_unit_test(test_verdicts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
