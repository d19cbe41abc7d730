/* --jail DIR --uid U --gid G: once every file and device Ember needs is
 * open, leave the host's file system for DIR (a new mount namespace with
 * DIR, read-only, as its root), become U:G with no capabilities at all,
 * no_new_privs, no core dumps and bounded resources. Needs root (or the
 * capabilities to do that), and a single-threaded process. */
#ifndef EMBER_SANDBOX_JAIL_H
#define EMBER_SANDBOX_JAIL_H

#include <stddef.h>
#include <sys/types.h>

/* 0, or -errno with a one-line reason in err. */
int jail_enter(const char *dir, uid_t uid, gid_t gid, char *err, size_t errlen);

/* The descriptor limit inside the jail (RLIMIT_NOFILE). */
#define JAIL_NOFILE 4096

#endif
