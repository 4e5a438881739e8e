/*
 * store — see store.h.
 *
 * The batch log. Every write that joins the batch is first validated and
 * normalised (nothing of a refused write reaches LMDB), then applied to the
 * write transaction at once (so later reads and writes of the same batch see
 * it), then recorded in the batch log: its dataset, scope, id and the exact
 * bytes stored, or "deleted". The log is what makes MDB_MAP_FULL
 * transparent: LMDB poisons a transaction that runs out of map, so the store
 * aborts it, doubles the map, begins a new transaction, replays the log on
 * the same committed state (which gives the same result, read-modify-writes
 * included, because their outcome was recorded, not their function) and
 * goes on. The log is dropped at commit.
 *
 * Map growth needs every read transaction of the process closed, because
 * LMDB unmaps and remaps the file: reads on other threads hold `maplock` as
 * readers for their (short) transaction, growth takes it as writer. A backup
 * holds it for its whole copy, so the map cannot grow during a backup: such a
 * write fails with LINLI_EBUSY rather than stall the kernel thread.
 */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lmdb.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "linli/error.h"
#include "log.h"
#include "mp.h"
#include "util.h"

#define KEY_MAX		511
#define STORE_FORMAT	"linli-store 5"
#define FORMAT_N	5 /* the number in STORE_FORMAT */
#define FORMAT_PREFIX	"linli-store "
#define NODE_ID_LEN	10		/* hex digits of the node's id (meta "node") */
#define IDX_RAW_MAX	64 /* longer string values are indexed by hash */
#define HASH_LEN	16
#define MAP_LIMIT	((size_t)1 << 40) /* 1 TiB: the map never grows past this */
#define BACKUP_HEADROOM ((size_t)1 << 30) /* map room reserved when a backup starts */

enum apply_mode { APPLY_NEW, APPLY_REPLACE };

struct logop {
	uint8_t del;
	uint8_t mode;
	uint8_t up; /* into the change log whatever its dataset (store_set_up) */
	uint16_t ds; /* index into cat->datasets, DS_JOURNAL or DS_AUX */
	uint32_t scope_off, id_off, val_off, val_len;
	uint32_t origin_off; /* ORIGIN_OWN, or the change's origin node (store_fed_apply) */
	uint64_t oseq;	     /* the origin's sequence of it */
	uint64_t writer;     /* the watcher whose callback made the write, or 0 */
};
#define ORIGIN_OWN UINT32_MAX

/* A change of a committed batch, kept until store_changes_deliver. */
struct pchange {
	uint16_t ds;
	uint8_t kind; /* enum store_change_kind */
	uint64_t writer, batch;
	char *scope_id; /* "scope\0id\0", malloc'd */
};

struct watcher {
	uint64_t id, from; /* from: the last batch committed before it was added */
	int ds;
	store_watch_fn fn; /* NULL: removed (the slot goes after delivery) */
	void *ud;
};

/* A log op for the event journal rather than a dataset: id holds the seq. */
#define DS_JOURNAL 0xFFFF
/* A log op for a federation table (mode holds which: T_OUTBOX, T_FEDIN, T_FEDQ, T_DOWNLOG,
   T_DOWNKEY); id holds the key: a sequence in hex (outbox, fedq, downlog), a node path
   (fedin) or "dataset scope id" (downkey). */
#define DS_AUX 0xFFFE

struct waiter {
	store_done_fn fn;
	void *arg;
};

struct store {
	MDB_env *env;
	MDB_dbi rec, idx, ids, meta, journal, outbox, fedin, fedq, downlog, downkey;
	/* The current catalog version (a reference of the store's). Only the owner changes
	   it (store_swap_catalog), under catmu; the owner reads it as it is, other threads
	   through a pin (CAT). */
	const struct catalog *cat;
	pthread_mutex_t catmu;
	struct store_opts o;
	char *dir;
	char data_path[PATH_MAX];
	pthread_t owner;
	size_t map_size;
	unsigned psize;

	MDB_txn *wtxn;	/* the batch's write transaction, NULL between batches */
	MDB_txn *rtxn;	/* the owner's read transaction, reused (reset between batches) */
	bool rtxn_live; /* rtxn is active: until store_batch_end */

	/* The batch log: ops whose strings and values live in `arena`. */
	char *arena;
	size_t arena_len, arena_cap;
	struct logop *ops;
	size_t n_ops, cap_ops;
	struct waiter *waiters;
	size_t n_waiters, cap_waiters;
	int64_t *delta; /* per dataset: records added minus deleted in the batch */
	uint64_t *dswrites; /* per dataset, then the journal: writes applied (owner only) */

	msgpack_zone zone;    /* scratch for unpacking input (cleared per call) */
	msgpack_zone azone;   /* scratch for apply (cleared per apply) */
	msgpack_sbuffer norm; /* the normalised record of the current write */
	msgpack_sbuffer upd;  /* what a store_update_fn packs */
	msgpack_sbuffer old;  /* a copy of the record being replaced or deleted */

	uint64_t last_ms;
	uint32_t seq;

	/* The change log (o.origin set): the last sequence committed, the last released. */
	uint64_t out_last, out_acked, fedq_last;
	uint64_t down_last; /* the down log: the last sequence committed (never goes back) */
	uint64_t acked_pend; /* store_outbox_release's of this batch (out_acked once committed) */
	bool rebased;	     /* store_outbox_rebase in this batch: out_last before it */
	uint64_t out_last_before;
	const char *cur_origin; /* store_fed_apply's change: its origin and sequence */
	bool cur_up;		/* store_set_up: the next write goes up whatever its dataset */
	uint64_t cur_oseq;
	msgpack_sbuffer obuf; /* an outbox entry being packed */
	char node[NODE_ID_LEN + 1]; /* this store's node id: the tail of the ids it makes */

	pthread_rwlock_t maplock;
	pthread_mutex_t bmu;
	atomic_bool backup_running;
	bool backup_joinable;
	pthread_t backup_thread;
	atomic_bool verify_running; /* store_verify_start: its thread, and its child */
	bool verify_joinable;
	pthread_t verify_thread;
	atomic_int verify_pid;

	atomic_uint_fast64_t commits, writes, failed_commits, grows, last_commit_us;
	atomic_uint_fast64_t last_batch, kept_open;

	/* Group commit across turns (store_batch_turn): the bounds, and when the batch began. */
	atomic_uint group_max, group_ms;
	uint64_t batch_t0_us;
	bool kept; /* the last store_batch_turn kept the batch open; a commit clears it */

	/* Change notices (owner thread): who watches, and what committed since. */
	struct watcher *watchers;
	size_t n_watchers, cap_watchers;
	uint32_t *watched; /* per dataset: live watchers */
	size_t n_watched;  /* datasets with a watcher: 0 skips all of it */
	struct pchange *pend;
	size_t n_pend, cap_pend;
	uint64_t next_watch, batches, writer;
	int delivering;
};

/* ---- the catalog version an operation uses ---- */

/*
 * A public call that may run off the owner thread pins the current catalog version for
 * its whole length (PIN): a reference taken under catmu, kept in a per-thread slot that
 * CAT finds, dropped when the call returns. Nested calls on the same store (a scan's row
 * callback reading again) share the outer pin, so one operation sees one version. The
 * owner needs no pin: only it swaps.
 */
struct pin_slot {
	const struct store *s;
	const struct catalog *cat;
	unsigned depth;
};
#define PIN_SLOTS 4
static _Thread_local struct pin_slot pin_tl[PIN_SLOTS];

static const struct catalog *cat_cur(const struct store *s)
{
	for (int i = 0; i < PIN_SLOTS; i++)
		if (pin_tl[i].s == s)
			return pin_tl[i].cat;
	return s->cat; /* the owner (or a thread with all slots taken: see pin_take) */
}
#define CAT(s) cat_cur(s)

static struct pin_slot *pin_take(struct store *s)
{
	if (pthread_equal(pthread_self(), s->owner))
		return NULL;
	struct pin_slot *free_slot = NULL;
	for (int i = 0; i < PIN_SLOTS; i++) {
		if (pin_tl[i].s == s) {
			pin_tl[i].depth++;
			return &pin_tl[i];
		}
		if (!pin_tl[i].s && !free_slot)
			free_slot = &pin_tl[i];
	}
	if (!free_slot) /* five stores read at once by one thread: no caller does that */
		abort();
	pthread_mutex_lock(&s->catmu);
	*free_slot = (struct pin_slot){s, catalog_ref(s->cat), 1};
	pthread_mutex_unlock(&s->catmu);
	return free_slot;
}

static void pin_drop(struct pin_slot **p)
{
	struct pin_slot *sl = *p;
	if (sl && --sl->depth == 0) {
		const struct catalog *c = sl->cat;
		*sl = (struct pin_slot){0};
		catalog_unref(c);
	}
}
#define PIN(s)                                                                      \
	struct pin_slot *pin_ __attribute__((cleanup(pin_drop), unused)) = pin_take(s)

/* ---- errors ---- */

static bool disk_full(int rc)
{
	return rc == ENOSPC || rc == EFBIG || rc == EDQUOT;
}

/*
 * LMDB turns a short write into EIO ("short write, filesystem full?"), which
 * is how a filling disk usually shows: call it full when little space is left.
 */
static bool fs_nearly_full(const char *dir)
{
	struct statvfs v;
	return dir && statvfs(dir, &v) == 0 && (uint64_t)v.f_bavail * v.f_frsize < (4u << 20);
}

#define SUM_BAD (-30000) /* not an LMDB code: an entry's checksum does not match */

/* What an LMDB code means for the store, in words (mdb_strerror says little). */
static const char *lmdb_words(int rc)
{
	switch (rc) {
	case MDB_CORRUPTED:
		return "a page is not what LMDB expects there: the file is damaged";
	case MDB_PAGE_NOTFOUND:
		return "a page LMDB looked for is not in the file: it is damaged or truncated";
	case MDB_PAGE_FULL:
		return "a page holds more than a page can: the file is damaged";
	case MDB_INVALID:
		return "the file is not an LMDB file, or its header pages are damaged";
	case MDB_VERSION_MISMATCH:
		return "data.mdb or lock.mdb was written by another LMDB version, or is damaged";
	case MDB_MAP_FULL:
		return "the map is full and could not grow";
	case MDB_MAP_RESIZED:
		return "another process grew the map";
	case MDB_READERS_FULL:
		return "every reader slot of lock.mdb is taken";
	case MDB_INCOMPATIBLE:
		return "its tables were made with other options: not a linli store, or damaged";
	case MDB_BAD_TXN:
		return "the transaction failed earlier and was abandoned";
	case MDB_BAD_VALSIZE:
		return "a key or value of a size LMDB does not take";
	case SUM_BAD:
		return "an entry's checksum does not match: the file is damaged";
	default:
		return rc > 0 ? strerror(rc) : "an LMDB error";
	}
}

/* Map an LMDB or errno result to a LINLI code with a message naming `what`. */
static int lmdb_fail(struct store *s, int rc, const char *what, char *err, size_t errlen)
{
	if (rc == EIO && fs_nearly_full(s->dir))
		rc = ENOSPC;
	if (disk_full(rc))
		return errf(err, errlen, LINLI_EFULL,
			    "store: %s: the disk is full (%s) writing %s; nothing of this batch "
			    "was stored, everything committed before is intact",
			    what, strerror(rc), s->data_path);
	if (rc == MDB_MAP_FULL)
		return errf(err, errlen, LINLI_EFULL, "store: %s: the map (%zu MiB) is full", what,
			    s->map_size >> 20);
	if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND || rc == MDB_INVALID ||
	    rc == MDB_PAGE_FULL || rc == SUM_BAD)
		return errf(err, errlen, LINLI_ECORRUPT,
			    "store: %s: %s is damaged (%s: %s); restore a backup (README: "
			    "recovering a damaged store)",
			    what, s->data_path, rc == SUM_BAD ? "checksum" : mdb_strerror(rc),
			    lmdb_words(rc));
	return errf(err, errlen, LINLI_EIO, "store: %s: %s: %s (%s)", what, s->data_path,
		    rc > 0 ? strerror(rc) : mdb_strerror(rc), lmdb_words(rc));
}

/* ---- small helpers ---- */

bool store_id_ok(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > STORE_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		bool alnum =
		    (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || !(c == '_' || c == '.' || c == ':' || c == '-')))
			return false;
	}
	return true;
}

static bool id_ok_n(const char *p, size_t n)
{
	char buf[STORE_ID_MAX + 1];
	if (n == 0 || n > STORE_ID_MAX || memchr(p, 0, n))
		return false;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return store_id_ok(buf);
}

static bool utf8_ok(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		size_t len;
		uint32_t cp;
		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xE0) == 0xC0) {
			len = 2;
			cp = c & 0x1F;
		} else if ((c & 0xF0) == 0xE0) {
			len = 3;
			cp = c & 0x0F;
		} else if ((c & 0xF8) == 0xF0) {
			len = 4;
			cp = c & 0x07;
		} else
			return false;
		if (i + len > n)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
		    (len == 4 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += len;
	}
	return true;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian), after H. Hinnant. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static bool digits(const char *s, size_t n, int *out)
{
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

bool store_time_parse(const char *s, size_t n, int64_t *ms)
{
	int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0;
	if (n < 10 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
	    !digits(s + 8, 2, &d))
		return false;
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && leap))
		return false;
	int64_t off_min = 0;
	if (n > 10) {
		/* A date-time: T HH:MM:SS [.frac] (Z | +HH:MM | -HH:MM). */
		if (!(s[10] == 'T' || s[10] == 't' || s[10] == ' ') || n < 20 ||
		    !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) ||
		    s[16] != ':' || !digits(s + 17, 2, &sec) || h > 23 || mi > 59 || sec > 59)
			return false;
		size_t i = 19;
		if (i < n && s[i] == '.') {
			size_t start = ++i;
			int scale = 100;
			while (i < n && s[i] >= '0' && s[i] <= '9') {
				frac += (s[i] - '0') * scale;
				scale /= 10;
				i++;
			}
			if (i == start)
				return false;
		}
		if (i == n)
			return false;
		if (s[i] == 'Z' || s[i] == 'z') {
			if (i + 1 != n)
				return false;
		} else if (s[i] == '+' || s[i] == '-') {
			int oh, om;
			if (i + 6 != n || !digits(s + i + 1, 2, &oh) || s[i + 3] != ':' ||
			    !digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
				return false;
			off_min = (s[i] == '+' ? 1 : -1) * (oh * 60 + om);
		} else
			return false;
	}
	int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
	*ms = ((days * 86400 + h * 3600 + mi * 60 + sec) - off_min * 60) * 1000 + frac;
	return true;
}

#define TIME_MIN (-62135596800000LL) /* 0001-01-01T00:00:00Z */
#define TIME_MAX 253402300799999LL   /* 9999-12-31T23:59:59.999Z */

/* The integer value of an integer object. */
static bool obj_int(const msgpack_object *o, int64_t *v)
{
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		if (o->via.u64 > (uint64_t)INT64_MAX)
			return false;
		*v = (int64_t)o->via.u64;
		return true;
	}
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		*v = o->via.i64;
		return true;
	}
	return false;
}

static bool obj_num(const msgpack_object *o, double *v)
{
	int64_t i;
	if (o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64) {
		*v = o->via.f64;
		return true;
	}
	if (obj_int(o, &i)) {
		*v = (double)i;
		return true;
	}
	return false;
}

static bool is_str_type(enum cat_type t)
{
	return t == CAT_STRING || t == CAT_ENUM || t == CAT_REF;
}

/* ---- keys ---- */

struct kbuf {
	char b[KEY_MAX + 1];
	size_t n;
};

static void kput(struct kbuf *k, const void *p, size_t n)
{
	memcpy(k->b + k->n, p, n);
	k->n += n;
}
static void kstr(struct kbuf *k, const char *s)
{
	kput(k, s, strlen(s));
}
static void kzero(struct kbuf *k)
{
	k->b[k->n++] = '\0';
}

/* dataset \0 [scope "/"] */
static void rec_prefix(struct kbuf *k, const char *ds, const char *scope)
{
	k->n = 0;
	kstr(k, ds);
	kzero(k);
	if (scope && *scope) {
		kstr(k, scope);
		kput(k, "/", 1);
	}
}

/* dataset \0 scope "/" \0 id */
static void rec_key(struct kbuf *k, const char *ds, const char *scope, const char *id)
{
	rec_prefix(k, ds, scope);
	kzero(k);
	kstr(k, id);
}

/* dataset \0 id \0 [root "/"]: the ids entries of `id` within a subtree. */
static void ids_prefix(struct kbuf *k, const char *ds, const char *id, const char *root)
{
	k->n = 0;
	kstr(k, ds);
	kzero(k);
	kstr(k, id);
	kzero(k);
	if (root && *root) {
		kstr(k, root);
		kput(k, "/", 1);
	}
}

/* dataset \0 id \0 scope "/": record `id` lives at `scope`. */
static void ids_key(struct kbuf *k, const char *ds, const char *id, const char *scope)
{
	ids_prefix(k, ds, id, scope);
}

/* An index value: a 2-byte big-endian length and the canonical bytes. */
struct encv {
	uint8_t b[2 + IDX_RAW_MAX];
	size_t n;
};

static void be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

/* Canonical index bytes of value `v` (already normalised) of field `f`. */
static void enc_value(const struct cat_field *f, const msgpack_object *v, struct encv *e)
{
	uint8_t *p = e->b + 2;
	size_t n = 0;
	if (is_str_type(f->type)) {
		n = v->via.str.size;
		if (n && n <= IDX_RAW_MAX) /* "" unpacks with a NULL pointer */
			memcpy(p, v->via.str.ptr, n);
		else {
			crypto_generichash(p, HASH_LEN, (const unsigned char *)v->via.str.ptr,
					   v->via.str.size, NULL, 0);
			n = 0x8000 | HASH_LEN;
		}
	} else if (f->type == CAT_INTEGER || f->type == CAT_TIME) {
		int64_t i = 0;
		obj_int(v, &i);
		be64(p, (uint64_t)i ^ (1ull << 63));
		n = 8;
	} else if (f->type == CAT_FLOAT) {
		double d = 0;
		obj_num(v, &d);
		if (d == 0)
			d = 0; /* -0.0 equals 0.0 */
		uint64_t bits;
		memcpy(&bits, &d, 8);
		be64(p, bits);
		n = 8;
	} else if (f->type == CAT_BOOLEAN) {
		p[0] = v->via.boolean ? 1 : 0;
		n = 1;
	}
	e->b[0] = (uint8_t)(n >> 8);
	e->b[1] = (uint8_t)n;
	e->n = 2 + (n & 0x7fff);
}

/* dataset \0 field \0 value [scope "/" [\0 id]] */
static void idx_prefix(struct kbuf *k, const char *ds, const struct cat_field *f,
		       const struct encv *e, const char *scope)
{
	k->n = 0;
	kstr(k, ds);
	kzero(k);
	kstr(k, f->name);
	kzero(k);
	kput(k, e->b, e->n);
	if (scope && *scope) {
		kstr(k, scope);
		kput(k, "/", 1);
	}
}

static void idx_key(struct kbuf *k, const char *ds, const struct cat_field *f, const struct encv *e,
		    const char *scope, const char *id)
{
	idx_prefix(k, ds, f, e, scope);
	kzero(k);
	kstr(k, id);
}

/* Equal normalised values of field f? (Exact, also for hashed strings.) */
static bool val_eq(const struct cat_field *f, const msgpack_object *a, const msgpack_object *b)
{
	if (is_str_type(f->type))
		return a->type == MSGPACK_OBJECT_STR && b->type == MSGPACK_OBJECT_STR &&
		       a->via.str.size == b->via.str.size &&
		       (!a->via.str.size ||
			memcmp(a->via.str.ptr, b->via.str.ptr, a->via.str.size) == 0);
	if (f->type == CAT_INTEGER || f->type == CAT_TIME) {
		int64_t x, y;
		return obj_int(a, &x) && obj_int(b, &y) && x == y;
	}
	if (f->type == CAT_FLOAT) {
		double x, y;
		return obj_num(a, &x) && obj_num(b, &y) && x == y;
	}
	if (f->type == CAT_BOOLEAN)
		return a->type == MSGPACK_OBJECT_BOOLEAN && b->type == MSGPACK_OBJECT_BOOLEAN &&
		       a->via.boolean == b->via.boolean;
	return false;
}

/* Split a key tail "scope/\0id" into NUL-terminated parts. */
static bool split_tail(const char *t, size_t n, char *scope, char *id)
{
	const char *z = memchr(t, '\0', n);
	if (!z || z == t || z[-1] != '/')
		return false;
	size_t sl = (size_t)(z - t) - 1, il = n - (size_t)(z - t) - 1;
	if (sl > SCOPE_MAX || il == 0 || il > STORE_ID_MAX)
		return false;
	memcpy(scope, t, sl);
	scope[sl] = '\0';
	memcpy(id, z + 1, il);
	id[il] = '\0';
	return true;
}

/* ---- checksums (format 3) ----
 *
 * LMDB checks nothing of what it stores: a byte changed in a data page is
 * served as it is, as a wrong record or a wrong password hash. So every
 * entry of rec, idx, ids, journal and meta (but meta "format", which any
 * version must read as it is) carries 8 bytes in front of its value:
 * XXH3-64 of the value, seeded with XXH3-64 of the key, seeded with the
 * table, little-endian. A read checks and strips them; a mismatch is
 * LINLI_ECORRUPT naming the entry and saying the file is damaged, never
 * data. XXH3 runs at memory speed: a 48-byte key and a 96-byte value cost
 * 15-40 ns, against ~5 us for a get and ~15 us for an insert (three entries)
 * through the store, and ~200-350 ns per record of a scan (tools/bench store).
 */
enum tab {
	T_REC = 1, T_IDX, T_IDS, T_META, T_JOURNAL, T_OUTBOX, T_FEDIN, T_FEDQ, T_DOWNLOG, T_DOWNKEY
};
#define SUM_LEN 8

/* The entry whose checksum failed, for the message. */
struct badkey {
	enum tab t;
	struct kbuf k;
};

static uint64_t entry_sum(enum tab t, const void *k, size_t kn, const void *v, size_t vn)
{
	return XXH3_64bits_withSeed(v, vn, XXH3_64bits_withSeed(k, kn, (XXH64_hash_t)t));
}

static void le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t rd_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* Put key = the n bytes at p, its checksum in front (reserved in place: no copy). */
static int sput(MDB_txn *txn, MDB_dbi dbi, enum tab t, MDB_val *k, const void *p, size_t n,
		unsigned flags)
{
	MDB_val v = {n + SUM_LEN, NULL};
	int rc = mdb_put(txn, dbi, k, &v, flags | MDB_RESERVE);
	if (rc)
		return rc;
	le64(v.mv_data, entry_sum(t, k->mv_data, k->mv_size, p, n));
	if (n)
		memcpy((char *)v.mv_data + SUM_LEN, p, n);
	return 0;
}

/* Check and strip the checksum of entry k = *v of table t: 0 or SUM_BAD (noted in b). */
static int sum_chk(enum tab t, const MDB_val *k, MDB_val *v, struct badkey *b)
{
	if (v->mv_size >= SUM_LEN) {
		const uint8_t *p = v->mv_data;
		size_t n = v->mv_size - SUM_LEN;
		if (rd_le64(p) == entry_sum(t, k->mv_data, k->mv_size, p + SUM_LEN, n)) {
			v->mv_data = (void *)(p + SUM_LEN);
			v->mv_size = n;
			return 0;
		}
	}
	if (b) {
		b->t = t;
		b->k.n = k->mv_size > KEY_MAX ? KEY_MAX : k->mv_size;
		memcpy(b->k.b, k->mv_data, b->k.n);
	}
	return SUM_BAD;
}

/* mdb_get and sum_chk. */
static int sget(MDB_txn *txn, MDB_dbi dbi, enum tab t, MDB_val *k, MDB_val *v, struct badkey *b)
{
	int rc = mdb_get(txn, dbi, k, v);
	return rc ? rc : sum_chk(t, k, v, b);
}

/* Printable text of the n bytes at p (others as \xNN), cut to fit `len`. */
static void esc(char *out, size_t len, const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t o = 0;
	for (size_t i = 0; i < n && o + 5 < len; i++)
		o += (size_t)(s[i] >= 0x20 && s[i] < 0x7f
				  ? snprintf(out + o, len - o, "%c", s[i])
				  : snprintf(out + o, len - o, "\\x%02x", s[i]));
	out[o < len ? o : len - 1] = '\0';
}

static const char *const tab_names[] = {"",	     "rec",    "idx",	"ids",	   "meta",
					"journal", "outbox", "fedin", "fedq", "downlog", "downkey"};

/*
 * Entry `k` of table t in words: "record dataset residents, scope a/b, id
 * 'x'", "index entry residents.phone of scope a/b, id 'x'", ... (a key too
 * damaged to read is shown as bytes).
 */
