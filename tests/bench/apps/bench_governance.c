/*
 * bench_governance (tools/bench apps) — the governance family's applications
 * in-process, against the raw store they sit on.
 *
 * A kernel with the real catalog, a store (MDB_NOSYNC: CPU cost, not fsync)
 * and the loader runs the grid plugin (plugins/grid) at the city node, with a
 * working calendar and a category stored at the city. Each case is reported
 * and taken through file, dispatch, accept, feedback, check and close, each
 * move one console command of the plugin as the console would send it: the
 * case read, the move checked against the table, the step deadline recomputed
 * in working time, the case and its incident_moves record written. The kernel
 * commits a batch every 1,000 commands, as its loop would.
 *
 *   apps.incident_moves        moves committed per second (target >= 5,000/s)
 *   apps.incident_moves.direct raw store puts of an incident record per second,
 *                              same batches (host/store.c's store_put)
 *   apps.incident_moves.ratio  moves/s / puts/s (a move is a get and two puts
 *                              besides the workflow)
 *   apps.incident_moves.cpu    both per CPU second of the process, for a machine
 *                              that other work shares
 *
 *   apps.kpi_100k_ms           `grid kpi` over a month (November 2020) of 100,000 closed cases, ms
 *                              (target < 500): the per-day aggregates (incident_kpis,
 *                              one record per day, grid, category and handler) hold
 *                              what the 7 moves of each case add to them (folded here,
 *                              then put), over 30 days, 10 grids of 2 communities,
 *                              5 categories, 20 handlers; then one `grid kpi` command
 *                              by handler sums the month, as the console would ask
 *   apps.kpi_100k_ms.cpu       the same in CPU ms of the process
 *   apps.kpi_100k_ms.records   the aggregate records it reads
 *
 * BENCH_APPS_N=cases overrides 10,000 (7 moves each); BENCH_KPI_N=cases 100,000.
 * The node, the clocks and the checks of these numbers are bench_apps.h's.
 */
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_apps.h"
#include "cmd.h"
#include "kernel.h"
#include "mp.h"
#include "record.h"
#include "store.h"

#define BATCH 1000
#define NODE  "hefei"
#define GRID  "hefei/baohe/binhu/yuelan/g01"
#define RAW   "hefei/baohe/binhu/yuelan/g02"

static void seed(struct kernel *k)
{
	for (int y = 2026; y <= 2028; y++) {
		linli_record *r = record_new();
		record_set_int(r, "year", y);
		record_set_str(r, "hours", "09:00-12:00,13:30-17:30");
		record_set_str(r, "weekend", "6,7");
		record_set_str(r, "holidays",
			       y == 2026 ? "2026-10-01,2026-10-02,2026-10-03"
					 : "2027-01-01,2028-01-01");
		char id[8];
		snprintf(id, sizeof id, "%d", y);
		bench_put(k, "work_calendar", NODE, id, r);
	}
	linli_record *r = record_new();
	record_set_str(r, "name", "暴露垃圾");
	record_set_int(r, "respond_minutes", 120);
	record_set_int(r, "finish_days", 1);
	bench_put(k, "incident_categories", NODE, "environment", r);
	if (store_batch_end(k->store))
		bench_die("store", "commit failed");
}

/* ---- apps.kpi_100k_ms ---- */

#define KPI_DAYS     30
#define KPI_GRIDS    10
#define KPI_CATS     5
#define KPI_HANDLERS 20 /* and "-": the moves before dispatch */

enum {
	K_REPORTED,
	K_FILED,
	K_CLOSED,
	K_ON_TIME,
	K_VOIDED,
	K_REWORKS,
	K_INTAKE_MS,
	K_INTAKE_N,
	K_RESPOND_MS,
	K_RESPOND_N,
	K_PROCESS_MS,
	K_PROCESS_N,
	K_CHECK_MS,
	K_CHECK_N,
	K_FIELDS
};
static const char *const kpi_fields[K_FIELDS] = {
    "reported", "filed",      "closed",	   "closed_on_time", "voided",	  "reworks",  "intake_ms",
    "intake_n", "respond_ms", "respond_n", "process_ms",     "process_n", "check_ms", "check_n"};
static const char *const kpi_cats[KPI_CATS] = {"environment", "public_order", "facilities",
					       "safety_hazard", "dispute"};

/*
 * Write the aggregates of `n` closed cases as their moves would (plugins/grid, kpi_count):
 * report and file count on the "-" record, with the intake time of file and dispatch;
 * accept, feedback, check and close on the handler's, with their stage times, the close
 * on time for 9 cases in 10. Returns the number of records written.
 */
