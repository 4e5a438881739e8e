/*
 * Unit tests of host/mp.c: mp_check bounds every size a MessagePack buffer
 * declares (array/map counts, str/bin/ext lengths, nesting) by the bytes
 * that remain, so that what passes is safe to hand to msgpack-c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "linli/error.h"
#include "mp.h"

/* Write `v` big-endian in `w` bytes at p; returns p + w. */
static uint8_t *put_be(uint8_t *p, uint64_t v, unsigned w)
{
	for (unsigned i = 0; i < w; i++)
		p[i] = (uint8_t)(v >> (8 * (w - 1 - i)));
	return p + w;
}

/* Does msgpack-c unpack exactly these bytes? */
static bool unpacks(const uint8_t *b, size_t len)
{
	msgpack_zone z;
	msgpack_zone_init(&z, 1024);
	msgpack_object o;
	size_t off = 0;
	bool ok = msgpack_unpack((const char *)b, len, &off, &z, &o) == MSGPACK_UNPACK_SUCCESS &&
		  off == len;
	msgpack_zone_destroy(&z);
	return ok;
}

static int check(const uint8_t *b, size_t len, char *err, size_t errlen)
{
	return mp_check(b, len, MP_MAX_DEPTH, 0, err, errlen);
}

/* The 5-byte control request of issue 12: a map32 header declaring 2^32-1 entries. */
static void test_map32_bomb(void **state)
{
	(void)state;
	const uint8_t bomb[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
	char err[128];
	assert_int_equal(check(bomb, sizeof bomb, err, sizeof err), LINLI_EPROTO);
	assert_string_equal(err, "byte 0: map 32 declares 4294967295 entries, only 0 bytes remain");
	const uint8_t arr[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02};
	assert_int_equal(check(arr, sizeof arr, err, sizeof err), LINLI_EPROTO);
	assert_string_equal(err,
			    "byte 0: array 32 declares 4294967295 elements, only 2 bytes remain");
	/* The same bomb nested inside an honest map. */
	const uint8_t nested[] = {0x81, 0xa1, 'k', 0xdf, 0x00, 0x01, 0x00, 0x00};
	assert_int_equal(check(nested, sizeof nested, err, sizeof err), LINLI_EPROTO);
	assert_string_equal(err, "byte 3: map 32 declares 65536 entries, only 0 bytes remain");
}

/*
 * Each container kind: a count that the remaining bytes can hold passes (and
 * unpacks), one more is refused. Elements are positive fixints (1 byte).
 */
static void test_container_counts(void **state)
{
	(void)state;
	const struct {
		uint8_t c;
		unsigned w; /* width of the count field */
		bool map;
		uint64_t n;
	} kinds[] = {
	    {0x90 | 3, 0, false, 3}, {0xdc, 2, false, 300}, {0xdd, 4, false, 70000},
	    {0x80 | 3, 0, true, 3},  {0xde, 2, true, 300},  {0xdf, 4, true, 70000},
	    {0xdc, 2, false, 0},     {0xdf, 4, true, 0},
	};
	char err[128];
	for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
		uint64_t items = kinds[k].map ? 2 * kinds[k].n : kinds[k].n;
		size_t cap = 5 + (size_t)items;
		uint8_t *b = malloc(cap);
		assert_non_null(b);
		uint8_t *p = b;
		*p++ = kinds[k].c;
		p = put_be(p, kinds[k].n, kinds[k].w);
		memset(p, 0x01, (size_t)items);
		size_t len = (size_t)(p - b) + (size_t)items;
		assert_int_equal(check(b, len, err, sizeof err), 0);
		assert_true(unpacks(b, len));
		if (items) { /* one element short: refused before msgpack-c allocates */
			assert_int_equal(check(b, len - 1, err, sizeof err), LINLI_EPROTO);
			assert_non_null(strstr(err, "byte 0: "));
			assert_non_null(strstr(err, "declares"));
		}
		if (kinds[k].w) { /* a count of one more than fits */
			put_be(b + 1, kinds[k].n + 1, kinds[k].w);
			assert_int_equal(check(b, len, err, sizeof err), LINLI_EPROTO);
			assert_non_null(strstr(err, "declares"));
		}
		free(b);
	}
	/* A map entry needs two bytes: 2 entries in 3 bytes is refused at the header. */
	const uint8_t m[] = {0xde, 0x00, 0x02, 0x01, 0x01, 0x01};
	assert_int_equal(check(m, sizeof m, err, sizeof err), LINLI_EPROTO);
	assert_string_equal(err, "byte 0: map 16 declares 2 entries, only 3 bytes remain");
}

