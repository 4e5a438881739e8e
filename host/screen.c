/*
 * screen — see screen.h.
 *
 * The cookie holds a random 256-bit token; only its BLAKE2b hash is kept,
 * beside the CSRF token, the principal (a person: the console session's
 * token, re-checked through tiers_attach at every request; a display key:
 * its name, re-checked against the apikeys dataset) and the expiry.
 */
#include "screen.h"

#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "access.h"
#include "apires.h"
#include "approutes.h"
#include "catalog.h"
#include "clock.h"
#include "cmd.h"
#include "hal.h"
#include "http.h"
#include "kernel.h"
#include "linli/error.h"
#include "log.h"
#include "mp.h"
#include "opendata.h"
#include "scope.h"
#include "store.h"
#include "util.h"
#include "tier.h"
#include "tier_store.h"

#define COOKIE	       "linli_screen"
#define SESSIONS_MAX   4096 /* live screen sessions at once */
#define USER_MAX       64
#define FAIL_WINDOW_MS 60000

struct ssess {
	char id[65];   /* BLAKE2b of the cookie's token, hex */
	char csrf[65]; /* what X-Linli-CSRF must say */
	bool display;  /* a wall screen's display key, not a person */
	char name[USER_MAX + 8];
	char role[16];
	char scope[SCOPE_MAX + 1];
	char token[65]; /* a person: the console session's token; a display: its key's hash */
	uint64_t expires_ms;
	struct ssess *next;
};

struct fails {
	char key[80]; /* "u:" and a user name, or "a:" and a client's address */
	uint64_t since_ms; /* the window's start */
	int n;
	struct fails *next;
};

/* A file of the web dir, read whole at start: only these are ever served. */
struct wfile {
	char *rel; /* path under the web dir, e.g. "vendor/echarts/echarts.min.js" */
	char *data;
	size_t len;
	const char *type;
	const char *cache;
};

#define WEB_MAX_FILES 256
#define WEB_MAX_BYTES (16u << 20)

/* A long poll of the alarms panel, parked until a change in its scope or its time is up. */
struct apoll {
	struct http_req *r;
	uint64_t timer;
	char scope[SCOPE_MAX + 1];
	bool ticker;	/* a poll of the ticker (else of the alarms panel) */
	uint64_t after; /* the ticker's: the last event the page has */
	struct apoll *next;
};

/*
 * The ticker: the latest events (alarms raised, acknowledged, cleared; incidents moved),
 * kept in a ring, numbered from 1 since the start; a page polls for those after the last
 * it has. Only what the panels show: ids, types, severities, verbs, states, places.
 */
#define TICKER_MAX  256 /* events kept */
#define TICKER_ROWS 30	/* events in one answer, the newest */

struct tev {
	uint64_t seq;
	int64_t at;
	char kind[12]; /* "alarm", "incident" */
	char what[24]; /* raised, acknowledged, cleared / the move's verb */
	char type[65]; /* the alarm's type / the incident's new state */
	char severity[16];
	char id[64];
	char scope[SCOPE_MAX + 1];
};

#define POLL_WAIT_MS   25000 /* the longest a poll waits for a change */
#define POLLS_MAX      1024
#define PANEL_ROWS     50     /* alarms listed on the panel, newest first */
#define PANEL_SCAN_MAX 100000 /* active alarms counted, at most */

static struct {
	struct kernel *k;
	struct apoll *polls;
	int n_polls;
	uint64_t version; /* the alarms' cursor: bumped at every change */
	uint64_t watch;	  /* the store watch on alarms, 0 if none */
	bool wake_due;	  /* a turn that answers the woken polls is queued */
	struct wfile files[WEB_MAX_FILES];
	int n_files;
	size_t web_bytes;
	char web_dir[4096];
	struct ssess *sessions;
	int n_sessions;
	struct fails *fails;
	int hashing; /* logins whose password is being verified */
	struct tev *ticker; /* TICKER_MAX slots, seq % TICKER_MAX */
	uint64_t tseq;	    /* the last event's number */
	uint64_t mwatch;    /* the store watch on incident_moves, 0 if none */
} sc;

static void hash_hex(const char *s, char out[65])
{
	unsigned char h[32];
	crypto_generichash(h, sizeof h, (const unsigned char *)s, strlen(s), NULL, 0);
	sodium_bin2hex(out, 65, h, sizeof h);
}

static void sess_unlink(struct ssess *s)
{
	for (struct ssess **pp = &sc.sessions; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			sc.n_sessions--;
			sodium_memzero(s, sizeof *s);
			free(s);
			return;
		}
}

static void sweep(void)
{
	uint64_t now = kernel_now_ms();
	struct ssess **pp = &sc.sessions;
	while (*pp) {
		struct ssess *s = *pp;
		if (s->expires_ms <= now) {
			*pp = s->next;
			sc.n_sessions--;
			sodium_memzero(s, sizeof *s);
			free(s);
		} else
			pp = &s->next;
	}
	struct fails **fp = &sc.fails;
	while (*fp) {
		struct fails *f = *fp;
		if (now - f->since_ms >= FAIL_WINDOW_MS) {
			*fp = f->next;
			free(f);
		} else
			fp = &f->next;
	}
}

/* The failure count of `name` ('u'ser or 'a'ddress) in the current window (made on demand when add). */
static struct fails *fails_of(char kind, const char *name, bool add)
{
	uint64_t now = kernel_now_ms();
	char key[sizeof ((struct fails *)0)->key];
	snprintf(key, sizeof key, "%c:%s", kind, name);
	struct fails *f = sc.fails;
	while (f && strcmp(f->key, key) != 0)
		f = f->next;
	if (f && now - f->since_ms >= FAIL_WINDOW_MS) {
		f->since_ms = now;
		f->n = 0;
	}
	if (!f && add && (f = calloc(1, sizeof *f)) != NULL) {
		memcpy(f->key, key, sizeof key);
		f->since_ms = now;
		f->next = sc.fails;
		sc.fails = f;
	}
	return f;
}

/* One more failure of the request's user name (if any) and of its client's address. */
static void fails_add(const struct http_req *r, const char *user)
{
	struct fails *f;
	if (user && (f = fails_of('u', user, true)) != NULL)
		f->n++;
	if (r->peer[0] && (f = fails_of('a', r->peer, true)) != NULL)
		f->n++;
}

/*
 * 429 with Retry-After when `name` has had `max` failures in this window
 * (what: "of 'wang'", "from 10.0.0.7"); 0 otherwise.
 */
static int fails_limit(struct http_req *r, char kind, const char *name, int max)
{
	struct fails *f = name[0] ? fails_of(kind, name, false) : NULL;
	if (!f || f->n < max)
		return 0;
	uint64_t left = FAIL_WINDOW_MS - (kernel_now_ms() - f->since_ms);
	snprintf(r->retry_after, sizeof r->retry_after, "%llu",
		 (unsigned long long)(left + 999) / 1000);
	if (kind == 'u')
		return http_error(r, 429,
				  "%d failed logins of '%s' in the last minute: try again in %s s",
				  f->n, name, r->retry_after);
	return http_error(r, 429,
			  "%d failed logins or display keys from %s in the last minute "
			  "(http.login_address_failures): try again in %s s",
			  f->n, name, r->retry_after);
}

/* The value of our cookie in the Cookie header, or "" (out has 65 bytes). */
static void cookie_token(const struct http_req *r, char out[65])
{
	out[0] = '\0';
	const char *c = r->cookie;
	while (c && *c) {
		while (*c == ' ' || *c == ';')
			c++;
		size_t n = strcspn(c, ";");
		if (strncmp(c, COOKIE "=", sizeof COOKIE) == 0) {
			size_t vl = n - sizeof COOKIE;
			if (vl == 64) {
				memcpy(out, c + sizeof COOKIE, 64);
				out[64] = '\0';
			}
			return;
		}
		c += n;
	}
}

/* Set the session cookie (token) or clear it (NULL) on the answer. */
static void set_cookie(struct http_req *r, const char *token)
{
	char buf[256];
	snprintf(buf, sizeof buf, "%s=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%d%s", COOKIE,
		 token ? token : "", token ? sc.k->cfg.session_ttl_s : 0,
		 r->secure ? "; Secure" : "");
	free(r->set_cookie);
	r->set_cookie = strdup(buf);
}

