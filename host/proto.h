/*
 * proto — the control protocol between `linli` (or any remote tool) and
 * `linlid`. This header is its specification.
 *
 * Transport: nng req0/rep0 on the addresses of `control.listen` (ipc://,
 * tcp://, tls+tcp://). One request message, one reply message.
 *
 * Encoding: each message is one MessagePack map. Keys are strings.
 *
 * Request:
 *   "v"       int     protocol version, PROTO_VERSION (optional, default 1)
 *   "argv"    array   of strings, required, at least one: the command words
 *                     as typed at the console, e.g. ["plugins", "info", "grid"]
 *   "session" string  session token from `linli login` (optional until the
 *                     permission model; then required for all but a few)
 *   "input"   string  optional body, e.g. a JSON record for `data put`
 *
 * Reply (always sent unless the request was dropped, see below):
 *   "ok"      bool    true on success
 *   "data"    any     on success: the command's result (maps, arrays, scalars)
 *   "code"    int     on failure: a negative LINLI_E* code (linli/error.h)
 *   "name"    string  on failure: the code's symbolic name, e.g. "LINLI_ENOENT"
 *   "error"   string  on failure: a human message naming what and where
 *
 * Liveness probe: a message of exactly the 4 bytes "PING" (not MessagePack)
 * is answered with "PONG" by the socket layer itself, without touching the
 * kernel thread; linlid probes its own listeners this way (control.c).
 *
 * Limits and malformed input:
 *   - A request larger than `control.max_request` (default PROTO_MAX_REQUEST,
 *     1 MiB) is dropped by nng and its connection closed; nothing else is hurt.
 *   - Bytes that are not one MessagePack map, an empty message, a missing or
 *     empty "argv", or a non-string argv word get LINLI_EPROTO with a message.
 *   - So does a size the request declares but does not hold (an array or map
 *     count greater than the bytes that follow it, a string longer than
 *     them), and nesting deeper than PROTO_MAX_DEPTH: such a request is
 *     refused before anything is allocated for it (mp_check, host/mp.h).
 *   - An unknown command gets LINLI_ENOENT ("unknown command 'x'; try help").
 *
 * Connections (control.c): a peer that does not speak SP (wrong header, or a
 * message without a request id) is disconnected; one that has not finished
 * the TLS and SP handshakes within 10 s, or that completes no request for
 * `control.idle_timeout_ms` (default 60 s) while it has none in progress, is
 * disconnected; so is one with more than control.workers / 2 requests in
 * progress at once, or one whose reply cannot be delivered within the idle
 * timeout. A req0 client reconnects by itself; a request it had in flight
 * when it was cut fails and may be sent again.
 */
#ifndef LINLI_PROTO_H
#define LINLI_PROTO_H

#define PROTO_VERSION 1
#define PROTO_MAX_REQUEST (1u << 20)
#define PROTO_MAX_ARGS 64
#define PROTO_MAX_DEPTH 8 /* containers nested in a request (the map and argv: 2) */
#define PROTO_PING "PING"
#define PROTO_PONG "PONG"
#define PROTO_PING_LEN 4

#endif
