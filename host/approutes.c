/*
 * approutes — see approutes.h.
 *
 * Routes live in one list (few: a plugin has a handful), each a tracked
 * resource of its plugin. The kernel serves /api/v1/apps/PLUGIN/REST for
 * every method; the handler matches the rest of the path against the plugin's
 * patterns segment by segment. A route's handler runs on the kernel thread
 * with the request's key as the plugin's caller (caller_serve_begin), so
 * what it reads and writes is what the key may, within the plugin's grants.
 */
#include "approutes.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apires.h"
#include "caller.h"
#include "http.h"
#include "json.h"
#include "kernel.h"
#include "linli/error.h"
#include "log.h"
#include "mp.h"
#include "opendata.h"
#include "record.h"
#include "watchdog.h"

#define PATTERN_MAX 256

struct approute {
	struct plugin *p;
	struct plug_res *res;
	char name[APPROUTE_NAME_MAX + 1];
	char method[8];
	char pattern[PATTERN_MAX];
	char action[CALLER_ACTION_MAX + 1];
	approute_run_fn run;
	void *arg;
	void (*free_arg)(void *);
	struct approute *next, **pprev;
};

static struct approute *routes;

static void route_release(void *a)
{
	struct approute *r = a;
	*r->pprev = r->next;
	if (r->next)
		r->next->pprev = r->pprev;
	if (r->free_arg)
		r->free_arg(r->arg);
	free(r);
}

static void route_describe(void *a, char *buf, size_t len)
{
	const struct approute *r = a;
	snprintf(buf, len, "%s: %s /api/v1/apps/%s/%s%s%s", r->name, r->method, plug_name(r->p),
		 r->pattern, r->action[0] ? ", needs " : "", r->action);
}

static const struct plug_res_ops route_ops = {
    .kind = "route", .release = route_release, .describe = route_describe};

static struct approute *find(const struct plugin *p, const char *name)
{
	for (struct approute *r = routes; r; r = r->next)
		if (r->p == p && strcmp(r->name, name) == 0)
			return r;
	return NULL;
}

static bool name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > APPROUTE_NAME_MAX || s[0] < 'a' || s[0] > 'z')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		      s[i] == '-'))
			return false;
	return true;
}

/* Segments of [A-Za-z0-9._-] or {}, no empty one, at most APPROUTE_MAX_PARAMS. */
static bool pattern_ok(const char *s, char *why, size_t whylen)
{
	if (!*s || strlen(s) >= PATTERN_MAX) {
		snprintf(why, whylen, "empty or longer than %d bytes", PATTERN_MAX - 1);
		return false;
	}
	int segs = 0;
	for (const char *p = s;;) {
		size_t n = strcspn(p, "/");
		bool param = n == 2 && strncmp(p, "{}", 2) == 0;
		if (n == 0 || (n <= 2 && p[0] == '.' && (n == 1 || p[1] == '.'))) {
			snprintf(why, whylen, "an empty, '.' or '..' segment");
			return false;
		}
		for (size_t i = 0; !param && i < n; i++) {
			char c = p[i];
			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-')) {
				snprintf(why, whylen,
					 "segment '%.*s': only A-Z, a-z, 0-9, '.', '_', "
					 "'-' or a whole {}",
					 (int)n, p);
				return false;
			}
		}
		if (++segs > APPROUTE_MAX_PARAMS) {
			snprintf(why, whylen, "more than %d segments", APPROUTE_MAX_PARAMS);
			return false;
		}
		if (!p[n])
			return true;
		p += n + 1;
	}
}

/* Does `path` match `pattern`? Copies the {} segments into params (NULL-terminated). */
static bool match(const char *pattern, const char *path, char **params, int *np)
{
	*np = http_path_match(pattern, path, params, APPROUTE_MAX_PARAMS);
	if (*np < 0) {
		*np = 0;
		return false;
	}
	params[*np] = NULL;
	return true;
}

