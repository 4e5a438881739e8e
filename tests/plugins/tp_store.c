/*
 * A test plugin of the store members of the function table. Each command
 * makes the calls it names and replies with what came back: "rc", "name"
 * (LINLI_E...), "error" (api->store_last_error) and the results. A "-"
 * argument stands for NULL.
 *
 *   tp_store get DATASET ID [SCOPE]            -> record, scope
 *   tp_store put DATASET SCOPE ID JSON         -> id, created
 *   tp_store del DATASET ID [SCOPE]
 *   tp_store scan DATASET [scope=S] [where=F=V]... [range=FopV]... [limit=N] [cursor=C]
 *        [stop=K] [fail=K] [size=1.0]
 *        one page -> rows [{id, scope, record}], count, cursor; stop=K ends the
 *        page after row K (callback returns 1), fail=K makes it return LINLI_EBUSY,
 *        write=1 makes it put a grids record {code: "w", name: <row id>} at the
 *        row's scope for every row (writes from inside a scan); size=1.0 passes
 *        the query with the size of SDK 1.0 (the range members are then not read)
 *   tp_store pages DATASET [scope=S] [where=F=V]... [limit=N]
 *        every page, following the cursors -> ids, pages
 *   tp_store update DATASET ID SCOPE MODE [ARG] [JSON]
 *        MODE incr FIELD [JSON]: add 1 to FIELD (a new record: JSON, or {} , with FIELD 1)
 *             keep | delete | fail | nothing
 *             bad FIELD: set FIELD to a string (a schema violation)
 *             replace JSON: return a new record made from JSON
 *             set FIELD VALUE: set a string field; drop FIELD: remove it
 *             nested: try store_put, store_delete, store_update and store_get inside
 *        -> old (the record the callback saw, or null), inner (nested's codes)
 *   tp_store count DATASET ID SCOPE N FIELD JSON
 *        a timer adds 1 to FIELD N times, two store_update calls per tick,
 *        each tick asking store_on_commit; `tp_store countstat` reports
 *   tp_store commit DATASET SCOPE JSON   put, then store_on_commit; `commitstat`
 *   tp_store lonely                      store_on_commit with no write pending
 *   tp_store lasterr                     store_last_error now
 *   tp_store finiarm DATASET SCOPE JSON  make fini put JSON and ask store_on_commit
 *        (the notice must never come: the plugin is gone by the commit)
 *   tp_store badquery                    store_scan with a query of size 4
 *
 * Built twice: tp_store (store.read/write of residents and grids, read of
 * incidents) and, with -DSENSITIVE, tp_store_sens (store.read of every
 * dataset, store.write:residents, sensitive:residents).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linli/linli.h>

static const struct linli_api *api;

static const char *arg(const struct linli_cmd_req *req, int i)
{
	if (i >= req->argc || strcmp(req->argv[i], "-") == 0)
		return NULL;
	return req->argv[i];
}

/* A reply with the call's code and the store's message. */
static linli_record *result(linli_ctx *ctx, int rc)
{
	linli_record *r = api->rec_new();
	api->rec_set_int(r, "rc", rc);
	api->rec_set_str(r, "name", linli_errname(rc < 0 ? rc : 0));
	api->rec_set_str(r, "error", api->store_last_error(ctx));
	return r;
}

static int usage(char *err, size_t errlen, const char *u)
{
	snprintf(err, errlen, "usage: tp_store %s", u);
	return LINLI_EINVAL;
}

static linli_record *from_json(const char *json, char *err, size_t errlen)
{
	linli_record *r = NULL;
	if (json && api->rec_from_json(json, strlen(json), &r, err, errlen) != 0)
		return NULL;
	return r;
}

/* ---- get, put, del ---- */

static int cmd_get(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply, char *err,
		   size_t errlen)
{
	if (req->argc < 2 || req->argc > 3)
		return usage(err, errlen, "get DATASET ID [SCOPE]");
	linli_record *rec = NULL;
	char scope[LINLI_SCOPE_MAX + 1] = "";
	int rc = api->store_get(ctx, arg(req, 0), arg(req, 2), arg(req, 1), &rec, scope);
	linli_record *r = result(ctx, rc);
	api->rec_set_bool(r, "rec_null", rec == NULL);
	if (rc == 0) {
		api->rec_set_record(r, "record", rec);
		api->rec_set_str(r, "scope", scope);
	}
	api->rec_free(rec);
	*reply = r;
	return 0;
}

