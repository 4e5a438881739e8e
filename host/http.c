/*
 * http — see http.h.
 *
 * nng gives one tree handler for "/" with every method. Its callback (an nng
 * thread) checks Content-Length against the limit — 413 at once, before any
 * body byte is read, 411 when a body comes without a length — then reads the
 * body on the connection and posts the request to the kernel thread. There,
 * routing, the auth hook and the handler run, and the aio is finished with
 * the response. Bodies are collected by us, not by nng, because nng answers
 * an oversized body with 400 where the API promises 413; a body must arrive
 * whole within http.body_timeout_ms, or the connection is cut.
 *
 * No aio is ever freed from its own completion callback (nng_aio_free there
 * waits for itself): the body's aio goes to nng's reaper (pending_free).
 */
#include "http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <nng/supplemental/tls/tls.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel.h"
#include "linli/error.h"
#include "log.h"
#include "record.h"
#include "util.h"

struct route {
	char *method, *pattern;
	bool needs_auth;
	http_fn fn;
	void *ud;
};

struct http {
	struct kernel *k;
	nng_http_server *srv;
	nng_http_handler *handler;
	nng_tls_config *tls; /* https:// only */
	struct route *routes;
	int n_routes;
	http_auth_fn auth;
	void *auth_ud;
	http_audit_fn audit;
	void *audit_ud;
	void (*on_close)(void *ud);
	void *on_close_ud;
	size_t max_body;
	int body_timeout_ms; /* the whole body must arrive within this */
	int port;
	bool started;
	_Atomic unsigned long long served, errors;
	_Atomic unsigned long long by_status[500]; /* answers per status 100..599 */
};

/* One request in flight. */
struct pending {
	struct http *h;
	nng_aio *aio;	   /* the handler's aio, finished with the response */
	nng_aio *read_aio; /* reads the body */
	struct http_req r;
	char *method;
	bool close; /* refused before an announced body was read: close after the answer */
	int drop;   /* the body never came whole: audit, then end with this nng error */
};

static void pending_free(struct pending *p)
{
	free(p->method);
	free(p->r.uri);
	free(p->r.path);
	free(p->r.query);
	free(p->r.body);
	free(p->r.bearer);
	free(p->r.cookie);
	free(p->r.csrf);
	free(p->r.set_cookie);
	for (int i = 0; i < p->r.n_params; i++)
		free(p->r.params[i]);
	json_decref(p->r.resp);
	free(p->r.text);
	/*
	 * The last owner of a request may be read_aio's own callback (a client
	 * that went away or stalled mid-body). nng_aio_free there waits for
	 * that callback to return, for ever, pinning one of nng's few task
	 * threads: a handful of abandoned bodies froze the whole daemon. The
	 * reaper frees it once no callback runs.
	 */
	if (p->read_aio)
		nng_aio_reap(p->read_aio);
	free(p);
}

int http_error(struct http_req *r, int status, const char *fmt, ...)
{
	char msg[512], esc[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	/* jansson refuses a string that is not UTF-8: escaped, it always has a body. */
	utf8_escape(esc, sizeof esc, msg, strlen(msg));
	json_decref(r->resp);
	r->resp = json_pack("{s:{s:i,s:s}}", "error", "status", status, "message", esc);
	r->status = status;
	return status;
}

static const char *reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 202:
		return "Accepted";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 409:
		return "Conflict";
	case 411:
		return "Length Required";
	case 413:
		return "Payload Too Large";
	case 415:
		return "Unsupported Media Type";
	case 422:
		return "Unprocessable Entity";
	case 429:
		return "Too Many Requests";
	case 500:
		return "Internal Server Error";
	case 503:
		return "Service Unavailable";
	default:
		return status < 400 ? "OK" : status < 500 ? "Client Error" : "Server Error";
	}
}

