/*
 * script — see script.h.
 *
 * How a script is kept from hurting anything:
 *
 * - Memory: lua_newstate with our allocator, which counts the bytes a state
 *   holds and refuses growth past the cap (Lua then collects and retries, and
 *   raises "not enough memory" if that fails). Shrinking never fails.
 * - CPU: a count hook every SCRIPT_HOOK_EVERY instructions adds to the
 *   invocation's units and checks the budget, the deadline and the stop flag.
 *   Once an invocation is stopped the hook count drops to 1 and the hook
 *   raises the stop error on every instruction, in every coroutine, so a
 *   pcall in the script catches it only to have the next instruction raise it
 *   again: it unwinds to our lua_pcall. C code is not interrupted by hooks, so
 *   every C loop a script can size (patterns, string.rep, table.*) charges its
 *   work through script_charge, which raises the same way (luastr.c).
 * - Environment: the globals table starts empty. What the host provides
 *   lives in a "provided" table behind the globals' __index; __newindex and
 *   the rawset wrapper refuse to shadow it; library and API tables are empty
 *   proxies whose __index is the real table and whose __newindex raises;
 *   every host metatable has __metatable set, strings' included. setmetatable
 *   refuses __gc (finalizers run with hooks off, so a looping __gc could not be
 *   stopped).
 * - Errors: every Lua call runs in protected mode through one trampoline;
 *   the host never converts a script's error object with metamethods.
 */
#include "script.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <limits.h>
#include <lualib.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "linli/error.h"
#include "log.h"
#include "luastr.h"
#include "tier.h"
#include "util.h"

#define RO_META	    "locked" /* what getmetatable returns for host tables and strings */
#define MAX_PRINTS  100	     /* print/linli.log lines per invocation */
#define MP_DEPTH    32
#define ALLOC_CHECK (256u << 10) /* bytes of growth between two checks */

struct script {
	char *file; /* path, as named in messages */
	char *name; /* declared name (or the file's stem when broken) */
	char *scope;
	char *src; /* source text */
	size_t src_len;
	enum script_kind kind; /* what it declared */
	enum script_state state;
	char fault[512];
	struct script_limits lim;
	const struct cfg *cfg;
	lua_State *L;
	bool loading; /* top-level chunk running: declarations allowed */
	/* memory */
	size_t mem_used, mem_peak;
	uint64_t mem_refused;
	/* the running invocation */
	struct {
		int depth;
		uint64_t used;
		uint64_t deadline_ns;
		int prints;
		size_t alloc; /* growth not yet charged */
		char stop_msg[256];
	} inv;
	atomic_int stop; /* enum script_stop */
	/* declaration */
	struct script_ruledecl rule;
	struct script_manifest man;
	bool declared;
	int ref_when, ref_run, ref_init, ref_fini;
	/* health */
	struct script_stats st;
	uint32_t errors_in_row;
	struct script_logent log[SCRIPT_LOG_MAX];
	int log_head, log_n;
	char call_scope[SCOPE_MAX + 1];	 /* script_set_call_scope */
	uint32_t cause_depth;		 /* script_set_cause_depth */
	uint64_t drop_window_ms;	 /* when the current burst of depth drops began */
	uint32_t drop_window_n;		 /* drops in it */
	char drop_msg[200];		 /* the fault's reason, when the drops fault it */
	char fault_scope[SCOPE_MAX + 1]; /* call_scope when it faulted */
	void *user;
	script_fault_fn on_fault;
	void *on_fault_ud;
};

static script_bind_fn binder;
static void *binder_ud;

void script_set_binder(script_bind_fn bind, void *ud)
{
	binder = bind;
	binder_ud = ud;
}

/*
 * The coarse clock (a tick, ~4 ms) is precise enough for deadlines of tens
 * of ms and costs a quarter of the fine one: it is read twice per call, and
 * a rule evaluation takes ~250 ns.
 */
static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- memory ---- */

static int account(struct script *s, uint64_t units);
static void hook(lua_State *L, lua_Debug *ar);

/*
 * One VM instruction (a concatenation, a table resize) can copy megabytes,
 * and the hook only runs every SCRIPT_HOOK_EVERY instructions: so growth is
 * charged too, one unit per 64 bytes, checked every 256 KiB. Once the
 * invocation is stopped, growth is refused and the hook fires on the next
 * instruction (lua_sethook is safe to call at any point).
 */
static bool alloc_charge(struct script *s, size_t grow)
{
	if (atomic_load(&s->stop))
		return false;
	s->inv.alloc += grow;
	if (s->inv.alloc < ALLOC_CHECK)
		return true;
	uint64_t units = s->inv.alloc / 64;
	s->inv.alloc = 0;
	if (!account(s, units))
		return true;
	lua_sethook(s->L, hook, LUA_MASKCOUNT, 1);
	return false;
}

static void *script_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct script *s = ud;
	size_t old = ptr ? osize : 0; /* without ptr, osize is a type tag */
	if (nsize == 0) {
		free(ptr);
		s->mem_used -= old;
		return NULL;
	}
	if (nsize > old && s->mem_used + (nsize - old) > s->lim.memory) {
		s->mem_refused++;
		return NULL;
	}
	if (nsize > old && s->inv.depth > 0 && !alloc_charge(s, nsize - old))
		return NULL;
	void *p = realloc(ptr, nsize);
	if (!p)
		return NULL;
	s->mem_used = s->mem_used - old + nsize;
	if (s->mem_used > s->mem_peak)
		s->mem_peak = s->mem_used;
	return p;
}

static int on_panic(lua_State *L)
{
	const char *m = lua_tostring(L, -1);
	log_error("script", "unprotected Lua error (a host bug): %s", m ? m : "?");
	abort();
}

/* ---- budget, deadline, stop ---- */

struct script *script_from_lua(lua_State *L)
{
	return *(struct script **)lua_getextraspace(L);
}

/* Format the stop message once, at the place the script was stopped. */
static void stop_message(struct script *s, lua_State *L, lua_Debug *ar, int why)
{
	if (s->inv.stop_msg[0])
		return;
	char where[128] = "";
	lua_Debug d;
	if (ar && lua_getinfo(L, "Sl", ar) && ar->currentline > 0)
		snprintf(where, sizeof where, "%s:%d: ", ar->short_src, ar->currentline);
	/* Stopped in C (a pattern, a table function): name the Lua line that called it. */
	for (int lv = 0; !where[0] && lv < 64 && lua_getstack(L, lv, &d); lv++)
		if (lua_getinfo(L, "Sl", &d) && d.currentline > 0)
			snprintf(where, sizeof where, "%s:%d: ", d.short_src, d.currentline);
	if (!where[0])
		snprintf(where, sizeof where, "%s: ", s->file);
	switch (why) {
	case SCRIPT_STOP_BUDGET:
		snprintf(s->inv.stop_msg, sizeof s->inv.stop_msg,
			 "%sinstruction budget exhausted (%llu per call)", where,
			 (unsigned long long)s->lim.instructions);
		break;
	case SCRIPT_STOP_TIME:
		snprintf(s->inv.stop_msg, sizeof s->inv.stop_msg,
			 "%stime limit exceeded (%u ms per call)", where, s->lim.time_ms);
		break;
	case SCRIPT_STOP_DEPTH:
		snprintf(s->inv.stop_msg, sizeof s->inv.stop_msg, "%s%s", where, s->drop_msg);
		break;
	default:
		snprintf(s->inv.stop_msg, sizeof s->inv.stop_msg, "%sinterrupted by the host",
			 where);
		break;
	}
}

/* Raise the stop error, and make every following instruction of L raise it too. */
static int raise_stop(struct script *s, lua_State *L, lua_Debug *ar, int why)
{
	stop_message(s, L, ar, why);
	lua_sethook(L, hook, LUA_MASKCOUNT, 1);
	lua_pushstring(L, s->inv.stop_msg);
	return lua_error(L);
}

/* Add units; return the stop reason (0: go on). */
static int account(struct script *s, uint64_t units)
{
	int why = atomic_load(&s->stop);
	if (why)
		return why;
	s->inv.used += units;
	if (s->inv.used > s->lim.instructions)
		why = SCRIPT_STOP_BUDGET;
	else if (now_ns() > s->inv.deadline_ns)
		why = SCRIPT_STOP_TIME;
	else
		return 0;
	int expect = 0;
	if (!atomic_compare_exchange_strong(&s->stop, &expect, why))
		why = expect;
	return why;
}

static void hook(lua_State *L, lua_Debug *ar)
{
	struct script *s = script_from_lua(L);
	if (s->inv.depth == 0)
		return;
	int every = lua_gethookcount(L);
	int why = account(s, (uint64_t)every);
	if (why)
		raise_stop(s, L, ar, why);
	else if (every != SCRIPT_HOOK_EVERY) /* a coroutine left at 1 by an earlier stop */
		lua_sethook(L, hook, LUA_MASKCOUNT, SCRIPT_HOOK_EVERY);
}

void script_charge(lua_State *L, uint64_t units)
{
	struct script *s = script_from_lua(L);
	if (!s || s->inv.depth == 0)
		return;
	int why = account(s, units);
	if (why) {
		lua_Debug ar;
		raise_stop(s, L, lua_getstack(L, 1, &ar) ? &ar : NULL, why);
	}
}

int script_charge_soft(lua_State *L, uint64_t units)
{
	struct script *s = script_from_lua(L);
	if (!s || s->inv.depth == 0)
		return 0;
	int why = account(s, units);
	if (!why)
		return 0;
	lua_Debug ar;
	stop_message(s, L, lua_getstack(L, 1, &ar) ? &ar : NULL, why);
	lua_sethook(L, hook, LUA_MASKCOUNT, 1); /* the next instruction raises it */
	return LINLI_ELIMIT;
}

