/*
 * charging — the EV-charging plugin of the public-services family (充电桩,
 * plugins/charging/).
 *
 * Per connector: a charger (device class charger, a pile) reports each
 * connector's status with the event status_notification {connector, status,
 * error_code, meter_kwh}, the states as OCPP 1.6 StatusNotification names
 * them. The plugin keeps each connector's state in memory and checks every
 * change against the transition table of OCPP 1.6 (a wf_table, plugins/lib):
 * an illegal change is counted and logged, not applied. A repeat of the same
 * status only updates the error code.
 *
 * Sessions: a connector entering Charging, SuspendedEV or SuspendedEVSE from
 * another state opens a record of charging_sessions (state charging, the
 * meter at the start); leaving them closes it: completed (Finishing,
 * Available), failed (Faulted, with the error code) or stopped (Unavailable),
 * with energy_kwh from the meter and duration_s. Faulted raises
 * connector_faulted (major), the pile's overheat event charger_overheat
 * (critical), its fault event charger_fault (major), through alarms.
 * Utilisation per pile: the time its connectors spent charging over the time
 * they were watched. Commands (piles, sessions, stats) act as the caller.
 * Real chargers speak OCPP-J over WebSocket: that driver is not part of this
 * plugin; a driver maps StatusNotification.req onto the event.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linli/linli.h>

#include "alarmreq.h"
#include "plugcfg.h"
#include "plugcmd.h"
#include "wf_ref.h"
#include "wf_table.h"

static const struct linli_api *api;

enum atype { T_FAULTED, T_OVERHEAT, T_FAULT, T_N };
static const char *const type_names[T_N] = {"connector_faulted", "charger_overheat",
					    "charger_fault"};
static const int default_sev[T_N] = {1, 0, 1}; /* major, critical, major */

/* ---- the states of OCPP 1.6 and their legal changes ---- */

enum cs {
	S_AVAILABLE,
	S_PREPARING,
	S_CHARGING,
	S_SUSP_EVSE,
	S_SUSP_EV,
	S_FINISHING,
	S_RESERVED,
	S_UNAVAILABLE,
	S_FAULTED,
	S_N
};
static const char *const states[S_N] = {"Available",	 "Preparing",	"Charging",
					"SuspendedEVSE", "SuspendedEV", "Finishing",
					"Reserved",	 "Unavailable", "Faulted"};

/* OCPP 1.6, section 4.9 (StatusNotification): the verb of a change is its new state. */
#define M(f, t)                                                                                    \
	{                                                                                          \
#f, #t, #t, NULL                                                                   \
	}
static const struct wf_move moves[] = {
    M(Available, Preparing),	   M(Available, Charging),	  M(Available, SuspendedEV),
    M(Available, SuspendedEVSE),   M(Available, Reserved),	  M(Available, Unavailable),
    M(Available, Faulted),	   M(Preparing, Available),	  M(Preparing, Charging),
    M(Preparing, SuspendedEV),	   M(Preparing, SuspendedEVSE),	  M(Preparing, Finishing),
    M(Preparing, Faulted),	   M(Charging, Available),	  M(Charging, SuspendedEV),
    M(Charging, SuspendedEVSE),	   M(Charging, Finishing),	  M(Charging, Unavailable),
    M(Charging, Faulted),	   M(SuspendedEV, Available),	  M(SuspendedEV, Charging),
    M(SuspendedEV, SuspendedEVSE), M(SuspendedEV, Finishing),	  M(SuspendedEV, Unavailable),
    M(SuspendedEV, Faulted),	   M(SuspendedEVSE, Available),	  M(SuspendedEVSE, Charging),
    M(SuspendedEVSE, SuspendedEV), M(SuspendedEVSE, Finishing),	  M(SuspendedEVSE, Unavailable),
    M(SuspendedEVSE, Faulted),	   M(Finishing, Available),	  M(Finishing, Preparing),
    M(Finishing, Unavailable),	   M(Finishing, Faulted),	  M(Reserved, Available),
    M(Reserved, Preparing),	   M(Reserved, Unavailable),	  M(Reserved, Faulted),
    M(Unavailable, Available),	   M(Unavailable, Preparing),	  M(Unavailable, Charging),
    M(Unavailable, SuspendedEV),   M(Unavailable, SuspendedEVSE), M(Unavailable, Faulted),
    M(Faulted, Available),	   M(Faulted, Preparing),	  M(Faulted, Charging),
    M(Faulted, SuspendedEV),	   M(Faulted, SuspendedEVSE),	  M(Faulted, Finishing),
    M(Faulted, Reserved),	   M(Faulted, Unavailable),
};
#undef M
static const struct wf_table table = {"connector", "Available", states,
				      S_N,	   moves,	sizeof moves / sizeof moves[0]};

