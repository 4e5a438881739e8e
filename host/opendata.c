/*
 * opendata — see opendata.h.
 *
 * API keys: `linli apikeys add NAME --scope PATH --resources LIST` issues a
 * random 256-bit key, shown once; the store keeps BLAKE2b(key) in the
 * `apikeys` system dataset. A request's Bearer key is hashed and looked up
 * through that indexed field. A key acts as a viewer of its scope: it reads
 * only the resources it was issued for (apires.h: dataset:NAME whose sharing
 * class allows it, devices:CLASS, ...), always with sensitive fields masked
 * (so it may not filter on them either), never outside its jurisdiction;
 * every list pages, every request is audited. Keys issued before resources
 * existed carry a datasets list: read as dataset:NAME each. A token bucket
 * per key enforces http.rate_limit.
 *
 * Handlers run on the kernel thread (http.c guarantees it) and read through
 * the same store as the console.
 */
#include "opendata.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "access.h"
#include "apires.h"
#include "approutes.h"
#include "catalog.h"
#include "cmd.h"
#include "http.h"
#include "json.h"
#include "kernel.h"
#include "linli/error.h"
#include "log.h"
#include "metrics.h"
#include "mp.h"
#include "screen.h"
#include "store.h"
#include "store_cmds.h"
#include "tier_store.h"
#include "util.h"

#define KEY_NAME_MAX 48
#define PAGE_DEFAULT 100 /* rows of a list page without ?limit= */
#define PAGE_MAX 1000	 /* the most ?limit= may ask */

struct keyauth {
	char name[KEY_NAME_MAX + 8]; /* "apikey:NAME" */
	char scope[SCOPE_MAX + 1];
	enum tier_role role; /* what plugin routes may do as the key (viewer unless issued so) */
	struct apires_set res;
	struct tier_principal p;
};

struct bucket {
	char name[KEY_NAME_MAX + 16]; /* "apikey:NAME", "refused:apikey:NAME" */
	double tokens;
	uint64_t last_ms;
	unsigned long long held; /* refusals counted, not itemised (audit_refusal) */
	struct bucket *next;
};

struct opendata {
	struct kernel *k;
	struct bucket *buckets;
	struct keyauth cur; /* the key of the request being handled (kernel thread) */
};

static struct opendata od; /* one HTTP server per process */

static void key_hash(const char *key, char out[65])
{
	unsigned char h[32];
	crypto_generichash(h, sizeof h, (const unsigned char *)key, strlen(key), NULL, 0);
	sodium_bin2hex(out, 65, h, sizeof h);
}

static bool shareable(const struct cat_dataset *ds)
{
	return ds && !ds->system && ds->sharing != CAT_NOT_SHARED;
}

/* The resources of a stored key record (apires_from_record); unreadable: none, logged. */
static void key_resources(const msgpack_object *rec, const char *name, struct apires_set *out)
{
	char res[APIRES_TEXT_MAX], ds[APIRES_TEXT_MAX], err[256];
	const msgpack_object *r = mp_get(rec, "resources"), *d = mp_get(rec, "datasets");
	bool has_r = r && r->type == MSGPACK_OBJECT_STR;
	mp_copy_str(has_r ? r : NULL, res, sizeof res);
	mp_copy_str(d && d->type == MSGPACK_OBJECT_STR ? d : NULL, ds, sizeof ds);
	if (apires_from_record(has_r ? res : NULL, ds, out, err, sizeof err) != 0)
		log_warn("http", "API key '%s': stored resources unreadable (%s): it reads nothing",
			 name, err);
}

/* The resources as an array of their texts ("dataset:parking_spaces", ...). */
static void pack_resources(msgpack_packer *pk, const struct apires_set *s)
{
	msgpack_pack_array(pk, (size_t)s->n);
	for (int i = 0; i < s->n; i++) {
		char t[CAT_NAME_MAX + APIRES_ROUTE_MAX + 16];
		apires_format_one(&s->v[i], t, sizeof t);
		mp_str(pk, t);
	}
}

/* ?limit= (1..PAGE_MAX, default PAGE_DEFAULT) and ?cursor=; an http_error status or 0. */
static int page_params(struct http_req *r, size_t *limit, char **cursor)
{
	char *l = http_query(r, "limit"), *end;
	int st = 0;
	*limit = PAGE_DEFAULT;
	*cursor = http_query(r, "cursor");
	if (l) {
		long v = strtol(l, &end, 10);
		if (*end || end == l || v < 1 || v > PAGE_MAX)
			st = http_error(r, 400, "limit must be 1..%d", PAGE_MAX);
		*limit = (size_t)v;
	}
	free(l);
	return st;
}

/* ---- authentication and rate limit ---- */

struct keyrow {
	struct keyauth *ka;
	bool found, disabled;
};

static int key_row(void *ud, const struct store_row *row)
{
	struct keyrow *kr = ud;
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	size_t off = 0;
	if (msgpack_unpack_next(&up, row->data, row->len, &off) == MSGPACK_UNPACK_SUCCESS) {
		const msgpack_object *dis = mp_get(&up.data, "disabled");
		kr->disabled = dis && dis->type == MSGPACK_OBJECT_BOOLEAN && dis->via.boolean;
		key_resources(&up.data, row->id, &kr->ka->res);
		char role[16] = "";
		mp_copy_str(mp_get(&up.data, "role"), role, sizeof role);
		kr->ka->role = role[0] ? tier_role_parse(role) : ROLE_VIEWER;
		if (kr->ka->role != ROLE_VIEWER && kr->ka->role != ROLE_OPERATOR)
			kr->ka->role = ROLE_VIEWER; /* nothing else is ever issued */
		snprintf(kr->ka->name, sizeof kr->ka->name, "apikey:%s", row->id);
		snprintf(kr->ka->scope, sizeof kr->ka->scope, "%s", row->scope);
		kr->found = true;
	}
	msgpack_unpacked_destroy(&up);
	return 1;
}

