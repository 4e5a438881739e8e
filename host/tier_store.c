/*
 * tier_store — see tier_store.h.
 *
 * Sessions: the console keeps a random 256-bit token; linlid keeps only
 * BLAKE2b(token) as the id of a `sessions` record (user, expiry, and the
 * account's epoch at login). A request's token is hashed and looked up in a
 * small cache, then in the store; the account behind it is re-read, so a
 * changed grant takes effect at the next request (the cache is dropped for
 * that user).
 *
 * Ending sessions for good: a password change, a disable, a role or node
 * change and a removal bump the account's epoch and turn every session
 * record of the account into a tombstone that says why it ended (an expired
 * one is deleted). A token is valid only while its record is live and its
 * epoch is the account's, so nothing brings an ended session back: not
 * `accounts enable`, not a new account of the same name (its records must
 * also be younger than the account). Cached principals of those sessions are
 * marked ended at once, the account's external subscriptions end with them
 * (bus_cmds_end_owner), and a call that outlives its request's check (a long
 * poll) asks tiers_recheck before it answers.
 *
 * Passwords: hashed and verified on a short-lived thread each (logins are
 * rare and Argon2id is deliberately slow); the result comes back to the kernel
 * thread as an event, where the account is updated and the call answered
 * after the commit. The password buffer is wiped as soon as it is used.
 */
#include "tier_store.h"

#include <msgpack.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "access.h"
#include "bus.h"
#include "catalog.h"
#include "cmd.h"
#include "kernel.h"
#include "linli/error.h"
#include "log.h"
#include "mp.h"
#include "store.h"
#include "util.h"

#define USER_MAX 32
#define SID_LEN 40 /* hex characters of the token hash kept as the session id */

struct sess {
	char id[SID_LEN + 1];
	char user[USER_MAX + 1];
	char scope[SCOPE_MAX + 1];
	char grants_buf[4096];
	const char *grants[TIER_MAX_GRANTS + 1];
	char duties_buf[1024];
	const char *duties[TIER_MAX_GRANTS + 1];
	int64_t expires_ms;
	int refs;
	bool dead; /* dropped from the cache; freed with its last reference */
	char ended[160]; /* why the session ended ("" while it has not) */
	struct tier_principal p;
	struct sess *next;
};

/* Plain reads folded into one audit entry per window (audit_fold). */
struct fold {
	enum principal_kind kind;
	char name[81], pscope[SCOPE_MAX + 1]; /* the principal */
	char action[49], scope[SCOPE_MAX + 1], object[161], result[8], detail[513];
	int64_t first_ms;
	uint64_t count;
};

struct tiers {
	struct kernel *k;
	struct tier_tree tree;
	struct sess *cache;
	struct fold *folds;
	size_t n_folds, cap_folds;
	uint64_t flush_count; /* > 0 while tiers_audit_flush writes a folded entry */
	int64_t flush_first;  /* ... and the time of the first read it counts */
};

static struct tiers *T(const struct kernel *k) { return k->tiers; }

const struct tier_tree *tiers_tree(const struct kernel *k) { return &T(k)->tree; }

/* ---- the session cache ---- */

static void sess_unref(void *arg)
{
	struct sess *s = arg;
	if (--s->refs == 0 && s->dead)
		free(s);
}

/*
 * Drop the matching entries. `ended` non-NULL: their sessions ended for good
 * (calls still holding one see it in tiers_recheck); NULL: the account only
 * changed (a grant), the next request reads it again.
 */
static void cache_drop(struct tiers *t, bool (*match)(struct sess *, const void *), const void *key,
		       const char *ended)
{
	for (struct sess **pp = &t->cache; *pp;) {
		struct sess *s = *pp;
		if (match(s, key)) {
			*pp = s->next;
			s->dead = true;
			if (ended)
				snprintf(s->ended, sizeof s->ended, "%s", ended);
			if (s->refs == 0)
				free(s);
		} else
			pp = &s->next;
	}
}

static bool by_user(struct sess *s, const void *u) { return strcmp(s->user, u) == 0; }
static bool by_id(struct sess *s, const void *id) { return strcmp(s->id, id) == 0; }

static void token_id(const char *token, char out[SID_LEN + 1])
{
	unsigned char h[32];
	crypto_generichash(h, sizeof h, (const unsigned char *)token, strlen(token), NULL, 0);
	char hex[65];
	sodium_bin2hex(hex, sizeof hex, h, sizeof h);
	memcpy(out, hex, SID_LEN);
	out[SID_LEN] = '\0';
}

/* ---- reading accounts ---- */

struct account {
	char user[USER_MAX + 1];
	char scope[SCOPE_MAX + 1];
	char kind[16], role[16], display[65], created_by[65];
	char hash[TIER_HASH_MAX];
	char grants[4096];
	char duties[1024]; /* workflow duties, space-separated ("grid.dispatcher ...") */
	bool disabled;
	int64_t failed, locked_until, created;
	int64_t epoch; /* bumped by whatever must end the account's sessions */
};

static int64_t get_i(const msgpack_object *o)
{
	if (!o)
		return 0;
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		return (int64_t)o->via.u64;
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
		return o->via.i64;
	return 0;
}

static void account_from(const msgpack_object *m, struct account *a)
{
	mp_copy_str(mp_get(m, "kind"), a->kind, sizeof a->kind);
	mp_copy_str(mp_get(m, "role"), a->role, sizeof a->role);
	mp_copy_str(mp_get(m, "display_name"), a->display, sizeof a->display);
	mp_copy_str(mp_get(m, "created_by"), a->created_by, sizeof a->created_by);
	mp_copy_str(mp_get(m, "hash"), a->hash, sizeof a->hash);
	mp_copy_str(mp_get(m, "grants"), a->grants, sizeof a->grants);
	mp_copy_str(mp_get(m, "duties"), a->duties, sizeof a->duties);
	const msgpack_object *d = mp_get(m, "disabled");
	a->disabled = d && d->type == MSGPACK_OBJECT_BOOLEAN && d->via.boolean;
	a->failed = get_i(mp_get(m, "failed"));
	a->locked_until = get_i(mp_get(m, "locked_until"));
	a->created = get_i(mp_get(m, "created"));
	a->epoch = get_i(mp_get(m, "epoch"));
}

/* Read account `user`; 0, LINLI_ENOENT, or a store error (message in err). */
static int account_get(struct kernel *k, const char *user, struct account *a, char *err,
		       size_t errlen)
{
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	memset(a, 0, sizeof *a);
	int rc = store_get(k->store, "accounts", NULL, user, &sb, a->scope, err, errlen);
	if (rc == 0) {
		msgpack_unpacked up;
		msgpack_unpacked_init(&up);
		size_t off = 0;
		if (msgpack_unpack_next(&up, sb.data, sb.size, &off) == MSGPACK_UNPACK_SUCCESS)
			account_from(&up.data, a);
		else
			rc = LINLI_ECORRUPT;
		msgpack_unpacked_destroy(&up);
		snprintf(a->user, sizeof a->user, "%s", user);
	}
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

/* Pack an account record (without id/scope) for store_put. */
static void account_pack(const struct account *a, msgpack_sbuffer *sb)
{
	msgpack_packer pk;
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	int n = 6 + (a->display[0] != 0) + (a->grants[0] != 0) + (a->locked_until != 0) +
		(a->created_by[0] != 0) + (a->epoch != 0) + (a->duties[0] != 0);
	msgpack_pack_map(&pk, (size_t)n);
	mp_kv_str(&pk, "kind", a->kind);
	mp_kv_str(&pk, "role", a->role);
	mp_kv_str(&pk, "hash", a->hash);
	mp_kv_bool(&pk, "disabled", a->disabled);
	mp_kv_int(&pk, "failed", a->failed);
	mp_kv_int(&pk, "created", a->created);
	if (a->display[0])
		mp_kv_str(&pk, "display_name", a->display);
	if (a->grants[0])
		mp_kv_str(&pk, "grants", a->grants);
	if (a->duties[0])
		mp_kv_str(&pk, "duties", a->duties);
	if (a->locked_until)
		mp_kv_int(&pk, "locked_until", a->locked_until);
	if (a->created_by[0])
		mp_kv_str(&pk, "created_by", a->created_by);
	if (a->epoch)
		mp_kv_int(&pk, "epoch", a->epoch);
}

static int account_put(struct kernel *k, const struct account *a, char *err, size_t errlen)
{
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	account_pack(a, &sb);
	char id[STORE_ID_MAX + 1];
	int rc = store_put(k->store, "accounts", a->scope, a->user, sb.data, sb.size, id, NULL, err,
			   errlen);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

static bool user_ok(const char *u)
{
	size_t n = strlen(u);
	if (n < 2 || n > USER_MAX || !((u[0] >= 'a' && u[0] <= 'z')))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((u[i] >= 'a' && u[i] <= 'z') || (u[i] >= '0' && u[i] <= '9') || u[i] == '_' ||
		      u[i] == '-' || u[i] == '.'))
			return false;
	return true;
}

/* ---- sessions ---- */

static struct sess *sess_build(const struct account *a, const char *id, int64_t expires)
{
	struct sess *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	snprintf(s->id, sizeof s->id, "%s", id);
	snprintf(s->user, sizeof s->user, "%s", a->user);
	snprintf(s->scope, sizeof s->scope, "%s", a->scope);
	snprintf(s->grants_buf, sizeof s->grants_buf, "%s", a->grants);
	int n = 0;
	for (char *tok = strtok(s->grants_buf, " "); tok && n < TIER_MAX_GRANTS;
	     tok = strtok(NULL, " "))
		s->grants[n++] = tok;
	s->grants[n] = NULL;
	snprintf(s->duties_buf, sizeof s->duties_buf, "%s", a->duties);
	n = 0;
	for (char *tok = strtok(s->duties_buf, " "); tok && n < TIER_MAX_GRANTS;
	     tok = strtok(NULL, " "))
		s->duties[n++] = tok;
	s->duties[n] = NULL;
	s->expires_ms = expires;
	s->p = (struct tier_principal){strcmp(a->kind, "machine") == 0 ? PRINCIPAL_MACHINE
								      : PRINCIPAL_PERSON,
				       s->user, s->scope, tier_role_parse(a->role), s->grants, NULL,
				       s->duties};
	return s;
}

static void attach(struct cmd_call *call, struct sess *s)
{
	s->refs++;
	call->who = &s->p;
	call->who_ref = s;
	call->who_release = sess_unref;
}

/* A `sessions` record as read back. */
struct sess_rec {
	char id[SID_LEN + 1];
	char scope[SCOPE_MAX + 1];
	char user[USER_MAX + 1];
	char ended[160];
	int64_t expires, created, epoch;
};

static void sess_rec_from(const void *data, size_t len, struct sess_rec *r)
{
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	size_t off = 0;
	if (msgpack_unpack_next(&up, data, len, &off) == MSGPACK_UNPACK_SUCCESS) {
		mp_copy_str(mp_get(&up.data, "user"), r->user, sizeof r->user);
		mp_copy_str(mp_get(&up.data, "ended"), r->ended, sizeof r->ended);
		r->expires = get_i(mp_get(&up.data, "expires"));
		r->created = get_i(mp_get(&up.data, "created"));
		r->epoch = get_i(mp_get(&up.data, "epoch"));
	}
	msgpack_unpacked_destroy(&up);
}

static int sess_put(struct kernel *k, const struct sess_rec *r, char *err, size_t errlen)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 4 + (r->ended[0] != 0));
	mp_kv_str(&pk, "user", r->user);
	mp_kv_int(&pk, "expires", r->expires);
	mp_kv_int(&pk, "created", r->created);
	mp_kv_int(&pk, "epoch", r->epoch);
	if (r->ended[0])
		mp_kv_str(&pk, "ended", r->ended);
	char sid[STORE_ID_MAX + 1];
	int rc = store_put(k->store, "sessions", r->scope, r->id, sb.data, sb.size, sid, NULL, err,
			   errlen);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

