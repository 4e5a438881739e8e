/* Unit tests of host/apires.c: the resource kinds of API keys, parsed, validated, checked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "apires.h"
#include "linli/error.h"

static void expect_bad(const char *text, const char *msg)
{
	struct apires_set s;
	char err[256] = "";
	int rc = apires_parse(text, &s, err, sizeof err);
	if (rc != LINLI_EINVAL || !strstr(err, msg)) {
		print_error("'%s': rc %d, error \"%s\", expected \"%s\"\n", text, rc, err, msg);
		fail();
	}
}

static void test_parse(void **state)
{
	(void)state;
	struct apires_set s;
	char err[256], text[APIRES_TEXT_MAX];
	assert_int_equal(apires_parse("dataset:parking_spaces, devices:parking  app:alarms/active,"
				      "app:grid,metrics,screen,devices:*,dataset:parking_spaces",
				      &s, err, sizeof err),
			 0);
	assert_int_equal(s.n, 7); /* the repeated dataset is kept once */
	assert_int_equal(s.v[0].kind, APIRES_DATASET);
	assert_string_equal(s.v[0].name, "parking_spaces");
	assert_int_equal(s.v[2].kind, APIRES_APP);
	assert_string_equal(s.v[2].name, "alarms");
	assert_string_equal(s.v[2].route, "active");
	assert_string_equal(s.v[3].route, "");
	assert_int_equal(s.v[4].kind, APIRES_METRICS);
	assert_string_equal(s.v[6].name, "*");
	apires_format(&s, text, sizeof text);
	assert_string_equal(text,
			    "dataset:parking_spaces,devices:parking,app:alarms/active,app:grid,"
			    "metrics,screen,devices:*");
	/* The canonical text parses to the same set. */
	struct apires_set t;
	assert_int_equal(apires_parse(text, &t, err, sizeof err), 0);
	assert_int_equal(t.n, s.n);
	assert_memory_equal(&t.v, &s.v, sizeof s.v[0] * (size_t)s.n);
}

static void test_parse_errors(void **state)
{
	(void)state;
	expect_bad("", "no resources given");
	expect_bad(" , ,", "no resources given");
	expect_bad("datasets:x", "unknown kind (one of dataset:NAME, devices:CLASS, "
				 "app:PLUGIN[/ROUTE], metrics, screen)");
	expect_bad("parking_spaces", "resource 'parking_spaces': unknown kind");
	expect_bad("dataset", "write it dataset:NAME");
	expect_bad("dataset:", "write it dataset:NAME");
	expect_bad("dataset:Residents", "'Residents' is not a name");
	expect_bad("dataset:*", "'*' is not a name");
	expect_bad("devices:../x", "is not a name ([a-z][a-z0-9_]*) or *");
	expect_bad("metrics:x", "metrics takes no name");
	expect_bad("app:alarms/", "the route is not segments");
	expect_bad("app:alarms//x", "the route is not segments");
	expect_bad("app:alarms/A", "the route is not segments");
	expect_bad("app:alarms/a/../b", "the route is not segments");
	expect_bad("dataset:x/y", "is not a name");
	expect_bad("\xff\xfe", "resource '\\xff\\xfe'");
	char many[APIRES_MAX * 16] = "";
	for (int i = 0; i <= APIRES_MAX; i++)
		snprintf(many + strlen(many), sizeof many - strlen(many), "dataset:d%d,", i);
	expect_bad(many, "more than 64 resources");
}

