/*
 * bus — the kernel's event bus: topics, subscriptions, delivery, shedding.
 *
 * Owns the subscription trie, the delivery queue, the topic families
 * (telemetry or record of consequence) with their counters, and the journal
 * hook. An event is a topic (`dev/smoke/sd-0042/event/alarm`), a publisher, a
 * scope (jurisdiction path) and one MessagePack map as payload. Subscribers
 * name a pattern (`+` one level, `#` the rest) and a scope, and receive only
 * events whose scope lies within their own subtree (scope_within): the city
 * sees all, nothing crosses sideways.
 *
 * Everything here runs on the kernel thread except bus_post and the pure
 * functions (bus_topic_check, bus_pattern_check, bus_pattern_match), which are
 * safe anywhere. Handlers are called on the kernel thread, one event at a time,
 * in publication order; a handler that publishes queues its event behind the
 * one being delivered (no recursion). Never shed a record of consequence;
 * never deliver one before the journal accepted it; never block.
 *
 * Permission checks are not made here: callers (the console commands, the SDK
 * wrappers) decide which scope a publisher or subscriber may use.
 */
#ifndef LINLI_BUS_H
#define LINLI_BUS_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kernel;
struct cfg;
struct bus;

#define BUS_TOPIC_MAX	  255	      /* bytes of a topic or pattern, without the NUL */
#define BUS_LEVELS_MAX	  16	      /* levels of a topic or pattern */
#define BUS_PUBLISHER_MAX 128	      /* bytes of a publisher name */
#define BUS_PAYLOAD_MAX	  (256 << 10) /* bytes of one payload */
#define BUS_FAMILIES_MAX  32	      /* declared topic families (config) */

enum bus_class {
	BUS_TELEMETRY = 0,   /* may be shed under overload, counted */
	BUS_CONSEQUENCE = 1, /* alarms, incidents, applications: journaled, never shed */
};

const char *bus_class_name(enum bus_class c); /* "telemetry", "consequence" */

/*
 * One event as a handler sees it. Every pointer is owned by the bus and valid
 * only during the handler call: copy what you keep.
 */
struct bus_event {
	uint64_t seq;	   /* bus-wide, strictly increasing in delivery order */
	uint64_t time_ms;  /* wall clock at publication, ms since the epoch */
	const char *topic; /* validated: no wildcard, no empty level */
	const char *publisher;
	const char *scope;   /* a well-formed jurisdiction path */
	const void *payload; /* one MessagePack map */
	size_t payload_len;
	enum bus_class cls;
	const char *family; /* the family pattern that classified it, e.g. "alarm/#" */
	/*
	 * Cause depth: 0 for an event published by the kernel, a device, a C
	 * plugin, a console command, or a script outside any event handler (a
	 * timer, a command, init); d + 1 for one a script publishes while it
	 * handles an event of depth d. Kept through every queue.
	 */
	uint32_t depth;
	bool delayed; /* its delivery waited for a later loop turn (KERNEL_EVENT_TURN_MS) */
};

/* What a publisher hands in. `payload` NULL (or len 0) means an empty map. */
struct bus_msg {
	const char *topic;
	const char *publisher;
	const char *scope;
	const void *payload;
	size_t payload_len;
};

/*
 * A handler returns 0, or a negative LINLI_E* code: the error is logged with
 * the subscriber's owner name (rate-limited) and delivery to the others goes
 * on. It may publish, subscribe and unsubscribe (itself included).
 */
typedef int (*bus_handler)(const struct bus_event *ev, void *ud);

/*
 * The journal: where records of consequence are written before delivery.
 * `write` runs on the kernel thread for every consequence event, before any
 * subscriber sees it; a non-zero return refuses the publication (the publisher
 * gets the code and message; nothing is delivered). `flush` (may be NULL) runs
 * at the end of every kernel batch in which events were journaled, before the
 * bus lets them leave the process (external subscribers are answered only
 * with events the journal has flushed); a non-zero return keeps them back
 * until a later flush succeeds (LINLI_EBUSY: not durable yet, and no error:
 * the store's group commit keeps the batch open for a later turn). The store
 * plugs in with one bus_set_journal.
 */
struct bus_journal {
	int (*write)(void *arg, const struct bus_event *ev, char *err, size_t errlen);
	int (*flush)(void *arg, char *err, size_t errlen);
	void *arg;
};

/* Limits the config sets; bus_reconfigure applies new ones live. */
struct bus_limits {
	int telemetry_queue;  /* telemetry waiting for delivery before new ones are shed */
	int subscriber_queue; /* events an external subscriber may hold before telemetry is shed */
	int subscriber_backlog; /* ... before the subscription is closed (records of consequence) */
	int subscriber_idle_ms; /* an external subscription nobody polls expires after this */
};

