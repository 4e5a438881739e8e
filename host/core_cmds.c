/*
 * core_cmds — the kernel's own console commands: status, help.
 * Each subsystem registers its commands in its own file; these are the ones
 * that belong to no subsystem. `status` shows the node's counters only to
 * callers whose jurisdiction covers the node.
 */
#include "core_cmds.h"

#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access.h"
#include "bus.h"
#include "clock.h"
#include "cmd.h"
#include "control.h"
#include "kernel.h"
#include "linli/error.h"
#include "mp.h"
#include "retention.h"
#include "util.h"

static uint64_t store_bytes(const struct kernel *k)
{
	char p[4096];
	struct stat st;
	snprintf(p, sizeof p, "%s/data.mdb", k->cfg.data_dir);
	return stat(p, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/*
 * What the node is shows to every account; what it did (requests,
 * connections, events, the store's size, its process) counts the whole
 * node's activity and shows only to callers whose jurisdiction covers it.
 */
static int cmd_status(struct cmd_call *call, void *ud)
{
	(void)ud;
	struct kernel *k = call->k;
	bool node = access_sees(call, NULL);
	msgpack_packer *pk = &call->pk;
	msgpack_pack_map(pk, node ? 24 : 9);
	mp_kv_str(pk, "node", k->cfg.node_path);
	mp_kv_str(pk, "node_id", k->node_id);
	mp_kv_str(pk, "level", tier_level_name(k->cfg.node_level));
	mp_kv_str(pk, "name", k->cfg.node_name);
	mp_kv_str(pk, "version", LINLI_VERSION);
	mp_kv_uint(pk, "uptime_s", (kernel_now_ms() - k->started_ms) / 1000);
	mp_kv_int(pk, "plugins", k->plugin_count);
	/* The node's local time (logs stay in UTC); the test clock's, if moved. */
	char local[48];
	clock_local_text(wall_ms(), local, sizeof local);
	mp_kv_str(pk, "time_zone", k->cfg.time_zone);
	mp_kv_str(pk, "local_time", local);
	if (!node)
		return 0;
	unsigned long long served, malformed;
	control_counters(k->control, &served, &malformed);
	unsigned long long conns, cut;
	control_conn_counters(k->control, &conns, &cut);
	struct bus_totals bt = {0};
	if (k->bus)
		bus_get_totals(k->bus, &bt);
	mp_kv_int(pk, "pid", getpid());
	mp_kv_uint(pk, "store_bytes", store_bytes(k));
	mp_kv_str(pk, "data_dir", k->cfg.data_dir);
	mp_kv_uint(pk, "requests", served);
	mp_kv_uint(pk, "malformed_requests", malformed);
	mp_kv_uint(pk, "connections", conns);
	mp_kv_uint(pk, "connections_cut", cut);
	mp_kv_uint(pk, "listener_restarts", control_restarts(k->control));
	mp_kv_int(pk, "bus_subscriptions", bt.subscriptions);
	mp_kv_uint(pk, "events_published", bt.published);
	mp_kv_uint(pk, "events_consequence", bt.consequence_published);
	mp_kv_uint(pk, "events_shed", bt.shed + bt.subscriber_shed);
	mp_kv_uint(pk, "events_delayed", bt.delayed);
	mp_kv_bool(pk, "bus_journal", bt.journal);
	/* Each system dataset: size, oldest entry, writes per minute (retention.h). */
	mp_str(pk, "datasets");
	retention_pack_status(k, pk);
	return 0;
}

/* help [COMMAND [SUB]]: every command, or the usage of one command's subcommands. */
static int cmd_help(struct cmd_call *call, void *ud)
{
	(void)ud;
	if (call->argc > 3)
		return cmd_fail(call, LINLI_EINVAL, "usage: help [COMMAND [SUBCOMMAND]]");
	const char *name = call->argc > 1 ? call->argv[1] : NULL;
	const char *sub = call->argc > 2 ? call->argv[2] : NULL;
	if (name && !cmd_known(call->k->cmds, name))
		return cmd_fail(call, LINLI_ENOENT, "unknown command '%s'; try 'help'", name);
	if (cmd_pack_help_of(call->k->cmds, name, sub, &call->pk) == 0)
		return 0;
	return cmd_fail(call, LINLI_ENOENT, "'%s' has no subcommand '%s'; try 'help %s'", name,
			sub, name);
}

int core_cmds_register(struct kernel *k)
{
	int rc = cmd_register(k->cmds, "status", NULL, "",
			      "node path, tier level, version, uptime, plugins, store size",
			      cmd_status, NULL, k);
	if (!rc)
		rc = cmd_register(k->cmds, "help", NULL, "[COMMAND [SUBCOMMAND]]",
				  "list the commands, or one command's usage",
				  cmd_help, NULL, k);
	return rc;
}
