#include "test_runner.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "vm.h"

#define TAIL_LINES 20

enum test_verdict test_classify(int status, bool timed_out, double timeout_s, char *why, size_t len)
{
	if (timed_out) {
		snprintf(why, len, "timeout: no result after %g s", timeout_s);
		return TEST_FAIL;
	}
	if (WIFSIGNALED(status)) {
		snprintf(why, len, "ember was killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
		return TEST_FAIL;
	}
	if (!WIFEXITED(status)) {
		snprintf(why, len, "ember ended oddly (status 0x%x)", status);
		return TEST_FAIL;
	}
	int code = WEXITSTATUS(status);
	switch (code) {
	case 1:
		return TEST_PASS;
	case 3:
		snprintf(why, len, "the test reported failure (debug-exit 1)");
		return TEST_FAIL;
	case 77:
		snprintf(why, len, "the test skipped itself (debug-exit 38)");
		return TEST_SKIP;
	case EXIT_GUEST_OFF:
		snprintf(why, len, "the guest powered off or reset without a result on the debug-exit port");
		return TEST_FAIL;
	case EXIT_USAGE:
		snprintf(why, len, "ember refused the kernel or options (exit 2)");
		return TEST_FAIL;
	case EXIT_GUEST_CRASH:
		snprintf(why, len, "the guest crashed: triple fault or KVM error (exit 4)");
		return TEST_FAIL;
	case EXIT_VMM_ERROR:
		snprintf(why, len, "ember failed (exit 6)");
		return TEST_FAIL;
	case EXIT_SECCOMP:
		snprintf(why, len, "a seccomp filter stopped ember (exit 8): a system call it does not allow");
		return TEST_FAIL;
	default:
		if (code & 1)
			snprintf(why, len, "bad debug-exit code %d (exit %d)", code >> 1, code);
		else
			snprintf(why, len, "ember exited %d", code);
		return TEST_FAIL;
	}
}

struct job {
	const char *kernel;
	pid_t pid;                    /* 0 once reaped */
	int pidfd;
	int result_fd;                /* read end: the child's exit code, before its teardown */
	int out_fd;                   /* memfd with the child's stdout and stderr */
	uint64_t start_ns, deadline_ns;
	bool timed_out;
	bool reported;                /* verdict printed; the child may still be tearing down */
};

struct runner {
	unsigned jobs;
	double timeout_s;
	bool tap, verbose;
	const char *memory, *cpus, *cmdline, *cpu;
	unsigned passed, failed, skipped, done;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: ember test [options] KERNEL...\n"
		   "\n"
		   "Runs each kernel in its own VM (ember run --test-devices), several at once,\n"
		   "and prints one line per kernel and a closing 'N passed, N failed, N skipped'.\n"
		   "A kernel passes when it writes 0 to the debug-exit port (kvm-unit-tests' exit).\n"
		   "\n"
		   "  -j, --jobs N         VMs at once (default: the number of host CPUs)\n"
		   "  --timeout S          seconds each kernel may run (default 30)\n"
		   "  --tap                TAP output\n"
		   "  -v, --verbose        print every kernel's output, not only a failure's\n"
		   "  --memory SIZE        guest RAM of each VM (default 64M)\n"
		   "  --cpus N             vCPUs of each VM (default 2)\n"
		   "  --cmdline STR        arguments for each kernel\n"
		   "  --cpu SPEC           as ember run --cpu\n"
		   "\n"
		   "Exit status: 0 when no kernel failed, 1 when one did, 2 for bad usage.\n");
}

static int spawn(struct runner *r, struct job *j)
{
	char name[64];
	snprintf(name, sizeof(name), "ember-test-%s", strrchr(j->kernel, '/') ? strrchr(j->kernel, '/') + 1 : j->kernel);
	j->out_fd = memfd_create(name, MFD_CLOEXEC);
	if (j->out_fd < 0)
		return -errno;
	int result[2];
	if (pipe2(result, O_CLOEXEC) < 0)
		return -errno;
	const char *argv[20];
	int n = 0;
	argv[n++] = "ember";
	argv[n++] = "run";
	argv[n++] = "--kernel";
	argv[n++] = j->kernel;
	argv[n++] = "--test-devices";
	argv[n++] = "--result-fd";
	argv[n++] = "3";
	argv[n++] = "--memory";
	argv[n++] = r->memory;
	argv[n++] = "--cpus";
	argv[n++] = r->cpus;
	if (r->cmdline) {
		argv[n++] = "--cmdline";
		argv[n++] = r->cmdline;
	}
	if (r->cpu) {
		argv[n++] = "--cpu";
		argv[n++] = r->cpu;
	}
	argv[n] = NULL;
	j->start_ns = now_ns();
	j->deadline_ns = j->start_ns + (uint64_t)(r->timeout_s * 1e9);
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);
		if (null < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(j->out_fd, STDOUT_FILENO) < 0 ||
		    dup2(j->out_fd, STDERR_FILENO) < 0 || dup2(result[1], 3) < 0)
			_exit(127);
		execv("/proc/self/exe", (char *const *)argv);
		dprintf(STDERR_FILENO, "ember test: exec: %s\n", strerror(errno));
		_exit(127);
	}
	close(result[1]);
	j->result_fd = result[0];
	j->pid = pid;
	j->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (j->pidfd < 0)
		return -errno;
	return 0;
}

