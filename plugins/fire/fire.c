/*
 * fire — the fire-safety plugin of the safety family (plugins/fire/).
 *
 * It watches the HAL's smoke detectors, hydrants and gas meters and raises
 * alarms through the alarms plugin (a request on alarmreq/raise): a smoke
 * detector's alarm event; smoke density over a threshold for N s; hydrant
 * pressure below or above its band for N s, its low_pressure and leak
 * events; a gas meter's gas_leak event; any of them gone unavailable. Two
 * detectors of one building (the devices dataset's `building`) within a
 * window raise a critical fire_confirmed. Thresholds, durations, severities
 * and the window are plugins.fire.* in linli.cfg, validated at load and again
 * when a reload (SIGHUP) changes them. A condition that returns to normal
 * for normal_for_s, and a device that comes back online, clears its alarm
 * by a request on alarmreq/clear (the source's own clear condition; the
 * operator still acknowledges it). Everything runs on the kernel thread; it
 * never writes the store and never blocks.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linli/linli.h>

#include "alarmreq.h"
#include "plugcfg.h"
#include "plugcmd.h"

static const struct linli_api *api;

/* The alarm types this plugin raises: names, default severities. */
enum ftype {
	T_SMOKE,	 /* a smoke detector's alarm event */
	T_SMOKE_DENSITY, /* smoke density over the threshold for smoke_for_s */
	T_LOW_PRESSURE,	 /* hydrant pressure below pressure_low, or its low_pressure event */
	T_HIGH_PRESSURE, /* hydrant pressure above pressure_high */
	T_LEAK,		 /* a hydrant's leak event */
	T_GAS_LEAK,	 /* a gas meter's gas_leak event */
	T_UNAVAILABLE,	 /* a watched device gone unavailable */
	T_CONFIRMED,	 /* two detectors of one building within the window */
	T_N
};
static const char *const type_names[T_N] = {
    "smoke",	    "smoke_density", "hydrant_low_pressure", "hydrant_high_pressure",
    "hydrant_leak", "gas_leak",	     "device_unavailable",   "fire_confirmed"};
static const int default_sev[T_N] = {1, 1, 1, 2, 2, 0, 3, 0};

#define SECONDS_MAX  86400 /* the longest duration or window: a day */
#define BUCKETS	     1024  /* conditions hash buckets */
#define BUILDING_MAX 64	   /* the catalog's max_len of devices.building */
#define CLASS_MAX    32

struct fcfg {
	double smoke_density;		    /* dB/m */
	double pressure_low, pressure_high; /* MPa */
	int64_t smoke_for_ms, pressure_for_ms, normal_for_ms, window_ms;
	int sev[T_N];
};

static const struct fcfg cfg_defaults = {.smoke_density = 1.0,
					 .pressure_low = 0.15,
					 .pressure_high = 1.6,
					 .smoke_for_ms = 10000,
					 .pressure_for_ms = 5000,
					 .normal_for_ms = 30000,
					 .window_ms = 300000};

/* One reading condition of one device (a threshold crossed, or just back from it). */
struct cond {
	struct cond *next;
	char device[LINLI_ID_MAX + 1];
	char scope[LINLI_SCOPE_MAX + 1];
	int type;
	bool over;	      /* the latest reading is past the threshold */
	bool raised;	      /* the alarm was raised for this excursion */
	int64_t since;	      /* over since */
	int64_t normal_since; /* back within the threshold since (raised only) */
	double value;	      /* the latest reading */
};

/* A detector that triggered, for the building rule. */
struct hit {
	struct hit *next;
	char device[LINLI_ID_MAX + 1];
	char scope[LINLI_SCOPE_MAX + 1];
	char building[BUILDING_MAX + 1];
	int64_t at;
};

/* Where a device is (devices.building, devices.floor), as last read. */
struct loc {
	struct loc *next;
	char device[LINLI_ID_MAX + 1];
	char scope[LINLI_SCOPE_MAX + 1];
	char building[BUILDING_MAX + 1]; /* "" when none */
	int64_t floor;
	bool has_floor;
};

