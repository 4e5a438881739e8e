/*
 * script_cmds — see script_cmds.h.
 *
 * Rules meet the bus here: a rule that becomes ready is attached to the
 * linli.* API (script_api.c) and subscribes to its `on` pattern within its
 * scope (the node's); each event runs when/run through the sandbox. Errors
 * and faults land in the rule's log (`rules log`), so the handler reports
 * none to the bus; a faulted rule loses its subscription and everything its
 * run made until it is reloaded. A rule that publishes queues its event (the
 * bus never recurses).
 *
 * A FILE argument is read by linlid, so it must be an absolute path on the
 * daemon's machine; with `--stdin` the console sends the file's text instead
 * and FILE only names it in messages (`linli rules check x.lua --stdin < x.lua`).
 */
#include "script_cmds.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "access.h"
#include "cmd.h"
#include "grants.h"
#include "json.h"
#include "kernel.h"
#include "linli/error.h"
#include "linli/plugin.h"
#include "log.h"
#include "mp.h"
#include "script.h"
#include "script_api.h"
#include "store_cmds.h"
#include "util.h"

static struct script *need_rule(struct cmd_call *call, struct script_rules *r, int *rc)
{
	if (call->argc < 3) {
		*rc =
		    cmd_fail(call, LINLI_EINVAL, "usage: %s %s NAME", call->argv[0], call->argv[1]);
		return NULL;
	}
	struct script *s = script_rules_find(r, call->argv[2]);
	if (!s)
		*rc = cmd_fail(call, LINLI_ENOENT, "no rule named '%s'; try 'rules list'",
			       call->argv[2]);
	return s;
}

/* The text of FILE: the request's input if sent, else the daemon reads FILE. */
int script_cmds_file_text(struct cmd_call *call, const char **name, char **text, size_t *len)
{
	if (call->argc < 3)
		return cmd_fail(call, LINLI_EINVAL,
				"usage: %s %s FILE [--stdin] (FILE absolute, or its text on stdin)",
				call->argv[0], call->argv[1]);
	*name = call->argv[2];
	if (call->input) {
		*text = malloc(call->input_len + 1);
		if (!*text)
			return LINLI_ENOMEM;
		memcpy(*text, call->input, call->input_len);
		(*text)[call->input_len] = '\0';
		*len = call->input_len;
		return 0;
	}
	if ((*name)[0] != '/')
		return cmd_fail(call, LINLI_EINVAL,
				"%s: give an absolute path (linlid does not see the console's "
				"directory) or send the file with --stdin",
				*name);
	FILE *f = fopen(*name, "rb");
	if (!f)
		return cmd_fail(call, LINLI_ENOENT, "%s: cannot open on the daemon's machine",
				*name);
	size_t cap = SCRIPT_MAX_SOURCE + 1;
	*text = malloc(cap + 1);
	*len = *text ? fread(*text, 1, cap, f) : 0;
	fclose(f);
	if (!*text)
		return LINLI_ENOMEM;
	(*text)[*len] = '\0';
	return 0;
}

static void pack_limits(msgpack_packer *pk, const struct script_limits *l)
{
	msgpack_pack_map(pk, 4);
	mp_kv_uint(pk, "memory_kb", l->memory >> 10);
	mp_kv_uint(pk, "instructions", l->instructions);
	mp_kv_uint(pk, "time_ms", l->time_ms);
	mp_kv_uint(pk, "max_errors", l->max_errors);
}

/*
 * A rule is the node's: its name, state and declaration show to every
 * account of the node. What it did is not: its counters count the node's
 * events, so they show only to callers whose jurisdiction covers the node
 * (nil for others), and its problem and log lines may quote an event, so
 * each shows only within the jurisdiction of the event it came from (the
 * node's, for its own work: load, timers, commands).
 */
#define HIDDEN_PROBLEM "(not shown: it concerns events outside your jurisdiction)"

static const char *shown_problem(const struct cmd_call *call, const struct script *s)
{
	const char *p = script_fault(s);
	return !*p || access_sees(call, script_fault_scope(s)) ? p : HIDDEN_PROBLEM;
}

