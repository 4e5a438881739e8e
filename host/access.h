/*
 * access — the one enforcement point: may this caller take this action here?
 *
 * Every path into data or devices (console commands, HTTP, bus, C plugins,
 * Lua) ends in access_check: the tier rules (tier_check) for the caller's
 * principal, the action, the target scope and the object (dataset, topic,
 * device class), plus an audit entry for every denial. Console and HTTP
 * handlers use access_call, which takes the principal the transport attached
 * to the call (call->who) and writes the refusal into call->err. Never
 * decides on its own: the rules are tier.c's.
 */
#ifndef LINLI_ACCESS_H
#define LINLI_ACCESS_H

#include <stdbool.h>
#include <stddef.h>

#include "scope.h"
#include "tier.h"

struct kernel;
struct cmd_call;

int access_check(struct kernel *k, const struct tier_principal *who, enum tier_action act,
		 const char *scope, const char *object, char *err, size_t errlen);

/* access_check for a console/HTTP call; on refusal call->err says why. */
int access_call(struct cmd_call *call, enum tier_action act, const char *scope,
		const char *object);

/*
 * access_scope — the scope a console call works at: `requested` (NULL: the
 * caller's own node, never the linlid's node path), a well-formed path inside
 * this linlid's node, allowed to the caller by access_call for `act` and
 * `object`. `what` names the command in refusals. 0 and `out`, or a code
 * with call->err.
 */
int access_scope(struct cmd_call *call, const char *requested, const char *what,
		 enum tier_action act, const char *object, char out[SCOPE_MAX + 1]);

/*
 * access_sees — may the caller see what belongs to `scope`: is it within the
 * caller's subtree? NULL or "" stands for the node itself (what a plugin, a
 * rule or the kernel does node-wide), which only a caller whose subtree
 * covers the node sees. A listing shows a row only when this is true.
 */
bool access_sees(const struct cmd_call *call, const char *scope);

/*
 * access_gate — before a console request runs: attach the session's
 * principal (all but `login` and `help` need one) and check the action the
 * command word implies (accounts → accounts.manage, plugins install →
 * plugin.manage, audit → audit.read, ...; data, events and devices check
 * their own scope and object in their handlers). 0, or a code with call->err.
 */
int access_gate(struct kernel *k, struct cmd_call *call);

#endif
