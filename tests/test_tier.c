/*
 * Unit tests of host/tier.c: the role table, the one check, masking, passwords, tokens;
 * and of access.c's gates table, which applies them to console commands.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <string.h>

#include "access.h"
#include "linli/error.h"
#include "tier.h"
#include "tier_tree.h"
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static struct tier_principal person(const char *scope, enum tier_role role,
				    const char *const *grants)
{
	return (struct tier_principal){PRINCIPAL_PERSON, "u", scope, role, grants, NULL, NULL};
}

static void test_scope_rules(void **state)
{
	(void)state;
	char why[256];
	struct tier_principal st = person("hefei/baohe/binhu", ROLE_OPERATOR, NULL);
	assert_int_equal(tier_check(&st, ACT_DATA_READ, "hefei/baohe/binhu", "x", why, sizeof why), 0);
	assert_int_equal(tier_check(&st, ACT_DATA_READ, "hefei/baohe/binhu/yuelan", "x", why,
				    sizeof why),
			 0);
	/* sibling, sibling with a shared prefix, parent */
	assert_int_equal(tier_check(&st, ACT_DATA_READ, "hefei/baohe/fanhua", "x", why, sizeof why),
			 LINLI_EPERM);
	assert_non_null(strstr(why, "outside its jurisdiction"));
	assert_int_equal(tier_check(&st, ACT_DATA_READ, "hefei/baohe/binhu2", "x", why, sizeof why),
			 LINLI_EPERM);
	assert_int_equal(tier_check(&st, ACT_DATA_READ, "hefei/baohe", "x", why, sizeof why),
			 LINLI_EPERM);
	/* the city sees all */
	struct tier_principal city = person("hefei", ROLE_VIEWER, NULL);
	assert_int_equal(tier_check(&city, ACT_DATA_READ, "hefei/shushan/a/b", "x", why, sizeof why),
			 0);
	assert_int_equal(tier_check(&city, ACT_DATA_WRITE, "hefei/shushan/a/b", "x", why, sizeof why),
			 LINLI_EPERM);
	assert_non_null(strstr(why, "role viewer at city level may not data.write"));
}

static void test_role_table(void **state)
{
	(void)state;
	assert_true(tier_role_allows(ROLE_ADMIN, TIER_STREET, ACT_ACCOUNTS_MANAGE));
	assert_false(tier_role_allows(ROLE_OPERATOR, TIER_STREET, ACT_ACCOUNTS_MANAGE));
	assert_true(tier_role_allows(ROLE_OPERATOR, TIER_COMMUNITY, ACT_DEVICE_COMMAND));
	assert_false(tier_role_allows(ROLE_OPERATOR, TIER_CITY, ACT_DEVICE_COMMAND));
	assert_true(tier_role_allows(ROLE_GRID_WORKER, TIER_GRID, ACT_DATA_WRITE));
	assert_false(tier_role_allows(ROLE_GRID_WORKER, TIER_COMMUNITY, ACT_DATA_READ));
	assert_false(tier_role_allows(ROLE_ADMIN, TIER_GRID, ACT_DATA_READ));
	assert_true(tier_role_allows(ROLE_AUDITOR, TIER_DISTRICT, ACT_AUDIT_READ));
	assert_false(tier_role_allows(ROLE_VIEWER, TIER_DISTRICT, ACT_AUDIT_READ));
	assert_false(tier_role_allows(ROLE_AUDITOR, TIER_DISTRICT, ACT_DATA_WRITE));
	assert_int_equal(tier_role_parse("grid_worker"), ROLE_GRID_WORKER);
	assert_int_equal(tier_role_parse("root"), ROLE_NONE);
	assert_int_equal(tier_action_parse("audit.read"), ACT_AUDIT_READ);
	assert_int_equal(tier_action_parse("nope"), ACT_COUNT);
}