static int cmd_list(struct cmd_call *call, void *ud)
{
	struct script_rules *r = ud;
	msgpack_packer *pk = &call->pk;
	bool node = access_sees(call, NULL);
	int n = script_rules_count(r);
	msgpack_pack_array(pk, (size_t)n);
	for (int i = 0; i < n; i++) {
		struct script *s = script_rules_at(r, i);
		const struct script_ruledecl *d = script_rule(s);
		struct script_stats st;
		script_stats(s, &st);
		msgpack_pack_map(pk, 7);
		mp_kv_str(pk, "name", script_name(s));
		mp_kv_str(pk, "state", script_state_name(script_state(s)));
		mp_kv_str(pk, "on", d ? d->on : "-");
		mp_kv_uint_if(pk, "calls", st.calls, node);
		mp_kv_uint_if(pk, "errors", st.errors, node);
		mp_kv_str(pk, "file", script_file(s));
		mp_kv_str(pk, "problem", shown_problem(call, s));
	}
	return 0;
}

static int cmd_show(struct cmd_call *call, void *ud)
{
	int rc = 0;
	struct script *s = need_rule(call, ud, &rc);
	if (!s)
		return rc;
	const struct script_ruledecl *d = script_rule(s);
	struct script_stats st;
	script_stats(s, &st);
	bool node = access_sees(call, NULL);
	size_t len;
	const char *src = script_source(s, &len);
	msgpack_packer *pk = &call->pk;
	msgpack_pack_map(pk, 12);
	mp_kv_str(pk, "name", script_name(s));
	mp_kv_str(pk, "file", script_file(s));
	mp_kv_str(pk, "state", script_state_name(script_state(s)));
	mp_kv_str(pk, "problem", shown_problem(call, s));
	mp_kv_str(pk, "on", d ? d->on : NULL);
	mp_kv_str(pk, "description", d && d->description ? d->description : "");
	mp_kv_str(pk, "scope", script_scope(s));
	mp_str(pk, "capabilities");
	msgpack_pack_array(pk, d ? (size_t)d->n_capabilities : 0);
	for (int i = 0; d && i < d->n_capabilities; i++)
		mp_str(pk, d->capabilities[i]);
	mp_str(pk, "limits");
	pack_limits(pk, script_limits(s));
	mp_str(pk, "stats");
	msgpack_pack_map(pk, 12);
	mp_kv_uint_if(pk, "calls", st.calls, node);
	mp_kv_uint_if(pk, "errors", st.errors, node);
	mp_kv_uint_if(pk, "faults", st.faults, node);
	mp_kv_uint_if(pk, "last_ms", st.last_ms, node);
	mp_kv_uint_if(pk, "max_ms", st.max_ms, node);
	mp_kv_uint_if(pk, "last_units", st.last_units, node);
	mp_kv_uint_if(pk, "max_units", st.max_units, node);
	mp_kv_uint_if(pk, "mem_kb", st.mem_used >> 10, node);
	mp_kv_uint_if(pk, "mem_peak_kb", st.mem_peak >> 10, node);
	mp_kv_uint_if(pk, "mem_refused", st.mem_refused, node);
	mp_kv_uint_if(pk, "depth_drops", st.depth_drops, node);
	mp_kv_uint_if(pk, "delayed", st.delayed, node);
	mp_kv_bool(pk, "has_when", d && d->has_when);
	mp_str(pk, "source");
	msgpack_pack_str(pk, len);
	msgpack_pack_str_body(pk, src, len);
	return 0;
}

/* The capabilities a checked rule or script plugin declares, and which kind it is. */
static int declared(const struct script *s, const char **out, int max, enum grant_kind *kind)
{
	const struct script_ruledecl *d = script_rule(s);
	const struct script_manifest *m = script_manifest(s);
	char **v = d ? d->capabilities : m ? m->capabilities : NULL;
	int n = d ? d->n_capabilities : m ? m->n_capabilities : 0;
	*kind = d ? GRANT_RULE : GRANT_PLUGIN;
	if (n > max)
		n = max;
	for (int i = 0; i < n; i++)
		out[i] = v[i];
	return n;
}

static int cmd_check(struct cmd_call *call, void *ud)
{
	struct script_rules *r = ud;
	const char *name = NULL;
	char *text = NULL;
	size_t len = 0;
	int rc = script_cmds_file_text(call, &name, &text, &len);
	if (rc)
		return rc;
	struct script *s = NULL;
	rc = script_rules_check(r, name, text, len, &s, call->err, sizeof call->err);
	free(text);
	if (rc)
		return rc;
	/* Capabilities no admin granted yet: reported, since the load would refuse them. */
	const char *caps[LINLI_MAX_CAPS];
	enum grant_kind kind;
	int n = declared(s, caps, LINLI_MAX_CAPS, &kind);
	char why[1024] = "";
	bool granted = grants_check(call->k, kind, script_name(s), caps, n, why, sizeof why) == 0;
	msgpack_pack_map(&call->pk, granted ? 2 : 3);
	mp_kv_str(&call->pk, "file", name);
	mp_kv_str(&call->pk, "result", "ok: syntax, declaration and limits are valid");
	if (!granted)
		mp_kv_str(&call->pk, "grants", why);
	script_free(s);
	return 0;
}

