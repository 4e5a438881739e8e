/*
 * watch.c — special-personnel watch (特殊人员管控, restricted): the watchlist as each caller
 * may see it, visit schedules (走访) with overdue reminders to the responsible grid worker,
 * and the hits that access control writes into watch_hits.
 *
 * Owns: the `watch` console commands, the watch_schedules and watch_visits records, a map
 * of each hit to its watchlist person (kept as the plugin from watch_hits, so that a
 * caller granted the watchlist learns who a hit was even when the hit's own link is
 * masked for it), the reminder tick and the plugins.watch configuration. Every command
 * reads and writes as its caller, so the kernel masks what the caller may not see and
 * audits every read under the caller's name (via plugin:watch); the plugin never unmasks
 * anything itself, it only hides more (identifying fields the catalog leaves in clear, and
 * everything of a hit but that it exists, from callers without sensitive:watchlist). Only
 * the tick, the alarm answers, the hit map and the config reload act as the plugin.
 *
 * Reminders: a schedule past its due date is reminded once per overdue period (every_days)
 * through alarmreq/raise (type watch_visit_overdue, source record:watch_schedules/PERSON,
 * at the person's scope, details naming the grid worker and never the person); the period
 * is written before the raise, so a restart repeats none. The supervising grid worker's
 * visit clears it through alarmreq/clear. Must never: put who a person is into an alarm or
 * a log line, or read as the plugin on behalf of a caller.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linli/linli.h>

#include "alarmreq.h"
#include "plugcfg.h"
#include "plugcmd.h"

static const struct linli_api *api;

#define DAY_MS	(86400 * (int64_t)1000)
#define TICK_MS 60000

/* plugins = { watch = { every_days = 30; severity = "minor"; }; }; */
struct wcfg {
	int64_t every_days; /* a schedule's rhythm when `watch schedule` gives none */
	int severity;	    /* of the overdue reminder's alarm: an index of plugcfg_sev_names */
};
static const struct wcfg cfg_defaults = {30, 2};

/* The plugin's actions: least role, deepest level, duty, summary. */
static const struct plugcmd_action actions[] = {
    {"watch.read", "viewer", NULL, NULL, "list and show watchlist people, visits due, hits"},
    {"watch.visit", "grid_worker", NULL, NULL, "record a visit (走访) to a person one supervises"},
    {"watch.schedule", "operator", NULL, NULL, "set how often a person is visited"},
    {"watch.stats", "operator", NULL, NULL, "see the plugin's counters and configuration"},
};

/* A hit of watch_hits and the watchlist person it names, as the plugin read it. */
struct hit {
	char scope[LINLI_SCOPE_MAX + 1];
	char id[LINLI_ID_MAX + 1];
	char person[LINLI_ID_MAX + 1];
};

struct watch {
	struct hit *hits; /* sorted by (id, scope) */
	size_t n_hits, cap_hits;
	struct alarmreq_flights fly; /* reminders asked, not answered yet: tags due, period */
	struct wcfg cfg;
	char *cfg_json; /* the plugins.watch group last seen (applied or refused) */
	int64_t reminders, failed, cleared, refused_reloads;
};

static struct watch *W;

/* ---- configuration ---- */

/* The plugins.watch group c into the state ud's cfg when good, or LINLI_ECONFIG naming the key. */
static int cfg_parse(const struct plugcfg *p, linli_record *c, void *ud)
{
	static const char *const keys[] = {"every_days", "severity"};
	struct wcfg f = cfg_defaults;
	int rc = plugcfg_keys(p, c, keys, sizeof keys / sizeof keys[0]);
	if (!rc)
		rc = plugcfg_int(p, c, "every_days", 1, 366, 1, "whole days", &f.every_days);
	if (!rc && api->rec_has(c, "severity")) {
		const char *v = NULL;
		api->rec_get_str(c, "severity", &v, NULL);
		if ((f.severity = plugcfg_sev(v)) < 0)
			rc = plugcfg_err(p, "severity", "must be one of %s", PLUGCFG_SEV_LIST);
	}
	if (!rc)
		((struct watch *)ud)->cfg = f;
	return rc;
}

/* Every second: a reload (SIGHUP) of plugins.watch. */
static void cfg_tick(linli_ctx *ctx, void *ud)
{
	(void)ud;
	plugcfg_reload(api, ctx, "watch", &W->cfg_json, cfg_parse, W, &W->refused_reloads);
}

/* ---- small helpers ---- */

static const char *str_or(const linli_record *r, const char *key, const char *dflt)
{
	const char *s;
	return r && api->rec_get_str(r, key, &s, NULL) == 0 ? s : dflt;
}

static int64_t int_or(const linli_record *r, const char *key, int64_t dflt)
{
	int64_t v;
	return r && api->rec_get_int(r, key, &v) == 0 ? v : dflt;
}

static int64_t time_or(const linli_record *r, const char *key, int64_t dflt)
{
	int64_t v;
	return r && api->rec_get_time(r, key, &v) == 0 ? v : dflt;
}

/* Copy field `key` of `from` into `to` when it is there (strings, integers, times). */
static void copy_field(linli_record *to, const linli_record *from, const char *key)
{
	const char *s;
	int64_t i;
	double f;
	bool b;
	if (api->rec_get_str(from, key, &s, NULL) == 0)
		api->rec_set_str(to, key, s);
	else if (api->rec_get_int(from, key, &i) == 0)
		api->rec_set_int(to, key, i);
	else if (api->rec_get_float(from, key, &f) == 0)
		api->rec_set_float(to, key, f);
	else if (api->rec_get_bool(from, key, &b) == 0)
		api->rec_set_bool(to, key, b);
}

