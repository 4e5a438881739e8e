/*
 * control — see control.h.
 *
 * Each worker is one nng context with one aio, cycling RECV → (kernel) →
 * SEND → RECV. The aio callback runs on an nng thread and only posts; all
 * decoding happens on the kernel thread. A worker whose call is pending
 * (CMD_PENDING) simply waits; the others keep serving.
 */
#include "control.h"

#include <errno.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <time.h>
#include <nng/supplemental/tls/tls.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "kernel.h"
#include "linli/error.h"
#include "log.h"
#include "mp.h"
#include "proto.h"

enum wstate { W_RECV, W_BUSY, W_SEND };

struct worker {
	struct control *ctl;
	nng_aio *aio;
	nng_ctx ctx;
	enum wstate state;
	nng_msg *req;
};

struct control {
	struct kernel *k;
	nng_socket sock;
	/* Listeners: the probe thread may replace one, so they sit under `lmu`. */
	pthread_mutex_t lmu;
	nng_listener listeners[CFG_MAX_LISTEN];
	char *addrs[CFG_MAX_LISTEN]; /* borrowed from k->cfg.listen */
	int n_listeners;
	bool listening;
	pthread_t probe;
	bool probe_running;
	pthread_mutex_t pmu;
	pthread_cond_t pcv;
	bool probe_stop;
	_Atomic unsigned long long restarts;
	nng_tls_config *tls;
	struct worker *workers;
	int n_workers;
	_Atomic unsigned long long served, malformed;
	atomic_bool closing; /* control_close has begun: workers stop */
};

static void worker_cb(void *arg);

static void send_reply(struct worker *w, msgpack_sbuffer *buf)
{
	nng_msg *m;
	if (nng_msg_alloc(&m, 0) != 0 || nng_msg_append(m, buf->data, buf->size) != 0) {
		log_error("control", "out of memory building a reply");
		/* Re-arm receive so the worker is not lost. */
		w->state = W_RECV;
		nng_ctx_recv(w->ctx, w->aio);
		return;
	}
	w->state = W_SEND;
	nng_aio_set_msg(w->aio, m);
	nng_ctx_send(w->ctx, w->aio);
}

static void pack_error(msgpack_packer *pk, int rc, const char *msg)
{
	msgpack_pack_map(pk, 4);
	mp_kv_bool(pk, "ok", false);
	mp_kv_int(pk, "code", rc);
	mp_kv_str(pk, "name", linli_errname(rc));
	mp_kv_str(pk, "error", msg);
}

static void reply_error(struct worker *w, int rc, const char *msg)
{
	msgpack_sbuffer b;
	msgpack_packer pk;
	msgpack_sbuffer_init(&b);
	msgpack_packer_init(&pk, &b, msgpack_sbuffer_write);
	pack_error(&pk, rc, msg);
	send_reply(w, &b);
	msgpack_sbuffer_destroy(&b);
}

static void call_finish(struct cmd_call *call, int rc)
{
	struct worker *w = call->transport;
	msgpack_sbuffer b;
	msgpack_packer pk;
	msgpack_sbuffer_init(&b);
	msgpack_packer_init(&pk, &b, msgpack_sbuffer_write);
	if (rc == 0) {
		msgpack_pack_map(&pk, 2);
		mp_kv_bool(&pk, "ok", true);
		mp_str(&pk, "data");
		if (call->data.size)
			msgpack_sbuffer_write(&b, call->data.data, call->data.size);
		else
			msgpack_pack_nil(&pk);
	} else
		pack_error(&pk, rc, call->err);
	atomic_fetch_add(&w->ctl->served, 1);
	send_reply(w, &b);
	msgpack_sbuffer_destroy(&b);
	cmd_call_free(call);
}

