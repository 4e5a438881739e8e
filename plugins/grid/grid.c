/*
 * grid.c — grid management: the incident workflow (网格事件) as a transition table
 * (plugins/lib/wf_table.h), step deadlines in working time from the category's limits
 * and the working calendar (plugins/lib/wf_cal.h).
 *
 * Owns: the `grid` console commands, the incidentreq/report server, a cache of the
 * incident_categories and work_calendar records (reloaded when they change). Every
 * move is checked against the table and the caller's duty, written to incidents and
 * recorded in incident_moves as the caller (so the kernel audits it under the caller's
 * name, via plugin:grid). It never writes grids or grid_workers, and never acts on its
 * own account in a command: only the bus server, the timers and the watches act as the
 * plugin (the caches are reloaded from a timer, never in a command).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linli/linli.h>

#include "alarmreq.h"
#include "plugcmd.h"
#include "wf_cal.h"
#include "wf_case.h"
#include "wf_ref.h"
#include "wf_table.h"

static const struct linli_api *api;

/* ---- the workflow (GB/T 30428 / CJ/T 315 lineage; README, "Grid incidents") ---- */

static const char *const states[] = {
    "reported",	 "verifying", "filed",	  "dispatched", "processing", "shelved", "returned",
    "extension", "feedback",  "checking", "rework",	"closed",     "void"};

static const struct wf_move moves[] = {
    {"reported", "verify", "verifying", "grid.intake"},
    {"reported", "file", "filed", "grid.intake"},
    {"reported", "void", "void", "grid.intake"},
    {"verifying", "file", "filed", "grid.intake"},
    {"verifying", "void", "void", "grid.intake"},
    {"filed", "dispatch", "dispatched", "grid.dispatch"},
    {"dispatched", "accept", "processing", "grid.handle"},
    {"dispatched", "return", "returned", "grid.handle"},
    {"processing", "feedback", "feedback", "grid.handle"},
    {"processing", "extend", "extension", "grid.handle"},
    {"processing", "shelve", "shelved", "grid.handle"},
    {"shelved", "resume", "processing", "grid.centre"},
    {"shelved", "close", "closed", "grid.close_shelved"},
    {"returned", "dispatch", "dispatched", "grid.redispatch"},
    {"extension", "approve", "processing", "grid.approve"}, /* 2nd and later: approve_above */
    {"feedback", "check", "checking", "grid.centre"},
    {"checking", "close", "closed", "grid.check"},
    {"checking", "rework", "rework", "grid.check"},
    {"rework", "accept", "processing", "grid.handle"},
};

static const struct wf_table table = {"case", "reported",
				      states, sizeof states / sizeof *states,
				      moves,  sizeof moves / sizeof *moves};

/* The table's cases as the console shows them (wf_case; api set at init). */
static struct wf_case wcase;

/* The plugin's actions: least role, deepest level, duty, summary. */
static const struct plugcmd_action actions[] = {
    {"grid.read", "viewer", NULL, NULL, "show and list cases"},
    {"grid.report", "grid_worker", NULL, NULL, "report a case (上报)"},
    {"grid.intake", "operator", NULL, "grid.intake", "verify, file or void a case (受理)"},
    {"grid.dispatch", "operator", NULL, "grid.dispatcher", "dispatch a filed case (派遣)"},
    {"grid.redispatch", "operator", NULL, "grid.shift_lead",
     "dispatch a returned case again (改派, the shift lead confirms)"},
    {"grid.handle", "grid_worker", NULL, "grid.handler",
     "accept, return, feed back, ask for an extension or shelve a case (处置)"},
    {"grid.approve", "operator", NULL, "grid.shift_lead", "approve a first extension (延期)"},
    {"grid.approve_above", "operator", "street", "grid.leader",
     "approve a second or later extension (the tier above)"},
    {"grid.centre", "operator", NULL, "grid.centre",
     "take feedback to checking, resume a shelved case"},
    {"grid.close_shelved", "operator", "street", "grid.centre",
     "close a shelved case as unresolvable (the tier above)"},
    {"grid.check", "grid_worker", NULL, "grid.checker",
     "close a checked case or send it back (核查)"},
};

/* ---- the cached data: categories and calendars, as the plugin reads them ---- */

struct grid {
	struct wf_ref categories, calendars; /* read on the plugin's account (wf_ref.h) */
	int checked_year;      /* the year warn_next_year last looked from (0: look again) */
	int warned_year[8];    /* years a missing calendar was logged for */
	struct wf_refcal rcal; /* the calendar built last */
	struct alarmreq_flights fly; /* 督办 alarms asked and not answered yet */
};

static struct grid *G;

/* Does a cached calendar announce next year? Logged at each load and when a new year starts. */
static void warn_next_year(linli_ctx *ctx)
{
	int64_t now = api->time_now_ms();
	struct linli_tm t = {.size = sizeof t};
	if (!G->calendars.n || api->time_local(ctx, now, &t))
		return;
	G->checked_year = t.year;
	int next = t.year + 1, have = 0;
	for (size_t i = 0; i < G->calendars.n; i++) {
		int64_t y;
		if (api->rec_get_int(G->calendars.v[i].rec, "year", &y) == 0 && y == next)
			have = 1;
	}
	if (!have)
		api->log(ctx, LINLI_LOG_WARN,
			 "work_calendar: no calendar for %d yet: announce its holidays and make-up "
			 "days before deadlines reach it",
			 next);
}

/* A change of categories or calendars (a store watch: as the plugin): its record follows. */
static void on_change(linli_ctx *ctx, const struct linli_change *ch, void *ud)
{
	wf_ref_follow(ud, ctx, ch);
	if (ud == &G->calendars)
		G->checked_year = 0; /* announce a missing next year again at the next tick */
}

static const char *str_or(const linli_record *r, const char *key, const char *dflt)
{
	const char *s;
	return r && api->rec_get_str(r, key, &s, NULL) == 0 ? s : dflt;
}

/* The working calendar of `scope` at `now` (wf_ref_calendar). */
static const struct wf_cal *calendar(linli_ctx *ctx, const char *scope, int64_t now)
{
	return wf_ref_calendar(&G->rcal, &G->calendars, ctx, scope, now);
}

static int tm_local(void *ud, int64_t ms, struct linli_tm *out)
{
	out->size = sizeof *out;
	return api->time_local(ud, ms, out);
}

static int tm_from_local(void *ud, const struct linli_tm *t, int64_t *ms)
{
	return api->time_from_local(ud, t, ms);
}

/* ---- time limits ---- */

struct limits {
	int64_t file, respond, finish, check; /* working ms */
	int64_t escalate; /* working ms between 督办 past the deadline; 0: the step's */
	int alarm;	  /* raise an alarm at each 督办 */
};

/* The category's limits (incident_categories, the deepest record above `scope`). */
static void limits_of(const char *scope, const char *category, int urgent, const struct wf_cal *c,
		      struct limits *l)
{
	const struct wf_ref_entry *e =
	    wf_ref_deepest(&G->categories, scope, wf_ref_match_id, category);
	int64_t v;
	l->file = (urgent ? 10 : 30) * 60000LL;
	l->respond = 2 * 3600000LL;
	l->finish = wf_cal_day_ms(c);
	l->check = 3600000LL;
	l->escalate = 0;
	l->alarm = 1;
	if (!e)
		return;
	bool b;
	if (api->rec_get_bool(e->rec, "escalate_alarm", &b) == 0)
		l->alarm = b;
	if (api->rec_get_int(e->rec, "escalate_minutes", &v) == 0)
		l->escalate = v * 60000;
	if (api->rec_get_int(e->rec, "file_minutes", &v) == 0)
		l->file = v * 60000;
	if (api->rec_get_int(e->rec, "respond_minutes", &v) == 0)
		l->respond = v * 60000;
	if (api->rec_get_int(e->rec, "finish_days", &v) == 0)
		l->finish = v * wf_cal_day_ms(c);
	if (api->rec_get_int(e->rec, "finish_minutes", &v) == 0)
		l->finish = v * 60000;
	if (api->rec_get_int(e->rec, "check_minutes", &v) == 0)
		l->check = v * 60000;
}

/* ---- helpers ---- */

/* The state of a stored case: a first-workflow record (no `workflow`) is read in this one. */
static const char *state_of(const linli_record *r)
{
	const char *s = str_or(r, "status", "");
	int64_t wf;
	if (api->rec_get_int(r, "workflow", &wf) == 0 && wf >= 2)
		return s;
	if (strcmp(s, "accepted") == 0)
		return "filed";
	if (strcmp(s, "handling") == 0)
		return "processing";
	if (strcmp(s, "verifying") == 0)
		return "checking"; /* the first workflow's 核查 */
	return s;
}

static void join_args(const struct linli_cmd_req *req, int from, char *buf, size_t len)
{
	size_t off = 0;
	buf[0] = '\0';
	for (int i = from; i < req->argc && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s", i > from ? " " : "",
					req->argv[i]);
}

/* "90m", "4h", "2d" (working days) as working ms; -1 when malformed. */
static int64_t parse_duration(const char *s, const struct wf_cal *c)
{
	char *end;
	long long n = strtoll(s, &end, 10);
	if (end == s || n <= 0 || n > 100000 || end[0] == '\0' || end[1] != '\0')
		return -1;
	switch (*end) {
	case 'm':
		return n * 60000;
	case 'h':
		return n * 3600000;
	case 'd':
		return n * wf_cal_day_ms(c);
	}
	return -1;
}

struct grids_of {
	char grids[256]; /* ",g01,g02," */
	int n;
};

static int worker_row(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	(void)ctx;
	struct grids_of *g = ud;
	const char *grid = str_or(row->record, "grid", NULL),
		   *st = str_or(row->record, "status", "active");
	if (!grid || strcmp(st, "active") != 0)
		return 0;
	size_t off = strlen(g->grids);
	snprintf(g->grids + off, sizeof g->grids - off, "%s%s,", off ? "" : ",", grid);
	g->n++;
	return 0;
}

/* The grids of one community a caller works in, kept for a listing's rows. */
struct worker_cache {
	char community[LINLI_SCOPE_MAX + 1];
	struct grids_of g;
};

/*
 * A grid worker (named as `account` by active grid_workers records of the case's
 * community) acts only in the grids those records name. Others pass: their reach is
 * the kernel's scope check. `scope` is a grid path .../community/gNN. `cache` (may be
 * NULL) keeps the last community's answer for the next call.
 */
static int grid_worker_may_cached(linli_ctx *ctx, const struct linli_caller *who, const char *scope,
				  struct worker_cache *cache, char *err, size_t errlen)
{
	if (!who || !who->name || strcmp(who->role, "admin") == 0)
		return 0;
	struct worker_cache local;
	struct worker_cache *wc = cache ? cache : &local;
	const char *slash = strrchr(scope, '/');
	if (!slash || (size_t)(slash - scope) >= sizeof wc->community)
		return 0;
	const char *grid = slash + 1;
	size_t clen = (size_t)(slash - scope);
	if (!cache || strlen(wc->community) != clen || strncmp(wc->community, scope, clen)) {
		memcpy(wc->community, scope, clen);
		wc->community[clen] = '\0';
		memset(&wc->g, 0, sizeof wc->g);
		struct linli_where w = {"account", who->name};
		struct linli_query q = {.size = sizeof q,
					.dataset = "grid_workers",
					.scope = wc->community,
					.where = &w,
					.n_where = 1,
					.limit = 100};
		if (api->store_scan(ctx, &q, worker_row, &wc->g, NULL) < 0)
			wc->g.n = 0; /* out of the caller's reach: the kernel's check decides */
	}
	if (!wc->g.n)
		return 0; /* not a grid worker of that community */
	char needle[64];
	snprintf(needle, sizeof needle, ",%s,", grid);
	if (strstr(wc->g.grids, needle))
		return 0;
	size_t n = strlen(wc->g.grids);
	snprintf(err, errlen, "grid worker '%s' works in grids %.*s of %s, not in %s", who->name,
		 (int)(n > 2 ? n - 2 : 0), wc->g.grids + 1, wc->community, grid);
	return LINLI_EPERM;
}