/*
 * Is session `id` live? Reads its record and its account; 0 with the account
 * in *a and the expiry in *expires, or LINLI_EAUTH with call->err saying why.
 */
static int sess_validate(struct kernel *k, struct cmd_call *call, const char *id, struct account *a,
			 int64_t *expires)
{
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	struct sess_rec r = {0};
	char err[256];
	int rc = store_get(k->store, "sessions", NULL, id, &sb, r.scope, err, sizeof err);
	if (rc == 0)
		sess_rec_from(sb.data, sb.size, &r);
	msgpack_sbuffer_destroy(&sb);
	if (rc != 0 || !r.user[0])
		return cmd_fail(call, LINLI_EAUTH, "unknown session: log in again");
	if (r.ended[0])
		return cmd_fail(call, LINLI_EAUTH, "session ended: %s; log in again", r.ended);
	if (r.expires <= wall_ms())
		return cmd_fail(call, LINLI_EAUTH, "session expired: run 'linli login' again");
	if (account_get(k, r.user, a, err, sizeof err) != 0)
		return cmd_fail(call, LINLI_EAUTH,
				"session ended: account '%s' is gone; log in again", r.user);
	if (a->disabled)
		return cmd_fail(call, LINLI_EAUTH, "session ended: account '%s' is disabled",
				r.user);
	/* Older than the account (a removed one of the same name), or older than its epoch. */
	if (r.epoch != a->epoch || r.created < a->created)
		return cmd_fail(
		    call, LINLI_EAUTH,
		    "session ended: account '%s' changed (password, role or node) since "
		    "this login; log in again",
		    r.user);
	*expires = r.expires;
	return 0;
}

int tiers_attach(struct kernel *k, struct cmd_call *call)
{
	struct tiers *t = T(k);
	if (!call->session || !*call->session)
		return cmd_fail(call, LINLI_EAUTH, "not logged in: run 'linli login USER' first");
	if (strlen(call->session) != 64 || strspn(call->session, "0123456789abcdef") != 64)
		return cmd_fail(call, LINLI_EAUTH, "invalid session token: log in again");
	char id[SID_LEN + 1];
	token_id(call->session, id);
	int64_t now = wall_ms();
	for (struct sess *s = t->cache; s; s = s->next)
		if (strcmp(s->id, id) == 0) {
			if (s->expires_ms <= now) {
				cache_drop(t, by_id, id, "it expired");
				return cmd_fail(call, LINLI_EAUTH,
						"session expired: run 'linli login' again");
			}
			attach(call, s);
			return 0;
		}
	struct account a;
	int64_t expires = 0;
	int rc = sess_validate(k, call, id, &a, &expires);
	if (rc)
		return rc;
	struct sess *s = sess_build(&a, id, expires);
	if (!s)
		return cmd_fail(call, LINLI_ENOMEM, "out of memory");
	s->next = t->cache;
	t->cache = s;
	attach(call, s);
	return 0;
}

int tiers_recheck(struct kernel *k, struct cmd_call *call)
{
	if (!k->tiers || call->who_release != sess_unref)
		return 0; /* the kernel's own, or a principal no session stands behind */
	struct sess *s = call->who_ref;
	if (s->ended[0])
		return cmd_fail(call, LINLI_EAUTH, "session ended: %s; log in again", s->ended);
	if (s->expires_ms <= wall_ms())
		return cmd_fail(call, LINLI_EAUTH, "session expired: run 'linli login' again");
	if (!s->dead)
		return 0; /* still the cache's: nothing ended it */
	struct account a;
	int64_t expires;
	int rc = sess_validate(k, call, s->id, &a, &expires);
	if (rc == 0 && strcmp(a.scope, s->scope) != 0)
		rc = cmd_fail(call, LINLI_EAUTH, "session ended: account '%s' moved; log in again",
			      s->user);
	return rc;
}

struct sweep {
	struct sess_rec *v;
	size_t n, cap;
	bool oom;
};

static int sweep_row(void *ud, const struct store_row *row)
{
	struct sweep *w = ud;
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 16;
		struct sess_rec *v = realloc(w->v, cap * sizeof *v);
		if (!v) {
			w->oom = true;
			return 1;
		}
		w->v = v;
		w->cap = cap;
	}
	struct sess_rec *r = &w->v[w->n++];
	memset(r, 0, sizeof *r);
	snprintf(r->id, sizeof r->id, "%s", row->id);
	snprintf(r->scope, sizeof r->scope, "%s", row->scope);
	sess_rec_from(row->data, row->len, r);
	return 0;
}

/*
 * sessions_sweep — the `sessions` records of `user`: expired ones are deleted
 * (a login sweeps its own, so they do not pile up); with `why`, every live one
 * becomes a tombstone saying why it ended, and the cache forgets them. Returns
 * how many live sessions ended (>= 0), or a store error with err set.
 */
static int sessions_sweep(struct kernel *k, const char *user, const char *why, char *err,
			  size_t errlen)
{
	struct sweep w = {0};
	struct store_where wh = {"user", user};
	struct store_query q = {.dataset = "sessions", .where = &wh, .n_where = 1};
	char cursor[STORE_CURSOR_MAX];
	int rc;
	do {
		rc = store_scan(k->store, &q, sweep_row, &w, cursor, err, errlen);
		q.cursor = cursor;
	} while (rc > 0 && cursor[0] && !w.oom);
	if (rc >= 0 && w.oom) {
		snprintf(err, errlen, "out of memory listing the sessions of '%s'", user);
		rc = LINLI_ENOMEM;
	}
	int64_t now = wall_ms();
	int ended = 0;
	for (size_t i = 0; rc >= 0 && i < w.n; i++) {
		struct sess_rec *r = &w.v[i];
		if (strcmp(r->user, user) != 0)
			continue; /* an index entry of a long value: re-checked here */
		if (r->expires <= now)
			rc = store_delete(k->store, "sessions", NULL, r->id, err, errlen);
		else if (why && !r->ended[0]) {
			snprintf(r->ended, sizeof r->ended, "%s", why);
			rc = sess_put(k, r, err, errlen);
			ended++;
		}
	}
	free(w.v);
	if (why) {
		cache_drop(T(k), by_user, user, why);
		bus_cmds_end_owner(k->bus_remote, user, why); /* what its sessions subscribed */
	}
	return rc < 0 ? rc : ended;
}

/* ---- audit ---- */

/*
 * The write rate of the audit log is bounded by folding plain reads: those of
 * API keys over HTTP (their sensitive fields are always masked) and the
 * internal reads of plugins and rules (nothing leaves the process) become one
 * entry per (principal, action, scope, object, result, detail) and window
 * (retention.audit.aggregate_s) with a count and the time of the first (the
 * detail names the record or the path, which an auditor needs apart).
 * Denials, writes, logins, and every read by a person (sensitive data in
 * clear may leave the process) stay individual.
 */
static bool audit_foldable(const struct kernel *k, const struct tier_principal *who,
			   const char *action, const char *result)
{
	if (!who || k->cfg.retention.audit_aggregate_s <= 0 || !T(k) || T(k)->flush_count ||
	    strcmp(result, "denied") == 0)
		return false;
	if (who->kind == PRINCIPAL_MACHINE)
		return strcmp(action, "http.GET") == 0 || strcmp(action, "http.HEAD") == 0;
	if (who->kind == PRINCIPAL_PLUGIN || who->kind == PRINCIPAL_RULE)
		return strcmp(action, "data.read") == 0;
	return false;
}

