/*
 * tier — the permission model's rules: roles, actions, the one check, masking.
 *
 * "One level one permission, one machine one account, one person one
 * password." Owns the fixed table of what each role may do at each tier
 * level, the single decision function every path (console, HTTP, bus, C
 * plugin, Lua) calls, the masking of sensitive fields, the password policy and
 * Argon2id hashing. Holds no state of its own: accounts, sessions and the
 * audit log live in the store (tier_store.c). Never logs a password or token.
 */
#ifndef LINLI_TIER_H
#define LINLI_TIER_H

#include <stdbool.h>
#include <stddef.h>

#include "scope.h"

enum tier_role {
	ROLE_NONE = 0,
	ROLE_ADMIN,	  /* manages accounts, plugins, rules of its subtree */
	ROLE_OPERATOR,	  /* runs the node: data, devices, incidents, alarms */
	ROLE_GRID_WORKER, /* one grid: collects data, handles incidents */
	ROLE_AUDITOR,	  /* reads the audit log and data, changes nothing */
	ROLE_VIEWER,	  /* reads data, changes nothing */
	ROLE_COUNT
};

enum tier_action {
	ACT_STATUS = 0,	     /* status, help, whoami */
	ACT_DATA_READ,	     /* get, query, scan */
	ACT_DATA_WRITE,	     /* put, read-modify-write */
	ACT_DATA_DELETE,     /* del */
	ACT_DEVICE_READ,     /* devices list/show/readings */
	ACT_DEVICE_COMMAND,  /* open a door, reset an alarm */
	ACT_DEVICE_MANAGE,   /* devices add/remove */
	ACT_EVENTS_SUBSCRIBE,/* events tail, subscribe */
	ACT_EVENTS_PUBLISH,  /* publish */
	ACT_PLUGIN_MANAGE,   /* plugins install/enable/disable/reload */
	ACT_RULES_MANAGE,    /* rules install/reload/remove */
	ACT_ACCOUNTS_MANAGE, /* accounts add/passwd/disable/grant/revoke */
	ACT_AUDIT_READ,	     /* audit */
	ACT_STORE_ADMIN,     /* store stats/backup, apikeys */
	ACT_COUNT
};

const char *tier_role_name(enum tier_role r);
enum tier_role tier_role_parse(const char *name);
const char *tier_action_name(enum tier_action a);
enum tier_action tier_action_parse(const char *name); /* ACT_COUNT when unknown */

/* May `role` exist at all at `level`? (grid workers only at grids; others not at grids) */
bool tier_role_valid_at(enum tier_role role, enum tier_level level);

/* Does the fixed table let `role`, sitting at `level`, do `act`? (scope aside) */
bool tier_role_allows(enum tier_role role, enum tier_level level, enum tier_action act);

/* A rule (a Lua rule, script_api.c) is checked like a plugin: its grants are its capabilities. */
enum principal_kind {
	PRINCIPAL_PERSON,
	PRINCIPAL_MACHINE,
	PRINCIPAL_PLUGIN,
	PRINCIPAL_KERNEL,
	PRINCIPAL_RULE,
};

#define TIER_MAX_GRANTS 32

/* Who is acting. Strings are borrowed for the duration of a check. */
struct tier_principal {
	enum principal_kind kind;
	const char *name;		/* username, machine id or plugin name */
	const char *scope;		/* node path the principal belongs to */
	enum tier_role role;		/* persons and machines */
	const char *const *grants;	/* NULL-terminated: "sensitive", "sensitive:DATASET",
					   plugin capabilities "store.read:DATASET", ... */
	/*
	 * A plugin or rule acting for a caller (a command or route it serves):
	 * the caller. Then both must be allowed (tier_check), both must hold
	 * the grant to see a field in clear (tier_sees_sensitive), and the
	 * audit files the act under the caller, naming the plugin. NULL: the
	 * principal acts for itself.
	 */
	const struct tier_principal *on_behalf;
	const char *const *duties;	/* NULL-terminated workflow duties of an account, or NULL */
};

/*
 * tier_check — the one decision. May `who` do `act` on `scope` (a node
 * path), touching `object` (a dataset, topic or device class; may be NULL)?
 * Rules, in order: the kernel may do anything; the target scope must lie in
 * the principal's subtree (nothing sideways, nothing upward; the city sees
 * all); persons and machines need the role table's leave at their level;
 * plugins and rules need a granted capability covering the action and object.
 * Returns 0 or LINLI_EPERM with the reason in `why`.
 */
