/*
 * bus_cmds — the console's bus commands and the external subscriptions.
 *
 * An external subscriber (`linli events tail`, a remote tool) cannot use nng
 * pub/sub: it drops silently once a subscriber's 128-message queue fills. It
 * talks request/reply instead:
 *
 *   events subscribe [PATTERN] [--scope S]      -> {"id", "pattern", "scope", ...}
 *   events next ID [CURSOR] [--wait MS] [--max N] [--bytes B]
 *        -> {"id", "events": [...], "cursor", "lost", "queued", "busy"}
 *   events unsubscribe ID
 *
 * Each subscription is a bus subscriber whose handler appends the event's
 * shared encoding (bus_event_blob) to a queue on the daemon. `events next`
 * first drops what the client acknowledges (everything up to CURSOR, the last
 * seq it received; without CURSOR, everything sent before), then answers at
 * once with a batch — many events in one reply — if any is ready, else waits
 * (CMD_PENDING) until events arrive or --wait runs out. Unacknowledged events
 * are sent again, so a lost reply loses nothing. Replies carry only events the
 * bus has sealed (journal flushed). Waiting polls are answered from this
 * module's batch-end hook, so one reply carries every event of a kernel batch.
 *
 * Shedding: telemetry beyond bus.subscriber_queue waiting events is dropped
 * and counted in the reply's "lost" (cumulative) and in the family's
 * subscriber_shed. A record of consequence is never dropped: the queue grows;
 * past bus.subscriber_backlog the subscription is closed and the next poll
 * says so (an error, never a silent gap). A subscription nobody polls for
 * bus.subscriber_idle_s expires.
 *
 * Long polls hold a control worker each, so at most control.workers - 2 wait
 * at once; beyond that `events next` answers at once with "busy": true.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "cmd.h"
#include "access.h"
#include "hal.h"
#include "journal.h"
#include "json.h"
#include "kernel.h"
#include "linli/error.h"
#include "log.h"
#include "mp.h"
#include "scope.h"
#include "tier_store.h"

#define REPLY_BYTES	  (512u << 10) /* default byte budget of a reply (nng clients take 1 MiB) */
#define REPLY_BYTES_MAX	  (64u << 20)  /* what --bytes may ask for */
#define MAX_BATCH_DEFAULT 8192
#define WAIT_DEFAULT_MS	  1000
#define WAIT_MAX_MS	  30000

struct rsub;

struct bus_remote {
	struct kernel *k;
	struct bus *bus;
	struct rsub *subs;
	int waiters, max_waiters;
	bool any_ready, kick_posted;
	uint64_t expire_timer;
};

struct rsub {
	struct bus_remote *r;
	uint64_t id; /* the bus subscription's */
	char *pattern;
	char scope[SCOPE_MAX + 1];
	char owner[96]; /* the account that subscribed: only it may poll or drop it */
	struct bus_blob **ring;
	size_t cap, head, n;
	uint64_t lost, sent_through, last_poll_ms;
	struct cmd_call *waiter;
	uint64_t timer;
	size_t want_max, want_bytes;
	bool ready, closed;
	bool clear; /* the account reads device events' personal fields in clear */
	char closed_why[200];
	struct rsub *next;
};

/* ---- argument helpers ---- */

/* Remove `--name VALUE` from argv; *value is a copy (caller frees) or NULL if absent. */
static int opt_value(struct cmd_call *call, const char *name, char **value)
{
	*value = NULL;
	for (int i = 1; i < call->argc; i++)
		if (strcmp(call->argv[i], name) == 0) {
			if (i + 1 >= call->argc)
				return cmd_fail(call, LINLI_EINVAL, "%s needs a value", name);
			*value = call->argv[i + 1];
			free(call->argv[i]);
			memmove(&call->argv[i], &call->argv[i + 2],
				(size_t)(call->argc - i - 1) * sizeof(char *));
			call->argc -= 2;
			return 0;
		}
	return 0;
}

