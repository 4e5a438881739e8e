/*
 * Test plugin "good": a well-formed plugin using every 1.0 member group.
 * Commands: `good hello [NAME]` (a record of several types), `good echo`
 * (--stdin JSON back as a record), `good fail` (an error), `good once`
 * (a one-shot timer), `good drop` (unregisters `hello`). A repeating timer
 * logs "good: tick N".
 */
#include <stdio.h>
#include <string.h>

#include <linli/linli.h>

static const struct linli_api *api;
static int ticks;
static uint64_t tick_id;

static void tick(linli_ctx *ctx, void *ud)
{
	(void)ud;
	api->log(ctx, LINLI_LOG_INFO, "tick %d", ++ticks);
}

static void once(linli_ctx *ctx, void *ud)
{
	api->log(ctx, LINLI_LOG_INFO, "one-shot timer fired (%s)", (const char *)ud);
}

static int cmd_hello(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		     char *err, size_t errlen)
{
	if (req->argc > 1) {
		snprintf(err, errlen, "usage: good hello [NAME]");
		return LINLI_EINVAL;
	}
	char text[128];
	snprintf(text, sizeof text, "hello, %s", req->argc ? req->argv[0] : "world");
	linli_record *r = api->rec_new(), *tags, *info;
	if (!r)
		return LINLI_ENOMEM;
	api->rec_set_str(r, "greeting", text);
	api->rec_set_str(r, "plugin", api->plugin_name(ctx));
	api->rec_set_str(r, "scope", api->plugin_scope(ctx));
	api->rec_set_int(r, "ticks", ticks);
	api->rec_set_float(r, "ratio", 0.5);
	api->rec_set_bool(r, "ok", true);
	api->rec_set_time(r, "now", api->time_now_ms());
	api->rec_set_nil(r, "nothing");
	api->rec_set_array(r, "tags", &tags);
	api->arr_push_str(tags, "社区");
	api->arr_push_int(tags, 7);
	api->rec_set_map(r, "sdk", &info);
	api->rec_set_int(info, "major", api->major);
	api->rec_set_int(info, "minor", api->minor);
	api->rec_set_int(info, "table_size", api->size);
	*reply = r;
	return 0;
}

static int cmd_echo(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		    char *err, size_t errlen)
{
	(void)ctx;
	if (!req->input) {
		snprintf(err, errlen, "send a JSON object with --stdin");
		return LINLI_EINVAL;
	}
	return api->rec_from_json(req->input, req->input_len, reply, err, errlen);
}

static int cmd_fail(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		    char *err, size_t errlen)
{
	(void)ctx;
	(void)req;
	*reply = api->rec_new(); /* the kernel frees it on failure */
	snprintf(err, errlen, "this command always fails");
	return LINLI_EPERM;
}

static int cmd_once(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		    char *err, size_t errlen)
{
	(void)req;
	(void)reply;
	(void)err;
	(void)errlen;
	return api->timer_add(ctx, 50, 0, once, "from a command", NULL);
}

static int cmd_drop(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		    char *err, size_t errlen)
{
	(void)req;
	(void)reply;
	(void)err;
	(void)errlen;
	int rc = api->cmd_unregister(ctx, "hello");
	if (!rc)
		rc = api->timer_cancel(ctx, tick_id);
	return rc;
}

static int good_init(linli_ctx *ctx, const struct linli_api *a)
{
	api = a;
	int rc = api->cmd_register(ctx, "hello", "[NAME]", "a greeting record", cmd_hello, NULL);
	if (!rc)
		rc = api->cmd_register(ctx, "echo", "--stdin", "JSON in, record out", cmd_echo,
				       NULL);
	if (!rc)
		rc = api->cmd_register(ctx, "fail", "", "always fails", cmd_fail, NULL);
	if (!rc)
		rc = api->cmd_register(ctx, "once", "", "a one-shot timer", cmd_once, NULL);
	if (!rc)
		rc = api->cmd_register(ctx, "drop", "", "remove hello and the tick", cmd_drop,
				       NULL);
	/* Registering twice is refused. */
	if (!rc && api->cmd_register(ctx, "hello", NULL, NULL, cmd_hello, NULL) != LINLI_EEXIST)
		rc = LINLI_ESTATE;
	if (!rc && api->cmd_register(ctx, "Bad Name", NULL, NULL, cmd_hello, NULL) != LINLI_EINVAL)
		rc = LINLI_ESTATE;
	if (!rc)
		rc = api->timer_add(ctx, 300, 300, tick, NULL, &tick_id);
	if (!rc)
		api->log(ctx, LINLI_LOG_INFO, "init at %s", api->plugin_scope(ctx));
	return rc;
}

static void good_fini(linli_ctx *ctx, const struct linli_api *a)
{
	a->log(ctx, LINLI_LOG_INFO, "fini after %d ticks", ticks);
}

LINLI_PLUGIN(good_init, good_fini,
	     .name = "good",
	     .version = "1.0.0",
	     .family = "custom",
	     .description = "A well-formed test plugin (测试)",
	     .capabilities = {"bus.publish:good/#", "store.read:residents"});
