/*
 * collection.c — unified data collection (统一数据采集, 一表同享): one form, each datum
 * collected once (同源数据最多填一次).
 *
 * A form (collection_forms) names the dataset it collects (`target_dataset`) and its
 * fields (`field_names`, comma-separated): `FIELD` is a field of the target, collected;
 * `REF.FIELD` is a field of the record the target's ref field REF points to, shown
 * pre-filled and read-only. The catalog says who holds a dataset: one whose `source` is
 * the city is collected by the city and shared down, so below the city a form may show
 * its fields (through a ref) but never collect them — such a form is refused when it is
 * defined (and when it is used, if it was stored by another way), naming the field and
 * the dataset that holds it. Restricted datasets (watchlist-like) are never in a form.
 *
 * A submission writes back only the fields whose value changed, validated by the
 * store's schema, against the revision of the record it was made from (a hash of the
 * record as the caller read it when the form was opened): a record changed since is a
 * conflict, reported and logged, never overwritten. Every submission — written,
 * unchanged or in conflict — is logged in collection_submissions (who, when, which
 * form, which fields) as the caller. `collection report` gives per form the share of
 * fields pre-filled against collected, the measure of "no duplicate collection".
 *
 * Owns: the `collection` console commands and a cache of the forms, kept on the
 * plugin's own account by a store watch (plugins/lib/wf_ref.h): a community operator's
 * command finds the street's forms above its jurisdiction.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include <linli/linli.h>

#include "plugcmd.h"
#include "wf_ref.h"

static const struct linli_api *api;
static struct wf_ref *forms;

#define FORM_FIELDS_MAX 64
#define NAME_MAX_ 64
#define REV_LEN 16

/* The datasets a form may collect (store.write declared) and those it may show. */
static const char *const writable[] = {"residents",	   "elders",	     "grid_workers",
				       "grids",		   "parking_spaces", "parcel_lockers"};
static const char *const readable[] = {"residents", "houses",	     "households", "businesses",
				       "elders",    "grid_workers", "grids",	   "parking_spaces",
				       "parcel_lockers"};

static bool listed(const char *const *v, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i], name))
			return true;
	return false;
}

/* ---- the catalog: what a dataset and a field are ---- */

struct field_def {
	char name[NAME_MAX_];
	char type[16];
	char ref[NAME_MAX_]; /* the dataset a ref points to */
	bool sensitive, required;
};

struct ds_def {
	char name[NAME_MAX_], source[16], sharing[16];
	bool restricted;
	struct field_def *f;
	size_t nf;
};

static void ds_free(struct ds_def *d)
{
	free(d->f);
	d->f = NULL;
	d->nf = 0;
}

/* The catalog's word on `name` (dataset_schema). 0, or a code with err. */
static int ds_load(linli_ctx *ctx, const char *name, struct ds_def *d, char *err, size_t errlen)
{
	memset(d, 0, sizeof *d);
	linli_record *s = NULL, *fs = NULL;
	int rc = api->dataset_schema(ctx, name, &s);
	if (rc) {
		snprintf(err, errlen, "dataset '%s': %s", name,
			 rc == LINLI_ENOENT ? "no such dataset in the catalog"
					    : api->store_last_error(ctx));
		return rc;
	}
	const char *v;
	snprintf(d->name, sizeof d->name, "%s", name);
	if (!api->rec_get_str(s, "source", &v, NULL))
		snprintf(d->source, sizeof d->source, "%s", v);
	if (!api->rec_get_str(s, "sharing", &v, NULL))
		snprintf(d->sharing, sizeof d->sharing, "%s", v);
	api->rec_get_bool(s, "restricted", &d->restricted);
	if (api->rec_get_array(s, "fields", &fs) == 0) {
		size_t n = api->rec_count(fs);
		d->f = calloc(n ? n : 1, sizeof *d->f);
		if (!d->f) {
			api->rec_free(s);
			return LINLI_ENOMEM;
		}
		for (size_t i = 0; i < n; i++) {
			linli_record *m;
			if (api->arr_get_map(fs, i, &m))
				continue;
			struct field_def *f = &d->f[d->nf++];
			if (!api->rec_get_str(m, "name", &v, NULL))
				snprintf(f->name, sizeof f->name, "%s", v);
			if (!api->rec_get_str(m, "type", &v, NULL))
				snprintf(f->type, sizeof f->type, "%s", v);
			if (!api->rec_get_str(m, "ref", &v, NULL))
				snprintf(f->ref, sizeof f->ref, "%s", v);
			api->rec_get_bool(m, "required", &f->required);
			f->sensitive = api->rec_type(m, "sensitive") == LINLI_T_STR;
		}
	}
	api->rec_free(s);
	return 0;
}

static const struct field_def *ds_field(const struct ds_def *d, const char *name)
{
	for (size_t i = 0; i < d->nf; i++)
		if (!strcmp(d->f[i].name, name))
			return &d->f[i];
	return NULL;
}

/* ---- forms ---- */

struct ffield {
	char via[NAME_MAX_];  /* the target's ref field, "" for the target's own */
	char name[NAME_MAX_]; /* the field */
	char ds[NAME_MAX_];   /* the dataset that holds it */
	char type[16];
	bool collect, sensitive;
};

struct form {
	char code[LINLI_ID_MAX + 1], scope[LINLI_SCOPE_MAX + 1], title[128];
	struct ds_def target;
	struct ffield f[FORM_FIELDS_MAX];
	size_t nf, ncollect;
};

/* Levels below the city: a path of more than one part ("hefei/baohe"). */
static bool below_city(const char *scope)
{
	return strchr(scope, '/') != NULL;
}

/*
 * Parse a form's definition: target dataset `dataset`, fields `names`, defined at
 * `scope`. `what` begins every error ("form add", "form X"). 0, or LINLI_EINVAL /
 * LINLI_EPERM / LINLI_ENOENT with err naming the field and the dataset.
 */
