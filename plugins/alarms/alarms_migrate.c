/*
 * alarms_migrate — alarms stored under the catalog's earlier definition of
 * `alarms` become alarms of the two-flag state, at the plugin's start.
 *
 * The store keeps a record as it was written: a changed schema only
 * rebuilds the indexes, and an old record is refused only when it is
 * written again. So the plugin reads every alarm of its jurisdiction at
 * init and rewrites, under the same scope and id, each one in the old shape
 * (a `status`, `event`, `raised_at`, `message`, `rule` or `acknowledged_by`
 * field, no `active` flag, or severity `info`): status raised /
 * acknowledged / cleared -> active and acknowledged, info -> indeterminate,
 * event -> type, raised_at -> first_at and last_at, message -> details,
 * device / rule / topic -> source. Who acknowledged it goes to
 * alarm_history, with a "migrated" entry. Nothing is refused and nothing is
 * dropped but the fields the old shape alone had. It never touches an alarm
 * already in the new shape, so a second start migrates nothing.
 */
#include <stdio.h>
#include <string.h>

#include "alarms.h"

static const char *get_s(const linli_record *r, const char *key)
{
	const char *s = NULL;
	return api->rec_get_str(r, key, &s, NULL) == 0 ? s : NULL;
}

static bool old_shape(const linli_record *r)
{
	static const char *const old[] = {"status",  "event", "raised_at",
					  "message", "rule",  "acknowledged_by"};
	for (size_t i = 0; i < sizeof old / sizeof old[0]; i++)
		if (api->rec_has(r, old[i]))
			return true;
	const char *sev = get_s(r, "severity");
	return !api->rec_has(r, "active") || (sev && strcmp(sev, "info") == 0);
}

/* `s` as an alarm type: lower case, [a-z0-9_] only, starting with a letter. */
static void as_type(const char *s, char *out, size_t len)
{
	size_t n = 0;
	for (; s && *s && n + 1 < len && n < AL_TYPE_MAX; s++) {
		char c = *s;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
			c = '_';
		if (n == 0 && !(c >= 'a' && c <= 'z'))
			out[n++] = 'x';
		if (n + 1 < len)
			out[n++] = c;
	}
	out[n] = '\0';
	if (!n)
		snprintf(out, len, "unknown");
}

/* The source of an old alarm: its device, its rule, the device of its topic. */
static void old_source(const linli_record *r, char *out, size_t len)
{
	const char *dev = get_s(r, "device"), *rule = get_s(r, "rule"), *topic = get_s(r, "topic");
	if (dev) {
		snprintf(out, len, "device:%s", dev);
		return;
	}
	if (rule) {
		snprintf(out, len, "rule:%.100s", rule);
		return;
	}
	/* dev/<class>/<id>/... */
	if (topic && strncmp(topic, "dev/", 4) == 0) {
		const char *id = strchr(topic + 4, '/');
		const char *end = id ? strchr(id + 1, '/') : NULL;
		if (id && end && end > id + 1) {
			snprintf(out, len, "device:%.*s", (int)(end - id - 1), id + 1);
			return;
		}
	}
	snprintf(out, len, "plugin:unknown");
}

/* The fields of the new `alarms`: every other field of an old record is dropped. */
static bool new_field(const char *k)
{
	static const char *const fields[] = {
	    "type",	"source",     "severity", "active",	     "acknowledged",
	    "count",	"first_at",   "last_at",  "acknowledged_at", "cleared_at",
	    "assignee", "escalation", "details",  "device",	     "grid",
	    "incident", "topic",      "location"};
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
		if (strcmp(k, fields[i]) == 0)
			return true;
	return false;
}

struct mig {
	int64_t n;
	int rc;
	char err[512];
};

static int migrate_row(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	struct mig *m = ud;
	const linli_record *o = row->record;
	if (!old_shape(o))
		return 0;
	const char *status = get_s(o, "status"), *sev = get_s(o, "severity");
	const char *acked_by = get_s(o, "acknowledged_by");
	bool active = true, acked = false;
	api->rec_get_bool(o, "active", &active);
	api->rec_get_bool(o, "acknowledged", &acked);
	if (status) {
		active = strcmp(status, "cleared") != 0;
		acked = strcmp(status, "acknowledged") == 0 ||
			(!active && api->rec_has(o, "acknowledged_at"));
	}
	char type[AL_TYPE_MAX + 1], source[AL_SOURCE_MAX + 1];
	const char *t = get_s(o, "type");
	as_type(t ? t : get_s(o, "event"), type, sizeof type);
	if (get_s(o, "source"))
		snprintf(source, sizeof source, "%s", get_s(o, "source"));
	else
		old_source(o, source, sizeof source);
	int s = al_sev_parse(sev);
	int64_t first = 0, last = 0, count = 1;
	if (api->rec_get_time(o, "first_at", &first) && api->rec_get_time(o, "raised_at", &first))
		first = api->time_now_ms();
	if (api->rec_get_time(o, "last_at", &last))
		last = first;
	api->rec_get_int(o, "count", &count);

	/* The old record less the fields the new one does not have, then the new ones. */
	linli_record *n = NULL;
	if (api->rec_copy(o, &n))
		return LINLI_ENOMEM;
	for (size_t i = api->rec_count(n); i-- > 0;) {
		const char *k = NULL;
		if (api->rec_key(n, i, &k) == 0 && !new_field(k))
			api->rec_remove(n, k);
	}
	const char *msg = get_s(o, "message");
	if (msg && !api->rec_has(n, "details"))
		api->rec_set_strn(n, "details", msg, strnlen(msg, AL_DETAILS_MAX));
	api->rec_set_str(n, "type", type);
	api->rec_set_str(n, "source", source);
	api->rec_set_str(n, "severity", al_sev_names[s < 0 ? SEV_INDETERMINATE : s]);
	api->rec_set_bool(n, "active", active);
	api->rec_set_bool(n, "acknowledged", acked);
	api->rec_set_int(n, "count", count > 0 ? count : 1);
	api->rec_set_time(n, "first_at", first);
	api->rec_set_time(n, "last_at", last);
	int rc = api->store_put(ctx, "alarms", row->scope, row->id, n, NULL, NULL);
	api->rec_free(n);
	if (rc) {
		m->rc = rc;
		snprintf(m->err, sizeof m->err, "migrating alarm %s at %s: %s", row->id, row->scope,
			 api->store_last_error(ctx));
		return rc;
	}
	char from[64];
	snprintf(from, sizeof from, "%s%s%s", status ? status : "", status && sev ? "," : "",
		 sev ? sev : "");
	al_history(ctx, row->scope, row->id, "plugin:alarms", "migrated", from,
		   al_state_name(active, acked), "stored under the earlier definition of alarms");
	if (acked_by)
		al_history(ctx, row->scope, row->id, acked_by, "acked", "active_unacknowledged",
			   "active_acknowledged", "acknowledged before the migration");
	m->n++;
	return 0;
}

int al_migrate(linli_ctx *ctx, int64_t *n, char *err, size_t errlen)
{
	struct mig m = {0};
	struct linli_query q = {.size = sizeof q, .dataset = "alarms", .limit = 500};
	char cursor[LINLI_CURSOR_MAX] = "";
	do {
		q.cursor = cursor;
		int rc = api->store_scan(ctx, &q, migrate_row, &m, cursor);
		if (rc < 0)
			return al_err(err, errlen, rc, "%s",
				      m.rc ? m.err : api->store_last_error(ctx));
	} while (cursor[0]);
	*n = m.n;
	return 0;
}
