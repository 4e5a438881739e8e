/*
 * wf_cal.h — the working calendar and deadlines in working time
 * (plugins/lib, linked into plugins; built against sdk/include only).
 *
 * A calendar is data: working hours per day ("09:00-12:00,13:30-17:30"),
 * the weekend (ISO weekdays, "6,7"), and per year the public holidays and
 * the make-up working days (调休) China announces. It answers two questions
 * in working time: the instant `work_ms` of working time after a start
 * (a step's deadline), and the working time between two instants (how long
 * a step took), both skipping paused intervals (waiting for the reporter).
 *
 * Local time goes through a struct wf_clock — the node's zone via the SDK's
 * time_local / time_from_local in a plugin, a fixed zone in unit tests — so
 * the library never reads the process's TZ. A day of a year the calendar has
 * no holidays for is computed by hours and weekend alone and reported in
 * *missing_year, so the caller can warn.
 *
 * Owns nothing beyond the struct itself (fixed arrays, no allocation).
 */
#ifndef LINLI_WF_CAL_H
#define LINLI_WF_CAL_H

#include <stddef.h>
#include <stdint.h>

#include <linli/time.h>

#define WF_CAL_MAX_PERIODS 8	/* working periods per day */
#define WF_CAL_MAX_DATES   512	/* holidays plus make-up days, all years together */
#define WF_CAL_MAX_YEARS   32	/* years with announced holidays */
#define WF_CAL_MAX_PAUSES  64	/* paused intervals per computation */
#define WF_CAL_MAX_DAYS	   3660 /* how far a computation walks before it gives up */

/* The zone conversion: fills *out / *ms like api->time_local / time_from_local. */
struct wf_clock {
	int (*local)(void *ud, int64_t ms, struct linli_tm *out);
	int (*from_local)(void *ud, const struct linli_tm *t, int64_t *ms);
	void *ud;
};

struct wf_cal {
	int n_periods;
	struct {
		int start, end; /* minutes after local midnight, start < end <= 1440 */
	} periods[WF_CAL_MAX_PERIODS];
	unsigned weekend; /* bit d: ISO weekday d (1 = Monday .. 7 = Sunday) is a rest day */
	int n_dates;
	struct {
		int32_t ymd;	   /* 20261001 */
		int working;	   /* 1: a make-up working day; 0: a public holiday */
	} dates[WF_CAL_MAX_DATES]; /* sorted by ymd, unique */
	int n_years;
	int32_t years[WF_CAL_MAX_YEARS]; /* years whose holidays were added */
};

/* A paused interval [from, to): working time in it does not count. */
struct wf_span {
	int64_t from, to;
};

/* wf_cal_init — an empty calendar: no working hours, Saturday and Sunday off. */
void wf_cal_init(struct wf_cal *c);

/*
 * wf_cal_set_hours — the working periods of a working day, "HH:MM-HH:MM"
 * separated by commas, ascending and not overlapping ("24:00" ends a day).
 * Returns 0, or LINLI_EINVAL naming the bad period in err.
 */
int wf_cal_set_hours(struct wf_cal *c, const char *hours, char *err, size_t errlen);

/*
 * wf_cal_set_weekend — the weekly rest days as ISO weekday numbers, "6,7"
 * ("" for none). Returns 0, or LINLI_EINVAL naming the bad entry in err.
 */
int wf_cal_set_weekend(struct wf_cal *c, const char *days, char *err, size_t errlen);

/*
 * wf_cal_add_year — the public holidays and make-up working days of `year`,
 * each a comma-separated list of dates "YYYY-MM-DD" (NULL or "" for none).
 * Every date must exist, lie in `year` and appear once. Returns 0;
 * LINLI_EINVAL naming the date in err; LINLI_EEXIST when the year was added
 * already; LINLI_ELIMIT past WF_CAL_MAX_DATES / WF_CAL_MAX_YEARS.
 */
int wf_cal_add_year(struct wf_cal *c, int year, const char *holidays, const char *workdays,
		    char *err, size_t errlen);

/* wf_cal_covers — whether the holidays of `year` were added. */
int wf_cal_covers(const struct wf_cal *c, int year);

/* wf_cal_is_workday — whether the local date is a working day. */
int wf_cal_is_workday(const struct wf_cal *c, int year, int month, int day);

/* wf_cal_day_ms — the working time of one working day, in ms (7 h: 25200000). */
int64_t wf_cal_day_ms(const struct wf_cal *c);

/*
 * wf_cal_add — the deadline: the first instant at which `work_ms` of working
 * time has passed since `start`, not counting the `n_pauses` intervals of
 * `pauses` (any order, may overlap; an open pause has to = INT64_MAX). A
 * deadline landing on the end of a period is that end (17:30, not the next
 * morning). *missing_year (may be NULL) gets the first year walked whose
 * holidays are unknown, else 0. Returns 0; LINLI_EINVAL (negative work_ms,
 * too many pauses, a clock error); LINLI_ELIMIT when no
 * working time comes within WF_CAL_MAX_DAYS days (a calendar without
 * working hours). err names the problem.
 */
int wf_cal_add(const struct wf_cal *c, const struct wf_clock *clk, int64_t start, int64_t work_ms,
	       const struct wf_span *pauses, size_t n_pauses, int64_t *out, int *missing_year,
	       char *err, size_t errlen);

/*
 * wf_cal_between — the working time in [a, b) in ms, not counting the pauses
 * (0 when b <= a). *missing_year as for wf_cal_add. Returns 0; LINLI_EINVAL
 * (too many pauses, a clock error); LINLI_ELIMIT when [a, b) spans more than
 * WF_CAL_MAX_DAYS days.
 */
int wf_cal_between(const struct wf_cal *c, const struct wf_clock *clk, int64_t a, int64_t b,
		   const struct wf_span *pauses, size_t n_pauses, int64_t *out, int *missing_year,
		   char *err, size_t errlen);

#endif