static bool fold_is(const struct fold *f, const struct tier_principal *who, const char *action,
		    const char *scope, const char *object, const char *result, const char *detail)
{
	return f->kind == who->kind &&
	       strncmp(f->name, who->name ? who->name : "-", sizeof f->name - 1) == 0 &&
	       strncmp(f->action, action, sizeof f->action - 1) == 0 &&
	       strncmp(f->scope, scope, sizeof f->scope - 1) == 0 &&
	       strncmp(f->object, object, sizeof f->object - 1) == 0 &&
	       strncmp(f->detail, detail, sizeof f->detail - 1) == 0 &&
	       strcmp(f->result, result) == 0;
}

/* Count a foldable entry into its window's entry; false: write it as it is. */
static bool audit_fold(struct kernel *k, const struct tier_principal *who, const char *action,
		       const char *scope, const char *object, const char *result,
		       const char *detail)
{
	if (!audit_foldable(k, who, action, result))
		return false;
	struct tiers *t = T(k);
	scope = scope && *scope ? scope : k->cfg.node_path;
	object = object ? object : "";
	detail = detail ? detail : "";
	struct fold *f = NULL;
	for (size_t i = 0; i < t->n_folds && !f; i++)
		if (fold_is(&t->folds[i], who, action, scope, object, result, detail))
			f = &t->folds[i];
	if (!f) {
		if (t->n_folds == 1024) /* many distinct reads in one window: no folding */
			return false;
		if (t->n_folds == t->cap_folds) {
			size_t cap = t->cap_folds ? t->cap_folds * 2 : 16;
			struct fold *v = realloc(t->folds, cap * sizeof *v);
			if (!v)
				return false;
			t->folds = v;
			t->cap_folds = cap;
		}
		f = &t->folds[t->n_folds++];
		memset(f, 0, sizeof *f);
		f->kind = who->kind;
		snprintf(f->name, sizeof f->name, "%s", who->name ? who->name : "-");
		snprintf(f->pscope, sizeof f->pscope, "%s", who->scope ? who->scope : "");
		snprintf(f->action, sizeof f->action, "%s", action);
		snprintf(f->scope, sizeof f->scope, "%s", scope);
		snprintf(f->object, sizeof f->object, "%s", object);
		snprintf(f->result, sizeof f->result, "%s", result);
		snprintf(f->detail, sizeof f->detail, "%s", detail);
		f->first_ms = wall_ms();
	}
	f->count++;
	return true;
}

void tiers_audit_flush(struct kernel *k, bool all)
{
	struct tiers *t = T(k);
	if (!t || !k->store || !kernel_on_thread(k))
		return;
	int64_t now = wall_ms(), window = (int64_t)k->cfg.retention.audit_aggregate_s * 1000;
	for (size_t i = 0; i < t->n_folds;) {
		struct fold f = t->folds[i];
		if (!all && now - f.first_ms < window) {
			i++;
			continue;
		}
		t->folds[i] = t->folds[--t->n_folds];
		struct tier_principal p = {f.kind, f.name, f.pscope, ROLE_VIEWER, NULL, NULL, NULL};
		t->flush_count = f.count;
		t->flush_first = f.first_ms;
		tiers_audit(k, &p, f.action, f.scope, f.object, f.result, f.detail);
		t->flush_count = 0;
	}
}

/*
 * An entry is never lost to what its fields contain: each is written as
 * bounded, valid UTF-8 (utf8_escape: "\xff" for a stray byte), and a scope
 * that is not a valid path is filed at the node with the raw one in detail.
 */
static void audit_put(struct kernel *k, const struct tier_principal *who, const char *via,
		      const char *action, const char *scope, const char *object,
		      const char *result, const char *detail);

void tiers_audit(struct kernel *k, const struct tier_principal *who, const char *action,
		 const char *scope, const char *object, const char *result, const char *detail)
{
	if (!k->store || !kernel_on_thread(k))
		return;
	if (who && who->on_behalf) {
		/* A plugin or rule acting for a caller: filed under the caller, naming it. */
		char via[96];
		snprintf(via, sizeof via, "%s:%s", who->kind == PRINCIPAL_RULE ? "rule" : "plugin",
			 who->name);
		audit_put(k, who->on_behalf, via, action, scope, object, result, detail);
		return;
	}
	if (audit_fold(k, who, action, scope, object, result, detail))
		return;
	audit_put(k, who, NULL, action, scope, object, result, detail);
}

static void audit_put(struct kernel *k, const struct tier_principal *who, const char *via,
		      const char *action, const char *scope, const char *object,
		      const char *result, const char *detail)
{
	uint64_t count = T(k) ? T(k)->flush_count : 0;
	char whob[96], raw[96], act[96], res[32], o[161], d[513], why[128];
	snprintf(raw, sizeof raw, "%s%s",
		 !who				 ? ""
		 : who->kind == PRINCIPAL_PLUGIN ? "plugin:"
		 : who->kind == PRINCIPAL_RULE	 ? "rule:"
						 : "",
		 who ? who->name : "-");
	utf8_escape(whob, sizeof whob, raw, strlen(raw));
	utf8_escape(act, sizeof act, action, strlen(action));
	utf8_escape(res, sizeof res, result, strlen(result));
	bool bad_scope = scope && *scope && !scope_check(scope, why, sizeof why);
	if (bad_scope) {
		snprintf(d, sizeof d, "scope '%.128s': %s", scope, detail ? detail : "");
		detail = d;
		scope = NULL;
	}
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 4 + (object && *object) + (detail && *detail) + 2 * (count > 1) +
				  (via != NULL));
	mp_kv_int(&pk, "time", wall_ms());
	if (count > 1) {
		mp_kv_uint(&pk, "count", count);
		mp_kv_int(&pk, "first", T(k)->flush_first);
	}
	mp_kv_str(&pk, "who", whob);
	if (via) {
		char v[96];
		utf8_escape(v, sizeof v, via, strlen(via));
		mp_kv_str(&pk, "via", v);
	}
	mp_kv_str(&pk, "action", act);
	mp_kv_str(&pk, "result", res);
	if (object && *object) {
		utf8_escape(o, sizeof o, object, strlen(object));
		mp_kv_str(&pk, "object", o);
	}
	if (detail && *detail) {
		char e[513];
		utf8_escape(e, sizeof e, detail, strlen(detail));
		mp_kv_str(&pk, "detail", e);
	}
	char id[STORE_ID_MAX + 1], err[256];
	/* A read of sensitive fields in clear goes up the tiers (federation's change log). */
	store_set_up(k->store, !strcmp(action, "data.read") && !strcmp(result, "allowed"));
	int rc = store_put(k->store, "audit", scope && *scope ? scope : k->cfg.node_path, NULL,
			   sb.data, sb.size, id, NULL, err, sizeof err);
	store_set_up(k->store, false);
	if (rc)
		log_error("audit", "cannot record %s %s on %s: %s", whob, act,
			  scope && *scope ? scope : k->cfg.node_path, err);
	msgpack_sbuffer_destroy(&sb);
}

/* ---- password work off the kernel thread ---- */

enum job_kind { JOB_VERIFY, JOB_HASH };

struct job {
	struct kernel *k;
	enum job_kind kind;
	struct cmd_call *call; /* NULL once the call was cancelled */
	char *password;	       /* wiped and freed by the worker */
	char hash[TIER_HASH_MAX];
	int strength;
	int memory_mb;
	bool ok;
	void (*done)(struct kernel *k, struct job *j);
	struct account acct; /* what the command is about */
	char extra[256];     /* command-specific: the secret of a new machine, ... */
};

static void job_cancel(struct cmd_call *call, void *arg)
{
	(void)call;
	((struct job *)arg)->call = NULL;
}

static void job_back(struct kernel *k, void *arg)
{
	struct job *j = arg;
	if (j->call) {
		j->call->on_cancel = NULL;
		j->done(k, j);
	}
	free(j);
}

static void *job_run(void *arg)
{
	struct job *j = arg;
	if (j->kind == JOB_VERIFY)
		j->ok = j->hash[0] && tier_password_verify(j->hash, j->password);
	else
		j->ok = tier_password_hash_with(j->password, (enum tier_pw_strength)j->strength,
						j->memory_mb, j->hash) == 0;
	sodium_memzero(j->password, strlen(j->password));
	free(j->password);
	j->password = NULL;
	if (kernel_post(j->k, job_back, j) != 0)
		free(j); /* shutting down: the call was or will be cancelled */
	return NULL;
}

/* Start `j` on its own thread; the call waits (CMD_PENDING). */
static int job_start(struct cmd_call *call, struct job *j)
{
	pthread_t th;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	j->k = call->k;
	j->call = call;
	call->on_cancel = job_cancel;
	call->cancel_arg = j;
	int rc = pthread_create(&th, &at, job_run, j);
	pthread_attr_destroy(&at);
	if (rc != 0) {
		call->on_cancel = NULL;
		sodium_memzero(j->password, strlen(j->password));
		free(j->password);
		free(j);
		return cmd_fail(call, LINLI_ENOMEM, "cannot start a worker thread");
	}
	return CMD_PENDING;
}

/* Take the request's input as a password (copied; the input is wiped). */
static char *take_password(struct cmd_call *call)
{
	if (!call->input || call->input_len == 0)
		return NULL;
	size_t n = strcspn(call->input, "\r\n");
	char *p = strndup(call->input, n);
	sodium_memzero(call->input, call->input_len);
	return p;
}

