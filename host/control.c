/*
 * control — see control.h.
 *
 * Each worker is one nng context with one aio, cycling RECV → (kernel) →
 * SEND → RECV. The aio callback runs on an nng thread and only posts; all
 * decoding happens on the kernel thread. A worker whose call is pending
 * (CMD_PENDING) simply waits; the others keep serving.
 *
 * Connections that misbehave. nng drops a connection whose SP header is
 * wrong, and a connection never holds a worker until one whole request has
 * arrived on it, so garbage and stalls cost others nothing but a file
 * descriptor and some memory each. To bound that, the watch (an nng sleep
 * aio, every ≤ 1 s) cuts three kinds of connection that nng 1.5.2 keeps:
 *  - one that completed the handshake and then stalls (sends nothing, or half
 *    a message): the conn table tracks every pipe (nng_pipe_notify) with its
 *    requests in progress and the time of its last completed request; those
 *    idle past control.idle_timeout_ms are closed;
 *  - one that stalls inside the TLS handshake: nng's 10 s negotiation timer
 *    cannot cancel it there (the tls layer only aborts an active TCP send),
 *    so the watch finds sockets accepted on a tls+tcp:// port that have not
 *    become a pipe within CONTROL_HANDSHAKE_MS and shuts them down (shutdown,
 *    not close: nng still owns the descriptor and closes it itself). nng's
 *    own timer does this for plain tcp://;
 *  - one that stops reading its replies and so would park workers in ctx
 *    sends: sends time out after the idle limit and cut that connection, and
 *    one connection may hold at most half the workers at once.
 */
#include "control.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "access.h"
#include "cmd.h"
#include "kernel.h"
#include "linli/error.h"
#include "log.h"
#include "mp.h"
#include "proto.h"

enum wstate { W_RECV, W_BUSY, W_SEND };

/* What nng's tcp transport allows for the SP handshake; the watch allows TLS the same. */
#define CONTROL_HANDSHAKE_MS 10000

/* A TCP peer address, comparable across nng_sockaddr and struct sockaddr. */
struct peer {
	uint16_t family; /* AF_INET, AF_INET6; 0 for ipc */
	uint16_t port;	 /* network order */
	uint8_t addr[16];
};

/* A socket accepted on a tls+tcp:// port that is not a pipe yet. */
struct pending {
	int fd;
	struct peer peer;
	uint64_t first_ms;
	bool seen;
};

struct worker {
	struct control *ctl;
	nng_aio *aio;
	nng_ctx ctx;
	enum wstate state;
	nng_msg *req;
	uint32_t pipe; /* the connection the request came on */
};

/* One connection (nng pipe) as the idle watch sees it. */
struct conn {
	uint32_t id;
	int inflight;	  /* requests received whose reply is not handed over yet */
	uint64_t last_ms; /* connected, or last request completed (kernel_now_ms) */
	struct peer peer;
	bool cut; /* closed by us, its REM_POST not seen yet */
};

struct control {
	struct kernel *k;
	nng_socket sock;
	bool sock_open;
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
	_Atomic unsigned long long served, malformed, cut;
	/* The conn table: written by nng's pipe callbacks and workers, read by the watch. */
	pthread_mutex_t mu;
	struct conn *conns;
	int n_conns, cap_conns;
	uint64_t idle_ms;	       /* cut a connection idle this long */
	int max_inflight;	       /* requests one connection may have in progress */
	nng_aio *watch;		       /* the idle watch's sleep */
	atomic_bool closing;	       /* control_close has begun: workers and the watch stop */
	_Atomic int waiting;	       /* workers armed to receive */
	_Atomic uint64_t saturated_ms; /* last seen with no worker waiting */
	/* The handshake watch: the watch's own, no lock. */
	uint16_t tls_ports[CFG_MAX_LISTEN]; /* bound ports of tls+tcp:// listeners, host order */
	int n_tls_ports;
	struct pending *pend;
	int n_pend, cap_pend;
	uint64_t last_scan_ms;
};

static void worker_cb(void *arg);

