/*
 * Unit tests of host/script_api.c with a real kernel queue and a real bus:
 * rules act through linli.* with the capabilities they declare (refused
 * otherwise, and outside the node's scope), tables become msgpack maps and
 * back, what a rule makes is released by detach and by a fault, an event for
 * a script that is running is queued, not lost, and a script that is still
 * loading (or never attached) may not act. With a real catalog, LMDB store
 * and HAL: devices are read and commanded within the jurisdiction only, a
 * command's answer runs the callback, and a rule that stops or faults is
 * never called back. store_on_commit calls back once the batch commits (later
 * when the rule is running then), never after the rule stopped or faulted;
 * a rule has no plugin_config and reads device_classes like a plugin.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus.h"
#include "catalog.h"
#include "cmd.h"
#include "config.h"
#include "hal.h"
#include "journal.h"
#include "json.h"
#include "kernel.h"
#include "linli/error.h"
#include "log.h"
#include "mp.h"
#include "record.h"
#include "script.h"
#include "script_api.h"
#include "store.h"

#define NODE                                                                                       \
	"node = { path = \"hefei/baohe\"; level = \"district\"; };\n"                              \
	"data_dir = \"/tmp/linli-test-script-api\";\n"

static const struct script_limits lim = {
    .memory = 4 << 20, .instructions = 1000000, .time_ms = 2000, .max_errors = 3};

/* What a C subscriber to "#" saw: topic, publisher and payload as JSON, one a line. */
struct seen {
	char text[8192];
	int n;
};

static int on_any(const struct bus_event *ev, void *ud)
{
	struct seen *s = ud;
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	size_t off = 0;
	char *js = NULL;
	if (msgpack_unpack_next(&up, ev->payload, ev->payload_len, &off) ==
	    MSGPACK_UNPACK_SUCCESS) {
		json_t *j = json_from_mp(&up.data);
		js = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		json_decref(j);
	}
	size_t used = strlen(s->text);
	snprintf(s->text + used, sizeof s->text - used, "%s %s %s\n", ev->topic, ev->publisher,
		 js ? js : "?");
	free(js);
	msgpack_unpacked_destroy(&up);
	s->n++;
	return 0;
}

struct env {
	struct kernel k;
	struct seen seen;
	uint64_t spy;
};

static struct env *env_new(void)
{
	struct env *e = calloc(1, sizeof *e);
	char err[512] = "";
	assert_int_equal(kernel_init(&e->k), 0);
	if (cfg_load_string(&e->k.cfg, NODE, "t.cfg", NULL, err, sizeof err))
		fail_msg("config: %s", err);
	e->k.cmds = cmd_registry_new();
	if (bus_open(&e->k, &e->k.bus, err, sizeof err))
		fail_msg("bus: %s", err);
	assert_int_equal(bus_subscribe(e->k.bus, "#", "", on_any, &e->seen, &e->seen, "spy",
				       &e->spy, err, sizeof err),
			 0);
	script_api_init(&e->k);
	return e;
}

static void env_free(struct env *e)
{
	bus_close(e->k.bus);
	cmd_registry_free(e->k.cmds);
	cfg_free(&e->k.cfg);
	kernel_destroy(&e->k);
	script_set_binder(NULL, NULL);
	free(e);
}

static int subs(struct env *e)
{
	struct bus_totals t;
	bus_get_totals(e->k.bus, &t);
	return t.subscriptions;
}

/* Load a rule and attach it as the node's rule, subscribed to its `on`. */
static struct script *rule(struct env *e, const char *src)
{
	struct script_opts o = {.kind = SCRIPT_RULE, .scope = e->k.cfg.node_path, .lim = lim};
	struct script *s = NULL;
	char err[1024] = "";
	if (script_load("r.lua", src, strlen(src), &o, &s, err, sizeof err))
		fail_msg("load: %s", err);
	assert_int_equal(script_api_attach(&e->k, s, NULL), 0);
	if (script_api_rule_on(s, err, sizeof err))
		fail_msg("on: %s", err);
	return s;
}

/* Run the rule for an event on `topic` with a JSON payload. */
static int fire(struct script *s, const char *topic, const char *json, char *err, size_t errlen)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	assert_int_equal(json_parse_to_mp(json, strlen(json), &pk, err, errlen), 0);
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	size_t off = 0;
	msgpack_unpack_next(&up, sb.data, sb.size, &off);
	bool matched, ran;
	err[0] = '\0';
	int rc = script_rule_eval(s, topic, &up.data, false, &matched, &ran, err, errlen);
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

static void must_fire(struct script *s, const char *topic, const char *json)
{
	char err[1024];
	if (fire(s, topic, json, err, sizeof err))
		fail_msg("%s: %s", topic, err);
}

/*
 * Run what the kernel queue holds until it is empty, without the batch-end
 * hooks or timers: a script's publish is delivered from there, after the
 * call that made it (BUS_PUB_LATER).
 */
static void run_posted(struct env *e)
{
	while (e->k.head) {
		struct kevent *b = e->k.head;
		e->k.head = e->k.tail = NULL;
		while (b) {
			struct kevent *n = b->next;
			b->fn(&e->k, b->arg);
			free(b);
			b = n;
		}
	}
}

/* Run what the kernel queue holds (and the timers that are due) once. */
static void drain(struct env *e)
{
	kernel_stop(&e->k);
	kernel_run(&e->k);
	/* kernel_run closed the queue on its way out: open it again for the next step. */
	e->k.stopping = false;
	e->k.closed = false;
}

