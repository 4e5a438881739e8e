/*
 * bench_safety (tools/bench apps) — the safety family's alarms, in-process.
 *
 * A node (bench_apps.h) at the city hefei runs the alarms plugin
 * (plugins/alarms) through the real .so loader, and runs its kernel loop as
 * linlid does: each loop turn is one batch, the store commits it at batch
 * end with an fsync (store sync on, linlid's default), and the bus journals
 * records of consequence (dev/+/+/event/#, alarm/#) in the same batch before
 * they leave the process. The bench is the family plugin: it sends raises as
 * requests on `alarmreq/raise` (the path fire, access and perimeter take),
 * BENCH_ALARM_WINDOW (1,000) in flight, and reads every answer.
 *
 *   apps.alarm_raise          distinct alarms raised and stored per second:
 *                             from the first request to the commit of the batch
 *                             holding the last one (target >= 5,000/s); each
 *                             is a new alarms row, its alarm_history row and
 *                             its journaled alarm/smoke/raised event
 *   apps.alarm_raise.direct   the raw store: an alarms and an alarm_history put
 *                             per alarm, committed (synced) every 1,000; and the ratio
 *   apps.alarm_dedup          repeats of active alarms folded per second: a storm
 *                             of repeats over BENCH_DEDUP_HOT (100) chattering
 *                             detectors, from the first request to the commit of
 *                             the last flush (target >= 200,000/s); .writes is
 *                             the alarms writes per repeat (one per alarm per turn)
 *   apps.alarm_dedup.spread   BENCH_SPREAD_N (200,000) repeats over every active
 *                             alarm (the worst case: the repeats of one turn hit
 *                             different alarms)
 *   apps.alarm_dedup.command  the storm again by `alarms raise` commands in-process,
 *                             a window's worth per loop turn: the plugin without
 *                             the bus's request path, to tell the two costs apart
 *   apps.alarm_latency_p99_ms a device event posted from a driver thread
 *                             (dev/smoke/ID/event/alarm, a new detector each) at
 *                             1,000 events/s -> the bench's subscriber requests
 *                             the raise -> the alarm is stored and alarm/smoke/raised
 *                             published -> the batch holding them is committed:
 *                             p50, p99, max (target p99 <= 20 ms). The raised
 *                             event reaches in-process subscribers at publication
 *                             and external ones (`events next`) once that commit
 *                             is done, so the commit is when both hold.
 *                             .stages: p50/p99 of each step (posted -> the
 *                             subscriber -> raised -> committed) and of the
 *                             commits that held the alarms
 *   apps.fsync_p99_ms         raw fsync of a 4 KiB write in the same directory
 *                             (its filesystem), p50 and p99: an LMDB commit
 *                             syncs twice (data, then the meta page)
 *
 * BENCH_RAISE_N (20,000), BENCH_DEDUP_N (1,000,000), BENCH_DEDUP_HOT (100),
 * BENCH_SPREAD_N (200,000), BENCH_ALARM_WINDOW (1,000), BENCH_LATENCY_N
 * (5,000 events) and BENCH_LATENCY_RATE (1,000/s) set the sizes; TMPDIR the
 * directory (hence the disk) the node lives on.
 */
#include <errno.h>
#include <fcntl.h>
#include <msgpack.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_apps.h"
#include "bus.h"
#include "cmd.h"
#include "kernel.h"
#include "linli/error.h"
#include "mp.h"
#include "record.h"
#include "store.h"
#include "tier.h"

#define NODE	 "hefei"
#define BATCH	 1000 /* the direct puts commit every BATCH */
#define N_SCOPES 4
static const char *const scopes[N_SCOPES] = {"hefei/baohe/binhu/yuelan", "hefei/baohe/binhu/lvzhou",
					     "hefei/baohe/binhu/qiming",
					     "hefei/baohe/binhu/tianyu"};

enum phase { P_RAISE, P_DEDUP, P_SPREAD, P_COMMAND, P_LATENCY, P_DONE };

