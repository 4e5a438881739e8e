/*
 * util — the small things many kernel files need: an error message written
 * into the caller's buffer with the code returned (the `return errf(err,
 * errlen, LINLI_EINVAL, "...", ...)` shape every subsystem reports with), the
 * wall clock in ms and its UTC text, and creating a directory with its
 * parents. Holds no state.
 */
#ifndef LINLI_UTIL_H
#define LINLI_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Format into err (errlen bytes; NULL or 0: nothing) and return rc. */
__attribute__((format(printf, 4, 5))) int errf(char *err, size_t errlen, int rc, const char *fmt,
					       ...);

/* The wall clock: milliseconds since 1970-01-01T00:00:00Z (CLOCK_REALTIME). */
int64_t wall_ms(void);

/* ms since the epoch as RFC 3339 UTC text to the second, "2026-11-29T18:31:44Z". */
void utc_text(int64_t ms, char *out, size_t n);

/* mkdir -p with `mode` for each directory made. 0, or -1 with errno. */
int mkdirs(const char *path, mode_t mode);

#endif
