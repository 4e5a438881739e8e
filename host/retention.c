/*
 * retention — see retention.h.
 *
 * Each tick (retention.tick_ms) writes the folded audit reads whose window is
 * over, then trims the front of the journal and the oldest audit entries, at
 * most retention.batch deletions each. The deletions join the store's batch
 * like any write, so they commit with it; LMDB puts the freed pages on its
 * free list and the next writes reuse them, so under a steady load the file
 * stops growing once the caps are reached (no long-lived read transaction
 * pins them: the owner's read ends with every batch).
 *
 * Sizes: the journal's is exact (its LMDB table's pages). The audit log
 * shares the record table with every dataset, so its size is estimated:
 * entries times the mean bytes of the entries the last tick read (record,
 * key, the `ids` entry and four index entries).
 *
 * Journal holders: a record of journal_holders (id = the holder's name,
 * scope = its account's node) says "I have read up to seq N": entries after
 * N are never trimmed. A holder that keeps due entries from being trimmed
 * for retention.journal.max_hold is released with an alarm, and trimming
 * goes on. How long it has blocked is counted in memory: a restart starts
 * that clock again (a hold is never cut short, it may last longer).
 */
#include "retention.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "bus.h"
#include "catalog.h"
#include "cmd.h"
#include "journal.h"
#include "kernel.h"
#include "linli/error.h"
#include "log.h"
#include "mp.h"
#include "store.h"
#include "tier_store.h"
#include "util.h"

#define HOLDERS	      "journal_holders"
#define HOLDERS_MAX   1024   /* holders read per tick */
#define TRIM_MAX      1024   /* entries looked at per tick and table */
#define RATE_EVERY_MS 10000  /* a write-counter sample every 10 s ... */
#define RATE_SPAN_MS  300000 /* ... rates over the last 5 minutes */
#define RATE_RING     (RATE_SPAN_MS / RATE_EVERY_MS + 2)
#define ALARM_TOPIC   "alarm/system/retention"

/* The system datasets whose figures `status` shows; the journal comes last. */
static const char *const tracked[] = {"audit",	 "sessions", "accounts",
				      "apikeys", "grants",   HOLDERS};
#define N_TRACKED (sizeof tracked / sizeof tracked[0])

struct sample {
	uint64_t t; /* monotonic ms */
	uint64_t w[N_TRACKED + 1];
};

struct holder {
	char id[STORE_ID_MAX + 1], scope[SCOPE_MAX + 1], by[81];
	uint64_t seq;
	int64_t updated;
	uint64_t blocking_since; /* monotonic ms it began to keep due entries; 0: it does not */
};

struct aud {
	char id[STORE_ID_MAX + 1], scope[SCOPE_MAX + 1];
	int64_t time;
};

struct jrow {
	uint64_t seq;
	int64_t time;
};

struct retention {
	struct kernel *k;
	uint64_t timer;
	int tick_ms;
	struct holder *holders, *prev;
	size_t n_holders, n_prev;
	struct aud aud[TRIM_MAX];
	struct jrow jrows[TRIM_MAX];
	size_t n_aud, n_jrows;
	uint64_t j_excess;	   /* this tick: entries over the journal's size cap */
	int64_t j_cutoff;	   /* ... and the time before which an entry is too old */
	uint64_t a_excess;	   /* the same for the audit log, and the time after which */
	int64_t a_cutoff, a_young; /* an entry is too young to be cut for size */
	bool kept_young;
	double audit_entry_bytes; /* estimate of one audit entry, 0 until known */
	bool audit_alarm;	  /* raised: the cap would cut entries younger than min_age */
	uint64_t trimmed_audit, trimmed_journal, holds_expired, purged_sessions;
	struct sample ring[RATE_RING];
	int ring_n, ring_next;
};

/* ---- alarms ---- */