static int cmd_put(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply, char *err,
		   size_t errlen)
{
	if (req->argc != 4)
		return usage(err, errlen, "put DATASET SCOPE ID JSON");
	linli_record *rec = from_json(arg(req, 3), err, errlen);
	if (!rec && arg(req, 3))
		return LINLI_EINVAL;
	char id[LINLI_ID_MAX + 1] = "";
	bool created = false;
	int rc = api->store_put(ctx, arg(req, 0), arg(req, 1), arg(req, 2), rec, id, &created);
	api->rec_free(rec);
	linli_record *r = result(ctx, rc);
	if (rc == 0) {
		api->rec_set_str(r, "id", id);
		api->rec_set_bool(r, "created", created);
	}
	*reply = r;
	return 0;
}

static int cmd_del(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply, char *err,
		   size_t errlen)
{
	if (req->argc < 2 || req->argc > 3)
		return usage(err, errlen, "del DATASET ID [SCOPE]");
	*reply = result(ctx, api->store_delete(ctx, arg(req, 0), arg(req, 2), arg(req, 1)));
	return 0;
}

/* ---- scan ---- */

struct scan_opts {
	struct linli_query q;
	struct linli_where where[LINLI_MAX_WHERE + 1];
	char wf[LINLI_MAX_WHERE + 1][64];
#ifdef LINLI_MAX_RANGE /* SDK 1.1: not in the frozen 1.0 headers tp_store_v10 builds with */
	struct linli_range range[LINLI_MAX_RANGE + 1];
	char rf[LINLI_MAX_RANGE + 1][64], rop[LINLI_MAX_RANGE + 1][4];
#endif
	long stop, fail;
	bool write;
};

static int parse_scan(const struct linli_cmd_req *req, struct scan_opts *o, char *err,
		      size_t errlen)
{
	memset(o, 0, sizeof *o);
	o->q.size = sizeof o->q;
	o->q.dataset = arg(req, 0);
	o->q.where = o->where;
	o->stop = o->fail = -1;
	for (int i = 1; i < req->argc; i++) {
		const char *w = req->argv[i];
		if (strncmp(w, "scope=", 6) == 0)
			o->q.scope = w + 6;
		else if (strncmp(w, "limit=", 6) == 0)
			o->q.limit = (size_t)strtoull(w + 6, NULL, 10);
		else if (strncmp(w, "cursor=", 7) == 0)
			o->q.cursor = w + 7;
		else if (strncmp(w, "stop=", 5) == 0)
			o->stop = strtol(w + 5, NULL, 10);
		else if (strncmp(w, "fail=", 5) == 0)
			o->fail = strtol(w + 5, NULL, 10);
		else if (strcmp(w, "write=1") == 0)
			o->write = true;
		else if (strcmp(w, "size=1.0") == 0) /* what a 1.0 plugin passes: no ranges */
			o->q.size = offsetof(struct linli_query, cursor) + sizeof(const char *);
		else if (strncmp(w, "where=", 6) == 0 && strchr(w + 6, '=') &&
			 o->q.n_where <= LINLI_MAX_WHERE) {
			/* One more than allowed is kept, to see the kernel refuse it. */
			const char *eq = strchr(w + 6, '=');
			int n = o->q.n_where++;
			snprintf(o->wf[n], sizeof o->wf[n], "%.*s", (int)(eq - w - 6), w + 6);
			o->where[n].field = o->wf[n];
			o->where[n].value = eq + 1;
#ifdef LINLI_MAX_RANGE
		} else if (strncmp(w, "range=", 6) == 0 && o->q.n_range <= LINLI_MAX_RANGE) {
			/* range=FIELD OP VALUE, the operator being any of <>=! */
			size_t fl = strcspn(w + 6, "<>=!"), ol = strspn(w + 6 + fl, "<>=!");
			int n = o->q.n_range++;
			o->q.range = o->range;
			snprintf(o->rf[n], sizeof o->rf[n], "%.*s", (int)fl, w + 6);
			snprintf(o->rop[n], sizeof o->rop[n], "%.*s", (int)ol, w + 6 + fl);
			o->range[n] = (struct linli_range){o->rf[n], o->rop[n], w + 6 + fl + ol};
#endif
		} else {
			snprintf(err, errlen, "tp_store scan: what is '%s'?", w);
			return LINLI_EINVAL;
		}
	}
	return 0;
}

