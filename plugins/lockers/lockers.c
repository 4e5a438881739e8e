/*
 * lockers — the parcel-locker plugin of the public-services family (快递柜,
 * plugins/lockers/).
 *
 * It owns the `parcels` dataset (catalog/datasets/parcels.cfg): a parcel is
 * deposited in a compartment of a locker (a device of class locker) with a
 * one-time pickup code of code_digits digits, shown once to the courier and
 * never stored: the record keeps HMAC-SHA256 under the node secret of
 * "LOCKER:CODE" (libsodium crypto_auth_hmacsha256). The secret is 32 random
 * bytes in the file plugins.lockers.secret_file, outside the store, made
 * 0600 at first start; a code never reaches the store, the log or the audit.
 *
 *   deposit  LOCKER COMPARTMENT --house H [--phone P]   a code, the HMAC stored;
 *            by a courier: an account holding the duty lockers.courier
 *            (admins need none; `linli accounts assign USER lockers.courier`)
 *   pickup   LOCKER CODE          the compartment opened through the HAL
 *                                 (device.command:locker open), then picked_up
 *   return   PARCEL               the courier took it back (returned)
 *   list / show / stats
 *
 * Wrong codes are counted per locker: max_attempts within attempt_window_s
 * lock the locker's codes out for lockout_s (refused, audited, alarm
 * code_lockout). A parcel still deposited free_hours after its deposit gets
 * a reminder (alarm parcel_overdue, warning) and one more every
 * remind_every_hours, on the node's clock. The locker's own events become
 * alarms (it is the one plugin of class locker): door_left_open, jammed,
 * forced, full; the class's door_closed of the last compartment left open
 * clears compartment_left_open (alarmreq/clear). Everything runs on the
 * kernel thread and never blocks.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include <linli/linli.h>

#include "alarmreq.h"
#include "plugcfg.h"
#include "plugcmd.h"

static const struct linli_api *api;

enum atype { T_OVERDUE, T_LOCKOUT, T_LEFT_OPEN, T_JAMMED, T_FORCED, T_FULL, T_N };
static const char *const type_names[T_N] = {"parcel_overdue",	     "code_lockout",
					    "compartment_left_open", "compartment_jammed",
					    "locker_forced",	     "locker_full"};
/* Indexes of plugcfg_sev_names: critical 0, major 1, minor 2, warning 3. */
static const int default_sev[T_N] = {3, 2, 2, 1, 1, 2};
/* The locker events turned into alarms, by type (NULL: none). */
static const char *const event_of[T_N] = {NULL, NULL, "door_left_open", "jammed", "forced", "full"};

#define BUCKETS	     256
#define ATTEMPTS_MAX 100
#define HEX_LEN	     (crypto_auth_hmacsha256_BYTES * 2)
#define SCAN_EVERY   60000 /* overdue parcels looked for once a minute (node clock) */
#define HOUSE_MAX    64
#define PHONE_MAX    32
#define PATH_MAX_    512
#define COMP_MAX     1000

struct lcfg {
	char secret_file[PATH_MAX_];
	int64_t digits, max_attempts, window_ms, lockout_ms, free_ms, remind_ms;
	int sev[T_N];
};

/* One locker as the plugin counts it. */
struct locker {
	struct locker *next;
	char device[LINLI_ID_MAX + 1];
	int64_t fails[ATTEMPTS_MAX]; /* wrong codes within the window, in order */
	int n_fails;
	int64_t locked_until, wrong, lockouts, pickups;
	uint8_t left_open[COMP_MAX / 8 + 1]; /* compartments left open (door_left_open) */
	int n_left_open;		     /* how many */
};

/* A pickup waiting for its compartment to open. */
struct pending {
	struct pending *next, **prev;
	char parcel[LINLI_ID_MAX + 1];
	char scope[LINLI_SCOPE_MAX + 1];
	char locker[LINLI_ID_MAX + 1];
	int64_t compartment;
};

struct lstate {
	struct lcfg cfg;
	char *cfg_json;
	bool have_key;
	unsigned char key[crypto_auth_hmacsha256_KEYBYTES];
	struct locker *lockers[BUCKETS];
	struct pending *pending;
	int64_t last_scan;
	struct alarmreq alarms;
	int64_t deposits, pickups, pickups_failed, wrong_codes, refused_locked, returns, reminders,
	    events, closed, refused_reloads;
};

static struct lstate *state; /* init to fini */

/* ---- configuration ---- */

static int cfg_parse(const struct plugcfg *p, linli_record *c, void *ud)
{
	static const char *const keys[] = {"secret_file",	 "code_digits", "max_attempts",
					   "attempt_window_s",	 "lockout_s",	"free_hours",
					   "remind_every_hours", "severity"};
	struct lstate *st = ud;
	struct lcfg f = {.digits = 6,
			 .max_attempts = 5,
			 .window_ms = 600000,
			 .lockout_ms = 900000,
			 .free_ms = 24 * 3600000LL,
			 .remind_ms = 24 * 3600000LL};
	memcpy(f.sev, default_sev, sizeof f.sev);
	const char *path = NULL;
	int rc = plugcfg_keys(p, c, keys, sizeof keys / sizeof keys[0]);
	if (!rc &&
	    (!api->rec_has(c, "secret_file") || api->rec_get_str(c, "secret_file", &path, NULL) ||
	     !path[0] || strlen(path) >= sizeof f.secret_file))
		rc = plugcfg_err(
		    p, "secret_file",
		    "required: the path of the file holding the node secret for pickup "
		    "codes (relative: to linlid's working directory), outside the store "
		    "(made 0600 at first start)");
	if (!rc)
		snprintf(f.secret_file, sizeof f.secret_file, "%s", path);
	if (!rc && st->have_key && strcmp(f.secret_file, st->cfg.secret_file) != 0)
		rc = plugcfg_err(p, "secret_file",
				 "cannot change while linlid runs (the codes of deposited parcels "
				 "hang on it); restart to use another");
	if (!rc)
		rc = plugcfg_int(p, c, "code_digits", 6, 8, 1, "a whole number", &f.digits);
	if (!rc)
		rc = plugcfg_int(p, c, "max_attempts", 1, ATTEMPTS_MAX, 1, "a whole number",
				 &f.max_attempts);
	if (!rc)
		rc = plugcfg_int(p, c, "attempt_window_s", 1, 86400, 1000, "whole seconds",
				 &f.window_ms);
	if (!rc)
		rc = plugcfg_int(p, c, "lockout_s", 1, 86400, 1000, "whole seconds", &f.lockout_ms);
	if (!rc)
		rc = plugcfg_int(p, c, "free_hours", 1, 720, 3600000, "whole hours", &f.free_ms);
	if (!rc)
		rc = plugcfg_int(p, c, "remind_every_hours", 1, 720, 3600000, "whole hours",
				 &f.remind_ms);
	if (!rc)
		rc = plugcfg_sevs(p, c, type_names, T_N, NULL, f.sev);
	if (!rc)
		st->cfg = f;
	return rc;
}

