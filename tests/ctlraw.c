/*
 * ctlraw — a test tool: send raw bytes to linlid's control socket and print
 * what comes back. Lets integration tests send what `linli` never would.
 *   ctlraw ADDR [--timeout MS]            send stdin as one message
 *   ctlraw ADDR --zeros N [--timeout MS]  send N zero bytes
 *   --text prints the reply as it came (for the PING/PONG probe).
 * The reply wait defaults to 15 s: generous, since a loaded machine running
 * the sanitizer build can be slow, and a test expecting a drop sets less.
 * Prints the reply as JSON on stdout and exits 0, or prints the nng error
 * and exits 3 when no reply came (a dropped request).
 */
#include <jansson.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

int main(int argc, char **argv)
{
	long zeros = -1, timeout = 15000;
	int text = 0;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--zeros") == 0 && i + 1 < argc)
			zeros = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--text") == 0)
			text = 1;
		else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
			timeout = strtol(argv[++i], NULL, 10);
		else
			argc = 0;
	}
	if (argc < 2) {
		fprintf(stderr, "usage: ctlraw ADDR [--zeros N] [--timeout MS]\n");
		return 2;
	}
	size_t len = 0, cap = 1 << 16;
	char *buf;
	if (zeros >= 0) {
		len = (size_t)zeros;
		buf = calloc(1, len + 1);
	} else {
		buf = malloc(cap);
		size_t r;
		while ((r = fread(buf + len, 1, cap - len, stdin)) > 0) {
			len += r;
			if (len == cap)
				buf = realloc(buf, cap *= 2);
		}
	}
	nng_socket s;
	int rv = nng_req0_open(&s);
	if (rv == 0) {
		nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, (nng_duration)timeout);
		nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, (nng_duration)timeout);
		nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
		rv = nng_dial(s, argv[1], NULL, NNG_FLAG_NONBLOCK); /* the send timeout bounds it */
	}
	if (rv == 0)
		rv = nng_send(s, buf, len, 0);
	char *reply = NULL;
	size_t rlen = 0;
	if (rv == 0)
		rv = nng_recv(s, &reply, &rlen, NNG_FLAG_ALLOC);
	free(buf);
	if (rv != 0) {
		printf("{\"nng_error\": \"%s\"}\n", nng_strerror(rv));
		nng_close(s);
		return 3;
	}
	if (text) {
		printf("%.*s\n", (int)rlen, reply);
		nng_free(reply, rlen);
		nng_close(s);
		return 0;
	}
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	size_t off = 0;
	int code = 1;
	if (msgpack_unpack_next(&up, reply, rlen, &off) == MSGPACK_UNPACK_SUCCESS) {
		json_t *j = json_from_mp(&up.data);
		char *t = json_dumps(j, JSON_ENCODE_ANY);
		printf("%s\n", t);
		free(t);
		json_decref(j);
		code = 0;
	}
	msgpack_unpacked_destroy(&up);
	nng_free(reply, rlen);
	nng_close(s);
	return code;
}