static void test_publish_with_capabilities(void **state)
{
	(void)state;
	struct env *e = env_new();
	struct script *s =
	    rule(e, "rule { name = 'relay', on = 'in/#',\n"
		    "  capabilities = { 'bus.publish:out/#' },\n"
		    "  run = function(ev, topic)\n"
		    "    local seq, err, code = linli.publish('out/' .. ev.k,\n"
		    "      { n = ev.n, list = { 1, 'two', { three = true } }, f = 1.5 })\n"
		    "    assert(seq and seq > 0, err)\n"
		    "    seq, err, code = linli.publish('alarm/x', {})\n"
		    "    assert(seq == nil and code == 'LINLI_EPERM', code)\n"
		    "    assert(err == \"rule 'relay' holds no granted capability "
		    "bus.publish:alarm/x\", err)\n"
		    "    seq, err, code = linli.publish('out/x', {}, 'hefei/shushan')\n"
		    "    assert(code == 'LINLI_EPERM' and err:find('outside its "
		    "jurisdiction'), err)\n"
		    "    assert(linli.publish('out/narrow', {}, 'hefei/baohe/binhu'))\n"
		    "    seq, err, code = linli.publish('out/arr', { 1, 2 })\n"
		    "    assert(code == 'LINLI_EINVAL', tostring(err))\n"
		    "    assert(linli.plugin_name() == 'relay')\n"
		    "    assert(linli.plugin_scope() == 'hefei/baohe')\n"
		    "  end }");
	must_fire(s, "in/a", "{\"k\": \"a\", \"n\": 7}");
	assert_string_equal(e->seen.text, ""); /* never delivered inside the call */
	run_posted(e);
	assert_string_equal(e->seen.text,
			    "out/a rule relay {\"f\":1.5,\"list\":[1,\"two\",{\"three\":true}],"
			    "\"n\":7}\nout/narrow rule relay {}\n");
	/* A wrong argument type is a Lua error naming the argument. */
	script_api_detach(s);
	script_free(s);
	s = rule(e,
		 "rule { name = 'r', on = 'in/#', run = function() linli.publish(42, 'x') end }");
	char err[1024];
	assert_int_equal(fire(s, "in/b", "{}", err, sizeof err), LINLI_EINVAL);
	assert_non_null(strstr(err, "bad argument #2 to 'publish' (table or nil expected"));
	script_api_detach(s);
	script_free(s);
	env_free(e);
}

static void test_subscribe_and_release(void **state)
{
	(void)state;
	struct env *e = env_new();
	int base = subs(e);
	struct script *s =
	    rule(e, "rule { name = 'w', on = 'in/#',\n"
		    "  capabilities = { 'bus.subscribe:extra/#', 'bus.publish:out/#' },\n"
		    "  run = function(ev)\n"
		    "    if ev.sub then\n"
		    "      ID = assert(linli.subscribe('extra/#', function(p, topic, meta)\n"
		    "        assert(linli.publish('out/heard', { topic = topic, n = p.n,\n"
		    "          publisher = meta.publisher, scope = meta.scope,\n"
		    "          consequence = meta.consequence, seq = meta.seq > 0 }))\n"
		    "      end))\n"
		    "    end\n"
		    "    if ev.wide then\n"
		    "      local id, err, code = linli.subscribe('#', function() end)\n"
		    "      assert(code == 'LINLI_EPERM', err)\n"
		    "    end\n"
		    "    if ev.unsub then\n"
		    "      assert(linli.unsubscribe(ID) == true)\n"
		    "      local ok, err, code = linli.unsubscribe(ID)\n"
		    "      assert(ok == nil and code == 'LINLI_ENOENT')\n"
		    "    end\n"
		    "    if ev.loop then while true do end end\n"
		    "  end }");
	assert_int_equal(subs(e), base + 1); /* its on */
	must_fire(s, "in/a", "{\"sub\": true, \"wide\": true}");
	assert_int_equal(subs(e), base + 2);
	char err[512];
	struct bus_msg m = {"extra/x", "tester", "hefei/baohe/binhu", "\x81\xa1n\x05", 4};
	assert_int_equal(bus_publish(e->k.bus, &m, NULL, err, sizeof err), 0);
	assert_non_null(strstr(e->seen.text, "out/heard rule w {\"consequence\":false,\"n\":5,"
					     "\"publisher\":\"tester\",\"scope\":"
					     "\"hefei/baohe/binhu\",\"seq\":true,\"topic\":"
					     "\"extra/x\"}"));
	must_fire(s, "in/b", "{\"unsub\": true}");
	assert_int_equal(subs(e), base + 1);
	/* Made again, then the rule faults: nothing of it remains, its `on` included. */
	must_fire(s, "in/c", "{\"sub\": true}");
	assert_int_equal(subs(e), base + 2);
	assert_int_equal(fire(s, "in/d", "{\"loop\": true}", err, sizeof err), LINLI_ELIMIT);
	assert_int_equal(script_state(s), SCRIPT_FAULTED);
	assert_int_equal(subs(e), base);
	script_api_detach(s);
	script_free(s);
	/* Detach releases what a ready rule made. */
	s = rule(e, "rule { name = 'd', on = 'in/#', capabilities = { 'bus.subscribe:x/#' },\n"
		    "  run = function() linli.subscribe('x/#', function() end)\n"
		    "    linli.timer_add(100000, 0, function() end) end }");
	must_fire(s, "in/a", "{}");
	must_fire(s, "in/a", "{}");
	assert_int_equal(subs(e), base + 3);
	script_api_detach(s);
	assert_int_equal(subs(e), base);
	assert_int_equal(e->k.n_timers, 0);
	script_free(s);
	env_free(e);
}

