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
 * access_gate — before a console request runs: attach the session's
 * principal (all but `login` and `help` need one) and check the action the
 * command word implies (accounts → accounts.manage, plugins install →
 * plugin.manage, audit → audit.read, ...; data, events and devices check
 * their own scope and object in their handlers). 0, or a code with call->err.
 */
int access_gate(struct kernel *k, struct cmd_call *call);

#endif
