/*
 * cmd — the registry of control commands and one call's state.
 *
 * A command is a word and an optional sub-word (`status`, `plugins list`)
 * with a handler that runs on the kernel thread. Transports (the nng control
 * socket now, HTTP later) build a cmd_call, dispatch it and are told through
 * call->finish when the reply is ready — at once, or later for a handler that
 * returns CMD_PENDING (e.g. a write acknowledged after its commit). Plugins
 * register commands with their own owner pointer so that unloading removes
 * them all. Knows nothing about nng or JSON.
 */
#ifndef LINLI_CMD_H
#define LINLI_CMD_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>

struct kernel;
struct cmd_call;
struct tier_principal;

#define CMD_PENDING 1 /* handler will call cmd_finish later, never before returning */

typedef int (*cmd_fn)(struct cmd_call *call, void *ud);

struct cmd_call {
	struct kernel *k;
	int argc;
	char **argv;		/* owned by the call */
	char *session;		/* token or NULL; owned */
	char *input;		/* body or NULL; owned */
	const struct tier_principal *who; /* the caller (access.h); NULL: not yet known */
	void *who_ref;			  /* what keeps *who alive; released with the call */
	void (*who_release)(void *ref);
	size_t input_len;
	/* The handler packs exactly one object, the reply's "data". */
	msgpack_sbuffer data;
	msgpack_packer pk;
	char err[1024];		/* message for a failure */
	/*
	 * A handler that returns CMD_PENDING and keeps the call somewhere (a
	 * wait list) sets on_cancel: at shutdown cmd_cancel_pending calls it so
	 * the handler forgets the call, then finishes the call with LINLI_ESTATE.
	 */
	void (*on_cancel)(struct cmd_call *call, void *arg);
	void *cancel_arg;
	/* Transport side. */
	void (*finish)(struct cmd_call *call, int rc);
	void *transport;
	/* Registry side: the list of pending calls. */
	struct cmd_registry *reg;
	struct cmd_call *pend_prev, *pend_next;
	bool pending;
};

struct cmd_registry;

struct cmd_registry *cmd_registry_new(void);
void cmd_registry_free(struct cmd_registry *r);

/*
 * cmd_register — add `name [sub]`. `usage` shows the arguments, `summary`
 * one line of help. Strings are copied. Returns LINLI_EEXIST when taken.
 */
int cmd_register(struct cmd_registry *r, const char *name, const char *sub, const char *usage,
		 const char *summary, cmd_fn fn, void *ud, const void *owner);
/* Remove every command registered with `owner`; returns how many. */
int cmd_unregister_owner(struct cmd_registry *r, const void *owner);

/* Allocate a call over argv (copied). */
struct cmd_call *cmd_call_new(struct kernel *k, int argc, char **argv);
void cmd_call_free(struct cmd_call *call);

/*
 * cmd_dispatch — find and run the handler for call->argv. Calls
 * call->finish(call, rc) when the result is known (maybe later).
 */
void cmd_dispatch(struct cmd_registry *r, struct cmd_call *call);

/* Complete a CMD_PENDING call with rc (0 or a LINLI_E* code). */
void cmd_finish(struct cmd_call *call, int rc);

/*
 * Finish every call still pending (shutdown): each handler's on_cancel runs,
 * then the call fails with LINLI_ESTATE "linlid is shutting down".
 */
void cmd_cancel_pending(struct cmd_registry *r);

/* Set call->err from a format and return rc, for `return cmd_fail(...)`. */
int cmd_fail(struct cmd_call *call, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Does argv contain the flag `--name` (e.g. "--all")? Removes it if so. */
bool cmd_flag(struct cmd_call *call, const char *flag);

/* An option of a command: `--name VALUE` or `--name=VALUE`, allowed by its bit. */
struct cmd_opt {
	const char *name; /* without the dashes; NULL ends a table */
	int bit;
};

/*
 * cmd_args — walk argv[2..] of `WORD SUB ...`: words that do not start with
 * "--" go to pos (at most max_pos; *n_pos counts them), each option of
 * `opts` whose bit is in `allowed` to on(call, ud, bit, VALUE), which
 * returns 0 or a code with call->err. Refusals name the command and its
 * usage: "WORD SUB: unexpected argument 'x' (usage: WORD SUB USAGE)",
 * "...: unknown option '--x' (usage: ...)", "...: option '--x' needs a
 * value". Returns 0 or that code.
 */
int cmd_args(struct cmd_call *call, const struct cmd_opt *opts, int allowed, const char **pos,
	     int max_pos, int *n_pos, const char *usage,
	     int (*on)(struct cmd_call *call, void *ud, int bit, const char *value), void *ud);

/* Pack the command list, for `help` and the console's completion. */
void cmd_pack_help(struct cmd_registry *r, msgpack_packer *pk);
/*
 * Pack the entries of command `name` (NULL: all), of its subcommand `sub`
 * only when not NULL; LINLI_ENOENT (nothing packed) when none matches.
 */
int cmd_pack_help_of(struct cmd_registry *r, const char *name, const char *sub,
		     msgpack_packer *pk);
/* Is `name` a command (with or without subcommands)? */
bool cmd_known(const struct cmd_registry *r, const char *name);

#endif
