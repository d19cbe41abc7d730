/* The shape of the seccomp allow lists (the lists are in filters.c). A
 * rule allows one system call, maybe only when up to three of its
 * arguments match; a value may be symbolic (this thread's vCPU fd, the
 * process id), resolved when the filter is built. */
#ifndef EMBER_SANDBOX_FILTERS_H
#define EMBER_SANDBOX_FILTERS_H

#include <stdbool.h>
#include <stdint.h>

#include "sandbox/sandbox.h"

/* Built with AddressSanitizer (gcc or clang): the runtime's own system
 * calls join the lists. */
#if defined(__SANITIZE_ADDRESS__)
#define EMBER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EMBER_SANITIZER 1
#endif
#endif

enum sc_sym {
	SC_LIT,             /* the value as written */
	SC_PID,             /* getpid() */
	SC_FD_KVM, SC_FD_VM, SC_FD_VCPU, SC_FD_API_DIR,   /* struct sandbox_fds; any fd when -1 */
};

/* arg == val; (arg & mask) == val. 0 ends a rule's comparisons. */
enum sc_op { SC_NONE, SC_EQ, SC_MASKED_EQ };

struct sc_cmp {
	uint8_t arg;        /* 0-5 */
	uint8_t op;         /* enum sc_op */
	uint8_t sym;        /* enum sc_sym */
	uint64_t mask, val;
};

struct sc_rule {
	int nr;             /* SCMP_SYS(name) */
	const char *name;   /* the system call */
	const char *what;   /* the arguments allowed, for listings ("KVM_RUN on its vCPU"), or NULL */
	bool enosys;        /* not allowed, but fails with ENOSYS rather than ending Ember (clone3) */
	struct sc_cmp cmp[3];   /* ended by op SC_NONE */
};

/* How many comparisons the rule has. */
static inline unsigned sc_rule_ncmp(const struct sc_rule *r)
{
	unsigned n = 0;
	while (n < 3 && r->cmp[n].op != SC_NONE)
		n++;
	return n;
}

/* A named set of rules that belong together (several kinds share them). */
struct sc_group {
	const char *name;
	const char *why;
	const struct sc_rule *rules;
	unsigned n;
};

#define SC_MAX_GROUPS 12

struct sc_kind {
	const char *name;
	const char *what;
	const struct sc_group *groups[SC_MAX_GROUPS];   /* NULL-terminated */
};

extern const struct sc_kind sc_kinds[THREAD_KINDS];
/* Only main's: when VMs are built after the filters (SANDBOX_REBUILD). */
extern const struct sc_group sc_group_rebuild;
/* Every kind: what creating a thread that then filters itself takes (the
 * new thread runs under its creator's filter until it installs its own). */
extern const struct sc_group sc_group_spawn;
/* Every kind in sanitizer builds: what the sanitizer runtime's reports
 * and leak check at exit need (NULL in normal builds). */
extern const struct sc_group *const sc_group_sanitizer;
/* Only main's, in sanitizer builds: the leak check at exit. */
extern const struct sc_group *const sc_group_sanitizer_main;

#endif
