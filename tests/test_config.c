/* Unit tests of host/config.c: the example parses; every bad case names its line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "config.h"
#include "store.h"
#include "linli/error.h"
#include "log.h"

static void test_example_parses(void **state)
{
	(void)state;
	struct cfg c;
	char err[1024] = "";
	int rc = cfg_load_file(&c, SRCDIR "/host/linli.example.cfg", err, sizeof err);
	assert_int_equal(rc, 0);
	assert_string_equal(c.node_path, "hefei/baohe/binhu");
	assert_int_equal(c.node_level, TIER_STREET);
	assert_string_equal(c.data_dir, "/var/lib/linli");
	assert_int_equal(c.n_listen, 2);
	assert_string_equal(c.listen[1], "tcp://127.0.0.1:7410");
	assert_int_equal(c.max_request, 1048576);
	assert_true(c.store_sync);
	assert_int_equal(c.store_map_size, 64u << 20);
	assert_int_equal(c.store_group_max, STORE_GROUP_MAX_DEFAULT);
	assert_int_equal(c.store_group_commit_ms, STORE_GROUP_MS_DEFAULT);
	assert_int_equal(c.log_level, LOG_INFO);
	assert_int_equal(c.http_body_timeout_ms, 10000);
	assert_int_equal(c.health_min_free_mb, 64);
	assert_int_equal(c.pwhash_memory_mb, 0); /* the pwhash level's own */
	assert_int_equal(c.retention.audit_min_age_s, 180 * 86400);
	assert_int_equal(c.retention.audit_max_bytes, 256ull << 20);
	assert_int_equal(c.retention.journal_max_age_s, 30 * 86400);
	assert_int_equal(c.retention.journal_max_hold_s, 7 * 86400);
	assert_int_equal(c.retention.audit_aggregate_s, 60);
	assert_string_equal(c.time_zone, "Asia/Shanghai");
	cfg_free(&c);
}

static void test_embedded_default(void **state)
{
	(void)state;
	struct cfg c;
	char err[1024] = "";
	assert_int_equal(cfg_load_string(&c, cfg_embedded_default, "<embedded>", "/base", err,
					 sizeof err),
			 0);
	assert_string_equal(c.node_path, "hefei/baohe/binhu");
	assert_int_equal(c.node_level, TIER_STREET);
	assert_string_equal(c.data_dir, "/base/var");
	assert_string_equal(c.listen[0], "ipc:///base/var/linlid.sock");
	assert_int_equal(c.n_script_dirs, 1); /* the repo's Lua applications */
	assert_string_equal(c.script_dirs[0], "/base/scripts");
	/* Retention defaults: audit at least 180 days (Cybersecurity Law art. 21). */
	assert_int_equal(c.retention.audit_min_age_s, 180 * 86400);
	assert_int_equal(c.retention.audit_max_age_s, 365 * 86400);
	assert_int_equal(c.retention.journal_max_bytes, 256ull << 20);
	/* The node's zone, whatever TZ linlid was started with. */
	assert_string_equal(c.time_zone, "Asia/Shanghai");
	/* No federation: the demo node runs alone. */
	assert_null(c.fed.url);
	assert_int_equal(c.fed.status_ms, 30000);
	assert_int_equal(c.fed.stale_ms, 90000);
	cfg_free(&c);
}

struct bad {
	const char *text;
	const char *expect; /* substring of the error */
};

#define NODE "node = { path = \"hefei\"; level = \"city\"; };\n"

