/*
 * Unit tests of plugins/lib (the shared workflow library): transition tables
 * (validation, the message of an illegal move) and the working calendar
 * (deadlines and durations in working time across weekends, holidays, make-up
 * working days, pauses, the end of a day, a year without a calendar). Local
 * time is a fixed UTC+08:00 zone, so results do not depend on the machine.
 * And plugcmd_register against a recording api table: what a plugin's tables
 * register, in order, and the first failure named.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <linli/error.h>

#include <linli/linli.h>

#include "plugcmd.h"
#include "wf_cal.h"
#include "wf_table.h"

/* ---- a fixed zone, UTC+08:00, through the C library's UTC calendar ---- */

#define ZONE_S (8 * 3600)

static int fixed_local(void *ud, int64_t ms, struct linli_tm *t)
{
	(void)ud;
	time_t s = (time_t)(ms / 1000) + ZONE_S;
	struct tm tm;
	if (!gmtime_r(&s, &tm))
		return LINLI_EINVAL;
	t->year = tm.tm_year + 1900, t->month = tm.tm_mon + 1, t->day = tm.tm_mday;
	t->hour = tm.tm_hour, t->minute = tm.tm_min, t->second = tm.tm_sec;
	t->ms = (int)(ms % 1000);
	return 0;
}

static int fixed_from_local(void *ud, const struct linli_tm *t, int64_t *ms)
{
	(void)ud;
	struct tm tm = {.tm_year = t->year - 1900,
			.tm_mon = t->month - 1,
			.tm_mday = t->day,
			.tm_hour = t->hour,
			.tm_min = t->minute,
			.tm_sec = t->second};
	*ms = ((int64_t)timegm(&tm) - ZONE_S) * 1000 + t->ms;
	return 0;
}

static const struct wf_clock clk = {fixed_local, fixed_from_local, NULL};

/* Local "YYYY-MM-DD HH:MM" in the fixed zone as ms. */
static int64_t at(int y, int mo, int d, int h, int mi)
{
	struct linli_tm t = {
	    .size = sizeof t, .year = y, .month = mo, .day = d, .hour = h, .minute = mi};
	int64_t ms;
	fixed_from_local(NULL, &t, &ms);
	return ms;
}

#define H(x)   ((int64_t)((x)*3600000.0))
#define MIN(x) ((int64_t)(x)*60000)

/* 2026 with National Day off (1–7 October) and its make-up days (Sunday 27 September,
 * Saturday 10 October): a fixture, not the State Council's announcement. */
static void cal_2026(struct wf_cal *c)
{
	char err[256] = "";
	wf_cal_init(c);
	assert_int_equal(wf_cal_set_hours(c, "09:00-12:00,13:30-17:30", err, sizeof err), 0);
	assert_int_equal(wf_cal_set_weekend(c, "6,7", err, sizeof err), 0);
	assert_int_equal(wf_cal_add_year(c, 2026,
					 "2026-01-01,2026-10-01,2026-10-02,2026-10-03,2026-10-04,"
					 "2026-10-05,2026-10-06,2026-10-07",
					 "2026-09-27,2026-10-10", err, sizeof err),
			 0);
}

static int64_t add(const struct wf_cal *c, int64_t start, int64_t work, const struct wf_span *p,
		   size_t np, int *missing)
{
	char err[256] = "";
	int64_t out = -1;
	int rc = wf_cal_add(c, &clk, start, work, p, np, &out, missing, err, sizeof err);
	if (rc)
		fail_msg("wf_cal_add: %s", err);
	return out;
}

static int64_t between(const struct wf_cal *c, int64_t a, int64_t b, const struct wf_span *p,
		       size_t np)
{
	char err[256] = "";
	int64_t out = -1;
	int missing;
	int rc = wf_cal_between(c, &clk, a, b, p, np, &out, &missing, err, sizeof err);
	if (rc)
		fail_msg("wf_cal_between: %s", err);
	return out;
}

