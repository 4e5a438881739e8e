/*
 * access — the access-control plugin of the safety family (plugins/access/).
 *
 * It watches the HAL's doors (catalog/devices/door.cfg): their card and face
 * results, their own forced / held_open / watchlist_hit events, and their
 * `state` (open, closed) and `passes_today` (people through) readings, and
 * raises alarms through the alarms plugin (a request on alarmreq/raise):
 *
 *   door_forced       the door's forced event; with forced_on_open, also an
 *                     opening with no valid card or face within pass_window_s
 *   door_held_open    open longer than held_open_s (or its held_open event);
 *                     cleared through alarmreq/clear when it closes
 *   tailgating        a pass (passes_today rising) with no valid card or face
 *                     left to cover it: each valid credential covers one pass
 *                     within pass_window_s before it (or 2 s after it)
 *   repeated_denials  `denials` card/face denials at one door within
 *                     denials_window_s
 *   watchlist_hit     a card or face result whose holder is the card_no or
 *                     face_id of a valid watchlist entry, or the door's own
 *                     watchlist_hit event: a row of the restricted dataset
 *                     watch_hits, an alarm with source record:watch_hits/ID
 *                     and details naming no one, and access/watch_hit {hit,
 *                     device, building} (ids only) for the watch plugin
 *
 * `linli access lockdown BUILDING` sends set_mode always_locked and lock to
 * every door of the building (devices.building), `release` sends set_mode
 * normal, acting as the caller and audited; the alarm types in lockdown_on
 * lock down the building of their door by themselves; `linli access stats`
 * and `linli access doors` show counters and doors. Thresholds, windows,
 * severities and lockdown_on are plugins.access.* in linli.cfg, validated at
 * load and again when a reload (SIGHUP) changes them. Everything runs on the
 * kernel thread and never blocks.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linli/linli.h>

#include "plugcfg.h"
#include "plugcmd.h"

static const struct linli_api *api;

enum atype { T_FORCED, T_HELD, T_TAILGATE, T_DENIALS, T_WATCH, T_N };
static const char *const type_names[T_N] = {"door_forced", "door_held_open", "tailgating",
					    "repeated_denials", "watchlist_hit"};
#define TYPE_LIST "door_forced, door_held_open, tailgating, repeated_denials, watchlist_hit"
static const int default_sev[T_N] = {1, 2, 1, 2, 0};

#define SECONDS_MAX  86400 /* the longest duration or window: a day */
#define GRACE_MS     2000  /* a credential may reach us this long after its pass */
#define BUCKETS	     256   /* doors hash buckets */
#define BUILDING_MAX 64	   /* the catalog's max_len of devices.building */
#define MATCH_MAX    128   /* watchlist.face_id's max_len */
#define CREDS_MAX    64	   /* valid credentials kept per door */
#define PASSES_MAX   64	   /* passes waiting for a credential per door */
#define DENIALS_MAX  100   /* the largest `denials` */
#define DOORS_MAX    2000  /* doors listed or commanded by one console command */

struct acfg {
	int64_t held_ms, pass_window_ms, denials_window_ms;
	int64_t denials;
	bool forced_on_open;
	unsigned lockdown_on; /* bit per type */
	int sev[T_N];
};

static const struct acfg cfg_defaults = {
    .held_ms = 60000, .pass_window_ms = 10000, .denials_window_ms = 60000, .denials = 5};

/* One door as seen on the bus and by the console. */
struct door {
	struct door *next;
	char device[LINLI_ID_MAX + 1];
	char scope[LINLI_SCOPE_MAX + 1];
	bool known_state, open, held_raised, open_unjudged, have_passes;
	int64_t open_since, opened_at, passes_seen, last_cred;
	int64_t creds[CREDS_MAX]; /* valid credentials not yet matched to a pass, in order */
	int n_creds;
	int64_t passes[PASSES_MAX]; /* passes waiting for a credential, in order */
	int n_passes;
	int64_t denied[DENIALS_MAX]; /* denials within the window, in order */
	int n_denied;
	char command[96]; /* the last command sent by access and how it went */
};

/* Where a device is (devices.building), as last read. */
struct loc {
	struct loc *next;
	char device[LINLI_ID_MAX + 1];
	char scope[LINLI_SCOPE_MAX + 1];
	char building[BUILDING_MAX + 1];
};

/* A building locked down (by a console command or an alarm), until released. */
struct locked {
	struct locked *next;
	char scope[LINLI_SCOPE_MAX + 1];
	char building[BUILDING_MAX + 1];
};

/* What an answer (to a raise or a door command) comes back for. */
struct pending {
	struct pending *next, **prev;
	char hit[LINLI_ID_MAX + 1]; /* a watchlist hit's record, or "" */
	char scope[LINLI_SCOPE_MAX + 1];
	char device[LINLI_ID_MAX + 1];
	char what[48];
};

struct astate {
	struct acfg cfg;
	char *cfg_json;
	struct door *doors[BUCKETS];
	struct loc *locs[BUCKETS];
	struct locked *locked;
	struct pending *pending;
	int64_t events, readings, raised[T_N], failed[T_N], cleared[T_N];
	int64_t hits, hits_unmatched, hits_failed, lockdowns, releases, cmds_sent, cmds_ok,
	    cmds_failed, refused_reloads, loc_reads;
};

static struct astate *state; /* init to fini */

/* ---- configuration ---- */

static int type_of(const char *s)
{
	for (int i = 0; s && i < T_N; i++)
		if (strcmp(s, type_names[i]) == 0)
			return i;
	return -1;
}

/* lockdown_on = [ "TYPE", ... ] */
static int get_lockdown(const struct plugcfg *p, linli_record *c, unsigned *bits)
{
	linli_record *a = NULL;
	if (!api->rec_has(c, "lockdown_on"))
		return 0;
	if (api->rec_get_array(c, "lockdown_on", &a))
		return plugcfg_err(p, "lockdown_on",
				   "must be a list of alarm types [ \"door_forced\", ... ]");
	*bits = 0;
	for (size_t i = 0; i < api->rec_count(a); i++) {
		const char *v = NULL;
		int t = api->arr_get_str(a, i, &v, NULL) ? -1 : type_of(v);
		if (t < 0)
			return plugcfg_err(p, "lockdown_on",
					   "'%.64s' is not an alarm type of access (%s)",
					   v ? v : "?", TYPE_LIST);
		*bits |= 1u << t;
	}
	return 0;
}