struct scan_state {
	linli_record *rows; /* array */
	long stop, fail, seen;
	bool write;
};

static int on_row(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	struct scan_state *s = ud;
	if (s->write) {
		linli_record *g = api->rec_new();
		api->rec_set_str(g, "code", "w");
		api->rec_set_str(g, "name", row->id);
		int rc = api->store_put(ctx, "grids", row->scope, NULL, g, NULL, NULL);
		api->rec_free(g);
		if (rc)
			return rc;
	}
	linli_record *m;
	api->arr_push_map(s->rows, &m);
	api->rec_set_str(m, "id", row->id);
	api->rec_set_str(m, "scope", row->scope);
	api->rec_set_record(m, "record", row->record);
	long i = s->seen++;
	if (i == s->fail)
		return LINLI_EBUSY;
	return i == s->stop ? 1 : 0;
}

static int cmd_scan(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		    char *err, size_t errlen)
{
	struct scan_opts o;
	if (req->argc < 1)
		return usage(err, errlen, "scan DATASET [scope=S] [where=F=V]... [limit=N] ...");
	int rc = parse_scan(req, &o, err, errlen);
	if (rc)
		return rc;
	struct scan_state s = {
	    .rows = api->rec_new_array(), .stop = o.stop, .fail = o.fail, .write = o.write};
	char cursor[LINLI_CURSOR_MAX];
	rc = api->store_scan(ctx, &o.q, on_row, &s, cursor);
	linli_record *r = result(ctx, rc < 0 ? rc : 0);
	api->rec_set_int(r, "count", rc);
	api->rec_set_record(r, "rows", s.rows);
	api->rec_set_str(r, "cursor", cursor);
	api->rec_free(s.rows);
	*reply = r;
	return 0;
}

static int on_id(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	(void)ctx;
	return api->arr_push_str(ud, row->id);
}

static int cmd_pages(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		     char *err, size_t errlen)
{
	struct scan_opts o;
	if (req->argc < 1)
		return usage(err, errlen, "pages DATASET [scope=S] [where=F=V]... [limit=N]");
	int rc = parse_scan(req, &o, err, errlen);
	if (rc)
		return rc;
	linli_record *ids = api->rec_new_array(), *sizes = api->rec_new_array();
	char cursor[LINLI_CURSOR_MAX] = "";
	int pages = 0;
	do {
		o.q.cursor = cursor;
		rc = api->store_scan(ctx, &o.q, on_id, ids, cursor);
		if (rc < 0)
			break;
		api->arr_push_int(sizes, rc);
		rc = 0;
	} while (cursor[0] && ++pages < 10000);
	linli_record *r = result(ctx, rc);
	api->rec_set_record(r, "ids", ids);
	api->rec_set_record(r, "page_sizes", sizes);
	api->rec_free(ids);
	api->rec_free(sizes);
	*reply = r;
	return 0;
}

static int cmd_badquery(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
			char *err, size_t errlen)
{
	(void)req;
	(void)err;
	(void)errlen;
	struct linli_query q = {.size = 4, .dataset = "residents"};
	*reply = result(ctx, api->store_scan(ctx, &q, NULL, NULL, NULL));
	return 0;
}

/* ---- update ---- */

struct upd {
	const char *mode, *field, *json;
	linli_record *old;   /* a copy of what the callback saw */
	linli_record *inner; /* codes of the calls made inside */
};

