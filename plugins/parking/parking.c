/*
 * parking — the smart-parking plugin of the public-services family (智慧停车,
 * plugins/parking/).
 *
 * Sessions: a car-park gate (device class gate) reports an `entry` or `exit`
 * with the plate (sensitive), its colour, the lot (the gate controller's
 * car-park id) and the time it saw the vehicle. An entry opens a record of
 * parking_sessions (state parked); the exit of the same plate in the same lot
 * closes it (exited) with the fee of the tariff. A gate that was offline
 * uploads its records later (`offline` set): the session keeps the time the
 * gate saw the vehicle (entered_at, exited_at) and the time the node received
 * it (entry_synced_at, exit_synced_at); fees run on the gate's times.
 *
 * Fees: the tariff is data (plugins.parking: per_hour, free_minutes,
 * daily_cap). A stay of at most free_minutes is free (a visitor dropping
 * someone off); a longer one is charged per started hour, each started
 * 24 hours from the entry capped at daily_cap. A plate with a monthly pass
 * (parking_passes: plate, lot or "*", valid_from..valid_until at its entry)
 * parks free (billing monthly).
 *
 *   parked --pay--> paid --exit within paid_grace_minutes--> exited
 *   parked --exit, nothing owed (free minutes, monthly)----> exited
 *   parked|paid --exit, a fee owed--> held at the barrier (exit_held_at)
 *        --pay--> exit_allowed --exit--> exited
 * An exit uploaded late by an offline gate (the barrier let the vehicle go)
 * closes the session whatever is owed: fee > paid shows the arrears.
 *
 * Occupancy: the parking sensors' `occupied` readings, per space (the
 * parking_spaces record whose `sensor` is the device), counted per lot in
 * memory. A space of kind fire_lane occupied for fire_lane_grace_s raises
 * fire_lane_blocked; a session parked over overstay_hours raises
 * parking_overstay. Alarms name ids only, never a plate.
 *
 * The spaces and passes are caches loaded and followed on the plugin's own
 * account (wf_ref: init and store watches); commands (sessions, show, pay,
 * occupancy, stats) act as their caller. Everything runs on the kernel thread.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linli/linli.h>

#include "alarmreq.h"
#include "plugcfg.h"
#include "plugcmd.h"
#include "wf_ref.h"

static const struct linli_api *api;

enum atype { T_OVERSTAY, T_FIRE_LANE, T_N };
static const char *const type_names[T_N] = {"parking_overstay", "fire_lane_blocked"};
/* Indexes of plugcfg_sev_names: critical 0, major 1, minor 2, warning 3. */
static const int default_sev[T_N] = {2, 1};

#define PLATE_MAX 16 /* the catalog's max_len of parking_sessions.plate */
#define LOT_MAX	  64
#define S_BUCKETS 65536
#define D_BUCKETS 1024
#define HOUR	  3600000LL
#define DAY	  (24 * HOUR)
#define FUTURE_MS 300000 /* a gate's time this far ahead of the node is refused */

#define TARIFFS 64 /* lots with a tariff of their own */

/* A tariff: the node's default, or a lot's own (plugins.parking.tariffs). */
struct tariff {
	char lot[LOT_MAX + 1]; /* "" for the node's default */
	double per_hour, daily_cap;
	int64_t free_ms;
};

struct pcfg {
	struct tariff def, lots[TARIFFS];
	int n_lots;
	int64_t grace_ms, overstay_ms, fire_ms, visitor_free_ms;
	int sev[T_N];
};

/* A session open in a lot (parked, paid or exit_allowed), by lot and plate. */
struct open {
	struct open *next;
	char key[LOT_MAX + PLATE_MAX + 2]; /* LOT \x1f PLATE */
	char id[LINLI_ID_MAX + 1];
	char scope[LINLI_SCOPE_MAX + 1];
	int64_t entered_at;
	bool alarmed;
};

/* A parking sensor as last heard. */
struct sensor {
	struct sensor *next;
	char id[LINLI_ID_MAX + 1];
	bool occupied, alarmed, heard;
	int64_t since; /* node time of the change to occupied */
};

struct pstate {
	struct pcfg cfg;
	char *cfg_json;
	struct wf_ref spaces, passes, visitors;
	struct open *open[S_BUCKETS];
	struct sensor *sensors[D_BUCKETS];
	int64_t n_open;
	struct alarmreq alarms;
	int64_t entries, exits, late_entries, late_exits, exits_held, unmatched_exits, duplicates,
	    bad_events, store_errors, payments, readings, refused_reloads, spaces_written,
	    gate_opens, gate_open_failed, visitor_entries, registrations;
	double fees, paid;
};

static struct pstate *state; /* init to fini */

/* ---- configuration ---- */

/* The tariff keys of t's group c (the node's, or a lot's under p), over what t holds. */
static int tariff_parse(const struct plugcfg *p, linli_record *c, struct tariff *t)
{
	int rc = plugcfg_num(p, c, "per_hour", 0, 1000, "yuan an hour", &t->per_hour);
	if (!rc)
		rc =
		    plugcfg_int(p, c, "free_minutes", 0, 1440, 60000, "whole minutes", &t->free_ms);
	if (!rc)
		rc = plugcfg_num(p, c, "daily_cap", 0, 10000, "yuan a day, 0 for none",
				 &t->daily_cap);
	if (!rc && t->daily_cap > 0 && t->daily_cap < t->per_hour)
		rc = plugcfg_err(p, "daily_cap",
				 "%g is below per_hour %g: the cap would be the fee "
				 "of any stay (0 for no cap)",
				 t->daily_cap, t->per_hour);
	return rc;
}

/*
 * tariffs = ( { lot = "P2"; per_hour = 8.0; free_minutes = 30; daily_cap = 60.0; }, ... ):
 * a lot's own tariff, each key it leaves out the node's.
 */
static int tariffs_parse(const struct plugcfg *p, linli_record *c, struct pcfg *f)
{
	static const char *const keys[] = {"lot", "per_hour", "free_minutes", "daily_cap"};
	linli_record *a = NULL;
	int t = api->rec_type(c, "tariffs");
	if (t == LINLI_T_NONE)
		return 0;
	if (t != LINLI_T_ARRAY || api->rec_get_array(c, "tariffs", &a))
		return plugcfg_err(p, "tariffs",
				   "must be a list of groups ( { lot = \"P2\"; per_hour = 8.0; "
				   "... } )");
	size_t n = api->rec_count(a);
	if (n > TARIFFS)
		return plugcfg_err(p, "tariffs", "%zu lots, more than %d", n, TARIFFS);
	for (size_t i = 0; i < n; i++) {
		char name[96];
		linli_record *m = NULL;
		const char *lot = NULL;
		snprintf(name, sizeof name, "%s.tariffs.[%zu]", p->plugin, i + 1);
		struct plugcfg q = {p->api, name, p->err, p->errlen};
		struct tariff *x = &f->lots[i];
		*x = f->def;
		if (api->arr_get_map(a, i, &m))
			return plugcfg_err(p, "tariffs", "entry %zu is not a group { lot = ...; }",
					   i + 1);
		int rc = plugcfg_keys(&q, m, keys, sizeof keys / sizeof keys[0]);
		if (rc)
			return rc;
		if (api->rec_get_str(m, "lot", &lot, NULL) || !lot[0] || strlen(lot) > LOT_MAX ||
		    strchr(lot, '\x1f'))
			return plugcfg_err(&q, "lot", "required: the lot's name (at most %d bytes)",
					   LOT_MAX);
		for (size_t k = 0; k < i; k++)
			if (strcmp(f->lots[k].lot, lot) == 0)
				return plugcfg_err(
				    &q, "lot", "'%s' has a tariff already (entry %zu)", lot, k + 1);
		snprintf(x->lot, sizeof x->lot, "%s", lot);
		if ((rc = tariff_parse(&q, m, x)))
			return rc;
		f->n_lots = (int)i + 1;
	}
	return 0;
}