/* Credentials never travel in a URL: a login or display request with a query is refused. */
static int no_query(struct http_req *r)
{
	if (r->query)
		return http_error(
		    r, 400, "credentials go in the JSON body, never in the URL: drop '?%.40s'",
		    r->query);
	return 0;
}

/* The body as a JSON object with the string fields named (NULL-terminated); 400 otherwise. */
static int body_fields(struct http_req *r, json_t **root, const char *const *names,
		       const char **vals)
{
	json_error_t je;
	*root = NULL;
	if (!r->body)
		return http_error(r, 400, "a JSON body is needed: {%s}",
				  names[1] ? "\"user\": ..., \"password\": ..." : "\"key\": ...");
	json_t *j = json_loadb(r->body, r->body_len, 0, &je);
	if (!j)
		return http_error(r, 400, "body: not JSON (line %d: %s)", je.line, je.text);
	if (!json_is_object(j)) {
		json_decref(j);
		return http_error(r, 400, "body: a JSON object is needed");
	}
	for (int i = 0; names[i]; i++) {
		json_t *v = json_object_get(j, names[i]);
		if (!json_is_string(v) || !*json_string_value(v)) {
			json_decref(j);
			return http_error(r, 400, "body: field '%s' must be a non-empty string",
					  names[i]);
		}
		vals[i] = json_string_value(v);
	}
	*root = j;
	return 0;
}

/* A new session for the answer to r: cookie set, returned for the caller to fill. */
static struct ssess *sess_new(struct http_req *r, char csrf_out[65])
{
	if (sc.n_sessions >= SESSIONS_MAX) {
		sweep();
		if (sc.n_sessions >= SESSIONS_MAX)
			return NULL;
	}
	struct ssess *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	char token[65];
	tier_token_new(token);
	hash_hex(token, s->id);
	tier_token_new(s->csrf);
	snprintf(csrf_out, 65, "%s", s->csrf);
	s->expires_ms = kernel_now_ms() + (uint64_t)sc.k->cfg.session_ttl_s * 1000;
	set_cookie(r, token);
	sodium_memzero(token, sizeof token);
	s->next = sc.sessions;
	sc.sessions = s;
	sc.n_sessions++;
	return s;
}

static json_t *sess_json(const struct ssess *s, bool with_csrf)
{
	uint64_t now = kernel_now_ms();
	json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:I}", "kind", s->display ? "display" : "person",
			      "name", s->display ? s->name + 7 : s->name, "role", s->role, "scope",
			      s->scope, "expires_in_s",
			      (json_int_t)((s->expires_ms > now ? s->expires_ms - now : 0) / 1000));
	if (j && with_csrf)
		json_object_set_new(j, "csrf", json_string(s->csrf));
	return j;
}

/*
 * The live session of r's cookie, re-checked: a person's console session
 * must still stand (tiers_attach: not logged out, expired, disabled, its
 * password unchanged), a display key must not be revoked. NULL with a 401.
 */
static struct ssess *session_of(struct http_req *r, int *status)
{
	char tok[65], id[65];
	cookie_token(r, tok);
	if (!tok[0]) {
		*status = http_error(r, 401, "not logged in: POST /screen/api/login first");
		return NULL;
	}
	hash_hex(tok, id);
	sodium_memzero(tok, sizeof tok);
	struct ssess *s = sc.sessions;
	while (s && sodium_memcmp(s->id, id, 64) != 0)
		s = s->next;
	if (!s) {
		*status = http_error(r, 401, "unknown or ended screen session: log in again");
		set_cookie(r, NULL);
		return NULL;
	}
	if (s->expires_ms <= kernel_now_ms()) {
		sess_unlink(s);
		set_cookie(r, NULL);
		*status = http_error(r, 401, "screen session expired: log in again");
		return NULL;
	}
	if (s->display) {
		char name[OPENDATA_NAME_MAX], scope[SCOPE_MAX + 1], err[256];
		struct apires_set *res = malloc(sizeof *res);
		int st = res ? opendata_key_check(sc.k, s->token, name, scope, res, err, sizeof err)
			     : 503;
		bool ok = st == 0 && apires_allows(res, APIRES_SCREEN, NULL, NULL);
		free(res);
		if (st == 503) {
			*status = http_error(r, 503, "cannot check the display key: %s", err);
			return NULL;
		}
		if (!ok) {
			sess_unlink(s);
			set_cookie(r, NULL);
			*status = http_error(r, 401,
					     "screen session ended: the display key was "
					     "revoked or lost its screen resource");
			return NULL;
		}
		return s;
	}
	char *argv[] = {"whoami"};
	struct cmd_call *call = cmd_call_new(sc.k, 1, argv);
	if (!call || !(call->session = strdup(s->token))) {
		cmd_call_free(call);
		*status = http_error(r, 503, "out of memory");
		return NULL;
	}
	int rc = tiers_attach(sc.k, call);
	if (rc) {
		*status = http_error(r, 401, "screen session ended: %s", call->err);
		cmd_call_free(call);
		sess_unlink(s);
		set_cookie(r, NULL);
		return NULL;
	}
	/* What the account is now (a role or node change ends the session anyway). */
	snprintf(s->role, sizeof s->role, "%s", tier_role_name(call->who->role));
	snprintf(s->scope, sizeof s->scope, "%s", call->who->scope);
	cmd_call_free(call);
	return s;
}

/* A state-changing request carries X-Linli-CSRF equal to the session's token. */
static int csrf_ok(struct http_req *r, const struct ssess *s)
{
	if (!r->csrf)
		return http_error(r, 403,
				  "header X-Linli-CSRF is missing (the token given at login)");
	if (strlen(r->csrf) != 64 || sodium_memcmp(r->csrf, s->csrf, 64) != 0)
		return http_error(r, 403, "header X-Linli-CSRF does not match this session");
	return 0;
}

/* ---- login ---- */

static void login_finished(struct cmd_call *call, int rc)
{
	struct http_req *r = call->transport;
	const char *user = call->argc > 1 ? call->argv[1] : "";
	int st;
	sc.hashing--;
	if (rc == LINLI_EAUTH) {
		fails_add(r, user);
		st = http_error(r, 401, "%s", call->err);
	} else if (rc) {
		st = http_error(r, 503, "%s", call->err[0] ? call->err : "login failed");
	} else {
		msgpack_unpacked up;
		msgpack_unpacked_init(&up);
		size_t off = 0;
		char csrf[65];
		struct ssess *s = NULL;
		if (msgpack_unpack_next(&up, call->data.data, call->data.size, &off) ==
			MSGPACK_UNPACK_SUCCESS &&
		    (s = sess_new(r, csrf)) != NULL) {
			mp_copy_str(mp_get(&up.data, "token"), s->token, sizeof s->token);
			mp_copy_str(mp_get(&up.data, "user"), s->name, sizeof s->name);
			mp_copy_str(mp_get(&up.data, "role"), s->role, sizeof s->role);
			mp_copy_str(mp_get(&up.data, "scope"), s->scope, sizeof s->scope);
			json_decref(r->resp);
			r->resp = sess_json(s, true);
			st = 200;
			log_info("screen", "%s logged in to the screen (%s at %s)", s->name,
				 s->role, s->scope);
		} else
			st = http_error(r, 503, "too many screen sessions (%d)", SESSIONS_MAX);
		msgpack_unpacked_destroy(&up);
	}
	cmd_call_free(call);
	http_finish(r, st);
}

