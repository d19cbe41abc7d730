/* The control socket: listening, clients, line framing and output
 * buffering on the event loop. Nothing here blocks: a client that does not
 * read its replies is dropped once CTL_OUT_MAX bytes wait for it, one that
 * sends faster than it reads stops being read (CTL_OUT_HIGH), and each
 * client gets at most CTL_BATCH requests per loop turn. */
#include "control/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "vm.h"

#define IN_CAP (CTL_MAX_LINE + 1)   /* a longest line and its newline */

static void poke(int efd)
{
	uint64_t one = 1;
	if (write(efd, &one, sizeof(one)) < 0) {
		/* counter saturated: it is readable anyway */
	}
}

static void drain(int efd)
{
	uint64_t v;
	if (read(efd, &v, sizeof(v)) < 0) {
		/* already drained */
	}
}

/* ---- one client ---------------------------------------------------------- */

static bool has_work(const struct client *c)
{
	return c->in_len && (c->eof || c->in_len == IN_CAP || memchr(c->in + c->in_start, '\n', c->in_len));
}

static uint32_t wanted_events(const struct client *c)
{
	uint32_t ev = 0;
	if (!c->eof && !has_work(c) && c->out_len < CTL_OUT_HIGH)
		ev |= EPOLLIN;
	if (c->out_len)
		ev |= EPOLLOUT;
	return ev;
}

static void client_flush(struct client *c)
{
	while (c->out_len && !c->dead) {
		ssize_t n = send(c->fd, c->out + c->out_start, c->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				c->dead = true;
			return;
		}
		c->out_start += (size_t)n;
		c->out_len -= (size_t)n;
	}
	if (!c->out_len)
		c->out_start = 0;
}

/* Append one line (a newline is added). */
static void client_put(struct client *c, const char *text, size_t len)
{
	if (c->dead)
		return;
	if (c->out_len + len + 1 > CTL_OUT_MAX) {
		log_info("control: client %u does not read its replies; disconnecting it", c->num);
		c->dead = true;
		return;
	}
	if (c->out_start + c->out_len + len + 1 > c->out_cap) {
		/* Compact first; grow only when that is not enough. */
		if (c->out_start)
			memmove(c->out, c->out + c->out_start, c->out_len);
		c->out_start = 0;
		if (c->out_len + len + 1 > c->out_cap) {
			size_t cap = c->out_cap ? c->out_cap : 4096;
			while (cap < c->out_len + len + 1)
				cap *= 2;
			char *p = realloc(c->out, cap);
			if (!p) {
				c->dead = true;
				return;
			}
			c->out = p;
			c->out_cap = cap;
		}
	}
	memcpy(c->out + c->out_start + c->out_len, text, len);
	c->out[c->out_start + c->out_len + len] = '\n';
	c->out_len += len + 1;
	client_flush(c);
}

void client_send(struct client *c, json_object *o)
{
	size_t len;
	const char *text = o ? protocol_text(o, &len) : NULL;
	if (text)
		client_put(c, text, len);
	else
		c->dead = true;   /* out of memory: the client would miss a reply */
	json_object_put(o);
}

static void client_read(struct client *c)
{
	if (c->eof || c->dead)
		return;
	if (c->in_start) {
		memmove(c->in, c->in + c->in_start, c->in_len);
		c->in_start = 0;
	}
	if (c->in_len == IN_CAP)
		return;
	ssize_t n = recv(c->fd, c->in + c->in_len, IN_CAP - c->in_len, MSG_DONTWAIT);
	if (n > 0)
		c->in_len += (size_t)n;
	else if (n == 0)
		c->eof = true;
	else if (errno != EAGAIN && errno != EINTR)
		c->dead = true;
}