static int grid_worker_may(linli_ctx *ctx, const struct linli_caller *who, const char *scope,
			   char *err, size_t errlen)
{
	return grid_worker_may_cached(ctx, who, scope, NULL, err, errlen);
}

/* Is `scope` a grid path (community/gNN: five segments)? */
static int is_grid_path(const char *scope)
{
	int n = 1;
	for (const char *p = scope; *p; p++)
		n += *p == '/';
	return n == 5;
}

/*
 * Who calls: the caller's account name; "kernel" for a request without a caller (the
 * kernel's own in-process calls, which act as the plugin).
 */
static const char *who_of(const struct linli_cmd_req *req)
{
	return req->caller && req->caller->name[0] ? req->caller->name : "kernel";
}

/* May the caller take `action` at `scope`? A request without a caller acts as the plugin. */
static int may(linli_ctx *ctx, const struct linli_cmd_req *req, const char *action,
	       const char *scope, char *err, size_t errlen)
{
	int rc = req->caller ? api->caller_may(ctx, req->caller, action, scope, err, errlen) : 0;
	return rc ? rc : grid_worker_may(ctx, req->caller, scope, err, errlen);
}

/* ---- moves ---- */

struct ctx_move {
	const char *verb;
	const char *arg;  /* dispatch: the handler; approve: the duration */
	const char *note; /* may be "" */
};

static int record_move(linli_ctx *ctx, const char *scope, const char *id, const char *verb,
		       const char *from, const char *to, const char *who, int64_t now,
		       const char *note, int64_t deadline, int64_t worked)
{
	linli_record *m = api->rec_new();
	if (!m)
		return LINLI_ENOMEM;
	api->rec_set_str(m, "incident", id);
	api->rec_set_str(m, "verb", verb);
	if (from)
		api->rec_set_str(m, "from", from);
	api->rec_set_str(m, "to", to);
	api->rec_set_str(m, "who", who);
	api->rec_set_time(m, "at", now);
	if (note && note[0])
		api->rec_set_str(m, "note", note);
	if (deadline > 0)
		api->rec_set_time(m, "deadline", deadline);
	if (worked >= 0)
		api->rec_set_int(m, "worked_ms", worked);
	int rc = api->store_put(ctx, "incident_moves", scope, NULL, m, NULL, NULL);
	api->rec_free(m);
	return rc;
}

/*
 * The new step's deadline on entering `to` (0: none), in working time from `now`.
 * Reported, verifying and filed share one limit (立案 + 派遣) from the report.
 */
static int step_deadline(linli_ctx *ctx, const char *scope, linli_record *c, const char *to,
			 int64_t now, int64_t extra, int64_t *deadline, int64_t *close_deadline,
			 char *warn, size_t warnlen)
{
	const struct wf_cal *cal = calendar(ctx, scope, now);
	struct limits l;
	limits_of(scope, str_or(c, "category", "other"),
		  strcmp(str_or(c, "priority", ""), "urgent") == 0, cal, &l);
	int64_t work = 0, start = now;
	*close_deadline = 0;
	if (!strcmp(to, "reported") || !strcmp(to, "returned"))
		work = l.file;
	else if (!strcmp(to, "verifying") || !strcmp(to, "filed"))
		return api->rec_get_time(c, "step_deadline", deadline) ? (*deadline = 0, 0) : 0;
	else if (!strcmp(to, "dispatched") || !strcmp(to, "extension") || !strcmp(to, "rework"))
		work = l.respond;
	else if (!strcmp(to, "processing"))
		work = extra > 0 ? extra : l.finish;
	else if (!strcmp(to, "feedback") || !strcmp(to, "checking"))
		work = l.check;
	else {
		*deadline = 0; /* shelved, closed, void: no clock */
		return 0;
	}
	struct wf_clock clk = {tm_local, tm_from_local, ctx};
	char err[256];
	int missing = 0, missing2 = 0;
	int rc = wf_cal_add(cal, &clk, start, work, NULL, 0, deadline, &missing, err, sizeof err);
	if (!rc && !strcmp(to, "dispatched"))
		rc = wf_cal_add(cal, &clk, start, l.respond + l.finish, NULL, 0, close_deadline,
				&missing2, err, sizeof err);
	if (rc) {
		snprintf(warn, warnlen, "no deadline: %s", err);
		api->log(ctx, LINLI_LOG_WARN, "deadline at %s: %s", scope, err);
		*deadline = 0;
		return 0;
	}
	if (!missing)
		missing = missing2;
	if (missing || !G->rcal.found) {
		if (missing)
			snprintf(warn, warnlen,
				 "no working calendar for %d at %s: its holidays are not counted",
				 missing, scope);
		else
			snprintf(warn, warnlen,
				 "no working calendar applies to %s: weekdays 09:00-12:00, "
				 "13:30-17:30 assumed",
				 scope);
		int y = missing ? missing : 1, seen = 0;
		for (size_t i = 0; i < sizeof G->warned_year / sizeof *G->warned_year; i++)
			if (G->warned_year[i] == y)
				seen = 1;
		if (!seen) {
			memmove(G->warned_year + 1, G->warned_year,
				sizeof G->warned_year - sizeof *G->warned_year);
			G->warned_year[0] = y;
			api->log(ctx, LINLI_LOG_WARN, "%s", warn);
		}
	}
	return 0;
}

/* ---- KPIs: per-day aggregates (incident_kpis: a record per day, grid, category, handler) ---- */

enum { K_REPORTED, K_FILED, K_CLOSED, K_ON_TIME, K_VOIDED, K_REWORKS, K_COUNTS };
static const char *const kpi_counts[K_COUNTS] = {"reported",	   "filed",  "closed",
						 "closed_on_time", "voided", "reworks"};
enum { S_INTAKE, S_RESPOND, S_PROCESS, S_CHECK, S_STAGES };
static const char *const kpi_stages[S_STAGES] = {"intake", "respond", "process", "check"};
static const char *const kpi_stage_ms[S_STAGES] = {"intake_ms", "respond_ms", "process_ms",
						   "check_ms"};
static const char *const kpi_stage_n[S_STAGES] = {"intake_n", "respond_n", "process_n", "check_n"};

/* The stage whose working time a move out of `from` ends; -1: none (shelved, closed, void). */
static int stage_of(const char *from)
{
	static const struct {
		const char *state;
		int stage;
	} map[] = {{"reported", S_INTAKE},   {"verifying", S_INTAKE},	{"filed", S_INTAKE},
		   {"returned", S_INTAKE},   {"dispatched", S_RESPOND}, {"processing", S_PROCESS},
		   {"extension", S_PROCESS}, {"rework", S_PROCESS},	{"feedback", S_CHECK},
		   {"checking", S_CHECK}};
	for (size_t i = 0; from && i < sizeof map / sizeof *map; i++)
		if (!strcmp(map[i].state, from))
			return map[i].stage;
	return -1;
}

/* What one move adds to its day's record. */
struct kpi_delta {
	int64_t day;			/* YYYYMMDD in the node's zone */
	const char *category, *handler; /* handler NULL: not dispatched yet */
	int count;			/* a K_ counter, or -1 */
	int on_time;			/* a close: no later than close_deadline */
	int stage;			/* S_ of the time worked, or -1 */
	int64_t worked;
};

static void rec_add(linli_record *r, const char *key, int64_t n)
{
	int64_t v = 0;
	api->rec_get_int(r, key, &v);
	api->rec_set_int(r, key, v + n);
}

static int kpi_step(linli_ctx *ctx, const char *id, linli_record **rec, void *ud, char *err,
		    size_t errlen)
{
	(void)ctx, (void)id, (void)err, (void)errlen;
	const struct kpi_delta *k = ud;
	if (!*rec) {
		if (!(*rec = api->rec_new()))
			return LINLI_ENOMEM;
		api->rec_set_int(*rec, "day", k->day);
		api->rec_set_str(*rec, "category", k->category);
		if (k->handler)
			api->rec_set_str(*rec, "handler", k->handler);
	}
	if (k->count >= 0)
		rec_add(*rec, kpi_counts[k->count], 1);
	if (k->count == K_CLOSED && k->on_time)
		rec_add(*rec, kpi_counts[K_ON_TIME], 1);
	if (k->stage >= 0) {
		rec_add(*rec, kpi_stage_ms[k->stage], k->worked);
		rec_add(*rec, kpi_stage_n[k->stage], 1);
	}
	return 0;
}

/* Is `s` record-id text ([A-Za-z0-9][A-Za-z0-9_.:-]*)? */
static int id_text(const char *s)
{
	if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr("_.:-", *s)))
			return 0;
	return 1;
}

/* The record id of (day, category, handler): "20270108.environment.h1"; a handler that is
 * not id text or too long goes by "_" and the FNV-1a hash of its name. */
static void kpi_id(const struct kpi_delta *k, char *id, size_t len)
{
	const char *h = k->handler ? k->handler : "-";
	int n = snprintf(id, len, "%lld.%s.%s", (long long)k->day, k->category, h);
	if (k->handler && (!id_text(h) || n < 0 || (size_t)n >= len)) {
		uint64_t x = 14695981039346656037ULL;
		for (const unsigned char *p = (const unsigned char *)h; *p; p++)
			x = (x ^ *p) * 1099511628211ULL;
		snprintf(id, len, "%lld.%.20s._%016llx", (long long)k->day, k->category,
			 (unsigned long long)x);
	}
}

/*
 * Count one move of case `c` at `now` in its day's record, in the batch the case is
 * written in: `verb` ("report" for the report), `from` the state left (NULL for the
 * report), `worked` the working ms spent there (-1: unknown), `handler` the case's handler
 * before the move (NULL: none yet; the time before a dispatch is nobody's).
 */
static int kpi_count(linli_ctx *ctx, const char *scope, const linli_record *c, const char *verb,
		     const char *from, const char *handler, int64_t now, int64_t worked)
{
	struct linli_tm t = {.size = sizeof t};
	int rc = api->time_local(ctx, now, &t);
	if (rc)
		return rc;
	struct kpi_delta k = {.day = t.year * 10000LL + t.month * 100 + t.day,
			      .category = str_or(c, "category", "other"),
			      .handler = handler,
			      .count = -1,
			      .stage = worked >= 0 ? stage_of(from) : -1,
			      .worked = worked};
	static const struct {
		const char *verb;
		int count;
	} counted[] = {{"report", K_REPORTED},
		       {"file", K_FILED},
		       {"close", K_CLOSED},
		       {"void", K_VOIDED},
		       {"rework", K_REWORKS}};
	for (size_t i = 0; i < sizeof counted / sizeof *counted; i++)
		if (!strcmp(verb, counted[i].verb))
			k.count = counted[i].count;
	int64_t due;
	k.on_time = api->rec_get_time(c, "close_deadline", &due) != 0 || now <= due;
	if (k.count < 0 && k.stage < 0)
		return 0;
	char id[LINLI_ID_MAX + 1];
	kpi_id(&k, id, sizeof id);
	return api->store_update(ctx, "incident_kpis", scope, id, kpi_step, &k);
}