static linli_record *cfg_record(const struct lcfg *f)
{
	linli_record *r = api->rec_new();
	if (!r)
		return NULL;
	api->rec_set_str(r, "secret_file", f->secret_file);
	api->rec_set_int(r, "code_digits", f->digits);
	api->rec_set_int(r, "max_attempts", f->max_attempts);
	api->rec_set_int(r, "attempt_window_s", f->window_ms / 1000);
	api->rec_set_int(r, "lockout_s", f->lockout_ms / 1000);
	api->rec_set_int(r, "free_hours", f->free_ms / 3600000);
	api->rec_set_int(r, "remind_every_hours", f->remind_ms / 3600000);
	plugcfg_put_sevs(api, r, type_names, T_N, f->sev);
	return r;
}

/* ---- the node secret ---- */

/*
 * The secret of file `path` into key: read it, or make it (32 random bytes,
 * hex, mode 0600) when the file does not exist. A file others may read, or
 * one that is not 64 hex digits, is refused: 0 or LINLI_ECONFIG with err.
 */
static int secret_load(const char *path, unsigned char *key, bool *made, char *err, size_t errlen)
{
	char hex[2 * crypto_auth_hmacsha256_KEYBYTES + 2];
	*made = false;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		randombytes_buf(key, crypto_auth_hmacsha256_KEYBYTES);
		sodium_bin2hex(hex, sizeof hex - 1, key, crypto_auth_hmacsha256_KEYBYTES);
		hex[sizeof hex - 2] = '\n';
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		bool ok = fd >= 0 && write(fd, hex, sizeof hex - 1) == (ssize_t)(sizeof hex - 1) &&
			  fsync(fd) == 0;
		int e = errno;
		if (fd >= 0)
			close(fd);
		sodium_memzero(hex, sizeof hex);
		if (!ok) {
			if (fd >= 0)
				unlink(path);
			return snprintf(err, errlen,
					"linli.cfg: plugins.lockers.secret_file: %s cannot be "
					"created: %s",
					path, strerror(e)),
			       LINLI_ECONFIG;
		}
		*made = true;
		return 0;
	}
	if (fd < 0)
		return snprintf(err, errlen,
				"linli.cfg: plugins.lockers.secret_file: %s cannot be read: %s",
				path, strerror(errno)),
		       LINLI_ECONFIG;
	struct stat sb;
	ssize_t n = -1;
	const char *why = NULL;
	if (fstat(fd, &sb) || !S_ISREG(sb.st_mode))
		why = "is not a regular file";
	else if (sb.st_mode & 077)
		why = "may be read by others than its owner (chmod 600 it)";
	else if ((n = read(fd, hex, sizeof hex - 1)) < (ssize_t)(sizeof hex - 2))
		why = "does not hold 64 hex digits";
	close(fd);
	size_t got = 0;
	if (!why && (sodium_hex2bin(key, crypto_auth_hmacsha256_KEYBYTES, hex, (size_t)n, "\n",
				    &got, NULL) ||
		     got != crypto_auth_hmacsha256_KEYBYTES))
		why = "does not hold 64 hex digits";
	sodium_memzero(hex, sizeof hex);
	if (why)
		return snprintf(err, errlen, "linli.cfg: plugins.lockers.secret_file: %s %s", path,
				why),
		       LINLI_ECONFIG;
	return 0;
}

/* HMAC-SHA256(secret, "LOCKER:CODE") as 64 hex digits into out (HEX_LEN + 1 bytes). */
static void code_mac(const struct lstate *st, const char *locker, const char *code, char *out)
{
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_state h;
	crypto_auth_hmacsha256_init(&h, st->key, sizeof st->key);
	crypto_auth_hmacsha256_update(&h, (const unsigned char *)locker, strlen(locker));
	crypto_auth_hmacsha256_update(&h, (const unsigned char *)":", 1);
	crypto_auth_hmacsha256_update(&h, (const unsigned char *)code, strlen(code));
	crypto_auth_hmacsha256_final(&h, mac);
	sodium_bin2hex(out, HEX_LEN + 1, mac, sizeof mac);
	sodium_memzero(&h, sizeof h);
}

/* ---- lockers ---- */

static size_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (size_t)(h & (BUCKETS - 1));
}

static struct locker *locker_of(struct lstate *st, const char *device)
{
	struct locker **pp = &st->lockers[hash(device)];
	for (; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->device, device) == 0)
			return *pp;
	struct locker *l = calloc(1, sizeof *l);
	if (l) {
		snprintf(l->device, sizeof l->device, "%s", device);
		*pp = l;
	}
	return l;
}

static struct pending *pending_new(struct lstate *st)
{
	struct pending *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->next = st->pending;
	if (p->next)
		p->next->prev = &p->next;
	p->prev = &st->pending;
	st->pending = p;
	return p;
}

static void pending_free(struct pending *p)
{
	*p->prev = p->next;
	if (p->next)
		p->next->prev = p->prev;
	free(p);
}

/* ---- alarms: raised and cleared through the alarms plugin (plugins/lib/alarmreq) ---- */

static void raise_alarm(linli_ctx *ctx, struct lstate *st, int t, const char *scope,
			const char *source, const char *details)
{
	alarmreq_raise(&st->alarms, ctx, t, plugcfg_sev_names[st->cfg.sev[t]], scope, source,
		       details);
}

/* ---- the parcels of a locker ---- */

struct find {
	const char *mac;     /* the code's HMAC, or NULL */
	int64_t compartment; /* or 0 */
	char id[LINLI_ID_MAX + 1];
	char scope[LINLI_SCOPE_MAX + 1];
	int64_t compartment_out;
};