int tier_check(const struct tier_principal *who, enum tier_action act, const char *scope,
	       const char *object, char *why, size_t whylen);

/*
 * A plugin-defined action ("alarms.ack"): the least role a caller needs
 * (roles rank viewer < auditor < grid_worker < operator < admin), the
 * deepest level it may sit at (TIER_STREET: a street, district or city
 * account; TIER_NONE: any), and a workflow duty it must hold (NULL: none;
 * an admin needs none).
 */
struct tier_plugin_action {
	const char *name;
	enum tier_role min_role;
	enum tier_level max_depth;
	const char *duty;
};

/* The rank of a role for plugin actions (0 for ROLE_NONE). */
int tier_role_rank(enum tier_role r);

/*
 * tier_check_action — may `who` (a person or machine; a plugin or rule
 * acting for one is checked as that caller) take plugin action `a` on
 * `scope`? The target must lie in the caller's subtree, the caller's role
 * rank at least a->min_role's, its level no deeper than a->max_depth, and
 * it must hold a->duty unless it is an admin. The kernel passes. 0 or
 * LINLI_EPERM with the reason in `why`.
 */
int tier_check_action(const struct tier_principal *who, const struct tier_plugin_action *a,
		      const char *scope, char *why, size_t whylen);

/* Does `who` hold workflow duty `duty`? */
bool tier_has_duty(const struct tier_principal *who, const char *duty);

/* Is `d` a well-formed duty name ([a-z][a-z0-9_]* with at most one '.', <= 63 bytes)? */
bool tier_duty_ok(const char *d);

/* Does `who` hold the grant to read `dataset`'s sensitive fields unmasked? */
bool tier_sees_sensitive(const struct tier_principal *who, const char *dataset);

/*
 * tier_cap_check — is `cap` a well-formed capability an admin may grant?
 * "KIND" or "KIND:ARG" of the kinds store.read, store.write, device.read,
 * device.command (ARG a dataset or class name, or *), bus.publish,
 * bus.subscribe (ARG a topic filter), hal.driver (a driver name), sensitive
 * (a dataset name); net.connect and catalog.read take no ARG. A bare KIND
 * covers every ARG. 0 or LINLI_EINVAL with the reason in `why`.
 */
int tier_cap_check(const char *cap, char *why, size_t whylen);

/* Is capability `cap` ("store.read:incidents") covered by grant `g`? `*` matches a word. */
bool tier_cap_covers(const char *g, const char *cap);

enum mask_kind { MASK_NONE = 0, MASK_ID_NUMBER, MASK_PHONE, MASK_NAME, MASK_ADDRESS, MASK_HEALTH };

enum mask_kind tier_mask_parse(const char *name);
const char *tier_mask_name(enum mask_kind m);

/*
 * tier_mask — write the masked form of UTF-8 `in` (length n) to `out`.
 * id_number 340***********1234, phone 138****5678, name 张**, address keeps
 * its first 6 characters then ****, health ***. Always NUL-terminates.
 */
void tier_mask(enum mask_kind m, const char *in, size_t n, char *out, size_t outlen);

#define TIER_PASSWORD_MIN 10
#define TIER_PASSWORD_MAX 256

/* Password policy: length, not the username, not all one character. */
int tier_password_ok(const char *user, const char *password, char *why, size_t whylen);

/*
 * Argon2id (libsodium crypto_pwhash_str). `out` has TIER_HASH_MAX bytes.
 * strength: TIER_PW_INTERACTIVE (the default: ~64 MiB, tens of ms),
 * TIER_PW_MODERATE, or TIER_PW_MIN (tests only: instant, weak). The hash
 * records its own parameters, so verification needs no strength.
 */
#define TIER_HASH_MAX 128
enum tier_pw_strength { TIER_PW_MIN = 0, TIER_PW_INTERACTIVE, TIER_PW_MODERATE };
int tier_password_hash(const char *password, char out[TIER_HASH_MAX]);
/* memory_mb > 0 replaces the strength's memory limit (accounts.pwhash_memory_mb). */
int tier_password_hash_with(const char *password, enum tier_pw_strength s, int memory_mb,
			    char out[TIER_HASH_MAX]);
bool tier_password_verify(const char *hash, const char *password);

/* A random 256-bit token as 64 hex characters plus NUL. */
void tier_token_new(char out[65]);

#endif
