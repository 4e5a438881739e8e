/*
 * tier — see tier.h.
 *
 * The role table is data: one row per action, one bit per (role, level).
 * Keeping it a table (and printing it with `linli tier roles`) is what lets
 * the docs and the code agree: the docs table is generated from the same rows.
 */
#include "tier.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "linli/error.h"

static const char *const role_names[ROLE_COUNT] = {"none", "admin", "operator", "grid_worker",
						   "auditor", "viewer"};

static const char *const action_names[ACT_COUNT] = {
	"status",	  "data.read",	     "data.write",	"data.delete",	   "device.read",
	"device.command", "device.manage",   "events.subscribe", "events.publish", "plugin.manage",
	"rules.manage",	  "accounts.manage", "audit.read",	"store.admin"};

/* Levels as bits: C city, D district, S street, M community, G grid. */
#define C (1u << TIER_CITY)
#define D (1u << TIER_DISTRICT)
#define S (1u << TIER_STREET)
#define M (1u << TIER_COMMUNITY)
#define G (1u << TIER_GRID)
#define CDSM (C | D | S | M)

/* allow[action][role] = levels at which that role may take that action. */
static const unsigned allow[ACT_COUNT][ROLE_COUNT] = {
	/*                     none admin  operator  grid_w auditor viewer */
	[ACT_STATUS] = {0, CDSM, CDSM, G, CDSM, CDSM},
	[ACT_DATA_READ] = {0, CDSM, CDSM, G, CDSM, CDSM},
	[ACT_DATA_WRITE] = {0, CDSM, CDSM, G, 0, 0},
	[ACT_DATA_DELETE] = {0, CDSM, S | M, 0, 0, 0},
	[ACT_DEVICE_READ] = {0, CDSM, CDSM, G, CDSM, CDSM},
	[ACT_DEVICE_COMMAND] = {0, S | M, S | M, 0, 0, 0},
	[ACT_DEVICE_MANAGE] = {0, S | M, 0, 0, 0, 0},
	[ACT_EVENTS_SUBSCRIBE] = {0, CDSM, CDSM, G, CDSM, CDSM},
	[ACT_EVENTS_PUBLISH] = {0, CDSM, CDSM, G, 0, 0},
	[ACT_PLUGIN_MANAGE] = {0, CDSM, 0, 0, 0, 0},
	[ACT_RULES_MANAGE] = {0, CDSM, 0, 0, 0, 0},
	[ACT_ACCOUNTS_MANAGE] = {0, CDSM, 0, 0, 0, 0},
	[ACT_AUDIT_READ] = {0, CDSM, 0, 0, CDSM, 0},
	[ACT_STORE_ADMIN] = {0, CDSM, 0, 0, 0, 0},
};

const char *tier_role_name(enum tier_role r)
{
	return (unsigned)r < ROLE_COUNT ? role_names[r] : "?";
}

enum tier_role tier_role_parse(const char *name)
{
	for (int i = 1; i < ROLE_COUNT; i++)
		if (strcmp(name, role_names[i]) == 0)
			return (enum tier_role)i;
	return ROLE_NONE;
}

const char *tier_action_name(enum tier_action a)
{
	return (unsigned)a < ACT_COUNT ? action_names[a] : "?";
}

enum tier_action tier_action_parse(const char *name)
{
	for (int i = 0; i < ACT_COUNT; i++)
		if (strcmp(name, action_names[i]) == 0)
			return (enum tier_action)i;
	return ACT_COUNT;
}

bool tier_role_valid_at(enum tier_role role, enum tier_level level)
{
	if (role <= ROLE_NONE || role >= ROLE_COUNT || level < TIER_CITY || level > TIER_GRID)
		return false;
	return role == ROLE_GRID_WORKER ? level == TIER_GRID : level != TIER_GRID;
}

bool tier_role_allows(enum tier_role role, enum tier_level level, enum tier_action act)
{
	if ((unsigned)act >= ACT_COUNT || !tier_role_valid_at(role, level))
		return false;
	return (allow[act][role] & (1u << level)) != 0;
}

