/*
 * perimeter — the perimeter and municipal plugin of the safety family
 * (plugins/perimeter/).
 *
 * It turns the events of electronic fences, manhole covers, trash bins and
 * cameras into alarms through the alarms plugin (a request on
 * alarmreq/raise): a fence crossing only inside its zone's schedule (night
 * by default; outside it is counted, not raised), a fence cut or tampered
 * with, a manhole cover opened or tilted, a trash bin full (a warning) or on
 * fire (critical), and a camera's video-analytics event by name through the
 * camera_events table (an event not in the table is counted, not raised).
 * A manhole whose lid reads closed again, or whose tilt is back under
 * level_deg, and a trash bin emptied below empty_below clear their alarm
 * on alarmreq/clear. Which classes it handles is the plugin index's
 * (`classes` in catalog/plugins.cfg): a class the index gives to another
 * plugin is skipped with a warning, so no device event raises two alarms.
 * Settings are plugins.perimeter.* in linli.cfg, validated at load and when
 * a reload (SIGHUP) changes them. Everything runs on the kernel thread; it
 * never writes the store and never blocks.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linli/linli.h>

#include "plugcfg.h"
#include "plugcmd.h"

static const struct linli_api *api;

#define NAME_MAX_  64 /* an alarm type, a camera event, a zone: [a-z][a-z0-9_]* */
#define ZONES_MAX  64
#define CAMERA_MAX 64	/* rows of camera_events */
#define COUNT_MAX  256	/* alarm types counted (fixed ones and camera types seen) */
#define BUCKETS	   1024 /* device state hash buckets */
#define CLASS_MAX  32

/* The fixed alarm types (the camera's come from camera_events). */
enum ptype {
	T_CROSSING,	/* an electronic fence crossed, inside the schedule */
	T_CUT,		/* a fence cut */
	T_TAMPER,	/* a fence tampered with */
	T_MANHOLE_OPEN, /* a manhole cover opened */
	T_MANHOLE_TILT, /* a manhole cover tilted */
	T_TRASH_FULL,	/* a trash bin full: a warning */
	T_TRASH_FIRE,	/* a trash bin on fire */
	T_N
};
static const char *const type_names[T_N] = {"fence_crossing", "fence_cut",    "fence_tamper",
					    "manhole_open",   "manhole_tilt", "trash_full",
					    "trash_fire"};
static const int default_sev[T_N] = {1, 0, 1, 1, 1, 3, 0};

/* The device classes it handles, and what each event of theirs raises. */
static const char *const my_classes[] = {"efence", "manhole", "trash_bin", "camera"};
#define N_CLASSES 4
static const struct {
	int cls; /* index into my_classes */
	const char *event;
	int type;
	const char *what;
} event_map[] = {
    {0, "crossing", T_CROSSING, "fence crossing"},
    {0, "cut", T_CUT, "fence cut"},
    {0, "tamper", T_TAMPER, "fence tampered with"},
    {1, "opened", T_MANHOLE_OPEN, "manhole cover opened"},
    {1, "tilted", T_MANHOLE_TILT, "manhole cover tilted"},
    {2, "full", T_TRASH_FULL, "trash bin full"},
    {2, "fire", T_TRASH_FIRE, "fire in a trash bin"},
};

/* "HH:MM" to "HH:MM" in local time; from == to: around the clock. */
struct hours {
	int from, to; /* minutes of the day */
};

struct zone {
	char name[NAME_MAX_ + 1];
	struct hours h;
};

struct camrow {
	char event[NAME_MAX_ + 1], type[NAME_MAX_ + 1];
	int sev;
};

struct pcfg {
	struct hours crossing; /* every zone without its own */
	struct zone zones[ZONES_MAX];
	int n_zones;
	struct camrow cam[CAMERA_MAX];
	int n_cam;
	double level_deg;    /* a tilted manhole at or under this is level again */
	int64_t empty_below; /* a full trash bin under this fill (%) is emptied */
	int sev[T_N];
};

/* The camera table when camera_events is not configured. */
static const struct camrow default_cam[] = {
    {"fire_lane_blocked", "fire_lane_blocked", 1},
    {"loitering", "loitering", 2},
    {"fall", "fall", 0},
    {"intrusion", "camera_intrusion", 1},
    {"fire_smoke", "camera_fire_smoke", 0},
};

