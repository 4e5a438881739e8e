/*
 * services.c — government services (政务服务): the service-item catalogue (事项) and the
 * workflow of applications (办件) as a transition table (plugins/lib/wf_table.h), the
 * promised time limit (承诺时限) in working days of the working calendar
 * (plugins/lib/wf_cal.h), stopped while materials are awaited (补正).
 *
 * Owns: the `services` console commands and a cache of the work_calendar records
 * (reloaded when they change). Every move is checked against the table and the
 * caller's action, written to applications and recorded in application_moves as the
 * caller (so the kernel audits it under the caller's name, via plugin:services); an
 * illegal move is refused and audited as denied. It never acts on its own account in
 * a command.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linli/linli.h>

#include "wf_cal.h"
#include "wf_ref.h"
#include "wf_table.h"

static const struct linli_api *api;

/* ---- the workflow (README, "Government services") ---- */

static const char *const states[] = {"submitted",  "accepted",	"rejected", "supplement_required",
				     "processing", "completed", "withdrawn"};

static const struct wf_move moves[] = {
    {"submitted", "accept", "accepted", "services.intake"},
    {"submitted", "reject", "rejected", "services.intake"},
    {"submitted", "withdraw", "withdrawn", "services.counter"},
    {"accepted", "request", "supplement_required", "services.intake"},
    {"accepted", "process", "processing", "services.handle"},
    {"accepted", "withdraw", "withdrawn", "services.counter"},
    {"supplement_required", "supply", "accepted", "services.counter"},
    {"supplement_required", "withdraw", "withdrawn", "services.counter"},
    {"processing", "request", "supplement_required", "services.handle"},
    {"processing", "finish", "completed", "services.handle"},
    {"processing", "withdraw", "withdrawn", "services.counter"},
};

static const struct wf_table table = {"application", "submitted",
				      states,	     sizeof states / sizeof *states,
				      moves,	     sizeof moves / sizeof *moves};

/* The plugin's actions: least role, deepest level, duty, summary. */
static const struct {
	const char *name, *role, *level, *duty, *summary;
} actions[] = {
    {"services.read", "viewer", NULL, NULL, "list service items, show and list applications"},
    {"services.catalogue", "operator", NULL, NULL, "add a service item (事项)"},
    {"services.counter", "operator", NULL, NULL,
     "submit an application for an applicant, record supplied materials or a withdrawal"},
    {"services.intake", "operator", NULL, NULL,
     "accept (受理) or reject (不予受理) an application, request materials (补正)"},
    {"services.handle", "operator", NULL, NULL,
     "process (办理) and complete (办结) an application, request materials while processing"},
};

/* ---- the reference data: service items and working calendars (wf_ref.h) ---- */

/*
 * The cached datasets are read on the plugin's own account (at init and in their
 * watchers), never in a command: the city's catalogue and calendar lie above a community
 * caller's jurisdiction, and a plugin acting as its caller cannot widen it.
 */
struct services {
	struct wf_ref items, calendars;
	struct wf_refcal rcal; /* the calendar built last */
};

static struct services *S;

/* A watched record changed (as the plugin, after the commit): its cache entry follows. */
static void on_change(linli_ctx *ctx, const struct linli_change *ch, void *ud)
{
	wf_ref_follow(ud, ctx, ch);
}

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

