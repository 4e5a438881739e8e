/*
 * bus — see bus.h.
 *
 * Matching is a trie over topic levels. A node's literal children live in one
 * bus-wide hash table keyed by (parent, level) so that a node with ten
 * thousand device children costs one probe; `+` is a direct child pointer and
 * `#` subscriptions hang on the node where they start. A publish walks at
 * most two branches per level (the literal one and `+`), so its cost grows
 * with the topic's depth, not with the number of subscriptions
 * (tests/bench/bench_bus.c measures it against a linear pattern list).
 *
 * Delivery is a FIFO: an event published while another is being delivered (a
 * handler publishing) is copied to the queue and delivered after it, so order
 * is publication order and handlers never recurse. The queue is drained by
 * the outermost publish, at most BUS_DRAIN_MAX events at a time and, while
 * the kernel loop runs, for at most KERNEL_EVENT_TURN_MS per loop turn
 * (counted from the turn's first drain); the rest is continued from a kernel
 * event, in the next turn, so that a flood of events (a fire: thousands of
 * records of consequence, each handled by rules) is delivered in full, later,
 * while the kernel serves requests between turns. Events delivered in a
 * later turn because a turn's budget ran out are counted as delayed.
 *
 * Cause depth (issue 14, event storms): every event carries the depth of the
 * chain of script handlers that caused it (struct bus_event). The bus only
 * carries it through its queue; the script API sets it and refuses what is
 * too deep (script_api.c, lua.max_event_depth).
 *
 * Shedding: telemetry accepted but not yet delivered (posted from a driver
 * thread, or queued behind a delivery) is counted in `pending`; beyond
 * bus.telemetry_queue new telemetry is refused and counted as shed in its
 * family. Records of consequence are never refused for load: they are
 * journaled when the kernel thread accepts them, then delivered.
 *
 * Sealing: external subscribers (bus_cmds) may only be sent events up to
 * bus_sealed_seq(). The bus's batch-end hook flushes the journal (if one is
 * plugged in and wrote anything) and then seals everything published so far,
 * so nothing leaves the process before the journal made it durable.
 */
#include "bus.h"
#include "idmap.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "kernel.h"
#include "linli/error.h"
#include "log.h"
#include "mp.h"
#include "scope.h"
#include "util.h"

#define BUS_DRAIN_MAX 65536 /* queued events delivered per drain before yielding */
#define MP_DEPTH_MAX  32    /* nesting of a payload */

struct family {
	char *pattern;
	enum bus_class cls;
	uint64_t published, delivered, subscriber_shed, refused; /* kernel thread */
	_Atomic uint64_t shed;					 /* any thread */
};

struct tnode;

struct bus_sub {
	uint64_t id;
	char *pattern;
	char *owner_name;
	char scope[SCOPE_MAX + 1];
	size_t scope_len;
	bus_handler fn;
	void *ud;
	void (*release)(void *ud);
	const void *owner;
	struct tnode *node;
	bool rest; /* pattern ends in '#': on node->rest, else node->here */
	bool dead;
	struct bus_sub *prev, *next;	     /* on the node's list */
	struct bus_sub *all_prev, *all_next; /* every live subscription, id order */
	struct bus_sub *grave_next;
	uint64_t delivered, errors, suppressed, last_log_ms;
};

/* A server of requests (bus_serve). */
struct bus_server {
	struct bus_server *next;
	uint64_t id;
	char pattern[BUS_TOPIC_MAX + 1];
	char scope[SCOPE_MAX + 1];
	char owner_name[BUS_PUBLISHER_MAX + 1];
	const void *owner;
	bus_serve_fn fn;
	void *ud;
	bool suspended;
};

/* A request from bus_request until its answer was handed over or it was dropped. */
enum rq_state { RQ_QUEUED, RQ_DELIVERED, RQ_ANSWERED };
struct bus_rq {
	struct bus_rq *prev, *next;
	struct bus *b;
	uint64_t id, server; /* the server's id */
	enum rq_state state;
	uint64_t step_timer, timeout_timer;
	bus_reply_fn fn;
	void *ud;
	const void *owner;
	int status;
	char *answer, *msg; /* the answer, once there */
	size_t answer_len;
	char *topic, *scope, *requester, *payload; /* one allocation, topic first */
	size_t payload_len;
};

struct tnode {
	struct tnode *parent, *hnext, *plus;
	struct bus_sub *here, *rest;
	uint32_t nkids; /* literal children and `+` */
	uint32_t hash;	/* of seg; literal nodes only */
	uint16_t seglen;
	char seg[];
};

/* An owned copy of an event: queued behind a delivery, or posted from a thread. */
struct qev {
	struct qev *next;
	struct bus *b;
	struct bus_event ev;
	size_t scope_len;
	int family;
	char buf[]; /* topic \0 publisher \0 scope \0 payload */
};

struct bus {
	struct kernel *k;
	struct family *families; /* consequence, then telemetry, then the "#" catch-all */
	int n_families;
	struct bus_limits limits;
	_Atomic int telemetry_limit;
	_Atomic int64_t pending; /* telemetry accepted, not yet delivered */
	uint64_t seq, sealed;
	bool journaled; /* since the last flush */
	struct bus_journal journal;
	bool has_journal;
	uint64_t last_flush_log_ms;
	/* trie */
	struct tnode *root;
	struct tnode **kids;
	size_t kids_mask, kids_n;
	/* subscriptions */
	struct bus_sub *all_head, *all_tail;
	int n_subs;
	uint64_t next_id;
	struct bus_sub **match;
	size_t nmatch, match_cap;
	struct bus_sub *graveyard;
	uint64_t handler_errors;
	/* delivery */
	struct qev *q_head, *q_tail;
	bool delivering, cont_posted;
	const struct bus_event *cur;
	struct bus_blob *cur_blob;
	uint64_t turn, turn_start_ms; /* the loop turn of the last drain, when it began */
	uint64_t cut_seq;	      /* queued when a turn's budget ran out: delivered later */
	uint64_t delayed;
	/* request/reply */
	struct bus_server *servers; /* id order */
	struct bus_rq *rqs;	    /* pending and answered-not-handed-over */
	struct idmap rq_ids;	    /* their ids -> them: a reply finds its request in O(1) */
	int n_servers, n_rqs;
	struct bus_rq_totals rq_totals;
};

static void why(char *w, size_t n, const char *s)
{
	if (w && n)
		snprintf(w, n, "%s", s);
}

const char *bus_class_name(enum bus_class c)
{
	return c == BUS_CONSEQUENCE ? "consequence" : "telemetry";
}

/* ---- topics and patterns ---- */