/* POST /screen/api/login {"user": ..., "password": ...} */
static int post_login(struct http_req *r, void *ud)
{
	(void)ud;
	struct kernel *k = r->k;
	int st = no_query(r);
	if (st)
		return st;
	static const char *const names[] = {"user", "password", NULL};
	const char *vals[2];
	json_t *root;
	if ((st = body_fields(r, &root, names, vals)))
		return st;
	sweep();
	char user[USER_MAX + 1];
	snprintf(user, sizeof user, "%s", vals[0]);
	if ((st = fails_limit(r, 'a', r->peer, k->cfg.http_login_address_failures)) ||
	    (st = fails_limit(r, 'u', user, k->cfg.http_login_failures))) {
		json_decref(root);
		return st;
	}
	if (sc.hashing >= k->cfg.http_login_concurrency) {
		snprintf(r->retry_after, sizeof r->retry_after, "1");
		json_decref(root);
		return http_error(r, 503,
				  "%d logins are being checked (http.login_concurrency): try again",
				  sc.hashing);
	}
	char *argv[] = {"login", user};
	struct cmd_call *call = cmd_call_new(k, 2, argv);
	if (!call || !(call->input = strdup(vals[1]))) {
		cmd_call_free(call);
		json_decref(root);
		return http_error(r, 503, "out of memory");
	}
	call->input_len = strlen(call->input);
	json_t *pw = json_object_get(root, "password"); /* wipe our copy of the body's password */
	sodium_memzero((char *)json_string_value(pw), strlen(json_string_value(pw)));
	sodium_memzero(r->body, r->body_len);
	json_decref(root);
	call->finish = login_finished;
	call->transport = r;
	sc.hashing++;
	int rc = access_gate(k, call);
	if (rc)
		cmd_finish(call, rc);
	else
		cmd_dispatch(k->cmds, call);
	return HTTP_PENDING; /* login_finished answers (maybe already has) */
}

/* POST /screen/api/display {"key": ...}: a wall screen's display key, once, for a cookie. */
static int post_display(struct http_req *r, void *ud)
{
	(void)ud;
	int st = no_query(r);
	if (st)
		return st;
	static const char *const names[] = {"key", NULL};
	const char *vals[1];
	json_t *root;
	if ((st = body_fields(r, &root, names, vals)))
		return st;
	sweep();
	if ((st = fails_limit(r, 'a', r->peer, r->k->cfg.http_login_address_failures))) {
		sodium_memzero((char *)vals[0], strlen(vals[0]));
		json_decref(root);
		sodium_memzero(r->body, r->body_len);
		return st;
	}
	char name[OPENDATA_NAME_MAX], scope[SCOPE_MAX + 1], err[256], key[65];
	opendata_key_hash(vals[0], key); /* only the hash is kept, as the store keeps it */
	sodium_memzero((char *)vals[0], strlen(vals[0]));
	json_decref(root);
	sodium_memzero(r->body, r->body_len);
	struct apires_set *res = malloc(sizeof *res);
	if (!res)
		return http_error(r, 503, "out of memory");
	st = opendata_key_check(r->k, key, name, scope, res, err, sizeof err);
	bool screen = st == 0 && apires_allows(res, APIRES_SCREEN, NULL, NULL);
	free(res);
	if (st) {
		sodium_memzero(key, sizeof key);
		if (st == 401)
			fails_add(r, NULL);
		return http_error(r, st, "%s", err);
	}
	char who[OPENDATA_NAME_MAX + 8];
	snprintf(who, sizeof who, "apikey:%s", name);
	struct tier_principal p = {PRINCIPAL_MACHINE, who, scope, ROLE_VIEWER, NULL, NULL, NULL};
	if (!screen) {
		sodium_memzero(key, sizeof key);
		tiers_audit(r->k, &p, "screen.display", scope, name, "denied",
			    "no screen resource");
		r->audited = true;
		return http_error(
		    r, 403, "key '%s' is not a display key (it has no screen resource)", name);
	}
	sweep();
	char csrf[65];
	struct ssess *s = sess_new(r, csrf);
	if (!s) {
		sodium_memzero(key, sizeof key);
		return http_error(r, 503, "too many screen sessions (%d)", SESSIONS_MAX);
	}
	s->display = true;
	snprintf(s->token, sizeof s->token, "%s", key); /* the hash: to see a revocation */
	sodium_memzero(key, sizeof key);
	snprintf(s->name, sizeof s->name, "%s", who);
	snprintf(s->role, sizeof s->role, "viewer");
	snprintf(s->scope, sizeof s->scope, "%s", scope);
	tiers_audit(r->k, &p, "screen.display", scope, name, "allowed", NULL);
	r->resp = sess_json(s, true);
	return 200;
}

/* GET /screen/api/session: who the cookie is, and the CSRF token (a reloaded page needs it). */
static int get_session(struct http_req *r, void *ud)
{
	(void)ud;
	int st;
	struct ssess *s = session_of(r, &st);
	if (!s)
		return st;
	r->resp = sess_json(s, true);
	return 200;
}

static void logout_finished(struct cmd_call *call, int rc)
{
	struct http_req *r = call->transport;
	if (rc)
		log_warn("screen", "logout of the console session behind a screen session: %s",
			 call->err);
	cmd_call_free(call);
	http_finish(r, 200);
}

/* POST /screen/api/logout (X-Linli-CSRF): the session ends, and the console session behind it. */
static int post_logout(struct http_req *r, void *ud)
{
	(void)ud;
	int st;
	struct ssess *s = session_of(r, &st);
	if (!s)
		return st;
	if ((st = csrf_ok(r, s)))
		return st;
	r->resp = json_pack("{s:s}", "logged_out", s->display ? s->name + 7 : s->name);
	set_cookie(r, NULL);
	if (s->display) {
		sess_unlink(s);
		return 200;
	}
	char *argv[] = {"logout"};
	struct cmd_call *call = cmd_call_new(r->k, 1, argv);
	if (call)
		call->session = strdup(s->token);
	sess_unlink(s);
	if (!call || !call->session) {
		cmd_call_free(call);
		return 200; /* the screen session is gone; the console one expires */
	}
	call->finish = logout_finished;
	call->transport = r;
	int rc = access_gate(r->k, call);
	if (rc)
		cmd_finish(call, rc);
	else
		cmd_dispatch(r->k->cmds, call);
	return HTTP_PENDING;
}

/* ---- the alarms panel: an aggregate within the session's scope, live by long polling ---- */

struct arow {
	char id[64], scope[SCOPE_MAX + 1], type[65], severity[16];
	bool acked;
	int64_t first_at, last_at, count;
};

struct aagg {
	struct arow *rows;
	size_t n, cap;
	json_t *by_sev, *by_type;
};