/* Decode one request into a call; on failure fill `err` and return NULL. */
static struct cmd_call *decode(struct kernel *k, const void *body, size_t len, char *err,
			       size_t errlen)
{
	if (len == 0) {
		snprintf(err, errlen, "empty request");
		return NULL;
	}
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	size_t off = 0;
	struct cmd_call *call = NULL;
	if (msgpack_unpack_next(&up, body, len, &off) != MSGPACK_UNPACK_SUCCESS) {
		snprintf(err, errlen, "request is not MessagePack (%zu bytes)", len);
		goto out;
	}
	const msgpack_object *root = &up.data;
	if (root->type != MSGPACK_OBJECT_MAP) {
		snprintf(err, errlen, "request must be a map");
		goto out;
	}
	if (off != len) {
		snprintf(err, errlen, "%zu trailing bytes after the request map", len - off);
		goto out;
	}
	const msgpack_object *v = mp_get(root, "v");
	if (v && !(v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 == PROTO_VERSION)) {
		snprintf(err, errlen, "unsupported protocol version (this linlid speaks %d)",
			 PROTO_VERSION);
		goto out;
	}
	const msgpack_object *av = mp_get(root, "argv");
	if (!av || av->type != MSGPACK_OBJECT_ARRAY || av->via.array.size == 0) {
		snprintf(err, errlen, "request field 'argv' is missing or empty");
		goto out;
	}
	if (av->via.array.size > PROTO_MAX_ARGS) {
		snprintf(err, errlen, "more than %d argv words", PROTO_MAX_ARGS);
		goto out;
	}
	int argc = (int)av->via.array.size;
	char *argv[PROTO_MAX_ARGS];
	for (int i = 0; i < argc; i++) {
		argv[i] = mp_strdup(&av->via.array.ptr[i]);
		if (!argv[i] || (i == 0 && !*argv[i]) || strlen(argv[i]) != av->via.array.ptr[i].via.str.size) {
			snprintf(err, errlen, "argv word %d is not a string", i + 1);
			for (int j = 0; j <= i; j++)
				free(argv[j]);
			goto out;
		}
	}
	call = cmd_call_new(k, argc, argv);
	for (int i = 0; i < argc; i++)
		free(argv[i]);
	if (!call) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	const msgpack_object *s = mp_get(root, "session");
	if (s && s->type == MSGPACK_OBJECT_STR)
		call->session = mp_strdup(s);
	const msgpack_object *in = mp_get(root, "input");
	if (in && (in->type == MSGPACK_OBJECT_STR || in->type == MSGPACK_OBJECT_BIN)) {
		call->input_len = in->via.str.size;
		call->input = malloc(call->input_len + 1);
		if (call->input) {
			memcpy(call->input, in->via.str.ptr, call->input_len);
			call->input[call->input_len] = '\0';
		}
	}
out:
	msgpack_unpacked_destroy(&up);
	return call;
}

/* Kernel thread: one request arrived on worker `arg`. */
static void on_request(struct kernel *k, void *arg)
{
	struct worker *w = arg;
	nng_msg *m = w->req;
	w->req = NULL;
	char err[256];
	struct cmd_call *call = decode(k, nng_msg_body(m), nng_msg_len(m), err, sizeof err);
	nng_msg_free(m);
	if (!call) {
		atomic_fetch_add(&w->ctl->malformed, 1);
		log_warn("control", "malformed request: %s", err);
		reply_error(w, LINLI_EPROTO, err);
		return;
	}
	call->finish = call_finish;
	call->transport = w;
	cmd_dispatch(k->cmds, call);
}