static void describe(enum tab t, const void *kp, size_t kn, char *out, size_t len)
{
	const char *k = kp, *end = k + kn;
	const char *z1 = memchr(k, '\0', kn),
		   *z2 = z1 ? memchr(z1 + 1, '\0', (size_t)(end - z1 - 1)) : NULL;
	char a[128], b[SCOPE_MAX * 2], c[STORE_ID_MAX * 4 + 8], d[80];
	if (t == T_REC && z1 && z2 && z2 > z1 + 1 && z2[-1] == '/') {
		esc(a, sizeof a, k, (size_t)(z1 - k));
		esc(b, sizeof b, z1 + 1, (size_t)(z2 - z1 - 2));
		esc(c, sizeof c, z2 + 1, (size_t)(end - z2 - 1));
		snprintf(out, len, "record dataset %s, scope %s, id '%s'", a, b, c);
		return;
	}
	if (t == T_IDS && z1 && z2 && end > z2 + 1 && end[-1] == '/') {
		esc(a, sizeof a, k, (size_t)(z1 - k));
		esc(c, sizeof c, z1 + 1, (size_t)(z2 - z1 - 1));
		esc(b, sizeof b, z2 + 1, (size_t)(end - z2 - 2));
		snprintf(out, len, "id entry of dataset %s, id '%s', scope %s", a, c, b);
		return;
	}
	if (t == T_IDX && z1 && z2 && end - z2 > 3) {
		size_t vl = ((size_t)(uint8_t)z2[1] << 8 | (uint8_t)z2[2]) & 0x7fff;
		const char *tail = z2 + 3 + vl;
		const char *z3 = tail < end ? memchr(tail, '\0', (size_t)(end - tail)) : NULL;
		esc(a, sizeof a, k, (size_t)(z1 - k));
		esc(d, sizeof d, z1 + 1, (size_t)(z2 - z1 - 1));
		if (z3 && z3 > tail && z3[-1] == '/') {
			esc(b, sizeof b, tail, (size_t)(z3 - tail - 1));
			esc(c, sizeof c, z3 + 1, (size_t)(end - z3 - 1));
			snprintf(out, len, "index entry %s.%s of scope %s, id '%s'", a, d, b, c);
			return;
		}
	}
	if ((t == T_JOURNAL || t == T_OUTBOX || t == T_FEDQ || t == T_DOWNLOG) && kn == 8) {
		uint64_t seq = 0;
		for (int i = 0; i < 8; i++)
			seq = seq << 8 | (uint8_t)k[i];
		snprintf(out, len, "%s %llu",
			 t == T_JOURNAL	   ? "journal event"
			 : t == T_OUTBOX  ? "change log entry"
			 : t == T_DOWNLOG ? "down log entry"
					  : "quarantined change",
			 (unsigned long long)seq);
		return;
	}
	if (t == T_META) {
		esc(a, sizeof a, k, kn);
		snprintf(out, len, "meta entry '%s'", a);
		return;
	}
	esc(b, sizeof b, k, kn > 96 ? 96 : kn);
	snprintf(out, len, "entry of table %s with key '%s%s'", tab_names[t], b,
		 kn > 96 ? "..." : "");
}

/* The entry b names is damaged: LINLI_ECORRUPT, saying which and what to do. */
static int damaged(struct store *s, const struct badkey *b, char *err, size_t errlen)
{
	char what[700];
	describe(b->t, b->k.b, b->k.n, what, sizeof what);
	return errf(err, errlen, LINLI_ECORRUPT,
		    "store: %s: its checksum does not match: %s is damaged; restore a backup "
		    "(README: recovering a damaged store; linlid --verify lists the damage)",
		    what, s->data_path);
}

/* ---- validation ---- */

static const char *obj_type_name(const msgpack_object *o)
{
	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		return "null";
	case MSGPACK_OBJECT_BOOLEAN:
		return "a boolean";
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return "an integer";
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		return "a float";
	case MSGPACK_OBJECT_STR:
		return "a string";
	case MSGPACK_OBJECT_ARRAY:
		return "an array";
	case MSGPACK_OBJECT_MAP:
		return "a map";
	default:
		return "binary data";
	}
}

/* "a, b, c" of an enum's values, shortened for messages. */
static void values_list(const struct cat_field *f, char *buf, size_t len)
{
	size_t off = 0;
	buf[0] = '\0';
	for (int i = 0; i < f->n_values && off + 1 < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? ", " : "", f->values[i]);
}

#define VFAIL(...) errf(err, errlen, LINLI_ESCHEMA, __VA_ARGS__)

/* Validate value `v` of field `f` and pack its normalised form. */
static int put_value(const struct cat_dataset *ds, const struct cat_field *f,
		     const msgpack_object *v, msgpack_packer *pk, char *err, size_t errlen)
{
	const char *dn = ds->name, *fn = f->name;
	int64_t i;
	double d;
	switch (f->type) {
	case CAT_STRING:
	case CAT_ENUM:
	case CAT_REF: {
		if (v->type != MSGPACK_OBJECT_STR)
			return VFAIL("%s: field '%s': must be a string, not %s", dn, fn,
				     obj_type_name(v));
		size_t n = v->via.str.size;
		const char *p = v->via.str.ptr;
		if (f->type == CAT_ENUM) {
			for (int k = 0; k < f->n_values; k++)
				if (strlen(f->values[k]) == n && memcmp(f->values[k], p, n) == 0)
					goto str_ok;
			char vals[512];
			values_list(f, vals, sizeof vals);
			return VFAIL("%s: field '%s': '%.*s' is not one of %s", dn, fn,
				     (int)(n > 64 ? 64 : n), p, vals);
		}
		if (f->type == CAT_REF) {
			if (!id_ok_n(p, n))
				return VFAIL("%s: field '%s': '%.*s' is not a record id of %s", dn,
					     fn, (int)(n > 64 ? 64 : n), p, f->ref);
			goto str_ok;
		}
		if (f->max_len && (int64_t)n > f->max_len)
			return VFAIL("%s: field '%s': %zu bytes, longer than max_len %lld", dn, fn,
				     n, (long long)f->max_len);
		if (n > STORE_MAX_STRING)
			return VFAIL("%s: field '%s': %zu bytes, longer than the store's limit %d",
				     dn, fn, n, STORE_MAX_STRING);
		if (memchr(p, 0, n))
			return VFAIL("%s: field '%s': contains a NUL byte", dn, fn);
		if (!utf8_ok((const unsigned char *)p, n))
			return VFAIL("%s: field '%s': is not valid UTF-8", dn, fn);
	str_ok:
		msgpack_pack_str(pk, n);
		msgpack_pack_str_body(pk, p, n);
		return 0;
	}
	case CAT_INTEGER:
		if (!obj_int(v, &i))
			return VFAIL("%s: field '%s': must be an integer, not %s", dn, fn,
				     v->type == MSGPACK_OBJECT_POSITIVE_INTEGER
					 ? "an integer above 2^63-1"
					 : obj_type_name(v));
		if (f->has_min && i < f->imin)
			return VFAIL("%s: field '%s': %lld is below min %lld", dn, fn, (long long)i,
				     (long long)f->imin);
		if (f->has_max && i > f->imax)
			return VFAIL("%s: field '%s': %lld is above max %lld", dn, fn, (long long)i,
				     (long long)f->imax);
		msgpack_pack_int64(pk, i);
		return 0;
	case CAT_FLOAT:
		if (!obj_num(v, &d))
			return VFAIL("%s: field '%s': must be a number, not %s", dn, fn,
				     obj_type_name(v));
		if (!isfinite(d))
			return VFAIL("%s: field '%s': must be a finite number", dn, fn);
		if (f->has_min && d < f->fmin)
			return VFAIL("%s: field '%s': %g is below min %g", dn, fn, d, f->fmin);
		if (f->has_max && d > f->fmax)
			return VFAIL("%s: field '%s': %g is above max %g", dn, fn, d, f->fmax);
		msgpack_pack_double(pk, d);
		return 0;
	case CAT_BOOLEAN:
		if (v->type != MSGPACK_OBJECT_BOOLEAN)
			return VFAIL("%s: field '%s': must be true or false, not %s", dn, fn,
				     obj_type_name(v));
		if (v->via.boolean)
			msgpack_pack_true(pk);
		else
			msgpack_pack_false(pk);
		return 0;
	case CAT_TIME:
		if (v->type == MSGPACK_OBJECT_STR) {
			if (!store_time_parse(v->via.str.ptr, v->via.str.size, &i))
				return VFAIL("%s: field '%s': '%.*s' is not an RFC 3339 time "
					     "(2026-01-02T03:04:05Z)",
					     dn, fn,
					     (int)(v->via.str.size > 64 ? 64 : v->via.str.size),
					     v->via.str.ptr);
		} else if (!obj_int(v, &i))
			return VFAIL("%s: field '%s': must be a time: integer ms since 1970 UTC or "
				     "an RFC 3339 string, not %s",
				     dn, fn, obj_type_name(v));
		if (i < TIME_MIN || i > TIME_MAX)
			return VFAIL("%s: field '%s': %lld ms is outside years 1..9999", dn, fn,
				     (long long)i);
		msgpack_pack_int64(pk, i);
		return 0;
	case CAT_GEO: {
		const msgpack_object *lat = mp_get(v, "lat"), *lon = mp_get(v, "lon");
		double la, lo;
		if (v->type != MSGPACK_OBJECT_MAP || v->via.map.size != 2 || !lat || !lon)
			return VFAIL("%s: field '%s': must be a map {\"lat\": degrees, \"lon\": "
				     "degrees}",
				     dn, fn);
		if (!obj_num(lat, &la) || !obj_num(lon, &lo) || !isfinite(la) || !isfinite(lo))
			return VFAIL("%s: field '%s': lat and lon must be numbers", dn, fn);
		if (la < -90 || la > 90)
			return VFAIL("%s: field '%s': lat %g is outside -90..90", dn, fn, la);
		if (lo < -180 || lo > 180)
			return VFAIL("%s: field '%s': lon %g is outside -180..180", dn, fn, lo);
		msgpack_pack_map(pk, 2);
		mp_kv_double(pk, "lat", la);
		mp_kv_double(pk, "lon", lo);
		return 0;
	}
	}
	return VFAIL("%s: field '%s': unknown type", dn, fn);
}

/*
 * Validate record `rec` against dataset `ds` and pack its normalised form
 * (fields in catalog order, nil values dropped) into `pk`.
 */
static int normalise(const struct cat_dataset *ds, const msgpack_object *rec, msgpack_packer *pk,
		     char *err, size_t errlen)
{
	if (rec->type != MSGPACK_OBJECT_MAP)
		return VFAIL("%s: a record must be a map of fields, not %s", ds->name,
			     obj_type_name(rec));
	const msgpack_object *vals[CAT_MAX_FIELDS] = {0};
	int present = 0;
	for (uint32_t i = 0; i < rec->via.map.size; i++) {
		const msgpack_object *k = &rec->via.map.ptr[i].key;
		const msgpack_object *v = &rec->via.map.ptr[i].val;
		if (k->type != MSGPACK_OBJECT_STR)
			return VFAIL("%s: field names must be strings, not %s", ds->name,
				     obj_type_name(k));
		int kl = (int)(k->via.str.size > 64 ? 64 : k->via.str.size);
		const struct cat_field *f = cat_dataset_field(ds, k->via.str.ptr, k->via.str.size);
		if (!f) {
			bool reserved =
			    (k->via.str.size == 2 && memcmp(k->via.str.ptr, "id", 2) == 0) ||
			    (k->via.str.size == 5 && memcmp(k->via.str.ptr, "scope", 5) == 0);
			if (reserved)
				return VFAIL(
				    "%s: field '%.*s': not a field: a record's id and scope "
				    "are given apart from it",
				    ds->name, kl, k->via.str.ptr);
			return VFAIL("%s: field '%.*s': not in the schema of %s", ds->name, kl,
				     k->via.str.ptr, ds->name);
		}
		int fi = (int)(f - ds->fields);
		if (vals[fi])
			return VFAIL("%s: field '%s': given twice", ds->name, f->name);
		if (v->type == MSGPACK_OBJECT_NIL) {
			vals[fi] = v; /* seen, but absent */
			continue;
		}
		vals[fi] = v;
		present++;
	}
	for (int i = 0; i < ds->n_fields; i++)
		if (ds->fields[i].required && (!vals[i] || vals[i]->type == MSGPACK_OBJECT_NIL))
			return VFAIL("%s: field '%s': required", ds->name, ds->fields[i].name);
	msgpack_pack_map(pk, (size_t)present);
	for (int i = 0; i < ds->n_fields; i++) {
		if (!vals[i] || vals[i]->type == MSGPACK_OBJECT_NIL)
			continue;
		mp_str(pk, ds->fields[i].name);
		int rc = put_value(ds, &ds->fields[i], vals[i], pk, err, errlen);
		if (rc)
			return rc;
	}
	return 0;
}

/* Check `scope` as a place for records of `ds`. */
static int check_scope(const struct cat_dataset *ds, const char *scope, char *err, size_t errlen)
{
	char why[128];
	if (!scope || !scope_check(scope, why, sizeof why))
		return errf(err, errlen, LINLI_EINVAL, "%s: bad scope '%s': %s", ds->name,
			    scope ? scope : "(none)", scope ? why : "a record needs a scope");
	if (scope_depth(scope) < (int)ds->level)
		return errf(err, errlen, LINLI_EINVAL,
			    "%s: scope '%s' is a %s, but %s records live at the %s level or below",
			    ds->name, scope, tier_level_name((enum tier_level)scope_depth(scope)),
			    ds->name, tier_level_name(ds->level));
	return 0;
}

/* A subtree root given to a read or delete: NULL/"" or a good path. */
static int check_root(const char *scope, char *err, size_t errlen)
{
	char why[128];
	if (scope && *scope && !scope_check(scope, why, sizeof why))
		return errf(err, errlen, LINLI_EINVAL, "bad scope '%s': %s", scope, why);
	return 0;
}

static const struct cat_dataset *dataset(struct store *s, const char *name, char *err,
					 size_t errlen)
{
	const struct cat_dataset *d = name ? catalog_dataset(CAT(s), name) : NULL;
	if (!d)
		errf(err, errlen, LINLI_ENOENT, "no dataset '%s' in the catalog",
		     name ? name : "(none)");
	return d;
}

/* ---- read transactions ---- */

enum rd_kind { RD_WRITE, RD_OWNER, RD_OTHER };

struct rd {
	MDB_txn *txn;
	enum rd_kind kind;
};

static bool on_owner(const struct store *s)
{
	return pthread_equal(pthread_self(), s->owner);
}

static int rd_begin(struct store *s, struct rd *r)
{
	int rc;
	if (on_owner(s)) {
		if (s->wtxn) {
			r->txn = s->wtxn;
			r->kind = RD_WRITE;
			return 0;
		}
		/*
		 * The owner's reads share one read transaction until its next
		 * write or the batch end (both reset it). Only the owner writes,
		 * so it can neither go stale nor keep pages from being reused.
		 */
		r->kind = RD_OWNER;
		r->txn = s->rtxn;
		if (s->rtxn_live)
			return 0;
		if (!s->rtxn || (rc = mdb_txn_renew(s->rtxn)) != 0) {
			if (s->rtxn)
				mdb_txn_abort(s->rtxn);
			s->rtxn = NULL;
			if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &s->rtxn)) != 0) {
				s->rtxn = NULL;
				return rc;
			}
		}
		r->txn = s->rtxn;
		s->rtxn_live = true;
		return 0;
	}
	r->kind = RD_OTHER;
	pthread_rwlock_rdlock(&s->maplock);
	rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &r->txn);
	if (rc)
		pthread_rwlock_unlock(&s->maplock);
	return rc;
}

static void rd_end(struct store *s, struct rd *r)
{
	if (r->kind == RD_OTHER) {
		mdb_txn_abort(r->txn);
		pthread_rwlock_unlock(&s->maplock);
	}
}

/* End the owner's read transaction (at batch end, before writing or growing). */
static void rd_release(struct store *s)
{
	if (s->rtxn_live) {
		mdb_txn_reset(s->rtxn);
		s->rtxn_live = false;
	}
}

/* ---- map growth ---- */

static uint64_t used_bytes(struct store *s)
{
	MDB_envinfo info;
	mdb_env_info(s->env, &info);
	return ((uint64_t)info.me_last_pgno + 1) * s->psize;
}

/* Double the map (no write transaction may be open). */
static int grow_to(struct store *s, size_t ns, char *err, size_t errlen)
{
	if (atomic_load(&s->backup_running))
		return errf(err, errlen, LINLI_EBUSY,
			    "store: the map (%zu MiB) is full and cannot grow while a backup runs; "
			    "retry when it has finished",
			    s->map_size >> 20);
	if (s->map_size >= MAP_LIMIT)
		return errf(err, errlen, LINLI_EFULL, "store: the map reached its limit of %zu MiB",
			    s->map_size >> 20);
	if (ns > MAP_LIMIT)
		ns = MAP_LIMIT;
	rd_release(s);
	pthread_rwlock_wrlock(&s->maplock);
	int rc = mdb_env_set_mapsize(s->env, ns);
	pthread_rwlock_unlock(&s->maplock);
	if (rc)
		return lmdb_fail(s, rc, "growing the map", err, errlen);
	log_info("store", "map grew from %zu to %zu MiB", s->map_size >> 20, ns >> 20);
	s->map_size = ns;
	atomic_fetch_add(&s->grows, 1);
	return 0;
}

static int grow(struct store *s, char *err, size_t errlen)
{
	return grow_to(s, s->map_size * 2, err, errlen);
}

/* ---- applying writes to the write transaction ---- */

static const char *arena_str(struct store *s, uint32_t off)
{
	return s->arena + off;
}

/* Add or remove index entries going from record `old` to `nw` (either may be NULL). */
static int idx_update(struct store *s, const struct cat_dataset *ds, const char *scope,
		      const char *id, const msgpack_object *old, const msgpack_object *nw)
{
	for (int i = 0; i < ds->n_fields; i++) {
		const struct cat_field *f = &ds->fields[i];
		if (!f->indexed)
			continue;
		const msgpack_object *o = old ? mp_get(old, f->name) : NULL;
		const msgpack_object *n = nw ? mp_get(nw, f->name) : NULL;
		if (o && n && val_eq(f, o, n))
			continue;
		struct kbuf k;
		struct encv e;
		int rc;
		if (o) {
			enc_value(f, o, &e);
			idx_key(&k, ds->name, f, &e, scope, id);
			MDB_val key = {k.n, k.b};
			rc = mdb_del(s->wtxn, s->idx, &key, NULL);
			if (rc && rc != MDB_NOTFOUND)
				return rc;
		}
		if (n) {
			enc_value(f, n, &e);
			idx_key(&k, ds->name, f, &e, scope, id);
			MDB_val key = {k.n, k.b};
			if ((rc = sput(s->wtxn, s->idx, T_IDX, &key, NULL, 0, 0)))
				return rc;
		}
	}
	return 0;
}

static bool has_index(const struct cat_dataset *ds)
{
	for (int i = 0; i < ds->n_fields; i++)
		if (ds->fields[i].indexed)
			return true;
	return false;
}

/* Unpack `len` bytes at `p` into the apply zone. */
static bool unpack_a(struct store *s, const void *p, size_t len, msgpack_object *o)
{
	size_t off = 0;
	return msgpack_unpack(p, len, &off, &s->azone, o) == MSGPACK_UNPACK_SUCCESS;
}

/*
 * Unpack a record read from LMDB into our own copy first: LMDB's pointers
 * are valid only until the next write of the transaction, and index upkeep
 * writes while it still reads the old record.
 */
static bool unpack_old(struct store *s, const MDB_val *v, msgpack_object *o)
{
	s->old.size = 0;
	msgpack_sbuffer_write(&s->old, v->mv_data, v->mv_size);
	return unpack_a(s, s->old.data, s->old.size, o);
}

/*
 * Write record (ds, scope, id) = val. APPLY_NEW: there must be no record
 * `id` at this scope (MDB_KEYEXIST otherwise, nothing written).
 * APPLY_REPLACE: it exists at this scope. Returns an LMDB/errno code.
 */
static int apply_put(struct store *s, int dsi, const char *scope, const char *id, const void *val,
		     size_t len, enum apply_mode mode)
{
	const struct cat_dataset *ds = &CAT(s)->datasets[dsi];
	struct kbuf rk, ik;
	int rc;
	msgpack_zone_clear(&s->azone);
	rec_key(&rk, ds->name, scope, id);
	MDB_val key = {rk.n, rk.b}, data;
	msgpack_object oldo, newo;
	bool have_old = false, idx = has_index(ds);
	if (mode == APPLY_NEW) {
		ids_key(&ik, ds->name, id, scope);
		MDB_val ikey = {ik.n, ik.b};
		if ((rc = sput(s->wtxn, s->ids, T_IDS, &ikey, NULL, 0, MDB_NOOVERWRITE)))
			return rc;
		s->delta[dsi]++;
	} else if (idx) {
		if ((rc = sget(s->wtxn, s->rec, T_REC, &key, &data, NULL)))
			return rc == MDB_NOTFOUND ? MDB_CORRUPTED : rc;
		if (!unpack_old(s, &data, &oldo))
			return MDB_CORRUPTED;
		have_old = true;
	}
	if (idx) {
		if (!unpack_a(s, val, len, &newo))
			return MDB_CORRUPTED;
		if ((rc = idx_update(s, ds, scope, id, have_old ? &oldo : NULL, &newo)))
			return rc;
	}
	return sput(s->wtxn, s->rec, T_REC, &key, val, len, 0);
}

static int apply_del(struct store *s, int dsi, const char *scope, const char *id)
{
	const struct cat_dataset *ds = &CAT(s)->datasets[dsi];
	struct kbuf rk, ik;
	int rc;
	msgpack_zone_clear(&s->azone);
	rec_key(&rk, ds->name, scope, id);
	MDB_val key = {rk.n, rk.b}, data;
	if ((rc = sget(s->wtxn, s->rec, T_REC, &key, &data, NULL)))
		return rc == MDB_NOTFOUND ? MDB_CORRUPTED : rc;
	if (has_index(ds)) {
		msgpack_object oldo;
		if (!unpack_old(s, &data, &oldo))
			return MDB_CORRUPTED;
		if ((rc = idx_update(s, ds, scope, id, &oldo, NULL)))
			return rc;
	}
	if ((rc = mdb_del(s->wtxn, s->rec, &key, NULL)))
		return rc;
	ids_key(&ik, ds->name, id, scope);
	MDB_val ikey = {ik.n, ik.b};
	if ((rc = mdb_del(s->wtxn, s->ids, &ikey, NULL)))
		return rc;
	s->delta[dsi]--;
	return 0;
}

/* The journal's key: the seq, big-endian, so that the table is in seq order. */
static void journal_key(uint64_t seq, unsigned char k[8])
{
	for (int i = 7; i >= 0; i--, seq >>= 8)
		k[i] = (unsigned char)(seq & 0xff);
}

static int apply_journal(struct store *s, bool del, const char *seqhex, const void *val, size_t len)
{
	unsigned char kb[8];
	journal_key(strtoull(seqhex, NULL, 16), kb);
	MDB_val key = {8, kb};
	if (del) { /* trimming (store_journal_trim) */
		int rc = mdb_del(s->wtxn, s->journal, &key, NULL);
		return rc == MDB_NOTFOUND ? 0 : rc;
	}
	return sput(s->wtxn, s->journal, T_JOURNAL, &key, val, len, 0);
}

static MDB_dbi aux_dbi(const struct store *s, enum tab t)
{
	return t == T_OUTBOX	? s->outbox
	       : t == T_FEDIN	? s->fedin
	       : t == T_DOWNLOG ? s->downlog
	       : t == T_DOWNKEY ? s->downkey
				: s->fedq;
}

/* A federation table's entry: key a sequence in hex (outbox, fedq) or a node path (fedin). */
static int apply_aux(struct store *s, enum tab t, bool del, const char *key, const void *val,
		     size_t len)
{
	unsigned char kb[8];
	MDB_val k = {strlen(key), (void *)key};
	if (t != T_FEDIN && t != T_DOWNKEY) {
		journal_key(strtoull(key, NULL, 16), kb);
		k = (MDB_val){8, kb};
	}
	if (del) {
		int rc = mdb_del(s->wtxn, aux_dbi(s, t), &k, NULL);
		return rc == MDB_NOTFOUND ? 0 : rc;
	}
	return sput(s->wtxn, aux_dbi(s, t), t, &k, val, len, 0);
}

static int apply_op(struct store *s, const struct logop *op)
{
	const char *scope = arena_str(s, op->scope_off), *id = arena_str(s, op->id_off);
	if (op->ds == DS_JOURNAL)
		return apply_journal(s, op->del, id, s->arena + op->val_off, op->val_len);
	if (op->ds == DS_AUX)
		return apply_aux(s, (enum tab)op->mode, op->del, id, s->arena + op->val_off,
				 op->val_len);
	if (op->del)
		return apply_del(s, op->ds, scope, id);
	return apply_put(s, op->ds, scope, id, s->arena + op->val_off, op->val_len,
			 (enum apply_mode)op->mode);
}

static int arena_add(struct store *s, const void *p, size_t n, uint32_t *off)
{
	if (s->arena_len + n + 1 > s->arena_cap) {
		size_t cap = s->arena_cap ? s->arena_cap : 65536;
		while (cap < s->arena_len + n + 1)
			cap *= 2;
		if (cap > UINT32_MAX)
			return LINLI_ELIMIT;
		char *a = realloc(s->arena, cap);
		if (!a)
			return LINLI_ENOMEM;
		s->arena = a;
		s->arena_cap = cap;
	}
	*off = (uint32_t)s->arena_len;
	memcpy(s->arena + s->arena_len, p, n);
	s->arena[s->arena_len + n] = '\0';
	s->arena_len += n + 1;
	return 0;
}

