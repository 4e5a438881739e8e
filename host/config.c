/*
 * config — see config.h.
 *
 * Validation is table driven: `keys[]` lists every setting linlid knows with
 * its libconfig type. A walk over the parsed tree refuses anything not in the
 * table (a typo must never be silently ignored), then each value is checked
 * for meaning (levels, paths, sizes). Later subsystems add their keys here.
 */
#include "config.h"

#include <errno.h>
#include <libconfig.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus.h"
#include "clock.h"
#include "linli/error.h"
#include "log.h"
#include "store.h"

const char cfg_embedded_default[] =
	"# linlid embedded default: the demo street node and its two communities\n"
	"# (yuelan 悦澜社区 and qiming 启明社区: a street's platform holds its\n"
	"# communities' data), data under ./var, the simulated device fleet of\n"
	"# plugins/sim in both (paths relative to the working directory: tools/demo\n"
	"# runs it from the source tree).\n"
	"node = {\n"
	"  path = \"hefei/baohe/binhu\";\n"
	"  level = \"street\";\n"
	"  name = \"滨湖世纪社区街道\";\n"
	"};\n"
	"data_dir = \"var\";\n"
	"log_level = \"info\";\n"
	"catalog_dir = \"catalog\";\n"
	"plugin_dirs = [ \"build/plugins/sim\", \"build/plugins/alarms\", \"build/plugins/grid\",\n"
	"                \"build/plugins/fire\", \"build/plugins/access\", \"build/plugins/perimeter\",\n"
	"                \"build/plugins/watch\", \"build/plugins/lockers\", \"build/plugins/parking\",\n"
	"                \"build/plugins/charging\", \"build/plugins/eldercare\", \"build/plugins/services\",\n"
	"                \"build/plugins/collection\" ];\n"
	"script_dirs = [ \"scripts\" ];  # the repo's Lua applications (scripts/apps)\n"
	"store = { sync = true; };\n"
	"# the open-data API on loopback: kiosks (tools/kiosk-sim) and apps (README, \"Government\n"
	"# services\", \"Living circle\"), and the big screen at /screen/ (README, \"The community\n"
	"# big screen\")\n"
	"http = { listen = \"http://127.0.0.1:8080\"; web_dir = \"web\"; };\n"
	"plugins = {\n"
	"  # three devices of each class in each community, one round a second\n"
	"  sim = { per_class = 3; seed = 1; tick_ms = 1000;\n"
	"          scope = [ \"hefei/baohe/binhu/yuelan\", \"hefei/baohe/binhu/qiming\" ]; };\n"
	"  # the node secret of pickup codes: beside the store, never in it (README, \"Parcel lockers\")\n"
	"  lockers = { secret_file = \"var/lockers.secret\"; };\n"
	"  # the welfare windows, checkpointed beside the store (README, \"Elderly care\")\n"
	"  eldercare = { checkpoint_file = \"var/eldercare.windows\"; grid = \"g01\"; };\n"
	"};\n";

enum { T_GROUP = CONFIG_TYPE_GROUP, T_INT = CONFIG_TYPE_INT, T_STR = CONFIG_TYPE_STRING,
       T_BOOL = CONFIG_TYPE_BOOL, T_LIST = CONFIG_TYPE_ARRAY };

struct key {
	const char *path;
	int type;
	bool required;
	const char *help;
};

