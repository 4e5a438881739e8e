/*
 * clock — the kernel's clock and the node's calendar.
 *
 * Owns two pieces of state that are process-wide by nature, as the clocks
 * and the C library's time zone are:
 *  - the test clock: an offset in ms added to every clock the kernel
 *    schedules or records by (wall_ms in util.c, kernel_clock_ms in
 *    kernel.c). It is 0 unless linlid runs with --test-clock and an admin
 *    moved it with `linli clock`; it only grows, so no clock ever runs back.
 *  - the node's time zone (`time_zone` in linli.cfg, Asia/Shanghai by
 *    default, never the TZ linlid was started with): set as the process's
 *    TZ at start and on reload, read by localtime_r for the conversions
 *    between ms and local calendar time (struct linli_tm) below.
 * Also the `clock` console command. Never changes the system's clock; logs
 * stay in UTC.
 */
#ifndef LINLI_CLOCK_H
#define LINLI_CLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "linli/time.h"

struct kernel;

#define CLOCK_ZONE_MAX 64 /* a zone's name, with its NUL */

/* The test clock's offset from the real clocks, ms (>= 0). Any thread. */
int64_t clock_offset_ms(void);

/*
 * clock_advance — move every kernel clock forward by ms (>= 0; at most 100
 * years in all). Kernel thread (the `clock` command). 0, or LINLI_EINVAL.
 * The kernel's timers due meanwhile fire at the loop's next turn.
 */
int clock_advance(int64_t ms);

/*
 * clock_zone_check — is `name` a time zone this machine knows: an IANA name
 * ("Asia/Shanghai", "Europe/Berlin", "UTC") whose TZif file is under $TZDIR
 * or /usr/share/zoneinfo? 0, or LINLI_EINVAL with why (why_len bytes) saying
 * what is wrong ("no such zone file /usr/share/zoneinfo/Mars/Olympus").
 */
int clock_zone_check(const char *name, char *why, size_t why_len);

/*
 * clock_zone_apply — make `name` (checked) the zone of the conversions:
 * TZ=":name" and tzset. Call it first before any thread starts (the start
 * of main): later calls then replace an existing TZ entry, which glibc does
 * in place, so threads converting meanwhile see the old zone or the new.
 * Kernel thread. 0, or LINLI_ENOMEM.
 */
int clock_zone_apply(const char *name);

/* The zone applied last ("UTC" before any); its contents change with a reload. */
const char *clock_zone(void);

/*
 * clock_local — ms since the epoch in the applied zone. out->size must be
 * at least the 1.1 size of struct linli_tm; only what fits is written.
 * 0, or LINLI_EINVAL (no out, a small size, a year outside 1..9999).
 * Any thread.
 */
int clock_local(int64_t ms, struct linli_tm *out);

/*
 * clock_from_local — the instant of a local calendar time (year, month,
 * day, hour, minute, second, ms of t; the output-only members are ignored).
 * A time that does not exist (the hour skipped when summer time begins) is
 * taken with the offset before the change, which moves it forward by the
 * gap (02:30 → 03:30); a time that exists twice (the hour repeated when it
 * ends) gives the earlier instant (add 3600000 for the later). 0, or
 * LINLI_EINVAL (a field out of range, 31 April, 29 February of a common
 * year, a small size). Any thread.
 */
int clock_from_local(const struct linli_tm *t, int64_t *ms);

/*
 * clock_day_start — the first instant of the local day `days` days after
 * the one that holds ms (0: that day, 1: the next, -1: the one before):
 * local midnight, or the first instant after it when a change of offset
 * skips midnight. 0, or LINLI_EINVAL (out of range). Any thread.
 */
int clock_day_start(int64_t ms, int64_t days, int64_t *out);

/* ms as local time text to the second, "2026-12-05T18:35:00+08:00". */
void clock_local_text(int64_t ms, char *out, size_t n);

/*
 * clock_parse_duration — "90s", "2h", "3d", "1500ms", "1h30m": numbers
 * each with its unit (d, h, m, s, ms), at most 3650 days. 0 with *ms, or
 * LINLI_EINVAL with err naming the text and what is wrong.
 */
int clock_parse_duration(const char *s, int64_t *ms, char *err, size_t errlen);

/*
 * clock_parse_time — ms since the epoch ("1767225600000"), or ISO 8601:
 * "2026-12-06T08:00:00Z", "...+08:00", "2026-12-06 08:00:00.250" and
 * "2026-12-06T08:00" (no offset: the node's local time), "2026-12-06"
 * (local midnight). 0 with *ms, or LINLI_EINVAL with err naming the text.
 */
int clock_parse_time(const char *s, int64_t *ms, char *err, size_t errlen);

/* Register `clock` (refused unless k->test_clock). */
int clock_cmds_register(struct kernel *k);

#endif