/* The working calendar of `scope` at `now`, as grid reads it (wf_ref_calendar). */
static const struct wf_cal *calendar(linli_ctx *ctx, const char *scope, int64_t now)
{
	return wf_ref_calendar(&S->rcal, &S->calendars, ctx, scope, now);
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

/* The instant `work` working ms after `start` at `scope`; 0 (no deadline) on error. */
static int64_t work_add(linli_ctx *ctx, const char *scope, int64_t start, int64_t work)
{
	struct wf_clock clk = {tm_local, tm_from_local, ctx};
	char err[256];
	int64_t out;
	if (wf_cal_add(calendar(ctx, scope, start), &clk, start, work, NULL, 0, &out, NULL, err,
		       sizeof err)) {
		api->log(ctx, LINLI_LOG_WARN, "deadline at %s: %s", scope, err);
		return 0;
	}
	return out;
}

/* The working ms in [a, b) at `scope`; 0 when it cannot be computed. */
static int64_t work_between(linli_ctx *ctx, const char *scope, int64_t a, int64_t b)
{
	struct wf_clock clk = {tm_local, tm_from_local, ctx};
	char err[256];
	int64_t w;
	if (b <= a ||
	    wf_cal_between(calendar(ctx, scope, b), &clk, a, b, NULL, 0, &w, NULL, err, sizeof err))
		return 0;
	return w;
}

/* ---- helpers ---- */

static const char *who_of(const struct linli_cmd_req *req)
{
	return req->caller && req->caller->name[0] ? req->caller->name : "kernel";
}

/* May the caller take `action` at `scope`? A request without a caller acts as the plugin. */
static int may(linli_ctx *ctx, const struct linli_cmd_req *req, const char *action,
	       const char *scope, char *err, size_t errlen)
{
	return req->caller ? api->caller_may(ctx, req->caller, action, scope, err, errlen) : 0;
}

static void join_args(const struct linli_cmd_req *req, int from, char *buf, size_t len)
{
	size_t off = 0;
	buf[0] = '\0';
	for (int i = from; i < req->argc && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s", i > from ? " " : "",
					req->argv[i]);
}

/*
 * Is `code` a service-item code in the national style: an area code of 8 digits, the
 * department's 2-4 capital letters, "-", the type's 2 capital letters, "-", a sequence of
 * 4 digits ("34010400MZ-GG-0007")? 0, or LINLI_EINVAL saying which part is wrong.
 */
static int code_check(const char *code, char *err, size_t errlen)
{
	const char *p = code, *why = NULL;
	int n = 0;
	while (n < 8 && p[n] >= '0' && p[n] <= '9')
		n++;
	if (n != 8)
		why = "it does not begin with an area code of 8 digits";
	else {
		p += 8;
		for (n = 0; p[n] >= 'A' && p[n] <= 'Z'; n++)
			;
		if (n < 2 || n > 4 || p[n] != '-')
			why = "the area code is not followed by 2-4 capital letters of the "
			      "department and '-'";
		else {
			p += n + 1;
			if (!(p[0] >= 'A' && p[0] <= 'Z' && p[1] >= 'A' && p[1] <= 'Z' &&
			      p[2] == '-'))
				why = "the department is not followed by 2 capital letters of the "
				      "type and '-'";
			else {
				p += 3;
				for (n = 0; p[n] >= '0' && p[n] <= '9'; n++)
					;
				if (n != 4 || p[n])
					why = "it does not end in a sequence of 4 digits";
			}
		}
	}
	if (!why)
		return 0;
	snprintf(err, errlen,
		 "items add: field 'code': '%s' is not a national item code (%s; e.g. "
		 "34010400MZ-GG-0007)",
		 code, why);
	return LINLI_EINVAL;
}

/* A whole number in [lo, hi] from `s`; -1 when not. */
static int64_t parse_int(const char *s, int64_t lo, int64_t hi)
{
	char *end;
	long long v = strtoll(s, &end, 10);
	if (end == s || *end || v < lo || v > hi)
		return -1;
	return v;
}

/* Is the `n` bytes at `s` (a FIELD=VALUE's field) the word `key`? */
static int key_is(const char *s, size_t n, const char *key)
{
	return strlen(key) == n && !strncmp(s, key, n);
}

/* ---- service items ---- */

static const char *const item_str_fields[] = {"category",  "handling_level", "description",
					      "materials", "form_fields",    "legal_basis",
					      "status"};

#define ITEMS_USAGE                                                                                \
	"usage: services items [list] | services items add SCOPE CODE NAME DEPARTMENT "            \
	"[promised_days=N] [statutory_days=N] [visits=0|1] [form_fields=A,B] "                     \
	"[materials=TEXT] [category=C] [handling_level=L] [status=S] [description=TEXT] "          \
	"[legal_basis=TEXT]"

static int item_row(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	(void)ctx;
	linli_record *m, *arr = ud;
	if (api->arr_push_map(arr, &m))
		return LINLI_ENOMEM;
	api->rec_set_str(m, "code", row->id);
	api->rec_set_str(m, "scope", row->scope);
	static const char *const keys[] = {"name", "department", "status", "form_fields"};
	for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
		const char *s = str_or(row->record, keys[i], NULL);
		if (s)
			api->rec_set_str(m, keys[i], s);
	}
	int64_t v;
	if (api->rec_get_int(row->record, "promised_days", &v) == 0)
		api->rec_set_int(m, "promised_days", v);
	if (api->rec_get_int(row->record, "visits", &v) == 0)
		api->rec_set_int(m, "visits", v);
	return 0;
}

