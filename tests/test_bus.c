/*
 * Unit tests of host/bus.c: topic and pattern validation, wildcard matching
 * (a table, and the trie cross-checked against the linear matcher on random
 * cases), scope filtering, ordering per publisher across threads, handler
 * error isolation, shedding of telemetry (never of records of consequence),
 * the journal hook and sealing, unsubscribing inside a handler, payload
 * validation, and the bus.* config keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus.h"
#include "config.h"
#include "kernel.h"
#include "linli/error.h"
#include "log.h"
#include "mp.h"

#define NODE                                                                                       \
	"node = { path = \"hefei\"; level = \"city\"; };\ndata_dir = \"/tmp/linli-test-bus\";\n"

static void open_bus(struct kernel *k, const char *extra)
{
	char text[4096], err[1024] = "";
	snprintf(text, sizeof text, NODE "%s", extra ? extra : "");
	assert_int_equal(kernel_init(k), 0);
	int rc = cfg_load_string(&k->cfg, text, "t.cfg", NULL, err, sizeof err);
	if (rc)
		fail_msg("config: %s", err);
	rc = bus_open(k, &k->bus, err, sizeof err);
	if (rc)
		fail_msg("bus_open: %s", err);
}

static void close_bus(struct kernel *k)
{
	bus_close(k->bus);
	kernel_destroy(k);
}

/* A payload {"n": n}. */
struct pl {
	char b[16];
	size_t n;
};

static struct pl payload_n(uint32_t n)
{
	struct pl p;
	p.b[0] = (char)0x81;
	p.b[1] = (char)0xa1;
	p.b[2] = 'n';
	p.b[3] = (char)0xce;
	p.b[4] = (char)(n >> 24);
	p.b[5] = (char)(n >> 16);
	p.b[6] = (char)(n >> 8);
	p.b[7] = (char)n;
	p.n = 8;
	return p;
}

static uint32_t read_n(const struct bus_event *ev)
{
	const unsigned char *b = ev->payload;
	assert_int_equal(ev->payload_len, 8);
	return (uint32_t)b[4] << 24 | (uint32_t)b[5] << 16 | (uint32_t)b[6] << 8 | b[7];
}

static int publish(struct kernel *k, const char *topic, const char *scope, const char *publisher)
{
	char err[512];
	struct bus_msg m = {topic, publisher ? publisher : "test", scope ? scope : "hefei", NULL,
			    0};
	return bus_publish(k->bus, &m, NULL, err, sizeof err);
}

/* ---- validation ---- */

struct vcase {
	const char *s;
	bool topic_ok, pattern_ok;
	const char *why; /* substring of the reason when refused as a topic */
};

static void test_topic_and_pattern_check(void **state)
{
	(void)state;
	char long_topic[300];
	memset(long_topic, 'a', sizeof long_topic - 1);
	long_topic[sizeof long_topic - 1] = '\0';
	static const struct vcase cases[] = {
	    {"dev/smoke/sd-0042/event/alarm", true, true, NULL},
	    {"alarm/raised", true, true, NULL},
	    {"a", true, true, NULL},
	    {"A.b:c_d-e/$x", true, true, NULL},
	    {"", false, false, "empty"},
	    {"/a", false, false, "empty level"},
	    {"a/", false, false, "empty level"},
	    {"a//b", false, false, "empty level"},
	    {"a/+/c", false, true, "wildcards"},
	    {"a/#", false, true, "wildcards"},
	    {"#", false, true, "wildcards"},
	    {"+", false, true, "wildcards"},
	    {"a/#/c", false, false, "wildcards"},
	    {"a/b+/c", false, false, "wildcards"},
	    {"a/#b", false, false, "wildcards"},
	    {"a b", false, false, "printable ASCII"},
	    {"a\tb", false, false, "printable ASCII"},
	    {"温度/a", false, false, "printable ASCII"},
	    {"1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16", true, true, NULL},
	    {"1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/17", false, false, "16 levels"},
	};
	char why[160];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct vcase *c = &cases[i];
		why[0] = '\0';
		bool t = bus_topic_check(c->s, why, sizeof why);
		if (t != c->topic_ok)
			fail_msg("topic '%s': got %d want %d (%s)", c->s, t, c->topic_ok, why);
		if (!t && c->why && !strstr(why, c->why))
			fail_msg("topic '%s': reason '%s' lacks '%s'", c->s, why, c->why);
		bool p = bus_pattern_check(c->s, NULL, 0);
		if (p != c->pattern_ok)
			fail_msg("pattern '%s': got %d want %d", c->s, p, c->pattern_ok);
	}
	assert_false(bus_topic_check(long_topic, why, sizeof why));
	assert_non_null(strstr(why, "255"));
}

struct mcase {
	const char *pattern, *topic;
	bool match;
};

static const struct mcase match_cases[] = {
    {"a/b/c", "a/b/c", true},
    {"a/b/c", "a/b", false},
    {"a/b", "a/b/c", false},
    {"a/b", "a/bc", false},
    {"a/bc", "a/b", false},
    {"+", "a", true},
    {"+", "a/b", false},
    {"+/+", "a/b", true},
    {"+/+", "a", false},
    {"a/+", "a", false},
    {"a/+", "a/b", true},
    {"a/+/c", "a/b/c", true},
    {"a/+/c", "a/b/d", false},
    {"a/+/c", "a/c", false},
    {"#", "a", true},
    {"#", "a/b/c", true},
    {"a/#", "a", true}, /* '#' is zero or more levels */
    {"a/#", "a/b", true},
    {"a/#", "a/b/c/d", true},
    {"a/#", "ab", false},
    {"a/#", "b/a", false},
    {"+/#", "a", true},
    {"+/#", "a/b/c", true},
    {"a/+/#", "a", false},
    {"a/+/#", "a/b", true},
    {"dev/+/+/event/#", "dev/smoke/sd-0042/event/alarm", true},
    {"dev/+/+/event/#", "dev/smoke/sd-0042/event", true},
    {"dev/+/+/event/#", "dev/smoke/sd-0042/reading/temp", false},
    {"dev/+/+/event/#", "dev/smoke/event/alarm", false},
    {"dev/smoke/+/event/alarm", "dev/smoke/sd-0042/event/alarm", true},
    {"dev/smoke/+/event/alarm", "dev/hydrant/h-1/event/alarm", false},
    {"alarm/#", "alarm/raised", true},
    {"alarm/#", "alarms/raised", false},
    {"incident/dispatched", "incident/dispatched", true},
};

static int record(const struct bus_event *ev, void *ud)
{
	(void)ev;
	(*(int *)ud)++;
	return 0;
}

static void test_pattern_match_table(void **state)
{
	(void)state;
	size_t n = sizeof match_cases / sizeof match_cases[0];
	for (size_t i = 0; i < n; i++)
		if (bus_pattern_match(match_cases[i].pattern, match_cases[i].topic) !=
		    match_cases[i].match)
			fail_msg("bus_pattern_match('%s', '%s') != %d", match_cases[i].pattern,
				 match_cases[i].topic, match_cases[i].match);
	/* The same table through the trie: one subscription per case. */
	struct kernel k;
	open_bus(&k, NULL);
	int *hits = calloc(n, sizeof *hits);
	char err[256];
	for (size_t i = 0; i < n; i++)
		assert_int_equal(bus_subscribe(k.bus, match_cases[i].pattern, "", record, &hits[i],
					       NULL, "t", NULL, err, sizeof err),
				 0);
	for (size_t i = 0; i < n; i++) {
		memset(hits, 0, n * sizeof *hits);
		assert_int_equal(publish(&k, match_cases[i].topic, NULL, NULL), 0);
		/* Every subscription whose pattern matches this topic got it, once. */
		for (size_t j = 0; j < n; j++) {
			int want = bus_pattern_match(match_cases[j].pattern, match_cases[i].topic);
			if (hits[j] != want)
				fail_msg("topic '%s' → pattern '%s': %d deliveries, want %d",
					 match_cases[i].topic, match_cases[j].pattern, hits[j],
					 want);
		}
	}
	free(hits);
	close_bus(&k);
}