static int form_parse(linli_ctx *ctx, const char *what, const char *scope, const char *dataset,
		      const char *names, struct form *fm, char *err, size_t errlen)
{
	char e2[256];
	int rc = ds_load(ctx, dataset, &fm->target, e2, sizeof e2);
	if (rc) {
		snprintf(err, errlen, "%s: target %s", what, e2);
		return rc == LINLI_ENOENT ? LINLI_EINVAL : rc;
	}
	if (fm->target.restricted) {
		snprintf(err, errlen,
			 "%s: dataset '%s' is restricted (special personnel): it is never "
			 "collected through a form",
			 what, dataset);
		return LINLI_EPERM;
	}
	const char *p = names;
	while (*p) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		while (n && isspace((unsigned char)*p))
			p++, n--;
		while (n && isspace((unsigned char)p[n - 1]))
			n--;
		if (!n) {
			snprintf(err, errlen, "%s: field_names: an empty name in \"%s\"", what, names);
			return LINLI_EINVAL;
		}
		if (fm->nf == FORM_FIELDS_MAX) {
			snprintf(err, errlen, "%s: field_names: more than %d fields", what,
				 FORM_FIELDS_MAX);
			return LINLI_EINVAL;
		}
		char word[2 * NAME_MAX_];
		snprintf(word, sizeof word, "%.*s", (int)n, p);
		struct ffield *f = &fm->f[fm->nf];
		memset(f, 0, sizeof *f);
		char *dot = strchr(word, '.');
		if (dot) {
			*dot = '\0';
			const struct field_def *ref = ds_field(&fm->target, word);
			if (!ref || strcmp(ref->type, "ref") || !ref->ref[0]) {
				snprintf(err, errlen,
					 "%s: field '%s.%s': '%s' is not a ref field of dataset '%s'",
					 what, word, dot + 1, word, dataset);
				return LINLI_EINVAL;
			}
			if (!listed(readable, sizeof readable / sizeof *readable, ref->ref)) {
				snprintf(err, errlen,
					 "%s: field '%s.%s': dataset '%s' is not one collection may "
					 "show",
					 what, word, dot + 1, ref->ref);
				return LINLI_EPERM;
			}
			struct ds_def d;
			if ((rc = ds_load(ctx, ref->ref, &d, e2, sizeof e2))) {
				snprintf(err, errlen, "%s: field '%s.%s': %s", what, word, dot + 1,
					 e2);
				return rc;
			}
			const struct field_def *fd = ds_field(&d, dot + 1);
			if (!fd || d.restricted) {
				snprintf(err, errlen, "%s: field '%s.%s': dataset '%s' has no field '%s'",
					 what, word, dot + 1, d.name, dot + 1);
				ds_free(&d);
				return LINLI_EINVAL;
			}
			snprintf(f->via, sizeof f->via, "%s", word);
			snprintf(f->name, sizeof f->name, "%s", fd->name);
			snprintf(f->ds, sizeof f->ds, "%s", d.name);
			snprintf(f->type, sizeof f->type, "%s", fd->type);
			f->sensitive = fd->sensitive;
			ds_free(&d);
		} else {
			const struct field_def *fd = ds_field(&fm->target, word);
			if (!fd) {
				snprintf(err, errlen, "%s: field '%s': dataset '%s' has no such field",
					 what, word, dataset);
				return LINLI_EINVAL;
			}
			if (below_city(scope) && !strcmp(fm->target.source, "city")) {
				snprintf(err, errlen,
					 "%s: field '%s' is held by dataset '%s', which the city "
					 "collects and shares down (source city, sharing %s): a form "
					 "at %s may show it pre-filled through a ref but never "
					 "collect it again",
					 what, word, dataset, fm->target.sharing, scope);
				return LINLI_EPERM;
			}
			if (!strcmp(fd->type, "geo")) {
				snprintf(err, errlen,
					 "%s: field '%s': a geo field is not collected through a form",
					 what, word);
				return LINLI_EINVAL;
			}
			snprintf(f->name, sizeof f->name, "%s", fd->name);
			snprintf(f->ds, sizeof f->ds, "%s", dataset);
			snprintf(f->type, sizeof f->type, "%s", fd->type);
			f->sensitive = fd->sensitive;
			f->collect = true;
			fm->ncollect++;
		}
		for (size_t i = 0; i < fm->nf; i++)
			if (!strcmp(fm->f[i].via, f->via) && !strcmp(fm->f[i].name, f->name)) {
				snprintf(err, errlen, "%s: field_names: '%.*s' twice", what, (int)n,
					 p);
				return LINLI_EINVAL;
			}
		fm->nf++;
		p = end ? end + 1 : p + n;
	}
	if (!fm->nf) {
		snprintf(err, errlen, "%s: field_names: no field", what);
		return LINLI_EINVAL;
	}
	if (fm->ncollect && !listed(writable, sizeof writable / sizeof *writable, dataset)) {
		snprintf(err, errlen,
			 "%s: dataset '%s' is not one collection may write (it writes: residents "
			 "(at the city), elders, grid_workers, grids, parking_spaces, "
			 "parcel_lockers)",
			 what, dataset);
		return LINLI_EPERM;
	}
	return 0;
}

static void form_free(struct form *fm)
{
	ds_free(&fm->target);
}

