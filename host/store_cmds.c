/*
 * store_cmds — see store_cmds.h.
 *
 * A write command validates and applies its write at once (so a bad record
 * is refused at once, with nothing stored), then waits for the batch's
 * commit: the handler returns CMD_PENDING and the store's commit waiter
 * finishes the call with the commit's result. The batch-end hook is where
 * the kernel commits: one fsync for every write of a loop batch.
 */
#include "store_cmds.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "cmd.h"
#include "json.h"
#include "kernel.h"
#include "linli/error.h"
#include "log.h"
#include "mp.h"
#include "access.h"
#include "plugin.h"
#include "tier_store.h"
#include "store.h"
#include "util.h"

#define QUERY_DEFAULT_LIMIT 100
#define QUERY_MAX_LIMIT	    1000
#define QUERY_MAX_BYTES	    (512u << 10) /* a page ends here: linli takes replies up to 1 MiB */

/* ---- arguments ---- */

bool store_parse_filter(const char *text, char *field, const char **op, const char **value)
{
	static const char *const ops[] = {"<=", ">=", "<", ">", "="};
	size_t n = strcspn(text, "<>=");
	if (!text[n] || n == 0 || n > CAT_NAME_MAX)
		return false;
	memcpy(field, text, n);
	field[n] = '\0';
	for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
		if (strncmp(text + n, ops[i], strlen(ops[i])) == 0) {
			*op = ops[i];
			*value = text + n + strlen(ops[i]);
			return true;
		}
	return false;
}

enum { O_SCOPE = 1, O_ID = 2, O_WHERE = 4, O_LIMIT = 8, O_CURSOR = 16, O_IDFIELD = 32 };

struct dargs {
	const char *pos[4];
	int n_pos;
	const char *scope, *id, *cursor, *id_field;
	bool scoped; /* --scope was given: a record is addressed exactly there */
	bool inherited; /* a read above the caller of what comes down (access_inherited) */
	long limit;
	struct store_where where[STORE_MAX_WHERE];
	int n_where;
	char wfield[STORE_MAX_WHERE][CAT_NAME_MAX + 1];
	struct store_range range[STORE_MAX_RANGE];
	int n_range;
	char rfield[STORE_MAX_RANGE][CAT_NAME_MAX + 1];
};

static const struct cmd_opt opt_names[] = {{"scope", O_SCOPE},	 {"id", O_ID},
					   {"where", O_WHERE},	 {"limit", O_LIMIT},
					   {"cursor", O_CURSOR}, {"id-field", O_IDFIELD},
					   {NULL, 0}};

static int take_opt(struct cmd_call *call, void *ud, int bit, const char *v)
{
	struct dargs *a = ud;
	const char *cmd = call->argv[1];
	switch (bit) {
	case O_SCOPE:
		a->scope = v;
		break;
	case O_ID:
		a->id = v;
		break;
	case O_CURSOR:
		a->cursor = v;
		break;
	case O_IDFIELD:
		a->id_field = v;
		break;
	case O_LIMIT: {
		char *end;
		errno = 0;
		a->limit = strtol(v, &end, 10);
		if (!*v || *end || errno || a->limit < 1 || a->limit > QUERY_MAX_LIMIT)
			return cmd_fail(call, LINLI_EINVAL,
					"data %s: --limit '%.32s' is not a number in 1..%d", cmd, v,
					QUERY_MAX_LIMIT);
		break;
	}
	case O_WHERE: {
		char field[CAT_NAME_MAX + 1];
		const char *op, *val;
		if (!store_parse_filter(v, field, &op, &val))
			return cmd_fail(call, LINLI_EINVAL,
					"data %s: --where '%.64s' is not FIELD=VALUE, FIELD<VALUE, "
					"FIELD<=VALUE, FIELD>VALUE or FIELD>=VALUE",
					cmd, v);
		if (op[0] == '=') {
			if (a->n_where == STORE_MAX_WHERE)
				return cmd_fail(call, LINLI_EINVAL,
						"data %s: at most %d --where FIELD=VALUE", cmd,
						STORE_MAX_WHERE);
			memcpy(a->wfield[a->n_where], field, sizeof field);
			a->where[a->n_where].field = a->wfield[a->n_where];
			a->where[a->n_where].value = val;
			a->n_where++;
			break;
		}
		if (a->n_range == STORE_MAX_RANGE)
			return cmd_fail(call, LINLI_EINVAL, "data %s: at most %d range --where",
					cmd, STORE_MAX_RANGE);
		memcpy(a->rfield[a->n_range], field, sizeof field);
		a->range[a->n_range] = (struct store_range){a->rfield[a->n_range], op, val};
		a->n_range++;
		break;
	}
	}
	return 0;
}

/* Parse argv[2..] of `data SUB ...` into positionals and the options in `allowed`. */
static int parse_args(struct cmd_call *call, int allowed, int max_pos, const char *usage,
		      struct dargs *a)
{
	memset(a, 0, sizeof *a);
	a->limit = -1;
	return cmd_args(call, opt_names, allowed, a->pos, max_pos, &a->n_pos, usage, take_opt, a);
}

/* The scope of a request: --scope, or this node's path; checked for access. */
static int request_scope(struct cmd_call *call, struct dargs *a, enum tier_action act)
{
	a->scoped = a->scope != NULL;
	if (!a->scope) /* by default a caller works in its own jurisdiction */
		a->scope = call->who ? call->who->scope : call->k->cfg.node_path;
	char why[128];
	if (!scope_check(a->scope, why, sizeof why))
		return cmd_fail(call, LINLI_EINVAL, "bad --scope '%.64s': %s", a->scope, why);
	const char *dataset = a->n_pos > 0 ? a->pos[0] : NULL;
	const struct cat_dataset *ds = dataset ? catalog_dataset(call->k->catalog, dataset) : NULL;
	if (ds && ds->system)
		return cmd_fail(call, LINLI_EPERM,
				"dataset '%s' is kept by the kernel itself; use its own commands "
				"(accounts, audit, apikeys)",
				dataset);
	if (ds && ds->written_by && act != ACT_DATA_READ)
		return cmd_fail(call, LINLI_EPERM,
				"dataset '%s' is written by linlid's '%s' commands only (a record "
				"written around them would not reach the running registry); use "
				"'linli %s ...'",
				dataset, ds->written_by, ds->written_by);
	const char *own = dataset ? access_inherited(call->k, call->who, act, dataset, a->scope)
				  : NULL;
	a->inherited = own != NULL; /* the records kept at that scope itself only */
	return access_call(call, act, own ? own : a->scope, dataset);
}

