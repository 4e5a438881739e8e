/*
 * control — the request/reply socket the console and remote tools talk to.
 *
 * Owns one nng rep0 socket with its listeners and a pool of contexts. nng's
 * threads receive requests and post them to the kernel thread, which decodes,
 * dispatches through the command registry and sends the reply. The wire format
 * is specified in proto.h. Never runs a command off the kernel thread; never
 * lets one malformed or oversized request, nor a client that stalls, stop the
 * others: connections idle past control.idle_timeout_ms are closed.
 */
#ifndef LINLI_CONTROL_H
#define LINLI_CONTROL_H

#include <stddef.h>

struct kernel;
struct control;
struct cfg;

/*
 * control_check_tls — when cfg has a tls+tcp:// listener, check that
 * control.tls_cert is a readable PEM certificate and control.tls_key its
 * unencrypted PEM private key. Returns 0, or LINLI_ECONFIG with `err` naming
 * the key and the file. control_open checks again; linlid calls it at start
 * and for --check-config.
 */
int control_check_tls(const struct cfg *cfg, char *err, size_t errlen);

/* Open and start listening on every address of k->cfg. */
int control_open(struct kernel *k, struct control **out, char *err, size_t errlen);

/* Stop accepting new connections (first step of shutdown). */
void control_stop_listening(struct control *c);

/* Close the socket, wait for nng's callbacks, free everything. */
void control_close(struct control *c);

/* Connections open now, and closed by linlid for stalling or misbehaving, for status. */
void control_conn_counters(struct control *c, unsigned long long *open, unsigned long long *cut);

/* Listeners restarted by the probe (see control.c), for status. */
unsigned long long control_restarts(const struct control *c);

/* Requests served and refused as malformed, for status. */
void control_counters(const struct control *c, unsigned long long *served,
		      unsigned long long *malformed);

struct cmd_call;

/*
 * control_decode — one request's bytes (proto.h) into a new call (free with
 * cmd_call_free), or NULL with the reason in err. Kernel thread; exposed
 * for the fuzz target (tests/fuzz/fuzz_control.c).
 */
struct cmd_call *control_decode(struct kernel *k, const void *body, size_t len, char *err,
				size_t errlen);

#endif