static long kpi_seed(struct kernel *k, long n)
{
	size_t cells = (size_t)KPI_DAYS * KPI_GRIDS * KPI_CATS * (KPI_HANDLERS + 1);
	int64_t(*agg)[K_FIELDS] = calloc(cells, sizeof *agg);
	if (!agg)
		bench_die("calloc", "out of memory");
	uint64_t x = 88172645463325252ULL; /* xorshift64: the same cases every run */
	for (long i = 0; i < n; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		size_t day = x % KPI_DAYS, grid = (x >> 8) % KPI_GRIDS, cat = (x >> 16) % KPI_CATS,
		       h = 1 + (x >> 24) % KPI_HANDLERS;
		size_t base = ((day * KPI_GRIDS + grid) * KPI_CATS + cat) * (KPI_HANDLERS + 1);
		int64_t *none = agg[base], *mine = agg[base + h];
		none[K_REPORTED]++;						   /* report */
		none[K_FILED]++, none[K_INTAKE_MS] += 1800000, none[K_INTAKE_N]++; /* file */
		none[K_INTAKE_MS] += 600000, none[K_INTAKE_N]++;		   /* dispatch */
		mine[K_RESPOND_MS] += 3600000, mine[K_RESPOND_N]++;		   /* accept */
		mine[K_PROCESS_MS] += 18000000, mine[K_PROCESS_N]++;		   /* feedback */
		mine[K_CHECK_MS] += 1200000, mine[K_CHECK_N]++;			   /* check */
		mine[K_CLOSED]++, mine[K_ON_TIME] += (x >> 32) % 10 != 0;	   /* close */
		mine[K_CHECK_MS] += 600000, mine[K_CHECK_N]++;
	}
	long records = 0, pending = 0;
	char err[1024];
	for (size_t c = 0; c < cells; c++) {
		int any = 0;
		for (int f = 0; f < K_FIELDS; f++)
			any |= agg[c][f] != 0;
		if (!any)
			continue;
		size_t h = c % (KPI_HANDLERS + 1), cat = c / (KPI_HANDLERS + 1) % KPI_CATS,
		       grid = c / (KPI_HANDLERS + 1) / KPI_CATS % KPI_GRIDS,
		       day = c / (KPI_HANDLERS + 1) / KPI_CATS / KPI_GRIDS;
		char scope[128], id[STORE_ID_MAX + 1], handler[8];
		snprintf(scope, sizeof scope, "hefei/baohe/binhu/%s/g%02zu",
			 grid < KPI_GRIDS / 2 ? "yuelan" : "lvzhou", grid % (KPI_GRIDS / 2) + 1);
		snprintf(handler, sizeof handler, "h%zu", h);
		snprintf(id, sizeof id, "202011%02zu.%s.%s", day + 1, kpi_cats[cat],
			 h ? handler : "-");
		linli_record *r = record_new();
		record_set_int(r, "day", 20201101 + (int64_t)day);
		record_set_str(r, "category", kpi_cats[cat]);
		if (h)
			record_set_str(r, "handler", handler);
		for (int f = 0; f < K_FIELDS; f++)
			if (agg[c][f])
				record_set_int(r, kpi_fields[f], agg[c][f]);
		msgpack_sbuffer buf;
		bench_pack(r, &buf);
		if (store_put(k->store, "incident_kpis", scope, id, buf.data, buf.size, NULL, NULL,
			      err, sizeof err))
			bench_die("incident_kpis", err);
		msgpack_sbuffer_destroy(&buf);
		records++;
		bench_commit_every(k, &pending, BATCH);
	}
	if (store_batch_end(k->store))
		bench_die("store", "commit failed");
	free(agg);
	return records;
}

static long n_cases, n_kpi; /* cases moved; closed cases in the KPIs */

void bench_governance_sizes(void)
{
	n_cases = bench_env_long("BENCH_APPS_N", 10000, BATCH, 100000000);
	n_kpi = bench_env_long("BENCH_KPI_N", 100000, 1, 100000000);
}

