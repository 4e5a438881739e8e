/*
 * plugcmd — the console side of a family plugin's commands (plugins/lib), shared so that
 * every plugin reads its words and lists its records the same way:
 *
 *  - plugcmd_parse: positional words and `--NAME VALUE` options, checked against the
 *    command's usage text, with one message for a word that fits neither;
 *  - plugcmd_list: the records of a query, page after page, into one reply
 *    {count, KEY: [rows]} of at most a number of rows;
 *  - plugcmd_register: a plugin's actions, commands and routes from tables, each command
 *    and route checked by the kernel against its action (SDK 1.1 cmd_require).
 *
 * Built against the SDK only; the plugin passes its api table.
 */
#ifndef LINLI_PLUGCMD_H
#define LINLI_PLUGCMD_H

#include <stdbool.h>
#include <stddef.h>

#include <linli/linli.h>

/* An option: `--NAME VALUE` sets *slot to VALUE (borrowed from the request). */
struct plugcmd_opt {
	const char *name; /* "--scope" */
	const char **slot;
};

/*
 * Read req's words: an option of opts[0..n_opts) that `usage` mentions takes the next
 * word; any other word not starting with '-' is positional, into pos[] (at most hi of
 * them; *n_pos gets how many). Refused with LINLI_EINVAL and err: a word that fits
 * neither ("unexpected word N 'WORD' (usage: USAGE)" — without the word when `echo` is
 * false, for commands whose words may be secrets such as a pickup code), fewer than lo
 * positional words ("usage: USAGE"), an empty one or one longer than LINLI_ID_MAX bytes.
 * The slots and pos[] are set to NULL first.
 */
int plugcmd_parse(const struct linli_cmd_req *req, int lo, int hi, const char *usage,
		  const struct plugcmd_opt *opts, size_t n_opts, const char **pos, int *n_pos,
		  bool echo, char *err, size_t errlen);

/* A listing being built: rows in arr (an array the list owns until the reply). */
struct plugcmd_list {
	linli_record *arr;
	size_t n, max; /* rows so far; at most max (0: 2000) */
};

/*
 * Append row's record to l with its "id" and "scope"; *m (may be NULL) gets the new map
 * to add to or trim. 0; 1 when l is full (a row_fn returns it to stop the scan);
 * LINLI_ENOMEM.
 */
int plugcmd_push_row(const struct linli_api *api, struct plugcmd_list *l,
		     const struct linli_row *row, linli_record **m);

/*
 * The records of query q (its cursor and limit are set here) page after page, each
 * handed to fn(ctx, row, ud) — NULL: plugcmd_push_row into l, ud unused — until the last
 * page or l->max rows; then *reply = {count, KEY: rows}. fn pushes its rows into l (ud
 * may be a struct that holds l). 0, or the scan's code with err (nothing replied).
 */
int plugcmd_list(const struct linli_api *api, linli_ctx *ctx, struct linli_query *q,
		 linli_row_fn fn, void *ud, struct plugcmd_list *l, const char *key,
		 linli_record **reply, char *err, size_t errlen);

/* An action the plugin declares (SDK 1.1 action_declare; level and duty may be NULL). */
struct plugcmd_action {
	const char *name, *role, *level, *duty, *summary;
};

/* A console command: `linli PLUGIN SUB USAGE`; action NULL: no kernel check. */
struct plugcmd_cmd {
	const char *sub, *usage, *summary, *action;
	linli_cmd_fn fn;
};

/* An HTTP route (SDK 1.1 route_register); action NULL: no kernel check. */
struct plugcmd_route {
	const char *name, *method, *pattern, *action;
	linli_route_fn fn;
};

/*
 * A GET route that takes no parameter (the big screen's "screen" routes): 0, or
 * LINLI_EINVAL with err naming the first parameter given and `what`.
 */
int plugcmd_no_query(const struct linli_api *api, const struct linli_http_req *req,
		     const char *what, char *err, size_t errlen);

#define PLUGCMD_N(table) (sizeof(table) / sizeof *(table))

/*
 * Declare actions[0..n_actions), register cmds[0..n_cmds) and routes[0..n_routes) (any
 * table may be NULL with 0), each with the action it requires and ud; in that order, stopping at
 * the first failure. 0, or the SDK's code with err naming what failed.
 */
int plugcmd_register(const struct linli_api *api, linli_ctx *ctx,
		     const struct plugcmd_action *actions, size_t n_actions,
		     const struct plugcmd_cmd *cmds, size_t n_cmds,
		     const struct plugcmd_route *routes, size_t n_routes, void *ud, char *err,
		     size_t errlen);

#endif
