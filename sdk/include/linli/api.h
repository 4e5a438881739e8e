/*
 * linli/api.h — the function table: everything a plugin can ask of the kernel.
 *
 * init receives `const struct linli_api *api`; every kernel service is reached
 * through it (api->log(ctx, ...), api->rec_set_str(r, ...)), so a plugin links
 * against no kernel symbol and one binary runs on every kernel of the same SDK
 * major. This is the pattern of SQLite's loadable extensions and Redis
 * modules.
 *
 * Rules of the table (for plugin authors):
 *  - `size` is the kernel's sizeof(struct linli_api). A plugin built for
 *    SDK 1.N only runs on kernels >= 1.N, so every member it knows is there;
 *    LINLI_API_HAS(api, member) checks one explicitly if you want to.
 *  - Call the table on the kernel thread only: inside init, fini, command
 *    handlers and timer callbacks. Record functions are the exception: they
 *    touch nothing but the record, so any thread may use its own records.
 *  - Functions return 0 or a negative LINLI_E* code (linli/error.h) unless
 *    their comment says otherwise; linli_strerror(rc) names a code.
 *  - Every resource a plugin makes through the table (a command, a timer; in
 *    later versions subscriptions, store handles, devices) is tracked by the
 *    kernel and removed when init fails, and after fini. Records are values,
 *    not resources: free them yourself.
 *
 * Rules of the table (for kernel developers):
 *  - Members are only appended, at the end, each with a comment saying what it
 *    does, its return codes, who owns each buffer, and "since 1.N". Never
 *    move, retype or remove one within a major. Group new members under a
 *    `---- <subsystem>, since 1.N ----` line. Fill the new member in the one
 *    table in host/sdkapi.c; a resource it creates is tracked with
 *    plug_track (host/plugin.h).
 *  - A struct passed across the boundary starts with its own `size`.
 */
#ifndef LINLI_API_H
#define LINLI_API_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "linli/device.h"
#include "linli/error.h"
#include "linli/plugin.h"
#include "linli/record.h"
#include "linli/store.h"
#include "linli/time.h"
#include "linli/version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Log levels for api->log; messages above the daemon's log_level are dropped. */
enum linli_log_level { LINLI_LOG_ERROR = 0, LINLI_LOG_WARN, LINLI_LOG_INFO, LINLI_LOG_DEBUG };

/*
 * struct linli_cmd_req — one console request to a plugin command, since 1.0.
 * Everything is borrowed for the duration of the handler call.
 */
struct linli_cmd_req {
	uint32_t size;		 /* sizeof(struct linli_cmd_req) of the kernel */
	int argc;		 /* words after `linli <plugin> <command>` */
	const char *const *argv; /* argv[0..argc-1], UTF-8, NUL-terminated */
	const char *input;	 /* body sent with `linli --stdin`, or NULL */
	size_t input_len;	 /* bytes in input */
	void *ud;		 /* the pointer given to cmd_register */
	/*
	 * Since 1.1 (check req->size before reading it if you also run on 1.0):
	 * who called. While the handler runs, every store, bus and device call
	 * the plugin makes acts as this caller (see "Acting as the caller" at
	 * struct linli_caller).
	 */
	const struct linli_caller *caller;
};

/*
 * struct linli_caller — who a request comes from, since 1.1: the person or
 * machine account of a console command, or the API key of an HTTP route.
 * Borrowed for the duration of the handler: copy what you keep.
 *
 * Acting as the caller: while a command or route handler runs, every store,
 * bus and device call the plugin makes is checked, masked and audited as
 * the intersection of the plugin's grants and the caller's rights: the
 * target must lie in both jurisdictions (a NULL scope means the narrower of
 * the plugin's node and the caller's scope), the caller's role must allow
 * the action at its level, a field comes in clear only if both hold the
 * `sensitive` grant, and the audit files the act under the caller's name
 * "via plugin:NAME". A plugin cannot widen its caller. Callbacks that run
 * later (timers, subscribers, commit notices, device answers) act as the
 * plugin itself: do there only what the plugin does on its own account.
 */
struct linli_caller {
	uint32_t size;		       /* sizeof(struct linli_caller) of the kernel */
	const char *kind;	       /* "person", "machine" (machine account or API key), "kernel" */
	const char *name;	       /* account name, or "apikey:NAME" */
	const char *role;	       /* "admin", "operator", "grid_worker", "auditor", "viewer" */
	const char *scope;	       /* the caller's jurisdiction, e.g. "hefei/baohe/binhu" */
	const char *level;	       /* "city", "district", "street", "community" or "grid" */
	const char *const *grants;    /* NULL-terminated: "sensitive", "sensitive:DATASET" */
	const char *const *duties;    /* NULL-terminated workflow duties: "grid.dispatcher" */
	const char *const *resources; /* an API key's resources, NULL-terminated; NULL else */
};

/*
 * linli_cmd_fn — a console command handler (runs on the kernel thread; must
 * not block). Return 0 and optionally set *reply to a record you created
 * (rec_new / rec_new_array / rec_copy / rec_from_json): the kernel sends it
 * as the reply's data and frees it; with *reply left NULL the console prints
 * "ok". Or return a negative LINLI_E* code and write a message naming what
 * went wrong into err (errlen bytes, always > 0); the kernel frees *reply.
 */
typedef int (*linli_cmd_fn)(linli_ctx *ctx, const struct linli_cmd_req *req,
			    linli_record **reply, char *err, size_t errlen);

/*
 * struct linli_event — one bus event as a subscriber's handler sees it,
 * since 1.0. Everything is borrowed for the duration of the handler call:
 * copy what you keep (rec_copy for the payload).
 */
struct linli_event {
	uint32_t size;		      /* sizeof(struct linli_event) of the kernel */
	uint64_t seq;		      /* bus-wide, increasing in delivery order */
	int64_t time_ms;	      /* publication time, ms since the epoch (UTC) */
	const char *topic;	      /* e.g. "dev/smoke/sd-0042/event/alarm" */
	const char *publisher;	      /* plugin name, "console", a driver, ... */
	const char *scope;	      /* jurisdiction path the event belongs to */
	const linli_record *payload;  /* a map; read it with the rec_get_* functions */
	bool consequence;	      /* true: a record of consequence (never shed) */
};

/*
 * linli_event_fn — a bus subscriber (kernel thread; must not block). Return
 * 0, or a negative LINLI_E* code: the error is logged with the plugin's name
 * and delivery to the other subscribers goes on. It may publish, subscribe
 * and unsubscribe (itself included).
 */
typedef int (*linli_event_fn)(linli_ctx *ctx, const struct linli_event *ev, void *ud);

/*
 * struct linli_http_req — one request to a plugin's HTTP route, since 1.1.
 * Everything is borrowed for the duration of the handler call.
 */
struct linli_http_req {
	uint32_t size;		   /* sizeof(struct linli_http_req) of the kernel */
	const char *method;	   /* "GET", "POST", "PUT" or "DELETE" */
	const char *route;	   /* the name the route was registered with */
	const char *path;	   /* the decoded path after /api/v1/apps/<plugin>/ */
	const char *const *params; /* the values of the pattern's {} segments, NULL-terminated */
	const linli_record *query; /* the query parameters: a map of strings (first value) */
	const linli_record *body;  /* the JSON body (a map or an array), or NULL */
	const struct linli_caller *caller; /* the API key (kind "machine", resources set) */
	void *ud;		   /* the pointer given to route_register */
};