/* A device's clearable condition: raised by its event, cleared by a reading. */
struct dstate {
	struct dstate *next;
	char device[LINLI_ID_MAX + 1];
	char scope[LINLI_SCOPE_MAX + 1];
	int type;
	int state; /* S_RAISED, S_NORMAL */
};
enum { S_RAISED = 1, S_NORMAL };

/* Counters of one alarm type. */
struct counter {
	char type[NAME_MAX_ + 1];
	int64_t raised, failed, cleared;
};

struct pstate {
	struct pcfg cfg;
	char *cfg_json; /* the plugins.perimeter group last seen (applied or refused) */
	bool handles[N_CLASSES];
	char skipped[N_CLASSES][NAME_MAX_ + 1]; /* "" or the plugin the index gives it to */
	char *cam_events;			/* the camera class's events, ", "-separated */
	struct dstate *buckets[BUCKETS];
	struct counter counts[COUNT_MAX];
	int n_counts;
	int64_t events, readings, outside_schedule, unmapped, refused_reloads;
};

static struct pstate *state; /* init to fini */

/* ---- configuration ---- */

/* "linli.cfg: plugins.perimeter.KEY: ..." into err: LINLI_ECONFIG (plugcfg.h). */
#define cfg_err(err, errlen, key, ...)                                                             \
	plugcfg_err(&(const struct plugcfg){api, "perimeter", (err), (errlen)}, (key), __VA_ARGS__)

/* [a-z][a-z0-9_]*, at most NAME_MAX_ bytes: an alarm type, an event, a zone. */
static bool name_ok(const char *s)
{
	size_t n = 0;
	if (!s || !(*s >= 'a' && *s <= 'z'))
		return false;
	for (; s[n]; n++)
		if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') || s[n] == '_'))
			return false;
	return n <= NAME_MAX_;
}

/* "HH:MM" into minutes of the day, or -1. */
static int hhmm(const char *s)
{
	if (!s || strlen(s) != 5 || s[2] != ':')
		return -1;
	for (int i = 0; i < 5; i++)
		if (i != 2 && !(s[i] >= '0' && s[i] <= '9'))
			return -1;
	int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
	return h < 24 && m < 60 ? h * 60 + m : -1;
}

/* [ "HH:MM", "HH:MM" ] at key of c (a config map) into *h. */
static int get_hours(linli_record *c, const char *key, const char *name, struct hours *h, char *err,
		     size_t errlen)
{
	linli_record *a = NULL;
	const char *from = NULL, *to = NULL;
	if (api->rec_get_array(c, key, &a) || api->rec_count(a) != 2 ||
	    api->arr_get_str(a, 0, &from, NULL) || api->arr_get_str(a, 1, &to, NULL) ||
	    hhmm(from) < 0 || hhmm(to) < 0)
		return cfg_err(err, errlen, name,
			       "must be [ \"HH:MM\", \"HH:MM\" ] in local time, from and to "
			       "(e.g. [ \"22:00\", \"06:00\" ]; the same twice: all day)");
	h->from = hhmm(from);
	h->to = hhmm(to);
	return 0;
}

/* zones = { NAME = [ "HH:MM", "HH:MM" ]; ... } */
static int get_zones(linli_record *c, struct pcfg *f, char *err, size_t errlen)
{
	linli_record *m = NULL;
	if (!api->rec_has(c, "zones"))
		return 0;
	if (api->rec_get_map(c, "zones", &m))
		return cfg_err(err, errlen, "zones",
			       "must be a group { ZONE = [ \"HH:MM\", \"HH:MM\" ]; }");
	if (api->rec_count(m) > ZONES_MAX)
		return cfg_err(err, errlen, "zones", "more than %d zones", ZONES_MAX);
	for (size_t i = 0; i < api->rec_count(m); i++) {
		const char *k = NULL;
		char key[96];
		api->rec_key(m, i, &k);
		snprintf(key, sizeof key, "zones.%.64s", k ? k : "?");
		if (!name_ok(k))
			return cfg_err(err, errlen, key,
				       "a zone name must be [a-z][a-z0-9_]*, at most %d bytes",
				       NAME_MAX_);
		struct zone *z = &f->zones[f->n_zones];
		int rc = get_hours(m, k, key, &z->h, err, errlen);
		if (rc)
			return rc;
		snprintf(z->name, sizeof z->name, "%s", k);
		f->n_zones++;
	}
	return 0;
}