static void test_timers(void **state)
{
	(void)state;
	struct env *e = env_new();
	struct script *s =
	    rule(e, "rule { name = 't', on = 'in/#', capabilities = { 'bus.publish:out/#' },\n"
		    "  run = function(ev)\n"
		    "    if ev.add then\n"
		    "      ONCE = assert(linli.timer_add(0, 0, function()\n"
		    "        linli.publish('out/once', {}) end))\n"
		    "      EVERY = assert(linli.timer_add(0, 10, function() N = (N or 0) + 1\n"
		    "        linli.publish('out/every', { n = N }) end))\n"
		    "    end\n"
		    "    if ev.bad then linli.timer_add(-1, 0, function() end) end\n"
		    "    if ev.cancel then\n"
		    "      local ok, err, code = linli.timer_cancel(ONCE)\n"
		    "      assert(code == 'LINLI_ENOENT', 'a one-shot timer is gone once it ran')\n"
		    "      assert(linli.timer_cancel(EVERY) == true)\n"
		    "    end\n"
		    "  end }");
	char err[512];
	assert_int_equal(fire(s, "in/a", "{\"bad\": true}", err, sizeof err), LINLI_EINVAL);
	assert_non_null(strstr(err, "delay_ms must be >= 0"));
	must_fire(s, "in/a", "{\"add\": true}");
	drain(e);
	assert_non_null(strstr(e->seen.text, "out/once rule t {}\n"));
	assert_non_null(strstr(e->seen.text, "out/every rule t {\"n\":1}\n"));
	must_fire(s, "in/b", "{\"cancel\": true}");
	assert_int_equal(e->k.n_timers, 0);
	script_api_detach(s);
	script_free(s);
	env_free(e);
}

/* lua.max_timers and lua.min_timer_ms (issue 14, item 3); unset, they are 256 and 10. */
static void test_timer_limits(void **state)
{
	(void)state;
	struct env *e = env_new();
	e->k.cfg.lua.max_timers = 2;
	e->k.cfg.lua.min_timer_ms = 20;
	struct script *s =
	    rule(e, "rule { name = 't', on = 'in/#', run = function()\n"
		    "  local function f() end\n"
		    "  local a = assert(linli.timer_add(1000, 20, f))\n"
		    "  assert(linli.timer_add(1000, 0, f))\n"
		    "  local c, msg, code = linli.timer_add(1000, 20, f)\n"
		    "  assert(c == nil and code == 'LINLI_ELIMIT', code)\n"
		    "  assert(msg == \"timer_add: t holds 2 timers already, this node's most per \"\n"
		    "    .. 'script (lua.max_timers); cancel one first', msg)\n"
		    "  assert(linli.timer_cancel(a))\n"
		    "  assert(linli.timer_add(1000, 20, f), 'a cancelled timer gives its place back')\n"
		    "  local ok, err = pcall(linli.timer_add, 0, 19, f)\n"
		    "  assert(not ok and err:find(\"interval_ms 19 is below this node's minimum of \"\n"
		    "    .. '20 ms (lua.min_timer_ms)', 1, true), err)\n"
		    "end }");
	must_fire(s, "in/a", "{}");
	script_api_detach(s);
	assert_int_equal(e->k.n_timers, 0); /* detaching released them */
	script_free(s);
	env_free(e);
}

/*
 * Event storms (issue 14, item 4): what a rule publishes while it handles an
 * event of depth d has depth d + 1; past lua.max_event_depth (8 unset) it is
 * dropped and counted, and the 16th drop within 10 s faults the rule.
 */
static void test_event_depth_bound(void **state)
{
	(void)state;
	struct env *e = env_new();
	struct script *s = rule(
	    e, "rule { name = 'deep', on = 'in/#', capabilities = { 'bus.publish:out/#' },\n"
	       "  run = function(ev)\n"
	       "    local seq, msg, code = linli.publish('out/x', { n = 1 })\n"
	       "    if ev.ok then assert(seq, msg) return end\n"
	       "    assert(seq == nil and code == 'LINLI_ELIMIT', code)\n"
	       "    assert(msg == \"'out/x' at cause depth 9: dropped, deeper than \"\n"
	       "      .. 'lua.max_event_depth (8) (a chain of events that handlers cause)', msg)\n"
	       "  end }");
	script_set_cause_depth(s, 8); /* handling an event of depth 7 */
	must_fire(s, "in/a", "{\"ok\": true}");
	script_set_cause_depth(s, 9);
	for (int i = 1; i < (int)SCRIPT_DEPTH_FAULT_DROPS; i++)
		must_fire(s, "in/a", "{}");
	struct script_stats st;
	script_stats(s, &st);
	assert_int_equal(st.depth_drops, SCRIPT_DEPTH_FAULT_DROPS - 1);
	assert_int_equal(script_state(s), SCRIPT_READY);
	char err[1024];
	assert_int_equal(fire(s, "in/a", "{}", err, sizeof err), LINLI_ELIMIT);
	assert_int_equal(script_state(s), SCRIPT_FAULTED);
	assert_non_null(strstr(script_fault(s), "r.lua:3: event chain too deep: 16 events dropped "
						"within 10 s, each deeper than lua.max_event_depth "
						"(8) (the last on 'out/x' at cause depth 9)"));
	script_set_cause_depth(s, 0);
	run_posted(e);
	assert_string_equal(e->seen.text, "out/x rule deep {\"n\":1}\n"); /* the one not too deep */
	script_api_detach(s);
	script_free(s);
	/* lua.max_event_depth = 2: depth 3 is too deep. */
	e->k.cfg.lua.max_event_depth = 2;
	s = rule(
	    e, "rule { name = 'd2', on = 'in/#', capabilities = { 'bus.publish:out/#' },\n"
	       "  run = function() local _, msg = linli.publish('out/x', {}) DROPPED = msg end }");
	script_set_cause_depth(s, 3);
	must_fire(s, "in/a", "{}");
	script_stats(s, &st);
	assert_int_equal(st.depth_drops, 1);
	script_api_detach(s);
	script_free(s);
	env_free(e);
}

