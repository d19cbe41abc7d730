/* Small platform devices that end or reset the VM: the i8042 reset line
 * (port 0x64, command 0xfe) and isa-debug-exit (port 0xf4, --debug-exit). */
#ifndef EMBER_SYSCTL_H
#define EMBER_SYSCTL_H

#include "bus.h"

struct vm;

extern const struct bus_ops i8042_ops;        /* ports 0x60 and 0x64, opaque = vm */
extern const struct bus_ops debug_exit_ops;   /* port 0xf4, 4 bytes, opaque = vm */

#endif