static int cfg_parse(const struct plugcfg *p, linli_record *c, void *ud)
{
	static const char *const keys[] = {
	    "per_hour",	      "free_minutes",	   "daily_cap", "paid_grace_minutes",
	    "overstay_hours", "fire_lane_grace_s", "tariffs",	"visitor_free_minutes",
	    "severity"};
	struct pstate *st = ud;
	struct pcfg f = {.def = {.per_hour = 5.0, .daily_cap = 40.0, .free_ms = 15 * 60000},
			 .grace_ms = 15 * 60000,
			 .overstay_ms = 72 * HOUR,
			 .fire_ms = 60000,
			 .visitor_free_ms = 120 * 60000};
	memcpy(f.sev, default_sev, sizeof f.sev);
	int rc = plugcfg_keys(p, c, keys, sizeof keys / sizeof keys[0]);
	if (!rc)
		rc = tariff_parse(p, c, &f.def);
	if (!rc)
		rc = plugcfg_int(p, c, "visitor_free_minutes", 0, 1440, 60000, "whole minutes",
				 &f.visitor_free_ms);
	if (!rc)
		rc = plugcfg_int(p, c, "paid_grace_minutes", 0, 240, 60000, "whole minutes",
				 &f.grace_ms);
	if (!rc)
		rc = plugcfg_int(p, c, "overstay_hours", 1, 8760, HOUR, "whole hours",
				 &f.overstay_ms);
	if (!rc)
		rc = plugcfg_int(p, c, "fire_lane_grace_s", 0, 3600, 1000, "whole seconds",
				 &f.fire_ms);
	if (!rc)
		rc = tariffs_parse(p, c, &f);
	if (!rc)
		rc = plugcfg_sevs(p, c, type_names, T_N, NULL, f.sev);
	if (!rc)
		st->cfg = f;
	return rc;
}

static void put_tariff(linli_record *r, const struct tariff *t)
{
	api->rec_set_float(r, "per_hour", t->per_hour);
	api->rec_set_int(r, "free_minutes", t->free_ms / 60000);
	api->rec_set_float(r, "daily_cap", t->daily_cap);
}

static linli_record *cfg_record(const struct pcfg *f)
{
	linli_record *r = api->rec_new(), *a = NULL, *m = NULL;
	if (!r)
		return NULL;
	put_tariff(r, &f->def);
	api->rec_set_int(r, "paid_grace_minutes", f->grace_ms / 60000);
	api->rec_set_int(r, "overstay_hours", f->overstay_ms / HOUR);
	api->rec_set_int(r, "fire_lane_grace_s", f->fire_ms / 1000);
	api->rec_set_int(r, "visitor_free_minutes", f->visitor_free_ms / 60000);
	if (api->rec_set_array(r, "tariffs", &a) == 0)
		for (int i = 0; i < f->n_lots; i++)
			if (api->arr_push_map(a, &m) == 0) {
				api->rec_set_str(m, "lot", f->lots[i].lot);
				put_tariff(m, &f->lots[i]);
			}
	plugcfg_put_sevs(api, r, type_names, T_N, f->sev);
	return r;
}

/* ---- the tariff ---- */

static double cents(double x)
{
	return round(x * 100) / 100;
}

/* The tariff of `lot`: its own, else the node's. */
static const struct tariff *tariff_of(const struct pcfg *c, const char *lot)
{
	for (int i = 0; lot && i < c->n_lots; i++)
		if (strcmp(c->lots[i].lot, lot) == 0)
			return &c->lots[i];
	return &c->def;
}

/*
 * The fee of a stay from `in` to `out` (ms) at tariff c: 0 within free
 * minutes; else each started hour at per_hour, each started 24 hours from the
 * entry at most daily_cap (0: no cap).
 */
static double fee_of(const struct tariff *c, int64_t in, int64_t out)
{
	int64_t d = out > in ? out - in : 0;
	if (d <= c->free_ms)
		return 0;
	double fee = 0;
	for (; d > 0; d -= DAY) {
		int64_t part = d > DAY ? DAY : d;
		double f = (double)((part + HOUR - 1) / HOUR) * c->per_hour;
		fee += c->daily_cap > 0 && f > c->daily_cap ? c->daily_cap : f;
	}
	return cents(fee);
}

/* A string field of a record, "" when absent. */
static const char *rstr(const linli_record *r, const char *key)
{
	const char *s = NULL;
	return api->rec_get_str(r, key, &s, NULL) == 0 ? s : "";
}

/*
 * The fee of session r's stay from in to out: its lot's tariff; nothing with a
 * monthly pass; a registered visitor's stay free for visitor_free_minutes (when
 * that is longer than the lot's free minutes).
 */
static double fee_for(const struct pcfg *c, const linli_record *r, int64_t in, int64_t out)
{
	const char *billing = rstr(r, "billing");
	if (strcmp(billing, "monthly") == 0)
		return 0;
	struct tariff t = *tariff_of(c, rstr(r, "lot"));
	if (strcmp(billing, "visitor") == 0 && c->visitor_free_ms > t.free_ms)
		t.free_ms = c->visitor_free_ms;
	return fee_of(&t, in, out);
}

/* ---- maps ---- */

static uint64_t fnv(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static void open_key(char *key, const char *lot, const char *plate)
{
	snprintf(key, LOT_MAX + PLATE_MAX + 2, "%s\x1f%s", lot, plate);
}

static struct open **open_find(struct pstate *st, const char *key)
{
	struct open **pp = &st->open[fnv(key) & (S_BUCKETS - 1)];
	while (*pp && strcmp((*pp)->key, key) != 0)
		pp = &(*pp)->next;
	return pp;
}

/* Note session id at scope open for key (replacing another: 1, else 0; <0 ENOMEM). */
static int open_put(struct pstate *st, const char *key, const char *id, const char *scope,
		    int64_t entered_at, bool alarmed)
{
	struct open **pp = open_find(st, key), *o = *pp;
	int had = o != NULL;
	if (!o) {
		if (!(o = calloc(1, sizeof *o)))
			return LINLI_ENOMEM;
		snprintf(o->key, sizeof o->key, "%s", key);
		*pp = o;
		st->n_open++;
	}
	snprintf(o->id, sizeof o->id, "%s", id);
	snprintf(o->scope, sizeof o->scope, "%s", scope);
	o->entered_at = entered_at;
	o->alarmed = alarmed;
	return had;
}

static void open_drop(struct pstate *st, const char *key, const char *id)
{
	struct open **pp = open_find(st, key), *o = *pp;
	if (o && strcmp(o->id, id) == 0) {
		*pp = o->next;
		free(o);
		st->n_open--;
	}
}

static struct sensor *sensor_of(struct pstate *st, const char *id, bool make)
{
	struct sensor **pp = &st->sensors[fnv(id) & (D_BUCKETS - 1)];
	for (; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->id, id) == 0)
			return *pp;
	struct sensor *s = make ? calloc(1, sizeof *s) : NULL;
	if (s) {
		snprintf(s->id, sizeof s->id, "%s", id);
		*pp = s;
	}
	return s;
}

