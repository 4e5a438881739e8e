/*
 * Unit tests of host/script.c and host/luastr.c: every escape attempt of the
 * issue is refused without harm (the host state stays usable and another
 * script still runs after each), limits stop endless loops, memory bombs,
 * pathological patterns and forever-yielding coroutines, declarations are
 * validated with file:line, and the bounded pattern matcher gives the same
 * results as stock Lua's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <lauxlib.h>
#include <lualib.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "linli/error.h"
#include "log.h"
#include "script.h"

#define SCRIPTS SRCDIR "/tests/scripts/"

static const struct script_limits test_lim = {
    .memory = 4 << 20, .instructions = 1000000, .time_ms = 2000, .max_errors = 3};

static uint64_t ms_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct script *load_with(const char *file, const char *src, const struct script_limits *l,
				int want_rc, const char *want_err)
{
	struct script_opts o = {.kind = SCRIPT_ANY, .scope = "hefei/baohe", .lim = *l};
	struct script *s = NULL;
	char err[1024] = "";
	int rc = script_load(file, src, strlen(src), &o, &s, err, sizeof err);
	if (rc != want_rc || (want_err && !strstr(err, want_err)))
		fail_msg("load %s: rc %d (want %d), err '%s' (want '%s')", file, rc, want_rc, err,
			 want_err ? want_err : "");
	return s;
}

static struct script *load_str(const char *src)
{
	return load_with("t.lua", src, &test_lim, 0, NULL);
}

static struct script *load_script(const char *name, const struct script_limits *l)
{
	char path[512];
	snprintf(path, sizeof path, SCRIPTS "%s", name);
	struct script_opts o = {.kind = SCRIPT_RULE, .scope = "hefei/baohe", .lim = *l};
	struct script *s = NULL;
	char err[1024] = "";
	int rc = script_load_file(path, &o, &s, err, sizeof err);
	if (rc)
		fail_msg("load %s: %s", name, err);
	return s;
}

/* An event from JSON-ish pairs: {"kind": kind, "value": value, extra int fields}. */
struct ev {
	msgpack_sbuffer sb;
	msgpack_unpacked up;
};

static const msgpack_object *ev_make(struct ev *e, const char *kind, int value, const char *k2,
				     int v2)
{
	msgpack_packer pk;
	msgpack_sbuffer_init(&e->sb);
	msgpack_packer_init(&pk, &e->sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, k2 ? 3 : 2);
	msgpack_pack_str(&pk, 4);
	msgpack_pack_str_body(&pk, "kind", 4);
	msgpack_pack_str(&pk, strlen(kind));
	msgpack_pack_str_body(&pk, kind, strlen(kind));
	msgpack_pack_str(&pk, 5);
	msgpack_pack_str_body(&pk, "value", 5);
	msgpack_pack_int(&pk, value);
	if (k2) {
		msgpack_pack_str(&pk, strlen(k2));
		msgpack_pack_str_body(&pk, k2, strlen(k2));
		msgpack_pack_int(&pk, v2);
	}
	msgpack_unpacked_init(&e->up);
	size_t off = 0;
	msgpack_unpack_next(&e->up, e->sb.data, e->sb.size, &off);
	return &e->up.data;
}

static void ev_free(struct ev *e)
{
	msgpack_unpacked_destroy(&e->up);
	msgpack_sbuffer_destroy(&e->sb);
}

/* Run a rule's `run` (its when passes) with a small event; return rc, err filled. */
static int fire(struct script *s, const char *step, char *err, size_t errlen)
{
	struct ev e;
	bool matched, ran;
	msgpack_packer pk;
	msgpack_sbuffer_init(&e.sb);
	msgpack_packer_init(&pk, &e.sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, step ? 1 : 0);
	if (step) {
		msgpack_pack_str(&pk, 4);
		msgpack_pack_str_body(&pk, "step", 4);
		msgpack_pack_str(&pk, strlen(step));
		msgpack_pack_str_body(&pk, step, strlen(step));
	}
	msgpack_unpacked_init(&e.up);
	size_t off = 0;
	msgpack_unpack_next(&e.up, e.sb.data, e.sb.size, &off);
	err[0] = '\0';
	int rc = script_rule_eval(s, "test/escape", &e.up.data, false, &matched, &ran, err, errlen);
	ev_free(&e);
	return rc;
}

/* The witness rule still evaluates correctly (call number n). */
static void witness_ok(struct script *w, int n)
{
	struct ev e;
	bool matched, ran;
	char err[512] = "";
	int rc =
	    script_rule_eval(w, "dev/smoke/s1/event/alarm", ev_make(&e, "alarm", 20, "expect", n),
			     false, &matched, &ran, err, sizeof err);
	ev_free(&e);
	if (rc || !matched || !ran)
		fail_msg("witness call %d: rc %d matched %d ran %d: %s", n, rc, matched, ran, err);
	rc = script_rule_eval(w, "dev/smoke/s1/event/alarm", ev_make(&e, "alarm", 5, NULL, 0),
			      false, &matched, &ran, err, sizeof err);
	ev_free(&e);
	assert_int_equal(rc, 0);
	assert_false(matched);
	assert_false(ran);
}

struct escape {
	const char *file;
	const char *step; /* event.step, or NULL */
	int rc;		  /* expected result of the call */
	const char *msg;  /* substring of the error */
	bool faulted;	  /* marked faulted at once */
	struct script_limits lim;
};

#define L0                                                                                         \
	{                                                                                          \
		0                                                                                  \
	}

static const struct escape escapes[] = {
    {"escape_io.lua", NULL, LINLI_EINVAL, "global 'io'", false, L0},
    {"escape_os_execute.lua", NULL, LINLI_EINVAL, "field 'execute'", false, L0},
    {"escape_debug.lua", NULL, LINLI_EINVAL, "global 'debug'", false, L0},
    {"escape_loadlib.lua", NULL, LINLI_EINVAL, "global 'package'", false, L0},
    {"escape_require.lua", NULL, LINLI_EINVAL, "global 'require'", false, L0},
    {"escape_binary.lua", NULL, LINLI_EINVAL, "only text chunks", false, L0},
    {"escape_dump.lua", NULL, LINLI_EINVAL, "field 'dump'", false, L0},
    {"escape_api.lua", NULL, LINLI_EINVAL, "cannot change 'linli.log'", false, L0},
    {"escape_api_rawset.lua", NULL, LINLI_EINVAL, "host tables are read-only", false, L0},
    {"escape_api_global.lua", NULL, LINLI_EINVAL, "cannot assign to global 'linli'", false, L0},
    {"escape_string_lib.lua", NULL, LINLI_EINVAL, "cannot change 'string.upper'", false, L0},
    {"escape_setmetatable_g.lua", NULL, LINLI_EINVAL, "cannot change a protected metatable", false,
     L0},
    {"escape_getmetatable_string.lua", NULL, LINLI_EINVAL, "attempt to index a nil value", false,
     L0},
    {"escape_gc.lua", NULL, LINLI_EINVAL, "__gc metamethods are not allowed", false, L0},
    {"loop.lua", NULL, LINLI_ELIMIT, "loop.lua:1: instruction budget exhausted", true, L0},
    {"loop_pcall.lua", NULL, LINLI_ELIMIT, "instruction budget exhausted", true, L0},
    {"recursion.lua", NULL, 0, NULL, false, L0}, /* stack overflow or memory: see below */
    {"memory_concat.lua", NULL, LINLI_ENOMEM, "memory limit reached (4096 KiB)", true, L0},
    {"memory_rep.lua", NULL, LINLI_ENOMEM, "memory limit reached", true, L0},
    {"memory_table.lua", NULL, LINLI_ENOMEM, "memory limit reached", true, L0},
    {"memory_pcall.lua", NULL, LINLI_ELIMIT, "instruction budget exhausted", true, L0},
    {"pattern.lua", NULL, LINLI_ELIMIT, "instruction budget exhausted", true, L0},
    {"pattern.lua",
     NULL,
     LINLI_ELIMIT,
     "time limit exceeded (300 ms per call)",
     true,
     {.memory = 4 << 20, .instructions = 1000000000000ull, .time_ms = 300, .max_errors = 3}},
    {"pattern_gsub.lua", NULL, LINLI_ELIMIT, "budget exhausted", true, L0},
    {"coroutine_forever.lua", NULL, LINLI_ELIMIT, "instruction budget exhausted", true, L0},
    {"c_loops.lua", "move", LINLI_ELIMIT, "instruction budget exhausted", true, L0},
    {"c_loops.lua", "insert", LINLI_ELIMIT, "instruction budget exhausted", true, L0},
    {"c_loops.lua", "concat", LINLI_ELIMIT, "instruction budget exhausted", true, L0},
};

