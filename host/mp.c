/* mp — see mp.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linli/error.h"
#include "mp.h"

const msgpack_object *mp_get(const msgpack_object *m, const char *key)
{
	if (!m || m->type != MSGPACK_OBJECT_MAP)
		return NULL;
	size_t n = strlen(key);
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object *k = &m->via.map.ptr[i].key;
		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
		    (!n || memcmp(k->via.str.ptr, key, n) == 0))
			return &m->via.map.ptr[i].val;
	}
	return NULL;
}

bool mp_eq(const msgpack_object *o, const char *s)
{
	size_t n = strlen(s);
	return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
	       (!n || memcmp(o->via.str.ptr, s, n) == 0);
}

char *mp_strdup(const msgpack_object *o)
{
	if (!o || o->type != MSGPACK_OBJECT_STR)
		return NULL;
	char *s = malloc(o->via.str.size + 1);
	if (!s)
		return NULL;
	if (o->via.str.size) /* msgpack-c gives an empty string a NULL pointer */
		memcpy(s, o->via.str.ptr, o->via.str.size);
	s[o->via.str.size] = '\0';
	return s;
}

void mp_copy_str(const msgpack_object *o, char *out, size_t n)
{
	if (!n)
		return;
	if (o && o->type == MSGPACK_OBJECT_STR)
		snprintf(out, n, "%.*s", (int)o->via.str.size, o->via.str.ptr);
	else
		out[0] = '\0';
}

/* ---- mp_check ---- */

/*
 * Formats 0xc4..0xdb that are not containers: the width of their length field
 * (`len`, 0 for none) and the bytes that follow it besides the length's (`fixed`).
 */
static const struct {
	uint8_t len, fixed;
	const char *name;
} fmt_c4[24] = {
    {1, 0, "bin 8"},	  {2, 0, "bin 16"},   {4, 0, "bin 32"},	  {1, 1, "ext 8"},
    {2, 1, "ext 16"},	  {4, 1, "ext 32"},   {0, 4, "float 32"}, {0, 8, "float 64"},
    {0, 1, "uint 8"},	  {0, 2, "uint 16"},  {0, 4, "uint 32"},  {0, 8, "uint 64"},
    {0, 1, "int 8"},	  {0, 2, "int 16"},   {0, 4, "int 32"},	  {0, 8, "int 64"},
    {0, 2, "fixext 1"},	  {0, 3, "fixext 2"}, {0, 5, "fixext 4"}, {0, 9, "fixext 8"},
    {0, 17, "fixext 16"}, {1, 0, "str 8"},    {2, 0, "str 16"},	  {4, 0, "str 32"},
};

struct walk {
	const uint8_t *base, *end;
	unsigned max_depth, flags;
	char *err;
	size_t errlen;
};

