/*
 * script_api — see script_api.h.
 *
 * Conventions of the Lua side (sdk/lua-api.md): a function that succeeds
 * returns its result (an id, a seq, true); one that is refused or fails
 * returns nil, a message and the LINLI_E* code's name ("LINLI_EPERM"), and
 * logs like its C twin; a wrong argument type is a Lua error. Records are
 * plain tables (script_push_mp / script_pack).
 *
 * A resource (struct lres header) is on its context's list, and for a script
 * plugin also tracked on the plugin with plug_track; its release unlinks it
 * and undoes it. Releases never touch the Lua state (they also run after a
 * fault and before lua_close): the Lua functions that cancel something drop
 * its function reference themselves, in protected mode. A trampoline copies
 * what it needs before calling into the script and touches nothing of its
 * resource afterwards: the call may have released it (unsubscribe from
 * inside the handler, a fault).
 */
#include "script_api.h"

#include <lauxlib.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "access.h"
#include "bus.h"
#include "approutes.h"
#include "caller.h"
#include "cmd.h"
#include "clock.h"
#include "hal.h"
#include "hal_api.h"
#include "kernel.h"
#include "linli/error.h"
#include "log.h"
#include "mp.h"
#include "plugin.h"
#include "record.h"
#include "script.h"
#include "store.h"
#include "store_api.h"
#include "tier.h"
#include "util.h"

#define API_CALL_UNITS 100 /* budget charged for one API call that does work */
#define ROW_UNITS      20  /* and for each row of a scan, besides 1 per 64 bytes */
#define SUB_MAX	       64  /* a command's sub-word, like sdkapi.c's */
/* A command's or a route's reply: what the console receives at most (nng's default). */
#define REPLY_MAX ((size_t)1 << 20)

struct lres;

struct sapi {
	struct kernel *k;
	struct script *s;
	struct plugin *p;    /* a script plugin's entry; NULL for a rule */
	const char **grants; /* a rule's capabilities, NULL-terminated (borrowed strings) */
	struct lres *res;    /* every resource it made, newest first */
	char owner[SCRIPT_NAME_MAX + 8]; /* "rule NAME" or the plugin's name, for the bus */
	struct plug_store_state st;	 /* a rule's store state (a plugin's is on its entry) */
	bool has_caller; /* a command is being served: its caller table is in the registry */
	unsigned n_timers; /* timers it holds (lua.max_timers) */
};

/* The header of every resource a script makes. */
struct lres {
	struct sapi *a;
	const struct plug_res_ops *ops;
	struct plug_res *pres; /* its entry on the plugin (script plugins) */
	struct lres *prev, *next;
};

static const char *who(const struct sapi *a)
{
	return a->p ? plug_name(a->p) : script_name(a->s);
}

/* Where a script acts: a script plugin's scope (plug_scope), the node's for a rule. */
static const char *own_scope(const struct sapi *a)
{
	return a->p ? plug_scope(a->p) : a->k->cfg.node_path;
}

/* The default scope of its calls now: plug_scope_now (narrowed while it serves a caller). */
static const char *scope_now(const struct sapi *a)
{
	return a->p ? plug_scope_now(a->p) : a->k->cfg.node_path;
}

static int push_fail(lua_State *L, int rc, const char *msg)
{
	lua_pushnil(L);
	lua_pushstring(L, msg && *msg ? msg : linli_strerror(rc));
	lua_pushstring(L, linli_errname(rc));
	return 3;
}

/* Raise for an argument past the `n` the function takes (`takes` names them). */
static void no_more(lua_State *L, int n, const char *takes)
{
	if (lua_gettop(L) > n)
		luaL_argerror(L, n + 1,
			      lua_pushfstring(L, "no value expected, got %s: it takes %s",
					      luaL_typename(L, n + 1), takes));
}

/* The caller's context; raises for a script that is not attached (still loading). */
static struct sapi *need(lua_State *L, const char *fn)
{
	struct script *s = script_from_lua(L);
	struct sapi *a = s ? script_user(s) : NULL;
	if (!a)
		luaL_error(L,
			   "linli.%s: not available while the file loads or is only checked (call "
			   "it from init, run or a handler)",
			   fn);
	return a;
}

/*
 * Who a script acts as: a script plugin's principal (plug_principal, the one
 * plug_authorize checks; `grants` has LINLI_MAX_CAPS + 1 slots), or the rule
 * with the capabilities it declared, at the node's scope.
 */
static void principal_of(struct sapi *a, struct tier_principal *pr, const char **grants)
{
	if (a->p)
		plug_principal(a->p, pr, grants);
	else
		*pr = (struct tier_principal){PRINCIPAL_RULE, script_name(a->s),
					      own_scope(a), ROLE_NONE, a->grants, NULL, NULL};
}

static int authorize(struct sapi *a, enum tier_action act, const char *scope, const char *object,
		     char *err, size_t errlen)
{
	if (a->p)
		return plug_authorize(a->p, act, scope, object, err, errlen);
	struct tier_principal pr;
	principal_of(a, &pr, NULL);
	return access_check(a->k, &pr, act, scope, object, err, errlen);
}

/* ---- resource lists ---- */

static int track(struct sapi *a, struct lres *r, const struct plug_res_ops *ops)
{
	r->a = a;
	r->ops = ops;
	if (a->p && !(r->pres = plug_track(a->p, ops, r)))
		return LINLI_ENOMEM;
	r->prev = NULL;
	r->next = a->res;
	if (a->res)
		a->res->prev = r;
	a->res = r;
	return 0;
}

/* Take r off its context's list (its release, or a one-shot timer that ran). */
static void unlink_res(struct lres *r)
{
	struct sapi *a = r->a;
	if (r->prev)
		r->prev->next = r->next;
	else if (a->res == r)
		a->res = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
}

/* Take r off its context's list and its plugin's tracking, without releasing it. */
static void untrack(struct lres *r)
{
	unlink_res(r);
	if (r->a->p)
		plug_untrack(r->a->p, r->pres);
	r->pres = NULL;
}

/* Release r now: through the plugin's tracking when it has one. */
static void release_res(struct lres *r)
{
	if (r->a->p && r->pres)
		plug_release(r->a->p, r->pres); /* calls r->ops->release(r) */
	else
		r->ops->release(r);
}

static void release_all(struct sapi *a)
{
	while (a->res)
		release_res(a->res);
}

static struct lres *find_res(struct sapi *a, const struct plug_res_ops *ops,
			     bool (*match)(const struct lres *r, uint64_t id), uint64_t id)
{
	for (struct lres *r = a->res; r; r = r->next)
		if (r->ops == ops && match(r, id))
			return r;
	return NULL;
}

/* ---- the plugin itself ---- */

static int l_plugin_name(lua_State *L)
{
	struct script *s = script_from_lua(L);
	struct sapi *a = script_user(s);
	lua_pushstring(L, a ? who(a) : script_name(s));
	return 1;
}

static int l_plugin_scope(lua_State *L)
{
	struct script *s = script_from_lua(L);
	struct sapi *a = script_user(s);
	lua_pushstring(L, a ? own_scope(a) : script_scope(s));
	return 1;
}

static int l_time_now_ms(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)wall_ms());
	return 1;
}

/* ---- time, since 1.1 (clock.h); usable while the file loads, like time_now_ms ---- */

/* linli.time_zone() -> "Asia/Shanghai" */
static int l_time_zone(lua_State *L)
{
	no_more(L, 0, "no arguments");
	lua_pushstring(L, clock_zone());
	return 1;
}

static const char *const tm_fields[] = {"year",	   "month",	   "day", "hour",
					"minute",  "second",	   "ms",  "weekday",
					"yearday", "utc_offset_s", "dst", NULL};

/* linli.time_local([ms]) -> { year, month, day, ..., utc_offset_s, dst } | nil, msg, code */
static int l_time_local(lua_State *L)
{
	lua_Integer ms = luaL_optinteger(L, 1, (lua_Integer)wall_ms());
	no_more(L, 1, "(ms)");
	struct linli_tm t = {.size = sizeof t};
	if (clock_local((int64_t)ms, &t) != 0)
		return push_fail(
		    L, LINLI_EINVAL,
		    lua_pushfstring(L, "time_local: %I is outside the years 1..9999", ms));
	const int32_t v[] = {t.year, t.month,	t.day,	   t.hour,	   t.minute, t.second,
			     t.ms,   t.weekday, t.yearday, t.utc_offset_s, t.dst};
	lua_createtable(L, 0, 11);
	for (int i = 0; tm_fields[i]; i++) {
		if (i == 10)
			lua_pushboolean(L, v[i]);
		else
			lua_pushinteger(L, v[i]);
		lua_setfield(L, -2, tm_fields[i]);
	}
	return 1;
}

/* linli.time_from_local({ year, month, day [, hour, minute, second, ms] }) -> ms | nil, ... */
static int l_time_from_local(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	no_more(L, 1, "(t)");
	int32_t v[7];
	for (int i = 0; i < 7; i++) {
		int type = lua_getfield(L, 1, tm_fields[i]);
		int isint = 0;
		lua_Integer x = lua_tointegerx(L, -1, &isint);
		lua_pop(L, 1);
		if (type == LUA_TNIL && i >= 3) {
			v[i] = 0;
			continue;
		}
		if (type == LUA_TNIL)
			return push_fail(L, LINLI_EINVAL,
					 lua_pushfstring(L,
							 "time_from_local: field '%s' is missing",
							 tm_fields[i]));
		if (type != LUA_TNUMBER || !isint || x < INT32_MIN || x > INT32_MAX)
			return push_fail(
			    L, LINLI_EINVAL,
			    lua_pushfstring(L, "time_from_local: field '%s' must be an integer",
					    tm_fields[i]));
		v[i] = (int32_t)x;
	}
	struct linli_tm t = {.size = sizeof t,
			     .year = v[0],
			     .month = v[1],
			     .day = v[2],
			     .hour = v[3],
			     .minute = v[4],
			     .second = v[5],
			     .ms = v[6]};
	int64_t ms;
	if (clock_from_local(&t, &ms) != 0) {
		char msg[200];
		snprintf(msg, sizeof msg,
			 "time_from_local: %d-%02d-%02d %02d:%02d:%02d.%03d is not a date and "
			 "time (year 1..9999, month 1..12, a day of that month, hour 0..23, "
			 "minute and second 0..59, ms 0..999)",
			 t.year, t.month, t.day, t.hour, t.minute, t.second, t.ms);
		return push_fail(L, LINLI_EINVAL, msg);
	}
	lua_pushinteger(L, (lua_Integer)ms);
	return 1;
}

/* linli.time_day_start([ms [, days]]) -> ms | nil, msg, code */
static int l_time_day_start(lua_State *L)
{
	lua_Integer ms = luaL_optinteger(L, 1, (lua_Integer)wall_ms());
	lua_Integer days = luaL_optinteger(L, 2, 0);
	no_more(L, 2, "(ms, days)");
	int64_t out;
	if (clock_day_start((int64_t)ms, (int64_t)days, &out) != 0)
		return push_fail(L, LINLI_EINVAL,
				 lua_pushfstring(L,
						 "time_day_start: %I and %I days is outside the "
						 "years 1..9999",
						 ms, days));
	lua_pushinteger(L, (lua_Integer)out);
	return 1;
}

static int l_set_error(lua_State *L)
{
	struct script *s = script_from_lua(L);
	struct sapi *a = script_user(s);
	size_t n;
	const char *msg = luaL_checklstring(L, 1, &n);
	char buf[512];
	snprintf(buf, sizeof buf, "%.*s", (int)(n < sizeof buf ? n : sizeof buf - 1), msg);
	if (a && a->p)
		plug_set_error(a->p, buf);
	else
		log_warn(a ? who(a) : script_name(s), "%s", buf);
	return 0;
}

/* ---- the event bus ---- */

struct lsub {
	struct lres h;
	struct kernel *k;
	uint64_t id;
	int fnref; /* the handler; LUA_NOREF: the rule's own `on` (when, then run) */
	bool dead; /* released: deliver nothing more */
	int refs;  /* the bus's, and one per queued delivery */
	char pattern[BUS_TOPIC_MAX + 1];
};

static void lsub_unref(struct lsub *ls)
{
	if (--ls->refs == 0)
		free(ls);
}

static void lsub_bus_gone(void *ud)
{
	lsub_unref(ud);
}

static void lsub_release(void *arg)
{
	struct lsub *ls = arg;
	ls->dead = true;
	unlink_res(&ls->h);
	bus_unsubscribe(ls->k->bus, ls->id, ls); /* may free ls (lsub_bus_gone) */
}

static void lsub_describe(void *arg, char *buf, size_t len)
{
	struct lsub *ls = arg;
	snprintf(buf, len, "subscription %llu to %s", (unsigned long long)ls->id, ls->pattern);
}

static const struct plug_res_ops lsub_ops = {
    .kind = "subscription",
    .release = lsub_release,
    .describe = lsub_describe,
};

struct evpush {
	const struct bus_event *ev;
	const msgpack_object *payload;
};

/* handler(e, topic, meta): the payload as a table, the topic, the rest of the event. */
static int push_event(lua_State *L, void *ud)
{
	struct evpush *e = ud;
	luaL_checkstack(L, 6, "event");
	if (e->payload)
		script_push_mp(L, e->payload);
	else
		lua_newtable(L);
	lua_pushstring(L, e->ev->topic);
	lua_createtable(L, 0, 6);
	lua_pushinteger(L, (lua_Integer)e->ev->depth);
	lua_setfield(L, -2, "depth");
	lua_pushinteger(L, (lua_Integer)e->ev->seq);
	lua_setfield(L, -2, "seq");
	lua_pushinteger(L, (lua_Integer)e->ev->time_ms);
	lua_setfield(L, -2, "time_ms");
	lua_pushstring(L, e->ev->publisher);
	lua_setfield(L, -2, "publisher");
	lua_pushstring(L, e->ev->scope);
	lua_setfield(L, -2, "scope");
	lua_pushboolean(L, e->ev->cls == BUS_CONSEQUENCE);
	lua_setfield(L, -2, "consequence");
	return 3;
}