/*
 * Arm a worker to receive. Workers waiting count: while none waits, a
 * request that arrived sits in rep0 unseen by the conn table, so that time
 * must not count as its connection's idleness (see watch_cb).
 */
static void worker_recv(struct worker *w)
{
	w->state = W_RECV;
	atomic_fetch_add(&w->ctl->waiting, 1);
	nng_aio_set_timeout(w->aio, NNG_DURATION_INFINITE);
	nng_ctx_recv(w->ctx, w->aio);
}

/* ---- the conn table ---- */

/* Find connection `id` (c->mu held); add it when `add`. NULL if absent or out of memory. */
static struct conn *conn_get(struct control *c, uint32_t id, bool add)
{
	for (int i = 0; i < c->n_conns; i++)
		if (c->conns[i].id == id)
			return &c->conns[i];
	if (!add)
		return NULL;
	if (c->n_conns == c->cap_conns) {
		int cap = c->cap_conns ? c->cap_conns * 2 : 16;
		struct conn *n = realloc(c->conns, (size_t)cap * sizeof *n);
		if (!n)
			return NULL; /* untracked: served, but never cut for idling */
		c->conns = n;
		c->cap_conns = cap;
	}
	struct conn *x = &c->conns[c->n_conns++];
	*x = (struct conn){.id = id, .last_ms = kernel_now_ms()};
	return x;
}

static void conn_drop(struct control *c, uint32_t id)
{
	pthread_mutex_lock(&c->mu);
	struct conn *x = conn_get(c, id, false);
	if (x)
		*x = c->conns[--c->n_conns];
	pthread_mutex_unlock(&c->mu);
}

static void peer_from_nng(const nng_sockaddr *sa, struct peer *out)
{
	*out = (struct peer){0};
	if (sa->s_family == NNG_AF_INET) {
		out->family = AF_INET;
		out->port = sa->s_in.sa_port;
		memcpy(out->addr, &sa->s_in.sa_addr, 4);
	} else if (sa->s_family == NNG_AF_INET6) {
		out->family = AF_INET6;
		out->port = sa->s_in6.sa_port;
		memcpy(out->addr, sa->s_in6.sa_addr, 16);
	}
}

static bool peer_from_sockaddr(const struct sockaddr_storage *ss, struct peer *out)
{
	*out = (struct peer){0};
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
		out->family = AF_INET;
		out->port = in->sin_port;
		memcpy(out->addr, &in->sin_addr, 4);
		return true;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in = (const struct sockaddr_in6 *)ss;
		out->family = AF_INET6;
		out->port = in->sin6_port;
		memcpy(out->addr, &in->sin6_addr, 16);
		return true;
	}
	return false;
}

static bool peer_eq(const struct peer *a, const struct peer *b)
{
	return a->family == b->family && a->port == b->port && !memcmp(a->addr, b->addr, 16);
}

static void peer_format(const struct peer *p, char *out, size_t n)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	if (p->family == 0) {
		snprintf(out, n, "ipc");
		return;
	}
	inet_ntop(p->family, p->addr, ip, sizeof ip);
	snprintf(out, n, p->family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, ntohs(p->port));
}

/* nng thread: a connection completed its handshake (ADD_PRE) or is gone (REM_POST). */
static void on_pipe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct control *c = arg;
	uint32_t id = (uint32_t)nng_pipe_id(p);
	if (ev == NNG_PIPE_EV_REM_POST) {
		conn_drop(c, id);
		return;
	}
	struct peer pr = {0};
	nng_sockaddr sa;
	if (nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa) == 0)
		peer_from_nng(&sa, &pr);
	pthread_mutex_lock(&c->mu);
	struct conn *x = conn_get(c, id, true);
	if (x)
		x->peer = pr;
	pthread_mutex_unlock(&c->mu);
}

/* A request arrived on `id`. False when the connection already has too many in progress. */
static bool conn_begin(struct control *c, uint32_t id)
{
	bool ok = true;
	pthread_mutex_lock(&c->mu);
	struct conn *x = conn_get(c, id, true);
	if (x && x->inflight >= c->max_inflight)
		ok = false;
	else if (x) {
		x->inflight++;
		x->last_ms = kernel_now_ms();
	}
	pthread_mutex_unlock(&c->mu);
	return ok;
}

