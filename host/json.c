/* json — see json.h. */
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linli/error.h"
#include "mp.h"
#include "util.h"

/*
 * A string as JSON: as it is when it is UTF-8 (JSON is), else with every byte that is not
 * part of a character shown as \xNN (utf8_escape) — never a document that cannot be
 * written (jansson refuses to dump invalid UTF-8: the console printed "null").
 */
static json_t *str_json(const char *p, size_t n)
{
	size_t i = 0, l;
	while (i < n && (l = utf8_char_len(p + i, n - i)) > 0)
		i += l;
	if (i == n)
		return json_stringn_nocheck(p, n);
	size_t cap = n * 4 + 8;
	char *buf = malloc(cap);
	if (!buf)
		return NULL;
	size_t m = utf8_escape(buf, cap, p, n);
	json_t *j = json_stringn_nocheck(buf, m);
	free(buf);
	return j;
}

json_t *json_from_mp(const msgpack_object *o)
{
	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		return json_null();
	case MSGPACK_OBJECT_BOOLEAN:
		return json_boolean(o->via.boolean);
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		if (o->via.u64 > (uint64_t)INT64_MAX)
			return json_real((double)o->via.u64);
		return json_integer((json_int_t)o->via.u64);
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return json_integer((json_int_t)o->via.i64);
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		return json_real(o->via.f64);
	case MSGPACK_OBJECT_STR:
	case MSGPACK_OBJECT_BIN:
		return str_json(o->via.str.ptr, o->via.str.size);
	case MSGPACK_OBJECT_ARRAY: {
		json_t *a = json_array();
		for (uint32_t i = 0; a && i < o->via.array.size; i++) {
			json_t *v = json_from_mp(&o->via.array.ptr[i]);
			if (!v || json_array_append_new(a, v) != 0) {
				json_decref(a);
				return NULL;
			}
		}
		return a;
	}
	case MSGPACK_OBJECT_MAP: {
		json_t *m = json_object();
		for (uint32_t i = 0; m && i < o->via.map.size; i++) {
			const msgpack_object *k = &o->via.map.ptr[i].key;
			char key[256];
			if (k->type == MSGPACK_OBJECT_STR)
				snprintf(key, sizeof key, "%.*s", (int)k->via.str.size, k->via.str.ptr);
			else if (k->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
				snprintf(key, sizeof key, "%llu", (unsigned long long)k->via.u64);
			else {
				json_decref(m);
				return NULL;
			}
			json_t *v = json_from_mp(&o->via.map.ptr[i].val);
			if (!v || json_object_set_new(m, key, v) != 0) {
				json_decref(m);
				return NULL;
			}
		}
		return m;
	}
	default:
		return NULL;
	}
}

static int to_mp(const json_t *j, msgpack_packer *pk, unsigned depth)
{
	switch (json_typeof(j)) {
	case JSON_NULL:
		return msgpack_pack_nil(pk);
	case JSON_TRUE:
		return msgpack_pack_true(pk);
	case JSON_FALSE:
		return msgpack_pack_false(pk);
	case JSON_INTEGER:
		return msgpack_pack_int64(pk, json_integer_value(j));
	case JSON_REAL:
		return msgpack_pack_double(pk, json_real_value(j));
	case JSON_STRING: {
		size_t n = json_string_length(j);
		msgpack_pack_str(pk, n);
		return msgpack_pack_str_body(pk, json_string_value(j), n);
	}
	case JSON_ARRAY:
	case JSON_OBJECT:
		break;
	}
	if (depth + 1 > MP_MAX_DEPTH)
		return LINLI_ELIMIT;
	int rc = 0;
	if (json_is_array(j)) {
		size_t i;
		json_t *v;
		msgpack_pack_array(pk, json_array_size(j));
		json_array_foreach(j, i, v)
		{
			if ((rc = to_mp(v, pk, depth + 1)) != 0)
				break;
		}
		return rc;
	}
	const char *k;
	json_t *v;
	msgpack_pack_map(pk, json_object_size(j));
	json_object_foreach((json_t *)j, k, v)
	{
		mp_str(pk, k);
		if ((rc = to_mp(v, pk, depth + 1)) != 0)
			break;
	}
	return rc;
}

int json_to_mp(const json_t *j, msgpack_packer *pk)
{
	return to_mp(j, pk, 0);
}

int json_parse_to_mp(const char *text, size_t len, msgpack_packer *pk, char *err, size_t errlen)
{
	json_error_t je;
	json_t *j = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
	if (!j) {
		snprintf(err, errlen, "malformed JSON at line %d column %d: %s", je.line, je.column,
			 je.text);
		return LINLI_EINVAL;
	}
	int rc = json_to_mp(j, pk);
	json_decref(j);
	if (rc == LINLI_ELIMIT)
		snprintf(err, errlen, "JSON nested deeper than %d levels", MP_MAX_DEPTH);
	else if (rc) {
		snprintf(err, errlen, "out of memory");
		rc = LINLI_ENOMEM;
	}
	return rc;
}
