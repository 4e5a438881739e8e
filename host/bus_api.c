/*
 * bus_api — see bus_api.h.
 *
 * A server (struct psrv) and a pending request (struct preq) are tracked
 * resources of their plugin. A server's bus owner is its plugin, so that any
 * of the plugin's servers' requests can be answered with reply; a request's
 * bus owner is its preq. The request's answer untracks and frees the preq
 * before calling the plugin, so the plugin may send new requests from it.
 */
#include "bus_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "kernel.h"
#include "log.h"
#include "plugin.h"
#include "record.h"
#include "tier.h"
#include "watchdog.h"

/* Pack r (a map) into sb; NULL packs nothing. 0 or LINLI_EINVAL. */
static int pack_map(const linli_record *r, msgpack_sbuffer *sb)
{
	msgpack_packer pk;
	msgpack_sbuffer_init(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	if (!r)
		return 0;
	if (record_kind(r) != LINLI_T_MAP)
		return LINLI_EINVAL;
	return record_pack(r, &pk);
}

/* ---- servers ---- */

struct psrv {
	struct plugin *p;
	struct plug_res *res;
	uint64_t id;
	linli_request_fn fn;
	void *ud;
	char pattern[BUS_TOPIC_MAX + 1];
};

static void psrv_serve(const struct bus_request *rq, void *ud)
{
	struct psrv *s = ud;
	/* The handler may unserve (free s): nothing of s after the call. */
	struct plugin *p = s->p;
	linli_record *payload = NULL;
	char err[256];
	int rc = record_from_bytes(rq->payload, rq->payload_len, &payload, err, sizeof err);
	if (rc) {
		log_warn(plug_name(p), "request %s: payload refused: %s", rq->topic, err);
		bus_reply(plug_kernel(p)->bus, rq->id, p, rc, NULL, 0, err, NULL, 0);
		return;
	}
	struct linli_request lr = {
	    .size = sizeof lr,
	    .id = rq->id,
	    .topic = rq->topic,
	    .scope = rq->scope,
	    .requester = rq->requester,
	    .payload = payload,
	};
	struct wd_frame wd;
	wd_enter(&wd, plug_name(p), "request handler", rq->topic, 0);
	s->fn(plug_ctx(p), &lr, s->ud);
	wd_leave(&wd);
	record_free(payload);
}

static void psrv_release(void *arg)
{
	struct psrv *s = arg;
	bus_unserve(plug_kernel(s->p)->bus, s->id, s->p);
	free(s);
}

static int psrv_suspend(void *arg)
{
	struct psrv *s = arg;
	return bus_serve_suspend(plug_kernel(s->p)->bus, s->id, true);
}

static int psrv_resume(void *arg)
{
	struct psrv *s = arg;
	return bus_serve_suspend(plug_kernel(s->p)->bus, s->id, false);
}

static void psrv_describe(void *arg, char *buf, size_t len)
{
	struct psrv *s = arg;
	snprintf(buf, len, "server %llu of %s", (unsigned long long)s->id, s->pattern);
}

static const struct plug_res_ops psrv_ops = {
    .kind = "server",
    .release = psrv_release,
    .suspend = psrv_suspend,
    .resume = psrv_resume,
    .describe = psrv_describe,
};

static bool psrv_match(void *arg, const void *key)
{
	return ((struct psrv *)arg)->id == *(const uint64_t *)key;
}

int bus_api_serve(linli_ctx *ctx, const char *pattern, linli_request_fn fn, void *ud, uint64_t *id)
{
	struct plugin *p = plug_from_ctx(ctx);
	struct kernel *k = plug_kernel(p);
	char err[384] = "";
	if (!pattern || !fn)
		return LINLI_EINVAL;
	int rc =
	    plug_authorize(p, ACT_EVENTS_SUBSCRIBE, plug_scope(p), pattern, err, sizeof err);
	if (rc) {
		log_warn(plug_name(p), "serve %s: %s", pattern, err);
		return rc;
	}
	struct psrv *s = calloc(1, sizeof *s);
	if (!s)
		return LINLI_ENOMEM;
	s->p = p;
	s->fn = fn;
	s->ud = ud;
	snprintf(s->pattern, sizeof s->pattern, "%s", pattern);
	rc = bus_serve(k->bus, pattern, plug_scope(p), psrv_serve, s, p, plug_name(p), &s->id,
		       err, sizeof err);
	if (rc) {
		log_warn(plug_name(p), "serve %s: %s", pattern, err[0] ? err : linli_strerror(rc));
		free(s);
		return rc;
	}
	if (!(s->res = plug_track(p, &psrv_ops, s))) {
		psrv_release(s);
		return LINLI_ENOMEM;
	}
	if (id)
		*id = s->id;
	return 0;
}

int bus_api_unserve(linli_ctx *ctx, uint64_t id)
{
	struct plugin *p = plug_from_ctx(ctx);
	struct plug_res *res;
	if (!plug_find_res(p, &psrv_ops, psrv_match, &id, &res))
		return LINLI_ENOENT;
	plug_release(p, res);
	return 0;
}

int bus_api_reply(linli_ctx *ctx, uint64_t id, int status, const linli_record *rec, const char *err)
{
	struct plugin *p = plug_from_ctx(ctx);
	msgpack_sbuffer sb;
	int rc = pack_map(rec, &sb);
	char e[256];
	if (rc)
		snprintf(e, sizeof e, "reply %llu: the record is not a map",
			 (unsigned long long)id);
	else
		rc = bus_reply(plug_kernel(p)->bus, id, p, status, sb.data, sb.size, err, e,
			       sizeof e);
	msgpack_sbuffer_destroy(&sb);
	if (rc)
		log_warn(plug_name(p), "%s", e);
	return rc;
}

/* ---- requests ---- */

struct preq {
	struct plugin *p;
	struct plug_res *res;
	uint64_t id;
	uint32_t timeout_ms;
	linli_reply_fn fn;
	void *ud;
	char topic[BUS_TOPIC_MAX + 1];
};

static void preq_answer(uint64_t id, int status, const void *rec, size_t len, const char *msg,
			void *ud)
{
	struct preq *q = ud;
	struct plugin *p = q->p;
	linli_reply_fn fn = q->fn;
	void *fud = q->ud;
	plug_untrack(p, q->res);
	linli_record *r = NULL;
	char err[256];
	if (len && record_from_bytes(rec, len, &r, err, sizeof err) != 0)
		log_warn(plug_name(p), "the reply to request %llu on %s: %s",
			 (unsigned long long)id, q->topic, err);
	free(q);
	struct wd_frame wd;
	wd_enter(&wd, plug_name(p), "reply handler", NULL, id);
	fn(plug_ctx(p), id, status, r, msg, fud);
	wd_leave(&wd);
	record_free(r);
}

static void preq_release(void *arg)
{
	struct preq *q = arg;
	bus_request_drop(plug_kernel(q->p)->bus, q->id, q);
	free(q);
}

static void preq_describe(void *arg, char *buf, size_t len)
{
	struct preq *q = arg;
	snprintf(buf, len, "request %llu on %s (timeout %u ms)", (unsigned long long)q->id,
		 q->topic, q->timeout_ms ? q->timeout_ms : BUS_REQUEST_TIMEOUT_MS);
}

static const struct plug_res_ops preq_ops = {
    .kind = "request",
    .release = preq_release,
    .describe = preq_describe,
};

static bool preq_match(void *arg, const void *key)
{
	return ((struct preq *)arg)->id == *(const uint64_t *)key;
}

int bus_api_request(linli_ctx *ctx, const char *topic, const char *scope,
		    const linli_record *payload, uint32_t timeout_ms, linli_reply_fn fn, void *ud,
		    uint64_t *id)
{
	struct plugin *p = plug_from_ctx(ctx);
	struct kernel *k = plug_kernel(p);
	char err[384] = "";
	if (!topic || !fn)
		return LINLI_EINVAL;
	if (!scope)
		scope = plug_scope_now(p); /* the caller's, while serving one */
	int rc = plug_authorize(p, ACT_EVENTS_PUBLISH, scope, topic, err, sizeof err);
	if (rc) {
		log_warn(plug_name(p), "request %s: %s", topic, err);
		return rc;
	}
	msgpack_sbuffer sb;
	if ((rc = pack_map(payload, &sb)) != 0) {
		msgpack_sbuffer_destroy(&sb);
		log_warn(plug_name(p), "request %s: the payload is not a map", topic);
		return rc;
	}
	struct preq *q = calloc(1, sizeof *q);
	if (!q) {
		msgpack_sbuffer_destroy(&sb);
		return LINLI_ENOMEM;
	}
	q->p = p;
	q->fn = fn;
	q->ud = ud;
	q->timeout_ms = timeout_ms;
	snprintf(q->topic, sizeof q->topic, "%s", topic);
	struct bus_msg m = {.topic = topic,
			    .publisher = plug_name(p),
			    .scope = scope,
			    .payload = sb.data,
			    .payload_len = sb.size};
	rc = bus_request(k->bus, &m, timeout_ms, preq_answer, q, q, &q->id, err, sizeof err);
	msgpack_sbuffer_destroy(&sb);
	if (rc) {
		log_warn(plug_name(p), "request %s: %s", topic, err[0] ? err : linli_strerror(rc));
		free(q);
		return rc;
	}
	if (!(q->res = plug_track(p, &preq_ops, q))) {
		preq_release(q);
		return LINLI_ENOMEM;
	}
	if (id)
		*id = q->id;
	return 0;
}

int bus_api_request_cancel(linli_ctx *ctx, uint64_t id)
{
	struct plugin *p = plug_from_ctx(ctx);
	struct plug_res *res;
	if (!plug_find_res(p, &preq_ops, preq_match, &id, &res))
		return LINLI_ENOENT;
	plug_release(p, res);
	return 0;
}