/* The reply to a request of `id` is handed over (or given up). */
static void conn_end(struct control *c, uint32_t id)
{
	pthread_mutex_lock(&c->mu);
	struct conn *x = conn_get(c, id, false);
	if (x) {
		if (x->inflight > 0)
			x->inflight--;
		x->last_ms = kernel_now_ms();
	}
	pthread_mutex_unlock(&c->mu);
}

static void peer_name(nng_pipe p, char *out, size_t n)
{
	nng_sockaddr sa;
	struct peer pr;
	if (nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa) != 0) {
		snprintf(out, n, "?");
		return;
	}
	peer_from_nng(&sa, &pr);
	peer_format(&pr, out, n);
}

/* Close connection `id` and say why. Never called with c->mu held. */
static void conn_cut(struct control *c, uint32_t id, const char *why)
{
	nng_pipe p = {.id = id};
	char peer[80];
	pthread_mutex_lock(&c->mu);
	struct conn *x = conn_get(c, id, false);
	bool again = x && x->cut;
	if (x)
		x->cut = true;
	pthread_mutex_unlock(&c->mu);
	if (again)
		return; /* several workers may give up on the same connection */
	peer_name(p, peer, sizeof peer);
	if (nng_pipe_close(p) == NNG_ENOENT) {
		conn_drop(c, id); /* gone already; its REM_POST came before a late request */
		return;
	}
	atomic_fetch_add(&c->cut, 1);
	log_info("control", "closed connection %u from %s: %s", id, peer, why);
}

/* Is `fd` a connection accepted on one of our tls+tcp:// ports? Fills its peer. */
static bool accepted_on_tls(const struct control *c, int fd, struct peer *out)
{
	struct stat st;
	struct sockaddr_storage ss;
	socklen_t n = sizeof ss;
	if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode) ||
	    getsockname(fd, (struct sockaddr *)&ss, &n) != 0 || !peer_from_sockaddr(&ss, out))
		return false;
	bool ours = false;
	for (int i = 0; i < c->n_tls_ports; i++)
		ours |= ntohs(out->port) == c->tls_ports[i];
	n = sizeof ss;
	return ours && getpeername(fd, (struct sockaddr *)&ss, &n) == 0 &&
	       peer_from_sockaddr(&ss, out);
}

static bool peer_is_pipe(struct control *c, const struct peer *p)
{
	bool found = false;
	pthread_mutex_lock(&c->mu);
	for (int i = 0; i < c->n_conns && !found; i++)
		found = peer_eq(&c->conns[i].peer, p);
	pthread_mutex_unlock(&c->mu);
	return found;
}

static struct pending *pending_get(struct control *c, int fd, const struct peer *p, uint64_t now)
{
	for (int i = 0; i < c->n_pend; i++)
		if (c->pend[i].fd == fd && peer_eq(&c->pend[i].peer, p))
			return &c->pend[i];
	if (c->n_pend == c->cap_pend) {
		int cap = c->cap_pend ? c->cap_pend * 2 : 16;
		struct pending *n = realloc(c->pend, (size_t)cap * sizeof *n);
		if (!n)
			return NULL;
		c->pend = n;
		c->cap_pend = cap;
	}
	struct pending *x = &c->pend[c->n_pend++];
	*x = (struct pending){.fd = fd, .peer = *p, .first_ms = now};
	return x;
}

/*
 * Shut down sockets of tls+tcp:// listeners still without a pipe after
 * CONTROL_HANDSHAKE_MS (see the top of this file). The descriptors are
 * nng's: they are only shut down, after checking again that each is still
 * the same connection, and nng closes them when its read fails.
 */