/* The verbs a handler makes; only the handler dispatched to (or an admin) may. */
static int handler_verb(const char *verb)
{
	return !strcmp(verb, "accept") || !strcmp(verb, "return") || !strcmp(verb, "feedback") ||
	       !strcmp(verb, "extend") || !strcmp(verb, "shelve");
}

static void on_cleared(linli_ctx *ctx, uint64_t rid, int status, const linli_record *rec,
		       const char *err, void *ud)
{
	(void)rid, (void)rec, (void)ud;
	if (status < 0) /* LINLI_ENOENT: cleared by hand already */
		api->log(ctx, status == LINLI_ENOENT ? LINLI_LOG_INFO : LINLI_LOG_WARN, "%s",
			 err && err[0] ? err : linli_strerror(status));
}

/*
 * A case closed or voided: clear an alarm of it (alarmreq/clear), as the plugin, naming who
 * moved it: the alarm its 督办 raised (by its type and source, the case) or the alarm that
 * opened it (by its id, `source_alarm`).
 */
static void clear_alarm(linli_ctx *ctx, const char *scope, const char *id, const char *verb,
			const char *who, const char *alarm_id)
{
	char src[LINLI_ID_MAX + 32], why[256];
	snprintf(src, sizeof src, "record:incidents/%s", id);
	snprintf(why, sizeof why, "case %s: %s by %s", id, verb, who);
	linli_record *p = api->rec_new();
	if (!p)
		return;
	if (alarm_id)
		api->rec_set_str(p, "id", alarm_id);
	else {
		api->rec_set_str(p, "type", "incident_overdue");
		api->rec_set_str(p, "source", src);
	}
	api->rec_set_str(p, "why", why);
	int rc = api->request(ctx, "alarmreq/clear", alarm_id ? NULL : scope, p, 0, on_cleared,
			      NULL, NULL);
	api->rec_free(p);
	if (rc)
		api->log(ctx, LINLI_LOG_WARN,
			 "case %s: alarm %s is not cleared: alarmreq/clear: %s", id,
			 alarm_id ? alarm_id : "of its 督办", linli_strerror(rc));
}

/* Case `id` and its scope, as the caller reaches it; err says why not. */
static int load_case(linli_ctx *ctx, const char *id, linli_record **c,
		     char scope[LINLI_SCOPE_MAX + 1], char *err, size_t errlen)
{
	int rc = api->store_get(ctx, "incidents", NULL, id, c, scope);
	if (rc == LINLI_ENOENT)
		snprintf(err, errlen, "case %s: no such case within your reach", id);
	else if (rc)
		snprintf(err, errlen, "%s", api->store_last_error(ctx));
	return rc;
}

static int64_t time_or(const linli_record *r, const char *key, int64_t dflt);
static int64_t worked_between(linli_ctx *ctx, const char *scope, int64_t a, int64_t b, int64_t now);

/*
 * Waiting for the reporter (核实 with the reporter while verifying, 核查 by the
 * reporter while checking): the step's clock stops — no step_deadline, so
 * nothing is warned, overdue or escalated meanwhile — and the working time
 * left is kept; when the reporter answers (or any move ends the wait) the
 * clock runs on with what was left. The wait's working time goes to
 * step_paused_ms and is left out of the step's worked_ms, so the KPIs' stage
 * times do not count it either.
 */
static int64_t await_end(linli_ctx *ctx, const char *scope, linli_record *c, int64_t now)
{
	int64_t since = time_or(c, "awaiting_since", -1), left = 0, sum = 0, deadline = now;
	if (since < 0)
		return time_or(c, "step_deadline", 0);
	api->rec_get_int(c, "awaiting_left_ms", &left);
	api->rec_get_int(c, "step_paused_ms", &sum);
	int64_t paused = worked_between(ctx, scope, since, now, now);
	api->rec_set_int(c, "step_paused_ms", sum + (paused > 0 ? paused : 0));
	if (left > 0) {
		struct wf_clock clk = {tm_local, tm_from_local, ctx};
		char e[256];
		int missing = 0;
		if (wf_cal_add(calendar(ctx, scope, now), &clk, now, left, NULL, 0, &deadline,
			       &missing, e, sizeof e))
			deadline = now + left;
	}
	api->rec_set_time(c, "step_deadline", deadline);
	api->rec_remove(c, "awaiting_since");
	api->rec_remove(c, "awaiting_left_ms");
	return deadline;
}

static int do_move(linli_ctx *ctx, const struct linli_cmd_req *req, const char *id,
		   const struct ctx_move *mv, linli_record **reply, char *err, size_t errlen)
{
	char scope[LINLI_SCOPE_MAX + 1];
	linli_record *c = NULL;
	int rc = load_case(ctx, id, &c, scope, err, errlen);
	if (rc)
		return rc;
	const char *from = state_of(c);
	char from_s[32];
	snprintf(from_s, sizeof from_s, "%s", from);
	const struct wf_move *m;
	if ((rc = wf_move_check(&table, id, from_s, mv->verb, &m, err, errlen))) {
		/* an illegal move is refused and audited, under the caller */
		api->audit(ctx, "grid.move", scope, id, "denied", err);
		goto out;
	}
	const char *action = m->action;
	int64_t ext = 0;
	api->rec_get_int(c, "extensions", &ext);
	if (!strcmp(mv->verb, "approve") && ext > 1)
		action = "grid.approve_above";
	if ((rc = may(ctx, req, action, scope, err, errlen)))
		goto out;
	const char *handler = str_or(c, "handler", NULL);
	if (handler_verb(mv->verb) && handler && req->caller && strcmp(handler, who_of(req)) &&
	    strcmp(req->caller->role, "admin")) {
		snprintf(err, errlen, "case %s is dispatched to '%s', not to '%s'", id, handler,
			 who_of(req));
		api->audit(ctx, "grid.move", scope, id, "denied", err);
		rc = LINLI_EPERM;
		goto out;
	}
	int64_t now = api->time_now_ms(), extra = 0, started = 0, worked = -1;
	if (!strcmp(mv->verb, "approve")) {
		extra = parse_duration(mv->arg, calendar(ctx, scope, now));
		if (extra < 0) {
			snprintf(err, errlen,
				 "approve %s: '%s' is not a working duration such as 90m, 4h or 2d",
				 id, mv->arg);
			rc = LINLI_EINVAL;
			goto out;
		}
	}
	if (api->rec_get_time(c, "step_started", &started) == 0 && started <= now) {
		struct wf_clock clk = {tm_local, tm_from_local, ctx};
		char e2[256];
		if (wf_cal_between(calendar(ctx, scope, now), &clk, started, now, NULL, 0, &worked,
				   NULL, e2, sizeof e2))
			worked = -1;
	}
	if (time_or(c, "awaiting_since", -1) >= 0) /* a move ends a wait for the reporter */
		await_end(ctx, scope, c, now);
	int64_t paused = 0;
	api->rec_get_int(c, "step_paused_ms", &paused);
	if (worked >= 0)
		worked = worked > paused ? worked - paused : 0;
	api->rec_remove(c, "step_paused_ms"); /* the next step starts its own */
	char warn[256] = "", handler_before[LINLI_ID_MAX + 64] = "";
	snprintf(handler_before, sizeof handler_before, "%s", handler ? handler : "");
	int64_t deadline = 0, close_deadline = 0;
	step_deadline(ctx, scope, c, m->to, now, extra, &deadline, &close_deadline, warn,
		      sizeof warn);
	api->rec_set_str(c, "status", m->to);
	api->rec_set_int(c, "workflow", 2);
	api->rec_set_time(c, "step_started", now);
	if (deadline > 0)
		api->rec_set_time(c, "step_deadline", deadline);
	else
		api->rec_remove(c, "step_deadline");
	if (close_deadline > 0)
		api->rec_set_time(c, "close_deadline", close_deadline);
	if (!strcmp(mv->verb, "dispatch"))
		api->rec_set_str(c, "handler", mv->arg);
	if (!strcmp(mv->verb, "extend"))
		api->rec_set_int(c, "extensions", ext + 1);
	if (!strcmp(mv->verb, "rework")) {
		int64_t n = 0;
		api->rec_get_int(c, "reworks", &n);
		api->rec_set_int(c, "reworks", n + 1);
	}
	if ((rc = api->store_put(ctx, "incidents", scope, id, c, NULL, NULL)) ||
	    (rc = record_move(ctx, scope, id, mv->verb, from_s, m->to, who_of(req), now, mv->note,
			      deadline, worked)) ||
	    (rc = kpi_count(ctx, scope, c, mv->verb, from_s,
			    handler_before[0] ? handler_before : NULL, now, worked))) {
		snprintf(err, errlen, "%s", api->store_last_error(ctx));
		goto out;
	}
	if (!strcmp(m->to, "closed") || !strcmp(m->to, "void")) {
		const char *source_alarm = str_or(c, "source_alarm", NULL);
		if (str_or(c, "alarm", NULL))
			clear_alarm(ctx, scope, id, mv->verb, who_of(req), NULL);
		if (source_alarm)
			clear_alarm(ctx, scope, id, mv->verb, who_of(req), source_alarm);
	}
	linli_record *r = api->rec_new();
	api->rec_set_str(r, "id", id);
	api->rec_set_str(r, "scope", scope);
	api->rec_set_str(r, "from", from_s);
	api->rec_set_str(r, "to", m->to);
	if (deadline > 0)
		api->rec_set_time(r, "step_deadline", deadline);
	if (worked >= 0)
		api->rec_set_int(r, "worked_ms", worked);
	if (warn[0])
		api->rec_set_str(r, "warning", warn);
	*reply = r;
out:
	api->rec_free(c);
	return rc;
}

/* grid await ID [WHY...] / grid answered ID [NOTE...]: the reporter is waited for, or answered. */
static int cmd_await(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		     char *err, size_t errlen)
{
	bool start = !strcmp(req->ud, "await");
	if (req->argc < 1) {
		snprintf(err, errlen, "usage: grid %s ID [%s...]", start ? "await" : "answered",
			 start ? "WHY" : "NOTE");
		return LINLI_EINVAL;
	}
	const char *id = req->argv[0];
	char scope[LINLI_SCOPE_MAX + 1];
	linli_record *c = NULL;
	int rc = load_case(ctx, id, &c, scope, err, errlen);
	if (rc)
		return rc;
	char st[32];
	snprintf(st, sizeof st, "%s", state_of(c));
	bool waiting = time_or(c, "awaiting_since", -1) >= 0;
	int64_t now = api->time_now_ms(), deadline = 0, left = 0;
	if (strcmp(st, "verifying") && strcmp(st, "checking")) {
		snprintf(err, errlen,
			 "case %s is %s: the reporter is awaited only while verifying (核实) or "
			 "checking (核查)",
			 id, st);
		rc = LINLI_ESTATE;
	} else if ((rc = may(ctx, req, !strcmp(st, "verifying") ? "grid.intake" : "grid.check",
			     scope, err, errlen))) {
	} else if (start && waiting) {
		snprintf(err, errlen, "case %s awaits the reporter already", id);
		rc = LINLI_ESTATE;
	} else if (!start && !waiting) {
		snprintf(err, errlen, "case %s does not await the reporter (grid await %s first)",
			 id, id);
		rc = LINLI_ESTATE;
	}
	if (rc) {
		api->rec_free(c);
		return rc;
	}
	if (start) {
		int64_t due = time_or(c, "step_deadline", -1);
		left = due > now ? worked_between(ctx, scope, now, due, now) : 0;
		if (left < 0)
			left = 0;
		api->rec_set_time(c, "awaiting_since", now);
		api->rec_set_int(c, "awaiting_left_ms", left);
		api->rec_remove(c, "step_deadline");
	} else
		deadline = await_end(ctx, scope, c, now);
	char note[1024];
	join_args(req, 1, note, sizeof note);
	if ((rc = api->store_put(ctx, "incidents", scope, id, c, NULL, NULL)) ||
	    (rc = record_move(ctx, scope, id, start ? "await" : "answered", st, st, who_of(req),
			      now, note, deadline, -1))) {
		snprintf(err, errlen, "%s", api->store_last_error(ctx));
		api->rec_free(c);
		return rc;
	}
	linli_record *r = api->rec_new();
	api->rec_set_str(r, "id", id);
	api->rec_set_str(r, "scope", scope);
	api->rec_set_str(r, "status", st);
	api->rec_set_bool(r, "awaiting_reporter", start);
	if (start)
		api->rec_set_int(r, "left_ms", left);
	else
		api->rec_set_time(r, "step_deadline", deadline);
	*reply = r;
	api->rec_free(c);
	return 0;
}

