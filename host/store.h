/*
 * store — the platform's records: one LMDB environment in the data dir.
 *
 * Owns data.mdb and lock.mdb, the batch's write transaction, the record and
 * index layout, schema validation against the catalog, map growth and
 * backups. Records are MessagePack maps of a catalog dataset's fields, each
 * with a scope (the jurisdiction path it belongs to) and an id. It never
 * decides who may see what (the caller passes the scope it is allowed to
 * touch; see store_cmds.h), never prints, and never blocks the kernel thread
 * on anything but LMDB itself.
 *
 * Layout (named LMDB databases), format "linli-store 3":
 *   rec   dataset \0 scope "/" \0 id            -> sum, the record (MessagePack map)
 *   idx   dataset \0 field \0 value scope "/" \0 id -> sum  (indexed fields)
 *   ids   dataset \0 id \0 scope "/"             -> sum  (which scopes hold id)
 *   meta  "format" (no sum), "node", "count/<dataset>", "ixsig/<dataset>" -> sum, value
 *   journal  seq (8 bytes, big-endian)           -> sum, one bus event (MessagePack)
 * `sum` is 8 bytes: XXH3-64 of the value seeded with XXH3-64 of the key
 * (seeded with the table: rec 1, idx 2, ids 3, meta 4, journal 5),
 * little-endian. Every read checks it: a mismatch is LINLI_ECORRUPT naming
 * the entry (dataset, scope and id; or the index and key) and saying the
 * file is damaged, never data.
 * A jurisdiction subtree is the key range starting `dataset \0 scope "/"`, so
 * `.../yuelan` never matches `.../yuelan2`. An index value is a 2-byte length
 * and the value's canonical bytes (strings longer than 64 bytes: a 16-byte
 * BLAKE2b hash, results re-checked against the record). Integers and times
 * are 8 bytes big-endian with the sign bit flipped, so they sort by value;
 * floats are their IEEE bits as they are: non-negative ones sort by value,
 * negative ones after them in reverse (a range walk takes them as two
 * segments; changing that would change the format).
 *
 * Ids are unique per (dataset, scope): a record's address is
 * dataset/scope/id, and two scopes may hold the same id, so that nothing
 * about one jurisdiction's records shows in another's writes. A lookup by id
 * within a subtree reads only the ids entries under `dataset \0 id \0 root
 * "/"`. The kernel's own registries (system datasets, and written_by ones
 * such as devices) are looked up by id alone: their ids stay unique on the
 * node (LINLI_EEXIST, naming no scope). Ids the store makes are
 * `TTTTTTTTTTTTSSSS-NNNNNNNNNN`: the time in ms and a sequence (hex, so they
 * sort in creation order), then the node's id (10 hex digits, random, kept
 * in meta "node"), so that ids of different nodes never meet when tiers
 * federate. Earlier stores are migrated at open, in one write transaction,
 * logged: format 2 (no sums) gets a sum on every entry; format 1 ("linli-store
 * 1": ids unique per dataset, ids `dataset \0 id -> scope`) first has its ids
 * table rebuilt from its records, then goes on as format 2. A newer format is
 * refused with a message naming the file.
 *
 * Threads: the thread that opened the store (the kernel thread) is its owner.
 * Writes run only there. Reads run on the owner (they see the batch's own
 * writes; reads before a write share one read transaction, which the next
 * write or store_batch_end ends, so it never outlives a change) or on any
 * other thread (each call in its own short read transaction).
 *
 * Group commit: the first write after a commit begins one write transaction;
 * later writes join it; store_batch_end commits it once and then tells every
 * store_on_commit waiter the result. The kernel's batch-end hook calls
 * store_batch_turn, which adapts the batch to the load: with nothing more
 * queued (a lone write, an idle node) it commits at once; while more work is
 * queued it keeps the batch open into the loop's next turn, so that under a
 * storm one commit (one pair of fsyncs, one copy of each dirtied index page)
 * carries many writes, up to the group bounds (store_set_group: writes per
 * batch, and how long a batch may stay open). A turn is never split: the
 * writes of one event handler always share a transaction. A write
 * call returning 0 means "validated and applied to the batch": it is durable
 * only when its waiter is told 0. If the commit fails, every write of the
 * batch is lost and every waiter gets the error; nothing committed earlier is
 * touched. The map grows by itself (doubling) when full, redoing the batch.
 *
 * Values: string (UTF-8, no NUL), integer (int64), float (double), boolean,
 * time (int64 ms since 1970-01-01T00:00:00Z; an RFC 3339 string is accepted
 * on input and stored as ms), enum (one of the values), ref (the id of a
 * record of the referenced dataset: its syntax is checked, its existence is
 * not, because referenced records may live at another tier or arrive later),
 * geo ({"lat": -90..90, "lon": -180..180}, stored as doubles). A nil value
 * means "absent". Unknown fields, missing required fields and bad values are
 * refused with "dataset: field 'f': reason" and nothing of that write is
 * stored. A record's scope must be at its dataset's level or below.
 */
