/*
 * watchdog — what plugin code runs now on the kernel thread, and a thread
 * that watches it.
 *
 * Owns: the "what runs now" record, set by wd_enter / wd_leave around every
 * call into a C plugin's code (its load, init, fini, commands, timers, bus
 * handlers, ...); the small MAP_SHARED file <data_dir>/plugins.running that
 * holds it, so that it outlives the process (a crash, kill -9, _exit) and the
 * next start knows which plugin was running when linlid died; the watchdog
 * thread, which logs a call that runs longer than watchdog.warn_ms (again
 * every few seconds while it lasts) and ends a daemon that has not stopped
 * watchdog.stop_grace_ms after SIGTERM (stopped: its loop ended and every
 * plugin's fini ran, when linlid calls wd_close); and the exit hook that turns exit()
 * from plugin code into a logged, non-zero _exit.
 *
 * Must never lock, allocate, or reach the disk synchronously in wd_enter /
 * wd_leave (they run around every plugin call: a few stores into the mapped
 * page and one clock read; no msync, no fsync), and never change anything of
 * the kernel from the watchdog thread: it reads the record and logs, and its
 * only action is _exit.
 *
 * The record is a seqlock: the kernel thread (the only writer) makes the
 * sequence odd, writes, makes it even; a reader retries until it copied a
 * frame under one even sequence. The state here is process-wide on purpose:
 * an exit hook has nowhere else to look.
 */
#ifndef LINLI_WATCHDOG_H
#define LINLI_WATCHDOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "linli/plugin.h"

/* linlid's exit statuses for a plugin that ended it (README, "linlid"). */
#define WD_EXIT_PLUGIN 3 /* plugin code called exit() */
#define WD_EXIT_STUCK  4 /* not stopped within watchdog.stop_grace_ms of SIGTERM */

#define WD_WHAT_MAX   24
#define WD_DETAIL_MAX 96
#define WD_REPEAT_MS  5000 /* a call still running is logged again this often */

/* One call into plugin code: what wd_enter records and saves. */
struct wd_frame {
	uint64_t since_ms; /* kernel_now_ms() at entry */
	uint64_t num;	   /* a number that names it (a timer's id), 0: none */
	uint32_t depth;	   /* calls into plugin code nested; 0: none runs */
	uint32_t skip;	   /* (saved frames) the call was not on the kernel thread */
	char plugin[LINLI_NAME_MAX];
	char what[WD_WHAT_MAX];	    /* "init", "timer", "command", "event handler", ... */
	char detail[WD_DETAIL_MAX]; /* the command's words, the event's topic, ... or "" */
};

/*
 * wd_enter — plugin `plugin` is about to run its `what` (a string literal or
 * anything that outlives nothing: it is copied), with an optional `detail`
 * (NULL: none) and `num` (0: none). The record as it was goes to *saved for
 * wd_leave: calls nest (a handler that publishes runs other plugins'
 * handlers). Kernel thread only; from another thread both are no-ops.
 */
void wd_enter(struct wd_frame *saved, const char *plugin, const char *what, const char *detail,
	      uint64_t num);
void wd_leave(const struct wd_frame *saved);

/* A copy of the record as it is now (any thread). */
void wd_current(struct wd_frame *out);

/* "its timer 7", "its command 'good hello'", "its init": for log lines. */
void wd_describe(const struct wd_frame *f, char *buf, size_t len);

/*
 * wd_open — map <data_dir>/plugins.running (made if need be). What it held
 * is kept for wd_previous: a frame with depth > 0 names the plugin that was
 * running when the last linlid of this data dir died. The record then
 * starts empty. 0, or LINLI_EIO with err (the daemon then runs with the
 * record in memory only: no crash-loop quarantine).
 */
int wd_open(const char *data_dir, char *err, size_t errlen);
/* What the file held at wd_open (depth 0: nothing ran, or no file); NULL before wd_open. */
const struct wd_frame *wd_previous(void);
/* The pid of the linlid that wrote it, 0 if unknown. */
long wd_previous_pid(void);

/*
 * wd_start — start the watchdog thread and arm the exit hook; the calling
 * thread is the kernel thread. warn_ms: log a plugin call that runs longer
 * (0: never); grace_ms: after wd_term, _exit(WD_EXIT_STUCK) if wd_close has
 * not come by then (0: never). 0 or LINLI_E*.
 */
int wd_start(unsigned warn_ms, unsigned grace_ms);
/* New limits (SIGHUP). Any thread. */
void wd_configure(unsigned warn_ms, unsigned grace_ms);
/* Signal sig (SIGTERM, SIGINT) asked for a stop: the grace period starts. Any thread; the first
 * counts. */
void wd_term(int sig);
/*
 * wd_close — a clean stop: stop the thread, disarm the hook, clear the
 * record and unmap it. Kernel thread, after the last plugin code ran.
 */
void wd_close(void);

#endif
