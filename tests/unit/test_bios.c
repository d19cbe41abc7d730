/* --bios-state: the real-mode IVT, the BIOS data area and handlers in low
 * memory, and the 8259/PIT states Ember loads. No /dev/kvm needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "arch/x86/acpi.h"
#include "arch/x86/bios.h"
#include "arch/x86/layout.h"
#include "mem.h"

static uint32_t rd32(const struct guest_mem *m, uint64_t gpa)
{
	uint32_t v = 0;
	assert_int_equal(mem_read(m, &v, gpa, 4), 0);
	return v;
}

static uint16_t rd16(const struct guest_mem *m, uint64_t gpa)
{
	uint16_t v = 0;
	assert_int_equal(mem_read(m, &v, gpa, 2), 0);
	return v;
}

/* The handler a real-mode vector points at, as a guest-physical address. */
static uint64_t handler(const struct guest_mem *m, unsigned vector)
{
	uint32_t fp = rd32(m, vector * 4);
	return ((uint64_t)(fp >> 16) << 4) + (fp & 0xffff);
}

static void test_low_memory(void **state)
{
	struct guest_mem m;
	assert_int_equal(mem_create(&m, 16 * MiB), 0);
	assert_int_equal(bios_write_low_memory(&m), 0);

	/* Every vector points into the handler block in the F segment. */
	for (unsigned v = 0; v < 256; v++) {
		assert_int_equal(rd32(&m, v * 4) >> 16, 0xf000);
		uint64_t h = handler(&m, v);
		assert_true(h >= LAYOUT_BIOS_STUBS && h < LAYOUT_BIOS_STUBS + LAYOUT_BIOS_STUBS_SIZE);
	}
	/* Software vectors: a bare IRET. */
	uint8_t b[32];
	assert_int_equal(mem_read(&m, b, handler(&m, 0x11), 1), 0);
	assert_int_equal(b[0], 0xcf);
	assert_int_equal(mem_read(&m, b, handler(&m, 0x00), 1), 0);
	assert_int_equal(b[0], 0xcf);
	/* IRQ 0 (vector 8): counts ticks at 0x46c, EOIs the master, IRETs. */
	static const uint8_t incl_ticks[] = { 0x66, 0xff, 0x06, 0x6c, 0x04 };
	static const uint8_t eoi_master[] = { 0xb0, 0x20, 0xe6, 0x20 };
	assert_int_equal(mem_read(&m, b, handler(&m, 8), sizeof(b)), 0);
	assert_non_null(memmem(b, sizeof(b), incl_ticks, sizeof(incl_ticks)));
	assert_non_null(memmem(b, sizeof(b), eoi_master, sizeof(eoi_master)));
	assert_non_null(memchr(b, 0xcf, sizeof(b)));
	/* IRQ 1-7 EOI the master; IRQ 8-15 (0x70-0x77) the slave then the master. */
	for (unsigned v = 9; v < 16; v++)
		assert_int_equal(handler(&m, v), handler(&m, 9));
	assert_int_equal(mem_read(&m, b, handler(&m, 9), 8), 0);
	assert_non_null(memmem(b, 8, eoi_master, sizeof(eoi_master)));
	static const uint8_t eoi_slave[] = { 0xe6, 0xa0, 0xe6, 0x20 };
	for (unsigned v = 0x70; v < 0x78; v++)
		assert_int_equal(handler(&m, v), handler(&m, 0x70));
	assert_int_equal(mem_read(&m, b, handler(&m, 0x70), 10), 0);
	assert_non_null(memmem(b, 10, eoi_slave, sizeof(eoi_slave)));
	assert_true(handler(&m, 0x70) != handler(&m, 9) && handler(&m, 9) != handler(&m, 8));

	/* The BIOS data area and the EBDA. */
	assert_int_equal(rd16(&m, BIOS_BDA_COM1), 0x3f8);
	assert_int_equal(rd16(&m, BIOS_BDA_EQUIPMENT) >> 9 & 7, 1);
	assert_int_equal(rd16(&m, BIOS_BDA_BASE_MEM_KB), 639);
	assert_int_equal(rd16(&m, BIOS_BDA_EBDA_SEG), 0x9fc0);
	assert_int_equal(rd32(&m, BIOS_BDA_TICKS), 0);
	uint8_t ebda_kb;
	assert_int_equal(mem_read(&m, &ebda_kb, LAYOUT_EBDA_START, 1), 0);
	assert_int_equal(ebda_kb, 1);

	/* ACPI tables written afterwards stay below the handlers. */
	uint8_t before[LAYOUT_BIOS_STUBS_SIZE], after[LAYOUT_BIOS_STUBS_SIZE];
	assert_int_equal(mem_read(&m, before, LAYOUT_BIOS_STUBS, sizeof(before)), 0);
	struct acpi_config cfg = { .ncpus = 255, .pci_ecam = true };
	uint64_t rsdp;
	assert_int_equal(acpi_build(&m, &cfg, &rsdp), 0);
	assert_int_equal(mem_read(&m, after, LAYOUT_BIOS_STUBS, sizeof(after)), 0);
	assert_memory_equal(before, after, sizeof(before));
	mem_destroy(&m);
}

static void test_chipset(void **state)
{
	struct kvm_pic_state ma, sl;
	bios_pic_state(&ma, &sl);
	assert_int_equal(ma.irq_base, 0x08);
	assert_int_equal(sl.irq_base, 0x70);
	assert_int_equal(ma.imr, 0xfa);          /* IRQ 0 and the cascade open */
	assert_int_equal(sl.imr, 0xff);
	assert_int_equal(ma.init_state, 0);      /* initialisation finished */
	assert_int_equal(ma.init4 && sl.init4, 1);
	assert_int_equal(ma.isr | ma.irr | sl.isr | sl.irr, 0);

	struct kvm_pit_channel_state c;
	bios_pit_channel0(&c);
	assert_int_equal(c.count, 0x10000);      /* 18.2 Hz */
	assert_int_equal(c.mode, 2);
	assert_int_equal(c.rw_mode, 3);          /* lobyte/hibyte */
	assert_int_equal(c.gate, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_low_memory),
		cmocka_unit_test(test_chipset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
