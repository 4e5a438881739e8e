/*
 * wf_table.c — workflow transition tables: validation at load, one move
 * checked per call. Pure data walking; no allocation, no kernel call.
 */
#include "wf_table.h"

#include <stdio.h>
#include <string.h>

#include <linli/error.h>

static int state_index(const struct wf_table *t, const char *state)
{
	for (size_t i = 0; i < t->n_states; i++)
		if (state && strcmp(t->states[i], state) == 0)
			return (int)i;
	return -1;
}

int wf_state_known(const struct wf_table *t, const char *state)
{
	return state_index(t, state) >= 0;
}

int wf_state_final(const struct wf_table *t, const char *state)
{
	for (size_t i = 0; i < t->n_moves; i++)
		if (strcmp(t->moves[i].from, state) == 0)
			return 0;
	return 1;
}

/* The longest table the reachability walk takes (states): plenty for a workflow. */
#define WF_MAX_STATES 64

int wf_table_check(const struct wf_table *t, char *err, size_t errlen)
{
	const char *name = t->name ? t->name : "?";
	if (!t->n_states || t->n_states > WF_MAX_STATES) {
		snprintf(err, errlen, "table %s: needs 1 to %d states, has %zu", name,
			 WF_MAX_STATES, t->n_states);
		return LINLI_EINVAL;
	}
	for (size_t i = 0; i < t->n_states; i++)
		if (!t->states[i] || !t->states[i][0] || state_index(t, t->states[i]) != (int)i) {
			snprintf(err, errlen, "table %s: state %zu ('%s') is empty or named twice",
				 name, i + 1, t->states[i] ? t->states[i] : "");
			return LINLI_EINVAL;
		}
	int init = state_index(t, t->initial);
	if (init < 0) {
		snprintf(err, errlen, "table %s: unknown initial state '%s'", name,
			 t->initial ? t->initial : "");
		return LINLI_EINVAL;
	}
	for (size_t i = 0; i < t->n_moves; i++) {
		const struct wf_move *m = &t->moves[i];
		const char *bad = state_index(t, m->from) < 0 ? m->from
				  : state_index(t, m->to) < 0 ? m->to
							      : NULL;
		if (bad || !m->from || !m->to) {
			snprintf(err, errlen, "table %s: move %zu (%s): unknown state '%s'", name,
				 i + 1, m->verb ? m->verb : "?", bad ? bad : "");
			return LINLI_EINVAL;
		}
		if (!m->verb || !m->verb[0]) {
			snprintf(err, errlen, "table %s: move %zu (%s → %s) has no verb", name,
				 i + 1, m->from, m->to);
			return LINLI_EINVAL;
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(t->moves[j].from, m->from) == 0 &&
			    strcmp(t->moves[j].verb, m->verb) == 0) {
				snprintf(err, errlen,
					 "table %s: move %zu: verb '%s' leaves state '%s' twice "
					 "(also move %zu)",
					 name, i + 1, m->verb, m->from, j + 1);
				return LINLI_EINVAL;
			}
	}
	/* Reachability: a fixed point over the moves, small tables only. */
	char seen[WF_MAX_STATES] = {0};
	seen[init] = 1;
	for (int changed = 1; changed;) {
		changed = 0;
		for (size_t i = 0; i < t->n_moves; i++) {
			int f = state_index(t, t->moves[i].from),
			    to = state_index(t, t->moves[i].to);
			if (seen[f] && !seen[to])
				seen[to] = 1, changed = 1;
		}
	}
	for (size_t i = 0; i < t->n_states; i++)
		if (!seen[i]) {
			snprintf(err, errlen, "table %s: state '%s' cannot be reached from '%s'",
				 name, t->states[i], t->initial);
			return LINLI_EINVAL;
		}
	return 0;
}

size_t wf_allowed(const struct wf_table *t, const char *state, char *buf, size_t len)
{
	size_t n = 0, off = 0;
	if (len)
		buf[0] = '\0';
	for (size_t i = 0; i < t->n_moves; i++) {
		const struct wf_move *m = &t->moves[i];
		if (strcmp(m->from, state) != 0)
			continue;
		if (off < len)
			off += (size_t)snprintf(buf + off, len - off, "%s%s → %s", n ? ", " : "",
						m->verb, m->to);
		n++;
	}
	return n;
}

int wf_move_check(const struct wf_table *t, const char *id, const char *state, const char *verb,
		  const struct wf_move **out, char *err, size_t errlen)
{
	const char *what = t->name ? t->name : "case";
	if (out)
		*out = NULL;
	if (state_index(t, state) < 0) {
		snprintf(err, errlen, "%s %s has an unknown state '%s'", what, id,
			 state ? state : "");
		return LINLI_EINVAL;
	}
	for (size_t i = 0; i < t->n_moves; i++)
		if (strcmp(t->moves[i].from, state) == 0 && strcmp(t->moves[i].verb, verb) == 0) {
			if (out)
				*out = &t->moves[i];
			return 0;
		}
	char allowed[512];
	if (wf_allowed(t, state, allowed, sizeof allowed))
		snprintf(err, errlen, "%s %s is %s: cannot %s: allowed: %s", what, id, state, verb,
			 allowed);
	else
		snprintf(err, errlen, "%s %s is %s: cannot %s: no move is allowed", what, id, state,
			 verb);
	return LINLI_ESTATE;
}
