/* A 16550A UART (COM1): transmit goes straight to an output fd, receive
 * comes from serial_input(). Interrupts through an irq_line. */
#ifndef EMBER_SERIAL_H
#define EMBER_SERIAL_H

#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "irq.h"
#include "migration/devstate.h"

struct serial;

struct serial *serial_create(int out_fd, struct irq_line *irq);
void serial_destroy(struct serial *s);
#define SERIAL_PORTS 8
extern const struct bus_ops serial_ops;   /* SERIAL_PORTS ports, opaque = the serial */

/* Queue bytes typed by the user; returns how many fit in the FIFO. */
size_t serial_input(struct serial *s, const uint8_t *buf, size_t len);
uint64_t serial_tx_bytes(struct serial *s);

/* Save/load of the UART registers and receive FIFO (opaque = the serial). */
extern const struct devstate_ops serial_state_ops;

#endif
