/*
 * Unit tests of host/record.c: typed get/set of every type, replace and
 * remove, iteration order, nested maps and arrays with borrowed handles, deep
 * copies, the depth limit, MessagePack and JSON round trips, and the refusal
 * of bad input (wrong types, invalid UTF-8, duplicate and non-string keys,
 * extension types) with the field's path in the message. Also calls through
 * the SDK function table to check it points at the same functions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linli/api.h"
#include "record.h"
#include "sdkapi.h"

static void test_scalars(void **state)
{
	(void)state;
	linli_record *r = record_new();
	assert_non_null(r);
	assert_int_equal(record_kind(r), LINLI_T_MAP);
	assert_int_equal(record_set_str(r, "name", "张三"), 0);
	assert_int_equal(record_set_int(r, "age", -42), 0);
	assert_int_equal(record_set_float(r, "temp", 36.6), 0);
	assert_int_equal(record_set_bool(r, "alone", true), 0);
	assert_int_equal(record_set_time(r, "seen", 1700000000123LL), 0);
	assert_int_equal(record_set_nil(r, "note"), 0);
	assert_int_equal(record_set_bin(r, "raw", "\0\1\2", 3), 0);
	assert_int_equal(record_set_strn(r, "nul", "a\0b", 3), 0);
	assert_int_equal(record_count(r), 8);

	const char *s;
	size_t n;
	assert_int_equal(record_get_str(r, "name", &s, &n), 0);
	assert_string_equal(s, "张三");
	assert_int_equal(n, strlen("张三"));
	assert_int_equal(record_get_str(r, "nul", &s, &n), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(s, "a\0b", 4); /* NUL-terminated too */
	int64_t i;
	assert_int_equal(record_get_int(r, "age", &i), 0);
	assert_int_equal(i, -42);
	double f;
	assert_int_equal(record_get_float(r, "temp", &f), 0);
	assert_true(f == 36.6);
	assert_int_equal(record_get_float(r, "age", &f), 0); /* integers convert */
	assert_true(f == -42.0);
	bool b = false;
	assert_int_equal(record_get_bool(r, "alone", &b), 0);
	assert_true(b);
	assert_int_equal(record_get_time(r, "seen", &i), 0);
	assert_int_equal(i, 1700000000123LL);
	const void *p;
	assert_int_equal(record_get_bin(r, "raw", &p, &n), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(p, "\0\1\2", 3);

	assert_int_equal(record_type(r, "name"), LINLI_T_STR);
	assert_int_equal(record_type(r, "age"), LINLI_T_INT);
	assert_int_equal(record_type(r, "seen"), LINLI_T_INT); /* times are integers */
	assert_int_equal(record_type(r, "temp"), LINLI_T_FLOAT);
	assert_int_equal(record_type(r, "alone"), LINLI_T_BOOL);
	assert_int_equal(record_type(r, "note"), LINLI_T_NIL);
	assert_int_equal(record_type(r, "raw"), LINLI_T_BIN);
	assert_int_equal(record_type(r, "nope"), LINLI_T_NONE);

	/* Wrong types and absent fields. */
	assert_int_equal(record_get_int(r, "name", &i), LINLI_ETYPE);
	assert_int_equal(record_get_str(r, "age", &s, NULL), LINLI_ETYPE);
	assert_int_equal(record_get_bool(r, "age", &b), LINLI_ETYPE);
	assert_int_equal(record_get_float(r, "name", &f), LINLI_ETYPE);
	assert_int_equal(record_get_int(r, "temp", &i), LINLI_ETYPE);
	assert_int_equal(record_get_bin(r, "name", &p, &n), LINLI_ETYPE);
	assert_int_equal(record_get_str(r, "nope", &s, NULL), LINLI_ENOENT);
	assert_int_equal(record_get_int(NULL, "age", &i), LINLI_EINVAL);
	assert_int_equal(record_get_int(r, NULL, &i), LINLI_EINVAL);
	assert_int_equal(record_get_int(r, "age", NULL), LINLI_EINVAL);
	assert_int_equal(record_set_str(r, "x", NULL), LINLI_EINVAL);
	assert_int_equal(record_set_int(NULL, "x", 1), LINLI_EINVAL);
	assert_int_equal(record_free(r), 0);
	assert_int_equal(record_free(NULL), 0);
}