/* The last lines of the child's output, each prefixed "# ". */
static void print_tail(int fd, unsigned max_lines)
{
	off_t size = lseek(fd, 0, SEEK_END);
	if (size <= 0)
		return;
	char *buf = malloc((size_t)size + 1);
	if (!buf)
		return;
	ssize_t got = pread(fd, buf, (size_t)size, 0);
	if (got <= 0) {
		free(buf);
		return;
	}
	buf[got] = '\0';
	char *start = buf + got;
	unsigned lines = 0;
	if (start > buf && start[-1] == '\n')
		start--;
	while (start > buf && lines < max_lines) {
		start--;
		if (*start == '\n')
			lines++;
	}
	if (*start == '\n')
		start++;
	for (char *line = start; line && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		size_t l = strlen(line);
		if (l && line[l - 1] == '\r')
			line[l - 1] = '\0';
		printf("#   %s\n", line);
		line = nl ? nl + 1 : NULL;
	}
	free(buf);
}

static void finish(struct runner *r, struct job *j, int status)
{
	double ms = (double)(now_ns() - j->start_ns) / 1e6;
	char why[256] = "";
	enum test_verdict v = test_classify(status, j->timed_out, r->timeout_s, why, sizeof(why));
	r->done++;
	const char *name = j->kernel;
	if (r->tap) {
		if (v == TEST_PASS)
			printf("ok %u - %s # time=%.1fms\n", r->done, name, ms);
		else if (v == TEST_SKIP)
			printf("ok %u - %s # SKIP %s\n", r->done, name, why);
		else
			printf("not ok %u - %s: %s\n", r->done, name, why);
	} else {
		static const char *const word[] = { "PASS", "FAIL", "SKIP" };
		if (v == TEST_PASS)
			printf("%s %s (%.1f ms)\n", word[v], name, ms);
		else
			printf("%s %s: %s (%.1f ms)\n", word[v], name, why, ms);
	}
	if (v == TEST_FAIL || r->verbose)
		print_tail(j->out_fd, r->verbose ? 100000 : TAIL_LINES);
	fflush(stdout);
	if (v == TEST_PASS)
		r->passed++;
	else if (v == TEST_SKIP)
		r->skipped++;
	else
		r->failed++;
	close(j->out_fd);
	close(j->result_fd);
	j->out_fd = j->result_fd = -1;
	j->reported = true;
}

/* Reap a child that has ended: its verdict, unless its result came already. */
static void reap(struct runner *r, struct job *j)
{
	int status;
	if (waitpid(j->pid, &status, WNOHANG) != j->pid)
		return;
	if (!j->reported)
		finish(r, j, status);
	close(j->pidfd);
	j->pid = 0;
}

/* The child's exit code arrived on its result pipe: the guest is done, and
 * the kernel's VM teardown (tens of ms of waiting on this host) need not
 * hold up the verdict or the next VM. */
static void read_result(struct runner *r, struct job *j)
{
	uint8_t code;
	ssize_t n = read(j->result_fd, &code, 1);
	if (n == 1) {
		finish(r, j, W_EXITCODE(code, 0));
	} else if (n == 0) {
		close(j->result_fd);   /* ended without a result: reap() says how */
		j->result_fd = -1;
	}
}

