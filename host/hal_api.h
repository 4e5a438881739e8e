/*
 * hal_api — the function table's device members (linli/api.h, block
 * "devices (HAL)") and plugin_config: thin adapters from a plugin's ctx to
 * the HAL. Owns the permission checks of plugin paths (plug_authorize and
 * the hal.driver capability), the tracking of every driver and pending
 * command a plugin makes (so nothing of a stopped plugin is called again),
 * and the conversion between records and the HAL's MessagePack. Never lets
 * a plugin reach a device of another driver through the driver calls.
 */
#ifndef LINLI_HAL_API_H
#define LINLI_HAL_API_H

#include "linli/api.h"

int hal_api_plugin_config(linli_ctx *ctx, linli_record **out);
int hal_api_device_classes(linli_ctx *ctx, linli_record **out);
int hal_api_driver_register(linli_ctx *ctx, const char *name, const struct linli_driver_ops *ops);
int hal_api_dev_post(linli_ctx *ctx, const struct linli_reading *r, size_t n);
int hal_api_dev_event(linli_ctx *ctx, const char *device, const char *event,
		      const linli_record *data, int64_t time_ms);
int hal_api_dev_command_done(linli_ctx *ctx, uint64_t req, int rc, const linli_record *result,
			     const char *err);
int hal_api_dev_found(linli_ctx *ctx, const struct linli_device_info *info);
int hal_api_dev_auth(linli_ctx *ctx, const char *device, const char *secret);
int hal_api_dev_info(linli_ctx *ctx, const char *device, linli_record **out);
int hal_api_dev_get(linli_ctx *ctx, const char *device, const char *resource, linli_record **out);
int hal_api_dev_command(linli_ctx *ctx, const char *device, const char *command,
			const linli_record *args, uint32_t timeout_ms, linli_dev_done_fn fn,
			void *ud, uint64_t *req);

#endif
