/* wf_case.c — see wf_case.h. */
#include "wf_case.h"

#include <stdio.h>
#include <string.h>

static int move_row(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	(void)ctx;
	const struct linli_api *api = ((void **)ud)[0];
	linli_record *m, *arr = ((void **)ud)[1];
	if (api->arr_push_map(arr, &m))
		return LINLI_ENOMEM;
	static const char *const strs[] = {"verb", "from", "to", "who", "note"};
	for (size_t i = 0; i < sizeof strs / sizeof *strs; i++) {
		const char *s;
		if (api->rec_get_str(row->record, strs[i], &s, NULL) == 0)
			api->rec_set_str(m, strs[i], s);
	}
	static const char *const times[] = {"at", "deadline"};
	int64_t t;
	for (size_t i = 0; i < sizeof times / sizeof *times; i++)
		if (api->rec_get_time(row->record, times[i], &t) == 0)
			api->rec_set_time(m, times[i], t);
	if (api->rec_get_int(row->record, "worked_ms", &t) == 0)
		api->rec_set_int(m, "worked_ms", t);
	return 0;
}

int wf_case_show(const struct wf_case *wc, linli_ctx *ctx, linli_record *rec, const char *id,
		 const char *scope, const char *state, char *err, size_t errlen)
{
	const struct linli_api *api = wc->api;
	char allowed[512];
	api->rec_set_str(rec, "status", state);
	api->rec_set_str(rec, "id", id);
	api->rec_set_str(rec, "scope", scope);
	wf_allowed(wc->table, state, allowed, sizeof allowed);
	api->rec_set_str(rec, "allowed", allowed);
	linli_record *hist;
	int rc = api->rec_set_array(rec, "moves", &hist);
	if (rc)
		return snprintf(err, errlen, "out of memory"), rc;
	struct linli_where w = {wc->link_field, id};
	struct linli_query q = {.size = sizeof q,
				.dataset = wc->moves_dataset,
				.scope = scope,
				.where = &w,
				.n_where = 1,
				.limit = 1000};
	void *ud[2] = {(void *)api, hist};
	if ((rc = api->store_scan(ctx, &q, move_row, ud, NULL)) < 0)
		return snprintf(err, errlen, "%s", api->store_last_error(ctx)), rc;
	return 0;
}

int wf_case_table(const struct wf_case *wc, linli_record **reply)
{
	const struct linli_api *api = wc->api;
	linli_record *arr = api->rec_new_array(), *m;
	if (!arr)
		return LINLI_ENOMEM;
	for (size_t i = 0; i < wc->table->n_moves; i++) {
		const struct wf_move *mv = &wc->table->moves[i];
		if (api->arr_push_map(arr, &m)) {
			api->rec_free(arr);
			return LINLI_ENOMEM;
		}
		api->rec_set_str(m, "from", mv->from);
		api->rec_set_str(m, "verb", mv->verb);
		api->rec_set_str(m, "to", mv->to);
		api->rec_set_str(m, "action", mv->action);
	}
	*reply = arr;
	return 0;
}

int wf_case_filters(const struct wf_case *wc, const struct linli_cmd_req *req, const char *usage,
		    const char **status, const char **scope, char *err, size_t errlen)
{
	*status = *scope = NULL;
	for (int i = 0; i < req->argc; i++) {
		const char *a = req->argv[i];
		if (!strncmp(a, "status=", 7) && wf_state_known(wc->table, a + 7))
			*status = a + 7;
		else if (!strncmp(a, "scope=", 6) && a[6])
			*scope = a + 6;
		else
			return snprintf(err, errlen,
					"usage: %s ('%.64s': unknown filter or state)", usage, a),
			       LINLI_EINVAL;
	}
	return 0;
}