static int log_op(struct store *s, bool del, enum apply_mode mode, int dsi, const char *scope,
		  const char *id, const void *val, size_t len)
{
	if (s->n_ops == s->cap_ops) {
		size_t cap = s->cap_ops ? s->cap_ops * 2 : 256;
		struct logop *v = realloc(s->ops, cap * sizeof *v);
		if (!v)
			return LINLI_ENOMEM;
		s->ops = v;
		s->cap_ops = cap;
	}
	struct logop op = {.del = del,
			   .mode = (uint8_t)mode,
			   .up = dsi < DS_AUX && s->cur_up,
			   .ds = (uint16_t)dsi,
			   .origin_off = ORIGIN_OWN,
			   .oseq = s->cur_oseq,
			   .writer = s->writer};
	int rc = s->cur_origin && dsi < DS_AUX
		     ? arena_add(s, s->cur_origin, strlen(s->cur_origin), &op.origin_off)
		     : 0;
	if (!rc)
		rc = arena_add(s, scope, strlen(scope), &op.scope_off);
	if (!rc)
		rc = arena_add(s, id, strlen(id), &op.id_off);
	if (!rc && !del)
		rc = arena_add(s, val, len, &op.val_off);
	if (rc)
		return rc;
	op.val_len = (uint32_t)len;
	s->ops[s->n_ops++] = op;
	if (dsi < DS_AUX)
		s->cur_up = false;
	return 0;
}

static uint64_t now_us(void);

/* Begin the batch's write transaction if there is none. */
static int batch_begin(struct store *s, char *err, size_t errlen)
{
	if (s->wtxn)
		return 0;
	rd_release(s); /* from here on the batch reads through its write txn */
	/* Grow before the map is full: cheaper than running out mid-batch. */
	if (used_bytes(s) > s->map_size / 4 * 3 && !atomic_load(&s->backup_running)) {
		char e[256];
		if (grow(s, e, sizeof e))
			log_warn("store", "%s", e);
	}
	int rc = mdb_txn_begin(s->env, NULL, 0, &s->wtxn);
	if (rc == MDB_MAP_RESIZED) {
		mdb_env_set_mapsize(s->env, 0);
		rc = mdb_txn_begin(s->env, NULL, 0, &s->wtxn);
	}
	if (rc) {
		s->wtxn = NULL;
		return lmdb_fail(s, rc, "beginning a write transaction", err, errlen);
	}
	memset(s->delta, 0, (size_t)(CAT(s)->n_datasets + 1) * sizeof *s->delta);
	s->batch_t0_us = now_us();
	if (s->o.wake)
		s->o.wake(s->o.wake_ud);
	return 0;
}

static void run_waiters(struct store *s, int rc, const char *msg)
{
	/* Detach first: a waiter may start the next batch. */
	struct waiter *w = s->waiters;
	size_t n = s->n_waiters;
	s->waiters = NULL;
	s->n_waiters = s->cap_waiters = 0;
	for (size_t i = 0; i < n; i++)
		w[i].fn(w[i].arg, rc, msg);
	free(w);
}

static void log_clear(struct store *s)
{
	s->n_ops = 0;
	s->arena_len = 0;
	if (s->arena_cap > (64u << 20)) { /* do not keep a huge batch's memory */
		free(s->arena);
		s->arena = NULL;
		s->arena_cap = 0;
	}
}

/* The batch is lost: abort it and tell every waiter. */
static void batch_fail(struct store *s, int rc, const char *msg)
{
	s->acked_pend = s->out_acked;
	if (s->rebased)
		s->out_last = s->out_last_before;
	s->rebased = false;
	if (s->wtxn)
		mdb_txn_abort(s->wtxn);
	s->wtxn = NULL;
	log_clear(s);
	atomic_fetch_add(&s->failed_commits, 1);
	log_error("store", "batch lost: %s", msg);
	run_waiters(s, rc, msg);
}

/*
 * The map ran out: abort, grow, begin again and replay the log. On return
 * 0 the write transaction holds exactly what it held before.
 */
static int regrow(struct store *s, char *err, size_t errlen)
{
	for (;;) {
		if (s->wtxn)
			mdb_txn_abort(s->wtxn);
		s->wtxn = NULL;
		int rc = grow(s, err, errlen);
		if (rc)
			return rc;
		if ((rc = mdb_txn_begin(s->env, NULL, 0, &s->wtxn))) {
			s->wtxn = NULL;
			return lmdb_fail(s, rc, "beginning a write transaction", err, errlen);
		}
		memset(s->delta, 0, (size_t)(CAT(s)->n_datasets + 1) * sizeof *s->delta);
		rc = 0;
		for (size_t i = 0; i < s->n_ops && !rc; i++)
			rc = apply_op(s, &s->ops[i]);
		if (rc == MDB_MAP_FULL)
			continue;
		if (rc)
			return lmdb_fail(s, rc, "replaying the batch", err, errlen);
		return 0;
	}
}

/*
 * The map is full and cannot grow now (a backup runs): commit the writes the
 * batch already holds, which fitted before, so that only the write that
 * does not fit is refused.
 */
static int salvage(struct store *s)
{
	if (s->wtxn)
		mdb_txn_abort(s->wtxn);
	s->wtxn = NULL;
	if (s->n_ops == 0)
		return 0;
	int rc = mdb_txn_begin(s->env, NULL, 0, &s->wtxn);
	if (rc) {
		s->wtxn = NULL;
		return rc;
	}
	memset(s->delta, 0, (size_t)(CAT(s)->n_datasets + 1) * sizeof *s->delta);
	for (size_t i = 0; i < s->n_ops && !rc; i++)
		rc = apply_op(s, &s->ops[i]);
	if (rc) {
		mdb_txn_abort(s->wtxn);
		s->wtxn = NULL;
		return rc;
	}
	return store_batch_end(s);
}

/*
 * Apply one new write with map growth; on a hard failure the whole batch is
 * lost (and said so). `rc_out` gets the raw LMDB result for KEYEXIST checks.
 */
static int apply_new(struct store *s, bool del, enum apply_mode mode, int dsi, const char *scope,
		     const char *id, const void *val, size_t len, char *err, size_t errlen)
{
	for (;;) {
		int rc = dsi == DS_JOURNAL ? apply_journal(s, del, id, val, len)
			 : dsi == DS_AUX   ? apply_aux(s, (enum tab)mode, del, id, val, len)
			 : del		   ? apply_del(s, dsi, scope, id)
					   : apply_put(s, dsi, scope, id, val, len, mode);
		if (rc == 0)
			break;
		if (rc == MDB_KEYEXIST)
			return rc; /* nothing was written; the caller picks another id */
		if (rc == SUM_BAD) { /* the record replaced or deleted: nothing was written */
			struct badkey b = {.t = T_REC};
			rec_key(&b.k, CAT(s)->datasets[dsi].name, scope, id);
			return damaged(s, &b, err, errlen);
		}
		if (rc == MDB_MAP_FULL) {
			if ((rc = regrow(s, err, errlen)) == 0)
				continue;
			if (rc == LINLI_EBUSY && salvage(s) == 0)
				return rc; /* only this write is refused */
		} else
			rc = lmdb_fail(s, rc, "writing", err, errlen);
		batch_fail(s, rc, err);
		return rc;
	}
	int rc = log_op(s, del, mode, dsi, scope, id, val, len);
	if (rc) {
		errf(err, errlen, rc, "store: out of memory recording the batch");
		batch_fail(s, rc, err);
		return rc;
	}
	atomic_fetch_add(&s->writes, 1);
	s->dswrites[dsi >= DS_AUX ? CAT(s)->n_datasets : dsi]++;
	return 0;
}

/* ---- finding a record by id ----
 *
 * Ids are unique per (dataset, scope): two scopes may hold the same id. The
 * ids table lists, per dataset and id, the scopes holding it, so a lookup by
 * id within a subtree walks only that subtree's entries (the prefix
 * `dataset \0 id \0 root "/"`): what lies outside it is never read, so no
 * answer can depend on it.
 */

#define LOCATE_NAMED 8 /* scopes named when an id is ambiguous */

struct found {
	int n;			   /* records with the id within the root, up to LOCATE_NAMED + 1 */
	char scope[SCOPE_MAX + 1]; /* the first one's scope */
	char list[1024];	   /* "a, b, c": up to LOCATE_NAMED of them */
	struct badkey bad;	   /* an entry whose checksum failed (SUM_BAD) */
};