/* A rule that publishes to its own `on` from outside the bus: the event is queued, not lost. */
static void test_event_for_a_running_script_is_queued(void **state)
{
	(void)state;
	struct env *e = env_new();
	struct script *s =
	    rule(e, "rule { name = 'self', on = 't/#',\n"
		    "  capabilities = { 'bus.publish:t/#' },\n"
		    "  run = function(ev, topic)\n"
		    "    if topic == 't/a' then assert(linli.publish('t/b', { n = 1 })) "
		    "end\n"
		    "    if topic == 't/b' then assert(linli.publish('t/done', "
		    "{ n = ev.n + 1 })) end\n"
		    "  end }");
	must_fire(s, "t/a", "{}");
	/* Delivered after the call, to the spy and to the rule itself, never inside it. */
	assert_string_equal(e->seen.text, "");
	run_posted(e);
	assert_string_equal(e->seen.text, "t/b rule self {\"n\":1}\nt/done rule self {\"n\":2}\n");
	script_api_detach(s);
	script_free(s);
	env_free(e);
}

static void test_not_attached_may_not_act(void **state)
{
	(void)state;
	struct env *e = env_new();
	const char *src = "local ok, err = pcall(linli.publish, 'out/x', {})\n"
			  "assert(not ok and err:find('linli.publish: not available while the "
			  "file loads'), err)\n"
			  "assert(not pcall(linli.subscribe, 'x', print))\n"
			  "assert(not pcall(linli.timer_add, 0, 0, print))\n"
			  "assert(linli.time_now_ms() > 1600000000000)\n"
			  "assert(linli.plugin_scope() == 'hefei/baohe')\n"
			  "assert(linli.major == " LINLI_SDK_STR(LINLI_SDK_MAJOR)
			  " and linli.minor == " LINLI_SDK_STR(LINLI_SDK_MINOR) ")\n"
			  "rule { name = 'n', on = 'x', capabilities = { 'bus.publish:out/#' },\n"
			  "  run = function() assert(linli.publish('out/x', {})) end }\n";
	struct script_opts o = {.kind = SCRIPT_RULE, .scope = "hefei/baohe", .lim = lim};
	struct script *s = NULL;
	char err[1024] = "";
	if (script_load("n.lua", src, strlen(src), &o, &s, err, sizeof err))
		fail_msg("%s", err);
	/* Not attached: run may not act either (a `rules check` state is like this). */
	assert_int_equal(fire(s, "x", "{}", err, sizeof err), LINLI_EINVAL);
	assert_non_null(strstr(err, "not available"));
	script_free(s);
	/* A rule has no console commands. */
	s = rule(e, "rule { name = 'c', on = 'x', run = function()\n"
		    "  linli.cmd_register('go', '', '', function() end) end }");
	assert_int_equal(fire(s, "x", "{}", err, sizeof err), LINLI_EINVAL);
	assert_non_null(strstr(err, "only script plugins have console commands"));
	script_api_detach(s);
	script_free(s);
	env_free(e);
}

/* ---- devices ---- */

#define STREET	"hefei/baohe/binhu"
#define YUELAN	STREET "/yuelan"
#define TIANEHU STREET "/tianehu"

static struct hal *the_hal; /* for the test driver's answers */

static int d_open(linli_ctx *ctx, struct linli_device *dev, char *err, size_t errlen)
{
	(void)ctx, (void)dev, (void)err, (void)errlen;
	return 0;
}

static void d_close(linli_ctx *ctx, struct linli_device *dev)
{
	(void)ctx, (void)dev;
}

/*
 * Address "slow" never answers; "remove" removes device slow-y first (so
 * that its pending commands fail inside the op, while the sender runs); any
 * other answers {"did": command} at once.
 */
static int d_command(linli_ctx *ctx, struct linli_device *dev, uint64_t req, const char *command,
		     const linli_record *args)
{
	(void)args;
	if (strcmp(dev->address, "slow") == 0)
		return 0;
	char err[256];
	if (strcmp(dev->address, "remove") == 0 &&
	    hal_remove(the_hal, "slow-y", NULL, NULL, err, sizeof err) < 0)
		fail_msg("hal_remove: %s", err);
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 1);
	mp_kv_str(&pk, "did", command);
	int rc = hal_command_done(the_hal, ctx, req, 0, sb.data, sb.size, NULL, err, sizeof err);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