/* Pack {id, scope, field...} from a stored record. */
/* The mask for field `key` of dataset `mask` (NULL: nothing is masked). */
static enum mask_kind field_mask(const struct cat_dataset *mask, const msgpack_object *key)
{
	if (!mask || key->type != MSGPACK_OBJECT_STR)
		return MASK_NONE;
	static const enum mask_kind of[] = {
	    [CAT_SENS_NONE] = MASK_NONE,       [CAT_SENS_ID_NUMBER] = MASK_ID_NUMBER,
	    [CAT_SENS_PHONE] = MASK_PHONE,     [CAT_SENS_NAME] = MASK_NAME,
	    [CAT_SENS_ADDRESS] = MASK_ADDRESS, [CAT_SENS_HEALTH] = MASK_HEALTH,
	};
	for (int i = 0; i < mask->n_fields; i++) {
		const struct cat_field *f = &mask->fields[i];
		if (strlen(f->name) == key->via.str.size &&
		    memcmp(f->name, key->via.str.ptr, key->via.str.size) == 0)
			return of[f->sensitive];
	}
	return MASK_NONE;
}

/*
 * Pack {id, scope, field...} from a stored record. With `mask` (the dataset,
 * for a caller without the grant) every sensitive field is masked: strings
 * keep the characters their rule allows, other values become "***".
 */
int store_pack_record(msgpack_packer *pk, const char *id, const char *scope, const void *data,
		      size_t len, const struct cat_dataset *mask)
{
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	size_t off = 0;
	if (msgpack_unpack_next(&up, data, len, &off) != MSGPACK_UNPACK_SUCCESS ||
	    up.data.type != MSGPACK_OBJECT_MAP) {
		msgpack_unpacked_destroy(&up);
		return LINLI_ECORRUPT;
	}
	const msgpack_object_map *m = &up.data.via.map;
	msgpack_pack_map(pk, m->size + 2);
	mp_kv_str(pk, "id", id);
	mp_kv_str(pk, "scope", scope);
	for (uint32_t i = 0; i < m->size; i++) {
		msgpack_pack_object(pk, m->ptr[i].key);
		enum mask_kind mk = field_mask(mask, &m->ptr[i].key);
		const msgpack_object *v = &m->ptr[i].val;
		if (mk == MASK_NONE)
			msgpack_pack_object(pk, *v);
		else if (v->type == MSGPACK_OBJECT_STR) {
			char masked[1024];
			tier_mask(mk, v->via.str.ptr, v->via.str.size, masked, sizeof masked);
			mp_str(pk, masked);
		} else
			mp_str(pk, "***");
	}
	msgpack_unpacked_destroy(&up);
	return 0;
}

bool store_has_sensitive(const struct cat_dataset *ds)
{
	for (int i = 0; ds && i < ds->n_fields; i++)
		if (ds->fields[i].sensitive != CAT_SENS_NONE)
			return true;
	return false;
}

const struct cat_field *store_where_sensitive(const struct cat_dataset *ds,
					      const struct store_where *where, int n_where,
					      const struct store_range *range, int n_range)
{
	for (int i = 0; ds && i < n_where + n_range; i++) {
		const char *f = i < n_where ? where[i].field : range[i - n_where].field;
		const struct cat_field *cf = f ? cat_dataset_field(ds, f, strlen(f)) : NULL;
		if (cf && cf->sensitive != CAT_SENS_NONE)
			return cf;
	}
	return NULL;
}

int store_where_allowed(struct kernel *k, const struct tier_principal *who, const char *dataset,
			const char *scope, const struct store_where *where, int n_where,
			const struct store_range *range, int n_range, char *err, size_t errlen)
{
	const struct cat_dataset *ds = catalog_dataset(k->catalog, dataset);
	const struct cat_field *f = store_where_sensitive(ds, where, n_where, range, n_range);
	if (!f)
		return 0;
	char detail[CAT_NAME_MAX + 48];
	snprintf(detail, sizeof detail, "filter on sensitive field %s", f->name);
	if (who && tier_sees_sensitive(who, dataset)) {
		tiers_audit(k, who, "data.read", scope, dataset, "allowed", detail);
		return 0;
	}
	tiers_audit(k, who, "data.read", scope, dataset, "denied", detail);
	return errf(err, errlen, LINLI_EPERM,
		    "%s: field '%s' is sensitive: filtering on it needs the grant to read it in "
		    "clear (sensitive or sensitive:%s)",
		    dataset, f->name, dataset);
}

/*
 * Reading a dataset with sensitive fields: decide masking for this caller and
 * audit the read (unmasked reads always; masked ones too, as "masked").
 * Returns the dataset to mask with, or NULL.
 */
static const struct cat_dataset *read_policy(struct cmd_call *call, const char *dataset,
					     const char *scope, const char *what)
{
	const struct cat_dataset *ds = catalog_dataset(call->k->catalog, dataset);
	if (!store_has_sensitive(ds))
		return NULL;
	bool sees = tier_sees_sensitive(call->who, dataset);
	tiers_audit(call->k, call->who, "data.read", scope, dataset, sees ? "allowed" : "masked",
		    what);
	return sees ? NULL : ds;
}