static int parse_u64(struct cmd_call *call, const char *s, const char *what, uint64_t lo,
		     uint64_t hi, uint64_t *out)
{
	char *end;
	if (!s || !*s || *s == '-')
		goto bad;
	unsigned long long v = strtoull(s, &end, 10);
	if (*end || v < lo || v > hi)
		goto bad;
	*out = v;
	return 0;
bad:
	return cmd_fail(call, LINLI_EINVAL, "%s '%s' is not a number in %llu..%llu", what,
			s ? s : "", (unsigned long long)lo, (unsigned long long)hi);
}

/* ---- the queue of one subscription ---- */

static struct bus_blob *ring_at(const struct rsub *s, size_t i)
{
	return s->ring[(s->head + i) & (s->cap - 1)];
}

static int ring_push(struct rsub *s, struct bus_blob *b)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		struct bus_blob **v = malloc(cap * sizeof *v);
		if (!v)
			return LINLI_ENOMEM;
		for (size_t i = 0; i < s->n; i++)
			v[i] = ring_at(s, i);
		free(s->ring);
		s->ring = v;
		s->cap = cap;
		s->head = 0;
	}
	s->ring[(s->head + s->n) & (s->cap - 1)] = b;
	s->n++;
	return 0;
}

static void ring_pop(struct rsub *s)
{
	bus_blob_unref(s->ring[s->head]);
	s->head = (s->head + 1) & (s->cap - 1);
	s->n--;
}

static void ring_clear(struct rsub *s)
{
	while (s->n)
		ring_pop(s);
	free(s->ring);
	s->ring = NULL;
	s->cap = s->head = 0;
}

/* ---- replies ---- */

/*
 * Reply with the first events of the queue: at most `max` of them and about
 * `budget` bytes (at least one event, so one larger than the budget still
 * goes), and only sealed ones.
 */
static void pack_reply(struct rsub *s, struct cmd_call *call, size_t max, size_t budget, bool busy)
{
	uint64_t sealed = bus_sealed_seq(s->r->bus);
	size_t n = 0, bytes = 0;
	while (n < s->n && n < max) {
		struct bus_blob *b = ring_at(s, n);
		if (b->seq > sealed || (n > 0 && bytes + b->len > budget))
			break;
		bytes += b->len;
		n++;
	}
	if (n)
		s->sent_through = ring_at(s, n - 1)->seq;
	msgpack_packer *pk = &call->pk;
	msgpack_pack_map(pk, 6);
	mp_kv_uint(pk, "id", s->id);
	mp_kv_uint(pk, "cursor", s->sent_through);
	mp_kv_uint(pk, "lost", s->lost);
	mp_kv_uint(pk, "queued", s->n - n);
	mp_kv_bool(pk, "busy", busy);
	mp_str(pk, "events");
	msgpack_pack_array(pk, n);
	for (size_t i = 0; i < n; i++) {
		struct bus_blob *b = ring_at(s, i);
		msgpack_sbuffer_write(&call->data, b->data, b->len);
	}
}

static bool has_ready(const struct rsub *s)
{
	return s->n && ring_at(s, 0)->seq <= bus_sealed_seq(s->r->bus) &&
	       ring_at(s, 0)->seq > s->sent_through;
}

static void waiter_done(struct rsub *s)
{
	if (s->timer)
		kernel_timer_cancel(s->r->k, s->timer);
	s->timer = 0;
	s->waiter = NULL;
	s->ready = false;
	s->r->waiters--;
}

/* Shutdown (cmd_cancel_pending): forget the parked poll; the registry fails it. */
static void on_waiter_cancel(struct cmd_call *call, void *arg)
{
	(void)call;
	waiter_done(arg);
}

/* Answer the waiting poll of `s` with what is ready (maybe nothing). */
static void answer(struct rsub *s)
{
	struct cmd_call *call = s->waiter;
	size_t max = s->want_max, budget = s->want_bytes;
	waiter_done(s);
	s->last_poll_ms = kernel_now_ms();
	if (s->closed) {
		cmd_finish(call, cmd_fail(call, LINLI_ELIMIT, "%s", s->closed_why));
		return;
	}
	/* The poll waited: its session may have ended meanwhile (tier_store.h). */
	int rc = tiers_recheck(s->r->k, call);
	if (rc) {
		cmd_finish(call, rc);
		return;
	}
	pack_reply(s, call, max, budget, false);
	cmd_finish(call, 0);
}

