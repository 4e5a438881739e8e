/*
 * hal — the device layer: the device registry, the drivers, readings, events,
 * commands, polling and availability.
 *
 * Owns the in-memory registry (loaded from the store's `devices` dataset at
 * start, written back on every add, remove and state change), the drivers'
 * ops tables, each device's latest values and counters, the pending commands
 * with their timeouts, the poll schedules and heartbeat checks, and the queue
 * through which drivers' own threads hand readings, events and command
 * results to the kernel thread. Device classes are the catalog's: a class is
 * data, and nothing here knows a class by name.
 *
 * Everything runs on the kernel thread except hal_post, hal_event and
 * hal_command_done, which any thread may call. Never publishes a reading
 * that its class refuses; never calls a driver op off the kernel thread or
 * after its driver was removed; never decides permissions (callers do, with
 * access_call or plug_authorize) and never blocks.
 */
#ifndef LINLI_HAL_H
#define LINLI_HAL_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog.h"
#include "linli/api.h"
#include "tier.h"

struct kernel;
struct hal;
struct hal_dev;
struct hal_driver;

enum hal_state { HAL_UNAVAILABLE = 0, HAL_ONLINE = 1 };

/* Why a reading or event was refused; counted per device. */
enum hal_refusal {
	HAL_REF_UNKNOWN = 0, /* no such resource (or not readable) in the class */
	HAL_REF_TYPE,	     /* a value of the wrong type */
	HAL_REF_RANGE,	     /* below min, above max, not an allowed enum value, too long */
	HAL_REF_EVENT,	     /* an event the class does not have */
	HAL_REF_KINDS
};

const char *hal_refusal_name(enum hal_refusal r);
const char *hal_state_name(enum hal_state s);

#define HAL_CMD_TIMEOUT_MS     10000  /* default command timeout */
#define HAL_CMD_TIMEOUT_MAX_MS 600000 /* longest allowed */
#define HAL_STR_MAX	       4096   /* longest string reading, bytes */
#define HAL_SWEEP_MS	       250    /* heartbeat check period */
#define HAL_FLUSH_MS	       60000  /* last_seen written back at most this late */
#define HAL_RETRY_MAX_MS       60000  /* longest wait between open attempts */

/*
 * hal_open — the HAL of kernel `k` (k->catalog, k->store and k->bus open):
 * loads the registry of the node's subtree from the store and starts the
 * heartbeat and write-back timers. Devices of a class missing from the
 * catalog are logged and skipped. Returns 0, LINLI_ENOMEM or the store's
 * code with err.
 */
int hal_open(struct kernel *k, struct hal **out, char *err, size_t errlen);
/* Write back last_seen, close what is still open, free. Before store_close. */
void hal_close(struct hal *h);

/* Replace the monotonic clock (ms) for tests; NULL restores kernel_now_ms. */
void hal_set_clock(struct hal *h, uint64_t (*mono_ms)(void));
/* Keep each device's latest values (default on; the benchmark turns it off). */
void hal_keep_latest(struct hal *h, bool on);

/* ---- drivers (kernel thread) ---- */

/*
 * hal_driver_set_scope — the subtree the driver's plugin acts in (installed
 * with --scope; NULL or "": the node): a device outside it is never bound to
 * the driver (hal_add refuses it).
 */
void hal_driver_set_scope(struct hal_driver *d, const char *scope);

/*
 * hal_driver_add — register driver `name` with ops table `ops` (copied),
 * calling its ops with `ctx`; `owner` names it in logs and as publisher.
 * Checks the table's size (LINLI_EVERSION naming the sizes), name
 * ([a-z][a-z0-9_]*, < 32 bytes), open and close present, uniqueness
 * (LINLI_EEXIST). Attaching its devices is hal_driver_attach's job.
 */
int hal_driver_add(struct hal *h, const char *name, const struct linli_driver_ops *ops,
		   linli_ctx *ctx, const char *owner, struct hal_driver **out, char *err,
		   size_t errlen);
