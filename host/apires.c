/* apires — see apires.h. */
#include "apires.h"

#include <stdio.h>
#include <string.h>

#include "linli/error.h"
#include "util.h"

enum arg { ARG_NONE, ARG_NAME, ARG_ROUTE };

/* The kinds, once: the parser, the messages and apires_kind_name read this table. */
static const struct {
	enum apires_kind kind;
	const char *word;
	enum arg arg;
	const char *form; /* as the usage shows it */
} kinds[] = {
    {APIRES_DATASET, "dataset", ARG_NAME, "dataset:NAME"},
    {APIRES_DEVICES, "devices", ARG_NAME, "devices:CLASS"},
    {APIRES_APP, "app", ARG_ROUTE, "app:PLUGIN[/ROUTE]"},
    {APIRES_METRICS, "metrics", ARG_NONE, "metrics"},
    {APIRES_SCREEN, "screen", ARG_NONE, "screen"},
};
#define N_KINDS (sizeof kinds / sizeof kinds[0])

const char *apires_kind_name(enum apires_kind k)
{
	for (size_t i = 0; i < N_KINDS; i++)
		if (kinds[i].kind == k)
			return kinds[i].word;
	return "?";
}

/* [a-z][a-z0-9_]*, at most CAT_NAME_MAX bytes: dataset, class and plugin names. */
static bool name_ok(const char *s, size_t n)
{
	if (n == 0 || n > CAT_NAME_MAX || !(s[0] >= 'a' && s[0] <= 'z'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

/* Segments of [a-z0-9_-] joined by '/', none empty, at most APIRES_ROUTE_MAX bytes. */
static bool route_ok(const char *s, size_t n)
{
	if (n == 0 || n > APIRES_ROUTE_MAX || s[0] == '/' || s[n - 1] == '/')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '/' ? s[i + 1] == '/'
			     : !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
				 c == '-'))
			return false;
	}
	return true;
}

static bool same(const struct apires *a, const struct apires *b)
{
	return a->kind == b->kind && strcmp(a->name, b->name) == 0 &&
	       strcmp(a->route, b->route) == 0;
}

/* One entry [s, s+n) into *out. */
static int parse_one(const char *s, size_t n, struct apires *out, char *err, size_t errlen)
{
	char shown[96];
	utf8_escape(shown, sizeof shown, s, n);
	const char *colon = memchr(s, ':', n);
	size_t wl = colon ? (size_t)(colon - s) : n;
	size_t k = 0;
	while (k < N_KINDS && !(strlen(kinds[k].word) == wl && strncmp(kinds[k].word, s, wl) == 0))
		k++;
	if (k == N_KINDS) {
		char known[160] = "";
		for (size_t i = 0; i < N_KINDS; i++)
			snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s",
				 i ? ", " : "", kinds[i].form);
		return errf(err, errlen, LINLI_EINVAL, "resource '%s': unknown kind (one of %s)",
			    shown, known);
	}
	*out = (struct apires){.kind = kinds[k].kind};
	const char *a = colon ? colon + 1 : NULL;
	size_t an = colon ? n - wl - 1 : 0;
	if (kinds[k].arg == ARG_NONE) {
		if (colon)
			return errf(err, errlen, LINLI_EINVAL, "resource '%s': %s takes no name",
				    shown, kinds[k].word);
		return 0;
	}
	if (!colon || an == 0)
		return errf(err, errlen, LINLI_EINVAL, "resource '%s': write it %s", shown,
			    kinds[k].form);
	const char *slash = kinds[k].arg == ARG_ROUTE ? memchr(a, '/', an) : NULL;
	size_t nl = slash ? (size_t)(slash - a) : an;
	bool all = kinds[k].kind == APIRES_DEVICES && nl == 1 && a[0] == '*';
	if (!all && !name_ok(a, nl))
		return errf(err, errlen, LINLI_EINVAL,
			    "resource '%s': '%.*s' is not a name ([a-z][a-z0-9_]*)%s", shown,
			    (int)(nl < 64 ? nl : 64), a,
			    kinds[k].kind == APIRES_DEVICES ? " or *" : "");
	memcpy(out->name, a, nl);
	out->name[nl] = '\0';
	if (slash) {
		size_t rl = an - nl - 1;
		if (!route_ok(slash + 1, rl))
			return errf(err, errlen, LINLI_EINVAL,
				    "resource '%s': the route is not segments of [a-z0-9_-] "
				    "joined by '/' (at most %d bytes)",
				    shown, APIRES_ROUTE_MAX);
		memcpy(out->route, slash + 1, rl);
		out->route[rl] = '\0';
	}
	return 0;
}

