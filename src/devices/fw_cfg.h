/* QEMU's firmware configuration device, legacy port interface only: a
 * 16-bit selector written to 0x510 picks an item, its bytes are read one at
 * a time from 0x511. kvm-unit-tests reads the vCPU count (its BSP waits for
 * exactly that many APs) and the RAM size from it. (--fw-cfg) */
#ifndef EMBER_DEVICES_FW_CFG_H
#define EMBER_DEVICES_FW_CFG_H

#include <stdint.h>

#include "bus.h"

#define FW_CFG_PORT_SEL   0x510
#define FW_CFG_PORT_LEN   2           /* selector (0x510), data (0x511) */

/* Item keys (QEMU docs/specs/fw_cfg.rst, include/standard-headers/linux/qemu_fw_cfg.h). */
#define FW_CFG_SIGNATURE  0x00        /* "QEMU" */
#define FW_CFG_ID         0x01        /* u32: bit 0 = traditional interface */
#define FW_CFG_RAM_SIZE   0x03        /* u64 */
#define FW_CFG_NB_CPUS    0x05        /* u16: vCPUs present at boot */
#define FW_CFG_MAX_CPUS   0x0f        /* u16 */
#define FW_CFG_FILE_DIR   0x19        /* u32 big-endian count, then entries: none */

struct fw_cfg;

struct fw_cfg *fw_cfg_create(unsigned ncpus, uint64_t ram_size);
void fw_cfg_destroy(struct fw_cfg *f);
/* Register at FW_CFG_PORT_SEL, FW_CFG_PORT_LEN ports, opaque = the fw_cfg. */
extern const struct bus_ops fw_cfg_ops;

#endif