void bench_governance(void)
{
	long n = n_cases, kn = n_kpi;
	struct kernel k;
	char err[1024];
	struct bench_node_opts o = {.node = NODE, .level = "city", .plugin_so = GRID_SO};
	bench_node_open(&k, &o);
	seed(&k);
	bench_node_start(&k); /* grid serves incidentreq/report */

	static const char *const path[][2] = {{"file", NULL},	{"dispatch", "h1"},
					      {"accept", NULL}, {"feedback", NULL},
					      {"check", NULL},	{"close", NULL}};
	const long per_case = 1 + (long)(sizeof path / sizeof *path);
	char(*ids)[STORE_ID_MAX + 1] = malloc((size_t)n * sizeof *ids);
	if (!ids)
		bench_die("malloc", "out of memory");
	printf("apps.cases: %ld incidents, %ld moves each, batches of %d, nosync\n", n, per_case,
	       BATCH);
	long pending = 0;
	double t0 = bench_now(), c0 = bench_cpu();
	for (long i = 0; i < n; i++) {
		const char *a[] = {"report", GRID, "environment", "暴露垃圾"};
		bench_str(bench_cmd(&k, "grid", 4, a), "id", ids[i], sizeof ids[i]);
		bench_commit_every(&k, &pending, BATCH);
	}
	for (size_t s = 0; s < sizeof path / sizeof *path; s++)
		for (long i = 0; i < n; i++) {
			const char *a[] = {path[s][0], ids[i], path[s][1]};
			bench_cmd(&k, "grid", path[s][1] ? 3 : 2, a);
			bench_commit_every(&k, &pending, BATCH);
		}
	if (store_batch_end(k.store))
		bench_die("store", "commit failed");
	double t_moves = bench_now() - t0, c_moves = bench_cpu() - c0;

	/* Every case closed, with its history. */
	msgpack_sbuffer out;
	msgpack_sbuffer_init(&out);
	if (store_get(k.store, "incidents", GRID, ids[n - 1], &out, NULL, err, sizeof err))
		bench_die("store_get", err);
	if (!memmem(out.data, out.size, "closed", 6))
		bench_die("the last case", "is not closed");

	/* Raw store puts of an incident record, the same number, the same batches. */
	linli_record *r = record_new();
	record_set_str(r, "title", "暴露垃圾");
	record_set_str(r, "category", "environment");
	record_set_str(r, "status", "processing");
	record_set_int(r, "workflow", 2);
	record_set_str(r, "grid", "g02");
	record_set_time(r, "reported_at", 1796000000000);
	record_set_time(r, "step_started", 1796000000000);
	record_set_time(r, "step_deadline", 1796100000000);
	record_set_str(r, "handler", "h1");
	msgpack_sbuffer rec;
	bench_pack(r, &rec);
	long puts = n * per_case;
	pending = 0;
	t0 = bench_now(), c0 = bench_cpu();
	char id[STORE_ID_MAX + 1];
	for (long i = 0; i < puts; i++) {
		if (store_put(k.store, "incidents", RAW, NULL, rec.data, rec.size, id, NULL, err,
			      sizeof err))
			bench_die("store_put", err);
		bench_commit_every(&k, &pending, BATCH);
	}
	if (store_batch_end(k.store))
		bench_die("store", "commit failed");
	double t_raw = bench_now() - t0, c_raw = bench_cpu() - c0;

	double moves = (double)(n * per_case) / t_moves, raw = (double)puts / t_raw;
	printf("apps.incident_moves: %.0f moves/s (target >= 5000)\n", moves);
	printf("apps.incident_moves.direct: %.0f puts/s\n", raw);
	printf("apps.incident_moves.ratio: %.3f\n", moves / raw);
	printf("apps.incident_moves.cpu: %.0f moves per CPU second (direct %.0f puts)\n",
	       (double)(n * per_case) / c_moves, (double)puts / c_raw);
	fflush(stdout);

	/* KPIs over a month of closed cases: the aggregates, then one query. */
	long records = kpi_seed(&k, kn);
	const char *q[] = {"kpi", "2020-11-01", "2020-11-30", "by=handler"};
	t0 = bench_now(), c0 = bench_cpu();
	const msgpack_object *rep = bench_cmd(&k, "grid", 4, q);
	double t_kpi = bench_now() - t0, c_kpi = bench_cpu() - c0;
	const msgpack_object *tot = mp_get(rep, "total"), *cl = tot ? mp_get(tot, "closed") : NULL;
	int64_t last_closed =
	    cl && cl->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (int64_t)cl->via.u64 : -1;
	if (last_closed != kn) {
		snprintf(err, sizeof err, "total closed %lld, want %ld", (long long)last_closed,
			 kn);
		bench_die("grid kpi", err);
	}
	printf("apps.kpi_100k_ms: %.1f ms for %ld closed cases (target < 500)\n", t_kpi * 1000, kn);
	printf("apps.kpi_100k_ms.cpu: %.1f ms of CPU\n", c_kpi * 1000);
	printf("apps.kpi_100k_ms.records: %ld\n", records);
	fflush(stdout);

	msgpack_sbuffer_destroy(&out);
	msgpack_sbuffer_destroy(&rec);
	free(ids);
	bench_node_close(&k);
}
