/*
 * linli/time.h — local calendar time of the node, since 1.1.
 *
 * Times cross the SDK as int64_t milliseconds since 1970-01-01T00:00:00Z
 * (api->time_now_ms). The node's time zone (`time_zone` in linli.cfg,
 * Asia/Shanghai unless set; never the process's TZ) turns them into the
 * calendar people live by: api->time_local fills a struct linli_tm,
 * api->time_from_local reads one back, api->time_day_start finds local
 * midnights (linli/api.h). Included by api.h.
 */
#ifndef LINLI_TIME_H
#define LINLI_TIME_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * struct linli_tm — one instant as the node's local calendar shows it,
 * since 1.1. Set `size` to sizeof(struct linli_tm) before a call; the kernel
 * fills (time_local) or reads (time_from_local) only the members that fit.
 * Unlike C's struct tm, months and weekdays count from 1 and the year is
 * the year itself.
 */
struct linli_tm {
	uint32_t size;	      /* sizeof(struct linli_tm) as the caller knows it */
	int32_t year;	      /* 1..9999, e.g. 2026 */
	int32_t month;	      /* 1..12 */
	int32_t day;	      /* 1..31 */
	int32_t hour;	      /* 0..23 */
	int32_t minute;	      /* 0..59 */
	int32_t second;	      /* 0..59 (no leap seconds) */
	int32_t ms;	      /* 0..999 */
	int32_t weekday;      /* 1 = Monday .. 7 = Sunday (ISO 8601, as in China); output only */
	int32_t yearday;      /* 1..366, 1 = 1 January; output only */
	int32_t utc_offset_s; /* local minus UTC in seconds (28800 for +08:00); output only */
	int32_t dst;	      /* 1 while daylight saving time is in effect, else 0; output only */
};

#ifdef __cplusplus
}
#endif

#endif
