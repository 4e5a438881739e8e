/*
 * sdkapi — see sdkapi.h.
 *
 * A plugin command is registered in the kernel's command registry under the
 * plugin's name with a trampoline (pcmd_run) as handler and its own record
 * as owner, so that each command can be removed alone. A timer wraps a
 * kernel timer; a one-shot one forgets itself before its callback runs, so
 * the callback may add timers or cancel others freely.
 */
#include "sdkapi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "approutes.h"
#include "bus.h"
#include "caller.h"
#include "hal_api.h"
#include "cmd.h"
#include "clock.h"
#include "kernel.h"
#include "log.h"
#include "plugin.h"
#include "record.h"
#include "bus_api.h" /* 1.1 */
#include "hal.h"
#include "store_api.h"
#include "util.h"
#include "watchdog.h"

/* ---- logging and the plugin itself ---- */

static void api_logv(linli_ctx *ctx, int level, const char *fmt, va_list ap)
{
	if (level < LINLI_LOG_ERROR)
		level = LINLI_LOG_ERROR;
	if (level > LINLI_LOG_DEBUG)
		level = LINLI_LOG_DEBUG;
	log_vmsg((enum log_level)level, plug_name(plug_from_ctx(ctx)), fmt, ap);
}

__attribute__((format(printf, 3, 4))) static void api_log(linli_ctx *ctx, int level,
							  const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	api_logv(ctx, level, fmt, ap);
	va_end(ap);
}

__attribute__((format(printf, 2, 3))) static void api_set_error(linli_ctx *ctx, const char *fmt,
								...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	plug_set_error(plug_from_ctx(ctx), msg);
}

static const char *api_plugin_name(linli_ctx *ctx) { return plug_name(plug_from_ctx(ctx)); }

static const char *api_plugin_scope(linli_ctx *ctx)
{
	return plug_scope(plug_from_ctx(ctx));
}

static void api_set_userdata(linli_ctx *ctx, void *ud)
{
	plug_set_userdata(plug_from_ctx(ctx), ud);
}

static void *api_userdata(linli_ctx *ctx) { return plug_userdata(plug_from_ctx(ctx)); }

static int64_t api_time_now_ms(void) { return wall_ms(); }

/* ---- time, since 1.1: the node's zone (clock.h) ---- */

static const char *api_time_zone(linli_ctx *ctx)
{
	return plug_kernel(plug_from_ctx(ctx))->cfg.time_zone;
}

static int api_time_local(linli_ctx *ctx, int64_t ms, struct linli_tm *out)
{
	(void)ctx;
	return clock_local(ms, out);
}

static int api_time_from_local(linli_ctx *ctx, const struct linli_tm *t, int64_t *ms)
{
	(void)ctx;
	return clock_from_local(t, ms);
}

static int api_time_day_start(linli_ctx *ctx, int64_t ms, int64_t days, int64_t *out)
{
	(void)ctx;
	return clock_day_start(ms, days, out);
}

/* ---- console commands ---- */

#define SUB_MAX 64

struct pcmd {
	struct plugin *p;
	struct plug_res *res;
	char sub[SUB_MAX];
	char *usage, *summary;
	linli_cmd_fn fn;
	void *ud;
	bool registered;
	char action[CALLER_ACTION_MAX + 1]; /* required of every caller (cmd_require); "" none */
};

static int pcmd_run(struct cmd_call *call, void *ud)
{
	struct pcmd *c = ud;
	/* The handler may unregister its own command: copy what is used after it. */
	struct plugin *p = c->p;
	struct caller_view cv;
	if (call->who)
		caller_view_make(&cv, call->who, NULL);
	struct linli_cmd_req req = {
		.size = sizeof req,
		.argc = call->argc - 2,
		.argv = (const char *const *)call->argv + 2,
		.input = call->input,
		.input_len = call->input_len,
		.ud = c->ud,
		.caller = call->who ? &cv.pub : NULL,
	};
	linli_record *out = NULL;
	char err[768] = "";
	struct plug_acting saved;
	int rc = caller_serve_begin(p, call->who, req.caller, c->action[0] ? c->action : NULL,
				    &saved, err, sizeof err);
	if (rc)
		return cmd_fail(call, rc, "%s %s: %s", call->argv[0], call->argv[1], err);
	char words[WD_DETAIL_MAX];
	snprintf(words, sizeof words, "%s %s", call->argv[0], call->argv[1]);
	struct wd_frame wd;
	wd_enter(&wd, plug_name(p), "command", words, 0);
	rc = c->fn(plug_ctx(p), &req, &out, err, sizeof err);
	wd_leave(&wd);
	caller_serve_end(p, &saved);
	if (rc) {
		record_free(out);
		int code = rc < 0 ? rc : LINLI_EINVAL;
		return cmd_fail(call, code, "%s %s: %s", call->argv[0], call->argv[1],
				err[0] ? err : linli_strerror(rc));
	}
	if (out) {
		record_pack(out, &call->pk);
		record_free(out);
	}
	return 0;
}

