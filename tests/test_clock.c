/*
 * Unit tests of host/clock.c: local calendar time in Asia/Shanghai and across
 * Berlin's summer time changes (the skipped and the repeated hour), local
 * midnights also where a change skips midnight (São Paulo 2018), invalid
 * dates refused, round trips over two years, the zone check, and the
 * console's durations and times. Expected instants were computed with
 * Python's zoneinfo.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "linli/error.h"

static void zone(const char *name)
{
	char why[320];
	assert_int_equal(clock_zone_check(name, why, sizeof why), 0);
	assert_int_equal(clock_zone_apply(name), 0);
	assert_string_equal(clock_zone(), name);
}

static struct linli_tm local(int64_t ms)
{
	struct linli_tm t = {.size = sizeof t};
	assert_int_equal(clock_local(ms, &t), 0);
	return t;
}

static int64_t from(int y, int mo, int d, int h, int mi, int s, int ms)
{
	struct linli_tm t = {.size = sizeof t,
			     .year = y,
			     .month = mo,
			     .day = d,
			     .hour = h,
			     .minute = mi,
			     .second = s,
			     .ms = ms};
	int64_t out = -1;
	assert_int_equal(clock_from_local(&t, &out), 0);
	return out;
}

static int refused(int y, int mo, int d, int h, int mi, int s, int ms)
{
	struct linli_tm t = {.size = sizeof t,
			     .year = y,
			     .month = mo,
			     .day = d,
			     .hour = h,
			     .minute = mi,
			     .second = s,
			     .ms = ms};
	int64_t out = 42;
	int rc = clock_from_local(&t, &out);
	assert_int_equal(out, 42); /* left alone */
	return rc;
}

static void test_shanghai(void **state)
{
	(void)state;
	zone("Asia/Shanghai");
	/* 2026-12-05T10:35:00.123Z is Saturday 18:35 in Shanghai, day 339. */
	struct linli_tm t = local(1796466900123);
	assert_int_equal(t.year, 2026);
	assert_int_equal(t.month, 12);
	assert_int_equal(t.day, 5);
	assert_int_equal(t.hour, 18);
	assert_int_equal(t.minute, 35);
	assert_int_equal(t.second, 0);
	assert_int_equal(t.ms, 123);
	assert_int_equal(t.weekday, 6);
	assert_int_equal(t.yearday, 339);
	assert_int_equal(t.utc_offset_s, 28800);
	assert_int_equal(t.dst, 0);
	assert_int_equal(from(2026, 12, 5, 18, 35, 0, 123), 1796466900123);
	/* Sunday is 7, Monday 1. */
	assert_int_equal(local(1796466900123 + 86400000).weekday, 7);
	assert_int_equal(local(1796466900123 + 2 * 86400000).weekday, 1);
	char text[48];
	clock_local_text(1796466900123, text, sizeof text);
	assert_string_equal(text, "2026-12-05T18:35:00+08:00");
	/* Local midnight: 2026-12-05T00:00+08:00, and the next one. */
	int64_t d;
	assert_int_equal(clock_day_start(1796466900123, 0, &d), 0);
	assert_int_equal(d, 1796400000000);
	assert_int_equal(clock_day_start(1796466900123, 1, &d), 0);
	assert_int_equal(d, 1796486400000);
	assert_int_equal(clock_day_start(1796466900123, -365, &d), 0);
	assert_int_equal(local(d).year, 2025);
	assert_int_equal(local(d).hour, 0);
}