/*
 * linli_route_fn — an HTTP route handler (kernel thread; must not block).
 * Return 0 and optionally set *reply to a record you created (sent as the
 * JSON body and freed by the kernel; none: an empty object) and *status to
 * a 2xx status (default 200). Or return a negative LINLI_E* code with a
 * message in err: the client gets the kernel's JSON error, with *status if
 * you set one >= 400, else LINLI_EPERM 403, LINLI_ENOENT 404, LINLI_EEXIST
 * 409, LINLI_EINVAL / LINLI_ESCHEMA 400, LINLI_EBUSY 429, others 500.
 */
typedef int (*linli_route_fn)(linli_ctx *ctx, const struct linli_http_req *req,
			      linli_record **reply, int *status, char *err, size_t errlen);

/* linli_timer_fn — a timer callback (kernel thread; must not block). */
typedef void (*linli_timer_fn)(linli_ctx *ctx, void *ud);

/*
 * struct linli_request — one request a server's handler receives (serve),
 * since 1.1. Everything is borrowed for the duration of the handler call:
 * copy what you keep. Answer it with reply(ctx, rq->id, ...), inside the
 * handler or later.
 */
struct linli_request {
	uint32_t size;		     /* sizeof(struct linli_request) of the kernel */
	uint64_t id;		     /* the request's id, for reply */
	const char *topic;	     /* e.g. "alarm/raise" */
	const char *scope;	     /* the jurisdiction the request is about */
	const char *requester;	     /* the requesting plugin's name ("rule NAME" for a rule) */
	const linli_record *payload; /* a map */
};

/*
 * linli_request_fn — a server's handler (kernel thread; must not block),
 * since 1.1. It may reply at once or keep rq->id and reply later (after a
 * store commit, a device's answer); it may serve, unserve and send requests.
 */
typedef void (*linli_request_fn)(linli_ctx *ctx, const struct linli_request *rq, void *ud);

/*
 * linli_reply_fn — the answer to a request, called exactly once on the
 * kernel thread (never inside request), since 1.1. `status` is the server's
 * (0 or a positive status of its own: the request was served; a negative
 * LINLI_E* code: it failed) or the kernel's: LINLI_ETIMEDOUT (no reply
 * within the timeout), LINLI_ESTATE (the server stopped or unserved before
 * it replied: it may have acted on the request). `rec` is the reply's map,
 * or NULL when the server sent none; `err` is the server's or the kernel's
 * message, "" when none. Both are borrowed for the call (rec_copy to keep).
 */
typedef void (*linli_reply_fn)(linli_ctx *ctx, uint64_t id, int status, const linli_record *rec,
			       const char *err, void *ud);

struct linli_api {
	uint32_t size;		 /* sizeof(struct linli_api) in the kernel, since 1.0 */
	uint16_t major, minor; /* the kernel's SDK version, since 1.0 */

	/* ---- logging, since 1.0 ---- */

	/*
	 * log — write one line to the daemon log as `<time> <level> <plugin>:
	 * <message>`. printf format; newlines are folded. Since 1.0.
	 */
	void (*log)(linli_ctx *ctx, int level, const char *fmt, ...)
		__attribute__((format(printf, 3, 4)));
	/* logv — log with a va_list, for your own wrappers. Since 1.0. */
	void (*logv)(linli_ctx *ctx, int level, const char *fmt, va_list ap);
	/*
	 * set_error — the reason shown by `linli plugins info` when init
	 * returns an error (printf format). Outside init it only logs. Since 1.0.
	 */
	void (*set_error)(linli_ctx *ctx, const char *fmt, ...)
		__attribute__((format(printf, 2, 3)));

	/* ---- the plugin itself, since 1.0 ---- */

	/* plugin_name — this plugin's name; the string lives as long as ctx. Since 1.0. */
	const char *(*plugin_name)(linli_ctx *ctx);
	/*
	 * plugin_scope — the jurisdiction path the plugin acts in: the node it
	 * runs at (e.g. "hefei/baohe/binhu"), or the subtree it was installed
	 * for (`linli plugins install ... --scope hefei/baohe/binhu/yuelan`).
	 * Everything it does is confined to this subtree. Valid as long as
	 * ctx. Since 1.0.
	 */
	const char *(*plugin_scope)(linli_ctx *ctx);
	/* set_userdata / userdata — one pointer kept for you with ctx. Since 1.0. */
	void (*set_userdata)(linli_ctx *ctx, void *ud);
	void *(*userdata)(linli_ctx *ctx);
	/*
	 * time_now_ms — wall clock, ms since the Unix epoch (UTC), for times.
	 * On a node started with --test-clock it is the test clock, which an
	 * admin may move forward (`linli clock`), as are the timers. Any
	 * thread. Since 1.0.
	 */
	int64_t (*time_now_ms)(void);

	/* ---- console commands, since 1.0 ---- */

	/*
	 * cmd_register — make `linli <plugin-name> <sub> ARGS...` call fn.
	 * `sub` matches [a-z][a-z0-9_-]*, at most 63 bytes; `usage` (the
	 * arguments, e.g. "NAME [--all]") and `summary` (one line for `linli
	 * help`) may be NULL; all strings are copied. `ud` comes back in
	 * req->ud. Removed automatically on failure of init, disable, reload
	 * and unload. Returns 0, LINLI_EINVAL (bad sub or NULL fn),
	 * LINLI_EEXIST (this plugin has `sub` already), LINLI_ENOMEM. Since 1.0.
	 */
	int (*cmd_register)(linli_ctx *ctx, const char *sub, const char *usage,
			    const char *summary, linli_cmd_fn fn, void *ud);
	/* cmd_unregister — remove command `sub`. 0 or LINLI_ENOENT. Since 1.0. */
	int (*cmd_unregister)(linli_ctx *ctx, const char *sub);

	/* ---- timers, since 1.0 ---- */

	/*
	 * timer_add — call fn(ctx, ud) on the kernel thread after delay_ms,
	 * then every interval_ms if interval_ms > 0 (0: once). Stores an id
	 * > 0 in *id (may be NULL). Removed automatically like commands.
	 * Returns 0, LINLI_EINVAL (NULL fn), LINLI_ENOMEM. Since 1.0.
	 */
	int (*timer_add)(linli_ctx *ctx, uint64_t delay_ms, uint64_t interval_ms,
			 linli_timer_fn fn, void *ud, uint64_t *id);
	/*
	 * timer_cancel — stop timer `id` (also from inside its own callback).
	 * 0, or LINLI_ENOENT when it is not this plugin's or has already run
	 * (a one-shot timer is gone once its callback starts). Since 1.0.
	 */
	int (*timer_cancel)(linli_ctx *ctx, uint64_t id);

	/* ---- records (linli/record.h), since 1.0 ---- */