/* Finish with r->status and r->resp (from any thread), then free. */
static void respond(struct pending *p)
{
	struct http_req *r = &p->r;
	nng_http_res *res;
	if (nng_http_res_alloc(&res) != 0) {
		nng_aio_finish(p->aio, NNG_ENOMEM);
		pending_free(p);
		return;
	}
	/* Every answer has a body, JSON unless the handler set a text: one
	 * that cannot be encoded is a 500. */
	bool text = r->text && r->status < 400;
	char *body = text ? NULL : r->resp ? json_dumps(r->resp, JSON_COMPACT) : NULL;
	if (!body && !text) {
		char b[160];
		if (r->status < 400)
			r->status = 500;
		snprintf(b, sizeof b, "{\"error\":{\"status\":%d,\"message\":\"%s\"}}", r->status,
			 r->status == 500 ? "cannot encode the answer" : reason(r->status));
		body = strdup(b);
	}
	nng_http_res_set_status(res, (uint16_t)r->status);
	nng_http_res_set_reason(res, reason(r->status));
	nng_http_res_set_header(res, "Content-Type",
				text && r->content_type ? r->content_type
							: "application/json; charset=utf-8");
	nng_http_res_set_header(res, "Cache-Control",
				r->cache_control && r->status < 400 ? r->cache_control
								    : "no-store");
	if (r->set_cookie)
		nng_http_res_set_header(res, "Set-Cookie", r->set_cookie);
	if (r->secure)
		nng_http_res_set_header(res, "Strict-Transport-Security", "max-age=31536000");
	/* After an early refusal the unread body is still on the wire: close. */
	if (p->close)
		nng_http_res_set_header(res, "Connection", "close");
	if (r->retry_after[0])
		nng_http_res_set_header(res, "Retry-After", r->retry_after);
	if (text) {
		nng_http_res_copy_data(res, r->text, r->text_len);
	} else if (body) {
		nng_http_res_copy_data(res, body, strlen(body));
		free(body);
	}
	atomic_fetch_add(&p->h->served, 1);
	if (r->status >= 100 && r->status <= 599)
		atomic_fetch_add(&p->h->by_status[r->status - 100], 1);
	if (r->status >= 400)
		atomic_fetch_add(&p->h->errors, 1);
	nng_aio_set_output(p->aio, 0, res);
	nng_aio_finish(p->aio, 0);
	pending_free(p);
}

static int hexval(int c)
{
	return isdigit(c) ? c - '0' : isxdigit(c) ? (tolower(c) - 'a' + 10) : -1;
}

/*
 * Percent-decode [s, s+n) into a new string (*out): LINLI_EINVAL on a bad
 * escape or %00, LINLI_ENOMEM.
 */
static int decode(const char *s, size_t n, bool plus_is_space, char **out)
{
	char *d = malloc(n + 1), *o = d;
	*out = NULL;
	if (!d)
		return LINLI_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			int a = i + 2 < n ? hexval((unsigned char)s[i + 1]) : -1;
			int b = a >= 0 ? hexval((unsigned char)s[i + 2]) : -1;
			if (a < 0 || b < 0 || (a == 0 && b == 0)) {
				free(d);
				return LINLI_EINVAL;
			}
			*o++ = (char)(a * 16 + b);
			i += 2;
		} else
			*o++ = plus_is_space && s[i] == '+' ? ' ' : s[i];
	}
	*o = '\0';
	*out = d;
	return 0;
}

/* Decode part `what` of a target; 0 when it is well-formed UTF-8 text. */
static int decode_part(const char *what, const char *s, size_t n, bool plus_is_space, char **out,
		       char *err, size_t errlen)
{
	int rc = decode(s, n, plus_is_space, out);
	if ((rc == 0 && record_utf8_valid(*out, strlen(*out))) || rc == LINLI_ENOMEM)
		return rc;
	free(*out);
	*out = NULL;
	char raw[160];
	utf8_escape(raw, sizeof raw, s, n);
	return errf(err, errlen, LINLI_EINVAL, "the %s '%s' is not percent-encoded UTF-8", what,
		    raw);
}