static void test_escapes(void **state)
{
	(void)state;
	struct script *w = load_script("witness.lua", &test_lim);
	int wn = 0;
	witness_ok(w, ++wn);
	for (size_t i = 0; i < sizeof escapes / sizeof escapes[0]; i++) {
		const struct escape *x = &escapes[i];
		const struct script_limits *l = x->lim.memory ? &x->lim : &test_lim;
		struct script *s = load_script(x->file, l);
		char err[1024];
		uint64_t t0 = ms_now();
		int rc = fire(s, x->step, err, sizeof err);
		uint64_t dt = ms_now() - t0;
		print_message("  %-32s %-6s rc %3d  %4llu ms  %s\n", x->file,
			      x->step ? x->step : "", rc, (unsigned long long)dt, err);
		if (strcmp(x->file, "recursion.lua") == 0) {
			/* Lua's stack limit or our memory cap, whichever comes first. */
			if (!(rc == LINLI_EINVAL && strstr(err, "stack overflow")) &&
			    !(rc == LINLI_ENOMEM && strstr(err, "memory limit")))
				fail_msg("recursion: rc %d: %s", rc, err);
		} else if (rc != x->rc || !strstr(err, x->msg))
			fail_msg("%s: rc %d (want %d): '%s' (want '%s')", x->file, rc, x->rc, err,
				 x->msg);
		/* Stopped within its wall-clock limit (plus slack for ASan and load). */
		if (dt > l->time_ms + 1500u)
			fail_msg("%s took %llu ms", x->file, (unsigned long long)dt);
		if (x->faulted) {
			assert_int_equal(script_state(s), SCRIPT_FAULTED);
			/* A faulted script is not called again. */
			assert_int_equal(fire(s, x->step, err, sizeof err), LINLI_ESTATE);
			assert_non_null(strstr(err, "is faulted"));
		} else if (x->rc == LINLI_EINVAL)
			assert_int_equal(script_state(s), SCRIPT_READY);
		/* The log has it, with file and line for errors raised in Lua code. */
		const struct script_logent *le[SCRIPT_LOG_MAX];
		int n = script_log(s, le, SCRIPT_LOG_MAX);
		assert_true(n >= 1);
		assert_non_null(strstr(le[n - 1]->msg, x->rc ? x->msg : ""));
		if (x->rc != LINLI_ENOMEM && strcmp(x->file, "recursion.lua") != 0)
			assert_non_null(strstr(le[n - 1]->where, x->file));
		script_free(s);
		witness_ok(w, ++wn);
		/* And a new script still loads and runs. */
		struct script *t = load_str(
		    "rule { name = 'fresh', on = 'test/escape', run = function() return 1 end }");
		assert_int_equal(fire(t, NULL, err, sizeof err), 0);
		script_free(t);
	}
	script_free(w);
}

/* The string-metatable script: its attack failed, and string methods still work. */
static void test_string_metatable_unchanged(void **state)
{
	(void)state;
	struct script *s = load_script("escape_getmetatable_string.lua", &test_lim);
	char err[512];
	assert_int_equal(fire(s, NULL, err, sizeof err), LINLI_EINVAL);
	bool matched, ran;
	struct ev e;
	assert_int_equal(script_rule_eval(s, "test/escape", ev_make(&e, "x", 1, NULL, 0), true,
					  &matched, &ran, err, sizeof err),
			 0);
	ev_free(&e);
	assert_true(matched); /* ("x"):upper() is still "X" */
	script_free(s);
}

static void test_globals_separate(void **state)
{
	(void)state;
	struct script *a = load_script("globals_a.lua", &test_lim);
	struct script *b = load_script("globals_b.lua", &test_lim);
	char err[512];
	bool matched, ran;
	struct ev e;
	assert_int_equal(script_rule_eval(a, "test/globals", ev_make(&e, "x", 1, NULL, 0), true,
					  &matched, &ran, err, sizeof err),
			 0);
	ev_free(&e);
	assert_false(matched); /* a has not run yet */
	/* a's when is false, so run it directly. */
	assert_int_equal(
	    script_call(a, script_handler(a, "run"), NULL, NULL, 0, NULL, NULL, err, sizeof err),
	    0);
	assert_int_equal(fire(b, NULL, err, sizeof err), 0); /* b sees none of a's globals */
	assert_int_equal(script_rule_eval(a, "test/globals", ev_make(&e, "x", 1, NULL, 0), true,
					  &matched, &ran, err, sizeof err),
			 0);
	ev_free(&e);
	assert_true(matched); /* and b's writes did not reach a */
	script_free(a);
	script_free(b);
}

static void test_endless_load(void **state)
{
	(void)state;
	char path[512];
	snprintf(path, sizeof path, SCRIPTS "endless_load.lua");
	struct script_opts o = {.kind = SCRIPT_RULE, .lim = test_lim};
	struct script *s;
	char err[512];
	assert_int_equal(script_load_file(path, &o, &s, err, sizeof err), LINLI_ELIMIT);
	assert_null(s);
	assert_non_null(strstr(err, "endless_load.lua:2: instruction budget exhausted"));
}

struct intr {
	struct script *s;
	int delay_ms;
};

static void *interrupter(void *arg)
{
	struct intr *i = arg;
	usleep((useconds_t)i->delay_ms * 1000);
	script_interrupt(i->s);
	return NULL;
}

/* Another thread stops a script whose limits would let it run for a minute. */
static void test_interrupt(void **state)
{
	(void)state;
	struct script_limits big = {
	    .memory = 4 << 20, .instructions = 1000000000000ull, .time_ms = 60000, .max_errors = 3};
	struct script *s =
	    load_with("t.lua",
		      "rule { name = 'spin', on = 'test/escape', run = function()\n"
		      "  while true do pcall(string.find, ('a'):rep(20000), '.-.-.-b') end\n"
		      "end }",
		      &big, 0, NULL);
	struct intr in = {s, 150};
	pthread_t th;
	pthread_create(&th, NULL, interrupter, &in);
	char err[512];
	uint64_t t0 = ms_now();
	int rc = fire(s, NULL, err, sizeof err);
	uint64_t dt = ms_now() - t0;
	pthread_join(th, NULL);
	assert_int_equal(rc, LINLI_ELIMIT);
	assert_non_null(strstr(err, "interrupted"));
	assert_true(dt < 5000);
	assert_int_equal(script_state(s), SCRIPT_FAULTED);
	script_free(s);
}

/* ---- declarations ---- */

struct bad {
	const char *src;
	int rc;
	const char *err;
};

