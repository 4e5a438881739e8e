/*
 * Unit tests of host/cmd.c: dispatch by word and sub-word, unknown commands,
 * owners, pending calls finished later or cancelled at shutdown.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "linli/error.h"

static int finished_rc;
static int finished_n;
static char finished_err[256];

static void on_finish(struct cmd_call *call, int rc)
{
	finished_rc = rc;
	finished_n++;
	snprintf(finished_err, sizeof finished_err, "%s", call->err);
	cmd_call_free(call);
}

static struct cmd_call *mk(int argc, char **argv)
{
	struct cmd_call *c = cmd_call_new(NULL, argc, argv);
	c->finish = on_finish;
	return c;
}

static int h_ok(struct cmd_call *call, void *ud)
{
	msgpack_pack_int(&call->pk, *(int *)ud);
	return 0;
}

static struct cmd_call *parked;
static int cancelled;

static int h_pending(struct cmd_call *call, void *ud)
{
	(void)ud;
	parked = call;
	return CMD_PENDING;
}

static void on_cancel(struct cmd_call *call, void *arg)
{
	(void)call;
	(void)arg;
	parked = NULL;
	cancelled++;
}

static int h_pending_cancellable(struct cmd_call *call, void *ud)
{
	(void)ud;
	parked = call;
	call->on_cancel = on_cancel;
	return CMD_PENDING;
}

static void test_dispatch(void **state)
{
	(void)state;
	struct cmd_registry *r = cmd_registry_new();
	int one = 1, two = 2, owner;
	assert_int_equal(cmd_register(r, "plugins", "list", "", "", h_ok, &one, NULL), 0);
	assert_int_equal(cmd_register(r, "status", NULL, "", "", h_ok, &two, NULL), 0);
	assert_int_equal(cmd_register(r, "status", NULL, "", "", h_ok, &two, NULL), LINLI_EEXIST);
	assert_int_equal(cmd_register(r, "grid", "dispatch", "", "", h_ok, &one, &owner), 0);

	char *a1[] = {"plugins", "list"};
	cmd_dispatch(r, mk(2, a1));
	assert_int_equal(finished_rc, 0);
	char *a2[] = {"plugins", "frob"};
	cmd_dispatch(r, mk(2, a2));
	assert_int_equal(finished_rc, LINLI_ENOENT);
	assert_non_null(strstr(finished_err, "unknown subcommand 'plugins frob'"));
	char *a3[] = {"plugins"};
	cmd_dispatch(r, mk(1, a3));
	assert_int_equal(finished_rc, LINLI_EINVAL);
	assert_non_null(strstr(finished_err, "needs a subcommand"));
	char *a4[] = {"nope"};
	cmd_dispatch(r, mk(1, a4));
	assert_int_equal(finished_rc, LINLI_ENOENT);
	assert_non_null(strstr(finished_err, "unknown command 'nope'"));

	/* Removing an owner's commands. */
	assert_int_equal(cmd_unregister_owner(r, &owner), 1);
	char *a5[] = {"grid", "dispatch"};
	cmd_dispatch(r, mk(2, a5));
	assert_int_equal(finished_rc, LINLI_ENOENT);
	cmd_registry_free(r);
}

static void test_flags(void **state)
{
	(void)state;
	char *a[] = {"data", "put", "--all", "x"};
	struct cmd_call *c = mk(4, a);
	assert_true(cmd_flag(c, "--all"));
	assert_false(cmd_flag(c, "--all"));
	assert_int_equal(c->argc, 3);
	assert_string_equal(c->argv[2], "x");
	cmd_call_free(c);
}

static void test_pending(void **state)
{
	(void)state;
	struct cmd_registry *r = cmd_registry_new();
	assert_int_equal(cmd_register(r, "wait", NULL, "", "", h_pending, NULL, NULL), 0);
	assert_int_equal(cmd_register(r, "poll", NULL, "", "", h_pending_cancellable, NULL, NULL), 0);
	finished_n = 0;
	char *a[] = {"wait"};
	cmd_dispatch(r, mk(1, a));
	assert_int_equal(finished_n, 0);
	assert_non_null(parked);
	cmd_finish(parked, 0);
	assert_int_equal(finished_n, 1);
	assert_int_equal(finished_rc, 0);

	/* Two pending polls cancelled at shutdown: each handler told, each call failed. */
	char *b[] = {"poll"};
	cmd_dispatch(r, mk(1, b));
	cmd_dispatch(r, mk(1, b));
	assert_int_equal(finished_n, 1);
	cmd_cancel_pending(r);
	assert_int_equal(cancelled, 2);
	assert_int_equal(finished_n, 3);
	assert_int_equal(finished_rc, LINLI_ESTATE);
	assert_non_null(strstr(finished_err, "shutting down"));
	cmd_cancel_pending(r); /* nothing left */
	assert_int_equal(finished_n, 3);
	cmd_registry_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dispatch),
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_pending),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
