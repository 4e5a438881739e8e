/*
 * Unit tests of host/hal.c: class validation of every kind of bad reading,
 * availability transitions on a fake clock, commands (argument checks, the
 * driver's answer, the timeout), open failures, ops-table checks, the queue
 * from a driver thread, and the registry in a real LMDB store.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
#include "record.h"
#include "store.h"

#define NODE "hefei/baohe/binhu/yuelan"

struct fx {
	struct kernel k;
	char dir[64];
	struct hal_driver *drv;
	int readings_seen, events_seen;
	char last_topic[256];
	msgpack_sbuffer last;
	int opens, closes;
	/* SDK 1.1 ops: the secrets told and the removals, in order with closes */
	int secrets, removals, closes_at_removal;
	char last_secret[80], last_secret_dev[64];
	/* command answers */
	int answers;
	int ticks;
	int last_rc;
	char last_err[256];
	char last_result[256];
};

static struct fx *F; /* the driver's ops get it back through ctx */
static uint64_t fake_now = 1000000;
static uint64_t fake_clock(void)
{
	return fake_now;
}

static linli_ctx *ctx1(void)
{
	return (linli_ctx *)&F->k;
}
static linli_ctx *ctx2(void)
{
	return (linli_ctx *)&F->dir;
}

/* ---- the test driver ---- */

static int t_open(linli_ctx *ctx, struct linli_device *dev, char *err, size_t errlen)
{
	(void)ctx;
	if (strcmp(dev->address, "fail") == 0) {
		snprintf(err, errlen, "no such wire");
		return LINLI_EIO;
	}
	F->opens++;
	return 0;
}

static void t_close(linli_ctx *ctx, struct linli_device *dev)
{
	(void)ctx;
	(void)dev;
	F->closes++;
}

static int t_secret(linli_ctx *ctx, struct linli_device *dev, const char *secret, char *err,
		    size_t errlen)
{
	(void)ctx;
	if (strcmp(dev->address, "nosecret") == 0) {
		snprintf(err, errlen, "the broker is away");
		return LINLI_EIO;
	}
	F->secrets++;
	snprintf(F->last_secret, sizeof F->last_secret, "%s", secret);
	snprintf(F->last_secret_dev, sizeof F->last_secret_dev, "%s", dev->id);
	return 0;
}

static void t_removed(linli_ctx *ctx, struct linli_device *dev)
{
	(void)ctx;
	(void)dev;
	F->removals++;
	F->closes_at_removal = F->closes;
}

static int t_command(linli_ctx *ctx, struct linli_device *dev, uint64_t req, const char *command,
		     const linli_record *args)
{
	if (strcmp(dev->address, "slow") == 0)
		return 0;
	if (strcmp(dev->address, "refuse") == 0)
		return LINLI_EBUSY;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 2);
	mp_kv_str(&pk, "did", command);
	mp_kv_int(&pk, "n", (int64_t)record_count(args));
	char err[128];
	int rc = hal_command_done(F->k.hal, ctx, req, 0, sb.data, sb.size, NULL, err, sizeof err);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

static int t_write(linli_ctx *ctx, struct linli_device *dev, uint64_t req,
		   const linli_record *values)
{
	(void)dev;
	(void)values;
	char err[128];
	return hal_command_done(F->k.hal, ctx, req, LINLI_EIO, NULL, 0, "read-only today", err,
				sizeof err);
}

static int t_read(linli_ctx *ctx, struct linli_device *dev, const char *resource)
{
	(void)ctx;
	(void)dev;
	(void)resource;
	return 0; /* a device that takes its time: nothing posted */
}

static const struct linli_driver_ops ops = {.size = sizeof(struct linli_driver_ops),
					    .open = t_open,
					    .read = t_read,
					    .close = t_close,
					    .write = t_write,
					    .command = t_command,
					    .secret = t_secret,
					    .removed = t_removed};

/* ---- fixture ---- */

static int on_reading(const struct bus_event *ev, void *ud)
{
	struct fx *x = ud;
	x->readings_seen++;
	snprintf(x->last_topic, sizeof x->last_topic, "%s", ev->topic);
	x->last.size = 0;
	msgpack_sbuffer_write(&x->last, ev->payload, ev->payload_len);
	return 0;
}

static int on_event(const struct bus_event *ev, void *ud)
{
	struct fx *x = ud;
	x->events_seen++;
	snprintf(x->last_topic, sizeof x->last_topic, "%s", ev->topic);
	return 0;
}

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof *x);
	F = x;
	fake_now = 1000000;
	msgpack_sbuffer_init(&x->last);
	snprintf(x->dir, sizeof x->dir, "/tmp/linli-hal-XXXXXX");
	assert_non_null(mkdtemp(x->dir));
	struct kernel *k = &x->k;
	assert_int_equal(kernel_init(k), 0);
	char text[1024], err[1024];
	snprintf(text, sizeof text,
		 "node = { path = \"" NODE "\"; level = \"community\"; };\n"
		 "data_dir = \"%s\";\nlog_level = \"warn\";\ncatalog_dir = \"%s/catalog\";\n"
		 "bus = { telemetry_queue = 1024; };\n",
		 x->dir, SRCDIR);
	if (cfg_load_string(&k->cfg, text, "t", NULL, err, sizeof err))
		fail_msg("config: %s", err);
	log_set_level(LOG_WARN);
	if (catalog_load(k->cfg.catalog_dir, &k->catalog, err, sizeof err))
		fail_msg("catalog: %s", err);
	struct store_opts so = {.dir = x->dir, .map_size = 8u << 20};
	if (store_open(&so, k->catalog, &k->store, err, sizeof err))
		fail_msg("store: %s", err);
	k->cmds = cmd_registry_new();
	if (bus_open(k, &k->bus, err, sizeof err))
		fail_msg("bus: %s", err);
	assert_int_equal(journal_attach(k), 0);
	if (hal_open(k, &k->hal, err, sizeof err))
		fail_msg("hal: %s", err);
	hal_set_clock(k->hal, fake_clock);
	uint64_t id;
	assert_int_equal(
	    bus_subscribe(k->bus, "dev/+/+/+", "", on_reading, x, x, "t", &id, err, sizeof err), 0);
	assert_int_equal(
	    bus_subscribe(k->bus, "dev/+/+/event/#", "", on_event, x, x, "t", &id, err, sizeof err),
	    0);
	assert_int_equal(
	    hal_driver_add(k->hal, "t", &ops, ctx1(), "tplug", &x->drv, err, sizeof err), 0);
	hal_driver_attach(k->hal, x->drv);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fx *x = *state;
	struct kernel *k = &x->k;
	hal_close(k->hal);
	journal_detach(k);
	bus_close(k->bus);
	store_close(k->store);
	cmd_registry_free(k->cmds);
	catalog_free(k->catalog);
	kernel_destroy(k);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", x->dir);
	assert_int_equal(system(cmd), 0);
	msgpack_sbuffer_destroy(&x->last);
	free(x);
	return 0;
}

