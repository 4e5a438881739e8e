/*
 * script — the Lua 5.4 runtime: one sandboxed lua_State per script.
 *
 * Owns each script's state and everything that keeps it harmless: an
 * allocator that refuses growth past the script's memory cap, an allow-listed
 * environment (no io, debug, package, require, dofile, loadfile, string.dump,
 * binary chunks, collectgarbage beyond "count"; os only time/date/clock/
 * difftime), read-only library and API tables, an instruction budget per
 * invocation enforced by a count hook that a script's own pcall cannot
 * swallow, and a wall-clock deadline checked by that hook and by the pattern
 * matcher (luastr.c) and every C loop a script can size. A script that breaks
 * a limit is stopped and marked faulted; the host and every other script go on.
 *
 * Also parses and validates the two declaration forms: rules
 * (`rule { name, on, when, run, capabilities }`, scripts/rules/) and script plugins
 * (`plugin { name, version, sdk, family, capabilities, requires, init, fini }`,
 * scripts/apps/), and keeps the registry of rules loaded from script_dirs.
 *
 * Runs on the kernel thread only, except script_interrupt. Never lets Lua
 * code run outside an invocation (script_call), never converts a script's
 * error object with metamethods, and never exposes a host table writable.
 */
#ifndef LINLI_SCRIPT_H
#define LINLI_SCRIPT_H

#include <lua.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "linli/version.h"
#include "scope.h"

struct cfg;

/* The SDK version scripts declare against (`sdk = "1.1"`): the C SDK's, always. */
#define SCRIPT_SDK_MAJOR LINLI_SDK_MAJOR
#define SCRIPT_SDK_MINOR LINLI_SDK_MINOR

#define SCRIPT_NAME_MAX	  64	     /* [a-z][a-z0-9_]*, like every catalog name */
#define SCRIPT_TOPIC_MAX  256	     /* an `on` pattern or a topic */
#define SCRIPT_MAX_SOURCE (1u << 20) /* bytes of one script file */
#define SCRIPT_LOG_MAX	  16	     /* errors kept per script for `rules log` */
#define SCRIPT_HOOK_EVERY 1000	     /* VM instructions between two hook calls */

/* Limits of one script. Zero in an override means "inherit". */
struct script_limits {
	size_t memory;	       /* bytes its lua_State may hold */
	uint64_t instructions; /* per invocation: VM instructions + C work units */
	uint32_t time_ms;      /* wall clock per invocation */
	uint32_t max_errors;   /* consecutive failed invocations before faulted */
};

/* Defaults when the config says nothing (see README, `lua` in linli.cfg). */
#define SCRIPT_DEFAULT_MEMORY	    ((size_t)16 << 20)
#define SCRIPT_DEFAULT_INSTRUCTIONS 10000000u
#define SCRIPT_DEFAULT_TIME_MS	    200u
#define SCRIPT_DEFAULT_MAX_ERRORS   5u
#define SCRIPT_MIN_MEMORY	    ((size_t)256 << 10) /* a state and its libraries need ~60 KiB */

enum script_kind { SCRIPT_ANY, SCRIPT_RULE, SCRIPT_APP };

/*
 * States: READY runs when called; FAULTED was stopped (a limit, or max_errors
 * failures in a row) and is not called again until reloaded; BROKEN never
 * loaded (syntax or declaration error) and has no lua_State.
 */
enum script_state { SCRIPT_READY, SCRIPT_FAULTED, SCRIPT_BROKEN };

/* Why an invocation was stopped. */
enum script_stop {
	SCRIPT_STOP_NONE,
	SCRIPT_STOP_BUDGET,    /* instruction budget exhausted */
	SCRIPT_STOP_TIME,      /* wall-clock limit passed */
	SCRIPT_STOP_INTERRUPT, /* script_interrupt from another thread */
	SCRIPT_STOP_DEPTH,     /* too many events dropped for their cause depth */
};

/*
 * Event storms (issue 14): a script's publish deeper than lua.max_event_depth
 * is dropped and counted; SCRIPT_DEPTH_FAULT_DROPS drops within
 * SCRIPT_DEPTH_WINDOW_MS fault the script. The first drop of a window is
 * logged, the others only counted.
 */
#define SCRIPT_DEFAULT_MAX_EVENT_DEPTH 8u
#define SCRIPT_DEPTH_FAULT_DROPS       16u
#define SCRIPT_DEPTH_WINDOW_MS	       10000u