static void test_plugin_caps(void **state)
{
	(void)state;
	char why[256];
	const char *const grants[] = {"store.read:incidents", "store.write:*",
				      "bus.publish:incident/#", NULL};
	struct tier_principal p = {PRINCIPAL_PLUGIN, "grid", "hefei/baohe", ROLE_NONE, grants, NULL, NULL};
	assert_int_equal(tier_check(&p, ACT_DATA_READ, "hefei/baohe/x", "incidents", why, sizeof why),
			 0);
	assert_int_equal(tier_check(&p, ACT_DATA_READ, "hefei/baohe/x", "residents", why, sizeof why),
			 LINLI_EPERM);
	assert_non_null(strstr(why, "store.read:residents"));
	assert_int_equal(tier_check(&p, ACT_DATA_WRITE, "hefei/baohe", "residents", why, sizeof why),
			 0);
	assert_int_equal(tier_check(&p, ACT_EVENTS_PUBLISH, "hefei/baohe", "incident/dispatched",
				    why, sizeof why),
			 0);
	assert_int_equal(tier_check(&p, ACT_EVENTS_PUBLISH, "hefei/baohe", "alarm/raised", why,
				    sizeof why),
			 LINLI_EPERM);
	assert_int_equal(tier_check(&p, ACT_DATA_READ, "hefei/shushan", "incidents", why, sizeof why),
			 LINLI_EPERM);
	assert_int_equal(tier_check(&p, ACT_ACCOUNTS_MANAGE, "hefei/baohe", NULL, why, sizeof why),
			 LINLI_EPERM);
	assert_true(tier_cap_covers("bus.subscribe:dev/+/+/event/#", "bus.subscribe:dev/smoke/s1/event/alarm"));
	assert_false(tier_cap_covers("bus.subscribe:dev/+/+/event/#", "bus.subscribe:dev/smoke/s1/battery"));
	assert_false(tier_cap_covers("store.read:inc", "store.read:incidents"));
	assert_true(tier_cap_covers("store.read", "store.read:incidents"));
	/* A filter covers a filter only if it matches every topic the other does. */
	assert_true(tier_cap_covers("bus.subscribe:test/in/#", "bus.subscribe:test/in/#"));
	assert_true(tier_cap_covers("bus.subscribe:test/#", "bus.subscribe:test/in/+"));
	assert_true(tier_cap_covers("bus.subscribe:test/+", "bus.subscribe:test/+"));
	assert_false(tier_cap_covers("bus.subscribe:test/in/+", "bus.subscribe:test/in/#"));
	assert_false(tier_cap_covers("bus.subscribe:test/in/x", "bus.subscribe:test/in/+"));
	assert_false(tier_cap_covers("bus.publish:good/+", "bus.publish:good/#"));
	assert_true(tier_cap_covers("bus.publish:#", "bus.publish:good/#"));
	/* A Lua rule is checked like a plugin, and named as a rule. */
	const char *const rgrants[] = {"bus.publish:alarm/smoke/#", NULL};
	struct tier_principal r = {PRINCIPAL_RULE, "smoke", "hefei/baohe", ROLE_NONE, rgrants, NULL, NULL};
	assert_int_equal(tier_check(&r, ACT_EVENTS_PUBLISH, "hefei/baohe/binhu", "alarm/smoke/x",
				    why, sizeof why),
			 0);
	assert_int_equal(
	    tier_check(&r, ACT_EVENTS_PUBLISH, "hefei/baohe", "alarm/fire", why, sizeof why),
	    LINLI_EPERM);
	assert_string_equal(why, "rule 'smoke' holds no granted capability bus.publish:alarm/fire");
	assert_int_equal(
	    tier_check(&r, ACT_EVENTS_PUBLISH, "hefei", "alarm/smoke/x", why, sizeof why),
	    LINLI_EPERM);
	assert_non_null(strstr(why, "rule 'smoke' of hefei/baohe may not act on hefei"));
	struct tier_principal none = {PRINCIPAL_RULE, "quiet", "hefei/baohe", ROLE_NONE, NULL, NULL, NULL};
	assert_int_equal(tier_check(&none, ACT_DATA_READ, "hefei/baohe", "x", why, sizeof why),
			 LINLI_EPERM);
}

