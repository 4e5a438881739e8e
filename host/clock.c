/*
 * clock — see clock.h.
 *
 * Calendar arithmetic is done on day numbers (Howard Hinnant's
 * days_from_civil / civil_from_days), so that neither mktime's
 * normalisation nor its guess at summer time decides what a local time
 * means; the zone itself is only asked one question, localtime_r's offset
 * at an instant. A local time maps to the instant `local - offset` for the
 * offset in force a day before or a day after it; whichever of the two
 * agrees with itself is the answer (both: the repeated hour, take the
 * earlier; neither: the skipped hour, take the offset from before).
 */
#include "clock.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "access.h"
#include "cmd.h"
#include "kernel.h"
#include "linli/error.h"
#include "log.h"
#include "mp.h"
#include "tier_store.h"
#include "util.h"

/* The instants a struct linli_tm can show: 0001-01-01 .. 9999-12-31, in seconds. */
#define MIN_S (-62135596800LL)
#define MAX_S (253402300799LL)
#define DAY_S 86400LL
/* The 1.1 size of struct linli_tm: what every caller since 1.1 passes at least. */
#define TM_SIZE_1_1    (offsetof(struct linli_tm, dst) + sizeof(int32_t))
#define MAX_ADVANCE_MS (100LL * 366 * DAY_S * 1000)

static _Atomic int64_t offset_ms;
static char zone[CLOCK_ZONE_MAX];

int64_t clock_offset_ms(void)
{
	return atomic_load_explicit(&offset_ms, memory_order_relaxed);
}

int clock_advance(int64_t ms)
{
	if (ms < 0 || ms > MAX_ADVANCE_MS - clock_offset_ms())
		return LINLI_EINVAL;
	atomic_fetch_add(&offset_ms, ms);
	return 0;
}

/* ---- the zone ---- */

int clock_zone_check(const char *name, char *why, size_t why_len)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n >= CLOCK_ZONE_MAX)
		return errf(why, why_len, LINLI_EINVAL, "a zone name has 1..%d bytes",
			    CLOCK_ZONE_MAX - 1);
	if (name[0] == '/' || name[n - 1] == '/' || strstr(name, "//"))
		return errf(
		    why, why_len, LINLI_EINVAL,
		    "not a zone name like Asia/Shanghai (no leading, trailing or double /)");
	for (const char *p = name; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= '0' && *p <= '9') || *p == '/' || *p == '_' || *p == '-' || *p == '+'))
			return errf(why, why_len, LINLI_EINVAL,
				    "not a zone name like Asia/Shanghai (letters, digits, / _ - + "
				    "only)");
	const char *dir = getenv("TZDIR");
	if (!dir || !*dir)
		dir = "/usr/share/zoneinfo";
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errf(why, why_len, LINLI_EINVAL,
			    "no such zone file %s (%s; is tzdata installed?)", path,
			    strerror(errno));
	struct stat st;
	char magic[4];
	bool reg = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
	bool tzif = reg && read(fd, magic, 4) == 4 && memcmp(magic, "TZif", 4) == 0;
	close(fd);
	if (!reg)
		return errf(why, why_len, LINLI_EINVAL, "%s is a directory of zones, not a zone",
			    path);
	if (!tzif)
		return errf(why, why_len, LINLI_EINVAL, "%s is not a TZif zone file", path);
	return 0;
}

int clock_zone_apply(const char *name)
{
	char tz[CLOCK_ZONE_MAX + 1];
	snprintf(tz, sizeof tz, ":%s", name);
	if (setenv("TZ", tz, 1) != 0)
		return LINLI_ENOMEM;
	tzset();
	snprintf(zone, sizeof zone, "%s", name);
	return 0;
}

const char *clock_zone(void)
{
	return zone;
}

/* ---- calendar arithmetic on day numbers (day 0 = 1970-01-01) ---- */

static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static int days_in_month(int64_t y, int m)
{
	static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return m == 2 && leap ? 29 : dm[m - 1];
}

static int64_t floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* The zone's offset (local minus UTC, seconds) at instant sec. */
static bool offset_at(int64_t sec, long *off, bool *dst)
{
	time_t t = (time_t)sec;
	struct tm tm;
	if (!localtime_r(&t, &tm))
		return false;
	*off = tm.tm_gmtoff;
	if (dst)
		*dst = tm.tm_isdst > 0;
	return true;
}