static bool check_path(const char *t, bool pattern, char *w, size_t wlen)
{
	size_t len = strlen(t);
	if (len == 0)
		return why(w, wlen, "empty"), false;
	if (len > BUS_TOPIC_MAX)
		return why(w, wlen, "longer than 255 bytes"), false;
	int levels = 0;
	const char *p = t;
	for (;;) {
		const char *e = p;
		while (*e && *e != '/')
			e++;
		size_t n = (size_t)(e - p);
		levels++;
		if (n == 0)
			return why(w, wlen, "empty level (leading, trailing or double '/')"), false;
		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)p[i];
			if (c == '+' || c == '#') {
				if (!pattern)
					return why(w, wlen,
						   "wildcards '+' and '#' are for subscriptions, "
						   "not topics"),
					       false;
				if (n != 1)
					return why(w, wlen,
						   "a wildcard must be a whole level ('a/+/c', "
						   "'a/#')"),
					       false;
				if (c == '#' && *e)
					return why(w, wlen, "'#' must be the last level"), false;
			} else if (c <= 0x20 || c >= 0x7f)
				return why(w, wlen, "levels use printable ASCII without spaces"),
				       false;
		}
		if (!*e)
			break;
		p = e + 1;
	}
	if (levels > BUS_LEVELS_MAX)
		return why(w, wlen, "more than 16 levels"), false;
	return true;
}

bool bus_topic_check(const char *topic, char *why_, size_t whylen)
{
	return check_path(topic, false, why_, whylen);
}

bool bus_pattern_check(const char *pattern, char *why_, size_t whylen)
{
	return check_path(pattern, true, why_, whylen);
}

bool bus_pattern_match(const char *p, const char *t)
{
	for (;;) {
		if (p[0] == '#')
			return true;
		if (p[0] == '+' && (p[1] == '/' || !p[1])) {
			p++;
			while (*t && *t != '/')
				t++;
		} else {
			while (*p && *p != '/' && *p == *t) {
				p++;
				t++;
			}
			if ((*p && *p != '/') || (*t && *t != '/'))
				return false;
		}
		/* Both at a '/' or at the end. */
		if (!*p && !*t)
			return true;
		if (!*p)
			return false;
		if (!*t)
			return p[1] == '#'; /* "a/#" matches "a" */
		p++;
		t++;
	}
}

/* ---- payload validation: exactly one MessagePack map, string keys ---- */

static bool payload_ok(const void *data, size_t len, char *w, size_t wlen)
{
	uint8_t c = *(const uint8_t *)data;
	if (!((c >= 0x80 && c <= 0x8f) || c == 0xde || c == 0xdf))
		return why(w, wlen, "payload must be a MessagePack map"), false;
	char e[128];
	size_t used;
	if (mp_check_next(data, len, MP_DEPTH_MAX, MP_STR_KEYS, &used, e, sizeof e) != 0) {
		if (w && wlen)
			snprintf(w, wlen, "payload is not well-formed MessagePack: %s", e);
		return false;
	}
	if (used != len)
		return why(w, wlen, "payload has bytes after its map"), false;
	return true;
}

/* ---- message checks, shared by publish and post ---- */

static const char empty_map[] = "\x80";

struct lens {
	size_t topic, publisher, scope;
	const void *payload;
	size_t payload_len;
};

static int check_msg(const struct bus_msg *m, struct lens *l, char *err, size_t errlen)
{
	char w[160];
	if (!m->topic || !bus_topic_check(m->topic, w, sizeof w))
		return errf(err, errlen, LINLI_EINVAL, "topic '%s': %s", m->topic ? m->topic : "",
			    m->topic ? w : "missing");
	if (!m->publisher || !*m->publisher)
		return errf(err, errlen, LINLI_EINVAL, "publisher: missing");
	l->publisher = strlen(m->publisher);
	if (l->publisher > BUS_PUBLISHER_MAX)
		return errf(err, errlen, LINLI_EINVAL, "publisher: longer than %d bytes",
			    BUS_PUBLISHER_MAX);
	for (size_t i = 0; i < l->publisher; i++)
		if ((unsigned char)m->publisher[i] < 0x20 || (unsigned char)m->publisher[i] > 0x7e)
			return errf(err, errlen, LINLI_EINVAL,
				    "publisher '%s': printable ASCII only", m->publisher);
	if (!m->scope || !scope_check(m->scope, w, sizeof w))
		return errf(err, errlen, LINLI_EINVAL, "scope '%s': %s", m->scope ? m->scope : "",
			    m->scope ? w : "missing");
	l->topic = strlen(m->topic);
	l->scope = strlen(m->scope);
	if (!m->payload || m->payload_len == 0) {
		l->payload = empty_map;
		l->payload_len = 1;
	} else {
		if (m->payload_len > BUS_PAYLOAD_MAX)
			return errf(err, errlen, LINLI_E2BIG,
				    "payload of %zu bytes on '%s' exceeds %d bytes", m->payload_len,
				    m->topic, BUS_PAYLOAD_MAX);
		if (!payload_ok(m->payload, m->payload_len, w, sizeof w))
			return errf(err, errlen, LINLI_EINVAL, "%s: %s", m->topic, w);
		l->payload = m->payload;
		l->payload_len = m->payload_len;
	}
	return 0;
}

static int classify(const struct bus *b, const char *topic)
{
	for (int i = 0; i < b->n_families - 1; i++)
		if (bus_pattern_match(b->families[i].pattern, topic))
			return i;
	return b->n_families - 1;
}

static struct qev *qev_new(struct bus *b, const struct bus_msg *m, const struct lens *l, int fam,
			   uint64_t time_ms)
{
	size_t sz = sizeof(struct qev) + l->topic + l->publisher + l->scope + 3 + l->payload_len;
	struct qev *q = malloc(sz);
	if (!q)
		return NULL;
	char *p = q->buf;
	q->next = NULL;
	q->b = b;
	q->family = fam;
	q->scope_len = l->scope;
	q->ev.seq = 0;
	q->ev.time_ms = time_ms;
	q->ev.cls = b->families[fam].cls;
	q->ev.family = b->families[fam].pattern;
	q->ev.topic = memcpy(p, m->topic, l->topic + 1);
	p += l->topic + 1;
	q->ev.publisher = memcpy(p, m->publisher, l->publisher + 1);
	p += l->publisher + 1;
	q->ev.scope = memcpy(p, m->scope, l->scope + 1);
	p += l->scope + 1;
	q->ev.payload = memcpy(p, l->payload, l->payload_len);
	q->ev.payload_len = l->payload_len;
	q->ev.depth = 0;
	q->ev.delayed = false;
	return q;
}

/* ---- the trie ---- */