/* The form `code` that applies at `scope` (the deepest at or above it), parsed. */
static int form_get(linli_ctx *ctx, const char *code, const char *scope, struct form *fm,
		    char *err, size_t errlen)
{
	memset(fm, 0, sizeof *fm);
	const struct wf_ref_entry *e = wf_ref_deepest(forms, scope, wf_ref_match_id, code);
	if (!e) {
		snprintf(err, errlen, "no form '%s' at %s or above (linli collection form list)",
			 code, scope);
		return LINLI_ENOENT;
	}
	const char *ds = NULL, *names = NULL, *title = NULL, *status = NULL;
	api->rec_get_str(e->rec, "target_dataset", &ds, NULL);
	api->rec_get_str(e->rec, "field_names", &names, NULL);
	api->rec_get_str(e->rec, "title", &title, NULL);
	api->rec_get_str(e->rec, "status", &status, NULL);
	if (status && strcmp(status, "published")) {
		snprintf(err, errlen, "form '%s' is %s, not published", code, status);
		return LINLI_ESTATE;
	}
	snprintf(fm->code, sizeof fm->code, "%s", code);
	snprintf(fm->scope, sizeof fm->scope, "%s", e->scope);
	snprintf(fm->title, sizeof fm->title, "%s", title ? title : "");
	char what[LINLI_ID_MAX + 16];
	snprintf(what, sizeof what, "form '%s'", code);
	int rc = form_parse(ctx, what, e->scope, ds ? ds : "", names ? names : "", fm, err,
			    errlen);
	if (rc)
		form_free(fm);
	return rc;
}

/* ---- values ---- */

/* Copy field `key` of src into dst as `as` (nothing when absent). */
static void copy_field(linli_record *dst, const char *as, linli_record *src, const char *key)
{
	const char *s;
	int64_t i;
	double d;
	bool b;
	linli_record *m;
	switch (api->rec_type(src, key)) {
	case LINLI_T_STR:
		if (!api->rec_get_str(src, key, &s, NULL))
			api->rec_set_str(dst, as, s);
		break;
	case LINLI_T_INT:
		if (!api->rec_get_int(src, key, &i))
			api->rec_set_int(dst, as, i);
		break;
	case LINLI_T_FLOAT:
		if (!api->rec_get_float(src, key, &d))
			api->rec_set_float(dst, as, d);
		break;
	case LINLI_T_BOOL:
		if (!api->rec_get_bool(src, key, &b))
			api->rec_set_bool(dst, as, b);
		break;
	case LINLI_T_UINT: /* (times are integers too: the catalog says which) */
		if (!api->rec_get_int(src, key, &i))
			api->rec_set_int(dst, as, i);
		break;
	case LINLI_T_MAP:
		if (!api->rec_get_map(src, key, &m))
			api->rec_set_record(dst, as, m);
		break;
	default:
		break;
	}
}

/* The JSON of field `key` of r ("" when absent), for comparing values. */
static void field_json(const linli_record *r, const char *key, char *buf, size_t cap)
{
	buf[0] = '\0';
	if (!api->rec_has(r, key))
		return;
	linli_record *one = api->rec_new();
	if (!one)
		return;
	copy_field(one, "v", (linli_record *)r, key);
	if (api->rec_to_json(one, buf, cap, NULL))
		buf[0] = '\0';
	api->rec_free(one);
}

/* The revision of record r: a hash of its JSON, 16 hex digits. */
static int rev_of(const linli_record *r, char out[REV_LEN + 1])
{
	size_t len = 0;
	char small[4096], *buf = small;
	int rc = api->rec_to_json(r, small, sizeof small, &len);
	if (rc == LINLI_E2BIG) {
		if (!(buf = malloc(len + 1)))
			return LINLI_ENOMEM;
		rc = api->rec_to_json(r, buf, len + 1, &len);
	}
	if (!rc) {
		unsigned char h[REV_LEN / 2];
		crypto_generichash(h, sizeof h, (const unsigned char *)buf, len, NULL, 0);
		sodium_bin2hex(out, REV_LEN + 1, h, sizeof h);
	}
	if (buf != small)
		free(buf);
	return rc;
}

/*
 * Set field `f` of r from the text `v` by the field's type. 0, or LINLI_EINVAL with
 * err naming the field and the value (the store checks enum values, ranges, lengths).
 */
static int set_typed(linli_ctx *ctx, linli_record *r, const struct ffield *f, const char *v,
		     char *err, size_t errlen)
{
	const char *t = f->type;
	char *end;
	if (!strcmp(t, "string") || !strcmp(t, "enum") || !strcmp(t, "ref"))
		return api->rec_set_str(r, f->name, v);
	if (!strcmp(t, "integer")) {
		long long x = strtoll(v, &end, 10);
		if (end != v && !*end)
			return api->rec_set_int(r, f->name, x);
		snprintf(err, errlen, "field '%s': '%s' is not a whole number", f->name, v);
		return LINLI_EINVAL;
	}
	if (!strcmp(t, "float")) {
		double x = strtod(v, &end);
		if (end != v && !*end && x == x)
			return api->rec_set_float(r, f->name, x);
		snprintf(err, errlen, "field '%s': '%s' is not a number", f->name, v);
		return LINLI_EINVAL;
	}
	if (!strcmp(t, "boolean")) {
		if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "是"))
			return api->rec_set_bool(r, f->name, true);
		if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "否"))
			return api->rec_set_bool(r, f->name, false);
		snprintf(err, errlen, "field '%s': '%s' is not true or false", f->name, v);
		return LINLI_EINVAL;
	}
	if (!strcmp(t, "time")) {
		struct linli_tm tm = {.size = sizeof tm};
		int y, mo, d, h = 0, mi = 0, n = 0;
		if (sscanf(v, "%4d-%2d-%2d%n", &y, &mo, &d, &n) == 3 &&
		    (!v[n] || (sscanf(v + n, "T%2d:%2d", &h, &mi) == 2 && strlen(v + n) == 6))) {
			tm.year = y, tm.month = mo, tm.day = d, tm.hour = h, tm.minute = mi;
			int64_t ms;
			if (!api->time_from_local(ctx, &tm, &ms))
				return api->rec_set_time(r, f->name, ms);
		}
		snprintf(err, errlen,
			 "field '%s': '%s' is not a local date (YYYY-MM-DD or YYYY-MM-DDTHH:MM)",
			 f->name, v);
		return LINLI_EINVAL;
	}
	snprintf(err, errlen, "field '%s': type %s is not collected through a form", f->name, t);
	return LINLI_EINVAL;
}

