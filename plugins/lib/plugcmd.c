/* plugcmd.c — see plugcmd.h. */
#include "plugcmd.h"

#include <stdio.h>
#include <string.h>

#define LIST_MAX_DEFAULT 2000

int plugcmd_parse(const struct linli_cmd_req *req, int lo, int hi, const char *usage,
		  const struct plugcmd_opt *opts, size_t n_opts, const char **pos, int *n_pos,
		  bool echo, char *err, size_t errlen)
{
	for (size_t k = 0; k < n_opts; k++)
		*opts[k].slot = NULL;
	for (int k = 0; k < hi; k++)
		pos[k] = NULL;
	*n_pos = 0;
	for (int i = 0; i < req->argc; i++) {
		const char *a = req->argv[i];
		const char **slot = NULL;
		for (size_t k = 0; k < n_opts && !slot; k++)
			if (!strcmp(a, opts[k].name) && strstr(usage, a))
				slot = opts[k].slot;
		if (slot && i + 1 < req->argc)
			*slot = req->argv[++i];
		else if (!slot && a[0] != '-' && *n_pos < hi)
			pos[(*n_pos)++] = a;
		else if (echo)
			return snprintf(err, errlen, "unexpected word %d '%.64s' (usage: %s)", i + 1,
					a, usage),
			       LINLI_EINVAL;
		else
			return snprintf(err, errlen, "unexpected word %d (usage: %s)", i + 1, usage),
			       LINLI_EINVAL;
	}
	if (*n_pos < lo)
		return snprintf(err, errlen, "usage: %s", usage), LINLI_EINVAL;
	for (int k = 0; k < *n_pos; k++)
		if (!pos[k][0] || strlen(pos[k]) > LINLI_ID_MAX)
			return snprintf(err, errlen, "word %d: empty or longer than %d bytes", k + 1,
					LINLI_ID_MAX),
			       LINLI_EINVAL;
	return 0;
}

int plugcmd_push_row(const struct linli_api *api, struct plugcmd_list *l,
		     const struct linli_row *row, linli_record **m)
{
	linli_record *x = NULL;
	if (m)
		*m = NULL;
	if (l->n >= (l->max ? l->max : LIST_MAX_DEFAULT))
		return 1;
	if (api->arr_push_record(l->arr, row->record) || api->arr_get_map(l->arr, l->n, &x))
		return LINLI_ENOMEM;
	l->n++;
	api->rec_set_str(x, "id", row->id);
	api->rec_set_str(x, "scope", row->scope);
	if (m)
		*m = x;
	return 0;
}

struct push {
	const struct linli_api *api;
	struct plugcmd_list *l;
};

static int push_row(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	(void)ctx;
	struct push *p = ud;
	return plugcmd_push_row(p->api, p->l, row, NULL);
}

int plugcmd_list(const struct linli_api *api, linli_ctx *ctx, struct linli_query *q,
		 linli_row_fn fn, void *ud, struct plugcmd_list *l, const char *key,
		 linli_record **reply, char *err, size_t errlen)
{
	size_t max = l->max ? l->max : LIST_MAX_DEFAULT;
	struct push p = {api, l};
	if (!fn)
		fn = push_row, ud = &p;
	if (!l->arr && !(l->arr = api->rec_new_array()))
		return snprintf(err, errlen, "out of memory"), LINLI_ENOMEM;
	char cursor[LINLI_CURSOR_MAX] = "";
	int rc;
	q->limit = 500;
	do {
		q->cursor = cursor;
		rc = api->store_scan(ctx, q, fn, ud, cursor);
	} while (rc >= 0 && cursor[0] && l->n < max);
	linli_record *r = rc >= 0 ? api->rec_new() : NULL;
	if (rc < 0)
		snprintf(err, errlen, "%s", api->store_last_error(ctx));
	else if (!r) {
		snprintf(err, errlen, "out of memory");
		rc = LINLI_ENOMEM;
	} else {
		api->rec_set_int(r, "count", (int64_t)l->n);
		api->rec_set_record(r, key, l->arr);
		*reply = r;
		rc = 0;
	}
	api->rec_free(l->arr);
	l->arr = NULL;
	return rc;
}

int plugcmd_register(const struct linli_api *api, linli_ctx *ctx,
		     const struct plugcmd_action *actions, size_t n_actions,
		     const struct plugcmd_cmd *cmds, size_t n_cmds,
		     const struct plugcmd_route *routes, size_t n_routes, void *ud, char *err,
		     size_t errlen)
{
	int rc = 0;
	size_t i;
	for (i = 0; !rc && i < n_actions; i++)
		rc = api->action_declare(ctx, actions[i].name, actions[i].role, actions[i].level,
					 actions[i].duty, actions[i].summary);
	if (rc)
		return snprintf(err, errlen, "declaring action '%s': %s", actions[i - 1].name,
				linli_strerror(rc)),
		       rc;
	for (i = 0; !rc && i < n_cmds; i++) {
		const struct plugcmd_cmd *c = &cmds[i];
		rc = api->cmd_register(ctx, c->sub, c->usage, c->summary, c->fn, ud);
		if (!rc && c->action)
			rc = api->cmd_require(ctx, c->sub, c->action);
	}
	if (rc)
		return snprintf(err, errlen, "registering command '%s': %s", cmds[i - 1].sub,
				linli_strerror(rc)),
		       rc;
	for (i = 0; !rc && i < n_routes; i++) {
		const struct plugcmd_route *r = &routes[i];
		rc = api->route_register(ctx, r->name, r->method, r->pattern, r->fn, ud);
		if (!rc && r->action)
			rc = api->route_require(ctx, r->name, r->action);
	}
	if (rc)
		snprintf(err, errlen, "registering route '%s': %s", routes[i - 1].name,
			 linli_strerror(rc));
	return rc;
}

int plugcmd_no_query(const struct linli_api *api, const struct linli_http_req *req,
		     const char *what, char *err, size_t errlen)
{
	if (!req->query || api->rec_count(req->query) == 0)
		return 0;
	const char *key = "";
	api->rec_key(req->query, 0, &key);
	snprintf(err, errlen, "%s: unknown parameter '%s' (it takes none)", what, key);
	return LINLI_EINVAL;
}
