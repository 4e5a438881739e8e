/*
 * watchdog — see watchdog.h.
 *
 * Why a mapped file and not a write per call: a plugin call must stay cheap
 * (a table call costs tens of nanoseconds), so the record is plain stores
 * into a MAP_SHARED page. The page belongs to the page cache, not to the
 * process: when linlid dies in any way (SIGSEGV, abort, kill -9, _exit) the
 * last stores are still in the file for the next start to read. Only a
 * power cut loses them, and then no plugin is to blame.
 */
#include "watchdog.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kernel.h"
#include "linli/error.h"
#include "log.h"
#include "util.h"

#define WD_MAGIC   "LINLIRUN"
#define WD_VERSION 1
#define WD_TICK_MS 100 /* the watchdog thread looks this often */

/* The file's layout (one page): a header, then the frame under its sequence. */
struct wd_file {
	char magic[8];
	uint32_t version, size; /* WD_VERSION, sizeof(struct wd_file) */
	int64_t pid;		/* the linlid that writes it */
	_Atomic uint64_t seq;	/* odd while the frame is being written */
	struct wd_frame cur;
};

static struct wd_file mem_rec;	       /* before wd_open, after wd_close, or when it failed */
static struct wd_file *rec = &mem_rec; /* set before the watchdog thread starts */
static size_t map_len;		       /* > 0 while the file is mapped */
static struct wd_frame prev;	       /* what the file held at wd_open */
static long prev_pid;
static bool opened;

static pthread_t kthread; /* the kernel thread: the only writer */
static _Atomic bool have_kthread;
static _Atomic unsigned warn_limit, grace_limit;
static _Atomic uint64_t term_at; /* kernel_now_ms() of the first wd_term, 0: none */
static _Atomic int term_sig;	 /* its signal */
static _Atomic bool armed;	 /* the exit hook acts */
static pid_t armed_pid;
static bool hook_added;

static pthread_t wthread;
static bool wthread_on;
static pthread_mutex_t wmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wcv;
static bool wstop;

static void copy_str(char *dst, const char *src, size_t n)
{
	size_t l = src ? strnlen(src, n - 1) : 0;
	if (l)
		memcpy(dst, src, l);
	dst[l] = '\0';
}

/* The writer's half of the seqlock (kernel thread only). */
static void write_frame(const struct wd_frame *f)
{
	struct wd_file *r = rec;
	uint64_t s = atomic_load_explicit(&r->seq, memory_order_relaxed);
	atomic_store_explicit(&r->seq, s + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	r->cur = *f;
	atomic_store_explicit(&r->seq, s + 2, memory_order_release);
}

/* The reader's half: a copy made under one even sequence (any thread). */
static void read_frame(struct wd_frame *out)
{
	struct wd_file *r = rec;
	for (int tries = 0; tries < 1000; tries++) {
		uint64_t s1 = atomic_load_explicit(&r->seq, memory_order_acquire);
		if (s1 & 1)
			continue;
		memcpy(out, (const void *)&r->cur, sizeof *out);
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&r->seq, memory_order_relaxed) == s1)
			break;
	}
	out->plugin[sizeof out->plugin - 1] = '\0';
	out->what[sizeof out->what - 1] = '\0';
	out->detail[sizeof out->detail - 1] = '\0';
}

void wd_current(struct wd_frame *out)
{
	read_frame(out);
}

static bool off_thread(void)
{
	return atomic_load_explicit(&have_kthread, memory_order_relaxed) &&
	       !pthread_equal(pthread_self(), kthread);
}

void wd_enter(struct wd_frame *saved, const char *plugin, const char *what, const char *detail,
	      uint64_t num)
{
	if (off_thread()) {
		saved->skip = 1;
		return;
	}
	*saved = rec->cur; /* the only writer reads its own stores */
	saved->skip = 0;
	struct wd_frame f;
	f.since_ms = kernel_now_ms();
	f.num = num;
	f.depth = saved->depth + 1;
	f.skip = 0;
	copy_str(f.plugin, plugin, sizeof f.plugin);
	copy_str(f.what, what, sizeof f.what);
	copy_str(f.detail, detail, sizeof f.detail);
	write_frame(&f);
}

void wd_leave(const struct wd_frame *saved)
{
	if (saved->skip || off_thread())
		return;
	write_frame(saved);
}