static const struct key keys[] = {
	{"node", T_GROUP, true, "the node this linlid serves"},
	{"node.path", T_STR, true, "jurisdiction path, e.g. \"hefei/baohe\""},
	{"node.level", T_STR, true, "city, district, street or community"},
	{"node.name", T_STR, false, "display name"},
	{"time_zone", T_STR, false, "the node's time zone, e.g. \"Asia/Shanghai\" (the default)"},
	{"data_dir", T_STR, true, "directory for the store, lock and sockets"},
	{"log_level", T_STR, false, "error, warn, info or debug"},
	{"control", T_GROUP, false, "the console's request/reply socket"},
	{"control.listen", T_LIST, false, "addresses: ipc://, tcp://, tls+tcp://"},
	{"control.tls_cert", T_STR, false, "PEM certificate for tls+tcp://"},
	{"control.tls_key", T_STR, false, "PEM key for tls+tcp://"},
	{"control.max_request", T_INT, false, "largest request, bytes"},
	{"control.workers", T_INT, false, "requests served at once"},
	{"control.idle_timeout_ms", T_INT, false, "cut a connection idle or stalled this long"},
	{"accounts", T_GROUP, false, "accounts and sessions"},
	{"accounts.session_ttl_s", T_INT, false, "seconds a console session lasts"},
	{"accounts.lockout_attempts", T_INT, false, "failed logins before a lockout"},
	{"accounts.lockout_s", T_INT, false, "seconds a lockout lasts"},
	{"accounts.pwhash", T_STR, false, "interactive, moderate, or min (tests only)"},
	{"accounts.pwhash_memory_mb", T_INT, false,
	 "MiB each password hash takes (8..4096; default: the pwhash level's)"},
	{"http", T_GROUP, false, "the HTTP/JSON open-data API"},
	{"http.listen", T_STR, false, "address, e.g. http://127.0.0.1:8480 or https://..."},
	{"http.tls_cert", T_STR, false, "PEM certificate for an https:// listen address"},
	{"http.tls_key", T_STR, false, "PEM key (unencrypted) for an https:// listen address"},
	{"http.login_concurrency", T_INT, false,
	 "screen logins whose password is hashed at once (1..64; the rest get 503)"},
	{"http.login_failures", T_INT, false,
	 "failed screen logins a minute per user name before 429 (1..1000)"},
	{"http.login_address_failures", T_INT, false,
	 "failed screen logins and display keys a minute from one address before 429 (1..10000)"},
	{"http.web_dir", T_STR, false,
	 "the big screen's page, served under /screen/ (default: the installed share/linli/web)"},
	{"http.max_body", T_INT, false, "largest request body, bytes"},
	{"http.rate_limit", T_INT, false, "requests per second per API key"},
	{"http.body_timeout_ms", T_INT, false, "time a client has to send its whole body"},
	{"http.health_min_free_mb", T_INT, false, "less free disk under data_dir: health degraded"},
	{"plugin_dirs", T_LIST, false, "directories scanned for .so plugins"},
	{"script_dirs", T_LIST, false, "directories scanned for Lua scripts"},
	{"catalog_dir", T_STR, false, "the data resource catalog"},
	{"store", T_GROUP, false, "the LMDB store"},
	{"store.sync", T_BOOL, false, "fsync every group commit"},
	{"store.map_size_mb", T_INT, false, "initial map size, MiB"},
	{"store.group_max", T_INT, false, "writes one commit gathers under load, at most"},
	{"store.group_commit_ms", T_INT, false,
	 "ms a commit may wait while more writes keep coming (0: never wait)"},
	{"bus", T_GROUP, false, "the event bus"},
	{"bus.consequence", T_LIST, false, "topic patterns of records of consequence (never shed)"},
	{"bus.telemetry", T_LIST, false, "telemetry topic families, counted apart"},
	{"bus.telemetry_queue", T_INT, false, "telemetry waiting for delivery before shedding"},
	{"bus.subscriber_queue", T_INT, false, "events an external subscriber may hold"},
	{"bus.subscriber_backlog", T_INT, false, "records of consequence it may hold"},
	{"bus.subscriber_idle_s", T_INT, false, "seconds before an unpolled subscription expires"},
	{"lua", T_GROUP, false, "limits of Lua scripts"},
	{"lua.memory_kb", T_INT, false, "memory of one script's state, KiB"},
	{"lua.instructions", T_INT, false, "instruction budget of one call"},
	{"lua.time_ms", T_INT, false, "wall-clock limit of one call, ms"},
	{"lua.max_errors", T_INT, false, "failed calls in a row before a script is faulted"},
	{"lua.max_timers", T_INT, false, "timers one script may hold at once"},
	{"lua.min_timer_ms", T_INT, false, "shortest interval of a script's repeating timer, ms"},
	{"lua.max_event_depth", T_INT, false, "deepest chain of events scripts cause in turn"},
	{"lua.overrides", T_LIST, false, "per-script limits: ( { script = \"name\"; ... } )"},
	{"plugins", T_GROUP, false, "per-plugin settings: plugins = { NAME = { ... }; }"},
	{"federation", T_GROUP, false, "the link to the tiers' NATS (see README, four tiers)"},
	{"federation.url", T_STR, false, "the node's own nats-server, nats://HOST:PORT"},
	{"federation.parent_domain", T_STR, false, "the parent's JetStream domain (none: top)"},
	{"federation.ca", T_STR, false, "TLS: the CA of the servers' certificates"},
	{"federation.cert", T_STR, false, "TLS: this node's client certificate"},
	{"federation.key", T_STR, false, "TLS: its key"},
	{"federation.status_ms", T_INT, false, "the node's status goes up this often"},
	{"federation.stale_ms", T_INT, false, "a child silent this long is shown stale"},
	{"federation.outbox_max", T_INT, false,
	 "change log entries kept unsent at most (an alarm at half; beyond, the oldest dropped)"},
	{"federation.outbox_max_age_h", T_INT, false,
	 "hours an unsent change is kept at most (an alarm at half; beyond, dropped)"},
	{"retention", T_GROUP, false, "how long the audit log and the event journal are kept"},
	{"retention.tick_ms", T_INT, false, "trimming runs this often, ms"},
	{"retention.batch", T_INT, false, "entries deleted per tick at most"},
	{"retention.audit", T_GROUP, false, "the audit log"},
	{"retention.audit.min_age_days", T_INT, false, "never cut younger entries for size"},
	{"retention.audit.min_age_s", T_INT, false, "min_age_days in seconds (tests)"},
	{"retention.audit.max_age_days", T_INT, false, "delete older entries (0: no limit)"},
	{"retention.audit.max_age_s", T_INT, false, "max_age_days in seconds (tests)"},
	{"retention.audit.max_mb", T_INT, false, "size cap, MiB (0: no limit)"},
	{"retention.audit.max_kb", T_INT, false, "max_mb in KiB (tests)"},
	{"retention.audit.aggregate_s", T_INT, false, "fold plain reads per window (0: off)"},
	{"retention.journal", T_GROUP, false, "the event journal"},
	{"retention.journal.max_age_days", T_INT, false, "delete older events (0: no limit)"},
	{"retention.journal.max_age_s", T_INT, false, "max_age_days in seconds (tests)"},
	{"retention.journal.max_mb", T_INT, false, "size cap, MiB (0: no limit)"},
	{"retention.journal.max_kb", T_INT, false, "max_mb in KiB (tests)"},
	{"retention.journal.max_hold_days", T_INT, false, "longest a holder keeps due entries"},
	{"retention.journal.max_hold_s", T_INT, false, "max_hold_days in seconds (tests)"},
	{"watchdog", T_GROUP, false, "stuck C plugins: logging them, ending a stuck stop"},
	{"watchdog.warn_ms", T_INT, false, "log a plugin call running longer, ms (0: off)"},
	{"watchdog.stop_grace_ms", T_INT, false, "after SIGTERM, end a stuck linlid, ms (0: off)"},
};

/* Records of consequence when the config names none (bus.consequence absent). */
static const char *const bus_default_consequence[] = {"dev/+/+/event/#", "alarm/#", "incident/#",
						      "application/#"};

struct ctx {
	const char *source;
	const char *basedir;
	char *err;
	size_t errlen;
};

static const struct key *find_key(const char *path)
{
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (strcmp(keys[i].path, path) == 0)
			return &keys[i];
	return NULL;
}

static const char *type_name(int t)
{
	switch (t) {
	case T_GROUP:
		return "a group { ... }";
	case T_INT:
		return "an integer";
	case T_STR:
		return "a string";
	case T_BOOL:
		return "a boolean";
	case T_LIST:
		return "a list [ ... ]";
	}
	return "?";
}