/* Answer up to budget buffered requests. */
static void client_work(struct client *c, int budget)
{
	struct control_server *srv = c->srv;
	struct ctl_ctx ctx = { .srv = srv, .client = c, .vm = srv->vm };
	while (!c->dead && budget-- > 0 && c->out_len < CTL_OUT_HIGH && has_work(c)) {
		char *line = c->in + c->in_start;
		char *nl = memchr(line, '\n', c->in_len);
		size_t len = nl ? (size_t)(nl - line) : c->in_len;
		if (!nl && c->in_len == IN_CAP) {
			/* No way to find where the next request starts: give up. */
			char msg[64];
			snprintf(msg, sizeof(msg), "request line longer than %d bytes", CTL_MAX_LINE);
			json_object *e = protocol_error(NULL, CTL_ERR_TOO_LONG, msg);
			client_send(c, e);
			log_info("control: client %u sent an over-long line; disconnecting it", c->num);
			c->dead = true;
			return;
		}
		json_object *reply = protocol_handle(control_commands, line, len, &ctx);
		size_t used = len + (nl ? 1 : 0);
		c->in_start += used;
		c->in_len -= used;
		if (reply)
			client_send(c, reply);
	}
}

static void client_free(struct client *c)
{
	struct control_server *srv = c->srv;
	for (struct client **pp = &srv->clients; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	for (struct shutdown_wait *w = srv->shutdowns; w; w = w->next)
		if (w->client == c)
			w->client = NULL;
	if (srv->vm)
		loop_remove(&srv->vm->loop, c->fd);
	close(c->fd);
	srv->nclients--;
	log_debug("control: client %u gone", c->num);
	free(c->in);
	free(c->out);
	free(c);
}

static void on_client(void *opaque, uint32_t events);

/* After anything happened to c: close it, or update what the loop watches
 * and ask for another turn if requests are waiting. */
static void client_settle(struct client *c)
{
	struct control_server *srv = c->srv;
	if (!c->dead && c->eof && !c->in_len && !c->out_len)
		c->dead = true;
	if (c->dead) {
		client_free(c);
		return;
	}
	uint32_t ev = wanted_events(c);
	if (srv->vm && ev != c->events) {
		if (loop_modify(&srv->vm->loop, c->fd, ev) == 0)
			c->events = ev;
	}
	if (srv->vm && has_work(c) && c->out_len < CTL_OUT_HIGH)
		poke(srv->work_fd);
}

static void settle_all(struct control_server *srv)
{
	struct client *next;
	for (struct client *c = srv->clients; c; c = next) {
		next = c->next;
		client_settle(c);
	}
}

static void on_client(void *opaque, uint32_t events)
{
	struct client *c = opaque;
	if (events & EPOLLOUT)
		client_flush(c);
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		client_read(c);
	client_work(c, CTL_BATCH);
	client_settle(c);
}

/* Clients whose requests outnumbered their last turn's budget. */
static void on_work(void *opaque, uint32_t events)
{
	struct control_server *srv = opaque;
	drain(srv->work_fd);
	for (struct client *c = srv->clients; c; c = c->next)
		client_work(c, CTL_BATCH);
	settle_all(srv);
}

static int client_register(struct client *c)
{
	struct control_server *srv = c->srv;
	/* Registered with EPOLLIN|EPOLLOUT style masks only; 0 still reports
	 * hang-ups, which is what a client with nothing to do needs. */
	uint32_t ev = wanted_events(c);
	int r = loop_add(&srv->vm->loop, c->fd, ev, on_client, c);
	if (r == 0)
		c->events = ev;
	return r;
}

static void on_accept(void *opaque, uint32_t events)
{
	struct control_server *srv = opaque;
	for (int i = 0; i < 16; i++) {
		int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warn("control: accept: %s", strerror(errno));
			return;
		}
		if (srv->nclients >= CTL_MAX_CLIENTS) {
			char msg[64];
			snprintf(msg, sizeof(msg), "too many control clients (at most %d)", CTL_MAX_CLIENTS);
			json_object *e = protocol_error(NULL, CTL_ERR_CLIENTS, msg);
			size_t len;
			const char *text = protocol_text(e, &len);
			char line[256];
			int n = snprintf(line, sizeof(line), "%s\n", text ? text : "");
			if (send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
				/* it will see the connection close */
			}
			json_object_put(e);
			close(fd);
			continue;
		}
		struct client *c = calloc(1, sizeof(*c));
		char *in = malloc(IN_CAP);
		if (!c || !in) {
			free(c);
			free(in);
			close(fd);
			continue;
		}
		c->srv = srv;
		c->fd = fd;
		c->in = in;
		c->num = ++srv->next_num;
		if (client_register(c)) {
			free(in);
			free(c);
			close(fd);
			continue;
		}
		c->next = srv->clients;
		srv->clients = c;
		srv->nclients++;
		log_debug("control: client %u connected", c->num);
	}
}