static void test_cal_across_weekend(void **state)
{
	(void)state;
	struct wf_cal c;
	cal_2026(&c);
	/* Friday 4 December 16:30 + 2 h: one hour on Friday, one on Monday. */
	int64_t fri = at(2026, 12, 4, 16, 30), mon = at(2026, 12, 7, 10, 0);
	assert_int_equal(add(&c, fri, H(2), NULL, 0, NULL), mon);
	assert_int_equal(between(&c, fri, mon, NULL, 0), H(2));
	/* Started on Saturday: the clock starts Monday 09:00. */
	assert_int_equal(add(&c, at(2026, 12, 5, 11, 0), H(1), NULL, 0, NULL), mon);
	assert_int_equal(between(&c, at(2026, 12, 5, 0, 0), at(2026, 12, 7, 0, 0), NULL, 0), 0);
	/* A full working week: 5 × 7 h. */
	assert_int_equal(between(&c, at(2026, 11, 30, 0, 0), at(2026, 12, 7, 0, 0), NULL, 0),
			 H(35));
}

static void test_cal_holiday(void **state)
{
	(void)state;
	struct wf_cal c;
	cal_2026(&c);
	/* Wednesday 30 September 17:00 + 1 h: half an hour, the holiday, then 8 October. */
	int64_t wed = at(2026, 9, 30, 17, 0);
	assert_int_equal(add(&c, wed, H(1), NULL, 0, NULL), at(2026, 10, 8, 9, 30));
	assert_false(wf_cal_is_workday(&c, 2026, 10, 5)); /* a Monday in the holiday */
	assert_int_equal(between(&c, at(2026, 10, 1, 0, 0), at(2026, 10, 8, 0, 0), NULL, 0), 0);
	/* New Year's Day, a Thursday */
	assert_int_equal(add(&c, at(2025 + 1, 1, 1, 9, 0), H(1), NULL, 0, NULL),
			 at(2026, 1, 2, 10, 0));
}

static void test_cal_makeup_day(void **state)
{
	(void)state;
	struct wf_cal c;
	cal_2026(&c);
	/* Friday 9 October 17:00 + 1 h: Saturday 10 October is a make-up working day. */
	assert_true(wf_cal_is_workday(&c, 2026, 10, 10));
	assert_false(wf_cal_is_workday(&c, 2026, 10, 11));
	assert_int_equal(add(&c, at(2026, 10, 9, 17, 0), H(1), NULL, 0, NULL),
			 at(2026, 10, 10, 9, 30));
	/* Sunday 27 September too: Saturday 26 17:00 + 2 h lands on Sunday 11:00. */
	assert_int_equal(add(&c, at(2026, 9, 26, 17, 0), H(2), NULL, 0, NULL),
			 at(2026, 9, 27, 11, 0));
	assert_int_equal(between(&c, at(2026, 9, 26, 0, 0), at(2026, 9, 28, 0, 0), NULL, 0), H(7));
}

static void test_cal_pause(void **state)
{
	(void)state;
	struct wf_cal c;
	cal_2026(&c);
	/* Monday 7 December 09:00 + 4 h, waiting for the reporter 10:00–14:00:
	 * 1 h before, 3 h from 14:00 → 17:00 (the lunch break is no work anyway). */
	int64_t mon = at(2026, 12, 7, 9, 0);
	struct wf_span p = {at(2026, 12, 7, 10, 0), at(2026, 12, 7, 14, 0)};
	assert_int_equal(add(&c, mon, H(4), &p, 1, NULL), at(2026, 12, 7, 17, 0));
	assert_int_equal(between(&c, mon, at(2026, 12, 7, 17, 0), &p, 1), H(4));
	/* Overlapping and unsorted pauses merge; an open pause stops the clock for good. */
	struct wf_span two[] = {{at(2026, 12, 7, 11, 0), at(2026, 12, 7, 15, 0)}, p};
	assert_int_equal(between(&c, mon, at(2026, 12, 7, 17, 30), two, 2), H(1 + 2.5));
	struct wf_span open = {at(2026, 12, 7, 10, 0), INT64_MAX};
	assert_int_equal(between(&c, mon, at(2026, 12, 9, 0, 0), &open, 1), H(1));
	char err[256];
	int64_t out;
	assert_int_equal(wf_cal_add(&c, &clk, mon, H(2), &open, 1, &out, NULL, err, sizeof err),
			 LINLI_ELIMIT);
	/* More pauses than the library takes: refused by name. */
	struct wf_span many[WF_CAL_MAX_PAUSES + 1] = {{0}};
	assert_int_equal(wf_cal_add(&c, &clk, mon, H(1), many, WF_CAL_MAX_PAUSES + 1, &out, NULL,
				    err, sizeof err),
			 LINLI_EINVAL);
	assert_non_null(strstr(err, "paused intervals"));
}