/* The run: kernel thread only, but for the driver thread's at[0] (read after its join). */
static struct {
	struct kernel *k;
	enum phase phase;
	long n, sent, answered; /* of the current throughput phase */
	long window, n_raise, n_dedup, hot, n_spread;
	char (*ids)[STORE_ID_MAX + 1]; /* the raised alarms, by index */
	double t0, t1, c0, c1;	       /* the phase's wall and CPU span */
	uint64_t writes0, commits0;    /* alarms writes and commits at its start */
	msgpack_sbuffer pay;	       /* a request's payload */
	msgpack_unpacked up;
	/* results */
	double raise_s, raise_cpu, dedup_s, dedup_cpu, spread_s, command_s, command_cpu;
	uint64_t raise_commits, dedup_writes, dedup_commits, spread_writes, command_writes;
	/* latency */
	long n_lat, rate, lat_done;
	uint64_t *at[4];      /* by event, ns (CLOCK_MONOTONIC): posted, at the subscriber, raised,
				 committed */
	uint64_t lat_commits; /* commits that held the latency run's alarms */
	uint64_t *commit_ns, last_commits; /* the duration of each of them (store_stats) */
	pthread_t driver;
} R;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void store_counters(uint64_t *writes, uint64_t *commits)
{
	struct store_stats st;
	if (store_stats(R.k->store, &st))
		bench_die("store_stats", "failed");
	*writes = store_writes(R.k->store, "alarms");
	*commits = st.commits;
}

/* The raise of detector `source` at `scope`: {type, source, severity, topic}. */
static void request_raise(const char *source, const char *scope, const char *topic, void *ud,
			  bus_reply_fn fn)
{
	msgpack_packer pk;
	R.pay.size = 0;
	msgpack_packer_init(&pk, &R.pay, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, topic ? 4 : 3);
	mp_kv_str(&pk, "type", "smoke");
	mp_kv_str(&pk, "source", source);
	mp_kv_str(&pk, "severity", "major");
	if (topic)
		mp_kv_str(&pk, "topic", topic);
	struct bus_msg m = {"alarmreq/raise", "fire", scope, R.pay.data, R.pay.size};
	char err[512];
	uint64_t id;
	if (bus_request(R.k->bus, &m, 0, fn, ud, &R, &id, err, sizeof err))
		bench_die("alarmreq/raise", err);
}

/* The answer's map, checked: status 0 and `created` as expected. */
static const msgpack_object *answer(int status, const void *rec, size_t len, const char *msg,
				    bool created)
{
	if (status)
		bench_die("alarmreq/raise", msg);
	if (msgpack_unpack_next(&R.up, rec, len, NULL) != MSGPACK_UNPACK_SUCCESS)
		bench_die("alarmreq/raise", "the answer is not MessagePack");
	const msgpack_object *c = mp_get(&R.up.data, "created");
	if (!c || c->type != MSGPACK_OBJECT_BOOLEAN || c->via.boolean != created)
		bench_die("alarmreq/raise", created
						? "a distinct raise did not create an alarm"
						: "a repeat of an active alarm created another");
	return &R.up.data;
}

/* ---- the throughput phases: raise, then repeats ---- */

static void start_phase(struct kernel *k, void *arg);
static void on_answer(uint64_t id, int status, const void *rec, size_t len, const char *msg,
		      void *ud);

/* Raise number i of the phase: a new detector, or a repeat of an active one. */
static void send_next(void)
{
	long i = R.sent++, a = i;
	if (R.phase == P_DEDUP)
		a = i % R.hot;
	else if (R.phase == P_SPREAD)
		a = i % R.n_raise;
	char source[32];
	snprintf(source, sizeof source, "device:sd-r%06ld", a);
	request_raise(source, scopes[a % N_SCOPES], NULL, (void *)(intptr_t)i, on_answer);
}

static void phase_committed(void *arg, int rc, const char *err);

/* The phase ends once the batch holding its last write commits. */
static void await_commit(void)
{
	int rc = store_on_commit(R.k->store, phase_committed, NULL);
	if (rc == LINLI_ESTATE) /* nothing pending: that batch has committed already */
		phase_committed(NULL, 0, NULL);
	else if (rc)
		bench_die("store_on_commit", linli_strerror(rc));
}