static void test_berlin_summer_time(void **state)
{
	(void)state;
	zone("Europe/Berlin");
	struct linli_tm s = local(1751371200000); /* 2025-07-01T12:00Z */
	assert_int_equal(s.hour, 14);
	assert_int_equal(s.utc_offset_s, 7200);
	assert_int_equal(s.dst, 1);
	struct linli_tm w = local(1751371200000 - 180LL * 86400000);
	assert_int_equal(w.utc_offset_s, 3600);
	assert_int_equal(w.dst, 0);
	/* 2025-03-30 02:30 does not exist: it moves forward by the gap, to 03:30 CEST. */
	int64_t gap = from(2025, 3, 30, 2, 30, 0, 0);
	assert_int_equal(gap, 1743298200000);
	assert_int_equal(local(gap).hour, 3);
	assert_int_equal(local(gap).minute, 30);
	/* 01:59 the same night is still CET, 03:00 already CEST: one hour between. */
	assert_int_equal(from(2025, 3, 30, 3, 0, 0, 0) - from(2025, 3, 30, 1, 0, 0, 0), 3600000);
	/* 2025-10-26 02:30 exists twice: the earlier, CEST (00:30Z). */
	int64_t twice = from(2025, 10, 26, 2, 30, 0, 0);
	assert_int_equal(twice, 1761438600000);
	assert_int_equal(local(twice).utc_offset_s, 7200);
	assert_int_equal(local(twice + 3600000).hour, 2); /* the later one */
	assert_int_equal(local(twice + 3600000).utc_offset_s, 3600);
	/* The day of the change has 23 hours; its midnight is 23:00Z the day before. */
	int64_t d0, d1;
	assert_int_equal(clock_day_start(1743328800000, 0, &d0), 0); /* 2025-03-30T10:00Z */
	assert_int_equal(d0, 1743289200000);
	assert_int_equal(clock_day_start(1743328800000, 1, &d1), 0);
	assert_int_equal(d1, 1743372000000);
	assert_int_equal(d1 - d0, 23 * 3600000);
}

static void test_midnight_skipped(void **state)
{
	(void)state;
	/* São Paulo began summer time at 00:00 on 2018-11-04: that day began at 01:00. */
	zone("America/Sao_Paulo");
	int64_t d;
	assert_int_equal(clock_day_start(1541332800000, 0, &d), 0); /* 2018-11-04T12:00Z */
	assert_int_equal(d, 1541300400000);
	struct linli_tm t = local(d);
	assert_int_equal(t.day, 4);
	assert_int_equal(t.hour, 1);
	assert_int_equal(local(d - 1).day, 3);
}

static void test_invalid_dates(void **state)
{
	(void)state;
	zone("Asia/Shanghai");
	assert_int_equal(refused(2025, 2, 29, 0, 0, 0, 0), LINLI_EINVAL); /* common year */
	assert_int_equal(from(2024, 2, 29, 0, 0, 0, 0) % 1000, 0);	  /* leap year */
	assert_int_equal(refused(2100, 2, 29, 0, 0, 0, 0), LINLI_EINVAL); /* not a leap year */
	from(2000, 2, 29, 0, 0, 0, 0);					  /* a leap year */
	assert_int_equal(refused(2026, 4, 31, 0, 0, 0, 0), LINLI_EINVAL);
	assert_int_equal(refused(2026, 13, 1, 0, 0, 0, 0), LINLI_EINVAL);
	assert_int_equal(refused(2026, 0, 1, 0, 0, 0, 0), LINLI_EINVAL);
	assert_int_equal(refused(2026, 1, 0, 0, 0, 0, 0), LINLI_EINVAL);
	assert_int_equal(refused(2026, 1, 1, 24, 0, 0, 0), LINLI_EINVAL);
	assert_int_equal(refused(2026, 1, 1, 0, 60, 0, 0), LINLI_EINVAL);
	assert_int_equal(refused(2026, 1, 1, 0, 0, 60, 0), LINLI_EINVAL);
	assert_int_equal(refused(2026, 1, 1, 0, 0, 0, 1000), LINLI_EINVAL);
	assert_int_equal(refused(2026, 1, 1, -1, 0, 0, 0), LINLI_EINVAL);
	assert_int_equal(refused(0, 1, 1, 0, 0, 0, 0), LINLI_EINVAL);
	assert_int_equal(refused(10000, 1, 1, 0, 0, 0, 0), LINLI_EINVAL);
	/* A size below 1.1's, and no struct at all. */
	struct linli_tm t = {.size = 8, .year = 2026, .month = 1, .day = 1};
	int64_t ms;
	assert_int_equal(clock_from_local(&t, &ms), LINLI_EINVAL);
	assert_int_equal(clock_local(0, &t), LINLI_EINVAL);
	assert_int_equal(clock_local(0, NULL), LINLI_EINVAL);
	/* A bigger struct of a later minor: what fits is filled, size kept. */
	struct {
		struct linli_tm t;
		int32_t later;
	} big = {.t = {.size = sizeof big}, .later = 77};
	assert_int_equal(clock_local(0, &big.t), 0);
	assert_int_equal(big.t.size, sizeof big.t);
	assert_int_equal(big.t.year, 1970);
	assert_int_equal(big.t.hour, 8);
	assert_int_equal(big.later, 77);
	/* Outside the years 1..9999. */
	assert_int_equal(clock_local(INT64_MAX, &big.t), LINLI_EINVAL);
	assert_int_equal(clock_local(INT64_MIN, &big.t), LINLI_EINVAL);
	assert_int_equal(clock_day_start(0, 4000000, &ms), LINLI_EINVAL);
}