/* One handler for every move command: `ud` is the verb. Usage checked here. */
static int cmd_move(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		    char *err, size_t errlen)
{
	const char *verb = req->ud;
	int needs_arg = !strcmp(verb, "dispatch") || !strcmp(verb, "approve");
	if (req->argc < 1 + needs_arg) {
		snprintf(err, errlen, "usage: grid %s ID%s [NOTE...]", verb,
			 !strcmp(verb, "dispatch") ? " HANDLER"
			 : needs_arg		   ? " DURATION"
						   : "");
		return LINLI_EINVAL;
	}
	char note[1024];
	join_args(req, 1 + needs_arg, note, sizeof note);
	struct ctx_move mv = {verb, needs_arg ? req->argv[1] : NULL, note};
	return do_move(ctx, req, req->argv[0], &mv, reply, err, errlen);
}

/* ---- report ---- */

static const char *const report_fields[] = {
    "description", "building", "photos", "priority", "channel", "reporter_name", "reporter_phone"};

/*
 * Make a case at grid path `scope` from `c` (title, category, ... set by the caller):
 * status reported, the intake deadline, its first move. As whoever runs the handler.
 */
static int open_case(linli_ctx *ctx, const char *scope, linli_record *c, const char *who, char *id,
		     char *warn, size_t warnlen, char *err, size_t errlen)
{
	if (!is_grid_path(scope)) {
		snprintf(err, errlen, "'%s' is not a grid (city/district/street/community/grid)",
			 scope);
		return LINLI_EINVAL;
	}
	int64_t now = api->time_now_ms(), deadline = 0, close_deadline;
	api->rec_set_str(c, "status", "reported");
	api->rec_set_int(c, "workflow", 2);
	api->rec_set_str(c, "grid", strrchr(scope, '/') + 1);
	api->rec_set_time(c, "reported_at", now);
	api->rec_set_time(c, "step_started", now);
	if (who)
		api->rec_set_str(c, "reporter", who);
	step_deadline(ctx, scope, c, "reported", now, 0, &deadline, &close_deadline, warn, warnlen);
	if (deadline > 0)
		api->rec_set_time(c, "step_deadline", deadline);
	int rc = api->store_put(ctx, "incidents", scope, NULL, c, id, NULL);
	if (!rc)
		rc = record_move(ctx, scope, id, "report", NULL, "reported", who ? who : "?", now,
				 NULL, deadline, -1);
	if (!rc)
		rc = kpi_count(ctx, scope, c, "report", NULL, NULL, now, -1);
	if (rc)
		snprintf(err, errlen, "%s", api->store_last_error(ctx));
	return rc;
}

static int cmd_report(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		      char *err, size_t errlen)
{
	if (req->argc < 3) {
		snprintf(err, errlen,
			 "usage: grid report GRID CATEGORY TITLE [FIELD=VALUE...] "
			 "(fields: description, building, photos, priority, channel, "
			 "reporter_name, reporter_phone)");
		return LINLI_EINVAL;
	}
	const char *scope = req->argv[0];
	int rc;
	if ((rc = may(ctx, req, "grid.report", scope, err, errlen)))
		return rc;
	linli_record *c = api->rec_new();
	api->rec_set_str(c, "category", req->argv[1]);
	api->rec_set_str(c, "title", req->argv[2]);
	api->rec_set_str(c, "channel",
			 req->caller && !strcmp(req->caller->role, "grid_worker") ? "grid_worker"
										  : "resident");
	for (int i = 3; i < req->argc; i++) {
		const char *eq = strchr(req->argv[i], '=');
		size_t k = 0, n = eq ? (size_t)(eq - req->argv[i]) : 0;
		for (; k < sizeof report_fields / sizeof *report_fields; k++)
			if (strlen(report_fields[k]) == n &&
			    !strncmp(report_fields[k], req->argv[i], n))
				break;
		if (!eq || k == sizeof report_fields / sizeof *report_fields) {
			snprintf(
			    err, errlen,
			    "report: '%s' is not FIELD=VALUE with a field of description, "
			    "building, photos, priority, channel, reporter_name, reporter_phone",
			    req->argv[i]);
			api->rec_free(c);
			return LINLI_EINVAL;
		}
		api->rec_set_str(c, report_fields[k], eq + 1);
	}
	/*
	 * 上级交办: a task handed down by a tier above the community (a street,
	 * district or city account) enters as reported with channel higher_tier,
	 * and says who handed it down; no one at the community or below claims it.
	 */
	const char *ch = "";
	api->rec_get_str(c, "channel", &ch, NULL);
	if (!strcmp(ch, "higher_tier")) {
		const char *from = req->caller ? req->caller->scope : "";
		int depth = 0;
		for (const char *p = from; *p; p++)
			depth += *p == '/';
		if (!req->caller || !*from || depth > 2) {
			snprintf(err, errlen,
				 "report: channel=higher_tier (上级交办) is for a street, district "
				 "or city account; %s is at %s",
				 req->caller ? req->caller->name : "this caller",
				 *from ? from : "no node");
			api->rec_free(c);
			return LINLI_EPERM;
		}
		char by[LINLI_SCOPE_MAX + 64];
		snprintf(by, sizeof by, "%s (%s)", from, req->caller->name);
		api->rec_set_str(c, "handed_down_by", by);
	}
	char id[LINLI_ID_MAX + 1], warn[256] = "";
	rc = open_case(ctx, scope, c, who_of(req), id, warn, sizeof warn, err, errlen);
	api->rec_free(c);
	if (rc)
		return rc;
	linli_record *r = api->rec_new();
	api->rec_set_str(r, "id", id);
	api->rec_set_str(r, "scope", scope);
	api->rec_set_str(r, "status", "reported");
	if (warn[0])
		api->rec_set_str(r, "warning", warn);
	*reply = r;
	return 0;
}

struct alarm_case {
	char *id; /* out: the open case's id */
	int found;
};

static int alarm_case_row(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	(void)ctx;
	struct alarm_case *a = ud;
	const char *st = state_of(row->record);
	if (!strcmp(st, "closed") || !strcmp(st, "void"))
		return 0;
	snprintf(a->id, LINLI_ID_MAX + 1, "%s", row->id);
	a->found = 1;
	return 1;
}

/* The open case alarm `alarm` opened already (id into `id`): 1, else 0. */
static int case_of_alarm(linli_ctx *ctx, const char *alarm, char *id)
{
	struct linli_where w = {"source_alarm", alarm};
	struct linli_query q = {
	    .size = sizeof q, .dataset = "incidents", .where = &w, .n_where = 1, .limit = 100};
	struct alarm_case a = {id, 0};
	api->store_scan(ctx, &q, alarm_case_row, &a, NULL);
	return a.found;
}

/*
 * incidentreq/report: a rule or plugin opens a case at the request's scope (a grid). A
 * request naming the alarm that opens it (source_alarm) gets that alarm's open case when
 * there is one, answered with existing = true: asking again opens nothing.
 */
static void on_report_request(linli_ctx *ctx, const struct linli_request *rq, void *ud)
{
	(void)ud;
	char err[512] = "", id[LINLI_ID_MAX + 1], warn[256] = "";
	linli_record *c = NULL;
	if (!rq->payload)
		c = api->rec_new();
	else if (api->rec_copy(rq->payload, &c))
		c = NULL;
	char who[96];
	snprintf(who, sizeof who, "%s%s", strncmp(rq->requester, "rule ", 5) ? "plugin:" : "",
		 rq->requester);
	const char *ch, *source_alarm = NULL;
	if (c && api->rec_get_str(c, "channel", &ch, NULL) != 0)
		api->rec_set_str(c, "channel",
				 strncmp(rq->requester, "rule ", 5) ? "device" : "rule");
	int existing = 0;
	if (c && api->rec_get_str(c, "source_alarm", &source_alarm, NULL) == 0)
		existing = case_of_alarm(ctx, source_alarm, id);
	int rc = !c ? LINLI_ENOMEM
		 : existing
		     ? 0
		     : open_case(ctx, rq->scope, c, who, id, warn, sizeof warn, err, sizeof err);
	api->rec_free(c);
	if (rc) {
		api->reply(ctx, rq->id, rc, NULL, err);
		return;
	}
	linli_record *r = api->rec_new();
	api->rec_set_str(r, "id", id);
	api->rec_set_str(r, "scope", rq->scope);
	if (existing)
		api->rec_set_bool(r, "existing", true);
	if (warn[0])
		api->rec_set_str(r, "warning", warn);
	api->reply(ctx, rq->id, 0, r, NULL);
	api->rec_free(r);
}

/* ---- show, list, table ---- */

struct listing {
	linli_record *rows; /* array, owned by the reply */
	const struct linli_caller *who;
	linli_ctx *ctx;
	const char *status;
	struct worker_cache workers;
};

static int list_row(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	struct listing *l = ud;
	const char *st = state_of(row->record);
	if (l->status && strcmp(st, l->status))
		return 0;
	char e[8];
	if (grid_worker_may_cached(ctx, l->who, row->scope, &l->workers, e, sizeof e))
		return 0;
	linli_record *m;
	if (api->arr_push_map(l->rows, &m))
		return LINLI_ENOMEM;
	api->rec_set_str(m, "id", row->id);
	api->rec_set_str(m, "scope", row->scope);
	api->rec_set_str(m, "status", st);
	api->rec_set_str(m, "category", str_or(row->record, "category", ""));
	api->rec_set_str(m, "title", str_or(row->record, "title", ""));
	int64_t t;
	if (api->rec_get_time(row->record, "step_deadline", &t) == 0)
		api->rec_set_time(m, "step_deadline", t);
	return 0;
}

static int cmd_list(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		    char *err, size_t errlen)
{
	struct linli_query q = {.size = sizeof q, .dataset = "incidents", .limit = 1000};
	struct listing l = {.rows = api->rec_new_array(), .who = req->caller, .ctx = ctx};
	int rc = wf_case_filters(&wcase, req, "grid list [status=STATE] [scope=PATH]", &l.status,
				 &q.scope, err, errlen);
	if (rc) {
		api->rec_free(l.rows);
		return rc;
	}
	char cursor[LINLI_CURSOR_MAX] = "";
	do {
		q.cursor = cursor;
		rc = api->store_scan(ctx, &q, list_row, &l, cursor);
		if (rc < 0) {
			snprintf(err, errlen, "%s", api->store_last_error(ctx));
			api->rec_free(l.rows);
			return rc;
		}
	} while (cursor[0]);
	*reply = l.rows;
	return 0;
}