/*
 * Run the script for one event; LINLI_EBUSY when it is running (queue it).
 * A device event's personal fields come masked unless the script holds
 * sensitive:devices (hal_event_mask); what is queued stays in clear.
 */
static int lsub_run(struct sapi *a, int fnref, const struct bus_event *ev)
{
	struct script *s = a->s;
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	const void *data = ev->payload;
	size_t len = ev->payload_len;
	if (hal_event_sensitive(a->k->catalog, ev->topic)) {
		struct tier_principal pr;
		const char *grants[LINLI_MAX_CAPS + 1];
		principal_of(a, &pr, grants);
		if (!tier_sees_sensitive(&pr, HAL_SENSITIVE_DATASET) &&
		    hal_event_mask(a->k->catalog, ev->topic, data, len, &sb)) {
			data = sb.data;
			len = sb.size;
		}
	}
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	size_t off = 0;
	const msgpack_object *payload = NULL;
	if (len && msgpack_unpack_next(&up, data, len, &off) == MSGPACK_UNPACK_SUCCESS)
		payload = &up.data;
	char err[512];
	int rc;
	/* What goes wrong here concerns the event's jurisdiction: so say its log. */
	script_set_call_scope(s, ev->scope);
	/*
	 * What it publishes now was caused by this event: one level deeper. (A
	 * call refused as busy leaves the running call's depth as it was.)
	 */
	uint32_t outer_depth = script_cause_depth(s);
	script_set_cause_depth(s, ev->depth + 1);
	if (fnref == LUA_NOREF) {
		bool matched, ran;
		rc =
		    script_rule_eval(s, ev->topic, payload, false, &matched, &ran, err, sizeof err);
	} else {
		struct evpush e = {ev, payload};
		rc = script_call(s, fnref, push_event, &e, 0, NULL, NULL, err, sizeof err);
	}
	script_set_call_scope(s, NULL);
	script_set_cause_depth(s, outer_depth);
	if (rc != LINLI_EBUSY && ev->delayed)
		script_count_delayed(s);
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

/* A delivery queued for later: the event, copied. */
struct lqueued {
	struct lsub *ls;
	struct bus_event ev;
	char data[]; /* topic, publisher, scope, family (NUL-terminated), payload */
};

static void lsub_later(struct kernel *k, void *arg);

static void lsub_queue(struct lsub *ls, const struct bus_event *ev)
{
	const char *strs[4] = {ev->topic, ev->publisher, ev->scope, ev->family ? ev->family : ""};
	size_t lens[4], total = ev->payload_len;
	for (int i = 0; i < 4; i++)
		total += (lens[i] = strlen(strs[i]) + 1);
	struct lqueued *q = malloc(sizeof *q + total);
	if (!q) {
		log_error("script", "out of memory: an event for a busy script was dropped");
		return;
	}
	q->ls = ls;
	q->ev = *ev;
	char *d = q->data;
	const char **dst[4] = {&q->ev.topic, &q->ev.publisher, &q->ev.scope, &q->ev.family};
	for (int i = 0; i < 4; i++) {
		memcpy(d, strs[i], lens[i]);
		*dst[i] = d;
		d += lens[i];
	}
	if (ev->payload_len)
		memcpy(d, ev->payload, ev->payload_len);
	q->ev.payload = d;
	ls->refs++;
	if (kernel_post(ls->k, lsub_later, q) != 0) {
		lsub_unref(ls);
		free(q);
	}
}

static void lsub_later(struct kernel *k, void *arg)
{
	(void)k;
	struct lqueued *q = arg;
	struct lsub *ls = q->ls;
	if (!ls->dead && lsub_run(ls->h.a, ls->fnref, &q->ev) == LINLI_EBUSY && !ls->dead)
		lsub_queue(ls, &q->ev);
	lsub_unref(ls);
	free(q);
}

static int lsub_deliver(const struct bus_event *ev, void *ud)
{
	struct lsub *ls = ud;
	if (ls->dead)
		return 0;
	struct script *s = ls->h.a->s;
	if (script_state(s) != SCRIPT_READY)
		return 0;
	/* Errors land in the script's log (rules log / the daemon log), not the bus's. */
	if (lsub_run(ls->h.a, ls->fnref, ev) == LINLI_EBUSY && !ls->dead)
		lsub_queue(ls, ev);
	return 0;
}

static bool lsub_match(const struct lres *r, uint64_t id)
{
	return ((const struct lsub *)r)->id == id;
}

/* Subscribe a's script; fnref is taken over (dropped by the caller on failure). */
static int subscribe(struct sapi *a, const char *pattern, int fnref, uint64_t *id, char *err,
		     size_t errlen)
{
	struct lsub *ls = calloc(1, sizeof *ls);
	if (!ls)
		return LINLI_ENOMEM;
	ls->k = a->k;
	ls->fnref = fnref;
	ls->refs = 1;
	snprintf(ls->pattern, sizeof ls->pattern, "%s", pattern);
	int rc = bus_subscribe(a->k->bus, pattern, own_scope(a), lsub_deliver, ls, ls,
			       a->owner, &ls->id, err, errlen);
	if (rc) {
		free(ls);
		return rc;
	}
	bus_set_release(a->k->bus, ls->id, lsub_bus_gone);
	if ((rc = track(a, &ls->h, &lsub_ops)) != 0) {
		ls->dead = true;
		bus_unsubscribe(a->k->bus, ls->id, ls); /* frees ls */
		snprintf(err, errlen, "out of memory");
		return rc;
	}
	*id = ls->id;
	return 0;
}

/* linli.subscribe(pattern, fn) -> id | nil, msg, code */
static int l_subscribe(lua_State *L)
{
	struct sapi *a = need(L, "subscribe");
	const char *pattern = luaL_checkstring(L, 1);
	luaL_checktype(L, 2, LUA_TFUNCTION);
	script_charge(L, API_CALL_UNITS);
	char err[256];
	int rc = authorize(a, ACT_EVENTS_SUBSCRIBE, own_scope(a), pattern, err, sizeof err);
	if (rc) {
		log_warn(who(a), "subscribe %s: %s", pattern, err);
		return push_fail(L, rc, err);
	}
	lua_pushvalue(L, 2);
	int ref = luaL_ref(L, LUA_REGISTRYINDEX);
	uint64_t id;
	rc = subscribe(a, pattern, ref, &id, err, sizeof err);
	if (rc) {
		luaL_unref(L, LUA_REGISTRYINDEX, ref);
		log_warn(who(a), "subscribe %s: %s", pattern, err);
		return push_fail(L, rc, err);
	}
	lua_pushinteger(L, (lua_Integer)id);
	return 1;
}

/* linli.unsubscribe(id) -> true | nil, msg, "LINLI_ENOENT" */
static int l_unsubscribe(lua_State *L)
{
	struct sapi *a = need(L, "unsubscribe");
	lua_Integer id = luaL_checkinteger(L, 1);
	struct lsub *ls = (struct lsub *)find_res(a, &lsub_ops, lsub_match, (uint64_t)id);
	if (!ls || ls->fnref == LUA_NOREF)
		return push_fail(L, LINLI_ENOENT, "no such subscription of this script");
	luaL_unref(L, LUA_REGISTRYINDEX, ls->fnref);
	release_res(&ls->h);
	lua_pushboolean(L, 1);
	return 1;
}

/*
 * linli.publish(topic, payload [, scope]) -> seq | nil, msg, code
 *
 * Event storms (issue 14): the event carries the cause depth of the event
 * the script handles now, + 1 (0 from a timer, a command, init); deeper than
 * lua.max_event_depth it is dropped (script_depth_drop: counted, logged once
 * per burst, the script faulted after repeats). It is delivered after the
 * script's call returned (BUS_PUB_LATER), never inside it.
 */
static int l_publish(lua_State *L)
{
	struct sapi *a = need(L, "publish");
	const char *topic = luaL_checkstring(L, 1);
	luaL_argexpected(L, lua_isnoneornil(L, 2) || lua_istable(L, 2), 2, "table or nil");
	const char *scope = luaL_optstring(L, 3, scope_now(a));
	script_charge(L, API_CALL_UNITS);
	char err[256];
	int rc = authorize(a, ACT_EVENTS_PUBLISH, scope, topic, err, sizeof err);
	if (rc) {
		log_warn(who(a), "publish %s: %s", topic, err);
		return push_fail(L, rc, err);
	}
	uint32_t depth = script_cause_depth(a->s);
	uint32_t max_depth = a->k->cfg.lua.max_event_depth;
	if (!max_depth)
		max_depth = SCRIPT_DEFAULT_MAX_EVENT_DEPTH;
	if (depth > max_depth)
		return push_fail(L, script_depth_drop(L, topic, depth, max_depth, err, sizeof err),
				 err);
	/* Nothing below raises until the buffer is freed. */
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (lua_istable(L, 2))
		rc = script_pack_to(L, 2, &pk, "payload", BUS_PAYLOAD_MAX, err, sizeof err);
	else
		msgpack_pack_map(&pk, 0);
	uint64_t seq = 0;
	size_t size = sb.size;
	if (!rc) {
		struct bus_msg m = {.topic = topic,
				    .publisher = a->owner,
				    .scope = scope,
				    .payload = sb.data,
				    .payload_len = sb.size};
		rc = bus_publish_caused(a->k->bus, &m, depth, BUS_PUB_LATER, &seq, err, sizeof err);
	}
	msgpack_sbuffer_destroy(&sb);
	if (rc) {
		if (rc != LINLI_EBUSY)
			log_warn(who(a), "publish %s: %s", topic, err);
		return push_fail(L, rc, err);
	}
	script_charge(L, size / 64);
	lua_pushinteger(L, (lua_Integer)seq);
	return 1;
}

/* What script_pack refuses past is each destination's cap: keep them one. */
_Static_assert(SCRIPT_PACK_MAX == BUS_PAYLOAD_MAX && SCRIPT_PACK_MAX == STORE_MAX_RECORD,
	       "script_pack's cap is the bus payload's and the store record's");

/* ---- timers ---- */

struct ltimer {
	struct lres h;
	struct kernel *k;
	uint64_t kid, interval;
	int fnref;
};

static void ltimer_release(void *arg)
{
	struct ltimer *t = arg;
	t->h.a->n_timers--;
	unlink_res(&t->h);
	kernel_timer_cancel(t->k, t->kid);
	free(t);
}

static void ltimer_describe(void *arg, char *buf, size_t len)
{
	struct ltimer *t = arg;
	plug_describe_timer(buf, len, t->kid, t->interval);
}

static const struct plug_res_ops ltimer_ops = {
    .kind = "timer",
    .release = ltimer_release,
    .describe = ltimer_describe,
};

static bool ltimer_match(const struct lres *r, uint64_t id)
{
	return ((const struct ltimer *)r)->kid == id;
}

/* A one-shot timer's function is dropped once it is on the stack. */
static int push_once(lua_State *L, void *ud)
{
	luaL_unref(L, LUA_REGISTRYINDEX, *(int *)ud);
	return 0;
}

static void ltimer_fire(struct kernel *k, void *arg)
{
	(void)k;
	struct ltimer *t = arg;
	struct script *s = t->h.a->s;
	int ref = t->fnref;
	bool once = !t->interval;
	if (once) { /* the kernel has dropped it already */
		if (t->h.a->p)
			plug_untrack(t->h.a->p, t->h.pres);
		t->h.a->n_timers--;
		unlink_res(&t->h);
		free(t);
	}
	char err[512];
	script_call(s, ref, once ? push_once : NULL, &ref, 0, NULL, NULL, err, sizeof err);
}

/*
 * linli.timer_add(delay_ms, interval_ms, fn) -> id | nil, msg, code
 *
 * A script holds at most lua.max_timers timers, and a repeating one runs
 * every lua.min_timer_ms at the most often (issue 14: one call made 2,000
 * timers of 1 ms and the console froze). A shorter interval is a bad
 * argument (raised); a timer past the cap is refused with LINLI_ELIMIT.
 */
static int l_timer_add(lua_State *L)
{
	struct sapi *a = need(L, "timer_add");
	lua_Integer delay = luaL_checkinteger(L, 1), interval = luaL_checkinteger(L, 2);
	luaL_argcheck(L, delay >= 0, 1, "delay_ms must be >= 0");
	luaL_argcheck(L, interval >= 0, 2, "interval_ms must be >= 0 (0: once)");
	luaL_checktype(L, 3, LUA_TFUNCTION);
	const struct cfg_lua *cl = &a->k->cfg.lua;
	unsigned min_ms = cl->min_timer_ms ? cl->min_timer_ms : 10;
	unsigned max_n = cl->max_timers ? cl->max_timers : 256;
	if (interval > 0 && interval < (lua_Integer)min_ms)
		return luaL_argerror(L, 2,
				     lua_pushfstring(L,
						     "interval_ms %d is below this node's "
						     "minimum of %d ms (lua.min_timer_ms)",
						     (int)interval, (int)min_ms));
	script_charge(L, API_CALL_UNITS);
	if (a->n_timers >= max_n) {
		char m[256];
		snprintf(m, sizeof m,
			 "timer_add: %s holds %u timers already, this node's most per script "
			 "(lua.max_timers); cancel one first",
			 who(a), a->n_timers);
		return push_fail(L, LINLI_ELIMIT, m);
	}
	lua_pushvalue(L, 3);
	int ref = luaL_ref(L, LUA_REGISTRYINDEX);
	struct ltimer *t = calloc(1, sizeof *t);
	if (!t || track(a, &t->h, &ltimer_ops) != 0) {
		free(t);
		luaL_unref(L, LUA_REGISTRYINDEX, ref);
		return push_fail(L, LINLI_ENOMEM, NULL);
	}
	t->k = a->k;
	t->interval = (uint64_t)interval;
	t->fnref = ref;
	a->n_timers++; /* each way out frees through ltimer_release or ltimer_fire */
	t->kid = kernel_timer_add(a->k, (uint64_t)delay, (uint64_t)interval, ltimer_fire, t);
	if (!t->kid) {
		release_res(&t->h);
		luaL_unref(L, LUA_REGISTRYINDEX, ref);
		return push_fail(L, LINLI_ENOMEM, NULL);
	}
	lua_pushinteger(L, (lua_Integer)t->kid);
	return 1;
}

/* linli.timer_cancel(id) -> true | nil, msg, "LINLI_ENOENT" */
static int l_timer_cancel(lua_State *L)
{
	struct sapi *a = need(L, "timer_cancel");
	lua_Integer id = luaL_checkinteger(L, 1);
	struct ltimer *t = (struct ltimer *)find_res(a, &ltimer_ops, ltimer_match, (uint64_t)id);
	if (!t)
		return push_fail(L, LINLI_ENOENT, "no such timer of this script (or it has run)");
	luaL_unref(L, LUA_REGISTRYINDEX, t->fnref);
	release_res(&t->h);
	lua_pushboolean(L, 1);
	return 1;
}

/* ---- console commands (script plugins) ---- */

struct lcmd {
	struct lres h;
	struct kernel *k;
	char word[LINLI_NAME_MAX];
	char sub[SUB_MAX];
	char *usage, *summary;
	int fnref;
	bool registered;
	char action[CALLER_ACTION_MAX + 1]; /* required of every caller (cmd_require); "" none */
};

struct creply {
	msgpack_sbuffer out; /* the reply's data, when there is one */
	bool failed;
	int code;
	char msg[768];
};

struct cargs {
	struct cmd_call *call;
	struct sapi *a;
};

#define CALLER_KEY "linli.caller" /* the registry field holding the caller being served */

/* A list of strings as an array table (NULL: an empty one). */
static void push_strings(lua_State *L, const char *const *v)
{
	lua_newtable(L);
	for (int i = 0; v && v[i]; i++) {
		lua_pushstring(L, v[i]);
		lua_rawseti(L, -2, i + 1);
	}
}

/* The caller table of linli/api.h's struct linli_caller, field for field. */
static void push_caller(lua_State *L, const struct linli_caller *c)
{
	lua_createtable(L, 0, 8);
	const char *const f[][2] = {{"kind", c->kind},	 {"name", c->name},
				    {"role", c->role},	 {"scope", c->scope},
				    {"level", c->level}};
	for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
		lua_pushstring(L, f[i][1]);
		lua_setfield(L, -2, f[i][0]);
	}
	push_strings(L, c->grants);
	lua_setfield(L, -2, "grants");
	push_strings(L, c->duties);
	lua_setfield(L, -2, "duties");
	if (c->resources) {
		push_strings(L, c->resources);
		lua_setfield(L, -2, "resources");
	}
}

