/* Building and installing the per-kind seccomp filters with libseccomp,
 * and reporting a forbidden system call (SIGSYS) in one line. */
#include "sandbox/sandbox.h"

#include <errno.h>
#include <linux/kvm.h>
#include <seccomp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "config.h"
#include "console.h"
#include "log.h"
#include "sandbox/filters.h"

#ifdef EMBER_SANITIZER
#include <sanitizer/common_interface_defs.h>
#endif

/* System call names by number, generated from <asm/unistd_64.h>. */
static const char *const syscall_names[] = {
#include "syscall_names.h"
};
#define NSYSCALL_NAMES (sizeof(syscall_names) / sizeof(syscall_names[0]))

static enum sandbox_mode mode = SANDBOX_OFF;
static unsigned setup_flags;
static __thread char thread_name[16];
static __thread int thread_kind = -1;   /* enum thread_kind, SPAWNER, or -1: no filter yet */
#define SPAWNER THREAD_KINDS

/* ---- the SIGSYS report: async-signal-safe, no stdio, no malloc ---------------- */

struct line {
	char buf[384];
	size_t len;
};

static void put(struct line *l, const char *s)
{
	while (s && *s && l->len < sizeof(l->buf) - 1)
		l->buf[l->len++] = *s++;
}

static void put_num(struct line *l, unsigned long v, unsigned base)
{
	char tmp[24];
	int n = 0;
	do {
		tmp[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v && n < (int)sizeof(tmp));
	if (base == 16)
		put(l, "0x");
	while (n && l->len < sizeof(l->buf) - 1)
		l->buf[l->len++] = tmp[--n];
}

/* An ioctl request's name, if some list names it. */
static const char *group_ioctl_name(const struct sc_group *g, unsigned long req)
{
	for (unsigned i = 0; g && i < g->n; i++) {
		const struct sc_rule *r = &g->rules[i];
		for (unsigned j = 0; r->nr == SCMP_SYS(ioctl) && j < sc_rule_ncmp(r); j++)
			if (r->cmp[j].arg == 1 && r->cmp[j].val == (req & 0xffffffffu))
				return r->what;
	}
	return NULL;
}

static const char *ioctl_name(unsigned long req)
{
	const char *n = group_ioctl_name(&sc_group_rebuild, req);
	for (int k = 0; k < THREAD_KINDS && !n; k++)
		for (const struct sc_group *const *g = sc_kinds[k].groups; *g && !n; g++)
			n = group_ioctl_name(*g, req);
	return n;
}

static void on_sigsys(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	struct line l = { .len = 0 };
	int nr = si->si_syscall;
	put(&l, "ember: error: seccomp: thread ");
	put(&l, thread_name[0] ? thread_name : "?");
	put(&l, " (");
	put(&l, thread_kind == SPAWNER ? "spawner" : thread_kind >= 0 ? sc_kinds[thread_kind].name : "unfiltered");
	put(&l, ") made system call ");
	put(&l, nr >= 0 && (size_t)nr < NSYSCALL_NAMES && syscall_names[nr] ? syscall_names[nr] : "?");
	put(&l, " (");
	put_num(&l, (unsigned long)nr, 10);
	if (nr == SYS_ioctl) {
		unsigned long fd = (unsigned long)uc->uc_mcontext.gregs[REG_RDI];
		unsigned long req = (unsigned long)uc->uc_mcontext.gregs[REG_RSI];
		put(&l, ", fd ");
		put_num(&l, fd, 10);
		put(&l, ", request ");
		put_num(&l, req, 16);
		const char *name = ioctl_name(req);
		if (name) {
			put(&l, " ");
			put(&l, name);
		}
	}
	put(&l, "), which its filter does not allow: stopping (--seccomp=log lets it through)\n");
	if (write(STDERR_FILENO, l.buf, l.len) < 0) {
		/* nowhere left to say it */
	}
	console_restore_now();
	syscall(SYS_exit_group, EXIT_SECCOMP);
}

/* ---- building filters ------------------------------------------------------------- */

static int resolve(const struct sc_cmp *c, const struct sandbox_fds *fds, struct scmp_arg_cmp *out)
{
	long v;
	switch (c->sym) {
	case SC_LIT: v = (long)c->val; break;
	case SC_PID: v = getpid(); break;
	case SC_FD_KVM: v = fds->kvm; break;
	case SC_FD_VM: v = fds->vm; break;
	case SC_FD_VCPU: v = fds->vcpu; break;
	case SC_FD_API_DIR: v = fds->api_dir; break;
	default: return -EINVAL;
	}
	if (c->sym >= SC_FD_KVM && v < 0)
		return 1;   /* fd not known to this thread: any */
	*out = (struct scmp_arg_cmp){ .arg = c->arg };
	if (c->op == SC_MASKED_EQ) {
		out->op = SCMP_CMP_MASKED_EQ;
		out->datum_a = c->mask;
		out->datum_b = (scmp_datum_t)v;
	} else {
		out->op = SCMP_CMP_EQ;
		out->datum_a = (scmp_datum_t)v;
	}
	return 0;
}

static int add_group(scmp_filter_ctx ctx, const struct sc_group *g, const struct sandbox_fds *fds)
{
	for (unsigned i = 0; i < g->n; i++) {
		const struct sc_rule *r = &g->rules[i];
		int e;
		if (r->enosys) {
			e = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), r->nr, 0);
		} else {
			struct scmp_arg_cmp cmps[3];
			unsigned n = 0;
			for (unsigned j = 0; j < sc_rule_ncmp(r); j++) {
				int s = resolve(&r->cmp[j], fds, &cmps[n]);
				if (s < 0)
					return s;
				if (s == 0)
					n++;
			}
			e = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, r->nr, n, cmps);
		}
		if (e && e != -EEXIST) {
			log_error("seccomp: rule %s%s%s of group %s: %s", r->name, r->what ? " " : "",
				  r->what ? r->what : "", g->name, strerror(-e));
			return e;
		}
	}
	return 0;
}