static uint32_t seg_hash(const char *s, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

static size_t kid_slot(const struct bus *b, const struct tnode *parent, uint32_t h)
{
	uint64_t x = ((uint64_t)(uintptr_t)parent >> 4) * 0x9E3779B97F4A7C15ull ^ h;
	x ^= x >> 31;
	return (size_t)x & b->kids_mask;
}

static struct tnode *kid_find(const struct bus *b, const struct tnode *parent, const char *s,
			      size_t n, uint32_t h)
{
	for (struct tnode *c = b->kids[kid_slot(b, parent, h)]; c; c = c->hnext)
		if (c->parent == parent && c->hash == h && c->seglen == n &&
		    memcmp(c->seg, s, n) == 0)
			return c;
	return NULL;
}

static int kids_grow(struct bus *b)
{
	size_t cap = (b->kids_mask + 1) * 2;
	struct tnode **nv = calloc(cap, sizeof *nv);
	if (!nv)
		return LINLI_ENOMEM;
	struct tnode **ov = b->kids;
	size_t ocap = b->kids_mask + 1;
	b->kids = nv;
	b->kids_mask = cap - 1;
	for (size_t i = 0; i < ocap; i++)
		for (struct tnode *c = ov[i], *n; c; c = n) {
			n = c->hnext;
			size_t s = kid_slot(b, c->parent, c->hash);
			c->hnext = nv[s];
			nv[s] = c;
		}
	free(ov);
	return 0;
}

static struct tnode *node_new(struct tnode *parent, const char *s, size_t n)
{
	struct tnode *t = calloc(1, sizeof *t + n + 1);
	if (!t)
		return NULL;
	t->parent = parent;
	t->seglen = (uint16_t)n;
	memcpy(t->seg, s, n);
	return t;
}

/* The child of `parent` for one pattern level, created if missing. */
static struct tnode *child_get(struct bus *b, struct tnode *parent, const char *s, size_t n)
{
	if (n == 1 && s[0] == '+') {
		if (!parent->plus && (parent->plus = node_new(parent, s, 1)))
			parent->nkids++;
		return parent->plus;
	}
	uint32_t h = seg_hash(s, n);
	struct tnode *c = kid_find(b, parent, s, n, h);
	if (c)
		return c;
	if (b->kids_n >= b->kids_mask + 1 && kids_grow(b) != 0)
		return NULL;
	if (!(c = node_new(parent, s, n)))
		return NULL;
	c->hash = h;
	size_t slot = kid_slot(b, parent, h);
	c->hnext = b->kids[slot];
	b->kids[slot] = c;
	b->kids_n++;
	parent->nkids++;
	return c;
}

/* Free empty nodes from `t` up towards the root. */
static void prune(struct bus *b, struct tnode *t)
{
	while (t != b->root && !t->here && !t->rest && t->nkids == 0) {
		struct tnode *p = t->parent;
		if (p->plus == t)
			p->plus = NULL;
		else {
			struct tnode **pp = &b->kids[kid_slot(b, p, t->hash)];
			while (*pp != t)
				pp = &(*pp)->hnext;
			*pp = t->hnext;
			b->kids_n--;
		}
		p->nkids--;
		free(t);
		t = p;
	}
}

static void list_add(struct bus_sub **head, struct bus_sub *s)
{
	s->prev = NULL;
	s->next = *head;
	if (*head)
		(*head)->prev = s;
	*head = s;
}

static void list_del(struct bus_sub **head, struct bus_sub *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		*head = s->next;
	if (s->next)
		s->next->prev = s->prev;
}

struct lvl {
	const char *p;
	uint32_t n, h;
};

static void emit(struct bus *b, struct bus_sub *s)
{
	for (; s; s = s->next) {
		if (b->nmatch == b->match_cap) {
			size_t cap = b->match_cap ? b->match_cap * 2 : 64;
			struct bus_sub **v = realloc(b->match, cap * sizeof *v);
			if (!v) {
				log_error("bus", "out of memory matching subscriptions");
				return;
			}
			b->match = v;
			b->match_cap = cap;
		}
		b->match[b->nmatch++] = s;
	}
}

static void match(struct bus *b, const struct tnode *t, const struct lvl *lv, int n, int i)
{
	if (t->rest)
		emit(b, t->rest);
	if (i == n) {
		emit(b, t->here);
		return;
	}
	if (b->kids_n) {
		const struct tnode *c = kid_find(b, t, lv[i].p, lv[i].n, lv[i].h);
		if (c)
			match(b, c, lv, n, i + 1);
	}
	if (t->plus)
		match(b, t->plus, lv, n, i + 1);
}

/* ---- life cycle ---- */

static void on_batch_end(struct kernel *k, void *arg);

static int add_family(struct bus *b, const char *pattern, enum bus_class cls)
{
	struct family *f = &b->families[b->n_families];
	memset(f, 0, sizeof *f);
	if (!(f->pattern = strdup(pattern)))
		return LINLI_ENOMEM;
	f->cls = cls;
	b->n_families++;
	return 0;
}

static void limits_from(struct bus_limits *l, const struct cfg *c)
{
	l->telemetry_queue = c->bus_telemetry_queue;
	l->subscriber_queue = c->bus_subscriber_queue;
	l->subscriber_backlog = c->bus_subscriber_backlog;
	l->subscriber_idle_ms = c->bus_subscriber_idle_s * 1000;
}

int bus_open(struct kernel *k, struct bus **out, char *err, size_t errlen)
{
	const struct cfg *c = &k->cfg;
	if (err && errlen)
		err[0] = '\0';
	if (c->bus_telemetry_queue <= 0 || c->bus_subscriber_queue <= 0)
		return errf(err, errlen, LINLI_ECONFIG, "bus: limits not configured");
	struct bus *b = calloc(1, sizeof *b);
	if (!b)
		return LINLI_ENOMEM;
	b->k = k;
	b->next_id = 1;
	limits_from(&b->limits, c);
	atomic_store(&b->telemetry_limit, b->limits.telemetry_queue);
	int rc = LINLI_ENOMEM;
	b->families =
	    calloc((size_t)(c->n_bus_consequence + c->n_bus_telemetry + 1), sizeof *b->families);
	b->root = node_new(NULL, "", 0);
	b->kids = calloc(64, sizeof *b->kids);
	b->kids_mask = 63;
	if (!b->families || !b->root || !b->kids)
		goto fail;
	for (int i = 0; i < c->n_bus_consequence; i++)
		if ((rc = add_family(b, c->bus_consequence[i], BUS_CONSEQUENCE)))
			goto fail;
	for (int i = 0; i < c->n_bus_telemetry; i++)
		if ((rc = add_family(b, c->bus_telemetry[i], BUS_TELEMETRY)))
			goto fail;
	if ((rc = add_family(b, "#", BUS_TELEMETRY)))
		goto fail;
	if ((rc = kernel_on_batch_end(k, on_batch_end, b))) {
		errf(err, errlen, rc, "bus: cannot register its batch-end hook");
		goto fail;
	}
	*out = b;
	return 0;
fail:
	if (err && errlen && !err[0])
		snprintf(err, errlen, "bus: %s", linli_strerror(rc));
	bus_close(b);
	return rc;
}

static void sub_free(struct bus_sub *s)
{
	if (s->release)
		s->release(s->ud);
	free(s->pattern);
	free(s->owner_name);
	free(s);
}

static void sub_detach(struct bus *b, struct bus_sub *s)
{
	list_del(s->rest ? &s->node->rest : &s->node->here, s);
	prune(b, s->node);
	if (s->all_prev)
		s->all_prev->all_next = s->all_next;
	else
		b->all_head = s->all_next;
	if (s->all_next)
		s->all_next->all_prev = s->all_prev;
	else
		b->all_tail = s->all_prev;
	b->n_subs--;
	s->dead = true;
}

static void rq_free(struct bus_rq *r);

void bus_close(struct bus *b)
{
	if (!b)
		return;
	while (b->rqs)
		rq_free(b->rqs); /* uncalled */
	idmap_free(&b->rq_ids);
	while (b->servers) {
		struct bus_server *sv = b->servers;
		b->servers = sv->next;
		free(sv);
	}
	while (b->all_head) {
		struct bus_sub *s = b->all_head;
		sub_detach(b, s);
		sub_free(s);
	}
	while (b->graveyard) {
		struct bus_sub *s = b->graveyard;
		b->graveyard = s->grave_next;
		sub_free(s);
	}
	while (b->q_head) {
		struct qev *q = b->q_head;
		b->q_head = q->next;
		free(q);
	}
	for (int i = 0; i < b->n_families; i++)
		free(b->families[i].pattern);
	free(b->families);
	free(b->root);
	free(b->kids);
	free(b->match);
	free(b);
}

static bool same_list(char *const *a, int na, const struct family *f, int nf, enum bus_class cls)
{
	int j = 0;
	for (int i = 0; i < nf; i++)
		if (f[i].cls == cls && strcmp(f[i].pattern, "#") != 0) {
			if (j >= na || strcmp(a[j], f[i].pattern) != 0)
				return false;
			j++;
		}
	return j == na;
}

void bus_reconfigure(struct bus *b, const struct cfg *c)
{
	limits_from(&b->limits, c);
	atomic_store(&b->telemetry_limit, b->limits.telemetry_queue);
	if (!same_list(c->bus_consequence, c->n_bus_consequence, b->families, b->n_families,
		       BUS_CONSEQUENCE) ||
	    !same_list(c->bus_telemetry, c->n_bus_telemetry, b->families, b->n_families,
		       BUS_TELEMETRY))
		log_warn("config",
			 "bus.consequence/bus.telemetry changed: takes effect on restart");
}

const struct bus_limits *bus_get_limits(const struct bus *b)
{
	return &b->limits;
}

void bus_set_journal(struct bus *b, const struct bus_journal *j)
{
	b->has_journal = j && j->write;
	if (b->has_journal)
		b->journal = *j;
	else
		memset(&b->journal, 0, sizeof b->journal);
}

bool bus_has_journal(const struct bus *b)
{
	return b->has_journal;
}

void bus_continue_seq(struct bus *b, uint64_t last)
{
	if (last > b->seq) {
		b->seq = last;
		b->sealed = last;
	}
}

/* ---- subscriptions ---- */

int bus_subscribe(struct bus *b, const char *pattern, const char *scope, bus_handler fn, void *ud,
		  const void *owner, const char *owner_name, uint64_t *id_out, char *err,
		  size_t errlen)
{
	char w[160];
	if (!fn)
		return errf(err, errlen, LINLI_EINVAL, "subscribe: no handler");
	if (!pattern || !bus_pattern_check(pattern, w, sizeof w))
		return errf(err, errlen, LINLI_EINVAL, "pattern '%s': %s", pattern ? pattern : "",
			    pattern ? w : "missing");
	if (!scope)
		scope = "";
	if (*scope && !scope_check(scope, w, sizeof w))
		return errf(err, errlen, LINLI_EINVAL, "scope '%s': %s", scope, w);
	struct bus_sub *s = calloc(1, sizeof *s);
	if (!s)
		return LINLI_ENOMEM;
	s->pattern = strdup(pattern);
	s->owner_name = strdup(owner_name && *owner_name ? owner_name : "?");
	if (!s->pattern || !s->owner_name) {
		sub_free(s);
		return LINLI_ENOMEM;
	}
	s->scope_len = strlen(scope);
	memcpy(s->scope, scope, s->scope_len + 1);
	s->fn = fn;
	s->ud = ud;
	s->owner = owner;
	struct tnode *t = b->root;
	const char *p = pattern;
	for (;;) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n == 1 && *p == '#') {
			s->rest = true;
			break;
		}
		struct tnode *c = child_get(b, t, p, n);
		if (!c) {
			prune(b, t);
			sub_free(s);
			return LINLI_ENOMEM;
		}
		t = c;
		if (!e)
			break;
		p = e + 1;
	}
	s->node = t;
	list_add(s->rest ? &t->rest : &t->here, s);
	s->id = b->next_id++;
	s->all_prev = b->all_tail;
	if (b->all_tail)
		b->all_tail->all_next = s;
	else
		b->all_head = s;
	b->all_tail = s;
	b->n_subs++;
	if (id_out)
		*id_out = s->id;
	return 0;
}

