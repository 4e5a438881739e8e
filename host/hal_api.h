/*
 * hal_api — the function table's device members (linli/api.h, block
 * "devices (HAL)") and plugin_config: thin adapters from a plugin's ctx to
 * the HAL. Owns the permission checks of plugin paths (plug_authorize and
 * the hal.driver capability), the tracking of every driver and pending
 * command a plugin makes (so nothing of a stopped plugin is called again),
 * and the conversion between records and the HAL's MessagePack. Never lets
 * a plugin reach a device of another driver through the driver calls.
 *
 * The application members (plugin_config, device_classes, dev_info, dev_get,
 * dev_command) are also offered for any actor that is not a person — script
 * plugins and rules, through script_api.c — as the *_as calls below, so that
 * every caller meets the one implementation of their checks, audit and
 * messages.
 */
#ifndef LINLI_HAL_API_H
#define LINLI_HAL_API_H

#include <msgpack.h>

#include "hal.h"
#include "linli/api.h"
#include "tier.h"

int hal_api_plugin_config(linli_ctx *ctx, linli_record **out);
int hal_api_device_classes(linli_ctx *ctx, linli_record **out);
int hal_api_driver_register(linli_ctx *ctx, const char *name, const struct linli_driver_ops *ops);
int hal_api_dev_post(linli_ctx *ctx, const struct linli_reading *r, size_t n);
int hal_api_dev_available(linli_ctx *ctx, const char *device, bool online, const char *why);
int hal_api_dev_event(linli_ctx *ctx, const char *device, const char *event,
		      const linli_record *data, int64_t time_ms);
/* dev_event_wait (SDK 1.1): hal_event_wait from a driver's thread. */
int hal_api_dev_event_wait(linli_ctx *ctx, const char *device, const char *event,
			   const linli_record *data, int64_t time_ms, uint32_t timeout_ms);
int hal_api_dev_command_done(linli_ctx *ctx, uint64_t req, int rc, const linli_record *result,
			     const char *err);
int hal_api_dev_found(linli_ctx *ctx, const struct linli_device_info *info);
int hal_api_dev_auth(linli_ctx *ctx, const char *device, const char *secret);
int hal_api_dev_info(linli_ctx *ctx, const char *device, linli_record **out);
int hal_api_dev_get(linli_ctx *ctx, const char *device, const char *resource, linli_record **out);
int hal_api_dev_command(linli_ctx *ctx, const char *device, const char *command,
			const linli_record *args, uint32_t timeout_ms, linli_dev_done_fn fn,
			void *ud, uint64_t *req);

/*
 * struct hal_actor — who reads or commands a device through the *_as calls:
 * the kernel, the principal every check and audit entry uses
 * (PRINCIPAL_PLUGIN or PRINCIPAL_RULE, at its node's scope, its declared
 * capabilities as grants), the name failures are logged under, and for a C
 * plugin its ctx (a driver may read its own devices without device.read;
 * NULL for scripts). All borrowed for the call.
 */
struct hal_actor {
	struct kernel *k;
	const struct tier_principal *who;
	const char *log_name;
	linli_ctx *driver_ctx;
};

/*
 * The members' work for any actor, with the same checks and codes: the
 * device must exist (LINLI_ENOENT), lie in the actor's jurisdiction and its
 * class be covered by the capability device.read:CLASS (device.command:CLASS
 * for a command; LINLI_EPERM, audited and logged by access_check). err
 * (errlen bytes) gets a message naming the call, the device and what is
 * wrong on every failure; nothing is packed then.
 *
 * hal_api_dev_info_as packs the registry entry (hal_pack_dev, full) into pk.
 * hal_api_dev_get_as packs {"value", "time"} of `resource`, or with resource
 * NULL the map {resource: {"value", "time"}} of those that have a value;
 * LINLI_ENOENT tells an unknown device, an unknown resource and a resource
 * without a value yet apart in err.
 * hal_api_dev_command_as sends the command (hal_command: audited, checked
 * against the class) and returns its request id in *req; done(arg, ...) is
 * called once, later, on the kernel thread, unless the caller cancels the
 * request first with hal_command_cancel (its owner stops). On failure done
 * is never called. Refusals of the HAL are logged as warnings under
 * log_name, as they always were for C plugins.
 */
int hal_api_dev_info_as(const struct hal_actor *a, const char *device, msgpack_packer *pk,
			char *err, size_t errlen);
int hal_api_dev_get_as(const struct hal_actor *a, const char *device, const char *resource,
		       msgpack_packer *pk, char *err, size_t errlen);
int hal_api_dev_command_as(const struct hal_actor *a, const char *device, const char *command,
			   const linli_record *args, uint32_t timeout_ms, hal_cmd_fn done,
			   void *arg, uint64_t *req, char *err, size_t errlen);

/*
 * hal_api_plugin_config_as — the members plugin_config for any actor: packs
 * the group plugins.NAME of linli.cfg (NAME: the actor's name), as config.c
 * packed it, or an empty map when there is none. Only plugins (of either
 * kind) have one: for a rule (or any other principal) it returns
 * LINLI_ESTATE with err naming it, and packs nothing. LINLI_ENOMEM.
 */
int hal_api_plugin_config_as(const struct hal_actor *a, msgpack_packer *pk, char *err,
			     size_t errlen);
/*
 * hal_api_device_classes_as — the member device_classes for any actor: packs
 * the catalog's device classes as the array the member documents
 * (linli/api.h). Needs no capability: the catalog is public to every actor.
 */
void hal_api_device_classes_as(const struct hal_actor *a, msgpack_packer *pk);

#endif
