/*
 * fed — see fed.h.
 */
#include "fed.h"

#include <dirent.h>
#include <errno.h>
#include <nats/nats.h>
#include <pthread.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linli/version.h>

#include "bus.h"
#include "catalog.h"
#include "access.h"
#include "cmd.h"
#include "grants.h"
#include "kernel.h"
#include "linli/error.h"
#include "log.h"
#include "mp.h"
#include "plugin.h"
#include "scope.h"
#include "script.h"
#include "script_cmds.h"
#include "store.h"
#include "tier.h"
#include "tier_store.h"
#include "util.h"

#define STREAM	       "LINLI_UP"
#define DURABLE	       "linlid-up" /* acks after the apply commits, waits 5 s */
#define SUBJECT_MAX    (SCOPE_MAX + 32)
#define FETCH_BATCH    64
#define STATUS_MAX     4096 /* a status bigger than this is refused */
#define CHILDREN_MAX   1024
#define RETRY_MS       1000 /* connecting, making the stream: tried again this often */
#define PUBLISH_WAIT   2000 /* a publish's acknowledgement, ms */
#define FED_STATUS_SUMMARY "the link to the tiers: connection, what went up, the children"
#define CHANGES_BATCH  512	    /* change log entries per message up at most */
#define CHANGES_BYTES  (256 << 10) /* and bytes */
#define CHANGES_MAX    (4u << 20)  /* a message of changes from below: bigger is refused */
#define WINDOW	       65536	    /* entries sent ahead of what the parent applied, at most */
#define ACK_WAIT_MS    5000	    /* the parent silent this long: sent again from its word */
#define ANNOUNCE_MS    1000	    /* each child is told what was applied this often */
#define ACK_WAIT_NS    (5 * 1000000000LL) /* the stream's redelivery of an unacknowledged one */
#define QUARANTINE_SHOWN 100
#define RULES_MAX      256	/* rules a node holds from above, at most */
#define ACKS_MAX       4096	/* what the subtree said of them, kept at most */
#define RESEND_TICKS   2	/* a rule a child has not acknowledged: sent again this often */
#define HASH_HEX       (2 * crypto_generichash_BYTES + 1)
/* The federation's messages: a node speaking another version is refused (its status shows
   why); 2: the down log, commands down. */
#define FED_PROTO      2
#define FED_DECOM_SUMMARY "take nothing more from a child (its data kept); --undo takes it back"
#define FED_PUSH_SUMMARY "push a rule down to every node below (each installs it, grants it, says so)"
#define FED_QUARANTINE_SUMMARY "changes from below that could not be applied: list, retry, drop"
#define FED_EXEC_SUMMARY "run a command at a node below, as yourself (its changes come back up)"
#define EXEC_WAIT_MS   15000	 /* a command sent down: its answer waited for this long */
#define EXEC_MAX       (900u << 10) /* a command's request or answer: bigger is refused */

struct child {
	char node[SCOPE_MAX + 1];
	char level[16], name[64], version[32], sdk[16];
	int64_t sent_at, seen_at; /* wall ms: the child's clock, ours */
	uint64_t seq, received;
	/* its changes: the last applied (committed: store fedin), counters, the last gap */
	uint64_t applied, entries, duplicates, gaps, lost, quarantined, forged;
	int64_t changes_at;
	char gap[200];
	char schema_differs[256]; /* datasets going up whose schema differs from this node's */
	char hold[256];		  /* why its changes wait (its protocol differs), or "" */
	uint64_t held;		  /* messages of changes not taken for that */
	bool decommissioned;	  /* federation decommission: nothing taken from it any more */
	/* what it applied of this node's down log (its word, or its status), -1: not said yet */
	int64_t down_word;
};

/* Sending the down log to a child (fed's thread, under mu for the word). */
struct dsend {
	char node[SCOPE_MAX + 1];
	uint64_t word, sent, msgs, resent;
	int64_t progress_ms, wait;
	bool probing, off; /* off: decommissioned, nothing sent */
};

/* A rule that came down (or was pushed here): kept under data_dir/federation/down. */
struct drule {
	char name[SCRIPT_NAME_MAX + 1], hash[HASH_HEX];
	char *text;
	size_t len;
};

/* What a node of the subtree said of a rule. */
struct dack {
	char node[SCOPE_MAX + 1], rule[SCRIPT_NAME_MAX + 1], hash[HASH_HEX];
	bool ok;
	char error[200];
	int64_t at;
};

/* A core NATS message for fed's thread to send (a rule down, its acknowledgement up). */
struct outmsg {
	char subject[SUBJECT_MAX];
	bool js; /* into the parent's JetStream (kept until it takes it) */
	size_t len;
	char *data;
};

/* Something to say to a child: what was applied of its changes. */
struct notice {
	char node[SCOPE_MAX + 1];
	uint64_t seq;
};

struct fed {
	struct kernel *k;
	char up_subject[SUBJECT_MAX];	  /* where this node's status goes */
	char children_filter[SUBJECT_MAX]; /* its children's: linli.up.<path>.*.> */
	pthread_t thread;
	bool started;
	uint64_t timer;
	/* Under mu: shared with fed's thread. */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	bool connected, consuming;
	char last_error[256];
	char *outgoing; /* a status to publish (msgpack), or NULL */
	size_t outgoing_len;
	uint64_t seq, published, publish_failed;
	int64_t last_published_at;
	/* The change log going up: the last numbered (kernel), the parent's word, what the
	   thread has sent (go-backs counted), a release of what the parent applied posted. */
	uint64_t out_last, up_applied, sent, sent_msgs, resent, up_failed;
	uint64_t released_seen; /* what the kernel thread has released (its last word) */
	bool release_posted;
	/* Down to the children: what to tell them, messages to acknowledge (fed's thread). */
	struct notice *notices;
	size_t n_notices, cap_notices;
	natsMsg **acks;
	bool *ack_ok;
	size_t n_acks, cap_acks;
	struct outmsg *outs;
	size_t n_outs, cap_outs;
	struct inbound *posted; /* handed to the kernel thread, not taken yet (under mu) */
	/* The down log: its last sequence (the kernel's), each child's sending (under mu). */
	uint64_t down_last;
	struct dsend *dsends;
	size_t n_dsends;
	/* Kernel thread only. */
	struct child *children;
	size_t n_children;
	uint64_t received, refused;
	uint64_t released, dropped, announce_timer;
	bool quota_alarm, alarm_told, quota_posted;
	uint64_t alarm_req;
	struct drule *rules;
	size_t n_rules;
	struct dack *dacks;
	size_t n_dacks;
	unsigned ticks;
	char down_dir[4200];
	/* From the parent's down log (kernel thread): applied, repeats, gaps, quarantined. */
	char parent[SCOPE_MAX + 1];
	uint64_t down_applied, down_entries, down_dups, down_gaps, down_quarantined, down_forged;
	uint64_t down_trimmed;
	bool word_due;
	bool children_dirty; /* statuses came since data_dir/federation/children was written */
	/* Commands sent down (federation exec), waiting for their answer (kernel thread). */
	struct xpend *xpend;
	size_t n_xpend;
	uint64_t xid;
	/* fed's thread only. */
	natsConnection *nc;
	jsCtx *js, *parent_js;
	natsSubscription *sub, *applied_sub;
	char changes_subject[SUBJECT_MAX], applied_subject[SUBJECT_MAX];
	uint64_t epoch, seen_applied;
	int64_t progress_ms, ack_wait;
	bool probing;
	msgpack_sbuffer upbuf, entbuf;
};

/* A command sent down, waiting for its answer. */
struct xpend {
	uint64_t id;
	struct cmd_call *call;
	int64_t deadline;
	char to[SCOPE_MAX + 1];
};

/* A message from a child, handed to the kernel thread (m: changes, to acknowledge after
   the commit; NULL: a status, copied into data). */
struct inbound {
	struct fed *f;
	struct inbound *prev, *next; /* posted, not run yet (freed at close if never run) */
	natsMsg *m;
	char subject[SUBJECT_MAX];
	size_t len;
	const char *bytes;
	char data[];
};

static void set_error(struct fed *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(struct fed *f, const char *fmt, ...)
{
	char buf[sizeof f->last_error];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&f->mu);
	bool changed = strcmp(buf, f->last_error) != 0;
	memcpy(f->last_error, buf, sizeof buf);
	pthread_mutex_unlock(&f->mu);
	if (changed) /* said once until it changes */
		log_warn("federation", "%s", buf);
}

/* url without its user:password@ (what logs and status show). */
static const char *shown_url(const char *url, char *buf, size_t n)
{
	const char *at = strchr(url, '@');
	if (!at)
		return url;
	snprintf(buf, n, "nats://%s", at + 1);
	return buf;
}

/* `path` as subject tokens: "hefei/baohe" -> "hefei.baohe" (segments are a-z0-9_-). */
static void tokens(const char *path, char *out, size_t n)
{
	snprintf(out, n, "%s", path);
	for (char *p = out; *p; p++)
		if (*p == '/')
			*p = '.';
}

static bool str_of(const msgpack_object *o, char *out, size_t n)
{
	if (!o || o->type != MSGPACK_OBJECT_STR || o->via.str.size >= n)
		return false;
	memcpy(out, o->via.str.ptr, o->via.str.size);
	out[o->via.str.size] = '\0';
	return true;
}

static bool u64_of(const msgpack_object *o, uint64_t *v)
{
	if (!o || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return false;
	*v = o->via.u64;
	return true;
}

/* ---- fed's thread: connecting, publishing, fetching ---- */

static void set_connected(struct fed *f, bool up)
{
	pthread_mutex_lock(&f->mu);
	f->connected = up;
	pthread_mutex_unlock(&f->mu);
	pthread_cond_signal(&f->cv);
}

static void on_disconnected(natsConnection *nc, void *ud)
{
	(void)nc;
	set_connected(ud, false);
}

static void on_reconnected(natsConnection *nc, void *ud)
{
	(void)nc;
	set_connected(ud, true);
}

static bool connect_once(struct fed *f)
{
	const struct cfg_fed *c = &f->k->cfg.fed;
	natsOptions *o = NULL;
	natsStatus s = natsOptions_Create(&o);
	char name[SCOPE_MAX + 16];
	snprintf(name, sizeof name, "linlid %s", f->k->cfg.node_path);
	if (!s)
		s = natsOptions_SetURL(o, c->url);
	if (!s)
		s = natsOptions_SetName(o, name);
	if (!s)
		s = natsOptions_SetMaxReconnect(o, -1);
	if (!s)
		s = natsOptions_SetReconnectWait(o, 500);
	if (!s)
		s = natsOptions_SetTimeout(o, 2000);
	if (!s)
		s = natsOptions_SetDisconnectedCB(o, on_disconnected, f);
	if (!s)
		s = natsOptions_SetReconnectedCB(o, on_reconnected, f);
	if (!s && c->ca) {
		s = natsOptions_SetSecure(o, true);
		if (!s)
			s = natsOptions_LoadCATrustedCertificates(o, c->ca);
		if (!s && c->cert)
			s = natsOptions_LoadCertificatesChain(o, c->cert, c->key);
	}
	if (!s)
		s = natsConnection_Connect(&f->nc, o);
	natsOptions_Destroy(o);
	char shown[256];
	const char *url = shown_url(c->url, shown, sizeof shown);
	if (s) {
		set_error(f, "cannot connect to %s: %s (tried again every %d ms)", url,
			  nats_GetLastError(NULL) ? nats_GetLastError(NULL) : natsStatus_GetText(s),
			  RETRY_MS);
		f->nc = NULL;
		return false;
	}
	jsOptions jo;
	jsOptions_Init(&jo);
	s = natsConnection_JetStream(&f->js, f->nc, &jo);
	if (!s && c->parent_domain) {
		jsOptions_Init(&jo);
		jo.Domain = c->parent_domain;
		jo.Wait = PUBLISH_WAIT;
		s = natsConnection_JetStream(&f->parent_js, f->nc, &jo);
	}
	if (s) {
		set_error(f, "JetStream: %s", natsStatus_GetText(s));
		return false;
	}
	pthread_mutex_lock(&f->mu);
	f->connected = true;
	f->last_error[0] = '\0';
	pthread_mutex_unlock(&f->mu);
	log_info("federation", "connected to %s%s%s", url,
		 c->parent_domain ? ", the parent's JetStream domain " : " (no parent)",
		 c->parent_domain ? c->parent_domain : "");
	return true;
}

/* The stream of this node's children and the durable consumer reading it. */
static bool consume_setup(struct fed *f)
{
	jsStreamConfig sc;
	jsStreamConfig_Init(&sc);
	sc.Name = STREAM;
	const char *subjects[] = {f->children_filter};
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.Storage = js_FileStorage;
	/* A message leaves the stream once the consumer acknowledged it; one never read is
	   dropped after a week: the stream never grows without bound. */
	sc.Retention = js_WorkQueuePolicy;
	sc.MaxAge = 7 * 86400 * 1000000000LL;	     /* ns */
	sc.Duplicates = 120 * 1000000000LL; /* JetStream's dedup window, ns */
	jsStreamInfo *si = NULL;
	jsErrCode je = 0;
	natsStatus s = js_AddStream(&si, f->js, &sc, NULL, &je);
	if (si)
		jsStreamInfo_Destroy(si);
	if (s && je == JSStreamNameExistErr) { /* made by an earlier linlid: this config now */
		/* the consumer the first federation step made (acknowledged at once, read the
		   grandchildren's subjects too): a work queue takes one consumer per subject */
		je = 0;
		js_DeleteConsumer(f->js, STREAM, "linlid", NULL, &je);
		si = NULL;
		je = 0;
		s = js_UpdateStream(&si, f->js, &sc, NULL, &je);
		if (si)
			jsStreamInfo_Destroy(si);
		if (s) { /* it cannot become this one (an older retention): made anew — what it
			    held comes again (changes are released only once applied here; a
			    status comes every status_ms) */
			log_warn("federation", "the children's stream %s is made anew: the one on the "
				 "server cannot take this configuration (JetStream error %d)",
				 STREAM, (int)je);
			je = 0;
			js_DeleteStream(f->js, STREAM, NULL, &je);
			si = NULL;
			je = 0;
			s = js_AddStream(&si, f->js, &sc, NULL, &je);
			if (si)
				jsStreamInfo_Destroy(si);
		}
	}
	if (s) {
		set_error(f, "the children's stream %s: %s (JetStream error %d)", STREAM,
			  natsStatus_GetText(s), (int)je);
		return false;
	}
	jsSubOptions so;
	jsSubOptions_Init(&so);
	so.Stream = STREAM;
	so.Config.AckWait = ACK_WAIT_NS; /* a node killed mid-apply: redelivered after this */
	s = js_PullSubscribe(&f->sub, f->js, f->children_filter, DURABLE, NULL, &so, &je);
	if (s) {
		set_error(f, "reading %s: %s (JetStream error %d)", STREAM, natsStatus_GetText(s),
			  (int)je);
		f->sub = NULL;
		return false;
	}
	pthread_mutex_lock(&f->mu);
	f->consuming = true;
	pthread_mutex_unlock(&f->mu);
	return true;
}

static void apply_inbound(struct kernel *k, void *arg);

/* Hand `in` to the kernel thread: 0, or the post failed (in is not kept). */
static int post_in(struct fed *f, kernel_fn fn, struct inbound *in)
{
	pthread_mutex_lock(&f->mu);
	in->prev = NULL;
	in->next = f->posted;
	if (f->posted)
		f->posted->prev = in;
	f->posted = in;
	pthread_mutex_unlock(&f->mu);
	int rc = kernel_post(f->k, fn, in);
	if (rc) {
		pthread_mutex_lock(&f->mu);
		if (in->prev)
			in->prev->next = in->next;
		else
			f->posted = in->next;
		if (in->next)
			in->next->prev = in->prev;
		pthread_mutex_unlock(&f->mu);
	}
	return rc;
}

/* The kernel thread takes `in`: no longer the close's to free. */
static void take_in(struct inbound *in)
{
	struct fed *f = in->f;
	pthread_mutex_lock(&f->mu);
	if (in->prev)
		in->prev->next = in->next;
	else
		f->posted = in->next;
	if (in->next)
		in->next->prev = in->prev;
	pthread_mutex_unlock(&f->mu);
}

static void fetch(struct fed *f, int64_t wait_ms)
{
	natsMsgList l = {0};
	jsErrCode je = 0;
	natsStatus s = natsSubscription_Fetch(&l, f->sub, FETCH_BATCH, wait_ms, &je);
	if (s == NATS_TIMEOUT)
		return;
	if (s) {
		set_error(f, "fetching from %s: %s", STREAM, natsStatus_GetText(s));
		return;
	}
	for (int i = 0; i < l.Count; i++) {
		natsMsg *m = l.Msgs[i];
		int n = natsMsg_GetDataLength(m);
		const char *subj = natsMsg_GetSubject(m);
		size_t sl = strlen(subj);
		bool changes = sl > 8 && !strcmp(subj + sl - 8, ".changes");
		struct inbound *in = malloc(sizeof *in + (changes ? 0 : (size_t)(n > 0 ? n : 0)));
		if (!in) {
			if (changes)
				natsMsg_Nak(m, NULL); /* again later */
			continue;
		}
		in->f = f;
		in->m = changes ? m : NULL;
		snprintf(in->subject, sizeof in->subject, "%s", subj);
		in->len = (size_t)(n > 0 ? n : 0);
		in->bytes = changes ? natsMsg_GetData(m) : in->data;
		if (!changes)
			memcpy(in->data, natsMsg_GetData(m), in->len);
		if (post_in(f, apply_inbound, in)) {
			if (changes)
				natsMsg_Nak(m, NULL);
			free(in);
			continue;
		}
		if (changes) /* acknowledged once its apply is committed (or refused) */
			l.Msgs[i] = NULL;
		else /* a status lives in memory: taken once posted (a later one replaces it) */
			natsMsg_Ack(m, NULL);
	}
	natsMsgList_Destroy(&l);
}

static void publish(struct fed *f, char *buf, size_t len, uint64_t seq)
{
	char id[SCOPE_MAX + 24];
	snprintf(id, sizeof id, "%s:%llu", f->k->cfg.node_path, (unsigned long long)seq);
	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.MsgId = id;
	po.MaxWait = PUBLISH_WAIT;
	jsPubAck *pa = NULL;
	jsErrCode je = 0;
	natsStatus s = js_Publish(&pa, f->parent_js, f->up_subject, buf, (int)len, &po, &je);
	if (pa)
		jsPubAck_Destroy(pa);
	pthread_mutex_lock(&f->mu);
	if (s)
		f->publish_failed++;
	else
		f->published++, f->last_published_at = wall_ms();
	pthread_mutex_unlock(&f->mu);
	if (s)
		set_error(f, "status to the parent (%s, domain %s): %s%s", f->up_subject,
			  f->k->cfg.fed.parent_domain,
			  s == NATS_NO_RESPONDERS ? "no JetStream answers (is the leaf link up?)"
						  : natsStatus_GetText(s),
			  je ? " (JetStream error)" : "");
}

/* ---- the change log going up (fed's thread) ---- */

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct upmsg {
	struct fed *f;
	uint64_t first, last;
	size_t n;
};

/* One entry more into the message (its entries are consecutive), within the bounds. */
static int add_entry(void *ud, uint64_t seq, const void *val, size_t len)
{
	struct upmsg *u = ud;
	bool big = len > CHANGES_BYTES;
	if (u->n && (seq != u->last + 1 || u->f->entbuf.size + (big ? 512 : len) > CHANGES_BYTES))
		return 1;
	if (!u->n)
		u->first = seq;
	u->last = seq;
	u->n++;
	if (!big) {
		msgpack_sbuffer_write(&u->f->entbuf, val, len);
		return 0;
	}
	/* Too large to go up (NATS takes 1 MiB a message): the parent is told, in its place,
	   what it was, and quarantines it with the reason; the order holds. */
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &u->f->entbuf, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 7);
	if (msgpack_unpack_next(&up, val, len, NULL) == MSGPACK_UNPACK_SUCCESS &&
	    up.data.type == MSGPACK_OBJECT_MAP) {
		static const char *const keys[] = {"o", "q", "d", "s", "i"};
		for (int i = 0; i < 5; i++) {
			const msgpack_object *o = mp_get(&up.data, keys[i]);
			mp_str(&pk, keys[i]);
			if (o)
				msgpack_pack_object(&pk, *o);
			else
				msgpack_pack_nil(&pk);
		}
	} else
		for (int i = 0; i < 5; i++)
			msgpack_pack_nil(&pk), msgpack_pack_nil(&pk);
	mp_str(&pk, "r");
	msgpack_pack_nil(&pk);
	char why[96];
	snprintf(why, sizeof why, "too large to go up: %zu bytes (at most %d)", len, CHANGES_BYTES);
	mp_kv_str(&pk, "x", why);
	msgpack_unpacked_destroy(&up);
	return 0;
}

