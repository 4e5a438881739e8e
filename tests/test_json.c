/* Unit tests of host/json.c: JSON to MessagePack stays within what msgpack-c unpacks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "linli/error.h"
#include "mp.h"

/* `n` arrays nested in one another around 1, as JSON text (caller frees). */
static char *nested(unsigned n)
{
	char *s = malloc(2 * n + 2);
	memset(s, '[', n);
	s[n] = '1';
	memset(s + n + 1, ']', n);
	s[2 * n + 1] = '\0';
	return s;
}

static void test_depth(void **state)
{
	(void)state;
	char err[128];
	for (unsigned n = MP_MAX_DEPTH - 1; n <= MP_MAX_DEPTH + 1; n++) {
		char *text = nested(n);
		msgpack_sbuffer sb;
		msgpack_packer pk;
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		int rc = json_parse_to_mp(text, strlen(text), &pk, err, sizeof err);
		if (n <= MP_MAX_DEPTH) {
			/* What is packed passes mp_check and unpacks. */
			assert_int_equal(rc, 0);
			assert_int_equal(
			    mp_check(sb.data, sb.size, MP_MAX_DEPTH, 0, err, sizeof err), 0);
			msgpack_unpacked up;
			msgpack_unpacked_init(&up);
			assert_int_equal(msgpack_unpack_next(&up, sb.data, sb.size, NULL),
					 MSGPACK_UNPACK_SUCCESS);
			msgpack_unpacked_destroy(&up);
		} else {
			assert_int_equal(rc, LINLI_ELIMIT);
			assert_string_equal(err, "JSON nested deeper than 32 levels");
		}
		msgpack_sbuffer_destroy(&sb);
		free(text);
	}
	/* Objects count too: two of them around 31 arrays make 33 levels. */
	char *arrays = nested(MP_MAX_DEPTH - 1), obj[256];
	snprintf(obj, sizeof obj, "{\"a\":1,\"b\":{\"c\":%s}}", arrays);
	free(arrays);
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	assert_int_equal(json_parse_to_mp(obj, strlen(obj), &pk, err, sizeof err), LINLI_ELIMIT);
	msgpack_sbuffer_destroy(&sb);
}

static void test_syntax(void **state)
{
	(void)state;
	char err[128];
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	assert_int_equal(json_parse_to_mp("{\"a\":", 5, &pk, err, sizeof err), LINLI_EINVAL);
	assert_non_null(strstr(err, "malformed JSON at line 1"));
	const char *ok = "{\"名\":\"李四\",\"n\":[1,2.5,null,true,false,\"x\"],\"m\":{}}";
	assert_int_equal(json_parse_to_mp(ok, strlen(ok), &pk, err, sizeof err), 0);
	assert_int_equal(mp_check(sb.data, sb.size, MP_MAX_DEPTH, MP_STR_KEYS, err, sizeof err), 0);
	msgpack_sbuffer_destroy(&sb);
}

/* A string that is not UTF-8 (bytes from a damaged or foreign source) still makes a JSON
   document: its stray bytes shown as \xNN, the valid characters as they are. */
static void test_invalid_utf8_shown_escaped(void **state)
{
	(void)state;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 2);
	mp_kv_str(&pk, "ok", "悦澜");
	msgpack_pack_str(&pk, 3);
	msgpack_pack_str_body(&pk, "bad", 3);
	msgpack_pack_str(&pk, 6);
	msgpack_pack_str_body(&pk, "a\xb0\xb9z\xe6\x82", 6);
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	assert_int_equal(msgpack_unpack_next(&up, sb.data, sb.size, NULL), MSGPACK_UNPACK_SUCCESS);
	json_t *j = json_from_mp(&up.data);
	assert_non_null(j);
	char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	assert_non_null(text);
	assert_string_equal(text, "{\"bad\":\"a\\\\xb0\\\\xb9z\\\\xe6\\\\x82\",\"ok\":\"悦澜\"}");
	free(text);
	json_decref(j);
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&sb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_depth),
	    cmocka_unit_test(test_syntax),
	    cmocka_unit_test(test_invalid_utf8_shown_escaped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