/*
 * Does filter `p` cover `t` — a topic, or itself a filter (a subscription
 * pattern, a declared capability)? Every topic `t` matches must match `p`:
 * '#' in p covers the rest; '+' in p covers one level that is not '#'; a
 * '+' or '#' in t is covered only by a wildcard of p at least as wide.
 */
static bool topic_match(const char *p, const char *t)
{
	for (;;) {
		if (p[0] == '#' && p[1] == '\0')
			return true;
		size_t pn = strcspn(p, "/"), tn = strcspn(t, "/");
		if (tn == 1 && t[0] == '#')
			return false; /* only '#' covers '#' */
		if (!(pn == 1 && p[0] == '+') && (pn != tn || strncmp(p, t, pn) != 0 ||
						  (tn == 1 && t[0] == '+')))
			return false;
		p += pn;
		t += tn;
		if (!*p || !*t)
			return !*p && !*t;
		p++;
		t++;
	}
}

bool tier_cap_covers(const char *g, const char *cap)
{
	/* A grant is "verb" or "verb:object"; the verb must match exactly. */
	size_t gv = strcspn(g, ":"), cv = strcspn(cap, ":");
	if (gv != cv || strncmp(g, cap, gv) != 0)
		return false;
	if (!g[gv])
		return true; /* "store.read" covers every dataset */
	if (!cap[cv])
		return false;
	const char *go = g + gv + 1, *co = cap + cv + 1;
	if (strcmp(go, "*") == 0 || strcmp(go, co) == 0)
		return true;
	return strncmp(g, "bus.", 4) == 0 && topic_match(go, co);
}

static bool cap_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 64 || !(s[0] >= 'a' && s[0] <= 'z'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

/* A topic filter: levels of printable ASCII, '+' or '#' whole levels, '#' last. */
static bool cap_filter(const char *f)
{
	if (!*f || strlen(f) > 255)
		return false;
	for (const char *lvl = f;;) {
		size_t l = strcspn(lvl, "/");
		if (l == 0)
			return false;
		for (size_t i = 0; i < l; i++) {
			unsigned char c = (unsigned char)lvl[i];
			if (c <= ' ' || c >= 0x7f || ((c == '+' || c == '#') && l != 1))
				return false;
		}
		if (lvl[0] == '#' && lvl[l])
			return false;
		if (!lvl[l])
			return true;
		lvl += l + 1;
	}
}

int tier_cap_check(const char *cap, char *why, size_t whylen)
{
	static const struct {
		const char *kind;
		char arg; /* n name, f topic filter, - none */
	} kinds[] = {
	    {"store.read", 'n'},     {"store.write", 'n'},    {"device.read", 'n'},
	    {"device.command", 'n'}, {"bus.publish", 'f'},    {"bus.subscribe", 'f'},
	    {"hal.driver", 'n'},     {"sensitive", 'n'},      {"net.connect", '-'},
	    {"catalog.read", '-'},
	};
	size_t kn = strcspn(cap, ":");
	const char *arg = cap[kn] ? cap + kn + 1 : NULL;
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
		if (strlen(kinds[i].kind) != kn || strncmp(kinds[i].kind, cap, kn) != 0)
			continue;
		if (!arg)
			return 0;
		if (kinds[i].arg == '-') {
			snprintf(why, whylen, "capability '%.100s': %s takes no argument", cap,
				 kinds[i].kind);
			return LINLI_EINVAL;
		}
		bool ok = kinds[i].arg == 'f' ? cap_filter(arg)
						: strcmp(arg, "*") == 0 || cap_name(arg);
		if (!ok) {
			snprintf(why, whylen, "capability '%.100s': '%.100s' is not %s", cap, arg,
				 kinds[i].arg == 'f' ? "a topic filter" : "a name or *");
			return LINLI_EINVAL;
		}
		return 0;
	}
	snprintf(why, whylen,
		 "unknown capability '%.100s' (store.read, store.write, device.read, "
		 "device.command, bus.publish, bus.subscribe, hal.driver, sensitive, net.connect, "
		 "catalog.read, each optionally ':ARG')",
		 cap);
	return LINLI_EINVAL;
}