/* The plugins.access group c into the state ud's cfg when good, or LINLI_ECONFIG naming the key. */
static int cfg_parse(const struct plugcfg *p, linli_record *c, void *ud)
{
	static const char *const keys[] = {"held_open_s", "pass_window_s",    "forced_on_open",
					   "denials",	  "denials_window_s", "severity",
					   "lockdown_on"};
	struct acfg f = cfg_defaults;
	memcpy(f.sev, default_sev, sizeof f.sev);
	int rc = plugcfg_keys(p, c, keys, sizeof keys / sizeof keys[0]);
	if (!rc)
		rc = plugcfg_int(p, c, "held_open_s", 1, SECONDS_MAX, 1000, "whole seconds",
				 &f.held_ms);
	if (!rc)
		rc = plugcfg_int(p, c, "pass_window_s", 1, 600, 1000, "whole seconds",
				 &f.pass_window_ms);
	if (!rc)
		rc = plugcfg_int(p, c, "denials", 2, DENIALS_MAX, 1, "a whole number", &f.denials);
	if (!rc)
		rc = plugcfg_int(p, c, "denials_window_s", 1, SECONDS_MAX, 1000, "whole seconds",
				 &f.denials_window_ms);
	if (!rc)
		rc = plugcfg_bool(p, c, "forced_on_open", &f.forced_on_open);
	if (!rc)
		rc = plugcfg_sevs(p, c, type_names, T_N, NULL, f.sev);
	if (!rc)
		rc = get_lockdown(p, c, &f.lockdown_on);
	if (!rc)
		((struct astate *)ud)->cfg = f;
	return rc;
}

static linli_record *cfg_record(const struct acfg *f)
{
	linli_record *r = api->rec_new(), *on = NULL;
	if (!r)
		return NULL;
	api->rec_set_int(r, "held_open_s", f->held_ms / 1000);
	api->rec_set_int(r, "pass_window_s", f->pass_window_ms / 1000);
	api->rec_set_bool(r, "forced_on_open", f->forced_on_open);
	api->rec_set_int(r, "denials", f->denials);
	api->rec_set_int(r, "denials_window_s", f->denials_window_ms / 1000);
	plugcfg_put_sevs(api, r, type_names, T_N, f->sev);
	if (api->rec_set_array(r, "lockdown_on", &on) == 0)
		for (int i = 0; i < T_N; i++)
			if (f->lockdown_on & (1u << i))
				api->arr_push_str(on, type_names[i]);
	return r;
}

/* ---- doors and where they are ---- */

static size_t hash(const char *scope, const char *device)
{
	uint64_t h = 1469598103934665603ULL;
	for (const char *s = device; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	for (const char *s = scope; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (size_t)(h & (BUCKETS - 1));
}

/* The door `device` at scope, made on first sight (NULL: out of memory). */
static struct door *door_of(struct astate *st, const char *scope, const char *device)
{
	struct door **pp = &st->doors[hash(scope, device)];
	for (; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->device, device) == 0 && strcmp((*pp)->scope, scope) == 0)
			return *pp;
	struct door *d = calloc(1, sizeof *d);
	if (d) {
		snprintf(d->device, sizeof d->device, "%s", device);
		snprintf(d->scope, sizeof d->scope, "%s", scope);
		*pp = d;
	}
	return d;
}

static struct door *find_door(struct astate *st, const char *scope, const char *device)
{
	for (struct door *d = st->doors[hash(scope, device)]; d; d = d->next)
		if (strcmp(d->device, device) == 0 && strcmp(d->scope, scope) == 0)
			return d;
	return NULL;
}

/*
 * The building of a device, from the devices dataset ("" when none). Each
 * read of `devices` is audited, so it is read once and kept until its record
 * changes (a store_watch drops it).
 */
static const char *building_of(linli_ctx *ctx, struct astate *st, const char *scope,
			       const char *device)
{
	struct loc **pp = &st->locs[hash(scope, device)];
	for (; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->device, device) == 0 && strcmp((*pp)->scope, scope) == 0)
			return (*pp)->building;
	struct loc *l = calloc(1, sizeof *l);
	if (!l)
		return "";
	linli_record *r = NULL;
	const char *b = NULL;
	snprintf(l->device, sizeof l->device, "%s", device);
	snprintf(l->scope, sizeof l->scope, "%s", scope);
	if (api->store_get(ctx, "devices", scope, device, &r, NULL) == 0) {
		if (api->rec_get_str(r, "building", &b, NULL) == 0)
			snprintf(l->building, sizeof l->building, "%s", b);
		api->rec_free(r);
	}
	st->loc_reads++;
	*pp = l;
	return l->building;
}

static void on_device_change(linli_ctx *ctx, const struct linli_change *ch, void *ud)
{
	(void)ctx;
	struct astate *st = ud;
	for (struct loc **pp = &st->locs[hash(ch->scope, ch->id)]; *pp; pp = &(*pp)->next) {
		struct loc *l = *pp;
		if (strcmp(l->device, ch->id) == 0 && strcmp(l->scope, ch->scope) == 0) {
			*pp = l->next;
			free(l);
			return;
		}
	}
}

/* "door D" or "door D (building B)" into buf. */
static const char *door_text(linli_ctx *ctx, struct astate *st, const char *scope,
			     const char *device, char *buf, size_t n)
{
	const char *b = building_of(ctx, st, scope, device);
	if (b[0])
		snprintf(buf, n, "door %s (building %s)", device, b);
	else
		snprintf(buf, n, "door %s", device);
	return buf;
}

/* ---- answers: raises, clears, door commands ---- */

static struct pending *pending_new(struct astate *st)
{
	struct pending *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->next = st->pending;
	if (p->next)
		p->next->prev = &p->next;
	p->prev = &st->pending;
	st->pending = p;
	return p;
}

static void pending_free(struct pending *p)
{
	if (!p)
		return;
	*p->prev = p->next;
	if (p->next)
		p->next->prev = p->prev;
	free(p);
}

/* ud of a raise or clear: the alarm type, whether it is a clear (low bit). */
#define ASKED(t, clear) ((void *)(intptr_t)((t) << 1 | (clear)))

