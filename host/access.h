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

/*
 * access_inherited — a read of `dataset` at `scope` strictly above the reader's own
 * jurisdiction, where the dataset comes down the tiers (catalog `down`: service items,
 * categories, calendars, watchlists kept at the city and read below): the scope at which
 * the reader's right to read it is checked instead (its own, the deepest of a plugin and
 * the caller it acts for), or NULL when the read is not such a one. Such a read sees the
 * records kept at that scope itself only, never what lies below it (a sibling's).
 */
const char *access_inherited(const struct kernel *k, const struct tier_principal *who,
			     enum tier_action act, const char *dataset, const char *scope);

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
 * How far a console command reaches, hence where its action is checked.
 * REACH_OPEN: no session (login, help). REACH_SCOPED: within the caller's
 * subtree: the gate checks the action at the caller's own node (its role)
 * unless the row leaves it to the handler (in_handler), and the handler
 * checks every target it names (--scope, a record's or device's scope).
 * REACH_NODE: the command acts on, or reveals, the whole node (a
 * backup, node-wide counters, the node's plugins and rules), so the gate
 * checks the action at the node's own path: only accounts whose
 * jurisdiction holds the whole node pass.
 */
enum access_reach { REACH_OPEN, REACH_SCOPED, REACH_NODE };

const char *access_reach_name(enum access_reach r); /* "open", "scoped", "node-wide" */

/* One row of the gates table: the kernel's console commands, each with its reach. */
struct access_gate_row {
	const char *name, *sub; /* sub NULL: the command has no subcommand */
	enum tier_action act;	/* the action the command takes */
	enum access_reach reach;
	bool in_handler; /* the handler checks act at each target (and what it touches);
			    the gate asks only `status` of the caller's role */
};

/*
 * access_gate_find — the row of `name [sub]`: the exact one, else the row
 * of `name` alone (sub is then an argument: `audit --scope X`). NULL for a
 * command the kernel does not know (a plugin's own command: the gate asks
 * `status` at the caller's node, the plugin checks the rest).
 */
const struct access_gate_row *access_gate_find(const char *name, const char *sub);

/* Every row, in order; *n receives the count. */
const struct access_gate_row *access_gates(size_t *n);

/*
 * access_gate — before a console request runs: attach the session's
 * principal (all but REACH_OPEN commands need one) and check the action of
 * the command's row where its reach says (see above). Refusals are audited
 * by access_check; a node-wide refusal says that the command acts on the
 * whole node. 0, or a code with call->err.
 */
int access_gate(struct kernel *k, struct cmd_call *call);
/* The same for a call whose caller is attached already (call->who: a command that came
   down from a parent node, federation exec). */
int access_gate_who(struct kernel *k, struct cmd_call *call);

#endif