static int cmd_show(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		    char *err, size_t errlen)
{
	if (req->argc != 1) {
		snprintf(err, errlen, "usage: grid show ID");
		return LINLI_EINVAL;
	}
	char scope[LINLI_SCOPE_MAX + 1];
	linli_record *c = NULL;
	int rc = load_case(ctx, req->argv[0], &c, scope, err, errlen);
	if (rc)
		return rc;
	if ((rc = grid_worker_may(ctx, req->caller, scope, err, errlen))) {
		api->rec_free(c);
		return rc;
	}
	char st[32];
	snprintf(st, sizeof st, "%s", state_of(c));
	if ((rc = wf_case_show(&wcase, ctx, c, req->argv[0], scope, st, err, errlen))) {
		api->rec_free(c);
		return rc;
	}
	*reply = c;
	return 0;
}

static int cmd_table(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		     char *err, size_t errlen)
{
	(void)ctx, (void)req, (void)err, (void)errlen;
	return wf_case_table(&wcase, reply);
}

/* ---- kpi: the days of a period summed ---- */

enum { BY_NONE, BY_GRID, BY_COMMUNITY, BY_STREET, BY_HANDLER, BY_CATEGORY };
static const char *const by_names[] = {"", "grid", "community", "street", "handler", "category"};

struct kpi_group {
	char key[LINLI_SCOPE_MAX + 1];
	int64_t count[K_COUNTS], ms[S_STAGES], n[S_STAGES];
};

struct kpi_sum {
	int by;
	struct kpi_group total, *v;
	size_t n, cap;
	const struct linli_caller *who;
	struct worker_cache workers;
};

static void group_add(struct kpi_group *g, const linli_record *r)
{
	int64_t v;
	for (int i = 0; i < K_COUNTS; i++)
		if (api->rec_get_int(r, kpi_counts[i], &v) == 0)
			g->count[i] += v;
	for (int i = 0; i < S_STAGES; i++) {
		if (api->rec_get_int(r, kpi_stage_ms[i], &v) == 0)
			g->ms[i] += v;
		if (api->rec_get_int(r, kpi_stage_n[i], &v) == 0)
			g->n[i] += v;
	}
}

/* The group key of a row: its grid path, the path `up` segments above it, or a field. */
static void group_key(const struct kpi_sum *s, const struct linli_row *row, char *key, size_t len)
{
	if (s->by == BY_HANDLER || s->by == BY_CATEGORY) {
		snprintf(key, len, "%s",
			 str_or(row->record, s->by == BY_HANDLER ? "handler" : "category", "-"));
		return;
	}
	snprintf(key, len, "%s", row->scope);
	for (int up = s->by == BY_STREET ? 2 : s->by == BY_COMMUNITY ? 1 : 0; up > 0; up--) {
		char *slash = strrchr(key, '/');
		if (slash)
			*slash = '\0';
	}
}

static int kpi_row(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	struct kpi_sum *s = ud;
	char e[8];
	if (grid_worker_may_cached(ctx, s->who, row->scope, &s->workers, e, sizeof e))
		return 0; /* a grid worker counts only their grids */
	group_add(&s->total, row->record);
	if (s->by == BY_NONE)
		return 0;
	char key[LINLI_SCOPE_MAX + 1];
	group_key(s, row, key, sizeof key);
	size_t i = 0;
	while (i < s->n && strcmp(s->v[i].key, key))
		i++;
	if (i == s->n) {
		if (s->n == s->cap) {
			size_t cap = s->cap ? s->cap * 2 : 16;
			struct kpi_group *v = realloc(s->v, cap * sizeof *v);
			if (!v)
				return LINLI_ENOMEM;
			s->v = v, s->cap = cap;
		}
		memset(&s->v[i], 0, sizeof s->v[i]);
		snprintf(s->v[i].key, sizeof s->v[i].key, "%s", key);
		s->n++;
	}
	group_add(&s->v[i], row->record);
	return 0;
}

static int group_cmp(const void *a, const void *b)
{
	return strcmp(((const struct kpi_group *)a)->key, ((const struct kpi_group *)b)->key);
}

/* The counters, 结案率 (closed / filed), 按期结案率 (on time / closed), mean working ms per
 * stage; a rate or mean without a denominator is absent. */
static void group_put(linli_record *m, const struct kpi_group *g)
{
	for (int i = 0; i < K_COUNTS; i++)
		api->rec_set_int(m, kpi_counts[i], g->count[i]);
	if (g->count[K_FILED])
		api->rec_set_float(m, "close_rate",
				   (double)g->count[K_CLOSED] / (double)g->count[K_FILED]);
	if (g->count[K_CLOSED])
		api->rec_set_float(m, "on_time_rate",
				   (double)g->count[K_ON_TIME] / (double)g->count[K_CLOSED]);
	for (int i = 0; i < S_STAGES; i++) {
		char key[32];
		snprintf(key, sizeof key, "mean_%s_ms", kpi_stages[i]);
		if (g->n[i])
			api->rec_set_int(m, key, g->ms[i] / g->n[i]);
	}
}

/* "YYYY-MM-DD", a day that exists, as YYYYMMDD; -1 when not. */
static int64_t parse_day(const char *s)
{
	int y, m, d, n = 0;
	if (strlen(s) != 10 || sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 || n != 10 ||
	    s[4] != '-' || s[7] != '-' || y < 1000 || m < 1 || m > 12 || d < 1)
		return -1;
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (d > mdays[m - 1] + (m == 2 && leap))
		return -1;
	for (int i = 0; i < 10; i++)
		if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
			return -1;
	return y * 10000LL + m * 100 + d;
}

static void day_text(int64_t day, char *buf, size_t len)
{
	snprintf(buf, len, "%04lld-%02lld-%02lld", (long long)(day / 10000),
		 (long long)(day / 100 % 100), (long long)(day % 100));
}

#define KPI_USAGE                                                                                  \
	"usage: grid kpi [FROM [TO]] [by=grid|community|street|handler|category] [scope=PATH] "    \
	"(dates YYYY-MM-DD; default: this month)"

/* The KPIs of `grid kpi ARGS` and of GET /api/v1/apps/grid/kpi, acting as `who`. */
static int kpi_run(linli_ctx *ctx, const struct linli_caller *who, int argc,
		   const char *const *argv, linli_record **reply, char *err, size_t errlen)
{
	struct kpi_sum s = {.who = who};
	const char *scope = NULL, *dates[2] = {NULL, NULL};
	int n_dates = 0;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (!strncmp(a, "by=", 3)) {
			s.by = -1;
			for (int b = BY_GRID; b <= BY_CATEGORY; b++)
				if (!strcmp(a + 3, by_names[b]))
					s.by = b;
			if (s.by < 0) {
				snprintf(
				    err, errlen,
				    "kpi: '%s': by is one of grid, community, street, handler, "
				    "category",
				    a);
				return LINLI_EINVAL;
			}
		} else if (!strncmp(a, "scope=", 6) && a[6])
			scope = a + 6;
		else if (!strchr(a, '=') && n_dates < 2)
			dates[n_dates++] = a;
		else {
			snprintf(err, errlen, "%s ('%s': unknown argument)", KPI_USAGE, a);
			return LINLI_EINVAL;
		}
	}
	struct linli_tm t = {.size = sizeof t};
	int rc = api->time_local(ctx, api->time_now_ms(), &t);
	if (rc) {
		snprintf(err, errlen, "kpi: the node's local date: %s", linli_strerror(rc));
		return rc;
	}
	int64_t today = t.year * 10000LL + t.month * 100 + t.day;
	int64_t from = today / 100 * 100 + 1, to = today / 100 * 100 + 31;
	for (int i = 0; i < n_dates; i++) {
		int64_t d = parse_day(dates[i]);
		if (d < 0) {
			snprintf(err, errlen, "kpi: %s '%s' is not a date YYYY-MM-DD",
				 i ? "TO" : "FROM", dates[i]);
			return LINLI_EINVAL;
		}
		if (i)
			to = d;
		else
			from = d, to = today;
	}
	if (from > to) {
		char f[16], e[16];
		day_text(from, f, sizeof f);
		day_text(to, e, sizeof e);
		snprintf(err, errlen, "kpi: FROM %s is after TO %s%s", f, e,
			 n_dates == 1 ? " (today: TO defaults to it)" : "");
		return LINLI_EINVAL;
	}
	char lo[16], hi[16];
	snprintf(lo, sizeof lo, "%lld", (long long)from);
	snprintf(hi, sizeof hi, "%lld", (long long)to);
	struct linli_range range[] = {{"day", ">=", lo}, {"day", "<=", hi}};
	struct linli_query q = {.size = sizeof q,
				.dataset = "incident_kpis",
				.scope = scope,
				.limit = LINLI_SCAN_MAX,
				.range = range,
				.n_range = 2};
	char cursor[LINLI_CURSOR_MAX] = "";
	do {
		q.cursor = cursor;
		rc = api->store_scan(ctx, &q, kpi_row, &s, cursor);
	} while (rc >= 0 && cursor[0]);
	if (rc < 0) {
		snprintf(err, errlen, "kpi: %s",
			 rc == LINLI_ENOMEM ? "out of memory" : api->store_last_error(ctx));
		free(s.v);
		return rc;
	}
	linli_record *r = api->rec_new(), *m, *arr;
	day_text(from, lo, sizeof lo);
	day_text(to, hi, sizeof hi);
	api->rec_set_str(r, "from", lo);
	api->rec_set_str(r, "to", hi);
	if (scope)
		api->rec_set_str(r, "scope", scope);
	api->rec_set_map(r, "total", &m);
	group_put(m, &s.total);
	if (s.by != BY_NONE) {
		api->rec_set_str(r, "by", by_names[s.by]);
		if (s.n)
			qsort(s.v, s.n, sizeof *s.v, group_cmp);
		api->rec_set_array(r, "groups", &arr);
		for (size_t i = 0; i < s.n; i++) {
			api->arr_push_map(arr, &m);
			api->rec_set_str(m, "key", s.v[i].key);
			group_put(m, &s.v[i]);
		}
	}
	free(s.v);
	*reply = r;
	return 0;
}

static int cmd_kpi(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply, char *err,
		   size_t errlen)
{
	return kpi_run(ctx, req->caller, req->argc, req->argv, reply, err, errlen);
}

/*
 * GET /api/v1/apps/grid/kpi?from=YYYY-MM-DD&to=YYYY-MM-DD&by=…&scope=PATH: the
 * console's `grid kpi` for a dashboard, acting as the API key (its scope
 * bounds what is counted). Unknown parameters are refused, as unknown words are.
 */
static int route_kpi(linli_ctx *ctx, const struct linli_http_req *req, linli_record **reply,
		     int *status, char *err, size_t errlen)
{
	(void)status;
	static const char *const names[] = {"from", "to", "by", "scope"};
	char words[4][LINLI_SCOPE_MAX + 8];
	const char *argv[4];
	int argc = 0;
	const char *v;
	size_t nk = req->query ? api->rec_count(req->query) : 0;
	for (size_t i = 0; i < nk; i++) {
		const char *key = "";
		bool known = false;
		api->rec_key(req->query, i, &key);
		for (size_t j = 0; j < 4; j++)
			known |= strcmp(key, names[j]) == 0;
		if (!known) {
			snprintf(err, errlen,
				 "kpi: unknown parameter '%s' (it takes from, to, by, scope)", key);
			return LINLI_EINVAL;
		}
	}
	if (api->rec_get_str(req->query, "to", &v, NULL) == 0 &&
	    api->rec_get_str(req->query, "from", &v, NULL) != 0) {
		snprintf(err, errlen, "kpi: 'to' needs 'from'");
		return LINLI_EINVAL;
	}
	for (size_t j = 0; j < 4; j++) {
		if (!req->query || api->rec_get_str(req->query, names[j], &v, NULL) != 0)
			continue;
		if (j < 2)
			snprintf(words[argc], sizeof words[argc], "%s", v);
		else
			snprintf(words[argc], sizeof words[argc], "%s=%s", names[j], v);
		argv[argc] = words[argc];
		argc++;
	}
	return kpi_run(ctx, req->caller, argc, argv, reply, err, errlen);
}

