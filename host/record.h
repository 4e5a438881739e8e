/*
 * record — the kernel's implementation of SDK records (linli/record.h).
 *
 * Owns the in-memory form of a record: a small tree of maps (fields in
 * insertion order) and arrays, converted from and to MessagePack at the
 * edges (record_from_mp, record_pack) and to JSON for people. Plugins reach
 * these functions only through the function table (host/sdkapi.c), whose
 * members have exactly these signatures and are documented in linli/api.h.
 * Never touches kernel state: any thread may use its own records. Never
 * accepts a record that could not be packed back unchanged (non-string keys,
 * extension types, invalid UTF-8 are refused with the field's path).
 */
#ifndef LINLI_RECORD_KERNEL_H
#define LINLI_RECORD_KERNEL_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "linli/record.h"

linli_record *record_new(void);
linli_record *record_new_array(void);
int record_free(linli_record *r);
int record_copy(const linli_record *r, linli_record **out);
int record_kind(const linli_record *r);
size_t record_count(const linli_record *r);
int record_key(const linli_record *r, size_t i, const char **key);
int record_type(const linli_record *r, const char *key);
bool record_has(const linli_record *r, const char *key);
int record_remove(linli_record *r, const char *key);

int record_get_str(const linli_record *r, const char *key, const char **s, size_t *len);
int record_get_bin(const linli_record *r, const char *key, const void **p, size_t *len);
int record_get_int(const linli_record *r, const char *key, int64_t *v);
int record_get_float(const linli_record *r, const char *key, double *v);
int record_get_bool(const linli_record *r, const char *key, bool *v);
int record_get_time(const linli_record *r, const char *key, int64_t *ms);
int record_get_map(linli_record *r, const char *key, linli_record **child);
int record_get_array(linli_record *r, const char *key, linli_record **child);

int record_set_str(linli_record *r, const char *key, const char *s);
int record_set_strn(linli_record *r, const char *key, const char *s, size_t len);
int record_set_bin(linli_record *r, const char *key, const void *p, size_t len);
int record_set_int(linli_record *r, const char *key, int64_t v);
int record_set_float(linli_record *r, const char *key, double v);
int record_set_bool(linli_record *r, const char *key, bool v);
int record_set_time(linli_record *r, const char *key, int64_t ms);
int record_set_nil(linli_record *r, const char *key);
int record_set_map(linli_record *r, const char *key, linli_record **child);
int record_set_array(linli_record *r, const char *key, linli_record **child);
int record_set_record(linli_record *r, const char *key, const linli_record *src);

int record_arr_type(const linli_record *a, size_t i);
int record_arr_get_str(const linli_record *a, size_t i, const char **s, size_t *len);
int record_arr_get_bin(const linli_record *a, size_t i, const void **p, size_t *len);
int record_arr_get_int(const linli_record *a, size_t i, int64_t *v);
int record_arr_get_float(const linli_record *a, size_t i, double *v);
int record_arr_get_bool(const linli_record *a, size_t i, bool *v);
int record_arr_get_time(const linli_record *a, size_t i, int64_t *ms);
int record_arr_get_map(linli_record *a, size_t i, linli_record **child);
int record_arr_get_array(linli_record *a, size_t i, linli_record **child);
int record_arr_push_str(linli_record *a, const char *s);
int record_arr_push_strn(linli_record *a, const char *s, size_t len);
int record_arr_push_bin(linli_record *a, const void *p, size_t len);
int record_arr_push_int(linli_record *a, int64_t v);
int record_arr_push_float(linli_record *a, double v);
int record_arr_push_bool(linli_record *a, bool v);
int record_arr_push_time(linli_record *a, int64_t ms);
int record_arr_push_nil(linli_record *a);
int record_arr_push_map(linli_record *a, linli_record **child);
int record_arr_push_array(linli_record *a, linli_record **child);
int record_arr_push_record(linli_record *a, const linli_record *src);
int record_arr_remove(linli_record *a, size_t i);

int record_to_json(const linli_record *r, char *buf, size_t cap, size_t *len);
int record_from_json(const char *text, size_t len, linli_record **out, char *err,
		     size_t errlen);

/* ---- kernel side only ---- */

/*
 * record_from_mp — a new record (yours) from MessagePack map or array `o`.
 * Refuses, with the field's path in err ("field 'a.b[2]': ..."), a top level
 * that is not a map or array, a non-string or duplicate key, a key or string
 * with invalid UTF-8 or a NUL in a key, an extension type, or nesting deeper
 * than LINLI_REC_MAX_DEPTH: LINLI_EPROTO / LINLI_ETYPE / LINLI_ELIMIT.
 */
int record_from_mp(const msgpack_object *o, linli_record **out, char *err, size_t errlen);

/* record_from_bytes — record_from_mp of exactly one MessagePack object in buf. */
int record_from_bytes(const void *buf, size_t len, linli_record **out, char *err, size_t errlen);

/* record_pack — pack r (one map or array object). Returns 0 or LINLI_EINVAL. */
int record_pack(const linli_record *r, msgpack_packer *pk);

/* Is `s` (n bytes) valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF)? */
bool record_utf8_valid(const char *s, size_t n);

#endif