__attribute__((format(printf, 4, 5))) static int fail(struct ctx *c, int line, const char *key,
						       const char *fmt, ...)
{
	int n = line > 0 ? snprintf(c->err, c->errlen, "%s:%d: %s: ", c->source, line, key)
			 : snprintf(c->err, c->errlen, "%s: %s: ", c->source, key);
	if (n >= 0 && (size_t)n < c->errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return LINLI_ECONFIG;
}

/*
 * plugins = { NAME = { ... }; ... }: each entry is a group named like a
 * plugin; what is inside belongs to that plugin, which checks it itself.
 */
static int check_plugins(struct ctx *c, config_setting_t *grp)
{
	int n = config_setting_length(grp);
	if (n > CFG_MAX_PLUGIN_CONF)
		return fail(c, (int)config_setting_source_line(grp), "plugins",
			    "at most %d plugin sections", CFG_MAX_PLUGIN_CONF);
	for (int i = 0; i < n; i++) {
		config_setting_t *s = config_setting_get_elem(grp, (unsigned)i);
		const char *name = config_setting_name(s);
		int line = (int)config_setting_source_line(s);
		bool ident = name && name[0] >= 'a' && name[0] <= 'z' && strlen(name) < 32;
		for (const char *p = name; ident && *p; p++)
			ident = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_';
		if (!ident)
			return fail(c, line, "plugins", "'%s' is not a plugin name ([a-z][a-z0-9_]*)",
				    name ? name : "");
		if (config_setting_type(s) != CONFIG_TYPE_GROUP)
			return fail(c, line, "plugins", "%s: must be a group { ... }", name);
	}
	return 0;
}

/* Pack a libconfig setting as MessagePack: groups as maps, lists and arrays as arrays. */
static void pack_setting(msgpack_packer *pk, const config_setting_t *s)
{
	int n;
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_GROUP:
		n = config_setting_length(s);
		msgpack_pack_map(pk, (size_t)n);
		for (int i = 0; i < n; i++) {
			config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
			const char *k = config_setting_name(e);
			msgpack_pack_str(pk, strlen(k));
			msgpack_pack_str_body(pk, k, strlen(k));
			pack_setting(pk, e);
		}
		return;
	case CONFIG_TYPE_ARRAY:
	case CONFIG_TYPE_LIST:
		n = config_setting_length(s);
		msgpack_pack_array(pk, (size_t)n);
		for (int i = 0; i < n; i++)
			pack_setting(pk, config_setting_get_elem(s, (unsigned)i));
		return;
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		msgpack_pack_int64(pk, config_setting_get_int64(s));
		return;
	case CONFIG_TYPE_FLOAT:
		msgpack_pack_double(pk, config_setting_get_float(s));
		return;
	case CONFIG_TYPE_BOOL:
		if (config_setting_get_bool(s))
			msgpack_pack_true(pk);
		else
			msgpack_pack_false(pk);
		return;
	case CONFIG_TYPE_STRING: {
		const char *v = config_setting_get_string(s);
		msgpack_pack_str(pk, strlen(v));
		msgpack_pack_str_body(pk, v, strlen(v));
		return;
	}
	default:
		msgpack_pack_nil(pk);
	}
}

static int fill_plugins(struct ctx *c, config_t *cf, struct cfg *out)
{
	(void)c;
	config_setting_t *grp = config_lookup(cf, "plugins");
	int n = grp ? config_setting_length(grp) : 0;
	for (int i = 0; i < n; i++) {
		config_setting_t *s = config_setting_get_elem(grp, (unsigned)i);
		msgpack_sbuffer sb;
		msgpack_packer pk;
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		pack_setting(&pk, s);
		struct cfg_plugin_conf *pc = &out->plugin_conf[out->n_plugin_conf++];
		pc->name = strdup(config_setting_name(s));
		pc->len = sb.size;
		pc->mp = msgpack_sbuffer_release(&sb);
	}
	return 0;
}

/* Walk `grp`, refusing unknown keys and wrong types. */
static int walk(struct ctx *c, config_setting_t *grp, const char *prefix)
{
	int n = config_setting_length(grp);
	for (int i = 0; i < n; i++) {
		config_setting_t *s = config_setting_get_elem(grp, (unsigned)i);
		char path[320];
		snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "",
			 config_setting_name(s));
		const struct key *k = find_key(path);
		int line = (int)config_setting_source_line(s);
		if (!k)
			return fail(c, line, path, "unknown key");
		int t = config_setting_type(s);
		/* libconfig reads `[ ]` as array and `( )` as list: accept both. */
		if (k->type == T_LIST && t == CONFIG_TYPE_LIST)
			t = T_LIST;
		if (k->type == T_INT && t == CONFIG_TYPE_INT64)
			t = T_INT;
		if (t != k->type)
			return fail(c, line, path, "must be %s", type_name(k->type));
		if (t == T_GROUP && strcmp(path, "plugins") == 0) {
			int rc = check_plugins(c, s);
			if (rc)
				return rc;
		} else if (t == T_GROUP) {
			int rc = walk(c, s, path);
			if (rc)
				return rc;
		}
	}
	return 0;
}

static char *resolve(struct ctx *c, const char *p)
{
	char buf[PATH_MAX];
	if (p[0] == '/')
		snprintf(buf, sizeof buf, "%s", p);
	else if (c->basedir)
		snprintf(buf, sizeof buf, "%s/%s", c->basedir, p);
	else {
		char cwd[PATH_MAX];
		if (!getcwd(cwd, sizeof cwd))
			snprintf(cwd, sizeof cwd, ".");
		snprintf(buf, sizeof buf, "%s/%s", cwd, p);
	}
	/* Drop a trailing "/." or "/" so messages and socket paths stay tidy. */
	size_t n = strlen(buf);
	while (n > 1 && buf[n - 1] == '/')
		buf[--n] = '\0';
	return strdup(buf);
}

static int get_str_list(struct ctx *c, config_t *cf, const char *key, char **out, int max,
			int *count, bool as_path)
{
	config_setting_t *s = config_lookup(cf, key);
	*count = 0;
	if (!s)
		return 0;
	int n = config_setting_length(s);
	if (n > max)
		return fail(c, (int)config_setting_source_line(s), key, "at most %d entries", max);
	for (int i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		const char *v = config_setting_get_string(e);
		if (!v || !*v)
			return fail(c, (int)config_setting_source_line(s), key,
				    "entry %d must be a non-empty string", i + 1);
		out[i] = as_path ? resolve(c, v) : strdup(v);
		(*count)++;
	}
	return 0;
}

