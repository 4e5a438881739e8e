/*
 * mqtt — the MQTT device driver: devices that speak to a broker (Mosquitto)
 * under the topic tree linli/dev/<ADDRESS>/..., mapped to the HAL's readings,
 * events and commands. ADDRESS is the device's registered address, its MQTT
 * client id (`linli devices add ID CLASS mqtt ADDRESS`), or CHILD@GATEWAY for
 * a device a gateway speaks for (topics linli/dev/CHILD/..., the gateway's
 * account authorised for them).
 *
 *   up      device -> linlid   {"readings": {"RES": value, ...}, "time": ms?}
 *                              {"event": "NAME", "data": {...}?, "time": ms?, "id": ID?}
 *                              (ID, or the MQTT 5 user property event-id: taken once,
 *                              see seen_taken)
 *   cmd     linlid -> device   {"id": "N", "command": "NAME", "args": {...}}
 *                              MQTT 5: response topic linli/dev/<ADDRESS>/result,
 *                              correlation data "N" (the id's digits)
 *   result  device -> linlid   {"id": "N", "ok": true, "result": {...}?}
 *                              {"id": "N", "ok": false, "error": "why"}
 *                              MQTT 5: "id" may be left out when the result carries
 *                              the command's correlation data (which then decides)
 *   status  device (its last will) "online" / "offline": the HAL's availability
 *           at once (api->dev_available)
 *
 * Configuration (plugins.mqtt of linli.cfg, every refusal naming file and key):
 * host ("127.0.0.1"), port (1883), client_id ("linlid"), username and password
 * (optional, together), keepalive (seconds, 5..3600, default 30), accounts
 * (false; true: one broker account per device through Mosquitto's
 * dynamic-security plugin, linlid's own account being its admin).
 *
 * MQTT 5: linlid connects with protocol 5 (a session expiry of "never", so its
 * session persists as a 3.1.1 clean_session=false one does); a device may speak
 * 3.1.1 or 5 (the broker translates). Mosquitto 2.0 offers no asynchronous
 * connect with CONNECT properties, so the first connect (blocking) runs on a
 * starter thread, which then starts libmosquitto's loop thread; its
 * reconnects reuse the properties.
 *
 * QoS 1: a persistent session under client_id; a QoS 1 event is acknowledged
 * only after its commit (see not_committed).
 *
 * Threads: libmosquitto's network loop runs in its own thread
 * (mosquitto_loop_start). Its message callback parses the payload there and
 * hands the result to the kernel through the calls the SDK allows from any
 * thread (dev_post, dev_event, dev_command_done, dev_available); it never calls another
 * member of the table. The address -> device map and the counters it reads
 * are guarded by one mutex, taken only for short copies. The kernel thread
 * publishes commands with mosquitto_publish (thread-safe in libmosquitto).
 *
 * Refusals: a payload that is not JSON, or not of the convention's shape, is
 * refused by the driver and counted on its device (`linli mqtt status`); a
 * reading of an unknown resource or of the wrong type or range is refused by
 * the HAL's class checks and counted there (`linli devices show`). Each kind
 * is logged once per device.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>

#include <linli/linli.h>

#include "plugcfg.h"

#define ADDR_MAX      128 /* an address (client id): one topic level */
#define TOPIC_MAX     (ADDR_MAX + 32)
#define MAX_READ      64   /* readings in one message */
#define PENDING_MAX   1024 /* commands waiting for a result (older ones are forgotten) */
#define JSON_MAX      65536
#define EVENT_WAIT_MS 10000 /* a QoS 1 event's commit, at most */
#define SEEN_KEEP     64    /* event ids remembered per device (the dedup window) */
#define EVID_MAX      64
#define SEEN_COMPACT  16384 /* lines of dedup_file before it is rewritten */
#define DENY_KEEP     32    /* the broker's refusal lines kept for mqtt status */
#define DENY_LINE     256
#define LOG_READ_MAX  (4 << 20) /* bytes of the broker's log file read per tick, at most */

static const struct linli_api *api;

enum bad { BAD_JSON, BAD_SHAPE, BAD_RESULT, BAD_N };
static const char *const bad_names[BAD_N] = {"not_json", "bad_shape", "bad_result"};

struct mdev {
	char id[49];
	char addr[ADDR_MAX + 1];
	char gw[ADDR_MAX + 1]; /* its gateway's address, "" none */
	char status[16];       /* the last status message: "online", "offline", "" none */
	int64_t status_ms;
	uint64_t messages, readings, events, results;
	uint64_t broker_denials;	    /* the broker's refusal lines naming its client id */
	char seen[SEEN_KEEP][EVID_MAX + 1]; /* the last event ids taken (dedup window) */
	size_t seen_next;
	uint64_t duplicates;
	uint64_t bad[BAD_N];
	bool logged[BAD_N];   /* a refusal of this kind was seen */
	bool to_log[BAD_N];   /* ... and the timer has not logged it yet */
	char why[BAD_N][200]; /* the first refusal of each kind */
	bool open;
};

struct pending {
	uint64_t req; /* 0: free */
	char addr[ADDR_MAX + 1];
};

struct mq {
	linli_ctx *ctx;
	/* configuration */
	char host[256], client_id[ADDR_MAX + 1], username[128], password[128];
	char cafile[512], certfile[512], keyfile[512]; /* TLS: cafile set */
	int64_t port, keepalive;
	/* the broker */
	struct mosquitto *m;
	bool lib_init, loop_started; /* loop_started: the starter thread was made */
	pthread_t starter;
	atomic_bool loop_running; /* libmosquitto's loop thread runs */
	atomic_int start_rc;	  /* the first connect's MOSQ_ERR code */
	atomic_int start_errno;
	atomic_bool start_to_log;	 /* ... for the timer to log */
	atomic_bool stopping;		 /* linlid disconnects (fini) */
	atomic_int_fast64_t restart_due; /* monotonic ms: start the loop again, 0 no */
	uint64_t restarts;
	atomic_bool connected;
	atomic_uint_fast64_t connects, disconnects;
	atomic_int last_rc;   /* the last refused CONNACK's code, 0 none */
	atomic_int last_drop; /* the last unexpected disconnect's MOSQ_ERR code, 0 none */
	/* devices, by address; guarded by mu */
	pthread_mutex_t mu;
	struct mdev **devs;
	size_t n_devs, cap_devs;
	struct pending pend[PENDING_MAX];
	size_t pend_next;
	uint64_t unknown_addr, unknown_topic, commands, late_results;
	/* broker accounts (dynamic security); the queue and counters under mu */
	/* broker loss (kernel thread only): since when, and the alarm */
	int64_t reconnect_min, reconnect_max, alarm_after_ms;
	int64_t lost_since; /* ms (the node's clock), 0: connected or not started */
	bool alarm_up;	    /* raised (or asked to be) */
	bool alarm_logged;  /* no alarms plugin answered: logged once per loss */
	uint64_t alarms_raised, alarms_cleared;
	uint64_t not_committed; /* QoS 1 events left unacknowledged: delivered again */
	int nc_last_rc;
	char nc_addr[ADDR_MAX + 1];
	bool nc_to_log;
	bool accounts;
	char *role_json;  /* linlid's own role, added when its account lacks it */
	char *check_json; /* does linlid's account hold it? asked at every connect */
	atomic_bool role_ready;
	struct acct_op *aq_head, *aq_tail;
	size_t aq_len;
	uint64_t acct_sent, acct_ok, acct_errors;
	char acct_last_error[256];
	bool acct_to_log;
	pthread_mutex_t flush_mu; /* one flusher at a time: the queue's order is kept */
	/* the broker's refusal lines (broker_line): the last DENY_KEEP, under mu */
	bool log_topic;	    /* subscribe to the broker's log topics */
	char log_file[512]; /* ... and/or tail its log file ("" no) */
	char deny[DENY_KEEP][DENY_LINE];
	size_t deny_next, deny_n;
	uint64_t denials, denials_other; /* all; those naming no device's client id */
	/* the log file (kernel thread only) */
	int log_fd;
	ino_t log_ino;
	off_t log_off;
	bool log_missing; /* not there at the last try: read a new one from its start */
	char log_part[DENY_LINE];
	size_t log_part_len;
	char log_error[300];
	bool log_error_logged;
	uint64_t log_skipped; /* bytes jumped over when the file grew faster than read */
	/* the dedup window on disk (dedup_file): "ADDRESS ID" lines, appended after each
	 * commit; read at init (loaded, until the devices open), rewritten when long */
	char seen_file[512];
	int seen_fd;
	size_t seen_lines;
	char **loaded;
	size_t n_loaded;
	uint64_t seen_errors;
	int seen_errno;
};

/*
 * One change of a device's broker account, as the dynamic-security JSON to
 * publish on $CONTROL/dynamic-security/v1 (it may hold the secret in clear:
 * wiped before it is freed).
 */
struct acct_op {
	struct acct_op *next;
	char addr[ADDR_MAX + 1];
	char *json;
	size_t len;
};

#define DYNSEC_TOPIC	"$CONTROL/dynamic-security/v1"
#define DYNSEC_REPLIES	"$CONTROL/dynamic-security/v1/response"
#define DRIVER_ROLE	"linli-driver"
#define DEV_ROLE_PREFIX "linli-dev-"

static const char *const subs[] = {"linli/dev/+/up", "linli/dev/+/result", "linli/dev/+/status"};
/* The broker's log lines of level notice, warning and error (mosquitto.conf: log_dest
 * topic); debug lines never go there. */
static const char *const log_subs[] = {"$SYS/broker/log/N", "$SYS/broker/log/W",
				       "$SYS/broker/log/E"};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Why the connection dropped: a MOSQ_ERR code, or an MQTT 5 DISCONNECT's reason code. */
static const char *drop_why(int rc)
{
	return rc >= 128 ? mosquitto_reason_string(rc) : mosquitto_strerror(rc);
}

/* A refused CONNACK's reason: MQTT 5 reason codes (128..) or 3.1.1 return codes. */
static const char *connack_why(int rc)
{
	return rc >= 128 ? mosquitto_reason_string(rc) : mosquitto_connack_string(rc);
}

static struct mq *mq_of(linli_ctx *ctx)
{
	return api->userdata(ctx);
}

/* ---- devices (mu held) ---- */

static struct mdev *dev_by_addr(struct mq *M, const char *addr)
{
	for (size_t i = 0; i < M->n_devs; i++)
		if (M->devs[i]->open && strcmp(M->devs[i]->addr, addr) == 0)
			return M->devs[i];
	return NULL;
}

/*
 * A refusal by the driver: counted on d; the first of each kind is kept for
 * the log, which the kernel-thread timer writes (api->log is kernel-thread
 * only). Called with mu held.
 */
