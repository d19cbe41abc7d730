/* What a PC BIOS leaves behind: see bios.h. */
#include "arch/x86/bios.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "arch/x86/layout.h"

/* Real-mode handlers, at LAYOUT_BIOS_STUBS (segment 0xf000). */
enum { STUB_IRET = 0x00, STUB_IRQ_MASTER = 0x10, STUB_IRQ_SLAVE = 0x20, STUB_TIMER = 0x30 };

static const uint8_t stub_iret[] = { 0xcf };                       /* iret */
static const uint8_t stub_irq_master[] = {
	0x50,                   /* push %ax */
	0xb0, 0x20,             /* mov $0x20, %al: non-specific EOI */
	0xe6, 0x20,             /* out %al, $0x20 */
	0x58,                   /* pop %ax */
	0xcf,                   /* iret */
};
static const uint8_t stub_irq_slave[] = {
	0x50, 0xb0, 0x20,
	0xe6, 0xa0,             /* out %al, $0xa0: the slave first */
	0xe6, 0x20,
	0x58, 0xcf,
};
static const uint8_t stub_timer[] = {
	0x50,                   /* push %ax */
	0x1e,                   /* push %ds */
	0x31, 0xc0,             /* xor %ax, %ax */
	0x8e, 0xd8,             /* mov %ax, %ds */
	0x66, 0xff, 0x06, 0x6c, 0x04,   /* incl 0x46c: the BDA tick count */
	0xb0, 0x20, 0xe6, 0x20, /* EOI */
	0x1f,                   /* pop %ds */
	0x58,                   /* pop %ax */
	0xcf,                   /* iret */
};

static uint32_t far_ptr(unsigned stub)
{
	uint32_t off = (uint32_t)(LAYOUT_BIOS_STUBS - 0xf0000) + stub;
	return 0xf000u << 16 | off;
}

int bios_write_low_memory(const struct guest_mem *m)
{
	uint8_t stubs[LAYOUT_BIOS_STUBS_SIZE] = { 0 };
	memcpy(stubs + STUB_IRET, stub_iret, sizeof(stub_iret));
	memcpy(stubs + STUB_IRQ_MASTER, stub_irq_master, sizeof(stub_irq_master));
	memcpy(stubs + STUB_IRQ_SLAVE, stub_irq_slave, sizeof(stub_irq_slave));
	memcpy(stubs + STUB_TIMER, stub_timer, sizeof(stub_timer));
	_Static_assert(STUB_TIMER + sizeof(stub_timer) <= LAYOUT_BIOS_STUBS_SIZE, "stubs fit");

	uint32_t ivt[256];
	for (unsigned v = 0; v < 256; v++) {
		unsigned stub = STUB_IRET;
		if (v == BIOS_PIC_MASTER_BASE)
			stub = STUB_TIMER;
		else if (v > BIOS_PIC_MASTER_BASE && v < BIOS_PIC_MASTER_BASE + 8)
			stub = STUB_IRQ_MASTER;
		else if (v >= BIOS_PIC_SLAVE_BASE && v < BIOS_PIC_SLAVE_BASE + 8)
			stub = STUB_IRQ_SLAVE;
		ivt[v] = far_ptr(stub);
	}

	uint8_t bda[256] = { 0 };
	uint16_t com1 = PORT_SERIAL_COM1, equipment = 1 << 9;   /* one serial port */
	uint16_t base_kb = (uint16_t)(LAYOUT_EBDA_START / KiB), ebda_seg = (uint16_t)(LAYOUT_EBDA_START >> 4);
	memcpy(bda + BIOS_BDA_COM1 - 0x400, &com1, 2);
	memcpy(bda + BIOS_BDA_EQUIPMENT - 0x400, &equipment, 2);
	memcpy(bda + BIOS_BDA_BASE_MEM_KB - 0x400, &base_kb, 2);
	memcpy(bda + BIOS_BDA_EBDA_SEG - 0x400, &ebda_seg, 2);
	uint8_t ebda_kb = (uint8_t)((0xa0000 - LAYOUT_EBDA_START) / KiB);   /* up to the VGA window */

	int r;
	if ((r = mem_write(m, 0, ivt, sizeof(ivt))) || (r = mem_write(m, 0x400, bda, sizeof(bda))) ||
	    (r = mem_write(m, LAYOUT_EBDA_START, &ebda_kb, 1)) ||
	    (r = mem_write(m, LAYOUT_BIOS_STUBS, stubs, sizeof(stubs))))
		return r;
	return 0;
}

void bios_pic_state(struct kvm_pic_state *master, struct kvm_pic_state *slave)
{
	/* After ICW1 (edge, cascade, ICW4), ICW2 (base), ICW3, ICW4 (8086). */
	*master = (struct kvm_pic_state){ .irq_base = BIOS_PIC_MASTER_BASE, .imr = BIOS_PIC_MASTER_IMR,
					  .init4 = 1, .elcr_mask = 0xf8 };
	*slave = (struct kvm_pic_state){ .irq_base = BIOS_PIC_SLAVE_BASE, .imr = BIOS_PIC_SLAVE_IMR,
					 .init4 = 1, .elcr_mask = 0xde };
}

void bios_pit_channel0(struct kvm_pit_channel_state *c)
{
	/* Control word 0x34: channel 0, lobyte/hibyte, mode 2, binary; count 0
	 * (65536): 1193182 / 65536 = 18.2 Hz. */
	*c = (struct kvm_pit_channel_state){ .count = 0x10000, .rw_mode = 3, .read_state = 3,
					     .write_state = 3, .mode = 2, .gate = 1 };
}

int bios_program_chipset(int vm_fd)
{
	struct kvm_irqchip master = { .chip_id = KVM_IRQCHIP_PIC_MASTER };
	struct kvm_irqchip slave = { .chip_id = KVM_IRQCHIP_PIC_SLAVE };
	struct kvm_pit_state2 pit;
	if (ioctl(vm_fd, KVM_GET_PIT2, &pit) < 0)
		return -errno;
	bios_pic_state(&master.chip.pic, &slave.chip.pic);
	bios_pit_channel0(&pit.channels[0]);
	if (ioctl(vm_fd, KVM_SET_IRQCHIP, &master) < 0 || ioctl(vm_fd, KVM_SET_IRQCHIP, &slave) < 0 ||
	    ioctl(vm_fd, KVM_SET_PIT2, &pit) < 0)
		return -errno;
	return 0;
}