static void watch_handshakes(struct control *c, uint64_t now)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return;
	for (int i = 0; i < c->n_pend; i++)
		c->pend[i].seen = false;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		char *end;
		long fd = strtol(e->d_name, &end, 10);
		struct peer pr;
		if (*end || end == e->d_name || fd == dirfd(d) || fd > INT32_MAX ||
		    !accepted_on_tls(c, (int)fd, &pr) || peer_is_pipe(c, &pr))
			continue;
		struct pending *x = pending_get(c, (int)fd, &pr, now);
		if (x)
			x->seen = true;
	}
	closedir(d);
	for (int i = 0; i < c->n_pend;) {
		struct pending *x = &c->pend[i];
		struct peer again;
		if (x->seen && now - x->first_ms < CONTROL_HANDSHAKE_MS) {
			i++;
			continue;
		}
		if (x->seen && accepted_on_tls(c, x->fd, &again) && peer_eq(&again, &x->peer) &&
		    !peer_is_pipe(c, &again) && shutdown(x->fd, SHUT_RDWR) == 0) {
			char name[80];
			peer_format(&x->peer, name, sizeof name);
			atomic_fetch_add(&c->cut, 1);
			log_info("control",
				 "closed connection from %s: no TLS and SP handshake "
				 "within %d ms",
				 name, CONTROL_HANDSHAKE_MS);
		}
		*x = c->pend[--c->n_pend];
	}
}

/* Next look in a quarter of the idle limit, 10 ms to 1 s. */
static void watch_arm(struct control *c)
{
	uint64_t tick = c->idle_ms / 4;
	nng_sleep_aio((nng_duration)(tick < 10 ? 10 : tick > 1000 ? 1000 : tick), c->watch);
}

/*
 * nng thread: the idle watch. Closes connections with nothing in progress
 * whose last request completed (or that connected) idle_ms ago: a client
 * that stalls mid-message, or after the handshake, or simply stays
 * connected. The console reconnects transparently for its next command.
 */
static void watch_cb(void *arg)
{
	struct control *c = arg;
	if (nng_aio_result(c->watch) != 0 || atomic_load(&c->closing))
		return;
	uint32_t ids[256];
	int n = 0;
	uint64_t now = kernel_now_ms();
	/*
	 * While every worker is busy, a connection's next request may wait in
	 * rep0 where the table cannot see it: idleness counts from the end of
	 * such a stretch, when any waiting request has been taken.
	 */
	if (atomic_load(&c->waiting) == 0)
		atomic_store(&c->saturated_ms, now);
	uint64_t sat = atomic_load(&c->saturated_ms);
	pthread_mutex_lock(&c->mu);
	for (int i = 0; i < c->n_conns && n < (int)(sizeof ids / sizeof ids[0]); i++) {
		struct conn *x = &c->conns[i];
		uint64_t since = x->last_ms > sat ? x->last_ms : sat;
		if (x->inflight == 0 && now - since >= c->idle_ms) {
			ids[n++] = x->id;
			x->last_ms = now; /* not again on the next tick if the close is slow */
		}
	}
	pthread_mutex_unlock(&c->mu);
	char why[64];
	snprintf(why, sizeof why, "idle for %llu ms", (unsigned long long)c->idle_ms);
	for (int i = 0; i < n; i++)
		conn_cut(c, ids[i], why);
	if (c->n_tls_ports && now - c->last_scan_ms >= 500) {
		c->last_scan_ms = now;
		watch_handshakes(c, now);
	}
	watch_arm(c);
}