#ifndef LINLI_STORE_KERNEL_H
#define LINLI_STORE_KERNEL_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "catalog.h"
#include "scope.h"

#define STORE_ID_MAX	 48	      /* id: [A-Za-z0-9][A-Za-z0-9_.:-]*, bytes */
#define STORE_SCAN_MAX	 10000	      /* rows per store_scan page */
#define STORE_CURSOR_MAX 700	      /* cursor text, with its NUL */
#define STORE_MAX_WHERE	 8	      /* equality filters per query */
#define STORE_MAX_RANGE	 8	      /* range filters per query */
#define STORE_MAX_RECORD (256u << 10) /* packed record, bytes */
#define STORE_MAX_STRING 65536	      /* one string value, bytes */

struct store;

struct store_opts {
	const char *dir; /* data directory (must exist): data.mdb, lock.mdb */
	size_t map_size; /* initial map size, bytes; it doubles when full */
	bool sync;	 /* fsync each commit; false: MDB_NOSYNC (a crash of the
			    process loses nothing, a power cut may) */
	/* Called on the owner when a write opens a new batch, so that the
	   caller arranges for store_batch_end to run soon (linlid posts a
	   kernel event). May be NULL. */
	void (*wake)(void *ud);
	void *wake_ud;
	/* The change log (federation): this node's path as the origin of its changes (must
	   outlive the store), or NULL: no change log kept. on_outbox is called on the owner
	   after a commit that added entries, with the last one's sequence. */
	const char *origin;
	bool down_only; /* with origin: the down log only (the top of a tree: nothing goes up) */
	void (*on_outbox)(void *ud, uint64_t last);
	void *outbox_ud;
};

/*
 * store_open — open or create the store in o->dir for catalog `cat` (the store
 * takes a reference of its own: catalog_ref). Refuses, with a message naming the file, a
 * data.mdb that is not LMDB, is truncated or damaged, or is not a linli
 * store. Rebuilds the indexes of a dataset whose indexed fields changed in
 * the catalog. Returns 0, LINLI_ECORRUPT, LINLI_EIO, LINLI_EFULL or
 * LINLI_ENOMEM.
 */
int store_open(const struct store_opts *o, const struct catalog *cat, struct store **out, char *err,
	       size_t errlen);

/* Commit what is pending (store_batch_end), wait for a running backup, close. */
void store_close(struct store *s);

/*
 * store_swap_catalog — use catalog `next` from now on (owner thread; not from a change
 * notice). Commits the pending batch first, then builds the indexes `next` adds or changes
 * in one write transaction (a new dataset's are empty; a changed one's are built from its
 * records) and publishes `next` (the store takes a reference). A call already running on
 * another thread keeps the version it started with (each public call pins one version for
 * its length); the old version is freed when its last reader drops it. Watchers follow
 * their dataset by name; those of a dataset `next` lacks are dropped, its records stay.
 * Returns 0, LINLI_ESTATE, LINLI_EINVAL, or the commit's code (nothing swapped).
 */