	/* rec_new / rec_new_array — a new empty map / array; NULL when out of memory. 1.0. */
	linli_record *(*rec_new)(void);
	linli_record *(*rec_new_array)(void);
	/*
	 * rec_free — free a record you own and everything in it. NULL is a
	 * no-op (0). A borrowed (nested) handle is refused with LINLI_EINVAL and
	 * left alone. Since 1.0.
	 */
	int (*rec_free)(linli_record *r);
	/* rec_copy — a deep copy of r (also of a nested one) into *out, yours. Since 1.0. */
	int (*rec_copy)(const linli_record *r, linli_record **out);
	/* rec_kind — LINLI_T_MAP or LINLI_T_ARRAY; LINLI_EINVAL for NULL. Since 1.0. */
	int (*rec_kind)(const linli_record *r);
	/* rec_count — fields of a map or elements of an array (0 for NULL). Since 1.0. */
	size_t (*rec_count)(const linli_record *r);
	/*
	 * rec_key — the key of field i (0 <= i < rec_count) in insertion
	 * order, borrowed. Iterate a map with it, then get by key. LINLI_ENOENT
	 * past the end, LINLI_ETYPE on an array. Since 1.0.
	 */
	int (*rec_key)(const linli_record *r, size_t i, const char **key);
	/*
	 * rec_type — the enum linli_type of field key, LINLI_T_NONE if absent;
	 * LINLI_EINVAL / LINLI_ETYPE (r is an array) on bad arguments. Since 1.0.
	 */
	int (*rec_type)(const linli_record *r, const char *key);
	/* rec_has — does map r have field key? Since 1.0. */
	bool (*rec_has)(const linli_record *r, const char *key);
	/* rec_remove — drop field key (and what it holds). 0 or LINLI_ENOENT. Since 1.0. */
	int (*rec_remove)(linli_record *r, const char *key);

	/*
	 * Getters by key, since 1.0. Each returns 0 and fills its out-params,
	 * LINLI_ENOENT when the field is absent, LINLI_ETYPE when it holds
	 * another type (or r is an array), LINLI_EINVAL for NULL arguments.
	 * rec_get_str: *s is borrowed and NUL-terminated; len (may be NULL) gets
	 * the length in bytes. rec_get_int: LINLI_E2BIG for an unsigned value
	 * above INT64_MAX. rec_get_float also accepts an integer field and
	 * converts it. rec_get_time reads an integer field (ms since the epoch).
	 * rec_get_map / rec_get_array: *child is borrowed (see record.h).
	 */
	int (*rec_get_str)(const linli_record *r, const char *key, const char **s, size_t *len);
	int (*rec_get_bin)(const linli_record *r, const char *key, const void **p, size_t *len);
	int (*rec_get_int)(const linli_record *r, const char *key, int64_t *v);
	int (*rec_get_float)(const linli_record *r, const char *key, double *v);
	int (*rec_get_bool)(const linli_record *r, const char *key, bool *v);
	int (*rec_get_time)(const linli_record *r, const char *key, int64_t *ms);
	int (*rec_get_map)(linli_record *r, const char *key, linli_record **child);
	int (*rec_get_array)(linli_record *r, const char *key, linli_record **child);

	/*
	 * Setters by key, since 1.0: add field key, or replace its value
	 * (whatever type it had; the field keeps its position). Values are
	 * copied. Return 0, LINLI_EINVAL (NULL argument, key with invalid
	 * UTF-8, string with invalid UTF-8), LINLI_ETYPE (r is an array),
	 * LINLI_ELIMIT (nesting deeper than LINLI_REC_MAX_DEPTH),
	 * LINLI_ENOMEM. rec_set_map / rec_set_array put a new empty map / array
	 * under key and give it back borrowed in *child (may be NULL).
	 * rec_set_record puts a deep copy of src (map or array) under key.
	 */
	int (*rec_set_str)(linli_record *r, const char *key, const char *s);
	int (*rec_set_strn)(linli_record *r, const char *key, const char *s, size_t len);
	int (*rec_set_bin)(linli_record *r, const char *key, const void *p, size_t len);
	int (*rec_set_int)(linli_record *r, const char *key, int64_t v);
	int (*rec_set_float)(linli_record *r, const char *key, double v);
	int (*rec_set_bool)(linli_record *r, const char *key, bool v);
	int (*rec_set_time)(linli_record *r, const char *key, int64_t ms);
	int (*rec_set_nil)(linli_record *r, const char *key);
	int (*rec_set_map)(linli_record *r, const char *key, linli_record **child);
	int (*rec_set_array)(linli_record *r, const char *key, linli_record **child);
	int (*rec_set_record)(linli_record *r, const char *key, const linli_record *src);

	/*
	 * Arrays, since 1.0. arr_type gives the enum linli_type of element i
	 * (LINLI_T_NONE past the end). The getters work like the rec_get_*
	 * ones with an index instead of a key (LINLI_ENOENT past the end,
	 * LINLI_ETYPE when a is a map). The pushers append like the rec_set_*
	 * ones. arr_remove drops element i, moving later ones down.
	 */
	int (*arr_type)(const linli_record *a, size_t i);
	int (*arr_get_str)(const linli_record *a, size_t i, const char **s, size_t *len);
	int (*arr_get_bin)(const linli_record *a, size_t i, const void **p, size_t *len);
	int (*arr_get_int)(const linli_record *a, size_t i, int64_t *v);
	int (*arr_get_float)(const linli_record *a, size_t i, double *v);
	int (*arr_get_bool)(const linli_record *a, size_t i, bool *v);
	int (*arr_get_time)(const linli_record *a, size_t i, int64_t *ms);
	int (*arr_get_map)(linli_record *a, size_t i, linli_record **child);
	int (*arr_get_array)(linli_record *a, size_t i, linli_record **child);
	int (*arr_push_str)(linli_record *a, const char *s);
	int (*arr_push_strn)(linli_record *a, const char *s, size_t len);
	int (*arr_push_bin)(linli_record *a, const void *p, size_t len);
	int (*arr_push_int)(linli_record *a, int64_t v);
	int (*arr_push_float)(linli_record *a, double v);
	int (*arr_push_bool)(linli_record *a, bool v);
	int (*arr_push_time)(linli_record *a, int64_t ms);
	int (*arr_push_nil)(linli_record *a);
	int (*arr_push_map)(linli_record *a, linli_record **child);
	int (*arr_push_array)(linli_record *a, linli_record **child);
	int (*arr_push_record)(linli_record *a, const linli_record *src);
	int (*arr_remove)(linli_record *a, size_t i);

	/*
	 * rec_to_json — write r as compact JSON into buf (cap bytes, NUL
	 * included). *len (may be NULL) gets the JSON's length without the
	 * NUL, also when it does not fit. Returns 0, LINLI_E2BIG when cap is
	 * too small (buf then holds ""), LINLI_EINVAL. Since 1.0.
	 */
	int (*rec_to_json)(const linli_record *r, char *buf, size_t cap, size_t *len);
	/*
	 * rec_from_json — parse a JSON object or array (len bytes of text) into
	 * a new record *out, yours. On failure returns LINLI_EINVAL with the
	 * line, column and reason in err (errlen bytes; err may be NULL), or
	 * LINLI_ELIMIT when nested deeper than LINLI_REC_MAX_DEPTH. Since 1.0.
	 */
	int (*rec_from_json)(const char *text, size_t len, linli_record **out, char *err,
			     size_t errlen);

	/* ---- the event bus, since 1.0 ---- */