void wd_describe(const struct wd_frame *f, char *buf, size_t len)
{
	if (f->num)
		snprintf(buf, len, "its %s %llu", f->what, (unsigned long long)f->num);
	else if (f->detail[0] && strcmp(f->what, "command") == 0)
		snprintf(buf, len, "its command '%s'", f->detail);
	else if (f->detail[0])
		snprintf(buf, len, "its %s (%s)", f->what, f->detail);
	else
		snprintf(buf, len, "its %s", f->what);
}

int wd_open(const char *data_dir, char *err, size_t errlen)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/plugins.running", data_dir);
	if (map_len) { /* opened again (tests): the old mapping goes, its record stays */
		munmap(rec, map_len);
		map_len = 0;
		rec = &mem_rec;
	}
	memset(&prev, 0, sizeof prev);
	prev_pid = 0;
	opened = true;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0)
		return errf(err, errlen, LINLI_EIO, "cannot open %s: %s", path, strerror(errno));
	struct wd_file old;
	ssize_t n = pread(fd, &old, sizeof old, 0);
	if (n == (ssize_t)sizeof old && memcmp(old.magic, WD_MAGIC, sizeof old.magic) == 0 &&
	    old.version == WD_VERSION && old.size == sizeof old) {
		prev = old.cur;
		prev.plugin[sizeof prev.plugin - 1] = '\0';
		prev.what[sizeof prev.what - 1] = '\0';
		prev.detail[sizeof prev.detail - 1] = '\0';
		if (!prev.plugin[0])
			prev.depth = 0;
		prev_pid = (long)old.pid;
	}
	size_t len = (size_t)sysconf(_SC_PAGESIZE);
	if (len < sizeof(struct wd_file))
		len = sizeof(struct wd_file);
	void *m = MAP_FAILED;
	if (ftruncate(fd, (off_t)len) == 0)
		m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	int e = errno;
	close(fd);
	if (m == MAP_FAILED)
		return errf(err, errlen, LINLI_EIO, "cannot map %s: %s", path, strerror(e));
	struct wd_file *r = m;
	memset(r, 0, sizeof *r);
	memcpy(r->magic, WD_MAGIC, sizeof r->magic);
	r->version = WD_VERSION;
	r->size = sizeof *r;
	r->pid = (int64_t)getpid();
	rec = r;
	map_len = len;
	return 0;
}

const struct wd_frame *wd_previous(void)
{
	return opened ? &prev : NULL;
}

long wd_previous_pid(void)
{
	return prev_pid;
}

/* ---- the exit hook ---- */

/*
 * on_exit, not atexit: it is handed the status. Registered after the
 * sanitizers' own hooks, so it runs before them; _exit skips the rest (and
 * LeakSanitizer's report, which would only list what the plugin left).
 */
static void exit_hook(int status, void *arg)
{
	(void)arg;
	if (!atomic_load(&armed) || getpid() != armed_pid)
		return; /* linlid's own exit, or a child process */
	bool on_kernel = pthread_equal(pthread_self(), kthread);
	struct wd_frame f;
	read_frame(&f);
	if (on_kernel && f.depth == 0)
		return; /* linlid itself ends (main returned) */
	char what[WD_WHAT_MAX + WD_DETAIL_MAX + 32] = "";
	if (f.depth)
		wd_describe(&f, what, sizeof what);
	if (on_kernel)
		log_error("plugins",
			  "plugin %s called exit(%d) in %s: ending linlid with status %d", f.plugin,
			  status, what, WD_EXIT_PLUGIN);
	else if (f.depth)
		log_error("plugins",
			  "exit(%d) called on a thread other than the kernel thread (a plugin's "
			  "own thread?) while plugin %s ran %s: ending linlid with status %d",
			  status, f.plugin, what, WD_EXIT_PLUGIN);
	else
		log_error("plugins",
			  "exit(%d) called on a thread other than the kernel thread (a plugin's "
			  "own thread?): ending linlid with status %d",
			  status, WD_EXIT_PLUGIN);
	_exit(WD_EXIT_PLUGIN);
}

/* ---- the watchdog thread ---- */

struct wd_seen {
	bool warning; /* f was logged as long-running */
	struct wd_frame f;
	uint64_t next_log;
};

static bool same_call(const struct wd_frame *a, const struct wd_frame *b)
{
	return a->depth == b->depth && a->since_ms == b->since_ms &&
	       strcmp(a->plugin, b->plugin) == 0 && strcmp(a->what, b->what) == 0;
}

