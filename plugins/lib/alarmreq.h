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

#include <stdbool.h>
#include <stddef.h>
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
	int64_t raised[ALARMREQ_MAX], failed[ALARMREQ_MAX], cleared[ALARMREQ_MAX];
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
 * why}): what raised it is over (the vehicle left, the session ended). A clear is counted
 * in cleared[t]; an answer that there was none (an operator cleared it) is fine; another
 * failure is logged. Needs bus.publish:alarmreq/clear.
 */
void alarmreq_clear(struct alarmreq *a, linli_ctx *ctx, int t, const char *scope,
		    const char *source, const char *why);

/* The maps raised, failed and cleared = { TYPE = N } into r (a stats reply). */
void alarmreq_put_counts(const struct alarmreq *a, linli_record *r);

/* ---- raises about one record each (an overdue case), answered into the record ---- */

/* A raise sent about record `id` at `scope` and not answered yet. */
struct alarmreq_fly {
	uint64_t rid;
	char id[LINLI_ID_MAX + 1], scope[LINLI_SCOPE_MAX + 1];
	int64_t tag[2]; /* the plugin's: what the raise was for (a deadline, a period) */
};

/*
 * A raise answered: status 0 and `alarm` the alarm's id (NULL when the answer has none),
 * or status < 0 when it was refused (already logged).
 */
typedef void (*alarmreq_answer_fn)(linli_ctx *ctx, const struct alarmreq_fly *f, int status,
				   const char *alarm);

struct alarmreq_flights {
	const struct linli_api *api;
	const char *what;	      /* the record in logs: "case", "application" */
	alarmreq_answer_fn answered;  /* called for each raise answered */
	struct alarmreq_fly *v;	      /* in flight, n of them */
	size_t n, cap;
	bool told; /* the log said once that the raise cannot be sent */
};

/*
 * Send alarmreq/raise with `payload` (type, source, severity, details, ...) at `scope`
 * about record id, tagged tag0 and tag1, remembered until its answer: raised →
 * answered(ctx, f, 0, alarm id); refused → logged ("WHAT ID: its alarm is not raised:
 * REASON") and answered(ctx, f, status, NULL), so the plugin's next look asks again.
 * 0; LINLI_ENOMEM; the request's code when it cannot be sent (logged once until one is).
 */
int alarmreq_fly_raise(struct alarmreq_flights *fl, linli_ctx *ctx, const char *scope,
		       const char *id, int64_t tag0, int64_t tag1, const linli_record *payload);

/* How many raises about record id at scope are in flight. */
size_t alarmreq_in_flight(const struct alarmreq_flights *fl, const char *scope, const char *id);

/* Forget them all (at fini: the kernel drops the plugin's pending requests). */
void alarmreq_flights_free(struct alarmreq_flights *fl);

#endif
