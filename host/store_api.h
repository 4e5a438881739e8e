/*
 * store_api — the store's members of the SDK function table (linli/api.h,
 * linli/store.h): get, put, delete, scan, read-modify-write, the commit
 * notice and the last error, as C plugins see them; and the same calls for
 * any other actor that is not a person — script plugins and rules, through
 * script_api.c — so that every one of them meets the same checks.
 *
 * Owns the path from a plugin or script to the store: every call names its
 * scope (the actor's node when NULL), passes access_check with the actor's
 * principal (the node's subtree and the declared store.read / store.write
 * capabilities: plug_authorize's check for a plugin) before it reaches the
 * store, refuses the kernel's system datasets, masks sensitive fields for an
 * actor without the "sensitive[:DATASET]" capability and audits every read
 * of them (tiers_audit), turns records into MessagePack and back, and keeps
 * the message of the actor's latest failed call (struct plug_store_state).
 * Commit waiters are tracked resources, so none outlives its plugin. Never
 * touches LMDB itself, never hands out a pointer into the store's memory,
 * and never runs plugin or script code inside a store read: a scan's rows
 * are copied out before the first row callback, so the callback may write.
 * An update callback runs inside the write transaction and may only read.
 */
#ifndef LINLI_STORE_API_H
#define LINLI_STORE_API_H

#include <stdbool.h>

#include "linli/api.h"
#include "plugin.h"
#include "store.h"
#include "tier.h"

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

/*
 * struct store_actor — who calls the store, for the *_as calls below: the
 * kernel, the principal every check, mask and audit entry uses (its scope is
 * the default scope of a call; PRINCIPAL_PLUGIN or PRINCIPAL_RULE), the name
 * refusals are logged under, and the actor's own state (its last error and
 * whether one of its update callbacks runs). All borrowed for the call.
 */
struct store_actor {
	struct kernel *k;
	const struct tier_principal *who;
	const char *log_name;
	struct plug_store_state *st;
};

/*
 * The calls of the members above for any actor: same arguments, same
 * checks, same return codes; a failure's message is in a->st->last_error.
 * put takes the record packed (one MessagePack map, `len` bytes). The row
 * and update callbacks are those of linli/store.h without the plugin's ctx.
 */
typedef int (*store_row_as_fn)(void *ud, const struct linli_row *row);
typedef int (*store_update_as_fn)(void *ud, const char *id, linli_record **rec, char *err,
				  size_t errlen);

int store_api_get_as(const struct store_actor *a, const char *dataset, const char *scope,
		     const char *id, linli_record **rec, char *scope_out);
int store_api_put_as(const struct store_actor *a, const char *dataset, const char *scope,
		     const char *id, const void *rec, size_t len, char *id_out, bool *created);
int store_api_delete_as(const struct store_actor *a, const char *dataset, const char *scope,
			const char *id);
int store_api_scan_as(const struct store_actor *a, const struct linli_query *q, store_row_as_fn fn,
		      void *ud, char *cursor_out);
int store_api_update_as(const struct store_actor *a, const char *dataset, const char *scope,
			const char *id, store_update_as_fn fn, void *ud);

/*
 * store_api_on_commit_as — have the store call fn(arg, rc, msg) once, when
 * the current batch commits (rc 0) or is lost (a negative code and its
 * message). The checks and messages of the member store_on_commit:
 * LINLI_EINVAL (NULL fn), LINLI_ESTATE (no store, or no write is pending:
 * what was written is durable already), LINLI_ENOMEM; on failure fn is never
 * called. The caller keeps arg alive until that call and makes it a tracked
 * resource of its actor: the store calls fn even after the actor stopped, so
 * fn must then only free arg (the store may call it inside a later write of
 * any caller, when a batch is committed early).
 */
int store_api_on_commit_as(const struct store_actor *a, store_done_fn fn, void *arg);

/*
 * Schemas, since 1.1: the members dataset_schema and datasets, and the
 * same for any actor (packed into pk: one map, or one array of maps; see
 * cat_pack_schema). A plugin or rule needs the capability catalog.read
 * (LINLI_EPERM); a system dataset is refused like every store call
 * (LINLI_EPERM), an unknown one is LINLI_ENOENT; the message is in
 * a->st->last_error. datasets lists every dataset but the system ones.
 */
int store_api_dataset_schema(linli_ctx *ctx, const char *dataset, linli_record **out);
int store_api_datasets(linli_ctx *ctx, linli_record **out);
int store_api_schema_as(const struct store_actor *a, const char *dataset, msgpack_packer *pk);
int store_api_datasets_as(const struct store_actor *a, msgpack_packer *pk);

/*
 * Change notices, since 1.1: the members store_watch / store_unwatch, and
 * the same for any actor. store_api_watch_as checks like a scan (a system
 * dataset, an unknown one: LINLI_ENOENT, store.read:DATASET) and has
 * fn(ud, change) called, on the kernel thread after each commit, for the
 * changes of the dataset within the actor's jurisdiction; *out is the
 * watch, which the caller tracks and ends with store_api_unwatch_as (also
 * from inside fn; fn is then never called again).
 */
typedef void (*store_change_as_fn)(void *ud, const struct linli_change *ch);
struct store_api_watch;
int store_api_watch(linli_ctx *ctx, const char *dataset, linli_change_fn fn, void *ud,
		    uint64_t *id);
int store_api_unwatch(linli_ctx *ctx, uint64_t id);
int store_api_watch_as(const struct store_actor *a, const char *dataset, store_change_as_fn fn,
		       void *ud, struct store_api_watch **out);
uint64_t store_api_watch_id(const struct store_api_watch *w);
void store_api_unwatch_as(struct store_api_watch *w);

#endif