static int find_row(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	(void)ctx;
	struct find *f = ud;
	const char *m = NULL;
	int64_t c = 0;
	api->rec_get_int(row->record, "compartment", &c);
	if (f->mac) {
		size_t len = 0;
		if (api->rec_get_str(row->record, "code_hmac", &m, &len) || len != HEX_LEN ||
		    sodium_memcmp(m, f->mac, HEX_LEN) != 0)
			return 0;
	} else if (c != f->compartment)
		return 0;
	snprintf(f->id, sizeof f->id, "%s", row->id);
	snprintf(f->scope, sizeof f->scope, "%s", row->scope);
	f->compartment_out = c;
	return 1;
}

/* The deposited parcel of `locker` matching f (its HMAC or compartment): 1, 0 none, <0. */
static int find_parcel(linli_ctx *ctx, const char *locker, struct find *f)
{
	struct linli_where w[2] = {{"locker", locker}, {"state", "deposited"}};
	char cursor[LINLI_CURSOR_MAX] = "";
	f->id[0] = '\0';
	do {
		struct linli_query q = {.size = sizeof q,
					.dataset = "parcels",
					.where = w,
					.n_where = 2,
					.limit = 500,
					.cursor = cursor};
		int rc = api->store_scan(ctx, &q, find_row, f, cursor);
		if (rc < 0)
			return rc;
		if (f->id[0])
			return 1;
	} while (cursor[0]);
	return 0;
}

/* ---- the console ---- */

struct opts {
	const char *pos[2];
	int n_pos;
	const char *house, *phone, *courier, *scope, *state, *locker;
};

static int parse(const struct linli_cmd_req *req, int want, const char *usage, struct opts *o,
		 char *err, size_t errlen)
{
	const struct plugcmd_opt t[] = {{"--house", &o->house},	    {"--phone", &o->phone},
					{"--courier", &o->courier}, {"--scope", &o->scope},
					{"--state", &o->state},	    {"--locker", &o->locker}};
	/* never echo a word: it may be a code */
	return plugcmd_parse(req, want, want, usage, t, sizeof t / sizeof *t, o->pos, &o->n_pos,
			     false, err, errlen);
}

/* The locker device `id`: a locker, at its scope (into scope). */
static int locker_device(linli_ctx *ctx, const char *id, char *scope, char *err, size_t errlen)
{
	linli_record *info = NULL;
	const char *cls = NULL, *sc = NULL;
	int rc = api->dev_info(ctx, id, &info);
	if (rc)
		return snprintf(err, errlen, "locker %s: %s", id,
				rc == LINLI_ENOENT ? "no such device" : linli_strerror(rc)),
		       rc;
	if (api->rec_get_str(info, "class", &cls, NULL) || strcmp(cls, "locker") != 0)
		rc = LINLI_EINVAL;
	else if (api->rec_get_str(info, "scope", &sc, NULL) == 0)
		snprintf(scope, LINLI_SCOPE_MAX + 1, "%s", sc);
	if (rc)
		snprintf(err, errlen, "device %s is a %s, not a locker", id, cls ? cls : "device");
	api->rec_free(info);
	return rc;
}

static int cmd_deposit(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		       char *err, size_t errlen)
{
	struct lstate *st = req->ud;
	const char *usage = "LOCKER COMPARTMENT --house HOUSE [--phone PHONE] [--courier NAME]";
	struct opts o;
	char scope[LINLI_SCOPE_MAX + 1] = "", *end = NULL;
	int rc = parse(req, 2, usage, &o, err, errlen);
	if (rc)
		return rc;
	long long comp = strtoll(o.pos[1], &end, 10);
	if (*end || comp < 1 || comp > 1000)
		return snprintf(err, errlen, "COMPARTMENT: '%s' is not a number 1 to 1000",
				o.pos[1]),
		       LINLI_EINVAL;
	if (!o.house || !o.house[0] || strlen(o.house) > HOUSE_MAX)
		return snprintf(err, errlen,
				"--house: give the recipient's house (at most %d bytes)",
				HOUSE_MAX),
		       LINLI_EINVAL;
	if (o.phone && (!o.phone[0] || strlen(o.phone) > PHONE_MAX ||
			strspn(o.phone, "+-0123456789 ") != strlen(o.phone)))
		return snprintf(err, errlen,
				"--phone: digits, '+', '-' and spaces, at most %d bytes",
				PHONE_MAX),
		       LINLI_EINVAL;
	const char *courier = o.courier ? o.courier : req->caller ? req->caller->name : "";
	if (strlen(courier) > 64)
		return snprintf(err, errlen, "--courier: longer than 64 bytes"), LINLI_EINVAL;
	if ((rc = locker_device(ctx, o.pos[0], scope, err, errlen)))
		return rc;
	struct find f = {.compartment = comp};
	rc = find_parcel(ctx, o.pos[0], &f);
	if (rc < 0)
		return snprintf(err, errlen, "parcels cannot be read: %s",
				api->store_last_error(ctx)),
		       rc;
	if (rc == 1)
		return snprintf(err, errlen,
				"compartment %lld of locker %s holds parcel %s already", comp,
				o.pos[0], f.id),
		       LINLI_EEXIST;
	/* A fresh code whose HMAC no deposited parcel of this locker has. */
	char code[16], mac[HEX_LEN + 1];
	uint32_t span = 1;
	for (int i = 0; i < st->cfg.digits; i++)
		span *= 10;
	for (int tries = 0;; tries++) {
		snprintf(code, sizeof code, "%0*u", (int)st->cfg.digits, randombytes_uniform(span));
		code_mac(st, o.pos[0], code, mac);
		struct find g = {.mac = mac};
		rc = find_parcel(ctx, o.pos[0], &g);
		if (rc == 0)
			break;
		if (rc < 0 || tries == 20) {
			sodium_memzero(code, sizeof code);
			return snprintf(err, errlen, "no free pickup code for locker %s: %s",
					o.pos[0],
					rc < 0 ? api->store_last_error(ctx) : "too many in use"),
			       rc < 0 ? rc : LINLI_ELIMIT;
		}
	}
	int64_t now = api->time_now_ms();
	linli_record *r = api->rec_new();
	char id[LINLI_ID_MAX + 1] = "";
	rc = r ? 0 : LINLI_ENOMEM;
	if (!rc) {
		api->rec_set_str(r, "locker", o.pos[0]);
		api->rec_set_int(r, "compartment", comp);
		if (courier[0])
			api->rec_set_str(r, "courier", courier);
		api->rec_set_str(r, "house", o.house);
		if (o.phone)
			api->rec_set_str(r, "phone", o.phone);
		api->rec_set_str(r, "code_hmac", mac);
		api->rec_set_time(r, "deposited_at", now);
		api->rec_set_str(r, "state", "deposited");
		api->rec_set_int(r, "reminders", 0);
		rc = api->store_put(ctx, "parcels", scope, NULL, r, id, NULL);
		api->rec_free(r);
	}
	if (rc) {
		sodium_memzero(code, sizeof code);
		return snprintf(err, errlen, "the parcel is not stored: %s",
				rc == LINLI_ENOMEM ? "out of memory" : api->store_last_error(ctx)),
		       rc;
	}
	st->deposits++;
	char obj[LINLI_ID_MAX + 16], detail[160];
	snprintf(obj, sizeof obj, "parcels/%s", id);
	snprintf(detail, sizeof detail, "locker %s compartment %lld", o.pos[0], comp);
	api->audit(ctx, "lockers.deposit", scope, obj, "allowed", detail);
	api->log(ctx, LINLI_LOG_INFO, "parcel %s deposited in %s", id, detail);
	linli_record *out = api->rec_new();
	if (out) {
		api->rec_set_str(out, "parcel", id);
		api->rec_set_str(out, "scope", scope);
		api->rec_set_str(out, "locker", o.pos[0]);
		api->rec_set_int(out, "compartment", comp);
		api->rec_set_str(out, "code", code);
		api->rec_set_str(out, "note", "the code is shown once and not stored");
		api->rec_set_time(out, "deposited_at", now);
		api->rec_set_time(out, "free_until", now + st->cfg.free_ms);
	}
	sodium_memzero(code, sizeof code);
	*reply = out;
	return 0;
}

