/*
 * store_api — see store_api.h.
 *
 * The work is done by the *_as calls for a struct store_actor; the members
 * of the C table are thin wrappers that make the actor of the calling
 * plugin (plug_principal: the principal plug_authorize checks) and adapt
 * the callbacks to the plugin's ctx. Script plugins and rules come through
 * script_api.c with their own actors, so every check below serves both.
 *
 * Each call starts with call_begin, which clears the actor's last error
 * and resolves the scope (NULL: the actor's node), and then authorizes the
 * action on that scope and dataset. Refusals set the last error with
 * failf; access refusals are also logged under the actor's name, as the
 * bus members do.
 *
 * A scan collects its page (ids, scopes, records and their keys) into one
 * buffer inside the store's read, then ends the read and hands the rows to
 * the plugin. Had the rows been handed over inside the read, a write from
 * the row callback would end the kernel thread's shared read transaction
 * under the running cursor. When the callback ends the page early, the
 * cursor is rebuilt from the kept key of its last row (store_cursor_after).
 */
#include "store_api.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "catalog.h"
#include "kernel.h"
#include "log.h"
#include "plugin.h"
#include "record.h"
#include "scope.h"
#include "store.h"
#include "store_cmds.h"
#include "access.h"
#include "tier_store.h"
#include "watchdog.h"

_Static_assert(LINLI_ID_MAX == STORE_ID_MAX, "linli/store.h and store.h disagree on ids");
_Static_assert(LINLI_SCOPE_MAX == SCOPE_MAX, "linli/store.h and scope.h disagree on scopes");
_Static_assert(LINLI_CURSOR_MAX == STORE_CURSOR_MAX, "cursor sizes differ");
_Static_assert(LINLI_SCAN_MAX == STORE_SCAN_MAX, "scan limits differ");
_Static_assert(LINLI_MAX_WHERE == STORE_MAX_WHERE, "filter limits differ");
_Static_assert(LINLI_MAX_RANGE == STORE_MAX_RANGE, "range filter limits differ");

#define SCAN_MAX_BYTES (4u << 20) /* a page ends once its records reach this */
/* The part of struct linli_query that SDK 1.0 defines. */
#define QUERY_SIZE_1_0 (offsetof(struct linli_query, cursor) + sizeof(const char *))

struct call {
	const struct store_actor *a;
	struct kernel *k;
	struct plug_store_state *st;
	const char *scope; /* resolved: never NULL after call_begin succeeded */
	bool exact;	   /* the caller named the scope: a record is addressed exactly there */
	bool inherited;	   /* a read above the caller of a dataset that comes down: the
			      records at that scope itself only (access_inherited) */
};

__attribute__((format(printf, 3, 4))) static int failf(struct call *c, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->st->last_error, sizeof c->st->last_error, fmt, ap);
	va_end(ap);
	return rc;
}

/* Keep the store's message `err` for code rc (or the code's phrase). */
static int fail_with(struct call *c, int rc, const char *err)
{
	return failf(c, rc, "%s", err && *err ? err : linli_strerror(rc));
}

static void call_init(const struct store_actor *a, struct call *c)
{
	c->a = a;
	c->k = a->k;
	c->st = a->st;
	c->st->last_error[0] = '\0';
	c->scope = a->who->scope;
	c->exact = false;
	c->inherited = false;
}

/* Check the common arguments of a store call on `scope` (NULL: the actor's node). */
static int call_check(struct call *c, const char *what, const char *dataset, const char *scope)
{
	if (scope) {
		c->scope = scope;
		c->exact = true;
	}
	if (!c->k->store)
		return failf(c, LINLI_ESTATE, "%s: this node has no store open", what);
	if (!dataset || !*dataset)
		return failf(c, LINLI_EINVAL, "%s: no dataset given", what);
	const struct cat_dataset *ds = catalog_dataset(c->k->catalog, dataset);
	if (ds && ds->system)
		return failf(c, LINLI_EPERM,
			     "%s: dataset '%s' is kept by the kernel itself; plugins and scripts "
			     "cannot reach it",
			     what, dataset);
	char why[128];
	if (!scope_check(c->scope, why, sizeof why))
		return failf(c, LINLI_EINVAL, "%s %s: bad scope '%.300s': %s", what, dataset,
			     c->scope, why);
	return 0;
}

static int call_begin(const struct store_actor *a, const char *what, const char *dataset,
		      const char *scope, struct call *c)
{
	call_init(a, c);
	return call_check(c, what, dataset, scope);
}

static int authorize(struct call *c, enum tier_action act, const char *what, const char *dataset)
{
	const struct cat_dataset *ds = catalog_dataset(c->k->catalog, dataset);
	if (ds && ds->written_by && act != ACT_DATA_READ)
		return failf(c, LINLI_EPERM,
			     "%s %s: the dataset is written by the kernel's '%s' layer only; "
			     "plugins and scripts read it",
			     what, dataset, ds->written_by);
	char err[512];
	const char *own = access_inherited(c->k, c->a->who, act, dataset, c->scope);
	c->inherited = own != NULL;
	int rc = access_check(c->k, c->a->who, act, own ? own : c->scope, dataset, err, sizeof err);
	if (rc) {
		log_warn(c->a->log_name, "%s %s: %s", what, dataset, err);
		return failf(c, rc, "%s %s: %s", what, dataset, err);
	}
	return 0;
}