static void on_answer(linli_ctx *ctx, uint64_t id, int status, const linli_record *rec,
		      const char *err, void *ud)
{
	(void)id;
	(void)rec;
	int t = (int)((intptr_t)ud >> 1);
	bool clear = (intptr_t)ud & 1;
	if (!state || (clear && status == LINLI_ENOENT)) /* an operator cleared it already */
		return;
	if (status < 0) {
		if (!clear)
			state->failed[t]++;
		api->log(ctx, LINLI_LOG_WARN, "%s alarm not %s: %s (%s)", type_names[t],
			 clear ? "cleared" : "raised", err && *err ? err : "no reason",
			 linli_strerror(status));
		return;
	}
	(clear ? state->cleared : state->raised)[t]++;
}

static void lockdown_by_alarm(linli_ctx *ctx, struct astate *st, int t, const char *scope,
			      const char *device);

/*
 * Send a raise of type t with `source` at scope; fn/ud get the answer.
 * 0 or the request's refusal (counted as failed, logged).
 */
static int send_raise(linli_ctx *ctx, struct astate *st, int t, const char *scope,
		      const char *source, const char *details, linli_reply_fn fn, void *ud)
{
	linli_record *p = api->rec_new();
	int rc = p ? 0 : LINLI_ENOMEM;
	if (p) {
		api->rec_set_str(p, "type", type_names[t]);
		api->rec_set_str(p, "source", source);
		api->rec_set_str(p, "severity", plugcfg_sev_names[st->cfg.sev[t]]);
		api->rec_set_str(p, "details", details);
		rc = api->request(ctx, "alarmreq/raise", scope, p, 10000, fn, ud, NULL);
		api->rec_free(p);
	}
	if (rc) {
		st->failed[t]++;
		api->log(ctx, LINLI_LOG_WARN, "%s alarm of %s at %s not raised: %s", type_names[t],
			 source, scope, linli_strerror(rc));
	}
	return rc;
}

/* Raise alarm t of door `device` at scope: "<what> at door D (building B)". */
static void raise_door(linli_ctx *ctx, struct astate *st, int t, const char *scope,
		       const char *device, const char *what)
{
	char src[LINLI_ID_MAX + 8], where[LINLI_ID_MAX + BUILDING_MAX + 32], details[512];
	snprintf(src, sizeof src, "device:%s", device);
	snprintf(details, sizeof details, "%s at %s", what,
		 door_text(ctx, st, scope, device, where, sizeof where));
	if (send_raise(ctx, st, t, scope, src, details, on_answer, ASKED(t, 0)) == 0)
		lockdown_by_alarm(ctx, st, t, scope, device);
}

static void clear_door(linli_ctx *ctx, int t, const char *scope, const char *device,
		       const char *why)
{
	char src[LINLI_ID_MAX + 8];
	snprintf(src, sizeof src, "device:%s", device);
	linli_record *p = api->rec_new();
	if (!p)
		return;
	api->rec_set_str(p, "type", type_names[t]);
	api->rec_set_str(p, "source", src);
	api->rec_set_str(p, "why", why);
	int rc = api->request(ctx, "alarmreq/clear", scope, p, 10000, on_answer, ASKED(t, 1), NULL);
	api->rec_free(p);
	if (rc)
		api->log(ctx, LINLI_LOG_WARN, "%s alarm of %s at %s not cleared: %s", type_names[t],
			 src, scope, linli_strerror(rc));
}

/* ---- watchlist hits ---- */

/* The event's details (its "data" map: holder, score), borrowed; NULL when none. */
static linli_record *ev_data(const struct linli_event *ev)
{
	linli_record *data = NULL;
	return api->rec_get_map((linli_record *)ev->payload, "data", &data) ? NULL : data;
}

struct wl_find {
	int64_t now;
	char id[LINLI_ID_MAX + 1];
	char scope[LINLI_SCOPE_MAX + 1];
};

/* A watchlist entry valid now (valid_from/valid_until) that asks for alerts. */
static int wl_row(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	(void)ctx;
	struct wl_find *f = ud;
	int64_t from = 0, until = 0;
	bool alert = true;
	if (api->rec_get_time(row->record, "valid_from", &from) == 0 && from > f->now)
		return 0;
	if (api->rec_get_time(row->record, "valid_until", &until) == 0 && until <= f->now)
		return 0;
	if (api->rec_get_bool(row->record, "alert_on_access", &alert) == 0 && !alert)
		return 0;
	snprintf(f->id, sizeof f->id, "%s", row->id);
	snprintf(f->scope, sizeof f->scope, "%s", row->scope);
	return 1;
}

/* The valid watchlist entry whose `field` (face_id, card_no) is value: 1 found, 0 not, <0. */
static int wl_match(linli_ctx *ctx, const char *field, const char *value, struct wl_find *f)
{
	struct linli_where w = {.field = field, .value = value};
	char cursor[LINLI_CURSOR_MAX] = "";
	f->id[0] = '\0';
	do {
		struct linli_query q = {.size = sizeof q,
					.dataset = "watchlist",
					.scope = NULL, /* the node's subtree, whatever its level */
					.where = &w,
					.n_where = 1,
					.limit = 64,
					.cursor = cursor};
		int rc = api->store_scan(ctx, &q, wl_row, f, cursor);
		if (rc < 0)
			return rc;
		if (f->id[0])
			return 1;
	} while (cursor[0]);
	return 0;
}

/* The hit's alarm id into its record: the alarms plugin answered. */
static int set_alarm(linli_ctx *ctx, const char *id, linli_record **rec, void *ud, char *err,
		     size_t errlen)
{
	(void)ctx;
	(void)id;
	if (!*rec)
		return snprintf(err, errlen, "the hit was removed"), LINLI_ENOENT;
	return api->rec_set_str(*rec, "alarm", ud);
}

static void on_hit_raised(linli_ctx *ctx, uint64_t rid, int status, const linli_record *rec,
			  const char *err, void *ud)
{
	(void)rid;
	struct pending *p = ud;
	const char *alarm = NULL;
	on_answer(ctx, 0, status, rec, err, ASKED(T_WATCH, 0));
	if (status >= 0 && rec && api->rec_get_str(rec, "id", &alarm, NULL) == 0) {
		int rc = api->store_update(ctx, "watch_hits", p->scope, p->hit, set_alarm,
					   (void *)alarm);
		if (rc)
			api->log(ctx, LINLI_LOG_WARN, "watch hit %s: alarm %s not noted: %s",
				 p->hit, alarm, api->store_last_error(ctx));
	}
	pending_free(p);
}