/* Is `event` one of the camera class's events (", "-separated in list)? */
static bool cam_event_known(const char *list, const char *event)
{
	size_t n = strlen(event);
	for (const char *p = list; p && *p;) {
		const char *e = strstr(p, ", ");
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == n && strncmp(p, event, n) == 0)
			return true;
		p = e ? e + 2 : NULL;
	}
	return false;
}

/* camera_events = { EVENT = { type = "TYPE"; severity = "SEVERITY"; }; ... } */
static int get_camera(linli_record *c, const char *cam_events, struct pcfg *f, char *err,
		      size_t errlen)
{
	linli_record *m = NULL;
	if (!api->rec_has(c, "camera_events"))
		return 0;
	if (api->rec_get_map(c, "camera_events", &m))
		return cfg_err(err, errlen, "camera_events",
			       "must be a group { EVENT = { type = \"TYPE\"; severity = "
			       "\"SEVERITY\"; }; }");
	if (api->rec_count(m) > CAMERA_MAX)
		return cfg_err(err, errlen, "camera_events", "more than %d events", CAMERA_MAX);
	f->n_cam = 0;
	for (size_t i = 0; i < api->rec_count(m); i++) {
		const char *k = NULL, *type = NULL, *sev = NULL;
		linli_record *row = NULL;
		char key[128];
		api->rec_key(m, i, &k);
		snprintf(key, sizeof key, "camera_events.%.64s", k ? k : "?");
		if (!k || !cam_event_known(cam_events, k))
			return cfg_err(err, errlen, key, "not an event of device class camera (%s)",
				       cam_events && *cam_events ? cam_events
								 : "none in the catalog");
		if (api->rec_get_map(m, k, &row))
			return cfg_err(
			    err, errlen, key,
			    "must be a group { type = \"TYPE\"; severity = \"SEVERITY\"; }");
		for (size_t j = 0; j < api->rec_count(row); j++) {
			const char *rk = NULL;
			api->rec_key(row, j, &rk);
			if (!rk || (strcmp(rk, "type") && strcmp(rk, "severity")))
				return cfg_err(err, errlen, key,
					       "unknown key '%.64s' (it takes type, severity)",
					       rk ? rk : "?");
		}
		if (api->rec_has(row, "type") &&
		    (api->rec_get_str(row, "type", &type, NULL) || !name_ok(type))) {
			char tk[160];
			snprintf(tk, sizeof tk, "%s.type", key);
			return cfg_err(err, errlen, tk,
				       "an alarm type must be [a-z][a-z0-9_]*, at most %d bytes",
				       NAME_MAX_);
		}
		int s = -1;
		if (api->rec_get_str(row, "severity", &sev, NULL) == 0)
			s = plugcfg_sev(sev);
		if (s < 0) {
			char sk[160];
			snprintf(sk, sizeof sk, "%s.severity", key);
			return cfg_err(err, errlen, sk, "must be one of %s", PLUGCFG_SEV_LIST);
		}
		struct camrow *r = &f->cam[f->n_cam++];
		snprintf(r->event, sizeof r->event, "%s", k);
		snprintf(r->type, sizeof r->type, "%s", type ? type : k);
		r->sev = s;
	}
	return 0;
}

/* The plugins.perimeter group c into the state ud's cfg when good, or LINLI_ECONFIG naming
 * the key. */
static int cfg_parse(const struct plugcfg *p, linli_record *c, void *ud)
{
	struct pstate *st = ud;
	char *err = p->err;
	size_t errlen = p->errlen;
	static const char *const keys[] = {"crossing_hours", "zones",	 "level_deg",
					   "empty_below",    "severity", "camera_events"};
	struct pcfg *f = calloc(1, sizeof *f);
	if (!f)
		return snprintf(err, errlen, "out of memory"), LINLI_ENOMEM;
	f->crossing = (struct hours){22 * 60, 6 * 60};
	f->level_deg = 5.0;
	f->empty_below = 50;
	memcpy(f->sev, default_sev, sizeof f->sev);
	f->n_cam = (int)(sizeof default_cam / sizeof default_cam[0]);
	memcpy(f->cam, default_cam, sizeof default_cam);
	int rc = plugcfg_keys(p, c, keys, sizeof keys / sizeof keys[0]);
	if (!rc && api->rec_has(c, "crossing_hours"))
		rc = get_hours(c, "crossing_hours", "crossing_hours", &f->crossing, err, errlen);
	if (!rc)
		rc = get_zones(c, f, err, errlen);
	if (!rc)
		rc = plugcfg_num(p, c, "level_deg", 0.0, 90.0, "deg", &f->level_deg);
	if (!rc)
		rc =
		    plugcfg_int(p, c, "empty_below", 1, 100, 1, "a whole percent", &f->empty_below);
	if (!rc)
		rc = plugcfg_sevs(p, c, type_names, T_N, "a camera's are set in camera_events",
				  f->sev);
	if (!rc)
		rc = get_camera(c, st->cam_events, f, err, errlen);
	if (!rc)
		st->cfg = *f;
	free(f);
	return rc;
}