static const struct bad bad_cases[] = {
	/* unknown key, at the top and nested */
	{NODE "data_dir = \"/d\";\nlog_levl = \"info\";\n", "t.cfg:3: log_levl: unknown key"},
	{NODE "data_dir = \"/d\";\nstore = {\n  sinc = true;\n};\n", "t.cfg:4: store.sinc: unknown key"},
	/* wrong types */
	{NODE "data_dir = 42;\n", "t.cfg:2: data_dir: must be a string"},
	{NODE "data_dir = \"/d\";\nstore = { sync = \"yes\"; };\n", "t.cfg:3: store.sync: must be a boolean"},
	{NODE "data_dir = \"/d\";\ncontrol = { listen = \"ipc:///x\"; };\n",
	 "t.cfg:3: control.listen: must be a list"},
	{"node = \"hefei\";\ndata_dir = \"/d\";\n", "t.cfg:1: node: must be a group"},
	/* missing required values */
	{NODE, "t.cfg: data_dir: missing required value"},
	{"data_dir = \"/d\";\n", "t.cfg: node: missing required value"},
	{"node = { level = \"city\"; };\ndata_dir = \"/d\";\n", "t.cfg: node.path: missing required value"},
	/* bad paths and levels */
	{"node = {\n path = \"Hefei/x\";\n level = \"district\"; };\ndata_dir = \"/d\";\n",
	 "t.cfg:2: node.path: bad path 'Hefei/x'"},
	{"node = {\n path = \"hefei//x\";\n level = \"district\"; };\ndata_dir = \"/d\";\n",
	 "t.cfg:2: node.path: bad path 'hefei//x': empty segment"},
	{"node = {\n path = \"hefei/baohe\";\n level = \"street\"; };\ndata_dir = \"/d\";\n",
	 "t.cfg:2: node.path: 'hefei/baohe' has 2 level(s) but node.level is street"},
	{"node = { path = \"hefei\";\n level = \"province\"; };\ndata_dir = \"/d\";\n",
	 "t.cfg:2: node.level: 'province' is not one of"},
	{NODE "data_dir = \"\";\n", "t.cfg:2: data_dir: must not be empty"},
	/* bad values */
	{NODE "data_dir = \"/d\";\nlog_level = \"loud\";\n", "t.cfg:3: log_level: 'loud' is not one of"},
	{NODE "data_dir = \"/d\";\ncontrol = {\n listen = [ \"http://x\" ];\n};\n",
	 "t.cfg:4: control.listen: 'http://x' is not an ipc://"},
	{NODE "data_dir = \"/d\";\ncontrol = {\n listen = [ \"tls+tcp://127.0.0.1:1\" ];\n};\n",
	 "control.listen: a tls+tcp:// address needs control.tls_cert"},
	{NODE "data_dir = \"/d\";\ncontrol = {\n max_request = 10;\n};\n",
	 "t.cfg:4: control.max_request: 10 is outside"},
	{NODE "data_dir = \"/d\";\nstore = { map_size_mb = 0; };\n",
	 "t.cfg:3: store.map_size_mb: 0 is outside"},
	{NODE "data_dir = \"/d\";\nstore = {\n group_max = 0;\n};\n",
	 "t.cfg:4: store.group_max: 0 is outside 1..1000000 (writes per commit)"},
	{NODE "data_dir = \"/d\";\nstore = { group_commit_ms = 20000; };\n",
	 "t.cfg:3: store.group_commit_ms: 20000 is outside 0..10000 (ms)"},
	{NODE "data_dir = \"/d\";\nstore = { group_commit_ms = \"fast\"; };\n",
	 "t.cfg:3: store.group_commit_ms: must be an integer"},
	{NODE "data_dir = \"/d\";\nhttp = {\n body_timeout_ms = 50;\n};\n",
	 "t.cfg:4: http.body_timeout_ms: 50 is outside 100..600000"},
	{NODE "data_dir = \"/d\";\nhttp = {\n health_min_free_mb = -1;\n};\n",
	 "t.cfg:4: http.health_min_free_mb: -1 is outside 0..1073741824"},
	{NODE "data_dir = \"/d\";\nhttp = {\n login_address_failures = 0;\n};\n",
	 "t.cfg:4: http.login_address_failures: 0 is outside 1..10000"},
	{NODE "data_dir = \"/d\";\nhttp = {\n login_failures = 1001;\n};\n",
	 "t.cfg:4: http.login_failures: 1001 is outside 1..1000"},
	{NODE "data_dir = \"/d\";\naccounts = {\n pwhash_memory_mb = 4;\n};\n",
	 "t.cfg:4: accounts.pwhash_memory_mb: 4 is outside 8..4096"},
	{NODE "data_dir = \"/d\";\naccounts = { pwhash_memory_mb = \"a lot\"; };\n",
	 "t.cfg:3: accounts.pwhash_memory_mb"},
	/* plugin sections */
	{NODE "data_dir = \"/d\";\nplugins = {\n  Sim = { a = 1; };\n};\n",
	 "t.cfg:4: plugins: 'Sim' is not a plugin name"},
	{NODE "data_dir = \"/d\";\nplugins = {\n  sim = 3;\n};\n",
	 "t.cfg:4: plugins: sim: must be a group"},
	{NODE "data_dir = \"/d\";\nplugins = ( { sim = 1; } );\n", "t.cfg:3: plugins: must be a group"},
	/* retention */
	{NODE "data_dir = \"/d\";\nretention = {\n audit = { max_age_dayz = 3; };\n};\n",
	 "t.cfg:4: retention.audit.max_age_dayz: unknown key"},
	{NODE "data_dir = \"/d\";\nretention = {\n journal = { max_mb = \"1\"; };\n};\n",
	 "t.cfg:4: retention.journal.max_mb: must be an integer"},
	{NODE "data_dir = \"/d\";\nretention = {\n journal = { max_mb = 1;\n max_kb = 5; };\n};\n",
	 "t.cfg:5: retention.journal.max_kb: give retention.journal.max_mb or "
	 "retention.journal.max_kb, not both"},
	{NODE "data_dir = \"/d\";\nretention = {\n audit = { max_age_days = -1; };\n};\n",
	 "t.cfg:4: retention.audit.max_age_days: -1 is outside 0..36500"},
	{NODE "data_dir = \"/d\";\nretention = {\n audit = {\n max_age_days = 90; };\n};\n",
	 "t.cfg:5: retention.audit.max_age_days: 7776000 s is below retention.audit.min_age"},
	{NODE "data_dir = \"/d\";\nretention = { tick_ms = 1; };\n",
	 "t.cfg:3: retention.tick_ms: 1 is outside 10..60000"},
	/* the time zone: a name under the zone directory, the line and the value named */
	{NODE "data_dir = \"/d\";\ntime_zone = \"Mars/Olympus\";\n",
	 "t.cfg:3: time_zone: 'Mars/Olympus' is not a time zone: no such zone file "
	 "/usr/share/zoneinfo/Mars/Olympus"},
	{NODE "data_dir = \"/d\";\n\ntime_zone = \"../../../etc/passwd\";\n",
	 "t.cfg:4: time_zone: '../../../etc/passwd' is not a time zone: not a zone name"},
	{NODE "data_dir = \"/d\";\ntime_zone = \"Europe\";\n",
	 "t.cfg:3: time_zone: 'Europe' is not a time zone: /usr/share/zoneinfo/Europe is a "
	 "directory of zones"},
	{NODE "data_dir = \"/d\";\ntime_zone = \"\";\n", "t.cfg:3: time_zone: '' is not a time zone"},
	{NODE "data_dir = \"/d\";\ntime_zone = 8;\n", "t.cfg:3: time_zone: must be a string"},
	/* federation: the url, the domain, the TLS files and the timings, each named */
	{NODE "data_dir = \"/d\";\nfederation = {\n url = \"nats://a b\"; };\n",
	 "t.cfg:4: federation.url: 'nats://a b' is not nats://HOST:PORT"},
	{NODE "data_dir = \"/d\";\nfederation = { parent_domain = \"x\"; };\n",
	 "t.cfg:3: federation.url: missing"},
	{NODE "data_dir = \"/d\";\nfederation = { url = \"nats://h:1\";\n parent_domain = \"a>\"; };\n",
	 "t.cfg:4: federation.parent_domain: 'a>' is not a JetStream domain"},
	{NODE "data_dir = \"/d\";\nfederation = { url = \"nats://h:1\"; cert = \"/etc/hostname\";\n};\n",
	 "t.cfg:3: federation: cert and key go together, and with ca"},
	{NODE "data_dir = \"/d\";\nfederation = { url = \"nats://h:1\"; status_ms = 1000;\n stale_ms = 10; };\n",
	 "t.cfg:4: federation.stale_ms: 10 is outside status_ms (1000)..86400000"},
	{NODE "data_dir = \"/d\";\nfederation = { url = \"nats://h:1\"; tls = 1; };\n",
	 "t.cfg:3: federation.tls: unknown key"},
	/* syntax */
	{NODE "data_dir = \"/d\";\nlog_level = ;\n", "t.cfg:3: syntax error"},
};

