/*
 * Test plugin "timecheck": the 1.1 time members through the C table.
 * Commands: `timecheck zone`, `timecheck local MS`, `timecheck from Y M D h m
 * s ms`, `timecheck daystart MS DAYS`, `timecheck small` (a struct of a
 * size below 1.1's), `timecheck arm DELAY_MS [INTERVAL_MS]` (a timer) and
 * `timecheck fired` (how often it fired and time_now_ms when it last did).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linli/linli.h>

static const struct linli_api *api;
static int fired;
static int64_t fired_at;

static int64_t num(const char *s)
{
	return strtoll(s, NULL, 10);
}

static int usage(char *err, size_t errlen, const char *u)
{
	snprintf(err, errlen, "usage: timecheck %s", u);
	return LINLI_EINVAL;
}

static int cmd_zone(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		    char *err, size_t errlen)
{
	if (req->argc != 0)
		return usage(err, errlen, "zone");
	linli_record *r = api->rec_new();
	if (!r)
		return LINLI_ENOMEM;
	api->rec_set_str(r, "zone", api->time_zone(ctx));
	*reply = r;
	return 0;
}

static int cmd_local(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		     char *err, size_t errlen)
{
	if (req->argc != 1)
		return usage(err, errlen, "local MS");
	struct linli_tm t = {.size = sizeof t};
	int rc = api->time_local(ctx, num(req->argv[0]), &t);
	if (rc) {
		snprintf(err, errlen, "time_local(%s): %s", req->argv[0], linli_strerror(rc));
		return rc;
	}
	linli_record *r = api->rec_new();
	if (!r)
		return LINLI_ENOMEM;
	const struct {
		const char *k;
		int32_t v;
	} f[] = {{"year", t.year},	 {"month", t.month},
		 {"day", t.day},	 {"hour", t.hour},
		 {"minute", t.minute},	 {"second", t.second},
		 {"ms", t.ms},		 {"weekday", t.weekday},
		 {"yearday", t.yearday}, {"utc_offset_s", t.utc_offset_s}};
	for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
		api->rec_set_int(r, f[i].k, f[i].v);
	api->rec_set_bool(r, "dst", t.dst != 0);
	*reply = r;
	return 0;
}

static int cmd_from(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		    char *err, size_t errlen)
{
	if (req->argc != 7)
		return usage(err, errlen, "from Y M D h m s ms");
	struct linli_tm t = {.size = sizeof t,
			     .year = (int32_t)num(req->argv[0]),
			     .month = (int32_t)num(req->argv[1]),
			     .day = (int32_t)num(req->argv[2]),
			     .hour = (int32_t)num(req->argv[3]),
			     .minute = (int32_t)num(req->argv[4]),
			     .second = (int32_t)num(req->argv[5]),
			     .ms = (int32_t)num(req->argv[6])};
	int64_t ms = -1;
	int rc = api->time_from_local(ctx, &t, &ms);
	if (rc) {
		snprintf(err, errlen, "time_from_local: %s", linli_strerror(rc));
		return rc;
	}
	linli_record *r = api->rec_new();
	if (!r)
		return LINLI_ENOMEM;
	api->rec_set_int(r, "ms", ms);
	*reply = r;
	return 0;
}

static int cmd_daystart(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
			char *err, size_t errlen)
{
	if (req->argc != 2)
		return usage(err, errlen, "daystart MS DAYS");
	int64_t ms = -1;
	int rc = api->time_day_start(ctx, num(req->argv[0]), num(req->argv[1]), &ms);
	if (rc) {
		snprintf(err, errlen, "time_day_start: %s", linli_strerror(rc));
		return rc;
	}
	linli_record *r = api->rec_new();
	if (!r)
		return LINLI_ENOMEM;
	api->rec_set_int(r, "ms", ms);
	*reply = r;
	return 0;
}

static int cmd_small(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		     char *err, size_t errlen)
{
	(void)req;
	(void)err;
	(void)errlen;
	struct linli_tm t = {.size = offsetof(struct linli_tm, ms)};
	int64_t ms;
	linli_record *r = api->rec_new();
	if (!r)
		return LINLI_ENOMEM;
	api->rec_set_int(r, "local", api->time_local(ctx, 0, &t));
	api->rec_set_int(r, "from", api->time_from_local(ctx, &t, &ms));
	api->rec_set_int(r, "daystart_null", api->time_day_start(ctx, 0, 0, NULL));
	*reply = r;
	return 0;
}

static void on_timer(linli_ctx *ctx, void *ud)
{
	(void)ctx;
	(void)ud;
	fired++;
	fired_at = api->time_now_ms();
}

static int cmd_arm(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply, char *err,
		   size_t errlen)
{
	(void)reply;
	if (req->argc < 1 || req->argc > 2)
		return usage(err, errlen, "arm DELAY_MS [INTERVAL_MS]");
	return api->timer_add(ctx, (uint64_t)num(req->argv[0]),
			      req->argc == 2 ? (uint64_t)num(req->argv[1]) : 0, on_timer, NULL,
			      NULL);
}

static int cmd_fired(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		     char *err, size_t errlen)
{
	(void)ctx;
	(void)req;
	(void)err;
	(void)errlen;
	linli_record *r = api->rec_new();
	if (!r)
		return LINLI_ENOMEM;
	api->rec_set_int(r, "fired", fired);
	api->rec_set_int(r, "at", fired_at);
	api->rec_set_int(r, "now", api->time_now_ms());
	*reply = r;
	return 0;
}

static int tc_init(linli_ctx *ctx, const struct linli_api *a)
{
	api = a;
	if (!LINLI_API_HAS(a, time_day_start)) {
		a->set_error(ctx, "the kernel's table has no time members");
		return LINLI_EVERSION;
	}
	static const struct {
		const char *sub, *usage;
		linli_cmd_fn fn;
	} cmds[] = {{"zone", "", cmd_zone},
		    {"local", "MS", cmd_local},
		    {"from", "Y M D h m s ms", cmd_from},
		    {"daystart", "MS DAYS", cmd_daystart},
		    {"small", "", cmd_small},
		    {"arm", "DELAY_MS [INTERVAL_MS]", cmd_arm},
		    {"fired", "", cmd_fired}};
	int rc = 0;
	for (size_t i = 0; !rc && i < sizeof cmds / sizeof cmds[0]; i++)
		rc = api->cmd_register(ctx, cmds[i].sub, cmds[i].usage, NULL, cmds[i].fn, NULL);
	return rc;
}

LINLI_PLUGIN(tc_init, NULL, .name = "timecheck", .version = "1.0.0", .family = "custom",
	     .description = "the 1.1 time members through the C table");
