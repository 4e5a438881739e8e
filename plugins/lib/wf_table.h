/*
 * wf_table.h — workflow transition tables as data (plugins/lib, linked into
 * plugins; built against sdk/include only, it never calls the kernel).
 *
 * A table is a list of states and a list of moves (from, verb, to, and the
 * plugin action a caller needs to make it). The plugin walks the table; the
 * README prints it. wf_table_check validates a table once at load (unknown
 * states, a verb used twice from one state, states nothing reaches);
 * wf_move_check checks one move of one case and, when it is illegal, says
 * the case's state and the moves allowed from it.
 *
 * Owns nothing: tables are the caller's (usually static const data).
 */
#ifndef LINLI_WF_TABLE_H
#define LINLI_WF_TABLE_H

#include <stddef.h>

/* One move: `verb` takes a case from state `from` to state `to`. */
struct wf_move {
	const char *from;
	const char *verb;
	const char *to;
	const char *action; /* the plugin action ("grid.dispatch") a caller needs; NULL: none */
};

struct wf_table {
	const char *name;	   /* what a case is called in messages: "case", "application" */
	const char *initial;	   /* the state a new case starts in */
	const char *const *states; /* every state, n_states of them */
	size_t n_states;
	const struct wf_move *moves; /* n_moves of them, in the order messages list them */
	size_t n_moves;
};

/*
 * wf_table_check — validate a table: the initial state and every move's from
 * and to are among the states, no state is named twice, no verb leaves one
 * state twice, and every state is reachable from the initial one. Returns 0,
 * or LINLI_EINVAL with the first problem in err ("table incident: move 3
 * (dispatch): unknown state 'dispached'").
 */
int wf_table_check(const struct wf_table *t, char *err, size_t errlen);

/* wf_state_known — whether `state` is one of the table's states. */
int wf_state_known(const struct wf_table *t, const char *state);

/* wf_state_final — whether no move leaves `state`. */
int wf_state_final(const struct wf_table *t, const char *state);

/*
 * wf_move_check — may case `id`, now in `state`, take `verb`? Returns 0 and
 * the move in *out (may be NULL); LINLI_ESTATE when the table has no such
 * move from that state, with err "case i-7 is dispatched: allowed: accept →
 * processing, return → returned" (or "... is closed: no move is allowed");
 * LINLI_EINVAL when `state` is not a state of the table ("case i-7 has an
 * unknown state 'x'").
 */
int wf_move_check(const struct wf_table *t, const char *id, const char *state, const char *verb,
		  const struct wf_move **out, char *err, size_t errlen);

/*
 * wf_allowed — the moves allowed from `state` as text into buf
 * ("accept → processing, return → returned"; "" when none). Returns the
 * number of moves.
 */
size_t wf_allowed(const struct wf_table *t, const char *state, char *buf, size_t len);

#endif