static void apply_rule(struct kernel *k, void *arg);
static void apply_down(struct kernel *k, void *arg);
static void apply_exec(struct kernel *k, void *arg);

/*
 * What comes down from the parent (linli.down.<node>.>): `applied`, its word on this node's
 * changes ({seq}); `rule`, a rule for this node and its subtree (to the kernel thread).
 */
static void on_applied(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *ud)
{
	(void)nc, (void)sub;
	struct fed *f = ud;
	const char *subj = natsMsg_GetSubject(m);
	size_t sl = strlen(subj);
	bool data = sl > 5 && !strcmp(subj + sl - 5, ".data");
	bool exec = sl > 5 && !strcmp(subj + sl - 5, ".exec");
	if (data || exec || (sl > 5 && !strcmp(subj + sl - 5, ".rule"))) {
		int n = natsMsg_GetDataLength(m);
		struct inbound *in = n > 0 && n <= (int)CHANGES_MAX ? malloc(sizeof *in + (size_t)n)
								     : NULL;
		if (in) {
			in->f = f;
			in->m = NULL;
			snprintf(in->subject, sizeof in->subject, "%s", subj);
			in->len = (size_t)n;
			in->bytes = in->data;
			memcpy(in->data, natsMsg_GetData(m), in->len);
			if (post_in(f, data ? apply_down : exec ? apply_exec : apply_rule, in))
				free(in); /* the parent sends it again */
		}
		natsMsg_Destroy(m);
		return;
	}
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	const msgpack_object *o;
	if (msgpack_unpack_next(&up, natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m),
				NULL) == MSGPACK_UNPACK_SUCCESS &&
	    up.data.type == MSGPACK_OBJECT_MAP && (o = mp_get(&up.data, "seq")) &&
	    o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		pthread_mutex_lock(&f->mu);
		if (o->via.u64 > f->up_applied)
			f->up_applied = o->via.u64;
		pthread_mutex_unlock(&f->mu);
		pthread_cond_signal(&f->cv);
	}
	msgpack_unpacked_destroy(&up);
	natsMsg_Destroy(m);
}

static void release_applied(struct kernel *k, void *arg);

/*
 * Send what the parent has not applied yet, a message of consecutive entries at a time
 * ({n: node, a: first sequence, b: released up to, e: [entries]}), message id
 * NODE:FIRST-LAST.EPOCH (JetStream drops a repeat of the same message). Go back to the
 * parent's word when a publish fails or the parent says nothing for ACK_WAIT_MS: the
 * receiver applies each sequence once and in order, so a repeat costs only bandwidth.
 */
static bool send_changes(struct fed *f)
{
	pthread_mutex_lock(&f->mu);
	uint64_t last = f->out_last, applied = f->up_applied, rel = f->released_seen;
	bool post = applied > f->released_seen && !f->release_posted;
	if (post)
		f->release_posted = true;
	pthread_mutex_unlock(&f->mu);
	if (post && kernel_post(f->k, release_applied, f)) {
		pthread_mutex_lock(&f->mu);
		f->release_posted = false;
		pthread_mutex_unlock(&f->mu);
	}
	int64_t now = mono_ms();
	if (!f->ack_wait)
		f->ack_wait = ACK_WAIT_MS;
	if (applied != f->seen_applied) { /* the parent's word moved: full speed again */
		f->seen_applied = applied, f->progress_ms = now;
		f->ack_wait = ACK_WAIT_MS;
		f->probing = false;
	}
	/* What was dropped here (the change log's bound) is never sent: from past it. */
	uint64_t from = applied > rel ? applied : rel;
	if (f->sent < from)
		f->sent = from;
	if (f->sent > from && now - f->progress_ms > f->ack_wait) {
		/* Nothing heard: from the parent's word again, one message at a time and waiting
		   longer each time until it moves (a parent whose server takes messages but whose
		   linlid is down must not get the whole window again and again). */
		f->sent = from;
		f->epoch++;
		f->progress_ms = now;
		f->probing = true;
		if (f->ack_wait < 60000)
			f->ack_wait *= 2;
		pthread_mutex_lock(&f->mu);
		f->resent++;
		pthread_mutex_unlock(&f->mu);
	}
	if (f->sent >= last || f->sent - from >= (f->probing ? 1 : WINDOW))
		return false;
	struct upmsg u = {.f = f};
	char err[512];
	f->entbuf.size = 0;
	if (store_outbox_read(f->k->store, f->sent, CHANGES_BATCH, add_entry, &u, err, sizeof err)) {
		set_error(f, "reading the change log: %s", err);
		return false;
	}
	if (!u.n)
		return false;
	f->upbuf.size = 0;
	msgpack_packer pk;
	msgpack_packer_init(&pk, &f->upbuf, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 4);
	mp_kv_str(&pk, "n", f->k->cfg.node_path);
	mp_kv_uint(&pk, "a", u.first);
	mp_kv_uint(&pk, "b", from);
	mp_str(&pk, "e");
	msgpack_pack_array(&pk, u.n);
	msgpack_sbuffer_write(&f->upbuf, f->entbuf.data, f->entbuf.size);
	char id[SCOPE_MAX + 64];
	snprintf(id, sizeof id, "%s:%llu-%llu.%llu", f->k->cfg.node_path,
		 (unsigned long long)u.first, (unsigned long long)u.last,
		 (unsigned long long)f->epoch);
	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.MsgId = id;
	po.MaxWait = PUBLISH_WAIT;
	jsPubAck *pa = NULL;
	jsErrCode je = 0;
	natsStatus st = js_Publish(&pa, f->parent_js, f->changes_subject, f->upbuf.data,
				   (int)f->upbuf.size, &po, &je);
	if (pa)
		jsPubAck_Destroy(pa);
	if (st) {
		set_error(f, "changes to the parent (%s): %s", f->changes_subject,
			  st == NATS_NO_RESPONDERS ? "no JetStream answers (is the leaf link up?)"
						   : natsStatus_GetText(st));
		f->sent = applied;
		f->epoch++;
		pthread_mutex_lock(&f->mu);
		f->up_failed++;
		pthread_mutex_unlock(&f->mu);
		return false;
	}
	if (f->sent == applied)
		f->progress_ms = now; /* the wait for the parent's word starts now */
	f->sent = u.last;
	pthread_mutex_lock(&f->mu);
	f->sent_msgs++;
	f->last_error[0] = '\0';
	pthread_mutex_unlock(&f->mu);
	return true;
}

/* ---- the down log going to the children (fed's thread) ---- */

struct downmsg {
	struct fed *f;
	const char *child;
	uint64_t last; /* the last sequence looked at */
	size_t n, scanned;
};

/* An entry for the child when its record's scope is above it or within its subtree. */
static int add_down(void *ud, uint64_t seq, const void *val, size_t len)
{
	struct downmsg *d = ud;
	if (d->n && (d->n == CHANGES_BATCH || d->f->entbuf.size + len > CHANGES_BYTES))
		return 1;
	d->scanned++;
	const void *sv;
	size_t sl;
	char scope[SCOPE_MAX + 1] = "";
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	if (mp_map_value(val, len, "s", &sv, &sl) == 0 &&
	    msgpack_unpack_next(&up, sv, sl, NULL) == MSGPACK_UNPACK_SUCCESS)
		str_of(&up.data, scope, sizeof scope);
	msgpack_unpacked_destroy(&up);
	d->last = seq;
	if (!scope_within(scope, d->child) && !scope_within(d->child, scope))
		return d->scanned >= 4 * CHANGES_BATCH; /* a sibling's: passed over */
	if (len > CHANGES_BYTES)
		return 0; /* cannot go (NATS takes 1 MiB a message): store verify's business */
	msgpack_packer pk;
	msgpack_packer_init(&pk, &d->f->entbuf, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 2);
	msgpack_pack_uint64(&pk, seq);
	msgpack_sbuffer_write(&d->f->entbuf, val, len);
	d->n++;
	return 0;
}

/*
 * The down log to each child whose word is known: {n: this node, a: the sequence the
 * message follows, b: the last looked at, e: [[seq, entry]...]} on core NATS
 * (linli.down.<child>.data); the child applies what follows its own word and says where it
 * stands; no word for ACK_WAIT_MS: from its word again, one message at a time.
 */
static bool send_down(struct fed *f)
{
	bool busy = false;
	pthread_mutex_lock(&f->mu);
	uint64_t last = f->down_last;
	size_t n = f->n_dsends;
	pthread_mutex_unlock(&f->mu);
	int64_t now = mono_ms();
	for (size_t i = 0; i < n; i++) {
		pthread_mutex_lock(&f->mu);
		struct dsend d = f->dsends[i];
		pthread_mutex_unlock(&f->mu);
		if (d.off)
			continue;
		if (!d.wait)
			d.wait = ACK_WAIT_MS;
		/* A word past this log (this store replaced or restored, or a bad word): the child
		   is told to take everything again (z), which puts its word back within. */
		bool reset = d.word > last;
		uint64_t w = reset ? 0 : d.word;
		if (d.sent < w)
			d.sent = w, d.progress_ms = now, d.wait = ACK_WAIT_MS, d.probing = false;
		if (d.sent > w && now - d.progress_ms > d.wait) {
			d.sent = w;
			d.progress_ms = now;
			d.probing = true;
			d.resent++;
			if (d.wait < 60000)
				d.wait *= 2;
		}
		if (d.sent < last && d.sent - w < (d.probing ? 1 : WINDOW)) {
			struct downmsg m = {.f = f, .child = d.node, .last = d.sent};
			char err[512];
			f->entbuf.size = 0;
			if (store_down_read(f->k->store, d.sent, SIZE_MAX, add_down, &m, err,
					    sizeof err))
				set_error(f, "reading the down log: %s", err);
			else if (m.last > d.sent) {
				f->upbuf.size = 0;
				msgpack_packer pk;
				msgpack_packer_init(&pk, &f->upbuf, msgpack_sbuffer_write);
				msgpack_pack_map(&pk, reset ? 5 : 4);
				mp_kv_str(&pk, "n", f->k->cfg.node_path);
				mp_kv_uint(&pk, "a", d.sent);
				mp_kv_uint(&pk, "b", m.last);
				if (reset)
					mp_kv_bool(&pk, "z", true);
				mp_str(&pk, "e");
				msgpack_pack_array(&pk, m.n);
				msgpack_sbuffer_write(&f->upbuf, f->entbuf.data, f->entbuf.size);
				char t[SCOPE_MAX + 1], subj[SUBJECT_MAX];
				tokens(d.node, t, sizeof t);
				snprintf(subj, sizeof subj, "linli.down.%s.data", t);
				if (natsConnection_Publish(f->nc, subj, f->upbuf.data,
							   (int)f->upbuf.size) == NATS_OK) {
					if (d.sent == w)
						d.progress_ms = now;
					d.sent = m.last;
					d.msgs++;
					busy = true;
				}
			}
		}
		pthread_mutex_lock(&f->mu);
		if (i < f->n_dsends && !strcmp(f->dsends[i].node, d.node)) {
			d.word = f->dsends[i].word; /* a word that came meanwhile */
			d.off = f->dsends[i].off;
			f->dsends[i] = d;
		}
		pthread_mutex_unlock(&f->mu);
	}
	return busy;
}

/* Acknowledge what the kernel thread has committed, tell the children what was applied. */
static void flush_down(struct fed *f)
{
	pthread_mutex_lock(&f->mu);
	natsMsg **acks = f->acks;
	bool *ok = f->ack_ok;
	size_t n_acks = f->n_acks;
	struct notice *nt = f->notices;
	size_t n_nt = f->n_notices;
	f->acks = NULL, f->ack_ok = NULL, f->n_acks = f->cap_acks = 0;
	f->notices = NULL, f->n_notices = f->cap_notices = 0;
	pthread_mutex_unlock(&f->mu);
	for (size_t i = 0; i < n_acks; i++) {
		if (ok[i])
			natsMsg_Ack(acks[i], NULL);
		else
			natsMsg_Nak(acks[i], NULL);
		natsMsg_Destroy(acks[i]);
	}
	pthread_mutex_lock(&f->mu);
	struct outmsg *outs = f->outs;
	size_t n_outs = f->n_outs, sent = 0;
	f->outs = NULL, f->n_outs = f->cap_outs = 0;
	pthread_mutex_unlock(&f->mu);
	for (; sent < n_outs; sent++) {
		struct outmsg *o = &outs[sent];
		if (!o->js) {
			natsConnection_Publish(f->nc, o->subject, o->data, (int)o->len);
			continue;
		}
		jsPubAck *pa = NULL;
		jsErrCode je = 0;
		natsStatus st = f->parent_js ? js_Publish(&pa, f->parent_js, o->subject, o->data,
							  (int)o->len, NULL, &je)
					     : NATS_ILLEGAL_STATE;
		if (pa)
			jsPubAck_Destroy(pa);
		if (st) { /* kept: the rest goes with the next try */
			set_error(f, "to the parent on %s: %s", o->subject, natsStatus_GetText(st));
			break;
		}
	}
	for (size_t i = 0; i < sent; i++)
		free(outs[i].data);
	if (sent < n_outs) { /* put back in front of what came meanwhile */
		pthread_mutex_lock(&f->mu);
		size_t left = n_outs - sent;
		struct outmsg *v = realloc(outs, (left + f->n_outs) * sizeof *v);
		if (v) {
			memmove(v, v + sent, left * sizeof *v);
			if (f->n_outs)
				memcpy(v + left, f->outs, f->n_outs * sizeof *v);
			free(f->outs);
			f->outs = v;
			f->n_outs = f->cap_outs = left + f->n_outs;
			outs = NULL;
		}
		pthread_mutex_unlock(&f->mu);
		if (outs)
			for (size_t i = sent; i < n_outs; i++)
				free(outs[i].data);
	}
	free(outs);
	for (size_t i = 0; i < n_nt; i++) {
		char t[SCOPE_MAX + 1], subj[SUBJECT_MAX];
		tokens(nt[i].node, t, sizeof t);
		snprintf(subj, sizeof subj, "linli.down.%s.applied", t);
		msgpack_sbuffer sb;
		msgpack_packer pk;
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		msgpack_pack_map(&pk, 1);
		mp_kv_uint(&pk, "seq", nt[i].seq);
		natsConnection_Publish(f->nc, subj, sb.data, (int)sb.size);
		msgpack_sbuffer_destroy(&sb);
	}
	free(acks);
	free(ok);
	free(nt);
}