/* Writes are refused while one of the actor's update callbacks runs. */
static int no_update_running(struct call *c, const char *what)
{
	if (c->st->in_update > 0)
		return failf(c, LINLI_ESTATE,
			     "%s: not allowed inside a store_update callback (it may only read; "
			     "what it returns is written)",
			     what);
	return 0;
}

/* ---- sensitive fields ----
 *
 * A plugin or script reads a dataset's sensitive fields (the catalog marks
 * them) in clear only with the capability "sensitive" or
 * "sensitive:DATASET", as an account needs the grant; otherwise they are
 * masked like the console masks them. Every read of such a dataset is
 * audited, allowed or masked.
 */

static enum mask_kind mask_of(enum cat_sensitive s)
{
	switch (s) {
	case CAT_SENS_ID_NUMBER:
		return MASK_ID_NUMBER;
	case CAT_SENS_PHONE:
		return MASK_PHONE;
	case CAT_SENS_NAME:
		return MASK_NAME;
	case CAT_SENS_ADDRESS:
		return MASK_ADDRESS;
	case CAT_SENS_HEALTH:
		return MASK_HEALTH;
	default:
		return MASK_NONE;
	}
}

/* Audit a read of `dataset`; the dataset to mask with, or NULL when the actor sees all. */
static const struct cat_dataset *read_policy(struct call *c, const char *dataset,
					     const char *scope, const char *what)
{
	const struct cat_dataset *ds = catalog_dataset(c->k->catalog, dataset);
	bool sensitive = false;
	for (int i = 0; ds && i < ds->n_fields; i++)
		sensitive |= ds->fields[i].sensitive != CAT_SENS_NONE;
	if (!sensitive)
		return NULL;
	bool sees = tier_sees_sensitive(c->a->who, dataset);
	tiers_audit(c->k, c->a->who, "data.read", scope, dataset, sees ? "allowed" : "masked",
		    what);
	return sees ? NULL : ds;
}

/* Mask r's sensitive fields: strings keep what their rule allows, other values become "***". */
static int mask_record(linli_record *r, const struct cat_dataset *ds)
{
	for (int i = 0; ds && i < ds->n_fields; i++) {
		const struct cat_field *f = &ds->fields[i];
		if (f->sensitive == CAT_SENS_NONE || !record_has(r, f->name))
			continue;
		const char *v;
		size_t n;
		char masked[1024] = "***";
		if (record_get_str(r, f->name, &v, &n) == 0)
			tier_mask(mask_of(f->sensitive), v, n, masked, sizeof masked);
		int rc = record_set_str(r, f->name, masked);
		if (rc)
			return rc;
	}
	return 0;
}

/* Copy field `key` of src (any type) into dst. */
static int copy_field(linli_record *dst, linli_record *src, const char *key)
{
	const char *str;
	const void *bin;
	size_t n;
	int64_t i;
	double d;
	bool b;
	linli_record *child;
	int rc;
	switch (record_type(src, key)) {
	case LINLI_T_STR:
		rc = record_get_str(src, key, &str, &n);
		return rc ? rc : record_set_strn(dst, key, str, n);
	case LINLI_T_BIN:
		rc = record_get_bin(src, key, &bin, &n);
		return rc ? rc : record_set_bin(dst, key, bin, n);
	case LINLI_T_INT:
		rc = record_get_int(src, key, &i);
		return rc ? rc : record_set_int(dst, key, i);
	case LINLI_T_FLOAT:
		rc = record_get_float(src, key, &d);
		return rc ? rc : record_set_float(dst, key, d);
	case LINLI_T_BOOL:
		rc = record_get_bool(src, key, &b);
		return rc ? rc : record_set_bool(dst, key, b);
	case LINLI_T_MAP:
		rc = record_get_map(src, key, &child);
		return rc ? rc : record_set_record(dst, key, child);
	case LINLI_T_ARRAY:
		rc = record_get_array(src, key, &child);
		return rc ? rc : record_set_record(dst, key, child);
	case LINLI_T_NIL:
		return record_set_nil(dst, key);
	default:
		return LINLI_ETYPE;
	}
}

/*
 * After an update callback that saw masked values: a sensitive field it left
 * exactly as shown keeps its stored value, so that changing other fields
 * never writes a mask into the store. A field it changed is written as given.
 */