int approute_add(struct plugin *p, const char *name, const char *method, const char *pattern,
		 approute_run_fn run, void *arg, void (*free_arg)(void *), char *err, size_t errlen)
{
	char why[160];
	if (!name || !name_ok(name)) {
		snprintf(err, errlen, "route '%.80s': a name [a-z][a-z0-9_-]*, at most %d bytes",
			 name ? name : "(null)", APPROUTE_NAME_MAX);
		return LINLI_EINVAL;
	}
	if (!method || (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0 &&
			strcmp(method, "PUT") != 0 && strcmp(method, "DELETE") != 0)) {
		snprintf(err, errlen, "route %s: method '%.20s' is none of GET, POST, PUT, DELETE",
			 name, method ? method : "(null)");
		return LINLI_EINVAL;
	}
	if (!pattern || !pattern_ok(pattern, why, sizeof why)) {
		snprintf(err, errlen, "route %s: pattern '%.80s': %s", name,
			 pattern ? pattern : "(null)", pattern ? why : "none");
		return LINLI_EINVAL;
	}
	if (!run) {
		snprintf(err, errlen, "route %s: no handler", name);
		return LINLI_EINVAL;
	}
	for (struct approute *r = routes; r; r = r->next)
		if (r->p == p &&
		    (strcmp(r->name, name) == 0 ||
		     (strcmp(r->method, method) == 0 && strcmp(r->pattern, pattern) == 0))) {
			snprintf(err, errlen, "route %s: %s", name,
				 strcmp(r->name, name) == 0 ? "the name is taken"
							    : "that method and pattern are taken");
			return LINLI_EEXIST;
		}
	struct approute *r = calloc(1, sizeof *r);
	if (!r) {
		snprintf(err, errlen, "out of memory");
		return LINLI_ENOMEM;
	}
	r->p = p;
	snprintf(r->name, sizeof r->name, "%s", name);
	snprintf(r->method, sizeof r->method, "%s", method);
	snprintf(r->pattern, sizeof r->pattern, "%s", pattern);
	r->run = run;
	r->arg = arg;
	r->free_arg = free_arg;
	r->next = routes;
	r->pprev = &routes;
	if (routes)
		routes->pprev = &r->next;
	routes = r;
	if (!(r->res = plug_track(p, &route_ops, r))) {
		r->free_arg = NULL; /* the caller keeps arg on failure */
		route_release(r);
		snprintf(err, errlen, "out of memory");
		return LINLI_ENOMEM;
	}
	return 0;
}

int approute_remove(struct plugin *p, const char *name)
{
	struct approute *r = name ? find(p, name) : NULL;
	if (!r)
		return LINLI_ENOENT;
	plug_release(p, r->res);
	return 0;
}

int approute_require(struct plugin *p, const char *name, const char *action)
{
	struct approute *r = name ? find(p, name) : NULL;
	if (!r || !caller_action_exists(p, action))
		return LINLI_ENOENT;
	snprintf(r->action, sizeof r->action, "%s", action);
	return 0;
}

/* ---- serving ---- */

static int status_of(int rc)
{
	switch (rc) {
	case LINLI_EPERM:
		return 403;
	case LINLI_ENOENT:
		return 404;
	case LINLI_EEXIST:
		return 409;
	case LINLI_EINVAL:
	case LINLI_ESCHEMA:
		return 400;
	case LINLI_EBUSY:
		return 429;
	default:
		return 500;
	}
}

/* The query string's parameters as a map of strings (the first value of each). */
static linli_record *query_map(struct http_req *r)
{
	linli_record *m = record_new();
	if (!m || !r->query)
		return m;
	for (const char *q = r->query; *q;) {
		size_t n = strcspn(q, "&"), kn = strcspn(q, "=&");
		char key[128];
		if (kn && kn < sizeof key) {
			memcpy(key, q, kn);
			key[kn] = '\0';
			char *v = record_has(m, key) ? NULL : http_query(r, key);
			if (v)
				record_set_str(m, key, v);
			free(v);
		}
		q += n;
		if (*q)
			q++;
	}
	return m;
}

/*
 * Serve `rest` (a path relative to /api/v1/apps/<plugin>/) of `plugin` for request r.
 * `alias`: the request came by a kernel path handed to the plugin (POST
 * /api/v1/applications): when the plugin serves nothing there, 503 naming it.
 */
