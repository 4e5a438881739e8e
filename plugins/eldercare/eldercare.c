/*
 * eldercare — welfare checks for elders living alone (智慧养老), the
 * elderly-care plugin of the public-services family (plugins/eldercare/).
 *
 * It keeps the `elders` roster in memory (loaded at start and followed
 * through a store watch, both on the plugin's own account) with each elder's
 * linked devices — water meter, door sensor, motion sensor (PIR), wearable —,
 * contacts in order,
 * own thresholds (else plugins.eldercare's community defaults) and away
 * dates. Every reading of a linked device is evaluated at once against that
 * elder's windows in memory (welfare.h), never by a periodic scan:
 *
 *   water meter   cumulative m³ → litres per half hour over a sliding window:
 *                 below water_min_l → no_water; above water_max_l, or use in
 *                 every half hour of 24 h → water_leak; a meter gone
 *                 unavailable → no_data (to the community, never "no water")
 *   door sensor   no opening, and no motion of the PIR, for door_idle_h
 *   and PIR       (checked in daytime) → door_idle (the inactivity alert; a
 *                 PIR's motion is activity as an opening is, the better
 *                 evidence); night_openings openings in one night → door_night
 *   wearable      sos, fall → critical at once; heart rate outside
 *                 [hr_low, hr_high] for hr_for_min, or the wearable's own
 *                 heart_rate_abnormal event → heart_rate (major)
 *
 * An away elder (away_from..away_until) gets no water or door alerts. Each
 * condition opens one welfare alert (welfare_alerts) and raises an alarm
 * through the alarms plugin (alarmreq/raise; details name ids only). The
 * contact ladder (a transition table, wf_table.h) notifies contact 1, then,
 * unacknowledged after ack_within_min, the next contact, then opens a grid
 * incident (incidentreq/report) so that someone visits; every step is a
 * welfare_steps record. `eldercare ack` and `eldercare fine` ("I'm fine": a
 * false alarm, counted in elders.false_alarms, the alarm cleared) act as
 * their caller. The windows are checkpointed to checkpoint_file every
 * checkpoint_min and resumed at start. Kernel thread only; never blocks
 * (the checkpoint is one sequential file write).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linli/linli.h>

#include "plugcfg.h"
#include "plugcmd.h"
#include "welfare.h"
#include "wf_table.h"

static const struct linli_api *api;

/* ---- what it raises ---- */

enum kind { K_NO_WATER, K_LEAK, K_NO_DATA, K_DOOR_IDLE, K_DOOR_NIGHT, K_SOS, K_FALL, K_HR, K_N };
static const char *const kind_names[K_N] = {"no_water",	  "water_leak", "no_data", "door_idle",
					    "door_night", "sos",	"fall",	   "heart_rate"};
static const char *const type_names[K_N] = {
    "welfare_no_water",	  "welfare_water_leak", "welfare_no_data", "welfare_door_idle",
    "welfare_door_night", "welfare_sos",	"welfare_fall",	   "welfare_heart_rate"};
/* Indexes of plugcfg_sev_names: critical 0, major 1, minor 2, warning 3. */
static const int default_sev[K_N] = {1, 2, 3, 1, 2, 0, 0, 1};
/* no_data goes to the community (the alarm only): no contact ladder. */
#define LADDER(k) ((k) != K_NO_DATA)

/* ---- the alert's workflow (README, "Elderly care") ---- */

static const char *const states[] = {"open", "escalated", "acknowledged", "fine", "cleared"};
static const struct wf_move moves[] = {
    {"open", "escalate", "escalated", NULL}, /* the ladder ran out of contacts: an incident */
    {"open", "ack", "acknowledged", "eldercare.ack"},
    {"open", "fine", "fine", "eldercare.ack"},
    {"open", "clear", "cleared", NULL}, /* no_data: the meter is back */
    {"escalated", "ack", "acknowledged", "eldercare.ack"},
    {"escalated", "fine", "fine", "eldercare.ack"},
};
static const struct wf_table table = {
    "alert", "open", states, sizeof states / sizeof *states, moves, sizeof moves / sizeof *moves};

#define BUCKETS	   65536
#define CONTACTS   3
#define PATH_MAX_  512
#define DOOR_EVERY 60000 /* idle doors looked for once a minute (node clock) */
#define RETRY_MS   60000 /* an incident not opened is asked for again */
#define LIST_MAX   2000
#define CK_MAGIC   "LNEC"
#define CK_VERSION 1
#define CK_ROWS	   20000 /* elders' rows a tick writes into a checkpoint under way */

struct ecfg {
	double min_l, max_l, flow_l;
	int64_t window_h, idle_h, day_from, day_until, night_openings, hr_low, hr_high, hr_for_ms,
	    ack_ms, ckpt_ms;
	char category[65], grid[33], ckpt_file[PATH_MAX_];
	int sev[K_N];
};

/* One elder as the checks see it. */
struct elder {
	struct elder *next;
	char id[LINLI_ID_MAX + 1], scope[LINLI_SCOPE_MAX + 1], grid[LINLI_ID_MAX + 1];
	char meter[LINLI_ID_MAX + 1], door[LINLI_ID_MAX + 1], wearable[LINLI_ID_MAX + 1];
	char pir[LINLI_ID_MAX + 1];
	int64_t door_at, motion_at; /* the last opening, the last motion (in memory) */
	bool alone, meter_down;
	double min_l, max_l;			   /* < 0: the community's */
	int64_t window_h, idle_h, hr_low, hr_high; /* 0: the community's */
	int64_t away_from, away_until;		   /* 0: unset */
	bool contact[CONTACTS];			   /* the slots that hold a phone */
	char relation[CONTACTS][16];		   /* "" when not given */
	struct welf_water water;
	struct welf_hr hr;
	struct welf_door dw; /* the door's openings, the home's activity (door and PIR) */
};

/* A device linked to an elder. */
struct link {
	struct link *next;
	char device[LINLI_ID_MAX + 1];
	struct elder *e;
};

/* A raise waiting for its answer (freed at fini if the plugin stops first). */
struct pending_raise {
	struct pending_raise *next;
	uint64_t rid;
	int kind;
	int64_t t0;
	char alert[LINLI_ID_MAX + 1];
};

/* An alert whose ladder runs (open or escalated). */
struct alert {
	struct alert *next;
	char id[LINLI_ID_MAX + 1], scope[LINLI_SCOPE_MAX + 1], elder[LINLI_ID_MAX + 1];
	char alarm[LINLI_ID_MAX + 1];
	int kind, step;
	bool escalated, asking;
	int64_t step_at, retry_at;
	uint64_t rid;
};

struct estate {
	struct ecfg cfg;
	char *cfg_json;
	struct elder *elders[BUCKETS];
	struct link *links[BUCKETS];
	struct alert *alerts;
	struct pending_raise *pend;
	FILE *ck;	/* the checkpoint under way, or NULL */
	size_t ck_next; /* its next bucket of the roster */
	uint32_t ck_rows;
	int64_t ck_started;
	char ck_path[PATH_MAX_], ck_tmp[PATH_MAX_ + 8];
	int64_t n_elders, n_links, last_door, last_ckpt, ckpt_windows, ckpt_failed, resumed;
	int64_t water_readings, door_readings, motion_readings, hr_readings, events, resets,
	    opened[K_N], raised[K_N], failed[K_N], folded[K_N], suppressed_away, notified,
	    incidents, acks, fines, refused_reloads, latency_max_ms, latency_last_ms;
};

static struct estate *state; /* init to fini */

/* ---- configuration ---- */

static int cfg_parse(const struct plugcfg *p, linli_record *c, void *ud)
{
	static const char *const keys[] = {"water_min_l",	"water_max_l",	  "leak_flow_l",
					   "water_window_h",	"door_idle_h",	  "day_from",
					   "day_until",		"night_openings", "hr_low",
					   "hr_high",		"hr_for_min",	  "ack_within_min",
					   "incident_category", "grid",		  "checkpoint_file",
					   "checkpoint_min",	"severity"};
	struct estate *st = ud;
	struct ecfg f = {.min_l = 10,
			 .max_l = 1000,
			 .flow_l = 1,
			 .window_h = 24,
			 .idle_h = 12,
			 .day_from = 7,
			 .day_until = 21,
			 .night_openings = 3,
			 .hr_low = 45,
			 .hr_high = 120,
			 .hr_for_ms = 600000,
			 .ack_ms = 900000,
			 .ckpt_ms = 300000,
			 .category = "other"};
	memcpy(f.sev, default_sev, sizeof f.sev);
	const char *s = NULL;
	int rc = plugcfg_keys(p, c, keys, sizeof keys / sizeof keys[0]);
	if (!rc)
		rc = plugcfg_num(p, c, "water_min_l", 0, 10000, "litres", &f.min_l);
	if (!rc)
		rc = plugcfg_num(p, c, "water_max_l", 0, 100000, "litres; 0: no such check",
				 &f.max_l);
	if (!rc)
		rc = plugcfg_num(p, c, "leak_flow_l", 0.1, 1000, "litres in every half hour",
				 &f.flow_l);
	if (!rc)
		rc = plugcfg_int(p, c, "water_window_h", 1, 24, 1, "whole hours", &f.window_h);
	if (!rc)
		rc = plugcfg_int(p, c, "door_idle_h", 1, 72, 1, "whole hours", &f.idle_h);
	if (!rc)
		rc = plugcfg_int(p, c, "day_from", 0, 23, 1, "an hour of the day", &f.day_from);
	if (!rc)
		rc = plugcfg_int(p, c, "day_until", 1, 24, 1, "an hour of the day", &f.day_until);
	if (!rc && f.day_from >= f.day_until)
		rc = plugcfg_err(p, "day_until", "%lld must be after day_from (%lld)",
				 (long long)f.day_until, (long long)f.day_from);
	if (!rc)
		rc = plugcfg_int(p, c, "night_openings", 1, 100, 1, "a whole number",
				 &f.night_openings);
	if (!rc)
		rc = plugcfg_int(p, c, "hr_low", 20, 200, 1, "beats per minute", &f.hr_low);
	if (!rc)
		rc = plugcfg_int(p, c, "hr_high", 30, 250, 1, "beats per minute", &f.hr_high);
	if (!rc && f.hr_low >= f.hr_high)
		rc = plugcfg_err(p, "hr_high", "%lld must be above hr_low (%lld)",
				 (long long)f.hr_high, (long long)f.hr_low);
	if (!rc)
		rc = plugcfg_int(p, c, "hr_for_min", 1, 1440, 60000, "whole minutes", &f.hr_for_ms);
	if (!rc)
		rc =
		    plugcfg_int(p, c, "ack_within_min", 1, 1440, 60000, "whole minutes", &f.ack_ms);
	if (!rc)
		rc = plugcfg_int(p, c, "checkpoint_min", 1, 1440, 60000, "whole minutes",
				 &f.ckpt_ms);
	if (!rc && api->rec_has(c, "incident_category")) {
		if (api->rec_get_str(c, "incident_category", &s, NULL) || !s[0] ||
		    strlen(s) >= sizeof f.category)
			rc = plugcfg_err(p, "incident_category",
					 "must be an incident category (e.g. \"other\")");
		else
			snprintf(f.category, sizeof f.category, "%s", s);
	}
	if (!rc && api->rec_has(c, "grid")) {
		if (api->rec_get_str(c, "grid", &s, NULL) || !s[0] || strlen(s) >= sizeof f.grid ||
		    strchr(s, '/'))
			rc = plugcfg_err(p, "grid",
					 "must be a grid code (the last element of its path, e.g. "
					 "\"g01\")");
		else
			snprintf(f.grid, sizeof f.grid, "%s", s);
	}
	if (!rc && api->rec_has(c, "checkpoint_file")) {
		if (api->rec_get_str(c, "checkpoint_file", &s, NULL) || !s[0] ||
		    strlen(s) + 5 >= sizeof f.ckpt_file)
			rc = plugcfg_err(p, "checkpoint_file",
					 "must be the path of the file the windows are kept in");
		else
			snprintf(f.ckpt_file, sizeof f.ckpt_file, "%s", s);
	}
	if (!rc)
		rc = plugcfg_sevs(p, c, type_names, K_N, NULL, f.sev);
	if (!rc)
		st->cfg = f;
	return rc;
}

