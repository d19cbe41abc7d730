#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

struct loop_source {
	int fd;
	loop_cb cb;
	void *opaque;
	bool removed;
	struct loop_source *next;
};

int loop_init(struct loop *l)
{
	l->sources = NULL;
	l->stopping = false;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0)
		return -errno;
	l->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->wake_fd < 0) {
		int err = -errno;
		close(l->epfd);
		return err;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wake_fd, &ev) < 0)
		return -errno;
	return 0;
}

void loop_destroy(struct loop *l)
{
	struct loop_source *s = l->sources;
	while (s) {
		struct loop_source *next = s->next;
		free(s);
		s = next;
	}
	l->sources = NULL;
	close(l->wake_fd);
	close(l->epfd);
}

int loop_add(struct loop *l, int fd, uint32_t events, loop_cb cb, void *opaque)
{
	struct loop_source *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->fd = fd;
	s->cb = cb;
	s->opaque = opaque;
	struct epoll_event ev = { .events = events, .data.ptr = s };
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int err = -errno;
		free(s);
		return err;
	}
	s->next = l->sources;
	l->sources = s;
	return 0;
}

static struct loop_source *find(struct loop *l, int fd)
{
	for (struct loop_source *s = l->sources; s; s = s->next)
		if (s->fd == fd && !s->removed)
			return s;
	return NULL;
}

int loop_modify(struct loop *l, int fd, uint32_t events)
{
	struct loop_source *s = find(l, fd);
	if (!s)
		return -ENOENT;
	struct epoll_event ev = { .events = events, .data.ptr = s };
	return epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

/* Sources are freed only between epoll batches, so a callback may remove
 * any source (itself included) while later events of the batch still
 * point at it. */
void loop_remove(struct loop *l, int fd)
{
	struct loop_source *s = find(l, fd);
	if (!s)
		return;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	s->removed = true;
}

static void reap(struct loop *l)
{
	struct loop_source **pp = &l->sources;
	while (*pp) {
		struct loop_source *s = *pp;
		if (s->removed) {
			*pp = s->next;
			free(s);
		} else {
			pp = &s->next;
		}
	}
}

int loop_run_once(struct loop *l, int timeout_ms)
{
	struct epoll_event evs[32];
	int n = epoll_wait(l->epfd, evs, 32, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		struct loop_source *s = evs[i].data.ptr;
		if (!s) {
			uint64_t v;
			if (read(l->wake_fd, &v, sizeof(v)) < 0) {
				/* nothing to do: the counter was already drained */
			}
			continue;
		}
		if (!s->removed)
			s->cb(s->opaque, evs[i].events);
	}
	reap(l);
	return n;
}

int loop_run(struct loop *l)
{
	while (!__atomic_load_n(&l->stopping, __ATOMIC_ACQUIRE)) {
		int r = loop_run_once(l, -1);
		if (r < 0)
			return r;
	}
	return 0;
}

void loop_stop(struct loop *l)
{
	__atomic_store_n(&l->stopping, true, __ATOMIC_RELEASE);
	uint64_t one = 1;
	if (write(l->wake_fd, &one, sizeof(one)) < 0) {
		/* the eventfd is full: the loop is already being woken */
	}
}

int loop_add_timer(struct loop *l, uint64_t first_ns, uint64_t interval_ns, loop_cb cb, void *opaque)
{
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (fd < 0)
		return -errno;
	struct itimerspec its = {
		.it_value = { (time_t)(first_ns / 1000000000ULL), (long)(first_ns % 1000000000ULL) },
		.it_interval = { (time_t)(interval_ns / 1000000000ULL), (long)(interval_ns % 1000000000ULL) },
	};
	if (first_ns == 0)
		its.it_value.tv_nsec = 1;
	if (timerfd_settime(fd, 0, &its, NULL) < 0 || loop_add(l, fd, EPOLLIN, cb, opaque) < 0) {
		int err = -errno;
		close(fd);
		return err ? err : -EIO;
	}
	return fd;
}
