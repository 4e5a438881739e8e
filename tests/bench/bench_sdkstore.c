/*
 * bench_sdkstore — the store as a C plugin sees it, against the store itself.
 *
 * A kernel with the real catalog, a store and the loader runs the plugin
 * tp_storebench (tests/plugins/tp_storebench.c) at hefei/baohe/binhu. The
 * same work is done twice on `grids` records (a dataset without sensitive
 * fields, so no masking and no audit entries: those are the permission
 * model's cost, not the table's), in the same batches:
 *
 *   direct  host/store.c's calls on MessagePack bytes, as kernel code makes them
 *   table   the plugin's loops through api->store_put / store_get / store_scan
 *           (capability check, record packing and unpacking, the scan's copy
 *           of each page), each loop one console command of the plugin
 *
 * A ratio is table rate / direct rate: the cost the SDK layer adds. Durability
 * is MDB_NOSYNC so that the figures are CPU cost, not fsync (a synced batch
 * costs the same fsync either way). Writes alternate direct / table in five
 * rounds so that neither meets a bigger tree than the other.
 *
 *   sdkstore.put       100,000 inserts, batches of 1,000
 *   sdkstore.get       100,000 random gets by id (a batch end every 1,000)
 *   sdkstore.scan      every record of one community (100,000), pages of 10,000;
 *                      and, for context, the direct scan building a record per
 *                      row as the table does (most of the table's cost)
 *
 * BENCH_SDKSTORE_N=records overrides 100,000.
 */
#include <errno.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "catalog.h"
#include "cmd.h"
#include "kernel.h"
#include "log.h"
#include "plugin.h"
#include "plugin_so.h"
#include "record.h"
#include "store.h"

#define BATCH  1000
#define ROUNDS 5
#define NODE   "hefei/baohe/binhu"
#define DIRECT NODE "/yuelan"
#define TABLE  NODE "/tianehu"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *why)
{
	fprintf(stderr, "bench_sdkstore: %s: %s\n", what, why);
	exit(1);
}

static int last_rc;
static char last_err[1024];
static long last_rows;

static void on_finish(struct cmd_call *call, int rc)
{
	last_rc = rc;
	snprintf(last_err, sizeof last_err, "%s", call->err);
	last_rows = -1;
	/* The scan's reply is {"rows": N}. */
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	if (!rc && call->data.size &&
	    msgpack_unpack_next(&up, call->data.data, call->data.size, NULL) ==
		MSGPACK_UNPACK_SUCCESS &&
	    up.data.type == MSGPACK_OBJECT_MAP && up.data.via.map.size == 1)
		last_rows = (long)up.data.via.map.ptr[0].val.via.i64;
	msgpack_unpacked_destroy(&up);
	cmd_call_free(call);
}

/* Run `tp_storebench SUB ARG [ARG]` as the console would, synchronously. */
static void plugin_cmd(struct kernel *k, const char *sub, const char *a, const char *b)
{
	char *argv[] = {"tp_storebench", (char *)sub, (char *)a, (char *)b};
	struct cmd_call *c = cmd_call_new(k, b ? 4 : 3, argv);
	if (!c)
		die("cmd_call_new", "out of memory");
	c->finish = on_finish;
	cmd_dispatch(k->cmds, c);
	if (last_rc)
		die(sub, last_err);
}

static void commit(struct kernel *k)
{
	if (store_batch_end(k->store))
		die("store", "commit failed");
}

static int count_row(void *ud, const struct store_row *row)
{
	*(long *)ud += row->len > 0;
	return 0;
}

/* The direct scan again, building the record of each row as the table does. */
static int record_row(void *ud, const struct store_row *row)
{
	linli_record *r;
	char err[128];
	if (record_from_bytes(row->data, row->len, &r, err, sizeof err) == 0) {
		*(long *)ud += 1;
		record_free(r);
	}
	return 0;
}

static double direct_scan(struct kernel *k, store_row_fn fn, long *seen, long *rows)
{
	char cursor[STORE_CURSOR_MAX] = "", err[512];
	double t0 = now();
	do {
		char from[STORE_CURSOR_MAX];
		memcpy(from, cursor, sizeof from);
		struct store_query q = {.dataset = "grids",
					.scope = DIRECT,
					.limit = STORE_SCAN_MAX,
					.cursor = from};
		int got = store_scan(k->store, &q, fn, seen, cursor, err, sizeof err);
		if (got < 0)
			die("store_scan", err);
		*rows += got;
	} while (cursor[0]);
	return now() - t0;
}

static void figure(const char *name, double table, double direct, const char *unit)
{
	printf("sdkstore.%s: %.0f %s\n", name, table, unit);
	printf("sdkstore.%s.direct: %.0f %s\n", name, direct, unit);
	printf("sdkstore.%s.ratio: %.2f\n", name, table / direct);
	fflush(stdout);
}