/* rules install FILE --grant: the installing admin grants what the rule declares. */
static int grant_declared(struct kernel *k, const struct tier_principal *who,
			  struct script_rules *r, const char *file, const char *text, size_t len,
			  char *err, size_t errlen)
{
	struct script *s = NULL;
	int rc = script_rules_check(r, file, text, len, &s, err, errlen);
	if (rc)
		return rc;
	const char *caps[LINLI_MAX_CAPS];
	enum grant_kind kind;
	int n = declared(s, caps, LINLI_MAX_CAPS, &kind);
	if (kind != GRANT_RULE)
		rc = errf(err, errlen, LINLI_EINVAL,
			  "%s declares a script plugin: install it with 'plugins install'", file);
	else if (n > 0)
		rc = grants_change(k, who, kind, script_name(s), caps, n, true, err, errlen);
	script_free(s);
	return rc;
}

int script_cmds_install(struct kernel *k, const struct tier_principal *who, const char *file,
			const char *text, size_t len, char *name, size_t namelen, char *err,
			size_t errlen)
{
	if (!k->rules)
		return errf(err, errlen, LINLI_ESTATE, "this node runs no rules");
	int rc = grant_declared(k, who, k->rules, file, text, len, err, errlen);
	return rc ? rc : script_rules_install(k->rules, file, text, len, name, namelen, err, errlen);
}

static int cmd_install(struct cmd_call *call, void *ud)
{
	struct script_rules *r = ud;
	bool grant = cmd_flag(call, "--grant");
	const char *file = NULL;
	char *text = NULL;
	size_t len;
	int rc = script_cmds_file_text(call, &file, &text, &len);
	if (rc)
		return rc;
	if (grant && (rc = grant_declared(call->k, call->who, r, file, text, len, call->err,
					  sizeof call->err)) != 0) {
		free(text);
		return rc;
	}
	char name[SCRIPT_NAME_MAX + 1];
	rc = script_rules_install(r, file, text, len, name, sizeof name, call->err,
				  sizeof call->err);
	free(text);
	if (rc)
		return rc;
	struct script *s = script_rules_find(r, name);
	msgpack_pack_map(&call->pk, 3);
	mp_kv_str(&call->pk, "name", name);
	mp_kv_str(&call->pk, "file", script_file(s));
	mp_kv_str(&call->pk, "state", script_state_name(script_state(s)));
	return grant ? store_cmds_wait_commit(call) : 0;
}

static int cmd_reload(struct cmd_call *call, void *ud)
{
	struct script_rules *r = ud;
	const char *name = call->argc > 2 ? call->argv[2] : NULL;
	int rc = script_rules_reload(r, name, call->err, sizeof call->err);
	if (rc)
		return rc;
	msgpack_packer *pk = &call->pk;
	int n = name ? 1 : script_rules_count(r);
	msgpack_pack_map(pk, 1);
	mp_str(pk, "reloaded");
	msgpack_pack_array(pk, (size_t)n);
	for (int i = 0; i < n; i++)
		mp_str(pk, name ? name : script_name(script_rules_at(r, i)));
	return 0;
}

static int cmd_remove(struct cmd_call *call, void *ud)
{
	struct script_rules *r = ud;
	if (call->argc < 3)
		return cmd_fail(call, LINLI_EINVAL, "usage: rules remove NAME");
	int rc = script_rules_remove(r, call->argv[2], call->err, sizeof call->err);
	if (rc)
		return rc;
	/* What it was granted goes with it: a new rule of that name starts with nothing. */
	char err[512];
	bool dropped = grants_drop(call->k, call->who, GRANT_RULE, call->argv[2], err,
				   sizeof err) == 0;
	if (!dropped)
		log_error("grants", "rule %s removed, but its grants stay: %s", call->argv[2], err);
	msgpack_pack_map(&call->pk, 2);
	mp_kv_str(&call->pk, "removed", call->argv[2]);
	mp_kv_bool(&call->pk, "grants_revoked", dropped);
	return store_cmds_wait_commit(call);
}

