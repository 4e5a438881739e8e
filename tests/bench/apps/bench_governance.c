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
 * BENCH_APPS_N=cases overrides 10,000 (7 moves each).
 */
#include <errno.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bus.h"
#include "catalog.h"
#include "cmd.h"
#include "config.h"
#include "kernel.h"
#include "log.h"
#include "plugin.h"
#include "plugin_so.h"
#include "record.h"
#include "store.h"

#define BATCH 1000
#define NODE  "hefei"
#define GRID  "hefei/baohe/binhu/yuelan/g01"
#define RAW   "hefei/baohe/binhu/yuelan/g02"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds of the process: the same figures on a machine other work shares. */
static double cpu(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *why)
{
	fprintf(stderr, "bench_apps: %s: %s\n", what, why);
	exit(1);
}

static int last_rc;
static char last_err[1024], last_id[STORE_ID_MAX + 1];

/* The command's reply: keep its "id" (a report's). */
static void on_finish(struct cmd_call *call, int rc)
{
	last_rc = rc;
	snprintf(last_err, sizeof last_err, "%s", call->err);
	last_id[0] = '\0';
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	if (!rc && call->data.size &&
	    msgpack_unpack_next(&up, call->data.data, call->data.size, NULL) ==
		MSGPACK_UNPACK_SUCCESS &&
	    up.data.type == MSGPACK_OBJECT_MAP)
		for (uint32_t i = 0; i < up.data.via.map.size; i++) {
			msgpack_object_kv *kv = &up.data.via.map.ptr[i];
			if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == 2 &&
			    !memcmp(kv->key.via.str.ptr, "id", 2) &&
			    kv->val.type == MSGPACK_OBJECT_STR &&
			    kv->val.via.str.size < sizeof last_id) {
				memcpy(last_id, kv->val.via.str.ptr, kv->val.via.str.size);
				last_id[kv->val.via.str.size] = '\0';
			}
		}
	msgpack_unpacked_destroy(&up);
	cmd_call_free(call);
}

/* Run `grid ARGS...` as the console would, synchronously. */
static void grid_cmd(struct kernel *k, int argc, const char **args)
{
	char *argv[8] = {"grid"};
	for (int i = 0; i < argc; i++)
		argv[i + 1] = (char *)args[i];
	struct cmd_call *c = cmd_call_new(k, argc + 1, argv);
	if (!c)
		die("cmd_call_new", "out of memory");
	c->finish = on_finish;
	cmd_dispatch(k->cmds, c);
	if (last_rc)
		die(args[0], last_err);
}

static void commit(struct kernel *k, long *pending)
{
	if (++*pending % BATCH)
		return;
	if (store_batch_end(k->store))
		die("store", "commit failed");
	store_changes_deliver(k->store);
}

/* Pack a record for the direct store calls. */
static void pack(linli_record *r, msgpack_sbuffer *buf)
{
	msgpack_packer pk;
	msgpack_sbuffer_init(buf);
	msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
	record_pack(r, &pk);
	record_free(r);
}

static void seed(struct kernel *k)
{
	char err[1024];
	msgpack_sbuffer buf;
	for (int y = 2026; y <= 2028; y++) {
		linli_record *r = record_new();
		record_set_int(r, "year", y);
		record_set_str(r, "hours", "09:00-12:00,13:30-17:30");
		record_set_str(r, "weekend", "6,7");
		record_set_str(r, "holidays",
			       y == 2026 ? "2026-10-01,2026-10-02,2026-10-03"
					 : "2027-01-01,2028-01-01");
		pack(r, &buf);
		char id[8];
		snprintf(id, sizeof id, "%d", y);
		if (store_put(k->store, "work_calendar", NODE, id, buf.data, buf.size, NULL, NULL,
			      err, sizeof err))
			die("work_calendar", err);
		msgpack_sbuffer_destroy(&buf);
	}
	linli_record *r = record_new();
	record_set_str(r, "name", "暴露垃圾");
	record_set_int(r, "respond_minutes", 120);
	record_set_int(r, "finish_days", 1);
	pack(r, &buf);
	if (store_put(k->store, "incident_categories", NODE, "environment", buf.data, buf.size,
		      NULL, NULL, err, sizeof err))
		die("incident_categories", err);
	msgpack_sbuffer_destroy(&buf);
	if (store_batch_end(k->store))
		die("store", "commit failed");
}