static void test_cal_end_of_day(void **state)
{
	(void)state;
	struct wf_cal c;
	cal_2026(&c);
	/* A deadline that lands on the end of a period is that end, not the next start. */
	int64_t mon = at(2026, 12, 7, 9, 0);
	assert_int_equal(add(&c, mon, H(7), NULL, 0, NULL), at(2026, 12, 7, 17, 30));
	assert_int_equal(add(&c, mon, H(3), NULL, 0, NULL), at(2026, 12, 7, 12, 0));
	assert_int_equal(add(&c, mon, H(3) + 1, NULL, 0, NULL), at(2026, 12, 7, 13, 30) + 1);
	/* Started at lunch or after hours: the clock starts with the next period. */
	assert_int_equal(add(&c, at(2026, 12, 7, 12, 30), MIN(30), NULL, 0, NULL),
			 at(2026, 12, 7, 14, 0));
	assert_int_equal(add(&c, at(2026, 12, 7, 20, 0), MIN(30), NULL, 0, NULL),
			 at(2026, 12, 8, 9, 30));
	/* One working day (7 h) from Monday 10:00 is Tuesday 10:00. */
	assert_int_equal(wf_cal_day_ms(&c), H(7));
	assert_int_equal(add(&c, at(2026, 12, 7, 10, 0), wf_cal_day_ms(&c), NULL, 0, NULL),
			 at(2026, 12, 8, 10, 0));
	assert_int_equal(add(&c, mon, 0, NULL, 0, NULL), mon);
	assert_int_equal(between(&c, mon, mon, NULL, 0), 0);
}

static void test_cal_missing_year(void **state)
{
	(void)state;
	struct wf_cal c;
	cal_2026(&c);
	int missing = -1;
	add(&c, at(2026, 12, 7, 9, 0), H(1), NULL, 0, &missing);
	assert_int_equal(missing, 0);
	/* Thursday 31 December 2026 17:00 + 1 h walks into 2027, which has no holidays:
	 * computed by hours and weekend (Friday 1 January counts as a working day), and said. */
	assert_false(wf_cal_covers(&c, 2027));
	assert_int_equal(add(&c, at(2026, 12, 31, 17, 0), H(1), NULL, 0, &missing),
			 at(2027, 1, 1, 9, 30));
	assert_int_equal(missing, 2027);
	char err[256] = "";
	assert_int_equal(wf_cal_add_year(&c, 2027, "2027-01-01", "", err, sizeof err), 0);
	assert_int_equal(add(&c, at(2026, 12, 31, 17, 0), H(1), NULL, 0, &missing),
			 at(2027, 1, 4, 9, 30));
	assert_int_equal(missing, 0);
}