static int incr(linli_record **rec, const char *field, const char *json, char *err, size_t errlen)
{
	if (!*rec && !(*rec = json ? from_json(json, err, errlen) : api->rec_new()))
		return LINLI_EINVAL;
	int64_t n = 0;
	api->rec_get_int(*rec, field, &n);
	return api->rec_set_int(*rec, field, n + 1);
}

static int on_update(linli_ctx *ctx, const char *id, linli_record **rec, void *ud, char *err,
		     size_t errlen)
{
	struct upd *u = ud;
	if (*rec)
		api->rec_copy(*rec, &u->old);
	const char *m = u->mode;
	if (strcmp(m, "incr") == 0)
		return incr(rec, u->field, u->json, err, errlen);
	if (strcmp(m, "keep") == 0)
		return LINLI_STORE_KEEP;
	if (strcmp(m, "delete") == 0)
		return LINLI_STORE_DELETE;
	if (strcmp(m, "fail") == 0) {
		snprintf(err, errlen, "tp_store refuses to update %s", id);
		return LINLI_EBUSY;
	}
	if (strcmp(m, "nothing") == 0) {
		*rec = NULL; /* the kernel still frees the one it gave */
		return 0;
	}
	if (strcmp(m, "bad") == 0) {
		if (!*rec)
			*rec = api->rec_new();
		return api->rec_set_str(*rec, u->field, "not a number");
	}
	if (strcmp(m, "set") == 0 && *rec)
		return api->rec_set_str(*rec, u->field, u->json ? u->json : "");
	if (strcmp(m, "drop") == 0 && *rec)
		return api->rec_remove(*rec, u->field);
	if (strcmp(m, "replace") == 0) {
		linli_record *n = from_json(u->field, err, errlen);
		if (!n)
			return LINLI_EINVAL;
		*rec = n; /* the kernel frees the old one and this one */
		return 0;
	}
	if (strcmp(m, "nested") == 0) {
		u->inner = api->rec_new();
		linli_record *p = api->rec_new(), *got = NULL;
		api->rec_set_int(u->inner, "put",
				 api->store_put(ctx, "grids", NULL, NULL, p, NULL, NULL));
		api->rec_set_str(u->inner, "put_error", api->store_last_error(ctx));
		api->rec_set_int(u->inner, "delete", api->store_delete(ctx, "grids", NULL, id));
		api->rec_set_int(u->inner, "update",
				 api->store_update(ctx, "grids", NULL, id, on_update, u));
		api->rec_set_int(u->inner, "get",
				 api->store_get(ctx, "grids", NULL, id, &got, NULL));
		api->rec_free(got);
		api->rec_free(p);
		return LINLI_STORE_KEEP;
	}
	snprintf(err, errlen, "unknown mode %s", m);
	return LINLI_EINVAL;
}

static int cmd_update(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		      char *err, size_t errlen)
{
	if (req->argc < 4 || req->argc > 6)
		return usage(err, errlen, "update DATASET ID SCOPE MODE [ARG] [JSON]");
	struct upd u = {.mode = req->argv[3], .field = arg(req, 4), .json = arg(req, 5)};
	int rc = api->store_update(ctx, arg(req, 0), arg(req, 2), arg(req, 1), on_update, &u);
	linli_record *r = result(ctx, rc);
	if (u.old)
		api->rec_set_record(r, "old", u.old);
	else
		api->rec_set_nil(r, "old");
	if (u.inner)
		api->rec_set_record(r, "inner", u.inner);
	api->rec_free(u.old);
	api->rec_free(u.inner);
	*reply = r;
	return 0;
}

/* ---- a counter from a timer; commit notices ---- */

static struct {
	char dataset[64], id[64], scope[256], field[64], json[512];
	int64_t target, done, failures, commits, commit_failures, notices_asked;
	int last_rc;
	uint64_t timer;
	bool running;
} cnt;

static int count_step(linli_ctx *ctx, const char *id, linli_record **rec, void *ud, char *err,
		      size_t errlen)
{
	(void)ctx;
	(void)id;
	(void)ud;
	return incr(rec, cnt.field, cnt.json, err, errlen);
}