static void hours_text(const struct hours *h, char *buf, size_t n)
{
	snprintf(buf, n, "%02d:%02d-%02d:%02d", h->from / 60, h->from % 60, h->to / 60, h->to % 60);
}

static linli_record *cfg_record(const struct pcfg *f)
{
	linli_record *r = api->rec_new(), *m = NULL, *a = NULL;
	char buf[6];
	if (!r)
		return NULL;
	if (api->rec_set_array(r, "crossing_hours", &a) == 0) {
		snprintf(buf, sizeof buf, "%02d:%02d", f->crossing.from / 60,
			 f->crossing.from % 60);
		api->arr_push_str(a, buf);
		snprintf(buf, sizeof buf, "%02d:%02d", f->crossing.to / 60, f->crossing.to % 60);
		api->arr_push_str(a, buf);
	}
	if (api->rec_set_map(r, "zones", &m) == 0)
		for (int i = 0; i < f->n_zones; i++) {
			char t[16];
			hours_text(&f->zones[i].h, t, sizeof t);
			api->rec_set_str(m, f->zones[i].name, t);
		}
	api->rec_set_float(r, "level_deg", f->level_deg);
	api->rec_set_int(r, "empty_below", f->empty_below);
	plugcfg_put_sevs(api, r, type_names, T_N, f->sev);
	if (api->rec_set_map(r, "camera_events", &m) == 0)
		for (int i = 0; i < f->n_cam; i++) {
			linli_record *row = NULL;
			if (api->rec_set_map(m, f->cam[i].event, &row) == 0) {
				api->rec_set_str(row, "type", f->cam[i].type);
				api->rec_set_str(row, "severity", plugcfg_sev_names[f->cam[i].sev]);
			}
		}
	return r;
}

/* ---- counters per alarm type ---- */

/* The counter of alarm type `type` (added on first use); -1 when the table is full. */
static int counter_of(struct pstate *st, const char *type)
{
	for (int i = 0; i < st->n_counts; i++)
		if (strcmp(st->counts[i].type, type) == 0)
			return i;
	if (st->n_counts == COUNT_MAX)
		return -1;
	snprintf(st->counts[st->n_counts].type, sizeof st->counts[0].type, "%s", type);
	return st->n_counts++;
}

/* ---- raising and clearing through the alarms plugin ---- */

/* ud of a request: the counter, and whether it is a clear (low bit). */
#define ASKED(i, clear) ((void *)(intptr_t)((i) << 1 | (clear)))

static void on_answer(linli_ctx *ctx, uint64_t id, int status, const linli_record *rec,
		      const char *err, void *ud)
{
	(void)id;
	(void)rec;
	int i = (int)((intptr_t)ud >> 1);
	bool clear = (intptr_t)ud & 1;
	if (!state || i < 0 || i >= state->n_counts)
		return;
	struct counter *c = &state->counts[i];
	if (clear && status == LINLI_ENOENT) /* none active: an operator cleared it, or never */
		return;
	if (status < 0) {
		if (!clear)
			c->failed++;
		api->log(ctx, LINLI_LOG_WARN, "%s alarm not %s: %s (%s)", c->type,
			 clear ? "cleared" : "raised", err && *err ? err : "no reason",
			 linli_strerror(status));
		return;
	}
	if (clear)
		c->cleared++;
	else
		c->raised++;
}

