#include "devices/serial.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Register offsets and bits (PC16550D datasheet). */
enum { RBR_THR = 0, IER = 1, IIR_FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };
#define IER_RDI   0x01
#define IER_THRI  0x02
#define IIR_NONE  0x01
#define IIR_THRI  0x02
#define IIR_RDI   0x04
#define IIR_FIFO  0xc0
#define LCR_DLAB  0x80
#define LSR_DR    0x01
#define LSR_THRE  0x20
#define LSR_TEMT  0x40
#define MCR_LOOP  0x10
#define FIFO_SIZE 64

struct serial {
	pthread_mutex_t lock;
	int out_fd;
	struct irq_line *irq;
	uint8_t ier, lcr, mcr, scr, fcr, dll, dlm;
	bool thr_irq_pending;        /* THRE interrupt not yet acknowledged */
	uint8_t fifo[FIFO_SIZE];
	unsigned head, count;
	uint64_t tx_bytes;
};

struct serial *serial_create(int out_fd, struct irq_line *irq)
{
	struct serial *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	pthread_mutex_init(&s->lock, NULL);
	s->out_fd = out_fd;
	s->irq = irq;
	s->dll = 12;   /* 9600 baud, as firmware leaves it */
	s->mcr = 0x08; /* OUT2 */
	return s;
}

void serial_destroy(struct serial *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static uint8_t iir(const struct serial *s)
{
	uint8_t fifo = (s->fcr & 1) ? IIR_FIFO : 0;
	if ((s->ier & IER_RDI) && s->count)
		return IIR_RDI | fifo;
	if ((s->ier & IER_THRI) && s->thr_irq_pending)
		return IIR_THRI | fifo;
	return IIR_NONE | fifo;
}

static void update_irq(struct serial *s)
{
	irq_set(s->irq, !(iir(s) & IIR_NONE));
}

static void transmit(struct serial *s, uint8_t c)
{
	s->tx_bytes++;
	if (s->mcr & MCR_LOOP) {
		if (s->count < FIFO_SIZE)
			s->fifo[(s->head + s->count++) % FIFO_SIZE] = c;
		return;
	}
	if (s->out_fd >= 0 && write(s->out_fd, &c, 1) < 0) {
		/* The console went away: the guest's output is dropped. */
	}
}

static uint64_t serial_read(void *opaque, uint64_t off, unsigned size)
{
	struct serial *s = opaque;
	uint8_t v = 0;
	pthread_mutex_lock(&s->lock);
	switch (off) {
	case RBR_THR:
		if (s->lcr & LCR_DLAB) {
			v = s->dll;
		} else if (s->count) {
			v = s->fifo[s->head];
			s->head = (s->head + 1) % FIFO_SIZE;
			s->count--;
		}
		break;
	case IER:
		v = (s->lcr & LCR_DLAB) ? s->dlm : s->ier;
		break;
	case IIR_FCR:
		v = iir(s);
		if ((v & 0x0f) == IIR_THRI)
			s->thr_irq_pending = false;   /* reading IIR acknowledges THRE */
		break;
	case LCR: v = s->lcr; break;
	case MCR: v = s->mcr; break;
	case LSR: v = LSR_THRE | LSR_TEMT | (s->count ? LSR_DR : 0); break;
	case MSR:
		/* Loopback routes MCR outputs to the status inputs; otherwise
		 * report carrier, DSR and CTS so drivers transmit. */
		v = (s->mcr & MCR_LOOP) ? (uint8_t)((s->mcr & 0x0f) << 4) : 0xb0;
		break;
	case SCR: v = s->scr; break;
	default: break;
	}
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
	(void)size;
	return v;
}

static void serial_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct serial *s = opaque;
	uint8_t v = (uint8_t)value;
	(void)size;
	pthread_mutex_lock(&s->lock);
	switch (off) {
	case RBR_THR:
		if (s->lcr & LCR_DLAB) {
			s->dll = v;
		} else {
			transmit(s, v);
			s->thr_irq_pending = true;   /* sent at once: THR is empty again */
		}
		break;
	case IER:
		if (s->lcr & LCR_DLAB) {
			s->dlm = v;
		} else {
			/* Enabling THRE interrupts with an empty THR raises one. */
			if ((v & IER_THRI) && !(s->ier & IER_THRI))
				s->thr_irq_pending = true;
			s->ier = v & 0x0f;
		}
		break;
	case IIR_FCR:
		s->fcr = v & 0xc9;
		if (v & 0x02)
			s->head = s->count = 0;   /* clear receive FIFO */
		break;
	case LCR: s->lcr = v; break;
	case MCR: s->mcr = v & 0x1f; break;
	case SCR: s->scr = v; break;
	default: break;
	}
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

const struct bus_ops serial_ops = { .read = serial_read, .write = serial_write };

size_t serial_input(struct serial *s, const uint8_t *buf, size_t len)
{
	size_t n = 0;
	pthread_mutex_lock(&s->lock);
	while (n < len && s->count < FIFO_SIZE) {
		s->fifo[(s->head + s->count++) % FIFO_SIZE] = buf[n++];
	}
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return n;
}

uint64_t serial_tx_bytes(struct serial *s)
{
	pthread_mutex_lock(&s->lock);
	uint64_t n = s->tx_bytes;
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* ---- state ("serial" v1) ---- */

enum { T_REGS = 1, T_THR_PENDING, T_FIFO };

static int serial_save(void *opaque, struct state_writer *w)
{
	struct serial *s = opaque;
	pthread_mutex_lock(&s->lock);
	uint8_t regs[7] = { s->ier, s->lcr, s->mcr, s->scr, s->fcr, s->dll, s->dlm };
	uint8_t fifo[FIFO_SIZE];
	for (unsigned i = 0; i < s->count; i++)
		fifo[i] = s->fifo[(s->head + i) % FIFO_SIZE];
	state_put_blob(w, T_REGS, regs, sizeof(regs));
	state_put_u8(w, T_THR_PENDING, s->thr_irq_pending);
	state_put_blob(w, T_FIFO, fifo, s->count);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static int serial_load(void *opaque, struct state_reader *r)
{
	struct serial *s = opaque;
	uint8_t regs[7], thr;
	const void *fifo;
	size_t n;
	int e;
	if ((e = state_get_blob(r, T_REGS, regs, sizeof(regs))) || (e = state_get_u8(r, T_THR_PENDING, &thr)) ||
	    (e = state_get_blob_ref(r, T_FIFO, &fifo, &n)))
		return e;
	if (n > FIFO_SIZE)
		return state_fail(r, "receive FIFO of %zu bytes", n);
	pthread_mutex_lock(&s->lock);
	s->ier = regs[0] & 0x0f;
	s->lcr = regs[1];
	s->mcr = regs[2] & 0x1f;
	s->scr = regs[3];
	s->fcr = regs[4] & 0xc9;
	s->dll = regs[5];
	s->dlm = regs[6];
	s->thr_irq_pending = thr != 0;
	memcpy(s->fifo, fifo, n);
	s->head = 0;
	s->count = (unsigned)n;
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

const struct devstate_ops serial_state_ops = { .name = "serial", .version = 1,
						 .save = serial_save, .load = serial_load };
