/*
 * alarms — the alarms plugin's shared state (plugins/alarms/).
 *
 * alarms.c owns the table of active alarms (one per scope, source and type),
 * raising, folding repeats and the request server; alarms_cmds.c owns the
 * lifecycle (a transition table) and the console commands; alarms_migrate.c
 * rewrites alarms stored under the catalog's earlier definition. Everything
 * runs on the kernel thread; nothing here is touched from another thread.
 */
#ifndef ALARMS_H
#define ALARMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linli/linli.h>

#define AL_TYPE_MAX    64   /* bytes of an alarm type: [a-z][a-z0-9_]* */
#define AL_SOURCE_MAX  160  /* bytes of a source: KIND:NAME */
#define AL_DETAILS_MAX 1024 /* bytes of details (the catalog's max_len) */
#define AL_WHY_MAX     512  /* bytes of a reason in the history */
#define AL_BY_MAX      96   /* bytes of who did it */

enum al_sev { SEV_CRITICAL, SEV_MAJOR, SEV_MINOR, SEV_WARNING, SEV_INDETERMINATE, SEV_N };

extern const struct linli_api *api;	      /* valid from init until fini returns */
extern const char *const al_sev_names[SEV_N]; /* "critical" ... "indeterminate" */
#define AL_SEV_LIST "critical, major, minor, warning, indeterminate"

/* One active alarm, keyed by (scope, source, type). Owned by the table. */
struct al_entry {
	struct al_entry *next; /* hash chain */
	char *key;	       /* scope \x1f source \x1f type, malloc'ed */
	char id[LINLI_ID_MAX + 1];
	char scope[LINLI_SCOPE_MAX + 1];
	char type[AL_TYPE_MAX + 1];
	char source[AL_SOURCE_MAX + 1];
	int sev;
	int64_t count;	 /* raises so far, the folded ones included */
	int64_t pending; /* raises folded since the last write */
	int64_t last_at; /* the latest raise */
	int64_t first_at;
	bool acked; /* acknowledged: no more escalation */
	int esc;    /* escalation reached: 0, 1 re-notified, 2 supervised */
	bool dirty; /* in the dirty list: written at the next flush */
	bool has_case;	 /* linked to a grid case (its `incident`): none to open */
	int64_t case_at; /* no case asked for before then (one asked, or none opened) */
};

struct al_state {
	struct al_entry **buckets;
	size_t cap, n;		 /* buckets (a power of two), entries */
	struct al_entry **dirty; /* entries with pending raises */
	size_t n_dirty, cap_dirty;
	bool flush_armed; /* a flush timer is set */
	/* auto-expiry per type (plugins.alarms.expire_s): clear after so long without a raise */
	struct al_expiry {
		char type[AL_TYPE_MAX + 1];
		int64_t ms;
	} * expire;
	size_t n_expire;
	int64_t expired;
	/* the escalation ladder per type (plugins.alarms.escalate): unacknowledged after
	 * ms[0] re-notify, after ms[1] supervision by the tier above */
	struct al_ladder {
		char type[AL_TYPE_MAX + 1];
		int64_t ms[2];
		int n;
	} * ladders;
	size_t n_ladders;
	int64_t escalated;
	/* flood suppression per type (plugins.alarms.flood): past n new alarms of a type at
	 * one scope within a window, the next ones fold into one summary alarm */
	struct al_flood {
		char type[AL_TYPE_MAX + 1];
		int64_t n, ms;
	} * floods;
	size_t n_floods;
	struct al_window { /* new alarms of a type at a scope in the current window */
		struct al_window *next;
		char scope[LINLI_SCOPE_MAX + 1];
		char type[AL_TYPE_MAX + 1];
		int64_t start, n;
	} * windows;
	int64_t flooded;
	/* shelves in force or to come (alarm_shelves): raises they cover are dropped */
	struct al_shelf {
		char id[LINLI_ID_MAX + 1];
		char scope[LINLI_SCOPE_MAX + 1];
		char type[AL_TYPE_MAX + 1];	/* "" or the type shelved */
		char source[AL_SOURCE_MAX + 1]; /* "" or the source shelved */
		int64_t until;
	} * shelves;
	size_t n_shelves;
	int64_t shelved; /* raises dropped under a shelf */
	/* the alarm types that open a grid case (plugins.alarms.incident) */
	struct al_case_rule {
		char type[AL_TYPE_MAX + 1];
		char category[65];
		char grid[33]; /* the grid when the device names none, or "" */
		int level;     /* opened at this escalation: 0 raised, 1, 2 */
	} * case_rules;
	size_t n_case_rules;
	struct al_ask { /* incidentreq/report sent, not answered yet */
		uint64_t rid;
		char id[LINLI_ID_MAX + 1];
		char scope[LINLI_SCOPE_MAX + 1];
		char type[AL_TYPE_MAX + 1];
		char source[AL_SOURCE_MAX + 1];
		char category[65];
	} * asks;
	size_t n_asks;
	/* counters for `alarms stats` */
	int64_t raised, folded, writes, migrated, cases_opened;
};

