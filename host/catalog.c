/*
 * catalog — see catalog.h.
 *
 * Every group kind (dataset, field, device class, resource, command, event,
 * plugin) has a key table; one checker walks a group against its table so
 * that an unknown key, a wrong type or a missing required key is refused the
 * same way everywhere. Meaning (allowed values, ranges, names) is checked by
 * the loader of each kind; references between files are resolved last, when
 * everything is loaded.
 */
#include "catalog.h"

#include <dirent.h>
#include <errno.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linli/error.h"

/* ---- names of enums ---- */

static const char *const type_names[] = {NULL,	 "string", "integer", "float", "boolean",
					 "time", "enum",   "ref",     "geo"};
static const char *const sens_names[] = {"", "id_number", "phone", "name", "address", "health"};
static const char *const sharing_names[] = {NULL, "shared", "conditional", "not_shared"};
static const char *const source_names[] = {NULL, "city", "community"};
static const char *const severity_names[] = {NULL, "critical", "major", "minor", "info"};
static const char *const families[] = {"governance", "gov_services", "public_services", "safety",
				       "core"};
static const char *const plugin_families[] = {"governance", "gov_services", "public_services",
					      "safety",	    "driver",	    "custom"};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

const char *cat_type_name(enum cat_type t)
{
	return t >= CAT_STRING && t <= CAT_GEO ? type_names[t] : "?";
}
const char *cat_sensitive_name(enum cat_sensitive s)
{
	return s >= CAT_SENS_NONE && s <= CAT_SENS_HEALTH ? sens_names[s] : "?";
}
const char *cat_sharing_name(enum cat_sharing s)
{
	return s >= CAT_SHARED && s <= CAT_NOT_SHARED ? sharing_names[s] : "?";
}
const char *cat_source_name(enum cat_source s)
{
	return s >= CAT_SRC_CITY && s <= CAT_SRC_COMMUNITY ? source_names[s] : "?";
}
const char *cat_severity_name(enum cat_severity s)
{
	return s >= CAT_SEV_CRITICAL && s <= CAT_SEV_INFO ? severity_names[s] : "?";
}

/* Index of `s` in `names[lo..n)`, or -1. */
static int lookup(const char *const *names, size_t lo, size_t n, const char *s)
{
	for (size_t i = lo; i < n; i++)
		if (names[i] && strcmp(names[i], s) == 0)
			return (int)i;
	return -1;
}