	/*
	 * subscribe — call fn(ctx, ev, ud) for every event whose topic matches
	 * `pattern` ('/'-separated levels; `+` is exactly one level, a final `#`
	 * the rest: "dev/smoke/+/event/#") and whose scope lies in the plugin's
	 * jurisdiction (events of sibling or parent nodes never arrive). Events
	 * published before the call are not delivered. Stores the id (> 0) in
	 * *id (may be NULL). Removed automatically on failure of init, disable,
	 * reload and unload. Returns 0, LINLI_EINVAL (bad pattern or NULL fn;
	 * see the log), LINLI_EPERM (the plugin holds no granted capability
	 * `bus.subscribe:<pattern>`), LINLI_ENOMEM. Since 1.0.
	 */
	int (*subscribe)(linli_ctx *ctx, const char *pattern, linli_event_fn fn, void *ud,
			 uint64_t *id);
	/* unsubscribe — stop subscription `id` (also from its own handler). 0 or LINLI_ENOENT. Since 1.0. */
	int (*unsubscribe)(linli_ctx *ctx, uint64_t id);
	/*
	 * publish — publish `payload` (a map, borrowed: the kernel copies it) on
	 * `topic` (no wildcards) for jurisdiction `scope`: NULL means the
	 * plugin's own node; otherwise a path inside it. Records of consequence
	 * (alarm/#, incident/#, ... as the node declares them) are stored before
	 * any subscriber sees them. Subscribers run after the current handler
	 * returns, never inside this call. Returns 0 and the event's seq in *seq
	 * (may be NULL); LINLI_EINVAL (bad topic, scope or payload); LINLI_EPERM
	 * (scope outside the plugin's jurisdiction, or no granted capability
	 * `bus.publish:<topic>`); LINLI_EBUSY (telemetry shed under overload);
	 * or the store's code when a record of consequence could not be stored.
	 * Since 1.0.
	 */
	int (*publish)(linli_ctx *ctx, const char *topic, const char *scope,
		       const linli_record *payload, uint64_t *seq);

	/* ---- the store, since 1.0 (its types and rules: linli/store.h) ---- */

	/*
	 * store_get — record `id` of `dataset` as a new record (a map of its
	 * fields) in *rec: yours, free it with rec_free. `scope` is the record's
	 * own scope (ids are unique per dataset and scope: see linli/store.h);
	 * NULL looks the id up within the plugin's node's subtree. `scope_out`
	 * (may be NULL; LINLI_SCOPE_MAX + 1 bytes) receives the scope the
	 * record lives at. Needs capability store.read:DATASET; sensitive fields
	 * come masked without sensitive:DATASET, and the read is audited
	 * (linli/store.h). Returns 0; LINLI_ENOENT (no such record there, or no
	 * such dataset); LINLI_EINVAL (bad id or scope; or, with a NULL scope,
	 * several records of the subtree have the id: store_last_error names
	 * their scopes, give one); LINLI_EPERM (scope outside the plugin's
	 * jurisdiction, or the capability not declared); LINLI_EIO;
	 * LINLI_ENOMEM. On failure *rec is NULL and store_last_error says why.
	 * Since 1.0.
	 */
	int (*store_get)(linli_ctx *ctx, const char *dataset, const char *scope, const char *id,
			 linli_record **rec, char *scope_out);
	/*
	 * store_put — create or replace a record of `dataset` at `scope` (NULL:
	 * the plugin's node; the dataset's catalog `level` says how deep its
	 * records live, e.g. residents at a community or below). `id` NULL
	 * creates a new record with a fresh time-ordered id (it carries the
	 * node's id: linli/store.h); otherwise record `id` at `scope` is created
	 * or replaced whole, whatever other scopes hold. `rec` is a map of the dataset's
	 * fields, borrowed (the kernel copies it); a nil field is absent. The id
	 * is copied to `id_out` (may be NULL; LINLI_ID_MAX + 1 bytes) and
	 * *created (may be NULL) says whether the record is new. Needs
	 * store.write:DATASET. The write is visible at once and durable at the
	 * end of the kernel's batch (see store_on_commit). Returns 0;
	 * LINLI_ESCHEMA (the record breaks the schema: nothing is stored and
	 * store_last_error names the dataset, the field and the reason, e.g.
	 * "residents: field 'gender': 'x' is not one of male, female");
	 * LINLI_EINVAL (bad id or scope, a scope above the dataset's level, rec
	 * not a map); LINLI_ENOENT (no such dataset); LINLI_EPERM; LINLI_E2BIG
	 * (over 256 KiB packed);
	 * LINLI_EFULL (disk full); LINLI_ESTATE (called from a
	 * linli_update_fn); LINLI_EIO; LINLI_ENOMEM. Since 1.0.
	 */
	int (*store_put)(linli_ctx *ctx, const char *dataset, const char *scope, const char *id,
			 const linli_record *rec, char *id_out, bool *created);
	/*
	 * store_delete — delete record `id` of `dataset` at `scope` (NULL: the
	 * one record with that id within the plugin's node's subtree, as for
	 * store_get). Needs store.write:DATASET. Durable like store_put.
	 * Returns 0; LINLI_ENOENT (no such record, or no such dataset);
	 * LINLI_EINVAL (also: several records, as for store_get);
	 * LINLI_EPERM; LINLI_ESTATE (from a linli_update_fn); LINLI_EFULL;
	 * LINLI_EIO. Since 1.0.
	 */
	int (*store_delete)(linli_ctx *ctx, const char *dataset, const char *scope, const char *id);
	/*
	 * store_scan — one page of the records of q->dataset within q->scope
	 * that match every filter of q->where, in key order (scope, then id —
	 * ids the store made are time-ordered; by the first filter's index when
	 * filtered). Calls fn(ctx, row, ud) for each (see linli_row_fn; fn may be
	 * NULL to count). Writes the cursor of the next page into `cursor_out`
	 * (LINLI_CURSOR_MAX bytes; may be NULL; may be q->cursor's own buffer),
	 * or "" when this was the last page: pass it as q->cursor, with the same
	 * dataset, scope and first filter, for the next page. A page may hold
	 * fewer than q->limit rows (it also ends after 4 MiB of records); go on
	 * while the cursor is not "". Records added between pages appear in a
	 * later page if their key sorts after the cursor. Needs
	 * store.read:DATASET; masking and audit as for store_get (one audit
	 * entry per page). A filter on a sensitive field needs the grant to
	 * read it in clear (sensitive or sensitive:DATASET): without it the
	 * scan is refused with LINLI_EPERM naming the field, and audited as
	 * denied; with it the filter is audited like a clear read. Returns the
	 * number of rows handed to fn (>= 0); fn's negative code; LINLI_EINVAL (bad
	 * scope, limit or filter, a field that is not indexed, a cursor of
	 * another query, q->size too small: store_last_error says which);
	 * LINLI_ENOENT (no such dataset); LINLI_EPERM; LINLI_EIO; LINLI_ENOMEM.
	 * Since 1.0.
	 */
	int (*store_scan)(linli_ctx *ctx, const struct linli_query *q, linli_row_fn fn, void *ud,
			  char *cursor_out);
	/*
	 * store_update — read-modify-write record `id` of `dataset` in one
	 * transaction: fn (see linli_update_fn) gets the current record, or NULL
	 * when there is none, and says what to write; no other write comes in
	 * between, so N updates that each add 1 add N. The record is the one
	 * at `scope`, or with a NULL scope the one record with that id within
	 * the plugin's node's subtree (as for store_get); when there is none a
	 * new one is created at `scope` (NULL: the plugin's node). Needs
	 * store.read:DATASET and
	 * store.write:DATASET; without sensitive:DATASET fn sees sensitive
	 * fields masked, and those it leaves as given keep their stored values.
	 * Durable like store_put. Returns 0 (also for
	 * LINLI_STORE_KEEP, and for LINLI_STORE_DELETE of an absent record);
	 * fn's negative code (store_last_error holds the message fn wrote);
	 * LINLI_ESCHEMA (the new record breaks the schema; nothing is written);
	 * LINLI_EINVAL (bad id or scope, several records as for store_get, NULL
	 * fn, fn returned something else); LINLI_ENOENT (no such
	 * dataset); LINLI_EPERM; LINLI_ESTATE (from a linli_update_fn);
	 * LINLI_EFULL; LINLI_EIO; LINLI_ENOMEM. Since 1.0.
	 */
	int (*store_update)(linli_ctx *ctx, const char *dataset, const char *scope, const char *id,
			    linli_update_fn fn, void *ud);
	/*
	 * store_on_commit — call fn(ctx, rc, msg, ud) once, when the current
	 * batch (which holds every write made since the last commit, the
	 * plugin's included) is committed or lost. Use it to act only on durable
	 * data (e.g. to acknowledge a device). Removed, uncalled, if the plugin
	 * stops first. Returns 0; LINLI_ESTATE (no write is pending: what was
	 * written is durable already); LINLI_EINVAL (NULL fn); LINLI_ENOMEM.
	 * Since 1.0.
	 */
	int (*store_on_commit)(linli_ctx *ctx, linli_commit_fn fn, void *ud);
	/*
	 * store_last_error — the message of this plugin's latest store call
	 * (store_get ... store_on_commit) when it failed, "" when it succeeded:
	 * it names the dataset, field, id or scope and the reason. Borrowed,
	 * valid until the plugin's next store call. Since 1.0.
	 */
	const char *(*store_last_error)(linli_ctx *ctx);
	/* ---- devices (HAL), since 1.0 ----
	 *
	 * The device layer (linli/device.h explains drivers, classes and the
	 * topics the kernel publishes). Thread safety: dev_post, dev_event and
	 * dev_command_done may be called from ANY thread (a driver's own I/O
	 * threads); they copy what they are given and hand it to the kernel
	 * thread. Every other member here is kernel-thread only, like the rest
	 * of the table.
	 */

