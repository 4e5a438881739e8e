/*
 * bench_apps — what the application benches (tests/bench/apps/) share: one
 * node in-process, built the way linlid builds its kernel (real catalog,
 * store, bus, the .so loader and one application plugin), in a temporary
 * directory that is removed however the bench ends; clocks; checked
 * environment numbers. Each family's bench is one function that main
 * (bench_apps.c) runs: `bench_apps [governance|safety|public|government]...`.
 */
#ifndef BENCH_APPS_H
#define BENCH_APPS_H

#include <msgpack.h>
#include <stdbool.h>

#include "kernel.h"
#include "record.h"

/*
 * The families: _sizes reads the family's BENCH_* numbers (main checks every
 * family it will run before any runs); the bench prints its figures as
 * `apps.NAME: VALUE UNIT` lines.
 */
void bench_governance_sizes(void);
void bench_governance(void);
void bench_safety_sizes(void);
void bench_safety(void);
void bench_public_sizes(void);
void bench_public(void);
void bench_government_sizes(void);
void bench_government(void);
void bench_parking_sizes(void);
void bench_parking(void);
void bench_screen_sizes(void);
void bench_screen(void);

/* CLOCK_MONOTONIC, and the process's CPU time (the figures on a shared machine), in s. */
double bench_now(void);
double bench_cpu(void);

/* Print "bench_apps: WHAT: WHY", remove the node's directory, exit 1. */
__attribute__((noreturn)) void bench_die(const char *what, const char *why);

/*
 * The environment number `name` (a whole number from min to max), or def
 * when unset. Anything else ends the program with exit 2 naming the variable
 * and the range: a bench never runs silently with another size than asked.
 */
long bench_env_long(const char *name, long def, long min, long max);

/* Pack record r (freed) into buf (initialised here; the caller destroys it): a record for
 * the direct store calls. */
void bench_pack(linli_record *r, msgpack_sbuffer *buf);

/* Pack record r (freed) and store it in dataset at scope under id; bench_die on a refusal. */
void bench_put(struct kernel *k, const char *dataset, const char *scope, const char *id,
	       linli_record *r);

/* Count one write into *pending; every batch-th, end the store's batch and deliver its
 * changes (bench_die if the commit fails). */
void bench_commit_every(struct kernel *k, long *pending, long batch);

/*
 * Run the console command `PLUGIN ARGS...` (argc <= 7) synchronously, as the console
 * would; bench_die on its error. The reply, unpacked, is valid until the next call.
 */
const msgpack_object *bench_cmd(struct kernel *k, const char *plugin, int argc,
				const char **args);

/* The string field `key` of map o into buf ("" when absent, not a string or too long). */
const char *bench_str(const msgpack_object *o, const char *key, char *buf, size_t len);

struct bench_node_opts {
	const char *node, *level; /* the node's path and tier level */
	const char *plugin_so;	  /* the application plugin, copied to the plugin dir */
	const char *also_so;	  /* NULL, or one more (a plugin the first requires) */
	bool sync;		  /* fsync each commit (false: MDB_NOSYNC, the CPU cost) */
	bool loop;		  /* wired for kernel_run as linlid is: the store commits at
				     each batch end and the bus journals records of
				     consequence; else the bench commits by hand */
};

/*
 * bench_node_open — a temporary directory (in the run's, under $TMPDIR or /tmp) with
 * the plugin, a config, the real catalog and an open store: k is ready for
 * seeding. bench_node_start then opens the commands, the bus and the plugin
 * loader and starts the plugin (bench_die if it does not start). The path of
 * the directory is returned (valid until bench_node_close).
 */
const char *bench_node_open(struct kernel *k, const struct bench_node_opts *o);
void bench_node_start(struct kernel *k);

/* Stop the plugin, close everything and remove the directory. */
void bench_node_close(struct kernel *k);

#endif
