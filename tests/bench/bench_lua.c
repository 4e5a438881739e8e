/*
 * bench_lua — rule evaluations per second through the sandbox (an event as
 * msgpack in, converted to a table, `when` called under the hook, budget and
 * deadline, a boolean out) against the same Lua function called in a bare
 * loop with lua_pcall on a plain state with the same 3-field table built
 * directly. Prints lua.rule, lua.bare and lua.rule.ratio (target >= 0.5).
 */
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "log.h"
#include "script.h"

#define WHEN	"function(e, topic) return e.kind == 'alarm' and e.level > 3 and e.device ~= 'x' end"
#define TOPIC	"dev/smoke/s1/event/alarm"
#define ROUNDS	4
#define SECONDS 1.0

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void pack_str(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str(pk, strlen(s));
	msgpack_pack_str_body(pk, s, strlen(s));
}

static struct script *sb_script;
static msgpack_sbuffer sb_buf;
static msgpack_unpacked sb_event;

static void sandboxed_setup(void)
{
	const char *src = "rule { name = 'bench', on = 'dev/smoke/+/event/alarm', when = " WHEN
			  ", run = function() end }";
	struct script_opts o = {.kind = SCRIPT_RULE, .scope = "hefei/baohe/binhu/yuelan"};
	o.lim = (struct script_limits){SCRIPT_DEFAULT_MEMORY, SCRIPT_DEFAULT_INSTRUCTIONS,
				       SCRIPT_DEFAULT_TIME_MS, SCRIPT_DEFAULT_MAX_ERRORS};
	char err[512];
	if (script_load("bench.lua", src, strlen(src), &o, &sb_script, err, sizeof err) != 0) {
		fprintf(stderr, "bench_lua: %s\n", err);
		exit(1);
	}
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb_buf);
	msgpack_packer_init(&pk, &sb_buf, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 3);
	pack_str(&pk, "kind");
	pack_str(&pk, "alarm");
	pack_str(&pk, "level");
	msgpack_pack_int(&pk, 5);
	pack_str(&pk, "device");
	pack_str(&pk, "s1");
	msgpack_unpacked_init(&sb_event);
	size_t off = 0;
	msgpack_unpack_next(&sb_event, sb_buf.data, sb_buf.size, &off);
}

/* Evaluations per second of the sandboxed rule, one round. */
static double sandboxed(void)
{
	char err[512];
	double best = 0;
	{
		long n = 0, yes = 0;
		double t0 = now_s(), t;
		do {
			for (int i = 0; i < 1000; i++) {
				bool matched, ran;
				if (script_rule_eval(sb_script, TOPIC, &sb_event.data, true,
						     &matched, &ran, err, sizeof err) != 0) {
					fprintf(stderr, "bench_lua: %s\n", err);
					exit(1);
				}
				yes += matched;
			}
			n += 1000;
		} while ((t = now_s() - t0) < SECONDS);
		if (yes != n) {
			fprintf(stderr, "bench_lua: when returned false\n");
			exit(1);
		}
		best = n / t;
	}
	return best;
}

static lua_State *L;
static int ref;

static void bare_setup(void)
{
	L = luaL_newstate();
	luaL_openlibs(L);
	if (luaL_dostring(L, "return " WHEN) != LUA_OK) {
		fprintf(stderr, "bench_lua: %s\n", lua_tostring(L, -1));
		exit(1);
	}
	ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

/* The same function on a plain state, called with lua_pcall in a loop: one round. */
static double bare(void)
{
	double best = 0;
	{
		long n = 0, yes = 0;
		double t0 = now_s(), t;
		do {
			for (int i = 0; i < 1000; i++) {
				lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
				lua_createtable(L, 0, 3);
				lua_pushstring(L, "alarm");
				lua_setfield(L, -2, "kind");
				lua_pushinteger(L, 5);
				lua_setfield(L, -2, "level");
				lua_pushstring(L, "s1");
				lua_setfield(L, -2, "device");
				lua_pushstring(L, TOPIC);
				if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
					fprintf(stderr, "bench_lua: %s\n", lua_tostring(L, -1));
					exit(1);
				}
				yes += lua_toboolean(L, -1);
				lua_pop(L, 1);
			}
			n += 1000;
		} while ((t = now_s() - t0) < SECONDS);
		if (yes != n) {
			fprintf(stderr, "bench_lua: bare when returned false\n");
			exit(1);
		}
		best = n / t;
	}
	return best;
}

int main(void)
{
	log_set_level(LOG_ERROR);
	bare_setup();
	sandboxed_setup();
	double b = 0, s = 0;
	for (int r = 0; r < ROUNDS; r++) { /* interleaved: both see the same machine */
		double x = bare(), y = sandboxed();
		b = x > b ? x : b;
		s = y > s ? y : s;
	}
	lua_close(L);
	script_free(sb_script);
	msgpack_unpacked_destroy(&sb_event);
	msgpack_sbuffer_destroy(&sb_buf);
	printf("lua.bare: %.0f calls/s\n", b);
	printf("lua.rule: %.0f evaluations/s\n", s);
	printf("lua.rule.ratio: %.2f\n", s / b);
	return 0;
}