static void add(struct fx *x, const char *id, const char *cls, const char *addr, int64_t hb)
{
	char err[512];
	struct hal_dev_spec s = {
	    .id = id, .class_name = cls, .driver = "t", .address = addr, .heartbeat_s = hb};
	if (hal_add(x->k.hal, &s, NULL, NULL, err, sizeof err))
		fail_msg("hal_add %s: %s", id, err);
	assert_int_equal(store_batch_end(x->k.store), 0);
}

static struct hal_val vint(int64_t i)
{
	return (struct hal_val){.type = LINLI_T_INT, .i = i};
}
static struct hal_val vflt(double f)
{
	return (struct hal_val){.type = LINLI_T_FLOAT, .f = f};
}
static struct hal_val vbool(bool b)
{
	return (struct hal_val){.type = LINLI_T_BOOL, .b = b};
}
static struct hal_val vstr(const char *s)
{
	return (struct hal_val){.type = LINLI_T_STR, .s = s, .len = strlen(s)};
}

/* The value field of the last published reading. */
static const msgpack_object *last_value(struct fx *x, msgpack_unpacked *up)
{
	msgpack_unpacked_init(up);
	assert_int_equal(msgpack_unpack_next(up, x->last.data, x->last.size, NULL),
			 MSGPACK_UNPACK_SUCCESS);
	const msgpack_object *v = mp_get(&up->data, "value");
	assert_non_null(v);
	assert_non_null(mp_get(&up->data, "time"));
	return v;
}

/* Capture stderr (the log) into a file until capture_end, which returns its text (free it). */
static void capture_start(int *saved, char *path)
{
	strcpy(path, "/tmp/linli-hal-log-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	fflush(stderr);
	*saved = dup(2);
	dup2(fd, 2);
	close(fd);
}

static char *capture_end(int saved, const char *path)
{
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 1 << 16);
	size_t n = fread(buf, 1, (1 << 16) - 1, f);
	buf[n] = '\0';
	fclose(f);
	unlink(path);
	return buf;
}