static void commit_done(void *arg, int rc, const char *err)
{
	struct cmd_call *call = arg;
	if (rc)
		snprintf(call->err, sizeof call->err, "not stored: %s", err ? err : "");
	cmd_finish(call, rc);
}

/* Finish `call` once the batch holding its writes commits. */
static void finish_after_commit(struct kernel *k, struct cmd_call *call)
{
	if (store_on_commit(k->store, commit_done, call) != 0)
		cmd_finish(call, 0);
}

/* ---- login / logout / whoami ---- */

static void login_done(struct kernel *k, struct job *j)
{
	struct cmd_call *call = j->call;
	struct account *a = &j->acct;
	char err[256];
	int64_t now = wall_ms();
	struct tier_principal who = {PRINCIPAL_PERSON, a->user, a->scope[0] ? a->scope : "-",
				     ROLE_NONE, NULL, NULL, NULL};
	/*
	 * The password was checked against the account as it was when the login
	 * began. Read it again: what changed meanwhile (a new password, a
	 * disable, a new epoch) wins, and is never written back over.
	 */
	struct account now_a;
	bool same = a->hash[0] && account_get(k, a->user, &now_a, err, sizeof err) == 0 &&
		    strcmp(now_a.hash, a->hash) == 0 && now_a.epoch == a->epoch &&
		    !now_a.disabled && strcmp(now_a.scope, a->scope) == 0;
	if (!j->ok || !same) {
		if (!j->ok && a->hash[0] && account_get(k, a->user, &now_a, err, sizeof err) == 0) {
			now_a.failed++;
			if (now_a.failed >= k->cfg.lockout_attempts) {
				now_a.locked_until = now + (int64_t)k->cfg.lockout_s * 1000;
				log_warn("tiers",
					 "account %s locked for %d s after %lld failed logins",
					 a->user, k->cfg.lockout_s, (long long)now_a.failed);
			}
			if (account_put(k, &now_a, err, sizeof err))
				log_error("tiers", "cannot count a failed login of %s: %s", a->user,
					  err);
		}
		const char *why = j->ok ? "the account changed during the login" : NULL;
		tiers_audit(k, &who, "login", a->scope[0] ? a->scope : k->cfg.node_path, a->user,
			    "denied", why ? why : "wrong user or password");
		/* The failed count and the audit entry commit with the batch. */
		cmd_finish(
		    call,
		    why ? cmd_fail(call, LINLI_EAUTH, "login failed: %s; try again", why)
			: cmd_fail(call, LINLI_EAUTH, "login failed: wrong user or password"));
		return;
	}
	*a = now_a;
	a->failed = 0;
	a->locked_until = 0;
	if (account_put(k, a, err, sizeof err)) {
		cmd_finish(call, cmd_fail(call, LINLI_EIO, "login: %s", err));
		return;
	}
	/* Expired sessions of this account go now, so they never pile up. */
	if (sessions_sweep(k, a->user, NULL, err, sizeof err) < 0)
		log_warn("tiers", "cannot sweep the expired sessions of %s: %s", a->user, err);
	char token[65];
	tier_token_new(token);
	struct sess_rec r = {0};
	token_id(token, r.id);
	snprintf(r.scope, sizeof r.scope, "%s", a->scope);
	snprintf(r.user, sizeof r.user, "%s", a->user);
	r.expires = now + (int64_t)k->cfg.session_ttl_s * 1000;
	r.created = now;
	r.epoch = a->epoch;
	int rc = sess_put(k, &r, err, sizeof err);
	if (rc) {
		sodium_memzero(token, sizeof token);
		cmd_finish(call, cmd_fail(call, rc, "login: cannot store the session: %s", err));
		return;
	}
	who.role = tier_role_parse(a->role);
	tiers_audit(k, &who, "login", a->scope, a->user, "allowed", NULL);
	log_info("tiers", "%s logged in (%s at %s)", a->user, a->role, a->scope);
	char when[32];
	utc_text(r.expires, when, sizeof when);
	msgpack_packer *out = &call->pk;
	msgpack_pack_map(out, 6);
	mp_kv_str(out, "node_id", k->node_id); /* what the console keys the session by */
	mp_kv_str(out, "user", a->user);
	mp_kv_str(out, "role", a->role);
	mp_kv_str(out, "scope", a->scope);
	mp_kv_str(out, "expires", when);
	mp_kv_str(out, "token", token);
	sodium_memzero(token, sizeof token);
	finish_after_commit(k, call);
}

static int cmd_login(struct cmd_call *call, void *ud)
{
	(void)ud;
	struct kernel *k = call->k;
	if (call->argc != 2)
		return cmd_fail(call, LINLI_EINVAL, "usage: login USER (password as input)");
	char *pw = take_password(call);
	if (!pw)
		return cmd_fail(call, LINLI_EINVAL, "login: no password given");
	struct job *j = calloc(1, sizeof *j);
	if (!j) {
		sodium_memzero(pw, strlen(pw));
		free(pw);
		return cmd_fail(call, LINLI_ENOMEM, "out of memory");
	}
	j->kind = JOB_VERIFY;
	j->password = pw;
	j->done = login_done;
	char err[256];
	const char *user = call->argv[1];
	int arc = user_ok(user) ? account_get(k, user, &j->acct, err, sizeof err) : LINLI_ENOENT;
	if (arc == LINLI_ECORRUPT) { /* a damaged store is said, never "wrong password" */
		sodium_memzero(pw, strlen(pw));
		free(pw);
		free(j);
		log_error("tiers", "login of %s: %s", user, err);
		return cmd_fail(call, arc, "login failed: %s", err);
	}
	if (arc == 0) {
		if (j->acct.disabled || j->acct.locked_until > wall_ms()) {
			bool locked = !j->acct.disabled;
			char when[32];
			utc_text(j->acct.locked_until, when, sizeof when);
			struct tier_principal who = {PRINCIPAL_PERSON, user, j->acct.scope, ROLE_NONE,
						     NULL, NULL, NULL};
			tiers_audit(k, &who, "login", j->acct.scope, user, "denied",
				    locked ? "locked" : "disabled");
			sodium_memzero(pw, strlen(pw));
			free(pw);
			free(j);
			if (locked)
				return cmd_fail(call, LINLI_EAUTH,
						"login failed: account '%s' is locked until %s after "
						"repeated failures",
						user, when);
			return cmd_fail(call, LINLI_EAUTH, "login failed: account '%s' is disabled",
					user);
		}
		snprintf(j->hash, sizeof j->hash, "%s", j->acct.hash);
	} else
		snprintf(j->acct.user, sizeof j->acct.user, "%.*s", USER_MAX, user);
	return job_start(call, j);
}

static int cmd_logout(struct cmd_call *call, void *ud)
{
	(void)ud;
	struct kernel *k = call->k;
	struct sess *s = call->who_ref;
	if (!s)
		return cmd_fail(call, LINLI_EAUTH, "not logged in");
	char err[256], id[SID_LEN + 1];
	snprintf(id, sizeof id, "%s", s->id);
	int rc = store_delete(k->store, "sessions", NULL, id, err, sizeof err);
	if (rc && rc != LINLI_ENOENT)
		return cmd_fail(call, rc, "logout: %s", err);
	cache_drop(T(k), by_id, id, "it was logged out");
	msgpack_pack_map(&call->pk, 1);
	mp_kv_str(&call->pk, "logged_out", s->user);
	if (rc == 0) {
		finish_after_commit(k, call);
		return CMD_PENDING;
	}
	return 0;
}

static int cmd_whoami(struct cmd_call *call, void *ud)
{
	(void)ud;
	const struct tier_principal *w = call->who;
	const struct sess *s = call->who_ref;
	msgpack_packer *pk = &call->pk;
	int n = 0;
	while (w->grants && w->grants[n])
		n++;
	int nd = 0;
	while (w->duties && w->duties[nd])
		nd++;
	msgpack_pack_map(pk, 7);
	mp_kv_str(pk, "user", w->name);
	mp_kv_str(pk, "kind", w->kind == PRINCIPAL_MACHINE ? "machine" : "person");
	mp_kv_str(pk, "role", tier_role_name(w->role));
	mp_kv_str(pk, "scope", w->scope);
	mp_kv_str(pk, "level", tier_level_name((enum tier_level)scope_depth(w->scope)));
	mp_str(pk, "grants");
	msgpack_pack_array(pk, (size_t)n);
	for (int i = 0; i < n; i++)
		mp_str(pk, w->grants[i]);
	mp_str(pk, "duties");
	msgpack_pack_array(pk, (size_t)nd);
	for (int i = 0; i < nd; i++)
		mp_str(pk, w->duties[i]);
	(void)s;
	return 0;
}

/* ---- accounts ---- */

/* Options: --role R --node PATH --name TEXT --machine. */
struct aopts {
	const char *role, *node, *name;
	bool machine;
};

static int parse_aopts(struct cmd_call *call, int first, struct aopts *o, const char **pos,
		       int maxpos, int *npos)
{
	memset(o, 0, sizeof *o);
	*npos = 0;
	for (int i = first; i < call->argc; i++) {
		const char *a = call->argv[i];
		if (strcmp(a, "--machine") == 0)
			o->machine = true;
		else if ((strcmp(a, "--role") == 0 || strcmp(a, "--node") == 0 ||
			  strcmp(a, "--name") == 0) &&
			 i + 1 < call->argc) {
			const char *v = call->argv[++i];
			if (a[2] == 'r')
				o->role = v;
			else if (a[3] == 'o')
				o->node = v;
			else
				o->name = v;
		} else if (a[0] == '-' && a[1] == '-')
			return cmd_fail(call, LINLI_EINVAL, "unknown option '%s'", a);
		else if (*npos < maxpos)
			pos[(*npos)++] = a;
		else
			return cmd_fail(call, LINLI_EINVAL, "unexpected argument '%s'", a);
	}
	return 0;
}