static int check_address(struct ctx *c, int line, const char *a)
{
	static const char *const schemes[] = {"ipc://", "tcp://", "tls+tcp://"};
	for (size_t i = 0; i < 3; i++)
		if (strncmp(a, schemes[i], strlen(schemes[i])) == 0 && a[strlen(schemes[i])])
			return 0;
	return fail(c, line, "control.listen", "'%s' is not an ipc://, tcp:// or tls+tcp:// address",
		    a);
}

static int get_int(struct ctx *c, config_t *cf, const char *key, int lo, int hi, int def,
		   int *out)
{
	config_setting_t *set = config_lookup(cf, key);
	*out = def;
	if (!set)
		return 0;
	int v = config_setting_get_int(set);
	if (v < lo || v > hi)
		return fail(c, (int)config_setting_source_line(set), key, "%d is outside %d..%d", v,
			    lo, hi);
	*out = v;
	return 0;
}

/* bus.*: family patterns must be valid subscriptions and listed once. */
static int check_families(struct ctx *c, config_t *cf, const char *key, char **v, int n,
			  char **other, int n_other)
{
	config_setting_t *set = config_lookup(cf, key);
	int line = set ? (int)config_setting_source_line(set) : 0;
	char why[128];
	for (int i = 0; i < n; i++) {
		if (!bus_pattern_check(v[i], why, sizeof why))
			return fail(c, line, key, "'%s' is not a topic pattern: %s", v[i], why);
		for (int j = 0; j < i; j++)
			if (strcmp(v[i], v[j]) == 0)
				return fail(c, line, key, "'%s' is listed twice", v[i]);
		for (int j = 0; j < n_other; j++)
			if (strcmp(v[i], other[j]) == 0)
				return fail(c, line, key, "'%s' is also in bus.consequence", v[i]);
	}
	return 0;
}

static int fill_bus(struct ctx *c, config_t *cf, struct cfg *out)
{
	int rc;
	if (config_lookup(cf, "bus.consequence")) {
		if ((rc = get_str_list(c, cf, "bus.consequence", out->bus_consequence,
				       CFG_MAX_FAMILIES, &out->n_bus_consequence, false)))
			return rc;
	} else {
		size_t n = sizeof bus_default_consequence / sizeof bus_default_consequence[0];
		for (size_t i = 0; i < n; i++)
			out->bus_consequence[out->n_bus_consequence++] =
				strdup(bus_default_consequence[i]);
	}
	if ((rc = get_str_list(c, cf, "bus.telemetry", out->bus_telemetry, CFG_MAX_FAMILIES,
			       &out->n_bus_telemetry, false)))
		return rc;
	if ((rc = check_families(c, cf, "bus.consequence", out->bus_consequence,
				 out->n_bus_consequence, NULL, 0)) ||
	    (rc = check_families(c, cf, "bus.telemetry", out->bus_telemetry, out->n_bus_telemetry,
				 out->bus_consequence, out->n_bus_consequence)))
		return rc;
	if ((rc = get_int(c, cf, "bus.telemetry_queue", 16, 1 << 24, 65536,
			  &out->bus_telemetry_queue)) ||
	    (rc = get_int(c, cf, "bus.subscriber_queue", 4, 1 << 22, 16384,
			  &out->bus_subscriber_queue)) ||
	    (rc = get_int(c, cf, "bus.subscriber_backlog", 4, 1 << 24, 1 << 20,
			  &out->bus_subscriber_backlog)) ||
	    (rc = get_int(c, cf, "bus.subscriber_idle_s", 1, 86400, 30,
			  &out->bus_subscriber_idle_s)))
		return rc;
	config_setting_t *set = config_lookup(cf, "bus.subscriber_backlog");
	if (!set)
		set = config_lookup(cf, "bus.subscriber_queue");
	if (out->bus_subscriber_backlog < out->bus_subscriber_queue)
		return fail(c, set ? (int)config_setting_source_line(set) : 0,
			    "bus.subscriber_backlog", "%d is below bus.subscriber_queue (%d)",
			    out->bus_subscriber_backlog, out->bus_subscriber_queue);
	return 0;
}

/*
 * One retention quantity given in a big unit or a small one (max_age_days or
 * max_age_s, max_mb or max_kb), never both; *out is in the small unit (a
 * big one is `unit` small ones) and absent keeps its default.
 */
static int dual(struct ctx *c, config_t *cf, const char *big, const char *small, long long unit,
		long long max_big, long long *out)
{
	config_setting_t *b = config_lookup(cf, big), *sm = config_lookup(cf, small);
	if (b && sm)
		return fail(c, (int)config_setting_source_line(sm), small,
			    "give %s or %s, not both", big, small);
	config_setting_t *set = b ? b : sm;
	if (!set)
		return 0;
	long long v = config_setting_get_int64(set), hi = b ? max_big : max_big * unit;
	if (v < 0 || v > hi)
		return fail(c, (int)config_setting_source_line(set), b ? big : small,
			    "%lld is outside 0..%lld", v, hi);
	*out = b ? v * unit : v;
	return 0;
}

/*
 * federation = { url, parent_domain, ca, cert, key, status_ms, stale_ms }: the url a
 * nats:// address; a JetStream domain a NATS token; cert and key together, each a
 * readable file, and only with ca.
 */
