/*
 * kernel — see kernel.h.
 *
 * The queue is a mutex-protected singly linked list; a wake-up swaps the whole
 * list out under the lock and runs it without the lock, so producers never
 * wait on a handler. Timers are a sorted list: there are few of them (one per
 * plugin timer or device schedule), and insertion order keeps equal deadlines
 * FIFO.
 */
#include "kernel.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "linli/error.h"
#include "log.h"

struct ktimer {
	uint64_t id, due, interval;
	kernel_fn fn;
	void *arg;
	struct ktimer *next;
};

uint64_t kernel_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t kernel_clock_ms(void)
{
	return kernel_now_ms() + (uint64_t)clock_offset_ms();
}

int kernel_init(struct kernel *k)
{
	memset(k, 0, sizeof *k);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (pthread_mutex_init(&k->mu, NULL) || pthread_cond_init(&k->cv, &ca)) {
		pthread_condattr_destroy(&ca);
		return LINLI_ENOMEM;
	}
	pthread_condattr_destroy(&ca);
	k->started_ms = kernel_now_ms();
	k->next_timer_id = 1;
	k->thread = pthread_self();
	return 0;
}

void kernel_destroy(struct kernel *k)
{
	struct kevent *e = k->head;
	while (e) {
		struct kevent *n = e->next;
		free(e);
		e = n;
	}
	struct ktimer *t = k->timers;
	while (t) {
		struct ktimer *n = t->next;
		free(t);
		t = n;
	}
	pthread_mutex_destroy(&k->mu);
	pthread_cond_destroy(&k->cv);
	cfg_free(&k->cfg);
}

int kernel_post(struct kernel *k, kernel_fn fn, void *arg)
{
	struct kevent *e = malloc(sizeof *e);
	if (!e)
		return LINLI_ENOMEM;
	e->fn = fn;
	e->arg = arg;
	e->next = NULL;
	pthread_mutex_lock(&k->mu);
	if (k->closed) {
		pthread_mutex_unlock(&k->mu);
		free(e);
		return LINLI_ESTATE;
	}
	if (k->tail)
		k->tail->next = e;
	else
		k->head = e;
	k->tail = e;
	k->queued++;
	pthread_cond_signal(&k->cv);
	pthread_mutex_unlock(&k->mu);
	return 0;
}

void kernel_stop(struct kernel *k)
{
	pthread_mutex_lock(&k->mu);
	k->stopping = true;
	pthread_cond_signal(&k->cv);
	pthread_mutex_unlock(&k->mu);
}

void kernel_close(struct kernel *k)
{
	pthread_mutex_lock(&k->mu);
	k->closed = true;
	pthread_mutex_unlock(&k->mu);
}

bool kernel_on_thread(const struct kernel *k) { return pthread_equal(pthread_self(), k->thread); }

static void timer_insert(struct kernel *k, struct ktimer *t)
{
	struct ktimer **pp = &k->timers;
	while (*pp && (*pp)->due <= t->due)
		pp = &(*pp)->next;
	t->next = *pp;
	*pp = t;
}

uint64_t kernel_timer_add(struct kernel *k, uint64_t delay_ms, uint64_t interval_ms, kernel_fn fn,
			  void *arg)
{
	struct ktimer *t = calloc(1, sizeof *t);
	if (!t)
		return 0;
	t->id = k->next_timer_id++;
	t->due = kernel_clock_ms() + delay_ms;
	t->interval = interval_ms;
	t->fn = fn;
	t->arg = arg;
	timer_insert(k, t);
	return t->id;
}

bool kernel_timer_cancel(struct kernel *k, uint64_t id)
{
	for (struct ktimer **pp = &k->timers; *pp; pp = &(*pp)->next)
		if ((*pp)->id == id) {
			struct ktimer *t = *pp;
			*pp = t->next;
			free(t);
			return true;
		}
	return false;
}

int kernel_on_batch_end(struct kernel *k, kernel_fn fn, void *arg)
{
	if (k->n_batch_hooks == KERNEL_MAX_HOOKS)
		return LINLI_ELIMIT;
	k->batch_hooks[k->n_batch_hooks].fn = fn;
	k->batch_hooks[k->n_batch_hooks].arg = arg;
	k->n_batch_hooks++;
	return 0;
}

/*
 * Run the timers due when this turn began, in due order; return ms until the
 * next one (0: some are due still, -1: none). An interval timer is due again
 * `interval` after it ran, so after a jump of the test clock it fires once,
 * not once per interval skipped.
 *
 * Issue 14 (timer floods): a timer made due during the turn (2,000 script
 * timers of 1 ms are, by the time the last has run) waits for the next turn,
 * and a turn stops running timers after KERNEL_TIMER_TURN_MS: the queue's
 * requests (`linli status`) are served between turns, never starved.
 */
#define KERNEL_TIMER_TURN_MS 20

static int64_t run_timers(struct kernel *k)
{
	uint64_t now = kernel_clock_ms(), start = kernel_now_ms();
	while (k->timers && k->timers->due <= now) {
		if (kernel_now_ms() - start >= KERNEL_TIMER_TURN_MS)
			return 0;
		struct ktimer *t = k->timers;
		k->timers = t->next;
		kernel_fn fn = t->fn;
		void *arg = t->arg;
		if (t->interval) {
			t->due = kernel_clock_ms() + t->interval;
			timer_insert(k, t);
		} else
			free(t);
		fn(k, arg);
	}
	if (!k->timers)
		return -1;
	uint64_t after = kernel_clock_ms();
	return k->timers->due > after ? (int64_t)(k->timers->due - after) : 0;
}

static void run_batch_hooks(struct kernel *k)
{
	for (int i = 0; i < k->n_batch_hooks; i++)
		k->batch_hooks[i].fn(k, k->batch_hooks[i].arg);
	k->batches++;
}

uint64_t kernel_turn(const struct kernel *k)
{
	return k->turn;
}

void kernel_run(struct kernel *k)
{
	k->thread = pthread_self();
	for (;;) {
		k->turn++;
		int64_t wait = run_timers(k);
		pthread_mutex_lock(&k->mu);
		while (!k->head && !k->stopping) {
			if (wait < 0) {
				pthread_cond_wait(&k->cv, &k->mu);
				break;
			}
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += wait / 1000;
			ts.tv_nsec += (wait % 1000) * 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			if (pthread_cond_timedwait(&k->cv, &k->mu, &ts) == ETIMEDOUT)
				break;
		}
		struct kevent *batch = k->head;
		k->head = k->tail = NULL;
		k->queued = 0;
		bool stop = k->stopping && !batch;
		if (stop)
			k->closed = true;
		pthread_mutex_unlock(&k->mu);
		if (stop) {
			k->turn = 0;
			break;
		}
		if (!batch)
			continue;
		while (batch) {
			struct kevent *e = batch;
			batch = e->next;
			e->fn(k, e->arg);
			free(e);
			k->events_run++;
		}
		run_batch_hooks(k);
	}
	log_debug("kernel", "loop ended after %llu events in %llu batches",
		  (unsigned long long)k->events_run, (unsigned long long)k->batches);
}
