/*
 * hal — see hal.h.
 *
 * The registry is a chained hash table of struct hal_dev keyed by id; each
 * device keeps a slot per class resource for its latest value and the topic
 * prefix "dev/<class>/<id>/" so that a reading costs one lookup, one check,
 * one small MessagePack map and one bus_publish.
 *
 * Drivers' threads never touch the registry. hal_post, hal_event and
 * hal_command_done copy what they are given into a byte queue under a mutex
 * and, when the queue was empty, post one kernel event that drains the whole
 * queue: one wake-up per burst, not per reading. Queue entries name their
 * sender by its ctx, never by a pointer the kernel would dereference, so an
 * entry that outlives its driver is simply refused.
 *
 * Availability is a sweep, not a timer per device: every HAL_SWEEP_MS the
 * kernel compares each device's last word with its heartbeat, so ten
 * thousand devices cost one timer. Poll schedules and open retries are
 * kernel timers of their own (there are few).
 *
 * State changes and registry edits go to the store at once (store_update
 * keeps fields the HAL does not own, such as vendor or location); last_seen
 * alone is written back in bulk every HAL_FLUSH_MS and at close, because a
 * write per reading would cost more than the reading.
 */
#include "hal.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus.h"
#include "kernel.h"
#include "log.h"
#include "mp.h"
#include "record.h"
#include "scope.h"
#include "store.h"
#include "tier_store.h"
#include "util.h"
#include "watchdog.h"

#define DATASET "devices"

/* ---- structures ---- */

struct hal_latest {
	bool set;
	int type; /* LINLI_T_INT, FLOAT, BOOL, STR */
	int64_t i;
	double f;
	bool b;
	char *s;
	size_t slen, scap;
	int64_t time_ms;
};

struct hal_poll {
	struct hal_dev *d;
	int res;	  /* index in the class's resources */
	uint32_t every_s; /* period */
	uint64_t timer;	  /* kernel timer id, 0 when not running */
};

struct hal_dev {
	struct hal_dev *hnext;
	struct hal *h;
	char id[STORE_ID_MAX + 1];
	char scope[SCOPE_MAX + 1];
	const struct cat_device_class *cls;
	const struct catalog *cat; /* the catalog version cls is in, a reference held: a
				      bundle's class stays valid while its devices use it,
				      whatever versions are swapped in since */
	char *driver, *address, *name, *poll_spec;
	char cred[80];	     /* credential hash, "" for none */
	int64_t heartbeat_s; /* own override, 0: the class's */
	struct hal_driver *drv;
	struct linli_device pub;
	bool open;
	enum hal_state state;
	uint64_t heard_mono; /* last word, monotonic ms */
	int64_t last_seen;   /* wall ms, 0: never */
	bool dirty;	     /* last_seen changed since written back */
	bool first_word;     /* the state change being made is its first word ever */
	bool gone_logged;    /* its store record vanished: said once */
	uint64_t readings, events, refused[HAL_REF_KINDS];
	unsigned logged; /* one bit per refusal kind already logged */
	char last_refusal[256];
	char open_error[256];
	unsigned open_failures;
	uint64_t retry_timer;
	uint64_t retry_ms;
	struct hal_poll *polls;
	int n_polls;
	bool poll_warned;
	struct hal_latest *latest; /* cls->n_resources slots */
	char topic[BUS_TOPIC_MAX + 1];
	size_t topic_len; /* of the prefix "dev/<class>/<id>/" */
};

struct hal_driver {
	struct hal_driver *next;
	struct hal *h;
	uint64_t id;
	char name[LINLI_NAME_MAX];
	char owner[LINLI_NAME_MAX];
	struct linli_driver_ops ops;
	linli_ctx *ctx;
	char scope[SCOPE_MAX + 1]; /* where its plugin acts ("": the node) */
	uint64_t foreign; /* readings for devices it does not drive */
	bool foreign_logged;
	int found; /* devices registered by the current discover */
};

struct hal_cmd {
	struct hal_cmd *next;
	struct hal *h;
	uint64_t req;
	struct hal_dev *d;
	char what[CAT_NAME_MAX + 8];
	char who[128];
	bool has_p; /* the principal, for the audit log */
	enum principal_kind pkind;
	char pname[96], pscope[SCOPE_MAX + 1];
	uint64_t timer, started;
	uint32_t timeout_ms;
	hal_cmd_fn done;
	void *arg;
};

/* The queue from drivers' threads. */
enum { Q_READING = 1, Q_EVENT, Q_DONE, Q_EVENT_WAIT, Q_AVAIL };

struct qhdr {
	uint32_t kind, size; /* size: the whole entry, 8-aligned */
	linli_ctx *from;
	int64_t i, time_ms;
	uint64_t req;
	double f;
	int32_t type, rc;
	bool b;
	uint32_t n1, n2, n3; /* bytes of the three blobs that follow (strings with NUL) */
};

struct qbuf {
	char *p;
	size_t len, cap;
};

/*
 * A driver thread waiting in hal_event_wait. Two references: the thread's
 * and the list's (h->waiters); each is dropped under w->mu, the last frees.
 * The thread sleeps on w->cv, never on anything of h, so hal_close may free
 * h while it still wakes up.
 */
