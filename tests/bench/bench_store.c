/*
 * bench_store — the store against raw LMDB, doing the same work.
 *
 * Dataset `readings` (a meter reading: device ref indexed, value, unit,
 * time) in 10 community scopes. For each figure the same records go through
 * the store API and through raw mdb_put/mdb_get/cursor calls that write the
 * very entries the store writes (the record under dataset\0scope/\0id, its id
 * entry, its index entry), in the same batches with the same durability, so
 * a ratio (store rate / raw rate) is the cost of the store layer itself:
 * validation, MessagePack, the batch log, key building.
 *
 *   1,000,000 inserts in batches of 1,000, synced (one fsync per batch)
 *   (and, for context, raw LMDB writing the records alone, without the id
 *   and index entries: the index entry of a 1,000-device field dirties a
 *   page per device per batch and dominates the synced cost)
 *   1,000,000 inserts in batches of 1,000, MDB_NOSYNC
 *   the same nosync inserts with a change watcher on `readings` (told of
 *   every record after each batch's commit), against the unwatched store:
 *   the cost of change notices when somebody watches (with nobody watching
 *   the store keeps nothing: compare store.insert_nosync across versions)
 *   1,000,000 random gets by id (read transactions per 1,000 gets)
 *   a scan of one scope's 100,000 records
 *
 * BENCH_STORE_N=records overrides 1,000,000 for a quick run.
 */
#include <errno.h>
#include <lmdb.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "catalog.h"
#include "log.h"
#include "mp.h"
#include "store.h"

#define KEEP_ID (STORE_ID_MAX + 1) /* an id the store made, with its NUL */

#define BATCH	1000
#define SCOPES	10
#define DEVICES 1000

static const char readings_cfg[] =
    "dataset = { name = \"readings\"; title_zh = \"读数\"; title_en = \"Meter readings\";\n"
    "  owner = \"bench\"; family = \"core\"; level = \"community\";\n"
    "  sharing = \"shared\"; source = \"community\";\n"
    "  fields = (\n"
    "    { name = \"device\"; type = \"ref\"; ref = \"readings\"; required = true; indexed = true; "
    "},\n"
    "    { name = \"value\"; type = \"float\"; min = 0.0; },\n"
    "    { name = \"unit\"; type = \"enum\"; values = [ \"kwh\", \"m3\" ]; },\n"
    "    { name = \"at\"; type = \"time\"; required = true; }\n"
    "  ); };\n";

static char scopes[SCOPES][64];

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *why)
{
	fprintf(stderr, "bench_store: %s: %s\n", what, why);
	exit(1);
}

/* One reading, packed as the store stores it (fields in catalog order). */
static void pack_reading(msgpack_sbuffer *b, long i)
{
	msgpack_packer pk;
	msgpack_packer_init(&pk, b, msgpack_sbuffer_write);
	char dev[32];
	snprintf(dev, sizeof dev, "dev-%04ld", i % DEVICES);
	msgpack_pack_map(&pk, 4);
	mp_kv_str(&pk, "device", dev);
	mp_kv_double(&pk, "value", (double)(i % 100000) / 10.0);
	mp_kv_str(&pk, "unit", "kwh");
	mp_kv_int(&pk, "at", 1767225600000LL + i * 1000);
}

/* ---- raw LMDB, writing the store's layout by hand ---- */

struct raw {
	MDB_env *env;
	MDB_dbi rec, idx, ids;
	uint64_t last_ms;
	unsigned seq;
};

static void raw_open(struct raw *r, const char *dir, bool sync)
{
	mkdir(dir, 0700);
	MDB_txn *t;
	if (mdb_env_create(&r->env) || mdb_env_set_maxdbs(r->env, 8) ||
	    mdb_env_set_mapsize(r->env, (size_t)4 << 30) ||
	    mdb_env_open(r->env, dir, sync ? 0 : MDB_NOSYNC, 0600) ||
	    mdb_txn_begin(r->env, NULL, 0, &t) || mdb_dbi_open(t, "rec", MDB_CREATE, &r->rec) ||
	    mdb_dbi_open(t, "idx", MDB_CREATE, &r->idx) ||
	    mdb_dbi_open(t, "ids", MDB_CREATE, &r->ids) || mdb_txn_commit(t))
		die(dir, "cannot open raw LMDB");
}