static linli_record *cfg_record(const struct ecfg *f)
{
	linli_record *r = api->rec_new();
	if (!r)
		return NULL;
	api->rec_set_float(r, "water_min_l", f->min_l);
	api->rec_set_float(r, "water_max_l", f->max_l);
	api->rec_set_float(r, "leak_flow_l", f->flow_l);
	api->rec_set_int(r, "water_window_h", f->window_h);
	api->rec_set_int(r, "door_idle_h", f->idle_h);
	api->rec_set_int(r, "day_from", f->day_from);
	api->rec_set_int(r, "day_until", f->day_until);
	api->rec_set_int(r, "night_openings", f->night_openings);
	api->rec_set_int(r, "hr_low", f->hr_low);
	api->rec_set_int(r, "hr_high", f->hr_high);
	api->rec_set_int(r, "hr_for_min", f->hr_for_ms / 60000);
	api->rec_set_int(r, "ack_within_min", f->ack_ms / 60000);
	api->rec_set_str(r, "incident_category", f->category);
	api->rec_set_str(r, "grid", f->grid);
	api->rec_set_str(r, "checkpoint_file", f->ckpt_file);
	api->rec_set_int(r, "checkpoint_min", f->ckpt_ms / 60000);
	plugcfg_put_sevs(api, r, type_names, K_N, f->sev);
	return r;
}

/* ---- the roster in memory ---- */

static size_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (size_t)(h & (BUCKETS - 1));
}

static struct elder **elder_slot(struct estate *st, const char *scope, const char *id)
{
	struct elder **pp = &st->elders[hash(id)];
	while (*pp && (strcmp((*pp)->id, id) || strcmp((*pp)->scope, scope)))
		pp = &(*pp)->next;
	return pp;
}

static struct elder *elder_by_id(struct estate *st, const char *scope, const char *id)
{
	return *elder_slot(st, scope, id);
}

static struct elder *elder_of_device(struct estate *st, const char *device)
{
	for (struct link *l = st->links[hash(device)]; l; l = l->next)
		if (strcmp(l->device, device) == 0)
			return l->e;
	return NULL;
}

static void link_set(linli_ctx *ctx, struct estate *st, const char *device, struct elder *e)
{
	if (!device[0])
		return;
	struct link **pp = &st->links[hash(device)];
	for (; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->device, device) == 0) {
			if ((*pp)->e != e)
				api->log(ctx, LINLI_LOG_WARN,
					 "device %s is linked to elders %s and %s: only %s is "
					 "checked",
					 device, (*pp)->e->id, e->id, e->id);
			(*pp)->e = e;
			return;
		}
	struct link *l = calloc(1, sizeof *l);
	if (!l)
		return;
	snprintf(l->device, sizeof l->device, "%s", device);
	l->e = e;
	*pp = l;
	st->n_links++;
}

static void link_drop(struct estate *st, const char *device, const struct elder *e)
{
	if (!device[0])
		return;
	for (struct link **pp = &st->links[hash(device)]; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->device, device) == 0 && (*pp)->e == e) {
			struct link *l = *pp;
			*pp = l->next;
			free(l);
			st->n_links--;
			return;
		}
}

static void str_field(const linli_record *r, const char *key, char *out, size_t n)
{
	const char *s = NULL;
	out[0] = '\0';
	if (api->rec_get_str(r, key, &s, NULL) == 0 && strlen(s) < n)
		snprintf(out, n, "%s", s);
}

static int64_t int_field(const linli_record *r, const char *key)
{
	int64_t v = 0;
	return api->rec_get_int(r, key, &v) == 0 ? v : 0;
}

/* Record r of elder (scope, id) into the roster: its state kept where its devices stay. */
static void elder_follow(linli_ctx *ctx, struct estate *st, const char *scope, const char *id,
			 const linli_record *r)
{
	static const char *const phones[CONTACTS] = {"emergency_contact_phone", "contact2_phone",
						     "contact3_phone"};
	static const char *const relations[CONTACTS] = {"emergency_contact_relation",
							"contact2_relation", "contact3_relation"};
	struct elder **pp = elder_slot(st, scope, id), *e = *pp;
	if (!r) {
		if (!e)
			return;
		link_drop(st, e->meter, e);
		link_drop(st, e->door, e);
		link_drop(st, e->wearable, e);
		link_drop(st, e->pir, e);
		*pp = e->next;
		free(e);
		st->n_elders--;
		return;
	}
	if (!e) {
		if (!(e = calloc(1, sizeof *e)))
			return;
		snprintf(e->id, sizeof e->id, "%s", id);
		snprintf(e->scope, sizeof e->scope, "%s", scope);
		e->next = st->elders[hash(id)];
		st->elders[hash(id)] = e;
		st->n_elders++;
	}
	char meter[LINLI_ID_MAX + 1], door[LINLI_ID_MAX + 1], wear[LINLI_ID_MAX + 1];
	char pir[LINLI_ID_MAX + 1];
	str_field(r, "pir", pir, sizeof pir);
	if (strcmp(pir, e->pir)) {
		link_drop(st, e->pir, e);
		e->motion_at = 0;
	}
	str_field(r, "water_meter", meter, sizeof meter);
	str_field(r, "door_sensor", door, sizeof door);
	str_field(r, "wearable", wear, sizeof wear);
	if (strcmp(meter, e->meter)) {
		link_drop(st, e->meter, e);
		memset(&e->water, 0, sizeof e->water); /* another meter: a new baseline */
		e->meter_down = false;
	}
	if (strcmp(door, e->door)) {
		link_drop(st, e->door, e);
		memset(&e->dw, 0, sizeof e->dw);
	}
	if (strcmp(wear, e->wearable)) {
		link_drop(st, e->wearable, e);
		memset(&e->hr, 0, sizeof e->hr);
	}
	snprintf(e->meter, sizeof e->meter, "%s", meter);
	snprintf(e->door, sizeof e->door, "%s", door);
	snprintf(e->wearable, sizeof e->wearable, "%s", wear);
	snprintf(e->pir, sizeof e->pir, "%s", pir);
	link_set(ctx, st, e->meter, e);
	link_set(ctx, st, e->pir, e);
	link_set(ctx, st, e->door, e);
	link_set(ctx, st, e->wearable, e);
	str_field(r, "grid", e->grid, sizeof e->grid);
	bool b = false;
	e->alone = api->rec_get_bool(r, "lives_alone", &b) == 0 && b;
	double v = -1;
	e->min_l = api->rec_get_float(r, "water_min_l", &v) == 0 ? v : -1;
	e->max_l = api->rec_get_float(r, "water_max_l", &v) == 0 ? v : -1;
	e->window_h = int_field(r, "water_window_h");
	e->idle_h = int_field(r, "door_idle_h");
	e->hr_low = int_field(r, "hr_low");
	e->hr_high = int_field(r, "hr_high");
	e->away_from = e->away_until = 0;
	api->rec_get_time(r, "away_from", &e->away_from);
	api->rec_get_time(r, "away_until", &e->away_until);
	for (int i = 0; i < CONTACTS; i++) {
		const char *s = NULL;
		e->contact[i] = api->rec_get_str(r, phones[i], &s, NULL) == 0 && s[0];
		str_field(r, relations[i], e->relation[i], sizeof e->relation[i]);
	}
}

static int load_row(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	elder_follow(ctx, ud, row->scope, row->id, row->record);
	return 0;
}

/* Every elder of the plugin's jurisdiction, read on its own account (init). */
static int elders_load(linli_ctx *ctx, struct estate *st)
{
	char cursor[LINLI_CURSOR_MAX] = "";
	do {
		struct linli_query q = {
		    .size = sizeof q, .dataset = "elders", .limit = 1000, .cursor = cursor};
		int rc = api->store_scan(ctx, &q, load_row, st, cursor);
		if (rc < 0)
			return rc;
	} while (cursor[0]);
	return 0;
}