/* ---- events ---------------------------------------------------------------- */

void events_emit(struct control_server *srv, const char *name, json_object *data)
{
	if (!srv) {
		json_object_put(data);
		return;
	}
	json_object *o = protocol_event(name, data);
	size_t len;
	const char *text = o ? protocol_text(o, &len) : NULL;
	struct queued_event *e = text ? malloc(sizeof(*e) + len + 1) : NULL;
	if (e) {
		e->next = NULL;
		e->len = len + 1;
		memcpy(e->text, text, len);
		e->text[len] = '\n';
	}
	json_object_put(o);
	pthread_mutex_lock(&srv->ev_lock);
	if (!e || srv->ev_count >= CTL_MAX_EVENTS) {
		srv->ev_dropped++;
		free(e);
		e = NULL;
	} else {
		*srv->ev_tail = e;
		srv->ev_tail = &e->next;
		srv->ev_count++;
	}
	pthread_mutex_unlock(&srv->ev_lock);
	if (e)
		poke(srv->event_fd);
}

/* Loop thread: send every queued event to every client. */
static void broadcast_events(struct control_server *srv)
{
	pthread_mutex_lock(&srv->ev_lock);
	struct queued_event *e = srv->ev_head;
	srv->ev_head = NULL;
	srv->ev_tail = &srv->ev_head;
	srv->ev_count = 0;
	pthread_mutex_unlock(&srv->ev_lock);
	while (e) {
		struct queued_event *next = e->next;
		for (struct client *c = srv->clients; c; c = c->next)
			client_put(c, e->text, e->len - 1);
		free(e);
		e = next;
	}
}

static void on_event(void *opaque, uint32_t events)
{
	struct control_server *srv = opaque;
	drain(srv->event_fd);
	broadcast_events(srv);
	settle_all(srv);
}

/* ---- the listening socket -------------------------------------------------- */

/* Something exists at path: a stale socket (nobody answers) may go. */
static int check_existing(const char *path, const struct sockaddr_un *sa, char *err, size_t errlen)
{
	struct stat st;
	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "--api-socket %s: %s", path, strerror(errno));
		return -errno;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "--api-socket %s: exists and is not a socket; not replacing it", path);
		return -EEXIST;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -errno;
	}
	int r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	int e = errno;
	close(fd);
	if (r == 0 || e == EAGAIN) {
		snprintf(err, errlen, "--api-socket %s: another process is listening on it", path);
		return -EADDRINUSE;
	}
	if (e != ECONNREFUSED) {
		snprintf(err, errlen, "--api-socket %s: %s", path, strerror(e));
		return -e;
	}
	if (unlink(path) < 0) {
		snprintf(err, errlen, "--api-socket %s: removing the stale socket: %s", path, strerror(errno));
		return -errno;
	}
	log_info("control: replaced stale socket %s", path);
	return 0;
}

static int open_listener(struct control_server *srv, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (!*path || strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "--api-socket: the path must be 1 to %zu bytes", sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path));
	int r = check_existing(path, &sa, err, errlen);
	if (r)
		return r;
	srv->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (srv->listen_fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -errno;
	}
	/* The socket file is born 0600: nobody else may connect even briefly.
	 * Still single-threaded here, so changing the umask is safe. */
	mode_t old = umask(0177);
	r = bind(srv->listen_fd, (const struct sockaddr *)&sa, sizeof(sa));
	int e = errno;
	umask(old);
	if (r < 0) {
		snprintf(err, errlen, "--api-socket %s: %s", path, strerror(e));
		return -e;
	}
	struct stat st;
	if (stat(path, &st) < 0 || listen(srv->listen_fd, 64) < 0) {
		e = errno;
		unlink(path);
		snprintf(err, errlen, "--api-socket %s: %s", path, strerror(e));
		return -e;
	}
	srv->dev = st.st_dev;
	srv->ino = st.st_ino;
	/* Removing the socket at exit goes through its directory: the path
	 * may be out of reach by then (--jail), and the seccomp filter allows
	 * unlinkat in this one directory only. */
	const char *slash = strrchr(path, '/');
	char dir[sizeof(sa.sun_path)];
	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
	srv->dir_fd = open(slash == path ? "/" : dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (srv->dir_fd < 0) {
		e = errno;
		unlink(path);
		snprintf(err, errlen, "--api-socket %s: its directory: %s", path, strerror(e));
		return -e;
	}
	return 0;
}

