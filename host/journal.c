/*
 * journal — see journal.h.
 *
 * The flush hook is where the bus learns whether the batch holding its
 * journal writes reached the disk: it commits the store's batch if the store's
 * own batch-end hook has not yet, and reports the result that the commit
 * waiter recorded. A failed commit loses that batch (the store says so in its
 * log) and the bus holds the events back from external subscribers until a
 * later batch commits.
 */
#include "journal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "bus.h"
#include "cmd.h"
#include "hal.h"
#include "json.h"
#include "kernel.h"
#include "linli/error.h"
#include "log.h"
#include "mp.h"
#include "retention.h"
#include "store.h"
#include "tier_store.h"

struct jstate {
	struct kernel *k;
	bool waiting;	  /* a commit waiter is registered for the current batch */
	int last_rc;	  /* result of the last commit that held journal writes */
	char last_err[256];
	msgpack_sbuffer buf;
};

static struct jstate js; /* one per process: the kernel has one bus and one store */

static void on_commit(void *arg, int rc, const char *err)
{
	struct jstate *j = arg;
	j->waiting = false;
	j->last_rc = rc;
	snprintf(j->last_err, sizeof j->last_err, "%s", err ? err : "");
}

static int j_write(void *arg, const struct bus_event *ev, char *err, size_t errlen)
{
	struct jstate *j = arg;
	if (!retention_journaled(j->k, ev))
		return 0; /* telemetry-like (catalog: journal = false): delivered, not kept */
	msgpack_packer pk;
	j->buf.size = 0;
	msgpack_packer_init(&pk, &j->buf, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 7);
	mp_kv_uint(&pk, "seq", ev->seq);
	mp_kv_uint(&pk, "time", ev->time_ms);
	mp_kv_str(&pk, "topic", ev->topic);
	mp_kv_str(&pk, "publisher", ev->publisher);
	mp_kv_str(&pk, "scope", ev->scope);
	mp_kv_str(&pk, "family", ev->family);
	mp_str(&pk, "payload");
	msgpack_sbuffer_write(&j->buf, ev->payload, ev->payload_len);
	int rc = store_journal_append(j->k->store, ev->seq, j->buf.data, j->buf.size, err, errlen);
	if (rc)
		return rc;
	if (!j->waiting && store_on_commit(j->k->store, on_commit, j) == 0)
		j->waiting = true;
	return 0;
}

static int j_flush(void *arg, char *err, size_t errlen)
{
	struct jstate *j = arg;
	/* Group commit keeps the batch open under load (store_batch_turn): the bus holds its
	   sealing back until that commit rather than forcing one each turn. */
	if (j->waiting && store_batch_kept(j->k->store))
		return LINLI_EBUSY;
	if (j->waiting)
		store_batch_end(j->k->store); /* runs on_commit */
	if (j->last_rc)
		snprintf(err, errlen, "%s", j->last_err);
	int rc = j->last_rc;
	j->last_rc = 0;
	return rc;
}

/* ---- linli events journal [--after SEQ] [--limit N] [--scope PATH] ---- */

/*
 * At most JOURNAL_SCAN_PER_ROW rows are read per row a page may hold, and
 * JOURNAL_SCAN_MAX in all: a caller whose jurisdiction holds few of the
 * node's events still gets an answer in bounded time, and a cursor past what
 * it may not see to go on from.
 */
#define JOURNAL_SCAN_PER_ROW 100
#define JOURNAL_SCAN_MAX     10000

struct scan_ctx {
	const char *root;
	size_t limit, n;
	uint64_t last_seen, last_shown; /* seq of the last row read / returned */
	msgpack_sbuffer rows;
	const struct catalog *cat;
	bool clear;		 /* the caller reads device events' personal fields in clear */
	size_t masked, in_clear; /* rows shown with personal fields masked / in clear */
};

/*
 * Append journal entry `e` (a map whose "payload" is the event's) to the page
 * with the payload's personal fields masked (hal_event_mask). 0, or 1 when
 * the entry has nothing to mask (the caller appends it as it is).
 */