/* A change of elders (store watch, the plugin's account): that elder follows. */
static void on_elder(linli_ctx *ctx, const struct linli_change *ch, void *ud)
{
	struct estate *st = ud;
	linli_record *r = NULL;
	if (strcmp(ch->kind, "deleted") != 0 &&
	    api->store_get(ctx, "elders", ch->scope, ch->id, &r, NULL) != 0)
		r = NULL;
	elder_follow(ctx, st, ch->scope, ch->id, r);
	api->rec_free(r);
}

/* The limits an elder's water window is checked against. */
static struct welf_limits limits_of(const struct estate *st, const struct elder *e)
{
	struct welf_limits l = {e->min_l >= 0 ? e->min_l : st->cfg.min_l,
				e->max_l >= 0 ? e->max_l : st->cfg.max_l, st->cfg.flow_l,
				(int)(2 * (e->window_h ? e->window_h : st->cfg.window_h))};
	return l;
}

static bool away(const struct elder *e, int64_t t)
{
	if (!e->away_from && !e->away_until)
		return false;
	return (!e->away_from || t >= e->away_from) && (!e->away_until || t < e->away_until);
}

/* ---- alerts: the record, the alarm, the ladder ---- */

static struct alert *alert_of(struct estate *st, const char *scope, const char *elder, int kind)
{
	for (struct alert *a = st->alerts; a; a = a->next)
		if (a->kind == kind && strcmp(a->elder, elder) == 0 && strcmp(a->scope, scope) == 0)
			return a;
	return NULL;
}

static struct alert *alert_by_id(struct estate *st, const char *id)
{
	for (struct alert *a = st->alerts; a; a = a->next)
		if (strcmp(a->id, id) == 0)
			return a;
	return NULL;
}

static void alert_forget(struct estate *st, struct alert *x)
{
	for (struct alert **pp = &st->alerts; *pp; pp = &(*pp)->next)
		if (*pp == x) {
			*pp = x->next;
			free(x);
			return;
		}
}

/* A welfare_steps record (as whoever runs: the plugin, or a command's caller). */
static int record_step(linli_ctx *ctx, const char *scope, const char *alert, const char *elder,
		       int step, const char *action, int contact, const char *relation,
		       const char *incident, const char *by, const char *note)
{
	linli_record *r = api->rec_new();
	if (!r)
		return LINLI_ENOMEM;
	api->rec_set_str(r, "alert", alert);
	api->rec_set_str(r, "elder", elder);
	api->rec_set_int(r, "step", step);
	api->rec_set_str(r, "action", action);
	if (contact)
		api->rec_set_int(r, "contact", contact);
	if (relation && relation[0])
		api->rec_set_str(r, "relation", relation);
	if (incident && incident[0])
		api->rec_set_str(r, "incident", incident);
	api->rec_set_time(r, "at", api->time_now_ms());
	if (by)
		api->rec_set_str(r, "by", by);
	if (note && note[0])
		api->rec_set_str(r, "note", note);
	int rc = api->store_put(ctx, "welfare_steps", scope, NULL, r, NULL, NULL);
	api->rec_free(r);
	return rc;
}

struct setf {
	const char *key, *str;
	int64_t num;
	int kind; /* 0 str, 1 int, 2 time */
};

static int set_fields(linli_ctx *ctx, const char *id, linli_record **rec, void *ud, char *err,
		      size_t errlen)
{
	(void)ctx;
	if (!*rec)
		return snprintf(err, errlen, "alert %s is gone", id), LINLI_ENOENT;
	for (const struct setf *f = ud; f->key; f++)
		if (f->kind == 0)
			api->rec_set_str(*rec, f->key, f->str);
		else if (f->kind == 1)
			api->rec_set_int(*rec, f->key, f->num);
		else
			api->rec_set_time(*rec, f->key, f->num);
	return 0;
}

/* Set some fields of alert a's record (the plugin's account). */
static void alert_set(linli_ctx *ctx, const struct alert *a, const struct setf *f)
{
	if (api->store_update(ctx, "welfare_alerts", a->scope, a->id, set_fields, (void *)f))
		api->log(ctx, LINLI_LOG_WARN, "alert %s: not updated: %s", a->id,
			 api->store_last_error(ctx));
}

static void on_raised(linli_ctx *ctx, uint64_t id, int status, const linli_record *rec,
		      const char *err, void *ud)
{
	struct estate *st = ud;
	struct pending_raise *p = NULL;
	for (struct pending_raise **pp = &st->pend; *pp; pp = &(*pp)->next)
		if ((*pp)->rid == id) {
			p = *pp;
			*pp = p->next;
			break;
		}
	const char *aid = NULL;
	if (!p)
		return;
	if (status < 0) {
		st->failed[p->kind]++;
		api->log(ctx, LINLI_LOG_WARN, "%s alarm not raised: %s (%s)", type_names[p->kind],
			 err && *err ? err : "no reason", linli_strerror(status));
	} else {
		st->raised[p->kind]++;
		int64_t lat = api->time_now_ms() - p->t0;
		st->latency_last_ms = lat;
		if ((p->kind == K_SOS || p->kind == K_FALL) && lat > st->latency_max_ms)
			st->latency_max_ms = lat;
		struct alert *a = p->alert[0] ? alert_by_id(st, p->alert) : NULL;
		if (a && api->rec_get_str(rec, "id", &aid, NULL) == 0 && strcmp(a->alarm, aid)) {
			snprintf(a->alarm, sizeof a->alarm, "%s", aid);
			struct setf f[] = {{"alarm", aid, 0, 0}, {0}};
			alert_set(ctx, a, f);
		}
	}
	free(p);
}

static void raise_alarm(linli_ctx *ctx, struct estate *st, int kind, const char *scope,
			const char *elder, const char *alert, const char *details, int64_t t0)
{
	char src[LINLI_ID_MAX + 16];
	snprintf(src, sizeof src, "record:elders/%s", elder);
	linli_record *p = api->rec_new();
	struct pending_raise *pr = calloc(1, sizeof *pr);
	int rc = p && pr ? 0 : LINLI_ENOMEM;
	if (!rc) {
		pr->kind = kind;
		pr->t0 = t0;
		snprintf(pr->alert, sizeof pr->alert, "%s", alert ? alert : "");
		api->rec_set_str(p, "type", type_names[kind]);
		api->rec_set_str(p, "source", src);
		api->rec_set_str(p, "severity", plugcfg_sev_names[st->cfg.sev[kind]]);
		api->rec_set_str(p, "details", details);
		rc = api->request(ctx, "alarmreq/raise", scope, p, 10000, on_raised, st, &pr->rid);
	}
	if (!rc) {
		pr->next = st->pend;
		st->pend = pr;
	}
	api->rec_free(p);
	if (rc) {
		free(pr);
		st->failed[kind]++;
		api->log(ctx, LINLI_LOG_WARN, "%s alarm of elder %s at %s not raised: %s",
			 type_names[kind], elder, scope, linli_strerror(rc));
	}
}

static void on_cleared(linli_ctx *ctx, uint64_t id, int status, const linli_record *rec,
		       const char *err, void *ud)
{
	(void)id;
	(void)rec;
	(void)ud;
	if (status < 0 && status != LINLI_ENOENT)
		api->log(ctx, LINLI_LOG_WARN, "alarm not cleared: %s (%s)",
			 err && *err ? err : "no reason", linli_strerror(status));
}

static void clear_alarm(linli_ctx *ctx, int kind, const char *scope, const char *elder,
			const char *why)
{
	char src[LINLI_ID_MAX + 16];
	snprintf(src, sizeof src, "record:elders/%s", elder);
	linli_record *p = api->rec_new();
	if (!p)
		return;
	api->rec_set_str(p, "type", type_names[kind]);
	api->rec_set_str(p, "source", src);
	api->rec_set_str(p, "why", why);
	int rc = api->request(ctx, "alarmreq/clear", scope, p, 10000, on_cleared, NULL, NULL);
	api->rec_free(p);
	if (rc)
		api->log(ctx, LINLI_LOG_WARN, "%s alarm of elder %s not cleared: %s",
			 type_names[kind], elder, linli_strerror(rc));
}

/* The grid path of elder e's incident into out ("" when none is known). */
static void grid_path(linli_ctx *ctx, const struct estate *st, const struct alert *a,
		      const struct elder *e, char *out, size_t n)
{
	int depth = 1;
	for (const char *p = a->scope; *p; p++)
		depth += *p == '/';
	out[0] = '\0';
	if (depth == 5) {
		snprintf(out, n, "%s", a->scope);
		return;
	}
	char code[LINLI_ID_MAX + 1] = "";
	linli_record *g = NULL;
	if (e && e->grid[0]) {
		if (api->store_get(ctx, "grids", a->scope, e->grid, &g, NULL) == 0)
			str_field(g, "code", code, sizeof code);
		if (!code[0])
			snprintf(code, sizeof code, "%s", e->grid);
		api->rec_free(g);
	}
	if (!code[0] || strchr(code, '/'))
		snprintf(code, sizeof code, "%s", st->cfg.grid);
	if (code[0] && depth == 4)
		snprintf(out, n, "%s/%s", a->scope, code);
}

