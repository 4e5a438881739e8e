/*
 * plugin_lua — the kind of plugin that is a Lua script (<script_dir>/apps).
 *
 * Owns what is particular to a script plugin: reading its manifest (`plugin
 * { ... }`, by running its top-level chunk in the sandbox, with no linli.*
 * call that acts: it is not attached yet) into the same metadata block a
 * `.so` has, so that requirements, cycles, duplicates, states and commands
 * work alike; attaching it to the API (script_api.c) and running its init
 * and fini through script_call; and its health for `plugins info`. The
 * registry (plugin.c) decides when; this file only knows how.
 */
#include "plugin_lua.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "access.h"
#include "cmd.h"
#include "config.h"
#include "kernel.h"
#include "linli/error.h"
#include "mp.h"
#include "script.h"
#include "script_api.h"
#include "util.h"

/* Copy string `v` into a metadata field of `cap` bytes; false when it does not fit. */
static bool meta_str(char *field, size_t cap, const char *v)
{
	if (!v || strlen(v) >= cap)
		return false;
	memcpy(field, v, strlen(v) + 1);
	return true;
}

/*
 * Fill the metadata block from a script plugin's manifest, so that the checks,
 * requirements and listings of .so plugins apply unchanged. The manifest was
 * validated by script.c; what is checked here are the block's size limits.
 */
static int meta_from_manifest(const struct script_manifest *m, struct linli_plugin_meta *out,
			      char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	memcpy(out->magic, LINLI_META_MAGIC, sizeof out->magic);
	out->size = LINLI_META_SIZE_1_0;
	out->sdk_major = (uint16_t)atoi(m->sdk);
	out->sdk_minor = (uint16_t)atoi(strchr(m->sdk, '.') + 1);
	if (!meta_str(out->name, sizeof out->name, m->name))
		return errf(err, errlen, LINLI_EINVAL, "plugin name '%s' is longer than %d bytes",
			    m->name, LINLI_NAME_MAX - 1);
	if (!meta_str(out->version, sizeof out->version, m->version))
		return errf(err, errlen, LINLI_EINVAL, "version is longer than %d bytes",
			    LINLI_VERSION_MAX - 1);
	if (!meta_str(out->family, sizeof out->family, m->family))
		return errf(err, errlen, LINLI_EINVAL, "bad family");
	if (!meta_str(out->description, sizeof out->description, m->description))
		return errf(err, errlen, LINLI_EINVAL, "description is longer than %d bytes",
			    LINLI_DESCRIPTION_MAX - 1);
	if (m->n_requires > LINLI_MAX_REQUIRES)
		return errf(err, errlen, LINLI_EINVAL, "requires: more than %d plugins",
			    LINLI_MAX_REQUIRES);
	for (int i = 0; i < m->n_requires; i++)
		if (!meta_str(out->requires[i], LINLI_NAME_MAX, m -> requires[i]))
			return errf(err, errlen, LINLI_EINVAL,
				    "requires: '%s' is longer than %d bytes", m->requires[i],
				    LINLI_NAME_MAX - 1);
	if (m->n_capabilities > LINLI_MAX_CAPS)
		return errf(err, errlen, LINLI_EINVAL, "capabilities: more than %d",
			    LINLI_MAX_CAPS);
	for (int i = 0; i < m->n_capabilities; i++)
		if (!meta_str(out->capabilities[i], LINLI_CAP_MAX, m->capabilities[i]))
			return errf(err, errlen, LINLI_EINVAL,
				    "capabilities: '%s' is longer than %d bytes",
				    m->capabilities[i], LINLI_CAP_MAX - 1);
	return 0;
}

static int lua_read(struct plugin *p, struct linli_plugin_meta *meta, char *why, size_t whylen)
{
	struct kernel *k = plug_kernel(p);
	struct script_opts o = {.kind = SCRIPT_APP, .scope = k->cfg.node_path, .cfg = &k->cfg};
	script_limits_from_cfg(&k->cfg, NULL, &o.lim);
	struct script *s = NULL;
	int rc = script_load_file(plug_path(p), &o, &s, why, whylen);
	plug_set_kind_state(p, s);
	if (!rc)
		rc = meta_from_manifest(script_manifest(s), meta, why, whylen);
	return rc;
}

static const void *lua_bytes(const struct plugin *p, size_t *len)
{
	const struct script *s = plug_kind_state(p);
	*len = 0;
	return s ? script_source(s, len) : NULL;
}

struct init_result {
	bool ok;
	char msg[256];
};

/* init's results: false (and a message) refuses to start; anything else is success. */
static void take_init(lua_State *L, int first, void *ud)
{
	struct init_result *r = ud;
	if (lua_type(L, first) == LUA_TBOOLEAN && !lua_toboolean(L, first)) {
		r->ok = false;
		if (lua_type(L, first + 1) == LUA_TSTRING)
			snprintf(r->msg, sizeof r->msg, "%s", lua_tostring(L, first + 1));
	}
}

/* Attach a checked script plugin to the API and run its init. */
static int lua_start(struct plugin *p, char *why, size_t whylen)
{
	struct script *s = plug_kind_state(p);
	int rc = script_set_scope(s, plug_scope(p)); /* read before its scope was known */
	if (!rc)
		rc = script_api_attach(plug_kernel(p), s, p);
	if (rc)
		return errf(why, whylen, rc, "out of memory");
	int ref = script_handler(s, "init");
	struct init_result r = {.ok = true};
	char msg[512] = "";
	plug_init_begin(p);
	if (ref != LUA_NOREF)
		rc = script_call(s, ref, NULL, NULL, 2, take_init, &r, msg, sizeof msg);
	const char *ierr = plug_init_end(p);
	if (!rc && r.ok)
		return 0;
	const char *extra = ierr[0] ? ierr : r.msg;
	if (rc)
		errf(why, whylen, rc, "init failed: %s", msg);
	else
		errf(why, whylen, rc, "init returned false%s%s", extra[0] ? ": " : "", extra);
	return rc ? rc : LINLI_EINVAL;
}

