/*
 * script_api — the `linli.*` Lua API: the SDK function table's members for
 * scripts, name for name (sdk/lua-api.md documents each), with the same checks.
 *
 * Owns the binder that fills every script state's `linli` table, the binding
 * context of each running script — who it acts as: a script plugin's
 * registry entry (host/plugin.c), or a rule with the capabilities it declared
 * — and the resources a script makes through the API (subscriptions, timers,
 * console commands, device commands, commit waiters) with their trampolines. Every permission
 * check is the C table's: plug_authorize for a script plugin, access_check
 * with the rule as principal for a rule; both end in access_check (access.h),
 * hence tier_check.
 * The store's functions go through store_api.c's *_as calls with the script
 * as the actor, so its checks, masking and audit are the C members' own; a
 * scan's rows are charged to the script's instruction budget, and a
 * store_on_commit waiting for the batch's end is one of the script's
 * resources. The device functions, plugin_config and device_classes go
 * through hal_api.c's *_as calls alike; a device command waiting for its
 * answer is one of the script's resources.
 *
 * Must never let a resource outlive its script: each is released when the
 * script is stopped, replaced or faulted (a script plugin's are tracked on
 * its plugin entry with plug_track, so `plugins info` lists them). Must never
 * call into a script that is running: an event for a script that is busy (it
 * published to its own subscription) is queued with kernel_post. A script
 * that is not attached (still loading, or a `rules check` state) may only
 * log and ask its name, scope and the time.
 *
 * Kernel thread only.
 */
#ifndef LINLI_SCRIPT_API_H
#define LINLI_SCRIPT_API_H

#include <stddef.h>

struct kernel;
struct plugin;
struct script;

/* Install the binder for kernel k (script_set_binder). Once, before any script loads. */
void script_api_init(struct kernel *k);

/*
 * script_api_attach — let the loaded script s act through `linli.*`: as
 * script plugin p (checks by plug_authorize, resources tracked on p, a fault
 * reported with plug_fault), or, with p NULL, as the rule s declares
 * (principal: the rule, its scope the node's, its grants the rule's
 * `capabilities`; resources kept here and released by detach or a fault).
 * Returns 0 or LINLI_ENOMEM.
 */
int script_api_attach(struct kernel *k, struct script *s, struct plugin *p);

/*
 * script_api_detach — release everything s made through `linli.*` and forget
 * its context. Call before script_free; a no-op for a script never attached.
 */
void script_api_detach(struct script *s);

/*
 * script_api_rule_on — subscribe attached rule s to its own `on` pattern within
 * the node's scope (each event runs when/run through the sandbox). The rule's
 * declaration is its leave to hear `on`: no capability is needed for it. The
 * subscription is one of the rule's resources. 0 or LINLI_E* with err.
 */
int script_api_rule_on(struct script *s, char *err, size_t errlen);

#endif