static void count_committed(linli_ctx *ctx, int rc, const char *msg, void *ud)
{
	(void)ctx;
	(void)msg;
	(void)ud;
	if (rc == 0)
		cnt.commits++;
	else
		cnt.commit_failures++;
}

static void count_tick(linli_ctx *ctx, void *ud)
{
	(void)ud;
	/* Two read-modify-writes in one batch: the second must see the first. */
	for (int i = 0; i < 2 && cnt.done < cnt.target; i++) {
		int rc = api->store_update(ctx, cnt.dataset, cnt.scope, cnt.id, count_step, NULL);
		cnt.last_rc = rc;
		if (rc) {
			cnt.failures++;
			api->log(ctx, LINLI_LOG_WARN, "count: %s", api->store_last_error(ctx));
		} else
			cnt.done++;
	}
	if (api->store_on_commit(ctx, count_committed, NULL) == 0)
		cnt.notices_asked++;
	if (cnt.done >= cnt.target || cnt.failures) {
		api->timer_cancel(ctx, cnt.timer);
		cnt.running = false;
	}
}

static int cmd_count(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		     char *err, size_t errlen)
{
	if (req->argc != 6)
		return usage(err, errlen, "count DATASET ID SCOPE N FIELD JSON");
	if (cnt.running) {
		snprintf(err, errlen, "a count is running");
		return LINLI_EBUSY;
	}
	memset(&cnt, 0, sizeof cnt);
	snprintf(cnt.dataset, sizeof cnt.dataset, "%s", req->argv[0]);
	snprintf(cnt.id, sizeof cnt.id, "%s", req->argv[1]);
	snprintf(cnt.scope, sizeof cnt.scope, "%s", req->argv[2]);
	cnt.target = strtoll(req->argv[3], NULL, 10);
	snprintf(cnt.field, sizeof cnt.field, "%s", req->argv[4]);
	snprintf(cnt.json, sizeof cnt.json, "%s", req->argv[5]);
	int rc = api->timer_add(ctx, 1, 1, count_tick, NULL, &cnt.timer);
	cnt.running = rc == 0;
	*reply = result(ctx, rc);
	return 0;
}

static int cmd_countstat(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
			 char *err, size_t errlen)
{
	(void)req;
	(void)err;
	(void)errlen;
	linli_record *r = result(ctx, cnt.last_rc);
	api->rec_set_bool(r, "running", cnt.running);
	api->rec_set_int(r, "done", cnt.done);
	api->rec_set_int(r, "failures", cnt.failures);
	api->rec_set_int(r, "commits", cnt.commits);
	api->rec_set_int(r, "commit_failures", cnt.commit_failures);
	api->rec_set_int(r, "notices_asked", cnt.notices_asked);
	*reply = r;
	return 0;
}

static struct {
	int64_t told, last_rc;
	char last_id[LINLI_ID_MAX + 1];
} com;

static void on_committed(linli_ctx *ctx, int rc, const char *msg, void *ud)
{
	com.told++;
	com.last_rc = rc;
	snprintf(com.last_id, sizeof com.last_id, "%s", (const char *)ud);
	api->log(ctx, LINLI_LOG_INFO, "committed %s: rc %d (%s)", (const char *)ud, rc, msg);
	free(ud);
}

static int cmd_commit(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		      char *err, size_t errlen)
{
	if (req->argc != 3)
		return usage(err, errlen, "commit DATASET SCOPE JSON");
	linli_record *rec = from_json(req->argv[2], err, errlen);
	if (!rec)
		return LINLI_EINVAL;
	char id[LINLI_ID_MAX + 1] = "";
	int rc = api->store_put(ctx, req->argv[0], arg(req, 1), NULL, rec, id, NULL);
	api->rec_free(rec);
	int wrc = LINLI_ESTATE;
	char *copy = strdup(id);
	if (rc == 0 && copy && (wrc = api->store_on_commit(ctx, on_committed, copy)) == 0)
		copy = NULL;
	free(copy);
	linli_record *r = result(ctx, rc);
	api->rec_set_str(r, "id", id);
	api->rec_set_int(r, "on_commit", wrc);
	api->rec_set_int(r, "told_before_reply", com.told);
	*reply = r;
	return 0;
}