static int pcmd_register(struct pcmd *c)
{
	struct kernel *k = plug_kernel(c->p);
	int rc = cmd_register(k->cmds, plug_name(c->p), c->sub, c->usage, c->summary, pcmd_run, c,
			      c);
	c->registered = rc == 0;
	return rc;
}

static void pcmd_withdraw(struct pcmd *c)
{
	if (c->registered)
		cmd_unregister_owner(plug_kernel(c->p)->cmds, c);
	c->registered = false;
}

static void pcmd_release(void *arg)
{
	struct pcmd *c = arg;
	pcmd_withdraw(c);
	free(c->usage);
	free(c->summary);
	free(c);
}

static int pcmd_suspend(void *arg)
{
	pcmd_withdraw(arg);
	return 0;
}

static int pcmd_resume(void *arg) { return pcmd_register(arg); }

static void pcmd_describe(void *arg, char *buf, size_t len)
{
	struct pcmd *c = arg;
	snprintf(buf, len, "%s %s%s%s", plug_name(c->p), c->sub, c->action[0] ? ", needs " : "",
		 c->action);
}

static const struct plug_res_ops pcmd_ops = {
	.kind = "command",
	.release = pcmd_release,
	.suspend = pcmd_suspend,
	.resume = pcmd_resume,
	.describe = pcmd_describe,
};

static bool pcmd_match(void *arg, const void *key)
{
	return strcmp(((struct pcmd *)arg)->sub, key) == 0;
}

static bool valid_sub(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n >= SUB_MAX || !(s[0] >= 'a' && s[0] <= 'z'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		      s[i] == '-'))
			return false;
	return true;
}

static int api_cmd_register(linli_ctx *ctx, const char *sub, const char *usage,
			    const char *summary, linli_cmd_fn fn, void *ud)
{
	struct plugin *p = plug_from_ctx(ctx);
	if (!valid_sub(sub) || !fn)
		return LINLI_EINVAL;
	if (plug_find_res(p, &pcmd_ops, pcmd_match, sub, NULL))
		return LINLI_EEXIST;
	struct pcmd *c = calloc(1, sizeof *c);
	if (!c)
		return LINLI_ENOMEM;
	c->p = p;
	snprintf(c->sub, sizeof c->sub, "%s", sub);
	c->usage = strdup(usage ? usage : "");
	c->summary = strdup(summary ? summary : "");
	c->fn = fn;
	c->ud = ud;
	int rc = c->usage && c->summary ? pcmd_register(c) : LINLI_ENOMEM;
	if (!rc && !(c->res = plug_track(p, &pcmd_ops, c)))
		rc = LINLI_ENOMEM;
	if (rc) {
		pcmd_release(c);
		return rc;
	}
	return 0;
}

static int api_cmd_require(linli_ctx *ctx, const char *sub, const char *action)
{
	struct plugin *p = plug_from_ctx(ctx);
	if (!sub || !action)
		return LINLI_EINVAL;
	struct pcmd *c = plug_find_res(p, &pcmd_ops, pcmd_match, sub, NULL);
	if (!c || !caller_action_exists(p, action)) {
		log_warn(plug_name(p), "cmd_require %s %s: no such %s of this plugin", sub, action,
			 c ? "action" : "command");
		return LINLI_ENOENT;
	}
	snprintf(c->action, sizeof c->action, "%s", action);
	return 0;
}

static int api_cmd_unregister(linli_ctx *ctx, const char *sub)
{
	struct plugin *p = plug_from_ctx(ctx);
	if (!sub)
		return LINLI_EINVAL;
	struct plug_res *res;
	if (!plug_find_res(p, &pcmd_ops, pcmd_match, sub, &res))
		return LINLI_ENOENT;
	plug_release(p, res);
	return 0;
}

/* ---- timers ---- */

struct ptimer {
	struct plugin *p;
	struct plug_res *res;
	uint64_t kid, interval;
	linli_timer_fn fn;
	void *ud;
};