/* A commit waiter: the call's reply is packed already; send it or the error. */
static void write_done(void *arg, int rc, const char *err)
{
	struct cmd_call *call = arg;
	if (rc)
		snprintf(call->err, sizeof call->err, "%s", err ? err : linli_strerror(rc));
	cmd_finish(call, rc);
}

int store_cmds_wait_commit(struct cmd_call *call)
{
	int rc = store_on_commit(call->k->store, write_done, call);
	if (rc == LINLI_ESTATE)
		return 0; /* no write of this batch is pending: nothing to wait for */
	if (rc)
		return cmd_fail(call, rc, "store: cannot wait for the commit: %s",
				linli_strerror(rc));
	return CMD_PENDING;
}

/* ---- data ---- */

/* A lookup by id that found several records: say how to pick one here. */
static int ambiguous_hint(struct cmd_call *call, int rc)
{
	size_t n = strlen(call->err);
	if (rc == LINLI_EINVAL && n >= strlen(STORE_AMBIGUOUS) &&
	    strcmp(call->err + n - strlen(STORE_AMBIGUOUS), STORE_AMBIGUOUS) == 0)
		snprintf(call->err + n, sizeof call->err - n, " with --scope PATH");
	return rc;
}

static int cmd_data_get(struct cmd_call *call, void *ud)
{
	(void)ud;
	struct dargs a;
	const char *usage = "DATASET ID [--scope PATH]";
	int rc = parse_args(call, O_SCOPE, 2, usage, &a);
	if (rc)
		return rc;
	if (a.n_pos != 2)
		return cmd_fail(call, LINLI_EINVAL, "usage: data get %s", usage);
	if ((rc = request_scope(call, &a, ACT_DATA_READ)))
		return rc;
	msgpack_sbuffer buf;
	msgpack_sbuffer_init(&buf);
	char scope[SCOPE_MAX + 1];
	snprintf(scope, sizeof scope, "%s", a.scope);
	rc = a.scoped ? store_get_at(call->k->store, a.pos[0], a.scope, a.pos[1], &buf, call->err,
				     sizeof call->err)
		      : store_get(call->k->store, a.pos[0], a.scope, a.pos[1], &buf, scope,
				  call->err, sizeof call->err);
	ambiguous_hint(call, rc);
	const struct cat_dataset *mask = rc ? NULL : read_policy(call, a.pos[0], scope, a.pos[1]);
	if (!rc && store_pack_record(&call->pk, a.pos[1], scope, buf.data, buf.size, mask))
		rc = cmd_fail(call, LINLI_ECORRUPT, "%s: record '%s' is not a map", a.pos[0],
			      a.pos[1]);
	msgpack_sbuffer_destroy(&buf);
	return rc;
}

#define PUT_IDS_MAX 1000 /* a batch's reply lists its ids up to this many */

/*
 * `data put DATASET --stdin` with a JSON array: every record checked first (nothing is
 * written when one is refused: the element is named), then written in one batch; the id
 * of each from its field --id-field (kept in the record), else a new one.
 */
static int put_many(struct cmd_call *call, struct dargs *a, const char *text, size_t len)
{
	if (!catalog_dataset(call->k->catalog, a->pos[0]))
		return cmd_fail(call, LINLI_ENOENT, "no dataset '%s' in the catalog", a->pos[0]);
	json_error_t je;
	json_t *arr = json_loadb(text, len, 0, &je);
	if (!arr || !json_is_array(arr)) {
		json_decref(arr);
		return arr ? cmd_fail(call, LINLI_EINVAL, "%s: the records are not a JSON array",
				      a->pos[0])
			   : cmd_fail(call, LINLI_EINVAL,
				      "%s: the records are not JSON: line %d column %d: %s",
				      a->pos[0], je.line, je.column, je.text);
	}
	size_t n = json_array_size(arr);
	msgpack_sbuffer *bufs = calloc(n ? n : 1, sizeof *bufs);
	const char **ids = calloc(n ? n : 1, sizeof *ids);
	int rc = bufs && ids ? 0 : cmd_fail(call, LINLI_ENOMEM, "out of memory");
	char err[512];
	for (size_t i = 0; !rc && i < n; i++) {
		json_t *r = json_array_get(arr, i);
		if (!json_is_object(r)) {
			rc = cmd_fail(call, LINLI_EINVAL, "%s: element %zu is not a record (an object)",
				      a->pos[0], i + 1);
			break;
		}
		if (a->id_field) {
			json_t *v = json_object_get(r, a->id_field);
			if (!json_is_string(v)) {
				rc = cmd_fail(call, LINLI_EINVAL,
					      "%s: element %zu has no string field '%s' for its id",
					      a->pos[0], i + 1, a->id_field);
				break;
			}
			ids[i] = json_string_value(v);
		}
		msgpack_packer pk;
		msgpack_sbuffer_init(&bufs[i]);
		msgpack_packer_init(&pk, &bufs[i], msgpack_sbuffer_write);
		if (json_to_mp(r, &pk))
			rc = cmd_fail(call, LINLI_ELIMIT, "%s: element %zu nests too deep", a->pos[0],
				      i + 1);
		else if ((rc = store_check(call->k->store, a->pos[0], a->scope, ids[i], bufs[i].data,
					   bufs[i].size, err, sizeof err)))
			cmd_fail(call, rc, "element %zu: %s (nothing written)", i + 1, err);
	}
	size_t written = 0, created_n = 0;
	if (!rc) {
		msgpack_pack_map(&call->pk, 4);
		mp_str(&call->pk, "ids");
		msgpack_pack_array(&call->pk, n <= PUT_IDS_MAX ? n : 0);
	}
	for (size_t i = 0; !rc && i < n; i++) {
		char id[STORE_ID_MAX + 1];
		bool created = false;
		rc = store_put(call->k->store, a->pos[0], a->scope, ids[i], bufs[i].data,
			       bufs[i].size, id, &created, err, sizeof err);
		if (rc) {
			/* the reply packed so far is dropped with the error */
			cmd_fail(call, rc, "element %zu: %s (the %zu before it are written)", i + 1,
				 err, written);
			break;
		}
		written++, created_n += created;
		if (n <= PUT_IDS_MAX)
			mp_str(&call->pk, id);
	}
	if (!rc) {
		mp_kv_uint(&call->pk, "count", written);
		mp_kv_uint(&call->pk, "created", created_n);
		mp_kv_str(&call->pk, "scope", a->scope);
	}
	for (size_t i = 0; bufs && i < n; i++)
		msgpack_sbuffer_destroy(&bufs[i]);
	free(bufs);
	free(ids);
	json_decref(arr);
	return rc ? rc : store_cmds_wait_commit(call);
}

