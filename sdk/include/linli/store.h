/*
 * linli/store.h — the types of the store members of the function table
 * (api->store_get, store_put, store_delete, store_scan, store_update,
 * store_on_commit, store_last_error; since 1.1 store_watch, store_unwatch,
 * dataset_schema, datasets; linli/api.h documents each).
 *
 * The store keeps the platform's records. Every record belongs to a dataset
 * of the node's catalog (`linli catalog list`, `linli catalog show NAME`
 * give its fields), lives at a scope — the jurisdiction path of the node it
 * belongs to, e.g. "hefei/baohe/binhu/yuelan" — and has an id unique in its
 * dataset and scope: two communities may each hold a record "r2", and
 * nothing a plugin writes or looks up at one tells anything of the other.
 * A get, delete or update with a scope addresses dataset/scope/id exactly;
 * with a NULL scope it looks the id up within the plugin's node's subtree
 * (several records there: LINLI_EINVAL naming their scopes). Ids the store
 * makes are time-ordered and end with the node's id, e.g.
 * "01a2281c7d680000-5c1e93a07d" (ms and a sequence in hex, '-', 10 hex
 * digits), so ids of different nodes never meet. A record is a map of the
 * dataset's fields (a linli_record); the store checks every write against
 * the dataset's schema and refuses a bad one whole, with a message naming
 * the dataset, the field and the reason.
 *
 * What a plugin may touch: records whose scope lies in the subtree of the
 * node the plugin runs at (api->plugin_scope), of the datasets its
 * descriptor declared: "store.read:DATASET" for get and scan,
 * "store.write:DATASET" for put, delete and (with store.read) update.
 * Anything else is refused with LINLI_EPERM; a record outside the subtree is
 * never returned (LINLI_ENOENT for a get by id, absent from a scan). The
 * kernel's own datasets (accounts, sessions, audit, apikeys) are out of
 * reach whatever the capabilities.
 *
 * Sensitive fields (the catalog marks ID numbers, phones, names, addresses,
 * health data) are read in clear only with the capability "sensitive" or
 * "sensitive:DATASET"; without it get, scan and update see them masked as
 * the console shows them ("340***********1234"; a value that is not a
 * string becomes "***"). Every read of a dataset with sensitive fields is
 * written to the audit log (allowed or masked). A scan filter on a
 * sensitive field needs the same grant (it would tell what the mask hides):
 * without it the scan is refused with LINLI_EPERM; so is a range filter
 * (since 1.1). Writes need no such grant.
 *
 * Durability: writes are gathered into one transaction per batch of the
 * kernel's loop (group commit) and made durable at the batch's end, after
 * your callback has returned. An idle node commits at the end of each turn
 * of its loop; under load a batch may span turns (up to store.group_max
 * writes or store.group_commit_ms, never splitting a turn), so wait for
 * api->store_on_commit, not the turn, before telling anyone a write is
 * durable. A write that returned 0 is validated and
 * visible at once to every later read of the kernel thread, but it is lost
 * if that commit fails (a full disk): api->store_on_commit tells you.
 */
#ifndef LINLI_STORE_H
#define LINLI_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "linli/plugin.h"
#include "linli/record.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LINLI_ID_MAX	   48	 /* record id: [A-Za-z0-9][A-Za-z0-9_.:-]*, bytes, no NUL */
#define LINLI_SCOPE_MAX	   255	 /* scope path, bytes, no NUL */
#define LINLI_CURSOR_MAX   700	 /* scan cursor, bytes with its NUL */
#define LINLI_SCAN_DEFAULT 100	 /* rows per scan page when limit is 0 */
#define LINLI_SCAN_MAX	   10000 /* largest limit of a scan page */
#define LINLI_MAX_WHERE	   8	 /* equality filters per scan */
#define LINLI_MAX_RANGE	   8	 /* range filters per scan, since 1.1 */

/*
 * struct linli_where — one equality filter of a scan, since 1.0: `field` must
 * be an indexed field of the dataset (the catalog marks them `indexed`),
 * `value` its value as text: 42, 1.5, true, an enum value, an id for a ref,
 * "2026-01-02T03:04:05+08:00" or the ms number for a time.
 */
struct linli_where {
	const char *field;
	const char *value;
};

/*
 * struct linli_range — one range filter of a scan, since 1.1: `field` an
 * indexed integer, float or time field of the dataset, `op` one of "<",
 * "<=", ">", ">=", `value` the bound as text like linli_where's (a time may
 * also be "now": the node's clock when the scan starts). Several ranges
 * on one field bound it from both sides: {"due_at", "<", "now"} with the
 * equality {"state", "open"} finds what is overdue.
 */
struct linli_range {
	const char *field;
	const char *op;
	const char *value;
};

