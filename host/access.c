/* access — see access.h. */
#include "access.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "catalog.h"
#include "cmd.h"
#include "kernel.h"
#include "linli/error.h"
#include "log.h"
#include "tier_store.h"

int access_check(struct kernel *k, const struct tier_principal *who, enum tier_action act,
		 const char *scope, const char *object, char *err, size_t errlen)
{
	if (!who) {
		snprintf(err, errlen, "not logged in: run 'linli login USER' first");
		return LINLI_EAUTH;
	}
	int rc = tier_check(who, act, scope, object, err, errlen);
	/* What this node holds is its subtree: an account of a tier above acting here (a
	   command sent down, federation exec; a store copied from the city) changes nothing
	   beside it (it reads what the node holds, which is its subtree and what came down). */
	bool changes = act == ACT_DATA_WRITE || act == ACT_DATA_DELETE ||
		       act == ACT_DEVICE_COMMAND || act == ACT_DEVICE_MANAGE ||
		       act == ACT_EVENTS_PUBLISH;
	if (!rc && changes && who->kind != PRINCIPAL_KERNEL && scope && *scope &&
	    !scope_within(k->cfg.node_path, scope)) {
		snprintf(err, errlen, "%s is outside this node's jurisdiction (%s)", scope,
			 k->cfg.node_path);
		rc = LINLI_EPERM;
	}
	/*
	 * The denial is recorded in the caller's own jurisdiction (the message
	 * names the target): there the caller's auditors and admins look, and a
	 * target outside it — a sibling, a parent — is exactly what it may not
	 * write into.
	 */
	if (rc)
		tiers_audit(k, who, tier_action_name(act), who->scope, object, "denied", err);
	if (rc)
		log_info("access", "denied %s '%s' %s on %s%s%s: %s",
			 who->kind == PRINCIPAL_PLUGIN ? "plugin"
			 : who->kind == PRINCIPAL_RULE ? "rule"
						       : "account",
			 who->name, tier_action_name(act), scope, object ? " " : "",
			 object ? object : "", err);
	return rc;
}

const char *access_inherited(const struct kernel *k, const struct tier_principal *who,
			     enum tier_action act, const char *dataset, const char *scope)
{
	if (act != ACT_DATA_READ || !who || who->kind == PRINCIPAL_KERNEL || !who->scope ||
	    !scope || !dataset)
		return NULL;
	const struct cat_dataset *ds = catalog_dataset(k->catalog, dataset);
	if (!ds || !ds->down)
		return NULL;
	const char *own = who->scope;
	for (const struct tier_principal *p = who->on_behalf; p; p = p->on_behalf)
		if (p->scope && scope_within(own, p->scope))
			own = p->scope;
	return scope_within(scope, own) && strcmp(scope, own) ? own : NULL;
}

int access_call(struct cmd_call *call, enum tier_action act, const char *scope, const char *object)
{
	return access_check(call->k, call->who, act, scope, object, call->err, sizeof call->err);
}

int access_scope(struct cmd_call *call, const char *requested, const char *what,
		 enum tier_action act, const char *object, char out[SCOPE_MAX + 1])
{
	const char *node = call->k->cfg.node_path;
	if (!call->who)
		return cmd_fail(call, LINLI_EAUTH, "not logged in: run 'linli login USER' first");
	/* By default a caller works in its own jurisdiction, not at the node's path. */
	const char *s = requested ? requested : call->who->scope;
	char why[128];
	if (!scope_check(s, why, sizeof why))
		return cmd_fail(call, LINLI_EINVAL, "%s: scope '%.64s': %s", what, s, why);
	/* The caller's rights first, so that a refusal is audited. */
	int rc = access_call(call, act, s, object);
	if (rc)
		return rc;
	if (!scope_within(node, s))
		return cmd_fail(call, LINLI_EPERM,
				"%s: scope '%s' is outside this node's jurisdiction '%s'", what, s,
				node);
	snprintf(out, SCOPE_MAX + 1, "%s", s);
	return 0;
}

bool access_sees(const struct cmd_call *call, const char *scope)
{
	if (!call->who || !call->who->scope)
		return false;
	return scope_within(call->who->scope, scope && *scope ? scope : call->k->cfg.node_path);
}

/*
 * The gates: every console command of the kernel, with the action it takes
 * and how far it reaches (access.h). A command acts on the whole node when
 * it copies, counts or changes what belongs to no one jurisdiction: the
 * store as a whole, node-wide counters, the node's plugins and rules (they
 * act over its whole jurisdiction), the device layer's drivers. Those are
 * checked at the node's own path, the rule `plugins grant` always followed:
 * a street admin on a city node does not back up the city. Every other
 * command acts within the caller's subtree: the gate checks its action at
 * the caller's own node, or leaves it to the handler, which checks it at
 * each target with what it touches (a dataset, a device's class, a topic)
 * and audits that (the last column says which). A kernel
 * command without a row here is a bug: tests/integration/test_tiers.py holds
 * `help`, `tier gates` and the README's command table together.
 */
