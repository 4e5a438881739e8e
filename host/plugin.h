/*
 * plugin — the plugin loader and the registry of plugin instances, of both
 * kinds: `.so` plugins and Lua script plugins.
 *
 * Owns: scanning plugin_dirs (`*.so`) and <script_dir>/apps (`*.lua`),
 * reading each `.so` file's metadata block straight from its ELF section (no
 * code of the file runs until every check passed) and each script's manifest
 * (`plugin { ... }`, read by running its top-level chunk in the sandbox),
 * refusing bad files with one log line and a status the console shows,
 * ordering by `requires` across both kinds, init/fini, enable/disable (kept
 * across restarts in <data_dir>/plugins.disabled), reload and install, the
 * `plugins ...` console commands, and the tracking of every resource a
 * plugin makes. Must never dlopen a file before its metadata passed, never
 * leave a resource of a failed, faulted, disabled or unloaded plugin behind,
 * and never let one plugin's failure stop the daemon or the others.
 *
 * A script plugin is the same kind of entry: its manifest fills the same
 * metadata block, so requirements, cycles, duplicates, states and commands
 * work alike; init/fini are its Lua functions, run through script_call, and
 * its `linli.*` calls come through script_api.c. A script that breaks a limit
 * is faulted (plug_fault): everything it made is released at once and it
 * stays listed as `faulted` until an admin enables or reloads it.
 *
 * Each running instance is loaded from a private copy of its file (a sealed
 * memfd, opened as /proc/<pid>/fd/<n>): the file in the plugin dir can then be
 * replaced at any time (the copy is what was checked and what runs), and a
 * reload can load the new version while the old one still runs.
 *
 * ---- Resource tracking: how a subsystem makes its plugin-facing calls safe ----
 *
 * Anything a plugin creates through the function table that outlives the
 * call (a command, a timer; later a bus subscription, a store handle, a
 * device) must be tracked, so that a failed init, a disable, a reload and an
 * unload remove it — after which the plugin's code is unmapped and a
 * forgotten callback would crash the daemon. In the table function:
 *
 *     struct plugin *p = plug_from_ctx(ctx);
 *     struct sub *s = ...create it...;
 *     s->res = plug_track(p, &sub_res_ops, s);     // NULL: out of memory, undo
 *
 * with `static const struct plug_res_ops sub_res_ops = {.kind = "subscription",
 * .release = sub_release, .describe = sub_describe};` where sub_release(arg) undoes and frees it.
 * When the plugin itself removes it (api->..._cancel), call
 * plug_release(p, s->res) (runs release) or plug_untrack(p, s->res) (forget
 * only, when you free it yourself). Resources are released newest first.
 * A resource that names something unique (a command word, a device id) and
 * would clash with the new instance during a reload gives suspend/resume:
 * the kernel withdraws the old instance's ones while the new one's init
 * runs, and puts them back if that init fails. release must work on a
 * suspended resource too.
 */
#ifndef LINLI_PLUGIN_KERNEL_H
#define LINLI_PLUGIN_KERNEL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "linli/plugin.h"
#include "tier.h"

struct kernel;
struct plugin;
struct plug_registry;

enum plug_state {
	PLUG_REFUSED,  /* failed a check before loading: none of its code ran */
	PLUG_DISABLED, /* disabled by an admin (kept across restarts) */
	PLUG_BLOCKED,  /* a required plugin is not running */
	PLUG_FAILED,   /* loading or init failed; nothing of it remains */
	PLUG_RUNNING,
	PLUG_FAULTED,  /* a script plugin stopped for breaking a limit; nothing it made remains */
	PLUG_QUARANTINED, /* linlid died PLUG_QUARANTINE_DEATHS times while its code ran */
};