int store_swap_catalog(struct store *s, const struct catalog *next, char *err, size_t errlen);

/*
 * store_purge_dataset — delete every record of dataset `name` with its index and id
 * entries and its counters, in one transaction (owner thread; the pending batch commits
 * first). For a dataset leaving the catalog (a bundle removed with --purge): nothing goes
 * to the change logs. *records: how many went. 0, LINLI_EINVAL, or the commit's code.
 */
int store_purge_dataset(struct store *s, const char *name, uint64_t *records, char *err,
			size_t errlen);

/* A field's migration: dropped from every record (value NULL), or set to one value. */
struct store_migration {
	const char *field;
	const void *value; /* one MessagePack value, or NULL: drop the field */
	size_t len;
};

/*
 * store_migrate — rewrite every record of dataset to->name for schema `to` (a dataset of
 * the version about to be swapped in) in one transaction (owner thread; the pending batch
 * commits first): the fields of `m` dropped or set, each record then checked and
 * normalised against `to`; one that does not fit aborts it all (nothing written), naming
 * it. The indexes follow at store_swap_catalog. *records: how many were rewritten.
 */
int store_migrate(struct store *s, const struct cat_dataset *to, const struct store_migration *m,
		  int n, uint64_t *records, char *err, size_t errlen);

/* store_catalog — a reference to the version in use (any thread); catalog_unref it. Within
   a store call's callback on another thread it is the version that call pinned. */
const struct catalog *store_catalog(struct store *s);

/* ---- writes: owner thread only ---- */

/*
 * store_put — create or replace a record. `rec`/`len` is one MessagePack map.
 * `scope` is where the record lives. `id` NULL creates a new record with a
 * new id (see the layout above); otherwise record dataset/scope/id is
 * created or replaced, whatever other scopes hold (in a node-wide dataset an
 * id held at another scope is refused with LINLI_EEXIST). The id is copied
 * to `id_out` (STORE_ID_MAX + 1 bytes) and `*created` (may be NULL) says
 * whether it is new. Returns 0, LINLI_ESCHEMA, LINLI_EINVAL, LINLI_ENOENT
 * (unknown dataset), LINLI_EEXIST, LINLI_EFULL, LINLI_EIO.
 */
/*
 * store_check — what store_put would say of this record before it writes anything: the
 * dataset, scope, id and the record against the schema. 0, or store_put's code and err.
 * (A put can still fail after a check: a node-wide id taken meanwhile, a full disk.)
 */
int store_check(struct store *s, const char *dataset, const char *scope, const char *id,
		const void *rec, size_t len, char *err, size_t errlen);

int store_put(struct store *s, const char *dataset, const char *scope, const char *id,
	      const void *rec, size_t len, char *id_out, bool *created, char *err, size_t errlen);

/*
 * Finding a record by id. The calls without _at take `scope` as a subtree
 * root (NULL or "" is the whole store) and act on the one record with that
 * id within it: none is LINLI_ENOENT (the same message whether or not the id
 * exists outside the subtree); several are LINLI_EINVAL, with a message
 * naming their scopes (all inside the subtree) and asking for the scope. The
 * _at calls address dataset/scope/id exactly (scope required). The
 * message of several ends with STORE_AMBIGUOUS, for a caller to add how it
 * takes a scope.
 */
#define STORE_AMBIGUOUS "give the scope of the one you mean"

/* store_delete — delete record `id` within `scope`. Returns 0, LINLI_ENOENT, or as put. */
int store_delete(struct store *s, const char *dataset, const char *scope, const char *id, char *err,
		 size_t errlen);
/* store_delete_at — delete record dataset/scope/id. As store_delete. */
int store_delete_at(struct store *s, const char *dataset, const char *scope, const char *id,
		    char *err, size_t errlen);

#define STORE_KEEP   1 /* store_update_fn: leave the record as it is */
#define STORE_DELETE 2 /* store_update_fn: delete the record */