static void unsubscribe(struct bus *b, struct bus_sub *s)
{
	sub_detach(b, s);
	if (b->delivering) {
		/* It may sit in the match list of the event being delivered. */
		s->grave_next = b->graveyard;
		b->graveyard = s;
	} else
		sub_free(s);
}

int bus_unsubscribe(struct bus *b, uint64_t id, const void *owner)
{
	for (struct bus_sub *s = b->all_head; s; s = s->all_next)
		if (s->id == id) {
			if (owner && s->owner != owner)
				return LINLI_EPERM;
			unsubscribe(b, s);
			return 0;
		}
	return LINLI_ENOENT;
}

int bus_set_release(struct bus *b, uint64_t id, void (*release)(void *ud))
{
	for (struct bus_sub *s = b->all_head; s; s = s->all_next)
		if (s->id == id) {
			s->release = release;
			return 0;
		}
	return LINLI_ENOENT;
}

int bus_unsubscribe_owner(struct bus *b, const void *owner)
{
	int n = 0;
	for (struct bus_sub *s = b->all_head, *next; s; s = next) {
		next = s->all_next;
		if (s->owner == owner) {
			unsubscribe(b, s);
			n++;
		}
	}
	return n;
}

/* ---- delivery ---- */

static void handler_failed(struct bus *b, struct bus_sub *s, const struct bus_event *ev, int rc)
{
	s->errors++;
	b->handler_errors++;
	uint64_t now = kernel_now_ms();
	if (s->errors > 1 && now - s->last_log_ms < 1000) {
		s->suppressed++;
		return;
	}
	char more[64] = "";
	if (s->suppressed)
		snprintf(more, sizeof more, " (%llu more failures not logged)",
			 (unsigned long long)s->suppressed);
	log_warn("bus", "subscriber %s (#%llu, '%s') failed on %s seq %llu: %s (%d)%s",
		 s->owner_name, (unsigned long long)s->id, s->pattern, ev->topic,
		 (unsigned long long)ev->seq, linli_strerror(rc), rc, more);
	s->last_log_ms = now;
	s->suppressed = 0;
}