	/*
	 * plugin_config — this plugin's settings: the group `plugins = { <name>
	 * = { ... }; }` of linli.cfg as a new map in *out (yours: rec_free it);
	 * an empty map when the group is absent. Groups become maps, lists and
	 * arrays become arrays; the values are read again after a SIGHUP.
	 * Returns 0 or LINLI_ENOMEM. Since 1.0.
	 */
	int (*plugin_config)(linli_ctx *ctx, linli_record **out);
	/*
	 * device_classes — the catalog's device classes as a new array in *out
	 * (yours), one map per class: {"name", "title_en", "title_zh",
	 * "heartbeat", "resources": [{"name", "type", "access", "unit"?, "min"?,
	 * "max"?, "values"?, "max_len"?}], "commands": [{"name", "args": [...]}], "events":
	 * [{"name", "severity", "journal"?, "sensitive"?: [{"name", "mask"}]}]}
	 * ("sensitive" since 1.1: the event's personal fields, masked without
	 * sensitive:devices), and "plugin" when the catalog's plugin index
	 * gives the class to a plugin (its `classes`: the one plugin that turns
	 * the class's events into alarms; since 1.1). Returns 0 or
	 * LINLI_ENOMEM. Since 1.0.
	 */
	int (*device_classes)(linli_ctx *ctx, linli_record **out);
	/*
	 * driver_register — register the HAL driver `name` (the `driver` of
	 * registry entries) with the ops table `ops` (copied). Needs the granted
	 * capability `hal.driver:<name>`. The kernel then opens every registered
	 * device of this driver and calls ops->discover once — after the
	 * current callback (init) returns, so register when your state is
	 * ready. Unregistered automatically when the plugin stops (devices are
	 * closed first, before fini). Returns 0; LINLI_EVERSION (ops->size is
	 * not the size of any known ops layout: rebuild against this SDK; the
	 * message is logged and set as the init error); LINLI_EINVAL (bad name,
	 * NULL ops, missing open or close); LINLI_EPERM (no capability);
	 * LINLI_EEXIST (another driver has the name); LINLI_ENOMEM. Since 1.0.
	 */
	int (*driver_register)(linli_ctx *ctx, const char *name, const struct linli_driver_ops *ops);
	/*
	 * dev_post — report n readings (an array of struct linli_reading, all of
	 * the size r[0].size) of devices of this plugin's drivers. ANY THREAD.
	 * Each is checked against its device's class: a refused one (unknown
	 * device or resource, wrong type, out of range) is counted on the device
	 * and logged once, never published. On the kernel thread the readings
	 * are processed before the call returns; from another thread they are
	 * queued (in order per thread) and processed on the kernel thread soon.
	 * Returns 0; LINLI_EINVAL (NULL, n == 0, unknown size); LINLI_EBUSY
	 * (off the kernel thread: bus.telemetry_queue readings already wait;
	 * nothing of this call was taken, it is counted as shed); on the kernel
	 * thread, LINLI_ESCHEMA / LINLI_ENOENT when one or more were refused
	 * (the others were taken); LINLI_ESTATE once the kernel has stopped.
	 * Since 1.0.
	 */
	int (*dev_post)(linli_ctx *ctx, const struct linli_reading *r, size_t n);
	/*
	 * dev_event — report that `device` raised event `event` (a name of its
	 * class's events) at time_ms (0: now), with optional details `data` (a
	 * map, copied; NULL for none). ANY THREAD. Published as a record of
	 * consequence (stored, never shed). An unknown device or event is
	 * refused, counted and logged once. Returns 0, LINLI_EINVAL,
	 * LINLI_ENOMEM, LINLI_ESTATE; on the kernel thread also the refusal
	 * (LINLI_ENOENT, LINLI_ESCHEMA) or the journal's code. Since 1.0.
	 */
	int (*dev_event)(linli_ctx *ctx, const char *device, const char *event,
			 const linli_record *data, int64_t time_ms);
	/*
	 * dev_command_done — finish request `req` (from ops->command or
	 * ops->write): rc 0 with the device's `result` (a map, copied; NULL for
	 * none), or a negative LINLI_E* code and a message `err` (may be NULL).
	 * ANY THREAD, also inside the op itself. The sender is answered on the
	 * kernel thread after the op returned. A request that already timed out
	 * or was cancelled is ignored. Returns 0, LINLI_EINVAL, LINLI_ENOMEM,
	 * LINLI_ESTATE. Since 1.0.
	 */
	int (*dev_command_done)(linli_ctx *ctx, uint64_t req, int rc, const linli_record *result,
				const char *err);
	/*
	 * dev_found — from a driver's discover: register the device described
	 * by `info` for this driver (it is opened next). Returns 0;
	 * LINLI_EEXIST (the id is registered already: nothing changes);
	 * LINLI_EINVAL / LINLI_ESCHEMA (bad id, unknown class, scope outside
	 * the plugin's node or above the devices dataset's level); LINLI_EPERM
	 * (the caller registered no driver, or a scope outside plugin_scope);
	 * the store's code. Since 1.0.
	 */
	int (*dev_found)(linli_ctx *ctx, const struct linli_device_info *info);
	/*
	 * dev_auth — does `secret` match the machine credential of `device`
	 * (one of this plugin's drivers' devices)? For drivers whose devices
	 * log in (MQTT and the like). Returns 0 (it does), LINLI_EAUTH (it
	 * does not, or the device has no credential yet), LINLI_ENOENT,
	 * LINLI_EPERM (not this plugin's device). Since 1.0.
	 */
	int (*dev_auth)(linli_ctx *ctx, const char *device, const char *secret);
	/*
	 * dev_info — the registry entry of `device` as a new map in *out
	 * (yours): {"id", "class", "scope", "driver", "address", "name",
	 * "state", "last_seen"}. Needs `device.read:<class>` (a driver may read
	 * its own devices). Returns 0, LINLI_ENOENT, LINLI_EPERM, LINLI_ENOMEM.
	 * Since 1.0.
	 */
	int (*dev_info)(linli_ctx *ctx, const char *device, linli_record **out);
	/*
	 * dev_get — the latest good value of `resource` of `device` as a new
	 * map {"value", "time"} in *out (yours); with resource NULL, a map of
	 * every resource that has a value: {resource: {"value", "time"}}.
	 * Needs `device.read:<class>`. Returns 0, LINLI_ENOENT (no such device
	 * or resource, or no value yet), LINLI_EPERM, LINLI_ENOMEM. Since 1.0.
	 */
	int (*dev_get)(linli_ctx *ctx, const char *device, const char *resource,
		       linli_record **out);
	/*
	 * dev_command — send `command` with `args` (a map holding every
	 * argument of the class's command; NULL when it takes none) to
	 * `device`. Needs `device.command:<class>`; audited. The answer comes
	 * once, later, through fn(ctx, req, rc, result, err, ud) on the kernel
	 * thread (linli/device.h). timeout_ms 0 means 10 s (at most 600 s).
	 * Returns 0 with the request id in *req (may be NULL); or, with nothing
	 * sent and fn never called, LINLI_ENOENT (device, command), LINLI_EPERM,
	 * LINLI_ESCHEMA (an argument missing, unknown, of the wrong type or out
	 * of range; logged), LINLI_ESTATE (the device is not open or its
	 * driver takes no commands), LINLI_ENOMEM. Pending requests of a
	 * stopping plugin are dropped without a call. Since 1.0.
	 */
	int (*dev_command)(linli_ctx *ctx, const char *device, const char *command,
			   const linli_record *args, uint32_t timeout_ms, linli_dev_done_fn fn,
			   void *ud, uint64_t *req);