struct mark {
	const char *state; /* the new state */
	const char *at;	   /* the time field it sets */
	int64_t now;
};

static int mark_parcel(linli_ctx *ctx, const char *id, linli_record **rec, void *ud, char *err,
		       size_t errlen)
{
	(void)ctx;
	struct mark *m = ud;
	const char *s = NULL;
	if (!*rec)
		return snprintf(err, errlen, "parcel %s was removed", id), LINLI_ENOENT;
	if (api->rec_get_str(*rec, "state", &s, NULL) || strcmp(s, "deposited") != 0)
		return snprintf(err, errlen, "parcel %s is %s, not deposited", id, s ? s : "?"),
		       LINLI_ESTATE;
	api->rec_set_str(*rec, "state", m->state);
	api->rec_set_time(*rec, m->at, m->now);
	return 0;
}

static void on_opened(linli_ctx *ctx, uint64_t rq, int rc, const linli_record *result,
		      const char *err, void *ud)
{
	(void)rq;
	(void)result;
	struct pending *p = ud;
	struct lstate *st = state;
	char obj[LINLI_ID_MAX + 16], detail[256];
	snprintf(obj, sizeof obj, "parcels/%s", p->parcel);
	if (!rc) {
		struct mark m = {"picked_up", "picked_up_at", api->time_now_ms()};
		rc = api->store_update(ctx, "parcels", p->scope, p->parcel, mark_parcel, &m);
		err = rc ? api->store_last_error(ctx) : NULL;
	}
	if (rc) {
		st->pickups_failed++;
		snprintf(detail, sizeof detail, "locker %s compartment %lld did not open: %.160s",
			 p->locker, (long long)p->compartment,
			 err && *err ? err : linli_strerror(rc));
		/* "denied", not "failed": the kernel's audit dataset (1.1) refuses "failed"
		 * although linli/api.h lists it; the detail says what happened. */
		api->audit(ctx, "lockers.pickup", p->scope, obj, "denied", detail);
		api->log(ctx, LINLI_LOG_WARN, "parcel %s: %s", p->parcel, detail);
	} else {
		st->pickups++;
		struct locker *l = locker_of(st, p->locker);
		if (l)
			l->pickups++;
		snprintf(detail, sizeof detail, "locker %s compartment %lld opened", p->locker,
			 (long long)p->compartment);
		api->audit(ctx, "lockers.pickup", p->scope, obj, "allowed", detail);
		api->log(ctx, LINLI_LOG_INFO, "parcel %s picked up: %s", p->parcel, detail);
	}
	pending_free(p);
}

/* A wrong code at locker l: counted; the lockout when max_attempts are reached. */
static int wrong_code(linli_ctx *ctx, struct lstate *st, struct locker *l, const char *scope,
		      int64_t now, char *err, size_t errlen)
{
	while (l->n_fails && l->fails[0] <= now - st->cfg.window_ms) {
		memmove(l->fails, l->fails + 1, (size_t)(l->n_fails - 1) * sizeof *l->fails);
		l->n_fails--;
	}
	if (l->n_fails < ATTEMPTS_MAX)
		l->fails[l->n_fails++] = now;
	l->wrong++;
	st->wrong_codes++;
	char obj[LINLI_ID_MAX + 16], detail[256];
	snprintf(obj, sizeof obj, "device:%s", l->device);
	if (l->n_fails >= st->cfg.max_attempts) {
		l->locked_until = now + st->cfg.lockout_ms;
		l->lockouts++;
		l->n_fails = 0;
		snprintf(detail, sizeof detail,
			 "%lld wrong pickup codes within %lld s at locker %s: codes refused for "
			 "%lld s",
			 (long long)st->cfg.max_attempts, (long long)(st->cfg.window_ms / 1000),
			 l->device, (long long)(st->cfg.lockout_ms / 1000));
		api->audit(ctx, "lockers.pickup", scope, obj, "denied", detail);
		api->log(ctx, LINLI_LOG_WARN, "%s", detail);
		raise_alarm(ctx, st, T_LOCKOUT, scope, obj, detail);
		return snprintf(err, errlen, "wrong code; %s", detail), LINLI_EBUSY;
	}
	snprintf(detail, sizeof detail, "wrong code (%d of %lld within %lld s)", l->n_fails,
		 (long long)st->cfg.max_attempts, (long long)(st->cfg.window_ms / 1000));
	api->audit(ctx, "lockers.pickup", scope, obj, "denied", detail);
	return snprintf(err, errlen, "%s for locker %s", detail, l->device), LINLI_EAUTH;
}