static int append_masked(struct scan_ctx *c, const msgpack_object *e, const char *topic)
{
	const msgpack_object *pl = mp_get(e, "payload");
	if (!pl || pl->type != MSGPACK_OBJECT_MAP)
		return 1;
	msgpack_sbuffer in, out;
	msgpack_packer pk;
	msgpack_sbuffer_init(&in);
	msgpack_sbuffer_init(&out);
	msgpack_packer_init(&pk, &in, msgpack_sbuffer_write);
	msgpack_pack_object(&pk, *pl);
	int rc = 1;
	if (hal_event_mask(c->cat, topic, in.data, in.size, &out)) {
		msgpack_packer_init(&pk, &c->rows, msgpack_sbuffer_write);
		msgpack_pack_map(&pk, e->via.map.size);
		for (uint32_t i = 0; i < e->via.map.size; i++) {
			const msgpack_object_kv *kv = &e->via.map.ptr[i];
			msgpack_pack_object(&pk, kv->key);
			if (&kv->val == pl)
				msgpack_sbuffer_write(&c->rows, out.data, out.size);
			else
				msgpack_pack_object(&pk, kv->val);
		}
		rc = 0;
	}
	msgpack_sbuffer_destroy(&in);
	msgpack_sbuffer_destroy(&out);
	return rc;
}

static int row(void *ud, uint64_t seq, const void *ev, size_t len)
{
	struct scan_ctx *c = ud;
	c->last_seen = seq;
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	size_t off = 0;
	if (msgpack_unpack_next(&up, ev, len, &off) == MSGPACK_UNPACK_SUCCESS) {
		const msgpack_object *sc = mp_get(&up.data, "scope");
		char scope[SCOPE_MAX + 1] = "";
		if (sc && sc->type == MSGPACK_OBJECT_STR && sc->via.str.size <= SCOPE_MAX)
			snprintf(scope, sizeof scope, "%.*s", (int)sc->via.str.size,
				 sc->via.str.ptr);
		/* Only the caller's jurisdiction: a sibling's events never show. */
		if (*scope && scope_within(c->root, scope)) {
			const msgpack_object *tp = mp_get(&up.data, "topic");
			char topic[BUS_TOPIC_MAX + 1] = "";
			if (tp && tp->type == MSGPACK_OBJECT_STR && tp->via.str.size <= BUS_TOPIC_MAX)
				snprintf(topic, sizeof topic, "%.*s", (int)tp->via.str.size,
					 tp->via.str.ptr);
			bool sens = hal_event_sensitive(c->cat, topic);
			if (sens && c->clear)
				c->in_clear++;
			if (!sens || c->clear || append_masked(c, &up.data, topic) != 0)
				msgpack_sbuffer_write(&c->rows, ev, len);
			else
				c->masked++;
			c->n++;
			c->last_shown = seq;
		}
	}
	msgpack_unpacked_destroy(&up);
	return c->n >= c->limit; /* a full page stops the scan */
}

struct jopts {
	const char *after, *limit, *scope;
};

static int take_opt(struct cmd_call *call, void *ud, int bit, const char *v)
{
	(void)call;
	struct jopts *o = ud;
	*(bit == 1 ? &o->after : bit == 2 ? &o->limit : &o->scope) = v;
	return 0;
}

/*
 * The reply is {"events": [...], "next": SEQ, "more": BOOL}: pass `next` as
 * --after for the following page. The page ends when it holds --limit
 * events (more), when its scan budget was read (more; `next` then
 * moves past rows the caller does not see, so paging always progresses),
 * or at the journal's end (no more; `next` stays at the last event shown,
 * so the reply does not tell how many hidden events follow it).
 */