/* The token bucket named `name` (made full on first use); NULL when out of memory. */
static struct bucket *bucket_get(struct kernel *k, const char *name)
{
	struct bucket *b = od.buckets;
	while (b && strcmp(b->name, name) != 0)
		b = b->next;
	if (!b && (b = calloc(1, sizeof *b)) != NULL) {
		snprintf(b->name, sizeof b->name, "%s", name);
		b->tokens = k->cfg.http_rate;
		b->last_ms = kernel_now_ms();
		b->next = od.buckets;
		od.buckets = b;
	}
	return b;
}

/* Take a token from `name`'s bucket of http.rate_limit per second. */
static bool rate_ok(struct kernel *k, const char *name)
{
	struct bucket *b = bucket_get(k, name);
	if (!b)
		return true;
	uint64_t now = kernel_now_ms();
	double rate = k->cfg.http_rate;
	b->tokens += (double)(now - b->last_ms) * rate / 1000.0;
	if (b->tokens > rate)
		b->tokens = rate;
	b->last_ms = now;
	if (b->tokens < 1.0)
		return false;
	b->tokens -= 1.0;
	return true;
}

/* Look the key of BLAKE2b `hash` up into *ka: 0, 401 unknown or revoked, 503 (err says why). */
static int hash_lookup(struct kernel *k, const char *hash, struct keyauth *ka, char *err,
		       size_t errlen)
{
	memset(ka, 0, sizeof *ka);
	struct store_where w = {"hash", hash};
	struct store_query q = {.dataset = "apikeys", .where = &w, .n_where = 1, .limit = 1};
	struct keyrow kr = {.ka = ka};
	char cursor[STORE_CURSOR_MAX];
	if (store_scan(k->store, &q, key_row, &kr, cursor, err, errlen) < 0)
		return 503;
	if (!kr.found || kr.disabled) {
		log_info("http", "refused an %s API key", kr.found ? "revoked" : "unknown");
		snprintf(err, errlen, "unknown or revoked API key");
		return 401;
	}
	ka->p = (struct tier_principal){PRINCIPAL_MACHINE, ka->name, ka->scope, ka->role,
					NULL, NULL, NULL};
	return 0;
}

static int key_lookup(struct kernel *k, const char *key, struct keyauth *ka, char *err,
		      size_t errlen)
{
	char hash[65];
	key_hash(key, hash);
	return hash_lookup(k, hash, ka, err, errlen);
}

void opendata_key_hash(const char *key, char out[65])
{
	key_hash(key, out);
}

int opendata_key_check(struct kernel *k, const char *hash, char name[OPENDATA_NAME_MAX],
		       char *scope, struct apires_set *res, char *err, size_t errlen)
{
	struct keyauth *ka = malloc(sizeof *ka);
	if (!ka) {
		snprintf(err, errlen, "out of memory");
		return 503;
	}
	int st = hash_lookup(k, hash, ka, err, errlen);
	if (st == 0) {
		snprintf(name, OPENDATA_NAME_MAX, "%s", ka->name + 7);
		snprintf(scope, SCOPE_MAX + 1, "%s", ka->scope);
		if (res)
			*res = ka->res;
	}
	free(ka);
	return st;
}

static int authenticate(struct http_req *r, void *ud)
{
	(void)ud;
	struct kernel *k = r->k;
	memset(&od.cur, 0, sizeof od.cur);
	if (!r->bearer || !*r->bearer)
		return http_error(r, 401, "an API key is needed: Authorization: Bearer KEY");
	char err[256];
	int st = key_lookup(k, r->bearer, &od.cur, err, sizeof err);
	if (st == 503)
		return http_error(r, 503, "cannot check the key: %s", err);
	if (st)
		return http_error(r, 401, "%s", err);
	r->auth = &od.cur; /* known, even when over its limit: the audit names it */
	if (!rate_ok(k, od.cur.name)) {
		snprintf(r->retry_after, sizeof r->retry_after, "1");
		return http_error(r, 429, "key '%s' is over its limit of %d requests per second",
				  od.cur.name + 7, k->cfg.http_rate);
	}
	return 0;
}

int opendata_audited(struct http_req *r, const char *scope, const char *object,
		     const char *result, int status)
{
	struct keyauth *ka = r->auth;
	const char *msg =
	    status >= 400
		? json_string_value(json_object_get(json_object_get(r->resp, "error"), "message"))
		: NULL;
	char action[96], detail[512];
	snprintf(action, sizeof action, "http.%s", r->method);
	snprintf(detail, sizeof detail, "%d %s%s%s", status, r->path, msg ? ": " : "",
		 msg ? msg : "");
	tiers_audit(r->k, &ka->p, action, scope, object, result, detail);
	r->audited = true;
	return status;
}

/*
 * The audit hook (http.c): a request refused before or outside a handler —
 * unknown path or method, malformed target or body, no or a bad key, over
 * the rate limit. Filed under the key when it was known, else under
 * "http:anonymous" at the node; the object is the path as received.
 *
 * Nobody needs a key to be refused, so refusals must not become a way to
 * write to the store at line rate: each principal's refusals are itemised
 * up to http.rate_limit per second; beyond that they are counted, and the
 * count is audited (action http.refused) with the next itemised one.
 */