static void phase_committed(void *arg, int rc, const char *err)
{
	(void)arg;
	if (rc)
		bench_die("commit", err);
	R.t1 = bench_now(), R.c1 = bench_cpu();
	uint64_t writes, commits;
	store_counters(&writes, &commits);
	double s = R.t1 - R.t0, c = R.c1 - R.c0;
	if (R.phase == P_RAISE)
		R.raise_s = s, R.raise_cpu = c, R.raise_commits = commits - R.commits0;
	else if (R.phase == P_DEDUP)
		R.dedup_s = s, R.dedup_cpu = c, R.dedup_writes = writes - R.writes0,
		R.dedup_commits = commits - R.commits0;
	else if (R.phase == P_SPREAD)
		R.spread_s = s, R.spread_writes = writes - R.writes0;
	else
		R.command_s = s, R.command_cpu = c, R.command_writes = writes - R.writes0;
	R.phase++;
	kernel_timer_add(R.k, 0, 0, start_phase, NULL);
}

static void on_answer(uint64_t id, int status, const void *rec, size_t len, const char *msg,
		      void *ud)
{
	(void)id;
	long i = (long)(intptr_t)ud;
	const msgpack_object *a = answer(status, rec, len, msg, R.phase == P_RAISE);
	if (R.phase == P_RAISE) {
		const msgpack_object *o = mp_get(a, "id");
		if (!o || o->type != MSGPACK_OBJECT_STR)
			bench_die("alarmreq/raise", "the answer has no id");
		mp_copy_str(o, R.ids[i], sizeof R.ids[i]);
	}
	if (++R.answered < R.n) {
		if (R.sent < R.n)
			send_next();
		return;
	}
	/* The last answer: done once what it (and the last flush before it) wrote commits. */
	await_commit();
}

/* ---- the storm again, by `alarms raise` in-process: the plugin without the bus ---- */

static void on_cmd_finish(struct cmd_call *call, int rc)
{
	if (rc)
		bench_die("alarms raise", call->err);
	R.answered++;
	cmd_call_free(call);
}

/* After the flush the last chunk armed (timers run in the order set). */
static void command_done(struct kernel *k, void *arg)
{
	(void)k, (void)arg;
	if (R.answered != R.n)
		bench_die("alarms raise", "commands left unanswered");
	await_commit();
}

/* The console's caller: the city's administrator (the node's own account). */
static const struct tier_principal admin = {
    .kind = PRINCIPAL_PERSON, .name = "bench", .scope = NODE, .role = ROLE_ADMIN};

/* One turn's share: `window` repeats, each a command as the console sends it. */
static void command_chunk(struct kernel *k, void *arg)
{
	(void)arg;
	for (long j = 0; j < R.window && R.sent < R.n; j++) {
		long a = R.sent++ % R.hot;
		char source[32];
		snprintf(source, sizeof source, "device:sd-r%06ld", a);
		char *argv[] = {"alarms", "raise", "smoke", source, (char *)scopes[a % N_SCOPES],
				"major"};
		struct cmd_call *c = cmd_call_new(k, 6, argv);
		if (!c)
			bench_die("cmd_call_new", "out of memory");
		c->who = &admin;
		c->finish = on_cmd_finish;
		cmd_dispatch(k->cmds, c);
	}
	if (R.sent < R.n) {
		if (kernel_post(k, command_chunk, NULL))
			bench_die("kernel_post", "refused");
	} else if (!kernel_timer_add(k, 0, 0, command_done, NULL))
		bench_die("kernel_timer_add", "out of memory");
}

/* ---- latency: device events at a fixed rate ---- */

static void *driver(void *arg)
{
	(void)arg;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 2);
	mp_kv_double(&pk, "smoke", 0.31);
	mp_kv_int(&pk, "battery", 87);
	uint64_t t0 = now_ns() + 10000000, step = 1000000000u / (uint64_t)R.rate;
	for (long i = 0; i < R.n_lat; i++) {
		uint64_t due = t0 + (uint64_t)i * step;
		struct timespec ts = {(time_t)(due / 1000000000u), (long)(due % 1000000000u)};
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
		char topic[64], err[256];
		snprintf(topic, sizeof topic, "dev/smoke/sd-l%06ld/event/alarm", i);
		struct bus_msg m = {topic, "driver-sim", scopes[i % N_SCOPES], sb.data, sb.size};
		R.at[0][i] = now_ns();
		if (bus_post(R.k->bus, &m, err, sizeof err))
			bench_die("bus_post", err);
	}
	msgpack_sbuffer_destroy(&sb);
	return NULL;
}