/*
 * A watchlist person at door `device`: the hit into watch_hits, an alarm
 * that names no one, and access/watch_hit for the watch plugin.
 */
static void watch_hit(linli_ctx *ctx, struct astate *st, const struct linli_event *ev,
		      const char *device, const struct wl_find *f, const char *kind,
		      const char *matched)
{
	const char *b = building_of(ctx, st, ev->scope, device);
	linli_record *data = ev_data(ev);
	double score = -1;
	const char *s = NULL;
	if (data && api->rec_get_float(data, "score", &score) &&
	    api->rec_get_str(data, "score", &s, NULL) == 0)
		score = strtod(s, NULL);
	linli_record *r = api->rec_new();
	char id[LINLI_ID_MAX + 1] = "";
	int rc = r ? 0 : LINLI_ENOMEM;
	if (!rc) {
		api->rec_set_str(r, "person", f->id);
		api->rec_set_str(r, "device", device);
		api->rec_set_str(r, "kind", kind);
		if (matched && *matched)
			api->rec_set_str(r, "matched", matched);
		if (score >= 0 && score <= 1)
			api->rec_set_float(r, "score", score);
		api->rec_set_time(r, "at", api->time_now_ms());
		if (b[0])
			api->rec_set_str(r, "building", b);
		api->rec_set_str(r, "seen_by", "plugin:access");
		rc = api->store_put(ctx, "watch_hits", ev->scope, NULL, r, id, NULL);
		api->rec_free(r);
	}
	if (rc) {
		st->hits_failed++;
		api->log(ctx, LINLI_LOG_ERROR, "watchlist hit at door %s not written: %s", device,
			 rc == LINLI_ENOMEM ? "out of memory" : api->store_last_error(ctx));
		return;
	}
	st->hits++;
	linli_record *pub = api->rec_new();
	if (pub) {
		api->rec_set_str(pub, "hit", id);
		api->rec_set_str(pub, "device", device);
		api->rec_set_str(pub, "building", b);
		if ((rc = api->publish(ctx, "access/watch_hit", ev->scope, pub, NULL)))
			api->log(ctx, LINLI_LOG_WARN, "access/watch_hit of %s not published: %s",
				 id, linli_strerror(rc));
		api->rec_free(pub);
	}
	char src[LINLI_ID_MAX + 24], where[LINLI_ID_MAX + BUILDING_MAX + 32], details[256];
	snprintf(src, sizeof src, "record:watch_hits/%s", id);
	snprintf(details, sizeof details, "restricted: watchlist hit at %s",
		 door_text(ctx, st, ev->scope, device, where, sizeof where));
	struct pending *p = pending_new(st);
	if (!p) {
		st->failed[T_WATCH]++;
		return;
	}
	snprintf(p->hit, sizeof p->hit, "%s", id);
	snprintf(p->scope, sizeof p->scope, "%s", ev->scope);
	if (send_raise(ctx, st, T_WATCH, ev->scope, src, details, on_hit_raised, p))
		pending_free(p);
	else
		lockdown_by_alarm(ctx, st, T_WATCH, ev->scope, device);
}

/* A card or face result (kind "card", "face") or the door's watchlist_hit ("device"). */
static void check_watchlist(linli_ctx *ctx, struct astate *st, const struct linli_event *ev,
			    const char *device, const char *kind)
{
	const char *holder = NULL;
	linli_record *data = ev_data(ev);
	struct wl_find f = {.now = api->time_now_ms()};
	if (!data || api->rec_get_str(data, "holder", &holder, NULL) || !holder[0] ||
	    strlen(holder) > MATCH_MAX)
		holder = NULL;
	int rc = 0;
	if (holder && strcmp(kind, "card") != 0)
		rc = wl_match(ctx, "face_id", holder, &f);
	if (holder && rc == 0 && strcmp(kind, "face") != 0)
		rc = wl_match(ctx, "card_no", holder, &f);
	if (rc < 0)
		api->log(ctx, LINLI_LOG_WARN, "watchlist not read for door %s: %s", device,
			 api->store_last_error(ctx));
	if (rc == 1) {
		watch_hit(ctx, st, ev, device, &f, kind, holder);
		return;
	}
	if (strcmp(kind, "device") != 0)
		return;
	/* The door saw someone of a watchlist this node does not hold: still an alarm. */
	st->hits_unmatched++;
	raise_door(ctx, st, T_WATCH, ev->scope, device,
		   "restricted: the door reported a watchlist hit (no entry of this node's "
		   "watchlist)");
}

/* ---- credentials, passes, openings ---- */

static void drop_first(int64_t *a, int *n, int i)
{
	memmove(a + i, a + i + 1, (size_t)(*n - i - 1) * sizeof *a);
	(*n)--;
}

/*
 * Match the door's passes to its valid credentials: each credential covers
 * one pass at most pass_window_s after it (or GRACE_MS before it); a pass
 * left uncovered GRACE_MS after it is tailgating. An opening without any
 * credential is door_forced (forced_on_open).
 */
static void judge(linli_ctx *ctx, struct astate *st, struct door *d, int64_t now)
{
	int64_t win = st->cfg.pass_window_ms;
	int tailgates = 0;
	for (int i = 0; i < d->n_passes;) {
		int64_t p = d->passes[i];
		int c = 0;
		while (c < d->n_creds && d->creds[c] < p - win)
			c++;
		if (c < d->n_creds && d->creds[c] <= p + GRACE_MS) {
			drop_first(d->creds, &d->n_creds, c);
			drop_first(d->passes, &d->n_passes, i);
		} else if (now - p >= GRACE_MS) {
			tailgates++;
			drop_first(d->passes, &d->n_passes, i);
		} else
			i++;
	}
	while (d->n_creds && d->creds[0] < now - win - GRACE_MS)
		drop_first(d->creds, &d->n_creds, 0);
	if (tailgates) {
		char what[160];
		snprintf(what, sizeof what, "%d pass%s with no valid card or face within %lld s",
			 tailgates, tailgates > 1 ? "es" : "", (long long)(win / 1000));
		raise_door(ctx, st, T_TAILGATE, d->scope, d->device, what);
	}
	if (d->open_unjudged) {
		int64_t o = d->opened_at;
		bool covered =
		    d->last_cred && d->last_cred >= o - win && d->last_cred <= o + GRACE_MS;
		if (covered || now - o >= GRACE_MS) {
			d->open_unjudged = false;
			if (!covered) {
				char what[128];
				snprintf(what, sizeof what,
					 "opened with no valid card or face within %lld s",
					 (long long)(win / 1000));
				raise_door(ctx, st, T_FORCED, d->scope, d->device, what);
			}
		}
	}
}

