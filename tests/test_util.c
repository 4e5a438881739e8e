/* Unit tests of host/util.c: untrusted bytes made into bounded, valid UTF-8 text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "record.h"
#include "util.h"

static void test_char_len(void **state)
{
	(void)state;
	assert_int_equal(utf8_char_len("a", 1), 1);
	assert_int_equal(utf8_char_len("\xc3\xa9", 2), 2);
	assert_int_equal(utf8_char_len("张", 3), 3);
	assert_int_equal(utf8_char_len("\xf0\x9f\x98\x80", 4), 4);
	assert_int_equal(utf8_char_len("\xff", 1), 0);		   /* never a lead byte */
	assert_int_equal(utf8_char_len("\x80", 1), 0);		   /* stray continuation */
	assert_int_equal(utf8_char_len("\xc0\xae", 2), 0);	   /* overlong '.' */
	assert_int_equal(utf8_char_len("\xe5\xbc", 2), 0);	   /* truncated */
	assert_int_equal(utf8_char_len("\xed\xa0\x80", 3), 0);	   /* surrogate */
	assert_int_equal(utf8_char_len("\xf4\x90\x80\x80", 4), 0); /* above U+10FFFF */
	assert_int_equal(utf8_char_len("", 0), 0);
}

static void test_escape(void **state)
{
	(void)state;
	char out[64];
	assert_int_equal(utf8_escape(out, sizeof out, "plain 张三", 12), 12);
	assert_string_equal(out, "plain 张三");
	utf8_escape(out, sizeof out, "/api/v1/\xff\xfe", 10);
	assert_string_equal(out, "/api/v1/\\xff\\xfe");
	utf8_escape(out, sizeof out, "\xc0\xae\xc0\xae/x", 6);
	assert_string_equal(out, "\\xc0\\xae\\xc0\\xae/x");
	/* NUL and control characters are escaped too. */
	utf8_escape(out, sizeof out, "a\0b\n\x7f", 5);
	assert_string_equal(out, "a\\x00b\\x0a\\x7f");
	/* Idempotent: what is escaped once stays as it is. */
	char twice[64];
	utf8_escape(out, sizeof out, "x\xff\\y", 4);
	utf8_escape(twice, sizeof twice, out, strlen(out));
	assert_string_equal(twice, out);
	assert_string_equal(out, "x\\xff\\y");
	/* A truncated character at the end of the input is a stray byte. */
	utf8_escape(out, sizeof out, "ok\xe5\xbc", 4);
	assert_string_equal(out, "ok\\xe5\\xbc");
}

static void test_escape_bounds(void **state)
{
	(void)state;
	char out[8];
	/* Exactly fits: no ellipsis. */
	assert_int_equal(utf8_escape(out, sizeof out, "abcdefg", 7), 7);
	assert_string_equal(out, "abcdefg");
	/* Longer: cut at a character boundary and marked. */
	utf8_escape(out, sizeof out, "abcdefgh", 8);
	assert_string_equal(out, "abcd…");
	utf8_escape(out, sizeof out, "张三李四", 12);
	assert_string_equal(out, "张…"); /* never half of 三 */
	utf8_escape(out, sizeof out, "\xff\xff\xff", 3);
	assert_string_equal(out, "\\xff…");
	/* Whatever the input and the size, the output is valid UTF-8 and fits. */
	char in[256];
	for (int i = 0; i < 256; i++)
		in[i] = (char)(i * 37 + 11);
	for (size_t sz = 1; sz < 40; sz++) {
		char o[40];
		memset(o, 'Z', sizeof o);
		size_t n = utf8_escape(o, sz, in, sizeof in);
		assert_true(n < sz);
		assert_int_equal(o[n], '\0');
		assert_int_equal(strlen(o), n);
		assert_true(record_utf8_valid(o, n));
	}
	assert_int_equal(utf8_escape(out, 1, "abc", 3), 0);
	assert_string_equal(out, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_char_len),
	    cmocka_unit_test(test_escape),
	    cmocka_unit_test(test_escape_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
