/*
 * alarmreq — raising alarms through the alarms plugin (alarmreq/raise), for the
 * family plugins (plugins/lib): the request, its answer counted per alarm type
 * (raised / failed) and a failure logged naming the type, source and reason.
 * The counters live in the plugin's state (embed struct alarmreq); pending
 * requests are dropped by the kernel when the plugin stops, so no answer
 * comes after fini. Built against the SDK only.
 */
#ifndef LINLI_ALARMREQ_H
#define LINLI_ALARMREQ_H

#include <stdint.h>

#include <linli/linli.h>

#define ALARMREQ_MAX 16 /* alarm types of one plugin */

struct alarmreq;
struct alarmreq_slot {
	struct alarmreq *a;
	int t;
};

struct alarmreq {
	const struct linli_api *api;
	const char *const *types; /* the plugin's alarm types, n of them */
	int n;
	int64_t raised[ALARMREQ_MAX], failed[ALARMREQ_MAX];
	struct alarmreq_slot slot[ALARMREQ_MAX];
};

/* Set a up for types[0..n) (n <= ALARMREQ_MAX), counters at zero. */
void alarmreq_init(struct alarmreq *a, const struct linli_api *api, const char *const *types,
		   int n);

/*
 * Raise alarm type t at `scope` (NULL: the node) with `source` and `details`
 * (ids only: never personal data) and `severity` (a plugcfg_sev_names name).
 * The answer is counted in raised[t] or failed[t]; a request that cannot be
 * sent is counted failed and logged at once.
 */
void alarmreq_raise(struct alarmreq *a, linli_ctx *ctx, int t, const char *severity,
		    const char *scope, const char *source, const char *details);

/*
 * Clear the active alarm of type t and `source` at `scope` (alarmreq/clear {type, source,
 * why}): what raised it is over (the vehicle left, the session ended). An answer that
 * there was none is fine; another failure is logged. Needs bus.publish:alarmreq/clear.
 */
void alarmreq_clear(struct alarmreq *a, linli_ctx *ctx, int t, const char *scope,
		    const char *source, const char *why);

/* The maps raised = { TYPE = N } and failed = { TYPE = N } into r (a stats reply). */
void alarmreq_put_counts(const struct alarmreq *a, linli_record *r);

#endif