static void credential(linli_ctx *ctx, struct astate *st, struct door *d, int64_t now)
{
	if (d->n_creds == CREDS_MAX)
		drop_first(d->creds, &d->n_creds, 0);
	d->creds[d->n_creds++] = now;
	d->last_cred = now;
	judge(ctx, st, d, now);
}

static void denial(linli_ctx *ctx, struct astate *st, struct door *d, int64_t now)
{
	while (d->n_denied && d->denied[0] <= now - st->cfg.denials_window_ms)
		drop_first(d->denied, &d->n_denied, 0);
	if (d->n_denied == DENIALS_MAX)
		drop_first(d->denied, &d->n_denied, 0);
	d->denied[d->n_denied++] = now;
	if (d->n_denied < st->cfg.denials)
		return;
	char what[128];
	snprintf(what, sizeof what, "%d denied cards or faces within %lld s", d->n_denied,
		 (long long)(st->cfg.denials_window_ms / 1000));
	d->n_denied = 0; /* the next `denials` raise again (folded into the active alarm) */
	raise_door(ctx, st, T_DENIALS, d->scope, d->device, what);
}

/* ---- bus handlers ---- */

/* "dev/door/<id>/<rest...>": id into its buffer; rest or NULL. */
static const char *door_topic(const char *topic, char *id)
{
	const char *a = strncmp(topic, "dev/door/", 9) == 0 ? topic + 9 : NULL;
	const char *b = a ? strchr(a, '/') : NULL;
	if (!b || (size_t)(b - a) > LINLI_ID_MAX)
		return NULL;
	memcpy(id, a, (size_t)(b - a));
	id[b - a] = '\0';
	return b + 1;
}

static int on_reading(linli_ctx *ctx, const struct linli_event *ev, void *ud)
{
	struct astate *st = ud;
	char id[LINLI_ID_MAX + 1];
	const char *res = door_topic(ev->topic, id);
	struct door *d = res ? door_of(st, ev->scope, id) : NULL;
	if (!d)
		return 0;
	st->readings++;
	int64_t now = api->time_now_ms(), v = 0;
	const char *s = NULL;
	if (strcmp(res, "passes_today") == 0 && api->rec_get_int(ev->payload, "value", &v) == 0) {
		for (int64_t n = d->have_passes ? v - d->passes_seen : 0; n > 0; n--) {
			if (d->n_passes == PASSES_MAX)
				drop_first(d->passes, &d->n_passes, 0);
			d->passes[d->n_passes++] = now;
		}
		d->passes_seen = v;
		d->have_passes = true;
		judge(ctx, st, d, now);
	} else if (strcmp(res, "state") == 0 &&
		   api->rec_get_str(ev->payload, "value", &s, NULL) == 0) {
		bool open = strcmp(s, "open") == 0;
		if (open && (!d->open || !d->known_state)) {
			d->open_since = d->opened_at = now;
			d->open_unjudged = st->cfg.forced_on_open;
		}
		if (!open && d->open && d->held_raised) {
			clear_door(ctx, T_HELD, d->scope, d->device, "the door closed");
			d->held_raised = false;
		}
		d->open = open;
		d->known_state = true;
		judge(ctx, st, d, now);
	}
	return 0;
}

static int on_event(linli_ctx *ctx, const struct linli_event *ev, void *ud)
{
	struct astate *st = ud;
	char id[LINLI_ID_MAX + 1];
	const char *rest = door_topic(ev->topic, id);
	if (!rest || strncmp(rest, "event/", 6) != 0)
		return 0;
	const char *name = rest + 6;
	struct door *d = door_of(st, ev->scope, id);
	if (!d)
		return 0;
	st->events++;
	int64_t now = api->time_now_ms();
	if (strcmp(name, "card_ok") == 0 || strcmp(name, "face_ok") == 0) {
		credential(ctx, st, d, now);
		check_watchlist(ctx, st, ev, id, name[0] == 'c' ? "card" : "face");
	} else if (strcmp(name, "card_denied") == 0 || strcmp(name, "face_denied") == 0) {
		denial(ctx, st, d, now);
		check_watchlist(ctx, st, ev, id, name[0] == 'c' ? "card" : "face");
	} else if (strcmp(name, "forced") == 0)
		raise_door(ctx, st, T_FORCED, ev->scope, id, "the door reports it was forced");
	else if (strcmp(name, "held_open") == 0) {
		d->held_raised = true;
		raise_door(ctx, st, T_HELD, ev->scope, id, "the door reports it is held open");
	} else if (strcmp(name, "watchlist_hit") == 0)
		check_watchlist(ctx, st, ev, id, "device");
	return 0;
}

/* Every second: doors open too long, passes left uncovered, a reload. */
static void sweep(linli_ctx *ctx, void *ud)
{
	struct astate *st = ud;
	int64_t now = api->time_now_ms();
	for (size_t i = 0; i < BUCKETS; i++)
		for (struct door *d = st->doors[i]; d; d = d->next) {
			if (d->n_passes || d->open_unjudged)
				judge(ctx, st, d, now);
			if (d->open && !d->held_raised && now - d->open_since >= st->cfg.held_ms) {
				char what[96];
				d->held_raised = true;
				snprintf(what, sizeof what, "open for %lld s (longer than %lld s)",
					 (long long)((now - d->open_since) / 1000),
					 (long long)(st->cfg.held_ms / 1000));
				raise_door(ctx, st, T_HELD, d->scope, d->device, what);
			}
		}
	plugcfg_reload(api, ctx, "access", &st->cfg_json, cfg_parse, st, &st->refused_reloads);
}

/* ---- door commands: lockdown and release ---- */

static void on_door_done(linli_ctx *ctx, uint64_t req, int rc, const linli_record *result,
			 const char *err, void *ud)
{
	(void)req;
	(void)result;
	struct pending *p = ud;
	struct door *d = state ? door_of(state, p->scope, p->device) : NULL;
	if (state)
		*(rc ? &state->cmds_failed : &state->cmds_ok) += 1;
	if (d)
		snprintf(d->command, sizeof d->command, "%s: %s", p->what,
			 rc ? (err && *err ? err : linli_strerror(rc)) : "done");
	if (rc)
		api->log(ctx, LINLI_LOG_WARN, "door %s at %s: %s failed: %s", p->device, p->scope,
			 p->what, err && *err ? err : linli_strerror(rc));
	pending_free(p);
}