/* Each length kind: str, bin and ext in 8/16/32-bit lengths, fixstr and fixext. */
static void test_lengths(void **state)
{
	(void)state;
	const struct {
		uint8_t c;
		unsigned w;
		unsigned extra; /* bytes besides the length (ext's type byte) */
		uint64_t n;
		const char *name;
	} kinds[] = {
	    {0xd9, 1, 0, 200, "str 8"}, {0xda, 2, 0, 1000, "str 16"}, {0xdb, 4, 0, 70000, "str 32"},
	    {0xc4, 1, 0, 200, "bin 8"}, {0xc5, 2, 0, 1000, "bin 16"}, {0xc6, 4, 0, 70000, "bin 32"},
	    {0xc7, 1, 1, 200, "ext 8"}, {0xc8, 2, 1, 1000, "ext 16"}, {0xc9, 4, 1, 70000, "ext 32"},
	};
	char err[128];
	for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
		size_t cap = 6 + (size_t)kinds[k].n;
		uint8_t *b = calloc(1, cap);
		assert_non_null(b);
		b[0] = kinds[k].c;
		put_be(b + 1, kinds[k].n, kinds[k].w);
		size_t len = 1 + kinds[k].w + kinds[k].extra + (size_t)kinds[k].n;
		assert_int_equal(check(b, len, err, sizeof err), 0);
		assert_true(unpacks(b, len));
		assert_int_equal(check(b, len - 1, err, sizeof err), LINLI_EPROTO);
		assert_non_null(strstr(err, kinds[k].name));
		assert_non_null(strstr(err, "declares"));
		/* The largest length the field can declare. */
		put_be(b + 1,
		       kinds[k].w == 1	 ? 0xff
		       : kinds[k].w == 2 ? 0xffff
					 : 0xffffffff,
		       kinds[k].w);
		assert_int_equal(check(b, len, err, sizeof err), LINLI_EPROTO);
		/* A header cut inside its length field. */
		assert_int_equal(check(b, kinds[k].w, err, sizeof err), LINLI_EPROTO);
		assert_non_null(strstr(err, "truncated"));
		free(b);
	}
	const uint8_t fixstr[] = {0xa5, 'a', 'b', 'c', 'd'};
	assert_int_equal(check(fixstr, sizeof fixstr, err, sizeof err), LINLI_EPROTO);
	assert_string_equal(err, "byte 0: fixstr declares 5 bytes, 4 remain");
	const uint8_t fixext[] = {0xd8, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
	assert_int_equal(check(fixext, sizeof fixext, err, sizeof err), LINLI_EPROTO);
	assert_non_null(strstr(err, "fixext 16"));
	const uint8_t u64[] = {0xcf, 0, 0, 0, 0, 0, 0, 0};
	assert_int_equal(check(u64, sizeof u64, err, sizeof err), LINLI_EPROTO);
	assert_string_equal(err, "byte 0: uint 64 needs 8 bytes, 7 remain");
}

static void test_depth(void **state)
{
	(void)state;
	uint8_t b[64];
	char err[128];
	/* n arrays nested in one another: 0x91 x (n-1), then an empty 0x90. */
	for (unsigned n = 1; n <= 40; n++) {
		memset(b, 0x91, n - 1);
		b[n - 1] = 0x90;
		int want = n <= 5 ? 0 : LINLI_EPROTO;
		assert_int_equal(mp_check(b, n, 5, 0, err, sizeof err), want);
		if (want)
			assert_string_equal(err, "byte 5: nested deeper than 5 levels");
		/* Asked for more than msgpack-c takes: MP_MAX_DEPTH, and what passes unpacks. */
		int rc = mp_check(b, n, 1000, 0, err, sizeof err);
		assert_int_equal(rc, n <= MP_MAX_DEPTH ? 0 : LINLI_EPROTO);
		if (rc == 0)
			assert_true(unpacks(b, n));
	}
	const uint8_t scalar[] = {0x2a};
	assert_int_equal(mp_check(scalar, 1, 0, 0, err, sizeof err), 0);
	assert_int_equal(mp_check(b, 1, 0, 0, err, sizeof err), LINLI_EPROTO);
}

static void test_framing(void **state)
{
	(void)state;
	char err[128];
	assert_int_equal(mp_check(NULL, 0, 4, 0, err, sizeof err), LINLI_EPROTO);
	assert_string_equal(err, "byte 0: no bytes: an object expected");
	const uint8_t trailing[] = {0x80, 0x01};
	assert_int_equal(check(trailing, 2, err, sizeof err), LINLI_EPROTO);
	assert_string_equal(err, "byte 1: 1 bytes after the object");
	const uint8_t c1[] = {0x91, 0xc1};
	assert_int_equal(check(c1, 2, err, sizeof err), LINLI_EPROTO);
	assert_string_equal(err, "byte 1: byte 0xc1 is never used in MessagePack");
	const uint8_t intkey[] = {0x81, 0x01, 0x02};
	assert_int_equal(check(intkey, 3, err, sizeof err), 0);
	assert_int_equal(mp_check(intkey, 3, 4, MP_STR_KEYS, err, sizeof err), LINLI_EPROTO);
	assert_string_equal(err, "byte 1: a map key is not a string (byte 0x01)");
	const uint8_t strkey[] = {0x81, 0xa1, 'k', 0x81, 0xd9, 0x01, 'j', 0xc0};
	assert_int_equal(mp_check(strkey, sizeof strkey, 4, MP_STR_KEYS, err, sizeof err), 0);
	/* No err buffer: the code alone. */
	assert_int_equal(mp_check(trailing, 2, 4, 0, NULL, 0), LINLI_EPROTO);
}