/* Random patterns and topics over a small alphabet: the trie agrees with the linear matcher. */
static unsigned rnd_state = 12345;
static unsigned rnd(unsigned n)
{
	rnd_state = rnd_state * 1103515245u + 12345u;
	return (rnd_state >> 16) % n;
}

static void rnd_path(char *out, bool pattern)
{
	static const char *const lv[] = {"a", "b", "c", "dd"};
	int depth = 1 + (int)rnd(4);
	out[0] = '\0';
	for (int i = 0; i < depth; i++) {
		const char *w = lv[rnd(4)];
		if (pattern && rnd(4) == 0)
			w = "+";
		if (pattern && i == depth - 1 && rnd(5) == 0)
			w = "#";
		strcat(out, i ? "/" : "");
		strcat(out, w);
	}
}

#define NRAND 300

static void test_trie_matches_linear(void **state)
{
	(void)state;
	struct kernel k;
	open_bus(&k, NULL);
	static char pats[NRAND][64];
	static int hits[NRAND];
	static uint64_t ids[NRAND];
	static bool live[NRAND];
	char err[256];
	for (int i = 0; i < NRAND; i++) {
		rnd_path(pats[i], true);
		assert_true(bus_pattern_check(pats[i], NULL, 0));
		assert_int_equal(bus_subscribe(k.bus, pats[i], NULL, record, &hits[i], NULL, "r",
					       &ids[i], err, sizeof err),
				 0);
		live[i] = true;
	}
	for (int round = 0; round < 3; round++) {
		for (int t = 0; t < 400; t++) {
			char topic[64];
			rnd_path(topic, false);
			memset(hits, 0, sizeof hits);
			assert_int_equal(publish(&k, topic, NULL, NULL), 0);
			for (int i = 0; i < NRAND; i++) {
				int want = live[i] && bus_pattern_match(pats[i], topic);
				if (hits[i] != want)
					fail_msg("round %d: '%s' on '%s': %d, want %d", round,
						 topic, pats[i], hits[i], want);
			}
		}
		/* Drop a third of what is left: the trie prunes and still agrees. */
		for (int i = 0; i < NRAND; i++)
			if (live[i] && rnd(3) == 0) {
				assert_int_equal(bus_unsubscribe(k.bus, ids[i], NULL), 0);
				live[i] = false;
			}
	}
	for (int i = 0; i < NRAND; i++)
		if (live[i])
			assert_int_equal(bus_unsubscribe(k.bus, ids[i], NULL), 0);
	assert_int_equal(bus_unsubscribe(k.bus, ids[0], NULL), LINLI_ENOENT);
	struct bus_totals t;
	bus_get_totals(k.bus, &t);
	assert_int_equal(t.subscriptions, 0);
	close_bus(&k);
}

/* ---- scope ---- */

static void test_scope_filtering(void **state)
{
	(void)state;
	struct kernel k;
	open_bus(&k, NULL);
	static const char *const subs[] = {
	    "", "hefei", "hefei/baohe", "hefei/shushan", "hefei/baohe/binhu", "hefei/bao"};
	enum { ROOT, CITY, BAOHE, SHUSHAN, BINHU, BAO, NSUB };
	int hits[NSUB];
	char err[256];
	for (int i = 0; i < NSUB; i++)
		assert_int_equal(bus_subscribe(k.bus, "alarm/#", subs[i], record, &hits[i], NULL,
					       subs[i], NULL, err, sizeof err),
				 0);
	struct {
		const char *scope;
		int want[NSUB];
	} cases[] = {
	    {"hefei", {1, 1, 0, 0, 0, 0}},
	    {"hefei/baohe", {1, 1, 1, 0, 0, 0}},
	    {"hefei/baohe/binhu/yuelan", {1, 1, 1, 0, 1, 0}},
	    {"hefei/shushan/x", {1, 1, 0, 1, 0, 0}},
	    {"hefei/baohex", {1, 1, 0, 0, 0, 0}},
	    {"shanghai", {1, 0, 0, 0, 0, 0}},
	};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		memset(hits, 0, sizeof hits);
		assert_int_equal(publish(&k, "alarm/raised", cases[c].scope, NULL), 0);
		for (int i = 0; i < NSUB; i++)
			if (hits[i] != cases[c].want[i])
				fail_msg("event at '%s' → subscriber at '%s': %d, want %d",
					 cases[c].scope, subs[i], hits[i], cases[c].want[i]);
	}
	/* A malformed subscription scope is refused, naming it. */
	assert_int_equal(
	    bus_subscribe(k.bus, "#", "Hefei", record, &hits[0], NULL, "x", NULL, err, sizeof err),
	    LINLI_EINVAL);
	assert_non_null(strstr(err, "scope 'Hefei'"));
	close_bus(&k);
}

/* ---- ordering ---- */

#define PER_PRODUCER 20000
#define NPROD	     3

struct order {
	struct kernel *k;
	uint32_t last[NPROD + 1];
	bool seen[NPROD + 1];
	uint64_t last_seq;
	int count, errors, nested;
	int expect;
};

static int producer_index(const char *publisher)
{
	if (strncmp(publisher, "driver-", 7) == 0)
		return publisher[7] - '0';
	return NPROD; /* "relay", the nested publisher */
}

static int on_ordered(const struct bus_event *ev, void *ud)
{
	struct order *o = ud;
	int p = producer_index(ev->publisher);
	uint32_t n = read_n(ev);
	if (o->seen[p] && n <= o->last[p])
		o->errors++;
	if (ev->seq <= o->last_seq)
		o->errors++;
	o->last_seq = ev->seq;
	o->seen[p] = true;
	o->last[p] = n;
	o->count++;
	/* Every 100th event of driver-0 is relayed from inside the handler. */
	if (p == 0 && n % 100 == 0) {
		struct pl pl = payload_n(n);
		struct bus_msg m = {"relay/x", "relay", "hefei/baohe", pl.b, pl.n};
		char err[256];
		if (bus_publish(o->k->bus, &m, NULL, err, sizeof err) == 0)
			o->nested++;
	}
	if (o->count == o->expect)
		kernel_stop(o->k);
	return 0;
}

struct prod {
	struct kernel *k;
	int id;
	int refused;
};

static void *producer(void *arg)
{
	struct prod *p = arg;
	char name[16], err[256];
	snprintf(name, sizeof name, "driver-%d", p->id);
	for (uint32_t i = 1; i <= PER_PRODUCER; i++) {
		struct pl pl = payload_n(i);
		struct bus_msg m = {p->id == 1 ? "alarm/raised" : "dev/meter/m1/reading/power",
				    name, "hefei/baohe", pl.b, pl.n};
		if (bus_post(p->k->bus, &m, err, sizeof err) != 0)
			p->refused++;
	}
	return NULL;
}

