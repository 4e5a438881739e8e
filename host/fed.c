/*
 * fed — see fed.h.
 */
#include "fed.h"

#include <nats/nats.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linli/version.h>

#include "cmd.h"
#include "kernel.h"
#include "linli/error.h"
#include "log.h"
#include "mp.h"
#include "plugin.h"
#include "scope.h"
#include "tier.h"
#include "util.h"

#define STREAM	       "LINLI_UP"
#define DURABLE	       "linlid"
#define SUBJECT_MAX    (SCOPE_MAX + 32)
#define FETCH_BATCH    64
#define STATUS_MAX     4096 /* a status bigger than this is refused */
#define CHILDREN_MAX   1024
#define RETRY_MS       1000 /* connecting, making the stream: tried again this often */
#define PUBLISH_WAIT   2000 /* a publish's acknowledgement, ms */
#define FED_STATUS_SUMMARY "the link to the tiers: connection, what went up, the children"

struct child {
	char node[SCOPE_MAX + 1];
	char level[16], name[64], version[32], sdk[16];
	int64_t sent_at, seen_at; /* wall ms: the child's clock, ours */
	uint64_t seq, received;
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
	/* Kernel thread only. */
	struct child *children;
	size_t n_children;
	uint64_t received, refused;
	/* fed's thread only. */
	natsConnection *nc;
	jsCtx *js, *parent_js;
	natsSubscription *sub;
};

