/*
 * bench_public (tools/bench apps) — the public-services family, in-process.
 *
 *   apps.welfare_readings         water-meter readings evaluated per second
 *                                 against BENCH_WELFARE_ELDERS (100,000) elders'
 *                                 windows: each reading is found by its meter's
 *                                 id (a chained hash, as the eldercare plugin
 *                                 keeps its roster) and run through
 *                                 welf_water_reading (plugins/eldercare/welfare.c,
 *                                 the plugin's own code): the 24 h ring of half
 *                                 hours moved on, the use spread, the window summed
 *                                 and checked (target >= 200,000/s)
 *   apps.welfare_readings.eval    the evaluation alone (the window by index)
 *   apps.welfare_readings.raise   the conditions the run produced (no water, leak,
 *                                 resets): the readings are a day of realistic use
 *                                 (most elders use water, some none, a few leak)
 *
 * BENCH_WELFARE_ELDERS (100,000) and BENCH_WELFARE_N (4,000,000 readings, in
 * time order over 36 h of the node's clock, so windows fill, slide and are
 * checked) set the sizes. Nothing is stored: the kernel is not in this path
 * (alarms raised from it are apps.alarm_raise's figure).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_apps.h"
#include "welfare.h"

#define IDLEN 16
#define HBITS 17 /* 131,072 buckets */

static long n_elders, n_readings;

struct win {
	struct win *next;
	char meter[IDLEN];
	struct welf_water w;
	double index; /* the meter's cumulative m3 */
	int kind;     /* 0 normal, 1 no water, 2 leak */
};

static uint64_t rng = 0x9E3779B97F4A7C15ULL;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static size_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (size_t)(h & ((1u << HBITS) - 1));
}

void bench_public_sizes(void)
{
	n_elders = bench_env_long("BENCH_WELFARE_ELDERS", 100000, 1, 10000000);
	n_readings = bench_env_long("BENCH_WELFARE_N", 4000000, 1000, 1000000000);
}

/* The use of one reading of a window of kind k, in m3. */
static double use_of(const struct win *x)
{
	if (x->kind == 1)
		return 0;
	if (x->kind == 2)
		return 0.01; /* 10 L a reading (about an hour): a running tap */
	return next_rand() % 4 == 0 ? (double)(next_rand() % 20) / 1000.0 : 0;
}

static void run(struct win *wins, struct win **tab, bool lookup, const char *name)
{
	const struct welf_limits l = {10, 1000, 1, 48};
	const int64_t t0 = 1796500000000LL, span = 36LL * 3600000;
	long edges[5] = {0};
	char id[IDLEN];
	for (long i = 0; i < n_elders; i++) {
		memset(&wins[i].w, 0, sizeof wins[i].w);
		wins[i].index = 100;
	}
	double c0 = bench_cpu(), w0 = bench_now();
	for (long r = 0; r < n_readings; r++) {
		long e = (long)(next_rand() % (uint64_t)n_elders);
		int64_t t = t0 + span * r / n_readings;
		struct win *x = &wins[e];
		if (lookup) {
			snprintf(id, sizeof id, "wm-%07ld", e);
			for (x = tab[hash(id)]; x && strcmp(x->meter, id); x = x->next)
				;
			if (!x)
				bench_die("lookup", id);
		}
		x->index += use_of(x);
		int got = welf_water_reading(&x->w, &l, x->index, t, NULL);
		for (int b = 0; b < 5; b++)
			edges[b] += (got >> b) & 1;
	}
	double cpu = bench_cpu() - c0, wall = bench_now() - w0;
	printf("apps.welfare_readings%s: %.0f readings/s (cpu %.0f/s), %ld readings against %ld "
	       "elders' windows over 36 h\n",
	       name, (double)n_readings / wall, (double)n_readings / cpu, n_readings, n_elders);
	if (lookup)
		printf(
		    "apps.welfare_readings.raise: %ld no water, %ld leaks (%ld over), %ld resets\n",
		    edges[0], edges[2], edges[3], edges[4]);
}

void bench_public(void)
{
	struct win *wins = calloc((size_t)n_elders, sizeof *wins);
	struct win **tab = calloc((size_t)1 << HBITS, sizeof *tab);
	if (!wins || !tab)
		bench_die("calloc", "out of memory");
	for (long i = 0; i < n_elders; i++) {
		struct win *x = &wins[i];
		snprintf(x->meter, sizeof x->meter, "wm-%07ld", i);
		x->kind = i % 50 == 0 ? 1 : i % 97 == 0 ? 2 : 0;
		size_t h = hash(x->meter);
		x->next = tab[h];
		tab[h] = x;
	}
	printf("apps.welfare: %ld elders' windows of %zu bytes (%.1f MiB)\n", n_elders,
	       sizeof(struct welf_water), (double)n_elders * sizeof(struct welf_water) / 1048576.0);
	run(wins, tab, true, "");
	run(wins, tab, false, ".eval");
	free(tab);
	free(wins);
}