static int run_all(struct runner *r, char **kernels, unsigned n)
{
	struct job *jobs = calloc(n, sizeof(*jobs));
	struct pollfd *pfd = calloc(2 * (size_t)n, sizeof(*pfd));
	if (!jobs || !pfd) {
		free(jobs);
		free(pfd);
		return -ENOMEM;
	}
	unsigned next = 0, running = 0, alive = 0;
	int ret = 0;
	while (next < n || alive) {
		while (running < r->jobs && next < n) {
			struct job *j = &jobs[next];
			*j = (struct job){ .kernel = kernels[next++], .out_fd = -1, .result_fd = -1, .pidfd = -1 };
			if ((ret = spawn(r, j))) {
				fprintf(stderr, "ember: error: test %s: %s\n", j->kernel, strerror(-ret));
				goto out;
			}
			running++;
			alive++;
		}
		uint64_t now = now_ns(), first = UINT64_MAX;
		unsigned np = 0;
		for (unsigned i = 0; i < next; i++) {
			struct job *j = &jobs[i];
			if (!j->pid)
				continue;
			pfd[np++] = (struct pollfd){ .fd = j->pidfd, .events = POLLIN };
			if (j->result_fd >= 0)
				pfd[np++] = (struct pollfd){ .fd = j->result_fd, .events = POLLIN };
			if (!j->reported && !j->timed_out && j->deadline_ns < first)
				first = j->deadline_ns;
		}
		int wait_ms = first == UINT64_MAX ? -1 : first <= now ? 0 : (int)((first - now) / 1000000 + 1);
		if (poll(pfd, np, wait_ms) < 0 && errno != EINTR) {
			ret = -errno;
			goto out;
		}
		now = now_ns();
		for (unsigned i = 0; i < next; i++) {
			struct job *j = &jobs[i];
			if (!j->pid)
				continue;
			bool was_reported = j->reported;
			if (!j->reported && !j->timed_out && now >= j->deadline_ns) {
				j->timed_out = true;
				kill(j->pid, SIGKILL);
			}
			if (j->result_fd >= 0 && !j->timed_out) {
				struct pollfd one = { .fd = j->result_fd, .events = POLLIN };
				if (poll(&one, 1, 0) > 0)
					read_result(r, j);
			}
			reap(r, j);
			if (!was_reported && j->reported)
				running--;
			if (!j->pid)
				alive--;
		}
	}
out:
	for (unsigned i = 0; i < next; i++) {
		struct job *j = &jobs[i];
		if (j->pid) {
			kill(j->pid, SIGKILL);
			waitpid(j->pid, NULL, 0);
			close(j->pidfd);
		}
		if (j->out_fd >= 0)
			close(j->out_fd);
		if (j->result_fd >= 0)
			close(j->result_fd);
	}
	free(jobs);
	free(pfd);
	return ret;
}

enum { OPT_TIMEOUT = 0x100, OPT_TAP, OPT_MEMORY, OPT_CPUS, OPT_CMDLINE, OPT_CPU };

static const struct option test_options[] = {
	{ "jobs", required_argument, NULL, 'j' },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "tap", no_argument, NULL, OPT_TAP },
	{ "verbose", no_argument, NULL, 'v' },
	{ "memory", required_argument, NULL, OPT_MEMORY },
	{ "cpus", required_argument, NULL, OPT_CPUS },
	{ "cmdline", required_argument, NULL, OPT_CMDLINE },
	{ "cpu", required_argument, NULL, OPT_CPU },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int test_usage_error(const char *what, const char *arg)
{
	fprintf(stderr, "ember: error: test: %s%s%s\n", what, arg ? " " : "", arg ? arg : "");
	return EXIT_USAGE;
}

int cmd_test(int argc, char **argv)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	struct runner r = { .jobs = ncpu > 0 ? (unsigned)ncpu : 1, .timeout_s = 30,
			    .memory = "64M", .cpus = "2" };
	unsigned u;
	uint64_t size;
	optind = 1;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, ":j:vh", test_options, NULL)) != -1) {
		switch (c) {
		case 'j':
			if (parse_uint(optarg, 1, 1024, &u))
				return test_usage_error("-j needs a number from 1 to 1024, not", optarg);
			r.jobs = u;
			break;
		case OPT_TIMEOUT: {
			char *end;
			r.timeout_s = strtod(optarg, &end);
			if (*end || end == optarg || !(r.timeout_s > 0 && r.timeout_s < 1e6))
				return test_usage_error("--timeout needs a positive number of seconds, not", optarg);
			break;
		}
		case OPT_TAP: r.tap = true; break;
		case 'v': r.verbose = true; break;
		case OPT_MEMORY:
			if (parse_size(optarg, &size))
				return test_usage_error("--memory: not a size:", optarg);
			r.memory = optarg;
			break;
		case OPT_CPUS:
			if (parse_uint(optarg, 1, 4096, &u))
				return test_usage_error("--cpus: not a number from 1:", optarg);
			r.cpus = optarg;
			break;
		case OPT_CMDLINE: r.cmdline = optarg; break;
		case OPT_CPU: r.cpu = optarg; break;
		case 'h':
			usage(stdout);
			return 0;
		case ':':
			return test_usage_error(argv[optind - 1], "needs a value");
		default:
			return test_usage_error("unknown option", argv[optind - 1]);
		}
	}
	unsigned n = (unsigned)(argc - optind);
	if (n == 0)
		return test_usage_error("no kernels given (see ember test --help)", NULL);
	if (r.tap)
		printf("TAP version 13\n1..%u\n", n);
	fflush(stdout);
	uint64_t t0 = now_ns();
	int ret = run_all(&r, argv + optind, n);
	if (ret)
		return EXIT_VMM_ERROR;
	double s = (double)(now_ns() - t0) / 1e9;
	printf("%s%u passed, %u failed, %u skipped\n", r.tap ? "# " : "", r.passed, r.failed, r.skipped);
	printf("# %u kernels in %.3f s with -j %u\n", n, s, r.jobs);
	return r.failed ? 1 : 0;
}
