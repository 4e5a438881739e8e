/*
 * tier_store — accounts, sessions and the audit log, kept in the store.
 *
 * Owns the `accounts`, `sessions` and `audit` system datasets and the
 * console commands over them: login, logout, whoami, accounts ..., audit,
 * tier tree, tier roles, tier gates. Resolves a session token to the
 * principal every request acts as (a small cache in front of the store), and
 * ends an account's sessions for good when its password, role or node
 * changes, or it is disabled or removed. Password hashing
 * and verification (Argon2id, tens of milliseconds and tens of MiB) run on a
 * thread of their own and post back, so the kernel thread never waits on
 * them. Never stores, logs or returns a password or a token in clear: only
 * the token's BLAKE2b hash is kept, as the session's id.
 */
#ifndef LINLI_TIER_STORE_H
#define LINLI_TIER_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include "tier.h"
#include "tier_tree.h"

struct kernel;
struct cmd_call;

/* Load the tree (catalog_dir/tree.cfg), register the commands. */
int tiers_open(struct kernel *k, char *err, size_t errlen);
void tiers_close(struct kernel *k);

/*
 * tiers_attach — resolve call->session into call->who (a reference the call
 * releases when freed). Returns 0, or LINLI_EAUTH with call->err saying why
 * (no session, unknown or forged token, expired, account disabled).
 */
int tiers_attach(struct kernel *k, struct cmd_call *call);

/*
 * tiers_recheck — is the session behind call->who still live? For a call
 * that outlives the check of its request (a long poll answered seconds
 * later): a password change, a disable, a role or node change or a removal
 * of its account, a logout or the expiry ends it. 0 (also for a principal no
 * session stands behind), or LINLI_EAUTH with call->err "session ended: ...".
 */
int tiers_recheck(struct kernel *k, struct cmd_call *call);

/*
 * tiers_duty_holders — pack an array of {"user", "scope", "role", "name"}:
 * the enabled accounts within `scope`'s subtree that hold workflow duty
 * `duty` (accounts assign). 0 or a store code with err.
 */
struct msgpack_packer;
int tiers_duty_holders(struct kernel *k, const char *duty, const char *scope,
		       struct msgpack_packer *pk, char *err, size_t errlen);

/*
 * tiers_audit — append an audit entry to the current batch (kernel thread):
 * who did `action` on `object` at `scope`, with result "allowed", "denied"
 * or "masked" and an optional detail. Failures are logged, never fatal.
 */
void tiers_audit(struct kernel *k, const struct tier_principal *who, const char *action,
		 const char *scope, const char *object, const char *result, const char *detail);

/*
 * tiers_audit_flush — write the folded read entries whose window
 * (retention.audit.aggregate_s) is over, or all of them (kernel thread;
 * retention's tick and tiers_close call it). See audit_fold in tier_store.c.
 */
void tiers_audit_flush(struct kernel *k, bool all);

/*
 * tiers_bootstrap_admin — the first-run command (`linlid --init-admin USER`):
 * create the node's first administrator when no account exists yet.
 * Runs with the daemon stopped (the caller holds the data dir lock).
 */
int tiers_bootstrap_admin(struct kernel *k, const char *user, const char *password, char *err,
			  size_t errlen);

/* The loaded jurisdiction tree (empty when there is no tree.cfg). */
const struct tier_tree *tiers_tree(const struct kernel *k);

#endif