static void test_order_per_publisher(void **state)
{
	(void)state;
	struct kernel k;
	/* A queue large enough that nothing is shed: this test is about order. */
	open_bus(&k, "bus = { telemetry_queue = 1000000; };\n");
	struct order o = {.k = &k, .expect = NPROD * PER_PRODUCER + PER_PRODUCER / 100};
	char err[256];
	assert_int_equal(
	    bus_subscribe(k.bus, "#", "hefei", on_ordered, &o, NULL, "o", NULL, err, sizeof err),
	    0);
	pthread_t t[NPROD];
	struct prod p[NPROD];
	for (int i = 0; i < NPROD; i++) {
		p[i] = (struct prod){&k, i, 0};
		pthread_create(&t[i], NULL, producer, &p[i]);
	}
	kernel_run(&k);
	for (int i = 0; i < NPROD; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(p[i].refused, 0);
	}
	assert_int_equal(o.errors, 0);
	assert_int_equal(o.nested, PER_PRODUCER / 100);
	assert_int_equal(o.count, o.expect);
	for (int i = 0; i < NPROD; i++)
		assert_int_equal(o.last[i], PER_PRODUCER);
	assert_int_equal(o.last[NPROD], PER_PRODUCER);
	close_bus(&k);
}

/* A handler that publishes: its event comes after the current one reached everybody. */
struct nest {
	struct kernel *k;
	char log[64];
	int n;
};

static int nest_a(const struct bus_event *ev, void *ud)
{
	struct nest *s = ud;
	s->log[s->n++] = 'A';
	s->log[s->n++] = ev->topic[0];
	if (strcmp(ev->topic, "x") == 0) {
		assert_int_equal(publish(s->k, "y", NULL, NULL), 0);
		assert_int_equal(publish(s->k, "z", NULL, NULL), 0);
	}
	return 0;
}

static int nest_b(const struct bus_event *ev, void *ud)
{
	struct nest *s = ud;
	s->log[s->n++] = 'B';
	s->log[s->n++] = ev->topic[0];
	return 0;
}

static void test_nested_publish_queues(void **state)
{
	(void)state;
	struct kernel k;
	open_bus(&k, NULL);
	struct nest s = {.k = &k};
	char err[256];
	assert_int_equal(
	    bus_subscribe(k.bus, "#", NULL, nest_a, &s, NULL, "a", NULL, err, sizeof err), 0);
	assert_int_equal(
	    bus_subscribe(k.bus, "#", NULL, nest_b, &s, NULL, "b", NULL, err, sizeof err), 0);
	assert_int_equal(publish(&k, "x", NULL, NULL), 0);
	/* x reaches A then B; then y and z, each to A then B, in publication order. */
	assert_string_equal(s.log, "AxBxAyByAzBz");
	close_bus(&k);
}

/* ---- event storms (issue 14, item 4) ---- */

/* Cause depth: a handler publishes two events one level deeper, down to depth 4. */
struct depths {
	struct kernel *k;
	int per_depth[8];
	int n, wrong;
	int last_depth; /* delivery is breadth first: depths never go down */
};

static int on_depth(const struct bus_event *ev, void *ud)
{
	struct depths *d = ud;
	d->n++;
	if (read_n(ev) != ev->depth || ev->depth < (uint32_t)d->last_depth || ev->depth >= 8)
		d->wrong++;
	else
		d->per_depth[ev->depth]++;
	d->last_depth = (int)ev->depth;
	if (ev->depth < 4 && strcmp(ev->topic, "d/x") == 0)
		for (int i = 0; i < 2; i++) {
			struct pl pl = payload_n(ev->depth + 1);
			struct bus_msg m = {"d/x", "deep", "hefei", pl.b, pl.n};
			char err[256];
			assert_int_equal(bus_publish_caused(d->k->bus, &m, ev->depth + 1, 0, NULL,
							    err, sizeof err),
					 0);
		}
	return 0;
}

static void test_cause_depth_kept_through_the_queue(void **state)
{
	(void)state;
	struct kernel k;
	open_bus(&k, NULL);
	struct depths d = {.k = &k};
	char err[256];
	assert_int_equal(
	    bus_subscribe(k.bus, "d/#", NULL, on_depth, &d, NULL, "deep", NULL, err, sizeof err),
	    0);
	struct pl pl = payload_n(0);
	struct bus_msg m = {"d/x", "test", "hefei", pl.b, pl.n};
	assert_int_equal(bus_publish(k.bus, &m, NULL, err, sizeof err), 0); /* depth 0 */
	/* Every event but the first went through the queue with its depth. */
	assert_int_equal(d.wrong, 0);
	assert_int_equal(d.n, 31);
	for (int i = 0; i <= 4; i++)
		assert_int_equal(d.per_depth[i], 1 << i);
	/* From a thread (a device): depth 0. */
	d = (struct depths){.k = &k};
	struct pl p4 = payload_n(4);
	struct bus_msg dev = {"d/y", "driver", "hefei", p4.b, p4.n};
	assert_int_equal(bus_post(k.bus, &dev, err, sizeof err), 0);
	kernel_stop(&k);
	kernel_run(&k);
	assert_int_equal(d.n, 1);
	assert_int_equal(d.wrong, 1); /* its n says 4, its depth is 0 */
	assert_int_equal(d.last_depth, 0);
	close_bus(&k);
}

/* A slow subscriber (~1 ms an event) and what the kernel runs meanwhile. */
struct flood {
	struct kernel *k;
	int delivered, delayed, seen_by_marker, later_inside;
	bool in_publish;
};

static int on_flood(const struct bus_event *ev, void *ud)
{
	struct flood *f = ud;
	if (f->in_publish)
		f->later_inside++;
	f->delivered++;
	if (ev->delayed)
		f->delayed++;
	uint64_t t0 = kernel_now_ms();
	while (kernel_now_ms() - t0 < 1)
		;
	return 0;
}

static void flood_marker(struct kernel *k, void *arg)
{
	(void)k;
	struct flood *f = arg;
	f->seen_by_marker = f->delivered;
}

static void flood_later(struct kernel *k, void *arg)
{
	struct flood *f = arg;
	struct bus_msg m = {"alarm/later", "script", "hefei", NULL, 0};
	char err[256];
	f->in_publish = true;
	for (int i = 0; i < 5; i++)
		assert_int_equal(
		    bus_publish_caused(k->bus, &m, 0, BUS_PUB_LATER, NULL, err, sizeof err), 0);
	f->in_publish = false;
}

static void test_delivery_budget_per_turn(void **state)
{
	(void)state;
	struct kernel k;
	open_bus(&k, NULL);
	struct flood f = {.k = &k};
	char err[256];
	assert_int_equal(bus_subscribe(k.bus, "alarm/#", NULL, on_flood, &f, NULL, "slow", NULL,
				       err, sizeof err),
			 0);
	/* 200 records of consequence from a driver, then a request (`linli status`). */
	for (int i = 0; i < 200; i++) {
		struct bus_msg m = {"alarm/fire", "driver", "hefei", NULL, 0};
		assert_int_equal(bus_post(k.bus, &m, err, sizeof err), 0);
	}
	assert_int_equal(kernel_post(&k, flood_marker, &f), 0);
	assert_int_equal(kernel_post(&k, flood_later, &f), 0);
	kernel_stop(&k);
	kernel_run(&k);
	/* The request ran after ~20 ms of deliveries, not after all 200. */
	if (f.seen_by_marker == 0 || f.seen_by_marker >= 100)
		fail_msg("the request ran after %d of 200 deliveries", f.seen_by_marker);
	assert_int_equal(f.delivered, 205); /* every one, later */
	assert_int_equal(f.later_inside, 0);
	struct bus_totals t;
	bus_get_totals(k.bus, &t);
	assert_true(f.delayed >= 100);
	assert_int_equal(t.delayed, (uint64_t)f.delayed);
	/* Once the loop has ended (a script's fini at stop), a later publish is delivered now. */
	struct bus_msg m = {"alarm/fini", "script", "hefei", NULL, 0};
	assert_int_equal(bus_publish_caused(k.bus, &m, 0, BUS_PUB_LATER, NULL, err, sizeof err), 0);
	assert_int_equal(f.delivered, 206);
	close_bus(&k);
}