static int occurrences(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

/* ---- tests ---- */

static void test_good_reading_published_and_kept(void **state)
{
	struct fx *x = *state;
	struct hal *h = x->k.hal;
	add(x, "sm-1", "smoke", "ok", 0);
	assert_int_equal(x->opens, 1);
	struct hal_val v = vint(80);
	assert_int_equal(hal_reading(h, ctx1(), "sm-1", "battery", &v, 0), 0);
	assert_int_equal(x->readings_seen, 1);
	assert_string_equal(x->last_topic, "dev/smoke/sm-1/battery");
	msgpack_unpacked up;
	const msgpack_object *val = last_value(x, &up);
	assert_int_equal(val->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
	assert_int_equal(val->via.u64, 80);
	msgpack_unpacked_destroy(&up);
	/* An integer for a float resource is published as a float. */
	v = vint(21);
	assert_int_equal(hal_reading(h, ctx1(), "sm-1", "temperature", &v, 0), 0);
	val = last_value(x, &up);
	assert_int_equal(val->type, MSGPACK_OBJECT_FLOAT64);
	assert_true(val->via.f64 == 21.0);
	msgpack_unpacked_destroy(&up);
	/* Latest values, and the upkeep switched off. */
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	struct hal_dev *d = hal_find(h, "sm-1");
	assert_int_equal(hal_pack_latest(d, "battery", &pk), 0);
	assert_int_equal(hal_pack_latest(d, "sensitivity", &pk), LINLI_ENOENT);
	hal_keep_latest(h, false);
	v = vint(70);
	assert_int_equal(hal_reading(h, ctx1(), "sm-1", "battery", &v, 0), 0);
	sb.size = 0;
	assert_int_equal(hal_pack_latest(d, "battery", &pk), 0);
	msgpack_unpacked_init(&up);
	assert_int_equal(msgpack_unpack_next(&up, sb.data, sb.size, NULL), MSGPACK_UNPACK_SUCCESS);
	assert_int_equal(mp_get(&up.data, "value")->via.u64, 80);
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&sb);
	assert_int_equal(hal_dev_readings(d), 3);
	assert_int_equal(hal_dev_state(d), HAL_ONLINE);
}

static void test_each_bad_reading_refused_counted_logged_once(void **state)
{
	struct fx *x = *state;
	struct hal *h = x->k.hal;
	add(x, "sm-1", "smoke", "ok", 0);
	char long_str[HAL_STR_MAX + 2];
	memset(long_str, 'a', sizeof long_str - 1);
	long_str[sizeof long_str - 1] = '\0';
	const char bad_utf8[] = {'h', (char)0xff, 'i', 0};
	struct {
		const char *res;
		struct hal_val v;
		int rc;
		enum hal_refusal kind;
	} bad[] = {
	    {"battery", vstr("full"), LINLI_ESCHEMA, HAL_REF_TYPE},
	    {"battery", vflt(50.0), LINLI_ESCHEMA, HAL_REF_TYPE},
	    {"battery", vbool(true), LINLI_ESCHEMA, HAL_REF_TYPE},
	    {"sensitivity", vint(2), LINLI_ESCHEMA, HAL_REF_TYPE},
	    {"sensitivity", vstr(bad_utf8), LINLI_ESCHEMA, HAL_REF_TYPE},
	    {"smoke_density", vbool(false), LINLI_ESCHEMA, HAL_REF_TYPE},
	    {"smoke_density", (struct hal_val){.type = LINLI_T_NIL}, LINLI_ESCHEMA, HAL_REF_TYPE},
	    {"battery", vint(101), LINLI_ESCHEMA, HAL_REF_RANGE},
	    {"battery", vint(-1), LINLI_ESCHEMA, HAL_REF_RANGE},
	    {"smoke_density", vflt(10.01), LINLI_ESCHEMA, HAL_REF_RANGE},
	    {"temperature", vflt(-40.5), LINLI_ESCHEMA, HAL_REF_RANGE},
	    {"smoke_density", vflt(NAN), LINLI_ESCHEMA, HAL_REF_RANGE},
	    {"smoke_density", vflt(INFINITY), LINLI_ESCHEMA, HAL_REF_RANGE},
	    {"sensitivity", vstr("extreme"), LINLI_ESCHEMA, HAL_REF_RANGE},
	    {"sensitivity", vstr(long_str), LINLI_ESCHEMA, HAL_REF_RANGE},
	    {"smell", vint(1), LINLI_ENOENT, HAL_REF_UNKNOWN},
	    {"", vint(1), LINLI_ENOENT, HAL_REF_UNKNOWN},
	};
	size_t n = sizeof bad / sizeof bad[0];
	uint64_t want[HAL_REF_KINDS] = {0};
	int saved;
	char path[64];
	capture_start(&saved, path);
	for (int round = 0; round < 3; round++)
		for (size_t i = 0; i < n; i++) {
			int rc = hal_reading(h, ctx1(), "sm-1", bad[i].res, &bad[i].v, 0);
			if (rc != bad[i].rc)
				fail_msg("case %zu (%s): rc %d, want %d", i, bad[i].res, rc,
					 bad[i].rc);
			want[bad[i].kind]++;
		}
	char *log = capture_end(saved, path);
	struct hal_dev *d = hal_find(h, "sm-1");
	for (int k = 0; k < HAL_REF_KINDS; k++)
		assert_int_equal(hal_dev_refused(d, (enum hal_refusal)k), want[k]);
	assert_int_equal(hal_dev_readings(d), 0);
	assert_int_equal(x->readings_seen, 0); /* never passed on */
	/* Logged once per kind, however often it happens. */
	assert_int_equal(occurrences(log, "device sm-1 (smoke): reading of"), 3);
	assert_non_null(strstr(log, "'full' is a string, not an integer"));
	assert_non_null(strstr(log, "class smoke has no such resource 'smell'"));
	free(log);
	/* Another driver's device, and no device at all. */
	struct hal_driver *d2;
	char err[256];
	struct linli_driver_ops o2 = ops;
	assert_int_equal(hal_driver_add(h, "t2", &o2, ctx2(), "other", &d2, err, sizeof err), 0);
	struct hal_val v = vint(50);
	assert_int_equal(hal_reading(h, ctx2(), "sm-1", "battery", &v, 0), LINLI_EPERM);
	assert_int_equal(hal_reading(h, ctx1(), "nosuch", "battery", &v, 0), LINLI_ENOENT);
	assert_int_equal(hal_dev_readings(d), 0);
	/* An event the class does not have. */
	assert_int_equal(hal_event(h, ctx1(), "sm-1", "party", NULL, 0, 0, err, sizeof err),
			 LINLI_ESCHEMA);
	assert_int_equal(hal_dev_refused(d, HAL_REF_EVENT), 1);
	assert_non_null(strstr(err, "class smoke has no such event"));
}

static void test_event_is_journaled(void **state)
{
	struct fx *x = *state;
	struct hal *h = x->k.hal;
	add(x, "door-1", "door", "ok", 0);
	uint64_t before = store_journal_last(x->k.store);
	char err[256];
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 1);
	mp_kv_str(&pk, "holder", "R00001");
	assert_int_equal(
	    hal_event(h, ctx1(), "door-1", "forced", sb.data, sb.size, 0, err, sizeof err), 0);
	msgpack_sbuffer_destroy(&sb);
	assert_int_equal(store_batch_end(x->k.store), 0);
	assert_true(store_journal_last(x->k.store) > before);
	assert_string_equal(x->last_topic, "dev/door/door-1/event/forced");
}