static const struct bad bad_decls[] = {
    {"rule { on = 'a/b', run = function() end }", LINLI_EINVAL, "t.lua:1: rule: missing name"},
    {"\n\nrule {\n name = 'Bad-Name', on = 'a', run = print }", LINLI_EINVAL,
     "t.lua:3: rule: name 'Bad-Name' must match"},
    {"rule { name = 'r', on = 'dev/#/x', run = function() end }", LINLI_EINVAL,
     "t.lua:1: rule 'r': on: bad topic pattern 'dev/#/x': '#' must be the last level"},
    {"rule { name = 'r', on = 'dev//x', run = function() end }", LINLI_EINVAL, "empty level"},
    {"rule { name = 'r', on = 'dev/a+/x', run = function() end }", LINLI_EINVAL,
     "'+' must be a whole level"},
    {"rule { name = 'r', run = function() end }", LINLI_EINVAL,
     "rule 'r': on must be a string (got nothing)"},
    {"rule { name = 'r', on = 'a/b', when = true, run = function() end }", LINLI_EINVAL,
     "rule 'r': when must be a function (got boolean)"},
    {"rule { name = 'r', on = 'a/b' }", LINLI_EINVAL,
     "rule 'r': run must be a function (got nothing)"},
    {"rule { name = 'r', on = 'a/b', run = 'x' }", LINLI_EINVAL,
     "run must be a function (got string)"},
    {"rule { name = 'r', on = 'a/b', whne = function() end, run = print }", LINLI_EINVAL,
     "rule 'r': unknown field 'whne'"},
    {"rule 'r'", LINLI_EINVAL, "table expected"},
    {"local x = 1\nrule { name = 'r', on = 'a/b', run = function(\n end", LINLI_EINVAL,
     "t.lua:3: "},
    {"x = = 1", LINLI_EINVAL, "t.lua:1: unexpected symbol near '='"},
    {"rule { name = 'r', on = 'a', run = print }\nrule { name = 's', on = 'a', run = print }",
     LINLI_EINVAL, "t.lua:2: rule { }: the file already declared rule 'r'"},
    {"x = 1", LINLI_EINVAL, "t.lua: declares nothing"},
    {"error('boom')", LINLI_EINVAL, "t.lua:1: boom"},
    {"rule { name = 'r', on = 'a', run = print, limits = { time_ms = 999999 } }", LINLI_EINVAL,
     "limits.time_ms = 999999 is above this node's limit 2000"},
    {"rule { name = 'r', on = 'a', run = print, limits = { cpu = 1 } }", LINLI_EINVAL,
     "limits: unknown field 'cpu'"},
    {"rule { name = 'r', on = 'a', run = print, limits = { memory_kb = 10 } }", LINLI_EINVAL,
     "at least 256"},
    {"rule { name = 'r', on = 'a', run = print, capabilities = { 'bus.publish' } }",
     LINLI_EINVAL, "t.lua:1: rule 'r': capabilities[1]: 'bus.publish' needs an argument"},
    {"rule { name = 'r', on = 'a', run = print, capabilities = { 'bus.publish:a/#/b' } }",
     LINLI_EINVAL, "rule 'r': capabilities[1]: capability 'bus.publish:a/#/b': 'a/#/b' is not a "
     "topic filter"},
    {"rule { name = 'r', on = 'a', run = print, capabilities = { 'fly:away' } }", LINLI_EINVAL,
     "rule 'r': capabilities[1]: unknown capability 'fly:away'"},
    {"rule { name = 'r', on = 'a', run = print, capabilities = { 1 } }", LINLI_EINVAL,
     "rule 'r': capabilities[1] must be a string"},
    {"rule { name = 'r', on = 'a', run = print, capabilities = 'bus.publish:a' }", LINLI_EINVAL,
     "rule 'r': capabilities must be a list of strings (got string)"},
    {"plugin { name = 'p', version = '1.0', sdk = '1.0', family = 'safety', description = 'd', "
     "capabilities = {} }",
     LINLI_EINVAL, "plugin 'p': version '1.0' must be MAJOR.MINOR.PATCH"},
    {"plugin { name = 'p', version = '1.0.0', sdk = '2.0', family = 'safety', description = "
     "'d', capabilities = {} }",
     LINLI_EINVAL, "plugin 'p': needs SDK 2.0, this host offers " LINLI_SDK_VERSION},
    {"plugin { name = 'p', version = '1.0.0', sdk = '1.0', family = 'fun', description = 'd', "
     "capabilities = {} }",
     LINLI_EINVAL, "family 'fun' is not one of"},
    {"plugin { name = 'p', version = '1.0.0', sdk = '1.0', family = 'safety', description = "
     "'d' }",
     LINLI_EINVAL, "capabilities must be a list of strings (got nothing); write {} for none"},
    {"plugin { name = 'p', version = '1.0.0', sdk = '1.0', family = 'safety', description = "
     "'d', capabilities = { 'store.read:residents', 'store.delete:x' } }",
     LINLI_EINVAL, "capabilities[2]: unknown capability 'store.delete:x'"},
    {"plugin { name = 'p', version = '1.0.0', sdk = '1.0', family = 'safety', description = "
     "'d', capabilities = { 'bus.subscribe:dev/#/x' } }",
     LINLI_EINVAL, "'dev/#/x' is not a topic filter"},
    {"plugin { name = 'p', version = '1.0.0', sdk = '1.0', family = 'safety', description = "
     "'d', capabilities = { 'store.read' } }",
     LINLI_EINVAL, "needs an argument"},
    {"plugin { name = 'p', version = '1.0.0', sdk = '1.0', family = 'safety', description = "
     "'d', capabilities = {}, requires = { 'Grid' } }",
     LINLI_EINVAL, "requires[1]: 'Grid' is not a plugin name"},
    {"plugin { name = 'p', version = '1.0.0', sdk = '1.0', family = 'safety', description = "
     "'d', capabilities = {}, init = 1 }",
     LINLI_EINVAL, "init must be a function (got number)"},
};

static void test_bad_declarations(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof bad_decls / sizeof bad_decls[0]; i++) {
		struct script *s = load_with("t.lua", bad_decls[i].src, &test_lim, bad_decls[i].rc,
					     bad_decls[i].err);
		assert_null(s);
	}
	/* The required kind is enforced. */
	struct script_opts o = {.kind = SCRIPT_APP, .lim = test_lim};
	struct script *s;
	char err[512];
	const char *r = "rule { name = 'r', on = 'a', run = print }";
	assert_int_equal(script_load("r.lua", r, strlen(r), &o, &s, err, sizeof err), LINLI_EINVAL);
	assert_non_null(strstr(err, "declares a rule where a plugin is expected"));
	/* Source size is limited. */
	char *big = malloc(SCRIPT_MAX_SOURCE + 2);
	memset(big, ' ', SCRIPT_MAX_SOURCE + 1);
	big[SCRIPT_MAX_SOURCE + 1] = '\0';
	assert_int_equal(
	    script_load("big.lua", big, SCRIPT_MAX_SOURCE + 1, &o, &s, err, sizeof err),
	    LINLI_E2BIG);
	free(big);
	/* A declaration outside loading is refused. */
	s = load_str("rule { name = 'r', on = 'a', run = function() rule { name = 'x' } end }");
	assert_int_equal(fire(s, NULL, err, sizeof err), LINLI_EINVAL);
	assert_non_null(strstr(err, "may only be called while the file loads"));
	script_free(s);
}

static void test_manifest(void **state)
{
	(void)state;
	struct script *s = load_str(
	    "local started = false\n"
	    "plugin {\n"
	    "  name = 'welfare', version = '0.2.1', sdk = '1.0', family = 'public_services',\n"
	    "  description = 'no water for 24 h',\n"
	    "  capabilities = { 'store.read:elders', 'bus.subscribe:dev/water_meter/#',\n"
	    "                   'net.connect' },\n"
	    "  requires = { 'alarms' },\n"
	    "  init = function() started = true end,\n"
	    "  limits = { time_ms = 100, memory_kb = 1024 },\n"
	    "}\n");
	const struct script_manifest *m = script_manifest(s);
	assert_non_null(m);
	assert_null(script_rule(s));
	assert_int_equal(script_kind(s), SCRIPT_APP);
	assert_string_equal(m->name, "welfare");
	assert_string_equal(m->version, "0.2.1");
	assert_string_equal(m->family, "public_services");
	assert_int_equal(m->n_capabilities, 3);
	assert_string_equal(m->capabilities[1], "bus.subscribe:dev/water_meter/#");
	assert_int_equal(m->n_requires, 1);
	assert_string_equal(m->requires[0], "alarms");
	assert_int_equal(script_limits(s)->time_ms, 100);
	assert_int_equal(script_limits(s)->memory, 1024 << 10);
	assert_int_equal(script_limits(s)->instructions, test_lim.instructions);
	assert_string_equal(script_scope(s), "hefei/baohe");
	char err[256];
	assert_int_equal(
	    script_call(s, script_handler(s, "init"), NULL, NULL, 0, NULL, NULL, err, sizeof err),
	    0);
	assert_int_equal(script_handler(s, "fini"), LUA_NOREF);
	script_free(s);
}

