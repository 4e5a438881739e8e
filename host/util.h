/*
 * util — the two small things nearly every kernel file needs: an error
 * message written into the caller's buffer with the code returned (the
 * `return errf(err, errlen, LINLI_EINVAL, "...", ...)` shape every subsystem
 * reports with), and creating a directory with its parents. Holds no state.
 */
#ifndef LINLI_UTIL_H
#define LINLI_UTIL_H

#include <stddef.h>
#include <sys/types.h>

/* Format into err (errlen bytes; NULL or 0: nothing) and return rc. */
__attribute__((format(printf, 4, 5))) int errf(char *err, size_t errlen, int rc,
					       const char *fmt, ...);

/* mkdir -p with `mode` for each directory made. 0, or -1 with errno. */
int mkdirs(const char *path, mode_t mode);

#endif