int script_depth_drop(lua_State *L, const char *topic, uint32_t depth, uint32_t max, char *err,
		      size_t errlen)
{
	struct script *s = script_from_lua(L);
	const char *name = s->name ? s->name : s->file;
	uint64_t now = now_ns() / 1000000u;
	s->st.depth_drops++;
	if (!s->drop_window_n || now - s->drop_window_ms >= SCRIPT_DEPTH_WINDOW_MS) {
		s->drop_window_ms = now;
		s->drop_window_n = 0;
		log_warn(
		    name,
		    "dropped an event on '%s' at cause depth %u, deeper than lua.max_event_depth "
		    "(%u): a chain of events its handlers cause; more drops within %u s are only "
		    "counted (depth_drops), %u fault it",
		    topic, depth, max, SCRIPT_DEPTH_WINDOW_MS / 1000, SCRIPT_DEPTH_FAULT_DROPS);
	}
	if (++s->drop_window_n >= SCRIPT_DEPTH_FAULT_DROPS && s->inv.depth > 0) {
		snprintf(s->drop_msg, sizeof s->drop_msg,
			 "event chain too deep: %u events dropped within %u s, each deeper than "
			 "lua.max_event_depth (%u) (the last on '%s' at cause depth %u)",
			 s->drop_window_n, SCRIPT_DEPTH_WINDOW_MS / 1000, max, topic, depth);
		int expect = 0;
		int why = atomic_compare_exchange_strong(&s->stop, &expect, SCRIPT_STOP_DEPTH)
			      ? SCRIPT_STOP_DEPTH
			      : expect;
		lua_Debug ar;
		raise_stop(s, L, lua_getstack(L, 1, &ar) ? &ar : NULL, why);
	}
	return errf(
	    err, errlen, LINLI_ELIMIT,
	    "'%s' at cause depth %u: dropped, deeper than lua.max_event_depth (%u) (a chain "
	    "of events that handlers cause)",
	    topic, depth, max);
}

void script_interrupt(struct script *s)
{
	int expect = 0;
	if (!s || !s->L)
		return;
	if (atomic_compare_exchange_strong(&s->stop, &expect, SCRIPT_STOP_INTERRUPT))
		lua_sethook(s->L, hook, LUA_MASKCOUNT, 1); /* documented async-safe */
	/* Between calls, the flag stays set and stops the next call. */
}

/* ---- the sandbox ---- */

static const char K_PROVIDED = 'p'; /* registry keys: addresses of these */
static const char K_ROSET = 'r';
static const char K_ARRAY = 'a'; /* the metatable of linli.array's tables */

static int ro_newindex(lua_State *L)
{
	const char *what = lua_tostring(L, lua_upvalueindex(1));
	if (lua_type(L, 2) == LUA_TSTRING)
		return luaL_error(L, "cannot change '%s.%s': host tables are read-only", what,
				  lua_tostring(L, 2));
	return luaL_error(L, "cannot change '%s': host tables are read-only", what);
}

static int ro_next(lua_State *L)
{
	lua_settop(L, 2);
	if (lua_next(L, lua_upvalueindex(1)))
		return 2;
	return 0;
}

static int ro_pairs(lua_State *L)
{
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_pushcclosure(L, ro_next, 1);
	lua_pushnil(L);
	lua_pushnil(L);
	return 3;
}

static int ro_len(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)lua_rawlen(L, lua_upvalueindex(1)));
	return 1;
}

/*
 * Replace the table on top with an empty read-only proxy of it. Tables inside
 * it are proxied first (deep), named "what.key" in messages.
 */
static void make_readonly(lua_State *L, const char *what)
{
	int t = lua_gettop(L);
	lua_pushnil(L);
	while (lua_next(L, t)) {
		if (lua_type(L, -1) == LUA_TTABLE && lua_type(L, -2) == LUA_TSTRING) {
			char sub[128];
			snprintf(sub, sizeof sub, "%s.%s", what, lua_tostring(L, -2));
			make_readonly(L, sub);
			lua_pushvalue(L, -2);
			lua_insert(L, -2);
			lua_rawset(L, t); /* replacing an existing key keeps lua_next valid */
		} else
			lua_pop(L, 1);
	}
	lua_newtable(L); /* the proxy */
	lua_createtable(L, 0, 5);
	lua_pushvalue(L, t);
	lua_setfield(L, -2, "__index");
	lua_pushstring(L, what);
	lua_pushcclosure(L, ro_newindex, 1);
	lua_setfield(L, -2, "__newindex");
	lua_pushvalue(L, t);
	lua_pushcclosure(L, ro_pairs, 1);
	lua_setfield(L, -2, "__pairs");
	lua_pushvalue(L, t);
	lua_pushcclosure(L, ro_len, 1);
	lua_setfield(L, -2, "__len");
	lua_pushliteral(L, RO_META);
	lua_setfield(L, -2, "__metatable");
	lua_setmetatable(L, -2);
	lua_rawgetp(L, LUA_REGISTRYINDEX, &K_ROSET);
	lua_pushvalue(L, -2);
	lua_pushboolean(L, 1);
	lua_rawset(L, -3);
	lua_pop(L, 1);
	lua_replace(L, t);
}

/* Is the value at idx a host-provided global name? */
static bool is_provided(lua_State *L, int idx)
{
	if (lua_type(L, idx) != LUA_TSTRING)
		return false;
	lua_rawgetp(L, LUA_REGISTRYINDEX, &K_PROVIDED);
	lua_pushvalue(L, idx);
	bool yes = lua_rawget(L, -2) != LUA_TNIL;
	lua_pop(L, 2);
	return yes;
}

static int g_newindex(lua_State *L)
{
	if (is_provided(L, 2))
		return luaL_error(L, "cannot assign to global '%s': it is provided by the host",
				  lua_tostring(L, 2));
	lua_settop(L, 3);
	lua_rawset(L, 1);
	return 0;
}

static int sb_rawset(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	luaL_checkany(L, 2);
	luaL_checkany(L, 3);
	lua_rawgetp(L, LUA_REGISTRYINDEX, &K_ROSET);
	lua_pushvalue(L, 1);
	bool ro = lua_rawget(L, -2) != LUA_TNIL;
	lua_pop(L, 2);
	if (ro)
		return luaL_error(L, "rawset: host tables are read-only");
	if (lua_rawequal(L, 1, lua_upvalueindex(1)) && is_provided(L, 2))
		return luaL_error(L,
				  "rawset: cannot replace global '%s': it is provided by the host",
				  lua_tostring(L, 2));
	lua_settop(L, 3);
	lua_rawset(L, 1);
	return 1;
}

/*
 * linli.array([t]) -> t: mark table t (a new one when absent) as a list, so that
 * it is packed as an array also when it is empty — a plain empty table is packed as
 * a map ({} in JSON), which a client reading a list does not expect. t must have no
 * metatable; the mark is one (protected) that script code cannot change or remove.
 */
static int api_array(lua_State *L)
{
	if (lua_isnoneornil(L, 1)) {
		lua_settop(L, 0);
		lua_newtable(L);
	}
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_settop(L, 1);
	if (lua_getmetatable(L, 1)) {
		lua_rawgetp(L, LUA_REGISTRYINDEX, &K_ARRAY);
		if (lua_rawequal(L, -1, -2)) {
			lua_settop(L, 1);
			return 1;
		}
		return luaL_error(L, "linli.array: the table already has a metatable");
	}
	lua_rawgetp(L, LUA_REGISTRYINDEX, &K_ARRAY);
	lua_setmetatable(L, 1);
	return 1;
}

/* Is the table at idx marked by linli.array? */
static bool marked_array(lua_State *L, int idx)
{
	if (!lua_getmetatable(L, idx))
		return false;
	lua_rawgetp(L, LUA_REGISTRYINDEX, &K_ARRAY);
	bool yes = lua_rawequal(L, -1, -2);
	lua_pop(L, 2);
	return yes;
}

/* setmetatable, checked here so that errors name the script's line. */
static int sb_setmetatable(lua_State *L)
{
	int t = lua_type(L, 2);
	luaL_checktype(L, 1, LUA_TTABLE);
	luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
	if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
		return luaL_error(L, "cannot change a protected metatable");
	if (t == LUA_TTABLE) {
		lua_pushliteral(L, "__gc");
		if (lua_rawget(L, 2) != LUA_TNIL)
			return luaL_error(L, "setmetatable: __gc metamethods are not allowed here");
		lua_pop(L, 1);
	}
	lua_settop(L, 2);
	lua_setmetatable(L, 1);
	return 1;
}

static int sb_collectgarbage(lua_State *L)
{
	const char *opt = luaL_optstring(L, 1, "collect");
	if (strcmp(opt, "count") != 0)
		return luaL_error(L, "collectgarbage('%s') is not allowed here; only 'count' is",
				  opt);
	int kb = lua_gc(L, LUA_GCCOUNT), b = lua_gc(L, LUA_GCCOUNTB);
	lua_pushnumber(L, (lua_Number)kb + (lua_Number)b / 1024);
	return 1;
}

/*
 * A load reader, wrapped: the lexer's work on each piece it returns (64 MiB
 * of whitespace or of a comment's body allocate nothing) is charged when the
 * piece is returned, so a reader that never ends is stopped at the deadline.
 * A stop raised here is caught by load, which returns it as (nil, message);
 * the next instruction raises it again (raise_stop leaves the hook at 1).
 */
static int load_reader(lua_State *L)
{
	lua_settop(L, 0);
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_call(L, 0, 1);
	if (lua_type(L, 1) == LUA_TSTRING)
		script_charge(L, 1 + lua_rawlen(L, 1) / 64);
	return 1;
}

static int sb_load(lua_State *L)
{
	const char *mode = luaL_optstring(L, 3, "t");
	if (strcmp(mode, "t") != 0)
		return luaL_error(
		    L, "load: mode '%s' refused: only text chunks (mode 't') load here", mode);
	int top = lua_gettop(L);
	if (top < 3)
		lua_settop(L, 3);
	if (lua_type(L, 1) == LUA_TFUNCTION) {
		lua_pushvalue(L, 1);
		lua_pushcclosure(L, load_reader, 1);
		lua_replace(L, 1);
	} else if (lua_type(L, 1) == LUA_TSTRING)
		script_charge(L, 1 + lua_rawlen(L, 1) / 64);
	lua_pushliteral(L, "t");
	lua_replace(L, 3);
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
	return lua_gettop(L);
}

static void log_line(lua_State *L, enum log_level lvl, int first)
{
	struct script *s = script_from_lua(L);
	if (s->inv.prints >= MAX_PRINTS) {
		if (s->inv.prints++ == MAX_PRINTS)
			log_warn("script",
				 "%s: more than %d log lines in one call; dropping the rest",
				 s->name ? s->name : s->file, MAX_PRINTS);
		return;
	}
	s->inv.prints++;
	luaL_Buffer b;
	int n = lua_gettop(L);
	luaL_buffinit(L, &b);
	for (int i = first; i <= n; i++) {
		if (i > first)
			luaL_addchar(&b, '\t'); /* before the value: the buffer must be on top */
		luaL_tolstring(L, i, NULL);	/* may run __tostring: Lua, under the hook */
		luaL_addvalue(&b);
	}
	luaL_pushresult(&b);
	const char *line = lua_tostring(L, -1);
	log_msg(lvl, "script", "%s: %.1000s", s->name ? s->name : s->file, line);
}

