/* The control plane's face to the rest of Ember: a UNIX socket server
 * (`ember run --api-socket PATH`) that lives across guest restarts and is
 * attached to one VM at a time, and the event API. */
#ifndef EMBER_CONTROL_H
#define EMBER_CONTROL_H

#include <stddef.h>

#include "vm.h"

struct control_server;
struct json_object;

/* Listen on path (mode 0600). A stale socket there is replaced; any other
 * file, or a socket someone answers on, is an error. 0 or -errno with a
 * one-line reason in err. */
int control_open(const char *path, struct control_server **out, char *err, size_t errlen);
/* Unlink the socket, disconnect everyone (after a last flush). NULL is ok. */
void control_close(struct control_server *srv);

/* The socket's directory (O_PATH), for removing it at exit under a
 * seccomp filter or in a jail; -1 without a server. */
int control_dir_fd(const struct control_server *srv);

/* Serve clients on vm's loop; sets vm->control. Before vm_run. */
int control_attach(struct control_server *srv, struct vm *vm);
/* After vm_run has returned (vCPU threads joined): answer what waited for
 * the VM to stop, flush, take the sources off the loop. */
void control_detach(struct control_server *srv);

/* Thread-safe: send {"event":name, ...members of data} to every client.
 * Takes the data reference (may be NULL). */
void events_emit(struct control_server *srv, const char *name, struct json_object *data);

/* The VM entered state (running, paused, stopping + its reason): emit the
 * "state" event. Thread-safe; no-op without a server. */
void control_state_event(struct vm *vm, enum vm_state state);

struct balloon_info;
/* The balloon's guest statistics or size changed: emit "balloon-stats".
 * Thread-safe; no-op without a server. */
void control_balloon_event(struct vm *vm, const struct balloon_info *info);

#endif
