/*
 * alarms_cmds — the alarm lifecycle and `linli alarms ...`.
 *
 * The lifecycle is the table `moves` below: an alarm's state is its two
 * flags (active or cleared, acknowledged or not), and each move names the
 * states it leaves and enters, the action a caller needs and what the
 * history and the bus are told. Clearing and acknowledging are independent:
 * active_unacknowledged -> active_acknowledged -> cleared_acknowledged, or
 * active_unacknowledged -> cleared_unacknowledged -> cleared_acknowledged. A
 * move the table does not hold is refused naming the alarm's state.
 *
 * Every command acts as its caller: what it reads and writes is checked,
 * masked and audited as the caller (a community operator sees only its
 * community's alarms), and each move is also checked with caller_may at the
 * alarm's own scope.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alarms.h"
#include "plugcmd.h"

struct move {
	const char *word;   /* command and history action */
	const char *action; /* the plugin action a caller needs */
	const char *event;  /* alarm/<type>/<event> */
	const char *from;   /* state it leaves */
	const char *to;	    /* state it enters */
};

/* The lifecycle: every legal move, and nothing else. */
static const struct move moves[] = {
    {"ack", "alarms.ack", "acked", "active_unacknowledged", "active_acknowledged"},
    {"ack", "alarms.ack", "acked", "cleared_unacknowledged", "cleared_acknowledged"},
    {"clear", "alarms.clear", "cleared", "active_unacknowledged", "cleared_unacknowledged"},
    {"clear", "alarms.clear", "cleared", "active_acknowledged", "cleared_acknowledged"},
    {"assign", "alarms.assign", "assigned", "active_unacknowledged", "active_unacknowledged"},
    {"assign", "alarms.assign", "assigned", "active_acknowledged", "active_acknowledged"},
    {"assign", "alarms.assign", "assigned", "cleared_unacknowledged", "cleared_unacknowledged"},
};
#define N_MOVES (sizeof moves / sizeof moves[0])

static const struct move *find_move(const char *word, const char *from)
{
	for (size_t i = 0; i < N_MOVES; i++)
		if (strcmp(moves[i].word, word) == 0 && strcmp(moves[i].from, from) == 0)
			return &moves[i];
	return NULL;
}

/* "cannot ack it: ack moves A -> B, C -> D" */
static int refuse_move(const char *id, const char *word, const char *state, char *err,
		       size_t errlen)
{
	size_t off = (size_t)snprintf(err, errlen, "alarm %s is %s: cannot %s it (%s moves", id,
				      state, word, word);
	for (size_t i = 0, k = 0; i < N_MOVES && off < errlen; i++)
		if (strcmp(moves[i].word, word) == 0)
			off += (size_t)snprintf(err + off, errlen - off, "%s %s -> %s",
						k++ ? "," : "", moves[i].from, moves[i].to);
	if (off < errlen)
		snprintf(err + off, errlen - off, ")");
	return LINLI_ESTATE;
}

static const char *state_of(const linli_record *r)
{
	bool active = false, acked = false;
	api->rec_get_bool(r, "active", &active);
	api->rec_get_bool(r, "acknowledged", &acked);
	return al_state_name(active, acked);
}

/* The words from argv[from] on, joined by spaces (at most len bytes). */
static void join(const struct linli_cmd_req *req, int from, char *out, size_t len)
{
	size_t off = 0;
	out[0] = '\0';
	for (int i = from; i < req->argc && off < len; i++)
		off += (size_t)snprintf(out + off, len - off, "%s%s", i > from ? " " : "",
					req->argv[i]);
}

static bool account_ok(const char *s)
{
	size_t n = strlen(s);
	if (!n || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || strchr("_.-@", s[i])))
			return false;
	return true;
}

/* Alarm `id` as the caller sees it; its scope into scope. */
static int get_alarm(linli_ctx *ctx, const char *id, linli_record **rec, char *scope, char *err,
		     size_t errlen)
{
	int rc = api->store_get(ctx, "alarms", NULL, id, rec, scope);
	if (rc == LINLI_ENOENT)
		return al_err(err, errlen, rc, "no alarm %s here", id);
	if (rc)
		return al_err(err, errlen, rc, "%s", api->store_last_error(ctx));
	return 0;
}