static int fill_fed(struct ctx *c, config_t *cf, struct cfg *out)
{
	struct cfg_fed *f = &out->fed;
	config_setting_t *set;
	const char *s;
	f->status_ms = 30000;
	if ((set = config_lookup(cf, "federation.status_ms"))) {
		int v = config_setting_get_int(set);
		if (v < 100 || v > 3600000)
			return fail(c, (int)config_setting_source_line(set), "federation.status_ms",
				    "%d is outside 100..3600000", v);
		f->status_ms = v;
	}
	f->stale_ms = 3 * f->status_ms;
	if ((set = config_lookup(cf, "federation.stale_ms"))) {
		int v = config_setting_get_int(set);
		if (v < f->status_ms || v > 86400000)
			return fail(c, (int)config_setting_source_line(set), "federation.stale_ms",
				    "%d is outside status_ms (%d)..86400000", v, f->status_ms);
		f->stale_ms = v;
	}
	f->outbox_max = 1000000;
	if ((set = config_lookup(cf, "federation.outbox_max"))) {
		int v = config_setting_get_int(set);
		if (v < 10 || v > 100000000)
			return fail(c, (int)config_setting_source_line(set), "federation.outbox_max",
				    "%d is outside 10..100000000", v);
		f->outbox_max = v;
	}
	f->outbox_max_age_h = 168;
	if ((set = config_lookup(cf, "federation.outbox_max_age_h"))) {
		int v = config_setting_get_int(set);
		if (v < 1 || v > 8760)
			return fail(c, (int)config_setting_source_line(set),
				    "federation.outbox_max_age_h", "%d is outside 1..8760", v);
		f->outbox_max_age_h = v;
	}
	if (!config_lookup(cf, "federation"))
		return 0;
	if (!config_lookup_string(cf, "federation.url", &s))
		return fail(c, (int)config_setting_source_line(config_lookup(cf, "federation")),
			    "federation.url", "missing: the node's own nats-server, "
					      "nats://HOST:PORT");
	set = config_lookup(cf, "federation.url");
	if (strncmp(s, "nats://", 7) || !s[7] || strpbrk(s + 7, " /"))
		return fail(c, (int)config_setting_source_line(set), "federation.url",
			    "'%s' is not nats://HOST:PORT", s);
	if (!(f->url = strdup(s)))
		return LINLI_ENOMEM;
	if (config_lookup_string(cf, "federation.parent_domain", &s)) {
		set = config_lookup(cf, "federation.parent_domain");
		size_t n = strlen(s);
		if (!n || n > 64 || strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
					      "0123456789_-") != n)
			return fail(c, (int)config_setting_source_line(set),
				    "federation.parent_domain",
				    "'%s' is not a JetStream domain (1-64 of A-Z a-z 0-9 _ -)", s);
		if (!(f->parent_domain = strdup(s)))
			return LINLI_ENOMEM;
	}
	static const char *const files[] = {"federation.ca", "federation.cert", "federation.key"};
	char **slot[] = {&f->ca, &f->cert, &f->key};
	for (int i = 0; i < 3; i++) {
		if (!config_lookup_string(cf, files[i], &s))
			continue;
		set = config_lookup(cf, files[i]);
		if (!(*slot[i] = resolve(c, s)))
			return LINLI_ENOMEM;
		if (access(*slot[i], R_OK))
			return fail(c, (int)config_setting_source_line(set), files[i],
				    "cannot read '%s': %s", *slot[i], strerror(errno));
	}
	if (!f->cert != !f->key || (f->cert && !f->ca))
		return fail(c, (int)config_setting_source_line(config_lookup(cf, "federation")),
			    "federation", "cert and key go together, and with ca");
	return 0;
}

/* retention = { tick_ms, batch, audit = { ... }, journal = { ... } } */
static int fill_retention(struct ctx *c, config_t *cf, struct cfg *out)
{
	struct cfg_retention *r = &out->retention;
	/* In the small units: seconds and KiB. */
	long long audit_min = 180LL * 86400, audit_max = 365LL * 86400, audit_kb = 256LL << 10,
		  journal_age = 30LL * 86400, journal_kb = 256LL << 10, hold = 7LL * 86400;
	int rc;
	if ((rc = dual(c, cf, "retention.audit.min_age_days", "retention.audit.min_age_s", 86400,
		       36500, &audit_min)) ||
	    (rc = dual(c, cf, "retention.audit.max_age_days", "retention.audit.max_age_s", 86400,
		       36500, &audit_max)) ||
	    (rc = dual(c, cf, "retention.audit.max_mb", "retention.audit.max_kb", 1024, 1 << 20,
		       &audit_kb)) ||
	    (rc = dual(c, cf, "retention.journal.max_age_days", "retention.journal.max_age_s",
		       86400, 36500, &journal_age)) ||
	    (rc = dual(c, cf, "retention.journal.max_mb", "retention.journal.max_kb", 1024, 1 << 20,
		       &journal_kb)) ||
	    (rc = dual(c, cf, "retention.journal.max_hold_days", "retention.journal.max_hold_s",
		       86400, 36500, &hold)) ||
	    (rc = get_int(c, cf, "retention.audit.aggregate_s", 0, 3600, 60,
			  &r->audit_aggregate_s)) ||
	    (rc = get_int(c, cf, "retention.tick_ms", 10, 60000, 1000, &r->tick_ms)) ||
	    (rc = get_int(c, cf, "retention.batch", 1, 100000, 500, &r->batch)))
		return rc;
	if (audit_max && audit_max < audit_min) {
		const char *key = config_lookup(cf, "retention.audit.max_age_days")
				      ? "retention.audit.max_age_days"
				      : "retention.audit.max_age_s";
		config_setting_t *set = config_lookup(cf, key);
		return fail(
		    c, set ? (int)config_setting_source_line(set) : 0, key,
		    "%lld s is below retention.audit.min_age (%lld s): the audit log is kept "
		    "at least that long",
		    audit_max, audit_min);
	}
	r->audit_min_age_s = audit_min;
	r->audit_max_age_s = audit_max;
	r->audit_max_bytes = (unsigned long long)audit_kb << 10;
	r->journal_max_age_s = journal_age;
	r->journal_max_bytes = (unsigned long long)journal_kb << 10;
	r->journal_max_hold_s = hold;
	return 0;
}

/*
 * watchdog = { warn_ms, stop_grace_ms } (watchdog.h): 0 turns one off, and
 * anything shorter than a few ticks of the watchdog thread would only be noise.
 */
static int fill_watchdog(struct ctx *c, config_t *cf, struct cfg *out)
{
	static const struct {
		const char *key;
		int lo, hi, def;
	} lim[] = {{"watchdog.warn_ms", 100, 3600000, 1000},
		   {"watchdog.stop_grace_ms", 500, 3600000, 10000}};
	int *dst[] = {&out->wd_warn_ms, &out->wd_stop_grace_ms};
	for (int i = 0; i < 2; i++) {
		config_setting_t *set = config_lookup(cf, lim[i].key);
		int rc = get_int(c, cf, lim[i].key, 0, lim[i].hi, lim[i].def, dst[i]);
		if (rc)
			return rc;
		if (*dst[i] && *dst[i] < lim[i].lo)
			return fail(c, set ? (int)config_setting_source_line(set) : 0, lim[i].key,
				    "%d is below %d (0 turns it off)", *dst[i], lim[i].lo);
	}
	return 0;
}