static int cmd_data_put(struct cmd_call *call, void *ud)
{
	(void)ud;
	struct dargs a;
	const char *usage = "DATASET [--scope PATH] [--id ID] [JSON | --stdin] [--id-field FIELD]";
	int rc = parse_args(call, O_SCOPE | O_ID | O_IDFIELD, 2, usage, &a);
	if (rc)
		return rc;
	if (a.n_pos < 1)
		return cmd_fail(call, LINLI_EINVAL, "usage: data put %s", usage);
	const char *json = a.n_pos == 2 ? a.pos[1] : call->input;
	size_t json_len = a.n_pos == 2 ? strlen(a.pos[1]) : call->input_len;
	if (a.n_pos == 2 && call->input)
		return cmd_fail(call, LINLI_EINVAL,
				"data put: give the record once: as an argument or with --stdin");
	if (!json)
		return cmd_fail(call, LINLI_EINVAL,
				"data put: no record: give it as a JSON argument or with --stdin");
	size_t lead = strspn(json, " \t\r\n");
	bool many = a.n_pos == 1 && lead < json_len && json[lead] == '[';
	if (a.id_field && (!many || a.id))
		return cmd_fail(call, LINLI_EINVAL,
				"data put: --id-field goes with a JSON array of records on --stdin, "
				"without --id");
	if (many && a.id)
		return cmd_fail(call, LINLI_EINVAL,
				"data put: --id names one record; for an array use --id-field FIELD");
	if ((rc = request_scope(call, &a, ACT_DATA_WRITE)))
		return rc;
	if (many)
		return put_many(call, &a, json, json_len);
	msgpack_sbuffer buf;
	msgpack_packer pk;
	msgpack_sbuffer_init(&buf);
	msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
	char jerr[256], id[STORE_ID_MAX + 1];
	bool created = false;
	rc = json_parse_to_mp(json, json_len, &pk, jerr, sizeof jerr);
	if (rc)
		rc = cmd_fail(call, rc, "%s: the record is not JSON: %s", a.pos[0], jerr);
	else
		rc = store_put(call->k->store, a.pos[0], a.scope, a.id, buf.data, buf.size, id,
			       &created, call->err, sizeof call->err);
	msgpack_sbuffer_destroy(&buf);
	if (rc)
		return rc;
	msgpack_pack_map(&call->pk, 3);
	mp_kv_str(&call->pk, "id", id);
	mp_kv_str(&call->pk, "scope", a.scope);
	mp_kv_bool(&call->pk, "created", created);
	return store_cmds_wait_commit(call);
}

static int cmd_data_del(struct cmd_call *call, void *ud)
{
	(void)ud;
	struct dargs a;
	const char *usage = "DATASET ID [--scope PATH]";
	int rc = parse_args(call, O_SCOPE, 2, usage, &a);
	if (rc)
		return rc;
	if (a.n_pos != 2)
		return cmd_fail(call, LINLI_EINVAL, "usage: data del %s", usage);
	if ((rc = request_scope(call, &a, ACT_DATA_DELETE)))
		return rc;
	rc = a.scoped ? store_delete_at(call->k->store, a.pos[0], a.scope, a.pos[1], call->err,
					sizeof call->err)
		      : store_delete(call->k->store, a.pos[0], a.scope, a.pos[1], call->err,
				     sizeof call->err);
	if (rc)
		return ambiguous_hint(call, rc);
	msgpack_pack_map(&call->pk, 2);
	mp_kv_str(&call->pk, "id", a.pos[1]);
	mp_kv_bool(&call->pk, "deleted", true);
	return store_cmds_wait_commit(call);
}

struct rows {
	msgpack_sbuffer buf;
	msgpack_packer pk;
	int bad;
	const struct cat_dataset *mask;
};

static int query_row(void *ud, const struct store_row *row)
{
	struct rows *r = ud;
	if (store_pack_record(&r->pk, row->id, row->scope, row->data, row->len, r->mask))
		r->bad++;
	return r->buf.size >= QUERY_MAX_BYTES;
}

static int cmd_data_query(struct cmd_call *call, void *ud)
{
	(void)ud;
	struct dargs a;
	const char *usage =
	    "DATASET [--scope PATH] [--where FIELD{=,<,<=,>,>=}VALUE]... [--limit N] [--cursor C]";
	int rc = parse_args(call, O_SCOPE | O_WHERE | O_LIMIT | O_CURSOR, 1, usage, &a);
	if (rc)
		return rc;
	if (a.n_pos != 1)
		return cmd_fail(call, LINLI_EINVAL, "usage: data query %s", usage);
	if ((rc = request_scope(call, &a, ACT_DATA_READ)) ||
	    (rc = store_where_allowed(call->k, call->who, a.pos[0], a.scope, a.where, a.n_where,
				      a.range, a.n_range, call->err, sizeof call->err)))
		return rc;
	struct store_query q = {
	    .dataset = a.pos[0],
	    .scope = a.scope,
	    .where = a.where,
	    .n_where = a.n_where,
	    .limit = a.limit > 0 ? (size_t)a.limit : QUERY_DEFAULT_LIMIT,
	    .cursor = a.cursor,
	    .range = a.range,
	    .n_range = a.n_range,
	    .exact = a.inherited,
	};
	struct rows r = {.bad = 0, .mask = read_policy(call, a.pos[0], a.scope, "query")};
	msgpack_sbuffer_init(&r.buf);
	msgpack_packer_init(&r.pk, &r.buf, msgpack_sbuffer_write);
	char cursor[STORE_CURSOR_MAX];
	int n = store_scan(call->k->store, &q, query_row, &r, cursor, call->err, sizeof call->err);
	if (n >= 0 && r.bad)
		n = cmd_fail(call, LINLI_ECORRUPT, "%s: %d stored records are not maps", a.pos[0],
			     r.bad);
	if (n >= 0) {
		msgpack_pack_map(&call->pk, 3);
		mp_str(&call->pk, "records");
		msgpack_pack_array(&call->pk, (size_t)n);
		msgpack_sbuffer_write(&call->data, r.buf.data, r.buf.size);
		mp_kv_int(&call->pk, "count", n);
		mp_kv_str(&call->pk, "cursor", cursor[0] ? cursor : NULL);
	}
	msgpack_sbuffer_destroy(&r.buf);
	return n < 0 ? n : 0;
}