static int64_t mp_int(const msgpack_object *o, int64_t def)
{
	if (o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		return (int64_t)o->via.u64;
	if (o && o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
		return o->via.i64;
	return def;
}

static void bump(json_t *counts, const char *key)
{
	json_t *v = json_object_get(counts, key);
	json_object_set_new(counts, key, json_integer(v ? json_integer_value(v) + 1 : 1));
}

/* Only these fields of an alarm ever leave: never its details, source, location. */
static int alarm_row(void *ud, const struct store_row *row)
{
	struct aagg *a = ud;
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	size_t off = 0;
	if (msgpack_unpack_next(&up, row->data, row->len, &off) == MSGPACK_UNPACK_SUCCESS) {
		if (a->n == a->cap) {
			size_t nc = a->cap ? a->cap * 2 : 64;
			struct arow *v = realloc(a->rows, nc * sizeof *v);
			if (!v) {
				msgpack_unpacked_destroy(&up);
				return 1;
			}
			a->rows = v;
			a->cap = nc;
		}
		struct arow *w = &a->rows[a->n++];
		memset(w, 0, sizeof *w);
		snprintf(w->id, sizeof w->id, "%s", row->id);
		snprintf(w->scope, sizeof w->scope, "%s", row->scope);
		mp_copy_str(mp_get(&up.data, "type"), w->type, sizeof w->type);
		mp_copy_str(mp_get(&up.data, "severity"), w->severity, sizeof w->severity);
		const msgpack_object *ack = mp_get(&up.data, "acknowledged");
		w->acked = ack && ack->type == MSGPACK_OBJECT_BOOLEAN && ack->via.boolean;
		w->first_at = mp_int(mp_get(&up.data, "first_at"), 0);
		w->last_at = mp_int(mp_get(&up.data, "last_at"), w->first_at);
		w->count = mp_int(mp_get(&up.data, "count"), 1);
		bump(a->by_sev, w->severity);
		bump(a->by_type, w->type);
	}
	msgpack_unpacked_destroy(&up);
	return 0;
}

static int newest_first(const void *x, const void *y)
{
	const struct arow *a = x, *b = y;
	return a->last_at < b->last_at ? 1 : a->last_at > b->last_at ? -1 : strcmp(a->id, b->id);
}

struct ackby {
	char by[97];
	int64_t at;
};

static int ack_row(void *ud, const struct store_row *row)
{
	struct ackby *a = ud;
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	size_t off = 0;
	if (msgpack_unpack_next(&up, row->data, row->len, &off) == MSGPACK_UNPACK_SUCCESS) {
		int64_t at = mp_int(mp_get(&up.data, "at"), 0);
		if (at >= a->at) { /* the latest acknowledgement */
			a->at = at;
			mp_copy_str(mp_get(&up.data, "by"), a->by, sizeof a->by);
		}
	}
	msgpack_unpacked_destroy(&up);
	return 0;
}

/* The panel's JSON for `scope`, or NULL with err. Kernel thread. */
static json_t *alarms_panel(const char *scope, char *err, size_t errlen)
{
	struct aagg a = {.by_sev = json_object(), .by_type = json_object()};
	struct store_where w = {"active", "true"};
	struct store_query q = {.dataset = "alarms", .scope = scope, .where = &w, .n_where = 1};
	char cursor[STORE_CURSOR_MAX], next[STORE_CURSOR_MAX];
	json_t *out = NULL;
	int rc;
	/* Every page of them, up to PANEL_SCAN_MAX (then "truncated"). */
	while ((rc = store_scan(sc.k->store, &q, alarm_row, &a, cursor, err, errlen)) >= 0 &&
	       cursor[0] && a.n < PANEL_SCAN_MAX) {
		memcpy(next, cursor, sizeof next);
		q.cursor = next;
	}
	if (rc < 0 || !a.by_sev || !a.by_type)
		goto done;
	if (a.n)
		qsort(a.rows, a.n, sizeof *a.rows, newest_first);
	json_t *list = json_array();
	int64_t now = wall_ms();
	for (size_t i = 0; list && i < a.n && i < PANEL_ROWS; i++) {
		struct arow *r = &a.rows[i];
		json_t *o = json_pack(
		    "{s:s,s:s,s:s,s:s,s:I,s:I,s:b}", "id", r->id, "scope", r->scope, "type",
		    r->type, "severity", r->severity, "count", (json_int_t)r->count, "age_s",
		    (json_int_t)(now > r->first_at ? (now - r->first_at) / 1000 : 0),
		    "acknowledged", r->acked);
		if (o && r->acked) {
			/* Who acknowledged it: the alarm's history (an account's name, never more).
			 */
			struct store_where hw[2] = {{"alarm", r->id}, {"action", "acked"}};
			struct store_query hq = {.dataset = "alarm_history",
						 .scope = r->scope,
						 .where = hw,
						 .n_where = 2};
			struct ackby ab = {"", 0};
			char hc[STORE_CURSOR_MAX], herr[128];
			if (store_scan(sc.k->store, &hq, ack_row, &ab, hc, herr, sizeof herr) >=
				0 &&
			    ab.by[0])
				json_object_set_new(o, "acknowledged_by", json_string(ab.by));
		}
		if (o)
			json_array_append_new(list, o);
	}
	out = json_pack("{s:I,s:s,s:i,s:O,s:O,s:o,s:b}", "cursor", (json_int_t)sc.version, "scope",
			scope, "total", (int)a.n, "by_severity", a.by_sev, "by_type", a.by_type,
			"alarms", list, "truncated", cursor[0] != '\0');
	if (!out)
		snprintf(err, errlen, "out of memory");
done:
	json_decref(a.by_sev);
	json_decref(a.by_type);
	free(a.rows);
	return out;
}

json_t *screen_alarms_panel(struct kernel *k, const char *scope, char *err, size_t errlen)
{
	sc.k = k;
	return alarms_panel(scope, err, errlen);
}

/* The ticker's events within `scope` after `after` (the newest TICKER_ROWS, oldest first). */
static json_t *ticker_answer(const char *scope, uint64_t after)
{
	json_t *list = json_array();
	uint64_t first = sc.tseq > TICKER_MAX ? sc.tseq - TICKER_MAX + 1 : 1;
	if (after > sc.tseq)
		after = 0; /* a cursor of an earlier run: everything kept */
	const struct tev *pick[TICKER_ROWS];
	int n = 0;
	for (uint64_t q = sc.tseq; sc.ticker && q >= first && q > after && n < TICKER_ROWS; q--) {
		const struct tev *e = &sc.ticker[q % TICKER_MAX];
		if (scope_within(scope, e->scope))
			pick[n++] = e;
	}
	for (int i = n - 1; list && i >= 0; i--) {
		const struct tev *e = pick[i];
		json_t *o = json_pack("{s:I,s:I,s:s,s:s,s:s,s:s,s:s}", "seq", (json_int_t)e->seq,
				      "at", (json_int_t)e->at, "kind", e->kind, "what", e->what,
				      "type", e->type, "id", e->id, "scope", e->scope);
		if (o && e->severity[0])
			json_object_set_new(o, "severity", json_string(e->severity));
		if (o)
			json_array_append_new(list, o);
	}
	return json_pack("{s:I,s:s,s:o}", "cursor", (json_int_t)sc.tseq, "scope", scope, "events",
			 list ? list : json_array());
}

/* Are there events within `scope` after `after`? */
static bool ticker_has(const char *scope, uint64_t after)
{
	uint64_t first = sc.tseq > TICKER_MAX ? sc.tseq - TICKER_MAX + 1 : 1;
	if (after > sc.tseq)
		return true;
	for (uint64_t q = sc.tseq; sc.ticker && q >= first && q > after; q--)
		if (scope_within(scope, sc.ticker[q % TICKER_MAX].scope))
			return true;
	return false;
}

/* Answer a poll: the panel (or the ticker), if its session still stands. */
static void poll_answer(struct apoll *p)
{
	struct http_req *r = p->r;
	int st;
	struct ssess *s = session_of(r, &st);
	if (s) {
		char err[256];
		json_decref(r->resp);
		if (p->ticker) {
			r->resp = ticker_answer(s->scope, p->after);
			st = r->resp ? 200 : http_error(r, 503, "ticker: out of memory");
		} else {
			r->resp = alarms_panel(s->scope, err, sizeof err);
			st = r->resp ? 200 : http_error(r, 503, "alarms: %s", err);
		}
	}
	http_finish(r, st);
}

static void poll_unlink(struct apoll *p)
{
	for (struct apoll **pp = &sc.polls; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			sc.n_polls--;
			return;
		}
}

static void poll_timeout(struct kernel *k, void *arg)
{
	(void)k;
	struct apoll *p = arg;
	poll_unlink(p);
	poll_answer(p);
	free(p);
}

/* The turn after a batch of changes: answer the polls whose scope saw one. */
static void polls_wake(struct kernel *k, void *arg)
{
	(void)k;
	(void)arg;
	sc.wake_due = false;
	struct apoll **pp = &sc.polls;
	while (*pp) {
		struct apoll *p = *pp;
		if (p->timer == 0) { /* marked by on_alarm */
			*pp = p->next;
			sc.n_polls--;
			poll_answer(p);
			free(p);
		} else
			pp = &p->next;
	}
}

/* Mark the parked polls (the ticker's or the alarms panel's) that see a change at `scope`. */
static void polls_mark(const char *scope, bool ticker)
{
	bool any = false;
	for (struct apoll *p = sc.polls; p; p = p->next)
		if (p->timer && p->ticker == ticker && scope_within(p->scope, scope)) {
			kernel_timer_cancel(sc.k, p->timer);
			p->timer = 0;
			any = true;
		}
	/* Answered a turn later, so that one batch's changes make one answer. */
	if (any && !sc.wake_due) {
		if (kernel_timer_add(sc.k, 0, 0, polls_wake, NULL) > 0)
			sc.wake_due = true;
		else
			polls_wake(sc.k, NULL); /* no timer: answered in this turn */
	}
}

/* A new event of the ticker (its strings copied). */
static struct tev *ticker_add(const char *kind, const char *id, const char *scope)
{
	if (!sc.ticker && !(sc.ticker = calloc(TICKER_MAX, sizeof *sc.ticker)))
		return NULL;
	struct tev *e = &sc.ticker[++sc.tseq % TICKER_MAX];
	memset(e, 0, sizeof *e);
	e->seq = sc.tseq;
	e->at = wall_ms();
	snprintf(e->kind, sizeof e->kind, "%s", kind);
	snprintf(e->id, sizeof e->id, "%s", id);
	snprintf(e->scope, sizeof e->scope, "%s", scope);
	return e;
}

/*
 * The record dataset/scope/id read into *sb and unpacked into *up (whose strings
 * point into sb): true, or false with both destroyed. Destroy both after use.
 */
static bool read_rec(const char *dataset, const char *scope, const char *id, msgpack_sbuffer *sb,
		     msgpack_unpacked *up)
{
	char err[128];
	size_t off = 0;
	msgpack_sbuffer_init(sb);
	msgpack_unpacked_init(up);
	if (store_get_at(sc.k->store, dataset, scope, id, sb, err, sizeof err) == 0 &&
	    msgpack_unpack_next(up, sb->data, sb->size, &off) == MSGPACK_UNPACK_SUCCESS)
		return true;
	msgpack_unpacked_destroy(up);
	msgpack_sbuffer_destroy(sb);
	return false;
}

/* The store watch: an alarm changed (raised, acknowledged, cleared...) at c->scope. */
static void on_alarm(void *ud, const struct store_change *c)
{
	(void)ud;
	sc.version++;
	polls_mark(c->scope, false);
	/* The ticker: raised (a new one), cleared, acknowledged; a repeat folded in is not news. */
	msgpack_unpacked up;
	msgpack_sbuffer sb;
	if (c->kind == STORE_DELETED || !read_rec("alarms", c->scope, c->id, &sb, &up))
		return;
	const msgpack_object *act = mp_get(&up.data, "active"),
			     *ack = mp_get(&up.data, "acknowledged");
	bool active = !act || act->type != MSGPACK_OBJECT_BOOLEAN || act->via.boolean;
	bool acked = ack && ack->type == MSGPACK_OBJECT_BOOLEAN && ack->via.boolean;
	const char *what = c->kind == STORE_CREATED ? "raised"
			   : !active		    ? "cleared"
			   : acked		    ? "acknowledged"
						    : NULL;
	/* An update that leaves it active and unacknowledged is a repeat; acknowledged once. */
	for (uint64_t q = sc.tseq; what && sc.ticker && q > 0 && q + TICKER_MAX > sc.tseq; q--) {
		const struct tev *e = &sc.ticker[q % TICKER_MAX];
		if (strcmp(e->kind, "alarm") == 0 && strcmp(e->id, c->id) == 0) {
			if (strcmp(e->what, what) == 0)
				what = NULL;
			break;
		}
	}
	struct tev *e = what ? ticker_add("alarm", c->id, c->scope) : NULL;
	if (e) {
		snprintf(e->what, sizeof e->what, "%s", what);
		mp_copy_str(mp_get(&up.data, "type"), e->type, sizeof e->type);
		mp_copy_str(mp_get(&up.data, "severity"), e->severity, sizeof e->severity);
		polls_mark(c->scope, true);
	}
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&sb);
}

/* The store watch on incident_moves: a case moved (each move is a new record). */
static void on_move(void *ud, const struct store_change *c)
{
	(void)ud;
	msgpack_unpacked up;
	msgpack_sbuffer sb;
	if (c->kind != STORE_CREATED || !read_rec("incident_moves", c->scope, c->id, &sb, &up))
		return;
	char inc[64] = "";
	mp_copy_str(mp_get(&up.data, "incident"), inc, sizeof inc);
	struct tev *e = ticker_add("incident", inc[0] ? inc : c->id, c->scope);
	if (e) {
		mp_copy_str(mp_get(&up.data, "verb"), e->what, sizeof e->what);
		mp_copy_str(mp_get(&up.data, "to"), e->type, sizeof e->type);
		polls_mark(c->scope, true);
	}
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&sb);
}

