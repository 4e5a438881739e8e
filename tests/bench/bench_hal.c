/*
 * bench_hal — readings per second through the device layer, against the bus
 * it sits on.
 *
 *   hal.readings          the real sim plugin (build/plugins/sim/sim.so,
 *                         loaded by the plugin loader) generates rounds of
 *                         readings of a 1,600-device fleet (100 per class) on
 *                         the kernel thread (`sim step`); each goes through
 *                         dev_post, the class check and bus_publish to one
 *                         subscriber; latest-value upkeep off
 *   hal.readings_latest   the same with the latest value of every resource
 *                         kept (the daemon's setting)
 *   hal.readings_thread   a driver thread posts batches of 256 readings with
 *                         hal_post (the thread-safe queue); the kernel thread
 *                         drains, checks and publishes them (latest kept)
 *   hal.bus_raw           bus_publish of an equal payload on the same topics to
 *                         one subscriber, no HAL: what the bus alone costs
 *   hal.readings_latest.ratio   hal.readings_latest over hal.bus_raw
 *
 * Rates are readings received by the subscriber over wall time, after a
 * warm-up round. sim runs with events off (its events are records of
 * consequence, journaled in LMDB: a different cost) and a fixed seed, so
 * every run sees the same values. BENCH_HAL_PER_CLASS overrides 100,
 * BENCH_HAL_SECONDS the ~1.5 s per phase. Target: >= 500,000 readings/s.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bus.h"
#include "catalog.h"
#include "cmd.h"
#include "config.h"
#include "hal.h"
#include "journal.h"
#include "kernel.h"
#include "linli/error.h"
#include "log.h"
#include "mp.h"
#include "plugin.h"
#include "plugin_lua.h"
#include "plugin_so.h"
#include "store.h"
#include "store_cmds.h"

static struct kernel K;
static uint64_t received;
static double seconds = 1.5;
static int per_class = 100;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, const char *why)
{
	fprintf(stderr, "bench_hal: %s: %s\n", what, why);
	exit(1);
}

static int count(const struct bus_event *ev, void *ud)
{
	(void)ev;
	(void)ud;
	received++;
	return 0;
}

/* ---- `sim step N` through the command registry, as the console would ---- */

static int step_rc;
static void step_done(struct cmd_call *call, int rc)
{
	step_rc = rc;
	if (rc)
		fprintf(stderr, "bench_hal: sim step: %s\n", call->err);
	cmd_call_free(call);
}

static void sim_step(int rounds)
{
	char n[16];
	snprintf(n, sizeof n, "%d", rounds);
	char *argv[] = {"sim", "step", n};
	struct cmd_call *call = cmd_call_new(&K, 3, argv);
	call->finish = step_done;
	cmd_dispatch(K.cmds, call);
	if (step_rc)
		die("sim step", "failed (is the sim plugin loaded?)");
}

/* Run rounds for about `seconds`; return readings/s at the subscriber. */
static double timed_steps(void)
{
	uint64_t r0 = received, t0 = now_ns();
	sim_step(5);
	double per_round = (double)(now_ns() - t0) / 5;
	int rounds = (int)(seconds * 1e9 / per_round);
	if (rounds < 5)
		rounds = 5;
	r0 = received;
	t0 = now_ns();
	sim_step(rounds);
	return (double)(received - r0) / ((double)(now_ns() - t0) / 1e9);
}

/* ---- the thread path: an in-process driver whose thread posts ---- */

static int b_open(linli_ctx *ctx, struct linli_device *dev, char *err, size_t errlen)
{
	(void)ctx;
	(void)dev;
	(void)err;
	(void)errlen;
	return 0;
}

static void b_close(linli_ctx *ctx, struct linli_device *dev)
{
	(void)ctx;
	(void)dev;
}

static const struct linli_driver_ops bops = {
    .size = sizeof(struct linli_driver_ops), .open = b_open, .close = b_close};

#define TDEV 64
static char tids[TDEV][32];
static uint64_t t_target;

