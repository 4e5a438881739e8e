/*
 * alarms — the alarms plugin: every family raises through it (plugins/alarms/).
 *
 * It keeps one active alarm per (scope, source, type): a repeat folds into
 * the alarm's count and last time in memory and is written once, by a flush
 * that runs after the current loop turn, however many repeats came in it.
 * The table of active alarms is rebuilt from the store at init, so it
 * survives restarts and kill -9 (what was not flushed was not acknowledged
 * as durable either). Raises come as requests on `alarmreq/raise` (answered
 * with the alarm's id) or from `linli alarms raise`; each change is kept in
 * alarm_history and published on alarm/<type>/<raised|acked|cleared|assigned>
 * with the alarm's scope on the event. This file must never block and never
 * write outside the alarms datasets.
 */
#include "alarms.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct linli_api *api;

const char *const al_sev_names[SEV_N] = {"critical", "major", "minor", "warning", "indeterminate"};

static struct al_state *state; /* the plugin's one state: init to fini */

int al_err(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return rc;
}

int al_sev_parse(const char *s)
{
	for (int i = 0; s && i < SEV_N; i++)
		if (strcmp(s, al_sev_names[i]) == 0)
			return i;
	return -1;
}

const char *al_state_name(bool active, bool acked)
{
	return active ? (acked ? "active_acknowledged" : "active_unacknowledged")
		      : (acked ? "cleared_acknowledged" : "cleared_unacknowledged");
}

/* ---- the table of active alarms ---- */

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static char *make_key(const char *scope, const char *source, const char *type)
{
	size_t n = strlen(scope) + strlen(source) + strlen(type) + 3;
	char *k = malloc(n);
	if (k)
		snprintf(k, n, "%s\x1f%s\x1f%s", scope, source, type);
	return k;
}