static void send_reply(struct worker *w, msgpack_sbuffer *buf)
{
	nng_msg *m;
	if (nng_msg_alloc(&m, 0) != 0 || nng_msg_append(m, buf->data, buf->size) != 0) {
		log_error("control", "out of memory building a reply");
		/* Re-arm receive so the worker is not lost. */
		conn_end(w->ctl, w->pipe);
		worker_recv(w);
		return;
	}
	w->state = W_SEND;
	/* A reply queued behind unread ones gives up (see conn_cut). nng 1.5.2's
	 * rep0 ignores a context's NNG_OPT_SENDTIMEO: the aio carries it. */
	nng_aio_set_timeout(w->aio, (nng_duration)w->ctl->idle_ms);
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

struct cmd_call *control_decode(struct kernel *k, const void *body, size_t len, char *err,
				size_t errlen)
{
	if (len == 0) {
		snprintf(err, errlen, "empty request");
		return NULL;
	}
	/* Declared sizes first: msgpack-c allocates for a header before it reads on. */
	char why[160];
	size_t used;
	if (mp_check_next(body, len, PROTO_MAX_DEPTH, 0, &used, why, sizeof why) != 0) {
		snprintf(err, errlen, "request is not MessagePack (%zu bytes): %s", len, why);
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
		if (!argv[i] || (i == 0 && !*argv[i]) ||
		    strlen(argv[i]) != av->via.array.ptr[i].via.str.size) {
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
			if (call->input_len) /* msgpack-c gives an empty string a NULL pointer */
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
	struct cmd_call *call = control_decode(k, nng_msg_body(m), nng_msg_len(m), err, sizeof err);
	nng_msg_free(m);
	if (!call) {
		atomic_fetch_add(&w->ctl->malformed, 1);
		log_warn("control", "malformed request: %s", err);
		reply_error(w, LINLI_EPROTO, err);
		return;
	}
	call->finish = call_finish;
	call->transport = w;
	int rc = access_gate(k, call);
	if (rc) {
		cmd_finish(call, rc);
		return;
	}
	cmd_dispatch(k->cmds, call);
}

static void worker_cb(void *arg)
{
	struct worker *w = arg;
	int rv = nng_aio_result(w->aio);
	switch (w->state) {
	case W_RECV:
		if (atomic_fetch_sub(&w->ctl->waiting, 1) == 1)
			atomic_store(&w->ctl->saturated_ms, kernel_now_ms());
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
			worker_recv(w);
			return;
		}
		w->req = nng_aio_get_msg(w->aio);
		w->pipe = (uint32_t)nng_pipe_id(nng_msg_get_pipe(w->req));
		if (!conn_begin(w->ctl, w->pipe)) {
			nng_msg_free(w->req);
			w->req = NULL;
			char why[80];
			snprintf(why, sizeof why, "more than %d requests in progress at once",
				 w->ctl->max_inflight);
			conn_cut(w->ctl, w->pipe, why);
			worker_recv(w);
			return;
		}
		if (nng_msg_len(w->req) == PROTO_PING_LEN &&
		    memcmp(nng_msg_body(w->req), PROTO_PING, PROTO_PING_LEN) == 0) {
			/* Liveness probe: answered here, without the kernel thread. */
			memcpy(nng_msg_body(w->req), PROTO_PONG, PROTO_PING_LEN);
			nng_aio_set_timeout(w->aio, (nng_duration)w->ctl->idle_ms);
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
			conn_end(w->ctl, w->pipe);
		}
		return;
	case W_SEND:
		conn_end(w->ctl, w->pipe);
		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(w->aio));
			if (atomic_load(&w->ctl->closing))
				return;
			if (rv == NNG_ETIMEDOUT)
				conn_cut(w->ctl, w->pipe, "not taking its replies");
		}
		worker_recv(w);
		return;
	case W_BUSY:
		return;
	}
}

/* Read a small text file whole, NUL-terminated. -1 with errno set on failure. */
static int read_file(const char *path, char **out)
{
	*out = NULL;
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	struct stat st;
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (1 << 20)) {
		errno = S_ISDIR(st.st_mode) ? EISDIR : !S_ISREG(st.st_mode) ? EINVAL : EFBIG;
		fclose(f);
		return -1;
	}
	size_t n = (size_t)st.st_size;
	*out = calloc(1, n + 1);
	if (!*out || fread(*out, 1, n, f) != n) {
		free(*out);
		*out = NULL;
		fclose(f);
		errno = EIO;
		return -1;
	}
	fclose(f);
	return 0;
}

static bool has_tls_listener(const struct cfg *cfg)
{
	for (int i = 0; i < cfg->n_listen; i++)
		if (strncmp(cfg->listen[i], "tls+tcp://", 10) == 0)
			return true;
	return false;
}