/* ---- helpers ---- */

static const char *who_of(const struct linli_cmd_req *req)
{
	return req->caller && req->caller->name[0] ? req->caller->name : "kernel";
}

static int may(linli_ctx *ctx, const struct linli_cmd_req *req, const char *action,
	       const char *scope, char *err, size_t errlen)
{
	return req->caller ? api->caller_may(ctx, req->caller, action, scope, err, errlen) : 0;
}

/* The caller's jurisdiction (the node's for a request without a caller). */
static const char *caller_scope(linli_ctx *ctx, const struct linli_cmd_req *req)
{
	return req->caller && req->caller->scope && req->caller->scope[0] ? req->caller->scope
									  : api->plugin_scope(ctx);
}

/* The field of form fm that `key` (FIELD or REF.FIELD) names, or NULL. */
static const struct ffield *form_field(const struct form *fm, const char *key, size_t n)
{
	for (size_t i = 0; i < fm->nf; i++) {
		const struct ffield *f = &fm->f[i];
		char full[2 * NAME_MAX_ + 2];
		snprintf(full, sizeof full, "%s%s%s", f->via, f->via[0] ? "." : "", f->name);
		if (strlen(full) == n && !strncmp(full, key, n))
			return f;
	}
	return NULL;
}

/* ---- form add | list | show ---- */

#define FORM_USAGE                                                                                 \
	"usage: collection form add SCOPE CODE DATASET FIELDS TITLE... | form list | form show "   \
	"CODE [SCOPE]"

static int form_row(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	(void)ctx;
	linli_record *m;
	if (api->arr_push_map(ud, &m))
		return LINLI_ENOMEM;
	api->rec_set_str(m, "code", row->id);
	api->rec_set_str(m, "scope", row->scope);
	static const char *const keys[] = {"title", "target_dataset", "field_names", "status"};
	for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
		copy_field(m, keys[i], (linli_record *)row->record, keys[i]);
	return 0;
}

static void fields_out(linli_record *reply, const struct form *fm)
{
	linli_record *arr, *m;
	api->rec_set_array(reply, "fields", &arr);
	for (size_t i = 0; i < fm->nf; i++) {
		const struct ffield *f = &fm->f[i];
		char full[2 * NAME_MAX_ + 2];
		snprintf(full, sizeof full, "%s%s%s", f->via, f->via[0] ? "." : "", f->name);
		api->arr_push_map(arr, &m);
		api->rec_set_str(m, "field", full);
		api->rec_set_str(m, "dataset", f->ds);
		api->rec_set_str(m, "type", f->type);
		api->rec_set_str(m, "mode", f->collect ? "collect" : "prefill");
	}
}

static int cmd_form(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		    char *err, size_t errlen)
{
	const char *verb = req->argc ? req->argv[0] : "list";
	int rc;
	if (!strcmp(verb, "add")) {
		if (req->argc < 6) {
			snprintf(err, errlen, "%s", FORM_USAGE);
			return LINLI_EINVAL;
		}
		const char *scope = req->argv[1], *code = req->argv[2], *ds = req->argv[3],
			   *names = req->argv[4];
		char title[128];
		size_t off = 0;
		title[0] = '\0';
		for (int i = 5; i < req->argc && off < sizeof title; i++)
			off += (size_t)snprintf(title + off, sizeof title - off, "%s%s",
						i > 5 ? " " : "", req->argv[i]);
		if ((rc = may(ctx, req, "collection.define", scope, err, errlen)))
			return rc;
		struct form *fm = calloc(1, sizeof *fm);
		if (!fm)
			return LINLI_ENOMEM;
		rc = form_parse(ctx, "form add", scope, ds, names, fm, err, errlen);
		if (!rc) {
			linli_record *r = api->rec_new();
			api->rec_set_str(r, "code", code);
			api->rec_set_str(r, "title", title);
			api->rec_set_str(r, "target_dataset", ds);
			api->rec_set_str(r, "field_names", names);
			api->rec_set_str(r, "status", "published");
			api->rec_set_time(r, "published_at", api->time_now_ms());
			if ((rc = api->store_put(ctx, "collection_forms", scope, code, r, NULL,
						 NULL)))
				snprintf(err, errlen, "form add: %s", api->store_last_error(ctx));
			api->rec_free(r);
		}
		if (!rc) {
			linli_record *r = api->rec_new();
			api->rec_set_str(r, "code", code);
			api->rec_set_str(r, "scope", scope);
			api->rec_set_int(r, "prefilled", (int64_t)(fm->nf - fm->ncollect));
			api->rec_set_int(r, "collected", (int64_t)fm->ncollect);
			fields_out(r, fm);
			*reply = r;
		}
		form_free(fm);
		free(fm);
		return rc;
	}
	if (!strcmp(verb, "show")) {
		if (req->argc < 2 || req->argc > 3) {
			snprintf(err, errlen, "%s", FORM_USAGE);
			return LINLI_EINVAL;
		}
		const char *scope = req->argc == 3 ? req->argv[2] : NULL;
		char own[LINLI_SCOPE_MAX + 1];
		if (!scope) {
			snprintf(own, sizeof own, "%s",
				 req->caller && req->caller->scope[0] ? req->caller->scope
								      : api->plugin_scope(ctx));
			scope = own;
		}
		struct form *fm = calloc(1, sizeof *fm);
		if (!fm)
			return LINLI_ENOMEM;
		if (!(rc = form_get(ctx, req->argv[1], scope, fm, err, errlen))) {
			linli_record *r = api->rec_new();
			api->rec_set_str(r, "code", fm->code);
			api->rec_set_str(r, "scope", fm->scope);
			api->rec_set_str(r, "title", fm->title);
			api->rec_set_str(r, "dataset", fm->target.name);
			fields_out(r, fm);
			*reply = r;
			form_free(fm);
		}
		free(fm);
		return rc;
	}
	if (strcmp(verb, "list") || req->argc > 1) {
		snprintf(err, errlen, "%s", FORM_USAGE);
		return LINLI_EINVAL;
	}
	linli_record *arr = api->rec_new_array();
	struct linli_query q = {.size = sizeof q, .dataset = "collection_forms", .limit = 1000};
	char cursor[LINLI_CURSOR_MAX] = "";
	do {
		q.cursor = cursor;
		if ((rc = api->store_scan(ctx, &q, form_row, arr, cursor)) < 0) {
			snprintf(err, errlen, "form list: %s", api->store_last_error(ctx));
			api->rec_free(arr);
			return rc;
		}
	} while (cursor[0]);
	*reply = arr;
	return 0;
}

