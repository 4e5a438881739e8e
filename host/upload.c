/*
 * upload — see upload.h.
 */
#include "upload.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"
#include "cmd.h"
#include "kernel.h"
#include "linli/error.h"
#include "log.h"
#include "mp.h"
#include "tier.h"
#include "util.h"

struct upload {
	char id[24];
	char owner[128];
	unsigned char *data;
	size_t size, got;
	uint8_t hash[BUNDLE_HASH_LEN];
	uint64_t last_ms; /* kernel_clock_ms of its begin or last chunk */
};

struct uploads {
	struct kernel *k;
	struct upload v[UPLOAD_MAX_OPEN];
	uint64_t seq;
	uint64_t timer;
	size_t total; /* announced by the open ones */
};

static void drop(struct uploads *u, struct upload *x)
{
	u->total -= x->size;
	free(x->data);
	memset(x, 0, sizeof *x);
}

static void sweep(struct kernel *k, void *arg)
{
	struct uploads *u = arg;
	uint64_t now = kernel_clock_ms();
	(void)k;
	for (int i = 0; i < UPLOAD_MAX_OPEN; i++)
		if (u->v[i].id[0] && now - u->v[i].last_ms >= UPLOAD_IDLE_MS) {
			log_warn("plugins",
				 "upload %s of %s dropped: no chunk for %d s (%zu of %zu "
				 "bytes came)",
				 u->v[i].id, u->v[i].owner, UPLOAD_IDLE_MS / 1000, u->v[i].got,
				 u->v[i].size);
			drop(u, &u->v[i]);
		}
}

/*
 * The raw bytes of one chunk: UPLOAD_CHUNK_MAX, or less when control.max_request is
 * smaller than 1 MiB (a chunk in base64, 4/3 of it, and the request's other words).
 */
static size_t chunk_max(const struct kernel *k)
{
	size_t room = k->cfg.max_request > 8192 ? (k->cfg.max_request - 4096) / 4 * 3 : 3072;
	return room < UPLOAD_CHUNK_MAX ? room : UPLOAD_CHUNK_MAX;
}

static const char *owner_of(const struct cmd_call *call)
{
	return call->who && call->who->name ? call->who->name : "";
}

static struct upload *find(struct uploads *u, const char *id, const char *owner, char *err,
			   size_t errlen, int *rc)
{
	sweep(u->k, u); /* a deadline passed between two sweeps counts */
	for (int i = 0; i < UPLOAD_MAX_OPEN; i++)
		if (u->v[i].id[0] && strcmp(u->v[i].id, id) == 0) {
			if (strcmp(u->v[i].owner, owner) != 0) {
				*rc = errf(err, errlen, LINLI_EPERM,
					   "upload %s is another account's", id);
				return NULL;
			}
			return &u->v[i];
		}
	*rc = errf(err, errlen, LINLI_ENOENT,
		   "no upload '%.32s' (never begun, finished, aborted, or dropped after %d s "
		   "without a chunk)",
		   id, UPLOAD_IDLE_MS / 1000);
	return NULL;
}

