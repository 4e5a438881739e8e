---@meta linli
-- Definitions of the linli Lua API for lua-language-server (SDK 1.0).
-- Nothing here runs: linlid provides these names to every script. The reference is
-- sdk/lua-api.md; each function mirrors the C member of struct linli_api of the same name.

---A record: a plain table. Keys 1..n make an array; any other keys a map.
---@alias linli.record table<string|integer, any>

---The name of a LINLI_E* return code, e.g. "LINLI_EPERM" (linli/error.h).
---@alias linli.code
---| "LINLI_EINVAL"
---| "LINLI_ENOMEM"
---| "LINLI_ENOENT"
---| "LINLI_EEXIST"
---| "LINLI_EPERM"
---| "LINLI_EBUSY"
---| "LINLI_ELIMIT"
---| "LINLI_ESTATE"
---| "LINLI_ESCHEMA"
---| "LINLI_ETYPE"
---| "LINLI_EIO"
---| "LINLI_EFULL"
---| "LINLI_E2BIG"
---| "LINLI_ETIMEDOUT"
---| string

---@alias linli.level "error"|"warn"|"info"|"debug"

---The rest of a bus event, beside its payload and topic (C struct linli_event).
---@class linli.event_meta
---@field seq integer bus-wide, increasing in delivery order
---@field time_ms integer publication time, ms since the epoch (UTC)
---@field publisher string plugin name, "rule NAME", "console", a driver, ...
---@field scope string jurisdiction path the event belongs to
---@field consequence boolean true for a record of consequence (never shed)
---@field depth integer cause depth: 0 unless a script published it while handling an event
---of depth d (then d + 1); past lua.max_event_depth a script's publish is dropped

---@class linli
---@field scope string the jurisdiction path the script acts in (as plugin_scope())
---@field major integer the host's SDK major version (C api->major)
---@field minor integer the host's SDK minor version (C api->minor)
linli = {}

---Write one line to the daemon log as `<time> <level> script: <name>: <values>`.
---The values are converted with tostring and joined with tabs. C member: log.
---@param level linli.level
---@param ... any
function linli.log(level, ...) end

---Mark table `t` (a new one when nil) as a list: it is packed as an array also when empty
---(a plain empty table is packed as a map, `{}` in JSON). `t` must have no metatable; the
---mark is a protected one. Empty arrays the host hands a script come marked. Since 1.1.
---@param t? table
---@return table
function linli.array(t) end

---The reason shown by `linli plugins info` when init fails (init returned false: MESSAGE).
---Outside a script plugin's init it only logs. C member: set_error.
---@param message string
function linli.set_error(message) end

---This plugin's (or rule's) name. C member: plugin_name.
---@return string
function linli.plugin_name() end

---The jurisdiction path of the node the script runs at; everything it does is confined to
---this subtree. C member: plugin_scope.
---@return string
function linli.plugin_scope() end

---Wall clock, ms since the Unix epoch (UTC); on a node run with --test-clock, the test
---clock (`linli clock`), which the timers follow too. C member: time_now_ms.
---@return integer
function linli.time_now_ms() end

---One instant in the node's local calendar (C struct linli_tm), since 1.1.
---@class linli.tm
---@field year integer 1..9999
---@field month integer 1..12
---@field day integer 1..31
---@field hour integer 0..23
---@field minute integer 0..59
---@field second integer 0..59
---@field ms integer 0..999
---@field weekday integer 1 = Monday .. 7 = Sunday (output only)
---@field yearday integer 1..366 (output only)
---@field utc_offset_s integer local minus UTC, seconds: 28800 for +08:00 (output only)
---@field dst boolean summer time in effect (output only)

---The node's time zone, e.g. "Asia/Shanghai" (linli.cfg `time_zone`). Since 1.1.
---C member: time_zone.
---@return string
function linli.time_zone() end

---ms (default: now) in the node's local calendar. Since 1.1. C member: time_local.
---@param ms? integer ms since the epoch
---@return linli.tm|nil t
---@return string? msg
---@return string? code "LINLI_EINVAL" outside the years 1..9999
function linli.time_local(ms) end