/* Write what is folded in memory for this alarm, so that a move sees its count. */
static void flush_alarm(linli_ctx *ctx, struct al_state *st, const linli_record *rec,
			const char *scope, const char *id)
{
	const char *type = NULL, *source = NULL;
	char err[512];
	api->rec_get_str(rec, "type", &type, NULL);
	api->rec_get_str(rec, "source", &source, NULL);
	struct al_entry *e = type && source ? al_find(st, scope, source, type) : NULL;
	if (e && strcmp(e->id, id) == 0 && al_flush_one(ctx, st, e, err, sizeof err))
		api->log(ctx, LINLI_LOG_WARN, "%s", err);
}

/* ---- moves ---- */

struct move_arg {
	const char *word, *assignee;
	const struct move *m; /* the move taken */
	char from_assignee[65];
};

static int move_fn(linli_ctx *ctx, const char *id, linli_record **rec, void *ud, char *err,
		   size_t errlen)
{
	(void)ctx;
	struct move_arg *a = ud;
	if (!*rec)
		return al_err(err, errlen, LINLI_ENOENT, "no alarm %s here", id);
	const char *state = state_of(*rec);
	const struct move *m = find_move(a->word, state);
	if (!m)
		return refuse_move(id, a->word, state, err, errlen);
	int64_t now = api->time_now_ms();
	if (strcmp(a->word, "ack") == 0) {
		api->rec_set_bool(*rec, "acknowledged", true);
		api->rec_set_time(*rec, "acknowledged_at", now);
	} else if (strcmp(a->word, "clear") == 0) {
		api->rec_set_bool(*rec, "active", false);
		api->rec_set_time(*rec, "cleared_at", now);
	} else {
		const char *old = "";
		api->rec_get_str(*rec, "assignee", &old, NULL);
		snprintf(a->from_assignee, sizeof a->from_assignee, "%s", old);
		api->rec_set_str(*rec, "assignee", a->assignee);
	}
	a->m = m;
	return 0;
}

static int do_move(linli_ctx *ctx, struct al_state *st, const struct linli_cmd_req *req,
		   const char *word, const char *assignee, const char *why, linli_record **reply,
		   char *err, size_t errlen)
{
	const char *id = req->argv[0];
	char scope[LINLI_SCOPE_MAX + 1];
	linli_record *rec = NULL;
	int rc = get_alarm(ctx, id, &rec, scope, err, errlen);
	if (rc)
		return rc;
	char action[32];
	snprintf(action, sizeof action, "alarms.%s", word);
	if ((rc = api->caller_may(ctx, req->caller, action, scope, err, errlen))) {
		api->rec_free(rec);
		return rc;
	}
	flush_alarm(ctx, st, rec, scope, id);
	api->rec_free(rec);
	rec = NULL;
	struct move_arg a = {.word = word, .assignee = assignee};
	rc = api->store_update(ctx, "alarms", scope, id, move_fn, &a);
	if (rc)
		return al_err(err, errlen, rc, "%s", api->store_last_error(ctx));
	const char *by = req->caller->name;
	if (strcmp(word, "assign") == 0)
		al_history(ctx, scope, id, by, "assigned", a.from_assignee, assignee, why);
	else
		al_history(ctx, scope, id, by, strcmp(word, "ack") == 0 ? "acked" : "cleared",
			   a.m->from, a.m->to, why);
	if ((rc = api->store_get(ctx, "alarms", scope, id, &rec, NULL)))
		return al_err(err, errlen, rc, "%s", api->store_last_error(ctx));
	const char *type = NULL, *source = NULL;
	api->rec_get_str(rec, "type", &type, NULL);
	api->rec_get_str(rec, "source", &source, NULL);
	struct al_entry *e = type && source ? al_find(st, scope, source, type) : NULL;
	if (e && strcmp(e->id, id) == 0) {
		if (strcmp(word, "clear") == 0) /* a raise of it now makes a new alarm */
			al_drop(st, e);
		else if (strcmp(word, "ack") == 0) /* no more escalation */
			e->acked = true;
	}
	al_publish(ctx, scope, id, rec, a.m->event, by);
	api->rec_set_str(rec, "id", id);
	api->rec_set_str(rec, "scope", scope);
	api->rec_set_str(rec, "state", state_of(rec));
	*reply = rec;
	return 0;
}