static void test_cal_refusals(void **state)
{
	(void)state;
	struct wf_cal c;
	char err[256];
	wf_cal_init(&c);
	static const struct {
		const char *hours, *needle;
	} bad_hours[] = {
	    {"9-12", "period 1 '9-12' is not HH:MM-HH:MM"},
	    {"09:00-12:00,13:30-17:3", "period 2 '13:30-17:3' is not HH:MM-HH:MM"},
	    {"12:00-09:00", "period 1 '12:00-09:00' ends before it starts"},
	    {"09:00-12:00,11:00-14:00", "period 2 '11:00-14:00' overlaps"},
	    {"09:00-25:00", "is not HH:MM-HH:MM"},
	    {"", "no working period"},
	};
	for (size_t i = 0; i < sizeof bad_hours / sizeof bad_hours[0]; i++) {
		err[0] = '\0';
		assert_int_equal(wf_cal_set_hours(&c, bad_hours[i].hours, err, sizeof err),
				 LINLI_EINVAL);
		if (!strstr(err, bad_hours[i].needle))
			fail_msg("hours '%s': %s", bad_hours[i].hours, err);
	}
	assert_int_equal(wf_cal_set_hours(&c, "00:00-24:00", err, sizeof err), 0);
	assert_int_equal(wf_cal_day_ms(&c), H(24));
	assert_int_equal(wf_cal_set_weekend(&c, "6,8", err, sizeof err), LINLI_EINVAL);
	assert_non_null(strstr(err, "weekend: '8' is not a weekday"));
	assert_int_equal(wf_cal_set_weekend(&c, "", err, sizeof err), 0);
	assert_true(wf_cal_is_workday(&c, 2026, 12, 6)); /* a Sunday, no weekend */

	static const struct {
		const char *holidays, *workdays, *needle;
	} bad_dates[] = {
	    {"2026-02-30", "", "holidays 2026: '2026-02-30' is not a date YYYY-MM-DD"},
	    {"2026-1-01", "", "'2026-1-01' is not a date"},
	    {"2027-01-01", "", "holidays 2026: '2027-01-01' is not in 2026"},
	    {"2026-10-01,2026-10-01", "", "'2026-10-01' is listed twice"},
	    {"2026-10-01", "2026-10-01", "workdays 2026: '2026-10-01' is listed twice"},
	};
	for (size_t i = 0; i < sizeof bad_dates / sizeof bad_dates[0]; i++) {
		err[0] = '\0';
		assert_int_equal(wf_cal_add_year(&c, 2026, bad_dates[i].holidays,
						 bad_dates[i].workdays, err, sizeof err),
				 LINLI_EINVAL);
		if (!strstr(err, bad_dates[i].needle))
			fail_msg("dates '%s': %s", bad_dates[i].holidays, err);
		assert_int_equal(c.n_dates, 0); /* all or nothing */
		assert_false(wf_cal_covers(&c, 2026));
	}
	assert_int_equal(wf_cal_add_year(&c, 2026, "2026-10-01", NULL, err, sizeof err), 0);
	assert_int_equal(wf_cal_add_year(&c, 2026, "", NULL, err, sizeof err), LINLI_EEXIST);
	assert_non_null(strstr(err, "year 2026: its holidays were given already"));

	/* A calendar without working time: no deadline, and said so; durations are 0. */
	struct wf_cal none;
	wf_cal_init(&none);
	int64_t out;
	assert_int_equal(wf_cal_add(&none, &clk, at(2026, 12, 7, 9, 0), H(1), NULL, 0, &out, NULL,
				    err, sizeof err),
			 LINLI_ELIMIT);
	assert_non_null(strstr(err, "no working time within"));
	assert_int_equal(between(&none, at(2026, 12, 7, 9, 0), at(2026, 12, 9, 9, 0), NULL, 0), 0);
	assert_int_equal(wf_cal_add(&none, &clk, 0, -1, NULL, 0, &out, NULL, err, sizeof err),
			 LINLI_EINVAL);
	assert_int_equal(wf_cal_between(&none, &clk, 0, (int64_t)(WF_CAL_MAX_DAYS + 2) * 86400000,
					NULL, 0, &out, NULL, err, sizeof err),
			 LINLI_ELIMIT);
}

/* ---- transition tables ---- */

static const char *const st[] = {"reported", "filed",  "dispatched", "processing",
				 "returned", "closed", "void"};
static const struct wf_move mv[] = {
    {"reported", "file", "filed", "t.intake"},
    {"reported", "void", "void", "t.intake"},
    {"filed", "dispatch", "dispatched", "t.dispatch"},
    {"dispatched", "accept", "processing", "t.handle"},
    {"dispatched", "return", "returned", "t.handle"},
    {"returned", "dispatch", "dispatched", "t.dispatch"},
    {"processing", "close", "closed", NULL},
};
static const struct wf_table good = {"case", "reported", st, 7, mv, 7};

static void test_table_moves(void **state)
{
	(void)state;
	char err[256] = "";
	assert_int_equal(wf_table_check(&good, err, sizeof err), 0);
	const struct wf_move *m;
	assert_int_equal(wf_move_check(&good, "i-7", "dispatched", "accept", &m, err, sizeof err),
			 0);
	assert_string_equal(m->to, "processing");
	assert_string_equal(m->action, "t.handle");
	assert_int_equal(wf_move_check(&good, "i-7", "dispatched", "close", &m, err, sizeof err),
			 LINLI_ESTATE);
	assert_null(m);
	assert_string_equal(err, "case i-7 is dispatched: cannot close: allowed: accept → "
				 "processing, return → returned");
	assert_int_equal(wf_move_check(&good, "i-7", "closed", "file", NULL, err, sizeof err),
			 LINLI_ESTATE);
	assert_string_equal(err, "case i-7 is closed: cannot file: no move is allowed");
	assert_int_equal(wf_move_check(&good, "i-7", "accepted", "file", NULL, err, sizeof err),
			 LINLI_EINVAL);
	assert_string_equal(err, "case i-7 has an unknown state 'accepted'");
	assert_true(wf_state_final(&good, "void"));
	assert_false(wf_state_final(&good, "returned"));
	assert_true(wf_state_known(&good, "returned"));
	assert_false(wf_state_known(&good, "x"));
}

