/*
 * mp — small helpers over msgpack-c for the kernel's own maps.
 *
 * Packing helpers write key/value pairs; lookup helpers read maps without
 * copying; mp_check guards msgpack-c's unpacker against the sizes bytes from
 * outside declare. Nothing here allocates except mp_strdup (caller frees).
 */
#ifndef LINLI_MP_H
#define LINLI_MP_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
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

/*
 * msgpack-c's own nesting limit (MSGPACK_EMBED_STACK_SIZE): it refuses deeper
 * input, so no caller of mp_check asks for more.
 */
#define MP_MAX_DEPTH 32

/* mp_check flags */
#define MP_STR_KEYS 0x1u /* every map key, at every depth, must be a string */

/*
 * mp_check — may these bytes go to msgpack-c's unpacker? msgpack-c trusts
 * the sizes a buffer declares: it allocates an array's or map's slots when
 * it reads the header, before the elements, so a 5-byte map32 header asks
 * for 4 billion entries (256 GiB). Every buffer that comes from outside the
 * kernel's own packer (control requests, record bytes, what federation will
 * carry) passes here first.
 *
 * Walks exactly one object spanning all `len` bytes of `buf`, without
 * allocating, and checks each size against the bytes that remain after its
 * header: an array's count (an element takes at least 1 byte), a map's (an
 * entry at least 2), a str/bin/ext length; containers nested at most
 * `max_depth` deep (a map in a map is 2; more than MP_MAX_DEPTH is taken as
 * MP_MAX_DEPTH); never the reserved byte 0xc1; nothing after the object;
 * with MP_STR_KEYS, string keys only. What passes unpacks in at most about
 * 50 bytes of zone per input byte, and the walk is linear in `len`.
 *
 * Returns 0, or LINLI_EPROTO with "byte N: reason" in err (errlen bytes).
 */
int mp_check(const void *buf, size_t len, unsigned max_depth, unsigned flags, char *err,
	     size_t errlen);

/*
 * mp_map_value — in the MessagePack map at buf (len bytes), the value under string key
 * `key`, without unpacking the rest: its bytes in *val and *vlen (one object, for
 * msgpack_unpack). 0; LINLI_ENOENT when the map has no such key; LINLI_EPROTO when buf is
 * not one map or is malformed (it walks as mp_check does, so bytes from outside are safe).
 */
int mp_map_value(const void *buf, size_t len, const char *key, const void **val, size_t *vlen);

/*
 * mp_check_next — mp_check of the first object in buf, for a caller that
 * reads objects one after another (msgpack_unpack_next) or judges trailing
 * bytes itself: what follows the object is not looked at, and *used is set
 * to the object's length.
 */
int mp_check_next(const void *buf, size_t len, unsigned max_depth, unsigned flags, size_t *used,
		  char *err, size_t errlen);

#endif