static void alarm(struct retention *r, const char *condition, const char *state,
		  const char *dataset, const char *detail)
{
	struct kernel *k = r->k;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 6);
	mp_kv_str(&pk, "condition", condition);
	mp_kv_str(&pk, "state", state);
	mp_kv_str(&pk, "severity", strcmp(state, "cleared") == 0 ? "info" : "major");
	mp_kv_str(&pk, "dataset", dataset);
	mp_kv_str(&pk, "detail", detail);
	mp_kv_int(&pk, "time", wall_ms());
	struct bus_msg m = {.topic = ALARM_TOPIC,
			    .publisher = "retention",
			    .scope = k->cfg.node_path,
			    .payload = sb.data,
			    .payload_len = sb.size};
	char err[256];
	if (k->bus && bus_publish(k->bus, &m, NULL, err, sizeof err) != 0)
		log_error("retention", "cannot publish %s %s: %s", ALARM_TOPIC, condition, err);
	msgpack_sbuffer_destroy(&sb);
}

/* ---- reading records ---- */

static int64_t map_int(const void *data, size_t len, const char *key)
{
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	size_t off = 0;
	int64_t v = 0;
	if (msgpack_unpack_next(&up, data, len, &off) == MSGPACK_UNPACK_SUCCESS) {
		const msgpack_object *o = mp_get(&up.data, key);
		if (o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
			v = o->via.u64 > INT64_MAX ? INT64_MAX : (int64_t)o->via.u64;
		else if (o && o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
			v = o->via.i64;
	}
	msgpack_unpacked_destroy(&up);
	return v;
}

static int holder_row(void *ud, const struct store_row *row)
{
	struct retention *r = ud;
	struct holder *h = &r->holders[r->n_holders++];
	memset(h, 0, sizeof *h);
	snprintf(h->id, sizeof h->id, "%s", row->id);
	snprintf(h->scope, sizeof h->scope, "%s", row->scope);
	h->seq = (uint64_t)map_int(row->data, row->len, "seq");
	h->updated = map_int(row->data, row->len, "updated");
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	size_t off = 0;
	if (msgpack_unpack_next(&up, row->data, row->len, &off) == MSGPACK_UNPACK_SUCCESS)
		mp_copy_str(mp_get(&up.data, "by"), h->by, sizeof h->by);
	msgpack_unpacked_destroy(&up);
	for (size_t i = 0; i < r->n_prev; i++)
		if (strcmp(r->prev[i].id, h->id) == 0 && strcmp(r->prev[i].scope, h->scope) == 0 &&
		    r->prev[i].seq == h->seq)
			h->blocking_since = r->prev[i].blocking_since;
	return r->n_holders == HOLDERS_MAX;
}

/* Read the registry again (it is small); keep each unchanged hold's blocking clock. */
static void load_holders(struct retention *r)
{
	struct holder *t = r->prev;
	r->prev = r->holders;
	r->n_prev = r->n_holders;
	r->holders = t;
	r->n_holders = 0;
	struct store_query q = {.dataset = HOLDERS, .limit = HOLDERS_MAX};
	char cursor[STORE_CURSOR_MAX], err[256];
	if (store_scan(r->k->store, &q, holder_row, r, cursor, err, sizeof err) < 0)
		log_error("retention", "cannot read the journal holders: %s", err);
}

static const struct holder *find_holder(const struct retention *r, const char *scope,
					const char *id)
{
	for (size_t i = 0; i < r->n_holders; i++)
		if (strcmp(r->holders[i].id, id) == 0 && strcmp(r->holders[i].scope, scope) == 0)
			return &r->holders[i];
	return NULL;
}

/* ---- the journal ---- */

/* Collect the front entries that are due (by size, then by age); stop at the first that is not. */
static int jrow_fn(void *ud, uint64_t seq, const void *ev, size_t len)
{
	struct retention *r = ud;
	int64_t t = map_int(ev, len, "time");
	if (r->n_jrows >= r->j_excess && t >= r->j_cutoff)
		return 1;
	r->jrows[r->n_jrows++] = (struct jrow){seq, t};
	return 0;
}

static void expire_holder(struct retention *r, struct holder *h, uint64_t due_upto)
{
	const struct cfg_retention *c = &r->k->cfg.retention;
	char detail[512], err[256];
	snprintf(detail, sizeof detail,
		 "holder '%s' at %s (position %" PRIu64 ") kept journal entries up to seq %" PRIu64
		 " from trimming for %lld s (retention.journal.max_hold); released",
		 h->id, h->scope, h->seq, due_upto, c->journal_max_hold_s);
	log_warn("retention", "%s", detail);
	alarm(r, "hold_expired", "raised", "journal", detail);
	if (store_delete(r->k->store, HOLDERS, h->scope, h->id, err, sizeof err) != 0)
		log_error("retention", "cannot release holder '%s': %s", h->id, err);
	r->holds_expired++;
	h->seq = UINT64_MAX; /* holds nothing from now on */
	h->blocking_since = 0;
}

static void trim_journal(struct retention *r, int64_t now, uint64_t mono)
{
	struct kernel *k = r->k;
	const struct cfg_retention *c = &k->cfg.retention;
	struct store_journal_info ji;
	if (store_journal_info(k->store, &ji) != 0 || ji.entries == 0)
		return;
	uint64_t excess = 0;
	if (c->journal_max_bytes && ji.bytes > c->journal_max_bytes) {
		excess = ji.entries - (uint64_t)((double)ji.entries * (double)c->journal_max_bytes /
						 (double)ji.bytes);
		if (!excess)
			excess = 1;
	}
	size_t max = (size_t)c->batch < TRIM_MAX ? (size_t)c->batch : TRIM_MAX;
	r->n_jrows = 0;
	r->j_excess = excess;
	r->j_cutoff = c->journal_max_age_s ? now - c->journal_max_age_s * 1000 : INT64_MIN;
	char err[256];
	if (store_journal_scan(k->store, 0, max, jrow_fn, r, err, sizeof err) < 0) {
		log_error("retention", "cannot read the journal: %s", err);
		return;
	}
	size_t n = r->n_jrows;
	uint64_t upto = n ? r->jrows[n - 1].seq : 0;
	for (size_t i = 0; i < r->n_holders; i++) {
		struct holder *h = &r->holders[i];
		if (!n || h->seq >= upto) {
			h->blocking_since = 0;
			continue;
		}
		if (!h->blocking_since)
			h->blocking_since = mono ? mono : 1;
		if (c->journal_max_hold_s &&
		    mono - h->blocking_since >= (uint64_t)c->journal_max_hold_s * 1000) {
			expire_holder(r, h, upto);
			continue;
		}
	}
	for (size_t i = 0; i < r->n_holders; i++)
		if (r->holders[i].seq < upto)
			upto = r->holders[i].seq; /* never past a holder */
	size_t cut = 0;
	while (cut < n && r->jrows[cut].seq <= upto)
		cut++;
	if (!cut)
		return;
	int rc = store_journal_trim(k->store, upto, cut, err, sizeof err);
	if (rc < 0)
		log_error("retention", "trimming the journal: %s", err);
	else {
		r->trimmed_journal += (uint64_t)rc;
		log_debug("retention", "journal: %d entries up to seq %" PRIu64 " trimmed", rc,
			  upto);
	}
}

/* ---- the audit log ---- */

/*
 * Collect the oldest audit entries that are due: too old, or over the size
 * cap but not younger than min_age (that one stops the scan and raises the
 * alarm). Every entry read feeds the size estimate.
 */
static int aud_row(void *ud, const struct store_row *row)
{
	struct retention *r = ud;
	int64_t t = map_int(row->data, row->len, "time");
	/* The record, its key, its `ids` entry and four index entries (who,
	   action, result, time), each with the scope and the id, and LMDB's
	   8-byte node headers. */
	double bytes = (double)row->len + 6.0 * (double)(strlen(row->scope) + strlen(row->id) + 24);
	r->audit_entry_bytes =
	    r->audit_entry_bytes ? (r->audit_entry_bytes * 15 + bytes) / 16 : bytes;
	bool too_old = t < r->a_cutoff;
	if (!too_old && r->n_aud >= r->a_excess)
		return 1;
	if (!too_old && t >= r->a_young) {
		r->kept_young = true; /* the cap would cut what the law asks to keep */
		return 1;
	}
	struct aud *a = &r->aud[r->n_aud++];
	snprintf(a->id, sizeof a->id, "%s", row->id);
	snprintf(a->scope, sizeof a->scope, "%s", row->scope);
	a->time = t;
	return 0;
}

static void trim_audit(struct retention *r, int64_t now)
{
	struct kernel *k = r->k;
	const struct cfg_retention *c = &k->cfg.retention;
	uint64_t count = store_count(k->store, "audit");
	size_t max = (size_t)c->batch < TRIM_MAX ? (size_t)c->batch : TRIM_MAX;
	char err[256];
	/* The size estimate is the last ticks' (the first tick reads one entry for it). */
	double est = (double)count * r->audit_entry_bytes;
	r->a_excess = 0;
	if (c->audit_max_bytes && est > (double)c->audit_max_bytes)
		r->a_excess = count - (uint64_t)((double)c->audit_max_bytes / r->audit_entry_bytes);
	r->a_cutoff = c->audit_max_age_s ? now - c->audit_max_age_s * 1000 : INT64_MIN;
	r->a_young = c->audit_min_age_s ? now - c->audit_min_age_s * 1000 : INT64_MAX;
	r->kept_young = false;
	r->n_aud = 0;
	if (count &&
	    store_scan_by(k->store, "audit", "time", max, aud_row, r, err, sizeof err) < 0) {
		log_error("retention", "cannot read the audit log: %s", err);
		return;
	}
	bool kept_young = r->kept_young;
	for (size_t i = 0; i < r->n_aud; i++) {
		const struct aud *a = &r->aud[i];
		if (store_delete(k->store, "audit", a->scope, a->id, err, sizeof err) != 0) {
			log_error("retention", "trimming the audit log: %s", err);
			break;
		}
		r->trimmed_audit++;
	}
	if (kept_young != r->audit_alarm) {
		char detail[512];
		snprintf(detail, sizeof detail,
			 kept_young
			     ? "the audit log (%" PRIu64 " entries, about %.0f bytes) is over "
			       "retention.audit.max (%llu bytes) but its oldest entries are "
			       "younger than retention.audit.min_age (%lld s): kept, not cut; "
			       "raise the cap or free disk space"
			     : "the audit log (%" PRIu64 " entries, about %.0f bytes) fits "
			       "retention.audit.max (%llu bytes) again, or its old entries "
			       "may be cut (retention.audit.min_age %lld s)",
			 count, est, c->audit_max_bytes, c->audit_min_age_s);
		if (kept_young)
			log_warn("retention", "%s", detail);
		else
			log_info("retention", "%s", detail);
		alarm(r, "audit_over_cap", kept_young ? "raised" : "cleared", "audit", detail);
		r->audit_alarm = kept_young;
	}
}

/* ---- expired sessions ---- */

struct sess_ctx {
	struct retention *r;
	int64_t now;
};

static int sess_row(void *ud, const struct store_row *row)
{
	struct sess_ctx *c = ud;
	struct retention *r = c->r;
	if (map_int(row->data, row->len, "expires") > c->now)
		return 1; /* the oldest that has not expired: the rest have not either */
	struct aud *a = &r->aud[r->n_aud++];
	snprintf(a->id, sizeof a->id, "%s", row->id);
	snprintf(a->scope, sizeof a->scope, "%s", row->scope);
	return 0;
}

/*
 * A session record outlives its expiry unless its console logs out: delete
 * the expired ones among the oldest (by `created`; with one TTL for all that
 * is also the order of expiry) once they have been expired for four TTLs, so
 * that a console coming back still hears "session expired" for a while
 * rather than "unknown session".
 */
static void purge_sessions(struct retention *r, int64_t now)
{
	struct kernel *k = r->k;
	now -= 4 * (int64_t)k->cfg.session_ttl_s * 1000;
	size_t max =
	    (size_t)k->cfg.retention.batch < TRIM_MAX ? (size_t)k->cfg.retention.batch : TRIM_MAX;
	struct sess_ctx c = {r, now};
	char err[256];
	r->n_aud = 0;
	if (store_scan_by(k->store, "sessions", "created", max, sess_row, &c, err, sizeof err) < 0)
		log_error("retention", "cannot read the sessions: %s", err);
	for (size_t i = 0; i < r->n_aud; i++)
		if (store_delete(k->store, "sessions", r->aud[i].scope, r->aud[i].id, err,
				 sizeof err) == 0)
			r->purged_sessions++;
}

/* ---- write rates ---- */

static void counters(struct retention *r, struct sample *s, uint64_t mono)
{
	s->t = mono;
	for (size_t i = 0; i < N_TRACKED; i++)
		s->w[i] = store_writes(r->k->store, tracked[i]);
	struct store_journal_info ji;
	s->w[N_TRACKED] = store_journal_info(r->k->store, &ji) == 0 ? ji.writes : 0;
}

static void sample(struct retention *r, uint64_t mono)
{
	counters(r, &r->ring[r->ring_next], mono);
	r->ring_next = (r->ring_next + 1) % RATE_RING;
	if (r->ring_n < RATE_RING)
		r->ring_n++;
}

/* Writes per minute of counter i, over the oldest sample of the last 5 minutes. */
static double rate(const struct retention *r, const struct sample *now, size_t i)
{
	const struct sample *old = NULL;
	for (int j = 0; j < r->ring_n; j++) {
		const struct sample *s =
		    &r->ring[(r->ring_next - r->ring_n + j + RATE_RING) % RATE_RING];
		if (now->t - s->t <= RATE_SPAN_MS) {
			old = s;
			break;
		}
	}
	if (!old || now->t - old->t < 1000)
		return 0;
	return (double)(now->w[i] - old->w[i]) * 60000.0 / (double)(now->t - old->t);
}

/* ---- the tick ---- */

static void on_tick(struct kernel *k, void *arg);

void retention_tick(struct kernel *k)
{
	struct retention *r = k->retention;
	if (!r || !k->store)
		return;
	int64_t now = wall_ms();
	uint64_t mono = kernel_now_ms();
	tiers_audit_flush(k, false);
	load_holders(r);
	/* A holder's grace is a deadline: the kernel's clock, which the test clock moves. */
	trim_journal(r, now, kernel_clock_ms());
	trim_audit(r, now);
	purge_sessions(r, now);
	const struct sample *last =
	    r->ring_n ? &r->ring[(r->ring_next - 1 + RATE_RING) % RATE_RING] : NULL;
	if (!last || mono - last->t >= RATE_EVERY_MS)
		sample(r, mono);
	if (k->cfg.retention.tick_ms != r->tick_ms) { /* a reload changed it */
		kernel_timer_cancel(k, r->timer);
		r->tick_ms = k->cfg.retention.tick_ms;
		r->timer =
		    kernel_timer_add(k, (uint64_t)r->tick_ms, (uint64_t)r->tick_ms, on_tick, r);
	}
}

static void on_tick(struct kernel *k, void *arg)
{
	(void)arg;
	retention_tick(k);
}

/* ---- linli events hold | release | holds ---- */

static int holder_name(struct cmd_call *call, const char *name)
{
	if (!store_id_ok(name))
		return cmd_fail(call, LINLI_EINVAL,
				"%s %s: bad name '%.64s': 1 to %d of A-Z a-z 0-9 _ . : - starting "
				"with a letter or digit",
				call->argv[0], call->argv[1], name, STORE_ID_MAX);
	return 0;
}

static int cmd_hold(struct cmd_call *call, void *ud)
{
	(void)ud;
	struct kernel *k = call->k;
	if (call->argc != 4)
		return cmd_fail(call, LINLI_EINVAL, "usage: events hold NAME SEQ");
	const char *name = call->argv[2], *mine = call->who->scope;
	char *end;
	unsigned long long seq = strtoull(call->argv[3], &end, 10);
	int rc = holder_name(call, name);
	if (rc)
		return rc;
	if (!*call->argv[3] || *end || call->argv[3][0] == '-')
		return cmd_fail(call, LINLI_EINVAL, "events hold: '%.40s' is not a seq",
				call->argv[3]);
	if ((rc = access_call(call, ACT_EVENTS_SUBSCRIBE, mine, "journal")))
		return rc;
	/* Move the caller's holder if it has one in its subtree, else make one at its node. */
	char at[SCOPE_MAX + 1], err[256];
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	bool found = store_get(k->store, HOLDERS, mine, name, &sb, at, err, sizeof err) == 0;
	if (!found && store_count(k->store, HOLDERS) >= HOLDERS_MAX) {
		/* Every holder is read each tick: the registry stays small. */
		msgpack_sbuffer_destroy(&sb);
		return cmd_fail(call, LINLI_ELIMIT,
				"events hold: the node has %d journal holders already; release "
				"one first",
				HOLDERS_MAX);
	}
	sb.size = 0;
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 3);
	mp_kv_uint(&pk, "seq", seq);
	mp_kv_int(&pk, "updated", wall_ms());
	mp_kv_str(&pk, "by", call->who->name);
	rc = store_put(k->store, HOLDERS, found ? at : mine, name, sb.data, sb.size, NULL, NULL,
		       err, sizeof err);
	msgpack_sbuffer_destroy(&sb);
	if (rc == LINLI_EEXIST) /* another jurisdiction's: say nothing about it */
		return cmd_fail(call, LINLI_EEXIST,
				"events hold: the name '%s' is taken; choose "
				"another",
				name);
	if (rc)
		return cmd_fail(call, rc, "events hold: %s", err);
	struct store_journal_info ji;
	store_journal_info(k->store, &ji);
	msgpack_pack_map(&call->pk, 5);
	mp_kv_str(&call->pk, "name", name);
	mp_kv_str(&call->pk, "scope", found ? at : mine);
	mp_kv_uint(&call->pk, "seq", seq);
	mp_kv_uint(&call->pk, "journal_first", ji.first);
	mp_kv_uint(&call->pk, "journal_last", ji.last);
	return journal_await(k, call) ? CMD_PENDING : 0;
}

static int cmd_release(struct cmd_call *call, void *ud)
{
	(void)ud;
	struct kernel *k = call->k;
	if (call->argc != 3)
		return cmd_fail(call, LINLI_EINVAL, "usage: events release NAME");
	const char *name = call->argv[2], *mine = call->who->scope;
	int rc = holder_name(call, name);
	if (rc || (rc = access_call(call, ACT_EVENTS_SUBSCRIBE, mine, "journal")))
		return rc;
	char err[256];
	rc = store_delete(k->store, HOLDERS, mine, name, err, sizeof err);
	if (rc == LINLI_ENOENT)
		return cmd_fail(call, rc, "events release: no holder '%s'", name);
	if (rc)
		return cmd_fail(call, rc, "events release: %s", err);
	msgpack_pack_map(&call->pk, 1);
	mp_kv_str(&call->pk, "released", name);
	return journal_await(k, call) ? CMD_PENDING : 0;
}

struct holds_ctx {
	struct retention *r;
	msgpack_sbuffer rows;
	msgpack_packer pk;
	int n;
};

static int holds_row(void *ud, const struct store_row *row)
{
	struct holds_ctx *c = ud;
	const struct holder *h = find_holder(c->r, row->scope, row->id);
	uint64_t mono = kernel_clock_ms(); /* as trim_journal's blocking_since */
	msgpack_pack_map(&c->pk, 6);
	mp_kv_str(&c->pk, "name", row->id);
	mp_kv_str(&c->pk, "scope", row->scope);
	mp_kv_uint(&c->pk, "seq", (uint64_t)map_int(row->data, row->len, "seq"));
	mp_kv_int(&c->pk, "updated", map_int(row->data, row->len, "updated"));
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	size_t off = 0;
	char by[81] = "";
	if (msgpack_unpack_next(&up, row->data, row->len, &off) == MSGPACK_UNPACK_SUCCESS)
		mp_copy_str(mp_get(&up.data, "by"), by, sizeof by);
	msgpack_unpacked_destroy(&up);
	mp_kv_str(&c->pk, "by", by);
	/* How long it has kept due entries from being trimmed (0: it does not). */
	mp_kv_uint(&c->pk, "blocking_s",
		   h && h->blocking_since ? (mono - h->blocking_since) / 1000 : 0);
	c->n++;
	return 0;
}

static int cmd_holds(struct cmd_call *call, void *ud)
{
	struct retention *r = ud;
	if (call->argc != 2)
		return cmd_fail(call, LINLI_EINVAL, "usage: events holds");
	int rc = access_call(call, ACT_EVENTS_SUBSCRIBE, call->who->scope, "journal");
	if (rc)
		return rc;
	struct holds_ctx c = {.r = r};
	msgpack_sbuffer_init(&c.rows);
	msgpack_packer_init(&c.pk, &c.rows, msgpack_sbuffer_write);
	struct store_query q = {
	    .dataset = HOLDERS, .scope = call->who->scope, .limit = HOLDERS_MAX};
	char cursor[STORE_CURSOR_MAX];
	rc = store_scan(call->k->store, &q, holds_row, &c, cursor, call->err, sizeof call->err);
	if (rc >= 0) {
		msgpack_pack_array(&call->pk, (size_t)c.n);
		msgpack_sbuffer_write(&call->data, c.rows.data, c.rows.size);
	}
	msgpack_sbuffer_destroy(&c.rows);
	return rc < 0 ? rc : 0;
}

/* ---- status ---- */

struct first_ctx {
	const char *field;
	int64_t t;
};

static int first_row(void *ud, const struct store_row *row)
{
	struct first_ctx *c = ud;
	c->t = map_int(row->data, row->len, c->field);
	return 1;
}

/* The dataset's oldest entry by its first indexed time field, or -1 (none such, or empty). */
static int64_t oldest(struct kernel *k, const char *dataset)
{
	const struct cat_dataset *ds = catalog_dataset(k->catalog, dataset);
	struct first_ctx c = {NULL, -1};
	for (int i = 0; ds && i < ds->n_fields && !c.field; i++)
		if (ds->fields[i].type == CAT_TIME && ds->fields[i].indexed)
			c.field = ds->fields[i].name;
	char err[256];
	if (c.field)
		store_scan_by(k->store, dataset, c.field, 1, first_row, &c, err, sizeof err);
	return c.t;
}

static void pack_oldest(msgpack_packer *pk, int64_t t)
{
	mp_str(pk, "oldest");
	if (t < 0) {
		msgpack_pack_nil(pk);
		return;
	}
	char txt[40];
	utc_text(t, txt, sizeof txt);
	mp_str(pk, txt);
}

void retention_pack_status(struct kernel *k, msgpack_packer *pk)
{
	struct retention *r = k->retention;
	if (!r || !k->store) {
		msgpack_pack_map(pk, 0);
		return;
	}
	const struct cfg_retention *c = &k->cfg.retention;
	struct sample now;
	counters(r, &now, kernel_now_ms());
	msgpack_pack_map(pk, N_TRACKED + 1);
	for (size_t i = 0; i < N_TRACKED; i++) {
		bool audit = i == 0, sessions = i == 1;
		mp_str(pk, tracked[i]);
		msgpack_pack_map(pk, audit ? 8 : sessions ? 4 : 3);
		uint64_t n = store_count(k->store, tracked[i]);
		mp_kv_uint(pk, "entries", n);
		pack_oldest(pk, oldest(k, tracked[i]));
		mp_kv_double(pk, "writes_per_min", rate(r, &now, i));
		if (audit) {
			mp_kv_uint(pk, "bytes_est", (uint64_t)((double)n * r->audit_entry_bytes));
			mp_kv_uint(pk, "max_bytes", c->audit_max_bytes);
			mp_kv_int(pk, "min_age_s", c->audit_min_age_s);
			mp_kv_uint(pk, "trimmed", r->trimmed_audit);
			mp_kv_bool(pk, "over_cap_alarm", r->audit_alarm);
		}
		if (sessions)
			mp_kv_uint(pk, "expired_deleted", r->purged_sessions);
	}
	struct store_journal_info ji;
	store_journal_info(k->store, &ji);
	mp_str(pk, "journal");
	msgpack_pack_map(pk, 10);
	mp_kv_uint(pk, "entries", ji.entries);
	mp_kv_uint(pk, "bytes", ji.bytes);
	mp_kv_uint(pk, "max_bytes", c->journal_max_bytes);
	r->n_jrows = 0;
	r->j_excess = UINT64_MAX; /* the first entry, whatever its age */
	char err[256];
	store_journal_scan(k->store, 0, 1, jrow_fn, r, err, sizeof err);
	pack_oldest(pk, r->n_jrows ? r->jrows[0].time : -1);
	mp_kv_uint(pk, "first_seq", ji.first);
	mp_kv_uint(pk, "last_seq", ji.last);
	mp_kv_double(pk, "writes_per_min", rate(r, &now, N_TRACKED));
	mp_kv_uint(pk, "trimmed", r->trimmed_journal);
	mp_kv_uint(pk, "holders", r->n_holders);
	mp_kv_uint(pk, "holds_expired", r->holds_expired);
}

/* ---- what is journaled ---- */

bool retention_journaled(const struct kernel *k, const struct bus_event *ev)
{
	/* dev/<class>/<id>/event/<name>: the class's event may say journal = false */
	const char *t = ev->topic;
	if (!k->catalog || strncmp(t, "dev/", 4) != 0)
		return true;
	const char *cls = t + 4, *a = strchr(cls, '/');
	const char *b = a ? strchr(a + 1, '/') : NULL;
	if (!b || strncmp(b, "/event/", 7) != 0 || strchr(b + 7, '/'))
		return true;
	char name[CAT_NAME_MAX + 1];
	if ((size_t)(a - cls) > CAT_NAME_MAX)
		return true;
	snprintf(name, sizeof name, "%.*s", (int)(a - cls), cls);
	const struct cat_device_class *c = catalog_device_class(k->catalog, name);
	for (int i = 0; c && i < c->n_events; i++)
		if (strcmp(c->events[i].name, b + 7) == 0)
			return !c->events[i].unjournaled;
	return true;
}

/* ---- open / close ---- */

int retention_open(struct kernel *k)
{
	struct retention *r = calloc(1, sizeof *r);
	if (!r)
		return LINLI_ENOMEM;
	r->holders = calloc(HOLDERS_MAX, sizeof *r->holders);
	r->prev = calloc(HOLDERS_MAX, sizeof *r->prev);
	if (!r->holders || !r->prev) {
		free(r->holders);
		free(r->prev);
		free(r);
		return LINLI_ENOMEM;
	}
	r->k = k;
	k->retention = r;
	sample(r, kernel_now_ms());
	load_holders(r);
	r->tick_ms = k->cfg.retention.tick_ms;
	r->timer = kernel_timer_add(k, (uint64_t)r->tick_ms, (uint64_t)r->tick_ms, on_tick, r);
	int rc = cmd_register(k->cmds, "events", "hold", "NAME SEQ",
			      "keep the journal after SEQ for reader NAME (see retention)",
			      cmd_hold, r, r);
	if (!rc)
		rc = cmd_register(k->cmds, "events", "release", "NAME",
				  "drop reader NAME's hold on the journal", cmd_release, r, r);
	if (!rc)
		rc = cmd_register(k->cmds, "events", "holds", "",
				  "the journal's holders: position, since when they block trimming",
				  cmd_holds, r, r);
	return rc;
}

void retention_close(struct kernel *k)
{
	struct retention *r = k->retention;
	if (!r)
		return;
	if (r->timer)
		kernel_timer_cancel(k, r->timer);
	free(r->holders);
	free(r->prev);
	free(r);
	k->retention = NULL;
}
