/*
 * linli/device.h — the device layer (HAL) as a plugin sees it: the structs
 * a driver fills or receives, and the callbacks of device commands.
 *
 * The functions themselves are members of the function table (linli/api.h,
 * block "devices (HAL)"); this header holds their types.
 *
 * Two kinds of plugins use the HAL:
 *
 *  - A *driver* (family "driver", capability "hal.driver:<name>") fills a
 *    struct linli_driver_ops and registers it with api->driver_register. The
 *    kernel owns the device registry, scheduling (polls), state
 *    (online/unavailable), retries of a failed open and the timeouts of
 *    commands; the driver only talks to devices. It reports what a device
 *    says with api->dev_post (readings) and api->dev_event (events), from any
 *    thread, and answers a command or write with api->dev_command_done, also
 *    from any thread.
 *  - An *application* reads a device's latest values with api->dev_get
 *    (capability "device.read:<class>") and sends commands with
 *    api->dev_command ("device.command:<class>").
 *
 * Device classes (resources with type, unit, range and access; commands with
 * arguments; events) are data in the catalog (catalog/devices/CLASS.cfg);
 * api->device_classes gives them to a plugin. Every reading a driver posts is
 * checked against its class: a value of the wrong type or out of range is
 * refused, counted on the device and logged once, and never reaches a
 * subscriber. Any word from a device (a reading, even a refused one, an
 * event, an answer to a command) counts as a sign of life: a device silent
 * for longer than its heartbeat (the class's, or its own) is marked
 * unavailable, and online again when it next speaks.
 *
 * Bus topics the kernel publishes (scope: the device's scope):
 *   dev/<class>/<id>/<resource>      a good reading, payload {"value", "time"}
 *   dev/<class>/<id>/event/<event>   an event (a record of consequence: stored
 *                                    before delivery, never shed), payload
 *                                    {"device", "class", "event", "severity",
 *                                     "time", "data"}
 *   dev/<class>/<id>/event/online, .../event/unavailable   availability changes
 */
#ifndef LINLI_DEVICE_H
#define LINLI_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "linli/plugin.h"
#include "linli/record.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * struct linli_device — one registered device, as its driver sees it, since
 * 1.0. The kernel owns it: it is valid from the open call until close
 * returns, and every string in it stays unchanged that long. `driver_data`
 * is the driver's own slot (NULL at open): keep your per-device state there.
 */
struct linli_device {
	uint32_t size;		/* sizeof(struct linli_device) of the kernel */
	const char *id;		/* registry id, e.g. "sim-door-001" */
	const char *class_name; /* catalog class, e.g. "door" */
	const char *address;	/* driver-specific address, as registered */
	const char *scope;	/* jurisdiction path the device belongs to */
	const char *name;	/* display name, "" when none */
	void *driver_data;	/* yours */
};

/*
 * struct linli_driver_ops — a driver's ops table, since 1.0. Fill it with
 * `.size = sizeof(struct linli_driver_ops)`; the kernel refuses a table of
 * any size it does not know (a driver built against another SDK layout)
 * with a message naming both sizes. The kernel copies the table at
 * registration. Every op runs on the kernel thread and must not block: an
 * answer that takes time comes later through the thread-safe calls.
 *
 *   open      required. Start talking to `dev` (connect, subscribe, allocate
 *             dev->driver_data). Return 0, or a negative LINLI_E* code with
 *             a reason in err (errlen bytes): the device is then
 *             unavailable and the kernel retries later (1 s, 2 s, 4 s, ...
 *             up to 60 s), logging the failure once.
 *   close     required. Stop talking to `dev` and free dev->driver_data.
 *             Called when the device is removed, before the driver's
 *             plugin is disabled, reloaded or stopped (before its fini),
 *             and at shutdown. Nothing is called for `dev` afterwards.
 *   read      may be NULL. Ask `dev` for `resource` now (a poll schedule
 *             fired, or an application asked). Answer with api->dev_post,
 *             inside the call or later. Return 0 or a LINLI_E* code.
 *   write     may be NULL. Set writable resources: `values` is a map
 *             {resource: value} already checked against the class. Return
 *             0 and finish with api->dev_command_done(ctx, req, ...) — inside
 *             the call or later, from any thread — or return a negative
 *             code (the request fails at once, dev_command_done not needed).
 *   command   may be NULL. Run `command` with `args` (a map, every argument
 *             of the class's command present and checked). As write.
 *   discover  may be NULL. Look for devices and report each with
 *             api->dev_found (inside the call, or later from a timer). Called
 *             once after registration and on `linli devices discover`.
 *             Return 0 or a LINLI_E* code.
 *
 * Since 1.1 (a kernel of 1.0 never calls them; a 1.0 table leaves them NULL):
 *
 *   secret    may be NULL. The device was given a new machine secret:
 *             `linli devices add` (called right after open) or `linli
 *             devices rekey`, for a driver whose transport authenticates the
 *             device itself (a broker account: the MQTT driver sets its
 *             password). `secret` is in clear, borrowed for the call: keep
 *             it no longer than needed and wipe your copy; never log it. The
 *             registry keeps only its hash, so this is the driver's one
 *             chance to learn it. Called only for an open device, after the
 *             registry took the new hash (its commit may still be pending).
 *             Return 0, or a LINLI_E* code with a reason in err: the kernel
 *             logs it and shows it in the command's reply ("driver_error");
 *             the secret is still the device's (rekey to try again).
 *   removed   may be NULL. The device is being removed from the registry
 *             (`linli devices remove`), not merely closed: revoke what the
 *             driver set up for it outside linlid (its broker account).
 *             Called before close, also when the device is not open
 *             (dev->driver_data is then NULL). Not called at shutdown, when
 *             the plugin stops or reloads.
 */
