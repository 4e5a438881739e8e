/*
 * alarms_cases — an alarm opens a grid case (plugins/alarms/).
 *
 * plugins.alarms.incident = { TYPE = { category = "CAT"; at = "raised" |
 * "renotified" | "supervised"; grid = "g01"; }; } in linli.cfg: an active
 * alarm of TYPE that has reached `at` (raised: at once; renotified and
 * supervised: that step of its escalation ladder, so unacknowledged) and
 * has no case yet asks the grid plugin for one (incidentreq/report, channel
 * alarm, source_alarm its id) and records the answer in the alarm's
 * `incident` and its history. The grid plugin answers with the open case of
 * that alarm when there is one already, so asking twice (a restart between
 * the request and its answer) opens one case. The case goes to the grid of
 * the alarm's device (devices.grid), else to `grid`, within the alarm's
 * community; closing or voiding the case clears the alarm (the grid plugin).
 *
 * The sweep asks each second for the alarms that are due and not asked for:
 * after a restart, and when the grid plugin was not there, it asks again
 * (at most once a minute for one alarm while nobody serves the topic).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alarms.h"

#define AL_RETRY_MS 60000 /* ask again for an alarm no case was opened for */

static const char *const at_names[] = {"raised", "renotified", "supervised"};

int al_cases_load(linli_record *cfg, struct al_state *st, char *err, size_t errlen)
{
	linli_record *inc = NULL;
	if (!api->rec_has(cfg, "incident"))
		return 0;
	if (api->rec_get_map(cfg, "incident", &inc))
		return al_err(err, errlen, LINLI_ECONFIG,
			      "linli.cfg: plugins.alarms.incident: must be a group { TYPE = { "
			      "category = \"CATEGORY\"; at = \"raised\"; grid = \"GRID\"; }; }");
	size_t n = api->rec_count(inc);
	if (n && !(st->case_rules = calloc(n, sizeof *st->case_rules)))
		return al_err(err, errlen, LINLI_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const char *type = NULL, *cat = NULL, *at = "raised", *grid = "";
		linli_record *r = NULL;
		struct al_case_rule *c = &st->case_rules[i];
		api->rec_key(inc, i, &type);
		if (!al_name_ok(type, AL_TYPE_MAX))
			return al_err(err, errlen, LINLI_ECONFIG,
				      "linli.cfg: plugins.alarms.incident.%.64s: not an alarm type",
				      type);
		if (api->rec_get_map(inc, type, &r))
			return al_err(
			    err, errlen, LINLI_ECONFIG,
			    "linli.cfg: plugins.alarms.incident.%s: must be a group { "
			    "category = \"CATEGORY\"; at = \"raised\"; grid = \"GRID\"; }",
			    type);
		for (size_t j = 0; j < api->rec_count(r); j++) {
			const char *k = NULL;
			api->rec_key(r, j, &k);
			if (strcmp(k, "category") && strcmp(k, "at") && strcmp(k, "grid"))
				return al_err(
				    err, errlen, LINLI_ECONFIG,
				    "linli.cfg: plugins.alarms.incident.%s.%.64s: unknown "
				    "key (it takes category, at, grid)",
				    type, k);
		}
		if (api->rec_get_str(r, "category", &cat, NULL) || !al_name_ok(cat, 64))
			return al_err(err, errlen, LINLI_ECONFIG,
				      "linli.cfg: plugins.alarms.incident.%s.category: must be an "
				      "incident category code ([a-z][a-z0-9_]*, at most 64 bytes)",
				      type);
		if (api->rec_has(r, "at") && api->rec_get_str(r, "at", &at, NULL))
			at = "?";
		c->level = -1;
		for (int l = 0; l < 3; l++)
			if (strcmp(at, at_names[l]) == 0)
				c->level = l;
		if (c->level < 0)
			return al_err(err, errlen, LINLI_ECONFIG,
				      "linli.cfg: plugins.alarms.incident.%s.at: '%.32s' is not "
				      "raised, renotified or supervised",
				      type, at);
		if (api->rec_has(r, "grid") && (api->rec_get_str(r, "grid", &grid, NULL) ||
						!*grid || strlen(grid) > 32 || strchr(grid, '/')))
			return al_err(err, errlen, LINLI_ECONFIG,
				      "linli.cfg: plugins.alarms.incident.%s.grid: must be a grid "
				      "code (the last element of its path, e.g. \"g01\")",
				      type);
		snprintf(c->type, sizeof c->type, "%s", type);
		snprintf(c->category, sizeof c->category, "%s", cat);
		snprintf(c->grid, sizeof c->grid, "%s", grid);
		st->n_case_rules++;
	}
	return 0;
}

