#include "console.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <termios.h>
#include <unistd.h>

#include "devices/serial.h"
#include "log.h"
#include "vm.h"

#define ESCAPE_KEY 0x01   /* Ctrl-A */

static struct termios saved_tio;
static bool tio_saved;
static bool escape_pending;

static void restore_terminal(void)
{
	if (tio_saved)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
	tio_saved = false;
}

static void on_stdin(void *opaque, uint32_t events)
{
	struct vm *vm = opaque;
	uint8_t buf[64], out[64];
	ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
	if (n <= 0) {
		/* EOF or error: stop reading, the guest keeps running. */
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			loop_remove(&vm->loop, STDIN_FILENO);
		return;
	}
	size_t m = 0;
	for (ssize_t i = 0; i < n; i++) {
		uint8_t c = buf[i];
		if (escape_pending) {
			escape_pending = false;
			if (c == 'x' || c == 'X') {
				restore_terminal();
				fprintf(stderr, "\nember: quit (Ctrl-A x)\n");
				vm_stop(vm, STOP_QUIT, EXIT_GUEST_OFF);
				return;
			}
			if (c != ESCAPE_KEY)
				continue;
		} else if (c == ESCAPE_KEY && tio_saved) {
			escape_pending = true;
			continue;
		}
		out[m++] = c;
	}
	/* A full receive FIFO drops input, as a real UART overruns. */
	serial_input(vm->serial, out, m);
}

int console_attach(struct vm *vm)
{
	if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved_tio) == 0) {
		struct termios raw = saved_tio;
		cfmakeraw(&raw);
		raw.c_oflag |= OPOST | ONLCR;   /* keep "\n" -> "\r\n" for the guest's output */
		if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0) {
			tio_saved = true;
			atexit(restore_terminal);
		}
	}
	int r = loop_add(&vm->loop, STDIN_FILENO, EPOLLIN, on_stdin, vm);
	if (r == -EPERM)
		return 0;   /* /dev/null or a regular file: nothing to watch */
	return r;
}

void console_restore_now(void)
{
	if (tio_saved)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
}

void console_detach(void)
{
	restore_terminal();
}
