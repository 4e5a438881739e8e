/*
 * grants — see grants.h.
 *
 * One record per subject in the `grants` system dataset, at the node's scope:
 * {kind, name, caps (space-separated), updated, updated_by}. The dataset comes down the tiers
 * (federation's down log): the records of the nodes above, at their scopes, grant here too —
 * what a tier above approved for its jurisdiction; this node's admins add to it, never take
 * from it. Its id is a
 * hash of kind and name (a rule name may be longer than a store id). Reads
 * go to the store on the kernel thread and so see the batch's own writes: a
 * grant followed by an enable in the same batch sees the grant.
 */
#include "grants.h"

#include <msgpack.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "access.h"
#include "cmd.h"
#include "kernel.h"
#include "linli/error.h"
#include "linli/plugin.h"
#include "log.h"
#include "mp.h"
#include "store.h"
#include "store_cmds.h"
#include "tier_store.h"
#include "util.h"

#define MAX_CAPS 256 /* capabilities named in one command or declared by one subject */
#define LIST_MAX_RECHECK 4096 /* subjects re-checked after a change from above */

static const char *kind_name(enum grant_kind kind)
{
	return kind == GRANT_RULE ? "rule" : "plugin";
}
static const char *kind_word(enum grant_kind kind)
{
	return kind == GRANT_RULE ? "rules" : "plugins";
}

static void record_id(enum grant_kind kind, const char *name, char out[STORE_ID_MAX + 1])
{
	unsigned char h[16];
	char key[128];
	snprintf(key, sizeof key, "%s:%s", kind_name(kind), name);
	crypto_generichash(h, sizeof h, (const unsigned char *)key, strlen(key), NULL, 0);
	out[0] = 'g';
	sodium_bin2hex(out + 1, STORE_ID_MAX, h, sizeof h);
}

static bool name_ok(const char *n)
{
	size_t l = strlen(n);
	if (l == 0 || l > 64 || !(n[0] >= 'a' && n[0] <= 'z'))
		return false;
	for (size_t i = 1; i < l; i++)
		if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= '0' && n[i] <= '9') || n[i] == '_'))
			return false;
	return true;
}

struct grec {
	char caps[GRANTS_LIST_MAX];
	char by[81];
	int64_t updated;
};

static void rec_from(const msgpack_object *m, struct grec *g)
{
	mp_copy_str(mp_get(m, "caps"), g->caps, sizeof g->caps);
	mp_copy_str(mp_get(m, "updated_by"), g->by, sizeof g->by);
	const msgpack_object *u = mp_get(m, "updated");
	g->updated = u && u->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (int64_t)u->via.u64 : 0;
}