/* The event number of detector sd-lNNNNNN in `s`, or -1. */
static long lat_index(const char *s, size_t n)
{
	const char *p = memmem(s, n, "sd-l", 4);
	if (!p || p + 10 > s + n)
		return -1;
	long i = 0;
	for (int d = 0; d < 6; d++) {
		char c = p[4 + d];
		if (c < '0' || c > '9')
			return -1;
		i = i * 10 + (c - '0');
	}
	return i < R.n_lat ? i : -1;
}

static void lat_answer(uint64_t id, int status, const void *rec, size_t len, const char *msg,
		       void *ud)
{
	(void)id, (void)ud;
	answer(status, rec, len, msg, true);
}

/* dev/smoke/+/event/#: what the fire plugin does, raise the detector's alarm. */
static int on_device_event(const struct bus_event *ev, void *ud)
{
	(void)ud;
	long i = lat_index(ev->topic, strlen(ev->topic));
	if (i < 0)
		bench_die(ev->topic, "not a detector of this run");
	R.at[1][i] = now_ns();
	char source[40];
	const char *id = ev->topic + strlen("dev/smoke/");
	const char *slash = strchr(id, '/');
	if (!slash || slash - id > 30)
		bench_die(ev->topic, "not a smoke detector's event");
	snprintf(source, sizeof source, "device:%.*s", (int)(slash - id), id);
	request_raise(source, ev->scope, ev->topic, NULL, lat_answer);
	return 0;
}

static void lat_committed(void *arg, int rc, const char *err)
{
	if (rc)
		bench_die("commit", err);
	R.at[3][(intptr_t)arg] = now_ns();
	struct store_stats st;
	if (store_stats(R.k->store, &st) == 0 && st.commits != R.last_commits &&
	    R.lat_commits < (uint64_t)R.n_lat) {
		R.last_commits = st.commits; /* the first waiter of this commit: note its time */
		R.commit_ns[R.lat_commits++] = st.last_commit_us * 1000;
	}
	if (++R.lat_done < R.n_lat)
		return;
	kernel_stop(R.k);
}

/* alarm/+/raised: the alarm is in this batch; its commit ends the event's latency. */
static int on_raised(const struct bus_event *ev, void *ud)
{
	(void)ud;
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	if (msgpack_unpack_next(&up, ev->payload, ev->payload_len, NULL) != MSGPACK_UNPACK_SUCCESS)
		bench_die(ev->topic, "the payload is not MessagePack");
	const msgpack_object *src = mp_get(&up.data, "source");
	long i = src && src->type == MSGPACK_OBJECT_STR
		     ? lat_index(src->via.str.ptr, src->via.str.size)
		     : -1;
	msgpack_unpacked_destroy(&up);
	if (i < 0)
		return 0; /* the throughput phases' alarms */
	if (R.at[2][i])
		bench_die(ev->topic, "a detector's alarm was raised twice");
	R.at[2][i] = now_ns();
	int rc = store_on_commit(R.k->store, lat_committed, (void *)(intptr_t)i);
	if (rc)
		bench_die("store_on_commit", linli_strerror(rc));
	return 0;
}

static void start_phase(struct kernel *k, void *arg)
{
	(void)arg;
	char err[512];
	R.sent = R.answered = 0;
	R.n = R.phase == P_RAISE ? R.n_raise : R.phase == P_SPREAD ? R.n_spread : R.n_dedup;
	if (R.phase == P_LATENCY) {
		if (bus_subscribe(k->bus, "dev/smoke/+/event/#", "", on_device_event, NULL, &R,
				  "fire", NULL, err, sizeof err) ||
		    bus_subscribe(k->bus, "alarm/+/raised", "", on_raised, NULL, &R, "bench", NULL,
				  err, sizeof err))
			bench_die("bus_subscribe", err);
		if (pthread_create(&R.driver, NULL, driver, NULL))
			bench_die("pthread_create", strerror(errno));
		return;
	}
	store_counters(&R.writes0, &R.commits0);
	R.t0 = bench_now(), R.c0 = bench_cpu();
	if (R.phase == P_COMMAND)
		command_chunk(k, NULL);
	for (long i = 0; R.phase != P_COMMAND && i < R.window && R.sent < R.n; i++)
		send_next();
}