/* May the caller manage account `a` (in its subtree)? */
static int may_manage(struct cmd_call *call, const char *scope)
{
	return access_call(call, ACT_ACCOUNTS_MANAGE, scope, "accounts");
}

/*
 * Where an account may be put and as what: `node` in the tree, served here
 * and in the caller's subtree; `role` known and existing at node's level.
 */
static int placement_ok(struct cmd_call *call, const char *node, const char *role,
			enum tier_role *out)
{
	struct kernel *k = call->k;
	char why[128];
	if (!scope_check(node, why, sizeof why))
		return cmd_fail(call, LINLI_EINVAL, "bad --node '%.64s': %s", node, why);
	if (T(k)->tree.n && !tier_tree_find(&T(k)->tree, node))
		return cmd_fail(call, LINLI_ENOENT, "node '%s' is not in the jurisdiction tree",
				node);
	if (!scope_within(k->cfg.node_path, node))
		return cmd_fail(call, LINLI_EPERM, "node '%s' is not served by this linlid (%s)",
				node, k->cfg.node_path);
	int rc = may_manage(call, node);
	if (rc)
		return rc;
	*out = tier_role_parse(role);
	enum tier_level lvl = (enum tier_level)scope_depth(node);
	if (*out == ROLE_NONE)
		return cmd_fail(
		    call, LINLI_EINVAL,
		    "unknown role '%.20s': admin, operator, grid_worker, auditor, viewer", role);
	if (!tier_role_valid_at(*out, lvl))
		return cmd_fail(call, LINLI_EINVAL, "role %s does not exist at the %s level",
				tier_role_name(*out), tier_level_name(lvl));
	return 0;
}

struct admins {
	const char *node, *skip; /* count the admins at node, but skip */
	int n;
};

static int admin_row(void *ud, const struct store_row *row)
{
	struct admins *c = ud;
	if (strcmp(row->scope, c->node) != 0 || strcmp(row->id, c->skip) == 0)
		return 0;
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	size_t off = 0;
	struct account a;
	memset(&a, 0, sizeof a);
	if (msgpack_unpack_next(&up, row->data, row->len, &off) == MSGPACK_UNPACK_SUCCESS)
		account_from(&up.data, &a);
	msgpack_unpacked_destroy(&up);
	if (strcmp(a.role, "admin") == 0 && !a.disabled)
		c->n++;
	return 0;
}

/*
 * last_admin — refuse to `what` account `a` when it is the last enabled
 * administrator of this linlid's own node: nobody could manage the node any
 * more. 0 when another one is left (or `a` is not one), else LINLI_EPERM.
 */
static int last_admin(struct cmd_call *call, const struct account *a, const char *what)
{
	struct kernel *k = call->k;
	if (strcmp(a->role, "admin") != 0 || a->disabled || strcmp(a->scope, k->cfg.node_path) != 0)
		return 0;
	struct admins c = {k->cfg.node_path, a->user, 0};
	struct store_where w = {"role", "admin"};
	struct store_query q = {
	    .dataset = "accounts", .scope = k->cfg.node_path, .where = &w, .n_where = 1};
	char cursor[STORE_CURSOR_MAX], err[256];
	int rc;
	do {
		rc = store_scan(k->store, &q, admin_row, &c, cursor, err, sizeof err);
		q.cursor = cursor;
	} while (rc > 0 && cursor[0] && c.n == 0);
	if (rc < 0)
		return cmd_fail(call, rc, "accounts %s: %s", what, err);
	if (c.n == 0)
		return cmd_fail(call, LINLI_EPERM,
				"'%s' is the last administrator of %s: add another admin there "
				"before you %s it",
				a->user, k->cfg.node_path, what);
	return 0;
}

static void add_done(struct kernel *k, struct job *j)
{
	struct cmd_call *call = j->call;
	char err[256];
	if (!j->ok) {
		cmd_finish(call, cmd_fail(call, LINLI_ENOMEM, "cannot hash the password"));
		return;
	}
	struct account *a = &j->acct;
	bool passwd = strcmp(call->argv[1], "passwd") == 0;
	struct account other;
	int got = account_get(k, a->user, &other, err, sizeof err);
	if (!passwd && got == 0) {
		/* Someone took the name while we hashed. */
		cmd_finish(call, cmd_fail(call, LINLI_EEXIST, "account '%s' exists", a->user));
		return;
	}
	if (passwd) {
		/* The account as it is now (it may have changed while we hashed), new password. */
		if (got != 0) {
			cmd_finish(call,
				   cmd_fail(call, LINLI_ENOENT, "no account '%.40s'", a->user));
			return;
		}
		int mrc;
		if (strcmp(a->user, call->who->name) != 0 &&
		    (mrc = may_manage(call, other.scope))) {
			cmd_finish(call, mrc);
			return;
		}
		*a = other;
		a->failed = 0;
		a->locked_until = 0;
		a->epoch++;
	}
	snprintf(a->hash, sizeof a->hash, "%s", j->hash);
	int rc = account_put(k, a, err, sizeof err);
	int ended = 0;
	if (!rc && passwd) {
		char why[96];
		snprintf(why, sizeof why, "the password of '%s' was changed", a->user);
		rc = ended = sessions_sweep(k, a->user, why, err, sizeof err);
	}
	if (rc < 0) {
		cmd_finish(call, cmd_fail(call, rc, "%s", err));
		return;
	}
	tiers_audit(k, call->who, passwd ? "accounts.passwd" : "accounts.add", a->scope, a->user,
		    "allowed", passwd ? NULL : a->role);
	msgpack_packer *pk = &call->pk;
	msgpack_pack_map(pk, 4 + (j->extra[0] != 0) + passwd);
	mp_kv_str(pk, "user", a->user);
	mp_kv_str(pk, "kind", a->kind);
	mp_kv_str(pk, "role", a->role);
	mp_kv_str(pk, "scope", a->scope);
	if (passwd)
		mp_kv_int(pk, "sessions_ended", ended);
	if (j->extra[0])
		mp_kv_str(pk, "secret", j->extra); /* shown once, never stored */
	sodium_memzero(j->extra, sizeof j->extra);
	finish_after_commit(k, call);
}

static int cmd_accounts_add(struct cmd_call *call, void *ud)
{
	(void)ud;
	struct kernel *k = call->k;
	struct aopts o;
	const char *pos[1];
	int npos, rc;
	if ((rc = parse_aopts(call, 2, &o, pos, 1, &npos)))
		return rc;
	if (npos != 1 || !o.role)
		return cmd_fail(call, LINLI_EINVAL,
				"usage: accounts add USER --role ROLE [--node PATH] [--name TEXT] "
				"[--machine] (a person's password as input)");
	const char *user = pos[0];
	if (!user_ok(user))
		return cmd_fail(call, LINLI_EINVAL,
				"bad user name '%.40s': 2 to 32 of a-z 0-9 _ . - starting with a letter",
				user);
	const char *node = o.node ? o.node : call->who->scope;
	char why[128];
	enum tier_role role;
	if ((rc = placement_ok(call, node, o.role, &role)))
		return rc;
	struct account existing;
	char err[256];
	/*
	 * User names are one namespace per node (a login names no scope), so a
	 * taken name cannot be hidden; where it is stays hidden outside the
	 * caller's subtree.
	 */
	if (account_get(k, user, &existing, err, sizeof err) == 0)
		return scope_within(call->who->scope, existing.scope)
			       ? cmd_fail(call, LINLI_EEXIST, "account '%s' exists (at %s)", user,
					  existing.scope)
			       : cmd_fail(call, LINLI_EEXIST, "user name '%s' is taken on this node",
					  user);
	struct job *j = calloc(1, sizeof *j);
	if (!j)
		return cmd_fail(call, LINLI_ENOMEM, "out of memory");
	if (o.machine) {
		/* One machine, one account: a random secret, shown once. */
		char secret[65];
		tier_token_new(secret);
		snprintf(j->extra, sizeof j->extra, "%s", secret);
		j->password = strdup(secret);
		sodium_memzero(secret, sizeof secret);
	} else {
		j->password = take_password(call);
		if (!j->password) {
			free(j);
			return cmd_fail(call, LINLI_EINVAL,
					"accounts add: give the new password as input (--stdin)");
		}
		if ((rc = tier_password_ok(user, j->password, why, sizeof why))) {
			sodium_memzero(j->password, strlen(j->password));
			free(j->password);
			free(j);
			return cmd_fail(call, rc, "%s", why);
		}
	}
	struct account *a = &j->acct;
	snprintf(a->user, sizeof a->user, "%s", user);
	snprintf(a->scope, sizeof a->scope, "%s", node);
	snprintf(a->kind, sizeof a->kind, "%s", o.machine ? "machine" : "person");
	snprintf(a->role, sizeof a->role, "%s", tier_role_name(role));
	snprintf(a->display, sizeof a->display, "%s", o.name ? o.name : "");
	snprintf(a->created_by, sizeof a->created_by, "%s", call->who->name);
	a->created = wall_ms();
	j->kind = JOB_HASH;
	j->strength = k->cfg.pwhash;
	j->memory_mb = k->cfg.pwhash_memory_mb;
	j->done = add_done;
	return job_start(call, j);
}