/*
 * handler(args, input, caller): the words after `linli <plugin> <cmd>`, the
 * --stdin body or nil, and who called (a table; caller_may takes it back).
 */
static int push_args(lua_State *L, void *ud)
{
	struct cargs *ca = ud;
	struct cmd_call *call = ca->call;
	int n = call->argc - 2;
	lua_createtable(L, n, 0);
	for (int i = 0; i < n; i++) {
		lua_pushstring(L, call->argv[i + 2]);
		lua_rawseti(L, -2, i + 1);
	}
	if (call->input)
		lua_pushlstring(L, call->input, call->input_len);
	else
		lua_pushnil(L);
	if (!call->who) {
		lua_pushnil(L);
		return 3;
	}
	struct caller_view cv;
	caller_view_make(&cv, call->who, NULL);
	push_caller(L, &cv.pub);
	lua_pushvalue(L, -1);
	lua_setfield(L, LUA_REGISTRYINDEX, CALLER_KEY);
	ca->a->has_caller = true;
	return 3;
}

static int code_of(lua_State *L, int idx)
{
	if (lua_isinteger(L, idx)) {
		lua_Integer c = lua_tointeger(L, idx);
		return c < 0 && c >= LINLI_ERROR_MIN ? (int)c : LINLI_EINVAL;
	}
	if (lua_type(L, idx) == LUA_TSTRING)
		for (int c = -1; c >= LINLI_ERROR_MIN; c--)
			if (strcmp(lua_tostring(L, idx), linli_errname(c)) == 0)
				return c;
	return LINLI_EINVAL;
}

/* A reply value, or nil + message [+ code]: a failure. Runs in protected mode. */
static void take_reply(lua_State *L, int first, void *ud)
{
	struct creply *r = ud;
	if (lua_isnil(L, first) && !lua_isnil(L, first + 1)) {
		r->failed = true;
		r->code = code_of(L, first + 2);
		int t = lua_type(L, first + 1);
		snprintf(r->msg, sizeof r->msg, "%s",
			 t == LUA_TSTRING || t == LUA_TNUMBER ? lua_tostring(L, first + 1)
							      : "the command failed");
		return;
	}
	if (lua_isnil(L, first))
		return;
	msgpack_packer pk;
	msgpack_packer_init(&pk, &r->out, msgpack_sbuffer_write);
	char err[256];
	if (script_pack_to(L, first, &pk, "value", REPLY_MAX, err, sizeof err) != 0)
		luaL_error(L, "the command's reply: %s", err);
	script_charge(L, r->out.size / 64);
}

static int lcmd_run(struct cmd_call *call, void *ud)
{
	struct lcmd *c = ud;
	struct script *s = c->h.a->s;
	int ref = c->fnref;
	/* c may be gone after the call (a fault, cmd_unregister): nothing of it below. */
	struct sapi *a = c->h.a;
	struct cargs args = {call, a};
	struct creply r = {.failed = false};
	char err[768];
	struct plug_acting saved;
	int rc = caller_serve_begin(a->p, call->who, NULL, c->action[0] ? c->action : NULL,
				    &saved, err, sizeof err);
	if (rc)
		return cmd_fail(call, rc, "%s %s: %s", call->argv[0], call->argv[1], err);
	a->has_caller = false;
	msgpack_sbuffer_init(&r.out);
	rc = script_call(s, ref, push_args, &args, 3, take_reply, &r, err, sizeof err);
	caller_serve_end(a->p, &saved);
	a->has_caller = false; /* the table left in the registry is never taken again */
	if (!rc && r.failed)
		rc = cmd_fail(call, r.code, "%s %s: %s", call->argv[0], call->argv[1], r.msg);
	else if (rc)
		rc = cmd_fail(call, rc, "%s %s: %s", call->argv[0], call->argv[1], err);
	else if (r.out.size)
		call->pk.callback(call->pk.data, r.out.data, r.out.size);
	msgpack_sbuffer_destroy(&r.out);
	return rc;
}

static int lcmd_register(struct lcmd *c)
{
	int rc = cmd_register(c->k->cmds, c->word, c->sub, c->usage, c->summary, lcmd_run, c, c);
	c->registered = rc == 0;
	return rc;
}

static void lcmd_withdraw(struct lcmd *c)
{
	if (c->registered)
		cmd_unregister_owner(c->k->cmds, c);
	c->registered = false;
}

static void lcmd_release(void *arg)
{
	struct lcmd *c = arg;
	unlink_res(&c->h);
	lcmd_withdraw(c);
	free(c->usage);
	free(c->summary);
	free(c);
}

static int lcmd_suspend(void *arg)
{
	lcmd_withdraw(arg);
	return 0;
}

static int lcmd_resume(void *arg)
{
	return lcmd_register(arg);
}

static void lcmd_describe(void *arg, char *buf, size_t len)
{
	struct lcmd *c = arg;
	snprintf(buf, len, "%s %s%s%s", c->word, c->sub, c->action[0] ? ", needs " : "",
		 c->action);
}

static const struct plug_res_ops lcmd_ops = {
    .kind = "command",
    .release = lcmd_release,
    .suspend = lcmd_suspend,
    .resume = lcmd_resume,
    .describe = lcmd_describe,
};

static bool valid_sub(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= SUB_MAX || !(s[0] >= 'a' && s[0] <= 'z'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		      s[i] == '-'))
			return false;
	return true;
}

static struct lcmd *find_cmd(struct sapi *a, const char *sub)
{
	for (struct lres *r = a->res; r; r = r->next)
		if (r->ops == &lcmd_ops && strcmp(((struct lcmd *)r)->sub, sub) == 0)
			return (struct lcmd *)r;
	return NULL;
}

/* linli.cmd_register(sub, usage, summary, fn) -> true | nil, msg, code */
static int l_cmd_register(lua_State *L)
{
	struct sapi *a = need(L, "cmd_register");
	const char *sub = luaL_checkstring(L, 1);
	const char *usage = luaL_optstring(L, 2, "");
	const char *summary = luaL_optstring(L, 3, "");
	luaL_checktype(L, 4, LUA_TFUNCTION);
	if (!a->p)
		return luaL_error(L, "linli.cmd_register: only script plugins have console "
				     "commands (a rule has none)");
	script_charge(L, API_CALL_UNITS);
	if (!valid_sub(sub))
		return push_fail(L, LINLI_EINVAL,
				 "bad command word: [a-z][a-z0-9_-]*, at most 63 bytes");
	if (find_cmd(a, sub))
		return push_fail(L, LINLI_EEXIST, "this plugin has that command already");
	lua_pushvalue(L, 4);
	int ref = luaL_ref(L, LUA_REGISTRYINDEX);
	struct lcmd *c = calloc(1, sizeof *c);
	if (!c) {
		luaL_unref(L, LUA_REGISTRYINDEX, ref);
		return push_fail(L, LINLI_ENOMEM, NULL);
	}
	c->k = a->k;
	c->fnref = ref;
	snprintf(c->word, sizeof c->word, "%s", plug_name(a->p));
	snprintf(c->sub, sizeof c->sub, "%s", sub);
	c->usage = strdup(usage);
	c->summary = strdup(summary);
	int rc = c->usage && c->summary ? track(a, &c->h, &lcmd_ops) : LINLI_ENOMEM;
	if (rc) {
		free(c->usage);
		free(c->summary);
		free(c);
	} else if ((rc = lcmd_register(c)) != 0)
		release_res(&c->h);
	if (rc) {
		luaL_unref(L, LUA_REGISTRYINDEX, ref);
		return push_fail(L, rc, rc == LINLI_EEXIST ? "that command is taken" : NULL);
	}
	lua_pushboolean(L, 1);
	return 1;
}

/* linli.cmd_require(sub, action) -> true | nil, msg, code */
static int l_cmd_require(lua_State *L)
{
	struct sapi *a = need(L, "cmd_require");
	const char *sub = luaL_checkstring(L, 1), *action = luaL_checkstring(L, 2);
	no_more(L, 2, "sub, action");
	if (!a->p)
		return luaL_error(L, "linli.cmd_require: only script plugins have console commands");
	struct lcmd *c = find_cmd(a, sub);
	if (!c)
		return push_fail(L, LINLI_ENOENT, "no such command of this plugin");
	if (!caller_action_exists(a->p, action))
		return push_fail(L, LINLI_ENOENT, "no such action of this plugin (action_declare)");
	snprintf(c->action, sizeof c->action, "%s", action);
	lua_pushboolean(L, 1);
	return 1;
}

/* linli.action_declare(name, min_role, level, duty, summary) -> true | nil, msg, code */
static int l_action_declare(lua_State *L)
{
	struct sapi *a = need(L, "action_declare");
	const char *name = luaL_checkstring(L, 1), *role = luaL_checkstring(L, 2);
	const char *level = luaL_optstring(L, 3, NULL), *duty = luaL_optstring(L, 4, NULL);
	const char *summary = luaL_optstring(L, 5, NULL);
	no_more(L, 5, "name, min_role, level, duty, summary");
	if (!a->p)
		return luaL_error(L, "linli.action_declare: only script plugins declare actions");
	script_charge(L, API_CALL_UNITS);
	char err[256];
	int rc = caller_action_declare(a->p, name, role, level, duty, summary, err, sizeof err);
	if (rc)
		return push_fail(L, rc, err);
	lua_pushboolean(L, 1);
	return 1;
}

/* linli.caller_may(caller, action, scope) -> true | nil, msg, code */
static int l_caller_may(lua_State *L)
{
	struct sapi *a = need(L, "caller_may");
	luaL_checktype(L, 1, LUA_TTABLE);
	const char *action = luaL_checkstring(L, 2), *scope = luaL_optstring(L, 3, NULL);
	no_more(L, 3, "caller, action, scope");
	if (!a->p)
		return luaL_error(L, "linli.caller_may: only script plugins serve callers");
	script_charge(L, API_CALL_UNITS);
	const struct tier_principal *who = plug_acting(a->p, NULL);
	bool same = false;
	if (who && a->has_caller) {
		lua_getfield(L, LUA_REGISTRYINDEX, CALLER_KEY);
		same = lua_rawequal(L, 1, -1);
		lua_pop(L, 1);
	}
	if (!same)
		return push_fail(L, LINLI_ESTATE,
				 "not the caller of the request being served (a caller is valid "
				 "only while its handler runs)");
	char err[512];
	int rc = caller_action_check(a->p, who, action, scope, err, sizeof err);
	if (rc)
		return push_fail(L, rc, err);
	lua_pushboolean(L, 1);
	return 1;
}

static int push_sb(lua_State *L, int rc, msgpack_sbuffer *sb, bool split, const char *err,
		   const char *oom);

/* linli.audit(action, scope, object, result, detail) -> true | nil, msg, code */
static int l_audit(lua_State *L)
{
	struct sapi *a = need(L, "audit");
	const char *action = luaL_checkstring(L, 1), *scope = luaL_optstring(L, 2, NULL);
	const char *object = luaL_optstring(L, 3, NULL), *result = luaL_checkstring(L, 4);
	const char *detail = luaL_optstring(L, 5, NULL);
	no_more(L, 5, "action, scope, object, result, detail");
	if (!a->p)
		return luaL_error(L, "linli.audit: only script plugins file audit entries");
	script_charge(L, API_CALL_UNITS);
	char err[512];
	int rc = caller_audit(a->p, action, scope, object, result, detail, err, sizeof err);
	if (rc)
		return push_fail(L, rc, err);
	lua_pushboolean(L, 1);
	return 1;
}