static void *poster(void *arg)
{
	(void)arg;
	struct linli_reading r[256];
	char err[256];
	uint64_t sent = 0;
	while (sent < t_target) {
		for (int i = 0; i < 256; i++) {
			static const char *const res[] = {"heart_rate", "spo2", "steps", "battery"};
			r[i] = (struct linli_reading){.size = sizeof r[i],
						      .type = LINLI_T_INT,
						      .device = tids[(sent + (uint64_t)i) % TDEV],
						      .resource = res[i % 4],
						      .i = 60 + (int64_t)(sent + (uint64_t)i) % 40};
		}
		int rc = hal_post(K.hal, (linli_ctx *)&bops, r, 256, err, sizeof err);
		if (rc == LINLI_EBUSY) {
			usleep(50);
			continue;
		}
		if (rc)
			die("hal_post", err);
		sent += 256;
	}
	return NULL;
}

/* ---- phases, run from a kernel timer so that posts and batch ends work ---- */

static double r_plain, r_latest, r_raw, r_thread;
static uint64_t t_start, t_want, check_timer;
static pthread_t th;

static double bench_raw_bus(void);

/* Every ms while the poster runs: done when the subscriber has them all. */
static void check_thread(struct kernel *k, void *arg)
{
	(void)arg;
	if (received < t_want)
		return;
	r_thread = (double)t_target / ((double)(now_ns() - t_start) / 1e9);
	pthread_join(th, NULL);
	kernel_timer_cancel(k, check_timer);
	r_raw = bench_raw_bus();
	kernel_stop(k);
}

/* The thread path: 64 wearables of an in-process driver, one poster thread. */
static void start_thread_phase(struct kernel *k)
{
	char err[512];
	struct hal_driver *bd;
	if (hal_driver_add(k->hal, "bench", &bops, (linli_ctx *)&bops, "bench", &bd, err,
			   sizeof err))
		die("driver", err);
	for (int i = 0; i < TDEV; i++) {
		snprintf(tids[i], sizeof tids[i], "bw-%03d", i);
		struct hal_dev_spec s = {
		    .id = tids[i], .class_name = "wearable", .driver = "bench", .address = "x"};
		if (hal_add(k->hal, &s, NULL, NULL, err, sizeof err))
			die("hal_add", err);
	}
	t_target = (uint64_t)(2000000 * seconds / 1.5) / 256 * 256;
	t_want = received + t_target;
	t_start = now_ns();
	if (pthread_create(&th, NULL, poster, NULL))
		die("thread", "cannot start");
	check_timer = kernel_timer_add(k, 1, 1, check_thread, NULL);
}

static void run_sim_phases(struct kernel *k, void *arg)
{
	(void)arg;
	struct hal_totals t;
	hal_get_totals(k->hal, &t);
	if (t.devices != (uint64_t)per_class * (uint64_t)k->catalog->n_classes ||
	    t.open != t.devices)
		die("setup", "the sim fleet is not registered and open");
	sim_step(2); /* warm-up */
	hal_keep_latest(k->hal, false);
	r_plain = timed_steps();
	hal_keep_latest(k->hal, true);
	r_latest = timed_steps();
	hal_get_totals(k->hal, &t);
	if (t.refused)
		die("sim", "readings were refused");
	start_thread_phase(k);
}

static double bench_raw_bus(void)
{
	/* The same shape of payload and topics, straight into bus_publish. */
	char topics[TDEV][96];
	for (int i = 0; i < TDEV; i++)
		snprintf(topics[i], sizeof topics[i],
			 "dev/electric_meter/sim-electric_meter-%03d/power", i + 1);
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	char err[256];
	const uint64_t n = 2000000;
	uint64_t r0 = received, t0 = 0;
	for (uint64_t i = 0; i < n + 100000; i++) {
		if (i == 100000) {
			t0 = now_ns();
			r0 = received;
		}
		sb.size = 0; /* packed per message, as the HAL does */
		msgpack_pack_map(&pk, 2);
		mp_kv_double(&pk, "value", 1.25 + (double)(i % 7));
		mp_kv_int(&pk, "time", 1767225600000);
		struct bus_msg m = {topics[i % TDEV], "sim", "hefei/baohe/binhu/yuelan", sb.data,
				    sb.size};
		if (bus_publish(K.bus, &m, NULL, err, sizeof err))
			die("publish", err);
	}
	double rate = (double)(received - r0) / ((double)(now_ns() - t0) / 1e9);
	msgpack_sbuffer_destroy(&sb);
	return rate;
}