static const struct linli_driver_ops dops = {.size = sizeof(struct linli_driver_ops),
					     .open = d_open,
					     .close = d_close,
					     .command = d_command};

/*
 * A street node with a catalog, a store and a HAL holding doors at two of its
 * communities, then narrowed to one of them (as if the node had been
 * re-scoped with its registry left as it was): the other door lies outside
 * every script's jurisdiction, which no registry of a running linlid can
 * hold (hal_add and hal_open keep to the node's subtree).
 */
static struct env *env_devices(char *dir)
{
	struct env *e = calloc(1, sizeof *e);
	struct kernel *k = &e->k;
	char text[1024], err[1024] = "";
	strcpy(dir, "/tmp/linli-sapi-XXXXXX");
	assert_non_null(mkdtemp(dir));
	assert_int_equal(kernel_init(k), 0);
	snprintf(text, sizeof text,
		 "node = { path = \"" STREET "\"; level = \"street\"; };\n"
		 "data_dir = \"%s\";\nlog_level = \"warn\";\ncatalog_dir = \"%s/catalog\";\n",
		 dir, SRCDIR);
	if (cfg_load_string(&k->cfg, text, "t.cfg", NULL, err, sizeof err))
		fail_msg("config: %s", err);
	log_set_level(LOG_WARN);
	if (catalog_load(k->cfg.catalog_dir, &k->catalog, err, sizeof err))
		fail_msg("catalog: %s", err);
	struct store_opts so = {.dir = dir, .map_size = 8u << 20};
	if (store_open(&so, k->catalog, &k->store, err, sizeof err))
		fail_msg("store: %s", err);
	k->cmds = cmd_registry_new();
	if (bus_open(k, &k->bus, err, sizeof err))
		fail_msg("bus: %s", err);
	assert_int_equal(journal_attach(k), 0);
	assert_int_equal(bus_subscribe(k->bus, "t/#", "", on_any, &e->seen, &e->seen, "spy",
				       &e->spy, err, sizeof err),
			 0);
	if (hal_open(k, &k->hal, err, sizeof err))
		fail_msg("hal: %s", err);
	the_hal = k->hal;
	struct hal_driver *drv;
	assert_int_equal(
	    hal_driver_add(k->hal, "t", &dops, (linli_ctx *)e, "tplug", &drv, err, sizeof err), 0);
	hal_driver_attach(k->hal, drv);
	const char *devs[][3] = {{"door-y", YUELAN, "ok"},
				 {"slow-y", YUELAN, "slow"},
				 {"kill-y", YUELAN, "remove"},
				 {"door-t", TIANEHU, "ok"}};
	for (int i = 0; i < 4; i++) {
		struct hal_dev_spec sp = {.id = devs[i][0],
					  .class_name = "door",
					  .driver = "t",
					  .address = devs[i][2],
					  .scope = devs[i][1]};
		if (hal_add(k->hal, &sp, NULL, NULL, err, sizeof err))
			fail_msg("hal_add %s: %s", devs[i][0], err);
	}
	assert_int_equal(store_batch_end(k->store), 0);
	struct hal_val v = {.type = LINLI_T_STR, .s = "closed", .len = 6};
	assert_int_equal(hal_reading(k->hal, (linli_ctx *)e, "door-y", "state", &v, 5000), 0);
	assert_int_equal(hal_reading(k->hal, (linli_ctx *)e, "door-t", "state", &v, 5000), 0);
	snprintf(k->cfg.node_path, sizeof k->cfg.node_path, "%s", YUELAN);
	script_api_init(k);
	return e;
}

static void env_devices_free(struct env *e, const char *dir)
{
	struct kernel *k = &e->k;
	hal_close(k->hal);
	journal_detach(k);
	bus_close(k->bus);
	store_close(k->store);
	cmd_registry_free(k->cmds);
	catalog_free(k->catalog);
	cfg_free(&k->cfg);
	kernel_destroy(k);
	script_set_binder(NULL, NULL);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	free(e);
}

/* The commands of device `id` that wait for an answer. */
static int64_t pending(struct env *e, const char *id)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	hal_pack_dev(e->k.hal, hal_find(e->k.hal, id), &pk, true);
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	assert_int_equal(msgpack_unpack_next(&up, sb.data, sb.size, NULL), MSGPACK_UNPACK_SUCCESS);
	const msgpack_object *n = mp_get(&up.data, "commands_pending");
	assert_non_null(n);
	int64_t v = n->via.i64;
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&sb);
	return v;
}

#define DEV_RULE_HEAD                                                                              \
	"rule { name = 'dr', on = 'in/#',\n"                                                       \
	"  capabilities = { 'device.read:door', 'device.command:door', 'bus.publish:t/#' },\n"

