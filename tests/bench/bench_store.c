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
 *   the storm: 1,000,000 synced inserts by STORM_WRITERS in-process writer
 *   threads through a real kernel loop (kernel_post, as drivers and nng's
 *   threads hand work over), each with up to STORM_WINDOW records awaiting
 *   their acknowledgement (the store's commit waiter); the kernel chooses
 *   the batch. Printed: records/s, the average batch, the p99 of a record's
 *   acknowledgement (post to ack), and against raw LMDB writing the same
 *   entries in batches of that average size. Then one write at a time on
 *   the idle store: its acknowledgement time (p50 and p99). Beside them the
 *   disk itself (the raw side: CI disks differ): fsync p50/p99 of a 4 KiB
 *   write and synced MB/s of 1 MiB writes.
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
 * BENCH_STORE_N=records overrides 1,000,000 for a quick run;
 * BENCH_STORE_ONLY=storm runs the storm (and the disk's figures) alone.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <lmdb.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "catalog.h"
#include "kernel.h"
#include "log.h"
#include "mp.h"
#include "store.h"

#define KEEP_ID (STORE_ID_MAX + 1) /* an id the store made, with its NUL */

#define BATCH	1000
#define SCOPES	10
#define DEVICES 1000

#define STORM_WRITERS 16
#define STORM_WINDOW  2048 /* records a storm writer has awaiting their acknowledgement */
#define IDLE_WRITES   200

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
static double raw_insert_b(struct raw *r, long n, long batch, bool records_only,
			   char (*keep)[KEEP_ID], long *nkeep)
{
	msgpack_sbuffer v;
	msgpack_sbuffer_init(&v);
	double t0 = now();
	for (long b = 0; b < n; b += batch) {
		MDB_txn *t;
		if (mdb_txn_begin(r->env, NULL, 0, &t))
			die("raw", "txn");
		for (long i = b; i < b + batch && i < n; i++) {
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

static double raw_insert(struct raw *r, long n, bool records_only, char (*keep)[KEEP_ID],
			 long *nkeep)
{
	return raw_insert_b(r, n, BATCH, records_only, keep, nkeep);
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

/* ---- the storm: concurrent writers through a real kernel loop ---- */

struct storm;

struct swriter {
	struct storm *st;
	long from, to; /* record numbers */
	pthread_t t;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	long inflight;
	double *lat;	   /* per record: post to acknowledgement, seconds */
	msgpack_sbuffer v; /* the writer's record, packed */
};

struct storm {
	struct kernel k;
	struct store *s;
	const struct catalog *cat;
	const char *dir;
	pthread_t kt;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool open;
	double in_commit;	      /* seconds spent in the batch-end hook (kernel thread) */
	unsigned group_max, group_ms; /* store_set_group */
};

/* One write handed to the kernel: the record packed by its writer, as drivers do. */
struct sreq {
	struct swriter *w;
	long i;
	double t;
	size_t len;
	char rec[];
};

static void storm_wake_noop(struct kernel *k, void *arg)
{
	(void)k;
	(void)arg;
}

/* As linlid's store_cmds.c: a write opening a batch guarantees a batch end soon. */
static void storm_wake(void *kp)
{
	kernel_post(kp, storm_wake_noop, NULL);
}

/* As linlid's batch-end hook (store_cmds.c): group commit that adapts to the load. */
static void storm_batch_end(struct kernel *k, void *arg)
{
	struct storm *st = arg;
	pthread_mutex_lock(&k->mu);
	bool more = k->head != NULL;
	pthread_mutex_unlock(&k->mu);
	double t0 = now();
	store_batch_turn(st->s, more);
	st->in_commit += now() - t0;
	store_changes_deliver(st->s);
}

static void storm_acked(void *arg, int rc, const char *err)
{
	struct sreq *r = arg;
	if (rc)
		die("storm commit", err ? err : "failed");
	struct swriter *w = r->w;
	w->lat[r->i - w->from] = now() - r->t;
	pthread_mutex_lock(&w->mu);
	if (w->inflight-- == STORM_WINDOW)
		pthread_cond_signal(&w->cv);
	else if (w->inflight == 0)
		pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	free(r);
}

static void storm_put(struct kernel *k, void *arg)
{
	(void)k;
	struct sreq *r = arg;
	struct storm *st = r->w->st;
	char err[512], id[STORE_ID_MAX + 1];
	if (store_put(st->s, "readings", scopes[r->i % SCOPES], NULL, r->rec, r->len, id, NULL, err,
		      sizeof err))
		die("storm store_put", err);
	if (store_on_commit(st->s, storm_acked, r))
		die("storm", "store_on_commit");
}

static void *storm_kernel(void *p)
{
	struct storm *st = p;
	mkdir(st->dir, 0700);
	struct store_opts o = {.dir = st->dir,
			       .map_size = (size_t)64 << 20,
			       .sync = true,
			       .wake = storm_wake,
			       .wake_ud = &st->k};
	char err[1024];
	if (store_open(&o, st->cat, &st->s, err, sizeof err))
		die(st->dir, err);
	store_set_group(st->s, st->group_max, st->group_ms);
	if (kernel_on_batch_end(&st->k, storm_batch_end, st))
		die("storm", "kernel_on_batch_end");
	pthread_mutex_lock(&st->mu);
	st->open = true;
	pthread_cond_signal(&st->cv);
	pthread_mutex_unlock(&st->mu);
	kernel_run(&st->k);
	store_close(st->s);
	return NULL;
}

/* Post record i for writer w (waiting while its window is full). */
static void storm_post(struct swriter *w, long i, long window)
{
	pthread_mutex_lock(&w->mu);
	while (w->inflight >= window)
		pthread_cond_wait(&w->cv, &w->mu);
	w->inflight++;
	pthread_mutex_unlock(&w->mu);
	w->v.size = 0;
	pack_reading(&w->v, i);
	struct sreq *r = malloc(sizeof *r + w->v.size);
	if (!r)
		die("storm", "out of memory");
	*r = (struct sreq){.w = w, .i = i, .len = w->v.size};
	memcpy(r->rec, w->v.data, w->v.size);
	r->t = now();
	if (kernel_post(&w->st->k, storm_put, r))
		die("storm", "kernel_post");
}

static void storm_drain(struct swriter *w)
{
	pthread_mutex_lock(&w->mu);
	while (w->inflight > 0)
		pthread_cond_wait(&w->cv, &w->mu);
	pthread_mutex_unlock(&w->mu);
}

static void *storm_writer(void *p)
{
	struct swriter *w = p;
	for (long i = w->from; i < w->to; i++)
		storm_post(w, i, STORM_WINDOW);
	storm_drain(w);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(double *v, long n, double p)
{
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	long i = (long)(p * (double)(n - 1) + 0.5);
	return v[i];
}

static void swriter_init(struct swriter *w, struct storm *st, long from, long to)
{
	*w = (struct swriter){.st = st, .from = from, .to = to};
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	msgpack_sbuffer_init(&w->v);
	if (!(w->lat = malloc((size_t)(to - from) * sizeof *w->lat)))
		die("storm", "out of memory");
}

/*
 * The storm, then single writes on the idle store. Returns the average
 * batch (records per commit) of the storm.
 */
static double tstorm_s; /* the storm's duration */

static double storm_run(const char *dir, const struct catalog *cat, long n, const char *name,
			unsigned group_ms, bool idle)
{
	static struct storm st;
	memset(&st, 0, sizeof st);
	st.group_max = STORE_GROUP_MAX_DEFAULT;
	st.group_ms = group_ms;
	if (kernel_init(&st.k))
		die("storm", "kernel_init");
	st.cat = cat;
	st.dir = dir;
	pthread_mutex_init(&st.mu, NULL);
	pthread_cond_init(&st.cv, NULL);
	if (pthread_create(&st.kt, NULL, storm_kernel, &st))
		die("storm", "pthread_create");
	pthread_mutex_lock(&st.mu);
	while (!st.open)
		pthread_cond_wait(&st.cv, &st.mu);
	pthread_mutex_unlock(&st.mu);

	struct store_stats s0, s1;
	store_stats(st.s, &s0);
	struct swriter w[STORM_WRITERS];
	long per = n / STORM_WRITERS;
	double t0 = now();
	for (int i = 0; i < STORM_WRITERS; i++) {
		swriter_init(&w[i], &st, i * per, i == STORM_WRITERS - 1 ? n : (i + 1) * per);
		if (pthread_create(&w[i].t, NULL, storm_writer, &w[i]))
			die("storm", "pthread_create");
	}
	for (int i = 0; i < STORM_WRITERS; i++)
		pthread_join(w[i].t, NULL);
	double dt = tstorm_s = now() - t0;
	store_stats(st.s, &s1);
	double in_commit = st.in_commit; /* the kernel thread is between batches: acks done */
	double *all = malloc((size_t)n * sizeof *all);
	long m = 0;
	for (int i = 0; i < STORM_WRITERS; i++) {
		memcpy(all + m, w[i].lat, (size_t)(w[i].to - w[i].from) * sizeof *all);
		m += w[i].to - w[i].from;
		free(w[i].lat);
		msgpack_sbuffer_destroy(&w[i].v);
	}
	uint64_t commits = s1.commits - s0.commits;
	double avg = commits ? (double)n / (double)commits : (double)n;
	printf("store.insert_%s: %.0f records/s (group_commit_ms %u)\n", name, n / dt, group_ms);
	printf("store.insert_%s.writers: %d threads, up to %d records each awaiting the ack\n",
	       name, STORM_WRITERS, STORM_WINDOW);
	printf("store.insert_%s.batch_avg: %.0f records per commit (%llu commits)\n", name, avg,
	       (unsigned long long)commits);
	printf("store.insert_%s.commit_share: %.2f of the storm's time in commits\n", name,
	       in_commit / dt);
	printf("store.write_%s_p50_ms: %.1f ms\n", name, pct(all, m, 0.50) * 1e3);
	printf("store.write_%s_p99_ms: %.1f ms\n", name, pct(all, m, 0.99) * 1e3);
	fflush(stdout);
	free(all);

	/* One write at a time, the store otherwise idle. */
	struct swriter one;
	if (!idle)
		goto stop;
	swriter_init(&one, &st, n, n + IDLE_WRITES);
	double cus[IDLE_WRITES];
	for (long i = n; i < n + IDLE_WRITES; i++) {
		usleep(2000);
		storm_post(&one, i, 1);
		storm_drain(&one);
		struct store_stats cs;
		store_stats(st.s, &cs);
		cus[i - n] = (double)cs.last_commit_us / 1e3;
	}
	printf("store.write_idle_ms: %.2f ms (p50 of %d single writes; p99 %.2f ms)\n",
	       pct(one.lat, IDLE_WRITES, 0.50) * 1e3, IDLE_WRITES,
	       pct(one.lat, IDLE_WRITES, 0.99) * 1e3);
	printf("store.write_idle.commit_ms: %.2f ms (p50 of the commit alone: LMDB writes its "
	       "pages and fsyncs twice)\n",
	       pct(cus, IDLE_WRITES, 0.50));
	fflush(stdout);
	free(one.lat);
	msgpack_sbuffer_destroy(&one.v);
stop:
	kernel_stop(&st.k);
	pthread_join(st.kt, NULL);
	kernel_destroy(&st.k);
	return avg;
}

/* The disk itself: fsync of a 4 KiB write (p50, p99) and synced MB/s of 1 MiB writes. */
static void disk_raw(const char *tmp)
{
	char path[400];
	snprintf(path, sizeof path, "%s/disk-probe", tmp);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		die(path, strerror(errno));
	enum { N4 = 300, N1M = 64 };
	static char buf[1 << 20];
	memset(buf, 'x', sizeof buf);
	double lat[N4];
	for (int i = 0; i < N4; i++) {
		double t0 = now();
		if (pwrite(fd, buf, 4096, (off_t)i * 4096) != 4096 || fdatasync(fd))
			die(path, strerror(errno));
		lat[i] = now() - t0;
	}
	double t0 = now();
	for (int i = 0; i < N1M; i++)
		if (pwrite(fd, buf, sizeof buf, (off_t)i * (off_t)sizeof buf) !=
			(ssize_t)sizeof buf ||
		    fdatasync(fd))
			die(path, strerror(errno));
	double dt = now() - t0;
	close(fd);
	unlink(path);
	printf("store.disk.fsync_p50_ms: %.2f ms (raw: 4 KiB pwrite + fdatasync, %d times)\n",
	       pct(lat, N4, 0.50) * 1e3, N4);
	printf("store.disk.fsync_p99_ms: %.2f ms\n", pct(lat, N4, 0.99) * 1e3);
	printf("store.disk.synced_mb_s: %.0f MB/s (raw: 1 MiB pwrite + fdatasync, %d times)\n",
	       N1M / dt, N1M);
	fflush(stdout);
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

	/* The storm and the idle writes, the disk's raw figures beside them. */
	{
		char ds[300], dr[300];
		snprintf(ds, sizeof ds, "%s/store-storm", tmp);
		snprintf(dr, sizeof dr, "%s/raw-storm", tmp);
		settle(NULL);
		disk_raw(tmp);
		/* First as the kernel did before group commit across turns: commit at each turn. */
		storm_run(ds, cat, n, "storm_per_turn", 0, false);
		settle(ds);
		double avg = storm_run(ds, cat, n, "storm", STORE_GROUP_MS_DEFAULT, true);
		settle(ds);
		struct raw r = {0};
		raw_open(&r, dr, true);
		long b = (long)(avg + 0.5);
		double tr = raw_insert_b(&r, n, b < 1 ? 1 : b, false, NULL, NULL);
		mdb_env_close(r.env);
		settle(dr);
		printf(
		    "store.insert_storm.raw: %.0f records/s (raw LMDB, synced, batches of %ld)\n",
		    n / tr, b);
		printf("store.insert_storm.ratio: %.2f\n", tr / tstorm_s);
		disk_raw(tmp);
	}
	if (getenv("BENCH_STORE_ONLY") && strcmp(getenv("BENCH_STORE_ONLY"), "storm") == 0) {
		catalog_free(cat);
		char cmd[400];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
		return system(cmd) != 0;
	}

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
		printf("store.insert_nosync_watched.vs_unwatched.ratio: %.2f\n",
		       (n / tw) / (n / ts));
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

	/* One device's records in a scope: the index walked under its value, each record's
	   filter tested on its raw bytes (only the filtered field unpacked) vs a raw index walk
	   with a get of each record. Repeated over devices so the figure is not one page. */
	rows = rrows = 0;
	double tf = 0, tfr = 0;
	for (int dv = 0; dv < 100; dv++) {
		char dev[32];
		snprintf(dev, sizeof dev, "dev-%04d", dv);
		struct store_where w = {"device", dev};
		cursor[0] = '\0';
		t0 = now();
		do {
			struct store_query q = {.dataset = "readings",
						.scope = scopes[3],
						.where = &w,
						.n_where = 1,
						.cursor = cursor};
			char next[STORE_CURSOR_MAX];
			if (store_scan(s, &q, count_row, &rows, next, err, sizeof err) < 0)
				die("store_scan filtered", err);
			memcpy(cursor, next, sizeof cursor);
		} while (cursor[0]);
		tf += now() - t0;
		t0 = now();
		MDB_txn *t;
		MDB_cursor *c;
		char p[160], rk2[256];
		size_t dl = strlen(dev);
		size_t pl = cat3(p, "readings\0device\0", 16, "", 0, "", 0);
		p[pl++] = (char)(dl >> 8);
		p[pl++] = (char)dl;
		memcpy(p + pl, dev, dl);
		pl += dl;
		pl += (size_t)snprintf(p + pl, sizeof p - pl, "%s/", scopes[3]);
		if (mdb_txn_begin(rr.env, NULL, MDB_RDONLY, &t) || mdb_cursor_open(t, rr.idx, &c))
			die("raw", "cursor");
		MDB_val key = {pl, p}, val;
		for (int rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
		     rc == 0 && key.mv_size > pl && memcmp(key.mv_data, p, pl) == 0;
		     rc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
			const char *id = (const char *)key.mv_data + pl + 1;
			size_t il = key.mv_size - pl - 1;
			int ml = snprintf(rk2, sizeof rk2, "readings%c%s/%c", 0, scopes[3], 0);
			memcpy(rk2 + ml, id, il);
			MDB_val rkey = {(size_t)ml + il, rk2}, rval;
			if (mdb_get(t, rr.rec, &rkey, &rval))
				die("raw", "filtered get");
			rrows += rval.mv_size > 0;
		}
		mdb_cursor_close(c);
		mdb_txn_abort(t);
		tfr += now() - t0;
	}
	if (rows != rrows || rows == 0)
		die("scan filtered", "row counts differ");
	figure("scan_filtered", rows / tf, rrows / tfr, "records/s");

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