static void raw_id(struct raw *r, char *out)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
	if (ms > r->last_ms) {
		r->last_ms = ms;
		r->seq = 0;
	} else if (++r->seq > 0xffff) {
		r->last_ms++;
		r->seq = 0;
	}
	/* The store's shape: time, sequence, '-' and a node id. */
	snprintf(out, KEEP_ID, "%012llx%04x-%s", (unsigned long long)r->last_ms, r->seq,
		 "5c1e93a07d");
}

static size_t cat3(char *k, const char *a, size_t an, const char *b, size_t bn, const char *c,
		   size_t cn)
{
	memcpy(k, a, an);
	memcpy(k + an, b, bn);
	memcpy(k + an + bn, c, cn);
	return an + bn + cn;
}

/* The record, its id entry and its device index entry: what store_put writes. */
static void raw_put(struct raw *r, MDB_txn *t, const char *scope, const char *id,
		    const msgpack_sbuffer *v, const char *dev, bool records_only)
{
	char k[512], mid[300];
	size_t il = strlen(id), dl = strlen(dev);
	int ml = snprintf(mid, sizeof mid, "%s/", scope);
	size_t n = cat3(k, "readings\0", 9, mid, (size_t)ml, "", 0);
	k[n++] = '\0';
	memcpy(k + n, id, il);
	n += il;
	MDB_val key = {n, k}, val = {v->size, v->data};
	if (mdb_put(t, r->rec, &key, &val, 0))
		die("raw", "mdb_put rec");
	if (records_only)
		return;
	/* ids: readings \0 id \0 scope "/" -> "" (format 2: ids unique per scope). */
	n = cat3(k, "readings\0", 9, id, il, "\0", 1);
	memcpy(k + n, mid, (size_t)ml);
	n += (size_t)ml;
	key = (MDB_val){n, k};
	val = (MDB_val){0, ""};
	if (mdb_put(t, r->ids, &key, &val, MDB_NOOVERWRITE))
		die("raw", "mdb_put ids");
	n = cat3(k, "readings\0device\0", 16, "", 0, "", 0);
	k[n++] = (char)(dl >> 8);
	k[n++] = (char)dl;
	memcpy(k + n, dev, dl);
	n += dl;
	memcpy(k + n, mid, (size_t)ml);
	n += (size_t)ml;
	k[n++] = '\0';
	memcpy(k + n, id, il);
	n += il;
	key = (MDB_val){n, k};
	val = (MDB_val){0, ""};
	if (mdb_put(t, r->idx, &key, &val, 0))
		die("raw", "mdb_put idx");
}

/* Insert n readings in batches; ids of scope 0 go to `keep` (for gets). Returns seconds. */
static double raw_insert(struct raw *r, long n, bool records_only, char (*keep)[KEEP_ID],
			 long *nkeep)
{
	msgpack_sbuffer v;
	msgpack_sbuffer_init(&v);
	double t0 = now();
	for (long b = 0; b < n; b += BATCH) {
		MDB_txn *t;
		if (mdb_txn_begin(r->env, NULL, 0, &t))
			die("raw", "txn");
		for (long i = b; i < b + BATCH && i < n; i++) {
			char id[KEEP_ID], dev[32];
			raw_id(r, id);
			snprintf(dev, sizeof dev, "dev-%04ld", i % DEVICES);
			v.size = 0;
			pack_reading(&v, i);
			raw_put(r, t, scopes[i % SCOPES], id, &v, dev, records_only);
			if (keep && i % SCOPES == 0)
				memcpy(keep[(*nkeep)++], id, KEEP_ID);
		}
		if (mdb_txn_commit(t))
			die("raw", "commit");
	}
	double dt = now() - t0;
	msgpack_sbuffer_destroy(&v);
	return dt;
}