/*
 * The dataset form `code` collects, for a caller at `cs`: a form of that code at, above
 * or below the caller's scope (the record, once read, says which one applies). NULL with
 * err when there is none.
 */
static const char *form_dataset(const char *code, const char *cs, char *err, size_t errlen)
{
	for (size_t i = 0; i < forms->n; i++) {
		const struct wf_ref_entry *e = &forms->v[i];
		const char *ds;
		if (!strcmp(e->id, code) &&
		    (wf_ref_covers(e->scope, cs) || wf_ref_covers(cs, e->scope)) &&
		    !api->rec_get_str(e->rec, "target_dataset", &ds, NULL))
			return ds;
	}
	snprintf(err, errlen, "no form '%s' within your reach (linli collection form list)", code);
	return NULL;
}

/* ---- open: the form for one record, pre-filled ---- */

/*
 * A command's words without its `--scope PATH` (at most one, anywhere): into words
 * (req->argc entries) and *n, the path into *at (NULL when not given). 0, or
 * LINLI_EINVAL with err.
 */
static int split_scope(const struct linli_cmd_req *req, const char *verb, const char **words,
		       int *n, const char **at, char *err, size_t errlen)
{
	*n = 0;
	*at = NULL;
	for (int i = 0; i < req->argc; i++) {
		if (strcmp(req->argv[i], "--scope") != 0) {
			words[(*n)++] = req->argv[i];
			continue;
		}
		if (*at || i + 1 >= req->argc || !req->argv[i + 1][0]) {
			snprintf(err, errlen, "%s: --scope needs one path (the record's scope)", verb);
			return LINLI_EINVAL;
		}
		*at = req->argv[++i];
	}
	return 0;
}

/* Record `id` of `ds` at scope `at` (NULL: anywhere within reach) as the caller reads it,
   and its scope. */
static int target_get(linli_ctx *ctx, const char *verb, const char *ds, const char *id,
		      const char *at, linli_record **rec, char scope[LINLI_SCOPE_MAX + 1],
		      char *err, size_t errlen)
{
	int rc = api->store_get(ctx, ds, at, id, rec, scope);
	if (rc)
		snprintf(err, errlen, "%s: %s record '%s': %s", verb, ds, id,
			 rc == LINLI_ENOENT ? "no such record within your reach"
					    : api->store_last_error(ctx));
	return rc;
}

/*
 * Record `id` as the caller reads it, its scope, and form `code` as it applies there
 * (the deepest of that code at or above the record's scope: first the dataset a form
 * of that code within the caller's reach collects, to read the record). Free both with
 * record_done. 0, or a code with err.
 */
static int record_form(linli_ctx *ctx, const struct linli_cmd_req *req, const char *verb,
		       const char *code, const char *id, const char *at, struct form **fmp,
		       linli_record **rec, char scope[LINLI_SCOPE_MAX + 1], char *err,
		       size_t errlen)
{
	*fmp = NULL;
	*rec = NULL;
	const char *ds = form_dataset(code, caller_scope(ctx, req), err, errlen);
	if (!ds)
		return LINLI_ENOENT;
	struct form *fm = calloc(1, sizeof *fm);
	if (!fm)
		return LINLI_ENOMEM;
	int rc = target_get(ctx, verb, ds, id, at, rec, scope, err, errlen);
	if (!rc)
		rc = form_get(ctx, code, scope, fm, err, errlen); /* freed by it on failure */
	if (rc) {
		api->rec_free(*rec);
		*rec = NULL;
		free(fm);
		return rc;
	}
	*fmp = fm;
	return 0;
}

static void record_done(struct form *fm, linli_record *rec)
{
	api->rec_free(rec);
	if (fm)
		form_free(fm);
	free(fm);
}

/*
 * The record a ref field names: at the referring record's own scope, else the nearest
 * scope above it that has one (ids are unique per dataset and scope: two communities may
 * each hold an 'r2'). *out stays NULL when none is within reach.
 */
static void ref_get(linli_ctx *ctx, const char *ds, const char *id, const char *scope,
		    linli_record **out)
{
	char at[LINLI_SCOPE_MAX + 1];
	snprintf(at, sizeof at, "%s", scope);
	for (;;) {
		int rc = api->store_get(ctx, ds, at, id, out, NULL);
		if (rc != LINLI_ENOENT)
			return;
		char *slash = strrchr(at, '/');
		if (!slash)
			return;
		*slash = '\0';
	}
}

