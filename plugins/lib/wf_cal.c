/*
 * wf_cal.c — the working calendar: parsing its data, walking local days to
 * add working time to an instant or measure it between two.
 *
 * Dates are walked in the proleptic Gregorian calendar (days since
 * 1970-01-01, H. Hinnant's civil algorithms), so the weekday and the next
 * date never depend on a zone; only "this date at 09:00" becomes an instant,
 * through the caller's wf_clock.
 */
#include "wf_cal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linli/error.h>

/* ---- civil dates ---- */

static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yoe + era * 400 + (*m <= 2));
}

/* ISO weekday of a day number: 1970-01-01 was a Thursday (4). */
static int weekday_of(int64_t days)
{
	return (int)(((days + 3) % 7 + 7) % 7) + 1;
}

/* "YYYY-MM-DD" of an existing date into *ymd; the text's length in *used. */
static int parse_date(const char *s, int32_t *ymd, size_t *used)
{
	int y, m, d, n = 0;
	if (sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 || n != 10)
		return -1;
	int yy, mm, dd;
	civil_from_days(days_from_civil(y, m, d), &yy, &mm, &dd);
	if (y < 1 || yy != y || mm != m || dd != d)
		return -1;
	*ymd = y * 10000 + m * 100 + d;
	*used = (size_t)n;
	return 0;
}

/* ---- the calendar's data ---- */

void wf_cal_init(struct wf_cal *c)
{
	memset(c, 0, sizeof *c);
	c->weekend = 1u << 6 | 1u << 7;
}

static int parse_hm(const char *s, int *min, size_t *used)
{
	int h, m, n = 0;
	if (sscanf(s, "%2d:%2d%n", &h, &m, &n) != 2 || n != 5 || h < 0 || m < 0 || m > 59 ||
	    h * 60 + m > 1440)
		return -1;
	*min = h * 60 + m;
	*used = (size_t)n;
	return 0;
}

int wf_cal_set_hours(struct wf_cal *c, const char *hours, char *err, size_t errlen)
{
	int n = 0, prev_end = 0;
	const char *p = hours ? hours : "";
	while (*p) {
		while (*p == ' ')
			p++;
		const char *at = p;
		int s, e;
		size_t u1, u2;
		size_t len = strcspn(at, ",");
		if (parse_hm(p, &s, &u1) || p[u1] != '-' || parse_hm(p + u1 + 1, &e, &u2) ||
		    u1 + 1 + u2 != len) {
			snprintf(err, errlen, "hours: period %d '%.*s' is not HH:MM-HH:MM", n + 1,
				 (int)len, at);
			return LINLI_EINVAL;
		}
		if (e <= s || s < prev_end) {
			snprintf(err, errlen, "hours: period %d '%.*s' %s", n + 1, (int)len, at,
				 e <= s ? "ends before it starts"
					: "overlaps or precedes the one before");
			return LINLI_EINVAL;
		}
		if (n == WF_CAL_MAX_PERIODS) {
			snprintf(err, errlen, "hours: more than %d periods", WF_CAL_MAX_PERIODS);
			return LINLI_EINVAL;
		}
		c->periods[n].start = s, c->periods[n].end = e, n++;
		prev_end = e;
		p = at + len + (at[len] == ',');
	}
	if (!n) {
		snprintf(err, errlen,
			 "hours: no working period (expected e.g. 09:00-12:00,13:30-17:30)");
		return LINLI_EINVAL;
	}
	c->n_periods = n;
	return 0;
}

int wf_cal_set_weekend(struct wf_cal *c, const char *days, char *err, size_t errlen)
{
	unsigned mask = 0;
	for (const char *p = days ? days : ""; *p;) {
		size_t len = strcspn(p, ",");
		if (len != 1 || *p < '1' || *p > '7') {
			snprintf(err, errlen,
				 "weekend: '%.*s' is not a weekday 1 (Monday) to 7 (Sunday)",
				 (int)len, p);
			return LINLI_EINVAL;
		}
		mask |= 1u << (*p - '0');
		p += len + (p[len] == ',');
	}
	c->weekend = mask;
	return 0;
}