/* ---- overdue: the cases past 80% (warning) or 100% (overdue) of their step's limit ---- */

struct due {
	char id[LINLI_ID_MAX + 1], scope[LINLI_SCOPE_MAX + 1], status[32];
	int64_t deadline, pct; /* working time spent of the step's limit, in % */
};

struct overdue {
	struct due *v;
	size_t n, cap;
	int64_t now;
	const struct linli_caller *who;
	struct worker_cache workers;
};

static int overdue_row(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	struct overdue *o = ud;
	int64_t started, deadline, spent, limit;
	char e[256];
	if (api->rec_get_time(row->record, "step_deadline", &deadline) ||
	    grid_worker_may_cached(ctx, o->who, row->scope, &o->workers, e, sizeof e))
		return 0;
	if (deadline <= o->now)
		spent = limit = 1; /* past the deadline: overdue whatever the calendar says */
	else {
		if (api->rec_get_time(row->record, "step_started", &started) || started >= deadline)
			return 0;
		const struct wf_cal *cal = calendar(ctx, row->scope, o->now);
		struct wf_clock clk = {tm_local, tm_from_local, ctx};
		if (wf_cal_between(cal, &clk, started, deadline, NULL, 0, &limit, NULL, e,
				   sizeof e) ||
		    wf_cal_between(cal, &clk, started, o->now, NULL, 0, &spent, NULL, e,
				   sizeof e) ||
		    limit <= 0 || spent * 5 < limit * 4)
			return 0;
	}
	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 16;
		struct due *v = realloc(o->v, cap * sizeof *v);
		if (!v)
			return LINLI_ENOMEM;
		o->v = v, o->cap = cap;
	}
	struct due *d = &o->v[o->n++];
	snprintf(d->id, sizeof d->id, "%s", row->id);
	snprintf(d->scope, sizeof d->scope, "%s", row->scope);
	snprintf(d->status, sizeof d->status, "%s", state_of(row->record));
	d->deadline = deadline;
	d->pct = deadline <= o->now ? 100 : spent * 100 / limit;
	return 0;
}

static int due_cmp(const void *a, const void *b)
{
	const struct due *x = a, *y = b;
	return x->deadline < y->deadline   ? -1
	       : x->deadline > y->deadline ? 1
					   : strcmp(x->id, y->id);
}

static int cmd_overdue(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		       char *err, size_t errlen)
{
	const char *scope = NULL;
	for (int i = 0; i < req->argc; i++) {
		if (strncmp(req->argv[i], "scope=", 6) || !req->argv[i][6]) {
			snprintf(err, errlen,
				 "usage: grid overdue [scope=PATH] ('%s': unknown argument)",
				 req->argv[i]);
			return LINLI_EINVAL;
		}
		scope = req->argv[i] + 6;
	}
	struct overdue o = {.now = api->time_now_ms(), .who = req->caller};
	/* Every case with a running clock: the range filter reads the step_deadline index,
	 * so closed and void cases (no deadline) are never read. */
	struct linli_range range[] = {{"step_deadline", ">", "0"}};
	struct linli_query q = {.size = sizeof q,
				.dataset = "incidents",
				.scope = scope,
				.limit = 1000,
				.range = range,
				.n_range = 1};
	char cursor[LINLI_CURSOR_MAX] = "";
	int rc;
	do {
		q.cursor = cursor;
		rc = api->store_scan(ctx, &q, overdue_row, &o, cursor);
	} while (rc >= 0 && cursor[0]);
	if (rc < 0) {
		snprintf(err, errlen, "overdue: %s",
			 rc == LINLI_ENOMEM ? "out of memory" : api->store_last_error(ctx));
		free(o.v);
		return rc;
	}
	if (o.n)
		qsort(o.v, o.n, sizeof *o.v, due_cmp);
	linli_record *arr = api->rec_new_array(), *m;
	for (size_t i = 0; i < o.n; i++) {
		api->arr_push_map(arr, &m);
		api->rec_set_str(m, "id", o.v[i].id);
		api->rec_set_str(m, "scope", o.v[i].scope);
		api->rec_set_str(m, "status", o.v[i].status);
		api->rec_set_time(m, "step_deadline", o.v[i].deadline);
		api->rec_set_str(m, "level", o.v[i].pct >= 100 ? "overdue" : "warning");
		if (o.v[i].pct < 100)
			api->rec_set_int(m, "percent", o.v[i].pct);
	}
	free(o.v);
	*reply = arr;
	return 0;
}

/* ---- the big screen's panel: open cases by stage, overdue, today's and the month's KPIs ---- */

enum { SS_INTAKE, SS_RESPOND, SS_PROCESS, SS_CHECK, SS_SHELVED, SS_STAGES };
static const char *const screen_stages[SS_STAGES] = {"intake", "respond", "process", "check",
						     "shelved"};
/* The stored statuses of an open case (first-workflow ones included: state_of reads them). */
static const char *const open_statuses[] = {
    "reported",	 "verifying", "filed",	  "returned", "accepted", "dispatched", "processing",
    "extension", "rework",    "handling", "feedback", "checking", "shelved"};

struct sgrid {
	char key[LINLI_SCOPE_MAX + 1];
	int64_t open, overdue, stage[SS_STAGES];
	int64_t reported_today, closed_today;
	int64_t filed, closed, on_time; /* the month's */
};

struct sboard {
	struct sgrid total, *v;
	size_t n, cap;
	int64_t now;
	const struct linli_caller *who;
	struct worker_cache workers;
};

static struct sgrid *sboard_grid(struct sboard *b, const char *key)
{
	for (size_t i = 0; i < b->n; i++)
		if (!strcmp(b->v[i].key, key))
			return &b->v[i];
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 16;
		struct sgrid *v = realloc(b->v, cap * sizeof *v);
		if (!v)
			return NULL;
		b->v = v, b->cap = cap;
	}
	struct sgrid *g = &b->v[b->n++];
	memset(g, 0, sizeof *g);
	snprintf(g->key, sizeof g->key, "%s", key);
	return g;
}

static int screen_stage(const char *state)
{
	if (!strcmp(state, "shelved"))
		return SS_SHELVED;
	int s = stage_of(state);
	return s == S_INTAKE	? SS_INTAKE
	       : s == S_RESPOND ? SS_RESPOND
	       : s == S_PROCESS ? SS_PROCESS
	       : s == S_CHECK	? SS_CHECK
				: -1;
}

static int screen_row(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	struct sboard *b = ud;
	char e[8];
	if (grid_worker_may_cached(ctx, b->who, row->scope, &b->workers, e, sizeof e))
		return 0; /* a grid worker sees only their grids */
	int stage = screen_stage(state_of(row->record));
	if (stage < 0)
		return 0; /* closed or void (a first-workflow record read otherwise) */
	struct sgrid *g = sboard_grid(b, row->scope);
	if (!g)
		return LINLI_ENOMEM;
	int64_t due;
	int overdue = api->rec_get_time(row->record, "step_deadline", &due) == 0 && due <= b->now;
	g->open++, b->total.open++;
	g->stage[stage]++, b->total.stage[stage]++;
	g->overdue += overdue, b->total.overdue += overdue;
	return 0;
}

static int64_t kpi_int(const linli_record *r, const char *key)
{
	int64_t v = 0;
	api->rec_get_int(r, key, &v);
	return v;
}

/* The KPIs of `argv` (kpi_run's words) by grid into the board: today's or the month's. */
static int screen_kpis(linli_ctx *ctx, struct sboard *b, int argc, const char *const *argv,
		       bool today, char *err, size_t errlen)
{
	linli_record *r = NULL, *arr = NULL, *m = NULL;
	int rc = kpi_run(ctx, b->who, argc, argv, &r, err, errlen);
	if (rc)
		return rc;
	if (api->rec_get_array(r, "groups", &arr) == 0)
		for (size_t i = 0; i < api->rec_count(arr); i++) {
			const char *key;
			if (api->arr_get_map(arr, i, &m) || api->rec_get_str(m, "key", &key, NULL))
				continue;
			struct sgrid *g = sboard_grid(b, key);
			if (!g) {
				api->rec_free(r);
				return LINLI_ENOMEM;
			}
			struct sgrid *t = &b->total;
			if (today) {
				int64_t rep = kpi_int(m, "reported"), cl = kpi_int(m, "closed");
				g->reported_today += rep, t->reported_today += rep;
				g->closed_today += cl, t->closed_today += cl;
			} else {
				int64_t f = kpi_int(m, "filed"), cl = kpi_int(m, "closed"),
					ot = kpi_int(m, "closed_on_time");
				g->filed += f, t->filed += f;
				g->closed += cl, t->closed += cl;
				g->on_time += ot, t->on_time += ot;
			}
		}
	api->rec_free(r);
	return 0;
}

static int sgrid_cmp(const void *a, const void *b)
{
	return strcmp(((const struct sgrid *)a)->key, ((const struct sgrid *)b)->key);
}

/* One grid's (or the total's) numbers; a rate without a denominator is absent. */
static void sgrid_put(linli_record *m, const struct sgrid *g)
{
	linli_record *st;
	api->rec_set_int(m, "open", g->open);
	api->rec_set_int(m, "overdue", g->overdue);
	api->rec_set_map(m, "by_stage", &st);
	for (int i = 0; i < SS_STAGES; i++)
		api->rec_set_int(st, screen_stages[i], g->stage[i]);
	api->rec_set_int(m, "reported_today", g->reported_today);
	api->rec_set_int(m, "closed_today", g->closed_today);
	api->rec_set_int(m, "month_filed", g->filed);
	api->rec_set_int(m, "month_closed", g->closed);
	api->rec_set_int(m, "month_closed_on_time", g->on_time);
	if (g->filed)
		api->rec_set_float(m, "close_rate", (double)g->closed / (double)g->filed);
	if (g->closed)
		api->rec_set_float(m, "on_time_rate", (double)g->on_time / (double)g->closed);
}

/*
 * GET /api/v1/apps/grid/screen: the big screen's incidents panel, acting as the caller
 * (its jurisdiction bounds what is counted; a grid worker counts their grids): open cases by
 * stage, those past their step's deadline, today's reported and closed, the month's 结案率
 * (closed / filed) and 按期结案率 (closed on time / closed) from incident_kpis — in total
 * and per grid. Counts only: no case's title, reporter or place.
 */