enum hw_state { HW_QUEUED, HW_COMMIT, HW_DONE };
struct hal_waiter {
	struct hal_waiter *next; /* on h->waiters while the hal holds it */
	uint64_t id;
	linli_ctx *from;
	enum hw_state state; /* HW_DONE: rc and err are the answer */
	int rc, refs;
	char err[320];
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

/* The store's commit callback for the waiters of one batch (hal_close may orphan it). */
struct hal_commit_hook {
	struct hal *h; /* NULL once the hal closed */
};

struct hal {
	struct kernel *k;
	uint64_t (*clock)(void);
	bool keep_latest;
	struct hal_dev **tab;
	size_t tab_cap, n_devs;
	struct hal_driver *drivers;
	uint64_t next_driver_id;
	struct hal_cmd *cmds;
	uint64_t next_req;
	uint64_t sweep_timer, flush_timer;
	/* reused buffers (kernel thread) */
	msgpack_sbuffer sb;
	msgpack_packer pk;
	/* totals */
	uint64_t readings, refused, events, commands, timeouts;
	atomic_uint_fast64_t shed;
	/* the queue */
	pthread_mutex_t qmu;
	/* Threads waiting in hal_event_wait (under qmu), and the commit hook. */
	struct hal_waiter *waiters;
	uint64_t next_waiter;
	struct hal_commit_hook *hook; /* registered for the current batch, or NULL */
	linli_ctx *stopping;	      /* a driver plugin between its quiesce and release */
	struct qbuf qin, qwork;
	size_t q_readings; /* readings waiting in qin */
	bool q_posted;
	bool closed;
};

static const char *const refusal_names[HAL_REF_KINDS] = {"unknown", "type", "range", "event"};

const char *hal_refusal_name(enum hal_refusal r)
{
	return (unsigned)r < HAL_REF_KINDS ? refusal_names[r] : "?";
}

const char *hal_state_name(enum hal_state s)
{
	return s == HAL_ONLINE ? "online" : "unavailable";
}

static uint64_t mono(const struct hal *h)
{
	return h->clock ? h->clock() : kernel_now_ms();
}

void hal_set_clock(struct hal *h, uint64_t (*fn)(void))
{
	h->clock = fn;
}

void hal_keep_latest(struct hal *h, bool on)
{
	h->keep_latest = on;
}

static bool is_ident(const char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n >= max || !(s[0] >= 'a' && s[0] <= 'z'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

static int64_t heartbeat_s(const struct hal_dev *d)
{
	return d->heartbeat_s > 0 ? d->heartbeat_s : d->cls->heartbeat;
}

/* ---- the registry's hash table ---- */

static uint64_t hash_id(const char *s)
{
	uint64_t x = 1469598103934665603ull;
	for (; *s; s++)
		x = (x ^ (unsigned char)*s) * 1099511628211ull;
	return x;
}

struct hal_dev *hal_find(struct hal *h, const char *id)
{
	if (!id || !h->tab_cap)
		return NULL;
	for (struct hal_dev *d = h->tab[hash_id(id) & (h->tab_cap - 1)]; d; d = d->hnext)
		if (strcmp(d->id, id) == 0)
			return d;
	return NULL;
}

static int tab_insert(struct hal *h, struct hal_dev *d)
{
	if ((h->n_devs + 1) * 4 > h->tab_cap * 3) {
		size_t cap = h->tab_cap ? h->tab_cap * 2 : 64;
		struct hal_dev **t = calloc(cap, sizeof *t);
		if (!t)
			return LINLI_ENOMEM;
		for (size_t i = 0; i < h->tab_cap; i++)
			for (struct hal_dev *e = h->tab[i], *n; e; e = n) {
				n = e->hnext;
				size_t s = hash_id(e->id) & (cap - 1);
				e->hnext = t[s];
				t[s] = e;
			}
		free(h->tab);
		h->tab = t;
		h->tab_cap = cap;
	}
	size_t s = hash_id(d->id) & (h->tab_cap - 1);
	d->hnext = h->tab[s];
	h->tab[s] = d;
	h->n_devs++;
	return 0;
}

static void tab_remove(struct hal *h, struct hal_dev *d)
{
	for (struct hal_dev **pp = &h->tab[hash_id(d->id) & (h->tab_cap - 1)]; *pp;
	     pp = &(*pp)->hnext)
		if (*pp == d) {
			*pp = d->hnext;
			h->n_devs--;
			return;
		}
}

/* ---- accessors ---- */

const char *hal_dev_id(const struct hal_dev *d)
{
	return d->id;
}
const char *hal_dev_scope(const struct hal_dev *d)
{
	return d->scope;
}
const struct cat_device_class *hal_dev_class(const struct hal_dev *d)
{
	return d->cls;
}
const char *hal_dev_driver(const struct hal_dev *d)
{
	return d->driver;
}
const char *hal_dev_name(const struct hal_dev *d)
{
	return d->name ? d->name : "";
}
struct hal_driver *hal_dev_driver_of(const struct hal_dev *d)
{
	return d->drv;
}
enum hal_state hal_dev_state(const struct hal_dev *d)
{
	return d->state;
}
uint64_t hal_dev_readings(const struct hal_dev *d)
{
	return d->readings;
}
uint64_t hal_dev_events(const struct hal_dev *d)
{
	return d->events;
}
bool hal_dev_open(const struct hal_dev *d)
{
	return d->open;
}
const char *hal_dev_open_error(const struct hal_dev *d)
{
	return d->open_error[0] ? d->open_error : NULL;
}

uint64_t hal_dev_refused(const struct hal_dev *d, enum hal_refusal r)
{
	return (unsigned)r < HAL_REF_KINDS ? d->refused[r] : 0;
}

uint64_t hal_driver_id(const struct hal_driver *d)
{
	return d->id;
}
const char *hal_driver_name(const struct hal_driver *d)
{
	return d->name;
}
linli_ctx *hal_driver_ctx(const struct hal_driver *d)
{
	return d->ctx;
}
struct kernel *hal_kernel(const struct hal *h)
{
	return h->k;
}

void hal_driver_set_scope(struct hal_driver *d, const char *scope)
{
	snprintf(d->scope, sizeof d->scope, "%s", scope ? scope : "");
}

struct hal_driver *hal_driver_find(struct hal *h, const char *name)
{
	for (struct hal_driver *d = h->drivers; d; d = d->next)
		if (strcmp(d->name, name) == 0)
			return d;
	return NULL;
}

struct hal_driver *hal_driver_of(struct hal *h, linli_ctx *ctx)
{
	for (struct hal_driver *d = h->drivers; d; d = d->next)
		if (d->ctx == ctx)
			return d;
	return NULL;
}

struct hal_driver *hal_driver_by_id(struct hal *h, uint64_t id)
{
	for (struct hal_driver *d = h->drivers; d; d = d->next)
		if (d->id == id)
			return d;
	return NULL;
}

static int res_index(const struct cat_device_class *c, const char *name)
{
	for (int i = 0; i < c->n_resources; i++)
		if (strcmp(c->resources[i].name, name) == 0)
			return i;
	return -1;
}

/* ---- credentials ---- */

void hal_secret_hash(const char *secret, char out[80])
{
	unsigned char hb[32];
	crypto_generichash(hb, sizeof hb, (const unsigned char *)secret, strlen(secret), NULL, 0);
	memcpy(out, "blake2b:", 8);
	sodium_bin2hex(out + 8, 72, hb, sizeof hb);
	sodium_memzero(hb, sizeof hb);
}

bool hal_dev_auth(const struct hal_dev *d, const char *secret)
{
	if (!d->cred[0] || !secret)
		return false;
	char want[80];
	hal_secret_hash(secret, want);
	bool ok =
	    strlen(d->cred) == strlen(want) && sodium_memcmp(d->cred, want, strlen(want)) == 0;
	sodium_memzero(want, sizeof want);
	return ok;
}

/* ---- polls ---- */

/*
 * Parse "res=SECONDS,res=SECONDS" against class c into d->polls (d may be
 * NULL to check only). Each resource must be readable; 1..86400 s.
 */
static int parse_polls(const struct cat_device_class *c, const char *spec, struct hal_dev *d,
		       char *err, size_t errlen)
{
	if (!spec || !*spec)
		return 0;
	int n = 1;
	for (const char *p = spec; *p; p++)
		n += *p == ',';
	struct hal_poll *v = d ? calloc((size_t)n, sizeof *v) : NULL;
	if (d && !v)
		return LINLI_ENOMEM;
	int got = 0, rc = 0;
	const char *p = spec;
	while (*p) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		char item[128];
		if (len >= sizeof item) {
			rc = errf(err, errlen, LINLI_EINVAL, "poll: entry '%.40s...' too long", p);
			break;
		}
		memcpy(item, p, len);
		item[len] = '\0';
		char *eq = strchr(item, '=');
		char *end = NULL;
		long secs = eq ? strtol(eq + 1, &end, 10) : 0;
		if (!eq || eq == item || !end || *end || end == eq + 1 || secs < 1 ||
		    secs > 86400) {
			rc = errf(err, errlen, LINLI_EINVAL,
				  "poll: '%s' is not RESOURCE=SECONDS (1..86400)", item);
			break;
		}
		*eq = '\0';
		int ri = res_index(c, item);
		if (ri < 0 || !(c->resources[ri].access & CAT_READ)) {
			rc = errf(err, errlen, LINLI_EINVAL,
				  "poll: class %s has no readable resource '%s'", c->name, item);
			break;
		}
		for (int j = 0; j < got && v; j++)
			if (v[j].res == ri) {
				rc = errf(err, errlen, LINLI_EINVAL, "poll: '%s' is listed twice",
					  item);
				break;
			}
		if (rc)
			break;
		if (v) {
			v[got].d = d;
			v[got].res = ri;
			v[got].every_s = (uint32_t)secs;
		}
		got++;
		p = e ? e + 1 : p + len;
		if (e && !*p) {
			rc = errf(err, errlen, LINLI_EINVAL, "poll: ends with a comma");
			break;
		}
	}
	if (rc) {
		free(v);
		return rc;
	}
	if (d) {
		d->polls = v;
		d->n_polls = got;
	}
	return 0;
}

static void poll_fire(struct kernel *k, void *arg)
{
	(void)k;
	struct hal_poll *p = arg;
	struct hal_dev *d = p->d;
	if (!d->open || !d->drv || !d->drv->ops.read)
		return;
	const char *res = d->cls->resources[p->res].name;
	struct wd_frame wd;
	wd_enter(&wd, d->drv->owner, "driver read", d->id, 0);
	int rc = d->drv->ops.read(d->drv->ctx, &d->pub, res);
	wd_leave(&wd);
	if (rc && !d->poll_warned) {
		log_warn("hal", "device %s (%s): poll of '%s' failed: %s (logged once)", d->id,
			 d->cls->name, res, linli_strerror(rc));
		d->poll_warned = true;
	}
}

static void polls_start(struct hal *h, struct hal_dev *d)
{
	if (!d->n_polls)
		return;
	if (!d->drv->ops.read) {
		if (!d->poll_warned)
			log_warn("hal",
				 "device %s: driver %s cannot read: poll schedule '%s' "
				 "ignored",
				 d->id, d->drv->name, d->poll_spec);
		d->poll_warned = true;
		return;
	}
	for (int i = 0; i < d->n_polls; i++) {
		uint64_t ms = (uint64_t)d->polls[i].every_s * 1000;
		d->polls[i].timer = kernel_timer_add(h->k, ms, ms, poll_fire, &d->polls[i]);
	}
}

static void polls_stop(struct hal *h, struct hal_dev *d)
{
	for (int i = 0; i < d->n_polls; i++)
		if (d->polls[i].timer) {
			kernel_timer_cancel(h->k, d->polls[i].timer);
			d->polls[i].timer = 0;
		}
}

/* ---- the store ---- */

/*
 * Pack the registry fields the HAL owns, as a new record, with where the device
 * is installed (building, floor, grid, the place on the floor's plan: given at
 * `devices add`, kept as data for applications and the big screen's map; the store
 * checks them against the catalog).
 */
static void pack_new_record(const struct hal_dev *d, const struct hal_dev_spec *s,
			    msgpack_packer *pk)
{
	bool building = s->building && *s->building, grid = s->grid && *s->grid;
	int n = 4 + (d->name[0] != 0) + (d->poll_spec[0] != 0) + (d->cred[0] != 0) +
		(d->heartbeat_s > 0) + building + grid + s->has_floor + 2 * s->has_pos;
	msgpack_pack_map(pk, (size_t)n);
	mp_kv_str(pk, "class", d->cls->name);
	mp_kv_str(pk, "driver", d->driver);
	mp_kv_str(pk, "address", d->address);
	if (d->name[0])
		mp_kv_str(pk, "name", d->name);
	mp_kv_str(pk, "state", hal_state_name(d->state));
	if (d->poll_spec[0])
		mp_kv_str(pk, "poll", d->poll_spec);
	if (d->cred[0])
		mp_kv_str(pk, "credential", d->cred);
	if (d->heartbeat_s > 0)
		mp_kv_int(pk, "heartbeat", d->heartbeat_s);
	if (building)
		mp_kv_str(pk, "building", s->building);
	if (grid)
		mp_kv_str(pk, "grid", s->grid);
	if (s->has_floor)
		mp_kv_int(pk, "floor", s->floor);
	if (s->has_pos) {
		mp_kv_int(pk, "pos_x", s->pos_x);
		mp_kv_int(pk, "pos_y", s->pos_y);
	}
}

struct upd {
	const struct hal_dev *d;
	bool state, seen, cred;
};

/* store_update_fn: keep every other field, set the ones we own. */
static int upd_fn(void *ud, const msgpack_object *old, msgpack_packer *out, char *err,
		  size_t errlen)
{
	const struct upd *u = ud;
	if (!old || old->type != MSGPACK_OBJECT_MAP)
		return errf(err, errlen, LINLI_ENOENT, "devices: '%s' is not in the store",
			    u->d->id);
	const msgpack_object_map *m = &old->via.map;
	uint32_t keep = 0;
	for (uint32_t i = 0; i < m->size; i++) {
		const msgpack_object *k = &m->ptr[i].key;
		bool drop = (u->state && mp_eq(k, "state")) || (u->seen && mp_eq(k, "last_seen")) ||
			    (u->cred && mp_eq(k, "credential"));
		keep += !drop;
	}
	bool cred = u->cred && u->d->cred[0];
	bool seen = u->seen && u->d->last_seen > 0;
	msgpack_pack_map(out, keep + u->state + seen + cred);
	for (uint32_t i = 0; i < m->size; i++) {
		const msgpack_object *k = &m->ptr[i].key;
		if ((u->state && mp_eq(k, "state")) || (u->seen && mp_eq(k, "last_seen")) ||
		    (u->cred && mp_eq(k, "credential")))
			continue;
		msgpack_pack_object(out, *k);
		msgpack_pack_object(out, m->ptr[i].val);
	}
	if (u->state)
		mp_kv_str(out, "state", hal_state_name(u->d->state));
	if (seen)
		mp_kv_int(out, "last_seen", u->d->last_seen);
	if (cred)
		mp_kv_str(out, "credential", u->d->cred);
	return 0;
}

static int persist(struct hal *h, struct hal_dev *d, bool state, bool seen, bool cred, char *err,
		   size_t errlen)
{
	struct upd u = {d, state, seen, cred};
	char e[512];
	int rc = store_update(h->k->store, DATASET, d->scope, d->id, upd_fn, &u, e, sizeof e);
	if (rc) {
		if (err)
			errf(err, errlen, rc, "%s", e);
		else if (!d->gone_logged) {
			log_error("hal", "device %s: cannot write its state to the store: %s%s",
				  d->id, e,
				  rc == LINLI_ENOENT ? " (its record was deleted behind the device "
						       "layer's back; use 'devices remove')"
						     : "");
			d->gone_logged = rc == LINLI_ENOENT;
		}
		if (seen)
			d->dirty = false; /* retried with the next change, not every flush */
		return rc;
	}
	if (seen)
		d->dirty = false;
	return 0;
}

/* ---- devices ---- */

static void dev_free(struct hal_dev *d)
{
	if (!d)
		return;
	if (d->latest && d->cls)
		for (int i = 0; i < d->cls->n_resources; i++)
			free(d->latest[i].s);
	free(d->latest);
	free(d->polls);
	free(d->driver);
	free(d->address);
	free(d->name);
	free(d->poll_spec);
	catalog_unref(d->cat);
	free(d);
}

static struct hal_dev *dev_new(struct hal *h, const char *id, const char *scope,
			       const struct cat_device_class *cls, const char *driver,
			       const char *address, const char *name, const char *poll)
{
	struct hal_dev *d = calloc(1, sizeof *d);
	if (!d)
		return NULL;
	d->h = h;
	snprintf(d->id, sizeof d->id, "%s", id);
	snprintf(d->scope, sizeof d->scope, "%s", scope);
	d->cls = cls; /* from h->k->catalog, the version in use now (kernel thread) */
	d->cat = catalog_ref(h->k->catalog);
	d->driver = strdup(driver);
	d->address = strdup(address);
	d->name = strdup(name ? name : "");
	d->poll_spec = strdup(poll ? poll : "");
	d->latest = calloc((size_t)(cls->n_resources ? cls->n_resources : 1), sizeof *d->latest);
	if (!d->driver || !d->address || !d->name || !d->poll_spec || !d->latest) {
		dev_free(d);
		return NULL;
	}
	d->topic_len = (size_t)snprintf(d->topic, sizeof d->topic, "dev/%s/%s/", cls->name, id);
	d->pub = (struct linli_device){.size = sizeof(struct linli_device),
				       .id = d->id,
				       .class_name = cls->name,
				       .address = d->address,
				       .scope = d->scope,
				       .name = d->name};
	d->state = HAL_UNAVAILABLE;
	d->heard_mono = mono(h);
	return d;
}

/* Publish an availability change as an event of the device. */
static void publish_avail(struct hal *h, struct hal_dev *d, const char *what, const char *why)
{
	char topic[BUS_TOPIC_MAX + 1];
	snprintf(topic, sizeof topic, "%sevent/%s", d->topic, what);
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 6);
	mp_kv_str(&pk, "device", d->id);
	mp_kv_str(&pk, "class", d->cls->name);
	mp_kv_str(&pk, "event", what);
	mp_kv_str(&pk, "severity", strcmp(what, "online") == 0 ? "info" : "major");
	mp_kv_int(&pk, "time", wall_ms());
	mp_str(&pk, "data");
	msgpack_pack_map(&pk, 3);
	mp_kv_str(&pk, "reason", why);
	mp_kv_int(&pk, "heartbeat_s", heartbeat_s(d));
	mp_str(&pk, "last_seen");
	if (d->last_seen)
		msgpack_pack_int64(&pk, d->last_seen);
	else
		msgpack_pack_nil(&pk);
	struct bus_msg m = {.topic = topic,
			    .publisher = "hal",
			    .scope = d->scope,
			    .payload = sb.data,
			    .payload_len = sb.size};
	char err[320];
	if (h->k->bus && bus_publish(h->k->bus, &m, NULL, err, sizeof err) != 0)
		log_error("hal", "device %s: cannot publish %s: %s", d->id, topic, err);
	msgpack_sbuffer_destroy(&sb);
}

/* Change d's state: logged once per change, published, written to the store. */
static void set_state(struct hal *h, struct hal_dev *d, enum hal_state st, const char *why)
{
	if (d->state == st)
		return;
	d->state = st;
	if (st == HAL_ONLINE)
		log_msg(d->first_word ? LOG_DEBUG : LOG_INFO, "hal", "device %s (%s) online: %s",
			d->id, d->cls->name, why);
	else
		log_warn("hal", "device %s (%s) unavailable: %s", d->id, d->cls->name, why);
	publish_avail(h, d, st == HAL_ONLINE ? "online" : "unavailable", why);
	persist(h, d, true, true, false, NULL, 0);
}

/* The device spoke: liveness, and online if it was not. */
static void heard(struct hal *h, struct hal_dev *d, int64_t when)
{
	bool first = d->last_seen == 0;
	d->heard_mono = mono(h);
	if (when > d->last_seen)
		d->last_seen = when;
	d->dirty = true;
	if (d->state != HAL_ONLINE) {
		/* A device's first word ever is not news: logged at debug, still published. */
		d->first_word = first;
		set_state(h, d, HAL_ONLINE, first ? "first word from it" : "heard from it again");
		d->first_word = false;
	}
}

static void retry_fire(struct kernel *k, void *arg);

static void dev_open(struct hal *h, struct hal_dev *d)
{
	if (d->open || !d->drv)
		return;
	if (d->retry_timer) { /* an attempt now replaces the scheduled one */
		kernel_timer_cancel(h->k, d->retry_timer);
		d->retry_timer = 0;
	}
	char err[256] = "";
	d->pub.driver_data = NULL;
	struct wd_frame wd;
	wd_enter(&wd, d->drv->owner, "driver open", d->id, 0);
	int rc = d->drv->ops.open(d->drv->ctx, &d->pub, err, sizeof err);
	wd_leave(&wd);
	if (rc) {
		snprintf(d->open_error, sizeof d->open_error, "%s",
			 err[0] ? err : linli_strerror(rc));
		d->open_failures++;
		d->retry_ms = d->retry_ms ? d->retry_ms * 2 : 1000;
		if (d->retry_ms > HAL_RETRY_MAX_MS)
			d->retry_ms = HAL_RETRY_MAX_MS;
		if (d->open_failures == 1)
			log_warn("hal",
				 "device %s (%s): driver %s cannot open '%s': %s; retrying (up to "
				 "every %d s, logged once)",
				 d->id, d->cls->name, d->drv->name, d->address, d->open_error,
				 HAL_RETRY_MAX_MS / 1000);
		if (d->state != HAL_UNAVAILABLE) {
			char why[320];
			snprintf(why, sizeof why, "open failed: %s", d->open_error);
			set_state(h, d, HAL_UNAVAILABLE, why);
		}
		d->retry_timer = kernel_timer_add(h->k, d->retry_ms, 0, retry_fire, d);
		return;
	}
	if (d->open_failures)
		log_info("hal", "device %s (%s): opened after %u failed attempt(s)", d->id,
			 d->cls->name, d->open_failures);
	d->open = true;
	d->open_error[0] = '\0';
	d->open_failures = 0;
	d->retry_ms = 0;
	d->heard_mono = mono(h); /* a full heartbeat from now before it counts as silent */
	polls_start(h, d);
}

static void retry_fire(struct kernel *k, void *arg)
{
	(void)k;
	struct hal_dev *d = arg;
	d->retry_timer = 0;
	dev_open(d->h, d);
}

static void fail_commands(struct hal *h, struct hal_dev *d, struct hal_driver *drv,
			  const char *why);

static void dev_close(struct hal *h, struct hal_dev *d)
{
	if (d->retry_timer) {
		kernel_timer_cancel(h->k, d->retry_timer);
		d->retry_timer = 0;
	}
	polls_stop(h, d);
	if (d->open && d->drv) {
		struct wd_frame wd;
		wd_enter(&wd, d->drv->owner, "driver close", d->id, 0);
		d->drv->ops.close(d->drv->ctx, &d->pub);
		wd_leave(&wd);
	}
	d->open = false;
	d->pub.driver_data = NULL;
}

/* ---- drivers ---- */

/* Ops-table sizes of the SDK's minors, index = minor. */
static const uint32_t ops_sizes[] = {(uint32_t)LINLI_DRIVER_OPS_SIZE_1_0,
				     (uint32_t)LINLI_DRIVER_OPS_SIZE_1_1};
_Static_assert(sizeof ops_sizes / sizeof ops_sizes[0] == LINLI_SDK_MINOR + 1,
	       "add the driver ops size of the new SDK minor to ops_sizes");
_Static_assert(LINLI_DRIVER_OPS_SIZE_1_1 == sizeof(struct linli_driver_ops),
	       "struct linli_driver_ops grew: add a size for the new minor");

int hal_driver_add(struct hal *h, const char *name, const struct linli_driver_ops *ops,
		   linli_ctx *ctx, const char *owner, struct hal_driver **out, char *err,
		   size_t errlen)
{
	if (!is_ident(name, LINLI_NAME_MAX))
		return errf(err, errlen, LINLI_EINVAL,
			    "driver name '%.40s' must match [a-z][a-z0-9_]*, at most %d bytes",
			    name ? name : "", LINLI_NAME_MAX - 1);
	if (!ops)
		return errf(err, errlen, LINLI_EINVAL, "driver %s: no ops table", name);
	bool known = false;
	for (size_t i = 0; i < sizeof ops_sizes / sizeof ops_sizes[0]; i++)
		known |= ops->size == ops_sizes[i];
	if (!known)
		return errf(err, errlen, LINLI_EVERSION,
			    "driver %s: ops table of %u bytes is not the size of an SDK %s ops "
			    "table (%u bytes): rebuild the driver against SDK %s",
			    name, ops->size, LINLI_SDK_VERSION, ops_sizes[LINLI_SDK_MINOR],
			    LINLI_SDK_VERSION);
	if (!ops->open || !ops->close)
		return errf(err, errlen, LINLI_EINVAL, "driver %s: ops table lacks %s", name,
			    !ops->open ? "open" : "close");
	struct hal_driver *o = hal_driver_find(h, name);
	if (o)
		return errf(err, errlen, LINLI_EEXIST, "driver %s is registered already (by %s)",
			    name, o->owner);
	struct hal_driver *d = calloc(1, sizeof *d);
	if (!d)
		return LINLI_ENOMEM;
	d->h = h;
	d->id = ++h->next_driver_id;
	snprintf(d->name, sizeof d->name, "%s", name);
	snprintf(d->owner, sizeof d->owner, "%s", owner ? owner : name);
	memcpy(&d->ops, ops, ops->size < sizeof d->ops ? ops->size : sizeof d->ops);
	d->ops.size = sizeof d->ops;
	d->ctx = ctx;
	d->next = h->drivers;
	h->drivers = d;
	log_info("hal", "driver %s registered by %s", d->name, d->owner);
	if (out)
		*out = d;
	return 0;
}

void hal_driver_attach(struct hal *h, struct hal_driver *d)
{
	int n = 0;
	for (size_t i = 0; i < h->tab_cap; i++)
		for (struct hal_dev *e = h->tab[i]; e; e = e->hnext)
			if (!e->drv && strcmp(e->driver, d->name) == 0) {
				e->drv = d;
				n++;
			}
	/* Open in id order: drivers and logs see a stable sequence. */
	struct hal_dev **v = NULL;
	int cnt = hal_list(h, NULL, &v);
	for (int i = 0; i < cnt; i++)
		if (v[i]->drv == d && !v[i]->open)
			dev_open(h, v[i]);
	free(v);
	if (n)
		log_info("hal", "driver %s: %d registered device(s) attached", d->name, n);
	if (d->ops.discover) {
		d->found = 0;
		struct wd_frame wd;
		wd_enter(&wd, d->owner, "driver discover", NULL, 0);
		int rc = d->ops.discover(d->ctx);
		wd_leave(&wd);
		if (rc)
			log_warn("hal", "driver %s: discover failed: %s", d->name,
				 linli_strerror(rc));
		if (d->found)
			log_info("hal", "driver %s: discover registered %d new device(s)", d->name,
				 d->found);
	}
}

int hal_attach_all(struct hal *h)
{
	int n = 0;
	for (uint64_t id = 1; id <= h->next_driver_id; id++) {
		struct hal_driver *d = hal_driver_by_id(h, id);
		if (d) {
			hal_driver_attach(h, d);
			n++;
		}
	}
	return n;
}

void hal_driver_quiesce(struct hal *h, struct hal_driver *d)
{
	for (size_t i = 0; i < h->tab_cap; i++)
		for (struct hal_dev *e = h->tab[i]; e; e = e->hnext)
			if (e->drv == d)
				dev_close(h, e);
}

void hal_driver_remove(struct hal *h, struct hal_driver *d)
{
	if (!d)
		return;
	hal_driver_quiesce(h, d);
	fail_commands(h, NULL, d, "its driver stopped");
	for (size_t i = 0; i < h->tab_cap; i++)
		for (struct hal_dev *e = h->tab[i]; e; e = e->hnext)
			if (e->drv == d)
				e->drv = NULL;
	for (struct hal_driver **pp = &h->drivers; *pp; pp = &(*pp)->next)
		if (*pp == d) {
			*pp = d->next;
			break;
		}
	log_info("hal", "driver %s unregistered", d->name);
	free(d);
}

/* ---- readings ---- */

static const char *type_word(int t)
{
	switch (t) {
	case LINLI_T_INT:
		return "an integer";
	case LINLI_T_UINT:
		return "an unsigned integer";
	case LINLI_T_FLOAT:
		return "a float";
	case LINLI_T_BOOL:
		return "a boolean";
	case LINLI_T_STR:
		return "a string";
	case LINLI_T_NIL:
		return "nil";
	case LINLI_T_BIN:
		return "bytes";
	case LINLI_T_MAP:
		return "a map";
	case LINLI_T_ARRAY:
		return "an array";
	}
	return "no value";
}

static const char *cat_word(enum cat_type t)
{
	switch (t) {
	case CAT_INTEGER:
		return "an integer";
	case CAT_FLOAT:
		return "a float";
	case CAT_BOOLEAN:
		return "a boolean";
	case CAT_STRING:
		return "a string";
	case CAT_ENUM:
		return "one of its values";
	default:
		return cat_type_name(t);
	}
}

/* Show a value in a message. */
static void show_val(const struct hal_val *v, char *buf, size_t n)
{
	switch (v->type) {
	case LINLI_T_INT:
		snprintf(buf, n, "%" PRId64, v->i);
		break;
	case LINLI_T_FLOAT:
		snprintf(buf, n, "%g", v->f);
		break;
	case LINLI_T_BOOL:
		snprintf(buf, n, "%s", v->b ? "true" : "false");
		break;
	case LINLI_T_STR:
		snprintf(buf, n, "'%.*s'", (int)(v->len > 40 ? 40 : v->len), v->s ? v->s : "");
		break;
	default:
		snprintf(buf, n, "%s", type_word(v->type));
	}
}

static void enum_list(const struct cat_field *f, char *buf, size_t n)
{
	size_t o = 0;
	buf[0] = '\0';
	for (int i = 0; i < f->n_values && o + 1 < n; i++)
		o += (size_t)snprintf(buf + o, n - o, "%s%s", i ? ", " : "", f->values[i]);
}

/*
 * Check v against f (a resource or argument), normalising into *out (an
 * integer becomes a float for a float slot). Returns 0, HAL_REF_TYPE + 1 or
 * HAL_REF_RANGE + 1 with the reason in why.
 */
static int check_value(const struct cat_field *f, const struct hal_val *v, struct hal_val *out,
		       char *why, size_t n)
{
	*out = *v;
	char shown[64];
	switch (f->type) {
	case CAT_INTEGER:
		if (v->type != LINLI_T_INT)
			goto type;
		if ((f->has_min && v->i < f->imin) || (f->has_max && v->i > f->imax))
			goto range;
		return 0;
	case CAT_FLOAT:
		if (v->type == LINLI_T_INT) {
			out->type = LINLI_T_FLOAT;
			out->f = (double)v->i;
		} else if (v->type != LINLI_T_FLOAT)
			goto type;
		if (!isfinite(out->f)) {
			snprintf(why, n, "%s is not a finite number",
				 isnan(out->f) ? "NaN" : "inf");
			return HAL_REF_RANGE + 1;
		}
		if ((f->has_min && out->f < f->fmin) || (f->has_max && out->f > f->fmax))
			goto range;
		return 0;
	case CAT_BOOLEAN:
		if (v->type != LINLI_T_BOOL)
			goto type;
		return 0;
	case CAT_STRING:
	case CAT_ENUM:
		if (v->type != LINLI_T_STR || !v->s)
			goto type;
		if (v->len > HAL_STR_MAX) {
			snprintf(why, n, "a string of %zu bytes is longer than %d", v->len,
				 HAL_STR_MAX);
			return HAL_REF_RANGE + 1;
		}
		if (!record_utf8_valid(v->s, v->len) || memchr(v->s, 0, v->len)) {
			snprintf(why, n, "not valid UTF-8 text");
			return HAL_REF_TYPE + 1;
		}
		if (f->type == CAT_ENUM) {
			for (int i = 0; i < f->n_values; i++)
				if (strlen(f->values[i]) == v->len &&
				    memcmp(f->values[i], v->s, v->len) == 0)
					return 0;
			char list[256];
			enum_list(f, list, sizeof list);
			show_val(v, shown, sizeof shown);
			snprintf(why, n, "%s is not one of %s", shown, list);
			return HAL_REF_RANGE + 1;
		}
		return 0;
	default:
		goto type;
	}
type:
	show_val(v, shown, sizeof shown);
	snprintf(why, n, "%s is %s, not %s", shown, type_word(v->type), cat_word(f->type));
	return HAL_REF_TYPE + 1;
range:
	show_val(out, shown, sizeof shown);
	if (f->type == CAT_INTEGER) {
		char lo[32] = "-inf", hi[32] = "inf";
		if (f->has_min)
			snprintf(lo, sizeof lo, "%" PRId64, f->imin);
		if (f->has_max)
			snprintf(hi, sizeof hi, "%" PRId64, f->imax);
		snprintf(why, n, "%s is outside %s..%s%s%s", shown, lo, hi, f->unit ? " " : "",
			 f->unit ? f->unit : "");
	} else {
		char lo[32] = "-inf", hi[32] = "inf";
		if (f->has_min)
			snprintf(lo, sizeof lo, "%g", f->fmin);
		if (f->has_max)
			snprintf(hi, sizeof hi, "%g", f->fmax);
		snprintf(why, n, "%s is outside %s..%s%s%s", shown, lo, hi, f->unit ? " " : "",
			 f->unit ? f->unit : "");
	}
	return HAL_REF_RANGE + 1;
}

/* Count a refusal on d; log it the first time this kind happens to d. */
static void refuse(struct hal *h, struct hal_dev *d, enum hal_refusal kind, const char *what)
{
	d->refused[kind]++;
	h->refused++;
	snprintf(d->last_refusal, sizeof d->last_refusal, "%s", what);
	if (d->logged & (1u << kind))
		return;
	d->logged |= 1u << kind;
	log_warn("hal",
		 "device %s (%s): %s (refused; further %s refusals of this device are "
		 "counted, not logged)",
		 d->id, d->cls->name, what, refusal_names[kind]);
}

static void foreign(struct hal *h, linli_ctx *from, const char *dev, const char *what)
{
	struct hal_driver *drv = hal_driver_of(h, from);
	h->refused++;
	if (!drv)
		return;
	drv->foreign++;
	if (!drv->foreign_logged) {
		log_warn("hal",
			 "driver %s: %s for device '%.48s' refused: %s (further ones are "
			 "counted, not logged)",
			 drv->name, what, dev ? dev : "",
			 hal_find(h, dev) ? "not its device" : "no such device");
		drv->foreign_logged = true;
	}
}

static void pack_val(msgpack_packer *pk, const struct hal_val *v)
{
	switch (v->type) {
	case LINLI_T_INT:
		msgpack_pack_int64(pk, v->i);
		break;
	case LINLI_T_FLOAT:
		msgpack_pack_double(pk, v->f);
		break;
	case LINLI_T_BOOL:
		if (v->b)
			msgpack_pack_true(pk);
		else
			msgpack_pack_false(pk);
		break;
	case LINLI_T_STR:
		msgpack_pack_str(pk, v->len);
		msgpack_pack_str_body(pk, v->s, v->len);
		break;
	default:
		msgpack_pack_nil(pk);
	}
}

static void keep_latest(struct hal_latest *l, const struct hal_val *v, int64_t t)
{
	l->type = v->type;
	l->time_ms = t;
	switch (v->type) {
	case LINLI_T_INT:
		l->i = v->i;
		break;
	case LINLI_T_FLOAT:
		l->f = v->f;
		break;
	case LINLI_T_BOOL:
		l->b = v->b;
		break;
	case LINLI_T_STR:
		if (v->len + 1 > l->scap) {
			char *s = realloc(l->s, v->len + 1);
			if (!s) {
				l->set = false;
				return;
			}
			l->s = s;
			l->scap = v->len + 1;
		}
		memcpy(l->s, v->s, v->len);
		l->s[v->len] = '\0';
		l->slen = v->len;
		break;
	}
	l->set = true;
}

int hal_reading(struct hal *h, linli_ctx *from, const char *dev, const char *res,
		const struct hal_val *v, int64_t time_ms)
{
	struct hal_dev *d = hal_find(h, dev);
	if (!d || !d->drv || d->drv->ctx != from) {
		foreign(h, from, dev, "a reading");
		return d ? LINLI_EPERM : LINLI_ENOENT;
	}
	int64_t t = time_ms > 0 ? time_ms : wall_ms();
	heard(h, d, t);
	int ri = res ? res_index(d->cls, res) : -1;
	char why[400];
	if (ri < 0 || !(d->cls->resources[ri].access & CAT_READ)) {
		snprintf(why, sizeof why, "reading of '%.64s': class %s has no %s resource '%.64s'",
			 res ? res : "", d->cls->name, ri < 0 ? "such" : "readable",
			 res ? res : "");
		refuse(h, d, HAL_REF_UNKNOWN, why);
		return LINLI_ENOENT;
	}
	const struct cat_field *f = &d->cls->resources[ri];
	struct hal_val nv;
	char reason[320];
	int bad = check_value(f, v, &nv, reason, sizeof reason);
	if (bad) {
		snprintf(why, sizeof why, "reading of '%s': %s", f->name, reason);
		refuse(h, d, (enum hal_refusal)(bad - 1), why);
		return LINLI_ESCHEMA;
	}
	d->readings++;
	h->readings++;
	if (h->keep_latest)
		keep_latest(&d->latest[ri], &nv, t);
	/* Topic: the device's prefix and the resource. */
	size_t rl = strlen(f->name);
	if (d->topic_len + rl > BUS_TOPIC_MAX)
		return LINLI_EINVAL;
	memcpy(d->topic + d->topic_len, f->name, rl + 1);
	h->sb.size = 0;
	msgpack_pack_map(&h->pk, 2);
	msgpack_pack_str(&h->pk, 5);
	msgpack_pack_str_body(&h->pk, "value", 5);
	pack_val(&h->pk, &nv);
	msgpack_pack_str(&h->pk, 4);
	msgpack_pack_str_body(&h->pk, "time", 4);
	msgpack_pack_int64(&h->pk, t);
	struct bus_msg m = {.topic = d->topic,
			    .publisher = d->drv->owner,
			    .scope = d->scope,
			    .payload = h->sb.data,
			    .payload_len = h->sb.size};
	char err[320];
	int rc = bus_publish(h->k->bus, &m, NULL, err, sizeof err);
	d->topic[d->topic_len] = '\0';
	return rc;
}

/* ---- events ---- */

/* The driver says dev is online or unavailable (dev_available), on the kernel thread. */
static int avail_now(struct hal *h, linli_ctx *from, const char *dev, bool online, const char *why,
		     char *err, size_t errlen)
{
	struct hal_dev *d = hal_find(h, dev);
	if (!d || !d->drv || d->drv->ctx != from) {
		foreign(h, from, dev, "an availability");
		return errf(err, errlen, d ? LINLI_EPERM : LINLI_ENOENT,
			    "availability of '%.48s': %s", dev,
			    d ? "not a device of this driver" : "no such device");
	}
	char w[260];
	snprintf(w, sizeof w, "its driver says so%s%.200s", why && why[0] ? ": " : "",
		 why ? why : "");
	if (online) {
		int64_t t = wall_ms();
		d->heard_mono = mono(h);
		if (t > d->last_seen)
			d->last_seen = t;
		d->dirty = true;
	}
	set_state(h, d, online ? HAL_ONLINE : HAL_UNAVAILABLE, w);
	return 0;
}

static int event_now(struct hal *h, linli_ctx *from, const char *dev, const char *event,
		     const void *data, size_t len, int64_t time_ms, char *err, size_t errlen)
{
	struct hal_dev *d = hal_find(h, dev);
	if (!d || !d->drv || d->drv->ctx != from) {
		foreign(h, from, dev, "an event");
		return errf(err, errlen, d ? LINLI_EPERM : LINLI_ENOENT, "event %s of '%.48s': %s",
			    event ? event : "", dev ? dev : "",
			    d ? "not a device of this driver" : "no such device");
	}
	int64_t t = time_ms > 0 ? time_ms : wall_ms();
	heard(h, d, t);
	const struct cat_event *ce = NULL;
	for (int i = 0; event && i < d->cls->n_events; i++)
		if (strcmp(d->cls->events[i].name, event) == 0)
			ce = &d->cls->events[i];
	char why[200];
	if (!ce) {
		snprintf(why, sizeof why, "event '%.64s': class %s has no such event",
			 event ? event : "", d->cls->name);
		refuse(h, d, HAL_REF_EVENT, why);
		return errf(err, errlen, LINLI_ESCHEMA, "%s", why);
	}
	d->events++;
	h->events++;
	char topic[BUS_TOPIC_MAX + 1];
	snprintf(topic, sizeof topic, "%sevent/%s", d->topic, ce->name);
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 6);
	mp_kv_str(&pk, "device", d->id);
	mp_kv_str(&pk, "class", d->cls->name);
	mp_kv_str(&pk, "event", ce->name);
	mp_kv_str(&pk, "severity", cat_severity_name(ce->severity));
	mp_kv_int(&pk, "time", t);
	mp_str(&pk, "data");
	if (data && len)
		msgpack_sbuffer_write(&sb, data, len);
	else
		msgpack_pack_map(&pk, 0);
	struct bus_msg m = {.topic = topic,
			    .publisher = d->drv->owner,
			    .scope = d->scope,
			    .payload = sb.data,
			    .payload_len = sb.size};
	int rc = bus_publish(h->k->bus, &m, NULL, err, errlen);
	if (rc)
		log_error("hal", "device %s: event %s not published: %s", d->id, ce->name, err);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

/* ---- availability ---- */

void hal_sweep(struct hal *h)
{
	uint64_t now = mono(h);
	for (size_t i = 0; i < h->tab_cap; i++)
		for (struct hal_dev *d = h->tab[i]; d; d = d->hnext) {
			if (d->state != HAL_ONLINE)
				continue;
			uint64_t hb = (uint64_t)heartbeat_s(d) * 1000;
			if (now - d->heard_mono <= hb)
				continue;
			char why[160];
			snprintf(why, sizeof why,
				 "silent for %" PRIu64 " s (heartbeat %" PRId64 " s)",
				 (now - d->heard_mono) / 1000, heartbeat_s(d));
			set_state(h, d, HAL_UNAVAILABLE, why);
		}
}

void hal_flush(struct hal *h)
{
	for (size_t i = 0; i < h->tab_cap; i++)
		for (struct hal_dev *d = h->tab[i]; d; d = d->hnext)
			if (d->dirty)
				persist(h, d, false, true, false, NULL, 0);
}

static void sweep_fire(struct kernel *k, void *arg)
{
	(void)k;
	hal_sweep(arg);
}

static void flush_fire(struct kernel *k, void *arg)
{
	(void)k;
	hal_flush(arg);
}

/* ---- commands ---- */

static struct hal_cmd *cmd_unlink(struct hal *h, uint64_t req)
{
	for (struct hal_cmd **pp = &h->cmds; *pp; pp = &(*pp)->next)
		if ((*pp)->req == req) {
			struct hal_cmd *c = *pp;
			*pp = c->next;
			if (c->timer)
				kernel_timer_cancel(h->k, c->timer);
			c->timer = 0;
			return c;
		}
	return NULL;
}

static void audit_result(const struct hal_cmd *c, int rc, const char *msg, uint64_t ms)
{
	if (c->has_p && c->d) {
		struct tier_principal p = {c->pkind, c->pname, c->pscope, ROLE_NONE, NULL, NULL, NULL};
		char detail[400];
		if (rc == 0)
			snprintf(detail, sizeof detail, "#%" PRIu64 " %s: ok in %" PRIu64 " ms", c->req,
				 c->what, ms);
		else
			snprintf(detail, sizeof detail, "#%" PRIu64 " %s: %s: %s", c->req, c->what,
				 linli_errname(rc), msg && *msg ? msg : linli_strerror(rc));
		tiers_audit(c->h->k, &p, "device.command.result", c->d->scope, c->d->id, "allowed",
			    detail);
	}
	if (rc == 0)
		log_info("audit", "device.command #%" PRIu64 " %s %s by %s: ok in %" PRIu64 " ms",
			 c->req, c->d ? c->d->id : "?", c->what, c->who, ms);
	else
		log_info("audit", "device.command #%" PRIu64 " %s %s by %s: %s: %s", c->req,
			 c->d ? c->d->id : "?", c->what, c->who, linli_errname(rc),
			 msg && *msg ? msg : linli_strerror(rc));
}

static void cmd_finish_(struct hal *h, struct hal_cmd *c, int rc, const void *res, size_t len,
			const char *msg)
{
	uint64_t ms = mono(h) - c->started;
	audit_result(c, rc, msg, ms);
	if (rc == LINLI_ETIMEDOUT)
		h->timeouts++;
	if (c->done)
		c->done(c->arg, rc, res, len, msg ? msg : "");
	free(c);
}

static void cmd_timeout(struct kernel *k, void *arg)
{
	(void)k;
	struct hal_cmd *c = arg;
	struct hal *h = c->h;
	c->timer = 0; /* a one-shot timer is gone once it fires */
	struct hal_cmd *u = cmd_unlink(h, c->req);
	if (!u)
		return;
	char msg[256];
	snprintf(msg, sizeof msg, "device %s did not answer '%s' within %u ms", c->d->id, c->what,
		 c->timeout_ms);
	cmd_finish_(h, c, LINLI_ETIMEDOUT, NULL, 0, msg);
}

/* Fail the pending commands of device d (or of every device of drv). */
static void fail_commands(struct hal *h, struct hal_dev *d, struct hal_driver *drv, const char *why)
{
	for (;;) {
		struct hal_cmd *c = h->cmds;
		while (c && !(d ? c->d == d : c->d->drv == drv))
			c = c->next;
		if (!c)
			return;
		cmd_unlink(h, c->req);
		char msg[256];
		snprintf(msg, sizeof msg, "device %s: %s before answering '%s'", c->d->id, why,
			 c->what);
		cmd_finish_(h, c, LINLI_ESTATE, NULL, 0, msg);
	}
}

void hal_command_cancel(struct hal *h, uint64_t req)
{
	struct hal_cmd *c = cmd_unlink(h, req);
	if (c) {
		log_info("audit",
			 "device.command #%" PRIu64 " %s %s by %s: abandoned by its sender", c->req,
			 c->d->id, c->what, c->who);
		free(c);
	}
}

/* Read field `name` of record r as a hal_val (strings borrowed). */
static int rec_val(const linli_record *r, const char *name, struct hal_val *v)
{
	memset(v, 0, sizeof *v);
	v->type = record_type(r, name);
	switch (v->type) {
	case LINLI_T_INT:
		return record_get_int(r, name, &v->i);
	case LINLI_T_FLOAT:
		return record_get_float(r, name, &v->f);
	case LINLI_T_BOOL:
		return record_get_bool(r, name, &v->b);
	case LINLI_T_STR:
		return record_get_str(r, name, &v->s, &v->len);
	default:
		return 0;
	}
}

/* Check a command's args (or a write's values) against the class. */
static int check_args(const struct hal_dev *d, const struct cat_command *cc,
		      const linli_record *args, char *err, size_t errlen)
{
	size_t n = args ? record_count(args) : 0;
	for (size_t i = 0; i < n; i++) {
		const char *key;
		record_key(args, i, &key);
		const struct cat_field *f = NULL;
		if (cc) {
			for (int j = 0; j < cc->n_args; j++)
				if (strcmp(cc->args[j].name, key) == 0)
					f = &cc->args[j];
			if (!f)
				return errf(err, errlen, LINLI_ESCHEMA,
					    "%s %s: unknown argument '%.64s'", d->cls->name,
					    cc->name, key);
		} else {
			int ri = res_index(d->cls, key);
			if (ri < 0 || !(d->cls->resources[ri].access & CAT_WRITE))
				return errf(err, errlen, LINLI_ESCHEMA,
					    "%s: no %s resource '%.64s' to write", d->cls->name,
					    ri < 0 ? "such" : "writable", key);
			f = &d->cls->resources[ri];
		}
		struct hal_val v, nv;
		rec_val(args, key, &v);
		char why[320];
		if (check_value(f, &v, &nv, why, sizeof why))
			return errf(err, errlen, LINLI_ESCHEMA, "%s %s: '%s': %s", d->cls->name,
				    cc ? cc->name : "write", key, why);
	}
	if (cc)
		for (int j = 0; j < cc->n_args; j++)
			if (!args || !record_has(args, cc->args[j].name))
				return errf(err, errlen, LINLI_ESCHEMA,
					    "%s %s: argument '%s' (%s) is missing", d->cls->name,
					    cc->name, cc->args[j].name,
					    cat_type_name(cc->args[j].type));
	if (!cc && n == 0)
		return errf(err, errlen, LINLI_ESCHEMA, "write: no value given");
	return 0;
}

int hal_command(struct hal *h, const struct hal_cmd_req *r, uint64_t *req, char *err, size_t errlen)
{
	struct hal_dev *d = hal_find(h, r->device);
	if (!d)
		return errf(err, errlen, LINLI_ENOENT, "no device '%.48s'",
			    r->device ? r->device : "");
	const struct cat_command *cc = NULL;
	if (r->command) {
		for (int i = 0; i < d->cls->n_commands; i++)
			if (strcmp(d->cls->commands[i].name, r->command) == 0)
				cc = &d->cls->commands[i];
		if (!cc) {
			char list[512] = "";
			size_t o = 0;
			for (int i = 0; i < d->cls->n_commands && o + 1 < sizeof list; i++)
				o += (size_t)snprintf(list + o, sizeof list - o, "%s%s",
						      i ? ", " : "", d->cls->commands[i].name);
			return errf(err, errlen, LINLI_ENOENT,
				    "class %s has no command '%.64s' (it has: %s)", d->cls->name,
				    r->command, o ? list : "none");
		}
	}
	if (r->args && record_kind(r->args) != LINLI_T_MAP)
		return errf(err, errlen, LINLI_EINVAL, "arguments must be a map");
	int rc = check_args(d, cc, r->args, err, errlen);
	if (rc)
		return rc;
	if (!d->drv)
		return errf(err, errlen, LINLI_ESTATE, "device %s: driver %s is not loaded", d->id,
			    d->driver);
	if (!d->open)
		return errf(err, errlen, LINLI_ESTATE, "device %s is not open%s%s", d->id,
			    d->open_error[0] ? ": " : "", d->open_error);
	if (cc ? !d->drv->ops.command : !d->drv->ops.write)
		return errf(err, errlen, LINLI_ESTATE, "driver %s takes no %s", d->drv->name,
			    cc ? "commands" : "writes");
	uint32_t tmo = r->timeout_ms ? r->timeout_ms : HAL_CMD_TIMEOUT_MS;
	if (tmo > HAL_CMD_TIMEOUT_MAX_MS)
		return errf(err, errlen, LINLI_EINVAL, "timeout %u ms is above %d ms", tmo,
			    HAL_CMD_TIMEOUT_MAX_MS);
	struct hal_cmd *c = calloc(1, sizeof *c);
	if (!c)
		return LINLI_ENOMEM;
	c->h = h;
	c->req = ++h->next_req;
	c->d = d;
	snprintf(c->what, sizeof c->what, "%s", cc ? cc->name : "write");
	snprintf(c->who, sizeof c->who, "%s", r->who ? r->who : "?");
	c->timeout_ms = tmo;
	c->started = mono(h);
	c->done = r->done;
	c->arg = r->arg;
	char json[512] = "{}";
	if (r->args && record_to_json(r->args, json, sizeof json, NULL) == LINLI_E2BIG)
		snprintf(json, sizeof json, "{...}");
	log_info("audit", "device.command #%" PRIu64 " %s (%s at %s) %s %s by %s: sent", c->req,
		 d->id, d->cls->name, d->scope, c->what, json, c->who);
	if (r->principal) {
		c->has_p = true;
		c->pkind = r->principal->kind;
		snprintf(c->pname, sizeof c->pname, "%s", r->principal->name ? r->principal->name : "");
		snprintf(c->pscope, sizeof c->pscope, "%s",
			 r->principal->scope ? r->principal->scope : "");
		char detail[640];
		snprintf(detail, sizeof detail, "#%" PRIu64 " %s %s (%s)", c->req, c->what, json,
			 d->cls->name);
		tiers_audit(h->k, r->principal, "device.command", d->scope, d->id, "allowed", detail);
	}
	c->next = h->cmds;
	h->cmds = c;
	c->timer = kernel_timer_add(h->k, tmo, 0, cmd_timeout, c);
	linli_record *empty = NULL;
	const linli_record *args = r->args;
	if (!args && !(args = empty = record_new())) {
		cmd_unlink(h, c->req);
		free(c);
		return LINLI_ENOMEM;
	}
	struct wd_frame wd;
	wd_enter(&wd, d->drv->owner, cc ? "driver command" : "driver write", d->id, 0);
	rc = cc ? d->drv->ops.command(d->drv->ctx, &d->pub, c->req, cc->name, args)
		: d->drv->ops.write(d->drv->ctx, &d->pub, c->req, args);
	wd_leave(&wd);
	record_free(empty);
	if (rc) {
		struct hal_cmd *u = cmd_unlink(h, c->req);
		if (u) {
			audit_result(u, rc < 0 ? rc : LINLI_EIO, "refused by the driver", 0);
			free(u);
		}
		return errf(err, errlen, rc < 0 ? rc : LINLI_EIO, "driver %s refused %s %s: %s",
			    d->drv->name, d->id, cc ? cc->name : "write",
			    linli_strerror(rc < 0 ? rc : LINLI_EIO));
	}
	h->commands++;
	if (req)
		*req = c->req;
	return 0;
}

static void done_now(struct hal *h, linli_ctx *from, uint64_t req, int rc, const void *res,
		     size_t len, const char *msg)
{
	struct hal_cmd *c = NULL;
	for (c = h->cmds; c && c->req != req; c = c->next)
		;
	if (!c) {
		log_debug("hal",
			  "answer to request #%" PRIu64 " ignored: it timed out or was "
			  "cancelled",
			  req);
		return;
	}
	if (!c->d->drv || c->d->drv->ctx != from) {
		log_warn("hal", "answer to request #%" PRIu64 " ignored: not from the driver of %s",
			 req, c->d->id);
		return;
	}
	cmd_unlink(h, req);
	heard(h, c->d, wall_ms());
	cmd_finish_(h, c, rc, res, len, msg);
}

/* ---- the queue from drivers' threads ---- */

static void drain_fire(struct kernel *k, void *arg)
{
	(void)k;
	hal_drain(arg);
}

static size_t al8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

/*
 * Append one entry (caller holds qmu). Blobs b1..b3 of n1..n3 bytes. Returns
 * 0 or LINLI_ENOMEM.
 */
static int q_put(struct qbuf *q, struct qhdr *hd, const void *b1, const void *b2, const void *b3)
{
	size_t size = al8(sizeof *hd) + al8(hd->n1) + al8(hd->n2) + al8(hd->n3);
	if (q->len + size > q->cap) {
		size_t cap = q->cap ? q->cap : 65536;
		while (cap < q->len + size)
			cap *= 2;
		char *p = realloc(q->p, cap);
		if (!p)
			return LINLI_ENOMEM;
		q->p = p;
		q->cap = cap;
	}
	hd->size = (uint32_t)size;
	char *o = q->p + q->len;
	memcpy(o, hd, sizeof *hd);
	o += al8(sizeof *hd);
	if (hd->n1)
		memcpy(o, b1, hd->n1);
	o += al8(hd->n1);
	if (hd->n2)
		memcpy(o, b2, hd->n2);
	o += al8(hd->n2);
	if (hd->n3)
		memcpy(o, b3, hd->n3);
	q->len += size;
	return 0;
}

/* Hand the queue to the kernel if this is the first entry since the last drain. */
static int q_wake(struct hal *h)
{
	if (h->q_posted)
		return 0;
	int rc = kernel_post(h->k, drain_fire, h);
	if (rc == 0)
		h->q_posted = true;
	return rc;
}

/* ---- a driver thread waits for its event's commit (hal_event_wait) ---- */

static void waiter_unref(struct hal_waiter *w)
{
	/* the caller holds w->mu */
	bool last = --w->refs == 0;
	pthread_mutex_unlock(&w->mu);
	if (last) {
		pthread_mutex_destroy(&w->mu);
		pthread_cond_destroy(&w->cv);
		free(w);
	}
}

/* Answer w (off h->waiters already: the caller unlinked it under qmu) and drop the list's ref. */
static void waiter_answer(struct hal_waiter *w, int rc, const char *msg)
{
	pthread_mutex_lock(&w->mu);
	w->state = HW_DONE;
	w->rc = rc;
	snprintf(w->err, sizeof w->err, "%s", msg ? msg : "");
	pthread_cond_signal(&w->cv);
	waiter_unref(w);
}

/* Take the waiter `id` (or each in `state` of `from`, when id is 0) off the list. */
static struct hal_waiter *waiter_take(struct hal *h, uint64_t id, linli_ctx *from, int state)
{
	pthread_mutex_lock(&h->qmu);
	struct hal_waiter *w = NULL;
	for (struct hal_waiter **pp = &h->waiters; *pp; pp = &(*pp)->next)
		if (id ? (*pp)->id == id
		       : (!from || (*pp)->from == from) &&
			     (state < 0 || (int)(*pp)->state == state)) {
			w = *pp;
			*pp = w->next;
			w->next = NULL;
			break;
		}
	pthread_mutex_unlock(&h->qmu);
	return w;
}

/* Answer every waiter of `from` (every one: NULL) with rc. */
static void waiters_fail(struct hal *h, linli_ctx *from, int rc, const char *msg)
{
	struct hal_waiter *w;
	while ((w = waiter_take(h, 0, from, -1)) != NULL)
		waiter_answer(w, rc, msg);
}

/* The store's verdict on the batch that journaled the waited-for events. */
static void waiters_committed(void *arg, int rc, const char *msg)
{
	struct hal_commit_hook *hook = arg;
	struct hal *h = hook->h;
	free(hook);
	if (!h)
		return;
	h->hook = NULL;
	struct hal_waiter *w;
	while ((w = waiter_take(h, 0, NULL, HW_COMMIT)) != NULL)
		waiter_answer(w, rc, rc ? msg : NULL);
}

static void event_wait_now(struct hal *h, const struct qhdr *hd, const char *dev, const char *event,
			   const void *data)
{
	char err[320];
	int rc = event_now(h, hd->from, dev, event, data, hd->n3, hd->time_ms, err, sizeof err);
	struct hal_waiter *w = NULL;
	if (rc) {
		if ((w = waiter_take(h, hd->req, NULL, -1)) != NULL)
			waiter_answer(w, rc, err);
		return;
	}
	/* Journaled: durable when the batch commits. Nothing written: durable already. */
	if (!h->hook) {
		struct hal_commit_hook *hook = malloc(sizeof *hook);
		if (hook) {
			hook->h = h;
			if (h->k->store &&
			    store_on_commit(h->k->store, waiters_committed, hook) == 0)
				h->hook = hook;
			else
				free(hook);
		}
	}
	pthread_mutex_lock(&h->qmu);
	for (w = h->waiters; w && w->id != hd->req; w = w->next)
		;
	if (w && h->hook)
		w->state = HW_COMMIT;
	pthread_mutex_unlock(&h->qmu);
	if (w && !h->hook && (w = waiter_take(h, hd->req, NULL, -1)) != NULL)
		waiter_answer(w, 0, NULL);
}

int hal_event_wait(struct hal *h, linli_ctx *from, const char *dev, const char *event,
		   const void *data, size_t len, int64_t time_ms, uint32_t timeout_ms, char *err,
		   size_t errlen)
{
	if (kernel_on_thread(h->k))
		return errf(err, errlen, LINLI_ESTATE,
			    "dev_event_wait: called on the kernel thread, where waiting for the "
			    "commit would block it (use dev_event there)");
	if (!dev || !event)
		return errf(err, errlen, LINLI_EINVAL,
			    "dev_event_wait: device and event are required");
	if (timeout_ms > HAL_EVENT_WAIT_MAX_MS)
		return errf(err, errlen, LINLI_EINVAL,
			    "dev_event_wait: timeout %u ms is above %d ms", timeout_ms,
			    HAL_EVENT_WAIT_MAX_MS);
	size_t dl = strlen(dev), el = strlen(event);
	if (dl > STORE_ID_MAX || el > CAT_NAME_MAX || len > BUS_PAYLOAD_MAX / 2)
		return errf(err, errlen, LINLI_EINVAL,
			    "dev_event_wait: device, event or data too long");
	struct hal_waiter *w = calloc(1, sizeof *w);
	if (!w)
		return errf(err, errlen, LINLI_ENOMEM, "dev_event_wait: out of memory");
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&w->mu, NULL);
	w->from = from;
	w->refs = 2;
	struct qhdr hd = {.kind = Q_EVENT_WAIT,
			  .from = from,
			  .time_ms = time_ms,
			  .n1 = (uint32_t)dl + 1,
			  .n2 = (uint32_t)el + 1,
			  .n3 = (uint32_t)len};
	pthread_mutex_lock(&h->qmu);
	w->id = hd.req = ++h->next_waiter;
	int rc =
	    h->closed || h->stopping == from ? LINLI_ESTATE : q_put(&h->qin, &hd, dev, event, data);
	if (!rc && (rc = q_wake(h)) != 0)
		h->qin.len -= hd.size;
	if (!rc) {
		w->next = h->waiters;
		h->waiters = w;
	}
	pthread_mutex_unlock(&h->qmu);
	if (rc) {
		pthread_mutex_destroy(&w->mu);
		pthread_cond_destroy(&w->cv);
		free(w);
		return errf(err, errlen, rc, "dev_event_wait: %s",
			    rc == LINLI_ESTATE ? "linlid or the driver's plugin is stopping"
					       : linli_strerror(rc));
	}
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	uint64_t ms = timeout_ms ? timeout_ms : HAL_EVENT_WAIT_DEFAULT_MS;
	until.tv_sec += (time_t)(ms / 1000);
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&w->mu);
	int wr = 0;
	while (w->state != HW_DONE && wr != ETIMEDOUT)
		wr = pthread_cond_timedwait(&w->cv, &w->mu, &until);
	if (w->state == HW_DONE) {
		rc = w->rc;
		if (rc)
			errf(err, errlen, rc, "%s", w->err);
	} else
		rc = errf(err, errlen, LINLI_ETIMEDOUT,
			  "dev_event_wait: event %s of %s not committed within %llu ms", event, dev,
			  (unsigned long long)ms);
	/* Timed out: the hal still holds its ref and answers (into the void) later. */
	waiter_unref(w);
	return rc;
}