/* Every second: a run that moves no further for STALL_S seconds ends, naming the phase. */
#define STALL_S 30
static void watch(struct kernel *k, void *arg)
{
	(void)k, (void)arg;
	static const char *const names[] = {"raise",   "dedup",	  "spread",
					    "command", "latency", "done"};
	static long last = -1, still;
	long now = R.phase * 1000000000L + R.answered + R.lat_done;
	still = now == last ? still + 1 : 0;
	last = now;
	if (still >= STALL_S) {
		char why[128];
		snprintf(why, sizeof why,
			 "no progress for %d s in the %s phase (%ld of %ld answered)", STALL_S,
			 names[R.phase], R.phase == P_LATENCY ? R.lat_done : R.answered,
			 R.phase == P_LATENCY ? R.n_lat : R.n);
		bench_die("stuck", why);
	}
}

static void start(struct kernel *k, void *arg)
{
	(void)arg;
	R.phase = P_RAISE;
	if (!kernel_timer_add(k, 1000, 1000, watch, NULL))
		bench_die("kernel_timer_add", "out of memory");
	start_phase(k, NULL);
}

/* ---- the raw store and the raw disk ---- */

/* n alarms as raw store puts (the row and its history row), synced every 1,000: puts/s. */
static double direct_raises(struct kernel *k, long n)
{
	linli_record *a = record_new(), *h = record_new();
	record_set_str(a, "type", "smoke");
	record_set_str(a, "source", "device:sd-d000001");
	record_set_str(a, "severity", "major");
	record_set_bool(a, "active", true);
	record_set_bool(a, "acknowledged", false);
	record_set_int(a, "count", 1);
	record_set_time(a, "first_at", 1796000000000);
	record_set_time(a, "last_at", 1796000000000);
	record_set_str(a, "device", "sd-d000001");
	record_set_str(h, "alarm", "0000000000000000-0000000000");
	record_set_time(h, "at", 1796000000000);
	record_set_str(h, "by", "plugin:fire");
	record_set_str(h, "action", "raised");
	record_set_str(h, "to", "major");
	msgpack_sbuffer ra, rh;
	bench_pack(a, &ra);
	bench_pack(h, &rh);
	char err[1024], id[STORE_ID_MAX + 1];
	double t0 = bench_now();
	for (long i = 0; i < n; i++) {
		const char *scope = scopes[i % N_SCOPES];
		if (store_put(k->store, "alarms", scope, NULL, ra.data, ra.size, id, NULL, err,
			      sizeof err) ||
		    store_put(k->store, "alarm_history", scope, NULL, rh.data, rh.size, id, NULL,
			      err, sizeof err))
			bench_die("store_put", err);
		if ((i + 1) % BATCH == 0 && store_batch_end(k->store))
			bench_die("store", "commit failed");
	}
	if (store_batch_end(k->store))
		bench_die("store", "commit failed");
	double s = bench_now() - t0;
	msgpack_sbuffer_destroy(&ra);
	msgpack_sbuffer_destroy(&rh);
	return (double)n / s;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The q-th quantile of n sorted values, in ms. */
static double pct_ms(const uint64_t *v, long n, double q)
{
	long i = (long)(q * (double)n);
	return (double)v[i < n ? i : n - 1] / 1e6;
}

/* Raw fsync of a 4 KiB write in dir, n times: p50 and p99 in ms. */
static void raw_fsync(const char *dir, long n, double *p50, double *p99)
{
	char path[4200], block[4096];
	snprintf(path, sizeof path, "%s/fsync.probe", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		bench_die(path, strerror(errno));
	uint64_t *t = malloc((size_t)n * sizeof *t);
	if (!t)
		bench_die("malloc", "out of memory");
	memset(block, 'x', sizeof block);
	for (long i = 0; i < n; i++) {
		if (pwrite(fd, block, sizeof block, (off_t)(i % 256) * (off_t)sizeof block) !=
		    (ssize_t)sizeof block)
			bench_die(path, strerror(errno));
		uint64_t t0 = now_ns();
		if (fsync(fd))
			bench_die(path, strerror(errno));
		t[i] = now_ns() - t0;
	}
	close(fd);
	unlink(path);
	qsort(t, (size_t)n, sizeof *t, cmp_u64);
	*p50 = pct_ms(t, n, 0.50), *p99 = pct_ms(t, n, 0.99);
	free(t);
}

/* ---- checks after the run ---- */

/* The stored count of raised alarm i. */
static int64_t stored_count(long i)
{
	msgpack_sbuffer out;
	msgpack_unpacked up;
	char err[1024];
	int64_t count = -1;
	msgpack_sbuffer_init(&out);
	msgpack_unpacked_init(&up);
	if (store_get(R.k->store, "alarms", scopes[i % N_SCOPES], R.ids[i], &out, NULL, err,
		      sizeof err))
		bench_die("store_get", err);
	if (msgpack_unpack_next(&up, out.data, out.size, NULL) == MSGPACK_UNPACK_SUCCESS) {
		const msgpack_object *c = mp_get(&up.data, "count");
		if (c && c->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
			count = (int64_t)c->via.u64;
	}
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&out);
	return count;
}

/* Every raise is in the stored counts: distinct ones, the storm's and the spread's repeats. */
static void check_counts(void)
{
	char err[256];
	uint64_t alarms = store_count(R.k->store, "alarms");
	if (alarms != (uint64_t)(R.n_raise + R.n_lat)) {
		snprintf(err, sizeof err, "%llu alarms stored, want %ld distinct",
			 (unsigned long long)alarms, R.n_raise + R.n_lat);
		bench_die("raise", err);
	}
	int64_t total = 0;
	for (long i = 0; i < R.n_raise; i++)
		total += stored_count(i);
	if (total != R.n_raise + 2 * R.n_dedup + R.n_spread) {
		snprintf(err, sizeof err, "stored counts sum to %lld, want %ld raises",
			 (long long)total, R.n_raise + 2 * R.n_dedup + R.n_spread);
		bench_die("dedup", err);
	}
}

void bench_safety_sizes(void)
{
	R.window = bench_env_long("BENCH_ALARM_WINDOW", 1000, 1, BUS_REQUESTS_MAX);
	R.n_raise = bench_env_long("BENCH_RAISE_N", 20000, BATCH, 10000000);
	R.n_dedup = bench_env_long("BENCH_DEDUP_N", 1000000, 1, 1000000000);
	R.hot = bench_env_long("BENCH_DEDUP_HOT", 100, 1, R.n_raise);
	R.n_spread = bench_env_long("BENCH_SPREAD_N", 200000, 1, 1000000000);
	R.n_lat = bench_env_long("BENCH_LATENCY_N", 5000, 100, 999999);
	R.rate = bench_env_long("BENCH_LATENCY_RATE", 1000, 1, 100000);
}

void bench_safety(void)
{
	struct kernel k;
	struct bench_node_opts o = {
	    .node = NODE, .level = "city", .plugin_so = ALARMS_SO, .sync = true, .loop = true};
	const char *dir = bench_node_open(&k, &o);
	bench_node_start(&k);
	R.k = &k;
	R.ids = calloc((size_t)R.n_raise, sizeof *R.ids);
	for (int s = 0; s < 4; s++)
		if (!(R.at[s] = calloc((size_t)R.n_lat, sizeof *R.at[s])))
			bench_die("calloc", "out of memory");
	if (!R.ids || !(R.commit_ns = calloc((size_t)R.n_lat, sizeof *R.commit_ns)))
		bench_die("calloc", "out of memory");
	msgpack_sbuffer_init(&R.pay);
	msgpack_unpacked_init(&R.up);
	printf("apps.alarms: %ld distinct raises, %ld repeats over %ld alarms, %ld over all, "
	       "%ld device events at %ld/s; alarmreq/raise with %ld in flight, fsync per batch\n",
	       R.n_raise, R.n_dedup, R.hot, R.n_spread, R.n_lat, R.rate, R.window);
	fflush(stdout);

	if (kernel_post(&k, start, NULL))
		bench_die("kernel_post", "refused");
	kernel_run(&k); /* until the last device event's alarm commits */
	pthread_join(R.driver, NULL);
	check_counts();

	double raise = (double)R.n_raise / R.raise_s;
	printf("apps.alarm_raise: %.0f alarms/s (target >= 5000)\n", raise);
	printf("apps.alarm_raise.cpu: %.0f alarms per CPU second, %.0f raises per commit\n",
	       (double)R.n_raise / R.raise_cpu, (double)R.n_raise / (double)R.raise_commits);
	double direct = direct_raises(&k, R.n_raise);
	printf("apps.alarm_raise.direct: %.0f alarm and history puts/s, synced every %d\n", direct,
	       BATCH);
	printf("apps.alarm_raise.ratio: %.3f\n", raise / direct);
	printf("apps.alarm_dedup: %.0f repeats/s over %ld alarms (target >= 200000)\n",
	       (double)R.n_dedup / R.dedup_s, R.hot);
	printf("apps.alarm_dedup.cpu: %.0f repeats per CPU second\n",
	       (double)R.n_dedup / R.dedup_cpu);
	printf("apps.alarm_dedup.writes: %.4f alarms writes per repeat (%llu writes, %llu "
	       "commits)\n",
	       (double)R.dedup_writes / (double)R.n_dedup, (unsigned long long)R.dedup_writes,
	       (unsigned long long)R.dedup_commits);
	printf("apps.alarm_dedup.spread: %.0f repeats/s over %ld alarms, %.4f writes per repeat\n",
	       (double)R.n_spread / R.spread_s, R.n_raise,
	       (double)R.spread_writes / (double)R.n_spread);
	printf("apps.alarm_dedup.command: %.0f repeats/s over %ld alarms by `alarms raise` "
	       "in-process, %ld a turn (%.0f per CPU second, %.4f writes per repeat)\n",
	       (double)R.n_dedup / R.command_s, R.hot, R.window, (double)R.n_dedup / R.command_cpu,
	       (double)R.command_writes / (double)R.n_dedup);

	double f50, f99;
	raw_fsync(dir, 1000, &f50, &f99);
	uint64_t *lat = malloc((size_t)R.n_lat * sizeof *lat);
	if (!lat)
		bench_die("malloc", "out of memory");
	static const char *const stage[] = {"posted -> the subscriber", "-> raised",
					    "-> committed"};
	char stages[3][64];
	for (int st = 0; st < 3; st++) {
		for (long i = 0; i < R.n_lat; i++)
			lat[i] = R.at[st + 1][i] - R.at[st][i];
		qsort(lat, (size_t)R.n_lat, sizeof *lat, cmp_u64);
		snprintf(stages[st], sizeof stages[st], "%s %.2f/%.2f", stage[st],
			 pct_ms(lat, R.n_lat, 0.50), pct_ms(lat, R.n_lat, 0.99));
	}
	for (long i = 0; i < R.n_lat; i++)
		lat[i] = R.at[3][i] - R.at[0][i];
	qsort(lat, (size_t)R.n_lat, sizeof *lat, cmp_u64);
	printf("apps.alarm_latency_p99_ms: %.2f ms at %ld events/s (target <= 20); p50 %.2f, "
	       "max %.2f; raw fsync p99 %.2f ms (p50 %.2f)\n",
	       pct_ms(lat, R.n_lat, 0.99), R.rate, pct_ms(lat, R.n_lat, 0.50),
	       (double)lat[R.n_lat - 1] / 1e6, f99, f50);
	qsort(R.commit_ns, (size_t)R.lat_commits, sizeof *R.commit_ns, cmp_u64);
	printf("apps.alarm_latency.stages: p50/p99 ms %s, %s, %s; %llu commits holding alarms, "
	       "p50/p99 %.2f/%.2f ms\n",
	       stages[0], stages[1], stages[2], (unsigned long long)R.lat_commits,
	       pct_ms(R.commit_ns, (long)R.lat_commits, 0.50),
	       pct_ms(R.commit_ns, (long)R.lat_commits, 0.99));
	printf("apps.fsync_p99_ms: %.2f ms (p50 %.2f): fsync of a 4 KiB write in %s\n", f99, f50,
	       dir);
	fflush(stdout);

	free(lat);
	msgpack_unpacked_destroy(&R.up);
	msgpack_sbuffer_destroy(&R.pay);
	free(R.ids);
	for (int s = 0; s < 4; s++)
		free(R.at[s]);
	free(R.commit_ns);
	bench_node_close(&k);
}