static void on_incident(linli_ctx *ctx, uint64_t rid, int status, const linli_record *rec,
			const char *err, void *ud)
{
	(void)ud;
	struct estate *st = state;
	struct alert *a = NULL;
	for (struct alert *x = st ? st->alerts : NULL; x; x = x->next)
		if (x->asking && x->rid == rid)
			a = x;
	if (!a)
		return;
	a->asking = false;
	const char *cid = NULL;
	if (status < 0 || api->rec_get_str(rec, "id", &cid, NULL)) {
		api->log(ctx, LINLI_LOG_WARN,
			 "alert %s: no incident opened: %s (asked again in a "
			 "minute)",
			 a->id, status < 0 && err && *err ? err : "no case id");
		a->retry_at = api->time_now_ms() + RETRY_MS;
		return;
	}
	char cid_[LINLI_ID_MAX + 1];
	snprintf(cid_, sizeof cid_, "%s", cid);
	a->escalated = true;
	a->step++;
	a->step_at = api->time_now_ms();
	st->incidents++;
	struct setf f[] = {{"state", "escalated", 0, 0},
			   {"incident", cid_, 0, 0},
			   {"step", NULL, a->step, 1},
			   {"step_at", NULL, a->step_at, 2},
			   {0}};
	alert_set(ctx, a, f);
	if (record_step(ctx, a->scope, a->id, a->elder, a->step, "incident", 0, NULL, cid_,
			"plugin:eldercare",
			"no contact acknowledged: a grid incident, someone visits"))
		api->log(ctx, LINLI_LOG_WARN, "alert %s: step not recorded: %s", a->id,
			 api->store_last_error(ctx));
	api->log(ctx, LINLI_LOG_INFO, "alert %s (%s of elder %s): incident %s opened", a->id,
		 kind_names[a->kind], a->elder, cid_);
}

/* The ladder's last step: a grid incident for alert a. */
static void ask_incident(linli_ctx *ctx, struct estate *st, struct alert *a, struct elder *e)
{
	char scope[LINLI_SCOPE_MAX + 1], title[160], desc[256];
	a->retry_at = api->time_now_ms() + RETRY_MS;
	grid_path(ctx, st, a, e, scope, sizeof scope);
	if (!scope[0]) {
		api->log(ctx, LINLI_LOG_WARN,
			 "alert %s: no incident opened: no grid known for elder %s at %s (set "
			 "the elder's grid, or plugins.eldercare.grid)",
			 a->id, a->elder, a->scope);
		return;
	}
	linli_record *p = api->rec_new();
	if (!p)
		return;
	snprintf(title, sizeof title, "welfare check: %s of elder %s", kind_names[a->kind],
		 a->elder);
	snprintf(desc, sizeof desc,
		 "welfare alert %s of elder %s: no contact acknowledged it; please visit", a->id,
		 a->elder);
	api->rec_set_str(p, "category", st->cfg.category);
	api->rec_set_str(p, "title", title);
	api->rec_set_str(p, "description", desc);
	if (a->alarm[0]) {
		api->rec_set_str(p, "channel", "alarm");
		api->rec_set_str(p, "source_alarm", a->alarm);
	}
	int rc = api->request(ctx, "incidentreq/report", scope, p, 0, on_incident, NULL, &a->rid);
	api->rec_free(p);
	if (rc) {
		api->log(ctx, rc == LINLI_ENOENT ? LINLI_LOG_INFO : LINLI_LOG_WARN,
			 "alert %s: no incident opened: incidentreq/report at %s: %s%s", a->id,
			 scope, linli_strerror(rc),
			 rc == LINLI_ENOENT
			     ? " (is the grid plugin loaded? asked again in a minute)"
			     : "");
		return;
	}
	a->asking = true;
}

/* The ladder's next step for alert a: the next contact who has a phone, else the incident. */
static void ladder_next(linli_ctx *ctx, struct estate *st, struct alert *a)
{
	struct elder *e = elder_by_id(st, a->scope, a->elder);
	int next = a->step + 1;
	while (e && next <= CONTACTS && !e->contact[next - 1])
		next++;
	if (!e || next > CONTACTS) {
		if (!a->asking && a->retry_at <= api->time_now_ms())
			ask_incident(ctx, st, a, e);
		return;
	}
	a->step = next;
	a->step_at = api->time_now_ms();
	st->notified++;
	struct setf f[] = {{"step", NULL, a->step, 1}, {"step_at", NULL, a->step_at, 2}, {0}};
	alert_set(ctx, a, f);
	if (record_step(ctx, a->scope, a->id, a->elder, a->step, "notify", next,
			e->relation[next - 1], NULL, "plugin:eldercare", NULL))
		api->log(ctx, LINLI_LOG_WARN, "alert %s: step not recorded: %s", a->id,
			 api->store_last_error(ctx));
	api->log(ctx, LINLI_LOG_INFO, "alert %s (%s of elder %s): contact %d notified (step %d)",
		 a->id, kind_names[a->kind], a->elder, next, a->step);
}

/*
 * Condition `kind` of elder e at t: one welfare alert per elder and kind
 * while it is open (a repeat is counted in it), its alarm raised (a repeat
 * folds there too), and the ladder's first step.
 */
static void alert_raise(linli_ctx *ctx, struct estate *st, struct elder *e, int kind,
			const char *device, const char *details, int64_t t0)
{
	struct alert *a = alert_of(st, e->scope, e->id, kind);
	if (a) {
		st->folded[kind]++;
		raise_alarm(ctx, st, kind, e->scope, e->id, a->id, details, t0);
		return;
	}
	int64_t now = api->time_now_ms();
	linli_record *r = api->rec_new();
	if (!r || !(a = calloc(1, sizeof *a))) {
		api->rec_free(r);
		return;
	}
	api->rec_set_str(r, "elder", e->id);
	api->rec_set_str(r, "kind", kind_names[kind]);
	api->rec_set_str(r, "severity", plugcfg_sev_names[st->cfg.sev[kind]]);
	api->rec_set_str(r, "state", "open");
	api->rec_set_int(r, "step", 0);
	api->rec_set_time(r, "raised_at", now);
	api->rec_set_time(r, "step_at", now);
	if (device && device[0])
		api->rec_set_str(r, "device", device);
	api->rec_set_str(r, "details", details);
	int rc = api->store_put(ctx, "welfare_alerts", e->scope, NULL, r, a->id, NULL);
	api->rec_free(r);
	if (rc) {
		api->log(ctx, LINLI_LOG_WARN, "%s alert of elder %s not stored: %s",
			 kind_names[kind], e->id, api->store_last_error(ctx));
		free(a);
		raise_alarm(ctx, st, kind, e->scope, e->id, NULL, details, t0);
		return;
	}
	snprintf(a->scope, sizeof a->scope, "%s", e->scope);
	snprintf(a->elder, sizeof a->elder, "%s", e->id);
	a->kind = kind;
	a->step_at = now;
	a->next = st->alerts;
	st->alerts = a;
	st->opened[kind]++;
	api->log(ctx, LINLI_LOG_INFO, "alert %s: %s of elder %s", a->id, kind_names[kind], e->id);
	raise_alarm(ctx, st, kind, e->scope, e->id, a->id, details, t0);
	if (LADDER(kind))
		ladder_next(ctx, st, a);
}

/* ---- readings and events ---- */

/* The device id of topic "dev/CLASS/ID/rest" into id; the rest, or NULL. */
static const char *topic_device(const char *topic, const char *cls, char *id)
{
	size_t n = strlen(cls);
	if (strncmp(topic, "dev/", 4) || strncmp(topic + 4, cls, n) || topic[4 + n] != '/')
		return NULL;
	const char *a = topic + 5 + n, *b = strchr(a, '/');
	if (!b || b == a || (size_t)(b - a) > LINLI_ID_MAX)
		return NULL;
	memcpy(id, a, (size_t)(b - a));
	id[b - a] = '\0';
	return b + 1;
}

static int64_t reading_time(const struct linli_event *ev)
{
	int64_t t = 0;
	if (api->rec_get_time(ev->payload, "time", &t) || t <= 0)
		t = ev->time_ms;
	return t;
}

static void water(linli_ctx *ctx, struct estate *st, struct elder *e, double m3, int64_t t)
{
	struct welf_limits l = limits_of(st, e);
	double used = 0;
	st->water_readings++;
	int edges = welf_water_reading(&e->water, &l, m3, t, &used);
	if (edges & WELF_RESET)
		st->resets++;
	char details[256];
	if ((edges & WELF_LOW) && (!e->alone || away(e, t))) {
		e->water.low = 0; /* looked at again once they are back */
		if (e->alone)
			st->suppressed_away++;
	} else if (edges & WELF_LOW) {
		snprintf(details, sizeof details,
			 "elder %s: %.1f L of water in %d h, below %.1f L (meter %s)", e->id, used,
			 l.window_b / 2, l.min_l, e->meter);
		alert_raise(ctx, st, e, K_NO_WATER, e->meter, details, t);
	}
	if (edges & WELF_LEAK) {
		if (l.max_l > 0 && used > l.max_l)
			snprintf(details, sizeof details,
				 "elder %s: %.1f L of water in %d h, above %.1f L: a leak? (meter "
				 "%s)",
				 e->id, used, l.window_b / 2, l.max_l, e->meter);
		else
			snprintf(details, sizeof details,
				 "elder %s: at least %.1f L in every half hour of 24 h: a leak? "
				 "(meter %s)",
				 e->id, l.flow_l, e->meter);
		alert_raise(ctx, st, e, K_LEAK, e->meter, details, t);
	}
}

static int on_water(linli_ctx *ctx, const struct linli_event *ev, void *ud)
{
	struct estate *st = ud;
	char id[LINLI_ID_MAX + 1];
	const char *rest = topic_device(ev->topic, "water_meter", id);
	struct elder *e = rest ? elder_of_device(st, id) : NULL;
	double v = 0;
	if (!e || strcmp(e->meter, id))
		return 0;
	if (strcmp(rest, "reading") == 0) {
		if (api->rec_get_float(ev->payload, "value", &v) == 0 && v >= 0)
			water(ctx, st, e, v, reading_time(ev));
		return 0;
	}
	st->events++;
	char details[200];
	if (strcmp(rest, "event/unavailable") == 0 && !e->meter_down) {
		e->meter_down = true;
		snprintf(details, sizeof details,
			 "elder %s: no data from water meter %s (unavailable): the no-water check "
			 "waits for it",
			 e->id, id);
		alert_raise(ctx, st, e, K_NO_DATA, id, details, ev->time_ms);
	} else if (strcmp(rest, "event/online") == 0 && e->meter_down) {
		e->meter_down = false;
		struct alert *a = alert_of(st, e->scope, e->id, K_NO_DATA);
		clear_alarm(ctx, K_NO_DATA, e->scope, e->id, "the water meter reports again");
		if (a) {
			struct setf f[] = {{"state", "cleared", 0, 0},
					   {"closed_at", NULL, api->time_now_ms(), 2},
					   {"closed_by", "plugin:eldercare", 0, 0},
					   {0}};
			alert_set(ctx, a, f);
			record_step(ctx, a->scope, a->id, a->elder, a->step, "cleared", 0, NULL,
				    NULL, "plugin:eldercare", "the water meter reports again");
			alert_forget(st, a);
		}
	}
	return 0;
}