/*
 * Crash-loop quarantine: linlid's deaths while a plugin's code ran (the
 * record of watchdog.h, read at the next start) are counted per plugin in
 * <data_dir>/plugins.deaths; at this many the plugin is not started
 * (PLUG_QUARANTINED) until an admin enables it, which clears its count.
 * Below systemd's default start limit (5 starts in 10 s), so that a plugin
 * that kills linlid at every start is set aside before systemd gives up on
 * the node.
 */
#define PLUG_QUARANTINE_DEATHS 3

const char *plug_state_name(enum plug_state s);

struct plug_res_ops {
	const char *kind;		/* "command", "timer", ... for `plugins info` */
	void (*release)(void *arg);	/* undo and free; required */
	int (*suspend)(void *arg);	/* optional, see above; 0 or LINLI_E* */
	int (*resume)(void *arg);	/* optional; 0 or LINLI_E* */
	/* optional: a few words for `plugins info`, e.g. the command's name */
	void (*describe)(void *arg, char *buf, size_t len);
	/*
	 * optional: called before the plugin's fini while its code and state
	 * are intact (e.g. close a driver's devices through its ops), newest
	 * first. release still follows, after fini.
	 */
	void (*quiesce)(void *arg);
};

struct plug_res; /* one tracked resource */

/* Track `arg` for plugin p. Returns the handle, or NULL when out of memory. */
struct plug_res *plug_track(struct plugin *p, const struct plug_res_ops *ops, void *arg);
/* Forget r without releasing it (its owner freed it). NULL is a no-op. */
void plug_untrack(struct plugin *p, struct plug_res *r);
/* Release r now (ops->release) and forget it. NULL is a no-op. */
void plug_release(struct plugin *p, struct plug_res *r);
/* Find a tracked resource of p by ops and a predicate on its arg; NULL if none. */
void *plug_find_res(struct plugin *p, const struct plug_res_ops *ops,
		    bool (*match)(void *arg, const void *key), const void *key,
		    struct plug_res **res);

/* The instance behind a context handed to a plugin, and back. */
struct plugin *plug_from_ctx(linli_ctx *ctx);
linli_ctx *plug_ctx(struct plugin *p);
struct kernel *plug_kernel(const struct plugin *p);
const char *plug_name(const struct plugin *p);
void *plug_userdata(const struct plugin *p);
void plug_set_userdata(struct plugin *p, void *ud);
/* The words `plugins info` shows for a timer of C or Lua: "timer 7, every 500 ms". */
void plug_describe_timer(char *buf, size_t len, uint64_t id, uint64_t interval_ms);
/* Record the reason shown when init fails (outside init: logged only). */
void plug_set_error(struct plugin *p, const char *msg);

/* Per-plugin state of the store members of the table (store_api.c). */
struct plug_store_state {
	char last_error[768]; /* message of the latest store call if it failed, else "" */
	int in_update;	      /* > 0 while one of the plugin's update callbacks runs */
};
struct plug_store_state *plug_store_state(struct plugin *p);

/*
 * plug_fault — a running script plugin broke a limit: release everything it
 * made (also from inside one of its own handlers: releases are safe there),
 * and list it as faulted with `why` until it is enabled or reloaded. Its
 * script state is kept for `plugins info`. A no-op unless p is running (and
 * not in its fini).
 */
void plug_fault(struct plugin *p, const char *why);

/*
 * ---- Kinds of plugin ----
 *
 * The registry knows no kind: a kind (plugin_so.c for `.so` files,
 * plugin_lua.c for Lua scripts) gives its ops with plug_kind_add before
 * plug_load_all (and before plug_find_declared), as drivers do with the HAL.
 * The registry checks and orders what the kind read, and calls start, fini
 * and unload at the right times; it releases every tracked resource itself.
 */