/* ---- gate events ---- */

/* A string detail of an event, or NULL. */
static const char *dstr(linli_record *data, const char *key)
{
	const char *s = NULL;
	return api->rec_get_str(data, key, &s, NULL) == 0 ? s : NULL;
}

/* The gate's time of the event: `time` in Unix seconds (a number or its text) as ms. */
static int event_time(linli_record *data, int64_t dflt, int64_t *out)
{
	int64_t i = 0;
	double f = 0;
	const char *s = NULL;
	char *end = NULL;
	if (!api->rec_has(data, "time")) {
		*out = dflt;
		return 0;
	}
	if (api->rec_get_int(data, "time", &i) == 0)
		f = (double)i;
	else if (api->rec_get_float(data, "time", &f) == 0)
		;
	else if (api->rec_get_str(data, "time", &s, NULL) == 0) {
		f = strtod(s, &end);
		if (end == s || *end)
			return LINLI_EINVAL;
	} else
		return LINLI_EINVAL;
	if (!(f > 946684800.0 && f < 4102444800.0)) /* 2000 to 2100 */
		return LINLI_EINVAL;
	*out = (int64_t)llround(f * 1000);
	return 0;
}

static bool dbool(linli_record *data, const char *key)
{
	bool b = false;
	const char *s = NULL;
	if (api->rec_get_bool(data, key, &b) == 0)
		return b;
	return api->rec_get_str(data, key, &s, NULL) == 0 &&
	       (strcmp(s, "true") == 0 || strcmp(s, "1") == 0);
}

struct pass_q {
	const char *plate, *lot, *scope;
	int64_t at;
};

static int pass_match(const struct wf_ref_entry *e, const void *arg)
{
	const struct pass_q *q = arg;
	const char *p = NULL, *l = NULL;
	int64_t from = 0, until = 0;
	return api->rec_get_str(e->rec, "plate", &p, NULL) == 0 && strcmp(p, q->plate) == 0 &&
	       api->rec_get_str(e->rec, "lot", &l, NULL) == 0 &&
	       (strcmp(l, "*") == 0 || strcmp(l, q->lot) == 0) &&
	       api->rec_get_time(e->rec, "valid_from", &from) == 0 &&
	       api->rec_get_time(e->rec, "valid_until", &until) == 0 && from <= q->at &&
	       q->at <= until;
}

static void on_entry(linli_ctx *ctx, struct pstate *st, const char *gate, const char *scope,
		     const char *plate, const char *lot, linli_record *data, int64_t at,
		     bool offline, int64_t now)
{
	static const char *const colours[] = {"blue", "yellow", "green", "white", "black"};
	const char *colour = dstr(data, "plate_colour");
	const char *col = "other";
	for (size_t i = 0; colour && i < sizeof colours / sizeof colours[0]; i++)
		if (strcmp(colour, colours[i]) == 0)
			col = colours[i];
	struct pass_q q = {plate, lot, scope, at};
	const struct wf_ref_entry *pass = wf_ref_deepest(&st->passes, scope, pass_match, &q);
	const struct wf_ref_entry *visitor =
	    pass ? NULL : wf_ref_deepest(&st->visitors, scope, pass_match, &q);
	linli_record *r = api->rec_new();
	char id[LINLI_ID_MAX + 1] = "", key[LOT_MAX + PLATE_MAX + 2];
	if (!r) {
		st->store_errors++;
		return;
	}
	api->rec_set_str(r, "plate", plate);
	api->rec_set_str(r, "plate_colour", col);
	api->rec_set_str(r, "lot", lot);
	api->rec_set_str(r, "entry_gate", gate);
	api->rec_set_time(r, "entered_at", at);
	api->rec_set_time(r, "entry_synced_at", now);
	api->rec_set_str(r, "state", "parked");
	api->rec_set_str(r, "billing", pass ? "monthly" : visitor ? "visitor" : "tariff");
	if (pass)
		api->rec_set_str(r, "pass", pass->id);
	if (visitor)
		api->rec_set_str(r, "visitor", visitor->id);
	int rc = api->store_put(ctx, "parking_sessions", scope, NULL, r, id, NULL);
	api->rec_free(r);
	if (rc) {
		st->store_errors++;
		api->log(ctx, LINLI_LOG_WARN, "gate %s: entry in lot %s not recorded: %s", gate,
			 lot, api->store_last_error(ctx));
		return;
	}
	st->entries++;
	st->late_entries += offline;
	st->visitor_entries += visitor != NULL;
	open_key(key, lot, plate);
	if (open_put(st, key, id, scope, at, false) == 1) {
		st->duplicates++;
		api->log(ctx, LINLI_LOG_INFO,
			 "gate %s: session %s enters lot %s while an earlier session of the "
			 "vehicle is open (its exit was missed): that one is left open",
			 gate, id, lot);
	}
}

struct exit_op {
	const struct pcfg *cfg;
	const char *gate;
	int64_t at, now;
	bool offline;
	bool exited; /* out */
	double fee;  /* out */
};

static int exit_update(linli_ctx *ctx, const char *id, linli_record **rec, void *ud, char *err,
		       size_t errlen)
{
	(void)ctx;
	struct exit_op *x = ud;
	const char *s = NULL;
	int64_t in = 0, paid_at = 0;
	double paid = 0;
	if (!*rec)
		return snprintf(err, errlen, "session %s was removed", id), LINLI_ENOENT;
	if (api->rec_get_str(*rec, "state", &s, NULL) || strcmp(s, "exited") == 0)
		return snprintf(err, errlen, "session %s has exited already", id), LINLI_ESTATE;
	api->rec_get_time(*rec, "entered_at", &in);
	api->rec_get_float(*rec, "paid", &paid);
	bool paid_ok = api->rec_get_time(*rec, "paid_at", &paid_at) == 0 &&
		       x->at <= paid_at + x->cfg->grace_ms;
	double fee = fee_for(x->cfg, *rec, in, x->at);
	double owed = paid_ok ? 0 : fee - paid;
	x->fee = fee;
	api->rec_set_float(*rec, "fee", paid_ok && paid > fee ? paid : fee);
	if (owed > 0.005 && !x->offline) {
		api->rec_set_time(*rec, "exit_held_at", x->at);
		api->rec_set_str(*rec, "held_gate", x->gate); /* opened when it is paid */
		x->exited = false;
		return 0;
	}
	api->rec_set_str(*rec, "state", "exited");
	api->rec_set_str(*rec, "exit_gate", x->gate);
	api->rec_set_time(*rec, "exited_at", x->at);
	api->rec_set_time(*rec, "exit_synced_at", x->now);
	x->exited = true;
	return 0;
}