/*
 * Parse the certificate and key as nng's TLS engine (mbedtls) will, so that a
 * bad file is refused by name at start rather than failing every handshake.
 */
int control_check_tls(const struct cfg *cfg, char *err, size_t errlen)
{
	if (!has_tls_listener(cfg))
		return 0;
	char *cert = NULL, *key = NULL, why[160];
	int rc = LINLI_ECONFIG, mrc;
	mbedtls_x509_crt crt;
	mbedtls_pk_context pk;
	mbedtls_x509_crt_init(&crt);
	mbedtls_pk_init(&pk);
	if (read_file(cfg->tls_cert, &cert) != 0) {
		snprintf(err, errlen, "%s: control.tls_cert: cannot read %s: %s", cfg->source,
			 cfg->tls_cert, strerror(errno));
		goto out;
	}
	if (read_file(cfg->tls_key, &key) != 0) {
		snprintf(err, errlen, "%s: control.tls_key: cannot read %s: %s", cfg->source,
			 cfg->tls_key, strerror(errno));
		goto out;
	}
	if (!strstr(cert, "-----BEGIN CERTIFICATE-----")) {
		snprintf(err, errlen,
			 "%s: control.tls_cert: %s holds no PEM certificate "
			 "(-----BEGIN CERTIFICATE-----)",
			 cfg->source, cfg->tls_cert);
		goto out;
	}
	if ((mrc = mbedtls_x509_crt_parse(&crt, (const unsigned char *)cert, strlen(cert) + 1))) {
		if (mrc > 0)
			snprintf(why, sizeof why, "%d of its certificates do not parse", mrc);
		else
			mbedtls_strerror(mrc, why, sizeof why);
		snprintf(err, errlen, "%s: control.tls_cert: %s is not a valid PEM certificate: %s",
			 cfg->source, cfg->tls_cert, why);
		goto out;
	}
	if (!strstr(key, "PRIVATE KEY-----")) {
		snprintf(err, errlen,
			 "%s: control.tls_key: %s holds no PEM private key "
			 "(-----BEGIN ... PRIVATE KEY-----)",
			 cfg->source, cfg->tls_key);
		goto out;
	}
	mrc = mbedtls_pk_parse_key(&pk, (const unsigned char *)key, strlen(key) + 1, NULL, 0);
	if (mrc == MBEDTLS_ERR_PK_PASSWORD_REQUIRED || mrc == MBEDTLS_ERR_PK_PASSWORD_MISMATCH) {
		snprintf(err, errlen,
			 "%s: control.tls_key: %s is encrypted; linlid needs an unencrypted key "
			 "(readable only by linlid's user)",
			 cfg->source, cfg->tls_key);
		goto out;
	}
	if (mrc) {
		mbedtls_strerror(mrc, why, sizeof why);
		snprintf(err, errlen, "%s: control.tls_key: %s is not a valid PEM private key: %s",
			 cfg->source, cfg->tls_key, why);
		goto out;
	}
	if (mbedtls_pk_check_pair(&crt.pk, &pk) != 0) {
		snprintf(err, errlen,
			 "%s: control.tls_key: %s is not the private key of the certificate in %s",
			 cfg->source, cfg->tls_key, cfg->tls_cert);
		goto out;
	}
	if (mbedtls_x509_time_is_past(&crt.valid_to))
		log_warn("control",
			 "control.tls_cert: %s expired on %04d-%02d-%02d: remote consoles will "
			 "refuse it",
			 cfg->tls_cert, crt.valid_to.year, crt.valid_to.mon, crt.valid_to.day);
	rc = 0;
out:
	mbedtls_x509_crt_free(&crt);
	mbedtls_pk_free(&pk);
	free(cert);
	if (key) {
		memset(key, 0, strlen(key));
		free(key);
	}
	return rc;
}