struct script_logent {
	int64_t time_ms; /* realtime, ms since the epoch */
	bool fault;	 /* this error faulted the script */
	char where[96];	 /* "file:line", or "" when unknown */
	char msg[416];
	char scope[SCOPE_MAX + 1]; /* the event's jurisdiction; "": the node's own work */
};

struct script_stats {
	uint64_t calls, errors, faults;
	uint64_t last_ms, max_ms;	/* duration of the last / longest call (~4 ms resolution) */
	uint64_t last_units, max_units; /* budget used by the last / largest one */
	size_t mem_used, mem_peak;
	uint64_t mem_refused; /* allocations refused by the cap */
	uint64_t depth_drops; /* events it published too deep (lua.max_event_depth), dropped */
	uint64_t delayed;     /* events it got a loop turn late (a flood; bus.h `delayed`) */
};

struct script_capability {
	char *text; /* "store.read:residents", as declared */
};

/* A script plugin's declaration (`plugin { ... }`); strings owned by the script. */
struct script_manifest {
	char *name, *version, *sdk, *family, *description;
	char **requires;
	int n_requires;
	char **capabilities;
	int n_capabilities;
};

/* A rule's declaration (`rule { ... }`); strings owned by the script. */
struct script_ruledecl {
	char *name, *on, *description;
	bool has_when;
	char **capabilities; /* what its run may do through linli.* (its `on` needs none) */
	int n_capabilities;
};

struct script;

/* How to load a script. */
struct script_opts {
	enum script_kind kind;	  /* the declaration required (SCRIPT_ANY: either) */
	const char *scope;	  /* jurisdiction path it acts in (the node's) */
	struct script_limits lim; /* limits until the declaration names the script */
	const struct cfg *cfg;	  /* if set: then lim = script_limits_from_cfg(cfg, name) */
};

/*
 * script_load — create a sandboxed state for the Lua text `src` (len bytes,
 * named `file` in messages), run its top-level chunk under the limits, and
 * validate the declaration it makes. Returns 0 and *out, or a negative
 * LINLI_E* code with "file:line: reason" in err and *out NULL. A
 * declaration's own `limits` may lower the limits, never raise them.
 */
int script_load(const char *file, const char *src, size_t len, const struct script_opts *o,
		struct script **out, char *err, size_t errlen);

/* script_load on the contents of `path` (at most SCRIPT_MAX_SOURCE bytes). */
int script_load_file(const char *path, const struct script_opts *o, struct script **out, char *err,
		     size_t errlen);

void script_free(struct script *s);

/*
 * script_call — one invocation: push the function registry ref `fnref`, let
 * `push` push its arguments (returns their count or a negative LINLI_E*), call
 * it under the budget and deadline, and let `take` read the `nres` results.
 * `push` and `take` run in protected mode: they may raise Lua errors, must not
 * keep pointers into the stack, and must not run Lua code. Returns 0; or
 * LINLI_ESTATE if the script is faulted or broken, LINLI_ELIMIT if a limit
 * stopped it (now faulted), LINLI_ENOMEM, or LINLI_EINVAL for a runtime
 * error; err gets "file:line: message". Every failure lands in the script's
 * log. A script is not re-entrant: a call made while it runs (from a binding
 * it called) gets LINLI_EBUSY and must be queued (kernel_post) instead.
 */
typedef int (*script_push_fn)(lua_State *L, void *ud);
typedef void (*script_take_fn)(lua_State *L, int first, void *ud);
int script_call(struct script *s, int fnref, script_push_fn push, void *ud, int nres,
		script_take_fn take, void *tud, char *err, size_t errlen);

/*
 * script_rule_eval — run a rule for one event: `when(e, topic)`, then if it
 * returned true `run(e, topic)` unless `dry` (then only `when`). `e` is the
 * event payload as a plain table. *matched gets when's verdict; *ran whether
 * run was called. Returns like script_call.
 */
int script_rule_eval(struct script *s, const char *topic, const msgpack_object *event, bool dry,
		     bool *matched, bool *ran, char *err, size_t errlen);

/*
 * script_interrupt — stop the running invocation as soon as possible (or,
 * between calls, the next one); the script is faulted. Safe from any thread.
 */
void script_interrupt(struct script *s);

