/*
 * bench_mqtt — readings per second from MQTT devices through a real
 * mosquitto into the HAL and to a bus subscriber (`tools/bench mqtt`).
 *
 *   mqtt.readings  readings/s received by one bus subscriber (dev/+/+/+) of
 *                  an in-process kernel running the real mqtt driver
 *                  (build/plugins/mqtt/mqtt.so, loaded by the plugin loader):
 *                  publishers -> mosquitto -> libmosquitto's network thread
 *                  -> JSON -> dev_post (the thread-safe queue) -> the class
 *                  check -> the bus
 *   mqtt.bare      readings/s a bare libmosquitto subscriber of
 *                  linli/dev/+/up receives from the same publishers in the
 *                  same run (messages x readings per message)
 *   mqtt.ratio     mqtt.readings over mqtt.bare
 *
 * The broker is `mosquitto` started on a free loopback port (anonymous, no
 * persistence). Publishers are BENCH_MQTT_PUBLISHERS (4) C threads, each its
 * own libmosquitto client, publishing QoS 0 messages of 6 readings (every
 * resource of the class: reading, power, voltage, current, power_factor,
 * relay) round-robin to 100 electric meters
 * registered with the mqtt driver, BENCH_MQTT_MESSAGES (30,000) each. A rate
 * is what a receiver got over the time from the first publish to its last
 * receipt; readings shed on the way are reported (mqtt.lost). Targets:
 * mqtt.readings >= 50,000/s, mqtt.ratio >= 0.5.
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>

#include "bus.h"
#include "catalog.h"
#include "cmd.h"
#include "config.h"
#include "hal.h"
#include "journal.h"
#include "kernel.h"
#include "linli/error.h"
#include "log.h"
#include "plugin.h"
#include "plugin_so.h"
#include "store.h"
#include "store_cmds.h"

#define NDEV	100
#define PER_MSG 6

static struct kernel K;
static int port, n_pub = 4;
static long per_pub = 30000;
static pid_t broker = -1;
static char dir[] = "/tmp/linli-bench-mqtt-XXXXXX";

static uint64_t received, rx_last_ns; /* kernel thread */
static atomic_uint_fast64_t bare_msgs, bare_last_ns;
static uint64_t t0_ns, want, last_seen, idle_since_ns, check_timer;
static double r_linli, r_bare;
static bool measuring;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void stop_broker(void)
{
	if (broker > 0) {
		kill(broker, SIGTERM);
		waitpid(broker, NULL, 0);
		broker = -1;
	}
}

static void die(const char *what, const char *why)
{
	fprintf(stderr, "bench_mqtt: %s: %s\n", what, why);
	stop_broker();
	exit(1);
}

/* ---- the broker ---- */

static void start_broker(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) ||
	    getsockname(s, (struct sockaddr *)&a, &len))
		die("port", strerror(errno));
	port = ntohs(a.sin_port);
	close(s);
	char conf[256], log[256];
	snprintf(conf, sizeof conf, "%s/mosquitto.conf", dir);
	snprintf(log, sizeof log, "%s/mosquitto.log", dir);
	FILE *f = fopen(conf, "w");
	if (!f)
		die(conf, strerror(errno));
	fprintf(f,
		"listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n"
		"max_queued_messages 0\nlog_dest none\n%s",
		port, getuid() == 0 ? "user root\n" : "");
	fclose(f);
	broker = fork();
	if (broker < 0)
		die("fork", strerror(errno));
	if (broker == 0) {
		execlp("mosquitto", "mosquitto", "-c", conf, (char *)NULL);
		execl("/usr/sbin/mosquitto", "mosquitto", "-c", conf, (char *)NULL);
		fprintf(stderr, "bench_mqtt: mosquitto: %s (tools/setup installs it)\n",
			strerror(errno));
		_exit(127);
	}
	for (int i = 0; i < 100; i++) { /* listening? */
		int c = socket(AF_INET, SOCK_STREAM, 0);
		a.sin_port = htons((uint16_t)port);
		int ok = connect(c, (struct sockaddr *)&a, sizeof a) == 0;
		close(c);
		if (ok)
			return;
		if (waitpid(broker, NULL, WNOHANG) == broker) {
			broker = -1;
			die("mosquitto", "ended at start");
		}
		usleep(50000);
	}
	die("mosquitto", "not listening after 5 s");
}

/* ---- the clients ---- */

static struct mosquitto *client(void)
{
	struct mosquitto *m = mosquitto_new(NULL, true, NULL);
	if (!m || mosquitto_connect(m, "127.0.0.1", port, 60) != MOSQ_ERR_SUCCESS ||
	    mosquitto_loop_start(m) != MOSQ_ERR_SUCCESS)
		die("client", "cannot connect to the broker");
	return m;
}