static int cmd_log(struct cmd_call *call, void *ud)
{
	int rc = 0;
	struct script *s = need_rule(call, ud, &rc);
	if (!s)
		return rc;
	const struct script_logent *e[SCRIPT_LOG_MAX];
	int n = script_log(s, e, SCRIPT_LOG_MAX), shown = 0;
	for (int i = 0; i < n; i++) /* only lines of the caller's jurisdiction */
		if (access_sees(call, e[i]->scope))
			e[shown++] = e[i];
	n = shown;
	msgpack_packer *pk = &call->pk;
	msgpack_pack_array(pk, (size_t)n);
	for (int i = 0; i < n; i++) {
		char t[40];
		time_t sec = (time_t)(e[i]->time_ms / 1000);
		struct tm tm;
		gmtime_r(&sec, &tm);
		size_t w = strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(t + w, sizeof t - w, ".%03dZ", (int)(e[i]->time_ms % 1000));
		msgpack_pack_map(pk, 5);
		mp_kv_str(pk, "time", t);
		mp_kv_str(pk, "kind", e[i]->fault ? "fault" : "error");
		mp_kv_str(pk, "where", e[i]->where);
		mp_kv_str(pk, "scope", *e[i]->scope ? e[i]->scope : call->k->cfg.node_path);
		mp_kv_str(pk, "message", e[i]->msg);
	}
	return 0;
}

/* A concrete topic for pattern p: each '+' or '#' level becomes "test". */
static void sample_topic(const char *p, char *out, size_t len)
{
	size_t o = 0;
	for (const char *c = p; *c && o + 5 < len; c++) {
		bool wild = (*c == '+' || *c == '#') && (c == p || c[-1] == '/') &&
			    (c[1] == '/' || c[1] == '\0');
		if (wild) {
			memcpy(out + o, "test", 4);
			o += 4;
		} else
			out[o++] = *c;
	}
	out[o] = '\0';
}

/* rules test NAME [TOPIC] [--run], event JSON on stdin (default {}). */
static int cmd_test(struct cmd_call *call, void *ud)
{
	bool run = cmd_flag(call, "--run");
	int rc = 0;
	struct script *s = need_rule(call, ud, &rc);
	if (!s)
		return rc;
	const struct script_ruledecl *d = script_rule(s);
	if (!d)
		return cmd_fail(call, LINLI_ESTATE, "rule '%s' is %s: %s", script_name(s),
				script_state_name(script_state(s)), script_fault(s));
	char topic[SCRIPT_TOPIC_MAX + 1], why[128];
	if (call->argc > 3)
		snprintf(topic, sizeof topic, "%s", call->argv[3]);
	else
		sample_topic(d->on, topic, sizeof topic);
	if (!script_topic_valid(topic, false, why, sizeof why))
		return cmd_fail(call, LINLI_EINVAL, "topic '%s': %s", topic, why);
	if (!script_topic_match(d->on, topic))
		return cmd_fail(call, LINLI_EINVAL, "topic '%s' does not match the rule's on '%s'",
				topic, d->on);
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (call->input) {
		char jerr[256];
		if (json_parse_to_mp(call->input, call->input_len, &pk, jerr, sizeof jerr) != 0) {
			msgpack_sbuffer_destroy(&sb);
			return cmd_fail(call, LINLI_EINVAL, "event: %s", jerr);
		}
	} else
		msgpack_pack_map(&pk, 0);
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	size_t off = 0;
	msgpack_unpack_next(&up, sb.data, sb.size, &off);
	if (up.data.type != MSGPACK_OBJECT_MAP) {
		msgpack_unpacked_destroy(&up);
		msgpack_sbuffer_destroy(&sb);
		return cmd_fail(call, LINLI_EINVAL, "event: must be a JSON object");
	}
	bool matched, ran;
	rc =
	    script_rule_eval(s, topic, &up.data, !run, &matched, &ran, call->err, sizeof call->err);
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&sb);
	if (rc)
		return rc;
	msgpack_pack_map(&call->pk, 3);
	mp_kv_str(&call->pk, "topic", topic);
	mp_kv_bool(&call->pk, "matched", matched);
	mp_kv_bool(&call->pk, "ran", ran);
	return 0;
}

/* ---- rules on the bus ---- */

/*
 * A rule that becomes ready is attached to the linli.* API (script_api.c) as
 * itself — a rule principal with its declared capabilities — and subscribed
 * to its `on`. Detaching releases its `on` subscription and everything its
 * run made through the API.
 */