int hal_waiting(struct hal *h)
{
	int n = 0;
	pthread_mutex_lock(&h->qmu);
	for (struct hal_waiter *w = h->waiters; w; w = w->next)
		n++;
	pthread_mutex_unlock(&h->qmu);
	return n;
}

void hal_driver_waiters_fail(struct hal *h, linli_ctx *from, bool stopping)
{
	pthread_mutex_lock(&h->qmu);
	if (stopping)
		h->stopping = from;
	else if (h->stopping == from)
		h->stopping = NULL;
	pthread_mutex_unlock(&h->qmu);
	waiters_fail(h, from, LINLI_ESTATE, "dev_event_wait: the driver's plugin is stopping");
}

void hal_drain(struct hal *h)
{
	pthread_mutex_lock(&h->qmu);
	struct qbuf q = h->qin;
	h->qin = h->qwork;
	h->qin.len = 0;
	h->qwork = (struct qbuf){0};
	h->q_readings = 0;
	h->q_posted = false;
	pthread_mutex_unlock(&h->qmu);
	for (size_t off = 0; off < q.len;) {
		struct qhdr hd;
		memcpy(&hd, q.p + off, sizeof hd);
		const char *b1 = q.p + off + al8(sizeof hd);
		const char *b2 = b1 + al8(hd.n1);
		const char *b3 = b2 + al8(hd.n2);
		switch (hd.kind) {
		case Q_READING: {
			struct hal_val v = {.type = hd.type,
					    .i = hd.i,
					    .f = hd.f,
					    .b = hd.b,
					    .s = hd.n3 ? b3 : NULL,
					    .len = hd.n3 ? hd.n3 - 1 : 0};
			hal_reading(h, hd.from, b1, b2, &v, hd.time_ms);
			break;
		}
		case Q_EVENT: {
			char err[320];
			event_now(h, hd.from, b1, b2, b3, hd.n3, hd.time_ms, err, sizeof err);
			break;
		}
		case Q_DONE:
			done_now(h, hd.from, hd.req, hd.rc, b2, hd.n2, hd.n1 ? b1 : NULL);
			break;
		case Q_EVENT_WAIT:
			event_wait_now(h, &hd, b1, b2, b3);
			break;
		case Q_AVAIL: {
			char err[320];
			avail_now(h, hd.from, b1, hd.b, b2, err, sizeof err);
			break;
		}
		}
		off += hd.size;
	}
	/* Keep the larger buffer for the next round; free the other. */
	pthread_mutex_lock(&h->qmu);
	if (!h->qwork.p && q.cap) {
		q.len = 0;
		h->qwork = q;
	} else
		free(q.p);
	pthread_mutex_unlock(&h->qmu);
}