/* The scopes within `root` (NULL/"" = the whole store) holding record `id` of `ds`. */
static int locate(struct store *s, MDB_txn *txn, const char *ds, const char *root, const char *id,
		  struct found *f)
{
	struct kbuf p;
	ids_prefix(&p, ds, id, NULL);
	size_t tail = p.n;
	ids_prefix(&p, ds, id, root);
	f->n = 0;
	f->scope[0] = f->list[0] = '\0';
	MDB_cursor *c;
	int rc = mdb_cursor_open(txn, s->ids, &c);
	if (rc)
		return rc;
	size_t off = 0;
	MDB_val k = {p.n, p.b}, v;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	     rc == 0 && k.mv_size >= p.n && memcmp(k.mv_data, p.b, p.n) == 0 &&
	     f->n <= LOCATE_NAMED;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if ((rc = sum_chk(T_IDS, &k, &v, &f->bad)))
			break;
		const char *sp = (const char *)k.mv_data + tail;
		size_t sl = k.mv_size - tail;
		if (sl < 2 || sl - 1 > SCOPE_MAX || sp[sl - 1] != '/') {
			rc = MDB_CORRUPTED;
			break;
		}
		sl--;
		if (f->n == 0) {
			memcpy(f->scope, sp, sl);
			f->scope[sl] = '\0';
		}
		if (f->n < LOCATE_NAMED && off < sizeof f->list)
			off += (size_t)snprintf(f->list + off, sizeof f->list - off, "%s%.*s",
						f->n ? ", " : "", (int)sl, sp);
		f->n++;
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/*
 * Datasets the kernel keeps for its registries (system ones: accounts,
 * sessions, apikeys, grants, audit; written_by ones: devices) are looked up
 * by id alone, so their ids stay unique on the node.
 */
static bool ids_node_wide(const struct cat_dataset *ds)
{
	/* but one that comes down holds the tiers' records above under the same ids, each at
	   its own scope (grants: host/grants.c reads them exactly there) */
	return (ds->system || ds->written_by) && !ds->down;
}

/*
 * Where is record `id` of ds, from a call's `scope`? exact: at `scope`
 * itself; otherwise the one record with that id within the subtree `scope`
 * (NULL/"" = the whole store). 0 with its scope in `cur`; LINLI_ENOENT (the
 * same message whether or not the id exists outside the subtree);
 * LINLI_EINVAL when several records within the subtree have the id (named
 * by their scopes, all inside the subtree); or an LMDB failure.
 */
static int resolve(struct store *s, MDB_txn *txn, const struct cat_dataset *ds, const char *scope,
		   const char *id, bool exact, char *cur, char *err, size_t errlen)
{
	int rc;
	if (exact) {
		struct kbuf k;
		rec_key(&k, ds->name, scope, id);
		MDB_val key = {k.n, k.b}, val;
		rc = mdb_get(txn, s->rec, &key, &val);
		if (rc == MDB_NOTFOUND)
			return errf(err, errlen, LINLI_ENOENT, "%s: no record '%s' at scope %s",
				    ds->name, id, scope);
		if (rc)
			return lmdb_fail(s, rc, "looking up the id", err, errlen);
		snprintf(cur, SCOPE_MAX + 1, "%s", scope);
		return 0;
	}
	struct found f;
	if ((rc = locate(s, txn, ds->name, scope, id, &f)))
		return rc == SUM_BAD ? damaged(s, &f.bad, err, errlen)
				     : lmdb_fail(s, rc, "looking up the id", err, errlen);
	bool root = scope && *scope;
	if (f.n == 0)
		return errf(err, errlen, LINLI_ENOENT, "%s: no record '%s'%s%s", ds->name, id,
			    root ? " in scope " : "", root ? scope : "");
	if (f.n > 1)
		return errf(err, errlen, LINLI_EINVAL,
			    "%s: %s%d records have id '%s'%s%s (at %s%s); " STORE_AMBIGUOUS,
			    ds->name, f.n > LOCATE_NAMED ? "more than " : "",
			    f.n > LOCATE_NAMED ? LOCATE_NAMED : f.n, id, root ? " in scope " : "",
			    root ? scope : "", f.list, f.n > LOCATE_NAMED ? ", ..." : "");
	memcpy(cur, f.scope, strlen(f.scope) + 1);
	return 0;
}

/*
 * A store-made id: the time in ms (12 hex digits) and a sequence within the
 * ms (4), so that ids sort in creation order, then '-' and the node's id (10
 * hex digits, random, kept in meta "node"), so that ids made by different
 * nodes never meet: 0190f3c2a4b10000-5c1e93a07d.
 */
static void gen_id(struct store *s, char *out)
{
	uint64_t ms = (uint64_t)wall_ms();
	if (ms > s->last_ms) {
		s->last_ms = ms;
		s->seq = 0;
	} else if (++s->seq > 0xffff) {
		s->last_ms++;
		s->seq = 0;
	}
	/* "%012llx%04x-%s" by hand: snprintf was a tenth of a storm's write path. */
	static const char hex[] = "0123456789abcdef";
	for (int i = 0; i < 12; i++)
		out[i] = hex[(s->last_ms >> (44 - 4 * i)) & 0xf];
	for (int i = 0; i < 4; i++)
		out[12 + i] = hex[(s->seq >> (12 - 4 * i)) & 0xf];
	out[16] = '-';
	memcpy(out + 17, s->node, NODE_ID_LEN + 1);
}

static int owner_only(struct store *s, char *err, size_t errlen)
{
	if (!on_owner(s))
		return errf(err, errlen, LINLI_ESTATE,
			    "store: writes run on the kernel thread only");
	return 0;
}

/* Unpack and normalise `rec` into s->norm. */
static int prepare_record(struct store *s, const struct cat_dataset *ds, const void *rec,
			  size_t len, char *err, size_t errlen)
{
	if (len > STORE_MAX_RECORD)
		return errf(err, errlen, LINLI_E2BIG, "%s: record of %zu bytes is larger than %u",
			    ds->name, len, STORE_MAX_RECORD);
	msgpack_zone_clear(&s->zone);
	msgpack_object o;
	size_t off = 0;
	char why[160];
	if (rec && mp_check(rec, len, MP_MAX_DEPTH, 0, why, sizeof why) != 0)
		return errf(err, errlen, LINLI_ESCHEMA,
			    "%s: the record is not one MessagePack map: %s", ds->name, why);
	if (!rec || msgpack_unpack(rec, len, &off, &s->zone, &o) != MSGPACK_UNPACK_SUCCESS ||
	    off != len)
		return errf(err, errlen, LINLI_ESCHEMA, "%s: the record is not one MessagePack map",
			    ds->name);
	s->norm.size = 0;
	msgpack_packer pk;
	msgpack_packer_init(&pk, &s->norm, msgpack_sbuffer_write);
	return normalise(ds, &o, &pk, err, errlen);
}

/* In a node-wide dataset, is `id` held at any scope? 0 (no), LINLI_EEXIST, or a failure. */
static int node_wide_taken(struct store *s, const struct cat_dataset *ds, const char *id, char *err,
			   size_t errlen)
{
	struct found f;
	int rc = locate(s, s->wtxn, ds->name, NULL, id, &f);
	if (rc)
		return rc == SUM_BAD ? damaged(s, &f.bad, err, errlen)
				     : lmdb_fail(s, rc, "looking up the id", err, errlen);
	if (f.n)
		return errf(err, errlen, LINLI_EEXIST,
			    "%s: id '%s' is taken (ids of %s are unique on the node)", ds->name, id,
			    ds->name);
	return 0;
}

/* Write s->norm as record (ds, scope, id|new). */
static int put_prepared(struct store *s, const struct cat_dataset *ds, const char *scope,
			const char *id, char *id_out, bool *created, char *err, size_t errlen)
{
	int dsi = (int)(ds - CAT(s)->datasets);
	int rc = batch_begin(s, err, errlen);
	if (rc)
		return rc;
	char nid[STORE_ID_MAX + 1];
	if (!id) {
		for (;;) {
			gen_id(s, nid);
			if (ids_node_wide(ds) &&
			    (rc = node_wide_taken(s, ds, nid, err, errlen)) == LINLI_EEXIST)
				continue;
			if (rc)
				return rc;
			rc = apply_new(s, false, APPLY_NEW, dsi, scope, nid, s->norm.data,
				       s->norm.size, err, errlen);
			if (rc != MDB_KEYEXIST)
				break;
		}
		if (rc)
			return rc;
		if (created)
			*created = true;
		snprintf(id_out, STORE_ID_MAX + 1, "%s", nid);
		return 0;
	}
	/* The record's address is dataset/scope/id: nothing at another scope matters. */
	struct kbuf k;
	rec_key(&k, ds->name, scope, id);
	MDB_val key = {k.n, k.b}, val;
	rc = mdb_get(s->wtxn, s->rec, &key, &val);
	if (rc && rc != MDB_NOTFOUND)
		return lmdb_fail(s, rc, "looking up the id", err, errlen);
	bool exists = rc == 0;
	if (!exists && ids_node_wide(ds) && (rc = node_wide_taken(s, ds, id, err, errlen)))
		return rc;
	rc = apply_new(s, false, exists ? APPLY_REPLACE : APPLY_NEW, dsi, scope, id, s->norm.data,
		       s->norm.size, err, errlen);
	if (rc == MDB_KEYEXIST)
		return lmdb_fail(s, MDB_CORRUPTED, "writing", err, errlen);
	if (rc)
		return rc;
	if (created)
		*created = !exists;
	if (id_out)
		snprintf(id_out, STORE_ID_MAX + 1, "%s", id);
	return 0;
}

/* store_put's checks; the record prepared in s->norm, its dataset in *out. */
static int check_put(struct store *s, const char *dataset_name, const char *scope, const char *id,
		     const void *rec, size_t len, const struct cat_dataset **out, char *err,
		     size_t errlen)
{
	int rc = owner_only(s, err, errlen);
	if (rc)
		return rc;
	const struct cat_dataset *ds = *out = dataset(s, dataset_name, err, errlen);
	if (!ds)
		return LINLI_ENOENT;
	if ((rc = check_scope(ds, scope, err, errlen)))
		return rc;
	if (id && !store_id_ok(id))
		return errf(err, errlen, LINLI_EINVAL,
			    "%s: bad id '%.64s': 1 to %d of A-Z a-z 0-9 _ . : - starting with a "
			    "letter or digit",
			    ds->name, id, STORE_ID_MAX);
	return prepare_record(s, ds, rec, len, err, errlen);
}

int store_put(struct store *s, const char *dataset_name, const char *scope, const char *id,
	      const void *rec, size_t len, char *id_out, bool *created, char *err, size_t errlen)
{
	PIN(s);
	const struct cat_dataset *ds;
	int rc = check_put(s, dataset_name, scope, id, rec, len, &ds, err, errlen);
	return rc ? rc : put_prepared(s, ds, scope, id, id_out, created, err, errlen);
}

int store_check(struct store *s, const char *dataset_name, const char *scope, const char *id,
		const void *rec, size_t len, char *err, size_t errlen)
{
	PIN(s);
	const struct cat_dataset *ds;
	return check_put(s, dataset_name, scope, id, rec, len, &ds, err, errlen);
}

/* The checks of a call by id: dataset, scope (a record's for exact, else a root), id. */
static const struct cat_dataset *by_id_args(struct store *s, const char *dataset_name,
					    const char *scope, const char *id, bool exact, int *rc,
					    char *err, size_t errlen)
{
	const struct cat_dataset *ds = dataset(s, dataset_name, err, errlen);
	*rc = LINLI_ENOENT;
	if (!ds)
		return NULL;
	char why[128];
	if (exact && (!scope || !scope_check(scope, why, sizeof why)))
		*rc = errf(err, errlen, LINLI_EINVAL, "%s: bad scope '%s': %s", ds->name,
			   scope ? scope : "", scope ? why : "the record's scope is needed");
	else if (!exact)
		*rc = check_root(scope, err, errlen);
	else
		*rc = 0;
	if (!*rc && (!id || !store_id_ok(id)))
		*rc = errf(err, errlen, LINLI_EINVAL, "%s: bad id '%.64s'", ds->name, id ? id : "");
	return *rc ? NULL : ds;
}

static int delete_by(struct store *s, const char *dataset_name, const char *scope, const char *id,
		     bool exact, char *err, size_t errlen)
{
	int rc = owner_only(s, err, errlen);
	if (rc)
		return rc;
	const struct cat_dataset *ds =
	    by_id_args(s, dataset_name, scope, id, exact, &rc, err, errlen);
	if (!ds)
		return rc;
	if ((rc = batch_begin(s, err, errlen)))
		return rc;
	char cur[SCOPE_MAX + 1];
	if ((rc = resolve(s, s->wtxn, ds, scope, id, exact, cur, err, errlen)))
		return rc;
	return apply_new(s, true, APPLY_REPLACE, (int)(ds - CAT(s)->datasets), cur, id, NULL, 0,
			 err, errlen);
}

int store_delete(struct store *s, const char *dataset_name, const char *scope, const char *id,
		 char *err, size_t errlen)
{
	PIN(s);
	return delete_by(s, dataset_name, scope, id, false, err, errlen);
}

int store_delete_at(struct store *s, const char *dataset_name, const char *scope, const char *id,
		    char *err, size_t errlen)
{
	PIN(s);
	return delete_by(s, dataset_name, scope, id, true, err, errlen);
}

static int update_by(struct store *s, const char *dataset_name, const char *scope, const char *id,
		     bool exact, store_update_fn fn, void *ud, char *err, size_t errlen)
{
	int rc = owner_only(s, err, errlen);
	if (rc)
		return rc;
	const struct cat_dataset *ds =
	    by_id_args(s, dataset_name, scope, id, exact, &rc, err, errlen);
	if (!ds)
		return rc;
	if ((rc = batch_begin(s, err, errlen)))
		return rc;
	char cur[SCOPE_MAX + 1];
	rc = resolve(s, s->wtxn, ds, scope, id, exact, cur, err, errlen);
	if (rc && rc != LINLI_ENOENT)
		return rc;
	bool exists = rc == 0;
	const char *where = exists ? cur : scope;
	if (!exists && (rc = check_scope(ds, scope, err, errlen)))
		return rc;

	/* Read the current record into a zone of our own: fn may call store_get. */
	msgpack_zone z;
	msgpack_zone_init(&z, 4096);
	msgpack_object old;
	if (exists) {
		struct kbuf k;
		rec_key(&k, ds->name, cur, id);
		MDB_val key = {k.n, k.b}, val;
		size_t off = 0;
		struct badkey b;
		if ((rc = sget(s->wtxn, s->rec, T_REC, &key, &val, &b)) ||
		    msgpack_unpack(val.mv_data, val.mv_size, &off, &z, &old) !=
			MSGPACK_UNPACK_SUCCESS) {
			msgpack_zone_destroy(&z);
			return rc == SUM_BAD ? damaged(s, &b, err, errlen)
					     : lmdb_fail(s, rc ? rc : MDB_CORRUPTED,
							 "reading the record", err, errlen);
		}
	}
	s->upd.size = 0;
	msgpack_packer pk;
	msgpack_packer_init(&pk, &s->upd, msgpack_sbuffer_write);
	if (err && errlen)
		err[0] = '\0';
	rc = fn(ud, exists ? &old : NULL, &pk, err, errlen);
	msgpack_zone_destroy(&z);
	if (rc < 0) {
		if (err && errlen && !err[0])
			errf(err, errlen, rc, "%s: update of '%s' refused: %s", ds->name, id,
			     linli_strerror(rc));
		return rc;
	}
	if (rc == STORE_KEEP)
		return 0;
	if (rc == STORE_DELETE) {
		if (!exists)
			return 0;
		return apply_new(s, true, APPLY_REPLACE, (int)(ds - CAT(s)->datasets), cur, id,
				 NULL, 0, err, errlen);
	}
	if (rc != 0)
		return errf(err, errlen, LINLI_EINVAL, "%s: update function returned %d", ds->name,
			    rc);
	/* prepare_record reads s->upd and writes s->norm: distinct buffers. */
	if ((rc = prepare_record(s, ds, s->upd.data, s->upd.size, err, errlen)))
		return rc;
	return put_prepared(s, ds, where, id, NULL, NULL, err, errlen);
}

int store_update(struct store *s, const char *dataset_name, const char *scope, const char *id,
		 store_update_fn fn, void *ud, char *err, size_t errlen)
{
	PIN(s);
	return update_by(s, dataset_name, scope, id, false, fn, ud, err, errlen);
}

int store_update_at(struct store *s, const char *dataset_name, const char *scope, const char *id,
		    store_update_fn fn, void *ud, char *err, size_t errlen)
{
	PIN(s);
	return update_by(s, dataset_name, scope, id, true, fn, ud, err, errlen);
}

int store_on_commit(struct store *s, store_done_fn fn, void *arg)
{
	if (!on_owner(s) || !s->wtxn || !fn)
		return LINLI_ESTATE;
	if (s->n_waiters == s->cap_waiters) {
		size_t cap = s->cap_waiters ? s->cap_waiters * 2 : 64;
		struct waiter *w = realloc(s->waiters, cap * sizeof *w);
		if (!w)
			return LINLI_ENOMEM;
		s->waiters = w;
		s->cap_waiters = cap;
	}
	s->waiters[s->n_waiters++] = (struct waiter){fn, arg};
	return 0;
}

/* The records of dataset `ds` in txn, counted one by one. */
static int count_records(struct store *s, MDB_txn *txn, const char *ds, uint64_t *n)
{
	struct kbuf p;
	rec_prefix(&p, ds, NULL);
	MDB_cursor *c;
	int rc = mdb_cursor_open(txn, s->rec, &c);
	if (rc)
		return rc;
	MDB_val k = {p.n, p.b}, v;
	*n = 0;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	     rc == 0 && k.mv_size >= p.n && memcmp(k.mv_data, p.b, p.n) == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
		(*n)++;
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Add the batch's record-count deltas to meta "count/<dataset>". */
static int flush_counts(struct store *s)
{
	for (int i = 0; i < CAT(s)->n_datasets; i++) {
		if (!s->delta[i])
			continue;
		char k[CAT_NAME_MAX + 8];
		int kn = snprintf(k, sizeof k, "count/%s", CAT(s)->datasets[i].name);
		MDB_val key = {(size_t)kn, k}, val;
		int64_t n = 0;
		int rc = sget(s->wtxn, s->meta, T_META, &key, &val, NULL);
		if (rc == 0 && val.mv_size == sizeof n)
			memcpy(&n, val.mv_data, sizeof n);
		else if (rc == SUM_BAD) {
			/* The count is kept for speed: count again, this batch included. */
			uint64_t c = 0;
			if ((rc = count_records(s, s->wtxn, CAT(s)->datasets[i].name, &c)))
				return rc;
			log_warn("store", "%s: meta entry '%s' was damaged: counted again (%llu)",
				 s->data_path, k, (unsigned long long)c);
			n = (int64_t)c - s->delta[i];
		} else if (rc && rc != MDB_NOTFOUND)
			return rc;
		n += s->delta[i];
		if (n < 0)
			n = 0;
		if ((rc = sput(s->wtxn, s->meta, T_META, &key, &n, sizeof n, 0)))
			return rc;
	}
	return 0;
}

/* Keep the committed batch's writes to watched datasets for store_changes_deliver. */
static void keep_changes(struct store *s)
{
	for (size_t i = 0; i < s->n_ops; i++) {
		const struct logop *op = &s->ops[i];
		if (op->ds >= DS_AUX || !s->watched[op->ds])
			continue;
		if (s->n_pend == s->cap_pend) {
			size_t cap = s->cap_pend ? s->cap_pend * 2 : 64;
			struct pchange *v = realloc(s->pend, cap * sizeof *v);
			if (!v)
				goto oom;
			s->pend = v;
			s->cap_pend = cap;
		}
		const char *scope = arena_str(s, op->scope_off), *id = arena_str(s, op->id_off);
		size_t sl = strlen(scope) + 1, il = strlen(id) + 1;
		char *b = malloc(sl + il);
		if (!b)
			goto oom;
		memcpy(b, scope, sl);
		memcpy(b + sl, id, il);
		s->pend[s->n_pend++] = (struct pchange){
		    .ds = op->ds,
		    .kind = op->del		       ? STORE_DELETED
			    : op->mode == APPLY_NEW ? STORE_CREATED
						    : STORE_UPDATED,
		    .writer = op->writer,
		    .batch = s->batches,
		    .scope_id = b};
	}
	return;
oom:
	log_error("store", "out of memory: change notices of a committed batch were dropped");
}

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/*
 * The batch's changes of datasets that go up, as change log entries (o.origin set), in the
 * order they were made, numbered from the last committed sequence: run again from there
 * when the batch is replayed. An entry is a map: o origin node, q its sequence there, d
 * dataset, s scope, i id, t when (wall ms), r the record's bytes (bin) or nil (deleted).
 */
/* Pack op as a change log or down log entry numbered `seq` into s->obuf. */
static void pack_entry(struct store *s, const struct logop *op, uint64_t seq, int64_t now)
{
	bool own = op->origin_off == ORIGIN_OWN;
	msgpack_packer pk;
	s->obuf.size = 0;
	msgpack_packer_init(&pk, &s->obuf, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 7);
	mp_kv_str(&pk, "o", own ? s->o.origin : arena_str(s, op->origin_off));
	mp_kv_uint(&pk, "q", own ? seq : op->oseq);
	mp_kv_str(&pk, "d", CAT(s)->datasets[op->ds].name);
	mp_kv_str(&pk, "s", arena_str(s, op->scope_off));
	mp_kv_str(&pk, "i", arena_str(s, op->id_off));
	mp_kv_int(&pk, "t", now);
	mp_str(&pk, "r");
	if (op->del)
		msgpack_pack_nil(&pk);
	else {
		msgpack_pack_bin(&pk, op->val_len);
		msgpack_pack_bin_body(&pk, s->arena + op->val_off, op->val_len);
	}
}

/* The down log's key of a record: "dataset scope id" (none of them holds a space). */
static void down_key(char *out, size_t n, const char *ds, const char *scope, const char *id)
{
	snprintf(out, n, "%s %s %s", ds, scope, id);
}

/*
 * One entry more of the down log (in the write transaction): numbered `seq`, replacing the
 * record's earlier entry — the log holds each record's last change only (a deletion as
 * nil until store_down_trim), so that a child new or far behind gets every record once.
 */
static int down_put(struct store *s, const char *ds, const char *scope, const char *id,
		    uint64_t seq)
{
	char key[CAT_NAME_MAX + SCOPE_MAX + STORE_ID_MAX + 3];
	down_key(key, sizeof key, ds, scope, id);
	MDB_val k = {strlen(key), key}, v;
	int rc = sget(s->wtxn, s->downkey, T_DOWNKEY, &k, &v, NULL);
	if (rc == 0 && v.mv_size == 8) {
		unsigned char ob[8];
		memcpy(ob, v.mv_data, 8);
		MDB_val okey = {8, ob};
		if ((rc = mdb_del(s->wtxn, s->downlog, &okey, NULL)) && rc != MDB_NOTFOUND)
			return rc;
	} else if (rc && rc != MDB_NOTFOUND && rc != SUM_BAD) /* damaged: written anew */
		return rc;
	unsigned char kb[8];
	journal_key(seq, kb);
	MDB_val sk = {8, kb};
	if ((rc = sput(s->wtxn, s->downlog, T_DOWNLOG, &sk, s->obuf.data, s->obuf.size, 0)))
		return rc;
	return sput(s->wtxn, s->downkey, T_DOWNKEY, &k, kb, 8, 0);
}

/*
 * The batch's changes of datasets that go up, as change log entries (o.origin set), in the
 * order they were made, numbered from the last committed sequence: run again from there
 * when the batch is replayed. An entry is a map: o origin node, q its sequence there, d
 * dataset, s scope, i id, t when (wall ms), r the record's bytes (bin) or nil (deleted).
 * The changes of datasets that go down become down log entries the same way (dlast).
 */
static int flush_outbox(struct store *s, uint64_t *last, uint64_t *dlast)
{
	*last = s->out_last;
	*dlast = s->down_last;
	if (s->acked_pend > s->out_acked) {
		MDB_val k = {12, "outbox_acked"};
		int rc = sput(s->wtxn, s->meta, T_META, &k, &s->acked_pend, sizeof s->acked_pend, 0);
		if (rc)
			return rc;
	}
	if (!s->o.origin)
		return 0;
	int64_t now = 0;
	for (size_t i = 0; i < s->n_ops; i++) {
		const struct logop *op = &s->ops[i];
		if (op->ds >= DS_AUX)
			continue;
		const struct cat_dataset *d = &CAT(s)->datasets[op->ds];
		bool upw = (d->up || op->up) && !s->o.down_only;
		if (!upw && !d->down)
			continue;
		if (!now)
			now = wall_ms();
		uint64_t seq = upw ? ++*last : ++*dlast;
		pack_entry(s, op, seq, now);
		int rc;
		if (!upw) {
			rc = down_put(s, d->name, arena_str(s, op->scope_off),
				      arena_str(s, op->id_off), seq);
		} else {
			unsigned char kb[8];
			journal_key(seq, kb);
			MDB_val k = {8, kb};
			rc = sput(s->wtxn, s->outbox, T_OUTBOX, &k, s->obuf.data, s->obuf.size, 0);
		}
		if (rc)
			return rc;
	}
	if (*dlast != s->down_last) { /* kept apart: a trim may leave the log empty */
		MDB_val k = {9, "down_last"};
		int rc = sput(s->wtxn, s->meta, T_META, &k, dlast, sizeof *dlast, 0);
		if (rc)
			return rc;
	}
	return 0;
}

int store_batch_end(struct store *s)
{
	if (!on_owner(s))
		return 0;
	s->kept = false;
	rd_release(s);
	if (!s->wtxn)
		return 0;
	char err[512];
	uint64_t t0 = now_us(), out_last = s->out_last, down_last = s->down_last;
	int rc;
	for (;;) {
		rc = flush_outbox(s, &out_last, &down_last);
		if (rc == 0)
			rc = flush_counts(s);
		if (rc == 0) {
			rc = mdb_txn_commit(s->wtxn); /* frees the txn, also on failure */
			s->wtxn = NULL;
		}
		if (rc != MDB_MAP_FULL)
			break;
		int g = regrow(s, err, sizeof err);
		if (g) {
			batch_fail(s, g, err);
			return g;
		}
	}
	if (rc) {
		int code = lmdb_fail(s, rc, "committing", err, sizeof err);
		if (s->wtxn) {
			mdb_txn_abort(s->wtxn);
			s->wtxn = NULL;
		}
		batch_fail(s, code, err);
		return code;
	}
	atomic_store(&s->last_commit_us, now_us() - t0);
	atomic_store(&s->last_batch, s->n_ops);
	atomic_fetch_add(&s->commits, 1);
	s->batches++;
	s->out_acked = s->acked_pend;
	bool logged = out_last != s->out_last || down_last != s->down_last || s->rebased;
	s->rebased = false;
	s->out_last = out_last;
	s->down_last = down_last;
	if (s->n_watched)
		keep_changes(s);
	log_clear(s);
	run_waiters(s, 0, NULL);
	/* last: a hook that writes starts a batch of its own, never this one's */
	if (logged && s->o.on_outbox)
		s->o.on_outbox(s->o.outbox_ud, out_last);
	return 0;
}

void store_set_group(struct store *s, unsigned max_writes, unsigned max_ms)
{
	atomic_store(&s->group_max, max_writes ? max_writes : 1);
	atomic_store(&s->group_ms, max_ms);
}

/*
 * Why keep a batch open: a synced commit costs two fsyncs and a copy of
 * every page the batch dirtied, and an index over many values (a reading's
 * device) dirties about one page per value whatever the batch's size, so
 * the cost per write falls as the batch grows. The kernel already gathers
 * what was queued during one turn (which includes the previous commit);
 * while more is queued at a turn's end, the next turn joins this batch too.
 * Nothing waits when nothing is queued, so an idle node commits a lone write
 * at once; the bounds cap the latency and the memory a storm's batch holds.
 */
int store_batch_turn(struct store *s, bool more)
{
	if (!on_owner(s) || !s->wtxn)
		return store_batch_end(s);
	unsigned ms = atomic_load(&s->group_ms);
	if (more && ms && s->n_ops < atomic_load(&s->group_max) &&
	    now_us() - s->batch_t0_us < (uint64_t)ms * 1000u) {
		atomic_fetch_add(&s->kept_open, 1);
		s->kept = true;
		return 0;
	}
	return store_batch_end(s);
}

bool store_batch_kept(struct store *s)
{
	return on_owner(s) && s->kept && s->wtxn;
}

/* ---- reads ---- */

static int get_by(struct store *s, const char *dataset_name, const char *scope, const char *id,
		  bool exact, msgpack_sbuffer *out, char *scope_out, char *err, size_t errlen)
{
	int rc;
	const struct cat_dataset *ds =
	    by_id_args(s, dataset_name, scope, id, exact, &rc, err, errlen);
	if (!ds)
		return rc;
	struct rd r;
	if ((rc = rd_begin(s, &r)))
		return lmdb_fail(s, rc, "beginning a read", err, errlen);
	char cur[SCOPE_MAX + 1];
	rc = resolve(s, r.txn, ds, scope, id, exact, cur, err, errlen);
	if (rc == 0) {
		struct kbuf k;
		rec_key(&k, ds->name, cur, id);
		MDB_val key = {k.n, k.b}, val;
		struct badkey b = {.t = T_REC}; /* set by sget; gcc -O3 cannot tell */
		int mrc = sget(r.txn, s->rec, T_REC, &key, &val, &b);
		if (mrc == 0) {
			msgpack_sbuffer_write(out, val.mv_data, val.mv_size);
			if (scope_out)
				snprintf(scope_out, SCOPE_MAX + 1, "%s", cur);
		} else if (mrc == SUM_BAD)
			rc = damaged(s, &b, err, errlen);
		else /* the ids table names a record that is not there */
			rc = lmdb_fail(s, mrc == MDB_NOTFOUND ? MDB_CORRUPTED : mrc, "reading", err,
				       errlen);
	}
	rd_end(s, &r);
	return rc;
}

int store_get(struct store *s, const char *dataset_name, const char *scope, const char *id,
	      msgpack_sbuffer *out, char *scope_out, char *err, size_t errlen)
{
	PIN(s);
	return get_by(s, dataset_name, scope, id, false, out, scope_out, err, errlen);
}

int store_get_at(struct store *s, const char *dataset_name, const char *scope, const char *id,
		 msgpack_sbuffer *out, char *err, size_t errlen)
{
	PIN(s);
	return get_by(s, dataset_name, scope, id, true, out, NULL, err, errlen);
}

enum fop { OP_EQ, OP_LT, OP_LE, OP_GT, OP_GE };

struct filt {
	const struct cat_field *f;
	msgpack_object v;
	enum fop op;
};

static bool op_of(const char *op, enum fop *o)
{
	static const struct {
		const char *name;
		enum fop op;
	} ops[] = {{"=", OP_EQ}, {"<", OP_LT}, {"<=", OP_LE}, {">", OP_GT}, {">=", OP_GE}};
	if (!op || !*op) {
		*o = OP_EQ;
		return true;
	}
	for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
		if (strcmp(op, ops[i].name) == 0) {
			*o = ops[i].op;
			return true;
		}
	return false;
}

bool store_op_is_range(const char *op)
{
	enum fop o;
	return op_of(op, &o) && o != OP_EQ;
}

static bool is_num_type(enum cat_type t)
{
	return t == CAT_INTEGER || t == CAT_FLOAT || t == CAT_TIME;
}

static void set_int(msgpack_object *o, int64_t v)
{
	o->type = v < 0 ? MSGPACK_OBJECT_NEGATIVE_INTEGER : MSGPACK_OBJECT_POSITIVE_INTEGER;
	if (v < 0)
		o->via.i64 = v;
	else
		o->via.u64 = (uint64_t)v;
}

/* Parse filter text (op NULL: an equality) into a normalised value of field f. */
static int parse_filter(const struct cat_dataset *ds, const struct store_range *w, struct filt *o,
			char *err, size_t errlen)
{
	const struct cat_field *f =
	    w->field ? cat_dataset_field(ds, w->field, strlen(w->field)) : NULL;
	if (!f)
		return errf(err, errlen, LINLI_EINVAL, "%s: no field '%s' to filter on", ds->name,
			    w->field ? w->field : "");
	if (!op_of(w->op, &o->op))
		return errf(err, errlen, LINLI_EINVAL,
			    "%s: field '%s': '%.8s' is not a range operator (<, <=, >, >=)",
			    ds->name, f->name, w->op);
	if (!f->indexed) {
		char names[512];
		size_t off = 0;
		names[0] = '\0';
		for (int i = 0; i < ds->n_fields && off + 1 < sizeof names; i++)
			if (ds->fields[i].indexed)
				off += (size_t)snprintf(names + off, sizeof names - off, "%s%s",
							off ? ", " : "", ds->fields[i].name);
		return errf(err, errlen, LINLI_EINVAL,
			    "%s: field '%s' is not indexed; filters take indexed fields (%s)",
			    ds->name, f->name, names[0] ? names : "none");
	}
	if (o->op != OP_EQ && !is_num_type(f->type))
		return errf(err, errlen, LINLI_EINVAL,
			    "%s: field '%s' is of type %s: ranges (<, <=, >, >=) take integer, "
			    "float and time fields",
			    ds->name, f->name, cat_type_name(f->type));
	const char *t = w->value ? w->value : "";
	size_t n = strlen(t);
	o->f = f;
	char *end;
	errno = 0;
	switch (f->type) {
	case CAT_ENUM:
		for (int i = 0; i < f->n_values; i++)
			if (strcmp(f->values[i], t) == 0)
				goto str;
		char vals[400];
		values_list(f, vals, sizeof vals);
		return errf(err, errlen, LINLI_EINVAL, "%s: field '%s': '%.64s' is not one of %s",
			    ds->name, f->name, t, vals);
	case CAT_STRING:
	case CAT_REF:
	str:
		o->v.type = MSGPACK_OBJECT_STR;
		o->v.via.str.ptr = t;
		o->v.via.str.size = (uint32_t)n;
		return 0;
	case CAT_INTEGER:
	case CAT_TIME: {
		long long v = strtoll(t, &end, 10);
		int64_t ms;
		if (n && *end == '\0' && errno == 0) {
			set_int(&o->v, v);
			return 0;
		}
		if (f->type == CAT_TIME && strcmp(t, "now") == 0) {
			set_int(&o->v, wall_ms());
			return 0;
		}
		if (f->type == CAT_TIME && store_time_parse(t, n, &ms)) {
			set_int(&o->v, ms);
			return 0;
		}
		return errf(err, errlen, LINLI_EINVAL, "%s: field '%s': '%.64s' is not %s",
			    ds->name, f->name, t,
			    f->type == CAT_TIME ? "a time (ms, RFC 3339 or now)" : "an integer");
	}
	case CAT_FLOAT: {
		double d = strtod(t, &end);
		if (!n || *end || errno || !isfinite(d))
			return errf(err, errlen, LINLI_EINVAL,
				    "%s: field '%s': '%.64s' is not a number", ds->name, f->name,
				    t);
		o->v.type = MSGPACK_OBJECT_FLOAT64;
		o->v.via.f64 = d == 0 ? 0 : d; /* -0.0 is 0.0 */
		return 0;
	}
	case CAT_BOOLEAN:
		if (strcmp(t, "true") && strcmp(t, "false"))
			return errf(err, errlen, LINLI_EINVAL,
				    "%s: field '%s': '%.64s' is not true or false", ds->name,
				    f->name, t);
		o->v.type = MSGPACK_OBJECT_BOOLEAN;
		o->v.via.boolean = t[0] == 't';
		return 0;
	case CAT_GEO:
		break;
	}
	return errf(err, errlen, LINLI_EINVAL, "%s: field '%s' cannot be filtered", ds->name,
		    f->name);
}

/* Does stored value v of a number field pass range filter fl? */
static bool in_range(const struct filt *fl, const msgpack_object *v)
{
	int c;
	if (fl->f->type == CAT_FLOAT) {
		double x, y;
		if (!obj_num(v, &x) || !obj_num(&fl->v, &y))
			return false;
		c = x < y ? -1 : x > y;
	} else {
		int64_t x, y;
		if (!obj_int(v, &x) || !obj_int(&fl->v, &y))
			return false;
		c = x < y ? -1 : x > y;
	}
	switch (fl->op) {
	case OP_LT:
		return c < 0;
	case OP_LE:
		return c <= 0;
	case OP_GT:
		return c > 0;
	case OP_GE:
		return c >= 0;
	case OP_EQ:
		break;
	}
	return false;
}

/*
 * Does the stored record pass every filter? Only the filtered fields' values are
 * unpacked, found in the raw bytes (mp_map_value): a scan never decodes what nobody reads.
 */
static bool filters_match(msgpack_zone *z, const struct filt *fl, int n, const void *data,
			  size_t len)
{
	for (int i = 0; i < n; i++) {
		const void *vb;
		size_t vl, off = 0;
		msgpack_object v;
		msgpack_zone_clear(z);
		if (mp_map_value(data, len, fl[i].f->name, &vb, &vl) ||
		    msgpack_unpack(vb, vl, &off, z, &v) != MSGPACK_UNPACK_SUCCESS ||
		    !(fl[i].op == OP_EQ ? val_eq(fl[i].f, &v, &fl[i].v) : in_range(&fl[i], &v)))
			return false;
	}
	return true;
}

/*
 * A walk of one number field's index between bounds. Index values of
 * integers and times are big-endian with the sign bit flipped, so they sort
 * by value, negatives first. Floats are indexed by their IEEE bits as they
 * are (format "linli-store 2"): non-negative values sort by value, then come
 * the negative ones in descending value (the sign bit set, growing
 * magnitude). A float range that spans 0 is walked as two segments: from
 * 0 up to hi, then from the first negative up to lo.
 */
struct rwalk {
	bool is_float;
	int64_t ilo, ihi; /* integers and times: inclusive bounds */
	double lo, hi;	  /* floats: bounds, each inclusive or not */
	bool lo_in, hi_in;
	bool empty; /* the bounds exclude every value */
};

enum { RW_TAKE, RW_SKIP, RW_STOP, RW_NEGATIVES };

#define NEG_BITS (1ull << 63)

static uint64_t rd_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static void rwalk_init(struct rwalk *w, const struct filt *fl, int n, const struct cat_field *f)
{
	memset(w, 0, sizeof *w);
	w->is_float = f->type == CAT_FLOAT;
	w->ilo = INT64_MIN;
	w->ihi = INT64_MAX;
	w->lo = -INFINITY;
	w->hi = INFINITY;
	w->lo_in = w->hi_in = true;
	for (int i = 0; i < n; i++) {
		if (fl[i].f != f || fl[i].op == OP_EQ)
			continue;
		bool upper = fl[i].op == OP_LT || fl[i].op == OP_LE;
		bool incl = fl[i].op == OP_LE || fl[i].op == OP_GE;
		if (w->is_float) {
			double d = 0;
			obj_num(&fl[i].v, &d);
			if (upper && (d < w->hi || (d == w->hi && !incl))) {
				w->hi = d;
				w->hi_in = incl;
			} else if (!upper && (d > w->lo || (d == w->lo && !incl))) {
				w->lo = d;
				w->lo_in = incl;
			}
			continue;
		}
		int64_t v = 0;
		obj_int(&fl[i].v, &v);
		if (upper) {
			if (!incl && v == INT64_MIN)
				w->empty = true;
			else if ((incl ? v : v - 1) < w->ihi)
				w->ihi = incl ? v : v - 1;
		} else {
			if (!incl && v == INT64_MAX)
				w->empty = true;
			else if ((incl ? v : v + 1) > w->ilo)
				w->ilo = incl ? v : v + 1;
		}
	}
	if (w->is_float)
		w->empty = w->empty || w->lo > w->hi || (w->lo == w->hi && !(w->lo_in && w->hi_in));
	else
		w->empty = w->empty || w->ilo > w->ihi;
}

/* The index bits where the walk starts. */
static uint64_t rwalk_start(const struct rwalk *w)
{
	if (!w->is_float)
		return (uint64_t)w->ilo ^ NEG_BITS;
	double d;
	if (w->hi < 0 || (w->hi == 0 && !w->hi_in)) { /* negatives only */
		if (w->hi == 0)
			return NEG_BITS;
		d = w->hi;
	} else
		d = w->lo >= 0 ? w->lo : 0;
	if (d == 0)
		d = 0;
	uint64_t bits;
	memcpy(&bits, &d, 8);
	return bits;
}

/* What to do with the index entry holding value bits `b`. */
static int rwalk_step(const struct rwalk *w, uint64_t b)
{
	if (!w->is_float) {
		int64_t v = (int64_t)(b ^ NEG_BITS);
		return v > w->ihi ? RW_STOP : v < w->ilo ? RW_SKIP : RW_TAKE;
	}
	double d;
	memcpy(&d, &b, 8);
	bool above = d > w->hi || (d == w->hi && !w->hi_in);
	bool below = d < w->lo || (d == w->lo && !w->lo_in);
	if (!above && !below)
		return RW_TAKE;
	if (!(b & NEG_BITS)) /* the non-negative segment, ascending */
		return !above ? RW_SKIP : w->lo < 0 ? RW_NEGATIVES : RW_STOP;
	return below ? RW_STOP : RW_SKIP; /* the negative one, descending */
}

static void cursor_encode(const struct kbuf *k, char *out)
{
	sodium_bin2base64(out, STORE_CURSOR_MAX, (const unsigned char *)k->b, k->n,
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

void store_cursor_after(const void *key, size_t key_len, char *cursor_out)
{
	struct kbuf k;
	k.n = key_len <= KEY_MAX ? key_len : KEY_MAX;
	memcpy(k.b, key, k.n);
	cursor_encode(&k, cursor_out);
}

static bool cursor_decode(const char *c, struct kbuf *k)
{
	size_t n;
	if (strlen(c) >= STORE_CURSOR_MAX ||
	    sodium_base642bin((unsigned char *)k->b, KEY_MAX, c, strlen(c), NULL, &n, NULL,
			      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
		return false;
	k->n = n;
	return true;
}

/*
 * The scan walks `rec` (no filter), `idx` under the value of the first
 * equality filter, or `idx` of the first range's field between its bounds
 * (struct rwalk), over the keys starting with `prefix`; a row's record key
 * is rebuilt from the key's tail ("scope/\0id"). The cursor is the last
 * row's key, so the next page starts strictly after it even if records were
 * added between.
 */
int store_scan(struct store *s, const struct store_query *q, store_row_fn fn, void *ud,
	       char *cursor_out, char *err, size_t errlen)
{
	PIN(s);
	cursor_out[0] = '\0';
	const struct cat_dataset *ds = dataset(s, q->dataset, err, errlen);
	if (!ds)
		return LINLI_ENOENT;
	int rc = check_root(q->scope, err, errlen);
	if (rc)
		return rc;
	size_t limit = q->limit ? q->limit : STORE_SCAN_MAX;
	if (limit > STORE_SCAN_MAX)
		return errf(err, errlen, LINLI_EINVAL, "limit %zu is above %d", limit,
			    STORE_SCAN_MAX);
	if (q->n_where < 0 || q->n_where > STORE_MAX_WHERE)
		return errf(err, errlen, LINLI_EINVAL, "at most %d filters", STORE_MAX_WHERE);
	if (q->n_range < 0 || q->n_range > STORE_MAX_RANGE)
		return errf(err, errlen, LINLI_EINVAL, "at most %d range filters", STORE_MAX_RANGE);
	struct filt fl[STORE_MAX_WHERE + STORE_MAX_RANGE];
	int nf = q->n_where + q->n_range, eq = q->n_where ? 0 : -1,
	    rg = q->n_range ? q->n_where : -1;
	for (int i = 0; i < q->n_where; i++) {
		struct store_range w = {q->where[i].field, NULL, q->where[i].value};
		if ((rc = parse_filter(ds, &w, &fl[i], err, errlen)))
			return rc;
	}
	for (int i = 0; i < q->n_range; i++) {
		const struct store_range *w = &q->range[i];
		if (!w->op || !store_op_is_range(w->op))
			return errf(err, errlen, LINLI_EINVAL,
				    "%s: field '%s': '%.8s' is not a range operator (<, <=, >, >=)",
				    ds->name, w->field ? w->field : "", w->op ? w->op : "");
		if ((rc = parse_filter(ds, w, &fl[q->n_where + i], err, errlen)))
			return rc;
	}

	struct kbuf prefix, start;
	size_t tail_at; /* where the "scope/\0id" tail starts in a key */
	MDB_dbi dbi;
	struct rwalk w;
	bool ranged = eq < 0 && rg >= 0;
	size_t root_len = q->scope ? strlen(q->scope) : 0;
	if (eq >= 0) {
		struct encv e;
		enc_value(fl[eq].f, &fl[eq].v, &e);
		idx_prefix(&prefix, ds->name, fl[eq].f, &e, NULL);
		tail_at = prefix.n;
		idx_prefix(&prefix, ds->name, fl[eq].f, &e, q->scope);
		if (q->exact && root_len)
			kzero(&prefix);
		dbi = s->idx;
	} else if (ranged) {
		rwalk_init(&w, fl, nf, fl[rg].f);
		prefix.n = 0;
		kstr(&prefix, ds->name);
		kzero(&prefix);
		kstr(&prefix, fl[rg].f->name);
		kzero(&prefix);
		tail_at = prefix.n + 2 + 8; /* a number's value: length 8, 8 bytes */
		dbi = s->idx;
	} else {
		rec_prefix(&prefix, ds->name, NULL);
		tail_at = prefix.n;
		rec_prefix(&prefix, ds->name, q->scope);
		if (q->exact && root_len)
			kzero(&prefix);
		dbi = s->rec;
	}
	bool resume = q->cursor && *q->cursor;
	if (resume) {
		if (!cursor_decode(q->cursor, &start) || start.n < prefix.n ||
		    memcmp(start.b, prefix.b, prefix.n) != 0)
			return errf(err, errlen, LINLI_EINVAL,
				    "the cursor does not belong to this query (dataset, scope and "
				    "first filter must be the same)");
	} else {
		start = prefix;
		if (ranged) {
			uint8_t v[10] = {0, 8};
			be64(v + 2, rwalk_start(&w));
			kput(&start, v, sizeof v);
		}
	}
	if (ranged && w.empty)
		return 0;

	struct rd r;
	if ((rc = rd_begin(s, &r)))
		return lmdb_fail(s, rc, "beginning a read", err, errlen);
	MDB_cursor *cur;
	if ((rc = mdb_cursor_open(r.txn, dbi, &cur))) {
		rd_end(s, &r);
		return lmdb_fail(s, rc, "opening a cursor", err, errlen);
	}
	MDB_val key = {start.n, start.b}, val;
	struct kbuf last = {.n = 0}, seek;
	msgpack_zone z; /* scans may run off the owner thread: no shared scratch */
	msgpack_zone_init(&z, 2048);
	int rows = 0;
	bool more = false;
	struct badkey bad;
	rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
	for (; rc == 0; rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		if (key.mv_size < prefix.n || memcmp(key.mv_data, prefix.b, prefix.n) != 0)
			break;
		if (resume && key.mv_size == start.n && memcmp(key.mv_data, start.b, start.n) == 0)
			continue;
		if ((rc = sum_chk(dbi == s->idx ? T_IDX : T_REC, &key, &val, &bad)))
			break;
		if (ranged) {
			const uint8_t *vb = (const uint8_t *)key.mv_data + prefix.n;
			if (key.mv_size < tail_at || vb[0] != 0 || vb[1] != 8) {
				rc = MDB_CORRUPTED;
				break;
			}
			int step = rwalk_step(&w, rd_be64(vb + 2));
			if (step == RW_STOP)
				break;
			if (step == RW_SKIP)
				continue;
			if (step == RW_NEGATIVES) { /* on to the negative floats */
				seek = prefix;
				uint8_t v[10] = {0, 8};
				be64(v + 2, NEG_BITS);
				kput(&seek, v, sizeof v);
				key.mv_size = seek.n;
				key.mv_data = seek.b;
				if ((rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE)))
					break;
				if (key.mv_size < prefix.n ||
				    memcmp(key.mv_data, prefix.b, prefix.n) != 0)
					break;
				if ((rc = sum_chk(T_IDX, &key, &val, &bad)))
					break;
				vb = (const uint8_t *)key.mv_data + prefix.n;
				if (key.mv_size < tail_at || vb[0] != 0 || vb[1] != 8) {
					rc = MDB_CORRUPTED;
					break;
				}
				step = rwalk_step(&w, rd_be64(vb + 2));
				if (step == RW_STOP)
					break;
				if (step != RW_TAKE)
					continue;
			}
		}
		char scope[SCOPE_MAX + 1], id[STORE_ID_MAX + 1];
		if (!split_tail((const char *)key.mv_data + tail_at, key.mv_size - tail_at, scope,
				id)) {
			rc = MDB_CORRUPTED;
			break;
		}
		if (ranged && root_len &&
		    (strncmp(scope, q->scope, root_len) != 0 ||
		     (scope[root_len] != '\0' && (q->exact || scope[root_len] != '/'))))
			continue; /* outside the subtree (or below the scope asked for) */
		const void *data = val.mv_data;
		size_t len = val.mv_size;
		if (dbi == s->idx) {
			struct kbuf rk;
			rec_key(&rk, ds->name, scope, id);
			MDB_val rkey = {rk.n, rk.b}, rval;
			if ((rc = sget(r.txn, s->rec, T_REC, &rkey, &rval, &bad))) {
				rc = rc == MDB_NOTFOUND ? MDB_CORRUPTED : rc;
				break;
			}
			data = rval.mv_data;
			len = rval.mv_size;
		}
		if (nf && !filters_match(&z, fl, nf, data, len))
			continue;
		if ((size_t)rows == limit) {
			more = true;
			break;
		}
		struct store_row row = {.id = id,
					.scope = scope,
					.data = data,
					.len = len,
					.key = key.mv_data,
					.key_len = key.mv_size};
		rows++;
		last.n = key.mv_size;
		memcpy(last.b, key.mv_data, key.mv_size);
		if (fn && fn(ud, &row))
			limit = (size_t)rows; /* end the page here; a cursor if more follow */
	}
	mdb_cursor_close(cur);
	rd_end(s, &r);
	msgpack_zone_destroy(&z);
	if (rc == SUM_BAD)
		return damaged(s, &bad, err, errlen);
	if (rc && rc != MDB_NOTFOUND)
		return lmdb_fail(s, rc, "scanning", err, errlen);
	if (more)
		cursor_encode(&last, cursor_out);
	return rows;
}

int store_set_sync(struct store *s, bool sync)
{
	if (!on_owner(s))
		return LINLI_ESTATE;
	if (mdb_env_set_flags(s->env, MDB_NOSYNC, sync ? 0 : 1) != 0)
		return LINLI_EIO;
	if (sync && !s->o.sync)
		mdb_env_sync(s->env, 1); /* what NOSYNC left unsynced */
	s->o.sync = sync;
	return 0;
}

/* ---- stats ---- */

uint64_t store_count(struct store *s, const char *name)
{
	PIN(s);
	const struct cat_dataset *ds = catalog_dataset(CAT(s), name);
	if (!ds)
		return 0;
	struct rd r;
	if (rd_begin(s, &r))
		return 0;
	char k[CAT_NAME_MAX + 8];
	int kn = snprintf(k, sizeof k, "count/%s", name);
	MDB_val key = {(size_t)kn, k}, val;
	int64_t n = 0;
	int rc = sget(r.txn, s->meta, T_META, &key, &val, NULL);
	if (rc == 0 && val.mv_size == sizeof n)
		memcpy(&n, val.mv_data, sizeof n);
	uint64_t c;
	if (rc == SUM_BAD && count_records(s, r.txn, name, &c) == 0) {
		rd_end(s, &r);
		return c; /* counted in the transaction: the batch included */
	}
	if (r.kind == RD_WRITE)
		n += s->delta[ds - CAT(s)->datasets];
	rd_end(s, &r);
	return n > 0 ? (uint64_t)n : 0;
}

int store_stats(struct store *s, struct store_stats *st)
{
	PIN(s);
	memset(st, 0, sizeof *st);
	struct rd r;
	int rc = rd_begin(s, &r);
	if (rc)
		return LINLI_EIO;
	MDB_stat ms;
	if (mdb_stat(r.txn, s->rec, &ms) == 0)
		st->records = ms.ms_entries;
	if (mdb_stat(r.txn, s->idx, &ms) == 0)
		st->index_entries = ms.ms_entries;
	if (mdb_stat(r.txn, s->journal, &ms) == 0)
		st->journal_entries = ms.ms_entries;
	MDB_envinfo info;
	mdb_env_info(s->env, &info);
	rd_end(s, &r);
	st->map_size = info.me_mapsize;
	st->used_bytes = ((uint64_t)info.me_last_pgno + 1) * s->psize;
	st->readers = info.me_numreaders;
	st->page_size = s->psize;
	struct stat fs;
	if (stat(s->data_path, &fs) == 0)
		st->file_bytes = (uint64_t)fs.st_size;
	st->commits = atomic_load(&s->commits);
	st->writes = atomic_load(&s->writes);
	st->failed_commits = atomic_load(&s->failed_commits);
	st->map_grows = atomic_load(&s->grows);
	st->last_commit_us = atomic_load(&s->last_commit_us);
	st->last_batch = atomic_load(&s->last_batch);
	st->kept_open = atomic_load(&s->kept_open);
	st->group_max = atomic_load(&s->group_max);
	st->group_ms = atomic_load(&s->group_ms);
	st->sync = s->o.sync;
	st->backup_running = atomic_load(&s->backup_running);
	return 0;
}

/* ---- backup ---- */

struct backup {
	struct store *s;
	char path[PATH_MAX];
	store_done_fn done;
	void *arg;
};

static int fsync_path(const char *p, int flags)
{
	int fd = open(p, flags | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

/*
 * The copy is written into PATH/.partial and renamed to PATH/data.mdb when
 * complete, so an interrupted backup never leaves a data.mdb that looks whole.
 */
static void *backup_main(void *p)
{
	struct backup *b = p;
	struct store *s = b->s;
	char tmp[PATH_MAX + 16], tmpdata[PATH_MAX + 32], final[PATH_MAX + 16], msg[PATH_MAX + 256];
	snprintf(tmp, sizeof tmp, "%s/.partial", b->path);
	snprintf(tmpdata, sizeof tmpdata, "%s/data.mdb", tmp);
	snprintf(final, sizeof final, "%s/data.mdb", b->path);
	int rc = LINLI_OK;
	msg[0] = '\0';
	unlink(tmpdata);
	if (mkdir(tmp, 0750) != 0 && errno != EEXIST) {
		rc = LINLI_EIO;
		snprintf(msg, sizeof msg, "store backup: cannot create %s: %s", tmp,
			 strerror(errno));
	}
	if (!rc) {
		uint64_t t0 = now_us();
		pthread_rwlock_rdlock(&s->maplock);
		int r = mdb_env_copy2(s->env, tmp, MDB_CP_COMPACT);
		pthread_rwlock_unlock(&s->maplock);
		if (r) {
			rc = disk_full(r) ? LINLI_EFULL : LINLI_EIO;
			snprintf(msg, sizeof msg, "store backup to %s failed: %s", b->path,
				 mdb_strerror(r));
		} else if (fsync_path(tmpdata, O_RDONLY) != 0 || rename(tmpdata, final) != 0 ||
			   fsync_path(b->path, O_RDONLY | O_DIRECTORY) != 0) {
			rc = LINLI_EIO;
			snprintf(msg, sizeof msg, "store backup: cannot finish %s: %s", final,
				 strerror(errno));
		} else
			log_info("store", "backup written to %s in %llu ms", final,
				 (unsigned long long)((now_us() - t0) / 1000));
	}
	unlink(tmpdata);
	rmdir(tmp);
	atomic_store(&s->backup_running, false);
	b->done(b->arg, rc, rc ? msg : NULL);
	free(b);
	return NULL;
}

int store_backup_start(struct store *s, const char *path, store_done_fn done, void *arg, char *err,
		       size_t errlen)
{
	if (!path || path[0] != '/')
		return errf(err, errlen, LINLI_EINVAL,
			    "store backup: give an absolute directory path (got '%s')",
			    path ? path : "");
	if (strlen(path) >= PATH_MAX - 32)
		return errf(err, errlen, LINLI_EINVAL, "store backup: path too long");
	pthread_mutex_lock(&s->bmu);
	if (atomic_load(&s->backup_running)) {
		pthread_mutex_unlock(&s->bmu);
		return errf(err, errlen, LINLI_EBUSY, "store backup: a backup is already running");
	}
	if (s->backup_joinable) {
		pthread_join(s->backup_thread, NULL);
		s->backup_joinable = false;
	}
	int rc = 0;
	char data[PATH_MAX + 16];
	snprintf(data, sizeof data, "%s/data.mdb", path);
	struct stat st;
	if (mkdir(path, 0750) != 0 && errno != EEXIST)
		rc = errf(err, errlen, LINLI_EIO, "store backup: cannot create %s: %s", path,
			  strerror(errno));
	else if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
		rc = errf(err, errlen, LINLI_EINVAL, "store backup: %s is not a directory", path);
	else if (access(data, F_OK) == 0)
		rc = errf(err, errlen, LINLI_EEXIST,
			  "store backup: %s already exists; choose an empty directory", data);
	/*
	 * The copy's read transaction keeps every page it sees, so the file
	 * grows while it runs, and the map cannot be remapped under it. The
	 * map is only address space: reserve room now (committing the open
	 * batch first, as growing needs no write transaction).
	 */
	if (!rc && on_owner(s)) {
		if (s->wtxn)
			store_batch_end(s);
		size_t want = s->map_size;
		while (want < MAP_LIMIT && want < used_bytes(s) * 2 + BACKUP_HEADROOM)
			want *= 2;
		if (want > s->map_size && !s->wtxn)
			rc = grow_to(s, want, err, errlen);
	}
	struct backup *b = rc ? NULL : calloc(1, sizeof *b);
	if (!rc && !b)
		rc = errf(err, errlen, LINLI_ENOMEM, "store backup: out of memory");
	if (!rc) {
		b->s = s;
		snprintf(b->path, sizeof b->path, "%s", path);
		b->done = done;
		b->arg = arg;
		atomic_store(&s->backup_running, true);
		if (pthread_create(&s->backup_thread, NULL, backup_main, b) != 0) {
			atomic_store(&s->backup_running, false);
			free(b);
			rc = errf(err, errlen, LINLI_ENOMEM, "store backup: cannot start a thread");
		} else
			s->backup_joinable = true;
	}
	pthread_mutex_unlock(&s->bmu);
	return rc;
}

/* ---- open and close ---- */

static const char *const db_names[] = {"rec",	   "idx",    "ids",   "meta",	 "journal",
				       "outbox", "fedin", "fedq",  "downlog", "downkey"};
#define N_DBS (sizeof db_names / sizeof db_names[0])

/* Signature of a dataset's indexes: rebuilt when it changes. */
static void ix_signature(const struct cat_dataset *ds, char *buf, size_t len)
{
	size_t off = (size_t)snprintf(buf, len, "v1");
	for (int i = 0; i < ds->n_fields && off < len; i++)
		if (ds->fields[i].indexed)
			off += (size_t)snprintf(buf + off, len - off, ",%s:%s", ds->fields[i].name,
						cat_type_name(ds->fields[i].type));
}

/* Drop and rebuild the index entries of dataset ds (inside s->wtxn). */
static int rebuild_index(struct store *s, const struct cat_dataset *ds, uint64_t *count)
{
	struct kbuf p;
	rec_prefix(&p, ds->name, NULL); /* "name\0": the same prefix in idx */
	MDB_cursor *c;
	int rc = mdb_cursor_open(s->wtxn, s->idx, &c);
	if (rc)
		return rc;
	MDB_val key, val;
	for (;;) {
		key = (MDB_val){p.n, p.b};
		rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
		if (rc || key.mv_size < p.n || memcmp(key.mv_data, p.b, p.n) != 0)
			break;
		if ((rc = mdb_cursor_del(c, 0)))
			break;
	}
	mdb_cursor_close(c);
	if (rc && rc != MDB_NOTFOUND)
		return rc;
	if ((rc = mdb_cursor_open(s->wtxn, s->rec, &c)))
		return rc;
	key = (MDB_val){p.n, p.b};
	*count = 0;
	for (rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
	     rc == 0 && key.mv_size >= p.n && memcmp(key.mv_data, p.b, p.n) == 0;
	     rc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
		char scope[SCOPE_MAX + 1], id[STORE_ID_MAX + 1];
		msgpack_object o;
		msgpack_zone_clear(&s->azone);
		if ((rc = sum_chk(T_REC, &key, &val, NULL)))
			break;
		if (!split_tail((const char *)key.mv_data + p.n, key.mv_size - p.n, scope, id) ||
		    !unpack_old(s, &val, &o)) {
			rc = MDB_CORRUPTED;
			break;
		}
		if ((rc = idx_update(s, ds, scope, id, NULL, &o)))
			break;
		(*count)++;
	}
	mdb_cursor_close(c);
	if (rc && rc != MDB_NOTFOUND)
		return rc;
	/* The count is rebuilt too, in case it was never kept. */
	char k[CAT_NAME_MAX + 8];
	int kn = snprintf(k, sizeof k, "count/%s", ds->name);
	int64_t n = (int64_t)*count;
	key = (MDB_val){(size_t)kn, k};
	return sput(s->wtxn, s->meta, T_META, &key, &n, sizeof n, 0);
}

static int down_seed(struct store *s, uint64_t *seeded);

/* Touch the first and last page of each table: a cheap probe for damage. */
static int probe(struct store *s, MDB_txn *txn)
{
	MDB_dbi dbis[] = {s->rec,  s->idx,   s->ids,  s->meta,    s->journal,
			  s->outbox, s->fedin, s->fedq, s->downlog, s->downkey};
	for (size_t i = 0; i < sizeof dbis / sizeof dbis[0]; i++) {
		MDB_cursor *c;
		MDB_val k, v;
		int rc = mdb_cursor_open(txn, dbis[i], &c);
		if (rc)
			return rc;
		rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
		if (rc == 0)
			rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
		mdb_cursor_close(c);
		if (rc && rc != MDB_NOTFOUND)
			return rc;
	}
	return 0;
}

/*
 * Format 1 kept ids unique per dataset, its ids table `dataset \0 id ->
 * scope`; format 2 keys them per scope, `dataset \0 id \0 scope "/" -> ""`.
 * Records, indexes, counts and the journal are the same in both, so the
 * migration keeps them and rebuilds the ids table from the records, inside
 * the open transaction: it is committed whole or not at all. `summary` gets
 * "dataset n, ..." of the records kept.
 */
static int migrate_1_to_2(struct store *s, uint64_t *records, char *summary, size_t sumlen)
{
	int rc = mdb_drop(s->wtxn, s->ids, 0);
	if (rc)
		return rc;
	MDB_cursor *c;
	if ((rc = mdb_cursor_open(s->wtxn, s->rec, &c)))
		return rc;
	MDB_val k, v;
	char last[KEY_MAX + 1] = "";
	uint64_t in_ds = 0;
	size_t off = 0;
	*records = 0;
	summary[0] = '\0';
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		const char *p = k.mv_data, *z = rc ? NULL : memchr(p, '\0', k.mv_size);
		size_t dl = z ? (size_t)(z - p) : 0;
		bool next_ds = rc || strlen(last) != dl || memcmp(last, p, dl) != 0;
		if (next_ds && in_ds && off < sumlen)
			off += (size_t)snprintf(summary + off, sumlen - off, "%s%s %llu",
						off ? ", " : "", last, (unsigned long long)in_ds);
		if (rc)
			break;
		char scope[SCOPE_MAX + 1], id[STORE_ID_MAX + 1];
		if (!z || dl == 0 || !split_tail(z + 1, k.mv_size - dl - 1, scope, id)) {
			rc = MDB_CORRUPTED;
			break;
		}
		if (next_ds) {
			memcpy(last, p, dl);
			last[dl] = '\0';
			in_ds = 0;
		}
		struct kbuf ik;
		ids_key(&ik, last, id, scope);
		MDB_val ikey = {ik.n, ik.b}, ival = {0, ""}; /* format 2: no checksum */
		if ((rc = mdb_put(s->wtxn, s->ids, &ikey, &ival, 0)))
			break;
		in_ds++;
		(*records)++;
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/*
 * Format 2 has the layout of format 3 without checksums: put one in front of
 * every value of every table (but meta "format"), inside the open
 * transaction, so that it is committed whole or not at all. `summary` gets
 * "n records, n index entries, ...".
 */
static int migrate_2_to_3(struct store *s, char *summary, size_t sumlen)
{
	MDB_dbi dbis[] = {s->rec, s->idx, s->ids, s->journal, s->meta};
	enum tab tabs[] = {T_REC, T_IDX, T_IDS, T_JOURNAL, T_META};
	static const char *const what[] = {"records", "index entries", "id entries",
					   "journal events", "meta entries"};
	char *buf = NULL;
	size_t cap = 0, off = 0;
	int rc = 0;
	summary[0] = '\0';
	for (size_t i = 0; i < sizeof dbis / sizeof dbis[0] && !rc; i++) {
		MDB_cursor *c;
		if ((rc = mdb_cursor_open(s->wtxn, dbis[i], &c)))
			break;
		MDB_val k, v;
		uint64_t n = 0;
		for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
		     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
			if (tabs[i] == T_META && k.mv_size == 6 &&
			    memcmp(k.mv_data, "format", 6) == 0)
				continue;
			if (v.mv_size + SUM_LEN > cap) {
				size_t nc = (v.mv_size + SUM_LEN) * 2;
				char *nb = realloc(buf, nc);
				if (!nb) {
					rc = ENOMEM;
					break;
				}
				buf = nb;
				cap = nc;
			}
			/* Copies first: the put moves what LMDB's pointers show. */
			struct kbuf kb = {.n = k.mv_size > KEY_MAX ? KEY_MAX : k.mv_size};
			memcpy(kb.b, k.mv_data, kb.n);
			le64((uint8_t *)buf,
			     entry_sum(tabs[i], k.mv_data, k.mv_size, v.mv_data, v.mv_size));
			if (v.mv_size)
				memcpy(buf + SUM_LEN, v.mv_data, v.mv_size);
			MDB_val nk = {kb.n, kb.b}, nv = {v.mv_size + SUM_LEN, buf};
			if ((rc = mdb_cursor_put(c, &nk, &nv, MDB_CURRENT)))
				break;
			n++;
		}
		mdb_cursor_close(c);
		if (rc == MDB_NOTFOUND)
			rc = 0;
		if (off < sumlen)
			off += (size_t)snprintf(summary + off, sumlen - off, "%s%llu %s",
						i ? ", " : "", (unsigned long long)n, what[i]);
	}
	free(buf);
	return rc;
}

/* The node's id (meta "node"): read it, or make one for a new or migrated store. */
static int node_id(struct store *s)
{
	MDB_val k = {4, "node"}, v;
	int rc = sget(s->wtxn, s->meta, T_META, &k, &v, NULL);
	if (rc == 0 && v.mv_size == NODE_ID_LEN) {
		memcpy(s->node, v.mv_data, NODE_ID_LEN);
		s->node[NODE_ID_LEN] = '\0';
		for (int i = 0; i < NODE_ID_LEN; i++)
			if (!strchr("0123456789abcdef", s->node[i]) || !s->node[i])
				return MDB_CORRUPTED;
		return 0;
	}
	if (rc == 0)
		return MDB_CORRUPTED;
	if (rc != MDB_NOTFOUND)
		return rc;
	unsigned char b[NODE_ID_LEN / 2];
	randombytes_buf(b, sizeof b);
	for (size_t i = 0; i < sizeof b; i++)
		snprintf(s->node + 2 * i, 3, "%02x", b[i]);
	return sput(s->wtxn, s->meta, T_META, &k, s->node, NODE_ID_LEN, 0);
}

/* The N of meta "format" = "linli-store N"; 0 when it is not of that form. */
static int format_number(const MDB_val *v)
{
	size_t pl = strlen(FORMAT_PREFIX);
	if (v->mv_size <= pl || v->mv_size > pl + 6 || memcmp(v->mv_data, FORMAT_PREFIX, pl))
		return 0;
	int n = 0;
	for (size_t i = pl; i < v->mv_size; i++) {
		char ch = ((const char *)v->mv_data)[i];
		if (ch < '0' || ch > '9')
			return 0;
		n = n * 10 + (ch - '0');
	}
	return n;
}

/* The open transaction: tables, format (migrating 1 and 2), foreign data, indexes. */
static int prepare(struct store *s, char *err, size_t errlen)
{
	int rc = mdb_txn_begin(s->env, NULL, 0, &s->wtxn);
	if (rc) {
		s->wtxn = NULL;
		return lmdb_fail(s, rc, "opening", err, errlen);
	}
	/* A linli store's main table holds only our table names. */
	MDB_dbi main;
	MDB_cursor *c;
	MDB_val k, v;
	if ((rc = mdb_dbi_open(s->wtxn, NULL, 0, &main)) ||
	    (rc = mdb_cursor_open(s->wtxn, main, &c)))
		goto lmdb;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		bool ours = false;
		for (size_t i = 0; i < N_DBS; i++)
			ours |= k.mv_size == strlen(db_names[i]) &&
				memcmp(k.mv_data, db_names[i], k.mv_size) == 0;
		if (!ours) {
			mdb_cursor_close(c);
			rc = errf(
			    err, errlen, LINLI_ECORRUPT,
			    "store: %s is an LMDB file but not a linli store (it holds '%.*s'); "
			    "refusing to touch it",
			    s->data_path, (int)(k.mv_size > 32 ? 32 : k.mv_size),
			    (char *)k.mv_data);
			goto out;
		}
	}
	mdb_cursor_close(c);
	if (rc != MDB_NOTFOUND)
		goto lmdb;
	MDB_dbi *dbis[] = {&s->rec,   &s->idx,	 &s->ids,  &s->meta,	&s->journal,
			   &s->outbox, &s->fedin, &s->fedq, &s->downlog, &s->downkey};
	for (size_t i = 0; i < N_DBS; i++)
		if ((rc = mdb_dbi_open(s->wtxn, db_names[i], MDB_CREATE, dbis[i])))
			goto lmdb;
	if ((rc = probe(s, s->wtxn)))
		goto lmdb;
	/* meta "format" has no checksum: every version must read it as it is. */
	k = (MDB_val){6, "format"};
	rc = mdb_get(s->wtxn, s->meta, &k, &v);
	int fmt = FORMAT_N;
	if (rc == 0 && (fmt = format_number(&v)) != FORMAT_N) {
		if (fmt > FORMAT_N) {
			rc = errf(err, errlen, LINLI_EVERSION,
				  "store: %s has format '%.*s', written by a newer linlid; this "
				  "linlid reads '%s' (and migrates 1 to 4): run the newer linlid, "
				  "or restore a backup this one made",
				  s->data_path, (int)(v.mv_size > 32 ? 32 : v.mv_size),
				  (char *)v.mv_data, STORE_FORMAT);
			goto out;
		}
		if (fmt < 1) {
			char shown[100];
			esc(shown, sizeof shown, v.mv_data, v.mv_size > 32 ? 32 : v.mv_size);
			rc = errf(err, errlen, LINLI_ECORRUPT,
				  "store: %s has format '%s', which no linlid wrote: meta entry "
				  "'format' is damaged; restore a backup",
				  s->data_path, shown);
			goto out;
		}
	} else if (rc && rc != MDB_NOTFOUND)
		goto lmdb;
	bool fresh = rc == MDB_NOTFOUND;
	uint64_t kept = 0;
	char summary[512] = "", summary3[512] = "";
	if (fmt == 1 && (rc = migrate_1_to_2(s, &kept, summary, sizeof summary)))
		goto lmdb;
	if (fmt < 3 && (rc = migrate_2_to_3(s, summary3, sizeof summary3)))
		goto lmdb;
	/* 3 to 4: the change log's tables, made empty above (MDB_CREATE); nothing else moves. */
	if (fresh || fmt != FORMAT_N) {
		v = (MDB_val){strlen(STORE_FORMAT), STORE_FORMAT};
		if ((rc = mdb_put(s->wtxn, s->meta, &k, &v, 0)))
			goto lmdb;
	}
	if ((rc = node_id(s)))
		goto lmdb;
	uint64_t seeded = 0;
	if ((rc = down_seed(s, &seeded)))
		goto lmdb;
	for (int i = 0; i < CAT(s)->n_datasets; i++) {
		char sig[1024], key[CAT_NAME_MAX + 8];
		ix_signature(&CAT(s)->datasets[i], sig, sizeof sig);
		int kn = snprintf(key, sizeof key, "ixsig/%s", CAT(s)->datasets[i].name);
		k = (MDB_val){(size_t)kn, key};
		rc = sget(s->wtxn, s->meta, T_META, &k, &v, NULL);
		if (rc && rc != MDB_NOTFOUND && rc != SUM_BAD) /* damaged: rebuilt below */
			goto lmdb;
		if (rc == 0 && v.mv_size == strlen(sig) && memcmp(v.mv_data, sig, v.mv_size) == 0)
			continue;
		uint64_t n = 0;
		if ((rc = rebuild_index(s, &CAT(s)->datasets[i], &n)))
			goto lmdb;
		if (n)
			log_info("store", "rebuilt the indexes of %s (%llu records)",
				 CAT(s)->datasets[i].name, (unsigned long long)n);
		if ((rc = sput(s->wtxn, s->meta, T_META, &k, sig, strlen(sig), 0)))
			goto lmdb;
	}
	rc = mdb_txn_commit(s->wtxn);
	s->wtxn = NULL;
	if (rc)
		goto lmdb;
	if (fmt == 1)
		log_info("store",
			 "%s: migrated from format 'linli-store 1' to 'linli-store 2' (ids unique "
			 "per dataset and scope) in one transaction: %llu records kept%s%s%s, the "
			 "ids table rebuilt from them",
			 s->data_path, (unsigned long long)kept, summary[0] ? " (" : "", summary,
			 summary[0] ? ")" : "");
	if (fmt < 3)
		log_info("store",
			 "%s: migrated from format 'linli-store 2' to 'linli-store 3' (a checksum "
			 "on every entry) in the same transaction: %s",
			 s->data_path, summary3);
	if (fmt < 4)
		log_info("store",
			 "%s: migrated from format 'linli-store %d' to 'linli-store 4' (the "
			 "federation's change log: tables outbox, fedin and fedq, empty) in the same "
			 "transaction",
			 s->data_path, fmt < 3 ? 3 : fmt);
	if (fmt < FORMAT_N)
		log_info("store",
			 "%s: migrated from format 'linli-store %d' to '%s' (the federation's down "
			 "log: tables downlog and downkey) in the same transaction",
			 s->data_path, fmt < 4 ? 4 : fmt, STORE_FORMAT);
	if (seeded)
		log_info("store", "%s: the down log holds the %llu records of the datasets that go "
			 "down, for the children", s->data_path, (unsigned long long)seeded);
	return 0;
lmdb:
	if (rc == MDB_MAP_FULL) {
		if (s->wtxn)
			mdb_txn_abort(s->wtxn);
		s->wtxn = NULL;
		return MDB_MAP_FULL; /* the caller grows and retries */
	}
	rc = rc == MDB_INCOMPATIBLE
		 ? errf(err, errlen, LINLI_ECORRUPT,
			"store: %s is an LMDB file but not a linli store", s->data_path)
		 : lmdb_fail(s, rc, "opening", err, errlen);
out:
	if (s->wtxn)
		mdb_txn_abort(s->wtxn);
	s->wtxn = NULL;
	return rc;
}

/*
 * Before LMDB sees data.mdb: an empty file is refused (LMDB would silently
 * start a new store in it) and the first meta page must carry LMDB's magic.
 */
static int precheck(struct store *s, char *err, size_t errlen)
{
	int fd = open(s->data_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		return errf(err, errlen, LINLI_EIO, "store: cannot open %s: %s", s->data_path,
			    strerror(errno));
	}
	unsigned char hdr[24];
	ssize_t n = read(fd, hdr, sizeof hdr);
	close(fd);
	if (n == 0)
		return errf(err, errlen, LINLI_ECORRUPT,
			    "store: %s is empty (0 bytes): its data is gone; restore a backup, "
			    "or remove it to start an empty store",
			    s->data_path);
	uint32_t magic = 0;
	if (n == (ssize_t)sizeof hdr)
		memcpy(&magic, hdr + 16, 4);
	if (magic != 0xBEEFC0DE)
		return errf(err, errlen, LINLI_ECORRUPT,
			    "store: %s is not an LMDB data file (bad magic); refusing to start on "
			    "it",
			    s->data_path);
	return 0;
}

/* After open: the file must hold every page its meta page says is in use. */
static int check_size(struct store *s, char *err, size_t errlen)
{
	struct stat st;
	if (stat(s->data_path, &st) != 0)
		return errf(err, errlen, LINLI_EIO, "store: cannot stat %s: %s", s->data_path,
			    strerror(errno));
	uint64_t need = used_bytes(s);
	if ((uint64_t)st.st_size < need)
		return errf(err, errlen, LINLI_ECORRUPT,
			    "store: %s is truncated: %llu bytes, but its last page ends at %llu; "
			    "restore a backup",
			    s->data_path, (unsigned long long)st.st_size, (unsigned long long)need);
	return 0;
}

/* The last key of table dbi as a sequence (8 bytes big-endian), 0 when empty. */
static int last_seq(MDB_txn *txn, MDB_dbi dbi, uint64_t *seq)
{
	MDB_cursor *c;
	MDB_val k, v;
	*seq = 0;
	int rc = mdb_cursor_open(txn, dbi, &c);
	if (rc)
		return rc;
	rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
	mdb_cursor_close(c);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc == 0 && k.mv_size == 8)
		for (int i = 0; i < 8; i++)
			*seq = *seq << 8 | ((const uint8_t *)k.mv_data)[i];
	return rc ? rc : k.mv_size == 8 ? 0 : MDB_CORRUPTED;
}

/*
 * The records a dataset going down held before the down log knew it (a store of an earlier
 * format, federation configured since, a dataset marked `down` since): each entered once
 * (own origin), in the open's transaction; meta "downseed/NAME" says it was done.
 */
static int down_seed(struct store *s, uint64_t *seeded)
{
	if (!s->o.origin)
		return 0;
	uint64_t dlast = 0;
	int rc = last_seq(s->wtxn, s->downlog, &dlast);
	MDB_val mk = {9, "down_last"}, mv;
	if (!rc && (rc = sget(s->wtxn, s->meta, T_META, &mk, &mv, NULL)) == 0 && mv.mv_size == 8) {
		uint64_t m;
		memcpy(&m, mv.mv_data, 8);
		if (m > dlast)
			dlast = m;
	}
	if (rc == MDB_NOTFOUND || rc == SUM_BAD)
		rc = 0;
	if (rc)
		return rc;
	uint64_t start = dlast;
	int64_t now = wall_ms();
	for (int i = 0; i < CAT(s)->n_datasets; i++) {
		const struct cat_dataset *d = &CAT(s)->datasets[i];
		if (!d->down)
			continue;
		char key[CAT_NAME_MAX + 16];
		int kn = snprintf(key, sizeof key, "downseed/%s", d->name);
		MDB_val k = {(size_t)kn, key}, v;
		rc = sget(s->wtxn, s->meta, T_META, &k, &v, NULL);
		if (rc == 0)
			continue;
		if (rc != MDB_NOTFOUND && rc != SUM_BAD)
			return rc;
		struct kbuf prefix;
		rec_prefix(&prefix, d->name, NULL);
		MDB_cursor *c;
		if ((rc = mdb_cursor_open(s->wtxn, s->rec, &c)))
			return rc;
		/* the down log's tables are written while this cursor walks the records */
		MDB_val rk = {prefix.n, prefix.b}, rv;
		for (rc = mdb_cursor_get(c, &rk, &rv, MDB_SET_RANGE); rc == 0;
		     rc = mdb_cursor_get(c, &rk, &rv, MDB_NEXT)) {
			if (rk.mv_size < prefix.n || memcmp(rk.mv_data, prefix.b, prefix.n))
				break;
			char scope[SCOPE_MAX + 1], id[STORE_ID_MAX + 1];
			if (!split_tail((const char *)rk.mv_data + prefix.n, rk.mv_size - prefix.n,
					scope, id) || sum_chk(T_REC, &rk, &rv, NULL))
				continue; /* store verify names it */
			uint64_t seq = ++dlast;
			msgpack_packer pk;
			s->obuf.size = 0;
			msgpack_packer_init(&pk, &s->obuf, msgpack_sbuffer_write);
			msgpack_pack_map(&pk, 7);
			mp_kv_str(&pk, "o", s->o.origin);
			mp_kv_uint(&pk, "q", seq);
			mp_kv_str(&pk, "d", d->name);
			mp_kv_str(&pk, "s", scope);
			mp_kv_str(&pk, "i", id);
			mp_kv_int(&pk, "t", now);
			mp_str(&pk, "r");
			msgpack_pack_bin(&pk, rv.mv_size);
			msgpack_pack_bin_body(&pk, rv.mv_data, rv.mv_size);
			if ((rc = down_put(s, d->name, scope, id, seq)))
				break;
		}
		mdb_cursor_close(c);
		if (rc && rc != MDB_NOTFOUND)
			return rc;
		if ((rc = sput(s->wtxn, s->meta, T_META, &k, "1", 1, 0)))
			return rc;
	}
	*seeded = dlast - start;
	if (dlast != start)
		return sput(s->wtxn, s->meta, T_META, &mk, &dlast, sizeof dlast, 0);
	return 0;
}

/* Where the change log stands: its last sequence, what was released, the quarantine's last. */
static int outbox_load(struct store *s, char *err, size_t errlen)
{
	struct rd r;
	int rc = rd_begin(s, &r);
	if (rc)
		return lmdb_fail(s, rc, "reading the change log", err, errlen);
	MDB_val k = {12, "outbox_acked"}, v;
	rc = sget(r.txn, s->meta, T_META, &k, &v, NULL);
	if (rc == 0 && v.mv_size == 8)
		memcpy(&s->out_acked, v.mv_data, 8);
	else if (rc == 0 || rc == SUM_BAD)
		rc = MDB_CORRUPTED;
	if (rc == MDB_NOTFOUND)
		rc = 0;
	if (!rc)
		rc = last_seq(r.txn, s->outbox, &s->out_last);
	if (!rc)
		rc = last_seq(r.txn, s->fedq, &s->fedq_last);
	uint64_t dl = 0;
	if (!rc)
		rc = last_seq(r.txn, s->downlog, &s->down_last);
	if (!rc) {
		k = (MDB_val){9, "down_last"};
		rc = sget(r.txn, s->meta, T_META, &k, &v, NULL);
		if (rc == 0 && v.mv_size == 8)
			memcpy(&dl, v.mv_data, 8);
		else if (rc == 0 || rc == SUM_BAD)
			rc = MDB_CORRUPTED;
		if (rc == MDB_NOTFOUND)
			rc = 0;
		if (dl > s->down_last)
			s->down_last = dl;
	}
	rd_end(s, &r);
	if (rc)
		return lmdb_fail(s, rc, "reading the change log", err, errlen);
	if (s->out_last < s->out_acked) /* everything was released: numbering goes on */
		s->out_last = s->out_acked;
	s->acked_pend = s->out_acked;
	return 0;
}

int store_open(const struct store_opts *o, const struct catalog *cat, struct store **out, char *err,
	       size_t errlen)
{
	*out = NULL;
	if (sodium_init() < 0)
		return errf(err, errlen, LINLI_EIO, "store: libsodium failed to initialise");
	struct store *s = calloc(1, sizeof *s);
	if (!s)
		return errf(err, errlen, LINLI_ENOMEM, "store: out of memory");
	s->o = *o;
	s->cat = catalog_ref(cat);
	pthread_mutex_init(&s->catmu, NULL);
	s->dir = strdup(o->dir);
	s->owner = pthread_self();
	s->map_size = o->map_size ? o->map_size : (size_t)64 << 20;
	atomic_init(&s->group_max, STORE_GROUP_MAX_DEFAULT);
	atomic_init(&s->group_ms, STORE_GROUP_MS_DEFAULT);
	s->delta = calloc((size_t)cat->n_datasets + 1, sizeof *s->delta);
	s->dswrites = calloc((size_t)cat->n_datasets + 1, sizeof *s->dswrites);
	s->watched = calloc((size_t)cat->n_datasets + 1, sizeof *s->watched);
	pthread_rwlock_init(&s->maplock, NULL);
	pthread_mutex_init(&s->bmu, NULL);
	msgpack_zone_init(&s->zone, 8192);
	msgpack_zone_init(&s->azone, 8192);
	msgpack_sbuffer_init(&s->norm);
	msgpack_sbuffer_init(&s->upd);
	msgpack_sbuffer_init(&s->old);
	msgpack_sbuffer_init(&s->obuf);
	snprintf(s->data_path, sizeof s->data_path, "%s/data.mdb", o->dir);
	int rc;
	if (!s->dir || !s->delta || !s->dswrites) {
		rc = errf(err, errlen, LINLI_ENOMEM, "store: out of memory");
		goto fail;
	}
	if ((rc = precheck(s, err, errlen)))
		goto fail;
	if ((rc = mdb_env_create(&s->env))) {
		rc = lmdb_fail(s, rc, "creating the environment", err, errlen);
		goto fail;
	}
	mdb_env_set_maxdbs(s->env, 16);
	mdb_env_set_mapsize(s->env, s->map_size);
	rc = mdb_env_open(s->env, o->dir, o->sync ? 0 : MDB_NOSYNC, 0640);
	if (rc) {
		if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH || rc == MDB_CORRUPTED ||
		    rc == MDB_PAGE_NOTFOUND || rc == MDB_PAGE_FULL)
			rc = errf(err, errlen, LINLI_ECORRUPT,
				  "store: %s (or lock.mdb) is damaged or truncated: %s: %s; "
				  "refusing to start on it; restore a backup (README: recovering a "
				  "damaged store)",
				  s->data_path, mdb_strerror(rc), lmdb_words(rc));
		else
			rc = errf(err, errlen, disk_full(rc) ? LINLI_EFULL : LINLI_EIO,
				  "store: cannot open %s: %s (%s)", s->data_path, mdb_strerror(rc),
				  lmdb_words(rc));
		goto fail;
	}
	if (mdb_env_get_maxkeysize(s->env) < KEY_MAX) {
		rc = errf(err, errlen, LINLI_ENOTSUP, "store: LMDB's key limit %d is below %d",
			  mdb_env_get_maxkeysize(s->env), KEY_MAX);
		goto fail;
	}
	MDB_stat st;
	MDB_envinfo info;
	mdb_env_stat(s->env, &st);
	mdb_env_info(s->env, &info);
	s->psize = st.ms_psize;
	s->map_size = info.me_mapsize;
	if ((rc = check_size(s, err, errlen)))
		goto fail;
	int dead = 0;
	mdb_reader_check(s->env, &dead);
	while ((rc = prepare(s, err, errlen)) == MDB_MAP_FULL)
		if ((rc = grow(s, err, errlen)))
			goto fail;
	if (rc || (rc = outbox_load(s, err, errlen)))
		goto fail;
	*out = s;
	return 0;
fail:
	store_close(s);
	return rc;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	if (s->wtxn)
		store_batch_end(s);
	pthread_mutex_lock(&s->bmu);
	if (s->backup_joinable) {
		pthread_join(s->backup_thread, NULL);
		s->backup_joinable = false;
	}
	if (s->verify_joinable) {
		int pid = atomic_load(&s->verify_pid);
		if (pid > 0)
			kill(pid, SIGKILL); /* its walk is not worth a slow stop */
		pthread_join(s->verify_thread, NULL);
		s->verify_joinable = false;
	}
	pthread_mutex_unlock(&s->bmu);
	if (s->rtxn)
		mdb_txn_abort(s->rtxn);
	if (s->env)
		mdb_env_close(s->env);
	free(s->arena);
	free(s->ops);
	free(s->waiters);
	free(s->delta);
	free(s->dswrites);
	free(s->watched);
	free(s->watchers);
	for (size_t i = 0; i < s->n_pend; i++)
		free(s->pend[i].scope_id);
	free(s->pend);
	free(s->dir);
	msgpack_zone_destroy(&s->zone);
	msgpack_zone_destroy(&s->azone);
	msgpack_sbuffer_destroy(&s->norm);
	msgpack_sbuffer_destroy(&s->upd);
	msgpack_sbuffer_destroy(&s->old);
	msgpack_sbuffer_destroy(&s->obuf);
	pthread_rwlock_destroy(&s->maplock);
	pthread_mutex_destroy(&s->bmu);
	pthread_mutex_destroy(&s->catmu);
	catalog_unref(s->cat);
	free(s);
}

/* ---- swapping the catalog ---- */

/*
 * The indexes of `next` in s->wtxn: a dataset whose index signature is new or changed has
 * its index entries dropped and built again from its records (a new dataset has none: its
 * indexes start empty). Returns an LMDB code; *built says how many datasets were rebuilt.
 */
static int swap_indexes(struct store *s, const struct catalog *next, int *built)
{
	*built = 0;
	for (int i = 0; i < next->n_datasets; i++) {
		const struct cat_dataset *d = &next->datasets[i];
		char sig[1024], key[CAT_NAME_MAX + 8];
		ix_signature(d, sig, sizeof sig);
		int kn = snprintf(key, sizeof key, "ixsig/%s", d->name);
		MDB_val k = {(size_t)kn, key}, v;
		int rc = sget(s->wtxn, s->meta, T_META, &k, &v, NULL);
		if (rc && rc != MDB_NOTFOUND && rc != SUM_BAD)
			return rc;
		if (rc == 0 && v.mv_size == strlen(sig) && memcmp(v.mv_data, sig, v.mv_size) == 0)
			continue;
		uint64_t n = 0;
		if ((rc = rebuild_index(s, d, &n)))
			return rc;
		if (n)
			log_info("store", "built the indexes of %s (%llu records)", d->name,
				 (unsigned long long)n);
		if ((rc = sput(s->wtxn, s->meta, T_META, &k, sig, strlen(sig), 0)))
			return rc;
		(*built)++;
	}
	return 0;
}

/*
 * Commit what is pending before a swap, migration or purge writes in a raw
 * transaction of its own: a commit waiter may write and so open the next batch
 * (a Lua store_on_commit, the journal, the HAL), which must be committed the
 * normal way too (change logs, counts, watches), never by the raw one.
 */
static int batches_drain(struct store *s)
{
	for (int i = 0; s->wtxn && i < 64; i++) {
		int rc = store_batch_end(s);
		if (rc)
			return rc;
	}
	return s->wtxn ? LINLI_ESTATE : 0;
}

int store_swap_catalog(struct store *s, const struct catalog *next, char *err, size_t errlen)
{
	int rc = owner_only(s, err, errlen);
	if (rc)
		return rc;
	if (!next)
		return errf(err, errlen, LINLI_EINVAL, "store: no catalog to swap in");
	if (s->delivering)
		return errf(err, errlen, LINLI_ESTATE,
			    "store: the catalog cannot be swapped from a change notice");
	if (next == s->cat)
		return 0;
	if ((rc = batches_drain(s)))
		return errf(err, errlen, rc,
			    "store: the pending writes failed to commit; the catalog was not swapped");
	const struct catalog *old = s->cat;
	size_t n = (size_t)next->n_datasets;
	int *map = malloc(((size_t)old->n_datasets + 1) * sizeof *map);
	int64_t *delta = calloc(n + 1, sizeof *delta);
	uint64_t *dsw = calloc(n + 1, sizeof *dsw);
	uint32_t *watched = calloc(n + 1, sizeof *watched);
	if (!map || !delta || !dsw || !watched) {
		rc = errf(err, errlen, LINLI_ENOMEM, "store: out of memory");
		goto out;
	}
	/* What was dataset i is next's map[i] (-1: gone from the catalog; its records stay). */
	for (int i = 0; i < old->n_datasets; i++) {
		const struct cat_dataset *d = catalog_dataset(next, old->datasets[i].name);
		map[i] = d ? (int)(d - next->datasets) : -1;
		if (d)
			dsw[map[i]] = s->dswrites[i];
	}
	dsw[n] = s->dswrites[old->n_datasets]; /* the journal's */
	int built = 0;
	for (;;) {
		if ((rc = batch_begin(s, err, errlen)))
			goto out;
		rc = swap_indexes(s, next, &built);
		if (!rc) {
			rc = mdb_txn_commit(s->wtxn);
			s->wtxn = NULL;
		} else {
			mdb_txn_abort(s->wtxn);
			s->wtxn = NULL;
		}
		if (rc != MDB_MAP_FULL)
			break;
		if ((rc = grow(s, err, errlen)))
			goto out;
	}
	if (rc) {
		rc = lmdb_fail(s, rc, "building the indexes of the new catalog", err, errlen);
		goto out;
	}
	/* The watchers and the committed changes not yet delivered follow their datasets; those
	   of a dataset gone from the catalog are dropped. */
	size_t j = 0;
	for (size_t i = 0; i < s->n_watchers; i++) {
		struct watcher w = s->watchers[i];
		if (!w.fn || map[w.ds] < 0)
			continue;
		w.ds = map[w.ds];
		watched[w.ds]++;
		s->watchers[j++] = w;
	}
	s->n_watchers = j;
	s->n_watched = 0;
	for (size_t i = 0; i < n; i++)
		s->n_watched += watched[i] > 0;
	j = 0;
	for (size_t i = 0; i < s->n_pend; i++) {
		struct pchange p = s->pend[i];
		if (map[p.ds] < 0) {
			free(p.scope_id);
			continue;
		}
		p.ds = (uint16_t)map[p.ds];
		s->pend[j++] = p;
	}
	s->n_pend = j;
	free(s->delta);
	free(s->dswrites);
	free(s->watched);
	s->delta = delta;
	s->dswrites = dsw;
	s->watched = watched;
	delta = NULL;
	dsw = NULL;
	watched = NULL;
	pthread_mutex_lock(&s->catmu);
	s->cat = catalog_ref(next);
	pthread_mutex_unlock(&s->catmu);
	log_info("store", "catalog version %llu in use (%d datasets, %d indexes built)",
		 (unsigned long long)next->version, next->n_datasets, built);
	catalog_unref(old); /* freed here unless a reader still holds it */
out:
	free(map);
	free(delta);
	free(dsw);
	free(watched);
	return rc;
}

/* Delete every entry of table dbi whose key starts with p (inside s->wtxn); counts them. */
static int drop_prefix(struct store *s, MDB_dbi dbi, const struct kbuf *p, uint64_t *n)
{
	MDB_cursor *c;
	int rc = mdb_cursor_open(s->wtxn, dbi, &c);
	if (rc)
		return rc;
	MDB_val key, val;
	for (;;) {
		key = (MDB_val){p->n, (void *)p->b};
		rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
		if (rc || key.mv_size < p->n || memcmp(key.mv_data, p->b, p->n) != 0)
			break;
		if ((rc = mdb_cursor_del(c, 0)))
			break;
		if (n)
			(*n)++;
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int store_purge_dataset(struct store *s, const char *name, uint64_t *records, char *err,
			size_t errlen)
{
	int rc = owner_only(s, err, errlen);
	if (rc)
		return rc;
	*records = 0;
	if (!name || !*name || strlen(name) > CAT_NAME_MAX)
		return errf(err, errlen, LINLI_EINVAL, "store: no dataset named to purge");
	if ((rc = batches_drain(s)))
		return errf(err, errlen, rc, "store: the pending writes failed to commit; %s was "
					     "not purged", name);
	if ((rc = batch_begin(s, err, errlen)))
		return rc;
	struct kbuf p;
	rec_prefix(&p, name, NULL);
	uint64_t n = 0;
	rc = drop_prefix(s, s->rec, &p, &n);
	if (!rc)
		rc = drop_prefix(s, s->ids, &p, NULL);
	if (!rc)
		rc = drop_prefix(s, s->idx, &p, NULL);
	static const char *const metas[] = {"count/", "ixsig/", "downseed/"};
	for (size_t i = 0; !rc && i < sizeof metas / sizeof metas[0]; i++) {
		char key[CAT_NAME_MAX + 16];
		int kn = snprintf(key, sizeof key, "%s%s", metas[i], name);
		MDB_val k = {(size_t)kn, key};
		rc = mdb_del(s->wtxn, s->meta, &k, NULL);
		if (rc == MDB_NOTFOUND)
			rc = 0;
	}
	if (!rc)
		rc = mdb_txn_commit(s->wtxn);
	else
		mdb_txn_abort(s->wtxn);
	s->wtxn = NULL;
	if (rc)
		return lmdb_fail(s, rc, "purging a dataset", err, errlen);
	*records = n;
	log_info("store", "purged dataset %s: %llu records", name, (unsigned long long)n);
	return 0;
}

/* Is map key k a field one of the n migrations names? */
static bool migrated_key(const msgpack_object *k, const struct store_migration *m, int n)
{
	for (int j = 0; j < n; j++)
		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(m[j].field) &&
		    !memcmp(k->via.str.ptr, m[j].field, k->via.str.size))
			return true;
	return false;
}

int store_migrate(struct store *s, const struct cat_dataset *to, const struct store_migration *m,
		  int n, uint64_t *records, char *err, size_t errlen)
{
	int rc = owner_only(s, err, errlen);
	if (rc)
		return rc;
	*records = 0;
	if ((rc = batches_drain(s)))
		return errf(err, errlen, rc, "store: the pending writes failed to commit; %s was "
					     "not migrated", to->name);
	if ((rc = batch_begin(s, err, errlen)))
		return rc;
	struct kbuf p;
	rec_prefix(&p, to->name, NULL);
	MDB_cursor *c = NULL;
	msgpack_sbuffer nb;
	msgpack_sbuffer_init(&nb);
	uint64_t count = 0;
	int lrc = mdb_cursor_open(s->wtxn, s->rec, &c);
	MDB_val key = {p.n, p.b}, val;
	char kcopy[KEY_MAX + 1];
	if (!lrc)
		lrc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
	while (!lrc && !rc && key.mv_size >= p.n && memcmp(key.mv_data, p.b, p.n) == 0) {
		char scope[SCOPE_MAX + 1], id[STORE_ID_MAX + 1];
		msgpack_object o;
		msgpack_zone_clear(&s->azone);
		if ((lrc = sum_chk(T_REC, &key, &val, NULL)))
			break;
		if (!split_tail((const char *)key.mv_data + p.n, key.mv_size - p.n, scope, id) ||
		    !unpack_old(s, &val, &o) || o.type != MSGPACK_OBJECT_MAP) {
			lrc = MDB_CORRUPTED;
			break;
		}
		/* the record without the fields migrated, then those given a value */
		nb.size = 0;
		msgpack_packer pk;
		msgpack_packer_init(&pk, &nb, msgpack_sbuffer_write);
		uint32_t keep = 0, add = 0;
		for (int j = 0; j < n; j++)
			add += m[j].value != NULL;
		for (uint32_t i = 0; i < o.via.map.size; i++) {
			keep += !migrated_key(&o.via.map.ptr[i].key, m, n);
		}
		msgpack_pack_map(&pk, keep + add);
		for (uint32_t i = 0; i < o.via.map.size; i++) {
			const msgpack_object *k = &o.via.map.ptr[i].key;
			bool hit = migrated_key(k, m, n);
			if (!hit) {
				msgpack_pack_object(&pk, *k);
				msgpack_pack_object(&pk, o.via.map.ptr[i].val);
			}
		}
		for (int j = 0; j < n; j++)
			if (m[j].value) {
				mp_str(&pk, m[j].field);
				msgpack_sbuffer_write(&nb, m[j].value, m[j].len);
			}
		char why[512];
		if ((rc = prepare_record(s, to, nb.data, nb.size, why, sizeof why))) {
			errf(err, errlen, rc, "%s: record %s at %s does not fit the new schema: %s",
			     to->name, id, scope, why);
			break;
		}
		memcpy(kcopy, key.mv_data, key.mv_size);
		MDB_val k2 = {key.mv_size, kcopy};
		if ((lrc = sput(s->wtxn, s->rec, T_REC, &k2, s->norm.data, s->norm.size, 0)))
			break;
		count++;
		/* a put may move the cursor's page: find the key again, then the next */
		key = k2;
		if ((lrc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE)) == 0)
			lrc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
	}
	if (!lrc || lrc == MDB_NOTFOUND)
		lrc = 0;
	if (c)
		mdb_cursor_close(c);
	msgpack_sbuffer_destroy(&nb);
	if (!rc && !lrc)
		lrc = mdb_txn_commit(s->wtxn);
	else
		mdb_txn_abort(s->wtxn);
	s->wtxn = NULL;
	if (rc)
		return rc;
	if (lrc)
		return lmdb_fail(s, lrc, "migrating a dataset", err, errlen);
	*records = count;
	log_info("store", "migrated dataset %s: %llu records", to->name, (unsigned long long)count);
	return 0;
}

const struct catalog *store_catalog(struct store *s)
{
	if (pthread_equal(pthread_self(), s->owner))
		return catalog_ref(s->cat);
	for (int i = 0; i < PIN_SLOTS; i++)
		if (pin_tl[i].s == s)
			return catalog_ref(pin_tl[i].cat);
	pthread_mutex_lock(&s->catmu);
	const struct catalog *c = catalog_ref(s->cat);
	pthread_mutex_unlock(&s->catmu);
	return c;
}

/* ---- the event journal ---- */

int store_journal_append(struct store *s, uint64_t seq, const void *ev, size_t len, char *err,
			 size_t errlen)
{
	int rc = owner_only(s, err, errlen);
	if (rc)
		return rc;
	if (len > STORE_MAX_RECORD)
		return errf(err, errlen, LINLI_E2BIG, "journal: event %llu of %zu bytes is too large",
			    (unsigned long long)seq, len);
	if ((rc = batch_begin(s, err, errlen)))
		return rc;
	char id[24];
	snprintf(id, sizeof id, "%016llx", (unsigned long long)seq);
	return apply_new(s, false, APPLY_NEW, DS_JOURNAL, "", id, ev, len, err, errlen);
}

uint64_t store_journal_last(struct store *s)
{
	struct rd r;
	uint64_t seq = 0;
	if (rd_begin(s, &r))
		return 0;
	MDB_cursor *c;
	MDB_val k, v;
	if (mdb_cursor_open(r.txn, s->journal, &c) == 0) {
		if (mdb_cursor_get(c, &k, &v, MDB_LAST) == 0 && k.mv_size == 8)
			for (int i = 0; i < 8; i++)
				seq = seq << 8 | ((const unsigned char *)k.mv_data)[i];
		mdb_cursor_close(c);
	}
	rd_end(s, &r);
	return seq;
}

int store_journal_scan(struct store *s, uint64_t after, size_t limit,
		       int (*fn)(void *ud, uint64_t seq, const void *ev, size_t len), void *ud,
		       char *err, size_t errlen)
{
	struct rd r;
	int rc = rd_begin(s, &r);
	if (rc)
		return lmdb_fail(s, rc, "reading the journal", err, errlen);
	MDB_cursor *c;
	if ((rc = mdb_cursor_open(r.txn, s->journal, &c))) {
		rd_end(s, &r);
		return lmdb_fail(s, rc, "reading the journal", err, errlen);
	}
	unsigned char kb[8];
	journal_key(after + 1, kb);
	MDB_val k = {8, kb}, v;
	int n = 0;
	struct badkey bad;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0 && (size_t)n < limit;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if ((rc = sum_chk(T_JOURNAL, &k, &v, &bad)))
			break;
		uint64_t seq = 0;
		for (int i = 0; i < 8 && k.mv_size == 8; i++)
			seq = seq << 8 | ((const unsigned char *)k.mv_data)[i];
		n++;
		if (fn(ud, seq, v.mv_data, v.mv_size))
			break;
	}
	mdb_cursor_close(c);
	rd_end(s, &r);
	if (rc == SUM_BAD)
		return damaged(s, &bad, err, errlen);
	if (rc && rc != MDB_NOTFOUND && (size_t)n < limit)
		return lmdb_fail(s, rc, "reading the journal", err, errlen);
	return n;
}

/* ---- retention (host/retention.c): trimming and figures ---- */

int store_journal_trim(struct store *s, uint64_t upto, size_t max, char *err, size_t errlen)
{
	int rc = owner_only(s, err, errlen);
	if (rc)
		return rc;
	/* Collect the seqs first: the deletes run in the write transaction. */
	uint64_t seqs[1024];
	if (max > sizeof seqs / sizeof seqs[0])
		max = sizeof seqs / sizeof seqs[0];
	struct rd r;
	if ((rc = rd_begin(s, &r)))
		return lmdb_fail(s, rc, "reading the journal", err, errlen);
	MDB_cursor *c;
	size_t n = 0;
	if ((rc = mdb_cursor_open(r.txn, s->journal, &c)) == 0) {
		MDB_val k, v;
		for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && n < max;
		     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
			uint64_t seq = 0;
			for (int i = 0; i < 8 && k.mv_size == 8; i++)
				seq = seq << 8 | ((const unsigned char *)k.mv_data)[i];
			if (seq > upto)
				break;
			seqs[n++] = seq;
		}
		mdb_cursor_close(c);
	}
	rd_end(s, &r);
	if (rc && rc != MDB_NOTFOUND && n < max)
		return lmdb_fail(s, rc, "reading the journal", err, errlen);
	if (n && (rc = batch_begin(s, err, errlen)))
		return rc;
	for (size_t i = 0; i < n; i++) {
		char id[24];
		snprintf(id, sizeof id, "%016llx", (unsigned long long)seqs[i]);
		if ((rc = apply_new(s, true, APPLY_REPLACE, DS_JOURNAL, "", id, NULL, 0, err,
				    errlen)))
			return rc;
	}
	return (int)n;
}

int store_journal_info(struct store *s, struct store_journal_info *ji)
{
	PIN(s);
	memset(ji, 0, sizeof *ji);
	struct rd r;
	if (rd_begin(s, &r))
		return LINLI_EIO;
	MDB_stat ms;
	if (mdb_stat(r.txn, s->journal, &ms) == 0) {
		ji->entries = ms.ms_entries;
		ji->bytes = (ms.ms_branch_pages + ms.ms_leaf_pages + ms.ms_overflow_pages) *
			    (uint64_t)ms.ms_psize;
	}
	MDB_cursor *c;
	MDB_val k, v;
	if (mdb_cursor_open(r.txn, s->journal, &c) == 0) {
		uint64_t *ends[2] = {&ji->first, &ji->last};
		MDB_cursor_op ops[2] = {MDB_FIRST, MDB_LAST};
		for (int e = 0; e < 2; e++)
			if (mdb_cursor_get(c, &k, &v, ops[e]) == 0 && k.mv_size == 8)
				for (int i = 0; i < 8; i++)
					*ends[e] =
					    *ends[e] << 8 | ((const unsigned char *)k.mv_data)[i];
		mdb_cursor_close(c);
	}
	ji->writes = on_owner(s) ? s->dswrites[CAT(s)->n_datasets] : 0;
	rd_end(s, &r);
	return 0;
}

/* ---- the change log and what federation applies (see store.h) ---- */

static uint64_t be_seq(const MDB_val *k)
{
	uint64_t v = 0;
	for (size_t i = 0; i < 8 && i < k->mv_size; i++)
		v = v << 8 | ((const uint8_t *)k->mv_data)[i];
	return v;
}

/* Entries of a sequence-keyed table after `after`, in order, at most max. */
static int seq_read(struct store *s, MDB_dbi dbi, enum tab t, uint64_t after, size_t max,
		    store_seq_fn fn, void *ud, char *err, size_t errlen)
{
	struct rd r;
	int rc = rd_begin(s, &r);
	if (rc)
		return lmdb_fail(s, rc, "reading the change log", err, errlen);
	MDB_cursor *c;
	if ((rc = mdb_cursor_open(r.txn, dbi, &c))) {
		rd_end(s, &r);
		return lmdb_fail(s, rc, "reading the change log", err, errlen);
	}
	unsigned char kb[8];
	journal_key(after + 1, kb);
	MDB_val k = {8, kb}, v;
	struct badkey bad;
	size_t n = 0;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0 && n < max;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT), n++) {
		if ((rc = sum_chk(t, &k, &v, &bad)))
			break;
		if (fn(ud, be_seq(&k), v.mv_data, v.mv_size))
			break;
	}
	mdb_cursor_close(c);
	rd_end(s, &r);
	if (rc == SUM_BAD)
		return damaged(s, &bad, err, errlen);
	if (rc && rc != MDB_NOTFOUND)
		return lmdb_fail(s, rc, "reading the change log", err, errlen);
	return 0;
}