int apires_parse(const char *text, struct apires_set *out, char *err, size_t errlen)
{
	out->n = 0;
	for (const char *p = text; *p;) {
		p += strspn(p, ", ");
		size_t n = strcspn(p, ", ");
		if (n == 0)
			break;
		struct apires r;
		int rc = parse_one(p, n, &r, err, errlen);
		if (rc)
			return rc;
		p += n;
		bool dup = false;
		for (int i = 0; i < out->n && !dup; i++)
			dup = same(&out->v[i], &r);
		if (dup)
			continue;
		if (out->n == APIRES_MAX)
			return errf(err, errlen, LINLI_EINVAL, "more than %d resources on one key",
				    APIRES_MAX);
		out->v[out->n++] = r;
	}
	if (out->n == 0)
		return errf(err, errlen, LINLI_EINVAL, "no resources given");
	return 0;
}

int apires_from_record(const char *resources, const char *datasets, struct apires_set *out,
		       char *err, size_t errlen)
{
	char text[APIRES_TEXT_MAX * 2] = "";
	if (resources)
		snprintf(text, sizeof text, "%s", resources);
	for (const char *p = resources ? "" : datasets ? datasets : ""; *p;) {
		p += strspn(p, ", ");
		size_t n = strcspn(p, ", ");
		if (n == 0)
			break;
		bool reg = n == 7 && strncmp(p, "devices", 7) == 0;
		snprintf(text + strlen(text), sizeof text - strlen(text), "%s%s%.*s",
			 text[0] ? "," : "", reg ? "devices:*" : "dataset:", reg ? 0 : (int)n, p);
		p += n;
	}
	int rc = apires_parse(text, out, err, errlen);
	if (rc)
		out->n = 0;
	return rc;
}

int apires_validate(const struct apires_set *s, const struct catalog *c, char *err, size_t errlen)
{
	for (int i = 0; i < s->n; i++) {
		const struct apires *r = &s->v[i];
		if (r->kind == APIRES_DATASET) {
			const struct cat_dataset *ds = catalog_dataset(c, r->name);
			if (!ds)
				return errf(err, errlen, LINLI_ENOENT,
					    "dataset:%s: no such dataset", r->name);
			if (ds->system || ds->sharing == CAT_NOT_SHARED)
				return errf(err, errlen, LINLI_EPERM,
					    "dataset:%s: not shared (%s): no key may read it",
					    r->name,
					    ds->system ? "system" : cat_sharing_name(ds->sharing));
			if (strcmp(r->name, "devices") == 0)
				return errf(err, errlen, LINLI_EPERM,
					    "dataset:devices: the device registry is read as "
					    "devices:CLASS (or devices:*)");
		} else if (r->kind == APIRES_DEVICES && strcmp(r->name, "*") != 0 &&
			   !catalog_device_class(c, r->name))
			return errf(err, errlen, LINLI_ENOENT, "devices:%s: no such device class",
				    r->name);
	}
	return 0;
}

bool apires_allows(const struct apires_set *s, enum apires_kind kind, const char *name,
		   const char *route)
{
	for (int i = 0; i < s->n; i++) {
		const struct apires *r = &s->v[i];
		if (r->kind != kind)
			continue;
		if (kind == APIRES_METRICS || kind == APIRES_SCREEN || !name)
			return true;
		if (kind == APIRES_DEVICES && strcmp(r->name, "*") == 0)
			return true;
		if (strcmp(r->name, name) != 0)
			continue;
		if (kind != APIRES_APP || !r->route[0])
			return true;
		size_t rl = strlen(r->route);
		if (route && strncmp(route, r->route, rl) == 0 &&
		    (route[rl] == '\0' || route[rl] == '/'))
			return true;
	}
	return false;
}

int apires_format_one(const struct apires *r, char *out, size_t n)
{
	return snprintf(out, n, "%s%s%s%s%s", apires_kind_name(r->kind), r->name[0] ? ":" : "",
			r->name, r->route[0] ? "/" : "", r->route);
}

void apires_format(const struct apires_set *s, char *out, size_t n)
{
	size_t o = 0;
	if (!n)
		return;
	out[0] = '\0';
	for (int i = 0; i < s->n && o + 1 < n; i++) {
		if (i)
			out[o++] = ',', out[o] = '\0';
		int w = o + 1 < n ? apires_format_one(&s->v[i], out + o, n - o) : 0;
		if (w < 0)
			break;
		o += (size_t)w;
	}
}
