/*
 * storm — a write storm against a real linlid, for the crash test.
 *
 *   storm ADDR LOGFILE [--sockets N] [--dataset D] [--scope S] [--record JSON] [--max N]
 *
 * N threads, each with its own nng req socket, send `data put` requests as
 * fast as replies come back. Every acknowledged write's id is appended to
 * LOGFILE (one per line, flushed at once), so that whoever kills the daemon
 * knows exactly which writes were acknowledged. `{n}` in the record is
 * replaced by a sequence number. Stops when the daemon stops answering (or
 * after --max writes per socket); prints "acked A refused R" and exits 0.
 */
#include <msgpack.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mp.h"

struct storm {
	const char *addr, *dataset, *scope, *record;
	long max;
	FILE *log;
	pthread_mutex_t mu;
	atomic_long acked, refused, seq;
};

/* The record with every "{n}" replaced by n. */
static void make_record(const char *tmpl, long n, char *out, size_t len)
{
	size_t off = 0;
	out[0] = '\0';
	while (*tmpl && off + 1 < len) {
		const char *at = strstr(tmpl, "{n}");
		size_t lit = at ? (size_t)(at - tmpl) : strlen(tmpl);
		off += (size_t)snprintf(out + off, len - off, "%.*s", (int)lit, tmpl);
		if (!at || off + 1 >= len)
			break;
		off += (size_t)snprintf(out + off, len - off, "%ld", n);
		tmpl = at + 3;
	}
}

static void *worker(void *arg)
{
	struct storm *st = arg;
	nng_socket s;
	if (nng_req0_open(&s) != 0)
		return NULL;
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 3000);
	nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 3000);
	if (nng_dial(s, st->addr, NULL, 0) != 0) {
		nng_close(s);
		return NULL;
	}
	for (long i = 0; st->max <= 0 || i < st->max; i++) {
		char rec[4096];
		make_record(st->record, atomic_fetch_add(&st->seq, 1), rec, sizeof rec);
		msgpack_sbuffer b;
		msgpack_packer pk;
		msgpack_sbuffer_init(&b);
		msgpack_packer_init(&pk, &b, msgpack_sbuffer_write);
		const char *session = getenv("LINLI_SESSION");
		msgpack_pack_map(&pk, session ? 4 : 3);
		if (session)
			mp_kv_str(&pk, "session", session);
		mp_kv_int(&pk, "v", 1);
		mp_str(&pk, "argv");
		msgpack_pack_array(&pk, 5);
		mp_str(&pk, "data");
		mp_str(&pk, "put");
		mp_str(&pk, st->dataset);
		mp_str(&pk, "--scope");
		mp_str(&pk, st->scope);
		mp_kv_str(&pk, "input", rec);
		int rv = nng_send(s, b.data, b.size, 0);
		msgpack_sbuffer_destroy(&b);
		char *reply = NULL;
		size_t len = 0;
		if (rv == 0)
			rv = nng_recv(s, &reply, &len, NNG_FLAG_ALLOC);
		if (rv != 0)
			break; /* the daemon is gone */
		msgpack_unpacked up;
		msgpack_unpacked_init(&up);
		size_t off = 0;
		if (msgpack_unpack_next(&up, reply, len, &off) == MSGPACK_UNPACK_SUCCESS) {
			const msgpack_object *ok = mp_get(&up.data, "ok");
			char *id = mp_strdup(mp_get(mp_get(&up.data, "data"), "id"));
			if (ok && ok->type == MSGPACK_OBJECT_BOOLEAN && ok->via.boolean && id) {
				pthread_mutex_lock(&st->mu);
				fprintf(st->log, "%s\n", id);
				fflush(st->log);
				pthread_mutex_unlock(&st->mu);
				atomic_fetch_add(&st->acked, 1);
			} else {
				char *e = mp_strdup(mp_get(&up.data, "error"));
				if (atomic_fetch_add(&st->refused, 1) == 0)
					fprintf(stderr, "storm: refused: %s\n", e ? e : "?");
				free(e);
			}
			free(id);
		}
		msgpack_unpacked_destroy(&up);
		nng_free(reply, len);
	}
	nng_close(s);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: storm ADDR LOGFILE [--sockets N] [--dataset D] [--scope S] "
				"[--record JSON] [--max N]\n");
		return 2;
	}
	struct storm st = {
	    .addr = argv[1],
	    .dataset = "alarms",
	    .scope = "hefei/baohe/binhu/yuelan",
	    .record = "{\"topic\":\"dev/smoke/s{n}/event/alarm\",\"type\":\"smoke\","
		      "\"source\":\"device:s{n}\",\"severity\":\"major\",\"active\":true,"
		      "\"acknowledged\":false,\"first_at\":{n},\"details\":\"storm write {n}\"}",
	};
	int n = 8;
	for (int i = 3; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--sockets"))
			n = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--dataset"))
			st.dataset = argv[i + 1];
		else if (!strcmp(argv[i], "--scope"))
			st.scope = argv[i + 1];
		else if (!strcmp(argv[i], "--record"))
			st.record = argv[i + 1];
		else if (!strcmp(argv[i], "--max"))
			st.max = atol(argv[i + 1]);
		else {
			fprintf(stderr, "storm: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	if (n < 1 || n > 256)
		n = 8;
	st.log = fopen(argv[2], "a");
	if (!st.log) {
		perror(argv[2]);
		return 1;
	}
	pthread_mutex_init(&st.mu, NULL);
	pthread_t t[256];
	for (int i = 0; i < n; i++)
		pthread_create(&t[i], NULL, worker, &st);
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	fclose(st.log);
	printf("acked %ld refused %ld\n", atomic_load(&st.acked), atomic_load(&st.refused));
	return 0;
}