/* The record of (kind, name) at `scope` (NULL: this node's); all fields empty when none. */
static int rec_get_at(struct kernel *k, const char *scope, enum grant_kind kind, const char *name,
		      struct grec *g, char *err, size_t errlen)
{
	memset(g, 0, sizeof *g);
	char id[STORE_ID_MAX + 1];
	record_id(kind, name, id);
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	int rc = store_get_at(k->store, "grants", scope ? scope : k->cfg.node_path, id, &sb, err,
			      errlen);
	if (rc == LINLI_ENOENT)
		rc = 0;
	else if (rc == 0) {
		msgpack_unpacked up;
		msgpack_unpacked_init(&up);
		size_t off = 0;
		if (msgpack_unpack_next(&up, sb.data, sb.size, &off) == MSGPACK_UNPACK_SUCCESS &&
		    up.data.type == MSGPACK_OBJECT_MAP)
			rec_from(&up.data, g);
		else {
			rc = LINLI_ECORRUPT;
			snprintf(err, errlen, "grants: the record of %s %s is damaged",
				 kind_name(kind), name);
		}
		msgpack_unpacked_destroy(&up);
	}
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

static int rec_get(struct kernel *k, enum grant_kind kind, const char *name, struct grec *g,
		   char *err, size_t errlen)
{
	return rec_get_at(k, NULL, kind, name, g, err, errlen);
}

/* What the nodes above granted (kind, name), space-separated into `out`, and where. */
static int above_get(struct kernel *k, enum grant_kind kind, const char *name, char *out,
		     size_t outlen, char *from, size_t fromlen, char *err, size_t errlen)
{
	out[0] = from[0] = '\0';
	char up[SCOPE_MAX + 1];
	snprintf(up, sizeof up, "%s", k->cfg.node_path);
	size_t o = 0, fo = 0;
	for (char *sl; (sl = strrchr(up, '/'));) {
		*sl = '\0';
		struct grec g;
		int rc = rec_get_at(k, up, kind, name, &g, err, errlen);
		if (rc)
			return rc;
		if (!g.caps[0])
			continue;
		if (o < outlen)
			o += (size_t)snprintf(out + o, outlen - o, "%s%s", o ? " " : "", g.caps);
		if (fo < fromlen)
			fo += (size_t)snprintf(from + fo, fromlen - fo, "%s%s", fo ? ", " : "", up);
	}
	return 0;
}

int grants_get(struct kernel *k, enum grant_kind kind, const char *name, char *out, size_t outlen,
	       char *err, size_t errlen)
{
	struct grec g;
	char above[GRANTS_LIST_MAX], from[256];
	int rc = rec_get(k, kind, name, &g, err, errlen);
	if (!rc)
		rc = above_get(k, kind, name, above, sizeof above, from, sizeof from, err, errlen);
	snprintf(out, outlen, "%s%s%s", rc ? "" : g.caps, !rc && g.caps[0] && above[0] ? " " : "",
		 rc ? "" : above);
	return rc;
}

/* A subject's capabilities as words (the record keeps them space-separated). */
struct capset {
	char v[MAX_CAPS][LINLI_CAP_MAX];
	int n;
};

static void caps_split(const char *list, struct capset *c)
{
	c->n = 0;
	for (const char *p = list + strspn(list, " "); *p && c->n < MAX_CAPS;) {
		size_t len = strcspn(p, " ");
		if (len < LINLI_CAP_MAX)
			snprintf(c->v[c->n++], LINLI_CAP_MAX, "%.*s", (int)len, p);
		p += len;
		p += strspn(p, " ");
	}
}

static int caps_find(const struct capset *c, const char *cap)
{
	for (int i = 0; i < c->n; i++)
		if (strcmp(c->v[i], cap) == 0)
			return i;
	return -1;
}

/* Is `cap` covered by one of c's grants? */
static bool caps_cover(const struct capset *c, const char *cap)
{
	for (int i = 0; i < c->n; i++)
		if (tier_cap_covers(c->v[i], cap))
			return true;
	return false;
}

/* c space-separated into out; false when it does not fit. */
static bool caps_join(const struct capset *c, char *out, size_t n)
{
	size_t used = 0;
	out[0] = '\0';
	for (int i = 0; i < c->n; i++) {
		int w = snprintf(out + used, n - used, "%s%s", used ? " " : "", c->v[i]);
		if (w < 0 || (size_t)w >= n - used)
			return false;
		used += (size_t)w;
	}
	return true;
}

static void pack_caps(msgpack_packer *pk, const char *key, const struct capset *c)
{
	mp_str(pk, key);
	msgpack_pack_array(pk, (size_t)c->n);
	for (int i = 0; i < c->n; i++)
		mp_str(pk, c->v[i]);
}

int grants_check(struct kernel *k, enum grant_kind kind, const char *name, const char *const *caps,
		 int n, char *why, size_t whylen)
{
	if (!k->tiers || !k->store || n == 0)
		return 0;
	char err[256], all[2 * GRANTS_LIST_MAX];
	if (grants_get(k, kind, name, all, sizeof all, err, sizeof err) != 0) {
		snprintf(why, whylen, "cannot read its grants: %s", err);
		return LINLI_EPERM;
	}
	struct capset granted;
	caps_split(all, &granted);
	char missing[2048] = "";
	size_t used = 0;
	int nmiss = 0;
	for (int i = 0; i < n; i++) {
		if (caps_cover(&granted, caps[i]))
			continue;
		nmiss++;
		if (used < sizeof missing)
			used += (size_t)snprintf(missing + used, sizeof missing - used, "%s%s",
						 used ? " " : "", caps[i]);
	}
	if (!nmiss)
		return 0;
	snprintf(why, whylen,
		 "%s '%s' declares %s no admin granted: %s (an admin grants %s with 'linli %s "
		 "grant %s %s', or installs it granted with 'linli %s install FILE --grant')",
		 kind_name(kind), name, nmiss == 1 ? "a capability" : "capabilities", missing,
		 nmiss == 1 ? "it" : "them", kind_word(kind), name, missing, kind_word(kind));
	return LINLI_EPERM;
}

static int rec_put(struct kernel *k, const struct tier_principal *who, enum grant_kind kind,
		   const char *name, const char *list, char *err, size_t errlen)
{
	char id[STORE_ID_MAX + 1];
	record_id(kind, name, id);
	if (!*list) {
		int rc = store_delete_at(k->store, "grants", k->cfg.node_path, id, err, errlen);
		return rc == LINLI_ENOENT ? 0 : rc;
	}
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 5);
	mp_kv_str(&pk, "kind", kind_name(kind));
	mp_kv_str(&pk, "name", name);
	mp_kv_str(&pk, "caps", list);
	mp_kv_int(&pk, "updated", wall_ms());
	char by[81];
	snprintf(by, sizeof by, "%s", who && who->name ? who->name : "-");
	mp_kv_str(&pk, "updated_by", by);
	int rc = store_put(k->store, "grants", k->cfg.node_path, id, sb.data, sb.size, NULL, NULL,
			   err, errlen);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

int grants_change(struct kernel *k, const struct tier_principal *who, enum grant_kind kind,
		  const char *name, const char *const *caps, int n, bool grant, char *err,
		  size_t errlen)
{
	if (!name_ok(name))
		return errf(err, errlen, LINLI_EINVAL,
			    "'%.80s' is not a %s name ([a-z][a-z0-9_]*, at most 64)", name,
			    kind_name(kind));
	if (n <= 0)
		return errf(err, errlen, LINLI_EINVAL, "name at least one capability");
	for (int i = 0; i < n; i++) {
		int rc = tier_cap_check(caps[i], err, errlen);
		if (rc)
			return rc;
		if (strlen(caps[i]) >= LINLI_CAP_MAX)
			return errf(err, errlen, LINLI_EINVAL,
				    "capability '%.60s...' is longer than %d bytes", caps[i],
				    LINLI_CAP_MAX - 1);
	}
	struct grec g;
	int rc = rec_get(k, kind, name, &g, err, errlen);
	if (rc)
		return rc;
	struct capset set;
	caps_split(g.caps, &set);
	char above[GRANTS_LIST_MAX], from[256];
	if (!grant && (rc = above_get(k, kind, name, above, sizeof above, from, sizeof from, err,
				      errlen)))
		return rc;
	struct capset aset = {.n = 0};
	if (!grant)
		caps_split(above, &aset);
	for (int i = 0; !grant && i < n; i++)
		if (caps_find(&set, caps[i]) < 0 && caps_find(&aset, caps[i]) >= 0)
			return errf(err, errlen, LINLI_EPERM,
				    "%s '%s': '%s' is granted by the tier above (%s) for its whole "
				    "jurisdiction: it is revoked there",
				    kind_name(kind), name, caps[i], from);
	for (int i = 0; !grant && i < n; i++)
		if (caps_find(&set, caps[i]) < 0)
			return errf(
			    err, errlen, LINLI_ENOENT,
			    "%s '%s' holds no grant '%s' (its grants: %s); 'linli %s grants "
			    "%s' lists them",
			    kind_name(kind), name, caps[i], g.caps[0] ? g.caps : "none",
			    kind_word(kind), name);
	for (int i = 0; i < n; i++) {
		int at = caps_find(&set, caps[i]);
		if (!grant && at >= 0)
			memmove(set.v[at], set.v[at + 1], (size_t)(--set.n - at) * sizeof set.v[0]);
		else if (grant && at < 0 && set.n < MAX_CAPS)
			snprintf(set.v[set.n++], LINLI_CAP_MAX, "%s", caps[i]);
		else if (grant && at < 0)
			return errf(err, errlen, LINLI_EINVAL, "%s '%s': too many grants",
				    kind_name(kind), name);
	}
	char out[GRANTS_LIST_MAX];
	if (!caps_join(&set, out, sizeof out))
		return errf(err, errlen, LINLI_EINVAL, "%s '%s': too many grants", kind_name(kind),
			    name);
	if (strcmp(out, g.caps) == 0)
		return 0; /* nothing changes: nothing written or audited */
	if ((rc = rec_put(k, who, kind, name, out, err, errlen)) != 0)
		return rc;
	char action[32], object[96], detail[GRANTS_LIST_MAX + 32];
	snprintf(action, sizeof action, "%s.%s", kind_word(kind), grant ? "grant" : "revoke");
	snprintf(object, sizeof object, "%s:%s", kind_name(kind), name);
	size_t d = 0;
	for (int i = 0; i < n && d < sizeof detail; i++)
		d += (size_t)snprintf(detail + d, sizeof detail - d, "%s%s", i ? " " : "", caps[i]);
	tiers_audit(k, who, action, k->cfg.node_path, object, "allowed", detail);
	log_info("grants", "%s %s %s %s: %s", who && who->name ? who->name : "-",
		 grant ? "granted" : "revoked", kind_name(kind), name, detail);
	return 0;
}

int grants_drop(struct kernel *k, const struct tier_principal *who, enum grant_kind kind,
		const char *name, char *err, size_t errlen)
{
	if (!k->tiers || !k->store)
		return 0;
	struct grec g;
	int rc = rec_get(k, kind, name, &g, err, errlen);
	if (rc || !g.caps[0])
		return rc;
	struct capset held;
	caps_split(g.caps, &held);
	const char *caps[MAX_CAPS];
	for (int i = 0; i < held.n; i++)
		caps[i] = held.v[i];
	return grants_change(k, who, kind, name, caps, held.n, false, err, errlen);
}

/* ---- commands ---- */

struct gcmd {
	enum grant_kind kind;
	const struct grants_subject_ops *ops;
};

/* One per kind, set once at start: what the commands need besides the call. */
static struct gcmd gcmds[2];

void grants_recheck(struct kernel *k)
{
	for (int i = 0; i < 2; i++) {
		const struct grants_subject_ops *ops = gcmds[i].ops;
		const char **names = ops ? malloc(LIST_MAX_RECHECK * sizeof *names) : NULL;
		int n = names ? ops->names(k, names, LIST_MAX_RECHECK) : 0;
		char **copy = n > 0 ? calloc((size_t)n, sizeof *copy) : NULL;
		for (int j = 0; copy && j < n; j++)
			copy[j] = strdup(names[j]);
		free(names);
		for (int j = 0; copy && j < n; j++) {
			char state[512];
			if (copy[j])
				ops->changed(k, copy[j], true, state, sizeof state);
			free(copy[j]);
		}
		free(copy);
	}
}

/* One subject's row: its grants, what it declares, what is missing, its state. */
static void pack_subject(struct kernel *k, const struct gcmd *gc, msgpack_packer *pk,
			 const char *name, const struct grec *g, const char *state)
{
	const char *decl[MAX_CAPS];
	int nd = gc->ops->declared(k, name, decl, MAX_CAPS);
	struct capset granted, declared = {.n = 0}, missing = {.n = 0}, above, effective;
	char alist[GRANTS_LIST_MAX] = "", from[256] = "", err[256], all[2 * GRANTS_LIST_MAX];
	above_get(k, gc->kind, name, alist, sizeof alist, from, sizeof from, err, sizeof err);
	caps_split(g->caps, &granted);
	caps_split(alist, &above);
	snprintf(all, sizeof all, "%s %s", g->caps, alist);
	caps_split(all, &effective);
	for (int i = 0; i < nd; i++) {
		snprintf(declared.v[declared.n++], LINLI_CAP_MAX, "%s", decl[i]);
		if (!caps_cover(&effective, decl[i]))
			snprintf(missing.v[missing.n++], LINLI_CAP_MAX, "%s", decl[i]);
	}
	char when[32] = "";
	if (g->updated)
		utc_text(g->updated, when, sizeof when);
	msgpack_pack_map(pk, 9);
	mp_kv_str(pk, "name", name);
	pack_caps(pk, "granted", &granted);
	pack_caps(pk, "granted_above", &above); /* by the tiers above, for their jurisdiction */
	mp_kv_str(pk, "granted_at", from);
	pack_caps(pk, "declared", &declared);
	pack_caps(pk, "missing", &missing);
	mp_kv_str(pk, "state", state ? state : nd < 0 ? "not installed" : "");
	mp_kv_str(pk, "updated", when);
	mp_kv_str(pk, "updated_by", g->by);
}

static int cmd_change(struct cmd_call *call, const struct gcmd *gc, bool grant)
{
	struct kernel *k = call->k;
	bool all = cmd_flag(call, "--all");
	const char *verb = grant ? "grant" : "revoke";
	if (call->argc < 3 || (all && call->argc != 3) || (!all && call->argc < 4))
		return cmd_fail(call, LINLI_EINVAL, "usage: %s %s NAME CAP... | %s %s NAME --all",
				kind_word(gc->kind), verb, kind_word(gc->kind), verb);
	/* access_gate checked plugin.manage / rules.manage at this node's path. */
	int rc;
	const char *name = call->argv[2];
	const char *caps[MAX_CAPS];
	int n = 0;
	struct grec g;
	struct capset held;
	if (all && grant) {
		n = gc->ops->declared(k, name, caps, MAX_CAPS);
		if (n < 0)
			return cmd_fail(call, LINLI_ENOENT,
					"no %s named '%.64s' is known here; name the capabilities "
					"to grant before installing it",
					kind_name(gc->kind), name);
		if (n == 0)
			return cmd_fail(call, LINLI_EINVAL, "%s '%s' declares no capability",
					kind_name(gc->kind), name);
	} else if (all) {
		if ((rc = rec_get(k, gc->kind, name, &g, call->err, sizeof call->err)) != 0)
			return rc;
		caps_split(g.caps, &held);
		for (n = 0; n < held.n; n++)
			caps[n] = held.v[n];
		if (n == 0)
			return cmd_fail(call, LINLI_ENOENT, "%s '%.64s' holds no grant",
					kind_name(gc->kind), name);
	} else {
		n = call->argc - 3;
		if (n > MAX_CAPS)
			return cmd_fail(call, LINLI_EINVAL, "more than %d capabilities", MAX_CAPS);
		for (int i = 0; i < n; i++)
			caps[i] = call->argv[3 + i];
	}
	rc = grants_change(k, call->who, gc->kind, name, caps, n, grant, call->err,
			   sizeof call->err);
	if (rc)
		return rc;
	char state[512];
	gc->ops->changed(k, name, !grant, state, sizeof state);
	/* The record as changed (reads see the batch's own writes). */
	if ((rc = rec_get(k, gc->kind, name, &g, call->err, sizeof call->err)) != 0)
		return rc;
	pack_subject(k, gc, &call->pk, name, &g, state);
	return store_cmds_wait_commit(call);
}

static int cmd_grant(struct cmd_call *call, void *ud)
{
	return cmd_change(call, ud, true);
}
static int cmd_revoke(struct cmd_call *call, void *ud)
{
	return cmd_change(call, ud, false);
}

#define LIST_MAX 4096 /* subjects in one `grants` listing */

struct list_ctx {
	char **names;
	int n;
};

static int list_row(void *ud, const struct store_row *row)
{
	struct list_ctx *c = ud;
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	size_t off = 0;
	if (c->n < LIST_MAX &&
	    msgpack_unpack_next(&up, row->data, row->len, &off) == MSGPACK_UNPACK_SUCCESS &&
	    up.data.type == MSGPACK_OBJECT_MAP) {
		char name[72];
		mp_copy_str(mp_get(&up.data, "name"), name, sizeof name);
		if (name[0] && (c->names[c->n] = strdup(name)))
			c->n++;
	}
	msgpack_unpacked_destroy(&up);
	return 0;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One row per subject: each one granted something, and each known one that declares any. */
static int cmd_grants(struct cmd_call *call, void *ud)
{
	const struct gcmd *gc = ud;
	struct kernel *k = call->k;
	if (call->argc > 3)
		return cmd_fail(call, LINLI_EINVAL, "usage: %s grants [NAME]", kind_word(gc->kind));
	if (call->argc == 3) {
		struct grec g;
		int rc = rec_get(k, gc->kind, call->argv[2], &g, call->err, sizeof call->err);
		if (rc)
			return rc;
		char state[512];
		gc->ops->changed(k, call->argv[2], false, state, sizeof state);
		pack_subject(k, gc, &call->pk, call->argv[2], &g, state);
		return 0;
	}
	struct list_ctx c = {.names = calloc(LIST_MAX, sizeof(char *))};
	if (!c.names)
		return cmd_fail(call, LINLI_ENOMEM, "out of memory");
	struct store_where w = {"kind", kind_name(gc->kind)};
	struct store_query q = {.dataset = "grants", .where = &w, .n_where = 1};
	char cursor[STORE_CURSOR_MAX];
	int rc;
	do {
		rc = store_scan(k->store, &q, list_row, &c, cursor, call->err, sizeof call->err);
		q.cursor = cursor;
	} while (rc > 0 && cursor[0]);
	const char **known = malloc(LIST_MAX * sizeof *known);
	int nk = rc < 0 || !known ? 0 : gc->ops->names(k, known, LIST_MAX);
	for (int i = 0; i < nk && c.n < LIST_MAX; i++)
		if ((c.names[c.n] = strdup(known[i])))
			c.n++;
	free(known);
	qsort(c.names, (size_t)c.n, sizeof *c.names, cmp_name);
	int rows = 0;
	for (int i = 0; i < c.n; i++)
		rows += i == 0 || strcmp(c.names[i], c.names[i - 1]) != 0;
	if (rc >= 0)
		msgpack_pack_array(&call->pk, (size_t)rows);
	for (int i = 0; rc >= 0 && i < c.n; i++) {
		if (i > 0 && strcmp(c.names[i], c.names[i - 1]) == 0)
			continue;
		struct grec g;
		char err[256], state[512];
		if (rec_get(k, gc->kind, c.names[i], &g, err, sizeof err) != 0)
			memset(&g, 0, sizeof g);
		gc->ops->changed(k, c.names[i], false, state, sizeof state);
		pack_subject(k, gc, &call->pk, c.names[i], &g, state);
	}
	for (int i = 0; i < c.n; i++)
		free(c.names[i]);
	free(c.names);
	return rc < 0 ? rc : 0;
}

int grants_register(struct kernel *k, const char *word, enum grant_kind kind,
		    const struct grants_subject_ops *ops)
{
	struct gcmd *gc = &gcmds[kind == GRANT_RULE];
	gc->kind = kind;
	gc->ops = ops;
	static const struct {
		const char *sub, *usage, *summary;
		cmd_fn fn;
	} cmds[] = {
	    {"grant", "NAME CAP... | NAME --all",
	     "grant capabilities (--all: every one it declares); audited", cmd_grant},
	    {"revoke", "NAME CAP... | NAME --all",
	     "revoke capabilities; a running one that declared them stops", cmd_revoke},
	    {"grants", "[NAME]", "granted, declared and missing capabilities", cmd_grants},
	};
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
		int rc = cmd_register(k->cmds, word, cmds[i].sub, cmds[i].usage, cmds[i].summary,
				      cmds[i].fn, gc, gc);
		if (rc)
			return rc;
	}
	return 0;
}

int grants_bootstrap(struct kernel *k, const char *subject, const char *const *caps, int n,
		     char *err, size_t errlen)
{
	enum grant_kind kind;
	if (strncmp(subject, "plugin:", 7) == 0)
		kind = GRANT_PLUGIN;
	else if (strncmp(subject, "rule:", 5) == 0)
		kind = GRANT_RULE;
	else {
		snprintf(err, errlen, "'%.80s': name the subject as plugin:NAME or rule:NAME",
			 subject);
		return LINLI_EINVAL;
	}
	const char *name = strchr(subject, ':') + 1;
	struct tier_principal who = {PRINCIPAL_KERNEL, "linlid --grant", k->cfg.node_path,
				     ROLE_NONE, NULL, NULL, NULL};
	int rc = grants_change(k, &who, kind, name, caps, n, true, err, errlen);
	if (rc)
		return rc;
	return store_batch_end(k->store);
}