int main(void)
{
	if (getenv("BENCH_HAL_PER_CLASS"))
		per_class = atoi(getenv("BENCH_HAL_PER_CLASS"));
	if (getenv("BENCH_HAL_SECONDS"))
		seconds = atof(getenv("BENCH_HAL_SECONDS"));
	const char *root = getenv("BENCH_ROOT") ? getenv("BENCH_ROOT") : ".";
	const char *build = getenv("BENCH_BUILD") ? getenv("BENCH_BUILD") : "build-bench";
	char dir[] = "/tmp/linli-bench-hal-XXXXXX";
	if (!mkdtemp(dir))
		die("mkdtemp", "failed");
	char text[2048], err[1024];
	snprintf(text, sizeof text,
		 "node = { path = \"hefei/baohe/binhu/yuelan\"; level = \"community\"; };\n"
		 "data_dir = \"%s\";\nlog_level = \"error\";\ncatalog_dir = \"%s/catalog\";\n"
		 "plugin_dirs = [ \"%s/plugins/sim\" ];\n"
		 "control = { listen = [ \"ipc://%s/ctl.sock\" ]; };\n"
		 "store = { sync = false; map_size_mb = 64; };\n"
		 "bus = { telemetry_queue = 1048576; };\n"
		 "plugins = { sim = { per_class = %d; seed = 42; auto = false; thread = false; "
		 "events = false; }; };\n",
		 dir, root, build, dir, per_class);
	if (kernel_init(&K) || cfg_load_string(&K.cfg, text, "bench", NULL, err, sizeof err))
		die("config", err);
	log_set_level(LOG_ERROR);
	if (catalog_load(K.cfg.catalog_dir, &K.catalog, err, sizeof err))
		die("catalog", err);
	struct store_opts so = {
	    .dir = dir, .map_size = 64u << 20, .wake = store_cmds_wake, .wake_ud = &K};
	if (store_open(&so, K.catalog, &K.store, err, sizeof err))
		die("store", err);
	/* The kinds of plugin the registry loads: shared objects and Lua scripts. */
	plug_kind_add(plugin_so_kind());
	plug_kind_add(plugin_lua_kind());
	K.cmds = cmd_registry_new();
	if (store_cmds_register(&K) || bus_open(&K, &K.bus, err, sizeof err) ||
	    journal_attach(&K) || hal_open(&K, &K.hal, err, sizeof err) ||
	    plug_open(&K, err, sizeof err))
		die("open", err);
	if (plug_load_all(&K) != 1)
		die("plugins", "sim did not start (build it: tools/bench builds build-bench)");
	uint64_t sid;
	if (bus_subscribe(K.bus, "dev/+/+/+", "", count, NULL, NULL, "bench", &sid, err,
			  sizeof err))
		die("subscribe", err);

	/* Discovery runs in the first batch; the phases after it, inside the loop. */
	kernel_timer_add(&K, 300, 0, run_sim_phases, NULL);
	kernel_run(&K);

	printf("hal.readings: %.0f readings/s\n", r_plain);
	printf("hal.readings_latest: %.0f readings/s\n", r_latest);
	printf("hal.readings_thread: %.0f readings/s\n", r_thread);
	printf("hal.bus_raw: %.0f readings/s\n", r_raw);
	printf("hal.readings_latest.ratio: %.2f\n", r_latest / r_raw);
	printf("hal.fleet: %d devices\n", per_class * K.catalog->n_classes);

	plug_close(&K);
	hal_close(K.hal);
	bus_close(K.bus);
	store_close(K.store);
	cmd_registry_free(K.cmds);
	catalog_free(K.catalog);
	kernel_destroy(&K);
	snprintf(text, sizeof text, "rm -rf %s", dir);
	if (system(text) != 0)
		fprintf(stderr, "bench_hal: could not remove %s\n", dir);
	return 0;
}
