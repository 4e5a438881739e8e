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
 *   apps.screen.grid         ms to compute GET /screen/api/panel/grid for the
 *                            street: the grid plugin's route "screen" run as a
 *                            street administrator (approute_call_as): the open
 *                            cases read by status index, counted by stage and
 *                            overdue per grid, today's and the month's
 *                            incident_kpis summed per grid, packed, as JSON
 *   apps.screen.grid_raw     the index scans of the open statuses alone (the floor)
 *   apps.screen.map          ms to compute GET /screen/api/map for the street: its
 *                            devices scanned, the active alarms put on them,
 *                            grouped by community, building and floor
 *   apps.screen.map_raw      the devices scan alone
 *
 * BENCH_SCREEN_ALARMS (20,000 alarms over 10 communities, 4 in 5 active, 1 in 3
 * acknowledged), BENCH_SCREEN_CASES (20,000 cases over 40 grids, 3 in 5 open),
 * BENCH_SCREEN_DEVICES (2,000 devices, the most the map draws: 20 buildings a community) and
 * BENCH_SCREEN_REPS (50 answers each) set the sizes. This is what each answer
 * costs the kernel thread (a long poll's after a change; a panel's each 5 s).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_apps.h"
#include "screen.h"
#include "store.h"
#include "tier.h"
#include "util.h"

#define NODE "hefei/baohe/binhu"

static long n_alarms, n_cases, n_devices, reps;

void bench_screen_sizes(void)
{
	n_alarms = bench_env_long("BENCH_SCREEN_ALARMS", 20000, 10, 10000000);
	n_cases = bench_env_long("BENCH_SCREEN_CASES", 20000, 40, 10000000);
	n_devices = bench_env_long("BENCH_SCREEN_DEVICES", 2000, 10, 1000000);
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

static void bench_screen_panels(void);

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
	bench_screen_panels();
}

/* ---- the grid panel (a plugin's route, as the viewer) and the map ---- */

static const char *const open_st[] = {"reported",   "verifying", "filed",  "dispatched",
				      "processing", "extension", "rework", "feedback",
				      "checking",   "shelved"};