/* One limit of `lua` or of an override entry; absent leaves *out alone. */
static int lua_limit(struct ctx *c, config_setting_t *grp, const char *key, const char *path,
		     long long lo, long long hi, long long *out)
{
	config_setting_t *s = config_setting_get_member(grp, key);
	if (!s)
		return 0;
	int t = config_setting_type(s);
	if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
		return fail(c, (int)config_setting_source_line(s), path, "must be an integer");
	long long v = config_setting_get_int64(s);
	if (v < lo || v > hi)
		return fail(c, (int)config_setting_source_line(s), path, "%lld is outside %lld..%lld",
			    v, lo, hi);
	*out = v;
	return 0;
}

static int lua_limits(struct ctx *c, config_setting_t *grp, const char *prefix, struct cfg_lua *l)
{
	static const struct {
		const char *key;
		long long lo, hi;
	} lim[] = {{"memory_kb", 256, 4 << 20},
		   {"instructions", 1000, 1000000000000LL},
		   {"time_ms", 1, 60000},
		   {"max_errors", 1, 1000000}};
	long long v[4] = {l->memory_kb, l->instructions, l->time_ms, l->max_errors};
	for (int i = 0; i < 4; i++) {
		char path[128];
		snprintf(path, sizeof path, "%s.%s", prefix, lim[i].key);
		int rc = lua_limit(c, grp, lim[i].key, path, lim[i].lo, lim[i].hi, &v[i]);
		if (rc)
			return rc;
	}
	l->memory_kb = (unsigned)v[0];
	l->instructions = v[1];
	l->time_ms = (unsigned)v[2];
	l->max_errors = (unsigned)v[3];
	return 0;
}

/* lua = { memory_kb, instructions, time_ms, max_errors, overrides = ( {...} ) } */
static int fill_lua(struct ctx *c, config_t *cf, struct cfg *out)
{
	out->lua = (struct cfg_lua){16384, 10000000, 200, 5, 256, 10, 8};
	config_setting_t *lua = config_lookup(cf, "lua");
	if (!lua)
		return 0;
	int rc = lua_limits(c, lua, "lua", &out->lua);
	if (rc)
		return rc;
	long long mt = out->lua.max_timers, mp = out->lua.min_timer_ms;
	long long md = out->lua.max_event_depth;
	if ((rc = lua_limit(c, lua, "max_timers", "lua.max_timers", 1, 100000, &mt)) ||
	    (rc = lua_limit(c, lua, "min_timer_ms", "lua.min_timer_ms", 1, 3600000, &mp)) ||
	    (rc = lua_limit(c, lua, "max_event_depth", "lua.max_event_depth", 1, 255, &md)))
		return rc;
	out->lua.max_timers = (unsigned)mt;
	out->lua.min_timer_ms = (unsigned)mp;
	out->lua.max_event_depth = (unsigned)md;
	config_setting_t *ov = config_setting_get_member(lua, "overrides");
	int n = ov ? config_setting_length(ov) : 0;
	if (n > CFG_MAX_LUA_OVERRIDES)
		return fail(c, (int)config_setting_source_line(ov), "lua.overrides",
			    "at most %d entries", CFG_MAX_LUA_OVERRIDES);
	for (int i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(ov, (unsigned)i);
		int line = (int)config_setting_source_line(e);
		char path[64];
		snprintf(path, sizeof path, "lua.overrides[%d]", i + 1);
		if (config_setting_type(e) != CONFIG_TYPE_GROUP)
			return fail(c, line, path, "must be a group { script = \"name\"; ... }");
		for (int j = 0; j < config_setting_length(e); j++) {
			config_setting_t *m = config_setting_get_elem(e, (unsigned)j);
			const char *k = config_setting_name(m);
			if (strcmp(k, "script") && strcmp(k, "memory_kb") && strcmp(k, "instructions") &&
			    strcmp(k, "time_ms") && strcmp(k, "max_errors"))
				return fail(c, (int)config_setting_source_line(m), path,
					    "unknown key '%s' (script, memory_kb, instructions, "
					    "time_ms, max_errors)",
					    k);
		}
		const char *name;
		if (!config_setting_lookup_string(e, "script", &name) || !*name)
			return fail(c, line, path, "needs script = \"name\"");
		for (int j = 0; j < i; j++)
			if (strcmp(out->lua_overrides[j].script, name) == 0)
				return fail(c, line, path, "script '%s' already has an override", name);
		struct cfg_lua_override *o = &out->lua_overrides[i];
		o->script = strdup(name);
		out->n_lua_overrides = i + 1;
		if ((rc = lua_limits(c, e, path, &o->lim)))
			return rc;
	}
	return 0;
}

