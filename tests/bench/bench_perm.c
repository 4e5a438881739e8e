/*
 * bench_perm — what enforcement costs: one permission check, and a store get
 * with and without the check that every path makes before it.
 *
 *   perm.check: N ns               tier_check, an allowed read in the subtree
 *   perm.check_denied: N ns        tier_check, a sibling refused (no audit)
 *   perm.get.ratio: X              enforced get rate over unenforced (>= 0.9)
 *
 * The enforced get is access_check (the one function every console, HTTP,
 * plugin and Lua path calls) followed by store_get, on the same records and
 * the same random order as the bare store_get.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "access.h"
#include "catalog.h"
#include "kernel.h"
#include "log.h"
#include "store.h"

#define N_RECORDS 100000
#define N_GETS 1000000

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *why)
{
	fprintf(stderr, "bench_perm: %s: %s\n", what, why);
	exit(1);
}

int main(void)
{
	log_set_level(LOG_ERROR);
	const char *const grants[] = {NULL};
	struct tier_principal op = {PRINCIPAL_PERSON, "op", "hefei/baohe/binhu", ROLE_OPERATOR,
				    grants, NULL, NULL};
	char why[256];

	/* One check: allowed, then denied. */
	volatile int sink = 0;
	long n = 10000000;
	double t0 = now();
	for (long i = 0; i < n; i++)
		sink += tier_check(&op, ACT_DATA_READ, "hefei/baohe/binhu/yuelan/g01", "grids", why,
				   sizeof why);
	double t1 = now();
	for (long i = 0; i < n; i++)
		sink += tier_check(&op, ACT_DATA_READ, "hefei/baohe/fanhua/jinxiu", "grids", why,
				   sizeof why);
	double t2 = now();
	printf("perm.check: %.1f ns\n", (t1 - t0) * 1e9 / (double)n);
	printf("perm.check_denied: %.1f ns\n", (t2 - t1) * 1e9 / (double)n);

	/* A store with 100,000 grids records in one street's communities. */
	char tmp[] = "/tmp/linli-bench-perm-XXXXXX";
	if (!mkdtemp(tmp))
		die("mkdtemp", strerror(errno));
	const char *root = getenv("BENCH_ROOT");
	char cpath[4096];
	snprintf(cpath, sizeof cpath, "%s/catalog", root ? root : ".");
	struct catalog *cat;
	char err[1024];
	if (catalog_load(cpath, &cat, err, sizeof err))
		die("catalog", err);
	struct kernel k;
	memset(&k, 0, sizeof k);
	struct store *s;
	struct store_opts o = {.dir = tmp, .map_size = (size_t)256 << 20, .sync = false};
	if (store_open(&o, cat, &s, err, sizeof err))
		die("store", err);
	static char ids[N_RECORDS][STORE_ID_MAX + 1];
	static const char *const scopes[] = {"hefei/baohe/binhu/yuelan", "hefei/baohe/binhu/qiming"};
	for (int i = 0; i < N_RECORDS; i++) {
		char rec[128];
		msgpack_sbuffer sb;
		msgpack_packer pk;
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		msgpack_pack_map(&pk, 2);
		msgpack_pack_str(&pk, 4);
		msgpack_pack_str_body(&pk, "code", 4);
		int len = snprintf(rec, sizeof rec, "g%06d", i);
		msgpack_pack_str(&pk, (size_t)len);
		msgpack_pack_str_body(&pk, rec, (size_t)len);
		msgpack_pack_str(&pk, 4);
		msgpack_pack_str_body(&pk, "name", 4);
		msgpack_pack_str(&pk, (size_t)len);
		msgpack_pack_str_body(&pk, rec, (size_t)len);
		if (store_put(s, "grids", scopes[i % 2], NULL, sb.data, sb.size, ids[i], NULL, err,
			      sizeof err))
			die("put", err);
		msgpack_sbuffer_destroy(&sb);
		if (i % 1000 == 999 && store_batch_end(s))
			die("commit", "failed");
	}
	store_batch_end(s);

	static int order[N_GETS];
	srand(42);
	for (int i = 0; i < N_GETS; i++)
		order[i] = rand() % N_RECORDS;
	msgpack_sbuffer out;
	msgpack_sbuffer_init(&out);
	double best_bare = 0, best_enf = 0;
	/* Warm the pages once, then alternate which runs first so that both see
	 * the same cache and machine load; keep each one's best round. */
	for (int i = 0; i < N_GETS; i++) {
		out.size = 0;
		store_get(s, "grids", "hefei/baohe/binhu", ids[order[i]], &out, NULL, err, sizeof err);
	}
	for (int round = 0; round < 6; round++) {
		for (int pass = 0; pass < 2; pass++) {
			bool enforced = (pass == 0) == (round % 2 == 1);
			double a = now();
			for (int i = 0; i < N_GETS; i++) {
				out.size = 0;
				if (enforced && access_check(&k, &op, ACT_DATA_READ, "hefei/baohe/binhu",
							     "grids", why, sizeof why))
					die("check", why);
				if (store_get(s, "grids", "hefei/baohe/binhu", ids[order[i]], &out,
					      NULL, err, sizeof err))
					die("get", err);
			}
			double rate = N_GETS / (now() - a);
			double *best = enforced ? &best_enf : &best_bare;
			if (rate > *best)
				*best = rate;
		}
	}
	msgpack_sbuffer_destroy(&out);
	printf("perm.get_bare: %.0f gets/s\n", best_bare);
	printf("perm.get_enforced: %.0f gets/s\n", best_enf);
	printf("perm.get.ratio: %.2f\n", best_enf / best_bare);
	store_close(s);
	catalog_free(cat);
	char cmd[256];
	snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "bench_perm: could not remove %s\n", tmp);
	return sink == -1;
}
