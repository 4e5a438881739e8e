/*
 * ebike — 电动车充电安全 (e-bike charging safety), a street's own C application,
 * shipped as a signed bundle (issue 19). Written against the public SDK only
 * (linli/linli.h): it builds out of tree from its own meson.build, and links
 * nothing of linli, not even plugins/lib (so it keeps a small reader of its
 * own settings below).
 *
 * E-bikes brought into a building and charged in a stairwell are a first cause
 * of residential fires. Installed at a street node (e.g. hefei/baohe/binhu), the
 * app acts only in its install scope (api->plugin_scope):
 *
 *  - a camera's `ebike_entry` event (its video analytics saw an e-bike enter;
 *    data: `zone`, and `building` when the camera knows it; else the devices
 *    dataset's `building` of the camera) in one of the configured `zones`
 *    (stairwell, lift, corridor) is a detection. A detection raises an alarm
 *    through alarmreq/raise (type ebike_indoor, source device:CAMERA, at the
 *    camera's scope; severity `severity`, or `night_severity` between
 *    night_from and night_until, local hours) once per camera per
 *    `cooldown_min`, not once per frame; `day_alarm = false` raises at night
 *    only;
 *  - a smoke detector's alarm event, or its smoke_density reading crossing
 *    `smoke_density`, in the same building (the devices dataset's `building`,
 *    same community) within `escalate_min` after a detection escalates: an
 *    alarm ebike_fire (`fire_severity`, source plugin:ebike/building/B) and a
 *    grid case through incidentreq/report (category `category`, linked to the
 *    alarm) at the detector's grid (its scope when it is a grid, else the
 *    device's `grid`, else `grid` of the settings) — once per building per
 *    cool-down;
 *  - counts per community; `linli ebike status [COMMUNITY]` lists today's
 *    detections per building, `linli ebike stats` the counters, both acting as
 *    the caller (only what lies in the caller's jurisdiction).
 *
 * State is in memory (today's detections, cool-downs, counters): the app needs
 * no dataset of its own; what must last is in alarms and incidents. Where a
 * device is installed (building, grid) is read on the app's own account, once
 * per device, and forgotten when its devices record changes (a store watch).
 * Device events carry ids only: nothing personal is read, logged or published.
 *
 * Settings (plugins.ebike in linli.cfg; a bad or unknown key refuses the start,
 * naming it): zones, night_from, night_until, day_alarm, severity,
 * night_severity, fire_severity, cooldown_min, escalate_min, smoke_density,
 * category, grid.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linli/linli.h>

#define MAX_ZONES  8
#define NAME_LEN   32
#define BLD_LEN	   65 /* devices.building: 64 bytes */
#define DEV_LEN	   (LINLI_ID_MAX + 1)
#define SCOPE_LEN  (LINLI_SCOPE_MAX + 1)
#define MAX_DETECT 20000 /* detections kept (today's and the escalation window) */
#define EVENT_NAME "ebike_entry"
#define CFG_PREFIX "linli.cfg: plugins.ebike."

static const struct linli_api *api;

enum { T_INDOOR, T_FIRE, T_N };
static const char *const type_names[T_N] = {"ebike_indoor", "ebike_fire"};
static const char *const sev_names[] = {"critical", "major", "minor", "warning", "indeterminate"};
#define SEV_LIST "critical, major, minor, warning, indeterminate"

struct cfg {
	char zones[MAX_ZONES][NAME_LEN];
	int n_zones;
	int night_from, night_until; /* local hours */
	bool day_alarm;
	char severity[NAME_LEN], night_severity[NAME_LEN], fire_severity[NAME_LEN];
	int64_t cooldown_ms, escalate_ms;
	double smoke_density;
	char category[NAME_LEN];
	char grid[NAME_LEN];
};

/* One detection: a camera saw an e-bike enter a zone of a building. */
struct detect {
	char dev[DEV_LEN], scope[SCOPE_LEN], building[BLD_LEN], zone[NAME_LEN];
	int64_t at;
	bool night, raised, escalated;
};

/* A device's place (devices.building, devices.grid), read once; "" when none. */
struct place {
	char dev[DEV_LEN], scope[SCOPE_LEN], building[BLD_LEN], grid[NAME_LEN];
	struct place *next;
};

/* A cool-down: camera (alarm ebike_indoor) or building (ebike_fire), its last raise. */
struct cool {
	char key[SCOPE_LEN + BLD_LEN + 2];
	int64_t at;
	struct cool *next;
};

/* A smoke detector over the density threshold (to act on the crossing only). */
struct over {
	char dev[DEV_LEN];
	struct over *next;
};

/* Per community counters. */
struct comm {
	char scope[SCOPE_LEN];
	int64_t detections, alarms, night_alarms, smoke, escalations, cases;
	struct comm *next;
};

/* An escalation waiting for its alarm's answer, then for its case's. */
struct esc {
	char scope[SCOPE_LEN], grid[SCOPE_LEN], building[BLD_LEN], smoke_dev[DEV_LEN], cam[DEV_LEN],
	    community[SCOPE_LEN];
	char alarm[LINLI_ID_MAX + 1];
	struct state *st;
	struct esc *next; /* in st->escs until its case is answered */
};

struct state {
	struct cfg cfg;
	struct detect *det;
	size_t n_det, cap_det;
	struct place *places;
	struct cool *cools;
	struct over *overs;
	struct comm *comms;
	struct esc *escs; /* escalations waiting for an answer (freed at fini if never) */
	int64_t events, ignored_zone, outside, no_building, smoke_events, smoke_readings,
	    place_reads;
	int64_t raised[T_N], failed[T_N], cases_opened, cases_failed;
};

/* ---- small helpers ---- */