/* Copy reading i of the SDK array into a hal_val; false when malformed. */
static const struct linli_reading *reading_at(const struct linli_reading *r, size_t i)
{
	return (const struct linli_reading *)((const char *)r + i * r->size);
}

static bool sdk_val(const struct linli_reading *x, struct hal_val *v)
{
	*v = (struct hal_val){.type = x->type, .i = x->i, .f = x->f, .b = x->b, .s = x->s};
	if (x->type == LINLI_T_STR) {
		if (!x->s)
			return false;
		v->len = strlen(x->s);
	}
	return true;
}

int hal_post(struct hal *h, linli_ctx *from, const struct linli_reading *r, size_t n, char *err,
	     size_t errlen)
{
	if (!r || n == 0)
		return errf(err, errlen, LINLI_EINVAL, "dev_post: no readings");
	if (r->size < LINLI_READING_SIZE_1_0)
		return errf(err, errlen, LINLI_EINVAL,
			    "dev_post: struct linli_reading of %u bytes is smaller than SDK 1.0's "
			    "(%zu)",
			    r->size, (size_t)LINLI_READING_SIZE_1_0);
	if (kernel_on_thread(h->k)) {
		int first = 0;
		for (size_t i = 0; i < n; i++) {
			const struct linli_reading *x = reading_at(r, i);
			struct hal_val v;
			int rc = x->device && x->resource && sdk_val(x, &v)
				     ? hal_reading(h, from, x->device, x->resource, &v, x->time_ms)
				     : LINLI_EINVAL;
			if (rc && !first)
				first = rc;
		}
		if (first)
			errf(err, errlen, first, "dev_post: %s (see the log)",
			     linli_strerror(first));
		return first;
	}
	pthread_mutex_lock(&h->qmu);
	if (h->closed) {
		pthread_mutex_unlock(&h->qmu);
		return errf(err, errlen, LINLI_ESTATE, "dev_post: the kernel has stopped");
	}
	int limit = h->k->cfg.bus_telemetry_queue > 0 ? h->k->cfg.bus_telemetry_queue : 65536;
	if (h->q_readings + n > (size_t)limit) {
		pthread_mutex_unlock(&h->qmu);
		atomic_fetch_add(&h->shed, n);
		return errf(
		    err, errlen, LINLI_EBUSY,
		    "dev_post: %zu readings already wait for the kernel (bus.telemetry_queue "
		    "%d): shed",
		    h->q_readings, limit);
	}
	size_t mark = h->qin.len;
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		const struct linli_reading *x = reading_at(r, i);
		struct hal_val v;
		if (!x->device || !x->resource || !sdk_val(x, &v)) {
			rc = errf(err, errlen, LINLI_EINVAL, "dev_post: reading %zu lacks %s", i,
				  !x->device	 ? "a device"
				  : !x->resource ? "a resource"
						 : "its string");
			break;
		}
		size_t dl = strlen(x->device), rl = strlen(x->resource);
		if (dl > STORE_ID_MAX || rl > CAT_NAME_MAX || v.len > HAL_STR_MAX) {
			rc =
			    errf(err, errlen, LINLI_EINVAL, "dev_post: reading %zu: %s too long", i,
				 dl > STORE_ID_MAX   ? "device id"
				 : rl > CAT_NAME_MAX ? "resource"
						     : "string");
			break;
		}
		struct qhdr hd = {.kind = Q_READING,
				  .from = from,
				  .i = v.i,
				  .f = v.f,
				  .b = v.b,
				  .type = v.type,
				  .time_ms = x->time_ms,
				  .n1 = (uint32_t)dl + 1,
				  .n2 = (uint32_t)rl + 1,
				  .n3 = v.type == LINLI_T_STR ? (uint32_t)v.len + 1 : 0};
		rc = q_put(&h->qin, &hd, x->device, x->resource, v.s);
	}
	if (rc)
		h->qin.len = mark; /* all or nothing */
	else {
		h->q_readings += n;
		if ((rc = q_wake(h)) != 0) {
			h->qin.len = mark;
			h->q_readings -= n;
			errf(err, errlen, rc, "dev_post: the kernel has stopped");
		}
	}
	pthread_mutex_unlock(&h->qmu);
	return rc;
}