static int items_add(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		     char *err, size_t errlen)
{
	if (req->argc < 5) {
		snprintf(err, errlen, "%s", ITEMS_USAGE);
		return LINLI_EINVAL;
	}
	const char *scope = req->argv[1], *code = req->argv[2];
	int rc;
	if ((rc = may(ctx, req, "services.catalogue", scope, err, errlen)) ||
	    (rc = code_check(code, err, errlen)))
		return rc;
	linli_record *it = api->rec_new();
	if (!it)
		return LINLI_ENOMEM;
	api->rec_set_str(it, "code", code);
	api->rec_set_str(it, "name", req->argv[3]);
	api->rec_set_str(it, "department", req->argv[4]);
	api->rec_set_str(it, "status", "active");
	for (int i = 5; i < req->argc; i++) {
		const char *a = req->argv[i], *eq = strchr(a, '=');
		size_t n = eq ? (size_t)(eq - a) : 0;
		int done = 0;
		for (size_t k = 0; eq && k < sizeof item_str_fields / sizeof *item_str_fields; k++)
			if (key_is(a, n, item_str_fields[k])) {
				api->rec_set_str(it, item_str_fields[k], eq + 1);
				done = 1;
			}
		int promised = key_is(a, n, "promised_days");
		if (!done && eq && (promised || key_is(a, n, "statutory_days"))) {
			int64_t v = parse_int(eq + 1, 0, 365);
			if (v < 0) {
				snprintf(err, errlen,
					 "items add: field '%.*s': '%s' is not a number of working "
					 "days 0-365",
					 (int)n, a, eq + 1);
				rc = LINLI_EINVAL;
				break;
			}
			api->rec_set_int(it, promised ? "promised_days" : "time_limit_days", v);
			done = 1;
		}
		if (!done && eq && key_is(a, n, "visits")) {
			int64_t v = parse_int(eq + 1, 0, 1);
			if (v < 0) {
				snprintf(
				    err, errlen,
				    "items add: field 'visits': '%s' is not 0 or 1 (最多跑一次: "
				    "visits to the hall needed)",
				    eq + 1);
				rc = LINLI_EINVAL;
				break;
			}
			api->rec_set_int(it, "visits", v);
			done = 1;
		}
		if (!done) {
			snprintf(err, errlen, "items add: '%s' is not FIELD=VALUE (%s)", a,
				 ITEMS_USAGE);
			rc = LINLI_EINVAL;
			break;
		}
	}
	if (!rc) {
		int64_t p = int_or(it, "promised_days", -1), s = int_or(it, "time_limit_days", -1);
		if (p >= 0 && s >= 0 && p > s) {
			snprintf(err, errlen,
				 "items add: field 'promised_days': %lld is longer than the "
				 "statutory %lld working days",
				 (long long)p, (long long)s);
			rc = LINLI_EINVAL;
		}
	}
	if (!rc && (rc = api->store_put(ctx, "service_items", scope, code, it, NULL, NULL)))
		snprintf(err, errlen, "items add: %s", api->store_last_error(ctx));
	if (!rc) {
		linli_record *r = api->rec_new();
		api->rec_set_str(r, "code", code);
		api->rec_set_str(r, "scope", scope);
		*reply = r;
	}
	api->rec_free(it);
	return rc;
}

static int cmd_items(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		     char *err, size_t errlen)
{
	if (req->argc >= 1 && !strcmp(req->argv[0], "add"))
		return items_add(ctx, req, reply, err, errlen);
	if (req->argc > 1 || (req->argc == 1 && strcmp(req->argv[0], "list"))) {
		snprintf(err, errlen, "%s", ITEMS_USAGE);
		return LINLI_EINVAL;
	}
	linli_record *arr = api->rec_new_array();
	struct linli_query q = {.size = sizeof q, .dataset = "service_items", .limit = 1000};
	char cursor[LINLI_CURSOR_MAX] = "";
	do {
		q.cursor = cursor;
		int rc = api->store_scan(ctx, &q, item_row, arr, cursor);
		if (rc < 0) {
			snprintf(err, errlen, "items: %s", api->store_last_error(ctx));
			api->rec_free(arr);
			return rc;
		}
	} while (cursor[0]);
	*reply = arr;
	return 0;
}

/*
 * Service item `code` for an application at `scope`: the deepest record of that id at
 * `scope` or above (the cache). Borrowed; NULL with err naming the code.
 */
static const linli_record *item_for(const char *scope, const char *code, char *err, size_t errlen)
{
	const struct wf_ref_entry *best = wf_ref_deepest(&S->items, scope, wf_ref_match_id, code);
	if (!best)
		snprintf(err, errlen, "apply: service item '%s': no such item at %s or above", code,
			 scope);
	return best ? best->rec : NULL;
}

/* ---- applications ---- */

