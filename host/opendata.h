/*
 * opendata — the routes of the HTTP/JSON open-data API (/api/v1/...).
 * The API is described in sdk/openapi.yaml; every route here appears there.
 */
#ifndef LINLI_OPENDATA_H
#define LINLI_OPENDATA_H

struct kernel;
struct http;

/* Add the /api/v1 routes and the API-key authentication to server h. */
int opendata_register(struct kernel *k, struct http *h);

/* Register `linli apikeys add | list | revoke` (also without an HTTP server). */
int opendata_register_cmds(struct kernel *k);

/* Free the rate-limit state. */
void opendata_close(void);

#endif
