/*
 * services.c — government services (政务服务): the service-item catalogue (事项) and the
 * workflow of applications (办件) as a transition table (plugins/lib/wf_table.h), the
 * promised time limit (承诺时限) in working days of the working calendar
 * (plugins/lib/wf_cal.h), stopped while materials are awaited (补正); joint items (联办)
 * that close only when every co-handler's part is done.
 *
 * Owns: the `services` console commands; the HTTP routes of the applications API
 * (items, submit, status and evaluate by the applicant's token — the kernel hands
 * /api/v1/applications to them); the applicants' tokens, of which only a hash is ever
 * stored; the caches of service_items and work_calendar (wf_ref.h, loaded and followed
 * on the plugin's own account); the deadline timer that warns and escalates, as the
 * plugin. Every move is checked against the table and the caller's action, written to
 * applications and recorded in application_moves as the caller (so the kernel audits it
 * under the caller's name, via plugin:services); an illegal move is refused and audited
 * as denied. It never acts on its own account in a command or a route, and never logs,
 * audits or publishes an applicant's field or token.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linli/linli.h>
#include <sodium.h>

#include "alarmreq.h"
#include "plugcmd.h"
#include "wf_cal.h"
#include "wf_case.h"
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

/* The table's cases as the console shows them (wf_case; api set at init). */
static struct wf_case wcase;

/* The plugin's actions: least role, deepest level, duty, summary. */
static const struct plugcmd_action actions[] = {
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
	struct alarmreq_flights fly; /* overdue alarms asked, not answered yet */
};

static struct services *S;

static void clear_overdue(linli_ctx *ctx, const char *scope, const char *id);

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

static const char *who_is(const struct linli_caller *c)
{
	return c && c->name[0] ? c->name : "kernel";
}

static const char *who_of(const struct linli_cmd_req *req)
{
	return who_is(req->caller);
}

/* May the caller take `action` at `scope`? A request without a caller acts as the plugin. */
static int may(linli_ctx *ctx, const struct linli_caller *caller, const char *action,
	       const char *scope, char *err, size_t errlen)
{
	return caller ? api->caller_may(ctx, caller, action, scope, err, errlen) : 0;
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
					      "status",	   "co_handlers"};

#define ITEMS_USAGE                                                                                \
	"usage: services items [list] | services items add SCOPE CODE NAME DEPARTMENT "            \
	"[promised_days=N] [statutory_days=N] [visits=0|1] [form_fields=A,B] "                     \
	"[materials=TEXT] [category=C] [handling_level=L] [status=S] [description=TEXT] "          \
	"[legal_basis=TEXT] [co_handlers=DEPT,DEPT]"