/* ---- store ---- */

static int cmd_store_stats(struct cmd_call *call, void *ud)
{
	(void)ud;
	struct store_stats st;
	struct kernel *k = call->k;
	if (store_stats(k->store, &st))
		return cmd_fail(call, LINLI_EIO, "store: cannot read its statistics");
	msgpack_packer *pk = &call->pk;
	msgpack_pack_map(pk, 17);
	mp_kv_str(pk, "data_dir", k->cfg.data_dir);
	mp_kv_uint(pk, "file_bytes", st.file_bytes);
	mp_kv_uint(pk, "used_bytes", st.used_bytes);
	mp_kv_uint(pk, "map_bytes", st.map_size);
	mp_kv_uint(pk, "page_size", st.page_size);
	mp_kv_uint(pk, "records", st.records);
	mp_kv_uint(pk, "index_entries", st.index_entries);
	mp_kv_uint(pk, "writes", st.writes);
	mp_kv_uint(pk, "commits", st.commits);
	mp_kv_uint(pk, "failed_commits", st.failed_commits);
	mp_kv_uint(pk, "map_grows", st.map_grows);
	mp_kv_uint(pk, "last_commit_us", st.last_commit_us);
	mp_str(pk, "group_commit"); /* its bounds, and what it did lately */
	msgpack_pack_map(pk, 4);
	mp_kv_uint(pk, "max_writes", st.group_max);
	mp_kv_uint(pk, "max_ms", st.group_ms);
	mp_kv_uint(pk, "last_batch", st.last_batch);
	mp_kv_uint(pk, "kept_open_turns", st.kept_open);
	mp_kv_uint(pk, "readers", st.readers);
	mp_kv_str(pk, "durability", st.sync ? "sync" : "nosync");
	mp_kv_bool(pk, "backup_running", st.backup_running);
	mp_str(pk, "datasets");
	const struct catalog *c = k->catalog;
	int nonzero = 0;
	for (int i = 0; i < c->n_datasets; i++)
		nonzero += store_count(k->store, c->datasets[i].name) > 0;
	msgpack_pack_map(pk, (size_t)nonzero);
	for (int i = 0; i < c->n_datasets; i++) {
		uint64_t n = store_count(k->store, c->datasets[i].name);
		if (n)
			mp_kv_uint(pk, c->datasets[i].name, n);
	}
	return 0;
}

struct backup_done {
	struct cmd_call *call;
	int rc;
	char msg[1024];
};

/* Kernel thread: the backup thread finished. */
static void backup_finish(struct kernel *k, void *arg)
{
	(void)k;
	struct backup_done *d = arg;
	if (d->rc)
		snprintf(d->call->err, sizeof d->call->err, "%s", d->msg);
	cmd_finish(d->call, d->rc);
	free(d);
}

/* Backup thread: hand the result to the kernel thread. */
static void backup_done_cb(void *arg, int rc, const char *err)
{
	struct cmd_call *call = arg;
	struct backup_done *d = calloc(1, sizeof *d);
	if (d) {
		d->call = call;
		d->rc = rc;
		snprintf(d->msg, sizeof d->msg, "%s", err ? err : "");
	}
	if (!d || kernel_post(call->k, backup_finish, d) != 0) {
		/* The daemon is stopping: nobody is left to answer. */
		free(d);
		cmd_call_free(call);
	}
}

static int cmd_store_backup(struct cmd_call *call, void *ud)
{
	(void)ud;
	if (call->argc != 3)
		return cmd_fail(call, LINLI_EINVAL, "usage: store backup DIR (an absolute path)");
	const char *path = call->argv[2];
	msgpack_pack_map(&call->pk, 2);
	mp_kv_str(&call->pk, "backup", path);
	char file[4200];
	snprintf(file, sizeof file, "%s/data.mdb", path);
	mp_kv_str(&call->pk, "file", file);
	int rc = store_backup_start(call->k->store, path, backup_done_cb, call, call->err,
				    sizeof call->err);
	return rc ? rc : CMD_PENDING;
}

struct verify_done {
	struct cmd_call *call;
	int rc;
	struct store_verify_report rep;
};