static const struct al_case_rule *rule_of(const struct al_state *st, const char *type)
{
	for (size_t i = 0; i < st->n_case_rules; i++)
		if (strcmp(st->case_rules[i].type, type) == 0)
			return &st->case_rules[i];
	return NULL;
}

/*
 * The grid of alarm e: its scope's fifth element when it is a grid already,
 * else the code of its device's grid (devices.grid, a grids record), else
 * the rule's grid; "" when none. out gets the grid's path.
 */
static void case_scope(linli_ctx *ctx, const struct al_entry *e, const struct al_case_rule *c,
		       char *out, size_t n)
{
	int depth = 1;
	for (const char *p = e->scope; *p; p++)
		depth += *p == '/';
	out[0] = 0;
	if (depth == 5) {
		snprintf(out, n, "%s", e->scope);
		return;
	}
	if (depth != 4)
		return;
	char code[40] = "";
	linli_record *d = NULL, *g = NULL;
	const char *gid = NULL, *s = NULL;
	if (strncmp(e->source, "device:", 7) == 0 &&
	    api->store_get(ctx, "devices", NULL, e->source + 7, &d, NULL) == 0 &&
	    api->rec_get_str(d, "grid", &gid, NULL) == 0) {
		if (api->store_get(ctx, "grids", e->scope, gid, &g, NULL) == 0 &&
		    api->rec_get_str(g, "code", &s, NULL) == 0)
			snprintf(code, sizeof code, "%s", s);
		else
			snprintf(code, sizeof code, "%s", gid);
	}
	api->rec_free(d);
	api->rec_free(g);
	if (!code[0] || strchr(code, '/'))
		snprintf(code, sizeof code, "%s", c->grid);
	if (code[0])
		snprintf(out, n, "%s/%s", e->scope, code);
}

static struct al_ask *ask_of(struct al_state *st, uint64_t rid)
{
	for (size_t i = 0; i < st->n_asks; i++)
		if (st->asks[i].rid == rid)
			return &st->asks[i];
	return NULL;
}

static int link_fn(linli_ctx *ctx, const char *id, linli_record **rec, void *ud, char *err,
		   size_t errlen)
{
	(void)ctx;
	if (!*rec)
		return al_err(err, errlen, LINLI_ENOENT, "alarm %s is gone", id);
	return api->rec_set_str(*rec, "incident", ud);
}

static void on_case(linli_ctx *ctx, uint64_t rid, int status, const linli_record *rec,
		    const char *err, void *ud)
{
	struct al_state *st = ud;
	struct al_ask *a = ask_of(st, rid);
	if (!a)
		return;
	struct al_ask k = *a;
	*a = st->asks[--st->n_asks];
	struct al_entry *e = al_find(st, k.scope, k.source, k.type);
	if (e && strcmp(e->id, k.id))
		e = NULL; /* another alarm of that key since */
	const char *cid = NULL;
	if (status < 0 || api->rec_get_str(rec, "id", &cid, NULL)) {
		api->log(ctx, LINLI_LOG_WARN, "alarm %s: no case opened: %s", k.id,
			 status < 0 && err && err[0] ? err : "incidentreq/report: no case id");
		if (e)
			e->case_at = api->time_now_ms() + AL_RETRY_MS;
		return;
	}
	if (e)
		e->has_case = true;
	int rc = api->store_update(ctx, "alarms", k.scope, k.id, link_fn, (void *)cid);
	if (rc) {
		api->log(ctx, LINLI_LOG_WARN, "alarm %s: case %s opened, not linked: %s", k.id, cid,
			 api->store_last_error(ctx));
		return;
	}
	bool existing = false;
	api->rec_get_bool(rec, "existing", &existing);
	char why[160];
	snprintf(why, sizeof why, "%s case %s (%s)", existing ? "linked to its open" : "opened",
		 cid, k.category);
	st->cases_opened++;
	al_history(ctx, k.scope, k.id, "plugin:alarms", "incident", NULL, cid, why);
	linli_record *r = NULL;
	if (api->store_get(ctx, "alarms", k.scope, k.id, &r, NULL) == 0) {
		al_publish(ctx, k.scope, k.id, r, "incident", "plugin:alarms");
		api->rec_free(r);
	}
}