static void join(char *buf, size_t len, const char *const *names, size_t lo, size_t n)
{
	size_t off = 0;
	buf[0] = '\0';
	for (size_t i = lo; i < n && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s", i > lo ? ", " : "", names[i]);
}

/* ---- the loader's context and errors ---- */

struct ld {
	const char *file;
	char *err;
	size_t errlen;
	const char *text; /* a built-in file's contents, or NULL: read `file` */
};

__attribute__((format(printf, 4, 5))) static int fail(struct ld *l, int line, const char *what,
						      const char *fmt, ...)
{
	int n = snprintf(l->err, l->errlen, "%s:%d: %s: ", l->file, line, what);
	if (n >= 0 && (size_t)n < l->errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(l->err + n, l->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return LINLI_ECONFIG;
}

static int line_of(const config_setting_t *s)
{
	return (int)config_setting_source_line(s);
}

/* [a-z][a-z0-9_]*, at most CAT_NAME_MAX bytes. */
static bool good_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > CAT_NAME_MAX || !(s[0] >= 'a' && s[0] <= 'z'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

/* A device enum value: [a-z0-9][a-z0-9_]* ("720p", "4k"). */
static bool good_value(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > CAT_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
		      (s[i] == '_' && i > 0)))
			return false;
	return true;
}

/* ---- key tables ---- */

enum kt { K_STR, K_INT, K_NUM, K_BOOL, K_LIST, K_SARR };

struct kspec {
	const char *key;
	enum kt type;
	bool required;
};

static const struct kspec dataset_keys[] = {
    {"name", K_STR, true},    {"title_zh", K_STR, true}, {"title_en", K_STR, true},
    {"owner", K_STR, true},   {"family", K_STR, true},	 {"level", K_STR, true},
    {"sharing", K_STR, true}, {"source", K_STR, true},	 {"restricted", K_BOOL, false},
    {"system", K_BOOL, false}, {"written_by", K_STR, false}, {"fields", K_LIST, true},
    {"up", K_BOOL, false},    {"down", K_BOOL, false},
};
static const struct kspec field_keys[] = {
    {"name", K_STR, true},	 {"type", K_STR, true},	     {"required", K_BOOL, false},
    {"sensitive", K_STR, false}, {"indexed", K_BOOL, false}, {"values", K_SARR, false},
    {"ref", K_STR, false},	 {"min", K_NUM, false},	     {"max", K_NUM, false},
    {"max_len", K_INT, false},
};
static const struct kspec resource_keys[] = {
    {"name", K_STR, true}, {"type", K_STR, true}, {"access", K_STR, true},   {"unit", K_STR, false},
    {"min", K_NUM, false}, {"max", K_NUM, false}, {"values", K_SARR, false},
};
static const struct kspec arg_keys[] = {
    {"name", K_STR, true}, {"type", K_STR, true}, {"unit", K_STR, false},
    {"min", K_NUM, false}, {"max", K_NUM, false}, {"values", K_SARR, false},
};
static const struct kspec class_keys[] = {
    {"name", K_STR, true},	{"title_zh", K_STR, true},    {"title_en", K_STR, true},
    {"heartbeat", K_INT, true}, {"resources", K_LIST, false}, {"commands", K_LIST, false},
    {"events", K_LIST, false},
};
static const struct kspec command_keys[] = {{"name", K_STR, true}, {"args", K_LIST, true}};
static const struct kspec event_keys[] = {{"name", K_STR, true},
					  {"severity", K_STR, true},
					  {"journal", K_BOOL, false},
					  {"sensitive", K_LIST, false}};
static const struct kspec event_field_keys[] = {{"name", K_STR, true}, {"mask", K_STR, true}};
static const struct kspec plugin_keys[] = {
    {"name", K_STR, true},	    {"family", K_STR, true},	  {"version", K_STR, true},
    {"sdk", K_STR, true},	    {"description", K_STR, true}, {"requires", K_SARR, false},
    {"capabilities", K_SARR, true}, {"classes", K_SARR, false},
};

static const char *kt_name(enum kt t)
{
	static const char *const n[] = {"a string",
					"an integer",
					"a number",
					"a boolean",
					"a list ( ... ) of groups",
					"an array [ ... ] of strings"};
	return n[t];
}

static bool kt_ok(enum kt t, const config_setting_t *s)
{
	int ty = config_setting_type(s);
	switch (t) {
	case K_STR:
		return ty == CONFIG_TYPE_STRING;
	case K_INT:
		return ty == CONFIG_TYPE_INT || ty == CONFIG_TYPE_INT64;
	case K_NUM:
		return ty == CONFIG_TYPE_INT || ty == CONFIG_TYPE_INT64 || ty == CONFIG_TYPE_FLOAT;
	case K_BOOL:
		return ty == CONFIG_TYPE_BOOL;
	case K_LIST:
		/* `( )` is a list; an empty `[ ]` parses as an array. */
		if (ty == CONFIG_TYPE_ARRAY)
			return config_setting_length(s) == 0;
		if (ty != CONFIG_TYPE_LIST)
			return false;
		for (int i = 0; i < config_setting_length(s); i++)
			if (config_setting_type(config_setting_get_elem(s, (unsigned)i)) !=
			    CONFIG_TYPE_GROUP)
				return false;
		return true;
	case K_SARR:
		if (ty != CONFIG_TYPE_ARRAY && ty != CONFIG_TYPE_LIST)
			return false;
		for (int i = 0; i < config_setting_length(s); i++)
			if (config_setting_type(config_setting_get_elem(s, (unsigned)i)) !=
			    CONFIG_TYPE_STRING)
				return false;
		return true;
	}
	return false;
}

/* Check group `g` against `spec`: no unknown key, right types, required keys present. */
static int check_keys(struct ld *l, const config_setting_t *g, const char *what,
		      const struct kspec *spec, size_t n)
{
	if (config_setting_type(g) != CONFIG_TYPE_GROUP)
		return fail(l, line_of(g), what, "must be a group { ... }");
	for (int i = 0; i < config_setting_length(g); i++) {
		const config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
		const char *key = config_setting_name(m);
		const struct kspec *k = NULL;
		for (size_t j = 0; j < n && !k; j++)
			if (strcmp(spec[j].key, key) == 0)
				k = &spec[j];
		if (!k)
			return fail(l, line_of(m), what, "unknown key '%s'", key);
		if (!kt_ok(k->type, m))
			return fail(l, line_of(m), what, "%s: must be %s", key, kt_name(k->type));
	}
	for (size_t j = 0; j < n; j++)
		if (spec[j].required && !config_setting_get_member(g, spec[j].key))
			return fail(l, line_of(g), what, "missing required key '%s'", spec[j].key);
	return 0;
}

static const char *get_str(const config_setting_t *g, const char *key)
{
	const config_setting_t *m = config_setting_get_member(g, key);
	return m ? config_setting_get_string(m) : NULL;
}

static bool get_bool(const config_setting_t *g, const char *key)
{
	const config_setting_t *m = config_setting_get_member(g, key);
	return m && config_setting_get_bool(m);
}

/* Name of group `g` for messages: "<kind> 'name'", or "<kind> #i" without a usable name. */
static void ctx_name(char *buf, size_t len, const char *kind, const config_setting_t *g, int i)
{
	const char *n = config_setting_type(g) == CONFIG_TYPE_GROUP ? get_str(g, "name") : NULL;
	if (n && *n)
		snprintf(buf, len, "%s '%.64s'", kind, n);
	else
		snprintf(buf, len, "%s #%d", kind, i + 1);
}

/* ---- fields, resources and arguments ---- */

enum fkind { F_DATASET, F_RESOURCE, F_ARG };

static int load_values(struct ld *l, const config_setting_t *s, const char *what,
		       struct cat_field *f, enum fkind kind)
{
	int n = config_setting_length(s);
	if (n == 0)
		return fail(l, line_of(s), what, "values: must not be empty");
	f->values = calloc((size_t)n, sizeof(char *));
	if (!f->values)
		return LINLI_ENOMEM;
	for (int i = 0; i < n; i++) {
		const char *v = config_setting_get_string(config_setting_get_elem(s, (unsigned)i));
		if (kind == F_DATASET ? !good_name(v) : !good_value(v))
			return fail(l, line_of(s), what,
				    "values: '%s' is not a value name ([a-z][a-z0-9_]*, at most "
				    "64 bytes)",
				    v);
		for (int j = 0; j < f->n_values; j++)
			if (strcmp(f->values[j], v) == 0)
				return fail(l, line_of(s), what, "values: '%s' is listed twice", v);
		if (!(f->values[f->n_values++] = strdup(v)))
			return LINLI_ENOMEM;
	}
	return 0;
}

static int load_bound(struct ld *l, const config_setting_t *g, const char *what, const char *key,
		      struct cat_field *f, bool is_min)
{
	const config_setting_t *m = config_setting_get_member(g, key);
	if (!m)
		return 0;
	if (f->type != CAT_INTEGER && f->type != CAT_FLOAT)
		return fail(l, line_of(m), what, "%s: only integer and float fields take %s", key,
			    key);
	bool lit_float = config_setting_type(m) == CONFIG_TYPE_FLOAT;
	if (f->type == CAT_INTEGER && lit_float)
		return fail(l, line_of(m), what,
			    "%s: an integer field takes an integer literal, not a float", key);
	if (f->type == CAT_FLOAT && !lit_float)
		return fail(l, line_of(m), what,
			    "%s: a float field takes a float literal (write %lld.0)", key,
			    (long long)config_setting_get_int64(m));
	if (is_min) {
		f->has_min = true;
		f->imin = lit_float ? 0 : config_setting_get_int64(m);
		f->fmin = lit_float ? config_setting_get_float(m) : 0;
	} else {
		f->has_max = true;
		f->imax = lit_float ? 0 : config_setting_get_int64(m);
		f->fmax = lit_float ? config_setting_get_float(m) : 0;
	}
	return 0;
}

static int load_field(struct ld *l, const config_setting_t *g, int idx, enum fkind kind,
		      struct cat_field *f)
{
	char what[128];
	const char *kname = kind == F_DATASET ? "field" : kind == F_RESOURCE ? "resource" : "arg";
	ctx_name(what, sizeof what, kname, g, idx);
	int rc = kind == F_DATASET    ? check_keys(l, g, what, field_keys, N_OF(field_keys))
		 : kind == F_RESOURCE ? check_keys(l, g, what, resource_keys, N_OF(resource_keys))
				      : check_keys(l, g, what, arg_keys, N_OF(arg_keys));
	if (rc)
		return rc;
	f->line = line_of(g);
	const char *name = get_str(g, "name");
	if (!good_name(name))
		return fail(l, f->line, what,
			    "name: '%s' is not a name ([a-z][a-z0-9_]*, at most 64 bytes)", name);
	if (kind == F_DATASET && (strcmp(name, "id") == 0 || strcmp(name, "scope") == 0))
		return fail(l, f->line, what,
			    "name: '%s' is reserved (the store keys every record by scope and id)",
			    name);
	if (!(f->name = strdup(name)))
		return LINLI_ENOMEM;

	const char *type = get_str(g, "type");
	int t = lookup(type_names, 1, N_OF(type_names), type);
	bool dev = kind != F_DATASET;
	if (t < 0 || (dev && (t == CAT_TIME || t == CAT_REF || t == CAT_GEO))) {
		char allowed[128];
		if (dev)
			snprintf(allowed, sizeof allowed, "integer, float, boolean, string, enum");
		else
			join(allowed, sizeof allowed, type_names, 1, N_OF(type_names));
		return fail(l, line_of(config_setting_get_member(g, "type")), what,
			    "type: unknown type '%s' (one of %s)", type, allowed);
	}
	f->type = (enum cat_type)t;

	const config_setting_t *m;
	if ((m = config_setting_get_member(g, "values"))) {
		if (f->type != CAT_ENUM)
			return fail(l, line_of(m), what, "values: only enum fields take values");
		if ((rc = load_values(l, m, what, f, kind)))
			return rc;
	} else if (f->type == CAT_ENUM)
		return fail(l, f->line, what, "an enum needs 'values'");
	if ((m = config_setting_get_member(g, "ref"))) {
		if (f->type != CAT_REF)
			return fail(l, line_of(m), what, "ref: only ref fields take 'ref'");
		if (!(f->ref = strdup(config_setting_get_string(m))))
			return LINLI_ENOMEM;
	} else if (f->type == CAT_REF)
		return fail(l, f->line, what, "a ref field needs 'ref' (the dataset it points to)");
	if ((rc = load_bound(l, g, what, "min", f, true)) ||
	    (rc = load_bound(l, g, what, "max", f, false)))
		return rc;
	if (f->has_min && f->has_max &&
	    (f->type == CAT_INTEGER ? f->imin > f->imax : f->fmin > f->fmax))
		return fail(l, f->line, what, "min is greater than max");
	if ((m = config_setting_get_member(g, "max_len"))) {
		if (f->type != CAT_STRING)
			return fail(l, line_of(m), what,
				    "max_len: only string fields take max_len");
		f->max_len = config_setting_get_int64(m);
		if (f->max_len <= 0)
			return fail(l, line_of(m), what, "max_len: must be > 0");
	}
	if ((m = config_setting_get_member(g, "unit")) &&
	    !(f->unit = strdup(config_setting_get_string(m))))
		return LINLI_ENOMEM;
	if (kind == F_DATASET) {
		f->required = get_bool(g, "required");
		f->indexed = get_bool(g, "indexed");
		if (f->indexed && f->type == CAT_GEO)
			return fail(l, f->line, what, "indexed: a geo field cannot be indexed");
		const char *sens = get_str(g, "sensitive");
		if (sens) {
			int s = lookup(sens_names, 1, N_OF(sens_names), sens);
			if (s < 0) {
				char allowed[128];
				join(allowed, sizeof allowed, sens_names, 1, N_OF(sens_names));
				return fail(l, line_of(config_setting_get_member(g, "sensitive")),
					    what, "sensitive: '%s' is not one of %s", sens,
					    allowed);
			}
			f->sensitive = (enum cat_sensitive)s;
		}
	} else if (kind == F_RESOURCE) {
		const char *a = get_str(g, "access");
		f->access = strcmp(a, "r") == 0	   ? CAT_READ
			    : strcmp(a, "w") == 0  ? CAT_WRITE
			    : strcmp(a, "rw") == 0 ? CAT_READ | CAT_WRITE
						   : 0;
		if (!f->access)
			return fail(l, line_of(config_setting_get_member(g, "access")), what,
				    "access: '%s' is not one of r, w, rw", a);
	} else
		f->required = true;
	return 0;
}

/* Load list `key` of group `g` into fields; names must be unique. */
static int load_fields(struct ld *l, const config_setting_t *g, const char *key, enum fkind kind,
		       const char *owner, struct cat_field **out, int *n_out)
{
	const config_setting_t *list = config_setting_get_member(g, key);
	int n = list ? config_setting_length(list) : 0;
	*out = NULL;
	*n_out = 0;
	if (n == 0)
		return 0;
	*out = calloc((size_t)n, sizeof **out);
	if (!*out)
		return LINLI_ENOMEM;
	for (int i = 0; i < n; i++) {
		struct cat_field *f = &(*out)[i];
		(*n_out)++;
		int rc = load_field(l, config_setting_get_elem(list, (unsigned)i), i, kind, f);
		if (rc)
			return rc;
		for (int j = 0; j < i; j++)
			if (strcmp((*out)[j].name, f->name) == 0)
				return fail(l, f->line, owner,
					    "duplicate name '%s' (first at line %d)", f->name,
					    (*out)[j].line);
	}
	return 0;
}

static void free_field(struct cat_field *f)
{
	free(f->name);
	free(f->unit);
	for (int i = 0; i < f->n_values; i++)
		free(f->values[i]);
	free(f->values);
	free(f->ref);
}

static void free_fields(struct cat_field *v, int n)
{
	for (int i = 0; i < n; i++)
		free_field(&v[i]);
	free(v);
}

/* ---- files ---- */

/* Parse `path`; its one top-level setting must be `top`. */
static int read_cfg(struct ld *l, config_t *cf, const char *top, config_setting_t **out)
{
	config_init(cf);
	errno = 0;
	if ((l->text ? config_read_string(cf, l->text) : config_read_file(cf, l->file)) !=
	    CONFIG_TRUE) {
		if (config_error_type(cf) == CONFIG_ERR_FILE_IO)
			snprintf(l->err, l->errlen, "%s: cannot read: %s", l->file,
				 strerror(errno ? errno : EIO));
		else
			snprintf(l->err, l->errlen, "%s:%d: syntax error: %s", l->file,
				 config_error_line(cf), config_error_text(cf));
		return LINLI_ECONFIG;
	}
	config_setting_t *root = config_root_setting(cf);
	for (int i = 0; i < config_setting_length(root); i++) {
		config_setting_t *m = config_setting_get_elem(root, (unsigned)i);
		if (strcmp(config_setting_name(m), top) != 0)
			return fail(l, line_of(m), config_setting_name(m),
				    "unknown key (this file holds one '%s')", top);
	}
	*out = config_setting_get_member(root, top);
	if (!*out)
		return fail(l, 1, top, "missing: the file must define '%s'", top);
	return 0;
}

/* The base name of `file` without ".cfg". */
static void stem(char *buf, size_t len, const char *file)
{
	const char *b = strrchr(file, '/');
	b = b ? b + 1 : file;
	size_t n = strlen(b);
	if (n > 4 && strcmp(b + n - 4, ".cfg") == 0)
		n -= 4;
	snprintf(buf, len, "%.*s", (int)n, b);
}

static int load_dataset(struct ld *l, struct cat_dataset *d)
{
	config_t cf;
	config_setting_t *g;
	int rc = read_cfg(l, &cf, "dataset", &g);
	if (rc)
		goto out;
	if ((rc = check_keys(l, g, "dataset", dataset_keys, N_OF(dataset_keys))))
		goto out;
	d->line = line_of(g);
	const char *name = get_str(g, "name");
	char want[256];
	stem(want, sizeof want, l->file);
	if (!good_name(name)) {
		rc = fail(l, line_of(config_setting_get_member(g, "name")), "dataset",
			  "name: '%s' is not a name ([a-z][a-z0-9_]*, at most 64 bytes)", name);
		goto out;
	}
	if (strcmp(name, want) != 0) {
		rc = fail(l, line_of(config_setting_get_member(g, "name")), "dataset",
			  "name: '%s' must equal the file name '%s'", name, want);
		goto out;
	}
	d->name = strdup(name);
	d->title_zh = strdup(get_str(g, "title_zh"));
	d->title_en = strdup(get_str(g, "title_en"));
	d->owner = strdup(get_str(g, "owner"));
	d->family = strdup(get_str(g, "family"));
	d->file = strdup(l->file);
	if (!d->name || !d->title_zh || !d->title_en || !d->owner || !d->family || !d->file) {
		rc = LINLI_ENOMEM;
		goto out;
	}
	char allowed[256];
	if (!good_name(d->owner)) {
		rc = fail(l, line_of(config_setting_get_member(g, "owner")), "dataset",
			  "owner: '%s' is not an identifier", d->owner);
		goto out;
	}
	if (lookup(families, 0, N_OF(families), d->family) < 0) {
		join(allowed, sizeof allowed, families, 0, N_OF(families));
		rc = fail(l, line_of(config_setting_get_member(g, "family")), "dataset",
			  "family: '%s' is not one of %s", d->family, allowed);
		goto out;
	}
	const char *s = get_str(g, "level");
	d->level = tier_level_parse(s);
	if (d->level == TIER_NONE) {
		rc = fail(l, line_of(config_setting_get_member(g, "level")), "dataset",
			  "level: '%s' is not one of city, district, street, community, grid", s);
		goto out;
	}
	s = get_str(g, "sharing");
	int v = lookup(sharing_names, 1, N_OF(sharing_names), s);
	if (v < 0) {
		join(allowed, sizeof allowed, sharing_names, 1, N_OF(sharing_names));
		rc = fail(l, line_of(config_setting_get_member(g, "sharing")), "dataset",
			  "sharing: '%s' is not one of %s", s, allowed);
		goto out;
	}
	d->sharing = (enum cat_sharing)v;
	s = get_str(g, "source");
	v = lookup(source_names, 1, N_OF(source_names), s);
	if (v < 0) {
		rc = fail(l, line_of(config_setting_get_member(g, "source")), "dataset",
			  "source: '%s' is not one of city, community", s);
		goto out;
	}
	d->source = (enum cat_source)v;
	d->restricted = get_bool(g, "restricted");
	if (d->restricted && d->sharing != CAT_NOT_SHARED) {
		rc = fail(l, line_of(config_setting_get_member(g, "restricted")), "dataset",
			  "restricted: a restricted dataset must be sharing = \"not_shared\"");
		goto out;
	}
	d->up = get_bool(g, "up");
	if (d->up && d->sharing == CAT_NOT_SHARED) {
		rc = fail(l, line_of(config_setting_get_member(g, "up")), "dataset",
			  "up: a dataset whose changes go up to the parent tier cannot be "
			  "sharing = \"not_shared\"");
		goto out;
	}
	d->down = get_bool(g, "down");
	if (d->down && d->up) {
		rc = fail(l, line_of(config_setting_get_member(g, "down")), "dataset",
			  "down: a dataset goes one way between the tiers: up (its changes to the "
			  "parent) or down (its records to the children), not both");
		goto out;
	}
	d->system = get_bool(g, "system");
	if (d->system && d->sharing != CAT_NOT_SHARED) {
		rc = fail(l, line_of(config_setting_get_member(g, "system")), "dataset",
			  "system: a system dataset must be sharing = \"not_shared\"");
		goto out;
	}
	const char *wb = get_str(g, "written_by");
	if (wb) {
		if (!good_name(wb)) {
			rc = fail(l, line_of(config_setting_get_member(g, "written_by")), "dataset",
				  "written_by: '%s' is not a command word ([a-z][a-z0-9_]*)", wb);
			goto out;
		}
		if (!(d->written_by = strdup(wb))) {
			rc = LINLI_ENOMEM;
			goto out;
		}
	}
	const config_setting_t *fl = config_setting_get_member(g, "fields");
	int nf = config_setting_length(fl);
	if (nf < 1 || nf > CAT_MAX_FIELDS) {
		rc = fail(l, line_of(fl), "dataset", "fields: needs 1 to %d fields, has %d",
			  CAT_MAX_FIELDS, nf);
		goto out;
	}
	rc = load_fields(l, g, "fields", F_DATASET, "dataset", &d->fields, &d->n_fields);
out:
	config_destroy(&cf);
	return rc;
}

static void free_dataset(struct cat_dataset *d)
{
	free(d->name);
	free(d->title_zh);
	free(d->title_en);
	free(d->owner);
	free(d->family);
	free(d->written_by);
	free(d->file);
	free_fields(d->fields, d->n_fields);
}

static int load_commands(struct ld *l, const config_setting_t *g, struct cat_device_class *c)
{
	const config_setting_t *list = config_setting_get_member(g, "commands");
	int n = list ? config_setting_length(list) : 0;
	if (n == 0)
		return 0;
	if (!(c->commands = calloc((size_t)n, sizeof *c->commands)))
		return LINLI_ENOMEM;
	for (int i = 0; i < n; i++) {
		const config_setting_t *cg = config_setting_get_elem(list, (unsigned)i);
		struct cat_command *cmd = &c->commands[i];
		c->n_commands++;
		char what[128];
		ctx_name(what, sizeof what, "command", cg, i);
		int rc = check_keys(l, cg, what, command_keys, N_OF(command_keys));
		if (rc)
			return rc;
		cmd->line = line_of(cg);
		const char *name = get_str(cg, "name");
		if (!good_name(name))
			return fail(l, cmd->line, what, "name: '%s' is not a name", name);
		if (!(cmd->name = strdup(name)))
			return LINLI_ENOMEM;
		for (int j = 0; j < i; j++)
			if (strcmp(c->commands[j].name, name) == 0)
				return fail(l, cmd->line, "device_class",
					    "duplicate command '%s' (first at line %d)", name,
					    c->commands[j].line);
		if ((rc = load_fields(l, cg, "args", F_ARG, what, &cmd->args, &cmd->n_args)))
			return rc;
	}
	return 0;
}

/* An event's `sensitive` list: the fields of its details masked for readers without the grant. */
static int load_event_sensitive(struct ld *l, struct cat_event *e, config_setting_t *list,
				const char *what)
{
	int n = list ? config_setting_length(list) : 0;
	if (n == 0)
		return 0;
	if (!(e->sensitive = calloc((size_t)n, sizeof *e->sensitive)))
		return LINLI_ENOMEM;
	for (int i = 0; i < n; i++) {
		config_setting_t *g = config_setting_get_elem(list, (unsigned)i);
		char fw[192];
		snprintf(fw, sizeof fw, "%s: sensitive[%d]", what, i);
		int rc = check_keys(l, g, fw, event_field_keys, N_OF(event_field_keys));
		if (rc)
			return rc;
		const char *name = get_str(g, "name"), *mask = get_str(g, "mask");
		if (!good_name(name))
			return fail(l, line_of(g), fw, "name: '%s' is not a name", name);
		for (int j = 0; j < e->n_sensitive; j++)
			if (strcmp(e->sensitive[j].name, name) == 0)
				return fail(l, line_of(g), fw, "field '%s' is listed twice", name);
		int s = lookup(sens_names, 1, N_OF(sens_names), mask);
		if (s < 0) {
			char allowed[128];
			join(allowed, sizeof allowed, sens_names, 1, N_OF(sens_names));
			return fail(l, line_of(config_setting_get_member(g, "mask")), fw,
				    "mask: '%s' is not one of %s", mask, allowed);
		}
		if (!(e->sensitive[i].name = strdup(name)))
			return LINLI_ENOMEM;
		e->sensitive[i].sensitive = (enum cat_sensitive)s;
		e->n_sensitive++;
	}
	return 0;
}

static int load_events(struct ld *l, const config_setting_t *g, struct cat_device_class *c)
{
	const config_setting_t *list = config_setting_get_member(g, "events");
	int n = list ? config_setting_length(list) : 0;
	if (n == 0)
		return 0;
	if (!(c->events = calloc((size_t)n, sizeof *c->events)))
		return LINLI_ENOMEM;
	for (int i = 0; i < n; i++) {
		const config_setting_t *eg = config_setting_get_elem(list, (unsigned)i);
		struct cat_event *e = &c->events[i];
		c->n_events++;
		char what[128];
		ctx_name(what, sizeof what, "event", eg, i);
		int rc = check_keys(l, eg, what, event_keys, N_OF(event_keys));
		if (rc)
			return rc;
		e->line = line_of(eg);
		const char *name = get_str(eg, "name");
		if (!good_name(name))
			return fail(l, e->line, what, "name: '%s' is not a name", name);
		if (!(e->name = strdup(name)))
			return LINLI_ENOMEM;
		for (int j = 0; j < i; j++)
			if (strcmp(c->events[j].name, name) == 0)
				return fail(l, e->line, "device_class",
					    "duplicate event '%s' (first at line %d)", name,
					    c->events[j].line);
		const char *sev = get_str(eg, "severity");
		int v = lookup(severity_names, 1, N_OF(severity_names), sev);
		if (v < 0)
			return fail(l, line_of(config_setting_get_member(eg, "severity")), what,
				    "severity: '%s' is not one of critical, major, minor, info",
				    sev);
		e->severity = (enum cat_severity)v;
		e->unjournaled =
		    config_setting_get_member(eg, "journal") && !get_bool(eg, "journal");
		if ((rc = load_event_sensitive(l, e, config_setting_get_member(eg, "sensitive"),
					       what)))
			return rc;
	}
	return 0;
}

static int load_class(struct ld *l, struct cat_device_class *c)
{
	config_t cf;
	config_setting_t *g;
	int rc = read_cfg(l, &cf, "device_class", &g);
	if (rc)
		goto out;
	if ((rc = check_keys(l, g, "device_class", class_keys, N_OF(class_keys))))
		goto out;
	const char *name = get_str(g, "name");
	char want[256];
	stem(want, sizeof want, l->file);
	if (!good_name(name) || strcmp(name, want) != 0) {
		rc = fail(l, line_of(config_setting_get_member(g, "name")), "device_class",
			  "name: '%s' must be a name equal to the file name '%s'", name, want);
		goto out;
	}
	c->name = strdup(name);
	c->title_zh = strdup(get_str(g, "title_zh"));
	c->title_en = strdup(get_str(g, "title_en"));
	c->file = strdup(l->file);
	if (!c->name || !c->title_zh || !c->title_en || !c->file) {
		rc = LINLI_ENOMEM;
		goto out;
	}
	const config_setting_t *hb = config_setting_get_member(g, "heartbeat");
	c->heartbeat = config_setting_get_int64(hb);
	if (c->heartbeat <= 0) {
		rc = fail(l, line_of(hb), "device_class", "heartbeat: must be > 0 seconds");
		goto out;
	}
	if ((rc = load_fields(l, g, "resources", F_RESOURCE, "device_class", &c->resources,
			      &c->n_resources)) ||
	    (rc = load_commands(l, g, c)) || (rc = load_events(l, g, c)))
		goto out;
out:
	config_destroy(&cf);
	return rc;
}

static void free_class(struct cat_device_class *c)
{
	free(c->name);
	free(c->title_zh);
	free(c->title_en);
	free(c->file);
	free_fields(c->resources, c->n_resources);
	for (int i = 0; i < c->n_commands; i++) {
		free(c->commands[i].name);
		free_fields(c->commands[i].args, c->commands[i].n_args);
	}
	free(c->commands);
	for (int i = 0; i < c->n_events; i++) {
		free(c->events[i].name);
		for (int j = 0; j < c->events[i].n_sensitive; j++)
			free(c->events[i].sensitive[j].name);
		free(c->events[i].sensitive);
	}
	free(c->events);
}

static bool good_version(const char *s, int parts)
{
	for (int p = 0; p < parts; p++) {
		if (!(*s >= '0' && *s <= '9'))
			return false;
		while (*s >= '0' && *s <= '9')
			s++;
		if (p + 1 < parts && *s++ != '.')
			return false;
	}
	return *s == '\0';
}

static char **dup_strings(const config_setting_t *a, int *n)
{
	*n = a ? config_setting_length(a) : 0;
	char **v = calloc((size_t)*n + 1, sizeof(char *));
	for (int i = 0; v && i < *n; i++)
		v[i] = strdup(config_setting_get_string(config_setting_get_elem(a, (unsigned)i)));
	return v;
}

static void free_strings(char **v, int n)
{
	for (int i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

static int load_plugins(struct ld *l, struct catalog *c)
{
	config_t cf;
	config_setting_t *list;
	int rc = read_cfg(l, &cf, "plugins", &list);
	if (rc)
		goto out;
	if (!kt_ok(K_LIST, list)) {
		rc = fail(l, line_of(list), "plugins", "must be a list ( ... ) of groups");
		goto out;
	}
	int n = config_setting_length(list);
	if (n && !(c->plugins = calloc((size_t)n, sizeof *c->plugins))) {
		rc = LINLI_ENOMEM;
		goto out;
	}
	for (int i = 0; i < n; i++) {
		const config_setting_t *g = config_setting_get_elem(list, (unsigned)i);
		struct cat_plugin *p = &c->plugins[i];
		c->n_plugins++;
		char what[128];
		ctx_name(what, sizeof what, "plugin", g, i);
		if ((rc = check_keys(l, g, what, plugin_keys, N_OF(plugin_keys))))
			goto out;
		p->line = line_of(g);
		const char *name = get_str(g, "name");
		if (!good_name(name)) {
			rc = fail(l, p->line, what, "name: '%s' is not a name", name);
			goto out;
		}
		for (int j = 0; j < i; j++)
			if (strcmp(c->plugins[j].name, name) == 0) {
				rc = fail(l, p->line, "plugins",
					  "duplicate plugin '%s' (first at line %d)", name,
					  c->plugins[j].line);
				goto out;
			}
		p->name = strdup(name);
		p->family = strdup(get_str(g, "family"));
		p->version = strdup(get_str(g, "version"));
		p->sdk = strdup(get_str(g, "sdk"));
		p->description = strdup(get_str(g, "description"));
		p->requires = dup_strings(config_setting_get_member(g, "requires"), &p->n_requires);
		p->capabilities =
		    dup_strings(config_setting_get_member(g, "capabilities"), &p->n_capabilities);
		p->classes = dup_strings(config_setting_get_member(g, "classes"), &p->n_classes);
		if (!p->name || !p->family || !p->version || !p->sdk || !p->description ||
		    !p->requires || !p->capabilities || !p->classes) {
			rc = LINLI_ENOMEM;
			goto out;
		}
		if (lookup(plugin_families, 0, N_OF(plugin_families), p->family) < 0) {
			char allowed[256];
			join(allowed, sizeof allowed, plugin_families, 0, N_OF(plugin_families));
			rc = fail(l, line_of(config_setting_get_member(g, "family")), what,
				  "family: '%s' is not one of %s", p->family, allowed);
			goto out;
		}
		if (!good_version(p->version, 3)) {
			rc = fail(l, line_of(config_setting_get_member(g, "version")), what,
				  "version: '%s' is not MAJOR.MINOR.PATCH", p->version);
			goto out;
		}
		if (!good_version(p->sdk, 2)) {
			rc = fail(l, line_of(config_setting_get_member(g, "sdk")), what,
				  "sdk: '%s' is not MAJOR.MINOR", p->sdk);
			goto out;
		}
	}
out:
	config_destroy(&cf);
	return rc;
}

static void free_plugin(struct cat_plugin *p)
{
	free(p->name);
	free(p->family);
	free(p->version);
	free(p->sdk);
	free(p->description);
	free_strings(p->requires, p->n_requires);
	free_strings(p->capabilities, p->n_capabilities);
	free_strings(p->classes, p->n_classes);
}

/* ---- cross-checks ---- */

/* A bus topic filter: levels of [a-z0-9_-], '+' a whole level, '#' only last. */
static bool good_filter(const char *f)
{
	if (!*f)
		return false;
	for (const char *p = f;;) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n == 0)
			return false;
		if (n == 1 && (*p == '+' || *p == '#')) {
			if (*p == '#' && e)
				return false;
		} else
			for (size_t i = 0; i < n; i++)
				if (!((p[i] >= 'a' && p[i] <= 'z') ||
				      (p[i] >= '0' && p[i] <= '9') || p[i] == '_' || p[i] == '-'))
					return false;
		if (!e)
			return true;
		p = e + 1;
	}
}

static int check_capability(struct ld *l, const struct catalog *c, const struct cat_plugin *p,
			    const char *cap)
{
	char what[128];
	snprintf(what, sizeof what, "plugin '%s'", p->name);
	const char *colon = strchr(cap, ':');
	size_t kn = colon ? (size_t)(colon - cap) : strlen(cap);
	const char *arg = colon ? colon + 1 : NULL;
#define IS(k) (kn == strlen(k) && strncmp(cap, k, kn) == 0)
	if (IS("net.connect") || IS("catalog.read")) {
		if (arg)
			return fail(l, p->line, what, "capability '%s': takes no argument", cap);
		return 0;
	}
	if (IS("sensitive") && !arg) /* every dataset's sensitive fields in clear */
		return 0;
	if (!arg || !*arg)
		return fail(l, p->line, what, "capability '%s': needs ':<argument>'", cap);
	if (IS("store.read") || IS("store.write") || IS("sensitive")) {
		if (!catalog_dataset(c, arg))
			return fail(l, p->line, what,
				    "capability '%s': no dataset '%s' in the catalog", cap, arg);
	} else if (IS("device.read") || IS("device.command")) {
		if (!catalog_device_class(c, arg))
			return fail(l, p->line, what,
				    "capability '%s': no device class '%s' in the catalog", cap,
				    arg);
	} else if (IS("bus.publish") || IS("bus.subscribe")) {
		if (!good_filter(arg))
			return fail(l, p->line, what, "capability '%s': '%s' is not a topic filter",
				    cap, arg);
	} else if (IS("hal.driver")) {
		if (!good_name(arg))
			return fail(l, p->line, what, "capability '%s': '%s' is not a driver name",
				    cap, arg);
	} else
		return fail(l, p->line, what,
			    "capability '%s': unknown kind (store.read, store.write, "
			    "sensitive, bus.publish, bus.subscribe, device.read, device.command, "
			    "hal.driver, net.connect, catalog.read)",
			    cap);
#undef IS
	return 0;
}

/*
 * Plugin p's `classes`: each a device class of the catalog, named once, and
 * not claimed by an earlier plugin — a device event becomes an alarm in one
 * plugin only. Sets each class's `plugin`.
 */
static int check_classes(struct ld *l, struct catalog *c, const struct cat_plugin *p)
{
	char what[128];
	snprintf(what, sizeof what, "plugin '%s'", p->name);
	for (int k = 0; k < p->n_classes; k++) {
		struct cat_device_class *dc = NULL;
		for (int i = 0; i < c->n_classes && !dc; i++)
			if (strcmp(c->classes[i].name, p->classes[k]) == 0)
				dc = &c->classes[i];
		if (!dc)
			return fail(l, p->line, what,
				    "classes: no device class '%s' in the catalog", p->classes[k]);
		if (dc->plugin && strcmp(dc->plugin, p->name) == 0)
			return fail(l, p->line, what, "classes: '%s' is listed twice",
				    p->classes[k]);
		if (dc->plugin) {
			const struct cat_plugin *o = catalog_plugin(c, dc->plugin);
			return fail(
			    l, p->line, what,
			    "classes: device class '%s' is claimed by plugin '%s' (line %d) "
			    "and plugin '%s'; one plugin turns a class's events into alarms",
			    p->classes[k], dc->plugin, o ? o->line : 0, p->name);
		}
		dc->plugin = p->name;
	}
	return 0;
}

/* Depth-first search for a `requires` cycle through plugin i. */
static int requires_cycle(const struct catalog *c, int i, char *state)
{
	if (state[i] == 1)
		return i;
	if (state[i] == 2)
		return -1;
	state[i] = 1;
	const struct cat_plugin *p = &c->plugins[i];
	for (int r = 0; r < p->n_requires; r++) {
		for (int j = 0; j < c->n_plugins; j++)
			if (strcmp(c->plugins[j].name, p->requires[r]) == 0) {
				int at = requires_cycle(c, j, state);
				if (at >= 0)
					return at;
			}
	}
	state[i] = 2;
	return -1;
}

static int cross_check(struct catalog *c, char *err, size_t errlen)
{
	for (int i = 0; i < c->n_datasets; i++) {
		struct cat_dataset *d = &c->datasets[i];
		struct ld l = {d->file, err, errlen, NULL};
		for (int f = 0; f < d->n_fields; f++) {
			struct cat_field *fd = &d->fields[f];
			if (fd->type != CAT_REF)
				continue;
			fd->ref_ds = catalog_dataset(c, fd->ref);
			if (!fd->ref_ds) {
				char what[128];
				snprintf(what, sizeof what, "field '%s'", fd->name);
				return fail(&l, fd->line, what,
					    "ref: no dataset '%s' in the catalog", fd->ref);
			}
		}
	}
	struct ld l = {c->plugins_file, err, errlen, NULL};
	for (int i = 0; i < c->n_plugins; i++) {
		const struct cat_plugin *p = &c->plugins[i];
		char what[128];
		snprintf(what, sizeof what, "plugin '%s'", p->name);
		for (int r = 0; r < p->n_requires; r++) {
			if (strcmp(p->requires[r], p -> name) == 0)
				return fail(&l, p->line, what,
					    "requires: a plugin cannot require itself");
			if (!catalog_plugin(c, p->requires[r]))
				return fail(&l, p->line, what,
					    "requires: no plugin '%s' in the index",
					    p->requires[r]);
		}
		for (int k = 0; k < p->n_capabilities; k++) {
			int rc = check_capability(&l, c, p, p->capabilities[k]);
			if (rc)
				return rc;
		}
		int rc = check_classes(&l, c, p);
		if (rc)
			return rc;
	}
	char *state = calloc((size_t)c->n_plugins + 1, 1);
	if (!state)
		return LINLI_ENOMEM;
	for (int i = 0; i < c->n_plugins; i++) {
		int at = requires_cycle(c, i, state);
		if (at >= 0) {
			free(state);
			char what[128];
			snprintf(what, sizeof what, "plugin '%s'", c->plugins[at].name);
			return fail(&l, c->plugins[at].line, what,
				    "requires: a cycle of required plugins runs through it");
		}
	}
	free(state);
	return 0;
}

/* ---- directory walking ---- */

static int cfg_filter(const struct dirent *e)
{
	size_t n = strlen(e->d_name);
	return e->d_name[0] != '.' && n > 4 && strcmp(e->d_name + n - 4, ".cfg") == 0;
}

/* List dir's *.cfg in name order. Absent dir: 0 files. */
static int list_cfg(const char *dir, struct dirent ***out, int *n, char *err, size_t errlen)
{
	*out = NULL;
	*n = scandir(dir, out, cfg_filter, alphasort);
	if (*n < 0) {
		*n = 0;
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s: cannot read the directory: %s", dir, strerror(errno));
		return LINLI_EIO;
	}
	return 0;
}

static void free_list(struct dirent **v, int n)
{
	for (int i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static int load_dir(struct catalog *c, const char *sub, bool datasets, char *err, size_t errlen)
{
	char dir[4096];
	snprintf(dir, sizeof dir, "%s/%s", c->dir, sub);
	struct dirent **ents;
	int n, rc = list_cfg(dir, &ents, &n, err, errlen);
	if (rc)
		return rc;
	if (n == 0) {
		free_list(ents, n);
		return 0;
	}
	if (datasets) {
		struct cat_dataset *v =
		    realloc(c->datasets, (size_t)(c->n_datasets + n) * sizeof *c->datasets);
		if (v) {
			memset(v + c->n_datasets, 0, (size_t)n * sizeof *v);
			c->datasets = v;
		}
		if (!v)
			rc = LINLI_ENOMEM;
	} else {
		c->classes = calloc((size_t)n, sizeof *c->classes);
		if (!c->classes)
			rc = LINLI_ENOMEM;
	}
	int base = c->n_datasets;
	for (int i = 0; !rc && i < n; i++) {
		char path[4352];
		snprintf(path, sizeof path, "%s/%s", dir, ents[i]->d_name);
		struct ld l = {path, err, errlen, NULL};
		if (datasets) {
			c->n_datasets++;
			rc = load_dataset(&l, &c->datasets[base + i]);
			if (!rc && strstr(c->datasets[base + i].name, CAT_NS_SEP))
				rc = fail(&l, c->datasets[base + i].line, "dataset",
					  "name: '%s' holds '" CAT_NS_SEP
					  "', which separates a bundle's name from its datasets' "
					  "(hello" CAT_NS_SEP "visits); choose another name",
					  c->datasets[base + i].name);
			for (int j = 0; !rc && j < base; j++)
				if (strcmp(c->datasets[j].name, c->datasets[base + i].name) == 0) {
					snprintf(err, errlen,
						 "%s: dataset '%s' is built into linlid (a system "
						 "dataset); choose another name",
						 path, c->datasets[j].name);
					rc = LINLI_ECONFIG;
				}
		} else {
			c->n_classes++;
			rc = load_class(&l, &c->classes[i]);
		}
	}
	free_list(ents, n);
	return rc;
}

int catalog_load(const char *dir, struct catalog **out, char *err, size_t errlen)
{
	*out = NULL;
	struct catalog *c = calloc(1, sizeof *c);
	if (!c)
		return LINLI_ENOMEM;
	c->version = 1;
	atomic_init(&c->refs, 1);
	int rc = 0;
	int ncore = 0;
	while (cat_core_files[ncore].name)
		ncore++;
	c->datasets = calloc((size_t)ncore, sizeof *c->datasets);
	if (!c->datasets)
		rc = LINLI_ENOMEM;
	for (int i = 0; !rc && i < ncore; i++) {
		struct ld l = {cat_core_files[i].name, err, errlen, cat_core_files[i].text};
		c->n_datasets++;
		rc = load_dataset(&l, &c->datasets[i]);
	}
	if (!rc && dir) {
		DIR *d = opendir(dir);
		if (!d) {
			snprintf(err, errlen, "catalog_dir %s: cannot read: %s", dir,
				 strerror(errno));
			catalog_free(c);
			return LINLI_EIO;
		}
		closedir(d);
		char pf[4096];
		snprintf(pf, sizeof pf, "%s/plugins.cfg", dir);
		c->dir = strdup(dir);
		c->plugins_file = strdup(pf);
		if (!c->dir || !c->plugins_file)
			rc = LINLI_ENOMEM;
		if (!rc)
			rc = load_dir(c, "datasets", true, err, errlen);
		if (!rc)
			rc = load_dir(c, "devices", false, err, errlen);
		if (!rc) {
			FILE *f = fopen(pf, "r");
			if (f) {
				fclose(f);
				struct ld l = {pf, err, errlen, NULL};
				rc = load_plugins(&l, c);
			} else if (errno != ENOENT) {
				snprintf(err, errlen, "%s: cannot read: %s", pf, strerror(errno));
				rc = LINLI_EIO;
			}
		}
		if (!rc)
			rc = cross_check(c, err, errlen);
	}
	if (rc == LINLI_ENOMEM)
		snprintf(err, errlen, "catalog: out of memory");
	if (rc) {
		catalog_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

static void destroy(struct catalog *c)
{
	if (c->base) { /* a made version: only its own datasets and classes are its own */
		for (int i = c->base->n_datasets; i < c->n_datasets; i++)
			free_dataset(&c->datasets[i]);
		free(c->datasets);
		if (c->classes != c->base->classes) {
			for (int i = c->base->n_classes; i < c->n_classes; i++)
				free_class(&c->classes[i]);
			free(c->classes);
		}
		catalog_unref(c->base);
		free(c);
		return;
	}
	for (int i = 0; i < c->n_datasets; i++)
		free_dataset(&c->datasets[i]);
	free(c->datasets);
	for (int i = 0; i < c->n_classes; i++)
		free_class(&c->classes[i]);
	free(c->classes);
	for (int i = 0; i < c->n_plugins; i++)
		free_plugin(&c->plugins[i]);
	free(c->plugins);
	free(c->plugins_file);
	free(c->dir);
	free(c);
}

void catalog_free(struct catalog *c)
{
	catalog_unref(c);
}

const struct catalog *catalog_ref(const struct catalog *c)
{
	/* The count is the one mutable part of a loaded catalog (allocated, never a const object). */
	if (c)
		atomic_fetch_add_explicit(&((struct catalog *)c)->refs, 1, memory_order_relaxed);
	return c;
}

void catalog_unref(const struct catalog *c)
{
	if (c && atomic_fetch_sub_explicit(&((struct catalog *)c)->refs, 1,
					   memory_order_acq_rel) == 1)
		destroy((struct catalog *)c);
}

/* ---- versions with a bundle's datasets ---- */

static bool good_ns(const char *ns)
{
	if (!ns)
		return false;
	size_t n = strlen(ns);
	return good_name(ns) && !strstr(ns, CAT_NS_SEP) && ns[n - 1] != '_';
}

/* A fragment dataset's ref: the bundle's own dataset first, then base's. */
static int frag_refs(struct ld *l, struct catalog *c, const struct catalog *base, const char *ns,
		     struct cat_dataset *d)
{
	for (int j = 0; j < d->n_fields; j++) {
		struct cat_field *f = &d->fields[j];
		if (!f->ref)
			continue;
		char full[CAT_NAME_MAX * 2 + 4];
		snprintf(full, sizeof full, "%s" CAT_NS_SEP "%s", ns, f->ref);
		const struct cat_dataset *to = NULL;
		for (int i = base->n_datasets; !to && i < c->n_datasets; i++)
			if (!strcmp(c->datasets[i].name, full))
				to = &c->datasets[i];
		if (to) {
			char *s = strdup(full);
			if (!s)
				return LINLI_ENOMEM;
			free(f->ref);
			f->ref = s;
		} else if ((to = catalog_dataset(c, f->ref)) && to->system)
			return fail(l, f->line, "dataset",
				    "field '%s': ref: '%s' is a system dataset", f->name, f->ref);
		if (!to)
			return fail(l, f->line, "dataset",
				    "field '%s': ref: no dataset '%s' in the bundle or the catalog",
				    f->name, f->ref);
		f->ref_ds = to;
	}
	return 0;
}

/* A device-class fragment: loaded as devices/CLASS.cfg, then named NS CAT_NS_SEP NAME. */
static int frag_class(struct catalog *c, const struct catalog *base, const struct cat_fragment *fr,
		      char *err, size_t errlen)
{
	char *text = strndup(fr->text, fr->len);
	if (!text)
		return LINLI_ENOMEM;
	struct ld l = {fr->label, err, errlen, text};
	struct cat_device_class *dc = &c->classes[c->n_classes++];
	int rc = load_class(&l, dc);
	free(text);
	if (rc)
		return rc;
	char full[CAT_NAME_MAX * 2 + 4];
	int fn = snprintf(full, sizeof full, "%s" CAT_NS_SEP "%s", fr->ns, dc->name);
	if (strstr(dc->name, CAT_NS_SEP))
		return fail(&l, 1, "device_class",
			    "name: '%s' holds '" CAT_NS_SEP "': a bundle names its device classes "
			    "in its own namespace only (%s" CAT_NS_SEP "NAME)",
			    dc->name, fr->ns);
	if (catalog_device_class(base, dc->name))
		return fail(&l, 1, "device_class",
			    "name: '%s' is a device class of the catalog (the kernel's): a bundle "
			    "brings classes of its own, choose another name",
			    dc->name);
	if (fn > CAT_NAME_MAX)
		return fail(&l, 1, "device_class", "name: '%s' is longer than %d bytes", full,
			    CAT_NAME_MAX);
	for (int j = base->n_classes; j < c->n_classes - 1; j++)
		if (!strcmp(c->classes[j].name, full))
			return fail(&l, 1, "device_class",
				    "name: '%s' is brought twice by bundle '%s'", dc->name, fr->ns);
	char *s = strdup(full);
	if (!s)
		return LINLI_ENOMEM;
	free(dc->name);
	dc->name = s;
	return 0;
}

int catalog_with_datasets(const struct catalog *base, const struct cat_fragment *frags, int n,
			  uint64_t version, struct catalog **out, char *err, size_t errlen)
{
	*out = NULL;
	for (int i = 0; i < n; i++)
		if (!good_ns(frags[i].ns)) {
			snprintf(err, errlen,
				 "%s: '%s' cannot name a namespace ([a-z][a-z0-9_]*, without '" CAT_NS_SEP
				 "', not ending in '_')",
				 frags[i].label, frags[i].ns ? frags[i].ns : "");
			return LINLI_EINVAL;
		}
	struct catalog *c = calloc(1, sizeof *c);
	if (!c)
		return LINLI_ENOMEM;
	c->version = version;
	atomic_init(&c->refs, 1);
	c->base = catalog_ref(base);
	c->dir = base->dir;
	c->classes = base->classes;
	c->n_classes = base->n_classes;
	c->plugins = base->plugins;
	c->n_plugins = base->n_plugins;
	c->plugins_file = base->plugins_file;
	int n_dev = 0;
	for (int i = 0; i < n; i++)
		n_dev += frags[i].device;
	c->datasets = calloc((size_t)base->n_datasets + (size_t)n + 1, sizeof *c->datasets);
	if (!c->datasets) {
		catalog_unref(c);
		return LINLI_ENOMEM;
	}
	if (n_dev) { /* classes of its own: base's by value (shared strings), then theirs */
		struct cat_device_class *v =
		    calloc((size_t)base->n_classes + (size_t)n_dev, sizeof *v);
		if (!v) {
			catalog_unref(c);
			return LINLI_ENOMEM;
		}
		memcpy(v, base->classes, (size_t)base->n_classes * sizeof *v);
		c->classes = v;
	}
	/* base's entries by value: their strings and fields stay base's (destroy skips them) */
	memcpy(c->datasets, base->datasets, (size_t)base->n_datasets * sizeof *c->datasets);
	c->n_datasets = base->n_datasets;
	int rc = 0;
	for (int i = 0; !rc && i < n; i++) {
		const struct cat_fragment *fr = &frags[i];
		if (fr->device) {
			rc = frag_class(c, base, fr, err, errlen);
			continue;
		}
		char *text = strndup(fr->text, fr->len);
		if (!text) {
			rc = LINLI_ENOMEM;
			break;
		}
		struct ld l = {fr->label, err, errlen, text};
		struct cat_dataset *d = &c->datasets[c->n_datasets++];
		rc = load_dataset(&l, d);
		free(text);
		if (rc)
			break;
		char full[CAT_NAME_MAX * 2 + 4];
		int fn = snprintf(full, sizeof full, "%s" CAT_NS_SEP "%s", fr->ns, d->name);
		if (strstr(d->name, CAT_NS_SEP))
			rc = fail(&l, d->line, "dataset",
				  "name: '%s' holds '" CAT_NS_SEP "': a bundle names its datasets "
				  "in its own namespace only (%s" CAT_NS_SEP "NAME)",
				  d->name, fr->ns);
		else if (catalog_dataset(base, d->name))
			rc = fail(&l, d->line, "dataset",
				  "name: '%s' is a dataset of the catalog (the kernel's): a bundle "
				  "brings datasets of its own, choose another name",
				  d->name);
		else if (d->system || d->written_by)
			rc = fail(&l, d->line, "dataset",
				  "%s: a bundle's dataset is neither a system dataset nor written "
				  "by a kernel subsystem",
				  d->system ? "system" : "written_by");
		else if (d->down)
			rc = fail(&l, d->line, "dataset",
				  "down: a bundle's dataset does not come down to the children (the "
				  "down log keeps every record's last change, which a purge could "
				  "not take back; a dataset may go up with up = true)");
		else if (fn > CAT_NAME_MAX)
			rc = fail(&l, d->line, "dataset",
				  "name: '%s' is longer than %d bytes", full, CAT_NAME_MAX);
		for (int j = base->n_datasets; !rc && j < c->n_datasets - 1; j++)
			if (!strcmp(c->datasets[j].name, full))
				rc = fail(&l, d->line, "dataset",
					  "name: '%s' is brought twice by bundle '%s'", d->name,
					  fr->ns);
		if (!rc) {
			char *s = strdup(full);
			if (!s)
				rc = LINLI_ENOMEM;
			else {
				free(d->name);
				d->name = s;
			}
		}
	}
	for (int i = 0, j = base->n_datasets; !rc && i < n; i++) {
		if (frags[i].device)
			continue;
		struct ld l = {frags[i].label, err, errlen, NULL};
		rc = frag_refs(&l, c, base, frags[i].ns, &c->datasets[j++]);
	}
	if (rc == LINLI_ENOMEM)
		snprintf(err, errlen, "catalog: out of memory");
	if (rc) {
		catalog_unref(c);
		return rc;
	}
	*out = c;
	return 0;
}

const struct cat_dataset *catalog_dataset(const struct catalog *c, const char *name)
{
	for (int i = 0; c && i < c->n_datasets; i++)
		if (c->datasets[i].name && strcmp(c->datasets[i].name, name) == 0)
			return &c->datasets[i];
	return NULL;
}

const struct cat_device_class *catalog_device_class(const struct catalog *c, const char *name)
{
	for (int i = 0; c && i < c->n_classes; i++)
		if (c->classes[i].name && strcmp(c->classes[i].name, name) == 0)
			return &c->classes[i];
	return NULL;
}

const struct cat_plugin *catalog_plugin(const struct catalog *c, const char *name)
{
	for (int i = 0; c && i < c->n_plugins; i++)
		if (c->plugins[i].name && strcmp(c->plugins[i].name, name) == 0)
			return &c->plugins[i];
	return NULL;
}

const struct cat_field *cat_dataset_field(const struct cat_dataset *d, const char *name, size_t len)
{
	for (int i = 0; i < d->n_fields; i++)
		if (strlen(d->fields[i].name) == len && memcmp(d->fields[i].name, name, len) == 0)
			return &d->fields[i];
	return NULL;
}

/* ---- schema records for the SDK (api->dataset_schema, api->datasets), since 1.1 ---- */

#include <msgpack.h> /* here, not above: this part only packs what was loaded */

#include "mp.h"

/* One field as the SDK's schema record has it (see cat_pack_schema). */
static void pack_schema_field(msgpack_packer *pk, const struct cat_field *f)
{
	int n = 5 + (f->n_values > 0) + (f->ref != NULL) + f->has_min + f->has_max +
		(f->max_len > 0) + (f->unit != NULL);
	msgpack_pack_map(pk, (size_t)n);
	mp_kv_str(pk, "name", f->name);
	mp_kv_str(pk, "type", cat_type_name(f->type));
	mp_kv_bool(pk, "required", f->required);
	mp_kv_bool(pk, "indexed", f->indexed);
	if (f->sensitive != CAT_SENS_NONE)
		mp_kv_str(pk, "sensitive", cat_sensitive_name(f->sensitive));
	else
		mp_kv_bool(pk, "sensitive", false);
	if (f->n_values) {
		mp_str(pk, "values");
		msgpack_pack_array(pk, (size_t)f->n_values);
		for (int i = 0; i < f->n_values; i++)
			mp_str(pk, f->values[i]);
	}
	if (f->ref)
		mp_kv_str(pk, "ref", f->ref);
	if (f->has_min) {
		if (f->type == CAT_FLOAT)
			mp_kv_double(pk, "min", f->fmin);
		else
			mp_kv_int(pk, "min", f->imin);
	}
	if (f->has_max) {
		if (f->type == CAT_FLOAT)
			mp_kv_double(pk, "max", f->fmax);
		else
			mp_kv_int(pk, "max", f->imax);
	}
	if (f->max_len > 0)
		mp_kv_int(pk, "max_len", f->max_len);
	if (f->unit)
		mp_kv_str(pk, "unit", f->unit);
}

void cat_pack_schema(msgpack_packer *pk, const struct cat_dataset *d, bool fields)
{
	msgpack_pack_map(pk, fields ? 12 : 5);
	mp_kv_str(pk, "name", d->name);
	mp_kv_str(pk, "title_en", d->title_en);
	mp_kv_str(pk, "title_zh", d->title_zh);
	mp_kv_str(pk, "level", tier_level_name(d->level));
	mp_kv_str(pk, "sharing", cat_sharing_name(d->sharing));
	if (!fields)
		return;
	mp_kv_str(pk, "owner", d->owner);
	mp_kv_str(pk, "family", d->family);
	mp_kv_str(pk, "source", cat_source_name(d->source));
	mp_kv_bool(pk, "restricted", d->restricted);
	mp_kv_bool(pk, "up", d->up);
	mp_kv_bool(pk, "down", d->down);
	mp_str(pk, "fields");
	msgpack_pack_array(pk, (size_t)d->n_fields);
	for (int i = 0; i < d->n_fields; i++)
		pack_schema_field(pk, &d->fields[i]);
}