static int cmd_commitstat(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
			  char *err, size_t errlen)
{
	(void)req;
	(void)err;
	(void)errlen;
	linli_record *r = result(ctx, 0);
	api->rec_set_int(r, "told", com.told);
	api->rec_set_int(r, "last_rc", com.last_rc);
	api->rec_set_str(r, "last_id", com.last_id);
	*reply = r;
	return 0;
}

static void never(linli_ctx *ctx, int rc, const char *msg, void *ud)
{
	(void)rc;
	(void)msg;
	(void)ud;
	api->log(ctx, LINLI_LOG_ERROR, "a commit notice without a write");
}

static int cmd_lonely(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		      char *err, size_t errlen)
{
	(void)req;
	(void)err;
	(void)errlen;
	*reply = result(ctx, api->store_on_commit(ctx, never, NULL));
	return 0;
}

static int cmd_lasterr(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		       char *err, size_t errlen)
{
	(void)req;
	(void)err;
	(void)errlen;
	linli_record *r = api->rec_new();
	api->rec_set_str(r, "error", api->store_last_error(ctx));
	*reply = r;
	return 0;
}

static struct {
	bool armed;
	char dataset[64], scope[256], json[512];
} fini_put;

static int cmd_finiarm(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		       char *err, size_t errlen)
{
	if (req->argc != 3)
		return usage(err, errlen, "finiarm DATASET SCOPE JSON");
	fini_put.armed = true;
	snprintf(fini_put.dataset, sizeof fini_put.dataset, "%s", req->argv[0]);
	snprintf(fini_put.scope, sizeof fini_put.scope, "%s", req->argv[1]);
	snprintf(fini_put.json, sizeof fini_put.json, "%s", req->argv[2]);
	*reply = result(ctx, 0);
	return 0;
}

static void after_fini(linli_ctx *ctx, int rc, const char *msg, void *ud)
{
	(void)ud;
	api->log(ctx, LINLI_LOG_ERROR, "a commit notice after fini: rc %d %s", rc, msg);
}

#if LINLI_SDK_MINOR >= 1
/*
 * SDK 1.1: the caller. (Built against the frozen 1.0 headers as
 * tp_store_v10, the plugin has none of this: the 1.0 compatibility test.)
 *
 *   tp_store whoami                  -> the caller's fields
 *   tp_store ack                     needs tp_store.ack (operator) through cmd_require
 *   tp_store approve SCOPE           caller_may tp_store.approve (operator, street level or
 *                                    above, duty tp_store.checker) at SCOPE
 *   tp_store holders DUTY [SCOPE]    duty_holders
 *   tp_store keep / stale            keep the caller pointer, and call caller_may with it
 *                                    from a timer (which also files an audit entry, as the
 *                                    plugin) / what that call returned
 *   tp_store note ACTION SCOPE OBJECT RESULT [DETAIL]
 *                                    api->audit ("-" for NULL)
 */
static const struct linli_caller *kept;
#ifdef SENSITIVE
#define ACT(w) "tp_store_sens." w
#else
#define ACT(w) "tp_store." w
#endif

static void set_list(linli_record *r, const char *key, const char *const *v)
{
	linli_record *a = NULL;
	api->rec_set_array(r, key, &a);
	for (int i = 0; v && v[i]; i++)
		api->arr_push_str(a, v[i]);
}

static int cmd_whoami(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		      char *err, size_t errlen)
{
	(void)ctx, (void)err, (void)errlen;
	const struct linli_caller *c = req->caller;
	linli_record *r = api->rec_new();
	api->rec_set_int(r, "req_size", req->size);
	api->rec_set_str(r, "kind", c->kind);
	api->rec_set_str(r, "name", c->name);
	api->rec_set_str(r, "role", c->role);
	api->rec_set_str(r, "scope", c->scope);
	api->rec_set_str(r, "level", c->level);
	set_list(r, "grants", c->grants);
	set_list(r, "duties", c->duties);
	api->rec_set_bool(r, "key", c->resources != NULL);
	*reply = r;
	return 0;
}

