/*
 * bench_screen (tools/bench apps) — the community big screen's alarms panel, in-process.
 *
 *   apps.screen.panel        ms to compute GET /screen/api/alarms for a street
 *                            (host/screen.c, screen_alarms_panel): the active
 *                            alarms of its communities scanned through the
 *                            `active` index, unpacked, counted by severity and
 *                            type, sorted newest first, the 50 listed with who
 *                            acknowledged each (an alarm_history lookup per
 *                            acknowledged one) and packed as JSON
 *   apps.screen.raw_scan     the same scan that only counts its rows: the floor
 *   apps.screen.community    the panel of one community (a tenth of them)
 *
 * BENCH_SCREEN_ALARMS (20,000 alarms over 10 communities, 4 in 5 active, 1 in 3
 * acknowledged) and BENCH_SCREEN_REPS (50 answers each) set the sizes. This is
 * what each long poll's answer costs the kernel thread after a change.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_apps.h"
#include "screen.h"
#include "store.h"

#define NODE "hefei/baohe/binhu"

static long n_alarms, reps;

void bench_screen_sizes(void)
{
	n_alarms = bench_env_long("BENCH_SCREEN_ALARMS", 20000, 10, 10000000);
	reps = bench_env_long("BENCH_SCREEN_REPS", 50, 1, 100000);
}

static int count_row(void *ud, const struct store_row *row)
{
	(void)row;
	(*(long *)ud)++;
	return 0;
}

static double panel_ms(struct kernel *k, const char *scope, long *total)
{
	char err[256];
	double w0 = bench_now();
	for (long i = 0; i < reps; i++) {
		json_t *j = screen_alarms_panel(k, scope, err, sizeof err);
		if (!j)
			bench_die("screen_alarms_panel", err);
		*total = (long)json_integer_value(json_object_get(j, "total"));
		json_decref(j);
	}
	return (bench_now() - w0) * 1000.0 / (double)reps;
}

void bench_screen(void)
{
	static const char *const sev[] = {"critical", "major", "minor", "warning"};
	static const char *const type[] = {"smoke", "door_forced", "gas", "water_leak", "fall"};
	struct kernel k;
	struct bench_node_opts o = {.node = NODE, .level = "street", .plugin_so = ALARMS_SO};
	bench_node_open(&k, &o);
	long pending = 0, active = 0, acked = 0;
	char scope[128], id[64], src[64];
	for (long i = 0; i < n_alarms; i++) {
		snprintf(scope, sizeof scope, NODE "/c%02ld", i % 10);
		snprintf(id, sizeof id, "al%08ld", i);
		snprintf(src, sizeof src, "device:d%07ld", i);
		bool is_active = i % 5 != 0, is_acked = i % 3 == 0;
		linli_record *a = record_new();
		record_set_str(a, "type", type[i % 5]);
		record_set_str(a, "source", src);
		record_set_str(a, "severity", sev[(i / 5) % 4]);
		record_set_bool(a, "active", is_active);
		record_set_bool(a, "acknowledged", is_acked);
		record_set_int(a, "count", 1 + i % 3);
		record_set_time(a, "first_at", 1796000000000 + i * 1000);
		record_set_time(a, "last_at", 1796000000000 + i * 1000 + 500);
		bench_put(&k, "alarms", scope, id, a);
		bench_commit_every(&k, &pending, 1000);
		if (is_acked) {
			linli_record *h = record_new();
			char hid[64];
			snprintf(hid, sizeof hid, "h%08ld", i);
			record_set_str(h, "alarm", id);
			record_set_time(h, "at", 1796000000000 + i * 1000 + 700);
			record_set_str(h, "by", "op_c");
			record_set_str(h, "action", "acked");
			bench_put(&k, "alarm_history", scope, hid, h);
			bench_commit_every(&k, &pending, 1000);
		}
		active += is_active;
		acked += is_active && is_acked;
	}
	bench_commit_every(&k, &pending, 1);
	printf("apps.screen: %ld alarms over 10 communities of %s, %ld active (%ld acknowledged); "
	       "%ld answers each\n",
	       n_alarms, NODE, active, acked, reps);
	long total = 0, c_total = 0;
	double street = panel_ms(&k, NODE, &total);
	if (total != active)
		bench_die("panel", "the street's total is not the active alarms");
	char err[256], cursor[STORE_CURSOR_MAX];
	struct store_where w = {"active", "true"};
	struct store_query q = {.dataset = "alarms", .scope = NODE, .where = &w, .n_where = 1};
	double w0 = bench_now();
	long rows = 0;
	for (long i = 0; i < reps; i++)
		if (store_scan(k.store, &q, count_row, &rows, cursor, err, sizeof err) < 0)
			bench_die("store_scan", err);
	double raw = (bench_now() - w0) * 1000.0 / (double)reps;
	double comm = panel_ms(&k, NODE "/c03", &c_total);
	printf("apps.screen.panel: %.2f ms per answer for the street (%ld active alarms)\n", street,
	       total);
	printf("apps.screen.raw_scan: %.2f ms (the index scan alone; the panel is %.1fx it)\n", raw,
	       street / raw);
	printf("apps.screen.community: %.2f ms per answer for one community (%ld active)\n", comm,
	       c_total);
	fflush(stdout);
	bench_node_close(&k);
}