static int sb_print(lua_State *L)
{
	log_line(L, LOG_INFO, 1);
	return 0;
}

/* linli.log(level, ...) — level "error", "warn", "info" or "debug". */
static int api_log(lua_State *L)
{
	const char *lv = luaL_checkstring(L, 1);
	int lvl = log_level_parse(lv);
	if (lvl < 0)
		return luaL_argerror(L, 1, "level must be 'error', 'warn', 'info' or 'debug'");
	log_line(L, (enum log_level)lvl, 2);
	return 0;
}

static int decl_rule(lua_State *L);
static int decl_plugin(lua_State *L);

/* Move field `name` of the table at idx into the provided table at prov. */
static void provide(lua_State *L, int prov, int from, const char *name)
{
	lua_getfield(L, from, name);
	lua_setfield(L, prov, name);
}

static void provide_lib(lua_State *L, int prov, const char *name, lua_CFunction open,
			void (*bound)(lua_State *L, int lib))
{
	luaL_requiref(L, name, open, 0);
	if (bound)
		bound(L, lua_gettop(L));
	make_readonly(L, name);
	lua_setfield(L, prov, name);
}

/* Build the environment (runs in protected mode: allocation may fail). */
static int open_sandbox(lua_State *L)
{
	struct script *s = lua_touserdata(L, 1);
	lua_settop(L, 0);
	lua_newtable(L);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &K_PROVIDED);
	lua_newtable(L); /* the read-only set, weak keys */
	lua_createtable(L, 0, 1);
	lua_pushliteral(L, "k");
	lua_setfield(L, -2, "__mode");
	lua_setmetatable(L, -2);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &K_ROSET);

	luaL_requiref(L, "_G", luaopen_base, 0);	/* 1: the globals, filled by the base lib */
	lua_rawgetp(L, LUA_REGISTRYINDEX, &K_PROVIDED); /* 2 */
	static const char *const base_ok[] = {
	    "assert",	"error",    "getmetatable", "ipairs",	"next",	  "pairs",
	    "pcall",	"rawequal", "rawget",	    "rawlen",	"select", "tonumber",
	    "tostring", "type",	    "xpcall",	    "_VERSION", NULL};
	for (int i = 0; base_ok[i]; i++)
		provide(L, 2, 1, base_ok[i]);
	luastr_install_base(L, 2); /* tonumber charges the numerals it converts */
	lua_pushcfunction(L, sb_setmetatable);
	lua_setfield(L, 2, "setmetatable");
	lua_getfield(L, 1, "load");
	lua_pushcclosure(L, sb_load, 1);
	lua_setfield(L, 2, "load");
	lua_pushvalue(L, 1);
	lua_pushcclosure(L, sb_rawset, 1);
	lua_setfield(L, 2, "rawset");
	lua_pushcfunction(L, sb_collectgarbage);
	lua_setfield(L, 2, "collectgarbage");
	lua_pushcfunction(L, sb_print);
	lua_setfield(L, 2, "print");
	lua_pushcfunction(L, decl_rule);
	lua_setfield(L, 2, "rule");
	lua_pushcfunction(L, decl_plugin);
	lua_setfield(L, 2, "plugin");
	lua_pushvalue(L, 1);
	lua_setfield(L, 2, "_G");
	/* Empty the globals: dofile, loadfile, warn and the rest are gone. */
	lua_pushnil(L);
	while (lua_next(L, 1)) {
		lua_pop(L, 1);
		lua_pushvalue(L, -1);
		lua_pushnil(L);
		lua_rawset(L, 1);
	}

	/* string and table: bounded functions, no dump; strings' metatable locked. */
	luaL_requiref(L, "string", luaopen_string, 0); /* 3 */
	luaL_requiref(L, "table", luaopen_table, 0);   /* 4 */
	luastr_install(L, 3, 4);
	lua_pushliteral(L, "");
	lua_getmetatable(L, -1);
	lua_pushliteral(L, RO_META);
	lua_setfield(L, -2, "__metatable");
	lua_pop(L, 2);
	make_readonly(L, "table");
	lua_setfield(L, 2, "table");
	make_readonly(L, "string");
	lua_setfield(L, 2, "string");
	provide_lib(L, 2, "math", luaopen_math, luastr_install_math);
	provide_lib(L, 2, "utf8", luaopen_utf8, luastr_install_utf8);
	provide_lib(L, 2, "coroutine", luaopen_coroutine, NULL);
	luaL_requiref(L, "os", luaopen_os, 0);
	lua_createtable(L, 0, 4);
	static const char *const os_ok[] = {"time", "date", "clock", "difftime", NULL};
	for (int i = 0; os_ok[i]; i++)
		provide(L, lua_gettop(L), lua_gettop(L) - 1, os_ok[i]);
	make_readonly(L, "os");
	lua_setfield(L, 2, "os");
	lua_pop(L, 1);

	/* The API table: ours, then the binder's; read-only as a whole. */
	lua_newtable(L);
	lua_pushcfunction(L, api_log);
	lua_setfield(L, -2, "log");
	lua_createtable(L, 0, 1);
	lua_pushliteral(L, "linli.array");
	lua_setfield(L, -2, "__metatable");
	lua_rawsetp(L, LUA_REGISTRYINDEX, &K_ARRAY);
	lua_pushcfunction(L, api_array);
	lua_setfield(L, -2, "array");
	lua_pushstring(L, s->scope);
	lua_setfield(L, -2, "scope");
	if (binder)
		binder(L, s, binder_ud);
	make_readonly(L, "linli");
	lua_setfield(L, 2, "linli");

	/* The globals' metatable: provided names behind __index, never shadowed. */
	lua_createtable(L, 0, 3);
	lua_pushvalue(L, 2);
	lua_setfield(L, -2, "__index");
	lua_pushcfunction(L, g_newindex);
	lua_setfield(L, -2, "__newindex");
	lua_pushliteral(L, RO_META);
	lua_setfield(L, -2, "__metatable");
	lua_setmetatable(L, 1);
	return 0;
}

/* ---- the error log ---- */

/* "file:line" at the start of msg, if any. */
static void where_of(const char *msg, char *out, size_t outlen)
{
	out[0] = '\0';
	for (const char *p = msg; *p && p - msg < 200; p++) {
		if (*p != ':' || !isdigit((unsigned char)p[1]))
			continue;
		const char *q = p + 1;
		while (isdigit((unsigned char)*q))
			q++;
		if (*q == ':') {
			snprintf(out, outlen, "%.*s", (int)(q - msg), msg);
			return;
		}
	}
}

static void add_log(struct script *s, bool fault, const char *msg)
{
	struct script_logent *e;
	if (s->log_n < SCRIPT_LOG_MAX)
		e = &s->log[(s->log_head + s->log_n++) % SCRIPT_LOG_MAX];
	else {
		e = &s->log[s->log_head];
		s->log_head = (s->log_head + 1) % SCRIPT_LOG_MAX;
	}
	e->time_ms = wall_ms();
	e->fault = fault;
	where_of(msg, e->where, sizeof e->where);
	snprintf(e->msg, sizeof e->msg, "%s", msg);
	snprintf(e->scope, sizeof e->scope, "%s", s->call_scope);
}

void script_set_call_scope(struct script *s, const char *scope)
{
	snprintf(s->call_scope, sizeof s->call_scope, "%s", scope ? scope : "");
}

void script_set_cause_depth(struct script *s, uint32_t depth)
{
	s->cause_depth = depth;
}

uint32_t script_cause_depth(const struct script *s)
{
	return s->cause_depth;
}

void script_count_delayed(struct script *s)
{
	s->st.delayed++;
}

const char *script_fault_scope(const struct script *s)
{
	return s->fault_scope;
}

int script_log(const struct script *s, const struct script_logent **out, int max)
{
	int n = s->log_n < max ? s->log_n : max;
	for (int i = 0; i < n; i++)
		out[i] = &s->log[(s->log_head + s->log_n - n + i) % SCRIPT_LOG_MAX];
	return n;
}

static void set_fault(struct script *s, const char *msg)
{
	s->state = SCRIPT_FAULTED;
	snprintf(s->fault, sizeof s->fault, "%s", msg);
	snprintf(s->fault_scope, sizeof s->fault_scope, "%s", s->call_scope);
	s->st.faults++;
	if (s->loading) /* a load that fails is reported by its caller */
		return;
	log_warn("script", "%s faulted, stopped until reloaded: %s", s->name ? s->name : s->file,
		 msg);
	if (s->on_fault)
		s->on_fault(s, s->on_fault_ud);
}

void script_stop(struct script *s, const char *why)
{
	if (s->state != SCRIPT_READY)
		return;
	add_log(s, true, why);
	set_fault(s, why);
}

/* ---- invocations ---- */

struct callctx {
	struct script *s;
	lua_CFunction body; /* runs the work; ud below */
	int fnref;
	script_push_fn push;
	void *ud;
	int nres;
	script_take_fn take;
	void *tud;
	const char *src; /* for loading */
	size_t len;
};

static int call_body(lua_State *L)
{
	struct callctx *c = lua_touserdata(L, 1);
	lua_settop(L, 0);
	lua_rawgeti(L, LUA_REGISTRYINDEX, c->fnref);
	if (!lua_isfunction(L, -1))
		return luaL_error(L, "%s: no such handler", c->s->file);
	int n = c->push ? c->push(L, c->ud) : 0;
	if (n < 0)
		return luaL_error(L, "%s: cannot pass the arguments: %s", c->s->file,
				  linli_strerror(n));
	lua_call(L, n, c->nres);
	if (c->take)
		c->take(L, lua_gettop(L) - c->nres + 1, c->tud);
	return 0;
}

/*
 * The error object at the top as text, without running any of its
 * metamethods and without allocating in the state (we are outside
 * protected mode here).
 */
static const char *error_text(lua_State *L, char *buf, size_t len)
{
	switch (lua_type(L, -1)) {
	case LUA_TSTRING:
		return lua_tostring(L, -1);
	case LUA_TNUMBER:
		if (lua_isinteger(L, -1))
			snprintf(buf, len, "%lld", (long long)lua_tointeger(L, -1));
		else
			snprintf(buf, len, "%.14g", (double)lua_tonumber(L, -1));
		return buf;
	case LUA_TNIL:
		return "error with no message";
	default:
		snprintf(buf, len, "error object is a %s, not a string", luaL_typename(L, -1));
		return buf;
	}
}