int hal_event(struct hal *h, linli_ctx *from, const char *dev, const char *event, const void *data,
	      size_t len, int64_t time_ms, char *err, size_t errlen)
{
	if (!dev || !event)
		return errf(err, errlen, LINLI_EINVAL, "dev_event: device and event are required");
	if (kernel_on_thread(h->k))
		return event_now(h, from, dev, event, data, len, time_ms, err, errlen);
	size_t dl = strlen(dev), el = strlen(event);
	if (dl > STORE_ID_MAX || el > CAT_NAME_MAX || len > BUS_PAYLOAD_MAX / 2)
		return errf(err, errlen, LINLI_EINVAL, "dev_event: device, event or data too long");
	struct qhdr hd = {.kind = Q_EVENT,
			  .from = from,
			  .time_ms = time_ms,
			  .n1 = (uint32_t)dl + 1,
			  .n2 = (uint32_t)el + 1,
			  .n3 = (uint32_t)len};
	pthread_mutex_lock(&h->qmu);
	int rc = h->closed ? LINLI_ESTATE : q_put(&h->qin, &hd, dev, event, data);
	if (!rc && (rc = q_wake(h)) != 0)
		h->qin.len -= hd.size;
	pthread_mutex_unlock(&h->qmu);
	if (rc)
		errf(err, errlen, rc, "dev_event: %s", linli_strerror(rc));
	return rc;
}