static int cmd_open(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		    char *err, size_t errlen)
{
	const char *words[req->argc + 1], *at;
	int n;
	int rc = split_scope(req, "open", words, &n, &at, err, errlen);
	if (rc)
		return rc;
	if (n != 2) {
		snprintf(err, errlen, "usage: collection open FORM RECORD [--scope PATH]");
		return LINLI_EINVAL;
	}
	const char *code = words[0], *id = words[1];
	char scope[LINLI_SCOPE_MAX + 1];
	struct form *fm;
	linli_record *rec;
	rc = record_form(ctx, req, "open", code, id, at, &fm, &rec, scope, err, errlen);
	char rev[REV_LEN + 1] = "";
	if (!rc && (rc = rev_of(rec, rev)))
		snprintf(err, errlen, "open: the record's revision: %s", linli_strerror(rc));
	if (!rc) {
		linli_record *r = api->rec_new(), *arr, *m;
		api->rec_set_str(r, "form", code);
		api->rec_set_str(r, "title", fm->title);
		api->rec_set_str(r, "dataset", fm->target.name);
		api->rec_set_str(r, "record", id);
		api->rec_set_str(r, "scope", scope);
		api->rec_set_str(r, "rev", rev);
		api->rec_set_array(r, "fields", &arr);
		/* The records the ref fields point to, read once each. */
		linli_record *refs[FORM_FIELDS_MAX] = {0};
		for (size_t i = 0; i < fm->nf; i++) {
			const struct ffield *f = &fm->f[i];
			char full[2 * NAME_MAX_ + 2];
			snprintf(full, sizeof full, "%s%s%s", f->via, f->via[0] ? "." : "",
				 f->name);
			api->arr_push_map(arr, &m);
			api->rec_set_str(m, "field", full);
			api->rec_set_str(m, "mode", f->collect ? "collect" : "prefill");
			api->rec_set_str(m, "dataset", f->ds);
			if (f->collect) {
				copy_field(m, "value", rec, f->name);
				continue;
			}
			size_t j = 0;
			while (j < i && strcmp(fm->f[j].via, f->via))
				j++;
			if (j == i) { /* the first field through this ref: read its record */
				const char *rid;
				if (!api->rec_get_str(rec, f->via, &rid, NULL))
					ref_get(ctx, f->ds, rid, scope, &refs[i]);
			}
			if (refs[j])
				copy_field(m, "value", refs[j], f->name);
		}
		for (size_t i = 0; i < fm->nf; i++)
			api->rec_free(refs[i]);
		*reply = r;
	}
	record_done(fm, rec);
	return rc;
}

/* ---- submit: write back what changed ---- */

struct submit {
	const struct form *fm;
	const char *rev;
	linli_record *want; /* the submitted values, typed */
	bool conflict;
	char now_rev[REV_LEN + 1];
	char changed[1024];
	int n_changed, n_same;
};

static int submit_fn(linli_ctx *ctx, const char *id, linli_record **rec, void *ud, char *err,
		     size_t errlen)
{
	(void)ctx, (void)id;
	struct submit *s = ud;
	if (!*rec) {
		snprintf(err, errlen, "the record is gone");
		return LINLI_ENOENT;
	}
	if (rev_of(*rec, s->now_rev))
		return LINLI_ENOMEM;
	if (strcmp(s->now_rev, s->rev)) {
		s->conflict = true;
		return LINLI_STORE_KEEP;
	}
	size_t off = 0;
	for (size_t i = 0; i < api->rec_count(s->want); i++) {
		const char *key;
		api->rec_key(s->want, i, &key);
		char a[1024], b[1024];
		field_json(*rec, key, a, sizeof a);
		field_json(s->want, key, b, sizeof b);
		if (!strcmp(a, b)) {
			s->n_same++;
			continue;
		}
		copy_field(*rec, key, s->want, key);
		s->n_changed++;
		off += (size_t)snprintf(s->changed + off, off < sizeof s->changed
								   ? sizeof s->changed - off
								   : 0,
					"%s%s", off ? "," : "", key);
	}
	return s->n_changed ? 0 : LINLI_STORE_KEEP;
}

static int log_submission(linli_ctx *ctx, const struct linli_cmd_req *req,
			  const struct form *fm, const char *id, const char *scope,
			  const char *result, const struct submit *s, const char *rev_after)
{
	linli_record *m = api->rec_new();
	if (!m)
		return LINLI_ENOMEM;
	api->rec_set_str(m, "form", fm->code);
	api->rec_set_str(m, "dataset", fm->target.name);
	api->rec_set_str(m, "record", id);
	api->rec_set_str(m, "result", result);
	if (s->changed[0])
		api->rec_set_str(m, "changed", s->changed);
	api->rec_set_int(m, "changed_count", s->n_changed);
	api->rec_set_int(m, "unchanged_count", s->n_same);
	api->rec_set_int(m, "prefilled_count", (int64_t)(fm->nf - fm->ncollect));
	api->rec_set_str(m, "rev_before", s->rev);
	if (rev_after && rev_after[0])
		api->rec_set_str(m, "rev_after", rev_after);
	api->rec_set_str(m, "by", who_of(req));
	api->rec_set_time(m, "at", api->time_now_ms());
	int rc = api->store_put(ctx, "collection_submissions", scope, NULL, m, NULL, NULL);
	api->rec_free(m);
	return rc;
}