/* Send one command to a door; 0 or why not. */
static int door_command(linli_ctx *ctx, struct astate *st, const char *scope, const char *device,
			const char *command, const char *mode)
{
	linli_record *args = NULL;
	struct pending *p = pending_new(st);
	if (!p)
		return LINLI_ENOMEM;
	snprintf(p->scope, sizeof p->scope, "%s", scope);
	snprintf(p->device, sizeof p->device, "%s", device);
	snprintf(p->what, sizeof p->what, "%s%s%s", command, mode ? " " : "", mode ? mode : "");
	if (mode && (args = api->rec_new()))
		api->rec_set_str(args, "mode", mode);
	int rc = mode && !args
		     ? LINLI_ENOMEM
		     : api->dev_command(ctx, device, command, args, 10000, on_door_done, p, NULL);
	api->rec_free(args);
	struct door *d = door_of(st, scope, device);
	if (rc) {
		st->cmds_failed++;
		if (d)
			snprintf(d->command, sizeof d->command, "%s: not sent (%s)", p->what,
				 linli_strerror(rc));
		pending_free(p);
		return rc;
	}
	st->cmds_sent++;
	if (d)
		snprintf(d->command, sizeof d->command, "%s: sent", p->what);
	return 0;
}

struct door_list {
	linli_record *arr; /* {id, scope, building, floor?, state?} per door */
	size_t n;
};

static int door_row(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	(void)ctx;
	struct door_list *l = ud;
	linli_record *m = NULL;
	const char *b = NULL, *s = NULL;
	int64_t floor = 0;
	if (l->n >= DOORS_MAX || api->arr_push_map(l->arr, &m))
		return 1;
	l->n++;
	api->rec_set_str(m, "id", row->id);
	api->rec_set_str(m, "scope", row->scope);
	if (api->rec_get_str(row->record, "building", &b, NULL) == 0)
		api->rec_set_str(m, "building", b);
	if (api->rec_get_int(row->record, "floor", &floor) == 0)
		api->rec_set_int(m, "floor", floor);
	if (api->rec_get_str(row->record, "state", &s, NULL) == 0)
		api->rec_set_str(m, "device_state", s);
	return 0;
}

/* The doors (devices of class door) at scope (NULL: the caller's), of building b (NULL: all). */
static int list_doors(linli_ctx *ctx, const char *scope, const char *b, struct door_list *l,
		      char *err, size_t errlen)
{
	struct linli_where w[2] = {{"building", b}, {"class", "door"}};
	char cursor[LINLI_CURSOR_MAX] = "";
	if (!(l->arr = api->rec_new_array()))
		return snprintf(err, errlen, "out of memory"), LINLI_ENOMEM;
	l->n = 0;
	do {
		struct linli_query q = {.size = sizeof q,
					.dataset = "devices",
					.scope = scope,
					.where = b ? w : w + 1,
					.n_where = b ? 2 : 1,
					.limit = 500,
					.cursor = cursor};
		int rc = api->store_scan(ctx, &q, door_row, l, cursor);
		if (rc < 0) {
			snprintf(err, errlen, "the doors cannot be read: %s",
				 api->store_last_error(ctx));
			api->rec_free(l->arr);
			l->arr = NULL;
			return rc;
		}
	} while (cursor[0] && l->n < DOORS_MAX);
	return 0;
}

static struct locked **find_locked(struct astate *st, const char *scope, const char *b)
{
	struct locked **pp = &st->locked;
	while (*pp && (strcmp((*pp)->scope, scope) || strcmp((*pp)->building, b)))
		pp = &(*pp)->next;
	return pp;
}

/*
 * Lock down (or release) building b at scope: set_mode always_locked and lock
 * (or set_mode normal) to each of its doors. The reply, when asked for, lists
 * what was sent and which doors failed. Acts as the caller while one is served.
 */
static int building_mode(linli_ctx *ctx, struct astate *st, const char *scope, const char *b,
			 bool down, const char *why, linli_record **reply, char *err, size_t errlen)
{
	struct door_list l;
	int rc = list_doors(ctx, scope, b, &l, err, errlen);
	if (rc)
		return rc;
	const char *at = scope ? scope : "your jurisdiction";
	if (l.n == 0) {
		api->rec_free(l.arr);
		return snprintf(err, errlen, "no door of building %s at %s", b, at), LINLI_ENOENT;
	}
	linli_record *r = reply ? api->rec_new() : NULL, *sent = NULL, *failed = NULL;
	if (r) {
		api->rec_set_str(r, "building", b);
		api->rec_set_str(r, "mode", down ? "always_locked" : "normal");
		api->rec_set_array(r, "sent", &sent);
		api->rec_set_array(r, "failed", &failed);
	}
	size_t ok = 0;
	for (size_t i = 0; i < l.n; i++) {
		linli_record *m = NULL;
		const char *id = NULL, *sc = NULL;
		api->arr_get_map(l.arr, i, &m);
		api->rec_get_str(m, "id", &id, NULL);
		api->rec_get_str(m, "scope", &sc, NULL);
		int c =
		    door_command(ctx, st, sc, id, "set_mode", down ? "always_locked" : "normal");
		if (!c && down)
			c = door_command(ctx, st, sc, id, "lock", NULL);
		linli_record *e = NULL;
		if (!c)
			ok++;
		if (r && api->arr_push_map(c ? failed : sent, &e) == 0) {
			api->rec_set_str(e, "door", id);
			api->rec_set_str(e, "scope", sc);
			if (c)
				api->rec_set_str(e, "error", linli_strerror(c));
			else
				api->rec_set_str(e, "commands",
						 down ? "set_mode always_locked, lock"
						      : "set_mode normal");
		}
		struct locked **pp = find_locked(st, sc, b);
		if (down && !*pp && (*pp = calloc(1, sizeof **pp))) {
			snprintf((*pp)->scope, sizeof(*pp)->scope, "%s", sc);
			snprintf((*pp)->building, sizeof(*pp)->building, "%s", b);
		} else if (!down && *pp) {
			struct locked *x = *pp;
			*pp = x->next;
			free(x);
		}
	}
	api->rec_free(l.arr);
	*(down ? &st->lockdowns : &st->releases) += 1;
	char detail[512], obj[BUILDING_MAX + 16];
	snprintf(obj, sizeof obj, "building %s", b);
	snprintf(detail, sizeof detail, "%s: %zu of %zu doors sent%s%.300s",
		 down ? "lockdown" : "release", ok, l.n, why && *why ? "; " : "", why ? why : "");
	api->audit(ctx, down ? "access.lockdown" : "access.release", scope, obj,
		   ok ? "allowed" : "failed", detail);
	api->log(ctx, LINLI_LOG_INFO, "building %s at %s %s: %s", b, at,
		 down ? "locked down" : "released", detail);
	if (r) {
		api->rec_set_int(r, "doors", (int64_t)l.n);
		if (why && *why)
			api->rec_set_str(r, "why", why);
		*reply = r;
	}
	return 0;
}

