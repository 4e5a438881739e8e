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

#include "clock.h"
#include "idmap.h"
#include "kernel.h"
#include "linli/error.h"
#include "util.h"

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

/*
 * Many timers (the bus's requests hold two each): they fire in (due, added)
 * order whatever order they were added and cancelled in, the cancelled ones
 * never, each cancel finding its own.
 */
enum { MANY = 6000 };
struct many {
	uint64_t id[MANY], due[MANY];
	int fired[MANY], order[MANY], n;
	bool cancelled[MANY];
};
static struct many *many_s;

static void many_fire(struct kernel *k, void *arg)
{
	int i = (int)(intptr_t)arg;
	many_s->fired[i]++;
	many_s->order[many_s->n++] = i;
	if (many_s->n == MANY / 2)
		kernel_stop(k);
}

static void test_many_timers_in_order_with_cancels(void **state)
{
	(void)state;
	struct kernel k;
	struct many *s = calloc(1, sizeof *s);
	assert_non_null(s);
	many_s = s;
	assert_int_equal(kernel_init(&k), 0);
	srand(7);
	for (int i = 0; i < MANY; i++) {
		s->due[i] = (uint64_t)(rand() % 4) * 50; /* ms: many share one; adding all takes far less */
		s->id[i] = kernel_timer_add(&k, s->due[i], 0, many_fire, (void *)(intptr_t)i);
		assert_true(s->id[i] > 0);
	}
	assert_int_equal(k.n_timers, MANY);
	for (int i = 1; i < MANY; i += 2) { /* every odd one, from the middle of the heap */
		assert_true(kernel_timer_cancel(&k, s->id[i]));
		assert_false(kernel_timer_cancel(&k, s->id[i]));
		s->cancelled[i] = true;
	}
	assert_int_equal(k.n_timers, MANY / 2);
	kernel_run(&k);
	assert_int_equal(s->n, MANY / 2);
	for (int j = 0; j < s->n; j++) {
		int i = s->order[j];
		assert_false(s->cancelled[i]);
		assert_int_equal(s->fired[i], 1);
		if (j) { /* due order; equal due times in the order they were added */
			int p = s->order[j - 1];
			assert_true(s->due[p] < s->due[i] || (s->due[p] == s->due[i] && p < i));
		}
	}
	assert_int_equal(k.n_timers, 0);
	kernel_destroy(&k);
	free(s);
}

/* The id map under the timers and bus requests: puts, gets and deletes against a plain array. */
static void test_idmap_against_a_reference(void **state)
{
	(void)state;
	enum { N = 20000 };
	struct idmap m = {0};
	static void *ref[N + 1];
	memset(ref, 0, sizeof ref);
	srand(11);
	for (int round = 0; round < 4; round++) {
		for (int i = 0; i < N; i++) {
			uint64_t id = 1 + (uint64_t)(rand() % N);
			if (ref[id]) {
				assert_ptr_equal(idmap_del(&m, id), ref[id]);
				ref[id] = NULL;
			} else {
				ref[id] = (void *)(intptr_t)(id * 8 + 1);
				assert_int_equal(idmap_put(&m, id, ref[id]), 0);
			}
		}
		size_t n = 0;
		for (uint64_t id = 1; id <= N; id++) {
			assert_ptr_equal(idmap_get(&m, id), ref[id]);
			n += ref[id] != NULL;
		}
		assert_int_equal(m.n, n);
		assert_true(m.n * 2 <= m.cap);
	}
	assert_null(idmap_get(&m, 0));
	assert_null(idmap_del(&m, N + 5));
	idmap_free(&m);
	assert_null(idmap_get(&m, 1));
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

/*
 * The test clock jumps 3 h: the timers due by then fire at once in due order,
 * the interval timer once (not 18 times), one due in a day does not; the
 * wall clock moves with them and the real monotonic clock does not.
 */
struct jump {
	char order[16];
	int n, ticks;
	uint64_t tick_id, day_id;
	int64_t wall_before, wall_after;
	uint64_t mono_before, mono_after;
};

static void mark(struct jump *j, char c)
{
	if (j->n < (int)sizeof j->order - 1)
		j->order[j->n++] = c;
}

static void fire_a(struct kernel *k, void *arg)
{
	(void)k;
	mark(arg, 'A');
}

static void fire_b(struct kernel *k, void *arg)
{
	(void)k;
	mark(arg, 'B');
}

static void fire_day(struct kernel *k, void *arg)
{
	(void)k;
	mark(arg, 'D');
}

static void fire_tick(struct kernel *k, void *arg)
{
	(void)k;
	struct jump *j = arg;
	j->ticks++;
	mark(j, 'T');
}

static void fire_stop(struct kernel *k, void *arg)
{
	struct jump *j = arg;
	mark(j, '.');
	j->wall_after = wall_ms();
	j->mono_after = kernel_now_ms();
	kernel_stop(k);
}

static void do_jump(struct kernel *k, void *arg)
{
	struct jump *j = arg;
	j->wall_before = wall_ms();
	j->mono_before = kernel_now_ms();
	assert_int_equal(clock_advance(3 * 3600000), 0);
	/* Added after the jump with no delay: it sorts after everything due by now. */
	assert_true(kernel_timer_add(k, 0, 0, fire_stop, j) > 0);
}

static void test_clock_jump(void **state)
{
	(void)state;
	struct kernel k;
	struct jump j;
	memset(&j, 0, sizeof j);
	assert_int_equal(kernel_init(&k), 0);
	assert_true(kernel_timer_add(&k, 2 * 3600000, 0, fire_b, &j) > 0);
	assert_true(kernel_timer_add(&k, 3600000, 0, fire_a, &j) > 0);
	j.tick_id = kernel_timer_add(&k, 600000, 600000, fire_tick, &j);
	j.day_id = kernel_timer_add(&k, 86400000, 0, fire_day, &j);
	assert_int_equal(kernel_post(&k, do_jump, &j), 0);
	kernel_run(&k);
	assert_string_equal(j.order, "TAB.");
	assert_int_equal(j.ticks, 1);
	assert_true(j.wall_after - j.wall_before >= 3 * 3600000);
	assert_true(j.wall_after - j.wall_before < 3 * 3600000 + 60000);
	assert_true(j.mono_after - j.mono_before < 60000);
	/* The interval timer goes on from the new now; the day's timer still waits. */
	assert_true(kernel_timer_cancel(&k, j.tick_id));
	assert_true(kernel_timer_cancel(&k, j.day_id));
	kernel_destroy(&k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cross_thread_order),
		cmocka_unit_test(test_timers),
		cmocka_unit_test(test_many_timers_in_order_with_cancels),
		cmocka_unit_test(test_idmap_against_a_reference),
		cmocka_unit_test(test_stop_drains),
		cmocka_unit_test(test_clock_jump),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