static void refuse(struct mdev *d, enum bad kind, const char *why)
{
	d->bad[kind]++;
	if (!d->logged[kind]) {
		d->logged[kind] = d->to_log[kind] = true;
		snprintf(d->why[kind], sizeof d->why[kind], "%s", why);
	}
}

/* An address must be one topic level of plain characters. */
static const char *addr_problem(const char *a)
{
	size_t n = strlen(a);
	if (n == 0 || n > ADDR_MAX)
		return "must be 1 to 128 bytes";
	for (const char *p = a; *p; p++)
		if (*p == '/' || *p == '+' || *p == '#' || (unsigned char)*p <= ' ' || *p == 0x7f)
			return "must not contain '/', '+', '#', spaces or control characters";
	return NULL;
}

/*
 * A registered address: ADDRESS, or CHILD@GATEWAY for a device that speaks
 * through a gateway (its topics are linli/dev/CHILD/..., published by the
 * gateway's connection and account). Fills addr (the topic level) and gw
 * ("" for none); returns what is wrong, or NULL.
 */
static const char *split_addr(const char *raw, char addr[ADDR_MAX + 1], char gw[ADDR_MAX + 1])
{
	const char *at = strchr(raw, '@');
	gw[0] = 0;
	if (!at) {
		const char *why = addr_problem(raw);
		if (!why)
			snprintf(addr, ADDR_MAX + 1, "%s", raw);
		return why;
	}
	size_t n = (size_t)(at - raw);
	if (n == 0 || n > ADDR_MAX || strchr(at + 1, '@'))
		return "must be CHILD@GATEWAY with one '@' and 1 to 128 bytes before it";
	memcpy(addr, raw, n);
	addr[n] = 0;
	const char *why = addr_problem(addr);
	if (!why)
		why = addr_problem(at + 1);
	if (!why && strcmp(addr, at + 1) == 0)
		why = "must not name itself as its gateway";
	if (!why)
		snprintf(gw, ADDR_MAX + 1, "%s", at + 1);
	return why;
}

/* ---- broker accounts: Mosquitto's dynamic-security plugin ---- */

/* A small JSON writer into a fixed buffer (ok false once it overflowed). */
struct jw {
	char b[4096];
	size_t n;
	bool ok;
};

static void jw_raw(struct jw *w, const char *s)
{
	size_t l = strlen(s);
	if (w->n + l >= sizeof w->b) {
		w->ok = false;
		return;
	}
	memcpy(w->b + w->n, s, l);
	w->n += l;
	w->b[w->n] = 0;
}

/* A JSON string: an address or secret has no control characters; quote and backslash escaped. */
static void jw_str(struct jw *w, const char *s)
{
	jw_raw(w, "\"");
	for (const char *p = s; *p && w->ok; p++) {
		char c[3] = {*p, 0, 0};
		if (*p == '"' || *p == '\\') {
			c[0] = '\\';
			c[1] = *p;
		}
		jw_raw(w, c);
	}
	jw_raw(w, "\"");
}

/* "topic": "linli/dev/<addr>/<kind>" */
static void jw_topic(struct jw *w, const char *addr, const char *kind)
{
	char t[TOPIC_MAX];
	snprintf(t, sizeof t, "linli/dev/%s/%s", addr, kind);
	jw_raw(w, "\"topic\": ");
	jw_str(w, t);
}

/* ", \"KEY\": VALUE" */
static void jw_kv(struct jw *w, const char *key, const char *val)
{
	jw_raw(w, ", ");
	jw_str(w, key);
	jw_raw(w, ": ");
	jw_str(w, val);
}

static void acct_free(struct acct_op *o)
{
	if (!o)
		return;
	if (o->json) {
		explicit_bzero(o->json, o->len);
		free(o->json);
	}
	free(o);
}

/*
 * The device's account: its role (publish on its up, result and status,
 * subscribe to its cmd, nothing else), the client (username = client id =
 * ADDRESS, password = the secret) — or, when the client exists already, its
 * new password (the broker kicks its connection at once). secret NULL: the
 * account and role are deleted (the broker kicks the client).
 */
/* {"command": "addRoleACL"|"removeRoleACL", "rolename", "acltype", "topic", ...}, */
static void jw_role_acl(struct jw *w, bool add, const char *role, const char *type,
			const char *addr, const char *kind, const char *corr)
{
	jw_raw(w, add ? "{\"command\": \"addRoleACL\"" : "{\"command\": \"removeRoleACL\"");
	jw_kv(w, "rolename", role);
	jw_kv(w, "acltype", type);
	jw_raw(w, ", ");
	jw_topic(w, addr, kind);
	jw_kv(w, "correlationData", corr);
	jw_raw(w, add ? ", \"allow\": true}, " : "}, ");
}

/* The four ACLs of addr's topics on role (add or remove). */
static void jw_dev_acls(struct jw *w, bool add, const char *role, const char *addr,
			const char *corr)
{
	jw_role_acl(w, add, role, "publishClientSend", addr, "up", corr);
	jw_role_acl(w, add, role, "publishClientSend", addr, "result", corr);
	jw_role_acl(w, add, role, "publishClientSend", addr, "status", corr);
	jw_role_acl(w, add, role, "subscribePattern", addr, "cmd", corr);
}

static struct acct_op *acct_make(const char *addr, const char *gw, const char *secret)
{
	struct jw *w = calloc(1, sizeof *w);
	struct acct_op *o = calloc(1, sizeof *o);
	if (!w || !o) {
		free(w);
		free(o);
		return NULL;
	}
	w->ok = true;
	char role[ADDR_MAX + 16];
	snprintf(role, sizeof role, DEV_ROLE_PREFIX "%s", gw ? gw : addr);
	jw_raw(w, "{\"commands\": [");
	if (gw) {
		/* A gateway's child: no account of its own; the gateway's role gets (or
		 * loses) the child's topics. */
		if (secret) {
			jw_raw(w, "{\"command\": \"createRole\"");
			jw_kv(w, "rolename", role);
			jw_kv(w, "correlationData", addr);
			jw_raw(w, "}, ");
		}
		jw_dev_acls(w, secret != NULL, role, addr, addr);
		w->n -= 2; /* the last ", " */
		w->b[w->n] = 0;
		jw_raw(w, "]}");
	} else if (secret) {
		/* The role's ACLs one by one: the role may exist already (made by a child of
		 * this gateway registered first), and a duplicate is answered "already exists". */
		jw_raw(w, "{\"command\": \"createRole\"");
		jw_kv(w, "rolename", role);
		jw_kv(w, "correlationData", addr);
		jw_raw(w, "}, ");
		jw_dev_acls(w, true, role, addr, addr);
		jw_raw(w, "{\"command\": \"createClient\"");
		jw_kv(w, "username", addr);
		jw_kv(w, "clientid", addr);
		jw_kv(w, "password", secret);
		jw_kv(w, "correlationData", addr);
		jw_raw(w, ", \"roles\": [{\"rolename\": ");
		jw_str(w, role);
		jw_raw(w, "}]}, {\"command\": \"setClientPassword\"");
		jw_kv(w, "username", addr);
		jw_kv(w, "password", secret);
		jw_kv(w, "correlationData", addr);
		jw_raw(w, "}]}");
	} else {
		jw_raw(w, "{\"command\": \"deleteClient\"");
		jw_kv(w, "username", addr);
		jw_kv(w, "correlationData", addr);
		jw_raw(w, "}, {\"command\": \"deleteRole\"");
		jw_kv(w, "rolename", role);
		jw_kv(w, "correlationData", addr);
		jw_raw(w, "}]}");
	}
	if (w->ok)
		o->json = malloc(w->n + 1);
	if (o->json) {
		memcpy(o->json, w->b, w->n + 1);
		o->len = w->n;
		snprintf(o->addr, sizeof o->addr, "%s", addr);
	}
	explicit_bzero(w, sizeof *w);
	free(w);
	if (!o->json) {
		free(o);
		return NULL;
	}
	return o;
}

/* linlid's own role: publishing commands to every device (sent at each connect). */
static char *driver_role_json(const char *username)
{
	struct jw w = {.ok = true};
	jw_raw(&w, "{\"commands\": [{\"command\": \"createRole\", \"rolename\": \"" DRIVER_ROLE
		   "\", \"acls\": [{\"acltype\": "
		   "\"publishClientSend\", \"topic\": \"linli/dev/+/cmd\", \"allow\": true}, "
		   "{\"acltype\": \"subscribePattern\", \"topic\": \"$SYS/broker/log/#\", "
		   "\"allow\": true}, {\"acltype\": \"publishClientReceive\", \"topic\": "
		   "\"$SYS/broker/log/#\", \"allow\": true}]}, "
		   "{\"command\": \"addClientRole\", \"rolename\": \"" DRIVER_ROLE "\"");
	jw_kv(&w, "username", username);
	jw_raw(&w, "}]}");
	return w.ok ? strdup(w.b) : NULL;
}

/* Does linlid's own account hold its role? (asked at each connect) */
static char *driver_check_json(const char *username)
{
	struct jw w = {.ok = true};
	jw_raw(&w, "{\"commands\": [{\"command\": \"getClient\"");
	jw_kv(&w, "username", username);
	jw_raw(&w, "}]}");
	return w.ok ? strdup(w.b) : NULL;
}

static void acct_flush(struct mq *M);

/* A getClient answer about linlid's own account: add the role when it lacks it. */
static void own_client(struct mq *M, linli_record *x)
{
	linli_record *data = NULL, *cl = NULL, *roles = NULL;
	bool has = false;
	if (api->rec_get_map(x, "data", &data) == 0 && api->rec_get_map(data, "client", &cl) == 0 &&
	    api->rec_get_array(cl, "roles", &roles) == 0)
		for (size_t i = 0; i < api->rec_count(roles); i++) {
			linli_record *r = NULL;
			const char *n = NULL;
			if (api->arr_get_map(roles, i, &r) == 0 &&
			    api->rec_get_str(r, "rolename", &n, NULL) == 0 &&
			    strcmp(n, DRIVER_ROLE) == 0)
				has = true;
		}
	if (has) {
		atomic_store(&M->role_ready, true);
		acct_flush(M);
		return;
	}
	/* Adding a role to a connected client makes the broker kick it: the next connect
	 * finds the role. */
	mosquitto_publish(M->m, NULL, DYNSEC_TOPIC, (int)strlen(M->role_json), M->role_json, 1,
			  false);
}