static void test_bad_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
		struct cfg c;
		char err[1024] = "";
		int rc = cfg_load_string(&c, bad_cases[i].text, "t.cfg", "/", err, sizeof err);
		if (rc != LINLI_ECONFIG || !strstr(err, bad_cases[i].expect)) {
			print_error("case %zu: rc %d, error \"%s\", expected \"%s\"\n", i, rc, err,
				    bad_cases[i].expect);
			fail();
		}
	}
}

/* plugins = { NAME = { ... }; }: each group reaches its plugin as a MessagePack map. */
static void test_plugin_sections(void **state)
{
	(void)state;
	struct cfg c;
	char err[1024] = "";
	const char *text = NODE "data_dir = \"/d\";\n"
			   "plugins = {\n"
			   "  sim = { per_class = 2; seed = 5000000000L; rate = 1.5; on = true;\n"
			   "          classes = [ \"door\", \"smoke\" ]; inner = { x = \"y\"; }; };\n"
			   "  other = { };\n"
			   "};\n";
	assert_int_equal(cfg_load_string(&c, text, "t.cfg", "/", err, sizeof err), 0);
	assert_int_equal(c.n_plugin_conf, 2);
	assert_string_equal(c.plugin_conf[0].name, "sim");
	assert_string_equal(c.plugin_conf[1].name, "other");
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	assert_int_equal(msgpack_unpack_next(&up, c.plugin_conf[0].mp, c.plugin_conf[0].len, NULL),
			 MSGPACK_UNPACK_SUCCESS);
	const msgpack_object_map *m = &up.data.via.map;
	assert_int_equal(up.data.type, MSGPACK_OBJECT_MAP);
	assert_int_equal(m->size, 6);
	assert_int_equal(m->ptr[0].val.via.u64, 2);
	assert_int_equal(m->ptr[1].val.via.u64, 5000000000ull);
	assert_true(m->ptr[2].val.type == MSGPACK_OBJECT_FLOAT64 && m->ptr[2].val.via.f64 == 1.5);
	assert_int_equal(m->ptr[3].val.type, MSGPACK_OBJECT_BOOLEAN);
	assert_int_equal(m->ptr[4].val.type, MSGPACK_OBJECT_ARRAY);
	assert_int_equal(m->ptr[4].val.via.array.size, 2);
	assert_int_equal(m->ptr[5].val.type, MSGPACK_OBJECT_MAP);
	msgpack_unpacked_destroy(&up);
	cfg_free(&c);
}