static int serve_at(struct http_req *r, const char *plugin, const char *rest, bool alias)
{
	const char *kscope = NULL;
	const struct apires_set *res = NULL;
	const struct tier_principal *key = opendata_key(r, &kscope, &res);
	char object[APPROUTE_NAME_MAX + 40];
	snprintf(object, sizeof object, "app:%.31s", plugin);
	struct approute *rt = NULL;
	bool path_known = false;
	char *params[APPROUTE_MAX_PARAMS + 1] = {NULL};
	int np = 0;
	for (struct approute *x = routes; x && !rt; x = x->next) {
		if (strcmp(plug_name(x->p), plugin) != 0 || !match(x->pattern, rest, params, &np))
			continue;
		path_known = true;
		if (strcmp(x->method, r->method) == 0)
			rt = x;
		else {
			for (int i = 0; i < np; i++)
				free(params[i]);
			np = 0;
		}
	}
	int st;
	if (!rt) {
		st = path_known
			 ? http_error(r, 405, "method %s not allowed on %s", r->method, r->path)
		     : alias ? http_error(r, 503,
					  "%s is served by the %s plugin, which is not "
					  "running here (nothing was stored)",
					  r->path, plugin)
			     : http_error(r, 404, "no such resource: %s", r->path);
		return opendata_audited(r, kscope, object, "denied", st);
	}
	snprintf(object, sizeof object, "app:%s/%s", plugin, rt->name);
	if (!res || !apires_allows(res, APIRES_APP, plugin, rt->name)) {
		st = http_error(r, 403, "key '%s' may not reach %s", key ? key->name + 7 : "?",
				object);
		goto out;
	}
	linli_record *body = NULL;
	if (r->body && r->body_len) {
		json_error_t je;
		json_t *j = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &je);
		msgpack_sbuffer sb;
		msgpack_packer pk;
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		int deep = j && (json_is_object(j) || json_is_array(j)) ? json_to_mp(j, &pk) : 0;
		char err[256];
		if (!j)
			st = http_error(r, 400, "malformed JSON at line %d column %d: %s", je.line,
					je.column, je.text);
		else if (!json_is_object(j) && !json_is_array(j))
			st = http_error(r, 400, "the body must be a JSON object or array");
		else if (deep)
			st = http_error(r, 400, "the body nests deeper than %d levels",
					MP_MAX_DEPTH);
		else if (record_from_bytes(sb.data, sb.size, &body, err, sizeof err) != 0)
			st = http_error(r, 400, "the body: %s", err);
		else
			st = 0;
		json_decref(j);
		msgpack_sbuffer_destroy(&sb);
		if (st)
			goto out;
	}
	struct caller_view cv;
	caller_view_make(&cv, key, res);
	linli_record *query = query_map(r);
	struct approute_call c = {
	    .pub = {.size = sizeof(struct linli_http_req),
		    .method = r->method,
		    .route = rt->name,
		    .path = rest,
		    .params = (const char *const *)params,
		    .query = query,
		    .body = body,
		    .caller = &cv.pub},
	    .cv = &cv,
	};
	char err[768] = "";
	struct plug_acting saved;
	struct plugin *p = rt->p;
	int rc = caller_serve_begin(p, key, &cv.pub, rt->action[0] ? rt->action : NULL, &saved, err,
				    sizeof err);
	msgpack_sbuffer out;
	msgpack_sbuffer_init(&out);
	int status = 0;
	if (!rc) {
		rc = rt->run(rt->arg, &c, &out, &status, err, sizeof err); /* rt may be gone now */
		caller_serve_end(p, &saved);
	}
	record_free(query);
	record_free(body);
	if (rc) {
		st = http_error(r, status >= 400 && status <= 599 ? status : status_of(rc), "%s",
				err[0] ? err : linli_strerror(rc));
	} else {
		st = status >= 200 && status <= 299 ? status : 200;
		json_t *j = NULL;
		if (out.size) {
			msgpack_unpacked up;
			msgpack_unpacked_init(&up);
			size_t off = 0;
			if (msgpack_unpack_next(&up, out.data, out.size, &off) ==
			    MSGPACK_UNPACK_SUCCESS)
				j = json_from_mp(&up.data);
			msgpack_unpacked_destroy(&up);
			if (!j)
				st = http_error(r, 500, "the reply of %s cannot be JSON", object);
		}
		if (st < 400) {
			json_decref(r->resp);
			r->resp = j ? j : json_object();
		}
	}
	msgpack_sbuffer_destroy(&out);
out:
	for (int i = 0; i < np; i++)
		free(params[i]);
	/* Under the key; the object names the plugin and the route. */
	return opendata_audited(r, kscope, object, st < 400 ? "allowed" : "denied", st);
}

static int serve(struct http_req *r, void *ud)
{
	(void)ud;
	return serve_at(r, r->params[0], r->params[1], false);
}

/*
 * The applications API (issue 18): /api/v1/applications[/REST] is the services
 * plugin's route "applications[/REST]" — the key, its resource app:services[/ROUTE],
 * the action, the audit and the handler exactly as under /api/v1/apps/services/. The
 * kernel stores nothing itself: without the plugin the answer is 503.
 */
static int serve_applications(struct http_req *r, void *ud)
{
	(void)ud;
	char rest[PATTERN_MAX];
	if (r->n_params > 0 && r->params[0] && r->params[0][0])
		snprintf(rest, sizeof rest, "applications/%s", r->params[0]);
	else
		snprintf(rest, sizeof rest, "applications");
	return serve_at(r, "services", rest, true);
}