/* Publish the queued account changes in order, while connected. Any thread. */
static void acct_flush(struct mq *M)
{
	if (!M->accounts || !atomic_load(&M->connected) || !atomic_load(&M->role_ready))
		return;
	pthread_mutex_lock(&M->flush_mu);
	for (;;) {
		pthread_mutex_lock(&M->mu);
		struct acct_op *o = M->aq_head;
		if (o) {
			M->aq_head = o->next;
			if (!M->aq_head)
				M->aq_tail = NULL;
			M->aq_len--;
		}
		pthread_mutex_unlock(&M->mu);
		if (!o)
			break;
		int rc =
		    mosquitto_publish(M->m, NULL, DYNSEC_TOPIC, (int)o->len, o->json, 1, false);
		pthread_mutex_lock(&M->mu);
		if (rc != MOSQ_ERR_SUCCESS) { /* back to the front: the next connect sends it */
			o->next = M->aq_head;
			M->aq_head = o;
			if (!M->aq_tail)
				M->aq_tail = o;
			M->aq_len++;
			o = NULL;
		} else
			M->acct_sent++;
		pthread_mutex_unlock(&M->mu);
		if (!o)
			break;
		acct_free(o);
	}
	pthread_mutex_unlock(&M->flush_mu);
}

/* Queue a change of addr's account (secret NULL: delete it) and send what can be sent. */
static int acct_queue(struct mq *M, const char *addr, const char *gw, const char *secret)
{
	struct acct_op *o = acct_make(addr, gw, secret);
	if (!o)
		return LINLI_ENOMEM;
	pthread_mutex_lock(&M->mu);
	if (M->aq_tail)
		M->aq_tail->next = o;
	else
		M->aq_head = o;
	M->aq_tail = o;
	M->aq_len++;
	pthread_mutex_unlock(&M->mu);
	acct_flush(M);
	return 0;
}

/*
 * The broker's answers ({"responses": [{"command", "error"?, "correlationData"?}]}):
 * "already exists" is the expected answer to a re-key's create; any other
 * error is counted, kept for mqtt status and logged once by the timer.
 */
static void on_dynsec_reply(struct mq *M, const char *p, size_t len)
{
	linli_record *j = NULL, *rs = NULL;
	if (api->rec_from_json(p, len, &j, NULL, 0) != 0 || api->rec_kind(j) != LINLI_T_MAP ||
	    api->rec_get_array(j, "responses", &rs) != 0) {
		api->rec_free(j);
		return;
	}
	for (size_t i = 0; i < api->rec_count(rs); i++) {
		linli_record *x = NULL;
		const char *cmd = "?", *err = NULL, *corr = "";
		if (api->arr_get_map(rs, i, &x) != 0)
			continue;
		api->rec_get_str(x, "command", &cmd, NULL);
		api->rec_get_str(x, "correlationData", &corr, NULL);
		if (api->rec_has(x, "error"))
			api->rec_get_str(x, "error", &err, NULL);
		bool own = !corr[0]; /* linlid's own account: no correlation */
		if (own && !err && strcmp(cmd, "getClient") == 0) {
			own_client(M, x);
			continue;
		}
		/* Mosquitto 2.0 kicks linlid while it adds the role to linlid's own account and
		 * answers "Internal error" although the role was added: the next connect's
		 * getClient tells (role_ready in mqtt status). */
		if (own && strcmp(cmd, "addClientRole") == 0)
			continue;
		pthread_mutex_lock(&M->mu);
		if (err && err[0] && !strstr(err, "already")) {
			M->acct_errors++;
			snprintf(M->acct_last_error, sizeof M->acct_last_error,
				 "%.40s for '%.128s': %.80s", cmd, corr, err);
			M->acct_to_log = true;
		} else if (!own)
			M->acct_ok++;
		pthread_mutex_unlock(&M->mu);
	}
	api->rec_free(j);
}

/* ---- from the network thread ---- */

/* Copy d's id out under mu; false if addr is not an open device. */
static bool lookup(struct mq *M, const char *addr, char id[49])
{
	pthread_mutex_lock(&M->mu);
	struct mdev *d = dev_by_addr(M, addr);
	if (d) {
		snprintf(id, 49, "%s", d->id);
		d->messages++;
	} else
		M->unknown_addr++;
	pthread_mutex_unlock(&M->mu);
	return d != NULL;
}

static void count_bad(struct mq *M, const char *addr, enum bad kind, const char *why)
{
	pthread_mutex_lock(&M->mu);
	struct mdev *d = dev_by_addr(M, addr);
	if (d)
		refuse(d, kind, why);
	pthread_mutex_unlock(&M->mu);
}

static void count_ok(struct mq *M, const char *addr, uint64_t r, uint64_t e, uint64_t res)
{
	pthread_mutex_lock(&M->mu);
	struct mdev *d = dev_by_addr(M, addr);
	if (d) {
		d->readings += r;
		d->events += e;
		d->results += res;
	}
	pthread_mutex_unlock(&M->mu);
}

/* ---- effectively once: the device's event ids (mu held) ---- */

static bool seen_has(const struct mdev *d, const char *evid)
{
	for (size_t i = 0; i < SEEN_KEEP; i++)
		if (d->seen[i][0] && strcmp(d->seen[i], evid) == 0)
			return true;
	return false;
}

static void seen_put(struct mdev *d, const char *evid)
{
	snprintf(d->seen[d->seen_next], EVID_MAX + 1, "%s", evid);
	d->seen_next = (d->seen_next + 1) % SEEN_KEEP;
}

