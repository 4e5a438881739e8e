/*
 * bus_api — the bus members of the C function table added in SDK 1.1:
 * request/reply between plugins (serve, unserve, reply, request,
 * request_cancel; linli/api.h documents them).
 *
 * Thin wrappers over bus.c's request/reply: each checks the plugin's
 * capability through plug_authorize (serving needs bus.subscribe:PATTERN,
 * requesting bus.publish:TOPIC at the request's scope), converts records to
 * MessagePack and back, and tracks every server and pending request on the
 * plugin, so that a stopping plugin leaves none behind. Kernel thread only.
 */
#ifndef LINLI_BUS_API_H
#define LINLI_BUS_API_H

#include <stdint.h>

#include "linli/api.h"

int bus_api_serve(linli_ctx *ctx, const char *pattern, linli_request_fn fn, void *ud, uint64_t *id);
int bus_api_unserve(linli_ctx *ctx, uint64_t id);
int bus_api_reply(linli_ctx *ctx, uint64_t id, int status, const linli_record *rec,
		  const char *err);
int bus_api_request(linli_ctx *ctx, const char *topic, const char *scope,
		    const linli_record *payload, uint32_t timeout_ms, linli_reply_fn fn, void *ud,
		    uint64_t *id);
int bus_api_request_cancel(linli_ctx *ctx, uint64_t id);

#endif
