/*
 * metrics — what the node does, as the Prometheus text format (GET /metrics),
 * and what is degraded (GET /api/v1/health). Both read the counters the
 * subsystems already keep for `status`, `events stats`, `devices stats` and
 * `plugins list`; nothing here counts on its own. Kernel thread.
 *
 * Names follow Prometheus' conventions: a `linli_` prefix, base units
 * (bytes, seconds), `_total` on counters. Label values are escaped as the
 * format says (backslash, double quote, newline).
 */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "bus.h"
#include "control.h"
#include "hal.h"
#include "http.h"
#include "kernel.h"
#include "linli/error.h"
#include "plugin.h"
#include "scope.h"
#include "script.h"
#include "store.h"

struct mbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void put(struct mbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct mbuf *b, const char *fmt, ...)
{
	if (b->oom)
		return;
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap * 2 + (size_t)n;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}

/* A label value as the text format wants it: \\, \" and \n escaped. */
static void put_label(struct mbuf *b, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			put(b, "\\%c", *v);
		else if (*v == '\n')
			put(b, "\\n");
		else
			put(b, "%c", *v);
	}
}

static void family(struct mbuf *b, const char *name, const char *type, const char *help)
{
	put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void one(struct mbuf *b, const char *name, const char *type, const char *help,
		unsigned long long v)
{
	family(b, name, type, help);
	put(b, "%s %llu\n", name, v);
}

static void one_f(struct mbuf *b, const char *name, const char *help, double v)
{
	family(b, name, "gauge", help);
	put(b, "%s %.6f\n", name, v);
}

static uint64_t free_bytes(const char *dir, bool *known)
{
	struct statvfs vs;
	*known = statvfs(dir, &vs) == 0;
	return *known ? (uint64_t)vs.f_bavail * vs.f_frsize : 0;
}

/* ---- plugins ---- */

struct plug_count {
	unsigned long long n[PLUG_QUARANTINED + 1];
};

static void count_plugin(const char *name, enum plug_state st, const char *reason, void *ud)
{
	(void)name, (void)reason;
	struct plug_count *c = ud;
	if ((int)st >= 0 && st <= PLUG_QUARANTINED)
		c->n[st]++;
}

/* ---- Lua rules ---- */

static void rules_metrics(struct mbuf *b, const struct kernel *k)
{
	int n = k->rules ? script_rules_count(k->rules) : 0;
	unsigned long long by_state[SCRIPT_BROKEN + 1] = {0};
	for (int i = 0; i < n; i++)
		by_state[script_state(script_rules_at(k->rules, i))]++;
	family(b, "linli_lua_rules", "gauge", "Lua rules loaded, by state");
	for (int s = SCRIPT_READY; s <= SCRIPT_BROKEN; s++)
		put(b, "linli_lua_rules{state=\"%s\"} %llu\n", script_state_name(s), by_state[s]);
	static const struct {
		const char *name, *type, *help;
	} per[] = {
	    {"linli_lua_calls_total", "counter", "calls of the rule's handlers"},
	    {"linli_lua_errors_total", "counter", "calls that ended in an error"},
	    {"linli_lua_faults_total", "counter", "times the rule was faulted for breaking a limit"},
	    {"linli_lua_call_seconds_max", "gauge", "the longest call so far"},
	    {"linli_lua_memory_bytes", "gauge", "memory of the rule's Lua state"},
	    {"linli_lua_memory_refused_total", "counter", "allocations refused by its cap"},
	    {"linli_lua_depth_drops_total", "counter",
	     "events it published past lua.max_event_depth, dropped"},
	    {"linli_lua_delayed_total", "counter", "events it got a loop turn late"},
	};
	for (size_t f = 0; f < sizeof per / sizeof per[0]; f++) {
		family(b, per[f].name, per[f].type, per[f].help);
		for (int i = 0; i < n; i++) {
			const struct script *s = script_rules_at(k->rules, i);
			struct script_stats st;
			script_stats(s, &st);
			put(b, "%s{rule=\"", per[f].name);
			put_label(b, script_name(s));
			switch (f) {
			case 0:
				put(b, "\"} %llu\n", (unsigned long long)st.calls);
				break;
			case 1:
				put(b, "\"} %llu\n", (unsigned long long)st.errors);
				break;
			case 2:
				put(b, "\"} %llu\n", (unsigned long long)st.faults);
				break;
			case 3:
				put(b, "\"} %.3f\n", (double)st.max_ms / 1000.0);
				break;
			case 4:
				put(b, "\"} %zu\n", st.mem_used);
				break;
			case 5:
				put(b, "\"} %llu\n", (unsigned long long)st.mem_refused);
				break;
			case 6:
				put(b, "\"} %llu\n", (unsigned long long)st.depth_drops);
				break;
			default:
				put(b, "\"} %llu\n", (unsigned long long)st.delayed);
				break;
			}
		}
	}
}

int metrics_text(struct kernel *k, char **out, size_t *len)
{
	struct mbuf b = {.cap = 16384};
	if (!(b.p = malloc(b.cap)))
		return LINLI_ENOMEM;
	b.p[0] = '\0';

	family(&b, "linli_info", "gauge", "the node: path, tier level, version");
	put(&b, "linli_info{node=\"");
	put_label(&b, k->cfg.node_path);
	put(&b, "\",level=\"%s\",version=\"%s\"} 1\n", tier_level_name(k->cfg.node_level),
	    LINLI_VERSION);
	one(&b, "linli_uptime_seconds", "gauge", "seconds since linlid started",
	    (unsigned long long)((kernel_now_ms() - k->started_ms) / 1000));

	/* The store and the disk under it. */
	struct store_stats ss;
	if (k->store && store_stats(k->store, &ss) == 0) {
		one(&b, "linli_store_file_bytes", "gauge", "size of data.mdb", ss.file_bytes);
		one(&b, "linli_store_used_bytes", "gauge", "pages in use", ss.used_bytes);
		one(&b, "linli_store_map_bytes", "gauge", "bytes mapped", ss.map_size);
		one(&b, "linli_store_records", "gauge", "records in every dataset", ss.records);
		one(&b, "linli_store_index_entries", "gauge", "index entries", ss.index_entries);
		one(&b, "linli_store_journal_entries", "gauge", "events in the journal",
		    ss.journal_entries);
		one(&b, "linli_store_commits_total", "counter", "group commits", ss.commits);
		one(&b, "linli_store_writes_total", "counter", "writes committed", ss.writes);
		one(&b, "linli_store_failed_commits_total", "counter",
		    "commits that failed (a full disk, an I/O error)", ss.failed_commits);
		one(&b, "linli_store_map_grows_total", "counter", "times the map grew",
		    ss.map_grows);
		one_f(&b, "linli_store_last_commit_seconds", "duration of the last commit",
		      (double)ss.last_commit_us / 1e6);
		one(&b, "linli_store_readers", "gauge", "reader slots in use", ss.readers);
	}
	bool known;
	uint64_t freeb = free_bytes(k->cfg.data_dir, &known);
	if (known)
		one(&b, "linli_data_dir_free_bytes", "gauge",
		    "space left to unprivileged writers under data_dir", freeb);

	/* The console. */
	unsigned long long served, malformed, conns, cut;
	control_counters(k->control, &served, &malformed);
	control_conn_counters(k->control, &conns, &cut);
	one(&b, "linli_console_requests_total", "counter", "console requests served", served);
	one(&b, "linli_console_malformed_requests_total", "counter",
	    "console requests refused as malformed", malformed);
	one(&b, "linli_console_connections_total", "counter", "console connections", conns);
	one(&b, "linli_console_connections_cut_total", "counter",
	    "console connections cut (idle, stalled, over the limit)", cut);

	/* The bus. */
	if (k->bus) {
		struct bus_totals bt;
		struct bus_rq_totals rq;
		bus_get_totals(k->bus, &bt);
		bus_rq_get_totals(k->bus, &rq);
		one(&b, "linli_bus_events_published_total", "counter", "events published",
		    bt.published);
		one(&b, "linli_bus_events_consequence_total", "counter",
		    "records of consequence published (never shed)", bt.consequence_published);
		one(&b, "linli_bus_events_delivered_total", "counter", "deliveries to handlers",
		    bt.delivered);
		family(&b, "linli_bus_events_shed_total", "counter",
		       "telemetry shed: at the bus queue, at an external subscriber");
		put(&b, "linli_bus_events_shed_total{at=\"bus\"} %llu\n",
		    (unsigned long long)bt.shed);
		put(&b, "linli_bus_events_shed_total{at=\"subscriber\"} %llu\n",
		    (unsigned long long)bt.subscriber_shed);
		one(&b, "linli_bus_events_delayed_total", "counter",
		    "deliveries a loop turn's budget put off to a later turn (a flood)", bt.delayed);
		one(&b, "linli_bus_events_refused_total", "counter", "publishes refused",
		    bt.refused);
		one(&b, "linli_bus_handler_errors_total", "counter", "handlers that failed",
		    bt.handler_errors);
		one(&b, "linli_bus_subscriptions", "gauge", "subscriptions",
		    (unsigned long long)bt.subscriptions);
		one(&b, "linli_bus_requests_total", "counter", "requests between plugins",
		    rq.requests);
		one(&b, "linli_bus_replies_total", "counter", "requests answered", rq.replies);
		one(&b, "linli_bus_request_timeouts_total", "counter", "requests timed out",
		    rq.timeouts);
	}

	/* The devices. */
	if (k->hal) {
		struct hal_totals ht;
		hal_get_totals(k->hal, &ht);
		one(&b, "linli_hal_devices", "gauge", "devices in the registry", ht.devices);
		one(&b, "linli_hal_devices_open", "gauge", "devices a driver has open", ht.open);
		one(&b, "linli_hal_devices_online", "gauge", "devices online", ht.online);
		one(&b, "linli_hal_devices_unavailable", "gauge",
		    "devices open but not online (missed heartbeats, gone)",
		    ht.open > ht.online ? ht.open - ht.online : 0);
		one(&b, "linli_hal_readings_total", "counter", "readings accepted", ht.readings);
		one(&b, "linli_hal_readings_refused_total", "counter",
		    "readings refused (unknown point, out of range, malformed)", ht.refused);
		one(&b, "linli_hal_events_total", "counter", "device events", ht.events);
		one(&b, "linli_hal_events_shed_total", "counter", "device events shed", ht.shed);
		one(&b, "linli_hal_commands_total", "counter", "device commands sent",
		    ht.commands);
		one(&b, "linli_hal_command_timeouts_total", "counter",
		    "device commands unanswered in time", ht.timeouts);
		one(&b, "linli_hal_drivers", "gauge", "device drivers", ht.drivers);
	}

	/* Plugins and rules. */
	struct plug_count pc = {{0}};
	plug_each(k, count_plugin, &pc);
	family(&b, "linli_plugins", "gauge", "plugins known, by state");
	for (int s = PLUG_REFUSED; s <= PLUG_QUARANTINED; s++)
		put(&b, "linli_plugins{state=\"%s\"} %llu\n", plug_state_name(s), pc.n[s]);
	rules_metrics(&b, k);

	/* HTTP itself: answers by status (the scrape counts the one before it). */
	family(&b, "linli_http_responses_total", "counter", "HTTP answers sent, by status");
	for (int st = 100; st <= 599; st++) {
		unsigned long long n = http_status_count(k->http, st);
		if (n)
			put(&b, "linli_http_responses_total{code=\"%d\"} %llu\n", st, n);
	}

	if (b.oom) {
		free(b.p);
		return LINLI_ENOMEM;
	}
	*out = b.p;
	*len = b.len;
	return 0;
}

/* ---- health ---- */

struct degraded {
	json_t *arr;
};

static void degraded_plugin(const char *name, enum plug_state st, const char *reason, void *ud)
{
	(void)reason; /* `plugins info` says why, to an account that may see it */
	struct degraded *d = ud;
	if (st == PLUG_FAULTED || st == PLUG_FAILED || st == PLUG_QUARANTINED ||
	    st == PLUG_BLOCKED)
		json_array_append_new(d->arr, json_pack("{s:s,s:s,s:s}", "part", "plugin", "name",
							name, "state", plug_state_name(st)));
}

json_t *metrics_degraded(struct kernel *k)
{
	struct degraded d = {json_array()};
	if (!d.arr)
		return NULL;
	plug_each(k, degraded_plugin, &d);
	int n = k->rules ? script_rules_count(k->rules) : 0;
	for (int i = 0; i < n; i++) {
		const struct script *s = script_rules_at(k->rules, i);
		enum script_state st = script_state(s);
		if (st != SCRIPT_READY)
			json_array_append_new(d.arr,
					      json_pack("{s:s,s:s,s:s}", "part", "rule", "name",
							script_name(s), "state",
							script_state_name(st)));
	}
	bool known;
	uint64_t freeb = free_bytes(k->cfg.data_dir, &known);
	uint64_t min = (uint64_t)k->cfg.health_min_free_mb << 20;
	if (known && freeb < min)
		json_array_append_new(d.arr, json_pack("{s:s,s:I,s:I}", "part", "disk", "free_bytes",
						       (json_int_t)freeb, "min_free_bytes",
						       (json_int_t)min));
	return d.arr;
}