struct fstate {
	struct fcfg cfg;
	struct loc *locs[BUCKETS];
	char *cfg_json; /* the plugins.fire group last seen (applied or refused) */
	struct cond *buckets[BUCKETS];
	struct hit *hits;
	struct alarmreq alarms; /* raised, failed, cleared per type */
	int64_t events, readings, normal[T_N], refused_reloads, loc_reads;
};

static struct fstate *state; /* init to fini */

/* ---- configuration ---- */

/* The plugins.fire group c into the state ud's cfg when good, or LINLI_ECONFIG naming the key. */
static int cfg_parse(const struct plugcfg *p, linli_record *c, void *ud)
{
	static const char *const keys[] = {"smoke_density",	"smoke_for_s",	  "pressure_low",
					   "pressure_high",	"pressure_for_s", "normal_for_s",
					   "building_window_s", "severity"};
	struct fcfg f = cfg_defaults;
	memcpy(f.sev, default_sev, sizeof f.sev);
	int rc = plugcfg_keys(p, c, keys, sizeof keys / sizeof keys[0]);
	if (!rc)
		rc = plugcfg_num(p, c, "smoke_density", 0.01, 10.0, "dB/m", &f.smoke_density);
	if (!rc)
		rc = plugcfg_num(p, c, "pressure_low", 0.0, 2.5, "MPa", &f.pressure_low);
	if (!rc)
		rc = plugcfg_num(p, c, "pressure_high", 0.0, 2.5, "MPa", &f.pressure_high);
	if (!rc)
		rc = plugcfg_int(p, c, "smoke_for_s", 1, SECONDS_MAX, 1000, "whole seconds",
				 &f.smoke_for_ms);
	if (!rc)
		rc = plugcfg_int(p, c, "pressure_for_s", 1, SECONDS_MAX, 1000, "whole seconds",
				 &f.pressure_for_ms);
	if (!rc)
		rc = plugcfg_int(p, c, "normal_for_s", 1, SECONDS_MAX, 1000, "whole seconds",
				 &f.normal_for_ms);
	if (!rc)
		rc = plugcfg_int(p, c, "building_window_s", 1, SECONDS_MAX, 1000, "whole seconds",
				 &f.window_ms);
	if (!rc)
		rc = plugcfg_sevs(p, c, type_names, T_N, NULL, f.sev);
	if (!rc && f.pressure_low >= f.pressure_high)
		rc = plugcfg_err(p, "pressure_high", "%g MPa must be above pressure_low (%g)",
				 f.pressure_high, f.pressure_low);
	if (!rc)
		((struct fstate *)ud)->cfg = f;
	return rc;
}

static linli_record *cfg_record(const struct fcfg *f)
{
	linli_record *r = api->rec_new();
	if (!r)
		return NULL;
	api->rec_set_float(r, "smoke_density", f->smoke_density);
	api->rec_set_int(r, "smoke_for_s", f->smoke_for_ms / 1000);
	api->rec_set_float(r, "pressure_low", f->pressure_low);
	api->rec_set_float(r, "pressure_high", f->pressure_high);
	api->rec_set_int(r, "pressure_for_s", f->pressure_for_ms / 1000);
	api->rec_set_int(r, "normal_for_s", f->normal_for_ms / 1000);
	api->rec_set_int(r, "building_window_s", f->window_ms / 1000);
	plugcfg_put_sevs(api, r, type_names, T_N, f->sev);
	return r;
}

/* ---- where a device is: its building and floor, from the devices dataset ---- */

/*
 * Each read of `devices` (it has a sensitive field) is audited, so a
 * device's place is read once and kept until its record changes (a
 * store_watch drops it): a burst of events is one read.
 */