static int cmd_ack(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		   char *err, size_t errlen)
{
	(void)ctx, (void)err, (void)errlen;
	linli_record *r = api->rec_new();
	api->rec_set_str(r, "acked_by", req->caller->name);
	*reply = r;
	return 0;
}

static int cmd_approve(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		       char *err, size_t errlen)
{
	if (req->argc != 1)
		return usage(err, errlen, "approve SCOPE");
	char why[512] = "";
	int rc = api->caller_may(ctx, req->caller, ACT("approve"), arg(req, 0), why,
				 sizeof why);
	linli_record *r = api->rec_new();
	api->rec_set_int(r, "rc", rc);
	api->rec_set_str(r, "name", linli_errname(rc < 0 ? rc : 0));
	api->rec_set_str(r, "error", why);
	*reply = r;
	return 0;
}

static int cmd_holders(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		       char *err, size_t errlen)
{
	if (req->argc < 1 || req->argc > 2)
		return usage(err, errlen, "holders DUTY [SCOPE]");
	linli_record *list = NULL;
	int rc = api->duty_holders(ctx, arg(req, 0), arg(req, 1), &list);
	linli_record *r = api->rec_new();
	api->rec_set_int(r, "rc", rc);
	api->rec_set_str(r, "name", linli_errname(rc < 0 ? rc : 0));
	if (list)
		api->rec_set_record(r, "holders", list);
	api->rec_free(list);
	*reply = r;
	return 0;
}

static int stale_rc = 1;
static char stale_err[512];

/* Outside any handler, the kept caller is no caller. */
static void stale_fire(linli_ctx *ctx, void *ud)
{
	(void)ud;
	stale_rc = api->caller_may(ctx, kept, ACT("ack"), NULL, stale_err, sizeof stale_err);
	api->audit(ctx, ACT("timer"), NULL, "stale", "allowed", "filed from a timer");
}

static int cmd_note(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		    char *err, size_t errlen)
{
	if (req->argc < 4 || req->argc > 5)
		return usage(err, errlen, "note ACTION SCOPE OBJECT RESULT [DETAIL]");
	int rc = api->audit(ctx, arg(req, 0), arg(req, 1), arg(req, 2), arg(req, 3), arg(req, 4));
	linli_record *r = api->rec_new();
	api->rec_set_int(r, "rc", rc);
	api->rec_set_str(r, "name", linli_errname(rc < 0 ? rc : 0));
	*reply = r;
	return 0;
}

static int cmd_keep(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		    char *err, size_t errlen)
{
	(void)reply, (void)err, (void)errlen;
	kept = req->caller;
	stale_rc = 1;
	return api->timer_add(ctx, 0, 0, stale_fire, NULL, NULL);
}

static int cmd_stale(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		     char *err, size_t errlen)
{
	(void)ctx, (void)req, (void)err, (void)errlen;
	linli_record *r = api->rec_new();
	api->rec_set_int(r, "rc", stale_rc);
	api->rec_set_str(r, "name", stale_rc == 1 ? "pending" : linli_errname(stale_rc));
	api->rec_set_str(r, "error", stale_err);
	*reply = r;
	return 0;
}

/* GET /api/v1/apps/tp_store/echo/{}?x=..: the param, the query, the key; ?fail=1 fails. */
static int route_echo(linli_ctx *ctx, const struct linli_http_req *req, linli_record **reply,
		      int *status, char *err, size_t errlen)
{
	(void)ctx;
	if (api->rec_has(req->query, "fail")) {
		snprintf(err, errlen, "asked to fail");
		return LINLI_EEXIST;
	}
	linli_record *r = api->rec_new();
	api->rec_set_str(r, "param", req->params[0]);
	api->rec_set_str(r, "route", req->route);
	api->rec_set_str(r, "path", req->path);
	api->rec_set_str(r, "key", req->caller->name);
	const char *x = NULL;
	if (api->rec_get_str(req->query, "x", &x, NULL) == 0)
		api->rec_set_str(r, "x", x);
	*reply = r;
	*status = 202;
	return 0;
}