/* An event id: 1 to 64 printable characters, no spaces. */
static bool evid_ok(const char *s, size_t n)
{
	if (n == 0 || n > EVID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
			return false;
	return true;
}

/*
 * dedup_file rewritten from the windows of the open devices (mu held): a new
 * file beside it, synced, renamed over it. On failure the old one stays.
 */
static void seen_compact(struct mq *M)
{
	char tmp[sizeof M->seen_file + 8];
	snprintf(tmp, sizeof tmp, "%s.new", M->seen_file);
	FILE *f = fopen(tmp, "we");
	if (!f) {
		M->seen_errors++;
		M->seen_errno = errno;
		return;
	}
	size_t lines = 0;
	for (size_t i = 0; i < M->n_devs; i++)
		for (size_t k = 0; k < SEEN_KEEP; k++) {
			const char *e = M->devs[i]->seen[(M->devs[i]->seen_next + k) % SEEN_KEEP];
			if (e[0]) {
				fprintf(f, "%s %s\n", M->devs[i]->addr, e);
				lines++;
			}
		}
	bool ok = fflush(f) == 0 && fdatasync(fileno(f)) == 0;
	ok = fclose(f) == 0 && ok;
	if (!ok || rename(tmp, M->seen_file) != 0) {
		M->seen_errors++;
		M->seen_errno = errno;
		unlink(tmp);
		return;
	}
	if (M->seen_fd >= 0)
		close(M->seen_fd);
	M->seen_fd = open(M->seen_file, O_WRONLY | O_APPEND | O_CLOEXEC);
	M->seen_lines = lines;
}

/* An event of addr with id evid was taken: remembered, on disk before it is acknowledged. */
static void seen_taken(struct mq *M, const char *addr, const char *evid)
{
	pthread_mutex_lock(&M->mu);
	struct mdev *d = dev_by_addr(M, addr);
	if (d) {
		seen_put(d, evid);
		if (M->seen_fd >= 0) {
			char line[ADDR_MAX + EVID_MAX + 4];
			int n = snprintf(line, sizeof line, "%s %s\n", addr, evid);
			if (write(M->seen_fd, line, (size_t)n) != n || fdatasync(M->seen_fd) != 0) {
				M->seen_errors++;
				M->seen_errno = errno;
			} else if (++M->seen_lines > SEEN_COMPACT)
				seen_compact(M);
		}
	}
	pthread_mutex_unlock(&M->mu);
}

/* A duplicate (counted), or not: an event id seen on addr before. */
static bool seen_dup(struct mq *M, const char *addr, const char *evid)
{
	pthread_mutex_lock(&M->mu);
	struct mdev *d = dev_by_addr(M, addr);
	bool dup = d && seen_has(d, evid);
	if (dup)
		d->duplicates++;
	pthread_mutex_unlock(&M->mu);
	return dup;
}

/*
 * A QoS 1 event's PUBACK must not reach the broker before the event is
 * committed. libmosquitto 2.0 (Debian 12 has 2.0.11, no manual ack) queues the
 * PUBACK before this callback and its network thread writes it only after the
 * callback returns, so the callback waits for the commit (dev_event_wait).
 * When the commit is not known (timeout, a store error, linlid stopping) the
 * connection is cut before the PUBACK goes out: the broker keeps the message
 * in linlid's persistent session and delivers it again after the reconnect.
 */
static void not_committed(struct mq *M, const char *addr, int rc)
{
	int fd = mosquitto_socket(M->m);
	if (fd >= 0)
		shutdown(fd, SHUT_RDWR);
	pthread_mutex_lock(&M->mu);
	M->not_committed++;
	M->nc_last_rc = rc;
	snprintf(M->nc_addr, sizeof M->nc_addr, "%s", addr);
	M->nc_to_log = true;
	pthread_mutex_unlock(&M->mu);
}

static void on_up(struct mq *M, const char *addr, const char *id, linli_record *j, int qos,
		  const char *prop_evid)
{
	linli_record *rd = NULL;
	int64_t t = 0;
	if (api->rec_has(j, "time") && api->rec_get_int(j, "time", &t) != 0) {
		count_bad(M, addr, BAD_SHAPE, "\"time\" must be whole ms since the epoch");
		return;
	}
	if (api->rec_has(j, "readings")) {
		if (api->rec_get_map(j, "readings", &rd) != 0 || api->rec_count(rd) == 0 ||
		    api->rec_count(rd) > MAX_READ) {
			count_bad(M, addr, BAD_SHAPE,
				  "\"readings\" must be an object of 1 to 64 resources");
			return;
		}
		struct linli_reading r[MAX_READ];
		size_t n = 0;
		for (size_t i = 0; i < api->rec_count(rd); i++) {
			const char *k = NULL;
			api->rec_key(rd, i, &k);
			struct linli_reading *x = &r[n];
			memset(x, 0, sizeof *x);
			x->size = sizeof *x;
			x->device = id;
			x->resource = k;
			x->time_ms = t;
			switch (api->rec_type(rd, k)) {
			case LINLI_T_INT:
				x->type = LINLI_T_INT;
				api->rec_get_int(rd, k, &x->i);
				break;
			case LINLI_T_FLOAT:
				x->type = LINLI_T_FLOAT;
				api->rec_get_float(rd, k, &x->f);
				break;
			case LINLI_T_BOOL:
				x->type = LINLI_T_BOOL;
				api->rec_get_bool(rd, k, &x->b);
				break;
			case LINLI_T_STR:
				x->type = LINLI_T_STR;
				api->rec_get_str(rd, k, &x->s, NULL);
				break;
			default:
				count_bad(M, addr, BAD_SHAPE,
					  "a reading must be a number, a boolean or a string");
				continue;
			}
			n++;
		}
		if (n) {
			int rc = api->dev_post(M->ctx, r, n);
			if (rc == 0)
				count_ok(M, addr, n, 0, 0);
		}
		return;
	}
	const char *ev = NULL;
	if (api->rec_get_str(j, "event", &ev, NULL) == 0 && ev[0]) {
		linli_record *data = NULL;
		if (api->rec_has(j, "data") && api->rec_get_map(j, "data", &data) != 0) {
			count_bad(M, addr, BAD_SHAPE, "\"data\" of an event must be an object");
			return;
		}
		/* the device's event id: "id" in the payload, else the MQTT 5 user property
		 * event-id; one seen on this device before is a redelivery, acknowledged and
		 * dropped */
		const char *evid = prop_evid && prop_evid[0] ? prop_evid : NULL;
		size_t evlen = 0;
		if (api->rec_has(j, "id") &&
		    (api->rec_get_str(j, "id", &evid, &evlen) != 0 || !evid_ok(evid, evlen))) {
			count_bad(
			    M, addr, BAD_SHAPE,
			    "an event's \"id\" must be 1 to 64 printable characters, no spaces");
			return;
		}
		if (evid && seen_dup(M, addr, evid))
			return;
		if (qos > 0 && LINLI_API_HAS(api, dev_event_wait)) {
			int rc = api->dev_event_wait(M->ctx, id, ev, data, t, EVENT_WAIT_MS);
			if (rc == 0) {
				if (evid)
					seen_taken(M, addr, evid);
				count_ok(M, addr, 0, 1, 0);
			} else if (rc == LINLI_ETIMEDOUT || rc == LINLI_ESTATE || rc == LINLI_EIO ||
				   rc == LINLI_EFULL || rc == LINLI_ENOMEM)
				not_committed(M, addr, rc);
			/* a refusal (unknown event, bad data) is acknowledged: counted by the HAL
			 */
			return;
		}
		if (api->dev_event(M->ctx, id, ev, data, t) == 0) {
			if (evid)
				seen_taken(M, addr, evid);
			count_ok(M, addr, 0, 1, 0);
		}
		return;
	}
	count_bad(M, addr, BAD_SHAPE, "an up message needs \"readings\" or \"event\"");
}

/*
 * A result: the command it answers is named by the MQTT 5 correlation data
 * when the result carries it (corr, NUL-terminated; a payload "id" must then
 * agree), else by the payload's "id" (3.1.1).
 */
static void on_result(struct mq *M, const char *addr, linli_record *j, const char *corr)
{
	const char *ids = NULL;
	bool ok = false;
	char *end = NULL;
	bool has_id = api->rec_has(j, "id");
	if (has_id && api->rec_get_str(j, "id", &ids, NULL) != 0) {
		count_bad(M, addr, BAD_RESULT, "a result's \"id\" must be a string");
		return;
	}
	if (corr && ids && strcmp(ids, corr) != 0) {
		count_bad(M, addr, BAD_RESULT,
			  "a result's \"id\" differs from its MQTT 5 correlation data");
		return;
	}
	if (corr)
		ids = corr;
	if (!ids || api->rec_get_bool(j, "ok", &ok) != 0) {
		count_bad(M, addr, BAD_RESULT,
			  "a result needs \"ok\" and \"id\" (a string), or MQTT 5 correlation "
			  "data");
		return;
	}
	errno = 0;
	unsigned long long req = strtoull(ids, &end, 10);
	bool mine = false;
	pthread_mutex_lock(&M->mu);
	for (size_t i = 0; req && !errno && end && !*end && i < PENDING_MAX; i++)
		if (M->pend[i].req == req && strcmp(M->pend[i].addr, addr) == 0) {
			M->pend[i].req = 0;
			mine = true;
			break;
		}
	if (!mine)
		M->late_results++;
	pthread_mutex_unlock(&M->mu);
	if (!mine) {
		count_bad(M, addr, BAD_RESULT,
			  "a result for no command of this device waiting (or one answered)");
		return;
	}
	linli_record *res = NULL;
	const char *err = NULL;
	if (ok) {
		if (api->rec_has(j, "result") && api->rec_get_map(j, "result", &res) != 0) {
			api->dev_command_done(M->ctx, req, LINLI_EPROTO, NULL,
					      "the device's \"result\" is not an object");
			count_bad(M, addr, BAD_RESULT, "\"result\" must be an object");
			return;
		}
		api->dev_command_done(M->ctx, req, 0, res, NULL);
	} else {
		if (api->rec_get_str(j, "error", &err, NULL) != 0)
			err = "the device refused the command (no reason given)";
		api->dev_command_done(M->ctx, req, LINLI_EIO, NULL, err);
	}
	count_ok(M, addr, 0, 0, 1);
}

static void on_status(struct mq *M, const char *addr, const char *p, size_t len)
{
	char s[16];
	bool on = len == 6 && memcmp(p, "online", 6) == 0;
	if (!on && !(len == 7 && memcmp(p, "offline", 7) == 0)) {
		count_bad(M, addr, BAD_SHAPE, "a status must be \"online\" or \"offline\"");
		return;
	}
	memcpy(s, p, len);
	s[len] = 0;
	char id[49] = "";
	pthread_mutex_lock(&M->mu);
	struct mdev *d = dev_by_addr(M, addr);
	if (d) {
		snprintf(d->status, sizeof d->status, "%s", s);
		d->status_ms = api->time_now_ms();
		snprintf(id, sizeof id, "%s", d->id);
	}
	pthread_mutex_unlock(&M->mu);
	/* The HAL's availability follows at once (a kernel of 1.1 without the call: the
	 * heartbeat alone, as for every driver). */
	if (id[0] && LINLI_API_HAS(api, dev_available))
		api->dev_available(M->ctx, id, on,
				   on ? "MQTT status 'online'"
				      : "MQTT status 'offline' (the device's last will, or "
					"its own word)");
}

/*
 * One line of the broker's log (from its log topic or its log file): a refusal
 * ("... not authorised", "Denied PUBLISH from CLIENT (...)") is kept in the ring
 * and counted on the device whose client id it names. Mosquitto 2.0.11 names
 * no client id in a refused connection's line ("Client <unknown> disconnected,
 * not authorised."), and logs a refused publish only at level debug, which it
 * never publishes on its log topics: only its log file has those. Any thread.
 */
static void broker_line(struct mq *M, const char *line, size_t len, bool denied_only)
{
	char l[DENY_LINE];
	if (len >= sizeof l)
		len = sizeof l - 1;
	memcpy(l, line, len);
	l[len] = 0;
	for (char *q = l; *q; q++)
		if ((unsigned char)*q < ' ')
			*q = ' ';
	const char *den = strstr(l, "Denied ");
	if (!den && (denied_only || (!strstr(l, "not authorised") && !strstr(l, "not authorized"))))
		return;
	/* the client id: "Denied PUBLISH from ID (" or "Client ID ..." */
	char who[ADDR_MAX + 1] = "";
	const char *w = den ? strstr(den, " from ") : strstr(l, "Client ");
	if (w) {
		w += den ? 6 : 7;
		size_t n = strcspn(w, " (");
		if (n <= ADDR_MAX) {
			memcpy(who, w, n);
			who[n] = 0;
		}
	}
	pthread_mutex_lock(&M->mu);
	snprintf(M->deny[M->deny_next], DENY_LINE, "%s", l);
	M->deny_next = (M->deny_next + 1) % DENY_KEEP;
	if (M->deny_n < DENY_KEEP)
		M->deny_n++;
	M->denials++;
	struct mdev *d = who[0] ? dev_by_addr(M, who) : NULL;
	if (d)
		d->broker_denials++;
	else
		M->denials_other++;
	pthread_mutex_unlock(&M->mu);
}

static void on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg,
		       const mosquitto_property *props)
{
	(void)m;
	struct mq *M = ud;
	/* linli/dev/<ADDRESS>/<kind> */
	const char *t = msg->topic;
	if (M->accounts && strcmp(t, DYNSEC_REPLIES) == 0) {
		on_dynsec_reply(M, msg->payload ? msg->payload : "",
				msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0);
		return;
	}
	if (strncmp(t, "$SYS/broker/log/", 16) == 0) {
		if (msg->payloadlen > 0)
			broker_line(M, msg->payload, (size_t)msg->payloadlen, false);
		return;
	}
	if (strncmp(t, "linli/dev/", 10) != 0)
		return;
	const char *a = t + 10, *slash = strchr(a, '/');
	if (!slash || slash == a || (size_t)(slash - a) > ADDR_MAX)
		return;
	char addr[ADDR_MAX + 1], id[49];
	memcpy(addr, a, (size_t)(slash - a));
	addr[slash - a] = 0;
	const char *kind = slash + 1;
	if (!lookup(M, addr, id))
		return;
	const char *p = msg->payload ? msg->payload : "";
	size_t len = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
	if (strcmp(kind, "status") == 0) {
		on_status(M, addr, p, len);
		return;
	}
	if (len > JSON_MAX) {
		count_bad(M, addr, BAD_SHAPE, "a payload larger than 64 KiB");
		return;
	}
	linli_record *j = NULL;
	char err[160] = "";
	if (api->rec_from_json(p, len, &j, err, sizeof err) != 0 ||
	    api->rec_kind(j) != LINLI_T_MAP) {
		char why[200];
		snprintf(why, sizeof why, "not a JSON object%s%s", err[0] ? ": " : "", err);
		count_bad(M, addr, BAD_JSON, why);
		api->rec_free(j);
		return;
	}
	if (strcmp(kind, "up") == 0) {
		/* MQTT 5: the user property event-id */
		char evid[EVID_MAX + 1] = "";
		char *name = NULL, *val = NULL;
		const mosquitto_property *pp = props;
		bool first = true;
		while ((pp = mosquitto_property_read_string_pair(pp, MQTT_PROP_USER_PROPERTY, &name,
								 &val, !first)) != NULL) {
			first = false;
			if (!evid[0] && strcmp(name, "event-id") == 0 && evid_ok(val, strlen(val)))
				snprintf(evid, sizeof evid, "%s", val);
			free(name);
			free(val);
			name = val = NULL;
		}
		on_up(M, addr, id, j, msg->qos, evid);
	} else if (strcmp(kind, "result") == 0) {
		/* MQTT 5: the correlation data linlid gave the command (its id's digits) */
		void *cd = NULL;
		uint16_t cdlen = 0;
		char corr[24];
		bool has = mosquitto_property_read_binary(props, MQTT_PROP_CORRELATION_DATA, &cd,
							  &cdlen, false) != NULL;
		if (has && (cdlen == 0 || cdlen >= sizeof corr || memchr(cd, 0, cdlen))) {
			count_bad(M, addr, BAD_RESULT,
				  "MQTT 5 correlation data that is no command id of linlid's");
		} else {
			if (has) {
				memcpy(corr, cd, cdlen);
				corr[cdlen] = 0;
			}
			on_result(M, addr, j, has ? corr : NULL);
		}
		free(cd);
	}
	api->rec_free(j);
}