static void test_allows(void **state)
{
	(void)state;
	struct apires_set s;
	char err[256];
	assert_int_equal(apires_parse("dataset:parking_spaces,devices:parking,app:alarms/active",
				      &s, err, sizeof err),
			 0);
	assert_true(apires_allows(&s, APIRES_DATASET, "parking_spaces", NULL));
	assert_false(apires_allows(&s, APIRES_DATASET, "parking", NULL));
	assert_false(apires_allows(&s, APIRES_DATASET, "parking_spaces_x", NULL));
	assert_true(apires_allows(&s, APIRES_DEVICES, NULL, NULL));
	assert_true(apires_allows(&s, APIRES_DEVICES, "parking", NULL));
	assert_false(apires_allows(&s, APIRES_DEVICES, "door", NULL));
	assert_true(apires_allows(&s, APIRES_APP, "alarms", "active"));
	assert_true(apires_allows(&s, APIRES_APP, "alarms", "active/today"));
	assert_false(apires_allows(&s, APIRES_APP, "alarms", "activex"));
	assert_false(apires_allows(&s, APIRES_APP, "alarms", "history"));
	assert_false(apires_allows(&s, APIRES_APP, "alarms", NULL));
	assert_false(apires_allows(&s, APIRES_APP, "grid", "active"));
	assert_false(apires_allows(&s, APIRES_METRICS, NULL, NULL));
	assert_false(apires_allows(&s, APIRES_SCREEN, NULL, NULL));
	assert_int_equal(apires_parse("devices:*,app:grid,metrics", &s, err, sizeof err), 0);
	assert_true(apires_allows(&s, APIRES_DEVICES, "door", NULL));
	assert_true(apires_allows(&s, APIRES_APP, "grid", "incidents/open"));
	assert_true(apires_allows(&s, APIRES_APP, "grid", NULL));
	assert_true(apires_allows(&s, APIRES_METRICS, NULL, NULL));
	assert_false(apires_allows(&s, APIRES_DATASET, NULL, NULL));
}

/* Keys stored before resources existed keep what they had; never refused for their age. */
static void test_from_record(void **state)
{
	(void)state;
	struct apires_set s;
	char err[256], text[APIRES_TEXT_MAX];
	assert_int_equal(
	    apires_from_record(NULL, "parking_spaces applications", &s, err, sizeof err), 0);
	apires_format(&s, text, sizeof text);
	assert_string_equal(text, "dataset:parking_spaces,dataset:applications");
	assert_int_equal(apires_from_record(NULL, "residents devices", &s, err, sizeof err), 0);
	apires_format(&s, text, sizeof text);
	assert_string_equal(text, "dataset:residents,devices:*");
	/* A record with resources: those, whatever its datasets say. */
	assert_int_equal(apires_from_record("devices:parking", "residents", &s, err, sizeof err),
			 0);
	apires_format(&s, text, sizeof text);
	assert_string_equal(text, "devices:parking");
	/* Unreadable: nothing at all. */
	assert_int_equal(apires_from_record("bogus:x", "residents", &s, err, sizeof err),
			 LINLI_EINVAL);
	assert_int_equal(s.n, 0);
	assert_int_equal(apires_from_record(NULL, "", &s, err, sizeof err), LINLI_EINVAL);
	assert_int_equal(s.n, 0);
}

static void test_validate(void **state)
{
	(void)state;
	struct catalog *c;
	char err[256];
	assert_int_equal(catalog_load(SRCDIR "/catalog", &c, err, sizeof err), 0);
	struct {
		const char *text;
		int rc;
		const char *msg;
	} cases[] = {
	    {"dataset:parking_spaces,devices:parking,devices:*,app:alarms/x,metrics,screen", 0, ""},
	    {"dataset:nosuch", LINLI_ENOENT, "dataset:nosuch: no such dataset"},
	    {"dataset:watchlist", LINLI_EPERM, "not shared (not_shared)"},
	    {"dataset:accounts", LINLI_EPERM, "not shared (system)"},
	    {"dataset:devices", LINLI_EPERM, "read as devices:CLASS"},
	    {"devices:nosuch", LINLI_ENOENT, "devices:nosuch: no such device class"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct apires_set s;
		assert_int_equal(apires_parse(cases[i].text, &s, err, sizeof err), 0);
		err[0] = '\0';
		int rc = apires_validate(&s, c, err, sizeof err);
		if (rc != cases[i].rc || !strstr(err, cases[i].msg)) {
			print_error("'%s': rc %d, error \"%s\"\n", cases[i].text, rc, err);
			fail();
		}
	}
	catalog_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),    cmocka_unit_test(test_parse_errors),
	    cmocka_unit_test(test_allows),   cmocka_unit_test(test_from_record),
	    cmocka_unit_test(test_validate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