int clock_local(int64_t ms, struct linli_tm *out)
{
	if (!out || out->size < TM_SIZE_1_1)
		return LINLI_EINVAL;
	int64_t sec = floor_div(ms, 1000);
	if (sec < MIN_S || sec > MAX_S)
		return LINLI_EINVAL;
	long off;
	bool dst;
	if (!offset_at(sec, &off, &dst))
		return LINLI_EINVAL;
	int64_t local = sec + off, day = floor_div(local, DAY_S), in_day = local - day * DAY_S;
	int64_t y;
	int m, d;
	civil_from_days(day, &y, &m, &d);
	if (y < 1 || y > 9999)
		return LINLI_EINVAL;
	struct linli_tm t = {
	    .size = out->size < sizeof t ? out->size : (uint32_t)sizeof t,
	    .year = (int32_t)y,
	    .month = m,
	    .day = d,
	    .hour = (int32_t)(in_day / 3600),
	    .minute = (int32_t)(in_day / 60 % 60),
	    .second = (int32_t)(in_day % 60),
	    .ms = (int32_t)(ms - sec * 1000),
	    /* day 0 was a Thursday: ISO weekday 4 */
	    .weekday = (int32_t)(((day % 7) + 7 + 3) % 7 + 1),
	    .yearday = (int32_t)(day - days_from_civil(y, 1, 1) + 1),
	    .utc_offset_s = (int32_t)off,
	    .dst = dst,
	};
	memcpy(out, &t, t.size);
	return 0;
}

int clock_from_local(const struct linli_tm *t, int64_t *ms)
{
	if (!t || !ms || t->size < TM_SIZE_1_1 || t->year < 1 || t->year > 9999 || t->month < 1 ||
	    t->month > 12 || t->day < 1 || t->day > days_in_month(t->year, t->month) ||
	    t->hour < 0 || t->hour > 23 || t->minute < 0 || t->minute > 59 || t->second < 0 ||
	    t->second > 59 || t->ms < 0 || t->ms > 999)
		return LINLI_EINVAL;
	int64_t local = days_from_civil(t->year, t->month, t->day) * DAY_S + t->hour * 3600 +
			t->minute * 60 + t->second;
	long before, after, o;
	if (!offset_at(local - DAY_S, &before, NULL) || !offset_at(local + DAY_S, &after, NULL))
		return LINLI_EINVAL;
	int64_t a = local - before, b = local - after, sec;
	bool a_ok = offset_at(a, &o, NULL) && o == before;
	bool b_ok = offset_at(b, &o, NULL) && o == after;
	if (a_ok && b_ok)
		sec = a < b ? a : b; /* the repeated hour: the earlier */
	else if (b_ok)
		sec = b;
	else
		sec = a; /* valid, or the skipped hour: the offset from before the change */
	*ms = sec * 1000 + t->ms;
	return 0;
}

int clock_day_start(int64_t ms, int64_t days, int64_t *out)
{
	struct linli_tm t = {.size = sizeof t};
	if (!out || days < -3660000 || days > 3660000 || clock_local(ms, &t) != 0)
		return LINLI_EINVAL;
	int64_t y;
	int m, d;
	civil_from_days(days_from_civil(t.year, t.month, t.day) + days, &y, &m, &d);
	if (y < 1 || y > 9999)
		return LINLI_EINVAL;
	struct linli_tm s = {.size = sizeof s, .year = (int32_t)y, .month = m, .day = d};
	return clock_from_local(&s, out);
}

void clock_local_text(int64_t ms, char *out, size_t n)
{
	struct linli_tm t = {.size = sizeof t};
	if (clock_local(ms, &t) != 0) {
		snprintf(out, n, "?");
		return;
	}
	int off = t.utc_offset_s < 0 ? -t.utc_offset_s : t.utc_offset_s;
	snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", t.year, t.month, t.day, t.hour,
		 t.minute, t.second, t.utc_offset_s < 0 ? '-' : '+', off / 3600, off / 60 % 60);
}

/* ---- parsing what the console sends ---- */

/* Exactly n digits at *p (advanced past them). */
static bool digits(const char **p, int n, int *v)
{
	*v = 0;
	for (int i = 0; i < n; i++, (*p)++) {
		if (**p < '0' || **p > '9')
			return false;
		*v = *v * 10 + (**p - '0');
	}
	return true;
}