static int fill(struct ctx *c, config_t *cf, struct cfg *out)
{
	int rc = walk(c, config_root_setting(cf), "");
	if (rc)
		return rc;
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (keys[i].required && !config_lookup(cf, keys[i].path))
			return fail(c, 0, keys[i].path, "missing required value (%s)", keys[i].help);

	const char *s;
	config_setting_t *set;
	char why[320];

	set = config_lookup(cf, "node.level");
	s = config_setting_get_string(set);
	out->node_level = tier_level_parse(s);
	if (out->node_level == TIER_NONE || out->node_level == TIER_GRID)
		return fail(c, (int)config_setting_source_line(set), "node.level",
			    "'%s' is not one of city, district, street, community", s);

	set = config_lookup(cf, "node.path");
	s = config_setting_get_string(set);
	if (!scope_check(s, why, sizeof why))
		return fail(c, (int)config_setting_source_line(set), "node.path", "bad path '%s': %s",
			    s, why);
	if (scope_depth(s) != (int)out->node_level)
		return fail(c, (int)config_setting_source_line(set), "node.path",
			    "'%s' has %d level(s) but node.level is %s (%d)", s, scope_depth(s),
			    tier_level_name(out->node_level), (int)out->node_level);
	snprintf(out->node_path, sizeof out->node_path, "%s", s);

	out->node_name = strdup(config_lookup_string(cf, "node.name", &s) ? s : "");

	/* Local time is the node's, never the TZ linlid happened to start with. */
	_Static_assert(sizeof out->time_zone == CLOCK_ZONE_MAX, "time_zone size");
	set = config_lookup(cf, "time_zone");
	s = set ? config_setting_get_string(set) : "Asia/Shanghai";
	if (clock_zone_check(s, why, sizeof why) != 0)
		return fail(c, set ? (int)config_setting_source_line(set) : 0, "time_zone",
			    "'%.80s'%s is not a time zone: %s", s, set ? "" : " (the default)",
			    why);
	snprintf(out->time_zone, sizeof out->time_zone, "%s", s);

	set = config_lookup(cf, "data_dir");
	s = config_setting_get_string(set);
	if (!*s)
		return fail(c, (int)config_setting_source_line(set), "data_dir", "must not be empty");
	out->data_dir = resolve(c, s);

	out->log_level = LOG_INFO;
	if ((set = config_lookup(cf, "log_level"))) {
		s = config_setting_get_string(set);
		out->log_level = log_level_parse(s);
		if (out->log_level < 0)
			return fail(c, (int)config_setting_source_line(set), "log_level",
				    "'%s' is not one of error, warn, info, debug", s);
	}

	if ((rc = get_str_list(c, cf, "control.listen", out->listen, CFG_MAX_LISTEN, &out->n_listen,
			       false)))
		return rc;
	bool tls = false;
	for (int i = 0; i < out->n_listen; i++) {
		set = config_lookup(cf, "control.listen");
		if ((rc = check_address(c, (int)config_setting_source_line(set), out->listen[i])))
			return rc;
		tls |= strncmp(out->listen[i], "tls+tcp://", 10) == 0;
	}
	if (out->n_listen == 0) {
		char a[PATH_MAX + 8];
		snprintf(a, sizeof a, "ipc://%s/linlid.sock", out->data_dir);
		out->listen[out->n_listen++] = strdup(a);
	}
	if (config_lookup_string(cf, "control.tls_cert", &s))
		out->tls_cert = resolve(c, s);
	if (config_lookup_string(cf, "control.tls_key", &s))
		out->tls_key = resolve(c, s);
	if (tls && (!out->tls_cert || !out->tls_key))
		return fail(c, (int)config_setting_source_line(config_lookup(cf, "control.listen")),
			    "control.listen",
			    "a tls+tcp:// address needs control.tls_cert and control.tls_key");

	int v;
	out->max_request = 1 << 20;
	if ((set = config_lookup(cf, "control.max_request"))) {
		v = config_setting_get_int(set);
		if (v < 1024 || v > (64 << 20))
			return fail(c, (int)config_setting_source_line(set), "control.max_request",
				    "%d is outside 1024..67108864", v);
		out->max_request = (size_t)v;
	}
	out->control_workers = 8;
	if ((set = config_lookup(cf, "control.workers"))) {
		v = config_setting_get_int(set);
		if (v < 1 || v > 256)
			return fail(c, (int)config_setting_source_line(set), "control.workers",
				    "%d is outside 1..256", v);
		out->control_workers = v;
	}
	out->control_idle_ms = 60000;
	if ((set = config_lookup(cf, "control.idle_timeout_ms"))) {
		v = config_setting_get_int(set);
		if (v < 100 || v > 86400000)
			return fail(c, (int)config_setting_source_line(set),
				    "control.idle_timeout_ms", "%d is outside 100..86400000", v);
		out->control_idle_ms = v;
	}

	const struct {
		const char *key;
		int *out, def, min, max;
	} ints[] = {
	    {"accounts.session_ttl_s", &out->session_ttl_s, 8 * 3600, 1, 30 * 86400},
	    {"accounts.lockout_attempts", &out->lockout_attempts, 5, 1, 100},
	    {"accounts.lockout_s", &out->lockout_s, 900, 1, 86400},
	    {"http.body_timeout_ms", &out->http_body_timeout_ms, 10000, 100, 600000},
	    {"http.health_min_free_mb", &out->health_min_free_mb, 64, 0, 1 << 30},
	    /* 0: the pwhash level's own (64 MiB interactive, 256 MiB moderate) */
	    {"accounts.pwhash_memory_mb", &out->pwhash_memory_mb, 0, 8, 4096},
	};
	for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
		*ints[i].out = ints[i].def;
		if ((set = config_lookup(cf, ints[i].key))) {
			v = config_setting_get_int(set);
			if (v < ints[i].min || v > ints[i].max)
				return fail(c, (int)config_setting_source_line(set), ints[i].key,
					    "%d is outside %d..%d", v, ints[i].min, ints[i].max);
			*ints[i].out = v;
		}
	}
	out->pwhash = 1; /* TIER_PW_INTERACTIVE */
	if ((set = config_lookup(cf, "accounts.pwhash"))) {
		s = config_setting_get_string(set);
		out->pwhash = strcmp(s, "min") == 0		? 0
			      : strcmp(s, "interactive") == 0 ? 1
			      : strcmp(s, "moderate") == 0    ? 2
							      : -1;
		if (out->pwhash < 0)
			return fail(c, (int)config_setting_source_line(set), "accounts.pwhash",
				    "'%s' is not one of interactive, moderate, min", s);
	}

	if (config_lookup_string(cf, "http.listen", &s)) {
		set = config_lookup(cf, "http.listen");
		bool https = strncmp(s, "https://", 8) == 0;
		if ((strncmp(s, "http://", 7) != 0 || !s[7]) && (!https || !s[8]))
			return fail(c, (int)config_setting_source_line(set), "http.listen",
				    "'%s' is not an http://host:port or https://host:port address",
				    s);
		out->http_listen = strdup(s);
		if (config_lookup_string(cf, "http.tls_cert", &s))
			out->http_tls_cert = resolve(c, s);
		if (config_lookup_string(cf, "http.tls_key", &s))
			out->http_tls_key = resolve(c, s);
		if (config_lookup_string(cf, "http.web_dir", &s))
			out->http_web_dir = resolve(c, s);
		if (https && (!out->http_tls_cert || !out->http_tls_key))
			return fail(c, (int)config_setting_source_line(set), "http.listen",
				    "an https:// address needs http.tls_cert and http.tls_key");
	}
	out->http_login_concurrency = 2;
	if ((set = config_lookup(cf, "http.login_concurrency"))) {
		v = config_setting_get_int(set);
		if (v < 1 || v > 64)
			return fail(c, (int)config_setting_source_line(set),
				    "http.login_concurrency", "%d is outside 1..64", v);
		out->http_login_concurrency = v;
	}
	out->http_login_failures = 5;
	if ((set = config_lookup(cf, "http.login_failures"))) {
		v = config_setting_get_int(set);
		if (v < 1 || v > 1000)
			return fail(c, (int)config_setting_source_line(set), "http.login_failures",
				    "%d is outside 1..1000", v);
		out->http_login_failures = v;
	}
	out->http_login_address_failures = 20;
	if ((set = config_lookup(cf, "http.login_address_failures"))) {
		v = config_setting_get_int(set);
		if (v < 1 || v > 10000)
			return fail(c, (int)config_setting_source_line(set),
				    "http.login_address_failures", "%d is outside 1..10000", v);
		out->http_login_address_failures = v;
	}
	out->http_max_body = 64 * 1024;
	if ((set = config_lookup(cf, "http.max_body"))) {
		v = config_setting_get_int(set);
		if (v < 256 || v > (16 << 20))
			return fail(c, (int)config_setting_source_line(set), "http.max_body",
				    "%d is outside 256..16777216", v);
		out->http_max_body = (size_t)v;
	}
	out->http_rate = 50;
	if ((set = config_lookup(cf, "http.rate_limit"))) {
		v = config_setting_get_int(set);
		if (v < 1 || v > 1000000)
			return fail(c, (int)config_setting_source_line(set), "http.rate_limit",
				    "%d is outside 1..1000000", v);
		out->http_rate = v;
	}

	if ((rc = get_str_list(c, cf, "plugin_dirs", out->plugin_dirs, CFG_MAX_DIRS,
			       &out->n_plugin_dirs, true)))
		return rc;
	if ((rc = get_str_list(c, cf, "script_dirs", out->script_dirs, CFG_MAX_DIRS,
			       &out->n_script_dirs, true)))
		return rc;
	if (config_lookup_string(cf, "catalog_dir", &s))
		out->catalog_dir = resolve(c, s);

	out->store_sync = true;
	if ((set = config_lookup(cf, "store.sync")))
		out->store_sync = config_setting_get_bool(set);
	out->store_map_size = (size_t)64 << 20;
	if ((set = config_lookup(cf, "store.map_size_mb"))) {
		v = config_setting_get_int(set);
		if (v < 1 || v > (1 << 20))
			return fail(c, (int)config_setting_source_line(set), "store.map_size_mb",
				    "%d is outside 1..1048576", v);
		out->store_map_size = (size_t)v << 20;
	}
	out->store_group_max = STORE_GROUP_MAX_DEFAULT;
	if ((set = config_lookup(cf, "store.group_max"))) {
		v = config_setting_get_int(set);
		if (v < 1 || v > 1000000)
			return fail(c, (int)config_setting_source_line(set), "store.group_max",
				    "%d is outside 1..1000000 (writes per commit)", v);
		out->store_group_max = v;
	}
	out->store_group_commit_ms = STORE_GROUP_MS_DEFAULT;
	if ((set = config_lookup(cf, "store.group_commit_ms"))) {
		v = config_setting_get_int(set);
		if (v < 0 || v > 10000)
			return fail(c, (int)config_setting_source_line(set), "store.group_commit_ms",
				    "%d is outside 0..10000 (ms)", v);
		out->store_group_commit_ms = v;
	}
	if ((rc = fill_bus(c, cf, out)) || (rc = fill_retention(c, cf, out)) ||
	    (rc = fill_fed(c, cf, out)))
		return rc;
	if ((rc = fill_plugins(c, cf, out)))
		return rc;
	if ((rc = fill_watchdog(c, cf, out)))
		return rc;
	return fill_lua(c, cf, out);
}