static double milli(double x)
{
	return (double)(int64_t)(x * 1000 + (x < 0 ? -0.5 : 0.5)) / 1000;
}

static bool in_session(int s)
{
	return s == S_CHARGING || s == S_SUSP_EV || s == S_SUSP_EVSE;
}

#define CONN_MAX 16
#define BUCKETS	 256
#define ERR_MAX	 32

struct conn {
	int state; /* -1: not heard yet */
	char error[ERR_MAX + 1];
	int64_t since, watched_from, charging_ms;
	bool has_meter;
	double meter;
	/* the open session */
	char session[LINLI_ID_MAX + 1];
	int64_t started_at;
	bool has_start;
	double meter_start;
};

struct pile {
	struct pile *next;
	char id[LINLI_ID_MAX + 1];
	char scope[LINLI_SCOPE_MAX + 1];
	struct conn c[CONN_MAX + 1]; /* 1..16 */
	int64_t changes, illegal, sessions;
	double kwh;
};

struct cstate {
	int sev[T_N];
	char *cfg_json;
	struct pile *piles[BUCKETS];
	struct alarmreq alarms;
	int64_t notifications, changes, repeats, illegal, bad, sessions_opened, sessions_closed,
	    resumed, store_errors, refused_reloads;
	double kwh;
};

static struct cstate *state;

/* ---- configuration: the severities ---- */

static int cfg_parse(const struct plugcfg *p, linli_record *c, void *ud)
{
	static const char *const keys[] = {"severity"};
	struct cstate *st = ud;
	int sev[T_N];
	memcpy(sev, default_sev, sizeof sev);
	int rc = plugcfg_keys(p, c, keys, 1);
	if (!rc)
		rc = plugcfg_sevs(p, c, type_names, T_N, NULL, sev);
	if (!rc)
		memcpy(st->sev, sev, sizeof sev);
	return rc;
}

/* ---- piles ---- */

static struct pile *pile_of(struct cstate *st, const char *id, const char *scope)
{
	uint64_t h = 1469598103934665603ULL;
	for (const char *s = id; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	struct pile **pp = &st->piles[h & (BUCKETS - 1)];
	for (; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->id, id) == 0)
			return *pp;
	struct pile *p = calloc(1, sizeof *p);
	if (p) {
		snprintf(p->id, sizeof p->id, "%s", id);
		snprintf(p->scope, sizeof p->scope, "%s", scope);
		for (int i = 0; i <= CONN_MAX; i++)
			p->c[i].state = -1;
		*pp = p;
	}
	return p;
}

/* ---- sessions ---- */

static void session_open(linli_ctx *ctx, struct cstate *st, struct pile *p, int n, int64_t now)
{
	struct conn *c = &p->c[n];
	linli_record *r = api->rec_new();
	if (!r)
		return;
	api->rec_set_str(r, "charger", p->id);
	api->rec_set_int(r, "connector", n);
	api->rec_set_str(r, "state", "charging");
	api->rec_set_time(r, "started_at", now);
	if (c->has_meter)
		api->rec_set_float(r, "meter_start_kwh", c->meter);
	c->has_start = c->has_meter;
	c->meter_start = c->meter;
	c->started_at = now;
	int rc = api->store_put(ctx, "charging_sessions", p->scope, NULL, r, c->session, NULL);
	api->rec_free(r);
	if (rc) {
		c->session[0] = '\0';
		st->store_errors++;
		api->log(ctx, LINLI_LOG_WARN, "charger %s connector %d: session not recorded: %s",
			 p->id, n, api->store_last_error(ctx));
		return;
	}
	st->sessions_opened++;
	p->sessions++;
}