/*
 * GET /screen/api/ticker[?after=N[&wait_ms=W]]: the latest events within the
 * session's scope (the newest TICKER_ROWS, oldest first) and the cursor; with
 * `after`, those after event N — answered at once when there are some, else
 * parked like the alarms panel's poll until one comes or W ms pass.
 */
static int get_ticker(struct http_req *r, void *ud)
{
	(void)ud;
	int st;
	struct ssess *s = session_of(r, &st);
	if (!s)
		return st;
	char *as = http_query(r, "after"), *ws = http_query(r, "wait_ms"), *end;
	unsigned long long after = 0;
	long wait = POLL_WAIT_MS;
	st = 0;
	if (as && (after = strtoull(as, &end, 10), *end || end == as))
		st = http_error(r, 400, "after '%.32s' is not a number", as);
	if (!st && ws &&
	    (wait = strtol(ws, &end, 10), *end || end == ws || wait < 1 || wait > POLL_WAIT_MS))
		st = http_error(r, 400, "wait_ms must be 1..%d", POLL_WAIT_MS);
	bool park = as && !ticker_has(s->scope, after);
	free(as);
	free(ws);
	if (st)
		return st;
	if (park && sc.n_polls < POLLS_MAX) {
		struct apoll *p = calloc(1, sizeof *p);
		if (p) {
			p->r = r;
			p->ticker = true;
			p->after = after;
			snprintf(p->scope, sizeof p->scope, "%s", s->scope);
			p->timer = kernel_timer_add(sc.k, (uint64_t)wait, 0, poll_timeout, p);
			if (p->timer > 0) {
				p->next = sc.polls;
				sc.polls = p;
				sc.n_polls++;
				return HTTP_PENDING;
			}
			free(p);
		}
	}
	if (!(r->resp = ticker_answer(s->scope, after)))
		return http_error(r, 503, "ticker: out of memory");
	return 200;
}

/*
 * GET /screen/api/alarms[?cursor=N[&wait_ms=W]]: the panel at once without a
 * cursor or when N is not the current one; else parked (no thread, no
 * worker: only nng's aio waits) until an alarm within the session's scope
 * changes or W ms (default and most 25000) pass.
 */
static int get_alarms(struct http_req *r, void *ud)
{
	(void)ud;
	int st;
	struct ssess *s = session_of(r, &st);
	if (!s)
		return st;
	if (!sc.watch)
		return http_error(r, 503, "alarms: the node has no alarms dataset");
	char *cs = http_query(r, "cursor"), *ws = http_query(r, "wait_ms"), *end;
	unsigned long long cur = 0;
	long wait = POLL_WAIT_MS;
	st = 0;
	if (cs && (cur = strtoull(cs, &end, 10), *end || end == cs))
		st = http_error(r, 400, "cursor '%.32s' is not a number", cs);
	if (!st && ws &&
	    (wait = strtol(ws, &end, 10), *end || end == ws || wait < 1 || wait > POLL_WAIT_MS))
		st = http_error(r, 400, "wait_ms must be 1..%d", POLL_WAIT_MS);
	bool park = cs && cur == sc.version;
	free(cs);
	free(ws);
	if (st)
		return st;
	if (park && sc.n_polls < POLLS_MAX) {
		struct apoll *p = calloc(1, sizeof *p);
		if (p) {
			p->r = r;
			snprintf(p->scope, sizeof p->scope, "%s", s->scope);
			p->timer = kernel_timer_add(sc.k, (uint64_t)wait, 0, poll_timeout, p);
			if (p->timer > 0) {
				p->next = sc.polls;
				sc.polls = p;
				sc.n_polls++;
				return HTTP_PENDING;
			}
			free(p);
		}
	}
	char err[256];
	if (!(r->resp = alarms_panel(s->scope, err, sizeof err)))
		return http_error(r, 503, "alarms: %s", err);
	return 200;
}

/* http_close: the parked polls are answered before the server stops. */
static void polls_close(void *ud)
{
	(void)ud;
	while (sc.polls) {
		struct apoll *p = sc.polls;
		sc.polls = p->next;
		http_error(p->r, 503, "linlid is shutting down");
		http_finish(p->r, 503);
		free(p);
	}
	sc.n_polls = 0;
}