static void test_rule_capabilities(void **state)
{
	(void)state;
	struct script *s = load_str("rule { name = 'r', on = 'dev/+/alarm', run = print,\n"
				    "  capabilities = { 'bus.publish:alarm/#',\n"
				    "                   'store.read:elders' } }");
	const struct script_ruledecl *d = script_rule(s);
	assert_non_null(d);
	assert_int_equal(d->n_capabilities, 2);
	assert_string_equal(d->capabilities[0], "bus.publish:alarm/#");
	assert_string_equal(d->capabilities[1], "store.read:elders");
	script_free(s);
	s = load_str("rule { name = 'r', on = 'a', run = print }");
	assert_int_equal(script_rule(s)->n_capabilities, 0); /* optional: none */
	script_free(s);
	/* '*' for every dataset or class, as an admin may grant it. */
	s = load_str("rule { name = 'r', on = 'a', run = print,\n"
		     "  capabilities = { 'device.read:*', 'store.read:*' } }");
	assert_int_equal(script_rule(s)->n_capabilities, 2);
	assert_string_equal(script_rule(s)->capabilities[0], "device.read:*");
	script_free(s);
}

struct faults {
	int n;
	enum script_state state_seen;
};

static void on_fault(struct script *s, void *ud)
{
	struct faults *f = ud;
	f->n++;
	f->state_seen = script_state(s);
}

/* The owner hears of a fault once, from inside the call that faulted; not of a failed load. */
static void test_fault_hook(void **state)
{
	(void)state;
	struct faults f = {0};
	struct script *s = load_str("rule { name = 'r', on = 'a', run = function(e)\n"
				    "  if e.step == 'loop' then while true do end end\n"
				    "  if e.step == 'err' then error('no') end end }");
	script_on_fault(s, on_fault, &f);
	char err[512];
	assert_int_equal(fire(s, "err", err, sizeof err), LINLI_EINVAL);
	assert_int_equal(f.n, 0);
	assert_int_equal(fire(s, "loop", err, sizeof err), LINLI_ELIMIT);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.state_seen, SCRIPT_FAULTED);
	assert_int_equal(fire(s, "loop", err, sizeof err), LINLI_ESTATE);
	assert_int_equal(f.n, 1);
	script_free(s);
	/* max_errors failures in a row fault too. */
	s = load_str("rule { name = 'r', on = 'a', run = function() error('no') end }");
	script_on_fault(s, on_fault, &f);
	for (int i = 0; i < 3; i++)
		fire(s, NULL, err, sizeof err);
	assert_int_equal(f.n, 2);
	script_free(s);
}

static void test_runtime_errors_fault(void **state)
{
	(void)state;
	struct script *s = load_str("rule { name = 'r', on = 'a/+',\n"
				    "  when = function(e) return e.missing.field end,\n"
				    "  run = print }");
	char err[512];
	bool matched, ran;
	struct ev e;
	for (int i = 1; i <= 3; i++) {
		int rc = script_rule_eval(s, "a/b", ev_make(&e, "x", 1, NULL, 0), false, &matched,
					  &ran, err, sizeof err);
		ev_free(&e);
		assert_int_equal(rc, LINLI_EINVAL);
		assert_non_null(
		    strstr(err, "t.lua:2: attempt to index a nil value (field 'missing')"));
		assert_int_equal(script_state(s), i < 3 ? SCRIPT_READY : SCRIPT_FAULTED);
	}
	assert_non_null(strstr(script_fault(s), "3 failed calls in a row"));
	const struct script_logent *le[SCRIPT_LOG_MAX];
	assert_int_equal(script_log(s, le, SCRIPT_LOG_MAX), 3);
	assert_string_equal(le[0]->where, "t.lua:2");
	assert_false(le[0]->fault);
	assert_true(le[2]->fault);
	struct script_stats st;
	script_stats(s, &st);
	assert_int_equal(st.calls, 3);
	assert_int_equal(st.errors, 3);
	assert_int_equal(st.faults, 1);
	script_free(s);

	/* A success in between resets the count. */
	s = load_str("n = 0\nrule { name = 'r', on = 'a', run = function()\n"
		     "  n = n + 1; if n % 2 == 0 then error('even') end end }");
	for (int i = 0; i < 10; i++)
		fire(s, NULL, err, sizeof err);
	assert_int_equal(script_state(s), SCRIPT_READY);
	script_free(s);
}

/* Log lines and a fault carry the jurisdiction of the event they came from. */
static void test_log_scope(void **state)
{
	(void)state;
	struct script *s = load_str("rule { name = 'r', on = 'a/+',\n"
				    "  run = function(e) error('saw ' .. e.kind) end }");
	char err[512];
	bool matched, ran;
	struct ev e;
	const char *scopes[] = {"hefei/baohe/binhu/yuelan", "hefei/baohe/binhu/yuelan2", NULL};
	for (int i = 0; i < 3; i++) {
		script_set_call_scope(s, scopes[i]);
		script_rule_eval(s, "a/b", ev_make(&e, "tag", 1, NULL, 0), false, &matched, &ran,
				 err, sizeof err);
		ev_free(&e);
	}
	script_set_call_scope(s, NULL);
	const struct script_logent *le[SCRIPT_LOG_MAX];
	assert_int_equal(script_log(s, le, SCRIPT_LOG_MAX), 3);
	assert_string_equal(le[0]->scope, scopes[0]);
	assert_string_equal(le[1]->scope, scopes[1]);
	assert_string_equal(le[2]->scope, ""); /* the node's own work */
	assert_string_equal(script_fault_scope(s), "");
	script_free(s);

	/* The fault names the event's jurisdiction of the call that faulted. */
	s = load_str("rule { name = 'r', on = 'a', limits = { max_errors = 1 },\n"
		     "  run = function() error('no') end }");
	script_set_call_scope(s, scopes[1]);
	fire(s, NULL, err, sizeof err);
	script_set_call_scope(s, NULL);
	assert_int_equal(script_state(s), SCRIPT_FAULTED);
	assert_string_equal(script_fault_scope(s), scopes[1]);
	script_stop(s, "again"); /* a no-op: it is faulted already */
	assert_string_equal(script_fault_scope(s), scopes[1]);
	script_free(s);
}