int approute_call_as(const struct tier_principal *who, const char *plugin, const char *name,
		     const char *const *query, json_t **out, char *err, size_t errlen)
{
	*out = NULL;
	struct approute *rt = NULL;
	for (struct approute *x = routes; x && !rt; x = x->next)
		if (strcmp(plug_name(x->p), plugin) == 0 && strcmp(x->name, name) == 0 &&
		    strcmp(x->method, "GET") == 0 && !strstr(x->pattern, "{}"))
			rt = x;
	if (!rt) {
		snprintf(err, errlen, "the %s plugin serves no route '%s' here", plugin, name);
		return 404;
	}
	linli_record *q = record_new();
	for (int i = 0; q && query && query[i] && query[i + 1]; i += 2)
		record_set_str(q, query[i], query[i + 1]);
	if (!q) {
		snprintf(err, errlen, "out of memory");
		return 503;
	}
	char pattern[PATTERN_MAX];
	snprintf(pattern, sizeof pattern, "%s", rt->pattern);
	char *params[1] = {NULL};
	struct caller_view cv;
	caller_view_make(&cv, who, NULL);
	struct approute_call c = {
	    .pub = {.size = sizeof(struct linli_http_req),
		    .method = "GET",
		    .route = rt->name,
		    .path = pattern,
		    .params = (const char *const *)params,
		    .query = q,
		    .body = NULL,
		    .caller = &cv.pub},
	    .cv = &cv,
	};
	struct plug_acting saved;
	struct plugin *p = rt->p;
	err[0] = '\0';
	int rc = caller_serve_begin(p, who, &cv.pub, rt->action[0] ? rt->action : NULL, &saved, err,
				    errlen);
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	int status = 0;
	if (!rc) {
		rc = rt->run(rt->arg, &c, &sb, &status, err, errlen); /* rt may be gone now */
		caller_serve_end(p, &saved);
	}
	record_free(q);
	int st;
	if (rc) {
		st = status >= 400 && status <= 599 ? status : status_of(rc);
		if (!err[0])
			snprintf(err, errlen, "%s", linli_strerror(rc));
	} else {
		st = 200;
		if (sb.size) {
			msgpack_unpacked up;
			msgpack_unpacked_init(&up);
			size_t off = 0;
			if (msgpack_unpack_next(&up, sb.data, sb.size, &off) ==
			    MSGPACK_UNPACK_SUCCESS)
				*out = json_from_mp(&up.data);
			msgpack_unpacked_destroy(&up);
			if (!*out) {
				snprintf(err, errlen, "the reply of app:%s/%s cannot be JSON",
					 plugin, name);
				st = 500;
			}
		} else if (!(*out = json_object())) {
			snprintf(err, errlen, "out of memory");
			st = 503;
		}
	}
	msgpack_sbuffer_destroy(&sb);
	return st;
}

int approutes_register(struct kernel *k, struct http *h)
{
	(void)k;
	static const char *const methods[] = {"GET", "POST", "PUT", "DELETE"};
	for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
		int rc = http_route(h, methods[i], "/api/v1/apps/{}/**", true, serve, NULL);
		if (!rc)
			rc = http_route(h, methods[i], "/api/v1/applications", true,
					serve_applications, NULL);
		if (!rc)
			rc = http_route(h, methods[i], "/api/v1/applications/**", true,
					serve_applications, NULL);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- the C members ---- */

struct croute {
	linli_route_fn fn;
	void *ud;
	struct plugin *p;
};

static int crun(void *arg, const struct approute_call *c, msgpack_sbuffer *reply, int *status,
		char *err, size_t errlen)
{
	struct croute *cr = arg;
	struct linli_http_req req = c->pub;
	req.ud = cr->ud;
	linli_record *out = NULL;
	struct wd_frame wd;
	wd_enter(&wd, plug_name(cr->p), "route handler", req.route, 0);
	int rc = cr->fn(plug_ctx(cr->p), &req, &out, status, err, errlen);
	wd_leave(&wd);
	if (rc > 0)
		rc = LINLI_EINVAL;
	if (!rc && out) {
		msgpack_packer pk;
		msgpack_packer_init(&pk, reply, msgpack_sbuffer_write);
		record_pack(out, &pk);
	}
	record_free(out);
	return rc;
}

int approutes_api_register(linli_ctx *ctx, const char *name, const char *method,
			   const char *pattern, linli_route_fn fn, void *ud)
{
	struct plugin *p = plug_from_ctx(ctx);
	char err[256];
	struct croute *cr = fn ? calloc(1, sizeof *cr) : NULL;
	if (fn && !cr)
		return LINLI_ENOMEM;
	if (cr)
		*cr = (struct croute){fn, ud, p};
	int rc =
	    approute_add(p, name, method, pattern, fn ? crun : NULL, cr, free, err, sizeof err);
	if (rc) {
		free(cr);
		log_warn(plug_name(p), "route_register: %s", err);
	}
	return rc;
}

int approutes_api_require(linli_ctx *ctx, const char *name, const char *action)
{
	struct plugin *p = plug_from_ctx(ctx);
	int rc = approute_require(p, name, action);
	if (rc)
		log_warn(plug_name(p), "route_require %s %s: no such route or action",
			 name ? name : "(null)", action ? action : "(null)");
	return rc;
}

int approutes_api_unregister(linli_ctx *ctx, const char *name)
{
	return approute_remove(plug_from_ctx(ctx), name);
}