static void test_availability_transitions(void **state)
{
	struct fx *x = *state;
	struct hal *h = x->k.hal;
	add(x, "sm-1", "smoke", "ok", 2);
	struct hal_dev *d = hal_find(h, "sm-1");
	assert_int_equal(hal_dev_state(d), HAL_UNAVAILABLE); /* never heard from */
	struct hal_val v = vint(90);
	int saved;
	char path[64];
	log_set_level(LOG_INFO);
	capture_start(&saved, path);
	assert_int_equal(hal_reading(h, ctx1(), "sm-1", "battery", &v, 0), 0);
	assert_int_equal(hal_dev_state(d), HAL_ONLINE);
	assert_int_equal(x->events_seen, 1); /* .../event/online */
	fake_now += 1900;
	hal_sweep(h);
	assert_int_equal(hal_dev_state(d), HAL_ONLINE);
	fake_now += 200; /* 2.1 s without a word, heartbeat 2 s */
	hal_sweep(h);
	assert_int_equal(hal_dev_state(d), HAL_UNAVAILABLE);
	assert_string_equal(x->last_topic, "dev/smoke/sm-1/event/unavailable");
	assert_int_equal(x->events_seen, 2);
	fake_now += 5000;
	hal_sweep(h);
	hal_sweep(h);
	assert_int_equal(x->events_seen, 2); /* once */
	assert_int_equal(hal_reading(h, ctx1(), "sm-1", "battery", &v, 0), 0);
	assert_int_equal(hal_dev_state(d), HAL_ONLINE);
	assert_string_equal(x->last_topic, "dev/smoke/sm-1/battery");
	assert_int_equal(x->events_seen, 3);
	hal_reading(h, ctx1(), "sm-1", "battery", &v, 0);
	assert_int_equal(x->events_seen, 3);
	char *log = capture_end(saved, path);
	log_set_level(LOG_WARN);
	assert_int_equal(occurrences(log, "device sm-1 (smoke) unavailable: silent for 2 s "
					  "(heartbeat 2 s)"),
			 1);
	assert_int_equal(occurrences(log, "device sm-1 (smoke) online: heard from it again"), 1);
	free(log);
	/* The state is in the store. */
	assert_int_equal(store_batch_end(x->k.store), 0);
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	char err[256];
	assert_int_equal(store_get(x->k.store, "devices", NULL, "sm-1", &sb, NULL, err, sizeof err),
			 0);
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	assert_int_equal(msgpack_unpack_next(&up, sb.data, sb.size, NULL), MSGPACK_UNPACK_SUCCESS);
	assert_true(mp_eq(mp_get(&up.data, "state"), "online"));
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&sb);
}

/* dev_available: the driver's word moves the state at once, once per change. */
static void test_driver_says_availability(void **state)
{
	struct fx *x = *state;
	struct hal *h = x->k.hal;
	add(x, "sm-1", "smoke", "ok", 300);
	struct hal_dev *d = hal_find(h, "sm-1");
	char err[256];
	int saved;
	char path[64];
	log_set_level(LOG_INFO);
	capture_start(&saved, path);
	assert_int_equal(hal_avail(h, ctx1(), "sm-1", true, "status online", err, sizeof err), 0);
	assert_int_equal(hal_dev_state(d), HAL_ONLINE);
	assert_string_equal(x->last_topic, "dev/smoke/sm-1/event/online");
	assert_int_equal(x->events_seen, 1);
	assert_int_equal(hal_avail(h, ctx1(), "sm-1", true, NULL, err, sizeof err), 0);
	assert_int_equal(x->events_seen, 1); /* no change, nothing */
	assert_int_equal(hal_avail(h, ctx1(), "sm-1", false, "last will", err, sizeof err), 0);
	assert_int_equal(hal_dev_state(d), HAL_UNAVAILABLE); /* long before the heartbeat */
	assert_string_equal(x->last_topic, "dev/smoke/sm-1/event/unavailable");
	assert_int_equal(x->events_seen, 2);
	/* Another driver's device, no device, no id: refused, nothing changes. */
	assert_int_equal(hal_avail(h, ctx2(), "sm-1", true, NULL, err, sizeof err), LINLI_EPERM);
	assert_int_equal(hal_avail(h, ctx1(), "nosuch", true, NULL, err, sizeof err), LINLI_ENOENT);
	assert_int_equal(hal_avail(h, ctx1(), NULL, true, NULL, err, sizeof err), LINLI_EINVAL);
	assert_int_equal(hal_dev_state(d), HAL_UNAVAILABLE);
	assert_int_equal(x->events_seen, 2);
	/* The device's next word brings it back, as after a heartbeat. */
	struct hal_val v = vint(90);
	assert_int_equal(hal_reading(h, ctx1(), "sm-1", "battery", &v, 0), 0);
	assert_int_equal(hal_dev_state(d), HAL_ONLINE);
	char *log = capture_end(saved, path);
	log_set_level(LOG_WARN);
	assert_int_equal(
	    occurrences(log, "device sm-1 (smoke) unavailable: its driver says so: last will"), 1);
	free(log);
}

static void answered(void *arg, int rc, const void *result, size_t len, const char *err)
{
	struct fx *x = arg;
	x->answers++;
	x->last_rc = rc;
	snprintf(x->last_err, sizeof x->last_err, "%s", err ? err : "");
	x->last_result[0] = '\0';
	if (len) {
		linli_record *r = NULL;
		char e[128];
		assert_int_equal(record_from_bytes(result, len, &r, e, sizeof e), 0);
		record_to_json(r, x->last_result, sizeof x->last_result, NULL);
		record_free(r);
	}
}

static void stop_loop(struct kernel *k, void *arg)
{
	(void)arg;
	kernel_stop(k);
}

static int command(struct fx *x, const char *dev, const char *cmd, const char *json_args,
		   uint32_t tmo, char *err, size_t errlen)
{
	linli_record *args = NULL;
	if (json_args)
		assert_int_equal(record_from_json(json_args, strlen(json_args), &args, NULL, 0), 0);
	struct hal_cmd_req r = {.device = dev,
				.command = cmd,
				.args = args,
				.timeout_ms = tmo,
				.who = "test",
				.done = answered,
				.arg = x};
	uint64_t req;
	int rc = hal_command(x->k.hal, &r, &req, err, errlen);
	record_free(args);
	return rc;
}