static int item_row(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	(void)ctx;
	linli_record *m, *arr = ud;
	if (api->arr_push_map(arr, &m))
		return LINLI_ENOMEM;
	api->rec_set_str(m, "code", row->id);
	api->rec_set_str(m, "scope", row->scope);
	static const char *const keys[] = {"name", "department", "status", "form_fields",
					   "co_handlers"};
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
	if ((rc = may(ctx, req->caller, "services.catalogue", scope, err, errlen)) ||
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
 * The next entry of a list of materials ("身份证\n结婚证", "身份证, 户口簿", "身份证、户口簿",
 * "身份证，户口簿"): skips separators at *p, sets *len to the entry's length and returns
 * it (NULL at the end); *p then points past it.
 */
static size_t material_sep(const char *s)
{
	static const char *const seps[] = {"\n", "\r", "\t", ",", ";", "，", "、", "；"};
	for (size_t k = 0; k < sizeof seps / sizeof *seps; k++)
		if (!strncmp(s, seps[k], strlen(seps[k])))
			return strlen(seps[k]);
	return 0;
}

static const char *material_next(const char **p, size_t *len)
{
	const char *s = *p;
	for (size_t k; (k = material_sep(s)) || *s == ' ';)
		s += k ? k : 1;
	if (!*s) {
		*p = s;
		return NULL;
	}
	const char *e = s;
	while (*e && !material_sep(e))
		e++;
	*p = e;
	while (e > s && e[-1] == ' ') /* a space inside an entry stays */
		e--;
	*len = (size_t)(e - s);
	return s;
}

/* Is material `m` (n bytes) among the list `have`? */
static bool material_in(const char *have, const char *m, size_t n)
{
	const char *p = have, *x;
	size_t len;
	while ((x = material_next(&p, &len)))
		if (len == n && !strncmp(x, m, n))
			return true;
	return false;
}

/* ---- the applicant's token (shown once; only its hash is kept) ---- */

#define TOKEN_BYTES    16			      /* 128 random bits */
#define TOKEN_LEN      (TOKEN_BYTES * 2)	      /* lowercase hex */
#define TOKEN_HASH_LEN (crypto_generichash_BYTES * 2) /* BLAKE2b-256, hex */

/* A new token in `tok` and its hash (what is stored) in `hash`. */
static void token_new(char tok[TOKEN_LEN + 1], char hash[TOKEN_HASH_LEN + 1])
{
	unsigned char raw[TOKEN_BYTES], h[crypto_generichash_BYTES];
	randombytes_buf(raw, sizeof raw);
	sodium_bin2hex(tok, TOKEN_LEN + 1, raw, sizeof raw);
	crypto_generichash(h, sizeof h, (const unsigned char *)tok, TOKEN_LEN, NULL, 0);
	sodium_bin2hex(hash, TOKEN_HASH_LEN + 1, h, sizeof h);
	sodium_memzero(raw, sizeof raw);
}

/* The stored hash of a presented token; 0, or -1 when it cannot be a token. */
static int token_hash(const char *tok, char hash[TOKEN_HASH_LEN + 1])
{
	unsigned char h[crypto_generichash_BYTES];
	size_t n = strlen(tok);
	if (n != TOKEN_LEN || strspn(tok, "0123456789abcdef") != n)
		return -1;
	crypto_generichash(h, sizeof h, (const unsigned char *)tok, n, NULL, 0);
	sodium_bin2hex(hash, TOKEN_HASH_LEN + 1, h, sizeof h);
	return 0;
}

struct by_token {
	const char *hash;
	char id[LINLI_ID_MAX + 1], scope[LINLI_SCOPE_MAX + 1];
	linli_record *rec;
};

static int token_row(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	(void)ctx;
	struct by_token *t = ud;
	const char *h = str_or(row->record, "token_hash", "");
	/* the index found it; compared again in constant time */
	if (strlen(h) != TOKEN_HASH_LEN || sodium_memcmp(h, t->hash, TOKEN_HASH_LEN))
		return 0;
	snprintf(t->id, sizeof t->id, "%s", row->id);
	snprintf(t->scope, sizeof t->scope, "%s", row->scope);
	return api->rec_copy(row->record, &t->rec) ? LINLI_ENOMEM : 1;
}

/*
 * The application whose token is `tok`, within the caller's reach: 0 with *rec (yours),
 * id and scope; LINLI_ENOENT — the same answer for a token that is malformed, unknown or
 * another jurisdiction's, so the answer tells nothing about any other application.
 */
static int app_by_token(linli_ctx *ctx, const char *tok, struct by_token *t, char *err,
			size_t errlen)
{
	char hash[TOKEN_HASH_LEN + 1];
	memset(t, 0, sizeof *t);
	if (!tok || !tok[0]) {
		snprintf(err, errlen, "field 'token': missing (the token given at submission)");
		return LINLI_EINVAL;
	}
	int rc = 0;
	if (token_hash(tok, hash) == 0) {
		t->hash = hash;
		struct linli_where w = {"token_hash", hash};
		struct linli_query q = {.size = sizeof q,
					.dataset = "applications",
					.where = &w,
					.n_where = 1,
					.limit = 4};
		rc = api->store_scan(ctx, &q, token_row, t, NULL);
	}
	t->hash = NULL;
	if (rc < 0) {
		snprintf(err, errlen, "%s", api->store_last_error(ctx));
		return rc;
	}
	if (!t->rec) {
		snprintf(err, errlen, "no application for this token");
		return LINLI_ENOENT;
	}
	return 0;
}

/*
 * Submit an application at community `scope` for item `code` from FIELD=VALUE words
 * (applicant fields and the item's form fields): checked as `caller` (services.counter),
 * status submitted, a token made whose hash is stored. Nothing is stored when anything is
 * wrong: LINLI_ENOENT (no such item), LINLI_ESTATE (not active), LINLI_EINVAL (a field).
 * *reply: {id, scope, status, item, token}.
 */
static int submit(linli_ctx *ctx, const struct linli_caller *caller, const char *scope,
		  const char *code, int argc, const char *const *argv, const char *channel,
		  linli_record **reply, char *err, size_t errlen)
{
	int rc;
	if ((rc = may(ctx, caller, "services.counter", scope, err, errlen)))
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
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i], *eq = strchr(arg, '=');
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
	/* every material the item requires, among those the applicant brought */
	const char *need = str_or(item, "materials", ""), *brought = str_or(a, "materials", "");
	const char *mp = need, *m;
	size_t ml;
	while ((m = material_next(&mp, &ml)))
		if (!material_in(brought, m, ml)) {
			snprintf(err, errlen,
				 "apply: missing material '%.*s' of item %s (%s requires: %s; field "
				 "'materials' lists what the applicant brought)",
				 (int)ml, m, code, str_or(item, "name", code), need);
			for (char *c = err; *c; c++)
				if (*c == '\n')
					*c = ',';
			rc = LINLI_EINVAL;
			goto out;
		}
	int64_t now = api->time_now_ms();
	char tok[TOKEN_LEN + 1], hash[TOKEN_HASH_LEN + 1];
	token_new(tok, hash);
	api->rec_set_str(a, "item", code);
	api->rec_set_str(a, "status", "submitted");
	api->rec_set_time(a, "submitted_at", now);
	api->rec_set_str(a, "token_hash", hash);
	if (!str_or(a, "channel", NULL))
		api->rec_set_str(a, "channel", channel);
	if (form[0])
		api->rec_set_str(a, "form", form);
	char id[LINLI_ID_MAX + 1];
	if ((rc = api->store_put(ctx, "applications", scope, NULL, a, id, NULL)) ||
	    (rc = record_move(ctx, scope, id, "submit", NULL, "submitted", who_is(caller), now,
			      NULL, 0))) {
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
	api->rec_set_str(r, "item", code);
	api->rec_set_str(r, "token", tok);
	api->rec_set_str(r, "token_note",
			 "the applicant's key to the application's status, shown this once: "
			 "only its hash is kept");
	*reply = r;
	sodium_memzero(tok, sizeof tok);
out:
	api->rec_free(a);
	return rc;
}

/*
 * services apply SCOPE ITEM FIELD=VALUE...: an application at community `scope` for an
 * active item, its applicant's fields and every form field the item names; status
 * submitted, with the applicant's token (shown once). Nothing is stored when anything is
 * wrong.
 */
static int cmd_apply(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		     char *err, size_t errlen)
{
	if (req->argc < 2) {
		snprintf(err, errlen, "%s", APPLY_USAGE);
		return LINLI_EINVAL;
	}
	return submit(ctx, req->caller, req->argv[0], req->argv[1], req->argc - 2, req->argv + 2,
		      "counter", reply, err, errlen);
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

/*
 * 上报件: the scope that handles an application of `item` submitted at `scope` — the
 * ancestor at the item's handling_level (street, district, city) when that lies above
 * `scope`; "" when the application is handled where it was submitted. Levels are the
 * depth of a jurisdiction path (hefei / baohe / binhu / yuelan).
 */
static void handling_scope_of(const linli_record *item, const char *scope, char *out,
			      size_t len)
{
	static const char *const levels[] = {"city", "district", "street", "community"};
	const char *lv = str_or(item, "handling_level", "community");
	int want = 0, depth = 1; /* the level's depth; the scope's (city = 1) */
	for (int i = 0; i < 4; i++)
		if (!strcmp(lv, levels[i]))
			want = i + 1;
	for (const char *p = scope; *p; p++)
		depth += *p == '/';
	out[0] = '\0';
	if (!want || want >= depth)
		return;
	const char *p = scope;
	for (int i = 0; i < want; i++) {
		p = strchr(p, '/');
		if (!p)
			return;
		if (i + 1 < want)
			p++;
	}
	snprintf(out, len, "%.*s", (int)(p - scope), scope);
}

/* The fields a move writes; the others (the applicant's, masked to the plugin) are kept. */
static const struct {
	const char *key;
	int type; /* 's' string, 'i' integer, 't' time */
} move_fields[] = {{"status", 's'},	{"deadline", 't'},     {"accepted_at", 't'},
		   {"left_ms", 'i'},	{"paused_since", 't'}, {"paused_ms", 'i'},
		   {"supplement", 's'}, {"reason", 's'},       {"handler", 's'},
		   {"result", 's'},	{"completed_at", 't'}, {"handling_scope", 's'}};

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

/* ---- joint items (联办): every co-handler's part done before 办结 ---- */

/*
 * The co-handlers of application `a`'s item (at `scope`) whose part is not done yet,
 * comma-separated in `out` ("" when none, or the item is not joint). Returns the number.
 */
static int parts_waiting(const char *scope, const linli_record *a, char *out, size_t len)
{
	char e[256];
	const linli_record *item = item_for(scope, str_or(a, "item", ""), e, sizeof e);
	const char *co = item ? str_or(item, "co_handlers", "") : "",
		   *done = str_or(a, "parts_done", "");
	size_t o = 0;
	int n = 0;
	out[0] = '\0';
	for (const char *p = co; *p;) {
		while (*p == ' ' || *p == ',')
			p++;
		size_t k = strcspn(p, ","), m = k;
		while (m && p[m - 1] == ' ')
			m--;
		if (m && !in_list(done, p, m)) {
			o += (size_t)snprintf(out + o, o < len ? len - o : 0, "%s%.*s",
					      n ? "," : "", (int)m, p);
			n++;
		}
		p += k;
	}
	return n;
}

struct part_write {
	const char *dept;
};

/* Add a co-handler's part to parts_done, once, while processing (write transaction). */
static int part_step(linli_ctx *ctx, const char *id, linli_record **rec, void *ud, char *err,
		     size_t errlen)
{
	(void)ctx;
	const struct part_write *w = ud;
	if (!*rec) {
		snprintf(err, errlen, "application %s: removed meanwhile", id);
		return LINLI_ENOENT;
	}
	if (strcmp(str_or(*rec, "status", ""), "processing")) {
		snprintf(err, errlen,
			 "part: application %s is %s: a co-handler's part is recorded while it "
			 "is processing",
			 id, str_or(*rec, "status", "?"));
		return LINLI_ESTATE;
	}
	const char *done = str_or(*rec, "parts_done", "");
	if (in_list(done, w->dept, strlen(w->dept))) {
		snprintf(err, errlen, "part: application %s: %s's part is done already", id,
			 w->dept);
		return LINLI_EEXIST;
	}
	char buf[600];
	snprintf(buf, sizeof buf, "%s%s%s", done, done[0] ? "," : "", w->dept);
	api->rec_set_str(*rec, "parts_done", buf);
	return 0;
}

/*
 * services part ID DEPARTMENT [NOTE...]: co-handler DEPARTMENT of a joint item (联办) has
 * done its part of a processing application (services.handle). 办结 waits for all.
 */
static int cmd_part(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		    char *err, size_t errlen)
{
	if (req->argc < 2) {
		snprintf(err, errlen, "usage: services part ID DEPARTMENT [NOTE...]");
		return LINLI_EINVAL;
	}
	const char *id = req->argv[0], *dept = req->argv[1];
	char scope[LINLI_SCOPE_MAX + 1], note[1024], msg[1200], waiting[600];
	linli_record *a = NULL;
	int rc = load_app(ctx, id, &a, scope, err, errlen);
	if (rc)
		return rc;
	if ((rc = may(ctx, req->caller, "services.handle", scope, err, errlen)))
		goto out;
	const linli_record *item = item_for(scope, str_or(a, "item", ""), err, errlen);
	const char *co = item ? str_or(item, "co_handlers", "") : "";
	if (!co[0]) {
		snprintf(err, errlen, "part: item %s of application %s is not a joint item (联办)",
			 str_or(a, "item", "?"), id);
		rc = LINLI_ESTATE;
		goto out;
	}
	if (!in_list(co, dept, strlen(dept))) {
		snprintf(err, errlen, "part: '%s' is not a co-handler of item %s (co-handlers: %s)",
			 dept, str_or(a, "item", "?"), co);
		rc = LINLI_EINVAL;
		goto out;
	}
	struct part_write w = {dept};
	join_args(req, 2, note, sizeof note);
	snprintf(msg, sizeof msg, "%s%s%s", dept, note[0] ? ": " : "", note);
	int64_t now = api->time_now_ms();
	if ((rc = api->store_update(ctx, "applications", scope, id, part_step, &w)) ||
	    (rc = record_move(ctx, scope, id, "part", "processing", "processing", who_of(req), now,
			      msg, time_or(a, "deadline", 0)))) {
		snprintf(err, errlen, "%s", api->store_last_error(ctx));
		goto out;
	}
	char what[1300];
	snprintf(what, sizeof what, "part: %s", msg);
	api->audit(ctx, "services.move", scope, id, "allowed", what);
	api->rec_free(a);
	a = NULL;
	if ((rc = load_app(ctx, id, &a, scope, err, errlen)))
		goto out;
	parts_waiting(scope, a, waiting, sizeof waiting);
	linli_record *r = api->rec_new();
	api->rec_set_str(r, "id", id);
	api->rec_set_str(r, "part", dept);
	api->rec_set_str(r, "parts_done", str_or(a, "parts_done", ""));
	api->rec_set_str(r, "waiting", waiting);
	*reply = r;
out:
	api->rec_free(a);
	return rc;
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
	/*
	 * An application handled above (上报件) stays where it was submitted — the applicant's
	 * token and the community's kiosks reach it there — but only the handling scope may
	 * move it on: a community operator's jurisdiction does not cover the street's scope.
	 * The counter's moves (withdraw, supply) stay with the applicant's community.
	 */
	const char *hs = str_or(a, "handling_scope", "");
	bool counter = !strcmp(m->action, "services.counter");
	if ((rc = may(ctx, req->caller, m->action, hs[0] && !counter ? hs : scope, err, errlen))) {
		if (hs[0] && !counter) {
			char e2[512];
			snprintf(e2, sizeof e2,
				 "%s (application %s is 上报件: handled at %s, not at %s)", err, id,
				 hs, scope);
			snprintf(err, errlen, "%s", e2);
		}
		goto out;
	}
	char waiting[600];
	if (!strcmp(verb, "finish") && parts_waiting(scope, a, waiting, sizeof waiting)) {
		snprintf(err, errlen,
			 "application %s is a joint item (联办): cannot finish before every "
			 "co-handler's part is done: waiting for %s",
			 id, waiting);
		api->audit(ctx, "services.move", scope, id, "denied", err);
		rc = LINLI_ESTATE;
		goto out;
	}
	int64_t now = api->time_now_ms(), deadline = time_or(a, "deadline", 0);
	const struct wf_cal *cal = calendar(ctx, scope, now);
	char warn[256] = "";
	char up[LINLI_SCOPE_MAX + 1] = "";
	if (!strcmp(verb, "accept")) {
		char e[256];
		const linli_record *item = item_for(scope, str_or(a, "item", ""), e, sizeof e);
		if (item)
			handling_scope_of(item, scope, up, sizeof up);
		if (up[0])
			api->rec_set_str(a, "handling_scope", up);
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
	if (up[0] && (rc = record_move(ctx, scope, id, "report_up", m->to, m->to, who_of(req),
				       now, up, 0))) {
		snprintf(err, errlen, "%s", api->store_last_error(ctx));
		goto out;
	}
	char what[1200];
	snprintf(what, sizeof what, "%s: %s → %s%s%s%s%s", verb, from, m->to, note[0] ? ": " : "",
		 note, up[0] ? "; 上报件, handled at " : "", up);
	api->audit(ctx, "services.move", scope, id, "allowed", what);
	if (time_or(a, "alarm_for", -1) > 0 && strcmp(m->to, "accepted") &&
	    strcmp(m->to, "processing"))
		clear_overdue(ctx, scope, id);
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
	if (up[0] || hs[0])
		api->rec_set_str(r, "handling_scope", up[0] ? up : hs);
	*reply = r;
out:
	api->rec_free(a);
	return rc;
}

/* ---- show, list, table ---- */

static int cmd_show(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		    char *err, size_t errlen)
{
	if (req->argc != 1) {
		snprintf(err, errlen, "usage: services show ID");
		return LINLI_EINVAL;
	}
	char scope[LINLI_SCOPE_MAX + 1];
	linli_record *a = NULL;
	int rc = load_app(ctx, req->argv[0], &a, scope, err, errlen);
	if (rc)
		return rc;
	api->rec_remove(a, "token_hash");
	char st[32]; /* a copy: wf_case_show sets the field it is read from */
	snprintf(st, sizeof st, "%s", str_or(a, "status", ""));
	if ((rc = wf_case_show(&wcase, ctx, a, req->argv[0], scope, st, err, errlen))) {
		api->rec_free(a);
		return rc;
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
	int rc = wf_case_filters(&wcase, req, "services list [status=STATE] [scope=PATH]",
				 &l.status, &q.scope, err, errlen);
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

static int cmd_table(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		     char *err, size_t errlen)
{
	(void)ctx, (void)req, (void)err, (void)errlen;
	return wf_case_table(&wcase, reply);
}

/* ---- what the applicant reads: status and notice, receipt, evaluation ---- */

/* `ms` as the node's local "YYYY-MM-DD HH:MM" in buf; "?" when it cannot be shown. */
static const char *local_text(linli_ctx *ctx, int64_t ms, char *buf, size_t len)
{
	struct linli_tm t;
	if (tm_local(ctx, ms, &t))
		snprintf(buf, len, "?");
	else
		snprintf(buf, len, "%04d-%02d-%02d %02d:%02d", t.year, t.month, t.day, t.hour,
			 t.minute);
	return buf;
}

/* The notice an applicant reads for application `a`: what happens next, in words. */
static void notice_of(linli_ctx *ctx, const linli_record *a, char *buf, size_t len)
{
	const char *st = str_or(a, "status", "");
	char when[32] = "";
	int64_t dl = time_or(a, "deadline", 0);
	if (dl > 0)
		local_text(ctx, dl, when, sizeof when);
	if (!strcmp(st, "submitted"))
		snprintf(buf, len, "已提交,等待受理");
	else if (!strcmp(st, "accepted") || !strcmp(st, "processing"))
		snprintf(buf, len, "%s%s%s", !strcmp(st, "accepted") ? "已受理" : "办理中",
			 when[0] ? ",承诺办结时间 " : "", when);
	else if (!strcmp(st, "supplement_required"))
		snprintf(buf, len, "请补正材料: %s", str_or(a, "supplement", ""));
	else if (!strcmp(st, "rejected"))
		snprintf(buf, len, "不予受理: %s", str_or(a, "reason", ""));
	else if (!strcmp(st, "completed"))
		snprintf(buf, len, "已办结: %s", str_or(a, "result", ""));
	else if (!strcmp(st, "withdrawn"))
		snprintf(buf, len, "已撤回");
	else
		snprintf(buf, len, "%s", st);
}

/* What an applicant may read of their application: no applicant field, no token hash. */
static linli_record *applicant_view(linli_ctx *ctx, const char *id, const char *scope,
				    const linli_record *a)
{
	char notice[1500];
	linli_record *r = api->rec_new();
	if (!r)
		return NULL;
	const char *code = str_or(a, "item", "");
	const struct wf_ref_entry *it =
	    code[0] ? wf_ref_deepest(&S->items, scope, wf_ref_match_id, code) : NULL;
	api->rec_set_str(r, "id", id);
	api->rec_set_str(r, "item", code);
	if (it)
		api->rec_set_str(r, "item_name", str_or(it->rec, "name", ""));
	api->rec_set_str(r, "status", str_or(a, "status", ""));
	notice_of(ctx, a, notice, sizeof notice);
	api->rec_set_str(r, "notice", notice);
	static const char *const times[] = {"submitted_at", "accepted_at", "deadline",
					    "completed_at"};
	for (size_t i = 0; i < sizeof times / sizeof *times; i++) {
		int64_t t = time_or(a, times[i], 0);
		if (t > 0)
			api->rec_set_time(r, times[i], t);
	}
	int64_t ev = int_or(a, "evaluation", 0);
	if (ev)
		api->rec_set_int(r, "evaluation", ev);
	api->rec_set_bool(r, "can_evaluate", !strcmp(str_or(a, "status", ""), "completed") && !ev);
	return r;
}

/* `s` with all but its first UTF-8 character as '*' (a name on a receipt). */
static void mask_name(const char *s, char *out, size_t len)
{
	size_t n = 0, o = 0;
	if (*s) /* the first character, whole */
		for (n = 1; s[n] && ((unsigned char)s[n] & 0xC0) == 0x80; n++)
			;
	o = (size_t)snprintf(out, len, "%.*s", (int)n, s);
	for (const char *p = s + n; *p && o + 1 < len; p++)
		if (((unsigned char)*p & 0xC0) != 0x80)
			out[o++] = '*';
	out[o < len ? o : len - 1] = '\0';
}

/* `s` with all but its last 4 characters as '*' (an ID number on a receipt). */
static void mask_tail(const char *s, char *out, size_t len)
{
	size_t n = strlen(s), o = 0;
	for (size_t i = 0; i < n && o + 1 < len; i++)
		out[o++] = i + 4 < n ? '*' : s[i];
	out[o] = '\0';
}

/*
 * services receipt ID: the acceptance receipt (受理回执) of an accepted application, as
 * text to print — the item, the applicant masked, when it was accepted and the promised
 * deadline. Never the token (the applicant was given it once, at submission).
 */
static int cmd_receipt(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		       char *err, size_t errlen)
{
	if (req->argc != 1) {
		snprintf(err, errlen, "usage: services receipt ID");
		return LINLI_EINVAL;
	}
	const char *id = req->argv[0];
	char scope[LINLI_SCOPE_MAX + 1];
	linli_record *a = NULL;
	int rc = load_app(ctx, id, &a, scope, err, errlen);
	if (rc)
		return rc;
	if ((rc = may(ctx, req->caller, "services.counter", scope, err, errlen)))
		goto out;
	int64_t acc = time_or(a, "accepted_at", 0), dl = time_or(a, "deadline", 0);
	if (!acc) {
		snprintf(err, errlen,
			 "receipt: application %s is %s: a receipt (受理回执) is printed once it "
			 "is accepted",
			 id, str_or(a, "status", "?"));
		rc = LINLI_ESTATE;
		goto out;
	}
	const char *code = str_or(a, "item", "");
	const struct wf_ref_entry *it = wf_ref_deepest(&S->items, scope, wf_ref_match_id, code);
	char name[256], idn[64], at[32], due[32], days[64] = "", text[2048];
	mask_name(str_or(a, "applicant_name", ""), name, sizeof name);
	mask_tail(str_or(a, "applicant_id_number", ""), idn, sizeof idn);
	int64_t pd = it ? int_or(it->rec, "promised_days", -1) : -1;
	if (pd >= 0)
		snprintf(days, sizeof days, " (承诺 %lld 个工作日)", (long long)pd);
	snprintf(text, sizeof text,
		 "受理回执\n"
		 "办件编号: %s\n"
		 "事项: %s (%s)\n"
		 "承办部门: %s\n"
		 "申请人: %s  证件号码: %s\n"
		 "受理时间: %s\n"
		 "承诺办结: %s%s\n"
		 "当前状态: %s\n"
		 "办理进度请凭申请时领取的查询码在自助终端或网上查询(本回执不含查询码)。\n",
		 id, it ? str_or(it->rec, "name", code) : code, code,
		 it ? str_or(it->rec, "department", "") : "", name, idn,
		 local_text(ctx, acc, at, sizeof at),
		 dl > 0 ? local_text(ctx, dl, due, sizeof due) : "无承诺时限", days,
		 str_or(a, "status", ""));
	linli_record *r = api->rec_new();
	api->rec_set_str(r, "id", id);
	api->rec_set_str(r, "receipt", text);
	*reply = r;
out:
	api->rec_free(a);
	return rc;
}

struct eval_write {
	int64_t score, now;
	const char *comment;
};

/* The evaluation into the application, once, after 办结 (in the write transaction). */
static int eval_step(linli_ctx *ctx, const char *id, linli_record **rec, void *ud, char *err,
		     size_t errlen)
{
	(void)ctx;
	const struct eval_write *w = ud;
	if (!*rec) {
		snprintf(err, errlen, "application %s: removed meanwhile", id);
		return LINLI_ENOENT;
	}
	if (strcmp(str_or(*rec, "status", ""), "completed")) {
		snprintf(err, errlen,
			 "evaluate: application %s is %s: it is evaluated (好差评) once completed",
			 id, str_or(*rec, "status", "?"));
		return LINLI_ESTATE;
	}
	if (int_or(*rec, "evaluation", 0)) {
		snprintf(err, errlen, "evaluate: application %s is evaluated already (once only)",
			 id);
		return LINLI_EEXIST;
	}
	api->rec_set_int(*rec, "evaluation", w->score);
	api->rec_set_time(*rec, "evaluated_at", w->now);
	if (w->comment && w->comment[0])
		api->rec_set_str(*rec, "evaluation_comment", w->comment);
	else
		api->rec_remove(*rec, "evaluation_comment");
	return 0;
}

/* Record the applicant's evaluation of application `id` at `scope` (acting as `who`). */
static int evaluate(linli_ctx *ctx, const char *who, const char *id, const char *scope,
		    const char *score, const char *comment, char *err, size_t errlen)
{
	int64_t v = parse_int(score ? score : "", 1, 5);
	if (v < 0) {
		snprintf(err, errlen, "evaluate: field 'score': '%s' is not a score 1-5",
			 score ? score : "");
		return LINLI_EINVAL;
	}
	if (comment && strlen(comment) > 512) {
		snprintf(err, errlen, "evaluate: field 'comment': longer than 512 bytes");
		return LINLI_EINVAL;
	}
	struct eval_write w = {v, api->time_now_ms(), comment};
	char note[32];
	snprintf(note, sizeof note, "score %lld", (long long)v);
	int rc = api->store_update(ctx, "applications", scope, id, eval_step, &w);
	if (!rc)
		rc = record_move(ctx, scope, id, "evaluate", "completed", "completed", who, w.now,
				 note, 0);
	if (rc) {
		snprintf(err, errlen, "%s", api->store_last_error(ctx));
		api->audit(ctx, "services.evaluate", scope, id, "denied", err);
		return rc;
	}
	api->audit(ctx, "services.evaluate", scope, id, "allowed", note);
	return 0;
}

/* services evaluate ID SCORE [COMMENT...]: the applicant's 好差评, taken at the counter. */
static int cmd_evaluate(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
			char *err, size_t errlen)
{
	if (req->argc < 2) {
		snprintf(err, errlen, "usage: services evaluate ID SCORE(1-5) [COMMENT...]");
		return LINLI_EINVAL;
	}
	char scope[LINLI_SCOPE_MAX + 1], comment[1024];
	linli_record *a = NULL;
	int rc = load_app(ctx, req->argv[0], &a, scope, err, errlen);
	api->rec_free(a);
	if (rc || (rc = may(ctx, req->caller, "services.counter", scope, err, errlen)))
		return rc;
	join_args(req, 2, comment, sizeof comment);
	if ((rc = evaluate(ctx, who_of(req), req->argv[0], scope, req->argv[1], comment, err,
			   errlen)))
		return rc;
	linli_record *r = api->rec_new();
	api->rec_set_str(r, "id", req->argv[0]);
	api->rec_set_int(r, "evaluation", parse_int(req->argv[1], 1, 5));
	*reply = r;
	return 0;
}

/* ---- HTTP: /api/v1/apps/services/... and /api/v1/applications (the kernel's alias) ---- */

/* A string field of a JSON body; NULL when absent; LINLI_EINVAL when not a string. */
static int body_str(const linli_record *body, const char *key, const char **out, char *err,
		    size_t errlen)
{
	*out = NULL;
	if (!body || !api->rec_has(body, key))
		return 0;
	if (api->rec_get_str(body, key, out, NULL)) {
		snprintf(err, errlen, "field '%s': a string expected", key);
		return LINLI_EINVAL;
	}
	return 0;
}

static int need_map(const struct linli_http_req *req, char *err, size_t errlen)
{
	if (!req->body || api->rec_kind(req->body) != LINLI_T_MAP) {
		snprintf(err, errlen, "the body must be a JSON object");
		return LINLI_EINVAL;
	}
	return 0;
}

/* GET items: the active service items that apply at the key's scope (the cache). */
static int route_items(linli_ctx *ctx, const struct linli_http_req *req, linli_record **reply,
		       int *status, char *err, size_t errlen)
{
	(void)ctx, (void)status, (void)err, (void)errlen;
	const char *scope = req->caller && req->caller->scope ? req->caller->scope : "";
	linli_record *arr = api->rec_new_array(), *m, *out = api->rec_new();
	for (size_t i = 0; i < S->items.n; i++) {
		const struct wf_ref_entry *e = &S->items.v[i];
		if (!wf_ref_covers(e->scope, scope) ||
		    wf_ref_deepest(&S->items, scope, wf_ref_match_id, e->id) != e ||
		    strcmp(str_or(e->rec, "status", "active"), "active"))
			continue;
		api->arr_push_map(arr, &m);
		api->rec_set_str(m, "code", e->id);
		static const char *const keys[] = {"name",	     "department", "category",
						   "handling_level", "materials",  "form_fields",
						   "description"};
		for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
			const char *s = str_or(e->rec, keys[k], NULL);
			if (s)
				api->rec_set_str(m, keys[k], s);
		}
		static const char *const ints[] = {"promised_days", "time_limit_days", "visits"};
		for (size_t k = 0; k < sizeof ints / sizeof *ints; k++) {
			int64_t v = int_or(e->rec, ints[k], -1);
			if (v >= 0)
				api->rec_set_int(m, ints[k], v);
		}
	}
	api->rec_set_record(out, "items", arr);
	api->rec_set_int(out, "count", (int64_t)api->rec_count(arr));
	api->rec_free(arr);
	*reply = out;
	return 0;
}

/*
 * POST applications: submit for the applicant, as the key (a kiosk's machine credential).
 * Body: {"item": CODE, ["scope": PATH,] applicant fields and the item's form fields as
 * strings}. 201 {id, status, token}; unknown item 400, inactive 409, a bad or missing
 * field 400 naming it — nothing stored.
 */
static int route_submit(linli_ctx *ctx, const struct linli_http_req *req, linli_record **reply,
			int *status, char *err, size_t errlen)
{
	int rc = need_map(req, err, errlen);
	const char *code, *scope;
	if (rc || (rc = body_str(req->body, "item", &code, err, errlen)) ||
	    (rc = body_str(req->body, "scope", &scope, err, errlen)))
		return rc;
	if (!code || !code[0]) {
		snprintf(err, errlen, "field 'item': missing (a service item's code)");
		return LINLI_EINVAL;
	}
	if (!scope)
		scope = req->caller && req->caller->scope ? req->caller->scope : "";
	size_t n = api->rec_count(req->body), k = 0;
	char **words = calloc(n + 1, sizeof *words);
	if (!words)
		return LINLI_ENOMEM;
	for (size_t i = 0; !rc && i < n; i++) {
		const char *key, *v;
		api->rec_key(req->body, i, &key);
		if (!strcmp(key, "item") || !strcmp(key, "scope"))
			continue;
		if (api->rec_get_str(req->body, key, &v, NULL)) {
			snprintf(err, errlen, "field '%s': a string expected", key);
			rc = LINLI_EINVAL;
		} else if (!strchr(key, '=') && (words[k] = malloc(strlen(key) + strlen(v) + 2)))
			sprintf(words[k++], "%s=%s", key, v);
		else {
			snprintf(err, errlen, "field '%s': not a field name", key);
			rc = LINLI_EINVAL;
		}
	}
	if (!rc)
		rc = submit(ctx, req->caller, scope, code, (int)k, (const char *const *)words,
			    "online", reply, err, errlen);
	for (size_t i = 0; i < k; i++)
		free(words[i]);
	free(words);
	if (rc == LINLI_ENOENT)
		*status = 400; /* no such item: the request is wrong, not a missing resource */
	else if (rc == LINLI_ESTATE)
		*status = 409;
	else if (!rc)
		*status = 201;
	return rc;
}

/* POST applications/status {"token"}: that application's state and notice, nothing else. */
static int route_status(linli_ctx *ctx, const struct linli_http_req *req, linli_record **reply,
			int *status, char *err, size_t errlen)
{
	(void)status;
	const char *tok;
	struct by_token t;
	int rc = need_map(req, err, errlen);
	if (rc || (rc = body_str(req->body, "token", &tok, err, errlen)) ||
	    (rc = app_by_token(ctx, tok, &t, err, errlen)))
		return rc;
	*reply = applicant_view(ctx, t.id, t.scope, t.rec);
	api->rec_free(t.rec);
	return *reply ? 0 : LINLI_ENOMEM;
}

/* POST applications/evaluate {"token", "score": 1-5, "comment"}: 好差评, once, after 办结. */
static int route_evaluate(linli_ctx *ctx, const struct linli_http_req *req, linli_record **reply,
			  int *status, char *err, size_t errlen)
{
	const char *tok, *comment;
	struct by_token t;
	int rc = need_map(req, err, errlen);
	if (rc || (rc = body_str(req->body, "token", &tok, err, errlen)) ||
	    (rc = body_str(req->body, "comment", &comment, err, errlen)))
		return rc;
	char score[32] = "";
	int64_t v;
	const char *s;
	if (api->rec_get_int(req->body, "score", &v) == 0)
		snprintf(score, sizeof score, "%lld", (long long)v);
	else if (api->rec_get_str(req->body, "score", &s, NULL) == 0)
		snprintf(score, sizeof score, "%.30s", s);
	if ((rc = app_by_token(ctx, tok, &t, err, errlen)))
		return rc;
	rc = evaluate(ctx, who_is(req->caller), t.id, t.scope, score, comment, err, errlen);
	if (rc == LINLI_ESTATE)
		*status = 409;
	if (!rc) {
		linli_record *a = NULL;
		if (api->store_get(ctx, "applications", t.scope, t.id, &a, NULL) == 0)
			*reply = applicant_view(ctx, t.id, t.scope, a);
		api->rec_free(a);
	}
	api->rec_free(t.rec);
	return rc;
}

/* ---- deadlines: warned at 80% of the promised time, overdue escalated to the street ---- */

/* The street above a community's (or a grid's) scope: its first three segments. */
static void street_of(const char *scope, char *out, size_t len)
{
	const char *p = scope;
	for (int i = 0; i < 3 && p; i++) {
		p = strchr(p, '/');
		if (p && i < 2)
			p++;
	}
	snprintf(out, len, "%.*s", p ? (int)(p - scope) : (int)strlen(scope), scope);
}

/*
 * How far application `a` at `scope` is through its promised time at `now`: 0 (no
 * running clock, or below 80%), 1 (warning: 80% used), 2 (overdue). *pct: the % used.
 */
static int due_level(linli_ctx *ctx, const char *scope, const linli_record *a, int64_t now,
		     int64_t *pct)
{
	const char *st = str_or(a, "status", "");
	int64_t dl = time_or(a, "deadline", 0);
	*pct = 0;
	if (dl <= 0 || (strcmp(st, "accepted") && strcmp(st, "processing")))
		return 0;
	if (dl <= now) {
		*pct = 100;
		return 2;
	}
	const struct wf_cal *cal = calendar(ctx, scope, now);
	int64_t limit = promised_ms(scope, a, cal);
	int64_t left = work_between(ctx, scope, now, dl);
	if (limit <= 0 || left > limit)
		limit = work_between(ctx, scope, time_or(a, "accepted_at", now), dl);
	if (limit <= 0)
		return 0;
	*pct = (limit - left) * 100 / limit;
	return (limit - left) * 5 >= limit * 4 ? 1 : 0;
}

struct due_write {
	int64_t deadline, now;
	int level;
	const char *to;
};

static int due_step(linli_ctx *ctx, const char *id, linli_record **rec, void *ud, char *err,
		    size_t errlen)
{
	(void)ctx, (void)id, (void)err, (void)errlen;
	const struct due_write *w = ud;
	if (!*rec || time_or(*rec, "deadline", -1) != w->deadline)
		return LINLI_STORE_KEEP; /* moved since the tick read it */
	if (w->level == 1)
		api->rec_set_time(*rec, "warned_for", w->deadline);
	else {
		api->rec_set_time(*rec, "overdue_for", w->deadline);
		api->rec_set_time(*rec, "overdue_at", w->now);
		api->rec_set_str(*rec, "escalated_to", w->to);
	}
	return 0;
}

struct due_case {
	char id[LINLI_ID_MAX + 1], scope[LINLI_SCOPE_MAX + 1];
	int64_t deadline, pct;
	int level;
	char status[32];
};

struct due_scan {
	struct due_case *v;
	size_t n, cap;
	int64_t now;
	int all; /* a listing: every warned or overdue one; the tick: those not recorded yet */
};

static int due_row(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	struct due_scan *s = ud;
	int64_t dl = time_or(row->record, "deadline", 0), pct = 100;
	bool alarm_only = false;
	if (!s->all && time_or(row->record, "overdue_for", -1) == dl) {
		if (time_or(row->record, "alarm_for", -1) == dl)
			return 0; /* recorded and alarmed for this deadline already */
		alarm_only = true; /* recorded: its alarm is asked again */
	} else if (!s->all && dl > s->now && time_or(row->record, "warned_for", -1) == dl)
		return 0; /* warned for this deadline already */
	int level = alarm_only ? 3 : due_level(ctx, row->scope, row->record, s->now, &pct);
	if (!level || (!s->all && level == 1 && time_or(row->record, "warned_for", -1) == dl))
		return 0;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct due_case *v = realloc(s->v, cap * sizeof *v);
		if (!v)
			return LINLI_ENOMEM;
		s->v = v, s->cap = cap;
	}
	struct due_case *c = &s->v[s->n++];
	snprintf(c->id, sizeof c->id, "%s", row->id);
	snprintf(c->scope, sizeof c->scope, "%s", row->scope);
	snprintf(c->status, sizeof c->status, "%s", str_or(row->record, "status", ""));
	c->deadline = dl;
	c->pct = pct;
	c->level = level;
	return 0;
}

/* The applications with a running clock (accepted, processing) within `scope`. */
static int due_scan(linli_ctx *ctx, const char *scope, struct due_scan *s)
{
	static const char *const running[] = {"accepted", "processing"};
	struct linli_range range[] = {{"deadline", ">", "0"}};
	int rc = 0;
	for (size_t i = 0; rc >= 0 && i < 2; i++) {
		struct linli_where w = {"status", running[i]};
		struct linli_query q = {.size = sizeof q,
					.dataset = "applications",
					.scope = scope,
					.where = &w,
					.n_where = 1,
					.limit = 1000,
					.range = range,
					.n_range = 1};
		char cursor[LINLI_CURSOR_MAX] = "";
		do {
			q.cursor = cursor;
			rc = api->store_scan(ctx, &q, due_row, s, cursor);
		} while (rc >= 0 && cursor[0]);
	}
	return rc < 0 ? rc : 0;
}

/* The alarms plugin's answer to an overdue alarm: recorded on the application. */
static int alarm_step(linli_ctx *ctx, const char *id, linli_record **rec, void *ud, char *err,
		      size_t errlen)
{
	(void)ctx, (void)id, (void)err, (void)errlen;
	const int64_t *deadline = ud;
	if (!*rec || time_or(*rec, "overdue_for", -1) != *deadline)
		return LINLI_STORE_KEEP;
	api->rec_set_time(*rec, "alarm_for", *deadline);
	return 0;
}

/* An overdue alarm raised: recorded in alarm_for, so no restart asks again. */
static void on_alarm_raised(linli_ctx *ctx, const struct alarmreq_fly *f, int status,
			    const char *alarm)
{
	(void)alarm;
	if (status < 0)
		return; /* logged; the next tick asks again */
	int64_t deadline = f->tag[0];
	if (api->store_update(ctx, "applications", f->scope, f->id, alarm_step, &deadline))
		api->log(ctx, LINLI_LOG_WARN, "application %s: its overdue alarm not recorded: %s",
			 f->id, api->store_last_error(ctx));
}

/*
 * Ask the alarms plugin for the alarm of an overdue application (application_overdue,
 * major, source record:applications/ID, at its scope); the answer is recorded in
 * alarm_for, so a tick asks again until it is, and a restart never twice.
 */
static void raise_overdue(linli_ctx *ctx, const struct due_case *c, const char *to,
			  const char *when)
{
	if (alarmreq_in_flight(&S->fly, c->scope, c->id))
		return; /* asked already, not answered yet */
	char src[LINLI_ID_MAX + 32], details[512];
	snprintf(src, sizeof src, "record:applications/%s", c->id);
	snprintf(details, sizeof details,
		 "application %s overdue: past the promised deadline %s; escalated (督办) to %s",
		 c->id, when, to);
	linli_record *p = api->rec_new();
	if (!p)
		return;
	api->rec_set_str(p, "type", "application_overdue");
	api->rec_set_str(p, "source", src);
	api->rec_set_str(p, "severity", "major");
	api->rec_set_str(p, "details", details);
	alarmreq_fly_raise(&S->fly, ctx, c->scope, c->id, c->deadline, 0, p);
	api->rec_free(p);
}

static void on_alarm_cleared(linli_ctx *ctx, uint64_t rid, int status, const linli_record *rec,
			     const char *err, void *ud)
{
	(void)rid, (void)rec, (void)ud;
	if (status < 0 && status != LINLI_ENOENT)
		api->log(ctx, LINLI_LOG_WARN, "an overdue alarm is not cleared: %s",
			 err && err[0] ? err : linli_strerror(status));
}

/* An application that was alarmed overdue has ended or met its deadline: clear it. */
static void clear_overdue(linli_ctx *ctx, const char *scope, const char *id)
{
	char src[LINLI_ID_MAX + 32];
	snprintf(src, sizeof src, "record:applications/%s", id);
	linli_record *p = api->rec_new();
	if (!p)
		return;
	api->rec_set_str(p, "type", "application_overdue");
	api->rec_set_str(p, "source", src);
	api->rec_set_str(p, "why", "the application moved on");
	uint64_t rid;
	if (api->request(ctx, "alarmreq/clear", scope, p, 0, on_alarm_cleared, NULL, &rid))
		api->log(ctx, LINLI_LOG_WARN, "application %s: its overdue alarm is not cleared: "
			 "nobody serves alarmreq/clear", id);
	api->rec_free(p);
}

/*
 * The deadline timer (each minute, and at once when the test clock moves), as the plugin:
 * a warning recorded once per deadline at 80% of the promised time, and once past it the
 * application marked overdue (逾期) and escalated (督办) to its street — each a move in
 * application_moves by plugin:services and an audit entry, so a restart repeats none.
 */
static void due_tick(linli_ctx *ctx, void *ud)
{
	(void)ud;
	struct due_scan s = {.now = api->time_now_ms()};
	if (due_scan(ctx, NULL, &s) < 0)
		api->log(ctx, LINLI_LOG_WARN, "deadlines: %s", api->store_last_error(ctx));
	for (size_t i = 0; i < s.n; i++) {
		const struct due_case *c = &s.v[i];
		char to[LINLI_SCOPE_MAX + 1], note[512], when[32];
		street_of(c->scope, to, sizeof to);
		struct due_write w = {c->deadline, s.now, c->level, to};
		local_text(ctx, c->deadline, when, sizeof when);
		if (c->level == 3) { /* recorded overdue: its alarm is not raised yet */
			raise_overdue(ctx, c, to, when);
			continue;
		}
		if (c->level == 1)
			snprintf(note, sizeof note,
				 "warning: %lld%% of the promised time used (deadline %s)",
				 (long long)c->pct, when);
		else
			snprintf(note, sizeof note,
				 "overdue: past the promised deadline %s; escalated (督办) to %s",
				 when, to);
		if (api->store_update(ctx, "applications", c->scope, c->id, due_step, &w) ||
		    record_move(ctx, c->scope, c->id, c->level == 1 ? "warn" : "overdue", c->status,
				c->status, "plugin:services", s.now, note, c->deadline)) {
			api->log(ctx, LINLI_LOG_WARN, "application %s: %s not recorded: %s", c->id,
				 c->level == 1 ? "the warning" : "overdue",
				 api->store_last_error(ctx));
			continue;
		}
		api->audit(ctx, c->level == 1 ? "services.warn" : "services.overdue", c->scope,
			   c->id, "allowed", note);
		if (c->level == 2)
			raise_overdue(ctx, c, to, when);
	}
	free(s.v);
}

static int scope_arg(const struct linli_cmd_req *req, const char *cmd, const char **scope,
		     char *err, size_t errlen)
{
	*scope = NULL;
	for (int i = 0; i < req->argc; i++) {
		if (strncmp(req->argv[i], "scope=", 6) || !req->argv[i][6]) {
			snprintf(err, errlen,
				 "usage: services %s [scope=PATH] ('%s': unknown argument)", cmd,
				 req->argv[i]);
			return LINLI_EINVAL;
		}
		*scope = req->argv[i] + 6;
	}
	return 0;
}

/* services overdue [scope=PATH]: the applications past 80% (warning) or their deadline. */
static int cmd_overdue(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		       char *err, size_t errlen)
{
	const char *scope;
	int rc = scope_arg(req, "overdue", &scope, err, errlen);
	if (rc)
		return rc;
	struct due_scan s = {.now = api->time_now_ms(), .all = 1};
	if ((rc = due_scan(ctx, scope, &s))) {
		snprintf(err, errlen, "overdue: %s", api->store_last_error(ctx));
		free(s.v);
		return rc;
	}
	linli_record *arr = api->rec_new_array(), *m;
	for (size_t i = 0; i < s.n; i++) {
		api->arr_push_map(arr, &m);
		api->rec_set_str(m, "id", s.v[i].id);
		api->rec_set_str(m, "scope", s.v[i].scope);
		api->rec_set_str(m, "status", s.v[i].status);
		api->rec_set_time(m, "deadline", s.v[i].deadline);
		api->rec_set_str(m, "level", s.v[i].level == 2 ? "overdue" : "warning");
		api->rec_set_int(m, "percent", s.v[i].pct);
	}
	free(s.v);
	*reply = arr;
	return 0;
}

struct stats {
	int64_t now, by_state[8], overdue, escalated, on_time, late, evaluated, score_sum, good;
	int64_t day_start, today; /* submitted since the local day's start (the screen) */
};

static int stats_row(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	(void)ctx;
	struct stats *s = ud;
	const linli_record *a = row->record;
	const char *st = str_or(a, "status", "");
	for (size_t i = 0; i < table.n_states; i++)
		if (!strcmp(st, states[i]))
			s->by_state[i]++;
	int64_t dl = time_or(a, "deadline", 0), ev = int_or(a, "evaluation", 0);
	if (dl > 0 && dl <= s->now && (!strcmp(st, "accepted") || !strcmp(st, "processing")))
		s->overdue++;
	if (time_or(a, "overdue_at", 0) > 0)
		s->escalated++;
	if (!strcmp(st, "completed") && dl > 0)
		(*(time_or(a, "completed_at", 0) <= dl ? &s->on_time : &s->late))++;
	if (ev) {
		s->evaluated++;
		s->score_sum += ev;
		s->good += ev >= 4;
	}
	if (s->day_start && time_or(a, "submitted_at", 0) >= s->day_start)
		s->today++;
	return 0;
}

/* Scan the applications of `scope` (NULL: the caller's reach) into s. */
static int stats_scan(linli_ctx *ctx, const char *scope, struct stats *s, char *err, size_t errlen)
{
	struct linli_query q = {
	    .size = sizeof q, .dataset = "applications", .scope = scope, .limit = 1000};
	char cursor[LINLI_CURSOR_MAX] = "";
	int rc;
	do {
		q.cursor = cursor;
		rc = api->store_scan(ctx, &q, stats_row, s, cursor);
	} while (rc >= 0 && cursor[0]);
	if (rc < 0) {
		snprintf(err, errlen, "stats: %s", api->store_last_error(ctx));
		return rc;
	}
	return 0;
}

/* services stats [scope=PATH]: counts by state, overdue, on time, evaluations (好差评). */
static int cmd_stats(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		     char *err, size_t errlen)
{
	const char *scope;
	int rc = scope_arg(req, "stats", &scope, err, errlen);
	if (rc)
		return rc;
	struct stats s = {.now = api->time_now_ms()};
	if ((rc = stats_scan(ctx, scope, &s, err, errlen)) != 0)
		return rc;
	linli_record *r = api->rec_new(), *by;
	int64_t total = 0;
	api->rec_set_map(r, "by_status", &by);
	for (size_t i = 0; i < table.n_states; i++) {
		api->rec_set_int(by, states[i], s.by_state[i]);
		total += s.by_state[i];
	}
	api->rec_set_int(r, "total", total);
	api->rec_set_int(r, "overdue", s.overdue);
	api->rec_set_int(r, "escalated", s.escalated);
	api->rec_set_int(r, "completed_on_time", s.on_time);
	api->rec_set_int(r, "completed_late", s.late);
	api->rec_set_int(r, "evaluated", s.evaluated);
	if (s.evaluated) {
		api->rec_set_float(r, "average_score", (double)s.score_sum / (double)s.evaluated);
		api->rec_set_float(r, "satisfied_share", (double)s.good / (double)s.evaluated);
	}
	*reply = r;
	return 0;
}

/*
 * GET /api/v1/apps/services/screen: the big screen's government-services panel, acting
 * as the caller (its jurisdiction bounds what is counted): applications submitted today,
 * in progress (submitted, accepted, supplement required, processing), overdue (accepted
 * or processing past the promised deadline), completed on time and late, by state.
 * Counts only: no applicant, item field or document.
 */
static int route_screen(linli_ctx *ctx, const struct linli_http_req *req, linli_record **reply,
			int *status, char *err, size_t errlen)
{
	(void)status;
	int qrc = plugcmd_no_query(api, req, "screen", err, errlen);
	if (qrc)
		return qrc;
	struct stats s = {.now = api->time_now_ms()};
	int rc = api->time_day_start(ctx, s.now, 0, &s.day_start);
	if (rc) {
		snprintf(err, errlen, "screen: the node's local day: %s", linli_strerror(rc));
		return rc;
	}
	if ((rc = stats_scan(ctx, NULL, &s, err, errlen)) != 0)
		return rc;
	linli_record *r = api->rec_new(), *by;
	api->rec_set_str(r, "scope", req->caller && req->caller->scope ? req->caller->scope : "");
	api->rec_set_int(r, "today", s.today);
	int64_t open = 0;
	api->rec_set_map(r, "by_status", &by);
	for (size_t i = 0; i < table.n_states; i++) {
		api->rec_set_int(by, states[i], s.by_state[i]);
		if (!strcmp(states[i], "submitted") || !strcmp(states[i], "accepted") ||
		    !strcmp(states[i], "supplement_required") || !strcmp(states[i], "processing"))
			open += s.by_state[i];
	}
	api->rec_set_int(r, "in_progress", open);
	api->rec_set_int(r, "overdue", s.overdue);
	api->rec_set_int(r, "completed_on_time", s.on_time);
	api->rec_set_int(r, "completed_late", s.late);
	*reply = r;
	return 0;
}

/* ---- init, fini ---- */

static const char *const move_verbs[] = {"accept",  "reject", "request", "supply",
					 "process", "finish", "withdraw"};

static int services_init(linli_ctx *ctx, const struct linli_api *a)
{
	api = a;
	char err[256];
	if (sodium_init() < 0) {
		api->set_error(ctx, "libsodium cannot start (the applicants' tokens need it)");
		return LINLI_EIO;
	}
	if (wf_table_check(&table, err, sizeof err)) {
		api->set_error(ctx, "%s", err);
		return LINLI_EINVAL;
	}
	if (!(S = calloc(1, sizeof *S)))
		return LINLI_ENOMEM;
	wf_ref_init(&S->items, api, "service_items");
	wf_ref_above(&S->items);
	wcase = (struct wf_case){api, &table, "application_moves", "application"};
	S->fly = (struct alarmreq_flights){
	    .api = api, .what = "application", .answered = on_alarm_raised};
	wf_ref_init(&S->calendars, api, "work_calendar");
	wf_ref_above(&S->calendars);
	static const struct plugcmd_cmd cmds[] = {
	    {"items", "[list] | add SCOPE CODE NAME DEPARTMENT [FIELD=VALUE...]",
	     "the service items (事项), or add one", "services.read", cmd_items},
	    {"apply", "SCOPE ITEM FIELD=VALUE...", "submit an application (申请) for a service item",
	     NULL, cmd_apply},
	    {"show", "ID", "an application, its history and allowed moves", "services.read",
	     cmd_show},
	    {"list", "[status=STATE] [scope=PATH]", "the applications within reach",
	     "services.read", cmd_list},
	    {"table", "", "the workflow's moves and who may make them", "services.read", cmd_table},
	    {"part", "ID DEPARTMENT [NOTE...]",
	     "a co-handler's part of a joint item (联办) done; 办结 waits for every one", NULL,
	     cmd_part},
	    {"receipt", "ID", "the acceptance receipt (受理回执) of an application, to print", NULL,
	     cmd_receipt},
	    {"evaluate", "ID SCORE(1-5) [COMMENT...]",
	     "the applicant's evaluation (好差评) of a completed application, once", NULL,
	     cmd_evaluate},
	    {"overdue", "[scope=PATH]", "the applications past 80% of their promised time or overdue",
	     "services.read", cmd_overdue},
	    {"stats", "[scope=PATH]", "applications by state, overdue, on time, evaluations",
	     "services.read", cmd_stats},
	};
	static const struct plugcmd_route routes[] = {
	    {"items", "GET", "items", "services.read", route_items},
	    {"screen", "GET", "screen", "services.read", route_screen},
	    {"submit", "POST", "applications", "services.counter", route_submit},
	    {"status", "POST", "applications/status", "services.read", route_status},
	    {"evaluate", "POST", "applications/evaluate", "services.counter", route_evaluate},
	};
	err[0] = 0;
	int rc = plugcmd_register(api, ctx, actions, PLUGCMD_N(actions), cmds, PLUGCMD_N(cmds),
				  routes, PLUGCMD_N(routes), NULL, err, sizeof err);
	for (size_t i = 0; !rc && i < PLUGCMD_N(move_verbs); i++) {
		const char *v = move_verbs[i], *need = needs_text(v);
		rc = api->cmd_register(ctx, v,
				       !need		       ? "ID [NOTE...]"
				       : !strcmp(v, "reject")  ? "ID REASON..."
				       : !strcmp(v, "request") ? "ID MATERIALS..."
							       : "ID RESULT...",
				       "move an application (see services table)", cmd_move,
				       (void *)v);
	}
	uint64_t tid;
	if (!rc)
		rc = api->timer_add(ctx, 1000, 60000, due_tick, NULL, &tid);
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
		api->set_error(ctx, "setting up: %s", err[0] ? err : linli_strerror(rc));
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
	alarmreq_flights_free(&S->fly);
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
			      "store.read:work_calendar", "bus.publish:alarmreq/raise",
			      "bus.publish:alarmreq/clear"});