/* Events in: nested maps and arrays; values out: script_pack. */
static void test_values(void **state)
{
	(void)state;
	struct script *s =
	    load_str("rule { name = 'r', on = 'a',\n"
		     "  when = function(e) return e.kind == 'alarm' and e.value > 10 and\n"
		     "    e.nested.list[2] == 'b' and #e.nested.list == 3 and e.f == 1.5 and\n"
		     "    e.neg == -7 and e.yes == true and e.nested.list[3] == 3 end,\n"
		     "  run = print }");
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 6);
	msgpack_pack_str(&pk, 4);
	msgpack_pack_str_body(&pk, "kind", 4);
	msgpack_pack_str(&pk, 5);
	msgpack_pack_str_body(&pk, "alarm", 5);
	msgpack_pack_str(&pk, 5);
	msgpack_pack_str_body(&pk, "value", 5);
	msgpack_pack_uint64(&pk, 11);
	msgpack_pack_str(&pk, 1);
	msgpack_pack_str_body(&pk, "f", 1);
	msgpack_pack_double(&pk, 1.5);
	msgpack_pack_str(&pk, 3);
	msgpack_pack_str_body(&pk, "neg", 3);
	msgpack_pack_int64(&pk, -7);
	msgpack_pack_str(&pk, 3);
	msgpack_pack_str_body(&pk, "yes", 3);
	msgpack_pack_true(&pk);
	msgpack_pack_str(&pk, 6);
	msgpack_pack_str_body(&pk, "nested", 6);
	msgpack_pack_map(&pk, 1);
	msgpack_pack_str(&pk, 4);
	msgpack_pack_str_body(&pk, "list", 4);
	msgpack_pack_array(&pk, 3);
	msgpack_pack_str(&pk, 1);
	msgpack_pack_str_body(&pk, "a", 1);
	msgpack_pack_str(&pk, 1);
	msgpack_pack_str_body(&pk, "b", 1);
	msgpack_pack_int(&pk, 3);
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	size_t off = 0;
	msgpack_unpack_next(&up, sb.data, sb.size, &off);
	bool matched, ran;
	char err[256];
	assert_int_equal(script_rule_eval(s, "a", &up.data, true, &matched, &ran, err, sizeof err),
			 0);
	assert_true(matched);
	assert_false(ran);
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&sb);
	script_free(s);

	/* script_pack on a plain state. */
	lua_State *L = luaL_newstate();
	*(struct script **)lua_getextraspace(L) = NULL; /* no script: nothing is charged */
	luaL_openlibs(L);
	(void)!luaL_dostring(
	    L, "return { 1, 2, 'x' }, { a = { b = true }, [7] = 1.5 }, { f = print }, "
	       "(function() local t = {} t.t = t return t end)()");
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (script_pack(L, 1, &pk, err, sizeof err) != 0)
		fail_msg("pack 1: %s", err);
	if (script_pack(L, 2, &pk, err, sizeof err) != 0)
		fail_msg("pack 2: %s", err);
	msgpack_unpacked_init(&up);
	off = 0;
	msgpack_unpack_next(&up, sb.data, sb.size, &off);
	assert_int_equal(up.data.type, MSGPACK_OBJECT_ARRAY);
	assert_int_equal(up.data.via.array.size, 3);
	msgpack_unpack_next(&up, sb.data, sb.size, &off);
	assert_int_equal(up.data.type, MSGPACK_OBJECT_MAP);
	assert_int_equal(up.data.via.map.size, 2);
	msgpack_unpacked_destroy(&up);
	assert_int_equal(script_pack(L, 3, &pk, err, sizeof err), LINLI_ETYPE);
	assert_string_equal(err, "value.f: cannot convert a function");
	assert_int_equal(script_pack(L, 4, &pk, err, sizeof err), LINLI_ETYPE);
	assert_string_equal(err, "value.t: a table that contains itself");
	assert_int_equal(lua_gettop(L), 4);
	msgpack_sbuffer_destroy(&sb);
	lua_close(L);
}

static void test_topics(void **state)
{
	(void)state;
	char why[128];
	assert_true(script_topic_valid("dev/smoke/+/event/alarm", true, why, sizeof why));
	assert_true(script_topic_valid("#", true, why, sizeof why));
	assert_true(script_topic_valid("alarm/#", true, why, sizeof why));
	assert_false(script_topic_valid("alarm/+", false, why, sizeof why));
	assert_false(script_topic_valid("/a", true, why, sizeof why));
	assert_false(script_topic_valid("a/", true, why, sizeof why));
	assert_false(script_topic_valid("a b", true, why, sizeof why));
	assert_false(script_topic_valid("", true, why, sizeof why));
	assert_false(script_topic_valid("#/a", true, why, sizeof why));
	assert_true(script_topic_match("dev/smoke/+/event/alarm", "dev/smoke/s1/event/alarm"));
	assert_false(script_topic_match("dev/smoke/+/event/alarm", "dev/smoke/s1/event/clear"));
	assert_false(script_topic_match("dev/smoke/+/event/alarm", "dev/smoke/event/alarm"));
	assert_true(script_topic_match("dev/#", "dev/a/b/c"));
	assert_true(script_topic_match("dev/#", "dev/a"));
	assert_false(script_topic_match("dev/a", "dev/a/b"));
	assert_false(script_topic_match("dev/a/b", "dev/a"));
	assert_true(script_topic_match("+/+", "a/b"));
}

/* ---- the matcher against stock Lua ---- */

static const char probe_lua[] =
    "local function ser(...)\n"
    "  local t = table.pack(...)\n"
    "  local o = {}\n"
    "  for i = 1, t.n do o[i] = type(t[i]) .. ':' .. tostring(t[i]) end\n"
    "  return table.concat(o, ',')\n"
    "end\n"
    "local function clean(m) return (tostring(m):gsub('^[^:]*:%d+: ', '')) end\n"
    "function probe(s, p, init, repl)\n"
    "  local out = {}\n"
    "  local function try(name, f, ...)\n"
    "    local r = table.pack(pcall(f, ...))\n"
    "    if not r[1] then r[2] = clean(r[2]) end\n"
    "    out[#out + 1] = name .. '=' .. ser(table.unpack(r, 1, r.n))\n"
    "  end\n"
    "  try('find', string.find, s, p, init)\n"
    "  try('findplain', string.find, s, p, init, true)\n"
    "  try('match', string.match, s, p, init)\n"
    "  try('gsub', string.gsub, s, p, repl)\n"
    "  try('gsubn', string.gsub, s, p, repl, 2)\n"
    "  try('gsubf', string.gsub, s, p, function(...) return '[' .. ser(...) .. ']' end)\n"
    "  try('gsubt', string.gsub, s, p, { a = 'A', b = false, ab = 'X' })\n"
    "  try('gmatch', function()\n"
    "    local r, n = {}, 0\n"
    "    for a, b in string.gmatch(s, p, init) do\n"
    "      n = n + 1; if n > 200 then break end\n"
    "      r[#r + 1] = ser(a, b)\n"
    "    end\n"
    "    return table.concat(r, ';')\n"
    "  end)\n"
    "  return table.concat(out, '\\n')\n"
    "end\n";

struct probe_in {
	const char *s, *p, *repl;
	size_t ls;
	int init;
};

static int push_probe(lua_State *L, void *ud)
{
	struct probe_in *in = ud;
	lua_pushlstring(L, in->s, in->ls);
	lua_pushstring(L, in->p);
	lua_pushinteger(L, in->init);
	lua_pushstring(L, in->repl);
	return 4;
}

static void take_str(lua_State *L, int first, void *ud)
{
	char **out = ud;
	const char *v = lua_tostring(L, first);
	*out = strdup(v ? v : "(nil)");
}

static char *stock_probe(lua_State *L, struct probe_in *in)
{
	lua_getglobal(L, "probe");
	push_probe(L, in);
	if (lua_pcall(L, 4, 1, 0) != LUA_OK)
		fail_msg("stock probe: %s", lua_tostring(L, -1));
	char *r = strdup(lua_tostring(L, -1));
	lua_pop(L, 1);
	return r;
}

static char *ours_probe(struct script *s, int ref, struct probe_in *in)
{
	char *r = NULL, err[512];
	if (script_call(s, ref, push_probe, in, 1, take_str, &r, err, sizeof err) != 0)
		fail_msg("sandbox probe: %s", err);
	return r;
}

static void compare(lua_State *L, struct script *s, int ref, struct probe_in *in)
{
	char *a = stock_probe(L, in), *b = ours_probe(s, ref, in);
	if (strcmp(a, b) != 0)
		fail_msg("subject '%.*s' pattern '%s' init %d repl '%s':\nstock:\n%s\nours:\n%s",
			 (int)in->ls, in->s, in->p, in->init, in->repl, a, b);
	free(a);
	free(b);
}