/* The start of the night t falls in (0: daytime), in the node's local time. */
static int64_t night_of(linli_ctx *ctx, const struct estate *st, int64_t t)
{
	struct linli_tm tm = {.size = sizeof tm};
	int64_t d = 0;
	if (api->time_local(ctx, t, &tm))
		return 0;
	if (tm.hour >= st->cfg.day_from && tm.hour < st->cfg.day_until)
		return 0;
	api->time_day_start(ctx, t, tm.hour >= st->cfg.day_until ? 0 : -1, &d);
	return d ? d : 1;
}

static int on_door(linli_ctx *ctx, const struct linli_event *ev, void *ud)
{
	struct estate *st = ud;
	char id[LINLI_ID_MAX + 1];
	const char *rest = topic_device(ev->topic, "door", id), *v = NULL;
	struct elder *e = rest ? elder_of_device(st, id) : NULL;
	if (!e || strcmp(e->door, id) || api->rec_get_str(ev->payload, "value", &v, NULL) ||
	    strcmp(v, "open"))
		return 0;
	st->door_readings++;
	int64_t t = reading_time(ev);
	bool idle_over = false;
	e->door_at = t;
	if (welf_door_open(&e->dw, t, night_of(ctx, st, t), (int)st->cfg.night_openings,
			   &idle_over) &&
	    e->alone) {
		if (away(e, t)) {
			st->suppressed_away++;
			return 0;
		}
		char details[200];
		snprintf(details, sizeof details, "elder %s: door %s opened %d times tonight",
			 e->id, id, e->dw.night_opens);
		alert_raise(ctx, st, e, K_DOOR_NIGHT, id, details, t);
	}
	return 0;
}

/*
 * A PIR linked to an elder: its motion event, or its last_motion reading (Unix
 * seconds), is activity — the door's idle clock starts again (welf_motion).
 */
static int on_pir(linli_ctx *ctx, const struct linli_event *ev, void *ud)
{
	(void)ctx;
	struct estate *st = ud;
	char id[LINLI_ID_MAX + 1];
	const char *rest = topic_device(ev->topic, "pir", id);
	struct elder *e = rest ? elder_of_device(st, id) : NULL;
	int64_t t = 0, s = 0;
	if (!e || strcmp(e->pir, id))
		return 0;
	if (strcmp(rest, "event/motion") == 0)
		t = ev->time_ms;
	else if (strcmp(rest, "last_motion") == 0 &&
		 api->rec_get_int(ev->payload, "value", &s) == 0 && s > 0)
		t = s * 1000;
	if (t <= 0)
		return 0;
	if (t > api->time_now_ms()) /* a device clock ahead: not activity in the future */
		t = api->time_now_ms();
	st->motion_readings++;
	bool idle_over = false;
	if (t > e->motion_at)
		e->motion_at = t;
	welf_motion(&e->dw, t, &idle_over);
	return 0;
}

/* Once a minute in daytime: homes with no door opening and no motion for door_idle_h. */
static void doors_idle(linli_ctx *ctx, struct estate *st, int64_t now)
{
	if (night_of(ctx, st, now))
		return;
	for (size_t i = 0; i < BUCKETS; i++)
		for (struct elder *e = st->elders[i]; e; e = e->next) {
			int64_t h = e->idle_h ? e->idle_h : st->cfg.idle_h;
			if ((!e->door[0] && !e->pir[0]) || !e->alone || !e->dw.last_open ||
			    !welf_door_idle(&e->dw, now, h * 3600000))
				continue;
			if (away(e, now)) { /* latched: counted once, raised at no later check */
				st->suppressed_away++;
				continue;
			}
			char details[256];
			long long h_ = (long long)((now - e->dw.last_open) / 3600000);
			if (e->pir[0] && e->door[0])
				snprintf(details, sizeof details,
					 "elder %s: no motion (PIR %s) and no door opening (door "
					 "%s) for %lld h",
					 e->id, e->pir, e->door, h_);
			else if (e->pir[0])
				snprintf(details, sizeof details,
					 "elder %s: no motion (PIR %s) for %lld h", e->id, e->pir,
					 h_);
			else
				snprintf(details, sizeof details,
					 "elder %s: door %s not opened for %lld h", e->id, e->door,
					 h_);
			alert_raise(ctx, st, e, K_DOOR_IDLE, e->pir[0] ? e->pir : e->door, details,
				    now);
		}
}

static int on_wearable(linli_ctx *ctx, const struct linli_event *ev, void *ud)
{
	struct estate *st = ud;
	char id[LINLI_ID_MAX + 1], details[200];
	const char *rest = topic_device(ev->topic, "wearable", id);
	struct elder *e = rest ? elder_of_device(st, id) : NULL;
	if (!e || strcmp(e->wearable, id))
		return 0;
	if (strcmp(rest, "heart_rate") == 0) {
		int64_t bpm = 0;
		if (api->rec_get_int(ev->payload, "value", &bpm))
			return 0;
		st->hr_readings++;
		int64_t lo = e->hr_low ? e->hr_low : st->cfg.hr_low;
		int64_t hi = e->hr_high ? e->hr_high : st->cfg.hr_high;
		int64_t t = reading_time(ev);
		if (welf_hr_reading(&e->hr, (int)bpm, (int)lo, (int)hi, st->cfg.hr_for_ms, t) ==
		    1) {
			snprintf(details, sizeof details,
				 "elder %s: heart rate %lld bpm outside %lld-%lld for %lld min "
				 "(wearable %s)",
				 e->id, (long long)bpm, (long long)lo, (long long)hi,
				 (long long)(st->cfg.hr_for_ms / 60000), id);
			alert_raise(ctx, st, e, K_HR, id, details, t);
		}
		return 0;
	}
	st->events++;
	int kind = strcmp(rest, "event/sos") == 0		    ? K_SOS
		   : strcmp(rest, "event/fall") == 0		    ? K_FALL
		   : strcmp(rest, "event/heart_rate_abnormal") == 0 ? K_HR
								    : -1;
	if (kind < 0)
		return 0;
	linli_record *data = NULL;
	double bpm = 0;
	const char *bs = NULL;
	/* the bpm it tells, a number (or a numeric text, as some bridges send it) */
	if (kind == K_HR && api->rec_get_map((linli_record *)ev->payload, "data", &data) == 0 &&
	    api->rec_get_float(data, "bpm", &bpm) != 0 &&
	    api->rec_get_str(data, "bpm", &bs, NULL) == 0)
		bpm = strtod(bs, NULL);
	if (kind == K_HR && bpm > 0 && bpm < 1000)
		snprintf(details, sizeof details,
			 "elder %s: heart rate abnormal (%.0f bpm), told by wearable %s", e->id,
			 bpm, id);
	else if (kind == K_HR)
		snprintf(details, sizeof details,
			 "elder %s: heart rate abnormal, told by wearable %s", e->id, id);
	else
		snprintf(details, sizeof details, "elder %s: %s from wearable %s", e->id,
			 kind == K_SOS ? "SOS" : "a fall", id);
	alert_raise(ctx, st, e, kind, id, details, ev->time_ms);
	return 0;
}

/* ---- the checkpoint of the windows ---- */

struct ck_head {
	char magic[4];
	uint32_t version, size;
	uint32_t count;
	int64_t written_at;
};

struct ck_row {
	char scope[LINLI_SCOPE_MAX + 1];
	char elder[LINLI_ID_MAX + 1];
	char meter[LINLI_ID_MAX + 1];
	struct welf_water water;
	struct welf_hr hr;
	struct welf_door door;
};

/*
 * The checkpoint of every elder's windows into checkpoint_file: a temporary
 * file written CK_ROWS elders a tick (or all at once: `all`, at fini), its
 * header fixed, fsynced and renamed over the file once the roster has been
 * walked, so that a checkpoint of 100,000 elders (about 60 MiB) never holds
 * the kernel thread for long. Each elder's row is its windows as of the tick
 * that wrote it. 0 while under way or done; LINLI_EIO when it failed (logged).
 */