static int add_kind(scmp_filter_ctx ctx, enum thread_kind kind, const struct sandbox_fds *fds)
{
	for (const struct sc_group *const *g = sc_kinds[kind].groups; *g; g++) {
		int e = add_group(ctx, *g, fds);
		if (e)
			return e;
	}
	return 0;
}

/* The filter kind's threads get: its groups, the sanitizer's in test
 * builds; main in rebuild mode also what building VMs takes, on any VM or
 * vCPU fd (their threads come from the spawner). */
static int build(scmp_filter_ctx ctx, enum thread_kind kind, const struct sandbox_fds *given, unsigned flags)
{
	struct sandbox_fds fds = *given;
	bool rebuild = kind == THREAD_MAIN && (flags & SANDBOX_REBUILD);
	if (rebuild)
		fds.vm = fds.vcpu = -1;
	int e = add_kind(ctx, kind, &fds);
	if (!e && sc_group_sanitizer)
		e = add_group(ctx, sc_group_sanitizer, &fds);
	if (!e && sc_group_sanitizer_main && kind == THREAD_MAIN)
		e = add_group(ctx, sc_group_sanitizer_main, &fds);
	if (!e && rebuild)
		e = add_group(ctx, &sc_group_rebuild, &fds);
	/* The hot path first: a vCPU's KVM_RUN is checked on every exit. */
	if (!e && kind == THREAD_VCPU)
		e = seccomp_syscall_priority(ctx, SCMP_SYS(ioctl), 255);
	return e;
}

/* The spawner's: starting threads, and every kind it starts (all but
 * main), on any fd, since each new thread narrows it with its own at once. */
static int build_spawner(scmp_filter_ctx ctx)
{
	const struct sandbox_fds any = SANDBOX_NO_FDS;
	int e = add_group(ctx, &sc_group_spawn, &any);
	for (int k = 0; k < THREAD_KINDS && !e; k++)
		if (k != THREAD_MAIN)
			e = add_kind(ctx, (enum thread_kind)k, &any);
	if (!e && sc_group_sanitizer)
		e = add_group(ctx, sc_group_sanitizer, &any);
	return e;
}