int hal_avail(struct hal *h, linli_ctx *from, const char *dev, bool online, const char *why,
	      char *err, size_t errlen)
{
	if (!dev)
		return errf(err, errlen, LINLI_EINVAL, "dev_available: the device is required");
	if (kernel_on_thread(h->k))
		return avail_now(h, from, dev, online, why, err, errlen);
	size_t dl = strlen(dev), wl = why ? strlen(why) : 0;
	if (dl > STORE_ID_MAX)
		return errf(err, errlen, LINLI_EINVAL, "dev_available: device id too long");
	if (wl > 200)
		wl = 200;
	char wbuf[201];
	if (wl)
		memcpy(wbuf, why, wl);
	wbuf[wl] = '\0';
	struct qhdr hd = {.kind = Q_AVAIL,
			  .from = from,
			  .b = online,
			  .n1 = (uint32_t)dl + 1,
			  .n2 = (uint32_t)wl + 1};
	pthread_mutex_lock(&h->qmu);
	int rc = h->closed ? LINLI_ESTATE : q_put(&h->qin, &hd, dev, wbuf, NULL);
	if (!rc && (rc = q_wake(h)) != 0)
		h->qin.len -= hd.size;
	pthread_mutex_unlock(&h->qmu);
	if (rc)
		errf(err, errlen, rc, "dev_available: %s", linli_strerror(rc));
	return rc;
}

int hal_command_done(struct hal *h, linli_ctx *from, uint64_t req, int rc, const void *result,
		     size_t len, const char *msg, char *err, size_t errlen)
{
	if (rc > 0)
		rc = LINLI_EIO;
	size_t ml = msg ? strlen(msg) : 0;
	if (ml > 1024)
		ml = 1024;
	if (len > BUS_PAYLOAD_MAX)
		return errf(err, errlen, LINLI_E2BIG, "dev_command_done: result of %zu bytes", len);
	char mbuf[1025];
	if (ml)
		memcpy(mbuf, msg, ml);
	mbuf[ml] = '\0';
	struct qhdr hd = {.kind = Q_DONE,
			  .from = from,
			  .req = req,
			  .rc = rc,
			  .n1 = ml ? (uint32_t)ml + 1 : 0,
			  .n2 = (uint32_t)len};
	/* Always through the queue: the sender hears after the op returned. */
	pthread_mutex_lock(&h->qmu);
	int r = h->closed ? LINLI_ESTATE : q_put(&h->qin, &hd, mbuf, result, NULL);
	if (!r && (r = q_wake(h)) != 0)
		h->qin.len -= hd.size;
	pthread_mutex_unlock(&h->qmu);
	if (r)
		errf(err, errlen, r, "dev_command_done: %s", linli_strerror(r));
	return r;
}

/* ---- the registry: add, remove, credential ---- */

struct wait {
	struct hal *h;
	char id[STORE_ID_MAX + 1];
	bool added;
	hal_done_fn done;
	void *arg;
};

static void dev_unregister(struct hal *h, struct hal_dev *d, const char *why)
{
	fail_commands(h, d, NULL, why);
	dev_close(h, d);
	tab_remove(h, d);
	dev_free(d);
}