/*
 * struct linli_query — what api->store_scan reads, since 1.0. Zero it, set
 * size = sizeof(struct linli_query), then the fields you need. Everything is
 * borrowed for the duration of the call.
 */
struct linli_query {
	uint32_t size;			 /* sizeof(struct linli_query) of the plugin */
	const char *dataset;		 /* required */
	const char *scope;		 /* subtree root; NULL: the plugin's node */
	const struct linli_where *where; /* n_where filters, all must match */
	int n_where;			 /* 0..LINLI_MAX_WHERE */
	size_t limit;	    /* rows per page, 1..LINLI_SCAN_MAX; 0: LINLI_SCAN_DEFAULT */
	const char *cursor; /* NULL or "": the first page; else a previous cursor */
	/* since 1.1 (a 1.0 plugin's smaller query has none): */
	const struct linli_range *range; /* n_range range filters, all must match */
	int n_range;			 /* 0..LINLI_MAX_RANGE */
};

/*
 * struct linli_row — one record of a scan as the row callback sees it,
 * since 1.0. Everything is borrowed for the duration of the callback: copy
 * what you keep (rec_copy for the record).
 */
struct linli_row {
	uint32_t size;		    /* sizeof(struct linli_row) of the kernel */
	const char *id;		    /* the record's id */
	const char *scope;	    /* the scope it lives at */
	const linli_record *record; /* its fields (a map) */
};

/*
 * linli_row_fn — called for each row of a scan page, in order (kernel
 * thread). Return 0 for the next row, 1 to end the page after this row (the
 * next cursor then continues after it), or a negative LINLI_E* code to stop:
 * store_scan returns that code. It may call any member of the table, writes
 * to the store included: the page was read before the first row is handed
 * over, so a write does not change the rows of this page.
 */
typedef int (*linli_row_fn)(linli_ctx *ctx, const struct linli_row *row, void *ud);

/* Return values of a linli_update_fn besides 0 and the negative codes. */
#define LINLI_STORE_KEEP   1 /* leave the record as it is (or absent) */
#define LINLI_STORE_DELETE 2 /* delete the record (nothing if it is absent) */

/*
 * linli_update_fn — the step of a read-modify-write (api->store_update),
 * since 1.0. *rec holds the current record (a map the kernel owns), or NULL
 * when record `id` does not exist. Then either:
 *  - change *rec in place, or set *rec to a new record you made (rec_new;
 *    never free the one you were given: the kernel frees both), and return 0:
 *    the record is written (a schema violation fails the whole update);
 *  - return LINLI_STORE_KEEP: nothing is written;
 *  - return LINLI_STORE_DELETE: the record is deleted;
 *  - return a negative LINLI_E* code, with a message in err (errlen bytes):
 *    nothing is written and store_update returns the code.
 * Without the grant to see sensitive fields, *rec holds them masked; a
 * masked field you leave exactly as given keeps its stored value, one you
 * change or remove is written as you left it.
 * It runs inside the store's write transaction, on the kernel thread: no
 * other write can come between the read and the write. It may read the store
 * (store_get, store_scan) but not write it: those calls fail with
 * LINLI_ESTATE. Keep it short.
 */
typedef int (*linli_update_fn)(linli_ctx *ctx, const char *id, linli_record **rec, void *ud,
			       char *err, size_t errlen);

/*
 * linli_commit_fn — told once whether the batch holding your writes was
 * committed (api->store_on_commit), since 1.0. rc 0: durable (per the
 * node's store.sync); a negative code: the batch was lost, `msg` says why.
 * `msg` is borrowed ("" on success). Runs on the kernel thread at the end of
 * the loop batch; it may call the table (a write opens the next batch).
 */
typedef void (*linli_commit_fn)(linli_ctx *ctx, int rc, const char *msg, void *ud);

/*
 * struct linli_change — one record changed by a committed batch, as a
 * watcher (api->store_watch) is told of it, since 1.1. Everything is
 * borrowed for the duration of the callback.
 */
struct linli_change {
	uint32_t size;	     /* sizeof(struct linli_change) of the kernel */
	const char *dataset; /* the watched dataset */
	const char *scope;   /* the record's scope (inside the plugin's jurisdiction) */
	const char *id;	     /* the record's id */
	const char *kind;    /* "created", "updated" or "deleted" */
};

/*
 * linli_change_fn — a store watcher (kernel thread, after the commit, never
 * inside a write transaction; must not block), since 1.1. It may call any
 * member: read the record (api->store_get; it may have changed again since),
 * write (into the next batch), watch and unwatch (itself too). The writes
 * it makes are not told back to this watcher, so a cache that writes what
 * it hears does not hear itself; two watchers that answer each other's
 * writes do, one batch per turn of the kernel's loop.
 */
typedef void (*linli_change_fn)(linli_ctx *ctx, const struct linli_change *ch, void *ud);

#ifdef __cplusplus
}
#endif

#endif