static int spawner_start(void);

int sandbox_setup(enum sandbox_mode m, unsigned flags)
{
	mode = m;
	setup_flags = flags;
	if (m == SANDBOX_OFF)
		return 0;
	/* Ask the kernel what it supports now, not from a filtered thread. */
	if (seccomp_api_get() < 3) {
		log_error("seccomp: this kernel or libseccomp lacks what --seccomp needs (API level %u)",
			  seccomp_api_get());
		return -ENOTSUP;
	}
	/* glibc reads /etc/localtime at its first time conversion (the RTC's
	 * gmtime_r included): now, not on a filtered vCPU thread. */
	tzset();
#ifdef EMBER_SANITIZER
	/* The symbolizer opens the binary and reads the memory map on first
	 * use: do that now, so a report on a filtered thread needs nothing
	 * more than writing it out. */
	char buf[256];
	__sanitizer_symbolize_pc(__builtin_return_address(0), "%p %F %L", buf, sizeof(buf));
#endif
	struct sigaction sa = { .sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO };
	sigfillset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0)
		return -errno;
	return spawner_start();
}

enum sandbox_mode sandbox_mode(void)
{
	return mode;
}

/* Build (kind or the spawner's) and install on the calling thread. */
static int install(int kind, const struct sandbox_fds *fds, const char *name)
{
	const char *kname = kind == SPAWNER ? "spawner" : sc_kinds[kind].name;
	scmp_filter_ctx ctx = seccomp_init(mode == SANDBOX_KILL ? SCMP_ACT_TRAP : SCMP_ACT_LOG);
	if (!ctx)
		return -ENOMEM;
	int e = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
	if (!e)
		e = kind == SPAWNER ? build_spawner(ctx) : build(ctx, (enum thread_kind)kind, fds, setup_flags);
	if (e) {
		seccomp_release(ctx);
		log_error("seccomp: building the %s filter: %s", kname, strerror(-e));
		return e;
	}
	sigset_t sys;
	sigemptyset(&sys);
	sigaddset(&sys, SIGSYS);
	pthread_sigmask(SIG_UNBLOCK, &sys, NULL);
	snprintf(thread_name, sizeof(thread_name), "%s", name);
	thread_kind = kind;
	e = seccomp_load(ctx);
	seccomp_release(ctx);
	if (e) {
		thread_kind = -1;
		log_error("seccomp: installing the %s filter on %s: %s", kname, name, strerror(-e));
		return e;
	}
	return 0;
}

int sandbox_enter(enum thread_kind kind, const struct sandbox_fds *fds, const char *name)
{
	if (mode == SANDBOX_OFF || thread_kind >= 0)
		return 0;
	return install((int)kind, fds, name);
}

int sandbox_filter_insns(enum thread_kind kind, unsigned flags)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
	if (!ctx)
		return -ENOMEM;
	struct sandbox_fds fds = { 3, 4, 5, 6 };
	int e = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
	if (!e)
		e = build(ctx, kind, &fds, flags);
	int fd = e ? -1 : memfd_create("ember-bpf", MFD_CLOEXEC);
	if (!e && fd < 0)
		e = -errno;
	if (!e)
		e = seccomp_export_bpf(ctx, fd);
	off_t size = e ? 0 : lseek(fd, 0, SEEK_END);
	if (fd >= 0)
		close(fd);
	seccomp_release(ctx);
	return e ? e : (int)(size / 8);
}

/* ---- threads --------------------------------------------------------------------- */

struct start {
	enum thread_kind kind;
	struct sandbox_fds fds;
	const char *name;
	void *(*fn)(void *);
	void *arg;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int state;          /* 0 starting, 1 filtered, -errno failed */
};

static void *start_thread(void *p)
{
	struct start *s = p;
	void *(*fn)(void *) = s->fn;
	void *arg = s->arg;
	pthread_setname_np(pthread_self(), s->name);
	int r = sandbox_enter(s->kind, &s->fds, s->name);
	pthread_mutex_lock(&s->lock);
	s->state = r ? r : 1;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);   /* s (the creator's) is gone from here */
	return r ? NULL : fn(arg);
}

