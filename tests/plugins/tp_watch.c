/*
 * A test plugin of the 1.1 store members: change notices and schemas. Each
 * command makes the call it names and replies with "rc", "name" (LINLI_E...),
 * "error" (api->store_last_error) and the results.
 *
 *   tp_watch watch DATASET      store_watch -> id; every change told is kept
 *                               and logged as "heard KIND DATASET SCOPE ID"
 *   tp_watch unwatch ID         store_unwatch
 *   tp_watch heard              the changes told since the last `heard`, as
 *                               ["KIND DATASET SCOPE ID", ...], and forgets them
 *   tp_watch once DATASET       a watch that stops itself at its first change
 *   tp_watch echo DATASET       a watch that writes record "echo" at the scope
 *                               of each change it is told (never told back)
 *   tp_watch schema DATASET     dataset_schema -> schema
 *   tp_watch datasets           datasets -> list
 *
 * Capabilities: store.read of residents and grids, store.write:grids,
 * catalog.read. Run at a street node: it must never hear a sibling's records.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linli/linli.h>

static const struct linli_api *api;
static linli_record *heard; /* array of strings */
static uint64_t once_id;

static linli_record *result(linli_ctx *ctx, int rc)
{
	linli_record *r = api->rec_new();
	api->rec_set_int(r, "rc", rc);
	api->rec_set_str(r, "name", linli_errname(rc < 0 ? rc : 0));
	api->rec_set_str(r, "error", rc < 0 ? api->store_last_error(ctx) : "");
	return r;
}

static void keep(linli_ctx *ctx, const struct linli_change *ch, const char *how)
{
	char line[600];
	snprintf(line, sizeof line, "%s %s %s %s", ch->kind, ch->dataset, ch->scope, ch->id);
	api->arr_push_str(heard, line);
	api->log(ctx, LINLI_LOG_INFO, "heard%s %s", how, line);
}

static void on_change(linli_ctx *ctx, const struct linli_change *ch, void *ud)
{
	(void)ud;
	keep(ctx, ch, "");
}

static void on_once(linli_ctx *ctx, const struct linli_change *ch, void *ud)
{
	(void)ud;
	keep(ctx, ch, " once");
	int rc = api->store_unwatch(ctx, once_id);
	api->log(ctx, LINLI_LOG_INFO, "once: unwatch rc %d", rc);
}

static void on_echo(linli_ctx *ctx, const struct linli_change *ch, void *ud)
{
	keep(ctx, ch, " echo");
	linli_record *g = api->rec_new();
	api->rec_set_str(g, "code", "echo");
	api->rec_set_str(g, "name", ch->id);
	int rc = api->store_put(ctx, (const char *)ud, ch->scope, "echo", g, NULL, NULL);
	api->rec_free(g);
	api->log(ctx, LINLI_LOG_INFO, "echo: put rc %d", rc);
}

static int cmd_watch(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		     char *err, size_t errlen)
{
	if (req->argc != 1) {
		snprintf(err, errlen, "usage: watch DATASET");
		return LINLI_EINVAL;
	}
	const char *sub = req->ud;
	uint64_t id = 0;
	static char echo_ds[64];
	snprintf(echo_ds, sizeof echo_ds, "%s", req->argv[0]);
	linli_change_fn fn = strcmp(sub, "once") == 0	? on_once
			     : strcmp(sub, "echo") == 0 ? on_echo
							: on_change;
	int rc = api->store_watch(ctx, req->argv[0], fn, echo_ds, &id);
	if (fn == on_once)
		once_id = id;
	*reply = result(ctx, rc);
	api->rec_set_int(*reply, "id", (int64_t)id);
	return 0;
}

static int cmd_unwatch(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		       char *err, size_t errlen)
{
	if (req->argc != 1) {
		snprintf(err, errlen, "usage: unwatch ID");
		return LINLI_EINVAL;
	}
	*reply = result(ctx, api->store_unwatch(ctx, strtoull(req->argv[0], NULL, 10)));
	return 0;
}

static int cmd_heard(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		     char *err, size_t errlen)
{
	(void)req, (void)err, (void)errlen;
	*reply = result(ctx, 0);
	api->rec_set_record(*reply, "heard", heard);
	api->rec_free(heard);
	heard = api->rec_new_array();
	return 0;
}

static int cmd_schema(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		      char *err, size_t errlen)
{
	linli_record *out = NULL;
	bool one = strcmp(req->ud, "schema") == 0;
	if (one && req->argc != 1) {
		snprintf(err, errlen, "usage: schema DATASET");
		return LINLI_EINVAL;
	}
	int rc = one ? api->dataset_schema(ctx, req->argv[0], &out) : api->datasets(ctx, &out);
	*reply = result(ctx, rc);
	if (out)
		api->rec_set_record(*reply, one ? "schema" : "datasets", out);
	api->rec_free(out);
	return 0;
}

static int watch_init(linli_ctx *ctx, const struct linli_api *a)
{
	api = a;
	heard = api->rec_new_array();
	static const struct {
		const char *sub;
		linli_cmd_fn fn;
	} cmds[] = {
	    {"watch", cmd_watch},     {"once", cmd_watch},  {"echo", cmd_watch},
	    {"unwatch", cmd_unwatch}, {"heard", cmd_heard}, {"schema", cmd_schema},
	    {"datasets", cmd_schema},
	};
	int rc = 0;
	for (size_t i = 0; !rc && i < sizeof cmds / sizeof cmds[0]; i++)
		rc = api->cmd_register(ctx, cmds[i].sub, NULL, "try a 1.1 store call", cmds[i].fn,
				       (void *)cmds[i].sub);
	return rc;
}

static void watch_fini(linli_ctx *ctx, const struct linli_api *a)
{
	(void)ctx;
	a->rec_free(heard);
	heard = NULL;
}

LINLI_PLUGIN(watch_init, watch_fini, .name = "tp_watch", .version = "1.0.0", .family = "custom",
	     .description = "test plugin of store change notices and schemas",
	     .capabilities = {"store.read:residents", "store.read:grids", "store.write:grids",
			      "catalog.read"});
