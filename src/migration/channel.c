/* The migration channel: URIs, sockets, the stream sink with a bandwidth
 * limit, and the small fixed-size messages that travel back. */
#include "migration/channel.h"

#include <errno.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "vm.h"

static int fail(char *err, size_t errlen, int code, const char *fmt, const char *a, const char *b)
{
	snprintf(err, errlen, fmt, a, b);
	return code;
}

int channel_parse(const char *uri, struct channel_addr *a, char *err, size_t errlen)
{
	memset(a, 0, sizeof(*a));
	if (!strncmp(uri, "unix:", 5)) {
		const char *p = uri + 5;
		if (!*p || strlen(p) >= sizeof(a->path))
			return fail(err, errlen, -EINVAL, "%s: the UNIX socket path must be 1 to 107 bytes%s", uri, "");
		a->kind = CHANNEL_UNIX;
		strcpy(a->path, p);
		return 0;
	}
	if (!strncmp(uri, "tcp:", 4)) {
		const char *p = uri + 4, *colon = strrchr(p, ':');
		if (!colon || colon == p || !colon[1])
			return fail(err, errlen, -EINVAL, "%s: expected tcp:HOST:PORT%s", uri, "");
		size_t hl = (size_t)(colon - p);
		if (p[0] == '[' && hl >= 2 && p[hl - 1] == ']') {   /* [::1]:port */
			p++;
			hl -= 2;
		}
		if (hl >= sizeof(a->host))
			return fail(err, errlen, -EINVAL, "%s: host name too long%s", uri, "");
		char *end;
		unsigned long port = strtoul(colon + 1, &end, 10);
		if (*end || port == 0 || port > 65535)
			return fail(err, errlen, -EINVAL, "%s: the port must be 1 to 65535%s", uri, "");
		a->kind = CHANNEL_TCP;
		memcpy(a->host, p, hl);
		snprintf(a->port, sizeof(a->port), "%lu", port);
		return 0;
	}
	return fail(err, errlen, -EINVAL, "%s: expected tcp:HOST:PORT or unix:PATH%s", uri, "");
}

static void tune(int fd, const struct channel_addr *a)
{
	int one = 1, buf = 4 << 20;
	if (a->kind == CHANNEL_TCP)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
}

void channel_set_timeout(int fd, unsigned seconds)
{
	struct timeval tv = { .tv_sec = seconds };
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

bool channel_numeric(const struct channel_addr *a)
{
	unsigned char buf[sizeof(struct in6_addr)];
	return a->kind != CHANNEL_TCP || inet_pton(AF_INET, a->host, buf) == 1 ||
	       inet_pton(AF_INET6, a->host, buf) == 1;
}

/* Calls fn for each address of a (one for UNIX) until it returns >= 0.
 * An outgoing connection resolves no names (channel_numeric): it is made
 * from a sandboxed thread, where looking a name up (files, DNS, NSS
 * modules) cannot be done. */
static int each_addr(const struct channel_addr *a, bool passive, int (*fn)(int family, const struct sockaddr *,
	socklen_t, void *), void *arg, char *err, size_t errlen)
{
	if (a->kind == CHANNEL_UNIX) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		memcpy(sa.sun_path, a->path, strlen(a->path));
		return fn(AF_UNIX, (struct sockaddr *)&sa, sizeof(sa), arg);
	}
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = passive ? AI_PASSIVE : AI_NUMERICHOST | AI_NUMERICSERV };
	struct addrinfo *res;
	int g = getaddrinfo(a->host[0] ? a->host : NULL, a->port, &hints, &res);
	if (g)
		return fail(err, errlen, -EHOSTUNREACH, "%s: %s", a->host, gai_strerror(g));
	int r = -EADDRNOTAVAIL;
	for (struct addrinfo *ai = res; ai && r < 0; ai = ai->ai_next)
		r = fn(ai->ai_family, ai->ai_addr, ai->ai_addrlen, arg);
	freeaddrinfo(res);
	return r;
}

static int do_connect(int family, const struct sockaddr *sa, socklen_t len, void *arg)
{
	(void)arg;
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, sa, len) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