int al_clear_by_plugin(linli_ctx *ctx, struct al_state *st, struct al_entry *e, const char *why)
{
	return al_clear_entry(ctx, st, e, "plugin:alarms", why);
}

int al_clear_entry(linli_ctx *ctx, struct al_state *st, struct al_entry *e, const char *by,
		   const char *why)
{
	char err[512], id[LINLI_ID_MAX + 1], scope[LINLI_SCOPE_MAX + 1];
	snprintf(id, sizeof id, "%s", e->id);
	snprintf(scope, sizeof scope, "%s", e->scope);
	int rc = e->pending ? al_flush_one(ctx, st, e, err, sizeof err) : 0;
	if (rc) /* gone or cleared already: al_flush_one dropped it; else tried again later */
		return rc;
	struct move_arg a = {.word = "clear"};
	rc = api->store_update(ctx, "alarms", scope, id, move_fn, &a);
	if (rc) {
		api->log(ctx, LINLI_LOG_WARN, "cannot clear alarm %s at %s: %s", id, scope,
			 api->store_last_error(ctx));
		if (rc == LINLI_ENOENT || rc == LINLI_ESTATE)
			al_drop(st, e);
		return rc;
	}
	al_drop(st, e);
	al_history(ctx, scope, id, by, "cleared", a.m->from, a.m->to, why);
	linli_record *rec = NULL;
	if (api->store_get(ctx, "alarms", scope, id, &rec, NULL) == 0) {
		al_publish(ctx, scope, id, rec, "cleared", by);
		api->rec_free(rec);
	}
	return 0;
}

/* `alarms ack|clear ID [WHY...]` */
static int simple_move(linli_ctx *ctx, const struct linli_cmd_req *req, const char *word,
		       linli_record **reply, char *err, size_t errlen)
{
	char why[AL_WHY_MAX + 1];
	if (req->argc < 1)
		return al_err(err, errlen, LINLI_EINVAL, "usage: alarms %s ID [WHY...]", word);
	join(req, 1, why, sizeof why);
	return do_move(ctx, req->ud, req, word, NULL, why, reply, err, errlen);
}

static int cmd_ack(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply, char *err,
		   size_t errlen)
{
	return simple_move(ctx, req, "ack", reply, err, errlen);
}

static int cmd_clear(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		     char *err, size_t errlen)
{
	return simple_move(ctx, req, "clear", reply, err, errlen);
}

static int cmd_assign(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		      char *err, size_t errlen)
{
	char why[AL_WHY_MAX + 1];
	if (req->argc < 2)
		return al_err(err, errlen, LINLI_EINVAL, "usage: alarms assign ID USER [WHY...]");
	if (!account_ok(req->argv[1]))
		return al_err(err, errlen, LINLI_EINVAL, "assign: '%.64s' is not an account name",
			      req->argv[1]);
	join(req, 2, why, sizeof why);
	return do_move(ctx, req->ud, req, "assign", req->argv[1], why, reply, err, errlen);
}

/* ---- raise ---- */

