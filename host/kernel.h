/*
 * kernel — the kernel thread's event queue, timers and loop.
 *
 * One thread (the one that calls kernel_run) owns dispatch: every event
 * handler, timer, plugin callback and the store's write transaction run on it,
 * so none of them needs a lock. Other threads (nng's, drivers', the signal
 * thread) hand work over with kernel_post, the only call here that is safe off
 * the kernel thread. Each wake-up of the loop takes every queued event as one
 * batch and then runs the batch-end hooks (the store commits there: group
 * commit). Never blocks in a handler; never calls into nng synchronously.
 */
#ifndef LINLI_KERNEL_H
#define LINLI_KERNEL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "idmap.h"

struct kernel;
struct control;
struct cmd_registry;
struct bus;
struct bus_remote;
struct plug_registry;
struct tiers;
struct script_rules;
struct catalog;
struct store;
struct http;
struct hal;
struct retention;
struct fed;

typedef void (*kernel_fn)(struct kernel *k, void *arg);

struct kevent {
	kernel_fn fn;
	void *arg;
	struct kevent *next;
};

struct ktimer;

#define KERNEL_MAX_HOOKS 16

struct kernel {
	struct cfg cfg;			/* owned; replaced whole on reload */
	uint64_t started_ms;		/* monotonic */
	bool test_clock;		/* linlid --test-clock: `clock` may move the time */
	pthread_t thread;		/* the kernel thread, once running */
	/* The queue: the only state shared across threads. */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct kevent *head, *tail;
	uint64_t queued;		/* events waiting */
	bool stopping;			/* stop requested: drain, then return */
	bool closed;			/* loop returned: posts are refused */
	/* Kernel-thread-only state below. */
	struct ktimer **timers;		/* a min-heap by (due, seq); n_timers of them */
	size_t n_timers, cap_timers;
	struct idmap timer_ids;		/* id -> timer, for cancel */
	uint64_t next_timer_id, timer_seq;
	struct {
		kernel_fn fn;
		void *arg;
	} batch_hooks[KERNEL_MAX_HOOKS];
	int n_batch_hooks;
	uint64_t events_run, batches;
	uint64_t turn; /* loop turns so far; 0 outside kernel_run */
	struct control *control;
	char node_id[33]; /* random, made at first start (<data_dir>/node_id): consoles key sessions by it */
	struct cmd_registry *cmds;
	struct bus *bus;		/* the event bus (bus.h) */
	struct bus_remote *bus_remote;	/* its external subscriptions (bus_cmds.c) */
	int plugin_count;		/* running plugins, kept by the plugin loader */
	struct plug_registry *plugins;	/* host/plugin.c */
	struct script_rules *rules;	/* Lua rules of this node (script.c) */
	struct catalog *catalog;	/* the version in use (kernel thread): loaded at start, with
				   the bundles' datasets; swapped by bundle_cat_swap */
	struct store *store;		/* open from start to stop */
	struct tiers *tiers;		/* accounts, sessions, audit (tier_store.c) */
	struct http *http;		/* open-data API, NULL when off */
	struct hal *hal;		/* the device layer (hal.h); set before plugins load */
	struct retention *retention;	/* trimming, journal holders, rates (retention.h) */
	struct fed *fed;		/* the link to the tiers (fed.h); NULL: none */
};

int kernel_init(struct kernel *k);
void kernel_destroy(struct kernel *k);

/*
 * kernel_post — queue fn(k, arg) to run on the kernel thread. Safe from any
 * thread. Returns 0, or LINLI_ESTATE once the loop has returned (the caller
 * still owns `arg`), or LINLI_ENOMEM.
 */
int kernel_post(struct kernel *k, kernel_fn fn, void *arg);

/* Run the loop on the calling thread until kernel_stop and the queue drains. */
void kernel_run(struct kernel *k);

/* Ask the loop to drain what is queued and return. Safe from any thread. */
void kernel_stop(struct kernel *k);

/* Refuse all further posts (idempotent; kernel_run does it when it returns). */
void kernel_close(struct kernel *k);

/* Is the caller the kernel thread? */
bool kernel_on_thread(const struct kernel *k);

/*
 * Timers (kernel thread only). Runs fn after `delay_ms`, then every
 * `interval_ms` if non-zero. Returns an id > 0 for kernel_timer_cancel.
 * Timers run by kernel_clock_ms: when the test clock jumps, every timer due
 * by the new now fires at the loop's next turn in due order, and an
 * interval timer fires once and then goes on from the new now.
 */
uint64_t kernel_timer_add(struct kernel *k, uint64_t delay_ms, uint64_t interval_ms, kernel_fn fn,
			  void *arg);
bool kernel_timer_cancel(struct kernel *k, uint64_t id);

/*
 * kernel_turn — the number of the loop's current turn (one wake-up: due
 * timers, then the queued batch), counting from 1; 0 when the loop does not
 * run (unit tests driving the parts by hand). Work that may come in floods
 * (the bus's delivery queue) spends at most KERNEL_EVENT_TURN_MS of a turn
 * and continues in the next one, so requests queued meanwhile (`linli
 * status`) are served in between.
 */
#define KERNEL_EVENT_TURN_MS 20
uint64_t kernel_turn(const struct kernel *k);

/* Run fn(k, arg) after every batch of events (kernel thread only). */
int kernel_on_batch_end(struct kernel *k, kernel_fn fn, void *arg);

/*
 * kernel_now_ms — CLOCK_MONOTONIC in ms: the real time that passes, for
 * what measures a live peer or the process (idle connections and
 * subscribers, rate limits, uptime, how long a call took). The test clock
 * does not move it.
 */
uint64_t kernel_now_ms(void);

/*
 * kernel_clock_ms — the kernel's clock for deadlines: kernel_now_ms plus the
 * test clock's offset (clock.h). Timers, and deadlines the kernel keeps
 * itself (how long a journal holder has kept entries due for trimming),
 * follow it, as wall_ms (util.h) does for the times written into records.
 */
uint64_t kernel_clock_ms(void);

#endif