int http_parse_target(const char *uri, char **path, char **query, char *err, size_t errlen)
{
	*path = *query = NULL;
	const char *qm = strchr(uri, '?');
	size_t plen = qm ? (size_t)(qm - uri) : strlen(uri);
	int rc = decode_part("path", uri, plen, false, path, err, errlen);
	if (rc || !qm)
		return rc;
	/* The query stays raw (http_query decodes one value), but is checked whole here. */
	char *q;
	if ((rc = decode_part("query", qm + 1, strlen(qm + 1), true, &q, err, errlen)) == 0) {
		free(q);
		if (!(*query = strdup(qm + 1)))
			rc = LINLI_ENOMEM;
	}
	if (rc) {
		free(*path);
		*path = NULL;
	}
	return rc;
}

char *http_query(const struct http_req *r, const char *name)
{
	return http_query_at(r, name, 0);
}

char *http_query_at(const struct http_req *r, const char *name, int nth)
{
	if (!r->query)
		return NULL;
	size_t nl = strlen(name);
	const char *q = r->query;
	while (*q) {
		size_t len = strcspn(q, "&");
		const char *eq = memchr(q, '=', len);
		size_t kl = eq ? (size_t)(eq - q) : len;
		if (kl == nl && strncmp(q, name, nl) == 0 && nth-- == 0) {
			char *v = NULL;
			if (!eq)
				return strdup("");
			decode(eq + 1, len - kl - 1, true, &v); /* checked by http_parse_target */
			return v;
		}
		q += len;
		if (*q == '&')
			q++;
	}
	return NULL;
}

int http_path_match(const char *pattern, const char *path, char **params, int max)
{
	int np = 0;
	const char *p = pattern, *t = path;
	for (;;) {
		size_t pn = strcspn(p, "/"), tn = strcspn(t, "/");
		if (pn == 2 && strncmp(p, "**", 2) == 0 && !p[2]) {
			/* A final `**`: the rest of the path, one segment or more, as one param. */
			if (!*t || np == max || !(params[np] = strdup(t)))
				goto no;
			np++;
			break;
		}
		if (pn == 2 && strncmp(p, "{}", 2) == 0) {
			if (tn == 0 || np == max)
				goto no;
			/* The path is decoded already: decoding again would turn %2541 into A. */
			params[np] = strndup(t, tn);
			if (!params[np])
				goto no;
			np++;
		} else if (pn != tn || strncmp(p, t, pn) != 0)
			goto no;
		p += pn;
		t += tn;
		if (!*p || !*t) {
			if (*p || *t)
				goto no;
			break;
		}
		p++;
		t++;
	}
	return np;
no:
	for (int i = 0; i < np; i++)
		free(params[i]);
	return -1;
}

/* Does `path` match `pattern`? Fills r->params for {} segments. */
static bool match(const char *pattern, const char *path, struct http_req *r)
{
	int np = http_path_match(pattern, path, r->params, HTTP_MAX_PARAMS);
	if (np < 0)
		return false;
	r->n_params = np;
	return true;
}

void http_finish(struct http_req *r, int status)
{
	r->status = status;
	respond(r->priv);
}

/* A refusal no handler audited goes to the audit hook (kernel thread). */
static void audit_refusal(struct http *h, struct http_req *r)
{
	if (r->status >= 400 && !r->audited && h->audit) {
		h->audit(r, h->audit_ud);
		r->audited = true;
	}
}