/* Open every registered device of driver d, then call its discover. */
void hal_driver_attach(struct hal *h, struct hal_driver *d);
/* hal_driver_attach for every driver; returns how many. */
int hal_attach_all(struct hal *h);
/* Close every open device of d (its code is still there). */
void hal_driver_quiesce(struct hal *h, struct hal_driver *d);
/* Quiesce, fail its pending commands (LINLI_ESTATE), forget and free d. */
void hal_driver_remove(struct hal *h, struct hal_driver *d);
struct hal_driver *hal_driver_find(struct hal *h, const char *name);
/* The driver whose ops are called with ctx, or NULL. */
struct hal_driver *hal_driver_of(struct hal *h, linli_ctx *ctx);
uint64_t hal_driver_id(const struct hal_driver *d);
struct hal_driver *hal_driver_by_id(struct hal *h, uint64_t id);
const char *hal_driver_name(const struct hal_driver *d);
linli_ctx *hal_driver_ctx(const struct hal_driver *d);
struct kernel *hal_kernel(const struct hal *h);

/* ---- the registry (kernel thread) ---- */

struct hal_dev_spec {
	const char *id;		/* store id syntax */
	const char *class_name; /* a catalog device class */
	const char *driver;	/* a registered driver */
	const char *address;	/* non-empty */
	const char *name;	/* display name; NULL or "" for none */
	const char *scope;	/* where it lives; NULL: the node's path */
	const char *poll;	/* "resource=SECONDS,..." or NULL */
	const char *credential; /* hash of its secret, or NULL */
	int64_t heartbeat_s;	/* 0: the class's */
	bool discovered;	/* found by a driver (logged at debug, not info) */
	const char *building;	/* where it is installed (devices.building), or NULL */
	const char *grid;	/* the grid it is in (devices.grid, a grids id), or NULL */
	int64_t floor;		/* its floor (devices.floor) when has_floor */
	bool has_floor;
	int64_t pos_x, pos_y; /* its place on the floor's plan, 0..1000 each, when has_pos */
	bool has_pos;
};

/* Told once a registry write is durable (rc 0) or lost (rc < 0, err says why). */
typedef void (*hal_done_fn)(void *arg, int rc, const char *err);

/*
 * hal_add — register a device: checks everything (class, driver loaded,
 * scope, address, heartbeat, poll resources readable and the driver able to
 * read), writes it to the store's batch, adds it to the registry and opens it
 * when its driver is loaded. Returns 0, then calls done (may be NULL) after
 * the commit — if the commit fails, the device is taken out again before
 * done hears it. Or returns LINLI_EINVAL / LINLI_ENOENT / LINLI_EEXIST /
 * LINLI_ESCHEMA / the store's code with err, and nothing changed.
 */
int hal_add(struct hal *h, const struct hal_dev_spec *s, hal_done_fn done, void *arg, char *err,
	    size_t errlen);
/*
 * hal_remove — close the device, fail its pending commands, delete it from
 * the store's batch and the registry; done after the commit. Returns 1
 * (and never calls done) when the store held no record to delete.
 */
int hal_remove(struct hal *h, const char *id, hal_done_fn done, void *arg, char *err,
	       size_t errlen);
/* Store `hash` ("" for none) as the device's machine credential; done after the commit. */
int hal_set_credential(struct hal *h, const char *id, const char *hash, hal_done_fn done, void *arg,
		       char *err, size_t errlen);

/*
 * hal_tell_secret — hand the device's new machine secret (in clear) to its
 * driver's ops->secret (SDK 1.1), if the device is open and the driver has
 * the op. Returns 0, or the driver's code with err (logged as well).
 */
int hal_tell_secret(struct hal *h, const char *id, const char *secret, char *err, size_t errlen);

struct hal_dev *hal_find(struct hal *h, const char *id);
const char *hal_dev_id(const struct hal_dev *d);
const char *hal_dev_scope(const struct hal_dev *d);
const struct cat_device_class *hal_dev_class(const struct hal_dev *d);
const char *hal_dev_driver(const struct hal_dev *d);
const char *hal_dev_name(const struct hal_dev *d);	       /* its display name, "" for none */
struct hal_driver *hal_dev_driver_of(const struct hal_dev *d); /* NULL: not loaded */
enum hal_state hal_dev_state(const struct hal_dev *d);
uint64_t hal_dev_refused(const struct hal_dev *d, enum hal_refusal r);
uint64_t hal_dev_readings(const struct hal_dev *d);
uint64_t hal_dev_events(const struct hal_dev *d);
bool hal_dev_open(const struct hal_dev *d);
const char *hal_dev_open_error(const struct hal_dev *d); /* NULL when none */