static void worker_cb(void *arg)
{
	struct worker *w = arg;
	int rv = nng_aio_result(w->aio);
	switch (w->state) {
	case W_RECV:
		if (rv != 0) {
			/*
			 * Only our own close ends a worker. nng also fails a
			 * context's receive when a peer's pipe dies (an
			 * oversized message, a reset); giving up then let a
			 * few oversized requests stop every worker.
			 */
			if (atomic_load(&w->ctl->closing))
				return;
			if (rv != NNG_ETIMEDOUT)
				log_debug("control", "receive failed (%s); serving on",
					  nng_strerror(rv));
			nng_ctx_recv(w->ctx, w->aio);
			return;
		}
		w->req = nng_aio_get_msg(w->aio);
		if (nng_msg_len(w->req) == PROTO_PING_LEN &&
		    memcmp(nng_msg_body(w->req), PROTO_PING, PROTO_PING_LEN) == 0) {
			/* Liveness probe: answered here, without the kernel thread. */
			memcpy(nng_msg_body(w->req), PROTO_PONG, PROTO_PING_LEN);
			nng_aio_set_msg(w->aio, w->req);
			w->req = NULL;
			w->state = W_SEND;
			nng_ctx_send(w->ctx, w->aio);
			return;
		}
		w->state = W_BUSY;
		if (kernel_post(w->ctl->k, on_request, w) != 0) {
			nng_msg_free(w->req);
			w->req = NULL;
		}
		return;
	case W_SEND:
		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(w->aio));
			if (atomic_load(&w->ctl->closing))
				return;
		}
		w->state = W_RECV;
		nng_ctx_recv(w->ctx, w->aio);
		return;
	case W_BUSY:
		return;
	}
}

static int read_file(const char *path, char **out)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	*out = calloc(1, (size_t)(n > 0 ? n : 0) + 1);
	if (!*out || fread(*out, 1, (size_t)n, f) != (size_t)n) {
		free(*out);
		fclose(f);
		return -1;
	}
	fclose(f);
	return 0;
}

static int setup_tls(struct control *c, char *err, size_t errlen)
{
	const struct cfg *cfg = &c->k->cfg;
	char *cert = NULL, *key = NULL;
	int rv;
	if (read_file(cfg->tls_cert, &cert) != 0) {
		snprintf(err, errlen, "control.tls_cert: cannot read %s: %s", cfg->tls_cert,
			 strerror(errno));
		return LINLI_ECONFIG;
	}
	if (read_file(cfg->tls_key, &key) != 0) {
		free(cert);
		snprintf(err, errlen, "control.tls_key: cannot read %s: %s", cfg->tls_key,
			 strerror(errno));
		return LINLI_ECONFIG;
	}
	if ((rv = nng_tls_config_alloc(&c->tls, NNG_TLS_MODE_SERVER)) == 0)
		rv = nng_tls_config_own_cert(c->tls, cert, key, NULL);
	free(cert);
	memset(key, 0, strlen(key));
	free(key);
	if (rv != 0) {
		snprintf(err, errlen, "control.tls_cert/tls_key: %s", nng_strerror(rv));
		return LINLI_ECONFIG;
	}
	return 0;
}

/* Create and start a listener on `addr`; 0 with *out, or an nng error. */
static int start_listener(struct control *c, const char *addr, nng_listener *out)
{
	nng_listener l;
	int rv;
	if (strncmp(addr, "ipc://", 6) == 0)
		unlink(addr + 6); /* stale socket of a dead daemon: we hold the lock */
	if ((rv = nng_listener_create(&l, c->sock, addr)) != 0)
		return rv;
	if (strncmp(addr, "tls+tcp://", 10) == 0 &&
	    (rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, c->tls)) != 0) {
		nng_listener_close(l);
		return rv;
	}
	if ((rv = nng_listener_start(l, 0)) != 0) {
		nng_listener_close(l);
		return rv;
	}
	*out = l;
	return 0;
}

static int listen_one(struct control *c, const char *addr, char *err, size_t errlen)
{
	nng_listener l;
	int rv = start_listener(c, addr, &l);
	if (rv != 0) {
		snprintf(err, errlen, "control.listen: cannot listen on %s: %s", addr,
			 nng_strerror(rv));
		return LINLI_EIO;
	}
	c->addrs[c->n_listeners] = (char *)addr;
	c->listeners[c->n_listeners++] = l;
	log_info("control", "listening on %s", addr);
	return 0;
}

/*
 * ---- The listener probe ----
 *
 * nng 1.5.2 (Debian 12) has a bug: when a connection fails during the SP
 * handshake with NNG_ECLOSED while the socket waits for its next pipe (a
 * client that connects and drops at once, or a req socket torn down while
 * redialling), the listener's accept loop treats it as its own close and
 * never accepts again — every later console hangs. Upstream converts that
 * code since; we cannot patch the library, so a thread probes each listener
 * with a fresh connection and a PING (answered by the nng worker itself, no
 * kernel thread involved) and restarts a listener that fails twice in a row.
 * Closing the listener drops the connections it had accepted, so a request
 * in flight at that moment fails with a reset; the console says so.
 */