static const char *const subjects[] = {
    "",
    "a",
    "hello world",
    "aaa",
    "abcabc",
    "  x = 12, y = -3.5 ",
    "THE (quick) fox",
    "f(a(b)c)d)",
    "key=value; k2=v2",
    "[[x]]",
    "a.b.c",
    "%d%%",
    "ab\tcd\nef",
    "caf\xc3\xa9",
    "aaab",
    "bbb aaa",
    "12ab34",
    "]]]",
    "x^y$z",
    "a-b-c",
    "THE (quick) (brown) fox",
};
static const char *const patterns[] = {
    "",
    "a",
    "^a",
    "a$",
    "^$",
    "l+",
    "l*",
    "l-",
    "l?",
    "o w",
    "%a+",
    "%d+",
    "%s",
    "%S+",
    "%w+",
    "%p",
    "%x+",
    "%u",
    "%l+",
    "%c",
    "%g+",
    "[%a_][%w_]*",
    "[^%s]+",
    "[a-c]+",
    "[]]",
    "[^]]",
    "[%]]",
    "[a-]",
    "[-a]",
    "(%w+)=(%w+)",
    "()a()",
    "(a)(b)?",
    "%b()",
    "%b[]",
    "%f[%a]%a+",
    "%f[%A]",
    "%f[%w]%w+%f[%W]",
    "(a)%1",
    "(%a)%1",
    "^(%s*)(.-)(%s*)$",
    "(h)(e)(l)(l)(o)",
    ".-b",
    ".-",
    "a.-c",
    "(.)(.)",
    "x^y",
    "%$",
    "%^",
    "[%^]",
    "a+$",
    "(()",
    ")",
    "%",
    "[a",
    "%b",
    "%b(",
    "%f",
    "%fa",
    "%1",
    "(a)%2",
    "%z",
    "%0",
    "((a)(b))",
    "[%w-]+",
    "[.]",
    "%.",
    "^%s*(.-)%s*$",
    "(%d+)",
    "%((%w+)%)",
    ".",
    "..",
    "^",
    "^^",
    "$$",
    "a*b*c*",
    "[%d%.%-]+",
    "(%a+)%s*(%a*)",
};
static const char *const repls[] = {"<%0>", "%1", "%2%1", "%%", "x%", "%x", "", "[%1]", "%9"};
static const int inits[] = {1, 0, -1, -3, 2, 5, 100, -100};

static void test_matcher_same_as_stock(void **state)
{
	(void)state;
	lua_State *L = luaL_newstate();
	luaL_openlibs(L);
	if (luaL_dostring(L, probe_lua) != LUA_OK)
		fail_msg("%s", lua_tostring(L, -1));
	char *src = malloc(sizeof probe_lua + 200);
	snprintf(src, sizeof probe_lua + 200, "%srule { name = 'probe', on = 'p', run = probe }\n",
		 probe_lua);
	struct script_limits lim = test_lim;
	lim.instructions = 100000000;
	struct script *s = load_with("probe.lua", src, &lim, 0, NULL);
	free(src);
	int ref = script_handler(s, "run");
	size_t nsub = sizeof subjects / sizeof subjects[0];
	size_t npat = sizeof patterns / sizeof patterns[0];
	int n = 0;
	for (size_t i = 0; i < nsub; i++)
		for (size_t j = 0; j < npat; j++) {
			struct probe_in in = {subjects[i], patterns[j], repls[(i + j) % 9],
					      strlen(subjects[i]), inits[(i * 7 + j) % 8]};
			compare(L, s, ref, &in);
			n++;
		}
	/* Embedded zeros. */
	struct probe_in z = {"a\0b\0c", "%z", "<%0>", 5, 1};
	compare(L, s, ref, &z);
	z.p = "b%z?c";
	compare(L, s, ref, &z);
	/* Random patterns over a small alphabet. */
	static const char alpha[] = "ab.%()[]^$*+-?dws1fA";
	unsigned seed = 12345;
	char pat[16], sub[24];
	for (int k = 0; k < 3000; k++) {
		int pl = (int)((seed = seed * 1103515245u + 12345u) >> 16) % 8;
		for (int c = 0; c < pl; c++)
			pat[c] = alpha[((seed = seed * 1103515245u + 12345u) >> 16) %
				       (sizeof alpha - 1)];
		pat[pl] = '\0';
		int sl = (int)((seed = seed * 1103515245u + 12345u) >> 16) % 20;
		for (int c = 0; c < sl; c++)
			sub[c] = "ab(c) [d]1%"[((seed = seed * 1103515245u + 12345u) >> 16) % 11];
		sub[sl] = '\0';
		struct probe_in in = {sub, pat, repls[k % 9], (size_t)sl, inits[k % 8]};
		compare(L, s, ref, &in);
		n++;
	}
	print_message("  %d subject/pattern pairs agree with stock Lua 5.4\n", n);
	script_free(s);
	lua_close(L);
}

