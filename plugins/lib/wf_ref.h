/*
 * wf_ref — the reference data a workflow plugin reads on its own account
 * (plugins/lib): incident categories, service items, working calendars, kept
 * at the city and inherited down. A cache holds one dataset's records as the
 * plugin sees them (load at start, then follow each change from a store
 * watch: both act as the plugin, never as a command's caller, whose
 * jurisdiction would drop the city's records), answers "the deepest record
 * above this scope", and builds the working calendar of a scope from the
 * work_calendar records (wf_cal.h). Built against the SDK only.
 */
#ifndef LINLI_WF_REF_H
#define LINLI_WF_REF_H

#include <stddef.h>
#include <stdint.h>

#include <linli/linli.h>

#include "wf_cal.h"

struct wf_ref_entry {
	char scope[LINLI_SCOPE_MAX + 1];
	char id[LINLI_ID_MAX + 1];
	linli_record *rec; /* owned */
};

struct wf_ref {
	const struct linli_api *api;
	const char *dataset;
	struct wf_ref_entry *v;
	size_t n, cap;
	unsigned gen; /* bumped at each change: what was built from it is stale */
	int above;    /* wf_ref_above: the records kept at the scopes above the node too */
};

void wf_ref_init(struct wf_ref *c, const struct linli_api *api, const char *dataset);
void wf_ref_clear(struct wf_ref *c);
/*
 * The dataset comes down the tiers (catalog `down`): a load reads the records kept at each
 * scope above the plugin's node too (a community node holds the city's categories, items
 * and calendars at the city's scope; it reads those, never a sibling's).
 */
void wf_ref_above(struct wf_ref *c);
/* Every record of the dataset, as the plugin reads it (init, a timer, a watch). */
int wf_ref_load(struct wf_ref *c, linli_ctx *ctx);
/* A store watch's change of the dataset: that record follows (read as the plugin). */
void wf_ref_follow(struct wf_ref *c, linli_ctx *ctx, const struct linli_change *ch);

/* Is `anc` the scope `scope` or one of its ancestors? */
int wf_ref_covers(const char *anc, const char *scope);
/* The deepest entry whose scope covers `scope` and for which match(e, arg) holds. */
const struct wf_ref_entry *wf_ref_deepest(const struct wf_ref *c, const char *scope,
					  int (*match)(const struct wf_ref_entry *, const void *),
					  const void *arg);
/* match: the entry's id is the string arg. */
int wf_ref_match_id(const struct wf_ref_entry *e, const void *arg);

/* The working calendar built last from a cache of work_calendar. */
struct wf_refcal {
	struct wf_cal cal;
	char scope[LINLI_SCOPE_MAX + 1];
	int64_t year;
	unsigned gen;
	int built;
	int found; /* some work_calendar record applies to the scope */
};

/*
 * The working calendar of `scope` at `now`: for each year, the deepest
 * work_calendar record above the scope; the hours and weekend of the year
 * `now` falls in (else the latest). Without any: 09:00-12:00,13:30-17:30,
 * Saturday and Sunday, no holidays. Rebuilt when the scope, the year or the
 * cache changed; a bad record is logged and left out.
 */
const struct wf_cal *wf_ref_calendar(struct wf_refcal *rc, const struct wf_ref *cals,
				     linli_ctx *ctx, const char *scope, int64_t now);

#endif