static void deliver(struct bus *b, const struct bus_event *ev, size_t scope_len, int fam)
{
	struct lvl lv[BUS_LEVELS_MAX];
	int n = 0;
	for (const char *p = ev->topic;;) {
		const char *e = p;
		while (*e && *e != '/')
			e++;
		lv[n].p = p;
		lv[n].n = (uint32_t)(e - p);
		lv[n].h = seg_hash(p, lv[n].n);
		n++;
		if (!*e)
			break;
		p = e + 1;
	}
	b->nmatch = 0;
	match(b, b->root, lv, n, 0);
	/* Subscription order, so that delivery is deterministic (few matches: insertion sort). */
	for (size_t i = 1; i < b->nmatch; i++) {
		struct bus_sub *s = b->match[i];
		size_t j = i;
		for (; j > 0 && b->match[j - 1]->id > s->id; j--)
			b->match[j] = b->match[j - 1];
		b->match[j] = s;
	}
	b->cur = ev;
	struct family *f = &b->families[fam];
	/* The match list may be rebuilt by nobody else during the loop: publishes queue. */
	size_t nm = b->nmatch;
	for (size_t i = 0; i < nm; i++) {
		struct bus_sub *s = b->match[i];
		if (s->dead)
			continue;
		if (s->scope_len &&
		    (s->scope_len > scope_len || memcmp(s->scope, ev->scope, s->scope_len) != 0 ||
		     (ev->scope[s->scope_len] != '\0' && ev->scope[s->scope_len] != '/')))
			continue;
		s->delivered++;
		f->delivered++;
		int rc = s->fn(ev, s->ud);
		if (rc)
			handler_failed(b, s, ev, rc);
	}
	b->cur = NULL;
	if (b->cur_blob) {
		bus_blob_unref(b->cur_blob);
		b->cur_blob = NULL;
	}
}

static void on_continue(struct kernel *k, void *arg);

/*
 * Has this loop turn's delivery budget been spent? The budget runs from the
 * turn's first drain, so timers that took their own share first never starve
 * the bus. Outside the loop (unit tests) there is no budget.
 */
static bool turn_spent(struct bus *b)
{
	uint64_t turn = kernel_turn(b->k);
	if (!turn)
		return false;
	uint64_t now = kernel_now_ms();
	if (turn != b->turn) {
		b->turn = turn;
		b->turn_start_ms = now;
		return false;
	}
	return now - b->turn_start_ms >= KERNEL_EVENT_TURN_MS;
}

/* Deliver what is queued (the caller set b->delivering). */
static void drain(struct bus *b)
{
	for (int n = 0; b->q_head && n < BUS_DRAIN_MAX; n++) {
		if (turn_spent(b)) {
			b->cut_seq = b->q_tail->ev.seq;
			break;
		}
		struct qev *q = b->q_head;
		b->q_head = q->next;
		if (!b->q_head)
			b->q_tail = NULL;
		if (q->ev.seq <= b->cut_seq) {
			q->ev.delayed = true;
			b->delayed++;
		}
		deliver(b, &q->ev, q->scope_len, q->family);
		if (q->ev.cls == BUS_TELEMETRY)
			atomic_fetch_sub(&b->pending, 1);
		free(q);
	}
}

static void finish_delivery(struct bus *b)
{
	b->delivering = false;
	while (b->graveyard) {
		struct bus_sub *s = b->graveyard;
		b->graveyard = s->grave_next;
		sub_free(s);
	}
	if (b->q_head && !b->cont_posted) {
		if (kernel_post(b->k, on_continue, b) == 0)
			b->cont_posted = true;
		else
			log_error("bus", "cannot continue delivery: kernel closed");
	}
}

static void on_continue(struct kernel *k, void *arg)
{
	(void)k;
	struct bus *b = arg;
	b->cont_posted = false;
	if (b->delivering)
		return;
	b->delivering = true;
	drain(b);
	finish_delivery(b);
}

static void enqueue(struct bus *b, struct qev *q)
{
	q->next = NULL;
	if (b->q_tail)
		b->q_tail->next = q;
	else
		b->q_head = q;
	b->q_tail = q;
}

/*
 * Accept an event on the kernel thread: number it, journal it if it is a
 * record of consequence, count it. Non-zero: refused, nothing delivered.
 */
static int accept_ev(struct bus *b, struct bus_event *ev, int fam, char *err, size_t errlen)
{
	struct family *f = &b->families[fam];
	ev->seq = b->seq + 1;
	if (ev->cls == BUS_CONSEQUENCE && b->has_journal) {
		char jerr[256] = "";
		int rc = b->journal.write(b->journal.arg, ev, jerr, sizeof jerr);
		if (rc) {
			f->refused++;
			return errf(err, errlen, rc < 0 ? rc : LINLI_EIO,
				    "%s: the journal refused it: %s", ev->topic,
				    *jerr ? jerr : linli_strerror(rc));
		}
		b->journaled = true;
	}
	b->seq = ev->seq;
	f->published++;
	return 0;
}

int bus_publish(struct bus *b, const struct bus_msg *m, uint64_t *seq_out, char *err, size_t errlen)
{
	return bus_publish_caused(b, m, 0, 0, seq_out, err, errlen);
}

int bus_publish_caused(struct bus *b, const struct bus_msg *m, uint32_t depth, unsigned flags,
		       uint64_t *seq_out, char *err, size_t errlen)
{
	if (!kernel_on_thread(b->k))
		return errf(err, errlen, LINLI_ESTATE,
			    "bus_publish called off the kernel thread (use bus_post)");
	struct lens l;
	int rc = check_msg(m, &l, err, errlen);
	if (rc)
		return rc;
	int fam = classify(b, m->topic);
	struct family *f = &b->families[fam];
	bool later = flags & BUS_PUB_LATER;
	bool queue = b->delivering || b->q_head || later;
	if (!queue) {
		struct bus_event ev = {
		    .time_ms = (uint64_t)wall_ms(),
		    .topic = m->topic,
		    .publisher = m->publisher,
		    .scope = m->scope,
		    .payload = l.payload,
		    .payload_len = l.payload_len,
		    .cls = f->cls,
		    .family = f->pattern,
		    .depth = depth,
		};
		if ((rc = accept_ev(b, &ev, fam, err, errlen)))
			return rc;
		if (seq_out)
			*seq_out = ev.seq;
		b->delivering = true;
		deliver(b, &ev, l.scope, fam);
		drain(b);
		finish_delivery(b);
		return 0;
	}
	if (f->cls == BUS_TELEMETRY &&
	    atomic_load(&b->pending) >= atomic_load(&b->telemetry_limit)) {
		atomic_fetch_add(&f->shed, 1);
		return errf(err, errlen, LINLI_EBUSY,
			    "%s: telemetry shed, %d events already wait for delivery "
			    "(bus.telemetry_queue)",
			    m->topic, atomic_load(&b->telemetry_limit));
	}
	struct qev *q = qev_new(b, m, &l, fam, (uint64_t)wall_ms());
	if (!q)
		return LINLI_ENOMEM;
	q->ev.depth = depth;
	if ((rc = accept_ev(b, &q->ev, fam, err, errlen))) {
		free(q);
		return rc;
	}
	if (q->ev.cls == BUS_TELEMETRY)
		atomic_fetch_add(&b->pending, 1);
	if (seq_out)
		*seq_out = q->ev.seq;
	enqueue(b, q);
	if (b->delivering)
		return 0;
	if (later) {
		/* Delivered after the caller's kernel event, by a continuation. */
		if (b->cont_posted || kernel_post(b->k, on_continue, b) == 0) {
			b->cont_posted = true;
			return 0;
		}
		/* The loop has ended (a script's fini at stop): deliver now, as before it. */
	}
	/* A continuation is pending: drain now, in order, rather than wait for it. */
	b->delivering = true;
	drain(b);
	finish_delivery(b);
	return 0;
}