/* What a raise names: from a request, the console or a migration. */
struct al_raise {
	const char *type, *source, *scope, *severity, *details, *topic;
	const char *incident; /* the incidents record it is about (a case's 督办), or NULL */
	const char *by;	      /* who raises: plugin:NAME, rule:NAME or an account */
};

/* alarms.c */
int al_sev_parse(const char *s);
const char *al_state_name(bool active, bool acked);
/*
 * Raise: 0 with the alarm's id, whether it is new and its count; under a
 * shelf 0 with the shelf's id in id_out and *shelved set (nothing stored).
 */
int al_raise(linli_ctx *ctx, struct al_state *st, const struct al_raise *in, char *id_out,
	     bool *created, int64_t *count, bool *shelved, char *err, size_t errlen);
bool al_name_ok(const char *s, size_t max);
int al_check_source(const char *src, char *err, size_t errlen);
int al_shelf_add(struct al_state *st, const char *id, const char *scope, const char *type,
		 const char *source, int64_t until);
void al_shelf_remove(struct al_state *st, const char *id);
struct al_entry *al_find(struct al_state *st, const char *scope, const char *source,
			 const char *type);
int al_flush_one(linli_ctx *ctx, struct al_state *st, struct al_entry *e, char *err, size_t errlen);
void al_drop(struct al_state *st, struct al_entry *e);
int al_history(linli_ctx *ctx, const char *scope, const char *alarm, const char *by,
	       const char *action, const char *from, const char *to, const char *why);
int al_publish(linli_ctx *ctx, const char *scope, const char *id, const linli_record *alarm,
	       const char *what, const char *by);
int al_err(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* alarms_cmds.c */
int al_cmds_register(linli_ctx *ctx, struct al_state *st, char *err, size_t errlen);
/* Clear active alarm e as the plugin itself (auto-expiry), with `why`; e leaves the table. */
int al_clear_by_plugin(linli_ctx *ctx, struct al_state *st, struct al_entry *e, const char *why);
/* Clear active alarm e as `by` (plugin:NAME, rule:NAME), with `why`; e leaves the table. */
int al_clear_entry(linli_ctx *ctx, struct al_state *st, struct al_entry *e, const char *by,
		   const char *why);

/* alarms_cases.c: plugins.alarms.incident, and opening the cases that are due */
int al_cases_load(linli_record *cfg, struct al_state *st, char *err, size_t errlen);
void al_cases_due(linli_ctx *ctx, struct al_state *st, int64_t now);

/* alarms_migrate.c: rewrite alarms stored before the two-flag state; their count in *n. */
int al_migrate(linli_ctx *ctx, int64_t *n, char *err, size_t errlen);

#endif
