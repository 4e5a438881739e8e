/*
 * retention — how long the audit log and the event journal are kept, and
 * how fast the system datasets grow.
 *
 * Owns the trimming timer (at most retention.batch deletions per tick, so a
 * huge backlog never stalls the kernel loop), the registry of journal
 * holders (`events hold|release|holds`, kept in the journal_holders system
 * dataset), the retention alarms (alarm/system/retention on the bus, each
 * condition logged once), the choice of events that are not journaled (the
 * catalog's `journal = false`), the deletion of expired session records, and
 * the size / oldest entry / write rate of each system dataset that `status`
 * shows.
 *
 * Never deletes a journal entry past a holder's position (a holder that has
 * blocked due trimming for retention.journal.max_hold is released with an
 * alarm first), and never cuts an audit entry younger than
 * retention.audit.min_age to meet the size cap: it keeps it and raises an
 * alarm. Runs on the kernel thread only.
 */
#ifndef LINLI_RETENTION_H
#define LINLI_RETENTION_H

#include <msgpack.h>
#include <stdbool.h>

struct kernel;
struct bus_event;

/* Start the timer and register the holder commands (needs store, bus, cmds). */
int retention_open(struct kernel *k);

/* Stop the timer and free (before the bus and the store close). */
void retention_close(struct kernel *k);

/* Is record of consequence `ev` kept in the journal? (false: telemetry-like) */
bool retention_journaled(const struct kernel *k, const struct bus_event *ev);

/* Pack, as `status` shows it, one map: each system dataset's figures. */
void retention_pack_status(struct kernel *k, msgpack_packer *pk);

/* Run one trimming tick now (the timer's work; tests). */
void retention_tick(struct kernel *k);

#endif
