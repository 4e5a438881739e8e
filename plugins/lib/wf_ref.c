/* wf_ref — the reference data a workflow plugin reads on its own account (wf_ref.h). */
#include "wf_ref.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void wf_ref_init(struct wf_ref *c, const struct linli_api *api, const char *dataset)
{
	memset(c, 0, sizeof *c);
	c->api = api;
	c->dataset = dataset;
}

void wf_ref_clear(struct wf_ref *c)
{
	for (size_t i = 0; i < c->n; i++)
		c->api->rec_free(c->v[i].rec);
	free(c->v);
	c->v = NULL;
	c->n = c->cap = 0;
	c->gen++;
}

/* Put record (scope, id) in, replacing one there: `rec` becomes the cache's. */
static int put(struct wf_ref *c, const char *scope, const char *id, linli_record *rec)
{
	c->gen++;
	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->v[i].scope, scope) && !strcmp(c->v[i].id, id)) {
			c->api->rec_free(c->v[i].rec);
			c->v[i].rec = rec;
			return 0;
		}
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		struct wf_ref_entry *v = realloc(c->v, cap * sizeof *v);
		if (!v) {
			c->api->rec_free(rec);
			return LINLI_ENOMEM;
		}
		c->v = v, c->cap = cap;
	}
	struct wf_ref_entry *e = &c->v[c->n++];
	snprintf(e->scope, sizeof e->scope, "%s", scope);
	snprintf(e->id, sizeof e->id, "%s", id);
	e->rec = rec;
	return 0;
}

static void del(struct wf_ref *c, const char *scope, const char *id)
{
	c->gen++;
	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->v[i].scope, scope) && !strcmp(c->v[i].id, id)) {
			c->api->rec_free(c->v[i].rec);
			c->v[i] = c->v[--c->n];
			return;
		}
}

static int load_row(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	(void)ctx;
	struct wf_ref *c = ud;
	linli_record *r;
	if (c->api->rec_copy(row->record, &r))
		return LINLI_ENOMEM;
	return put(c, row->scope, row->id, r);
}

void wf_ref_above(struct wf_ref *c)
{
	c->above = 1;
}

/* Every record at `scope` (NULL: the plugin's node and below). */
static int load_at(struct wf_ref *c, linli_ctx *ctx, const char *scope)
{
	struct linli_query q = {.size = sizeof q, .dataset = c->dataset, .scope = scope,
				.limit = 1000};
	char cursor[LINLI_CURSOR_MAX] = "";
	do {
		q.cursor = cursor;
		int rc = c->api->store_scan(ctx, &q, load_row, c, cursor);
		if (rc < 0) {
			c->api->log(ctx, LINLI_LOG_WARN, "%s%s%s: %s", c->dataset, scope ? " at " : "",
				    scope ? scope : "", c->api->store_last_error(ctx));
			return rc;
		}
	} while (cursor[0]);
	return 0;
}

int wf_ref_load(struct wf_ref *c, linli_ctx *ctx)
{
	wf_ref_clear(c);
	int rc = load_at(c, ctx, NULL);
	if (rc || !c->above)
		return rc;
	/* each scope above the node: its own records only (the store gives no more) */
	char up[LINLI_SCOPE_MAX + 1];
	snprintf(up, sizeof up, "%s", c->api->plugin_scope(ctx));
	for (char *sl; !rc && (sl = strrchr(up, '/'));) {
		*sl = '\0';
		rc = load_at(c, ctx, up);
	}
	return rc;
}

void wf_ref_follow(struct wf_ref *c, linli_ctx *ctx, const struct linli_change *ch)
{
	linli_record *r = NULL;
	if (!strcmp(ch->kind, "deleted"))
		del(c, ch->scope, ch->id);
	else if (c->api->store_get(ctx, c->dataset, ch->scope, ch->id, &r, NULL) == 0)
		put(c, ch->scope, ch->id, r);
	else
		c->api->log(ctx, LINLI_LOG_WARN, "%s %s at %s: %s", c->dataset, ch->id, ch->scope,
			    c->api->store_last_error(ctx));
}

