/*
 * Fuzz target: the HTTP API's request target and headers (host/http.c, and
 * the query handling of host/opendata.c down to the store's filter and
 * cursor parsing). The input is a request target ("/api/v1/...?...") and,
 * after a newline, an Authorization header value. The target is split and
 * checked (http_parse_target) and routed as on_http does; the records
 * route's query (where= repeated, limit=, cursor=) is shaped as opendata.c
 * shapes it and scanned.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzzkit.h"
#include "http.h"
#include "store.h"

static const char *const routes[] = {
    "/api/v1/health",
    "/api/v1/datasets",
    "/api/v1/datasets/{}/records",
    "/api/v1/datasets/{}/records/{}",
    "/api/v1/devices",
    "/api/v1/applications",
};

static int row(void *ud, const struct store_row *r)
{
	(void)ud, (void)r;
	return 0;
}

static void query(struct http_req *r, const char *dataset)
{
	char *limit = http_query(r, "limit"), *cursor = http_query(r, "cursor");
	char *where[STORE_MAX_WHERE];
	struct store_where w[STORE_MAX_WHERE];
	int nw = 0;
	long lim = 100;
	bool ok = true;
	if (limit) {
		char *end;
		lim = strtol(limit, &end, 10);
		ok = !*end && lim >= 1 && lim <= 1000;
	}
	while (nw < STORE_MAX_WHERE && (where[nw] = http_query_at(r, "where", nw))) {
		char *eq = strchr(where[nw], '=');
		if (eq && eq != where[nw]) {
			*eq = '\0';
			w[nw] = (struct store_where){where[nw], eq + 1};
		} else
			ok = false;
		nw++;
	}
	if (ok) {
		struct store_query q = {.dataset = dataset,
					.scope = "hefei/baohe/binhu/yuelan",
					.where = nw ? w : NULL,
					.n_where = nw,
					.limit = (size_t)lim,
					.cursor = cursor};
		char next[STORE_CURSOR_MAX], err[512];
		store_scan(fuzz_store(), &q, row, NULL, next, err, sizeof err);
	}
	for (int i = 0; i < nw; i++)
		free(where[i]);
	free(limit);
	free(cursor);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_quiet();
	if (size > 16 << 10)
		return 0;
	char *in = fuzz_strndup(data, size);
	char *nl = strchr(in, '\n');
	const char *auth = NULL;
	if (nl) {
		*nl = '\0';
		auth = nl + 1;
	}
	struct http_req r = {.method = "GET"};
	char err[256];
	http_parse_target(in, &r.path, &r.query, err, sizeof err);
	if (auth && strncasecmp(auth, "Bearer ", 7) == 0) {
		const char *tok = auth + 7;
		while (*tok == ' ')
			tok++;
		r.bearer = strdup(tok);
	}
	for (size_t i = 0; r.path && i < sizeof routes / sizeof routes[0]; i++) {
		if (!http_match(routes[i], r.path, &r))
			continue;
		if (i == 2)
			query(&r, r.params[0]);
		for (int p = 0; p < r.n_params; p++)
			free(r.params[p]);
		r.n_params = 0;
	}
	free(r.path);
	free(r.query);
	free(r.bearer);
	free(in);
	return 0;
}
