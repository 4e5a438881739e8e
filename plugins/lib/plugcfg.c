/* plugcfg — reading a plugin's group of linli.cfg (plugcfg.h). */
#include "plugcfg.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CFG_FILE "linli.cfg" /* what the kernel reads plugins.NAME from */

const char *const plugcfg_sev_names[PLUGCFG_N_SEV] = {"critical", "major", "minor", "warning",
						      "indeterminate"};

int plugcfg_sev(const char *name)
{
	for (int i = 0; name && i < PLUGCFG_N_SEV; i++)
		if (strcmp(name, plugcfg_sev_names[i]) == 0)
			return i;
	return -1;
}

int plugcfg_err(const struct plugcfg *p, const char *key, const char *fmt, ...)
{
	int n = snprintf(p->err, p->errlen, CFG_FILE ": plugins.%s.%s: ", p->plugin, key);
	va_list ap;
	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < p->errlen)
		vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return LINLI_ECONFIG;
}

/* words[0..n) joined by ", " into buf. */
static const char *joined(const char *const *words, size_t n, char *buf, size_t len)
{
	size_t at = 0;
	buf[0] = 0;
	for (size_t i = 0; i < n && at < len; i++) {
		int w = snprintf(buf + at, len - at, "%s%s", i ? ", " : "", words[i]);
		if (w < 0)
			break;
		at += (size_t)w;
	}
	return buf;
}

static bool listed(const char *s, const char *const *words, size_t n)
{
	for (size_t i = 0; s && i < n; i++)
		if (strcmp(s, words[i]) == 0)
			return true;
	return false;
}

int plugcfg_keys(const struct plugcfg *p, linli_record *c, const char *const *keys, size_t n)
{
	for (size_t i = 0; i < p->api->rec_count(c); i++) {
		const char *k = NULL;
		p->api->rec_key(c, i, &k);
		if (!listed(k, keys, n)) {
			char list[512];
			return plugcfg_err(p, k ? k : "?", "unknown key (it takes %s)",
					   joined(keys, n, list, sizeof list));
		}
	}
	return 0;
}

int plugcfg_int(const struct plugcfg *p, linli_record *c, const char *key, int64_t lo, int64_t hi,
		int64_t scale, const char *what, int64_t *out)
{
	int t = p->api->rec_type(c, key);
	if (t == LINLI_T_NONE)
		return 0;
	int64_t v = 0;
	if (t != LINLI_T_INT || p->api->rec_get_int(c, key, &v) || v < lo || v > hi)
		return plugcfg_err(p, key, "must be %s, %lld to %lld", what, (long long)lo,
				   (long long)hi);
	*out = v * scale;
	return 0;
}

int plugcfg_num(const struct plugcfg *p, linli_record *c, const char *key, double lo, double hi,
		const char *unit, double *out)
{
	int t = p->api->rec_type(c, key);
	if (t == LINLI_T_NONE)
		return 0;
	double v = 0;
	if ((t != LINLI_T_FLOAT && t != LINLI_T_INT) || p->api->rec_get_float(c, key, &v) ||
	    !(v >= lo && v <= hi))
		return plugcfg_err(p, key, "must be a number %g to %g (%s)", lo, hi, unit);
	*out = v;
	return 0;
}

int plugcfg_bool(const struct plugcfg *p, linli_record *c, const char *key, bool *out)
{
	if (p->api->rec_has(c, key) && p->api->rec_get_bool(c, key, out))
		return plugcfg_err(p, key, "must be true or false");
	return 0;
}

int plugcfg_sevs(const struct plugcfg *p, linli_record *c, const char *const *types, int n,
		 const char *note, int *sev)
{
	const struct linli_api *api = p->api;
	linli_record *m = NULL;
	if (!api->rec_has(c, "severity"))
		return 0;
	if (api->rec_get_map(c, "severity", &m))
		return plugcfg_err(p, "severity", "must be a group { TYPE = \"SEVERITY\"; }");
	for (size_t i = 0; i < api->rec_count(m); i++) {
		const char *k = NULL, *v = NULL;
		char key[96], list[512];
		api->rec_key(m, i, &k);
		snprintf(key, sizeof key, "severity.%.64s", k ? k : "?");
		int t = -1;
		for (int j = 0; k && j < n; j++)
			if (strcmp(k, types[j]) == 0)
				t = j;
		if (t < 0)
			return plugcfg_err(p, key, "not an alarm type of %s (%s%s%s)", p->plugin,
					   joined(types, (size_t)n, list, sizeof list),
					   note ? "; " : "", note ? note : "");
		api->rec_get_str(m, k, &v, NULL);
		int s = plugcfg_sev(v);
		if (s < 0)
			return plugcfg_err(p, key, "must be one of %s", PLUGCFG_SEV_LIST);
		sev[t] = s;
	}
	return 0;
}

void plugcfg_put_sevs(const struct linli_api *api, linli_record *r, const char *const *types, int n,
		      const int *sev)
{
	linli_record *m = NULL;
	if (api->rec_set_map(r, "severity", &m) == 0)
		for (int i = 0; i < n; i++)
			api->rec_set_str(m, types[i], plugcfg_sev_names[sev[i]]);
}

int plugcfg_fresh(const struct plugcfg *p, linli_ctx *ctx, char **seen, linli_record **c)
{
	const struct linli_api *api = p->api;
	*c = NULL;
	int rc = api->plugin_config(ctx, c);
	if (rc)
		return snprintf(p->err, p->errlen, "cannot read the configuration"), rc;
	size_t len = 0;
	char small[1];
	api->rec_to_json(*c, small, sizeof small, &len);
	char *json = malloc(len + 1);
	if (!json || api->rec_to_json(*c, json, len + 1, NULL)) {
		free(json);
		api->rec_free(*c);
		*c = NULL;
		return snprintf(p->err, p->errlen, "out of memory"), LINLI_ENOMEM;
	}
	if (*seen && strcmp(*seen, json) == 0) {
		free(json);
		api->rec_free(*c);
		*c = NULL;
		return 0;
	}
	free(*seen);
	*seen = json;
	return 1;
}

int plugcfg_load(const struct plugcfg *p, linli_ctx *ctx, char **seen, plugcfg_parse_fn parse,
		 void *ud, bool *changed)
{
	linli_record *c = NULL;
	*changed = false;
	int rc = plugcfg_fresh(p, ctx, seen, &c);
	if (rc <= 0)
		return rc;
	rc = parse(p, c, ud);
	p->api->rec_free(c);
	*changed = rc == 0;
	return rc;
}

bool plugcfg_reload(const struct linli_api *api, linli_ctx *ctx, const char *plugin, char **seen,
		    plugcfg_parse_fn parse, void *ud, int64_t *refused)
{
	char err[512];
	bool changed = false;
	const struct plugcfg p = {api, plugin, err, sizeof err};
	if (plugcfg_load(&p, ctx, seen, parse, ud, &changed)) {
		(*refused)++;
		api->log(ctx, LINLI_LOG_ERROR,
			 "reload refused, keeping the running configuration: %s", err);
		return false;
	}
	if (changed)
		api->log(ctx, LINLI_LOG_INFO,
			 "configuration reloaded from " CFG_FILE " (plugins.%s)", plugin);
	return changed;
}