static int date_find(const struct wf_cal *c, int32_t ymd)
{
	int lo = 0, hi = c->n_dates - 1;
	while (lo <= hi) {
		int mid = (lo + hi) / 2;
		if (c->dates[mid].ymd == ymd)
			return mid;
		if (c->dates[mid].ymd < ymd)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

static int add_dates(struct wf_cal *c, int year, const char *list, int working, char *err,
		     size_t errlen)
{
	const char *what = working ? "workdays" : "holidays";
	for (const char *p = list ? list : ""; *p;) {
		while (*p == ' ')
			p++;
		int32_t ymd;
		size_t used, len = strcspn(p, ",");
		if (parse_date(p, &ymd, &used) || used != len) {
			snprintf(err, errlen, "%s %d: '%.*s' is not a date YYYY-MM-DD", what, year,
				 (int)len, p);
			return LINLI_EINVAL;
		}
		if (ymd / 10000 != year) {
			snprintf(err, errlen, "%s %d: '%.*s' is not in %d", what, year, (int)len, p,
				 year);
			return LINLI_EINVAL;
		}
		if (date_find(c, ymd) >= 0) {
			snprintf(err, errlen, "%s %d: '%.*s' is listed twice", what, year, (int)len,
				 p);
			return LINLI_EINVAL;
		}
		if (c->n_dates == WF_CAL_MAX_DATES) {
			snprintf(err, errlen, "%s %d: more than %d dates in the calendar", what,
				 year, WF_CAL_MAX_DATES);
			return LINLI_ELIMIT;
		}
		int i = c->n_dates++;
		while (i > 0 && c->dates[i - 1].ymd > ymd) {
			c->dates[i] = c->dates[i - 1];
			i--;
		}
		c->dates[i].ymd = ymd, c->dates[i].working = working;
		p += len + (p[len] == ',');
	}
	return 0;
}

int wf_cal_add_year(struct wf_cal *c, int year, const char *holidays, const char *workdays,
		    char *err, size_t errlen)
{
	if (year < 1 || year > 9999) {
		snprintf(err, errlen, "year %d is not 1 to 9999", year);
		return LINLI_EINVAL;
	}
	if (wf_cal_covers(c, year)) {
		snprintf(err, errlen, "year %d: its holidays were given already", year);
		return LINLI_EEXIST;
	}
	if (c->n_years == WF_CAL_MAX_YEARS) {
		snprintf(err, errlen, "year %d: more than %d years in the calendar", year,
			 WF_CAL_MAX_YEARS);
		return LINLI_ELIMIT;
	}
	struct wf_cal keep = *c; /* all or nothing */
	int rc = add_dates(c, year, holidays, 0, err, errlen);
	if (!rc)
		rc = add_dates(c, year, workdays, 1, err, errlen);
	if (rc) {
		*c = keep;
		return rc;
	}
	c->years[c->n_years++] = year;
	return 0;
}

int wf_cal_covers(const struct wf_cal *c, int year)
{
	for (int i = 0; i < c->n_years; i++)
		if (c->years[i] == year)
			return 1;
	return 0;
}

static int workday(const struct wf_cal *c, int64_t days)
{
	int y, m, d;
	civil_from_days(days, &y, &m, &d);
	int i = date_find(c, y * 10000 + m * 100 + d);
	if (i >= 0)
		return c->dates[i].working;
	return !(c->weekend & 1u << weekday_of(days));
}

int wf_cal_is_workday(const struct wf_cal *c, int year, int month, int day)
{
	return workday(c, days_from_civil(year, month, day));
}

int64_t wf_cal_day_ms(const struct wf_cal *c)
{
	int64_t min = 0;
	for (int i = 0; i < c->n_periods; i++)
		min += c->periods[i].end - c->periods[i].start;
	return min * 60000;
}

/* ---- walking working time ---- */

static int span_cmp(const void *a, const void *b)
{
	const struct wf_span *x = a, *y = b;
	return x->from < y->from ? -1 : x->from > y->from;
}

/* Sorted, merged, non-empty pauses into out; their number, or -1 when too many. */
static int norm_pauses(const struct wf_span *in, size_t n, struct wf_span *out)
{
	if (n > WF_CAL_MAX_PAUSES)
		return -1;
	int k = 0;
	for (size_t i = 0; i < n; i++)
		if (in[i].to > in[i].from)
			out[k++] = in[i];
	qsort(out, (size_t)k, sizeof *out, span_cmp);
	int m = 0;
	for (int i = 0; i < k; i++) {
		if (m && out[i].from <= out[m - 1].to) {
			if (out[i].to > out[m - 1].to)
				out[m - 1].to = out[i].to;
		} else {
			out[m++] = out[i];
		}
	}
	return m;
}

/* The instant of minute `min` (0..1440) of local day `days`. */
static int instant(const struct wf_clock *clk, int64_t days, int min, int64_t *ms)
{
	struct linli_tm t = {.size = sizeof t};
	if (min == 1440)
		days++, min = 0;
	civil_from_days(days, &t.year, &t.month, &t.day);
	t.hour = min / 60, t.minute = min % 60;
	return clk->from_local(clk->ud, &t, ms);
}

/* The local day number of an instant. */
static int day_of(const struct wf_clock *clk, int64_t ms, int64_t *days)
{
	struct linli_tm t = {.size = sizeof t};
	int rc = clk->local(clk->ud, ms, &t);
	if (!rc)
		*days = days_from_civil(t.year, t.month, t.day);
	return rc;
}

/*
 * The walk both questions share: each working interval from `from` on (days
 * from the day of `from`), with the pauses cut out, goes to walk_piece,
 * which says when to stop. `until` bounds the walk (INT64_MAX: none).
 */
struct walk {
	int64_t left;  /* add: working time still to pass */
	int64_t total; /* between: working time seen */
	int64_t out;
	int adding;
};

static int walk_piece(struct walk *w, int64_t a, int64_t b)
{
	if (w->adding) {
		if (w->left <= b - a) {
			w->out = a + w->left;
			return 1;
		}
		w->left -= b - a;
	} else {
		w->total += b - a;
	}
	return 0;
}

static int walk(const struct wf_cal *c, const struct wf_clock *clk, int64_t from, int64_t until,
		const struct wf_span *pauses, size_t n_pauses, struct walk *w, int *missing_year,
		char *err, size_t errlen)
{
	int64_t day, last = INT64_MAX;
	struct wf_span ps[WF_CAL_MAX_PAUSES];
	int np = norm_pauses(pauses, n_pauses, ps);
	if (missing_year)
		*missing_year = 0;
	if (np < 0) {
		snprintf(err, errlen, "more than %d paused intervals", WF_CAL_MAX_PAUSES);
		return LINLI_EINVAL;
	}
	if (day_of(clk, from, &day) || (until != INT64_MAX && day_of(clk, until - 1, &last))) {
		snprintf(err, errlen, "the instant %lld has no local time",
			 (long long)(until != INT64_MAX ? until : from));
		return LINLI_EINVAL;
	}
	if (until != INT64_MAX && last - day >= WF_CAL_MAX_DAYS) {
		snprintf(err, errlen, "the interval spans more than %d days", WF_CAL_MAX_DAYS);
		return LINLI_ELIMIT;
	}
	int pi = 0;
	for (int64_t n = 0; n < WF_CAL_MAX_DAYS && day <= last; n++, day++) {
		int y, m, d;
		civil_from_days(day, &y, &m, &d);
		if (missing_year && !*missing_year && !wf_cal_covers(c, y))
			*missing_year = y;
		if (!workday(c, day))
			continue;
		for (int k = 0; k < c->n_periods; k++) {
			int64_t a, b;
			if (instant(clk, day, c->periods[k].start, &a) ||
			    instant(clk, day, c->periods[k].end, &b)) {
				snprintf(err, errlen, "%04d-%02d-%02d has no local time", y, m, d);
				return LINLI_EINVAL;
			}
			if (a < from)
				a = from;
			if (b > until)
				b = until;
			if (a >= until)
				return 0; /* between: done */
			/* cut the pauses out of [a, b) */
			while (pi < np && ps[pi].to <= a)
				pi++;
			for (int j = pi; a < b; j++) {
				int64_t e = j < np && ps[j].from < b ? ps[j].from : b;
				if (e > a && walk_piece(w, a, e))
					return 0;
				if (j >= np || ps[j].from >= b)
					break;
				a = ps[j].to;
			}
		}
	}
	if (!w->adding)
		return 0;
	snprintf(err, errlen, "no working time within %d days (no working hours?)",
		 WF_CAL_MAX_DAYS);
	return LINLI_ELIMIT;
}

int wf_cal_add(const struct wf_cal *c, const struct wf_clock *clk, int64_t start, int64_t work_ms,
	       const struct wf_span *pauses, size_t n_pauses, int64_t *out, int *missing_year,
	       char *err, size_t errlen)
{
	if (work_ms < 0) {
		snprintf(err, errlen, "negative working time %lld ms", (long long)work_ms);
		return LINLI_EINVAL;
	}
	if (work_ms == 0) {
		if (missing_year)
			*missing_year = 0;
		*out = start;
		return 0;
	}
	struct walk w = {.left = work_ms, .adding = 1};
	int rc = walk(c, clk, start, INT64_MAX, pauses, n_pauses, &w, missing_year, err, errlen);
	if (!rc)
		*out = w.out;
	return rc;
}

int wf_cal_between(const struct wf_cal *c, const struct wf_clock *clk, int64_t a, int64_t b,
		   const struct wf_span *pauses, size_t n_pauses, int64_t *out, int *missing_year,
		   char *err, size_t errlen)
{
	*out = 0;
	if (missing_year)
		*missing_year = 0;
	if (b <= a)
		return 0;
	struct walk w = {0};
	int rc = walk(c, clk, a, b, pauses, n_pauses, &w, missing_year, err, errlen);
	if (!rc)
		*out = w.total;
	return rc;
}