	/* ---- append new members below this line, grouped by subsystem and version ---- */

	/* ---- the caller, acting as the caller, plugin actions and duties, since 1.1 ---- */

	/*
	 * action_declare — declare this plugin's action `name` ("<plugin>.<word>",
	 * e.g. "alarms.ack", at most 63 bytes) for callers: the least role it
	 * needs (`min_role`: "viewer" < "auditor" < "grid_worker" < "operator" <
	 * "admin"), the deepest level its caller may sit at (`level`: "city",
	 * "district", "street", "community", "grid"; NULL for any), and a
	 * workflow duty the caller must hold (`duty`, e.g. "grid.dispatcher";
	 * NULL for none; admins need none). `summary` (may be NULL) is one line
	 * for `linli plugins info`, which lists the actions. The kernel's one
	 * decision point checks them (cmd_require, caller_may). Removed with the
	 * plugin like commands. Returns 0; LINLI_EINVAL (bad name, role, level or
	 * duty: the log says which); LINLI_EEXIST (declared already);
	 * LINLI_ENOMEM. Since 1.1.
	 */
	int (*action_declare)(linli_ctx *ctx, const char *name, const char *min_role,
			      const char *level, const char *duty, const char *summary);
	/*
	 * cmd_require — have the kernel check action `action` (declared by this
	 * plugin) for every caller of command `sub` before its handler runs, at
	 * the caller's own scope. A refused caller never reaches the handler:
	 * the console gets LINLI_EPERM naming the action and the reason, and the
	 * refusal is audited under the caller. A handler that acts on a target
	 * scope checks it there again with caller_may. Returns 0; LINLI_ENOENT
	 * (no such command or action of this plugin); LINLI_EINVAL. Since 1.1.
	 */
	int (*cmd_require)(linli_ctx *ctx, const char *sub, const char *action);
	/*
	 * caller_may — may `caller` (the req->caller of the request this plugin
	 * serves now) take this plugin's action `action` on `scope` (NULL: the
	 * caller's own)? The action's least role, level and duty, and the scope
	 * within the caller's jurisdiction. A refusal is audited under the caller
	 * and logged. Returns 0; LINLI_EPERM with the reason in err (errlen
	 * bytes; err may be NULL); LINLI_ENOENT (no such action declared);
	 * LINLI_EINVAL (bad scope, NULL argument); LINLI_ESTATE (`caller` is not
	 * the caller of the request being served: a caller is valid only while
	 * its handler runs). Since 1.1.
	 */
	int (*caller_may)(linli_ctx *ctx, const struct linli_caller *caller, const char *action,
			  const char *scope, char *err, size_t errlen);
	/*
	 * duty_holders — the enabled accounts within `scope` (NULL: the plugin's
	 * node, or the caller's scope while serving a request) holding workflow
	 * duty `duty`, as a new array in *out (yours) of maps {"user", "scope",
	 * "role", "name"}: whom to dispatch a case to. Admins assign duties with
	 * `linli accounts assign USER DUTY`. Returns 0; LINLI_EINVAL (bad duty or
	 * scope); LINLI_EPERM (scope outside the plugin's jurisdiction, or the
	 * caller's while serving one); LINLI_ENOMEM; the store's code. Since 1.1.
	 */
	int (*duty_holders)(linli_ctx *ctx, const char *duty, const char *scope,
			    linli_record **out);

	/* ---- plugin HTTP routes, since 1.1 ---- */

	/*
	 * route_register — serve `method` ("GET", "POST", "PUT", "DELETE") on
	 * /api/v1/apps/<plugin>/<pattern> with fn. `pattern` is a path of
	 * segments of [A-Za-z0-9._-] or `{}` (one segment, given in
	 * req->params), at most 8 of them, e.g. "cases/{}/close"; `name` ([a-z]
	 * [a-z0-9_-]*, at most 63 bytes) names the route for API keys: a key
	 * reaches it only with the resource app:<plugin> or app:<plugin>/<name>
	 * (`linli apikeys add --resources`). Requests pass the kernel's key
	 * check, rate limit and audit first, and the handler acts as the key
	 * (a machine at the key's scope, a viewer unless issued `--role
	 * operator`), as commands act as their caller. Removed with the plugin.
	 * Returns 0; LINLI_EINVAL (bad name, method or pattern, NULL fn: the log
	 * says which); LINLI_EEXIST (the name, or the method on the same
	 * pattern, is taken); LINLI_ENOMEM. Since 1.1.
	 */
	int (*route_register)(linli_ctx *ctx, const char *name, const char *method,
			      const char *pattern, linli_route_fn fn, void *ud);
	/*
	 * route_require — have the kernel check this plugin's action `action`
	 * for the key before route `name` runs (refused: 403, audited). Returns
	 * 0 or LINLI_ENOENT (no such route or action). Since 1.1.
	 */
	int (*route_require)(linli_ctx *ctx, const char *name, const char *action);
	/* route_unregister — remove route `name`: 0 or LINLI_ENOENT. Since 1.1. */
	int (*route_unregister)(linli_ctx *ctx, const char *name);

