/* cmd — see cmd.h. A flat array: a few dozen commands, looked up per request. */
#include "cmd.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linli/error.h"
#include "mp.h"

struct cmd {
	char *name, *sub, *usage, *summary;
	cmd_fn fn;
	void *ud;
	const void *owner;
};

struct cmd_registry {
	struct cmd *v;
	int n, cap;
	struct cmd_call *pending; /* calls whose handler returned CMD_PENDING */
};

struct cmd_registry *cmd_registry_new(void)
{
	return calloc(1, sizeof(struct cmd_registry));
}

static void cmd_clear(struct cmd *c)
{
	free(c->name);
	free(c->sub);
	free(c->usage);
	free(c->summary);
}

void cmd_registry_free(struct cmd_registry *r)
{
	if (!r)
		return;
	for (int i = 0; i < r->n; i++)
		cmd_clear(&r->v[i]);
	free(r->v);
	free(r);
}

static bool same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static struct cmd *find(struct cmd_registry *r, const char *name, const char *sub)
{
	for (int i = 0; i < r->n; i++)
		if (strcmp(r->v[i].name, name) == 0 && same(r->v[i].sub, sub))
			return &r->v[i];
	return NULL;
}

int cmd_register(struct cmd_registry *r, const char *name, const char *sub, const char *usage,
		 const char *summary, cmd_fn fn, void *ud, const void *owner)
{
	if (!name || !*name || !fn)
		return LINLI_EINVAL;
	if (find(r, name, sub))
		return LINLI_EEXIST;
	if (r->n == r->cap) {
		int cap = r->cap ? r->cap * 2 : 32;
		struct cmd *v = realloc(r->v, (size_t)cap * sizeof *v);
		if (!v)
			return LINLI_ENOMEM;
		r->v = v;
		r->cap = cap;
	}
	struct cmd *c = &r->v[r->n++];
	c->name = strdup(name);
	c->sub = sub ? strdup(sub) : NULL;
	c->usage = strdup(usage ? usage : "");
	c->summary = strdup(summary ? summary : "");
	c->fn = fn;
	c->ud = ud;
	c->owner = owner;
	return 0;
}

int cmd_unregister_owner(struct cmd_registry *r, const void *owner)
{
	int removed = 0;
	for (int i = 0; i < r->n;) {
		if (r->v[i].owner == owner) {
			cmd_clear(&r->v[i]);
			memmove(&r->v[i], &r->v[i + 1], (size_t)(r->n - i - 1) * sizeof r->v[0]);
			r->n--;
			removed++;
		} else
			i++;
	}
	return removed;
}

struct cmd_call *cmd_call_new(struct kernel *k, int argc, char **argv)
{
	struct cmd_call *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->k = k;
	c->argv = calloc((size_t)argc + 1, sizeof(char *));
	if (!c->argv) {
		free(c);
		return NULL;
	}
	for (int i = 0; i < argc; i++)
		c->argv[i] = strdup(argv[i]);
	c->argc = argc;
	msgpack_sbuffer_init(&c->data);
	msgpack_packer_init(&c->pk, &c->data, msgpack_sbuffer_write);
	return c;
}

void cmd_call_free(struct cmd_call *c)
{
	if (!c)
		return;
	for (int i = 0; i < c->argc; i++)
		free(c->argv[i]);
	free(c->argv);
	if (c->who_release)
		c->who_release(c->who_ref);
	if (c->session)
		explicit_bzero(c->session, strlen(c->session));
	free(c->session);
	if (c->input)
		explicit_bzero(c->input, c->input_len); /* may hold a password */
	free(c->input);
	msgpack_sbuffer_destroy(&c->data);
	free(c);
}

int cmd_fail(struct cmd_call *call, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(call->err, sizeof call->err, fmt, ap);
	va_end(ap);
	return rc;
}

bool cmd_flag(struct cmd_call *call, const char *flag)
{
	for (int i = 1; i < call->argc; i++)
		if (strcmp(call->argv[i], flag) == 0) {
			free(call->argv[i]);
			memmove(&call->argv[i], &call->argv[i + 1],
				(size_t)(call->argc - i) * sizeof(char *));
			call->argc--;
			return true;
		}
	return false;
}

