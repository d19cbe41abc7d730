/* Shared by the control server (server.c) and its command handlers
 * (commands.c): clients, the server object, sending. */
#ifndef EMBER_CONTROL_INTERNAL_H
#define EMBER_CONTROL_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "control/control.h"
#include "control/protocol.h"

#define CTL_MAX_CLIENTS  32
#define CTL_OUT_HIGH     (64 * 1024)         /* stop taking requests above this */
#define CTL_OUT_MAX      (4 * 1024 * 1024)   /* drop a client that lets this pile up */
#define CTL_BATCH        16                  /* requests per client per loop turn */
#define CTL_MAX_EVENTS   4096                /* queued, not yet broadcast */

struct client {
	struct control_server *srv;
	int fd;
	unsigned num;                /* for log messages */
	char *in;                    /* CTL_MAX_LINE + 1 bytes */
	size_t in_start, in_len;
	char *out;
	size_t out_start, out_len, out_cap;
	uint32_t events;             /* what the loop watches now (0: not registered) */
	bool eof;                    /* the client sent all it will send */
	bool dead;                   /* close at the next chance */
	struct client *next;
};

struct queued_event {
	struct queued_event *next;
	size_t len;
	char text[];                 /* one line, newline included */
};

/* A `shutdown` request waiting for the VM to stop. */
struct shutdown_wait {
	struct client *client;       /* NULL once it has gone */
	json_object *id;
	struct shutdown_wait *next;
};

struct control_server {
	char *path;
	int dir_fd;                  /* O_PATH: path's directory, to unlink the socket at exit */
	const char *base;            /* path's last component */
	dev_t dev;                   /* of the socket file we made */
	ino_t ino;
	int listen_fd;
	int event_fd;                /* eventfd: events queued by other threads */
	int work_fd;                 /* eventfd: clients with buffered requests */
	struct vm *vm;               /* attached VM, or NULL between VMs */
	struct client *clients;
	unsigned nclients, next_num;

	pthread_mutex_t ev_lock;     /* the event queue */
	struct queued_event *ev_head, **ev_tail;
	unsigned ev_count, ev_dropped;

	struct shutdown_wait *shutdowns;
	int shutdown_timer;          /* timerfd, -1 when none */
	uint64_t shutdown_deadline;  /* CLOCK_MONOTONIC ns */
	bool shutdown_forced;        /* the timer stopped the VM */
};

/* The context handlers get. */
struct ctl_ctx {
	struct control_server *srv;
	struct client *client;
	struct vm *vm;
};

extern const struct ctl_command control_commands[];

/* Queue a reply/event object on one client; takes the reference. */
void client_send(struct client *c, json_object *o);

/* balloon.c: the balloon commands and the "balloon" member of status
 * (NULL without a balloon). */
enum ctl_status cmd_balloon_set(void *ctx, const struct ctl_request *req, struct ctl_reply *rep);
enum ctl_status cmd_balloon_stats(void *ctx, const struct ctl_request *req, struct ctl_reply *rep);
json_object *balloon_status_json(struct vm *vm);

/* commands.c: a `shutdown` request arrived (timeout in seconds). */
int shutdown_arm(struct control_server *srv, uint64_t timeout_ns);
/* commands.c: the VM stopped; answer the shutdown waiters. */
void shutdown_finish(struct control_server *srv);

#endif