static int setup_tls(struct control *c, char *err, size_t errlen)
{
	const struct cfg *cfg = &c->k->cfg;
	char *cert = NULL, *key = NULL;
	int rv, rc;
	if ((rc = control_check_tls(cfg, err, errlen)) != 0)
		return rc;
	if (read_file(cfg->tls_cert, &cert) != 0 || read_file(cfg->tls_key, &key) != 0) {
		free(cert);
		snprintf(err, errlen, "%s: control.tls_cert/tls_key: cannot read them again: %s",
			 cfg->source, strerror(errno));
		return LINLI_ECONFIG;
	}
	if ((rv = nng_tls_config_alloc(&c->tls, NNG_TLS_MODE_SERVER)) == 0)
		rv = nng_tls_config_own_cert(c->tls, cert, key, NULL);
	free(cert);
	memset(key, 0, strlen(key));
	free(key);
	if (rv != 0) {
		snprintf(err, errlen, "%s: control.tls_cert/tls_key: nng refuses them: %s",
			 cfg->source, nng_strerror(rv));
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
	/* The node's own user and its group (the unit's `linli`) may connect; no one else. */
	if (strncmp(addr, "ipc://", 6) == 0 &&
	    (rv = nng_listener_set_int(l, NNG_OPT_IPC_PERMISSIONS, 0660)) != 0) {
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
	int port; /* for the handshake watch; a restart by the probe keeps the address */
	if (strncmp(addr, "tls+tcp://", 10) == 0 &&
	    nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port) == 0)
		c->tls_ports[c->n_tls_ports++] = (uint16_t)port;
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
	pthread_mutex_init(&c->mu, NULL);
	pthread_mutex_init(&c->lmu, NULL);
	pthread_mutex_init(&c->pmu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->pcv, &ca);
	pthread_condattr_destroy(&ca);
	c->idle_ms = (uint64_t)k->cfg.control_idle_ms;
	c->max_inflight = k->cfg.control_workers / 2 > 1 ? k->cfg.control_workers / 2 : 1;
	int rv, rc = LINLI_EIO;
	if ((rv = nng_rep0_open(&c->sock)) != 0) {
		snprintf(err, errlen, "control: cannot open socket: %s", nng_strerror(rv));
		control_close(c);
		return LINLI_EIO;
	}
	c->sock_open = true;
	nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, k->cfg.max_request);
	if ((rv = nng_pipe_notify(c->sock, NNG_PIPE_EV_ADD_PRE, on_pipe, c)) != 0 ||
	    (rv = nng_pipe_notify(c->sock, NNG_PIPE_EV_REM_POST, on_pipe, c)) != 0 ||
	    (rv = nng_aio_alloc(&c->watch, watch_cb, c)) != 0) {
		snprintf(err, errlen, "control: cannot watch connections: %s", nng_strerror(rv));
		goto fail;
	}
	c->listening = true;
	if (has_tls_listener(&k->cfg) && (rc = setup_tls(c, err, errlen)) != 0)
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
		if (nng_aio_alloc(&w->aio, worker_cb, w) != 0 ||
		    nng_ctx_open(&w->ctx, c->sock) != 0) {
			snprintf(err, errlen, "control: cannot allocate worker %d", i);
			rc = LINLI_ENOMEM;
			goto fail;
		}
	}
	watch_arm(c);
	for (int i = 0; i < c->n_workers; i++)
		worker_recv(&c->workers[i]);
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
	if (c->watch)
		nng_aio_stop(c->watch);
	/* Pipe callbacks may run until nng_close returns; the table outlives them. */
	if (c->sock_open)
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
	if (c->watch)
		nng_aio_free(c->watch);
	free(c->conns);
	free(c->pend);
	pthread_mutex_destroy(&c->mu);
	pthread_mutex_destroy(&c->lmu);
	pthread_mutex_destroy(&c->pmu);
	pthread_cond_destroy(&c->pcv);
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

void control_conn_counters(struct control *c, unsigned long long *open, unsigned long long *cut)
{
	*open = *cut = 0;
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	*open = (unsigned long long)c->n_conns;
	pthread_mutex_unlock(&c->mu);
	*cut = atomic_load(&c->cut);
}