static int record_move(linli_ctx *ctx, const char *scope, const char *id, const char *verb,
		       const char *from, const char *to, const char *who, int64_t now,
		       const char *note, int64_t deadline)
{
	linli_record *m = api->rec_new();
	if (!m)
		return LINLI_ENOMEM;
	api->rec_set_str(m, "application", id);
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
	int rc = api->store_put(ctx, "application_moves", scope, NULL, m, NULL, NULL);
	api->rec_free(m);
	return rc;
}

static const char *const applicant_fields[] = {"applicant_name",  "applicant_id_number",
					       "applicant_phone", "applicant_address",
					       "channel",	  "materials"};

#define APPLY_USAGE                                                                                \
	"usage: services apply SCOPE ITEM applicant_name=N applicant_id_number=N "                 \
	"[applicant_phone=P] [applicant_address=A] [channel=C] [materials=TEXT] "                  \
	"[FORMFIELD=VALUE...]"

/* Is `name` one of the comma-separated `list`? */
static int in_list(const char *list, const char *name, size_t n)
{
	for (const char *p = list; *p;) {
		while (*p == ' ' || *p == ',')
			p++;
		size_t k = strcspn(p, ",");
		size_t e = k;
		while (e && p[e - 1] == ' ')
			e--;
		if (e == n && !strncmp(p, name, n))
			return 1;
		p += k;
	}
	return 0;
}

/*
 * services apply SCOPE ITEM FIELD=VALUE...: an application at community `scope` for an
 * active item, its applicant's fields and every form field the item names; status
 * submitted. Nothing is stored when anything is wrong.
 */
static int cmd_apply(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		     char *err, size_t errlen)
{
	if (req->argc < 2) {
		snprintf(err, errlen, "%s", APPLY_USAGE);
		return LINLI_EINVAL;
	}
	const char *scope = req->argv[0], *code = req->argv[1];
	int rc;
	if ((rc = may(ctx, req, "services.counter", scope, err, errlen)))
		return rc;
	const linli_record *item;
	linli_record *a = api->rec_new(), *r = NULL;
	char form[4096] = "";
	size_t fo = 0;
	if (!a)
		return LINLI_ENOMEM;
	if (!(item = item_for(scope, code, err, errlen))) {
		rc = LINLI_ENOENT;
		goto out;
	}
	const char *st = str_or(item, "status", "active"),
		   *fields = str_or(item, "form_fields", "");
	if (strcmp(st, "active")) {
		snprintf(err, errlen, "apply: service item '%s' (%s) is %s, not active", code,
			 str_or(item, "name", ""), st);
		rc = LINLI_ESTATE;
		goto out;
	}
	for (int i = 2; i < req->argc; i++) {
		const char *arg = req->argv[i], *eq = strchr(arg, '=');
		size_t n = eq ? (size_t)(eq - arg) : 0, k = 0;
		for (; eq && k < sizeof applicant_fields / sizeof *applicant_fields; k++)
			if (key_is(arg, n, applicant_fields[k]))
				break;
		if (eq && k < sizeof applicant_fields / sizeof *applicant_fields)
			api->rec_set_str(a, applicant_fields[k], eq + 1);
		else if (eq && n && in_list(fields, arg, n)) {
			if (strchr(eq + 1, '\n')) {
				snprintf(err, errlen,
					 "apply: form field '%.*s': a line break in "
					 "its value",
					 (int)n, arg);
				rc = LINLI_EINVAL;
				goto out;
			}
			fo += (size_t)snprintf(form + fo, fo < sizeof form ? sizeof form - fo : 0,
					       "%s\n", arg);
		} else {
			snprintf(err, errlen,
				 "apply: '%s' is not FIELD=VALUE with an applicant field or a form "
				 "field of item %s (%s)",
				 arg, code, fields[0] ? fields : "it has none");
			rc = LINLI_EINVAL;
			goto out;
		}
	}
	if (fo >= sizeof form) {
		snprintf(err, errlen, "apply: the form fields are over %zu bytes", sizeof form - 1);
		rc = LINLI_EINVAL;
		goto out;
	}
	for (size_t k = 0; k < 2; k++)
		if (!*str_or(a, applicant_fields[k], "")) {
			snprintf(err, errlen, "apply: missing field '%s' (%s)", applicant_fields[k],
				 APPLY_USAGE);
			rc = LINLI_EINVAL;
			goto out;
		}
	/* every form field the item names */
	for (const char *p = fields; *p;) {
		while (*p == ' ' || *p == ',')
			p++;
		size_t k = strcspn(p, ","), e = k;
		while (e && p[e - 1] == ' ')
			e--;
		if (e) {
			char needle[128];
			snprintf(needle, sizeof needle, "%.*s=", (int)e, p);
			int have = !strncmp(form, needle, strlen(needle));
			char nl[130];
			snprintf(nl, sizeof nl, "\n%s", needle);
			have |= strstr(form, nl) != NULL;
			if (!have) {
				snprintf(err, errlen,
					 "apply: missing form field '%.*s' of item %s (%s needs "
					 "%s)",
					 (int)e, p, code, str_or(item, "name", code), fields);
				rc = LINLI_EINVAL;
				goto out;
			}
		}
		p += k;
	}
	int64_t now = api->time_now_ms();
	api->rec_set_str(a, "item", code);
	api->rec_set_str(a, "status", "submitted");
	api->rec_set_time(a, "submitted_at", now);
	if (!str_or(a, "channel", NULL))
		api->rec_set_str(a, "channel", "counter");
	if (form[0])
		api->rec_set_str(a, "form", form);
	char id[LINLI_ID_MAX + 1];
	if ((rc = api->store_put(ctx, "applications", scope, NULL, a, id, NULL)) ||
	    (rc = record_move(ctx, scope, id, "submit", NULL, "submitted", who_of(req), now, NULL,
			      0))) {
		snprintf(err, errlen, "apply: %s", api->store_last_error(ctx));
		goto out;
	}
	char what[160];
	snprintf(what, sizeof what, "submit: item %s", code);
	api->audit(ctx, "services.move", scope, id, "allowed", what);
	r = api->rec_new();
	api->rec_set_str(r, "id", id);
	api->rec_set_str(r, "scope", scope);
	api->rec_set_str(r, "status", "submitted");
	*reply = r;
out:
	api->rec_free(a);
	return rc;
}