static void on_exit_(linli_ctx *ctx, struct pstate *st, const char *gate, const char *plate,
		     const char *lot, int64_t at, bool offline, int64_t now)
{
	char key[LOT_MAX + PLATE_MAX + 2];
	open_key(key, lot, plate);
	struct open *o = *open_find(st, key);
	if (!o) {
		st->unmatched_exits++;
		api->log(ctx, LINLI_LOG_INFO,
			 "gate %s: an exit from lot %s with no open session there: not recorded",
			 gate, lot);
		return;
	}
	struct exit_op x = {&st->cfg, gate, at, now, offline, false, 0};
	char id[LINLI_ID_MAX + 1];
	snprintf(id, sizeof id, "%s", o->id);
	int rc = api->store_update(ctx, "parking_sessions", o->scope, id, exit_update, &x);
	if (rc) {
		st->store_errors++;
		api->log(ctx, LINLI_LOG_WARN, "gate %s: exit of session %s not recorded: %s", gate,
			 id, api->store_last_error(ctx));
		if (rc == LINLI_ENOENT || rc == LINLI_ESTATE)
			open_drop(st, key, id);
		return;
	}
	if (!x.exited) {
		st->exits_held++;
		return;
	}
	st->exits++;
	st->late_exits += offline;
	st->fees += x.fee;
	if (o->alarmed) { /* the overstay is over */
		char src[LINLI_ID_MAX + 32];
		snprintf(src, sizeof src, "record:parking_sessions/%s", id);
		alarmreq_clear(&st->alarms, ctx, T_OVERSTAY, o->scope, src, "the vehicle left");
	}
	open_drop(st, key, id);
}

static void on_gate(linli_ctx *ctx, struct pstate *st, const struct linli_event *ev,
		    const char *gate, const char *name)
{
	bool entry = strcmp(name, "entry") == 0;
	if (!entry && strcmp(name, "exit") != 0)
		return; /* barrier_fault: the alarms of the gate class are not this plugin's */
	linli_record *data = NULL;
	int64_t now = api->time_now_ms(), at = 0;
	const char *why = NULL, *plate = NULL, *lot = NULL;
	if (api->rec_get_map((linli_record *)ev->payload, "data", &data))
		why = "no details";
	else if (!(plate = dstr(data, "plate")) || !plate[0] || strlen(plate) > PLATE_MAX)
		why = "plate: missing, empty or longer than 16 bytes";
	else if (!(lot = dstr(data, "lot")) || !lot[0] || strlen(lot) > LOT_MAX ||
		 strchr(lot, '\x1f'))
		why = "lot: missing, empty or longer than 64 bytes";
	else if (event_time(data, ev->time_ms, &at))
		why = "time: not Unix seconds (a number from 2000 to 2100)";
	else if (at > now + FUTURE_MS)
		why = "time: more than 5 minutes ahead of the node's clock";
	if (why) {
		st->bad_events++;
		/* never the plate: ids only */
		api->log(ctx, LINLI_LOG_WARN, "gate %s: %s event ignored: %s", gate, name, why);
		return;
	}
	bool offline = dbool(data, "offline");
	if (entry)
		on_entry(ctx, st, gate, ev->scope, plate, lot, data, at, offline, now);
	else
		on_exit_(ctx, st, gate, plate, lot, at, offline, now);
}

struct occ_op {
	bool occ;
	int64_t since;
};

static int occ_update(linli_ctx *ctx, const char *id, linli_record **rec, void *ud, char *err,
		      size_t errlen)
{
	(void)ctx;
	const struct occ_op *x = ud;
	if (!*rec)
		return snprintf(err, errlen, "space %s was removed", id), LINLI_ENOENT;
	api->rec_set_bool(*rec, "occupied", x->occ);
	if (x->occ)
		api->rec_set_time(*rec, "occupied_since", x->since);
	else
		api->rec_remove(*rec, "occupied_since");
	return 0;
}

/*
 * A sensor's change written back to its spaces (parking_spaces.occupied and
 * occupied_since), on the plugin's own account (a bus handler: never a
 * command), only where the record says otherwise.
 */
static void spaces_write(linli_ctx *ctx, struct pstate *st, const char *sensor, bool occ,
			 int64_t since)
{
	char ids[8][LINLI_ID_MAX + 1], scopes[8][LINLI_SCOPE_MAX + 1];
	int n = 0;
	for (size_t i = 0; i < st->spaces.n && n < 8; i++) {
		const struct wf_ref_entry *e = &st->spaces.v[i];
		const char *s = NULL;
		bool cur = false;
		int64_t at = 0;
		if (api->rec_get_str(e->rec, "sensor", &s, NULL) || strcmp(s, sensor))
			continue;
		if (api->rec_get_bool(e->rec, "occupied", &cur) == 0 && cur == occ &&
		    (!occ ||
		     (api->rec_get_time(e->rec, "occupied_since", &at) == 0 && at == since)))
			continue;
		snprintf(ids[n], sizeof ids[n], "%s", e->id);
		snprintf(scopes[n++], sizeof scopes[0], "%s", e->scope);
	}
	/* (collected first: the update's watch refreshes the cache under the loop) */
	struct occ_op x = {occ, since};
	for (int i = 0; i < n; i++) {
		if (api->store_update(ctx, "parking_spaces", scopes[i], ids[i], occ_update, &x)) {
			st->store_errors++;
			api->log(ctx, LINLI_LOG_WARN, "space %s: occupancy not written: %s", ids[i],
				 api->store_last_error(ctx));
		} else
			st->spaces_written++;
	}
}

/* dev/gate/ID/event/NAME and dev/parking/ID/occupied. */
static int on_event(linli_ctx *ctx, const struct linli_event *ev, void *ud)
{
	struct pstate *st = ud;
	const char *a = strncmp(ev->topic, "dev/gate/", 9) == 0	      ? ev->topic + 9
			: strncmp(ev->topic, "dev/parking/", 12) == 0 ? ev->topic + 12
								      : NULL;
	const char *b = a ? strchr(a, '/') : NULL;
	char id[LINLI_ID_MAX + 1];
	if (!b || (size_t)(b - a) > LINLI_ID_MAX)
		return 0;
	memcpy(id, a, (size_t)(b - a));
	id[b - a] = '\0';
	if (ev->topic[4] == 'g') {
		if (strncmp(b, "/event/", 7) == 0)
			on_gate(ctx, st, ev, id, b + 7);
		return 0;
	}
	bool occ = false;
	if (strcmp(b, "/occupied") != 0 || api->rec_get_bool(ev->payload, "value", &occ))
		return 0;
	st->readings++;
	struct sensor *s = sensor_of(st, id, true);
	if (!s)
		return LINLI_ENOMEM;
	if (occ && !s->occupied)
		s->since = api->time_now_ms();
	if (!occ && s->alarmed) { /* the fire lane is free again: its alarm is over */
		for (size_t i = 0; i < st->spaces.n; i++) {
			const struct wf_ref_entry *e = &st->spaces.v[i];
			const char *sensor = NULL;
			if (api->rec_get_str(e->rec, "sensor", &sensor, NULL) || strcmp(sensor, id))
				continue;
			char src[LINLI_ID_MAX + 32];
			snprintf(src, sizeof src, "record:parking_spaces/%s", e->id);
			alarmreq_clear(&st->alarms, ctx, T_FIRE_LANE, e->scope, src,
				       "the vehicle left the fire lane");
		}
	}
	if (!occ)
		s->alarmed = false;
	bool changed = occ != s->occupied || !s->heard;
	s->occupied = occ;
	s->heard = true;
	if (changed)
		spaces_write(ctx, st, id, occ, s->since);
	return 0;
}