/* An alarm of type t at door `device`: lock its building down when lockdown_on says so. */
static void lockdown_by_alarm(linli_ctx *ctx, struct astate *st, int t, const char *scope,
			      const char *device)
{
	if (!(st->cfg.lockdown_on & (1u << t)))
		return;
	const char *b = building_of(ctx, st, scope, device);
	if (!b[0] || *find_locked(st, scope, b))
		return; /* no building to lock, or locked already */
	char why[128], err[256], building[BUILDING_MAX + 1];
	snprintf(building, sizeof building, "%s", b);
	snprintf(why, sizeof why, "alarm %s at door %s", type_names[t], device);
	if (building_mode(ctx, st, scope, building, true, why, NULL, err, sizeof err))
		api->log(ctx, LINLI_LOG_ERROR, "building %s at %s not locked down after %s: %s",
			 building, scope, why, err);
}

/* ---- the console ---- */

/* Options after the positional words: --scope PATH, --why TEXT, --building B. */
struct opts {
	const char *scope, *why, *building, *arg;
};

static int parse(const struct linli_cmd_req *req, bool want_arg, const char *usage, struct opts *o,
		 char *err, size_t errlen)
{
	memset(o, 0, sizeof *o);
	for (int i = 0; i < req->argc; i++) {
		const char *a = req->argv[i];
		const char **slot = strcmp(a, "--scope") == 0	   ? &o->scope
				    : strcmp(a, "--why") == 0	   ? &o->why
				    : strcmp(a, "--building") == 0 ? &o->building
								   : NULL;
		if (slot && i + 1 < req->argc && strstr(usage, a))
			*slot = req->argv[++i];
		else if (!slot && a[0] != '-' && want_arg && !o->arg)
			o->arg = a;
		else
			return snprintf(err, errlen, "unexpected '%.64s' (usage: %s)", a, usage),
			       LINLI_EINVAL;
	}
	if (want_arg && (!o->arg || !o->arg[0] || strlen(o->arg) > BUILDING_MAX))
		return snprintf(err, errlen, "give the building (at most %d bytes; usage: %s)",
				BUILDING_MAX, usage),
		       LINLI_EINVAL;
	if (o->why && strlen(o->why) > 256)
		return snprintf(err, errlen, "--why: longer than 256 bytes"), LINLI_EINVAL;
	return 0;
}

static int lock_cmd(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		    char *err, size_t errlen, bool down)
{
	struct astate *st = req->ud;
	struct opts o;
	const char *usage =
	    down ? "BUILDING [--scope PATH] [--why TEXT]" : "BUILDING [--scope PATH]";
	int rc = parse(req, true, usage, &o, err, errlen);
	if (!rc && o.scope)
		rc = api->caller_may(ctx, req->caller, down ? "access.lockdown" : "access.release",
				     o.scope, err, errlen);
	if (rc)
		return rc;
	return building_mode(ctx, st, o.scope, o.arg, down, o.why, reply, err, errlen);
}

static int cmd_lockdown(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
			char *err, size_t errlen)
{
	return lock_cmd(ctx, req, reply, err, errlen, true);
}

static int cmd_release(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		       char *err, size_t errlen)
{
	return lock_cmd(ctx, req, reply, err, errlen, false);
}

/* One active alarm of a door: its type into the array ud. */
static int alarm_row(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	(void)ctx;
	const char *t = NULL;
	if (api->rec_get_str(row->record, "type", &t, NULL) == 0)
		api->arr_push_str(ud, t);
	return 0;
}

