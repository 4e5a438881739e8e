/*
 * kernel — see kernel.h.
 *
 * The queue is a mutex-protected singly linked list; a wake-up swaps the whole
 * list out under the lock and runs it without the lock, so producers never
 * wait on a handler. Timers are a binary min-heap ordered by (due, seq), seq
 * counting insertions so that equal deadlines stay FIFO, with an id map for
 * cancel: every bus request holds two (its hand-over and its timeout), so
 * thousands in flight must cost O(log n) each, not a walk of a sorted list.
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
	uint64_t id, due, interval, seq;
	kernel_fn fn;
	void *arg;
	size_t pos; /* its index in the heap */
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
	for (size_t i = 0; i < k->n_timers; i++)
		free(k->timers[i]);
	free(k->timers);
	k->timers = NULL;
	k->n_timers = k->cap_timers = 0;
	idmap_free(&k->timer_ids);
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

static bool before(const struct ktimer *a, const struct ktimer *b)
{
	return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void heap_set(struct kernel *k, size_t i, struct ktimer *t)
{
	k->timers[i] = t;
	t->pos = i;
}

static void sift_up(struct kernel *k, size_t i)
{
	struct ktimer *t = k->timers[i];
	while (i) {
		size_t p = (i - 1) / 2;
		if (!before(t, k->timers[p]))
			break;
		heap_set(k, i, k->timers[p]);
		i = p;
	}
	heap_set(k, i, t);
}

static void sift_down(struct kernel *k, size_t i)
{
	struct ktimer *t = k->timers[i];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= k->n_timers)
			break;
		if (c + 1 < k->n_timers && before(k->timers[c + 1], k->timers[c]))
			c++;
		if (!before(k->timers[c], t))
			break;
		heap_set(k, i, k->timers[c]);
		i = c;
	}
	heap_set(k, i, t);
}

/* Into the heap, after every timer of the same due time (FIFO). Room is there. */
static void heap_push(struct kernel *k, struct ktimer *t)
{
	t->seq = k->timer_seq++;
	heap_set(k, k->n_timers++, t);
	sift_up(k, t->pos);
}

static void heap_remove(struct kernel *k, struct ktimer *t)
{
	struct ktimer *last = k->timers[--k->n_timers];
	if (last != t) {
		heap_set(k, t->pos, last);
		sift_down(k, last->pos);
		sift_up(k, last->pos);
	}
}

uint64_t kernel_timer_add(struct kernel *k, uint64_t delay_ms, uint64_t interval_ms, kernel_fn fn,
			  void *arg)
{
	if (k->n_timers == k->cap_timers) {
		size_t cap = k->cap_timers ? k->cap_timers * 2 : 64;
		struct ktimer **nt = realloc(k->timers, cap * sizeof *nt);
		if (!nt)
			return 0;
		k->timers = nt;
		k->cap_timers = cap;
	}
	struct ktimer *t = calloc(1, sizeof *t);
	if (!t)
		return 0;
	t->id = k->next_timer_id++;
	t->due = kernel_clock_ms() + delay_ms;
	t->interval = interval_ms;
	t->fn = fn;
	t->arg = arg;
	if (idmap_put(&k->timer_ids, t->id, t) != 0) {
		free(t);
		return 0;
	}
	heap_push(k, t);
	return t->id;
}

bool kernel_timer_cancel(struct kernel *k, uint64_t id)
{
	struct ktimer *t = idmap_del(&k->timer_ids, id);
	if (!t)
		return false;
	heap_remove(k, t);
	free(t);
	return true;
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
	while (k->n_timers && k->timers[0]->due <= now) {
		if (kernel_now_ms() - start >= KERNEL_TIMER_TURN_MS)
			return 0;
		struct ktimer *t = k->timers[0];
		kernel_fn fn = t->fn;
		void *arg = t->arg;
		heap_remove(k, t);
		if (t->interval) { /* due again after it ran; fn may cancel it */
			t->due = kernel_clock_ms() + t->interval;
			heap_push(k, t);
		} else {
			idmap_del(&k->timer_ids, t->id);
			free(t);
		}
		fn(k, arg);
	}
	if (!k->n_timers)
		return -1;
	uint64_t after = kernel_clock_ms();
	return k->timers[0]->due > after ? (int64_t)(k->timers[0]->due - after) : 0;
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