static void test_devices_within_the_jurisdiction_only(void **state)
{
	(void)state;
	char dir[64];
	struct env *e = env_devices(dir);
	struct script *s = rule(
	    e, DEV_RULE_HEAD
	    "  run = function(ev)\n"
	    "    local info = assert(linli.dev_info('door-y'))\n"
	    "    local v, t = linli.dev_get('door-y', 'state')\n"
	    "    local _, e1, c1 = linli.dev_info('door-t')\n"
	    "    local _, e2, c2 = linli.dev_get('door-t', 'state')\n"
	    "    local _, e3, c3 = linli.dev_command('door-t', 'lock', {}, 0, function()\n"
	    "      linli.publish('t/never', {}) end)\n"
	    "    local req = assert(linli.dev_command('door-y', 'lock', nil, 0,\n"
	    "      function(r, err, code, id)\n"
	    "        linli.publish('t/answer', { r = r, err = err, code = code, same = id == REQ "
	    "})\n"
	    "      end))\n"
	    "    REQ = req\n"
	    "    linli.publish('t/out', { scope = info.scope, v = v, t = t, e1 = e1, c1 = c1,\n"
	    "      e2 = e2, c2 = c2, e3 = e3, c3 = c3 })\n"
	    "  end }");
	must_fire(s, "in/a", "{}");
	assert_int_equal(pending(e, "door-t"), 0);
	assert_int_equal(pending(e, "door-y"), 1);
	/* What it published, then the driver's answer, through the kernel queue. */
	run_posted(e);
	assert_string_equal(
	    e->seen.text,
	    "t/out rule dr {\"c1\":\"LINLI_EPERM\",\"c2\":\"LINLI_EPERM\",\"c3\":\"LINLI_EPERM\","
	    "\"e1\":\"dev_info door-t: rule 'dr' of " YUELAN " may not act on " TIANEHU
	    ": outside its jurisdiction\",\"e2\":\"dev_get door-t: rule 'dr' of " YUELAN
	    " may not act on " TIANEHU ": outside its jurisdiction\",\"e3\":\"dev_command "
	    "door-t: rule 'dr' of " YUELAN " may not act on " TIANEHU
	    ": outside its jurisdiction\",\"scope\":\"" YUELAN "\",\"t\":5000,\"v\":\"closed\"}\n"
	    "t/answer rule dr {\"r\":{\"did\":\"lock\"},\"same\":true}\n");
	assert_int_equal(pending(e, "door-y"), 0);
	script_api_detach(s);
	script_free(s);
	env_devices_free(e, dir);
}

static void test_device_callbacks_stop_with_their_rule(void **state)
{
	(void)state;
	char dir[64];
	struct env *e = env_devices(dir);
	/* Detached (removed, reloaded) while waiting: cancelled, never called. */
	struct script *s =
	    rule(e, DEV_RULE_HEAD "  run = function()\n"
				  "    assert(linli.dev_command('slow-y', 'lock', {}, 100000,\n"
				  "      function() linli.publish('t/late', {}) end))\n"
				  "    assert(linli.dev_command('door-y', 'lock', {}, 0,\n"
				  "      function() linli.publish('t/late', {}) end))\n"
				  "  end }");
	must_fire(s, "in/a", "{}");
	assert_int_equal(pending(e, "slow-y") + pending(e, "door-y"), 2);
	script_api_detach(s);
	script_free(s);
	assert_int_equal(pending(e, "slow-y") + pending(e, "door-y"), 0);
	drain(e); /* door-y's answer was queued already: it finds no request */
	assert_null(strstr(e->seen.text, "t/late"));
	/* A callback that loops: stopped, the rule faulted, its other command cancelled. */
	s = rule(e, DEV_RULE_HEAD "  run = function(ev)\n"
				  "    if ev.spin then\n"
				  "      assert(linli.dev_command('slow-y', 'lock', {}, 100000,\n"
				  "        function() linli.publish('t/late', {}) end))\n"
				  "      assert(linli.dev_command('door-y', 'lock', {}, 0,\n"
				  "        function() while true do end end))\n"
				  "    end\n"
				  "  end }");
	struct script *other =
	    rule(e, "rule { name = 'other', on = 'in/#', capabilities = { 'device.command:door',\n"
		    "  'bus.publish:t/#' }, run = function()\n"
		    "    assert(linli.dev_command('door-y', 'open', { seconds = 3 }, 0,\n"
		    "      function(r) linli.publish('t/other', r) end)) end }");
	must_fire(s, "in/a", "{\"spin\": true}");
	must_fire(other, "in/a", "{}");
	assert_int_equal(pending(e, "slow-y"), 1);
	drain(e);
	assert_int_equal(script_state(s), SCRIPT_FAULTED);
	assert_int_equal(script_state(other), SCRIPT_READY);
	assert_int_equal(pending(e, "slow-y"), 0);
	assert_string_equal(e->seen.text, "t/other rule other {\"did\":\"open\"}\n");
	script_api_detach(s);
	script_free(s);
	script_api_detach(other);
	script_free(other);
	env_devices_free(e, dir);
}

/*
 * An answer that comes while its rule runs (its device removed by a driver's
 * op the rule's own dev_command called) is handed over once the rule has
 * returned; released before that, it is never handed over.
 */
static void test_answer_for_a_running_rule_waits(void **state)
{
	(void)state;
	for (int detach = 0; detach < 2; detach++) {
		char dir[64];
		struct env *e = env_devices(dir);
		struct script *s =
		    rule(e, DEV_RULE_HEAD
			 "  run = function()\n"
			 "    assert(linli.dev_command('slow-y', 'lock', {}, 100000,\n"
			 "      function(r, err, code) linli.publish('t/late', { code = code "
			 "}) end))\n"
			 "    assert(linli.dev_command('kill-y', 'lock', {}, 0, function() end))\n"
			 "    linli.publish('t/ran', {})\n"
			 "  end }");
		must_fire(s, "in/a", "{}");
		run_posted(e);
		assert_string_equal(e->seen.text, "t/ran rule dr {}\n");
		assert_null(hal_find(e->k.hal, "slow-y"));
		if (detach)
			script_api_detach(s);
		drain(e);
		assert_string_equal(e->seen.text, detach ? "t/ran rule dr {}\n"
							 : "t/ran rule dr {}\nt/late rule dr "
							   "{\"code\":\"LINLI_ESTATE\"}\n");
		if (!detach)
			script_api_detach(s);
		script_free(s);
		env_devices_free(e, dir);
	}
}

