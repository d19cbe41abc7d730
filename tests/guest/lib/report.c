/* TAP-ish reporting: "ok N - msg" / "not ok N - msg" and a summary line
 * that also ends the VM. Safe to call from any CPU at CPL0. */
#include "kit_internal.h"

static volatile long tests, failures;

static void vreport(const char *status, const char *suffix, const char *fmt, va_list ap)
{
	console_lock();
	long n = atomic_inc(&tests);
	printf("%s %ld - ", status, n);
	vprintf(fmt, ap);
	printf("%s\n", suffix);
	console_unlock();
}

bool report(bool ok, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (!ok)
		atomic_inc(&failures);
	vreport(ok ? "ok" : "not ok", "", fmt, ap);
	va_end(ap);
	return ok;
}

void report_skip(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport("ok", " # SKIP", fmt, ap);
	va_end(ap);
}

int report_failures(void) { return (int)failures; }

noreturn void report_summary(void)
{
	printf("SUMMARY: %ld tests, %ld failures\n", (long)tests, (long)failures);
	exit(failures ? 1 : 0);
}
