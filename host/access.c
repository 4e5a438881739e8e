/* access — see access.h. */
#include "access.h"

#include <stdio.h>

#include "cmd.h"
#include "kernel.h"
#include "linli/error.h"
#include "log.h"

int access_check(struct kernel *k, const struct tier_principal *who, enum tier_action act,
		 const char *scope, const char *object, char *err, size_t errlen)
{
	(void)k;
	if (!who) {
		snprintf(err, errlen, "not logged in: run 'linli login USER' first");
		return LINLI_EAUTH;
	}
	int rc = tier_check(who, act, scope, object, err, errlen);
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
	if (!call->who)
		call->who = access_local_admin(call->k);
	return access_check(call->k, call->who, act, scope, object, call->err, sizeof call->err);
}

const struct tier_principal *access_local_admin(struct kernel *k)
{
	static struct tier_principal p;
	p = (struct tier_principal){PRINCIPAL_PERSON, "local", k->cfg.node_path, ROLE_ADMIN, NULL};
	return &p;
}