static int checkpoint_step(linli_ctx *ctx, struct estate *st, bool all)
{
	struct ck_row *row = NULL;
	bool ok = true;
	int64_t budget = CK_ROWS;
	if (!st->ck) {
		if (!st->cfg.ckpt_file[0])
			return 0;
		snprintf(st->ck_path, sizeof st->ck_path, "%s", st->cfg.ckpt_file);
		snprintf(st->ck_tmp, sizeof st->ck_tmp, "%s.tmp", st->ck_path);
		if (!(st->ck = fopen(st->ck_tmp, "wb"))) {
			st->ckpt_failed++;
			st->last_ckpt = api->time_now_ms(); /* tried: again at the next period */
			api->log(ctx, LINLI_LOG_WARN, "checkpoint: %s cannot be written: %s",
				 st->ck_tmp, strerror(errno));
			return LINLI_EIO;
		}
		struct ck_head h = {.version = CK_VERSION, .size = sizeof(struct ck_row)};
		st->ck_next = 0;
		st->ck_rows = 0;
		st->ck_started = api->time_now_ms();
		ok = fwrite(&h, sizeof h, 1, st->ck) == 1;
	}
	ok = ok && (row = calloc(1, sizeof *row));
	for (; ok && st->ck_next < BUCKETS && (all || budget > 0); st->ck_next++)
		for (struct elder *e = st->elders[st->ck_next]; ok && e; e = e->next) {
			if (!e->water.last_at && !e->dw.last_open && !e->hr.out_since)
				continue;
			memset(row, 0, sizeof *row);
			snprintf(row->scope, sizeof row->scope, "%s", e->scope);
			snprintf(row->elder, sizeof row->elder, "%s", e->id);
			snprintf(row->meter, sizeof row->meter, "%s", e->meter);
			row->water = e->water;
			row->hr = e->hr;
			row->door = e->dw;
			ok = fwrite(row, sizeof *row, 1, st->ck) == 1;
			st->ck_rows++;
			budget--;
		}
	free(row);
	if (ok && st->ck_next < BUCKETS)
		return 0; /* more at the next tick */
	struct ck_head h = {.version = CK_VERSION, .size = sizeof(struct ck_row)};
	memcpy(h.magic, CK_MAGIC, 4);
	h.written_at = st->ck_started;
	h.count = st->ck_rows;
	ok = ok && fseek(st->ck, 0, SEEK_SET) == 0 && fwrite(&h, sizeof h, 1, st->ck) == 1 &&
	     fflush(st->ck) == 0 && fsync(fileno(st->ck)) == 0;
	int e = errno;
	ok = fclose(st->ck) == 0 && ok;
	st->ck = NULL;
	st->last_ckpt = st->ck_started;
	if (!ok || rename(st->ck_tmp, st->ck_path)) {
		st->ckpt_failed++;
		api->log(ctx, LINLI_LOG_WARN, "checkpoint: %s not written: %s", st->ck_path,
			 strerror(ok ? errno : e));
		unlink(st->ck_tmp);
		return LINLI_EIO;
	}
	st->ckpt_windows = st->ck_rows;
	return 0;
}

/* The windows of checkpoint_file back into the roster (init, after the roster is loaded). */
static void resume(linli_ctx *ctx, struct estate *st)
{
	const char *path = st->cfg.ckpt_file;
	if (!path[0])
		return;
	FILE *f = fopen(path, "rb");
	if (!f) {
		if (errno != ENOENT)
			api->log(ctx, LINLI_LOG_WARN, "checkpoint: %s cannot be read: %s", path,
				 strerror(errno));
		return;
	}
	struct ck_head h;
	struct ck_row row;
	int64_t got = 0;
	if (fread(&h, sizeof h, 1, f) != 1 || memcmp(h.magic, CK_MAGIC, 4) ||
	    h.version != CK_VERSION || h.size != sizeof row) {
		api->log(ctx, LINLI_LOG_WARN,
			 "checkpoint: %s is not a checkpoint of this version: the windows start "
			 "empty",
			 path);
		fclose(f);
		return;
	}
	for (uint32_t i = 0; i < h.count && fread(&row, sizeof row, 1, f) == 1; i++) {
		row.scope[sizeof row.scope - 1] = row.elder[sizeof row.elder - 1] = '\0';
		row.meter[sizeof row.meter - 1] = '\0';
		struct elder *e = elder_by_id(st, row.scope, row.elder);
		if (!e)
			continue;
		if (e->meter[0] && strcmp(e->meter, row.meter) == 0)
			e->water = row.water;
		e->hr = row.hr;
		e->dw = row.door;
		got++;
	}
	fclose(f);
	st->resumed = got;
	st->last_ckpt = h.written_at;
	api->log(ctx, LINLI_LOG_INFO,
		 "resumed the windows of %lld elders from %s, written %lld s ago (readings since "
		 "then were not seen: their use counts at the next reading)",
		 (long long)got, path, (long long)((api->time_now_ms() - h.written_at) / 1000));
}

/* ---- the open alerts at start ---- */

static int alert_row(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	(void)ctx;
	struct estate *st = ud;
	const char *kind = NULL, *s = NULL;
	struct alert *a = calloc(1, sizeof *a);
	if (!a)
		return LINLI_ENOMEM;
	a->kind = -1;
	if (api->rec_get_str(row->record, "kind", &kind, NULL) == 0)
		for (int k = 0; k < K_N; k++)
			if (strcmp(kind, kind_names[k]) == 0)
				a->kind = k;
	if (a->kind < 0) {
		free(a);
		return 0;
	}
	snprintf(a->id, sizeof a->id, "%s", row->id);
	snprintf(a->scope, sizeof a->scope, "%s", row->scope);
	str_field(row->record, "elder", a->elder, sizeof a->elder);
	str_field(row->record, "alarm", a->alarm, sizeof a->alarm);
	a->step = (int)int_field(row->record, "step");
	api->rec_get_time(row->record, "step_at", &a->step_at);
	a->escalated =
	    api->rec_get_str(row->record, "state", &s, NULL) == 0 && strcmp(s, "escalated") == 0;
	a->next = st->alerts;
	st->alerts = a;
	return 0;
}

static int alerts_load(linli_ctx *ctx, struct estate *st)
{
	static const char *const live[] = {"open", "escalated"};
	for (int i = 0; i < 2; i++) {
		struct linli_where w = {"state", live[i]};
		char cursor[LINLI_CURSOR_MAX] = "";
		do {
			struct linli_query q = {.size = sizeof q,
						.dataset = "welfare_alerts",
						.where = &w,
						.n_where = 1,
						.limit = 1000,
						.cursor = cursor};
			int rc = api->store_scan(ctx, &q, alert_row, st, cursor);
			if (rc < 0)
				return rc;
		} while (cursor[0]);
	}
	return 0;
}

/* ---- the tick: the ladder, idle doors, the checkpoint, a reload ---- */

static void tick(linli_ctx *ctx, void *ud)
{
	struct estate *st = ud;
	int64_t now = api->time_now_ms();
	for (struct alert *a = st->alerts; a; a = a->next)
		if (LADDER(a->kind) && !a->escalated && !a->asking &&
		    now - a->step_at >= st->cfg.ack_ms && a->retry_at <= now)
			ladder_next(ctx, st, a);
	if (!st->last_door || now - st->last_door >= DOOR_EVERY || now < st->last_door) {
		st->last_door = now;
		doors_idle(ctx, st, now);
	}
	if (st->ck || (st->cfg.ckpt_file[0] &&
		       (now - st->last_ckpt >= st->cfg.ckpt_ms || now < st->last_ckpt)))
		checkpoint_step(ctx, st, false);
	plugcfg_reload(api, ctx, "eldercare", &st->cfg_json, cfg_parse, st, &st->refused_reloads);
}

/* ---- the console (acting as the caller) ---- */

struct opts {
	const char *pos[1];
	int n_pos;
	const char *scope, *state, *elder, *note;
};

static int parse(const struct linli_cmd_req *req, int want, const char *usage, struct opts *o,
		 char *err, size_t errlen)
{
	const struct plugcmd_opt t[] = {{"--scope", &o->scope},
					{"--state", &o->state},
					{"--elder", &o->elder},
					{"--note", &o->note}};
	int rc = plugcmd_parse(req, want, want, usage, t, sizeof t / sizeof *t, o->pos, &o->n_pos,
			       true, err, errlen);
	if (!rc && o->note && strlen(o->note) > 200)
		return snprintf(err, errlen, "--note: %zu bytes, longer than 200", strlen(o->note)),
		       LINLI_EINVAL;
	return rc;
}

/* What the checks hold of elder e now, into m. */
static void put_checks(const struct estate *st, struct elder *e, linli_record *m, int64_t now)
{
	struct welf_limits l = limits_of(st, e);
	api->rec_set_float(m, "water_min_l", l.min_l);
	api->rec_set_float(m, "water_max_l", l.max_l);
	api->rec_set_int(m, "water_window_h", l.window_b / 2);
	api->rec_set_int(m, "door_idle_h", e->idle_h ? e->idle_h : st->cfg.idle_h);
	api->rec_set_int(m, "hr_low", e->hr_low ? e->hr_low : st->cfg.hr_low);
	api->rec_set_int(m, "hr_high", e->hr_high ? e->hr_high : st->cfg.hr_high);
	api->rec_set_bool(m, "checked", e->alone);
	api->rec_set_bool(m, "away", away(e, now));
	api->rec_set_bool(m, "meter_unavailable", e->meter_down);
	if (e->water.last_at) {
		api->rec_set_float(m, "water_used_l", welf_water_used(&e->water, l.window_b, now));
		api->rec_set_bool(m, "window_covered",
				  welf_water_covered(&e->water, l.window_b, now));
		api->rec_set_time(m, "last_reading_at", e->water.last_at);
		api->rec_set_int(m, "meter_resets", e->water.resets);
	}
	if (e->dw.last_open)
		api->rec_set_time(m, "last_activity", e->dw.last_open);
	if (e->door_at)
		api->rec_set_time(m, "last_door_open", e->door_at);
	if (e->motion_at)
		api->rec_set_time(m, "last_motion", e->motion_at);
	if (e->hr.last)
		api->rec_set_int(m, "heart_rate", e->hr.last);
	int n = 0;
	for (int i = 0; i < CONTACTS; i++)
		n += e->contact[i];
	api->rec_set_int(m, "contacts", n);
}

struct list {
	struct plugcmd_list l; /* first: plugcmd_list hands the struct to list_row */
	struct estate *st;
	int64_t now;
};

static int list_row(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	(void)ctx;
	struct list *l = ud;
	linli_record *m, *c = NULL;
	int rc = plugcmd_push_row(api, &l->l, row, &m);
	struct elder *e = !rc && l->st ? elder_by_id(l->st, row->scope, row->id) : NULL;
	if (e && api->rec_set_map(m, "checks", &c) == 0)
		put_checks(l->st, e, c, l->now);
	return rc;
}

/* The rows of q into *reply = {count, KEY: rows}, with each elder's checks when l->st. */
static int list_reply(linli_ctx *ctx, struct linli_query *q, struct list *l, const char *key,
		      linli_record **reply, char *err, size_t errlen)
{
	l->l.max = LIST_MAX;
	return plugcmd_list(api, ctx, q, list_row, l, &l->l, key, reply, err, errlen);
}

