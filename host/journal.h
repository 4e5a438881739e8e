/*
 * journal — the bus's records of consequence, kept in the store.
 *
 * Glue between bus.h's journal hook and store.h's journal table: every
 * record of consequence (alarm/#, incident/#, ...) is written into the
 * store's batch before any subscriber sees it, is durable with that batch's
 * commit, and only then leaves the process for external subscribers. The bus
 * numbers events after the journal's last seq, so numbers never repeat across
 * restarts. Also `linli events journal`. Never delivers or decides anything.
 */
#ifndef LINLI_JOURNAL_H
#define LINLI_JOURNAL_H

struct kernel;

/* Plug the store into the bus and register the command. Needs k->store and k->bus. */
int journal_attach(struct kernel *k);
/* Unplug it and free its buffer (before bus_close; for tests that open many kernels). */
void journal_detach(struct kernel *k);

/*
 * journal_await — for a handler that has just published: when the batch
 * holds a journal write, arrange for cmd_finish(call, rc) after the commit
 * and return 1 (the handler returns CMD_PENDING); otherwise return 0 (reply now).
 */
struct cmd_call;
int journal_await(struct kernel *k, struct cmd_call *call);

#endif