static void audit_refusal(struct http_req *r, void *ud)
{
	(void)ud;
	static const struct tier_principal anon = {PRINCIPAL_MACHINE, "http:anonymous", NULL,
						   ROLE_VIEWER, NULL, NULL, NULL};
	struct keyauth *ka = r->auth;
	const struct tier_principal *who = ka ? &ka->p : &anon;
	const char *scope = ka ? ka->scope : NULL;
	char bname[sizeof od.buckets->name], detail[600];
	snprintf(bname, sizeof bname, "refused:%s", who->name);
	struct bucket *b = bucket_get(r->k, bname);
	if (b && !rate_ok(r->k, bname)) {
		b->held++;
		return;
	}
	if (b && b->held) {
		snprintf(detail, sizeof detail,
			 "%llu more refused requests not itemised (over %d per second)", b->held,
			 r->k->cfg.http_rate);
		tiers_audit(r->k, who, "http.refused", scope, NULL, "denied", detail);
		b->held = 0;
	}
	const char *msg =
	    json_string_value(json_object_get(json_object_get(r->resp, "error"), "message"));
	char action[96];
	snprintf(action, sizeof action, "http.%s", r->method);
	snprintf(detail, sizeof detail, "%d %s", r->status, msg ? msg : "");
	tiers_audit(r->k, who, action, scope, r->path ? r->path : r->uri, "denied", detail);
}

/* The dataset of a request: 404 unknown, 403 not shared or not on the key's list. */
static const struct cat_dataset *dataset_for(struct http_req *r, const char *name, int *status)
{
	struct keyauth *ka = r->auth;
	const struct cat_dataset *ds = catalog_dataset(r->k->catalog, name);
	if (!ds || ds->system) {
		*status = http_error(r, 404, "no dataset '%s'", name);
		return NULL;
	}
	if (!shareable(ds)) {
		*status = http_error(r, 403, "dataset '%s' is not shared (sharing class %s)", name,
				     cat_sharing_name(ds->sharing));
		return NULL;
	}
	if (strcmp(name, "devices") == 0) {
		*status = http_error(r, 403,
				     "the device registry is read at /api/v1/devices, with a "
				     "devices:CLASS resource");
		return NULL;
	}
	if (!apires_allows(&ka->res, APIRES_DATASET, name, NULL)) {
		*status = http_error(r, 403, "key '%s' may not read dataset '%s'", ka->name + 7,
				     name);
		return NULL;
	}
	return ds;
}

/* The scope of a request: ?scope= (inside the key's), or the key's own. */
static int scope_for(struct http_req *r, char out[SCOPE_MAX + 1])
{
	struct keyauth *ka = r->auth;
	char *s = http_query(r, "scope");
	char why[128];
	int st = 0;
	if (!s)
		snprintf(out, SCOPE_MAX + 1, "%s", ka->scope);
	else if (!scope_check(s, why, sizeof why))
		st = http_error(r, 400, "bad scope '%.64s': %s", s, why);
	else if (!scope_within(ka->scope, s))
		st = http_error(r, 403, "scope '%s' is outside the key's jurisdiction '%s'", s,
				ka->scope);
	else
		snprintf(out, SCOPE_MAX + 1, "%s", s);
	free(s);
	return st;
}

/* ---- routes ---- */

/*
 * Anyone may ask whether the node is up: "ok", or "degraded" with what is
 * (metrics_degraded: parts and states, never the reasons). Still 200 when
 * degraded — the node serves; a monitor reads the status.
 */
static int get_health(struct http_req *r, void *ud)
{
	(void)ud;
	struct kernel *k = r->k;
	json_t *deg = metrics_degraded(k);
	if (!deg)
		return http_error(r, 500, "out of memory");
	r->resp = json_pack("{s:s,s:s,s:s,s:s,s:I,s:o}", "status",
			    json_array_size(deg) ? "degraded" : "ok", "node", k->cfg.node_path,
			    "level", tier_level_name(k->cfg.node_level), "version", LINLI_VERSION,
			    "uptime_s", (json_int_t)((kernel_now_ms() - k->started_ms) / 1000),
			    "degraded", deg);
	return 200;
}

/*
 * GET /metrics: a key with the `metrics` resource whose jurisdiction covers
 * the node (the figures are the whole node's, as for `status`). A scrape is
 * not audited — a monitor asks every few seconds; refusals are.
 */
static int get_metrics(struct http_req *r, void *ud)
{
	(void)ud;
	struct keyauth *ka = r->auth;
	struct kernel *k = r->k;
	if (!apires_allows(&ka->res, APIRES_METRICS, NULL, NULL))
		return opendata_audited(r, ka->scope, "metrics", "denied",
					http_error(r, 403, "key '%s' may not read metrics",
						   ka->name + 7));
	if (!scope_within(ka->scope, k->cfg.node_path))
		return opendata_audited(
		    r, ka->scope, "metrics", "denied",
		    http_error(r, 403, "the metrics are the whole node's: key '%s' is bound to %s",
			       ka->name + 7, ka->scope));
	if (metrics_text(k, &r->text, &r->text_len) != 0)
		return http_error(r, 500, "out of memory");
	r->content_type = "text/plain; version=0.0.4; charset=utf-8";
	return 200;
}

extern const char linli_openapi_yaml[];
extern const size_t linli_openapi_yaml_len;