/* ---- reference data, on the plugin's own account ---- */

static void on_change(linli_ctx *ctx, const struct linli_change *ch, void *ud)
{
	wf_ref_follow(ud, ctx, ch);
}

/* ---- the timer: fire lanes, overstays, reloads ---- */

static int mark_alarmed(linli_ctx *ctx, const char *id, linli_record **rec, void *ud, char *err,
			size_t errlen)
{
	(void)ctx;
	(void)ud;
	if (!*rec)
		return snprintf(err, errlen, "session %s was removed", id), LINLI_ENOENT;
	api->rec_set_bool(*rec, "overstay_alarmed", true);
	return 0;
}

static void tick(linli_ctx *ctx, void *ud)
{
	struct pstate *st = ud;
	int64_t now = api->time_now_ms();
	char src[LINLI_ID_MAX + 32], details[256];
	for (size_t i = 0; i < st->spaces.n; i++) {
		const struct wf_ref_entry *e = &st->spaces.v[i];
		struct sensor *s = NULL;
		const char *sensor = rstr(e->rec, "sensor");
		if (strcmp(rstr(e->rec, "kind"), "fire_lane") != 0 || !sensor[0] ||
		    !(s = sensor_of(st, sensor, false)) || !s->occupied || s->alarmed ||
		    now - s->since < st->cfg.fire_ms)
			continue;
		s->alarmed = true;
		snprintf(src, sizeof src, "record:parking_spaces/%s", e->id);
		snprintf(details, sizeof details,
			 "a vehicle on fire lane space %s of lot %s for %lld s (sensor %s)",
			 rstr(e->rec, "code"), rstr(e->rec, "lot"),
			 (long long)((now - s->since) / 1000), sensor);
		alarmreq_raise(&st->alarms, ctx, T_FIRE_LANE,
			       plugcfg_sev_names[st->cfg.sev[T_FIRE_LANE]], e->scope, src, details);
	}
	for (size_t i = 0; i < S_BUCKETS; i++)
		for (struct open *o = st->open[i]; o; o = o->next) {
			if (o->alarmed || now - o->entered_at < st->cfg.overstay_ms)
				continue;
			o->alarmed = true;
			snprintf(src, sizeof src, "record:parking_sessions/%s", o->id);
			/* the lot from the key, never its plate */
			snprintf(details, sizeof details,
				 "session %s has been parked in lot %.*s for %lld h (over %lld h)",
				 o->id, (int)(strchr(o->key, '\x1f') - o->key), o->key,
				 (long long)((now - o->entered_at) / HOUR),
				 (long long)(st->cfg.overstay_ms / HOUR));
			if (api->store_update(ctx, "parking_sessions", o->scope, o->id,
					      mark_alarmed, NULL))
				api->log(ctx, LINLI_LOG_WARN, "session %s: overstay not noted: %s",
					 o->id, api->store_last_error(ctx));
			alarmreq_raise(&st->alarms, ctx, T_OVERSTAY,
				       plugcfg_sev_names[st->cfg.sev[T_OVERSTAY]], o->scope, src,
				       details);
		}
	plugcfg_reload(api, ctx, "parking", &st->cfg_json, cfg_parse, st, &st->refused_reloads);
}

/* ---- the open sessions at start, read on the plugin's own account ---- */

static int load_row(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	(void)ctx;
	struct pstate *st = ud;
	const char *plate = rstr(row->record, "plate"), *lot = rstr(row->record, "lot");
	int64_t at = 0;
	bool alarmed = false;
	char key[LOT_MAX + PLATE_MAX + 2];
	if (!plate[0] || !lot[0])
		return 0;
	api->rec_get_time(row->record, "entered_at", &at);
	api->rec_get_bool(row->record, "overstay_alarmed", &alarmed);
	open_key(key, lot, plate);
	return open_put(st, key, row->id, row->scope, at, alarmed) < 0 ? LINLI_ENOMEM : 0;
}

static int load_open(linli_ctx *ctx, struct pstate *st)
{
	static const char *const states[] = {"parked", "paid", "exit_allowed"};
	for (size_t i = 0; i < 3; i++) {
		struct linli_where w = {"state", states[i]};
		char cursor[LINLI_CURSOR_MAX] = "";
		do {
			struct linli_query q = {.size = sizeof q,
						.dataset = "parking_sessions",
						.where = &w,
						.n_where = 1,
						.limit = 1000,
						.cursor = cursor};
			int rc = api->store_scan(ctx, &q, load_row, st, cursor);
			if (rc < 0)
				return rc;
		} while (cursor[0]);
	}
	return 0;
}

/* ---- the console: every command acts as its caller ---- */

struct opts {
	const char *pos[1];
	int n_pos;
	const char *scope, *state, *lot;
};

static int parse(const struct linli_cmd_req *req, int lo, int hi, const char *usage, struct opts *o,
		 char *err, size_t errlen)
{
	const struct plugcmd_opt t[] = {
	    {"--scope", &o->scope}, {"--state", &o->state}, {"--lot", &o->lot}};
	return plugcmd_parse(req, lo, hi, usage, t, sizeof t / sizeof *t, o->pos, &o->n_pos, true,
			     err, errlen);
}

static int cmd_sessions(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
			char *err, size_t errlen)
{
	struct opts o;
	int rc =
	    parse(req, 0, 0, "[--state parked|paid|exit_allowed|exited] [--lot LOT] [--scope PATH]",
		  &o, err, errlen);
	if (rc)
		return rc;
	struct linli_where w[2];
	int nw = 0;
	if (o.state)
		w[nw++] = (struct linli_where){"state", o.state};
	if (o.lot)
		w[nw++] = (struct linli_where){"lot", o.lot};
	struct linli_query q = {.size = sizeof q,
				.dataset = "parking_sessions",
				.scope = o.scope,
				.where = nw ? w : NULL,
				.n_where = nw};
	struct plugcmd_list l = {0};
	return plugcmd_list(api, ctx, &q, NULL, NULL, &l, "sessions", reply, err, errlen);
}

/* What a session owes at `now` into r: fee_now, owed. */
static void put_owed(const struct pcfg *c, linli_record *r, int64_t now)
{
	const char *s = rstr(r, "state");
	int64_t in = 0, paid_at = 0;
	double paid = 0;
	if (strcmp(s, "exited") == 0 || api->rec_get_time(r, "entered_at", &in))
		return;
	api->rec_get_float(r, "paid", &paid);
	double fee = fee_for(c, r, in, now);
	bool grace = api->rec_get_time(r, "paid_at", &paid_at) == 0 && now <= paid_at + c->grace_ms;
	api->rec_set_float(r, "fee_now", fee);
	api->rec_set_float(r, "owed", grace || fee < paid ? 0 : cents(fee - paid));
}