/* linli.duty_holders(duty, scope) -> { {user, scope, role, name}, ... } | nil, msg, code */
static int l_duty_holders(lua_State *L)
{
	struct sapi *a = need(L, "duty_holders");
	const char *duty = luaL_checkstring(L, 1), *scope = luaL_optstring(L, 2, NULL);
	no_more(L, 2, "duty, scope");
	if (!a->p)
		return luaL_error(L, "linli.duty_holders: only script plugins read duties");
	script_charge(L, API_CALL_UNITS);
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	char err[512];
	int rc = caller_duty_holders(a->p, duty, scope, &pk, err, sizeof err);
	return push_sb(L, rc, &sb, false, err, "out of memory");
}

/* ---- HTTP routes (script plugins) ---- */

struct lroute {
	struct sapi *a;
	int fnref;
};

struct rcall {
	const struct approute_call *c;
	struct sapi *a;
};

static void push_record_value(lua_State *L, const linli_record *r)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	size_t off = 0;
	if (r && record_pack(r, &pk) == 0 &&
	    msgpack_unpack_next(&up, sb.data, sb.size, &off) == MSGPACK_UNPACK_SUCCESS)
		script_push_mp(L, &up.data);
	else
		lua_pushnil(L);
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&sb);
}

/* handler(req): {method, route, path, params, query, body, caller} */
static int push_route(lua_State *L, void *ud)
{
	struct rcall *rc = ud;
	const struct linli_http_req *q = &rc->c->pub;
	lua_createtable(L, 0, 7);
	lua_pushstring(L, q->method);
	lua_setfield(L, -2, "method");
	lua_pushstring(L, q->route);
	lua_setfield(L, -2, "route");
	lua_pushstring(L, q->path);
	lua_setfield(L, -2, "path");
	push_strings(L, q->params);
	lua_setfield(L, -2, "params");
	push_record_value(L, q->query);
	lua_setfield(L, -2, "query");
	push_record_value(L, q->body);
	lua_setfield(L, -2, "body");
	push_caller(L, q->caller);
	lua_pushvalue(L, -1);
	lua_setfield(L, LUA_REGISTRYINDEX, CALLER_KEY);
	rc->a->has_caller = true;
	lua_setfield(L, -2, "caller");
	return 1;
}

struct rreply {
	struct creply r;
	int status;
};

/* reply[, status] or nil, message[, code[, status]] */
static void take_route(lua_State *L, int first, void *ud)
{
	struct rreply *rr = ud;
	take_reply(L, first, &rr->r);
	int at = rr->r.failed ? first + 3 : first + 1;
	if (lua_isinteger(L, at))
		rr->status = (int)lua_tointeger(L, at);
}

static int lroute_run(void *arg, const struct approute_call *c, msgpack_sbuffer *reply,
		      int *status, char *err, size_t errlen)
{
	struct lroute *lr = arg;
	struct sapi *a = lr->a;
	struct rcall args = {c, a};
	struct rreply rr = {.r = {.failed = false}};
	msgpack_sbuffer_init(&rr.r.out);
	a->has_caller = false;
	int rc = script_call(a->s, lr->fnref, push_route, &args, 4, take_route, &rr, err, errlen);
	a->has_caller = false;
	*status = rr.status;
	if (!rc && rr.r.failed) {
		rc = rr.r.code;
		snprintf(err, errlen, "%s", rr.r.msg);
	} else if (!rc && rr.r.out.size)
		msgpack_sbuffer_write(reply, rr.r.out.data, rr.r.out.size);
	msgpack_sbuffer_destroy(&rr.r.out);
	return rc;
}

/* linli.route_register(name, method, pattern, fn) -> true | nil, msg, code */
static int l_route_register(lua_State *L)
{
	struct sapi *a = need(L, "route_register");
	const char *name = luaL_checkstring(L, 1), *method = luaL_checkstring(L, 2);
	const char *pattern = luaL_checkstring(L, 3);
	luaL_checktype(L, 4, LUA_TFUNCTION);
	no_more(L, 4, "name, method, pattern, fn");
	if (!a->p)
		return luaL_error(L, "linli.route_register: only script plugins have routes");
	script_charge(L, API_CALL_UNITS);
	struct lroute *lr = calloc(1, sizeof *lr);
	if (!lr)
		return push_fail(L, LINLI_ENOMEM, NULL);
	lua_pushvalue(L, 4);
	lr->a = a;
	lr->fnref = luaL_ref(L, LUA_REGISTRYINDEX);
	char err[256];
	int rc = approute_add(a->p, name, method, pattern, lroute_run, lr, free, err, sizeof err);
	if (rc) {
		luaL_unref(L, LUA_REGISTRYINDEX, lr->fnref);
		free(lr);
		return push_fail(L, rc, err);
	}
	lua_pushboolean(L, 1);
	return 1;
}

/* linli.route_require(name, action) -> true | nil, msg, code */
static int l_route_require(lua_State *L)
{
	struct sapi *a = need(L, "route_require");
	const char *name = luaL_checkstring(L, 1), *action = luaL_checkstring(L, 2);
	no_more(L, 2, "name, action");
	if (!a->p)
		return luaL_error(L, "linli.route_require: only script plugins have routes");
	if (approute_require(a->p, name, action))
		return push_fail(L, LINLI_ENOENT, "no such route or action of this plugin");
	lua_pushboolean(L, 1);
	return 1;
}

/* linli.route_unregister(name) -> true | nil, msg, code */
static int l_route_unregister(lua_State *L)
{
	struct sapi *a = need(L, "route_unregister");
	const char *name = luaL_checkstring(L, 1);
	no_more(L, 1, "name");
	if (!a->p || approute_remove(a->p, name))
		return push_fail(L, LINLI_ENOENT, "no such route of this plugin");
	lua_pushboolean(L, 1);
	return 1;
}

/* linli.cmd_unregister(sub) -> true | nil, msg, "LINLI_ENOENT" */
static int l_cmd_unregister(lua_State *L)
{
	struct sapi *a = need(L, "cmd_unregister");
	const char *sub = luaL_checkstring(L, 1);
	struct lcmd *c = find_cmd(a, sub);
	if (!c)
		return push_fail(L, LINLI_ENOENT, "no such command of this plugin");
	luaL_unref(L, LUA_REGISTRYINDEX, c->fnref);
	release_res(&c->h);
	lua_pushboolean(L, 1);
	return 1;
}

/* ---- the store ----
 *
 * The store's checks, masking and audit are store_api.c's *_as calls, with
 * the script as the actor: a script plugin as its plugin entry, a rule as
 * itself (PRINCIPAL_RULE with its declared capabilities). What is left here
 * is the Lua side: tables in and out, and never letting a Lua error unwind
 * through C code that holds something. Every conversion that can raise (a
 * memory error, the budget's stop) runs in protected mode (lua_pcall of a C
 * body) while the C side holds buffers; the caller frees them, then raises
 * the error object again with lua_error, which keeps a memory error a
 * memory error and a stop a stop (the hook raises it again anyway).
 */

struct lactor {
	struct store_actor a;
	struct tier_principal who;
	const char *grants[LINLI_MAX_CAPS + 1];
};

static const struct store_actor *actor_of(struct sapi *a, struct lactor *la)
{
	principal_of(a, &la->who, la->grants);
	la->a =
	    (struct store_actor){a->k, &la->who, who(a), a->p ? plug_store_state(a->p) : &a->st};
	return &la->a;
}

static int store_fail(lua_State *L, const struct store_actor *a, int rc)
{
	return push_fail(L, rc, a->st->last_error);
}

/* A record as MessagePack: r packed into sb and unpacked into up (both the caller's). */
static int unpack_record(const linli_record *r, msgpack_sbuffer *sb, msgpack_unpacked *up)
{
	msgpack_packer pk;
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	size_t off = 0;
	if (record_pack(r, &pk) != 0 ||
	    msgpack_unpack_next(up, sb->data, sb->size, &off) != MSGPACK_UNPACK_SUCCESS)
		return LINLI_ENOMEM;
	return 0;
}

/* What a protected body pushes: one record, or one scan row appended to a table. */
struct lrow {
	const msgpack_object *rec;
	const char *id, *scope; /* a scan row: {id =, scope =, record =} */
	lua_Integer n;		/* its index in the rows table */
	size_t bytes;
};

/* (lrow) -> the record as a table. */
static int record_body(lua_State *L)
{
	struct lrow *r = lua_touserdata(L, 1);
	script_push_mp(L, r->rec);
	return 1;
}

/* (rows, lrow): rows[n] = {id, scope, record}, charged to the budget first. */
static int row_body(lua_State *L)
{
	struct lrow *r = lua_touserdata(L, 2);
	script_charge(L, ROW_UNITS + r->bytes / 64);
	lua_createtable(L, 0, 3);
	lua_pushstring(L, r->id);
	lua_setfield(L, -2, "id");
	lua_pushstring(L, r->scope);
	lua_setfield(L, -2, "scope");
	script_push_mp(L, r->rec);
	lua_setfield(L, -2, "record");
	lua_rawseti(L, 1, r->n);
	return 0;
}

/*
 * Push record r as a table (rows < 0), or append it to the rows table at
 * index `rows` as a scan row. Returns LUA_OK (the table pushed, or nothing
 * for a row); a Lua error status with the error object on top (free what
 * you hold, then lua_error); or LINLI_ENOMEM with nothing pushed. r stays
 * the caller's.
 */
static int push_record(lua_State *L, const linli_record *r, int rows, struct lrow *row)
{
	msgpack_sbuffer sb;
	msgpack_unpacked up;
	msgpack_sbuffer_init(&sb);
	msgpack_unpacked_init(&up);
	int status = unpack_record(r, &sb, &up);
	if (!status && !lua_checkstack(L, 4))
		status = LINLI_ENOMEM;
	if (!status) {
		row->rec = &up.data;
		row->bytes = sb.size;
		lua_pushcfunction(L, rows < 0 ? record_body : row_body);
		if (rows >= 0)
			lua_pushvalue(L, rows);
		lua_pushlightuserdata(L, row);
		status = lua_pcall(L, rows < 0 ? 1 : 2, rows < 0 ? 1 : 0, 0);
	}
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&sb);
	return status;
}

/* linli.store_get(dataset, id [, scope]) -> record, scope | nil, msg, code */
static int l_store_get(lua_State *L)
{
	struct sapi *s = need(L, "store_get");
	const char *dataset = luaL_checkstring(L, 1), *id = luaL_checkstring(L, 2);
	const char *scope = luaL_optstring(L, 3, NULL);
	script_charge(L, API_CALL_UNITS);
	struct lactor la;
	const struct store_actor *a = actor_of(s, &la);
	linli_record *rec;
	char where[LINLI_SCOPE_MAX + 1];
	int rc = store_api_get_as(a, dataset, scope, id, &rec, where);
	if (rc)
		return store_fail(L, a, rc);
	struct lrow row = {.n = 0};
	int status = push_record(L, rec, -1, &row);
	record_free(rec);
	if (status < 0)
		return push_fail(L, status, "store_get: out of memory for the record");
	if (status != LUA_OK)
		return lua_error(L);
	lua_pushstring(L, where);
	script_charge(L, row.bytes / 64);
	return 2;
}

/* linli.store_put(dataset, record [, scope [, id]]) -> id, created | nil, msg, code */
static int l_store_put(lua_State *L)
{
	struct sapi *s = need(L, "store_put");
	const char *dataset = luaL_checkstring(L, 1);
	luaL_checktype(L, 2, LUA_TTABLE);
	const char *scope = luaL_optstring(L, 3, NULL);
	const char *id = luaL_optstring(L, 4, NULL);
	script_charge(L, API_CALL_UNITS);
	struct lactor la;
	const struct store_actor *a = actor_of(s, &la);
	/* Nothing below raises until the buffer is freed. */
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	char err[256], nid[LINLI_ID_MAX + 1];
	bool created = false;
	int rc = script_pack(L, 2, &pk, err, sizeof err);
	if (rc)
		snprintf(a->st->last_error, sizeof a->st->last_error,
			 "store_put %s: the record: %s", dataset, err);
	else
		rc = store_api_put_as(a, dataset, scope, id, sb.data, sb.size, nid, &created);
	size_t size = sb.size;
	msgpack_sbuffer_destroy(&sb);
	if (rc)
		return store_fail(L, a, rc);
	script_charge(L, size / 64);
	lua_pushstring(L, nid);
	lua_pushboolean(L, created);
	return 2;
}

/* linli.store_delete(dataset, id [, scope]) -> true | nil, msg, code */
static int l_store_delete(lua_State *L)
{
	struct sapi *s = need(L, "store_delete");
	const char *dataset = luaL_checkstring(L, 1), *id = luaL_checkstring(L, 2);
	const char *scope = luaL_optstring(L, 3, NULL);
	script_charge(L, API_CALL_UNITS);
	struct lactor la;
	const struct store_actor *a = actor_of(s, &la);
	int rc = store_api_delete_as(a, dataset, scope, id);
	if (rc)
		return store_fail(L, a, rc);
	lua_pushboolean(L, 1);
	return 1;
}

/* ---- scan ---- */

struct lscan {
	lua_State *L;
	int rows;   /* stack index of the rows table */
	int status; /* LUA_OK, or the error status of a row (its error object on top) */
	lua_Integer n;
};

static int lscan_row(void *ud, const struct linli_row *row)
{
	struct lscan *c = ud;
	struct lrow r = {.id = row->id, .scope = row->scope, .n = c->n + 1};
	int status = push_record(c->L, row->record, c->rows, &r);
	if (status < 0)
		return status;
	if (status != LUA_OK) {
		c->status = status;
		return LINLI_ELIMIT; /* ends the page; the caller raises the error */
	}
	c->n++;
	return 0;
}

struct lwhere {
	const char *field, *value; /* strings on the Lua stack */
};

static int where_cmp(const void *x, const void *y)
{
	return strcmp(((const struct lwhere *)x)->field, ((const struct lwhere *)y)->field);
}