/* Kernel thread: route, authenticate, run; answer what on_http refused. */
static void on_request(struct kernel *k, void *arg)
{
	struct pending *p = arg;
	struct http *h = p->h;
	struct http_req *r = &p->r;
	r->k = k;
	if (r->status) { /* refused on arrival: malformed target, body refused or not sent */
		audit_refusal(h, r);
		if (!p->drop) {
			respond(p);
			return;
		}
		nng_aio_finish(p->aio, p->drop); /* no answer: nng drops the connection */
		pending_free(p);
		return;
	}
	bool path_known = false;
	for (int i = 0; i < h->n_routes; i++) {
		struct route *rt = &h->routes[i];
		if (!match(rt->pattern, r->path, r))
			continue;
		path_known = true;
		if (strcmp(rt->method, r->method) != 0) {
			for (int j = 0; j < r->n_params; j++)
				free(r->params[j]);
			r->n_params = 0;
			continue;
		}
		int st = 0;
		if (rt->needs_auth) {
			if (!h->auth)
				st = http_error(r, 401, "no authentication configured");
			else
				st = h->auth(r, h->auth_ud);
		}
		if (st == 0) {
			r->status = 200;
			st = rt->fn(r, rt->ud);
			if (st == HTTP_PENDING)
				return; /* http_finish answers */
		}
		r->status = st;
		audit_refusal(h, r);
		respond(p);
		return;
	}
	if (path_known)
		http_error(r, 405, "method %s not allowed on %s", r->method, r->path);
	else
		http_error(r, 404, "no such resource: %s", r->path);
	audit_refusal(h, r);
	respond(p);
}

static void post_or_fail(struct pending *p)
{
	if (kernel_post(p->h->k, on_request, p) != 0) {
		http_error(&p->r, 503, "linlid is shutting down");
		respond(p);
	}
}

/* nng thread, read_aio's callback: never frees read_aio itself (see pending_free). */
static void body_read(void *arg)
{
	struct pending *p = arg;
	int rv = nng_aio_result(p->read_aio);
	if (rv != 0) {
		/* The client went away or stalled: audited, and the connection dropped. */
		if (rv == NNG_ETIMEDOUT)
			http_error(&p->r, 408, "body not complete within %d ms: connection cut",
				   p->h->body_timeout_ms);
		else
			http_error(&p->r, 400, "connection ended before the whole body (%s)",
				   nng_strerror(rv));
		p->drop = rv;
		if (kernel_post(p->h->k, on_request, p) != 0) {
			nng_aio_finish(p->aio, rv);
			pending_free(p);
		}
		return;
	}
	post_or_fail(p);
}

/*
 * nng thread: refuse a request before its body is read. The answer and the
 * audit come from the kernel thread like any other; the connection closes
 * after it, since an announced body may still be on the wire.
 */
static void refuse(struct pending *p)
{
	p->close = true;
	post_or_fail(p);
}

/*
 * The client's address, as text, into out ("" when it cannot be told).
 *
 * nng 1.x gives a handler no getter for it (nng 2 has one): the handler's
 * third aio input is the nng_http_conn, and that struct's first member has
 * been its nng_stream in every 1.x release from 1.2 to 1.10 (checked in
 * src/supplemental/http/http_conn.c and http_server.c of each tag). The
 * stream answers NNG_OPT_REMADDR (a TLS stream asks its TCP one). So it is
 * read only under a runtime libnng of those versions (peer_known).
 */
static bool peer_known;

static void peer_check(void)
{
	int major = 0, minor = 0;
	peer_known = NNG_MAJOR_VERSION == 1 && sscanf(nng_version(), "%d.%d", &major, &minor) == 2 &&
		     major == 1 && minor >= 2 && minor <= 10;
	if (!peer_known)
		log_warn("http", "libnng %s: clients' addresses are not known (logins are limited per "
				 "user name only)",
			 nng_version());
}