static void ptimer_fire(struct kernel *k, void *arg)
{
	(void)k;
	struct ptimer *t = arg;
	struct plugin *p = t->p;
	linli_timer_fn fn = t->fn;
	void *ud = t->ud;
	uint64_t kid = t->kid;
	if (!t->interval) { /* the kernel has dropped it already */
		plug_untrack(p, t->res);
		free(t);
	}
	struct wd_frame wd;
	wd_enter(&wd, plug_name(p), "timer", NULL, kid);
	fn(plug_ctx(p), ud);
	wd_leave(&wd);
}

static void ptimer_release(void *arg)
{
	struct ptimer *t = arg;
	kernel_timer_cancel(plug_kernel(t->p), t->kid);
	free(t);
}

static void ptimer_describe(void *arg, char *buf, size_t len)
{
	struct ptimer *t = arg;
	plug_describe_timer(buf, len, t->kid, t->interval);
}

static const struct plug_res_ops ptimer_ops = {
	.kind = "timer",
	.release = ptimer_release,
	.describe = ptimer_describe,
};

static bool ptimer_match(void *arg, const void *key)
{
	return ((struct ptimer *)arg)->kid == *(const uint64_t *)key;
}

static int api_timer_add(linli_ctx *ctx, uint64_t delay_ms, uint64_t interval_ms,
			 linli_timer_fn fn, void *ud, uint64_t *id)
{
	struct plugin *p = plug_from_ctx(ctx);
	if (!fn)
		return LINLI_EINVAL;
	struct ptimer *t = calloc(1, sizeof *t);
	if (!t)
		return LINLI_ENOMEM;
	t->p = p;
	t->interval = interval_ms;
	t->fn = fn;
	t->ud = ud;
	if (!(t->res = plug_track(p, &ptimer_ops, t))) {
		free(t);
		return LINLI_ENOMEM;
	}
	t->kid = kernel_timer_add(plug_kernel(p), delay_ms, interval_ms, ptimer_fire, t);
	if (!t->kid) {
		plug_untrack(p, t->res);
		free(t);
		return LINLI_ENOMEM;
	}
	if (id)
		*id = t->kid;
	return 0;
}

static int api_timer_cancel(linli_ctx *ctx, uint64_t id)
{
	struct plugin *p = plug_from_ctx(ctx);
	struct plug_res *res;
	if (!plug_find_res(p, &ptimer_ops, ptimer_match, &id, &res))
		return LINLI_ENOENT;
	plug_release(p, res);
	return 0;
}

/* ---- the event bus ----
 *
 * Each subscription has a trampoline (psub) that turns the bus's MessagePack
 * payload into a record for the plugin. The psub is the bus subscription's
 * owner and ud; the bus frees it (bus_set_release) once the subscription is
 * gone and its handler is not running, so a plugin may unsubscribe from
 * inside its own handler.
 */

struct psub {
	struct plugin *p;
	struct plug_res *res;
	uint64_t id;
	linli_event_fn fn;
	void *ud;
	char pattern[BUS_TOPIC_MAX + 1];
};

/* Does plugin p read device events' personal fields in clear (sensitive:devices)? */
static bool psub_clear(struct plugin *p)
{
	struct tier_principal who;
	const char *grants[LINLI_MAX_CAPS + 1];
	plug_principal(p, &who, grants);
	return tier_sees_sensitive(&who, HAL_SENSITIVE_DATASET);
}

static int psub_deliver(const struct bus_event *ev, void *ud)
{
	struct psub *s = ud;
	linli_record *payload = NULL;
	char err[256];
	const void *data = ev->payload;
	size_t len = ev->payload_len;
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	if (hal_event_sensitive(plug_kernel(s->p)->catalog, ev->topic) && !psub_clear(s->p) &&
	    hal_event_mask(plug_kernel(s->p)->catalog, ev->topic, data, len, &sb)) {
		data = sb.data;
		len = sb.size;
	}
	int rc = record_from_bytes(data, len, &payload, err, sizeof err);
	msgpack_sbuffer_destroy(&sb);
	if (rc) {
		log_warn(plug_name(s->p), "event %s: payload refused: %s", ev->topic, err);
		return rc;
	}
	struct linli_event le = {
		.size = sizeof le,
		.seq = ev->seq,
		.time_ms = (int64_t)ev->time_ms,
		.topic = ev->topic,
		.publisher = ev->publisher,
		.scope = ev->scope,
		.payload = payload,
		.consequence = ev->cls == BUS_CONSEQUENCE,
	};
	struct wd_frame wd;
	wd_enter(&wd, plug_name(s->p), "event handler", ev->topic, 0);
	rc = s->fn(plug_ctx(s->p), &le, s->ud);
	wd_leave(&wd);
	record_free(payload);
	return rc;
}

static void psub_free(void *ud) { free(ud); }