/* ---- the store ---- */

static struct store *store_at(const char *dir, const struct catalog *cat, bool sync)
{
	mkdir(dir, 0700);
	struct store_opts o = {.dir = dir, .map_size = (size_t)64 << 20, .sync = sync};
	struct store *s;
	char err[1024];
	if (store_open(&o, cat, &s, err, sizeof err))
		die(dir, err);
	return s;
}

static double store_insert(struct store *s, long n, char (*keep)[KEEP_ID], long *nkeep)
{
	msgpack_sbuffer v;
	msgpack_sbuffer_init(&v);
	char err[512], id[STORE_ID_MAX + 1];
	double t0 = now();
	for (long b = 0; b < n; b += BATCH) {
		for (long i = b; i < b + BATCH && i < n; i++) {
			v.size = 0;
			pack_reading(&v, i);
			if (store_put(s, "readings", scopes[i % SCOPES], NULL, v.data, v.size, id,
				      NULL, err, sizeof err))
				die("store_put", err);
			if (keep && i % SCOPES == 0)
				memcpy(keep[(*nkeep)++], id, KEEP_ID);
		}
		if (store_batch_end(s))
			die("store", "commit failed");
	}
	double dt = now() - t0;
	msgpack_sbuffer_destroy(&v);
	return dt;
}

static void count_change(void *ud, const struct store_change *c)
{
	(void)c;
	++*(long *)ud;
}

/* store_insert with a watcher on readings, its notices delivered after each commit. */
static double store_insert_watched(struct store *s, long n, long *told)
{
	msgpack_sbuffer v;
	msgpack_sbuffer_init(&v);
	char err[512], id[STORE_ID_MAX + 1];
	uint64_t wid;
	if (store_watch(s, "readings", count_change, told, &wid, err, sizeof err))
		die("store_watch", err);
	double t0 = now();
	for (long b = 0; b < n; b += BATCH) {
		for (long i = b; i < b + BATCH && i < n; i++) {
			v.size = 0;
			pack_reading(&v, i);
			if (store_put(s, "readings", scopes[i % SCOPES], NULL, v.data, v.size, id,
				      NULL, err, sizeof err))
				die("store_put", err);
		}
		if (store_batch_end(s))
			die("store", "commit failed");
		store_changes_deliver(s);
	}
	double dt = now() - t0;
	store_unwatch(s, wid);
	msgpack_sbuffer_destroy(&v);
	return dt;
}

static int count_row(void *ud, const struct store_row *row)
{
	long *n = ud;
	*n += (long)row->len > 0;
	return 0;
}

/*
 * Between timed phases: delete what a phase left and flush the page cache,
 * so that one phase's writeback is not paid by the next.
 */
static void settle(const char *drop)
{
	if (drop) {
		char cmd[400];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", drop);
		if (system(cmd) != 0)
			fprintf(stderr, "bench_store: cannot remove %s\n", drop);
	}
	sync();
}

static void figure(const char *name, double store_rate, double raw_rate, const char *unit)
{
	printf("store.%s: %.0f %s\n", name, store_rate, unit);
	printf("store.%s.raw: %.0f %s\n", name, raw_rate, unit);
	printf("store.%s.ratio: %.2f\n", name, store_rate / raw_rate);
	fflush(stdout);
}