/* Kernel thread: the walk ended; the reply is its report. */
static void verify_finish(struct kernel *k, void *arg)
{
	struct verify_done *d = arg;
	struct cmd_call *call = d->call;
	if (d->rc) {
		snprintf(call->err, sizeof call->err, "store verify: the walk could not run: %s",
			 linli_strerror(d->rc));
		cmd_finish(call, d->rc);
		free(d);
		return;
	}
	const struct store_verify_report *r = &d->rep;
	msgpack_packer *pk = &call->pk;
	char file[4200];
	snprintf(file, sizeof file, "%s/data.mdb", k->cfg.data_dir);
	msgpack_pack_map(pk, 7 + (r->error[0] != 0) + (r->crashed != 0));
	mp_kv_str(pk, "file", file);
	mp_kv_int(pk, "format", r->format);
	mp_kv_bool(pk, "checksums", r->checksums);
	static const char *const what[STORE_VERIFY_TABLES] = {
	    "records",	    "index_entries",	 "id_entries",	   "journal_events",
	    "meta_entries", "change_log_entries", "origins_applied", "quarantined",
	    "down_log_entries", "down_log_keys"};
	mp_str(pk, "entries");
	msgpack_pack_map(pk, STORE_VERIFY_TABLES);
	for (int i = 0; i < STORE_VERIFY_TABLES; i++)
		mp_kv_uint(pk, what[i], r->entries[i]);
	mp_kv_uint(pk, "damaged", r->damaged);
	mp_str(pk, "first_damaged");
	msgpack_pack_array(pk, (size_t)r->n_named);
	for (int i = 0; i < r->n_named; i++)
		mp_str(pk, r->named[i]);
	mp_kv_str(pk, "verdict",
		  r->damaged ? "DAMAGED: restore a backup (README: recovering a damaged store)"
			     : "clean");
	if (r->error[0])
		mp_kv_str(pk, "error", r->error);
	if (r->crashed)
		mp_kv_int(pk, "crashed_by_signal", r->crashed);
	if (r->damaged)
		log_error("store", "store verify: %s/data.mdb: %llu damaged entries%s%s",
			  k->cfg.data_dir, (unsigned long long)r->damaged,
			  r->n_named ? ", the first: " : "", r->n_named ? r->named[0] : r->error);
	cmd_finish(call, 0);
	free(d);
}

/* Verify thread: hand the report to the kernel thread. */
static void verify_done_cb(void *arg, int rc, const struct store_verify_report *rep)
{
	struct cmd_call *call = arg;
	struct verify_done *d = calloc(1, sizeof *d);
	if (d) {
		d->call = call;
		d->rc = rc;
		if (rep)
			d->rep = *rep;
	}
	if (!d || kernel_post(call->k, verify_finish, d) != 0) {
		free(d); /* the daemon is stopping: nobody is left to answer */
		cmd_call_free(call);
	}
}

static int cmd_store_verify(struct cmd_call *call, void *ud)
{
	(void)ud;
	if (call->argc != 2)
		return cmd_fail(call, LINLI_EINVAL, "usage: store verify (no arguments)");
	int rc =
	    store_verify_start(call->k->store, verify_done_cb, call, call->err, sizeof call->err);
	return rc ? rc : CMD_PENDING;
}

/* ---- catalog ---- */

static void pack_field(msgpack_packer *pk, const struct cat_field *f, bool dataset)
{
	int n = 2 + (dataset ? 2 : 0) + (f->sensitive != CAT_SENS_NONE) + (f->access != 0) +
		(f->unit != NULL) + (f->n_values > 0) + (f->ref != NULL) + f->has_min + f->has_max +
		(f->max_len > 0);
	msgpack_pack_map(pk, (size_t)n);
	mp_kv_str(pk, "name", f->name);
	mp_kv_str(pk, "type", cat_type_name(f->type));
	if (dataset) {
		mp_kv_bool(pk, "required", f->required);
		mp_kv_bool(pk, "indexed", f->indexed);
	}
	if (f->sensitive != CAT_SENS_NONE)
		mp_kv_str(pk, "sensitive", cat_sensitive_name(f->sensitive));
	if (f->access)
		mp_kv_str(pk, "access",
			  f->access == (CAT_READ | CAT_WRITE) ? "rw"
			  : f->access == CAT_READ	      ? "r"
							      : "w");
	if (f->unit)
		mp_kv_str(pk, "unit", f->unit);
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
}

static void pack_strings(msgpack_packer *pk, const char *key, char **v, int n)
{
	mp_str(pk, key);
	msgpack_pack_array(pk, (size_t)n);
	for (int i = 0; i < n; i++)
		mp_str(pk, v[i]);
}

/*
 * `counts`: the caller's jurisdiction covers the whole node, so it may see how
 * many records the node holds (the count spans every scope of the node).
 */
static void pack_dataset(struct kernel *k, msgpack_packer *pk, const struct cat_dataset *d,
			 bool counts)
{
	msgpack_pack_map(pk, 13 + counts);
	mp_kv_str(pk, "kind", "dataset");
	mp_kv_str(pk, "name", d->name);
	mp_kv_str(pk, "title_zh", d->title_zh);
	mp_kv_str(pk, "title_en", d->title_en);
	mp_kv_str(pk, "owner", d->owner);
	mp_kv_str(pk, "family", d->family);
	mp_kv_str(pk, "level", tier_level_name(d->level));
	mp_kv_str(pk, "sharing", cat_sharing_name(d->sharing));
	mp_kv_str(pk, "source", cat_source_name(d->source));
	mp_kv_bool(pk, "restricted", d->restricted);
	mp_kv_str(pk, "file", d->file);
	if (counts)
		mp_kv_uint(pk, "records", k->store ? store_count(k->store, d->name) : 0);
	mp_kv_int(pk, "line", d->line);
	mp_str(pk, "fields");
	msgpack_pack_array(pk, (size_t)d->n_fields);
	for (int i = 0; i < d->n_fields; i++)
		pack_field(pk, &d->fields[i], true);
}