/* GET /api/v1/openapi.yaml: the API's description, as built into this daemon. */
static int get_openapi(struct http_req *r, void *ud)
{
	(void)ud;
	if (!(r->text = malloc(linli_openapi_yaml_len + 1)))
		return http_error(r, 500, "out of memory");
	memcpy(r->text, linli_openapi_yaml, linli_openapi_yaml_len + 1);
	r->text_len = linli_openapi_yaml_len;
	r->content_type = "application/yaml; charset=utf-8";
	return 200;
}

static const char *const type_names[] = {"?",	  "string", "integer", "float", "boolean",
					 "time", "enum",   "ref",     "geo"};

/* The datasets a key may read, in catalog order, one page (the cursor is the last name). */
static int get_datasets(struct http_req *r, void *ud)
{
	(void)ud;
	struct keyauth *ka = r->auth;
	const struct catalog *c = r->k->catalog;
	size_t limit;
	char *after;
	int st = page_params(r, &limit, &after);
	if (st) {
		free(after);
		return opendata_audited(r, ka->scope, "datasets", "denied", st);
	}
	json_t *arr = json_array();
	const char *last = NULL;
	bool more = false, skipping = after && *after;
	for (int i = 0; i < c->n_datasets; i++) {
		const struct cat_dataset *ds = &c->datasets[i];
		if (skipping) {
			skipping = strcmp(ds->name, after) != 0;
			continue;
		}
		if (!shareable(ds) || strcmp(ds->name, "devices") == 0 ||
		    !apires_allows(&ka->res, APIRES_DATASET, ds->name, NULL))
			continue;
		if (json_array_size(arr) == limit) {
			more = true;
			break;
		}
		json_t *fields = json_array();
		for (int f = 0; f < ds->n_fields; f++) {
			const struct cat_field *fl = &ds->fields[f];
			json_array_append_new(
			    fields,
			    json_pack("{s:s,s:s,s:b,s:b}", "name", fl->name, "type",
				      (unsigned)fl->type < 9 ? type_names[fl->type] : "?", "required",
				      fl->required, "indexed", fl->indexed));
			if (fl->sensitive != CAT_SENS_NONE)
				json_object_set_new(json_array_get(fields, (size_t)f), "sensitive",
						    json_true());
		}
		json_array_append_new(
		    arr, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:o}", "name", ds->name, "title_zh",
				   ds->title_zh, "title_en", ds->title_en, "owner", ds->owner,
				   "level", tier_level_name(ds->level), "sharing",
				   cat_sharing_name(ds->sharing), "fields", fields));
		last = ds->name;
	}
	if (skipping) {
		json_decref(arr);
		st = http_error(r, 400, "the cursor does not name a dataset of this catalog");
		free(after);
		return opendata_audited(r, ka->scope, "datasets", "denied", st);
	}
	free(after);
	r->resp = json_pack("{s:o,s:s?}", "datasets", arr, "cursor", more ? last : NULL);
	return opendata_audited(r, ka->scope, "datasets", "allowed", 200);
}

struct scanctx {
	msgpack_sbuffer buf;
	msgpack_packer pk;
	int n;
	const struct cat_dataset *mask;
	const struct apires_set *res; /* device_row: the key's resources */
};

static int scan_row(void *ud, const struct store_row *row)
{
	struct scanctx *c = ud;
	if (store_pack_record(&c->pk, row->id, row->scope, row->data, row->len, c->mask) == 0)
		c->n++;
	return c->buf.size >= (256u << 10);
}

/*
 * What a key sees of a device (sdk/openapi.yaml, Device): never its driver,
 * address, polling schedule or credential. Rows of classes the key was not
 * issued for are left out of the page (the cursor still moves past them).
 */
static const char *const device_public[] = {"class", "name", "state", "last_seen"};
#define N_DEVICE_PUBLIC (sizeof device_public / sizeof device_public[0])

static int device_row(void *ud, const struct store_row *row)
{
	struct scanctx *c = ud;
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	size_t off = 0;
	if (msgpack_unpack_next(&up, row->data, row->len, &off) == MSGPACK_UNPACK_SUCCESS &&
	    up.data.type == MSGPACK_OBJECT_MAP) {
		char cls[CAT_NAME_MAX + 1];
		const msgpack_object *v[N_DEVICE_PUBLIC];
		uint32_t n = 2;
		for (size_t i = 0; i < N_DEVICE_PUBLIC; i++)
			n += (v[i] = mp_get(&up.data, device_public[i])) != NULL;
		mp_copy_str(v[0], cls, sizeof cls);
		if (v[0] && apires_allows(c->res, APIRES_DEVICES, cls, NULL)) {
			msgpack_pack_map(&c->pk, n);
			mp_kv_str(&c->pk, "id", row->id);
			mp_kv_str(&c->pk, "scope", row->scope);
			for (size_t i = 0; i < N_DEVICE_PUBLIC; i++)
				if (v[i]) {
					mp_str(&c->pk, device_public[i]);
					msgpack_pack_object(&c->pk, *v[i]);
				}
			c->n++;
		}
	}
	msgpack_unpacked_destroy(&up);
	return c->buf.size >= (256u << 10);
}

/* Unpack the concatenated rows in c->buf into a JSON array. */
static json_t *rows_json(struct scanctx *c)
{
	json_t *arr = json_array();
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	size_t off = 0;
	while (msgpack_unpack_next(&up, c->buf.data, c->buf.size, &off) == MSGPACK_UNPACK_SUCCESS) {
		json_t *j = json_from_mp(&up.data);
		if (j)
			json_array_append_new(arr, j);
	}
	msgpack_unpacked_destroy(&up);
	return arr;
}

