/*
 * Test plugin "reloadme", built in three variants (VARIANT 1, 2, 3): `reloadme
 * version` answers its variant; variant 3's init fails after registering its
 * command, so a reload to it must leave the running variant in place.
 */
#include <stdio.h>

#include <linli/linli.h>

#define STR_(x) #x
#define STR(x) STR_(x)

static const struct linli_api *api;

static int cmd_version(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		       char *err, size_t errlen)
{
	(void)ctx;
	(void)req;
	(void)err;
	(void)errlen;
	linli_record *r = api->rec_new();
	api->rec_set_int(r, "variant", VARIANT);
	*reply = r;
	return 0;
}

static void tick(linli_ctx *ctx, void *ud)
{
	(void)ud;
	api->log(ctx, LINLI_LOG_DEBUG, "variant %d tick", VARIANT);
}

static int reload_init(linli_ctx *ctx, const struct linli_api *a)
{
	api = a;
	api->log(ctx, LINLI_LOG_INFO, "variant %d init", VARIANT);
	int rc = api->cmd_register(ctx, "version", "", "which variant runs", cmd_version, NULL);
	if (!rc)
		rc = api->timer_add(ctx, 50, 50, tick, NULL, NULL);
	if (!rc && VARIANT == 3) {
		api->set_error(ctx, "variant 3 always fails");
		return LINLI_EIO;
	}
	return rc;
}

static void reload_fini(linli_ctx *ctx, const struct linli_api *a)
{
	a->log(ctx, LINLI_LOG_INFO, "variant %d fini", VARIANT);
}

LINLI_PLUGIN(reload_init, reload_fini,
	     .name = "reloadme",
	     .version = STR(VARIANT) ".0.0",
	     .family = "custom",
	     .description = "reload test, variant " STR(VARIANT));