static int cmd_pickup(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		      char *err, size_t errlen)
{
	struct lstate *st = req->ud;
	struct opts o;
	char scope[LINLI_SCOPE_MAX + 1] = "";
	int rc = parse(req, 2, "LOCKER CODE", &o, err, errlen);
	if (!rc)
		rc = locker_device(ctx, o.pos[0], scope, err, errlen);
	if (rc)
		return rc;
	struct locker *l = locker_of(st, o.pos[0]);
	if (!l)
		return snprintf(err, errlen, "out of memory"), LINLI_ENOMEM;
	int64_t now = api->time_now_ms();
	char obj[LINLI_ID_MAX + 16];
	snprintf(obj, sizeof obj, "device:%s", l->device);
	if (l->locked_until > now) {
		st->refused_locked++;
		api->audit(ctx, "lockers.pickup", scope, obj, "denied",
			   "locker locked out after wrong codes");
		return snprintf(err, errlen,
				"locker %s refuses pickup codes for %lld s more after %lld wrong "
				"codes; try later or ask the operator",
				l->device, (long long)((l->locked_until - now + 999) / 1000),
				(long long)st->cfg.max_attempts),
		       LINLI_EBUSY;
	}
	const char *code = o.pos[1];
	size_t n = strlen(code);
	if (n < 6 || n > 8 || strspn(code, "0123456789") != n)
		return wrong_code(ctx, st, l, scope, now, err, errlen);
	char mac[HEX_LEN + 1];
	code_mac(st, l->device, code, mac);
	struct find f = {.mac = mac};
	rc = find_parcel(ctx, l->device, &f);
	if (rc < 0)
		return snprintf(err, errlen, "parcels cannot be read: %s",
				api->store_last_error(ctx)),
		       rc;
	if (rc == 0)
		return wrong_code(ctx, st, l, scope, now, err, errlen);
	for (struct pending *p = st->pending; p; p = p->next)
		if (strcmp(p->parcel, f.id) == 0 && strcmp(p->scope, f.scope) == 0)
			return snprintf(err, errlen, "parcel %s: its compartment is being opened",
					f.id),
			       LINLI_EBUSY;
	l->n_fails = 0;
	struct pending *p = pending_new(st);
	linli_record *args = api->rec_new();
	if (!p || !args) {
		if (p)
			pending_free(p);
		api->rec_free(args);
		return snprintf(err, errlen, "out of memory"), LINLI_ENOMEM;
	}
	snprintf(p->parcel, sizeof p->parcel, "%s", f.id);
	snprintf(p->scope, sizeof p->scope, "%s", f.scope);
	snprintf(p->locker, sizeof p->locker, "%s", l->device);
	p->compartment = f.compartment_out;
	api->rec_set_int(args, "compartment", f.compartment_out);
	rc = api->dev_command(ctx, l->device, "open", args, 10000, on_opened, p, NULL);
	api->rec_free(args);
	if (rc) {
		pending_free(p);
		return snprintf(err, errlen, "locker %s: compartment %lld not opened: %s",
				l->device, (long long)f.compartment_out, linli_strerror(rc)),
		       rc;
	}
	linli_record *out = api->rec_new();
	if (out) {
		api->rec_set_str(out, "parcel", f.id);
		api->rec_set_str(out, "locker", l->device);
		api->rec_set_int(out, "compartment", f.compartment_out);
		api->rec_set_str(out, "state", "opening");
	}
	*reply = out;
	return 0;
}

static int cmd_return(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		      char *err, size_t errlen)
{
	(void)reply;
	struct lstate *st = req->ud;
	struct opts o;
	int rc = parse(req, 1, "PARCEL [--scope PATH]", &o, err, errlen);
	if (rc)
		return rc;
	struct mark m = {"returned", "returned_at", api->time_now_ms()};
	rc = api->store_update(ctx, "parcels", o.scope, o.pos[0], mark_parcel, &m);
	if (rc)
		return snprintf(err, errlen, "%s", api->store_last_error(ctx)), rc;
	st->returns++;
	char obj[LINLI_ID_MAX + 16];
	snprintf(obj, sizeof obj, "parcels/%s", o.pos[0]);
	api->audit(ctx, "lockers.return", o.scope, obj, "allowed", "returned to the courier");
	return 0;
}

/* A parcel as the console shows it: its fields without the code's HMAC. */
static int list_row(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	(void)ctx;
	linli_record *m;
	int rc = plugcmd_push_row(api, ud, row, &m);
	if (!rc)
		api->rec_remove(m, "code_hmac");
	return rc;
}

static int cmd_list(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		    char *err, size_t errlen)
{
	struct opts o;
	int rc = parse(req, 0, "[--state deposited|picked_up|returned] [--locker L] [--scope PATH]",
		       &o, err, errlen);
	if (rc)
		return rc;
	struct linli_where w[2];
	int nw = 0;
	if (o.locker)
		w[nw++] = (struct linli_where){"locker", o.locker};
	if (o.state)
		w[nw++] = (struct linli_where){"state", o.state};
	struct linli_query q = {.size = sizeof q,
				.dataset = "parcels",
				.scope = o.scope,
				.where = nw ? w : NULL,
				.n_where = nw};
	struct plugcmd_list l = {0};
	return plugcmd_list(api, ctx, &q, list_row, &l, &l, "parcels", reply, err, errlen);
}

static int cmd_show(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		    char *err, size_t errlen)
{
	struct opts o;
	char scope[LINLI_SCOPE_MAX + 1] = "";
	linli_record *r = NULL;
	int rc = parse(req, 1, "PARCEL [--scope PATH]", &o, err, errlen);
	if (rc)
		return rc;
	if ((rc = api->store_get(ctx, "parcels", o.scope, o.pos[0], &r, scope)))
		return snprintf(err, errlen, "parcel %s: %s", o.pos[0], api->store_last_error(ctx)),
		       rc;
	api->rec_remove(r, "code_hmac");
	api->rec_set_str(r, "id", o.pos[0]);
	api->rec_set_str(r, "scope", scope);
	int64_t at = 0;
	const char *s = NULL;
	if (api->rec_get_time(r, "deposited_at", &at) == 0 &&
	    api->rec_get_str(r, "state", &s, NULL) == 0 && strcmp(s, "deposited") == 0) {
		api->rec_set_time(r, "free_until", at + state->cfg.free_ms);
		api->rec_set_bool(r, "overdue", api->time_now_ms() >= at + state->cfg.free_ms);
	}
	*reply = r;
	return 0;
}