static int cmd_journal(struct cmd_call *call, void *ud)
{
	(void)ud;
	static const struct cmd_opt opts[] = {{"after", 1}, {"limit", 2}, {"scope", 4}, {NULL, 0}};
	const char *usage = "[--after SEQ] [--limit N] [--scope PATH]";
	struct jopts o = {0};
	int npos = 0;
	int rc = cmd_args(call, opts, 7, NULL, 0, &npos, usage, take_opt, &o);
	if (rc)
		return rc;
	uint64_t after = 0;
	long limit = 100;
	char *end;
	if (o.after) {
		errno = 0;
		after = strtoull(o.after, &end, 10);
		if (!*o.after || *o.after == '-' || *end || errno || after == UINT64_MAX)
			return cmd_fail(call, LINLI_EINVAL, "--after: '%.32s' is not a seq",
					o.after);
	}
	if (o.limit) {
		limit = strtol(o.limit, &end, 10);
		if (!*o.limit || *end || limit < 1 || limit > 10000)
			return cmd_fail(call, LINLI_EINVAL, "--limit: '%.32s' is not 1..10000",
					o.limit);
	}
	char root[SCOPE_MAX + 1];
	if ((rc = access_scope(call, o.scope, "events journal", ACT_EVENTS_SUBSCRIBE, NULL, root)))
		return rc;
	struct scan_ctx c = {.root = root,
			     .limit = (size_t)limit,
			     .cat = call->k->catalog,
			     .clear = call->who &&
				      tier_sees_sensitive(call->who, HAL_SENSITIVE_DATASET)};
	long budget = limit * JOURNAL_SCAN_PER_ROW;
	if (budget > JOURNAL_SCAN_MAX)
		budget = JOURNAL_SCAN_MAX;
	msgpack_sbuffer_init(&c.rows);
	int n = store_journal_scan(call->k->store, after, (size_t)budget, row, &c, call->err,
				   sizeof call->err);
	if (n < 0) {
		msgpack_sbuffer_destroy(&c.rows);
		return n;
	}
	/* Personal fields of device events read in clear are audited like a store read. */
	if (call->who && (c.in_clear || c.masked)) {
		char detail[96];
		snprintf(detail, sizeof detail, "events journal: %zu device events with personal fields",
			 c.in_clear + c.masked);
		tiers_audit(call->k, call->who, "data.read", root, HAL_SENSITIVE_DATASET,
			    c.in_clear ? "allowed" : "masked", detail);
	}
	bool full = c.n >= c.limit, capped = !full && n >= budget;
	uint64_t next = capped ? c.last_seen : c.n ? c.last_shown : after;
	msgpack_packer *pk = &call->pk;
	msgpack_pack_map(pk, 3);
	mp_str(pk, "events");
	msgpack_pack_array(pk, c.n);
	msgpack_sbuffer_write(&call->data, c.rows.data, c.rows.size);
	mp_kv_uint(pk, "next", next);
	mp_kv_bool(pk, "more", full || capped);
	msgpack_sbuffer_destroy(&c.rows);
	return 0;
}

int journal_attach(struct kernel *k)
{
	memset(&js, 0, sizeof js);
	js.k = k;
	msgpack_sbuffer_init(&js.buf);
	struct bus_journal j = {j_write, j_flush, &js};
	bus_set_journal(k->bus, &j);
	uint64_t last = store_journal_last(k->store);
	bus_continue_seq(k->bus, last);
	if (last)
		log_info("bus", "journal holds events up to seq %llu; numbering goes on from there",
			 (unsigned long long)last);
	return cmd_register(k->cmds, "events", "journal",
			    "[--after SEQ] [--limit N] [--scope PATH]",
			    "the stored records of consequence (alarms, incidents, ...) of the "
			    "caller's jurisdiction",
			    cmd_journal, NULL, &js);
}

void journal_detach(struct kernel *k)
{
	if (k->bus)
		bus_set_journal(k->bus, NULL);
	msgpack_sbuffer_destroy(&js.buf);
	memset(&js, 0, sizeof js);
}

static void on_call_commit(void *arg, int rc, const char *err)
{
	struct cmd_call *call = arg;
	if (rc)
		cmd_fail(call, rc, "not stored: %s", err ? err : linli_strerror(rc));
	cmd_finish(call, rc);
}

int journal_await(struct kernel *k, struct cmd_call *call)
{
	return k->store && store_on_commit(k->store, on_call_commit, call) == 0;
}