static int load_app(linli_ctx *ctx, const char *id, linli_record **a,
		    char scope[LINLI_SCOPE_MAX + 1], char *err, size_t errlen)
{
	int rc = api->store_get(ctx, "applications", NULL, id, a, scope);
	if (rc == LINLI_ENOENT)
		snprintf(err, errlen, "application %s: no such application within your reach", id);
	else if (rc)
		snprintf(err, errlen, "%s", api->store_last_error(ctx));
	return rc;
}

/* The promised time limit of the application's item in working ms; -1: none; -2: no item. */
static int64_t promised_ms(const char *scope, const linli_record *a, const struct wf_cal *cal)
{
	char e[256];
	const linli_record *item = item_for(scope, str_or(a, "item", ""), e, sizeof e);
	if (!item)
		return -2;
	int64_t days = int_or(item, "promised_days", int_or(item, "time_limit_days", -1));
	return days < 0 ? -1 : days * wf_cal_day_ms(cal);
}

/* The fields a move writes; the others (the applicant's, masked to the plugin) are kept. */
static const struct {
	const char *key;
	int type; /* 's' string, 'i' integer, 't' time */
} move_fields[] = {{"status", 's'},	{"deadline", 't'},     {"accepted_at", 't'},
		   {"left_ms", 'i'},	{"paused_since", 't'}, {"paused_ms", 'i'},
		   {"supplement", 's'}, {"reason", 's'},       {"handler", 's'},
		   {"result", 's'},	{"completed_at", 't'}};

struct move_write {
	const char *from;	  /* the state the move was checked in */
	const linli_record *next; /* the application after the move, as the plugin sees it */
};

/*
 * Write a move's fields into the stored application, in one transaction: refused when it
 * moved meanwhile. The applicant's fields come masked to the plugin and are left as
 * given, so they keep their stored values.
 */
static int move_step(linli_ctx *ctx, const char *id, linli_record **rec, void *ud, char *err,
		     size_t errlen)
{
	(void)ctx;
	const struct move_write *w = ud;
	if (!*rec) {
		snprintf(err, errlen, "application %s: removed meanwhile", id);
		return LINLI_ENOENT;
	}
	if (strcmp(str_or(*rec, "status", ""), w->from)) {
		snprintf(err, errlen, "application %s: moved to %s meanwhile", id,
			 str_or(*rec, "status", "?"));
		return LINLI_ESTATE;
	}
	for (size_t i = 0; i < sizeof move_fields / sizeof *move_fields; i++) {
		const char *k = move_fields[i].key, *sv;
		int64_t v;
		if (move_fields[i].type == 's' && api->rec_get_str(w->next, k, &sv, NULL) == 0)
			api->rec_set_str(*rec, k, sv);
		else if (move_fields[i].type == 'i' && api->rec_get_int(w->next, k, &v) == 0)
			api->rec_set_int(*rec, k, v);
		else if (move_fields[i].type == 't' && api->rec_get_time(w->next, k, &v) == 0)
			api->rec_set_time(*rec, k, v);
		else
			api->rec_remove(*rec, k);
	}
	return 0;
}

