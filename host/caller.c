/*
 * caller — see caller.h.
 *
 * An action is a tracked resource of its plugin (kind "action"), so a
 * failed init, a disable, a reload or a fault removes it with the rest. A
 * caller handed to a C handler is identified by its address: caller_may
 * takes only the caller of the request the plugin serves at that moment, so
 * a pointer kept past its handler is refused, never followed.
 */
#include "caller.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "kernel.h"
#include "linli/error.h"
#include "log.h"
#include "record.h"
#include "scope.h"
#include "tier_store.h"

static const char *kind_word(enum principal_kind k)
{
	return k == PRINCIPAL_PERSON	? "person"
	       : k == PRINCIPAL_MACHINE ? "machine"
	       : k == PRINCIPAL_KERNEL	? "kernel"
	       : k == PRINCIPAL_RULE	? "rule"
					: "plugin";
}

void caller_view_make(struct caller_view *v, const struct tier_principal *who,
		      const struct apires_set *res)
{
	memset(v, 0, sizeof *v);
	enum tier_level lvl = (enum tier_level)scope_depth(who->scope ? who->scope : "");
	v->no_list[0] = NULL;
	v->pub = (struct linli_caller){
	    .size = sizeof(struct linli_caller),
	    .kind = kind_word(who->kind),
	    .name = who->name ? who->name : "",
	    .role = who->role != ROLE_NONE ? tier_role_name(who->role) : "",
	    .scope = who->scope ? who->scope : "",
	    .level = tier_level_name(lvl) ? tier_level_name(lvl) : "",
	    .grants = who->grants ? who->grants : v->no_list,
	    .duties = who->duties ? who->duties : v->no_list,
	    .resources = NULL,
	};
	if (res) {
		int n = 0;
		for (int i = 0; i < res->n && i < APIRES_MAX; i++)
			if (apires_format_one(&res->v[i], v->res_text[n], sizeof v->res_text[n]) <
			    (int)sizeof v->res_text[n])
				v->resources[n] = v->res_text[n], n++;
		v->resources[n] = NULL;
		v->pub.resources = v->resources;
	}
}

/* ---- actions ---- */

struct paction {
	struct plugin *p;
	struct plug_res *res;
	char name[CALLER_ACTION_MAX + 1];
	char duty[64];
	char summary[160];
	struct tier_plugin_action a;
};

static void paction_release(void *arg)
{
	free(arg);
}

static void paction_describe(void *arg, char *buf, size_t len)
{
	const struct paction *x = arg;
	snprintf(buf, len, "%s: %s or above%s%s%s%s%s%s%s", x->name, tier_role_name(x->a.min_role),
		 x->a.max_depth ? ", at " : "",
		 x->a.max_depth ? tier_level_name(x->a.max_depth) : "",
		 x->a.max_depth ? " level or above" : "", x->duty[0] ? ", duty " : "", x->duty,
		 x->summary[0] ? ": " : "", x->summary);
}

static const struct plug_res_ops paction_ops = {
    .kind = "action", .release = paction_release, .describe = paction_describe};

static bool paction_match(void *arg, const void *key)
{
	return strcmp(((struct paction *)arg)->name, key) == 0;
}

static struct paction *find_action(struct plugin *p, const char *name)
{
	return plug_find_res(p, &paction_ops, paction_match, name, NULL);
}

bool caller_action_exists(struct plugin *p, const char *name)
{
	return name && find_action(p, name) != NULL;
}

static bool action_name_ok(const struct plugin *p, const char *name)
{
	const char *pn = plug_name(p);
	size_t n = strlen(pn), len = strlen(name);
	if (len > CALLER_ACTION_MAX || strncmp(name, pn, n) != 0 || name[n] != '.' ||
	    name[n + 1] < 'a' || name[n + 1] > 'z')
		return false;
	for (const char *c = name + n + 1; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' ||
		      *c == '-'))
			return false;
	return true;
}