static bool applied_setup(struct fed *f)
{
	natsStatus st = natsConnection_Subscribe(&f->applied_sub, f->nc, f->applied_subject,
						 on_applied, f);
	if (st) {
		set_error(f, "listening for the parent's word on %s: %s", f->applied_subject,
			  natsStatus_GetText(st));
		f->applied_sub = NULL;
		return false;
	}
	return true;
}

static bool stopping(struct fed *f)
{
	pthread_mutex_lock(&f->mu);
	bool stop = f->stop;
	pthread_mutex_unlock(&f->mu);
	return stop;
}

static void *run(void *arg)
{
	struct fed *f = arg;
	bool up = false, consume = false, listen = false, busy = false;
	for (;;) {
		pthread_mutex_lock(&f->mu);
		if (!f->stop && !f->outgoing && !f->n_acks && !f->n_notices && !busy) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			int64_t wait = !up ? RETRY_MS : consume ? 0 : RETRY_MS;
			if (up && f->parent_js && f->sent < f->out_last)
				wait = 50; /* the parent's word, or the time to send again */
			ts.tv_sec += wait / 1000;
			ts.tv_nsec += (wait % 1000) * 1000000;
			if (ts.tv_nsec >= 1000000000)
				ts.tv_sec++, ts.tv_nsec -= 1000000000;
			if (wait)
				pthread_cond_timedwait(&f->cv, &f->mu, &ts);
		}
		bool stop = f->stop;
		char *out = f->outgoing;
		size_t out_len = f->outgoing_len;
		uint64_t seq = f->seq;
		f->outgoing = NULL;
		pthread_mutex_unlock(&f->mu);
		if (stop) {
			free(out);
			break;
		}
		if (!up && !(up = connect_once(f))) {
			free(out); /* the next status comes with the next tick */
			continue;
		}
		if (out && f->parent_js)
			publish(f, out, out_len, seq);
		free(out);
		if (stopping(f)) /* a call that took long: nothing more once the stop is asked */
			break;
		flush_down(f);
		if (f->parent_js && !listen)
			listen = applied_setup(f);
		busy = f->parent_js && listen && send_changes(f);
		busy = send_down(f) || busy;
		if (!consume)
			consume = consume_setup(f);
		else
			fetch(f, busy ? 5 : 200);
	}
	return NULL;
}

/* ---- the kernel thread ---- */

/* A dataset's schema (as `catalog show` gives it), hashed: 16 hex digits. */
static void schema_hash(const struct cat_dataset *d, char out[17])
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	cat_pack_schema(&pk, d, true);
	unsigned char h[8];
	crypto_generichash(h, sizeof h, (const unsigned char *)sb.data, sb.size, NULL, 0);
	sodium_bin2hex(out, 17, h, sizeof h);
	msgpack_sbuffer_destroy(&sb);
}

/* The status the node sends up. */
static void on_status_tick(struct kernel *k, void *arg)
{
	struct fed *f = arg;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	pthread_mutex_lock(&f->mu);
	uint64_t seq = ++f->seq;
	pthread_mutex_unlock(&f->mu);
	msgpack_pack_map(&pk, 12);
	mp_kv_str(&pk, "node", k->cfg.node_path);
	mp_kv_uint(&pk, "proto", FED_PROTO);
	mp_kv_uint(&pk, "down", f->down_applied);
	mp_kv_str(&pk, "level", tier_level_name(k->cfg.node_level));
	mp_kv_str(&pk, "name", k->cfg.node_name ? k->cfg.node_name : "");
	mp_kv_str(&pk, "version", LINLI_VERSION);
	mp_kv_str(&pk, "sdk", LINLI_SDK_VERSION);
	mp_kv_int(&pk, "sent_at", wall_ms());
	mp_kv_uint(&pk, "uptime_s", (kernel_now_ms() - k->started_ms) / 1000);
	mp_kv_int(&pk, "plugins", k->plugin_count);
	mp_kv_uint(&pk, "seq", seq);
	/* what its changes will be checked against: each dataset going up, its schema's hash */
	const struct catalog *cat = k->catalog;
	size_t n_up = 0;
	for (int i = 0; cat && i < cat->n_datasets; i++)
		n_up += cat->datasets[i].up;
	mp_str(&pk, "catalog");
	msgpack_pack_map(&pk, n_up);
	for (int i = 0; cat && i < cat->n_datasets; i++)
		if (cat->datasets[i].up) {
			char h[17];
			schema_hash(&cat->datasets[i], h);
			mp_kv_str(&pk, cat->datasets[i].name, h);
		}
	pthread_mutex_lock(&f->mu);
	free(f->outgoing); /* one not sent yet is older: this one replaces it */
	f->outgoing = sb.data;
	f->outgoing_len = sb.size;
	pthread_mutex_unlock(&f->mu);
	pthread_cond_signal(&f->cv);
}

static struct child *child_of(struct fed *f, const char *node)
{
	for (size_t i = 0; i < f->n_children; i++)
		if (!strcmp(f->children[i].node, node))
			return &f->children[i];
	if (f->n_children == CHILDREN_MAX)
		return NULL;
	struct child *v = realloc(f->children, (f->n_children + 1) * sizeof *v);
	if (!v)
		return NULL;
	f->children = v;
	struct child *c = &v[f->n_children++];
	memset(c, 0, sizeof *c);
	snprintf(c->node, sizeof c->node, "%s", node);
	c->down_word = -1;
	return c;
}

static void refuse(struct fed *f, const struct inbound *in, const char *why)
{
	f->refused++;
	log_warn("federation", "refused a message on %s: %s", in->subject, why);
}

/*
 * The child `node` names, when it is a direct child of this node and the subject it came
 * on is its own (linli.up.<node>KIND; the servers hold a publisher to its subtree); else
 * the message is refused (counted, logged) and NULL.
 */
static struct child *sender_of(struct fed *f, const struct inbound *in, const char *node,
			       const char *kind)
{
	const char *own = f->k->cfg.node_path;
	size_t own_n = strlen(own);
	char want[SUBJECT_MAX];
	tokens(node, want, sizeof want);
	strncat(want, kind, sizeof want - strlen(want) - 1);
	if (strncmp(node, own, own_n) || node[own_n] != '/' || strchr(node + own_n + 1, '/') ||
	    strncmp(in->subject, "linli.up.", 9) || strcmp(in->subject + 9, want)) {
		char why[SCOPE_MAX + 96];
		snprintf(why, sizeof why, "node '%.*s' is not a child of %s sending on its own subject",
			 SCOPE_MAX, node, own);
		refuse(f, in, why);
		return NULL;
	}
	struct child *c = child_of(f, node);
	if (!c)
		refuse(f, in, "too many children");
	else if (c->decommissioned) {
		char why[SCOPE_MAX + 96];
		snprintf(why, sizeof why, "node '%s' is decommissioned here (its data kept)", node);
		refuse(f, in, why);
		c = NULL;
	}
	return c;
}

static void down_word(struct fed *f, struct child *c, uint64_t word);
static void queue_out(struct fed *f, const char *subject, bool js, msgpack_sbuffer *sb);

static void apply_status(struct fed *f, struct inbound *in)
{
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	char node[SCOPE_MAX + 1], cerr[96];
	if (in->len > STATUS_MAX || mp_check(in->data, in->len, 2, MP_STR_KEYS, cerr, sizeof cerr) ||
	    msgpack_unpack_next(&up, in->data, in->len, NULL) != MSGPACK_UNPACK_SUCCESS ||
	    up.data.type != MSGPACK_OBJECT_MAP) {
		refuse(f, in, "not a status (a MessagePack map of at most 4096 bytes)");
		goto out;
	}
	mp_copy_str(mp_get(&up.data, "node"), node, sizeof node);
	struct child *c = sender_of(f, in, node, ".status");
	if (!c)
		goto out;
	const msgpack_object *o;
	mp_copy_str(mp_get(&up.data, "level"), c->level, sizeof c->level);
	mp_copy_str(mp_get(&up.data, "name"), c->name, sizeof c->name);
	mp_copy_str(mp_get(&up.data, "version"), c->version, sizeof c->version);
	mp_copy_str(mp_get(&up.data, "sdk"), c->sdk, sizeof c->sdk);
	if ((o = mp_get(&up.data, "sent_at")) && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		c->sent_at = (int64_t)o->via.u64;
	if ((o = mp_get(&up.data, "seq")) && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		c->seq = o->via.u64;
	/* The versions exchanged: one whose messages this node would misread is refused. */
	uint64_t proto = 0;
	u64_of(mp_get(&up.data, "proto"), &proto);
	char hold[sizeof c->hold] = "";
	if (proto != FED_PROTO)
		snprintf(hold, sizeof hold,
			 "refused: it speaks federation protocol %llu (linlid %s), this node %d "
			 "(linlid %s); its changes wait there until one is upgraded",
			 (unsigned long long)proto, c->version[0] ? c->version : "?", FED_PROTO,
			 LINLI_VERSION);
	if (strcmp(hold, c->hold) && hold[0])
		log_warn("federation", "%s %s", node, hold);
	memcpy(c->hold, hold, sizeof hold);
	if ((o = mp_get(&up.data, "down")) && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		down_word(f, c, o->via.u64); /* a lost word said again */
	/* The versions exchanged: which of the child's datasets going up this node's catalog
	   would take differently (their changes would be quarantined): said before they come. */
	char differs[sizeof c->schema_differs] = "";
	size_t off = 0;
	if ((o = mp_get(&up.data, "catalog")) && o->type == MSGPACK_OBJECT_MAP)
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			char name[CAT_NAME_MAX + 1], theirs[17], mine[17] = "";
			if (!str_of(&o->via.map.ptr[i].key, name, sizeof name) ||
			    !str_of(&o->via.map.ptr[i].val, theirs, sizeof theirs))
				continue;
			const struct cat_dataset *d = catalog_dataset(f->k->catalog, name);
			if (d)
				schema_hash(d, mine);
			if (strcmp(mine, theirs) && off < sizeof differs)
				off += (size_t)snprintf(differs + off, sizeof differs - off, "%s%s%s",
							off ? ", " : "", name, d ? "" : " (unknown here)");
		}
	if (strcmp(differs, c->schema_differs) && differs[0])
		log_warn("federation", "%s's catalog differs from this node's for %s: their "
			 "changes will be quarantined here until the catalogs agree", node, differs);
	memcpy(c->schema_differs, differs, sizeof differs);
	c->seen_at = wall_ms();
	f->children_dirty = true;
	c->received++;
	f->received++;
out:
	msgpack_unpacked_destroy(&up);
}

/* ---- changes from below (kernel thread) ---- */

static void queue_ack(struct fed *f, natsMsg *m, bool ok)
{
	pthread_mutex_lock(&f->mu);
	if (f->n_acks == f->cap_acks) {
		size_t cap = f->cap_acks ? f->cap_acks * 2 : 64;
		natsMsg **a = realloc(f->acks, cap * sizeof *a);
		bool *o = a ? realloc(f->ack_ok, cap * sizeof *o) : NULL;
		if (a)
			f->acks = a;
		if (o)
			f->ack_ok = o;
		if (!a || !o) { /* not acknowledged: the stream sends it again */
			pthread_mutex_unlock(&f->mu);
			natsMsg_Destroy(m);
			return;
		}
		f->cap_acks = cap;
	}
	f->acks[f->n_acks] = m;
	f->ack_ok[f->n_acks++] = ok;
	pthread_mutex_unlock(&f->mu);
	pthread_cond_signal(&f->cv);
}

static void queue_notice(struct fed *f, const char *node, uint64_t seq)
{
	pthread_mutex_lock(&f->mu);
	for (size_t i = 0; i < f->n_notices; i++)
		if (!strcmp(f->notices[i].node, node)) {
			if (seq > f->notices[i].seq)
				f->notices[i].seq = seq;
			goto out;
		}
	if (f->n_notices == f->cap_notices) {
		size_t cap = f->cap_notices ? f->cap_notices * 2 : 16;
		struct notice *v = realloc(f->notices, cap * sizeof *v);
		if (!v)
			goto out; /* the next announcement says it */
		f->notices = v;
		f->cap_notices = cap;
	}
	snprintf(f->notices[f->n_notices].node, sizeof f->notices[0].node, "%s", node);
	f->notices[f->n_notices++].seq = seq;
out:
	pthread_mutex_unlock(&f->mu);
	pthread_cond_signal(&f->cv);
}

struct committed {
	struct fed *f;
	natsMsg *m;
	uint64_t seq;
	bool again; /* the store failed midway: the rest comes with a redelivery */
	char node[SCOPE_MAX + 1];
};

/* The apply of a message from below committed (rc 0) or was lost: acknowledge or redeliver. */
static void on_committed(void *arg, int rc, const char *msg)
{
	(void)msg;
	struct committed *c = arg;
	struct child *ch = child_of(c->f, c->node);
	if (rc == 0 && ch && c->seq > ch->applied)
		ch->applied = c->seq;
	queue_ack(c->f, c->m, rc == 0 && !c->again);
	if (rc == 0)
		queue_notice(c->f, c->node, c->seq);
	free(c);
}

/* Keep change `e` (seq of sender `from`) that cannot be applied, with the reason. */
static int quarantine(struct fed *f, const char *from, uint64_t seq, const char *reason,
		      const msgpack_object *e, char *err, size_t errlen)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 5);
	mp_kv_str(&pk, "from", from);
	mp_kv_uint(&pk, "seq", seq);
	mp_kv_str(&pk, "reason", reason);
	mp_kv_int(&pk, "at", wall_ms());
	mp_str(&pk, "change");
	msgpack_pack_object(&pk, *e);
	uint64_t id = 0;
	int rc = store_fedq_add(f->k->store, sb.data, sb.size, &id, err, errlen);
	msgpack_sbuffer_destroy(&sb);
	if (!rc)
		log_warn("federation", "change %llu from %s quarantined (#%llu): %s",
			 (unsigned long long)seq, from, (unsigned long long)id, reason);
	return rc;
}

/*
 * Apply one change from sender `from` (a direct child): 0 applied or quarantined (the
 * stream goes on), or the store's failure (nothing more of the message is applied).
 */
static int apply_change(struct fed *f, struct child *c, const char *from, uint64_t seq,
			const msgpack_object *e)
{
	char origin[SCOPE_MAX + 1], ds[CAT_NAME_MAX + 1], scope[SCOPE_MAX + 1],
	    id[STORE_ID_MAX + 1], err[768], why[1024];
	uint64_t oseq = 0;
	const msgpack_object *r = e->type == MSGPACK_OBJECT_MAP ? mp_get(e, "r") : NULL;
	char x[128];
	if (e->type == MSGPACK_OBJECT_MAP && str_of(mp_get(e, "x"), x, sizeof x)) {
		c->quarantined++; /* the sender could not send it: it says what it was */
		snprintf(why, sizeof why, "not sent by %s: %s", from, x);
		return quarantine(f, from, seq, why, e, err, sizeof err) ? LINLI_EIO : 0;
	}
	if (e->type != MSGPACK_OBJECT_MAP || !str_of(mp_get(e, "o"), origin, sizeof origin) ||
	    !u64_of(mp_get(e, "q"), &oseq) || !str_of(mp_get(e, "d"), ds, sizeof ds) ||
	    !str_of(mp_get(e, "s"), scope, sizeof scope) || !str_of(mp_get(e, "i"), id, sizeof id) ||
	    !r || (r->type != MSGPACK_OBJECT_BIN && r->type != MSGPACK_OBJECT_NIL)) {
		c->quarantined++;
		return quarantine(f, from, seq,
				  "not a change (a map of o, q, d, s, i and r: the record's bytes or "
				  "nil)",
				  e, err, sizeof err)
			   ? LINLI_EIO
			   : 0;
	}
	if (!scope_within(from, scope) || !scope_within(from, origin)) {
		snprintf(why, sizeof why,
			 "forged: %s '%s' is outside the sender's subtree %s (refused, audited)",
			 scope_within(from, scope) ? "origin" : "scope",
			 scope_within(from, scope) ? origin : scope, from);
		struct tier_principal who = {.kind = PRINCIPAL_MACHINE, .name = from, .scope = from};
		tiers_audit(f->k, &who, "federation.apply", scope_within(from, scope) ? from : scope,
			    ds, "denied", why);
		c->forged++;
		c->quarantined++;
		return quarantine(f, from, seq, why, e, err, sizeof err) ? LINLI_EIO : 0;
	}
	store_set_up(f->k->store, true); /* from below: it goes on up, whatever its dataset */
	int rc = store_fed_apply(f->k->store, origin, oseq, ds, scope, id,
				 r->type == MSGPACK_OBJECT_BIN ? r->via.bin.ptr : NULL,
				 r->type == MSGPACK_OBJECT_BIN ? r->via.bin.size : 0, err, sizeof err);
	if (rc == LINLI_EFULL || rc == LINLI_EIO || rc == LINLI_ENOMEM || rc == LINLI_ECORRUPT ||
	    rc == LINLI_EBUSY || rc == LINLI_ELIMIT)
		return rc; /* this node's storage: the batch is lost, the message comes again */
	if (rc) {
		c->quarantined++;
		snprintf(why, sizeof why, "cannot be applied here: %s", err);
		return quarantine(f, from, seq, why, e, err, sizeof err) ? LINLI_EIO : 0;
	}
	return 0;
}

