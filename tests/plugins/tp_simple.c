/*
 * A test plugin built many times with different macros (tests/plugins/
 * meson.build): PNAME the name, REQ1/REQ2 its requirements, OVERRIDE extra
 * designated initialisers that break the metadata block on purpose (another
 * SDK major, a newer minor, an unknown size). Its ELF constructor prints
 * "CONSTRUCTOR RAN <name>" so that tests can prove a refused plugin never
 * ran: the line must not appear for those. init and fini log their order.
 */
#include <stdio.h>
#include <unistd.h>

#include <linli/linli.h>

#ifndef REQ1
#define REQ1 ""
#endif
#ifndef REQ2
#define REQ2 ""
#endif
#ifndef OVERRIDE
#define OVERRIDE
#endif

#ifndef QUIET /* the benchmark's copies stay quiet */
__attribute__((constructor)) static void announce(void)
{
	char line[128];
	int n = snprintf(line, sizeof line, "CONSTRUCTOR RAN %s\n", PNAME);
	ssize_t w = write(2, line, (size_t)n);
	(void)w;
}
#endif

static const struct linli_api *api;

static int cmd_ping(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		    char *err, size_t errlen)
{
	(void)req;
	(void)err;
	(void)errlen;
	linli_record *r = api->rec_new();
	api->rec_set_str(r, "pong", api->plugin_name(ctx));
	*reply = r;
	return 0;
}

static int simple_init(linli_ctx *ctx, const struct linli_api *a)
{
	api = a;
	api->log(ctx, LINLI_LOG_INFO, "init %s", PNAME);
	return api->cmd_register(ctx, "ping", "", "answers pong", cmd_ping, NULL);
}

static void simple_fini(linli_ctx *ctx, const struct linli_api *a)
{
	a->log(ctx, LINLI_LOG_INFO, "fini %s", PNAME);
}

LINLI_PLUGIN(simple_init, simple_fini,
	     .name = PNAME,
	     .version = "1.0.0",
	     .family = "custom",
	     .description = "test plugin " PNAME,
	     .requires = {REQ1, REQ2},
	     OVERRIDE);