struct close_op {
	const char *state, *reason, *error;
	int64_t now, duration_ms;
	bool has_energy, has_stop;
	double energy, stop;
};

static int close_update(linli_ctx *ctx, const char *id, linli_record **rec, void *ud, char *err,
			size_t errlen)
{
	(void)ctx;
	struct close_op *x = ud;
	if (!*rec)
		return snprintf(err, errlen, "session %s was removed", id), LINLI_ENOENT;
	api->rec_set_str(*rec, "state", x->state);
	api->rec_set_time(*rec, "ended_at", x->now);
	api->rec_set_int(*rec, "duration_s", x->duration_ms / 1000);
	if (x->reason)
		api->rec_set_str(*rec, "stop_reason", x->reason);
	if (x->error)
		api->rec_set_str(*rec, "error_code", x->error);
	if (x->has_stop)
		api->rec_set_float(*rec, "meter_stop_kwh", x->stop);
	if (x->has_energy)
		api->rec_set_float(*rec, "energy_kwh", x->energy);
	return 0;
}

static void session_close(linli_ctx *ctx, struct cstate *st, struct pile *p, int n, int to,
			  int64_t now)
{
	struct conn *c = &p->c[n];
	if (!c->session[0])
		return;
	struct close_op x = {.state = to == S_FAULTED	    ? "failed"
				      : to == S_UNAVAILABLE ? "stopped"
							    : "completed",
			     .reason = to == S_FAULTED	     ? "fault"
				       : to == S_UNAVAILABLE ? "unavailable"
							     : NULL,
			     .error = to == S_FAULTED ? c->error : NULL,
			     .now = now,
			     .duration_ms = now > c->started_at ? now - c->started_at : 0,
			     .has_stop = c->has_meter,
			     .stop = c->meter};
	if (c->has_start && c->has_meter && c->meter >= c->meter_start) {
		x.has_energy = true;
		x.energy = milli(c->meter - c->meter_start);
	}
	if (api->store_update(ctx, "charging_sessions", p->scope, c->session, close_update, &x)) {
		st->store_errors++;
		api->log(ctx, LINLI_LOG_WARN, "charger %s connector %d: session %s not closed: %s",
			 p->id, n, c->session, api->store_last_error(ctx));
	} else {
		st->sessions_closed++;
		if (x.has_energy) {
			st->kwh += x.energy;
			p->kwh += x.energy;
		}
	}
	c->session[0] = '\0';
}

/* ---- events ---- */

static int dint(linli_record *d, const char *key, int64_t *out)
{
	double f = 0;
	const char *s = NULL;
	char *end = NULL;
	if (api->rec_get_int(d, key, out) == 0)
		return 0;
	if (api->rec_get_float(d, key, &f) == 0 && f == (double)(int64_t)f)
		return *out = (int64_t)f, 0;
	if (api->rec_get_str(d, key, &s, NULL) == 0) {
		long long v = strtoll(s, &end, 10);
		if (end != s && !*end)
			return *out = v, 0;
	}
	return LINLI_EINVAL;
}

static int dnum(linli_record *d, const char *key, double *out)
{
	const char *s = NULL;
	char *end = NULL;
	if (api->rec_get_float(d, key, out) == 0)
		return 0;
	if (api->rec_get_str(d, key, &s, NULL) == 0) {
		*out = strtod(s, &end);
		if (end != s && !*end)
			return 0;
	}
	return LINLI_EINVAL;
}

static void raise_(linli_ctx *ctx, struct cstate *st, int t, const char *scope, const char *src,
		   const char *details)
{
	alarmreq_raise(&st->alarms, ctx, t, plugcfg_sev_names[st->sev[t]], scope, src, details);
}

