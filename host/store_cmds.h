/*
 * store_cmds — the console's commands over the store and the catalog:
 * `data get|put|del|query`, `store stats|backup`, `catalog list|show`, and
 * the glue that runs the store's group commit at the kernel's batch end.
 *
 * Turns argv and JSON into store calls and the results into reply maps;
 * writes are acknowledged only after their commit (CMD_PENDING). Every
 * request passes access_call (access.h) first. Never touches LMDB itself.
 */
#ifndef LINLI_STORE_CMDS_H
#define LINLI_STORE_CMDS_H

#include <stdbool.h>
#include <stddef.h>
#include <msgpack.h>

struct kernel;

/*
 * store_cmds_register — register the commands and the store's batch-end
 * hook. Needs k->store and k->catalog open. Returns 0 or a LINLI_E* code.
 */
int store_cmds_register(struct kernel *k);

/*
 * store_cmds_wait_commit — for a handler whose reply is packed and whose
 * writes are in the batch: answer once the batch commits (the commit's error
 * instead if it fails). Returns CMD_PENDING; 0 when no write is pending (the
 * reply goes now); or a code with call->err.
 */
struct cmd_call;
int store_cmds_wait_commit(struct cmd_call *call);

/* The wake callback for store_opts: makes sure a kernel batch runs soon. */
void store_cmds_wake(void *kernel);

/*
 * store_pack_record — pack {id, scope, field...} of a stored record (one
 * MessagePack map). With `mask` (the record's dataset) every sensitive field
 * is masked (tier_mask; non-strings become "***"). 0 or LINLI_ECORRUPT.
 */
struct cat_dataset;
int store_pack_record(msgpack_packer *pk, const char *id, const char *scope, const void *data,
		      size_t len, const struct cat_dataset *mask);
bool store_has_sensitive(const struct cat_dataset *ds);

/*
 * Filters on sensitive fields. A filter (and so an index lookup, a count of
 * hits, an order by value) on a sensitive field tells about its values as a
 * clear read would: eleven masked digits fall to guessing. So it needs the
 * grant to read the field in clear, on every path (console, HTTP, C
 * plugins, Lua).
 *
 * store_where_sensitive — the first of the n_where filters of `where` and
 * the n_range of `range` on a sensitive field of `ds` (any thread), or NULL
 * (also for a NULL ds). A range tells as much as an equality.
 *
 * store_where_allowed — may `who` filter `dataset` at `scope` so (kernel
 * thread)? Without a sensitive filter: 0, nothing audited. With one: if
 * `who` holds the grant to read the dataset's sensitive fields in clear
 * (tier_sees_sensitive) the filter is audited like a clear read (data.read,
 * "allowed", "filter on sensitive field F") and 0 is returned; otherwise it
 * is audited as "denied" and LINLI_EPERM is returned with a message naming
 * the field. A NULL `who` never holds the grant.
 */
struct store_where;
struct store_range;
struct tier_principal;
const struct cat_field *store_where_sensitive(const struct cat_dataset *ds,
					      const struct store_where *where, int n_where,
					      const struct store_range *range, int n_range);
int store_where_allowed(struct kernel *k, const struct tier_principal *who, const char *dataset,
			const char *scope, const struct store_where *where, int n_where,
			const struct store_range *range, int n_range, char *err, size_t errlen);

/*
 * store_parse_filter — split one console or HTTP filter "FIELDopVALUE" (op
 * one of =, <, <=, >, >=; the first of '<', '>', '=' ends the field) into
 * field (copied to `field`, CAT_NAME_MAX + 1 bytes), *op ("=" or a range
 * operator, static) and *value (pointing into text). false when there is
 * no operator, no field or a field too long.
 */
bool store_parse_filter(const char *text, char *field, const char **op, const char **value);

/*
 * store_pack_class — one device class as `catalog show device NAME` prints it
 * ({"kind": "device", ..., "heartbeat_s"}), or with `sdk` as the SDK's
 * device_classes record has it (no "kind", "heartbeat"): name, titles,
 * resources (name, type, access, unit?, values?, min?, max?, max_len?),
 * commands with their args, events with their severity.
 */
struct cat_device_class;
void store_pack_class(msgpack_packer *pk, const struct cat_device_class *c, bool sdk);

#endif