static void wait_done(void *arg, int rc, const char *err)
{
	struct wait *w = arg;
	if (rc && w->added) {
		struct hal_dev *d = hal_find(w->h, w->id);
		if (d) {
			log_error("hal",
				  "device %s: registration lost, the store's commit failed: %s",
				  w->id, err ? err : linli_strerror(rc));
			dev_unregister(w->h, d, "its registration was lost");
		}
	}
	if (w->done)
		w->done(w->arg, rc, err ? err : "");
	free(w);
}

static int wait_commit(struct hal *h, const char *id, bool added, hal_done_fn done, void *arg,
		       char *err, size_t errlen)
{
	struct wait *w = calloc(1, sizeof *w);
	if (!w)
		return errf(err, errlen, LINLI_ENOMEM, "out of memory");
	w->h = h;
	snprintf(w->id, sizeof w->id, "%s", id);
	w->added = added;
	w->done = done;
	w->arg = arg;
	int rc = store_on_commit(h->k->store, wait_done, w);
	if (rc) {
		free(w);
		return errf(err, errlen, rc, "store: cannot wait for the commit: %s",
			    linli_strerror(rc));
	}
	return 0;
}

int hal_add(struct hal *h, const struct hal_dev_spec *s, hal_done_fn done, void *arg, char *err,
	    size_t errlen)
{
	if (!h->k->catalog || !catalog_dataset(h->k->catalog, DATASET))
		return errf(err, errlen, LINLI_ENOENT,
			    "the catalog has no '%s' dataset: no device registry", DATASET);
	if (!s->id || !store_id_ok(s->id))
		return errf(err, errlen, LINLI_EINVAL,
			    "bad device id '%.64s': [A-Za-z0-9][A-Za-z0-9_.:-]*, at most %d bytes",
			    s->id ? s->id : "", STORE_ID_MAX);
	const struct cat_device_class *cls =
	    s->class_name ? catalog_device_class(h->k->catalog, s->class_name) : NULL;
	if (!cls)
		return errf(err, errlen, LINLI_ENOENT,
			    "no device class '%.64s' in the catalog (see 'linli catalog list')",
			    s->class_name ? s->class_name : "");
	if (res_index(cls, "event") >= 0)
		return errf(err, errlen, LINLI_ESCHEMA,
			    "class %s has a resource named 'event', which would clash with its "
			    "event topics: rename it in the catalog",
			    cls->name);
	if (!s->driver || !hal_driver_find(h, s->driver)) {
		char list[256] = "";
		size_t o = 0;
		for (struct hal_driver *d = h->drivers; d && o + 1 < sizeof list; d = d->next)
			o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", o ? ", " : "",
					      d->name);
		return errf(err, errlen, LINLI_ENOENT, "no driver '%.32s' is loaded (loaded: %s)",
			    s->driver ? s->driver : "", o ? list : "none");
	}
	if (!s->address || !*s->address || strlen(s->address) > 256)
		return errf(err, errlen, LINLI_EINVAL,
			    "device %s: the address must be 1..256 bytes", s->id);
	if (s->name && strlen(s->name) > 64)
		return errf(err, errlen, LINLI_EINVAL,
			    "device %s: the name is longer than 64 bytes", s->id);
	if (s->heartbeat_s < 0 || s->heartbeat_s > 604800)
		return errf(err, errlen, LINLI_EINVAL,
			    "heartbeat %" PRId64 " s is outside 1..604800", s->heartbeat_s);
	const char *scope = s->scope && *s->scope ? s->scope : h->k->cfg.node_path;
	char why[128];
	if (!scope_check(scope, why, sizeof why))
		return errf(err, errlen, LINLI_EINVAL, "bad scope '%.64s': %s", scope, why);
	if (!scope_within(h->k->cfg.node_path, scope))
		return errf(err, errlen, LINLI_EINVAL, "scope %s is outside this node (%s)", scope,
			    h->k->cfg.node_path);
	/* A driver plugin installed for a subtree (--scope) drives devices there only. */
	struct hal_driver *sdrv = hal_driver_find(h, s->driver);
	if (sdrv->scope[0] && !scope_within(sdrv->scope, scope))
		return errf(err, errlen, LINLI_EPERM,
			    "device %s at %s: driver %s acts only in %s (installed with --scope)",
			    s->id, scope, s->driver, sdrv->scope);
	int rc = parse_polls(cls, s->poll, NULL, err, errlen);
	if (rc)
		return rc;
	if (s->poll && *s->poll && !hal_driver_find(h, s->driver)->ops.read)
		return errf(err, errlen, LINLI_EINVAL,
			    "driver %s cannot read: no poll schedule possible", s->driver);
	if (hal_find(h, s->id))
		return errf(err, errlen, LINLI_EEXIST, "device '%s' is registered already", s->id);
	struct hal_dev *d = dev_new(h, s->id, scope, cls, s->driver, s->address, s->name, s->poll);
	if (!d)
		return errf(err, errlen, LINLI_ENOMEM, "out of memory");
	d->heartbeat_s = s->heartbeat_s;
	if (s->credential)
		snprintf(d->cred, sizeof d->cred, "%s", s->credential);
	if ((rc = parse_polls(cls, s->poll, d, err, errlen)) != 0) {
		dev_free(d);
		return rc;
	}
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	pack_new_record(d, s, &pk);
	char e[512];
	rc = store_put(h->k->store, DATASET, scope, d->id, sb.data, sb.size, NULL, NULL, e,
		       sizeof e);
	msgpack_sbuffer_destroy(&sb);
	if (rc) {
		dev_free(d);
		return errf(err, errlen, rc, "%s", e);
	}
	if ((rc = tab_insert(h, d)) != 0) {
		dev_free(d);
		return errf(err, errlen, rc, "out of memory");
	}
	if ((rc = wait_commit(h, d->id, true, done, arg, err, errlen)) != 0) {
		tab_remove(h, d);
		dev_free(d);
		return rc;
	}
	d->drv = hal_driver_find(h, d->driver);
	log_msg(s->discovered ? LOG_DEBUG : LOG_INFO, "hal",
		"device %s (%s) registered at %s, driver %s, address %s", d->id, cls->name,
		d->scope, d->driver, d->address);
	dev_open(h, d);
	return 0;
}

int hal_remove(struct hal *h, const char *id, hal_done_fn done, void *arg, char *err, size_t errlen)
{
	struct hal_dev *d = hal_find(h, id);
	if (!d)
		return errf(err, errlen, LINLI_ENOENT, "no device '%.48s'", id ? id : "");
	char e[512];
	int rc = store_delete(h->k->store, DATASET, d->scope, d->id, e, sizeof e);
	if (rc && rc != LINLI_ENOENT)
		return errf(err, errlen, rc, "%s", e);
	char did[STORE_ID_MAX + 1];
	snprintf(did, sizeof did, "%s", d->id);
	log_info("hal", "device %s (%s) removed", d->id, d->cls->name);
	if (d->drv && d->drv->ops.removed) { /* SDK 1.1: revoke what the driver set up */
		struct wd_frame wd;
		wd_enter(&wd, d->drv->owner, "driver removed", d->id, 0);
		d->drv->ops.removed(d->drv->ctx, &d->pub);
		wd_leave(&wd);
	}
	dev_unregister(h, d, "it was removed");
	if (rc == LINLI_ENOENT) /* nothing in the store to commit: done is not called */
		return 1;
	return wait_commit(h, did, false, done, arg, err, errlen);
}

int hal_set_credential(struct hal *h, const char *id, const char *hash, hal_done_fn done, void *arg,
		       char *err, size_t errlen)
{
	struct hal_dev *d = hal_find(h, id);
	if (!d)
		return errf(err, errlen, LINLI_ENOENT, "no device '%.48s'", id ? id : "");
	char old[80];
	memcpy(old, d->cred, sizeof old);
	snprintf(d->cred, sizeof d->cred, "%s", hash ? hash : "");
	int rc = persist(h, d, false, false, true, err, errlen);
	if (rc) {
		memcpy(d->cred, old, sizeof old);
		return rc;
	}
	return wait_commit(h, d->id, false, done, arg, err, errlen);
}

int hal_tell_secret(struct hal *h, const char *id, const char *secret, char *err, size_t errlen)
{
	struct hal_dev *d = hal_find(h, id);
	if (!d || !d->open || !d->drv || !d->drv->ops.secret || !secret)
		return 0;
	char e[256] = "";
	struct wd_frame wd;
	wd_enter(&wd, d->drv->owner, "driver secret", d->id, 0);
	int rc = d->drv->ops.secret(d->drv->ctx, &d->pub, secret, e, sizeof e);
	wd_leave(&wd);
	if (rc) {
		if (!e[0])
			snprintf(e, sizeof e, "%s", linli_strerror(rc));
		log_warn("hal", "device %s (%s): driver %s could not take its new secret: %s",
			 d->id, d->cls->name, d->drv->name, e);
		return errf(err, errlen, rc, "driver %s could not take the new secret: %s",
			    d->drv->name, e);
	}
	return 0;
}

int hal_found(struct hal *h, struct hal_driver *drv, const struct linli_device_info *info,
	      char *err, size_t errlen)
{
	if (!info || info->size < LINLI_DEVICE_INFO_SIZE_1_0)
		return errf(err, errlen, LINLI_EINVAL,
			    "dev_found: struct linli_device_info of %u bytes is smaller than SDK "
			    "1.0's (%zu)",
			    info ? info->size : 0, (size_t)LINLI_DEVICE_INFO_SIZE_1_0);
	if (info->id && hal_find(h, info->id))
		return errf(err, errlen, LINLI_EEXIST, "device '%s' is registered already",
			    info->id);
	struct hal_dev_spec s = {.id = info->id,
				 .class_name = info->class_name,
				 .driver = drv->name,
				 .address = info->address,
				 .name = info->name,
				 .scope = info->scope,
				 .discovered = true};
	int rc = hal_add(h, &s, NULL, NULL, err, errlen);
	if (!rc)
		drv->found++;
	return rc;
}

/* ---- listing and packing ---- */

static int by_id(const void *a, const void *b)
{
	return strcmp((*(struct hal_dev *const *)a)->id, (*(struct hal_dev *const *)b)->id);
}

int hal_list(struct hal *h, const char *scope, struct hal_dev ***out)
{
	struct hal_dev **v = malloc((h->n_devs ? h->n_devs : 1) * sizeof *v);
	if (!v)
		return LINLI_ENOMEM;
	size_t n = 0;
	for (size_t i = 0; i < h->tab_cap; i++)
		for (struct hal_dev *d = h->tab[i]; d; d = d->hnext)
			if (!scope || !*scope || scope_within(scope, d->scope))
				v[n++] = d;
	qsort(v, n, sizeof *v, by_id);
	*out = v;
	return (int)n;
}

/* Times in console views are RFC 3339 UTC with milliseconds; nil for never. */
static void pack_time(msgpack_packer *pk, const char *key, int64_t ms)
{
	mp_str(pk, key);
	if (ms <= 0) {
		msgpack_pack_nil(pk);
		return;
	}
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	char buf[40];
	int n =
	    snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
	msgpack_pack_str(pk, (size_t)n);
	msgpack_pack_str_body(pk, buf, (size_t)n);
}

static uint64_t refused_total(const struct hal_dev *d)
{
	uint64_t n = 0;
	for (int i = 0; i < HAL_REF_KINDS; i++)
		n += d->refused[i];
	return n;
}

void hal_pack_dev(struct hal *h, const struct hal_dev *d, msgpack_packer *pk, bool full)
{
	if (!full) {
		msgpack_pack_map(pk, 8);
		mp_kv_str(pk, "id", d->id);
		mp_kv_str(pk, "class", d->cls->name);
		mp_kv_str(pk, "state", hal_state_name(d->state));
		pack_time(pk, "last_seen", d->last_seen);
		mp_kv_str(pk, "driver", d->driver);
		mp_kv_str(pk, "scope", d->scope);
		mp_kv_uint(pk, "readings", d->readings);
		mp_kv_uint(pk, "refused", refused_total(d));
		return;
	}
	msgpack_pack_map(pk, 20);
	mp_kv_str(pk, "id", d->id);
	mp_kv_str(pk, "class", d->cls->name);
	mp_kv_str(pk, "scope", d->scope);
	mp_kv_str(pk, "driver", d->driver);
	mp_kv_str(pk, "address", d->address);
	mp_kv_str(pk, "name", d->name[0] ? d->name : NULL);
	mp_kv_str(pk, "state", hal_state_name(d->state));
	pack_time(pk, "last_seen", d->last_seen);
	mp_kv_int(pk, "heartbeat_s", heartbeat_s(d));
	mp_kv_bool(pk, "driver_loaded", d->drv != NULL);
	mp_kv_bool(pk, "open", d->open);
	mp_kv_str(pk, "open_error", d->open_error[0] ? d->open_error : NULL);
	mp_kv_str(pk, "credential", d->cred[0] ? "set" : "none");
	mp_kv_str(pk, "poll", d->poll_spec[0] ? d->poll_spec : NULL);
	mp_kv_uint(pk, "readings", d->readings);
	mp_kv_uint(pk, "events", d->events);
	mp_str(pk, "refused");
	msgpack_pack_map(pk, HAL_REF_KINDS);
	for (int i = 0; i < HAL_REF_KINDS; i++)
		mp_kv_uint(pk, refusal_names[i], d->refused[i]);
	mp_kv_str(pk, "last_refusal", d->last_refusal[0] ? d->last_refusal : NULL);
	int pending = 0;
	for (const struct hal_cmd *c = h->cmds; c; c = c->next)
		pending += c->d == d;
	mp_kv_int(pk, "commands_pending", pending);
	mp_str(pk, "commands");
	msgpack_pack_array(pk, (size_t)d->cls->n_commands);
	for (int i = 0; i < d->cls->n_commands; i++)
		mp_str(pk, d->cls->commands[i].name);
}