/*
 * A read-modify-write step. `old` is the current record (a map), or NULL
 * when there is none. Pack the new record (one map) into `out` and return 0,
 * or return STORE_KEEP, STORE_DELETE, or a negative LINLI_E* code with a
 * message in err to abort (nothing is written). Runs inside the batch's
 * write transaction: it may call store_get, but must not write.
 */
typedef int (*store_update_fn)(void *ud, const msgpack_object *old, msgpack_packer *out, char *err,
			       size_t errlen);

/*
 * store_update — read-modify-write record `id` in one transaction: the one
 * record with that id within `scope`; when there is none, one is created at
 * `scope` if fn packs one. Returns fn's negative code, 0 (also for
 * STORE_KEEP), LINLI_EINVAL (several records within `scope`), or as put.
 */
int store_update(struct store *s, const char *dataset, const char *scope, const char *id,
		 store_update_fn fn, void *ud, char *err, size_t errlen);
/* store_update_at — the same for record dataset/scope/id exactly (created there if absent). */
int store_update_at(struct store *s, const char *dataset, const char *scope, const char *id,
		    store_update_fn fn, void *ud, char *err, size_t errlen);

/*
 * Called once the current batch's commit is known: rc 0 (durable) or a
 * negative code with a message. Runs on the owner, inside store_batch_end.
 */
typedef void (*store_done_fn)(void *arg, int rc, const char *err);

/*
 * store_on_commit — call fn(arg, ...) when the current batch commits. Only
 * after a write of this batch returned 0 (LINLI_ESTATE otherwise).
 */
int store_on_commit(struct store *s, store_done_fn fn, void *arg);

/*
 * store_batch_end — commit the batch (if any), then run its waiters. Returns
 * 0 or the commit's error (which every waiter got too).
 */
int store_batch_end(struct store *s);

#define STORE_GROUP_MAX_DEFAULT 50000 /* writes a batch gathers across turns, at most */
#define STORE_GROUP_MS_DEFAULT	250   /* ms a batch stays open across turns, at most */

/*
 * store_set_group — the group commit's bounds (owner thread): a batch kept
 * open across the loop's turns commits once it holds `max_writes` writes or
 * is `max_ms` old (0: commit at every turn's end, never keep one open).
 * Defaults STORE_GROUP_MAX_DEFAULT and STORE_GROUP_MS_DEFAULT.
 */
void store_set_group(struct store *s, unsigned max_writes, unsigned max_ms);

/*
 * store_batch_turn — the end of one turn of the kernel's loop: commit the
 * batch (store_batch_end) unless `more` (work is queued for the next turn)
 * and the batch is below both group bounds, in which case it stays open and
 * later writes join it. Returns 0 or the commit's error.
 */
int store_batch_turn(struct store *s, bool more);

/*
 * store_batch_kept — did the last store_batch_turn keep the batch open (and
 * nothing has committed it since)? The journal's flush asks it, so that the
 * bus holds its sealing back until the commit instead of forcing one.
 */
bool store_batch_kept(struct store *s);

/* ---- the event journal: records of consequence of the bus ----
 *
 * The bus writes every record of consequence (alarm/#, incident/#, ...) here
 * before delivering it, in the batch's write transaction: it is durable with
 * the batch's commit, like any write. Keys are the bus's seq numbers.
 */

/*
 * store_journal_append — add event `seq` (one MessagePack map, `len` bytes)
 * to the batch (owner thread). Returns 0 or as store_put (LINLI_EFULL,
 * LINLI_EIO, LINLI_ESTATE off the owner thread).
 */
int store_journal_append(struct store *s, uint64_t seq, const void *ev, size_t len, char *err,
			 size_t errlen);

/* The highest journaled seq, 0 when the journal is empty (any thread). */
uint64_t store_journal_last(struct store *s);

/*
 * store_journal_scan — call fn for up to `limit` journaled events with seq
 * greater than `after`, in seq order, in one short read transaction (any
 * thread). fn returns 0 to go on. Returns the number of events or a code.
 */