static void test_replace_remove_order(void **state)
{
	(void)state;
	linli_record *r = record_new();
	record_set_int(r, "a", 1);
	record_set_int(r, "b", 2);
	record_set_int(r, "c", 3);
	/* Replacing keeps the position and may change the type. */
	assert_int_equal(record_set_str(r, "b", "two"), 0);
	assert_int_equal(record_count(r), 3);
	const char *k;
	assert_int_equal(record_key(r, 1, &k), 0);
	assert_string_equal(k, "b");
	assert_int_equal(record_type(r, "b"), LINLI_T_STR);
	assert_int_equal(record_key(r, 3, &k), LINLI_ENOENT);

	assert_true(record_has(r, "a"));
	assert_int_equal(record_remove(r, "a"), 0);
	assert_false(record_has(r, "a"));
	assert_int_equal(record_remove(r, "a"), LINLI_ENOENT);
	assert_int_equal(record_count(r), 2);
	const char *want[] = {"b", "c"};
	for (size_t i = 0; i < record_count(r); i++) {
		assert_int_equal(record_key(r, i, &k), 0);
		assert_string_equal(k, want[i]);
	}
	/* Many fields keep their order. */
	for (int i = 0; i < 200; i++) {
		char key[16];
		snprintf(key, sizeof key, "k%03d", i);
		assert_int_equal(record_set_int(r, key, i), 0);
	}
	assert_int_equal(record_count(r), 202);
	assert_int_equal(record_key(r, 2, &k), 0);
	assert_string_equal(k, "k000");
	int64_t v;
	assert_int_equal(record_get_int(r, "k199", &v), 0);
	assert_int_equal(v, 199);
	record_free(r);
}