/* Read the query's `where` table at idx into w (strings pushed on the stack); the count. */
static int read_where(lua_State *L, int idx, struct lwhere *w)
{
	int n = 0;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		if (lua_type(L, -2) != LUA_TSTRING)
			luaL_error(L, "linli.store_scan: where: keys must be field names, not %s",
				   luaL_typename(L, -2));
		const char *field = lua_tostring(L, -2);
		int t = lua_type(L, -1);
		if (t != LUA_TSTRING && t != LUA_TNUMBER && t != LUA_TBOOLEAN)
			luaL_error(
			    L, "linli.store_scan: where.%s: a string, number or boolean, not %s",
			    field, luaL_typename(L, -1));
		if (n == LINLI_MAX_WHERE) {
			lua_pop(L, 2);
			return n + 1;
		}
		luaL_checkstack(L, 3, "where");
		lua_pushvalue(L, -2); /* the key, kept on the stack: the field */
		if (t == LUA_TBOOLEAN)
			lua_pushstring(L, lua_toboolean(L, -2) ? "true" : "false");
		else {
			lua_pushvalue(L, -2);
			lua_tostring(L, -1); /* a number as text, in this copy */
		}
		lua_insert(L, -4); /* field, value, key, original value */
		lua_insert(L, -4);
		w[n].field = lua_tostring(L, -4);
		w[n].value = lua_tostring(L, -3);
		n++;
		lua_pop(L, 1); /* the value; the key stays for lua_next */
	}
	qsort(w, (size_t)n, sizeof *w, where_cmp);
	return n;
}

/*
 * Read the query's `range` list at idx into r: each entry {field, op, value}
 * or {field = , op = , value = } (the value a string or a number); strings
 * stay on the stack. The count, or luaL_error naming the entry.
 */
static int read_range(lua_State *L, int idx, struct linli_range *r)
{
	static const char *const names[] = {"field", "op", "value"};
	int n = (int)luaL_len(L, idx);
	if (n > LINLI_MAX_RANGE)
		return n;
	luaL_checkstack(L, 4 * LINLI_MAX_RANGE + 4, "range");
	for (int i = 0; i < n; i++) {
		if (lua_geti(L, idx, i + 1) != LUA_TTABLE)
			luaL_error(L, "linli.store_scan: range[%d] must be a table {field, op, value}, "
				      "not %s",
				   i + 1, luaL_typename(L, -1));
		int e = lua_gettop(L);
		const char *v[3];
		for (int j = 0; j < 3; j++) {
			int t = lua_geti(L, e, j + 1);
			if (t == LUA_TNIL) {
				lua_pop(L, 1);
				t = lua_getfield(L, e, names[j]);
			}
			if (t != LUA_TSTRING && !(j == 2 && t == LUA_TNUMBER))
				luaL_error(L, "linli.store_scan: range[%d].%s must be a string%s, not %s",
					   i + 1, names[j], j == 2 ? " or a number" : "",
					   luaL_typename(L, -1));
			v[j] = lua_tostring(L, -1); /* a number becomes text in this copy */
		}
		r[i] = (struct linli_range){v[0], v[1], v[2]};
	}
	return n;
}

/* The optional string field `key` of the table at 1, left on the stack; NULL if nil. */
static const char *query_str(lua_State *L, const char *key, bool required)
{
	int t = lua_getfield(L, 1, key);
	if (t == LUA_TSTRING)
		return lua_tostring(L, -1);
	if (t == LUA_TNIL && !required)
		return NULL;
	luaL_error(L, "linli.store_scan: %s must be a string%s, not %s", key,
		   required ? "" : " or nil", luaL_typename(L, -1));
	return NULL;
}

/*
 * linli.store_scan{dataset = , scope = , where = {field = value, ...},
 *                  range = {{field, op, value}, ...}, limit = , cursor = }
 * -> rows, cursor | nil, msg, code. rows[i] = {id = , scope = , record = }; cursor is nil
 * after the last page.
 */
static int l_store_scan(lua_State *L)
{
	static const char *const keys[] = {"dataset", "scope", "where", "range",
					   "limit",   "cursor", NULL};
	struct sapi *s = need(L, "store_scan");
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_settop(L, 1);
	luaL_checkstack(L, 2 * LINLI_MAX_WHERE + 16, "store_scan");
	lua_pushnil(L);
	while (lua_next(L, 1)) {
		lua_pop(L, 1);
		bool known = false;
		for (int i = 0; keys[i] && lua_type(L, -1) == LUA_TSTRING; i++)
			known |= strcmp(lua_tostring(L, -1), keys[i]) == 0;
		if (!known)
			luaL_error(L,
				   "linli.store_scan: unknown query field %s%s%s (dataset, scope, "
				   "where, range, limit, cursor)",
				   lua_type(L, -1) == LUA_TSTRING ? "'" : "a ",
				   lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
								  : luaL_typename(L, -1),
				   lua_type(L, -1) == LUA_TSTRING ? "'" : "");
	}
	struct linli_query q = {.size = sizeof q};
	q.dataset = query_str(L, "dataset", true);
	q.scope = query_str(L, "scope", false);
	q.cursor = query_str(L, "cursor", false);
	int t = lua_getfield(L, 1, "limit");
	if (t != LUA_TNIL) {
		if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0)
			luaL_error(L, "linli.store_scan: limit must be an integer >= 0 (0: %d)",
				   LINLI_SCAN_DEFAULT);
		q.limit = (size_t)lua_tointeger(L, -1); /* above LINLI_SCAN_MAX: refused */
	}
	struct lwhere w[LINLI_MAX_WHERE];
	struct linli_where where[LINLI_MAX_WHERE];
	t = lua_getfield(L, 1, "where");
	if (t != LUA_TNIL && t != LUA_TTABLE)
		luaL_error(L, "linli.store_scan: where must be a table or nil, not %s",
			   luaL_typename(L, -1));
	int n = t == LUA_TTABLE ? read_where(L, lua_gettop(L), w) : 0;
	if (n > LINLI_MAX_WHERE)
		return push_fail(L, LINLI_EINVAL, "store_scan: more than 8 filters in where");
	for (int i = 0; i < n; i++)
		where[i] = (struct linli_where){w[i].field, w[i].value};
	q.where = where;
	q.n_where = n;
	struct linli_range range[LINLI_MAX_RANGE];
	t = lua_getfield(L, 1, "range");
	if (t != LUA_TNIL && t != LUA_TTABLE)
		luaL_error(L, "linli.store_scan: range must be a list or nil, not %s",
			   luaL_typename(L, -1));
	n = t == LUA_TTABLE ? read_range(L, lua_gettop(L), range) : 0;
	if (n > LINLI_MAX_RANGE)
		return push_fail(L, LINLI_EINVAL, "store_scan: more than 8 filters in range");
	q.range = range;
	q.n_range = n;
	lua_newtable(L);
	struct lscan c = {L, lua_gettop(L), LUA_OK, 0};
	script_charge(L, API_CALL_UNITS);
	struct lactor la;
	const struct store_actor *a = actor_of(s, &la);
	char cursor[LINLI_CURSOR_MAX];
	int rc = store_api_scan_as(a, &q, lscan_row, &c, cursor);
	if (c.status != LUA_OK)
		return lua_error(L);
	if (rc < 0)
		return store_fail(L, a, rc);
	lua_pushvalue(L, c.rows);
	if (cursor[0])
		lua_pushstring(L, cursor);
	else
		lua_pushnil(L);
	return 2;
}

/* ---- read-modify-write ---- */

enum lverdict { LV_WRITE, LV_KEEP, LV_DELETE, LV_REFUSE };

struct lupd {
	lua_State *L;
	int fn;			   /* stack index of the script's function */
	int status;		   /* LUA_OK, or the function's error status (object on top) */
	const msgpack_object *old; /* the record it gets, or NULL */
	msgpack_sbuffer out;	   /* the record it returned, packed */
	enum lverdict verdict;
	int code; /* LV_REFUSE: the code and message */
	char msg[512];
};

__attribute__((format(printf, 3, 4))) static void refuse(struct lupd *u, int code, const char *fmt,
							 ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(u->msg, sizeof u->msg, fmt, ap);
	va_end(ap);
	u->verdict = LV_REFUSE;
	u->code = code;
}

/* (fn, lupd): call fn(old) and read its verdict. */
static int upd_body(lua_State *L)
{
	struct lupd *u = lua_touserdata(L, 2);
	lua_settop(L, 1);
	if (u->old)
		script_push_mp(L, u->old);
	else
		lua_pushnil(L);
	lua_call(L, 1, 3); /* its results: 1, 2, 3 */
	int t = lua_type(L, 1);
	const char *str = t == LUA_TSTRING ? lua_tostring(L, 1) : "";
	if (t == LUA_TTABLE) {
		msgpack_packer pk;
		msgpack_packer_init(&pk, &u->out, msgpack_sbuffer_write);
		char err[256];
		int rc = script_pack(L, 1, &pk, err, sizeof err);
		unsigned char b = u->out.size ? (unsigned char)u->out.data[0] : 0;
		if (rc)
			refuse(u, rc, "the function's record: %s", err);
		else if (!((b >= 0x80 && b <= 0x8f) || b == 0xde || b == 0xdf))
			refuse(u, LINLI_EINVAL,
			       "the function returned an array: a record is a table of fields");
		else
			u->verdict = LV_WRITE;
		script_charge(L, u->out.size / 64);
	} else if (strcmp(str, "keep") == 0)
		u->verdict = LV_KEEP;
	else if (strcmp(str, "delete") == 0)
		u->verdict = LV_DELETE;
	else if (t == LUA_TNIL && lua_type(L, 2) == LUA_TSTRING)
		refuse(u, lua_isnil(L, 3) ? LINLI_EINVAL : code_of(L, 3), "%s", lua_tostring(L, 2));
	else
		refuse(u, LINLI_EINVAL,
		       "the function returned %s%s%s: return a table, \"keep\" or \"delete\" (or "
		       "nil, message to refuse)",
		       t == LUA_TSTRING ? "'" : luaL_typename(L, 1), t == LUA_TSTRING ? str : "",
		       t == LUA_TSTRING ? "'" : "");
	return 0;
}

/* The store's update step for a script: its function, in protected mode. */
static int lupd_step(void *ud, const char *id, linli_record **rec, char *err, size_t errlen)
{
	struct lupd *u = ud;
	lua_State *L = u->L;
	msgpack_sbuffer in;
	msgpack_unpacked up;
	msgpack_sbuffer_init(&in);
	msgpack_unpacked_init(&up);
	u->out.size = 0;
	u->old = NULL;
	int status = *rec ? unpack_record(*rec, &in, &up) : 0;
	if (*rec && !status)
		u->old = &up.data;
	if (!status && !lua_checkstack(L, 4))
		status = LINLI_ENOMEM;
	if (!status) {
		lua_pushcfunction(L, upd_body);
		lua_pushvalue(L, u->fn);
		lua_pushlightuserdata(L, u);
		status = lua_pcall(L, 2, 0, 0);
		if (status != LUA_OK) {
			u->status = status;
			status = LINLI_EINVAL;
		}
	}
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&in);
	if (status < 0) {
		snprintf(err, errlen, "%s",
			 u->status != LUA_OK ? "the update function raised an error"
					     : "out of memory");
		return status;
	}
	switch (u->verdict) {
	case LV_KEEP:
		return LINLI_STORE_KEEP;
	case LV_DELETE:
		return LINLI_STORE_DELETE;
	case LV_REFUSE:
		snprintf(err, errlen, "%s", u->msg);
		return u->code;
	default:
		break;
	}
	linli_record *n = NULL;
	char e[256];
	if (record_from_bytes(u->out.data, u->out.size, &n, e, sizeof e) != 0) {
		snprintf(err, errlen, "the function's record for '%s': %s", id, e);
		return LINLI_EINVAL;
	}
	*rec = n; /* the kernel frees it, and the one it gave */
	return 0;
}

/* linli.store_update(dataset, id, fn [, scope]) -> true | nil, msg, code */
static int l_store_update(lua_State *L)
{
	struct sapi *s = need(L, "store_update");
	const char *dataset = luaL_checkstring(L, 1), *id = luaL_checkstring(L, 2);
	luaL_checktype(L, 3, LUA_TFUNCTION);
	const char *scope = luaL_optstring(L, 4, NULL);
	lua_settop(L, 4);
	script_charge(L, API_CALL_UNITS);
	struct lactor la;
	const struct store_actor *a = actor_of(s, &la);
	struct lupd u = {.L = L, .fn = 3, .status = LUA_OK};
	msgpack_sbuffer_init(&u.out);
	int rc = store_api_update_as(a, dataset, scope, id, lupd_step, &u);
	msgpack_sbuffer_destroy(&u.out);
	if (u.status != LUA_OK)
		return lua_error(L); /* nothing was written */
	if (rc)
		return store_fail(L, a, rc);
	lua_pushboolean(L, 1);
	return 1;
}

/* ---- the commit notice ----
 *
 * store_on_commit is store_api.c's call with the script as the actor, so its
 * checks and messages are the C member's. The waiter (struct lcommit) is
 * held by the store until the batch's end, and is one of the script's
 * resources until its function has been called: released first (the script
 * stops, faults, is reloaded or removed), it is only marked dead, and the
 * store's call then frees it without touching the script. The result runs
 * the function through script_call like any handler, off the lists (a fault
 * inside it releases the script's other resources, never this one). A batch
 * that ends while its script runs (the store commits early inside a write
 * when a backup holds the map) is kept and handed over by a timer of its
 * own, which a release cancels.
 */

/*
 * An answer owed to a script (a device command's, a commit's), from the
 * moment it is asked for until its function has run. It is a resource of
 * the script; the answer runs the function through script_call off the
 * lists; an answer that comes while the script runs is kept (copied) and
 * handed over by a zero-delay timer, which a release cancels. The kinds
 * embed it first and differ in how they push the function's arguments.
 */
struct lreply {
	struct lres h;	/* h.ops: the kind's */
	struct kernel *k;
	/* push the function's arguments from a struct rargs; fn's ref is dropped there */
	script_push_fn push;
	int fnref;
	uint64_t timer; /* a kept answer's timer, or 0 */
	bool kept;	/* the kept answer */
	int rc;
	char *result, *msg;
	size_t len;
};

struct rargs {
	struct lreply *r;
	int rc;
	const msgpack_object *result; /* NULL: none */
	const char *msg;
};

static void reply_free(struct lreply *r)
{
	free(r->result);
	free(r->msg);
	free(r); /* the kind's struct: the reply is its first member */
}