---The instant of a local calendar time: year, month and day are required; hour, minute,
---second and ms default to 0, other fields are ignored. A date that does not exist fails
---with LINLI_EINVAL; a time skipped by summer time moves forward by the gap, one passed
---twice gives the earlier instant. Since 1.1. C member: time_from_local.
---@param t linli.tm
---@return integer|nil ms
---@return string? msg
---@return string? code
function linli.time_from_local(t) end

---The first instant of the local day `days` (default 0) days after the one holding ms
---(default: now): local midnight. Since 1.1. C member: time_day_start.
---@param ms? integer
---@param days? integer 0: that day, 1: the next, -1: the day before
---@return integer|nil ms
---@return string? msg
---@return string? code
function linli.time_day_start(ms, days) end

---Make `linli <plugin> <sub> ARGS...` call fn(args, input). Script plugins only (raises in
---a rule). fn returns the reply (a table, string, number, boolean, or nothing for "ok"), or
---`nil, message [, code]` to fail. Removed automatically when the plugin stops or faults.
---C member: cmd_register.
---@param sub string [a-z][a-z0-9_-]*, at most 63 bytes
---@param usage? string the arguments, e.g. "NAME [--all]"
---@param summary? string one line for `linli help`
---@param fn fun(args: string[], input: string|nil, caller: linli.caller|nil): any, string?, linli.code?
---@return true|nil ok
---@return string? message
---@return linli.code? code "LINLI_EINVAL", "LINLI_EEXIST", "LINLI_ENOMEM"
function linli.cmd_register(sub, usage, summary, fn) end

---Remove command `sub` of this plugin. C member: cmd_unregister.
---@param sub string
---@return true|nil ok
---@return string? message
---@return linli.code? code "LINLI_ENOENT"
function linli.cmd_unregister(sub) end