/* Kernel thread: an event posted by bus_post arrived. */
static void on_posted(struct kernel *k, void *arg)
{
	(void)k;
	struct qev *q = arg;
	struct bus *b = q->b;
	char err[320];
	if (accept_ev(b, &q->ev, q->family, err, sizeof err)) {
		log_error("bus", "posted event from %s refused: %s", q->ev.publisher, err);
		if (q->ev.cls == BUS_TELEMETRY)
			atomic_fetch_sub(&b->pending, 1);
		free(q);
		return;
	}
	enqueue(b, q);
	if (b->delivering)
		return;
	b->delivering = true;
	drain(b);
	finish_delivery(b);
}

int bus_post(struct bus *b, const struct bus_msg *m, char *err, size_t errlen)
{
	struct lens l;
	int rc = check_msg(m, &l, err, errlen);
	if (rc)
		return rc;
	int fam = classify(b, m->topic);
	struct family *f = &b->families[fam];
	if (f->cls == BUS_TELEMETRY) {
		int64_t n = atomic_fetch_add(&b->pending, 1);
		if (n >= atomic_load(&b->telemetry_limit)) {
			atomic_fetch_sub(&b->pending, 1);
			atomic_fetch_add(&f->shed, 1);
			return errf(err, errlen, LINLI_EBUSY,
				    "%s: telemetry shed, %lld events already wait for delivery "
				    "(bus.telemetry_queue)",
				    m->topic, (long long)n);
		}
	}
	struct qev *q = qev_new(b, m, &l, fam, (uint64_t)wall_ms());
	if (!q)
		rc = LINLI_ENOMEM;
	else if ((rc = kernel_post(b->k, on_posted, q)) != 0) {
		free(q);
		errf(err, errlen, rc, "%s: the kernel has stopped", m->topic);
	}
	if (rc && f->cls == BUS_TELEMETRY)
		atomic_fetch_sub(&b->pending, 1);
	return rc;
}

/* ---- sealing ---- */

static void on_batch_end(struct kernel *k, void *arg)
{
	(void)k;
	struct bus *b = arg;
	if (b->sealed == b->seq)
		return;
	if (b->journaled && b->journal.flush) {
		char err[256] = "";
		int rc = b->journal.flush(b->journal.arg, err, sizeof err);
		if (rc == LINLI_EBUSY)
			return; /* not yet durable (group commit): sealed at a later turn */
		if (rc) {
			uint64_t now = kernel_now_ms();
			if (now - b->last_flush_log_ms >= 1000) {
				log_error("bus",
					  "journal flush failed, holding events back from "
					  "external subscribers: %s",
					  *err ? err : linli_strerror(rc));
				b->last_flush_log_ms = now;
			}
			return;
		}
	}
	b->journaled = false;
	b->sealed = b->seq;
}

uint64_t bus_sealed_seq(const struct bus *b)
{
	return b->sealed;
}

/* ---- encoding for external subscribers ---- */

struct blob_writer {
	struct bus_blob *blob;
	size_t cap;
};

static int blob_write(void *data, const char *buf, size_t len)
{
	struct blob_writer *w = data;
	if (w->blob->len + len > w->cap)
		return -1;
	memcpy(w->blob->data + w->blob->len, buf, len);
	w->blob->len += len;
	return 0;
}

static struct bus_blob *encode(const struct bus_event *ev)
{
	size_t cap =
	    128 + strlen(ev->topic) + strlen(ev->publisher) + strlen(ev->scope) + ev->payload_len;
	struct bus_blob *blob = malloc(sizeof *blob + cap);
	if (!blob)
		return NULL;
	blob->refs = 1;
	blob->cls = ev->cls;
	blob->seq = ev->seq;
	blob->len = 0;
	struct blob_writer w = {blob, cap};
	msgpack_packer pk;
	msgpack_packer_init(&pk, &w, blob_write);
	msgpack_pack_map(&pk, 7);
	mp_kv_uint(&pk, "seq", ev->seq);
	mp_kv_uint(&pk, "time", ev->time_ms);
	mp_kv_str(&pk, "topic", ev->topic);
	mp_kv_str(&pk, "publisher", ev->publisher);
	mp_kv_str(&pk, "scope", ev->scope);
	mp_kv_str(&pk, "class", bus_class_name(ev->cls));
	mp_str(&pk, "payload");
	if (blob_write(&w, ev->payload, ev->payload_len) != 0) {
		free(blob);
		return NULL;
	}
	return blob;
}

struct bus_blob *bus_event_blob(struct bus *b, const struct bus_event *ev)
{
	if (ev != b->cur)
		return encode(ev);
	if (!b->cur_blob && !(b->cur_blob = encode(ev)))
		return NULL;
	b->cur_blob->refs++;
	return b->cur_blob;
}

void bus_blob_unref(struct bus_blob *blob)
{
	if (blob && --blob->refs == 0)
		free(blob);
}

void bus_count_subscriber_shed(struct bus *b, const struct bus_event *ev)
{
	for (int i = 0; i < b->n_families; i++)
		if (b->families[i].pattern == ev->family) {
			b->families[i].subscriber_shed++;
			return;
		}
}

/* ---- request/reply ---- */

static struct bus_server *server_find(const struct bus *b, uint64_t id)
{
	for (struct bus_server *sv = b->servers; sv; sv = sv->next)
		if (sv->id == id)
			return sv;
	return NULL;
}

/* A live server other than `self` with the same pattern over an overlapping scope. */
static const struct bus_server *server_clash(const struct bus *b, const struct bus_server *self)
{
	for (const struct bus_server *sv = b->servers; sv; sv = sv->next)
		if (sv != self && !sv->suspended && strcmp(sv->pattern, self->pattern) == 0 &&
		    (scope_within(sv->scope, self->scope) || scope_within(self->scope, sv->scope)))
			return sv;
	return NULL;
}