/*
 * Whatever mp_check passes, msgpack-c unpacks: random bytes (a fixed seed),
 * biased towards container and length headers so that both sides are reached.
 */
static void test_passes_unpack(void **state)
{
	(void)state;
	static const uint8_t pick[] = {0x92, 0x82, 0xdc, 0xde, 0xdd, 0xdf, 0xa2, 0xd9, 0xc4,
				       0xc7, 0xd4, 0xcb, 0x01, 0x00, 0x03, 0xc0, 0xff};
	srand(12);
	unsigned passed = 0;
	char err[128];
	for (int t = 0; t < 200000; t++) {
		uint8_t b[24];
		size_t len = 1 + (size_t)rand() % sizeof b;
		for (size_t i = 0; i < len; i++)
			b[i] = rand() % 2 ? pick[rand() % sizeof pick] : (uint8_t)rand();
		if (mp_check(b, len, MP_MAX_DEPTH, 0, err, sizeof err) == 0) {
			passed++;
			assert_true(unpacks(b, len));
		} else
			assert_true(strncmp(err, "byte ", 5) == 0);
	}
	assert_true(passed > 1000);
}

/* mp_map_value: a field's bytes found without unpacking the map; every bad map refused. */
static void test_map_value(void **state)
{
	(void)state;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	static const char longkey[] = "a_key_longer_than_thirty_one_bytes_str8";
	msgpack_pack_map(&pk, 5);
	mp_kv_int(&pk, "a", 1);
	mp_str(&pk, "nested"); /* a container before the wanted field is skipped whole */
	msgpack_pack_map(&pk, 1);
	mp_str(&pk, "k");
	msgpack_pack_array(&pk, 2);
	msgpack_pack_int(&pk, 1);
	mp_str(&pk, "name"); /* a value equal to a later key is no key */
	mp_kv_str(&pk, "name", "张三");
	mp_kv_double(&pk, longkey, 2.5);
	mp_kv_str(&pk, "z", "end");
	const void *v;
	size_t n, off = 0;
	msgpack_zone z;
	msgpack_zone_init(&z, 1024);
	msgpack_object o;
	assert_int_equal(mp_map_value(sb.data, sb.size, "name", &v, &n), 0);
	assert_int_equal(msgpack_unpack(v, n, &off, &z, &o), MSGPACK_UNPACK_SUCCESS);
	assert_true(mp_eq(&o, "张三"));
	assert_int_equal(off, n);
	assert_int_equal(mp_map_value(sb.data, sb.size, "z", &v, &n), 0);
	assert_int_equal(n, 4); /* fixstr "end" */
	assert_int_equal(mp_map_value(sb.data, sb.size, longkey, &v, &n), 0);
	assert_int_equal(n, 9); /* float 64 */
	assert_int_equal(mp_map_value(sb.data, sb.size, "nested", &v, &n), 0);
	assert_int_equal(n, 1 + 2 + 1 + 1 + 4 + 1); /* {"k": [1, "name"]} */
	assert_int_equal(mp_map_value(sb.data, sb.size, "k", &v, &n), LINLI_ENOENT);
	assert_int_equal(mp_map_value(sb.data, sb.size, "nam", &v, &n), LINLI_ENOENT);
	/* truncated anywhere: never a read past the end */
	for (size_t cut = 0; cut < sb.size; cut++) {
		int rc = mp_map_value(sb.data, cut, "z", &v, &n);
		assert_true(rc == LINLI_EPROTO || (rc == 0 && (const char *)v + n <= sb.data + cut));
	}
	/* not a map */
	static const unsigned char arr[] = {0x91, 0x01}, map32[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
	assert_int_equal(mp_map_value(arr, sizeof arr, "a", &v, &n), LINLI_EPROTO);
	assert_int_equal(mp_map_value(map32, sizeof map32, "a", &v, &n), LINLI_EPROTO);
	msgpack_zone_destroy(&z);
	msgpack_sbuffer_destroy(&sb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_map32_bomb), cmocka_unit_test(test_container_counts),
	    cmocka_unit_test(test_lengths),    cmocka_unit_test(test_depth),
	    cmocka_unit_test(test_framing),    cmocka_unit_test(test_passes_unpack),
	    cmocka_unit_test(test_map_value),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