static void on_connect(struct mosquitto *m, void *ud, int rc)
{
	struct mq *M = ud;
	atomic_store(&M->last_rc, rc);
	if (rc != 0)
		return;
	atomic_store(&M->connected, true);
	atomic_fetch_add(&M->connects, 1);
	for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
		mosquitto_subscribe(m, NULL, subs[i], 1); /* QoS 1: events, results, status */
	for (size_t i = 0; M->log_topic && i < sizeof log_subs / sizeof log_subs[0]; i++)
		mosquitto_subscribe(m, NULL, log_subs[i], 0); /* never kept for linlid */
	if (M->accounts) {
		mosquitto_subscribe(m, NULL, DYNSEC_REPLIES, 1);
		mosquitto_publish(m, NULL, DYNSEC_TOPIC, (int)strlen(M->check_json), M->check_json,
				  1, false);
	}
}

/*
 * rc: a MOSQ_ERR code (the connection was lost), or the reason code of the
 * broker's MQTT 5 DISCONNECT (0x98 administrative action when it changed
 * linlid's roles, 0x8B server shutting down, ...). libmosquitto 2.0.11 ends
 * its loop thread after a DISCONNECT from the broker instead of reconnecting:
 * the timer starts it again (restart_due) after reconnect_min.
 */
static void on_disconnect(struct mosquitto *m, void *ud, int rc)
{
	(void)m;
	struct mq *M = ud;
	atomic_store(&M->connected, false);
	atomic_store(&M->role_ready, false);
	atomic_store(&M->last_drop, rc);
	atomic_fetch_add(&M->disconnects, 1);
	if (!atomic_load(&M->stopping) && (rc == 0 || rc >= 128))
		atomic_store(&M->restart_due, mono_ms() + M->reconnect_min * 1000);
}

/* ---- driver ops (kernel thread) ---- */

static int mq_open(linli_ctx *ctx, struct linli_device *dev, char *err, size_t errlen)
{
	struct mq *M = mq_of(ctx);
	char addr[ADDR_MAX + 1], gw[ADDR_MAX + 1];
	const char *why = split_addr(dev->address, addr, gw);
	if (why) {
		snprintf(err, errlen, "address '%s' is not an MQTT client id: it %s", dev->address,
			 why);
		return LINLI_EINVAL;
	}
	struct mdev *d = calloc(1, sizeof *d);
	if (!d)
		return LINLI_ENOMEM;
	snprintf(d->id, sizeof d->id, "%s", dev->id);
	snprintf(d->addr, sizeof d->addr, "%s", addr);
	snprintf(d->gw, sizeof d->gw, "%s", gw);
	d->open = true;
	pthread_mutex_lock(&M->mu);
	if (dev_by_addr(M, d->addr)) {
		pthread_mutex_unlock(&M->mu);
		snprintf(err, errlen, "address '%s' is another device's already", addr);
		free(d);
		return LINLI_EEXIST;
	}
	if (M->n_devs == M->cap_devs) {
		size_t cap = M->cap_devs ? M->cap_devs * 2 : 16;
		struct mdev **v = realloc(M->devs, cap * sizeof *v);
		if (!v) {
			pthread_mutex_unlock(&M->mu);
			free(d);
			return LINLI_ENOMEM;
		}
		M->devs = v;
		M->cap_devs = cap;
	}
	/* its event ids from dedup_file (the last SEEN_KEEP, in order) */
	for (size_t i = 0; i < M->n_loaded; i++) {
		size_t n = strlen(d->addr);
		if (strncmp(M->loaded[i], d->addr, n) == 0 && M->loaded[i][n] == ' ')
			seen_put(d, M->loaded[i] + n + 1);
	}
	M->devs[M->n_devs++] = d;
	pthread_mutex_unlock(&M->mu);
	dev->driver_data = d;
	return 0;
}

static void mq_close(linli_ctx *ctx, struct linli_device *dev)
{
	struct mq *M = mq_of(ctx);
	struct mdev *d = dev->driver_data;
	pthread_mutex_lock(&M->mu);
	for (size_t i = 0; i < M->n_devs; i++)
		if (M->devs[i] == d) {
			M->devs[i] = M->devs[--M->n_devs];
			break;
		}
	pthread_mutex_unlock(&M->mu);
	free(d);
	dev->driver_data = NULL;
}

/* Publish {"id", "command", "args"} to linli/dev/<addr>/cmd and remember req. */
static int send_cmd(struct mq *M, struct mdev *d, uint64_t req, const char *command,
		    const linli_record *args)
{
	if (!atomic_load(&M->connected))
		return LINLI_ESTATE;
	linli_record *c = api->rec_new();
	if (!c)
		return LINLI_ENOMEM;
	char ids[24];
	snprintf(ids, sizeof ids, "%llu", (unsigned long long)req);
	api->rec_set_str(c, "id", ids);
	api->rec_set_str(c, "command", command);
	if (args)
		api->rec_set_record(c, "args", args);
	else
		api->rec_set_map(c, "args", NULL);
	char *buf = malloc(JSON_MAX);
	size_t len = 0;
	int rc = buf ? api->rec_to_json(c, buf, JSON_MAX, &len) : LINLI_ENOMEM;
	api->rec_free(c);
	if (rc) {
		free(buf);
		return rc;
	}
	char topic[TOPIC_MAX];
	snprintf(topic, sizeof topic, "linli/dev/%s/cmd", d->addr);
	pthread_mutex_lock(&M->mu);
	struct pending *p = &M->pend[M->pend_next];
	M->pend_next = (M->pend_next + 1) % PENDING_MAX;
	p->req = req;
	snprintf(p->addr, sizeof p->addr, "%s", d->addr);
	M->commands++;
	pthread_mutex_unlock(&M->mu);
	/* MQTT 5: the result's topic and the command's id as response topic and
	 * correlation data (a 3.1.1 device gets neither: the broker drops them) */
	char rtopic[TOPIC_MAX];
	snprintf(rtopic, sizeof rtopic, "linli/dev/%s/result", d->addr);
	mosquitto_property *props = NULL;
	int mrc = mosquitto_property_add_string(&props, MQTT_PROP_RESPONSE_TOPIC, rtopic);
	if (mrc == MOSQ_ERR_SUCCESS)
		mrc = mosquitto_property_add_binary(&props, MQTT_PROP_CORRELATION_DATA, ids,
						    (uint16_t)strlen(ids));
	if (mrc == MOSQ_ERR_SUCCESS)
		mrc = mosquitto_publish_v5(M->m, NULL, topic, (int)len, buf, 1, false, props);
	mosquitto_property_free_all(&props);
	free(buf);
	if (mrc != MOSQ_ERR_SUCCESS) {
		pthread_mutex_lock(&M->mu);
		p->req = 0;
		pthread_mutex_unlock(&M->mu);
		api->log(M->ctx, LINLI_LOG_WARN, "command to '%s' not sent: %s", d->addr,
			 mosquitto_strerror(mrc));
		return mrc == MOSQ_ERR_NO_CONN ? LINLI_ESTATE : LINLI_EIO;
	}
	return 0;
}

static int mq_command(linli_ctx *ctx, struct linli_device *dev, uint64_t req, const char *command,
		      const linli_record *args)
{
	return send_cmd(mq_of(ctx), dev->driver_data, req, command, args);
}

static int mq_write(linli_ctx *ctx, struct linli_device *dev, uint64_t req,
		    const linli_record *values)
{
	return send_cmd(mq_of(ctx), dev->driver_data, req, "write", values);
}

/*
 * SDK 1.1: the device's new secret (devices add / rekey) becomes its broker
 * password; a gateway's child (CHILD@GATEWAY) has no account of its own: the
 * gateway's role is given the child's topics instead.
 */
static int mq_secret(linli_ctx *ctx, struct linli_device *dev, const char *secret, char *err,
		     size_t errlen)
{
	struct mq *M = mq_of(ctx);
	char addr[ADDR_MAX + 1], gw[ADDR_MAX + 1];
	if (!M->accounts || split_addr(dev->address, addr, gw))
		return 0; /* not linlid's to manage; a bad address never opened */
	int rc = acct_queue(M, addr, gw[0] ? gw : NULL, secret);
	if (rc)
		snprintf(err, errlen, "the broker account of '%s' could not be queued",
			 dev->address);
	return rc;
}

/* SDK 1.1: a removed device's account and role are deleted (the broker kicks it); a
 * child's topics are taken from its gateway's role. */
static void mq_removed(linli_ctx *ctx, struct linli_device *dev)
{
	struct mq *M = mq_of(ctx);
	char addr[ADDR_MAX + 1], gw[ADDR_MAX + 1];
	if (M->accounts && !split_addr(dev->address, addr, gw) &&
	    acct_queue(M, addr, gw[0] ? gw : NULL, NULL))
		api->log(ctx, LINLI_LOG_WARN,
			 "device %s: its broker account '%s' could not be queued for deletion",
			 dev->id, dev->address);
}

static int mq_discover(linli_ctx *ctx);

static const struct linli_driver_ops ops = {
    .size = sizeof(struct linli_driver_ops),
    .open = mq_open,
    .close = mq_close,
    .write = mq_write,
    .command = mq_command,
    .discover = mq_discover,
    .secret = mq_secret,
    .removed = mq_removed,
};

/* ---- broker loss: an alarm after alarm_after, cleared on reconnect ---- */

#define LOST_TYPE   "mqtt_broker_lost"
#define LOST_SOURCE "plugin:mqtt"

static void on_alarm_answer(linli_ctx *ctx, uint64_t id, int status, const linli_record *rec,
			    const char *err, void *ud)
{
	(void)id;
	(void)rec;
	struct mq *M = mq_of(ctx);
	bool raise = ud != NULL;
	if (!M)
		return;
	if (status < 0 && raise)
		api->log(ctx, LINLI_LOG_WARN, "broker-lost alarm not raised: %s (%s)",
			 err && *err ? err : "no reason", linli_strerror(status));
	else if (status < 0 && status != LINLI_ENOENT)
		api->log(ctx, LINLI_LOG_WARN, "broker-lost alarm not cleared: %s (%s)",
			 err && *err ? err : "no reason", linli_strerror(status));
	else if (raise)
		M->alarms_raised++;
	else
		M->alarms_cleared++;
}

