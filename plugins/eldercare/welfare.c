/*
 * welfare — per-reading evaluation of the welfare checks (welfare.h): pure
 * computation over the caller's structs, shared by the eldercare plugin and
 * its bench.
 */
#include "welfare.h"

#include <string.h>

static int64_t bucket_of(int64_t t)
{
	return t / WELF_BUCKET_MS;
}

/* Move the ring's head on to bucket b: the buckets passed over are emptied. */
static void advance(struct welf_water *w, int64_t b)
{
	if (b <= w->head)
		return;
	if (b - w->head >= WELF_NB)
		memset(w->ring, 0, sizeof w->ring);
	else
		for (int64_t k = w->head + 1; k <= b; k++)
			w->ring[k % WELF_NB] = 0;
	w->head = b;
}

/* Spread `litres` used between a and t (a < t) over the buckets they cover (the last 24 h). */
static void spread(struct welf_water *w, double litres, int64_t a, int64_t t)
{
	int64_t ba = bucket_of(a), bt = bucket_of(t);
	if (ba == bt) {
		w->ring[bt % WELF_NB] += (float)litres;
		return;
	}
	double per_ms = litres / (double)(t - a);
	int64_t k0 = ba < bt - WELF_NB + 1 ? bt - WELF_NB + 1 : ba;
	for (int64_t k = k0; k <= bt; k++) {
		int64_t lo = k * WELF_BUCKET_MS, hi = lo + WELF_BUCKET_MS;
		if (lo < a)
			lo = a;
		if (hi > t)
			hi = t;
		if (hi > lo)
			w->ring[k % WELF_NB] += (float)(per_ms * (double)(hi - lo));
	}
}

bool welf_water_covered(const struct welf_water *w, int window_b, int64_t t)
{
	return w->last_at && t - w->since >= (int64_t)window_b * WELF_BUCKET_MS;
}

double welf_water_used(struct welf_water *w, int window_b, int64_t t)
{
	if (w->last_at)
		advance(w, bucket_of(t));
	double sum = 0;
	for (int i = 0; i < window_b && i < WELF_NB; i++)
		sum += w->ring[(w->head - i) % WELF_NB];
	return sum;
}

int welf_water_reading(struct welf_water *w, const struct welf_limits *l, double m3, int64_t t,
		       double *used_l)
{
	int edges = 0;
	if (!w->last_at) {
		memset(w, 0, sizeof *w);
		w->last = m3;
		w->last_at = w->since = t > 0 ? t : 1;
		w->head = bucket_of(w->last_at);
		if (used_l)
			*used_l = 0;
		return 0;
	}
	if (t < w->last_at)
		t = w->last_at;
	advance(w, bucket_of(t));
	if (m3 < w->last) {
		w->resets++;
		w->since = t; /* a new baseline: covered again a window from now */
		edges |= WELF_RESET;
	} else if (m3 > w->last && t > w->last_at) {
		spread(w, (m3 - w->last) * 1000.0, w->last_at, t);
	} else if (m3 > w->last) {
		w->ring[w->head % WELF_NB] += (float)((m3 - w->last) * 1000.0);
	}
	w->last = m3;
	w->last_at = t;
	double sum = 0;
	int all = 1;
	for (int i = 0; i < WELF_NB; i++) {
		float v = w->ring[(w->head - i) % WELF_NB];
		if (i < l->window_b)
			sum += v;
		if (i > 0) /* the complete half hours: the newest is still filling */
			all &= v >= l->flow_l && v > 0;
	}
	if (used_l)
		*used_l = sum;
	bool covered = welf_water_covered(w, l->window_b, t);
	bool low = covered && sum < l->min_l;
	bool leak = (l->max_l > 0 && sum > l->max_l) || (all && welf_water_covered(w, WELF_NB, t));
	if (low && !w->low)
		edges |= WELF_LOW;
	else if (!low && w->low && covered)
		edges |= WELF_LOW_OVER;
	if (low || covered)
		w->low = low;
	if (leak && !w->leak)
		edges |= WELF_LEAK;
	else if (!leak && w->leak)
		edges |= WELF_LEAK_OVER;
	w->leak = leak;
	return edges;
}

int welf_hr_reading(struct welf_hr *h, int bpm, int lo, int hi, int64_t for_ms, int64_t t)
{
	h->last = bpm;
	if (bpm >= lo && bpm <= hi) {
		int was = h->raised;
		h->out_since = 0;
		h->raised = 0;
		return was ? -1 : 0;
	}
	if (!h->out_since)
		h->out_since = t > 0 ? t : 1;
	if (!h->raised && t - h->out_since >= for_ms) {
		h->raised = 1;
		return 1;
	}
	return 0;
}

int welf_door_open(struct welf_door *d, int64_t t, int64_t night, int max_night, bool *idle_over)
{
	*idle_over = d->idle != 0;
	d->idle = 0;
	d->last_open = t > 0 ? t : 1;
	if (!night)
		return 0;
	if (d->night != night) {
		d->night = night;
		d->night_opens = 0;
		d->many = 0;
	}
	d->night_opens++;
	if (!d->many && d->night_opens >= max_night) {
		d->many = 1;
		return 1;
	}
	return 0;
}

void welf_motion(struct welf_door *d, int64_t t, bool *idle_over)
{
	*idle_over = false;
	if (t <= d->last_open)
		return; /* older than what is known: nothing new */
	*idle_over = d->idle != 0;
	d->idle = 0;
	d->last_open = t;
}

int welf_door_idle(struct welf_door *d, int64_t t, int64_t idle_ms)
{
	if (!d->last_open || d->idle || t - d->last_open < idle_ms)
		return 0;
	d->idle = 1;
	return 1;
}
