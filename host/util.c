/* util — see util.h. */
#include "util.h"

#include <errno.h>
#include <unistd.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "clock.h"
#include "linli/error.h"

int errf(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + clock_offset_ms();
}

void utc_text(int64_t ms, char *out, size_t n)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, char *err,
		      size_t errlen)
{
	char tmp[PATH_MAX + 32];
	snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return errf(err, errlen, LINLI_EIO, "cannot write %s: %s", tmp, strerror(errno));
	const char *p = data;
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(fd, p + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	int ok = off == len && fsync(fd) == 0;
	int e = off == len ? errno : errno ? errno : EIO;
	if (close(fd) != 0 && ok) {
		ok = 0;
		e = errno;
	}
	if (!ok || rename(tmp, path) != 0) {
		e = ok ? errno : e;
		unlink(tmp);
		return errf(err, errlen, LINLI_EIO, "cannot write %s: %s", path, strerror(e));
	}
	return 0;
}

int mkdirs(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(buf, mode) != 0 && errno != EEXIST ? -1 : 0;
}

size_t utf8_char_len(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	if (n == 0)
		return 0;
	unsigned c = s[0], cp, min;
	size_t len;
	if (c < 0x80)
		return 1;
	if ((c & 0xE0) == 0xC0)
		len = 2, cp = c & 0x1F, min = 0x80;
	else if ((c & 0xF0) == 0xE0)
		len = 3, cp = c & 0x0F, min = 0x800;
	else if ((c & 0xF8) == 0xF0)
		len = 4, cp = c & 0x07, min = 0x10000;
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t k = 1; k < len; k++) {
		if ((s[k] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[k] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

/* The escaped form of the piece at in[i] (into piece and pl); returns the input bytes it takes. */
static size_t escape_piece(const char *in, size_t n, size_t i, char esc[5], const char **piece,
			   size_t *pl)
{
	unsigned char c = (unsigned char)in[i];
	size_t cl = utf8_char_len(in + i, n - i);
	if (cl == 0 || c < 0x20 || c == 0x7f) {
		snprintf(esc, 5, "\\x%02x", c);
		*piece = esc, *pl = 4;
		return 1;
	}
	*piece = in + i, *pl = cl;
	return cl;
}

size_t utf8_escape(char *out, size_t outsz, const char *in, size_t n)
{
	static const char ellipsis[] = "\xe2\x80\xa6"; /* … */
	const size_t el = sizeof ellipsis - 1;
	char esc[5];
	const char *piece;
	size_t pl, total = 0, o = 0;
	if (!outsz)
		return 0;
	for (size_t i = 0; i < n; total += pl)
		i += escape_piece(in, n, i, esc, &piece, &pl);
	bool cut = total > outsz - 1;
	size_t room = !cut ? outsz - 1 : outsz - 1 > el ? outsz - 1 - el : 0;
	for (size_t i = 0; i < n;) {
		size_t take = escape_piece(in, n, i, esc, &piece, &pl);
		if (o + pl > room)
			break;
		memcpy(out + o, piece, pl);
		o += pl;
		i += take;
	}
	if (cut && o + el <= outsz - 1) {
		memcpy(out + o, ellipsis, el);
		o += el;
	}
	out[o] = '\0';
	return o;
}