/* ---- the devices panel: the HAL's registry within the session's scope ---- */

#define DEV_UNAVAILABLE_ROWS 50 /* unavailable devices listed, by id */

/*
 * "Refused today": the HAL counts refusals per device since linlid started;
 * the screen keeps each device's count at the start of the day (local time,
 * taken by a timer each minute, so at most a minute late) and answers the
 * difference. Before the first day change it is the count since the start.
 */
static struct {
	int64_t day; /* YYYYMMDD of the baseline, 0: none yet (since the start) */
	char (*ids)[STORE_ID_MAX + 1];
	uint64_t *base;
	int n;
	uint64_t timer;
} rb;

static int64_t local_day(void)
{
	struct linli_tm t = {.size = sizeof t};
	if (clock_local(wall_ms(), &t) != 0)
		return 0;
	return t.year * 10000LL + t.month * 100 + t.day;
}

static uint64_t dev_refused(const struct hal_dev *d)
{
	uint64_t n = 0;
	for (int i = 0; i < HAL_REF_KINDS; i++)
		n += hal_dev_refused(d, (enum hal_refusal)i);
	return n;
}

/* The minute's check: a new day takes every device's count as its baseline. */
static void refused_rebase(struct kernel *k, void *arg)
{
	(void)arg;
	int64_t day = local_day();
	if (!k->hal || !day || day == rb.day)
		return;
	if (!rb.day) { /* the first check: the day linlid started in counts from the start */
		rb.day = day;
		return;
	}
	struct hal_dev **v;
	int n = hal_list(k->hal, NULL, &v);
	if (n < 0)
		return;
	char(*ids)[STORE_ID_MAX + 1] = n ? malloc((size_t)n * sizeof *ids) : NULL;
	uint64_t *base = n ? malloc((size_t)n * sizeof *base) : NULL;
	if (n && (!ids || !base)) {
		free(ids);
		free(base);
		free(v);
		return; /* tried again in a minute */
	}
	for (int i = 0; i < n; i++) { /* hal_list sorts by id */
		snprintf(ids[i], sizeof ids[i], "%s", hal_dev_id(v[i]));
		base[i] = dev_refused(v[i]);
	}
	free(v);
	free(rb.ids);
	free(rb.base);
	rb.ids = ids, rb.base = base, rb.n = n, rb.day = day;
}