static void test_nested(void **state)
{
	(void)state;
	linli_record *r = record_new(), *addr, *tags, *m, *got;
	assert_int_equal(record_set_map(r, "addr", &addr), 0);
	assert_int_equal(record_set_str(addr, "street", "滨湖"), 0);
	assert_int_equal(record_set_array(r, "tags", &tags), 0);
	assert_int_equal(record_kind(tags), LINLI_T_ARRAY);
	assert_int_equal(record_arr_push_str(tags, "elder"), 0);
	assert_int_equal(record_arr_push_int(tags, 7), 0);
	assert_int_equal(record_arr_push_float(tags, 1.5), 0);
	assert_int_equal(record_arr_push_bool(tags, false), 0);
	assert_int_equal(record_arr_push_time(tags, 99), 0);
	assert_int_equal(record_arr_push_nil(tags), 0);
	assert_int_equal(record_arr_push_bin(tags, "xy", 2), 0);
	assert_int_equal(record_arr_push_map(tags, &m), 0);
	assert_int_equal(record_set_int(m, "deep", 1), 0);
	assert_int_equal(record_count(tags), 8);

	/* Borrowed handles survive the parent growing. */
	for (int i = 0; i < 100; i++) {
		char key[16];
		snprintf(key, sizeof key, "f%d", i);
		record_set_int(r, key, i);
	}
	assert_int_equal(record_get_map(r, "addr", &got), 0);
	assert_ptr_equal(got, addr);
	const char *s;
	assert_int_equal(record_get_str(addr, "street", &s, NULL), 0);
	assert_string_equal(s, "滨湖");

	assert_int_equal(record_arr_type(tags, 0), LINLI_T_STR);
	assert_int_equal(record_arr_type(tags, 7), LINLI_T_MAP);
	assert_int_equal(record_arr_type(tags, 8), LINLI_T_NONE);
	int64_t i;
	assert_int_equal(record_arr_get_int(tags, 1, &i), 0);
	assert_int_equal(i, 7);
	double f;
	assert_int_equal(record_arr_get_float(tags, 2, &f), 0);
	assert_true(f == 1.5);
	bool b = true;
	assert_int_equal(record_arr_get_bool(tags, 3, &b), 0);
	assert_false(b);
	assert_int_equal(record_arr_get_time(tags, 4, &i), 0);
	assert_int_equal(i, 99);
	size_t n;
	const void *p;
	assert_int_equal(record_arr_get_bin(tags, 6, &p, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(record_arr_get_map(tags, 7, &got), 0);
	assert_ptr_equal(got, m);
	assert_int_equal(record_arr_get_str(tags, 0, &s, &n), 0);
	assert_string_equal(s, "elder");
	assert_int_equal(record_arr_get_str(tags, 1, &s, &n), LINLI_ETYPE);
	assert_int_equal(record_arr_get_str(tags, 99, &s, &n), LINLI_ENOENT);
	assert_int_equal(record_arr_get_array(tags, 7, &got), LINLI_ETYPE);

	/* Map accessors on an array and the reverse are type errors. */
	assert_int_equal(record_set_int(tags, "x", 1), LINLI_ETYPE);
	assert_int_equal(record_get_int(tags, "x", &i), LINLI_ETYPE);
	assert_int_equal(record_arr_push_int(r, 1), LINLI_ETYPE);
	const char *k;
	assert_int_equal(record_key(tags, 0, &k), LINLI_ETYPE);
	assert_int_equal(record_get_array(r, "addr", &got), LINLI_ETYPE);

	/* A borrowed handle cannot be freed. */
	assert_int_equal(record_free(addr), LINLI_EINVAL);

	assert_int_equal(record_arr_remove(tags, 0), 0);
	assert_int_equal(record_arr_get_int(tags, 0, &i), 0);
	assert_int_equal(i, 7);
	assert_int_equal(record_arr_remove(tags, 50), LINLI_ENOENT);
	record_free(r);
}

static void test_copy(void **state)
{
	(void)state;
	linli_record *r = record_new(), *addr, *c, *caddr;
	record_set_str(r, "name", "a");
	record_set_map(r, "addr", &addr);
	record_set_str(addr, "street", "s1");
	assert_int_equal(record_copy(r, &c), 0);
	/* Changing the original leaves the copy alone. */
	record_set_str(addr, "street", "s2");
	record_set_str(r, "name", "b");
	const char *s;
	assert_int_equal(record_get_map(c, "addr", &caddr), 0);
	assert_ptr_not_equal(caddr, addr);
	assert_int_equal(record_get_str(caddr, "street", &s, NULL), 0);
	assert_string_equal(s, "s1");
	assert_int_equal(record_get_str(c, "name", &s, NULL), 0);
	assert_string_equal(s, "a");
	/* A copy of a nested handle is a root of its own. */
	linli_record *sub;
	assert_int_equal(record_copy(addr, &sub), 0);
	record_free(r);
	assert_int_equal(record_get_str(sub, "street", &s, NULL), 0);
	assert_string_equal(s, "s2");
	/* set_record / push_record copy. */
	linli_record *arr = record_new_array();
	assert_int_equal(record_arr_push_record(arr, sub), 0);
	assert_int_equal(record_set_record(c, "moved", sub), 0);
	assert_int_equal(record_free(sub), 0);
	linli_record *m;
	assert_int_equal(record_arr_get_map(arr, 0, &m), 0);
	assert_int_equal(record_get_str(m, "street", &s, NULL), 0);
	assert_string_equal(s, "s2");
	assert_int_equal(record_get_map(c, "moved", &m), 0);
	assert_int_equal(record_get_str(m, "street", &s, NULL), 0);
	record_free(arr);
	record_free(c);
}

static void test_depth_limit(void **state)
{
	(void)state;
	linli_record *r = record_new(), *cur = r, *next;
	for (int d = 1; d <= LINLI_REC_MAX_DEPTH; d++) {
		assert_int_equal(record_set_map(cur, "in", &next), 0);
		cur = next;
	}
	assert_int_equal(record_set_map(cur, "in", &next), LINLI_ELIMIT);
	assert_int_equal(record_set_array(cur, "in", &next), LINLI_ELIMIT);
	assert_int_equal(record_set_int(cur, "leaf", 1), 0);
	/* Copying a deep record under another one is refused the same way. */
	linli_record *other = record_new(), *o1;
	record_set_map(other, "x", &o1);
	assert_int_equal(record_set_record(o1, "r", r), LINLI_ELIMIT);
	assert_false(record_has(o1, "r"));
	assert_int_equal(record_set_record(other, "r", r), LINLI_ELIMIT);
	linli_record *shallow;
	record_get_map(r, "in", &shallow);
	assert_int_equal(record_copy(r, &shallow), 0); /* a root copy is fine */
	record_free(shallow);
	record_free(other);
	record_free(r);
}

static void test_utf8(void **state)
{
	(void)state;
	assert_true(record_utf8_valid("héllo 你好 😀", strlen("héllo 你好 😀")));
	assert_false(record_utf8_valid("\xC0\xAF", 2));	    /* overlong '/' */
	assert_false(record_utf8_valid("\xED\xA0\x80", 3)); /* surrogate */
	assert_false(record_utf8_valid("\xF4\x90\x80\x80", 4)); /* > U+10FFFF */
	assert_false(record_utf8_valid("\xE4\xBD", 2));	    /* truncated */
	assert_false(record_utf8_valid("\xFF", 1));
	linli_record *r = record_new();
	assert_int_equal(record_set_str(r, "k", "\xFF"), LINLI_EINVAL);
	assert_int_equal(record_set_int(r, "\xFF", 1), LINLI_EINVAL);
	assert_int_equal(record_count(r), 0);
	assert_int_equal(record_set_bin(r, "b", "\xFF", 1), 0); /* bytes are bytes */
	linli_record *a = record_new_array();
	assert_int_equal(record_arr_push_str(a, "\xE4\xBD"), LINLI_EINVAL);
	assert_int_equal(record_count(a), 0);
	record_free(a);
	record_free(r);
}

static void pack_bytes(const linli_record *r, msgpack_sbuffer *sb)
{
	msgpack_packer pk;
	msgpack_sbuffer_init(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	assert_int_equal(record_pack(r, &pk), 0);
}

static void test_msgpack_roundtrip(void **state)
{
	(void)state;
	linli_record *r = record_new(), *m, *a;
	record_set_str(r, "s", "文本");
	record_set_int(r, "neg", INT64_MIN);
	record_set_int(r, "pos", INT64_MAX);
	record_set_float(r, "f", -0.25);
	record_set_bool(r, "t", true);
	record_set_nil(r, "n");
	record_set_bin(r, "b", "\0\xFF", 2);
	record_set_map(r, "m", &m);
	record_set_array(m, "a", &a);
	record_arr_push_int(a, 1);
	record_arr_push_str(a, "x");

	msgpack_sbuffer sb;
	pack_bytes(r, &sb);
	linli_record *back;
	char err[256];
	assert_int_equal(record_from_bytes(sb.data, sb.size, &back, err, sizeof err), 0);
	msgpack_sbuffer sb2;
	pack_bytes(back, &sb2);
	assert_int_equal(sb.size, sb2.size);
	assert_memory_equal(sb.data, sb2.data, sb.size);
	int64_t i;
	assert_int_equal(record_get_int(back, "neg", &i), 0);
	assert_true(i == INT64_MIN);

	/* An unsigned value above INT64_MAX survives but is not an int64. */
	msgpack_sbuffer_clear(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 1);
	msgpack_pack_str_with_body(&pk, "u", 1);
	msgpack_pack_uint64(&pk, UINT64_MAX);
	linli_record *u;
	assert_int_equal(record_from_bytes(sb.data, sb.size, &u, err, sizeof err), 0);
	assert_int_equal(record_type(u, "u"), LINLI_T_UINT);
	assert_int_equal(record_get_int(u, "u", &i), LINLI_E2BIG);
	double f;
	assert_int_equal(record_get_float(u, "u", &f), 0);
	record_free(u);

	msgpack_sbuffer_destroy(&sb);
	msgpack_sbuffer_destroy(&sb2);
	record_free(back);
	record_free(r);
}

/* Decode `sb` and expect failure `rc` with `needle` in the message. */
static void expect_refused(msgpack_sbuffer *sb, int rc, const char *needle)
{
	linli_record *r = NULL;
	char err[256];
	assert_int_equal(record_from_bytes(sb->data, sb->size, &r, err, sizeof err), rc);
	assert_null(r);
	if (!strstr(err, needle))
		fail_msg("message '%s' lacks '%s'", err, needle);
	msgpack_sbuffer_clear(sb);
}

static void test_msgpack_refusals(void **state)
{
	(void)state;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);

	msgpack_pack_int(&pk, 5);
	expect_refused(&sb, LINLI_ETYPE, "must be a map or an array");

	msgpack_pack_map(&pk, 1);
	msgpack_pack_int(&pk, 5);
	msgpack_pack_int(&pk, 5);
	expect_refused(&sb, LINLI_EPROTO, "key 0 is not a string");

	msgpack_pack_map(&pk, 2);
	msgpack_pack_str_with_body(&pk, "a", 1);
	msgpack_pack_int(&pk, 1);
	msgpack_pack_str_with_body(&pk, "a", 1);
	msgpack_pack_int(&pk, 2);
	expect_refused(&sb, LINLI_EPROTO, "duplicate key 'a'");

	/* Many keys: the sorted duplicate check. */
	msgpack_pack_map(&pk, 1000);
	for (int i = 0; i < 1000; i++) {
		char k[16];
		int n = snprintf(k, sizeof k, "k%d", i == 999 ? 500 : i);
		msgpack_pack_str_with_body(&pk, k, (size_t)n);
		msgpack_pack_int(&pk, i);
	}
	expect_refused(&sb, LINLI_EPROTO, "duplicate key 'k500'");

	msgpack_pack_map(&pk, 1);
	msgpack_pack_str_with_body(&pk, "addr", 4);
	msgpack_pack_map(&pk, 1);
	msgpack_pack_str_with_body(&pk, "tags", 4);
	msgpack_pack_array(&pk, 2);
	msgpack_pack_str_with_body(&pk, "ok", 2);
	msgpack_pack_str_with_body(&pk, "\xFF", 1);
	expect_refused(&sb, LINLI_EPROTO, "field 'addr.tags[1]': string is not valid UTF-8");

	msgpack_pack_map(&pk, 1);
	msgpack_pack_str_with_body(&pk, "t", 1);
	msgpack_pack_ext_with_body(&pk, "abcd", 4, -1);
	expect_refused(&sb, LINLI_ETYPE, "field 't': MessagePack extension type -1");

	msgpack_pack_map(&pk, 1);
	msgpack_pack_str_with_body(&pk, "a\0b", 3);
	msgpack_pack_int(&pk, 1);
	expect_refused(&sb, LINLI_EPROTO, "NUL byte");

	for (int d = 0; d <= LINLI_REC_MAX_DEPTH + 1; d++)
		msgpack_pack_array(&pk, 1);
	msgpack_pack_int(&pk, 1);
	expect_refused(&sb, LINLI_ELIMIT, "nested deeper than");

	msgpack_pack_map(&pk, 2);
	msgpack_pack_str_with_body(&pk, "a", 1);
	expect_refused(&sb, LINLI_EPROTO, "byte 0: fixmap declares 2 entries, only 2 bytes remain");

	/* Empty keys and strings (msgpack-c gives them a NULL pointer; found by fuzz_record). */
	msgpack_pack_map(&pk, 2);
	msgpack_pack_str_with_body(&pk, "", 0);
	msgpack_pack_str_with_body(&pk, "", 0);
	msgpack_pack_str_with_body(&pk, "", 0);
	msgpack_pack_bin_with_body(&pk, "", 0);
	expect_refused(&sb, LINLI_EPROTO, "duplicate key ''");
	msgpack_pack_map(&pk, 2);
	msgpack_pack_str_with_body(&pk, "", 0);
	msgpack_pack_str_with_body(&pk, "", 0);
	msgpack_pack_str_with_body(&pk, "a", 1);
	msgpack_pack_bin_with_body(&pk, "", 0);
	linli_record *r = NULL;
	char err[256];
	assert_int_equal(record_from_bytes(sb.data, sb.size, &r, err, sizeof err), 0);
	const char *s;
	size_t n;
	assert_int_equal(record_get_str(r, "", &s, &n), 0);
	assert_int_equal(n, 0);
	record_free(r);
	msgpack_sbuffer_clear(&sb);

	/* Sizes the bytes cannot hold are refused before msgpack-c allocates for them. */
	msgpack_sbuffer_write(&sb, "\xdf\xff\xff\xff\xff", 5);
	expect_refused(&sb, LINLI_EPROTO, "map 32 declares 4294967295 entries");
	msgpack_pack_map(&pk, 1);
	msgpack_pack_str_with_body(&pk, "a", 1);
	msgpack_sbuffer_write(&sb, "\xdd\x10\x00\x00\x00\x01", 6);
	expect_refused(&sb, LINLI_EPROTO, "byte 3: array 32 declares 268435456 elements");
	msgpack_pack_map(&pk, 1);
	msgpack_pack_str_with_body(&pk, "a", 1);
	msgpack_sbuffer_write(&sb, "\xdb\x7f\xff\xff\xff", 5);
	expect_refused(&sb, LINLI_EPROTO, "byte 3: str 32 declares 2147483647 bytes, 0 remain");

	msgpack_pack_map(&pk, 0);
	msgpack_pack_map(&pk, 0);
	expect_refused(&sb, LINLI_EPROTO, "bytes after");

	msgpack_sbuffer_destroy(&sb);
}

static void test_json(void **state)
{
	(void)state;
	const char *text = "{\"name\":\"李四\",\"age\":80,\"h\":1.5,\"ok\":true,\"n\":null,"
			   "\"a\":[1,\"x\",{\"k\":[]}],\"m\":{}}";
	linli_record *r;
	char err[256];
	assert_int_equal(record_from_json(text, strlen(text), &r, err, sizeof err), 0);
	assert_int_equal(record_type(r, "age"), LINLI_T_INT);
	assert_int_equal(record_type(r, "h"), LINLI_T_FLOAT);
	assert_int_equal(record_type(r, "a"), LINLI_T_ARRAY);
	char buf[512];
	size_t n;
	assert_int_equal(record_to_json(r, buf, sizeof buf, &n), 0);
	assert_string_equal(buf, text); /* order kept, compact */
	assert_int_equal(n, strlen(text));
	char small[8];
	assert_int_equal(record_to_json(r, small, sizeof small, &n), LINLI_E2BIG);
	assert_int_equal(n, strlen(text));
	assert_string_equal(small, "");
	record_free(r);

	assert_int_equal(record_from_json("{\"a\":", 5, &r, err, sizeof err), LINLI_EINVAL);
	assert_non_null(strstr(err, "malformed JSON at line 1"));
	assert_int_equal(record_from_json("{\"a\":1,\"a\":2}", 13, &r, err, sizeof err),
			 LINLI_EINVAL);
	assert_int_equal(record_from_json("42", 2, &r, err, sizeof err), LINLI_EINVAL);
	assert_non_null(strstr(err, "must be a JSON object or array"));
	char deep[256] = "";
	for (int d = 0; d <= LINLI_REC_MAX_DEPTH + 1; d++)
		strcat(deep, "[");
	for (int d = 0; d <= LINLI_REC_MAX_DEPTH + 1; d++)
		strcat(deep, "]");
	assert_int_equal(record_from_json(deep, strlen(deep), &r, err, sizeof err), LINLI_ELIMIT);
}

/* The SDK table reaches the same functions (what a plugin calls). */
static void test_through_table(void **state)
{
	(void)state;
	const struct linli_api *api = sdkapi_table();
	assert_int_equal(api->size, sizeof(struct linli_api));
	assert_int_equal(api->major, LINLI_SDK_MAJOR);
	assert_int_equal(api->minor, LINLI_SDK_MINOR);
	assert_true(LINLI_API_HAS(api, rec_from_json));
	linli_record *r = api->rec_new();
	assert_int_equal(api->rec_set_str(r, "k", "v"), 0);
	const char *s;
	assert_int_equal(api->rec_get_str(r, "k", &s, NULL), 0);
	assert_string_equal(s, "v");
	assert_ptr_equal(api->rec_get_str, record_get_str);
	assert_int_equal(api->rec_free(r), 0);
	/* Every member is filled. */
	const void *const *slot = (const void *const *)((const char *)api +
							 offsetof(struct linli_api, log));
	size_t nslots = (api->size - offsetof(struct linli_api, log)) / sizeof(void *);
	for (size_t i = 0; i < nslots; i++)
		if (!slot[i])
			fail_msg("function table member %zu is NULL", i);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scalars),	   cmocka_unit_test(test_replace_remove_order),
		cmocka_unit_test(test_nested),	   cmocka_unit_test(test_copy),
		cmocka_unit_test(test_depth_limit), cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_msgpack_roundtrip), cmocka_unit_test(test_msgpack_refusals),
		cmocka_unit_test(test_json),	   cmocka_unit_test(test_through_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