/* Limits from the config, with overrides; and the config's own checks. */
static void test_config_limits(void **state)
{
	(void)state;
	struct cfg c;
	char err[512];
	const char *text =
	    "node = { path = \"hefei\"; level = \"city\"; };\n"
	    "data_dir = \"/d\";\n"
	    "lua = { memory_kb = 8192; instructions = 5000000; time_ms = 50;\n"
	    "  overrides = ( { script = \"big\"; memory_kb = 65536; time_ms = 1000; } );\n"
	    "};\n";
	assert_int_equal(cfg_load_string(&c, text, "t.cfg", NULL, err, sizeof err), 0);
	struct script_limits l;
	script_limits_from_cfg(&c, "small", &l);
	assert_int_equal(l.memory, 8192 << 10);
	assert_int_equal(l.instructions, 5000000);
	assert_int_equal(l.time_ms, 50);
	assert_int_equal(l.max_errors, 5);
	assert_int_equal(c.lua.max_timers, 256); /* node-wide defaults */
	assert_int_equal(c.lua.min_timer_ms, 10);
	assert_int_equal(c.lua.max_event_depth, 8);
	script_limits_from_cfg(&c, "big", &l);
	assert_int_equal(l.memory, 65536 << 10);
	assert_int_equal(l.time_ms, 1000);
	assert_int_equal(l.instructions, 5000000);
	/* A rule named "big" gets the override when it declares itself. */
	struct script_opts o = {.kind = SCRIPT_RULE, .cfg = &c};
	script_limits_from_cfg(&c, NULL, &o.lim);
	struct script *s;
	const char *src = "rule { name = 'big', on = 'a', run = print }";
	assert_int_equal(script_load("b.lua", src, strlen(src), &o, &s, err, sizeof err), 0);
	assert_int_equal(script_limits(s)->time_ms, 1000);
	script_free(s);
	cfg_free(&c);

	static const struct {
		const char *lua, *want;
	} bad[] = {
	    {"lua = { memory_kb = 10; };", "t.cfg:3: lua.memory_kb: 10 is outside 256.."},
	    {"lua = { time_ms = \"fast\"; };", "t.cfg:3: lua.time_ms: must be an integer"},
	    {"lua = { cpu = 1; };", "t.cfg:3: lua.cpu: unknown key"},
	    {"lua = { overrides = ( { memory_kb = 300; } ); };",
	     "lua.overrides[1]: needs script = \"name\""},
	    {"lua = { overrides = ( { script = \"a\"; cpu = 3; } ); };",
	     "lua.overrides[1]: unknown key 'cpu'"},
	    {"lua = { overrides = ( { script = \"a\"; time_ms = 0; } ); };",
	     "lua.overrides[1].time_ms: 0 is outside 1..60000"},
	    {"lua = { overrides = ( { script = \"a\"; }, { script = \"a\"; } ); };",
	     "lua.overrides[2]: script 'a' already has an override"},
	    {"lua = { max_timers = 0; };", "t.cfg:3: lua.max_timers: 0 is outside 1..100000"},
	    {"lua = { min_timer_ms = \"x\"; };", "t.cfg:3: lua.min_timer_ms: must be an integer"},
	    {"lua = { overrides = ( { script = \"a\"; max_timers = 3; } ); };",
	     "lua.overrides[1]: unknown key 'max_timers'"},
	    {"lua = { max_event_depth = 0; };",
	     "t.cfg:3: lua.max_event_depth: 0 is outside 1..255"},
	    {"lua = { max_event_depth = 1000; };",
	     "t.cfg:3: lua.max_event_depth: 1000 is outside 1..255"},
	    {"lua = { max_event_depth = true; };",
	     "t.cfg:3: lua.max_event_depth: must be an integer"},
	    {"lua = { overrides = ( { script = \"a\"; max_event_depth = 3; } ); };",
	     "lua.overrides[1]: unknown key 'max_event_depth'"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char t[512];
		snprintf(t, sizeof t,
			 "node = { path = \"hefei\"; level = \"city\"; };\n"
			 "data_dir = \"/d\";\n%s\n",
			 bad[i].lua);
		assert_int_equal(cfg_load_string(&c, t, "t.cfg", NULL, err, sizeof err),
				 LINLI_ECONFIG);
		if (!strstr(err, bad[i].want))
			fail_msg("'%s': got '%s', want '%s'", bad[i].lua, err, bad[i].want);
	}
}

/*
 * Work done inside one library C call is charged there and the deadline is
 * checked when it is (issue 14, item 1): each case loops on a C call that
 * allocates nothing, over strings of megabytes, with an instruction budget
 * too large to matter. Stock Lua only checks at the count hook, every 1000
 * VM instructions: 250 such calls ran 1.5-4 s past time_ms, and the sort
 * never ended. Each must now end with the time limit, soon after time_ms.
 */
#define C_CALL_TIME_MS	500u /* making 8 MB strings at load takes ~150 ms on a loaded VM */
#define C_CALL_SLACK_MS	300u /* the target is 50 ms: slack for ASan and a loaded machine */

static const struct {
	const char *name, *body; /* body: the run function's statements; `big` is 8 MB */
	const char *big;	 /* what big is made of (string.rep of it) */
} c_calls[] = {
    {"utf8.len", "while true do utf8.len(big) end", "a"},
    {"utf8.codepoint", "while true do utf8.codepoint(big, 1, 500000) end", "a"},
    {"utf8.offset", "while true do utf8.offset(big, 0, #big) end", "\\x80"},
    {"utf8.codes", "local f = utf8.codes(big) while true do f(big, 1) end", "\\x80"},
    {"tonumber", "while true do tonumber(big) end", "1"},
    {"tonumber base", "while true do tonumber(big, 16) end", "f"},
    {"string arithmetic", "while true do local x = big + 0 end", "1"},
    {"math", "while true do math.abs(big) end", "1"},
    {"string.char", "while true do pcall(string.char, big, big, big) end", "1"},
    /* An integer after 8 MB of blanks: each conversion scans them (ran 1.9 s over). */
    {"string.sub", "local n = big .. '1' while true do ('x'):sub(n) end", " "},
    {"load whitespace", "local ws = big:sub(1, 4 << 20) load(function() return ws end)", " "},
    {"load comment",
     "local n = 0 load(function() n = n + 1 if n == 1 then return '--[[' end return big end)", "x"},
    {"table.sort",
     "local s, t = big:sub(1, 1 << 20), {} for i = 1, 100000 do t[i] = s end table.sort(t)", "x"},
    {"table.sort with a function",
     "local s, t = big:sub(1, 1 << 20), {} for i = 1, 100000 do t[i] = s end\n"
     "table.sort(t, function(a, b) return a < b end)",
     "x"},
};

static void test_c_call_time(void **state)
{
	(void)state;
	const struct script_limits lim = {.memory = 64 << 20,
					  .instructions = 1000000000000ull,
					  .time_ms = C_CALL_TIME_MS,
					  .max_errors = 3};
	int bad = 0;
	for (size_t i = 0; i < sizeof c_calls / sizeof c_calls[0]; i++) {
		char src[1024];
		snprintf(src, sizeof src,
			 "local big = string.rep('%s', 1024):rep(8192)\n"
			 "rule { name = 'c', on = 'test/escape', run = function()\n%s\nend }\n",
			 c_calls[i].big, c_calls[i].body);
		struct script *s = load_with("c.lua", src, &lim, 0, NULL);
		char err[1024];
		uint64_t t0 = ms_now();
		int rc = fire(s, NULL, err, sizeof err);
		uint64_t dt = ms_now() - t0;
		print_message("  %-28s %5lld ms over the limit  %s\n", c_calls[i].name,
			      (long long)dt - (long long)C_CALL_TIME_MS, err);
		if (rc != LINLI_ELIMIT || !strstr(err, "time limit exceeded (500 ms per call)") ||
		    !strstr(err, "c.lua:")) {
			print_error("%s: rc %d: %s\n", c_calls[i].name, rc, err);
			bad++;
		} else if (dt > C_CALL_TIME_MS + C_CALL_SLACK_MS) {
			print_error("%s held the thread %llu ms (limit %u ms)\n", c_calls[i].name,
				    (unsigned long long)dt, C_CALL_TIME_MS);
			bad++;
		}
		assert_int_equal(script_state(s), SCRIPT_FAULTED);
		script_free(s);
	}
	assert_int_equal(bad, 0);
	/* The same sort at a file's top level: the load ends with the limit. */
	const char *top = "local s, t = string.rep('x', 1024):rep(1024), {}\n"
			  "for i = 1, 100000 do t[i] = s end\n"
			  "table.sort(t)\n"
			  "rule { name = 'c', on = 'a', run = print }\n";
	uint64_t t0 = ms_now();
	struct script *s = load_with("top.lua", top, &lim, LINLI_ELIMIT,
				     "top.lua:3: time limit exceeded (500 ms per call)");
	uint64_t dt = ms_now() - t0;
	print_message("  %-28s %5lld ms over the limit\n", "table.sort at load",
		      (long long)dt - (long long)C_CALL_TIME_MS);
	assert_null(s);
	if (dt > C_CALL_TIME_MS + C_CALL_SLACK_MS)
		fail_msg("the load held the thread %llu ms", (unsigned long long)dt);
}

/* The bounded sort sorts as the stock one does, and refuses what it refuses. */
static void test_sort_same_as_stock(void **state)
{
	(void)state;
	struct script *s = load_str(
	    "rule { name = 'r', on = 'test/escape', run = function()\n"
	    "  local function sorted(t, f)\n"
	    "    for i = 2, #t do\n"
	    "      if f then assert(not f(t[i], t[i - 1]))\n"
	    "      else assert(not (t[i] < t[i - 1]), i) end\n"
	    "    end\n"
	    "  end\n"
	    "  local t = {}\n"
	    "  for i = 1, 1000 do t[i] = (i * 7919) % 1009 end\n"
	    "  table.sort(t) sorted(t)\n"
	    "  table.sort(t, function(a, b) return a > b end)\n"
	    "  sorted(t, function(a, b) return a > b end)\n"
	    "  local w = {'pear', 'apple', 'fig', 'apple', 'kiwi'}\n"
	    "  table.sort(w) assert(table.concat(w, ',') == 'apple,apple,fig,kiwi,pear')\n"
	    "  local e = {} table.sort(e) local one = {5} table.sort(one) assert(one[1] == 5)\n"
	    "  local two = {2, 1} table.sort(two) assert(two[1] == 1 and two[2] == 2)\n"
	    "  local ok, msg = pcall(table.sort, {1, 'a', 2})\n"
	    "  assert(not ok and msg:find('attempt to compare'), msg)\n"
	    "  ok, msg = pcall(table.sort, {3, 2, 1}, 5)\n"
	    "  assert(not ok and msg:find('function expected'), msg)\n"
	    "  ok, msg = pcall(table.sort, 'x')\n"
	    "  assert(not ok and msg:find('table expected'), msg)\n"
	    "  local inconsistent = {}\n"
	    "  for i = 1, 100 do inconsistent[i] = i end\n"
	    "  pcall(table.sort, inconsistent, function() return true end)\n"
	    "  local mt = setmetatable({}, {__lt = function(a, b) return a.v < b.v end})\n"
	    "  local o = {} for i = 1, 50 do o[i] = setmetatable({v = (i * 37) % 50}, getmetatable(mt)) end\n"
	    "  table.sort(o) for i = 2, 50 do assert(o[i - 1].v <= o[i].v) end\n"
	    "  assert(#inconsistent == 100)\n"
	    "end }");
	char err[512];
	if (fire(s, NULL, err, sizeof err) != 0)
		fail_msg("%s", err);
	script_free(s);
}

/* linli.pack(v) -> bytes | nil, message, code: script_pack_to with a payload's cap. */
static int api_pack(lua_State *L)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	char err[512];
	int rc = script_pack_to(L, 1, &pk, "payload", 256 << 10, err, sizeof err);
	size_t size = sb.size;
	msgpack_sbuffer_destroy(&sb);
	if (rc) {
		lua_pushnil(L);
		lua_pushstring(L, err);
		lua_pushinteger(L, rc);
		return 3;
	}
	lua_pushinteger(L, (lua_Integer)size);
	return 1;
}