/* Raise alarm `type` of device at scope with severity sev. */
static void raise_device(linli_ctx *ctx, struct pstate *st, const char *type, int sev,
			 const char *scope, const char *device, const char *details)
{
	char src[LINLI_ID_MAX + 8];
	int i = counter_of(st, type);
	snprintf(src, sizeof src, "device:%s", device);
	linli_record *p = api->rec_new();
	if (!p) {
		if (i >= 0)
			st->counts[i].failed++;
		return;
	}
	api->rec_set_str(p, "type", type);
	api->rec_set_str(p, "source", src);
	api->rec_set_str(p, "severity", plugcfg_sev_names[sev]);
	api->rec_set_str(p, "details", details);
	int rc = api->request(ctx, "alarmreq/raise", scope, p, 10000, on_answer,
			      ASKED(i < 0 ? COUNT_MAX : i, 0), NULL);
	api->rec_free(p);
	if (rc) {
		if (i >= 0)
			st->counts[i].failed++;
		api->log(ctx, LINLI_LOG_WARN, "%s alarm of %s at %s not raised: %s", type, src,
			 scope, linli_strerror(rc));
	}
}

/* Clear the active alarm t of device at scope: the device says it is over. */
static void clear_device(linli_ctx *ctx, struct pstate *st, int t, const char *scope,
			 const char *device, const char *why)
{
	char src[LINLI_ID_MAX + 8];
	int i = counter_of(st, type_names[t]);
	snprintf(src, sizeof src, "device:%s", device);
	linli_record *p = api->rec_new();
	if (!p)
		return;
	api->rec_set_str(p, "type", type_names[t]);
	api->rec_set_str(p, "source", src);
	api->rec_set_str(p, "why", why);
	int rc = api->request(ctx, "alarmreq/clear", scope, p, 10000, on_answer,
			      ASKED(i < 0 ? COUNT_MAX : i, 1), NULL);
	api->rec_free(p);
	if (rc)
		api->log(ctx, LINLI_LOG_WARN, "%s alarm of %s at %s not cleared: %s", type_names[t],
			 src, scope, linli_strerror(rc));
}

/* ---- device states: what a reading may clear ---- */

