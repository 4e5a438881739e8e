/*
 * store_api — the store's members of the SDK function table (linli/api.h,
 * linli/store.h): get, put, delete, scan, read-modify-write, the commit
 * notice and the last error, as C plugins see them.
 *
 * Owns the path from a plugin to the store: every call names its scope (the
 * plugin's node when NULL), passes plug_authorize (the node's subtree and
 * the plugin's declared store.read / store.write capabilities) before it
 * reaches the store, refuses the kernel's system datasets, masks sensitive
 * fields for a plugin without the "sensitive[:DATASET]" capability and
 * audits every read of them (tiers_audit), turns records into MessagePack
 * and back, and keeps the message of the plugin's latest failed call
 * (plug_store_state). Commit
 * waiters are tracked resources, so none outlives its plugin. Never touches
 * LMDB itself, never hands a plugin a pointer into the store's memory, and
 * never runs plugin code inside a store read: a scan's rows are copied out
 * before the first row callback, so the callback may write. A plugin's
 * update callback runs inside the write transaction and may only read.
 */
#ifndef LINLI_STORE_API_H
#define LINLI_STORE_API_H

#include <stdbool.h>

#include "linli/api.h"

int store_api_get(linli_ctx *ctx, const char *dataset, const char *scope, const char *id,
		  linli_record **rec, char *scope_out);
int store_api_put(linli_ctx *ctx, const char *dataset, const char *scope, const char *id,
		  const linli_record *rec, char *id_out, bool *created);
int store_api_delete(linli_ctx *ctx, const char *dataset, const char *scope, const char *id);
int store_api_scan(linli_ctx *ctx, const struct linli_query *q, linli_row_fn fn, void *ud,
		   char *cursor_out);
int store_api_update(linli_ctx *ctx, const char *dataset, const char *scope, const char *id,
		     linli_update_fn fn, void *ud);
int store_api_on_commit(linli_ctx *ctx, linli_commit_fn fn, void *ud);
const char *store_api_last_error(linli_ctx *ctx);

#endif