/* ---- handler errors ---- */

static int failing(const struct bus_event *ev, void *ud)
{
	(void)ev;
	(*(int *)ud)++;
	return LINLI_EIO;
}

static char *read_fd(int fd)
{
	static char buf[8192];
	lseek(fd, 0, SEEK_SET);
	ssize_t n = read(fd, buf, sizeof buf - 1);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void test_handler_error_isolated(void **state)
{
	(void)state;
	struct kernel k;
	open_bus(&k, NULL);
	int a = 0, b = 0, c = 0;
	char err[256];
	uint64_t bid;
	assert_int_equal(bus_subscribe(k.bus, "alarm/#", NULL, record, &a, NULL, "plugin-a", NULL,
				       err, sizeof err),
			 0);
	assert_int_equal(bus_subscribe(k.bus, "alarm/+", NULL, failing, &b, NULL, "plugin-grid",
				       &bid, err, sizeof err),
			 0);
	assert_int_equal(
	    bus_subscribe(k.bus, "#", NULL, record, &c, NULL, "plugin-c", NULL, err, sizeof err),
	    0);
	/* Capture the log (stderr) to see the owner's name in it. */
	char path[] = "/tmp/linli-test-bus-log-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	int saved = dup(2);
	dup2(fd, 2);
	for (int i = 0; i < 5; i++)
		assert_int_equal(publish(&k, "alarm/raised", NULL, NULL), 0);
	dup2(saved, 2);
	close(saved);
	char *log = read_fd(fd);
	close(fd);
	assert_int_equal(a, 5);
	assert_int_equal(b, 5);
	assert_int_equal(c, 5);
	assert_non_null(strstr(log, "subscriber plugin-grid"));
	assert_non_null(strstr(log, "alarm/raised"));
	assert_non_null(strstr(log, "input/output error"));
	/* Rate-limited: five failures within a second log once. */
	assert_null(strstr(strstr(log, "plugin-grid") + 1, "plugin-grid"));
	struct bus_totals t;
	bus_get_totals(k.bus, &t);
	assert_int_equal(t.handler_errors, 5);
	assert_int_equal(t.delivered, 15);
	close_bus(&k);
}

/* ---- unsubscribe inside a handler ---- */

struct self {
	struct kernel *k;
	uint64_t me, other;
	int calls;
};

static int unsub_self(const struct bus_event *ev, void *ud)
{
	(void)ev;
	struct self *s = ud;
	s->calls++;
	assert_int_equal(bus_unsubscribe(s->k->bus, s->me, NULL), 0);
	assert_int_equal(bus_unsubscribe(s->k->bus, s->other, NULL), 0);
	return 0;
}

static void test_unsubscribe_inside_handler(void **state)
{
	(void)state;
	struct kernel k;
	open_bus(&k, NULL);
	struct self s = {.k = &k};
	int other = 0, owned = 0;
	char err[256];
	int owner_tag;
	assert_int_equal(
	    bus_subscribe(k.bus, "a/+", NULL, unsub_self, &s, NULL, "self", &s.me, err, sizeof err),
	    0);
	assert_int_equal(bus_subscribe(k.bus, "a/b", NULL, record, &other, NULL, "other", &s.other,
				       err, sizeof err),
			 0);
	assert_int_equal(bus_subscribe(k.bus, "#", NULL, record, &owned, &owner_tag, "plugin", NULL,
				       err, sizeof err),
			 0);
	assert_int_equal(bus_subscribe(k.bus, "a/#", NULL, record, &owned, &owner_tag, "plugin",
				       NULL, err, sizeof err),
			 0);
	assert_int_equal(publish(&k, "a/b", NULL, NULL), 0);
	assert_int_equal(publish(&k, "a/b", NULL, NULL), 0);
	assert_int_equal(s.calls, 1);
	assert_int_equal(other, 0); /* removed before its turn */
	assert_int_equal(owned, 4);
	/* Owner checks, then removal by owner. */
	uint64_t id;
	assert_int_equal(bus_subscribe(k.bus, "q", NULL, record, &owned, &owner_tag, "plugin", &id,
				       err, sizeof err),
			 0);
	assert_int_equal(bus_unsubscribe(k.bus, id, &other), LINLI_EPERM);
	assert_int_equal(bus_unsubscribe_owner(k.bus, &owner_tag), 3);
	assert_int_equal(publish(&k, "a/b", NULL, NULL), 0);
	assert_int_equal(owned, 4);
	close_bus(&k);
}

/* ---- release of a wrapper's per-subscription data ---- */

struct tramp {
	struct kernel *k;
	uint64_t id;
	int *released;
	bool unsub_self;
};

static void tramp_release(void *ud)
{
	struct tramp *t = ud;
	(*t->released)++;
	free(t);
}

static int tramp_handler(const struct bus_event *ev, void *ud)
{
	(void)ev;
	struct tramp *t = ud;
	if (t->unsub_self) {
		int before = *t->released;
		assert_int_equal(bus_unsubscribe(t->k->bus, t->id, NULL), 0);
		assert_int_equal(*t->released, before); /* not while the handler runs */
		t->unsub_self = false;			/* still ours to touch */
	}
	return 0;
}

static uint64_t tramp_sub(struct kernel *k, int *released, const void *owner, bool self)
{
	struct tramp *t = calloc(1, sizeof *t);
	char err[256];
	t->k = k;
	t->released = released;
	t->unsub_self = self;
	assert_int_equal(bus_subscribe(k->bus, "t/#", NULL, tramp_handler, t, owner, "w", &t->id,
				       err, sizeof err),
			 0);
	assert_int_equal(bus_set_release(k->bus, t->id, tramp_release), 0);
	return t->id;
}

static void test_release_once_when_gone(void **state)
{
	(void)state;
	struct kernel k;
	open_bus(&k, NULL);
	int released = 0, owner;
	uint64_t a = tramp_sub(&k, &released, NULL, false);
	tramp_sub(&k, &released, &owner, false);
	tramp_sub(&k, &released, &owner, false);
	tramp_sub(&k, &released, NULL, true);
	tramp_sub(&k, &released, NULL, false); /* left for bus_close */
	assert_int_equal(bus_set_release(k.bus, 999, tramp_release), LINLI_ENOENT);
	assert_int_equal(bus_unsubscribe(k.bus, a, NULL), 0);
	assert_int_equal(released, 1);
	assert_int_equal(bus_unsubscribe_owner(k.bus, &owner), 2);
	assert_int_equal(released, 3);
	assert_int_equal(publish(&k, "t/x", NULL, NULL), 0); /* one unsubscribes itself */
	assert_int_equal(released, 4);
	bus_close(k.bus);
	assert_int_equal(released, 5);
	kernel_destroy(&k);
}

/* ---- shedding ---- */

struct shed {
	struct kernel *k;
	int telemetry, consequence;
	int nested_busy, nested_ok;
};

static int count_class(const struct bus_event *ev, void *ud)
{
	struct shed *s = ud;
	if (ev->cls == BUS_CONSEQUENCE)
		s->consequence++;
	else
		s->telemetry++;
	return 0;
}

static void test_shed_telemetry_never_consequence(void **state)
{
	(void)state;
	struct kernel k;
	open_bus(&k, "bus = { telemetry_queue = 16; telemetry = [ \"dev/+/+/reading/#\" ]; };\n");
	struct shed s = {.k = &k};
	char err[256];
	assert_int_equal(
	    bus_subscribe(k.bus, "#", NULL, count_class, &s, NULL, "count", NULL, err, sizeof err),
	    0);
	/* The kernel loop is not running: posts wait in the kernel's queue. */
	int busy = 0;
	for (int i = 0; i < 100; i++) {
		struct bus_msg m = {"dev/meter/m1/reading/power", "driver", "hefei", NULL, 0};
		int rc = bus_post(k.bus, &m, err, sizeof err);
		if (rc == LINLI_EBUSY) {
			busy++;
			assert_non_null(strstr(err, "telemetry shed"));
		} else
			assert_int_equal(rc, 0);
		struct bus_msg a = {i % 2 ? "alarm/raised" : "dev/smoke/sd-1/event/alarm", "driver",
				    "hefei", NULL, 0};
		assert_int_equal(bus_post(k.bus, &a, err, sizeof err), 0);
	}
	assert_int_equal(busy, 100 - 16);
	kernel_stop(&k);
	kernel_run(&k);
	assert_int_equal(s.telemetry, 16);
	assert_int_equal(s.consequence, 100);
	struct bus_totals t;
	bus_get_totals(k.bus, &t);
	assert_int_equal(t.shed, 84);
	assert_int_equal(t.consequence_published, 100);
	/* Counted per family: the telemetry family, not the catch-all. */
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	bus_pack_families(k.bus, &pk);
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	assert_int_equal(msgpack_unpack_next(&up, sb.data, sb.size, NULL), MSGPACK_UNPACK_SUCCESS);
	const msgpack_object *arr = &up.data;
	assert_int_equal(arr->type, MSGPACK_OBJECT_ARRAY);
	assert_int_equal(arr->via.array.size, 6); /* 4 default consequence + 1 telemetry + '#' */
	int checked = 0;
	for (uint32_t i = 0; i < arr->via.array.size; i++) {
		const msgpack_object *f = &arr->via.array.ptr[i];
		if (mp_eq(mp_get(f, "family"), "dev/+/+/reading/#")) {
			assert_true(mp_eq(mp_get(f, "class"), "telemetry"));
			assert_int_equal(mp_get(f, "shed")->via.u64, 84);
			assert_int_equal(mp_get(f, "published")->via.u64, 16);
			checked++;
		} else if (mp_eq(mp_get(f, "family"), "alarm/#") ||
			   mp_eq(mp_get(f, "family"), "dev/+/+/event/#")) {
			assert_true(mp_eq(mp_get(f, "class"), "consequence"));
			assert_int_equal(mp_get(f, "shed")->via.u64, 0);
			assert_int_equal(mp_get(f, "published")->via.u64, 50);
			checked++;
		}
	}
	assert_int_equal(checked, 3);
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&sb);
	close_bus(&k);
}