/* Tracked-resource release: the bus frees the psub when it is safe. */
static void psub_release(void *arg)
{
	struct psub *s = arg;
	bus_unsubscribe(plug_kernel(s->p)->bus, s->id, s);
}

static void psub_describe(void *arg, char *buf, size_t len)
{
	struct psub *s = arg;
	snprintf(buf, len, "subscription %llu to %s", (unsigned long long)s->id, s->pattern);
}

static const struct plug_res_ops psub_ops = {
	.kind = "subscription",
	.release = psub_release,
	.describe = psub_describe,
};

static bool psub_match(void *arg, const void *key)
{
	return ((struct psub *)arg)->id == *(const uint64_t *)key;
}

static int api_subscribe(linli_ctx *ctx, const char *pattern, linli_event_fn fn, void *ud,
			 uint64_t *id)
{
	struct plugin *p = plug_from_ctx(ctx);
	struct kernel *k = plug_kernel(p);
	char err[256];
	if (!pattern || !fn)
		return LINLI_EINVAL;
	int rc = plug_authorize(p, ACT_EVENTS_SUBSCRIBE, plug_scope(p), pattern, err,
				sizeof err);
	if (rc) {
		log_warn(plug_name(p), "subscribe %s: %s", pattern, err);
		return rc;
	}
	struct psub *s = calloc(1, sizeof *s);
	if (!s)
		return LINLI_ENOMEM;
	s->p = p;
	s->fn = fn;
	s->ud = ud;
	snprintf(s->pattern, sizeof s->pattern, "%s", pattern);
	rc = bus_subscribe(k->bus, pattern, plug_scope(p), psub_deliver, s, s, plug_name(p),
			   &s->id, err, sizeof err);
	if (rc) {
		log_warn(plug_name(p), "subscribe %s: %s", pattern, err);
		free(s);
		return rc;
	}
	bus_set_release(k->bus, s->id, psub_free);
	if (!(s->res = plug_track(p, &psub_ops, s))) {
		bus_unsubscribe(k->bus, s->id, s); /* frees s through psub_free */
		return LINLI_ENOMEM;
	}
	if (id)
		*id = s->id;
	return 0;
}

static int api_unsubscribe(linli_ctx *ctx, uint64_t id)
{
	struct plugin *p = plug_from_ctx(ctx);
	struct plug_res *res;
	if (!plug_find_res(p, &psub_ops, psub_match, &id, &res))
		return LINLI_ENOENT;
	plug_release(p, res);
	return 0;
}

static int api_publish(linli_ctx *ctx, const char *topic, const char *scope,
		       const linli_record *payload, uint64_t *seq)
{
	struct plugin *p = plug_from_ctx(ctx);
	struct kernel *k = plug_kernel(p);
	char err[256];
	if (!topic)
		return LINLI_EINVAL;
	if (!scope)
		scope = plug_scope_now(p);
	int rc = plug_authorize(p, ACT_EVENTS_PUBLISH, scope, topic, err, sizeof err);
	if (rc) {
		log_warn(plug_name(p), "publish %s: %s", topic, err);
		return rc;
	}
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (payload && (rc = record_pack(payload, &pk)) != 0) {
		msgpack_sbuffer_destroy(&sb);
		return rc;
	}
	struct bus_msg m = {.topic = topic,
			    .publisher = plug_name(p),
			    .scope = scope,
			    .payload = sb.data,
			    .payload_len = sb.size};
	rc = bus_publish(k->bus, &m, seq, err, sizeof err);
	msgpack_sbuffer_destroy(&sb);
	if (rc && rc != LINLI_EBUSY)
		log_warn(plug_name(p), "publish %s: %s", topic, err);
	return rc;
}

/* ---- the table ---- */