int main(void)
{
	log_set_level(getenv("BENCH_LOG") ? LOG_DEBUG : LOG_ERROR);
	long n = 10000;
	const char *env = getenv("BENCH_APPS_N");
	if (env && atol(env) >= BATCH)
		n = atol(env);
	char tmp[] = "/tmp/linli-bench-apps-XXXXXX";
	if (!mkdtemp(tmp))
		die("mkdtemp", strerror(errno));
	char data[300], pdir[300], sh[800], err[1024];
	snprintf(data, sizeof data, "%s/data", tmp);
	snprintf(pdir, sizeof pdir, "%s/plugins", tmp);
	mkdir(data, 0700);
	mkdir(pdir, 0700);
	snprintf(sh, sizeof sh, "cp '%s' '%s/'", GRID_SO, pdir);
	if (system(sh) != 0)
		die("cannot copy", GRID_SO);

	struct kernel k;
	char text[2048];
	snprintf(text, sizeof text,
		 "node = { path = \"" NODE "\"; level = \"city\"; };\n"
		 "data_dir = \"%s\";\nlog_level = \"error\";\n"
		 "control = { listen = [ \"ipc://%s/ctl.sock\" ]; };\n"
		 "plugin_dirs = [ \"%s\" ];\n",
		 data, tmp, pdir);
	if (kernel_init(&k) || cfg_load_string(&k.cfg, text, "bench", NULL, err, sizeof err))
		die("config", err);
	if (catalog_load(SRCDIR "/catalog", &k.catalog, err, sizeof err))
		die("catalog", err);
	struct store_opts o = {.dir = data, .map_size = (size_t)1 << 30, .sync = false};
	if (store_open(&o, k.catalog, &k.store, err, sizeof err))
		die("store", err);
	seed(&k);
	k.cmds = cmd_registry_new();
	plug_kind_add(plugin_so_kind());	   /* as linlid does: .so plugins */
	if (bus_open(&k, &k.bus, err, sizeof err)) /* grid serves incidentreq/report */
		die("bus", err);
	if (!k.cmds || plug_open(&k, err, sizeof err))
		die("plugins", err);
	if (plug_load_all(&k) != 1)
		die("plugins", "grid did not start");

	static const char *const path[][2] = {{"file", NULL},	{"dispatch", "h1"},
					      {"accept", NULL}, {"feedback", NULL},
					      {"check", NULL},	{"close", NULL}};
	const long per_case = 1 + (long)(sizeof path / sizeof *path);
	char(*ids)[STORE_ID_MAX + 1] = malloc((size_t)n * sizeof *ids);
	if (!ids)
		die("malloc", "out of memory");
	printf("apps.cases: %ld incidents, %ld moves each, batches of %d, nosync\n", n, per_case,
	       BATCH);
	long pending = 0;
	double t0 = now(), c0 = cpu();
	for (long i = 0; i < n; i++) {
		const char *a[] = {"report", GRID, "environment", "暴露垃圾"};
		grid_cmd(&k, 4, a);
		memcpy(ids[i], last_id, sizeof ids[i]);
		commit(&k, &pending);
	}
	for (size_t s = 0; s < sizeof path / sizeof *path; s++)
		for (long i = 0; i < n; i++) {
			const char *a[] = {path[s][0], ids[i], path[s][1]};
			grid_cmd(&k, path[s][1] ? 3 : 2, a);
			commit(&k, &pending);
		}
	if (store_batch_end(k.store))
		die("store", "commit failed");
	double t_moves = now() - t0, c_moves = cpu() - c0;

	/* Every case closed, with its history. */
	msgpack_sbuffer out;
	msgpack_sbuffer_init(&out);
	if (store_get(k.store, "incidents", GRID, ids[n - 1], &out, NULL, err, sizeof err))
		die("store_get", err);
	if (!memmem(out.data, out.size, "closed", 6))
		die("the last case", "is not closed");

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
	pack(r, &rec);
	long puts = n * per_case;
	pending = 0;
	t0 = now(), c0 = cpu();
	char id[STORE_ID_MAX + 1];
	for (long i = 0; i < puts; i++) {
		if (store_put(k.store, "incidents", RAW, NULL, rec.data, rec.size, id, NULL, err,
			      sizeof err))
			die("store_put", err);
		commit(&k, &pending);
	}
	if (store_batch_end(k.store))
		die("store", "commit failed");
	double t_raw = now() - t0, c_raw = cpu() - c0;

	double moves = (double)(n * per_case) / t_moves, raw = (double)puts / t_raw;
	printf("apps.incident_moves: %.0f moves/s (target >= 5000)\n", moves);
	printf("apps.incident_moves.direct: %.0f puts/s\n", raw);
	printf("apps.incident_moves.ratio: %.3f\n", moves / raw);
	printf("apps.incident_moves.cpu: %.0f moves per CPU second (direct %.0f puts)\n",
	       (double)(n * per_case) / c_moves, (double)puts / c_raw);
	fflush(stdout);

	msgpack_sbuffer_destroy(&out);
	msgpack_sbuffer_destroy(&rec);
	free(ids);
	plug_close(&k);
	bus_close(k.bus);
	store_close(k.store);
	cmd_registry_free(k.cmds);
	catalog_free(k.catalog);
	kernel_destroy(&k);
	snprintf(sh, sizeof sh, "rm -rf '%s'", tmp);
	if (system(sh) != 0)
		fprintf(stderr, "bench_apps: cannot remove %s\n", tmp);
	return 0;
}