static void probe_addr(const char *addr, char *out, size_t n)
{
	/* A wildcard host is reached on loopback. */
	static const char *const wild[][2] = {{"tcp://0.0.0.0:", "tcp://127.0.0.1:"},
					      {"tcp://*:", "tcp://127.0.0.1:"},
					      {"tcp://:", "tcp://127.0.0.1:"},
					      {"tls+tcp://0.0.0.0:", "tls+tcp://127.0.0.1:"},
					      {"tls+tcp://*:", "tls+tcp://127.0.0.1:"},
					      {"tls+tcp://:", "tls+tcp://127.0.0.1:"}};
	for (size_t i = 0; i < sizeof wild / sizeof wild[0]; i++)
		if (strncmp(addr, wild[i][0], strlen(wild[i][0])) == 0) {
			snprintf(out, n, "%s%s", wild[i][1], addr + strlen(wild[i][0]));
			return;
		}
	snprintf(out, n, "%s", addr);
}

static bool probe_one(const char *addr)
{
	char a[512];
	probe_addr(addr, a, sizeof a);
	nng_socket s;
	nng_dialer d;
	nng_tls_config *tls = NULL;
	bool ok = false;
	if (nng_req0_open(&s) != 0)
		return true; /* cannot tell: assume alive */
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 2000);
	nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 2000);
	nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	if (nng_dialer_create(&d, s, a) != 0)
		goto out;
	if (strncmp(a, "tls+tcp://", 10) == 0) {
		if (nng_tls_config_alloc(&tls, NNG_TLS_MODE_CLIENT) != 0 ||
		    nng_tls_config_auth_mode(tls, NNG_TLS_AUTH_MODE_NONE) != 0 ||
		    nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, tls) != 0)
			goto out;
	}
	if (nng_dialer_start(d, 0) != 0 || nng_send(s, PROTO_PING, PROTO_PING_LEN, 0) != 0)
		goto out;
	char *rep = NULL;
	size_t n = 0;
	if (nng_recv(s, &rep, &n, NNG_FLAG_ALLOC) == 0) {
		ok = n == PROTO_PING_LEN && memcmp(rep, PROTO_PONG, n) == 0;
		nng_free(rep, n);
	}
out:
	nng_close(s);
	if (tls)
		nng_tls_config_free(tls);
	return ok;
}

static void *probe_thread(void *arg)
{
	struct control *c = arg;
	int fails[CFG_MAX_LISTEN] = {0};
	pthread_mutex_lock(&c->pmu);
	while (!c->probe_stop) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&c->pcv, &c->pmu, &ts);
		if (c->probe_stop)
			break;
		pthread_mutex_unlock(&c->pmu);
		pthread_mutex_lock(&c->lmu);
		int n = c->listening ? c->n_listeners : 0;
		pthread_mutex_unlock(&c->lmu);
		for (int i = 0; i < n; i++) {
			if (probe_one(c->addrs[i])) {
				fails[i] = 0;
				continue;
			}
			if (++fails[i] < 2)
				continue;
			fails[i] = 0;
			pthread_mutex_lock(&c->lmu);
			if (c->listening) {
				/* Closing it also drops the connections it accepted:
				 * their clients see a reset and may retry. */
				nng_listener_close(c->listeners[i]);
				nng_listener l;
				int rv = start_listener(c, c->addrs[i], &l);
				if (rv == 0) {
					c->listeners[i] = l;
					atomic_fetch_add(&c->restarts, 1);
					log_warn("control",
						 "%s stopped accepting connections (a known nng "
						 "1.5.2 handshake fault); listener restarted",
						 c->addrs[i]);
				} else
					log_error("control", "%s: cannot restart the listener: %s",
						  c->addrs[i], nng_strerror(rv));
			}
			pthread_mutex_unlock(&c->lmu);
		}
		pthread_mutex_lock(&c->pmu);
	}
	pthread_mutex_unlock(&c->pmu);
	return NULL;
}

