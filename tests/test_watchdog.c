/*
 * Unit tests of host/watchdog.c: nested records restore what ran before;
 * the record in <dir>/plugins.running outlives a process killed with
 * SIGKILL, and a clean close clears it; exit() from plugin code (on the
 * kernel thread or another one) ends with WD_EXIT_PLUGIN and a line naming
 * the plugin, while the process's own exit keeps its status; the watchdog
 * thread names a long call and ends a stop that does not come within the
 * grace period. Processes that die on purpose are forked children; their
 * log (stderr) goes to a file the parent reads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "watchdog.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/linli-wd-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char path[128];
	snprintf(path, sizeof path, "%s/plugins.running", dir);
	unlink(path);
	snprintf(path, sizeof path, "%s/child.log", dir);
	unlink(path);
	rmdir(dir);
	return 0;
}

static void nap_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0)
		;
}

/* Run fn in a child whose stderr goes to <dir>/child.log; its wait status. */
static int in_child(void (*fn)(void), char *log, size_t loglen)
{
	char path[128];
	snprintf(path, sizeof path, "%s/child.log", dir);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(fd, 2);
		fn();
		_exit(99); /* fn must not return */
	}
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	size_t n = fread(log, 1, loglen - 1, f);
	log[n] = '\0';
	fclose(f);
	return st;
}

static void test_nesting_restores(void **state)
{
	(void)state;
	struct wd_frame a, b, now;
	char text[160];
	wd_current(&now);
	assert_int_equal(now.depth, 0);
	wd_enter(&a, "alpha", "command", "alpha go", 0);
	wd_current(&now);
	assert_int_equal(now.depth, 1);
	assert_string_equal(now.plugin, "alpha");
	uint64_t since = now.since_ms;
	wd_describe(&now, text, sizeof text);
	assert_string_equal(text, "its command 'alpha go'");
	wd_enter(&b, "beta", "event handler", "test/in/a", 0);
	wd_current(&now);
	assert_int_equal(now.depth, 2);
	wd_describe(&now, text, sizeof text);
	assert_string_equal(text, "its event handler (test/in/a)");
	wd_leave(&b);
	wd_current(&now);
	assert_int_equal(now.depth, 1);
	assert_string_equal(now.plugin, "alpha");
	assert_int_equal(now.since_ms, since); /* the outer call's time goes on */
	wd_leave(&a);
	wd_current(&now);
	assert_int_equal(now.depth, 0);
	/* Long names are cut, never overflow. */
	char longname[200];
	memset(longname, 'x', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	wd_enter(&a, longname, "timer", longname, 42);
	wd_current(&now);
	assert_int_equal(strlen(now.plugin), sizeof now.plugin - 1);
	wd_describe(&now, text, sizeof text);
	assert_string_equal(text, "its timer 42");
	wd_leave(&a);
}

static void killed_in_timer(void)
{
	char err[256];
	if (wd_open(dir, err, sizeof err) != 0)
		_exit(98);
	struct wd_frame f;
	wd_enter(&f, "crashy", "timer", NULL, 7);
	raise(SIGKILL); /* nothing of the process runs after this */
	_exit(97);
}

static void test_record_outlives_kill(void **state)
{
	(void)state;
	char log[4096], err[256];
	int st = in_child(killed_in_timer, log, sizeof log);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	assert_int_equal(wd_open(dir, err, sizeof err), 0);
	const struct wd_frame *p = wd_previous();
	assert_non_null(p);
	assert_int_equal(p->depth, 1);
	assert_string_equal(p->plugin, "crashy");
	assert_string_equal(p->what, "timer");
	assert_int_equal(p->num, 7);
	assert_true(wd_previous_pid() > 0);
	/* A clean close clears it, even with a call still recorded. */
	struct wd_frame f;
	wd_enter(&f, "other", "init", NULL, 0);
	wd_close();
	assert_int_equal(wd_open(dir, err, sizeof err), 0);
	assert_int_equal(wd_previous()->depth, 0);
	wd_close();
	/* A file that is not a record is no death. */
	char path[128];
	snprintf(path, sizeof path, "%s/plugins.running", dir);
	FILE *fp = fopen(path, "w");
	fputs("garbage that is not a record, long enough to fill the header of one ........"
	      "................................................................................"
	      "................................................................................",
	      fp);
	fclose(fp);
	assert_int_equal(wd_open(dir, err, sizeof err), 0);
	assert_int_equal(wd_previous()->depth, 0);
	wd_close();
	/* A directory that cannot hold it is an error naming the file. */
	assert_int_equal(wd_open("/nonexistent/dir", err, sizeof err) < 0, 1);
	assert_non_null(strstr(err, "/nonexistent/dir/plugins.running"));
}

static void exit_in_init(void)
{
	char err[256];
	if (wd_open(dir, err, sizeof err) != 0 || wd_start(0, 0) != 0)
		_exit(98);
	struct wd_frame f;
	wd_enter(&f, "quitter", "init", NULL, 0);
	exit(0);
}

static void exit_of_its_own(void)
{
	char err[256];
	if (wd_open(dir, err, sizeof err) != 0 || wd_start(0, 0) != 0)
		_exit(98);
	struct wd_frame f;
	wd_enter(&f, "nice", "init", NULL, 0);
	wd_leave(&f);
	exit(5); /* linlid's own exit: no plugin runs */
}

static void *exit_thread(void *arg)
{
	(void)arg;
	exit(6);
}

static void exit_on_another_thread(void)
{
	char err[256];
	if (wd_open(dir, err, sizeof err) != 0 || wd_start(0, 0) != 0)
		_exit(98);
	struct wd_frame f;
	wd_enter(&f, "threaded", "timer", NULL, 3);
	pthread_t t;
	pthread_create(&t, NULL, exit_thread, NULL);
	for (;;)
		nap_ms(1000);
}

static void test_exit_hook(void **state)
{
	(void)state;
	char log[4096];
	int st = in_child(exit_in_init, log, sizeof log);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), WD_EXIT_PLUGIN);
	assert_non_null(strstr(log, "error plugins: plugin quitter called exit(0) in its init: "
				    "ending linlid with status 3"));
	st = in_child(exit_of_its_own, log, sizeof log);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 5);
	assert_null(strstr(log, "exit("));
	st = in_child(exit_on_another_thread, log, sizeof log);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), WD_EXIT_PLUGIN);
	assert_non_null(strstr(log, "exit(6) called on a thread other than the kernel thread (a "
				    "plugin's own thread?) while plugin threaded ran its timer 3"));
}