struct linli_driver_ops {
	uint32_t size; /* sizeof(struct linli_driver_ops) at build time */
	int (*open)(linli_ctx *ctx, struct linli_device *dev, char *err, size_t errlen);
	void (*close)(linli_ctx *ctx, struct linli_device *dev);
	int (*read)(linli_ctx *ctx, struct linli_device *dev, const char *resource);
	int (*write)(linli_ctx *ctx, struct linli_device *dev, uint64_t req,
		     const linli_record *values);
	int (*command)(linli_ctx *ctx, struct linli_device *dev, uint64_t req, const char *command,
		       const linli_record *args);
	int (*discover)(linli_ctx *ctx);
	/* ---- since 1.1 ---- */
	int (*secret)(linli_ctx *ctx, struct linli_device *dev, const char *secret, char *err,
		      size_t errlen);
	void (*removed)(linli_ctx *ctx, struct linli_device *dev);
};

/*
 * Sizes of the layouts (the end of their last member of that minor). The
 * kernel accepts exactly the sizes of layouts it knows and refuses any other.
 */
#define LINLI_DRIVER_OPS_SIZE_1_0 (offsetof(struct linli_driver_ops, discover) + sizeof(void *))
#define LINLI_DRIVER_OPS_SIZE_1_1 (offsetof(struct linli_driver_ops, removed) + sizeof(void *))

/*
 * struct linli_reading — one value a device reported, since 1.0, for
 * api->dev_post. `type` says which of the value fields holds it:
 *
 *   LINLI_T_INT    i   (integer resources; also accepted by float ones)
 *   LINLI_T_FLOAT  f   (float resources; must be finite)
 *   LINLI_T_BOOL   b   (boolean resources)
 *   LINLI_T_STR    s   (string and enum resources; UTF-8, NUL-terminated)
 *
 * `time_ms` is when the device measured it (ms since the epoch, UTC), or 0
 * for "now". Every string is copied by dev_post.
 */
struct linli_reading {
	uint32_t size;	      /* sizeof(struct linli_reading) at build time */
	int type;	      /* enum linli_type, see above */
	const char *device;   /* device id */
	const char *resource; /* resource name in the device's class */
	int64_t i;
	double f;
	bool b;
	const char *s;
	int64_t time_ms;
};

#define LINLI_READING_SIZE_1_0 (offsetof(struct linli_reading, time_ms) + sizeof(int64_t))

/*
 * struct linli_device_info — a device a driver found, for api->dev_found,
 * since 1.0. The kernel registers it (with no machine credential: an admin
 * gives one with `linli devices rekey ID`) unless the id is taken.
 */
struct linli_device_info {
	uint32_t size;		/* sizeof(struct linli_device_info) at build time */
	const char *id;		/* [A-Za-z0-9][A-Za-z0-9_.:-]*, at most 48 bytes */
	const char *class_name; /* a catalog device class */
	const char *address;	/* what open needs to reach it */
	const char *name;	/* display name, or NULL */
	const char *scope;	/* jurisdiction path, or NULL for the plugin's scope */
};

#define LINLI_DEVICE_INFO_SIZE_1_0 (offsetof(struct linli_device_info, scope) + sizeof(void *))

/*
 * linli_dev_done_fn — the answer to api->dev_command, on the kernel thread,
 * exactly once per accepted command: rc 0 with the driver's `result` (a map,
 * borrowed for the call; may be empty), or a negative code with a message
 * in `err` (LINLI_ETIMEDOUT when the device did not answer in time,
 * LINLI_ESTATE when the device or its driver went away, or the driver's
 * own code). Not called once the sending plugin has stopped.
 */
typedef void (*linli_dev_done_fn)(linli_ctx *ctx, uint64_t req, int rc, const linli_record *result,
				  const char *err, void *ud);

#ifdef __cplusplus
}
#endif

/*
 * Personal data in device events, since 1.1: a class may mark fields of an
 * event's details sensitive in the catalog (`sensitive = ( { name = "holder";
 * mask = "name"; } )` in an event of catalog/devices/CLASS.cfg). A driver
 * reports them in clear with dev_event / dev_event_wait; the kernel journals
 * them in clear and masks them for every reader without the grant
 * `sensitive:devices` (or `sensitive`): subscribers, rules, the console.
 * Report people by an id, never by name or id number, where the class
 * does not mark the field.
 */

#endif