void store_pack_class(msgpack_packer *pk, const struct cat_device_class *c, bool sdk)
{
	msgpack_pack_map(pk, (sdk ? 7 : 8) + (c->plugin != NULL));
	if (!sdk)
		mp_kv_str(pk, "kind", "device");
	mp_kv_str(pk, "name", c->name);
	if (c->plugin) /* the plugin index's `classes`: where its events become alarms */
		mp_kv_str(pk, "plugin", c->plugin);
	mp_kv_str(pk, "title_zh", c->title_zh);
	mp_kv_str(pk, "title_en", c->title_en);
	mp_kv_int(pk, sdk ? "heartbeat" : "heartbeat_s", c->heartbeat);
	mp_str(pk, "resources");
	msgpack_pack_array(pk, (size_t)c->n_resources);
	for (int i = 0; i < c->n_resources; i++)
		pack_field(pk, &c->resources[i], false);
	mp_str(pk, "commands");
	msgpack_pack_array(pk, (size_t)c->n_commands);
	for (int i = 0; i < c->n_commands; i++) {
		msgpack_pack_map(pk, 2);
		mp_kv_str(pk, "name", c->commands[i].name);
		mp_str(pk, "args");
		msgpack_pack_array(pk, (size_t)c->commands[i].n_args);
		for (int j = 0; j < c->commands[i].n_args; j++)
			pack_field(pk, &c->commands[i].args[j], false);
	}
	mp_str(pk, "events");
	msgpack_pack_array(pk, (size_t)c->n_events);
	for (int i = 0; i < c->n_events; i++) {
		const struct cat_event *e = &c->events[i];
		msgpack_pack_map(pk, 2 + e->unjournaled + (e->n_sensitive > 0));
		mp_kv_str(pk, "name", e->name);
		mp_kv_str(pk, "severity", cat_severity_name(e->severity));
		if (e->unjournaled) /* shown only when off: the default is on */
			mp_kv_bool(pk, "journal", false);
		if (e->n_sensitive) { /* its details' personal fields (hal_event_mask) */
			mp_str(pk, "sensitive");
			msgpack_pack_array(pk, (size_t)e->n_sensitive);
			for (int j = 0; j < e->n_sensitive; j++) {
				msgpack_pack_map(pk, 2);
				mp_kv_str(pk, "name", e->sensitive[j].name);
				mp_kv_str(pk, "mask", cat_sensitive_name(e->sensitive[j].sensitive));
			}
		}
	}
}

static void pack_plugin(msgpack_packer *pk, const struct cat_plugin *p)
{
	msgpack_pack_map(pk, 9);
	mp_kv_str(pk, "kind", "plugin");
	mp_kv_str(pk, "name", p->name);
	mp_kv_str(pk, "family", p->family);
	mp_kv_str(pk, "version", p->version);
	mp_kv_str(pk, "sdk", p->sdk);
	mp_kv_str(pk, "description", p->description);
	pack_strings(pk, "requires", p->requires, p->n_requires);
	pack_strings(pk, "capabilities", p->capabilities, p->n_capabilities);
	pack_strings(pk, "classes", p->classes, p->n_classes);
}

static void list_row(msgpack_packer *pk, const char *kind, const char *name, const char *title,
		     const char *info)
{
	msgpack_pack_map(pk, 4);
	mp_kv_str(pk, "kind", kind);
	mp_kv_str(pk, "name", name);
	mp_kv_str(pk, "title", title);
	mp_kv_str(pk, "info", info);
}

/* The catalog's plugins this node has (in any state): a name set of the registry. */
struct present {
	const struct catalog *c;
	bool *has;
	int n;
};

static void mark_present(const char *name, enum plug_state st, const char *reason, void *ud)
{
	(void)st;
	(void)reason;
	struct present *pr = ud;
	for (int i = 0; i < pr->c->n_plugins; i++)
		if (!pr->has[i] && strcmp(pr->c->plugins[i].name, name) == 0) {
			pr->has[i] = true;
			pr->n++;
		}
}

static int cmd_catalog_list(struct cmd_call *call, void *ud)
{
	(void)ud;
	const struct catalog *c = call->k->catalog;
	const char *what = call->argc > 2 ? call->argv[2] : NULL;
	bool ds = !what || strcmp(what, "datasets") == 0;
	bool dv = !what || strcmp(what, "devices") == 0;
	bool pl = !what || strcmp(what, "plugins") == 0;
	if (call->argc > 3 || (!ds && !dv && !pl))
		return cmd_fail(call, LINLI_EINVAL,
				"usage: catalog list [datasets|devices|plugins]");
	/* Plugins: only those this node has (loaded from its plugin and script dirs or
	 * installed), whatever their state; `catalog show plugin NAME` shows any entry. */
	struct present pr = {c, NULL, 0};
	if (pl && c->n_plugins) {
		if (!(pr.has = calloc((size_t)c->n_plugins, sizeof *pr.has)))
			return cmd_fail(call, LINLI_ENOMEM, "out of memory");
		plug_each(call->k, mark_present, &pr);
	}
	size_t n = (ds ? (size_t)c->n_datasets : 0) + (dv ? (size_t)c->n_classes : 0) +
		   (pl ? (size_t)pr.n : 0);
	msgpack_packer *pk = &call->pk;
	msgpack_pack_array(pk, n);
	char title[512], info[256];
	for (int i = 0; ds && i < c->n_datasets; i++) {
		const struct cat_dataset *d = &c->datasets[i];
		snprintf(title, sizeof title, "%s / %s", d->title_zh, d->title_en);
		snprintf(info, sizeof info, "%s, %s level, %s%s%s%s, %d fields", d->family,
			 tier_level_name(d->level), cat_sharing_name(d->sharing),
			 d->restricted ? ", restricted" : "", d->system ? ", system" : "",
			 d->written_by ? ", written by the kernel" : "", d->n_fields);
		list_row(pk, "dataset", d->name, title, info);
	}
	for (int i = 0; dv && i < c->n_classes; i++) {
		const struct cat_device_class *d = &c->classes[i];
		snprintf(title, sizeof title, "%s / %s", d->title_zh, d->title_en);
		snprintf(info, sizeof info, "%d resources, %d commands, %d events%s%s",
			 d->n_resources, d->n_commands, d->n_events,
			 d->plugin ? "; alarms by " : "", d->plugin ? d->plugin : "");
		list_row(pk, "device", d->name, title, info);
	}
	for (int i = 0; pl && i < c->n_plugins; i++) {
		const struct cat_plugin *p = &c->plugins[i];
		if (!pr.has[i])
			continue;
		size_t o = (size_t)snprintf(info, sizeof info, "%s %s, sdk %s", p->family,
					    p->version, p->sdk);
		for (int j = 0; j < p->n_classes && o < sizeof info; j++)
			o += (size_t)snprintf(info + o, sizeof info - o, "%s%s",
					      j ? ", " : "; classes ", p->classes[j]);
		list_row(pk, "plugin", p->name, p->description, info);
	}
	free(pr.has);
	return 0;
}

