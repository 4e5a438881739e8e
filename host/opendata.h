/*
 * opendata — the routes of the HTTP/JSON open-data API (/api/v1/...).
 * The API is described in sdk/openapi.yaml; every route here appears there.
 */
#ifndef LINLI_OPENDATA_H
#define LINLI_OPENDATA_H

#include <stddef.h>

struct kernel;
struct http;
struct http_req;
struct apires_set;
struct tier_principal;

/* Add the /api/v1 routes and the API-key authentication to server h. */
int opendata_register(struct kernel *k, struct http *h);

/* Register `linli apikeys add | list | revoke` (also without an HTTP server). */
int opendata_register_cmds(struct kernel *k);

/*
 * The API key of an authenticated request: its principal (a machine at the
 * key's scope with the role it was issued with), and in *scope and *res
 * (each may be NULL) its scope and resources. NULL before authentication.
 */
const struct tier_principal *opendata_key(const struct http_req *r, const char **scope,
					  const struct apires_set **res);

/*
 * Audit request r under its key (object at scope, result "allowed" /
 * "denied") and mark it audited; returns status, for `return
 * opendata_audited(...)`.
 */
int opendata_audited(struct http_req *r, const char *scope, const char *object,
		     const char *result, int status);

/* The hash an API key is stored and looked up by (BLAKE2b, hex): keep this, not the key. */
void opendata_key_hash(const char *key, char out[65]);

/*
 * opendata_key_check — is the key of `hash` (opendata_key_hash) a live API
 * key? 0 with its name (without "apikey:"), scope and resources (res may be
 * NULL); 401 unknown or revoked, 503 the store could not tell; err says why.
 * Kernel thread.
 */
#define OPENDATA_NAME_MAX 56
int opendata_key_check(struct kernel *k, const char *hash, char name[OPENDATA_NAME_MAX],
		       char *scope, struct apires_set *res, char *err, size_t errlen);

/* Free the rate-limit state. */
void opendata_close(void);

#endif