/* Nested publishes queue behind the delivery: the same bound applies. */
static int flood(const struct bus_event *ev, void *ud)
{
	struct shed *s = ud;
	if (strcmp(ev->topic, "go") != 0)
		return 0;
	char err[256];
	for (int i = 0; i < 50; i++) {
		struct bus_msg m = {"sensor/t", "flood", "hefei", NULL, 0};
		int rc = bus_publish(s->k->bus, &m, NULL, err, sizeof err);
		if (rc == LINLI_EBUSY)
			s->nested_busy++;
		else if (rc == 0)
			s->nested_ok++;
		struct bus_msg a = {"incident/reported", "flood", "hefei", NULL, 0};
		assert_int_equal(bus_publish(s->k->bus, &a, NULL, err, sizeof err), 0);
	}
	return 0;
}

static void test_shed_nested(void **state)
{
	(void)state;
	struct kernel k;
	open_bus(&k, "bus = { telemetry_queue = 16; };\n");
	struct shed s = {.k = &k};
	char err[256];
	assert_int_equal(
	    bus_subscribe(k.bus, "#", NULL, flood, &s, NULL, "flood", NULL, err, sizeof err), 0);
	assert_int_equal(
	    bus_subscribe(k.bus, "#", NULL, count_class, &s, NULL, "count", NULL, err, sizeof err),
	    0);
	assert_int_equal(publish(&k, "go", NULL, NULL), 0);
	assert_int_equal(s.nested_ok, 16);
	assert_int_equal(s.nested_busy, 34);
	assert_int_equal(s.consequence, 50);
	assert_int_equal(s.telemetry, 1 + 16);
	close_bus(&k);
}

/* ---- the journal ---- */

struct jr {
	char trace[256];
	int n;
	int writes, flushes;
	bool fail_flush;
	uint64_t last_seq;
};

static int j_write(void *arg, const struct bus_event *ev, char *err, size_t errlen)
{
	struct jr *j = arg;
	if (strstr(ev->topic, "refuse")) {
		snprintf(err, errlen, "disk full (test)");
		return LINLI_EFULL;
	}
	assert_int_equal(ev->cls, BUS_CONSEQUENCE);
	assert_true(ev->seq > j->last_seq);
	j->last_seq = ev->seq;
	j->writes++;
	j->trace[j->n++] = 'J';
	return 0;
}

static int j_flush(void *arg, char *err, size_t errlen)
{
	struct jr *j = arg;
	j->flushes++;
	if (j->fail_flush) {
		snprintf(err, errlen, "fsync failed (test)");
		return LINLI_EIO;
	}
	return 0;
}

static int j_handler(const struct bus_event *ev, void *ud)
{
	struct jr *j = ud;
	j->trace[j->n++] = ev->cls == BUS_CONSEQUENCE ? 'C' : 'T';
	return 0;
}

static void publish_in_batch(struct kernel *k, void *arg)
{
	(void)arg;
	assert_int_equal(publish(k, "alarm/raised", NULL, NULL), 0);
	kernel_stop(k);
}

static void test_journal_before_delivery(void **state)
{
	(void)state;
	struct kernel k;
	open_bus(&k, NULL);
	struct jr j = {0};
	struct bus_journal bj = {j_write, j_flush, &j};
	assert_false(bus_has_journal(k.bus));
	bus_set_journal(k.bus, &bj);
	assert_true(bus_has_journal(k.bus));
	char err[256];
	assert_int_equal(
	    bus_subscribe(k.bus, "#", NULL, j_handler, &j, NULL, "h", NULL, err, sizeof err), 0);
	assert_int_equal(publish(&k, "alarm/raised", NULL, NULL), 0);
	assert_int_equal(publish(&k, "sensor/t", NULL, NULL), 0);
	assert_int_equal(publish(&k, "incident/reported", NULL, NULL), 0);
	assert_string_equal(j.trace, "JCTJC"); /* journal first; telemetry not journaled */
	/* A refusal refuses the publish: nothing delivered, the publisher told why. */
	struct bus_msg m = {"alarm/refuse", "p", "hefei", NULL, 0};
	uint64_t seq = 0;
	assert_int_equal(bus_publish(k.bus, &m, &seq, err, sizeof err), LINLI_EFULL);
	assert_non_null(strstr(err, "disk full (test)"));
	assert_non_null(strstr(err, "alarm/refuse"));
	assert_string_equal(j.trace, "JCTJC");
	struct bus_totals t;
	bus_get_totals(k.bus, &t);
	assert_int_equal(t.refused, 1);
	assert_int_equal(t.published, 3);
	/* Sealing: nothing leaves the process before the journal flushed at a batch end. */
	assert_int_equal(bus_sealed_seq(k.bus), 0);
	j.fail_flush = true;
	assert_int_equal(kernel_post(&k, publish_in_batch, NULL), 0);
	kernel_run(&k);
	assert_int_equal(j.flushes, 1);
	assert_int_equal(bus_sealed_seq(k.bus), 0); /* flush failed: held back */
	close_bus(&k);

	/* Same again with a working flush: sealed through the last seq. */
	open_bus(&k, NULL);
	memset(&j, 0, sizeof j);
	bus_set_journal(k.bus, &bj);
	assert_int_equal(publish(&k, "alarm/raised", NULL, NULL), 0);
	assert_int_equal(kernel_post(&k, publish_in_batch, NULL), 0);
	kernel_run(&k);
	assert_int_equal(j.flushes, 1);
	assert_int_equal(bus_sealed_seq(k.bus), 2);
	close_bus(&k);
}