static void join_args(const struct linli_cmd_req *req, int from, char *buf, size_t len)
{
	size_t o = 0;
	buf[0] = '\0';
	for (int i = from; i < req->argc && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s%s", i > from ? " " : "", req->argv[i]);
}

/* Does the caller hold the grant to read `dataset` in clear (sensitive[:dataset])? */
static int granted(const struct linli_caller *c, const char *dataset)
{
	if (!c || !c->grants)
		return c == NULL; /* no caller: the plugin itself */
	char want[96];
	snprintf(want, sizeof want, "sensitive:%s", dataset);
	for (const char *const *g = c->grants; *g; g++)
		if (!strcmp(*g, "sensitive") || !strcmp(*g, want))
			return 1;
	return 0;
}

/*
 * A local date or time in the node's zone (YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS]) or ms since
 * 1970. 0, or LINLI_EINVAL with the reason in err.
 */
static int parse_time(linli_ctx *ctx, const char *what, const char *s, int64_t *out, char *err,
		      size_t errlen)
{
	char *end;
	long long ms = strtoll(s, &end, 10);
	if (*s >= '0' && *s <= '9' && !*end && strlen(s) > 8) {
		*out = ms;
		return 0;
	}
	struct linli_tm t = {.size = sizeof t};
	int n = 0, len = (int)strlen(s);
	if (sscanf(s, "%4d-%2d-%2d%n", &t.year, &t.month, &t.day, &n) == 3 && n == 10 &&
	    (len == 10 || (sscanf(s + 10, "T%2d:%2d%n", &t.hour, &t.minute, &n) == 2 && n == 6 &&
			   (len == 16 || (sscanf(s + 16, ":%2d%n", &t.second, &n) == 1 && n == 3 &&
					  len == 19)))) &&
	    api->time_from_local(ctx, &t, out) == 0)
		return 0;
	snprintf(err, errlen,
		 "%s: '%.64s' is not a date or time (YYYY-MM-DD or YYYY-MM-DDTHH:MM, local time in "
		 "%s, or ms since 1970)",
		 what, s, api->time_zone(ctx));
	return LINLI_EINVAL;
}

static void local_day(linli_ctx *ctx, int64_t ms, char *buf, size_t len)
{
	struct linli_tm t = {.size = sizeof t};
	if (api->time_local(ctx, ms, &t))
		snprintf(buf, len, "%lld", (long long)ms);
	else
		snprintf(buf, len, "%04d-%02d-%02d", t.year, t.month, t.day);
}

/* ---- who supervises whom: a grid worker sees the people they supervise ---- */

/* The grid_workers records naming the caller as their account, within the caller's reach. */
struct workers {
	int n;
	struct {
		char scope[LINLI_SCOPE_MAX + 1], id[LINLI_ID_MAX + 1];
	} v[16];
};

static int worker_row(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	(void)ctx;
	struct workers *w = ud;
	if (strcmp(str_or(row->record, "status", "active"), "active") ||
	    w->n == (int)(sizeof w->v / sizeof *w->v))
		return 0;
	snprintf(w->v[w->n].scope, sizeof w->v[w->n].scope, "%s", row->scope);
	snprintf(w->v[w->n].id, sizeof w->v[w->n].id, "%s", row->id);
	w->n++;
	return 0;
}

/*
 * Is the caller a grid worker (named as `account` by active grid_workers records)? Then
 * w holds those records and only the people they supervise are theirs. Admins never are.
 */
static void workers_of(linli_ctx *ctx, const struct linli_caller *who, struct workers *w)
{
	w->n = 0;
	if (!who || !who->name || !who->name[0] || !strcmp(who->role, "admin"))
		return;
	struct linli_where wh = {"account", who->name};
	struct linli_query q = {
	    .size = sizeof q, .dataset = "grid_workers", .where = &wh, .n_where = 1, .limit = 100};
	if (api->store_scan(ctx, &q, worker_row, w, NULL) < 0)
		w->n = 0; /* out of the caller's reach: the kernel's checks decide */
}

/* Does `scope` lie at `root` or below it? */
static int within(const char *scope, const char *root)
{
	size_t n = strlen(root);
	return !strncmp(scope, root, n) && (scope[n] == '\0' || scope[n] == '/');
}

/*
 * Is the person at `scope` with `supervisor` (a grid_workers id) one of the worker records w
 * names? A worker record lives at its community; the person there or in one of its grids.
 */
static int names_supervisor(const struct workers *w, const char *scope, const char *supervisor)
{
	for (int i = 0; supervisor && i < w->n; i++)
		if (!strcmp(w->v[i].id, supervisor) && within(scope, w->v[i].scope))
			return 1;
	return 0;
}

/* May a caller with workers w see a person at `scope` supervised by `supervisor`? */
static int supervises(const struct workers *w, const char *scope, const char *supervisor)
{
	return !w->n || names_supervisor(w, scope, supervisor);
}

/*
 * The watchlist person `id` as the caller sees it (masked by the kernel as it may see it,
 * the read audited under it), with the scope it lives at. A person the caller may not
 * see — outside its reach, or not supervised by it when it is a grid worker — is
 * "no watchlist person 'X' within reach", the same answer as for one that does not exist.
 * With `w` the grid worker filter is left to the caller: w gets the caller's worker records.
 */
static int load_person(linli_ctx *ctx, const struct linli_caller *who, const char *id,
		       linli_record **rec, char *scope, struct workers *w, char *err, size_t errlen)
{
	*rec = NULL;
	int rc = api->store_get(ctx, "watchlist", NULL, id, rec, scope);
	if (rc == 0) {
		struct workers mine;
		workers_of(ctx, who, w ? w : &mine);
		if (w || supervises(&mine, scope, str_or(*rec, "supervisor", NULL)))
			return 0;
		api->rec_free(*rec);
		*rec = NULL;
		rc = LINLI_ENOENT;
	}
	if (rc == LINLI_ENOENT || rc == LINLI_EPERM) {
		snprintf(err, errlen, "no watchlist person '%.48s' within reach", id);
		return LINLI_ENOENT;
	}
	snprintf(err, errlen, "%s", api->store_last_error(ctx));
	return rc;
}

/* ---- the hit map: which person each hit names, as the plugin reads it ---- */

static int hit_cmp(const char *id, const char *scope, const struct hit *h)
{
	int c = strcmp(id, h->id);
	return c ? c : strcmp(scope, h->scope);
}

/* The index of (id, scope) in the map, or where it goes (*found 0). */
static size_t hit_at(const char *id, const char *scope, int *found)
{
	size_t lo = 0, hi = W->n_hits;
	*found = 0;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = hit_cmp(id, scope, &W->hits[mid]);
		if (!c) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

static void hit_set(const char *scope, const char *id, const char *person)
{
	int found;
	size_t i = hit_at(id, scope, &found);
	if (!found) {
		if (W->n_hits == W->cap_hits) {
			size_t cap = W->cap_hits ? W->cap_hits * 2 : 64;
			struct hit *v = realloc(W->hits, cap * sizeof *v);
			if (!v)
				return;
			W->hits = v, W->cap_hits = cap;
		}
		memmove(&W->hits[i + 1], &W->hits[i], (W->n_hits - i) * sizeof *W->hits);
		W->n_hits++;
		snprintf(W->hits[i].scope, sizeof W->hits[i].scope, "%s", scope);
		snprintf(W->hits[i].id, sizeof W->hits[i].id, "%s", id);
	}
	snprintf(W->hits[i].person, sizeof W->hits[i].person, "%s", person);
}

static void hit_drop(const char *scope, const char *id)
{
	int found;
	size_t i = hit_at(id, scope, &found);
	if (!found)
		return;
	memmove(&W->hits[i], &W->hits[i + 1], (W->n_hits - i - 1) * sizeof *W->hits);
	W->n_hits--;
}

static const char *hit_person(const char *scope, const char *id)
{
	int found;
	size_t i = hit_at(id, scope, &found);
	return found ? W->hits[i].person : NULL;
}

static int hitmap_row(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	(void)ctx, (void)ud;
	const char *p = str_or(row->record, "person", NULL);
	if (p)
		hit_set(row->scope, row->id, p);
	return 0;
}

static void on_hit_change(linli_ctx *ctx, const struct linli_change *ch, void *ud)
{
	(void)ud;
	linli_record *r = NULL;
	if (!strcmp(ch->kind, "deleted") ||
	    api->store_get(ctx, "watch_hits", ch->scope, ch->id, &r, NULL) != 0)
		hit_drop(ch->scope, ch->id);
	else
		hitmap_row(ctx, &(struct linli_row){sizeof(struct linli_row), ch->id, ch->scope, r},
			   NULL);
	api->rec_free(r);
}

static int hitmap_load(linli_ctx *ctx)
{
	struct linli_query q = {.size = sizeof q, .dataset = "watch_hits", .limit = 1000};
	char cursor[LINLI_CURSOR_MAX] = "";
	do {
		q.cursor = cursor;
		int rc = api->store_scan(ctx, &q, hitmap_row, NULL, cursor);
		if (rc < 0)
			return rc;
	} while (cursor[0]);
	return 0;
}

/* ---- list and show ---- */

/*
 * Fields of a watchlist record that point at the person although the catalog does not mark
 * them sensitive (the access plugin matches on face_id and card_no without the grant): the
 * plugin shows them as "***" to callers without sensitive:watchlist, as the kernel shows a
 * masked value that is not a string. It only ever hides more than the kernel; never less.
 */
static const char *const identifying[] = {"face_id", "card_no", "house", "notes"};

static void hide_identifying(linli_record *r)
{
	for (size_t i = 0; i < sizeof identifying / sizeof *identifying; i++)
		if (api->rec_has(r, identifying[i]))
			api->rec_set_str(r, identifying[i], "***");
}

struct listing {
	linli_record *rows;
	struct workers w;
	int clear; /* the caller holds sensitive:watchlist */
};

static const char *const person_fields[] = {"name",	  "category",	 "risk_level",
					    "supervisor", "valid_until", "house"};

static int list_row(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	(void)ctx;
	struct listing *l = ud;
	if (!supervises(&l->w, row->scope, str_or(row->record, "supervisor", NULL)))
		return 0;
	linli_record *m;
	if (api->arr_push_map(l->rows, &m))
		return LINLI_ENOMEM;
	api->rec_set_str(m, "id", row->id);
	api->rec_set_str(m, "scope", row->scope);
	for (size_t i = 0; i < sizeof person_fields / sizeof *person_fields; i++)
		copy_field(m, row->record, person_fields[i]);
	if (!l->clear)
		hide_identifying(m);
	return 0;
}

static int cmd_list(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		    char *err, size_t errlen)
{
	struct linli_where where[2];
	struct linli_query q = {
	    .size = sizeof q, .dataset = "watchlist", .where = where, .limit = 1000};
	for (int i = 0; i < req->argc; i++) {
		const char *a = req->argv[i];
		if (!strncmp(a, "category=", 9) && q.n_where < 2)
			where[q.n_where++] = (struct linli_where){"category", a + 9};
		else if (!strncmp(a, "risk=", 5) && q.n_where < 2)
			where[q.n_where++] = (struct linli_where){"risk_level", a + 5};
		else if (!strncmp(a, "scope=", 6))
			q.scope = a + 6;
		else {
			snprintf(
			    err, errlen,
			    "usage: watch list [category=C] [risk=low|medium|high] [scope=PATH] "
			    "('%.64s': unknown filter)",
			    a);
			return LINLI_EINVAL;
		}
	}
	struct listing l = {.rows = api->rec_new_array(),
			    .clear = granted(req->caller, "watchlist")};
	if (!l.rows)
		return LINLI_ENOMEM;
	workers_of(ctx, req->caller, &l.w);
	char cursor[LINLI_CURSOR_MAX] = "";
	do {
		q.cursor = cursor;
		int rc = api->store_scan(ctx, &q, list_row, &l, cursor);
		if (rc < 0) {
			snprintf(err, errlen, "%s", api->store_last_error(ctx));
			api->rec_free(l.rows);
			return rc;
		}
	} while (cursor[0]);
	*reply = l.rows;
	return 0;
}

static int visit_row(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	(void)ctx;
	linli_record *m;
	if (api->arr_push_map(ud, &m))
		return LINLI_ENOMEM;
	api->rec_set_str(m, "id", row->id);
	api->rec_set_time(m, "at", time_or(row->record, "at", 0));
	static const char *const keys[] = {"by", "notes"};
	for (size_t i = 0; i < 2; i++)
		copy_field(m, row->record, keys[i]);
	int64_t due = time_or(row->record, "due", -1);
	if (due >= 0)
		api->rec_set_time(m, "due", due);
	return 0;
}

/* The schedule of person `id` at `scope` as a map for a reply (NULL: none). */
static linli_record *schedule_reply(linli_ctx *ctx, const char *scope, const char *id)
{
	linli_record *s = NULL;
	if (api->store_get(ctx, "watch_schedules", scope, id, &s, NULL))
		return NULL;
	int64_t due = time_or(s, "due", 0);
	api->rec_set_bool(s, "overdue", due < api->time_now_ms());
	return s;
}

static int cmd_show(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		    char *err, size_t errlen)
{
	if (req->argc != 1) {
		snprintf(err, errlen, "usage: watch show PERSON");
		return LINLI_EINVAL;
	}
	char scope[LINLI_SCOPE_MAX + 1];
	linli_record *p;
	int rc = load_person(ctx, req->caller, req->argv[0], &p, scope, NULL, err, errlen);
	if (rc)
		return rc;
	if (!granted(req->caller, "watchlist"))
		hide_identifying(p);
	api->rec_set_str(p, "id", req->argv[0]);
	api->rec_set_str(p, "scope", scope);
	linli_record *s = schedule_reply(ctx, scope, req->argv[0]);
	if (s) {
		api->rec_set_record(p, "schedule", s);
		api->rec_free(s);
	}
	linli_record *visits;
	api->rec_set_array(p, "visits", &visits);
	struct linli_where w = {"person", req->argv[0]};
	struct linli_query q = {.size = sizeof q,
				.dataset = "watch_visits",
				.scope = scope,
				.where = &w,
				.n_where = 1,
				.limit = 1000};
	if (api->store_scan(ctx, &q, visit_row, visits, NULL) < 0) {
		snprintf(err, errlen, "%s", api->store_last_error(ctx));
		api->rec_free(p);
		return LINLI_EIO;
	}
	*reply = p;
	return 0;
}

/* ---- schedules and visits ---- */

struct sched_set {
	const char *person, *supervisor;
	int64_t every_days, due;
};

static int sched_step(linli_ctx *ctx, const char *id, linli_record **rec, void *ud, char *err,
		      size_t errlen)
{
	(void)ctx, (void)id, (void)err, (void)errlen;
	struct sched_set *s = ud;
	linli_record *r = api->rec_new();
	if (!r)
		return LINLI_ENOMEM;
	api->rec_set_str(r, "person", s->person);
	if (s->supervisor)
		api->rec_set_str(r, "supervisor", s->supervisor);
	api->rec_set_int(r, "every_days", s->every_days);
	api->rec_set_time(r, "due", s->due);
	if (*rec) { /* a new rhythm keeps the visits made; an alarm stays until a visit */
		static const char *const keep[] = {"last_visit", "visits", "alarm"};
		for (size_t i = 0; i < 3; i++) {
			int64_t v;
			const char *a;
			if (api->rec_get_int(*rec, keep[i], &v) == 0)
				api->rec_set_int(r, keep[i], v);
			else if (api->rec_get_str(*rec, keep[i], &a, NULL) == 0)
				api->rec_set_str(r, keep[i], a);
		}
	}
	*rec = r;
	return 0;
}

static int parse_days(const char *s, int64_t *days, char *err, size_t errlen)
{
	char *end;
	long n = strtol(s, &end, 10);
	if (end != s && (!*end || (end[0] == 'd' && !end[1])) && n >= 1 && n <= 366) {
		*days = n;
		return 0;
	}
	snprintf(err, errlen, "interval '%.32s': give whole days, 1d to 366d (e.g. 30d)", s);
	return LINLI_EINVAL;
}

static int cmd_schedule(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
			char *err, size_t errlen)
{
	if (req->argc < 1 || req->argc > 3) {
		snprintf(err, errlen, "usage: watch schedule PERSON [EVERY [FIRST-DUE]]");
		return LINLI_EINVAL;
	}
	struct sched_set s = {.person = req->argv[0], .every_days = W->cfg.every_days};
	int rc = req->argc > 1 ? parse_days(req->argv[1], &s.every_days, err, errlen) : 0;
	int64_t now = api->time_now_ms();
	s.due = now + s.every_days * DAY_MS;
	if (!rc && req->argc == 3)
		rc = parse_time(ctx, "first due", req->argv[2], &s.due, err, errlen);
	if (rc)
		return rc;
	char scope[LINLI_SCOPE_MAX + 1];
	linli_record *p;
	if ((rc = load_person(ctx, req->caller, s.person, &p, scope, NULL, err, errlen)))
		return rc;
	if ((rc = api->caller_may(ctx, req->caller, "watch.schedule", scope, err, errlen))) {
		api->rec_free(p);
		return rc;
	}
	char sup[LINLI_ID_MAX + 1] = "";
	snprintf(sup, sizeof sup, "%s", str_or(p, "supervisor", ""));
	api->rec_free(p);
	s.supervisor = sup[0] ? sup : NULL;
	if ((rc = api->store_update(ctx, "watch_schedules", scope, s.person, sched_step, &s))) {
		snprintf(err, errlen, "%s", api->store_last_error(ctx));
		return rc;
	}
	*reply = schedule_reply(ctx, scope, s.person);
	return 0;
}

struct visit_set {
	int64_t now;
	const char *supervisor;
	int had;      /* a schedule exists */
	int64_t due;  /* its due date before the visit */
	int reminded; /* a reminder was sent for it (answered or not) */
};

static int visit_step(linli_ctx *ctx, const char *id, linli_record **rec, void *ud, char *err,
		      size_t errlen)
{
	(void)ctx, (void)id, (void)err, (void)errlen;
	struct visit_set *v = ud;
	if (!*rec)
		return LINLI_STORE_KEEP; /* no schedule: the visit is only recorded */
	v->had = 1;
	v->due = time_or(*rec, "due", 0);
	v->reminded = int_or(*rec, "reminded_periods", 0) > 0 || api->rec_has(*rec, "alarm");
	int64_t every = int_or(*rec, "every_days", 30);
	api->rec_set_time(*rec, "last_visit", v->now);
	api->rec_set_int(*rec, "visits", int_or(*rec, "visits", 0) + 1);
	api->rec_set_time(*rec, "due", v->now + every * DAY_MS);
	if (v->supervisor)
		api->rec_set_str(*rec, "supervisor", v->supervisor);
	api->rec_remove(*rec, "reminded_for");
	api->rec_remove(*rec, "reminded_periods");
	api->rec_remove(*rec, "alarm_periods");
	api->rec_remove(*rec, "alarm");
	return 0;
}

static void on_cleared(linli_ctx *ctx, uint64_t rid, int status, const linli_record *rec,
		       const char *err, void *ud)
{
	(void)rid, (void)rec, (void)ud;
	if (status < 0 && status != LINLI_ENOENT) /* ENOENT: cleared by hand already */
		api->log(ctx, LINLI_LOG_WARN, "a visit's reminder alarm is not cleared: %s",
			 err && err[0] ? err : linli_strerror(status));
}

static int cmd_visit(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		     char *err, size_t errlen)
{
	if (req->argc < 1) {
		snprintf(err, errlen, "usage: watch visit PERSON [NOTES...]");
		return LINLI_EINVAL;
	}
	const char *id = req->argv[0];
	char scope[LINLI_SCOPE_MAX + 1], notes[2048];
	linli_record *p;
	struct workers w;
	int rc = load_person(ctx, req->caller, id, &p, scope, &w, err, errlen);
	if (rc)
		return rc;
	if ((rc = api->caller_may(ctx, req->caller, "watch.visit", scope, err, errlen))) {
		api->rec_free(p);
		return rc;
	}
	char sup[LINLI_ID_MAX + 1];
	snprintf(sup, sizeof sup, "%s", str_or(p, "supervisor", ""));
	api->rec_free(p);
	/* Only the grid worker who supervises the person records a visit (走访). */
	const char *me = req->caller && req->caller->name ? req->caller->name : "?";
	if (!names_supervisor(&w, scope, sup[0] ? sup : NULL)) {
		if (!w.n)
			snprintf(err, errlen,
				 "'%.64s' is not a grid worker here (no active grid_workers record "
				 "names the account): only the grid worker who supervises '%.48s' "
				 "records a visit",
				 me, id);
		else
			snprintf(err, errlen,
				 "grid worker '%.64s' does not supervise '%.48s': only its "
				 "supervising grid worker records a visit",
				 me, id);
		api->audit(ctx, "watch.visit", scope, id, "denied", "not the person's grid worker");
		return LINLI_EPERM;
	}
	struct visit_set v = {.now = api->time_now_ms(), .supervisor = sup[0] ? sup : NULL};
	if ((rc = api->store_update(ctx, "watch_schedules", scope, id, visit_step, &v))) {
		snprintf(err, errlen, "%s", api->store_last_error(ctx));
		return rc;
	}
	join_args(req, 1, notes, sizeof notes);
	linli_record *r = api->rec_new();
	if (!r)
		return LINLI_ENOMEM;
	api->rec_set_str(r, "person", id);
	api->rec_set_time(r, "at", v.now);
	api->rec_set_str(r, "by", req->caller && req->caller->name ? req->caller->name : "kernel");
	if (v.had)
		api->rec_set_time(r, "due", v.due);
	if (notes[0])
		api->rec_set_str(r, "notes", notes);
	char vid[LINLI_ID_MAX + 1];
	if ((rc = api->store_put(ctx, "watch_visits", scope, NULL, r, vid, NULL))) {
		snprintf(err, errlen, "%s", api->store_last_error(ctx));
		api->rec_free(r);
		return rc;
	}
	if (v.reminded) { /* the reminder is answered: clear its alarm */
		char src[LINLI_ID_MAX + 40], why[128];
		snprintf(src, sizeof src, "record:watch_schedules/%s", id);
		snprintf(why, sizeof why, "visited by %s", str_or(r, "by", "kernel"));
		linli_record *c = api->rec_new();
		api->rec_set_str(c, "type", "watch_visit_overdue");
		api->rec_set_str(c, "source", src);
		api->rec_set_str(c, "why", why);
		int crc = api->request(ctx, "alarmreq/clear", scope, c, 0, on_cleared, NULL, NULL);
		if (crc)
			api->log(ctx, LINLI_LOG_WARN,
				 "the visit reminder of %s is not cleared: "
				 "alarmreq/clear: %s",
				 id, linli_strerror(crc));
		else
			W->cleared++;
		api->rec_free(c);
	}
	api->rec_set_str(r, "id", vid);
	api->rec_set_str(r, "scope", scope);
	api->rec_remove(r, "notes");
	linli_record *s = v.had ? schedule_reply(ctx, scope, id) : NULL;
	if (s) {
		api->rec_set_time(r, "next_due", time_or(s, "due", 0));
		api->rec_free(s);
	}
	*reply = r;
	return 0;
}

/* ---- due: overdue and due soon ---- */

struct due_list {
	linli_record *rows;
	struct workers w;
	int64_t now;
};

static int due_row(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	struct due_list *l = ud;
	if (!supervises(&l->w, row->scope, str_or(row->record, "supervisor", NULL)))
		return 0;
	linli_record *m;
	if (api->arr_push_map(l->rows, &m))
		return LINLI_ENOMEM;
	int64_t due = time_or(row->record, "due", 0);
	api->rec_set_str(m, "person", row->id);
	api->rec_set_str(m, "scope", row->scope);
	api->rec_set_time(m, "due", due);
	api->rec_set_bool(m, "overdue", due < l->now);
	if (due < l->now)
		api->rec_set_int(m, "days_overdue", (l->now - due) / DAY_MS);
	static const char *const keys[] = {"supervisor", "every_days", "visits", "alarm"};
	for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
		copy_field(m, row->record, keys[i]);
	int64_t last = time_or(row->record, "last_visit", -1);
	if (last >= 0)
		api->rec_set_time(m, "last_visit", last);
	/* Whom to visit: the watchlist's name, as the caller may see it (masked or not). */
	linli_record *p = NULL;
	if (api->store_get(ctx, "watchlist", row->scope, row->id, &p, NULL) == 0)
		copy_field(m, p, "name");
	api->rec_free(p);
	return 0;
}

static int cmd_due(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply, char *err,
		   size_t errlen)
{
	int64_t days = 7;
	const char *scope = NULL;
	for (int i = 0; i < req->argc; i++) {
		const char *a = req->argv[i];
		if (!strncmp(a, "scope=", 6))
			scope = a + 6;
		else if (!strncmp(a, "within=", 7)) {
			char *end;
			days = strtol(a + 7, &end, 10);
			if (end == a + 7 || (*end && strcmp(end, "d")) || days < 0 || days > 366) {
				snprintf(err, errlen,
					 "within '%.32s': give whole days, 0d to 366d (e.g. 7d)",
					 a + 7);
				return LINLI_EINVAL;
			}
		} else {
			snprintf(err, errlen,
				 "usage: watch due [within=DAYS] [scope=PATH] ('%.64s': unknown "
				 "argument)",
				 a);
			return LINLI_EINVAL;
		}
	}
	struct due_list l = {.rows = api->rec_new_array(), .now = api->time_now_ms()};
	if (!l.rows)
		return LINLI_ENOMEM;
	workers_of(ctx, req->caller, &l.w);
	char until[32];
	snprintf(until, sizeof until, "%lld", (long long)(l.now + days * DAY_MS));
	struct linli_range r = {"due", "<=", until};
	struct linli_query q = {.size = sizeof q,
				.dataset = "watch_schedules",
				.scope = scope,
				.range = &r,
				.n_range = 1,
				.limit = 1000};
	char cursor[LINLI_CURSOR_MAX] = "";
	do {
		q.cursor = cursor;
		int rc = api->store_scan(ctx, &q, due_row, &l, cursor);
		if (rc < 0) {
			snprintf(err, errlen, "%s", api->store_last_error(ctx));
			api->rec_free(l.rows);
			return rc;
		}
	} while (cursor[0]);
	/* watch_schedules holds no sensitive field, so the kernel files no read of it: */
	char detail[64];
	snprintf(detail, sizeof detail, "%zu due within %lld days", api->rec_count(l.rows),
		 (long long)days);
	api->audit(ctx, "watch.due", scope, "watch_schedules", "allowed", detail);
	*reply = l.rows;
	return 0;
}

/* ---- hits ---- */

struct hit_list {
	linli_record *rows;
	int who_visible; /* the caller may learn who a hit was */
};

static int hit_row(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	struct hit_list *l = ud;
	linli_record *m;
	if (api->arr_push_map(l->rows, &m))
		return LINLI_ENOMEM;
	/* What everyone within reach sees: that a restricted hit happened (and its alarm). */
	api->rec_set_str(m, "id", row->id);
	api->rec_set_str(m, "scope", row->scope);
	api->rec_set_time(m, "at", time_or(row->record, "at", 0));
	copy_field(m, row->record, "alarm");
	api->rec_set_bool(m, "restricted", true);
	if (!l->who_visible)
		return 0;
	/* Where, how and who, for callers granted the watchlist: read as the caller. */
	static const char *const how[] = {"device", "building", "kind",
					  "score",  "matched",	"seen_by"};
	for (size_t i = 0; i < sizeof how / sizeof *how; i++)
		copy_field(m, row->record, how[i]);
	const char *person = hit_person(row->scope, row->id);
	if (!person)
		return 0;
	linli_record *p = NULL;
	char pscope[LINLI_SCOPE_MAX + 1];
	int rc = api->store_get(ctx, "watchlist", row->scope, person, &p, pscope);
	if (rc == LINLI_ENOENT)
		rc = api->store_get(ctx, "watchlist", NULL, person, &p, pscope);
	api->rec_set_str(m, "person", person);
	if (rc == 0) {
		static const char *const who[] = {"name", "category", "risk_level", "supervisor"};
		for (size_t i = 0; i < 4; i++)
			copy_field(m, p, who[i]);
	}
	api->rec_free(p);
	return 0;
}

static int cmd_hits(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		    char *err, size_t errlen)
{
	const char *scope = NULL;
	int64_t since = -1;
	for (int i = 0; i < req->argc; i++) {
		const char *a = req->argv[i];
		int rc;
		if (!strcmp(a, "--since") && i + 1 < req->argc) {
			if ((rc = parse_time(ctx, "--since", req->argv[++i], &since, err, errlen)))
				return rc;
		} else if (!strncmp(a, "scope=", 6))
			scope = a + 6;
		else {
			snprintf(err, errlen,
				 "usage: watch hits [--since TIME] [scope=PATH] ('%.64s': unknown "
				 "argument)",
				 a);
			return LINLI_EINVAL;
		}
	}
	struct hit_list l = {.rows = api->rec_new_array(),
			     .who_visible = granted(req->caller, "watchlist")};
	if (!l.rows)
		return LINLI_ENOMEM;
	char from[32];
	snprintf(from, sizeof from, "%lld", (long long)(since < 0 ? 0 : since));
	struct linli_range r = {"at", ">=", from};
	struct linli_query q = {.size = sizeof q,
				.dataset = "watch_hits",
				.scope = scope,
				.range = &r,
				.n_range = 1,
				.limit = 1000};
	char cursor[LINLI_CURSOR_MAX] = "";
	do {
		q.cursor = cursor;
		int rc = api->store_scan(ctx, &q, hit_row, &l, cursor);
		if (rc < 0) {
			snprintf(err, errlen, "%s", api->store_last_error(ctx));
			api->rec_free(l.rows);
			return rc;
		}
	} while (cursor[0]);
	*reply = l.rows;
	return 0;
}

/* ---- the reminder tick: overdue visits, one reminder per overdue period ---- */

struct remind {
	int64_t now, due, periods;
	const char *supervisor; /* the watchlist's supervisor now (may be NULL) */
	int changed;
};

/* Count the overdue period `periods` of the due date `due` as reminded (before raising). */
static int remind_step(linli_ctx *ctx, const char *id, linli_record **rec, void *ud, char *err,
		       size_t errlen)
{
	(void)ctx, (void)id, (void)err, (void)errlen;
	struct remind *m = ud;
	if (!*rec || time_or(*rec, "due", 0) != m->due)
		return LINLI_STORE_KEEP; /* visited meanwhile */
	int same = time_or(*rec, "reminded_for", -1) == m->due;
	if (same && int_or(*rec, "reminded_periods", 0) >= m->periods &&
	    !strcmp(str_or(*rec, "supervisor", ""), m->supervisor ? m->supervisor : ""))
		return LINLI_STORE_KEEP;
	if (!same) {
		api->rec_set_time(*rec, "reminded_for", m->due);
		api->rec_set_int(*rec, "alarm_periods", 0);
	}
	api->rec_set_int(*rec, "reminded_periods", m->periods);
	if (m->supervisor)
		api->rec_set_str(*rec, "supervisor", m->supervisor);
	m->changed = 1;
	return 0;
}

/* The answer to a reminder: the alarm raised for `periods` periods of `due`. */
struct answered {
	int64_t due, periods;
	const char *alarm;
};

static int answered_step(linli_ctx *ctx, const char *id, linli_record **rec, void *ud, char *err,
			 size_t errlen)
{
	(void)ctx, (void)id, (void)err, (void)errlen;
	struct answered *a = ud;
	if (!*rec || time_or(*rec, "reminded_for", -1) != a->due)
		return LINLI_STORE_KEEP;
	if (int_or(*rec, "alarm_periods", 0) < a->periods)
		api->rec_set_int(*rec, "alarm_periods", a->periods);
	if (a->alarm)
		api->rec_set_str(*rec, "alarm", a->alarm);
	return 0;
}

static int in_flight(const char *scope, const char *id)
{
	return alarmreq_in_flight(&W->fly, scope, id) > 0;
}

static void on_raised(linli_ctx *ctx, const struct alarmreq_fly *f, int status,
		      const char *alarm)
{
	if (status < 0) { /* logged; the next tick tries again */
		W->failed++;
		return;
	}
	W->reminders++;
	struct answered a = {f->tag[0], f->tag[1], alarm};
	if (api->store_update(ctx, "watch_schedules", f->scope, f->id, answered_step, &a))
		api->log(ctx, LINLI_LOG_WARN, "the visit reminder of %s: alarm not recorded: %s",
			 f->id, api->store_last_error(ctx));
}

/* Raise the reminder of schedule `id`: period `periods` of the visit due `due`. */
static int raise_reminder(linli_ctx *ctx, const char *scope, const char *id, int64_t due,
			  int64_t every, int64_t periods, const char *supervisor)
{
	/* The grid worker to remind: their account, from grid_workers (no identity of the
	 * person watched goes into the alarm). */
	char account[80] = "";
	linli_record *gw = NULL;
	if (supervisor && api->store_get(ctx, "grid_workers", scope, supervisor, &gw, NULL) == 0)
		snprintf(account, sizeof account, " (account %.64s)", str_or(gw, "account", "-"));
	api->rec_free(gw);
	char src[LINLI_ID_MAX + 40], day[32], details[512];
	snprintf(src, sizeof src, "record:watch_schedules/%s", id);
	local_day(ctx, due, day, sizeof day);
	snprintf(details, sizeof details,
		 "a watch visit is overdue since %s (every %lld days; overdue period %lld): "
		 "reminding grid worker %s%s",
		 day, (long long)every, (long long)periods,
		 supervisor ? supervisor : "(none named)", account);
	linli_record *p = api->rec_new();
	if (!p)
		return LINLI_ENOMEM;
	api->rec_set_str(p, "type", "watch_visit_overdue");
	api->rec_set_str(p, "source", src);
	api->rec_set_str(p, "severity", plugcfg_sev_names[W->cfg.severity]);
	api->rec_set_str(p, "details", details);
	int rc = alarmreq_fly_raise(&W->fly, ctx, scope, id, due, periods, p);
	api->rec_free(p);
	return rc;
}

/* One overdue schedule: count its current period, then raise what is not raised yet. */
static int tick_row(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	int64_t now = *(int64_t *)ud, due = time_or(row->record, "due", now),
		every = int_or(row->record, "every_days", 30);
	if (due >= now || every < 1)
		return 0;
	struct remind m = {.now = now, .due = due, .periods = (now - due) / (every * DAY_MS) + 1};
	char sup[LINLI_ID_MAX + 1];
	linli_record *p = NULL;
	/* A person taken off the list (gone, or past valid_until) is reminded of no more. */
	if (api->store_get(ctx, "watchlist", row->scope, row->id, &p, NULL) ||
	    time_or(p, "valid_until", INT64_MAX) < now) {
		api->rec_free(p);
		return 0;
	}
	snprintf(sup, sizeof sup, "%s", str_or(p, "supervisor", ""));
	api->rec_free(p);
	m.supervisor = sup[0] ? sup : NULL;
	int64_t reminded = time_or(row->record, "reminded_for", -1) == due
			       ? int_or(row->record, "reminded_periods", 0)
			       : 0,
		raised = reminded ? int_or(row->record, "alarm_periods", 0) : 0;
	if (m.periods > reminded || strcmp(sup, str_or(row->record, "supervisor", ""))) {
		if (api->store_update(ctx, "watch_schedules", row->scope, row->id, remind_step,
				      &m)) {
			api->log(ctx, LINLI_LOG_WARN, "the visit reminder of %s is not kept: %s",
				 row->id, api->store_last_error(ctx));
			return 0;
		}
		if (m.periods > reminded)
			reminded = m.periods;
	}
	if (raised < reminded && !in_flight(row->scope, row->id))
		raise_reminder(ctx, row->scope, row->id, due, every, reminded, m.supervisor);
	return 0;
}

static void tick(linli_ctx *ctx, void *ud)
{
	(void)ud;
	int64_t now = api->time_now_ms();
	char until[32];
	snprintf(until, sizeof until, "%lld", (long long)now);
	struct linli_range r = {"due", "<", until};
	struct linli_query q = {.size = sizeof q,
				.dataset = "watch_schedules",
				.range = &r,
				.n_range = 1,
				.limit = 1000};
	char cursor[LINLI_CURSOR_MAX] = "";
	do {
		q.cursor = cursor;
		if (api->store_scan(ctx, &q, tick_row, &now, cursor) < 0) {
			api->log(ctx, LINLI_LOG_WARN, "reminder tick: %s",
				 api->store_last_error(ctx));
			return;
		}
	} while (cursor[0]);
}

/* ---- stats ---- */

static int cmd_stats(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		     char *err, size_t errlen)
{
	(void)ctx;
	if (req->argc) {
		snprintf(err, errlen, "usage: watch stats");
		return LINLI_EINVAL;
	}
	linli_record *r = api->rec_new(), *c = NULL;
	if (!r || api->rec_set_map(r, "config", &c)) {
		api->rec_free(r);
		return snprintf(err, errlen, "out of memory"), LINLI_ENOMEM;
	}
	api->rec_set_int(c, "every_days", W->cfg.every_days);
	api->rec_set_str(c, "severity", plugcfg_sev_names[W->cfg.severity]);
	api->rec_set_int(r, "reminders", W->reminders);
	api->rec_set_int(r, "failed", W->failed);
	api->rec_set_int(r, "in_flight", (int64_t)W->fly.n);
	api->rec_set_int(r, "cleared", W->cleared);
	api->rec_set_int(r, "hits_known", (int64_t)W->n_hits);
	api->rec_set_int(r, "refused_reloads", W->refused_reloads);
	*reply = r;
	return 0;
}

/* ---- init ---- */

static void free_state(void)
{
	if (!W)
		return;
	free(W->hits);
	alarmreq_flights_free(&W->fly);
	free(W->cfg_json);
	free(W);
	W = NULL;
}

static int watch_init(linli_ctx *ctx, const struct linli_api *a)
{
	api = a;
	if (!(W = calloc(1, sizeof *W)))
		return LINLI_ENOMEM;
	W->cfg = cfg_defaults;
	W->fly = (struct alarmreq_flights){.api = api, .what = "visit schedule", .answered = on_raised};
	char cerr[512];
	bool changed;
	int rc = plugcfg_load(&(const struct plugcfg){api, "watch", cerr, sizeof cerr}, ctx,
			      &W->cfg_json, cfg_parse, W, &changed);
	if (rc) {
		api->set_error(ctx, "%s", cerr);
		free_state();
		return rc;
	}
	static const struct plugcmd_cmd cmds[] = {
	    {"list", "[category=C] [risk=R] [scope=PATH]",
	     "watchlist people within reach (a grid worker: those they supervise)", "watch.read",
	     cmd_list},
	    {"show", "PERSON", "one person, their visit schedule and visits", "watch.read",
	     cmd_show},
	    {"schedule", "PERSON [EVERY [FIRST-DUE]]",
	     "visit a person every N days (every_days, 30d), the first visit due FIRST-DUE (a "
	     "local date)",
	     "watch.schedule", cmd_schedule},
	    {"visit", "PERSON [NOTES...]", "record a visit (走访) now; the next is due a period on",
	     "watch.visit", cmd_visit},
	    {"due", "[within=DAYS] [scope=PATH]",
	     "visits overdue and due within DAYS (7), earliest first", "watch.read", cmd_due},
	    {"hits", "[--since TIME] [scope=PATH]",
	     "watchlist hits from access control: when and where; who, for callers granted "
	     "sensitive:watchlist",
	     "watch.read", cmd_hits},
	    {"stats", "", "reminders raised, failed and cleared, the configuration", "watch.stats",
	     cmd_stats},
	};
	cerr[0] = 0;
	rc = plugcmd_register(api, ctx, actions, PLUGCMD_N(actions), cmds, PLUGCMD_N(cmds), NULL, 0,
			      NULL, cerr, sizeof cerr);
	uint64_t id;
	if (!rc)
		rc = api->store_watch(ctx, "watch_hits", on_hit_change, NULL, &id);
	if (!rc)
		rc = api->timer_add(ctx, 1000, TICK_MS, tick, NULL, &id);
	if (!rc)
		rc = api->timer_add(ctx, 1000, 1000, cfg_tick, NULL, &id);
	if (!rc && (rc = hitmap_load(ctx)))
		api->set_error(ctx, "reading watch_hits: %s", api->store_last_error(ctx));
	else if (rc)
		api->set_error(ctx, "setting up: %s", cerr[0] ? cerr : linli_strerror(rc));
	if (rc)
		free_state();
	return rc;
}

static void watch_fini(linli_ctx *ctx, const struct linli_api *a)
{
	(void)ctx, (void)a;
	free_state();
}

LINLI_PLUGIN(watch_init, watch_fini, .name = "watch", .version = "1.0.0", .family = "governance",
	     .description = "Special-personnel watch (restricted): the watchlist per caller, visit "
			    "schedules with overdue reminders to the grid worker, hits from "
			    "access control",
	     .requires = {"alarms"},
	     .capabilities = {"store.read:watchlist", "sensitive:watchlist",
			      "store.read:watch_hits", "sensitive:watch_hits",
			      "store.read:watch_schedules", "store.write:watch_schedules",
			      "store.read:watch_visits", "store.write:watch_visits",
			      "sensitive:watch_visits", "store.read:grid_workers",
			      "bus.publish:alarmreq/raise", "bus.publish:alarmreq/clear"});
