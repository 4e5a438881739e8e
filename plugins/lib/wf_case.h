/*
 * wf_case — the console side of a workflow record (plugins/lib), shared by the plugins
 * that keep cases on a wf_table (grid's incidents, services' applications): a record
 * shown with its state, allowed moves and history, the table as a reply, and the
 * `status=STATE scope=PATH` filters of a listing. Built against the SDK only.
 */
#ifndef LINLI_WF_CASE_H
#define LINLI_WF_CASE_H

#include <stddef.h>

#include <linli/linli.h>

#include "wf_table.h"

/* What a plugin's case record is shown with. */
struct wf_case {
	const struct linli_api *api;
	const struct wf_table *table;
	const char *moves_dataset; /* "incident_moves" */
	const char *link_field;	   /* its field naming the case: "incident" */
};

/*
 * Complete rec, case `id` at `scope` in `state`, for showing: status, id, scope, allowed
 * (wf_allowed's text) and moves — the case's rows of the moves dataset, oldest first,
 * each {verb, from, to, who, note, at, deadline, worked_ms} as far as the row has them.
 * 0, or the scan's code with err (rec keeps what was set).
 */
int wf_case_show(const struct wf_case *wc, linli_ctx *ctx, linli_record *rec, const char *id,
		 const char *scope, const char *state, char *err, size_t errlen);

/* The table's moves as a reply: [{from, verb, to, action}], in the table's order. */
int wf_case_table(const struct wf_case *wc, linli_record **reply);

/*
 * A listing's words: `status=STATE` (a state of the table) into *status, `scope=PATH`
 * (not empty) into *scope (both NULL when absent). LINLI_EINVAL with "usage: USAGE
 * ('WORD': unknown filter or state)" for any other word.
 */
int wf_case_filters(const struct wf_case *wc, const struct linli_cmd_req *req, const char *usage,
		    const char **status, const char **scope, char *err, size_t errlen);

#endif