static int cmd_catalog_show(struct cmd_call *call, void *ud)
{
	(void)ud;
	struct kernel *k = call->k;
	const struct catalog *c = k->catalog;
	const char *kind = NULL, *name;
	if (call->argc == 3)
		name = call->argv[2];
	else if (call->argc == 4) {
		kind = call->argv[2];
		name = call->argv[3];
		if (strcmp(kind, "dataset") && strcmp(kind, "device") && strcmp(kind, "plugin"))
			return cmd_fail(
			    call, LINLI_EINVAL,
			    "catalog show: kind '%.32s' is not dataset, device or plugin", kind);
	} else
		return cmd_fail(call, LINLI_EINVAL,
				"usage: catalog show [dataset|device|plugin] NAME");
	const struct cat_dataset *d =
	    !kind || !strcmp(kind, "dataset") ? catalog_dataset(c, name) : NULL;
	const struct cat_device_class *dc =
	    !kind || !strcmp(kind, "device") ? catalog_device_class(c, name) : NULL;
	const struct cat_plugin *p =
	    !kind || !strcmp(kind, "plugin") ? catalog_plugin(c, name) : NULL;
	int found = (d != NULL) + (dc != NULL) + (p != NULL);
	if (found == 0)
		return cmd_fail(call, LINLI_ENOENT, "catalog: no %s named '%.64s'",
				kind ? kind : "dataset, device class or plugin", name);
	if (found > 1)
		return cmd_fail(
		    call, LINLI_EINVAL,
		    "catalog: '%.64s' names a%s%s%s; say 'catalog show dataset|device|plugin "
		    "%.64s'",
		    name, d ? " dataset" : "",
		    dc ? (d ? " and a device class" : " device class") : "",
		    p ? " and a plugin" : "", name);
	if (d)
		pack_dataset(k, &call->pk, d,
			     !call->who || scope_within(call->who->scope, k->cfg.node_path));
	else if (dc)
		store_pack_class(&call->pk, dc, false);
	else
		pack_plugin(&call->pk, p);
	return 0;
}

/* ---- registration and the commit hook ---- */

/* Is work queued for the loop's next turn? (The queue is the kernel's only shared state.) */
static bool more_queued(struct kernel *k)
{
	pthread_mutex_lock(&k->mu);
	bool more = k->head != NULL;
	pthread_mutex_unlock(&k->mu);
	return more;
}

static void batch_end(struct kernel *k, void *arg)
{
	(void)arg;
	/* Group commit that adapts to load: store.h, store_batch_turn. */
	store_batch_turn(k->store, more_queued(k));
	/* After the commit, outside any write: watchers may read and write (the next batch). */
	store_changes_deliver(k->store);
}

static void wake_noop(struct kernel *k, void *arg)
{
	(void)k;
	(void)arg;
}

/*
 * The kernel runs batch-end hooks only after a batch of queued events; a
 * write made from a timer would otherwise wait for the next event. Posting
 * an empty event guarantees a batch end soon.
 */
void store_cmds_wake(void *kp)
{
	struct kernel *k = kp;
	/* A write after the loop ended (shutdown) is committed by store_close. */
	if (kernel_post(k, wake_noop, NULL) != 0)
		log_debug("store", "the loop is closed: store_close commits the batch");
}

int store_cmds_register(struct kernel *k)
{
	static const struct {
		const char *name, *sub, *usage, *summary;
		cmd_fn fn;
	} cmds[] = {
	    {"data", "get", "DATASET ID [--scope PATH]", "one record, as JSON", cmd_data_get},
	    {"data", "put", "DATASET [--scope PATH] [--id ID] [JSON | --stdin] [--id-field FIELD]",
	     "create or replace a record, or (--stdin) a JSON array of them in one commit "
	     "(acknowledged once committed)",
	     cmd_data_put},
	    {"data", "del", "DATASET ID [--scope PATH]", "delete a record", cmd_data_del},
	    {"data", "query",
	     "DATASET [--scope PATH] [--where FIELD{=,<,<=,>,>=}VALUE]... [--limit N] [--cursor C]",
	     "records of a scope subtree, filtered on indexed fields (equal, or a range of "
	     "numbers and times), a page at a time",
	     cmd_data_query},
	    {"store", "stats", "", "size, map, records, commits of the store", cmd_store_stats},
	    {"store", "backup", "DIR",
	     "write a compacted, consistent copy to DIR/data.mdb while serving", cmd_store_backup},
	    {"store", "verify", "",
	     "walk the whole store in a child process: every checksum, every table; counts "
	     "and the first damaged entries",
	     cmd_store_verify},
	    {"catalog", "list", "[datasets|devices|plugins]",
	     "datasets, device classes and plugins of the catalog", cmd_catalog_list},
	    {"catalog", "show", "[dataset|device|plugin] NAME", "one catalog entry in full",
	     cmd_catalog_show},
	};
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
		int rc = cmd_register(k->cmds, cmds[i].name, cmds[i].sub, cmds[i].usage,
				      cmds[i].summary, cmds[i].fn, NULL, k->store);
		if (rc)
			return rc;
	}
	store_set_group(k->store, (unsigned)k->cfg.store_group_max,
			(unsigned)k->cfg.store_group_commit_ms);
	return kernel_on_batch_end(k, batch_end, NULL);
}