static void on_status(linli_ctx *ctx, struct cstate *st, const struct linli_event *ev,
		      const char *id)
{
	linli_record *d = NULL;
	int64_t n = 0, now = api->time_now_ms();
	const char *status = NULL, *error = NULL, *why = NULL;
	double meter = 0;
	int to = -1;
	st->notifications++;
	if (api->rec_get_map((linli_record *)ev->payload, "data", &d))
		why = "no details";
	else if (dint(d, "connector", &n) || n < 1 || n > CONN_MAX)
		why = "connector: not a whole number 1 to 16";
	else if (api->rec_get_str(d, "status", &status, NULL))
		why = "status: missing";
	else {
		for (int i = 0; i < S_N; i++)
			if (strcmp(status, states[i]) == 0)
				to = i;
		if (to < 0)
			why = "status: not an OCPP 1.6 status (Available, Preparing, Charging, "
			      "SuspendedEVSE, SuspendedEV, Finishing, Reserved, Unavailable, "
			      "Faulted)";
	}
	if (!why && api->rec_has(d, "error_code") &&
	    (api->rec_get_str(d, "error_code", &error, NULL) || strlen(error) > ERR_MAX))
		why = "error_code: not a text of at most 32 bytes";
	if (!why && api->rec_has(d, "meter_kwh") && (dnum(d, "meter_kwh", &meter) || meter < 0))
		why = "meter_kwh: not a number of kWh at least 0";
	if (why) {
		st->bad++;
		api->log(ctx, LINLI_LOG_WARN, "charger %s: status_notification ignored: %s", id,
			 why);
		return;
	}
	struct pile *p = pile_of(st, id, ev->scope);
	if (!p)
		return;
	struct conn *c = &p->c[n];
	char buf[512];
	if (c->state >= 0 && c->state != to &&
	    wf_move_check(&table, "", states[c->state], states[to], NULL, buf, sizeof buf)) {
		st->illegal++;
		p->illegal++;
		size_t o = 0;
		buf[0] = '\0';
		for (size_t i = 0; i < table.n_moves && o < sizeof buf; i++)
			if (strcmp(table.moves[i].from, states[c->state]) == 0)
				o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%s",
						      o ? ", " : "", table.moves[i].to);
		api->log(ctx, LINLI_LOG_WARN,
			 "charger %s connector %lld: %s -> %s is not an OCPP 1.6 transition, not "
			 "applied (allowed from %s: %s)",
			 id, (long long)n, states[c->state], status, states[c->state], buf);
		return;
	}
	if (api->rec_has(d, "meter_kwh")) {
		c->meter = meter;
		c->has_meter = true;
	}
	snprintf(c->error, sizeof c->error, "%s", error ? error : "NoError");
	if (c->state == to) {
		st->repeats++;
		return;
	}
	int from = c->state;
	if (from < 0)
		c->watched_from = now;
	if (from == S_CHARGING)
		c->charging_ms += now - c->since;
	c->state = to;
	c->since = now;
	st->changes++;
	p->changes++;
	if (from < 0 && c->session[0]) {
		/* a session open before a restart: it goes on, or ended while we were down */
		if (!in_session(to))
			session_close(ctx, st, p, (int)n, to, now);
	} else if (from >= 0 && in_session(from) && !in_session(to))
		session_close(ctx, st, p, (int)n, to, now);
	else if ((from < 0 || !in_session(from)) && in_session(to))
		session_open(ctx, st, p, (int)n, now);
	if (to == S_FAULTED) {
		char src[LINLI_ID_MAX + 48], details[160];
		snprintf(src, sizeof src, "plugin:charging/%s/%lld", id, (long long)n);
		snprintf(details, sizeof details, "connector %lld of charger %s Faulted: %s",
			 (long long)n, id, c->error);
		raise_(ctx, st, T_FAULTED, ev->scope, src, details);
	}
}

static int on_event(linli_ctx *ctx, const struct linli_event *ev, void *ud)
{
	struct cstate *st = ud;
	const char *a = strncmp(ev->topic, "dev/charger/", 12) == 0 ? ev->topic + 12 : NULL;
	const char *b = a ? strchr(a, '/') : NULL;
	char id[LINLI_ID_MAX + 1], src[LINLI_ID_MAX + 8], details[160];
	if (!b || (size_t)(b - a) > LINLI_ID_MAX || strncmp(b, "/event/", 7) != 0)
		return 0;
	memcpy(id, a, (size_t)(b - a));
	id[b - a] = '\0';
	const char *name = b + 7;
	snprintf(src, sizeof src, "device:%s", id);
	if (strcmp(name, "status_notification") == 0)
		on_status(ctx, st, ev, id);
	else if (strcmp(name, "overheat") == 0) {
		snprintf(details, sizeof details, "charger %s reports overheating", id);
		raise_(ctx, st, T_OVERHEAT, ev->scope, src, details);
	} else if (strcmp(name, "fault") == 0) {
		snprintf(details, sizeof details, "charger %s reports a fault", id);
		raise_(ctx, st, T_FAULT, ev->scope, src, details);
	}
	return 0;
}

