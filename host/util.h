/*
 * util — the small things many kernel files need: an error message written
 * into the caller's buffer with the code returned (the `return errf(err,
 * errlen, LINLI_EINVAL, "...", ...)` shape every subsystem reports with), the
 * wall clock in ms (with the test clock's offset, kept by clock.c) and its
 * UTC text, creating a directory with its parents, and untrusted bytes made
 * into bounded, valid UTF-8 text (for the audit log, error messages and
 * logs). Holds no state.
 */
#ifndef LINLI_UTIL_H
#define LINLI_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Format into err (errlen bytes; NULL or 0: nothing) and return rc. */
__attribute__((format(printf, 4, 5))) int errf(char *err, size_t errlen, int rc, const char *fmt,
					       ...);

/*
 * The wall clock: milliseconds since 1970-01-01T00:00:00Z (CLOCK_REALTIME),
 * plus the test clock's offset (clock.h; 0 unless linlid --test-clock was
 * moved). Everything the kernel writes a time into (records, the audit log,
 * the journal, ids, session and lockout expiry) reads it. Logs do not.
 */
int64_t wall_ms(void);

/* ms since the epoch as RFC 3339 UTC text to the second, "2026-11-29T18:31:44Z". */
void utc_text(int64_t ms, char *out, size_t n);

/* mkdir -p with `mode` for each directory made. 0, or -1 with errno. */
int mkdirs(const char *path, mode_t mode);

/*
 * write_file_atomic — `path` holds exactly the len bytes at data afterwards, or what it held
 * before: a temp file beside it (mode), fsync, rename. 0, or LINLI_EIO with err naming the
 * file and why.
 */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, char *err,
		      size_t errlen);

/*
 * The length of the valid UTF-8 character at s (n bytes available): 1..4,
 * or 0 when s[0] does not start one (a stray or truncated sequence, an
 * overlong form, a surrogate, above U+10FFFF).
 */
size_t utf8_char_len(const char *s, size_t n);

/*
 * Write `in` (n bytes, any content) to out (outsz > 0 bytes, always
 * NUL-terminated) as valid UTF-8 text that says what the bytes were: a byte
 * that is not part of a valid character becomes "\xNN", as do NUL, other
 * control characters and DEL. Valid characters are never split: input that
 * does not fit ends in "…". Returns the length written (without the NUL).
 * Escaping is idempotent (a backslash stays as it is), so text that passes
 * several layers that each escape (an error message into the audit log) is
 * never escaped twice.
 */
size_t utf8_escape(char *out, size_t outsz, const char *in, size_t n);

#endif