static void pack_latest_val(msgpack_packer *pk, const struct hal_latest *l)
{
	struct hal_val v = {
	    .type = l->type, .i = l->i, .f = l->f, .b = l->b, .s = l->s, .len = l->slen};
	pack_val(pk, &v);
}

int hal_pack_latest(const struct hal_dev *d, const char *resource, msgpack_packer *pk)
{
	const struct cat_device_class *c = d->cls;
	if (resource) {
		int ri = res_index(c, resource);
		if (ri < 0 || !d->latest[ri].set)
			return LINLI_ENOENT;
		msgpack_pack_map(pk, 2);
		mp_str(pk, "value");
		pack_latest_val(pk, &d->latest[ri]);
		mp_kv_int(pk, "time", d->latest[ri].time_ms);
		return 0;
	}
	int n = 0;
	for (int i = 0; i < c->n_resources; i++)
		n += (c->resources[i].access & CAT_READ) != 0;
	msgpack_pack_array(pk, (size_t)n);
	for (int i = 0; i < c->n_resources; i++) {
		const struct cat_field *f = &c->resources[i];
		if (!(f->access & CAT_READ))
			continue;
		msgpack_pack_map(pk, 4);
		mp_kv_str(pk, "resource", f->name);
		mp_str(pk, "value");
		if (d->latest[i].set)
			pack_latest_val(pk, &d->latest[i]);
		else
			msgpack_pack_nil(pk);
		mp_kv_str(pk, "unit", f->unit);
		pack_time(pk, "time", d->latest[i].set ? d->latest[i].time_ms : 0);
	}
	return 0;
}

void hal_pack_latest_map(const struct hal_dev *d, msgpack_packer *pk)
{
	const struct cat_device_class *c = d->cls;
	int n = 0;
	for (int i = 0; i < c->n_resources; i++)
		n += d->latest[i].set;
	msgpack_pack_map(pk, (size_t)n);
	for (int i = 0; i < c->n_resources; i++) {
		if (!d->latest[i].set)
			continue;
		mp_str(pk, c->resources[i].name);
		msgpack_pack_map(pk, 2);
		mp_str(pk, "value");
		pack_latest_val(pk, &d->latest[i]);
		mp_kv_int(pk, "time", d->latest[i].time_ms);
	}
}

void hal_get_totals(struct hal *h, struct hal_totals *t)
{
	memset(t, 0, sizeof *t);
	t->devices = h->n_devs;
	for (size_t i = 0; i < h->tab_cap; i++)
		for (struct hal_dev *d = h->tab[i]; d; d = d->hnext) {
			t->open += d->open;
			t->online += d->state == HAL_ONLINE;
		}
	for (struct hal_driver *d = h->drivers; d; d = d->next)
		t->drivers++;
	t->readings = h->readings;
	t->refused = h->refused;
	t->events = h->events;
	t->shed = atomic_load(&h->shed);
	t->commands = h->commands;
	t->timeouts = h->timeouts;
}

/* ---- open and close ---- */

struct load_ctx {
	struct hal *h;
	int loaded, skipped;
};

static const char *obj_str(const msgpack_object *m, const char *key, char *buf, size_t n)
{
	const msgpack_object *o = mp_get(m, key);
	if (!o || o->type != MSGPACK_OBJECT_STR)
		return NULL;
	snprintf(buf, n, "%.*s", (int)o->via.str.size, o->via.str.ptr);
	return buf;
}

static int64_t obj_int(const msgpack_object *m, const char *key)
{
	const msgpack_object *o = mp_get(m, key);
	if (o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		return (int64_t)o->via.u64;
	if (o && o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
		return o->via.i64;
	return 0;
}

static int load_row(void *ud, const struct store_row *row)
{
	struct load_ctx *lc = ud;
	struct hal *h = lc->h;
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	size_t off = 0;
	if (msgpack_unpack_next(&up, row->data, row->len, &off) != MSGPACK_UNPACK_SUCCESS ||
	    up.data.type != MSGPACK_OBJECT_MAP) {
		log_error("hal", "device %s: its registry record is not a map; skipped", row->id);
		lc->skipped++;
		msgpack_unpacked_destroy(&up);
		return 0;
	}
	const msgpack_object *m = &up.data;
	char cls_s[CAT_NAME_MAX + 1], drv[64], addr[300], name[80], poll[600], cred[130], st[32];
	const char *cn = obj_str(m, "class", cls_s, sizeof cls_s);
	const struct cat_device_class *cls = cn ? catalog_device_class(h->k->catalog, cn) : NULL;
	const char *dn = obj_str(m, "driver", drv, sizeof drv);
	const char *an = obj_str(m, "address", addr, sizeof addr);
	if (!cls || !dn || !an) {
		log_error("hal", "device %s: %s; skipped until the catalog knows it", row->id,
			  !cn	 ? "no class"
			  : !cls ? "its class is not in the catalog"
				 : "no driver "
				   "or address");
		lc->skipped++;
		msgpack_unpacked_destroy(&up);
		return 0;
	}
	struct hal_dev *d =
	    dev_new(h, row->id, row->scope, cls, dn, an, obj_str(m, "name", name, sizeof name),
		    obj_str(m, "poll", poll, sizeof poll));
	char err[256];
	if (d && parse_polls(cls, d->poll_spec, d, err, sizeof err) != 0) {
		log_warn("hal", "device %s: %s; no polling", row->id, err);
		d->poll_spec[0] = '\0';
	}
	if (d) {
		if (obj_str(m, "credential", cred, sizeof cred))
			snprintf(d->cred, sizeof d->cred, "%s", cred);
		d->heartbeat_s = obj_int(m, "heartbeat");
		d->last_seen = obj_int(m, "last_seen");
		d->state = obj_str(m, "state", st, sizeof st) && strcmp(st, "online") == 0
			       ? HAL_ONLINE
			       : HAL_UNAVAILABLE;
	}
	msgpack_unpacked_destroy(&up);
	if (!d || tab_insert(h, d) != 0) {
		dev_free(d);
		return LINLI_ENOMEM;
	}
	lc->loaded++;
	return 0;
}

int hal_open(struct kernel *k, struct hal **out, char *err, size_t errlen)
{
	struct hal *h = calloc(1, sizeof *h);
	if (!h)
		return LINLI_ENOMEM;
	h->k = k;
	h->keep_latest = true;
	pthread_mutex_init(&h->qmu, NULL);
	msgpack_sbuffer_init(&h->sb);
	msgpack_packer_init(&h->pk, &h->sb, msgpack_sbuffer_write);
	if (sodium_init() < 0) {
		hal_close(h);
		return errf(err, errlen, LINLI_ENOMEM, "libsodium failed to initialise");
	}
	if (k->store && k->catalog && catalog_dataset(k->catalog, DATASET)) {
		struct load_ctx lc = {h, 0, 0};
		char cursor[STORE_CURSOR_MAX] = "";
		do {
			char cur[STORE_CURSOR_MAX];
			snprintf(cur, sizeof cur, "%s", cursor);
			struct store_query q = {.dataset = DATASET,
						.scope = k->cfg.node_path,
						.limit = STORE_SCAN_MAX,
						.cursor = cur};
			int n = store_scan(k->store, &q, load_row, &lc, cursor, err, errlen);
			if (n < 0) {
				hal_close(h);
				return n;
			}
		} while (cursor[0]);
		log_info("hal", "%d device(s) in the registry%s", lc.loaded,
			 lc.skipped ? " (some skipped, see above)" : "");
	} else
		log_warn("hal", "the catalog has no '%s' dataset: the device registry is empty",
			 DATASET);
	h->sweep_timer = kernel_timer_add(k, HAL_SWEEP_MS, HAL_SWEEP_MS, sweep_fire, h);
	h->flush_timer = kernel_timer_add(k, HAL_FLUSH_MS, HAL_FLUSH_MS, flush_fire, h);
	*out = h;
	return 0;
}

void hal_close(struct hal *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->qmu);
	h->closed = true;
	pthread_mutex_unlock(&h->qmu);
	waiters_fail(h, NULL, LINLI_ESTATE, "dev_event_wait: linlid is shutting down");
	if (h->hook)
		h->hook->h = NULL; /* the store frees it when its batch ends */
	if (h->sweep_timer)
		kernel_timer_cancel(h->k, h->sweep_timer);
	if (h->flush_timer)
		kernel_timer_cancel(h->k, h->flush_timer);
	while (h->drivers)
		hal_driver_remove(h, h->drivers);
	while (h->cmds) {
		struct hal_cmd *c = cmd_unlink(h, h->cmds->req);
		cmd_finish_(h, c, LINLI_ESTATE, NULL, 0, "linlid is shutting down");
	}
	if (h->k->store)
		hal_flush(h);
	for (size_t i = 0; i < h->tab_cap; i++)
		for (struct hal_dev *d = h->tab[i], *n; d; d = n) {
			n = d->hnext;
			dev_close(h, d);
			dev_free(d);
		}
	free(h->tab);
	free(h->qin.p);
	free(h->qwork.p);
	msgpack_sbuffer_destroy(&h->sb);
	pthread_mutex_destroy(&h->qmu);
	free(h);
}

/* ---- personal data in device events ---- */

static const struct cat_event *sensitive_event(const struct catalog *cat, const char *topic)
{
	if (!cat || strncmp(topic, "dev/", 4) != 0)
		return NULL;
	const char *cls = topic + 4, *id = strchr(cls, '/');
	const char *ev = id ? strchr(id + 1, '/') : NULL;
	if (!ev || strncmp(ev, "/event/", 7) != 0 || strchr(ev + 7, '/'))
		return NULL;
	char name[CAT_NAME_MAX + 1];
	size_t n = (size_t)(id - cls);
	if (n == 0 || n > CAT_NAME_MAX)
		return NULL;
	memcpy(name, cls, n);
	name[n] = '\0';
	const struct cat_device_class *c = catalog_device_class(cat, name);
	for (int i = 0; c && i < c->n_events; i++)
		if (strcmp(c->events[i].name, ev + 7) == 0)
			return c->events[i].n_sensitive ? &c->events[i] : NULL;
	return NULL;
}

bool hal_event_sensitive(const struct catalog *cat, const char *topic)
{
	return sensitive_event(cat, topic) != NULL;
}

static enum mask_kind mask_kind_of(enum cat_sensitive s)
{
	switch (s) {
	case CAT_SENS_ID_NUMBER:
		return MASK_ID_NUMBER;
	case CAT_SENS_PHONE:
		return MASK_PHONE;
	case CAT_SENS_NAME:
		return MASK_NAME;
	case CAT_SENS_ADDRESS:
		return MASK_ADDRESS;
	case CAT_SENS_HEALTH:
		return MASK_HEALTH;
	default:
		return MASK_NONE;
	}
}

static bool key_is(const msgpack_object *k, const char *s)
{
	size_t n = strlen(s);
	return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
	       memcmp(k->via.str.ptr, s, n) == 0;
}

/* Pack the details map d with e's sensitive fields masked. */
static void pack_masked_data(msgpack_packer *pk, const msgpack_object *d, const struct cat_event *e)
{
	msgpack_pack_map(pk, d->via.map.size);
	for (uint32_t i = 0; i < d->via.map.size; i++) {
		const msgpack_object *k = &d->via.map.ptr[i].key, *v = &d->via.map.ptr[i].val;
		const struct cat_event_field *f = NULL;
		for (int j = 0; j < e->n_sensitive && !f; j++)
			if (key_is(k, e->sensitive[j].name))
				f = &e->sensitive[j];
		msgpack_pack_object(pk, *k);
		if (!f || v->type == MSGPACK_OBJECT_NIL) {
			msgpack_pack_object(pk, *v);
			continue;
		}
		char masked[512];
		if (v->type == MSGPACK_OBJECT_STR)
			tier_mask(mask_kind_of(f->sensitive), v->via.str.ptr, v->via.str.size,
				  masked, sizeof masked);
		else
			snprintf(masked, sizeof masked, "***");
		mp_str(pk, masked);
	}
}

int hal_event_mask(const struct catalog *cat, const char *topic, const void *payload, size_t len,
		   msgpack_sbuffer *out)
{
	const struct cat_event *e = sensitive_event(cat, topic);
	if (!e || !payload || !len)
		return 0;
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	size_t off = 0;
	int done = 0;
	if (msgpack_unpack_next(&up, payload, len, &off) == MSGPACK_UNPACK_SUCCESS &&
	    up.data.type == MSGPACK_OBJECT_MAP) {
		const msgpack_object *m = &up.data;
		msgpack_packer pk;
		msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
		msgpack_pack_map(&pk, m->via.map.size);
		for (uint32_t i = 0; i < m->via.map.size; i++) {
			const msgpack_object *k = &m->via.map.ptr[i].key;
			const msgpack_object *v = &m->via.map.ptr[i].val;
			msgpack_pack_object(&pk, *k);
			if (key_is(k, "data") && v->type == MSGPACK_OBJECT_MAP)
				pack_masked_data(&pk, v, e);
			else
				msgpack_pack_object(&pk, *v);
		}
		done = 1;
	}
	msgpack_unpacked_destroy(&up);
	return done;
}