static void conn_peer(nng_http_conn *conn, char *out, size_t len)
{
	out[0] = '\0';
	if (!peer_known || !conn)
		return;
	nng_stream *st = *(nng_stream **)conn;
	nng_sockaddr sa;
	if (!st || nng_stream_get_addr(st, NNG_OPT_REMADDR, &sa) != 0)
		return;
	if (sa.s_family == NNG_AF_INET)
		inet_ntop(AF_INET, &sa.s_in.sa_addr, out, (socklen_t)len);
	else if (sa.s_family == NNG_AF_INET6)
		inet_ntop(AF_INET6, sa.s_in6.sa_addr, out, (socklen_t)len);
}

/* nng thread: a request arrived. */
static void on_http(nng_aio *aio)
{
	nng_http_req *req = nng_aio_get_input(aio, 0);
	nng_http_handler *hd = nng_aio_get_input(aio, 1);
	nng_http_conn *conn = nng_aio_get_input(aio, 2);
	struct http *h = nng_http_handler_get_data(hd);
	struct pending *p = calloc(1, sizeof *p);
	if (!p) {
		nng_aio_finish(aio, NNG_ENOMEM);
		return;
	}
	p->h = h;
	p->aio = aio;
	p->r.priv = p;
	p->method = strdup(nng_http_req_get_method(req));
	p->r.method = p->method;
	p->r.uri = strdup(nng_http_req_get_uri(req));
	const char *auth = nng_http_req_get_header(req, "Authorization");
	if (auth && strncasecmp(auth, "Bearer ", 7) == 0) {
		const char *tok = auth + 7;
		while (*tok == ' ')
			tok++;
		p->r.bearer = strdup(tok);
	}
	const char *ck = nng_http_req_get_header(req, "Cookie");
	if (ck)
		p->r.cookie = strdup(ck);
	const char *xc = nng_http_req_get_header(req, "X-Linli-CSRF");
	if (xc)
		p->r.csrf = strdup(xc);
	p->r.secure = h->tls != NULL;
	conn_peer(conn, p->r.peer, sizeof p->r.peer);
	char err[256];
	int rc = p->method && p->r.uri
		     ? http_parse_target(p->r.uri, &p->r.path, &p->r.query, err, sizeof err)
		     : LINLI_ENOMEM;
	if (rc == LINLI_ENOMEM) {
		nng_aio_finish(aio, NNG_ENOMEM);
		pending_free(p);
		return;
	}
	if (rc) {
		http_error(&p->r, 400, "%s", err);
		refuse(p);
		return;
	}
	const char *cl = nng_http_req_get_header(req, "Content-Length");
	const char *te = nng_http_req_get_header(req, "Transfer-Encoding");
	if (te) {
		http_error(&p->r, 411, "send the body with a Content-Length, not %s", te);
		refuse(p);
		return;
	}
	if (!cl || strcmp(cl, "0") == 0) {
		post_or_fail(p);
		return;
	}
	char *end;
	unsigned long long n = strtoull(cl, &end, 10);
	if (*end || !isdigit((unsigned char)cl[0])) {
		http_error(&p->r, 400, "bad Content-Length '%s'", cl);
		refuse(p);
		return;
	}
	if (n > h->max_body) {
		http_error(&p->r, 413, "body of %llu bytes exceeds the limit of %zu bytes", n,
			   h->max_body);
		refuse(p);
		return;
	}
	p->r.body = malloc((size_t)n + 1);
	p->r.body_len = (size_t)n;
	if (!p->r.body || nng_aio_alloc(&p->read_aio, body_read, p) != 0) {
		nng_aio_finish(aio, NNG_ENOMEM);
		pending_free(p);
		return;
	}
	p->r.body[n] = '\0';
	nng_iov iov = {.iov_buf = p->r.body, .iov_len = (size_t)n};
	nng_aio_set_iov(p->read_aio, 1, &iov);
	nng_aio_set_timeout(p->read_aio, h->body_timeout_ms); /* a stalled client is cut off */
	nng_http_conn_read_all(conn, p->read_aio);
}

/*
 * What nng answers itself, before our handler sees the request (no Host on
 * HTTP/1.1, another HTTP version, a target that is not a path): the same
 * JSON error shape. nng sends these as text/html and they are not audited.
 */