#define N_ REACH_NODE
#define S_ REACH_SCOPED
static const struct access_gate_row gates[] = {
    {"login", NULL, ACT_STATUS, REACH_OPEN, false},
    {"help", NULL, ACT_STATUS, REACH_OPEN, false},
    {"logout", NULL, ACT_STATUS, S_, false},
    {"whoami", NULL, ACT_STATUS, S_, false},
    {"status", NULL, ACT_STATUS, S_, false}, /* node-wide figures: access_sees */
    {"data", "get", ACT_DATA_READ, S_, true},
    {"data", "put", ACT_DATA_WRITE, S_, true},
    {"data", "del", ACT_DATA_DELETE, S_, true},
    {"data", "query", ACT_DATA_READ, S_, true},
    {"store", "stats", ACT_STORE_ADMIN, N_, false},
    {"store", "backup", ACT_STORE_ADMIN, N_, false},
    {"store", "verify", ACT_STORE_ADMIN, N_, false},
    {"catalog", "list", ACT_STATUS, S_, false},
    {"catalog", "show", ACT_STATUS, S_, false},
    {"accounts", "add", ACT_ACCOUNTS_MANAGE, S_, false},
    {"accounts", "passwd", ACT_ACCOUNTS_MANAGE, S_, true}, /* one's own: status */
    {"accounts", "set", ACT_ACCOUNTS_MANAGE, S_, false},
    {"accounts", "disable", ACT_ACCOUNTS_MANAGE, S_, false},
    {"accounts", "enable", ACT_ACCOUNTS_MANAGE, S_, false},
    {"accounts", "remove", ACT_ACCOUNTS_MANAGE, S_, false},
    {"accounts", "grant", ACT_ACCOUNTS_MANAGE, S_, false},
    {"accounts", "revoke", ACT_ACCOUNTS_MANAGE, S_, false},
    {"accounts", "assign", ACT_ACCOUNTS_MANAGE, S_, false},
    {"accounts", "unassign", ACT_ACCOUNTS_MANAGE, S_, false},
    {"accounts", "list", ACT_ACCOUNTS_MANAGE, S_, false},
    {"audit", NULL, ACT_AUDIT_READ, S_, false},
    {"tier", "tree", ACT_STATUS, S_, false},
    {"tier", "roles", ACT_STATUS, S_, false},
    {"tier", "gates", ACT_STATUS, S_, false},
    {"apikeys", "add", ACT_STORE_ADMIN, S_, false},
    {"apikeys", "list", ACT_STORE_ADMIN, S_, false},
    {"apikeys", "revoke", ACT_STORE_ADMIN, S_, false},
    {"events", "subscribe", ACT_EVENTS_SUBSCRIBE, S_, true},
    {"events", "next", ACT_EVENTS_SUBSCRIBE, S_, true},
    {"events", "unsubscribe", ACT_EVENTS_SUBSCRIBE, S_, false},
    {"events", "tail", ACT_EVENTS_SUBSCRIBE, S_, false},
    {"events", "journal", ACT_EVENTS_SUBSCRIBE, S_, false},
    {"events", "list", ACT_STATUS, S_, false},
    {"events", "stats", ACT_EVENTS_SUBSCRIBE, N_, true},
    {"events", "hold", ACT_EVENTS_SUBSCRIBE, S_, true},
    {"events", "release", ACT_EVENTS_SUBSCRIBE, S_, true},
    {"events", "holds", ACT_EVENTS_SUBSCRIBE, S_, true},
    {"federation", "status", ACT_STATUS, S_, false}, /* children within the caller's reach */
    {"federation", "quarantine", ACT_STORE_ADMIN, S_, false}, /* its own subtree's */
    {"federation", "push", ACT_RULES_MANAGE, N_, false},
    {"federation", "decommission", ACT_STORE_ADMIN, S_, false}, /* a child within reach */
    {"federation", "exec", ACT_STATUS, S_, true}, /* the node below within reach; gated there */
    {"publish", NULL, ACT_EVENTS_PUBLISH, S_, true},
    {"devices", "list", ACT_DEVICE_READ, S_, true},
    {"devices", "show", ACT_DEVICE_READ, S_, true},
    {"devices", "readings", ACT_DEVICE_READ, S_, true},
    {"devices", "add", ACT_DEVICE_MANAGE, S_, true},
    {"devices", "remove", ACT_DEVICE_MANAGE, S_, true},
    {"devices", "rekey", ACT_DEVICE_MANAGE, S_, true},
    {"devices", "command", ACT_DEVICE_COMMAND, S_, true},
    {"devices", "set", ACT_DEVICE_COMMAND, S_, true},
    {"devices", "discover", ACT_DEVICE_MANAGE, N_, false},
    {"devices", "stats", ACT_DEVICE_READ, S_, true},
    {"plugins", "list", ACT_STATUS, S_, false},
    {"plugins", "info", ACT_STATUS, S_, false},
    {"plugins", "grants", ACT_STATUS, S_, false},
    {"plugins", "enable", ACT_PLUGIN_MANAGE, N_, false},
    {"plugins", "disable", ACT_PLUGIN_MANAGE, N_, false},
    {"plugins", "reload", ACT_PLUGIN_MANAGE, N_, false},
    {"plugins", "install", ACT_PLUGIN_MANAGE, N_, false},
    {"plugins", "upload", ACT_PLUGIN_MANAGE, N_, false},
    {"plugins", "upgrade", ACT_PLUGIN_MANAGE, N_, false},
    {"plugins", "rollback", ACT_PLUGIN_MANAGE, N_, false},
    {"plugins", "remove", ACT_PLUGIN_MANAGE, N_, false},
    {"plugins", "grant", ACT_PLUGIN_MANAGE, N_, false},
    {"plugins", "revoke", ACT_PLUGIN_MANAGE, N_, false},
    {"trust", "add", ACT_PLUGIN_MANAGE, N_, false},
    {"trust", "list", ACT_PLUGIN_MANAGE, N_, false},
    {"trust", "remove", ACT_PLUGIN_MANAGE, N_, false},
    {"rules", "list", ACT_STATUS, S_, false},
    {"rules", "show", ACT_STATUS, S_, false},
    {"rules", "log", ACT_STATUS, S_, false},
    {"rules", "grants", ACT_STATUS, S_, false},
    {"rules", "check", ACT_RULES_MANAGE, N_, false},
    {"rules", "install", ACT_RULES_MANAGE, N_, false},
    {"rules", "reload", ACT_RULES_MANAGE, N_, false},
    {"rules", "remove", ACT_RULES_MANAGE, N_, false},
    {"rules", "test", ACT_RULES_MANAGE, N_, false},
    {"rules", "grant", ACT_RULES_MANAGE, N_, false},
    {"rules", "revoke", ACT_RULES_MANAGE, N_, false},
    {"clock", NULL, ACT_STORE_ADMIN, N_, false}, /* refused unless linlid --test-clock */
};
#undef N_
#undef S_

