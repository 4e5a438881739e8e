/*
 * A test application of the device members: "devapp" holds device.read:door
 * and device.command:smoke, but NOT device.command:door. Commands:
 *
 *   devapp cmd ID COMMAND [ARG=INT ...]   dev_command; answers {"rc"} at once
 *                                         and logs the device's answer later:
 *                                         "answer #REQ rc NAME result JSON"
 *   devapp get ID [RESOURCE]              dev_get -> the record, or {"rc"}
 *   devapp info ID                        dev_info -> the record, or {"rc"}
 *   devapp classes                        device_classes -> the array
 *   devapp config                         plugin_config -> the map
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linli/linli.h>

static const struct linli_api *api;

static int reply_rc(linli_record **reply, int rc)
{
	linli_record *r = api->rec_new();
	api->rec_set_int(r, "rc", rc);
	api->rec_set_str(r, "name", linli_errname(rc));
	*reply = r;
	return 0;
}

static void answered(linli_ctx *ctx, uint64_t req, int rc, const linli_record *result,
		     const char *err, void *ud)
{
	(void)ud;
	char json[512];
	api->rec_to_json(result, json, sizeof json, NULL);
	api->log(ctx, LINLI_LOG_INFO, "answer #%llu rc %s result %s err %s",
		 (unsigned long long)req, linli_errname(rc), json, err ? err : "");
}

static int c_cmd(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply, char *err,
		 size_t errlen)
{
	if (req->argc < 2) {
		snprintf(err, errlen, "usage: devapp cmd ID COMMAND [ARG=INT ...]");
		return LINLI_EINVAL;
	}
	linli_record *args = api->rec_new();
	for (int i = 2; i < req->argc; i++) {
		char name[64];
		const char *eq = strchr(req->argv[i], '=');
		if (!eq)
			continue;
		snprintf(name, sizeof name, "%.*s", (int)(eq - req->argv[i]), req->argv[i]);
		api->rec_set_int(args, name, strtoll(eq + 1, NULL, 10));
	}
	uint64_t id = 0;
	int rc = api->dev_command(ctx, req->argv[0], req->argv[1], args, 2000, answered, NULL, &id);
	api->rec_free(args);
	reply_rc(reply, rc);
	api->rec_set_int(*reply, "request", (int64_t)id);
	return 0;
}

static int c_get(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply, char *err,
		 size_t errlen)
{
	if (req->argc < 1 || req->argc > 2) {
		snprintf(err, errlen, "usage: devapp get ID [RESOURCE]");
		return LINLI_EINVAL;
	}
	linli_record *r = NULL;
	int rc = api->dev_get(ctx, req->argv[0], req->argc == 2 ? req->argv[1] : NULL, &r);
	if (rc)
		return reply_rc(reply, rc);
	*reply = r;
	return 0;
}

static int c_info(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply, char *err,
		  size_t errlen)
{
	if (req->argc != 1) {
		snprintf(err, errlen, "usage: devapp info ID");
		return LINLI_EINVAL;
	}
	linli_record *r = NULL;
	int rc = api->dev_info(ctx, req->argv[0], &r);
	if (rc)
		return reply_rc(reply, rc);
	*reply = r;
	return 0;
}

static int c_classes(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		     char *err, size_t errlen)
{
	(void)req, (void)err, (void)errlen;
	return api->device_classes(ctx, reply);
}

static int c_config(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		    char *err, size_t errlen)
{
	(void)req, (void)err, (void)errlen;
	return api->plugin_config(ctx, reply);
}

static int a_init(linli_ctx *ctx, const struct linli_api *a)
{
	api = a;
	int rc = api->cmd_register(ctx, "cmd", NULL, NULL, c_cmd, NULL);
	if (!rc)
		rc = api->cmd_register(ctx, "get", NULL, NULL, c_get, NULL);
	if (!rc)
		rc = api->cmd_register(ctx, "info", NULL, NULL, c_info, NULL);
	if (!rc)
		rc = api->cmd_register(ctx, "classes", NULL, NULL, c_classes, NULL);
	if (!rc)
		rc = api->cmd_register(ctx, "config", NULL, NULL, c_config, NULL);
	return rc;
}

LINLI_PLUGIN(a_init, NULL, .name = "devapp", .version = "1.0.0", .family = "custom",
	     .description = "test application of the device members",
	     .capabilities = {"device.read:door", "device.command:smoke"});