static void slow_then_stuck(void)
{
	char err[256];
	if (wd_open(dir, err, sizeof err) != 0 || wd_start(150, 400) != 0)
		_exit(98);
	struct wd_frame f;
	wd_enter(&f, "slow", "command", "slow nap", 0);
	nap_ms(500);
	wd_leave(&f);
	nap_ms(300);
	wd_enter(&f, "stuck", "fini", NULL, 0);
	wd_term(SIGTERM);
	for (;;)
		nap_ms(1000);
}

static void test_watchdog_thread(void **state)
{
	(void)state;
	char log[8192];
	int st = in_child(slow_then_stuck, log, sizeof log);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), WD_EXIT_STUCK);
	const char *warn = strstr(log, "warn plugins: plugin slow has been running its command "
				       "'slow nap' for 0.");
	assert_non_null(warn);
	assert_non_null(strstr(warn, "(watchdog.warn_ms = 150)"));
	const char *back = strstr(log, "info plugins: plugin slow: its command 'slow nap' returned "
				       "after about ");
	assert_non_null(back);
	assert_true(back > warn);
	const char *end = strstr(log, "error kernel: not stopped ");
	assert_non_null(end);
	assert_true(end > back);
	assert_non_null(strstr(end, "s after SIGTERM (watchdog.stop_grace_ms = 400): plugin stuck "
				    "has been running its fini for "));
	assert_non_null(strstr(end, "ending linlid with status 4"));
	/* The record names the stuck plugin for the next start. */
	char err[256];
	assert_int_equal(wd_open(dir, err, sizeof err), 0);
	assert_string_equal(wd_previous()->plugin, "stuck");
	wd_close();
}

int main(void)
{
	log_set_level(LOG_DEBUG);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_nesting_restores),
	    cmocka_unit_test(test_record_outlives_kill),
	    cmocka_unit_test(test_exit_hook),
	    cmocka_unit_test(test_watchdog_thread),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