static int cmd_accounts_passwd(struct cmd_call *call, void *ud)
{
	(void)ud;
	struct kernel *k = call->k;
	if (call->argc != 3)
		return cmd_fail(call, LINLI_EINVAL, "usage: accounts passwd USER (new password as input)");
	const char *user = call->argv[2];
	struct account a;
	char err[256], why[128];
	if (account_get(k, user, &a, err, sizeof err) != 0)
		return cmd_fail(call, LINLI_ENOENT, "no account '%.40s'", user);
	int rc;
	if (strcmp(user, call->who->name) != 0 && (rc = may_manage(call, a.scope)))
		return rc;
	if (strcmp(a.kind, "person") != 0)
		return cmd_fail(call, LINLI_EINVAL, "'%s' is a machine: remove and add it anew", user);
	struct job *j = calloc(1, sizeof *j);
	if (!j)
		return cmd_fail(call, LINLI_ENOMEM, "out of memory");
	j->password = take_password(call);
	if (!j->password) {
		free(j);
		return cmd_fail(call, LINLI_EINVAL, "accounts passwd: give the new password as input");
	}
	if ((rc = tier_password_ok(user, j->password, why, sizeof why))) {
		sodium_memzero(j->password, strlen(j->password));
		free(j->password);
		free(j);
		return cmd_fail(call, rc, "%s", why);
	}
	j->acct = a;
	j->kind = JOB_HASH;
	j->strength = k->cfg.pwhash;
	j->memory_mb = k->cfg.pwhash_memory_mb;
	j->done = add_done;
	return job_start(call, j);
}

/* disable / enable / grant / revoke: change one account in place. */
static int change_account(struct cmd_call *call, const char *what)
{
	struct kernel *k = call->k;
	bool dutyish = strcmp(what, "assign") == 0 || strcmp(what, "unassign") == 0;
	bool grantish = dutyish || strcmp(what, "grant") == 0 || strcmp(what, "revoke") == 0;
	if (call->argc != (grantish ? 4 : 3))
		return cmd_fail(call, LINLI_EINVAL, "usage: accounts %s USER%s", what,
				dutyish ? " DUTY" : grantish ? " GRANT" : "");
	const char *user = call->argv[2];
	struct account a;
	char err[256];
	if (account_get(k, user, &a, err, sizeof err) != 0)
		return cmd_fail(call, LINLI_ENOENT, "no account '%.40s'", user);
	int rc = may_manage(call, a.scope);
	if (rc)
		return rc;
	if (strcmp(user, call->who->name) == 0 && strcmp(what, "enable") != 0 && !dutyish)
		return cmd_fail(call, LINLI_EPERM, "you may not %s your own account", what);
	if (strcmp(what, "disable") == 0) {
		if ((rc = last_admin(call, &a, "disable")))
			return rc;
		a.disabled = true;
		a.epoch++;
	} else if (strcmp(what, "enable") == 0) {
		a.disabled = false;
		a.failed = 0;
		a.locked_until = 0;
	} else {
		const char *g = call->argv[3];
		bool ok = dutyish ? tier_duty_ok(g)
				  : strcmp(g, "sensitive") == 0 ||
					(strncmp(g, "sensitive:", 10) == 0 &&
					 catalog_dataset(k->catalog, g + 10));
		if (!ok && dutyish)
			return cmd_fail(call, LINLI_EINVAL,
					"bad duty '%.60s': a word of a-z, 0-9 and _ (e.g. "
					"'grid.dispatcher'), at most 63 bytes",
					g);
		if (!ok)
			return cmd_fail(call, LINLI_EINVAL,
					"unknown grant '%.60s': 'sensitive' or 'sensitive:DATASET'", g);
		char *field = dutyish ? a.duties : a.grants;
		size_t cap = dutyish ? sizeof a.duties : sizeof a.grants;
		char list[4096] = "";
		bool had = false;
		char copy[4096];
		snprintf(copy, sizeof copy, "%s", field);
		for (char *t = strtok(copy, " "); t; t = strtok(NULL, " ")) {
			if (strcmp(t, g) == 0) {
				had = true;
				continue;
			}
			snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
				 list[0] ? " " : "", t);
		}
		if (strcmp(what, "grant") == 0 || strcmp(what, "assign") == 0)
			snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
				 list[0] ? " " : "", g);
		else if (!had)
			return cmd_fail(call, LINLI_ENOENT, "'%s' does not hold '%s'", user, g);
		if (strlen(list) >= cap)
			return cmd_fail(call, LINLI_ELIMIT, "'%s' holds too many %s already", user,
					dutyish ? "duties" : "grants");
		snprintf(field, cap, "%s", list);
	}
	if ((rc = account_put(k, &a, err, sizeof err)))
		return cmd_fail(call, rc, "%s", err);
	if (strcmp(what, "disable") == 0) {
		char why[96];
		snprintf(why, sizeof why, "account '%s' was disabled", user);
		if ((rc = sessions_sweep(k, user, why, err, sizeof err)) < 0)
			return cmd_fail(call, rc, "%s", err);
	} else
		cache_drop(T(k), by_user, user, NULL);
	char action[32];
	snprintf(action, sizeof action, "accounts.%s", what);
	tiers_audit(k, call->who, action, a.scope, user, "allowed",
		    grantish ? call->argv[3] : NULL);
	msgpack_pack_map(&call->pk, 4);
	mp_kv_str(&call->pk, "user", user);
	mp_kv_bool(&call->pk, "disabled", a.disabled);
	mp_kv_str(&call->pk, "grants", a.grants);
	mp_kv_str(&call->pk, "duties", a.duties);
	finish_after_commit(k, call);
	return CMD_PENDING;
}

/* The role or node of an account changes: a new epoch, and its sessions end. */
static int cmd_accounts_set(struct cmd_call *call, void *ud)
{
	(void)ud;
	struct kernel *k = call->k;
	struct aopts o;
	const char *pos[1];
	int npos, rc;
	if ((rc = parse_aopts(call, 2, &o, pos, 1, &npos)))
		return rc;
	if (npos != 1 || o.machine || (!o.role && !o.node && !o.name))
		return cmd_fail(
		    call, LINLI_EINVAL,
		    "usage: accounts set USER [--role ROLE] [--node PATH] [--name TEXT] "
		    "(at least one of them)");
	const char *user = pos[0];
	if (o.name && strlen(o.name) >= sizeof((struct account *)0)->display)
		return cmd_fail(call, LINLI_EINVAL, "accounts set: --name is longer than %zu bytes",
				sizeof((struct account *)0)->display - 1);
	struct account a;
	char err[256];
	if (account_get(k, user, &a, err, sizeof err) != 0)
		return cmd_fail(call, LINLI_ENOENT, "no account '%.40s'", user);
	if ((rc = may_manage(call, a.scope)))
		return rc;
	const char *node = o.node ? o.node : a.scope;
	enum tier_role role;
	if ((rc = placement_ok(call, node, o.role ? o.role : a.role, &role)))
		return rc;
	bool moves = strcmp(node, a.scope) != 0;
	bool rerole = strcmp(tier_role_name(role), a.role) != 0;
	if (moves || rerole) {
		if ((rc = last_admin(call, &a, moves ? "move" : "demote")))
			return rc;
		if (strcmp(user, call->who->name) == 0)
			return cmd_fail(call, LINLI_EPERM,
					"you may not change the role or node of your own account");
	}
	struct account b = a;
	snprintf(b.role, sizeof b.role, "%s", tier_role_name(role));
	snprintf(b.scope, sizeof b.scope, "%s", node);
	if (o.name)
		snprintf(b.display, sizeof b.display, "%s", o.name);
	if (moves || rerole)
		b.epoch++;
	/* A record lives at its scope: a move deletes it there and writes it anew. */
	if (moves && (rc = store_delete(k->store, "accounts", a.scope, user, err, sizeof err)))
		return cmd_fail(call, rc, "accounts set: %s", err);
	if ((rc = account_put(k, &b, err, sizeof err))) {
		char e2[256];
		if (moves && account_put(k, &a, e2, sizeof e2)) /* put back what was there */
			log_error("tiers", "accounts set: cannot restore '%s' at %s: %s", user,
				  a.scope, e2);
		return cmd_fail(call, rc, "accounts set: %s", err);
	}
	int ended = 0;
	if (moves || rerole) {
		char why[SCOPE_MAX + 96];
		if (moves)
			snprintf(why, sizeof why, "account '%s' was moved to %s", user, node);
		else
			snprintf(why, sizeof why, "the role of '%s' changed to %s", user, b.role);
		if ((ended = sessions_sweep(k, user, why, err, sizeof err)) < 0)
			return cmd_fail(call, ended, "accounts set: %s", err);
	}
	char detail[2 * SCOPE_MAX + 64];
	snprintf(detail, sizeof detail, "role %s->%s node %s->%s%s", a.role, b.role, a.scope,
		 b.scope, o.name ? " name" : "");
	tiers_audit(k, call->who, "accounts.set", a.scope, user, "allowed", detail);
	if (moves) /* the new jurisdiction's auditors see who came in */
		tiers_audit(k, call->who, "accounts.set", b.scope, user, "allowed", detail);
	msgpack_pack_map(&call->pk, 5);
	mp_kv_str(&call->pk, "user", user);
	mp_kv_str(&call->pk, "role", b.role);
	mp_kv_str(&call->pk, "scope", b.scope);
	mp_kv_str(&call->pk, "name", b.display);
	mp_kv_int(&call->pk, "sessions_ended", ended);
	finish_after_commit(k, call);
	return CMD_PENDING;
}

