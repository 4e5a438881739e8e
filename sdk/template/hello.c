/*
 * hello — a complete linli plugin, the starting point for your own.
 *
 * It registers a console command, `linli hello greet [NAME]`, which answers
 * with a record; `linli hello note TEXT`, which acts as its caller (SDK 1.1:
 * only an operator or above may note, and what it publishes is checked and
 * audited as the caller's); and a timer that logs how many greetings it
 * gave; and `linli hello remember NAME`, which keeps a greeting in the dataset
 * its bundle brings (greetings.cfg, named hello__greetings on the node). Rename
 * the plugin (the .name below, the file names in meson.build), keep the
 * shape: one LINLI_PLUGIN line, an init that registers everything, a fini
 * that frees what is yours.
 */
#include <stdio.h>
#include <stdlib.h>

#include <linli/linli.h>

/* The table init receives; valid until fini returns. */
static const struct linli_api *api;

struct hello {
	int64_t greetings;
	uint64_t timer;
};

/* `linli hello greet [NAME]`: runs on the kernel thread, must not block. */
static int greet(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply, char *err,
		 size_t errlen)
{
	struct hello *h = api->userdata(ctx);
	if (req->argc > 1) {
		snprintf(err, errlen, "usage: hello greet [NAME]");
		return LINLI_EINVAL;
	}
	const char *who = req->argc == 1 ? req->argv[0] : "world";
	char text[160];
	snprintf(text, sizeof text, "hello, %s", who);

	linli_record *r = api->rec_new();
	if (!r)
		return LINLI_ENOMEM;
	int rc = api->rec_set_str(r, "greeting", text);
	if (!rc)
		rc = api->rec_set_str(r, "from", api->plugin_name(ctx));
	if (!rc)
		rc = api->rec_set_str(r, "scope", api->plugin_scope(ctx));
	if (!rc)
		rc = api->rec_set_int(r, "count", ++h->greetings);
	if (!rc)
		rc = api->rec_set_time(r, "at", api->time_now_ms());
	if (rc) {
		api->rec_free(r);
		snprintf(err, errlen, "cannot build the reply: %s", linli_strerror(rc));
		return rc;
	}
	*reply = r; /* the kernel sends it and frees it */
	return 0;
}

/*
 * `linli hello note TEXT`: a command that acts as its caller. The kernel lets
 * only callers allowed the plugin's action `hello.note` in (cmd_require in
 * init), and everything the handler does meanwhile -- here a publish -- is
 * checked as both the plugin and the caller, and audited under the caller.
 */
static int note(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply, char *err,
		size_t errlen)
{
	if (req->argc != 1) {
		snprintf(err, errlen, "usage: hello note TEXT");
		return LINLI_EINVAL;
	}
	linli_record *ev = api->rec_new();
	if (!ev)
		return LINLI_ENOMEM;
	int rc = api->rec_set_str(ev, "text", req->argv[0]);
	if (!rc)
		rc = api->rec_set_str(ev, "by", req->caller->name);
	uint64_t seq = 0;
	if (!rc)
		rc = api->publish(ctx, "hello/note", NULL, ev, &seq); /* NULL: the caller's scope */
	api->rec_free(ev);
	if (rc) {
		snprintf(err, errlen, "cannot publish: %s", linli_strerror(rc));
		return rc;
	}
	linli_record *r = api->rec_new();
	if (!r || api->rec_set_int(r, "seq", (int64_t)seq) ||
	    api->rec_set_str(r, "by", req->caller->name)) {
		api->rec_free(r);
		return LINLI_ENOMEM;
	}
	*reply = r;
	return 0;
}

/*
 * `linli hello remember NAME`: a record in the bundle's own dataset, at the
 * plugin's scope (store_put's NULL). Only a node the bundle is installed on has
 * the dataset: elsewhere (the .so copied into a plugin dir) it is LINLI_ENOENT.
 */
#define GREETINGS "hello__greetings"

static int remember(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		    char *err, size_t errlen)
{
	if (req->argc != 1) {
		snprintf(err, errlen, "usage: hello remember NAME");
		return LINLI_EINVAL;
	}
	linli_record *g = api->rec_new();
	if (!g)
		return LINLI_ENOMEM;
	char id[LINLI_ID_MAX + 1];
	int rc = api->rec_set_str(g, "who", req->argv[0]);
	if (!rc)
		rc = api->rec_set_time(g, "at", api->time_now_ms());
	if (!rc)
		rc = api->store_put(ctx, GREETINGS, NULL, NULL, g, id, NULL);
	api->rec_free(g);
	if (rc) {
		snprintf(err, errlen, "cannot keep the greeting: %s%s", api->store_last_error(ctx),
			 rc == LINLI_ENOENT ? " (install hello's bundle: it brings the dataset)" : "");
		return rc;
	}
	linli_record *r = api->rec_new();
	if (!r || api->rec_set_str(r, "id", id) || api->rec_set_str(r, "dataset", GREETINGS)) {
		api->rec_free(r);
		return LINLI_ENOMEM;
	}
	*reply = r;
	return 0;
}

static void report(linli_ctx *ctx, void *ud)
{
	struct hello *h = ud;
	api->log(ctx, LINLI_LOG_DEBUG, "%lld greeting(s) so far", (long long)h->greetings);
}

static int hello_init(linli_ctx *ctx, const struct linli_api *a)
{
	api = a;
	struct hello *h = calloc(1, sizeof *h);
	if (!h)
		return LINLI_ENOMEM;
	api->set_userdata(ctx, h);
	int rc =
	    api->cmd_register(ctx, "greet", "[NAME]", "answer with a greeting record", greet, NULL);
	if (!rc)
		rc = api->action_declare(ctx, "hello.note", "operator", NULL, NULL,
					 "publish a note as oneself");
	if (!rc)
		rc = api->cmd_register(ctx, "note", "TEXT", "publish a note (operators and above)",
				       note, NULL);
	if (!rc)
		rc = api->cmd_require(ctx, "note", "hello.note");
	if (!rc)
		rc = api->cmd_register(ctx, "remember", "NAME",
				       "keep a greeting in the bundle's dataset", remember, NULL);
	if (!rc)
		rc = api->timer_add(ctx, 60000, 60000, report, h, &h->timer);
	if (rc) {
		/* The kernel removes the command and timer itself; free what is ours. */
		api->set_error(ctx, "cannot register: %s", linli_strerror(rc));
		free(h);
		return rc;
	}
	api->log(ctx, LINLI_LOG_INFO, "ready at %s (SDK %u.%u)", api->plugin_scope(ctx), api->major,
		 api->minor);
	return 0;
}

static void hello_fini(linli_ctx *ctx, const struct linli_api *a)
{
	struct hello *h = a->userdata(ctx);
	a->log(ctx, LINLI_LOG_INFO, "bye after %lld greeting(s)", (long long)h->greetings);
	free(h); /* commands and timers are removed by the kernel */
}

LINLI_PLUGIN(hello_init, hello_fini, .name = "hello", .version = "1.0.0", .family = "custom",
	     .description = "Template plugin: answers `linli hello greet [NAME]`",
	     .capabilities = {"bus.publish:hello/#", "store.read:hello__greetings",
			      "store.write:hello__greetings"}); /* what an admin must grant */
/*
 * More fields, when you need them:
 *     .requires = {"alarms"},                      plugins initialised before this one
 */