static int cmd_raise(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		     char *err, size_t errlen)
{
	struct al_state *st = req->ud;
	if (req->argc < 4)
		return al_err(err, errlen, LINLI_EINVAL,
			      "usage: alarms raise TYPE SOURCE SCOPE SEVERITY [DETAILS...]");
	int rc = api->caller_may(ctx, req->caller, "alarms.raise", req->argv[2], err, errlen);
	if (rc)
		return rc;
	char details[AL_DETAILS_MAX + 2], by[AL_BY_MAX + 1], id[LINLI_ID_MAX + 1];
	join(req, 4, details, sizeof details);
	snprintf(by, sizeof by, "%s", req->caller->name);
	struct al_raise in = {.type = req->argv[0],
			      .source = req->argv[1],
			      .scope = req->argv[2],
			      .severity = req->argv[3],
			      .details = details,
			      .by = by};
	bool created = false, shelved = false;
	int64_t count = 0;
	if ((rc = al_raise(ctx, st, &in, id, &created, &count, &shelved, err, errlen)))
		return rc;
	linli_record *r = api->rec_new();
	api->rec_set_str(r, shelved ? "shelf" : "id", id);
	api->rec_set_bool(r, "created", created);
	api->rec_set_int(r, "count", count);
	api->rec_set_bool(r, "shelved", shelved);
	*reply = r;
	return 0;
}

/* ---- reading: list, show, history, note ---- */

static int add_row(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	(void)ctx;
	linli_record *m = NULL;
	if (api->arr_push_record(ud, row->record))
		return LINLI_ENOMEM;
	api->arr_get_map(ud, api->rec_count(ud) - 1, &m);
	api->rec_set_str(m, "id", row->id);
	api->rec_set_str(m, "scope", row->scope);
	if (api->rec_has(m, "active"))
		api->rec_set_str(m, "state", state_of(m));
	return 0;
}

struct list_opts {
	const char *active; /* "true", "false" or NULL */
	const char *severity, *scope, *cursor;
	long limit;
};

static int parse_limit(const char *v, long *limit, char *err, size_t errlen)
{
	char *end;
	*limit = strtol(v, &end, 10);
	if (!*v || *end || *limit < 1 || *limit > 1000)
		return al_err(err, errlen, LINLI_EINVAL, "limit: '%.32s' is not a number 1..1000",
			      v);
	return 0;
}

/* One page of the alarms the caller may see: {alarms, count, cursor}. */
static int do_list(linli_ctx *ctx, const struct list_opts *o, linli_record **reply, char *err,
		   size_t errlen)
{
	struct linli_where w[2];
	int n_where = 0;
	if (o->active)
		w[n_where++] = (struct linli_where){"active", o->active};
	if (o->severity) {
		if (al_sev_parse(o->severity) < 0)
			return al_err(err, errlen, LINLI_EINVAL,
				      "severity: '%.64s' is not one of %s", o->severity,
				      AL_SEV_LIST);
		w[n_where++] = (struct linli_where){"severity", o->severity};
	}
	linli_record *rows = api->rec_new_array();
	if (!rows)
		return LINLI_ENOMEM;
	struct linli_query q = {.size = sizeof q,
				.dataset = "alarms",
				.scope = o->scope,
				.where = w,
				.n_where = n_where,
				.limit = (size_t)o->limit,
				.cursor = o->cursor};
	char next[LINLI_CURSOR_MAX] = "";
	int rc = api->store_scan(ctx, &q, add_row, rows, next);
	if (rc < 0) {
		api->rec_free(rows);
		return al_err(err, errlen, rc, "%s", api->store_last_error(ctx));
	}
	linli_record *r = api->rec_new();
	api->rec_set_record(r, "alarms", rows);
	api->rec_set_int(r, "count", (int64_t)api->rec_count(rows));
	api->rec_set_str(r, "cursor", next);
	api->rec_free(rows);
	*reply = r;
	return 0;
}