static struct al_entry *find_key(struct al_state *st, const char *key)
{
	if (!st->cap)
		return NULL;
	for (struct al_entry *e = st->buckets[hash(key) & (st->cap - 1)]; e; e = e->next)
		if (strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

struct al_entry *al_find(struct al_state *st, const char *scope, const char *source,
			 const char *type)
{
	char *k = make_key(scope, source, type);
	struct al_entry *e = k ? find_key(st, k) : NULL;
	free(k);
	return e;
}

static int grow(struct al_state *st)
{
	size_t cap = st->cap ? st->cap * 2 : 256;
	struct al_entry **b = calloc(cap, sizeof *b);
	if (!b)
		return LINLI_ENOMEM;
	for (size_t i = 0; i < st->cap; i++)
		for (struct al_entry *e = st->buckets[i], *next; e; e = next) {
			next = e->next;
			size_t h = hash(e->key) & (cap - 1);
			e->next = b[h];
			b[h] = e;
		}
	free(st->buckets);
	st->buckets = b;
	st->cap = cap;
	return 0;
}

/* A new entry for alarm `id` (key taken: freed with the entry). NULL: out of memory. */
static struct al_entry *insert(struct al_state *st, char *key, const char *id, const char *scope,
			       const char *source, const char *type, int sev, int64_t count,
			       int64_t last_at)
{
	struct al_entry *e = calloc(1, sizeof *e);
	if (!e || ((st->n + 1) * 4 > st->cap * 3 && grow(st))) {
		free(e);
		free(key);
		return NULL;
	}
	e->key = key;
	snprintf(e->id, sizeof e->id, "%s", id);
	snprintf(e->scope, sizeof e->scope, "%s", scope);
	snprintf(e->source, sizeof e->source, "%s", source);
	snprintf(e->type, sizeof e->type, "%s", type);
	e->sev = sev;
	e->count = count;
	e->last_at = last_at;
	size_t h = hash(key) & (st->cap - 1);
	e->next = st->buckets[h];
	st->buckets[h] = e;
	st->n++;
	return e;
}

/* Remove e from the table (and the dirty list) and free it. */
void al_drop(struct al_state *st, struct al_entry *e)
{
	for (size_t i = 0; e->dirty && i < st->n_dirty; i++)
		if (st->dirty[i] == e)
			st->dirty[i] = NULL;
	struct al_entry **pp = &st->buckets[hash(e->key) & (st->cap - 1)];
	while (*pp && *pp != e)
		pp = &(*pp)->next;
	if (*pp)
		*pp = e->next;
	st->n--;
	free(e->key);
	free(e);
}

static void free_table(struct al_state *st)
{
	for (size_t i = 0; i < st->cap; i++)
		for (struct al_entry *e = st->buckets[i], *next; e; e = next) {
			next = e->next;
			free(e->key);
			free(e);
		}
	free(st->buckets);
	free(st->dirty);
	free(st->expire);
	free(st->ladders);
	free(st->floods);
	for (struct al_window *w = st->windows, *next; w; w = next) {
		next = w->next;
		free(w);
	}
	free(st->shelves);
	free(st->case_rules);
	free(st->asks);
}

/* ---- history and events ---- */

int al_history(linli_ctx *ctx, const char *scope, const char *alarm, const char *by,
	       const char *action, const char *from, const char *to, const char *why)
{
	linli_record *h = api->rec_new();
	if (!h)
		return LINLI_ENOMEM;
	api->rec_set_str(h, "alarm", alarm);
	api->rec_set_time(h, "at", api->time_now_ms());
	api->rec_set_strn(h, "by", by, strnlen(by, AL_BY_MAX));
	api->rec_set_str(h, "action", action);
	if (from)
		api->rec_set_str(h, "from", from);
	if (to)
		api->rec_set_str(h, "to", to);
	if (why && *why)
		api->rec_set_strn(h, "why", why, strnlen(why, AL_WHY_MAX));
	int rc = api->store_put(ctx, "alarm_history", scope, NULL, h, NULL, NULL);
	if (rc)
		api->log(ctx, LINLI_LOG_WARN, "history of alarm %s (%s) not kept: %s", alarm,
			 action, api->store_last_error(ctx));
	api->rec_free(h);
	return rc;
}

/*
 * Publish alarm/<type>/<what> for the alarm `alarm` (its stored fields) at
 * its scope: {id, type, source, severity, state, count, by}.
 */
int al_publish(linli_ctx *ctx, const char *scope, const char *id, const linli_record *alarm,
	       const char *what, const char *by)
{
	const char *type = "", *source = "", *sev = "", *assignee = NULL;
	bool active = true, acked = false;
	int64_t count = 1;
	api->rec_get_str(alarm, "type", &type, NULL);
	api->rec_get_str(alarm, "source", &source, NULL);
	api->rec_get_str(alarm, "severity", &sev, NULL);
	api->rec_get_str(alarm, "assignee", &assignee, NULL);
	api->rec_get_bool(alarm, "active", &active);
	api->rec_get_bool(alarm, "acknowledged", &acked);
	int64_t esc = 0;
	api->rec_get_int(alarm, "count", &count);
	api->rec_get_int(alarm, "escalation", &esc);
	linli_record *p = api->rec_new();
	if (!p)
		return LINLI_ENOMEM;
	api->rec_set_str(p, "id", id);
	api->rec_set_str(p, "type", type);
	api->rec_set_str(p, "source", source);
	api->rec_set_str(p, "severity", sev);
	api->rec_set_str(p, "state", al_state_name(active, acked));
	api->rec_set_int(p, "count", count);
	if (assignee)
		api->rec_set_str(p, "assignee", assignee);
	if (esc)
		api->rec_set_int(p, "escalation", esc);
	api->rec_set_str(p, "by", by);
	char topic[AL_TYPE_MAX + 32];
	snprintf(topic, sizeof topic, "alarm/%s/%s", type, what);
	int rc = api->publish(ctx, topic, scope, p, NULL);
	if (rc)
		api->log(ctx, LINLI_LOG_WARN, "cannot publish %s for alarm %s at %s: %s", topic, id,
			 scope, linli_strerror(rc));
	api->rec_free(p);
	return rc;
}

/* ---- folding repeats ---- */

struct fold {
	struct al_entry *e;
	bool sev;
};

/* In an update: 0 if alarm id is there and active, else why not. */
static int still_active(const char *id, const linli_record *rec, char *err, size_t errlen)
{
	bool active = false;
	if (!rec)
		return al_err(err, errlen, LINLI_ENOENT, "alarm %s is gone", id);
	if (api->rec_get_bool(rec, "active", &active) || !active)
		return al_err(err, errlen, LINLI_ESTATE, "alarm %s is cleared", id);
	return 0;
}

static int fold_fn(linli_ctx *ctx, const char *id, linli_record **rec, void *ud, char *err,
		   size_t errlen)
{
	(void)ctx;
	struct fold *f = ud;
	int rc = still_active(id, *rec, err, errlen);
	if (rc)
		return rc;
	int64_t count = 1, last = 0;
	api->rec_get_int(*rec, "count", &count);
	api->rec_get_time(*rec, "last_at", &last);
	api->rec_set_int(*rec, "count", count + f->e->pending);
	api->rec_set_time(*rec, "last_at", f->e->last_at > last ? f->e->last_at : last);
	if (f->sev)
		api->rec_set_str(*rec, "severity", al_sev_names[f->e->sev]);
	return 0;
}

static int write_entry(linli_ctx *ctx, struct al_state *st, struct al_entry *e, bool sev, char *err,
		       size_t errlen)
{
	struct fold f = {e, sev};
	int rc = api->store_update(ctx, "alarms", e->scope, e->id, fold_fn, &f);
	st->writes++;
	if (rc)
		return al_err(err, errlen, rc, "%s", api->store_last_error(ctx));
	e->pending = 0;
	return 0;
}

/*
 * Write e's folded raises now (before its alarm is acted on). An alarm that
 * is gone or was cleared behind the plugin's back leaves the table: a
 * later raise makes a new one.
 */
int al_flush_one(linli_ctx *ctx, struct al_state *st, struct al_entry *e, char *err, size_t errlen)
{
	if (!e->pending)
		return 0;
	int rc = write_entry(ctx, st, e, false, err, errlen);
	if (rc == LINLI_ENOENT || rc == LINLI_ESTATE)
		al_drop(st, e);
	return rc;
}

static void flush(linli_ctx *ctx, void *ud)
{
	struct al_state *st = ud;
	char err[512];
	st->flush_armed = false;
	for (size_t i = 0; i < st->n_dirty; i++) {
		struct al_entry *e = st->dirty[i];
		if (!e)
			continue;
		e->dirty = false;
		st->dirty[i] = NULL;
		int rc = al_flush_one(ctx, st, e, err, sizeof err);
		if (rc)
			api->log(ctx, LINLI_LOG_WARN, "repeats of an alarm not written: %s", err);
	}
	st->n_dirty = 0;
}

static int mark_dirty(linli_ctx *ctx, struct al_state *st, struct al_entry *e)
{
	if (!e->dirty) {
		if (st->n_dirty == st->cap_dirty) {
			size_t cap = st->cap_dirty ? st->cap_dirty * 2 : 64;
			struct al_entry **d = realloc(st->dirty, cap * sizeof *d);
			if (!d)
				return LINLI_ENOMEM;
			st->dirty = d;
			st->cap_dirty = cap;
		}
		st->dirty[st->n_dirty++] = e;
		e->dirty = true;
	}
	if (!st->flush_armed) {
		int rc = api->timer_add(ctx, 0, 0, flush, st, NULL);
		if (rc)
			return rc;
		st->flush_armed = true;
	}
	return 0;
}

/* ---- shelves ---- */

int al_shelf_add(struct al_state *st, const char *id, const char *scope, const char *type,
		 const char *source, int64_t until)
{
	struct al_shelf *s = realloc(st->shelves, (st->n_shelves + 1) * sizeof *s);
	if (!s)
		return LINLI_ENOMEM;
	st->shelves = s;
	s = &st->shelves[st->n_shelves++];
	memset(s, 0, sizeof *s);
	snprintf(s->id, sizeof s->id, "%s", id);
	snprintf(s->scope, sizeof s->scope, "%s", scope);
	snprintf(s->type, sizeof s->type, "%s", type ? type : "");
	snprintf(s->source, sizeof s->source, "%s", source ? source : "");
	s->until = until;
	return 0;
}

void al_shelf_remove(struct al_state *st, const char *id)
{
	for (size_t i = 0; i < st->n_shelves; i++)
		if (strcmp(st->shelves[i].id, id) == 0) {
			st->shelves[i] = st->shelves[--st->n_shelves];
			return;
		}
}

/* Is `scope` the shelf's scope or below it? */
static bool under(const char *scope, const char *top)
{
	size_t n = strlen(top);
	return strncmp(scope, top, n) == 0 && (scope[n] == '\0' || scope[n] == '/');
}

/* The shelf in force over a raise, or NULL; shelves past their end are forgotten. */
static const struct al_shelf *shelf_over(struct al_state *st, const struct al_raise *in)
{
	int64_t now = api->time_now_ms();
	for (size_t i = 0; i < st->n_shelves;) {
		const struct al_shelf *s = &st->shelves[i];
		if (s->until <= now) {
			st->shelves[i] = st->shelves[--st->n_shelves];
			continue;
		}
		if (under(in->scope, s->scope) &&
		    (strcmp(s->type, in->type) == 0 || strcmp(s->source, in->source) == 0))
			return s;
		i++;
	}
	return NULL;
}

static int load_shelf(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	(void)ctx;
	const char *type = NULL, *source = NULL;
	int64_t until = 0;
	api->rec_get_str(row->record, "type", &type, NULL);
	api->rec_get_str(row->record, "source", &source, NULL);
	api->rec_get_time(row->record, "until", &until);
	return al_shelf_add(ud, row->id, row->scope, type, source, until);
}

static int load_shelves(linli_ctx *ctx, struct al_state *st, char *err, size_t errlen)
{
	struct linli_range r = {"until", ">", "now"};
	struct linli_query q = {
	    .size = sizeof q, .dataset = "alarm_shelves", .range = &r, .n_range = 1, .limit = 1000};
	char cursor[LINLI_CURSOR_MAX] = "";
	do {
		q.cursor = cursor;
		int rc = api->store_scan(ctx, &q, load_shelf, st, cursor);
		if (rc < 0)
			return al_err(err, errlen, rc, "loading the shelves: %s",
				      api->store_last_error(ctx));
	} while (cursor[0]);
	return 0;
}

/* ---- flood suppression ---- */

/* One more new alarm of type at scope: is it past its type's flood threshold? */
static bool flooded(struct al_state *st, const char *scope, const char *type)
{
	const struct al_flood *f = NULL;
	for (size_t i = 0; i < st->n_floods && !f; i++)
		if (strcmp(st->floods[i].type, type) == 0)
			f = &st->floods[i];
	if (!f)
		return false;
	struct al_window *w = st->windows;
	while (w && (strcmp(w->scope, scope) || strcmp(w->type, type)))
		w = w->next;
	if (!w) {
		if (!(w = calloc(1, sizeof *w)))
			return false;
		snprintf(w->scope, sizeof w->scope, "%s", scope);
		snprintf(w->type, sizeof w->type, "%s", type);
		w->next = st->windows;
		st->windows = w;
	}
	int64_t now = api->time_now_ms();
	if (!w->n || now - w->start >= f->ms)
		w->start = now, w->n = 0;
	return ++w->n > f->n;
}

/* ---- raising ---- */

bool al_name_ok(const char *s, size_t max)
{
	size_t n = 0;
	if (!s || !(*s >= 'a' && *s <= 'z'))
		return false;
	for (; s[n]; n++)
		if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') || s[n] == '_'))
			return false;
	return n <= max;
}

/* Is `s` a record id ([A-Za-z0-9][A-Za-z0-9_.:-]*, at most LINLI_ID_MAX)? */
static bool id_ok(const char *s, size_t n)
{
	if (!n || n > LINLI_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alnum =
		    (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || !strchr("_.:-", c)))
			return false;
	}
	return true;
}

int al_check_source(const char *src, char *err, size_t errlen)
{
	static const char *const kinds[] = {"device", "record", "plugin", "rule"};
	const char *colon = src ? strchr(src, ':') : NULL;
	if (!src || !*src)
		return al_err(err, errlen, LINLI_EINVAL,
			      "missing source (device:ID, "
			      "record:DATASET/ID, plugin:NAME or rule:NAME)");
	if (strlen(src) > AL_SOURCE_MAX)
		return al_err(err, errlen, LINLI_EINVAL, "source: %zu bytes, longer than %d",
			      strlen(src), AL_SOURCE_MAX);
	for (size_t i = 0; colon && colon[1] && i < sizeof kinds / sizeof kinds[0]; i++)
		if ((size_t)(colon - src) == strlen(kinds[i]) &&
		    memcmp(src, kinds[i], strlen(kinds[i])) == 0) {
			if (i == 0 && !id_ok(colon + 1, strlen(colon + 1)))
				return al_err(err, errlen, LINLI_EINVAL,
					      "source '%s': '%s' is not a device id", src,
					      colon + 1);
			return 0;
		}
	return al_err(err, errlen, LINLI_EINVAL,
		      "source '%.64s' is not KIND:NAME with KIND device, record, plugin or rule",
		      src);
}

/* Check a raise; 0, or LINLI_EINVAL with the reason in err. */
static int check_raise(const struct al_raise *in, int *sev, char *err, size_t errlen)
{
	if (!in->type || !*in->type)
		return al_err(err, errlen, LINLI_EINVAL, "missing type (e.g. smoke, door_forced)");
	if (!al_name_ok(in->type, AL_TYPE_MAX))
		return al_err(err, errlen, LINLI_EINVAL,
			      "type '%.64s' must be [a-z][a-z0-9_]*, at most %d bytes", in->type,
			      AL_TYPE_MAX);
	int rc = al_check_source(in->source, err, errlen);
	if (rc)
		return rc;
	if (!in->severity || !*in->severity)
		return al_err(err, errlen, LINLI_EINVAL, "missing severity (%s)", AL_SEV_LIST);
	if ((*sev = al_sev_parse(in->severity)) < 0)
		return al_err(err, errlen, LINLI_EINVAL, "severity '%.64s' is not one of %s",
			      in->severity, AL_SEV_LIST);
	if (in->details && strlen(in->details) > AL_DETAILS_MAX)
		return al_err(err, errlen, LINLI_EINVAL, "details: %zu bytes, longer than %d",
			      strlen(in->details), AL_DETAILS_MAX);
	if (!in->scope || !*in->scope)
		return al_err(err, errlen, LINLI_EINVAL, "missing scope");
	if (in->incident && !id_ok(in->incident, strlen(in->incident)))
		return al_err(err, errlen, LINLI_EINVAL, "incident '%.64s' is not a record id",
			      in->incident);
	return 0;
}

/* A repeat of active alarm e: fold it; a new severity is written and told at once. */
static int repeat(linli_ctx *ctx, struct al_state *st, struct al_entry *e, int sev,
		  const struct al_raise *in, char *err, size_t errlen)
{
	int64_t now = api->time_now_ms();
	e->pending++;
	e->count++;
	e->last_at = now > e->last_at ? now : e->last_at;
	st->folded++;
	if (sev == e->sev)
		return mark_dirty(ctx, st, e);
	int from = e->sev;
	e->sev = sev;
	char id[LINLI_ID_MAX + 1], scope[LINLI_SCOPE_MAX + 1];
	snprintf(id, sizeof id, "%s", e->id);
	snprintf(scope, sizeof scope, "%s", e->scope);
	int rc = write_entry(ctx, st, e, true, err, errlen);
	if (rc) {
		e->sev = from;
		return rc;
	}
	al_history(ctx, scope, id, in->by, "severity", al_sev_names[from], al_sev_names[sev],
		   "raised again with another severity");
	linli_record *a = NULL;
	if (api->store_get(ctx, "alarms", scope, id, &a, NULL) == 0) {
		al_publish(ctx, scope, id, a, "raised", in->by);
		api->rec_free(a);
	}
	return 0;
}

int al_raise(linli_ctx *ctx, struct al_state *st, const struct al_raise *in, char *id_out,
	     bool *created, int64_t *count, bool *shelved, char *err, size_t errlen)
{
	int sev = 0;
	int rc = check_raise(in, &sev, err, errlen);
	if (rc)
		return rc;
	const struct al_shelf *shelf = shelf_over(st, in);
	*shelved = shelf != NULL;
	*created = false;
	*count = 0;
	if (shelf) {
		st->shelved++;
		snprintf(id_out, LINLI_ID_MAX + 1, "%s", shelf->id);
		return 0;
	}
	char *key = make_key(in->scope, in->source, in->type);
	if (!key)
		return al_err(err, errlen, LINLI_ENOMEM, "out of memory");
	struct al_entry *e = find_key(st, key);
	if (e) {
		rc = repeat(ctx, st, e, sev, in, err, errlen);
		if (rc != LINLI_ENOENT && rc != LINLI_ESTATE) {
			free(key);
			if (rc)
				return rc;
			snprintf(id_out, LINLI_ID_MAX + 1, "%s", e->id);
			*count = e->count;
			return 0;
		}
		/* deleted or cleared behind the plugin's back: this raise makes a new one */
		al_drop(st, e);
	}
	if (strcmp(in->source, "plugin:alarms") != 0 && flooded(st, in->scope, in->type)) {
		/* a flood: this raise folds into the summary alarm of its type and scope */
		char details[AL_DETAILS_MAX + 1];
		struct al_raise sum = *in;
		snprintf(details, sizeof details,
			 "flood: more new %s alarms at %s than the "
			 "threshold allows; the latest from %s",
			 in->type, in->scope, in->source);
		sum.source = "plugin:alarms";
		sum.details = details;
		sum.topic = NULL;
		sum.incident = NULL;
		free(key);
		st->flooded++;
		return al_raise(ctx, st, &sum, id_out, created, count, shelved, err, errlen);
	}
	int64_t now = api->time_now_ms();
	linli_record *r = api->rec_new();
	if (!r) {
		free(key);
		return al_err(err, errlen, LINLI_ENOMEM, "out of memory");
	}
	api->rec_set_str(r, "type", in->type);
	api->rec_set_str(r, "source", in->source);
	api->rec_set_str(r, "severity", al_sev_names[sev]);
	api->rec_set_bool(r, "active", true);
	api->rec_set_bool(r, "acknowledged", false);
	api->rec_set_int(r, "count", 1);
	api->rec_set_time(r, "first_at", now);
	api->rec_set_time(r, "last_at", now);
	if (in->details && *in->details)
		api->rec_set_str(r, "details", in->details);
	if (in->topic && *in->topic)
		api->rec_set_str(r, "topic", in->topic);
	if (in->incident)
		api->rec_set_str(r, "incident", in->incident);
	if (strncmp(in->source, "device:", 7) == 0)
		api->rec_set_str(r, "device", in->source + 7);
	char id[LINLI_ID_MAX + 1];
	rc = api->store_put(ctx, "alarms", in->scope, NULL, r, id, NULL);
	if (rc) {
		free(key);
		api->rec_free(r);
		return al_err(err, errlen, rc, "%s", api->store_last_error(ctx));
	}
	st->raised++;
	st->writes++;
	e = insert(st, key, id, in->scope, in->source, in->type, sev, 1, now);
	if (e) {
		e->first_at = now;
		e->has_case = in->incident != NULL; /* a case's 督办: no case of its own */
	}
	else
		api->log(ctx, LINLI_LOG_WARN, "out of memory: alarm %s is not folded", id);
	al_history(ctx, in->scope, id, in->by, "raised", NULL, al_sev_names[sev], in->details);
	al_publish(ctx, in->scope, id, r, "raised", in->by);
	api->rec_free(r);
	snprintf(id_out, LINLI_ID_MAX + 1, "%s", id);
	*created = true;
	*count = 1;
	return 0;
}

/* ---- the request server: alarmreq/raise ---- */

static const char *opt_str(const linli_record *p, const char *key, const char **bad)
{
	const char *s = NULL;
	int rc = api->rec_get_str(p, key, &s, NULL);
	if (rc == LINLI_ETYPE && !*bad)
		*bad = key;
	return rc ? NULL : s;
}

/* Refuse a request with a field not in `known` (NULL-terminated): 1 when answered. */
static int unknown_field(linli_ctx *ctx, const struct linli_request *rq, const char *topic,
			 const char *const *known)
{
	const linli_record *p = rq->payload;
	for (size_t i = 0; p && i < api->rec_count(p); i++) {
		const char *k = NULL;
		api->rec_key(p, i, &k);
		bool ok = false;
		for (size_t j = 0; k && known[j]; j++)
			ok = ok || strcmp(k, known[j]) == 0;
		if (!ok) {
			char err[512], list[256] = "";
			for (size_t j = 0, off = 0; known[j] && off < sizeof list; j++)
				off += (size_t)snprintf(list + off, sizeof list - off, "%s%s",
							j ? ", " : "", known[j]);
			snprintf(err, sizeof err, "%s: unknown field '%.64s' (it takes %s)", topic,
				 k ? k : "?", list);
			api->reply(ctx, rq->id, LINLI_EINVAL, NULL, err);
			return 1;
		}
	}
	return 0;
}

/* Who sends a request: rule:NAME for a rule ("rule NAME"), else plugin:NAME. */
static void requester_of(const struct linli_request *rq, char *by, size_t len)
{
	if (strncmp(rq->requester, "rule ", 5) == 0)
		snprintf(by, len, "rule:%s", rq->requester + 5);
	else
		snprintf(by, len, "plugin:%s", rq->requester);
}

static void on_raise(linli_ctx *ctx, const struct linli_request *rq, void *ud)
{
	struct al_state *st = ud;
	char err[768], by[AL_BY_MAX + 1], id[LINLI_ID_MAX + 1];
	static const char *const known[] = {"type",  "source",	 "severity", "details",
					    "topic", "incident", NULL};
	if (unknown_field(ctx, rq, "alarmreq/raise", known))
		return;
	requester_of(rq, by, sizeof by);
	const linli_record *p = rq->payload;
	const char *bad = NULL;
	struct al_raise in = {.type = opt_str(p, "type", &bad),
			      .source = opt_str(p, "source", &bad),
			      .severity = opt_str(p, "severity", &bad),
			      .details = opt_str(p, "details", &bad),
			      .topic = opt_str(p, "topic", &bad),
			      .incident = opt_str(p, "incident", &bad),
			      .scope = rq->scope,
			      .by = by};
	bool created = false, shelved = false;
	int64_t count = 0;
	int rc = bad ? al_err(err, sizeof err, LINLI_EINVAL, "field '%s' must be a string", bad)
		     : al_raise(ctx, st, &in, id, &created, &count, &shelved, err, sizeof err);
	if (rc) {
		char msg[900];
		snprintf(msg, sizeof msg, "alarmreq/raise: %s", err);
		api->reply(ctx, rq->id, rc, NULL, msg);
		return;
	}
	linli_record *r = api->rec_new();
	api->rec_set_str(r, shelved ? "shelf" : "id", id);
	api->rec_set_bool(r, "created", created);
	api->rec_set_int(r, "count", count);
	api->rec_set_bool(r, "shelved", shelved);
	api->reply(ctx, rq->id, 0, r, NULL);
	api->rec_free(r);
}

/* ---- the request server: alarmreq/clear ---- */

/*
 * alarmreq/clear {type, source, why?} at the alarm's scope, or {id, why?} at it or above:
 * clears the active alarm of (scope, source, type), or alarm `id` within the request's
 * scope, as the requester (history and alarm/<type>/cleared name it); answered {id,
 * cleared}; LINLI_ENOENT when none is active.
 */
static void on_clear(linli_ctx *ctx, const struct linli_request *rq, void *ud)
{
	struct al_state *st = ud;
	char err[768], by[AL_BY_MAX + 1], id[LINLI_ID_MAX + 1];
	static const char *const known[] = {"type", "source", "why", "id", NULL};
	if (unknown_field(ctx, rq, "alarmreq/clear", known))
		return;
	requester_of(rq, by, sizeof by);
	const char *bad = NULL, *p_why;
	const linli_record *p = rq->payload;
	const char *type = opt_str(p, "type", &bad), *source = opt_str(p, "source", &bad);
	const char *by_id = opt_str(p, "id", &bad);
	char scope[LINLI_SCOPE_MAX + 1];
	snprintf(scope, sizeof scope, "%s", rq->scope);
	p_why = opt_str(p, "why", &bad);
	int rc = 0;
	linli_record *a = NULL;
	if (bad)
		rc = al_err(err, sizeof err, LINLI_EINVAL, "field '%s' must be a string", bad);
	else if (by_id && (type || source))
		rc = al_err(err, sizeof err, LINLI_EINVAL,
			    "give the alarm's id, or its type and source, not both");
	else if (by_id && (!id_ok(by_id, strlen(by_id)) ||
			   api->store_get(ctx, "alarms", NULL, by_id, &a, scope) ||
			   !under(scope, rq->scope) || api->rec_get_str(a, "type", &type, NULL) ||
			   api->rec_get_str(a, "source", &source, NULL)))
		rc = al_err(err, sizeof err, LINLI_ENOENT, "no alarm %.64s at %s", by_id,
			    rq->scope);
	else if (!type || !*type)
		rc =
		    al_err(err, sizeof err, LINLI_EINVAL, "missing type (e.g. smoke, door_forced)");
	else if (!al_name_ok(type, AL_TYPE_MAX))
		rc = al_err(err, sizeof err, LINLI_EINVAL,
			    "type '%.64s' must be [a-z][a-z0-9_]*, at most %d bytes", type,
			    AL_TYPE_MAX);
	else if ((rc = al_check_source(source, err, sizeof err)))
		;
	else if (p_why && strlen(p_why) > AL_WHY_MAX)
		rc = al_err(err, sizeof err, LINLI_EINVAL, "why: %zu bytes, longer than %d",
			    strlen(p_why), AL_WHY_MAX);
	struct al_entry *e = rc ? NULL : al_find(st, scope, source, type);
	if (e && by_id && strcmp(e->id, by_id))
		e = NULL; /* alarm by_id is cleared: another one of its key is active */
	if (!rc && !e)
		rc = al_err(err, sizeof err, LINLI_ENOENT,
			    "no active alarm of type %s from %s at %s", type, source, scope);
	if (!rc) {
		snprintf(id, sizeof id, "%s", e->id);
		rc = al_clear_entry(ctx, st, e, by, p_why && *p_why ? p_why : "cleared by request");
		if (rc)
			al_err(err, sizeof err, rc, "alarm %s: %s", id,
			       rc == LINLI_ENOENT || rc == LINLI_ESTATE
				   ? "cleared or removed already"
				   : api->store_last_error(ctx));
	}
	api->rec_free(a);
	if (rc) {
		char msg[900];
		snprintf(msg, sizeof msg, "alarmreq/clear: %s", err);
		api->reply(ctx, rq->id, rc, NULL, msg);
		return;
	}
	linli_record *r = api->rec_new();
	api->rec_set_str(r, "id", id);
	api->rec_set_bool(r, "cleared", true);
	api->reply(ctx, rq->id, 0, r, NULL);
	api->rec_free(r);
}

/* ---- configuration and auto-expiry ---- */

#define AL_EXPIRE_MAX_S (90LL * 24 * 3600) /* the longest expiry: 90 days */

/*
 * escalate = { TYPE = [ T1, T2 ]; ... }: an alarm of TYPE still unacknowledged
 * T1 seconds after it was first raised is re-notified, after T2 supervised
 * by the tier above (督办); T2 may be left out.
 */
static int load_ladders(linli_record *cfg, struct al_state *st, char *err, size_t errlen)
{
	linli_record *esc = NULL;
	if (!api->rec_has(cfg, "escalate"))
		return 0;
	if (api->rec_get_map(cfg, "escalate", &esc))
		return al_err(err, errlen, LINLI_ECONFIG,
			      "linli.cfg: plugins.alarms.escalate: must be a group { TYPE = [ "
			      "RENOTIFY_S, SUPERVISE_S ]; }");
	size_t n = api->rec_count(esc);
	if (n && !(st->ladders = calloc(n, sizeof *st->ladders)))
		return al_err(err, errlen, LINLI_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const char *type = NULL;
		linli_record *arr = NULL;
		struct al_ladder *l = &st->ladders[i];
		api->rec_key(esc, i, &type);
		if (!al_name_ok(type, AL_TYPE_MAX))
			return al_err(err, errlen, LINLI_ECONFIG,
				      "linli.cfg: plugins.alarms.escalate.%.64s: not an alarm type",
				      type);
		size_t k = api->rec_get_array(esc, type, &arr) ? 0 : api->rec_count(arr);
		for (size_t j = 0; j < k && j < 2; j++) {
			int64_t v = 0;
			if (api->arr_get_int(arr, j, &v) || v < 1 || v > AL_EXPIRE_MAX_S ||
			    (j && v * 1000 <= l->ms[0]))
				k = 0;
			l->ms[j] = v * 1000;
		}
		if (k < 1 || k > 2)
			return al_err(
			    err, errlen, LINLI_ECONFIG,
			    "linli.cfg: plugins.alarms.escalate.%s: must be [ RENOTIFY_S ] or "
			    "[ RENOTIFY_S, SUPERVISE_S ], whole seconds 1 to %lld, increasing",
			    type, AL_EXPIRE_MAX_S);
		snprintf(l->type, sizeof l->type, "%s", type);
		l->n = (int)k;
		st->n_ladders++;
	}
	return 0;
}

/*
 * flood = { TYPE = [ N, WINDOW_S ]; ... }: past N new alarms of TYPE at one
 * scope within WINDOW_S seconds, the next ones become one summary alarm.
 */
static int load_floods(linli_record *cfg, struct al_state *st, char *err, size_t errlen)
{
	linli_record *fl = NULL;
	if (!api->rec_has(cfg, "flood"))
		return 0;
	if (api->rec_get_map(cfg, "flood", &fl))
		return al_err(err, errlen, LINLI_ECONFIG,
			      "linli.cfg: plugins.alarms.flood: must be a group { TYPE = [ N, "
			      "WINDOW_S ]; }");
	size_t n = api->rec_count(fl);
	if (n && !(st->floods = calloc(n, sizeof *st->floods)))
		return al_err(err, errlen, LINLI_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const char *type = NULL;
		linli_record *arr = NULL;
		int64_t v[2] = {0, 0};
		api->rec_key(fl, i, &type);
		if (!al_name_ok(type, AL_TYPE_MAX))
			return al_err(err, errlen, LINLI_ECONFIG,
				      "linli.cfg: plugins.alarms.flood.%.64s: not an alarm type",
				      type);
		if (api->rec_get_array(fl, type, &arr) || api->rec_count(arr) != 2 ||
		    api->arr_get_int(arr, 0, &v[0]) || api->arr_get_int(arr, 1, &v[1]) ||
		    v[0] < 1 || v[0] > 100000 || v[1] < 1 || v[1] > AL_EXPIRE_MAX_S)
			return al_err(
			    err, errlen, LINLI_ECONFIG,
			    "linli.cfg: plugins.alarms.flood.%s: must be [ N, WINDOW_S ], N 1 "
			    "to 100000, WINDOW_S 1 to %lld",
			    type, AL_EXPIRE_MAX_S);
		snprintf(st->floods[i].type, sizeof st->floods[i].type, "%s", type);
		st->floods[i].n = v[0];
		st->floods[i].ms = v[1] * 1000;
		st->n_floods++;
	}
	return 0;
}

/*
 * plugins = { alarms = { expire_s = { TYPE = SECONDS; ... }; }; }; in
 * linli.cfg: an active alarm of TYPE with no raise for SECONDS is cleared by
 * the plugin. Anything else is refused, naming the key.
 */
static int load_config(linli_ctx *ctx, struct al_state *st, char *err, size_t errlen)
{
	linli_record *cfg = NULL, *exp = NULL;
	int rc = api->plugin_config(ctx, &cfg);
	if (rc)
		return al_err(err, errlen, rc, "cannot read the configuration");
	for (size_t i = 0; !rc && i < api->rec_count(cfg); i++) {
		const char *k = NULL;
		api->rec_key(cfg, i, &k);
		if (strcmp(k, "expire_s") != 0 && strcmp(k, "escalate") != 0 &&
		    strcmp(k, "flood") != 0 && strcmp(k, "incident") != 0)
			rc = al_err(
			    err, errlen, LINLI_ECONFIG,
			    "linli.cfg: plugins.alarms.%.64s: unknown key (it takes expire_s, "
			    "escalate, flood, incident)",
			    k);
	}
	if (!rc)
		rc = load_ladders(cfg, st, err, errlen);
	if (!rc)
		rc = al_cases_load(cfg, st, err, errlen);
	if (!rc)
		rc = load_floods(cfg, st, err, errlen);
	if (!rc && api->rec_has(cfg, "expire_s") && api->rec_get_map(cfg, "expire_s", &exp))
		rc = al_err(
		    err, errlen, LINLI_ECONFIG,
		    "linli.cfg: plugins.alarms.expire_s: must be a group { TYPE = SECONDS; }");
	size_t n = exp ? api->rec_count(exp) : 0;
	if (!rc && n && !(st->expire = calloc(n, sizeof *st->expire)))
		rc = al_err(err, errlen, LINLI_ENOMEM, "out of memory");
	for (size_t i = 0; !rc && i < n; i++) {
		const char *type = NULL;
		int64_t s = 0;
		api->rec_key(exp, i, &type);
		if (!al_name_ok(type, AL_TYPE_MAX))
			rc = al_err(err, errlen, LINLI_ECONFIG,
				    "linli.cfg: plugins.alarms.expire_s.%.64s: not an alarm type",
				    type);
		else if (api->rec_get_int(exp, type, &s) || s < 1 || s > AL_EXPIRE_MAX_S)
			rc = al_err(err, errlen, LINLI_ECONFIG,
				    "linli.cfg: plugins.alarms.expire_s.%s: must be whole seconds, "
				    "1 to %lld",
				    type, AL_EXPIRE_MAX_S);
		else {
			snprintf(st->expire[i].type, sizeof st->expire[i].type, "%s", type);
			st->expire[i].ms = s * 1000;
			st->n_expire++;
		}
	}
	api->rec_free(cfg);
	return rc;
}

static int64_t expiry_of(const struct al_state *st, const char *type)
{
	for (size_t i = 0; i < st->n_expire; i++)
		if (strcmp(st->expire[i].type, type) == 0)
			return st->expire[i].ms;
	return 0;
}

struct esc_arg {
	int level;
	bool acked; /* found acknowledged: nothing to do */
};

static int esc_fn(linli_ctx *ctx, const char *id, linli_record **rec, void *ud, char *err,
		  size_t errlen)
{
	(void)ctx;
	struct esc_arg *a = ud;
	int rc = still_active(id, *rec, err, errlen);
	if (rc)
		return rc;
	api->rec_get_bool(*rec, "acknowledged", &a->acked);
	if (a->acked)
		return LINLI_STORE_KEEP;
	return api->rec_set_int(*rec, "escalation", a->level);
}

/* Move e up its type's ladder to `level`: write it, keep it in the history, tell the bus. */
static void escalate(linli_ctx *ctx, struct al_state *st, struct al_entry *e, int level, int64_t ms)
{
	static const char *const what[] = {"", "re-notified",
					   "supervised by the tier above (督办)"};
	struct esc_arg a = {level, false};
	char id[LINLI_ID_MAX + 1], scope[LINLI_SCOPE_MAX + 1], why[128], from[24], to[24];
	snprintf(id, sizeof id, "%s", e->id);
	snprintf(scope, sizeof scope, "%s", e->scope);
	int rc = api->store_update(ctx, "alarms", scope, id, esc_fn, &a);
	if (rc) {
		api->log(ctx, LINLI_LOG_WARN, "cannot escalate alarm %s: %s", id,
			 api->store_last_error(ctx));
		if (rc == LINLI_ENOENT || rc == LINLI_ESTATE)
			al_drop(st, e);
		return;
	}
	if (a.acked) {
		e->acked = true;
		return;
	}
	snprintf(from, sizeof from, "%d", e->esc);
	snprintf(to, sizeof to, "%d", level);
	e->esc = level;
	st->escalated++;
	snprintf(why, sizeof why, "unacknowledged for %lld s: %s", (long long)(ms / 1000),
		 what[level]);
	al_history(ctx, scope, id, "plugin:alarms", "escalated", from, to, why);
	linli_record *rec = NULL;
	if (api->store_get(ctx, "alarms", scope, id, &rec, NULL) == 0) {
		al_publish(ctx, scope, id, rec, "escalated", "plugin:alarms");
		api->rec_free(rec);
	}
}

static const struct al_ladder *ladder_of(const struct al_state *st, const char *type)
{
	for (size_t i = 0; i < st->n_ladders; i++)
		if (strcmp(st->ladders[i].type, type) == 0)
			return &st->ladders[i];
	return NULL;
}

/* Escalate every unacknowledged active alarm whose ladder has a step due. */
static void escalate_due(linli_ctx *ctx, struct al_state *st, int64_t now)
{
	size_t n = 0;
	struct al_entry **due = NULL;
	for (size_t i = 0; st->n_ladders && i < st->cap; i++)
		for (struct al_entry *e = st->buckets[i]; e; e = e->next) {
			const struct al_ladder *l = ladder_of(st, e->type);
			if (!l || e->acked || e->esc >= l->n || e->first_at + l->ms[e->esc] > now)
				continue;
			struct al_entry **d = realloc(due, (n + 1) * sizeof *d);
			if (!d)
				break;
			due = d;
			due[n++] = e;
		}
	for (size_t i = 0; i < n; i++) {
		const struct al_ladder *l = ladder_of(st, due[i]->type);
		int level = l->n == 2 && due[i]->first_at + l->ms[1] <= now ? 2 : 1;
		escalate(ctx, st, due[i], level, l->ms[level - 1]);
	}
	free(due);
}

/* Every second: clear the active alarms of an expiring type not raised for its time. */
static void sweep(linli_ctx *ctx, void *ud)
{
	struct al_state *st = ud;
	int64_t now = api->time_now_ms();
	size_t n = 0;
	struct al_entry **due = NULL;
	for (size_t i = 0; i < st->cap; i++)
		for (struct al_entry *e = st->buckets[i]; e; e = e->next) {
			int64_t ms = expiry_of(st, e->type);
			if (!ms || e->last_at + ms > now)
				continue;
			struct al_entry **d = realloc(due, (n + 1) * sizeof *d);
			if (!d)
				break;
			due = d;
			due[n++] = e;
		}
	for (size_t i = 0; i < n; i++) {
		char why[96];
		snprintf(why, sizeof why, "expired: not raised for %lld s",
			 (long long)(expiry_of(st, due[i]->type) / 1000));
		if (al_clear_by_plugin(ctx, st, due[i], why) == 0)
			st->expired++;
	}
	free(due);
	escalate_due(ctx, st, now);
	al_cases_due(ctx, st, now);
}

/* ---- init: the table from the store ---- */

static int load_row(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	struct al_state *st = ud;
	const char *type = NULL, *source = NULL, *sev = NULL;
	int64_t count = 1, last = 0;
	api->rec_get_str(row->record, "type", &type, NULL);
	api->rec_get_str(row->record, "source", &source, NULL);
	api->rec_get_str(row->record, "severity", &sev, NULL);
	api->rec_get_int(row->record, "count", &count);
	api->rec_get_time(row->record, "last_at", &last);
	if (!type || !source)
		return 0;
	char *key = make_key(row->scope, source, type);
	if (!key)
		return LINLI_ENOMEM;
	if (find_key(st, key)) { /* two active of one key (written around the plugin) */
		api->log(ctx, LINLI_LOG_WARN,
			 "alarm %s at %s repeats the active %s of %s; repeats fold into the first",
			 row->id, row->scope, type, source);
		free(key);
		return 0;
	}
	int s = al_sev_parse(sev);
	struct al_entry *e = insert(st, key, row->id, row->scope, source, type,
				    s < 0 ? SEV_INDETERMINATE : s, count, last);
	if (!e)
		return LINLI_ENOMEM;
	int64_t esc = 0;
	api->rec_get_time(row->record, "first_at", &e->first_at);
	api->rec_get_bool(row->record, "acknowledged", &e->acked);
	api->rec_get_int(row->record, "escalation", &esc);
	e->esc = (int)esc;
	e->has_case = api->rec_has(row->record, "incident");
	return 0;
}

static int load_active(linli_ctx *ctx, struct al_state *st, char *err, size_t errlen)
{
	struct linli_where w = {"active", "true"};
	struct linli_query q = {
	    .size = sizeof q, .dataset = "alarms", .where = &w, .n_where = 1, .limit = 1000};
	char cursor[LINLI_CURSOR_MAX] = "";
	do {
		q.cursor = cursor;
		int rc = api->store_scan(ctx, &q, load_row, st, cursor);
		if (rc < 0)
			return al_err(err, errlen, rc, "loading the active alarms: %s",
				      rc == LINLI_ENOMEM ? "out of memory"
							 : api->store_last_error(ctx));
	} while (cursor[0]);
	return 0;
}

static int alarms_init(linli_ctx *ctx, const struct linli_api *a)
{
	api = a;
	char err[768] = "";
	int64_t migrated = 0;
	struct al_state *st = calloc(1, sizeof *st);
	int rc = st ? 0 : LINLI_ENOMEM;
	if (!rc)
		rc = load_config(ctx, st, err, sizeof err);
	if (!rc)
		rc = al_migrate(ctx, &migrated, err, sizeof err);
	if (!rc)
		rc = load_active(ctx, st, err, sizeof err);
	if (!rc)
		rc = load_shelves(ctx, st, err, sizeof err);
	if (!rc)
		rc = api->serve(ctx, "alarmreq/raise", on_raise, st, NULL);
	if (!rc)
		rc = api->serve(ctx, "alarmreq/clear", on_clear, st, NULL);
	if (!rc)
		rc = al_cmds_register(ctx, st, err, sizeof err);
	if (!rc && (st->n_expire || st->n_ladders || st->n_case_rules))
		rc = api->timer_add(ctx, 1000, 1000, sweep, st, NULL);
	if (rc) {
		api->set_error(ctx, "%s", err[0] ? err : linli_strerror(rc));
		if (st)
			free_table(st);
		free(st);
		return rc;
	}
	st->migrated = migrated;
	if (migrated)
		api->log(ctx, LINLI_LOG_INFO,
			 "migrated %lld alarms stored under the earlier definition (status -> "
			 "active and acknowledged, severity info -> indeterminate)",
			 (long long)migrated);
	api->log(ctx, LINLI_LOG_INFO, "%zu active alarms", st->n);
	state = st;
	return 0;
}

static void alarms_fini(linli_ctx *ctx, const struct linli_api *a)
{
	(void)a;
	struct al_state *st = state;
	if (!st)
		return;
	flush(ctx, st); /* the last folded repeats join the last batch */
	free_table(st);
	free(st);
	state = NULL;
}

LINLI_PLUGIN(alarms_init, alarms_fini, .name = "alarms", .version = "1.1.0", .family = "safety",
	     .description = "Alarms with a lifecycle: raise with dedup, acknowledge, clear, "
			    "assign, shelve, expire, escalate; history and notes",
	     .capabilities = {"store.read:alarms", "store.write:alarms", "store.read:alarm_history",
			      "store.write:alarm_history", "store.read:alarm_notes",
			      "store.write:alarm_notes", "store.read:alarm_shelves",
			      "store.write:alarm_shelves", "bus.subscribe:alarmreq/raise",
			      "bus.subscribe:alarmreq/clear", "bus.publish:alarm/#",
			      "store.read:devices", "store.read:grids",
			      "bus.publish:incidentreq/report"});