/* ---- what a script is ---- */
const char *script_name(const struct script *s);
const char *script_file(const struct script *s);
const char *script_scope(const struct script *s);
/* Set where it acts (a script plugin's plug_scope) and its field linli.scope; 0 or LINLI_ENOMEM. */
int script_set_scope(struct script *s, const char *scope);
enum script_kind script_kind(const struct script *s);
enum script_state script_state(const struct script *s);
const char *script_state_name(enum script_state st);
const char *script_fault(const struct script *s); /* why faulted/broken, or "" */
/*
 * script_stop — fault a ready script from outside (e.g. a grant it needs was
 * revoked): its on_fault runs (everything it made is released) and it stays
 * faulted, with `why` in its log, until reloaded. A no-op unless ready.
 */
void script_stop(struct script *s, const char *why);
const struct script_limits *script_limits(const struct script *s);
const struct script_ruledecl *script_rule(const struct script *s);     /* NULL if not a rule */
const struct script_manifest *script_manifest(const struct script *s); /* NULL if no plugin */
void script_stats(const struct script *s, struct script_stats *out);
/* The registry refs of a declaration's handlers ("when", "run", "init", "fini"), or LUA_NOREF. */
int script_handler(const struct script *s, const char *which);
/*
 * script_set_call_scope — the jurisdiction of the event the following
 * invocations serve (NULL or "": none, the node's own work: load, timers,
 * commands). Entries of the error log and a fault made meanwhile carry it,
 * so that listings show them only to callers whose jurisdiction holds it:
 * a message may quote the event. Set it around a call, then clear it.
 */
void script_set_call_scope(struct script *s, const char *scope);
/*
 * script_set_cause_depth — the cause depth of the events the following
 * invocations publish: the handled event's depth + 1 around an event
 * handler, 0 (the default) otherwise. Set it around a call, then reset it.
 */
void script_set_cause_depth(struct script *s, uint32_t depth);
uint32_t script_cause_depth(const struct script *s);
/* Count an event delivered to s a loop turn late (bus_event.delayed). */
void script_count_delayed(struct script *s);
/* The jurisdiction the current fault came from ("": the node's; see above). */
const char *script_fault_scope(const struct script *s);
/* Error log, oldest first; returns the count (<= SCRIPT_LOG_MAX). */
int script_log(const struct script *s, const struct script_logent **out, int max);
/* The script's source text (for `rules show`). */
const char *script_source(const struct script *s, size_t *len);

/* The owner's context pointer (the plugin loader's, for bindings). */
void script_set_user(struct script *s, void *user);
void *script_user(const struct script *s);

/*
 * script_on_fault — call fn(s, ud) once when s becomes faulted (not when a
 * load fails). It runs right after the invocation that faulted returned
 * from Lua, still inside script_call: it may release what the script made
 * (its subscriptions, timers, commands) but must not free s. NULL: none.
 */
typedef void (*script_fault_fn)(struct script *s, void *ud);
void script_on_fault(struct script *s, script_fault_fn fn, void *ud);

/* ---- for bindings (C functions called from a script) ---- */

/*
 * script_depth_drop — the running script's publish on `topic` at cause
 * depth `depth` is deeper than `max` and is dropped: count it, log the
 * first drop of a burst (naming script, topic and depth), and on the
 * SCRIPT_DEPTH_FAULT_DROPS-th drop within SCRIPT_DEPTH_WINDOW_MS stop the
 * invocation (raises: the script faults). Otherwise returns LINLI_ELIMIT
 * with the publish's refusal in err. Call in a Lua C function, holding
 * nothing a Lua error would leak.
 */
int script_depth_drop(lua_State *L, const char *topic, uint32_t depth, uint32_t max, char *err,
		      size_t errlen);

/* The script whose state (or coroutine) `L` is. */
struct script *script_from_lua(lua_State *L);

/*
 * script_charge — add `units` of C work to the running invocation's budget;
 * raises a Lua error (and stops the invocation) if the budget or the
 * deadline is passed or an interrupt is pending. Every C function a script
 * can make loop must call it: a count hook cannot interrupt C code.
 */
void script_charge(lua_State *L, uint64_t units);

/*
 * script_charge_soft — script_charge for C code that must not raise (it holds
 * buffers a Lua error would leak): returns 0, or LINLI_ELIMIT once the
 * invocation is stopped; the stop error is then raised by the script's next
 * VM instruction.
 */
int script_charge_soft(lua_State *L, uint64_t units);

/*
 * script_set_binder — `bind(L, s, ud)` is called for every new state with the
 * `linli` API table on top of the stack; it adds functions and sub-tables.
 * The runtime then makes the whole tree read-only. Set once, before loading.
 */
typedef void (*script_bind_fn)(lua_State *L, struct script *s, void *ud);
void script_set_binder(script_bind_fn bind, void *ud);