int control_open(const char *path, struct control_server **out, char *err, size_t errlen)
{
	struct control_server *srv = calloc(1, sizeof(*srv));
	*out = NULL;
	if (!srv || !(srv->path = strdup(path))) {
		free(srv);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	srv->listen_fd = srv->event_fd = srv->work_fd = srv->shutdown_timer = srv->dir_fd = -1;
	pthread_mutex_init(&srv->ev_lock, NULL);
	srv->ev_tail = &srv->ev_head;
	const char *slash = strrchr(srv->path, '/');
	srv->base = slash ? slash + 1 : srv->path;
	int r = open_listener(srv, path, err, errlen);
	if (r) {
		free(srv->path);
		srv->path = NULL;   /* not ours to unlink */
		control_close(srv);
		return r;
	}
	srv->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	srv->work_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (srv->event_fd < 0 || srv->work_fd < 0) {
		r = -errno;
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		control_close(srv);
		return r;
	}
	*out = srv;
	return 0;
}

int control_attach(struct control_server *srv, struct vm *vm)
{
	int r;
	srv->vm = vm;
	vm->control = srv;
	if ((r = loop_add(&vm->loop, srv->listen_fd, EPOLLIN, on_accept, srv)) ||
	    (r = loop_add(&vm->loop, srv->event_fd, EPOLLIN, on_event, srv)) ||
	    (r = loop_add(&vm->loop, srv->work_fd, EPOLLIN, on_work, srv)))
		return r;
	struct client *next;
	for (struct client *c = srv->clients; c; c = next) {
		next = c->next;
		if (client_register(c)) {
			c->dead = true;
			client_settle(c);
		}
	}
	settle_all(srv);
	return 0;
}

int control_dir_fd(const struct control_server *srv)
{
	return srv ? srv->dir_fd : -1;
}

void control_detach(struct control_server *srv)
{
	struct vm *vm = srv ? srv->vm : NULL;
	if (!vm)
		return;
	broadcast_events(srv);
	shutdown_finish(srv);
	for (struct client *c = srv->clients; c; c = c->next)
		client_flush(c);
	settle_all(srv);
	for (struct client *c = srv->clients; c; c = c->next) {
		loop_remove(&vm->loop, c->fd);
		c->events = 0;
	}
	loop_remove(&vm->loop, srv->listen_fd);
	loop_remove(&vm->loop, srv->event_fd);
	loop_remove(&vm->loop, srv->work_fd);
	vm->control = NULL;
	srv->vm = NULL;
}

void control_close(struct control_server *srv)
{
	if (!srv)
		return;
	control_detach(srv);
	broadcast_events(srv);
	while (srv->clients) {
		client_flush(srv->clients);
		srv->clients->dead = true;
		client_free(srv->clients);
	}
	if (srv->path && srv->dir_fd >= 0) {
		/* Only the socket we made: someone may have replaced it. */
		struct stat st;
		if (fstatat(srv->dir_fd, srv->base, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev == srv->dev &&
		    st.st_ino == srv->ino)
			unlinkat(srv->dir_fd, srv->base, 0);
	}
	if (srv->dir_fd >= 0)
		close(srv->dir_fd);
	if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	if (srv->event_fd >= 0)
		close(srv->event_fd);
	if (srv->work_fd >= 0)
		close(srv->work_fd);
	pthread_mutex_destroy(&srv->ev_lock);
	free(srv->path);
	free(srv);
}