static int cmd_list(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		    char *err, size_t errlen)
{
	struct list_opts o = {.limit = 100};
	for (int i = 0; i < req->argc; i++) {
		const char *a = req->argv[i], *v = i + 1 < req->argc ? req->argv[i + 1] : NULL;
		int rc = 0;
		if (strcmp(a, "--active") == 0 || strcmp(a, "--cleared") == 0) {
			if (o.active)
				return al_err(err, errlen, LINLI_EINVAL,
					      "list: --active and --cleared exclude each other");
			o.active = a[2] == 'a' ? "true" : "false";
		} else if (strcmp(a, "--severity") == 0 && v) {
			o.severity = v, i++;
			if (al_sev_parse(v) < 0)
				return al_err(err, errlen, LINLI_EINVAL,
					      "--severity: '%.64s' is not one of %s", v,
					      AL_SEV_LIST);
		} else if (strcmp(a, "--scope") == 0 && v)
			o.scope = v, i++;
		else if (strcmp(a, "--cursor") == 0 && v)
			o.cursor = v, i++;
		else if (strcmp(a, "--limit") == 0 && v)
			rc = parse_limit(v, &o.limit, err, errlen), i++;
		else
			return al_err(
			    err, errlen, LINLI_EINVAL,
			    "list: unknown argument '%.64s' (usage: alarms list [--active "
			    "| --cleared] [--severity S] [--scope PATH] [--limit N] "
			    "[--cursor C])",
			    a);
		if (rc)
			return rc;
	}
	return do_list(ctx, &o, reply, err, errlen);
}

/* Every row of `dataset` about alarm id at scope, in time order, into a new array. */
static int about(linli_ctx *ctx, const char *dataset, const char *scope, const char *id,
		 linli_record **out, char *err, size_t errlen)
{
	struct linli_where w = {"alarm", id};
	struct linli_query q = {.size = sizeof q,
				.dataset = dataset,
				.scope = scope,
				.where = &w,
				.n_where = 1,
				.limit = 1000};
	char cursor[LINLI_CURSOR_MAX] = "";
	linli_record *rows = api->rec_new_array();
	if (!rows)
		return LINLI_ENOMEM;
	do {
		q.cursor = cursor;
		int rc = api->store_scan(ctx, &q, add_row, rows, cursor);
		if (rc < 0) {
			api->rec_free(rows);
			return al_err(err, errlen, rc, "%s", api->store_last_error(ctx));
		}
	} while (cursor[0] && api->rec_count(rows) < 10000);
	*out = rows;
	return 0;
}

/* Alarm id as the caller sees it, with its folded repeats, state and notes. */
static int do_show(linli_ctx *ctx, struct al_state *st, const char *id, linli_record **reply,
		   char *err, size_t errlen)
{
	char scope[LINLI_SCOPE_MAX + 1];
	linli_record *rec = NULL, *notes = NULL;
	int rc = get_alarm(ctx, id, &rec, scope, err, errlen);
	if (rc)
		return rc;
	flush_alarm(ctx, st, rec, scope, id);
	api->rec_free(rec);
	rec = NULL;
	if ((rc = get_alarm(ctx, id, &rec, scope, err, errlen)))
		return rc;
	if ((rc = about(ctx, "alarm_notes", scope, id, &notes, err, errlen))) {
		api->rec_free(rec);
		return rc;
	}
	api->rec_set_str(rec, "id", id);
	api->rec_set_str(rec, "scope", scope);
	api->rec_set_str(rec, "state", state_of(rec));
	api->rec_set_record(rec, "notes", notes);
	api->rec_free(notes);
	*reply = rec;
	return 0;
}

/* The history of alarm id, as the caller sees it: {alarm, scope, history}. */
static int do_history(linli_ctx *ctx, const char *id, linli_record **reply, char *err,
		      size_t errlen)
{
	char scope[LINLI_SCOPE_MAX + 1];
	linli_record *rec = NULL, *rows = NULL;
	int rc = get_alarm(ctx, id, &rec, scope, err, errlen);
	api->rec_free(rec);
	if (rc || (rc = about(ctx, "alarm_history", scope, id, &rows, err, errlen)))
		return rc;
	linli_record *r = api->rec_new();
	api->rec_set_str(r, "alarm", id);
	api->rec_set_str(r, "scope", scope);
	api->rec_set_record(r, "history", rows);
	api->rec_free(rows);
	*reply = r;
	return 0;
}

static int cmd_show(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		    char *err, size_t errlen)
{
	if (req->argc != 1)
		return al_err(err, errlen, LINLI_EINVAL, "usage: alarms show ID");
	return do_show(ctx, req->ud, req->argv[0], reply, err, errlen);
}

