/* The event loop: one epoll instance on the main thread. Sources are file
 * descriptors with a callback (stdin, ioeventfds, sockets, timerfds).
 * Callbacks run on the loop thread only. */
#ifndef EMBER_LOOP_H
#define EMBER_LOOP_H

#include <stdbool.h>
#include <stdint.h>

typedef void (*loop_cb)(void *opaque, uint32_t events);

struct loop_source;

struct loop {
	int epfd;
	int wake_fd;              /* eventfd: loop_stop and loop_wake from any thread */
	volatile bool stopping;
	struct loop_source *sources;
};

int loop_init(struct loop *l);
void loop_destroy(struct loop *l);

/* Watch fd for EPOLLIN/EPOLLOUT/...; 0 or -errno. */
int loop_add(struct loop *l, int fd, uint32_t events, loop_cb cb, void *opaque);
int loop_modify(struct loop *l, int fd, uint32_t events);
void loop_remove(struct loop *l, int fd);

/* Run until loop_stop; returns 0 or -errno. */
int loop_run(struct loop *l);
/* One batch: wait up to timeout_ms (-1: forever, 0: not at all) and run
 * the callbacks of what is ready; returns how many fds were ready or
 * -errno. For tests and fuzz targets that drive devices step by step. */
int loop_run_once(struct loop *l, int timeout_ms);
/* Thread-safe: make loop_run return. */
void loop_stop(struct loop *l);

/* A periodic or one-shot timer as a loop source (timerfd). Returns the fd
 * (close with loop_remove + close) or -errno. interval_ns 0 = one-shot. */
int loop_add_timer(struct loop *l, uint64_t first_ns, uint64_t interval_ns, loop_cb cb, void *opaque);

#endif
