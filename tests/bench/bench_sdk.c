/*
 * bench_sdk — the cost of the SDK's function table and of the plugin loader.
 *
 * sdk.call.*: the same kernel function called directly and through the
 * table, the way a plugin calls it (api->rec_get_int through a global
 * pointer). Ratios are table-call rate / direct-call rate: 1.0 is parity,
 * higher is better, the target is >= 0.8 (a table call within 1.25x of a
 * direct one). rec_get_int on an 8-field record is the realistic call;
 * rec_count is nearly free, so its ratio shows the bare indirection.
 *
 * sdk.load100: 100 plugins with distinct names (copies of tp_bench.so with
 * the name patched in the metadata block) loaded by the real loader —
 * scan, ELF checks, ordering, private copies, dlopen, init (each registers
 * a command) — median of 5 runs. Target: under 50 ms.
 */
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "kernel.h"
#include "linli/api.h"
#include "log.h"
#include "plugin.h"
#include "plugin_lua.h"
#include "plugin_so.h"
#include "record.h"
#include "sdkapi.h"

/* Global and non-const, as a plugin keeps it: every call reloads it. */
const struct linli_api *bench_api;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define CALLS 20000000L

static double direct_get(linli_record *r)
{
	int64_t v, acc = 0;
	double t0 = now_s();
	for (long i = 0; i < CALLS; i++) {
		record_get_int(r, "f6", &v);
		acc += v;
	}
	double dt = now_s() - t0;
	if (acc != 6 * CALLS)
		fprintf(stderr, "bench_sdk: wrong sum\n");
	return CALLS / dt;
}

static double table_get(linli_record *r)
{
	int64_t v, acc = 0;
	double t0 = now_s();
	for (long i = 0; i < CALLS; i++) {
		bench_api->rec_get_int(r, "f6", &v);
		acc += v;
	}
	double dt = now_s() - t0;
	if (acc != 6 * CALLS)
		fprintf(stderr, "bench_sdk: wrong sum\n");
	return CALLS / dt;
}

static double direct_count(linli_record *r)
{
	size_t acc = 0;
	double t0 = now_s();
	for (long i = 0; i < CALLS; i++)
		acc += record_count(r);
	double dt = now_s() - t0;
	if (acc != 8u * CALLS)
		fprintf(stderr, "bench_sdk: wrong count\n");
	return CALLS / dt;
}

static double table_count(linli_record *r)
{
	size_t acc = 0;
	double t0 = now_s();
	for (long i = 0; i < CALLS; i++)
		acc += bench_api->rec_count(r);
	double dt = now_s() - t0;
	if (acc != 8u * CALLS)
		fprintf(stderr, "bench_sdk: wrong count\n");
	return CALLS / dt;
}

/* Best of 5 alternating rounds of each, so neither side gets the warm caches. */
static void call_ratio(const char *metric, linli_record *r, double (*direct)(linli_record *),
		       double (*table)(linli_record *), bool print_rates)
{
	double bd = 0, bt = 0;
	for (int round = 0; round < 5; round++) {
		double d = direct(r), t = table(r);
		if (d > bd)
			bd = d;
		if (t > bt)
			bt = t;
	}
	if (print_rates) {
		printf("sdk.call.direct: %.1f Mcalls/s\n", bd / 1e6);
		printf("sdk.call.table: %.1f Mcalls/s\n", bt / 1e6);
	}
	printf("%s: %.2f\n", metric, bt / bd);
}

/* ---- load100 ---- */

static unsigned char *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	*n = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	unsigned char *b = malloc(*n);
	if (b && fread(b, 1, *n, f) != *n) {
		free(b);
		b = NULL;
	}
	fclose(f);
	return b;
}

/* File offset of the metadata block (the file was checked by plug_read_meta). */
static size_t meta_offset(const unsigned char *b)
{
	const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)b;
	const ElfW(Shdr) *sh = (const ElfW(Shdr) *)(b + eh->e_shoff);
	const char *names = (const char *)b + sh[eh->e_shstrndx].sh_offset;
	for (int i = 0; i < eh->e_shnum; i++)
		if (strcmp(names + sh[i].sh_name, LINLI_PLUGIN_SECTION) == 0)
			return sh[i].sh_offset;
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static int load100(void)
{
	size_t n;
	unsigned char *img = slurp(TP_BENCH, &n);
	struct linli_plugin_meta m;
	char err[512];
	if (!img || plug_read_meta(img, n, &m, err, sizeof err) != 0) {
		fprintf(stderr, "bench_sdk: cannot use %s: %s\n", TP_BENCH,
			img ? err : "unreadable");
		return 1;
	}
	size_t off = meta_offset(img) + offsetof(struct linli_plugin_meta, name);
	char root[] = "/tmp/linli-bench-sdk-XXXXXX";
	if (!mkdtemp(root)) {
		perror("mkdtemp");
		return 1;
	}
	char dir[256], data[256];
	snprintf(dir, sizeof dir, "%s/plugins", root);
	snprintf(data, sizeof data, "%s/data", root);
	mkdir(dir, 0700);
	mkdir(data, 0700);
	for (int i = 0; i < 100; i++) {
		char name[LINLI_NAME_MAX] = {0}, path[512];
		snprintf(name, sizeof name, "bench%03d", i);
		memcpy(img + off, name, sizeof name);
		snprintf(path, sizeof path, "%s/%s.so", dir, name);
		FILE *f = fopen(path, "wb");
		if (!f || fwrite(img, 1, n, f) != n) {
			perror(path);
			return 1;
		}
		fclose(f);
	}
	free(img);

	log_set_level(LOG_WARN);
	double ms[5];
	int rc = 0;
	for (int run = 0; run < 5 && !rc; run++) {
		struct kernel k;
		kernel_init(&k);
		snprintf(k.cfg.node_path, sizeof k.cfg.node_path, "hefei");
		k.cfg.data_dir = strdup(data);
		k.cfg.plugin_dirs[0] = strdup(dir);
		k.cfg.n_plugin_dirs = 1;
		/* The kinds of plugin the registry loads: shared objects and Lua scripts. */
		plug_kind_add(plugin_so_kind());
		plug_kind_add(plugin_lua_kind());
		k.cmds = cmd_registry_new();
		if (plug_open(&k, err, sizeof err) != 0) {
			fprintf(stderr, "bench_sdk: %s\n", err);
			return 1;
		}
		double t0 = now_s();
		int running = plug_load_all(&k);
		ms[run] = (now_s() - t0) * 1e3;
		if (running != 100) {
			fprintf(stderr, "bench_sdk: only %d of 100 plugins started\n", running);
			rc = 1;
		}
		plug_close(&k);
		cmd_registry_free(k.cmds);
		kernel_destroy(&k);
	}
	if (!rc) {
		qsort(ms, 5, sizeof ms[0], cmp_double);
		printf("sdk.load100: %.1f ms\n", ms[2]);
	}
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	if (system(cmd) != 0)
		fprintf(stderr, "bench_sdk: could not remove %s\n", root);
	return rc;
}

int main(void)
{
	bench_api = sdkapi_table();
	linli_record *r = record_new();
	for (int i = 0; i < 8; i++) {
		char key[8];
		snprintf(key, sizeof key, "f%d", i);
		record_set_int(r, key, i);
	}
	printf("# ratios: table-call rate / direct-call rate; 1.0 = parity, higher is better, "
	       "target >= 0.8\n");
	call_ratio("sdk.call.ratio", r, direct_get, table_get, true);
	call_ratio("sdk.call_trivial.ratio", r, direct_count, table_count, false);
	record_free(r);
	return load100();
}