int clock_parse_duration(const char *s, int64_t *ms, char *err, size_t errlen)
{
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = {{"ms", 1}, {"d", DAY_S * 1000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}};
	const int64_t max = 3650 * DAY_S * 1000;
	int64_t total = 0;
	const char *p = s;
	if (!*p)
		return errf(err, errlen, LINLI_EINVAL,
			    "an empty duration (e.g. 90s, 2h, 3d, 1h30m)");
	if (*p == '-')
		return errf(err, errlen, LINLI_EINVAL, "'%.64s': the test clock only moves forward",
			    s);
	while (*p) {
		if (*p < '0' || *p > '9')
			return errf(err, errlen, LINLI_EINVAL,
				    "'%.64s' is not a duration: a number expected at '%.16s' (e.g. "
				    "90s, 2h, 3d, 1500ms, 1h30m)",
				    s, p);
		int64_t n = 0;
		while (*p >= '0' && *p <= '9') {
			n = n * 10 + (*p++ - '0');
			if (n > max)
				return errf(err, errlen, LINLI_EINVAL,
					    "'%.64s' is longer than 3650 days", s);
		}
		size_t i = 0, nu = sizeof units / sizeof units[0];
		while (i < nu && strncmp(p, units[i].unit, strlen(units[i].unit)) != 0)
			i++;
		if (i == nu)
			return errf(err, errlen, LINLI_EINVAL,
				    "'%.64s': %" PRId64 " needs a unit (d, h, m, s or ms)", s, n);
		p += strlen(units[i].unit);
		if (n > max / units[i].ms) /* before multiplying: no overflow */
			return errf(err, errlen, LINLI_EINVAL, "'%.64s' is longer than 3650 days",
				    s);
		total += n * units[i].ms;
		if (total > max)
			return errf(err, errlen, LINLI_EINVAL, "'%.64s' is longer than 3650 days",
				    s);
	}
	*ms = total;
	return 0;
}

int clock_parse_time(const char *s, int64_t *ms, char *err, size_t errlen)
{
	const char *p = s;
	bool all_digits = *p != '\0';
	for (const char *q = s; *q; q++)
		all_digits &= *q >= '0' && *q <= '9';
	if (all_digits && strlen(s) <= 15) { /* ms since the epoch */
		*ms = strtoll(s, NULL, 10);
		return 0;
	}
	struct linli_tm t = {.size = sizeof t};
	int off_s = 0;
	bool has_off = false;
	if (!digits(&p, 4, &t.year) || *p++ != '-' || !digits(&p, 2, &t.month) || *p++ != '-' ||
	    !digits(&p, 2, &t.day))
		goto bad;
	if (*p == 'T' || *p == ' ') {
		p++;
		if (!digits(&p, 2, &t.hour) || *p++ != ':' || !digits(&p, 2, &t.minute))
			goto bad;
		if (*p == ':') {
			p++;
			if (!digits(&p, 2, &t.second))
				goto bad;
			if (*p == '.') {
				p++;
				int f = 0, n = 0;
				while (*p >= '0' && *p <= '9' && n < 3) {
					f = f * 10 + (*p++ - '0');
					n++;
				}
				if (n == 0 || (*p >= '0' && *p <= '9'))
					goto bad;
				t.ms = f * (n == 1 ? 100 : n == 2 ? 10 : 1);
			}
		}
		if (*p == 'Z') {
			p++;
			has_off = true;
		} else if (*p == '+' || *p == '-') {
			int sign = *p++ == '-' ? -1 : 1, h, m;
			if (!digits(&p, 2, &h))
				goto bad;
			if (*p == ':')
				p++;
			if (!digits(&p, 2, &m) || h > 23 || m > 59)
				goto bad;
			off_s = sign * (h * 3600 + m * 60);
			has_off = true;
		}
	}
	if (*p)
		goto bad;
	if (!has_off) /* the node's local time */
		return clock_from_local(&t, ms) == 0
			   ? 0
			   : errf(err, errlen, LINLI_EINVAL, "'%.64s' is not a valid date and time",
				  s);
	/* A fixed offset: the calendar fields are checked as such, then shifted. */
	if (t.year < 1 || t.year > 9999 || t.month < 1 || t.month > 12 || t.day < 1 ||
	    t.day > days_in_month(t.year, t.month) || t.hour > 23 || t.minute > 59 || t.second > 59)
		goto bad;
	int64_t sec = days_from_civil(t.year, t.month, t.day) * DAY_S + t.hour * 3600 +
		      t.minute * 60 + t.second - off_s;
	*ms = sec * 1000 + t.ms;
	return 0;
bad:
	return errf(err, errlen, LINLI_EINVAL,
		    "'%.64s' is not a time: give ms since the epoch or ISO 8601 "
		    "(2026-12-06T08:00:00Z, 2026-12-06T08:00:00+08:00, 2026-12-06T08:00 local, "
		    "2026-12-06)",
		    s);
}