/*
 * Run c->body under the limits. The outermost call arms the budget and the
 * deadline; nested calls share them. Classifies the outcome, updates health
 * and the log. Returns 0 or a LINLI_E* code with err filled.
 */
static int invoke(struct script *s, struct callctx *c, char *err, size_t errlen)
{
	if (s->state != SCRIPT_READY)
		return errf(err, errlen, LINLI_ESTATE, "%s is %s: %s", s->name ? s->name : s->file,
			    script_state_name(s->state), s->fault);
	/*
	 * Not re-entrant: a binding that calls back into the script that called
	 * it (a handler publishing to its own topic) may be running on one of
	 * its coroutines, and the main thread cannot run then. Queue instead.
	 */
	if (s->inv.depth > 0)
		return errf(
		    err, errlen, LINLI_EBUSY,
		    "%s is running: a script cannot be called from inside itself (queue the "
		    "call with kernel_post)",
		    script_name(s));
	lua_State *L = s->L;
	bool outer = true;
	uint64_t t0 = now_ns();
	if (outer) {
		s->inv.used = 0;
		s->inv.prints = 0;
		s->inv.alloc = 0;
		s->inv.deadline_ns = t0 + (uint64_t)s->lim.time_ms * 1000000u;
		s->inv.stop_msg[0] = '\0';
		/* The hook stays set between calls (a stop's count of 1 is reset below). */
	}
	if (!lua_checkstack(L, 3)) {
		add_log(s, false, "stack exhausted");
		return errf(err, errlen, LINLI_ENOMEM, "%s: Lua stack exhausted", s->file);
	}
	int base = lua_gettop(L);
	s->inv.depth++;
	lua_pushcfunction(L, c->body);
	lua_pushlightuserdata(L, c);
	int status = lua_pcall(L, 1, 0, 0);
	s->inv.depth--;
	int why = atomic_load_explicit(&s->stop, memory_order_relaxed);
	if (why && outer) {
		atomic_store(&s->stop, 0);
		lua_sethook(L, hook, LUA_MASKCOUNT, SCRIPT_HOOK_EVERY);
	}
	uint64_t dt = (now_ns() - t0) / 1000000;
	if (outer) {
		s->st.calls++;
		s->st.last_ms = dt;
		if (dt > s->st.max_ms)
			s->st.max_ms = dt;
		s->st.last_units = s->inv.used;
		if (s->inv.used > s->st.max_units)
			s->st.max_units = s->inv.used;
	}
	int rc = 0;
	char msg[512];
	bool fault = false;
	if (why && outer) {
		stop_message(s, L, NULL, why);
		snprintf(msg, sizeof msg, "%s", s->inv.stop_msg);
		rc = LINLI_ELIMIT;
		fault = true;
	} else if (status == LUA_ERRMEM) {
		snprintf(msg, sizeof msg, "%s: memory limit reached (%zu KiB)", s->file,
			 s->lim.memory >> 10);
		rc = LINLI_ENOMEM;
		fault = outer;
	} else if (status != LUA_OK) {
		char nb[64];
		snprintf(msg, sizeof msg, "%s", error_text(L, nb, sizeof nb));
		rc = why ? LINLI_ELIMIT : LINLI_EINVAL;
	}
	lua_settop(L, base);
	if (!rc) {
		if (outer)
			s->errors_in_row = 0;
		return 0;
	}
	if (outer) {
		s->st.errors++;
		s->errors_in_row++;
		if (!fault && s->errors_in_row >= s->lim.max_errors) {
			fault = true;
			char m2[640];
			snprintf(m2, sizeof m2, "%s (%u failed calls in a row)", msg,
				 s->errors_in_row);
			snprintf(msg, sizeof msg, "%s", m2);
		}
		add_log(s, fault, msg);
		if (fault)
			set_fault(s, msg);
		else if (!s->loading)
			log_warn("script", "%s: %s", s->name ? s->name : s->file, msg);
	}
	return errf(err, errlen, rc, "%s", msg);
}

int script_call(struct script *s, int fnref, script_push_fn push, void *ud, int nres,
		script_take_fn take, void *tud, char *err, size_t errlen)
{
	struct callctx c = {.s = s,
			    .body = call_body,
			    .fnref = fnref,
			    .push = push,
			    .ud = ud,
			    .nres = nres,
			    .take = take,
			    .tud = tud};
	return invoke(s, &c, err, errlen);
}

/* ---- rules at work ---- */

struct evctx {
	const char *topic;
	const msgpack_object *event;
	bool verdict;
};

static int push_event(lua_State *L, void *ud)
{
	struct evctx *e = ud;
	if (e->event)
		script_push_mp(L, e->event);
	else
		lua_newtable(L);
	lua_pushstring(L, e->topic);
	return 2;
}

static void take_verdict(lua_State *L, int first, void *ud)
{
	((struct evctx *)ud)->verdict = lua_toboolean(L, first);
}

int script_rule_eval(struct script *s, const char *topic, const msgpack_object *event, bool dry,
		     bool *matched, bool *ran, char *err, size_t errlen)
{
	struct evctx e = {.topic = topic, .event = event, .verdict = true};
	*matched = *ran = false;
	if (!s->rule.name)
		return errf(err, errlen, LINLI_EINVAL, "%s is not a rule", s->file);
	int rc = 0;
	if (s->ref_when != LUA_NOREF)
		rc = script_call(s, s->ref_when, push_event, &e, 1, take_verdict, &e, err, errlen);
	if (rc)
		return rc;
	*matched = e.verdict;
	if (!e.verdict || dry)
		return 0;
	*ran = true;
	return script_call(s, s->ref_run, push_event, &e, 0, NULL, NULL, err, errlen);
}

/* ---- declarations ---- */

static bool valid_name(const char *n)
{
	size_t l = strlen(n);
	if (l == 0 || l > SCRIPT_NAME_MAX || !islower((unsigned char)n[0]))
		return false;
	for (size_t i = 1; i < l; i++)
		if (!islower((unsigned char)n[i]) && !isdigit((unsigned char)n[i]) && n[i] != '_')
			return false;
	return true;
}

bool script_topic_valid(const char *p, bool pattern, char *why, size_t whylen)
{
	size_t n = strlen(p);
	if (n == 0)
		return errf(why, whylen, 0, "empty"), false;
	if (n > SCRIPT_TOPIC_MAX)
		return errf(why, whylen, 0, "longer than %d bytes", SCRIPT_TOPIC_MAX), false;
	const char *lvl = p;
	for (;;) {
		const char *end = strchr(lvl, '/');
		size_t l = end ? (size_t)(end - lvl) : strlen(lvl);
		if (l == 0)
			return errf(why, whylen, 0,
				    "empty level (leading, trailing or double '/')"),
			       false;
		for (size_t i = 0; i < l; i++) {
			unsigned char c = (unsigned char)lvl[i];
			if (c <= ' ' || c == 0x7f)
				return errf(why, whylen, 0, "space or control character"), false;
			if ((c == '+' || c == '#') && (!pattern || l != 1))
				return errf(why, whylen, 0,
					    pattern ? "'%c' must be a whole level"
						    : "'%c' is only for patterns",
					    c),
				       false;
		}
		if (lvl[0] == '#' && end)
			return errf(why, whylen, 0, "'#' must be the last level"), false;
		if (!end)
			return true;
		lvl = end + 1;
	}
}

bool script_topic_match(const char *p, const char *t)
{
	for (;;) {
		if (p[0] == '#' && p[1] == '\0')
			return true;
		const char *pe = strchr(p, '/'), *te = strchr(t, '/');
		size_t pl = pe ? (size_t)(pe - p) : strlen(p);
		size_t tl = te ? (size_t)(te - t) : strlen(t);
		if (!(pl == 1 && p[0] == '+') && (pl != tl || memcmp(p, t, pl) != 0))
			return false;
		if (!pe || !te)
			return !pe && !te;
		p = pe + 1;
		t = te + 1;
	}
}

/* Field names a declaration may have. */
static const char *const rule_fields[] = {"name",	 "on",	   "when",	   "run",
					  "description", "limits", "capabilities", NULL};
static const char *const plugin_fields[] = {"name",	   "version",	   "sdk",      "family",
					    "description", "capabilities", "requires", "init",
					    "fini",	   "limits",	   NULL};
static const char *const families[] = {"governance", "gov_services", "public_services",
				       "safety",     "custom",	     NULL};

static bool in_list(const char *const *l, const char *v)
{
	for (; *l; l++)
		if (strcmp(*l, v) == 0)
			return true;
	return false;
}

/* Every key of the declaration table at 1 must be a known field. */
static void check_fields(lua_State *L, const char *what, const char *name,
			 const char *const *fields)
{
	lua_pushnil(L);
	while (lua_next(L, 1)) {
		lua_pop(L, 1);
		if (lua_type(L, -1) != LUA_TSTRING)
			luaL_error(L, "%s '%s': field keys must be names, not a %s", what, name,
				   luaL_typename(L, -1));
		if (!in_list(fields, lua_tostring(L, -1)))
			luaL_error(L, "%s '%s': unknown field '%s'", what, name,
				   lua_tostring(L, -1));
	}
}

/* The string field `key` of table 1, or NULL when absent; raises on a wrong type. */
static const char *str_field(lua_State *L, const char *what, const char *name, const char *key,
			     bool required)
{
	lua_pushstring(L, key);
	int t = lua_rawget(L, 1);
	if (t == LUA_TNIL && !required) {
		lua_pop(L, 1);
		return NULL;
	}
	if (t != LUA_TSTRING)
		luaL_error(L, "%s '%s': %s must be a string (got %s)", what, name, key,
			   t == LUA_TNIL ? "nothing" : lua_typename(L, t));
	const char *v = lua_tostring(L, -1);
	lua_pop(L, 1); /* still anchored in the declaration table */
	return v;
}

/* A function field: its registry ref, LUA_NOREF when absent and optional. */
static int fn_field(lua_State *L, const char *what, const char *name, const char *key,
		    bool required)
{
	lua_pushstring(L, key);
	int t = lua_rawget(L, 1);
	if (t == LUA_TNIL && !required) {
		lua_pop(L, 1);
		return LUA_NOREF;
	}
	if (t != LUA_TFUNCTION)
		luaL_error(L, "%s '%s': %s must be a function (got %s)", what, name, key,
			   t == LUA_TNIL ? "nothing" : lua_typename(L, t));
	return luaL_ref(L, LUA_REGISTRYINDEX);
}