	/* ---- bus request/reply, since 1.1 ---- */

	/*
	 * serve — answer requests on topics matching `pattern` (as for
	 * subscribe: `+` one level, a final `#` the rest) whose scope lies in
	 * the plugin's jurisdiction: fn(ctx, rq, ud) runs on the kernel thread
	 * once per request, never inside the requester's call. A request goes to
	 * exactly one server: of those whose pattern matches its topic, the one
	 * that served first. Needs the granted capability
	 * `bus.subscribe:<pattern>` (serving is subscribing to requests). Stores
	 * the id (> 0) in *id (may be NULL). Removed automatically on failure of
	 * init, disable, reload and unload; its requests not yet answered are
	 * then answered LINLI_ESTATE at once. Returns 0, LINLI_EINVAL (bad
	 * pattern or NULL fn; see the log), LINLI_EPERM, LINLI_EEXIST (another
	 * server has the same pattern: the log names it), LINLI_ENOMEM.
	 * Since 1.1.
	 */
	int (*serve)(linli_ctx *ctx, const char *pattern, linli_request_fn fn, void *ud,
		     uint64_t *id);
	/*
	 * unserve — stop server `id` (also from inside its handler); its
	 * requests not yet answered are answered LINLI_ESTATE. 0 or
	 * LINLI_ENOENT. Since 1.1.
	 */
	int (*unserve)(linli_ctx *ctx, uint64_t id);
	/*
	 * reply — answer request `id` that one of this plugin's servers received,
	 * inside its handler or later: `status` 0 (or a positive status of your
	 * own) for served, a negative LINLI_E* code for failed; `rec` a map
	 * (borrowed: copied) or NULL; `err` a message (may be NULL) for the
	 * requester. The requester's fn runs after the current callback returns.
	 * Returns 0; LINLI_ENOENT (no such request pending at this plugin: it was
	 * answered, timed out, or its requester went away); LINLI_EINVAL (rec
	 * not a map); LINLI_E2BIG (over 256 KiB packed); LINLI_ENOMEM. Since 1.1.
	 */
	int (*reply)(linli_ctx *ctx, uint64_t id, int status, const linli_record *rec,
		     const char *err);
	/*
	 * request — send `payload` (a map, borrowed: copied; NULL for empty) on
	 * `topic` (no wildcards) for jurisdiction `scope` (NULL: the plugin's
	 * node; otherwise a path inside it) to the one server of the topic, and
	 * get fn(ctx, id, status, rec, err, ud) exactly once: the server's reply,
	 * or LINLI_ETIMEDOUT after timeout_ms (0: 10 s; at most 600 s), or
	 * LINLI_ESTATE at once when the server stops or unserves before it
	 * replied (see linli_reply_fn). A server only receives requests whose
	 * scope lies in its jurisdiction. Needs the granted capability
	 * `bus.publish:<topic>`. Stores the id (> 0) in *id (may be NULL). A
	 * pending request is a resource: removed, and fn never called, when the
	 * plugin stops first. Returns 0; or, with nothing sent and fn never
	 * called: LINLI_ENOENT (nobody serves the topic at that scope: see the
	 * log), LINLI_EINVAL (bad topic, scope, payload or timeout, NULL fn),
	 * LINLI_EPERM (scope outside the plugin's jurisdiction, no capability),
	 * LINLI_EBUSY (10000 requests pending on the node), LINLI_ENOMEM.
	 * Since 1.1.
	 */
	int (*request)(linli_ctx *ctx, const char *topic, const char *scope,
		       const linli_record *payload, uint32_t timeout_ms, linli_reply_fn fn,
		       void *ud, uint64_t *id);
	/*
	 * request_cancel — give up pending request `id` of this plugin: its fn is
	 * never called (a reply the server sends later is refused with
	 * LINLI_ENOENT). 0 or LINLI_ENOENT (not this plugin's, or answered
	 * already). Since 1.1.
	 */
	int (*request_cancel)(linli_ctx *ctx, uint64_t id);

	/* ---- store: range filters, change notifications, schemas, since 1.1 ---- */

	/*
	 * Range filters need no member of their own: struct linli_query has
	 * `range` and `n_range` since 1.1 (linli/store.h), and store_scan
	 * takes them ("<", "<=", ">", ">=" on indexed integers, floats and
	 * times; a sensitive field needs the grant, as an equality does).
	 */

	/*
	 * store_watch — after each batch commits, call fn(ctx, change, ud)
	 * (linli_change_fn, linli/store.h) for every record of `dataset`
	 * created, updated or deleted in it, by anyone (console, HTTP, other
	 * plugins, scripts, this plugin outside fn), whose scope lies in the
	 * plugin's jurisdiction, in commit order. Nothing is told of a batch
	 * that was lost, nor of writes before the call. Stores the id (> 0)
	 * in *id (may be NULL). Needs store.read:DATASET. Removed
	 * automatically on failure of init, disable, reload and unload.
	 * Returns 0; LINLI_EINVAL (NULL fn); LINLI_ENOENT (no such dataset);
	 * LINLI_EPERM (no capability, or a system dataset); LINLI_ENOMEM;
	 * store_last_error says why. Since 1.1.
	 */
	int (*store_watch)(linli_ctx *ctx, const char *dataset, linli_change_fn fn, void *ud,
			   uint64_t *id);
	/*
	 * store_unwatch — stop watch `id` (also from inside its own fn: it
	 * is not called again). 0 or LINLI_ENOENT (not this plugin's).
	 * Since 1.1.
	 */
	int (*store_unwatch)(linli_ctx *ctx, uint64_t id);
	/*
	 * dataset_schema — what the catalog says of `dataset`, as a new map
	 * in *out (yours: rec_free it): {"name", "title_en", "title_zh",
	 * "level" (city, district, street, community, grid), "sharing",
	 * "owner", "family", "source", "restricted", "fields": [{"name",
	 * "type" (string, integer, float, boolean, time, enum, ref, geo),
	 * "required", "indexed", "sensitive" (the mask kind: "id_number",
	 * "phone", "name", "address", "health"; or false), "values"? (enum),
	 * "ref"? (the dataset a ref points to), "min"?, "max"?, "max_len"?,
	 * "unit"?}]}, fields in catalog order. Needs the capability
	 * catalog.read. Returns 0; LINLI_EPERM (no capability, or a system
	 * dataset); LINLI_ENOENT (no such dataset); LINLI_EINVAL (NULL out);
	 * LINLI_ENOMEM; store_last_error says why. Since 1.1.
	 */
	int (*dataset_schema)(linli_ctx *ctx, const char *dataset, linli_record **out);
	/*
	 * datasets — the catalog's datasets (the kernel's own left out) as a
	 * new array in *out (yours), one map each: {"name", "title_en",
	 * "title_zh", "level", "sharing"}. Needs catalog.read. Returns 0,
	 * LINLI_EPERM, LINLI_EINVAL, LINLI_ENOMEM. Since 1.1.
	 */
	int (*datasets)(linli_ctx *ctx, linli_record **out);