__attribute__((format(printf, 3, 4))) static const uint8_t *
walk_fail(struct walk *w, const uint8_t *at, const char *fmt, ...)
{
	if (!w->err || !w->errlen)
		return NULL;
	int n = snprintf(w->err, w->errlen, "byte %zu: ", (size_t)(at - w->base));
	if (n >= 0 && (size_t)n < w->errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(w->err + n, w->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return NULL;
}

static uint64_t be(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static bool is_str(uint8_t c)
{
	return (c >= 0xa0 && c <= 0xbf) || (c >= 0xd9 && c <= 0xdb);
}

/* The end of the object at p (nested `depth` containers deep), or NULL with w->err filled. */
static const uint8_t *walk(struct walk *w, const uint8_t *p, unsigned depth, bool key)
{
	const uint8_t *at = p;
	if (p >= w->end)
		return walk_fail(w, at, "truncated: an object expected, no bytes remain");
	uint8_t c = *p++;
	if (key && (w->flags & MP_STR_KEYS) && !is_str(c))
		return walk_fail(w, at, "a map key is not a string (byte 0x%02x)", c);
	if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3)
		return p; /* fixint, nil, false, true */
	if (c == 0xc1)
		return walk_fail(w, at, "byte 0xc1 is never used in MessagePack");
	uint64_t n = 0, count = 0;
	bool map = false, cont = false;
	const char *what;
	if (c <= 0x8f) {
		cont = map = true, count = c & 0x0f, what = "fixmap";
	} else if (c <= 0x9f) {
		cont = true, count = c & 0x0f, what = "fixarray";
	} else if (c <= 0xbf) {
		n = c & 0x1f, what = "fixstr";
	} else if (c >= 0xdc) { /* array 16/32, map 16/32 */
		unsigned wd = (c == 0xdc || c == 0xde) ? 2 : 4;
		map = c >= 0xde;
		cont = true;
		what = map ? (wd == 2 ? "map 16" : "map 32") : (wd == 2 ? "array 16" : "array 32");
		if ((size_t)(w->end - p) < wd)
			return walk_fail(w, at, "truncated %s header", what);
		count = be(p, wd);
		p += wd;
	} else {
		unsigned wd = fmt_c4[c - 0xc4].len;
		what = fmt_c4[c - 0xc4].name;
		if ((size_t)(w->end - p) < wd)
			return walk_fail(w, at, "truncated %s header", what);
		n = be(p, wd) + fmt_c4[c - 0xc4].fixed;
		p += wd;
	}
	size_t left = (size_t)(w->end - p);
	if (!cont) {
		if (n > left)
			return walk_fail(w, at, "%s %s %llu bytes, %zu remain", what,
					 c >= 0xca && c <= 0xd8 ? "needs" : "declares",
					 (unsigned long long)n, left);
		return p + n;
	}
	unsigned max = w->max_depth < MP_MAX_DEPTH ? w->max_depth : MP_MAX_DEPTH;
	if (depth + 1 > max)
		return walk_fail(w, at, "nested deeper than %u levels", max);
	/* Each element takes at least one byte, each map entry (key and value) two. */
	uint64_t items = map ? 2 * count : count;
	if (items > left)
		return walk_fail(w, at, "%s declares %llu %s, only %zu bytes remain", what,
				 (unsigned long long)count, map ? "entries" : "elements", left);
	for (uint64_t i = 0; i < items && p; i++)
		p = walk(w, p, depth + 1, map && i % 2 == 0);
	return p;
}

int mp_check_next(const void *buf, size_t len, unsigned max_depth, unsigned flags, size_t *used,
		  char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = '\0';
	const uint8_t *b = buf;
	struct walk w = {b, b + len, max_depth, flags, err, errlen};
	if (!buf || !len) {
		walk_fail(&w, b, "no bytes: an object expected");
		return LINLI_EPROTO;
	}
	const uint8_t *q = walk(&w, b, 0, false);
	if (!q)
		return LINLI_EPROTO;
	*used = (size_t)(q - b);
	return 0;
}

int mp_check(const void *buf, size_t len, unsigned max_depth, unsigned flags, char *err,
	     size_t errlen)
{
	size_t used = 0;
	int rc = mp_check_next(buf, len, max_depth, flags, &used, err, errlen);
	if (rc == 0 && used != len) {
		if (err && errlen)
			snprintf(err, errlen, "byte %zu: %zu bytes after the object", used,
				 len - used);
		return LINLI_EPROTO;
	}
	return rc;
}

int mp_map_value(const void *buf, size_t len, const char *key, const void **val, size_t *vlen)
{
	const uint8_t *p = buf, *end = p + len;
	struct walk w = {p, end, MP_MAX_DEPTH, 0, NULL, 0};
	if (!buf || !len)
		return LINLI_EPROTO;
	uint64_t count;
	uint8_t c = *p++;
	if (c >= 0x80 && c <= 0x8f) {
		count = c & 0x0f;
	} else if (c == 0xde || c == 0xdf) {
		unsigned wd = c == 0xde ? 2 : 4;
		if ((size_t)(end - p) < wd)
			return LINLI_EPROTO;
		count = be(p, wd);
		p += wd;
	} else {
		return LINLI_EPROTO;
	}
	size_t klen = strlen(key);
	for (uint64_t i = 0; i < count; i++) {
		const uint8_t *k = p, *v = walk(&w, p, 1, true);
		if (!v)
			return LINLI_EPROTO;
		const uint8_t *vend = walk(&w, v, 1, false);
		if (!vend)
			return LINLI_EPROTO;
		/* a string key: fixstr, str 8/16/32 — its bytes after the header */
		size_t hdr = *k <= 0xbf && *k >= 0xa0 ? 1 : *k == 0xd9 ? 2 : *k == 0xda ? 3
				: *k == 0xdb ? 5 : 0;
		if (hdr && (size_t)(v - k) == hdr + klen && memcmp(k + hdr, key, klen) == 0) {
			*val = v;
			*vlen = (size_t)(vend - v);
			return 0;
		}
		p = vend;
	}
	return LINLI_ENOENT;
}