static int cmd_show(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		    char *err, size_t errlen)
{
	struct pstate *st = req->ud;
	struct opts o;
	char scope[LINLI_SCOPE_MAX + 1] = "";
	linli_record *r = NULL;
	int rc = parse(req, 1, 1, "SESSION [--scope PATH]", &o, err, errlen);
	if (rc)
		return rc;
	if ((rc = api->store_get(ctx, "parking_sessions", o.scope, o.pos[0], &r, scope)))
		return snprintf(err, errlen, "session %s: %s", o.pos[0],
				api->store_last_error(ctx)),
		       rc;
	api->rec_set_str(r, "id", o.pos[0]);
	api->rec_set_str(r, "scope", scope);
	put_owed(&st->cfg, r, api->time_now_ms());
	*reply = r;
	return 0;
}

struct pay_op {
	const struct pcfg *cfg;
	int64_t now;
	double fee;		     /* out */
	char state[16];		     /* out */
	char lot[LOT_MAX + 1];	     /* out */
	char gate[LINLI_ID_MAX + 1]; /* out: the gate that held it, "" none */
};

/* The answer of a gate's open after a payment. */
static void on_gate_opened(linli_ctx *ctx, uint64_t req, int rc, const linli_record *result,
			   const char *err, void *ud)
{
	(void)req;
	(void)result;
	(void)ud;
	if (!state)
		return;
	if (rc) {
		state->gate_open_failed++;
		api->log(ctx, LINLI_LOG_WARN, "a paid exit's gate did not open: %s (%s)",
			 err && *err ? err : "no reason", linli_strerror(rc));
		return;
	}
	state->gate_opens++;
}

static int pay_update(linli_ctx *ctx, const char *id, linli_record **rec, void *ud, char *err,
		      size_t errlen)
{
	(void)ctx;
	struct pay_op *p = ud;
	int64_t in = 0;
	if (!*rec)
		return snprintf(err, errlen, "session %s: no such session", id), LINLI_ENOENT;
	const char *s = rstr(*rec, "state");
	if (strcmp(s, "exited") == 0)
		return snprintf(err, errlen, "session %s has exited: nothing to pay at the gate",
				id),
		       LINLI_ESTATE;
	if (api->rec_get_time(*rec, "entered_at", &in))
		return snprintf(err, errlen, "session %s has no entry time", id), LINLI_ESTATE;
	p->fee = fee_for(p->cfg, *rec, in, p->now);
	snprintf(p->gate, sizeof p->gate, "%s", rstr(*rec, "held_gate"));
	snprintf(p->state, sizeof p->state, "%s",
		 api->rec_has(*rec, "exit_held_at") ? "exit_allowed" : "paid");
	snprintf(p->lot, sizeof p->lot, "%s", rstr(*rec, "lot"));
	api->rec_set_float(*rec, "fee", p->fee);
	api->rec_set_float(*rec, "paid", p->fee);
	api->rec_set_time(*rec, "paid_at", p->now);
	api->rec_set_str(*rec, "state", p->state);
	return 0;
}

static int cmd_pay(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply, char *err,
		   size_t errlen)
{
	struct pstate *st = req->ud;
	struct opts o;
	int rc = parse(req, 1, 1, "SESSION [--scope PATH]", &o, err, errlen);
	if (rc)
		return rc;
	struct pay_op p = {.cfg = &st->cfg, .now = api->time_now_ms()};
	rc = api->store_update(ctx, "parking_sessions", o.scope, o.pos[0], pay_update, &p);
	if (rc)
		return snprintf(err, errlen, "%s", api->store_last_error(ctx)), rc;
	st->payments++;
	st->paid += p.fee;
	char obj[LINLI_ID_MAX + 24], detail[128];
	snprintf(obj, sizeof obj, "parking_sessions/%s", o.pos[0]);
	snprintf(detail, sizeof detail, "paid %.2f yuan in lot %s", p.fee, p.lot);
	api->audit(ctx, "parking.pay", o.scope, obj, "allowed", detail);
	linli_record *r = api->rec_new();
	if (!r)
		return snprintf(err, errlen, "out of memory"), LINLI_ENOMEM;
	api->rec_set_str(r, "session", o.pos[0]);
	api->rec_set_float(r, "fee", p.fee);
	api->rec_set_str(r, "state", p.state);
	api->rec_set_time(r, "paid_at", p.now);
	api->rec_set_time(r, "exit_by", p.now + st->cfg.grace_ms);
	/* Held at an exit and now paid: that gate opens (as the caller, audited). */
	if (strcmp(p.state, "exit_allowed") == 0 && p.gate[0]) {
		int orc =
		    api->dev_command(ctx, p.gate, "open", NULL, 10000, on_gate_opened, NULL, NULL);
		api->rec_set_str(r, "gate", p.gate);
		api->rec_set_str(r, "gate_open", orc ? linli_strerror(orc) : "sent");
		if (orc) {
			st->gate_open_failed++;
			api->log(ctx, LINLI_LOG_WARN, "session %s: gate %s not opened: %s",
				 o.pos[0], p.gate, linli_strerror(orc));
		}
	}
	*reply = r;
	return 0;
}

#define VISITOR_USAGE "PLATE --hours N [--lot LOT] [--house HOUSE] [--scope PATH]"

/*
 * parking visitor PLATE --hours N [--lot LOT] [--house H]: a resident's visitor
 * registered (by an operator, acting as the caller) in parking_visitors for
 * the next N hours; an entry within the window is billed "visitor" (free for
 * visitor_free_minutes). The plate is sensitive: never echoed, logged or
 * audited.
 */
