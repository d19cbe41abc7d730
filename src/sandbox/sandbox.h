/* Seccomp filters per thread kind. Every Ember thread that exists while a
 * guest runs belongs to one kind and runs under that kind's allow list
 * (src/sandbox/filters.c), installed by the thread itself before it touches
 * anything the guest controls; the guest's first KVM_RUN waits until all of
 * them are in place. A forbidden system call ends Ember with one log line
 * naming the thread and the call (--seccomp=kill, the default), or is let
 * through and logged by the kernel's audit log (--seccomp=log). */
#ifndef EMBER_SANDBOX_H
#define EMBER_SANDBOX_H

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>

enum thread_kind {
	THREAD_MAIN,        /* the event loop: console, control API, timers, device backends, teardown */
	THREAD_VCPU,        /* one per vCPU: KVM_RUN and the device emulation it calls */
	THREAD_IO,          /* I/O workers fed by the loop (block backends); none on main yet */
	THREAD_MIGRATION,   /* snapshot / live-migration sender */
	THREAD_KINDS
};

enum sandbox_mode { SANDBOX_KILL, SANDBOX_LOG, SANDBOX_OFF };

/* The file descriptors a filter may name (ioctls are allowed on these
 * only, where the list says so); -1 when the thread has none. */
struct sandbox_fds {
	int kvm;            /* /dev/kvm */
	int vm;             /* KVM_CREATE_VM */
	int vcpu;           /* the thread's own vCPU */
	int api_dir;        /* the control socket's directory (unlinking the socket at exit) */
};
#define SANDBOX_NO_FDS ((struct sandbox_fds){ -1, -1, -1, -1 })

/* Flags for sandbox_setup. */
#define SANDBOX_REBUILD  (1u << 0)   /* VMs are built after the filters (--on-reboot restart, self-test) */

/* Once per process, before any thread is filtered: the mode and the
 * SIGSYS handler that reports a forbidden call. 0 or -errno. */
int sandbox_setup(enum sandbox_mode mode, unsigned flags);
enum sandbox_mode sandbox_mode(void);

/* Install kind's filter on the calling thread (a no-op when it already has
 * one, or with --seccomp=off). name labels the thread in the log line.
 * 0 or -errno (logged). */
int sandbox_enter(enum thread_kind kind, const struct sandbox_fds *fds, const char *name);

/* pthread_create for a thread of kind: the new thread is named, installs
 * its filter, and only then does this return 0 and fn run. The caller's
 * signal mask is inherited (SIGSYS is unblocked). 0 or -errno. */
int sandbox_thread_create(pthread_t *t, enum thread_kind kind, const struct sandbox_fds *fds,
			  const char *name, void *(*fn)(void *), void *arg);

const char *sandbox_kind_name(enum thread_kind kind);
/* "main" -> THREAD_MAIN...; -1 when unknown. */
int sandbox_kind_lookup(const char *name);

/* Test mode (--test-seccomp-violate): make a system call no kind allows
 * (execve of a path that does not exist), or with ioctl an ioctl the
 * thread's list lacks (KVM_CREATE_IRQCHIP on fd). Returns only when the
 * filter let it through, after saying so. */
void sandbox_test_violate(bool ioctl_variant, int fd);

/* The size in BPF instructions of kind's filter (flags as for
 * sandbox_setup), built but not installed; -errno when it cannot be built. */
int sandbox_filter_insns(enum thread_kind kind, unsigned flags);

/* Print every kind's allow list (ember seccomp). */
void sandbox_print(FILE *f, unsigned flags);

#endif