/* One page of q as {"records", "count", "cursor"}; rows through fn (scan_row if NULL). */
static int scan_to_page(struct http_req *r, const struct store_query *q,
			const struct cat_dataset *mask, const char *scope, const char *object,
			store_row_fn fn)
{
	struct scanctx c = {.mask = mask, .res = &((struct keyauth *)r->auth)->res};
	msgpack_sbuffer_init(&c.buf);
	msgpack_packer_init(&c.pk, &c.buf, msgpack_sbuffer_write);
	char cursor[STORE_CURSOR_MAX], err[512];
	int n = store_scan(r->k->store, q, fn ? fn : scan_row, &c, cursor, err, sizeof err);
	if (n < 0) {
		msgpack_sbuffer_destroy(&c.buf);
		int st = n == LINLI_EINVAL ? 400 : n == LINLI_ENOENT ? 404 : 500;
		http_error(r, st, "%s", err);
		return opendata_audited(r, scope, object, "denied", st);
	}
	json_t *recs = rows_json(&c);
	msgpack_sbuffer_destroy(&c.buf);
	r->resp = json_pack("{s:o,s:i,s:s?}", "records", recs, "count", c.n, "cursor",
			    cursor[0] ? cursor : NULL);
	return opendata_audited(r, scope, object, mask ? "masked" : "allowed", 200);
}

/*
 * ?where=FIELD=VALUE, repeatable (all must match); also FIELD<VALUE,
 * FIELD<=VALUE, FIELD>VALUE, FIELD>=VALUE on indexed numbers and times
 * (`<` and `>` percent-encoded or not). A key never holds the sensitive
 * grant, so a filter on a sensitive field would be an oracle on what it sees
 * masked: 403 naming the field. Fills f (whose strings point into f->vals
 * and f->fields; the caller frees vals); an http_error status or 0.
 */
struct filters {
	struct store_where w[STORE_MAX_WHERE];
	struct store_range rg[STORE_MAX_RANGE];
	int nw, nr, nv;
	char *vals[STORE_MAX_WHERE + STORE_MAX_RANGE];
	char fields[STORE_MAX_WHERE + STORE_MAX_RANGE][CAT_NAME_MAX + 1];
};

static int where_params(struct http_req *r, const struct cat_dataset *ds, struct filters *f)
{
	for (char *v; (v = http_query_at(r, "where", f->nv)) != NULL;) {
		if (f->nv == STORE_MAX_WHERE + STORE_MAX_RANGE) {
			free(v);
			return http_error(r, 400, "at most %d where filters",
					  STORE_MAX_WHERE + STORE_MAX_RANGE);
		}
		char *field = f->fields[f->nv];
		f->vals[f->nv++] = v;
		const char *op, *val;
		if (!store_parse_filter(v, field, &op, &val))
			return http_error(r, 400,
					  "where must be FIELD=VALUE, FIELD<VALUE, FIELD<=VALUE, "
					  "FIELD>VALUE or FIELD>=VALUE");
		const struct cat_field *fl = cat_dataset_field(ds, field, strlen(field));
		if (fl && fl->sensitive != CAT_SENS_NONE)
			return http_error(r, 403,
					  "field '%s' of %s is sensitive: an API key may not filter "
					  "on it",
					  field, ds->name);
		if (op[0] == '=') {
			if (f->nw == STORE_MAX_WHERE)
				return http_error(r, 400, "at most %d where FIELD=VALUE filters",
						  STORE_MAX_WHERE);
			f->w[f->nw++] = (struct store_where){field, val};
		} else {
			if (f->nr == STORE_MAX_RANGE)
				return http_error(r, 400, "at most %d range where filters",
						  STORE_MAX_RANGE);
			f->rg[f->nr++] = (struct store_range){field, op, val};
		}
	}
	return 0;
}

static int get_records(struct http_req *r, void *ud)
{
	(void)ud;
	int st = 0;
	const struct cat_dataset *ds = dataset_for(r, r->params[0], &st);
	if (!ds)
		return opendata_audited(r, ((struct keyauth *)r->auth)->scope, r->params[0], "denied", st);
	char scope[SCOPE_MAX + 1];
	if ((st = scope_for(r, scope)))
		return opendata_audited(r, ((struct keyauth *)r->auth)->scope, ds->name, "denied", st);
	struct filters f;
	f.nw = f.nr = f.nv = 0;
	char *cursor = NULL;
	size_t limit;
	if (!(st = page_params(r, &limit, &cursor)))
		st = where_params(r, ds, &f);
	if (!st) {
		struct store_query q = {.dataset = ds->name,
					.scope = scope,
					.where = f.nw ? f.w : NULL,
					.n_where = f.nw,
					.limit = limit,
					.cursor = cursor,
					.range = f.nr ? f.rg : NULL,
					.n_range = f.nr};
		st = scan_to_page(r, &q, store_has_sensitive(ds) ? ds : NULL, scope, ds->name, NULL);
	} else
		opendata_audited(r, scope, ds->name, "denied", st);
	for (int i = 0; i < f.nv; i++)
		free(f.vals[i]);
	free(cursor);
	return st;
}