static void bare_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg)
{
	(void)m;
	(void)ud;
	(void)msg;
	atomic_fetch_add(&bare_msgs, 1);
	atomic_store(&bare_last_ns, now_ns());
}

static void *publisher(void *arg)
{
	long k = (long)(intptr_t)arg;
	struct mosquitto *m = client();
	char topic[64], payload[224];
	for (long i = 0; i < per_pub; i++) {
		long d = (k * per_pub + i) % NDEV;
		snprintf(topic, sizeof topic, "linli/dev/bm-%03ld/up", d);
		int n = snprintf(payload, sizeof payload,
				 "{\"readings\": {\"reading\": %ld.5, \"power\": %.2f, "
				 "\"voltage\": 220.5, \"current\": 5.5, \"power_factor\": 0.95, "
				 "\"relay\": \"on\"}}",
				 i, 1.25 + (double)(i % 7));
		int rc;
		while ((rc = mosquitto_publish(m, NULL, topic, n, payload, 0, false)) ==
		       MOSQ_ERR_NOMEM)
			usleep(100);
		if (rc != MOSQ_ERR_SUCCESS)
			die("publish", mosquitto_strerror(rc));
		if ((i & 1023) == 1023) /* let the network thread keep up */
			while (mosquitto_want_write(m))
				usleep(50);
	}
	while (mosquitto_want_write(m))
		usleep(100);
	usleep(100000);
	mosquitto_disconnect(m);
	mosquitto_loop_stop(m, false);
	mosquitto_destroy(m);
	return NULL;
}

/* ---- the kernel side ---- */

static int count(const struct bus_event *ev, void *ud)
{
	(void)ev;
	(void)ud;
	received++;
	rx_last_ns = now_ns();
	return 0;
}

static pthread_t th[64];
static struct mosquitto *probe;

/* Every 5 ms: done when both receivers have everything, or nothing moved for 2 s. */
static void check(struct kernel *k, void *arg)
{
	(void)arg;
	uint64_t now = now_ns(), got = received + atomic_load(&bare_msgs);
	if (got != last_seen) {
		last_seen = got;
		idle_since_ns = now;
	}
	bool all = received >= want && atomic_load(&bare_msgs) * PER_MSG >= want;
	if (!all && now - idle_since_ns < 2000000000u)
		return;
	for (int i = 0; i < n_pub; i++)
		pthread_join(th[i], NULL);
	r_linli = (double)received / ((double)(rx_last_ns - t0_ns) / 1e9);
	r_bare = (double)(atomic_load(&bare_msgs) * PER_MSG) /
		 ((double)(atomic_load(&bare_last_ns) - t0_ns) / 1e9);
	kernel_timer_cancel(k, check_timer);
	kernel_stop(k);
}

/* Every 50 ms until a probe reading comes through linlid: then the run. */
static void wait_ready(struct kernel *k, void *arg)
{
	(void)arg;
	static uint64_t t;
	if (measuring)
		return;
	if (received == 0 || atomic_load(&bare_msgs) == 0) {
		const char *p = "{\"readings\": {\"power\": 1.0}}";
		mosquitto_publish(probe, NULL, "linli/dev/bm-000/up", (int)strlen(p), p, 0, false);
		if (++t > 200)
			die("setup", "no reading came through linlid in 10 s");
		return;
	}
	usleep(200000); /* the probes drain */
	measuring = true;
	received = 0;
	atomic_store(&bare_msgs, 0);
	want = (uint64_t)n_pub * (uint64_t)per_pub * PER_MSG;
	t0_ns = idle_since_ns = now_ns();
	for (int i = 0; i < n_pub; i++)
		if (pthread_create(&th[i], NULL, publisher, (void *)(intptr_t)i))
			die("thread", "cannot start a publisher");
	check_timer = kernel_timer_add(k, 5, 5, check, NULL);
}