static size_t bucket(const char *device, int type)
{
	uint64_t h = 1469598103934665603ULL ^ (uint64_t)type;
	for (const char *s = device; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (size_t)(h & (BUCKETS - 1));
}

static struct dstate *find_state(struct pstate *st, const char *scope, const char *device, int type,
				 bool add)
{
	struct dstate **pp = &st->buckets[bucket(device, type)];
	while (*pp && ((*pp)->type != type || strcmp((*pp)->device, device) ||
		       strcmp((*pp)->scope, scope)))
		pp = &(*pp)->next;
	if (*pp || !add)
		return *pp;
	struct dstate *d = calloc(1, sizeof *d);
	if (!d)
		return NULL;
	snprintf(d->device, sizeof d->device, "%s", device);
	snprintf(d->scope, sizeof d->scope, "%s", scope);
	d->type = type;
	*pp = d;
	return d;
}

/*
 * A reading says condition t of device is over (a lid closed, a cover
 * level, a bin emptied): its alarm is cleared once per change. A device
 * not seen since the start is cleared once too (its alarm may be from
 * before a restart; alarms answers "none active" otherwise), without a
 * log line: only a clear after an alarm seen here is logged.
 */
static void back_to_normal(linli_ctx *ctx, struct pstate *st, int t, const char *scope,
			   const char *device, const char *why)
{
	struct dstate *d = find_state(st, scope, device, t, true);
	if (!d || d->state == S_NORMAL)
		return;
	if (d->state == S_RAISED)
		api->log(ctx, LINLI_LOG_INFO, "%s of device %s at %s: %s, clearing its alarm",
			 type_names[t], device, scope, why);
	d->state = S_NORMAL;
	clear_device(ctx, st, t, scope, device, why);
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

static int class_of(const char *cls)
{
	for (int i = 0; i < N_CLASSES; i++)
		if (strcmp(cls, my_classes[i]) == 0)
			return i;
	return -1;
}

/* Is local time `now` inside hours h? */
static bool within(linli_ctx *ctx, const struct hours *h, int64_t now)
{
	struct linli_tm tm = {.size = sizeof tm};
	if (h->from == h->to || api->time_local(ctx, now, &tm))
		return true; /* all day (or no local time: never miss a crossing) */
	int m = tm.hour * 60 + tm.minute;
	return h->from < h->to ? m >= h->from && m < h->to : m >= h->from || m < h->to;
}

/* A fence crossing: raised inside its zone's hours, counted outside them. */
static void crossing(linli_ctx *ctx, struct pstate *st, const struct linli_event *ev,
		     const char *id)
{
	linli_record *data = NULL;
	const char *zone = NULL;
	if (api->rec_get_map((linli_record *)ev->payload, "data", &data) == 0)
		api->rec_get_str(data, "zone", &zone, NULL);
	const struct hours *h = &st->cfg.crossing;
	for (int i = 0; zone && i < st->cfg.n_zones; i++)
		if (strcmp(st->cfg.zones[i].name, zone) == 0)
			h = &st->cfg.zones[i].h;
	char hs[16], what[160];
	hours_text(h, hs, sizeof hs);
	if (!within(ctx, h, api->time_now_ms())) {
		st->outside_schedule++;
		return;
	}
	if (zone)
		snprintf(what, sizeof what, "fence crossing in zone %.64s (watched %s)", zone, hs);
	else
		snprintf(what, sizeof what, "fence crossing (watched %s)", hs);
	raise_device(ctx, st, type_names[T_CROSSING], st->cfg.sev[T_CROSSING], ev->scope, id, what);
}

static int on_event(linli_ctx *ctx, const struct linli_event *ev, void *ud)
{
	struct pstate *st = ud;
	char cls[CLASS_MAX + 1], id[LINLI_ID_MAX + 1];
	const char *rest = split_topic(ev->topic, cls, id);
	int ci = rest ? class_of(cls) : -1;
	if (ci < 0 || strncmp(rest, "event/", 6) != 0)
		return 0;
	const char *name = rest + 6;
	st->events++;
	if (strcmp(name, "online") == 0 || strcmp(name, "unavailable") == 0)
		return 0; /* availability: seen, neither raised nor unmapped */
	if (ci == 3) {	  /* a camera: its analytics event through the table */
		for (int i = 0; i < st->cfg.n_cam; i++) {
			const struct camrow *r = &st->cfg.cam[i];
			if (strcmp(r->event, name))
				continue;
			char what[160];
			snprintf(what, sizeof what, "camera analytics: %s", name);
			raise_device(ctx, st, r->type, r->sev, ev->scope, id, what);
			return 0;
		}
		st->unmapped++;
		return 0;
	}
	for (size_t i = 0; i < sizeof event_map / sizeof event_map[0]; i++) {
		if (event_map[i].cls != ci || strcmp(event_map[i].event, name))
			continue;
		int t = event_map[i].type;
		if (t == T_CROSSING) {
			crossing(ctx, st, ev, id);
			return 0;
		}
		if (t == T_MANHOLE_OPEN || t == T_MANHOLE_TILT || t == T_TRASH_FULL) {
			struct dstate *d = find_state(st, ev->scope, id, t, true);
			if (d)
				d->state = S_RAISED;
		}
		raise_device(ctx, st, type_names[t], st->cfg.sev[t], ev->scope, id,
			     event_map[i].what);
		return 0;
	}
	st->unmapped++; /* low_battery, fault, overflow ...: seen, not an alarm here */
	return 0;
}

/* Readings that end a condition: lid closed, tilt level, fill under empty_below. */
static int on_reading(linli_ctx *ctx, const struct linli_event *ev, void *ud)
{
	struct pstate *st = ud;
	char cls[CLASS_MAX + 1], id[LINLI_ID_MAX + 1], why[96];
	const char *res = split_topic(ev->topic, cls, id), *s = NULL;
	double v = 0;
	if (!res)
		return 0;
	st->readings++;
	if (strcmp(res, "lid") == 0) {
		if (api->rec_get_str(ev->payload, "value", &s, NULL) == 0 &&
		    strcmp(s, "closed") == 0)
			back_to_normal(ctx, st, T_MANHOLE_OPEN, ev->scope, id,
				       "the lid reads closed");
		else if (s) {
			struct dstate *d = find_state(st, ev->scope, id, T_MANHOLE_OPEN, false);
			if (d)
				d->state = S_RAISED; /* open again: the next close clears */
		}
		return 0;
	}
	if (api->rec_get_float(ev->payload, "value", &v))
		return 0;
	if (strcmp(res, "tilt_angle") == 0 && v <= st->cfg.level_deg) {
		snprintf(why, sizeof why, "tilt %.1f deg, level (at most %.1f)", v,
			 st->cfg.level_deg);
		back_to_normal(ctx, st, T_MANHOLE_TILT, ev->scope, id, why);
	} else if (strcmp(res, "fill_level") == 0 && v < (double)st->cfg.empty_below) {
		snprintf(why, sizeof why, "fill level %.0f%%, under %lld%%", v,
			 (long long)st->cfg.empty_below);
		back_to_normal(ctx, st, T_TRASH_FULL, ev->scope, id, why);
	}
	return 0;
}

/* Four times a second: a reload (SIGHUP) of plugins.perimeter, applied or refused. */
static void sweep(linli_ctx *ctx, void *ud)
{
	struct pstate *st = ud;
	if (plugcfg_reload(api, ctx, "perimeter", &st->cfg_json, cfg_parse, st,
			   &st->refused_reloads))
		for (int i = 0; i < st->cfg.n_cam; i++) /* new camera types show in stats */
			counter_of(st, st->cfg.cam[i].type);
}

/* ---- the console ---- */

static int cmd_stats(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		     char *err, size_t errlen)
{
	(void)ctx;
	struct pstate *st = req->ud;
	linli_record *r = api->rec_new(), *c = cfg_record(&st->cfg), *m = NULL, *a = NULL;
	if (!r || !c) {
		api->rec_free(r);
		api->rec_free(c);
		return snprintf(err, errlen, "out of memory"), LINLI_ENOMEM;
	}
	api->rec_set_int(r, "events", st->events);
	api->rec_set_int(r, "readings", st->readings);
	api->rec_set_int(r, "outside_schedule", st->outside_schedule);
	api->rec_set_int(r, "unmapped", st->unmapped);
	static const char *const keys[] = {"raised", "failed", "cleared"};
	for (int k = 0; k < 3; k++)
		if (api->rec_set_map(r, keys[k], &m) == 0)
			for (int i = 0; i < st->n_counts; i++) {
				const struct counter *n = &st->counts[i];
				api->rec_set_int(m, n->type,
						 k == 0	  ? n->raised
						 : k == 1 ? n->failed
							  : n->cleared);
			}
	if (api->rec_set_array(r, "classes", &a) == 0)
		for (int i = 0; i < N_CLASSES; i++)
			if (st->handles[i])
				api->arr_push_str(a, my_classes[i]);
	if (api->rec_set_map(r, "skipped", &m) == 0)
		for (int i = 0; i < N_CLASSES; i++)
			if (!st->handles[i])
				api->rec_set_str(m, my_classes[i], st->skipped[i]);
	api->rec_set_int(r, "refused_reloads", st->refused_reloads);
	api->rec_set_record(r, "config", c);
	api->rec_free(c);
	*reply = r;
	return 0;
}

/* ---- init and fini ---- */

/*
 * From the catalog's device classes: which of ours the plugin index gives
 * to another plugin (skipped), and the camera's event names (for checking
 * camera_events). A class the index gives to nobody is ours.
 */
static int read_classes(linli_ctx *ctx, struct pstate *st)
{
	linli_record *all = NULL;
	int rc = api->device_classes(ctx, &all);
	if (rc)
		return rc;
	for (int i = 0; i < N_CLASSES; i++)
		st->handles[i] = true;
	size_t len = 0, cap = 0;
	for (size_t i = 0; i < api->rec_count(all); i++) {
		linli_record *c = NULL, *evs = NULL;
		const char *name = NULL, *owner = NULL;
		if (api->arr_get_map(all, i, &c) || api->rec_get_str(c, "name", &name, NULL))
			continue;
		int ci = class_of(name);
		if (ci < 0)
			continue;
		if (api->rec_get_str(c, "plugin", &owner, NULL) == 0 &&
		    strcmp(owner, api->plugin_name(ctx)) != 0) {
			st->handles[ci] = false;
			snprintf(st->skipped[ci], sizeof st->skipped[ci], "%s", owner);
			api->log(ctx, LINLI_LOG_WARN,
				 "device class %s: the plugin index gives it to plugin '%s' "
				 "(classes in plugins.cfg); its events are not raised here",
				 name, owner);
		}
		if (ci != 3 || api->rec_get_array(c, "events", &evs))
			continue;
		for (size_t j = 0; j < api->rec_count(evs); j++) {
			linli_record *e = NULL;
			const char *en = NULL;
			if (api->arr_get_map(evs, j, &e) || api->rec_get_str(e, "name", &en, NULL))
				continue;
			size_t n = strlen(en) + 3;
			if (len + n >= cap) {
				char *b = realloc(st->cam_events, cap = (cap + n) * 2);
				if (!b) {
					api->rec_free(all);
					return LINLI_ENOMEM;
				}
				st->cam_events = b;
			}
			len += (size_t)snprintf(st->cam_events + len, cap - len, "%s%s",
						len ? ", " : "", en);
		}
	}
	api->rec_free(all);
	return 0;
}

static void free_state(struct pstate *st)
{
	for (size_t i = 0; i < BUCKETS; i++)
		for (struct dstate *d = st->buckets[i], *n; d; d = n) {
			n = d->next;
			free(d);
		}
	free(st->cam_events);
	free(st->cfg_json);
	free(st);
}

static int perimeter_init(linli_ctx *ctx, const struct linli_api *a)
{
	/* Per class: its events, and the readings that clear. */
	static const char *const events[N_CLASSES] = {
	    "dev/efence/+/event/#", "dev/manhole/+/event/#", "dev/trash_bin/+/event/#",
	    "dev/camera/+/event/#"};
	static const char *const readings[N_CLASSES][2] = {
	    {NULL, NULL},
	    {"dev/manhole/+/lid", "dev/manhole/+/tilt_angle"},
	    {"dev/trash_bin/+/fill_level", NULL},
	    {NULL, NULL}};
	api = a;
	char err[512] = "";
	bool changed = false;
	struct pstate *st = calloc(1, sizeof *st);
	int rc = st ? read_classes(ctx, st) : LINLI_ENOMEM;
	if (!rc)
		rc = plugcfg_load(&(const struct plugcfg){api, "perimeter", err, sizeof err}, ctx,
				  &st->cfg_json, cfg_parse, st, &changed);
	for (int i = 0; !rc && i < N_CLASSES; i++) {
		if (!st->handles[i])
			continue;
		rc = api->subscribe(ctx, events[i], on_event, st, NULL);
		for (int j = 0; !rc && j < 2 && readings[i][j]; j++)
			rc = api->subscribe(ctx, readings[i][j], on_reading, st, NULL);
	}
	static const struct plugcmd_action action = {"perimeter.stats", "operator", NULL, NULL,
						     "see perimeter's counters and configuration"};
	static const struct plugcmd_cmd cmd = {"stats", "", "events seen, alarms raised per type, the configuration",
					       "perimeter.stats", cmd_stats};
	if (!rc)
		rc = plugcmd_register(api, ctx, &action, 1, &cmd, 1, NULL, 0, st, err, sizeof err);
	if (!rc)
		rc = api->timer_add(ctx, 250, 250, sweep, st, NULL);
	if (rc) {
		api->set_error(ctx, "%s", err[0] ? err : linli_strerror(rc));
		if (st)
			free_state(st);
		return rc;
	}
	for (int i = 0; i < T_N; i++) /* every fixed type shows in stats, 0 until raised */
		counter_of(st, type_names[i]);
	for (int i = 0; i < st->cfg.n_cam; i++)
		counter_of(st, st->cfg.cam[i].type);
	state = st;
	char hs[16];
	hours_text(&st->cfg.crossing, hs, sizeof hs);
	api->log(ctx, LINLI_LOG_INFO,
		 "watching fences (crossings %s, %d zones of their own), manhole covers, trash "
		 "bins and %d camera analytics events",
		 hs, st->cfg.n_zones, st->cfg.n_cam);
	return 0;
}

static void perimeter_fini(linli_ctx *ctx, const struct linli_api *a)
{
	(void)ctx;
	(void)a;
	if (state)
		free_state(state);
	state = NULL;
}

LINLI_PLUGIN(perimeter_init, perimeter_fini, .name = "perimeter", .version = "1.0.0",
	     .family = "safety",
	     .description = "Perimeter and municipal: electronic-fence crossings on a schedule, "
			    "cuts and tampering, manhole covers opened or tilted, trash bins full "
			    "or on fire, camera video-analytics events by name as data. Raises "
			    "through alarms",
	     .requires = {"alarms"},
	     .capabilities = {
		 "bus.subscribe:dev/efence/+/event/#", "bus.subscribe:dev/manhole/+/event/#",
		 "bus.subscribe:dev/manhole/+/lid", "bus.subscribe:dev/manhole/+/tilt_angle",
		 "bus.subscribe:dev/trash_bin/+/event/#",
		 "bus.subscribe:dev/trash_bin/+/fill_level", "bus.subscribe:dev/camera/+/event/#",
		 "bus.publish:alarmreq/raise", "bus.publish:alarmreq/clear"});