static int get_record(struct http_req *r, void *ud)
{
	(void)ud;
	int st = 0;
	struct keyauth *ka = r->auth;
	const struct cat_dataset *ds = dataset_for(r, r->params[0], &st);
	if (!ds)
		return opendata_audited(r, ka->scope, r->params[0], "denied", st);
	/*
	 * ?scope= addresses the record exactly; without it the id is looked up
	 * within the key's jurisdiction, and an id several of its scopes hold
	 * is a 409 naming them (all inside the key's jurisdiction).
	 */
	char scope[SCOPE_MAX + 1], err[512];
	if ((st = scope_for(r, scope)))
		return opendata_audited(r, ka->scope, ds->name, "denied", st);
	char *exact = http_query(r, "scope");
	msgpack_sbuffer buf;
	msgpack_sbuffer_init(&buf);
	int rc = exact ? store_get_at(r->k->store, ds->name, scope, r->params[1], &buf, err,
				      sizeof err)
		       : store_get(r->k->store, ds->name, ka->scope, r->params[1], &buf, scope, err,
				   sizeof err);
	free(exact);
	if (rc) {
		msgpack_sbuffer_destroy(&buf);
		size_t n = strlen(err), na = strlen(STORE_AMBIGUOUS);
		if (rc == LINLI_EINVAL && n >= na && strcmp(err + n - na, STORE_AMBIGUOUS) == 0)
			st = http_error(r, 409, "%s with ?scope=PATH", err);
		else
			st = http_error(r, rc == LINLI_ENOENT || rc == LINLI_EINVAL ? 404 : 500,
					"no record '%s' of %s in %s", r->params[1], ds->name,
					scope);
		return opendata_audited(r, ka->scope, ds->name, "denied", st);
	}
	msgpack_sbuffer out;
	msgpack_packer pk;
	msgpack_sbuffer_init(&out);
	msgpack_packer_init(&pk, &out, msgpack_sbuffer_write);
	const struct cat_dataset *mask = store_has_sensitive(ds) ? ds : NULL;
	store_pack_record(&pk, r->params[1], scope, buf.data, buf.size, mask);
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	size_t off = 0;
	if (msgpack_unpack_next(&up, out.data, out.size, &off) == MSGPACK_UNPACK_SUCCESS)
		r->resp = json_from_mp(&up.data);
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&out);
	msgpack_sbuffer_destroy(&buf);
	return opendata_audited(r, scope, ds->name, mask ? "masked" : "allowed", 200);
}

/*
 * The devices of the key's classes within its scope (?scope=, ?class=), one
 * page. One class — asked for, or the key's only one — reads the class
 * index; otherwise the page leaves out the classes the key may not see.
 */
static int get_devices(struct http_req *r, void *ud)
{
	(void)ud;
	struct keyauth *ka = r->auth;
	int st = 0;
	if (!apires_allows(&ka->res, APIRES_DEVICES, NULL, NULL)) {
		st = http_error(r, 403, "key '%s' may not read devices (it needs devices:CLASS)",
				ka->name + 7);
		return opendata_audited(r, ka->scope, "devices", "denied", st);
	}
	char scope[SCOPE_MAX + 1];
	if ((st = scope_for(r, scope)))
		return opendata_audited(r, ka->scope, "devices", "denied", st);
	size_t limit;
	char *cursor = NULL, *cls = http_query(r, "class");
	if (!(st = page_params(r, &limit, &cursor)) && cls &&
	    !apires_allows(&ka->res, APIRES_DEVICES, cls, NULL))
		st = http_error(r, 403, "key '%s' may not read devices of class '%s'",
				ka->name + 7, cls);
	const char *only = cls;
	int classes = 0;
	for (int i = 0; !cls && i < ka->res.n; i++)
		if (ka->res.v[i].kind == APIRES_DEVICES) {
			classes++;
			only = strcmp(ka->res.v[i].name, "*") ? ka->res.v[i].name : NULL;
		}
	if (classes > 1)
		only = NULL;
	if (!st && !catalog_dataset(r->k->catalog, "devices")) {
		r->resp = json_pack("{s:[],s:i}", "devices", "count", 0);
		st = opendata_audited(r, scope, "devices", "allowed", 200);
	} else if (!st) {
		struct store_where w = {"class", only};
		struct store_query q = {.dataset = "devices",
					.scope = scope,
					.where = only ? &w : NULL,
					.n_where = only ? 1 : 0,
					.limit = limit,
					.cursor = cursor};
		st = scan_to_page(r, &q, NULL, scope, "devices", device_row);
		if (st == 200) { /* the page, under the name the API promises */
			json_object_set(r->resp, "devices", json_object_get(r->resp, "records"));
			json_object_del(r->resp, "records");
		}
	} else
		opendata_audited(r, scope, "devices", "denied", st);
	free(cls);
	free(cursor);
	return st;
}

/* ---- linli apikeys add | list | revoke ---- */