static void lost_alarm(linli_ctx *ctx, struct mq *M, bool raise, int64_t lost_ms)
{
	linli_record *p = api->rec_new();
	if (!p)
		return;
	api->rec_set_str(p, "type", LOST_TYPE);
	api->rec_set_str(p, "source", LOST_SOURCE);
	char det[512];
	if (raise) {
		int last = atomic_load(&M->last_rc), drop = atomic_load(&M->last_drop);
		snprintf(det, sizeof det,
			 "the MQTT broker %s:%lld has been out of reach for %lld s (%s); linlid "
			 "retries every %lld..%lld s; MQTT devices cannot be heard meanwhile",
			 M->host, (long long)M->port, (long long)(lost_ms / 1000),
			 last	? connack_why(last)
			 : drop ? drop_why(drop)
				: "never connected",
			 (long long)M->reconnect_min, (long long)M->reconnect_max);
		api->rec_set_str(p, "severity", "major");
		api->rec_set_str(p, "details", det);
	} else
		api->rec_set_str(p, "why", "linlid is connected to the MQTT broker again");
	int rc = api->request(ctx, raise ? "alarmreq/raise" : "alarmreq/clear", NULL, p, 10000,
			      on_alarm_answer, raise ? M : NULL, NULL);
	api->rec_free(p);
	if (rc && raise && !M->alarm_logged) {
		M->alarm_logged = true;
		api->log(
		    ctx, LINLI_LOG_WARN,
		    "the MQTT broker %s:%lld has been out of reach for %lld s; no alarm raised "
		    "(%s: is the alarms plugin running?)",
		    M->host, (long long)M->port, (long long)(lost_ms / 1000), linli_strerror(rc));
	}
}

static void loss_tick(linli_ctx *ctx, struct mq *M)
{
	if (!M->loop_started || M->alarm_after_ms == 0)
		return;
	int64_t now = api->time_now_ms();
	if (atomic_load(&M->connected)) {
		if (M->lost_since && M->alarm_up)
			lost_alarm(ctx, M, false, 0);
		M->lost_since = 0;
		M->alarm_up = M->alarm_logged = false;
		return;
	}
	if (!M->lost_since)
		M->lost_since = now;
	else if (!M->alarm_up && now - M->lost_since >= M->alarm_after_ms) {
		M->alarm_up = true;
		lost_alarm(ctx, M, true, now - M->lost_since);
	}
}

static void *starter_main(void *ud);

static void log_file_error(linli_ctx *ctx, struct mq *M, const char *what, int e)
{
	snprintf(M->log_error, sizeof M->log_error, "%s '%s': %s", what, M->log_file, strerror(e));
	if (!M->log_error_logged) {
		M->log_error_logged = true;
		api->log(ctx, LINLI_LOG_WARN,
			 "cannot read the broker's log file (broker_log_file): %s; retrying "
			 "(mqtt status)",
			 M->log_error);
	}
}

/*
 * Follow the broker's log file (broker_log_file) like tail -F: opened at its
 * end the first time (older lines are not news), from its start when it was
 * missing before, and again from its start when it was rotated (another inode)
 * or truncated. Lines "Denied ..." are taken (with the log topic on, the rest
 * comes from there). Kernel thread (the timer); a regular file's read does not
 * block for long.
 */
static void log_file_tick(linli_ctx *ctx, struct mq *M)
{
	struct stat st;
	if (M->log_fd >= 0) {
		struct stat now;
		if (stat(M->log_file, &now) == 0 && now.st_ino != M->log_ino) {
			close(M->log_fd); /* rotated: the new file from its start */
			M->log_fd = -1;
			M->log_missing = true;
		}
	}
	if (M->log_fd < 0) {
		int fd = open(M->log_file, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
		if (fd < 0) {
			if (errno == ENOENT)
				M->log_missing = true;
			log_file_error(ctx, M, "cannot open", errno);
			return;
		}
		if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
			int e = errno;
			close(fd);
			log_file_error(ctx, M, "cannot read", S_ISREG(st.st_mode) ? e : EISDIR);
			return;
		}
		M->log_fd = fd;
		M->log_ino = st.st_ino;
		M->log_off = M->log_missing ? 0 : st.st_size;
		M->log_part_len = 0;
		M->log_error[0] = 0;
		M->log_error_logged = false;
	}
	if (fstat(M->log_fd, &st) != 0)
		return;
	if (st.st_size < M->log_off) { /* truncated */
		M->log_off = 0;
		M->log_part_len = 0;
	}
	if (st.st_size - M->log_off > LOG_READ_MAX) {
		M->log_skipped += (uint64_t)(st.st_size - M->log_off - LOG_READ_MAX);
		M->log_off = st.st_size - LOG_READ_MAX;
		M->log_part_len = 0;
	}
	char buf[65536];
	while (M->log_off < st.st_size) {
		ssize_t n = pread(M->log_fd, buf, sizeof buf, M->log_off);
		if (n <= 0)
			break;
		M->log_off += n;
		const char *p = buf, *end = buf + n;
		while (p < end) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t k = (size_t)((nl ? nl : end) - p);
			size_t room = sizeof M->log_part - 1 - M->log_part_len;
			memcpy(M->log_part + M->log_part_len, p, k < room ? k : room);
			M->log_part_len += k < room ? k : room;
			if (!nl)
				break;
			broker_line(M, M->log_part, M->log_part_len, M->log_topic);
			M->log_part_len = 0;
			p = nl + 1;
		}
	}
}

/* The first refusal of each kind per device, logged on the kernel thread. */
static void log_tick(linli_ctx *ctx, void *ud)
{
	struct mq *M = ud;
	loss_tick(ctx, M);
	if (M->log_file[0])
		log_file_tick(ctx, M);
	int64_t due = atomic_load(&M->restart_due);
	if (due && mono_ms() >= due && !atomic_load(&M->stopping)) {
		atomic_store(&M->restart_due, 0);
		pthread_join(M->starter, NULL); /* the last start: long done */
		M->restarts++;
		if (pthread_create(&M->starter, NULL, starter_main, M) != 0) {
			M->loop_started = false; /* nothing to join */
			api->log(ctx, LINLI_LOG_ERROR,
				 "cannot restart the MQTT connection: %s (no thread)",
				 strerror(errno));
		}
	}
	if (atomic_exchange(&M->start_to_log, false)) {
		int rc = atomic_load(&M->start_rc);
		api->log(ctx, atomic_load(&M->loop_running) ? LINLI_LOG_WARN : LINLI_LOG_ERROR,
			 "broker %s:%lld not reached yet (%s)%s", M->host, (long long)M->port,
			 rc == MOSQ_ERR_ERRNO ? strerror(atomic_load(&M->start_errno))
					      : mosquitto_strerror(rc),
			 atomic_load(&M->loop_running) ? "; retrying"
						       : ": the MQTT network thread did not start");
	}
	pthread_mutex_lock(&M->mu);
	for (size_t i = 0; i < M->n_devs; i++)
		for (int k = 0; k < BAD_N; k++)
			if (M->devs[i]->to_log[k]) {
				M->devs[i]->to_log[k] = false;
				api->log(ctx, LINLI_LOG_WARN,
					 "device %s (address '%s'): message refused (%s): %s "
					 "(counted in mqtt status, logged once)",
					 M->devs[i]->id, M->devs[i]->addr, bad_names[k],
					 M->devs[i]->why[k]);
			}
	if (M->nc_to_log) {
		M->nc_to_log = false;
		api->log(ctx, LINLI_LOG_WARN,
			 "a QoS 1 event of '%s' was not known committed (%s): the connection was "
			 "cut before its acknowledgement, the broker delivers it again (counted in "
			 "mqtt status)",
			 M->nc_addr, linli_strerror(M->nc_last_rc));
	}
	if (M->acct_to_log) {
		M->acct_to_log = false;
		api->log(ctx, LINLI_LOG_WARN,
			 "the broker refused an account change: %s (counted in mqtt status)",
			 M->acct_last_error);
	}
	pthread_mutex_unlock(&M->mu);
}

/* ---- console ---- */

