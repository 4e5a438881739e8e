/*
 * Fuzz target: control requests (host/control.c, host/cmd.c): the bytes of
 * one request are decoded as linlid decodes them and dispatched to the
 * handler boundary. The handlers here stand in for the real ones (which need
 * a running node) and do what every real handler starts with: parse their
 * options with cmd_args, take flags, and read a JSON input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "control.h"
#include "fuzzkit.h"
#include "json.h"
#include "kernel.h"
#include "linli/error.h"
#include "mp.h"

static const struct cmd_opt opts[] = {
    {"scope", 1}, {"id", 2}, {"where", 4}, {"limit", 8}, {"after", 16}, {"role", 32}, {NULL, 0},
};

static int take(struct cmd_call *call, void *ud, int bit, const char *value)
{
	(void)ud;
	if (bit == 8 && (strtol(value, NULL, 10) < 1))
		return cmd_fail(call, LINLI_EINVAL, "limit: bad number '%s'", value);
	return 0;
}

static int handler(struct cmd_call *call, void *ud)
{
	(void)ud;
	cmd_flag(call, "--all");
	const char *pos[8];
	int n_pos;
	int rc =
	    cmd_args(call, opts, (int)(intptr_t)ud ? 63 : 1, pos, 8, &n_pos, "[ARGS]", take, NULL);
	if (rc)
		return rc;
	if (call->input) {
		char err[256];
		msgpack_sbuffer sb;
		msgpack_packer pk;
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		rc = json_parse_to_mp(call->input, call->input_len, &pk, err, sizeof err);
		if (!rc && mp_check(sb.data, sb.size, MP_MAX_DEPTH, 0, err, sizeof err) != 0)
			abort(); /* what the kernel packs must always pass its own check */
		msgpack_sbuffer_destroy(&sb);
		if (rc)
			return cmd_fail(call, rc, "input: %s", err);
	}
	msgpack_pack_array(&call->pk, (size_t)n_pos);
	for (int i = 0; i < n_pos; i++)
		mp_str(&call->pk, pos[i]);
	return 0;
}

static void finish(struct cmd_call *call, int rc)
{
	(void)rc;
	cmd_call_free(call);
}

static struct kernel k;
static struct cmd_registry *reg;

static void setup(void)
{
	if (reg)
		return;
	fuzz_quiet();
	reg = cmd_registry_new();
	static const char *const cmds[][2] = {
	    {"status", NULL},	 {"help", NULL},       {"login", NULL},	    {"data", "put"},
	    {"data", "get"},	 {"data", "query"},    {"devices", "list"}, {"events", "journal"},
	    {"accounts", "add"}, {"plugins", "grant"}, {"store", "backup"}, {"rules", "test"},
	};
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
		cmd_register(reg, cmds[i][0], cmds[i][1], "[ARGS]", "fuzz", handler,
			     (void *)(intptr_t)(cmds[i][1] != NULL), NULL);
	k.cmds = reg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup();
	char err[256];
	struct cmd_call *call = control_decode(&k, data, size, err, sizeof err);
	if (!call)
		return 0;
	call->finish = finish;
	cmd_dispatch(reg, call);
	return 0;
}
