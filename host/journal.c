/*
 * journal — see journal.h.
 *
 * The flush hook is where the bus learns whether the batch holding its
 * journal writes reached the disk: it commits the store's batch if the store's
 * own batch-end hook has not yet, and reports the result that the commit
 * waiter recorded. A failed commit loses that batch (the store says so in its
 * log) and the bus holds the events back from external subscribers until a
 * later batch commits.
 */
#include "journal.h"

#include <stdio.h>
#include <string.h>

#include "bus.h"
#include "cmd.h"
#include "json.h"
#include "kernel.h"
#include "linli/error.h"
#include "log.h"
#include "mp.h"
#include "retention.h"
#include "store.h"

struct jstate {
	struct kernel *k;
	bool waiting;	  /* a commit waiter is registered for the current batch */
	int last_rc;	  /* result of the last commit that held journal writes */
	char last_err[256];
	msgpack_sbuffer buf;
};

static struct jstate js; /* one per process: the kernel has one bus and one store */

static void on_commit(void *arg, int rc, const char *err)
{
	struct jstate *j = arg;
	j->waiting = false;
	j->last_rc = rc;
	snprintf(j->last_err, sizeof j->last_err, "%s", err ? err : "");
}

static int j_write(void *arg, const struct bus_event *ev, char *err, size_t errlen)
{
	struct jstate *j = arg;
	if (!retention_journaled(j->k, ev))
		return 0; /* telemetry-like (catalog: journal = false): delivered, not kept */
	msgpack_packer pk;
	j->buf.size = 0;
	msgpack_packer_init(&pk, &j->buf, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 7);
	mp_kv_uint(&pk, "seq", ev->seq);
	mp_kv_uint(&pk, "time", ev->time_ms);
	mp_kv_str(&pk, "topic", ev->topic);
	mp_kv_str(&pk, "publisher", ev->publisher);
	mp_kv_str(&pk, "scope", ev->scope);
	mp_kv_str(&pk, "family", ev->family);
	mp_str(&pk, "payload");
	msgpack_sbuffer_write(&j->buf, ev->payload, ev->payload_len);
	int rc = store_journal_append(j->k->store, ev->seq, j->buf.data, j->buf.size, err, errlen);
	if (rc)
		return rc;
	if (!j->waiting && store_on_commit(j->k->store, on_commit, j) == 0)
		j->waiting = true;
	return 0;
}

static int j_flush(void *arg, char *err, size_t errlen)
{
	struct jstate *j = arg;
	if (j->waiting)
		store_batch_end(j->k->store); /* runs on_commit */
	if (j->last_rc)
		snprintf(err, errlen, "%s", j->last_err);
	int rc = j->last_rc;
	j->last_rc = 0;
	return rc;
}

/* ---- linli events journal [--after SEQ] [--limit N] ---- */

struct scan_ctx {
	msgpack_packer *pk;
	const char *root;
	int n;
	msgpack_sbuffer rows;
	msgpack_packer rpk;
};

static int row(void *ud, uint64_t seq, const void *ev, size_t len)
{
	(void)seq;
	struct scan_ctx *c = ud;
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	size_t off = 0;
	if (msgpack_unpack_next(&up, ev, len, &off) == MSGPACK_UNPACK_SUCCESS) {
		const msgpack_object *sc = mp_get(&up.data, "scope");
		char scope[SCOPE_MAX + 1] = "";
		if (sc && sc->type == MSGPACK_OBJECT_STR && sc->via.str.size <= SCOPE_MAX)
			snprintf(scope, sizeof scope, "%.*s", (int)sc->via.str.size, sc->via.str.ptr);
		/* Only the caller's jurisdiction: a sibling's events never show. */
		if (scope_within(c->root, scope)) {
			msgpack_sbuffer_write(&c->rows, ev, len);
			c->n++;
		}
	}
	msgpack_unpacked_destroy(&up);
	return 0;
}

static int cmd_journal(struct cmd_call *call, void *ud)
{
	(void)ud;
	struct kernel *k = call->k;
	uint64_t after = 0;
	long limit = 100;
	for (int i = 2; i < call->argc; i++) {
		char *end;
		if (strcmp(call->argv[i], "--after") == 0 && i + 1 < call->argc) {
			after = strtoull(call->argv[++i], &end, 10);
			if (*end)
				return cmd_fail(call, LINLI_EINVAL, "--after: '%s' is not a seq",
						call->argv[i]);
		} else if (strcmp(call->argv[i], "--limit") == 0 && i + 1 < call->argc) {
			limit = strtol(call->argv[++i], &end, 10);
			if (*end || limit < 1 || limit > 10000)
				return cmd_fail(call, LINLI_EINVAL, "--limit: '%s' is not 1..10000",
						call->argv[i]);
		} else
			return cmd_fail(call, LINLI_EINVAL,
					"usage: events journal [--after SEQ] [--limit N]");
	}
	struct scan_ctx c = {.pk = &call->pk, .root = k->cfg.node_path};
	msgpack_sbuffer_init(&c.rows);
	int n = store_journal_scan(k->store, after, (size_t)limit, row, &c, call->err,
				   sizeof call->err);
	if (n < 0) {
		msgpack_sbuffer_destroy(&c.rows);
		return n;
	}
	msgpack_pack_array(&call->pk, (size_t)c.n);
	msgpack_sbuffer_write(&call->data, c.rows.data, c.rows.size);
	msgpack_sbuffer_destroy(&c.rows);
	return 0;
}

int journal_attach(struct kernel *k)
{
	memset(&js, 0, sizeof js);
	js.k = k;
	msgpack_sbuffer_init(&js.buf);
	struct bus_journal j = {j_write, j_flush, &js};
	bus_set_journal(k->bus, &j);
	uint64_t last = store_journal_last(k->store);
	bus_continue_seq(k->bus, last);
	if (last)
		log_info("bus", "journal holds events up to seq %llu; numbering goes on from there",
			 (unsigned long long)last);
	return cmd_register(k->cmds, "events", "journal", "[--after SEQ] [--limit N]",
			    "the stored records of consequence (alarms, incidents, ...)",
			    cmd_journal, NULL, &js);
}

void journal_detach(struct kernel *k)
{
	if (k->bus)
		bus_set_journal(k->bus, NULL);
	msgpack_sbuffer_destroy(&js.buf);
	memset(&js, 0, sizeof js);
}

static void on_call_commit(void *arg, int rc, const char *err)
{
	struct cmd_call *call = arg;
	if (rc)
		cmd_fail(call, rc, "not stored: %s", err ? err : linli_strerror(rc));
	cmd_finish(call, rc);
}

int journal_await(struct kernel *k, struct cmd_call *call)
{
	return k->store && store_on_commit(k->store, on_call_commit, call) == 0;
}