struct cfg;
struct cmd_call;
struct msgpack_packer;
struct plug_kind {
	const char *name;   /* "so", "lua": `plugins info`'s kind */
	const char *suffix; /* its files end so: ".so", ".lua" */
	/* the dirs its files are in (rule: of rules, not plugins); *optional: a missing one is normal */
	int (*dirs)(const struct cfg *c, bool rule, char (*out)[PATH_MAX], int max, bool *optional);
	/* where `plugins install` puts one (made if need be): 0 or LINLI_E* with err */
	int (*install_dir)(const struct cfg *c, char *dir, size_t len, char *err, size_t errlen);
	/*
	 * read — read and check file plug_path(p) on its own: fill *meta (name,
	 * version, family, requires, capabilities ...) and keep what start needs
	 * as its state (plug_set_kind_state, also on failure). 0 or LINLI_E*
	 * with why. Runs none of the plugin's code that could act.
	 */
	int (*read)(struct plugin *p, struct linli_plugin_meta *meta, char *why, size_t whylen);
	/* with no registry (linlid --grant): does file `path` declare `name`? fills caps; 1 or 0 */
	int (*declares)(const struct cfg *c, const char *path, bool rule, const char *name,
			char (*caps)[LINLI_CAP_MAX], int max, int *n);
	/* the bytes read checked, for `plugins install` to write */
	const void *(*bytes)(const struct plugin *p, size_t *len);
	bool run_installed; /* after install, read the installed file again and run that */
	/*
	 * start — load what read checked and run init (plug_init_begin/end
	 * around it). 0, or LINLI_E* with why: the registry then releases what
	 * init made and calls unload.
	 */
	int (*start)(struct plugin *p, char *why, size_t whylen);
	void (*fini)(struct plugin *p);	  /* run the plugin's fini, if it has one; may be NULL */
	void (*unload)(struct plugin *p); /* free its state, loaded or only read; required */
	const char *(*loaded_from)(const struct plugin *p); /* may be NULL */
	/* the scope a fault concerns (whose accounts may read its reason); may be NULL */
	const char *(*fault_scope)(const struct plugin *p);
	/* pack one value for `plugins info`'s "script" (may be NULL: nil) */
	void (*pack_info)(const struct plugin *p, const struct cmd_call *call,
			  struct msgpack_packer *pk);
};

/* Add a kind (process-wide): 0, LINLI_EEXIST (its suffix is taken), LINLI_EINVAL. */
int plug_kind_add(const struct plug_kind *kind);

/* What a kind reads and writes of an entry. */
const char *plug_path(const struct plugin *p);
const struct linli_plugin_meta *plug_meta(const struct plugin *p);
void *plug_kind_state(const struct plugin *p);
void plug_set_kind_state(struct plugin *p, void *state);
uint64_t plug_next_gen(struct plugin *p); /* a number for the private copy's label */
/* Around the plugin's init: api->set_error's message is kept; end returns it ("" if none). */
void plug_init_begin(struct plugin *p);
const char *plug_init_end(struct plugin *p);

/*
 * plug_open — create k->plugins, clear stale private copies, read the
 * disabled list, and register the `plugins` commands. 0 or LINLI_E* with err.
 */
int plug_open(struct kernel *k, char *err, size_t errlen);
/*
 * plug_load_all — scan cfg.plugin_dirs, check, order and initialise every
 * plugin. Refusals and failures are logged and listed; never fails the
 * daemon. Returns the number of running plugins.
 */
int plug_load_all(struct kernel *k);
/* plug_close — fini every running plugin in reverse init order, free all. */
void plug_close(struct kernel *k);

/*
 * plug_read_meta — find and check the metadata block of an ELF shared object
 * held in buf (len bytes), copying it to *out. Returns 0, or a LINLI_E* code
 * with the reason in err (LINLI_EINVAL not ELF / not a shared object / no
 * descriptor, LINLI_ECORRUPT malformed, LINLI_EVERSION wrong SDK version or
 * size). Exposed for the unit test and the benchmark.
 */
int plug_read_meta(const void *buf, size_t len, struct linli_plugin_meta *out, char *err,
		   size_t errlen);
/* plug_check_meta — the field checks (name, family, strings, lists). */
int plug_check_meta(const struct linli_plugin_meta *m, char *err, size_t errlen);