/* What each verb needs after the id: its usage's words; a reason, a request, a result. */
static const char *needs_text(const char *verb)
{
	return !strcmp(verb, "reject")	  ? "REASON"
	       : !strcmp(verb, "request") ? "MATERIALS"
	       : !strcmp(verb, "finish")  ? "RESULT"
					  : NULL;
}

/*
 * One move of application `id`: checked against the table and the caller's action;
 * the deadline set on acceptance (promised working days from now), stopped while
 * supplement_required (the working time left is kept) and run on at supply; written as
 * the caller with its application_moves record.
 */
static int cmd_move(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		    char *err, size_t errlen)
{
	const char *verb = req->ud, *need = needs_text(verb);
	if (req->argc < 1 || (need && req->argc < 2)) {
		snprintf(err, errlen, "usage: services %s ID %s%s", verb, need ? need : "[NOTE",
			 need ? "..." : "...]");
		return LINLI_EINVAL;
	}
	const char *id = req->argv[0];
	char scope[LINLI_SCOPE_MAX + 1], note[1024], from[32];
	join_args(req, 1, note, sizeof note);
	linli_record *a = NULL;
	int rc = load_app(ctx, id, &a, scope, err, errlen);
	if (rc)
		return rc;
	snprintf(from, sizeof from, "%s", str_or(a, "status", ""));
	const struct wf_move *m;
	if ((rc = wf_move_check(&table, id, from, verb, &m, err, errlen))) {
		api->audit(ctx, "services.move", scope, id, "denied", err);
		goto out;
	}
	if ((rc = may(ctx, req, m->action, scope, err, errlen)))
		goto out;
	int64_t now = api->time_now_ms(), deadline = time_or(a, "deadline", 0);
	const struct wf_cal *cal = calendar(ctx, scope, now);
	char warn[256] = "";
	if (!strcmp(verb, "accept")) {
		int64_t work = promised_ms(scope, a, cal);
		deadline = work >= 0 ? work_add(ctx, scope, now, work) : 0;
		api->rec_set_time(a, "accepted_at", now);
		if (work < 0)
			snprintf(
			    warn, sizeof warn, "item %s %s: no deadline", str_or(a, "item", "?"),
			    work == -2 ? "is no longer in the catalogue" : "has no promised_days");
		else if (!S->rcal.found)
			snprintf(warn, sizeof warn,
				 "no working calendar applies to %s: weekdays 09:00-12:00, "
				 "13:30-17:30 assumed",
				 scope);
	} else if (!strcmp(verb, "request")) { /* 补正: the clock stops */
		api->rec_set_int(a, "left_ms",
				 deadline > now ? work_between(ctx, scope, now, deadline) : 0);
		api->rec_set_time(a, "paused_since", now);
		api->rec_set_str(a, "supplement", note);
		deadline = 0;
	} else if (!strcmp(verb, "supply")) { /* and runs on with what was left */
		int64_t since = time_or(a, "paused_since", now), left = int_or(a, "left_ms", -1);
		api->rec_set_int(a, "paused_ms",
				 int_or(a, "paused_ms", 0) + work_between(ctx, scope, since, now));
		deadline = left >= 0 && time_or(a, "accepted_at", -1) >= 0
			       ? work_add(ctx, scope, now, left)
			       : 0;
	}
	if (strcmp(verb, "request")) {
		api->rec_remove(a, "paused_since");
		api->rec_remove(a, "left_ms");
	}
	if (!strcmp(verb, "reject"))
		api->rec_set_str(a, "reason", note);
	if (!strcmp(verb, "process"))
		api->rec_set_str(a, "handler", who_of(req));
	if (!strcmp(verb, "finish")) {
		api->rec_set_str(a, "result", note);
		api->rec_set_time(a, "completed_at", now);
	}
	if (!strcmp(m->to, "rejected") || !strcmp(m->to, "withdrawn"))
		deadline = 0;
	if (deadline > 0)
		api->rec_set_time(a, "deadline", deadline);
	else if (strcmp(m->to, "completed"))
		api->rec_remove(a, "deadline");
	api->rec_set_str(a, "status", m->to);
	struct move_write w = {from, a};
	if ((rc = api->store_update(ctx, "applications", scope, id, move_step, &w)) ||
	    (rc = record_move(ctx, scope, id, verb, from, m->to, who_of(req), now, note,
			      strcmp(m->to, "completed") ? deadline : 0))) {
		snprintf(err, errlen, "%s", api->store_last_error(ctx));
		goto out;
	}
	char what[1200];
	snprintf(what, sizeof what, "%s: %s → %s%s%s", verb, from, m->to, note[0] ? ": " : "",
		 note);
	api->audit(ctx, "services.move", scope, id, "allowed", what);
	linli_record *r = api->rec_new();
	api->rec_set_str(r, "id", id);
	api->rec_set_str(r, "scope", scope);
	api->rec_set_str(r, "from", from);
	api->rec_set_str(r, "to", m->to);
	if (deadline > 0 && strcmp(m->to, "completed"))
		api->rec_set_time(r, "deadline", deadline);
	if (!strcmp(verb, "request"))
		api->rec_set_int(r, "left_ms", int_or(a, "left_ms", 0));
	if (warn[0])
		api->rec_set_str(r, "warning", warn);
	*reply = r;
out:
	api->rec_free(a);
	return rc;
}