int store_journal_scan(struct store *s, uint64_t after, size_t limit,
		       int (*fn)(void *ud, uint64_t seq, const void *ev, size_t len), void *ud,
		       char *err, size_t errlen);

/* ---- reads: any thread ---- */

/*
 * store_get — copy record `id` (a MessagePack map) into `out` (appended; the
 * caller owns the buffer): the one record with that id within `scope`
 * (subtree root; NULL or "" = anywhere; see "Finding a record by id").
 * `scope_out` (SCOPE_MAX + 1 bytes, may be NULL) receives the record's
 * scope. Returns 0, LINLI_ENOENT, LINLI_EINVAL (also: several records),
 * LINLI_EIO.
 */
int store_get(struct store *s, const char *dataset, const char *scope, const char *id,
	      msgpack_sbuffer *out, char *scope_out, char *err, size_t errlen);
/* store_get_at — copy record dataset/scope/id into `out`. As store_get. */
int store_get_at(struct store *s, const char *dataset, const char *scope, const char *id,
		 msgpack_sbuffer *out, char *err, size_t errlen);

struct store_where {
	const char *field; /* an indexed field */
	const char *value; /* its value as text: 42, 1.5, true, 2026-01-02T03:04:05Z, ... */
};

/*
 * A range filter: field op value, on an indexed integer, float or time
 * field; op is "<", "<=", ">" or ">=". A time's value may also be "now" (the
 * wall clock when the scan starts).
 */
struct store_range {
	const char *field;
	const char *op;
	const char *value;
};

/* Is `op` a range operator ("<", "<=", ">", ">=")? */
bool store_op_is_range(const char *op);

struct store_query {
	const char *dataset;
	const char *scope; /* subtree root; NULL or "" = the whole store */
	const struct store_where *where;
	int n_where;	    /* 0..STORE_MAX_WHERE, all must match */
	size_t limit;	    /* rows per page, 1..STORE_SCAN_MAX; 0 = STORE_SCAN_MAX */
	const char *cursor; /* from the previous page, or NULL/"" for the first */
	const struct store_range *range;
	int n_range; /* 0..STORE_MAX_RANGE, all must match too */
	bool exact;  /* only the records at `scope` itself, not below it */
};

/* One row; every pointer is valid only during the callback. */
struct store_row {
	const char *id;
	const char *scope;
	const void *data; /* the record, MessagePack */
	size_t len;
	const void *key; /* the row's place in the scan (opaque): see store_cursor_after */
	size_t key_len;
};

/*
 * Return 0 to go on, non-zero to end the page after this row (the cursor
 * then continues after it, e.g. when a reply is big enough). Runs inside the
 * scan's read: it may read, but must not write to the store.
 */
typedef int (*store_row_fn)(void *ud, const struct store_row *row);

/*
 * store_scan — the records of `q->dataset` within `q->scope` that match
 * every filter, in key order, at most q->limit of them, in one short read
 * transaction. The walk: with an equality filter, the index of the first
 * one (scope, then id, under that value); else with a range, the index of
 * the first range's field between the bounds the ranges on that field give
 * (ascending value, then scope and id; outside q->scope skipped); else
 * the records (scope, then id). Every other filter is checked on the
 * record. `cursor_out`
 * (STORE_CURSOR_MAX bytes) receives the cursor of the next page, or "" when
 * there is none. Returns the number of rows (>= 0) or a negative code:
 * LINLI_EINVAL (bad filter, not indexed field, a cursor of another query),
 * LINLI_ENOENT (unknown dataset), LINLI_EIO.
 */
int store_scan(struct store *s, const struct store_query *q, store_row_fn fn, void *ud,
	       char *cursor_out, char *err, size_t errlen);

/*
 * store_cursor_after — the cursor (STORE_CURSOR_MAX bytes) of the page that
 * continues after a row, from a copy of its key/key_len: for a caller that
 * keeps rows and ends its page before the last one it kept.
 */
