/* libFuzzer target: the port and MMIO devices as a guest reaches them,
 * through the buses: the serial port (and input typed at the console), the
 * ACPI PM block (and the power button), fw_cfg, the RTC and pc-testdev (its
 * page flush works on guest RAM with guard pages). The input is a stream of
 * 8-byte accesses: device, read or write, offset (also past the device's
 * range), size, value. Nothing may crash, hang or touch memory outside the
 * guest; interrupt lines only ever go to 0 or 1. */
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arch/x86/layout.h"
#include "bus.h"
#include "devices/acpi_pm.h"
#include "devices/fw_cfg.h"
#include "devices/pc_testdev.h"
#include "devices/rtc.h"
#include "devices/serial.h"
#include "irq.h"
#include "mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, "check failed: %s\n", #cond); abort(); } } while (0)

static void fake_set_level(struct irq_line *line, int level)
{
	CHECK(level == 0 || level == 1);
}

static bool on_sleep(void *opaque, unsigned slp_typ)
{
	CHECK(slp_typ < 8);
	return false;   /* stays in S0 */
}

static uint64_t fixed_now(void)
{
	return 1700000000ULL * 1000000000ULL;
}

struct target {
	struct bus *bus;
	uint64_t base, len;
};

static struct {
	struct guest_mem mem;
	struct bus pio, mmio;
	struct irq_line irqs[24];
	struct serial *serial;
	struct acpi_pm *pm;
	struct fw_cfg *fw_cfg;
	struct rtc *rtc;
	struct pc_testdev *testdev;
	struct target targets[10];
	unsigned ntargets;
} w;

static void add(struct bus *b, uint64_t base, uint64_t len)
{
	w.targets[w.ntargets++] = (struct target){ b, base, len };
}

static void setup(void)
{
	if (mem_create(&w.mem, 8 * MiB))
		abort();
	bus_init(&w.pio, "pio");
	bus_init(&w.mmio, "mmio");
	for (unsigned i = 0; i < 24; i++)
		w.irqs[i] = (struct irq_line){ .set_level = fake_set_level, .gsi = i };
	int out = open("/dev/null", O_WRONLY | O_CLOEXEC);
	w.serial = serial_create(out, &w.irqs[IRQ_SERIAL_COM1]);
	w.pm = acpi_pm_create(&w.irqs[IRQ_ACPI_SCI], on_sleep, NULL);
	w.fw_cfg = fw_cfg_create(2, 8 * MiB);
	w.rtc = rtc_create(fixed_now);
	w.testdev = pc_testdev_create(w.irqs, &w.mem);
	if (out < 0 || !w.serial || !w.pm || !w.fw_cfg || !w.rtc || !w.testdev ||
	    bus_register(&w.pio, PORT_SERIAL_COM1, 8, &serial_ops, w.serial, "serial") ||
	    bus_register(&w.pio, PORT_ACPI_PM1A_EVT, ACPI_PM_LEN, &acpi_pm_ops, w.pm, "acpi-pm") ||
	    bus_register(&w.pio, FW_CFG_PORT_SEL, FW_CFG_PORT_LEN, &fw_cfg_ops, w.fw_cfg, "fw_cfg") ||
	    bus_register(&w.pio, RTC_PORT, RTC_PORT_LEN, &rtc_ops, w.rtc, "rtc") ||
	    pc_testdev_register(w.testdev, &w.pio, &w.mmio))
		abort();
	add(&w.pio, PORT_SERIAL_COM1, 8);
	add(&w.pio, PORT_ACPI_PM1A_EVT, ACPI_PM_LEN);
	add(&w.pio, FW_CFG_PORT_SEL, FW_CFG_PORT_LEN);
	add(&w.pio, RTC_PORT, RTC_PORT_LEN);
	add(&w.pio, PC_TESTDEV_PORT_IOPORT, 4);
	add(&w.pio, PC_TESTDEV_PORT_FLUSH, 4);
	add(&w.pio, PC_TESTDEV_PORT_BYTE, 4);
	add(&w.pio, PC_TESTDEV_PORT_IRQ, PC_TESTDEV_IRQS);
	add(&w.mmio, PC_TESTDEV_IOMEM, PC_TESTDEV_IOMEM_LEN);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!w.ntargets)
		setup();
	static const unsigned sizes[] = { 1, 2, 4, 8 };
	for (size_t i = 0; i + 8 <= size; i += 8) {
		const uint8_t *op = data + i;
		uint32_t value;
		memcpy(&value, op + 4, 4);
		unsigned which = op[0] & 0x0f;
		if (which >= w.ntargets) {
			/* the console and the control thread */
			if (which & 1)
				serial_input(w.serial, op + 4, op[1] % 5);
			else
				acpi_pm_press_power_button(w.pm);
			continue;
		}
		const struct target *t = &w.targets[which];
		/* Mostly inside the range, sometimes just past either end. */
		uint64_t off = (uint64_t)(op[1] | op[2] << 8) % (t->len + 8);
		uint64_t addr = t->base + off - (op[0] & 0x40 ? 4 : 0);
		unsigned sz = sizes[op[3] & 3];
		if (op[0] & 0x80) {
			uint64_t v = value | (uint64_t)value << 32;
			if (t == &w.targets[5])          /* the flush port takes a guest address */
				v = (op[3] & 0x10) ? (uint64_t)value : (uint64_t)value % (16 * MiB);
			bus_write(t->bus, addr, sz, v);
		} else {
			uint64_t v;
			bus_read(t->bus, addr, sz, &v);
		}
	}
	return 0;
}