static int cmd_history(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		       char *err, size_t errlen)
{
	if (req->argc != 1)
		return al_err(err, errlen, LINLI_EINVAL, "usage: alarms history ID");
	return do_history(ctx, req->argv[0], reply, err, errlen);
}

/* ---- HTTP read endpoints: GET alarms, alarms/{}, alarms/{}/history ---- */

static int route_list(linli_ctx *ctx, const struct linli_http_req *req, linli_record **reply,
		      int *status, char *err, size_t errlen)
{
	(void)status;
	struct list_opts o = {.limit = 100};
	for (size_t i = 0; req->query && i < api->rec_count(req->query); i++) {
		const char *k = NULL, *v = NULL;
		api->rec_key(req->query, i, &k);
		api->rec_get_str(req->query, k, &v, NULL);
		int rc = 0;
		if (!v)
			continue;
		if (strcmp(k, "active") == 0) {
			if (strcmp(v, "true") && strcmp(v, "false"))
				return al_err(err, errlen, LINLI_EINVAL,
					      "active: '%.16s' is not true or false", v);
			o.active = v;
		} else if (strcmp(k, "severity") == 0)
			o.severity = v;
		else if (strcmp(k, "scope") == 0)
			o.scope = v;
		else if (strcmp(k, "cursor") == 0)
			o.cursor = v;
		else if (strcmp(k, "limit") == 0)
			rc = parse_limit(v, &o.limit, err, errlen);
		else
			return al_err(err, errlen, LINLI_EINVAL,
				      "unknown parameter '%.64s' (active, severity, scope, limit, "
				      "cursor)",
				      k);
		if (rc)
			return rc;
	}
	return do_list(ctx, &o, reply, err, errlen);
}

static int route_show(linli_ctx *ctx, const struct linli_http_req *req, linli_record **reply,
		      int *status, char *err, size_t errlen)
{
	(void)status;
	return do_show(ctx, req->ud, req->params[0], reply, err, errlen);
}

static int route_history(linli_ctx *ctx, const struct linli_http_req *req, linli_record **reply,
			 int *status, char *err, size_t errlen)
{
	(void)status;
	return do_history(ctx, req->params[0], reply, err, errlen);
}

static int cmd_note(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		    char *err, size_t errlen)
{
	if (req->argc < 2)
		return al_err(err, errlen, LINLI_EINVAL, "usage: alarms note ID TEXT...");
	char scope[LINLI_SCOPE_MAX + 1], text[2048], id[LINLI_ID_MAX + 1];
	linli_record *rec = NULL;
	int rc = get_alarm(ctx, req->argv[0], &rec, scope, err, errlen);
	api->rec_free(rec);
	if (rc || (rc = api->caller_may(ctx, req->caller, "alarms.note", scope, err, errlen)))
		return rc;
	join(req, 1, text, sizeof text);
	linli_record *n = api->rec_new();
	api->rec_set_str(n, "alarm", req->argv[0]);
	api->rec_set_time(n, "at", api->time_now_ms());
	api->rec_set_str(n, "by", req->caller->name);
	api->rec_set_str(n, "text", text);
	rc = api->store_put(ctx, "alarm_notes", scope, NULL, n, id, NULL);
	if (rc) {
		api->rec_free(n);
		return al_err(err, errlen, rc, "%s", api->store_last_error(ctx));
	}
	api->rec_set_str(n, "id", id);
	*reply = n;
	return 0;
}

/* ---- shelves ---- */

/* "90", "90s", "15m", "2h", "3d" as ms; at most 30 days. */
static int parse_duration(const char *v, int64_t *ms, char *err, size_t errlen)
{
	char *end;
	long long n = strtoll(v, &end, 10);
	int64_t unit = !*end		   ? 1000
		       : !strcmp(end, "s") ? 1000
		       : !strcmp(end, "m") ? 60000
		       : !strcmp(end, "h") ? 3600000
		       : !strcmp(end, "d") ? 86400000
					   : 0;
	if (end == v || !unit || n < 1 || n * unit > 30LL * 86400000)
		return al_err(err, errlen, LINLI_EINVAL,
			      "shelve: '%.32s' is not a duration of 1 s to 30 d (90s, 15m, 2h, 3d)",
			      v);
	*ms = n * unit;
	return 0;
}