static void on_wait_timeout(struct kernel *k, void *arg)
{
	(void)k;
	struct rsub *s = arg;
	s->timer = 0; /* one-shot: already gone from the kernel's list */
	if (s->waiter)
		answer(s);
}

static void on_kick(struct kernel *k, void *arg)
{
	(void)k;
	((struct bus_remote *)arg)->kick_posted = false;
}

/* After the bus sealed this batch's events: answer every poll that has some. */
static void on_batch_end(struct kernel *k, void *arg)
{
	(void)k;
	struct bus_remote *r = arg;
	if (!r->any_ready)
		return;
	r->any_ready = false;
	for (struct rsub *s = r->subs; s; s = s->next) {
		if (!s->ready || !s->waiter)
			continue;
		if (has_ready(s) || s->closed)
			answer(s);
		else
			r->any_ready = true; /* not sealed yet: next batch */
	}
}

__attribute__((format(printf, 2, 3))) static void close_sub(struct rsub *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->closed_why, sizeof s->closed_why, fmt, ap);
	va_end(ap);
	log_warn("bus", "external subscription %llu ('%s') closed: %s", (unsigned long long)s->id,
		 s->pattern, s->closed_why);
	s->closed = true;
	bus_unsubscribe(s->r->bus, s->id, s->r); /* safe inside the handler */
	ring_clear(s);
	if (s->waiter) {
		s->ready = true;
		s->r->any_ready = true;
	}
}

static void mark_ready(struct rsub *s)
{
	struct bus_remote *r = s->r;
	if (!s->waiter)
		return;
	s->ready = true;
	r->any_ready = true;
	/*
	 * Events published outside a kernel batch (from a timer) are sealed only
	 * when a batch ends: make sure one does.
	 */
	if (!r->kick_posted && kernel_post(r->k, on_kick, r) == 0)
		r->kick_posted = true;
}

/* The bus handler of an external subscription. */
static int on_event(const struct bus_event *ev, void *ud)
{
	struct rsub *s = ud;
	struct bus *bus = s->r->bus;
	const struct bus_limits *lim = bus_get_limits(bus);
	if (ev->cls == BUS_TELEMETRY && s->n >= (size_t)lim->subscriber_queue) {
		s->lost++;
		bus_count_subscriber_shed(bus, ev);
		return 0;
	}
	if (ev->cls == BUS_CONSEQUENCE && s->n >= (size_t)lim->subscriber_backlog) {
		close_sub(s,
			  "it fell behind by more than %llu events (bus.subscriber_backlog) and a "
			  "record of consequence could not be queued; subscribe again",
			  (unsigned long long)lim->subscriber_backlog);
		mark_ready(s);
		return 0;
	}
	struct bus_blob *b;
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	if (!s->clear &&
	    hal_event_mask(s->r->k->catalog, ev->topic, ev->payload, ev->payload_len, &sb)) {
		struct bus_event masked = *ev; /* encoded for this subscriber alone */
		masked.payload = sb.data;
		masked.payload_len = sb.size;
		b = bus_event_blob(bus, &masked);
	} else
		b = bus_event_blob(bus, ev);
	msgpack_sbuffer_destroy(&sb);
	if (!b || ring_push(s, b) != 0) {
		bus_blob_unref(b);
		if (ev->cls == BUS_TELEMETRY) {
			s->lost++;
			bus_count_subscriber_shed(bus, ev);
			return LINLI_ENOMEM;
		}
		close_sub(s,
			  "out of memory queueing a record of consequence (seq %llu); "
			  "subscribe again",
			  (unsigned long long)ev->seq);
		mark_ready(s);
		return LINLI_ENOMEM;
	}
	mark_ready(s);
	return 0;
}

static struct rsub *find_sub(struct bus_remote *r, uint64_t id)
{
	for (struct rsub *s = r->subs; s; s = s->next)
		if (s->id == id)
			return s;
	return NULL;
}

