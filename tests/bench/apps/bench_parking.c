/*
 * bench_parking (tools/bench apps, `bench_apps parking`) — the parking plugin's
 * gate events, in-process.
 *
 * A node (bench_apps.h) at the community hefei/baohe/binhu/yuelan runs the
 * parking plugin (plugins/parking, with alarms, which it requires) through the
 * real .so loader, and runs its kernel loop as linlid does: each loop turn is
 * one batch, the store commits it at batch end with an fsync (linlid's
 * default), and the bus journals the gates' events (records of consequence)
 * before they are delivered. A driver thread posts gate events as a driver
 * would (bus_post, dev/gate/ID/event/entry|exit with plate, colour, lot and
 * the gate's time): BENCH_PARKING_N vehicles, each entering and then leaving
 * BENCH_PARKING_INSIDE vehicles later (so about that many sessions are open),
 * over BENCH_PARKING_GATES gates and their lots. Half stay 10 minutes (free),
 * half were uploaded late by an offline gate after 2 h (fee 10 at the default
 * tariff): every exit closes its session.
 *
 *   apps.parking_events   entries and exits committed per second: from the
 *                         first post to the commit of the batch holding the
 *                         last session's exit, told by a store watch of
 *                         parking_sessions (target >= 5,000/s); each entry is
 *                         a new parking_sessions record, each exit an update
 *                         of it, each event also a journal record
 *   apps.parking_events.cpu   per CPU second of the process
 *
 * BENCH_PARKING_N (20,000 vehicles: 40,000 events), BENCH_PARKING_INSIDE
 * (1,000) and BENCH_PARKING_GATES (10) set the sizes; TMPDIR the directory.
 */
#include <msgpack.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_apps.h"
#include "bus.h"
#include "kernel.h"
#include "linli/error.h"
#include "store.h"

#define NODE "hefei/baohe/binhu/yuelan"

static struct {
	struct kernel *k;
	long n, inside, gates;
	long created, updated;
	int64_t base_ms; /* the gate's times start here */
	double t0, cpu0, t1, cpu1;
	pthread_t driver;
} P;

static void plate_of(long i, char *out, size_t n)
{
	static const char letters[] = "ABCDEFGHJKLMNPQRSTUVWXYZ";
	snprintf(out, n, "皖%c%c%05ld", letters[i % 24], letters[(i / 24) % 24], i % 100000);
}

static void post(msgpack_sbuffer *sb, long i, bool exit)
{
	char plate[32], lot[16], topic[64], err[256];
	long g = i % P.gates;
	bool late = i % 2 == 1;
	int64_t at = P.base_ms + i * 10 + (exit ? (late ? 2 * 3600000 : 600000) : 0);
	plate_of(i, plate, sizeof plate);
	snprintf(lot, sizeof lot, "P%ld", g);
	snprintf(topic, sizeof topic, "dev/gate/g-%03ld/event/%s", g, exit ? "exit" : "entry");
	msgpack_packer pk;
	msgpack_sbuffer_clear(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 1);
	msgpack_pack_str_with_body(&pk, "data", 4);
	msgpack_pack_map(&pk, exit && late ? 5 : 4);
	msgpack_pack_str_with_body(&pk, "plate", 5);
	msgpack_pack_str_with_body(&pk, plate, strlen(plate));
	msgpack_pack_str_with_body(&pk, "plate_colour", 12);
	msgpack_pack_str_with_body(&pk, "blue", 4);
	msgpack_pack_str_with_body(&pk, "lot", 3);
	msgpack_pack_str_with_body(&pk, lot, strlen(lot));
	msgpack_pack_str_with_body(&pk, "time", 4);
	msgpack_pack_double(&pk, (double)at / 1000);
	if (exit && late) {
		msgpack_pack_str_with_body(&pk, "offline", 7);
		msgpack_pack_true(&pk);
	}
	struct bus_msg m = {topic, "driver-sim", NODE, sb->data, sb->size};
	int rc;
	while ((rc = bus_post(P.k->bus, &m, err, sizeof err)) == LINLI_EBUSY)
		nanosleep(&(struct timespec){0, 100000}, NULL);
	if (rc)
		bench_die("bus_post", err);
}

/* The driver: entries, each vehicle's exit `inside` entries later, then the rest. */
static void *drive(void *arg)
{
	(void)arg;
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	P.t0 = bench_now();
	P.cpu0 = bench_cpu();
	for (long i = 0; i < P.n; i++) {
		post(&sb, i, false);
		if (i >= P.inside)
			post(&sb, i - P.inside, true);
	}
	for (long i = P.n - P.inside < 0 ? 0 : P.n - P.inside; i < P.n; i++)
		post(&sb, i, true);
	msgpack_sbuffer_destroy(&sb);
	return NULL;
}

/* parking_sessions changes, told after each commit. */
static void on_change(void *ud, const struct store_change *c)
{
	(void)ud;
	if (c->kind == STORE_CREATED)
		P.created++;
	else if (c->kind == STORE_UPDATED)
		P.updated++;
	if (P.created == P.n && P.updated == P.n && !P.t1) {
		P.t1 = bench_now();
		P.cpu1 = bench_cpu();
		kernel_stop(P.k);
	}
}

static void start(struct kernel *k, void *arg)
{
	(void)k;
	(void)arg;
	if (pthread_create(&P.driver, NULL, drive, NULL))
		bench_die("pthread_create", "failed");
}

void bench_parking_sizes(void)
{
	P.n = bench_env_long("BENCH_PARKING_N", 20000, 100, 10000000);
	P.inside = bench_env_long("BENCH_PARKING_INSIDE", 1000, 1, P.n);
	P.gates = bench_env_long("BENCH_PARKING_GATES", 10, 1, 1000);
}

void bench_parking(void)
{
	struct kernel k;
	struct bench_node_opts o = {.node = NODE,
				    .level = "community",
				    .plugin_so = PARKING_SO,
				    .also_so = ALARMS_SO,
				    .sync = true,
				    .loop = true};
	char err[512];
	uint64_t wid = 0;
	bench_node_open(&k, &o);
	bench_node_start(&k);
	P.k = &k;
	if (store_watch(k.store, "parking_sessions", on_change, NULL, &wid, err, sizeof err))
		bench_die("store_watch", err);
	/* the gate's times: a day ago, so that no exit lies ahead of the node's clock */
	P.base_ms = (int64_t)time(NULL) * 1000 - 24 * 3600000LL;
	printf("apps.parking: %ld vehicles in and out (%ld events) through %ld gates, %ld inside "
	       "at a time, half late uploads with a fee; fsync per batch\n",
	       P.n, 2 * P.n, P.gates, P.inside);
	fflush(stdout);
	if (kernel_post(&k, start, NULL))
		bench_die("kernel_post", "refused");
	kernel_run(&k); /* until the last exit commits */
	pthread_join(P.driver, NULL);
	if (P.created != P.n || P.updated != P.n) {
		snprintf(err, sizeof err, "%ld sessions created, %ld closed: want %ld each",
			 P.created, P.updated, P.n);
		bench_die("parking", err);
	}
	double s = P.t1 - P.t0;
	printf("apps.parking_events: %.0f entries and exits committed/s (target >= 5000)\n",
	       (double)(2 * P.n) / s);
	printf("apps.parking_events.cpu: %.0f per CPU second\n",
	       (double)(2 * P.n) / (P.cpu1 - P.cpu0));
	fflush(stdout);
	bench_node_close(&k);
}