static int cmd_list(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		    char *err, size_t errlen)
{
	struct opts o;
	int rc = parse(req, 0, "[--scope PATH]", &o, err, errlen);
	if (rc)
		return rc;
	struct list l = {.st = req->ud, .now = api->time_now_ms()};
	struct linli_query q = {.size = sizeof q, .dataset = "elders", .scope = o.scope};
	return list_reply(ctx, &q, &l, "elders", reply, err, errlen);
}

static int cmd_show(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		    char *err, size_t errlen)
{
	struct estate *st = req->ud;
	struct opts o;
	char scope[LINLI_SCOPE_MAX + 1] = "";
	linli_record *r = NULL, *c = NULL, *al = NULL;
	int rc = parse(req, 1, "ELDER [--scope PATH]", &o, err, errlen);
	if (rc)
		return rc;
	if ((rc = api->store_get(ctx, "elders", o.scope, o.pos[0], &r, scope)))
		return snprintf(err, errlen, "elder %s: %s", o.pos[0], api->store_last_error(ctx)),
		       rc;
	api->rec_set_str(r, "id", o.pos[0]);
	api->rec_set_str(r, "scope", scope);
	struct elder *e = elder_by_id(st, scope, o.pos[0]);
	if (e && api->rec_set_map(r, "checks", &c) == 0)
		put_checks(st, e, c, api->time_now_ms());
	if (api->rec_set_array(r, "alerts", &al) == 0)
		for (struct alert *a = st->alerts; a; a = a->next)
			if (strcmp(a->elder, o.pos[0]) == 0 && strcmp(a->scope, scope) == 0)
				api->arr_push_str(al, a->id);
	*reply = r;
	return 0;
}

static int cmd_alerts(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		      char *err, size_t errlen)
{
	struct opts o;
	int rc = parse(req, 0,
		       "[--state open|escalated|acknowledged|fine|cleared] [--elder E] "
		       "[--scope PATH]",
		       &o, err, errlen);
	if (rc)
		return rc;
	if (o.state && !wf_state_known(&table, o.state))
		return snprintf(
			   err, errlen,
			   "--state '%.32s': not a state (open, escalated, acknowledged, fine, "
			   "cleared)",
			   o.state),
		       LINLI_EINVAL;
	struct linli_where w[2];
	int nw = 0;
	if (o.elder)
		w[nw++] = (struct linli_where){"elder", o.elder};
	if (o.state)
		w[nw++] = (struct linli_where){"state", o.state};
	struct list l = {0};
	struct linli_query q = {.size = sizeof q,
				.dataset = "welfare_alerts",
				.scope = o.scope,
				.where = nw ? w : NULL,
				.n_where = nw};
	return list_reply(ctx, &q, &l, "alerts", reply, err, errlen);
}

/* ---- the big screen's panel ---- */

#define SCREEN_ROWS 50 /* open alerts listed, the oldest first */

struct eboard {
	int64_t now, open, escalated, by_step[10];
	linli_record *list;
	size_t listed;
};

static int board_row(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	(void)ctx;
	struct eboard *b = ud;
	char state[16], kind[24];
	str_field(row->record, "state", state, sizeof state);
	str_field(row->record, "kind", kind, sizeof kind);
	int64_t step = int_field(row->record, "step"), at = 0;
	if (!strcmp(state, "escalated"))
		b->escalated++;
	else
		b->open++;
	b->by_step[step >= 0 && step <= 9 ? step : 0]++;
	api->rec_get_time(row->record, "raised_at", &at);
	linli_record *m = NULL;
	/* Only the alert's id, kind, state, step, place and age: never the elder or details. */
	if (b->listed < SCREEN_ROWS && api->arr_push_map(b->list, &m) == 0) {
		b->listed++;
		api->rec_set_str(m, "id", row->id);
		api->rec_set_str(m, "kind", kind);
		api->rec_set_str(m, "state", state);
		api->rec_set_int(m, "step", step);
		api->rec_set_str(m, "scope", row->scope);
		api->rec_set_int(m, "age_s", at && b->now > at ? (b->now - at) / 1000 : 0);
	}
	return 0;
}

/*
 * GET /api/v1/apps/eldercare/screen: the big screen's elder-care panel — within the
 * caller's jurisdiction, the welfare alerts whose ladder runs (open, escalated), by the
 * ladder's step (0 not yet notified, 1..3 the contact called, then the incident), and
 * the first SCREEN_ROWS of them without the elder's name, phone or the details.
 */
static int route_screen(linli_ctx *ctx, const struct linli_http_req *req, linli_record **reply,
			int *status, char *err, size_t errlen)
{
	(void)status;
	int rc = plugcmd_no_query(api, req, "screen", err, errlen);
	if (rc)
		return rc;
	linli_record *r = api->rec_new(), *bs = NULL;
	struct eboard b = {.now = api->time_now_ms()};
	if (!r || api->rec_set_array(r, "alerts", &b.list)) {
		api->rec_free(r);
		return snprintf(err, errlen, "out of memory"), LINLI_ENOMEM;
	}
	static const char *const running[] = {"open", "escalated"};
	for (int i = 0; i < 2 && rc >= 0; i++) {
		struct linli_where w = {"state", running[i]};
		char cursor[LINLI_CURSOR_MAX] = "";
		do {
			struct linli_query q = {.size = sizeof q,
						.dataset = "welfare_alerts",
						.where = &w,
						.n_where = 1,
						.limit = 1000,
						.cursor = cursor};
			rc = api->store_scan(ctx, &q, board_row, &b, cursor);
		} while (rc >= 0 && cursor[0]);
	}
	if (rc < 0) {
		api->rec_free(r);
		snprintf(err, errlen, "screen: %s", api->store_last_error(ctx));
		return rc;
	}
	api->rec_set_int(r, "open", b.open + b.escalated);
	api->rec_set_int(r, "escalated", b.escalated);
	api->rec_set_map(r, "by_step", &bs);
	for (int i = 0; bs && i <= 9; i++)
		if (b.by_step[i]) {
			char k[4];
			snprintf(k, sizeof k, "%d", i);
			api->rec_set_int(bs, k, b.by_step[i]);
		}
	*reply = r;
	return 0;
}

static int cmd_steps(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		     char *err, size_t errlen)
{
	struct opts o;
	int rc = parse(req, 1, "ALERT [--scope PATH]", &o, err, errlen);
	if (rc)
		return rc;
	struct linli_where w = {"alert", o.pos[0]};
	struct list l = {0};
	struct linli_query q = {.size = sizeof q,
				.dataset = "welfare_steps",
				.scope = o.scope,
				.where = &w,
				.n_where = 1};
	return list_reply(ctx, &q, &l, "steps", reply, err, errlen);
}

struct count {
	int64_t n;
};

static int count_fine(linli_ctx *ctx, const char *id, linli_record **rec, void *ud, char *err,
		      size_t errlen)
{
	(void)ctx;
	struct count *c = ud;
	if (!*rec)
		return snprintf(err, errlen, "elder %s is gone", id), LINLI_ENOENT;
	c->n = int_field(*rec, "false_alarms") + 1;
	api->rec_set_int(*rec, "false_alarms", c->n);
	return 0;
}

/* ack and fine: the move on the alert, its step, as the caller. */
static int close_alert(linli_ctx *ctx, const struct linli_cmd_req *req, const char *verb,
		       linli_record **reply, char *err, size_t errlen)
{
	struct estate *st = req->ud;
	struct opts o;
	char scope[LINLI_SCOPE_MAX + 1] = "", elder[LINLI_ID_MAX + 1] = "", kind[32] = "";
	const char *state_ = NULL;
	linli_record *r = NULL;
	int rc = parse(req, 1, "ALERT [--scope PATH] [--note TEXT]", &o, err, errlen);
	if (rc)
		return rc;
	if ((rc = api->store_get(ctx, "welfare_alerts", o.scope, o.pos[0], &r, scope)))
		return snprintf(err, errlen, "alert %s: %s", o.pos[0], api->store_last_error(ctx)),
		       rc;
	str_field(r, "elder", elder, sizeof elder);
	str_field(r, "kind", kind, sizeof kind);
	int64_t step = int_field(r, "step");
	if (api->rec_get_str(r, "state", &state_, NULL))
		state_ = "?";
	rc = wf_move_check(&table, o.pos[0], state_, verb, NULL, err, errlen);
	api->rec_free(r);
	if (rc) {
		api->audit(ctx, strcmp(verb, "ack") ? "eldercare.fine" : "eldercare.ack", scope,
			   o.pos[0], "denied", err);
		return rc;
	}
	const char *by = req->caller && req->caller->name ? req->caller->name : "?";
	const char *to = strcmp(verb, "ack") == 0 ? "acknowledged" : "fine";
	int64_t now = api->time_now_ms();
	struct setf f[] = {
	    {"state", to, 0, 0}, {"closed_at", NULL, now, 2}, {"closed_by", by, 0, 0}, {0}};
	if ((rc = api->store_update(ctx, "welfare_alerts", scope, o.pos[0], set_fields, f)))
		return snprintf(err, errlen, "alert %s: %s", o.pos[0], api->store_last_error(ctx)),
		       rc;
	if ((rc = record_step(ctx, scope, o.pos[0], elder, (int)step,
			      strcmp(verb, "ack") == 0 ? "acknowledge" : "fine", 0, NULL, NULL, by,
			      o.note)))
		return snprintf(err, errlen, "alert %s: step not recorded: %s", o.pos[0],
				api->store_last_error(ctx)),
		       rc;
	struct count c = {0};
	int k = -1;
	for (int i = 0; i < K_N; i++)
		if (strcmp(kind, kind_names[i]) == 0)
			k = i;
	if (strcmp(verb, "fine") == 0) {
		st->fines++;
		if ((rc = api->store_update(ctx, "elders", scope, elder, count_fine, &c)))
			api->log(ctx, LINLI_LOG_WARN, "elder %s: false alarm not counted: %s",
				 elder, api->store_last_error(ctx));
		if (k >= 0)
			clear_alarm(ctx, k, scope, elder, "the elder is fine (a false alarm)");
	} else
		st->acks++;
	struct alert *a = alert_by_id(st, o.pos[0]);
	if (a)
		alert_forget(st, a);
	api->audit(ctx, strcmp(verb, "ack") ? "eldercare.fine" : "eldercare.ack", scope, o.pos[0],
		   "allowed", to);
	linli_record *out = api->rec_new();
	if (out) {
		api->rec_set_str(out, "id", o.pos[0]);
		api->rec_set_str(out, "state", to);
		api->rec_set_str(out, "elder", elder);
		if (strcmp(verb, "fine") == 0)
			api->rec_set_int(out, "false_alarms", c.n);
	}
	*reply = out;
	return 0;
}