/* Filters stack: a thread started by a filtered one stays under its
 * creator's filter too, so it could never do more than its creator. The
 * threads started once filters are in (a snapshot, a migration, the vCPUs
 * of a VM built after a reboot) come from the spawner instead: a thread
 * started in sandbox_setup, before any filter, that does nothing but start
 * threads, under a filter that allows that and every kind's list but
 * main's. One request at a time. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool ready, running;    /* it started; its filter is in */
	struct start *req;      /* the request waiting to be served, or NULL */
	pthread_t *out;
	int result;             /* the last request's pthread_create */
	unsigned long served;   /* requests served */
} spawner = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static void *spawner_main(void *unused)
{
	(void)unused;
	pthread_setname_np(pthread_self(), "spawner");
	int r = install(SPAWNER, NULL, "spawner");
	pthread_mutex_lock(&spawner.lock);
	spawner.ready = true;
	spawner.running = r == 0;
	pthread_cond_broadcast(&spawner.cond);
	while (spawner.running) {
		while (!spawner.req)
			pthread_cond_wait(&spawner.cond, &spawner.lock);
		spawner.result = pthread_create(spawner.out, NULL, start_thread, spawner.req);
		spawner.req = NULL;
		spawner.served++;
		pthread_cond_broadcast(&spawner.cond);
	}
	pthread_mutex_unlock(&spawner.lock);
	return NULL;
}

static int spawner_start(void)
{
	pthread_t t;
	int r = pthread_create(&t, NULL, spawner_main, NULL);
	if (r)
		return -r;
	pthread_detach(t);
	pthread_mutex_lock(&spawner.lock);
	while (!spawner.ready)
		pthread_cond_wait(&spawner.cond, &spawner.lock);
	r = spawner.running ? 0 : -EPERM;   /* install() said why */
	pthread_mutex_unlock(&spawner.lock);
	return r;
}

/* pthread_create, by this thread or (when it is filtered) the spawner. */
static int create(pthread_t *t, struct start *s)
{
	if (thread_kind < 0)
		return pthread_create(t, NULL, start_thread, s);
	pthread_mutex_lock(&spawner.lock);
	while (spawner.running && spawner.req)
		pthread_cond_wait(&spawner.cond, &spawner.lock);
	int r = EAGAIN;
	if (spawner.running) {
		unsigned long ticket = spawner.served + 1;
		spawner.req = s;
		spawner.out = t;
		pthread_cond_broadcast(&spawner.cond);
		while (spawner.served < ticket)
			pthread_cond_wait(&spawner.cond, &spawner.lock);
		r = spawner.result;
	}
	pthread_mutex_unlock(&spawner.lock);
	return r;
}

int sandbox_thread_create(pthread_t *t, enum thread_kind kind, const struct sandbox_fds *fds,
			  const char *name, void *(*fn)(void *), void *arg)
{
	struct start s = { .kind = kind, .fds = *fds, .name = name, .fn = fn, .arg = arg };
	pthread_mutex_init(&s.lock, NULL);
	pthread_cond_init(&s.cond, NULL);
	int r = create(t, &s);
	if (r == 0) {
		pthread_mutex_lock(&s.lock);
		while (!s.state)
			pthread_cond_wait(&s.cond, &s.lock);
		pthread_mutex_unlock(&s.lock);
		if (s.state < 0) {
			pthread_join(*t, NULL);
			r = -s.state;
		}
	}
	pthread_mutex_destroy(&s.lock);
	pthread_cond_destroy(&s.cond);
	return -r;
}

/* ---- names, tests, listings ------------------------------------------------------- */

const char *sandbox_kind_name(enum thread_kind kind)
{
	return kind < THREAD_KINDS ? sc_kinds[kind].name : "?";
}

int sandbox_kind_lookup(const char *name)
{
	for (int k = 0; k < THREAD_KINDS; k++)
		if (!strcmp(name, sc_kinds[k].name))
			return k;
	return -1;
}