void store_cursor_after(const void *key, size_t key_len, char *cursor_out);

/* ---- change notices: owner thread only ----
 *
 * After a batch commits, every write it held (puts and deletes, whoever
 * made them) to a dataset somebody watches is kept; store_changes_deliver
 * (the kernel calls it after store_batch_end) hands each to the watchers of
 * its dataset. A lost batch tells nobody. Nothing is kept while a dataset
 * has no watcher, so the cost without watchers is one test per commit.
 */
enum store_change_kind { STORE_CREATED, STORE_UPDATED, STORE_DELETED };
const char *store_change_kind_name(enum store_change_kind k); /* "created", ... */

struct store_change {
	const char *dataset, *scope, *id; /* valid during the callback */
	enum store_change_kind kind;
};

/*
 * A watcher. It may read and write the store, and add or remove watchers
 * (itself too). Its own writes are not told back to it.
 */
typedef void (*store_watch_fn)(void *ud, const struct store_change *c);

/*
 * store_watch — call fn(ud, change) for the changes of `dataset` in batches
 * committed from now on. *id gets its id (> 0). Returns 0, LINLI_ENOENT
 * (unknown dataset), LINLI_EINVAL (NULL fn, not the owner), LINLI_ENOMEM.
 */
int store_watch(struct store *s, const char *dataset, store_watch_fn fn, void *ud, uint64_t *id,
		char *err, size_t errlen);
/* store_unwatch — stop watcher `id` (also from inside a callback). 0 or LINLI_ENOENT. */
int store_unwatch(struct store *s, uint64_t id);
/* store_changes_deliver — hand the kept changes to their watchers, in commit order. */
void store_changes_deliver(struct store *s);

/* ---- retention (host/retention.c) ---- */

/*
 * store_journal_trim — delete, in the batch, the journal's first entries
 * up to seq `upto` (inclusive), at most `max` (1024 at most) of them (owner
 * thread). Returns how many, or a code as store_journal_append.
 */
int store_journal_trim(struct store *s, uint64_t upto, size_t max, char *err, size_t errlen);

struct store_journal_info {
	uint64_t entries;
	uint64_t bytes;	      /* the journal table's pages */
	uint64_t first, last; /* seqs; 0 when empty */
	uint64_t writes;      /* appends and trims since open (owner thread; else 0) */
};

/* The journal's size and ends (any thread). Returns 0 or LINLI_EIO. */
int store_journal_info(struct store *s, struct store_journal_info *ji);

/* Writes (puts and deletes) to `dataset` since open; 0 off the owner thread. */
uint64_t store_writes(struct store *s, const char *dataset);

/*
 * store_scan_by — the records of `dataset` in ascending order of `field`
 * (an indexed integer or time field), all scopes, at most `limit`, in one
 * short read (any thread). fn as for store_scan (non-zero ends the scan).
 * Returns the number of rows, LINLI_EINVAL (not such a field), LINLI_ENOENT
 * (unknown dataset) or LINLI_EIO.
 */
int store_scan_by(struct store *s, const char *dataset, const char *field, size_t limit,
		  store_row_fn fn, void *ud, char *err, size_t errlen);

/* ---- administration: any thread ---- */

struct store_stats {
	uint64_t map_size;   /* bytes mapped now */
	uint64_t used_bytes; /* pages in use */
	uint64_t file_bytes; /* size of data.mdb */
	uint32_t page_size;
	uint64_t records, index_entries, journal_entries;
	uint64_t commits, writes, failed_commits, map_grows;
	uint64_t last_commit_us; /* duration of the last commit */
	uint64_t last_batch;	 /* writes the last commit carried */
	uint64_t kept_open;	 /* turns that ended with the batch kept open (group commit) */
	unsigned group_max, group_ms; /* store_set_group's bounds */
	unsigned readers;	 /* reader slots in use */
	bool sync;
	bool backup_running;
};

int store_stats(struct store *s, struct store_stats *st);

/* Switch durability at run time (owner thread): fsync each commit, or MDB_NOSYNC. */
int store_set_sync(struct store *s, bool sync);

