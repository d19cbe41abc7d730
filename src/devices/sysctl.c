#include "devices/sysctl.h"

#include "arch/x86/layout.h"
#include "vm.h"

#define I8042_CMD_RESET 0xfe

/* A keyboard controller with no keyboard: status reads 0 (no data, input
 * buffer empty) so drivers write commands; only the reset pulse matters. */
static uint64_t i8042_read(void *opaque, uint64_t off, unsigned size)
{
	return 0;
}

static void i8042_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct vm *vm = opaque;
	if (off == PORT_I8042_CMD - PORT_I8042_DATA && (value & 0xff) == I8042_CMD_RESET)
		vm_stop(vm, STOP_RESET, EXIT_GUEST_OFF);
}

const struct bus_ops i8042_ops = { .read = i8042_read, .write = i8042_write };

/* QEMU's isa-debug-exit: exit status (value << 1) | 1, as kvm-unit-tests
 * expects. */
static void debug_exit_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct vm *vm = opaque;
	vm_stop(vm, STOP_DEBUG_EXIT, (int)(((value << 1) | 1) & 0xff));
}

const struct bus_ops debug_exit_ops = { .read = i8042_read, .write = debug_exit_write };
