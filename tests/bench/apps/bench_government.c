/*
 * bench_government (tools/bench apps) — the government-services family's
 * applications in-process, against the raw store they sit on.
 *
 * A kernel with the real catalog, a store (MDB_NOSYNC: CPU cost, not fsync)
 * and the loader runs the services plugin (plugins/services) at the city node,
 * with a working calendar and a service item (高龄津贴, promised 5 working days)
 * stored at the city. Each application is submitted at a community and taken
 * through accept, process and finish (办结), each one console command of the
 * plugin as the console would send it: the submission checked against the item
 * (cached), a token made (libsodium) and only its hash stored; each move read,
 * checked against the table, its deadline computed in working time, the
 * application updated and its application_moves record written, every step
 * audited. The kernel commits a batch every 1,000 commands, as its loop would.
 *
 *   apps.applications         applications submitted and moved to 办结 per second
 *                             (target >= 1,000; 4 commands each)
 *   apps.applications.moves   commands (submit and moves) per second
 *   apps.applications.direct  raw store puts of an application record per second,
 *                             as many as the commands, same batches (store_put)
 *   apps.applications.ratio   commands/s / puts/s (a command is a read, two writes
 *                             and an audit entry besides the workflow)
 *   apps.applications.cpu     both per CPU second of the process
 *
 * BENCH_GOV_N=applications overrides 10,000. The node, the clocks and the checks
 * of this number are bench_apps.h's.
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
#define COMM  "hefei/baohe/binhu/yuelan"
#define RAW   "hefei/baohe/binhu/qiming"
#define ITEM  "34010400MZ-GG-0007"

static void seed(struct kernel *k)
{
	for (int y = 2026; y <= 2028; y++) {
		linli_record *r = record_new();
		record_set_int(r, "year", y);
		record_set_str(r, "hours", "09:00-12:00,13:30-17:30");
		record_set_str(r, "weekend", "6,7");
		record_set_str(r, "holidays", "2027-01-01,2028-01-01");
		char id[8];
		snprintf(id, sizeof id, "%d", y);
		bench_put(k, "work_calendar", NODE, id, r);
	}
	linli_record *r = record_new();
	record_set_str(r, "code", ITEM);
	record_set_str(r, "name", "高龄津贴");
	record_set_str(r, "department", "民政局");
	record_set_str(r, "status", "active");
	record_set_int(r, "promised_days", 5);
	record_set_int(r, "time_limit_days", 10);
	record_set_int(r, "visits", 0);
	bench_put(k, "service_items", NODE, ITEM, r);
	if (store_batch_end(k->store))
		bench_die("store", "commit failed");
}

static long n_apps;

void bench_government_sizes(void)
{
	n_apps = bench_env_long("BENCH_GOV_N", 10000, BATCH, 100000000);
}

void bench_government(void)
{
	long n = n_apps;
	struct kernel k;
	char err[1024];
	struct bench_node_opts o = {.node = NODE, .level = "city", .plugin_so = SERVICES_SO};
	bench_node_open(&k, &o);
	seed(&k);
	bench_node_start(&k); /* the plugin caches the item and the calendar */

	static const char *const path[][2] = {
	    {"accept", NULL}, {"process", NULL}, {"finish", "准予发放,每月200元"}};
	const long per_app = 1 + (long)(sizeof path / sizeof *path);
	char(*ids)[STORE_ID_MAX + 1] = malloc((size_t)n * sizeof *ids);
	if (!ids)
		bench_die("malloc", "out of memory");
	printf("apps.applications: %ld applications, %ld commands each, batches of %d, nosync\n", n,
	       per_app, BATCH);
	long pending = 0;
	double t0 = bench_now(), c0 = bench_cpu();
	for (long i = 0; i < n; i++) {
		char idn[32];
		snprintf(idn, sizeof idn, "3401041950%08ld", i % 100000000);
		const char *a[] = {"apply", COMM,	    ITEM, "applicant_name=张三",
				   NULL,    "channel=kiosk"};
		char idarg[64];
		snprintf(idarg, sizeof idarg, "applicant_id_number=%.18s", idn);
		a[4] = idarg;
		bench_str(bench_cmd(&k, "services", 6, a), "id", ids[i], sizeof ids[i]);
		bench_commit_every(&k, &pending, BATCH);
	}
	for (size_t s = 0; s < sizeof path / sizeof *path; s++)
		for (long i = 0; i < n; i++) {
			const char *a[] = {path[s][0], ids[i], path[s][1]};
			bench_cmd(&k, "services", path[s][1] ? 3 : 2, a);
			bench_commit_every(&k, &pending, BATCH);
		}
	if (store_batch_end(k.store))
		bench_die("store", "commit failed");
	double t_apps = bench_now() - t0, c_apps = bench_cpu() - c0;

	/* Every application completed, with its history. */
	msgpack_sbuffer out;
	msgpack_sbuffer_init(&out);
	if (store_get(k.store, "applications", COMM, ids[n - 1], &out, NULL, err, sizeof err))
		bench_die("store_get", err);
	if (!memmem(out.data, out.size, "completed", 9))
		bench_die("the last application", "is not completed");

	/* Raw store puts of an application record, as many as the commands, same batches. */
	linli_record *r = record_new();
	record_set_str(r, "item", ITEM);
	record_set_str(r, "applicant_name", "张三");
	record_set_str(r, "applicant_id_number", "340104195001010011");
	record_set_str(r, "channel", "kiosk");
	record_set_str(r, "status", "processing");
	record_set_time(r, "submitted_at", 1796000000000);
	record_set_time(r, "accepted_at", 1796000000000);
	record_set_time(r, "deadline", 1796400000000);
	record_set_str(r, "handler", "admin");
	msgpack_sbuffer rec;
	bench_pack(r, &rec);
	long puts = n * per_app;
	pending = 0;
	t0 = bench_now(), c0 = bench_cpu();
	char id[STORE_ID_MAX + 1];
	for (long i = 0; i < puts; i++) {
		if (store_put(k.store, "applications", RAW, NULL, rec.data, rec.size, id, NULL, err,
			      sizeof err))
			bench_die("store_put", err);
		bench_commit_every(&k, &pending, BATCH);
	}
	if (store_batch_end(k.store))
		bench_die("store", "commit failed");
	double t_raw = bench_now() - t0, c_raw = bench_cpu() - c0;

	double apps = (double)n / t_apps, cmds = (double)(n * per_app) / t_apps,
	       raw = (double)puts / t_raw;
	printf("apps.applications: %.0f applications/s to 办结 (target >= 1000)\n", apps);
	printf("apps.applications.moves: %.0f commands/s\n", cmds);
	printf("apps.applications.direct: %.0f puts/s\n", raw);
	printf("apps.applications.ratio: %.3f\n", cmds / raw);
	printf("apps.applications.cpu: %.0f applications per CPU second (direct %.0f puts)\n",
	       (double)n / c_apps, (double)puts / c_raw);
	fflush(stdout);

	msgpack_sbuffer_destroy(&out);
	msgpack_sbuffer_destroy(&rec);
	free(ids);
	bench_node_close(&k);
}