static int cmd_submit(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		      char *err, size_t errlen)
{
	const char *words[req->argc + 1], *at;
	int n;
	int rc = split_scope(req, "submit", words, &n, &at, err, errlen);
	if (rc)
		return rc;
	if (n < 4) {
		snprintf(err, errlen,
			 "usage: collection submit FORM RECORD REV FIELD=VALUE... [--scope PATH] "
			 "(REV from collection open)");
		return LINLI_EINVAL;
	}
	const char *code = words[0], *id = words[1], *rev = words[2];
	char scope[LINLI_SCOPE_MAX + 1];
	struct form *fm = NULL;
	linli_record *rec = NULL, *want = api->rec_new();
	rc = want ? record_form(ctx, req, "submit", code, id, at, &fm, &rec, scope, err, errlen)
		  : LINLI_ENOMEM;
	if (!rc)
		rc = may(ctx, req, "collection.submit", scope, err, errlen);
	for (int i = 3; !rc && i < n; i++) {
		const char *a = words[i], *eq = strchr(a, '=');
		const struct ffield *f = eq ? form_field(fm, a, (size_t)(eq - a)) : NULL;
		if (!eq) {
			snprintf(err, errlen, "submit: '%s' is not FIELD=VALUE", a);
			rc = LINLI_EINVAL;
		} else if (!f) {
			snprintf(err, errlen, "submit: field '%.*s' is not in form '%s'",
				 (int)(eq - a), a, code);
			rc = LINLI_EINVAL;
		} else if (!f->collect) {
			snprintf(err, errlen,
				 "submit: field '%.*s' is read-only in form '%s': dataset '%s' "
				 "holds it (pre-filled, never collected here)",
				 (int)(eq - a), a, code, f->ds);
			rc = LINLI_EPERM;
		} else if (api->rec_has(want, f->name)) {
			snprintf(err, errlen, "submit: field '%s' twice", f->name);
			rc = LINLI_EINVAL;
		} else if ((rc = set_typed(ctx, want, f, eq + 1, err, errlen))) {
			char e2[300];
			snprintf(e2, sizeof e2, "submit: %s", err);
			snprintf(err, errlen, "%s", e2);
		}
	}
	struct submit s = {.fm = fm, .rev = rev, .want = want};
	if (!rc) {
		rc = api->store_update(ctx, fm->target.name, scope, id, submit_fn, &s);
		if (rc)
			snprintf(err, errlen, "submit: %s", api->store_last_error(ctx));
	}
	char after[REV_LEN + 1] = "";
	if (!rc && !s.conflict) {
		linli_record *now = NULL;
		if (!api->store_get(ctx, fm->target.name, scope, id, &now, NULL)) {
			rev_of(now, after);
			api->rec_free(now);
		}
	}
	if (!rc) {
		const char *result = s.conflict ? "conflict" : s.n_changed ? "applied" : "unchanged";
		int lrc = log_submission(ctx, req, fm, id, scope, result, &s, after);
		if (lrc)
			api->log(ctx, LINLI_LOG_WARN, "submission of form %s for %s not logged: %s",
				 code, id, api->store_last_error(ctx));
		if (s.conflict) {
			snprintf(err, errlen,
				 "submit: conflict: %s record '%s' changed since revision %s (it is "
				 "%s now); nothing was written — open the form again "
				 "(collection open %s %s)",
				 fm->target.name, id, rev, s.now_rev, code, id);
			rc = LINLI_ESTATE;
		} else {
			linli_record *r = api->rec_new(), *arr;
			api->rec_set_str(r, "result", result);
			api->rec_set_str(r, "record", id);
			api->rec_set_str(r, "rev", after[0] ? after : rev);
			api->rec_set_array(r, "changed", &arr);
			char *save = NULL, buf[1024];
			snprintf(buf, sizeof buf, "%s", s.changed);
			for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
				api->arr_push_str(arr, t);
			api->rec_set_int(r, "unchanged", s.n_same);
			*reply = r;
		}
	}
	api->rec_free(want);
	record_done(fm, rec);
	return rc;
}

/* ---- report ---- */

struct tally {
	linli_record *per; /* form code -> {submissions, applied, unchanged, conflicts, written,
			      kept} */
};

static int tally_row(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	(void)ctx;
	struct tally *t = ud;
	const char *form, *result;
	if (api->rec_get_str(row->record, "form", &form, NULL) ||
	    api->rec_get_str(row->record, "result", &result, NULL))
		return 0;
	linli_record *m;
	if (api->rec_get_map(t->per, form, &m) && api->rec_set_map(t->per, form, &m))
		return LINLI_ENOMEM;
	int64_t v, n;
	const char *keys[] = {"submissions", result};
	for (size_t i = 0; i < 2; i++) {
		v = 0;
		api->rec_get_int(m, keys[i], &v);
		api->rec_set_int(m, keys[i], v + 1);
	}
	static const char *const counts[][2] = {{"changed_count", "fields_written"},
						{"unchanged_count", "fields_unchanged"}};
	for (size_t i = 0; i < 2; i++) {
		n = 0, v = 0;
		api->rec_get_int(row->record, counts[i][0], &n);
		api->rec_get_int(m, counts[i][1], &v);
		api->rec_set_int(m, counts[i][1], v + n);
	}
	return 0;
}

static int report_form(linli_ctx *ctx, const struct wf_ref_entry *e, linli_record *arr,
		       linli_record *per)
{
	struct form *fm = calloc(1, sizeof *fm);
	if (!fm)
		return LINLI_ENOMEM;
	linli_record *m;
	api->arr_push_map(arr, &m);
	api->rec_set_str(m, "form", e->id);
	api->rec_set_str(m, "scope", e->scope);
	char err[512];
	if (form_get(ctx, e->id, e->scope, fm, err, sizeof err)) {
		api->rec_set_str(m, "problem", err);
	} else {
		size_t pre = fm->nf - fm->ncollect;
		api->rec_set_str(m, "dataset", fm->target.name);
		api->rec_set_int(m, "fields", (int64_t)fm->nf);
		api->rec_set_int(m, "prefilled", (int64_t)pre);
		api->rec_set_int(m, "collected", (int64_t)fm->ncollect);
		api->rec_set_float(m, "prefilled_share", fm->nf ? (double)pre / (double)fm->nf : 0);
		form_free(fm);
	}
	free(fm);
	linli_record *t;
	static const char *const keys[] = {"submissions", "applied",	   "unchanged",
					   "conflict",	  "fields_written", "fields_unchanged"};
	bool has = api->rec_get_map(per, e->id, &t) == 0;
	for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
		int64_t v = 0;
		if (has)
			api->rec_get_int(t, keys[i], &v);
		api->rec_set_int(m, keys[i], v);
	}
	return 0;
}

