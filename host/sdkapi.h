/*
 * sdkapi — the function table the kernel hands to every plugin's init.
 *
 * Owns the one `struct linli_api` instance (linli/api.h) and the thin
 * adapters behind its plugin-facing members: logging, plugin info, console
 * commands and timers; record members point straight at host/record.c. Every
 * resource an adapter creates is tracked with plug_track (host/plugin.h).
 * Must never hand a plugin a pointer to kernel state, and never let a
 * plugin's command or timer outlive the plugin.
 *
 * Adding a member (a later subsystem): append it to struct linli_api with its
 * doc comment, implement it in your subsystem's .c (taking linli_ctx *ctx,
 * getting the plugin with plug_from_ctx), and fill it in the table in
 * sdkapi.c. The unit test test_record checks that no member is left NULL.
 */
#ifndef LINLI_SDKAPI_H
#define LINLI_SDKAPI_H

#include "linli/api.h"

/* The table (static, never freed; the same for every plugin). */
const struct linli_api *sdkapi_table(void);

#endif