static int route_screen(linli_ctx *ctx, const struct linli_http_req *req, linli_record **reply,
			int *status, char *err, size_t errlen)
{
	(void)status;
	int qrc = plugcmd_no_query(api, req, "screen", err, errlen);
	if (qrc)
		return qrc;
	struct sboard b = {.now = api->time_now_ms(), .who = req->caller};
	int rc = 0;
	for (size_t i = 0; !rc && i < PLUGCMD_N(open_statuses); i++) {
		struct linli_where w = {"status", open_statuses[i]};
		struct linli_query q = {.size = sizeof q,
					.dataset = "incidents",
					.where = &w,
					.n_where = 1,
					.limit = LINLI_SCAN_MAX};
		char cursor[LINLI_CURSOR_MAX] = "";
		do {
			q.cursor = cursor;
			rc = api->store_scan(ctx, &q, screen_row, &b, cursor);
		} while (rc >= 0 && cursor[0]);
		if (rc < 0)
			snprintf(err, errlen, "screen: %s",
				 rc == LINLI_ENOMEM ? "out of memory" : api->store_last_error(ctx));
		else
			rc = 0;
	}
	struct linli_tm t = {.size = sizeof t};
	if (!rc && (rc = api->time_local(ctx, b.now, &t)) != 0)
		snprintf(err, errlen, "screen: the node's local date: %s", linli_strerror(rc));
	char day[16];
	snprintf(day, sizeof day, "%04d-%02d-%02d", t.year, t.month, t.day);
	const char *today[] = {day, day, "by=grid"}, *month[] = {"by=grid"};
	if (!rc)
		rc = screen_kpis(ctx, &b, 3, today, true, err, errlen);
	if (!rc)
		rc = screen_kpis(ctx, &b, 1, month, false, err, errlen);
	if (rc) {
		free(b.v);
		return rc;
	}
	if (b.n)
		qsort(b.v, b.n, sizeof *b.v, sgrid_cmp);
	linli_record *r = api->rec_new(), *m, *arr;
	api->rec_set_str(r, "scope", req->caller && req->caller->scope ? req->caller->scope : "");
	api->rec_set_str(r, "day", day);
	api->rec_set_map(r, "total", &m);
	sgrid_put(m, &b.total);
	api->rec_set_array(r, "grids", &arr);
	for (size_t i = 0; i < b.n; i++) {
		api->arr_push_map(arr, &m);
		api->rec_set_str(m, "grid", b.v[i].key);
		sgrid_put(m, &b.v[i]);
	}
	free(b.v);
	*reply = r;
	return 0;
}

/* ---- escalation: warned once at 80% of a step, 督办 at 100% and each further period ---- */

static int64_t int_or(const linli_record *r, const char *key, int64_t dflt)
{
	int64_t v;
	return api->rec_get_int(r, key, &v) == 0 ? v : dflt;
}

static int64_t time_or(const linli_record *r, const char *key, int64_t dflt)
{
	int64_t v;
	return api->rec_get_time(r, key, &v) == 0 ? v : dflt;
}

/* The working ms from a to b in the calendar of `scope`; -1 when it cannot be computed. */
static int64_t worked_between(linli_ctx *ctx, const char *scope, int64_t a, int64_t b, int64_t now)
{
	if (b <= a)
		return 0;
	struct wf_clock clk = {tm_local, tm_from_local, ctx};
	char e[256];
	int64_t w;
	return wf_cal_between(calendar(ctx, scope, now), &clk, a, b, NULL, 0, &w, NULL, e, sizeof e)
		   ? -1
		   : w;
}

/* The tier above a case's community: its street's path (a grid path less two segments). */
static void tier_above(const char *scope, char *out, size_t len)
{
	snprintf(out, len, "%s", scope);
	for (int up = 0; up < 2; up++) {
		char *slash = strrchr(out, '/');
		if (slash)
			*slash = '\0';
	}
}

/* What one tick writes into a case: the fields of a warning or of the 督办 made. */
struct esc_write {
	int64_t deadline; /* the deadline the tick looked at: nothing is written if it changed */
	int64_t now, periods, supervisions, raised; /* raised: -1 unless an answer counts one */
	int warn;
	int64_t next;	   /* when the tick needs to look at the case again (0: each tick) */
	const char *alarm; /* the alarm's id (an answer), or NULL */
};

static int esc_step(linli_ctx *ctx, const char *id, linli_record **rec, void *ud, char *err,
		    size_t errlen)
{
	(void)ctx, (void)id, (void)err, (void)errlen;
	const struct esc_write *w = ud;
	if (!*rec)
		return LINLI_STORE_KEEP;
	if (w->raised >= 0) { /* an alarm raised: counted whatever the step */
		api->rec_set_int(*rec, "alarm_raised", int_or(*rec, "alarm_raised", 0) + 1);
		if (w->alarm)
			api->rec_set_str(*rec, "alarm", w->alarm);
		return 0;
	}
	if (time_or(*rec, "step_deadline", -1) != w->deadline)
		return LINLI_STORE_KEEP; /* moved since the tick read it */
	if (w->warn)
		api->rec_set_time(*rec, "warned_for", w->deadline);
	if (w->periods) {
		api->rec_set_time(*rec, "overdue_for", w->deadline);
		api->rec_set_int(*rec, "overdue_periods", w->periods);
		api->rec_set_time(*rec, "overdue_at", w->now);
		api->rec_set_int(*rec, "supervisions", w->supervisions);
		api->rec_set_str(*rec, "escalated_to", "street");
	}
	api->rec_set_time(*rec, "escalate_for", w->deadline);
	api->rec_set_time(*rec, "escalate_at", w->next);
	return 0;
}

/* A 督办 alarm raised: counted in the case, whatever its step now. */
static void on_raised(linli_ctx *ctx, const struct alarmreq_fly *f, int status,
		      const char *alarm)
{
	if (status < 0)
		return; /* logged; the next tick asks again */
	struct esc_write w = {.raised = 1, .alarm = alarm};
	if (api->store_update(ctx, "incidents", f->scope, f->id, esc_step, &w))
		api->log(ctx, LINLI_LOG_WARN, "case %s: alarm %s not recorded: %s", f->id,
			 alarm ? alarm : "-", api->store_last_error(ctx));
}

/* Raise the alarm of one 督办 of case `id` (alarmreq/raise; the answer counts it). */
static int raise_alarm(linli_ctx *ctx, const char *scope, const char *id, const linli_record *c,
		       int64_t n, const char *to)
{
	char src[LINLI_ID_MAX + 32], details[512];
	snprintf(src, sizeof src, "record:incidents/%s", id);
	snprintf(details, sizeof details, "case %s '%.200s' overdue (%s): 督办 %lld to %s", id,
		 str_or(c, "title", ""), state_of(c), (long long)n, to);
	linli_record *p = api->rec_new();
	if (!p)
		return LINLI_ENOMEM;
	api->rec_set_str(p, "type", "incident_overdue");
	api->rec_set_str(p, "source", src);
	api->rec_set_str(p, "severity", "major");
	api->rec_set_str(p, "details", details);
	api->rec_set_str(p, "incident", id);
	int rc = alarmreq_fly_raise(&G->fly, ctx, scope, id, n, 0, p);
	api->rec_free(p);
	return rc;
}

#define ESC_MAX_PERIODS 100 /* 督办 recorded for one case in one tick, at most */

/*
 * One case at `now`: past 80% of its step's working time, a warning once a step; past its
 * deadline, a 督办 for each period (the category's escalate_minutes, else the step's limit)
 * not recorded yet, written with the count before any alarm is raised; then an alarm for
 * each 督办 not raised yet (escalate_alarm, true unless false). All as the plugin; state
 * in the case (warned_for, overdue_for, overdue_periods, supervisions, alarm_raised), so a
 * restart neither repeats nor misses one.
 */
static void escalate_case(linli_ctx *ctx, const char *scope, const char *id, int64_t now)
{
	linli_record *c = NULL;
	if (api->store_get(ctx, "incidents", scope, id, &c, NULL))
		return;
	int64_t started = time_or(c, "step_started", -1),
		deadline = time_or(c, "step_deadline", -1);
	int64_t sup = int_or(c, "supervisions", 0), raised = int_or(c, "alarm_raised", 0);
	char st[32], to[LINLI_SCOPE_MAX + 1], note[512];
	snprintf(st, sizeof st, "%s", state_of(c));
	tier_above(scope, to, sizeof to);
	if (started < 0 || deadline < 0 || now < started)
		goto out; /* no clock, or the test clock is behind the case (a restart) */
	const struct wf_cal *cal = calendar(ctx, scope, now);
	struct wf_clock clk = {tm_local, tm_from_local, ctx};
	char e[256];
	struct limits l;
	limits_of(scope, str_or(c, "category", "other"),
		  strcmp(str_or(c, "priority", ""), "urgent") == 0, cal, &l);
	struct esc_write w = {.deadline = deadline, .now = now, .raised = -1};
	/* the step's limit: verifying and filed go on with the intake limit of the report */
	int shared = !strcmp(st, "verifying") || !strcmp(st, "filed");
	int64_t limit = shared ? l.file : worked_between(ctx, scope, started, deadline, now);
	if (deadline > now) {
		w.next = deadline;
		if (time_or(c, "warned_for", -1) == deadline)
			goto look;
		int64_t left = worked_between(ctx, scope, now, deadline, now), spent = limit - left;
		if (limit <= 0 || left < 0) {
			w.next = 0;
			goto look;
		}
		if (spent * 5 < limit * 4) { /* look again at 80% */
			int64_t need = (limit * 4 + 4) / 5 - spent;
			if (wf_cal_add(cal, &clk, now, need > 0 ? need : 1, NULL, 0, &w.next, NULL,
				       e, sizeof e))
				w.next = 0;
			goto look;
		}
		snprintf(note, sizeof note, "warning: %lld%% of the step's time limit used",
			 (long long)(spent * 100 / limit));
		w.warn = 1;
		if (record_move(ctx, scope, id, "warn", st, st, "plugin:grid", now, note, deadline,
				spent) ||
		    api->store_update(ctx, "incidents", scope, id, esc_step, &w))
			api->log(ctx, LINLI_LOG_WARN, "case %s: warning not recorded: %s", id,
				 api->store_last_error(ctx));
		goto alarm;
	}
	int64_t period = l.escalate > 0 ? l.escalate : limit;
	int64_t past = worked_between(ctx, scope, deadline, now, now);
	if (period <= 0 || past < 0)
		goto look; /* w.next 0: each tick */
	int64_t due = 1 + past / period;
	int64_t done =
	    time_or(c, "overdue_for", -1) == deadline ? int_or(c, "overdue_periods", 0) : 0;
	int capped = due > done + ESC_MAX_PERIODS;
	if (capped)
		due = done + ESC_MAX_PERIODS; /* the rest at the next tick */
	/* the next period begins `due` periods of working time past the deadline */
	if (capped || wf_cal_add(cal, &clk, deadline, (due > done ? due : done) * period, NULL, 0,
				 &w.next, NULL, e, sizeof e))
		w.next = 0;
	if (due <= done)
		goto look;
	int rc = 0;
	for (int64_t p = done + 1; !rc && p <= due; p++) {
		snprintf(note, sizeof note,
			 "督办 %lld to %s: overdue in %s since the step's deadline (period %lld)",
			 (long long)(sup + p - done), to, st, (long long)p);
		rc = record_move(ctx, scope, id, "supervise", st, st, "plugin:grid", now, note,
				 deadline, -1);
	}
	w.periods = due;
	w.supervisions = sup + due - done;
	if (rc || api->store_update(ctx, "incidents", scope, id, esc_step, &w)) {
		api->log(ctx, LINLI_LOG_WARN, "case %s: 督办 not recorded: %s", id,
			 api->store_last_error(ctx));
		goto out;
	}
	sup = w.supervisions;
	goto alarm;
look: /* nothing to record: when to look again, if it changed */
	if (time_or(c, "escalate_for", -1) != deadline || time_or(c, "escalate_at", -1) != w.next)
		api->store_update(ctx, "incidents", scope, id, esc_step, &w);
alarm:
	if (l.alarm)
		for (int64_t n = raised + (int64_t)alarmreq_in_flight(&G->fly, scope, id) + 1; n <= sup;
		     n++)
			if (raise_alarm(ctx, scope, id, c, n, to))
				break;
out:
	api->rec_free(c);
}