static int cmd_doors(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		     char *err, size_t errlen)
{
	struct astate *st = req->ud;
	struct opts o;
	struct door_list l;
	int rc = parse(req, false, "[--scope PATH] [--building B]", &o, err, errlen);
	if (!rc && o.scope)
		rc = api->caller_may(ctx, req->caller, "access.doors", o.scope, err, errlen);
	if (!rc)
		rc = list_doors(ctx, o.scope, o.building, &l, err, errlen);
	if (rc)
		return rc;
	for (size_t i = 0; i < l.n; i++) {
		linli_record *m = NULL, *a = NULL;
		const char *id = NULL, *sc = NULL;
		api->arr_get_map(l.arr, i, &m);
		api->rec_get_str(m, "id", &id, NULL);
		api->rec_get_str(m, "scope", &sc, NULL);
		struct door *d = find_door(st, sc, id);
		api->rec_set_str(m, "state",
				 !d || !d->known_state ? "unknown"
				 : d->open	       ? "open"
						       : "closed");
		if (d && d->known_state && d->open)
			api->rec_set_time(m, "open_since", d->open_since);
		if (d && d->command[0])
			api->rec_set_str(m, "command", d->command);
		char src[LINLI_ID_MAX + 8];
		snprintf(src, sizeof src, "device:%s", id);
		struct linli_where w[2] = {{"source", src}, {"active", "true"}};
		struct linli_query q = {.size = sizeof q,
					.dataset = "alarms",
					.scope = sc,
					.where = w,
					.n_where = 2,
					.limit = 100};
		if (api->rec_set_array(m, "alarms", &a) == 0)
			api->store_scan(ctx, &q, alarm_row, a, NULL);
	}
	linli_record *r = api->rec_new();
	if (!r) {
		api->rec_free(l.arr);
		return snprintf(err, errlen, "out of memory"), LINLI_ENOMEM;
	}
	api->rec_set_int(r, "count", (int64_t)l.n);
	api->rec_set_record(r, "doors", l.arr);
	api->rec_free(l.arr);
	*reply = r;
	return 0;
}

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
	struct astate *st = req->ud;
	size_t doors = 0, open = 0;
	for (size_t i = 0; i < BUCKETS; i++)
		for (struct door *d = st->doors[i]; d; d = d->next) {
			doors++;
			open += d->known_state && d->open;
		}
	linli_record *r = api->rec_new(), *c = cfg_record(&st->cfg), *w = NULL, *cm = NULL,
		     *lk = NULL;
	if (!r || !c) {
		api->rec_free(r);
		api->rec_free(c);
		return snprintf(err, errlen, "out of memory"), LINLI_ENOMEM;
	}
	api->rec_set_int(r, "events", st->events);
	api->rec_set_int(r, "readings", st->readings);
	per_type(r, "raised", st->raised);
	per_type(r, "failed", st->failed);
	per_type(r, "cleared", st->cleared);
	if (api->rec_set_map(r, "watchlist", &w) == 0) {
		api->rec_set_int(w, "hits", st->hits);
		api->rec_set_int(w, "unmatched_door_hits", st->hits_unmatched);
		api->rec_set_int(w, "not_written", st->hits_failed);
	}
	if (api->rec_set_map(r, "commands", &cm) == 0) {
		api->rec_set_int(cm, "lockdowns", st->lockdowns);
		api->rec_set_int(cm, "releases", st->releases);
		api->rec_set_int(cm, "sent", st->cmds_sent);
		api->rec_set_int(cm, "done", st->cmds_ok);
		api->rec_set_int(cm, "failed", st->cmds_failed);
	}
	if (api->rec_set_array(r, "locked_down", &lk) == 0)
		for (struct locked *x = st->locked; x; x = x->next) {
			linli_record *m = NULL;
			if (api->arr_push_map(lk, &m) == 0) {
				api->rec_set_str(m, "scope", x->scope);
				api->rec_set_str(m, "building", x->building);
			}
		}
	api->rec_set_int(r, "doors_seen", (int64_t)doors);
	api->rec_set_int(r, "doors_open", (int64_t)open);
	api->rec_set_int(r, "refused_reloads", st->refused_reloads);
	api->rec_set_int(r, "device_reads", st->loc_reads);
	api->rec_set_record(r, "config", c);
	api->rec_free(c);
	*reply = r;
	return 0;
}

/* ---- init and fini ---- */

static void free_state(struct astate *st)
{
	for (size_t i = 0; i < BUCKETS; i++) {
		for (struct door *d = st->doors[i], *n; d; d = n) {
			n = d->next;
			free(d);
		}
		for (struct loc *l = st->locs[i], *n; l; l = n) {
			n = l->next;
			free(l);
		}
	}
	for (struct locked *x = st->locked, *n; x; x = n) {
		n = x->next;
		free(x);
	}
	while (st->pending)
		pending_free(st->pending);
	free(st->cfg_json);
	free(st);
}

static int access_init(linli_ctx *ctx, const struct linli_api *a)
{
	static const struct plugcmd_action actions[] = {
	    {"access.stats", "operator", NULL, NULL, "see access's counters and configuration"},
	    {"access.doors", "operator", NULL, NULL,
	     "see the doors: state, open since, active alarms"},
	    {"access.lockdown", "operator", NULL, NULL, "lock every door of a building"},
	    {"access.release", "operator", NULL, NULL, "return a building's doors to normal"},
	};
	static const struct plugcmd_cmd cmds[] = {
	    {"stats", "", "events seen, alarms raised per type, hits, commands, the configuration",
	     "access.stats", cmd_stats},
	    {"doors", "[--scope PATH] [--building B]",
	     "doors with their state, building, open since, active alarms, last command",
	     "access.doors", cmd_doors},
	    {"lockdown", "BUILDING [--scope PATH] [--why TEXT]",
	     "lock every door of a building (set_mode always_locked, lock)", "access.lockdown",
	     cmd_lockdown},
	    {"release", "BUILDING [--scope PATH]",
	     "return every door of a building to normal (set_mode normal)", "access.release",
	     cmd_release},
	};
	api = a;
	char err[512] = "";
	bool changed = false;
	struct astate *st = calloc(1, sizeof *st);
	int rc = st ? 0 : LINLI_ENOMEM;
	if (!rc)
		rc = plugcfg_load(&(const struct plugcfg){api, "access", err, sizeof err}, ctx,
				  &st->cfg_json, cfg_parse, st, &changed);
	if (!rc)
		rc = api->subscribe(ctx, "dev/door/+/event/#", on_event, st, NULL);
	if (!rc)
		rc = api->subscribe(ctx, "dev/door/+/state", on_reading, st, NULL);
	if (!rc)
		rc = api->subscribe(ctx, "dev/door/+/passes_today", on_reading, st, NULL);
	if (!rc)
		rc = api->store_watch(ctx, "devices", on_device_change, st, NULL);
	if (!rc)
		rc = plugcmd_register(api, ctx, actions, PLUGCMD_N(actions), cmds, PLUGCMD_N(cmds),
				      NULL, 0, st, err, sizeof err);
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
		 "watching doors: held open over %lld s, %lld denials within %lld s, passes "
		 "covered by a credential within %lld s",
		 (long long)(st->cfg.held_ms / 1000), (long long)st->cfg.denials,
		 (long long)(st->cfg.denials_window_ms / 1000),
		 (long long)(st->cfg.pass_window_ms / 1000));
	return 0;
}

static void access_fini(linli_ctx *ctx, const struct linli_api *a)
{
	(void)ctx;
	(void)a;
	if (state)
		free_state(state);
	state = NULL;
}

LINLI_PLUGIN(access_init, access_fini, .name = "access", .version = "1.0.0", .family = "safety",
	     .description = "Access control: forced doors, doors held open, tailgating, repeated "
			    "denials, watchlist hits (restricted); building lockdown through the "
			    "HAL. Raises through alarms",
	     .requires = {"alarms"},
	     .capabilities = {"store.read:devices", "sensitive:devices", "store.read:watchlist",
			      "store.read:watch_hits", "store.write:watch_hits",
			      "store.read:alarms", "device.command:door",
			      "bus.subscribe:dev/door/+/event/#", "bus.subscribe:dev/door/+/state",
			      "bus.subscribe:dev/door/+/passes_today", "bus.publish:alarmreq/raise",
			      "bus.publish:alarmreq/clear", "bus.publish:access/watch_hit"});