static int cmd_report(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		      char *err, size_t errlen)
{
	if (req->argc > 1) {
		snprintf(err, errlen, "usage: collection report [FORM]");
		return LINLI_EINVAL;
	}
	struct tally t = {api->rec_new()};
	struct linli_query q = {.size = sizeof q, .dataset = "collection_submissions",
				.limit = 1000};
	char cursor[LINLI_CURSOR_MAX] = "";
	int rc;
	do {
		q.cursor = cursor;
		if ((rc = api->store_scan(ctx, &q, tally_row, &t, cursor)) < 0) {
			snprintf(err, errlen, "report: %s", api->store_last_error(ctx));
			api->rec_free(t.per);
			return rc;
		}
	} while (cursor[0]);
	/* The forms within the caller's reach: those at or above its scope, and below it. */
	const char *cs = req->caller && req->caller->scope[0] ? req->caller->scope
							      : api->plugin_scope(ctx);
	linli_record *arr = api->rec_new_array();
	size_t found = 0;
	for (size_t i = 0; i < forms->n; i++) {
		const struct wf_ref_entry *e = &forms->v[i];
		if (req->argc == 1 && strcmp(e->id, req->argv[0]))
			continue;
		if (!wf_ref_covers(e->scope, cs) && !wf_ref_covers(cs, e->scope))
			continue;
		found++;
		if ((rc = report_form(ctx, e, arr, t.per)))
			break;
	}
	api->rec_free(t.per);
	if (!rc && req->argc == 1 && !found) {
		snprintf(err, errlen, "report: no form '%s' within your reach", req->argv[0]);
		rc = LINLI_ENOENT;
	}
	if (rc) {
		api->rec_free(arr);
		return rc;
	}
	*reply = arr;
	return 0;
}

/* ---- init, fini ---- */

static void on_form(linli_ctx *ctx, const struct linli_change *ch, void *ud)
{
	wf_ref_follow(ud, ctx, ch);
}

static int collection_init(linli_ctx *ctx, const struct linli_api *a)
{
	api = a;
	if (sodium_init() < 0) {
		api->set_error(ctx, "libsodium did not initialise");
		return LINLI_EIO;
	}
	if (!(forms = calloc(1, sizeof *forms)))
		return LINLI_ENOMEM;
	wf_ref_init(forms, api, "collection_forms");
	static const struct plugcmd_action actions[] = {
	    {"collection.read", "viewer", NULL, NULL,
	     "list and show collection forms, open one for a record, report on them"},
	    {"collection.define", "operator", NULL, NULL, "define a collection form (采集表)"},
	    {"collection.submit", "operator", NULL, NULL, "submit a collected form for a record"},
	};
	static const struct plugcmd_cmd cmds[] = {
	    {"form", "add SCOPE CODE DATASET FIELDS TITLE... | list | show CODE [SCOPE]",
	     "collection forms: FIELD collected, REF.FIELD pre-filled", "collection.read",
	     cmd_form},
	    {"open", "FORM RECORD [--scope PATH]",
	     "a form for one record: pre-filled, with its revision",
	     "collection.read", cmd_open},
	    {"submit", "FORM RECORD REV FIELD=VALUE... [--scope PATH]",
	     "write back the fields that changed (a conflict if the record changed since REV)",
	     NULL, cmd_submit},
	    {"report", "[FORM]", "per form: fields pre-filled against collected, submissions",
	     "collection.read", cmd_report},
	};
	char err[256] = "";
	int rc = plugcmd_register(api, ctx, actions, PLUGCMD_N(actions), cmds, PLUGCMD_N(cmds),
				  NULL, 0, NULL, err, sizeof err);
	uint64_t wid;
	if (!rc)
		rc = api->store_watch(ctx, "collection_forms", on_form, forms, &wid);
	if (!rc)
		rc = wf_ref_load(forms, ctx);
	if (rc) {
		api->set_error(ctx, "setting up: %s", err[0] ? err : linli_strerror(rc));
		wf_ref_clear(forms);
		free(forms);
		forms = NULL;
	}
	return rc;
}

static void collection_fini(linli_ctx *ctx, const struct linli_api *a)
{
	(void)ctx, (void)a;
	if (!forms)
		return;
	wf_ref_clear(forms);
	free(forms);
	forms = NULL;
}

LINLI_PLUGIN(collection_init, collection_fini, .name = "collection", .version = "1.0.0",
	     .family = "gov_services",
	     .description = "Unified data collection (一表同享): forms whose fields held by the "
			    "city are pre-filled and read-only, submissions that write back only "
			    "what changed against the record's revision, reports of pre-filled "
			    "against collected",
	     .capabilities = {"catalog.read", "store.read:collection_forms",
			      "store.write:collection_forms", "store.read:collection_submissions",
			      "store.write:collection_submissions", "store.read:residents",
			      "store.write:residents", "store.read:houses", "store.read:households", "store.read:businesses",
			      "store.read:elders", "store.write:elders", "store.read:grid_workers",
			      "store.write:grid_workers", "store.read:grids", "store.write:grids",
			      "store.read:parking_spaces", "store.write:parking_spaces",
			      "store.read:parcel_lockers", "store.write:parcel_lockers",
			      "sensitive:residents", "sensitive:houses", "sensitive:households",
			      "sensitive:businesses", "sensitive:elders", "sensitive:grid_workers"});