static int cmd_stats(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		     char *err, size_t errlen)
{
	(void)ctx;
	struct lstate *st = req->ud;
	int64_t now = api->time_now_ms();
	linli_record *r = api->rec_new(), *c = cfg_record(&st->cfg), *ls = NULL;
	if (!r || !c) {
		api->rec_free(r);
		api->rec_free(c);
		return snprintf(err, errlen, "out of memory"), LINLI_ENOMEM;
	}
	api->rec_set_int(r, "deposits", st->deposits);
	api->rec_set_int(r, "pickups", st->pickups);
	api->rec_set_int(r, "pickups_failed", st->pickups_failed);
	api->rec_set_int(r, "returns", st->returns);
	api->rec_set_int(r, "wrong_codes", st->wrong_codes);
	api->rec_set_int(r, "refused_locked_out", st->refused_locked);
	api->rec_set_int(r, "reminders", st->reminders);
	api->rec_set_int(r, "events", st->events);
	api->rec_set_int(r, "doors_closed", st->closed);
	alarmreq_put_counts(&st->alarms, r);
	if (api->rec_set_array(r, "lockers", &ls) == 0)
		for (size_t i = 0; i < BUCKETS; i++)
			for (struct locker *l = st->lockers[i]; l; l = l->next) {
				linli_record *m = NULL;
				if (api->arr_push_map(ls, &m))
					continue;
				api->rec_set_str(m, "locker", l->device);
				api->rec_set_int(m, "wrong_codes", l->wrong);
				api->rec_set_int(m, "lockouts", l->lockouts);
				api->rec_set_int(m, "pickups", l->pickups);
				api->rec_set_bool(m, "locked_out", l->locked_until > now);
				if (l->locked_until > now)
					api->rec_set_time(m, "locked_until", l->locked_until);
			}
	api->rec_set_int(r, "refused_reloads", st->refused_reloads);
	api->rec_set_record(r, "config", c);
	api->rec_free(c);
	*reply = r;
	return 0;
}

/* ---- overdue parcels ---- */

struct due {
	char id[LINLI_ID_MAX + 1];
	char scope[LINLI_SCOPE_MAX + 1];
	char locker[LINLI_ID_MAX + 1];
	int64_t compartment, deposited_at, reminders;
};

struct due_list {
	struct due *v;
	size_t n, cap;
	int64_t now;
	const struct lcfg *cfg;
};

/* The number of reminders a parcel deposited at `at` is owed by now. */
static int64_t owed(const struct lcfg *c, int64_t at, int64_t now)
{
	return now < at + c->free_ms ? 0 : (now - at - c->free_ms) / c->remind_ms + 1;
}

static int due_row(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	(void)ctx;
	struct due_list *d = ud;
	struct due x = {0};
	const char *lk = NULL;
	if (api->rec_get_time(row->record, "deposited_at", &x.deposited_at) ||
	    api->rec_get_str(row->record, "locker", &lk, NULL))
		return 0;
	api->rec_get_int(row->record, "reminders", &x.reminders);
	api->rec_get_int(row->record, "compartment", &x.compartment);
	if (owed(d->cfg, x.deposited_at, d->now) <= x.reminders)
		return 0;
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;
		struct due *v = realloc(d->v, cap * sizeof *v);
		if (!v)
			return LINLI_ENOMEM;
		d->v = v;
		d->cap = cap;
	}
	snprintf(x.id, sizeof x.id, "%s", row->id);
	snprintf(x.scope, sizeof x.scope, "%s", row->scope);
	snprintf(x.locker, sizeof x.locker, "%s", lk);
	d->v[d->n++] = x;
	return 0;
}

struct reminded {
	int64_t n, now;
};

static int note_reminder(linli_ctx *ctx, const char *id, linli_record **rec, void *ud, char *err,
			 size_t errlen)
{
	(void)ctx;
	struct reminded *m = ud;
	const char *s = NULL;
	if (!*rec)
		return snprintf(err, errlen, "parcel %s was removed", id), LINLI_ENOENT;
	if (api->rec_get_str(*rec, "state", &s, NULL) || strcmp(s, "deposited") != 0)
		return LINLI_STORE_KEEP;
	api->rec_set_int(*rec, "reminders", m->n);
	api->rec_set_time(*rec, "last_reminder_at", m->now);
	return 0;
}

/*
 * Every deposited parcel past its free period that is owed a reminder: one
 * alarm parcel_overdue (its source the parcel: later reminders fold into it)
 * and the count in the record. A clock that jumped several periods sends one.
 */
static void overdue_scan(linli_ctx *ctx, struct lstate *st, int64_t now)
{
	struct linli_where w = {"state", "deposited"};
	struct due_list d = {.now = now, .cfg = &st->cfg};
	char cursor[LINLI_CURSOR_MAX] = "";
	do {
		struct linli_query q = {.size = sizeof q,
					.dataset = "parcels",
					.where = &w,
					.n_where = 1,
					.limit = 1000,
					.cursor = cursor};
		int rc = api->store_scan(ctx, &q, due_row, &d, cursor);
		if (rc < 0) {
			api->log(ctx, LINLI_LOG_WARN, "overdue parcels not looked for: %s",
				 rc == LINLI_ENOMEM ? "out of memory" : api->store_last_error(ctx));
			break;
		}
	} while (cursor[0]);
	for (size_t i = 0; i < d.n; i++) {
		struct due *x = &d.v[i];
		struct reminded m = {owed(&st->cfg, x->deposited_at, now), now};
		if (api->store_update(ctx, "parcels", x->scope, x->id, note_reminder, &m)) {
			api->log(ctx, LINLI_LOG_WARN, "parcel %s: reminder not noted: %s", x->id,
				 api->store_last_error(ctx));
			continue;
		}
		char src[LINLI_ID_MAX + 24], details[256];
		snprintf(src, sizeof src, "record:parcels/%s", x->id);
		snprintf(details, sizeof details,
			 "parcel %s in locker %s compartment %lld not picked up %lld h after its "
			 "deposit (free for %lld h): reminder %lld",
			 x->id, x->locker, (long long)x->compartment,
			 (long long)((now - x->deposited_at) / 3600000),
			 (long long)(st->cfg.free_ms / 3600000), (long long)m.n);
		st->reminders++;
		raise_alarm(ctx, st, T_OVERDUE, x->scope, src, details);
	}
	free(d.v);
}