static void test_command_checks_answer_and_timeout(void **state)
{
	struct fx *x = *state;
	hal_set_clock(x->k.hal, NULL); /* the loop's timers use the real clock */
	add(x, "door-1", "door", "ok", 0);
	add(x, "door-slow", "door", "slow", 0);
	add(x, "door-off", "door", "fail", 0);
	add(x, "door-refuse", "door", "refuse", 0);
	char err[512];
	struct {
		const char *dev, *cmd, *args;
		int rc;
		const char *msg;
	} bad[] = {
	    {"door-1", "open", NULL, LINLI_ESCHEMA, "argument 'seconds' (integer) is missing"},
	    {"door-1", "open", "{\"seconds\": 61}", LINLI_ESCHEMA, "61 is outside 1..60 s"},
	    {"door-1", "open", "{\"seconds\": \"5\"}", LINLI_ESCHEMA, "is a string, not an"},
	    {"door-1", "open", "{\"seconds\": 5, \"x\": 1}", LINLI_ESCHEMA, "unknown argument 'x'"},
	    {"door-1", "set_mode", "{\"mode\": \"party\"}", LINLI_ESCHEMA, "is not one of normal"},
	    {"door-1", "fly", NULL, LINLI_ENOENT, "class door has no command 'fly'"},
	    {"door-1", NULL, "{\"state\": \"open\"}", LINLI_ESCHEMA, "no writable resource"},
	    {"door-1", NULL, "{}", LINLI_ESCHEMA, "write: no value given"},
	    {"nosuch", "lock", NULL, LINLI_ENOENT, "no device 'nosuch'"},
	    {"door-off", "lock", NULL, LINLI_ESTATE, "door-off is not open: no such wire"},
	    {"door-refuse", "lock", NULL, LINLI_EBUSY, "driver t refused door-refuse lock"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = '\0';
		int rc = command(x, bad[i].dev, bad[i].cmd, bad[i].args, 0, err, sizeof err);
		if (rc != bad[i].rc || !strstr(err, bad[i].msg))
			fail_msg("case %zu: rc %d err '%s'; want %d '%s'", i, rc, err, bad[i].rc,
				 bad[i].msg);
	}
	assert_int_equal(x->answers, 0); /* a refused command is never answered */
	/* Answered after the op returns (through the queue), and a timeout. */
	assert_int_equal(command(x, "door-1", "open", "{\"seconds\": 5}", 0, err, sizeof err), 0);
	assert_int_equal(x->answers, 0);
	assert_int_equal(command(x, "door-slow", "lock", NULL, 80, err, sizeof err), 0);
	kernel_timer_add(&x->k, 400, 0, stop_loop, NULL);
	kernel_run(&x->k);
	assert_int_equal(x->answers, 2);
	assert_int_equal(x->last_rc, LINLI_ETIMEDOUT);
	assert_non_null(strstr(x->last_err, "device door-slow did not answer 'lock' within 80 ms"));
	struct hal_totals t;
	hal_get_totals(x->k.hal, &t);
	assert_int_equal(t.timeouts, 1);
	assert_int_equal(t.commands, 2);
}

static void test_command_answer_result(void **state)
{
	struct fx *x = *state;
	hal_set_clock(x->k.hal, NULL);
	add(x, "door-1", "door", "ok", 0);
	char err[512];
	assert_int_equal(command(x, "door-1", "open", "{\"seconds\": 5}", 0, err, sizeof err), 0);
	kernel_timer_add(&x->k, 100, 0, stop_loop, NULL);
	kernel_run(&x->k);
	assert_int_equal(x->answers, 1);
	assert_int_equal(x->last_rc, 0);
	assert_string_equal(x->last_result, "{\"did\":\"open\",\"n\":1}");
}

static void test_write_error_from_driver(void **state)
{
	struct fx *x = *state;
	hal_set_clock(x->k.hal, NULL);
	add(x, "door-1", "door", "ok", 0);
	char err[512];
	assert_int_equal(command(x, "door-1", NULL, "{\"open_time\": 9}", 0, err, sizeof err), 0);
	kernel_timer_add(&x->k, 100, 0, stop_loop, NULL);
	kernel_run(&x->k);
	assert_int_equal(x->answers, 1);
	assert_int_equal(x->last_rc, LINLI_EIO);
	assert_string_equal(x->last_err, "read-only today");
}

static void test_open_failure(void **state)
{
	struct fx *x = *state;
	int saved;
	char path[64];
	capture_start(&saved, path);
	add(x, "door-off", "door", "fail", 0);
	char *log = capture_end(saved, path);
	struct hal_dev *d = hal_find(x->k.hal, "door-off");
	assert_false(hal_dev_open(d));
	assert_string_equal(hal_dev_open_error(d), "no such wire");
	assert_int_equal(hal_dev_state(d), HAL_UNAVAILABLE);
	assert_non_null(strstr(log, "driver t cannot open 'fail': no such wire; retrying"));
	free(log);
	assert_int_equal(x->opens, 0);
}

static void test_ops_table_checks(void **state)
{
	struct fx *x = *state;
	struct hal *h = x->k.hal;
	char err[512];
	struct linli_driver_ops o = ops;
	o.size = sizeof o + 8;
	assert_int_equal(hal_driver_add(h, "big", &o, ctx2(), "p", NULL, err, sizeof err),
			 LINLI_EVERSION);
	char want[200];
	snprintf(want, sizeof want,
		 "driver big: ops table of %zu bytes is not the size of an SDK " LINLI_SDK_VERSION
		 " ops table (%zu bytes)",
		 sizeof o + 8, sizeof o);
	assert_non_null(strstr(err, want));
	o.size = 4;
	assert_int_equal(hal_driver_add(h, "small", &o, ctx2(), "p", NULL, err, sizeof err),
			 LINLI_EVERSION);
	o = ops;
	o.close = NULL;
	assert_int_equal(hal_driver_add(h, "noclose", &o, ctx2(), "p", NULL, err, sizeof err),
			 LINLI_EINVAL);
	assert_non_null(strstr(err, "lacks close"));
	assert_int_equal(hal_driver_add(h, "t", &ops, ctx2(), "p", NULL, err, sizeof err),
			 LINLI_EEXIST);
	assert_int_equal(hal_driver_add(h, "Bad-Name", &ops, ctx2(), "p", NULL, err, sizeof err),
			 LINLI_EINVAL);
	assert_null(hal_driver_find(h, "big"));
	/* A driver built against SDK 1.0 (no secret, removed) is taken, its new ops NULL. */
	o = ops;
	o.size = LINLI_DRIVER_OPS_SIZE_1_0;
	assert_int_equal(hal_driver_add(h, "old", &o, ctx2(), "p", NULL, err, sizeof err), 0);
	struct hal_driver *od = hal_driver_find(h, "old");
	assert_non_null(od);
	struct hal_dev_spec s = {
	    .id = "old-1", .class_name = "door", .driver = "old", .address = "ok"};
	assert_int_equal(hal_add(h, &s, NULL, NULL, err, sizeof err), 0);
	assert_int_equal(store_batch_end(x->k.store), 0);
	assert_int_equal(hal_tell_secret(h, "old-1", "abc", err, sizeof err), 0);
	assert_int_equal(hal_remove(h, "old-1", NULL, NULL, err, sizeof err), 0);
	assert_int_equal(x->secrets, 0);
	assert_int_equal(x->removals, 0);
}

/* SDK 1.1 ops: a driver is told a device's new secret and its removal (before close). */
static void test_driver_told_secret_and_removal(void **state)
{
	struct fx *x = *state;
	struct hal *h = x->k.hal;
	char err[512] = "";
	add(x, "door-1", "door", "ok", 0);
	assert_int_equal(hal_tell_secret(h, "door-1", "s3cret-1", err, sizeof err), 0);
	assert_int_equal(x->secrets, 1);
	assert_string_equal(x->last_secret, "s3cret-1");
	assert_string_equal(x->last_secret_dev, "door-1");
	/* A driver's refusal comes back with its reason, and is logged. */
	add(x, "door-2", "door", "nosecret", 0);
	int saved;
	char path[64];
	capture_start(&saved, path);
	assert_int_equal(hal_tell_secret(h, "door-2", "s3cret-2", err, sizeof err), LINLI_EIO);
	char *log = capture_end(saved, path);
	assert_non_null(strstr(err, "driver t could not take the new secret: the broker is away"));
	assert_non_null(
	    strstr(log, "device door-2 (door): driver t could not take its new secret"));
	assert_null(strstr(log, "s3cret-2"));
	free(log);
	/* A device that is not open is not told; an unknown one neither. */
	add(x, "door-3", "door", "fail", 0);
	assert_int_equal(hal_tell_secret(h, "door-3", "s3cret-3", err, sizeof err), 0);
	assert_int_equal(hal_tell_secret(h, "nobody", "s3cret-4", err, sizeof err), 0);
	assert_int_equal(x->secrets, 1);
	/* Removal: removed, then close; also for a device that is not open. */
	int closes = x->closes;
	assert_int_equal(hal_remove(h, "door-1", NULL, NULL, err, sizeof err), 0);
	assert_int_equal(x->removals, 1);
	assert_int_equal(x->closes_at_removal, closes);
	assert_int_equal(x->closes, closes + 1);
	assert_int_equal(hal_remove(h, "door-3", NULL, NULL, err, sizeof err), 0);
	assert_int_equal(x->removals, 2);
	assert_int_equal(x->closes, closes + 1);
	assert_int_equal(store_batch_end(x->k.store), 0);
	/* Closing the HAL (shutdown) closes the others, removes none. */
	hal_close(h);
	x->k.hal = NULL;
	assert_int_equal(x->removals, 2);
	assert_int_equal(hal_open(&x->k, &x->k.hal, err, sizeof err), 0);
}

struct poster {
	struct hal *h;
	int n;
	int busy;
};

static void *post_thread(void *arg)
{
	struct poster *p = arg;
	char err[256];
	for (int i = 0; i < p->n; i++) {
		struct linli_reading r = {.size = sizeof r,
					  .type = LINLI_T_INT,
					  .device = "w-1",
					  .resource = "steps",
					  .i = i};
		int rc;
		while ((rc = hal_post(p->h, ctx1(), &r, 1, err, sizeof err)) == LINLI_EBUSY)
			p->busy++;
		assert_int_equal(rc, 0);
	}
	return NULL;
}

static void stop_when_done(struct kernel *k, void *arg)
{
	struct fx *x = arg;
	if (hal_dev_readings(hal_find(k->hal, "w-1")) == 20000 || x->ticks++ > 1000)
		kernel_stop(k);
}

static void test_thread_posts_arrive_in_order(void **state)
{
	struct fx *x = *state;
	add(x, "w-1", "wearable", "ok", 0);
	struct poster p = {x->k.hal, 20000, 0};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, post_thread, &p), 0);
	kernel_timer_add(&x->k, 10, 10, stop_when_done, x);
	kernel_run(&x->k);
	pthread_join(th, NULL);
	struct hal_dev *d = hal_find(x->k.hal, "w-1");
	assert_int_equal(hal_dev_readings(d), 20000);
	assert_int_equal(x->readings_seen, 20000);
	msgpack_unpacked up;
	const msgpack_object *v = last_value(x, &up);
	assert_int_equal(v->via.u64, 19999); /* the last one posted is the last one published */
	msgpack_unpacked_destroy(&up);
}