static void apply_changes(struct fed *f, struct inbound *in)
{
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	char node[SCOPE_MAX + 1] = "", cerr[96];
	const msgpack_object *es = NULL;
	uint64_t first = 0, base = 0;
	bool ok = true, again = false; /* refused: it leaves the stream; failed: it comes again */
	if (in->len > CHANGES_MAX ||
	    mp_check(in->bytes, in->len, 8, MP_STR_KEYS, cerr, sizeof cerr) ||
	    msgpack_unpack_next(&up, in->bytes, in->len, NULL) != MSGPACK_UNPACK_SUCCESS ||
	    up.data.type != MSGPACK_OBJECT_MAP || !str_of(mp_get(&up.data, "n"), node, sizeof node) ||
	    !u64_of(mp_get(&up.data, "a"), &first) || !first ||
	    !u64_of(mp_get(&up.data, "b"), &base) || !(es = mp_get(&up.data, "e")) ||
	    es->type != MSGPACK_OBJECT_ARRAY) {
		refuse(f, in, "not changes (a MessagePack map n, a, b, e of at most 4 MiB)");
		goto done;
	}
	struct child *c = sender_of(f, in, node, ".changes");
	if (!c)
		goto done;
	if (c->hold[0]) { /* its protocol differs: nothing taken; they wait at the child */
		c->held++;
		goto done;
	}
	struct store *st = f->k->store;
	uint64_t applied = store_fed_applied(st, node), was = applied;
	c->changes_at = wall_ms();
	for (uint32_t i = 0; i < es->via.array.size; i++) {
		uint64_t seq = first + i;
		if (seq <= applied) {
			c->duplicates++;
			continue;
		}
		if (seq > applied + 1) {
			if (base >= applied + 1) { /* released at the sender: never coming */
				c->lost += seq - 1 - applied;
				snprintf(c->gap, sizeof c->gap,
					 "%llu..%llu lost: the sender dropped them (its quota)",
					 (unsigned long long)applied + 1, (unsigned long long)seq - 1);
				log_error("federation", "changes %s from %s", c->gap, node);
				applied = seq - 1;
			} else {
				c->gaps++;
				snprintf(c->gap, sizeof c->gap,
					 "expected %llu, got %llu: waiting for it to be sent again",
					 (unsigned long long)applied + 1, (unsigned long long)seq);
				break;
			}
		}
		const msgpack_object *e = &es->via.array.ptr[i];
		int rc = apply_change(f, c, node, seq, e);
		if (rc) {
			log_error("federation", "changes from %s stopped at %llu: this node's store "
				  "failed (code %d); they come again", node, (unsigned long long)seq, rc);
			again = true;
			break;
		}
		applied = seq;
		c->entries++;
	}
	char err[512];
	if (again) { /* the store lost the batch (this one's applies with it): nothing marked,
			everything of it comes again */
		ok = false;
		goto done;
	}
	if (applied != was && store_fed_mark(st, node, applied, err, sizeof err)) {
		log_error("federation", "%s", err);
		ok = false; /* the batch is lost: the message comes again */
		goto done;
	}
	struct committed *cm = malloc(sizeof *cm);
	if (cm) {
		*cm = (struct committed){.f = f, .m = in->m, .seq = applied, .again = again};
		snprintf(cm->node, sizeof cm->node, "%s", node);
		int wrc = store_on_commit(st, on_committed, cm);
		if (wrc == 0) {
			in->m = NULL; /* acknowledged at the commit */
		} else if (wrc != LINLI_ESTATE) { /* cannot wait for the commit: again later */
			free(cm);
			ok = false;
		} else { /* nothing written (all repeats): applied as it stands */
			free(cm);
			if (applied > c->applied)
				c->applied = applied;
			queue_notice(f, node, applied);
		}
	} else
		ok = false;
done:
	if (in->m)
		queue_ack(f, in->m, ok);
	msgpack_unpacked_destroy(&up);
}

static void apply_ack(struct fed *f, struct inbound *in);
static void apply_xres(struct fed *f, struct inbound *in);

/* ---- the down log (kernel thread) ---- */

/* A child's word on this node's down log: its sending goes on from there. */
static void down_word(struct fed *f, struct child *c, uint64_t word)
{
	c->down_word = (int64_t)word;
	pthread_mutex_lock(&f->mu);
	size_t i = 0;
	while (i < f->n_dsends && strcmp(f->dsends[i].node, c->node))
		i++;
	if (i == f->n_dsends) {
		struct dsend *v = realloc(f->dsends, (f->n_dsends + 1) * sizeof *v);
		if (!v) {
			pthread_mutex_unlock(&f->mu);
			return; /* its next word */
		}
		f->dsends = v;
		memset(&v[i], 0, sizeof v[i]);
		snprintf(v[i].node, sizeof v[i].node, "%s", c->node);
		f->n_dsends++;
	}
	struct dsend *d = &f->dsends[i];
	if (word < d->word) /* a replaced child store: from there */
		d->sent = word;
	d->word = word;
	d->off = c->decommissioned || c->hold[0]; /* nothing sent to a refused one */
	pthread_mutex_unlock(&f->mu);
	pthread_cond_signal(&f->cv);
}

static void send_word(struct fed *f)
{
	char t[SCOPE_MAX + 1], subj[SUBJECT_MAX];
	tokens(f->k->cfg.node_path, t, sizeof t);
	snprintf(subj, sizeof subj, "linli.up.%s.dword", t);
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 2);
	mp_kv_str(&pk, "node", f->k->cfg.node_path);
	mp_kv_uint(&pk, "seq", f->down_applied);
	queue_out(f, subj, true, &sb);
	f->word_due = false;
}

static void on_down_committed(void *arg, int rc, const char *msg)
{
	(void)msg;
	struct fed *f = arg;
	if (rc == 0)
		f->down_applied = store_fed_applied(f->k->store, f->parent);
	send_word(f);
}

/* Keep entry e of the parent's down log that cannot be applied here, with the reason. */
static void down_refuse(struct fed *f, uint64_t seq, const char *why, const msgpack_object *e)
{
	char err[512];
	f->down_quarantined++;
	if (quarantine(f, f->parent, seq, why, e, err, sizeof err))
		log_error("federation", "%s", err);
}

/*
 * Apply entry e (seq) of the parent's down log: 0 applied or quarantined, or this node's
 * store failed (its code: nothing more of the message is applied).
 */
static int down_one(struct fed *f, uint64_t seq, const msgpack_object *e)
{
	struct kernel *k = f->k;
	const char *own = k->cfg.node_path;
	char origin[SCOPE_MAX + 1], ds[CAT_NAME_MAX + 1], scope[SCOPE_MAX + 1],
	    id[STORE_ID_MAX + 1], err[768], why[1024];
	uint64_t oseq = 0;
	const msgpack_object *r = e->type == MSGPACK_OBJECT_MAP ? mp_get(e, "r") : NULL;
	if (e->type != MSGPACK_OBJECT_MAP || !str_of(mp_get(e, "o"), origin, sizeof origin) ||
	    !u64_of(mp_get(e, "q"), &oseq) || !str_of(mp_get(e, "d"), ds, sizeof ds) ||
	    !str_of(mp_get(e, "s"), scope, sizeof scope) || !str_of(mp_get(e, "i"), id, sizeof id) ||
	    !r || (r->type != MSGPACK_OBJECT_BIN && r->type != MSGPACK_OBJECT_NIL)) {
		down_refuse(f, seq, "not a change (a map of o, q, d, s, i and r)", e);
		return 0;
	}
	const struct cat_dataset *d = catalog_dataset(k->catalog, ds);
	bool below = scope_within(own, origin);
	if ((!scope_within(scope, own) && !scope_within(own, scope)) || below) {
		snprintf(why, sizeof why, "forged: %s '%s' is %s this node (refused, audited)",
			 below ? "origin" : "scope", below ? origin : scope,
			 below ? "within" : "neither above nor within");
		struct tier_principal who = {
		    .kind = PRINCIPAL_MACHINE, .name = f->parent, .scope = f->parent};
		tiers_audit(k, &who, "federation.apply", own, ds, "denied", why);
		f->down_forged++;
		down_refuse(f, seq, why, e);
		return 0;
	}
	if (!d || !d->down) {
		snprintf(why, sizeof why, "dataset '%s' %s", ds,
			 d ? "does not come down here (its catalog entry says no `down`)"
			   : "is not in this node's catalog");
		down_refuse(f, seq, why, e);
		return 0;
	}
	int rc = store_fed_apply(k->store, origin, oseq, ds, scope, id,
				 r->type == MSGPACK_OBJECT_BIN ? r->via.bin.ptr : NULL,
				 r->type == MSGPACK_OBJECT_BIN ? r->via.bin.size : 0, err, sizeof err);
	if (rc == LINLI_EFULL || rc == LINLI_EIO || rc == LINLI_ENOMEM || rc == LINLI_ECORRUPT ||
	    rc == LINLI_EBUSY || rc == LINLI_ELIMIT)
		return rc;
	if (rc) {
		snprintf(why, sizeof why, "cannot be applied here: %s", err);
		down_refuse(f, seq, why, e);
		return 0;
	}
	f->down_entries++;
	return 0;
}

/*
 * What comes down from the parent's down log: applied once and in order (each entry after
 * this node's word, the word marked in the same transaction), checked — a dataset that
 * comes down here, a scope above this node or within it, an origin above it; the rest
 * quarantined — and forwarded to this node's own children by its own down log.
 */
static void apply_down(struct kernel *k, void *arg)
{
	struct inbound *in = arg;
	struct fed *f = in->f;
	take_in(in);
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	char from[SCOPE_MAX + 1] = "", cerr[96];
	uint64_t a = 0, b = 0;
	const msgpack_object *es = NULL;
	if (in->len > CHANGES_MAX || mp_check(in->bytes, in->len, 8, MP_STR_KEYS, cerr, sizeof cerr) ||
	    msgpack_unpack_next(&up, in->bytes, in->len, NULL) != MSGPACK_UNPACK_SUCCESS ||
	    up.data.type != MSGPACK_OBJECT_MAP || !str_of(mp_get(&up.data, "n"), from, sizeof from) ||
	    strcmp(from, f->parent) || !u64_of(mp_get(&up.data, "a"), &a) ||
	    !u64_of(mp_get(&up.data, "b"), &b) || b < a || !(es = mp_get(&up.data, "e")) ||
	    es->type != MSGPACK_OBJECT_ARRAY) {
		f->refused++;
		log_warn("federation", "refused a message on %s: not the parent's down log "
			 "(a MessagePack map n: the parent, a, b, e)", in->subject);
		goto out;
	}
	struct store *st = k->store;
	uint64_t applied = store_fed_applied(st, f->parent), was = applied;
	const msgpack_object *z = mp_get(&up.data, "z");
	if (z && z->type == MSGPACK_OBJECT_BOOLEAN && z->via.boolean && a == 0) {
		/* this node's word is past the parent's log: everything again, the word reset */
		log_warn("federation", "the parent's down log ends before this node's word (%llu): "
			 "taking all of it again", (unsigned long long)applied);
		applied = was = 0;
	}
	if (a > applied) { /* a message lost before it: the parent goes back to the word */
		f->down_gaps++;
		f->word_due = true;
		goto out;
	}
	uint64_t prev = a;
	bool grants = false; /* a grant from above changed: every plugin and rule checked again */
	for (uint32_t i = 0; i < es->via.array.size; i++) {
		const msgpack_object *x = &es->via.array.ptr[i];
		uint64_t seq = 0;
		if (x->type != MSGPACK_OBJECT_ARRAY || x->via.array.size != 2 ||
		    !u64_of(&x->via.array.ptr[0], &seq) || seq <= prev || seq > b) {
			f->refused++;
			log_warn("federation", "refused the rest of a message on %s: entry %u is not "
				 "[sequence, change] in order", in->subject, i);
			b = prev;
			break;
		}
		prev = seq;
		if (seq <= applied) {
			f->down_dups++;
			continue;
		}
		const msgpack_object *ds = x->via.array.ptr[1].type == MSGPACK_OBJECT_MAP
					       ? mp_get(&x->via.array.ptr[1], "d")
					       : NULL;
		grants |= ds && mp_eq(ds, "grants");
		int rc = down_one(f, seq, &x->via.array.ptr[1]);
		if (rc) {
			log_error("federation", "the parent's down log stopped at %llu: this node's "
				  "store failed (code %d); it comes again", (unsigned long long)seq, rc);
			goto out; /* the batch is lost: nothing marked, the parent sends it again */
		}
	}
	if (grants)
		grants_recheck(k);
	if (b > applied) { /* (a reset set applied to 0: its b is marked, lower than before) */
		char err[512];
		if (store_fed_mark(st, f->parent, b, err, sizeof err)) {
			log_error("federation", "%s", err);
			goto out;
		}
		if (store_on_commit(st, on_down_committed, f) == 0)
			goto out;
	}
	f->down_applied = was > applied ? was : applied;
	send_word(f); /* nothing new (repeats): where it stands */
out:
	msgpack_unpacked_destroy(&up);
	free(in);
}

/* A child's word on the down log (linli.up.<child>.dword {node, seq}). */
static void apply_dword(struct fed *f, struct inbound *in)
{
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	char node[SCOPE_MAX + 1] = "", cerr[96];
	uint64_t seq = 0;
	if (in->len > STATUS_MAX || mp_check(in->data, in->len, 2, MP_STR_KEYS, cerr, sizeof cerr) ||
	    msgpack_unpack_next(&up, in->data, in->len, NULL) != MSGPACK_UNPACK_SUCCESS ||
	    up.data.type != MSGPACK_OBJECT_MAP || !str_of(mp_get(&up.data, "node"), node, sizeof node) ||
	    !u64_of(mp_get(&up.data, "seq"), &seq)) {
		refuse(f, in, "not a word on the down log ({node, seq})");
		goto out;
	}
	struct child *c = sender_of(f, in, node, ".dword");
	if (c)
		down_word(f, c, seq);
out:
	msgpack_unpacked_destroy(&up);
}

/* The deletions every child that spoke has: trimmed from the down log. */
static void down_trim(struct fed *f)
{
	int64_t upto = -1;
	for (size_t i = 0; i < f->n_children; i++) {
		const struct child *c = &f->children[i];
		if (c->decommissioned || c->down_word < 0)
			continue;
		if (upto < 0 || c->down_word < upto)
			upto = c->down_word;
	}
	if (upto <= 0)
		return;
	size_t n = 0;
	char err[512];
	if (store_down_trim(f->k->store, (uint64_t)upto, &n, err, sizeof err))
		log_error("federation", "%s", err);
	f->down_trimmed += n;
}

static void apply_inbound(struct kernel *k, void *arg)
{
	(void)k;
	struct inbound *in = arg;
	take_in(in);
	size_t sl = strlen(in->subject);
	if (in->m)
		apply_changes(in->f, in);
	else if (sl > 5 && !strcmp(in->subject + sl - 5, ".acks"))
		apply_ack(in->f, in);
	else if (sl > 6 && !strcmp(in->subject + sl - 6, ".dword"))
		apply_dword(in->f, in);
	else if (sl > 5 && !strcmp(in->subject + sl - 5, ".xres"))
		apply_xres(in->f, in);
	else
		apply_status(in->f, in);
	free(in);
}

/* ---- the change log going up (kernel thread): release, quota ---- */

static void on_alarm_answer(uint64_t id, int status, const void *rec, size_t len, const char *msg,
			    void *ud)
{
	(void)id, (void)rec, (void)len;
	struct fed *f = ud;
	f->alarm_req = 0;
	if (status)
		log_warn("federation", "the backlog alarm: %s", msg ? msg : "refused");
}

/* Raise (or clear) the alarm of a change log filling up: through the alarms plugin. */
static void backlog_alarm(struct fed *f, bool raise, const char *details)
{
	if (raise == f->quota_alarm)
		return;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, raise ? 4 : 3);
	mp_kv_str(&pk, "type", "federation_backlog");
	mp_kv_str(&pk, "source", "plugin:federation"); /* the kernel's link, as a plugin would */
	if (raise) {
		mp_kv_str(&pk, "severity", "major");
		mp_kv_str(&pk, "details", details);
	} else
		mp_kv_str(&pk, "why", details);
	struct bus_msg m = {.topic = raise ? "alarmreq/raise" : "alarmreq/clear",
			    .publisher = "federation",
			    .scope = f->k->cfg.node_path,
			    .payload = sb.data,
			    .payload_len = sb.size};
	char err[320];
	uint64_t id = 0;
	if (!f->k->bus || bus_request(f->k->bus, &m, 0, on_alarm_answer, f, f, &id, err, sizeof err)) {
		if (!f->alarm_told) /* tried again at each check, said once */
			log_warn("federation", "the backlog alarm cannot be %s (%s): %s",
				 raise ? "raised" : "cleared", f->k->bus ? err : "no bus", details);
		f->alarm_told = true;
	} else {
		f->alarm_req = id;
		f->quota_alarm = raise;
		f->alarm_told = false;
		if (raise)
			log_warn("federation", "%s", details);
	}
	msgpack_sbuffer_destroy(&sb);
}