int main(void)
{
	if (getenv("BENCH_MQTT_PUBLISHERS"))
		n_pub = atoi(getenv("BENCH_MQTT_PUBLISHERS"));
	if (getenv("BENCH_MQTT_MESSAGES"))
		per_pub = atol(getenv("BENCH_MQTT_MESSAGES"));
	if (n_pub < 1 || n_pub > 64 || per_pub < 1)
		die("config", "BENCH_MQTT_PUBLISHERS 1..64, BENCH_MQTT_MESSAGES >= 1");
	const char *root = getenv("BENCH_ROOT") ? getenv("BENCH_ROOT") : ".";
	const char *build = getenv("BENCH_BUILD") ? getenv("BENCH_BUILD") : "build-bench";
	if (!mkdtemp(dir))
		die("mkdtemp", strerror(errno));
	mosquitto_lib_init();
	start_broker();
	char text[2048], err[1024];
	snprintf(text, sizeof text,
		 "node = { path = \"hefei/baohe/binhu/yuelan\"; level = \"community\"; };\n"
		 "data_dir = \"%s\";\nlog_level = \"error\";\ncatalog_dir = \"%s/catalog\";\n"
		 "plugin_dirs = [ \"%s/plugins/mqtt\" ];\n"
		 "control = { listen = [ \"ipc://%s/ctl.sock\" ]; };\n"
		 "store = { sync = false; map_size_mb = 64; };\n"
		 "bus = { telemetry_queue = 1048576; };\n"
		 "plugins = { mqtt = { host = \"127.0.0.1\"; port = %d; client_id = "
		 "\"bench-linlid\"; }; };\n",
		 dir, root, build, dir, port);
	if (kernel_init(&K) || cfg_load_string(&K.cfg, text, "bench", NULL, err, sizeof err))
		die("config", err);
	log_set_level(LOG_ERROR);
	if (catalog_load(K.cfg.catalog_dir, &K.catalog, err, sizeof err))
		die("catalog", err);
	struct store_opts so = {
	    .dir = dir, .map_size = 64u << 20, .wake = store_cmds_wake, .wake_ud = &K};
	if (store_open(&so, K.catalog, &K.store, err, sizeof err))
		die("store", err);
	plug_kind_add(plugin_so_kind());
	K.cmds = cmd_registry_new();
	if (store_cmds_register(&K) || bus_open(&K, &K.bus, err, sizeof err) ||
	    journal_attach(&K) || hal_open(&K, &K.hal, err, sizeof err) ||
	    plug_open(&K, err, sizeof err))
		die("open", err);
	if (plug_load_all(&K) != 1)
		die("plugins", "mqtt did not start (tools/bench builds build-bench)");
	for (int i = 0; i < NDEV; i++) {
		char id[32];
		snprintf(id, sizeof id, "bm-%03d", i);
		struct hal_dev_spec s = {
		    .id = id, .class_name = "electric_meter", .driver = "mqtt", .address = id};
		if (hal_add(K.hal, &s, NULL, NULL, err, sizeof err))
			die("hal_add", err);
	}
	uint64_t sid;
	if (bus_subscribe(K.bus, "dev/+/+/+", "", count, NULL, NULL, "bench", &sid, err,
			  sizeof err))
		die("subscribe", err);
	struct mosquitto *bare = mosquitto_new(NULL, true, NULL);
	if (!bare)
		die("bare", "out of memory");
	mosquitto_message_callback_set(bare, bare_message);
	if (mosquitto_connect(bare, "127.0.0.1", port, 60) ||
	    mosquitto_subscribe(bare, NULL, "linli/dev/+/up", 0) || mosquitto_loop_start(bare))
		die("bare", "cannot subscribe");
	probe = client();

	kernel_timer_add(&K, 50, 50, wait_ready, NULL);
	kernel_run(&K);

	struct hal_totals t;
	hal_get_totals(K.hal, &t);
	uint64_t lost = want > received ? want - received : 0;
	printf("mqtt.readings: %.0f readings/s\n", r_linli);
	printf("mqtt.bare: %.0f readings/s\n", r_bare);
	printf("mqtt.ratio: %.2f\n", r_bare > 0 ? r_linli / r_bare : 0);
	printf("mqtt.messages: %.0f messages/s\n", r_linli / PER_MSG);
	printf("mqtt.lost: %llu of %llu readings (refused %llu)\n", (unsigned long long)lost,
	       (unsigned long long)want, (unsigned long long)t.refused);
	printf("mqtt.setup: %d publishers x %ld messages of %d readings, %d devices\n", n_pub,
	       per_pub, PER_MSG, NDEV);

	mosquitto_disconnect(probe);
	mosquitto_loop_stop(probe, false);
	mosquitto_destroy(probe);
	mosquitto_disconnect(bare);
	mosquitto_loop_stop(bare, false);
	mosquitto_destroy(bare);
	plug_close(&K);
	hal_close(K.hal);
	bus_close(K.bus);
	store_close(K.store);
	cmd_registry_free(K.cmds);
	catalog_free(K.catalog);
	kernel_destroy(&K);
	stop_broker();
	mosquitto_lib_cleanup();
	snprintf(text, sizeof text, "rm -rf %s", dir);
	if (system(text) != 0)
		fprintf(stderr, "bench_mqtt: could not remove %s\n", dir);
	return 0;
}