/* ---- publish validation ---- */

static void test_publish_validation(void **state)
{
	(void)state;
	struct kernel k;
	open_bus(&k, NULL);
	char err[512];
	struct {
		struct bus_msg m;
		int rc;
		const char *msg;
	} cases[] = {
	    {{"a/+", "p", "hefei", NULL, 0}, LINLI_EINVAL, "topic 'a/+': wildcards"},
	    {{"", "p", "hefei", NULL, 0}, LINLI_EINVAL, "topic '': empty"},
	    {{NULL, "p", "hefei", NULL, 0}, LINLI_EINVAL, "topic '': missing"},
	    {{"a", "", "hefei", NULL, 0}, LINLI_EINVAL, "publisher: missing"},
	    {{"a", "p\n", "hefei", NULL, 0}, LINLI_EINVAL, "printable ASCII"},
	    {{"a", "p", "Hefei", NULL, 0}, LINLI_EINVAL, "scope 'Hefei'"},
	    {{"a", "p", "", NULL, 0}, LINLI_EINVAL, "scope '': empty path"},
	    {{"a", "p", NULL, NULL, 0}, LINLI_EINVAL, "scope '': missing"},
	    {{"a", "p", "hefei", "\x91\x01", 2}, LINLI_EINVAL, "must be a MessagePack map"},
	    {{"a", "p", "hefei", "\x81\xa1k", 3}, LINLI_EINVAL, "not well-formed"},
	    {{"a", "p", "hefei", "\x81\x01\x02", 3}, LINLI_EINVAL, "key is not a string"},
	    {{"a", "p", "hefei", "\x80\x80", 2}, LINLI_EINVAL, "bytes after its map"},
	    {{"a", "p", "hefei", "\x81\xa1k\xc1", 4}, LINLI_EINVAL, "not well-formed"},
	    {{"a", "p", "hefei", "\xdf\xff\xff\xff\xff", 5}, LINLI_EINVAL, "not well-formed"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		err[0] = '\0';
		int rc = bus_publish(k.bus, &cases[i].m, NULL, err, sizeof err);
		if (rc != cases[i].rc || !strstr(err, cases[i].msg))
			fail_msg("case %zu: rc %d err '%s', want %d '%s'", i, rc, err, cases[i].rc,
				 cases[i].msg);
	}
	/* Deep nesting is refused, not recursed into without end. */
	char deep[100];
	deep[0] = (char)0x81;
	deep[1] = (char)0xa1;
	deep[2] = 'k';
	for (int i = 3; i < 99; i++)
		deep[i] = (char)0x91;
	deep[99] = 0x01;
	struct bus_msg d = {"a", "p", "hefei", deep, sizeof deep};
	assert_int_equal(bus_publish(k.bus, &d, NULL, err, sizeof err), LINLI_EINVAL);
	/* Too large. */
	size_t big = BUS_PAYLOAD_MAX + 10;
	char *b = calloc(1, big);
	b[0] = (char)0x80;
	struct bus_msg bm = {"a", "p", "hefei", b, big};
	assert_int_equal(bus_publish(k.bus, &bm, NULL, err, sizeof err), LINLI_E2BIG);
	free(b);
	/* A well-formed rich payload passes: nested map, array, str8, bin, float, ext. */
	static const char rich[] = "\x84\xa1m\x81\xa1x\x01\xa1\x61\x93\xc0\xc3\xcb\0\0\0\0\0\0\0\0"
				   "\xa1s\xd9\x03\x61\x62\x63\xa1\x65\xd6\x01\0\0\0\0";
	struct bus_msg rm = {"a", "p", "hefei", rich, sizeof rich - 1};
	uint64_t seq = 0;
	if (bus_publish(k.bus, &rm, &seq, err, sizeof err) != 0)
		fail_msg("rich payload refused: %s", err);
	assert_int_equal(seq, 1);
	/* Nothing refused was counted as published. */
	struct bus_totals t;
	bus_get_totals(k.bus, &t);
	assert_int_equal(t.published, 1);
	close_bus(&k);
}

/*
 * The validator against msgpack-c: a payload of every type is accepted, every
 * truncation of it refused, and no random mutation is accepted that msgpack-c
 * would not read as exactly one map (an accepted bad payload would corrupt the
 * replies of external subscribers).
 */
static void test_payload_validator_agrees_with_msgpack(void **state)
{
	(void)state;
	struct kernel k;
	open_bus(&k, NULL);
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	static char big[70000];
	memset(big, 'x', sizeof big);
	msgpack_pack_map(&pk, 18);
	mp_kv_int(&pk, "i8", -100);
	mp_kv_int(&pk, "i16", -30000);
	mp_kv_int(&pk, "i32", -2000000000);
	mp_kv_int(&pk, "i64", INT64_MIN);
	mp_kv_uint(&pk, "u8", 200);
	mp_kv_uint(&pk, "u16", 60000);
	mp_kv_uint(&pk, "u32", 4000000000u);
	mp_kv_uint(&pk, "u64", UINT64_MAX);
	mp_str(&pk, "f32");
	msgpack_pack_float(&pk, 1.5f);
	mp_kv_double(&pk, "f64", 2.5);
	mp_str(&pk, "str16");
	msgpack_pack_str(&pk, 300);
	msgpack_pack_str_body(&pk, big, 300);
	mp_str(&pk, "str32");
	msgpack_pack_str(&pk, sizeof big);
	msgpack_pack_str_body(&pk, big, sizeof big);
	mp_str(&pk, "bin8");
	msgpack_pack_bin(&pk, 3);
	msgpack_pack_bin_body(&pk, "abc", 3);
	mp_str(&pk, "ext8");
	msgpack_pack_ext(&pk, 3, 7);
	msgpack_pack_ext_body(&pk, "abc", 3);
	mp_str(&pk, "fixext16");
	msgpack_pack_ext(&pk, 16, 1);
	msgpack_pack_ext_body(&pk, big, 16);
	mp_str(&pk, "array16");
	msgpack_pack_array(&pk, 20);
	for (int i = 0; i < 20; i++)
		msgpack_pack_nil(&pk);
	mp_str(&pk, "map16");
	msgpack_pack_map(&pk, 16);
	for (int i = 0; i < 16; i++) {
		char key[8];
		snprintf(key, sizeof key, "k%d", i);
		mp_kv_bool(&pk, key, i % 2);
	}
	mp_str(&pk, "empty");
	msgpack_pack_map(&pk, 0);
	char err[512];
	struct bus_msg m = {"a", "p", "hefei", sb.data, sb.size};
	if (bus_publish(k.bus, &m, NULL, err, sizeof err) != 0)
		fail_msg("every type: %s", err);
	/* Every strict prefix is incomplete. */
	for (size_t n = 1; n < sb.size; n += n < 400 ? 1 : 997) {
		m.payload_len = n;
		assert_int_equal(bus_publish(k.bus, &m, NULL, err, sizeof err), LINLI_EINVAL);
	}
	/* Random mutations of a small payload: accepted only if msgpack-c agrees. */
	msgpack_sbuffer_clear(&sb);
	msgpack_pack_map(&pk, 3);
	mp_kv_int(&pk, "a", 1000);
	mp_str(&pk, "b");
	msgpack_pack_array(&pk, 2);
	msgpack_pack_str(&pk, 2);
	msgpack_pack_str_body(&pk, "xy", 2);
	msgpack_pack_double(&pk, 0.5);
	mp_kv_str(&pk, "c", "hello");
	char buf[64];
	size_t len = sb.size;
	assert_true(len <= sizeof buf);
	int accepted = 0;
	for (int t = 0; t < 20000; t++) {
		memcpy(buf, sb.data, len);
		for (int j = 0; j < 1 + (int)rnd(3); j++)
			buf[rnd((unsigned)len)] = (char)rnd(256);
		size_t l = len - (rnd(4) == 0 ? rnd((unsigned)len) : 0);
		struct bus_msg mm = {"a", "p", "hefei", buf, l};
		if (bus_publish(k.bus, &mm, NULL, err, sizeof err) != 0)
			continue;
		accepted++;
		msgpack_unpacked up;
		msgpack_unpacked_init(&up);
		size_t off = 0;
		int r = msgpack_unpack_next(&up, buf, l, &off);
		if (r != MSGPACK_UNPACK_SUCCESS || off != l || up.data.type != MSGPACK_OBJECT_MAP)
			fail_msg("accepted a payload msgpack-c reads differently (try %d)", t);
		msgpack_unpacked_destroy(&up);
	}
	assert_true(accepted > 100); /* the mutations that stay valid do pass */
	msgpack_sbuffer_destroy(&sb);
	close_bus(&k);
}

static void *publish_off_thread(void *arg)
{
	struct kernel *k = arg;
	char err[256];
	struct bus_msg m = {"a", "p", "hefei", NULL, 0};
	int rc = bus_publish(k->bus, &m, NULL, err, sizeof err);
	return (void *)(intptr_t)rc;
}

static void test_publish_off_thread_refused(void **state)
{
	(void)state;
	struct kernel k;
	open_bus(&k, NULL);
	pthread_t t;
	void *rc;
	pthread_create(&t, NULL, publish_off_thread, &k);
	pthread_join(t, &rc);
	assert_int_equal((intptr_t)rc, LINLI_ESTATE);
	/* After the loop has ended, posts are refused with ESTATE too. */
	kernel_stop(&k);
	kernel_run(&k);
	char err[256];
	struct bus_msg m = {"alarm/x", "p", "hefei", NULL, 0};
	assert_int_equal(bus_post(k.bus, &m, err, sizeof err), LINLI_ESTATE);
	close_bus(&k);
}

/* ---- config ---- */

/* ---- request/reply ---- */

struct rqt {
	struct kernel *k;
	int served[4]; /* per server index */
	char seen_scope[4][64];
	int answers, statuses[16], lens[16];
	uint64_t ids[16];
	char msgs[16][160];
	uint64_t keep_id; /* a request S2 keeps without replying */
	uint64_t s2;
};

static int owner_a, owner_b; /* server owners */

/* The server's ud: the test and its index. */
struct srvud {
	struct rqt *t;
	int idx;
	const void *owner;
};

static void srv_fn(const struct bus_request *rq, void *ud)
{
	struct srvud *s = ud;
	struct rqt *t = s->t;
	t->served[s->idx]++;
	snprintf(t->seen_scope[s->idx], sizeof t->seen_scope[s->idx], "%s", rq->scope);
	char err[256];
	if (strcmp(rq->topic, "rq/a") == 0) {
		struct pl p = payload_n(40 + (uint32_t)s->idx);
		assert_int_equal(bus_reply(t->k->bus, rq->id, s->owner, 5 + s->idx, p.b, p.n,
					   "fine", err, sizeof err),
				 0);
		/* Answered: a second reply is refused. */
		assert_int_equal(
		    bus_reply(t->k->bus, rq->id, s->owner, 0, NULL, 0, NULL, err, sizeof err),
		    LINLI_ENOENT);
	} else if (strcmp(rq->topic, "rq/keep") == 0)
		t->keep_id = rq->id;
	/* rq/slow: no reply */
}

static void ans_fn(uint64_t id, int status, const void *rec, size_t len, const char *msg, void *ud)
{
	(void)rec;
	struct rqt *t = ud;
	assert_true(t->answers < 16);
	t->ids[t->answers] = id;
	t->statuses[t->answers] = status;
	t->lens[t->answers] = (int)len;
	snprintf(t->msgs[t->answers], sizeof t->msgs[0], "%s", msg);
	t->answers++;
}

static void rq_stop(struct kernel *k, void *arg)
{
	(void)arg;
	kernel_stop(k);
}

static void rq_unserve_s2(struct kernel *k, void *arg)
{
	struct rqt *t = arg;
	assert_int_equal(bus_unserve(k->bus, t->s2, &owner_a), LINLI_EPERM);
	assert_int_equal(bus_unserve(k->bus, t->s2, &owner_b), 0);
	assert_int_equal(bus_unserve(k->bus, t->s2, &owner_b), LINLI_ENOENT);
}

static uint64_t send_rq(struct rqt *t, const char *topic, const char *scope, uint32_t tmo, int want)
{
	char err[256] = "";
	struct bus_msg m = {topic, "asker", scope, NULL, 0};
	uint64_t id = 0;
	int rc = bus_request(t->k->bus, &m, tmo, ans_fn, t, t, &id, err, sizeof err);
	if (rc != want)
		fail_msg("request %s at %s: %d (%s), want %d", topic, scope, rc, err, want);
	return id;
}

static void test_request_reply(void **state)
{
	(void)state;
	struct kernel k;
	open_bus(&k, NULL);
	struct rqt t = {.k = &k};
	struct srvud su[4] = {
	    {&t, 0, &owner_a}, {&t, 1, &owner_b}, {&t, 2, &owner_a}, {&t, 3, &owner_a}};
	char err[256];
	uint64_t s1, s3, s4;
	assert_int_equal(bus_serve(k.bus, "rq/#", "hefei/baohe", srv_fn, &su[0], &owner_a, "a", &s1,
				   err, sizeof err),
			 0);
	assert_int_equal(bus_serve(k.bus, "rq/+", "hefei/shushan", srv_fn, &su[1], &owner_b, "b",
				   &t.s2, err, sizeof err),
			 0);
	/* The same pattern over an overlapping scope is refused, naming the server. */
	assert_int_equal(bus_serve(k.bus, "rq/#", "hefei/baohe/binhu", srv_fn, &su[2], &owner_a,
				   "c", &s3, err, sizeof err),
			 LINLI_EEXIST);
	assert_non_null(strstr(err, "a serves it already"));
	/* ... over a disjoint one it is not. */
	assert_int_equal(bus_serve(k.bus, "rq/#", "hefei/luyang", srv_fn, &su[3], &owner_a, "d",
				   &s4, err, sizeof err),
			 0);
	assert_int_equal(
	    bus_serve(k.bus, "rq/+/#x", "", srv_fn, &su[2], NULL, "x", &s3, err, sizeof err),
	    LINLI_EINVAL);

	uint64_t ia = send_rq(&t, "rq/a", "hefei/baohe/binhu", 0, 0); /* to S1 */
	uint64_t ib = send_rq(&t, "rq/a", "hefei/shushan", 0, 0);     /* to S2 */
	/* Outside every server's jurisdiction, or above it: never delivered. */
	send_rq(&t, "rq/a", "hefei/yaohai", 0, LINLI_ENOENT);
	send_rq(&t, "rq/a", "hefei", 0, LINLI_ENOENT);
	send_rq(&t, "other", "hefei/baohe", 0, LINLI_ENOENT);
	send_rq(&t, "rq/+", "hefei/baohe", 0, LINLI_EINVAL);
	send_rq(&t, "rq/a", "hefei/baohe", BUS_REQUEST_TIMEOUT_MAX_MS + 1, LINLI_EINVAL);
	uint64_t islow = send_rq(&t, "rq/slow", "hefei/baohe", 50, 0);
	uint64_t ikeep = send_rq(&t, "rq/keep", "hefei/shushan", 60000, 0);
	uint64_t idrop = send_rq(&t, "rq/slow", "hefei/baohe", 50, 0);
	/* Nothing is delivered inside bus_request. */
	assert_int_equal(t.served[0] + t.served[1], 0);
	assert_int_equal(bus_request_drop(k.bus, idrop, &owner_a), LINLI_ENOENT); /* not its own */
	assert_int_equal(bus_request_drop(k.bus, idrop, &t), 0);
	kernel_timer_add(&k, 120, 0, rq_unserve_s2, &t);
	kernel_timer_add(&k, 250, 0, rq_stop, NULL);
	kernel_run(&k);

	assert_int_equal(t.served[0], 2); /* rq/a and one rq/slow: the dropped one never */
	assert_int_equal(t.served[1], 2);
	assert_int_equal(t.served[3], 0);
	assert_string_equal(t.seen_scope[0], "hefei/baohe");
	assert_int_equal(t.answers, 4);
	/* Replies in the order they were made; the timeout, then the gone server. */
	assert_true(t.ids[0] == ia && t.statuses[0] == 5 && t.lens[0] == 8);
	assert_string_equal(t.msgs[0], "fine");
	assert_true(t.ids[1] == ib && t.statuses[1] == 6);
	assert_true(t.ids[2] == islow && t.statuses[2] == LINLI_ETIMEDOUT && t.lens[2] == 0);
	assert_true(t.ids[3] == ikeep && t.statuses[3] == LINLI_ESTATE);
	assert_non_null(strstr(t.msgs[3], "b stopped serving rq/+ before it replied"));
	/* A late reply to what timed out, or was answered already, is refused. */
	assert_int_equal(bus_reply(k.bus, islow, &owner_a, 0, NULL, 0, NULL, err, sizeof err),
			 LINLI_ENOENT);
	assert_int_equal(bus_reply(k.bus, t.keep_id, &owner_b, 0, NULL, 0, NULL, err, sizeof err),
			 LINLI_ENOENT);

	struct bus_rq_totals tot;
	bus_rq_get_totals(k.bus, &tot);
	assert_int_equal(tot.requests, 5);
	assert_int_equal(tot.no_server, 3);
	assert_int_equal(tot.timeouts, 1);
	assert_int_equal(tot.gone, 1);
	assert_int_equal(tot.replies, 2);
	assert_int_equal(tot.pending, 0);
	assert_int_equal(tot.servers, 2);

	/* Suspended (a reload): no requests, no clash; put back while the pattern is taken:
	 * refused. */
	assert_int_equal(bus_serve_suspend(k.bus, s1, true), 0);
	send_rq(&t, "rq/a", "hefei/baohe", 0, LINLI_ENOENT);
	uint64_t s5;
	assert_int_equal(bus_serve(k.bus, "rq/#", "hefei/baohe", srv_fn, &su[2], &owner_a, "e", &s5,
				   err, sizeof err),
			 0);
	assert_int_equal(bus_serve_suspend(k.bus, s1, false), LINLI_EEXIST);
	assert_int_equal(bus_unserve(k.bus, s5, NULL), 0);
	assert_int_equal(bus_serve_suspend(k.bus, s1, false), 0);
	/* A request left pending at close is freed without a call. */
	send_rq(&t, "rq/slow", "hefei/baohe", 60000, 0);
	close_bus(&k);
	assert_int_equal(t.answers, 4);
}

static void test_bus_config(void **state)
{
	(void)state;
	struct cfg c;
	char err[1024];
	assert_int_equal(cfg_load_string(&c, NODE, "t.cfg", NULL, err, sizeof err), 0);
	assert_int_equal(c.n_bus_consequence, 4);
	assert_string_equal(c.bus_consequence[0], "dev/+/+/event/#");
	assert_string_equal(c.bus_consequence[3], "application/#");
	assert_int_equal(c.bus_telemetry_queue, 65536);
	assert_int_equal(c.bus_subscriber_idle_s, 30);
	cfg_free(&c);
	assert_int_equal(cfg_load_string(&c,
					 NODE
					 "bus = {\n consequence = [ \"alarm/#\" ];\n"
					 " telemetry_queue = 100;\n subscriber_queue = 10;\n"
					 " subscriber_backlog = 20;\n subscriber_idle_s = 5;\n};\n",
					 "t.cfg", NULL, err, sizeof err),
			 0);
	assert_int_equal(c.n_bus_consequence, 1);
	assert_int_equal(c.bus_subscriber_backlog, 20);
	cfg_free(&c);
	static const struct {
		const char *text, *expect;
	} bad[] = {
	    {NODE "bus = {\n consequence = [ \"alarm/#/x\" ];\n};\n",
	     "t.cfg:4: bus.consequence: 'alarm/#/x' is not a topic pattern"},
	    {NODE "bus = {\n consequence = [ \"a\", \"a\" ];\n};\n",
	     "t.cfg:4: bus.consequence: 'a' is listed twice"},
	    {NODE "bus = {\n telemetry = [ \"alarm/#\" ];\n};\n",
	     "t.cfg:4: bus.telemetry: 'alarm/#' is also in bus.consequence"},
	    {NODE "bus = {\n telemetry_queue = 3;\n};\n",
	     "t.cfg:4: bus.telemetry_queue: 3 is outside"},
	    {NODE "bus = {\n subscriber_queue = 100;\n subscriber_backlog = 50;\n};\n",
	     "t.cfg:5: bus.subscriber_backlog: 50 is below bus.subscriber_queue"},
	    {NODE "bus = {\n queue = 5;\n};\n", "t.cfg:4: bus.queue: unknown key"},
	    {NODE "bus = {\n consequence = \"alarm/#\";\n};\n",
	     "t.cfg:4: bus.consequence: must be a list"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = '\0';
		assert_int_equal(cfg_load_string(&c, bad[i].text, "t.cfg", NULL, err, sizeof err),
				 LINLI_ECONFIG);
		if (!strstr(err, bad[i].expect))
			fail_msg("case %zu: '%s' lacks '%s'", i, err, bad[i].expect);
	}
}

int main(void)
{
	log_set_level(LOG_WARN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_topic_and_pattern_check),
	    cmocka_unit_test(test_pattern_match_table),
	    cmocka_unit_test(test_trie_matches_linear),
	    cmocka_unit_test(test_scope_filtering),
	    cmocka_unit_test(test_order_per_publisher),
	    cmocka_unit_test(test_nested_publish_queues),
	    cmocka_unit_test(test_cause_depth_kept_through_the_queue),
	    cmocka_unit_test(test_delivery_budget_per_turn),
	    cmocka_unit_test(test_handler_error_isolated),
	    cmocka_unit_test(test_unsubscribe_inside_handler),
	    cmocka_unit_test(test_release_once_when_gone),
	    cmocka_unit_test(test_shed_telemetry_never_consequence),
	    cmocka_unit_test(test_shed_nested),
	    cmocka_unit_test(test_journal_before_delivery),
	    cmocka_unit_test(test_publish_validation),
	    cmocka_unit_test(test_payload_validator_agrees_with_msgpack),
	    cmocka_unit_test(test_publish_off_thread_refused),
	    cmocka_unit_test(test_bus_config),
	    cmocka_unit_test(test_request_reply),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