static int unmask_unchanged(linli_record *rec, const linli_record *shown, linli_record *stored,
			    const struct cat_dataset *ds)
{
	for (int i = 0; i < ds->n_fields; i++) {
		const char *key = ds->fields[i].name, *a, *b;
		size_t an, bn;
		if (ds->fields[i].sensitive == CAT_SENS_NONE ||
		    record_get_str(shown, key, &a, &an) != 0 ||
		    record_get_str(rec, key, &b, &bn) != 0 || an != bn || memcmp(a, b, an) != 0)
			continue;
		int rc = copy_field(rec, stored, key);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- get, put, delete ---- */

int store_api_get_as(const struct store_actor *a, const char *dataset, const char *scope,
		     const char *id, linli_record **rec, char *scope_out)
{
	struct call c;
	if (rec)
		*rec = NULL;
	int rc = call_begin(a, "store_get", dataset, scope, &c);
	if (rc)
		return rc;
	if (!rec)
		return failf(&c, LINLI_EINVAL, "store_get %s: rec is NULL", dataset);
	if ((rc = authorize(&c, ACT_DATA_READ, "store_get", dataset)))
		return rc;
	msgpack_sbuffer buf;
	msgpack_sbuffer_init(&buf);
	char err[768] = "", where[SCOPE_MAX + 1];
	snprintf(where, sizeof where, "%s", c.scope);
	rc = c.exact ? store_get_at(c.k->store, dataset, c.scope, id, &buf, err, sizeof err)
		     : store_get(c.k->store, dataset, c.scope, id, &buf, where, err, sizeof err);
	if (rc == 0) {
		rc = record_from_bytes(buf.data, buf.size, rec, err, sizeof err);
		const struct cat_dataset *mask = rc ? NULL : read_policy(&c, dataset, where, id);
		if (rc) {
			*rec = NULL;
			rc = failf(&c, LINLI_ECORRUPT, "%s: stored record '%s' is unreadable: %s",
				   dataset, id, err);
		} else if (mask && (rc = mask_record(*rec, mask)) != 0) {
			record_free(*rec);
			*rec = NULL;
			failf(&c, rc, "%s: cannot mask record '%s'", dataset, id);
		} else if (scope_out)
			memcpy(scope_out, where, strlen(where) + 1);
	} else
		fail_with(&c, rc, err);
	msgpack_sbuffer_destroy(&buf);
	return rc;
}

/* Does the packed value at p start with a map? */
static bool packed_map(const void *p)
{
	unsigned char b = *(const unsigned char *)p;
	return (b >= 0x80 && b <= 0x8f) || b == 0xde || b == 0xdf;
}

int store_api_put_as(const struct store_actor *a, const char *dataset, const char *scope,
		     const char *id, const void *rec, size_t len, char *id_out, bool *created)
{
	struct call c;
	int rc = call_begin(a, "store_put", dataset, scope, &c);
	if (rc || (rc = no_update_running(&c, "store_put")) ||
	    (rc = authorize(&c, ACT_DATA_WRITE, "store_put", dataset)))
		return rc;
	char err[768] = "", nid[STORE_ID_MAX + 1];
	bool fresh = false;
	if (!rec || !len || !packed_map(rec))
		return failf(&c, LINLI_EINVAL, "store_put %s: the record must be a map", dataset);
	rc = store_put(c.k->store, dataset, c.scope, id, rec, len, nid, &fresh, err, sizeof err);
	if (rc)
		return fail_with(&c, rc, err);
	if (id_out)
		memcpy(id_out, nid, strlen(nid) + 1);
	if (created)
		*created = fresh;
	return 0;
}

int store_api_delete_as(const struct store_actor *a, const char *dataset, const char *scope,
			const char *id)
{
	struct call c;
	int rc = call_begin(a, "store_delete", dataset, scope, &c);
	if (rc || (rc = no_update_running(&c, "store_delete")) ||
	    (rc = authorize(&c, ACT_DATA_DELETE, "store_delete", dataset)))
		return rc;
	char err[768] = "";
	rc = c.exact ? store_delete_at(c.k->store, dataset, c.scope, id, err, sizeof err)
		     : store_delete(c.k->store, dataset, c.scope, id, err, sizeof err);
	return rc ? fail_with(&c, rc, err) : 0;
}

/* ---- scan ---- */

struct kept_row {
	size_t id, scope, data, key; /* offsets in the page buffer */
	size_t data_len, key_len;
};

struct page {
	msgpack_sbuffer buf; /* ids, scopes (NUL-terminated), records, keys */
	struct kept_row *rows;
	size_t n, cap;
	bool oom;
};

static size_t page_add(struct page *pg, const void *p, size_t n)
{
	size_t at = pg->buf.size;
	if (msgpack_sbuffer_write(&pg->buf, p, n) != 0)
		pg->oom = true;
	return at;
}

static int keep_row(void *ud, const struct store_row *row)
{
	struct page *pg = ud;
	if (pg->n == pg->cap) {
		size_t cap = pg->cap ? pg->cap * 2 : 64;
		struct kept_row *v = realloc(pg->rows, cap * sizeof *v);
		if (!v) {
			pg->oom = true;
			return 1;
		}
		pg->rows = v;
		pg->cap = cap;
	}
	struct kept_row *r = &pg->rows[pg->n++];
	r->id = page_add(pg, row->id, strlen(row->id) + 1);
	r->scope = page_add(pg, row->scope, strlen(row->scope) + 1);
	r->data = page_add(pg, row->data, row->len);
	r->data_len = row->len;
	r->key = page_add(pg, row->key, row->key_len);
	r->key_len = row->key_len;
	return pg->oom || pg->buf.size >= SCAN_MAX_BYTES;
}

/* Check the actor's query and copy it into q (a newer plugin's extra fields are ignored). */
static int take_query(struct call *c, const struct linli_query *in, struct linli_query *q)
{
	memset(q, 0, sizeof *q);
	if (!in || in->size < QUERY_SIZE_1_0)
		return failf(c, LINLI_EINVAL,
			     "store_scan: the query's size is %u; set it to sizeof(struct "
			     "linli_query)",
			     in ? in->size : 0);
	memcpy(q, in, in->size < sizeof *q ? in->size : sizeof *q);
	if (q->n_where < 0 || q->n_where > LINLI_MAX_WHERE || (q->n_where && !q->where))
		return failf(c, LINLI_EINVAL, "store_scan %s: %d filters (0..%d, with where set)",
			     q->dataset ? q->dataset : "", q->n_where, LINLI_MAX_WHERE);
	for (int i = 0; i < q->n_where; i++)
		if (!q->where[i].field || !q->where[i].value)
			return failf(c, LINLI_EINVAL, "store_scan %s: filter %d lacks a %s",
				     q->dataset ? q->dataset : "", i,
				     q->where[i].field ? "value" : "field");
	if (q->n_range < 0 || q->n_range > LINLI_MAX_RANGE || (q->n_range && !q->range))
		return failf(c, LINLI_EINVAL,
			     "store_scan %s: %d range filters (0..%d, with range set)",
			     q->dataset ? q->dataset : "", q->n_range, LINLI_MAX_RANGE);
	for (int i = 0; i < q->n_range; i++)
		if (!q->range[i].field || !q->range[i].op || !q->range[i].value)
			return failf(c, LINLI_EINVAL, "store_scan %s: range filter %d lacks a %s",
				     q->dataset ? q->dataset : "", i,
				     !q->range[i].field ? "field"
				     : !q->range[i].op  ? "op"
							: "value");
	if (q->limit > LINLI_SCAN_MAX)
		return failf(c, LINLI_EINVAL, "store_scan %s: limit %zu is above %d",
			     q->dataset ? q->dataset : "", q->limit, LINLI_SCAN_MAX);
	if (!q->limit)
		q->limit = LINLI_SCAN_DEFAULT;
	return 0;
}

/* Hand the kept rows to fn; sets *stop_at to the row that ended the page, or -1. */
static int deliver(struct call *c, const char *dataset, const struct cat_dataset *mask,
		   struct page *pg, store_row_as_fn fn, void *ud, long *stop_at)
{
	*stop_at = -1;
	for (size_t i = 0; i < pg->n; i++) {
		const struct kept_row *kr = &pg->rows[i];
		linli_record *r = NULL;
		char err[256];
		const char *id = pg->buf.data + kr->id;
		if (record_from_bytes(pg->buf.data + kr->data, kr->data_len, &r, err, sizeof err))
			return failf(c, LINLI_ECORRUPT, "%s: stored record '%s' is unreadable: %s",
				     dataset, id, err);
		if (mask && mask_record(r, mask) != 0) {
			record_free(r);
			return failf(c, LINLI_ENOMEM, "%s: cannot mask record '%s'", dataset, id);
		}
		struct linli_row row = {
		    .size = sizeof row, .id = id, .scope = pg->buf.data + kr->scope, .record = r};
		int rc = fn(ud, &row);
		record_free(r);
		if (rc) {
			*stop_at = (long)i;
			if (rc < 0)
				return rc;
			break;
		}
	}
	return 0;
}

int store_api_scan_as(const struct store_actor *a, const struct linli_query *in, store_row_as_fn fn,
		      void *ud, char *cursor_out)
{
	struct call c;
	struct linli_query q;
	char from[STORE_CURSOR_MAX];
	call_init(a, &c);
	int rc = take_query(&c, in, &q);
	/* cursor_out may be q->cursor's own buffer: read it before writing there. */
	if (!rc && q.cursor && strlen(q.cursor) >= sizeof from)
		rc = failf(&c, LINLI_EINVAL, "store_scan %s: the cursor is longer than %d bytes",
			   q.dataset ? q.dataset : "", STORE_CURSOR_MAX - 1);
	if (!rc && q.cursor) {
		memcpy(from, q.cursor, strlen(q.cursor) + 1);
		q.cursor = from;
	}
	if (cursor_out)
		cursor_out[0] = '\0';
	if (rc || (rc = call_check(&c, "store_scan", q.dataset, q.scope)) ||
	    (rc = authorize(&c, ACT_DATA_READ, "store_scan", q.dataset)))
		return rc;
	struct store_where where[STORE_MAX_WHERE];
	for (int i = 0; i < q.n_where; i++)
		where[i] = (struct store_where){q.where[i].field, q.where[i].value};
	struct store_range range[STORE_MAX_RANGE];
	for (int i = 0; i < q.n_range; i++)
		range[i] = (struct store_range){q.range[i].field, q.range[i].op, q.range[i].value};
	char werr[512];
	if ((rc = store_where_allowed(c.k, a->who, q.dataset, c.scope, where, q.n_where, range,
				      q.n_range, werr, sizeof werr))) {
		log_warn(a->log_name, "store_scan %s", werr);
		return failf(&c, rc, "store_scan %s", werr);
	}
	struct store_query sq = {
	    .dataset = q.dataset,
	    .scope = c.scope,
	    .where = where,
	    .n_where = q.n_where,
	    .range = range,
	    .n_range = q.n_range,
	    .limit = q.limit,
	    .cursor = q.cursor,
	    .exact = c.inherited,
	};
	struct page pg = {.n = 0};
	msgpack_sbuffer_init(&pg.buf);
	char cursor[STORE_CURSOR_MAX], err[768] = "";
	int n = store_scan(c.k->store, &sq, keep_row, &pg, cursor, err, sizeof err);
	long stop_at = -1;
	if (n < 0)
		rc = fail_with(&c, n, err);
	else if (pg.oom)
		rc =
		    failf(&c, LINLI_ENOMEM, "store_scan %s: out of memory for the page", q.dataset);
	else if (fn && pg.n)
		rc = deliver(&c, q.dataset, read_policy(&c, q.dataset, c.scope, "scan"), &pg, fn, ud,
			     &stop_at);
	if (rc == 0 || stop_at >= 0) {
		/* A page ended early continues after the last row handed over. */
		if (stop_at >= 0 && (size_t)stop_at + 1 < pg.n)
			store_cursor_after(pg.buf.data + pg.rows[stop_at].key,
					   pg.rows[stop_at].key_len, cursor);
		if (cursor_out)
			memcpy(cursor_out, cursor, strlen(cursor) + 1);
	}
	if (rc < 0 && stop_at >= 0)
		failf(&c, rc, "store_scan %s: the row callback returned %d (%s)", q.dataset, rc,
		      linli_strerror(rc));
	else if (rc == 0)
		c.st->last_error[0] = '\0'; /* the callback's own calls do not count */
	size_t delivered = stop_at >= 0 ? (size_t)stop_at + 1 : pg.n;
	free(pg.rows);
	msgpack_sbuffer_destroy(&pg.buf);
	return rc < 0 ? rc : (int)delivered;
}

/* ---- read-modify-write ---- */

struct upd {
	struct call *c;
	const char *dataset, *id;
	store_update_as_fn fn;
	void *ud;
	const struct cat_dataset *mask; /* the callback sees this dataset's sensitive fields masked */
};

/* The store's update step: the actor's callback between a record and its packing. */
static int upd_step(void *arg, const msgpack_object *old, msgpack_packer *out, char *err,
		    size_t errlen)
{
	struct upd *u = arg;
	struct call *c = u->c;
	linli_record *orig = NULL;
	char e[256];
	if (old && record_from_mp(old, &orig, e, sizeof e) != 0) {
		snprintf(err, errlen, "%s: stored record '%s' is unreadable: %s", u->dataset, u->id,
			 e);
		return LINLI_ECORRUPT;
	}
	/* given: what the callback gets (orig, or a masked copy); shown: its masked values. */
	linli_record *given = orig, *shown = NULL;
	if (orig && u->mask) {
		given = NULL;
		if (record_copy(orig, &given) || mask_record(given, u->mask) ||
		    record_copy(given, &shown)) {
			record_free(given);
			record_free(orig);
			snprintf(err, errlen, "%s: cannot mask record '%s'", u->dataset, u->id);
			return LINLI_ENOMEM;
		}
	}
	linli_record *rec = given;
	char perr[512] = "";
	c->st->in_update++;
	int rc = u->fn(u->ud, u->id, &rec, perr, sizeof perr);
	c->st->in_update--;
	if (rc < 0)
		snprintf(err, errlen, "%s",
			 perr[0] ? perr : "the update callback refused without a message");
	else if (rc == 0 && rec && shown && record_kind(rec) == LINLI_T_MAP &&
		 unmask_unchanged(rec, shown, orig, u->mask) != 0) {
		snprintf(err, errlen, "%s: cannot restore the masked fields of '%s'", u->dataset,
			 u->id);
		rc = LINLI_ENOMEM;
	} else if (rc == LINLI_STORE_KEEP)
		rc = STORE_KEEP;
	else if (rc == LINLI_STORE_DELETE)
		rc = STORE_DELETE;
	else if (rc != 0) {
		snprintf(err, errlen, "%s: the update callback of '%s' returned %d", u->dataset,
			 u->id, rc);
		rc = LINLI_EINVAL;
	} else if (!rec || record_kind(rec) != LINLI_T_MAP) {
		snprintf(err, errlen, "%s: the update callback of '%s' returned 0 without %s",
			 u->dataset, u->id, rec ? "a map" : "a record");
		rc = LINLI_EINVAL;
	} else if (record_pack(rec, out) != 0) {
		snprintf(err, errlen, "%s: the record of '%s' cannot be packed", u->dataset, u->id);
		rc = LINLI_EINVAL;
	}
	if (rec != given)
		record_free(rec);
	if (given != orig)
		record_free(given);
	record_free(shown);
	record_free(orig);
	return rc;
}

int store_api_update_as(const struct store_actor *a, const char *dataset, const char *scope,
			const char *id, store_update_as_fn fn, void *ud)
{
	struct call c;
	int rc = call_begin(a, "store_update", dataset, scope, &c);
	if (rc || (rc = no_update_running(&c, "store_update")))
		return rc;
	if (!fn)
		return failf(&c, LINLI_EINVAL, "store_update %s: fn is NULL", dataset);
	/* The callback sees the old record: reading is part of the deal. */
	if ((rc = authorize(&c, ACT_DATA_READ, "store_update", dataset)) ||
	    (rc = authorize(&c, ACT_DATA_WRITE, "store_update", dataset)))
		return rc;
	struct upd u = {&c, dataset, id, fn, ud, read_policy(&c, dataset, c.scope, id)};
	char err[768] = "";
	rc = c.exact
		 ? store_update_at(c.k->store, dataset, c.scope, id, upd_step, &u, err, sizeof err)
		 : store_update(c.k->store, dataset, c.scope, id, upd_step, &u, err, sizeof err);
	if (rc)
		return fail_with(&c, rc, err);
	c.st->last_error[0] = '\0'; /* the callback's own calls do not count */
	return 0;
}

/* ---- the members of the C table: the calling plugin as the actor ---- */

struct plugin_actor {
	struct store_actor a;
	struct plugin *p;
	struct tier_principal who;
	const char *grants[LINLI_MAX_CAPS + 1];
};

/* The actor of the plugin behind ctx: the principal plug_authorize checks. */
static const struct store_actor *plugin_actor(linli_ctx *ctx, struct plugin_actor *pa)
{
	pa->p = plug_from_ctx(ctx);
	plug_principal(pa->p, &pa->who, pa->grants);
	pa->a = (struct store_actor){plug_kernel(pa->p), &pa->who, plug_name(pa->p),
				     plug_store_state(pa->p)};
	return &pa->a;
}

int store_api_get(linli_ctx *ctx, const char *dataset, const char *scope, const char *id,
		  linli_record **rec, char *scope_out)
{
	struct plugin_actor pa;
	return store_api_get_as(plugin_actor(ctx, &pa), dataset, scope, id, rec, scope_out);
}

int store_api_put(linli_ctx *ctx, const char *dataset, const char *scope, const char *id,
		  const linli_record *rec, char *id_out, bool *created)
{
	struct plugin_actor pa;
	const struct store_actor *a = plugin_actor(ctx, &pa);
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	int rc = 0;
	/* Not a map: the call refuses it (after its checks) with its message. */
	if (rec && record_kind(rec) == LINLI_T_MAP && record_pack(rec, &pk) != 0) {
		rc = LINLI_ENOMEM;
		snprintf(a->st->last_error, sizeof a->st->last_error,
			 "store_put %s: the record cannot be packed", dataset ? dataset : "");
	}
	if (!rc)
		rc = store_api_put_as(a, dataset, scope, id, sb.data, sb.size, id_out, created);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

int store_api_delete(linli_ctx *ctx, const char *dataset, const char *scope, const char *id)
{
	struct plugin_actor pa;
	return store_api_delete_as(plugin_actor(ctx, &pa), dataset, scope, id);
}

struct prow {
	linli_ctx *ctx;
	linli_row_fn fn;
	void *ud;
};

static int prow_fn(void *ud, const struct linli_row *row)
{
	struct prow *r = ud;
	return r->fn(r->ctx, row, r->ud);
}

int store_api_scan(linli_ctx *ctx, const struct linli_query *q, linli_row_fn fn, void *ud,
		   char *cursor_out)
{
	struct plugin_actor pa;
	struct prow r = {ctx, fn, ud};
	return store_api_scan_as(plugin_actor(ctx, &pa), q, fn ? prow_fn : NULL, &r, cursor_out);
}

struct pupd {
	linli_ctx *ctx;
	linli_update_fn fn;
	void *ud;
};

static int pupd_fn(void *ud, const char *id, linli_record **rec, char *err, size_t errlen)
{
	struct pupd *u = ud;
	return u->fn(u->ctx, id, rec, u->ud, err, errlen);
}

int store_api_update(linli_ctx *ctx, const char *dataset, const char *scope, const char *id,
		     linli_update_fn fn, void *ud)
{
	struct plugin_actor pa;
	struct pupd u = {ctx, fn, ud};
	return store_api_update_as(plugin_actor(ctx, &pa), dataset, scope, id, fn ? pupd_fn : NULL,
				   &u);
}

/* ---- the commit notice ----
 *
 * The store calls every waiter exactly once, when its batch commits or is
 * lost. The actor's side of a waiter is the caller's: a C plugin's is a
 * tracked resource (pcommit); if the plugin stops first, release only
 * forgets the plugin, and the store's later call frees the waiter without
 * calling into the plugin's (unmapped) code. script_api.c does the same for
 * a script's.
 */

int store_api_on_commit_as(const struct store_actor *a, store_done_fn fn, void *arg)
{
	struct call c;
	call_init(a, &c);
	if (!fn)
		return failf(&c, LINLI_EINVAL, "store_on_commit: fn is NULL");
	if (!c.k->store)
		return failf(&c, LINLI_ESTATE, "store_on_commit: this node has no store open");
	int rc = store_on_commit(c.k->store, fn, arg);
	if (rc == LINLI_ESTATE)
		return failf(&c, rc,
			     "store_on_commit: no write is pending (what was written is "
			     "committed already)");
	if (rc)
		return failf(&c, rc, "store_on_commit: %s", linli_strerror(rc));
	return 0;
}

struct pcommit {
	struct plugin *p; /* NULL once the plugin stopped */
	struct plug_res *res;
	linli_commit_fn fn;
	void *ud;
};

static void pcommit_done(void *arg, int rc, const char *err)
{
	struct pcommit *w = arg;
	if (w->p) {
		struct plugin *p = w->p;
		plug_untrack(p, w->res);
		struct wd_frame wd;
		wd_enter(&wd, plug_name(p), "commit callback", NULL, 0);
		w->fn(plug_ctx(p), rc, rc ? (err ? err : linli_strerror(rc)) : "", w->ud);
		wd_leave(&wd);
	}
	free(w);
}

static void pcommit_release(void *arg)
{
	((struct pcommit *)arg)->p = NULL;
}

static const struct plug_res_ops pcommit_ops = {
    .kind = "commit waiter",
    .release = pcommit_release,
};

int store_api_on_commit(linli_ctx *ctx, linli_commit_fn fn, void *ud)
{
	struct plugin_actor pa;
	const struct store_actor *a = plugin_actor(ctx, &pa);
	struct pcommit *w = calloc(1, sizeof *w);
	if (w)
		*w = (struct pcommit){.p = pa.p, .fn = fn, .ud = ud};
	if (!w || !(w->res = plug_track(pa.p, &pcommit_ops, w))) {
		free(w);
		snprintf(a->st->last_error, sizeof a->st->last_error,
			 "store_on_commit: out of memory");
		return LINLI_ENOMEM;
	}
	/* A NULL fn is refused by the call, with its message. */
	int rc = store_api_on_commit_as(a, fn ? pcommit_done : NULL, w);
	if (rc) {
		plug_untrack(pa.p, w->res);
		free(w);
	}
	return rc;
}

/* ---- change notices (since 1.1) ----
 *
 * A watch is a store watcher (store_watch) whose trampoline passes on only
 * the changes inside the actor's jurisdiction, as a struct linli_change.
 * The actor's side keeps it as a tracked resource (pwatch for a C plugin,
 * script_api.c's for a script) whose release is store_api_unwatch_as.
 */

struct store_api_watch {
	struct kernel *k;
	uint64_t id;
	store_change_as_fn fn;
	void *ud;
	char scope[SCOPE_MAX + 1]; /* the actor's jurisdiction */
	bool down;		   /* a dataset that comes down: the scopes above it told too */
};

static void watch_tramp(void *ud, const struct store_change *c)
{
	struct store_api_watch *w = ud;
	if (!scope_within(w->scope, c->scope) && !(w->down && scope_within(c->scope, w->scope)))
		return; /* a sibling's or a parent's record: never told (but those kept above
			   of what comes down, which it reads: access_inherited) */
	struct linli_change ch = {.size = sizeof ch,
				  .dataset = c->dataset,
				  .scope = c->scope,
				  .id = c->id,
				  .kind = store_change_kind_name(c->kind)};
	w->fn(w->ud, &ch); /* may free w (unwatch from inside): touch nothing after */
}

int store_api_watch_as(const struct store_actor *a, const char *dataset, store_change_as_fn fn,
		       void *ud, struct store_api_watch **out)
{
	struct call c;
	*out = NULL;
	int rc = call_begin(a, "store_watch", dataset, NULL, &c);
	if (rc)
		return rc;
	if (!fn)
		return failf(&c, LINLI_EINVAL, "store_watch %s: fn is NULL", dataset);
	if (!catalog_dataset(c.k->catalog, dataset))
		return failf(&c, LINLI_ENOENT, "store_watch: no dataset '%.64s' in the catalog",
			     dataset);
	if ((rc = authorize(&c, ACT_DATA_READ, "store_watch", dataset)))
		return rc;
	struct store_api_watch *w = calloc(1, sizeof *w);
	if (!w)
		return failf(&c, LINLI_ENOMEM, "store_watch %s: out of memory", dataset);
	const struct cat_dataset *wd = catalog_dataset(c.k->catalog, dataset);
	*w = (struct store_api_watch){.k = c.k, .fn = fn, .ud = ud, .down = wd && wd->down};
	snprintf(w->scope, sizeof w->scope, "%s", c.scope);
	char err[256];
	if ((rc = store_watch(c.k->store, dataset, watch_tramp, w, &w->id, err, sizeof err))) {
		free(w);
		return fail_with(&c, rc, err);
	}
	*out = w;
	return 0;
}

uint64_t store_api_watch_id(const struct store_api_watch *w) { return w->id; }

void store_api_unwatch_as(struct store_api_watch *w)
{
	if (!w)
		return;
	if (w->k->store)
		store_unwatch(w->k->store, w->id);
	free(w);
}

struct pwatch {
	struct plugin *p;
	struct plug_res *res;
	struct store_api_watch *w;
	linli_change_fn fn;
	void *ud;
	char dataset[CAT_NAME_MAX + 1];
};

static void pwatch_fn(void *ud, const struct linli_change *ch)
{
	struct pwatch *pw = ud;
	struct wd_frame wd;
	wd_enter(&wd, plug_name(pw->p), "change handler", pw->dataset, 0);
	pw->fn(plug_ctx(pw->p), ch, pw->ud);
	wd_leave(&wd);
}

static void pwatch_release(void *arg)
{
	struct pwatch *pw = arg;
	store_api_unwatch_as(pw->w);
	free(pw);
}

static void pwatch_describe(void *arg, char *buf, size_t len)
{
	struct pwatch *pw = arg;
	snprintf(buf, len, "store watch %llu of %s", (unsigned long long)pw->w->id, pw->dataset);
}

static const struct plug_res_ops pwatch_ops = {
    .kind = "store watch",
    .release = pwatch_release,
    .describe = pwatch_describe,
};

static bool pwatch_match(void *arg, const void *key)
{
	return ((struct pwatch *)arg)->w->id == *(const uint64_t *)key;
}

int store_api_watch(linli_ctx *ctx, const char *dataset, linli_change_fn fn, void *ud,
		    uint64_t *id)
{
	struct plugin_actor pa;
	const struct store_actor *a = plugin_actor(ctx, &pa);
	struct pwatch *pw = calloc(1, sizeof *pw);
	if (!pw) {
		snprintf(a->st->last_error, sizeof a->st->last_error, "store_watch: out of memory");
		return LINLI_ENOMEM;
	}
	*pw = (struct pwatch){.p = pa.p, .fn = fn, .ud = ud};
	snprintf(pw->dataset, sizeof pw->dataset, "%s", dataset ? dataset : "");
	int rc = store_api_watch_as(a, dataset, fn ? pwatch_fn : NULL, pw, &pw->w);
	if (rc) {
		free(pw);
		return rc;
	}
	if (!(pw->res = plug_track(pa.p, &pwatch_ops, pw))) {
		store_api_unwatch_as(pw->w);
		free(pw);
		snprintf(a->st->last_error, sizeof a->st->last_error, "store_watch: out of memory");
		return LINLI_ENOMEM;
	}
	if (id)
		*id = pw->w->id;
	return 0;
}

int store_api_unwatch(linli_ctx *ctx, uint64_t id)
{
	struct plugin_actor pa;
	const struct store_actor *a = plugin_actor(ctx, &pa);
	a->st->last_error[0] = '\0';
	struct plug_res *res;
	if (!plug_find_res(pa.p, &pwatch_ops, pwatch_match, &id, &res)) {
		snprintf(a->st->last_error, sizeof a->st->last_error,
			 "store_unwatch: no watch %llu of this plugin", (unsigned long long)id);
		return LINLI_ENOENT;
	}
	plug_release(pa.p, res);
	return 0;
}

/* ---- schemas (since 1.1) ---- */

/*
 * May the actor read the catalog? A plugin or rule needs the granted
 * capability catalog.read; an account may (`linli catalog` shows it to any).
 */
static int catalog_allowed(struct call *c, const char *what)
{
	const struct tier_principal *w = c->a->who;
	if (w->kind != PRINCIPAL_PLUGIN && w->kind != PRINCIPAL_RULE)
		return 0;
	for (const char *const *g = w->grants; g && *g; g++)
		if (tier_cap_covers(*g, "catalog.read"))
			return 0;
	log_warn(c->a->log_name, "%s: holds no granted capability catalog.read", what);
	return failf(c, LINLI_EPERM, "%s: %s '%s' holds no granted capability catalog.read",
		     what, w->kind == PRINCIPAL_RULE ? "rule" : "plugin", w->name);
}

int store_api_schema_as(const struct store_actor *a, const char *dataset, msgpack_packer *pk)
{
	struct call c;
	int rc = call_begin(a, "dataset_schema", dataset, NULL, &c);
	if (rc || (rc = catalog_allowed(&c, "dataset_schema")))
		return rc;
	const struct cat_dataset *ds = catalog_dataset(c.k->catalog, dataset);
	if (!ds)
		return failf(&c, LINLI_ENOENT, "dataset_schema: no dataset '%.64s' in the catalog",
			     dataset);
	cat_pack_schema(pk, ds, true);
	return 0;
}

int store_api_datasets_as(const struct store_actor *a, msgpack_packer *pk)
{
	struct call c;
	call_init(a, &c);
	int rc = catalog_allowed(&c, "datasets");
	if (rc)
		return rc;
	const struct catalog *cat = c.k->catalog;
	int n = 0;
	for (int i = 0; cat && i < cat->n_datasets; i++)
		n += !cat->datasets[i].system;
	msgpack_pack_array(pk, (size_t)n);
	for (int i = 0; cat && i < cat->n_datasets; i++)
		if (!cat->datasets[i].system)
			cat_pack_schema(pk, &cat->datasets[i], false);
	return 0;
}

/* The one object packed in sb (destroyed here) as a new record in *out. */
static int packed_record(const struct store_actor *a, const char *what, int rc,
			 msgpack_sbuffer *sb, linli_record **out)
{
	char err[256];
	if (rc == 0 && record_from_bytes(sb->data, sb->size, out, err, sizeof err) != 0) {
		snprintf(a->st->last_error, sizeof a->st->last_error, "%s: %s", what, err);
		rc = LINLI_ENOMEM;
	}
	msgpack_sbuffer_destroy(sb);
	return rc;
}

int store_api_dataset_schema(linli_ctx *ctx, const char *dataset, linli_record **out)
{
	struct plugin_actor pa;
	const struct store_actor *a = plugin_actor(ctx, &pa);
	if (!out) {
		snprintf(a->st->last_error, sizeof a->st->last_error, "dataset_schema: out is NULL");
		return LINLI_EINVAL;
	}
	*out = NULL;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	return packed_record(a, "dataset_schema", store_api_schema_as(a, dataset, &pk), &sb, out);
}

int store_api_datasets(linli_ctx *ctx, linli_record **out)
{
	struct plugin_actor pa;
	const struct store_actor *a = plugin_actor(ctx, &pa);
	if (!out) {
		snprintf(a->st->last_error, sizeof a->st->last_error, "datasets: out is NULL");
		return LINLI_EINVAL;
	}
	*out = NULL;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	return packed_record(a, "datasets", store_api_datasets_as(a, &pk), &sb, out);
}

const char *store_api_last_error(linli_ctx *ctx)
{
	return plug_store_state(plug_from_ctx(ctx))->last_error;
}