/*
 * script_push_mp — push msgpack object `o` as a plain Lua value (maps and
 * arrays become tables, nesting at most 32). Raises a Lua error on an
 * extension type or too deep a nesting; call in protected mode.
 */
void script_push_mp(lua_State *L, const msgpack_object *o);

/*
 * script_pack_to — pack the Lua value at `idx` as msgpack: tables with keys
 * 1..n become arrays, others maps with string or integer keys; functions,
 * coroutines and cycles (a table inside itself) are refused; a table that
 * appears twice is packed twice. Every value visited is charged to the
 * running invocation, and packing stops once more than `max` bytes would be
 * written (a long string is refused before it is copied). Returns 0, or
 * LINLI_ETYPE / LINLI_E2BIG / LINLI_ELIMIT (the invocation was stopped; its
 * next instruction raises) with a message naming the path under `what`
 * ("payload.a[3]: cannot convert a function"). Reads only (no metamethods,
 * no allocation in the state) and never raises: a caller may hold buffers.
 */
int script_pack_to(lua_State *L, int idx, msgpack_packer *pk, const char *what, size_t max,
		   char *err, size_t errlen);

/* The largest value script_pack packs: a bus payload's and a store record's cap. */
#define SCRIPT_PACK_MAX ((size_t)256 << 10)

/* script_pack_to(L, idx, pk, "value", SCRIPT_PACK_MAX, err, errlen). */
int script_pack(lua_State *L, int idx, msgpack_packer *pk, char *err, size_t errlen);

/* Is `p` a valid topic pattern (`+` one level, `#` the last)? why gets the reason. */
bool script_topic_valid(const char *p, bool pattern, char *why, size_t whylen);
/* Does `topic` match pattern `p`? */
bool script_topic_match(const char *p, const char *topic);

/* ---- limits from the configuration ---- */

/* The limits `cfg` sets for the script named `name` (its lua.overrides entry, else lua.*). */
void script_limits_from_cfg(const struct cfg *c, const char *name, struct script_limits *out);

/* ---- the rules of a node (loaded from <script_dir>/rules/NAME.lua) ---- */

struct script_rules;

/*
 * Hooks the bus integration fills: attach is called when a rule becomes
 * ready (subscribe to its `on`), detach before it goes (unsubscribe).
 * Either may be NULL.
 */
struct script_rules_ops {
	/* 0, or a code with the reason in err (e.g. an ungranted capability) */
	int (*attach)(struct script *s, void *ud, char *err, size_t errlen);
	void (*detach)(struct script *s, void *ud);
	void *ud;
};

/* `c` must outlive the set (linlid's k->cfg: replaced in place on SIGHUP). */
struct script_rules *script_rules_new(const struct cfg *c, const struct script_rules_ops *ops);
void script_rules_free(struct script_rules *r);

/*
 * Load every <dir>/rules/NAME.lua file of c->script_dirs, in name order. A file that
 * fails is kept as a BROKEN entry (named by its file) with its error in its
 * log, and the others load. Returns the number of rules that loaded.
 */
int script_rules_load_dirs(struct script_rules *r);

int script_rules_count(const struct script_rules *r);
struct script *script_rules_at(const struct script_rules *r, int i); /* in load order */
struct script *script_rules_find(const struct script_rules *r, const char *name);

/*
 * script_rules_check — validate text (syntax, declaration, limits) in a
 * throwaway state; nothing is installed. Returns 0 or the error.
 */
int script_rules_check(struct script_rules *r, const char *file, const char *src, size_t len,
		       struct script **out, char *err, size_t errlen);
/* (With `out`, the checked script is handed over: script_free it.) */

/*
 * script_rules_install — validate, then write <first script_dir>/rules/NAME.lua
 * and load it, replacing a rule of the same name. On any error nothing
 * changes (the old version keeps running). *name_out gets the rule's name.
 */
int script_rules_install(struct script_rules *r, const char *file, const char *src, size_t len,
			 char *name_out, size_t namelen, char *err, size_t errlen);

/*
 * script_rules_reload — re-read a rule's file, validate, then swap; NULL
 * reloads all (errors of each are reported in err, the first code returned).
 * On error the old version keeps running and the error lands in its log.
 */
int script_rules_reload(struct script_rules *r, const char *name, char *err, size_t errlen);

/* script_rules_remove — unload a rule and delete its file. */
int script_rules_remove(struct script_rules *r, const char *name, char *err, size_t errlen);

#endif