int caller_action_declare(struct plugin *p, const char *name, const char *min_role,
			  const char *level, const char *duty, const char *summary, char *err,
			  size_t errlen)
{
	if (!name || !action_name_ok(p, name)) {
		snprintf(err, errlen,
			 "action '%.80s': a name '%s.WORD' (WORD of a-z, 0-9, _ and -), at most "
			 "%d bytes",
			 name ? name : "(null)", plug_name(p), CALLER_ACTION_MAX);
		return LINLI_EINVAL;
	}
	enum tier_role role = min_role ? tier_role_parse(min_role) : ROLE_NONE;
	if (role == ROLE_NONE) {
		snprintf(err, errlen,
			 "action %s: least role '%.40s' is none of viewer, auditor, grid_worker, "
			 "operator, admin",
			 name, min_role ? min_role : "(null)");
		return LINLI_EINVAL;
	}
	enum tier_level lvl = level ? tier_level_parse(level) : TIER_NONE;
	if (level && lvl == TIER_NONE) {
		snprintf(err, errlen,
			 "action %s: level '%.40s' is none of city, district, street, community, "
			 "grid",
			 name, level);
		return LINLI_EINVAL;
	}
	if (duty && !tier_duty_ok(duty)) {
		snprintf(err, errlen,
			 "action %s: duty '%.70s' is not a word of a-z, 0-9 and _ with at most one "
			 "'.' (e.g. grid.dispatcher)",
			 name, duty);
		return LINLI_EINVAL;
	}
	if (find_action(p, name)) {
		snprintf(err, errlen, "action %s is declared already", name);
		return LINLI_EEXIST;
	}
	struct paction *x = calloc(1, sizeof *x);
	if (!x) {
		snprintf(err, errlen, "out of memory");
		return LINLI_ENOMEM;
	}
	x->p = p;
	snprintf(x->name, sizeof x->name, "%s", name);
	snprintf(x->duty, sizeof x->duty, "%s", duty ? duty : "");
	snprintf(x->summary, sizeof x->summary, "%s", summary ? summary : "");
	x->a = (struct tier_plugin_action){x->name, role, lvl, x->duty[0] ? x->duty : NULL};
	if (!(x->res = plug_track(p, &paction_ops, x))) {
		free(x);
		snprintf(err, errlen, "out of memory");
		return LINLI_ENOMEM;
	}
	return 0;
}

int caller_action_check(struct plugin *p, const struct tier_principal *who, const char *action,
			const char *scope, char *err, size_t errlen)
{
	struct kernel *k = plug_kernel(p);
	struct paction *x = action ? find_action(p, action) : NULL;
	if (!x) {
		snprintf(err, errlen, "plugin %s declares no action '%.80s'", plug_name(p),
			 action ? action : "(null)");
		return LINLI_ENOENT;
	}
	const char *s = scope ? scope : who->scope;
	char why[512];
	if (!scope_check(s, why, sizeof why)) {
		snprintf(err, errlen, "%s: bad scope '%.64s': %s", action, s, why);
		return LINLI_EINVAL;
	}
	int rc = tier_check_action(who, &x->a, s, why, sizeof why);
	if (rc) {
		snprintf(err, errlen, "%s: %s", action, why);
		tiers_audit(k, who, action, who->scope, s, "denied", why);
		log_info(plug_name(p), "refused %s to '%s' on %s: %s", action, who->name, s, why);
	}
	return rc;
}

int caller_serve_begin(struct plugin *p, const struct tier_principal *who, const void *tag,
		       const char *action, struct plug_acting *saved, char *err, size_t errlen)
{
	if (who && action) {
		int rc = caller_action_check(p, who, action, NULL, err, errlen);
		if (rc)
			return rc;
	}
	return plug_act_begin(p, who, tag, saved, err, errlen);
}

void caller_serve_end(struct plugin *p, const struct plug_acting *saved)
{
	plug_act_end(p, saved);
}

/*
 * The scope a plugin's call names (NULL: where it acts now — the caller's
 * jurisdiction while it serves one, else its own) into *out, refused unless
 * valid and within the plugin's jurisdiction, narrowed to the caller's while
 * it serves one; *who gets the plugin's principal (grants: its array).
 */
static int reach_scope(struct plugin *p, const char *what, const char *scope,
		       struct tier_principal *who, const char **grants, const char **out,
		       char *err, size_t errlen)
{
	plug_principal(p, who, grants);
	const char *s = scope ? scope : who->scope;
	char why[256];
	if (!scope_check(s, why, sizeof why)) {
		snprintf(err, errlen, "%s: bad scope '%.64s': %s", what, s, why);
		return LINLI_EINVAL;
	}
	if (!scope_within(who->scope, s) ||
	    (who->on_behalf && !scope_within(who->on_behalf->scope, s))) {
		snprintf(err, errlen, "%s: scope %s is outside %s (%s)", what, s,
			 who->on_behalf ? "the caller's jurisdiction" : "the plugin's jurisdiction",
			 who->on_behalf ? who->on_behalf->scope : who->scope);
		return LINLI_EPERM;
	}
	*out = s;
	return 0;
}

