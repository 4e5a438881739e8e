/* access — see access.h. */
#include "access.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

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
 * The action a command word implies; NULL sub matches any. First match wins.
 * `node`: the action is on this node itself (its plugins and rules act over
 * its whole jurisdiction), so the caller needs the right at the node's path,
 * not merely at its own: a street admin does not manage a city node's plugins.
 */
static const struct {
	const char *name, *sub;
	enum tier_action act;
	bool node;
} gates[] = {
    {"accounts", "passwd", ACT_STATUS, false}, /* one's own; others are checked inside */
    {"accounts", NULL, ACT_ACCOUNTS_MANAGE, false},
    {"audit", NULL, ACT_AUDIT_READ, false},
    {"plugins", "list", ACT_STATUS, false},
    {"plugins", "info", ACT_STATUS, false},
    {"plugins", "grants", ACT_STATUS, false},
    {"plugins", NULL, ACT_PLUGIN_MANAGE, true},
    {"rules", "list", ACT_STATUS, false},
    {"rules", "show", ACT_STATUS, false},
    {"rules", "log", ACT_STATUS, false},
    {"rules", "grants", ACT_STATUS, false},
    {"rules", NULL, ACT_RULES_MANAGE, true},
    {"store", NULL, ACT_STORE_ADMIN, false},
    {"apikeys", NULL, ACT_STORE_ADMIN, false},
};

int access_gate(struct kernel *k, struct cmd_call *call)
{
	const char *w0 = call->argv[0], *w1 = call->argc > 1 ? call->argv[1] : NULL;
	if (strcmp(w0, "login") == 0 || strcmp(w0, "help") == 0)
		return 0;
	if (!k->tiers) {
		/*
		 * A kernel built without the permission model: only programs that
		 * embed parts of the kernel (the benchmarks) do that; linlid always
		 * opens it before it listens. Their requests act as the kernel.
		 */
		static struct tier_principal kp;
		kp = (struct tier_principal){PRINCIPAL_KERNEL, "kernel", k->cfg.node_path,
					     ROLE_NONE, NULL};
		call->who = &kp;
		return 0;
	}
	int rc = tiers_attach(k, call);
	if (rc)
		return rc;
	enum tier_action act = ACT_STATUS;
	bool node = false;
	for (size_t i = 0; i < sizeof gates / sizeof gates[0]; i++)
		if (strcmp(gates[i].name, w0) == 0 &&
		    (!gates[i].sub || (w1 && strcmp(gates[i].sub, w1) == 0))) {
			act = gates[i].act;
			node = gates[i].node;
			break;
		}
	return access_call(call, act, node ? k->cfg.node_path : call->who->scope, w0);
}
