/*
 * http — the HTTP/JSON server of the open-data API (nng's HTTP server).
 *
 * Owns the listener, the route table and each request's life: nng's threads
 * accept the request and read its body (refusing a body over the limit with
 * 413 before reading it), then post it to the kernel thread, where the route's
 * handler runs and answers with a status and a JSON body. Authentication,
 * scope and rate limits are decided by the auth hook (the tier model) before
 * any handler runs. Never runs a handler off the kernel thread.
 */
#ifndef LINLI_HTTP_H
#define LINLI_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct kernel;
struct http;

#define HTTP_MAX_PARAMS 4

struct http_req {
	struct kernel *k;
	const char *method;		/* "GET", "POST" */
	char *uri;			/* the request target as received (any bytes) */
	char *path;			/* decoded path, without the query; NULL if malformed */
	char *query;			/* raw query string or NULL */
	char *body;			/* NUL-terminated, or NULL */
	size_t body_len;
	char *bearer;			/* token from Authorization: Bearer, or NULL */
	char *cookie;			/* the Cookie header, or NULL */
	char *csrf;			/* the X-Linli-CSRF header, or NULL */
	bool secure;			/* arrived over https:// */
	char peer[48];			/* the client's address ("" if unknown) */
	char *params[HTTP_MAX_PARAMS];	/* {…} segments of the route, decoded */
	int n_params;
	void *auth;			/* what the auth hook returned for this request */
	bool audited;			/* in the audit log already (set by whoever wrote it) */
	/* The answer. */
	int status;
	json_t *resp;			/* owned; NULL gives an empty body */
	/* A body that is not JSON (metrics, the OpenAPI document): owned, used when set. */
	char *text;
	size_t text_len;
	const char *content_type;	/* static; with text */
	char retry_after[16];		/* set with 429 */
	char *set_cookie;		/* owned: a Set-Cookie header for the answer, or NULL */
	const char *cache_control;	/* static; NULL: no-store */
	void *priv;			/* http.c's own */
};

/*
 * A route handler: runs on the kernel thread; returns an HTTP status, or
 * HTTP_PENDING and later calls http_finish (e.g. after a commit).
 */
typedef int (*http_fn)(struct http_req *r, void *ud);
#define HTTP_PENDING 0

/* Complete a request whose handler returned HTTP_PENDING (kernel thread). */
void http_finish(struct http_req *r, int status);

/*
 * The auth hook: decide who `r->bearer` is before a route that needs it runs.
 * Return 0 (setting r->auth) or an HTTP status (401, 403, 429) with
 * http_error() already called.
 */
typedef int (*http_auth_fn)(struct http_req *r, void *ud);

/*
 * The audit hook: record a request that ends refused (status >= 400) without
 * its handler having audited it (r->audited false): unknown paths, wrong
 * methods, malformed targets, refused bodies, failed authentication. Runs on
 * the kernel thread, with r->auth set if the key was known.
 */
typedef void (*http_audit_fn)(struct http_req *r, void *ud);

/*
 * Split and check a request target "PATH[?QUERY]" (pure; the fuzz entry
 * point for what a client controls in the request line). On success *path is
 * the percent-decoded path and *query the raw query or NULL (caller frees
 * both); both are valid UTF-8 once decoded, with no NUL. On a malformed
 * escape, %00 or bytes that are not UTF-8: LINLI_EINVAL with err saying which
 * part (its bytes escaped), and *path, *query NULL. LINLI_ENOMEM.
 */
int http_parse_target(const char *uri, char **path, char **query, char *err, size_t errlen);

/*
 * Open the server on `url` (http://host:port, or https://host:port with the
 * PEM certificate and key of http.tls_cert / http.tls_key, nng's TLS) with a
 * body limit in bytes.
 */
int http_open(struct kernel *k, const char *url, size_t max_body, struct http **out, char *err,
	      size_t errlen);
void http_close(struct http *h);

/* The port actually bound (for http://127.0.0.1:0). */
int http_port(const struct http *h);

/*
 * Add a route before http_start. `pattern` is a path whose `{}` segments
 * match one path segment each, e.g. "/api/v1/datasets/{}/records/{}"; a
 * final `**` matches the rest of the path (one segment or more) as one
 * parameter.
 * `needs_auth` routes pass the auth hook first.
 */
int http_route(struct http *h, const char *method, const char *pattern, bool needs_auth,
	       http_fn fn, void *ud);
void http_set_auth(struct http *h, http_auth_fn fn, void *ud);
/*
 * Call fn(ud) in http_close before the server stops (any thread, the kernel
 * loop over): a handler that keeps requests pending (a long poll) answers
 * them there, or the stop would wait for them. One hook.
 */
void http_on_close(struct http *h, void (*fn)(void *ud), void *ud);
void http_set_audit(struct http *h, http_audit_fn fn, void *ud);
int http_start(struct http *h, char *err, size_t errlen);

/*
 * Set an error answer {"error": {"status": N, "message": "..."}}; returns
 * status. Whatever the message echoes (paths, parameters) is escaped
 * (utf8_escape), so an error always has its body.
 */
int http_error(struct http_req *r, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The value of query parameter `name` (decoded, caller frees), or NULL. */
char *http_query(const struct http_req *r, const char *name);

/* The nth (0-based) value of a repeated query parameter, as http_query; NULL past the last. */
char *http_query_at(const struct http_req *r, const char *name, int nth);

/* Counters for status. */
void http_counters(const struct http *h, unsigned long long *served, unsigned long long *errors);

/* Answers sent with `status` (100..599) so far; 0 for any other. Any thread. */
unsigned long long http_status_count(const struct http *h, int status);

/*
 * http_path_match — does `path` match `pattern` (segments, `{}` for one
 * segment, a final `**` for the rest)? Returns the number of parameters,
 * copied into params[0..] (at most max; the caller frees them), or -1 (none
 * left allocated).
 */
int http_path_match(const char *pattern, const char *path, char **params, int max);

/*
 * http_match — does `path` match the route `pattern`? Fills r->params (the
 * caller frees them). The router's own test, exposed for tests/fuzz/fuzz_http.c.
 */
bool http_match(const char *pattern, const char *path, struct http_req *r);

#endif