int wf_ref_covers(const char *anc, const char *scope)
{
	size_t n = strlen(anc);
	return strncmp(anc, scope, n) == 0 && (scope[n] == '\0' || scope[n] == '/');
}

const struct wf_ref_entry *wf_ref_deepest(const struct wf_ref *c, const char *scope,
					  int (*match)(const struct wf_ref_entry *, const void *),
					  const void *arg)
{
	const struct wf_ref_entry *best = NULL;
	for (size_t i = 0; i < c->n; i++)
		if (wf_ref_covers(c->v[i].scope, scope) && match(&c->v[i], arg) &&
		    (!best || strlen(c->v[i].scope) > strlen(best->scope)))
			best = &c->v[i];
	return best;
}

int wf_ref_match_id(const struct wf_ref_entry *e, const void *arg)
{
	return strcmp(e->id, arg) == 0;
}

struct year_match {
	const struct linli_api *api;
	int64_t year;
};

static int match_year(const struct wf_ref_entry *e, const void *arg)
{
	const struct year_match *m = arg;
	int64_t y;
	return m->api->rec_get_int(e->rec, "year", &y) == 0 && y == m->year;
}

static const char *str_or(const struct linli_api *api, const linli_record *r, const char *key,
			  const char *dflt)
{
	const char *s;
	return r && api->rec_get_str(r, key, &s, NULL) == 0 ? s : dflt;
}

const struct wf_cal *wf_ref_calendar(struct wf_refcal *rc, const struct wf_ref *cals,
				     linli_ctx *ctx, const char *scope, int64_t now)
{
	const struct linli_api *api = cals->api;
	struct linli_tm t = {.size = sizeof t};
	int64_t this_year = api->time_local(ctx, now, &t) == 0 ? t.year : 0, hours_year = -1;
	if (rc->built && rc->year == this_year && rc->gen == cals->gen &&
	    strcmp(rc->scope, scope) == 0)
		return &rc->cal;
	struct wf_cal *c = &rc->cal;
	char err[256];
	wf_cal_init(c);
	wf_cal_set_hours(c, "09:00-12:00,13:30-17:30", err, sizeof err);
	rc->found = 0;
	const struct wf_ref_entry *hours = NULL;
	for (size_t i = 0; i < cals->n; i++) {
		struct year_match m = {api, 0};
		if (!wf_ref_covers(cals->v[i].scope, scope) ||
		    api->rec_get_int(cals->v[i].rec, "year", &m.year) != 0 || m.year < 0)
			continue;
		const struct wf_ref_entry *e = wf_ref_deepest(cals, scope, match_year, &m);
		if (e != &cals->v[i])
			continue; /* overridden below */
		if (wf_cal_add_year(c, (int)m.year, str_or(api, e->rec, "holidays", ""),
				    str_or(api, e->rec, "workdays", ""), err, sizeof err))
			api->log(ctx, LINLI_LOG_WARN, "work_calendar %s at %s: %s", e->id, e->scope,
				 err);
		rc->found = 1;
		if (m.year == this_year || (hours_year != this_year && m.year > hours_year))
			hours = e, hours_year = m.year;
	}
	if (hours &&
	    (wf_cal_set_hours(c, str_or(api, hours->rec, "hours", ""), err, sizeof err) ||
	     wf_cal_set_weekend(c, str_or(api, hours->rec, "weekend", "6,7"), err, sizeof err)))
		api->log(ctx, LINLI_LOG_WARN, "work_calendar %s at %s: %s (default used)",
			 hours->id, hours->scope, err);
	snprintf(rc->scope, sizeof rc->scope, "%s", scope);
	rc->year = this_year;
	rc->gen = cals->gen;
	rc->built = 1;
	return c;
}