/* Remove and free `s` (its poll, if any, answered empty first). */
static void drop_sub(struct rsub *s)
{
	struct bus_remote *r = s->r;
	if (s->waiter) {
		struct cmd_call *call = s->waiter;
		waiter_done(s);
		if (s->closed)
			cmd_finish(call, cmd_fail(call, LINLI_ELIMIT, "%s", s->closed_why));
		else {
			pack_reply(s, call, 0, 0, false);
			cmd_finish(call, 0);
		}
	}
	if (!s->closed)
		bus_unsubscribe(r->bus, s->id, r);
	ring_clear(s);
	for (struct rsub **pp = &r->subs; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	free(s->pattern);
	free(s);
}

static void on_expire(struct kernel *k, void *arg)
{
	struct bus_remote *r = arg;
	uint64_t now = kernel_now_ms();
	uint64_t idle = (uint64_t)bus_get_limits(r->bus)->subscriber_idle_ms;
	(void)k;
	for (struct rsub *s = r->subs, *next; s; s = next) {
		next = s->next;
		if (!s->waiter && now - s->last_poll_ms > idle) {
			log_info("bus",
				 "external subscription %llu ('%s') expired: not polled for "
				 "%llu s",
				 (unsigned long long)s->id, s->pattern,
				 (unsigned long long)(idle / 1000));
			drop_sub(s);
		}
	}
}

/* ---- commands ---- */

static int cmd_subscribe(struct cmd_call *call, void *ud)
{
	struct bus_remote *r = ud;
	char *scope_opt;
	int rc = opt_value(call, "--scope", &scope_opt);
	if (rc)
		return rc;
	if (call->argc > 3) {
		free(scope_opt);
		return cmd_fail(call, LINLI_EINVAL,
				"usage: events subscribe [PATTERN] [--scope S]");
	}
	const char *pattern = call->argc == 3 ? call->argv[2] : "#";
	char scope[SCOPE_MAX + 1];
	rc =
	    access_scope(call, scope_opt, "events subscribe", ACT_EVENTS_SUBSCRIBE, pattern, scope);
	free(scope_opt);
	if (rc)
		return rc;
	struct rsub *s = calloc(1, sizeof *s);
	if (s && call->who) {
		snprintf(s->owner, sizeof s->owner, "%s", call->who->name);
		s->clear = tier_sees_sensitive(call->who, HAL_SENSITIVE_DATASET);
	}
	if (!s || !(s->pattern = strdup(pattern))) {
		free(s);
		return LINLI_ENOMEM;
	}
	s->r = r;
	snprintf(s->scope, sizeof s->scope, "%s", scope);
	s->last_poll_ms = kernel_now_ms();
	char err[256];
	if ((rc = bus_subscribe(r->bus, pattern, scope, on_event, s, r, "external", &s->id, err,
				sizeof err))) {
		free(s->pattern);
		free(s);
		return cmd_fail(call, rc, "events subscribe: %s", err);
	}
	s->next = r->subs;
	r->subs = s;
	log_debug("bus", "external subscription %llu: '%s' in %s", (unsigned long long)s->id,
		  pattern, scope);
	msgpack_packer *pk = &call->pk;
	msgpack_pack_map(pk, 4);
	mp_kv_uint(pk, "id", s->id);
	mp_kv_str(pk, "pattern", pattern);
	mp_kv_str(pk, "scope", scope);
	mp_kv_uint(pk, "idle_expiry_s",
		   (uint64_t)bus_get_limits(r->bus)->subscriber_idle_ms / 1000);
	return 0;
}

static int get_sub(struct cmd_call *call, struct bus_remote *r, const char *word, struct rsub **out)
{
	uint64_t id = 0;
	int rc = parse_u64(call, word, "subscription id", 1, UINT64_MAX, &id);
	if (rc)
		return rc;
	struct rsub *s = find_sub(r, id);
	/* Another account's subscription is as good as absent: its events may lie
	 * outside the caller's jurisdiction. */
	if (s && call->who && strcmp(s->owner, call->who->name) != 0)
		s = NULL;
	if (!s)
		return cmd_fail(call, LINLI_ENOENT,
				"no external subscription %llu (it expired after %d s without a "
				"poll, was unsubscribed, or never existed)",
				(unsigned long long)id,
				bus_get_limits(r->bus)->subscriber_idle_ms / 1000);
	*out = s;
	return 0;
}

static int cmd_next(struct cmd_call *call, void *ud)
{
	struct bus_remote *r = ud;
	char *wait_s, *max_s = NULL, *bytes_s = NULL;
	int rc = opt_value(call, "--wait", &wait_s);
	if (!rc)
		rc = opt_value(call, "--max", &max_s);
	if (!rc)
		rc = opt_value(call, "--bytes", &bytes_s);
	uint64_t wait = WAIT_DEFAULT_MS, max = MAX_BATCH_DEFAULT, bytes = REPLY_BYTES, cursor = 0;
	if (!rc && wait_s)
		rc = parse_u64(call, wait_s, "--wait", 0, WAIT_MAX_MS, &wait);
	if (!rc && max_s)
		rc = parse_u64(call, max_s, "--max", 1, 1 << 22, &max);
	if (!rc && bytes_s)
		rc = parse_u64(call, bytes_s, "--bytes", 1024, REPLY_BYTES_MAX, &bytes);
	free(wait_s);
	free(max_s);
	free(bytes_s);
	if (rc)
		return rc;
	if (call->argc < 3 || call->argc > 4)
		return cmd_fail(call, LINLI_EINVAL,
				"usage: events next ID [CURSOR] [--wait MS] [--max N] [--bytes B]");
	struct rsub *s = NULL;
	if ((rc = get_sub(call, r, call->argv[2], &s)))
		return rc;
	/*
	 * The subscription was allowed to its account as it was then; the
	 * account may since have moved or changed role: it reads on only what
	 * it may subscribe to now (a refusal is audited, the subscription ends).
	 */
	if ((rc = access_call(call, ACT_EVENTS_SUBSCRIBE, s->scope, s->pattern))) {
		drop_sub(s);
		return rc;
	}
	if (s->closed) {
		rc = cmd_fail(call, LINLI_ELIMIT, "subscription %llu: %s",
			      (unsigned long long)s->id, s->closed_why);
		drop_sub(s);
		return rc;
	}
	cursor = s->sent_through;
	if (call->argc == 4 &&
	    (rc = parse_u64(call, call->argv[3], "cursor", 0, UINT64_MAX, &cursor)))
		return rc;
	if (cursor > s->sent_through)
		cursor = s->sent_through; /* cannot acknowledge what was never sent */
	s->last_poll_ms = kernel_now_ms();
	if (s->waiter) /* a newer poll replaces an older one: answer that one first */
		answer(s);
	while (s->n && ring_at(s, 0)->seq <= cursor)
		ring_pop(s);
	s->sent_through = cursor;
	if (has_ready(s) || wait == 0) {
		pack_reply(s, call, max, bytes, false);
		return 0;
	}
	if (r->waiters >= r->max_waiters) {
		pack_reply(s, call, max, bytes, true);
		return 0;
	}
	s->waiter = call;
	call->on_cancel = on_waiter_cancel;
	call->cancel_arg = s;
	s->want_max = max;
	s->want_bytes = bytes;
	r->waiters++;
	s->timer = kernel_timer_add(r->k, wait, 0, on_wait_timeout, s);
	if (s->n) /* queued but not yet sealed: answer when the batch ends */
		mark_ready(s);
	return CMD_PENDING;
}

static int cmd_unsubscribe(struct cmd_call *call, void *ud)
{
	struct bus_remote *r = ud;
	if (call->argc != 3)
		return cmd_fail(call, LINLI_EINVAL, "usage: events unsubscribe ID");
	struct rsub *s = NULL;
	int rc = get_sub(call, r, call->argv[2], &s);
	if (rc)
		return rc;
	drop_sub(s);
	return 0;
}

struct list_ctx {
	struct bus_remote *r;
	const struct cmd_call *call;
	msgpack_packer *pk;
	int n;
	bool pack;
};

/*
 * `events list` shows a subscription whose scope lies within the caller's
 * subtree in full. An in-process one that covers it (a plugin's or a
 * rule's, at the node's path or the whole tree) is a node-level object: its
 * owner, pattern and scope show, its counters (events of the whole node)
 * only to callers whose subtree covers the node. Other accounts'
 * subscriptions outside the caller's subtree (a sibling's, a parent's) never
 * show.
 */
static void list_one(const struct bus_sub_info *si, void *arg)
{
	struct list_ctx *c = arg;
	bool full = access_sees(c->call, si->scope);
	bool external = si->owner == c->r;
	if (!full && (external || !scope_within(si->scope, c->call->who->scope)))
		return;
	c->n++;
	if (!c->pack)
		return;
	const struct rsub *s = external ? si->ud : NULL;
	msgpack_packer *pk = c->pk;
	msgpack_pack_map(pk, 8);
	mp_kv_uint(pk, "id", si->id);
	mp_kv_str(pk, "owner", si->owner_name);
	mp_kv_str(pk, "pattern", si->pattern);
	mp_kv_str(pk, "scope", *si->scope ? si->scope : "(all)");
	if (full) {
		mp_kv_uint(pk, "delivered", si->delivered);
		mp_kv_uint(pk, "errors", si->errors);
		mp_kv_uint(pk, "queued", s ? s->n : 0);
		mp_kv_uint(pk, "lost", s ? s->lost : 0);
	} else {
		static const char *const keys[] = {"delivered", "errors", "queued", "lost"};
		for (int i = 0; i < 4; i++) {
			mp_str(pk, keys[i]);
			msgpack_pack_nil(pk);
		}
	}
}

static int cmd_list(struct cmd_call *call, void *ud)
{
	struct bus_remote *r = ud;
	if (call->argc != 2)
		return cmd_fail(call, LINLI_EINVAL, "usage: events list");
	struct list_ctx c = {r, call, &call->pk, 0, false};
	bus_foreach_sub(r->bus, list_one, &c);
	msgpack_pack_array(&call->pk, (size_t)c.n);
	c.pack = true;
	c.n = 0;
	bus_foreach_sub(r->bus, list_one, &c);
	return 0;
}

/*
 * The families' counters count every event of the node: they are the
 * node's, shown only to a caller whose subtree covers it (checked, and a
 * refusal audited, at the node's path).
 */
static int cmd_stats(struct cmd_call *call, void *ud)
{
	struct bus_remote *r = ud;
	if (call->argc != 2)
		return cmd_fail(call, LINLI_EINVAL, "usage: events stats");
	int rc = access_call(call, ACT_EVENTS_SUBSCRIBE, r->k->cfg.node_path, NULL);
	if (rc) {
		char why[sizeof call->err];
		snprintf(why, sizeof why, "%s", call->err);
		return cmd_fail(call, rc,
				"events stats: the counters are node-wide; they take an account "
				"whose jurisdiction covers the node '%s' (%s)",
				r->k->cfg.node_path, why);
	}
	bus_pack_families(r->bus, &call->pk);
	return 0;
}

static int cmd_tail(struct cmd_call *call, void *ud)
{
	(void)ud;
	return cmd_fail(call, LINLI_ENOTSUP,
			"'events tail' is a loop of the linli console (it subscribes, then polls "
			"'events next'); run it with linli");
}

static int cmd_publish(struct cmd_call *call, void *ud)
{
	struct bus_remote *r = ud;
	char *scope_opt;
	int rc = opt_value(call, "--scope", &scope_opt);
	if (rc)
		return rc;
	const char *json = NULL;
	size_t json_len = 0;
	if (call->argc == 3) {
		json = call->argv[2];
		json_len = strlen(json);
	} else if (call->argc == 2 && call->input) {
		json = call->input;
		json_len = call->input_len;
	}
	if (call->argc < 2 || call->argc > 3 || (call->argc == 2 && !call->input)) {
		free(scope_opt);
		return cmd_fail(call, LINLI_EINVAL,
				"usage: publish TOPIC JSON-OBJECT [--scope S] (or the JSON on "
				"--stdin)");
	}
	const char *topic = call->argv[1];
	char scope[SCOPE_MAX + 1];
	rc = access_scope(call, scope_opt, "publish", ACT_EVENTS_PUBLISH, topic, scope);
	free(scope_opt);
	if (rc)
		return rc;
	msgpack_sbuffer buf;
	msgpack_packer pk;
	msgpack_sbuffer_init(&buf);
	msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
	char err[320];
	rc = json_parse_to_mp(json, json_len, &pk, err, sizeof err);
	if (rc) {
		msgpack_sbuffer_destroy(&buf);
		return cmd_fail(call, rc, "publish %s: payload: %s", topic, err);
	}
	unsigned char c0 = buf.size ? (unsigned char)buf.data[0] : 0;
	if (!((c0 >= 0x80 && c0 <= 0x8f) || c0 == 0xde || c0 == 0xdf)) {
		msgpack_sbuffer_destroy(&buf);
		return cmd_fail(call, LINLI_EINVAL,
				"publish %s: payload must be a JSON object, e.g. '{\"level\": 2}'",
				topic);
	}
	struct bus_msg m = {topic, "console", scope, buf.data, buf.size};
	uint64_t seq = 0;
	rc = bus_publish(r->bus, &m, &seq, err, sizeof err);
	msgpack_sbuffer_destroy(&buf);
	if (rc)
		return cmd_fail(call, rc, "publish: %s", err);
	msgpack_packer *out = &call->pk;
	msgpack_pack_map(out, 3);
	mp_kv_uint(out, "seq", seq);
	mp_kv_str(out, "topic", topic);
	mp_kv_str(out, "scope", scope);
	/* A record of consequence is acknowledged once its batch is on disk. */
	return journal_await(r->k, call) ? CMD_PENDING : 0;
}

void bus_cmds_end_owner(struct bus_remote *r, const char *owner, const char *why)
{
	for (struct rsub *s = r ? r->subs : NULL, *next; s; s = next) {
		next = s->next;
		if (strcmp(s->owner, owner) != 0)
			continue;
		if (s->waiter) {
			struct cmd_call *call = s->waiter;
			waiter_done(s);
			cmd_finish(call, cmd_fail(call, LINLI_EAUTH,
						  "session ended: %s; log in again", why));
		}
		log_info("bus",
			 "external subscription %llu ('%s') of %s ended with its sessions: %s",
			 (unsigned long long)s->id, s->pattern, owner, why);
		drop_sub(s);
	}
}

int bus_cmds_open(struct kernel *k, struct bus_remote **out)
{
	struct bus_remote *r = calloc(1, sizeof *r);
	if (!r)
		return LINLI_ENOMEM;
	r->k = k;
	r->bus = k->bus;
	r->max_waiters = k->cfg.control_workers > 2 ? k->cfg.control_workers - 2 : 1;
	struct {
		const char *name, *sub, *usage, *summary;
		cmd_fn fn;
	} cmds[] = {
	    {"events", "subscribe", "[PATTERN] [--scope S]",
	     "subscribe from another process; poll with 'events next'", cmd_subscribe},
	    {"events", "next", "ID [CURSOR] [--wait MS] [--max N] [--bytes B]",
	     "a batch of events of a subscription (waits up to MS for one)", cmd_next},
	    {"events", "unsubscribe", "ID", "drop an external subscription", cmd_unsubscribe},
	    {"events", "list", "", "the bus's subscriptions, in-process and external", cmd_list},
	    {"events", "stats", "", "per topic family: published, delivered, shed", cmd_stats},
	    {"events", "tail", "[PATTERN] [--json] [--count N] [--seconds S] [--scope S]",
	     "print events live until Ctrl-C", cmd_tail},
	    {"publish", NULL, "TOPIC JSON-OBJECT [--scope S]", "publish one event on the bus",
	     cmd_publish},
	};
	int rc = 0;
	for (size_t i = 0; !rc && i < sizeof cmds / sizeof cmds[0]; i++)
		rc = cmd_register(k->cmds, cmds[i].name, cmds[i].sub, cmds[i].usage,
				  cmds[i].summary, cmds[i].fn, r, r);
	if (!rc)
		rc = kernel_on_batch_end(k, on_batch_end, r);
	if (!rc && !(r->expire_timer = kernel_timer_add(k, 1000, 1000, on_expire, r)))
		rc = LINLI_ENOMEM;
	if (rc) {
		cmd_unregister_owner(k->cmds, r);
		free(r);
		return rc;
	}
	*out = r;
	return 0;
}

void bus_cmds_close(struct bus_remote *r)
{
	if (!r)
		return;
	while (r->subs)
		drop_sub(r->subs);
	kernel_timer_cancel(r->k, r->expire_timer);
	cmd_unregister_owner(r->k->cmds, r);
	free(r);
}