/* Push nil, message, code for a failed answer; 3. */
static int push_failure(lua_State *L, const struct rargs *a)
{
	lua_pushnil(L);
	lua_pushstring(L, a->msg && *a->msg ? a->msg : linli_strerror(a->rc));
	lua_pushstring(L, linli_errname(a->rc));
	return 3;
}

static void reply_deliver(struct lreply *r, int rc, const void *result, size_t len,
			  const char *msg);

static void reply_later(struct kernel *k, void *arg)
{
	(void)k;
	struct lreply *r = arg;
	r->timer = 0; /* a one-shot timer is gone once it fires */
	reply_deliver(r, r->rc, r->result, r->len, r->msg);
}

/* Keep the answer in r (unless it is kept there already) and hand it over later. */
static int reply_keep(struct lreply *r, int rc, const void *result, size_t len, const char *msg)
{
	if (!r->kept) {
		r->kept = true;
		r->rc = rc;
		r->len = len;
		r->result = len ? malloc(len) : NULL;
		r->msg = strdup(msg ? msg : "");
		if ((len && !r->result) || !r->msg)
			return LINLI_ENOMEM;
		if (len)
			memcpy(r->result, result, len);
	}
	if (track(r->h.a, &r->h, r->h.ops) != 0)
		return LINLI_ENOMEM;
	if (!(r->timer = kernel_timer_add(r->k, 0, 0, reply_later, r))) {
		untrack(&r->h);
		return LINLI_ENOMEM;
	}
	return 0;
}

/* Hand the answer to the script: r is off the lists during the call, and freed after. */
static void reply_deliver(struct lreply *r, int rc, const void *result, size_t len,
			  const char *msg)
{
	struct sapi *a = r->h.a;
	untrack(&r->h);
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	size_t off = 0;
	struct rargs args = {r, rc, NULL, msg};
	if (rc >= 0 && len && msgpack_unpack_next(&up, result, len, &off) == MSGPACK_UNPACK_SUCCESS)
		args.result = &up.data;
	char err[512];
	int c = script_call(a->s, r->fnref, r->push, &args, 0, NULL, NULL, err, sizeof err);
	msgpack_unpacked_destroy(&up);
	if (c == LINLI_EBUSY) {
		if (reply_keep(r, rc, result, len, msg) == 0)
			return;
		char what[160];
		r->h.ops->describe(r, what, sizeof what);
		log_error(who(a), "out of memory: the answer to %s was dropped", what);
	}
	reply_free(r);
}

/* ---- the commit notice: struct lcommit, an lreply ---- */

struct lcommit {
	struct lreply r;
	bool in_store; /* the store holds it: its call frees it */
	bool dead;     /* released: hand nothing over */
};

static void lcommit_release(void *arg)
{
	struct lcommit *c = arg;
	unlink_res(&c->r.h);
	c->dead = true;
	if (c->r.timer)
		kernel_timer_cancel(c->r.k, c->r.timer);
	c->r.timer = 0;
	if (!c->in_store)
		reply_free(&c->r);
}

static void lcommit_describe(void *arg, char *buf, size_t len)
{
	struct lcommit *c = arg;
	snprintf(buf, len, "commit waiter%s",
		 c->r.kept ? " (the batch ended, not yet handed over)" : "");
}

static const struct plug_res_ops lcommit_ops = {
    .kind = "commit waiter",
    .release = lcommit_release,
    .describe = lcommit_describe,
};

/* fn(true) or fn(nil, message, code); fn is dropped once on the stack. */
static int push_commit(lua_State *L, void *ud)
{
	struct rargs *a = ud;
	luaL_unref(L, LUA_REGISTRYINDEX, a->r->fnref);
	luaL_checkstack(L, 3, "commit");
	if (a->rc)
		return push_failure(L, a);
	lua_pushboolean(L, 1);
	return 1;
}

/* The store's call (store_done_fn): once, when the batch committed or was lost. */
static void lcommit_done(void *arg, int rc, const char *msg)
{
	struct lcommit *c = arg;
	c->in_store = false;
	if (c->dead)
		reply_free(&c->r);
	else
		reply_deliver(&c->r, rc, NULL, 0, msg);
}

/* linli.store_on_commit(fn) -> true | nil, msg, code; later fn(true) | fn(nil, msg, code) */
static int l_store_on_commit(lua_State *L)
{
	struct sapi *s = need(L, "store_on_commit");
	luaL_checktype(L, 1, LUA_TFUNCTION);
	no_more(L, 1, "only fn");
	script_charge(L, API_CALL_UNITS);
	lua_pushvalue(L, 1);
	int ref = luaL_ref(L, LUA_REGISTRYINDEX);
	struct lactor la;
	const struct store_actor *a = actor_of(s, &la);
	struct lcommit *c = calloc(1, sizeof *c);
	if (!c || track(s, &c->r.h, &lcommit_ops) != 0) {
		free(c);
		luaL_unref(L, LUA_REGISTRYINDEX, ref);
		return push_fail(L, LINLI_ENOMEM, "store_on_commit: out of memory");
	}
	c->r.k = s->k;
	c->r.push = push_commit;
	c->r.fnref = ref;
	c->in_store = true;
	int rc = store_api_on_commit_as(a, lcommit_done, c);
	if (rc) {
		untrack(&c->r.h);
		reply_free(&c->r);
		luaL_unref(L, LUA_REGISTRYINDEX, ref);
		return store_fail(L, a, rc);
	}
	lua_pushboolean(L, 1);
	return 1;
}

/* ---- devices ----
 *
 * dev_info, dev_get and dev_command are hal_api.c's *_as calls with the
 * script as the actor (a script plugin as its plugin entry, a rule as
 * itself), so the checks, audit entries and messages are the C members'. A
 * command sent is a resource (struct ldcmd) until its answer has been handed
 * to the script: released first (the script stops, faults, is reloaded or
 * removed), it is cancelled in the HAL and its function is never called.
 * The answer runs the function through script_call like any handler; while
 * it runs, the command is off the lists, so a fault inside it releases the
 * script's other resources but never the one being answered. An answer for
 * a script that is running (not expected: the HAL answers from its queue,
 * timers and removals, never inside a script's call) is kept and handed over
 * by a timer of its own, which a release cancels.
 */

struct hactor {
	struct hal_actor a;
	struct tier_principal who;
	const char *grants[LINLI_MAX_CAPS + 1];
};

static const struct hal_actor *hal_actor_of(struct sapi *s, struct hactor *ha)
{
	principal_of(s, &ha->who, ha->grants);
	ha->a = (struct hal_actor){s->k, &ha->who, who(s), NULL};
	return &ha->a;
}

struct lpacked {
	const msgpack_object *o;
	bool split; /* {value, time}: push the two fields */
};

/* (lpacked) -> the object as a value, or its value and time. */
static int packed_body(lua_State *L)
{
	struct lpacked *p = lua_touserdata(L, 1);
	if (!p->split) {
		script_push_mp(L, p->o);
		return 1;
	}
	const msgpack_object *v = mp_get(p->o, "value"), *t = mp_get(p->o, "time");
	if (v)
		script_push_mp(L, v);
	else
		lua_pushnil(L);
	if (t)
		script_push_mp(L, t);
	else
		lua_pushnil(L);
	return 2;
}

/*
 * Push the one object packed in sb (or its value and time). Returns LUA_OK
 * with *n values pushed; a Lua error status with the error object on top
 * (free what you hold, then lua_error); or LINLI_ENOMEM with nothing pushed.
 */
static int push_packed(lua_State *L, const msgpack_sbuffer *sb, bool split, int *n)
{
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	size_t off = 0;
	int status = LINLI_ENOMEM;
	if (msgpack_unpack_next(&up, sb->data, sb->size, &off) == MSGPACK_UNPACK_SUCCESS &&
	    lua_checkstack(L, 4)) {
		struct lpacked p = {&up.data, split};
		lua_pushcfunction(L, packed_body);
		lua_pushlightuserdata(L, &p);
		*n = split ? 2 : 1;
		status = lua_pcall(L, 1, *n, 0);
	}
	msgpack_unpacked_destroy(&up);
	return status;
}

/*
 * The result of a call that packed its answer into sb (destroyed here):
 * nil, err, code when rc is a failure; else the object (or its value and
 * time), charged one unit per 64 bytes. Raises only once sb is freed.
 */
static int push_sb(lua_State *L, int rc, msgpack_sbuffer *sb, bool split, const char *err,
		   const char *oom)
{
	int n = 0, status = rc ? LUA_OK : push_packed(L, sb, split, &n);
	size_t size = sb->size;
	msgpack_sbuffer_destroy(sb);
	if (rc)
		return push_fail(L, rc, err);
	if (status < 0)
		return push_fail(L, status, oom);
	if (status != LUA_OK)
		return lua_error(L);
	script_charge(L, size / 64);
	return n;
}

/* dev_info (resource unused) or dev_get: the packed answer, pushed. */
static int dev_read(lua_State *L, struct sapi *s, bool info, const char *device,
		    const char *resource)
{
	script_charge(L, API_CALL_UNITS);
	struct hactor ha;
	const struct hal_actor *a = hal_actor_of(s, &ha);
	/* Nothing below raises until the buffer is freed. */
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	char err[768];
	int rc = info ? hal_api_dev_info_as(a, device, &pk, err, sizeof err)
		      : hal_api_dev_get_as(a, device, resource, &pk, err, sizeof err);
	return push_sb(L, rc, &sb, !info && resource, err,
		       info ? "dev_info: out of memory for the entry"
			    : "dev_get: out of memory for the value");
}

/* linli.dev_info(device) -> entry | nil, msg, code */
static int l_dev_info(lua_State *L)
{
	struct sapi *s = need(L, "dev_info");
	return dev_read(L, s, true, luaL_checkstring(L, 1), NULL);
}

/* linli.dev_get(device, resource) -> value, time_ms; (device) -> {resource = {value, time}} */
static int l_dev_get(lua_State *L)
{
	struct sapi *s = need(L, "dev_get");
	const char *device = luaL_checkstring(L, 1);
	return dev_read(L, s, false, device, luaL_optstring(L, 2, NULL));
}

/* linli.plugin_config() -> table | nil, msg, code */
static int l_plugin_config(lua_State *L)
{
	struct sapi *s = need(L, "plugin_config");
	no_more(L, 0, "no arguments");
	script_charge(L, API_CALL_UNITS);
	struct hactor ha;
	const struct hal_actor *a = hal_actor_of(s, &ha);
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	char err[256];
	int rc = hal_api_plugin_config_as(a, &pk, err, sizeof err);
	return push_sb(L, rc, &sb, false, err, "plugin_config: out of memory for the settings");
}

/* linli.device_classes() -> { class, ... } */
static int l_device_classes(lua_State *L)
{
	struct sapi *s = need(L, "device_classes");
	no_more(L, 0, "no arguments");
	script_charge(L, API_CALL_UNITS);
	struct hactor ha;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	hal_api_device_classes_as(hal_actor_of(s, &ha), &pk);
	return push_sb(L, 0, &sb, false, NULL, "device_classes: out of memory for the classes");
}

/* A device command sent by a script: an lreply until its answer was handed over. */
struct ldcmd {
	struct lreply r;
	uint64_t req;
	bool answered; /* the HAL has let go of it */
	char device[LINLI_ID_MAX + 1], command[CAT_NAME_MAX + 1];
};

static void ldcmd_release(void *arg)
{
	struct ldcmd *c = arg;
	unlink_res(&c->r.h);
	if (c->r.timer)
		kernel_timer_cancel(c->r.k, c->r.timer);
	else if (!c->answered && c->r.k->hal)
		hal_command_cancel(c->r.k->hal, c->req); /* logged there as abandoned */
	reply_free(&c->r);
}

static void ldcmd_describe(void *arg, char *buf, size_t len)
{
	struct ldcmd *c = arg;
	snprintf(buf, len, "device command #%llu %s to %s%s", (unsigned long long)c->req,
		 c->command, c->device, c->answered ? " (answered, not yet handed over)" : "");
}

static const struct plug_res_ops ldcmd_ops = {
    .kind = "device command",
    .release = ldcmd_release,
    .describe = ldcmd_describe,
};

/* fn(result, nil, nil, req) or fn(nil, message, code, req); fn is dropped once on the stack. */
static int push_answer(lua_State *L, void *ud)
{
	struct rargs *a = ud;
	luaL_unref(L, LUA_REGISTRYINDEX, a->r->fnref);
	luaL_checkstack(L, 4, "answer");
	if (a->rc == 0) {
		if (a->result)
			script_push_mp(L, a->result);
		else
			lua_newtable(L);
		lua_pushnil(L);
		lua_pushnil(L);
	} else
		push_failure(L, a);
	lua_pushinteger(L, (lua_Integer)((struct ldcmd *)a->r)->req);
	return 4;
}

/* The HAL's answer (hal_cmd_fn): once, on the kernel thread, unless cancelled first. */
static void ldcmd_done(void *arg, int rc, const void *result, size_t len, const char *msg)
{
	struct ldcmd *c = arg;
	c->answered = true;
	reply_deliver(&c->r, rc, result, len, msg);
}