static int cmd_upload(struct cmd_call *call, void *ud)
{
	struct uploads *u = ud;
	const char *op = call->argc >= 3 ? call->argv[2] : "";
	if (strcmp(op, "begin") == 0 && call->argc == 5) {
		char *end;
		unsigned long long size = strtoull(call->argv[3], &end, 10);
		uint8_t hash[BUNDLE_HASH_LEN];
		size_t hl = 0;
		if (*end || call->argv[3][0] < '0' || call->argv[3][0] > '9' || size == 0)
			return cmd_fail(call, LINLI_EINVAL,
					"plugins upload begin: SIZE '%.32s' is "
					"not a byte count above 0",
					call->argv[3]);
		if (size > BUNDLE_MAX)
			return cmd_fail(
			    call, LINLI_E2BIG,
			    "plugins upload begin: %llu bytes, over the limit of a bundle "
			    "(%u)",
			    size, BUNDLE_MAX);
		if (strlen(call->argv[4]) != 2 * BUNDLE_HASH_LEN ||
		    sodium_hex2bin(hash, sizeof hash, call->argv[4], strlen(call->argv[4]), NULL,
				   &hl, NULL) != 0 ||
		    hl != sizeof hash)
			return cmd_fail(call, LINLI_EINVAL,
					"plugins upload begin: HASH must be the BLAKE2b-256 of the "
					"file, 64 hex digits");
		sweep(u->k, u);
		struct upload *x = NULL;
		int open = 0;
		for (int i = 0; i < UPLOAD_MAX_OPEN; i++) {
			if (u->v[i].id[0])
				open++;
			else if (!x)
				x = &u->v[i];
		}
		if (!x)
			return cmd_fail(
			    call, LINLI_ELIMIT,
			    "plugins upload begin: %d uploads are open already (each is "
			    "dropped %d s after its last chunk)",
			    open, UPLOAD_IDLE_MS / 1000);
		if (size > UPLOAD_MAX_TOTAL - u->total)
			return cmd_fail(
			    call, LINLI_ELIMIT,
			    "plugins upload begin: the open uploads hold %zu bytes; %llu "
			    "more is over the limit of %u",
			    u->total, size, UPLOAD_MAX_TOTAL);
		if (!(x->data = malloc((size_t)size)))
			return cmd_fail(call, LINLI_ENOMEM, "plugins upload begin: out of memory");
		snprintf(x->id, sizeof x->id, "u%llu", (unsigned long long)++u->seq);
		snprintf(x->owner, sizeof x->owner, "%s", owner_of(call));
		x->size = (size_t)size;
		x->got = 0;
		memcpy(x->hash, hash, sizeof hash);
		x->last_ms = kernel_clock_ms();
		u->total += x->size;
		msgpack_pack_map(&call->pk, 3);
		mp_kv_str(&call->pk, "id", x->id);
		mp_kv_uint(&call->pk, "chunk_max", chunk_max(u->k));
		mp_kv_uint(&call->pk, "idle_s", UPLOAD_IDLE_MS / 1000);
		return 0;
	}
	if (strcmp(op, "chunk") == 0 && call->argc == 5) {
		int rc = 0;
		struct upload *x =
		    find(u, call->argv[3], owner_of(call), call->err, sizeof call->err, &rc);
		if (!x)
			return rc;
		char *end;
		unsigned long long off = strtoull(call->argv[4], &end, 10);
		if (*end || off != x->got)
			return cmd_fail(
			    call, LINLI_EINVAL,
			    "plugins upload chunk: offset %.32s, but %zu bytes came so far "
			    "(chunks come in order)",
			    call->argv[4], x->got);
		if (!call->input || !call->input_len)
			return cmd_fail(
			    call, LINLI_EINVAL,
			    "plugins upload chunk: no chunk (its bytes in base64 as the "
			    "request's input)");
		size_t n = 0, room = x->size - x->got;
		size_t cap = room < chunk_max(u->k) ? room : chunk_max(u->k);
		if (sodium_base642bin(x->data + x->got, cap, call->input, call->input_len, NULL, &n,
				      NULL, sodium_base64_VARIANT_ORIGINAL) != 0)
			return cmd_fail(call, LINLI_EINVAL,
					"plugins upload chunk: the input is not base64 of at most "
					"%zu bytes (%zu remain of the announced size, %zu a chunk)",
					cap, room, chunk_max(u->k));
		x->got += n;
		x->last_ms = kernel_clock_ms();
		msgpack_pack_map(&call->pk, 2);
		mp_kv_uint(&call->pk, "received", x->got);
		mp_kv_uint(&call->pk, "size", x->size);
		return 0;
	}
	if (strcmp(op, "abort") == 0 && call->argc == 4) {
		int rc = 0;
		struct upload *x =
		    find(u, call->argv[3], owner_of(call), call->err, sizeof call->err, &rc);
		if (!x)
			return rc;
		drop(u, x);
		msgpack_pack_nil(&call->pk);
		return 0;
	}
	return cmd_fail(call, LINLI_EINVAL,
			"usage: plugins upload begin SIZE BLAKE2B-256 | chunk ID OFFSET (input: "
			"base64) | abort ID");
}

int upload_take(struct uploads *u, const char *ref, const struct tier_principal *who,
		unsigned char **data, size_t *len, char *err, size_t errlen)
{
	int rc = 0;
	struct upload *x = find(u, ref[0] == '@' ? ref + 1 : ref, who && who->name ? who->name : "",
				err, errlen, &rc);
	if (!x)
		return rc;
	if (x->got != x->size)
		return errf(err, errlen, LINLI_ESTATE, "upload %s is not whole: %zu of %zu bytes",
			    x->id, x->got, x->size);
	uint8_t h[BUNDLE_HASH_LEN];
	bundle_hash(x->data, x->size, h);
	if (memcmp(h, x->hash, sizeof h) != 0) {
		errf(err, errlen, LINLI_ECORRUPT,
		     "upload %s: what came is not what was announced (BLAKE2b-256 differs); it "
		     "is dropped, send it again",
		     x->id);
		drop(u, x);
		return LINLI_ECORRUPT;
	}
	*data = x->data;
	*len = x->size;
	x->data = NULL;
	drop(u, x);
	return 0;
}

struct uploads *upload_open(struct kernel *k, char *err, size_t errlen)
{
	struct uploads *u = calloc(1, sizeof *u);
	if (!u) {
		errf(err, errlen, LINLI_ENOMEM, "out of memory");
		return NULL;
	}
	u->k = k;
	int rc = cmd_register(k->cmds, "plugins", "upload",
			      "begin SIZE BLAKE2B-256 | chunk ID OFFSET | abort ID",
			      "send a bundle in chunks for 'plugins install|upgrade @ID' (the "
			      "console does it for a local FILE.bundle)",
			      cmd_upload, u, u);
	if (rc) {
		errf(err, errlen, rc, "cannot register 'plugins upload': %s", linli_strerror(rc));
		free(u);
		return NULL;
	}
	u->timer = kernel_timer_add(k, 10000, 10000, sweep, u);
	return u;
}

void upload_close(struct uploads *u)
{
	if (!u)
		return;
	if (u->timer)
		kernel_timer_cancel(u->k, u->timer);
	if (u->k->cmds)
		cmd_unregister_owner(u->k->cmds, u);
	for (int i = 0; i < UPLOAD_MAX_OPEN; i++)
		if (u->v[i].id[0])
			drop(u, &u->v[i]);
	free(u);
}