int store_outbox_read(struct store *s, uint64_t after, size_t max, store_seq_fn fn, void *ud,
		      char *err, size_t errlen)
{
	return seq_read(s, s->outbox, T_OUTBOX, after, max, fn, ud, err, errlen);
}

struct keys {
	uint64_t *v;
	size_t n, cap;
	uint64_t upto;
};

static int collect_key(void *ud, uint64_t seq, const void *val, size_t len)
{
	(void)val, (void)len;
	struct keys *k = ud;
	if (seq > k->upto)
		return 1;
	if (k->n == k->cap) {
		size_t cap = k->cap ? k->cap * 2 : 256;
		uint64_t *v = realloc(k->v, cap * sizeof *v);
		if (!v)
			return 1;
		k->v = v;
		k->cap = cap;
	}
	k->v[k->n++] = seq;
	return 0;
}

static int aux_write(struct store *s, enum tab t, bool del, const char *key, const void *val,
		     size_t len, char *err, size_t errlen)
{
	int rc = owner_only(s, err, errlen);
	if (!rc)
		rc = batch_begin(s, err, errlen);
	return rc ? rc : apply_new(s, del, (enum apply_mode)t, DS_AUX, "", key, val, len, err, errlen);
}

static int seq_write(struct store *s, enum tab t, bool del, uint64_t seq, const void *val,
		     size_t len, char *err, size_t errlen)
{
	char hex[24];
	snprintf(hex, sizeof hex, "%llx", (unsigned long long)seq);
	return aux_write(s, t, del, hex, val, len, err, errlen);
}

