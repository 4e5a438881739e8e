/*
 * hal_cmds — the console's device commands:
 *
 *   devices list [--scope PATH] [--class C] [--state S] [--driver D] [--limit N]
 *                [--after ID]
 *   devices show ID
 *   devices readings ID
 *   devices add ID CLASS DRIVER ADDRESS [--scope PATH] [--name N]
 *               [--heartbeat S] [--poll RES=S,...]
 *   devices remove ID
 *   devices rekey ID
 *   devices command ID CMD [ARG=VALUE ...] [--timeout MS]
 *   devices set ID RESOURCE=VALUE ... [--timeout MS]
 *   devices discover [DRIVER]
 *   devices stats
 *
 * Turns argv into HAL calls and results into reply maps. Every handler
 * checks access with access_call first (device.read, device.manage or
 * device.command; scope = the device's scope, object = its class). A
 * registry change answers after its commit; a command answers when the
 * driver does or the timeout fires (CMD_PENDING). Never touches the store
 * or a driver itself.
 */
#ifndef LINLI_HAL_CMDS_H
#define LINLI_HAL_CMDS_H

struct kernel;

/* Register the commands (k->hal open). Returns 0 or a LINLI_E* code. */
int hal_cmds_register(struct kernel *k);

#endif