const char *access_reach_name(enum access_reach r)
{
	return r == REACH_OPEN ? "open" : r == REACH_NODE ? "node-wide" : "scoped";
}

const struct access_gate_row *access_gates(size_t *n)
{
	*n = sizeof gates / sizeof gates[0];
	return gates;
}

const struct access_gate_row *access_gate_find(const char *name, const char *sub)
{
	const struct access_gate_row *alone = NULL;
	for (size_t i = 0; i < sizeof gates / sizeof gates[0]; i++) {
		if (strcmp(gates[i].name, name) != 0)
			continue;
		if (!gates[i].sub)
			alone = &gates[i];
		else if (sub && strcmp(gates[i].sub, sub) == 0)
			return &gates[i];
	}
	return alone;
}

int access_gate(struct kernel *k, struct cmd_call *call)
{
	const char *w0 = call->argv[0], *w1 = call->argc > 1 ? call->argv[1] : NULL;
	const struct access_gate_row *g = access_gate_find(w0, w1);
	if (g && g->reach == REACH_OPEN)
		return 0;
	if (!k->tiers) {
		/*
		 * A kernel built without the permission model: only programs that
		 * embed parts of the kernel (the benchmarks) do that; linlid always
		 * opens it before it listens. Their requests act as the kernel.
		 */
		static struct tier_principal kp;
		kp = (struct tier_principal){PRINCIPAL_KERNEL, "kernel", k->cfg.node_path,
					     ROLE_NONE, NULL, NULL, NULL};
		call->who = &kp;
		return 0;
	}
	int rc = tiers_attach(k, call);
	return rc ? rc : access_gate_who(k, call);
}

int access_gate_who(struct kernel *k, struct cmd_call *call)
{
	const char *w0 = call->argv[0], *w1 = call->argc > 1 ? call->argv[1] : NULL;
	const struct access_gate_row *g = access_gate_find(w0, w1);
	if (g && g->reach == REACH_OPEN)
		return 0;
	int rc;
	enum tier_action act = !g || g->in_handler ? ACT_STATUS : g->act;
	char what[80]; /* the audit's object: the command */
	snprintf(what, sizeof what, "%s%s%s", w0, g && g->sub ? " " : "",
		 g && g->sub ? g->sub : "");
	if (!g || g->reach != REACH_NODE) /* at the caller's node, or this one for a caller of a
					     tier above (federation exec) */
		return access_call(call, act,
				   scope_within(call->who->scope, k->cfg.node_path) ? k->cfg.node_path
										    : call->who->scope,
				   what);
	rc = access_call(call, act, k->cfg.node_path, what);
	if (rc) {
		char why[sizeof call->err];
		snprintf(why, sizeof why, "%s", call->err);
		cmd_fail(call, rc, "'%s' acts on the whole node %s: %s", what, k->cfg.node_path,
			 why);
	}
	return rc;
}
