/* The user's terminal as the guest's serial console: stdin in raw mode when
 * it is a terminal, Ctrl-A x to quit (Ctrl-A Ctrl-A sends one Ctrl-A),
 * plain pipes otherwise. */
#ifndef EMBER_CONSOLE_H
#define EMBER_CONSOLE_H

struct vm;

int console_attach(struct vm *vm);
void console_detach(void);
/* Put the terminal back as it was; async-signal-safe (the SIGSYS report). */
void console_restore_now(void);

#endif