/* The capability a plugin needs for an action on an object. */
static void needed_cap(enum tier_action act, const char *object, char *out, size_t n)
{
	const char *verb;
	switch (act) {
	case ACT_DATA_READ:
		verb = "store.read";
		break;
	case ACT_DATA_WRITE:
	case ACT_DATA_DELETE:
		verb = "store.write";
		break;
	case ACT_DEVICE_READ:
		verb = "device.read";
		break;
	case ACT_DEVICE_COMMAND:
		verb = "device.command";
		break;
	case ACT_EVENTS_SUBSCRIBE:
		verb = "bus.subscribe";
		break;
	case ACT_EVENTS_PUBLISH:
		verb = "bus.publish";
		break;
	default:
		verb = tier_action_name(act);
		object = NULL;
	}
	snprintf(out, n, "%s%s%s", verb, object ? ":" : "", object ? object : "");
}

static int check_one(const struct tier_principal *who, enum tier_action act, const char *scope,
		     const char *object, char *why, size_t whylen);

int tier_check(const struct tier_principal *who, enum tier_action act, const char *scope,
	       const char *object, char *why, size_t whylen)
{
	int rc = check_one(who, act, scope, object, why, whylen);
	if (rc || !who->on_behalf)
		return rc;
	/* Acting for a caller: the caller must be allowed too (a plugin never widens it). */
	char cwhy[384];
	rc = check_one(who->on_behalf, act, scope, object, cwhy, sizeof cwhy);
	if (rc)
		snprintf(why, whylen, "%s (through %s '%s')", cwhy,
			 who->kind == PRINCIPAL_RULE ? "rule" : "plugin", who->name);
	return rc;
}

static int check_one(const struct tier_principal *who, enum tier_action act, const char *scope,
		     const char *object, char *why, size_t whylen)
{
	if (who->kind == PRINCIPAL_KERNEL)
		return 0;
	const char *what = who->kind == PRINCIPAL_PLUGIN ? "plugin"
			   : who->kind == PRINCIPAL_RULE ? "rule"
							 : "account";
	if (!scope_within(who->scope, scope)) {
		snprintf(why, whylen, "%s '%s' of %s may not act on %s: outside its jurisdiction",
			 what, who->name, who->scope, scope);
		return LINLI_EPERM;
	}
	if (who->kind == PRINCIPAL_PLUGIN || who->kind == PRINCIPAL_RULE) {
		char cap[256];
		needed_cap(act, object, cap, sizeof cap);
		for (const char *const *g = who->grants; g && *g; g++)
			if (tier_cap_covers(*g, cap))
				return 0;
		snprintf(why, whylen, "%s '%s' holds no granted capability %s", what, who->name,
			 cap);
		return LINLI_EPERM;
	}
	enum tier_level lvl = (enum tier_level)scope_depth(who->scope);
	if (!tier_role_allows(who->role, lvl, act)) {
		snprintf(why, whylen, "role %s at %s level may not %s", tier_role_name(who->role),
			 tier_level_name(lvl) ? tier_level_name(lvl) : "?", tier_action_name(act));
		return LINLI_EPERM;
	}
	return 0;
}

int tier_role_rank(enum tier_role r)
{
	static const int rank[ROLE_COUNT] = {[ROLE_VIEWER] = 1, [ROLE_AUDITOR] = 2,
					     [ROLE_GRID_WORKER] = 3, [ROLE_OPERATOR] = 4,
					     [ROLE_ADMIN] = 5};
	return r > ROLE_NONE && r < ROLE_COUNT ? rank[r] : 0;
}