static int cmd_shelve(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		      char *err, size_t errlen)
{
	struct al_state *st = req->ud;
	if (req->argc < 5)
		return al_err(err, errlen, LINLI_EINVAL,
			      "usage: alarms shelve type|source VALUE SCOPE DURATION WHY...");
	const char *kind = req->argv[0], *value = req->argv[1], *scope = req->argv[2];
	bool is_type = strcmp(kind, "type") == 0;
	int64_t ms = 0;
	int rc = 0;
	if (!is_type && strcmp(kind, "source") != 0)
		return al_err(err, errlen, LINLI_EINVAL, "shelve: '%.32s' is not type or source",
			      kind);
	if (is_type && !al_name_ok(value, AL_TYPE_MAX))
		return al_err(err, errlen, LINLI_EINVAL,
			      "shelve: type '%.64s' must be [a-z][a-z0-9_]*, at most %d bytes",
			      value, AL_TYPE_MAX);
	if ((!is_type && (rc = al_check_source(value, err, errlen))) ||
	    (rc = parse_duration(req->argv[3], &ms, err, errlen)) ||
	    (rc = api->caller_may(ctx, req->caller, "alarms.shelve", scope, err, errlen)))
		return rc;
	char why[AL_WHY_MAX + 1], id[LINLI_ID_MAX + 1];
	join(req, 4, why, sizeof why);
	int64_t now = api->time_now_ms();
	linli_record *r = api->rec_new();
	api->rec_set_str(r, kind, value);
	api->rec_set_time(r, "until", now + ms);
	api->rec_set_str(r, "why", why);
	api->rec_set_str(r, "by", req->caller->name);
	api->rec_set_time(r, "at", now);
	if ((rc = api->store_put(ctx, "alarm_shelves", scope, NULL, r, id, NULL)) ||
	    (rc = al_shelf_add(st, id, scope, is_type ? value : NULL, is_type ? NULL : value,
			       now + ms))) {
		api->rec_free(r);
		return al_err(err, errlen, rc, "%s",
			      rc == LINLI_ENOMEM ? "out of memory" : api->store_last_error(ctx));
	}
	api->rec_set_str(r, "id", id);
	api->rec_set_str(r, "scope", scope);
	char topic[AL_TYPE_MAX + 32];
	snprintf(topic, sizeof topic, "alarm/%s/shelved", is_type ? value : "any");
	if ((rc = api->publish(ctx, topic, scope, r, NULL)))
		api->log(ctx, LINLI_LOG_WARN, "cannot publish %s: %s", topic, linli_strerror(rc));
	*reply = r;
	return 0;
}

static int cmd_unshelve(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
			char *err, size_t errlen)
{
	(void)reply;
	if (req->argc != 1)
		return al_err(err, errlen, LINLI_EINVAL, "usage: alarms unshelve SHELF");
	char scope[LINLI_SCOPE_MAX + 1];
	linli_record *rec = NULL;
	int rc = api->store_get(ctx, "alarm_shelves", NULL, req->argv[0], &rec, scope);
	api->rec_free(rec);
	if (rc == LINLI_ENOENT)
		return al_err(err, errlen, rc, "no shelf %s here", req->argv[0]);
	if (rc)
		return al_err(err, errlen, rc, "%s", api->store_last_error(ctx));
	if ((rc = api->caller_may(ctx, req->caller, "alarms.shelve", scope, err, errlen)))
		return rc;
	if ((rc = api->store_delete(ctx, "alarm_shelves", scope, req->argv[0])))
		return al_err(err, errlen, rc, "%s", api->store_last_error(ctx));
	al_shelf_remove(req->ud, req->argv[0]);
	return 0;
}