/* ---- the big screen's panel ---- */

struct lboard {
	int64_t now, free_ms, deposited, overdue;
	linli_record *by; /* locker -> {deposited, overdue} */
};

static int board_row(linli_ctx *ctx, const struct linli_row *row, void *ud)
{
	(void)ctx;
	struct lboard *b = ud;
	const char *lk = NULL;
	int64_t at;
	if (api->rec_get_time(row->record, "deposited_at", &at) ||
	    api->rec_get_str(row->record, "locker", &lk, NULL))
		return 0;
	int late = b->now >= at + b->free_ms;
	b->deposited++;
	b->overdue += late;
	linli_record *m = NULL;
	if (api->rec_get_map(b->by, lk, &m) != 0 && api->rec_set_map(b->by, lk, &m) != 0)
		return LINLI_ENOMEM;
	int64_t v = 0;
	api->rec_get_int(m, "deposited", &v);
	api->rec_set_int(m, "deposited", v + 1);
	v = 0;
	api->rec_get_int(m, "overdue", &v);
	api->rec_set_int(m, "overdue", v + late);
	return 0;
}

/*
 * GET /api/v1/apps/lockers/screen: the big screen's lockers panel — within the caller's
 * jurisdiction, the parcels waiting (deposited) and those past their free period
 * (free_hours), in total and per locker. Counts only: never a house, phone or code.
 */
static int route_screen(linli_ctx *ctx, const struct linli_http_req *req, linli_record **reply,
			int *status, char *err, size_t errlen)
{
	(void)status;
	int rc = plugcmd_no_query(api, req, "screen", err, errlen);
	if (rc)
		return rc;
	struct lstate *st = req->ud;
	linli_record *r = api->rec_new();
	struct lboard b = {.now = api->time_now_ms(), .free_ms = st->cfg.free_ms};
	if (!r || api->rec_set_map(r, "lockers", &b.by)) {
		api->rec_free(r);
		return snprintf(err, errlen, "out of memory"), LINLI_ENOMEM;
	}
	struct linli_where w = {"state", "deposited"};
	char cursor[LINLI_CURSOR_MAX] = "";
	do {
		struct linli_query q = {.size = sizeof q,
					.dataset = "parcels",
					.where = &w,
					.n_where = 1,
					.limit = 1000,
					.cursor = cursor};
		rc = api->store_scan(ctx, &q, board_row, &b, cursor);
	} while (rc >= 0 && cursor[0]);
	if (rc < 0) {
		api->rec_free(r);
		snprintf(err, errlen, "screen: %s",
			 rc == LINLI_ENOMEM ? "out of memory" : api->store_last_error(ctx));
		return rc;
	}
	api->rec_set_int(r, "deposited", b.deposited);
	api->rec_set_int(r, "overdue", b.overdue);
	api->rec_set_int(r, "free_hours", st->cfg.free_ms / 3600000);
	*reply = r;
	return 0;
}

/* Every second: overdue parcels (once a minute of the node's clock), a reload. */
static void tick(linli_ctx *ctx, void *ud)
{
	struct lstate *st = ud;
	int64_t now = api->time_now_ms();
	if (!st->last_scan || now - st->last_scan >= SCAN_EVERY || now < st->last_scan) {
		st->last_scan = now;
		overdue_scan(ctx, st, now);
	}
	plugcfg_reload(api, ctx, "lockers", &st->cfg_json, cfg_parse, st, &st->refused_reloads);
}

/* ---- locker events ---- */

static int on_event(linli_ctx *ctx, const struct linli_event *ev, void *ud)
{
	struct lstate *st = ud;
	const char *a = strncmp(ev->topic, "dev/locker/", 11) == 0 ? ev->topic + 11 : NULL;
	const char *b = a ? strchr(a, '/') : NULL;
	char id[LINLI_ID_MAX + 1];
	if (!b || (size_t)(b - a) > LINLI_ID_MAX || strncmp(b, "/event/", 7) != 0)
		return 0;
	memcpy(id, a, (size_t)(b - a));
	id[b - a] = '\0';
	const char *name = b + 7;
	int t = -1;
	bool closed = strcmp(name, "door_closed") == 0;
	for (int i = 0; i < T_N; i++)
		if (event_of[i] && strcmp(event_of[i], name) == 0)
			t = i;
	st->events++;
	if (t < 0 && !closed)
		return 0; /* deposited, picked_up, the locker's own overdue count: records only */
	/* The compartment of the event's details: a number, or its text. */
	linli_record *data = NULL;
	int64_t comp = 0;
	double fc = 0;
	const char *cs = NULL;
	if (api->rec_get_map((linli_record *)ev->payload, "data", &data) == 0 &&
	    api->rec_get_int(data, "compartment", &comp)) {
		if (api->rec_get_float(data, "compartment", &fc) == 0)
			comp = (int64_t)fc;
		else if (api->rec_get_str(data, "compartment", &cs, NULL) == 0)
			comp = strtoll(cs, NULL, 10);
	}
	if (comp < 0 || comp > COMP_MAX)
		comp = 0;
	char src[LINLI_ID_MAX + 8], details[256];
	snprintf(src, sizeof src, "device:%s", id);
	if (t == T_LEFT_OPEN || closed) {
		/* The compartments left open, per locker: its alarm is over with the last. */
		struct locker *l = locker_of(st, id);
		uint8_t bit = (uint8_t)(1u << (comp % 8)), *at = l ? &l->left_open[comp / 8] : NULL;
		if (l && !closed && comp > 0 && !(*at & bit)) {
			*at |= bit;
			l->n_left_open++;
		} else if (l && closed && comp > 0 && (*at & bit)) {
			*at &= (uint8_t)~bit;
			l->n_left_open--;
		} else if (l && closed && comp == 0) { /* which one is not told: all of them */
			memset(l->left_open, 0, sizeof l->left_open);
			l->n_left_open = 0;
		}
		if (closed) {
			st->closed++;
			/* (one left open without its compartment told is over with any close) */
			if (l && l->n_left_open > 0)
				return 0; /* another compartment is still open */
			snprintf(details, sizeof details, "compartment %lld of locker %s closed",
				 (long long)comp, id);
			alarmreq_clear(&st->alarms, ctx, T_LEFT_OPEN, ev->scope, src, details);
			return 0;
		}
	}
	const char *what = t == T_JAMMED ? "jammed" : "left open";
	if ((t == T_LEFT_OPEN || t == T_JAMMED) && comp > 0)
		snprintf(details, sizeof details, "compartment %lld of locker %s %s",
			 (long long)comp, id, what);
	else if (t == T_LEFT_OPEN || t == T_JAMMED)
		snprintf(details, sizeof details, "a compartment of locker %s %s", id, what);
	else if (t == T_FORCED)
		snprintf(details, sizeof details, "locker %s reports it was forced", id);
	else if (t == T_FULL)
		snprintf(details, sizeof details, "locker %s is full", id);
	raise_alarm(ctx, st, t, ev->scope, src, details);
	return 0;
}