static int rule_attach(struct script *s, void *ud, char *err, size_t errlen)
{
	struct kernel *k = ud;
	const struct script_ruledecl *d = script_rule(s);
	if (!d)
		return 0;
	int rc = grants_check(k, GRANT_RULE, script_name(s), (const char *const *)d->capabilities,
			      d->n_capabilities, err, errlen);
	if (rc)
		return rc;
	if ((rc = script_api_attach(k, s, NULL)) != 0)
		return rc;
	if ((rc = script_api_rule_on(s, err, errlen)) != 0) {
		log_warn("script", "rule %s: cannot subscribe to its on: %s", script_name(s), err);
		script_api_detach(s);
	}
	return rc;
}

static void rule_detach(struct script *s, void *ud)
{
	(void)ud;
	script_api_detach(s);
}

void script_cmds_bus_ops(struct kernel *k, struct script_rules_ops *ops)
{
	ops->attach = rule_attach;
	ops->detach = rule_detach;
	ops->ud = k;
}

/* ---- grants (grants.h): what a rule declares, and what a change does to it ---- */

static int grants_declared(struct kernel *k, const char *name, const char **out, int max)
{
	struct script *s = k->rules ? script_rules_find(k->rules, name) : NULL;
	const struct script_ruledecl *d = s ? script_rule(s) : NULL;
	if (!d)
		return s ? 0 : -1;
	enum grant_kind kind;
	return declared(s, out, max, &kind);
}

static void grants_changed(struct kernel *k, const char *name, bool revoked, char *state,
			   size_t len)
{
	struct script *s = k->rules ? script_rules_find(k->rules, name) : NULL;
	if (!s) {
		snprintf(state, len, "not installed");
		return;
	}
	const char *caps[LINLI_MAX_CAPS];
	enum grant_kind kind;
	int n = script_rule(s) ? declared(s, caps, LINLI_MAX_CAPS, &kind) : 0;
	char why[768];
	bool ok = grants_check(k, GRANT_RULE, name, caps, n, why, sizeof why) == 0;
	if (revoked && !ok && script_state(s) == SCRIPT_READY) {
		char m[800];
		snprintf(m, sizeof m, "stopped: a grant was revoked: %s", why);
		script_stop(s, m);
	}
	if (script_state(s) == SCRIPT_READY)
		snprintf(state, len, "ready");
	else if (ok)
		snprintf(state, len, "%s; every declared capability is granted: 'linli rules "
			 "reload %s' starts it", script_state_name(script_state(s)), name);
	else
		snprintf(state, len, "%s: %s", script_state_name(script_state(s)), why);
}

static int grants_names(struct kernel *k, const char **out, int max)
{
	int n = 0, count = k->rules ? script_rules_count(k->rules) : 0;
	for (int i = 0; i < count && n < max; i++) {
		struct script *s = script_rules_at(k->rules, i);
		const struct script_ruledecl *d = script_rule(s);
		if (d && d->n_capabilities > 0)
			out[n++] = script_name(s);
	}
	return n;
}

static const struct grants_subject_ops rule_grants_ops = {grants_declared, grants_changed,
							  grants_names};

int script_cmds_register(struct kernel *k, struct script_rules *r)
{
	static const struct {
		const char *sub, *usage, *summary;
		cmd_fn fn;
	} cmds[] = {
	    {"list", "", "the rules of this node with their state (faulted, broken included)",
	     cmd_list},
	    {"show", "NAME", "a rule's declaration, limits, counters and source", cmd_show},
	    {"check", "FILE [--stdin]", "check a rule or script plugin without installing it",
	     cmd_check},
	    {"install", "FILE [--stdin] [--grant]",
	     "validate and install (or replace) a rule; --grant grants what it declares",
	     cmd_install},
	    {"reload", "[NAME]", "re-read rule files; a broken one keeps the old version",
	     cmd_reload},
	    {"remove", "NAME", "unload a rule and delete its file", cmd_remove},
	    {"log", "NAME", "a rule's recent errors with file and line", cmd_log},
	    {"test", "NAME [TOPIC] [--run]",
	     "evaluate a rule's when (and run, with --run) for an event on stdin", cmd_test},
	};
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
		int rc = cmd_register(k->cmds, "rules", cmds[i].sub, cmds[i].usage, cmds[i].summary,
				      cmds[i].fn, r, r);
		if (rc)
			return rc;
	}
	return grants_register(k, "rules", GRANT_RULE, &rule_grants_ops);
}
