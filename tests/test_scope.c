/* Unit tests of host/scope.c: path syntax, depth and subtree containment. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "scope.h"

static void test_check(void **state)
{
	(void)state;
	char why[128];
	assert_true(scope_check("hefei", why, sizeof why));
	assert_true(scope_check("hefei/baohe/binhu/yuelan/g03", why, sizeof why));
	assert_true(scope_check("a-1/b_2", why, sizeof why));
	const char *bad[] = {"", "/hefei", "hefei/", "hefei//x", "Hefei", "he fei", "-x",
			     "a/b/c/d/e/f", "héfei"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		why[0] = '\0';
		assert_false(scope_check(bad[i], why, sizeof why));
		assert_true(strlen(why) > 0);
	}
	char longseg[80];
	memset(longseg, 'a', 70);
	longseg[70] = '\0';
	assert_false(scope_check(longseg, why, sizeof why));
}

static void test_depth_and_levels(void **state)
{
	(void)state;
	assert_int_equal(scope_depth("hefei"), 1);
	assert_int_equal(scope_depth("hefei/baohe/binhu/yuelan"), TIER_COMMUNITY);
	assert_int_equal(tier_level_parse("street"), TIER_STREET);
	assert_int_equal(tier_level_parse("village"), TIER_NONE);
	assert_string_equal(tier_level_name(TIER_GRID), "grid");
	assert_null(tier_level_name(TIER_NONE));
}

static void test_within(void **state)
{
	(void)state;
	assert_true(scope_within("hefei", "hefei"));
	assert_true(scope_within("hefei", "hefei/baohe/binhu"));
	assert_true(scope_within("", "anything/at/all"));
	assert_false(scope_within("hefei/baohe", "hefei/baohex"));    /* sibling with a prefix */
	assert_false(scope_within("hefei/baohe", "hefei/shushan/x")); /* sibling */
	assert_false(scope_within("hefei/baohe", "hefei"));	      /* parent */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_depth_and_levels),
		cmocka_unit_test(test_within),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