static int cmd_visitor(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		       char *err, size_t errlen)
{
	struct pstate *st = req->ud;
	const char *lot, *hours, *house, *scope, *pos[1];
	int n_pos;
	const struct plugcmd_opt t[] = {
	    {"--lot", &lot}, {"--hours", &hours}, {"--house", &house}, {"--scope", &scope}};
	int rc = plugcmd_parse(req, 1, 1, VISITOR_USAGE, t, sizeof t / sizeof *t, pos, &n_pos,
			       false, err, errlen);
	if (rc)
		return rc;
	char *end = NULL;
	long long h = hours ? strtoll(hours, &end, 10) : 0;
	if (!hours || *end || h < 1 || h > 168)
		return snprintf(err, errlen, "--hours: the visit's window, whole hours 1 to 168"),
		       LINLI_EINVAL;
	if (strlen(pos[0]) > PLATE_MAX)
		return snprintf(err, errlen, "PLATE: longer than %d bytes", PLATE_MAX),
		       LINLI_EINVAL;
	if (lot && (!lot[0] || strlen(lot) > LOT_MAX || strchr(lot, '\x1f')))
		return snprintf(err, errlen, "--lot: a lot's name of at most %d bytes (or *)",
				LOT_MAX),
		       LINLI_EINVAL;
	if (house && (!house[0] || strlen(house) > 64))
		return snprintf(err, errlen, "--house: at most 64 bytes"), LINLI_EINVAL;
	int64_t now = api->time_now_ms();
	linli_record *r = api->rec_new();
	char id[LINLI_ID_MAX + 1] = "";
	if (!r)
		return snprintf(err, errlen, "out of memory"), LINLI_ENOMEM;
	api->rec_set_str(r, "plate", pos[0]);
	api->rec_set_str(r, "lot", lot ? lot : "*");
	api->rec_set_time(r, "valid_from", now);
	api->rec_set_time(r, "valid_until", now + h * HOUR);
	if (house)
		api->rec_set_str(r, "house", house);
	if (req->caller && req->caller->name)
		api->rec_set_str(r, "registered_by", req->caller->name);
	rc = api->store_put(ctx, "parking_visitors", scope, NULL, r, id, NULL);
	api->rec_free(r);
	if (rc)
		return snprintf(err, errlen, "the visitor is not registered: %s",
				api->store_last_error(ctx)),
		       rc;
	st->registrations++;
	char obj[LINLI_ID_MAX + 24], detail[128];
	snprintf(obj, sizeof obj, "parking_visitors/%s", id);
	snprintf(detail, sizeof detail, "lot %s for %lld h", lot ? lot : "*", h);
	api->audit(ctx, "parking.visitor", scope, obj, "allowed", detail);
	linli_record *out = api->rec_new();
	if (!out)
		return snprintf(err, errlen, "out of memory"), LINLI_ENOMEM;
	api->rec_set_str(out, "visitor", id);
	api->rec_set_str(out, "lot", lot ? lot : "*");
	api->rec_set_time(out, "valid_from", now);
	api->rec_set_time(out, "valid_until", now + h * HOUR);
	api->rec_set_int(out, "free_minutes", st->cfg.visitor_free_ms / 60000);
	*reply = out;
	return 0;
}

/* Occupancy per lot from the spaces the caller's jurisdiction holds. */
struct lot {
	char name[LOT_MAX + 1];
	int64_t spaces, occupied, unknown, by_kind_occ[8], by_kind[8];
};

static int cmd_occupancy(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
			 char *err, size_t errlen)
{
	(void)ctx;
	static const char *const kinds[8] = {"public", "private", "reserved", "accessible",
					     "ev",     "monthly", "visitor",  "fire_lane"};
	struct pstate *st = req->ud;
	struct opts o;
	int rc = parse(req, 0, 1, "[LOT] [--scope PATH]", &o, err, errlen);
	if (rc)
		return rc;
	const char *within = o.scope ? o.scope
			     : req->caller && req->caller->scope && req->caller->scope[0]
				 ? req->caller->scope
				 : NULL;
	if (o.scope && req->caller && req->caller->scope && req->caller->scope[0] &&
	    !wf_ref_covers(req->caller->scope, o.scope))
		return snprintf(err, errlen, "--scope %s: outside your jurisdiction %s", o.scope,
				req->caller->scope),
		       LINLI_EPERM;
	struct lot *lots = calloc(st->spaces.n + 1, sizeof *lots);
	size_t n = 0;
	if (!lots)
		return snprintf(err, errlen, "out of memory"), LINLI_ENOMEM;
	for (size_t i = 0; i < st->spaces.n; i++) {
		const struct wf_ref_entry *e = &st->spaces.v[i];
		const char *lot = rstr(e->rec, "lot"), *kind = rstr(e->rec, "kind"),
			   *sensor = rstr(e->rec, "sensor");
		if ((within && !wf_ref_covers(within, e->scope)) ||
		    (o.n_pos && strcmp(lot, o.pos[0])))
			continue;
		size_t j = 0;
		while (j < n && strcmp(lots[j].name, lot) != 0)
			j++;
		if (j == n)
			snprintf(lots[n++].name, LOT_MAX + 1, "%s", lot);
		int k = -1;
		for (int x = 0; x < 8; x++)
			if (strcmp(kind, kinds[x]) == 0)
				k = x;
		struct sensor *s = sensor[0] ? sensor_of(st, sensor, false) : NULL;
		lots[j].spaces++;
		if (k >= 0)
			lots[j].by_kind[k]++;
		if (!s)
			lots[j].unknown++;
		else if (s->occupied) {
			lots[j].occupied++;
			if (k >= 0)
				lots[j].by_kind_occ[k]++;
		}
	}
	if (o.n_pos && n == 0) {
		free(lots);
		return snprintf(err, errlen, "lot %.64s: no parking space of it within %s",
				o.pos[0], within ? within : "the node"),
		       LINLI_ENOENT;
	}
	linli_record *r = api->rec_new(), *arr = NULL;
	if (r && api->rec_set_array(r, "lots", &arr) == 0)
		for (size_t j = 0; j < n; j++) {
			linli_record *m = NULL, *kk = NULL;
			if (api->arr_push_map(arr, &m))
				continue;
			api->rec_set_str(m, "lot", lots[j].name);
			api->rec_set_int(m, "spaces", lots[j].spaces);
			api->rec_set_int(m, "occupied", lots[j].occupied);
			api->rec_set_int(m, "free",
					 lots[j].spaces - lots[j].occupied - lots[j].unknown);
			api->rec_set_int(m, "unknown", lots[j].unknown);
			if (api->rec_set_map(m, "occupied_by_kind", &kk) == 0)
				for (int x = 0; x < 8; x++)
					if (lots[j].by_kind[x])
						api->rec_set_int(kk, kinds[x],
								 lots[j].by_kind_occ[x]);
		}
	free(lots);
	*reply = r;
	return r ? 0 : LINLI_ENOMEM;
}

/*
 * GET /api/v1/apps/parking/screen: the big screen's parking panel — the occupancy of
 * each lot within the caller's jurisdiction, as `parking occupancy` answers it (spaces,
 * occupied, free, unknown, occupied by kind; never a plate or a session).
 */
static int route_screen(linli_ctx *ctx, const struct linli_http_req *req, linli_record **reply,
			int *status, char *err, size_t errlen)
{
	(void)status;
	int qrc = plugcmd_no_query(api, req, "screen", err, errlen);
	if (qrc)
		return qrc;
	static const char *const none[] = {NULL};
	struct linli_cmd_req c = {
	    .size = sizeof c, .argc = 0, .argv = none, .ud = req->ud, .caller = req->caller};
	return cmd_occupancy(ctx, &c, reply, err, errlen);
}