/* The declared name: field `name`, checked, copied. */
static char *name_field(lua_State *L, const char *what)
{
	lua_pushliteral(L, "name");
	int t = lua_rawget(L, 1);
	if (t != LUA_TSTRING)
		luaL_error(L, "%s: missing name (a string like \"smoke_alarm\")", what);
	const char *n = lua_tostring(L, -1);
	if (!valid_name(n))
		luaL_error(L, "%s: name '%s' must match [a-z][a-z0-9_]* (at most %d)", what, n,
			   SCRIPT_NAME_MAX);
	lua_pop(L, 1);
	return strdup(n);
}

/* limits = { memory_kb, instructions, time_ms, max_errors }: may only lower. */
static void limits_field(lua_State *L, struct script *s, const char *what)
{
	lua_pushliteral(L, "limits");
	int t = lua_rawget(L, 1);
	if (t == LUA_TNIL) {
		lua_pop(L, 1);
		return;
	}
	if (t != LUA_TTABLE)
		luaL_error(L, "%s '%s': limits must be a table", what, s->name);
	static const char *const keys[] = {"memory_kb", "instructions", "time_ms", "max_errors",
					   NULL};
	uint64_t have[4] = {s->lim.memory >> 10, s->lim.instructions, s->lim.time_ms,
			    s->lim.max_errors};
	uint64_t want[4];
	memcpy(want, have, sizeof want);
	int lt = lua_gettop(L);
	lua_pushnil(L);
	while (lua_next(L, lt)) {
		const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
		int i = 0;
		while (keys[i] && strcmp(keys[i], k) != 0)
			i++;
		if (!keys[i])
			luaL_error(L,
				   "%s '%s': limits: unknown field '%s' (memory_kb, instructions, "
				   "time_ms, max_errors)",
				   what, s->name, k);
		if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1)
			luaL_error(L, "%s '%s': limits.%s must be a positive integer", what,
				   s->name, k);
		uint64_t v = (uint64_t)lua_tointeger(L, -1);
		if (v > have[i]) {
			char m[256]; /* lua_pushfstring knows no 64-bit formats */
			snprintf(m, sizeof m,
				 "%s '%s': limits.%s = %llu is above this node's limit %llu "
				 "(an admin raises it with lua.overrides in the config)",
				 what, s->name, k, (unsigned long long)v,
				 (unsigned long long)have[i]);
			luaL_error(L, "%s", m);
		}
		want[i] = v;
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	if ((want[0] << 10) < SCRIPT_MIN_MEMORY)
		luaL_error(L, "%s '%s': limits.memory_kb must be at least %d", what, s->name,
			   (int)(SCRIPT_MIN_MEMORY >> 10));
	if ((want[0] << 10) < s->mem_used)
		luaL_error(L,
			   "%s '%s': limits.memory_kb = %d is below what it uses already (%d KiB)",
			   what, s->name, (int)want[0], (int)(s->mem_used >> 10));
	s->lim.memory = want[0] << 10;
	s->lim.instructions = want[1];
	s->lim.time_ms = (uint32_t)want[2];
	s->lim.max_errors = (uint32_t)want[3];
}

static struct script *declaring(lua_State *L, const char *what)
{
	struct script *s = script_from_lua(L);
	if (!s->loading)
		luaL_error(L, "%s { } may only be called while the file loads", what);
	if (s->declared)
		luaL_error(L, "%s { }: the file already declared %s '%s'; one declaration per file",
			   what, s->kind == SCRIPT_RULE ? "rule" : "plugin", s->name);
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_settop(L, 1);
	return s;
}

/* Take the name and the limits for it from the config before anything else. */
static void adopt_name(struct script *s, char *name)
{
	s->name = name;
	if (s->cfg)
		script_limits_from_cfg(s->cfg, name, &s->lim);
}

static void strlist_field(lua_State *L, const char *what, const char *name, const char *key,
			  bool required, char ***out, int *n);

static int decl_rule(lua_State *L)
{
	struct script *s = declaring(L, "rule");
	char *name = name_field(L, "rule");
	/* Owned by s from here: a raise below leaves it for script_free. */
	adopt_name(s, name);
	s->kind = SCRIPT_RULE;
	s->declared = true;
	check_fields(L, "rule", name, rule_fields);
	const char *on = str_field(L, "rule", name, "on", true);
	char why[128];
	if (!script_topic_valid(on, true, why, sizeof why))
		luaL_error(L, "rule '%s': on: bad topic pattern '%s': %s", name, on, why);
	const char *desc = str_field(L, "rule", name, "description", false);
	s->ref_when = fn_field(L, "rule", name, "when", false);
	s->ref_run = fn_field(L, "rule", name, "run", true);
	strlist_field(L, "rule", name, "capabilities", false, &s->rule.capabilities,
		      &s->rule.n_capabilities);
	limits_field(L, s, "rule");
	s->rule.name = strdup(name);
	s->rule.on = strdup(on);
	s->rule.description = desc ? strdup(desc) : NULL;
	s->rule.has_when = s->ref_when != LUA_NOREF;
	return 0;
}

static bool valid_version(const char *v, int parts)
{
	for (int i = 0; i < parts; i++) {
		if (!isdigit((unsigned char)*v))
			return false;
		while (isdigit((unsigned char)*v))
			v++;
		if (i + 1 < parts && *v++ != '.')
			return false;
	}
	return *v == '\0';
}

/*
 * A declared capability: well formed for the permission model (tier_cap_check,
 * the rule grants and C plugins meet too), not hal.driver (drivers are C
 * plugins), and naming what it is for: a script declares `store.read:DATASET`
 * (or `store.read:*`), never a bare kind.
 */
static void check_capability(lua_State *L, const char *what, const char *name, int i,
			     const char *cap)
{
	static const char *const with_arg[] = {
	    "store.read",  "store.write",    "bus.publish", "bus.subscribe",
	    "device.read", "device.command", NULL};
	char why[320];
	if (tier_cap_check(cap, why, sizeof why) != 0)
		luaL_error(L, "%s '%s': capabilities[%d]: %s", what, name, i, why);
	char kind[32];
	snprintf(kind, sizeof kind, "%.*s", (int)strcspn(cap, ":"), cap);
	if (strcmp(kind, "hal.driver") == 0)
		luaL_error(L, "%s '%s': capabilities[%d]: hal.driver is for C plugins", what, name,
			   i);
	if (!strchr(cap, ':') && in_list(with_arg, kind))
		luaL_error(L, "%s '%s': capabilities[%d]: '%s' needs an argument ('%s:NAME')",
			   what, name, i, cap, kind);
}