/* --resources LIST and --datasets A,B (each a dataset:NAME), merged into `out`. */
static int key_resources_arg(struct cmd_call *call, const char *res, const char *dsl,
			     struct apires_set *out)
{
	char text[APIRES_TEXT_MAX * 2] = "", copy[APIRES_TEXT_MAX];
	if (res && strlen(res) >= APIRES_TEXT_MAX)
		return cmd_fail(call, LINLI_EINVAL, "--resources: longer than %d bytes",
				APIRES_TEXT_MAX - 1);
	snprintf(text, sizeof text, "%s", res ? res : "");
	snprintf(copy, sizeof copy, "%s", dsl ? dsl : "");
	for (char *save, *t = strtok_r(copy, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
		if (strchr(t, ':'))
			return cmd_fail(call, LINLI_EINVAL,
					"--datasets takes dataset names; '%.40s' is a resource "
					"(use --resources)",
					t);
		snprintf(text + strlen(text), sizeof text - strlen(text), "%sdataset:%s",
			 text[0] ? "," : "", t);
	}
	int rc = apires_parse(text, out, call->err, sizeof call->err);
	if (!rc)
		rc = apires_validate(out, call->k->catalog, call->err, sizeof call->err);
	return rc;
}

static int cmd_apikeys_add(struct cmd_call *call, void *ud)
{
	(void)ud;
	struct kernel *k = call->k;
	const char *name = NULL, *scope = call->who->scope, *dsl = NULL, *resl = NULL;
	const char *role = "viewer";
	for (int i = 2; i < call->argc; i++) {
		if (strcmp(call->argv[i], "--scope") == 0 && i + 1 < call->argc)
			scope = call->argv[++i];
		else if (strcmp(call->argv[i], "--role") == 0 && i + 1 < call->argc)
			role = call->argv[++i];
		else if (strcmp(call->argv[i], "--datasets") == 0 && i + 1 < call->argc)
			dsl = call->argv[++i];
		else if (strcmp(call->argv[i], "--resources") == 0 && i + 1 < call->argc)
			resl = call->argv[++i];
		else if (!name && call->argv[i][0] != '-')
			name = call->argv[i];
		else
			return cmd_fail(call, LINLI_EINVAL, "unexpected '%.40s'", call->argv[i]);
	}
	if (!name || (!dsl && !resl))
		return cmd_fail(call, LINLI_EINVAL,
				"usage: apikeys add NAME --resources KIND:NAME,... [--datasets A,B] "
				"[--scope PATH] [--role viewer|operator]");
	if (strcmp(role, "viewer") != 0 && strcmp(role, "operator") != 0)
		return cmd_fail(call, LINLI_EINVAL,
				"--role '%.40s': a key is a viewer (the default) or an operator (what "
				"the plugin routes it reaches may write as it)",
				role);
	if (!store_id_ok(name) || strlen(name) > KEY_NAME_MAX)
		return cmd_fail(call, LINLI_EINVAL, "bad key name '%.40s'", name);
	char why[128];
	if (!scope_check(scope, why, sizeof why))
		return cmd_fail(call, LINLI_EINVAL, "bad --scope: %s", why);
	int rc = access_call(call, ACT_STORE_ADMIN, scope, "apikeys");
	if (rc)
		return rc;
	struct apires_set *res = malloc(sizeof *res);
	if (!res)
		return cmd_fail(call, LINLI_ENOMEM, "out of memory");
	if ((rc = key_resources_arg(call, resl, dsl, res))) {
		free(res);
		return rc;
	}
	/* `datasets` too, as keys were stored before resources: an older linlid reads that. */
	char text[APIRES_TEXT_MAX], list[APIRES_TEXT_MAX] = "";
	apires_format(res, text, sizeof text);
	for (int i = 0; i < res->n; i++)
		if (res->v[i].kind == APIRES_DATASET)
			snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
				 list[0] ? " " : "", res->v[i].name);
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	char err[512], id[STORE_ID_MAX + 1];
	if (store_get(k->store, "apikeys", NULL, name, &sb, NULL, err, sizeof err) == 0) {
		msgpack_sbuffer_destroy(&sb);
		free(res);
		return cmd_fail(call, LINLI_EEXIST, "a key named '%s' exists", name);
	}
	sb.size = 0;
	char key[65], hash[65];
	tier_token_new(key);
	key_hash(key, hash);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 7);
	mp_kv_str(&pk, "hash", hash);
	mp_kv_str(&pk, "role", role);
	mp_kv_str(&pk, "datasets", list);
	mp_kv_str(&pk, "resources", text);
	mp_kv_bool(&pk, "disabled", false);
	mp_kv_int(&pk, "created", wall_ms());
	mp_kv_str(&pk, "created_by", call->who->name);
	rc = store_put(k->store, "apikeys", scope, name, sb.data, sb.size, id, NULL, err,
		       sizeof err);
	msgpack_sbuffer_destroy(&sb);
	if (rc) {
		sodium_memzero(key, sizeof key);
		free(res);
		return cmd_fail(call, rc, "%s", err);
	}
	tiers_audit(k, call->who, "apikeys.add", scope, name, "allowed", text);
	msgpack_pack_map(&call->pk, 5);
	mp_kv_str(&call->pk, "name", name);
	mp_kv_str(&call->pk, "scope", scope);
	mp_kv_str(&call->pk, "role", role);
	mp_str(&call->pk, "resources");
	pack_resources(&call->pk, res);
	mp_kv_str(&call->pk, "key", key); /* shown once, never stored */
	sodium_memzero(key, sizeof key);
	free(res);
	return 0;
}

struct keylist {
	msgpack_sbuffer rows;
	msgpack_packer pk;
	int n;
	struct apires_set *res; /* scratch */
};

static int list_key(void *ud, const struct store_row *row)
{
	struct keylist *c = ud;
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	size_t off = 0;
	if (msgpack_unpack_next(&up, row->data, row->len, &off) == MSGPACK_UNPACK_SUCCESS) {
		const msgpack_object *dis = mp_get(&up.data, "disabled");
		key_resources(&up.data, row->id, c->res);
		char role[16] = "";
		mp_copy_str(mp_get(&up.data, "role"), role, sizeof role);
		msgpack_pack_map(&c->pk, 5);
		mp_kv_str(&c->pk, "name", row->id);
		mp_kv_str(&c->pk, "scope", row->scope);
		mp_kv_str(&c->pk, "role", role[0] ? role : "viewer");
		mp_str(&c->pk, "resources");
		pack_resources(&c->pk, c->res);
		mp_kv_bool(&c->pk, "revoked",
			   dis && dis->type == MSGPACK_OBJECT_BOOLEAN && dis->via.boolean);
		c->n++;
	}
	msgpack_unpacked_destroy(&up);
	return 0;
}

