/*
 * mp — small helpers over msgpack-c for the kernel's own maps.
 *
 * Packing helpers write key/value pairs; lookup helpers read maps without
 * copying. Nothing here allocates except mp_strdup (caller frees).
 */
#ifndef LINLI_MP_H
#define LINLI_MP_H

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

static inline void mp_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

static inline void mp_kv_str(msgpack_packer *pk, const char *k, const char *v)
{
	mp_str(pk, k);
	if (v)
		mp_str(pk, v);
	else
		msgpack_pack_nil(pk);
}

static inline void mp_kv_int(msgpack_packer *pk, const char *k, int64_t v)
{
	mp_str(pk, k);
	msgpack_pack_int64(pk, v);
}

static inline void mp_kv_uint(msgpack_packer *pk, const char *k, uint64_t v)
{
	mp_str(pk, k);
	msgpack_pack_uint64(pk, v);
}

/* `k` with `v`, or with nil when not `shown` (a counter the caller may not see). */
static inline void mp_kv_uint_if(msgpack_packer *pk, const char *k, uint64_t v, bool shown)
{
	mp_str(pk, k);
	if (shown)
		msgpack_pack_uint64(pk, v);
	else
		msgpack_pack_nil(pk);
}

static inline void mp_kv_bool(msgpack_packer *pk, const char *k, bool v)
{
	mp_str(pk, k);
	if (v)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
}

static inline void mp_kv_double(msgpack_packer *pk, const char *k, double v)
{
	mp_str(pk, k);
	msgpack_pack_double(pk, v);
}

/* The value under string key `key` of map `m`, or NULL (also if m is not a map). */
const msgpack_object *mp_get(const msgpack_object *m, const char *key);

/* Is `o` a string equal to `s`? */
bool mp_eq(const msgpack_object *o, const char *s);

/* A NUL-terminated copy of string `o`, or NULL if `o` is not a string. */
char *mp_strdup(const msgpack_object *o);

/* String `o` into out (n bytes, truncated, always terminated); "" if `o` is not a string. */
void mp_copy_str(const msgpack_object *o, char *out, size_t n);

#endif
