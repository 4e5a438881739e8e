/*
 * screen — the community big screen's login sessions (issue 24).
 *
 * A person logs in with their console account (POST /screen/api/login,
 * {"user", "password"} in the body): the console's own `login` command runs
 * (the same account store, Argon2id verification on its thread, failed-login
 * count and lockout, audit), and its session backs a cookie session kept in
 * memory here. A wall screen exchanges a display key — an API key whose
 * resources include `screen` — once for a cookie (POST /screen/api/display,
 * {"key"} in the body; never in a URL). The cookie is HttpOnly,
 * SameSite=Strict, Path=/, and Secure when the server is https://; every
 * state-changing request must also carry X-Linli-CSRF with the token given
 * at login. Sessions end at logout, at accounts.session_ttl_s, when the
 * console session behind them ends (password change, disable, ...) or the
 * display key is revoked.
 *
 * Logins hash at most http.login_concurrency passwords at once (each
 * Argon2id takes tens of MiB): the rest get 503 with Retry-After. A user
 * name with http.login_failures failed logins in the last minute gets 429
 * before any hash is computed. Everything runs on the kernel thread.
 */
#ifndef LINLI_SCREEN_H
#define LINLI_SCREEN_H

#include <stddef.h>

struct kernel;
struct http;
struct http_req;
struct tier_principal;

/* Add the /screen/api routes to h (opendata_register calls it). */
int screen_register(struct kernel *k, struct http *h);

/*
 * screen_alarms_panel — the alarms panel's JSON for `scope` (what GET
 * /screen/api/alarms answers), or NULL with err. Kernel thread; exposed for
 * the bench (tests/bench/apps/bench_screen.c).
 */
struct json_t;
struct json_t *screen_alarms_panel(struct kernel *k, const char *scope, char *err, size_t errlen);

/* Forget every session (shutdown). */
/*
 * screen_plugin_panel — the panel `plugin` computes for the screen (its GET
 * route "screen"), run as `who` (approute_call_as). The JSON, or NULL with
 * *status (an HTTP status) and err. Kernel thread. (The bench calls it.)
 */
struct json_t *screen_plugin_panel(struct kernel *k, const struct tier_principal *who,
				   const char *plugin, int *status, char *err, size_t errlen);

/* The devices panel of `scope` (GET /screen/api/devices), or NULL with err. */
struct json_t *screen_devices_panel(struct kernel *k, const char *scope, char *err, size_t errlen);

/* The map of `scope` (GET /screen/api/map), or NULL with err. */
struct json_t *screen_map_panel(struct kernel *k, const char *scope, char *err, size_t errlen);

void screen_close(void);

#endif