static void drop_upto(struct fed *f, uint64_t upto, const char *why)
{
	size_t n = 0;
	char err[512];
	if (store_outbox_release(f->k->store, upto, &n, err, sizeof err)) {
		log_error("federation", "%s", err);
		return;
	}
	f->dropped += n;
	f->released = upto;
	pthread_mutex_lock(&f->mu);
	f->released_seen = upto;
	pthread_mutex_unlock(&f->mu);
	log_error("federation", "%zu unsent changes dropped (up to %llu): %s; %llu dropped in all",
		  n, (unsigned long long)upto, why, (unsigned long long)f->dropped);
}

struct age_cut {
	int64_t cutoff;
	uint64_t upto;
};

static int older(void *ud, uint64_t seq, const void *val, size_t len)
{
	struct age_cut *a = ud;
	const void *t;
	size_t tl;
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	bool old = mp_map_value(val, len, "t", &t, &tl) == 0 &&
		   msgpack_unpack_next(&up, t, tl, NULL) == MSGPACK_UNPACK_SUCCESS &&
		   up.data.type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
		   (int64_t)up.data.via.u64 < a->cutoff;
	msgpack_unpacked_destroy(&up);
	if (!old)
		return 1;
	a->upto = seq;
	return 0;
}

/* The change log's bounds: entries and age; an alarm at half, a counted drop beyond. */
static void quota_check(struct fed *f)
{
	const struct cfg_fed *c = &f->k->cfg.fed;
	struct store_outbox_info oi;
	if (store_outbox_info(f->k->store, &oi))
		return;
	uint64_t unsent = oi.last - f->released;
	char why[256];
	if (unsent > (uint64_t)c->outbox_max) {
		snprintf(why, sizeof why, "federation.outbox_max (%d) reached", c->outbox_max);
		drop_upto(f, oi.last - (uint64_t)c->outbox_max, why);
		unsent = (uint64_t)c->outbox_max;
	}
	int64_t max_ms = (int64_t)c->outbox_max_age_h * 3600000, now = wall_ms();
	if (oi.oldest_ms && now - oi.oldest_ms > max_ms) {
		struct age_cut a = {.cutoff = now - max_ms};
		char err[512];
		if (!store_outbox_read(f->k->store, f->released, SIZE_MAX, older, &a, err, sizeof err) &&
		    a.upto > f->released) {
			snprintf(why, sizeof why, "older than federation.outbox_max_age_h (%d)",
				 c->outbox_max_age_h);
			drop_upto(f, a.upto, why);
		}
		store_outbox_info(f->k->store, &oi);
		unsent = oi.last - f->released;
	}
	bool aged = oi.oldest_ms && oi.count && now - oi.oldest_ms > max_ms / 2;
	if (unsent * 2 >= (uint64_t)c->outbox_max || aged) {
		snprintf(why, sizeof why,
			 "the change log going up holds %llu unsent changes (federation.outbox_max "
			 "%d), the oldest %llds old (outbox_max_age_h %d): is the link to the parent "
			 "down?",
			 (unsigned long long)unsent, c->outbox_max,
			 (long long)(oi.oldest_ms ? (now - oi.oldest_ms) / 1000 : 0),
			 c->outbox_max_age_h);
		backlog_alarm(f, true, why);
	} else if (unsent * 4 < (uint64_t)c->outbox_max && !aged)
		backlog_alarm(f, false, "the change log is sent");
}

static void release_applied(struct kernel *k, void *arg)
{
	struct fed *f = arg;
	pthread_mutex_lock(&f->mu);
	uint64_t upto = f->up_applied;
	f->release_posted = false;
	pthread_mutex_unlock(&f->mu);
	struct store_outbox_info oi;
	if (store_outbox_info(k->store, &oi))
		return;
	if (upto > oi.last) { /* a replaced or restored store: numbered on past the word */
		size_t moved = 0;
		char e[512];
		if (store_outbox_rebase(k->store, upto, &moved, e, sizeof e))
			log_error("federation", "%s", e);
		else
			log_warn("federation", "the parent had applied %llu of this node's changes, "
				 "more than this store numbered (%llu: replaced or restored): its %zu "
				 "unsent changes are numbered from %llu on",
				 (unsigned long long)upto, (unsigned long long)oi.last, moved,
				 (unsigned long long)upto + 1);
		f->released = upto;
		pthread_mutex_lock(&f->mu);
		f->released_seen = upto;
		pthread_mutex_unlock(&f->mu);
		return;
	}
	if (upto <= f->released)
		return;
	size_t n = 0;
	char err[512];
	if (store_outbox_release(k->store, upto, &n, err, sizeof err)) {
		log_error("federation", "%s", err);
		return;
	}
	f->released = upto;
	pthread_mutex_lock(&f->mu);
	f->released_seen = upto;
	pthread_mutex_unlock(&f->mu);
	quota_check(f);
}

static void quota_turn(struct kernel *k, void *arg)
{
	(void)k;
	struct fed *f = arg;
	f->quota_posted = false;
	quota_check(f);
}

void fed_on_outbox(void *ud, uint64_t last)
{
	struct kernel *k = ud;
	struct fed *f = k->fed;
	if (!f)
		return;
	pthread_mutex_lock(&f->mu);
	f->out_last = last;
	f->down_last = store_down_last(k->store);
	pthread_mutex_unlock(&f->mu);
	pthread_cond_signal(&f->cv);
	const struct cfg_fed *c = &k->cfg.fed;
	/* not here, inside the store's commit: on the next turn */
	if (((last - f->released) * 2 >= (uint64_t)c->outbox_max || f->quota_alarm) &&
	    !f->quota_posted)
		f->quota_posted = kernel_post(k, quota_turn, f) == 0;
}

static void resend_rules(struct fed *f);
static void exec_expire(struct fed *f);

/*
 * The children as they last spoke (data_dir/federation/children, MessagePack): a restarted
 * node knows them at once — shown stale until they speak, the down log sent on from their
 * word — rather than after their next status.
 */
static void children_path(const struct fed *f, char *out, size_t n)
{
	snprintf(out, n, "%s/federation/children", f->k->cfg.data_dir);
}

static void children_save(struct fed *f)
{
	char path[4300], dir[4300], err[512] = "";
	children_path(f, path, sizeof path);
	snprintf(dir, sizeof dir, "%s/federation", f->k->cfg.data_dir);
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	size_t n = 0;
	for (size_t i = 0; i < f->n_children; i++)
		n += f->children[i].seen_at != 0;
	msgpack_pack_array(&pk, n);
	for (size_t i = 0; i < f->n_children; i++) {
		const struct child *c = &f->children[i];
		if (!c->seen_at)
			continue;
		msgpack_pack_map(&pk, 8);
		mp_kv_str(&pk, "node", c->node);
		mp_kv_str(&pk, "level", c->level);
		mp_kv_str(&pk, "name", c->name);
		mp_kv_str(&pk, "version", c->version);
		mp_kv_str(&pk, "sdk", c->sdk);
		mp_kv_int(&pk, "seen_at", c->seen_at);
		mp_kv_uint(&pk, "seq", c->seq);
		mp_kv_int(&pk, "down", c->down_word);
	}
	if (mkdirs(dir, 0750) || write_file_atomic(path, sb.data, sb.size, 0640, err, sizeof err))
		log_warn("federation", "the children's last statuses are not kept: %s",
			 errno && !err[0] ? strerror(errno) : err);
	else
		f->children_dirty = false;
	msgpack_sbuffer_destroy(&sb);
}

static void children_load(struct fed *f)
{
	char path[4300];
	children_path(f, path, sizeof path);
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return;
	char *buf = malloc(1 << 20);
	size_t len = buf ? fread(buf, 1, 1 << 20, fp) : 0;
	fclose(fp);
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	char cerr[96];
	size_t n = 0;
	if (!buf || len == 1 << 20 || mp_check(buf, len, 3, MP_STR_KEYS, cerr, sizeof cerr) ||
	    msgpack_unpack_next(&up, buf, len, NULL) != MSGPACK_UNPACK_SUCCESS ||
	    up.data.type != MSGPACK_OBJECT_ARRAY) {
		log_warn("federation", "%s is not the children's statuses (a MessagePack array "
			 "under 1 MiB): ignored; they are known again when they speak", path);
		goto out;
	}
	const char *own = f->k->cfg.node_path;
	size_t ol = strlen(own);
	for (uint32_t i = 0; i < up.data.via.array.size; i++) {
		const msgpack_object *o = &up.data.via.array.ptr[i];
		char node[SCOPE_MAX + 1] = "";
		if (o->type != MSGPACK_OBJECT_MAP || !str_of(mp_get(o, "node"), node, sizeof node) ||
		    strncmp(node, own, ol) || node[ol] != '/' || strchr(node + ol + 1, '/'))
			continue; /* not a direct child of this node: a file of another */
		struct child *c = child_of(f, node);
		if (!c)
			break;
		mp_copy_str(mp_get(o, "level"), c->level, sizeof c->level);
		mp_copy_str(mp_get(o, "name"), c->name, sizeof c->name);
		mp_copy_str(mp_get(o, "version"), c->version, sizeof c->version);
		mp_copy_str(mp_get(o, "sdk"), c->sdk, sizeof c->sdk);
		const msgpack_object *v = mp_get(o, "seen_at");
		c->seen_at = v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (int64_t)v->via.u64 : 1;
		u64_of(mp_get(o, "seq"), &c->seq);
		uint64_t w;
		if (u64_of(mp_get(o, "down"), &w))
			down_word(f, c, w);
		n++;
	}
	log_info("federation", "%zu children known from %s (stale until they speak)", n, path);
out:
	msgpack_unpacked_destroy(&up);
	free(buf);
}

/* Every child is told what was applied of its changes (a lost word is said again). */
static void on_announce(struct kernel *k, void *arg)
{
	(void)k;
	struct fed *f = arg;
	for (size_t i = 0; i < f->n_children; i++)
		if (f->children[i].applied)
			queue_notice(f, f->children[i].node, f->children[i].applied);
	if (f->k->cfg.fed.parent_domain)
		quota_check(f);
	if (++f->ticks % RESEND_TICKS == 0)
		resend_rules(f);
	if (f->word_due && f->k->cfg.fed.parent_domain)
		send_word(f);
	if (f->ticks % 10 == 0)
		down_trim(f);
	if (f->ticks % 5 == 0 && f->children_dirty)
		children_save(f);
	exec_expire(f);
}

static void load_applied(void *ud, const char *from, uint64_t seq)
{
	struct fed *f = ud;
	if (!scope_within(f->k->cfg.node_path, from)) { /* the parent's down log */
		if (!strcmp(from, f->parent))
			f->down_applied = seq;
		return;
	}
	struct child *c = child_of(f, from);
	if (c)
		c->applied = seq;
}

/* ---- rules down the tree (kernel thread) ----
 *
 * A rule pushed at a node (federation push) is installed there and kept in
 * data_dir/federation/down; every node keeps sending what it holds to each child that has
 * not said anything of it (core NATS, linli.down.<child>.rule, every RESEND_TICKS s); a
 * child installs it (granting what it declares, audited as the parent), keeps it, says so
 * up (JetStream, linli.up.<child>.acks) and passes it on. Every acknowledgement goes up
 * hop by hop to the top, so the node that pushed sees every node's word.
 */

static void hash_hex(const char *text, size_t len, char out[HASH_HEX])
{
	unsigned char h[crypto_generichash_BYTES];
	crypto_generichash(h, sizeof h, (const unsigned char *)text, len, NULL, 0);
	sodium_bin2hex(out, HASH_HEX, h, sizeof h);
}

/* Hand sb's bytes to fed's thread (sb is left empty). */
static void queue_out(struct fed *f, const char *subject, bool js, msgpack_sbuffer *sb)
{
	pthread_mutex_lock(&f->mu);
	if (f->n_outs == f->cap_outs) {
		size_t cap = f->cap_outs ? f->cap_outs * 2 : 16;
		struct outmsg *v = realloc(f->outs, cap * sizeof *v);
		if (!v) {
			pthread_mutex_unlock(&f->mu);
			msgpack_sbuffer_destroy(sb);
			return; /* said again: the child's resend, the ack with the next word */
		}
		f->outs = v;
		f->cap_outs = cap;
	}
	struct outmsg *o = &f->outs[f->n_outs++];
	snprintf(o->subject, sizeof o->subject, "%s", subject);
	o->js = js;
	o->len = sb->size;
	o->data = msgpack_sbuffer_release(sb);
	pthread_mutex_unlock(&f->mu);
	pthread_cond_signal(&f->cv);
}

static struct drule *drule_find(struct fed *f, const char *name)
{
	for (size_t i = 0; i < f->n_rules; i++)
		if (!strcmp(f->rules[i].name, name))
			return &f->rules[i];
	return NULL;
}

static bool rule_name_ok(const char *n)
{
	size_t l = strlen(n);
	return l && l <= SCRIPT_NAME_MAX && n[0] >= 'a' && n[0] <= 'z' &&
	       strspn(n, "abcdefghijklmnopqrstuvwxyz0123456789_") == l;
}

/* Keep rule `name` = text as what this node holds from above (file and memory). */
static int down_keep(struct fed *f, const char *name, const char *text, size_t len, char *err,
		     size_t errlen)
{
	struct drule *r = drule_find(f, name);
	if (!r && f->n_rules == RULES_MAX)
		return errf(err, errlen, LINLI_ELIMIT, "more than %d rules from above", RULES_MAX);
	char path[sizeof f->down_dir + 80];
	if (mkdirs(f->down_dir, 0750))
		return errf(err, errlen, LINLI_EIO, "cannot create %s: %s", f->down_dir,
			    strerror(errno));
	snprintf(path, sizeof path, "%s/%s.lua", f->down_dir, name);
	int wrc = write_file_atomic(path, text, len, 0640, err, errlen);
	if (wrc)
		return wrc;
	char *copy = malloc(len + 1);
	if (!copy)
		return errf(err, errlen, LINLI_ENOMEM, "out of memory");
	memcpy(copy, text, len);
	copy[len] = '\0';
	if (!r) {
		struct drule *v = realloc(f->rules, (f->n_rules + 1) * sizeof *v);
		if (!v) {
			free(copy);
			return errf(err, errlen, LINLI_ENOMEM, "out of memory");
		}
		f->rules = v;
		r = &v[f->n_rules++];
		memset(r, 0, sizeof *r);
		snprintf(r->name, sizeof r->name, "%s", name);
	}
	free(r->text);
	r->text = copy;
	r->len = len;
	hash_hex(text, len, r->hash);
	return 0;
}

/* What this node holds from above, read back at start. */
static void down_load(struct fed *f)
{
	DIR *d = opendir(f->down_dir);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		size_t n = strlen(e->d_name);
		char name[SCRIPT_NAME_MAX + 1], path[sizeof f->down_dir + 300], err[256];
		if (n < 5 || n - 4 > SCRIPT_NAME_MAX || strcmp(e->d_name + n - 4, ".lua"))
			continue;
		snprintf(name, sizeof name, "%.*s", (int)(n - 4), e->d_name);
		snprintf(path, sizeof path, "%s/%s", f->down_dir, e->d_name);
		FILE *fp = rule_name_ok(name) ? fopen(path, "rb") : NULL;
		char *text = fp ? malloc(SCRIPT_MAX_SOURCE + 1) : NULL;
		size_t len = text ? fread(text, 1, SCRIPT_MAX_SOURCE + 1, fp) : 0;
		if (fp)
			fclose(fp);
		if (text && len <= SCRIPT_MAX_SOURCE && down_keep(f, name, text, len, err, sizeof err))
			log_warn("federation", "%s", err);
		free(text);
	}
	if (d)
		closedir(d);
}

static struct dack *dack_set(struct fed *f, const char *node, const char *rule, const char *hash,
			     bool ok, const char *error)
{
	struct dack *a = NULL;
	for (size_t i = 0; i < f->n_dacks && !a; i++)
		if (!strcmp(f->dacks[i].node, node) && !strcmp(f->dacks[i].rule, rule))
			a = &f->dacks[i];
	if (!a) {
		if (f->n_dacks == ACKS_MAX)
			return NULL;
		struct dack *v = realloc(f->dacks, (f->n_dacks + 1) * sizeof *v);
		if (!v)
			return NULL;
		f->dacks = v;
		a = &v[f->n_dacks++];
	}
	memset(a, 0, sizeof *a);
	snprintf(a->node, sizeof a->node, "%s", node);
	snprintf(a->rule, sizeof a->rule, "%s", rule);
	snprintf(a->hash, sizeof a->hash, "%s", hash);
	snprintf(a->error, sizeof a->error, "%s", error ? error : "");
	a->ok = ok;
	a->at = wall_ms();
	return a;
}