static bool under(const char *scope, const char *base)
{
	size_t n = strlen(base);
	return !strcmp(scope, base) || (!strncmp(scope, base, n) && scope[n] == '/');
}

static int depth_of(const char *scope)
{
	int d = *scope ? 1 : 0;
	for (const char *p = scope; *p; p++)
		d += *p == '/';
	return d;
}

/* The first `levels` levels of scope into out (all of it when shallower). */
static void prefix_of(const char *scope, int levels, char *out, size_t n)
{
	const char *p = scope;
	for (int i = 0; *p && i < levels; i++) {
		const char *s = strchr(p, '/');
		p = s ? s + 1 : p + strlen(p);
	}
	size_t len = (size_t)(p - scope);
	if (len && scope[len - 1] == '/')
		len--;
	snprintf(out, n, "%.*s", (int)len, scope);
}

/* The community of a scope (city/district/street/community). */
static void community_of(const char *scope, char *out, size_t n)
{
	prefix_of(scope, 4, out, n);
}

/* The device id of a topic dev/<class>/<id>/... into out. */
static bool topic_device(const char *topic, char *out, size_t n)
{
	const char *a = strchr(topic, '/');
	const char *b = a ? strchr(a + 1, '/') : NULL;
	const char *c = b ? strchr(b + 1, '/') : NULL;
	if (!b)
		return false;
	size_t len = c ? (size_t)(c - b - 1) : strlen(b + 1);
	if (!len || len >= n)
		return false;
	snprintf(out, n, "%.*s", (int)len, b + 1);
	return true;
}