/* ---- the sessions open at start, read on the plugin's own account ---- */

static int load_row(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	(void)ctx;
	struct cstate *st = ud;
	const char *ch = NULL;
	int64_t n = 0, at = 0;
	double m = 0;
	if (api->rec_get_str(row->record, "charger", &ch, NULL) ||
	    api->rec_get_int(row->record, "connector", &n) || n < 1 || n > CONN_MAX ||
	    api->rec_get_time(row->record, "started_at", &at))
		return 0;
	struct pile *p = pile_of(st, ch, row->scope);
	if (!p)
		return LINLI_ENOMEM;
	struct conn *c = &p->c[n];
	snprintf(c->session, sizeof c->session, "%s", row->id);
	c->started_at = at;
	c->has_start = api->rec_get_float(row->record, "meter_start_kwh", &m) == 0;
	c->meter_start = m;
	st->resumed++;
	return 0;
}

static int load_open(linli_ctx *ctx, struct cstate *st)
{
	struct linli_where w = {"state", "charging"};
	char cursor[LINLI_CURSOR_MAX] = "";
	do {
		struct linli_query q = {.size = sizeof q,
					.dataset = "charging_sessions",
					.where = &w,
					.n_where = 1,
					.limit = 1000,
					.cursor = cursor};
		int rc = api->store_scan(ctx, &q, load_row, st, cursor);
		if (rc < 0)
			return rc;
	} while (cursor[0]);
	return 0;
}

/* ---- the console: every command acts as its caller ---- */

static const char *within_of(const struct linli_cmd_req *req)
{
	return req->caller && req->caller->scope && req->caller->scope[0] ? req->caller->scope
									  : NULL;
}

/*
 * GET /api/v1/apps/charging/screen: the big screen's charger panel — within the caller's
 * jurisdiction, the connectors by OCPP status, and each charger's connectors' statuses
 * (never a session or an energy reading of a person).
 */
static int route_screen(linli_ctx *ctx, const struct linli_http_req *req, linli_record **reply,
			int *status, char *err, size_t errlen)
{
	(void)ctx, (void)status;
	int qrc = plugcmd_no_query(api, req, "screen", err, errlen);
	if (qrc)
		return qrc;
	struct cstate *st = req->ud;
	const char *within =
	    req->caller && req->caller->scope && req->caller->scope[0] ? req->caller->scope : NULL;
	int64_t by[S_N] = {0}, chargers = 0, connectors = 0;
	linli_record *r = api->rec_new(), *arr = NULL, *m = NULL, *cs = NULL, *bs = NULL;
	if (!r || api->rec_set_array(r, "chargers", &arr)) {
		api->rec_free(r);
		return snprintf(err, errlen, "out of memory"), LINLI_ENOMEM;
	}
	for (size_t i = 0; i < BUCKETS; i++)
		for (struct pile *p = st->piles[i]; p; p = p->next) {
			if (within && !wf_ref_covers(within, p->scope))
				continue;
			chargers++;
			if (api->arr_push_map(arr, &m))
				continue;
			api->rec_set_str(m, "charger", p->id);
			api->rec_set_str(m, "scope", p->scope);
			api->rec_set_array(m, "connectors", &cs);
			for (int n = 1; n <= CONN_MAX; n++) {
				if (p->c[n].state < 0)
					continue;
				connectors++;
				by[p->c[n].state]++;
				if (cs)
					api->arr_push_str(cs, states[p->c[n].state]);
			}
		}
	api->rec_set_int(r, "total_chargers", chargers);
	api->rec_set_int(r, "total_connectors", connectors);
	api->rec_set_map(r, "by_status", &bs);
	for (int i = 0; bs && i < S_N; i++)
		if (by[i])
			api->rec_set_int(bs, states[i], by[i]);
	*reply = r;
	return 0;
}