static void lua_fini(struct plugin *p)
{
	struct script *s = plug_kind_state(p);
	int fini = s ? script_handler(s, "fini") : LUA_NOREF;
	if (fini != LUA_NOREF) {
		char err[512];
		script_call(s, fini, NULL, NULL, 0, NULL, NULL, err, sizeof err);
	}
}

static void lua_unload(struct plugin *p)
{
	struct script *s = plug_kind_state(p);
	if (!s)
		return;
	script_api_detach(s);
	script_free(s);
	plug_set_kind_state(p, NULL);
}

static const char *lua_fault_scope(const struct plugin *p)
{
	const struct script *s = plug_kind_state(p);
	const char *fs = s ? script_fault_scope(s) : NULL;
	return fs && !*fs ? plug_scope(p) : fs; /* "": its own work, where it acts */
}

/* A script plugin's health: counters and its recent errors with file and line. */
static void lua_pack_info(const struct plugin *p, const struct cmd_call *call, msgpack_packer *pk)
{
	const struct script *s = plug_kind_state(p);
	if (!s) {
		msgpack_pack_nil(pk);
		return;
	}
	/* Its own work (init, timers, commands) is where it acts: its scope (plug_scope). */
	const char *own = plug_scope(p);
	bool node = access_sees(call, own);
	struct script_stats st;
	script_stats(s, &st);
	const struct script_logent *e[SCRIPT_LOG_MAX];
	int n = script_log(s, e, SCRIPT_LOG_MAX), shown = 0;
	for (int i = 0; i < n; i++)
		if (access_sees(call, *e[i]->scope ? e[i]->scope : own))
			e[shown++] = e[i];
	n = shown;
	msgpack_pack_map(pk, 8);
	mp_kv_str(pk, "state", script_state_name(script_state(s)));
	mp_kv_uint_if(pk, "calls", st.calls, node);
	mp_kv_uint_if(pk, "errors", st.errors, node);
	mp_kv_uint_if(pk, "faults", st.faults, node);
	mp_kv_uint_if(pk, "mem_kb", st.mem_used >> 10, node);
	mp_kv_uint_if(pk, "depth_drops", st.depth_drops, node);
	mp_kv_uint_if(pk, "delayed", st.delayed, node);
	mp_str(pk, "log");
	msgpack_pack_array(pk, (size_t)n);
	for (int i = 0; i < n; i++) {
		msgpack_pack_map(pk, 4);
		mp_kv_str(pk, "kind", e[i]->fault ? "fault" : "error");
		mp_kv_str(pk, "where", e[i]->where);
		mp_kv_str(pk, "scope", *e[i]->scope ? e[i]->scope : own);
		mp_kv_str(pk, "message", e[i]->msg);
	}
}

static int lua_dirs(const struct cfg *c, bool rule, char (*out)[PATH_MAX], int max, bool *optional)
{
	*optional = true; /* a script dir need not have apps/ or rules/ */
	int n = 0;
	for (int i = 0; i < c->n_script_dirs && n < max; i++)
		snprintf(out[n++], PATH_MAX, "%s/%s", c->script_dirs[i], rule ? "rules" : "apps");
	return n;
}

static int lua_install_dir(const struct cfg *c, char *dir, size_t len, char *err, size_t errlen)
{
	if (c->n_script_dirs == 0)
		return errf(err, errlen, LINLI_ECONFIG,
			    "no script_dirs configured: nowhere to install a script plugin to");
	snprintf(dir, len, "%s/apps", c->script_dirs[0]);
	if (mkdirs(dir, 0750) != 0)
		return errf(err, errlen, LINLI_EIO, "cannot create %s: %s", dir, strerror(errno));
	return 0;
}

/* Does the script at path declare plugin (or rule) `name`? Fills caps. 1 yes, 0 no. */
static int lua_declares(const struct cfg *c, const char *path, bool rule, const char *name,
			char (*caps)[LINLI_CAP_MAX], int max, int *n)
{
	char why[512];
	struct script_opts o = {
	    .kind = rule ? SCRIPT_RULE : SCRIPT_APP, .scope = c->node_path, .cfg = c};
	script_limits_from_cfg(c, NULL, &o.lim);
	struct script *s;
	if (script_load_file(path, &o, &s, why, sizeof why) != 0)
		return 0;
	const struct script_ruledecl *d = script_rule(s);
	const struct script_manifest *sm = script_manifest(s);
	char **v = d ? d->capabilities : sm ? sm->capabilities : NULL;
	int nv = d ? d->n_capabilities : sm ? sm->n_capabilities : 0;
	int found = strcmp(script_name(s), name) == 0;
	for (*n = 0; found && *n < max && *n < nv; (*n)++)
		snprintf(caps[*n], LINLI_CAP_MAX, "%s", v[*n]);
	script_free(s);
	return found;
}

static const struct plug_kind lua_kind = {
    .name = "lua",
    .suffix = ".lua",
    .dirs = lua_dirs,
    .install_dir = lua_install_dir,
    .read = lua_read,
    .declares = lua_declares,
    .bytes = lua_bytes,
    .run_installed = true, /* the state that runs is the installed file's, named by its path */
    .start = lua_start,
    .fini = lua_fini,
    .unload = lua_unload,
    .fault_scope = lua_fault_scope,
    .pack_info = lua_pack_info,
};

const struct plug_kind *plugin_lua_kind(void)
{
	return &lua_kind;
}
