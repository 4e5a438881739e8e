/*
 * fed — the node's link to the tiers (federation): each node talks to its own nats-server,
 * which is a leaf node of its parent's; JetStream carries what goes up.
 *
 *  - status up: every federation.status_ms the node publishes its status into the
 *    parent's JetStream (domain federation.parent_domain) on `linli.up.<path>.status`;
 *  - changes up: the store's change log (store.h; datasets with `up` in the catalog) is
 *    sent in order on `linli.up.<path>.changes` ({n, a: first sequence, b: the parent's
 *    word, e: [entries]}) and released only when the parent says it applied them
 *    (`linli.down.<path>.applied`); the sender goes back to the parent's word after
 *    ACK_WAIT_MS of silence or a failed publish;
 *  - from below: the node keeps a stream LINLI_UP (work queue) of its children's own
 *    subjects (`linli.up.<path>.*.*`) read by a durable pull consumer; a status is kept in
 *    memory; changes are applied once and in order per sender (store_fed_apply and
 *    store_fed_mark in one transaction), the stream's message acknowledged after that
 *    commit; what cannot be applied is quarantined (store_fedq_*), a change outside the
 *    sender's subtree refused and audited;
 *  - rules down: `federation push` installs a rule and keeps it (data_dir/federation/down);
 *    each node sends what it holds to every child that has not acknowledged it
 *    (`linli.down.<child>.rule`), a child installs, keeps, passes it on and acknowledges up
 *    (`linli.up.<path>.acks`, passed on to the top);
 *  - the change log's bounds (federation.outbox_max, outbox_max_age_h): an alarm through
 *    alarmreq/raise at half, a counted drop beyond;
 *  - `linli federation status|quarantine|push`.
 *
 * Threads: libnats runs its own; fed's thread does the blocking calls (publish, fetch) and
 * hands what it received to the kernel thread with kernel_post; the kernel thread hands
 * back acknowledgements and messages to send (under fed's mutex). Everything else runs on
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
