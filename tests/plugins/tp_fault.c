/*
 * A test plugin that harms the node on purpose, as its configuration says
 * (linli.cfg: plugins = { fault = { mode = "..."; ... }; }):
 *   mode = "spin_init"   init never returns (a busy loop)
 *   mode = "exit_init"   init calls exit(code) (code = 0 unless given)
 *   mode = "segv_timer"  a timer due delay_ms after init (default 200) writes through NULL
 *   anything else        it runs quietly
 * and whatever the mode, its commands:
 *   fault nap MS         the handler sleeps MS ms (the kernel thread waits)
 *   fault exit N         the handler calls exit(N)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <linli/linli.h>

static const struct linli_api *api;

static void nap(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0)
		;
}

static int cmd_nap(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		   char *err, size_t errlen)
{
	(void)reply;
	if (req->argc != 1) {
		api->log(ctx, LINLI_LOG_WARN, "usage: fault nap MS");
		return LINLI_EINVAL;
	}
	(void)err;
	(void)errlen;
	nap(atol(req->argv[0]));
	return 0;
}

static int cmd_exit(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		    char *err, size_t errlen)
{
	(void)ctx;
	(void)reply;
	(void)err;
	(void)errlen;
	exit(req->argc == 1 ? atoi(req->argv[0]) : 0);
}

static void crash(linli_ctx *ctx, void *ud)
{
	(void)ud;
	api->log(ctx, LINLI_LOG_WARN, "about to write through a NULL pointer");
	*(volatile int *)(uintptr_t)0 = 1;
}

static int fault_init(linli_ctx *ctx, const struct linli_api *a)
{
	api = a;
	linli_record *conf = NULL;
	const char *mode = "";
	int64_t code = 0, delay = 200;
	if (api->plugin_config(ctx, &conf) == 0) {
		api->rec_get_str(conf, "mode", &mode, NULL);
		api->rec_get_int(conf, "code", &code);
		api->rec_get_int(conf, "delay_ms", &delay);
	}
	char m[32];
	snprintf(m, sizeof m, "%s", mode ? mode : "");
	api->rec_free(conf);
	api->log(ctx, LINLI_LOG_INFO, "init, mode '%s'", m);
	int rc = api->cmd_register(ctx, "nap", "MS", "sleep MS ms in the handler", cmd_nap, NULL);
	if (!rc)
		rc = api->cmd_register(ctx, "exit", "N", "call exit(N)", cmd_exit, NULL);
	if (rc)
		return rc;
	if (strcmp(m, "spin_init") == 0)
		for (volatile unsigned long i = 0;; i++)
			;
	if (strcmp(m, "exit_init") == 0)
		exit((int)code);
	if (strcmp(m, "segv_timer") == 0)
		return api->timer_add(ctx, (uint64_t)delay, 0, crash, NULL, NULL);
	return 0;
}

static void fault_fini(linli_ctx *ctx, const struct linli_api *a)
{
	a->log(ctx, LINLI_LOG_INFO, "fini");
}

LINLI_PLUGIN(fault_init, fault_fini,
	     .name = "fault",
	     .version = "1.0.0",
	     .family = "custom",
	     .description = "harms the node on purpose, as configured (tests)");
