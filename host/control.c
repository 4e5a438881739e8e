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
	nng_listener listeners[CFG_MAX_LISTEN];
	int n_listeners;
	nng_tls_config *tls;
	struct worker *workers;
	int n_workers;
	_Atomic unsigned long long served, malformed;
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
			if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
				return;
			nng_ctx_recv(w->ctx, w->aio);
			return;
		}
		w->req = nng_aio_get_msg(w->aio);
		w->state = W_BUSY;
		if (kernel_post(w->ctl->k, on_request, w) != 0) {
			nng_msg_free(w->req);
			w->req = NULL;
		}
		return;
	case W_SEND:
		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(w->aio));
			if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
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

static int listen_one(struct control *c, const char *addr, char *err, size_t errlen)
{
	nng_listener l;
	int rv;
	if (strncmp(addr, "ipc://", 6) == 0)
		unlink(addr + 6); /* stale socket of a dead daemon: we hold the lock */
	if ((rv = nng_listener_create(&l, c->sock, addr)) != 0)
		goto fail;
	if (strncmp(addr, "tls+tcp://", 10) == 0 &&
	    (rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, c->tls)) != 0)
		goto fail;
	if ((rv = nng_listener_start(l, 0)) != 0)
		goto fail;
	c->listeners[c->n_listeners++] = l;
	log_info("control", "listening on %s", addr);
	return 0;
fail:
	snprintf(err, errlen, "control.listen: cannot listen on %s: %s", addr, nng_strerror(rv));
	return LINLI_EIO;
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
	for (int i = 0; i < c->n_listeners; i++)
		nng_listener_close(c->listeners[i]);
	c->n_listeners = 0;
}

void control_close(struct control *c)
{
	if (!c)
		return;
	control_stop_listening(c);
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

void control_counters(const struct control *c, unsigned long long *served,
		      unsigned long long *malformed)
{
	*served = c ? atomic_load(&c->served) : 0;
	*malformed = c ? atomic_load(&c->malformed) : 0;
}