/* ---- pure functions, safe on any thread ---- */

/*
 * bus_topic_check — is `topic` publishable? Levels of printable ASCII
 * (no space), separated by '/', none empty, no '+' or '#', at most
 * BUS_LEVELS_MAX levels and BUS_TOPIC_MAX bytes. On failure writes the reason
 * to `why` (may be NULL) and returns false.
 */
bool bus_topic_check(const char *topic, char *why, size_t whylen);

/*
 * bus_pattern_check — is `pattern` a valid subscription? As a topic, but a
 * level may be `+` (exactly one level) and the last level may be `#` (zero or
 * more levels: `a/#` matches `a`, `a/b`, `a/b/c`; `#` matches everything).
 */
bool bus_pattern_check(const char *pattern, char *why, size_t whylen);

/* Does valid `pattern` match valid `topic`? One pass, no allocation. */
bool bus_pattern_match(const char *pattern, const char *topic);

/* ---- life cycle (kernel thread) ---- */

/*
 * bus_open — a bus for kernel `k`, its topic families and limits taken from
 * k->cfg. Registers a batch-end hook on the kernel (open the store before the
 * bus). Returns 0, LINLI_ENOMEM, or LINLI_ECONFIG with `err` filled.
 */
int bus_open(struct kernel *k, struct bus **out, char *err, size_t errlen);

/* Free everything. Subscriptions are dropped without calling anyone. */
void bus_close(struct bus *b);

/* Apply the limits of a reloaded cfg at once; families change on restart (logged). */
void bus_reconfigure(struct bus *b, const struct cfg *cfg);

const struct bus_limits *bus_get_limits(const struct bus *b);

/* Plug the journal in (NULL: none). Until then records of consequence are not stored. */
void bus_set_journal(struct bus *b, const struct bus_journal *j);
bool bus_has_journal(const struct bus *b);

/*
 * bus_continue_seq — number the next event after `last` (the journal's last
 * seq at start), so that seq numbers never repeat across restarts. Only
 * raises the counter; call before the first publication.
 */
void bus_continue_seq(struct bus *b, uint64_t last);

/* ---- subscriptions (kernel thread) ---- */

/*
 * bus_subscribe — call fn(ev, ud) for every event whose topic matches
 * `pattern` and whose scope is within `scope` ("" = the whole tree, else a
 * well-formed path). `owner` groups subscriptions for bus_unsubscribe_owner
 * (a plugin handle); `owner_name` names the subscriber in logs and listings
 * (copied). Events published before the call are not delivered to it.
 * Returns 0 with the id in *id_out (> 0), or LINLI_EINVAL with `err` naming
 * what is wrong, or LINLI_ENOMEM.
 */
int bus_subscribe(struct bus *b, const char *pattern, const char *scope, bus_handler fn, void *ud,
		  const void *owner, const char *owner_name, uint64_t *id_out, char *err,
		  size_t errlen);

/*
 * bus_unsubscribe — remove subscription `id`. When `owner` is not NULL it must
 * be the subscription's owner (LINLI_EPERM otherwise). Safe inside a handler:
 * the subscription receives nothing more. Returns 0 or LINLI_ENOENT.
 */
int bus_unsubscribe(struct bus *b, uint64_t id, const void *owner);

/* Remove every subscription of `owner`; returns how many. */
int bus_unsubscribe_owner(struct bus *b, const void *owner);

/*
 * bus_set_release — call release(ud) once when subscription `id` is gone for
 * good (unsubscribed, its owner removed, or the bus closed), never while its
 * handler runs. For a wrapper (the SDK table) that allocates a trampoline per
 * subscription. Returns 0 or LINLI_ENOENT.
 */
int bus_set_release(struct bus *b, uint64_t id, void (*release)(void *ud));

/* ---- publishing ---- */

/*
 * bus_publish — publish on the kernel thread. Validates the message, assigns
 * the event's seq and time, journals a record of consequence (refusal: the
 * journal's code), then delivers — at once, or, from inside a handler, after
 * the event being delivered. Returns 0 with the seq in *seq_out (may be
 * NULL); LINLI_EINVAL (bad topic, publisher, scope or payload, `err` says
 * which); LINLI_EBUSY when telemetry is shed because the queue is full;
 * LINLI_ESTATE off the kernel thread; or the journal's code.
 */
int bus_publish(struct bus *b, const struct bus_msg *m, uint64_t *seq_out, char *err,
		size_t errlen);