/*
 * hal_list — the devices within `scope` (a subtree root; "" or NULL: all),
 * sorted by id, in a new array (*out, free it; the pointers are the
 * registry's, valid until the next change). Returns the count or
 * LINLI_ENOMEM.
 */
int hal_list(struct hal *h, const char *scope, struct hal_dev ***out);

/*
 * Pack one device as a map: the list's columns, or (full) everything known
 * (also its open_error). Times are RFC 3339 UTC strings ("...T12:00:00.000Z").
 */
void hal_pack_dev(struct hal *h, const struct hal_dev *d, msgpack_packer *pk, bool full);
/*
 * Pack latest values. resource NULL: an array of {resource, value, unit,
 * time} over the class's readable resources (value nil when none yet).
 * Otherwise one map {value, time}; LINLI_ENOENT (nothing packed) when the
 * resource is unknown or has no value yet.
 */
int hal_pack_latest(const struct hal_dev *d, const char *resource, msgpack_packer *pk);
/* Pack the latest values as a map {resource: {value, time}} of those that have one. */
void hal_pack_latest_map(const struct hal_dev *d, msgpack_packer *pk);

/* The credential hash of a secret ("blake2b:" + 64 hex, NUL; out has 80 bytes). */
void hal_secret_hash(const char *secret, char out[80]);
/* Does `secret` match d's stored credential? (constant time; false when none) */
bool hal_dev_auth(const struct hal_dev *d, const char *secret);

/* ---- what drivers report ---- */

/* A value as a driver gives it (enum linli_type in type). */
struct hal_val {
	int type;
	int64_t i;
	double f;
	bool b;
	const char *s;
	size_t len;
};

/*
 * hal_reading — process one reading on the kernel thread: `from` must be the
 * ctx of the device's driver. Checks it against the class; a refusal is
 * counted, logged once per device and kind, and returned (LINLI_ENOENT
 * unknown device or resource, LINLI_EPERM another driver's device,
 * LINLI_ESCHEMA type or range). A good one updates the device's liveness and
 * latest value and is published on dev/<class>/<id>/<resource>; the bus's
 * code is returned (LINLI_EBUSY when telemetry is shed).
 */
int hal_reading(struct hal *h, linli_ctx *from, const char *dev, const char *res,
		const struct hal_val *v, int64_t time_ms);
/*
 * hal_post — n readings in the SDK's layout, from any thread: processed now
 * on the kernel thread (the first refusal's code is returned), queued
 * otherwise (LINLI_EBUSY when bus.telemetry_queue readings wait already).
 */
int hal_post(struct hal *h, linli_ctx *from, const struct linli_reading *r, size_t n, char *err,
	     size_t errlen);
/*
 * The driver of `dev` says it is online or unavailable now (api->dev_available):
 * applied at once on the kernel thread, queued from any other.
 */
int hal_avail(struct hal *h, linli_ctx *from, const char *dev, bool online, const char *why,
	      char *err, size_t errlen);
/*
 * hal_event — device `dev` raised `event` (`data`: one packed map, or NULL),
 * from any thread; as hal_post. Published on dev/<class>/<id>/event/<event>.
 */
int hal_event(struct hal *h, linli_ctx *from, const char *dev, const char *event, const void *data,
	      size_t len, int64_t time_ms, char *err, size_t errlen);
/*
 * hal_event_wait — hal_event from a driver's own thread (LINLI_ESTATE on the
 * kernel thread, where it would deadlock), then block until the batch that
 * journaled it committed (0) or failed (the store's code), the event was
 * refused (hal_event's codes), the timeout passed (0: the default;
 * LINLI_ETIMEDOUT), or the driver's plugin stops or linlid shuts down
 * (LINLI_ESTATE: hal_driver_waiters_fail, hal_close). An event the journal
 * does not keep (`journal = false`) returns 0 once published.
 */
#define HAL_EVENT_WAIT_DEFAULT_MS 10000
#define HAL_EVENT_WAIT_MAX_MS	  600000
int hal_event_wait(struct hal *h, linli_ctx *from, const char *dev, const char *event,
		   const void *data, size_t len, int64_t time_ms, uint32_t timeout_ms, char *err,
		   size_t errlen);
