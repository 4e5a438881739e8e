/*
 * A test plugin of the bus members of the function table. It subscribes to
 * test/in/# (declared capability bus.subscribe:test/in/#) and answers each
 * event by publishing test/out/<last level of the topic> with the payload's
 * "n" doubled and the event's scope (capability bus.publish:test/out/#). Its
 * commands try what it was not granted and report the return codes:
 *   tp_bus forbidden   publish on alarm/x (not declared)      -> rc
 *   tp_bus outside     publish for a scope outside the node   -> rc
 *   tp_bus subwide     subscribe to # (wider than declared)   -> rc
 *   tp_bus stop        unsubscribe its subscription           -> rc
 */
#include <stdio.h>
#include <string.h>

#include <linli/linli.h>

static const struct linli_api *api;
static uint64_t sub_id;
static int64_t seen;

static int on_in(linli_ctx *ctx, const struct linli_event *ev, void *ud)
{
	(void)ud;
	int64_t n = 0;
	if (api->rec_get_int(ev->payload, "n", &n) != 0)
		return LINLI_EINVAL; /* logged by the kernel; others still get it */
	seen++;
	linli_record *out = api->rec_new();
	api->rec_set_int(out, "n2", 2 * n);
	api->rec_set_int(out, "seen", seen);
	api->rec_set_str(out, "from", ev->publisher);
	char topic[128];
	const char *last = strrchr(ev->topic, '/');
	snprintf(topic, sizeof topic, "test/out/%s", last ? last + 1 : ev->topic);
	int rc = api->publish(ctx, topic, ev->scope, out, NULL);
	api->rec_free(out);
	return rc;
}

static int reply_rc(linli_record **reply, int rc)
{
	linli_record *r = api->rec_new();
	api->rec_set_int(r, "rc", rc);
	api->rec_set_str(r, "error", linli_strerror(rc));
	*reply = r;
	return 0;
}

static int cmd_try(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		   char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	const char *what = req->ud;
	linli_record *p = api->rec_new();
	int rc;
	if (strcmp(what, "forbidden") == 0)
		rc = api->publish(ctx, "alarm/x", NULL, p, NULL);
	else if (strcmp(what, "outside") == 0)
		rc = api->publish(ctx, "test/out/x", "shanghai", p, NULL);
	else if (strcmp(what, "subwide") == 0)
		rc = api->subscribe(ctx, "#", on_in, NULL, NULL);
	else
		rc = api->unsubscribe(ctx, sub_id);
	api->rec_free(p);
	return reply_rc(reply, rc);
}

static int bus_init(linli_ctx *ctx, const struct linli_api *a)
{
	api = a;
	int rc = api->subscribe(ctx, "test/in/#", on_in, NULL, &sub_id);
	static const char *const cmds[] = {"forbidden", "outside", "subwide", "stop"};
	for (size_t i = 0; !rc && i < 4; i++)
		rc = api->cmd_register(ctx, cmds[i], "", "try a bus call", cmd_try,
				       (void *)cmds[i]);
	return rc;
}

static void bus_fini(linli_ctx *ctx, const struct linli_api *a)
{
	(void)ctx;
	(void)a;
}

LINLI_PLUGIN(bus_init, bus_fini,
	     .name = "tp_bus",
	     .version = "1.0.0",
	     .family = "custom",
	     .description = "test plugin of the bus table members",
	     .capabilities = {"bus.subscribe:test/in/#", "bus.publish:test/out/#"});