/* An array of strings field (`requires`, `capabilities`); copies into *out. */
static void strlist_field(lua_State *L, const char *what, const char *name, const char *key,
			  bool required, char ***out, int *n)
{
	lua_pushstring(L, key);
	int t = lua_rawget(L, 1);
	*out = NULL;
	*n = 0;
	if (t == LUA_TNIL && !required) {
		lua_pop(L, 1);
		return;
	}
	if (t != LUA_TTABLE)
		luaL_error(L, "%s '%s': %s must be a list of strings (got %s)%s", what, name, key,
			   t == LUA_TNIL ? "nothing" : lua_typename(L, t),
			   required ? "; write {} for none" : "");
	lua_Integer len = (lua_Integer)lua_rawlen(L, -1);
	if (len > 256)
		luaL_error(L, "%s '%s': %s: more than 256 entries", what, name, key);
	*out = calloc((size_t)len + 1, sizeof(char *));
	if (!*out)
		luaL_error(L, "out of memory");
	for (lua_Integer i = 1; i <= len; i++) {
		if (lua_rawgeti(L, -1, i) != LUA_TSTRING)
			luaL_error(L, "%s '%s': %s[%d] must be a string", what, name, key, (int)i);
		const char *v = lua_tostring(L, -1);
		if (strcmp(key, "capabilities") == 0)
			check_capability(L, what, name, (int)i, v);
		else if (!valid_name(v))
			luaL_error(L, "%s '%s': %s[%d]: '%s' is not a plugin name", what, name, key,
				   (int)i, v);
		(*out)[(*n)++] = strdup(v);
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
}

static int decl_plugin(lua_State *L)
{
	struct script *s = declaring(L, "plugin");
	char *name = name_field(L, "plugin");
	adopt_name(s, name);
	s->kind = SCRIPT_APP;
	s->declared = true;
	struct script_manifest *m = &s->man;
	m->name = strdup(name);
	check_fields(L, "plugin", name, plugin_fields);
	const char *v = str_field(L, "plugin", name, "version", true);
	if (!valid_version(v, 3))
		luaL_error(L, "plugin '%s': version '%s' must be MAJOR.MINOR.PATCH", name, v);
	m->version = strdup(v);
	v = str_field(L, "plugin", name, "sdk", true);
	if (!valid_version(v, 2))
		luaL_error(L, "plugin '%s': sdk '%s' must be MAJOR.MINOR", name, v);
	int major = atoi(v), minor = atoi(strchr(v, '.') + 1);
	if (major != SCRIPT_SDK_MAJOR || minor > SCRIPT_SDK_MINOR)
		luaL_error(L, "plugin '%s': needs SDK %s, this host offers %d.%d", name, v,
			   SCRIPT_SDK_MAJOR, SCRIPT_SDK_MINOR);
	m->sdk = strdup(v);
	v = str_field(L, "plugin", name, "family", true);
	if (!in_list(families, v))
		luaL_error(L,
			   "plugin '%s': family '%s' is not one of governance, gov_services, "
			   "public_services, safety, custom",
			   name, v);
	m->family = strdup(v);
	v = str_field(L, "plugin", name, "description", true);
	m->description = strdup(v);
	strlist_field(L, "plugin", name, "requires", false, &m->requires, &m->n_requires);
	strlist_field(L, "plugin", name, "capabilities", true, &m->capabilities,
		      &m->n_capabilities);
	s->ref_init = fn_field(L, "plugin", name, "init", false);
	s->ref_fini = fn_field(L, "plugin", name, "fini", false);
	limits_field(L, s, "plugin");
	return 0;
}

/* ---- loading ---- */

static int load_body(lua_State *L)
{
	struct callctx *c = lua_touserdata(L, 1);
	lua_settop(L, 0);
	char chunk[PATH_MAX + 2];
	snprintf(chunk, sizeof chunk, "@%s", c->s->file);
	if (luaL_loadbufferx(L, c->src, c->len, chunk, "t") != LUA_OK)
		return lua_error(L);
	lua_call(L, 0, 0);
	return 0;
}

static struct script *script_alloc_struct(const char *file, const struct script_opts *o)
{
	struct script *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->file = strdup(file);
	s->scope = strdup(o->scope ? o->scope : "");
	s->lim = o->lim;
	s->cfg = o->cfg;
	s->ref_when = s->ref_run = s->ref_init = s->ref_fini = LUA_NOREF;
	atomic_init(&s->stop, 0);
	if (!s->file || !s->scope) {
		free(s->file);
		free(s->scope);
		free(s);
		return NULL;
	}
	return s;
}

static void fix_limits(struct script_limits *l)
{
	if (l->memory < SCRIPT_MIN_MEMORY)
		l->memory = l->memory ? SCRIPT_MIN_MEMORY : SCRIPT_DEFAULT_MEMORY;
	if (!l->instructions)
		l->instructions = SCRIPT_DEFAULT_INSTRUCTIONS;
	if (!l->time_ms)
		l->time_ms = SCRIPT_DEFAULT_TIME_MS;
	if (!l->max_errors)
		l->max_errors = SCRIPT_DEFAULT_MAX_ERRORS;
}

int script_load(const char *file, const char *src, size_t len, const struct script_opts *o,
		struct script **out, char *err, size_t errlen)
{
	*out = NULL;
	if (len > SCRIPT_MAX_SOURCE)
		return errf(err, errlen, LINLI_E2BIG, "%s: too large (%zu bytes, at most %u)", file,
			    len, SCRIPT_MAX_SOURCE);
	struct script *s = script_alloc_struct(file, o);
	if (!s)
		return errf(err, errlen, LINLI_ENOMEM, "%s: out of memory", file);
	fix_limits(&s->lim);
	s->src = malloc(len + 1);
	if (!s->src) {
		script_free(s);
		return errf(err, errlen, LINLI_ENOMEM, "%s: out of memory", file);
	}
	memcpy(s->src, src, len);
	s->src[len] = '\0';
	s->src_len = len;
	s->L = lua_newstate(script_alloc, s);
	if (!s->L) {
		script_free(s);
		return errf(err, errlen, LINLI_ENOMEM, "%s: cannot create a Lua state in %zu KiB",
			    file, o->lim.memory >> 10);
	}
	*(struct script **)lua_getextraspace(s->L) = s;
	lua_atpanic(s->L, on_panic);
	lua_sethook(s->L, hook, LUA_MASKCOUNT, SCRIPT_HOOK_EVERY); /* coroutines inherit it */
	lua_pushcfunction(s->L, open_sandbox);
	lua_pushlightuserdata(s->L, s);
	if (lua_pcall(s->L, 1, 0, 0) != LUA_OK) {
		char nb[64];
		int rc =
		    errf(err, errlen, LINLI_ENOMEM, "%s: cannot build the sandbox in %zu KiB: %s",
			 file, s->lim.memory >> 10, error_text(s->L, nb, sizeof nb));
		script_free(s);
		return rc;
	}
	s->loading = true;
	struct callctx c = {.s = s, .body = load_body, .src = s->src, .len = len};
	int rc = invoke(s, &c, err, errlen);
	s->loading = false;
	if (rc == 0 && !s->declared)
		rc = errf(err, errlen, LINLI_EINVAL,
			  "%s: declares nothing: a rule file calls rule { name = ..., on = ..., "
			  "run = function(e) ... end }, an app calls plugin { ... }",
			  file);
	if (rc == 0 && o->kind != SCRIPT_ANY && o->kind != s->kind)
		rc = errf(err, errlen, LINLI_EINVAL, "%s: declares a %s where a %s is expected",
			  file, s->kind == SCRIPT_RULE ? "rule" : "plugin",
			  o->kind == SCRIPT_RULE ? "rule" : "plugin");
	if (rc) {
		script_free(s);
		return rc;
	}
	/* Load-time health does not count against the running script. */
	memset(&s->st, 0, sizeof s->st);
	s->log_n = 0;
	*out = s;
	return 0;
}

static int read_file(const char *path, char **buf, size_t *len, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errf(err, errlen, errno == ENOENT ? LINLI_ENOENT : LINLI_EIO,
			    "%s: cannot open: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return errf(err, errlen, LINLI_EIO, "%s: not a regular file", path);
	}
	if ((size_t)st.st_size > SCRIPT_MAX_SOURCE) {
		close(fd);
		return errf(err, errlen, LINLI_E2BIG, "%s: too large (%lld bytes, at most %u)",
			    path, (long long)st.st_size, SCRIPT_MAX_SOURCE);
	}
	char *b = malloc((size_t)st.st_size + 1);
	size_t n = 0;
	while (b && n < (size_t)st.st_size) {
		ssize_t r = read(fd, b + n, (size_t)st.st_size - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	if (!b || n != (size_t)st.st_size) {
		free(b);
		return errf(err, errlen, LINLI_EIO, "%s: read failed", path);
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	return 0;
}

int script_load_file(const char *path, const struct script_opts *o, struct script **out, char *err,
		     size_t errlen)
{
	char *buf = NULL;
	size_t len = 0;
	*out = NULL;
	int rc = read_file(path, &buf, &len, err, errlen);
	if (rc)
		return rc;
	rc = script_load(path, buf, len, o, out, err, errlen);
	free(buf);
	return rc;
}

static void free_strv(char **v, int n)
{
	for (int i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void script_free(struct script *s)
{
	if (!s)
		return;
	if (s->L)
		lua_close(s->L);
	free(s->file);
	free(s->name);
	free(s->scope);
	free(s->src);
	free(s->rule.name);
	free(s->rule.on);
	free(s->rule.description);
	free_strv(s->rule.capabilities, s->rule.n_capabilities);
	struct script_manifest *m = &s->man;
	free(m->name);
	free(m->version);
	free(m->sdk);
	free(m->family);
	free(m->description);
	free_strv(m->requires, m->n_requires);
	free_strv(m->capabilities, m->n_capabilities);
	free(s);
}

/* A placeholder for a file that did not load: no state, its error in the log. */
static struct script *broken_new(const char *path, const char *msg)
{
	struct script_opts o = {.kind = SCRIPT_RULE};
	struct script *s = script_alloc_struct(path, &o);
	if (!s)
		return NULL;
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	size_t n = strlen(base);
	if (n > 4 && strcmp(base + n - 4, ".lua") == 0)
		n -= 4;
	s->name = strndup(base, n);
	s->kind = SCRIPT_RULE;
	s->state = SCRIPT_BROKEN;
	snprintf(s->fault, sizeof s->fault, "%s", msg);
	add_log(s, true, msg);
	return s;
}

/* ---- accessors ---- */

const char *script_name(const struct script *s)
{
	return s->name ? s->name : s->file;
}
const char *script_file(const struct script *s)
{
	return s->file;
}
const char *script_scope(const struct script *s)
{
	return s->scope;
}

/* In a protected call: the field linli.scope of the sandbox (behind its read-only proxy). */
static int set_scope_field(lua_State *L)
{
	lua_rawgetp(L, LUA_REGISTRYINDEX, &K_PROVIDED);
	lua_pushliteral(L, "linli");
	if (lua_rawget(L, -2) != LUA_TTABLE || !lua_getmetatable(L, -1))
		return 0;
	lua_pushliteral(L, "__index");
	if (lua_rawget(L, -2) != LUA_TTABLE)
		return 0;
	lua_pushliteral(L, "scope");
	lua_pushvalue(L, 1);
	lua_rawset(L, -3);
	return 0;
}

int script_set_scope(struct script *s, const char *scope)
{
	char *dup = strdup(scope);
	if (!dup)
		return LINLI_ENOMEM;
	free(s->scope);
	s->scope = dup;
	if (!s->L)
		return 0;
	int top = lua_gettop(s->L);
	lua_pushcfunction(s->L, set_scope_field);
	lua_pushstring(s->L, scope);
	int st = lua_pcall(s->L, 1, 0, 0);
	lua_settop(s->L, top);
	return st == LUA_OK ? 0 : LINLI_ENOMEM;
}
enum script_kind script_kind(const struct script *s)
{
	return s->kind;
}
enum script_state script_state(const struct script *s)
{
	return s->state;
}
const char *script_fault(const struct script *s)
{
	return s->fault;
}
const struct script_limits *script_limits(const struct script *s)
{
	return &s->lim;
}
void script_set_user(struct script *s, void *user)
{
	s->user = user;
}
void *script_user(const struct script *s)
{
	return s->user;
}
void script_on_fault(struct script *s, script_fault_fn fn, void *ud)
{
	s->on_fault = fn;
	s->on_fault_ud = ud;
}

const char *script_state_name(enum script_state st)
{
	switch (st) {
	case SCRIPT_READY:
		return "ready";
	case SCRIPT_FAULTED:
		return "faulted";
	case SCRIPT_BROKEN:
		return "broken";
	}
	return "?";
}

const struct script_ruledecl *script_rule(const struct script *s)
{
	return s->rule.name ? &s->rule : NULL;
}

const struct script_manifest *script_manifest(const struct script *s)
{
	return s->man.name ? &s->man : NULL;
}

void script_stats(const struct script *s, struct script_stats *out)
{
	*out = s->st;
	out->mem_used = s->mem_used;
	out->mem_peak = s->mem_peak;
	out->mem_refused = s->mem_refused;
}

int script_handler(const struct script *s, const char *which)
{
	if (strcmp(which, "when") == 0)
		return s->ref_when;
	if (strcmp(which, "run") == 0)
		return s->ref_run;
	if (strcmp(which, "init") == 0)
		return s->ref_init;
	if (strcmp(which, "fini") == 0)
		return s->ref_fini;
	return LUA_NOREF;
}

const char *script_source(const struct script *s, size_t *len)
{
	if (len)
		*len = s->src_len;
	return s->src ? s->src : "";
}

/* ---- msgpack <-> Lua ---- */

static void push_mp(lua_State *L, const msgpack_object *o, int depth)
{
	if (depth > MP_DEPTH)
		luaL_error(L, "value nested deeper than %d", MP_DEPTH);
	luaL_checkstack(L, 3, "value too deep");
	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		lua_pushnil(L);
		break;
	case MSGPACK_OBJECT_BOOLEAN:
		lua_pushboolean(L, o->via.boolean);
		break;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		if (o->via.u64 > (uint64_t)LUA_MAXINTEGER)
			lua_pushnumber(L, (lua_Number)o->via.u64);
		else
			lua_pushinteger(L, (lua_Integer)o->via.u64);
		break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		lua_pushinteger(L, (lua_Integer)o->via.i64);
		break;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		lua_pushnumber(L, (lua_Number)o->via.f64);
		break;
	case MSGPACK_OBJECT_STR:
		lua_pushlstring(L, o->via.str.ptr, o->via.str.size);
		break;
	case MSGPACK_OBJECT_BIN:
		lua_pushlstring(L, o->via.bin.ptr, o->via.bin.size);
		break;
	case MSGPACK_OBJECT_ARRAY:
		lua_createtable(L, (int)o->via.array.size, 0);
		for (uint32_t i = 0; i < o->via.array.size; i++) {
			push_mp(L, &o->via.array.ptr[i], depth + 1);
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
		if (!o->via.array.size) { /* stays a list when packed again (linli.array) */
			lua_rawgetp(L, LUA_REGISTRYINDEX, &K_ARRAY);
			lua_setmetatable(L, -2);
		}
		break;
	case MSGPACK_OBJECT_MAP:
		lua_createtable(L, 0, (int)o->via.map.size);
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			const msgpack_object_kv *kv = &o->via.map.ptr[i];
			if (kv->key.type == MSGPACK_OBJECT_NIL)
				continue; /* a nil key cannot be a table key */
			push_mp(L, &kv->key, depth + 1);
			push_mp(L, &kv->val, depth + 1);
			lua_rawset(L, -3);
		}
		break;
	default:
		luaL_error(L, "cannot convert a msgpack extension value");
	}
}

void script_push_mp(lua_State *L, const msgpack_object *o)
{
	push_mp(L, o, 0);
}

/*
 * Packing a script's value is work a script sizes: three small tables that
 * share each other expanded to a 1 GB payload. So every value visited is
 * charged (script_charge_soft: the callers hold buffers a Lua error would
 * leak), the bytes written are counted against the destination's cap and
 * packing stops the moment it is passed, before a long string is copied;
 * and a table met again among its own ancestors is a cycle, refused. A
 * table that appears twice side by side is packed (and charged) twice.
 */
#define PACK_BATCH 256 /* units charged at a time */

struct packctx {
	lua_State *L;
	msgpack_packer out; /* writes through pack_write into *dst */
	msgpack_packer *dst;
	size_t written, max;
	bool over;	  /* max passed: nothing more is written */
	bool stopped;	  /* the invocation was stopped while packing */
	uint64_t pending; /* units not charged yet */
	const void *anc[MP_DEPTH + 2]; /* the tables being packed, outermost first */
	int nanc;
	char *err;
	size_t errlen;
	char path[256];
};

static int pack_write(void *data, const char *buf, size_t len)
{
	struct packctx *c = data;
	if (c->over || len > c->max - c->written) {
		c->over = true;
		return -1;
	}
	c->written += len;
	return c->dst->callback(c->dst->data, buf, len);
}

/* Charge units (in batches); false once the invocation is stopped. */
static bool pack_visit(struct packctx *c, uint64_t units)
{
	c->pending += units;
	if (c->pending < PACK_BATCH)
		return true;
	uint64_t u = c->pending;
	c->pending = 0;
	if (script_charge_soft(c->L, u) != 0)
		c->stopped = true;
	return !c->stopped;
}

/* The error for a pack that was cut short (over the cap, or stopped). */
static int pack_cut(struct packctx *c)
{
	if (c->stopped) {
		struct script *s = script_from_lua(c->L);
		return errf(c->err, c->errlen, LINLI_ELIMIT, "%s: %s", c->path,
			    s && s->inv.stop_msg[0] ? s->inv.stop_msg : "stopped");
	}
	return errf(c->err, c->errlen, LINLI_E2BIG,
		    "%s: the value is larger than %zu KiB once packed, the most it may be",
		    c->path, c->max >> 10);
}

static int pack_val(lua_State *L, int idx, struct packctx *c, int depth);

/* Is the table at idx a sequence 1..n with no other keys? n gets its length. */
static bool is_array(lua_State *L, int idx, size_t *n, size_t *keys)
{
	size_t len = lua_rawlen(L, idx), count = 0;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		count++;
		if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 ||
		    (size_t)lua_tointeger(L, -1) > len) {
			lua_pop(L, 1);
			*keys = count;
			return false;
		}
	}
	*n = len;
	*keys = count;
	return count == len && (len > 0 || marked_array(L, idx));
}

static int pack_table(lua_State *L, int idx, struct packctx *c, int depth)
{
	size_t plen = strlen(c->path), n, keys;
	const void *self = lua_topointer(L, idx);
	for (int i = 0; i < c->nanc; i++)
		if (c->anc[i] == self)
			return errf(c->err, c->errlen, LINLI_ETYPE,
				    "%s: a table that contains itself", c->path);
	c->anc[c->nanc++] = self;
	bool arr = is_array(L, idx, &n, &keys);
	if (!pack_visit(c, keys))
		return pack_cut(c);
	if (arr) {
		msgpack_pack_array(&c->out, n);
		for (size_t i = 1; i <= n; i++) {
			snprintf(c->path + plen, sizeof c->path - plen, "[%zu]", i);
			lua_rawgeti(L, idx, (lua_Integer)i);
			int rc = pack_val(L, lua_gettop(L), c, depth + 1);
			lua_pop(L, 1);
			if (rc)
				return rc;
		}
		c->path[plen] = '\0';
		c->nanc--;
		return 0;
	}
	size_t count = 0;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		count++;
	}
	if (!pack_visit(c, count))
		return pack_cut(c);
	msgpack_pack_map(&c->out, count);
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		int kt = lua_type(L, -2);
		if (kt == LUA_TSTRING) {
			size_t kl;
			const char *k = lua_tolstring(L, -2, &kl);
			snprintf(c->path + plen, sizeof c->path - plen, ".%s", k);
			msgpack_pack_str(&c->out, kl);
			msgpack_pack_str_body(&c->out, k, kl);
		} else if (kt == LUA_TNUMBER && lua_isinteger(L, -2)) {
			snprintf(c->path + plen, sizeof c->path - plen, "[%lld]",
				 (long long)lua_tointeger(L, -2));
			msgpack_pack_int64(&c->out, lua_tointeger(L, -2));
		} else {
			lua_pop(L, 2);
			return errf(c->err, c->errlen, LINLI_ETYPE,
				    "%s: keys must be strings or integers, not %s", c->path,
				    lua_typename(L, kt));
		}
		int rc = pack_val(L, lua_gettop(L), c, depth + 1);
		lua_pop(L, 1);
		if (rc) {
			lua_pop(L, 1);
			return rc;
		}
	}
	c->path[plen] = '\0';
	c->nanc--;
	return 0;
}

static int pack_val(lua_State *L, int idx, struct packctx *c, int depth)
{
	if (depth > MP_DEPTH)
		return errf(c->err, c->errlen, LINLI_E2BIG, "%s: nested deeper than %d", c->path,
			    MP_DEPTH);
	if (!lua_checkstack(L, 4))
		return errf(c->err, c->errlen, LINLI_ENOMEM, "%s: Lua stack exhausted", c->path);
	if (c->over || !pack_visit(c, 1))
		return pack_cut(c);
	switch (lua_type(L, idx)) {
	case LUA_TNIL:
		msgpack_pack_nil(&c->out);
		break;
	case LUA_TBOOLEAN:
		if (lua_toboolean(L, idx))
			msgpack_pack_true(&c->out);
		else
			msgpack_pack_false(&c->out);
		break;
	case LUA_TNUMBER:
		if (lua_isinteger(L, idx))
			msgpack_pack_int64(&c->out, lua_tointeger(L, idx));
		else
			msgpack_pack_double(&c->out, lua_tonumber(L, idx));
		break;
	case LUA_TSTRING: {
		size_t l;
		const char *v = lua_tolstring(L, idx, &l);
		if (l > c->max - c->written) { /* refused before a byte of it is copied */
			c->over = true;
			return pack_cut(c);
		}
		if (!pack_visit(c, l / 64))
			return pack_cut(c);
		msgpack_pack_str(&c->out, l);
		msgpack_pack_str_body(&c->out, v, l);
		break;
	}
	case LUA_TTABLE:
		return pack_table(L, idx, c, depth);
	default:
		return errf(c->err, c->errlen, LINLI_ETYPE, "%s: cannot convert a %s", c->path,
			    luaL_typename(L, idx));
	}
	return c->over ? pack_cut(c) : 0;
}

int script_pack_to(lua_State *L, int idx, msgpack_packer *pk, const char *what, size_t max,
		   char *err, size_t errlen)
{
	struct packctx c = {.L = L, .dst = pk, .max = max, .err = err, .errlen = errlen};
	msgpack_packer_init(&c.out, &c, pack_write);
	snprintf(c.path, sizeof c.path, "%s", what);
	int top = lua_gettop(L);
	int rc = pack_val(L, lua_absindex(L, idx), &c, 0);
	lua_settop(L, top);
	if (!rc && c.pending && script_charge_soft(L, c.pending) != 0) {
		c.stopped = true;
		rc = pack_cut(&c);
	}
	return rc;
}

int script_pack(lua_State *L, int idx, msgpack_packer *pk, char *err, size_t errlen)
{
	return script_pack_to(L, idx, pk, "value", SCRIPT_PACK_MAX, err, errlen);
}

/* ---- limits from the configuration ---- */

void script_limits_from_cfg(const struct cfg *c, const char *name, struct script_limits *out)
{
	out->memory = (size_t)c->lua.memory_kb << 10;
	out->instructions = (uint64_t)c->lua.instructions;
	out->time_ms = c->lua.time_ms;
	out->max_errors = c->lua.max_errors;
	for (int i = 0; name && i < c->n_lua_overrides; i++) {
		const struct cfg_lua_override *o = &c->lua_overrides[i];
		if (strcmp(o->script, name) != 0)
			continue;
		if (o->lim.memory_kb)
			out->memory = (size_t)o->lim.memory_kb << 10;
		if (o->lim.instructions)
			out->instructions = (uint64_t)o->lim.instructions;
		if (o->lim.time_ms)
			out->time_ms = o->lim.time_ms;
		if (o->lim.max_errors)
			out->max_errors = o->lim.max_errors;
	}
	fix_limits(out);
}

/* ---- the rules of a node ---- */

struct script_rules {
	const struct cfg *cfg;
	struct script_rules_ops ops;
	struct script **v;
	int n, cap;
};

struct script_rules *script_rules_new(const struct cfg *c, const struct script_rules_ops *ops)
{
	struct script_rules *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->cfg = c;
	if (ops)
		r->ops = *ops;
	return r;
}

static void detach(struct script_rules *r, struct script *s)
{
	if (r->ops.detach && s->state != SCRIPT_BROKEN)
		r->ops.detach(s, r->ops.ud);
}

void script_rules_free(struct script_rules *r)
{
	if (!r)
		return;
	for (int i = 0; i < r->n; i++) {
		detach(r, r->v[i]);
		script_free(r->v[i]);
	}
	free(r->v);
	free(r);
}

int script_rules_count(const struct script_rules *r)
{
	return r->n;
}

struct script *script_rules_at(const struct script_rules *r, int i)
{
	return i >= 0 && i < r->n ? r->v[i] : NULL;
}

static int index_of(const struct script_rules *r, const char *name)
{
	for (int i = 0; i < r->n; i++)
		if (strcmp(script_name(r->v[i]), name) == 0)
			return i;
	return -1;
}

struct script *script_rules_find(const struct script_rules *r, const char *name)
{
	int i = index_of(r, name);
	return i < 0 ? NULL : r->v[i];
}

static int append(struct script_rules *r, struct script *s)
{
	if (r->n == r->cap) {
		int cap = r->cap ? r->cap * 2 : 16;
		struct script **v = realloc(r->v, (size_t)cap * sizeof *v);
		if (!v)
			return LINLI_ENOMEM;
		r->v = v;
		r->cap = cap;
	}
	r->v[r->n++] = s;
	return 0;
}

static void rule_opts(const struct script_rules *r, struct script_opts *o)
{
	memset(o, 0, sizeof *o);
	o->kind = SCRIPT_RULE;
	o->scope = r->cfg->node_path;
	o->cfg = r->cfg;
	script_limits_from_cfg(r->cfg, NULL, &o->lim);
}

/* Attach a freshly loaded rule; on failure it is freed and the error returned. */
static int attach(struct script_rules *r, struct script *s, char *err, size_t errlen)
{
	if (!r->ops.attach)
		return 0;
	char why[768] = "";
	int rc = r->ops.attach(s, r->ops.ud, why, sizeof why);
	if (rc)
		errf(err, errlen, rc, "%s: cannot attach rule '%s': %s", s->file, script_name(s),
		     why[0] ? why : linli_strerror(rc));
	return rc;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Load one file found in a rules directory (at start). Returns 1 if it loaded. */
static int load_found(struct script_rules *r, const char *path)
{
	struct script_opts o;
	rule_opts(r, &o);
	struct script *s;
	char err[512];
	int rc = script_load_file(path, &o, &s, err, sizeof err);
	if (rc == 0 && index_of(r, script_name(s)) >= 0) {
		snprintf(err, sizeof err, "%s: rule '%s' is already declared by %s", path,
			 script_name(s), script_file(r->v[index_of(r, script_name(s))]));
		script_free(s);
		rc = LINLI_EEXIST;
	}
	if (rc == 0 && (rc = attach(r, s, err, sizeof err)) != 0)
		script_free(s);
	if (rc) {
		log_error("script", "rule not loaded: %s", err);
		s = broken_new(path, err);
		if (s && index_of(r, script_name(s)) >= 0) {
			/* Keep names unique: the broken entry goes by its path. */
			free(s->name);
			s->name = strdup(path);
		}
		if (!s || append(r, s) != 0)
			script_free(s);
		return 0;
	}
	if (append(r, s) != 0) {
		detach(r, s);
		script_free(s);
		return 0;
	}
	log_info("script", "rule %s loaded from %s (on %s)", script_name(s), path, s->rule.on);
	return 1;
}

int script_rules_load_dirs(struct script_rules *r)
{
	int loaded = 0;
	for (int d = 0; d < r->cfg->n_script_dirs; d++) {
		char dir[PATH_MAX];
		snprintf(dir, sizeof dir, "%s/rules", r->cfg->script_dirs[d]);
		DIR *dh = opendir(dir);
		if (!dh) {
			if (errno != ENOENT)
				log_warn("script", "cannot read %s: %s", dir, strerror(errno));
			continue;
		}
		char **names = NULL;
		int n = 0, cap = 0;
		struct dirent *de;
		while ((de = readdir(dh))) {
			size_t l = strlen(de->d_name);
			if (de->d_name[0] == '.' || l < 5 ||
			    strcmp(de->d_name + l - 4, ".lua") != 0)
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 16;
				char **nv = realloc(names, (size_t)cap * sizeof *nv);
				if (!nv)
					break;
				names = nv;
			}
			names[n++] = strdup(de->d_name);
		}
		closedir(dh);
		if (n > 1)
			qsort(names, (size_t)n, sizeof *names, cmp_str);
		for (int i = 0; i < n; i++) {
			char path[PATH_MAX];
			snprintf(path, sizeof path, "%s/%s", dir, names[i]);
			loaded += load_found(r, path);
			free(names[i]);
		}
		free(names);
	}
	return loaded;
}

int script_rules_check(struct script_rules *r, const char *file, const char *src, size_t len,
		       struct script **out, char *err, size_t errlen)
{
	struct script_opts o;
	rule_opts(r, &o);
	o.kind = SCRIPT_ANY;
	struct script *s;
	int rc = script_load(file, src, len, &o, &s, err, errlen);
	if (out && !rc)
		*out = s;
	else
		script_free(s);
	return rc;
}

/* Put `s` where entry i was (or at the end when i < 0), freeing the old one. */
static void swap_in(struct script_rules *r, int i, struct script *s)
{
	if (i >= 0) {
		detach(r, r->v[i]);
		script_free(r->v[i]);
		r->v[i] = s;
	} else if (append(r, s) != 0) {
		detach(r, s);
		script_free(s);
	}
}

/* Write src to path atomically (a temporary file, fsync, rename). */
int script_rules_install(struct script_rules *r, const char *file, const char *src, size_t len,
			 char *name_out, size_t namelen, char *err, size_t errlen)
{
	if (r->cfg->n_script_dirs == 0)
		return errf(err, errlen, LINLI_ESTATE,
			    "no script_dirs in the configuration: nowhere to install a rule");
	/* First pass: validate and learn the name. */
	struct script_opts o;
	rule_opts(r, &o);
	struct script *s;
	int rc = script_load(file, src, len, &o, &s, err, errlen);
	if (rc)
		return rc;
	char name[SCRIPT_NAME_MAX + 1];
	snprintf(name, sizeof name, "%s", script_name(s));
	script_free(s);
	int i = index_of(r, name);
	char path[PATH_MAX];
	if (i >= 0)
		snprintf(path, sizeof path, "%s", script_file(r->v[i]));
	else {
		char dir[PATH_MAX];
		snprintf(dir, sizeof dir, "%s/rules", r->cfg->script_dirs[0]);
		if (mkdirs(dir, 0750) != 0)
			return errf(err, errlen, LINLI_EIO, "cannot create %s: %s", dir,
				    strerror(errno));
		snprintf(path, sizeof path, "%s/%s.lua", dir, name);
	}
	/* Second pass: the state that will run, named by its installed path. */
	if ((rc = script_load(path, src, len, &o, &s, err, errlen)) != 0)
		return rc;
	if ((rc = attach(r, s, err, errlen)) != 0) {
		script_free(s);
		return rc;
	}
	if ((rc = write_file_atomic(path, src, len, 0640, err, errlen)) != 0) {
		detach(r, s);
		script_free(s);
		return rc;
	}
	swap_in(r, i, s);
	snprintf(name_out, namelen, "%s", name);
	log_info("script", "rule %s installed as %s", name, path);
	return 0;
}

static int reload_one(struct script_rules *r, int i, char *err, size_t errlen)
{
	struct script *old = r->v[i];
	struct script_opts o;
	rule_opts(r, &o);
	struct script *s;
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s", script_file(old));
	int rc = script_load_file(path, &o, &s, err, errlen);
	if (rc == 0 && strcmp(script_name(s), script_name(old)) != 0 &&
	    index_of(r, script_name(s)) >= 0) {
		rc = errf(err, errlen, LINLI_EEXIST, "%s: rule '%s' is already declared by %s",
			  path, script_name(s), script_file(r->v[index_of(r, script_name(s))]));
		script_free(s);
	}
	if (rc == 0 && (rc = attach(r, s, err, errlen)) != 0)
		script_free(s);
	if (rc) {
		char m[600];
		snprintf(m, sizeof m, "reload refused, the old version keeps running: %s", err);
		add_log(old, false, m);
		log_warn("script", "%s", m);
		return rc;
	}
	swap_in(r, i, s);
	log_info("script", "rule %s reloaded from %s", script_name(s), path);
	return 0;
}

int script_rules_reload(struct script_rules *r, const char *name, char *err, size_t errlen)
{
	if (name) {
		int i = index_of(r, name);
		if (i < 0)
			return errf(err, errlen, LINLI_ENOENT, "no rule named '%s'", name);
		return reload_one(r, i, err, errlen);
	}
	int first = 0;
	size_t used = 0;
	if (errlen)
		err[0] = '\0';
	for (int i = 0; i < r->n; i++) {
		char e[512];
		int rc = reload_one(r, i, e, sizeof e);
		if (rc && !first)
			first = rc;
		if (rc && used < errlen)
			used += (size_t)snprintf(err + used, errlen - used, "%s%s",
						 used ? "; " : "", e);
	}
	return first;
}

int script_rules_remove(struct script_rules *r, const char *name, char *err, size_t errlen)
{
	int i = index_of(r, name);
	if (i < 0)
		return errf(err, errlen, LINLI_ENOENT, "no rule named '%s'", name);
	struct script *s = r->v[i];
	if (unlink(script_file(s)) != 0 && errno != ENOENT)
		return errf(err, errlen, LINLI_EIO, "cannot delete %s: %s", script_file(s),
			    strerror(errno));
	detach(r, s);
	log_info("script", "rule %s removed (%s deleted)", script_name(s), script_file(s));
	script_free(s);
	memmove(&r->v[i], &r->v[i + 1], (size_t)(r->n - i - 1) * sizeof r->v[0]);
	r->n--;
	return 0;
}
