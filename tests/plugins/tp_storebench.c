/*
 * The plugin half of tests/bench/bench_sdkstore.c: loops of store calls
 * through the function table, as a plugin makes them. The benchmark times
 * each command; the same work made directly on host/store.c is its
 * reference.
 *
 *   tp_storebench put N SCOPE   N store_put of a grid with a fresh id (ids kept)
 *   tp_storebench get N         N store_get of kept ids, in a pseudo-random order
 *   tp_storebench scan SCOPE    every record of SCOPE, pages of 10,000 -> {rows}
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linli/linli.h>

static const struct linli_api *api;
static char (*ids)[LINLI_ID_MAX + 1];
static size_t n_ids, cap_ids;
static uint64_t rng = 88172645463325252ull;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int fail(char *err, size_t errlen, linli_ctx *ctx, int rc)
{
	snprintf(err, errlen, "%s", api->store_last_error(ctx));
	return rc;
}

static int cmd_put(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply, char *err,
		   size_t errlen)
{
	(void)reply;
	if (req->argc != 2)
		return LINLI_EINVAL;
	size_t n = strtoul(req->argv[0], NULL, 10);
	if (n_ids + n > cap_ids) {
		size_t cap = (n_ids + n) * 2;
		void *v = realloc(ids, cap * sizeof *ids);
		if (!v)
			return LINLI_ENOMEM;
		ids = v;
		cap_ids = cap;
	}
	linli_record *r = api->rec_new();
	api->rec_set_str(r, "code", "g03");
	api->rec_set_str(r, "name", "悦澜第三网格");
	api->rec_set_str(r, "kind", "residential");
	api->rec_set_float(r, "area_km2", 0.42);
	api->rec_set_int(r, "households", 812);
	api->rec_set_int(r, "population", 2304);
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++)
		rc = api->store_put(ctx, "grids", req->argv[1], NULL, r, ids[n_ids++], NULL);
	api->rec_free(r);
	return rc ? fail(err, errlen, ctx, rc) : 0;
}

static int cmd_get(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply, char *err,
		   size_t errlen)
{
	(void)reply;
	if (req->argc != 1 || !n_ids)
		return LINLI_EINVAL;
	size_t n = strtoul(req->argv[0], NULL, 10);
	for (size_t i = 0; i < n; i++) {
		linli_record *r;
		int rc = api->store_get(ctx, "grids", NULL, ids[next_rand() % n_ids], &r, NULL);
		if (rc)
			return fail(err, errlen, ctx, rc);
		api->rec_free(r);
	}
	return 0;
}

static int count_row(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	(void)ctx;
	(void)row;
	++*(int64_t *)ud;
	return 0;
}

static int cmd_scan(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		    char *err, size_t errlen)
{
	if (req->argc != 1)
		return LINLI_EINVAL;
	struct linli_query q = {.size = sizeof q,
				.dataset = "grids",
				.scope = req->argv[0],
				.limit = LINLI_SCAN_MAX};
	char cursor[LINLI_CURSOR_MAX] = "";
	int64_t rows = 0;
	do {
		q.cursor = cursor;
		int rc = api->store_scan(ctx, &q, count_row, &rows, cursor);
		if (rc < 0)
			return fail(err, errlen, ctx, rc);
	} while (cursor[0]);
	*reply = api->rec_new();
	api->rec_set_int(*reply, "rows", rows);
	return 0;
}

static int bench_init(linli_ctx *ctx, const struct linli_api *a)
{
	api = a;
	int rc = api->cmd_register(ctx, "put", NULL, NULL, cmd_put, NULL);
	if (!rc)
		rc = api->cmd_register(ctx, "get", NULL, NULL, cmd_get, NULL);
	if (!rc)
		rc = api->cmd_register(ctx, "scan", NULL, NULL, cmd_scan, NULL);
	return rc;
}

static void bench_fini(linli_ctx *ctx, const struct linli_api *a)
{
	(void)ctx;
	(void)a;
	free(ids);
	ids = NULL;
	n_ids = cap_ids = 0;
}

LINLI_PLUGIN(bench_init, bench_fini, .name = "tp_storebench", .version = "1.0.0",
	     .family = "custom", .description = "store calls through the table, for bench_sdkstore",
	     .capabilities = {"store.read:grids", "store.write:grids"});