/* A node's word on a rule, up to the parent (which passes it on to the top). */
static void up_ack(struct fed *f, const struct dack *a)
{
	if (!a || !f->k->cfg.fed.parent_domain)
		return;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 6);
	mp_kv_str(&pk, "node", a->node);
	mp_kv_str(&pk, "rule", a->rule);
	mp_kv_str(&pk, "hash", a->hash);
	mp_kv_bool(&pk, "ok", a->ok);
	mp_kv_str(&pk, "error", a->error);
	mp_kv_int(&pk, "at", a->at);
	char t[SCOPE_MAX + 1], subj[SUBJECT_MAX];
	tokens(f->k->cfg.node_path, t, sizeof t);
	snprintf(subj, sizeof subj, "linli.up.%s.acks", t);
	queue_out(f, subj, true, &sb);
}

static void send_rule(struct fed *f, const struct drule *r, const char *child)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 4);
	mp_kv_str(&pk, "name", r->name);
	mp_kv_str(&pk, "hash", r->hash);
	mp_kv_str(&pk, "from", f->k->cfg.node_path);
	mp_str(&pk, "text");
	msgpack_pack_str(&pk, r->len);
	msgpack_pack_str_body(&pk, r->text, r->len);
	char t[SCOPE_MAX + 1], subj[SUBJECT_MAX];
	tokens(child, t, sizeof t);
	snprintf(subj, sizeof subj, "linli.down.%s.rule", t);
	queue_out(f, subj, false, &sb);
}

static bool acked(const struct fed *f, const char *node, const struct drule *r)
{
	for (size_t i = 0; i < f->n_dacks; i++)
		if (!strcmp(f->dacks[i].node, node) && !strcmp(f->dacks[i].rule, r->name) &&
		    !strcmp(f->dacks[i].hash, r->hash))
			return true;
	return false;
}

/* Every rule to every child that has said nothing of it. */
static void resend_rules(struct fed *f)
{
	for (size_t i = 0; i < f->n_rules; i++)
		for (size_t c = 0; c < f->n_children; c++)
			if (!f->children[c].decommissioned &&
			    !acked(f, f->children[c].node, &f->rules[i]))
				send_rule(f, &f->rules[i], f->children[c].node);
}

/* Install rule `name` = text here and hold it for the subtree; this node's word on it. */
static struct dack *take_rule(struct fed *f, const struct tier_principal *who, const char *name,
			      const char *text, size_t len, char *err, size_t errlen)
{
	char got[SCRIPT_NAME_MAX + 1] = "", file[SCRIPT_NAME_MAX + 32];
	snprintf(file, sizeof file, "federation:%s", name);
	int rc = script_cmds_install(f->k, who, file, text, len, got, sizeof got, err, errlen);
	if (!rc && strcmp(got, name))
		rc = errf(err, errlen, LINLI_EINVAL, "the rule sent as '%s' is named '%s'", name, got);
	if (!rc)
		rc = down_keep(f, name, text, len, err, errlen);
	char hash[HASH_HEX];
	hash_hex(text, len, hash);
	if (rc)
		log_warn("federation", "rule %s from above not taken: %s", name, err);
	else
		log_info("federation", "rule %s from above installed (%.12s)", name, hash);
	return dack_set(f, f->k->cfg.node_path, name, hash, rc == 0, rc ? err : NULL);
}

static void apply_rule(struct kernel *k, void *arg)
{
	(void)k;
	struct inbound *in = arg;
	struct fed *f = in->f;
	take_in(in);
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	char name[SCRIPT_NAME_MAX + 1] = "", hash[HASH_HEX] = "", from[SCOPE_MAX + 1] = "",
	     parent[SCOPE_MAX + 1], cerr[96], err[768];
	const msgpack_object *t = NULL;
	snprintf(parent, sizeof parent, "%s", f->k->cfg.node_path);
	char *slash = strrchr(parent, '/');
	if (slash)
		*slash = '\0';
	if (mp_check(in->bytes, in->len, 2, MP_STR_KEYS, cerr, sizeof cerr) ||
	    msgpack_unpack_next(&up, in->bytes, in->len, NULL) != MSGPACK_UNPACK_SUCCESS ||
	    up.data.type != MSGPACK_OBJECT_MAP || !str_of(mp_get(&up.data, "name"), name, sizeof name) ||
	    !rule_name_ok(name) || !str_of(mp_get(&up.data, "hash"), hash, sizeof hash) ||
	    !str_of(mp_get(&up.data, "from"), from, sizeof from) || strcmp(from, parent) ||
	    !(t = mp_get(&up.data, "text")) || t->type != MSGPACK_OBJECT_STR ||
	    t->via.str.size > SCRIPT_MAX_SOURCE) {
		f->refused++;
		log_warn("federation", "refused a rule on %s: not {name, hash, from: the parent, text}",
			 in->subject);
		goto out;
	}
	char want[HASH_HEX];
	hash_hex(t->via.str.ptr, t->via.str.size, want);
	if (strcmp(want, hash)) {
		f->refused++;
		log_warn("federation", "refused rule %s from %s: its text does not match its hash",
			 name, from);
		goto out;
	}
	struct drule *r = drule_find(f, name);
	struct dack *a = NULL;
	if (r && !strcmp(r->hash, hash)) { /* held already: say so again */
		for (size_t i = 0; i < f->n_dacks && !a; i++)
			if (!strcmp(f->dacks[i].node, f->k->cfg.node_path) &&
			    !strcmp(f->dacks[i].rule, name) && !strcmp(f->dacks[i].hash, hash))
				a = &f->dacks[i];
		if (!a)
			a = dack_set(f, f->k->cfg.node_path, name, hash, true, NULL);
	} else {
		struct tier_principal who = {.kind = PRINCIPAL_MACHINE, .name = from, .scope = from};
		a = take_rule(f, &who, name, t->via.str.ptr, t->via.str.size, err, sizeof err);
		if (a && a->ok)
			resend_rules(f); /* on to the children at once */
	}
	up_ack(f, a);
out:
	msgpack_unpacked_destroy(&up);
	free(in);
}

/* A word on a rule from below: kept (shown by status) and passed on up. */
static void apply_ack(struct fed *f, struct inbound *in)
{
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	char node[SCOPE_MAX + 1] = "", rule[SCRIPT_NAME_MAX + 1] = "", hash[HASH_HEX] = "",
	     error[200] = "", cerr[96], sender[SUBJECT_MAX];
	const msgpack_object *ok = NULL;
	/* the sender: the subject's node (linli.up.<path>.acks), held to it by the servers */
	snprintf(sender, sizeof sender, "%s", in->subject + (strncmp(in->subject, "linli.up.", 9)
								  ? 0
								  : 9));
	size_t sl = strlen(sender);
	if (sl > 5)
		sender[sl - 5] = '\0';
	for (char *p = sender; *p; p++)
		if (*p == '.')
			*p = '/';
	if (in->len > STATUS_MAX || mp_check(in->data, in->len, 2, MP_STR_KEYS, cerr, sizeof cerr) ||
	    msgpack_unpack_next(&up, in->data, in->len, NULL) != MSGPACK_UNPACK_SUCCESS ||
	    up.data.type != MSGPACK_OBJECT_MAP || !str_of(mp_get(&up.data, "node"), node, sizeof node) ||
	    !str_of(mp_get(&up.data, "rule"), rule, sizeof rule) ||
	    !str_of(mp_get(&up.data, "hash"), hash, sizeof hash) || !(ok = mp_get(&up.data, "ok")) ||
	    ok->type != MSGPACK_OBJECT_BOOLEAN || !scope_within(sender, node) ||
	    !scope_within(f->k->cfg.node_path, sender) || !strcmp(sender, f->k->cfg.node_path)) {
		refuse(f, in, "not a word on a rule from a node of the sender's subtree");
		goto out;
	}
	if (!sender_of(f, in, sender, ".acks")) /* refused there: not a child, decommissioned */
		goto out;
	str_of(mp_get(&up.data, "error"), error, sizeof error);
	up_ack(f, dack_set(f, node, rule, hash, ok->via.boolean, error));
out:
	msgpack_unpacked_destroy(&up);
}

static int cmd_push(struct cmd_call *call, void *ud)
{
	struct fed *f = ud;
	if (!f)
		return cmd_fail(call, LINLI_ENOENT,
				"this node has no federation link (no federation group in %s)",
				call->k->cfg.source);
	const char *file = NULL;
	char *text = NULL;
	size_t len = 0;
	int rc = script_cmds_file_text(call, &file, &text, &len);
	if (rc)
		return rc;
	struct script *s = NULL;
	char name[SCRIPT_NAME_MAX + 1];
	rc = call->k->rules ? script_rules_check(call->k->rules, file, text, len, &s, call->err,
						  sizeof call->err)
			    : cmd_fail(call, LINLI_ESTATE, "this node runs no rules");
	if (!rc) {
		snprintf(name, sizeof name, "%s", script_name(s));
		script_free(s);
		struct dack *a = take_rule(f, call->who, name, text, len, call->err, sizeof call->err);
		rc = !a ? cmd_fail(call, LINLI_ENOMEM, "out of memory")
		     : !a->ok ? cmd_fail(call, LINLI_EINVAL, "%s", a->error)
			      : 0;
		if (!rc) {
			up_ack(f, a);
			resend_rules(f);
			tiers_audit(call->k, call->who, "federation.push", call->who->scope, name,
				    "allowed", a->hash);
			msgpack_pack_map(&call->pk, 3);
			mp_kv_str(&call->pk, "rule", name);
			mp_kv_str(&call->pk, "hash", a->hash);
			mp_kv_uint(&call->pk, "children", f->n_children);
		}
	}
	free(text);
	return rc;
}

/* ---- decommissioned children (data_dir/federation/decommissioned, one path a line) ---- */

static void decom_path(const struct fed *f, char *out, size_t n)
{
	snprintf(out, n, "%s/federation/decommissioned", f->k->cfg.data_dir);
}

static int decom_save(struct fed *f, char *err, size_t errlen)
{
	char path[4300], dir[4300];
	decom_path(f, path, sizeof path);
	snprintf(dir, sizeof dir, "%s/federation", f->k->cfg.data_dir);
	if (mkdirs(dir, 0750))
		return errf(err, errlen, LINLI_EIO, "cannot create %s: %s", dir, strerror(errno));
	char *text = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&text, &len);
	if (!fp)
		return errf(err, errlen, LINLI_ENOMEM, "out of memory");
	for (size_t i = 0; i < f->n_children; i++)
		if (f->children[i].decommissioned)
			fprintf(fp, "%s\n", f->children[i].node);
	int rc = fclose(fp) ? errf(err, errlen, LINLI_ENOMEM, "out of memory")
			    : write_file_atomic(path, text, len, 0640, err, errlen);
	free(text);
	return rc;
}

static void decom_load(struct fed *f)
{
	char path[4300], line[SCOPE_MAX + 2];
	decom_path(f, path, sizeof path);
	FILE *fp = fopen(path, "r");
	while (fp && fgets(line, sizeof line, fp)) {
		line[strcspn(line, "\n")] = '\0';
		struct child *c = line[0] ? child_of(f, line) : NULL;
		if (c)
			c->decommissioned = true;
	}
	if (fp)
		fclose(fp);
}

static int cmd_decommission(struct cmd_call *call, void *ud)
{
	struct fed *f = ud;
	if (!f)
		return cmd_fail(call, LINLI_ENOENT,
				"this node has no federation link (no federation group in %s)",
				call->k->cfg.source);
	bool undo = cmd_flag(call, "--undo");
	const char *node = call->argc >= 3 ? call->argv[2] : "";
	const char *own = call->k->cfg.node_path;
	size_t own_n = strlen(own);
	if (call->argc < 3 || strncmp(node, own, own_n) || node[own_n] != '/' ||
	    !node[own_n + 1] || strchr(node + own_n + 1, '/') || strlen(node) > SCOPE_MAX)
		return cmd_fail(call, LINLI_EINVAL,
				"usage: federation decommission CHILD [--undo] (CHILD: the path of a "
				"direct child of %s)",
				own);
	if (!scope_within(call->who->scope, node))
		return cmd_fail(call, LINLI_EPERM, "%s is outside %s", node, call->who->scope);
	struct child *c = child_of(f, node);
	if (!c)
		return cmd_fail(call, LINLI_ELIMIT, "too many children");
	bool was = c->decommissioned;
	c->decommissioned = !undo;
	int rc = decom_save(f, call->err, sizeof call->err);
	if (rc) {
		c->decommissioned = was;
		return rc;
	}
	if (c->down_word >= 0)
		down_word(f, c, (uint64_t)c->down_word); /* its down log: stopped, or on again */
	tiers_audit(call->k, call->who, undo ? "federation.recommission" : "federation.decommission",
		    node, node, "allowed", NULL);
	log_info("federation", "%s %s: %s", node, undo ? "taken back" : "decommissioned",
		 undo ? "its messages are taken again" : "nothing taken from it any more, its data kept");
	msgpack_pack_map(&call->pk, 2);
	mp_kv_str(&call->pk, "node", node);
	mp_kv_bool(&call->pk, "decommissioned", !undo);
	return 0;
}

static int cmd_status(struct cmd_call *call, void *ud)
{
	struct fed *f = ud;
	if (call->argc != 2)
		return cmd_fail(call, LINLI_EINVAL, "usage: federation status");
	if (!f)
		return cmd_fail(call, LINLI_ENOENT,
				"this node has no federation link (no federation group in %s)",
				call->k->cfg.source);
	const struct cfg_fed *c = &call->k->cfg.fed;
	int64_t now = wall_ms();
	struct store_outbox_info oi;
	store_outbox_info(call->k->store, &oi);
	msgpack_packer *pk = &call->pk;
	uint64_t down_n = 0;
	store_down_count(call->k->store, &down_n);
	uint64_t down_last = store_down_last(call->k->store);
	pthread_mutex_lock(&f->mu);
	msgpack_pack_map(pk, 18);
	mp_kv_str(pk, "node", call->k->cfg.node_path);
	/* what comes down to this node (the datasets marked down): its parent's log */
	mp_str(pk, "from_parent");
	msgpack_pack_map(pk, 7);
	mp_kv_str(pk, "parent", f->parent[0] ? f->parent : NULL);
	mp_kv_uint(pk, "applied", f->down_applied);
	mp_kv_uint(pk, "changes", f->down_entries);
	mp_kv_uint(pk, "repeats", f->down_dups);
	mp_kv_uint(pk, "gaps", f->down_gaps);
	mp_kv_uint(pk, "quarantined", f->down_quarantined);
	mp_kv_uint(pk, "forged", f->down_forged);
	/* what goes down from here: each record's last change, kept for the children */
	mp_str(pk, "down_log");
	msgpack_pack_map(pk, 3);
	mp_kv_uint(pk, "last", down_last);
	mp_kv_uint(pk, "entries", down_n);
	mp_kv_uint(pk, "trimmed", f->down_trimmed);
	char shown[256];
	mp_kv_str(pk, "url", shown_url(c->url, shown, sizeof shown));
	mp_kv_str(pk, "parent_domain", c->parent_domain);
	mp_kv_str(pk, "up_subject", c->parent_domain ? f->up_subject : NULL);
	mp_kv_bool(pk, "connected", f->connected);
	mp_kv_bool(pk, "consuming", f->consuming);
	mp_kv_str(pk, "last_error", f->last_error);
	mp_kv_uint(pk, "published", f->published);
	mp_kv_uint(pk, "publish_failed", f->publish_failed);
	mp_kv_int(pk, "last_published_at", f->last_published_at);
	/* what goes up: the change log and where the parent stands */
	mp_str(pk, "up");
	msgpack_pack_map(pk, 14);
	mp_kv_bool(pk, "kept", c->parent_domain != NULL);
	mp_kv_uint(pk, "last", oi.last);
	mp_kv_uint(pk, "parent_applied", f->up_applied);
	mp_kv_uint(pk, "released", oi.acked);
	mp_kv_uint(pk, "unsent", oi.count);
	mp_kv_uint(pk, "lag", oi.last - (f->up_applied < oi.last ? f->up_applied : oi.last));
	mp_kv_uint(pk, "bytes", oi.bytes);
	mp_kv_int(pk, "oldest_unsent_age_s", oi.oldest_ms ? (now - oi.oldest_ms) / 1000 : 0);
	mp_kv_uint(pk, "messages", f->sent_msgs);
	mp_kv_uint(pk, "sent_again", f->resent);
	mp_kv_uint(pk, "failed", f->up_failed);
	mp_kv_uint(pk, "dropped", f->dropped);
	mp_kv_bool(pk, "backlog_alarm", f->quota_alarm);
	mp_kv_int(pk, "outbox_max", c->outbox_max);
	pthread_mutex_unlock(&f->mu);
	mp_kv_uint(pk, "received", f->received);
	mp_kv_uint(pk, "refused", f->refused);
	mp_kv_uint(pk, "quarantined", oi.quarantined);
	/* the rules held from above (or pushed here): who has said what, who is pending */
	mp_str(pk, "down");
	msgpack_pack_array(pk, f->n_rules);
	for (size_t i = 0; i < f->n_rules; i++) {
		const struct drule *r = &f->rules[i];
		size_t n_ok = 0, n_bad = 0, n_pend = 0;
		for (size_t j = 0; j < f->n_dacks; j++)
			if (!strcmp(f->dacks[j].rule, r->name) && !strcmp(f->dacks[j].hash, r->hash) &&
			    scope_within(call->who->scope, f->dacks[j].node))
				f->dacks[j].ok ? n_ok++ : n_bad++;
		for (size_t c = 0; c < f->n_children; c++)
			n_pend += scope_within(call->who->scope, f->children[c].node) &&
				  !f->children[c].decommissioned && !acked(f, f->children[c].node, r);
		msgpack_pack_map(pk, 5);
		mp_kv_str(pk, "rule", r->name);
		mp_kv_str(pk, "hash", r->hash);
		mp_str(pk, "applied");
		msgpack_pack_array(pk, n_ok);
		for (size_t j = 0; j < f->n_dacks; j++)
			if (!strcmp(f->dacks[j].rule, r->name) && !strcmp(f->dacks[j].hash, r->hash) &&
			    scope_within(call->who->scope, f->dacks[j].node) && f->dacks[j].ok)
				mp_str(pk, f->dacks[j].node);
		mp_str(pk, "failed");
		msgpack_pack_array(pk, n_bad);
		for (size_t j = 0; j < f->n_dacks; j++)
			if (!strcmp(f->dacks[j].rule, r->name) && !strcmp(f->dacks[j].hash, r->hash) &&
			    scope_within(call->who->scope, f->dacks[j].node) && !f->dacks[j].ok) {
				msgpack_pack_map(pk, 2);
				mp_kv_str(pk, "node", f->dacks[j].node);
				mp_kv_str(pk, "error", f->dacks[j].error);
			}
		mp_str(pk, "pending");
		msgpack_pack_array(pk, n_pend);
		for (size_t c = 0; c < f->n_children; c++)
			if (scope_within(call->who->scope, f->children[c].node) &&
			    !f->children[c].decommissioned && !acked(f, f->children[c].node, r))
				mp_str(pk, f->children[c].node);
	}
	/* the children the caller may see: within its jurisdiction */
	size_t n = 0;
	for (size_t i = 0; i < f->n_children; i++)
		n += scope_within(call->who->scope, f->children[i].node);
	mp_str(pk, "children");
	msgpack_pack_array(pk, n);
	for (size_t i = 0; i < f->n_children; i++) {
		const struct child *ch = &f->children[i];
		if (!scope_within(call->who->scope, ch->node))
			continue;
		msgpack_pack_map(pk, 24);
		mp_kv_str(pk, "node", ch->node);
		mp_kv_str(pk, "held", ch->hold);
		mp_kv_uint(pk, "held_messages", ch->held);
		mp_kv_int(pk, "down_applied", ch->down_word);
		mp_kv_uint(pk, "down_behind",
			   ch->down_word < 0 ? down_last
			   : (uint64_t)ch->down_word < down_last ? down_last - (uint64_t)ch->down_word
								 : 0);
		mp_kv_bool(pk, "decommissioned", ch->decommissioned);
		mp_kv_str(pk, "schema_differs", ch->schema_differs);
		mp_kv_str(pk, "level", ch->level);
		mp_kv_str(pk, "name", ch->name);
		mp_kv_str(pk, "version", ch->version);
		mp_kv_str(pk, "sdk", ch->sdk);
		mp_kv_int(pk, "sent_at", ch->sent_at);
		mp_kv_int(pk, "seen_at", ch->seen_at);
		mp_kv_int(pk, "age_ms", now - ch->seen_at);
		mp_kv_bool(pk, "stale", now - ch->seen_at > c->stale_ms);
		mp_kv_uint(pk, "seq", ch->seq);
		mp_kv_uint(pk, "applied", ch->applied);
		mp_kv_uint(pk, "changes", ch->entries);
		mp_kv_uint(pk, "duplicates", ch->duplicates);
		mp_kv_uint(pk, "gaps", ch->gaps);
		mp_kv_uint(pk, "lost", ch->lost);
		mp_kv_uint(pk, "quarantined", ch->quarantined);
		mp_kv_uint(pk, "forged", ch->forged);
		mp_kv_str(pk, "last_gap", ch->gap);
	}
	return 0;
}