/* An account goes, with every session it had. */
static int cmd_accounts_remove(struct cmd_call *call, void *ud)
{
	(void)ud;
	struct kernel *k = call->k;
	if (call->argc != 3)
		return cmd_fail(call, LINLI_EINVAL, "usage: accounts remove USER");
	const char *user = call->argv[2];
	struct account a;
	char err[256];
	if (account_get(k, user, &a, err, sizeof err) != 0)
		return cmd_fail(call, LINLI_ENOENT, "no account '%.40s'", user);
	int rc = may_manage(call, a.scope);
	if (rc || (rc = last_admin(call, &a, "remove")))
		return rc;
	if (strcmp(user, call->who->name) == 0)
		return cmd_fail(call, LINLI_EPERM, "you may not remove your own account");
	if ((rc = store_delete(k->store, "accounts", a.scope, user, err, sizeof err)))
		return cmd_fail(call, rc, "accounts remove: %s", err);
	char why[96];
	snprintf(why, sizeof why, "account '%s' was removed", user);
	int ended = sessions_sweep(k, user, why, err, sizeof err);
	if (ended < 0)
		return cmd_fail(call, ended, "accounts remove: %s", err);
	tiers_audit(k, call->who, "accounts.remove", a.scope, user, "allowed", a.role);
	msgpack_pack_map(&call->pk, 3);
	mp_kv_str(&call->pk, "user", user);
	mp_kv_str(&call->pk, "scope", a.scope);
	mp_kv_int(&call->pk, "sessions_ended", ended);
	finish_after_commit(k, call);
	return CMD_PENDING;
}

static int cmd_accounts_change(struct cmd_call *call, void *ud)
{
	return change_account(call, ud);
}

struct listctx {
	msgpack_sbuffer rows;
	msgpack_packer pk;
	int n;
	int64_t now;
};

static int list_row(void *ud, const struct store_row *row)
{
	struct listctx *c = ud;
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	size_t off = 0;
	if (msgpack_unpack_next(&up, row->data, row->len, &off) == MSGPACK_UNPACK_SUCCESS) {
		struct account a;
		memset(&a, 0, sizeof a);
		account_from(&up.data, &a);
		msgpack_pack_map(&c->pk, 9);
		mp_kv_str(&c->pk, "user", row->id);
		mp_kv_str(&c->pk, "kind", a.kind);
		mp_kv_str(&c->pk, "role", a.role);
		mp_kv_str(&c->pk, "scope", row->scope);
		mp_kv_str(&c->pk, "name", a.display);
		mp_kv_bool(&c->pk, "disabled", a.disabled);
		mp_kv_bool(&c->pk, "locked", a.locked_until > c->now);
		mp_kv_str(&c->pk, "grants", a.grants);
		mp_kv_str(&c->pk, "duties", a.duties);
		c->n++;
	}
	msgpack_unpacked_destroy(&up);
	return 0;
}

struct dutyctx {
	const char *duty;
	msgpack_sbuffer rows;
	msgpack_packer pk;
	int n;
};

static int duty_row(void *ud, const struct store_row *row)
{
	struct dutyctx *c = ud;
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	size_t off = 0;
	if (msgpack_unpack_next(&up, row->data, row->len, &off) == MSGPACK_UNPACK_SUCCESS) {
		struct account a;
		memset(&a, 0, sizeof a);
		account_from(&up.data, &a);
		bool holds = false;
		for (char *t = strtok(a.duties, " "); t && !holds; t = strtok(NULL, " "))
			holds = strcmp(t, c->duty) == 0;
		if (holds && !a.disabled) {
			msgpack_pack_map(&c->pk, 4);
			mp_kv_str(&c->pk, "user", row->id);
			mp_kv_str(&c->pk, "scope", row->scope);
			mp_kv_str(&c->pk, "role", a.role);
			mp_kv_str(&c->pk, "name", a.display);
			c->n++;
		}
	}
	msgpack_unpacked_destroy(&up);
	return 0;
}

int tiers_duty_holders(struct kernel *k, const char *duty, const char *scope, msgpack_packer *pk,
		       char *err, size_t errlen)
{
	if (!k->store) {
		snprintf(err, errlen, "this node has no store open");
		return LINLI_ESTATE;
	}
	struct dutyctx c = {.duty = duty};
	msgpack_sbuffer_init(&c.rows);
	msgpack_packer_init(&c.pk, &c.rows, msgpack_sbuffer_write);
	char cursor[STORE_CURSOR_MAX] = "";
	int rc = 0;
	do {
		struct store_query q = {.dataset = "accounts", .scope = scope,
					.limit = STORE_SCAN_MAX, .cursor = cursor};
		rc = store_scan(k->store, &q, duty_row, &c, cursor, err, errlen);
	} while (rc >= 0 && cursor[0]);
	if (rc >= 0) {
		msgpack_pack_array(pk, (size_t)c.n);
		pk->callback(pk->data, c.rows.data, c.rows.size);
		rc = 0;
	}
	msgpack_sbuffer_destroy(&c.rows);
	return rc;
}

static int cmd_accounts_list(struct cmd_call *call, void *ud)
{
	(void)ud;
	const char *scope = call->who->scope;
	for (int i = 2; i + 1 < call->argc; i++)
		if (strcmp(call->argv[i], "--scope") == 0)
			scope = call->argv[i + 1];
	int rc = may_manage(call, scope);
	if (rc)
		return rc;
	struct listctx c = {.now = wall_ms()};
	msgpack_sbuffer_init(&c.rows);
	msgpack_packer_init(&c.pk, &c.rows, msgpack_sbuffer_write);
	struct store_query q = {.dataset = "accounts", .scope = scope, .limit = STORE_SCAN_MAX};
	char cursor[STORE_CURSOR_MAX];
	rc = store_scan(call->k->store, &q, list_row, &c, cursor, call->err, sizeof call->err);
	if (rc < 0) {
		msgpack_sbuffer_destroy(&c.rows);
		return rc;
	}
	msgpack_pack_array(&call->pk, (size_t)c.n);
	msgpack_sbuffer_write(&call->data, c.rows.data, c.rows.size);
	msgpack_sbuffer_destroy(&c.rows);
	return 0;
}

/* ---- audit ---- */

struct auditctx {
	msgpack_sbuffer rows;
	msgpack_packer pk;
	int n, max;
	int64_t since;
};

static int audit_row(void *ud, const struct store_row *row)
{
	struct auditctx *c = ud;
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	size_t off = 0;
	if (msgpack_unpack_next(&up, row->data, row->len, &off) == MSGPACK_UNPACK_SUCCESS &&
	    up.data.type == MSGPACK_OBJECT_MAP && get_i(mp_get(&up.data, "time")) >= c->since) {
		const msgpack_object_map *m = &up.data.via.map;
		msgpack_pack_map(&c->pk, m->size + 1);
		mp_kv_str(&c->pk, "scope", row->scope);
		for (uint32_t i = 0; i < m->size; i++) {
			msgpack_pack_object(&c->pk, m->ptr[i].key);
			msgpack_pack_object(&c->pk, m->ptr[i].val);
		}
		c->n++;
	}
	msgpack_unpacked_destroy(&up);
	return c->n >= c->max;
}

static int cmd_audit(struct cmd_call *call, void *ud)
{
	(void)ud;
	const char *scope = call->who->scope, *who = NULL, *action = NULL, *result = NULL;
	const char *via = NULL;
	int64_t since = 0;
	long limit = 200;
	for (int i = 1; i < call->argc; i++) {
		const char *a = call->argv[i], *v = i + 1 < call->argc ? call->argv[i + 1] : NULL;
		if (!v)
			return cmd_fail(call, LINLI_EINVAL,
					"usage: audit [--who U] [--via plugin:P] [--action A] [--result "
					"R] [--since TIME] [--scope PATH] [--limit N]");
		i++;
		if (strcmp(a, "--scope") == 0)
			scope = v;
		else if (strcmp(a, "--who") == 0)
			who = v;
		else if (strcmp(a, "--via") == 0)
			via = v;
		else if (strcmp(a, "--action") == 0)
			action = v;
		else if (strcmp(a, "--result") == 0)
			result = v;
		else if (strcmp(a, "--limit") == 0) {
			char *end;
			limit = strtol(v, &end, 10);
			if (!*v || *end)
				limit = 0; /* refused below */
		}
		else if (strcmp(a, "--since") == 0) {
			if (!store_time_parse(v, strlen(v), &since))
				return cmd_fail(call, LINLI_EINVAL,
						"--since: '%.40s' is not an RFC 3339 time", v);
		} else
			return cmd_fail(call, LINLI_EINVAL, "unknown option '%.40s'", a);
	}
	if (limit < 1 || limit > 10000)
		return cmd_fail(call, LINLI_EINVAL, "--limit must be 1..10000");
	int rc = access_call(call, ACT_AUDIT_READ, scope, "audit");
	if (rc)
		return rc;
	tiers_audit_flush(call->k, true); /* open windows of folded reads show too */
	struct store_where w[4];
	int nw = 0;
	if (who)
		w[nw++] = (struct store_where){"who", who};
	if (via)
		w[nw++] = (struct store_where){"via", via};
	if (action)
		w[nw++] = (struct store_where){"action", action};
	if (result)
		w[nw++] = (struct store_where){"result", result};
	struct auditctx c = {.max = (int)limit, .since = since};
	msgpack_sbuffer_init(&c.rows);
	msgpack_packer_init(&c.pk, &c.rows, msgpack_sbuffer_write);
	struct store_query q = {.dataset = "audit", .scope = scope, .where = w, .n_where = nw,
				.limit = STORE_SCAN_MAX};
	char cursor[STORE_CURSOR_MAX];
	do {
		rc = store_scan(call->k->store, &q, audit_row, &c, cursor, call->err,
				sizeof call->err);
		q.cursor = cursor;
	} while (rc > 0 && cursor[0] && c.n < c.max);
	if (rc < 0) {
		msgpack_sbuffer_destroy(&c.rows);
		return rc;
	}
	msgpack_pack_array(&call->pk, (size_t)c.n);
	msgpack_sbuffer_write(&call->data, c.rows.data, c.rows.size);
	msgpack_sbuffer_destroy(&c.rows);
	return 0;
}

