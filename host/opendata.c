/*
 * opendata — see opendata.h. Handlers run on the kernel thread (http.c
 * guarantees it), read through the same store and tier checks as the
 * console, and answer JSON.
 */
#include "opendata.h"

#include <unistd.h>

#include "http.h"
#include "kernel.h"

static int get_health(struct http_req *r, void *ud)
{
	(void)ud;
	struct kernel *k = r->k;
	r->resp = json_pack("{s:s,s:s,s:s,s:s,s:I}", "status", "ok", "node", k->cfg.node_path,
			    "level", tier_level_name(k->cfg.node_level), "version", LINLI_VERSION,
			    "uptime_s", (json_int_t)((kernel_now_ms() - k->started_ms) / 1000));
	return 200;
}

int opendata_register(struct kernel *k, struct http *h)
{
	(void)k;
	return http_route(h, "GET", "/api/v1/health", false, get_health, NULL);
}