/* linli.dev_command(device, command, args, timeout_ms, fn) -> req | nil, msg, code */
static int l_dev_command(lua_State *L)
{
	struct sapi *s = need(L, "dev_command");
	const char *device = luaL_checkstring(L, 1), *command = luaL_checkstring(L, 2);
	luaL_argexpected(L, lua_isnoneornil(L, 3) || lua_istable(L, 3), 3, "table or nil");
	lua_Integer tmo = luaL_optinteger(L, 4, 0);
	luaL_argcheck(L, tmo >= 0, 4, "timeout_ms must be >= 0 (0: 10 s)");
	luaL_checktype(L, 5, LUA_TFUNCTION);
	script_charge(L, API_CALL_UNITS);
	if (tmo > HAL_CMD_TIMEOUT_MAX_MS) {
		char msg[256];
		snprintf(msg, sizeof msg, "dev_command %s %s: timeout %lld ms is above %d ms",
			 device, command, (long long)tmo, HAL_CMD_TIMEOUT_MAX_MS);
		return push_fail(L, LINLI_EINVAL, msg);
	}
	lua_pushvalue(L, 5);
	int ref = luaL_ref(L, LUA_REGISTRYINDEX);
	/* Nothing below raises until everything is freed. */
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	char err[768], e[256];
	linli_record *args = NULL;
	int rc = 0;
	if (lua_istable(L, 3)) {
		if ((rc = script_pack(L, 3, &pk, e, sizeof e)) != 0 ||
		    (rc = record_from_bytes(sb.data, sb.size, &args, e, sizeof e)) != 0)
			snprintf(err, sizeof err, "dev_command %s %s: args: %s", device, command,
				 e);
	}
	size_t size = sb.size;
	msgpack_sbuffer_destroy(&sb);
	struct ldcmd *c = rc ? NULL : calloc(1, sizeof *c);
	if (!rc && !c) {
		rc = LINLI_ENOMEM;
		snprintf(err, sizeof err, "dev_command: out of memory");
	}
	if (!rc) {
		c->r.k = s->k;
		c->r.push = push_answer;
		c->r.fnref = ref;
		snprintf(c->device, sizeof c->device, "%s", device);
		snprintf(c->command, sizeof c->command, "%s", command);
		struct hactor ha;
		rc = hal_api_dev_command_as(hal_actor_of(s, &ha), device, command, args,
					    (uint32_t)tmo, ldcmd_done, c, &c->req, err, sizeof err);
		/* The HAL never answers inside the call: track it now. */
		if (!rc && track(s, &c->r.h, &ldcmd_ops) != 0) {
			hal_command_cancel(s->k->hal, c->req);
			rc = LINLI_ENOMEM;
			snprintf(err, sizeof err, "dev_command: out of memory");
		}
		if (rc)
			reply_free(&c->r);
	}
	record_free(args);
	if (rc) {
		luaL_unref(L, LUA_REGISTRYINDEX, ref);
		return push_fail(L, rc, err);
	}
	lua_Integer req = (lua_Integer)c->req;
	script_charge(L, size / 64);
	lua_pushinteger(L, req);
	return 1;
}

/* ---- 1.1: bus request/reply ----
 *
 * serve, unserve, reply, request and request_cancel over bus.c's
 * request/reply, with the script's context (struct sapi) as the owner of
 * its servers on the bus, so that reply answers any request one of them
 * received. A server (struct lsrv) is a resource like a subscription; a
 * request sent (struct lrq) is an lreply until its answer was handed over,
 * like a device command: released first, it is dropped on the bus and its
 * function is never called.
 */

/* Pack the table at idx as a map ({} too), or nothing for nil. */
static int pack_map_arg(lua_State *L, int idx, msgpack_sbuffer *sb, char *err, size_t errlen)
{
	msgpack_packer pk;
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	if (lua_isnoneornil(L, idx))
		return 0;
	lua_pushnil(L);
	if (!lua_next(L, idx)) {
		msgpack_pack_map(&pk, 0);
		return 0;
	}
	lua_pop(L, 2);
	int rc = script_pack(L, idx, &pk, err, errlen);
	if (!rc && sb->size && ((unsigned char)sb->data[0] & 0xf0) == 0x90) {
		snprintf(err, errlen, "a record must be a table with named fields, not a list");
		rc = LINLI_ETYPE;
	}
	return rc;
}

struct lsrv {
	struct lres h;
	struct kernel *k;
	uint64_t id;
	int fnref;
	char pattern[BUS_TOPIC_MAX + 1];
};

static void lsrv_release(void *arg)
{
	struct lsrv *v = arg;
	unlink_res(&v->h);
	bus_unserve(v->k->bus, v->id, v->h.a);
	free(v);
}

static int lsrv_suspend(void *arg)
{
	struct lsrv *v = arg;
	return bus_serve_suspend(v->k->bus, v->id, true);
}

static int lsrv_resume(void *arg)
{
	struct lsrv *v = arg;
	return bus_serve_suspend(v->k->bus, v->id, false);
}

static void lsrv_describe(void *arg, char *buf, size_t len)
{
	struct lsrv *v = arg;
	snprintf(buf, len, "server %llu of %s", (unsigned long long)v->id, v->pattern);
}

static const struct plug_res_ops lsrv_ops = {
    .kind = "server",
    .release = lsrv_release,
    .suspend = lsrv_suspend,
    .resume = lsrv_resume,
    .describe = lsrv_describe,
};

static bool lsrv_match(const struct lres *r, uint64_t id)
{
	return ((const struct lsrv *)r)->id == id;
}

struct rqpush {
	const struct bus_request *rq;
	const msgpack_object *payload;
};

/* handler(rq): {id, topic, scope, requester, payload}. */
static int push_request(lua_State *L, void *ud)
{
	const struct rqpush *p = ud;
	luaL_checkstack(L, 4, "request");
	lua_createtable(L, 0, 5);
	lua_pushinteger(L, (lua_Integer)p->rq->id);
	lua_setfield(L, -2, "id");
	lua_pushstring(L, p->rq->topic);
	lua_setfield(L, -2, "topic");
	lua_pushstring(L, p->rq->scope);
	lua_setfield(L, -2, "scope");
	lua_pushstring(L, p->rq->requester);
	lua_setfield(L, -2, "requester");
	if (p->payload)
		script_push_mp(L, p->payload);
	else
		lua_newtable(L);
	lua_setfield(L, -2, "payload");
	return 1;
}

/* What a handler returned: nothing (reply later), status [, record], or nil, msg [, code]. */
struct sanswer {
	bool now, failed;
	int status;
	msgpack_sbuffer rec;
	char msg[512];
};

static void take_answer(lua_State *L, int first, void *ud)
{
	struct sanswer *s = ud;
	if (lua_isnil(L, first) && lua_isnil(L, first + 1))
		return; /* the handler replies later */
	s->now = true;
	if (lua_isnil(L, first)) {
		s->failed = true;
		s->status = code_of(L, first + 2);
		int t = lua_type(L, first + 1);
		snprintf(s->msg, sizeof s->msg, "%s",
			 t == LUA_TSTRING || t == LUA_TNUMBER ? lua_tostring(L, first + 1)
							      : "the request failed");
		return;
	}
	if (!lua_isinteger(L, first) || lua_tointeger(L, first) < 0 ||
	    lua_tointeger(L, first) > INT32_MAX)
		luaL_error(L, "a server's handler returns a status (an integer >= 0) and a "
			      "record, or nil, a message and a code, or nothing");
	s->status = (int)lua_tointeger(L, first);
	luaL_argexpected(L, lua_isnoneornil(L, first + 1) || lua_istable(L, first + 1), first + 1,
			 "table or nil");
	char err[256];
	if (pack_map_arg(L, first + 1, &s->rec, err, sizeof err) != 0)
		luaL_error(L, "the reply's record: %s", err);
	script_charge(L, s->rec.size / 64);
}

static void lsrv_serve(const struct bus_request *rq, void *ud)
{
	struct lsrv *v = ud;
	/* v may be gone after the call (unserve inside, a fault): nothing of it below. */
	struct sapi *a = v->h.a;
	struct kernel *k = v->k;
	struct script *s = a->s;
	struct sanswer ans = {.now = false};
	msgpack_sbuffer_init(&ans.rec);
	char err[512];
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	size_t off = 0;
	struct rqpush push = {rq, NULL};
	if (msgpack_unpack_next(&up, rq->payload, rq->payload_len, &off) == MSGPACK_UNPACK_SUCCESS)
		push.payload = &up.data;
	script_set_call_scope(s, rq->scope);
	int rc =
	    script_call(s, v->fnref, push_request, &push, 3, take_answer, &ans, err, sizeof err);
	script_set_call_scope(s, NULL);
	msgpack_unpacked_destroy(&up);
	if (rc) /* the handler broke (logged by the script): the requester learns it now */
		bus_reply(k->bus, rq->id, a, rc, NULL, 0, err, NULL, 0);
	else if (ans.now)
		bus_reply(k->bus, rq->id, a, ans.status, ans.rec.data, ans.rec.size,
			  ans.failed ? ans.msg : NULL, NULL, 0);
	msgpack_sbuffer_destroy(&ans.rec);
}

/* linli.serve(pattern, fn) -> id | nil, msg, code */
static int l_serve(lua_State *L)
{
	struct sapi *a = need(L, "serve");
	const char *pattern = luaL_checkstring(L, 1);
	luaL_checktype(L, 2, LUA_TFUNCTION);
	no_more(L, 2, "pattern and fn");
	script_charge(L, API_CALL_UNITS);
	char err[384] = "";
	int rc = authorize(a, ACT_EVENTS_SUBSCRIBE, own_scope(a), pattern, err, sizeof err);
	if (rc) {
		log_warn(who(a), "serve %s: %s", pattern, err);
		return push_fail(L, rc, err);
	}
	struct lsrv *v = calloc(1, sizeof *v);
	if (!v)
		return push_fail(L, LINLI_ENOMEM, "serve: out of memory");
	v->k = a->k;
	snprintf(v->pattern, sizeof v->pattern, "%s", pattern);
	rc = bus_serve(a->k->bus, pattern, own_scope(a), lsrv_serve, v, a, a->owner, &v->id,
		       err, sizeof err);
	if (!rc && track(a, &v->h, &lsrv_ops) != 0) {
		bus_unserve(a->k->bus, v->id, a);
		rc = LINLI_ENOMEM;
		snprintf(err, sizeof err, "serve: out of memory");
	}
	if (rc) {
		free(v);
		char msg[512];
		snprintf(msg, sizeof msg, "serve %s: %s", pattern,
			 err[0] ? err : linli_strerror(rc));
		log_warn(who(a), "%s", msg);
		return push_fail(L, rc, msg);
	}
	lua_pushvalue(L, 2);
	v->fnref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_pushinteger(L, (lua_Integer)v->id);
	return 1;
}

/* linli.unserve(id) -> true | nil, msg, "LINLI_ENOENT" */
static int l_unserve(lua_State *L)
{
	struct sapi *a = need(L, "unserve");
	lua_Integer id = luaL_checkinteger(L, 1);
	no_more(L, 1, "only id");
	struct lsrv *v = (struct lsrv *)find_res(a, &lsrv_ops, lsrv_match, (uint64_t)id);
	if (!v)
		return push_fail(L, LINLI_ENOENT, "no such server of this script");
	luaL_unref(L, LUA_REGISTRYINDEX, v->fnref);
	release_res(&v->h);
	lua_pushboolean(L, 1);
	return 1;
}

/* linli.reply(id, status, record [, message]) -> true | nil, msg, code */
static int l_reply(lua_State *L)
{
	struct sapi *a = need(L, "reply");
	lua_Integer id = luaL_checkinteger(L, 1);
	int status;
	if (lua_type(L, 2) == LUA_TSTRING) {
		status = code_of(L, 2);
		luaL_argcheck(L, strcmp(lua_tostring(L, 2), linli_errname(status)) == 0, 2,
			      "a status (an integer >= 0) or a code name such as \"LINLI_ENOENT\"");
	} else {
		lua_Integer st = luaL_checkinteger(L, 2);
		luaL_argcheck(L, st >= 0 && st <= INT32_MAX, 2,
			      "a status (an integer >= 0) or a code name such as \"LINLI_ENOENT\"");
		status = (int)st;
	}
	luaL_argexpected(L, lua_isnoneornil(L, 3) || lua_istable(L, 3), 3, "table or nil");
	const char *msg = luaL_optstring(L, 4, NULL);
	no_more(L, 4, "id, status, record and message");
	script_charge(L, API_CALL_UNITS);
	/* Nothing below raises until the buffer is freed. */
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	char err[384] = "";
	int rc = pack_map_arg(L, 3, &sb, err, sizeof err);
	if (rc) { /* name the request, as bus_reply's messages do */
		char e[384];
		snprintf(e, sizeof e, "reply %lld: %s", (long long)id, err);
		snprintf(err, sizeof err, "%s", e);
	} else
		rc = bus_reply(a->k->bus, (uint64_t)id, a, status, sb.data, sb.size, msg, err,
			       sizeof err);
	size_t size = sb.size;
	msgpack_sbuffer_destroy(&sb);
	if (rc) {
		log_warn(who(a), "%s", err);
		return push_fail(L, rc, err);
	}
	script_charge(L, size / 64);
	lua_pushboolean(L, 1);
	return 1;
}

/* A request sent by a script: an lreply until its answer was handed over. */
struct lrq {
	struct lreply r;
	uint64_t id;
	bool answered; /* the bus has let go of it */
	uint32_t timeout_ms;
	char topic[BUS_TOPIC_MAX + 1];
};

static void lrq_release(void *arg)
{
	struct lrq *q = arg;
	unlink_res(&q->r.h);
	if (q->r.timer)
		kernel_timer_cancel(q->r.k, q->r.timer);
	else if (!q->answered)
		bus_request_drop(q->r.k->bus, q->id, q);
	reply_free(&q->r);
}

static void lrq_describe(void *arg, char *buf, size_t len)
{
	struct lrq *q = arg;
	snprintf(buf, len, "request %llu on %s (timeout %u ms)%s", (unsigned long long)q->id,
		 q->topic, q->timeout_ms ? q->timeout_ms : BUS_REQUEST_TIMEOUT_MS,
		 q->answered ? " (answered, not yet handed over)" : "");
}

static const struct plug_res_ops lrq_ops = {
    .kind = "request",
    .release = lrq_release,
    .describe = lrq_describe,
};

static bool lrq_match(const struct lres *r, uint64_t id)
{
	return ((const struct lrq *)r)->id == id;
}

/* fn(record, status, nil, id) or fn(nil, message, code, id); fn is dropped once on the stack. */
static int push_rq_answer(lua_State *L, void *ud)
{
	struct rargs *a = ud;
	luaL_unref(L, LUA_REGISTRYINDEX, a->r->fnref);
	luaL_checkstack(L, 4, "answer");
	if (a->rc >= 0) {
		if (a->result)
			script_push_mp(L, a->result);
		else
			lua_newtable(L);
		lua_pushinteger(L, a->rc);
		lua_pushnil(L);
	} else
		push_failure(L, a);
	lua_pushinteger(L, (lua_Integer)((struct lrq *)a->r)->id);
	return 4;
}