static int cmd_piles(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		     char *err, size_t errlen)
{
	(void)ctx;
	struct cstate *st = req->ud;
	if (req->argc > 1 || (req->argc == 1 && req->argv[0][0] == '-'))
		return snprintf(err, errlen, "usage: [CHARGER]"), LINLI_EINVAL;
	const char *only = req->argc ? req->argv[0] : NULL, *within = within_of(req);
	int64_t now = api->time_now_ms();
	linli_record *r = api->rec_new(), *arr = NULL;
	if (!r || api->rec_set_array(r, "piles", &arr)) {
		api->rec_free(r);
		return snprintf(err, errlen, "out of memory"), LINLI_ENOMEM;
	}
	int found = 0;
	for (size_t i = 0; i < BUCKETS; i++)
		for (struct pile *p = st->piles[i]; p; p = p->next) {
			if ((only && strcmp(only, p->id)) ||
			    (within && !wf_ref_covers(within, p->scope)))
				continue;
			linli_record *m = NULL, *cs = NULL;
			if (api->arr_push_map(arr, &m))
				continue;
			found++;
			int64_t watched = 0, charging = 0;
			api->rec_set_str(m, "charger", p->id);
			api->rec_set_str(m, "scope", p->scope);
			api->rec_set_int(m, "changes", p->changes);
			api->rec_set_int(m, "illegal", p->illegal);
			api->rec_set_int(m, "sessions", p->sessions);
			api->rec_set_float(m, "energy_kwh", milli(p->kwh));
			api->rec_set_array(m, "connectors", &cs);
			for (int n = 1; n <= CONN_MAX; n++) {
				struct conn *c = &p->c[n];
				linli_record *x = NULL;
				if (c->state < 0 || !cs || api->arr_push_map(cs, &x))
					continue;
				int64_t ch =
				    c->charging_ms + (c->state == S_CHARGING ? now - c->since : 0);
				watched += now - c->watched_from;
				charging += ch;
				api->rec_set_int(x, "connector", n);
				api->rec_set_str(x, "status", states[c->state]);
				api->rec_set_str(x, "error_code", c->error);
				api->rec_set_time(x, "since", c->since);
				if (c->session[0])
					api->rec_set_str(x, "session", c->session);
				api->rec_set_int(x, "charging_s", ch / 1000);
			}
			/* the share of its connectors' watched time spent Charging */
			api->rec_set_float(m, "utilisation",
					   watched > 0 ? milli((double)charging / (double)watched)
						       : 0);
		}
	if (only && !found) {
		api->rec_free(r);
		return snprintf(err, errlen, "charger %.64s: no status heard from it%s%s", only,
				within ? " within " : "", within ? within : ""),
		       LINLI_ENOENT;
	}
	*reply = r;
	return 0;
}



static int cmd_sessions(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
			char *err, size_t errlen)
{
	const char *charger, *state, *scope, *pos[1];
	int n_pos;
	const struct plugcmd_opt t[] = {
	    {"--charger", &charger}, {"--state", &state}, {"--scope", &scope}};
	int rc = plugcmd_parse(req, 0, 0,
			       "[--charger ID] [--state charging|completed|stopped|failed] "
			       "[--scope PATH]",
			       t, sizeof t / sizeof *t, pos, &n_pos, true, err, errlen);
	if (rc)
		return rc;
	struct linli_where w[2];
	int nw = 0;
	if (charger)
		w[nw++] = (struct linli_where){"charger", charger};
	if (state)
		w[nw++] = (struct linli_where){"state", state};
	struct linli_query q = {.size = sizeof q,
				.dataset = "charging_sessions",
				.scope = scope,
				.where = nw ? w : NULL,
				.n_where = nw};
	struct plugcmd_list l = {0};
	return plugcmd_list(api, ctx, &q, NULL, NULL, &l, "sessions", reply, err, errlen);
}