/* Number of records of `dataset` (0 for an unknown one). */
uint64_t store_count(struct store *s, const char *dataset);

/*
 * store_backup_start — copy the store, compacted and consistent as of now,
 * to directory `path` (absolute; created if missing; must not hold a
 * data.mdb) on a thread of its own, while the store keeps serving. Calls
 * done(arg, rc, err) on that thread when finished. One backup at a time
 * (LINLI_EBUSY). Restoring = opening a store whose directory holds the copy.
 */
int store_backup_start(struct store *s, const char *path, store_done_fn done, void *arg, char *err,
		       size_t errlen);

/* ---- the change log (federation's outbox) and what federation applies ----
 *
 * With o.origin set, every committed change of a dataset whose catalog entry says `up` is
 * also written, in the same transaction, as an entry of the change log, numbered 1, 2, ...
 * in commit order: a MessagePack map {o: origin node, q: its sequence there, d: dataset,
 * s: scope, i: id, t: wall ms, r: the record's bytes (bin) or nil (deleted)}. A change
 * applied with store_fed_apply keeps the origin it came with (a node forwards what it
 * applied from below); its own changes carry o.origin and the entry's own sequence. Entries
 * stay until store_outbox_release. The numbering never goes back, even when all is released.
 */
typedef int (*store_seq_fn)(void *ud, uint64_t seq, const void *val, size_t len); /* !0 stops */

/* The entries after `after`, in order, at most max (any thread; fn runs inside a read). */
int store_outbox_read(struct store *s, uint64_t after, size_t max, store_seq_fn fn, void *ud,
		      char *err, size_t errlen);

/* Drop the entries up to `upto` (owner; the parent has applied them): *released of them. */
int store_outbox_release(struct store *s, uint64_t upto, size_t *released, char *err,
			 size_t errlen);

/*
 * store_outbox_rebase — the parent has applied up to `base`, more than this store ever
 * numbered (a replaced or restored store): number the entries kept from base + 1 on, and
 * go on from there (owner; in the batch). Nothing when base is not past the last entry.
 */
int store_outbox_rebase(struct store *s, uint64_t base, size_t *moved, char *err, size_t errlen);

struct store_outbox_info {
	uint64_t first, last;	/* the oldest entry kept (0: none), the last numbered */
	uint64_t acked;		/* released up to */
	uint64_t count, bytes;	/* entries kept, the pages they take */
	int64_t oldest_ms;	/* when the oldest kept was written (wall ms), 0: none */
	uint64_t quarantined;	/* entries in the quarantine */
	uint64_t quarantine_last;
};

int store_outbox_info(struct store *s, struct store_outbox_info *oi);

/*
 * store_fed_apply — apply a change that came from below (owner thread, in the batch):
 * record dataset/scope/id = rec (created or replaced, checked against this node's catalog
 * as any put), or deleted when rec is NULL (absent already is fine). Its change log entry,
 * if the dataset goes up from here too, keeps `origin`/`oseq`. store_put's codes.
 */
int store_fed_apply(struct store *s, const char *origin, uint64_t oseq, const char *dataset,
		    const char *scope, const char *id, const void *rec, size_t len, char *err,
		    size_t errlen);

/*
 * store_set_up — the next write (store_put, store_delete, store_fed_apply; owner) goes into
 * the change log whatever its dataset: an audit entry of a sensitive read, or what came from
 * below of a dataset not marked `up` (it goes on up). Taken by that write; false clears it.
 */
void store_set_up(struct store *s, bool up);

/* What was applied from sender `from`: its last sequence, written in the batch (owner). */
int store_fed_mark(struct store *s, const char *from, uint64_t seq, char *err, size_t errlen);
uint64_t store_fed_applied(struct store *s, const char *from); /* 0: nothing yet */
int store_fed_list(struct store *s, void (*fn)(void *ud, const char *from, uint64_t seq),
		   void *ud);

