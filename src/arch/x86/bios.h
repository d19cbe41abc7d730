/* What a PC BIOS leaves behind when it hands a machine to a kernel, for
 * --bios-state (part of --test-devices): kvm-unit-tests runs under SeaBIOS
 * on QEMU's pc machine, and its real-mode code may take interrupts. Ember
 * runs no BIOS; it writes the result instead. In low memory: the real-mode
 * IVT with every vector at a handler in the F segment (IRET; the hardware
 * IRQs also send the 8259s an EOI; the timer also counts ticks in the BDA)
 * and the BIOS data area (COM1, base memory, EBDA segment). In the chipset,
 * as SeaBIOS programs them: the 8259s at vectors 0x08 and 0x70, all masked
 * but IRQ 0 and the cascade; PIT channel 0 in mode 2, count 65536
 * (18.2 Hz). The parts that fill memory and state structs are pure (unit
 * tests); bios_program_chipset() is the KVM side. */
#ifndef EMBER_X86_BIOS_H
#define EMBER_X86_BIOS_H

#include <linux/kvm.h>

#include "mem.h"

#define BIOS_PIC_MASTER_BASE  0x08
#define BIOS_PIC_SLAVE_BASE   0x70
#define BIOS_PIC_MASTER_IMR   0xfa      /* IRQ 0 (timer) and 2 (cascade) open */
#define BIOS_PIC_SLAVE_IMR    0xff
#define BIOS_BDA_COM1         0x400     /* u16: COM1's port */
#define BIOS_BDA_EQUIPMENT    0x410     /* u16: bits 9-11 serial ports */
#define BIOS_BDA_BASE_MEM_KB  0x413     /* u16: KiB below the EBDA */
#define BIOS_BDA_EBDA_SEG     0x40e     /* u16 */
#define BIOS_BDA_TICKS        0x46c     /* u32: timer ticks since midnight */

/* The IVT, the BDA, the EBDA's size byte and the handlers. 0 or -errno
 * (guest RAM too small for the first MiB). */
int bios_write_low_memory(const struct guest_mem *m);

/* The 8259 states a BIOS leaves (edge-triggered, ICW4, fully initialised). */
void bios_pic_state(struct kvm_pic_state *master, struct kvm_pic_state *slave);
/* PIT channel 0 as a BIOS leaves it (KVM_SET_PIT2 restarts it from now). */
void bios_pit_channel0(struct kvm_pit_channel_state *c);

/* Loads both into the in-kernel PIC and PIT. 0 or -errno. */
int bios_program_chipset(int vm_fd);

#endif