static int set_error_pages(nng_http_server *srv)
{
	static const uint16_t codes[] = {400, 404, 405, 413, 414, 431, 500, 505};
	int rv = 0;
	for (size_t i = 0; rv == 0 && i < sizeof codes / sizeof codes[0]; i++) {
		char page[160];
		snprintf(page, sizeof page, "{\"error\":{\"status\":%u,\"message\":\"%s\"}}",
			 codes[i],
			 codes[i] == 505   ? "only HTTP/1.0 and HTTP/1.1 are served"
			 : codes[i] == 400 ? "malformed request (an HTTP/1.1 request needs Host)"
					   : "refused by the HTTP layer");
		rv = nng_http_server_set_error_page(srv, codes[i], page);
	}
	return rv;
}

/* The whole of a small file, NUL-terminated (malloc'd), or NULL with errno. */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = NULL;
	size_t n = 0, cap = 0;
	for (;;) {
		if (n + 4096 + 1 > cap) {
			char *b = realloc(buf, cap = cap ? cap * 2 : 8192);
			if (!b || cap > (1 << 20)) {
				free(b ? b : buf);
				fclose(f);
				errno = EFBIG;
				return NULL;
			}
			buf = b;
		}
		size_t got = fread(buf + n, 1, 4096, f);
		n += got;
		if (got < 4096)
			break;
	}
	fclose(f);
	buf[n] = '\0';
	return buf;
}

/* https://: nng's TLS server configuration from http.tls_cert and http.tls_key. */
static int setup_tls(struct http *h, char *err, size_t errlen)
{
	const struct cfg *cfg = &h->k->cfg;
	char *cert = cfg->http_tls_cert ? slurp(cfg->http_tls_cert) : NULL;
	if (!cert) {
		snprintf(err, errlen, "http.tls_cert: cannot read %s: %s",
			 cfg->http_tls_cert ? cfg->http_tls_cert : "(not set)", strerror(errno));
		return LINLI_ECONFIG;
	}
	char *key = cfg->http_tls_key ? slurp(cfg->http_tls_key) : NULL;
	if (!key) {
		snprintf(err, errlen, "http.tls_key: cannot read %s: %s",
			 cfg->http_tls_key ? cfg->http_tls_key : "(not set)", strerror(errno));
		free(cert);
		return LINLI_ECONFIG;
	}
	int rv = nng_tls_config_alloc(&h->tls, NNG_TLS_MODE_SERVER);
	if (rv == 0 && (rv = nng_tls_config_own_cert(h->tls, cert, key, NULL)) != 0)
		snprintf(err, errlen,
			 "http.tls_cert/http.tls_key: %s and %s are not a PEM certificate and "
			 "its unencrypted key (%s)",
			 cfg->http_tls_cert, cfg->http_tls_key, nng_strerror(rv));
	else if (rv == 0 && (rv = nng_http_server_set_tls(h->srv, h->tls)) != 0)
		snprintf(err, errlen, "http: cannot use TLS: %s", nng_strerror(rv));
	else if (rv)
		snprintf(err, errlen, "http: cannot set up TLS: %s", nng_strerror(rv));
	sodium_memzero(key, strlen(key));
	free(key);
	free(cert);
	return rv ? LINLI_ECONFIG : 0;
}