static int cmd_stats(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		     char *err, size_t errlen)
{
	(void)ctx;
	struct pstate *st = req->ud;
	linli_record *r = api->rec_new(), *c = cfg_record(&st->cfg);
	if (!r || !c) {
		api->rec_free(r);
		api->rec_free(c);
		return snprintf(err, errlen, "out of memory"), LINLI_ENOMEM;
	}
	api->rec_set_int(r, "entries", st->entries);
	api->rec_set_int(r, "exits", st->exits);
	api->rec_set_int(r, "late_entries", st->late_entries);
	api->rec_set_int(r, "late_exits", st->late_exits);
	api->rec_set_int(r, "exits_held", st->exits_held);
	api->rec_set_int(r, "unmatched_exits", st->unmatched_exits);
	api->rec_set_int(r, "duplicate_entries", st->duplicates);
	api->rec_set_int(r, "bad_events", st->bad_events);
	api->rec_set_int(r, "store_errors", st->store_errors);
	api->rec_set_int(r, "open_sessions", st->n_open);
	api->rec_set_int(r, "payments", st->payments);
	api->rec_set_float(r, "fees_at_exit", cents(st->fees));
	api->rec_set_float(r, "paid", cents(st->paid));
	api->rec_set_int(r, "sensor_readings", st->readings);
	api->rec_set_int(r, "spaces_written", st->spaces_written);
	api->rec_set_int(r, "gate_opens", st->gate_opens);
	api->rec_set_int(r, "gate_open_failed", st->gate_open_failed);
	api->rec_set_int(r, "spaces", (int64_t)st->spaces.n);
	api->rec_set_int(r, "passes", (int64_t)st->passes.n);
	api->rec_set_int(r, "visitors", (int64_t)st->visitors.n);
	api->rec_set_int(r, "visitor_entries", st->visitor_entries);
	api->rec_set_int(r, "visitors_registered", st->registrations);
	alarmreq_put_counts(&st->alarms, r);
	api->rec_set_int(r, "refused_reloads", st->refused_reloads);
	api->rec_set_record(r, "config", c);
	api->rec_free(c);
	*reply = r;
	return 0;
}

/* ---- init and fini ---- */

static void free_state(struct pstate *st)
{
	for (size_t i = 0; i < S_BUCKETS; i++)
		for (struct open *o = st->open[i], *n; o; o = n) {
			n = o->next;
			free(o);
		}
	for (size_t i = 0; i < D_BUCKETS; i++)
		for (struct sensor *s = st->sensors[i], *n; s; s = n) {
			n = s->next;
			free(s);
		}
	wf_ref_clear(&st->spaces);
	wf_ref_clear(&st->passes);
	wf_ref_clear(&st->visitors);
	free(st->cfg_json);
	free(st);
}

static int parking_init(linli_ctx *ctx, const struct linli_api *a)
{
	static const struct plugcmd_action actions[] = {
	    {"parking.list", "viewer", NULL, NULL, "see parking sessions and occupancy"},
	    {"parking.pay", "operator", NULL, NULL, "take the payment of a parking session"},
	    {"parking.visitor", "operator", NULL, NULL,
	     "register a visitor's plate for a window (its free time applies)"},
	    {"parking.stats", "operator", NULL, NULL, "see the counters and tariff of parking"},
	};
	static const struct plugcmd_route routes[] = {
	    {"screen", "GET", "screen", "parking.list", route_screen}};
	static const struct plugcmd_cmd cmds[] = {
	    {"sessions", "[--state parked|paid|exit_allowed|exited] [--lot LOT] [--scope PATH]",
	     "parking sessions (plates masked without the grant)", "parking.list", cmd_sessions},
	    {"show", "SESSION [--scope PATH]", "one session, with what it owes now", "parking.list",
	     cmd_show},
	    {"pay", "SESSION [--scope PATH]", "take the fee of a session at the tariff now",
	     "parking.pay", cmd_pay},
	    {"visitor", VISITOR_USAGE,
	     "register a visitor's plate: within the window its stay is free for "
	     "visitor_free_minutes",
	     "parking.visitor", cmd_visitor},
	    {"occupancy", "[LOT] [--scope PATH]", "spaces occupied and free per lot, live",
	     "parking.list", cmd_occupancy},
	    {"stats", "", "entries, exits, fees, alarms, the tariff", "parking.stats", cmd_stats},
	};
	api = a;
	char err[768] = "";
	bool changed = false;
	uint64_t wid = 0;
	struct pstate *st = calloc(1, sizeof *st);
	int rc = st ? 0 : LINLI_ENOMEM;
	if (!rc) {
		wf_ref_init(&st->spaces, api, "parking_spaces");
		wf_ref_init(&st->passes, api, "parking_passes");
		wf_ref_init(&st->visitors, api, "parking_visitors");
		alarmreq_init(&st->alarms, api, type_names, T_N);
		rc = plugcfg_load(&(const struct plugcfg){api, "parking", err, sizeof err}, ctx,
				  &st->cfg_json, cfg_parse, st, &changed);
	}
	if (!rc)
		rc = api->store_watch(ctx, "parking_spaces", on_change, &st->spaces, &wid);
	if (!rc)
		rc = api->store_watch(ctx, "parking_passes", on_change, &st->passes, &wid);
	if (!rc)
		rc = wf_ref_load(&st->spaces, ctx);
	if (!rc)
		rc = api->store_watch(ctx, "parking_visitors", on_change, &st->visitors, &wid);
	if (!rc)
		rc = wf_ref_load(&st->passes, ctx);
	if (!rc)
		rc = wf_ref_load(&st->visitors, ctx);
	if (!rc && (rc = load_open(ctx, st)))
		snprintf(err, sizeof err, "the open sessions not read: %s",
			 api->store_last_error(ctx));
	if (!rc)
		rc = api->subscribe(ctx, "dev/gate/+/event/#", on_event, st, NULL);
	if (!rc)
		rc = api->subscribe(ctx, "dev/parking/+/occupied", on_event, st, NULL);
	if (!rc)
		rc = plugcmd_register(api, ctx, actions, PLUGCMD_N(actions), cmds, PLUGCMD_N(cmds),
				      routes, PLUGCMD_N(routes), st, err, sizeof err);
	if (!rc)
		rc = api->timer_add(ctx, 1000, 1000, tick, st, NULL);
	if (rc) {
		api->set_error(ctx, "%s", err[0] ? err : linli_strerror(rc));
		if (st)
			free_state(st);
		return rc;
	}
	state = st;
	api->log(ctx, LINLI_LOG_INFO,
		 "parking: %zu spaces, %zu passes, %lld open sessions; %.2f yuan an hour after "
		 "%lld free minutes, %.2f a day at most; %d lots with a tariff of their own",
		 st->spaces.n, st->passes.n, (long long)st->n_open, st->cfg.def.per_hour,
		 (long long)(st->cfg.def.free_ms / 60000), st->cfg.def.daily_cap, st->cfg.n_lots);
	return 0;
}

static void parking_fini(linli_ctx *ctx, const struct linli_api *a)
{
	(void)ctx;
	(void)a;
	if (state)
		free_state(state);
	state = NULL;
}

LINLI_PLUGIN(
    parking_init, parking_fini, .name = "parking", .version = "1.0.0", .family = "public_services",
    .description = "Smart parking: sessions from gate entries and exits (late uploads keep "
		   "the gate's time), fees by a tariff that is data, monthly passes, "
		   "occupancy per lot from space sensors, overstays and blocked fire lanes "
		   "raised through alarms",
    .requires = {"alarms"},
    .capabilities = {
	"store.read:parking_sessions", "store.write:parking_sessions", "sensitive:parking_sessions",
	"store.read:parking_passes", "sensitive:parking_passes", "store.read:parking_spaces",
	"store.write:parking_spaces", "device.command:gate", "store.read:parking_visitors",
	"store.write:parking_visitors", "sensitive:parking_visitors", "sensitive:devices",
	"bus.subscribe:dev/gate/+/event/#", "bus.subscribe:dev/parking/+/occupied",
	"bus.publish:alarmreq/raise", "bus.publish:alarmreq/clear"});