int main(void)
{
	log_set_level(LOG_ERROR);
	long n = 100000;
	const char *env = getenv("BENCH_SDKSTORE_N");
	if (env && atol(env) >= BATCH * ROUNDS)
		n = atol(env) / (BATCH * ROUNDS) * (BATCH * ROUNDS);
	char tmp[] = "/tmp/linli-bench-sdkstore-XXXXXX";
	if (!mkdtemp(tmp))
		die("mkdtemp", strerror(errno));
	char data[300], pdir[300], so[400], err[1024];
	snprintf(data, sizeof data, "%s/data", tmp);
	snprintf(pdir, sizeof pdir, "%s/plugins", tmp);
	mkdir(data, 0700);
	mkdir(pdir, 0700);
	snprintf(so, sizeof so, "cp '%s' '%s/'", TP_STOREBENCH, pdir);
	if (system(so) != 0)
		die("cannot copy", TP_STOREBENCH);

	struct kernel k;
	kernel_init(&k);
	snprintf(k.cfg.node_path, sizeof k.cfg.node_path, NODE);
	k.cfg.data_dir = strdup(data);
	k.cfg.plugin_dirs[0] = strdup(pdir);
	k.cfg.n_plugin_dirs = 1;
	if (catalog_load(SRCDIR "/catalog", &k.catalog, err, sizeof err))
		die("catalog", err);
	struct store_opts o = {.dir = data, .map_size = (size_t)256 << 20, .sync = false};
	if (store_open(&o, k.catalog, &k.store, err, sizeof err))
		die("store", err);
	k.cmds = cmd_registry_new();
	plug_kind_add(plugin_so_kind()); /* the registry knows only the kinds it is given */
	if (!k.cmds || plug_open(&k, err, sizeof err))
		die("plugins", err);
	if (plug_load_all(&k) != 1)
		die("plugins", "tp_storebench did not start");

	/* The record, packed once for the direct path as the plugin builds it each call. */
	linli_record *r = record_new();
	record_set_str(r, "code", "g03");
	record_set_str(r, "name", "悦澜第三网格");
	record_set_str(r, "kind", "residential");
	record_set_float(r, "area_km2", 0.42);
	record_set_int(r, "households", 812);
	record_set_int(r, "population", 2304);
	msgpack_sbuffer rec;
	msgpack_packer pk;
	msgpack_sbuffer_init(&rec);
	msgpack_packer_init(&pk, &rec, msgpack_sbuffer_write);
	record_pack(r, &pk);
	record_free(r);

	printf("sdkstore.records: %ld grids per path, batches of %d, nosync\n", n, BATCH);
	char(*ids)[STORE_ID_MAX + 1] = malloc((size_t)n * sizeof *ids);
	char nbuf[32];
	snprintf(nbuf, sizeof nbuf, "%d", BATCH);
	double t_direct = 0, t_table = 0;
	long made = 0;
	for (int round = 0; round < ROUNDS; round++) {
		double t0 = now();
		for (long b = 0; b < n / ROUNDS; b += BATCH) {
			for (int i = 0; i < BATCH; i++, made++)
				if (store_put(k.store, "grids", DIRECT, NULL, rec.data,
					      rec.size, ids[made], NULL, err, sizeof err))
					die("store_put", err);
			commit(&k);
		}
		double t1 = now();
		for (long b = 0; b < n / ROUNDS; b += BATCH) {
			plugin_cmd(&k, "put", nbuf, TABLE);
			commit(&k);
		}
		t_direct += t1 - t0;
		t_table += now() - t1;
	}
	figure("put", (double)n / t_table, (double)n / t_direct, "records/s");

	uint64_t x = 88172645463325252ull;
	msgpack_sbuffer out;
	msgpack_sbuffer_init(&out);
	double t0 = now();
	for (long b = 0; b < n; b += BATCH) {
		for (int i = 0; i < BATCH; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			out.size = 0;
			if (store_get(k.store, "grids", NODE, ids[x % (uint64_t)n], &out, NULL,
				      err, sizeof err))
				die("store_get", err);
		}
		commit(&k);
	}
	double t1 = now();
	for (long b = 0; b < n; b += BATCH) {
		plugin_cmd(&k, "get", nbuf, NULL);
		commit(&k);
	}
	figure("get", (double)n / (now() - t1), (double)n / (t1 - t0), "gets/s");

	long rows = 0, seen = 0, rows2 = 0, seen2 = 0;
	double t_scan = direct_scan(&k, count_row, &seen, &rows);
	double t_scan_rec = direct_scan(&k, record_row, &seen2, &rows2);
	t1 = now();
	plugin_cmd(&k, "scan", TABLE, NULL);
	double t2 = now();
	if (rows != n || seen != n || rows2 != n || seen2 != n || last_rows != n) {
		snprintf(err, sizeof err, "scans saw %ld, %ld and %ld rows of %ld", rows, rows2,
			 last_rows, n);
		die("scan", err);
	}
	figure("scan", (double)n / (t2 - t1), (double)n / t_scan, "rows/s");
	/* Context: most of the scan's cost is building a record per row. */
	printf("sdkstore.scan.direct_records: %.0f rows/s\n", (double)n / t_scan_rec);
	printf("sdkstore.scan.vs_direct_records.ratio: %.2f\n", t_scan_rec / (t2 - t1));

	msgpack_sbuffer_destroy(&out);
	msgpack_sbuffer_destroy(&rec);
	free(ids);
	plug_close(&k);
	store_close(k.store);
	cmd_registry_free(k.cmds);
	catalog_free(k.catalog);
	kernel_destroy(&k);
	snprintf(so, sizeof so, "rm -rf '%s'", tmp);
	if (system(so) != 0)
		fprintf(stderr, "bench_sdkstore: cannot remove %s\n", tmp);
	return 0;
}
