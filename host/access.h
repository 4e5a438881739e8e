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

#include <stddef.h>

#include "tier.h"

struct kernel;
struct cmd_call;

int access_check(struct kernel *k, const struct tier_principal *who, enum tier_action act,
		 const char *scope, const char *object, char *err, size_t errlen);

/* access_check for a console/HTTP call; on refusal call->err says why. */
int access_call(struct cmd_call *call, enum tier_action act, const char *scope,
		const char *object);

/*
 * The principal of calls that carry no session yet: the node's local
 * administrator. It stands in until sessions (issue 5) attach real accounts.
 */
const struct tier_principal *access_local_admin(struct kernel *k);

#endif