/* ---- tier tree / roles ---- */

static int cmd_tree(struct cmd_call *call, void *ud)
{
	(void)ud;
	const struct tier_tree *t = &T(call->k)->tree;
	const char *root = call->who->scope;
	int first, n = tier_tree_subtree(t, root, &first);
	msgpack_pack_array(&call->pk, (size_t)n);
	for (int i = first; i < first + n; i++) {
		msgpack_pack_map(&call->pk, 4);
		mp_kv_str(&call->pk, "path", t->v[i].path);
		mp_kv_str(&call->pk, "level", tier_level_name(t->v[i].level));
		mp_kv_str(&call->pk, "code", t->v[i].code);
		mp_kv_str(&call->pk, "name", t->v[i].name);
	}
	return 0;
}

static int cmd_roles(struct cmd_call *call, void *ud)
{
	(void)ud;
	msgpack_packer *pk = &call->pk;
	msgpack_pack_array(pk, ROLE_COUNT - 1);
	for (int r = 1; r < ROLE_COUNT; r++) {
		msgpack_pack_map(pk, 2);
		mp_kv_str(pk, "role", tier_role_name((enum tier_role)r));
		mp_str(pk, "may");
		int n = 0;
		for (int a = 0; a < ACT_COUNT; a++)
			for (int l = TIER_CITY; l <= TIER_GRID; l++)
				if (tier_role_allows((enum tier_role)r, (enum tier_level)l,
						     (enum tier_action)a)) {
					n++;
					break;
				}
		msgpack_pack_map(pk, (size_t)n);
		for (int a = 0; a < ACT_COUNT; a++) {
			char lv[64] = "";
			for (int l = TIER_CITY; l <= TIER_GRID; l++)
				if (tier_role_allows((enum tier_role)r, (enum tier_level)l,
						     (enum tier_action)a))
					snprintf(lv + strlen(lv), sizeof lv - strlen(lv), "%s%s",
						 lv[0] ? " " : "", tier_level_name((enum tier_level)l));
			if (lv[0])
				mp_kv_str(pk, tier_action_name((enum tier_action)a), lv);
		}
	}
	return 0;
}

/* Every kernel command with its action and reach (access.c's gates). */
static int cmd_gates(struct cmd_call *call, void *ud)
{
	(void)ud;
	size_t n;
	const struct access_gate_row *g = access_gates(&n);
	msgpack_packer *pk = &call->pk;
	msgpack_pack_array(pk, n);
	for (size_t i = 0; i < n; i++) {
		char cmd[64];
		snprintf(cmd, sizeof cmd, "%s%s%s", g[i].name, g[i].sub ? " " : "",
			 g[i].sub ? g[i].sub : "");
		msgpack_pack_map(pk, 3);
		mp_kv_str(pk, "command", cmd);
		mp_kv_str(pk, "action", tier_action_name(g[i].act));
		mp_kv_str(pk, "reach", access_reach_name(g[i].reach));
	}
	return 0;
}

/* ---- bootstrap and life cycle ---- */

int tiers_bootstrap_admin(struct kernel *k, const char *user, const char *password, char *err,
			  size_t errlen)
{
	char why[128];
	if (!user_ok(user)) {
		snprintf(err, errlen, "bad user name '%s'", user);
		return LINLI_EINVAL;
	}
	int rc = tier_password_ok(user, password, why, sizeof why);
	if (rc) {
		snprintf(err, errlen, "%s", why);
		return rc;
	}
	if (store_count(k->store, "accounts") > 0) {
		snprintf(err, errlen,
			 "this node already has accounts: ask an administrator ('linli accounts add')");
		return LINLI_EEXIST;
	}
	struct account a;
	memset(&a, 0, sizeof a);
	snprintf(a.user, sizeof a.user, "%s", user);
	snprintf(a.scope, sizeof a.scope, "%s", k->cfg.node_path);
	snprintf(a.kind, sizeof a.kind, "person");
	snprintf(a.role, sizeof a.role, "admin");
	snprintf(a.created_by, sizeof a.created_by, "init-admin");
	a.created = wall_ms();
	if ((rc = tier_password_hash_with(password, (enum tier_pw_strength)k->cfg.pwhash,
					   k->cfg.pwhash_memory_mb, a.hash))) {
		snprintf(err, errlen, "cannot hash the password");
		return rc;
	}
	if ((rc = account_put(k, &a, err, errlen)))
		return rc;
	struct tier_principal who = {PRINCIPAL_KERNEL, "init-admin", k->cfg.node_path, ROLE_NONE,
				     NULL, NULL, NULL};
	tiers_audit(k, &who, "accounts.add", a.scope, user, "allowed", "first administrator");
	return store_batch_end(k->store);
}

int tiers_open(struct kernel *k, char *err, size_t errlen)
{
	struct tiers *t = calloc(1, sizeof *t);
	if (!t)
		return LINLI_ENOMEM;
	t->k = k;
	k->tiers = t;
	if (k->cfg.catalog_dir) {
		char path[4096];
		snprintf(path, sizeof path, "%s/tree.cfg", k->cfg.catalog_dir);
		int rc = tier_tree_load(&t->tree, path, 1, err, errlen);
		if (rc)
			return rc;
		if (t->tree.n && !tier_tree_find(&t->tree, k->cfg.node_path)) {
			snprintf(err, errlen, "%s: node.path '%s' is not in the jurisdiction tree",
				 path, k->cfg.node_path);
			return LINLI_ECONFIG;
		}
	}
	if (!k->cmds)
		return 0; /* offline use (--init-admin) */
	static const struct {
		const char *name, *sub, *usage, *summary;
		cmd_fn fn;
		const char *ud;
	} cmds[] = {
	    {"login", NULL, "USER [--password-stdin]", "start a session (password asked)",
	     cmd_login, NULL},
	    {"logout", NULL, "", "end this session", cmd_logout, NULL},
	    {"whoami", NULL, "", "the account, role, jurisdiction, grants and duties of this session",
	     cmd_whoami, NULL},
	    {"accounts", "add", "USER --role ROLE [--node PATH] [--name TEXT] [--machine]",
	     "add a person (password from --stdin) or a machine (secret shown once)",
	     cmd_accounts_add, NULL},
	    {"accounts", "passwd", "USER",
	     "set a password (new one from --stdin); ends its sessions", cmd_accounts_passwd, NULL},
	    {"accounts", "set", "USER [--role ROLE] [--node PATH] [--name TEXT]",
	     "change an account's role, node or name (a role or node change ends its sessions)",
	     cmd_accounts_set, NULL},
	    {"accounts", "disable", "USER", "disable an account (ends its sessions)",
	     cmd_accounts_change, "disable"},
	    {"accounts", "enable", "USER", "enable an account and clear a lockout",
	     cmd_accounts_change, "enable"},
	    {"accounts", "grant", "USER GRANT", "grant 'sensitive' or 'sensitive:DATASET'",
	     cmd_accounts_change, "grant"},
	    {"accounts", "revoke", "USER GRANT", "revoke a grant", cmd_accounts_change, "revoke"},
	    {"accounts", "assign", "USER DUTY",
	     "give an account a workflow duty plugins read (e.g. grid.dispatcher)",
	     cmd_accounts_change, "assign"},
	    {"accounts", "unassign", "USER DUTY", "take a workflow duty away", cmd_accounts_change,
	     "unassign"},
	    {"accounts", "remove", "USER", "remove an account and end its sessions",
	     cmd_accounts_remove, NULL},
	    {"accounts", "list", "[--scope PATH]", "accounts of a jurisdiction", cmd_accounts_list,
	     NULL},
	    {"audit", NULL,
	     "[--who U] [--via plugin:P] [--action A] [--result R] [--since TIME] [--scope PATH]",
	     "the audit log of a jurisdiction", cmd_audit, NULL},
	    {"tier", "tree", "", "the jurisdiction tree under this session's node", cmd_tree, NULL},
	    {"tier", "roles", "", "what each role may do at each level", cmd_roles, NULL},
	    {"tier", "gates", "",
	     "every kernel command with its action and reach (node-wide or scoped)", cmd_gates,
	     NULL},
	};
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
		int rc = cmd_register(k->cmds, cmds[i].name, cmds[i].sub, cmds[i].usage,
				      cmds[i].summary, cmds[i].fn, (void *)cmds[i].ud, t);
		if (rc) {
			snprintf(err, errlen, "cannot register '%s'", cmds[i].name);
			return rc;
		}
	}
	return 0;
}

void tiers_close(struct kernel *k)
{
	struct tiers *t = T(k);
	if (!t)
		return;
	tiers_audit_flush(k, true); /* before the store closes: folded reads are not lost */
	free(t->folds);
	while (t->cache) {
		struct sess *s = t->cache;
		t->cache = s->next;
		s->dead = true;
		if (s->refs == 0)
			free(s);
	}
	tier_tree_free(&t->tree);
	free(t);
	k->tiers = NULL;
}