static void look(struct wd_seen *s)
{
	struct wd_frame f;
	read_frame(&f);
	uint64_t now = kernel_now_ms();
	char what[WD_WHAT_MAX + WD_DETAIL_MAX + 32];
	bool same = s->warning && f.depth && same_call(&f, &s->f);
	if (s->warning && !same) {
		wd_describe(&s->f, what, sizeof what);
		log_info("plugins", "plugin %s: %s returned after about %.1f s", s->f.plugin, what,
			 (double)(now - s->f.since_ms) / 1000.0);
		s->warning = false;
	}
	unsigned warn = atomic_load(&warn_limit);
	if (f.depth && warn && now >= f.since_ms && now - f.since_ms >= warn) {
		wd_describe(&f, what, sizeof what);
		if (!same) {
			log_warn(
			    "plugins",
			    "plugin %s has been running %s for %.1f s: the kernel thread waits "
			    "for it (watchdog.warn_ms = %u)",
			    f.plugin, what, (double)(now - f.since_ms) / 1000.0, warn);
			s->warning = true;
			s->f = f;
			s->next_log = now + WD_REPEAT_MS;
		} else if (now >= s->next_log) {
			log_warn("plugins", "plugin %s is still running %s, for %.1f s now",
				 f.plugin, what, (double)(now - f.since_ms) / 1000.0);
			s->next_log = now + WD_REPEAT_MS;
		}
	}
	uint64_t t = atomic_load(&term_at);
	unsigned grace = atomic_load(&grace_limit);
	if (t && grace && now >= t && now - t >= grace) { /* t may be newer than now */
		const char *sig = sigabbrev_np(atomic_load(&term_sig));
		sig = sig ? sig : "TERM";
		if (f.depth) {
			wd_describe(&f, what, sizeof what);
			log_error("kernel",
				  "not stopped %.1f s after SIG%s (watchdog.stop_grace_ms = %u): "
				  "plugin %s has been running %s for %.1f s; ending linlid with "
				  "status %d",
				  (double)(now - t) / 1000.0, sig, grace, f.plugin, what,
				  (double)(now - f.since_ms) / 1000.0, WD_EXIT_STUCK);
		} else
			log_error("kernel",
				  "not stopped %.1f s after SIG%s (watchdog.stop_grace_ms = %u), "
				  "with no plugin code running; ending linlid with status %d",
				  (double)(now - t) / 1000.0, sig, grace, WD_EXIT_STUCK);
		_exit(WD_EXIT_STUCK);
	}
}

static void *wd_main(void *arg)
{
	(void)arg;
	struct wd_seen seen = {0};
	pthread_mutex_lock(&wmu);
	while (!wstop) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += WD_TICK_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&wcv, &wmu, &ts);
		if (wstop)
			break;
		pthread_mutex_unlock(&wmu);
		look(&seen);
		pthread_mutex_lock(&wmu);
	}
	pthread_mutex_unlock(&wmu);
	return NULL;
}

void wd_configure(unsigned warn_ms, unsigned grace_ms)
{
	atomic_store(&warn_limit, warn_ms);
	atomic_store(&grace_limit, grace_ms);
}

int wd_start(unsigned warn_ms, unsigned grace_ms)
{
	kthread = pthread_self();
	atomic_store(&have_kthread, true);
	wd_configure(warn_ms, grace_ms);
	armed_pid = getpid();
	if (!hook_added) {
		if (on_exit(exit_hook, NULL) != 0)
			return LINLI_ENOMEM;
		hook_added = true;
	}
	atomic_store(&armed, true);
	if (wthread_on)
		return 0;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	int rc = pthread_cond_init(&wcv, &ca);
	pthread_condattr_destroy(&ca);
	if (rc)
		return LINLI_ENOMEM;
	wstop = false;
	if (pthread_create(&wthread, NULL, wd_main, NULL) != 0) {
		pthread_cond_destroy(&wcv);
		return LINLI_ENOMEM;
	}
	wthread_on = true;
	return 0;
}

void wd_term(int sig)
{
	uint64_t none = 0;
	int no_sig = 0;
	atomic_compare_exchange_strong(&term_sig, &no_sig, sig);
	atomic_compare_exchange_strong(&term_at, &none, kernel_now_ms());
}

void wd_close(void)
{
	if (wthread_on) {
		pthread_mutex_lock(&wmu);
		wstop = true;
		pthread_cond_signal(&wcv);
		pthread_mutex_unlock(&wmu);
		pthread_join(wthread, NULL);
		pthread_cond_destroy(&wcv);
		wthread_on = false;
	}
	atomic_store(&armed, false);
	struct wd_frame none;
	memset(&none, 0, sizeof none);
	if (!off_thread())
		write_frame(&none);
	if (map_len) {
		munmap(rec, map_len);
		map_len = 0;
	}
	rec = &mem_rec;
}