/* What an admin may grant: known kinds, arguments checked. */
static void test_cap_syntax(void **state)
{
	(void)state;
	char why[256];
	const char *good[] = {"store.read", "store.read:residents", "store.write:*",
			      "bus.publish:alarm/#", "bus.subscribe:dev/+/+/event/#",
			      "hal.driver:sim", "sensitive", "sensitive:residents",
			      "net.connect", "catalog.read", "device.command:door"};
	for (size_t i = 0; i < sizeof good / sizeof *good; i++)
		assert_int_equal(tier_cap_check(good[i], why, sizeof why), 0);
	const struct {
		const char *cap, *needle;
	} bad[] = {
	    {"store.raed:x", "unknown capability"},  {"", "unknown capability"},
	    {"store.read:Residents", "not a name"},  {"store.read:", "not a name"},
	    {"bus.publish:a/#/b", "not a topic filter"}, {"bus.publish:a//b", "not a topic filter"},
	    {"bus.publish:a b", "not a topic filter"},   {"net.connect:host", "no argument"},
	    {"hal.driver:a-b", "not a name"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		assert_int_equal(tier_cap_check(bad[i].cap, why, sizeof why), LINLI_EINVAL);
		assert_non_null(strstr(why, bad[i].needle));
	}
}

static void test_sensitive_grant(void **state)
{
	(void)state;
	const char *const all[] = {"sensitive", NULL};
	const char *const res[] = {"sensitive:residents", NULL};
	struct tier_principal a = person("hefei", ROLE_OPERATOR, all);
	struct tier_principal r = person("hefei", ROLE_OPERATOR, res);
	struct tier_principal n = person("hefei", ROLE_OPERATOR, NULL);
	assert_true(tier_sees_sensitive(&a, "elders"));
	assert_true(tier_sees_sensitive(&r, "residents"));
	assert_false(tier_sees_sensitive(&r, "elders"));
	assert_false(tier_sees_sensitive(&n, "residents"));
}

static void check_mask(enum mask_kind m, const char *in, const char *want)
{
	char out[128];
	tier_mask(m, in, strlen(in), out, sizeof out);
	assert_string_equal(out, want);
}

static void test_masking(void **state)
{
	(void)state;
	check_mask(MASK_ID_NUMBER, "340104199001011234", "340***********1234");
	check_mask(MASK_PHONE, "13812345678", "138****5678");
	check_mask(MASK_NAME, "张三", "张*");
	check_mask(MASK_NAME, "欧阳娜娜", "欧***");
	check_mask(MASK_ADDRESS, "安徽省合肥市包河区滨湖街道", "安徽省合肥市****");
	check_mask(MASK_HEALTH, "高血压", "***");
	check_mask(MASK_PHONE, "123", "1**");
	assert_int_equal(tier_mask_parse("phone"), MASK_PHONE);
	assert_int_equal(tier_mask_parse("iris"), MASK_NONE);
}

static void test_passwords_and_tokens(void **state)
{
	(void)state;
	char why[128], h[TIER_HASH_MAX];
	assert_int_equal(tier_password_ok("zhangsan", "short", why, sizeof why), LINLI_EINVAL);
	assert_int_equal(tier_password_ok("zhangsan", "zhangsan2024!", why, sizeof why), LINLI_EINVAL);
	assert_non_null(strstr(why, "username"));
	assert_int_equal(tier_password_ok("zhangsan", "aaaaaaaaaaaa", why, sizeof why), LINLI_EINVAL);
	assert_int_equal(tier_password_ok("zhangsan", "Correct-Horse-9", why, sizeof why), 0);
	assert_int_equal(tier_password_hash("Correct-Horse-9", h), 0);
	assert_true(strncmp(h, "$argon2id$", 10) == 0);
	assert_null(strstr(h, "Correct-Horse-9"));
	assert_true(tier_password_verify(h, "Correct-Horse-9"));
	assert_false(tier_password_verify(h, "Correct-Horse-8"));
	assert_non_null(strstr(h, "$m=65536,")); /* interactive: 64 MiB */
	/* accounts.pwhash_memory_mb: a small box's memory, kept in the hash, verified. */
	assert_int_equal(tier_password_hash_with("Correct-Horse-9", TIER_PW_INTERACTIVE, 8, h), 0);
	assert_non_null(strstr(h, "$m=8192,"));
	assert_true(tier_password_verify(h, "Correct-Horse-9"));
	assert_false(tier_password_verify(h, "Correct-Horse-8"));
	char t1[65], t2[65];
	tier_token_new(t1);
	tier_token_new(t2);
	assert_int_equal(strlen(t1), 64);
	assert_string_not_equal(t1, t2);
}

static void test_tree_shipped(void **state)
{
	(void)state;
	struct tier_tree t;
	char err[512] = "";
	assert_int_equal(tier_tree_load(&t, SRCDIR "/catalog/tree.cfg", 0, err, sizeof err), 0);
	/* one city, two districts, each two streets of two communities of two grids */
	assert_int_equal(t.n, 1 + 2 * (1 + 2 * (1 + 2 * (1 + 2))));
	const struct tier_node *n = tier_tree_find(&t, "hefei/baohe/binhu/yuelan");
	assert_non_null(n);
	assert_int_equal(n->level, TIER_COMMUNITY);
	assert_string_equal(n->name, "悦澜社区");
	assert_null(tier_tree_find(&t, "hefei/baohe/binhu/nowhere"));
	int first, cnt = tier_tree_subtree(&t, "hefei/baohe/binhu", &first);
	assert_int_equal(cnt, 1 + 2 * 3);
	for (int i = first; i < first + cnt; i++)
		assert_true(scope_within("hefei/baohe/binhu", t.v[i].path));
	assert_string_equal(t.v[first].path, "hefei/baohe/binhu");
	tier_tree_free(&t);
}

static void tree_bad(const char *text, const char *want)
{
	char path[] = "/tmp/linli-tree-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	struct tier_tree t;
	char err[512] = "";
	assert_int_equal(tier_tree_load(&t, path, 0, err, sizeof err), LINLI_ECONFIG);
	unlink(path);
	if (!strstr(err, want)) {
		print_error("error \"%s\" lacks \"%s\"\n", err, want);
		fail();
	}
}

static void test_tree_bad(void **state)
{
	(void)state;
	tree_bad("tree = (\n { path = \"a\"; code = \"1\"; name = \"A\"; },\n"
		 " { path = \"a/b/c\"; code = \"2\"; name = \"C\"; }\n);\n",
		 ":3: a/b/c: parent a/b is not listed before it");
	tree_bad("tree = (\n { path = \"a\"; code = \"1\"; name = \"A\"; },\n"
		 " { path = \"a\"; code = \"2\"; name = \"A\"; }\n);\n",
		 ":3: duplicate path 'a'");
	tree_bad("tree = (\n { path = \"a\"; code = \"1\"; name = \"A\"; },\n"
		 " { path = \"a/b\"; code = \"1\"; name = \"B\"; }\n);\n",
		 ":3: code '1' of a/b is already a's");
	tree_bad("tree = (\n { path = \"A\"; code = \"1\"; name = \"A\"; }\n);\n",
		 ":2: bad path 'A'");
	tree_bad("tree = (\n { path = \"a\"; code = \"1\"; }\n);\n",
		 ":2: tree entry 1 needs path, code and name");
	tree_bad("tree = (\n { path = \"a\"; code = \"1\"; name = \"x\"; lvl = 1; }\n);\n",
		 ":2: tree entry 1: unknown key 'lvl'");
}

/*
 * The gates: node-wide commands are checked at the node's path, so on a city
 * node a street or community admin is refused what the city's admin may do.
 */
static void test_gates(void **state)
{
	(void)state;
	const char *node_wide[][2] = {{"store", "backup"},    {"store", "stats"},
				      {"plugins", "install"}, {"plugins", "grant"},
				      {"rules", "install"},   {"devices", "discover"}};
	for (size_t i = 0; i < sizeof node_wide / sizeof node_wide[0]; i++) {
		const struct access_gate_row *g =
		    access_gate_find(node_wide[i][0], node_wide[i][1]);
		assert_non_null(g);
		assert_int_equal(g->reach, REACH_NODE);
		assert_false(g->in_handler);
	}
	/* A word alone matches its row whatever follows; an unknown command has none. */
	assert_string_equal(access_gate_find("audit", "--scope")->name, "audit");
	assert_int_equal(access_gate_find("publish", "alarm/raised")->act, ACT_EVENTS_PUBLISH);
	assert_null(access_gate_find("tp_store", "scan"));
	assert_null(access_gate_find("store", "nosuch"));
	assert_int_equal(access_gate_find("login", NULL)->reach, REACH_OPEN);
	assert_int_equal(access_gate_find("accounts", "remove")->act, ACT_ACCOUNTS_MANAGE);
	/* Every row once; a node-wide one asks more than status. */
	size_t n;
	const struct access_gate_row *v = access_gates(&n);
	assert_true(n > 50);
	for (size_t i = 0; i < n; i++) {
		for (size_t j = i + 1; j < n; j++)
			assert_false(strcmp(v[i].name, v[j].name) == 0 &&
				     ((!v[i].sub && !v[j].sub) ||
				      (v[i].sub && v[j].sub && strcmp(v[i].sub, v[j].sub) == 0)));
		if (v[i].reach == REACH_NODE)
			assert_int_not_equal(v[i].act, ACT_STATUS);
	}
	/* What the gate then asks of tier_check, at the node's own path. */
	char why[256];
	struct tier_principal city = person("hefei", ROLE_ADMIN, NULL);
	struct tier_principal street = person("hefei/baohe/binhu", ROLE_ADMIN, NULL);
	struct tier_principal comm = person("hefei/baohe/binhu/yuelan", ROLE_ADMIN, NULL);
	assert_int_equal(tier_check(&city, ACT_STORE_ADMIN, "hefei", NULL, why, sizeof why), 0);
	assert_int_equal(tier_check(&street, ACT_STORE_ADMIN, "hefei", NULL, why, sizeof why),
			 LINLI_EPERM);
	assert_int_equal(tier_check(&comm, ACT_STORE_ADMIN, "hefei", NULL, why, sizeof why),
			 LINLI_EPERM);
	assert_non_null(strstr(why, "may not act on hefei"));
	assert_string_equal(access_reach_name(REACH_NODE), "node-wide");
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_scope_rules),
	    cmocka_unit_test(test_role_table),
	    cmocka_unit_test(test_plugin_caps),
	    cmocka_unit_test(test_sensitive_grant),
	    cmocka_unit_test(test_cap_syntax),
	    cmocka_unit_test(test_masking),
	    cmocka_unit_test(test_passwords_and_tokens),
	    cmocka_unit_test(test_tree_shipped),
	    cmocka_unit_test(test_tree_bad),
	    cmocka_unit_test(test_gates),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
