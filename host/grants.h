/*
 * grants — the capabilities an admin granted to the plugins and rules of
 * this node, kept in the store (the `grants` system dataset).
 *
 * A plugin (a .so or a script plugin) or a rule declares the capabilities it
 * needs; it acts with them only once an admin granted each one, and a
 * declared capability no admin granted refuses its load with a message that
 * names the capabilities and the command that grants them. Granting is an
 * admin's act at this node (plugin.manage / rules.manage over the node's
 * whole jurisdiction, since that is where the plugin acts), audited; revoking
 * a capability a running plugin or rule declared stops it at once.
 *
 * Owns the records and the `plugins grant|revoke|grants` and `rules
 * grant|revoke|grants` commands; the loaders (plugin.c, script_cmds.c) say
 * through grants_subject_ops what a name declares and what happens to it
 * after a change. Never grants on its own: nothing is granted by installing.
 * A kernel without the permission model (unit tests, benchmarks: no
 * k->tiers) checks nothing, as access_gate does.
 */
#ifndef LINLI_GRANTS_H
#define LINLI_GRANTS_H

#include <stdbool.h>
#include <stddef.h>

#include "tier.h"

struct kernel;

enum grant_kind { GRANT_PLUGIN, GRANT_RULE };

#define GRANTS_LIST_MAX 8192 /* the space-separated list of one subject */

/*
 * grants_get — the capabilities granted to (kind, name), space-separated, in
 * `out` ("" when none). Sees the current batch. 0, or a code with err.
 */
int grants_get(struct kernel *k, enum grant_kind kind, const char *name, char *out, size_t outlen,
	       char *err, size_t errlen);

/*
 * grants_check — is every one of the n declared capabilities covered by a
 * grant? 0, or LINLI_EPERM with `why` naming the missing ones and the
 * command that grants them. Always 0 without the permission model.
 */
int grants_check(struct kernel *k, enum grant_kind kind, const char *name, const char *const *caps,
		 int n, char *why, size_t whylen);

/*
 * grants_change — add (grant) or remove (revoke) n capabilities of (kind,
 * name) in the current batch, audited as `who` (nothing written or audited
 * when nothing changes). Each must be well formed (tier_cap_check); revoking
 * one not held is an error. 0 or a code with err.
 */
int grants_change(struct kernel *k, const struct tier_principal *who, enum grant_kind kind,
		  const char *name, const char *const *caps, int n, bool grant, char *err,
		  size_t errlen);

/*
 * grants_drop — revoke everything (kind, name) holds, audited as `who` (a
 * rule removed: a later rule of the same name starts with nothing). 0 when
 * it held nothing, else as grants_change.
 */
int grants_drop(struct kernel *k, const struct tier_principal *who, enum grant_kind kind,
		const char *name, char *err, size_t errlen);

/*
 * grants_recheck — the grants from the tiers above changed (federation's down log): every
 * known plugin and rule is checked again (a running one whose declared capability lost its
 * grant stops, as at a revoke here).
 */
void grants_recheck(struct kernel *k);

/* What a loader tells the grant commands about its subjects. */
struct grants_subject_ops {
	/*
	 * The capabilities `name` declares (pointers valid during the command),
	 * at most max; the count, or -1 when no such plugin or rule is known.
	 */
	int (*declared)(struct kernel *k, const char *name, const char **out, int max);
	/*
	 * After a grant or revoke of `name`: re-check it (a running one whose
	 * declared capability lost its grant stops) and describe its state in a
	 * few words ("running", "refused: ...") in `state`.
	 */
	void (*changed)(struct kernel *k, const char *name, bool revoked, char *state, size_t len);
	/*
	 * The names of the known subjects that declare at least one capability
	 * (pointers valid during the command), at most max; returns the count.
	 */
	int (*names)(struct kernel *k, const char **out, int max);
};

/*
 * grants_register — the `WORD grant NAME CAP...|--all`, `WORD revoke NAME
 * CAP...|--all` and `WORD grants [NAME]` commands for one kind (WORD
 * "plugins" or "rules"). `ops` must outlive the registry.
 */
int grants_register(struct kernel *k, const char *word, enum grant_kind kind,
		    const struct grants_subject_ops *ops);

/*
 * grants_bootstrap — `linlid --grant plugin:NAME|rule:NAME CAP...` with the
 * daemon stopped: grant and commit, audited as the local administrator.
 */
int grants_bootstrap(struct kernel *k, const char *subject, const char *const *caps, int n,
		     char *err, size_t errlen);

#endif