static void test_before_1970(void **state)
{
	(void)state;
	zone("UTC");
	struct linli_tm t = local(-1); /* 1969-12-31T23:59:59.999Z, a Wednesday */
	assert_int_equal(t.year, 1969);
	assert_int_equal(t.month, 12);
	assert_int_equal(t.day, 31);
	assert_int_equal(t.hour, 23);
	assert_int_equal(t.second, 59);
	assert_int_equal(t.ms, 999);
	assert_int_equal(t.weekday, 3);
	assert_int_equal(t.yearday, 365);
	assert_int_equal(from(1969, 12, 31, 23, 59, 59, 999), -1);
	assert_int_equal(from(1, 1, 1, 0, 0, 0, 0), -62135596800000);
	assert_int_equal(local(-62135596800000).weekday, 1); /* 0001-01-01 was a Monday */
}

/* Every 7 h 13 min for two years: local → from_local is the same instant (or, in
 * the repeated hour, the earlier one that shows the same fields). */
static void test_round_trips(void **state)
{
	(void)state;
	const char *zones[] = {"Asia/Shanghai", "Europe/Berlin", "America/New_York",
			       "Australia/Lord_Howe"};
	for (size_t z = 0; z < sizeof zones / sizeof zones[0]; z++) {
		zone(zones[z]);
		for (int64_t ms = 1735689600000; ms < 1735689600000 + 730LL * 86400000;
		     ms += 26000123) {
			struct linli_tm t = local(ms);
			int64_t back = -1;
			assert_int_equal(clock_from_local(&t, &back), 0);
			if (back != ms) {
				struct linli_tm u = local(back);
				assert_true(back < ms);
				assert_int_equal(u.hour, t.hour);
				assert_int_equal(u.minute, t.minute);
				assert_int_equal(u.second, t.second);
			}
		}
	}
}