/* ---- show, list, table ---- */

static int move_row(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	(void)ctx;
	linli_record *m, *arr = ud;
	if (api->arr_push_map(arr, &m))
		return LINLI_ENOMEM;
	static const char *const keys[] = {"verb", "from", "to", "who", "note"};
	for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
		const char *s = str_or(row->record, keys[i], NULL);
		if (s)
			api->rec_set_str(m, keys[i], s);
	}
	int64_t t;
	if (api->rec_get_time(row->record, "at", &t) == 0)
		api->rec_set_time(m, "at", t);
	if (api->rec_get_time(row->record, "deadline", &t) == 0)
		api->rec_set_time(m, "deadline", t);
	return 0;
}

static int cmd_show(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		    char *err, size_t errlen)
{
	if (req->argc != 1) {
		snprintf(err, errlen, "usage: services show ID");
		return LINLI_EINVAL;
	}
	char scope[LINLI_SCOPE_MAX + 1], allowed[512];
	linli_record *a = NULL, *hist;
	int rc = load_app(ctx, req->argv[0], &a, scope, err, errlen);
	if (rc)
		return rc;
	api->rec_set_str(a, "id", req->argv[0]);
	api->rec_set_str(a, "scope", scope);
	wf_allowed(&table, str_or(a, "status", ""), allowed, sizeof allowed);
	api->rec_set_str(a, "allowed", allowed);
	api->rec_set_array(a, "moves", &hist);
	struct linli_where w = {"application", req->argv[0]};
	struct linli_query q = {.size = sizeof q,
				.dataset = "application_moves",
				.scope = scope,
				.where = &w,
				.n_where = 1,
				.limit = 1000};
	if (api->store_scan(ctx, &q, move_row, hist, NULL) < 0) {
		snprintf(err, errlen, "%s", api->store_last_error(ctx));
		api->rec_free(a);
		return LINLI_EIO;
	}
	*reply = a;
	return 0;
}

struct listing {
	linli_record *rows;
	const char *status;
};

static int list_row(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	(void)ctx;
	struct listing *l = ud;
	const char *st = str_or(row->record, "status", "");
	if (l->status && strcmp(st, l->status))
		return 0;
	linli_record *m;
	if (api->arr_push_map(l->rows, &m))
		return LINLI_ENOMEM;
	api->rec_set_str(m, "id", row->id);
	api->rec_set_str(m, "scope", row->scope);
	api->rec_set_str(m, "status", st);
	api->rec_set_str(m, "item", str_or(row->record, "item", ""));
	int64_t t;
	if (api->rec_get_time(row->record, "deadline", &t) == 0)
		api->rec_set_time(m, "deadline", t);
	return 0;
}