/*
 * Wake every thread of plugin `from` waiting in hal_event_wait with
 * LINLI_ESTATE; `stopping` refuses its new waits (from its quiesce until its
 * fini joined its threads), false accepts them again.
 */
void hal_driver_waiters_fail(struct hal *h, linli_ctx *from, bool stopping);
/* How many hal_event_wait calls the hal holds (waiting, or timed out and not yet answered). */
int hal_waiting(struct hal *h);
/*
 * hal_found — driver d found a device in discover: registered (no
 * credential) and opened unless the id exists (LINLI_EEXIST).
 */
int hal_found(struct hal *h, struct hal_driver *d, const struct linli_device_info *info, char *err,
	      size_t errlen);

/* ---- commands ---- */

/*
 * The answer to a command: rc 0 with the driver's result (`result`/`len`,
 * one packed map), or a code and a message. Called once, on the kernel
 * thread, never from inside hal_command.
 */
typedef void (*hal_cmd_fn)(void *arg, int rc, const void *result, size_t len, const char *err);

struct hal_cmd_req {
	const char *device;
	const char *command;	  /* a class command; NULL: a write of `args` */
	const linli_record *args; /* a map: the command's arguments / {resource: value} */
	uint32_t timeout_ms;	  /* 0: HAL_CMD_TIMEOUT_MS */
	const char *who;	  /* for the audit log line, e.g. "person 'ops1' of ..." */
	const struct tier_principal *principal; /* for the audit log; may be NULL */
	hal_cmd_fn done;
	void *arg;
};

/*
 * hal_command — check `r` against the device's class (every argument present,
 * none unknown, each of its type and range; a write names writable
 * resources), audit it (an `audit:` log line and an entry of the audit log:
 * action device.command when sent, device.command.result with the outcome),
 * and call the driver's command (or write) op. The
 * caller has checked permission. Returns 0 with the request id in *req
 * (done is called later: the driver's answer, LINLI_ETIMEDOUT, or
 * LINLI_ESTATE when the device or driver goes away), or a code with err and
 * done is never called: LINLI_ENOENT, LINLI_ESCHEMA, LINLI_ESTATE (device
 * not open, driver without the op), LINLI_EINVAL, or the op's own code.
 */
int hal_command(struct hal *h, const struct hal_cmd_req *r, uint64_t *req, char *err,
		size_t errlen);
/* Forget request `req` without calling its done (its caller is going away). */
void hal_command_cancel(struct hal *h, uint64_t req);
/* A driver's answer to `req`, from any thread (queued; handled on the kernel thread). */
int hal_command_done(struct hal *h, linli_ctx *from, uint64_t req, int rc, const void *result,
		     size_t len, const char *msg, char *err, size_t errlen);

/* ---- time ---- */

/* Check heartbeats now (the sweep timer calls it; tests call it directly). */
void hal_sweep(struct hal *h);
/* Write back every changed last_seen now. */
void hal_flush(struct hal *h);
/* Handle what drivers' threads queued (the kernel posts this; tests call it). */
void hal_drain(struct hal *h);

struct hal_totals {
	uint64_t devices, open, online, readings, refused, events, shed, commands, timeouts;
	uint64_t drivers;
};
void hal_get_totals(struct hal *h, struct hal_totals *t);

/*
 * ---- personal data in device events (catalog: an event's `sensitive` list) ----
 *
 * Events are published, journaled and stored in clear; a reader without the
 * grant sensitive:devices (HAL_SENSITIVE_DATASET; or `sensitive`) gets them
 * through hal_event_mask. Any thread (reads the immutable catalog only).
 */
#define HAL_SENSITIVE_DATASET "devices"

/*
 * hal_event_mask — when `topic` is a device event (dev/CLASS/ID/event/NAME)
 * whose class marks fields of its details sensitive, write `payload` (the
 * event's map; its "data" map holds the details) with those fields masked
 * into `out` (initialised by the caller) and return 1. 0: nothing to mask,
 * use the payload as it is (also for a payload that is not such a map).
 */
int hal_event_mask(const struct catalog *cat, const char *topic, const void *payload, size_t len,
		   msgpack_sbuffer *out);

/* Does hal_event_mask have anything to mask for `topic`? Cheap: no payload read. */
bool hal_event_sensitive(const struct catalog *cat, const char *topic);

#endif
