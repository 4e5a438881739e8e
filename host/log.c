/*
 * log — see log.h. The level is an atomic so that SIGHUP reloads can change it
 * while other threads log.
 */
#include "log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic int cur_level = LOG_INFO;

static const char *const names[] = {"error", "warn", "info", "debug"};

void log_set_level(enum log_level lvl) { atomic_store(&cur_level, (int)lvl); }

enum log_level log_get_level(void) { return (enum log_level)atomic_load(&cur_level); }

int log_level_parse(const char *name)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(name, names[i]) == 0)
			return i;
	return -1;
}

const char *log_level_name(enum log_level lvl)
{
	return (unsigned)lvl < 4 ? names[lvl] : "?";
}

void log_vmsg(enum log_level lvl, const char *subsys, const char *fmt, va_list ap)
{
	if ((int)lvl > atomic_load(&cur_level))
		return;
	char line[2048];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = (int)strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
	n += snprintf(line + n, sizeof line - (size_t)n, ".%03ldZ %s %s: ",
		      ts.tv_nsec / 1000000, log_level_name(lvl), subsys);
	if (n < (int)sizeof line) {
		int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
		n = m < 0 ? n : n + m;
	}
	if (n > (int)sizeof line - 2)
		n = (int)sizeof line - 2;
	/* One event, one line: fold embedded newlines. */
	for (int i = 0; i < n; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[n++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, (size_t)n);
	(void)w;
}

void log_msg(enum log_level lvl, const char *subsys, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(lvl, subsys, fmt, ap);
	va_end(ap);
}