int cmd_args(struct cmd_call *call, const struct cmd_opt *opts, int allowed, const char **pos,
	     int max_pos, int *n_pos, const char *usage,
	     int (*on)(struct cmd_call *call, void *ud, int bit, const char *value), void *ud)
{
	const char *word = call->argv[0], *sub = call->argc > 1 ? call->argv[1] : "";
	*n_pos = 0;
	for (int i = 2; i < call->argc; i++) {
		const char *w = call->argv[i];
		if (strncmp(w, "--", 2) != 0) {
			if (*n_pos == max_pos)
				return cmd_fail(
				    call, LINLI_EINVAL,
				    "%s %s: unexpected argument '%.64s' (usage: %s %s %s)", word,
				    sub, w, word, sub, usage);
			pos[(*n_pos)++] = w;
			continue;
		}
		const char *eq = strchr(w, '=');
		size_t nl = eq ? (size_t)(eq - w - 2) : strlen(w + 2);
		int bit = 0;
		for (const struct cmd_opt *o = opts; o->name; o++)
			if (strlen(o->name) == nl && strncmp(w + 2, o->name, nl) == 0)
				bit = o->bit;
		if (!(bit & allowed))
			return cmd_fail(call, LINLI_EINVAL,
					"%s %s: unknown option '%.64s' (usage: %s %s %s)", word,
					sub, w, word, sub, usage);
		const char *v = eq ? eq + 1 : (i + 1 < call->argc ? call->argv[++i] : NULL);
		if (!v)
			return cmd_fail(call, LINLI_EINVAL, "%s %s: option '%s' needs a value",
					word, sub, w);
		int rc = on(call, ud, bit, v);
		if (rc)
			return rc;
	}
	return 0;
}

static void pend_unlink(struct cmd_call *c)
{
	if (!c->pending)
		return;
	if (c->pend_prev)
		c->pend_prev->pend_next = c->pend_next;
	else
		c->reg->pending = c->pend_next;
	if (c->pend_next)
		c->pend_next->pend_prev = c->pend_prev;
	c->pending = false;
}

void cmd_cancel_pending(struct cmd_registry *r)
{
	while (r->pending) {
		struct cmd_call *c = r->pending;
		if (c->on_cancel)
			c->on_cancel(c, c->cancel_arg);
		c->on_cancel = NULL;
		cmd_finish(c, cmd_fail(c, LINLI_ESTATE, "linlid is shutting down"));
	}
}

void cmd_finish(struct cmd_call *call, int rc)
{
	pend_unlink(call);
	if (rc && !call->err[0])
		snprintf(call->err, sizeof call->err, "%s", linli_strerror(rc));
	call->finish(call, rc);
}

void cmd_dispatch(struct cmd_registry *r, struct cmd_call *call)
{
	const char *name = call->argv[0];
	const char *sub = call->argc > 1 ? call->argv[1] : NULL;
	struct cmd *c = sub ? find(r, name, sub) : NULL;
	if (!c)
		c = find(r, name, NULL);
	if (!c) {
		bool has_subs = false;
		for (int i = 0; i < r->n; i++)
			has_subs |= strcmp(r->v[i].name, name) == 0;
		if (has_subs && sub)
			cmd_finish(call, cmd_fail(call, LINLI_ENOENT,
						  "unknown subcommand '%s %s'; try 'help %s'", name,
						  sub, name));
		else if (has_subs)
			cmd_finish(call,
				   cmd_fail(call, LINLI_EINVAL,
					    "'%s' needs a subcommand; try 'help %s'", name, name));
		else
			cmd_finish(call, cmd_fail(call, LINLI_ENOENT,
						  "unknown command '%s'; try 'help'", name));
		return;
	}
	call->reg = r;
	int rc = c->fn(call, c->ud);
	if (rc != CMD_PENDING) {
		cmd_finish(call, rc);
		return;
	}
	/* Pending: on the list until cmd_finish, or until shutdown cancels it.
	 * A handler that returns CMD_PENDING must not have finished the call. */
	call->pending = true;
	call->pend_prev = NULL;
	call->pend_next = r->pending;
	if (r->pending)
		r->pending->pend_prev = call;
	r->pending = call;
}

static bool help_matches(const struct cmd *c, const char *name, const char *sub)
{
	return (!name || strcmp(c->name, name) == 0) &&
	       (!sub || (c->sub && strcmp(c->sub, sub) == 0));
}

int cmd_pack_help_of(struct cmd_registry *r, const char *name, const char *sub,
		     msgpack_packer *pk)
{
	size_t n = 0;
	for (int i = 0; i < r->n; i++)
		n += help_matches(&r->v[i], name, sub);
	if (n == 0)
		return LINLI_ENOENT;
	msgpack_pack_array(pk, n);
	for (int i = 0; i < r->n; i++) {
		struct cmd *c = &r->v[i];
		if (!help_matches(c, name, sub))
			continue;
		char full[256];
		snprintf(full, sizeof full, "%s%s%s", c->name, c->sub ? " " : "",
			 c->sub ? c->sub : "");
		msgpack_pack_map(pk, 3);
		mp_kv_str(pk, "command", full);
		mp_kv_str(pk, "usage", c->usage);
		mp_kv_str(pk, "summary", c->summary);
	}
	return 0;
}

bool cmd_known(const struct cmd_registry *r, const char *name)
{
	for (int i = 0; i < r->n; i++)
		if (strcmp(r->v[i].name, name) == 0)
			return true;
	return false;
}

void cmd_pack_help(struct cmd_registry *r, msgpack_packer *pk)
{
	cmd_pack_help_of(r, NULL, NULL, pk);
}