static void test_table_check(void **state)
{
	(void)state;
	char err[256];
	static const struct wf_move typo[] = {{"reported", "file", "fild", NULL}};
	struct wf_table t = {"incident", "reported", st, 2, typo, 1};
	assert_int_equal(wf_table_check(&t, err, sizeof err), LINLI_EINVAL);
	assert_string_equal(err, "table incident: move 1 (file): unknown state 'fild'");

	static const struct wf_move unreach[] = {{"reported", "file", "filed", NULL}};
	t = (struct wf_table){"incident", "reported", st, 3, unreach, 1};
	assert_int_equal(wf_table_check(&t, err, sizeof err), LINLI_EINVAL);
	assert_string_equal(err, "table incident: state 'dispatched' cannot be reached from "
				 "'reported'");

	static const struct wf_move twice[] = {{"reported", "file", "filed", NULL},
					       {"reported", "file", "filed", NULL}};
	t = (struct wf_table){"incident", "reported", st, 2, twice, 2};
	assert_int_equal(wf_table_check(&t, err, sizeof err), LINLI_EINVAL);
	assert_string_equal(err, "table incident: move 2: verb 'file' leaves state 'reported' "
				 "twice (also move 1)");

	t = (struct wf_table){"incident", "new", st, 2, unreach, 1};
	assert_int_equal(wf_table_check(&t, err, sizeof err), LINLI_EINVAL);
	assert_string_equal(err, "table incident: unknown initial state 'new'");

	static const char *const dup[] = {"reported", "reported"};
	t = (struct wf_table){"incident", "reported", dup, 2, NULL, 0};
	assert_int_equal(wf_table_check(&t, err, sizeof err), LINLI_EINVAL);
	assert_non_null(strstr(err, "state 2 ('reported') is empty or named twice"));
}

/* ---- plugcmd_register against a recording api ---- */

static char calls[1024];
static const char *refuse; /* the name whose registration fails with LINLI_EEXIST */
static void *seen_ud;

static int rec_call(const char *what, const char *name, const char *extra)
{
	size_t n = strlen(calls);
	snprintf(calls + n, sizeof calls - n, "%s %s%s%s;", what, name, extra ? " " : "",
		 extra ? extra : "");
	return refuse && !strcmp(name, refuse) ? LINLI_EEXIST : 0;
}

static int f_action(linli_ctx *c, const char *name, const char *role, const char *level,
		    const char *duty, const char *summary)
{
	(void)c, (void)level, (void)duty, (void)summary;
	return rec_call("action", name, role);
}

static int f_cmd(linli_ctx *c, const char *sub, const char *usage, const char *summary,
		 linli_cmd_fn fn, void *ud)
{
	(void)c, (void)usage, (void)summary, (void)fn;
	seen_ud = ud;
	return rec_call("cmd", sub, NULL);
}

static int f_require(linli_ctx *c, const char *sub, const char *action)
{
	(void)c;
	return rec_call("require", sub, action);
}

static int f_route(linli_ctx *c, const char *name, const char *method, const char *pattern,
		   linli_route_fn fn, void *ud)
{
	(void)c, (void)pattern, (void)fn, (void)ud;
	return rec_call("route", name, method);
}

static int f_route_require(linli_ctx *c, const char *name, const char *action)
{
	(void)c;
	return rec_call("route_require", name, action);
}

static int noop_cmd(linli_ctx *c, const struct linli_cmd_req *r, linli_record **reply,
		    char *err, size_t errlen)
{
	(void)c, (void)r, (void)reply, (void)err, (void)errlen;
	return 0;
}