int control_open(struct kernel *k, struct control **out, char *err, size_t errlen)
{
	struct control *c = calloc(1, sizeof *c);
	if (!c)
		return LINLI_ENOMEM;
	c->k = k;
	int rv, rc = LINLI_EIO;
	if ((rv = nng_rep0_open(&c->sock)) != 0) {
		snprintf(err, errlen, "control: cannot open socket: %s", nng_strerror(rv));
		free(c);
		return LINLI_EIO;
	}
	nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, k->cfg.max_request);
	pthread_mutex_init(&c->lmu, NULL);
	pthread_mutex_init(&c->pmu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->pcv, &ca);
	pthread_condattr_destroy(&ca);
	c->listening = true;
	for (int i = 0; i < k->cfg.n_listen; i++)
		if (strncmp(k->cfg.listen[i], "tls+tcp://", 10) == 0 && !c->tls &&
		    (rc = setup_tls(c, err, errlen)) != 0)
			goto fail;
	for (int i = 0; i < k->cfg.n_listen; i++)
		if ((rc = listen_one(c, k->cfg.listen[i], err, errlen)) != 0)
			goto fail;
	c->n_workers = k->cfg.control_workers;
	c->workers = calloc((size_t)c->n_workers, sizeof *c->workers);
	if (!c->workers) {
		rc = LINLI_ENOMEM;
		goto fail;
	}
	for (int i = 0; i < c->n_workers; i++) {
		struct worker *w = &c->workers[i];
		w->ctl = c;
		if (nng_aio_alloc(&w->aio, worker_cb, w) != 0 || nng_ctx_open(&w->ctx, c->sock) != 0) {
			snprintf(err, errlen, "control: cannot allocate worker %d", i);
			rc = LINLI_ENOMEM;
			goto fail;
		}
	}
	for (int i = 0; i < c->n_workers; i++) {
		c->workers[i].state = W_RECV;
		nng_ctx_recv(c->workers[i].ctx, c->workers[i].aio);
	}
	c->probe_running = pthread_create(&c->probe, NULL, probe_thread, c) == 0;
	if (!c->probe_running)
		log_warn("control", "cannot start the listener probe thread");
	*out = c;
	return 0;
fail:
	control_close(c);
	return rc;
}

void control_stop_listening(struct control *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lmu);
	c->listening = false;
	for (int i = 0; i < c->n_listeners; i++)
		nng_listener_close(c->listeners[i]);
	c->n_listeners = 0;
	pthread_mutex_unlock(&c->lmu);
}

void control_close(struct control *c)
{
	if (!c)
		return;
	if (c->probe_running) {
		pthread_mutex_lock(&c->pmu);
		c->probe_stop = true;
		pthread_cond_signal(&c->pcv);
		pthread_mutex_unlock(&c->pmu);
		pthread_join(c->probe, NULL);
	}
	control_stop_listening(c);
	atomic_store(&c->closing, true);
	nng_close(c->sock);
	for (int i = 0; i < c->n_workers; i++) {
		struct worker *w = &c->workers[i];
		if (w->aio) {
			nng_aio_stop(w->aio);
			nng_aio_free(w->aio);
		}
		if (w->req)
			nng_msg_free(w->req);
	}
	free(c->workers);
	if (c->tls)
		nng_tls_config_free(c->tls);
	for (int i = 0; i < c->k->cfg.n_listen; i++)
		if (strncmp(c->k->cfg.listen[i], "ipc://", 6) == 0)
			unlink(c->k->cfg.listen[i] + 6);
	free(c);
}

unsigned long long control_restarts(const struct control *c)
{
	return c ? atomic_load(&c->restarts) : 0;
}

void control_counters(const struct control *c, unsigned long long *served,
		      unsigned long long *malformed)
{
	*served = c ? atomic_load(&c->served) : 0;
	*malformed = c ? atomic_load(&c->malformed) : 0;
}