static int cmd_status(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		      char *err, size_t errlen)
{
	struct mq *M = mq_of(ctx);
	if (req->argc) {
		snprintf(err, errlen, "usage: mqtt status");
		return LINLI_EINVAL;
	}
	/* Every device of the node is shown: the caller's jurisdiction must hold the node. */
	int prc =
	    api->caller_may(ctx, req->caller, "mqtt.status", api->plugin_scope(ctx), err, errlen);
	if (prc)
		return prc;
	linli_record *r = api->rec_new(), *b = NULL, *s = NULL, *ds = NULL, *t = NULL;
	if (!r)
		return LINLI_ENOMEM;
	api->rec_set_map(r, "broker", &b);
	api->rec_set_str(b, "host", M->host);
	api->rec_set_int(b, "port", M->port);
	api->rec_set_str(b, "client_id", M->client_id);
	api->rec_set_bool(b, "authenticated", M->username[0] != 0);
	api->rec_set_bool(b, "tls", M->cafile[0] != 0);
	api->rec_set_bool(b, "client_certificate", M->certfile[0] != 0);
	api->rec_set_int(b, "keepalive_s", M->keepalive);
	bool up = atomic_load(&M->connected);
	api->rec_set_bool(b, "connected", up);
	int last = atomic_load(&M->last_rc), drop = atomic_load(&M->last_drop);
	api->rec_set_str(b, "last_error",
			 up	? ""
			 : last ? connack_why(last)
			 : drop ? drop_why(drop)
				: "");
	if (M->lost_since)
		api->rec_set_time(b, "lost_since", M->lost_since);
	api->rec_set_bool(b, "alarm", M->alarm_up);
	api->rec_set_int(b, "alarms_raised", (int64_t)M->alarms_raised);
	api->rec_set_int(b, "alarms_cleared", (int64_t)M->alarms_cleared);
	api->rec_set_int(b, "connects", (int64_t)atomic_load(&M->connects));
	api->rec_set_int(b, "disconnects", (int64_t)atomic_load(&M->disconnects));
	api->rec_set_int(b, "restarts", (int64_t)M->restarts); /* after a broker's DISCONNECT */
	api->rec_set_str(b, "protocol", "mqttv5");
	api->rec_set_array(r, "subscriptions", &s);
	for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
		api->arr_push_str(s, subs[i]);
	linli_record *ac = NULL;
	api->rec_set_map(r, "accounts", &ac);
	api->rec_set_bool(ac, "managed", M->accounts);
	api->rec_set_bool(ac, "role_ready", atomic_load(&M->role_ready)); /* linlid's own role */
	pthread_mutex_lock(&M->mu);
	api->rec_set_int(ac, "queued", (int64_t)M->aq_len);
	api->rec_set_int(ac, "sent", (int64_t)M->acct_sent);
	api->rec_set_int(ac, "answers_ok", (int64_t)M->acct_ok);
	api->rec_set_int(ac, "errors", (int64_t)M->acct_errors);
	api->rec_set_str(ac, "last_error", M->acct_last_error);
	pthread_mutex_unlock(&M->mu);
	api->rec_set_map(r, "totals", &t);
	api->rec_set_array(r, "devices", &ds);
	uint64_t msgs = 0, rd = 0, ev = 0, res = 0, dups = 0, bad[BAD_N] = {0};
	pthread_mutex_lock(&M->mu);
	for (size_t i = 0; i < M->n_devs; i++) {
		struct mdev *d = M->devs[i];
		linli_record *x = NULL, *bx = NULL;
		api->arr_push_map(ds, &x);
		api->rec_set_str(x, "id", d->id);
		api->rec_set_str(x, "address", d->addr);
		api->rec_set_str(x, "status", d->status);
		if (d->status_ms)
			api->rec_set_time(x, "status_time", d->status_ms);
		api->rec_set_int(x, "messages", (int64_t)d->messages);
		api->rec_set_int(x, "readings", (int64_t)d->readings); /* posted to the HAL */
		api->rec_set_int(x, "events", (int64_t)d->events);
		api->rec_set_int(x, "results", (int64_t)d->results);
		api->rec_set_int(x, "broker_denials", (int64_t)d->broker_denials);
		api->rec_set_int(x, "duplicates", (int64_t)d->duplicates);
		dups += d->duplicates;
		api->rec_set_map(x, "refused", &bx);
		for (int k = 0; k < BAD_N; k++) {
			api->rec_set_int(bx, bad_names[k], (int64_t)d->bad[k]);
			bad[k] += d->bad[k];
		}
		msgs += d->messages;
		rd += d->readings;
		ev += d->events;
		res += d->results;
	}
	api->rec_set_int(t, "messages", (int64_t)msgs);
	api->rec_set_int(t, "readings", (int64_t)rd);
	api->rec_set_int(t, "events", (int64_t)ev);
	api->rec_set_int(t, "commands", (int64_t)M->commands);
	api->rec_set_int(t, "results", (int64_t)res);
	for (int k = 0; k < BAD_N; k++)
		api->rec_set_int(t, bad_names[k], (int64_t)bad[k]);
	api->rec_set_int(t, "unknown_address", (int64_t)M->unknown_addr);
	api->rec_set_int(t, "events_not_committed", (int64_t)M->not_committed);
	api->rec_set_int(t, "duplicates", (int64_t)dups); /* redelivered event ids dropped */
	linli_record *sf = NULL;
	api->rec_set_map(r, "dedup", &sf);
	api->rec_set_str(sf, "file", M->seen_file);
	api->rec_set_int(sf, "window", SEEN_KEEP);
	api->rec_set_int(sf, "lines", (int64_t)M->seen_lines);
	api->rec_set_int(sf, "errors", (int64_t)M->seen_errors);
	api->rec_set_str(sf, "last_error", M->seen_errors ? strerror(M->seen_errno) : "");
	linli_record *bl = NULL, *lt = NULL, *ll = NULL;
	api->rec_set_map(r, "broker_log", &bl);
	api->rec_set_array(bl, "topics", &lt);
	for (size_t i = 0; M->log_topic && i < sizeof log_subs / sizeof log_subs[0]; i++)
		api->arr_push_str(lt, log_subs[i]);
	api->rec_set_str(bl, "file", M->log_file);
	api->rec_set_str(bl, "file_error", M->log_error);
	api->rec_set_int(bl, "file_bytes_skipped", (int64_t)M->log_skipped);
	api->rec_set_int(bl, "denials", (int64_t)M->denials);
	api->rec_set_int(bl, "denials_no_device", (int64_t)M->denials_other);
	api->rec_set_int(bl, "keep", DENY_KEEP);
	api->rec_set_array(bl, "lines", &ll); /* oldest first */
	for (size_t i = 0; i < M->deny_n; i++)
		api->arr_push_str(ll,
				  M->deny[(M->deny_next + DENY_KEEP - M->deny_n + i) % DENY_KEEP]);
	pthread_mutex_unlock(&M->mu);
	*reply = r;
	return 0;
}

/* ---- configuration ---- */

static int cfg_str(const struct plugcfg *p, linli_record *c, const char *key, char *out, size_t cap,
		   bool level)
{
	if (!api->rec_has(c, key))
		return 0;
	const char *s = NULL;
	size_t len = 0;
	if (api->rec_get_str(c, key, &s, &len) != 0)
		return plugcfg_err(p, key, "must be a string");
	if (len == 0 || len >= cap)
		return plugcfg_err(p, key, "must be 1 to %zu bytes", cap - 1);
	const char *why = level ? addr_problem(s) : NULL;
	if (why)
		return plugcfg_err(p, key, "'%s' %s", s, why);
	snprintf(out, cap, "%s", s);
	return 0;
}

/*
 * TLS to the broker: cafile (the CA certificates that sign the broker's),
 * and optionally certfile + keyfile (linlid's client certificate, an
 * unencrypted key). Each file is read and parsed now, and the key checked
 * against the certificate, so that a wrong file stops the plugin at load
 * with its key named rather than failing every connect.
 */
static int tls_check(const struct plugcfg *p, struct mq *M)
{
	if (!M->cafile[0] && (M->certfile[0] || M->keyfile[0]))
		return plugcfg_err(p, M->certfile[0] ? "certfile" : "keyfile",
				   "needs cafile (TLS to the broker)");
	if (!M->certfile[0] != !M->keyfile[0])
		return plugcfg_err(p, M->certfile[0] ? "keyfile" : "certfile",
				   "is missing: certfile and keyfile go together");
	if (!M->cafile[0])
		return 0;
	char why[160];
	int rc = 0, mrc;
	mbedtls_x509_crt ca, crt;
	mbedtls_pk_context pk;
	mbedtls_x509_crt_init(&ca);
	mbedtls_x509_crt_init(&crt);
	mbedtls_pk_init(&pk);
	if ((mrc = mbedtls_x509_crt_parse_file(&ca, M->cafile)) != 0) {
		mbedtls_strerror(mrc, why, sizeof why);
		rc = plugcfg_err(p, "cafile", "'%s' is not a readable PEM certificate file: %s",
				 M->cafile, mrc > 0 ? "some certificates do not parse" : why);
	} else if (M->certfile[0] && (mrc = mbedtls_x509_crt_parse_file(&crt, M->certfile))) {
		mbedtls_strerror(mrc, why, sizeof why);
		rc = plugcfg_err(p, "certfile", "'%s' is not a readable PEM certificate file: %s",
				 M->certfile, mrc > 0 ? "some certificates do not parse" : why);
	} else if (M->keyfile[0] && (mrc = mbedtls_pk_parse_keyfile(&pk, M->keyfile, NULL))) {
		mbedtls_strerror(mrc, why, sizeof why);
		rc =
		    plugcfg_err(p, "keyfile", "'%s' is not a readable, unencrypted private key: %s",
				M->keyfile, why);
	} else if (M->keyfile[0] && mbedtls_pk_check_pair(&crt.pk, &pk) != 0)
		rc = plugcfg_err(p, "keyfile",
				 "'%s' is not the private key of the certificate in '%s'",
				 M->keyfile, M->certfile);
	mbedtls_x509_crt_free(&ca);
	mbedtls_x509_crt_free(&crt);
	mbedtls_pk_free(&pk);
	return rc;
}

static int cfg_parse(const struct plugcfg *p, linli_record *c, void *ud)
{
	struct mq *M = ud;
	static const char *const keys[] = {
	    "host",	"port",		 "client_id",	    "username",	   "password", "keepalive",
	    "accounts", "reconnect_min", "reconnect_max",   "alarm_after", "cafile",   "certfile",
	    "keyfile",	"broker_log",	 "broker_log_file", "dedup_file"};
	int rc = plugcfg_keys(p, c, keys, sizeof keys / sizeof keys[0]);
	if (!rc)
		rc = cfg_str(p, c, "host", M->host, sizeof M->host, false);
	if (!rc)
		rc = plugcfg_int(p, c, "port", 1, 65535, 1, "a TCP port", &M->port);
	if (!rc)
		rc = cfg_str(p, c, "client_id", M->client_id, sizeof M->client_id, true);
	if (!rc)
		rc = cfg_str(p, c, "username", M->username, sizeof M->username, false);
	if (!rc)
		rc = cfg_str(p, c, "password", M->password, sizeof M->password, false);
	if (!rc)
		rc = plugcfg_int(p, c, "keepalive", 5, 3600, 1, "whole seconds", &M->keepalive);
	if (!rc && M->password[0] && !M->username[0])
		rc = plugcfg_err(p, "password", "is given without a username");
	if (!rc)
		rc = plugcfg_bool(p, c, "accounts", &M->accounts);
	if (!rc)
		rc = cfg_str(p, c, "cafile", M->cafile, sizeof M->cafile, false);
	if (!rc)
		rc = cfg_str(p, c, "certfile", M->certfile, sizeof M->certfile, false);
	if (!rc)
		rc = cfg_str(p, c, "keyfile", M->keyfile, sizeof M->keyfile, false);
	if (!rc)
		rc = tls_check(p, M);
	if (!rc)
		rc = plugcfg_bool(p, c, "broker_log", &M->log_topic);
	if (!rc)
		rc = cfg_str(p, c, "broker_log_file", M->log_file, sizeof M->log_file, false);
	if (!rc)
		rc = cfg_str(p, c, "dedup_file", M->seen_file, sizeof M->seen_file - 8, false);
	if (!rc && M->seen_file[0] && M->seen_file[0] != '/')
		rc = plugcfg_err(p, "dedup_file", "'%s' must be an absolute path", M->seen_file);
	if (!rc && M->log_file[0] && M->log_file[0] != '/')
		rc =
		    plugcfg_err(p, "broker_log_file", "'%s' must be an absolute path", M->log_file);
	if (!rc)
		rc = plugcfg_int(p, c, "reconnect_min", 1, 3600, 1, "whole seconds",
				 &M->reconnect_min);
	if (!rc)
		rc = plugcfg_int(p, c, "reconnect_max", 1, 3600, 1, "whole seconds",
				 &M->reconnect_max);
	if (!rc && M->reconnect_max < M->reconnect_min)
		rc = plugcfg_err(p, "reconnect_max", "must be at least reconnect_min (%lld s)",
				 (long long)M->reconnect_min);
	if (!rc)
		rc = plugcfg_int(p, c, "alarm_after", 0, 86400, 1000, "whole seconds (0: no alarm)",
				 &M->alarm_after_ms);
	if (!rc && M->accounts && !M->username[0])
		rc = plugcfg_err(p, "accounts",
				 "needs username and password: linlid's own account on the broker, "
				 "a dynamic-security admin");
	return rc;
}

