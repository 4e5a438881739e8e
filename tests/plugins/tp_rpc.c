/*
 * A test plugin of request/reply (serve, reply, request, request_cancel),
 * built twice: -DSERVER as `rpcsrv`, else as `rpccli`.
 *
 * rpcsrv serves rpc/# (capability bus.subscribe:rpc/#) and answers by the
 * topic's last level: echo -> status 0 and {"n2": 2n, "requester", "scope"}
 * at once; later -> status 7 and {"late": true} from a timer after the
 * payload's "delay_ms"; fail -> LINLI_ENOENT "no such alarm"; never -> no
 * reply. Commands: `rpcsrv served` (how many and the last requester),
 * `rpcsrv unserve`, `rpcsrv again` (serve rpc/# a second time -> rc),
 * `rpcsrv wide` (serve # without the capability -> rc).
 *
 * rpccli requests (capability bus.publish:rpc/#): `rpccli send TOPIC
 * [TIMEOUT_MS [SCOPE|- [DELAY_MS]]]` -> {"rc", "id"} (DELAY_MS: the payload's
 * delay_ms, default 300); the answers are kept in order and
 * `rpccli answers` lists them as {"id", "status", "rec", "err", "ms"} (ms:
 * from sending to the answer). `rpccli cancel ID` -> rc.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linli/linli.h>

static const struct linli_api *api;

static int reply_rc(linli_record **reply, int rc)
{
	linli_record *r = api->rec_new();
	api->rec_set_int(r, "rc", rc);
	api->rec_set_str(r, "error", linli_strerror(rc));
	*reply = r;
	return 0;
}

#ifdef SERVER

static uint64_t srv_id;
static int64_t served;
static char last_requester[128];

static void later_fire(linli_ctx *ctx, void *ud)
{
	uint64_t id = (uint64_t)(uintptr_t)ud;
	linli_record *r = api->rec_new();
	api->rec_set_bool(r, "late", true);
	int rc = api->reply(ctx, id, 7, r, NULL);
	if (rc)
		api->log(ctx, LINLI_LOG_WARN, "late reply %llu: %s", (unsigned long long)id,
			 linli_strerror(rc));
	api->rec_free(r);
}

static void on_request(linli_ctx *ctx, const struct linli_request *rq, void *ud)
{
	(void)ud;
	served++;
	snprintf(last_requester, sizeof last_requester, "%s", rq->requester);
	const char *last = strrchr(rq->topic, '/');
	last = last ? last + 1 : rq->topic;
	if (strcmp(last, "echo") == 0) {
		int64_t n = 0;
		api->rec_get_int(rq->payload, "n", &n);
		linli_record *r = api->rec_new();
		api->rec_set_int(r, "n2", 2 * n);
		api->rec_set_str(r, "requester", rq->requester);
		api->rec_set_str(r, "scope", rq->scope);
		api->reply(ctx, rq->id, 0, r, NULL);
		api->rec_free(r);
	} else if (strcmp(last, "later") == 0) {
		int64_t delay = 100;
		api->rec_get_int(rq->payload, "delay_ms", &delay);
		api->timer_add(ctx, (uint64_t)delay, 0, later_fire, (void *)(uintptr_t)rq->id,
			       NULL);
	} else if (strcmp(last, "fail") == 0)
		api->reply(ctx, rq->id, LINLI_ENOENT, NULL, "no such alarm");
	/* never: no reply */
}

static int cmd_srv(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply, char *err,
		   size_t errlen)
{
	(void)err;
	(void)errlen;
	const char *what = req->ud;
	if (strcmp(what, "served") == 0) {
		linli_record *r = api->rec_new();
		api->rec_set_int(r, "served", served);
		api->rec_set_str(r, "requester", last_requester);
		*reply = r;
		return 0;
	}
	if (strcmp(what, "unserve") == 0)
		return reply_rc(reply, api->unserve(ctx, srv_id));
	if (strcmp(what, "again") == 0)
		return reply_rc(reply, api->serve(ctx, "rpc/#", on_request, NULL, NULL));
	return reply_rc(reply, api->serve(ctx, "#", on_request, NULL, NULL));
}