/* ---- the `clock` command ---- */

#define CLOCK_USAGE "[set TIME | advance DURATION]"

static void pack_clock(struct kernel *k, msgpack_packer *pk, int64_t advanced)
{
	int64_t now = wall_ms();
	char utc[40], local[48];
	utc_text(now, utc, sizeof utc);
	clock_local_text(now, local, sizeof local);
	msgpack_pack_map(pk, advanced >= 0 ? 6 : 5);
	mp_kv_int(pk, "now_ms", now);
	mp_kv_str(pk, "utc", utc);
	mp_kv_str(pk, "local", local);
	mp_kv_str(pk, "time_zone", k->cfg.time_zone);
	mp_kv_int(pk, "offset_ms", clock_offset_ms());
	if (advanced >= 0)
		mp_kv_int(pk, "advanced_ms", advanced);
}

struct answer {
	struct cmd_call *call;
	uint64_t timer;
	int64_t advanced;
};

/*
 * The reply waits for a zero-delay timer added after the jump: it sorts
 * after every timer due up to the new now, so the console returns once
 * those have fired (what they committed may still be in the open batch).
 */
static void answer_fire(struct kernel *k, void *arg)
{
	struct answer *a = arg;
	struct cmd_call *call = a->call;
	call->on_cancel = NULL;
	pack_clock(k, &call->pk, a->advanced);
	free(a);
	cmd_finish(call, 0);
}

static void answer_cancel(struct cmd_call *call, void *arg)
{
	struct answer *a = arg;
	kernel_timer_cancel(call->k, a->timer);
	free(a);
}

static int cmd_clock(struct cmd_call *call, void *ud)
{
	(void)ud;
	struct kernel *k = call->k;
	if (!k->test_clock)
		return cmd_fail(call, LINLI_ENOTSUP,
				"clock: linlid runs without --test-clock: the kernel keeps the "
				"real time (the test clock is for test nodes only)");
	if (call->argc == 1) {
		pack_clock(k, &call->pk, -1);
		return 0;
	}
	const char *sub = call->argv[1];
	if (call->argc != 3 || (strcmp(sub, "set") != 0 && strcmp(sub, "advance") != 0))
		return cmd_fail(call, LINLI_EINVAL, "clock: usage: clock %s", CLOCK_USAGE);
	int64_t now = wall_ms(), delta;
	char why[512];
	if (strcmp(sub, "advance") == 0) {
		if (clock_parse_duration(call->argv[2], &delta, why, sizeof why) != 0)
			return cmd_fail(call, LINLI_EINVAL, "clock advance: %s", why);
	} else {
		int64_t to;
		if (clock_parse_time(call->argv[2], &to, why, sizeof why) != 0)
			return cmd_fail(call, LINLI_EINVAL, "clock set: %s", why);
		char a[48], b[48];
		if (to < now) {
			clock_local_text(to, a, sizeof a);
			clock_local_text(now, b, sizeof b);
			return cmd_fail(call, LINLI_EINVAL,
					"clock set: %s is before the kernel's now %s: the test "
					"clock only moves forward",
					a, b);
		}
		delta = to - now;
	}
	if (clock_advance(delta) != 0)
		return cmd_fail(call, LINLI_EINVAL,
				"clock %s: %s would take the clock past 100 years ahead", sub,
				call->argv[2]);
	char local[48], detail[160];
	clock_local_text(wall_ms(), local, sizeof local);
	snprintf(detail, sizeof detail, "%s %.40s: +%" PRId64 " ms, now %s", sub, call->argv[2],
		 delta, local);
	log_info("clock", "test clock moved by %s: %s", call->who ? call->who->name : "?", detail);
	if (k->tiers)
		tiers_audit(k, call->who, "store.admin", k->cfg.node_path, "clock", "allowed",
			    detail);
	struct answer *a = calloc(1, sizeof *a);
	if (!a || !(a->timer = kernel_timer_add(k, 0, 0, answer_fire, a))) {
		free(a);
		pack_clock(k, &call->pk, delta);
		return 0;
	}
	a->call = call;
	a->advanced = delta;
	call->on_cancel = answer_cancel;
	call->cancel_arg = a;
	return CMD_PENDING;
}

int clock_cmds_register(struct kernel *k)
{
	return cmd_register(k->cmds, "clock", NULL, CLOCK_USAGE,
			    "the test clock: show it, set it or move it forward (linlid "
			    "--test-clock only)",
			    cmd_clock, NULL, k);
}
