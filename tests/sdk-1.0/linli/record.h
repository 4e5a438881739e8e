/*
 * linli/record.h — records: the values plugins read and write.
 *
 * A record is an opaque handle over a MessagePack map (or, for lists, an
 * array): the store keeps records, the bus carries them, console commands
 * return them. A plugin never sees the bytes; it uses the typed accessors of
 * the function table (api->rec_*, api->arr_*; linli/api.h documents each).
 *
 * Values and their types (enum linli_type):
 *
 *   LINLI_T_NIL     null
 *   LINLI_T_BOOL    true / false
 *   LINLI_T_INT     signed 64-bit integer
 *   LINLI_T_UINT    an unsigned integer above INT64_MAX (only from decoded
 *                   data; rec_get_int reports LINLI_E2BIG for it)
 *   LINLI_T_FLOAT   double
 *   LINLI_T_STR     UTF-8 text (checked on every write)
 *   LINLI_T_BIN     raw bytes
 *   LINLI_T_MAP     a nested record keyed by strings
 *   LINLI_T_ARRAY   a nested list of values
 *
 * Time. A point in time is an integer: milliseconds since 1970-01-01T00:00:00
 * UTC, stored as a MessagePack int64 (LINLI_T_INT). rec_set_time and
 * rec_get_time exist so that code says what it means; the dataset schema in
 * the catalog says which fields are times. Use api->time_now_ms for "now".
 *
 * Ownership. A record made by rec_new, rec_new_array, rec_copy or
 * rec_from_json is the caller's: free it with rec_free, or hand it to a call
 * documented to take it (a command's reply). A nested map or array returned by
 * rec_get_map, rec_set_map, arr_push_map (and the array variants) is
 * *borrowed*: it belongs to its parent, stays valid until that field is
 * replaced or removed or the parent is freed, and must not be passed to
 * rec_free. A string or byte pointer returned by a getter is borrowed the same
 * way and is valid until that field changes.
 *
 * Records are plain memory, not kernel resources: the kernel does not track
 * them per plugin, so a plugin frees what it makes. Keys are UTF-8 strings
 * without NUL bytes; a map keeps the order in which keys were first set.
 * Nesting is limited to LINLI_REC_MAX_DEPTH levels. A record is not
 * thread-safe: use one from one thread at a time.
 */
#ifndef LINLI_RECORD_H
#define LINLI_RECORD_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct linli_record linli_record;

enum linli_type {
	LINLI_T_NONE = 0, /* no such field / index */
	LINLI_T_NIL,
	LINLI_T_BOOL,
	LINLI_T_INT,
	LINLI_T_UINT,
	LINLI_T_FLOAT,
	LINLI_T_STR,
	LINLI_T_BIN,
	LINLI_T_MAP,
	LINLI_T_ARRAY,
};

#define LINLI_REC_MAX_DEPTH 16 /* a root record is depth 0, a map inside it depth 1, ... */

#ifdef __cplusplus
}
#endif

#endif