/* ---- commands down: federation exec NODE WORD [SUB] [ARG...] ----
 *
 * A parent's operator acting on what a node below owns (an alarm, a case): the command goes
 * down hop by hop (linli.down.<child>.exec, core NATS) to the node that owns the records, runs
 * there as the operator (named NAME@ITS-NODE, its role, scope, duties and grants; gated and
 * audited as any command there, kept to that node by access_check), and its answer comes
 * back up hop by hop (linli.up.<node>.xres, JetStream); what it changed comes up with the
 * change log like any other change.
 */

/* The child of this node on the way to `to` (a node below it): its path. */
static void next_hop(const char *own, const char *to, char *out, size_t n)
{
	size_t ol = strlen(own);
	const char *sl = strchr(to + ol + 1, '/');
	size_t len = sl ? (size_t)(sl - to) : strlen(to);
	snprintf(out, n, "%.*s", (int)len, to);
}

static void send_exec(struct fed *f, const char *to, const char *bytes, size_t len)
{
	char hop[SCOPE_MAX + 1], t[SCOPE_MAX + 1], subj[SUBJECT_MAX];
	next_hop(f->k->cfg.node_path, to, hop, sizeof hop);
	tokens(hop, t, sizeof t);
	snprintf(subj, sizeof subj, "linli.down.%s.exec", t);
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_sbuffer_write(&sb, bytes, len);
	queue_out(f, subj, false, &sb);
}

static void exec_cancel(struct cmd_call *call, void *arg)
{
	struct fed *f = arg;
	for (size_t i = 0; i < f->n_xpend; i++)
		if (f->xpend[i].call == call) {
			f->xpend[i] = f->xpend[--f->n_xpend];
			return;
		}
}

/* Answers not come within EXEC_WAIT_MS: said so (every announce tick). */
static void exec_expire(struct fed *f)
{
	int64_t now = mono_ms(); /* the network's time, never the test clock */
	for (size_t i = 0; i < f->n_xpend;) {
		struct xpend *x = &f->xpend[i];
		if (x->deadline > now) {
			i++;
			continue;
		}
		struct cmd_call *call = x->call;
		cmd_fail(call, LINLI_ETIMEDOUT,
			 "federation exec: no answer from %s within %d s (is the link to it down? "
			 "the command may still run there: look before sending it again)",
			 x->to, EXEC_WAIT_MS / 1000);
		f->xpend[i] = f->xpend[--f->n_xpend];
		call->on_cancel = NULL;
		cmd_finish(call, LINLI_ETIMEDOUT);
	}
}

static void pack_strs(msgpack_packer *pk, const char *key, const char *const *v)
{
	size_t n = 0;
	while (v && v[n] && n < TIER_MAX_GRANTS)
		n++;
	mp_str(pk, key);
	msgpack_pack_array(pk, n);
	for (size_t i = 0; i < n; i++)
		mp_str(pk, v[i]);
}

static int cmd_exec(struct cmd_call *call, void *ud)
{
	struct fed *f = ud;
	if (!f)
		return cmd_fail(call, LINLI_ENOENT,
				"this node has no federation link (no federation group in %s)",
				call->k->cfg.source);
	if (call->argc < 4)
		return cmd_fail(call, LINLI_EINVAL, "usage: federation exec NODE WORD [SUB] [ARG...]");
	const char *to = call->argv[2], *own = call->k->cfg.node_path;
	char why[128];
	if (!scope_check(to, why, sizeof why))
		return cmd_fail(call, LINLI_EINVAL, "federation exec: node '%.64s': %s", to, why);
	if (!scope_within(own, to) || !strcmp(own, to))
		return cmd_fail(call, LINLI_EINVAL,
				"federation exec: '%s' is not a node below this one (%s); run the "
				"command here without exec",
				to, own);
	const char *w0 = call->argv[3], *w1 = call->argc > 4 ? call->argv[4] : "";
	if (!strcmp(w0, "login") || !strcmp(w0, "logout") ||
	    (!strcmp(w0, "federation") && !strcmp(w1, "exec")))
		return cmd_fail(call, LINLI_EINVAL,
				"federation exec: '%s%s%s' is not sent down (a session is the node's "
				"own)",
				w0, *w1 ? " " : "", w1);
	int rc = access_call(call, ACT_STATUS, to, "federation exec");
	if (rc)
		return rc;
	char hop[SCOPE_MAX + 1];
	next_hop(own, to, hop, sizeof hop);
	for (size_t i = 0; i < f->n_children; i++)
		if (!strcmp(f->children[i].node, hop) && f->children[i].decommissioned)
			return cmd_fail(call, LINLI_EPERM,
					"federation exec: %s is decommissioned here: nothing is sent to it",
					hop);
	const struct tier_principal *who = call->who;
	uint64_t id = ++f->xid;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 6);
	mp_kv_uint(&pk, "id", id);
	mp_kv_str(&pk, "from", own);
	mp_kv_str(&pk, "to", to);
	mp_str(&pk, "who");
	msgpack_pack_map(&pk, 5);
	mp_kv_str(&pk, "name", who->name);
	mp_kv_str(&pk, "scope", who->scope);
	mp_kv_str(&pk, "role", tier_role_name(who->role));
	pack_strs(&pk, "grants", who->grants);
	pack_strs(&pk, "duties", who->duties);
	mp_str(&pk, "argv");
	msgpack_pack_array(&pk, (size_t)(call->argc - 3));
	for (int i = 3; i < call->argc; i++)
		mp_str(&pk, call->argv[i]);
	mp_str(&pk, "input");
	if (call->input) {
		msgpack_pack_str(&pk, call->input_len);
		msgpack_pack_str_body(&pk, call->input, call->input_len);
	} else
		msgpack_pack_nil(&pk);
	if (sb.size > EXEC_MAX) {
		size_t n = sb.size;
		msgpack_sbuffer_destroy(&sb);
		return cmd_fail(call, LINLI_ELIMIT,
				"federation exec: the command is %zu bytes; at most %u go down", n,
				EXEC_MAX);
	}
	struct xpend *v = realloc(f->xpend, (f->n_xpend + 1) * sizeof *v);
	if (!v) {
		msgpack_sbuffer_destroy(&sb);
		return cmd_fail(call, LINLI_ENOMEM, "out of memory");
	}
	f->xpend = v;
	struct xpend *x = &v[f->n_xpend++];
	*x = (struct xpend){.id = id, .call = call, .deadline = mono_ms() + EXEC_WAIT_MS};
	snprintf(x->to, sizeof x->to, "%s", to);
	call->on_cancel = exec_cancel;
	call->cancel_arg = f;
	send_exec(f, to, sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	tiers_audit(call->k, who, "federation.exec", to, w0, "allowed", "sent down");
	return CMD_PENDING;
}

/* The operator of a node above, as the command that came down runs it. */
struct xwho {
	struct tier_principal p;
	struct fed *f;
	uint64_t id;
	char from[SCOPE_MAX + 1], name[160], scope[SCOPE_MAX + 1];
	char *grants[TIER_MAX_GRANTS + 1], *duties[TIER_MAX_GRANTS + 1];
};

static void xwho_free(void *ref)
{
	struct xwho *x = ref;
	for (int i = 0; x->grants[i]; i++)
		free(x->grants[i]);
	for (int i = 0; x->duties[i]; i++)
		free(x->duties[i]);
	free(x);
}

/* Send an answer (rc, err, data) for `to` up the tree, from this node. */
static void send_xres(struct fed *f, uint64_t id, const char *to, const char *node, int rc,
		      const char *err, const void *data, size_t len)
{
	char t[SCOPE_MAX + 1], subj[SUBJECT_MAX];
	tokens(f->k->cfg.node_path, t, sizeof t);
	snprintf(subj, sizeof subj, "linli.up.%s.xres", t);
	if (len > EXEC_MAX) {
		rc = LINLI_ELIMIT;
		err = "the answer is larger than federation exec carries (900 KiB)";
		len = 0;
	}
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 7);
	mp_kv_uint(&pk, "id", id);
	mp_kv_str(&pk, "to", to);
	mp_kv_str(&pk, "node", node);
	mp_kv_str(&pk, "by", f->k->cfg.node_path);
	mp_kv_int(&pk, "rc", rc);
	mp_kv_str(&pk, "err", err ? err : "");
	mp_str(&pk, "data");
	msgpack_pack_bin(&pk, len);
	if (len)
		msgpack_pack_bin_body(&pk, data, len);
	queue_out(f, subj, true, &sb);
}

static void exec_done(struct cmd_call *call, int rc)
{
	struct xwho *x = call->who_ref;
	send_xres(x->f, x->id, x->from, x->f->k->cfg.node_path, rc, rc ? call->err : "",
		  rc ? NULL : call->data.data, rc ? 0 : call->data.size);
	cmd_call_free(call);
}

static void apply_exec(struct kernel *k, void *arg)
{
	struct inbound *in = arg;
	struct fed *f = in->f;
	take_in(in);
	const char *own = k->cfg.node_path;
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	char from[SCOPE_MAX + 1] = "", to[SCOPE_MAX + 1] = "", cerr[96], role[32] = "";
	uint64_t id = 0;
	const msgpack_object *who = NULL, *argv = NULL, *input = NULL;
	if (in->len > EXEC_MAX || mp_check(in->bytes, in->len, 4, MP_STR_KEYS, cerr, sizeof cerr) ||
	    msgpack_unpack_next(&up, in->bytes, in->len, NULL) != MSGPACK_UNPACK_SUCCESS ||
	    up.data.type != MSGPACK_OBJECT_MAP || !u64_of(mp_get(&up.data, "id"), &id) ||
	    !str_of(mp_get(&up.data, "from"), from, sizeof from) ||
	    !str_of(mp_get(&up.data, "to"), to, sizeof to) || !(who = mp_get(&up.data, "who")) ||
	    who->type != MSGPACK_OBJECT_MAP || !(argv = mp_get(&up.data, "argv")) ||
	    argv->type != MSGPACK_OBJECT_ARRAY || argv->via.array.size < 1 ||
	    argv->via.array.size > 64 || !scope_within(from, own) || !strcmp(from, own) ||
	    !scope_within(own, to)) {
		f->refused++;
		log_warn("federation", "refused a command on %s: not {id, from: a node above, to: "
			 "this node or below, who, argv}", in->subject);
		goto out;
	}
	if (strcmp(to, own)) { /* on its way down */
		send_exec(f, to, in->bytes, in->len);
		goto out;
	}
	struct xwho *x = calloc(1, sizeof *x);
	if (!x)
		goto out;
	x->f = f;
	x->id = id;
	snprintf(x->from, sizeof x->from, "%s", from);
	char name[64] = "", wscope[SCOPE_MAX + 1] = "";
	str_of(mp_get(who, "name"), name, sizeof name);
	str_of(mp_get(who, "scope"), wscope, sizeof wscope);
	str_of(mp_get(who, "role"), role, sizeof role);
	snprintf(x->name, sizeof x->name, "%s@%s", name, from);
	enum tier_role r = tier_role_parse(role);
	const char *bad = !name[0]	       ? "no operator named"
			  : r == ROLE_NONE ? "no role"
			  : !scope_within(wscope, own) || !scope_within(from, wscope)
			      ? "the operator's jurisdiction does not cover this node"
			      : NULL;
	snprintf(x->scope, sizeof x->scope, "%s", wscope);
	if (bad) {
		send_xres(f, id, from, own, LINLI_EPERM, bad, NULL, 0);
		xwho_free(x);
		goto out;
	}
	static const char *const lists[2] = {"grants", "duties"};
	for (int l = 0; l < 2; l++) {
		const msgpack_object *a = mp_get(who, lists[l]);
		char **dst = l ? x->duties : x->grants;
		for (uint32_t i = 0; a && a->type == MSGPACK_OBJECT_ARRAY && i < a->via.array.size &&
				     i < TIER_MAX_GRANTS;
		     i++) {
			char v[128];
			if (str_of(&a->via.array.ptr[i], v, sizeof v) && !(*dst++ = strdup(v)))
				break;
		}
	}
	x->p = (struct tier_principal){.kind = PRINCIPAL_PERSON,
				       .name = x->name,
				       .scope = x->scope, /* theirs: a tier above this node
							     (access_check keeps it to this node) */
				       .role = r,
				       .grants = (const char *const *)x->grants,
				       .duties = (const char *const *)x->duties};
	char *args[64];
	int argc = 0;
	for (uint32_t i = 0; i < argv->via.array.size; i++) {
		const msgpack_object *o = &argv->via.array.ptr[i];
		if (o->type != MSGPACK_OBJECT_STR || !(args[argc] = strndup(o->via.str.ptr,
									       o->via.str.size)))
			break;
		argc++;
	}
	struct cmd_call *call = argc == (int)argv->via.array.size ? cmd_call_new(k, argc, args)
								  : NULL;
	for (int i = 0; i < argc; i++)
		free(args[i]);
	if (!call) {
		send_xres(f, id, from, own, LINLI_EINVAL, "argv: not a list of strings", NULL, 0);
		xwho_free(x);
		goto out;
	}
	if ((input = mp_get(&up.data, "input")) && input->type == MSGPACK_OBJECT_STR) {
		call->input = strndup(input->via.str.ptr, input->via.str.size);
		call->input_len = call->input ? input->via.str.size : 0;
	}
	call->who = &x->p;
	call->who_ref = x;
	call->who_release = xwho_free;
	call->finish = exec_done;
	log_info("federation", "a command from %s runs here as %s: %s%s%s", from, x->name,
		 call->argv[0], call->argc > 1 ? " " : "", call->argc > 1 ? call->argv[1] : "");
	int rc = access_gate_who(k, call);
	if (rc)
		cmd_finish(call, rc);
	else
		cmd_dispatch(k->cmds, call);
out:
	msgpack_unpacked_destroy(&up);
	free(in);
}