static void test_registry_persists(void **state)
{
	struct fx *x = *state;
	struct kernel *k = &x->k;
	char err[512], hash[80];
	hal_secret_hash("s3cret", hash);
	struct hal_dev_spec s = {.id = "door-1",
				 .class_name = "door",
				 .driver = "t",
				 .address = "ok",
				 .name = "东门",
				 .scope = NODE "/g01",
				 .poll = "state=60",
				 .credential = hash,
				 .heartbeat_s = 30};
	assert_int_equal(hal_add(k->hal, &s, NULL, NULL, err, sizeof err), 0);
	add(x, "sm-1", "smoke", "ok", 0);
	assert_true(hal_dev_auth(hal_find(k->hal, "door-1"), "s3cret"));
	assert_false(hal_dev_auth(hal_find(k->hal, "door-1"), "s3cret!"));
	assert_false(hal_dev_auth(hal_find(k->hal, "sm-1"), ""));
	/* Reopen: the registry comes back from the store. */
	hal_close(k->hal);
	assert_int_equal(x->closes, 2);
	assert_int_equal(hal_open(k, &k->hal, err, sizeof err), 0);
	struct hal_dev *d = hal_find(k->hal, "door-1");
	assert_non_null(d);
	assert_string_equal(hal_dev_scope(d), NODE "/g01");
	assert_string_equal(hal_dev_class(d)->name, "door");
	assert_string_equal(hal_dev_driver(d), "t");
	assert_true(hal_dev_auth(d, "s3cret"));
	assert_null(hal_dev_driver_of(d)); /* no driver registered yet */
	assert_int_equal(
	    hal_driver_add(k->hal, "t", &ops, ctx1(), "tplug", &x->drv, err, sizeof err), 0);
	hal_driver_attach(k->hal, x->drv);
	assert_true(hal_dev_open(d));
	assert_int_equal(hal_remove(k->hal, "door-1", NULL, NULL, err, sizeof err), 0);
	assert_int_equal(store_batch_end(k->store), 0);
	hal_close(k->hal);
	assert_int_equal(hal_open(k, &k->hal, err, sizeof err), 0);
	assert_null(hal_find(k->hal, "door-1"));
	assert_non_null(hal_find(k->hal, "sm-1"));
	/* A poll schedule needs a driver that can read. */
	struct linli_driver_ops noread = ops;
	noread.read = NULL;
	assert_int_equal(hal_driver_add(k->hal, "nr", &noread, ctx2(), "p", NULL, err, sizeof err),
			 0);
	struct hal_dev_spec p = {
	    .id = "p-1", .class_name = "door", .driver = "nr", .address = "ok", .poll = "state=5"};
	assert_int_equal(hal_add(k->hal, &p, NULL, NULL, err, sizeof err), LINLI_EINVAL);
	assert_non_null(strstr(err, "driver nr cannot read: no poll schedule possible"));
	/* Registry input checks. */
	struct hal_dev_spec b = {.id = "x", .class_name = "door", .driver = "t", .address = "ok"};
	assert_int_equal(hal_add(k->hal, &b, NULL, NULL, err, sizeof err), LINLI_ENOENT);
	assert_non_null(strstr(err, "no driver 't' is loaded (loaded: nr)"));
}