static void lrq_done(uint64_t id, int status, const void *rec, size_t len, const char *msg,
		     void *ud)
{
	(void)id;
	struct lrq *q = ud;
	q->answered = true;
	reply_deliver(&q->r, status, rec, len, msg);
}

/* linli.request(topic, scope, payload, timeout_ms, fn) -> id | nil, msg, code */
static int l_request(lua_State *L)
{
	struct sapi *a = need(L, "request");
	const char *topic = luaL_checkstring(L, 1);
	const char *scope = luaL_optstring(L, 2, scope_now(a));
	luaL_argexpected(L, lua_isnoneornil(L, 3) || lua_istable(L, 3), 3, "table or nil");
	lua_Integer tmo = luaL_optinteger(L, 4, 0);
	luaL_argcheck(L, tmo >= 0 && tmo <= UINT32_MAX, 4, "timeout_ms must be >= 0 (0: 10 s)");
	luaL_checktype(L, 5, LUA_TFUNCTION);
	no_more(L, 5, "topic, scope, payload, timeout_ms and fn");
	script_charge(L, API_CALL_UNITS);
	char err[384] = "";
	int rc = authorize(a, ACT_EVENTS_PUBLISH, scope, topic, err, sizeof err);
	if (rc) {
		log_warn(who(a), "request %s: %s", topic, err);
		return push_fail(L, rc, err);
	}
	lua_pushvalue(L, 5);
	int ref = luaL_ref(L, LUA_REGISTRYINDEX);
	/* Nothing below raises until everything is freed. */
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	struct lrq *q = NULL;
	rc = pack_map_arg(L, 3, &sb, err, sizeof err);
	if (!rc && !(q = calloc(1, sizeof *q))) {
		rc = LINLI_ENOMEM;
		snprintf(err, sizeof err, "out of memory");
	}
	if (!rc) {
		q->r.k = a->k;
		q->r.push = push_rq_answer;
		q->r.fnref = ref;
		q->timeout_ms = (uint32_t)tmo;
		snprintf(q->topic, sizeof q->topic, "%s", topic);
		struct bus_msg m = {.topic = topic,
				    .publisher = a->owner,
				    .scope = scope,
				    .payload = sb.data,
				    .payload_len = sb.size};
		rc = bus_request(a->k->bus, &m, (uint32_t)tmo, lrq_done, q, q, &q->id, err,
				 sizeof err);
		/* The bus never answers inside the call: track it now. */
		if (!rc && track(a, &q->r.h, &lrq_ops) != 0) {
			bus_request_drop(a->k->bus, q->id, q);
			rc = LINLI_ENOMEM;
			snprintf(err, sizeof err, "out of memory");
		}
		if (rc)
			reply_free(&q->r);
	}
	size_t size = sb.size;
	msgpack_sbuffer_destroy(&sb);
	if (rc) {
		luaL_unref(L, LUA_REGISTRYINDEX, ref);
		char msg[512];
		snprintf(msg, sizeof msg, "request %s: %s", topic,
			 err[0] ? err : linli_strerror(rc));
		log_warn(who(a), "%s", msg);
		return push_fail(L, rc, msg);
	}
	script_charge(L, size / 64);
	lua_pushinteger(L, (lua_Integer)q->id);
	return 1;
}

/* linli.request_cancel(id) -> true | nil, msg, "LINLI_ENOENT" */
static int l_request_cancel(lua_State *L)
{
	struct sapi *a = need(L, "request_cancel");
	lua_Integer id = luaL_checkinteger(L, 1);
	no_more(L, 1, "only id");
	struct lrq *q = (struct lrq *)find_res(a, &lrq_ops, lrq_match, (uint64_t)id);
	if (!q)
		return push_fail(L, LINLI_ENOENT, "no such pending request of this script");
	luaL_unref(L, LUA_REGISTRYINDEX, q->r.fnref);
	release_res(&q->r.h);
	lua_pushboolean(L, 1);
	return 1;
}

/* ---- the binder, attach, detach ---- */

/* ---- store change notices and schemas (1.1) ---- */

struct lwatch {
	struct lres h;
	struct store_api_watch *w;
	int fnref;
	char dataset[CAT_NAME_MAX + 1];
};

static void lwatch_release(void *arg)
{
	struct lwatch *lw = arg;
	unlink_res(&lw->h);
	store_api_unwatch_as(lw->w);
	free(lw);
}

static void lwatch_describe(void *arg, char *buf, size_t len)
{
	struct lwatch *lw = arg;
	snprintf(buf, len, "store watch %llu of %s",
		 (unsigned long long)store_api_watch_id(lw->w), lw->dataset);
}

static const struct plug_res_ops lwatch_ops = {
    .kind = "store watch",
    .release = lwatch_release,
    .describe = lwatch_describe,
};

static bool lwatch_match(const struct lres *r, uint64_t id)
{
	return store_api_watch_id(((const struct lwatch *)r)->w) == id;
}

/* fn(change): {dataset = , scope = , id = , kind = } */
static int push_change(lua_State *L, void *ud)
{
	const struct linli_change *ch = ud;
	luaL_checkstack(L, 3, "change");
	lua_createtable(L, 0, 4);
	lua_pushstring(L, ch->dataset);
	lua_setfield(L, -2, "dataset");
	lua_pushstring(L, ch->scope);
	lua_setfield(L, -2, "scope");
	lua_pushstring(L, ch->id);
	lua_setfield(L, -2, "id");
	lua_pushstring(L, ch->kind);
	lua_setfield(L, -2, "kind");
	return 1;
}

/* The store's call after a commit (kernel batch end: the script never runs then). */
static void lwatch_fn(void *ud, const struct linli_change *ch)
{
	struct lwatch *lw = ud;
	struct script *s = lw->h.a->s; /* the call may release lw (unwatch, a fault) */
	if (script_state(s) != SCRIPT_READY)
		return;
	char err[512];
	script_set_call_scope(s, ch->scope);
	int rc = script_call(s, lw->fnref, push_change, (void *)ch, 0, NULL, NULL, err, sizeof err);
	script_set_call_scope(s, NULL);
	if (rc == LINLI_EBUSY)
		log_warn(script_name(s), "store watch: the script was busy: change %s %s/%s dropped",
			 ch->kind, ch->scope, ch->id);
}

/* linli.store_watch(dataset, fn) -> id | nil, msg, code; later fn(change) */
static int l_store_watch(lua_State *L)
{
	struct sapi *s = need(L, "store_watch");
	const char *dataset = luaL_checkstring(L, 1);
	luaL_checktype(L, 2, LUA_TFUNCTION);
	no_more(L, 2, "dataset and fn");
	script_charge(L, API_CALL_UNITS);
	lua_pushvalue(L, 2);
	int ref = luaL_ref(L, LUA_REGISTRYINDEX);
	struct lwatch *lw = calloc(1, sizeof *lw);
	if (!lw) {
		luaL_unref(L, LUA_REGISTRYINDEX, ref);
		return push_fail(L, LINLI_ENOMEM, "store_watch: out of memory");
	}
	lw->fnref = ref;
	snprintf(lw->dataset, sizeof lw->dataset, "%s", dataset);
	struct lactor la;
	const struct store_actor *a = actor_of(s, &la);
	int rc = store_api_watch_as(a, dataset, lwatch_fn, lw, &lw->w);
	if (rc == 0 && track(s, &lw->h, &lwatch_ops)) {
		store_api_unwatch_as(lw->w);
		snprintf(a->st->last_error, sizeof a->st->last_error, "store_watch: out of memory");
		rc = LINLI_ENOMEM;
	}
	if (rc) {
		free(lw);
		luaL_unref(L, LUA_REGISTRYINDEX, ref);
		return store_fail(L, a, rc);
	}
	lua_pushinteger(L, (lua_Integer)store_api_watch_id(lw->w));
	return 1;
}

/* linli.store_unwatch(id) -> true | nil, msg, "LINLI_ENOENT" */
static int l_store_unwatch(lua_State *L)
{
	struct sapi *s = need(L, "store_unwatch");
	lua_Integer id = luaL_checkinteger(L, 1);
	no_more(L, 1, "only id");
	struct lwatch *lw = (struct lwatch *)find_res(s, &lwatch_ops, lwatch_match, (uint64_t)id);
	if (!lw)
		return push_fail(L, LINLI_ENOENT, "store_unwatch: no such watch of this script");
	luaL_unref(L, LUA_REGISTRYINDEX, lw->fnref);
	release_res(&lw->h);
	lua_pushboolean(L, 1);
	return 1;
}

/* linli.dataset_schema(dataset) -> schema | nil, msg, code */
static int l_dataset_schema(lua_State *L)
{
	struct sapi *s = need(L, "dataset_schema");
	const char *dataset = luaL_checkstring(L, 1);
	no_more(L, 1, "only the dataset");
	script_charge(L, API_CALL_UNITS);
	struct lactor la;
	const struct store_actor *a = actor_of(s, &la);
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	int rc = store_api_schema_as(a, dataset, &pk);
	return push_sb(L, rc, &sb, false, a->st->last_error,
		       "dataset_schema: out of memory for the schema");
}

/* linli.datasets() -> list | nil, msg, code */
static int l_datasets(lua_State *L)
{
	struct sapi *s = need(L, "datasets");
	no_more(L, 0, "no arguments");
	script_charge(L, API_CALL_UNITS);
	struct lactor la;
	const struct store_actor *a = actor_of(s, &la);
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	int rc = store_api_datasets_as(a, &pk);
	return push_sb(L, rc, &sb, false, a->st->last_error,
		       "datasets: out of memory for the list");
}

static void bind_api(lua_State *L, struct script *s, void *ud)
{
	(void)s;
	(void)ud;
	static const luaL_Reg fns[] = {
	    /* log is script.c's (linli.log(level, ...)); logv and set_userdata/userdata
	     * have no Lua counterpart, nor do the record accessors (rec_*, arr_*):
	     * records are plain tables. */
	    {"set_error", l_set_error},
	    {"plugin_name", l_plugin_name},
	    {"plugin_scope", l_plugin_scope},
	    {"time_now_ms", l_time_now_ms},
	    {"cmd_register", l_cmd_register},
	    {"cmd_unregister", l_cmd_unregister},
	    {"timer_add", l_timer_add},
	    {"timer_cancel", l_timer_cancel},
	    {"subscribe", l_subscribe},
	    {"unsubscribe", l_unsubscribe},
	    {"publish", l_publish},
	    {"store_get", l_store_get},
	    {"store_put", l_store_put},
	    {"store_delete", l_store_delete},
	    {"store_scan", l_store_scan},
	    {"store_update", l_store_update},
	    {"store_on_commit", l_store_on_commit},
	    /* the application members of the devices block; the driver ones are C only */
	    {"plugin_config", l_plugin_config},
	    {"device_classes", l_device_classes},
	    {"dev_info", l_dev_info},
	    {"dev_get", l_dev_get},
	    {"dev_command", l_dev_command},
	    /* 1.1: the caller, actions, duties */
	    {"action_declare", l_action_declare},
	    {"cmd_require", l_cmd_require},
	    {"caller_may", l_caller_may},
	    {"duty_holders", l_duty_holders},
	    {"audit", l_audit},

	    /* 1.1: routes */
	    {"route_register", l_route_register},
	    {"route_require", l_route_require},
	    {"route_unregister", l_route_unregister},

	    /* 1.1: bus request/reply */
	    {"serve", l_serve},
	    {"unserve", l_unserve},
	    {"reply", l_reply},
	    {"request", l_request},
	    {"request_cancel", l_request_cancel},

	    /* 1.1: store changes, schemas */
	    {"store_watch", l_store_watch},
	    {"store_unwatch", l_store_unwatch},
	    {"dataset_schema", l_dataset_schema},
	    {"datasets", l_datasets},

	    /* 1.1: devices */

	    /* 1.1: time */
	    {"time_zone", l_time_zone},
	    {"time_local", l_time_local},
	    {"time_from_local", l_time_from_local},
	    {"time_day_start", l_time_day_start},

	    {NULL, NULL},
	};
	luaL_setfuncs(L, fns, 0);
	lua_pushinteger(L, LINLI_SDK_MAJOR);
	lua_setfield(L, -2, "major");
	lua_pushinteger(L, LINLI_SDK_MINOR);
	lua_setfield(L, -2, "minor");
}

void script_api_init(struct kernel *k)
{
	script_set_binder(bind_api, k);
}

static void on_fault(struct script *s, void *ud)
{
	struct sapi *a = ud;
	(void)s;
	if (a->p)
		plug_fault(a->p, script_fault(a->s)); /* releases through the plugin */
	else
		release_all(a);
}

int script_api_attach(struct kernel *k, struct script *s, struct plugin *p)
{
	struct sapi *a = calloc(1, sizeof *a);
	if (!a)
		return LINLI_ENOMEM;
	a->k = k;
	a->s = s;
	a->p = p;
	if (p)
		snprintf(a->owner, sizeof a->owner, "%s", plug_name(p));
	else {
		const struct script_ruledecl *d = script_rule(s);
		int n = d ? d->n_capabilities : 0;
		a->grants = calloc((size_t)n + 1, sizeof *a->grants);
		if (!a->grants) {
			free(a);
			return LINLI_ENOMEM;
		}
		for (int i = 0; i < n; i++)
			a->grants[i] = d->capabilities[i];
		snprintf(a->owner, sizeof a->owner, "rule %s", script_name(s));
	}
	script_set_user(s, a);
	script_on_fault(s, on_fault, a);
	return 0;
}

void script_api_detach(struct script *s)
{
	struct sapi *a = script_user(s);
	if (!a)
		return;
	release_all(a);
	script_on_fault(s, NULL, NULL);
	script_set_user(s, NULL);
	free(a->grants);
	free(a);
}

int script_api_rule_on(struct script *s, char *err, size_t errlen)
{
	struct sapi *a = script_user(s);
	const struct script_ruledecl *d = script_rule(s);
	if (!a || !d)
		return LINLI_EINVAL;
	if (!a->k->bus)
		return 0;
	uint64_t id;
	return subscribe(a, d->on, LUA_NOREF, &id, err, errlen);
}