static int rpc_init(linli_ctx *ctx, const struct linli_api *a)
{
	api = a;
	served = 0;
	int rc = api->serve(ctx, "rpc/#", on_request, NULL, &srv_id);
	static const char *const cmds[] = {"served", "unserve", "again", "wide"};
	for (size_t i = 0; !rc && i < 4; i++)
		rc = api->cmd_register(ctx, cmds[i], "", "request/reply test", cmd_srv,
				       (void *)cmds[i]);
	return rc;
}

#define PNAME "rpcsrv"
#define PCAPS "bus.subscribe:rpc/#"

#else

static linli_record *answers; /* array of maps */
#define SENT_MAX 256
static struct {
	uint64_t id;
	int64_t at;
} sent[SENT_MAX];
static int n_sent;

static void on_answer(linli_ctx *ctx, uint64_t id, int status, const linli_record *rec,
		      const char *err, void *ud)
{
	(void)ctx;
	(void)ud;
	linli_record *m;
	if (api->arr_push_map(answers, &m) != 0)
		return;
	api->rec_set_int(m, "id", (int64_t)id);
	api->rec_set_int(m, "status", status);
	if (rec)
		api->rec_set_record(m, "rec", rec);
	else
		api->rec_set_nil(m, "rec");
	api->rec_set_str(m, "err", err);
	for (int i = 0; i < n_sent; i++)
		if (sent[i].id == id)
			api->rec_set_int(m, "ms", api->time_now_ms() - sent[i].at);
}

static int cmd_send(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		    char *err, size_t errlen)
{
	if (req->argc < 1 || req->argc > 4) {
		snprintf(err, errlen, "usage: send TOPIC [TIMEOUT_MS [SCOPE|- [DELAY_MS]]]");
		return LINLI_EINVAL;
	}
	uint32_t tmo = req->argc > 1 ? (uint32_t)strtoul(req->argv[1], NULL, 10) : 0;
	const char *scope = req->argc > 2 && strcmp(req->argv[2], "-") != 0 ? req->argv[2] : NULL;
	linli_record *p = api->rec_new();
	api->rec_set_int(p, "n", 21);
	api->rec_set_int(p, "delay_ms", req->argc > 3 ? strtoll(req->argv[3], NULL, 10) : 300);
	uint64_t id = 0;
	int64_t at = api->time_now_ms();
	int rc = api->request(ctx, req->argv[0], scope, p, tmo, on_answer, NULL, &id);
	api->rec_free(p);
	if (!rc && n_sent < SENT_MAX) {
		sent[n_sent].id = id;
		sent[n_sent++].at = at;
	}
	reply_rc(reply, rc);
	api->rec_set_int(*reply, "id", (int64_t)id);
	return 0;
}

static int cmd_answers(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		       char *err, size_t errlen)
{
	(void)ctx;
	(void)req;
	(void)err;
	(void)errlen;
	return api->rec_copy(answers, reply);
}

static int cmd_cancel(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		      char *err, size_t errlen)
{
	if (req->argc != 1) {
		snprintf(err, errlen, "usage: cancel ID");
		return LINLI_EINVAL;
	}
	return reply_rc(reply, api->request_cancel(ctx, strtoull(req->argv[0], NULL, 10)));
}

static int rpc_init(linli_ctx *ctx, const struct linli_api *a)
{
	api = a;
	answers = api->rec_new_array();
	n_sent = 0;
	int rc = answers ? 0 : LINLI_ENOMEM;
	if (!rc)
		rc = api->cmd_register(ctx, "send", "TOPIC [TIMEOUT_MS [SCOPE|- [DELAY_MS]]]",
				       "send a request", cmd_send, NULL);
	if (!rc)
		rc = api->cmd_register(ctx, "answers", "", "the answers so far", cmd_answers, NULL);
	if (!rc)
		rc = api->cmd_register(ctx, "cancel", "ID", "cancel a request", cmd_cancel, NULL);
	return rc;
}

#define PNAME "rpccli"
#define PCAPS "bus.publish:rpc/#"

#endif

static void rpc_fini(linli_ctx *ctx, const struct linli_api *a)
{
	(void)ctx;
	(void)a;
#ifndef SERVER
	api->rec_free(answers);
	answers = NULL;
#endif
}

LINLI_PLUGIN(rpc_init, rpc_fini, .name = PNAME, .version = "1.1.0", .family = "custom",
	     .description = "test plugin of request/reply", .capabilities = {PCAPS});
