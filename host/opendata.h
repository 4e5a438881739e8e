/*
 * opendata — the routes of the HTTP/JSON open-data API (/api/v1/...).
 * The API is described in sdk/openapi.yaml; every route here appears there.
 */
#ifndef LINLI_OPENDATA_H
#define LINLI_OPENDATA_H

struct kernel;
struct http;

int opendata_register(struct kernel *k, struct http *h);

#endif