static void test_zone_check(void **state)
{
	(void)state;
	char why[320];
	assert_int_equal(clock_zone_check("Asia/Shanghai", why, sizeof why), 0);
	assert_int_equal(clock_zone_check("UTC", why, sizeof why), 0);
	assert_int_equal(clock_zone_check("Etc/GMT-8", why, sizeof why), 0);
	assert_int_equal(clock_zone_check("Mars/Olympus", why, sizeof why), LINLI_EINVAL);
	assert_non_null(strstr(why, "no such zone file"));
	assert_non_null(strstr(why, "Mars/Olympus"));
	assert_int_equal(clock_zone_check("Asia", why, sizeof why), LINLI_EINVAL);
	assert_non_null(strstr(why, "directory of zones"));
	assert_int_equal(clock_zone_check("../../etc/passwd", why, sizeof why), LINLI_EINVAL);
	assert_int_equal(clock_zone_check("/etc/localtime", why, sizeof why), LINLI_EINVAL);
	assert_int_equal(clock_zone_check("", why, sizeof why), LINLI_EINVAL);
	assert_int_equal(clock_zone_check("CST-8", why, sizeof why), LINLI_EINVAL);
	/* $TZDIR is where zones are looked up, as the C library does. */
	char dir[] = "/tmp/linli-tz-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[128];
	snprintf(path, sizeof path, "%s/Fake", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("not a zone\n", f);
	fclose(f);
	setenv("TZDIR", dir, 1);
	assert_int_equal(clock_zone_check("Fake", why, sizeof why), LINLI_EINVAL);
	assert_non_null(strstr(why, "not a TZif zone file"));
	assert_int_equal(clock_zone_check("Asia/Shanghai", why, sizeof why), LINLI_EINVAL);
	unsetenv("TZDIR");
	unlink(path);
	rmdir(dir);
}

static void test_durations(void **state)
{
	(void)state;
	char err[256];
	int64_t ms;
	const struct {
		const char *s;
		int64_t ms;
	} ok[] = {{"90s", 90000},	{"2h", 7200000},
		  {"3d", 259200000},	{"1500ms", 1500},
		  {"1h30m", 5400000},	{"0s", 0},
		  {"1d12h", 129600000}, {"3650d", 3650LL * 86400000}};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		assert_int_equal(clock_parse_duration(ok[i].s, &ms, err, sizeof err), 0);
		assert_int_equal(ms, ok[i].ms);
	}
	const char *bad[] = {"",
			     "-1h",
			     "90",
			     "5x",
			     "h",
			     "1h 30m",
			     "3651d",
			     "99999999999999999d",
			     "300000000000d",
			     "3650d1ms"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(clock_parse_duration(bad[i], &ms, err, sizeof err), LINLI_EINVAL);
	clock_parse_duration("-1h", &ms, err, sizeof err);
	assert_non_null(strstr(err, "only moves forward"));
	clock_parse_duration("90", &ms, err, sizeof err);
	assert_non_null(strstr(err, "needs a unit"));
}

static void test_times(void **state)
{
	(void)state;
	zone("Asia/Shanghai");
	char err[320];
	int64_t ms;
	const struct {
		const char *s;
		int64_t ms;
	} ok[] = {{"1796515200000", 1796515200000},
		  {"2026-12-06T00:00:00Z", 1796515200000},
		  {"2026-12-06T08:00:00+08:00", 1796515200000},
		  {"2026-12-06T08:00:00+0800", 1796515200000},
		  {"2026-12-05T19:00:00-05:00", 1796515200000},
		  {"2026-12-06T08:00", 1796515200000}, /* local: Shanghai */
		  {"2026-12-06 08:00:00.250", 1796515200250},
		  {"2026-12-06T08:00:00.5Z", 1796515200000 + 8 * 3600000 + 500},
		  {"2026-12-06", 1796486400000}}; /* local midnight */
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		assert_int_equal(clock_parse_time(ok[i].s, &ms, err, sizeof err), 0);
		assert_int_equal(ms, ok[i].ms);
	}
	const char *bad[] = {"",
			     "tomorrow",
			     "2026-02-30",
			     "2026-12-06T24:00:00Z",
			     "2026-12-06T08:00:00+25:00",
			     "2026-12-06T08:00:00.1234Z",
			     "2026-12-06T08:00:00Zjunk",
			     "2026-12-6",
			     "-5"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(clock_parse_time(bad[i], &ms, err, sizeof err), LINLI_EINVAL);
	clock_parse_time("tomorrow", &ms, err, sizeof err);
	assert_non_null(strstr(err, "'tomorrow'"));
}

static void test_advance(void **state)
{
	(void)state;
	int64_t before = clock_offset_ms();
	assert_int_equal(clock_advance(-1), LINLI_EINVAL);
	assert_int_equal(clock_advance(INT64_MAX), LINLI_EINVAL);
	assert_int_equal(clock_offset_ms(), before);
	assert_int_equal(clock_advance(5000), 0);
	assert_int_equal(clock_offset_ms(), before + 5000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_shanghai),
	    cmocka_unit_test(test_berlin_summer_time),
	    cmocka_unit_test(test_midnight_skipped),
	    cmocka_unit_test(test_invalid_dates),
	    cmocka_unit_test(test_before_1970),
	    cmocka_unit_test(test_round_trips),
	    cmocka_unit_test(test_zone_check),
	    cmocka_unit_test(test_durations),
	    cmocka_unit_test(test_times),
	    cmocka_unit_test(test_advance),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