/* ---- init and fini ---- */

static void free_state(struct lstate *st)
{
	for (size_t i = 0; i < BUCKETS; i++)
		for (struct locker *l = st->lockers[i], *n; l; l = n) {
			n = l->next;
			free(l);
		}
	while (st->pending)
		pending_free(st->pending);
	free(st->cfg_json);
	sodium_memzero(st->key, sizeof st->key);
	free(st);
}

static int lockers_init(linli_ctx *ctx, const struct linli_api *a)
{
	static const struct plugcmd_action actions[] = {
	    {"lockers.deposit", "operator", NULL, "lockers.courier",
	     "deposit a parcel: a one-time pickup code (couriers: "
	     "the duty lockers.courier)"},
	    {"lockers.pickup", "operator", NULL, NULL, "open a parcel's compartment with its code"},
	    {"lockers.return", "operator", NULL, NULL,
	     "mark a deposited parcel returned to the courier"},
	    {"lockers.list", "operator", NULL, NULL, "list parcels"},
	    {"lockers.stats", "operator", NULL, NULL,
	     "see the counters and configuration of lockers"},
	    {"lockers.screen", "viewer", NULL, NULL,
	     "see the parcels waiting and overdue per locker (counts, the big screen)"},
	};
	static const struct plugcmd_route routes[] = {
	    {"screen", "GET", "screen", "lockers.screen", route_screen}};
	static const struct plugcmd_cmd cmds[] = {
	    {"deposit", "LOCKER COMPARTMENT --house HOUSE [--phone PHONE] [--courier NAME]",
	     "deposit a parcel; its pickup code is shown once, only an HMAC of it is stored",
	     "lockers.deposit", cmd_deposit},
	    {"pickup", "LOCKER CODE", "open the compartment of the parcel with this code",
	     "lockers.pickup", cmd_pickup},
	    {"return", "PARCEL [--scope PATH]", "the courier took the parcel back",
	     "lockers.return", cmd_return},
	    {"list", "[--state deposited|picked_up|returned] [--locker L] [--scope PATH]",
	     "parcels (no codes)", "lockers.list", cmd_list},
	    {"show", "PARCEL [--scope PATH]", "one parcel, with its free period", "lockers.list",
	     cmd_show},
	    {"stats", "", "deposits, pickups, wrong codes, lockouts, alarms, the configuration",
	     "lockers.stats", cmd_stats},
	};
	api = a;
	char err[768] = "";
	bool changed = false, made = false; /* a first load always parses */
	struct lstate *st = calloc(1, sizeof *st);
	int rc = st ? 0 : LINLI_ENOMEM;
	if (!rc && sodium_init() < 0)
		rc = LINLI_EIO;
	if (!rc)
		alarmreq_init(&st->alarms, api, type_names, T_N);
	if (!rc)
		rc = plugcfg_load(&(const struct plugcfg){api, "lockers", err, sizeof err}, ctx,
				  &st->cfg_json, cfg_parse, st, &changed);
	if (!rc)
		rc = secret_load(st->cfg.secret_file, st->key, &made, err, sizeof err);
	if (!rc)
		st->have_key = true;
	if (!rc)
		rc = api->subscribe(ctx, "dev/locker/+/event/#", on_event, st, NULL);
	if (!rc)
		rc = plugcmd_register(api, ctx, actions, PLUGCMD_N(actions), cmds, PLUGCMD_N(cmds),
				      routes, PLUGCMD_N(routes), st, err, sizeof err);
	if (!rc)
		rc = api->timer_add(ctx, 1000, 1000, tick, st, NULL);
	if (rc) {
		api->set_error(ctx, "%s", err[0] ? err : linli_strerror(rc));
		if (st)
			free_state(st);
		return rc;
	}
	state = st;
	api->log(ctx, LINLI_LOG_INFO,
		 "parcel lockers: %s node secret %s; %lld-digit codes, %lld wrong codes within "
		 "%lld s lock a locker out for %lld s; free for %lld h",
		 made ? "made the" : "read the", st->cfg.secret_file, (long long)st->cfg.digits,
		 (long long)st->cfg.max_attempts, (long long)(st->cfg.window_ms / 1000),
		 (long long)(st->cfg.lockout_ms / 1000), (long long)(st->cfg.free_ms / 3600000));
	return 0;
}

static void lockers_fini(linli_ctx *ctx, const struct linli_api *a)
{
	(void)ctx;
	(void)a;
	if (state)
		free_state(state);
	state = NULL;
}

LINLI_PLUGIN(lockers_init, lockers_fini, .name = "lockers", .version = "1.0.0",
	     .family = "public_services",
	     .description = "Parcel lockers: pickup codes kept only as an HMAC under a node secret "
			    "outside the store, wrong-code lockout, overdue reminders, compartment "
			    "events; raised through alarms",
	     .requires = {"alarms"},
	     .capabilities = {"store.read:parcels", "store.write:parcels", "sensitive:parcels",
			      "device.read:locker", "device.command:locker",
			      "bus.subscribe:dev/locker/+/event/#", "bus.publish:alarmreq/raise",
			      "bus.publish:alarmreq/clear"});