void sandbox_test_violate(bool ioctl_variant, int fd)
{
	const char *what;
	int r;
	if (ioctl_variant) {
		what = "ioctl KVM_CREATE_IRQCHIP";
		r = ioctl(fd, KVM_CREATE_IRQCHIP, 0);
	} else {
		static char *const argv[] = { "ember-seccomp-test", NULL };
		what = "execve";
		r = execve("/nonexistent/ember-seccomp-test", argv, argv + 1);
	}
	log_warn("seccomp test: %s on thread %s was let through (returned %d: %s)", what,
		 thread_name[0] ? thread_name : "?", r, r < 0 ? strerror(errno) : "ok");
}

/* One line per system call: its argument conditions merged. */
static void print_kind(FILE *f, enum thread_kind kind, unsigned flags)
{
	const struct sc_group *groups[SC_MAX_GROUPS * 2 + 4];
	unsigned ng = 0;
	for (const struct sc_group *const *g = sc_kinds[kind].groups; *g; g++)
		groups[ng++] = *g;
	if (kind == THREAD_MAIN && (flags & SANDBOX_REBUILD)) {
		groups[ng++] = &sc_group_rebuild;
		groups[ng++] = &sc_group_spawn;
		for (const struct sc_group *const *g = sc_kinds[THREAD_VCPU].groups; *g; g++)
			groups[ng++] = *g;
	}
	if (sc_group_sanitizer)
		groups[ng++] = sc_group_sanitizer;
	if (sc_group_sanitizer_main && kind == THREAD_MAIN)
		groups[ng++] = sc_group_sanitizer_main;
	bool rebuild = kind == THREAD_MAIN && (flags & SANDBOX_REBUILD);
	fprintf(f, "%s: %s\n", sc_kinds[kind].name, sc_kinds[kind].what);
	/* Names in order; each printed once with all its conditions. */
	const char *last = "";
	for (;;) {
		const char *next = NULL;
		for (unsigned g = 0; g < ng; g++)
			for (unsigned i = 0; i < groups[g]->n; i++) {
				const char *n = groups[g]->rules[i].name;
				if (strcmp(n, last) > 0 && (!next || strcmp(n, next) < 0))
					next = n;
			}
		if (!next)
			break;
		bool any = false;
		unsigned nitems = 0;
		char items[128][64];
		fprintf(f, "  %s", next);
		for (unsigned g = 0; g < ng; g++)
			for (unsigned i = 0; i < groups[g]->n; i++) {
				const struct sc_rule *r = &groups[g]->rules[i];
				if (strcmp(r->name, next))
					continue;
				if (!r->what) {
					any = true;
					continue;
				}
				/* With rebuild, main's VM and vCPU checks take any fd. */
				static const char *const on[] = { [SC_FD_KVM] = " on /dev/kvm", [SC_FD_VM] = " on the VM",
								  [SC_FD_VCPU] = " on its vCPU" };
				unsigned sym = r->cmp[0].sym;
				bool named = r->nr == SCMP_SYS(ioctl) && r->cmp[0].arg == 0 && sym >= SC_FD_KVM &&
					     sym <= SC_FD_VCPU && (!rebuild || sym == SC_FD_KVM);
				char item[64];
				snprintf(item, sizeof(item), "%s%s", r->what, named ? on[sym] : "");
				bool seen = false;
				for (unsigned j = 0; j < nitems && !seen; j++)
					seen = !strcmp(items[j], item);
				if (seen || nitems == 128)
					continue;
				memcpy(items[nitems], item, sizeof(item));
				fprintf(f, "%s%s", nitems++ ? ", " : ": ", item);
			}
		bool listed = nitems > 0;
		if (any && listed)
			fprintf(f, " (and any arguments)");
		fprintf(f, "\n");
		last = next;
	}
}

void sandbox_print(FILE *f, unsigned flags)
{
	for (int k = 0; k < THREAD_KINDS; k++)
		print_kind(f, (enum thread_kind)k, flags);
}