static int caller_init(linli_ctx *ctx)
{
	int rc = api->action_declare(ctx, ACT("ack"), "operator", NULL, NULL, "acknowledge");
	if (!rc)
		rc = api->action_declare(ctx, ACT("approve"), "operator", "street",
					 "tp_store.checker", "approve a case");
	static const struct {
		const char *sub;
		linli_cmd_fn fn;
	} cmds[] = {{"whoami", cmd_whoami}, {"ack", cmd_ack},	  {"approve", cmd_approve},
		    {"holders", cmd_holders}, {"keep", cmd_keep}, {"stale", cmd_stale},
		    {"note", cmd_note}};
	for (size_t i = 0; !rc && i < sizeof cmds / sizeof cmds[0]; i++)
		rc = api->cmd_register(ctx, cmds[i].sub, NULL, "the caller", cmds[i].fn, NULL);
	if (!rc)
		rc = api->cmd_require(ctx, "ack", ACT("ack"));
	if (!rc)
		rc = api->route_register(ctx, "echo", "GET", "echo/{}", route_echo, NULL);
	/* Refusals of bad declarations, for the test to see in the log. */
	if (!rc && (api->action_declare(ctx, "other.x", "operator", NULL, NULL, NULL) !=
			LINLI_EINVAL ||
		    api->action_declare(ctx, ACT("y"), "boss", NULL, NULL, NULL) != LINLI_EINVAL ||
		    api->action_declare(ctx, ACT("ack"), "viewer", NULL, NULL, NULL) != LINLI_EEXIST ||
		    api->cmd_require(ctx, "ack", ACT("nosuch")) != LINLI_ENOENT))
		rc = LINLI_EINVAL;
	return rc;
}
#endif

static int store_init(linli_ctx *ctx, const struct linli_api *a)
{
	api = a;
	static const struct {
		const char *sub;
		linli_cmd_fn fn;
	} cmds[] = {
	    {"get", cmd_get},
	    {"put", cmd_put},
	    {"del", cmd_del},
	    {"scan", cmd_scan},
	    {"pages", cmd_pages},
	    {"badquery", cmd_badquery},
	    {"update", cmd_update},
	    {"count", cmd_count},
	    {"countstat", cmd_countstat},
	    {"commit", cmd_commit},
	    {"commitstat", cmd_commitstat},
	    {"lonely", cmd_lonely},
	    {"lasterr", cmd_lasterr},
	    {"finiarm", cmd_finiarm},
	};
	int rc = 0;
	for (size_t i = 0; !rc && i < sizeof cmds / sizeof cmds[0]; i++)
		rc =
		    api->cmd_register(ctx, cmds[i].sub, NULL, "try a store call", cmds[i].fn, NULL);
#if LINLI_SDK_MINOR >= 1
	if (!rc)
		rc = caller_init(ctx);
#endif
	return rc;
}

static void store_fini(linli_ctx *ctx, const struct linli_api *a)
{
	(void)a;
	if (!fini_put.armed)
		return;
	fini_put.armed = false;
	char err[256], id[LINLI_ID_MAX + 1] = "";
	linli_record *rec = from_json(fini_put.json, err, sizeof err);
	int rc = api->store_put(ctx, fini_put.dataset, fini_put.scope, NULL, rec, id, NULL);
	int wrc = rc ? rc : api->store_on_commit(ctx, after_fini, NULL);
	api->rec_free(rec);
	api->log(ctx, LINLI_LOG_INFO, "fini: put %s rc %d, on_commit rc %d", id, rc, wrc);
}

#ifdef SENSITIVE
/* A second copy that sees residents in clear and may read every dataset. */
LINLI_PLUGIN(store_init, store_fini, .name = "tp_store_sens", .version = "1.0.0",
	     .family = "custom", .description = "tp_store with the grant to see sensitive fields",
	     .capabilities = {"store.read", "store.write:residents", "sensitive:residents"});
#else
LINLI_PLUGIN(store_init, store_fini, .name = "tp_store", .version = "1.0.0", .family = "custom",
	     .description = "test plugin of the store table members",
	     .capabilities = {"store.read:residents", "store.write:residents", "store.read:grids",
			      "store.write:grids", "store.read:incidents"});
#endif