/* A message from a child, handed to the kernel thread. */
struct inbound {
	struct fed *f;
	char subject[SUBJECT_MAX];
	size_t len;
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

/* ---- fed's thread: connecting, publishing, fetching ---- */

static void on_disconnected(natsConnection *nc, void *ud)
{
	(void)nc;
	struct fed *f = ud;
	pthread_mutex_lock(&f->mu);
	f->connected = false;
	pthread_mutex_unlock(&f->mu);
}

static void on_reconnected(natsConnection *nc, void *ud)
{
	(void)nc;
	struct fed *f = ud;
	pthread_mutex_lock(&f->mu);
	f->connected = true;
	pthread_mutex_unlock(&f->mu);
	pthread_cond_signal(&f->cv);
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
	shown_url(c->url, shown, sizeof shown);
	if (s) {
		set_error(f, "cannot connect to %s: %s (tried again every %d ms)", shown,
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
	log_info("federation", "connected to %s%s%s", shown,
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
	if (s && je != JSStreamNameExistErr) {
		set_error(f, "the children's stream %s: %s (JetStream error %d)", STREAM,
			  natsStatus_GetText(s), (int)je);
		return false;
	}
	jsSubOptions so;
	jsSubOptions_Init(&so);
	so.Stream = STREAM;
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

static void fetch(struct fed *f)
{
	natsMsgList l = {0};
	jsErrCode je = 0;
	natsStatus s = natsSubscription_Fetch(&l, f->sub, FETCH_BATCH, 200, &je);
	if (s == NATS_TIMEOUT)
		return;
	if (s) {
		set_error(f, "fetching from %s: %s", STREAM, natsStatus_GetText(s));
		return;
	}
	for (int i = 0; i < l.Count; i++) {
		natsMsg *m = l.Msgs[i];
		int n = natsMsg_GetDataLength(m);
		struct inbound *in = malloc(sizeof *in + (size_t)(n > 0 ? n : 0));
		if (in) {
			in->f = f;
			snprintf(in->subject, sizeof in->subject, "%s", natsMsg_GetSubject(m));
			in->len = (size_t)(n > 0 ? n : 0);
			memcpy(in->data, natsMsg_GetData(m), in->len);
			if (kernel_post(f->k, apply_inbound, in))
				free(in);
		}
		/* A status lives in memory: taken once posted (a later one replaces it). */
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

static void *run(void *arg)
{
	struct fed *f = arg;
	bool up = false, consume = false;
	for (;;) {
		pthread_mutex_lock(&f->mu);
		if (!f->stop && !f->outgoing) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			int64_t wait = !up ? RETRY_MS : consume ? 0 : RETRY_MS;
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
		if (!consume)
			consume = consume_setup(f);
		else
			fetch(f);
	}
	return NULL;
}

/* ---- the kernel thread ---- */

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
	msgpack_pack_map(&pk, 9);
	mp_kv_str(&pk, "node", k->cfg.node_path);
	mp_kv_str(&pk, "level", tier_level_name(k->cfg.node_level));
	mp_kv_str(&pk, "name", k->cfg.node_name ? k->cfg.node_name : "");
	mp_kv_str(&pk, "version", LINLI_VERSION);
	mp_kv_str(&pk, "sdk", LINLI_SDK_VERSION);
	mp_kv_int(&pk, "sent_at", wall_ms());
	mp_kv_uint(&pk, "uptime_s", (kernel_now_ms() - k->started_ms) / 1000);
	mp_kv_int(&pk, "plugins", k->plugin_count);
	mp_kv_uint(&pk, "seq", seq);
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
	return c;
}

static void refuse(struct fed *f, const struct inbound *in, const char *why)
{
	f->refused++;
	log_warn("federation", "refused a message on %s: %s", in->subject, why);
}

static void apply_inbound(struct kernel *k, void *arg)
{
	(void)k;
	struct inbound *in = arg;
	struct fed *f = in->f;
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	char node[SCOPE_MAX + 1], want[SUBJECT_MAX];
	const char *own = f->k->cfg.node_path;
	size_t own_n = strlen(own);
	char cerr[96];
	if (in->len > STATUS_MAX || mp_check(in->data, in->len, 2, MP_STR_KEYS, cerr, sizeof cerr) ||
	    msgpack_unpack_next(&up, in->data, in->len, NULL) != MSGPACK_UNPACK_SUCCESS ||
	    up.data.type != MSGPACK_OBJECT_MAP) {
		refuse(f, in, "not a status (a MessagePack map of at most 4096 bytes)");
		goto out;
	}
	mp_copy_str(mp_get(&up.data, "node"), node, sizeof node);
	tokens(node, want, sizeof want);
	strncat(want, ".status", sizeof want - strlen(want) - 1);
	/* Its node: a direct child of this one, and the one the subject names (the subject's
	 * publisher is held to its subtree by the servers' permissions). */
	if (strncmp(node, own, own_n) || node[own_n] != '/' || strchr(node + own_n + 1, '/') ||
	    strncmp(in->subject, "linli.up.", 9) || strcmp(in->subject + 9, want)) {
		char why[SCOPE_MAX + 96];
		snprintf(why, sizeof why, "node '%.*s' is not a child of %s sending on its own subject",
			 SCOPE_MAX, node, own);
		refuse(f, in, why);
		goto out;
	}
	struct child *c = child_of(f, node);
	if (!c) {
		refuse(f, in, "too many children");
		goto out;
	}
	const msgpack_object *o;
	mp_copy_str(mp_get(&up.data, "level"), c->level, sizeof c->level);
	mp_copy_str(mp_get(&up.data, "name"), c->name, sizeof c->name);
	mp_copy_str(mp_get(&up.data, "version"), c->version, sizeof c->version);
	mp_copy_str(mp_get(&up.data, "sdk"), c->sdk, sizeof c->sdk);
	if ((o = mp_get(&up.data, "sent_at")) && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		c->sent_at = (int64_t)o->via.u64;
	if ((o = mp_get(&up.data, "seq")) && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		c->seq = o->via.u64;
	c->seen_at = wall_ms();
	c->received++;
	f->received++;
out:
	msgpack_unpacked_destroy(&up);
	free(in);
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
	msgpack_packer *pk = &call->pk;
	pthread_mutex_lock(&f->mu);
	msgpack_pack_map(pk, 13);
	mp_kv_str(pk, "node", call->k->cfg.node_path);
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
	pthread_mutex_unlock(&f->mu);
	mp_kv_uint(pk, "received", f->received);
	mp_kv_uint(pk, "refused", f->refused);
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
		msgpack_pack_map(pk, 10);
		mp_kv_str(pk, "node", ch->node);
		mp_kv_str(pk, "level", ch->level);
		mp_kv_str(pk, "name", ch->name);
		mp_kv_str(pk, "version", ch->version);
		mp_kv_str(pk, "sdk", ch->sdk);
		mp_kv_int(pk, "sent_at", ch->sent_at);
		mp_kv_int(pk, "seen_at", ch->seen_at);
		mp_kv_int(pk, "age_ms", now - ch->seen_at);
		mp_kv_bool(pk, "stale", now - ch->seen_at > c->stale_ms);
		mp_kv_uint(pk, "seq", ch->seq);
	}
	return 0;
}

int fed_open(struct kernel *k)
{
	static const char owner_none = 0; /* the command's owner when there is no link */
	const struct cfg_fed *c = &k->cfg.fed;
	if (!c->url)
		return cmd_register(k->cmds, "federation", "status", "",
				    FED_STATUS_SUMMARY, cmd_status, NULL,
				    &owner_none);
	struct fed *f = calloc(1, sizeof *f);
	if (!f)
		return LINLI_ENOMEM;
	f->k = k;
	char t[SCOPE_MAX + 1];
	tokens(k->cfg.node_path, t, sizeof t);
	snprintf(f->up_subject, sizeof f->up_subject, "linli.up.%s.status", t);
	snprintf(f->children_filter, sizeof f->children_filter, "linli.up.%s.*.>", t);
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	k->fed = f;
	natsStatus s = nats_Open(-1);
	int rc = s ? LINLI_EIO : 0;
	if (rc)
		log_error("federation", "the NATS library does not start: %s", natsStatus_GetText(s));
	if (!rc)
		rc = cmd_register(k->cmds, "federation", "status", "",
				  FED_STATUS_SUMMARY, cmd_status, f, f);
	if (!rc && pthread_create(&f->thread, NULL, run, f))
		rc = LINLI_ENOMEM;
	if (rc) {
		fed_close(k);
		return rc;
	}
	f->started = true;
	if (c->parent_domain)
		f->timer = kernel_timer_add(k, 0, (uint64_t)c->status_ms, on_status_tick, f);
	return 0;
}

void fed_close(struct kernel *k)
{
	struct fed *f = k->fed;
	if (!f)
		return;
	if (f->timer)
		kernel_timer_cancel(k, f->timer);
	cmd_unregister_owner(k->cmds, f);
	if (f->started) {
		pthread_mutex_lock(&f->mu);
		f->stop = true;
		pthread_mutex_unlock(&f->mu);
		pthread_cond_signal(&f->cv);
		pthread_join(f->thread, NULL);
	}
	if (f->sub)
		natsSubscription_Destroy(f->sub);
	if (f->js)
		jsCtx_Destroy(f->js);
	if (f->parent_js)
		jsCtx_Destroy(f->parent_js);
	if (f->nc) {
		natsConnection_Close(f->nc);
		natsConnection_Destroy(f->nc);
	}
	nats_CloseAndWait(2000);
	free(f->outgoing);
	free(f->children);
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->cv);
	free(f);
	k->fed = NULL;
}