static uint64_t refused_today(const struct hal_dev *d)
{
	uint64_t now = dev_refused(d), base = 0;
	const char *id = hal_dev_id(d);
	int lo = 0, hi = rb.n - 1;
	while (lo <= hi) {
		int mid = (lo + hi) / 2, c = strcmp(rb.ids[mid], id);
		if (!c) {
			base = rb.base[mid];
			break;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return now >= base ? now - base : now; /* below: the device was made anew */
}

struct dclass {
	const char *name, *zh, *en;
	int total, online;
};

/* The panel's JSON for `scope`, or NULL with err. Kernel thread. */
static json_t *devices_panel(const char *scope, char *err, size_t errlen)
{
	if (!sc.k->hal) {
		snprintf(err, errlen, "the node has no device layer");
		return NULL;
	}
	struct hal_dev **v;
	int n = hal_list(sc.k->hal, scope, &v);
	if (n < 0) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	struct dclass *cls = n ? calloc((size_t)n, sizeof *cls) : NULL;
	json_t *out = json_object(), *down = json_array(), *byc = json_array();
	if ((n && !cls) || !out || !down || !byc) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	int nc = 0, online = 0, n_down = 0;
	uint64_t refused = 0;
	for (int i = 0; i < n; i++) {
		const struct hal_dev *d = v[i];
		const struct cat_device_class *c = hal_dev_class(d);
		bool on = hal_dev_state(d) == HAL_ONLINE;
		int j = 0;
		while (j < nc && strcmp(cls[j].name, c->name) != 0)
			j++;
		if (j == nc)
			cls[nc++] = (struct dclass){c->name, c->title_zh ? c->title_zh : c->name,
						    c->title_en ? c->title_en : c->name, 0, 0};
		cls[j].total++;
		cls[j].online += on;
		online += on;
		refused += refused_today(d);
		/* Only its id, name, class and place: never its address or credential. */
		if (!on && n_down++ < DEV_UNAVAILABLE_ROWS)
			json_array_append_new(down,
					      json_pack("{s:s,s:s,s:s,s:s}", "id", hal_dev_id(d),
							"name", hal_dev_name(d), "class", c->name,
							"scope", hal_dev_scope(d)));
	}
	for (int j = 0; j < nc; j++)
		json_array_append_new(byc, json_pack("{s:s,s:s,s:s,s:i,s:i,s:f}", "class",
						     cls[j].name, "title_zh", cls[j].zh, "title_en",
						     cls[j].en, "total", cls[j].total, "online",
						     cls[j].online, "online_rate",
						     (double)cls[j].online / cls[j].total));
	json_object_set_new(out, "scope", json_string(scope));
	json_object_set_new(out, "total", json_integer(n));
	json_object_set_new(out, "online", json_integer(online));
	if (n)
		json_object_set_new(out, "online_rate", json_real((double)online / n));
	json_object_set_new(out, "by_class", byc);
	json_object_set_new(out, "unavailable_total", json_integer(n - online));
	json_object_set_new(out, "unavailable", down);
	json_object_set_new(out, "refused_today", json_integer((json_int_t)refused));
	free(cls);
	free(v);
	return out;
fail:
	json_decref(out);
	json_decref(down);
	json_decref(byc);
	free(cls);
	free(v);
	return NULL;
}

json_t *screen_devices_panel(struct kernel *k, const char *scope, char *err, size_t errlen)
{
	sc.k = k;
	return devices_panel(scope, err, errlen);
}

/* GET /screen/api/devices: the devices panel within the session's scope. */
static int get_devices(struct http_req *r, void *ud)
{
	(void)ud;
	int st;
	struct ssess *s = session_of(r, &st);
	if (!s)
		return st;
	char err[256];
	json_t *out = devices_panel(s->scope, err, sizeof err);
	if (!out)
		return http_error(r, 503, "devices: %s", err);
	json_decref(r->resp);
	r->resp = out;
	return 200;
}

/* ---- the map: buildings and floors from the devices' data, with device and alarm markers ---- */

#define MAP_MAX 2000 /* devices drawn, at most */

struct mdev {
	char id[STORE_ID_MAX + 1];
	char scope[SCOPE_MAX + 1];
	char cls[33];
	char building[65];
	int64_t floor, x, y;
	bool has_floor, has_pos, online;
	int alarm; /* the worst active alarm's rank (1 indeterminate .. 5 critical), 0: none */
};

struct mapscan {
	struct mdev *v;
	size_t n, cap;
	bool truncated;
};

static const char *const sev_ranks[] = {"",	 "indeterminate", "warning",
					"minor", "major",	  "critical"};

static int map_dev_row(void *ud, const struct store_row *row)
{
	struct mapscan *m = ud;
	if (m->n >= MAP_MAX) {
		m->truncated = true;
		return 1;
	}
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 64;
		struct mdev *v = realloc(m->v, cap * sizeof *v);
		if (!v) {
			m->truncated = true;
			return 1;
		}
		m->v = v, m->cap = cap;
	}
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	size_t off = 0;
	if (msgpack_unpack_next(&up, row->data, row->len, &off) == MSGPACK_UNPACK_SUCCESS) {
		struct mdev *d = &m->v[m->n++];
		memset(d, 0, sizeof *d);
		snprintf(d->id, sizeof d->id, "%s", row->id);
		snprintf(d->scope, sizeof d->scope, "%s", row->scope);
		mp_copy_str(mp_get(&up.data, "class"), d->cls, sizeof d->cls);
		mp_copy_str(mp_get(&up.data, "building"), d->building, sizeof d->building);
		const msgpack_object *f = mp_get(&up.data, "floor");
		d->has_floor = f && (f->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
				     f->type == MSGPACK_OBJECT_NEGATIVE_INTEGER);
		d->floor = mp_int(f, 0);
		d->x = mp_int(mp_get(&up.data, "pos_x"), -1);
		d->y = mp_int(mp_get(&up.data, "pos_y"), -1);
		d->has_pos = d->x >= 0 && d->y >= 0;
		struct hal_dev *hd = sc.k->hal ? hal_find(sc.k->hal, row->id) : NULL;
		d->online = hd && hal_dev_state(hd) == HAL_ONLINE;
	}
	msgpack_unpacked_destroy(&up);
	return 0;
}

static int mdev_by_id(const void *a, const void *b)
{
	return strcmp(((const struct mdev *)a)->id, ((const struct mdev *)b)->id);
}

static int map_alarm_row(void *ud, const struct store_row *row)
{
	struct mapscan *m = ud;
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	size_t off = 0;
	if (msgpack_unpack_next(&up, row->data, row->len, &off) == MSGPACK_UNPACK_SUCCESS) {
		struct mdev key;
		char sev[16] = "";
		mp_copy_str(mp_get(&up.data, "device"), key.id, sizeof key.id);
		mp_copy_str(mp_get(&up.data, "severity"), sev, sizeof sev);
		struct mdev *d =
		    key.id[0] && m->n ? bsearch(&key, m->v, m->n, sizeof *m->v, mdev_by_id) : NULL;
		for (int r = 1; d && r <= 5; r++)
			if (strcmp(sev, sev_ranks[r]) == 0 && r > d->alarm)
				d->alarm = r;
	}
	msgpack_unpacked_destroy(&up);
	return 0;
}

/* Community, building, floor from the top, then id: the order the map draws them in. */
static int mdev_by_place(const void *a, const void *b)
{
	const struct mdev *x = a, *y = b;
	int c = strcmp(x->scope, y->scope);
	if (!c)
		c = strcmp(x->building, y->building);
	if (!c && x->floor != y->floor)
		c = x->floor < y->floor ? 1 : -1;
	return c ? c : strcmp(x->id, y->id);
}

/* Scan every page of `q` with fn into m (until *stop); <0 with err. */
static int scan_all(struct store_query *q, int (*fn)(void *, const struct store_row *), void *m,
		    const bool *stop, char *err, size_t errlen)
{
	char cursor[STORE_CURSOR_MAX], next[STORE_CURSOR_MAX];
	int rc;
	while ((rc = store_scan(sc.k->store, q, fn, m, cursor, err, errlen)) >= 0 && cursor[0] &&
	       !*stop) {
		memcpy(next, cursor, sizeof next);
		q->cursor = next;
	}
	return rc;
}

/*
 * The map's JSON for `scope`: each building of a community with its floors (from the
 * top) and their devices (id, class, online, the worst active alarm on it, its place
 * x, y on the floor's plan when it has one), from the devices' building, floor and
 * pos_x/pos_y; devices without a building are only counted. NULL with
 * err. Kernel thread.
 */
static json_t *map_panel(const char *scope, char *err, size_t errlen)
{
	struct mapscan m = {0};
	struct store_query q = {.dataset = "devices", .scope = scope};
	if (scan_all(&q, map_dev_row, &m, &m.truncated, err, errlen) < 0) {
		free(m.v);
		return NULL;
	}
	if (m.n)
		qsort(m.v, m.n, sizeof *m.v, mdev_by_id);
	struct store_where w = {"active", "true"};
	struct store_query aq = {.dataset = "alarms", .scope = scope, .where = &w, .n_where = 1};
	bool never = false;
	if (m.n && scan_all(&aq, map_alarm_row, &m, &never, err, errlen) < 0) {
		free(m.v);
		return NULL;
	}
	if (m.n)
		qsort(m.v, m.n, sizeof *m.v, mdev_by_place);
	json_t *out = json_object(), *blds = json_array(), *b = NULL, *floors = NULL, *devs = NULL;
	int unplaced = 0;
	const struct mdev *prev = NULL;
	for (size_t i = 0; out && blds && i < m.n; i++) {
		const struct mdev *d = &m.v[i];
		if (!d->building[0]) {
			unplaced++;
			continue;
		}
		bool nb =
		    !prev || strcmp(prev->scope, d->scope) || strcmp(prev->building, d->building);
		if (nb) {
			b = json_pack("{s:s,s:s,s:[]}", "scope", d->scope, "building", d->building,
				      "floors");
			json_array_append_new(blds, b);
			floors = b ? json_object_get(b, "floors") : NULL;
		}
		if (nb || prev->floor != d->floor || prev->has_floor != d->has_floor) {
			json_t *f = json_pack("{s:[]}", "devices");
			if (f && d->has_floor)
				json_object_set_new(f, "floor", json_integer(d->floor));
			if (f && floors)
				json_array_append_new(floors, f);
			else
				json_decref(f);
			devs = f ? json_object_get(f, "devices") : NULL;
		}
		json_t *o =
		    json_pack("{s:s,s:s,s:b}", "id", d->id, "class", d->cls, "online", d->online);
		if (o && d->alarm)
			json_object_set_new(o, "alarm", json_string(sev_ranks[d->alarm]));
		if (o && d->has_pos) {
			json_object_set_new(o, "x", json_integer(d->x));
			json_object_set_new(o, "y", json_integer(d->y));
		}
		if (o && devs)
			json_array_append_new(devs, o);
		else
			json_decref(o);
		prev = d;
	}
	free(m.v);
	if (!out || !blds) {
		json_decref(out);
		json_decref(blds);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	json_object_set_new(out, "scope", json_string(scope));
	json_object_set_new(out, "buildings", blds);
	json_object_set_new(out, "unplaced", json_integer(unplaced));
	json_object_set_new(out, "truncated", json_boolean(m.truncated));
	return out;
}

json_t *screen_map_panel(struct kernel *k, const char *scope, char *err, size_t errlen)
{
	sc.k = k;
	return map_panel(scope, err, errlen);
}

/* GET /screen/api/map: the map within the session's scope. */
static int get_map(struct http_req *r, void *ud)
{
	(void)ud;
	int st;
	struct ssess *s = session_of(r, &st);
	if (!s)
		return st;
	char err[256];
	json_t *out = map_panel(s->scope, err, sizeof err);
	if (!out)
		return http_error(r, 503, "map: %s", err);
	json_decref(r->resp);
	r->resp = out;
	return 200;
}

/* ---- the families' panels: their plugins' "screen" routes, run as the session ---- */

/* The plugins whose route "screen" a session reaches (GET /screen/api/panel/PLUGIN). */
static const char *const panel_plugins[] = {"grid",	"eldercare", "parking",
					    "charging", "lockers",   "services"};

/*
 * The principal a session's panels are computed as: the person (their role and
 * scope as the console session says now) or the display key (a viewer at its
 * scope) — with no grant at all, so that no sensitive field is ever in clear on a
 * screen, whatever the role.
 */
static void principal_of(const struct ssess *s, struct tier_principal *p)
{
	*p = (struct tier_principal){.kind = s->display ? PRINCIPAL_MACHINE : PRINCIPAL_PERSON,
				     .name = s->name,
				     .scope = s->scope,
				     .role = s->display ? ROLE_VIEWER : tier_role_parse(s->role)};
}

json_t *screen_plugin_panel(struct kernel *k, const struct tier_principal *who, const char *plugin,
			    int *status, char *err, size_t errlen)
{
	sc.k = k;
	json_t *out = NULL;
	*status = approute_call_as(who, plugin, "screen", NULL, &out, err, errlen);
	if (*status != 200) {
		json_decref(out);
		return NULL;
	}
	return out;
}

/*
 * GET /screen/api/panel/PLUGIN: the panel PLUGIN computes for the screen (its
 * route "screen"), run as the session's principal: the route's action checked
 * for it, every read within its jurisdiction. 404 when the plugin does not run
 * here (the page then leaves its panel out).
 */
static int get_panel(struct http_req *r, void *ud)
{
	(void)ud;
	int st;
	struct ssess *s = session_of(r, &st);
	if (!s)
		return st;
	const char *plugin = r->n_params ? r->params[0] : "";
	bool known = false;
	for (size_t i = 0; i < sizeof panel_plugins / sizeof *panel_plugins; i++)
		known |= strcmp(plugin, panel_plugins[i]) == 0;
	if (!known)
		return http_error(r, 404,
				  "no panel '%.40s' (panels: grid, eldercare, parking, charging, "
				  "lockers, services; and alarms, devices)",
				  plugin);
	if (r->query)
		return http_error(r, 400, "panel %s: takes no parameter ('?%.40s')", plugin,
				  r->query);
	struct tier_principal p;
	principal_of(s, &p);
	char err[512];
	json_t *out = screen_plugin_panel(r->k, &p, plugin, &st, err, sizeof err);
	if (!out)
		return http_error(r, st, "panel %s: %s", plugin, err);
	json_decref(r->resp);
	r->resp = out;
	return 200;
}

/* ---- the page: web/ read at start, served under /screen/ ---- */

static const struct {
	const char *ext, *type;
} types[] = {
    {".html", "text/html; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".json", "application/json; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".woff2", "font/woff2"},
    {".txt", "text/plain; charset=utf-8"},
};

static const char *type_of(const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
		size_t e = strlen(types[i].ext);
		if (n > e && strcmp(name + n - e, types[i].ext) == 0)
			return types[i].type;
	}
	if (strcmp(name, "LICENSE") == 0 || strcmp(name, "NOTICE") == 0 ||
	    strcmp(name, "VERSION") == 0)
		return "text/plain; charset=utf-8";
	return NULL;
}

static int web_file(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)ftw;
	if (flag != FTW_F || !S_ISREG(st->st_mode)) /* directories; symlinks (FTW_SL) skipped */
		return 0;
	const char *rel = path + strlen(sc.web_dir) + 1;
	const char *base = strrchr(rel, '/');
	const char *type = type_of(base ? base + 1 : rel);
	if (!type)
		return 0; /* not a kind of file the page uses */
	if (sc.n_files == WEB_MAX_FILES || sc.web_bytes + (size_t)st->st_size > WEB_MAX_BYTES) {
		log_warn("screen", "%s: more than %d files or %u MiB: %s and the rest not served",
			 sc.web_dir, WEB_MAX_FILES, WEB_MAX_BYTES >> 20, rel);
		return 1;
	}
	FILE *f = fopen(path, "rb");
	char *data = malloc((size_t)st->st_size + 1);
	size_t got = f && data ? fread(data, 1, (size_t)st->st_size, f) : 0;
	if (f)
		fclose(f);
	if (!data || got != (size_t)st->st_size) {
		log_warn("screen", "cannot read %s: %s", path, strerror(errno ? errno : EIO));
		free(data);
		return 0;
	}
	struct wfile *w = &sc.files[sc.n_files++];
	w->rel = strdup(rel);
	w->data = data;
	w->len = got;
	w->type = type;
	/* The page itself is checked at every load; what it loads is kept an hour. */
	w->cache = strstr(type, "html") ? "no-cache" : "public, max-age=3600";
	sc.web_bytes += got;
	return 0;
}