static void bench_screen_panels(void)
{
	struct kernel k;
	struct bench_node_opts o = {.node = NODE, .level = "street", .plugin_so = GRID_SO};
	bench_node_open(&k, &o);
	long pending = 0, open = 0;
	char scope[128], id[64];
	int64_t now = wall_ms();
	for (long i = 0; i < n_cases; i++) {
		snprintf(scope, sizeof scope, NODE "/c%02ld/g%02ld", i % 10, (i / 10) % 4 + 1);
		snprintf(id, sizeof id, "in%08ld", i);
		bool is_open = i % 5 < 3;
		linli_record *r = record_new();
		record_set_str(r, "title", "暴露垃圾");
		record_set_str(r, "category", "environment");
		record_set_str(r, "status", is_open ? open_st[i % 10] : i % 2 ? "closed" : "void");
		record_set_int(r, "workflow", 2);
		record_set_str(r, "grid", "g01");
		record_set_time(r, "reported_at", now - i * 60000);
		if (is_open && strcmp(open_st[i % 10], "shelved") != 0)
			record_set_time(r, "step_deadline",
					now + (i % 4 == 0 ? -3600000 : 3600000));
		bench_put(&k, "incidents", scope, id, r);
		bench_commit_every(&k, &pending, 1000);
		open += is_open;
	}
	/* incident_kpis: 30 days x 40 grids x 2 categories (the month's, read whole) */
	struct tm tm;
	time_t t = (time_t)(now / 1000);
	localtime_r(&t, &tm);
	for (int d = 1; d <= 28; d++)
		for (int g = 0; g < 40; g++)
			for (int c = 0; c < 2; c++) {
				snprintf(scope, sizeof scope, NODE "/c%02d/g%02d", g % 10,
					 g / 10 + 1);
				long day = (tm.tm_year + 1900) * 10000L + (tm.tm_mon + 1) * 100 + d;
				snprintf(id, sizeof id, "%ld.%s.h%d", day,
					 c ? "environment" : "dispute", g);
				linli_record *r = record_new();
				record_set_int(r, "day", day);
				record_set_str(r, "category", c ? "environment" : "dispute");
				record_set_int(r, "reported", 3);
				record_set_int(r, "filed", 2);
				record_set_int(r, "closed", 2);
				record_set_int(r, "closed_on_time", 1);
				bench_put(&k, "incident_kpis", scope, id, r);
				bench_commit_every(&k, &pending, 1000);
			}
	/* devices: 20 buildings a community, 8 floors, and one active alarm on 1 in 10 */
	for (long i = 0; i < n_devices; i++) {
		snprintf(scope, sizeof scope, NODE "/c%02ld", i % 10);
		snprintf(id, sizeof id, "dv%07ld", i);
		linli_record *r = record_new();
		char b[16];
		snprintf(b, sizeof b, "%ld栋", (i / 10) % 20 + 1);
		record_set_str(r, "class", "smoke");
		record_set_str(r, "driver", "sim");
		record_set_str(r, "address", "sim:1");
		record_set_str(r, "building", b);
		record_set_int(r, "floor", (i / 200) % 8 + 1);
		bench_put(&k, "devices", scope, id, r);
		bench_commit_every(&k, &pending, 1000);
		if (i % 10 == 0) {
			char aid[64];
			snprintf(aid, sizeof aid, "ma%07ld", i);
			linli_record *a = record_new();
			record_set_str(a, "type", "smoke");
			record_set_str(a, "source", "device:x");
			record_set_str(a, "device", id);
			record_set_str(a, "severity", "major");
			record_set_bool(a, "active", true);
			record_set_bool(a, "acknowledged", false);
			record_set_time(a, "first_at", now);
			bench_put(&k, "alarms", scope, aid, a);
			bench_commit_every(&k, &pending, 1000);
		}
	}
	bench_commit_every(&k, &pending, 1);
	bench_node_start(&k);
	printf("apps.screen: %ld cases over 40 grids of %s (%ld open), 2,240 incident_kpis days; "
	       "%ld devices in 200 buildings (the map draws 2,000 at most); %ld answers each\n",
	       n_cases, NODE, open, n_devices, reps);
	struct tier_principal who = {
	    .kind = PRINCIPAL_PERSON, .name = "street_admin", .scope = NODE, .role = ROLE_ADMIN};
	char err[512];
	int st = 0;
	long got = 0;
	double w0 = bench_now();
	for (long i = 0; i < reps; i++) {
		json_t *j = screen_plugin_panel(&k, &who, "grid", &st, err, sizeof err);
		if (!j)
			bench_die("screen_plugin_panel grid", err);
		got =
		    (long)json_integer_value(json_object_get(json_object_get(j, "total"), "open"));
		json_decref(j);
	}
	double grid = (bench_now() - w0) * 1000.0 / (double)reps;
	if (got != open)
		bench_die("grid panel", "the street's open cases are not those seeded");
	char cursor[STORE_CURSOR_MAX], next[STORE_CURSOR_MAX];
	long rows = 0;
	w0 = bench_now();
	for (long i = 0; i < reps; i++)
		for (size_t s = 0; s < sizeof open_st / sizeof *open_st; s++) {
			struct store_where w = {"status", open_st[s]};
			struct store_query q = {
			    .dataset = "incidents", .scope = NODE, .where = &w, .n_where = 1};
			do {
				if (store_scan(k.store, &q, count_row, &rows, cursor, err,
					       sizeof err) < 0)
					bench_die("store_scan", err);
				memcpy(next, cursor, sizeof next);
				q.cursor = next;
			} while (cursor[0]);
		}
	double grid_raw = (bench_now() - w0) * 1000.0 / (double)reps;
	long placed = 0;
	w0 = bench_now();
	for (long i = 0; i < reps; i++) {
		json_t *j = screen_map_panel(&k, NODE, err, sizeof err);
		if (!j)
			bench_die("screen_map_panel", err);
		placed = (long)json_array_size(json_object_get(j, "buildings"));
		json_decref(j);
	}
	double map = (bench_now() - w0) * 1000.0 / (double)reps;
	rows = 0;
	w0 = bench_now();
	for (long i = 0; i < reps; i++) {
		struct store_query q = {.dataset = "devices", .scope = NODE};
		do {
			if (store_scan(k.store, &q, count_row, &rows, cursor, err, sizeof err) < 0)
				bench_die("store_scan", err);
			memcpy(next, cursor, sizeof next);
			q.cursor = next;
		} while (cursor[0]);
	}
	double map_raw = (bench_now() - w0) * 1000.0 / (double)reps;
	printf("apps.screen.grid: %.2f ms per answer for the street (%ld open cases)\n", grid, got);
	printf("apps.screen.grid_raw: %.2f ms (the open statuses' index scans alone; the panel is "
	       "%.1fx it)\n",
	       grid_raw, grid / grid_raw);
	printf("apps.screen.map: %.2f ms per answer for the street (%ld buildings)\n", map, placed);
	printf("apps.screen.map_raw: %.2f ms (the devices scan alone; the map is %.1fx it)\n",
	       map_raw, map / map_raw);
	fflush(stdout);
	bench_node_close(&k);
}
