/*
 * caller — what a plugin knows of who calls it, and its own actions.
 *
 * Owns the caller view a handler sees (struct linli_caller, built from the
 * tier principal of a console session or an API key), the start and end of
 * serving a request (the kernel's check of the command's required action,
 * then plug_act_begin: the plugin acts as the caller until the handler
 * returns), the plugin-defined actions (declared by a plugin with a least
 * role, level and duty; tracked resources, listed by `plugins info`), their
 * check through tier_check_action with the denial audited under the caller,
 * and the list of accounts holding a duty. The C members and the Lua
 * bindings (script_api.c) both come here, so both meet the same checks.
 * Never widens a caller: whatever it lets a plugin do for a caller also
 * passes the tier checks of the caller itself.
 */
#ifndef LINLI_CALLER_H
#define LINLI_CALLER_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>

#include "apires.h"
#include "linli/api.h"
#include "plugin.h"
#include "tier.h"

#define CALLER_ACTION_MAX 63 /* bytes of an action's name */

/* The caller a handler sees, and the storage its pointers point into. */
struct caller_view {
	struct linli_caller pub;
	const char *resources[APIRES_MAX + 1];
	char res_text[APIRES_MAX][CAT_NAME_MAX + APIRES_ROUTE_MAX + 8];
	const char *no_list[1];
};

/*
 * caller_view_make — fill *v for principal `who` (a session's, a key's);
 * `res` the key's resources or NULL. v borrows who's strings.
 */
void caller_view_make(struct caller_view *v, const struct tier_principal *who,
		      const struct apires_set *res);

/*
 * caller_serve_begin — plugin p starts serving a request of `who`, whose
 * view is `tag`: the kernel checks `action` (NULL: none) at who's own
 * scope, then p acts as who (plug_act_begin) until caller_serve_end.
 * Returns 0, or LINLI_EPERM / LINLI_ENOENT with err (nothing begun).
 */
int caller_serve_begin(struct plugin *p, const struct tier_principal *who, const void *tag,
		       const char *action, struct plug_acting *saved, char *err, size_t errlen);
void caller_serve_end(struct plugin *p, const struct plug_acting *saved);

/*
 * caller_action_check — may `who` take p's action `action` on `scope`
 * (NULL: who's own)? tier_check_action; a denial is audited under the
 * caller and logged under p. 0, LINLI_EPERM, LINLI_ENOENT (not declared),
 * LINLI_EINVAL (bad scope), with err.
 */
int caller_action_check(struct plugin *p, const struct tier_principal *who, const char *action,
			const char *scope, char *err, size_t errlen);

/* Declare p's action (the member action_declare): 0 or a code with err. */
int caller_action_declare(struct plugin *p, const char *name, const char *min_role,
			  const char *level, const char *duty, const char *summary, char *err,
			  size_t errlen);
/* Has p declared action `name`? */
bool caller_action_exists(struct plugin *p, const char *name);

/*
 * caller_duty_holders — pack the holders of `duty` within `scope` (NULL:
 * p's default scope, the caller's while it serves one), checked like p's
 * reads: the scope within p's jurisdiction (and the caller's). 0 or a code
 * with err.
 */
int caller_duty_holders(struct plugin *p, const char *duty, const char *scope,
			msgpack_packer *pk, char *err, size_t errlen);

/* The members of the C table. */
/*
 * caller_audit — file a decision of plugin p in the audit log (the SDK's
 * audit member, linli.audit): under its caller (via plugin:NAME) while it
 * serves one, else under the plugin; at `scope` (NULL: the caller's or the
 * plugin's), which must lie in both jurisdictions. LINLI_EINVAL (action not
 * "<plugin>.WORD", result none of allowed/denied/failed, text too long, bad
 * scope), LINLI_EPERM (scope outside), with err saying which.
 */
#define CALLER_AUDIT_TEXT_MAX 512
int caller_audit(struct plugin *p, const char *action, const char *scope, const char *object,
		 const char *result, const char *detail, char *err, size_t errlen);
int caller_api_audit(linli_ctx *ctx, const char *action, const char *scope, const char *object,
		     const char *result, const char *detail);

int caller_api_action_declare(linli_ctx *ctx, const char *name, const char *min_role,
			      const char *level, const char *duty, const char *summary);
int caller_api_may(linli_ctx *ctx, const struct linli_caller *caller, const char *action,
		   const char *scope, char *err, size_t errlen);
int caller_api_duty_holders(linli_ctx *ctx, const char *duty, const char *scope,
			    linli_record **out);

#endif
