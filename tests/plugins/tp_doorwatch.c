/*
 * A test subscriber of door events, built twice: `doorwatch` (capability
 * bus.subscribe:dev/door/#) and, with -DCLEAR, `doorclear` (also the grant
 * sensitive:devices). Each logs "NAME saw EVENT holder=VALUE" for every
 * dev/door/+/event/# it receives, so a test reads what a plugin saw.
 */
#include <linli/linli.h>

static const struct linli_api *api;

static int on_door(linli_ctx *ctx, const struct linli_event *ev, void *ud)
{
	(void)ud;
	linli_record *data = NULL;
	const char *event = "?", *holder = "(none)";
	api->rec_get_str(ev->payload, "event", &event, NULL);
	if (api->rec_get_map((linli_record *)ev->payload, "data", &data) == 0)
		api->rec_get_str(data, "holder", &holder, NULL);
	api->log(ctx, LINLI_LOG_INFO, "%s saw %s holder=%s", api->plugin_name(ctx), event, holder);
	return 0;
}

static int watch_init(linli_ctx *ctx, const struct linli_api *a)
{
	api = a;
	return api->subscribe(ctx, "dev/door/+/event/#", on_door, NULL, NULL);
}

static void watch_fini(linli_ctx *ctx, const struct linli_api *a)
{
	(void)ctx;
	(void)a;
}

#ifdef CLEAR
LINLI_PLUGIN(watch_init, watch_fini, .name = "doorclear", .version = "1.0.0", .family = "custom",
	     .description = "logs door events, personal fields in clear",
	     .capabilities = {"bus.subscribe:dev/door/#", "sensitive:devices"});
#else
LINLI_PLUGIN(watch_init, watch_fini, .name = "doorwatch", .version = "1.0.0", .family = "custom",
	     .description = "logs door events", .capabilities = {"bus.subscribe:dev/door/#"});
#endif