static int load(struct cfg *out, config_t *cf, int parsed, struct ctx *c)
{
	memset(out, 0, sizeof *out);
	if (parsed != CONFIG_TRUE) {
		if (config_error_type(cf) == CONFIG_ERR_FILE_IO)
			snprintf(c->err, c->errlen, "%s: cannot read: %s", c->source, strerror(errno));
		else
			snprintf(c->err, c->errlen, "%s:%d: syntax error: %s", c->source,
				 config_error_line(cf), config_error_text(cf));
		return LINLI_ECONFIG;
	}
	int rc = fill(c, cf, out);
	if (rc) {
		cfg_free(out);
		return rc;
	}
	out->source = strdup(c->source);
	return 0;
}

int cfg_load_string(struct cfg *out, const char *text, const char *source, const char *basedir,
		    char *err, size_t errlen)
{
	struct ctx c = {source, basedir, err, errlen};
	config_t cf;
	config_init(&cf);
	int rc = load(out, &cf, config_read_string(&cf, text), &c);
	config_destroy(&cf);
	return rc;
}

int cfg_load_file(struct cfg *out, const char *path, char *err, size_t errlen)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = '\0';
	struct ctx c = {path, slash ? dir : NULL, err, errlen};
	config_t cf;
	config_init(&cf);
	errno = 0;
	int rc = load(out, &cf, config_read_file(&cf, path), &c);
	config_destroy(&cf);
	return rc;
}

static void free_list(char **v, int n)
{
	for (int i = 0; i < n; i++)
		free(v[i]);
}

void cfg_free(struct cfg *c)
{
	free(c->source);
	free(c->node_name);
	free(c->data_dir);
	free_list(c->listen, c->n_listen);
	free(c->tls_cert);
	free(c->tls_key);
	free(c->http_listen);
	free(c->http_tls_cert);
	free(c->http_tls_key);
	free(c->http_web_dir);
	free(c->fed.url);
	free(c->fed.parent_domain);
	free(c->fed.ca);
	free(c->fed.cert);
	free(c->fed.key);
	free_list(c->plugin_dirs, c->n_plugin_dirs);
	free_list(c->script_dirs, c->n_script_dirs);
	free(c->catalog_dir);
	free_list(c->bus_consequence, c->n_bus_consequence);
	free_list(c->bus_telemetry, c->n_bus_telemetry);
	for (int i = 0; i < c->n_lua_overrides; i++)
		free(c->lua_overrides[i].script);
	for (int i = 0; i < c->n_plugin_conf; i++) {
		free(c->plugin_conf[i].name);
		free(c->plugin_conf[i].mp);
	}
	memset(c, 0, sizeof *c);
}