/* Ask the grid plugin for the case of alarm e under rule c. */
static void ask(linli_ctx *ctx, struct al_state *st, struct al_entry *e,
		const struct al_case_rule *c, int64_t now)
{
	char scope[LINLI_SCOPE_MAX + 1], title[200];
	e->case_at = now + AL_RETRY_MS; /* until answered, or asked again after a minute */
	case_scope(ctx, e, c, scope, sizeof scope);
	if (!scope[0]) {
		api->log(ctx, LINLI_LOG_WARN,
			 "alarm %s: no case opened: no grid known for %s at %s (set "
			 "plugins.alarms.incident.%s.grid)",
			 e->id, e->source, e->scope, e->type);
		return;
	}
	struct al_ask *asks = realloc(st->asks, (st->n_asks + 1) * sizeof *asks);
	if (!asks)
		return;
	st->asks = asks;
	linli_record *p = api->rec_new(), *a = NULL;
	if (!p)
		return;
	const char *details = NULL;
	if (api->store_get(ctx, "alarms", e->scope, e->id, &a, NULL) == 0)
		api->rec_get_str(a, "details", &details, NULL);
	snprintf(title, sizeof title, "%s alarm from %s", e->type, e->source);
	api->rec_set_str(p, "category", c->category);
	api->rec_set_str(p, "title", title);
	api->rec_set_str(p, "channel", "alarm");
	api->rec_set_str(p, "source_alarm", e->id);
	if (details && *details)
		api->rec_set_str(p, "description", details);
	struct al_ask *k = &st->asks[st->n_asks];
	memset(k, 0, sizeof *k);
	int rc = api->request(ctx, "incidentreq/report", scope, p, 0, on_case, st, &k->rid);
	api->rec_free(p);
	api->rec_free(a);
	if (rc) {
		api->log(ctx, rc == LINLI_ENOENT ? LINLI_LOG_INFO : LINLI_LOG_WARN,
			 "alarm %s: no case opened: incidentreq/report at %s: %s%s", e->id, scope,
			 linli_strerror(rc),
			 rc == LINLI_ENOENT
			     ? " (is the grid plugin loaded? asked again in a minute)"
			     : "");
		return;
	}
	snprintf(k->id, sizeof k->id, "%s", e->id);
	snprintf(k->scope, sizeof k->scope, "%s", e->scope);
	snprintf(k->type, sizeof k->type, "%s", e->type);
	snprintf(k->source, sizeof k->source, "%s", e->source);
	snprintf(k->category, sizeof k->category, "%s", c->category);
	st->n_asks++;
}

void al_cases_due(linli_ctx *ctx, struct al_state *st, int64_t now)
{
	size_t n = 0;
	struct al_entry **due = NULL;
	for (size_t i = 0; st->n_case_rules && i < st->cap; i++)
		for (struct al_entry *e = st->buckets[i]; e; e = e->next) {
			const struct al_case_rule *c = rule_of(st, e->type);
			if (!c || e->has_case || e->case_at > now || e->esc < c->level)
				continue;
			struct al_entry **d = realloc(due, (n + 1) * sizeof *d);
			if (!d)
				break;
			due = d;
			due[n++] = e;
		}
	for (size_t i = 0; i < n; i++)
		ask(ctx, st, due[i], rule_of(st, due[i]->type), now);
	free(due);
}
