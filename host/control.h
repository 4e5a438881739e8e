/*
 * control — the request/reply socket the console and remote tools talk to.
 *
 * Owns one nng rep0 socket with its listeners and a pool of contexts. nng's
 * threads receive requests and post them to the kernel thread, which decodes,
 * dispatches through the command registry and sends the reply. The wire format
 * is specified in proto.h. Never runs a command off the kernel thread; never
 * lets one malformed or oversized request stop the others.
 */
#ifndef LINLI_CONTROL_H
#define LINLI_CONTROL_H

#include <stddef.h>

struct kernel;
struct control;

/* Open and start listening on every address of k->cfg. */
int control_open(struct kernel *k, struct control **out, char *err, size_t errlen);

/* Stop accepting new connections (first step of shutdown). */
void control_stop_listening(struct control *c);

/* Close the socket, wait for nng's callbacks, free everything. */
void control_close(struct control *c);

/* Listeners restarted by the probe (see control.c), for status. */
unsigned long long control_restarts(const struct control *c);

/* Requests served and refused as malformed, for status. */
void control_counters(const struct control *c, unsigned long long *served,
		      unsigned long long *malformed);

#endif