int store_outbox_release(struct store *s, uint64_t upto, size_t *released, char *err,
			 size_t errlen)
{
	*released = 0;
	int rc = owner_only(s, err, errlen);
	if (rc)
		return rc;
	if (upto > s->out_last)
		return errf(err, errlen, LINLI_EINVAL,
			    "change log: %llu released, but the last entry is %llu",
			    (unsigned long long)upto, (unsigned long long)s->out_last);
	if (upto <= s->acked_pend)
		return 0;
	struct keys k = {.upto = upto};
	rc = seq_read(s, s->outbox, T_OUTBOX, 0, SIZE_MAX, collect_key, &k, err, errlen);
	for (size_t i = 0; i < k.n && !rc; i++)
		rc = seq_write(s, T_OUTBOX, true, k.v[i], NULL, 0, err, errlen);
	free(k.v);
	if (rc)
		return rc;
	*released = k.n;
	s->acked_pend = upto; /* meta "outbox_acked", written at commit (flush_outbox) */
	return 0;
}

struct kept {
	uint64_t *seq;
	char **val;
	size_t *len, n, cap;
};

static int keep_entry(void *ud, uint64_t seq, const void *val, size_t len)
{
	struct kept *k = ud;
	if (k->n == k->cap) {
		size_t cap = k->cap ? k->cap * 2 : 64;
		uint64_t *sq = realloc(k->seq, cap * sizeof *sq);
		if (sq)
			k->seq = sq;
		char **v = sq ? realloc(k->val, cap * sizeof *v) : NULL;
		if (v)
			k->val = v;
		size_t *l = v ? realloc(k->len, cap * sizeof *l) : NULL;
		if (!l)
			return 1;
		k->len = l;
		k->cap = cap;
	}
	if (!(k->val[k->n] = malloc(len ? len : 1)))
		return 1;
	memcpy(k->val[k->n], val, len);
	k->len[k->n] = len;
	k->seq[k->n++] = seq;
	return 0;
}

