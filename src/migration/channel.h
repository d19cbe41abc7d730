/* The migration channel: tcp:HOST:PORT / unix:PATH addresses, connecting
 * and listening, a state-stream sink that counts bytes and keeps to a
 * bandwidth limit, and the fixed-size checksummed messages the destination
 * sends back (and the source's "go"). */
#ifndef EMBER_MIGRATION_CHANNEL_H
#define EMBER_MIGRATION_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

#include "migration/state.h"

enum channel_kind { CHANNEL_TCP, CHANNEL_UNIX };

struct channel_addr {
	enum channel_kind kind;
	char host[256], port[8];
	char path[108];
};

int channel_parse(const char *uri, struct channel_addr *a, char *err, size_t errlen);
/* A connected socket, or -errno with a message in err. */
/* The address needs no name lookup (UNIX, or a numeric host): what a
 * running VM can connect to. */
bool channel_numeric(const struct channel_addr *a);
int channel_connect(const struct channel_addr *a, char *err, size_t errlen);
int channel_listen(const struct channel_addr *a, char *err, size_t errlen);
int channel_accept(int listen_fd, const struct channel_addr *a);
/* Blocking sends/receives give up after this long (-ETIMEDOUT). */
void channel_set_timeout(int fd, unsigned seconds);

struct channel_sink {
	int fd;
	uint64_t bytes;          /* sent so far */
	uint64_t limit_bps;      /* bytes per second, 0 = unlimited */
	uint64_t start_ns;       /* of the rate limit */
};
struct state_sink channel_sink(struct channel_sink *s);

/* Messages: destination -> source READY (stream loaded and checked, or
 * refused: status -errno, text the reason) and RESUMED (time_ns = its
 * CLOCK_MONOTONIC at resume), SYNCED (everything up to a "sync" section
 * is loaded); source -> destination GO. */
enum { CHANNEL_READY = 1, CHANNEL_GO, CHANNEL_RESUMED, CHANNEL_SYNCED };

struct channel_msg {
	char magic[8];           /* "EMBRMIGR" */
	uint32_t kind;
	int32_t status;
	uint64_t time_ns;
	char text[228];
	uint32_t crc;            /* crc32 of everything before it */
};

int channel_send_msg(int fd, uint32_t kind, int32_t status, uint64_t time_ns, const char *text);
/* 0, -ECONNRESET at EOF, -ETIMEDOUT, -EBADMSG for a corrupt message. */
int channel_recv_msg(int fd, struct channel_msg *m);

#endif