static int cmd_shelves(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		       char *err, size_t errlen)
{
	(void)req;
	struct linli_range r = {"until", ">", "now"};
	struct linli_query q = {
	    .size = sizeof q, .dataset = "alarm_shelves", .range = &r, .n_range = 1, .limit = 1000};
	linli_record *rows = api->rec_new_array();
	if (!rows)
		return LINLI_ENOMEM;
	int rc = api->store_scan(ctx, &q, add_row, rows, NULL);
	if (rc < 0) {
		api->rec_free(rows);
		return al_err(err, errlen, rc, "%s", api->store_last_error(ctx));
	}
	*reply = rows;
	return 0;
}

static int cmd_stats(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		     char *err, size_t errlen)
{
	(void)ctx;
	(void)err;
	(void)errlen;
	struct al_state *st = req->ud;
	linli_record *r = api->rec_new();
	api->rec_set_int(r, "active", (int64_t)st->n);
	api->rec_set_int(r, "raised", st->raised);
	api->rec_set_int(r, "folded", st->folded);
	api->rec_set_int(r, "writes", st->writes);
	api->rec_set_int(r, "migrated", st->migrated);
	api->rec_set_int(r, "cases_opened", st->cases_opened);
	api->rec_set_int(r, "expired", st->expired);
	api->rec_set_int(r, "shelved", st->shelved);
	api->rec_set_int(r, "escalated", st->escalated);
	api->rec_set_int(r, "flooded", st->flooded);
	*reply = r;
	return 0;
}

int al_cmds_register(linli_ctx *ctx, struct al_state *st, char *err, size_t errlen)
{
	static const struct plugcmd_action actions[] = {
	    {"alarms.raise", "operator", NULL, NULL, "raise an alarm by hand"},
	    {"alarms.ack", "operator", NULL, NULL, "acknowledge an alarm"},
	    {"alarms.clear", "operator", NULL, NULL, "clear an alarm"},
	    {"alarms.assign", "operator", NULL, NULL, "assign an alarm to an account"},
	    {"alarms.note", "operator", NULL, NULL, "add a note to an alarm"},
	    {"alarms.shelve", "operator", NULL, NULL, "shelve an alarm type or source for a while"},
	};
	static const struct plugcmd_cmd cmds[] = {
	    {"raise", "TYPE SOURCE SCOPE SEVERITY [DETAILS...]", "raise an alarm (a repeat folds)",
	     "alarms.raise", cmd_raise},
	    {"list", "[--active|--cleared] [--severity S] [--scope PATH] [--limit N] [--cursor C]",
	     "alarms you may see", NULL, cmd_list},
	    {"show", "ID", "one alarm, its state and notes", NULL, cmd_show},
	    {"ack", "ID [WHY...]", "acknowledge an alarm", "alarms.ack", cmd_ack},
	    {"clear", "ID [WHY...]", "clear an alarm", "alarms.clear", cmd_clear},
	    {"assign", "ID USER [WHY...]", "assign an alarm to an account", "alarms.assign",
	     cmd_assign},
	    {"history", "ID", "every change of an alarm: who, when, why", NULL, cmd_history},
	    {"note", "ID TEXT...", "add a note to an alarm", "alarms.note", cmd_note},
	    {"shelve", "type|source VALUE SCOPE DURATION WHY...",
	     "drop the raises of a type or source under SCOPE for a while", "alarms.shelve",
	     cmd_shelve},
	    {"unshelve", "SHELF", "end a shelf now", "alarms.shelve", cmd_unshelve},
	    {"shelves", "", "the shelves in force", NULL, cmd_shelves},
	    {"stats", "", "raises, folded repeats, writes", NULL, cmd_stats},
	};
	static const struct plugcmd_route routes[] = {
	    {"list", "GET", "alarms", NULL, route_list},
	    {"show", "GET", "alarms/{}", NULL, route_show},
	    {"history", "GET", "alarms/{}/history", NULL, route_history},
	};
	return plugcmd_register(api, ctx, actions, PLUGCMD_N(actions), cmds, PLUGCMD_N(cmds), routes,
				PLUGCMD_N(routes), st, err, errlen);
}