static const struct linli_api table = {
	.size = sizeof(struct linli_api),
	.major = LINLI_SDK_MAJOR,
	.minor = LINLI_SDK_MINOR,
	/* logging */
	.log = api_log,
	.logv = api_logv,
	.set_error = api_set_error,
	/* the plugin */
	.plugin_name = api_plugin_name,
	.plugin_scope = api_plugin_scope,
	.set_userdata = api_set_userdata,
	.userdata = api_userdata,
	.time_now_ms = api_time_now_ms,
	/* commands */
	.cmd_register = api_cmd_register,
	.cmd_unregister = api_cmd_unregister,
	/* timers */
	.timer_add = api_timer_add,
	.timer_cancel = api_timer_cancel,
	/* records */
	.rec_new = record_new,
	.rec_new_array = record_new_array,
	.rec_free = record_free,
	.rec_copy = record_copy,
	.rec_kind = record_kind,
	.rec_count = record_count,
	.rec_key = record_key,
	.rec_type = record_type,
	.rec_has = record_has,
	.rec_remove = record_remove,
	.rec_get_str = record_get_str,
	.rec_get_bin = record_get_bin,
	.rec_get_int = record_get_int,
	.rec_get_float = record_get_float,
	.rec_get_bool = record_get_bool,
	.rec_get_time = record_get_time,
	.rec_get_map = record_get_map,
	.rec_get_array = record_get_array,
	.rec_set_str = record_set_str,
	.rec_set_strn = record_set_strn,
	.rec_set_bin = record_set_bin,
	.rec_set_int = record_set_int,
	.rec_set_float = record_set_float,
	.rec_set_bool = record_set_bool,
	.rec_set_time = record_set_time,
	.rec_set_nil = record_set_nil,
	.rec_set_map = record_set_map,
	.rec_set_array = record_set_array,
	.rec_set_record = record_set_record,
	.arr_type = record_arr_type,
	.arr_get_str = record_arr_get_str,
	.arr_get_bin = record_arr_get_bin,
	.arr_get_int = record_arr_get_int,
	.arr_get_float = record_arr_get_float,
	.arr_get_bool = record_arr_get_bool,
	.arr_get_time = record_arr_get_time,
	.arr_get_map = record_arr_get_map,
	.arr_get_array = record_arr_get_array,
	.arr_push_str = record_arr_push_str,
	.arr_push_strn = record_arr_push_strn,
	.arr_push_bin = record_arr_push_bin,
	.arr_push_int = record_arr_push_int,
	.arr_push_float = record_arr_push_float,
	.arr_push_bool = record_arr_push_bool,
	.arr_push_time = record_arr_push_time,
	.arr_push_nil = record_arr_push_nil,
	.arr_push_map = record_arr_push_map,
	.arr_push_array = record_arr_push_array,
	.arr_push_record = record_arr_push_record,
	.arr_remove = record_arr_remove,
	.rec_to_json = record_to_json,
	.rec_from_json = record_from_json,
	/* the bus */
	.subscribe = api_subscribe,
	.unsubscribe = api_unsubscribe,
	.publish = api_publish,
	/* the store (store_api.c) */
	.store_get = store_api_get,
	.store_put = store_api_put,
	.store_delete = store_api_delete,
	.store_scan = store_api_scan,
	.store_update = store_api_update,
	.store_on_commit = store_api_on_commit,
	.store_last_error = store_api_last_error,
	/* devices (HAL) */
	.plugin_config = hal_api_plugin_config,
	.device_classes = hal_api_device_classes,
	.driver_register = hal_api_driver_register,
	.dev_post = hal_api_dev_post,
	.dev_event = hal_api_dev_event,
	.dev_command_done = hal_api_dev_command_done,
	.dev_found = hal_api_dev_found,
	.dev_auth = hal_api_dev_auth,
	.dev_info = hal_api_dev_info,
	.dev_get = hal_api_dev_get,
	.dev_command = hal_api_dev_command,
	/* ---- 1.1: the caller, acting as the caller, actions, duties ---- */
	.action_declare = caller_api_action_declare,
	.cmd_require = api_cmd_require,
	.caller_may = caller_api_may,
	.duty_holders = caller_api_duty_holders,

	/* ---- 1.1: plugin HTTP routes ---- */
	.route_register = approutes_api_register,
	.route_require = approutes_api_require,
	.route_unregister = approutes_api_unregister,

	/* ---- 1.1: bus request/reply ---- */
	.serve = bus_api_serve,
	.unserve = bus_api_unserve,
	.reply = bus_api_reply,
	.request = bus_api_request,
	.request_cancel = bus_api_request_cancel,

	/* ---- 1.1: store range filters, change notifications, schemas ---- */
	.store_watch = store_api_watch,
	.store_unwatch = store_api_unwatch,
	.dataset_schema = store_api_dataset_schema,
	.datasets = store_api_datasets,

	/* ---- 1.1: devices waiting for a commit ---- */
	.dev_event_wait = hal_api_dev_event_wait,

	/* ---- 1.1: time ---- */
	.time_zone = api_time_zone,
	.time_local = api_time_local,
	.time_from_local = api_time_from_local,
	.time_day_start = api_time_day_start,

	/* ---- 1.1: the audit log ---- */
	.audit = caller_api_audit,

	/* ---- 1.1: devices, availability from the driver ---- */
	.dev_available = hal_api_dev_available,

	/* ---- later subsystems: fill their members here, in the order of api.h ---- */
};

const struct linli_api *sdkapi_table(void) { return &table; }
