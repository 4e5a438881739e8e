/*
 * Test plugin "failinit": init registers a command and a timer, then fails.
 * The kernel must remove both: `failinit hello` is unknown afterwards and the
 * timer never fires (it would log "TIMER FIRED", and, with the plugin's code
 * unmapped, crash the daemon).
 */
#include <linli/linli.h>

static const struct linli_api *api;

static void fire(linli_ctx *ctx, void *ud)
{
	(void)ud;
	api->log(ctx, LINLI_LOG_ERROR, "TIMER FIRED");
}

static int cmd_hello(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		     char *err, size_t errlen)
{
	(void)ctx;
	(void)req;
	(void)reply;
	(void)err;
	(void)errlen;
	return 0;
}

static int failinit_init(linli_ctx *ctx, const struct linli_api *a)
{
	api = a;
	int rc = api->cmd_register(ctx, "hello", "", "must vanish", cmd_hello, NULL);
	if (!rc)
		rc = api->timer_add(ctx, 100, 100, fire, NULL, NULL);
	if (!rc)
		rc = api->timer_add(ctx, 150, 0, fire, NULL, NULL);
	if (rc)
		return rc;
	api->set_error(ctx, "cannot find the thing it needs");
	return LINLI_ECONFIG;
}

static void failinit_fini(linli_ctx *ctx, const struct linli_api *a)
{
	a->log(ctx, LINLI_LOG_ERROR, "FINI MUST NOT RUN after a failed init");
}

LINLI_PLUGIN(failinit_init, failinit_fini,
	     .name = "failinit",
	     .version = "0.0.1",
	     .family = "custom",
	     .description = "init fails after registering a command and a timer");