static int cmd_list(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		    char *err, size_t errlen)
{
	struct linli_query q = {.size = sizeof q, .dataset = "applications", .limit = 1000};
	struct listing l = {.rows = api->rec_new_array()};
	for (int i = 0; i < req->argc; i++) {
		if (!strncmp(req->argv[i], "status=", 7) &&
		    wf_state_known(&table, req->argv[i] + 7))
			l.status = req->argv[i] + 7;
		else if (!strncmp(req->argv[i], "scope=", 6) && req->argv[i][6])
			q.scope = req->argv[i] + 6;
		else {
			snprintf(err, errlen,
				 "usage: services list [status=STATE] [scope=PATH] ('%s': unknown "
				 "filter or state)",
				 req->argv[i]);
			api->rec_free(l.rows);
			return LINLI_EINVAL;
		}
	}
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

static int cmd_table(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		     char *err, size_t errlen)
{
	(void)ctx, (void)req, (void)err, (void)errlen;
	linli_record *arr = api->rec_new_array(), *m;
	for (size_t i = 0; i < table.n_moves; i++) {
		api->arr_push_map(arr, &m);
		api->rec_set_str(m, "from", moves[i].from);
		api->rec_set_str(m, "verb", moves[i].verb);
		api->rec_set_str(m, "to", moves[i].to);
		api->rec_set_str(m, "action", moves[i].action);
	}
	*reply = arr;
	return 0;
}

/* ---- init, fini ---- */

static const char *const move_verbs[] = {"accept",  "reject", "request", "supply",
					 "process", "finish", "withdraw"};

static int services_init(linli_ctx *ctx, const struct linli_api *a)
{
	api = a;
	char err[256];
	if (wf_table_check(&table, err, sizeof err)) {
		api->set_error(ctx, "%s", err);
		return LINLI_EINVAL;
	}
	if (!(S = calloc(1, sizeof *S)))
		return LINLI_ENOMEM;
	wf_ref_init(&S->items, api, "service_items");
	wf_ref_init(&S->calendars, api, "work_calendar");
	int rc = 0;
	for (size_t i = 0; !rc && i < sizeof actions / sizeof *actions; i++)
		rc = api->action_declare(ctx, actions[i].name, actions[i].role, actions[i].level,
					 actions[i].duty, actions[i].summary);
	for (size_t i = 0; !rc && i < sizeof move_verbs / sizeof *move_verbs; i++) {
		const char *v = move_verbs[i], *need = needs_text(v);
		rc = api->cmd_register(ctx, v,
				       !need		       ? "ID [NOTE...]"
				       : !strcmp(v, "reject")  ? "ID REASON..."
				       : !strcmp(v, "request") ? "ID MATERIALS..."
							       : "ID RESULT...",
				       "move an application (see services table)", cmd_move,
				       (void *)v);
	}
	if (!rc)
		rc = api->cmd_register(ctx, "items",
				       "[list] | add SCOPE CODE NAME DEPARTMENT "
				       "[FIELD=VALUE...]",
				       "the service items (事项), or add one", cmd_items, NULL);
	if (!rc)
		rc = api->cmd_register(ctx, "apply", "SCOPE ITEM FIELD=VALUE...",
				       "submit an application (申请) for a service item", cmd_apply,
				       NULL);
	if (!rc)
		rc = api->cmd_register(ctx, "show", "ID",
				       "an application, its history and allowed "
				       "moves",
				       cmd_show, NULL);
	if (!rc)
		rc = api->cmd_register(ctx, "list", "[status=STATE] [scope=PATH]",
				       "the applications within reach", cmd_list, NULL);
	if (!rc)
		rc = api->cmd_register(ctx, "table", "",
				       "the workflow's moves and who may make them", cmd_table,
				       NULL);
	static const char *const reads[] = {"items", "show", "list", "table"};
	for (size_t i = 0; !rc && i < sizeof reads / sizeof *reads; i++)
		rc = api->cmd_require(ctx, reads[i], "services.read");
	uint64_t wid;
	if (!rc)
		rc = api->store_watch(ctx, "work_calendar", on_change, &S->calendars, &wid);
	if (!rc)
		rc = api->store_watch(ctx, "service_items", on_change, &S->items, &wid);
	if (!rc)
		rc = wf_ref_load(&S->calendars, ctx);
	if (!rc)
		rc = wf_ref_load(&S->items, ctx);
	if (rc) {
		api->set_error(ctx, "setting up: %s", linli_strerror(rc));
		wf_ref_clear(&S->calendars);
		wf_ref_clear(&S->items);
		free(S);
		S = NULL;
		return rc;
	}
	return 0;
}

static void services_fini(linli_ctx *ctx, const struct linli_api *a)
{
	(void)ctx, (void)a;
	if (!S)
		return;
	wf_ref_clear(&S->calendars);
	wf_ref_clear(&S->items);
	free(S);
	S = NULL;
}

LINLI_PLUGIN(services_init, services_fini, .name = "services", .version = "0.2.0",
	     .family = "gov_services",
	     .description = "Government services: service items (事项) and the workflow of "
			    "applications (申请, 受理, 补正, 办理, 办结) with promised time limits "
			    "in working days",
	     .capabilities = {"store.read:service_items", "store.write:service_items",
			      "store.read:applications", "store.write:applications",
			      "store.read:application_moves", "store.write:application_moves",
			      "store.read:work_calendar"});
