/* alarmreq — raising alarms through the alarms plugin (alarmreq.h). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alarmreq.h"

void alarmreq_init(struct alarmreq *a, const struct linli_api *api, const char *const *types, int n)
{
	memset(a, 0, sizeof *a);
	a->api = api;
	a->types = types;
	a->n = n > ALARMREQ_MAX ? ALARMREQ_MAX : n;
	for (int i = 0; i < a->n; i++)
		a->slot[i] = (struct alarmreq_slot){a, i};
}

static void on_answer(linli_ctx *ctx, uint64_t id, int status, const linli_record *rec,
		      const char *err, void *ud)
{
	(void)id;
	(void)rec;
	struct alarmreq_slot *s = ud;
	struct alarmreq *a = s->a;
	if (status < 0) {
		a->failed[s->t]++;
		a->api->log(ctx, LINLI_LOG_WARN, "%s alarm not raised: %s (%s)", a->types[s->t],
			    err && *err ? err : "no reason", linli_strerror(status));
		return;
	}
	a->raised[s->t]++;
}

static void on_cleared(linli_ctx *ctx, uint64_t id, int status, const linli_record *rec,
		       const char *err, void *ud)
{
	(void)id;
	(void)rec;
	struct alarmreq_slot *s = ud;
	if (status >= 0)
		s->a->cleared[s->t]++;
	else if (status != LINLI_ENOENT)
		s->a->api->log(ctx, LINLI_LOG_WARN, "%s alarm not cleared: %s (%s)",
			       s->a->types[s->t], err && *err ? err : "no reason",
			       linli_strerror(status));
}

/* One request about alarm type t: {type, source, KEY: value}, plus severity when raising. */
static int send(struct alarmreq *a, linli_ctx *ctx, int t, const char *topic, const char *scope,
		const char *source, const char *severity, const char *key, const char *value,
		linli_reply_fn fn)
{
	const struct linli_api *api = a->api;
	linli_record *p = api->rec_new();
	if (!p)
		return LINLI_ENOMEM;
	api->rec_set_str(p, "type", a->types[t]);
	api->rec_set_str(p, "source", source);
	if (severity)
		api->rec_set_str(p, "severity", severity);
	api->rec_set_str(p, key, value);
	int rc = api->request(ctx, topic, scope, p, 10000, fn, &a->slot[t], NULL);
	api->rec_free(p);
	return rc;
}

void alarmreq_raise(struct alarmreq *a, linli_ctx *ctx, int t, const char *severity,
		    const char *scope, const char *source, const char *details)
{
	if (t < 0 || t >= a->n)
		return;
	int rc = send(a, ctx, t, "alarmreq/raise", scope, source, severity, "details", details,
		      on_answer);
	if (rc) {
		a->failed[t]++;
		a->api->log(ctx, LINLI_LOG_WARN, "%s alarm of %s at %s not raised: %s", a->types[t],
			    source, scope ? scope : "the node", linli_strerror(rc));
	}
}

void alarmreq_clear(struct alarmreq *a, linli_ctx *ctx, int t, const char *scope,
		    const char *source, const char *why)
{
	if (t < 0 || t >= a->n)
		return;
	int rc = send(a, ctx, t, "alarmreq/clear", scope, source, NULL, "why", why, on_cleared);
	if (rc)
		a->api->log(ctx, LINLI_LOG_WARN, "%s alarm of %s at %s not cleared: %s", a->types[t],
			    source, scope ? scope : "the node", linli_strerror(rc));
}

void alarmreq_put_counts(const struct alarmreq *a, linli_record *r)
{
	const struct linli_api *api = a->api;
	linli_record *m = NULL;
	if (api->rec_set_map(r, "raised", &m) == 0)
		for (int i = 0; i < a->n; i++)
			api->rec_set_int(m, a->types[i], a->raised[i]);
	if (api->rec_set_map(r, "failed", &m) == 0)
		for (int i = 0; i < a->n; i++)
			api->rec_set_int(m, a->types[i], a->failed[i]);
	if (api->rec_set_map(r, "cleared", &m) == 0)
		for (int i = 0; i < a->n; i++)
			api->rec_set_int(m, a->types[i], a->cleared[i]);
}

/* ---- raises about one record each ---- */

static void on_fly_answer(linli_ctx *ctx, uint64_t rid, int status, const linli_record *rec,
			  const char *err, void *ud)
{
	struct alarmreq_flights *fl = ud;
	size_t i = 0;
	while (i < fl->n && fl->v[i].rid != rid)
		i++;
	if (i == fl->n)
		return;
	struct alarmreq_fly f = fl->v[i];
	fl->v[i] = fl->v[--fl->n];
	if (status < 0) { /* not raised: the plugin's next look asks again */
		fl->api->log(ctx, LINLI_LOG_WARN, "%s %s: its alarm is not raised: %s", fl->what,
			     f.id, err && err[0] ? err : linli_strerror(status));
		fl->answered(ctx, &f, status, NULL);
		return;
	}
	const char *alarm = NULL;
	if (rec && fl->api->rec_get_str(rec, "id", &alarm, NULL))
		alarm = NULL;
	fl->answered(ctx, &f, 0, alarm);
}

int alarmreq_fly_raise(struct alarmreq_flights *fl, linli_ctx *ctx, const char *scope,
		       const char *id, int64_t tag0, int64_t tag1, const linli_record *payload)
{
	if (fl->n == fl->cap) {
		size_t cap = fl->cap ? fl->cap * 2 : 16;
		struct alarmreq_fly *v = realloc(fl->v, cap * sizeof *v);
		if (!v)
			return LINLI_ENOMEM;
		fl->v = v, fl->cap = cap;
	}
	struct alarmreq_fly *f = &fl->v[fl->n];
	int rc = fl->api->request(ctx, "alarmreq/raise", scope, payload, 0, on_fly_answer, fl,
				  &f->rid);
	if (rc) {
		if (!fl->told)
			fl->api->log(ctx, LINLI_LOG_WARN,
				     "%s %s: its alarm is not raised: alarmreq/raise: %s (asked "
				     "again at the next look)",
				     fl->what, id, linli_strerror(rc));
		fl->told = true;
		return rc;
	}
	fl->told = false;
	snprintf(f->id, sizeof f->id, "%s", id);
	snprintf(f->scope, sizeof f->scope, "%s", scope ? scope : "");
	f->tag[0] = tag0, f->tag[1] = tag1;
	fl->n++;
	return 0;
}

size_t alarmreq_in_flight(const struct alarmreq_flights *fl, const char *scope, const char *id)
{
	size_t n = 0;
	for (size_t i = 0; i < fl->n; i++)
		n += !strcmp(fl->v[i].id, id) && !strcmp(fl->v[i].scope, scope ? scope : "");
	return n;
}

void alarmreq_flights_free(struct alarmreq_flights *fl)
{
	free(fl->v);
	fl->v = NULL;
	fl->n = fl->cap = 0;
}
