/*
 * config — reads and validates `linli.cfg` (libconfig syntax).
 *
 * Owns the parsed configuration as one plain struct. Validation is complete
 * before anything is applied: an unknown key, a wrong type, a missing value or
 * a bad path fails with `file:line: key: reason` and no half-filled result.
 * Never starts, opens or changes anything outside the struct it fills.
 */
#ifndef LINLI_CONFIG_H
#define LINLI_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "scope.h"

#define CFG_MAX_LISTEN 8
#define CFG_MAX_DIRS 16
#define CFG_MAX_FAMILIES 32
#define CFG_MAX_LUA_OVERRIDES 64
#define CFG_MAX_PLUGIN_CONF 64

/* Limits of Lua scripts (`lua` in linli.cfg). In an override, 0 = inherit. */
struct cfg_lua {
	unsigned memory_kb;		 /* per script state */
	long long instructions;		 /* per invocation */
	unsigned time_ms;		 /* wall clock per invocation */
	unsigned max_errors;		 /* failed calls in a row before faulted */
	/* Node-wide only (not in overrides): */
	unsigned max_timers;   /* timers one script may hold at once */
	unsigned min_timer_ms; /* the shortest interval of a repeating timer */
	unsigned max_event_depth; /* deepest chain of script-caused events (bus.h depth) */
};

struct cfg_lua_override {
	char *script;			 /* rule or script plugin name */
	struct cfg_lua lim;
};

/* One plugin's settings: the group plugins.<name>, as a MessagePack map. */
struct cfg_plugin_conf {
	char *name;
	char *mp; /* the packed map; owned */
	size_t len;
};

/*
 * Retention of the audit log and the event journal (`retention` in
 * linli.cfg; host/retention.h). Ages in seconds, sizes in bytes; 0 = no limit.
 */
struct cfg_retention {
	long long audit_min_age_s;	  /* never cut younger entries for size (default 180 days) */
	long long audit_max_age_s;	  /* delete older entries (default 365 days) */
	unsigned long long audit_max_bytes; /* size cap (default 256 MiB) */
	int audit_aggregate_s;		  /* fold plain reads per this window (default 60; 0 = off) */
	long long journal_max_age_s;	  /* default 30 days */
	unsigned long long journal_max_bytes; /* default 256 MiB */
	long long journal_max_hold_s;	  /* how long a holder may keep entries due for trimming */
	int tick_ms;			  /* trimming runs this often (default 1000) */
	int batch;			  /* deletions per tick at most (default 500) */
};

/* federation = { ... }: the node's link to its tier's NATS (fed.h); url NULL: none. */
struct cfg_fed {
	char *url;		  /* nats://HOST:PORT of the node's own nats-server */
	char *parent_domain;	  /* the parent's JetStream domain; NULL: no parent */
	char *ca, *cert, *key;	  /* TLS to the server (absolute); NULL: plain */
	int status_ms;		  /* the node's status goes up this often (default 30000) */
	int stale_ms;		  /* a child silent this long is shown stale (default 3 x) */
	int outbox_max;		  /* change log entries kept unsent at most (default 1000000) */
	int outbox_max_age_h;	  /* hours one is kept unsent at most (default 168) */
};

struct cfg {
	char *source;			 /* file path, or "<embedded>" */
	char node_path[SCOPE_MAX + 1];
	enum tier_level node_level;
	char *node_name;		 /* display name; may be "" */
	char time_zone[64];		 /* IANA zone of local time (clock.h), "Asia/Shanghai" */
	char *data_dir;			 /* absolute */
	char *listen[CFG_MAX_LISTEN];	 /* control addresses, first is the default */
	int n_listen;
	char *tls_cert, *tls_key;	 /* for tls+tcp:// listeners; NULL if unset */
	int log_level;			 /* enum log_level */
	char *plugin_dirs[CFG_MAX_DIRS];
	int n_plugin_dirs;
	char *script_dirs[CFG_MAX_DIRS];
	int n_script_dirs;
	char *catalog_dir;		 /* absolute; NULL when none */
	bool store_sync;		 /* fsync each group commit */
	size_t store_map_size;		 /* initial LMDB map size, bytes */
	int store_group_max;		 /* writes a batch gathers across turns, at most */
	int store_group_commit_ms;	 /* ms a batch stays open across turns (0: never) */
	size_t max_request;		 /* control message limit, bytes */
	int session_ttl_s;		 /* console sessions expire after this */
	int lockout_attempts;		 /* failed logins in a row before a lockout */
	int lockout_s;			 /* how long a lockout lasts */
	int pwhash;			 /* enum tier_pw_strength */
	int pwhash_memory_mb;		 /* 0: the strength's own memory limit */
	int control_workers;		 /* concurrent control contexts */
	int control_idle_ms;		 /* cut control connections idle this long */
	/* bus: topic families and queue limits (see bus.h) */
	char *bus_consequence[CFG_MAX_FAMILIES]; /* patterns of records of consequence */
	int n_bus_consequence;
	char *bus_telemetry[CFG_MAX_FAMILIES];	  /* telemetry families, for counting */
	int n_bus_telemetry;
	int bus_telemetry_queue;	 /* telemetry waiting for delivery, events */
	int bus_subscriber_queue;	 /* per external subscriber, events */
	int bus_subscriber_backlog;	 /* per external subscriber, records of consequence */
	int bus_subscriber_idle_s;	 /* unpolled external subscriptions expire */
	struct cfg_lua lua;		 /* defaults for every script */
	struct cfg_lua_override lua_overrides[CFG_MAX_LUA_OVERRIDES];
	int n_lua_overrides;
	char *http_listen;		 /* open-data API address, NULL when off */
	size_t http_max_body;		 /* largest request body, bytes */
	int http_rate;			 /* requests per second per API key */
	int http_body_timeout_ms;	 /* a request body not complete by then is cut */
	char *http_tls_cert, *http_tls_key; /* PEM files for an https:// http.listen */
	int http_login_concurrency;	 /* screen logins hashing at once; the rest get 503 */
	int http_login_failures;	 /* failed screen logins a minute per user name, then 429 */
	int http_login_address_failures; /* the same per client address (logins and display keys) */
	char *http_web_dir;		 /* the screen's page; NULL: the installed share/linli/web */
	int health_min_free_mb;		 /* less free disk under data_dir: health degraded */
	struct cfg_retention retention;
	struct cfg_fed fed;
	struct cfg_plugin_conf plugin_conf[CFG_MAX_PLUGIN_CONF]; /* plugins = { NAME = {...}; } */
	int n_plugin_conf;
	/* watchdog (watchdog.h): ms; 0 = off */
	int wd_warn_ms;			 /* log a C plugin call running longer (default 1000) */
	int wd_stop_grace_ms;		 /* end a linlid not stopped this long after SIGTERM (10000) */
};

/* The configuration `linlid` runs when started without --config. */
extern const char cfg_embedded_default[];

/*
 * cfg_load_file / cfg_load_string — parse and validate into `out` (zeroed
 * first). `text` of cfg_load_string is named `source` in messages and its
 * relative paths resolve against `basedir` (NULL: the working directory).
 * Return 0, or LINLI_ECONFIG with `err` holding "source:line: key: reason".
 * On failure `out` holds nothing that needs freeing.
 */
int cfg_load_file(struct cfg *out, const char *path, char *err, size_t errlen);
int cfg_load_string(struct cfg *out, const char *text, const char *source,
		    const char *basedir, char *err, size_t errlen);

void cfg_free(struct cfg *c);

#endif
