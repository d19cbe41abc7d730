#include "log.h"

#include <stdarg.h>
#include <stdio.h>

enum log_level log_level = LOG_WARN;

void log_msg(enum log_level level, const char *fmt, ...)
{
	if (level > log_level)
		return;
	static const char *const prefix[] = { "error: ", "warning: ", "", "debug: " };
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	/* One write per line so lines from several threads do not interleave. */
	fprintf(stderr, "ember: %s%s\n", prefix[level], buf);
}
