/* QEMU's fw_cfg through its I/O ports (0x510 selector, 0x511 data), as
 * Ember's --fw-cfg and QEMU offer it: the signature, then little-endian
 * items read a byte at a time. */
#include "kit_internal.h"

#define FW_CFG_PORT_SEL  0x510
#define FW_CFG_PORT_DATA 0x511

static uint64_t read_item(uint16_t key, int bytes)
{
	uint64_t v = 0;
	outw(FW_CFG_PORT_SEL, key);
	for (int i = 0; i < bytes; i++)
		v |= (uint64_t)inb(FW_CFG_PORT_DATA) << (8 * i);
	return v;
}

bool fw_cfg_present(void) { return read_item(FW_CFG_SIGNATURE, 4) == 0x554d4551; /* "QEMU" */ }
uint16_t fw_cfg_read16(uint16_t key) { return (uint16_t)read_item(key, 2); }
uint32_t fw_cfg_read32(uint16_t key) { return (uint32_t)read_item(key, 4); }
uint64_t fw_cfg_read64(uint16_t key) { return read_item(key, 8); }