/* ---- dev_event_wait: a driver thread waits for its event's commit ---- */

struct waitjob {
	struct fx *x;
	const char *dev, *event;
	uint32_t tmo;
	int rc;
	char err[320];
	_Atomic bool done;
};

static void *wait_thread(void *arg)
{
	struct waitjob *j = arg;
	j->rc = hal_event_wait(j->x->k.hal, ctx1(), j->dev, j->event, NULL, 0, 0, j->tmo, j->err,
			       sizeof j->err);
	atomic_store(&j->done, true);
	return NULL;
}

struct waitrun {
	struct waitjob *jobs;
	int n, ticks, on_kernel_rc;
};

static void wait_on_kernel(struct kernel *k, void *arg)
{
	struct waitrun *r = arg;
	char err[320];
	r->on_kernel_rc = hal_event_wait(k->hal, ctx1(), "door-1", "forced", NULL, 0, 0, 1000, err,
					 sizeof err);
	assert_non_null(strstr(err, "kernel thread"));
}

static void stop_when_waited(struct kernel *k, void *arg)
{
	struct waitrun *r = arg;
	bool all = true;
	for (int i = 0; i < r->n; i++)
		all = all && atomic_load(&r->jobs[i].done);
	if (all || r->ticks++ > 1000)
		kernel_stop(k);
}