/*
 * bus_publish_caused — bus_publish of an event of cause depth `depth` (see
 * struct bus_event). With BUS_PUB_LATER the event is never delivered inside
 * this call, always from the queue after the caller's kernel event: a
 * script's publish, so that its subscribers' work is neither charged to the
 * publisher's time limit nor run nested in it, and a flood waits its turn.
 */
#define BUS_PUB_LATER 1u
int bus_publish_caused(struct bus *b, const struct bus_msg *m, uint32_t depth, unsigned flags,
		       uint64_t *seq_out, char *err, size_t errlen);

/*
 * bus_post — publish from any thread (drivers). Validates and copies the
 * message on the calling thread, then hands it to the kernel thread with
 * kernel_post; events of one posting thread are delivered in the order
 * posted. Telemetry is refused with LINLI_EBUSY (and counted as shed) while
 * `telemetry_queue` telemetry events wait; records of consequence are always
 * taken. A journal refusal happens later, on the kernel thread: it is logged
 * and counted. Returns 0, LINLI_EINVAL, LINLI_EBUSY, LINLI_ENOMEM, or
 * LINLI_ESTATE once the kernel has stopped.
 */
int bus_post(struct bus *b, const struct bus_msg *m, char *err, size_t errlen);

/*
 * ---- request/reply (kernel thread) ----
 *
 * A server serves a topic pattern at a scope (its jurisdiction); a request
 * names a topic and a scope and goes to exactly one server: among the live
 * ones whose pattern matches the topic and whose scope holds the request's
 * scope, the one registered first. None: the request is refused at once with
 * LINLI_ENOENT (it was never delivered). Two servers of the same pattern
 * whose scopes overlap are refused (LINLI_EEXIST). A request is handed to its
 * server from a zero-delay timer (never inside bus_request), and its answer
 * to the requester the same way (never inside bus_reply): exactly once, the
 * server's status and record, LINLI_ETIMEDOUT, or LINLI_ESTATE when the
 * server was removed before it replied (it may have acted on the request).
 * A dropped request (the requester went away) is never answered.
 */

/* One request as the server's handler sees it; borrowed for the call. */
struct bus_request {
	uint64_t id;
	const char *topic, *scope, *requester;
	const void *payload; /* one MessagePack map */
	size_t payload_len;
};

/* The server's handler: answer with bus_reply, inside or later. */
typedef void (*bus_serve_fn)(const struct bus_request *rq, void *ud);

/*
 * The requester's answer: status (the server's: 0 or positive, or a negative
 * LINLI_E* code; or the bus's LINLI_ETIMEDOUT / LINLI_ESTATE), the reply's
 * record (a MessagePack map, or NULL/0), a message (never NULL, "" when
 * none). Everything is borrowed for the call.
 */
typedef void (*bus_reply_fn)(uint64_t id, int status, const void *rec, size_t len, const char *msg,
			     void *ud);

#define BUS_REQUEST_TIMEOUT_MS	   10000  /* timeout_ms 0 */
#define BUS_REQUEST_TIMEOUT_MAX_MS 600000 /* at most */
#define BUS_REQUESTS_MAX	   10000  /* pending requests on the bus */

/*
 * bus_serve — serve requests on `pattern` whose scope lies within `scope`
 * ("" the whole tree). `owner` identifies the server for bus_reply and
 * bus_unserve; `owner_name` names it in listings (copied). Returns 0 with
 * the id (> 0) in *id_out; LINLI_EINVAL (bad pattern or scope, no fn);
 * LINLI_EEXIST (the same pattern is served over an overlapping scope: err
 * names the server); LINLI_ENOMEM.
 */
int bus_serve(struct bus *b, const char *pattern, const char *scope, bus_serve_fn fn, void *ud,
	      const void *owner, const char *owner_name, uint64_t *id_out, char *err,
	      size_t errlen);

/*
 * bus_unserve — remove server `id` (of `owner` when not NULL: LINLI_EPERM
 * otherwise). Its pending requests are answered LINLI_ESTATE at once (from
 * a zero-delay timer). Returns 0 or LINLI_ENOENT.
 */
int bus_unserve(struct bus *b, uint64_t id, const void *owner);

/*
 * bus_serve_suspend — take server `id` out of matching (on) or put it back
 * (off), for a plugin reload: a suspended server gets no new requests and
 * does not clash with a new one; its pending requests stay. Putting it back
 * fails with LINLI_EEXIST when a new server took the pattern meanwhile.
 */
int bus_serve_suspend(struct bus *b, uint64_t id, bool on);