---Who called a command (SDK 1.1): the third argument of a command handler. While the
---handler runs, every linli.* call acts as this caller (the intersection of the plugin's
---grants and the caller's rights, audited under the caller). C: struct linli_caller.
---@class linli.caller
---@field kind "person"|"machine"|"kernel"
---@field name string account name, or "apikey:NAME"
---@field role string "admin", "operator", "grid_worker", "auditor" or "viewer"
---@field scope string the caller's jurisdiction
---@field level string "city", "district", "street", "community" or "grid"
---@field grants string[] "sensitive", "sensitive:DATASET"
---@field duties string[] workflow duties, e.g. "grid.dispatcher"
---@field resources? string[] an API key's resources

---Declare this plugin's action `name` ("<plugin>.<word>") with the least role its caller
---needs, the deepest level it may sit at (nil: any) and a duty it must hold (nil: none;
---admins need none). Script plugins only. C member: action_declare (since 1.1).
---@param name string
---@param min_role "viewer"|"auditor"|"grid_worker"|"operator"|"admin"
---@param level? "city"|"district"|"street"|"community"|"grid"
---@param duty? string
---@param summary? string
---@return true|nil ok
---@return string? message
---@return linli.code? code "LINLI_EINVAL", "LINLI_EEXIST"
function linli.action_declare(name, min_role, level, duty, summary) end

---Have the kernel check `action` for every caller of command `sub` before its handler runs.
---C member: cmd_require (since 1.1).
---@param sub string
---@param action string
---@return true|nil ok
---@return string? message
---@return linli.code? code "LINLI_ENOENT"
function linli.cmd_require(sub, action) end

---May `caller` (the handler's third argument, while the handler runs) take this plugin's
---action on `scope` (nil: the caller's own)? Refusals are audited. C member: caller_may.
---@param caller linli.caller
---@param action string
---@param scope? string
---@return true|nil ok
---@return string? message
---@return linli.code? code "LINLI_EPERM", "LINLI_ENOENT", "LINLI_ESTATE"
function linli.caller_may(caller, action, scope) end

---The enabled accounts within `scope` holding workflow duty `duty`: { {user, scope, role,
---name}, ... }. C member: duty_holders (since 1.1).
---@param duty string
---@param scope? string
---@return table[]|nil holders
---@return string? message
---@return linli.code? code "LINLI_EINVAL", "LINLI_EPERM"
function linli.duty_holders(duty, scope) end

---File a decision of this app in the node's audit log: under the caller (via plugin:NAME)
---while a handler serves one, else under the plugin. C member: audit (since 1.1).
---@param action string "<plugin>.<word>"
---@param scope? string where it happened (nil: the caller's, or the plugin's)
---@param object? string what it acted on
---@param result "allowed"|"denied"|"failed"
---@param detail? string
---@return true|nil ok
---@return string? message
---@return linli.code? code "LINLI_EINVAL", "LINLI_EPERM"
function linli.audit(action, scope, object, result, detail) end

---A request to a plugin route (SDK 1.1). C: struct linli_http_req.
---@class linli.http_req
---@field method "GET"|"POST"|"PUT"|"DELETE"
---@field route string the route's name
---@field path string the decoded path after /api/v1/apps/<plugin>/
---@field params string[] the values of the pattern's {} segments
---@field query table<string, string> the query parameters (first value of each)
---@field body table|nil the JSON body
---@field caller linli.caller the API key

---Serve `method` on /api/v1/apps/<plugin>/<pattern> with fn(req) -> reply[, status] or
---nil, message[, code[, status]]. The key needs app:<plugin> or app:<plugin>/<name>.
---C member: route_register (since 1.1).
---@param name string [a-z][a-z0-9_-]*
---@param method "GET"|"POST"|"PUT"|"DELETE"
---@param pattern string segments of [A-Za-z0-9._-] or {}
---@param fn fun(req: linli.http_req): any, (string|integer)?, linli.code?, integer?
---@return true|nil ok
---@return string? message
---@return linli.code? code "LINLI_EINVAL", "LINLI_EEXIST"
function linli.route_register(name, method, pattern, fn) end

---Have the kernel check this plugin's action for the key before route `name` runs.
---C member: route_require (since 1.1).
---@param name string
---@param action string
---@return true|nil ok
---@return string? message
---@return linli.code? code "LINLI_ENOENT"
function linli.route_require(name, action) end

---Remove route `name`. C member: route_unregister (since 1.1).
---@param name string
---@return true|nil ok
---@return string? message
---@return linli.code? code "LINLI_ENOENT"
function linli.route_unregister(name) end

---Call fn() after delay_ms, then every interval_ms if it is > 0 (0: once).
---Removed automatically when the script stops or faults. C member: timer_add.
---At most lua.max_timers (256) per script; intervals of at least lua.min_timer_ms (10).
---@param delay_ms integer >= 0
---@param interval_ms integer >= 0; 0: once, else >= the node's minimum
---@param fn fun()
---@return integer|nil id
---@return string? message
---@return linli.code? code "LINLI_ELIMIT", "LINLI_ENOMEM"
function linli.timer_add(delay_ms, interval_ms, fn) end

---Stop timer `id` (also from inside its own callback). C member: timer_cancel.
---@param id integer
---@return true|nil ok
---@return string? message
---@return linli.code? code "LINLI_ENOENT": not this script's, or a one-shot that has run
function linli.timer_cancel(id) end

---Call fn(e, topic, meta) for every event whose topic matches `pattern` (`+` one level, a
---final `#` the rest) and whose scope lies in the script's jurisdiction. Needs a granted
---capability bus.subscribe:<pattern>. C member: subscribe.
---@param pattern string e.g. "dev/smoke/+/event/#"
---@param fn fun(e: linli.record, topic: string, meta: linli.event_meta)
---@return integer|nil id
---@return string? message
---@return linli.code? code "LINLI_EPERM", "LINLI_EINVAL", "LINLI_ENOMEM"
function linli.subscribe(pattern, fn) end

---Stop subscription `id` (also from its own handler). C member: unsubscribe.
---@param id integer
---@return true|nil ok
---@return string? message
---@return linli.code? code "LINLI_ENOENT"
function linli.unsubscribe(id) end

---Publish `payload` (a map; nil means {}) on `topic` for jurisdiction `scope` (nil: the
---script's node; otherwise a path inside it). Needs a granted capability
---bus.publish:<topic>. Subscribers run after the current call returns. C member: publish
---(whose argument order is topic, scope, payload).
---@param topic string no wildcards, e.g. "alarm/smoke/raised"
---@param payload? linli.record
---@param scope? string a jurisdiction path inside the script's
---@return integer|nil seq
---@return string? message
---@return linli.code? code "LINLI_EPERM", "LINLI_EINVAL", "LINLI_EBUSY", a store code
function linli.publish(topic, payload, scope) end

---One request a server's handler receives (C struct linli_request). Since 1.1.
---@class linli.request
---@field id integer the request's id, for linli.reply
---@field topic string e.g. "alarm/raise"
---@field scope string the jurisdiction the request is about
---@field requester string the requesting plugin's name ("rule NAME" for a rule)
---@field payload linli.record

---Answer requests on topics matching `pattern` whose scope lies in the script's
---jurisdiction: fn(rq) runs once per request, never inside the requester's call. It returns
---status (an integer >= 0) and a record to reply at once, nil, a message and a code to fail
---it, or nothing to reply later with linli.reply(rq.id, ...). A request goes to exactly one
---server (of those whose pattern matches, the first). Needs bus.subscribe:<pattern>.
---C member: serve. Since 1.1.
---@param pattern string e.g. "alarm/raise"
---@param fn fun(rq: linli.request): (integer|nil, linli.record|string|nil, linli.code|nil)
---@return integer|nil id
---@return string? message
---@return linli.code? code "LINLI_EPERM", "LINLI_EINVAL", "LINLI_EEXIST", "LINLI_ENOMEM"
function linli.serve(pattern, fn) end

---Stop server `id` (also from its handler); its requests not yet answered are answered
---LINLI_ESTATE. C member: unserve. Since 1.1.
---@param id integer
---@return true|nil ok
---@return string? message
---@return linli.code? code "LINLI_ENOENT"
function linli.unserve(id) end

---Answer request `id` that one of the script's servers received: status an integer >= 0
---(served) or a code name such as "LINLI_ENOENT" (failed), a record (nil for none) and a
---message for the requester. C member: reply. Since 1.1.
---@param id integer rq.id
---@param status integer|linli.code
---@param record? linli.record
---@param message? string
---@return true|nil ok
---@return string? message
---@return linli.code? code "LINLI_ENOENT" (answered, timed out, requester gone), "LINLI_EINVAL", "LINLI_ETYPE", "LINLI_E2BIG"
function linli.reply(id, status, record, message) end

---Send `payload` on `topic` for jurisdiction `scope` (nil: the script's node) to the one
---server of the topic; fn(record, status, nil, id) gets its reply ({} when it sent no
---record), or fn(nil, message, code, id) its failure, "LINLI_ETIMEDOUT" after timeout_ms, or
---"LINLI_ESTATE" at once when the server stopped before replying. Exactly once, never inside
---this call; never once the script stops. Needs bus.publish:<topic>. C member: request.
---Since 1.1.
---@param topic string no wildcards, e.g. "alarm/raise"
---@param scope? string a jurisdiction path inside the script's
---@param payload? linli.record
---@param timeout_ms? integer >= 0; 0 or nil: 10 s; at most 600000
---@param fn fun(record: linli.record|nil, status: integer|string, code: linli.code|nil, id: integer)
---@return integer|nil id
---@return string? message
---@return linli.code? code "LINLI_ENOENT" (nobody serves it), "LINLI_EPERM", "LINLI_EINVAL", "LINLI_EBUSY", "LINLI_ENOMEM"
function linli.request(topic, scope, payload, timeout_ms, fn) end

---Give up pending request `id`: its fn is never called. C member: request_cancel. Since 1.1.
---@param id integer
---@return true|nil ok
---@return string? message
---@return linli.code? code "LINLI_ENOENT"
function linli.request_cancel(id) end

---One row of linli.store_scan (C struct linli_row).
---@class linli.row
---@field id string the record's id
---@field scope string the scope it lives at
---@field record linli.record its fields (sensitive ones masked without the grant)

---What linli.store_scan reads (C struct linli_query).
---@class linli.query
---@field dataset string required
---@field scope? string subtree root inside the script's jurisdiction; nil: the node
---@field where? table<string, string|number|boolean> equality filters on indexed fields (at most 8), taken in field-name order
---@field range? linli.range[] range filters on indexed numbers and times (at most 8), since 1.1
---@field limit? integer rows per page, 1..10000; nil or 0: 100
---@field cursor? string nil: the first page; else the cursor of the previous page

---One range filter of linli.store_scan (C struct linli_range), since 1.1: `{ field, op, value }`
---or `{ field = , op = , value = }`; op is "<", "<=", ">" or ">="; a time's value may be "now".
---@class linli.range
---@field [1]? string the field (or `field`): an indexed integer, float or time field
---@field [2]? "<"|"<="|">"|">=" the operator (or `op`)
---@field [3]? string|number the bound (or `value`)

---Record `id` of `dataset` within `scope` (nil: the node), as a table, and the scope it lives
---at. Needs store.read:DATASET; sensitive fields come masked without `sensitive[:DATASET]`,
---and the read is audited. C member: store_get.
---@param dataset string
---@param id string
---@param scope? string a subtree root inside the script's jurisdiction
---@return linli.record|nil record
---@return string scope_or_message
---@return linli.code? code "LINLI_ENOENT", "LINLI_EINVAL", "LINLI_EPERM", "LINLI_EIO"
function linli.store_get(dataset, id, scope) end

---Create or replace a record of `dataset` at `scope` (nil: the node). `id` nil makes a new
---time-ordered id. The record is checked against the dataset's schema and refused whole
---(LINLI_ESCHEMA, naming the field). Needs store.write:DATASET. C member: store_put.
---@param dataset string
---@param record linli.record a map of the dataset's fields
---@param scope? string
---@param id? string
---@return string|nil id
---@return boolean|string created_or_message true when the record is new
---@return linli.code? code "LINLI_ESCHEMA", "LINLI_EINVAL", "LINLI_ETYPE", "LINLI_EEXIST", "LINLI_EPERM", "LINLI_ESTATE", ...
function linli.store_put(dataset, record, scope, id) end

---Delete record `id` of `dataset`, which must lie within `scope` (nil: the node). Needs
---store.write:DATASET. C member: store_delete.
---@param dataset string
---@param id string
---@param scope? string
---@return true|nil ok
---@return string? message
---@return linli.code? code "LINLI_ENOENT", "LINLI_EINVAL", "LINLI_EPERM", "LINLI_ESTATE", ...
function linli.store_delete(dataset, id, scope) end

---One page of the records of q.dataset within q.scope that match every filter, in key
---order, and the cursor of the next page (nil after the last one). Needs
---store.read:DATASET; masking and audit as for store_get. Each row costs budget. C member:
---store_scan.
---@param q linli.query
---@return linli.row[]|nil rows
---@return string? cursor_or_message
---@return linli.code? code "LINLI_EINVAL", "LINLI_ENOENT", "LINLI_EPERM", "LINLI_EIO"
function linli.store_scan(q) end

---Read-modify-write record `id` in one transaction: fn(old) gets the record (nil if there
---is none) and returns the record to write (a table), "keep", "delete", or
---`nil, message [, code]` to refuse. Writes inside fn are refused (LINLI_ESTATE); an error
---raised in fn writes nothing and is raised again. Needs store.read and store.write of the
---dataset. C member: store_update (scope comes last here).
---@param dataset string
---@param id string
---@param fn fun(old: linli.record|nil): (linli.record|"keep"|"delete"|nil), string?, linli.code?
---@param scope? string
---@return true|nil ok
---@return string? message
---@return linli.code? code fn's code, "LINLI_ESCHEMA", "LINLI_EEXIST", "LINLI_EINVAL", "LINLI_EPERM", ...
function linli.store_update(dataset, id, fn, scope) end

---Call fn once, when the kernel's current batch (every write since the last commit, this
---script's among them) has been committed: fn(true); or lost: fn(nil, message, code), every
---write of the batch gone. fn runs later like any handler (budget, time limit), never inside
---this call; it is never called once the script stops, faults or is reloaded. Needs no
---capability. C member: store_on_commit.
---@param fn fun(ok: true|nil, message: string|nil, code: linli.code|nil)
---@return true|nil ok
---@return string? message
---@return linli.code? code "LINLI_ESTATE": no write is pending (nothing to wait for); "LINLI_ENOMEM"
function linli.store_on_commit(fn) end

---A resource, or an argument of a command, of a device class (C device_classes' record).
---One change a store watcher is told of (C struct linli_change), since 1.1.
---@class linli.change
---@field dataset string the watched dataset
---@field scope string the record's scope (inside the script's jurisdiction)
---@field id string the record's id
---@field kind "created"|"updated"|"deleted"

---After each batch commits, call fn(change) for every record of `dataset` created, updated
---or deleted in it (by anyone; never the writes fn itself made) within the script's
---jurisdiction. Needs store.read:DATASET. C member: store_watch. Since 1.1.
---@param dataset string
---@param fn fun(change: linli.change)
---@return integer|nil id
---@return string? message
---@return linli.code? code "LINLI_ENOENT", "LINLI_EPERM", "LINLI_ENOMEM"
function linli.store_watch(dataset, fn) end

---Stop watch `id` (also from inside its fn). C member: store_unwatch. Since 1.1.
---@param id integer
---@return true|nil ok
---@return string? message
---@return linli.code? code "LINLI_ENOENT"
function linli.store_unwatch(id) end

---One field of a dataset's schema, since 1.1.
---@class linli.schema_field
---@field name string
---@field type "string"|"integer"|"float"|"boolean"|"time"|"enum"|"ref"|"geo"
---@field required boolean
---@field indexed boolean
---@field sensitive string|false the mask kind ("id_number", "phone", "name", "address", "health") or false
---@field values? string[] an enum's values
---@field ref? string the dataset a ref points to
---@field min? number
---@field max? number
---@field max_len? integer
---@field unit? string

---A dataset's schema as the catalog has it (C member dataset_schema's record), since 1.1.
---@class linli.schema
---@field name string
---@field title_en string
---@field title_zh string
---@field level "city"|"district"|"street"|"community"|"grid"
---@field sharing string
---@field owner? string
---@field family? string
---@field source? string
---@field restricted? boolean
---@field fields? linli.schema_field[] (absent in linli.datasets' entries)

---What the catalog says of `dataset`. Needs the capability catalog.read. C member:
---dataset_schema. Since 1.1.
---@param dataset string
---@return linli.schema|nil schema
---@return string? message
---@return linli.code? code "LINLI_EPERM", "LINLI_ENOENT"
function linli.dataset_schema(dataset) end

---The catalog's datasets (not the kernel's own): {name, title_en, title_zh, level, sharing}
---each. Needs catalog.read. C member: datasets. Since 1.1.
---@return linli.schema[]|nil list
---@return string? message
---@return linli.code? code "LINLI_EPERM"
function linli.datasets() end

---@class linli.class_field
---@field name string
---@field type "integer"|"float"|"boolean"|"string"|"enum"
---@field access? "r"|"w"|"rw" resources only
---@field unit? string
---@field min? number
---@field max? number
---@field values? string[] an enum's values
---@field max_len? integer a string's longest length

---@class linli.class_command
---@field name string
---@field args linli.class_field[]

---@class linli.class_event
---@field name string
---@field severity "critical"|"major"|"minor"|"info"

---A device class of the catalog (`linli catalog show device NAME`).
---@class linli.device_class
---@field name string e.g. "door"
---@field title_en string
---@field title_zh string
---@field heartbeat integer seconds of silence before a device is unavailable
---@field resources linli.class_field[]
---@field commands linli.class_command[]
---@field events linli.class_event[]

---This script plugin's settings: the group `plugins = { NAME = { ... }; }` of linli.cfg as a
---table (groups as tables, lists and arrays as arrays); {} when there is none. Read again
---after a SIGHUP. A rule has none: nil, message, "LINLI_ESTATE". C member: plugin_config.
---@return table<string, any>|nil settings
---@return string? message
---@return linli.code? code "LINLI_ESTATE" (a rule), "LINLI_ENOMEM"
function linli.plugin_config() end

---The catalog's device classes, in catalog order (as `linli catalog list devices`). A fresh
---table each call. C member: device_classes.
---@return linli.device_class[]
function linli.device_classes() end

---A device's registry entry, as `linli devices show ID` prints it (C dev_info's record).
---A field without a value is absent.
---@class linli.device_info
---@field id string
---@field class string its catalog class, e.g. "door"
---@field scope string the jurisdiction path it belongs to
---@field driver string
---@field address string
---@field name? string display name
---@field state "online"|"unavailable"
---@field last_seen? string RFC 3339 UTC, e.g. "2026-01-01T08:00:00.000Z"
---@field heartbeat_s integer
---@field driver_loaded boolean
---@field open boolean
---@field open_error? string
---@field credential "set"|"none"
---@field poll? string
---@field readings integer
---@field events integer
---@field refused table<string, integer> refused readings by kind: unknown, type, range, event
---@field last_refusal? string
---@field commands_pending integer
---@field commands string[] the class's command names

---One latest value of linli.dev_get(device) without a resource.
---@class linli.latest
---@field value any integer, float, boolean or string, as the class types it
---@field time integer when the device measured it, ms since the epoch

---The registry entry of `device`. Needs device.read:<class>; a refusal is logged and
---audited. C member: dev_info.
---@param device string a device id, e.g. "sim-door-001"
---@return linli.device_info|nil entry
---@return string? message
---@return linli.code? code "LINLI_ENOENT", "LINLI_EPERM"
function linli.dev_info(device) end

---The latest good value of `resource` of `device` and when it was measured; without
---`resource`, a table {resource = {value =, time =}} of every resource that has a value.
---Needs device.read:<class>. LINLI_ENOENT names what is missing: the device, the resource,
---or a value (none reported yet). C member: dev_get.
---@param device string
---@param resource? string a readable resource of the device's class
---@return any|table<string, linli.latest>|nil value
---@return integer|string time_ms_or_message
---@return linli.code? code "LINLI_ENOENT", "LINLI_EPERM"
function linli.dev_get(device, resource) end

---Send `command` with `args` (every argument of the class's command, by name; nil or {}
---for none) to `device`; fn(result, message, code, req) is called once, later: result is
---the device's answer (a table) on success, nil with a message and a code
---("LINLI_ETIMEDOUT", "LINLI_ESTATE", the driver's) on failure. Never called once the
---script stops, faults or is reloaded (the command is cancelled). Needs
---device.command:<class>; audited. C member: dev_command.
---@param device string
---@param command string a command of the device's class, e.g. "open"
---@param args? table<string, any> its arguments, checked against the class
---@param timeout_ms? integer >= 0; 0 or nil: 10 s; at most 600000
---@param fn fun(result: linli.record|nil, message: string|nil, code: linli.code|nil, req: integer)
---@return integer|nil req the request id
---@return string? message
---@return linli.code? code "LINLI_ENOENT", "LINLI_EPERM", "LINLI_ESCHEMA", "LINLI_EINVAL", "LINLI_ETYPE", "LINLI_ESTATE", "LINLI_ENOMEM"
function linli.dev_command(device, command, args, timeout_ms, fn) end

---@class linli.limits
---@field memory_kb? integer may only lower the node's limit
---@field instructions? integer per call
---@field time_ms? integer per call
---@field max_errors? integer failed calls in a row before faulted

---A script plugin's manifest (scripts/apps/NAME.lua).
---@class linli.plugin_decl
---@field name string [a-z][a-z0-9_]*, at most 31 bytes
---@field version string MAJOR.MINOR.PATCH
---@field sdk string "1.0"
---@field family "governance"|"gov_services"|"public_services"|"safety"|"custom"
---@field description string
---@field capabilities string[] e.g. { "bus.publish:alarm/#", "store.read:residents", "device.command:door" }
---@field requires? string[] plugins (.so or Lua) that must run first
---@field init? fun(): (boolean|nil), string? return false[, message] (or raise) to fail
---@field fini? fun()
---@field limits? linli.limits

---Declare a script plugin (once, at the top level of the file).
---@param decl linli.plugin_decl
function plugin(decl) end

---A rule's declaration (scripts/rules/NAME.lua).
---@class linli.rule_decl
---@field name string [a-z][a-z0-9_]*
---@field on string the topic pattern it hears (no capability needed for it)
---@field description? string
---@field capabilities? string[] what when/run may do through linli.*, e.g. { "bus.publish:alarm/#", "store.read:grids", "sensitive:residents" }
---@field when? fun(e: linli.record, topic: string): boolean
---@field run fun(e: linli.record, topic: string)
---@field limits? linli.limits

---Declare a rule (once, at the top level of the file).
---@param decl linli.rule_decl
function rule(decl) end