int main(void)
{
	log_set_level(LOG_ERROR);
	long n = 1000000;
	const char *env = getenv("BENCH_STORE_N");
	if (env && atol(env) >= BATCH * SCOPES)
		n = atol(env);
	for (int i = 0; i < SCOPES; i++)
		snprintf(scopes[i], sizeof scopes[i], "hefei/baohe/binhu/c%02d", i);
	char tmp[] = "/tmp/linli-bench-store-XXXXXX";
	if (!mkdtemp(tmp))
		die("mkdtemp", strerror(errno));
	char path[256];
	snprintf(path, sizeof path, "%s/catalog", tmp);
	mkdir(path, 0700);
	snprintf(path, sizeof path, "%s/catalog/datasets", tmp);
	mkdir(path, 0700);
	snprintf(path, sizeof path, "%s/catalog/datasets/readings.cfg", tmp);
	FILE *f = fopen(path, "w");
	fputs(readings_cfg, f);
	fclose(f);
	snprintf(path, sizeof path, "%s/catalog", tmp);
	struct catalog *cat;
	char err[1024];
	if (catalog_load(path, &cat, err, sizeof err))
		die("catalog", err);
	printf("store.records: %ld records in %d scopes, batches of %d\n", n, SCOPES, BATCH);

	long nkeep = 0, rkeep = 0;
	char(*keep)[KEEP_ID] = malloc((size_t)(n / SCOPES + 1) * KEEP_ID);
	char(*rk)[KEEP_ID] = malloc((size_t)(n / SCOPES + 1) * KEEP_ID);

	/* Inserts, synced: one fsync per batch of 1,000. */
	char d1[300], d2[300], d3[300], d4[300], d5[300];
	snprintf(d1, sizeof d1, "%s/store-sync", tmp);
	snprintf(d2, sizeof d2, "%s/raw-sync", tmp);
	settle(NULL);
	struct store *s = store_at(d1, cat, true);
	double ts = store_insert(s, n, NULL, NULL);
	store_close(s);
	settle(d1);
	struct raw r = {0};
	raw_open(&r, d2, true);
	double tr = raw_insert(&r, n, false, NULL, NULL);
	mdb_env_close(r.env);
	settle(d2);
	figure("insert_sync", n / ts, n / tr, "records/s");
	{
		char d0[300];
		snprintf(d0, sizeof d0, "%s/raw-sync-records-only", tmp);
		struct raw ro = {0};
		raw_open(&ro, d0, true);
		double t1 = raw_insert(&ro, n, true, NULL, NULL);
		mdb_env_close(ro.env);
		settle(d0);
		printf("store.insert_sync.raw_records_only: %.0f records/s\n", n / t1);
	}

	/* Inserts, nosync; this store stays for the gets and the scan. */
	snprintf(d3, sizeof d3, "%s/store-nosync", tmp);
	snprintf(d4, sizeof d4, "%s/raw-nosync", tmp);
	snprintf(d5, sizeof d5, "%s/raw-records-only", tmp);
	s = store_at(d3, cat, false);
	ts = store_insert(s, n, keep, &nkeep);
	settle(NULL);
	struct raw rr = {0};
	raw_open(&rr, d4, false);
	tr = raw_insert(&rr, n, false, rk, &rkeep);
	settle(NULL);
	figure("insert_nosync", n / ts, n / tr, "records/s");
	{
		struct raw ro = {0};
		raw_open(&ro, d5, false);
		double t1 = raw_insert(&ro, n, true, NULL, NULL);
		mdb_env_close(ro.env);
		settle(d5);
		printf("store.insert_nosync.raw_records_only: %.0f records/s\n", n / t1);
		printf("store.insert_nosync.vs_records_only.ratio: %.2f\n", (n / ts) / (n / t1));
	}
	{
		char dw[600];
		snprintf(dw, sizeof dw, "%s/store-watched", tmp);
		struct store *sw = store_at(dw, cat, false);
		long told = 0;
		double tw = store_insert_watched(sw, n, &told);
		store_close(sw);
		settle(dw);
		if (told != n)
			die("store_watch", "a change was not told");
		printf("store.insert_nosync_watched: %.0f records/s\n", n / tw);
		printf("store.insert_nosync_watched.vs_unwatched.ratio: %.2f\n", (n / tw) / (n / ts));
	}

	/* Random gets by id, in scope 0 (whose ids we kept); read txns of 1,000 gets. */
	srand(42);
	long gets = n;
	long *pick = malloc((size_t)gets * sizeof *pick);
	for (long i = 0; i < gets; i++)
		pick[i] = (long)(((unsigned long)rand() << 16 ^ (unsigned long)rand()) %
				 (unsigned long)nkeep);
	msgpack_sbuffer out;
	msgpack_sbuffer_init(&out);
	size_t bytes = 0;
	double t0 = now();
	for (long i = 0; i < gets; i++) {
		out.size = 0;
		if (store_get(s, "readings", scopes[0], keep[pick[i]], &out, NULL, err, sizeof err))
			die("store_get", err);
		bytes += out.size;
		if (i % BATCH == BATCH - 1)
			store_batch_end(s);
	}
	double tg = now() - t0;
	size_t rbytes = 0;
	t0 = now();
	for (long i = 0; i < gets; i += BATCH) {
		MDB_txn *t;
		if (mdb_txn_begin(rr.env, NULL, MDB_RDONLY, &t))
			die("raw", "read txn");
		for (long j = i; j < i + BATCH && j < gets; j++) {
			char k[512];
			int kl = snprintf(k, sizeof k, "readings%c%s/%c%s", 0, scopes[0], 0,
					  rk[pick[j]]);
			MDB_val key = {(size_t)kl, k}, val;
			if (mdb_get(t, rr.rec, &key, &val))
				die("raw", "mdb_get");
			out.size = 0;
			msgpack_sbuffer_write(&out, val.mv_data,
					      val.mv_size); /* copy out, as store_get */
			rbytes += out.size;
		}
		mdb_txn_abort(t);
	}
	double tgr = now() - t0;
	if (bytes != rbytes)
		fprintf(stderr, "bench_store: note: %zu bytes got vs %zu raw\n", bytes, rbytes);
	figure("get", gets / tg, gets / tgr, "gets/s");

	/* One scope's records: pages of STORE_SCAN_MAX vs one raw cursor walk. */
	long rows = 0;
	char cursor[STORE_CURSOR_MAX] = "";
	t0 = now();
	do {
		struct store_query q = {
		    .dataset = "readings", .scope = scopes[3], .cursor = cursor};
		char next[STORE_CURSOR_MAX];
		if (store_scan(s, &q, count_row, &rows, next, err, sizeof err) < 0)
			die("store_scan", err);
		memcpy(cursor, next, sizeof cursor);
	} while (cursor[0]);
	double tsc = now() - t0;
	long rrows = 0;
	t0 = now();
	{
		MDB_txn *t;
		MDB_cursor *c;
		char p[128];
		int pl = snprintf(p, sizeof p, "readings%c%s/", 0, scopes[3]);
		if (mdb_txn_begin(rr.env, NULL, MDB_RDONLY, &t) || mdb_cursor_open(t, rr.rec, &c))
			die("raw", "cursor");
		MDB_val key = {(size_t)pl, p}, val;
		for (int rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
		     rc == 0 && key.mv_size >= (size_t)pl &&
		     memcmp(key.mv_data, p, (size_t)pl) == 0;
		     rc = mdb_cursor_get(c, &key, &val, MDB_NEXT))
			rrows += val.mv_size > 0;
		mdb_cursor_close(c);
		mdb_txn_abort(t);
	}
	double tscr = now() - t0;
	if (rows != n / SCOPES || rrows != n / SCOPES)
		die("scan", "wrong row count");
	figure("scan", rows / tsc, rrows / tscr, "records/s");

	msgpack_sbuffer_destroy(&out);
	store_close(s);
	mdb_env_close(rr.env);
	catalog_free(cat);
	free(keep);
	free(rk);
	free(pick);
	char cmd[400];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "bench_store: cannot remove %s\n", tmp);
	return 0;
}