/*
 * plug_authorize — may plugin p take `act` on jurisdiction `scope`, touching
 * `object` (a dataset, topic or pattern, device class)? access_check (the
 * tier check, denials logged) with the plugin as principal: its jurisdiction
 * is plug_scope_now (its scope, narrowed while it acts for a caller), its
 * grants the capabilities it declared. Returns 0
 * or LINLI_EPERM with the reason in err. Every table function that reaches
 * data calls this, and so does every linli.* function of a script plugin.
 */
int plug_authorize(struct plugin *p, enum tier_action act, const char *scope, const char *object,
		   char *err, size_t errlen);

/*
 * plug_principal — plugin p as the permission model sees it (for
 * tier_sees_sensitive, tiers_audit): fills *who, whose grants point into
 * `grants` (LINLI_MAX_CAPS + 1 slots) and into p; valid while p runs.
 */
void plug_principal(struct plugin *p, struct tier_principal *who, const char **grants);
/*
 * Acting as the caller. While one of p's handlers serves a request (a
 * console command, an HTTP route), p acts for `caller`: plug_principal
 * gives p's principal with on_behalf = caller and, as its scope, the
 * narrower of p's scope (plug_scope) and the caller's, so every check, mask
 * and audit entry of a call p makes meanwhile (store, bus, devices, in C
 * and Lua) is the intersection of both, filed under the caller (tier.h):
 * a caller above a scoped plugin is narrowed to the plugin's subtree.
 * `tag` identifies the request's struct linli_caller for caller_may.
 * plug_act_begin saves what was there (nesting) into *saved; it refuses a
 * caller with no jurisdiction in p's scope (a sibling subtree of a scoped
 * plugin's, or outside the node: LINLI_EPERM, err naming both). A NULL
 * caller keeps p acting for itself. plug_act_end restores.
 */
struct plug_acting {
	const struct tier_principal *who;
	const void *tag;
	char scope[SCOPE_MAX + 1];
};
int plug_act_begin(struct plugin *p, const struct tier_principal *caller, const void *tag,
		   struct plug_acting *saved, char *err, size_t errlen);
void plug_act_end(struct plugin *p, const struct plug_acting *saved);
/*
 * plug_scope — where p acts: the subtree it was installed for (`plugins
 * install ... --scope PATH`, kept across restarts, upgrades and rollbacks),
 * else the node's path. Its principal's jurisdiction, the scope its
 * subscriptions and served topics take and what api->plugin_scope answers:
 * every use of "the plugin's scope" goes through here.
 */
const char *plug_scope(const struct plugin *p);
/* The default scope of p's calls now: plug_scope, or the narrowed one while it acts for a caller. */
const char *plug_scope_now(const struct plugin *p);
/* The caller p serves now (and its tag), or NULL when p acts for itself. */
const struct tier_principal *plug_acting(const struct plugin *p, const void **tag);

/* Does plugin p hold a granted capability covering `cap` (e.g. "hal.driver:sim")? */
bool plug_has_cap(const struct plugin *p, const char *cap);

/*
 * plug_find_declared — with no registry (linlid --grant NAME --all, daemon
 * stopped): the capabilities that the plugin (or, with `rule`, the rule)
 * named `name` in c's plugin_dirs / script_dirs declares, copied to caps.
 * Returns their count, or LINLI_ENOENT with err when no file declares it.
 */
struct cfg;
int plug_find_declared(const struct cfg *c, bool rule, const char *name,
		       char (*caps)[LINLI_CAP_MAX], int max, char *err, size_t errlen);

/* Number of running plugins (also kept in k->plugin_count). */
int plug_running(const struct kernel *k);

/* Visit every plugin the registry knows, in scan order (kernel thread). */
typedef void (*plug_visit_fn)(const char *name, enum plug_state st, const char *reason, void *ud);
void plug_each(const struct kernel *k, plug_visit_fn fn, void *ud);

#endif