static void test_event_wait_commits(void **state)
{
	struct fx *x = *state;
	add(x, "door-1", "door", "ok", 0);
	uint64_t before = store_journal_last(x->k.store);
	struct waitjob jobs[4] = {
	    {.x = x, .dev = "door-1", .event = "forced", .tmo = 20000},
	    {.x = x, .dev = "nosuch", .event = "forced", .tmo = 20000},
	    {.x = x, .dev = "door-1", .event = "party", .tmo = 20000},
	    {.x = x, .dev = "door-1", .event = "card_ok", .tmo = 20000}, /* journal = false */
	};
	struct waitrun r = {jobs, 4, 0, 1};
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, wait_thread, &jobs[i]), 0);
	kernel_timer_add(&x->k, 0, 0, wait_on_kernel, &r);
	kernel_timer_add(&x->k, 10, 10, stop_when_waited, &r);
	kernel_run(&x->k);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(r.on_kernel_rc, LINLI_ESTATE);
	if (jobs[0].rc)
		fail_msg("forced: %d %s", jobs[0].rc, jobs[0].err);
	/* When it returned 0 the event was in the journal, committed. */
	assert_true(store_journal_last(x->k.store) > before);
	assert_int_equal(jobs[1].rc, LINLI_ENOENT);
	assert_int_equal(jobs[2].rc, LINLI_ESCHEMA);
	assert_non_null(strstr(jobs[2].err, "no such event"));
	assert_int_equal(jobs[3].rc, 0);
	assert_int_equal(hal_waiting(x->k.hal), 0);
}

/*
 * A store that cannot write (the data file may not grow: RLIMIT_FSIZE, the
 * unit test's full disk): the event is not kept, and the waiting thread
 * learns the store's code.
 */
static void test_event_wait_store_full(void **state)
{
	struct fx *x = *state;
	add(x, "door-1", "door", "ok", 0);
	char path[128];
	snprintf(path, sizeof path, "%s/data.mdb", x->dir);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	struct rlimit old, lim;
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = (rlim_t)st.st_size + 4096;
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	char msg[1025], err[512], id[64];
	memset(msg, 'm', 1024);
	msg[1024] = '\0';
	int rc = 0;
	for (int i = 0; i < 100000 && rc == 0; i++) {
		msgpack_sbuffer sb;
		msgpack_packer pk;
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		msgpack_pack_map(&pk, 7);
		mp_kv_str(&pk, "type", "t");
		mp_kv_str(&pk, "source", "plugin:e");
		mp_kv_str(&pk, "severity", "major");
		mp_kv_bool(&pk, "active", true);
		mp_kv_bool(&pk, "acknowledged", false);
		mp_kv_int(&pk, "first_at", 1);
		mp_kv_str(&pk, "details", msg);
		rc = store_put(x->k.store, "alarms", NODE, NULL, sb.data, sb.size, id, NULL, err,
			       sizeof err);
		msgpack_sbuffer_destroy(&sb);
		if (rc == 0 && i % 100 == 99)
			rc = store_batch_end(x->k.store);
	}
	int store_rc = rc;
	assert_true(store_rc < 0);
	store_batch_end(x->k.store);
	struct waitjob j = {.x = x, .dev = "door-1", .event = "forced", .tmo = 20000};
	struct waitrun r = {&j, 1, 0, 0};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, wait_thread, &j), 0);
	kernel_timer_add(&x->k, 10, 10, stop_when_waited, &r);
	kernel_run(&x->k);
	pthread_join(th, NULL);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	if (j.rc != store_rc)
		fail_msg("dev_event_wait: %d (%s), the store said %d", j.rc, j.err, store_rc);
	assert_int_equal(hal_waiting(x->k.hal), 0);
}

/* Waiting threads are woken by their plugin's stop and by the shutdown; never left blocked. */
static void test_event_wait_woken_on_stop_and_shutdown(void **state)
{
	struct fx *x = *state;
	struct hal *h = x->k.hal;
	add(x, "door-1", "door", "ok", 0);
	/* The kernel loop does not run: the thread stays waiting until woken. */
	struct waitjob j = {.x = x, .dev = "door-1", .event = "forced", .tmo = 600000};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, wait_thread, &j), 0);
	for (int i = 0; i < 200000 && hal_waiting(h) == 0; i++)
		sched_yield();
	assert_int_equal(hal_waiting(h), 1);
	assert_false(atomic_load(&j.done));
	hal_driver_waiters_fail(h, ctx2(), true); /* another plugin's stop: not this one's */
	assert_int_equal(hal_waiting(h), 1);
	hal_driver_waiters_fail(h, ctx1(), true);
	pthread_join(th, NULL);
	assert_int_equal(j.rc, LINLI_ESTATE);
	assert_non_null(strstr(j.err, "plugin is stopping"));
	assert_int_equal(hal_waiting(h), 0);
	/* While its plugin stops, a new wait is refused at once. */
	char err[320];
	assert_int_equal(hal_event_wait(h, ctx1(), "door-1", "forced", NULL, 0, 0, 600000, err,
					sizeof err),
			 LINLI_ESTATE);
	hal_driver_waiters_fail(h, ctx1(), false);
	/* The shutdown wakes a waiting thread too. */
	struct waitjob j2 = {.x = x, .dev = "door-1", .event = "forced", .tmo = 600000};
	assert_int_equal(pthread_create(&th, NULL, wait_thread, &j2), 0);
	for (int i = 0; i < 200000 && hal_waiting(h) == 0; i++)
		sched_yield();
	assert_int_equal(hal_waiting(h), 1);
	hal_close(h);
	x->k.hal = NULL;
	pthread_join(th, NULL);
	assert_int_equal(j2.rc, LINLI_ESTATE);
	assert_non_null(strstr(j2.err, "shutting down"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_good_reading_published_and_kept, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_each_bad_reading_refused_counted_logged_once,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_event_is_journaled, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_availability_transitions, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_driver_says_availability, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_command_checks_answer_and_timeout, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_command_answer_result, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_write_error_from_driver, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_open_failure, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ops_table_checks, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_driver_told_secret_and_removal, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_thread_posts_arrive_in_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_registry_persists, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_event_wait_commits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_event_wait_store_full, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_event_wait_woken_on_stop_and_shutdown, setup,
					    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