/*
 * The down log (o.origin set): every committed change of a dataset whose catalog entry says
 * `down` is written in the same transaction as an entry shaped like the change log's,
 * numbered in commit order (the numbering never goes back) — but each record keeps only its
 * last entry: a later change of it replaces the earlier one, so the log holds each record
 * (or its deletion) once, and a child that is new, replaced or far behind gets everything by
 * reading from 0. Records held before the log knew them are entered at open. Deletions stay
 * until store_down_trim (every child has them).
 */
int store_down_read(struct store *s, uint64_t after, size_t max, store_seq_fn fn, void *ud,
		    char *err, size_t errlen);
uint64_t store_down_last(struct store *s); /* owner: the last sequence committed */
int store_down_count(struct store *s, uint64_t *entries);
/* Drop the deletions numbered up to `upto` (owner, in the batch): *trimmed of them. */
int store_down_trim(struct store *s, uint64_t upto, size_t *trimmed, char *err, size_t errlen);

/* The quarantine: changes that could not be applied, kept with their reason (owner writes). */
int store_fedq_add(struct store *s, const void *val, size_t len, uint64_t *id, char *err,
		   size_t errlen);
int store_fedq_read(struct store *s, uint64_t after, size_t max, store_seq_fn fn, void *ud,
		    char *err, size_t errlen);
int store_fedq_del(struct store *s, uint64_t id, char *err, size_t errlen);

/* ---- verification: any thread, or with no store open (linlid --verify) ---- */

#define STORE_VERIFY_NAMED 20 /* damaged entries named in a report */
#define STORE_VERIFY_TABLES 10

struct store_verify_report {
	bool absent;	     /* no data.mdb: nothing to verify */
	int format;	     /* N of "linli-store N"; 0 when unreadable */
	bool checksums;	     /* format 3: every entry's checksum was checked */
	uint64_t entries[STORE_VERIFY_TABLES]; /* records, index entries, id entries, journal
						  events, meta, change log, fedin, fedq,
						  down log, its keys */
	uint64_t damaged;    /* entries found damaged (1 when the walk could not finish) */
	int crashed;	     /* the signal that ended the walk (damaged pages), or 0 */
	int n_named;
	char named[STORE_VERIFY_NAMED][320]; /* the first damaged ones, in words */
	char error[512];		     /* the walk could not start or finish: why */
};

/*
 * store_verify — walk every entry of the store in directory `dir`, in a
 * child process (LMDB itself can crash on a damaged branch page): every
 * checksum, every record one MessagePack map with its ids entry, every ids
 * and index entry naming a record that is there. Read-only; runs beside a
 * running linlid too. Returns 0 with `rep` filled (rep->damaged is the
 * verdict) or LINLI_EIO (no pipe or child).
 */
int store_verify(const char *dir, struct store_verify_report *rep);

/* The report in words on f; returns 0 (clean) or 1 (damaged). */
int store_verify_print(const char *dir, const struct store_verify_report *rep, FILE *f);

/* linlid --verify: walk, print (stdout clean, stderr damaged), return the exit status 0 or 1. */
int store_verify_cli(const char *dir);

/* Called on the verify thread when the walk ends: rc 0 with rep, or a code (rep NULL). */
typedef void (*store_verify_fn)(void *arg, int rc, const struct store_verify_report *rep);

/*
 * store_verify_start — store_verify of this store's directory on a thread
 * of its own, then done(arg, ...) there. One at a time (LINLI_EBUSY);
 * store_close ends a running one (its child killed, done still called).
 */
int store_verify_start(struct store *s, store_verify_fn done, void *arg, char *err, size_t errlen);

/* Is `id` a well-formed record id? */
bool store_id_ok(const char *id);

/*
 * store_time_parse — an RFC 3339 time ("2026-01-02T03:04:05Z",
 * "2026-01-02T11:04:05.250+08:00") to ms since 1970 UTC. Returns false on
 * anything else.
 */
bool store_time_parse(const char *s, size_t n, int64_t *ms);

#endif