/* ---- the commit notice, plugin_config and device_classes ---- */

/* A C subscriber that commits the batch at once (as an early commit inside a write does). */
static int on_flush(const struct bus_event *ev, void *ud)
{
	(void)ev;
	assert_int_equal(store_batch_end(((struct kernel *)ud)->store), 0);
	return 0;
}

#define COMMIT_RULE                                                                                \
	"rule { name = 'cw', on = 'in/#',\n"                                                       \
	"  capabilities = { 'store.write:grids', 'store.read:grids', 'bus.publish:t/#' },\n"       \
	"  run = function(ev)\n"                                                                   \
	"    if ev.none then\n"                                                                    \
	"      local ok, err, code = linli.store_on_commit(function() linli.publish('t/never', "   \
	"{}) end)\n"                                                                               \
	"      return linli.publish('t/none', { ok = ok, err = err, code = code })\n"              \
	"    end\n"                                                                                \
	"    if ev.loop then while true do end end\n"                                              \
	"    assert(linli.store_put('grids', { code = 'g1', name = ev.name or 'n' }, nil, "        \
	"'g-1'))\n"                                                                                \
	"    assert(linli.store_on_commit(function(...)\n"                                         \
	"      if ev.spin then while true do end end\n"                                            \
	"      local ok, err, code = ...\n"                                                        \
	"      local g = linli.store_get('grids', 'g-1')\n"                                        \
	"      linli.publish('t/committed', { ok = ok, err = err, code = code, name = g.name, "    \
	"n = select('#', ...) })\n"                                                                \
	"    end) == true)\n"                                                                      \
	"    if ev.flush then linli.publish('t/flush', {}) end\n"                                  \
	"    linli.publish('t/ran', {})\n"                                                         \
	"  end }"

static void test_commit_notice(void **state)
{
	(void)state;
	char dir[64], err[1024];
	struct env *e = env_devices(dir);
	uint64_t fid;
	assert_int_equal(bus_subscribe(e->k.bus, "t/flush", "", on_flush, &e->k, &e->k, "flusher",
				       &fid, err, sizeof err),
			 0);
	assert_int_equal(store_batch_end(e->k.store), 0);
	struct script *s = rule(e, COMMIT_RULE);
	/* Nothing written in this batch: refused, fn never called. */
	must_fire(s, "in/a", "{\"none\": true}");
	run_posted(e);
	assert_string_equal(e->seen.text,
			    "t/none rule cw {\"code\":\"LINLI_ESTATE\",\"err\":\"store_on_commit: "
			    "no write is pending (what was written is committed already)\"}\n");
	/* After a write: fn(true) once the batch commits, not before. */
	e->seen.text[0] = '\0';
	must_fire(s, "in/a", "{\"name\": \"one\"}");
	run_posted(e);
	assert_string_equal(e->seen.text, "t/ran rule cw {}\n");
	assert_int_equal(store_batch_end(e->k.store), 0);
	run_posted(e);
	assert_string_equal(e->seen.text, "t/ran rule cw {}\nt/committed rule cw "
					  "{\"n\":1,\"name\":\"one\",\"ok\":true}\n");
	assert_int_equal(store_batch_end(e->k.store), 0); /* called once only */
	assert_null(strstr(e->seen.text, "t/never"));
	/* Committed by a subscriber of what it published: after its call, in order. */
	e->seen.text[0] = '\0';
	must_fire(s, "in/a", "{\"name\": \"two\", \"flush\": true}");
	assert_string_equal(e->seen.text, "");
	run_posted(e);
	drain(e);
	assert_string_equal(e->seen.text, "t/flush rule cw {}\nt/ran rule cw {}\nt/committed "
					  "rule cw {\"n\":1,\"name\":\"two\",\"ok\":true}\n");
	/* Bad arguments raise, naming them. */
	script_api_detach(s);
	script_free(s);
	s = rule(e, "rule { name = 'b', on = 'in/#', run = function(ev)\n"
		    "  if ev.n then linli.store_on_commit(42) else\n"
		    "  linli.store_on_commit(function() end, 'junk') end end }");
	assert_int_equal(fire(s, "in/a", "{\"n\": 1}", err, sizeof err), LINLI_EINVAL);
	assert_non_null(strstr(err, "bad argument #1 to 'store_on_commit' (function expected"));
	assert_int_equal(fire(s, "in/a", "{}", err, sizeof err), LINLI_EINVAL);
	assert_non_null(strstr(err, "bad argument #2 to 'store_on_commit' (no value expected, got "
				    "string: it takes only fn)"));
	script_api_detach(s);
	script_free(s);
	env_devices_free(e, dir);
}

