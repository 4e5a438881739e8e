/*
 * welfare — the per-reading evaluation of an elder's welfare checks
 * (plugins/eldercare/): the water meter's sliding window, the heart rate held
 * out of range, the door's openings. Pure C over the caller's structs: no
 * kernel, no allocation, no clock of its own (every function takes the
 * reading's time), so the plugin and the bench (tests/bench/apps/
 * bench_public.c) run the same code and a window can be checkpointed as bytes.
 *
 * The water window: a meter reports its cumulative index (m³). Use is the
 * difference between two readings, in litres, spread over the half-hour
 * buckets the interval covers (so a meter that reports hourly still shows a
 * leak in every half hour); a reading lower than the last (the meter reset
 * or replaced) starts a new baseline, never negative use, and the window is
 * covered again only from then. 48 buckets keep the last 24 h.
 */
#ifndef LINLI_WELFARE_H
#define LINLI_WELFARE_H

#include <stdbool.h>
#include <stdint.h>

#define WELF_BUCKET_MS 1800000LL /* half an hour */
#define WELF_NB	       48	 /* 24 h of buckets */
#define WELF_DAY_MS    (WELF_NB * WELF_BUCKET_MS)

/* One meter's window; zeroed is "no reading yet". Plain bytes (checkpointed as such). */
struct welf_water {
	double last;	     /* m³, the latest reading */
	int64_t last_at;     /* its time (ms); 0: none yet */
	int64_t since;	     /* the window holds data since (first reading, last baseline) */
	int64_t head;	     /* bucket number (time / 30 min) of the newest bucket */
	float ring[WELF_NB]; /* litres used in each half hour, ring[head % WELF_NB] newest */
	uint32_t resets;     /* readings lower than the last: new baselines */
	uint8_t low, leak;   /* the conditions as last raised (latched until over) */
	uint8_t pad[2];
};

/* What a window is checked against (the elder's own, else the community default). */
struct welf_limits {
	double min_l;  /* below this over the window: no water */
	double max_l;  /* above this over the window: suspected leak (0: no such check) */
	double flow_l; /* at least this in every half hour of 24 h: suspected leak */
	int window_b;  /* the window in buckets, 2..WELF_NB */
};

/* Edges a reading produced (a bit set). */
enum {
	WELF_LOW = 1,	    /* use over a covered window fell below min_l */
	WELF_LOW_OVER = 2,  /* ... and is back at or above it */
	WELF_LEAK = 4,	    /* above max_l, or flow_l in every half hour of 24 h */
	WELF_LEAK_OVER = 8, /* ... and no longer */
	WELF_RESET = 16,    /* the reading was lower than the last: a new baseline */
};

/*
 * A reading of `m3` at `t` (ms): the window follows, the conditions are
 * checked; returns the edges (0: nothing new) and the litres used over the
 * window into *used_l (may be NULL). A reading older than the last one is
 * taken as of the last one's time.
 */
int welf_water_reading(struct welf_water *w, const struct welf_limits *l, double m3, int64_t t,
		       double *used_l);

/* Litres used over the last window_b buckets as of `t` (the window moved on to t first). */
double welf_water_used(struct welf_water *w, int window_b, int64_t t);

/* Is the window covered by data for window_b buckets as of t? */
bool welf_water_covered(const struct welf_water *w, int window_b, int64_t t);

/* The heart rate held out of [lo, hi]. */
struct welf_hr {
	int64_t out_since; /* 0: in range */
	int32_t last;	   /* bpm */
	uint8_t raised;
	uint8_t pad[3];
};

/* 1: out of range for for_ms now (raise); -1: back in range after a raise; 0 else. */
int welf_hr_reading(struct welf_hr *h, int bpm, int lo, int hi, int64_t for_ms, int64_t t);

/* The door of the home: its openings, and the home's activity (openings and motion). */
struct welf_door {
	int64_t last_open; /* the last opening or motion (PIR): the last activity; 0: none yet */
	int64_t night;	   /* the night being counted (its start), 0 none */
	int32_t night_opens;
	uint8_t idle, many; /* raised: no opening for long in daytime; openings at night */
	uint8_t pad[2];
};

/*
 * An opening at t: `night` is the start of the night it falls in (0: in
 * daytime). Returns 1 when this opening makes `max_night` openings of one
 * night (raise once per night), and sets *idle_over when an idle alert was
 * latched (the door moved again).
 */
int welf_door_open(struct welf_door *d, int64_t t, int64_t night, int max_night, bool *idle_over);

/* A motion (a PIR) at t: activity like an opening, never a night opening; *idle_over as above. */
void welf_motion(struct welf_door *d, int64_t t, bool *idle_over);

/* Checked in daytime: 1 when no activity for idle_ms as of t (raise once until the next). */
int welf_door_idle(struct welf_door *d, int64_t t, int64_t idle_ms);

#endif