int store_outbox_rebase(struct store *s, uint64_t base, size_t *moved, char *err, size_t errlen)
{
	*moved = 0;
	int rc = owner_only(s, err, errlen);
	if (rc || base <= s->out_last)
		return rc;
	struct kept k = {0};
	rc = seq_read(s, s->outbox, T_OUTBOX, 0, SIZE_MAX, keep_entry, &k, err, errlen);
	for (size_t i = 0; i < k.n && !rc; i++)
		rc = seq_write(s, T_OUTBOX, true, k.seq[i], NULL, 0, err, errlen);
	for (size_t i = 0; i < k.n && !rc; i++)
		rc = seq_write(s, T_OUTBOX, false, base + 1 + i, k.val[i], k.len[i], err, errlen);
	for (size_t i = 0; i < k.n; i++)
		free(k.val[i]);
	free(k.seq);
	free(k.val);
	free(k.len);
	if (rc)
		return rc;
	*moved = k.n;
	if (!s->rebased) /* undone if the batch is lost */
		s->out_last_before = s->out_last;
	s->rebased = true;
	s->out_last = base + k.n; /* numbering goes on past them */
	s->acked_pend = base;	  /* meta "outbox_acked": written at the commit */
	return 0;
}

int store_outbox_info(struct store *s, struct store_outbox_info *oi)
{
	memset(oi, 0, sizeof *oi);
	oi->last = s->out_last;
	oi->acked = s->out_acked;
	oi->quarantine_last = s->fedq_last;
	struct rd r;
	if (rd_begin(s, &r))
		return LINLI_EIO;
	MDB_stat ms;
	MDB_dbi dbis[2] = {s->outbox, s->fedq};
	for (int i = 0; i < 2; i++)
		if (mdb_stat(r.txn, dbis[i], &ms) == 0) {
			*(i ? &oi->quarantined : &oi->count) = ms.ms_entries;
			if (!i)
				oi->bytes = (ms.ms_branch_pages + ms.ms_leaf_pages +
					     ms.ms_overflow_pages) * (uint64_t)ms.ms_psize;
		}
	MDB_cursor *c;
	MDB_val k, v;
	if (mdb_cursor_open(r.txn, s->outbox, &c) == 0) {
		if (mdb_cursor_get(c, &k, &v, MDB_FIRST) == 0 && !sum_chk(T_OUTBOX, &k, &v, NULL)) {
			oi->first = be_seq(&k);
			const void *t;
			size_t tl;
			msgpack_unpacked up;
			msgpack_unpacked_init(&up);
			if (mp_map_value(v.mv_data, v.mv_size, "t", &t, &tl) == 0 &&
			    msgpack_unpack_next(&up, t, tl, NULL) == MSGPACK_UNPACK_SUCCESS &&
			    up.data.type == MSGPACK_OBJECT_POSITIVE_INTEGER)
				oi->oldest_ms = (int64_t)up.data.via.u64;
			msgpack_unpacked_destroy(&up);
		}
		mdb_cursor_close(c);
	}
	rd_end(s, &r);
	return 0;
}

int store_down_read(struct store *s, uint64_t after, size_t max, store_seq_fn fn, void *ud,
		    char *err, size_t errlen)
{
	return seq_read(s, s->downlog, T_DOWNLOG, after, max, fn, ud, err, errlen);
}

uint64_t store_down_last(struct store *s)
{
	return s->down_last;
}

int store_down_count(struct store *s, uint64_t *entries)
{
	*entries = 0;
	struct rd r;
	if (rd_begin(s, &r))
		return LINLI_EIO;
	MDB_stat ms;
	if (mdb_stat(r.txn, s->downlog, &ms) == 0)
		*entries = ms.ms_entries;
	rd_end(s, &r);
	return 0;
}

struct tombs {
	struct keys k;
	char **key;
};

static bool str_in(const msgpack_object *o, char *out, size_t n)
{
	if (!o || o->type != MSGPACK_OBJECT_STR || o->via.str.size >= n)
		return false;
	memcpy(out, o->via.str.ptr, o->via.str.size);
	out[o->via.str.size] = '\0';
	return true;
}

/* A deletion up to k.upto: its sequence and its record's key, to be trimmed. */
static int collect_tomb(void *ud, uint64_t seq, const void *val, size_t len)
{
	struct tombs *t = ud;
	if (seq > t->k.upto)
		return 1;
	const void *r;
	size_t rl;
	char d[CAT_NAME_MAX + 1], sc[SCOPE_MAX + 1], id[STORE_ID_MAX + 1];
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	bool tomb = mp_map_value(val, len, "r", &r, &rl) == 0 && rl == 1 &&
		    *(const uint8_t *)r == 0xc0 &&
		    msgpack_unpack_next(&up, val, len, NULL) == MSGPACK_UNPACK_SUCCESS &&
		    up.data.type == MSGPACK_OBJECT_MAP && str_in(mp_get(&up.data, "d"), d, sizeof d) &&
		    str_in(mp_get(&up.data, "s"), sc, sizeof sc) &&
		    str_in(mp_get(&up.data, "i"), id, sizeof id);
	msgpack_unpacked_destroy(&up);
	if (!tomb)
		return 0;
	size_t n = t->k.n;
	if (collect_key(&t->k, seq, val, len) || t->k.n == n)
		return 1;
	char **v = realloc(t->key, t->k.cap * sizeof *v);
	if (!v)
		return 1;
	t->key = v;
	char key[CAT_NAME_MAX + SCOPE_MAX + STORE_ID_MAX + 3];
	down_key(key, sizeof key, d, sc, id);
	if (!(t->key[n] = strdup(key))) {
		t->k.n = n;
		return 1;
	}
	return 0;
}