int bus_serve(struct bus *b, const char *pattern, const char *scope, bus_serve_fn fn, void *ud,
	      const void *owner, const char *owner_name, uint64_t *id_out, char *err, size_t errlen)
{
	char w[160];
	if (!fn)
		return errf(err, errlen, LINLI_EINVAL, "serve: no handler");
	if (!pattern || !bus_pattern_check(pattern, w, sizeof w))
		return errf(err, errlen, LINLI_EINVAL, "pattern '%s': %s", pattern ? pattern : "",
			    pattern ? w : "missing");
	if (!scope)
		scope = "";
	if (*scope && !scope_check(scope, w, sizeof w))
		return errf(err, errlen, LINLI_EINVAL, "scope '%s': %s", scope, w);
	struct bus_server *sv = calloc(1, sizeof *sv);
	if (!sv)
		return LINLI_ENOMEM;
	snprintf(sv->pattern, sizeof sv->pattern, "%s", pattern);
	snprintf(sv->scope, sizeof sv->scope, "%s", scope);
	snprintf(sv->owner_name, sizeof sv->owner_name, "%s",
		 owner_name && *owner_name ? owner_name : "?");
	sv->owner = owner;
	sv->fn = fn;
	sv->ud = ud;
	const struct bus_server *other = server_clash(b, sv);
	if (other) {
		int rc =
		    errf(err, errlen, LINLI_EEXIST, "%s serves it already (server %llu at '%s')",
			 other->owner_name, (unsigned long long)other->id, other->scope);
		free(sv);
		return rc;
	}
	sv->id = b->next_id++;
	struct bus_server **pp = &b->servers;
	while (*pp)
		pp = &(*pp)->next;
	*pp = sv;
	b->n_servers++;
	*id_out = sv->id;
	return 0;
}

static void rq_unlink(struct bus_rq *r)
{
	struct bus *b = r->b;
	idmap_del(&b->rq_ids, r->id);
	if (r->prev)
		r->prev->next = r->next;
	else
		b->rqs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	b->n_rqs--;
}

/* Unlink, cancel its timers and free r: its fn is not called. */
static void rq_free(struct bus_rq *r)
{
	struct kernel *k = r->b->k;
	rq_unlink(r);
	if (r->step_timer)
		kernel_timer_cancel(k, r->step_timer);
	if (r->timeout_timer)
		kernel_timer_cancel(k, r->timeout_timer);
	free(r->answer);
	free(r->msg);
	free(r->topic);
	free(r);
}

static struct bus_rq *rq_find(const struct bus *b, uint64_t id)
{
	return idmap_get(&b->rq_ids, id);
}

/* The answer's timer: hand it to the requester, then forget the request. */
static void rq_hand_over(struct kernel *k, void *arg)
{
	(void)k;
	struct bus_rq *r = arg;
	r->step_timer = 0; /* a one-shot timer is gone once it fires */
	bus_reply_fn fn = r->fn;
	void *ud = r->ud;
	uint64_t id = r->id;
	int status = r->status;
	/* Off the list before the call: fn may send requests, drop others, ... */
	rq_unlink(r);
	fn(id, status, r->answer, r->answer_len, r->msg ? r->msg : "", ud);
	free(r->answer);
	free(r->msg);
	free(r->topic);
	free(r);
}

/*
 * Answer r: keep the answer (copied) and hand it over from a zero-delay
 * timer. Out of memory keeps the status with no record.
 */
static void rq_answer(struct bus_rq *r, int status, const void *rec, size_t len, const char *msg)
{
	struct kernel *k = r->b->k;
	if (r->timeout_timer)
		kernel_timer_cancel(k, r->timeout_timer);
	r->timeout_timer = 0;
	if (r->step_timer) /* a delivery not yet made */
		kernel_timer_cancel(k, r->step_timer);
	r->step_timer = 0;
	r->state = RQ_ANSWERED;
	r->status = status;
	if (rec && len && (r->answer = malloc(len)) != NULL) {
		memcpy(r->answer, rec, len);
		r->answer_len = len;
	}
	r->msg = strdup(msg ? msg : "");
	if (!(r->step_timer = kernel_timer_add(k, 0, 0, rq_hand_over, r))) {
		log_error("bus", "out of memory: the answer to request %llu on %s was dropped",
			  (unsigned long long)r->id, r->topic);
		rq_free(r);
	}
}

/* Answer every request of server sv not answered yet with LINLI_ESTATE. */
static void server_fail_pending(struct bus *b, const struct bus_server *sv)
{
	char msg[BUS_TOPIC_MAX + BUS_PUBLISHER_MAX + 96];
	snprintf(msg, sizeof msg, "%s stopped serving %s before it replied", sv->owner_name,
		 sv->pattern);
	for (struct bus_rq *r = b->rqs; r; r = r->next)
		if (r->server == sv->id && r->state != RQ_ANSWERED) {
			b->rq_totals.gone++;
			rq_answer(r, LINLI_ESTATE, NULL, 0, msg);
		}
}

int bus_unserve(struct bus *b, uint64_t id, const void *owner)
{
	for (struct bus_server **pp = &b->servers; *pp; pp = &(*pp)->next) {
		struct bus_server *sv = *pp;
		if (sv->id != id)
			continue;
		if (owner && sv->owner != owner)
			return LINLI_EPERM;
		*pp = sv->next;
		b->n_servers--;
		server_fail_pending(b, sv);
		free(sv);
		return 0;
	}
	return LINLI_ENOENT;
}

int bus_serve_suspend(struct bus *b, uint64_t id, bool on)
{
	struct bus_server *sv = server_find(b, id);
	if (!sv)
		return LINLI_ENOENT;
	if (!on && sv->suspended && server_clash(b, sv))
		return LINLI_EEXIST;
	sv->suspended = on;
	return 0;
}

/* The first live server whose pattern matches and whose scope holds the request's. */
static const struct bus_server *server_for(const struct bus *b, const char *topic,
					   const char *scope)
{
	for (const struct bus_server *sv = b->servers; sv; sv = sv->next)
		if (!sv->suspended && bus_pattern_match(sv->pattern, topic) &&
		    scope_within(sv->scope, scope))
			return sv;
	return NULL;
}

/* The delivery timer: hand r to its server. */
static void rq_deliver(struct kernel *k, void *arg)
{
	(void)k;
	struct bus_rq *r = arg;
	struct bus *b = r->b;
	r->step_timer = 0;
	struct bus_server *sv = server_find(b, r->server);
	if (!sv) { /* cannot happen: removing a server answers its requests */
		rq_answer(r, LINLI_ESTATE, NULL, 0, "the server went away");
		return;
	}
	r->state = RQ_DELIVERED;
	b->rq_totals.delivered++;
	struct bus_request rq = {r->id,	       r->topic,   r->scope,
				 r->requester, r->payload, r->payload_len};
	/* The handler may reply, unserve, drop: r and sv may be gone after it. */
	sv->fn(&rq, sv->ud);
}