int caller_audit(struct plugin *p, const char *action, const char *scope, const char *object,
		 const char *result, const char *detail, char *err, size_t errlen)
{
	if (!action || !action_name_ok(p, action)) {
		snprintf(err, errlen,
			 "audit: action '%.80s': a name '%s.WORD' (WORD of a-z, 0-9, _ and -), at "
			 "most %d bytes",
			 action ? action : "(null)", plug_name(p), CALLER_ACTION_MAX);
		return LINLI_EINVAL;
	}
	if (!result || (strcmp(result, "allowed") != 0 && strcmp(result, "denied") != 0 &&
			strcmp(result, "failed") != 0)) {
		snprintf(err, errlen, "audit: result '%.40s' is none of allowed, denied, failed",
			 result ? result : "(null)");
		return LINLI_EINVAL;
	}
	if ((object && strlen(object) > CALLER_AUDIT_TEXT_MAX) ||
	    (detail && strlen(detail) > CALLER_AUDIT_TEXT_MAX)) {
		snprintf(err, errlen, "audit: object or detail longer than %d bytes",
			 CALLER_AUDIT_TEXT_MAX);
		return LINLI_EINVAL;
	}
	const char *grants[LINLI_MAX_CAPS + 1], *s;
	struct tier_principal who;
	int rc = reach_scope(p, "audit", scope, &who, grants, &s, err, errlen);
	if (rc)
		return rc;
	/* Filed under the caller with via plugin:NAME while serving one (tiers_audit). */
	tiers_audit(plug_kernel(p), &who, action, s, object, result, detail);
	return 0;
}

int caller_duty_holders(struct plugin *p, const char *duty, const char *scope, msgpack_packer *pk,
			char *err, size_t errlen)
{
	if (!duty || !tier_duty_ok(duty)) {
		snprintf(err, errlen, "duty_holders: bad duty '%.70s'", duty ? duty : "(null)");
		return LINLI_EINVAL;
	}
	const char *grants[LINLI_MAX_CAPS + 1], *s;
	struct tier_principal who;
	int rc = reach_scope(p, "duty_holders", scope, &who, grants, &s, err, errlen);
	return rc ? rc : tiers_duty_holders(plug_kernel(p), duty, s, pk, err, errlen);
}

/* ---- the members of the C table ---- */

int caller_api_action_declare(linli_ctx *ctx, const char *name, const char *min_role,
			      const char *level, const char *duty, const char *summary)
{
	struct plugin *p = plug_from_ctx(ctx);
	char err[256];
	int rc = caller_action_declare(p, name, min_role, level, duty, summary, err, sizeof err);
	if (rc)
		log_warn(plug_name(p), "action_declare: %s", err);
	return rc;
}

int caller_api_audit(linli_ctx *ctx, const char *action, const char *scope, const char *object,
		     const char *result, const char *detail)
{
	struct plugin *p = plug_from_ctx(ctx);
	char err[256];
	int rc = caller_audit(p, action, scope, object, result, detail, err, sizeof err);
	if (rc)
		log_warn(plug_name(p), "%s", err);
	return rc;
}

int caller_api_may(linli_ctx *ctx, const struct linli_caller *caller, const char *action,
		   const char *scope, char *err, size_t errlen)
{
	struct plugin *p = plug_from_ctx(ctx);
	char buf[512];
	if (!err || !errlen)
		err = buf, errlen = sizeof buf;
	err[0] = '\0';
	const void *tag = NULL;
	const struct tier_principal *who = plug_acting(p, &tag);
	if (!caller || !action) {
		snprintf(err, errlen, "caller_may: NULL %s", caller ? "action" : "caller");
		return LINLI_EINVAL;
	}
	if (!who || tag != caller) {
		snprintf(err, errlen,
			 "caller_may: not the caller of the request being served (a caller is "
			 "valid only while its handler runs)");
		return LINLI_ESTATE;
	}
	return caller_action_check(p, who, action, scope, err, errlen);
}

int caller_api_duty_holders(linli_ctx *ctx, const char *duty, const char *scope, linli_record **out)
{
	struct plugin *p = plug_from_ctx(ctx);
	if (!out)
		return LINLI_EINVAL;
	*out = NULL;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	char err[512];
	int rc = caller_duty_holders(p, duty, scope, &pk, err, sizeof err);
	if (rc)
		log_warn(plug_name(p), "%s", err);
	else
		rc = record_from_bytes(sb.data, sb.size, out, err, sizeof err);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}