	/* ---- devices: waiting for a commit, since 1.1 ---- */

	/*
	 * dev_event_wait — dev_event, then wait until the event is durable:
	 * for a driver that acknowledges a device only once the event is kept
	 * (MQTT QoS 1). Call it from the driver's OWN thread, never on the
	 * kernel thread (init, handlers, ops, timers: it would block the thread
	 * that commits, so it is refused there with LINLI_ESTATE). Blocks the
	 * calling thread until the kernel's batch that journaled the event
	 * committed, at most timeout_ms (0: 10 s; at most 600 s). An event the
	 * class does not journal (`journal = false` in the catalog) returns 0
	 * once published. `data` is copied before the call blocks. Returns 0
	 * (committed); the refusals of dev_event (LINLI_ENOENT, LINLI_ESCHEMA,
	 * LINLI_EPERM, LINLI_EINVAL); the store's code when the commit failed
	 * (LINLI_EFULL, LINLI_EIO: the event is lost, do not acknowledge it);
	 * LINLI_ETIMEDOUT (not known yet: the event may still be committed);
	 * LINLI_ESTATE (on the kernel thread; or the plugin is stopping — its
	 * quiesce wakes every waiting thread before fini, so fini can join them —
	 * or linlid is shutting down); LINLI_ENOMEM. Since 1.1.
	 */
	int (*dev_event_wait)(linli_ctx *ctx, const char *device, const char *event,
			      const linli_record *data, int64_t time_ms, uint32_t timeout_ms);

	/* ---- time: the node's time zone, local calendar time, since 1.1 ---- */

	/*
	 * time_zone — the node's time zone, an IANA name ("Asia/Shanghai"
	 * unless linli.cfg's `time_zone` says otherwise; never the TZ linlid
	 * was started with). The string stays valid as long as ctx; an admin's
	 * config reload may change it between two of your callbacks. Kernel
	 * thread. Since 1.1.
	 */
	const char *(*time_zone)(linli_ctx *ctx);
	/*
	 * time_local — the instant `ms` (ms since the epoch, e.g. from
	 * time_now_ms) in the node's local calendar: fills *out (set
	 * out->size = sizeof *out first; the caller owns it) with year, month
	 * 1-12, day, hour, minute, second, ms, weekday (1 = Monday .. 7 =
	 * Sunday), yearday, the UTC offset in seconds and dst. Returns 0, or
	 * LINLI_EINVAL (out NULL or its size too small, ms outside the years
	 * 1..9999). Any thread. Since 1.1.
	 */
	int (*time_local)(linli_ctx *ctx, int64_t ms, struct linli_tm *out);
	/*
	 * time_from_local — the instant (ms since the epoch, into *ms) of a
	 * local calendar time: year, month, day, hour, minute, second and ms
	 * of *t are read (t->size set; weekday, yearday, utc_offset_s and dst
	 * are ignored). A date that does not exist (31 April, 29 February of
	 * a common year) or a field out of range is refused with LINLI_EINVAL
	 * and *ms is left alone. A time the clocks skip when summer time
	 * begins (02:30 in Berlin on its last Sunday of March) moves forward
	 * by the gap (03:30); one they pass twice when it ends gives the
	 * earlier instant (add 3600000 for the later). Asia/Shanghai has no
	 * summer time. Any thread. Since 1.1.
	 */
	int (*time_from_local)(linli_ctx *ctx, const struct linli_tm *t, int64_t *ms);
	/*
	 * time_day_start — the first instant of the local day `days` days
	 * after the one that holds `ms` (0: that day, 1: the next, -1: the day
	 * before) into *out: local midnight, or the first instant after it if
	 * a change of offset skips midnight. For daily checks and shift
	 * windows: "today 08:00" is time_day_start(ctx, now, 0, &d) plus 8 h
	 * on days without a change of offset, time_from_local on any day.
	 * Returns 0, or LINLI_EINVAL (out NULL, outside the years 1..9999).
	 * Any thread. Since 1.1.
	 */
	int (*time_day_start)(linli_ctx *ctx, int64_t ms, int64_t days, int64_t *out);

	/* ---- the audit log, since 1.1 ---- */

	/*
	 * audit — file what this plugin decided in the node's audit log (an
	 * illegal workflow move refused, a case closed, an alarm cleared), as
	 * the kernel files its own decisions: `action` "<plugin>.WORD" (a
	 * declared action or not), `scope` where it happened (NULL: the
	 * caller's jurisdiction while serving a request, else the plugin's),
	 * `object` what it acted on (a case id; may be NULL), `result`
	 * "allowed", "denied" or "failed", `detail` a few words (may be NULL);
	 * object and detail at most 512 bytes. While a handler serves a
	 * request the entry is filed under the caller with via plugin:NAME
	 * (`linli audit --via plugin:NAME`), otherwise under plugin:NAME.
	 * Refusals by cmd_require and caller_may are audited already. Returns
	 * 0; LINLI_EINVAL (bad action, result, text or scope: the log says
	 * which); LINLI_EPERM (scope outside the plugin's jurisdiction, or
	 * the caller's while serving one). Kernel thread. Since 1.1.
	 */
	int (*audit)(linli_ctx *ctx, const char *action, const char *scope, const char *object,
		     const char *result, const char *detail);

	/* ---- devices: availability from the driver, since 1.1 ---- */

	/*
	 * dev_available — tell the HAL that `device` (a device of this plugin's
	 * drivers) is online (true) or unavailable (false) now, for a driver
	 * that learns it from its transport (an MQTT last will, a gateway's
	 * report). `why` (may be NULL; its first 200 bytes are kept) goes into
	 * the log line and the published change. ANY THREAD: from another
	 * thread it is queued in order with that thread's dev_post and
	 * dev_event. Online counts as a word from the device (its heartbeat
	 * starts again); unavailable lasts until the device next speaks or the
	 * driver says online. A change is logged once and published as
	 * dev/<class>/<id>/event/online|unavailable, as the heartbeat's are; no
	 * change, nothing. Returns 0; LINLI_EINVAL (NULL device, an id too
	 * long); LINLI_ENOMEM; LINLI_ESTATE (the kernel has stopped); on the
	 * kernel thread also LINLI_ENOENT / LINLI_EPERM (no such device, not
	 * this plugin's). Since 1.1.
	 */
	int (*dev_available)(linli_ctx *ctx, const char *device, bool online, const char *why);

	/* ---- end of 1.1 ---- */
};

/* Does the kernel's table have `member`? (Always true for members of your own minor.) */
#define LINLI_API_HAS(api, member)                                                                \
	(offsetof(struct linli_api, member) + sizeof(((struct linli_api *)0)->member) <=           \
	 (api)->size)

#ifdef __cplusplus
}
#endif

#endif