int http_open(struct kernel *k, const char *url, size_t max_body, struct http **out, char *err,
	      size_t errlen)
{
	struct http *h = calloc(1, sizeof *h);
	nng_url *u = NULL;
	int rv;
	peer_check();
	if (!h)
		return LINLI_ENOMEM;
	h->k = k;
	h->max_body = max_body;
	h->body_timeout_ms = k->cfg.http_body_timeout_ms > 0 ? k->cfg.http_body_timeout_ms : 10000;
	if ((rv = nng_url_parse(&u, url)) != 0 || (rv = nng_http_server_hold(&h->srv, u)) != 0) {
		snprintf(err, errlen, "http.listen: '%s': %s", url, nng_strerror(rv));
		if (u)
			nng_url_free(u);
		free(h);
		return LINLI_ECONFIG;
	}
	nng_url_free(u);
	if (strncmp(url, "https://", 8) == 0 && (rv = setup_tls(h, err, errlen)) != 0) {
		http_close(h);
		return rv;
	}
	if ((rv = nng_http_handler_alloc(&h->handler, "/", on_http)) != 0 ||
	    (rv = nng_http_handler_set_method(h->handler, NULL)) != 0 ||
	    (rv = nng_http_handler_collect_body(h->handler, false, 0)) != 0 ||
	    (rv = nng_http_handler_set_tree(h->handler)) != 0 ||
	    (rv = nng_http_handler_set_data(h->handler, h, NULL)) != 0 ||
	    (rv = nng_http_server_add_handler(h->srv, h->handler)) != 0 ||
	    (rv = set_error_pages(h->srv)) != 0) {
		snprintf(err, errlen, "http: cannot set up the handler: %s", nng_strerror(rv));
		http_close(h);
		return LINLI_EIO;
	}
	*out = h;
	return 0;
}

int http_route(struct http *h, const char *method, const char *pattern, bool needs_auth, http_fn fn,
	       void *ud)
{
	struct route *v = realloc(h->routes, (size_t)(h->n_routes + 1) * sizeof *v);
	if (!v)
		return LINLI_ENOMEM;
	h->routes = v;
	v[h->n_routes++] = (struct route){strdup(method), strdup(pattern), needs_auth, fn, ud};
	return 0;
}

void http_set_auth(struct http *h, http_auth_fn fn, void *ud)
{
	h->auth = fn;
	h->auth_ud = ud;
}

void http_on_close(struct http *h, void (*fn)(void *ud), void *ud)
{
	h->on_close = fn;
	h->on_close_ud = ud;
}

void http_set_audit(struct http *h, http_audit_fn fn, void *ud)
{
	h->audit = fn;
	h->audit_ud = ud;
}

int http_start(struct http *h, char *err, size_t errlen)
{
	int rv = nng_http_server_start(h->srv);
	if (rv != 0) {
		snprintf(err, errlen, "http: cannot listen: %s", nng_strerror(rv));
		return LINLI_EIO;
	}
	h->started = true;
	nng_sockaddr sa;
	if (nng_http_server_get_addr(h->srv, &sa) == 0 && sa.s_family == NNG_AF_INET)
		h->port = ((sa.s_in.sa_port & 0xff) << 8) | (sa.s_in.sa_port >> 8);
	return 0;
}

int http_port(const struct http *h)
{
	return h->port;
}

void http_close(struct http *h)
{
	if (!h)
		return;
	if (h->on_close)
		h->on_close(h->on_close_ud);
	if (h->started)
		nng_http_server_stop(h->srv);
	if (h->srv)
		nng_http_server_release(h->srv);
	if (h->tls)
		nng_tls_config_free(h->tls);
	for (int i = 0; i < h->n_routes; i++) {
		free(h->routes[i].method);
		free(h->routes[i].pattern);
	}
	free(h->routes);
	free(h);
}

unsigned long long http_status_count(const struct http *h, int status)
{
	return h && status >= 100 && status <= 599 ? atomic_load(&h->by_status[status - 100]) : 0;
}

void http_counters(const struct http *h, unsigned long long *served, unsigned long long *errors)
{
	*served = h ? atomic_load(&h->served) : 0;
	*errors = h ? atomic_load(&h->errors) : 0;
}

/* The router's match, for the fuzz target (tests/fuzz/fuzz_http.c). */
bool http_match(const char *pattern, const char *path, struct http_req *r)
{
	return match(pattern, path, r);
}