static void test_commit_notice_stops_with_its_rule(void **state)
{
	(void)state;
	char dir[64];
	struct env *e = env_devices(dir);
	/* Removed (or reloaded) between the write and the commit: never called, and freed. */
	struct script *s = rule(e, COMMIT_RULE);
	must_fire(s, "in/a", "{}");
	run_posted(e);
	script_api_detach(s);
	script_free(s);
	assert_int_equal(store_batch_end(e->k.store), 0);
	assert_string_equal(e->seen.text, "t/ran rule cw {}\n");
	/* Faulted between the write and the commit: the same. */
	e->seen.text[0] = '\0';
	s = rule(e, COMMIT_RULE);
	char err[1024];
	must_fire(s, "in/a", "{}");
	run_posted(e);
	assert_int_equal(fire(s, "in/b", "{\"loop\": true}", err, sizeof err), LINLI_ELIMIT);
	assert_int_equal(script_state(s), SCRIPT_FAULTED);
	assert_int_equal(store_batch_end(e->k.store), 0);
	assert_string_equal(e->seen.text, "t/ran rule cw {}\n");
	script_api_detach(s);
	script_free(s);
	/* Committed while the rule runs, then removed before it is handed over: never called. */
	uint64_t fid;
	assert_int_equal(bus_subscribe(e->k.bus, "t/flush", "", on_flush, &e->k, &e->k, "flusher",
				       &fid, err, sizeof err),
			 0);
	e->seen.text[0] = '\0';
	s = rule(e, COMMIT_RULE);
	must_fire(s, "in/a", "{\"flush\": true}");
	script_api_detach(s);
	script_free(s);
	drain(e);
	assert_string_equal(e->seen.text, "t/flush rule cw {}\nt/ran rule cw {}\n");
	/* fn runs under the budget: one that loops faults its rule (and only it). */
	s = rule(e, COMMIT_RULE);
	must_fire(s, "in/a", "{\"spin\": true}");
	assert_int_equal(store_batch_end(e->k.store), 0);
	assert_int_equal(script_state(s), SCRIPT_FAULTED);
	script_api_detach(s);
	script_free(s);
	env_devices_free(e, dir);
}

static void test_rule_config_and_classes(void **state)
{
	(void)state;
	char dir[64], err[1024];
	struct env *e = env_devices(dir);
	struct script *s =
	    rule(e, "rule { name = 'cc', on = 'in/#', capabilities = { 'bus.publish:t/#' },\n"
		    "  run = function()\n"
		    "    local c, msg, code = linli.plugin_config()\n"
		    "    local all = linli.device_classes()\n"
		    "    local door\n"
		    "    for _, c in ipairs(all) do if c.name == 'door' then door = c end end\n"
		    "    linli.publish('t/out', { c = c == nil, msg = msg, code = code, n = #all,\n"
		    "      heartbeat = door.heartbeat, title = door.title_en,\n"
		    "      res = door.resources[4], cmd = door.commands[3].args[1].values[2],\n"
		    "      ev = door.events[7] })\n"
		    "  end }");
	must_fire(s, "in/a", "{}");
	run_posted(e);
	char want[2048];
	snprintf(want, sizeof want,
		 "t/out rule cc {\"c\":true,\"cmd\":\"always_open\",\"code\":\"LINLI_ESTATE\","
		 "\"ev\":{\"name\":\"watchlist_hit\",\"sensitive\":[{\"mask\":\"name\",\"name\":"
		 "\"holder\"}],\"severity\":\"critical\"},\"heartbeat\":120,"
		 "\"msg\":\"plugin_config: rule 'cc' has no plugin config (plugins.NAME of "
		 "linli.cfg is read by plugins only)\",\"n\":%d,\"res\":{\"access\":\"rw\","
		 "\"max\":60,\"min\":1,\"name\":\"open_time\",\"type\":\"integer\",\"unit\":\"s\"},"
		 "\"title\":\"Access-control door\"}\n",
		 e->k.catalog->n_classes);
	assert_string_equal(e->seen.text, want);
	script_api_detach(s);
	script_free(s);
	s = rule(e,
		 "rule { name = 'b', on = 'in/#', run = function(ev)\n"
		 "  if ev.n then linli.device_classes(ev) else linli.plugin_config('x') end end }");
	assert_int_equal(fire(s, "in/a", "{\"n\": 1}", err, sizeof err), LINLI_EINVAL);
	assert_non_null(strstr(err, "bad argument #1 to 'device_classes' (no value expected, got "
				    "table: it takes no arguments)"));
	assert_int_equal(fire(s, "in/a", "{}", err, sizeof err), LINLI_EINVAL);
	assert_non_null(strstr(err, "bad argument #1 to 'plugin_config' (no value expected, got "
				    "string: it takes no arguments)"));
	script_api_detach(s);
	script_free(s);
	env_devices_free(e, dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_publish_with_capabilities),
	    cmocka_unit_test(test_subscribe_and_release),
	    cmocka_unit_test(test_timers),
	    cmocka_unit_test(test_timer_limits),
	    cmocka_unit_test(test_event_depth_bound),
	    cmocka_unit_test(test_event_for_a_running_script_is_queued),
	    cmocka_unit_test(test_not_attached_may_not_act),
	    cmocka_unit_test(test_devices_within_the_jurisdiction_only),
	    cmocka_unit_test(test_device_callbacks_stop_with_their_rule),
	    cmocka_unit_test(test_answer_for_a_running_rule_waits),
	    cmocka_unit_test(test_commit_notice),
	    cmocka_unit_test(test_commit_notice_stops_with_its_rule),
	    cmocka_unit_test(test_rule_config_and_classes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