static int cmd_ack(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply, char *err,
		   size_t errlen)
{
	return close_alert(ctx, req, "ack", reply, err, errlen);
}

static int cmd_fine(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		    char *err, size_t errlen)
{
	return close_alert(ctx, req, "fine", reply, err, errlen);
}

static linli_record *per_kind(linli_record *r, const char *key, const int64_t *v)
{
	linli_record *m = NULL;
	if (api->rec_set_map(r, key, &m) == 0)
		for (int i = 0; i < K_N; i++)
			api->rec_set_int(m, kind_names[i], v[i]);
	return m;
}

static int cmd_stats(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		     char *err, size_t errlen)
{
	(void)ctx;
	struct estate *st = req->ud;
	linli_record *r = api->rec_new(), *c = cfg_record(&st->cfg), *k = NULL;
	if (!r || !c) {
		api->rec_free(r);
		api->rec_free(c);
		return snprintf(err, errlen, "out of memory"), LINLI_ENOMEM;
	}
	int64_t active = 0;
	for (struct alert *a = st->alerts; a; a = a->next)
		active++;
	api->rec_set_int(r, "elders", st->n_elders);
	api->rec_set_int(r, "linked_devices", st->n_links);
	api->rec_set_int(r, "water_readings", st->water_readings);
	api->rec_set_int(r, "door_readings", st->door_readings);
	api->rec_set_int(r, "motion_readings", st->motion_readings);
	api->rec_set_int(r, "heart_rate_readings", st->hr_readings);
	api->rec_set_int(r, "events", st->events);
	api->rec_set_int(r, "meter_resets", st->resets);
	api->rec_set_int(r, "suppressed_away", st->suppressed_away);
	per_kind(r, "opened", st->opened);
	per_kind(r, "raised", st->raised);
	per_kind(r, "failed", st->failed);
	per_kind(r, "folded", st->folded);
	api->rec_set_int(r, "active_alerts", active);
	api->rec_set_int(r, "contacts_notified", st->notified);
	api->rec_set_int(r, "incidents", st->incidents);
	api->rec_set_int(r, "acknowledged", st->acks);
	api->rec_set_int(r, "fine", st->fines);
	api->rec_set_int(r, "alarm_latency_ms", st->latency_last_ms);
	api->rec_set_int(r, "sos_latency_max_ms", st->latency_max_ms);
	if (api->rec_set_map(r, "checkpoint", &k) == 0) {
		api->rec_set_str(k, "file", st->cfg.ckpt_file);
		api->rec_set_int(k, "windows", st->ckpt_windows);
		api->rec_set_int(k, "resumed", st->resumed);
		api->rec_set_int(k, "failed", st->ckpt_failed);
		if (st->last_ckpt)
			api->rec_set_time(k, "last_at", st->last_ckpt);
	}
	api->rec_set_int(r, "refused_reloads", st->refused_reloads);
	api->rec_set_record(r, "config", c);
	api->rec_free(c);
	*reply = r;
	return 0;
}

/* ---- init and fini ---- */

static void free_state(struct estate *st)
{
	for (size_t i = 0; i < BUCKETS; i++) {
		for (struct elder *e = st->elders[i], *n; e; e = n) {
			n = e->next;
			free(e);
		}
		for (struct link *l = st->links[i], *n; l; l = n) {
			n = l->next;
			free(l);
		}
	}
	while (st->alerts)
		alert_forget(st, st->alerts);
	for (struct pending_raise *p = st->pend, *n; p; p = n) {
		n = p->next;
		free(p);
	}
	free(st->cfg_json);
	free(st);
}

static int eldercare_init(linli_ctx *ctx, const struct linli_api *a)
{
	static const struct plugcmd_action actions[] = {
	    {"eldercare.read", "viewer", NULL, NULL, "list and show elders and their welfare alerts"},
	    {"eldercare.ack", "operator", NULL, NULL,
	     "acknowledge a welfare alert, or answer it \"I'm fine\" (a false alarm)"},
	    {"eldercare.stats", "operator", NULL, NULL, "see the counters and configuration of the checks"},
	};
	static const struct plugcmd_route routes[] = {
	    {"screen", "GET", "screen", "eldercare.read", route_screen}};
	static const struct plugcmd_cmd cmds[] = {
	    {"list", "[--scope PATH]", "elders with what their checks hold now", "eldercare.read",
	     cmd_list},
	    {"show", "ELDER [--scope PATH]", "one elder, its checks and open alerts",
	     "eldercare.read", cmd_show},
	    {"alerts", "[--state S] [--elder E] [--scope PATH]", "welfare alerts", "eldercare.read",
	     cmd_alerts},
	    {"steps", "ALERT [--scope PATH]", "every step of an alert's contact ladder",
	     "eldercare.read", cmd_steps},
	    {"ack", "ALERT [--scope PATH] [--note TEXT]",
	     "acknowledge an alert: its contact ladder stops", "eldercare.ack", cmd_ack},
	    {"fine", "ALERT [--scope PATH] [--note TEXT]",
	     "\"I'm fine\": a false alarm, counted for the elder; its alarm is cleared",
	     "eldercare.ack", cmd_fine},
	    {"stats", "", "readings, alerts, ladder steps, the checkpoint, the configuration",
	     "eldercare.stats", cmd_stats},
	};
	static const struct {
		const char *pattern;
		linli_event_fn fn;
	} subs[] = {
	    {"dev/water_meter/+/reading", on_water}, {"dev/water_meter/+/event/#", on_water},
	    {"dev/door/+/state", on_door},	     {"dev/wearable/+/heart_rate", on_wearable},
	    {"dev/wearable/+/event/#", on_wearable}, {"dev/pir/+/event/#", on_pir},
	    {"dev/pir/+/last_motion", on_pir},
	};
	api = a;
	char err[768] = "";
	bool changed = false;
	uint64_t wid = 0;
	struct estate *st = calloc(1, sizeof *st);
	int rc = st ? 0 : LINLI_ENOMEM;
	if (!rc)
		rc = wf_table_check(&table, err, sizeof err);
	if (!rc)
		rc = plugcfg_load(&(const struct plugcfg){api, "eldercare", err, sizeof err}, ctx,
				  &st->cfg_json, cfg_parse, st, &changed);
	if (!rc && (rc = api->store_watch(ctx, "elders", on_elder, st, &wid)))
		snprintf(err, sizeof err, "elders: %s", api->store_last_error(ctx));
	if (!rc && (rc = elders_load(ctx, st)))
		snprintf(err, sizeof err, "elders: %s", api->store_last_error(ctx));
	if (!rc && (rc = alerts_load(ctx, st)))
		snprintf(err, sizeof err, "welfare_alerts: %s", api->store_last_error(ctx));
	if (!rc)
		resume(ctx, st);
	for (size_t i = 0; !rc && i < sizeof subs / sizeof subs[0]; i++)
		rc = api->subscribe(ctx, subs[i].pattern, subs[i].fn, st, NULL);
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
	if (st->last_ckpt == 0)
		st->last_ckpt = api->time_now_ms();
	state = st;
	int64_t n_alerts = 0;
	for (struct alert *x = st->alerts; x; x = x->next)
		n_alerts++;
	api->log(ctx, LINLI_LOG_INFO,
		 "welfare checks: %lld elders, %lld linked devices, %lld open alerts; no water "
		 "below %.1f L in %lld h, contacts every %lld min; checkpoint %s",
		 (long long)st->n_elders, (long long)st->n_links, (long long)n_alerts,
		 st->cfg.min_l, (long long)st->cfg.window_h, (long long)(st->cfg.ack_ms / 60000),
		 st->cfg.ckpt_file[0] ? st->cfg.ckpt_file : "none (windows start empty)");
	return 0;
}

static void eldercare_fini(linli_ctx *ctx, const struct linli_api *a)
{
	(void)a;
	if (state) {
		checkpoint_step(ctx, state, true); /* the one under way, or a whole one */
		free_state(state);
	}
	state = NULL;
}

LINLI_PLUGIN(
    eldercare_init, eldercare_fini, .name = "eldercare", .version = "1.0.0",
    .family = "public_services",
    .description = "Elderly care: welfare checks for elders living alone (no water, "
		   "leak, no data, door and motion patterns, SOS/fall, heart rate) evaluated "
		   "per reading, a contact ladder to a grid incident; raised through alarms",
    .requires = {"alarms"},
    .capabilities = {"store.read:elders", "store.write:elders", "sensitive:elders",
		     "store.read:welfare_alerts", "store.write:welfare_alerts",
		     "store.read:welfare_steps", "store.write:welfare_steps", "store.read:grids",
		     "bus.subscribe:dev/water_meter/+/reading",
		     "bus.subscribe:dev/water_meter/+/event/#", "bus.subscribe:dev/door/+/state",
		     "bus.subscribe:dev/wearable/+/heart_rate",
		     "bus.subscribe:dev/wearable/+/event/#", "bus.subscribe:dev/pir/+/event/#",
		     "bus.subscribe:dev/pir/+/last_motion", "bus.publish:alarmreq/raise",
		     "bus.publish:alarmreq/clear", "bus.publish:incidentreq/report"});