static int read_config(linli_ctx *ctx, struct mq *M)
{
	snprintf(M->host, sizeof M->host, "127.0.0.1");
	snprintf(M->client_id, sizeof M->client_id, "linlid");
	M->port = 1883;
	M->keepalive = 30;
	M->reconnect_min = 1;
	M->reconnect_max = 30;
	M->alarm_after_ms = 60000;
	M->log_topic = true;
	linli_record *c = NULL;
	int rc = api->plugin_config(ctx, &c);
	if (rc)
		return rc;
	char err[512] = "";
	struct plugcfg p = {.api = api, .plugin = "mqtt", .err = err, .errlen = sizeof err};
	rc = cfg_parse(&p, c, M);
	api->rec_free(c);
	if (rc)
		api->set_error(ctx, "%s", err);
	return rc;
}

/* ---- life ---- */

static void mq_free(struct mq *M)
{
	if (!M)
		return;
	if (M->m) {
		atomic_store(&M->stopping, true);
		if (M->loop_started)
			pthread_join(M->starter, NULL);
		if (atomic_load(&M->loop_running)) {
			mosquitto_disconnect(M->m);
			mosquitto_loop_stop(M->m, false);
		}
		mosquitto_destroy(M->m);
	}
	if (M->lib_init)
		mosquitto_lib_cleanup();
	for (size_t i = 0; i < M->n_devs; i++)
		free(M->devs[i]);
	free(M->devs);
	while (M->aq_head) {
		struct acct_op *o = M->aq_head;
		M->aq_head = o->next;
		acct_free(o);
	}
	if (M->log_fd >= 0)
		close(M->log_fd);
	if (M->seen_fd >= 0)
		close(M->seen_fd);
	for (size_t i = 0; i < M->n_loaded; i++)
		free(M->loaded[i]);
	free(M->loaded);
	free(M->role_json);
	free(M->check_json);
	pthread_mutex_destroy(&M->mu);
	pthread_mutex_destroy(&M->flush_mu);
	free(M);
}

/*
 * dedup_file: read the event ids taken before (each device's are given to it
 * when it opens), then opened for appending (made when missing). A line that
 * is not "ADDRESS ID" stops the plugin naming the file and line.
 */
static int seen_load(linli_ctx *ctx, struct mq *M)
{
	FILE *f = fopen(M->seen_file, "re");
	if (f) {
		char line[ADDR_MAX + EVID_MAX + 4];
		size_t no = 0;
		while (fgets(line, sizeof line, f)) {
			no++;
			line[strcspn(line, "\n")] = 0;
			char *sp = strchr(line, ' ');
			if (sp)
				*sp = 0;
			if (!sp || addr_problem(line) || !evid_ok(sp + 1, strlen(sp + 1))) {
				api->set_error(
				    ctx,
				    "linli.cfg: plugins.mqtt.dedup_file: '%s' line %zu is "
				    "not 'ADDRESS EVENT-ID'",
				    M->seen_file, no);
				fclose(f);
				return LINLI_EINVAL;
			}
			*sp = ' ';
			char **v = realloc(M->loaded, (M->n_loaded + 1) * sizeof *v);
			if (v)
				M->loaded = v;
			char *x = v ? strdup(line) : NULL;
			if (!x) {
				fclose(f);
				return LINLI_ENOMEM;
			}
			M->loaded[M->n_loaded++] = x;
		}
		fclose(f);
	} else if (errno != ENOENT) {
		api->set_error(ctx, "linli.cfg: plugins.mqtt.dedup_file: cannot read '%s': %s",
			       M->seen_file, strerror(errno));
		return LINLI_EIO;
	}
	M->seen_lines = M->n_loaded;
	M->seen_fd = open(M->seen_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (M->seen_fd < 0) {
		api->set_error(ctx, "linli.cfg: plugins.mqtt.dedup_file: cannot write '%s': %s",
			       M->seen_file, strerror(errno));
		return LINLI_EIO;
	}
	return 0;
}

static int start_client(linli_ctx *ctx, struct mq *M)
{
	if (mosquitto_lib_init() != MOSQ_ERR_SUCCESS) {
		api->set_error(ctx, "libmosquitto would not initialise");
		return LINLI_EIO;
	}
	M->lib_init = true;
	/* A persistent session (clean_session false) under the fixed client id: QoS 1
	 * messages for linlid wait at the broker while linlid is away. */
	M->m = mosquitto_new(M->client_id, false, M);
	if (!M->m) {
		api->set_error(ctx, "cannot make an MQTT client: %s", strerror(errno));
		return LINLI_ENOMEM;
	}
	if (mosquitto_int_option(M->m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5) !=
	    MOSQ_ERR_SUCCESS) {
		api->set_error(ctx, "libmosquitto would not speak MQTT 5");
		return LINLI_EIO;
	}
	mosquitto_connect_callback_set(M->m, on_connect);
	mosquitto_disconnect_callback_set(M->m, on_disconnect);
	mosquitto_message_v5_callback_set(M->m, on_message);
	mosquitto_reconnect_delay_set(M->m, (unsigned)M->reconnect_min, (unsigned)M->reconnect_max,
				      true);
	if (M->cafile[0]) {
		int trc =
		    mosquitto_tls_set(M->m, M->cafile, NULL, M->certfile[0] ? M->certfile : NULL,
				      M->keyfile[0] ? M->keyfile : NULL, NULL);
		if (trc != MOSQ_ERR_SUCCESS) {
			api->set_error(ctx, "linli.cfg: plugins.mqtt: TLS not set up: %s",
				       mosquitto_strerror(trc));
			return LINLI_EINVAL;
		}
	}
	if (M->username[0] &&
	    mosquitto_username_pw_set(M->m, M->username, M->password[0] ? M->password : NULL)) {
		api->set_error(ctx, "cannot set the broker credentials");
		return LINLI_ENOMEM;
	}
	return 0;
}

/*
 * The connection starts at the driver's first discover, which the kernel
 * calls once every registered device of the driver is open: the QoS 1
 * messages the broker kept for linlid's session arrive when their devices
 * are known (before, they would be refused as of no device and acknowledged).
 */
/*
 * The starter thread: the first connect, with the CONNECT properties (a
 * session that never expires: QoS 1 messages wait for linlid), is blocking in
 * libmosquitto 2.0; then the loop thread, which reconnects with the same
 * properties. A first connect that fails is retried by the loop thread; the
 * timer logs it.
 */
static void *starter_main(void *ud)
{
	struct mq *M = ud;
	if (atomic_exchange(&M->loop_running, false))
		mosquitto_loop_stop(M->m, false); /* a restart: the old loop thread has ended */
	mosquitto_property *props = NULL;
	int rc =
	    mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL, UINT32_MAX);
	if (rc == MOSQ_ERR_SUCCESS)
		rc = mosquitto_connect_bind_v5(M->m, M->host, (int)M->port, (int)M->keepalive, NULL,
					       props);
	atomic_store(&M->start_errno, errno);
	mosquitto_property_free_all(&props);
	int lrc = mosquitto_loop_start(M->m);
	if (lrc == MOSQ_ERR_SUCCESS)
		atomic_store(&M->loop_running, true);
	else
		rc = lrc;
	if (rc != MOSQ_ERR_SUCCESS) {
		atomic_store(&M->start_rc, rc);
		atomic_store(&M->start_to_log, true);
	}
	return NULL;
}

static int mq_discover(linli_ctx *ctx)
{
	struct mq *M = mq_of(ctx);
	if (M->loop_started)
		return 0;
	if (pthread_create(&M->starter, NULL, starter_main, M) != 0) {
		api->log(ctx, LINLI_LOG_ERROR, "cannot start the MQTT starter thread: %s",
			 strerror(errno));
		return LINLI_EIO;
	}
	M->loop_started = true;
	return 0;
}

static int mq_init(linli_ctx *ctx, const struct linli_api *a)
{
	api = a;
	struct mq *M = calloc(1, sizeof *M);
	if (!M)
		return LINLI_ENOMEM;
	M->ctx = ctx;
	M->log_fd = -1;
	M->seen_fd = -1;
	pthread_mutex_init(&M->mu, NULL);
	pthread_mutex_init(&M->flush_mu, NULL);
	api->set_userdata(ctx, M);
	int rc = read_config(ctx, M);
	if (!rc && M->accounts &&
	    (!(M->role_json = driver_role_json(M->username)) ||
	     !(M->check_json = driver_check_json(M->username))))
		rc = LINLI_ENOMEM;
	if (!rc && M->seen_file[0])
		rc = seen_load(ctx, M);
	if (!rc)
		rc = start_client(ctx, M);
	if (!rc)
		rc =
		    api->action_declare(ctx, "mqtt.status", "operator", NULL, NULL,
					"see the broker connection, the MQTT devices and counters");
	if (!rc)
		rc = api->cmd_register(ctx, "status", "",
				       "the broker connection, subscriptions and counters",
				       cmd_status, NULL);
	if (!rc)
		rc = api->cmd_require(ctx, "status", "mqtt.status");
	if (!rc)
		rc = api->timer_add(ctx, 500, 500, log_tick, M, NULL);
	if (!rc)
		rc = api->driver_register(ctx, "mqtt", &ops);
	if (rc) {
		api->set_userdata(ctx, NULL);
		mq_free(M);
		return rc;
	}
	api->log(ctx, LINLI_LOG_INFO, "broker %s:%lld as '%s'%s, keepalive %lld s", M->host,
		 (long long)M->port, M->client_id, M->username[0] ? " (with a username)" : "",
		 (long long)M->keepalive);
	return 0;
}

static void mq_fini(linli_ctx *ctx, const struct linli_api *a)
{
	(void)a;
	struct mq *M = api->userdata(ctx);
	api->set_userdata(ctx, NULL);
	if (M && M->aq_len)
		api->log(ctx, LINLI_LOG_WARN,
			 "%zu broker account change(s) were never sent (the broker was away): "
			 "rekey or remove those devices again once it is back",
			 M->aq_len);
	mq_free(M); /* stops the network thread before anything it reads is freed */
}

LINLI_PLUGIN(
    mq_init, mq_fini, .name = "mqtt", .version = "0.1.0", .family = "driver",
    .description = "MQTT device driver: maps broker topics to device readings, events and commands",
    .capabilities = {"hal.driver:mqtt", "net.connect", "store.read:devices", "bus.publish:dev/#",
		     "bus.publish:alarmreq/raise", "bus.publish:alarmreq/clear"});