int channel_connect(const struct channel_addr *a, char *err, size_t errlen)
{
	err[0] = '\0';
	int fd = each_addr(a, false, do_connect, NULL, err, errlen);
	if (fd < 0) {
		if (!err[0])
			snprintf(err, errlen, "connecting to %s%s%s: %s", a->kind == CHANNEL_UNIX ? a->path : a->host,
				 a->kind == CHANNEL_UNIX ? "" : ":", a->kind == CHANNEL_UNIX ? "" : a->port, strerror(-fd));
		return fd;
	}
	tune(fd, a);
	return fd;
}

static int do_listen(int family, const struct sockaddr *sa, socklen_t len, void *arg)
{
	(void)arg;
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, sa, len) < 0 || listen(fd, 1) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

int channel_listen(const struct channel_addr *a, char *err, size_t errlen)
{
	err[0] = '\0';
	if (a->kind == CHANNEL_UNIX)
		unlink(a->path);   /* a stale socket of an earlier run */
	int fd = each_addr(a, true, do_listen, NULL, err, errlen);
	if (fd < 0 && !err[0])
		snprintf(err, errlen, "listening on %s%s%s: %s", a->kind == CHANNEL_UNIX ? a->path : a->host,
			 a->kind == CHANNEL_UNIX ? "" : ":", a->kind == CHANNEL_UNIX ? "" : a->port, strerror(-fd));
	return fd;
}

int channel_accept(int listen_fd, const struct channel_addr *a)
{
	int fd;
	do
		fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return -errno;
	tune(fd, a);
	return fd;
}

/* ---- the sink ------------------------------------------------------------------- */

static int sink_write(void *opaque, const void *buf, size_t len)
{
	struct channel_sink *s = opaque;
	const uint8_t *p = buf;
	while (len) {
		size_t n = len;
		if (s->limit_bps && n > 256 * 1024)
			n = 256 * 1024;
		ssize_t w = send(s->fd, p, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		}
		p += w;
		len -= (size_t)w;
		s->bytes += (uint64_t)w;
		if (s->limit_bps) {
			/* Sleep until the bytes sent fit the rate since the start. */
			uint64_t due = s->start_ns + s->bytes * 1000000000ull / s->limit_bps, now = now_ns();
			if (due > now) {
				uint64_t ns = due - now;
				struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };
				nanosleep(&ts, NULL);
			}
		}
	}
	return 0;
}

struct state_sink channel_sink(struct channel_sink *s)
{
	return (struct state_sink){ sink_write, s };
}

/* ---- messages --------------------------------------------------------------------- */

static const char msg_magic[8] = { 'E', 'M', 'B', 'R', 'M', 'I', 'G', 'R' };

int channel_send_msg(int fd, uint32_t kind, int32_t status, uint64_t time_ns, const char *text)
{
	struct channel_msg m;
	memset(&m, 0, sizeof(m));
	memcpy(m.magic, msg_magic, 8);
	m.kind = kind;
	m.status = status;
	m.time_ns = time_ns;
	if (text)
		snprintf(m.text, sizeof(m.text), "%s", text);
	m.crc = state_crc32(0, &m, offsetof(struct channel_msg, crc));
	const uint8_t *p = (const uint8_t *)&m;
	size_t len = sizeof(m);
	while (len) {
		ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? (errno == EAGAIN ? -ETIMEDOUT : -errno) : -EIO;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int channel_recv_msg(int fd, struct channel_msg *m)
{
	uint8_t *p = (uint8_t *)m;
	size_t got = 0;
	while (got < sizeof(*m)) {
		ssize_t n = recv(fd, p + got, sizeof(*m) - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		if (n == 0)
			return -ECONNRESET;
		got += (size_t)n;
	}
	if (memcmp(m->magic, msg_magic, 8) ||
	    m->crc != state_crc32(0, m, offsetof(struct channel_msg, crc)))
		return -EBADMSG;
	m->text[sizeof(m->text) - 1] = '\0';
	return 0;
}