static void test_plugcmd_register(void **unused)
{
	(void)unused;
	struct linli_api api = {.action_declare = f_action,
				.cmd_register = f_cmd,
				.cmd_require = f_require,
				.route_register = f_route,
				.route_require = f_route_require};
	static const struct plugcmd_action acts[] = {
	    {"x.read", "viewer", NULL, NULL, "read"}, {"x.write", "operator", NULL, NULL, "write"}};
	static const struct plugcmd_cmd cmds[] = {{"list", "", "list", "x.read", noop_cmd},
						  {"raise", "ID", "raise", NULL, noop_cmd},
						  {"set", "ID", "set", "x.write", noop_cmd}};
	static const struct plugcmd_route routes[] = {{"items", "GET", "items", "x.read", NULL},
						      {"hook", "POST", "hook", NULL, NULL}};
	char err[128] = "";
	int ud;
	calls[0] = 0, refuse = NULL;
	assert_int_equal(plugcmd_register(&api, NULL, acts, PLUGCMD_N(acts), cmds, PLUGCMD_N(cmds),
					  routes, PLUGCMD_N(routes), &ud, err, sizeof err),
			 0);
	assert_string_equal(calls, "action x.read viewer;action x.write operator;cmd list;"
				   "require list x.read;cmd raise;cmd set;require set x.write;"
				   "route items GET;route_require items x.read;route hook POST;");
	assert_ptr_equal(seen_ud, &ud);
	assert_string_equal(err, "");

	/* the first failure stops the rest and is named */
	calls[0] = 0, refuse = "raise";
	assert_int_equal(plugcmd_register(&api, NULL, acts, PLUGCMD_N(acts), cmds, PLUGCMD_N(cmds),
					  routes, PLUGCMD_N(routes), &ud, err, sizeof err),
			 LINLI_EEXIST);
	assert_string_equal(calls, "action x.read viewer;action x.write operator;cmd list;"
				   "require list x.read;cmd raise;");
	assert_non_null(strstr(err, "registering command 'raise': "));
	calls[0] = 0, refuse = "x.write";
	assert_int_equal(plugcmd_register(&api, NULL, acts, PLUGCMD_N(acts), cmds, PLUGCMD_N(cmds),
					  NULL, 0, &ud, err, sizeof err),
			 LINLI_EEXIST);
	assert_non_null(strstr(err, "declaring action 'x.write': "));
	calls[0] = 0, refuse = "hook";
	assert_int_equal(plugcmd_register(&api, NULL, NULL, 0, NULL, 0, routes, PLUGCMD_N(routes),
					  &ud, err, sizeof err),
			 LINLI_EEXIST);
	assert_string_equal(calls, "route items GET;route_require items x.read;route hook POST;");
	assert_non_null(strstr(err, "registering route 'hook': "));
}

/* ---- plugcmd_no_query: a route that takes no parameter ---- */

static size_t f_rec_count(const linli_record *r)
{
	return r ? 2 : 0;
}

static int f_rec_key(const linli_record *r, size_t i, const char **key)
{
	(void)r;
	*key = i ? "b" : "scope";
	return 0;
}

static void test_plugcmd_no_query(void **unused)
{
	(void)unused;
	struct linli_api api = {.rec_count = f_rec_count, .rec_key = f_rec_key};
	struct linli_http_req req = {.size = sizeof req};
	char err[128] = "";
	assert_int_equal(plugcmd_no_query(&api, &req, "screen", err, sizeof err), 0);
	req.query = (const linli_record *)&req; /* any map: the fake counts 2 keys */
	assert_int_equal(plugcmd_no_query(&api, &req, "screen", err, sizeof err), LINLI_EINVAL);
	assert_string_equal(err, "screen: unknown parameter 'scope' (it takes none)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cal_across_weekend), cmocka_unit_test(test_cal_holiday),
	    cmocka_unit_test(test_cal_makeup_day),     cmocka_unit_test(test_cal_pause),
	    cmocka_unit_test(test_cal_end_of_day),     cmocka_unit_test(test_cal_missing_year),
	    cmocka_unit_test(test_cal_refusals),       cmocka_unit_test(test_table_moves),
	    cmocka_unit_test(test_table_check),	       cmocka_unit_test(test_plugcmd_register),
	    cmocka_unit_test(test_plugcmd_no_query),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
