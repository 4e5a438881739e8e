/*
 * fed — the node's link to the tiers (federation, first step): each node talks to its own
 * nats-server, which is a leaf node of its parent's; JetStream carries what goes up.
 *
 * This step carries each node's status up to its parent and shows the links:
 *  - up: every federation.status_ms the node publishes its status ({node, level, name,
 *    version, sdk, sent_at, uptime_s, plugins, seq}) into the parent's JetStream (domain
 *    federation.parent_domain) on `linli.up.<node's path, '/' as '.'>.status`, message id
 *    "NODE:SEQ" (JetStream drops a repeat);
 *  - from below: the node keeps a stream LINLI_UP on its own server for its children's
 *    subjects (`linli.up.<path>.*.>`) and reads it with a durable pull consumer; a status
 *    is taken only when its node is a direct child and names the subject it came on (a
 *    forged one is refused, counted and logged), then acknowledged;
 *  - `linli federation status`: the link (connected, errors, counters) and the children
 *    (last seen, stale after federation.stale_ms).
 * Children's statuses are held in memory (a restart waits for the next ones). Records,
 * their outbox and the change log come with the store's change-log format (issue 22).
 *
 * Threads: libnats runs its own; fed's thread does the blocking calls (publish, fetch) and
 * hands what it received to the kernel thread with kernel_post. Everything else runs on
 * the kernel thread. No federation group in the configuration: nothing starts.
 */
#ifndef LINLI_FED_H
#define LINLI_FED_H

#include <stdint.h>

struct kernel;

/* Start the link when the configuration has one (0 also when it has none). */
int fed_open(struct kernel *k);

/* Stop it: the thread joined, the connection closed. */
void fed_close(struct kernel *k);

/* The store committed change log entries up to `last` (store_opts.on_outbox; ud: kernel). */
void fed_on_outbox(void *ud, uint64_t last);

#endif