/*
 * bus_request — send m (topic, requester as publisher, scope, payload) to
 * its server and call fn(id, ...) once with the answer within timeout_ms (0:
 * BUS_REQUEST_TIMEOUT_MS; at most BUS_REQUEST_TIMEOUT_MAX_MS). `owner`
 * groups requests for bus_request_drop. Returns 0 with the id (> 0) in
 * *id_out; or, with nothing sent and fn never called, LINLI_EINVAL (bad
 * message, timeout or fn), LINLI_ENOENT (no server: err names topic and
 * scope), LINLI_EBUSY (BUS_REQUESTS_MAX pending), LINLI_ENOMEM.
 */
int bus_request(struct bus *b, const struct bus_msg *m, uint32_t timeout_ms, bus_reply_fn fn,
		void *ud, const void *owner, uint64_t *id_out, char *err, size_t errlen);

/* bus_request_drop — forget request `id` of `owner`: fn is never called. 0 or LINLI_ENOENT. */
int bus_request_drop(struct bus *b, uint64_t id, const void *owner);

/*
 * bus_reply — the server `owner` answers request `id` (one delivered to one
 * of its servers) with `status`, a MessagePack map `rec` (NULL/0: none) and
 * a message `msg` (may be NULL). Copied; the requester's fn runs later.
 * Returns 0; LINLI_ENOENT (no such pending request of this server: already
 * answered, timed out, or not delivered to it); LINLI_EINVAL (rec not a
 * map, or over BUS_PAYLOAD_MAX); LINLI_ENOMEM. err says which.
 */
int bus_reply(struct bus *b, uint64_t id, const void *owner, int status, const void *rec,
	      size_t len, const char *msg, char *err, size_t errlen);

/* Counters of request/reply for `events stats`. */
struct bus_rq_totals {
	uint64_t requests, delivered, replies, timeouts, gone, no_server;
	int servers, pending;
};
void bus_rq_get_totals(const struct bus *b, struct bus_rq_totals *t);

/* ---- for external subscribers (bus_cmds) ---- */

/*
 * An event encoded once as the MessagePack map external subscribers receive:
 * {"seq", "time", "topic", "publisher", "scope", "class", "payload"}.
 * Reference counted (kernel thread only).
 */
struct bus_blob {
	uint32_t refs;
	enum bus_class cls;
	uint64_t seq;
	size_t len;
	char data[];
};

/*
 * bus_event_blob — the encoding of `ev`, which must be the event being
 * delivered (call it from a handler). Encoded on the first call per event and
 * shared; returns a new reference, or NULL when out of memory.
 */
struct bus_blob *bus_event_blob(struct bus *b, const struct bus_event *ev);
void bus_blob_unref(struct bus_blob *blob);

/* The highest seq that may leave the process (journal flushed, batch ended). */
uint64_t bus_sealed_seq(const struct bus *b);

/* Count telemetry shed at an external subscriber's queue, under its family. */
void bus_count_subscriber_shed(struct bus *b, const struct bus_event *ev);

/* ---- introspection (kernel thread) ---- */

struct bus_totals {
	uint64_t published, delivered, shed, subscriber_shed, refused, handler_errors;
	uint64_t consequence_published;
	uint64_t delayed; /* events a turn's delivery budget put off to a later turn */
	int subscriptions;
	bool journal;
};
void bus_get_totals(const struct bus *b, struct bus_totals *t);

/* Pack the families with their counters, an array of maps, for `events stats`. */
void bus_pack_families(const struct bus *b, msgpack_packer *pk);

/* Visit every live subscription (id order). */
struct bus_sub_info {
	uint64_t id;
	const char *pattern, *scope, *owner_name;
	const void *owner;
	void *ud;
	uint64_t delivered, errors;
};
void bus_foreach_sub(const struct bus *b, void (*fn)(const struct bus_sub_info *si, void *arg),
		     void *arg);

/*
 * ---- bus_cmds.c: external subscribers and the console's commands ----
 *
 * `events subscribe|next|unsubscribe|list|stats|tail` and `publish`. Another
 * process subscribes through the control socket (request/reply, never nng
 * pub/sub, which drops silently): a subscription keeps a bounded queue on the
 * daemon and `events next` long-polls it for a batch of events. Register
 * after bus_open (its batch-end hook must follow the bus's).
 */
struct bus_remote;
int bus_cmds_open(struct kernel *k, struct bus_remote **out);
/* Answer pending polls, drop external subscriptions, free. Before control_close. */
void bus_cmds_close(struct bus_remote *r);
/*
 * The sessions of account `owner` ended (tier_store.c: a password, role or
 * node change, a disable, a removal): its external subscriptions end with
 * them, a waiting poll answered with LINLI_EAUTH "session ended: `why`".
 */
void bus_cmds_end_owner(struct bus_remote *r, const char *owner, const char *why);

#endif