static int cmd_apikeys_list(struct cmd_call *call, void *ud)
{
	(void)ud;
	struct keylist c = {.res = malloc(sizeof *c.res)};
	if (!c.res)
		return cmd_fail(call, LINLI_ENOMEM, "out of memory");
	msgpack_sbuffer_init(&c.rows);
	msgpack_packer_init(&c.pk, &c.rows, msgpack_sbuffer_write);
	struct store_query q = {.dataset = "apikeys", .scope = call->who->scope,
				.limit = STORE_SCAN_MAX};
	char cursor[STORE_CURSOR_MAX];
	int rc = store_scan(call->k->store, &q, list_key, &c, cursor, call->err, sizeof call->err);
	if (rc >= 0) {
		msgpack_pack_array(&call->pk, (size_t)c.n);
		msgpack_sbuffer_write(&call->data, c.rows.data, c.rows.size);
	}
	msgpack_sbuffer_destroy(&c.rows);
	free(c.res);
	return rc < 0 ? rc : 0;
}

struct revoke {
	char err[128];
};

static int do_revoke(void *ud, const msgpack_object *old, msgpack_packer *out, char *err,
		     size_t errlen)
{
	(void)ud;
	if (!old) {
		snprintf(err, errlen, "no such key");
		return LINLI_ENOENT;
	}
	msgpack_pack_map(out, old->via.map.size + (mp_get(old, "disabled") ? 0 : 1));
	for (uint32_t i = 0; i < old->via.map.size; i++) {
		msgpack_pack_object(out, old->via.map.ptr[i].key);
		if (mp_eq(&old->via.map.ptr[i].key, "disabled"))
			msgpack_pack_true(out);
		else
			msgpack_pack_object(out, old->via.map.ptr[i].val);
	}
	if (!mp_get(old, "disabled"))
		mp_kv_bool(out, "disabled", true);
	return 0;
}

static int cmd_apikeys_revoke(struct cmd_call *call, void *ud)
{
	(void)ud;
	if (call->argc != 3)
		return cmd_fail(call, LINLI_EINVAL, "usage: apikeys revoke NAME");
	char scope[SCOPE_MAX + 1], err[256];
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	int rc = store_get(call->k->store, "apikeys", NULL, call->argv[2], &sb, scope, err,
			   sizeof err);
	msgpack_sbuffer_destroy(&sb);
	if (rc)
		return cmd_fail(call, LINLI_ENOENT, "no key '%.40s'", call->argv[2]);
	if ((rc = access_call(call, ACT_STORE_ADMIN, scope, "apikeys")))
		return rc;
	rc = store_update(call->k->store, "apikeys", scope, call->argv[2], do_revoke, NULL,
			  call->err, sizeof call->err);
	if (rc)
		return rc;
	tiers_audit(call->k, call->who, "apikeys.revoke", scope, call->argv[2], "allowed", NULL);
	msgpack_pack_map(&call->pk, 2);
	mp_kv_str(&call->pk, "name", call->argv[2]);
	mp_kv_bool(&call->pk, "revoked", true);
	return 0;
}

const struct tier_principal *opendata_key(const struct http_req *r, const char **scope,
					  const struct apires_set **res)
{
	const struct keyauth *ka = r->auth;
	if (!ka)
		return NULL;
	if (scope)
		*scope = ka->scope;
	if (res)
		*res = &ka->res;
	return &ka->p;
}

int opendata_register(struct kernel *k, struct http *h)
{
	od.k = k;
	int rc = 0;
	if (h) {
		http_set_auth(h, authenticate, NULL);
		http_set_audit(h, audit_refusal, NULL);
		rc = http_route(h, "GET", "/api/v1/health", false, get_health, NULL);
		if (!rc)
			rc = http_route(h, "GET", "/api/v1/openapi.yaml", false, get_openapi, NULL);
		if (!rc)
			rc = http_route(h, "GET", "/metrics", true, get_metrics, NULL);
		if (!rc)
			rc = http_route(h, "GET", "/api/v1/datasets", true, get_datasets, NULL);
		if (!rc)
			rc = http_route(h, "GET", "/api/v1/datasets/{}/records", true, get_records,
					NULL);
		if (!rc)
			rc = http_route(h, "GET", "/api/v1/datasets/{}/records/{}", true,
					get_record, NULL);
		if (!rc)
			rc = http_route(h, "GET", "/api/v1/devices", true, get_devices, NULL);
		if (!rc) /* and /api/v1/applications, handed to the services plugin */
			rc = approutes_register(k, h);
		if (!rc) /* the community big screen: /screen/... */
			rc = screen_register(k, h);
	}
	return rc;
}

int opendata_register_cmds(struct kernel *k)
{
	int rc = cmd_register(k->cmds, "apikeys", "add",
			      "NAME --resources KIND:NAME,... [--datasets A,B] [--scope PATH]",
			      "issue an open-data API key (shown once)", cmd_apikeys_add, NULL, &od);
	if (!rc)
		rc = cmd_register(k->cmds, "apikeys", "list", "", "the API keys of this jurisdiction",
				  cmd_apikeys_list, NULL, &od);
	if (!rc)
		rc = cmd_register(k->cmds, "apikeys", "revoke", "NAME", "revoke an API key",
				  cmd_apikeys_revoke, NULL, &od);
	return rc;
}

void opendata_close(void)
{
	screen_close();
	while (od.buckets) {
		struct bucket *b = od.buckets;
		od.buckets = b->next;
		free(b);
	}
}