/* An answer from below: the waiting command's, or passed on up. */
static void apply_xres(struct fed *f, struct inbound *in)
{
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	char to[SCOPE_MAX + 1] = "", node[SCOPE_MAX + 1] = "", by[SCOPE_MAX + 1] = "",
	     err[1024] = "", cerr[96];
	uint64_t id = 0;
	const msgpack_object *rc = NULL, *data = NULL;
	if (in->len > EXEC_MAX + 4096 ||
	    mp_check(in->data, in->len, 2, MP_STR_KEYS, cerr, sizeof cerr) ||
	    msgpack_unpack_next(&up, in->data, in->len, NULL) != MSGPACK_UNPACK_SUCCESS ||
	    up.data.type != MSGPACK_OBJECT_MAP || !u64_of(mp_get(&up.data, "id"), &id) ||
	    !str_of(mp_get(&up.data, "to"), to, sizeof to) ||
	    !str_of(mp_get(&up.data, "node"), node, sizeof node) ||
	    !str_of(mp_get(&up.data, "by"), by, sizeof by) || !(rc = mp_get(&up.data, "rc")) ||
	    (rc->type != MSGPACK_OBJECT_POSITIVE_INTEGER &&
	     rc->type != MSGPACK_OBJECT_NEGATIVE_INTEGER) ||
	    !(data = mp_get(&up.data, "data")) || data->type != MSGPACK_OBJECT_BIN ||
	    !scope_within(by, node)) {
		refuse(f, in, "not an answer to a command ({id, to, node, by, rc, err, data})");
		goto out;
	}
	if (!sender_of(f, in, by, ".xres"))
		goto out;
	str_of(mp_get(&up.data, "err"), err, sizeof err);
	if (strcmp(to, f->k->cfg.node_path)) { /* for a node above */
		send_xres(f, id, to, node, (int)rc->via.i64, err, data->via.bin.ptr,
			  data->via.bin.size);
		goto out;
	}
	for (size_t i = 0; i < f->n_xpend; i++) {
		struct xpend *x = &f->xpend[i];
		if (x->id != id || strcmp(x->to, node))
			continue;
		struct cmd_call *call = x->call;
		f->xpend[i] = f->xpend[--f->n_xpend];
		call->on_cancel = NULL;
		int code = (int)rc->via.i64;
		if (code)
			cmd_fail(call, code, "at %s: %s", node, err);
		else if (data->via.bin.size)
			msgpack_sbuffer_write(&call->data, data->via.bin.ptr, data->via.bin.size);
		cmd_finish(call, code);
		goto out;
	}
	log_info("federation", "an answer from %s to command %llu came after its wait ended", node,
		 (unsigned long long)id);
out:
	msgpack_unpacked_destroy(&up);
}

/* ---- the quarantine: federation quarantine [retry|drop ID] ---- */

struct qlist {
	msgpack_packer *pk;
	size_t n;
	const char *scope; /* the caller's */
	const char *node;  /* this node's path */
	uint64_t want;	   /* one id, or 0: all */
	msgpack_sbuffer *one;
};

static void pack_qentry(msgpack_packer *pk, uint64_t id, const msgpack_object *o)
{
	msgpack_pack_map(pk, 8);
	mp_kv_uint(pk, "id", id);
	static const char *const keys[] = {"from", "seq", "reason", "at"};
	for (int i = 0; i < 4; i++) {
		mp_str(pk, keys[i]);
		const msgpack_object *v = mp_get(o, keys[i]);
		if (v)
			msgpack_pack_object(pk, *v);
		else
			msgpack_pack_nil(pk);
	}
	const msgpack_object *ch = mp_get(o, "change");
	static const char *const ck[] = {"d", "s", "i"};
	static const char *const cn[] = {"dataset", "scope", "record"};
	for (int i = 0; i < 3; i++) {
		mp_str(pk, cn[i]);
		const msgpack_object *v = ch && ch->type == MSGPACK_OBJECT_MAP ? mp_get(ch, ck[i]) : NULL;
		if (v && v->type == MSGPACK_OBJECT_STR)
			msgpack_pack_object(pk, *v);
		else
			msgpack_pack_nil(pk);
	}
}

static int count_q(void *ud, uint64_t id, const void *val, size_t len)
{
	struct qlist *q = ud;
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	char from[SCOPE_MAX + 1] = "";
	if (msgpack_unpack_next(&up, val, len, NULL) == MSGPACK_UNPACK_SUCCESS &&
	    up.data.type == MSGPACK_OBJECT_MAP)
		str_of(mp_get(&up.data, "from"), from, sizeof from);
	/* from below: the caller's when the sender is within its jurisdiction; from the
	   parent's down log: the node's callers' */
	bool mine = (scope_within(q->scope, from) ||
		     (!scope_within(q->node, from) && scope_within(q->scope, q->node))) &&
		    (!q->want || q->want == id);
	if (mine && q->pk)
		pack_qentry(q->pk, id, &up.data);
	if (mine && q->one)
		msgpack_sbuffer_write(q->one, val, len);
	q->n += mine;
	msgpack_unpacked_destroy(&up);
	return q->n >= QUARANTINE_SHOWN;
}

static int cmd_quarantine(struct cmd_call *call, void *ud)
{
	struct fed *f = ud;
	struct kernel *k = call->k;
	if (!f)
		return cmd_fail(call, LINLI_ENOENT,
				"this node has no federation link (no federation group in %s)",
				k->cfg.source);
	char err[768];
	if (call->argc == 2) {
		struct qlist q = {.node = call->k->cfg.node_path, .scope = call->who->scope};
		if (store_fedq_read(k->store, 0, SIZE_MAX, count_q, &q, err, sizeof err))
			return cmd_fail(call, LINLI_EIO, "%s", err);
		size_t n = q.n;
		q = (struct qlist){.pk = &call->pk, .node = call->k->cfg.node_path, .scope = call->who->scope};
		msgpack_pack_map(&call->pk, 2);
		mp_str(&call->pk, "quarantined");
		msgpack_pack_array(&call->pk, n);
		store_fedq_read(k->store, 0, SIZE_MAX, count_q, &q, err, sizeof err);
		mp_kv_uint(&call->pk, "count", n);
		return 0;
	}
	char *end = NULL;
	unsigned long long id = call->argc == 4 ? strtoull(call->argv[3], &end, 10) : 0;
	bool retry = call->argc == 4 && !strcmp(call->argv[2], "retry");
	if (call->argc != 4 || (!retry && strcmp(call->argv[2], "drop")) || !id || *end)
		return cmd_fail(call, LINLI_EINVAL,
				"usage: federation quarantine [retry ID | drop ID] (ID: a number "
				"the list shows)");
	msgpack_sbuffer one;
	msgpack_sbuffer_init(&one);
	struct qlist q = {.node = call->k->cfg.node_path, .scope = call->who->scope, .want = id, .one = &one};
	int rc = store_fedq_read(k->store, id - 1, 1, count_q, &q, err, sizeof err);
	if (!rc && !q.n)
		rc = cmd_fail(call, LINLI_ENOENT, "no quarantined change %llu within %s", id,
			      call->who->scope);
	else if (rc)
		rc = cmd_fail(call, LINLI_EIO, "%s", err);
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	if (!rc && retry) {
		char from[SCOPE_MAX + 1] = "";
		uint64_t seq = 0;
		const msgpack_object *ch = NULL;
		if (msgpack_unpack_next(&up, one.data, one.size, NULL) != MSGPACK_UNPACK_SUCCESS ||
		    up.data.type != MSGPACK_OBJECT_MAP ||
		    !str_of(mp_get(&up.data, "from"), from, sizeof from) ||
		    !u64_of(mp_get(&up.data, "seq"), &seq) || !(ch = mp_get(&up.data, "change")))
			rc = cmd_fail(call, LINLI_ECORRUPT, "quarantined change %llu is damaged", id);
		else {
			struct store_outbox_info a, b;
			store_outbox_info(k->store, &a);
			if (!scope_within(k->cfg.node_path, from)) { /* from the parent's down log */
				rc = down_one(f, seq, ch);
			} else {
				struct child *c = child_of(f, from);
				struct child none = {0};
				rc = apply_change(f, c ? c : &none, from, seq, ch);
			}
			store_outbox_info(k->store, &b);
			if (rc)
				rc = cmd_fail(call, rc, "the store failed: try again");
			else if (b.quarantine_last != a.quarantine_last) { /* quarantined again */
				store_fedq_del(k->store, b.quarantine_last, err, sizeof err);
				rc = cmd_fail(call, LINLI_EINVAL,
					      "quarantined change %llu still cannot be applied; it "
					      "stays",
					      id);
			}
		}
	}
	if (!rc && store_fedq_del(k->store, id, err, sizeof err))
		rc = cmd_fail(call, LINLI_EIO, "%s", err);
	if (!rc) {
		tiers_audit(k, call->who, retry ? "federation.retry" : "federation.drop",
			    call->who->scope, call->argv[3], "allowed", NULL);
		msgpack_pack_map(&call->pk, 2);
		mp_kv_uint(&call->pk, "id", id);
		mp_kv_str(&call->pk, retry ? "applied" : "dropped", "yes");
	}
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&one);
	return rc;
}

int fed_open(struct kernel *k)
{
	static const char owner_none = 0; /* the command's owner when there is no link */
	const struct cfg_fed *c = &k->cfg.fed;
	if (!c->url) {
		int rc = cmd_register(k->cmds, "federation", "status", "", FED_STATUS_SUMMARY,
				      cmd_status, NULL, &owner_none);
		if (!rc)
			rc = cmd_register(k->cmds, "federation", "quarantine", "[retry|drop ID]",
					  FED_QUARANTINE_SUMMARY, cmd_quarantine, NULL, &owner_none);
		if (!rc)
			rc = cmd_register(k->cmds, "federation", "push", "FILE [--stdin]",
					  FED_PUSH_SUMMARY, cmd_push, NULL, &owner_none);
		if (!rc)
			rc = cmd_register(k->cmds, "federation", "exec", "NODE WORD [SUB] [ARG...]",
					  FED_EXEC_SUMMARY, cmd_exec, NULL, &owner_none);
		return rc ? rc
			  : cmd_register(k->cmds, "federation", "decommission", "CHILD [--undo]",
					 FED_DECOM_SUMMARY, cmd_decommission, NULL, &owner_none);
	}
	struct fed *f = calloc(1, sizeof *f);
	if (!f)
		return LINLI_ENOMEM;
	f->k = k;
	char t[SCOPE_MAX + 1];
	tokens(k->cfg.node_path, t, sizeof t);
	snprintf(f->up_subject, sizeof f->up_subject, "linli.up.%s.status", t);
	/* exactly a child's own subjects (linli.up.<child path>.<kind>): a grandchild's,
	   which cross this node's server on their way to its parent, are not this node's */
	snprintf(f->children_filter, sizeof f->children_filter, "linli.up.%s.*.*", t);
	snprintf(f->changes_subject, sizeof f->changes_subject, "linli.up.%s.changes", t);
	/* one token more: what the parent says to this node, never what this node says to its
	   own children (linli.down.<child path>.applied would match a '>') */
	snprintf(f->applied_subject, sizeof f->applied_subject, "linli.down.%s.*", t);
	snprintf(f->down_dir, sizeof f->down_dir, "%s/federation/down", k->cfg.data_dir);
	snprintf(f->parent, sizeof f->parent, "%s", k->cfg.node_path);
	char *ps = strrchr(f->parent, '/');
	if (ps && c->parent_domain)
		*ps = '\0';
	else
		f->parent[0] = '\0'; /* the top: nothing comes down */
	f->down_last = store_down_last(k->store);
	f->xid = (uint64_t)wall_ms() << 8; /* an answer meant for an earlier run matches nothing */
	msgpack_sbuffer_init(&f->upbuf);
	msgpack_sbuffer_init(&f->entbuf);
	struct store_outbox_info oi;
	if (!store_outbox_info(k->store, &oi)) {
		f->out_last = oi.last;
		f->released = f->released_seen = f->sent = f->up_applied = oi.acked;
	}
	store_fed_list(k->store, load_applied, f);
	down_load(f);
	decom_load(f);
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	children_load(f);
	k->fed = f;
	natsStatus s = nats_Open(-1);
	int rc = s ? LINLI_EIO : 0;
	if (rc)
		log_error("federation", "the NATS library does not start: %s", natsStatus_GetText(s));
	if (!rc)
		rc = cmd_register(k->cmds, "federation", "status", "",
				  FED_STATUS_SUMMARY, cmd_status, f, f);
	if (!rc)
		rc = cmd_register(k->cmds, "federation", "quarantine", "[retry|drop ID]",
				  FED_QUARANTINE_SUMMARY, cmd_quarantine, f, f);
	if (!rc)
		rc = cmd_register(k->cmds, "federation", "push", "FILE [--stdin]", FED_PUSH_SUMMARY,
				  cmd_push, f, f);
	if (!rc)
		rc = cmd_register(k->cmds, "federation", "decommission", "CHILD [--undo]",
				  FED_DECOM_SUMMARY, cmd_decommission, f, f);
	if (!rc)
		rc = cmd_register(k->cmds, "federation", "exec", "NODE WORD [SUB] [ARG...]",
				  FED_EXEC_SUMMARY, cmd_exec, f, f);
	if (!rc && pthread_create(&f->thread, NULL, run, f))
		rc = LINLI_ENOMEM;
	if (rc) {
		fed_close(k);
		return rc;
	}
	f->started = true;
	if (c->parent_domain)
		f->timer = kernel_timer_add(k, 0, (uint64_t)c->status_ms, on_status_tick, f);
	f->announce_timer = kernel_timer_add(k, ANNOUNCE_MS, ANNOUNCE_MS, on_announce, f);
	return 0;
}

void fed_close(struct kernel *k)
{
	struct fed *f = k->fed;
	if (!f)
		return;
	if (f->timer)
		kernel_timer_cancel(k, f->timer);
	if (f->announce_timer)
		kernel_timer_cancel(k, f->announce_timer);
	if (f->alarm_req && k->bus)
		bus_request_drop(k->bus, f->alarm_req, f);
	cmd_unregister_owner(k->cmds, f);
	if (f->children_dirty)
		children_save(f);
	while (f->n_xpend) { /* commands sent down still waiting: said so */
		struct cmd_call *call = f->xpend[--f->n_xpend].call;
		call->on_cancel = NULL;
		cmd_fail(call, LINLI_ESTATE, "linlid is shutting down: no answer from below");
		cmd_finish(call, LINLI_ESTATE);
	}
	free(f->xpend);
	/* An apply waiting for its commit names f: commit now (its ack is then dropped with
	   the connection; the stream sends the message again, a repeat the next start skips). */
	if (k->store)
		store_batch_end(k->store);
	if (f->started) {
		pthread_mutex_lock(&f->mu);
		f->stop = true;
		pthread_mutex_unlock(&f->mu);
		pthread_cond_signal(&f->cv);
		/* Its calls into libnats are bounded (fetch 200 ms, publish 2 s): one that is
		   not must not keep the daemon from stopping. It is left behind, with what it
		   uses, and said so (a CI run once saw a street stop hang after "stopped"). */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 10;
		if (pthread_timedjoin_np(f->thread, NULL, &ts)) {
			log_error("federation", "its thread did not end within 10 s of the stop (a "
						"libnats call that does not return): left behind");
			k->fed = NULL;
			return;
		}
		log_debug("federation", "its thread ended");
	}
	if (f->sub)
		natsSubscription_Destroy(f->sub);
	if (f->applied_sub) {
		natsSubscription_Unsubscribe(f->applied_sub);
		natsSubscription_Destroy(f->applied_sub);
	}
	for (size_t i = 0; i < f->n_acks; i++) /* not acknowledged: the stream sends them again */
		natsMsg_Destroy(f->acks[i]);
	/* handed to the kernel thread after its loop ended: never run */
	for (struct inbound *in = f->posted, *next; in; in = next) {
		next = in->next;
		if (in->m)
			natsMsg_Destroy(in->m);
		free(in);
	}
	free(f->acks);
	free(f->ack_ok);
	free(f->notices);
	for (size_t i = 0; i < f->n_outs; i++)
		free(f->outs[i].data);
	free(f->outs);
	for (size_t i = 0; i < f->n_rules; i++)
		free(f->rules[i].text);
	free(f->rules);
	free(f->dacks);
	msgpack_sbuffer_destroy(&f->upbuf);
	msgpack_sbuffer_destroy(&f->entbuf);
	if (f->js)
		jsCtx_Destroy(f->js);
	if (f->parent_js)
		jsCtx_Destroy(f->parent_js);
	if (f->nc) {
		natsConnection_Close(f->nc);
		natsConnection_Destroy(f->nc);
	}
	log_debug("federation", "its connection closed");
	natsStatus cw = nats_CloseAndWait(2000);
	if (cw)
		log_warn("federation", "the NATS library did not end within 2 s: %s",
			 natsStatus_GetText(cw));
	free(f->outgoing);
	free(f->children);
	free(f->dsends);
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->cv);
	free(f);
	k->fed = NULL;
}
