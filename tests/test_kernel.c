/*
 * Unit tests of host/kernel.c: events posted from other threads run on the
 * kernel thread in order, batch hooks run after each batch, timers fire and
 * repeat, stop drains the queue and then refuses posts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kernel.h"
#include "linli/error.h"

#define PER_THREAD 20000

struct st {
	int last[4];	  /* last sequence seen per producer */
	int count;
	int order_errors;
	int off_thread;
	int batches;
	int timer_once, timer_rep;
	uint64_t rep_id;
};

struct item {
	struct st *s;
	int producer, seq;
};

static void on_item(struct kernel *k, void *arg)
{
	struct item *it = arg;
	struct st *s = it->s;
	if (!kernel_on_thread(k))
		s->off_thread++;
	if (it->seq != s->last[it->producer] + 1)
		s->order_errors++;
	s->last[it->producer] = it->seq;
	s->count++;
	free(it);
	if (s->count == 2 * PER_THREAD)
		kernel_stop(k);
}

struct prod {
	struct kernel *k;
	struct st *s;
	int id;
};

static void *producer(void *arg)
{
	struct prod *p = arg;
	for (int i = 1; i <= PER_THREAD; i++) {
		struct item *it = malloc(sizeof *it);
		*it = (struct item){p->s, p->id, i};
		if (kernel_post(p->k, on_item, it) != 0)
			free(it);
	}
	return NULL;
}

static void on_batch(struct kernel *k, void *arg)
{
	(void)k;
	((struct st *)arg)->batches++;
}

static void test_cross_thread_order(void **state)
{
	(void)state;
	struct kernel k;
	struct st s;
	memset(&s, 0, sizeof s);
	assert_int_equal(kernel_init(&k), 0);
	assert_int_equal(kernel_on_batch_end(&k, on_batch, &s), 0);
	pthread_t t[2];
	struct prod p[2] = {{&k, &s, 0}, {&k, &s, 1}};
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, producer, &p[i]);
	kernel_run(&k);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(s.count, 2 * PER_THREAD);
	assert_int_equal(s.order_errors, 0);
	assert_int_equal(s.off_thread, 0);
	assert_true(s.batches >= 1);
	assert_true(s.batches <= s.count);
	/* The loop has returned: posts are refused. */
	int dummy;
	assert_int_equal(kernel_post(&k, on_batch, &dummy), LINLI_ESTATE);
	kernel_destroy(&k);
}

static void once(struct kernel *k, void *arg)
{
	(void)k;
	((struct st *)arg)->timer_once++;
}

static void repeat(struct kernel *k, void *arg)
{
	struct st *s = arg;
	if (++s->timer_rep == 3) {
		assert_true(kernel_timer_cancel(k, s->rep_id));
		kernel_stop(k);
	}
}

static void test_timers(void **state)
{
	(void)state;
	struct kernel k;
	struct st s;
	memset(&s, 0, sizeof s);
	assert_int_equal(kernel_init(&k), 0);
	uint64_t t0 = kernel_now_ms();
	assert_true(kernel_timer_add(&k, 5, 0, once, &s) > 0);
	uint64_t never = kernel_timer_add(&k, 100000, 0, once, &s);
	s.rep_id = kernel_timer_add(&k, 10, 10, repeat, &s);
	kernel_run(&k);
	assert_int_equal(s.timer_once, 1);
	assert_int_equal(s.timer_rep, 3);
	assert_true(kernel_now_ms() - t0 >= 30);
	assert_true(kernel_timer_cancel(&k, never));
	assert_false(kernel_timer_cancel(&k, never));
	kernel_destroy(&k);
}

static void count(struct kernel *k, void *arg)
{
	(void)k;
	(*(int *)arg)++;
}

static void test_stop_drains(void **state)
{
	(void)state;
	struct kernel k;
	int n = 0;
	assert_int_equal(kernel_init(&k), 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(kernel_post(&k, count, &n), 0);
	kernel_stop(&k);
	kernel_run(&k);
	assert_int_equal(n, 100);
	kernel_destroy(&k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cross_thread_order),
		cmocka_unit_test(test_timers),
		cmocka_unit_test(test_stop_drains),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