static void web_load(const char *dir)
{
	snprintf(sc.web_dir, sizeof sc.web_dir, "%s", dir);
	size_t n = strlen(sc.web_dir);
	while (n > 1 && sc.web_dir[n - 1] == '/')
		sc.web_dir[--n] = '\0';
	struct stat st;
	if (stat(sc.web_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		log_warn("screen", "web dir %s: %s: /screen/ serves no page", sc.web_dir,
			 strerror(errno ? errno : ENOTDIR));
		return;
	}
	nftw(sc.web_dir, web_file, 16, FTW_PHYS);
	log_info("screen", "the screen's page: %d files (%zu bytes) from %s", sc.n_files,
		 sc.web_bytes, sc.web_dir);
}

/*
 * GET /screen/, /screen/PATH: one of the files read at start, nothing else.
 * The path is decoded already (http.c): "..", "." and empty segments are
 * refused by name, whatever their encoding was; a name not in the table is
 * 404 (no file is opened for a request).
 */
static int get_static(struct http_req *r, void *ud)
{
	(void)ud;
	const char *rel = r->n_params ? r->params[0] : "index.html";
	for (const char *seg = rel; *seg;) {
		size_t n = strcspn(seg, "/");
		if (n == 0 || (n == 1 && seg[0] == '.') ||
		    (n == 2 && seg[0] == '.' && seg[1] == '.') || memchr(seg, '\\', n))
			return http_error(r, 400,
					  "path '%s': empty, '.', '..' and '\\' segments are "
					  "not served",
					  rel);
		seg += n;
		if (*seg == '/')
			seg++;
	}
	for (int i = 0; i < sc.n_files; i++) {
		if (strcmp(sc.files[i].rel, rel) != 0)
			continue;
		struct wfile *w = &sc.files[i];
		if (!(r->text = malloc(w->len + 1)))
			return http_error(r, 503, "out of memory");
		memcpy(r->text, w->data, w->len);
		r->text_len = w->len;
		r->content_type = w->type;
		r->cache_control = w->cache;
		return 200;
	}
	return http_error(r, 404, "no file '%s' on the screen", rel);
}

int screen_register(struct kernel *k, struct http *h)
{
	sc.k = k;
	web_load(k->cfg.http_web_dir ? k->cfg.http_web_dir : LINLI_WEBDIR);
	char err[256];
	sc.version = 1;
	if (store_watch(k->store, "alarms", on_alarm, NULL, &sc.watch, err, sizeof err) != 0) {
		sc.watch = 0;
		log_info("screen", "no alarms panel: %s", err);
	}
	if (store_watch(k->store, "incident_moves", on_move, NULL, &sc.mwatch, err, sizeof err) !=
	    0) {
		sc.mwatch = 0;
		log_info("screen", "no incident moves on the ticker: %s", err);
	}
	http_on_close(h, polls_close, NULL);
	int rc = http_route(h, "POST", "/screen/api/login", false, post_login, NULL);
	if (!rc)
		rc = http_route(h, "POST", "/screen/api/display", false, post_display, NULL);
	if (!rc)
		rc = http_route(h, "GET", "/screen/api/session", false, get_session, NULL);
	if (!rc)
		rc = http_route(h, "POST", "/screen/api/logout", false, post_logout, NULL);
	if (!rc)
		rc = http_route(h, "GET", "/screen/api/alarms", false, get_alarms, NULL);
	if (!rc)
		rc = http_route(h, "GET", "/screen/api/panel/{}", false, get_panel, NULL);
	if (!rc)
		rc = http_route(h, "GET", "/screen/api/devices", false, get_devices, NULL);
	if (!rc)
		rc = http_route(h, "GET", "/screen/api/ticker", false, get_ticker, NULL);
	if (!rc)
		rc = http_route(h, "GET", "/screen/api/map", false, get_map, NULL);
	if (!rc) {
		refused_rebase(k, NULL);
		rb.timer = kernel_timer_add(k, 60000, 60000, refused_rebase, NULL);
	}
	if (!rc)
		rc = http_route(h, "GET", "/screen/", false, get_static, NULL);
	if (!rc)
		rc = http_route(h, "GET", "/screen", false, get_static, NULL);
	if (!rc)
		rc = http_route(h, "GET", "/screen/**", false, get_static, NULL);
	return rc;
}

void screen_close(void)
{
	if (rb.timer && sc.k)
		kernel_timer_cancel(sc.k, rb.timer);
	free(rb.ids);
	free(rb.base);
	memset(&rb, 0, sizeof rb);
	if (sc.watch && sc.k && sc.k->store)
		store_unwatch(sc.k->store, sc.watch);
	if (sc.mwatch && sc.k && sc.k->store)
		store_unwatch(sc.k->store, sc.mwatch);
	sc.watch = sc.mwatch = 0;
	free(sc.ticker);
	sc.ticker = NULL;
	sc.tseq = 0;
	for (int i = 0; i < sc.n_files; i++) {
		free(sc.files[i].rel);
		free(sc.files[i].data);
	}
	sc.n_files = 0;
	sc.web_bytes = 0;
	while (sc.sessions)
		sess_unlink(sc.sessions);
	while (sc.fails) {
		struct fails *f = sc.fails;
		sc.fails = f->next;
		free(f);
	}
}