bool tier_duty_ok(const char *d)
{
	size_t n = d ? strlen(d) : 0;
	if (n == 0 || n > 63 || d[0] < 'a' || d[0] > 'z')
		return false;
	int dots = 0;
	for (size_t i = 0; i < n; i++) {
		char c = d[i];
		if (c == '.') {
			if (++dots > 1 || i + 1 == n || d[i + 1] < 'a' || d[i + 1] > 'z')
				return false;
		} else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return true;
}

bool tier_has_duty(const struct tier_principal *who, const char *duty)
{
	for (const char *const *d = who->duties; d && *d; d++)
		if (strcmp(*d, duty) == 0)
			return true;
	return false;
}

int tier_check_action(const struct tier_principal *who, const struct tier_plugin_action *a,
		      const char *scope, char *why, size_t whylen)
{
	/* A plugin or rule acting for a caller: the caller is who takes the action. */
	while (who->on_behalf && (who->kind == PRINCIPAL_PLUGIN || who->kind == PRINCIPAL_RULE))
		who = who->on_behalf;
	if (who->kind == PRINCIPAL_KERNEL)
		return 0;
	if (who->kind == PRINCIPAL_PLUGIN || who->kind == PRINCIPAL_RULE) {
		snprintf(why, whylen, "%s '%s' is no caller: action %s is taken by accounts",
			 who->kind == PRINCIPAL_RULE ? "rule" : "plugin", who->name, a->name);
		return LINLI_EPERM;
	}
	if (!scope_within(who->scope, scope)) {
		snprintf(why, whylen, "account '%s' of %s may not %s on %s: outside its jurisdiction",
			 who->name, who->scope, a->name, scope);
		return LINLI_EPERM;
	}
	if (tier_role_rank(who->role) < tier_role_rank(a->min_role)) {
		snprintf(why, whylen, "action %s needs role %s or above; '%s' is %s", a->name,
			 tier_role_name(a->min_role), who->name, tier_role_name(who->role));
		return LINLI_EPERM;
	}
	enum tier_level lvl = (enum tier_level)scope_depth(who->scope);
	if (a->max_depth != TIER_NONE && lvl > a->max_depth) {
		snprintf(why, whylen, "action %s is taken at %s level or above; '%s' sits at %s",
			 a->name, tier_level_name(a->max_depth), who->name,
			 tier_level_name(lvl) ? tier_level_name(lvl) : "?");
		return LINLI_EPERM;
	}
	if (a->duty && *a->duty && who->role != ROLE_ADMIN && !tier_has_duty(who, a->duty)) {
		snprintf(why, whylen, "action %s needs the duty %s, which '%s' does not hold",
			 a->name, a->duty, who->name);
		return LINLI_EPERM;
	}
	return 0;
}

static bool sees_one(const struct tier_principal *who, const char *dataset);

bool tier_sees_sensitive(const struct tier_principal *who, const char *dataset)
{
	return sees_one(who, dataset) && (!who->on_behalf || sees_one(who->on_behalf, dataset));
}

static bool sees_one(const struct tier_principal *who, const char *dataset)
{
	if (who->kind == PRINCIPAL_KERNEL)
		return true;
	char want[160];
	snprintf(want, sizeof want, "sensitive:%s", dataset ? dataset : "");
	for (const char *const *g = who->grants; g && *g; g++)
		if (strcmp(*g, "sensitive") == 0 || strcmp(*g, want) == 0)
			return true;
	return false;
}

static const char *const mask_names[] = {NULL, "id_number", "phone", "name", "address", "health"};

enum mask_kind tier_mask_parse(const char *name)
{
	for (int i = 1; i <= MASK_HEALTH; i++)
		if (strcmp(name, mask_names[i]) == 0)
			return (enum mask_kind)i;
	return MASK_NONE;
}

const char *tier_mask_name(enum mask_kind m)
{
	return m > MASK_NONE && m <= MASK_HEALTH ? mask_names[m] : NULL;
}

/* Byte length of the UTF-8 character starting at s (1 for a stray byte). */
static size_t u8len(const unsigned char *s, size_t left)
{
	size_t n = s[0] < 0x80 ? 1 : s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC0 ? 2 : 1;
	return n > left ? left : n;
}

static size_t u8count(const char *s, size_t n)
{
	size_t c = 0;
	for (size_t i = 0; i < n; c++)
		i += u8len((const unsigned char *)s + i, n - i);
	return c;
}

/* Keep `head` characters and `tail` characters; stars for the rest. */
static void keep(const char *in, size_t n, size_t head, size_t tail, char *out, size_t outlen)
{
	size_t chars = u8count(in, n), o = 0, i = 0;
	if (head + tail >= chars) {
		/* Too short to show anything safely: all stars. */
		head = chars > 1 ? 1 : 0;
		tail = 0;
	}
	for (size_t c = 0; c < chars && o + 5 < outlen; c++) {
		size_t l = u8len((const unsigned char *)in + i, n - i);
		if (c < head || c >= chars - tail) {
			memcpy(out + o, in + i, l);
			o += l;
		} else
			out[o++] = '*';
		i += l;
	}
	out[o] = '\0';
}

void tier_mask(enum mask_kind m, const char *in, size_t n, char *out, size_t outlen)
{
	if (outlen == 0)
		return;
	switch (m) {
	case MASK_ID_NUMBER:
		keep(in, n, 3, 4, out, outlen);
		return;
	case MASK_PHONE:
		keep(in, n, 3, 4, out, outlen);
		return;
	case MASK_NAME:
		keep(in, n, 1, 0, out, outlen);
		return;
	case MASK_ADDRESS: {
		size_t i = 0;
		for (int c = 0; c < 6 && i < n; c++)
			i += u8len((const unsigned char *)in + i, n - i);
		snprintf(out, outlen, "%.*s****", (int)i, in);
		return;
	}
	case MASK_HEALTH:
	case MASK_NONE:
	default:
		snprintf(out, outlen, "***");
		return;
	}
}

int tier_password_ok(const char *user, const char *pw, char *why, size_t whylen)
{
	size_t n = strlen(pw);
	const char *reason = NULL;
	if (n < TIER_PASSWORD_MIN)
		reason = "shorter than 10 characters";
	else if (n > TIER_PASSWORD_MAX)
		reason = "longer than 256 characters";
	else if (user && strcasestr(pw, user) && strlen(user) >= 3)
		reason = "contains the username";
	else {
		bool same = true;
		for (size_t i = 1; i < n; i++)
			same &= pw[i] == pw[0];
		if (same)
			reason = "is one character repeated";
	}
	if (reason) {
		snprintf(why, whylen, "password %s", reason);
		return LINLI_EINVAL;
	}
	return 0;
}

int tier_password_hash_with(const char *password, enum tier_pw_strength st, int memory_mb,
			    char out[TIER_HASH_MAX])
{
	_Static_assert(crypto_pwhash_STRBYTES <= TIER_HASH_MAX, "hash buffer");
	unsigned long long ops = crypto_pwhash_OPSLIMIT_INTERACTIVE;
	size_t mem = crypto_pwhash_MEMLIMIT_INTERACTIVE;
	if (st == TIER_PW_MIN) {
		ops = crypto_pwhash_OPSLIMIT_MIN;
		mem = crypto_pwhash_MEMLIMIT_MIN;
	} else if (st == TIER_PW_MODERATE) {
		ops = crypto_pwhash_OPSLIMIT_MODERATE;
		mem = crypto_pwhash_MEMLIMIT_MODERATE;
	}
	if (memory_mb > 0) /* a small box's setting; the hash string records it */
		mem = (size_t)memory_mb << 20;
	if (crypto_pwhash_str(out, password, strlen(password), ops, mem) != 0)
		return LINLI_ENOMEM;
	return 0;
}

int tier_password_hash(const char *password, char out[TIER_HASH_MAX])
{
	return tier_password_hash_with(password, TIER_PW_INTERACTIVE, 0, out);
}

bool tier_password_verify(const char *hash, const char *password)
{
	return crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
}

void tier_token_new(char out[65])
{
	unsigned char b[32];
	randombytes_buf(b, sizeof b);
	sodium_bin2hex(out, 65, b, sizeof b);
	sodium_memzero(b, sizeof b);
}
