/* Start-to-result and start-to-exit times of a command, for bench/kut.sh.
 * Runs CMD N times (stdin /dev/null, output discarded unless -o), with fd 3
 * the write end of a pipe: a VMM that writes its exit code there before
 * tearing the VM down (ember run --result-fd 3, bare_kvm) gives a result
 * time apart from its exit time; for others (QEMU) the two are the same.
 * Prints one line: "result_ms MEDIAN MIN exit_ms MEDIAN MIN status S"
 * where S is the exit status of the runs (or "mixed").
 * Usage: timeit [-o FILE] N CMD [ARG...] */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
	const char *out = "/dev/null";
	int a = 1;
	if (argc > 2 && !strcmp(argv[1], "-o")) {
		out = argv[2];
		a = 3;
	}
	if (argc - a < 2 || atoi(argv[a]) < 1) {
		fprintf(stderr, "usage: timeit [-o FILE] N CMD [ARG...]\n");
		return 2;
	}
	int n = atoi(argv[a]);
	double *res = calloc((size_t)n, sizeof(double)), *ex = calloc((size_t)n, sizeof(double));
	int status0 = -1;
	bool mixed = false;
	for (int i = 0; i < n; i++) {
		int p[2];
		if (pipe2(p, O_CLOEXEC) < 0)
			return 6;
		uint64_t t0 = now_ns();
		pid_t pid = fork();
		if (pid == 0) {
			int null = open("/dev/null", O_RDONLY);
			int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
			if (null < 0 || o < 0 || dup2(null, 0) < 0 || dup2(o, 1) < 0 || dup2(o, 2) < 0 ||
			    dup2(p[1], 3) < 0)
				_exit(127);
			execvp(argv[a + 1], argv + a + 1);
			_exit(127);
		}
		close(p[1]);
		struct pollfd pf = { .fd = p[0], .events = POLLIN };
		uint64_t tr = 0;
		char c;
		if (poll(&pf, 1, -1) == 1 && read(p[0], &c, 1) == 1)
			tr = now_ns();
		int st;
		waitpid(pid, &st, 0);
		uint64_t te = now_ns();
		close(p[0]);
		res[i] = (double)((tr ? tr : te) - t0) / 1e6;
		ex[i] = (double)(te - t0) / 1e6;
		int s = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		if (status0 >= 0 && s != status0)
			mixed = true;
		status0 = s;
	}
	double rmed = median(res, n), emed = median(ex, n);
	printf("result_ms %.2f %.2f exit_ms %.2f %.2f status %s%d\n", rmed, res[0], emed, ex[0],
	       mixed ? "mixed:" : "", status0);
	return 0;
}