static int cmd_stats(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		     char *err, size_t errlen)
{
	(void)ctx;
	struct cstate *st = req->ud;
	linli_record *r = api->rec_new();
	if (!r)
		return snprintf(err, errlen, "out of memory"), LINLI_ENOMEM;
	api->rec_set_int(r, "notifications", st->notifications);
	api->rec_set_int(r, "changes", st->changes);
	api->rec_set_int(r, "repeats", st->repeats);
	api->rec_set_int(r, "illegal", st->illegal);
	api->rec_set_int(r, "bad", st->bad);
	api->rec_set_int(r, "sessions_opened", st->sessions_opened);
	api->rec_set_int(r, "sessions_closed", st->sessions_closed);
	api->rec_set_int(r, "sessions_resumed", st->resumed);
	api->rec_set_float(r, "energy_kwh", milli(st->kwh));
	api->rec_set_int(r, "store_errors", st->store_errors);
	alarmreq_put_counts(&st->alarms, r);
	plugcfg_put_sevs(api, r, type_names, T_N, st->sev);
	api->rec_set_int(r, "refused_reloads", st->refused_reloads);
	*reply = r;
	return 0;
}

static void tick(linli_ctx *ctx, void *ud)
{
	struct cstate *st = ud;
	plugcfg_reload(api, ctx, "charging", &st->cfg_json, cfg_parse, st, &st->refused_reloads);
}

/* ---- init and fini ---- */

static void free_state(struct cstate *st)
{
	for (size_t i = 0; i < BUCKETS; i++)
		for (struct pile *p = st->piles[i], *n; p; p = n) {
			n = p->next;
			free(p);
		}
	free(st->cfg_json);
	free(st);
}

static int charging_init(linli_ctx *ctx, const struct linli_api *a)
{
	static const struct plugcmd_cmd cmds[] = {
	    {"piles", "[CHARGER]", "each pile's connectors, their OCPP status, utilisation",
	     "charging.list", cmd_piles},
	    {"sessions", "[--charger ID] [--state S] [--scope PATH]", "charging sessions",
	     "charging.list", cmd_sessions},
	    {"stats", "", "status changes, illegal ones, sessions, energy, alarms", "charging.list",
	     cmd_stats},
	};
	api = a;
	char err[768] = "";
	bool changed = false;
	struct cstate *st = calloc(1, sizeof *st);
	int rc = st ? 0 : LINLI_ENOMEM;
	if (!rc)
		rc = wf_table_check(&table, err, sizeof err);
	if (!rc) {
		memcpy(st->sev, default_sev, sizeof st->sev);
		alarmreq_init(&st->alarms, api, type_names, T_N);
		rc = plugcfg_load(&(const struct plugcfg){api, "charging", err, sizeof err}, ctx,
				  &st->cfg_json, cfg_parse, st, &changed);
	}
	if (!rc && (rc = load_open(ctx, st)))
		snprintf(err, sizeof err, "the open sessions not read: %s",
			 api->store_last_error(ctx));
	if (!rc)
		rc = api->subscribe(ctx, "dev/charger/+/event/#", on_event, st, NULL);
	static const struct plugcmd_route routes[] = {
	    {"screen", "GET", "screen", "charging.list", route_screen}};
	static const struct plugcmd_action action = {"charging.list", "viewer", NULL, NULL,
						     "see charging piles, sessions and counters"};
	if (!rc)
		rc = plugcmd_register(api, ctx, &action, 1, cmds, PLUGCMD_N(cmds), routes,
				      PLUGCMD_N(routes), st, err, sizeof err);
	if (!rc)
		rc = api->timer_add(ctx, 1000, 1000, tick, st, NULL);
	if (rc) {
		api->set_error(ctx, "%s", err[0] ? err : linli_strerror(rc));
		if (st)
			free_state(st);
		return rc;
	}
	state = st;
	api->log(ctx, LINLI_LOG_INFO, "charging: connectors per OCPP 1.6, %zu legal changes",
		 table.n_moves);
	return 0;
}

static void charging_fini(linli_ctx *ctx, const struct linli_api *a)
{
	(void)ctx;
	(void)a;
	if (state)
		free_state(state);
	state = NULL;
}

LINLI_PLUGIN(charging_init, charging_fini, .name = "charging", .version = "1.0.0",
	     .family = "public_services",
	     .description =
		 "EV charging: each connector's OCPP 1.6 status checked against the "
		 "legal transitions, sessions with energy and duration, faulted "
		 "connectors and overheating raised through alarms, utilisation per pile",
	     .requires = {"alarms"},
	     .capabilities = {"store.read:charging_sessions", "store.write:charging_sessions",
			      "bus.subscribe:dev/charger/+/event/#", "bus.publish:alarmreq/raise"});