static void rq_timeout(struct kernel *k, void *arg)
{
	(void)k;
	struct bus_rq *r = arg;
	r->timeout_timer = 0;
	r->b->rq_totals.timeouts++;
	char msg[BUS_TOPIC_MAX + 64];
	snprintf(msg, sizeof msg, "no reply to the request on %s in time", r->topic);
	rq_answer(r, LINLI_ETIMEDOUT, NULL, 0, msg);
}

int bus_request(struct bus *b, const struct bus_msg *m, uint32_t timeout_ms, bus_reply_fn fn,
		void *ud, const void *owner, uint64_t *id_out, char *err, size_t errlen)
{
	if (!fn)
		return errf(err, errlen, LINLI_EINVAL, "request: no answer function");
	if (timeout_ms > BUS_REQUEST_TIMEOUT_MAX_MS)
		return errf(err, errlen, LINLI_EINVAL, "timeout %u ms is above %d ms", timeout_ms,
			    BUS_REQUEST_TIMEOUT_MAX_MS);
	struct lens l;
	int rc = check_msg(m, &l, err, errlen);
	if (rc)
		return rc;
	const struct bus_server *sv = server_for(b, m->topic, m->scope);
	if (!sv) {
		b->rq_totals.no_server++;
		return errf(err, errlen, LINLI_ENOENT, "nobody serves it at '%s'", m->scope);
	}
	if (b->n_rqs >= BUS_REQUESTS_MAX)
		return errf(err, errlen, LINLI_EBUSY, "%d requests are pending", BUS_REQUESTS_MAX);
	struct bus_rq *r = calloc(1, sizeof *r);
	char *buf = malloc(l.topic + l.scope + l.publisher + 3 + l.payload_len);
	if (!r || !buf) {
		free(r);
		free(buf);
		return LINLI_ENOMEM;
	}
	r->b = b;
	r->topic = buf;
	memcpy(r->topic, m->topic, l.topic + 1);
	r->scope = r->topic + l.topic + 1;
	memcpy(r->scope, m->scope, l.scope + 1);
	r->requester = r->scope + l.scope + 1;
	memcpy(r->requester, m->publisher, l.publisher + 1);
	r->payload = r->requester + l.publisher + 1;
	memcpy(r->payload, l.payload, l.payload_len);
	r->payload_len = l.payload_len;
	r->fn = fn;
	r->ud = ud;
	r->owner = owner;
	r->server = sv->id;
	r->id = b->next_id++;
	if (idmap_put(&b->rq_ids, r->id, r) != 0) {
		free(r->topic);
		free(r);
		return LINLI_ENOMEM;
	}
	r->next = b->rqs;
	if (b->rqs)
		b->rqs->prev = r;
	b->rqs = r;
	b->n_rqs++;
	uint64_t tmo = timeout_ms ? timeout_ms : BUS_REQUEST_TIMEOUT_MS;
	if (!(r->step_timer = kernel_timer_add(b->k, 0, 0, rq_deliver, r)) ||
	    !(r->timeout_timer = kernel_timer_add(b->k, tmo, 0, rq_timeout, r))) {
		rq_free(r);
		return LINLI_ENOMEM;
	}
	b->rq_totals.requests++;
	*id_out = r->id;
	return 0;
}

int bus_request_drop(struct bus *b, uint64_t id, const void *owner)
{
	struct bus_rq *r = rq_find(b, id);
	if (!r || r->owner != owner)
		return LINLI_ENOENT;
	rq_free(r);
	return 0;
}

int bus_reply(struct bus *b, uint64_t id, const void *owner, int status, const void *rec,
	      size_t len, const char *msg, char *err, size_t errlen)
{
	struct bus_rq *r = rq_find(b, id);
	const struct bus_server *sv = r ? server_find(b, r->server) : NULL;
	if (!r || r->state != RQ_DELIVERED || !sv || sv->owner != owner)
		return errf(err, errlen, LINLI_ENOENT,
			    "reply %llu: no such request pending at this server (answered, timed "
			    "out, or never delivered here)",
			    (unsigned long long)id);
	char w[160];
	if (rec && len) {
		if (len > BUS_PAYLOAD_MAX)
			return errf(err, errlen, LINLI_E2BIG, "reply %llu: %zu bytes exceed %d",
				    (unsigned long long)id, len, BUS_PAYLOAD_MAX);
		if (!payload_ok(rec, len, w, sizeof w))
			return errf(err, errlen, LINLI_EINVAL, "reply %llu: %s",
				    (unsigned long long)id, w);
	}
	b->rq_totals.replies++;
	rq_answer(r, status, rec, len, msg);
	return 0;
}

void bus_rq_get_totals(const struct bus *b, struct bus_rq_totals *t)
{
	*t = b->rq_totals;
	t->servers = b->n_servers;
	t->pending = b->n_rqs;
}

/* ---- introspection ---- */

void bus_get_totals(const struct bus *b, struct bus_totals *t)
{
	memset(t, 0, sizeof *t);
	for (int i = 0; i < b->n_families; i++) {
		const struct family *f = &b->families[i];
		t->published += f->published;
		t->delivered += f->delivered;
		t->shed += atomic_load(&f->shed);
		t->subscriber_shed += f->subscriber_shed;
		t->refused += f->refused;
		if (f->cls == BUS_CONSEQUENCE)
			t->consequence_published += f->published;
	}
	t->handler_errors = b->handler_errors;
	t->delayed = b->delayed;
	t->subscriptions = b->n_subs;
	t->journal = b->has_journal;
}

void bus_pack_families(const struct bus *b, msgpack_packer *pk)
{
	msgpack_pack_array(pk, (size_t)b->n_families);
	for (int i = 0; i < b->n_families; i++) {
		const struct family *f = &b->families[i];
		msgpack_pack_map(pk, 7);
		mp_kv_str(pk, "family", f->pattern);
		mp_kv_str(pk, "class", bus_class_name(f->cls));
		mp_kv_uint(pk, "published", f->published);
		mp_kv_uint(pk, "delivered", f->delivered);
		mp_kv_uint(pk, "shed", atomic_load(&f->shed));
		mp_kv_uint(pk, "subscriber_shed", f->subscriber_shed);
		mp_kv_uint(pk, "refused", f->refused);
	}
}

void bus_foreach_sub(const struct bus *b, void (*fn)(const struct bus_sub_info *si, void *arg),
		     void *arg)
{
	for (const struct bus_sub *s = b->all_head; s; s = s->all_next) {
		struct bus_sub_info si = {s->id,    s->pattern, s->scope,     s->owner_name,
					  s->owner, s->ud,	s->delivered, s->errors};
		fn(&si, arg);
	}
}
