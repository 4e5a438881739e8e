/*
 * log — one line per event on stderr: `time level subsystem: message`.
 *
 * Owns the process-wide log level. Safe to call from any thread: each line is
 * formatted in full and written with one write(2). Never logs secrets; callers
 * must not pass passwords or tokens.
 */
#ifndef LINLI_LOG_H
#define LINLI_LOG_H

#include <stdarg.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_set_level(enum log_level lvl);
enum log_level log_get_level(void);
/* Parse "error", "warn", "info", "debug"; returns -1 on an unknown name. */
int log_level_parse(const char *name);
const char *log_level_name(enum log_level lvl);

void log_msg(enum log_level lvl, const char *subsys, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void log_vmsg(enum log_level lvl, const char *subsys, const char *fmt, va_list ap);

#define log_error(sub, ...) log_msg(LOG_ERROR, sub, __VA_ARGS__)
#define log_warn(sub, ...) log_msg(LOG_WARN, sub, __VA_ARGS__)
#define log_info(sub, ...) log_msg(LOG_INFO, sub, __VA_ARGS__)
#define log_debug(sub, ...) log_msg(LOG_DEBUG, sub, __VA_ARGS__)

#endif