static void bind_pack(lua_State *L, struct script *s, void *ud)
{
	(void)s;
	(void)ud;
	lua_pushcfunction(L, api_pack);
	lua_setfield(L, -2, "pack");
}

/*
 * Packing is charged per value visited and stops at the destination's cap
 * (issue 14, item 2): three small tables sharing each other (1 GB once
 * expanded) are refused at 256 KiB at once; a cycle is named; a table that
 * appears twice is packed twice; the budget stops a pack of many values.
 */
static void test_pack_limits(void **state)
{
	(void)state;
	script_set_binder(bind_pack, NULL);
	char src[4096];
	snprintf(src, sizeof src,
		 "rule { name = 'p', on = 'test/escape', run = function(e)\n"
		 "  local n, msg, code\n"
		 "  local shared = {x = 1}\n"
		 "  n = assert(linli.pack({a = shared, b = shared, c = {shared, shared}}))\n"
		 "  assert(n == 1 + 3 * 2 + 4 + 4 + (1 + 4 + 4), n) -- {x = 1}: 4 bytes, each time\n"
		 "  local a = {b = {}} a.b.c = a\n"
		 "  n, msg, code = linli.pack(a)\n"
		 "  assert(msg == 'payload.b.c: a table that contains itself' and code == %d, msg)\n"
		 "  local l = {1, 2} l[3] = l\n"
		 "  n, msg = linli.pack({list = l})\n"
		 "  assert(msg == 'payload.list[3]: a table that contains itself', msg)\n"
		 "  local t1, t2, t3 = {}, {}, {}\n"
		 "  for i = 1, 1000 do t1[i] = string.rep('x', 1000) t2[i] = t1 t3[i] = t2 end\n"
		 "  n, msg, code = linli.pack({a = t3})\n"
		 "  assert(code == %d and msg:find('larger than 256 KiB once packed'), msg)\n"
		 "  assert(msg:find('^payload%%.a%%[1%%]%%['), msg)\n"
		 "  n, msg, code = linli.pack({s = string.rep('y', 300000)})\n"
		 "  assert(code == %d and msg:find('^payload.s: the value is larger'), msg)\n"
		 "  assert(linli.pack({s = string.rep('y', 200000)}))\n"
		 "  if e.step == 'budget' then\n"
		 "    local many = {} for i = 1, 30000 do many[i] = true end\n"
		 "    n, msg, code = linli.pack(many)\n"
		 "    error('not stopped: ' .. tostring(msg))\n"
		 "  end\n"
		 "end }",
		 LINLI_ETYPE, LINLI_E2BIG, LINLI_E2BIG);
	struct script_limits lim = test_lim;
	lim.memory = 32 << 20;
	struct script *s = load_with("p.lua", src, &lim, 0, NULL);
	script_set_binder(NULL, NULL);
	char err[512];
	uint64_t t0 = ms_now();
	if (fire(s, NULL, err, sizeof err) != 0)
		fail_msg("%s", err);
	uint64_t dt = ms_now() - t0;
	print_message("  pack checks (1 GB expansion included): %llu ms\n", (unsigned long long)dt);
	assert_true(dt < 1000);
	/* 30,000 values within a budget of 20,000 units: stopped, and the script faulted. */
	lim.instructions = 20000;
	script_set_binder(bind_pack, NULL);
	struct script *b = load_with("p.lua", src, &lim, 0, NULL);
	script_set_binder(NULL, NULL);
	assert_int_equal(fire(b, "budget", err, sizeof err), LINLI_ELIMIT);
	if (!strstr(err, "p.lua:") || !strstr(err, "instruction budget exhausted (20000 per call)"))
		fail_msg("budget: %s", err);
	assert_int_equal(script_state(b), SCRIPT_FAULTED);
	script_free(b);
	script_free(s);
}

/* ---- bindings: what the SDK table's Lua side will use ---- */

static int api_answer(lua_State *L)
{
	lua_pushinteger(L, 42);
	return 1;
}

/* Calls back into the calling script: must be refused, not run. */
static int api_reenter(lua_State *L)
{
	struct script *s = script_from_lua(L);
	char err[256];
	int rc =
	    script_call(s, script_handler(s, "run"), NULL, NULL, 0, NULL, NULL, err, sizeof err);
	lua_pushinteger(L, rc);
	lua_pushstring(L, err);
	return 2;
}

static void bind_test(lua_State *L, struct script *s, void *ud)
{
	(void)s;
	(void)ud;
	lua_pushcfunction(L, api_reenter);
	lua_setfield(L, -2, "reenter");
	lua_newtable(L);
	lua_pushcfunction(L, api_answer);
	lua_setfield(L, -2, "get");
	lua_setfield(L, -2, "store");
}

static void test_binder(void **state)
{
	(void)state;
	script_set_binder(bind_test, NULL);
	struct script *s = load_str(
	    "rule { name = 'r', on = 'a', run = function()\n"
	    "  assert(linli.store.get() == 42)\n"
	    "  assert(not pcall(function() linli.store.get = nil end))\n"
	    "  assert(not pcall(rawset, linli.store, 'put', print))\n"
	    "  assert(getmetatable(linli.store) == 'locked')\n"
	    "  local rc, msg = linli.reenter()\n"
	    "  assert(rc == -10 and msg:find('cannot be called from inside itself'), msg)\n"
	    "  local co = coroutine.wrap(function() return linli.reenter() end)\n"
	    "  assert(co() == -10)\n"
	    "end }");
	script_set_binder(NULL, NULL);
	char err[512];
	if (fire(s, NULL, err, sizeof err) != 0)
		fail_msg("%s", err);
	script_free(s);
}

static void test_print_and_log(void **state)
{
	(void)state;
	/* print and linli.log go to the host log; more than 100 lines per call are dropped. */
	struct script *s = load_str("rule { name = 'r', on = 'a', run = function()\n"
				    "  print('hello', 1, nil, {})\n"
				    "  linli.log('debug', 'x')\n"
				    "  assert(not pcall(linli.log, 'loud', 'x'))\n"
				    "  assert(linli.scope == 'hefei/baohe')\n"
				    "  for i = 1, 500 do linli.log('debug', i) end\n"
				    "end }");
	char err[256];
	assert_int_equal(fire(s, NULL, err, sizeof err), 0);
	script_free(s);
}

int main(void)
{
	log_set_level(LOG_ERROR);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_escapes),
	    cmocka_unit_test(test_string_metatable_unchanged),
	    cmocka_unit_test(test_globals_separate),
	    cmocka_unit_test(test_endless_load),
	    cmocka_unit_test(test_interrupt),
	    cmocka_unit_test(test_bad_declarations),
	    cmocka_unit_test(test_manifest),
	    cmocka_unit_test(test_rule_capabilities),
	    cmocka_unit_test(test_fault_hook),
	    cmocka_unit_test(test_runtime_errors_fault),
	    cmocka_unit_test(test_log_scope),
	    cmocka_unit_test(test_values),
	    cmocka_unit_test(test_topics),
	    cmocka_unit_test(test_matcher_same_as_stock),
	    cmocka_unit_test(test_config_limits),
	    cmocka_unit_test(test_print_and_log),
	    cmocka_unit_test(test_binder),
	    cmocka_unit_test(test_c_call_time),
	    cmocka_unit_test(test_sort_same_as_stock),
	    cmocka_unit_test(test_pack_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
