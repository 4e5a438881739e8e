/*
 * approutes — plugin HTTP routes under /api/v1/apps/<plugin>/...
 *
 * Owns the table of routes plugins register (C through sdkapi.c, Lua through
 * script_api.c), each a tracked resource of its plugin, and the one kernel
 * route that serves them all: after the API key check and rate limit of
 * every kernel route (opendata.c's auth hook), it finds the plugin and the
 * route (404, 405), checks that the key holds the resource
 * app:PLUGIN[/ROUTE] (403), parses the JSON body (400), checks the route's
 * required action for the key and runs the handler acting as the key
 * (caller.c), turns its reply into JSON and audits the request under the key
 * "via" the plugin. Errors are the kernel's JSON errors. Never runs a
 * plugin's handler for a key that may not reach it. /api/v1/applications[/REST]
 * is served the same way as the services plugin's applications[/REST] (the
 * applications API belongs to that plugin; without it: 503, nothing stored).
 */
#ifndef LINLI_APPROUTES_H
#define LINLI_APPROUTES_H

#include <jansson.h>
#include <msgpack.h>
#include <stddef.h>

#include "linli/api.h"
#include "plugin.h"

struct http;
struct kernel;

#define APPROUTE_NAME_MAX 63
#define APPROUTE_MAX_PARAMS 8

/* What a route's runner gets: the public request, ready. */
struct approute_call {
	struct linli_http_req pub;
	struct caller_view *cv;
};

/*
 * A kind of plugin runs its handler: fill *reply (one packed object or
 * nothing), *status (0: the kernel's default), and return 0 or a negative
 * LINLI_E* code with err.
 */
typedef int (*approute_run_fn)(void *arg, const struct approute_call *c, msgpack_sbuffer *reply,
			       int *status, char *err, size_t errlen);

/*
 * approute_add — plugin p serves route `name`: `method` (GET, POST, PUT,
 * DELETE) on `pattern` (relative to /api/v1/apps/<p>/: segments of
 * [A-Za-z0-9._-] or `{}`, at most APPROUTE_MAX_PARAMS of them). run(arg,
 * ...) serves it; free_arg(arg) (may be NULL) when the route goes. Tracked:
 * removed with the plugin. 0, LINLI_EINVAL / LINLI_EEXIST / LINLI_ENOMEM
 * with err.
 */
int approute_add(struct plugin *p, const char *name, const char *method, const char *pattern,
		 approute_run_fn run, void *arg, void (*free_arg)(void *), char *err,
		 size_t errlen);
/* Remove p's route `name`: 0 or LINLI_ENOENT. */
int approute_remove(struct plugin *p, const char *name);
/* Make p's route `name` require p's action `action`: 0 or LINLI_ENOENT. */
int approute_require(struct plugin *p, const char *name, const char *action);

/*
 * approute_call_as — run plugin `plugin`'s GET route `name` (a pattern
 * without {} segments) for `who`, as a request of who would run it: the
 * route's action checked for who, the plugin acting as who until the
 * handler returns (so every read is within who's jurisdiction, masked as
 * who's grants say). No API key and no resource check: the caller (the
 * screen, host/screen.c) chooses which routes its sessions reach. `query`:
 * NULL or NULL-terminated key, value pairs. *out: the reply as JSON (an
 * empty object when none). Returns an HTTP status: 200; 404 no such
 * plugin or route; 403 the action refused; else the handler's error's
 * status, with err.
 */
int approute_call_as(const struct tier_principal *who, const char *plugin, const char *name,
		     const char *const *query, json_t **out, char *err, size_t errlen);

/* Add the kernel route serving /api/v1/apps/PLUGIN/... to h (opendata_register). */
int approutes_register(struct kernel *k, struct http *h);

/* The members of the C table. */
int approutes_api_register(linli_ctx *ctx, const char *name, const char *method,
			   const char *pattern, linli_route_fn fn, void *ud);
int approutes_api_require(linli_ctx *ctx, const char *name, const char *action);
int approutes_api_unregister(linli_ctx *ctx, const char *name);

#endif