int store_down_trim(struct store *s, uint64_t upto, size_t *trimmed, char *err, size_t errlen)
{
	*trimmed = 0;
	int rc = owner_only(s, err, errlen);
	if (rc)
		return rc;
	struct tombs t = {.k = {.upto = upto}};
	rc = seq_read(s, s->downlog, T_DOWNLOG, 0, SIZE_MAX, collect_tomb, &t, err, errlen);
	for (size_t i = 0; i < t.k.n && !rc; i++) {
		rc = seq_write(s, T_DOWNLOG, true, t.k.v[i], NULL, 0, err, errlen);
		if (!rc)
			rc = aux_write(s, T_DOWNKEY, true, t.key[i], NULL, 0, err, errlen);
	}
	for (size_t i = 0; i < t.k.n; i++)
		free(t.key[i]);
	free(t.key);
	free(t.k.v);
	if (!rc)
		*trimmed = t.k.n;
	return rc;
}

void store_set_up(struct store *s, bool up)
{
	s->cur_up = up;
}

int store_fed_apply(struct store *s, const char *origin, uint64_t oseq, const char *dataset_name,
		    const char *scope, const char *id, const void *rec, size_t len, char *err,
		    size_t errlen)
{
	PIN(s);
	if (!origin || !*origin || !id)
		return errf(err, errlen, LINLI_EINVAL, "a change needs its origin and id");
	s->cur_origin = origin;
	s->cur_oseq = oseq;
	int rc;
	if (rec)
		rc = store_put(s, dataset_name, scope, id, rec, len, NULL, NULL, err, errlen);
	else if (!dataset(s, dataset_name, err, errlen))
		rc = LINLI_ENOENT;
	else if ((rc = store_delete_at(s, dataset_name, scope, id, err, errlen)) == LINLI_ENOENT)
		rc = 0; /* deleted already, or never came up: the same outcome */
	s->cur_origin = NULL;
	s->cur_oseq = 0;
	s->cur_up = false;
	return rc;
}

int store_fed_mark(struct store *s, const char *from, uint64_t seq, char *err, size_t errlen)
{
	if (!from || !*from)
		return errf(err, errlen, LINLI_EINVAL, "applied: no sender named");
	return aux_write(s, T_FEDIN, false, from, &seq, sizeof seq, err, errlen);
}

uint64_t store_fed_applied(struct store *s, const char *from)
{
	struct rd r;
	uint64_t seq = 0;
	if (!from || !*from || rd_begin(s, &r))
		return 0;
	MDB_val k = {strlen(from), (void *)from}, v;
	if (sget(r.txn, s->fedin, T_FEDIN, &k, &v, NULL) == 0 && v.mv_size == sizeof seq)
		memcpy(&seq, v.mv_data, sizeof seq);
	rd_end(s, &r);
	return seq;
}

int store_fed_list(struct store *s, void (*fn)(void *ud, const char *from, uint64_t seq),
		   void *ud)
{
	struct rd r;
	int rc = rd_begin(s, &r);
	if (rc)
		return LINLI_EIO;
	MDB_cursor *c;
	MDB_val k, v;
	if ((rc = mdb_cursor_open(r.txn, s->fedin, &c)) == 0) {
		for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
		     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
			char from[SCOPE_MAX + 1];
			uint64_t seq;
			if (!k.mv_size || k.mv_size > SCOPE_MAX || sum_chk(T_FEDIN, &k, &v, NULL) ||
			    v.mv_size != sizeof seq)
				continue;
			memcpy(from, k.mv_data, k.mv_size);
			from[k.mv_size] = '\0';
			memcpy(&seq, v.mv_data, sizeof seq);
			fn(ud, from, seq);
		}
		mdb_cursor_close(c);
	}
	rd_end(s, &r);
	return 0;
}

int store_fedq_add(struct store *s, const void *val, size_t len, uint64_t *id, char *err,
		   size_t errlen)
{
	int rc = seq_write(s, T_FEDQ, false, s->fedq_last + 1, val, len, err, errlen);
	if (!rc)
		*id = ++s->fedq_last;
	return rc;
}

int store_fedq_read(struct store *s, uint64_t after, size_t max, store_seq_fn fn, void *ud,
		    char *err, size_t errlen)
{
	return seq_read(s, s->fedq, T_FEDQ, after, max, fn, ud, err, errlen);
}

int store_fedq_del(struct store *s, uint64_t id, char *err, size_t errlen)
{
	return seq_write(s, T_FEDQ, true, id, NULL, 0, err, errlen);
}

uint64_t store_writes(struct store *s, const char *dataset)
{
	PIN(s);
	const struct cat_dataset *ds = catalog_dataset(CAT(s), dataset);
	return ds && on_owner(s) ? s->dswrites[ds - CAT(s)->datasets] : 0;
}

/*
 * The index of an integer or time field orders its entries by value (enc_value:
 * big-endian with the sign bit flipped), so its first keys are the smallest.
 */
int store_scan_by(struct store *s, const char *dataset_name, const char *field, size_t limit,
		  store_row_fn fn, void *ud, char *err, size_t errlen)
{
	PIN(s);
	const struct cat_dataset *ds = dataset(s, dataset_name, err, errlen);
	if (!ds)
		return LINLI_ENOENT;
	const struct cat_field *f = NULL;
	for (int i = 0; i < ds->n_fields; i++)
		if (strcmp(ds->fields[i].name, field) == 0)
			f = &ds->fields[i];
	if (!f || !f->indexed || (f->type != CAT_TIME && f->type != CAT_INTEGER))
		return errf(err, errlen, LINLI_EINVAL,
			    "%s: '%s' is not an indexed integer or time field", ds->name, field);
	struct kbuf prefix;
	prefix.n = 0;
	kstr(&prefix, ds->name);
	kzero(&prefix);
	kstr(&prefix, f->name);
	kzero(&prefix);
	size_t tail_at = prefix.n + 2 + 8; /* the value: a 2-byte length and 8 bytes */
	struct rd r;
	int rc = rd_begin(s, &r);
	if (rc)
		return lmdb_fail(s, rc, "beginning a read", err, errlen);
	MDB_cursor *cur;
	if ((rc = mdb_cursor_open(r.txn, s->idx, &cur))) {
		rd_end(s, &r);
		return lmdb_fail(s, rc, "opening a cursor", err, errlen);
	}
	MDB_val key = {prefix.n, prefix.b}, val;
	int rows = 0;
	struct badkey bad;
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE); rc == 0 && (size_t)rows < limit;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		if (key.mv_size < tail_at || memcmp(key.mv_data, prefix.b, prefix.n) != 0)
			break;
		if ((rc = sum_chk(T_IDX, &key, &val, &bad)))
			break;
		char scope[SCOPE_MAX + 1], id[STORE_ID_MAX + 1];
		if (!split_tail((const char *)key.mv_data + tail_at, key.mv_size - tail_at, scope,
				id)) {
			rc = MDB_CORRUPTED;
			break;
		}
		struct kbuf rk;
		rec_key(&rk, ds->name, scope, id);
		MDB_val rkey = {rk.n, rk.b}, rval;
		if ((rc = sget(r.txn, s->rec, T_REC, &rkey, &rval, &bad))) {
			rc = rc == MDB_NOTFOUND ? MDB_CORRUPTED : rc;
			break;
		}
		struct store_row row = {.id = id,
					.scope = scope,
					.data = rval.mv_data,
					.len = rval.mv_size,
					.key = key.mv_data,
					.key_len = key.mv_size};
		rows++;
		if (fn(ud, &row))
			break;
	}
	mdb_cursor_close(cur);
	rd_end(s, &r);
	if (rc == SUM_BAD)
		return damaged(s, &bad, err, errlen);
	if (rc && rc != MDB_NOTFOUND && (size_t)rows < limit)
		return lmdb_fail(s, rc, "scanning", err, errlen);
	return rows;
}

/* ---- change notices ---- */

int store_watch(struct store *s, const char *dataset_name, store_watch_fn fn, void *ud,
		uint64_t *id, char *err, size_t errlen)
{
	PIN(s);
	if (!on_owner(s) || !fn)
		return errf(err, errlen, LINLI_EINVAL, "store_watch: %s",
			    fn ? "not on the store's thread" : "no callback");
	const struct cat_dataset *ds = dataset(s, dataset_name, err, errlen);
	if (!ds)
		return LINLI_ENOENT;
	int dsi = (int)(ds - CAT(s)->datasets);
	if (s->n_watchers == s->cap_watchers) {
		size_t cap = s->cap_watchers ? s->cap_watchers * 2 : 16;
		struct watcher *v = realloc(s->watchers, cap * sizeof *v);
		if (!v)
			return errf(err, errlen, LINLI_ENOMEM, "store_watch: out of memory");
		s->watchers = v;
		s->cap_watchers = cap;
	}
	s->watchers[s->n_watchers++] =
	    (struct watcher){.id = ++s->next_watch, .from = s->batches, .ds = dsi, .fn = fn, .ud = ud};
	if (s->watched[dsi]++ == 0)
		s->n_watched++;
	*id = s->next_watch;
	return 0;
}

/* Drop the slots of removed watchers (not while delivering: indexes are in use). */
static void watchers_compact(struct store *s)
{
	size_t j = 0;
	for (size_t i = 0; i < s->n_watchers; i++)
		if (s->watchers[i].fn)
			s->watchers[j++] = s->watchers[i];
	s->n_watchers = j;
}

int store_unwatch(struct store *s, uint64_t id)
{
	for (size_t i = 0; i < s->n_watchers; i++) {
		struct watcher *w = &s->watchers[i];
		if (w->id != id || !w->fn)
			continue;
		w->fn = NULL;
		if (--s->watched[w->ds] == 0)
			s->n_watched--;
		if (!s->delivering)
			watchers_compact(s);
		return 0;
	}
	return LINLI_ENOENT;
}

/*
 * Each kept change goes to each watcher of its dataset that was there
 * before its batch committed and did not make it itself (a write from a
 * watcher's own callback is tagged with its id: no watcher hears its own
 * echo, so none loops on it). Writes made by the callbacks go into the
 * next batch; their notices come after that one commits.
 */
void store_changes_deliver(struct store *s)
{
	if (!on_owner(s) || s->delivering || !s->n_pend)
		return;
	struct pchange *pend = s->pend;
	size_t n = s->n_pend;
	s->pend = NULL;
	s->n_pend = s->cap_pend = 0;
	s->delivering++;
	for (size_t i = 0; i < n; i++) {
		const struct pchange *p = &pend[i];
		struct store_change c = {.dataset = CAT(s)->datasets[p->ds].name,
					 .scope = p->scope_id,
					 .id = p->scope_id + strlen(p->scope_id) + 1,
					 .kind = (enum store_change_kind)p->kind};
		/* n_watchers may grow during the loop (realloc): index, never hold pointers. */
		for (size_t j = 0; j < s->n_watchers; j++) {
			struct watcher w = s->watchers[j];
			if (!w.fn || w.ds != p->ds || w.from >= p->batch || w.id == p->writer)
				continue;
			uint64_t prev = s->writer;
			s->writer = w.id;
			w.fn(w.ud, &c);
			s->writer = prev;
		}
		free(p->scope_id);
	}
	free(pend);
	s->delivering--;
	watchers_compact(s);
}

const char *store_change_kind_name(enum store_change_kind k)
{
	return k == STORE_CREATED ? "created" : k == STORE_UPDATED ? "updated" : "deleted";
}

/* ---- verification ----
 *
 * The walk runs in a child process: LMDB trusts its pages, and a damaged
 * branch page can send it reading anywhere, up to a crash. The child opens
 * the file read-only in an environment of its own (beside a running linlid
 * too: it is one more reader), walks every table, and writes its report
 * down a pipe; a child killed by a signal is itself the verdict.
 */

/* One damaged entry: counted, and named while there is room. */
static void vnote(struct store_verify_report *rep, enum tab t, const MDB_val *k, const char *why)
{
	rep->damaged++;
	if (rep->n_named >= STORE_VERIFY_NAMED)
		return;
	char what[400];
	if (k)
		describe(t, k->mv_data, k->mv_size, what, sizeof what);
	else
		snprintf(what, sizeof what, "table %s", tab_names[t]);
	snprintf(rep->named[rep->n_named++], sizeof rep->named[0], "%s: %s", what, why);
}

/* Does entry k of table t name a record (rec key `rk`) that is there? */
static bool vrec_there(MDB_txn *txn, MDB_dbi rec, const struct kbuf *rk)
{
	MDB_val k = {rk->n, (void *)rk->b}, v;
	return mdb_get(txn, rec, &k, &v) == 0;
}

/* The record key an ids or idx key names; false when it does not parse. */
static bool vrec_key(enum tab t, const MDB_val *k, struct kbuf *rk)
{
	const char *p = k->mv_data, *end = p + k->mv_size;
	const char *z1 = memchr(p, '\0', k->mv_size);
	const char *z2 = z1 ? memchr(z1 + 1, '\0', (size_t)(end - z1 - 1)) : NULL;
	char scope[SCOPE_MAX + 1], id[STORE_ID_MAX + 1], ds[CAT_NAME_MAX + 1];
	if (!z1 || !z2 || z1 == p || (size_t)(z1 - p) > CAT_NAME_MAX)
		return false;
	memcpy(ds, p, (size_t)(z1 - p));
	ds[z1 - p] = '\0';
	if (t == T_IDS) {
		size_t il = (size_t)(z2 - z1 - 1), sl = (size_t)(end - z2 - 1);
		if (il == 0 || il > STORE_ID_MAX || sl < 2 || sl - 1 > SCOPE_MAX || end[-1] != '/')
			return false;
		memcpy(id, z1 + 1, il);
		id[il] = '\0';
		memcpy(scope, z2 + 1, sl - 1);
		scope[sl - 1] = '\0';
	} else {
		if (end - z2 < 3)
			return false;
		size_t vl = ((size_t)(uint8_t)z2[1] << 8 | (uint8_t)z2[2]) & 0x7fff;
		const char *tail = z2 + 3 + vl;
		if (tail >= end || !split_tail(tail, (size_t)(end - tail), scope, id))
			return false;
	}
	rec_key(rk, ds, scope, id);
	return true;
}

/* Walk table t, checking every entry; dbis: VERIFY_TABLES's. */
static const enum tab vtabs[STORE_VERIFY_TABLES] = {T_REC,	 T_IDX,	   T_IDS,     T_JOURNAL,
						    T_META,	 T_OUTBOX, T_FEDIN,   T_FEDQ,
						    T_DOWNLOG, T_DOWNKEY};
static void vwalk(MDB_txn *txn, const MDB_dbi *dbis, int ti, bool sums,
		  struct store_verify_report *rep)
{
	const enum tab *tabs = vtabs;
	enum tab t = tabs[ti];
	MDB_cursor *c;
	int rc = mdb_cursor_open(txn, dbis[ti], &c);
	if (rc) {
		vnote(rep, t, NULL, lmdb_words(rc));
		return;
	}
	MDB_val k, v;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		rep->entries[ti]++;
		bool format = t == T_META && k.mv_size == 6 && memcmp(k.mv_data, "format", 6) == 0;
		if (sums && !format && sum_chk(t, &k, &v, NULL)) {
			vnote(rep, t, &k, "its checksum does not match");
			continue;
		}
		struct kbuf rk;
		char why[200];
		if (t == T_REC) {
			const char *p = k.mv_data, *z = memchr(p, '\0', k.mv_size);
			char scope[SCOPE_MAX + 1], id[STORE_ID_MAX + 1], ds[CAT_NAME_MAX + 1];
			if (!z || z == p || (size_t)(z - p) > CAT_NAME_MAX ||
			    !split_tail(z + 1, k.mv_size - (size_t)(z - p) - 1, scope, id)) {
				vnote(rep, t, &k, "its key is not dataset, scope and id");
				continue;
			}
			const uint8_t *b = v.mv_data;
			if (!v.mv_size ||
			    !((b[0] & 0xf0) == 0x80 || b[0] == 0xde || b[0] == 0xdf) ||
			    mp_check(v.mv_data, v.mv_size, MP_MAX_DEPTH, 0, why, sizeof why) != 0) {
				vnote(rep, t, &k, "its value is not one MessagePack map");
				continue;
			}
			memcpy(ds, p, (size_t)(z - p));
			ds[z - p] = '\0';
			ids_key(&rk, ds, id, scope);
			MDB_val ik = {rk.n, rk.b}, iv;
			if (mdb_get(txn, dbis[2], &ik, &iv) != 0)
				vnote(rep, t, &k, "it has no entry in the ids table");
		} else if (t == T_IDS || t == T_IDX) {
			if (!vrec_key(t, &k, &rk))
				vnote(rep, t, &k, "its key does not parse");
			else if (!vrec_there(txn, dbis[0], &rk))
				vnote(rep, t, &k, "it names a record that is not there");
		} else if ((t == T_JOURNAL || t == T_OUTBOX || t == T_FEDQ || t == T_DOWNLOG) &&
			   k.mv_size != 8)
			vnote(rep, t, &k, "its key is not a sequence number");
	}
	mdb_cursor_close(c);
	if (rc != MDB_NOTFOUND) {
		char why[300];
		snprintf(why, sizeof why, "LMDB stopped the walk after %llu entries: %s (%s)",
			 (unsigned long long)rep->entries[ti], mdb_strerror(rc), lmdb_words(rc));
		vnote(rep, t, NULL, why);
	}
}

/* The walk itself (in the child). */
static void verify_walk(const char *dir, struct store_verify_report *rep)
{
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	int rc = mdb_env_create(&env);
	if (rc == 0) {
		mdb_env_set_maxdbs(env, 16);
		rc = mdb_env_open(env, dir, MDB_RDONLY, 0);
	}
	if (rc == 0)
		rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
	if (rc) {
		snprintf(rep->error, sizeof rep->error, "cannot open %s/data.mdb: %s (%s)", dir,
			 mdb_strerror(rc), lmdb_words(rc));
		if (rc != ENOENT && rc != EACCES && rc != ENOMEM)
			rep->damaged++;
		goto out;
	}
	MDB_dbi dbis[STORE_VERIFY_TABLES];
	static const char *const names[] = {"rec",    "idx",   "ids",  "journal", "meta",
					    "outbox", "fedin", "fedq", "downlog", "downkey"};
	int n_tables = STORE_VERIFY_TABLES;
	for (int i = 0; i < n_tables; i++)
		if ((rc = mdb_dbi_open(txn, names[i], 0, &dbis[i]))) {
			if (rc == MDB_NOTFOUND && (i == 5 || i == 8)) { /* before format 4: no
					change log; before 5: no down log */
				n_tables = i;
				break;
			}
			snprintf(rep->error, sizeof rep->error, "%s/data.mdb: table %s: %s (%s)",
				 dir, names[i], mdb_strerror(rc), lmdb_words(rc));
			rep->damaged++;
			goto out;
		}
	MDB_val k = {6, "format"}, v;
	if ((rc = mdb_get(txn, dbis[4], &k, &v)) == 0)
		rep->format = format_number(&v);
	else
		vnote(rep, T_META, &k, rc == MDB_NOTFOUND ? "it is missing" : lmdb_words(rc));
	bool sums = rep->format >= 3 /* checksums since format 3 */;
	if (rep->format > FORMAT_N || (rc == 0 && rep->format < 1)) {
		vnote(rep, T_META, &k,
		      rep->format ? "a newer format: not checked" : "it is damaged");
		goto out;
	}
	rep->checksums = sums;
	if (rep->format >= 4 && n_tables < 8)
		vnote(rep, T_OUTBOX, NULL, "format 4 has a change log: the table is missing");
	else if (rep->format >= 5 && n_tables < STORE_VERIFY_TABLES)
		vnote(rep, T_DOWNLOG, NULL, "format 5 has a down log: the table is missing");
	for (int i = 0; i < n_tables; i++)
		vwalk(txn, dbis, i, sums, rep);
out:
	if (txn)
		mdb_txn_abort(txn);
	if (env)
		mdb_env_close(env);
}

/* Run the walk in a child; *pidp (may be NULL) holds its pid while it runs. */
static int verify_run(const char *dir, struct store_verify_report *rep, atomic_int *pidp)
{
	memset(rep, 0, sizeof *rep);
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/data.mdb", dir);
	struct stat st;
	if (stat(path, &st) != 0) {
		rep->absent = errno == ENOENT;
		snprintf(rep->error, sizeof rep->error, "%s: %s", path, strerror(errno));
		return 0;
	}
	int fds[2];
	if (pipe(fds) != 0)
		return LINLI_EIO;
	pid_t pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return LINLI_EIO;
	}
	if (pid == 0) {
		close(fds[0]);
		struct store_verify_report *r = calloc(1, sizeof *r);
		if (!r)
			_exit(3);
		verify_walk(dir, r);
		const char *p = (const char *)r;
		size_t left = sizeof *r;
		while (left) {
			ssize_t n = write(fds[1], p, left);
			if (n <= 0)
				_exit(2);
			p += n;
			left -= (size_t)n;
		}
		_exit(0);
	}
	close(fds[1]);
	if (pidp)
		atomic_store(pidp, pid);
	size_t got = 0;
	while (got < sizeof *rep) {
		ssize_t n = read(fds[0], (char *)rep + got, sizeof *rep - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fds[0]);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (pidp)
		atomic_store(pidp, 0);
	if (got == sizeof *rep && WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	memset(rep, 0, sizeof *rep);
	rep->damaged = 1;
	if (WIFSIGNALED(status)) {
		rep->crashed = WTERMSIG(status);
		snprintf(rep->error, sizeof rep->error,
			 "the walk of %s crashed (signal %d, %s) inside LMDB: its pages are "
			 "damaged beyond reading",
			 path, rep->crashed, strsignal(rep->crashed));
	} else
		snprintf(rep->error, sizeof rep->error, "the walk of %s ended early (status %d)",
			 path, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	return 0;
}

int store_verify(const char *dir, struct store_verify_report *rep)
{
	return verify_run(dir, rep, NULL);
}

int store_verify_print(const char *dir, const struct store_verify_report *rep, FILE *f)
{
	if (rep->absent) {
		fprintf(f, "%s/data.mdb: no store yet: nothing to verify\n", dir);
		return 0;
	}
	if (rep->format)
		fprintf(f, "%s/data.mdb: format 'linli-store %d'%s\n", dir, rep->format,
			rep->checksums ? ", every checksum checked"
				       : ": no checksums yet (linlid adds them at its next start); "
					 "LMDB's structure and the tables' agreement checked");
	static const char *const what[] = {"records",	    "index entries",	 "id entries",
					   "journal events", "meta entries",	 "change log entries",
					   "origins applied", "quarantined changes", "down log entries",
					   "down log keys"};
	for (int i = 0; i < STORE_VERIFY_TABLES; i++)
		fprintf(f, "%s%llu %s", i ? ", " : "  ", (unsigned long long)rep->entries[i],
			what[i]);
	fprintf(f, "\n");
	if (rep->error[0])
		fprintf(f, "  %s\n", rep->error);
	for (int i = 0; i < rep->n_named; i++)
		fprintf(f, "  damaged: %s\n", rep->named[i]);
	if (!rep->damaged) {
		fprintf(f, "  clean: 0 damaged\n");
		return 0;
	}
	fprintf(f,
		"  DAMAGED: %llu entr%s%s; restore a backup (README: recovering a damaged "
		"store)\n",
		(unsigned long long)rep->damaged, rep->damaged == 1 ? "y" : "ies",
		rep->damaged > (uint64_t)rep->n_named && rep->n_named ? " (the first named above)"
								      : "");
	return 1;
}

int store_verify_cli(const char *dir)
{
	struct store_verify_report *rep = malloc(sizeof *rep);
	if (!rep || store_verify(dir, rep) != 0) {
		fprintf(stderr, "linlid --verify: cannot start the walk of %s: %s\n", dir,
			strerror(errno));
		free(rep);
		return 1;
	}
	int rc = store_verify_print(dir, rep, rep->damaged ? stderr : stdout);
	free(rep);
	return rc;
}

struct verify_job {
	struct store *s;
	store_verify_fn done;
	void *arg;
};

static void *verify_main(void *p)
{
	struct verify_job *j = p;
	struct store_verify_report *rep = calloc(1, sizeof *rep);
	int rc = rep ? verify_run(j->s->dir, rep, &j->s->verify_pid) : LINLI_ENOMEM;
	atomic_store(&j->s->verify_running, false);
	j->done(j->arg, rc, rep);
	free(rep);
	free(j);
	return NULL;
}

int store_verify_start(struct store *s, store_verify_fn done, void *arg, char *err, size_t errlen)
{
	pthread_mutex_lock(&s->bmu);
	if (atomic_load(&s->verify_running)) {
		pthread_mutex_unlock(&s->bmu);
		return errf(err, errlen, LINLI_EBUSY, "store verify: one is running already");
	}
	if (s->verify_joinable) {
		pthread_join(s->verify_thread, NULL);
		s->verify_joinable = false;
	}
	struct verify_job *j = malloc(sizeof *j);
	int rc = 0;
	if (!j)
		rc = errf(err, errlen, LINLI_ENOMEM, "store verify: out of memory");
	else {
		*j = (struct verify_job){s, done, arg};
		atomic_store(&s->verify_running, true);
		if (pthread_create(&s->verify_thread, NULL, verify_main, j) != 0) {
			atomic_store(&s->verify_running, false);
			free(j);
			rc = errf(err, errlen, LINLI_EIO, "store verify: cannot start a thread");
		} else
			s->verify_joinable = true;
	}
	pthread_mutex_unlock(&s->bmu);
	return rc;
}