static size_t loc_bucket(const char *device)
{
	uint64_t h = 1469598103934665603ULL;
	for (const char *s = device; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (size_t)(h & (BUCKETS - 1));
}

static struct loc **find_loc(struct fstate *st, const char *scope, const char *device)
{
	struct loc **pp = &st->locs[loc_bucket(device)];
	while (*pp && (strcmp((*pp)->device, device) || strcmp((*pp)->scope, scope)))
		pp = &(*pp)->next;
	return pp;
}

static const struct loc *where_of(linli_ctx *ctx, struct fstate *st, const char *scope,
				  const char *device)
{
	static const struct loc none;
	struct loc **pp = find_loc(st, scope, device), *l = *pp;
	if (l)
		return l;
	linli_record *r = NULL;
	const char *b = NULL;
	if (!(l = calloc(1, sizeof *l)))
		return &none;
	snprintf(l->device, sizeof l->device, "%s", device);
	snprintf(l->scope, sizeof l->scope, "%s", scope);
	if (api->store_get(ctx, "devices", scope, device, &r, NULL) == 0) {
		if (api->rec_get_str(r, "building", &b, NULL) == 0)
			snprintf(l->building, sizeof l->building, "%s", b);
		l->has_floor = api->rec_get_int(r, "floor", &l->floor) == 0;
		api->rec_free(r);
	}
	st->loc_reads++;
	*pp = l;
	return l;
}

static void on_device_change(linli_ctx *ctx, const struct linli_change *ch, void *ud)
{
	(void)ctx;
	struct loc **pp = find_loc(ud, ch->scope, ch->id), *l = *pp;
	if (l) {
		*pp = l->next;
		free(l);
	}
}

/* ---- raising through the alarms plugin ---- */

/* Raise alarm type t of `source` at scope, with details (printf). */
static void raise_alarm(linli_ctx *ctx, struct fstate *st, int t, const char *scope,
			const char *source, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static void raise_alarm(linli_ctx *ctx, struct fstate *st, int t, const char *scope,
			const char *source, const char *fmt, ...)
{
	char details[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(details, sizeof details, fmt, ap);
	va_end(ap);
	alarmreq_raise(&st->alarms, ctx, t, plugcfg_sev_names[st->cfg.sev[t]], scope, source,
		       details);
}

/* Clear the active alarm t of device at scope: its condition is over. */
static void clear_device(linli_ctx *ctx, int t, const char *scope, const char *device,
			 const char *why)
{
	char src[LINLI_ID_MAX + 8];
	snprintf(src, sizeof src, "device:%s", device);
	alarmreq_clear(&state->alarms, ctx, t, scope, src, why);
}

/* " (building B, floor F)" or "" into buf. */
static const char *where_text(const char *building, int64_t floor, bool has_floor, char *buf,
			      size_t n)
{
	if (building[0] && has_floor)
		snprintf(buf, n, " (building %s, floor %lld)", building, (long long)floor);
	else if (building[0])
		snprintf(buf, n, " (building %s)", building);
	else if (has_floor)
		snprintf(buf, n, " (floor %lld)", (long long)floor);
	else
		buf[0] = '\0';
	return buf;
}

/* Raise alarm t of device at scope, its building and floor in the details. */
static void raise_device(linli_ctx *ctx, struct fstate *st, int t, const char *scope,
			 const char *device, const char *what)
{
	char src[LINLI_ID_MAX + 8], w[BUILDING_MAX + 48];
	const struct loc *l = where_of(ctx, st, scope, device);
	snprintf(src, sizeof src, "device:%s", device);
	raise_alarm(ctx, st, t, scope, src, "%s%s", what,
		    where_text(l->building, l->floor, l->has_floor, w, sizeof w));
}

/* Forget the detectors that fell out of the window. */
static void prune_hits(struct fstate *st, int64_t now)
{
	for (struct hit **pp = &st->hits; *pp;) {
		struct hit *h = *pp;
		if (now - h->at > st->cfg.window_ms) {
			*pp = h->next;
			free(h);
		} else
			pp = &h->next;
	}
}

/*
 * A detector of `device` triggered (its alarm event, or smoke density held
 * over the threshold): with another detector of the same building at the
 * same scope within the window, raise fire_confirmed for the building.
 */
static void detector_hit(linli_ctx *ctx, struct fstate *st, const char *scope, const char *device)
{
	int64_t now = api->time_now_ms();
	prune_hits(st, now);
	struct hit n = {.at = now};
	const struct loc *l = where_of(ctx, st, scope, device);
	if (!l->building[0])
		return; /* no building known: nothing to count it with */
	snprintf(n.building, sizeof n.building, "%s", l->building);
	snprintf(n.device, sizeof n.device, "%s", device);
	snprintf(n.scope, sizeof n.scope, "%s", scope);
	struct hit *same = NULL;
	char list[768] = "";
	size_t o = 0, others = 0;
	for (struct hit *h = st->hits; h; h = h->next) {
		if (strcmp(h->scope, scope) || strcmp(h->building, n.building))
			continue;
		if (strcmp(h->device, device) == 0) {
			same = h;
			continue;
		}
		others++;
		if (o < sizeof list)
			o += (size_t)snprintf(list + o, sizeof list - o, ", %s", h->device);
	}
	if (same)
		same->at = now;
	else {
		struct hit *h = malloc(sizeof *h);
		if (!h)
			return;
		*h = n;
		h->next = st->hits;
		st->hits = h;
	}
	if (!others)
		return;
	char src[BUILDING_MAX + 32];
	snprintf(src, sizeof src, "plugin:fire/building/%s", n.building);
	raise_alarm(ctx, st, T_CONFIRMED, scope, src,
		    "%zu detectors of building %s within %lld s: %s%s", others + 1, n.building,
		    (long long)(st->cfg.window_ms / 1000), device, list);
}

/* ---- reading conditions ---- */

static size_t bucket(const char *device, int type)
{
	uint64_t h = 1469598103934665603ULL ^ (uint64_t)type;
	for (const char *s = device; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (size_t)(h & (BUCKETS - 1));
}

static struct cond **find_cond(struct fstate *st, const char *device, int type)
{
	struct cond **pp = &st->buckets[bucket(device, type)];
	while (*pp && ((*pp)->type != type || strcmp((*pp)->device, device)))
		pp = &(*pp)->next;
	return pp;
}

static int64_t hold_ms(const struct fcfg *f, int type)
{
	return type == T_SMOKE_DENSITY ? f->smoke_for_ms : f->pressure_for_ms;
}

/* Raise c's alarm: it has been past its threshold for its hold time. */
static void cond_raise(linli_ctx *ctx, struct fstate *st, struct cond *c)
{
	char what[160];
	c->raised = true;
	c->normal_since = 0;
	if (c->type == T_SMOKE_DENSITY)
		snprintf(what, sizeof what, "smoke density %.2f dB/m over %.2f for %lld s",
			 c->value, st->cfg.smoke_density, (long long)(st->cfg.smoke_for_ms / 1000));
	else
		snprintf(what, sizeof what, "hydrant pressure %.2f MPa %s %.2f for %lld s",
			 c->value, c->type == T_LOW_PRESSURE ? "below" : "above",
			 c->type == T_LOW_PRESSURE ? st->cfg.pressure_low : st->cfg.pressure_high,
			 (long long)(st->cfg.pressure_for_ms / 1000));
	raise_device(ctx, st, c->type, c->scope, c->device, what);
	if (c->type == T_SMOKE_DENSITY)
		detector_hit(ctx, st, c->scope, c->device);
}

/* Back to normal long enough: counted, logged, its alarm cleared, forgotten. */
static void cond_normal(linli_ctx *ctx, struct fstate *st, struct cond **pp)
{
	struct cond *c = *pp;
	char why[96];
	st->normal[c->type]++;
	snprintf(why, sizeof why, "back to normal for %lld s",
		 (long long)(st->cfg.normal_for_ms / 1000));
	api->log(ctx, LINLI_LOG_INFO, "%s of device %s at %s %s: clearing its alarm",
		 type_names[c->type], c->device, c->scope, why);
	clear_device(ctx, c->type, c->scope, c->device, why);
	*pp = c->next;
	free(c);
}

/* One reading of device for condition type: past its threshold or not. */
static void cond_check(linli_ctx *ctx, struct fstate *st, const char *scope, const char *device,
		       int type, bool past, double value)
{
	struct cond **pp = find_cond(st, device, type), *c = *pp;
	int64_t now = api->time_now_ms();
	if (!c && !past)
		return;
	if (!c) {
		if (!(c = calloc(1, sizeof *c)))
			return;
		snprintf(c->device, sizeof c->device, "%s", device);
		c->type = type;
		*pp = c;
	}
	snprintf(c->scope, sizeof c->scope, "%s", scope);
	c->value = value;
	if (past) {
		if (!c->over)
			c->since = now;
		c->over = true;
		c->normal_since = 0;
		if (!c->raised && now - c->since >= hold_ms(&st->cfg, type))
			cond_raise(ctx, st, c);
		return;
	}
	if (!c->raised) { /* back before it was held long enough: nothing happened */
		*pp = c->next;
		free(c);
		return;
	}
	if (c->over || !c->normal_since)
		c->normal_since = now;
	c->over = false;
	if (now - c->normal_since >= st->cfg.normal_for_ms)
		cond_normal(ctx, st, pp);
}

/* ---- bus handlers ---- */

/* "dev/<class>/<id>/<rest...>": class and id into their buffers; rest or NULL. */
static const char *split_topic(const char *topic, char *cls, char *id)
{
	const char *a = strncmp(topic, "dev/", 4) == 0 ? topic + 4 : NULL;
	const char *b = a ? strchr(a, '/') : NULL;
	const char *c = b ? strchr(b + 1, '/') : NULL;
	if (!c || (size_t)(b - a) > CLASS_MAX || (size_t)(c - b - 1) > LINLI_ID_MAX)
		return NULL;
	memcpy(cls, a, (size_t)(b - a));
	cls[b - a] = '\0';
	memcpy(id, b + 1, (size_t)(c - b - 1));
	id[c - b - 1] = '\0';
	return c + 1;
}

static int on_reading(linli_ctx *ctx, const struct linli_event *ev, void *ud)
{
	struct fstate *st = ud;
	char cls[CLASS_MAX + 1], id[LINLI_ID_MAX + 1];
	double v = 0;
	if (!split_topic(ev->topic, cls, id) || api->rec_get_float(ev->payload, "value", &v))
		return 0;
	st->readings++;
	if (strcmp(cls, "smoke") == 0)
		cond_check(ctx, st, ev->scope, id, T_SMOKE_DENSITY, v > st->cfg.smoke_density, v);
	else {
		cond_check(ctx, st, ev->scope, id, T_LOW_PRESSURE, v < st->cfg.pressure_low, v);
		cond_check(ctx, st, ev->scope, id, T_HIGH_PRESSURE, v > st->cfg.pressure_high, v);
	}
	return 0;
}

/* Which alarm a device event raises: class, event, type. */
static const struct {
	const char *cls, *event;
	int type;
	const char *what;
} event_map[] = {
    {"smoke", "alarm", T_SMOKE, "smoke detector alarm"},
    {"hydrant", "low_pressure", T_LOW_PRESSURE, "hydrant reports low pressure"},
    {"hydrant", "leak", T_LEAK, "hydrant leak"},
    {"gas_meter", "gas_leak", T_GAS_LEAK, "gas leak"},
};

static int on_event(linli_ctx *ctx, const struct linli_event *ev, void *ud)
{
	struct fstate *st = ud;
	char cls[CLASS_MAX + 1], id[LINLI_ID_MAX + 1];
	const char *rest = split_topic(ev->topic, cls, id);
	if (!rest || strncmp(rest, "event/", 6) != 0)
		return 0;
	const char *name = rest + 6;
	st->events++;
	if (strcmp(name, "unavailable") == 0) {
		char what[96];
		snprintf(what, sizeof what, "%s %s stopped reporting (unavailable)", cls, id);
		raise_device(ctx, st, T_UNAVAILABLE, ev->scope, id, what);
		struct cond **pp = find_cond(st, id, T_UNAVAILABLE);
		if (!*pp && (*pp = calloc(1, sizeof **pp))) { /* remembered until it is back */
			snprintf((*pp)->device, sizeof(*pp)->device, "%s", id);
			snprintf((*pp)->scope, sizeof(*pp)->scope, "%s", ev->scope);
			(*pp)->type = T_UNAVAILABLE;
			(*pp)->raised = true;
		}
		return 0;
	}
	if (strcmp(name, "online") == 0) { /* back: counted if it was gone */
		struct cond **pp = find_cond(st, id, T_UNAVAILABLE), *c = *pp;
		if (c) {
			st->normal[T_UNAVAILABLE]++;
			clear_device(ctx, T_UNAVAILABLE, c->scope, c->device, "back online");
			*pp = c->next;
			free(c);
		}
		return 0;
	}
	for (size_t i = 0; i < sizeof event_map / sizeof event_map[0]; i++) {
		if (strcmp(event_map[i].cls, cls) || strcmp(event_map[i].event, name))
			continue;
		raise_device(ctx, st, event_map[i].type, ev->scope, id, event_map[i].what);
		if (event_map[i].type == T_SMOKE)
			detector_hit(ctx, st, ev->scope, id);
	}
	return 0;
}

/* Every second: hold times reached without a new reading, normal long enough, a reload. */
static void sweep(linli_ctx *ctx, void *ud)
{
	struct fstate *st = ud;
	int64_t now = api->time_now_ms();
	for (size_t i = 0; i < BUCKETS; i++)
		for (struct cond **pp = &st->buckets[i]; *pp;) {
			struct cond *c = *pp;
			if (c->over && !c->raised && now - c->since >= hold_ms(&st->cfg, c->type))
				cond_raise(ctx, st, c);
			if (!c->over && c->raised && c->normal_since &&
			    now - c->normal_since >= st->cfg.normal_for_ms) {
				cond_normal(ctx, st, pp);
				continue;
			}
			pp = &c->next;
		}
	prune_hits(st, now);
	plugcfg_reload(api, ctx, "fire", &st->cfg_json, cfg_parse, st, &st->refused_reloads);
}

/* ---- the console ---- */

static linli_record *per_type(linli_record *r, const char *key, const int64_t *v)
{
	linli_record *m = NULL;
	if (api->rec_set_map(r, key, &m) == 0)
		for (int i = 0; i < T_N; i++)
			api->rec_set_int(m, type_names[i], v[i]);
	return m;
}

static int cmd_stats(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		     char *err, size_t errlen)
{
	(void)ctx;
	struct fstate *st = req->ud;
	size_t watching = 0, hits = 0;
	for (size_t i = 0; i < BUCKETS; i++)
		for (struct cond *c = st->buckets[i]; c; c = c->next)
			watching++;
	for (struct hit *h = st->hits; h; h = h->next)
		hits++;
	linli_record *r = api->rec_new(), *c = cfg_record(&st->cfg);
	if (!r || !c) {
		api->rec_free(r);
		api->rec_free(c);
		return snprintf(err, errlen, "out of memory"), LINLI_ENOMEM;
	}
	api->rec_set_int(r, "events", st->events);
	api->rec_set_int(r, "readings", st->readings);
	alarmreq_put_counts(&st->alarms, r);
	per_type(r, "normal", st->normal);
	api->rec_set_int(r, "watching", (int64_t)watching);
	api->rec_set_int(r, "detectors_in_window", (int64_t)hits);
	api->rec_set_int(r, "refused_reloads", st->refused_reloads);
	api->rec_set_int(r, "device_reads", st->loc_reads);
	api->rec_set_record(r, "config", c);
	api->rec_free(c);
	*reply = r;
	return 0;
}

/* ---- init and fini ---- */

static void free_state(struct fstate *st)
{
	for (size_t i = 0; i < BUCKETS; i++)
		for (struct cond *c = st->buckets[i], *n; c; c = n) {
			n = c->next;
			free(c);
		}
	for (struct hit *h = st->hits, *n; h; h = n) {
		n = h->next;
		free(h);
	}
	for (size_t i = 0; i < BUCKETS; i++)
		for (struct loc *l = st->locs[i], *n; l; l = n) {
			n = l->next;
			free(l);
		}
	free(st->cfg_json);
	free(st);
}

static int fire_init(linli_ctx *ctx, const struct linli_api *a)
{
	static const char *const readings[] = {"dev/smoke/+/smoke_density",
					       "dev/hydrant/+/pressure"};
	static const char *const events[] = {"dev/smoke/+/event/#", "dev/hydrant/+/event/#",
					     "dev/gas_meter/+/event/#"};
	api = a;
	char err[512] = "";
	bool changed = false;
	struct fstate *st = calloc(1, sizeof *st);
	int rc = st ? 0 : LINLI_ENOMEM;
	if (!rc)
		alarmreq_init(&st->alarms, api, type_names, T_N);
	if (!rc)
		rc = plugcfg_load(&(const struct plugcfg){api, "fire", err, sizeof err}, ctx,
				  &st->cfg_json, cfg_parse, st, &changed);
	for (size_t i = 0; !rc && i < sizeof readings / sizeof readings[0]; i++)
		rc = api->subscribe(ctx, readings[i], on_reading, st, NULL);
	for (size_t i = 0; !rc && i < sizeof events / sizeof events[0]; i++)
		rc = api->subscribe(ctx, events[i], on_event, st, NULL);
	if (!rc)
		rc = api->store_watch(ctx, "devices", on_device_change, st, NULL);
	static const struct plugcmd_action action = {"fire.stats", "operator", NULL, NULL,
						     "see fire's counters and configuration"};
	static const struct plugcmd_cmd cmd = {"stats", "", "events seen, alarms raised per type, the configuration",
					       "fire.stats", cmd_stats};
	if (!rc)
		rc = plugcmd_register(api, ctx, &action, 1, &cmd, 1, NULL, 0, st, err, sizeof err);
	if (!rc)
		rc = api->timer_add(ctx, 1000, 1000, sweep, st, NULL);
	if (rc) {
		api->set_error(ctx, "%s", err[0] ? err : linli_strerror(rc));
		if (st)
			free_state(st);
		return rc;
	}
	state = st;
	api->log(ctx, LINLI_LOG_INFO,
		 "watching smoke (%.2f dB/m for %lld s), hydrant pressure (%.2f..%.2f MPa), gas "
		 "leaks; two detectors of a building within %lld s confirm a fire",
		 st->cfg.smoke_density, (long long)(st->cfg.smoke_for_ms / 1000),
		 st->cfg.pressure_low, st->cfg.pressure_high,
		 (long long)(st->cfg.window_ms / 1000));
	return 0;
}

static void fire_fini(linli_ctx *ctx, const struct linli_api *a)
{
	(void)ctx;
	(void)a;
	if (state)
		free_state(state);
	state = NULL;
}

LINLI_PLUGIN(fire_init, fire_fini, .name = "fire", .version = "1.0.0", .family = "safety",
	     .description = "Fire safety: smoke detectors, smoke density, hydrant pressure and "
			    "leaks, gas leaks, devices gone silent; two detectors of a building "
			    "confirm a fire. Raises through alarms",
	     .requires = {"alarms"},
	     .capabilities = {
		 "store.read:devices", "bus.subscribe:dev/smoke/+/smoke_density",
		 "bus.subscribe:dev/hydrant/+/pressure", "bus.subscribe:dev/smoke/+/event/#",
		 "bus.subscribe:dev/hydrant/+/event/#", "bus.subscribe:dev/gas_meter/+/event/#",
		 "bus.publish:alarmreq/raise", "bus.publish:alarmreq/clear"});