static bool name_ok(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (!n || n > max || s[0] < 'a' || s[0] > 'z')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

static bool sev_ok(const char *s)
{
	for (size_t i = 0; i < sizeof sev_names / sizeof *sev_names; i++)
		if (!strcmp(s, sev_names[i]))
			return true;
	return false;
}

/* ---- settings: plugins.ebike ---- */

static int cfg_err(char *err, size_t errlen, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int cfg_err(char *err, size_t errlen, const char *key, const char *fmt, ...)
{
	int n = snprintf(err, errlen, CFG_PREFIX "%s: ", key);
	if (n > 0 && (size_t)n < errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return LINLI_ECONFIG;
}

static int cfg_int(linli_record *c, const char *key, int64_t lo, int64_t hi, const char *what,
		   int64_t *out, char *err, size_t errlen)
{
	int64_t v;
	if (!api->rec_has(c, key))
		return 0;
	if (api->rec_get_int(c, key, &v) || v < lo || v > hi)
		return cfg_err(err, errlen, key, "must be %s, %lld to %lld", what, (long long)lo,
			       (long long)hi);
	*out = v;
	return 0;
}

static int cfg_str(linli_record *c, const char *key, char *out, size_t n, bool (*ok)(const char *),
		   const char *what, char *err, size_t errlen)
{
	const char *s;
	if (!api->rec_has(c, key))
		return 0;
	if (api->rec_get_str(c, key, &s, NULL) || strlen(s) >= n || (ok && !ok(s)))
		return cfg_err(err, errlen, key, "must be %s", what);
	snprintf(out, n, "%s", s);
	return 0;
}

static bool ident_ok(const char *s)
{
	return name_ok(s, NAME_LEN - 1);
}

static bool grid_ok(const char *s)
{
	if (!*s)
		return true;
	for (const char *p = s; *p; p++)
		if (*p == '/' || *p == ' ')
			return false;
	return true;
}

/*
 * Is `cat` one of the incidents dataset's categories (1)? 0, with the categories in
 * list, when it is not. 1 when the catalog cannot say (no incidents dataset).
 */
static int category_check(linli_ctx *ctx, const char *cat, char *list, size_t n)
{
	linli_record *s = NULL, *fields = NULL;
	list[0] = '\0';
	if (api->dataset_schema(ctx, "incidents", &s))
		return 1; /* no catalog to check against: the grid plugin refuses a bad one */
	int found = 1;
	if (api->rec_get_array(s, "fields", &fields) == 0)
		for (size_t i = 0; i < api->rec_count(fields); i++) {
			linli_record *f = NULL, *vals = NULL;
			const char *name = NULL;
			if (api->arr_get_map(fields, i, &f) ||
			    api->rec_get_str(f, "name", &name, NULL) || strcmp(name, "category") ||
			    api->rec_get_array(f, "values", &vals))
				continue;
			found = 0;
			size_t at = 0;
			for (size_t j = 0; j < api->rec_count(vals); j++) {
				const char *v = NULL;
				if (api->arr_get_str(vals, j, &v, NULL))
					continue;
				if (!strcmp(v, cat))
					found = 1;
				int w = snprintf(list + at, n - at, "%s%s", j ? ", " : "", v);
				if (w > 0 && (size_t)w < n - at)
					at += (size_t)w;
			}
		}
	api->rec_free(s);
	return found;
}

static int cfg_parse(linli_ctx *ctx, linli_record *c, struct cfg *f, char *err, size_t errlen)
{
	static const char *const keys[] = {"zones",	    "night_from",   "night_until",
					   "day_alarm",	    "severity",	    "night_severity",
					   "fire_severity", "cooldown_min", "escalate_min",
					   "smoke_density", "category",	    "grid"};
	const size_t nk = sizeof keys / sizeof *keys;
	for (size_t i = 0; i < api->rec_count(c); i++) {
		const char *k = NULL;
		api->rec_key(c, i, &k);
		size_t j = 0;
		while (j < nk && strcmp(keys[j], k))
			j++;
		if (j == nk)
			return cfg_err(
			    err, errlen, k ? k : "?",
			    "unknown key (it takes zones, night_from, night_until, "
			    "day_alarm, severity, night_severity, fire_severity, "
			    "cooldown_min, escalate_min, smoke_density, category, grid)");
	}
	int rc;
	if (api->rec_has(c, "zones")) {
		linli_record *z = NULL;
		size_t n = 0;
		if (api->rec_get_array(c, "zones", &z) || (n = api->rec_count(z)) == 0 ||
		    n > MAX_ZONES)
			return cfg_err(
			    err, errlen, "zones",
			    "must be a list of 1 to %d zone names, e.g. [ \"stairwell\", "
			    "\"lift\", \"corridor\" ]",
			    MAX_ZONES);
		for (size_t i = 0; i < n; i++) {
			const char *s = NULL;
			if (api->arr_get_str(z, i, &s, NULL) || !ident_ok(s))
				return cfg_err(err, errlen, "zones",
					       "entry %zu: a zone name must match [a-z][a-z0-9_]*, "
					       "at most %d bytes",
					       i + 1, NAME_LEN - 1);
			snprintf(f->zones[i], NAME_LEN, "%s", s);
		}
		f->n_zones = (int)n;
	}
	int64_t v = f->night_from;
	if ((rc = cfg_int(c, "night_from", 0, 23, "an hour", &v, err, errlen)))
		return rc;
	f->night_from = (int)v;
	v = f->night_until;
	if ((rc = cfg_int(c, "night_until", 0, 23, "an hour", &v, err, errlen)))
		return rc;
	f->night_until = (int)v;
	if (api->rec_has(c, "day_alarm") && api->rec_get_bool(c, "day_alarm", &f->day_alarm))
		return cfg_err(err, errlen, "day_alarm", "must be true or false");
	static const char *const sevs[] = {"severity", "night_severity", "fire_severity"};
	char *sev_out[] = {f->severity, f->night_severity, f->fire_severity};
	for (int i = 0; i < 3; i++)
		if ((rc = cfg_str(c, sevs[i], sev_out[i], NAME_LEN, sev_ok, "one of " SEV_LIST, err,
				  errlen)))
			return rc;
	v = f->cooldown_ms / 60000;
	if ((rc = cfg_int(c, "cooldown_min", 1, 1440, "whole minutes", &v, err, errlen)))
		return rc;
	f->cooldown_ms = v * 60000;
	v = f->escalate_ms / 60000;
	if ((rc = cfg_int(c, "escalate_min", 1, 1440, "whole minutes", &v, err, errlen)))
		return rc;
	f->escalate_ms = v * 60000;
	if (api->rec_has(c, "smoke_density")) {
		double d;
		if (api->rec_get_float(c, "smoke_density", &d) || !(d >= 0.1 && d <= 10.0))
			return cfg_err(err, errlen, "smoke_density",
				       "must be a number 0.1 to 10 (dB/m)");
		f->smoke_density = d;
	}
	if ((rc = cfg_str(c, "category", f->category, NAME_LEN, ident_ok,
			  "an incident category such as \"fire\"", err, errlen)))
		return rc;
	char list[512];
	if (!category_check(ctx, f->category, list, sizeof list))
		return cfg_err(err, errlen, "category", "'%s' is not a category of incidents (%s)",
			       f->category, list);
	if ((rc = cfg_str(c, "grid", f->grid, NAME_LEN, grid_ok,
			  "a grid code of the community, such as \"g01\"", err, errlen)))
		return rc;
	return 0;
}

static void cfg_defaults(struct cfg *f)
{
	memset(f, 0, sizeof *f);
	static const char *const z[] = {"stairwell", "lift", "corridor"};
	for (int i = 0; i < 3; i++)
		snprintf(f->zones[i], NAME_LEN, "%s", z[i]);
	f->n_zones = 3;
	f->night_from = 22;
	f->night_until = 6;
	f->day_alarm = true;
	snprintf(f->severity, NAME_LEN, "major");
	snprintf(f->night_severity, NAME_LEN, "critical");
	snprintf(f->fire_severity, NAME_LEN, "critical");
	f->cooldown_ms = 30 * 60000;
	f->escalate_ms = 10 * 60000;
	f->smoke_density = 1.0;
	snprintf(f->category, NAME_LEN, "fire");
}

/* ---- state lookups ---- */

static struct comm *comm_of(struct state *st, const char *scope)
{
	char c[SCOPE_LEN];
	community_of(scope, c, sizeof c);
	for (struct comm *m = st->comms; m; m = m->next)
		if (!strcmp(m->scope, c))
			return m;
	struct comm *m = calloc(1, sizeof *m);
	if (!m)
		return NULL;
	snprintf(m->scope, sizeof m->scope, "%s", c);
	m->next = st->comms;
	st->comms = m;
	return m;
}

/* The last raise under key, or -1; `set` records now. */
static int64_t cool_at(struct state *st, const char *key, int64_t set)
{
	struct cool *c = st->cools;
	while (c && strcmp(c->key, key))
		c = c->next;
	int64_t was = c ? c->at : -1;
	if (set >= 0) {
		if (!c && (c = calloc(1, sizeof *c))) {
			snprintf(c->key, sizeof c->key, "%s", key);
			c->next = st->cools;
			st->cools = c;
		}
		if (c)
			c->at = set;
	}
	return was;
}

/* Where `dev` at `scope` is installed, read on the app's own account once. */
static const struct place *place_of(linli_ctx *ctx, struct state *st, const char *scope,
				    const char *dev)
{
	static const struct place none;
	struct place *p = st->places;
	while (p && (strcmp(p->dev, dev) || strcmp(p->scope, scope)))
		p = p->next;
	if (p)
		return p;
	if (!(p = calloc(1, sizeof *p)))
		return &none;
	snprintf(p->dev, sizeof p->dev, "%s", dev);
	snprintf(p->scope, sizeof p->scope, "%s", scope);
	linli_record *r = NULL;
	const char *s = NULL;
	if (api->store_get(ctx, "devices", scope, dev, &r, NULL) == 0) {
		if (api->rec_get_str(r, "building", &s, NULL) == 0)
			snprintf(p->building, sizeof p->building, "%s", s);
		if (api->rec_get_str(r, "grid", &s, NULL) == 0)
			snprintf(p->grid, sizeof p->grid, "%s", s);
		api->rec_free(r);
	}
	st->place_reads++;
	p->next = st->places;
	st->places = p;
	return p;
}

static void on_device_change(linli_ctx *ctx, const struct linli_change *ch, void *ud)
{
	(void)ctx;
	struct state *st = ud;
	for (struct place **pp = &st->places; *pp; pp = &(*pp)->next)
		if (!strcmp((*pp)->dev, ch->id) && !strcmp((*pp)->scope, ch->scope)) {
			struct place *p = *pp;
			*pp = p->next;
			free(p);
			return;
		}
}

static bool is_night(linli_ctx *ctx, const struct cfg *f, int64_t now)
{
	struct linli_tm tm = {.size = sizeof tm};
	if (api->time_local(ctx, now, &tm))
		return false;
	if (f->night_from == f->night_until)
		return false;
	if (f->night_from > f->night_until)
		return tm.hour >= f->night_from || tm.hour < f->night_until;
	return tm.hour >= f->night_from && tm.hour < f->night_until;
}

/* Drop detections older than both today and the escalation window. */
static void prune(linli_ctx *ctx, struct state *st, int64_t now)
{
	int64_t day0 = now;
	api->time_day_start(ctx, now, 0, &day0);
	int64_t keep = now - st->cfg.escalate_ms < day0 ? now - st->cfg.escalate_ms : day0;
	if (!st->n_det || st->det[0].at >= keep)
		return; /* in time order: nothing to drop */
	size_t j = 0;
	for (size_t i = 0; i < st->n_det; i++)
		if (st->det[i].at >= keep)
			st->det[j++] = st->det[i];
	st->n_det = j;
}

/* ---- raising ---- */

struct raise_slot {
	struct state *st;
	int t;
};
static struct raise_slot raise_slots[T_N];

static void on_raised(linli_ctx *ctx, uint64_t id, int status, const linli_record *rec,
		      const char *err, void *ud)
{
	(void)id;
	(void)rec;
	struct raise_slot *s = ud;
	if (status < 0) {
		s->st->failed[s->t]++;
		api->log(ctx, LINLI_LOG_WARN, "%s alarm not raised: %s (%s)", type_names[s->t],
			 err && *err ? err : "no reason", linli_strerror(status));
		return;
	}
	s->st->raised[s->t]++;
}

static int raise_alarm(linli_ctx *ctx, struct state *st, int t, const char *severity,
		       const char *scope, const char *source, const char *details,
		       linli_reply_fn fn, void *ud)
{
	linli_record *p = api->rec_new();
	if (!p)
		return LINLI_ENOMEM;
	api->rec_set_str(p, "type", type_names[t]);
	api->rec_set_str(p, "source", source);
	api->rec_set_str(p, "severity", severity);
	api->rec_set_str(p, "details", details);
	raise_slots[t] = (struct raise_slot){st, t};
	int rc = api->request(ctx, "alarmreq/raise", scope, p, 10000, fn ? fn : on_raised,
			      fn ? ud : &raise_slots[t], NULL);
	api->rec_free(p);
	if (rc) {
		st->failed[t]++;
		api->log(ctx, LINLI_LOG_WARN, "%s alarm of %s at %s not raised: %s", type_names[t],
			 source, scope, linli_strerror(rc));
	}
	return rc;
}

/* ---- escalation: smoke in a building an e-bike entered ---- */

static void esc_done(struct esc *e)
{
	for (struct esc **pp = &e->st->escs; *pp; pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			break;
		}
	free(e);
}

static void on_case(linli_ctx *ctx, uint64_t id, int status, const linli_record *rec,
		    const char *err, void *ud)
{
	(void)id;
	struct esc *e = ud;
	struct state *st = e->st;
	const char *cid = NULL;
	if (status < 0 || !rec || api->rec_get_str(rec, "id", &cid, NULL)) {
		st->cases_failed++;
		api->log(ctx, LINLI_LOG_WARN, "building %s at %s: no grid case opened at %s: %s",
			 e->building, e->scope, e->grid,
			 err && *err ? err : linli_strerror(status < 0 ? status : LINLI_EPROTO));
	} else {
		st->cases_opened++;
		struct comm *m = comm_of(st, e->scope);
		if (m)
			m->cases++;
		api->log(ctx, LINLI_LOG_INFO, "building %s at %s: grid case %s opened at %s%s%s",
			 e->building, e->scope, cid, e->grid, e->alarm[0] ? " for alarm " : "",
			 e->alarm);
	}
	esc_done(e);
}

static void open_case(linli_ctx *ctx, struct esc *e)
{
	struct state *st = e->st;
	if (!e->grid[0]) {
		st->cases_failed++;
		api->log(ctx, LINLI_LOG_WARN,
			 "building %s at %s: no grid case opened: no grid known for smoke detector "
			 "%s (set its devices record's grid, or plugins.ebike.grid)",
			 e->building, e->scope, e->smoke_dev);
		esc_done(e);
		return;
	}
	char title[160], desc[512];
	snprintf(title, sizeof title, "电动车进楼后烟雾报警: building %s", e->building);
	snprintf(desc, sizeof desc,
		 "smoke detector %s in building %s after camera %s saw an e-bike enter within "
		 "%lld min: check for e-bike charging indoors (电动车充电安全)",
		 e->smoke_dev, e->building, e->cam, (long long)(st->cfg.escalate_ms / 60000));
	linli_record *p = api->rec_new();
	if (!p) {
		esc_done(e);
		return;
	}
	api->rec_set_str(p, "category", st->cfg.category);
	api->rec_set_str(p, "title", title);
	api->rec_set_str(p, "description", desc);
	api->rec_set_str(p, "building", e->building);
	if (e->alarm[0]) {
		api->rec_set_str(p, "channel", "alarm");
		api->rec_set_str(p, "source_alarm", e->alarm);
	}
	int rc = api->request(ctx, "incidentreq/report", e->grid, p, 0, on_case, e, NULL);
	api->rec_free(p);
	if (rc) {
		st->cases_failed++;
		api->log(ctx, LINLI_LOG_WARN,
			 "building %s at %s: no grid case opened: incidentreq/report at %s: %s%s",
			 e->building, e->scope, e->grid, linli_strerror(rc),
			 rc == LINLI_ENOENT ? " (is the grid plugin loaded?)" : "");
		esc_done(e);
	}
}

static void on_fire_raised(linli_ctx *ctx, uint64_t id, int status, const linli_record *rec,
			   const char *err, void *ud)
{
	(void)id;
	struct esc *e = ud;
	const char *aid = NULL;
	if (status < 0) {
		e->st->failed[T_FIRE]++;
		api->log(ctx, LINLI_LOG_WARN, "ebike_fire alarm not raised: %s (%s)",
			 err && *err ? err : "no reason", linli_strerror(status));
	} else {
		e->st->raised[T_FIRE]++;
		if (rec && api->rec_get_str(rec, "id", &aid, NULL) == 0)
			snprintf(e->alarm, sizeof e->alarm, "%s", aid);
	}
	open_case(ctx, e); /* the case opens also when the alarm could not be raised */
}

/* The grid a case about device p goes to, into out ("" when none is known). */
static void grid_of(linli_ctx *ctx, struct state *st, const char *scope, const struct place *p,
		    char *out, size_t n)
{
	out[0] = '\0';
	if (depth_of(scope) >= 5) {
		prefix_of(scope, 5, out, n);
		return;
	}
	if (depth_of(scope) != 4)
		return;
	char code[NAME_LEN * 2] = "";
	if (p->grid[0]) {
		linli_record *g = NULL;
		const char *s = NULL;
		if (api->store_get(ctx, "grids", scope, p->grid, &g, NULL) == 0 &&
		    api->rec_get_str(g, "code", &s, NULL) == 0 && !strchr(s, '/'))
			snprintf(code, sizeof code, "%s", s);
		else if (!strchr(p->grid, '/'))
			snprintf(code, sizeof code, "%s", p->grid);
		api->rec_free(g);
	}
	if (!code[0])
		snprintf(code, sizeof code, "%s", st->cfg.grid);
	if (code[0])
		snprintf(out, n, "%s/%s", scope, code);
}

static void smoke_hit(linli_ctx *ctx, struct state *st, const char *scope, const char *dev,
		      const char *why)
{
	int64_t now = api->time_now_ms();
	struct comm *m = comm_of(st, scope);
	if (m)
		m->smoke++;
	const struct place *p = place_of(ctx, st, scope, dev);
	if (!p->building[0]) {
		st->no_building++;
		return; /* no building known: nothing to match a detection with */
	}
	char com[SCOPE_LEN];
	community_of(scope, com, sizeof com);
	struct detect *hit = NULL;
	for (size_t i = st->n_det; i-- > 0;) {
		struct detect *d = &st->det[i];
		char dc[SCOPE_LEN];
		community_of(d->scope, dc, sizeof dc);
		if (!strcmp(dc, com) && !strcmp(d->building, p->building) &&
		    now - d->at <= st->cfg.escalate_ms && d->at <= now) {
			hit = d;
			break;
		}
	}
	if (!hit)
		return;
	char key[sizeof((struct cool *)0)->key];
	snprintf(key, sizeof key, "B%s#%s", com, p->building);
	int64_t last = cool_at(st, key, -1);
	if (last >= 0 && now - last < st->cfg.cooldown_ms)
		return;
	cool_at(st, key, now);
	hit->escalated = true;
	if (m)
		m->escalations++;
	struct esc *e = calloc(1, sizeof *e);
	if (!e)
		return;
	e->st = st;
	e->next = st->escs;
	st->escs = e;
	snprintf(e->scope, sizeof e->scope, "%s", scope);
	snprintf(e->community, sizeof e->community, "%s", com);
	snprintf(e->building, sizeof e->building, "%s", p->building);
	snprintf(e->smoke_dev, sizeof e->smoke_dev, "%s", dev);
	snprintf(e->cam, sizeof e->cam, "%s", hit->dev);
	grid_of(ctx, st, scope, p, e->grid, sizeof e->grid);
	char src[BLD_LEN + 32], details[512];
	snprintf(src, sizeof src, "plugin:ebike/building/%s", p->building);
	snprintf(details, sizeof details,
		 "%s of smoke detector %s in building %s, %lld s after camera %s saw an e-bike "
		 "enter the %s",
		 why, dev, p->building, (long long)((now - hit->at) / 1000), hit->dev, hit->zone);
	api->log(ctx, LINLI_LOG_INFO, "building %s at %s: %s", p->building, com, details);
	if (raise_alarm(ctx, st, T_FIRE, st->cfg.fire_severity, com, src, details, on_fire_raised,
			e))
		open_case(ctx, e);
}

/* ---- bus handlers (the app's own account) ---- */

static int on_camera(linli_ctx *ctx, const struct linli_event *ev, void *ud)
{
	struct state *st = ud;
	char dev[DEV_LEN];
	st->events++;
	if (!under(ev->scope, api->plugin_scope(ctx))) {
		st->outside++; /* not in the install scope: never acted on */
		return 0;
	}
	if (!topic_device(ev->topic, dev, sizeof dev))
		return 0;
	linli_record *data = NULL;
	const char *zone = "", *building = NULL;
	if (api->rec_get_map((linli_record *)ev->payload, "data", &data) == 0) {
		api->rec_get_str(data, "zone", &zone, NULL);
		if (api->rec_get_str(data, "building", &building, NULL) == 0 && !*building)
			building = NULL;
	}
	bool indoor = false;
	for (int i = 0; i < st->cfg.n_zones; i++)
		indoor |= !strcmp(zone, st->cfg.zones[i]);
	if (!indoor) {
		st->ignored_zone++;
		return 0;
	}
	if (!building)
		building = place_of(ctx, st, ev->scope, dev)->building;
	int64_t now = api->time_now_ms();
	prune(ctx, st, now);
	if (st->n_det == MAX_DETECT) { /* full: forget the oldest */
		memmove(st->det, st->det + 1, (st->n_det - 1) * sizeof *st->det);
		st->n_det--;
	}
	if (st->n_det == st->cap_det) {
		size_t cap = st->cap_det ? st->cap_det * 2 : 64;
		struct detect *v = realloc(st->det, cap * sizeof *v);
		if (!v)
			return LINLI_ENOMEM;
		st->det = v, st->cap_det = cap;
	}
	struct detect *d = &st->det[st->n_det++];
	memset(d, 0, sizeof *d);
	snprintf(d->dev, sizeof d->dev, "%s", dev);
	snprintf(d->scope, sizeof d->scope, "%s", ev->scope);
	snprintf(d->building, sizeof d->building, "%s", building);
	snprintf(d->zone, sizeof d->zone, "%s", zone);
	d->at = now;
	d->night = is_night(ctx, &st->cfg, now);
	struct comm *m = comm_of(st, ev->scope);
	if (m)
		m->detections++;
	if (!d->night && !st->cfg.day_alarm)
		return 0;
	char key[sizeof((struct cool *)0)->key];
	snprintf(key, sizeof key, "D%s#%s", ev->scope, dev);
	int64_t last = cool_at(st, key, -1);
	if (last >= 0 && now - last < st->cfg.cooldown_ms)
		return 0; /* the same e-bike's next frames, or the next within the cool-down */
	cool_at(st, key, now);
	d->raised = true;
	if (m) {
		m->alarms++;
		m->night_alarms += d->night;
	}
	char src[DEV_LEN + 8], details[512], where[BLD_LEN + 16] = "";
	if (d->building[0])
		snprintf(where, sizeof where, " of building %s", d->building);
	snprintf(src, sizeof src, "device:%s", dev);
	snprintf(details, sizeof details, "camera %s saw an e-bike enter the %s%s%s", dev, zone,
		 where, d->night ? " at night" : "");
	raise_alarm(ctx, st, T_INDOOR, d->night ? st->cfg.night_severity : st->cfg.severity,
		    ev->scope, src, details, NULL, NULL);
	return 0;
}

static int on_smoke_event(linli_ctx *ctx, const struct linli_event *ev, void *ud)
{
	struct state *st = ud;
	char dev[DEV_LEN];
	st->events++;
	if (!under(ev->scope, api->plugin_scope(ctx))) {
		st->outside++;
		return 0;
	}
	if (!topic_device(ev->topic, dev, sizeof dev))
		return 0;
	st->smoke_events++;
	smoke_hit(ctx, st, ev->scope, dev, "alarm");
	return 0;
}

static int on_smoke_reading(linli_ctx *ctx, const struct linli_event *ev, void *ud)
{
	struct state *st = ud;
	char dev[DEV_LEN];
	double v;
	if (!under(ev->scope, api->plugin_scope(ctx))) {
		st->outside++;
		return 0;
	}
	if (!topic_device(ev->topic, dev, sizeof dev) ||
	    api->rec_get_float(ev->payload, "value", &v))
		return 0;
	st->smoke_readings++;
	struct over **pp = &st->overs;
	while (*pp && strcmp((*pp)->dev, dev))
		pp = &(*pp)->next;
	if (v < st->cfg.smoke_density) {
		if (*pp) { /* back under: the next crossing counts again */
			struct over *o = *pp;
			*pp = o->next;
			free(o);
		}
		return 0;
	}
	if (*pp)
		return 0; /* still over: the crossing was acted on */
	struct over *o = calloc(1, sizeof *o);
	if (!o)
		return LINLI_ENOMEM;
	snprintf(o->dev, sizeof o->dev, "%s", dev);
	o->next = st->overs;
	st->overs = o;
	smoke_hit(ctx, st, ev->scope, dev, "smoke density over the threshold");
	return 0;
}

/* ---- console commands (acting as the caller) ---- */

static struct state *state;

/* The community the caller named (a name under the node, or a path), or an error. */
static int community_arg(const char *arg, const struct linli_caller *who, const char *node,
			 char *out, size_t n, char *err, size_t errlen)
{
	if (!strchr(arg, '/')) {
		if (!*arg || strspn(arg, "abcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(arg)) {
			snprintf(err, errlen,
				 "'%s' is not a community of %s (a name such as "
				 "yuelan, or %s/yuelan)",
				 arg, node, node);
			return LINLI_EINVAL;
		}
		snprintf(out, n, "%s/%s", node, arg);
	} else
		snprintf(out, n, "%s", arg);
	if (!under(out, node)) {
		snprintf(err, errlen,
			 "'%s' is outside this street (%s): the app acts only in its scope", arg,
			 node);
		return LINLI_EPERM;
	}
	if (depth_of(out) != 4) {
		snprintf(err, errlen, "'%s' is not a community of %s", arg, node);
		return LINLI_EINVAL;
	}
	if (who && who->scope && !under(out, who->scope) && !under(who->scope, out)) {
		snprintf(err, errlen, "%s is outside your jurisdiction (%s)", out, who->scope);
		return LINLI_EPERM;
	}
	return 0;
}

/* May the caller see what happened at scope? */
static bool caller_sees(const struct linli_caller *who, const char *scope)
{
	return !who || !who->scope || under(scope, who->scope);
}

struct bld {
	char community[SCOPE_LEN], building[BLD_LEN], zone[NAME_LEN];
	int64_t detections, night, alarms, escalations, last_at;
};

static int cmd_status(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		      char *err, size_t errlen)
{
	struct state *st = state;
	const char *node = api->plugin_scope(ctx);
	char only[SCOPE_LEN] = "";
	if (req->argc > 1) {
		snprintf(err, errlen, "usage: ebike status [COMMUNITY]");
		return LINLI_EINVAL;
	}
	int rc;
	if (req->argc == 1 &&
	    (rc = community_arg(req->argv[0], req->caller, node, only, sizeof only, err, errlen)))
		return rc;
	int64_t now = api->time_now_ms(), day0 = now;
	api->time_day_start(ctx, now, 0, &day0);
	struct linli_tm tm = {.size = sizeof tm};
	api->time_local(ctx, now, &tm);
	struct bld *b = calloc(st->n_det + 1, sizeof *b);
	if (!b)
		return LINLI_ENOMEM;
	size_t nb = 0;
	for (size_t i = 0; i < st->n_det; i++) {
		const struct detect *d = &st->det[i];
		char com[SCOPE_LEN];
		community_of(d->scope, com, sizeof com);
		if (d->at < day0 || !caller_sees(req->caller, d->scope) ||
		    (only[0] && strcmp(com, only)))
			continue;
		size_t j = 0;
		while (j < nb &&
		       (strcmp(b[j].community, com) || strcmp(b[j].building, d->building)))
			j++;
		if (j == nb) {
			snprintf(b[j].community, sizeof b[j].community, "%s", com);
			snprintf(b[j].building, sizeof b[j].building, "%s", d->building);
			nb++;
		}
		b[j].detections++;
		b[j].night += d->night;
		b[j].alarms += d->raised;
		b[j].escalations += d->escalated;
		b[j].last_at = d->at;
		snprintf(b[j].zone, sizeof b[j].zone, "%s", d->zone);
	}
	linli_record *r = api->rec_new(), *arr = NULL, *row = NULL;
	char day[16];
	snprintf(day, sizeof day, "%04d-%02d-%02d", (int)tm.year, (int)tm.month, (int)tm.day);
	rc = !r ? LINLI_ENOMEM : api->rec_set_str(r, "scope", only[0] ? only : node);
	if (!rc)
		rc = api->rec_set_str(r, "day", day);
	if (!rc)
		rc = api->rec_set_array(r, "buildings", &arr);
	for (size_t j = 0; !rc && j < nb; j++) {
		rc = api->arr_push_map(arr, &row);
		if (!rc)
			rc = api->rec_set_str(row, "community", b[j].community);
		if (!rc)
			rc = api->rec_set_str(row, "building", b[j].building);
		if (!rc)
			rc = api->rec_set_int(row, "detections", b[j].detections);
		if (!rc)
			rc = api->rec_set_int(row, "night", b[j].night);
		if (!rc)
			rc = api->rec_set_int(row, "alarms", b[j].alarms);
		if (!rc)
			rc = api->rec_set_int(row, "escalations", b[j].escalations);
		if (!rc)
			rc = api->rec_set_str(row, "last_zone", b[j].zone);
		if (!rc)
			rc = api->rec_set_time(row, "last_at", b[j].last_at);
	}
	free(b);
	if (rc) {
		api->rec_free(r);
		snprintf(err, errlen, "cannot build the reply: %s", linli_strerror(rc));
		return rc;
	}
	*reply = r;
	return 0;
}

static int cmd_stats(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		     char *err, size_t errlen)
{
	struct state *st = state;
	if (req->argc) {
		snprintf(err, errlen, "usage: ebike stats");
		return LINLI_EINVAL;
	}
	linli_record *r = api->rec_new(), *m = NULL, *c = NULL, *z = NULL;
	if (!r)
		return LINLI_ENOMEM;
	api->rec_set_str(r, "scope", api->plugin_scope(ctx));
	api->rec_set_int(r, "events", st->events);
	api->rec_set_int(r, "ignored_zone", st->ignored_zone);
	api->rec_set_int(r, "outside", st->outside);
	api->rec_set_int(r, "smoke_events", st->smoke_events);
	api->rec_set_int(r, "smoke_readings", st->smoke_readings);
	api->rec_set_int(r, "no_building", st->no_building);
	api->rec_set_int(r, "place_reads", st->place_reads);
	api->rec_set_int(r, "cases_opened", st->cases_opened);
	api->rec_set_int(r, "cases_failed", st->cases_failed);
	if (api->rec_set_map(r, "raised", &m) == 0)
		for (int t = 0; t < T_N; t++)
			api->rec_set_int(m, type_names[t], st->raised[t]);
	if (api->rec_set_map(r, "failed", &m) == 0)
		for (int t = 0; t < T_N; t++)
			api->rec_set_int(m, type_names[t], st->failed[t]);
	if (api->rec_set_map(r, "communities", &m) == 0)
		for (struct comm *k = st->comms; k; k = k->next) {
			if (!caller_sees(req->caller, k->scope) ||
			    api->rec_set_map(m, k->scope, &c))
				continue;
			api->rec_set_int(c, "detections", k->detections);
			api->rec_set_int(c, "alarms", k->alarms);
			api->rec_set_int(c, "night_alarms", k->night_alarms);
			api->rec_set_int(c, "smoke", k->smoke);
			api->rec_set_int(c, "escalations", k->escalations);
			api->rec_set_int(c, "cases", k->cases);
		}
	const struct cfg *f = &st->cfg;
	if (api->rec_set_map(r, "config", &m) == 0) {
		if (api->rec_set_array(m, "zones", &z) == 0)
			for (int i = 0; i < f->n_zones; i++)
				api->arr_push_str(z, f->zones[i]);
		api->rec_set_int(m, "night_from", f->night_from);
		api->rec_set_int(m, "night_until", f->night_until);
		api->rec_set_bool(m, "day_alarm", f->day_alarm);
		api->rec_set_str(m, "severity", f->severity);
		api->rec_set_str(m, "night_severity", f->night_severity);
		api->rec_set_str(m, "fire_severity", f->fire_severity);
		api->rec_set_int(m, "cooldown_min", f->cooldown_ms / 60000);
		api->rec_set_int(m, "escalate_min", f->escalate_ms / 60000);
		api->rec_set_float(m, "smoke_density", f->smoke_density);
		api->rec_set_str(m, "category", f->category);
		api->rec_set_str(m, "grid", f->grid);
	}
	*reply = r;
	return 0;
}

/* ---- init / fini ---- */

static void free_state(struct state *st)
{
	if (!st)
		return;
	for (struct place *p = st->places, *n; p; p = n)
		n = p->next, free(p);
	for (struct cool *p = st->cools, *n; p; p = n)
		n = p->next, free(p);
	for (struct over *p = st->overs, *n; p; p = n)
		n = p->next, free(p);
	for (struct comm *p = st->comms, *n; p; p = n)
		n = p->next, free(p);
	for (struct esc *p = st->escs, *n; p; p = n)
		n = p->next, free(p);
	free(st->det);
	free(st);
}

static int ebike_init(linli_ctx *ctx, const struct linli_api *a)
{
	api = a;
	char err[768] = "";
	struct state *st = calloc(1, sizeof *st);
	linli_record *c = NULL;
	int rc = st ? 0 : LINLI_ENOMEM;
	if (!rc) {
		cfg_defaults(&st->cfg);
		rc = api->plugin_config(ctx, &c);
	}
	if (!rc)
		rc = cfg_parse(ctx, c, &st->cfg, err, sizeof err);
	api->rec_free(c);
	if (!rc)
		rc = api->subscribe(ctx, "dev/camera/+/event/" EVENT_NAME, on_camera, st, NULL);
	if (!rc)
		rc = api->subscribe(ctx, "dev/smoke/+/event/alarm", on_smoke_event, st, NULL);
	if (!rc)
		rc = api->subscribe(ctx, "dev/smoke/+/smoke_density", on_smoke_reading, st, NULL);
	if (!rc)
		rc = api->store_watch(ctx, "devices", on_device_change, st, NULL);
	if (!rc)
		rc = api->action_declare(ctx, "ebike.status", "viewer", NULL, NULL,
					 "see today's e-bike detections per building");
	if (!rc)
		rc = api->action_declare(ctx, "ebike.stats", "operator", NULL, NULL,
					 "see the app's counters and settings");
	if (!rc)
		rc = api->cmd_register(ctx, "status", "[COMMUNITY]",
				       "today's e-bike detections per building", cmd_status, NULL);
	if (!rc)
		rc = api->cmd_require(ctx, "status", "ebike.status");
	if (!rc)
		rc = api->cmd_register(ctx, "stats", "",
				       "detections, alarms, escalations per community; settings",
				       cmd_stats, NULL);
	if (!rc)
		rc = api->cmd_require(ctx, "stats", "ebike.stats");
	if (rc) {
		api->set_error(ctx, "%s", err[0] ? err : linli_strerror(rc));
		free_state(st);
		return rc;
	}
	state = st;
	api->log(ctx, LINLI_LOG_INFO,
		 "watching e-bikes entering %d zone(s) at %s (night %02d:00-%02d:00, cool-down "
		 "%lld min, smoke within %lld min escalates)",
		 st->cfg.n_zones, api->plugin_scope(ctx), st->cfg.night_from, st->cfg.night_until,
		 (long long)(st->cfg.cooldown_ms / 60000),
		 (long long)(st->cfg.escalate_ms / 60000));
	return 0;
}

static void ebike_fini(linli_ctx *ctx, const struct linli_api *a)
{
	(void)ctx;
	(void)a;
	free_state(state); /* pending requests are dropped by the kernel, never answered */
	state = NULL;
}

LINLI_PLUGIN(ebike_init, ebike_fini, .name = "ebike", .version = "0.1.0", .family = "custom",
	     .description = "电动车充电安全: e-bikes entering stairwells, lifts and corridors "
			    "(camera analytics) raise an alarm, smoke in the same building soon "
			    "after escalates with a grid case; a street's own app",
	     .capabilities = {"bus.subscribe:dev/camera/+/event/" EVENT_NAME,
			      "bus.subscribe:dev/smoke/+/event/alarm",
			      "bus.subscribe:dev/smoke/+/smoke_density", "store.read:devices",
			      "store.read:grids", "catalog.read", "bus.publish:alarmreq/raise",
			      "bus.publish:incidentreq/report"});