/* time_zone = "Europe/Berlin": taken as given; TZ of the process plays no part. */
static void test_time_zone(void **state)
{
	(void)state;
	struct cfg c;
	char err[1024] = "";
	setenv("TZ", "America/New_York", 1);
	assert_int_equal(
	    cfg_load_string(&c, NODE "data_dir = \"/d\";\ntime_zone = \"Europe/Berlin\";\n",
			    "t.cfg", "/", err, sizeof err),
	    0);
	assert_string_equal(c.time_zone, "Europe/Berlin");
	cfg_free(&c);
	assert_int_equal(
	    cfg_load_string(&c, NODE "data_dir = \"/d\";\n", "t.cfg", "/", err, sizeof err), 0);
	assert_string_equal(c.time_zone, "Asia/Shanghai");
	cfg_free(&c);
	/* Without tzdata even the default is refused, saying so. */
	setenv("TZDIR", "/nonexistent", 1);
	assert_int_equal(
	    cfg_load_string(&c, NODE "data_dir = \"/d\";\n", "t.cfg", "/", err, sizeof err),
	    LINLI_ECONFIG);
	assert_non_null(
	    strstr(err, "t.cfg: time_zone: 'Asia/Shanghai' (the default) is not a time zone"));
	assert_non_null(strstr(err, "is tzdata installed?"));
	unsetenv("TZDIR");
	unsetenv("TZ");
}

static void test_missing_file(void **state)
{
	(void)state;
	struct cfg c;
	char err[1024] = "";
	assert_int_equal(cfg_load_file(&c, "/nonexistent/linli.cfg", err, sizeof err),
			 LINLI_ECONFIG);
	assert_non_null(strstr(err, "/nonexistent/linli.cfg: cannot read"));
}

static void test_relative_paths_follow_the_file(void **state)
{
	(void)state;
	char dir[] = "/tmp/linli-cfg-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[256];
	snprintf(path, sizeof path, "%s/linli.cfg", dir);
	FILE *f = fopen(path, "w");
	fputs(NODE "data_dir = \"data\";\nplugin_dirs = [ \"p1\", \"/abs/p2\" ];\n", f);
	fclose(f);
	struct cfg c;
	char err[1024] = "", want[300];
	assert_int_equal(cfg_load_file(&c, path, err, sizeof err), 0);
	snprintf(want, sizeof want, "%s/data", dir);
	assert_string_equal(c.data_dir, want);
	snprintf(want, sizeof want, "%s/p1", dir);
	assert_string_equal(c.plugin_dirs[0], want);
	assert_string_equal(c.plugin_dirs[1], "/abs/p2");
	cfg_free(&c);
	remove(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_example_parses),
		cmocka_unit_test(test_embedded_default),
		cmocka_unit_test(test_bad_cases),
		cmocka_unit_test(test_plugin_sections),
		cmocka_unit_test(test_time_zone),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_relative_paths_follow_the_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
