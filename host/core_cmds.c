/*
 * core_cmds — the kernel's own console commands: status, help.
 * Each subsystem registers its commands in its own file; these are the ones
 * that belong to no subsystem.
 */
#include "core_cmds.h"

#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access.h"
#include "bus.h"
#include "cmd.h"
#include "control.h"
#include "kernel.h"
#include "mp.h"

static uint64_t store_bytes(const struct kernel *k)
{
	char p[4096];
	struct stat st;
	snprintf(p, sizeof p, "%s/data.mdb", k->cfg.data_dir);
	return stat(p, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static int cmd_status(struct cmd_call *call, void *ud)
{
	(void)ud;
	struct kernel *k = call->k;
	unsigned long long served, malformed;
	control_counters(k->control, &served, &malformed);
	unsigned long long conns, cut;
	control_conn_counters(k->control, &conns, &cut);
	struct bus_totals bt = {0};
	if (k->bus)
		bus_get_totals(k->bus, &bt);
	msgpack_packer *pk = &call->pk;
	/*
	 * Which node answers is everyone's to know; the figures of the whole
	 * node (its store, its requests, its bus) only its own accounts'.
	 */
	bool whole = access_holds_node(call, ACT_STATUS);
	msgpack_pack_map(pk, whole ? 19 : 5);
	mp_kv_str(pk, "node", k->cfg.node_path);
	mp_kv_str(pk, "level", tier_level_name(k->cfg.node_level));
	mp_kv_str(pk, "name", k->cfg.node_name);
	mp_kv_str(pk, "version", LINLI_VERSION);
	mp_kv_uint(pk, "uptime_s", (kernel_now_ms() - k->started_ms) / 1000);
	if (!whole)
		return 0;
	mp_kv_int(pk, "pid", getpid());
	mp_kv_int(pk, "plugins", k->plugin_count);
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
	mp_kv_bool(pk, "bus_journal", bt.journal);
	return 0;
}

static int cmd_help(struct cmd_call *call, void *ud)
{
	(void)ud;
	cmd_pack_help(call->k->cmds, &call->pk);
	return 0;
}

int core_cmds_register(struct kernel *k)
{
	int rc = cmd_register(k->cmds, "status", NULL, "",
			      "node path, tier level, version, uptime, plugins, store size",
			      cmd_status, NULL, k);
	if (!rc)
		rc = cmd_register(k->cmds, "help", NULL, "[COMMAND]", "list the commands",
				  cmd_help, NULL, k);
	return rc;
}