struct esc_scan {
	struct esc_case {
		char id[LINLI_ID_MAX + 1], scope[LINLI_SCOPE_MAX + 1];
	} * v;
	size_t n, cap;
	int64_t now;
};

/* Does the category raise an alarm at each 督办 (escalate_alarm, true when absent)? */
static int alarm_wanted(const char *scope, const char *category)
{
	const struct wf_ref_entry *e =
	    wf_ref_deepest(&G->categories, scope, wf_ref_match_id, category);
	bool b;
	return !e || api->rec_get_bool(e->rec, "escalate_alarm", &b) != 0 || b;
}

static int esc_cmp(const void *a, const void *b)
{
	const struct esc_case *x = a, *y = b;
	int c = strcmp(x->scope, y->scope);
	return c ? c : strcmp(x->id, y->id);
}

static int esc_row(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	(void)ctx;
	struct esc_scan *s = ud;
	const linli_record *r = row->record;
	if (time_or(r, "step_started", -1) > s->now ||
	    (time_or(r, "escalate_for", -1) == time_or(r, "step_deadline", -1) &&
	     time_or(r, "escalate_at", 0) > s->now &&
	     (int_or(r, "alarm_raised", 0) >= int_or(r, "supervisions", 0) ||
	      !alarm_wanted(row->scope, str_or(r, "category", "other")))))
		return 0; /* nothing due before escalate_at, no alarm to raise */
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		struct esc_case *v = realloc(s->v, cap * sizeof *v);
		if (!v)
			return LINLI_ENOMEM;
		s->v = v, s->cap = cap;
	}
	snprintf(s->v[s->n].id, sizeof s->v[s->n].id, "%s", row->id);
	snprintf(s->v[s->n].scope, sizeof s->v[s->n].scope, "%s", row->scope);
	s->n++;
	return 0;
}

/* The escalation timer (each minute, and at once when the test clock moves). */
static void esc_tick(linli_ctx *ctx, void *ud)
{
	(void)ud;
	struct linli_tm tm = {.size = sizeof tm};
	if (api->time_local(ctx, api->time_now_ms(), &tm) == 0 && tm.year != G->checked_year)
		warn_next_year(ctx); /* a new year (or the test clock moved into one) */
	int64_t now = api->time_now_ms();
	/* every case with a running clock (closed, void and shelved ones have none) */
	struct linli_range range[] = {{"step_deadline", ">", "0"}};
	struct linli_query q = {
	    .size = sizeof q, .dataset = "incidents", .limit = 1000, .range = range, .n_range = 1};
	struct esc_scan s = {.now = now};
	char cursor[LINLI_CURSOR_MAX] = "";
	int rc;
	do {
		q.cursor = cursor;
		rc = api->store_scan(ctx, &q, esc_row, &s, cursor);
	} while (rc >= 0 && cursor[0]);
	if (rc < 0)
		api->log(ctx, LINLI_LOG_WARN, "escalation: %s",
			 rc == LINLI_ENOMEM ? "out of memory" : api->store_last_error(ctx));
	if (s.n) /* grid by grid: the calendar built for one grid serves its cases */
		qsort(s.v, s.n, sizeof *s.v, esc_cmp);
	for (size_t i = 0; i < s.n; i++)
		escalate_case(ctx, s.v[i].scope, s.v[i].id, now);
	free(s.v);
}

/* ---- supervised: the cases under 督办, for the tier above (and the community) ---- */

static int supervised_row(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	struct listing *l = ud;
	const char *st = state_of(row->record);
	char e[8];
	if (!strcmp(st, "closed") || !strcmp(st, "void") ||
	    grid_worker_may_cached(ctx, l->who, row->scope, &l->workers, e, sizeof e))
		return 0;
	linli_record *m;
	if (api->arr_push_map(l->rows, &m))
		return LINLI_ENOMEM;
	char to[LINLI_SCOPE_MAX + 1];
	tier_above(row->scope, to, sizeof to);
	api->rec_set_str(m, "id", row->id);
	api->rec_set_str(m, "scope", row->scope);
	api->rec_set_str(m, "to", to);
	api->rec_set_str(m, "status", st);
	api->rec_set_str(m, "category", str_or(row->record, "category", ""));
	api->rec_set_str(m, "title", str_or(row->record, "title", ""));
	api->rec_set_int(m, "supervisions", int_or(row->record, "supervisions", 0));
	int64_t t;
	if (api->rec_get_time(row->record, "overdue_at", &t) == 0)
		api->rec_set_time(m, "supervised_at", t);
	if (api->rec_get_time(row->record, "step_deadline", &t) == 0)
		api->rec_set_time(m, "step_deadline", t);
	const char *alarm = str_or(row->record, "alarm", NULL);
	if (alarm)
		api->rec_set_str(m, "alarm", alarm);
	return 0;
}

static int cmd_supervised(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
			  char *err, size_t errlen)
{
	struct linli_range range[] = {{"supervisions", ">", "0"}};
	struct linli_query q = {
	    .size = sizeof q, .dataset = "incidents", .limit = 1000, .range = range, .n_range = 1};
	for (int i = 0; i < req->argc; i++) {
		if (strncmp(req->argv[i], "scope=", 6) || !req->argv[i][6]) {
			snprintf(err, errlen,
				 "usage: grid supervised [scope=PATH] ('%s': unknown argument)",
				 req->argv[i]);
			return LINLI_EINVAL;
		}
		q.scope = req->argv[i] + 6;
	}
	struct listing l = {.rows = api->rec_new_array(), .who = req->caller, .ctx = ctx};
	char cursor[LINLI_CURSOR_MAX] = "";
	do {
		q.cursor = cursor;
		int rc = api->store_scan(ctx, &q, supervised_row, &l, cursor);
		if (rc < 0) {
			snprintf(err, errlen, "supervised: %s",
				 rc == LINLI_ENOMEM ? "out of memory" : api->store_last_error(ctx));
			api->rec_free(l.rows);
			return rc;
		}
	} while (cursor[0]);
	*reply = l.rows;
	return 0;
}

/* ---- init, fini ---- */

static const char *const move_verbs[] = {"verify", "file",    "dispatch", "accept", "return",
					 "extend", "approve", "feedback", "check",  "close",
					 "rework", "void",    "shelve",	  "resume"};

static int grid_init(linli_ctx *ctx, const struct linli_api *a)
{
	api = a;
	char err[256];
	if (wf_table_check(&table, err, sizeof err)) {
		api->set_error(ctx, "%s", err);
		return LINLI_EINVAL;
	}
	if (!(G = calloc(1, sizeof *G)))
		return LINLI_ENOMEM;
	wf_ref_init(&G->categories, api, "incident_categories");
	wf_ref_above(&G->categories);
	wcase = (struct wf_case){api, &table, "incident_moves", "incident"};
	G->fly = (struct alarmreq_flights){.api = api, .what = "case", .answered = on_raised};
	wf_ref_init(&G->calendars, api, "work_calendar");
	wf_ref_above(&G->calendars);
	err[0] = 0;
	static const struct plugcmd_cmd cmds[] = {
	    {"report", "GRID CATEGORY TITLE [FIELD=VALUE...]", "report a case in a grid", NULL,
	     cmd_report},
	    {"show", "ID", "a case, its history and allowed moves", "grid.read", cmd_show},
	    {"list", "[status=STATE] [scope=PATH]", "the cases within reach", "grid.read",
	     cmd_list},
	    {"table", "", "the workflow's moves and who may make them", "grid.read", cmd_table},
	    {"kpi", "[FROM [TO]] [by=grid|community|street|handler|category] [scope=PATH]",
	     "KPIs over a period: reported, filed, closed, 结案率, 按期结案率, reworks, mean "
	     "working time per stage",
	     "grid.read", cmd_kpi},
	    {"overdue", "[scope=PATH]",
	     "cases past 80% (warning) or 100% (overdue) of their step's time limit, earliest "
	     "deadline first",
	     "grid.read", cmd_overdue},
	    {"supervised", "[scope=PATH]",
	     "open cases under 督办 (overdue, told to the tier above), with their count and alarm",
	     "grid.read", cmd_supervised},
	};
	static const struct plugcmd_route routes[] = {
	    {"kpi", "GET", "kpi", "grid.read", route_kpi},
	    {"screen", "GET", "screen", "grid.read", route_screen}};
	int rc = plugcmd_register(api, ctx, actions, PLUGCMD_N(actions), cmds, PLUGCMD_N(cmds),
				  routes, PLUGCMD_N(routes), NULL, err, sizeof err);
	for (size_t i = 0; !rc && i < PLUGCMD_N(move_verbs); i++) {
		const char *v = move_verbs[i];
		rc = api->cmd_register(ctx, v,
				       !strcmp(v, "dispatch")  ? "ID HANDLER [NOTE...]"
				       : !strcmp(v, "approve") ? "ID DURATION [NOTE...]"
							       : "ID [NOTE...]",
				       "move a case (see grid table)", cmd_move, (void *)v);
	}
	/* the reporter's clock: the command's word is its handler's ud */
	if (!rc)
		rc = api->cmd_register(ctx, "await", "ID [WHY...]",
				       "stop a verifying or checking case's clock: the reporter is "
				       "awaited",
				       cmd_await, (void *)"await");
	if (!rc)
		rc = api->cmd_register(ctx, "answered", "ID [NOTE...]",
				       "the reporter answered: the case's clock runs on with the "
				       "working time that was left",
				       cmd_await, (void *)"answered");
	if (rc && !err[0])
		snprintf(err, sizeof err, "registering commands: %s", linli_strerror(rc));
	uint64_t id;
	if (!rc)
		rc = api->store_watch(ctx, "incident_categories", on_change, &G->categories, &id);
	if (!rc)
		rc = api->store_watch(ctx, "work_calendar", on_change, &G->calendars, &id);
	if (!rc)
		rc = api->serve(ctx, "incidentreq/report", on_report_request, NULL, &id);
	if (!rc)
		rc = api->timer_add(ctx, 1000, 60000, esc_tick, NULL, &id);
	if (rc) {
		api->set_error(ctx, "setting up: %s", err[0] ? err : linli_strerror(rc));
		free(G);
		G = NULL;
		return rc;
	}
	wf_ref_load(&G->categories, ctx);
	wf_ref_load(&G->calendars, ctx);
	warn_next_year(ctx);
	return 0;
}

static void grid_fini(linli_ctx *ctx, const struct linli_api *a)
{
	(void)ctx, (void)a;
	if (!G)
		return;
	wf_ref_clear(&G->categories);
	wf_ref_clear(&G->calendars);
	alarmreq_flights_free(&G->fly);
	free(G);
	G = NULL;
}

LINLI_PLUGIN(grid_init, grid_fini, .name = "grid", .version = "0.3.0", .family = "governance",
	     .description =
		 "Grid management: the incident workflow (report, verify, file, dispatch, "
		 "process, feedback, check, close) with deadlines in working time",
	     .capabilities = {"store.read:incidents", "store.write:incidents",
			      "store.read:incident_moves", "store.write:incident_moves",
			      "store.read:incident_kpis", "store.write:incident_kpis",
			      "store.read:incident_categories", "store.read:work_calendar",
			      "store.read:grid_workers", "bus.subscribe:incidentreq/report",
			      "bus.publish:alarmreq/raise", "bus.publish:alarmreq/clear"});
