/* QEMU's pc-testdev, the ISA test device kvm-unit-tests drives (--pc-testdev):
 *   port 0xe0-0xe3  a 32-bit scratch register, any access width
 *   port 0xe4       write a guest-physical address: drop and re-fault that
 *                   page's mapping (tests KVM's MMU notifier path)
 *   port 0xe8-0xeb  the same scratch register, seen bytewise
 *   port 0x2000+n   (n < 24) a byte write sets ISA interrupt line n to !!value
 *   MMIO 0xff000000 64 KiB of scratch memory
 * It knows neither KVM nor the guest's RAM layout: lines and the page flush
 * come in as an irq_line array and a guest_mem. */
#ifndef EMBER_DEVICES_PC_TESTDEV_H
#define EMBER_DEVICES_PC_TESTDEV_H

#include <stdint.h>

#include "bus.h"
#include "irq.h"
#include "mem.h"

#define PC_TESTDEV_PORT_IOPORT  0xe0
#define PC_TESTDEV_PORT_FLUSH   0xe4
#define PC_TESTDEV_PORT_BYTE    0xe8
#define PC_TESTDEV_PORT_IRQ     0x2000
#define PC_TESTDEV_IRQS         24
#define PC_TESTDEV_IOMEM        0xff000000ULL
#define PC_TESTDEV_IOMEM_LEN    0x10000

struct pc_testdev;

/* irqs: PC_TESTDEV_IRQS lines (entries may have no set_level); mem may be
 * NULL (flushes are then ignored). NULL on ENOMEM. */
struct pc_testdev *pc_testdev_create(struct irq_line *irqs, const struct guest_mem *mem);
void pc_testdev_destroy(struct pc_testdev *t);

/* Each at its port/address above, opaque = the pc_testdev:
 * scratch (len 4, also used at 0xe8), flush (len 4), irq (len 24), iomem. */
extern const struct bus_ops pc_testdev_scratch_ops;
extern const struct bus_ops pc_testdev_flush_ops;
extern const struct bus_ops pc_testdev_irq_ops;
extern const struct bus_ops pc_testdev_iomem_ops;

/* Register every range on the two buses: 0 or -errno. */
int pc_testdev_register(struct pc_testdev *t, struct bus *pio, struct bus *mmio);

#endif
