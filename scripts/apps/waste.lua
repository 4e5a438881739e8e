-- scripts/apps/waste.lua — 垃圾分类督导, waste-sorting supervision: a street's own Lua application.
--
-- Installed at a street node (e.g. hefei/baohe/binhu), it acts in the street's subtree only.
--
-- Data (catalog/datasets/waste_*.cfg, level community):
--   waste_points    投放点: a community's collection points, the trash_bin devices there
--                   (`bins`, "tb-1,tb-2") and the point's rules (`threshold`,
--                   `checkins_per_day`; absent: the app's settings below);
--   waste_checkins  督导打卡: a grid worker's check-in at a point (who, where, when, what
--                   they saw: sorted / mixed / overflowing, a photo reference);
--   waste_daily     日报: one record per community per local day (the id is the day).
--
-- The app follows the bins' fill readings (dev/trash_bin/+/fill_level), keeps the latest
-- per bin, and raises an alarm (alarmreq/raise, type waste_overflow, source device:BIN) at
-- the point's community when a bin stays at or over its point's threshold for over_minutes
-- — once per overflow: the alarm is cleared (alarmreq/clear) when the bin's fill falls back
-- under the threshold, and only then can the next overflow raise again. Each morning at
-- report_hour (local time) it builds yesterday's report of every community with points.
--
-- Written against the public linli.* API only (sdk/lua-api.md). Every command acts as its
-- caller (SDK 1.1): a community's account sees and writes its own community's points,
-- check-ins and reports only. The points' cache (which point holds which bin) is loaded and
-- kept current on the plugin's own account (init and a store watch), never in a command.
-- Nothing sensitive is read: a point's keeper and phone stay masked and are never shown,
-- logged or published (ids only).
--
-- Settings (plugins.waste in linli.cfg): threshold (%, default 80), checkins_per_day
-- (default 2), over_minutes (default 30), report_hour (default 1).

local DAY_MS, MIN_MS = 24 * 3600 * 1000, 60 * 1000
local ALARM_TYPE = "waste_overflow"

local threshold_default, per_day_default, over_minutes, report_hour = 80, 2, 30, 1

local STATUS = { sorted = "分类正确", mixed = "混投", overflowing = "满溢" }
local STATUS_OF = { sorted = "sorted", mixed = "mixed", overflowing = "overflowing",
                    ["分类正确"] = "sorted", ["混投"] = "mixed", ["满溢"] = "overflowing" }
local STATUS_NAMES = "sorted (分类正确), mixed (混投), overflowing (满溢)"

-- State, all on the plugin's own account.
local points = {}     -- scope .. "#" .. id -> { id, scope, name, bins = {..}, threshold, per_day, status }
local bin_point = {}  -- bin id -> the point entry that lists it
local latest = {}     -- bin id -> { fill, at, over_since, raised = { scope } }
local days = {}       -- "YYYY-MM-DD" -> bin id -> { sum, n, max, overflows }
local stats = { readings = 0, raised = 0, cleared = 0, raise_failed = 0, reports_built = 0 }

-- ---- small helpers ----

local function fail(msg, code)
  return nil, msg, code or "LINLI_EINVAL"
end

-- Every row of a scan, page after page: { {id, scope, record}, ... }.
local function scan_all(q)
  local all, cursor = {}, nil
  repeat
    q.cursor = cursor
    local rows, c, code = linli.store_scan(q)
    if not rows then return nil, c, code end
    for _, r in ipairs(rows) do all[#all + 1] = r end
    cursor = c
  until not cursor
  return all
end

local function under(scope, base)
  return scope == base or scope:sub(1, #base + 1) == base .. "/"
end

local function day_of(ms)
  local t = linli.time_local(ms)
  return string.format("%04d-%02d-%02d", t.year, t.month, t.day)
end

-- A local day YYYY-MM-DD: its first instant, or nil and what is wrong, naming `what`.
local function parse_day(text, what)
  local y, m, d = tostring(text):match("^(%d%d%d%d)-(%d%d)-(%d%d)$")
  if not y then
    return nil, what .. ": '" .. tostring(text) .. "' is not a date (YYYY-MM-DD)"
  end
  local ms, err = linli.time_from_local{ year = tonumber(y), month = tonumber(m),
                                         day = tonumber(d) }
  if not ms then return nil, what .. ": '" .. text .. "' is not a date: " .. tostring(err) end
  return ms
end

-- The community named by `text` ("yuelan", or a path one level below the street), or nil
-- and a refusal naming it.
local function community_of(text, what)
  local node = linli.plugin_scope()
  text = tostring(text)
  if text:match("^[a-z0-9_-]+$") then return node .. "/" .. text end
  if text:find("/", 1, true) then
    if not under(text, node) then
      return fail(what .. ": '" .. text .. "' is outside this street (" .. node
                  .. "): the app acts only in its subtree", "LINLI_EPERM")
    end
    if text:sub(#node + 2):match("^[a-z0-9_-]+$") then return text end
  end
  return fail(what .. ": '" .. text .. "' is not a community of " .. node
              .. " (a name such as yuelan, or " .. node .. "/yuelan)")
end

-- A community the caller named, refused when it lies outside the caller's jurisdiction
-- (a sibling community: the kernel would refuse the reads too, in its own words).
local function community_for(text, what, caller)
  local c, e, code = community_of(text, what)
  if not c then return nil, e, code end
  local mine = caller and caller.scope
  if mine and not under(c, mine) and not under(mine, c) then
    return fail(what .. ": " .. c .. " is outside your jurisdiction (" .. mine .. ")",
                "LINLI_EPERM")
  end
  return c
end

-- Where the caller's commands read by default: its own scope when it lies in the street.
local function base_of(caller)
  local node = linli.plugin_scope()
  if caller and caller.scope and under(caller.scope, node) then return caller.scope end
  return node
end

-- The community the caller works in (its scope or the one above a grid), or nil for a
-- caller of the street itself.
local function community_of_caller(caller)
  local node = linli.plugin_scope()
  if not caller or not caller.scope or caller.scope == node or not under(caller.scope, node) then
    return nil
  end
  return node .. "/" .. caller.scope:sub(#node + 2):match("^[^/]+")
end

-- Words and --options: `flags` names the options that take a value.
local function parse(args, flags, usage)
  local pos, opts = {}, {}
  local i = 1
  while i <= #args do
    local a = args[i]
    local name = a:match("^%-%-(.+)$")
    if name then
      if not flags[name] then return nil, "unknown option " .. a .. " (usage: " .. usage .. ")" end
      if args[i + 1] == nil then return nil, "option --" .. name .. " needs a value" end
      opts[name] = args[i + 1]
      i = i + 1
    else
      pos[#pos + 1] = a
    end
    i = i + 1
  end
  return pos, opts
end

-- ---- the points' cache (the plugin's own account) ----

local function split_bins(text)
  local out = {}
  for b in tostring(text or ""):gmatch("[^,%s]+") do out[#out + 1] = b end
  return out
end

local function point_entry(id, scope, rec)
  return { id = id, scope = scope, name = rec.name, bins = split_bins(rec.bins),
           threshold = rec.threshold or threshold_default,
           per_day = rec.checkins_per_day or per_day_default,
           status = rec.status or "active" }
end

local function index_bins()
  bin_point = {}
  for _, p in pairs(points) do
    if p.status == "active" then
      for _, b in ipairs(p.bins) do bin_point[b] = p end
    end
  end
end

local function load_points()
  local rows, err = scan_all{ dataset = "waste_points" }
  if not rows then
    linli.log("warn", "cannot read waste_points: " .. tostring(err))
    return
  end
  points = {}
  for _, r in ipairs(rows) do points[r.scope .. "#" .. r.id] = point_entry(r.id, r.scope, r.record) end
  index_bins()
end

local function on_point_change(c)
  local key = c.scope .. "#" .. c.id
  if c.kind == "deleted" then
    points[key] = nil
  else
    local rec = linli.store_get("waste_points", c.id, c.scope)
    points[key] = rec and point_entry(c.id, c.scope, rec) or nil
  end
  index_bins()
end

-- ---- readings and overflows ----

local function day_stat(day, bin)
  local d = days[day]
  if not d then
    d = {}
    days[day] = d
  end
  local s = d[bin]
  if not s then
    s = { sum = 0, n = 0, max = 0, overflows = 0 }
    d[bin] = s
  end
  return s
end

local function raise(bin, s, p, now)
  s.raised = { scope = p.scope }
  day_stat(day_of(now), bin).overflows = day_stat(day_of(now), bin).overflows + 1
  stats.raised = stats.raised + 1
  local mins = (now - s.over_since) // MIN_MS
  local details = string.format("bin %s at point %s (%s) at or over %d%% for %d min: %d%%",
                                bin, p.id, p.name, p.threshold, mins, s.fill)
  local ok, err, code = linli.request("alarmreq/raise", p.scope,
    { type = ALARM_TYPE, source = "device:" .. bin, severity = "minor", details = details },
    5000, function(r, status, c)
      if r then
        linli.log("info", ("overflow of bin %s at %s: alarm %s"):format(bin, p.scope,
                                                                       tostring(r.id)))
      else
        stats.raise_failed = stats.raise_failed + 1
        linli.log("warn", ("overflow of bin %s at %s: no alarm: %s (%s)"):format(
                    bin, p.scope, tostring(status), tostring(c)))
      end
    end)
  if not ok then
    stats.raise_failed = stats.raise_failed + 1
    linli.log("warn", ("overflow of bin %s at %s: no alarm: %s (%s)"):format(
                bin, p.scope, tostring(err), tostring(code)))
  end
end

local function clear(bin, s)
  local scope = s.raised.scope
  stats.cleared = stats.cleared + 1
  linli.request("alarmreq/clear", scope,
    { type = ALARM_TYPE, source = "device:" .. bin,
      why = "fill back under the threshold: " .. tostring(s.fill) .. "%" }, 5000,
    function(r, status, c)
      if not r then
        linli.log("warn", ("overflow alarm of bin %s at %s not cleared: %s (%s)"):format(
                    bin, scope, tostring(status), tostring(c)))
      end
    end)
end

-- Over the point's threshold for over_minutes: raise once; back under: clear.
local function check_bin(bin, s, now)
  local p = bin_point[bin]
  if not p or not s.fill then return end
  if s.fill >= p.threshold then
    s.over_since = s.over_since or now
    if not s.raised and now - s.over_since >= over_minutes * MIN_MS then raise(bin, s, p, now) end
  else
    if s.raised then clear(bin, s) end
    s.over_since, s.raised = nil, nil
  end
end

local function on_fill(e, topic)
  local bin = topic:match("^dev/trash_bin/([^/]+)/fill_level$")
  local v = e.value
  if not bin or math.type(v) ~= "integer" then return end
  local now = linli.time_now_ms()
  stats.readings = stats.readings + 1
  local s = latest[bin]
  if not s then
    s = {}
    latest[bin] = s
  end
  s.fill, s.at = v, now
  local d = day_stat(day_of(now), bin)
  d.sum, d.n = d.sum + v, d.n + 1
  if v > d.max then d.max = v end
  check_bin(bin, s, now)
end

-- Every minute: a bin that stays over without a new reading; forget days older than 10.
local function tick()
  local now = linli.time_now_ms()
  for bin, s in pairs(latest) do check_bin(bin, s, now) end
  local oldest = day_of(now - 10 * DAY_MS)
  for day in pairs(days) do
    if day < oldest then days[day] = nil end
  end
end

-- ---- the daily report ----

-- Build and store the report of `community` for `day` (whoever runs: the caller in a
-- command, the plugin in the morning timer). The record, or nil, message, code.
local function build_report(community, day, by)
  local rows, err, code = scan_all{ dataset = "waste_points", scope = community }
  if not rows then return nil, err, code end
  local bins, point_of_bin, expected, npoints, per_point = {}, {}, 0, 0, {}
  for _, r in ipairs(rows) do
    local p = point_entry(r.id, r.scope, r.record)
    if p.status == "active" then
      npoints = npoints + 1
      expected = expected + p.per_day
      per_point[p.id] = { made = 0, expected = p.per_day }
      for _, b in ipairs(p.bins) do
        if not bins[b] then
          bins[b] = p.threshold
          point_of_bin[b] = p.id
        end
      end
    end
  end
  local cks, cerr, ccode = scan_all{ dataset = "waste_checkins", scope = community,
                                     where = { day = day } }
  if not cks then return nil, cerr, ccode end
  local mixed, overflowing, problem = 0, 0, {}
  for _, r in ipairs(cks) do
    local c = r.record
    if per_point[c.point] then per_point[c.point].made = per_point[c.point].made + 1 end
    if c.status == "mixed" then mixed = mixed + 1 end
    if c.status == "overflowing" then overflowing = overflowing + 1 end
    if c.status ~= "sorted" then problem[c.point] = true end
  end
  local short = 0
  for _, pp in pairs(per_point) do
    if pp.made < pp.expected then short = short + 1 end
  end
  local nbins, reporting, readings, sum_means, fmax, over, overflows = 0, 0, 0, 0.0, nil, 0, 0
  local st = days[day] or {}
  for b, thr in pairs(bins) do
    nbins = nbins + 1
    local s = st[b]
    if s and s.n > 0 then
      reporting, readings = reporting + 1, readings + s.n
      sum_means = sum_means + s.sum / s.n
      if not fmax or s.max > fmax then fmax = s.max end
      if s.max >= thr then over = over + 1 end
    end
    if s then overflows = overflows + s.overflows end
  end
  local plist = {}
  for id in pairs(problem) do plist[#plist + 1] = id end
  table.sort(plist)
  local rec = {
    day = day, points = npoints, bins = nbins, bins_reporting = reporting,
    readings = readings, fill_max = fmax, bins_over = over, overflows = overflows,
    checkins = #cks, expected = expected, points_short = short,
    problems = mixed + overflowing, mixed = mixed, overflowing = overflowing,
    problem_points = #plist > 0 and table.concat(plist, ",") or nil,
    built_at = linli.time_now_ms(), built_by = by,
  }
  if reporting > 0 then rec.fill_avg = math.floor(sum_means / reporting * 10 + 0.5) / 10 end
  local id, perr, pcode = linli.store_put("waste_daily", rec, community, day)
  if not id then return nil, perr, pcode end
  stats.reports_built = stats.reports_built + 1
  rec.community = community
  return rec
end

-- Each morning at report_hour: yesterday's report of every community with points.
local function next_morning()
  local now = linli.time_now_ms()
  local t = linli.time_local(now)
  t.hour, t.minute, t.second, t.ms = report_hour, 0, 0, 0
  local at = assert(linli.time_from_local(t))
  if at <= now then
    local d = linli.time_local(linli.time_day_start(now, 1))
    d.hour = report_hour
    at = assert(linli.time_from_local(d))
  end
  return at - now
end

local function morning()
  local day = day_of(linli.time_day_start(linli.time_now_ms(), -1))
  local seen, list = {}, {}
  for _, p in pairs(points) do
    if not seen[p.scope] then
      seen[p.scope] = true
      list[#list + 1] = p.scope
    end
  end
  table.sort(list)
  for _, community in ipairs(list) do
    local r, err = build_report(community, day, "plugin:waste")
    if r then
      linli.log("info", "built the daily report of " .. community .. " for " .. day)
    else
      linli.log("warn", "daily report of " .. community .. " for " .. day .. ": "
        .. tostring(err))
    end
  end
  assert(linli.timer_add(next_morning(), 0, morning))
end

-- ---- console ----

local function bin_state(b, p)
  local s = latest[b]
  local out = { id = b }
  if s then
    out.fill, out.at = s.fill, s.at
    out.over = s.fill >= p.threshold
    out.alarm = s.raised ~= nil
    if s.over_since then out.over_min = (linli.time_now_ms() - s.over_since) // MIN_MS end
  end
  return out
end

-- What is wrong with bin `b` of point `p` (read as the caller), or nil.
local function bin_problem(b, p)
  local info, err, code = linli.dev_info(b)
  if not info then
    if code == "LINLI_EPERM" and tostring(err):find("device.read:", 1, true) then
      return "not a trash_bin device"
    end
    return tostring(err)
  end
  if info.class ~= "trash_bin" then return "not a trash_bin device (" .. info.class .. ")" end
  if not under(info.scope, p.scope) then
    return "the device is at " .. info.scope .. ", not in " .. p.scope
  end
  return nil, info.state
end

local function points_cmd(args, _, caller)
  local usage = "waste points [--community C]"
  local pos, opts = parse(args, { community = true }, usage)
  if not pos then return fail(opts) end
  if #pos > 0 then return fail("usage: " .. usage) end
  local scope = base_of(caller)
  if opts.community then
    local c, e, code = community_for(opts.community, "--community", caller)
    if not c then return nil, e, code end
    scope = c
  end
  local rows, err, code = scan_all{ dataset = "waste_points", scope = scope }
  if not rows then return nil, err, code end
  local today = day_of(linli.time_now_ms())
  local out = linli.array()
  for _, r in ipairs(rows) do
    local p = point_entry(r.id, r.scope, r.record)
    local bins = linli.array()
    for i, b in ipairs(p.bins) do
      bins[i] = bin_state(b, p)
      bins[i].problem, bins[i].state = bin_problem(b, p)
    end
    out[#out + 1] = { id = r.id, scope = r.scope, name = p.name, status = p.status,
                      threshold = p.threshold, checkins_per_day = p.per_day, bins = bins }
  end
  -- Today's check-ins per point, read as the caller.
  local made = {}
  local cks = scan_all{ dataset = "waste_checkins", scope = scope, where = { day = today } }
  for _, c in ipairs(cks or {}) do
    local k = c.scope .. "#" .. c.record.point
    made[k] = (made[k] or 0) + 1
  end
  for _, p in ipairs(out) do p.checkins_today = made[p.scope .. "#" .. p.id] or 0 end
  table.sort(out, function(a, b)
    if a.scope ~= b.scope then return a.scope < b.scope end
    return a.id < b.id
  end)
  return out
end

-- The point `id` as the caller may see it: record, scope; or a refusal that says whether
-- it is unknown or outside the caller's jurisdiction (known from the plugin's cache).
local function point_for(id, community, explicit, caller)
  if not id:match("^[%w][%w_.:-]*$") then
    return fail("point: '" .. id .. "' is not a point id")
  end
  local rec, scope, code = linli.store_get("waste_points", id, community)
  if rec then return rec, scope end
  if code ~= "LINLI_ENOENT" then return nil, scope, code end
  for _, p in pairs(points) do
    if p.id == id and (not explicit or p.scope == explicit)
      and not under(p.scope, tostring(caller.scope)) then
      return fail("point '" .. id .. "' is outside your jurisdiction ("
                  .. tostring(caller.scope) .. "): no check-in there", "LINLI_EPERM")
    end
  end
  return fail("unknown point '" .. id .. "'" .. (community and (" in " .. community) or "")
              .. " (waste_points)", "LINLI_ENOENT")
end

local function checkin_cmd(args, _, caller)
  local usage = "waste checkin POINT sorted|mixed|overflowing [--photo REF] [--note TEXT] "
    .. "[--community C]"
  local pos, opts = parse(args, { photo = true, note = true, community = true }, usage)
  if not pos then return fail(opts) end
  if #pos ~= 2 then return fail("usage: " .. usage) end
  local status = STATUS_OF[pos[2]]
  if not status then
    return fail("status: '" .. pos[2] .. "' is not one of " .. STATUS_NAMES)
  end
  local community, explicit = community_of_caller(caller), nil
  if opts.community then
    local c, e, code = community_for(opts.community, "--community", caller)
    if not c then return nil, e, code end
    community, explicit = c, c
  end
  local point, scope, pcode = point_for(pos[1], community, explicit, caller)
  if not point then
    if pcode == "LINLI_EINVAL" and tostring(scope):find("several", 1, true) then
      return fail("point '" .. pos[1] .. "': " .. scope .. " (give --community)")
    end
    return nil, scope, pcode
  end
  if (point.status or "active") ~= "active" then
    return fail("point '" .. pos[1] .. "' at " .. scope .. " is " .. point.status
                .. ": no check-in there")
  end
  -- The caller must be a grid worker of the point's community, still working (read at
  -- the community, where grid_workers are kept, also for an account of one of its grids).
  local ws, werr, wcode = scan_all{ dataset = "grid_workers", scope = scope,
                                    where = { account = caller.name } }
  if not ws then return nil, werr, wcode end
  local worker, elsewhere
  for _, w in ipairs(ws) do
    if (w.record.status or "active") ~= "left" then
      if under(w.scope, scope) then
        worker = w
      else
        elsewhere = w.scope
      end
    end
  end
  if not worker then
    if elsewhere then
      return fail("'" .. caller.name .. "' is a grid worker of " .. elsewhere .. ", not of "
                  .. scope .. " where point '" .. pos[1] .. "' is", "LINLI_EPERM")
    end
    return fail("'" .. caller.name .. "' is not a grid worker of " .. scope .. " (no "
                .. "grid_workers record there with account " .. caller.name .. ")", "LINLI_EPERM")
  end
  local now = linli.time_now_ms()
  local day = day_of(now)
  local rec = { point = pos[1], worker = worker.id, account = caller.name, at = now,
                day = day, status = status, photo = opts.photo, note = opts.note }
  local id, err, code = linli.store_put("waste_checkins", rec, scope)
  if not id then return nil, err, code end
  local cks = scan_all{ dataset = "waste_checkins", scope = scope, where = { day = day } }
  local n = 0
  for _, c in ipairs(cks or {}) do
    if c.record.point == pos[1] then n = n + 1 end
  end
  return { id = id, point = pos[1], scope = scope, worker = worker.id, day = day,
           status = status, status_zh = STATUS[status], checkins_today = n,
           expected = point.checkins_per_day or per_day_default }
end

local function report_cmd(args, _, caller)
  local usage = "waste report build|show COMMUNITY [YYYY-MM-DD]"
  local verb = args[1]
  if (verb ~= "build" and verb ~= "show") or #args < 2 or #args > 3 then
    return fail("usage: " .. usage)
  end
  local community, e, code = community_for(args[2], "community", caller)
  if not community then return nil, e, code end
  local day
  if args[3] then
    local ms, derr = parse_day(args[3], "day")
    if not ms then return fail(derr) end
    day = args[3]
  else
    day = day_of(linli.time_day_start(linli.time_now_ms(), -1))
  end
  if verb == "build" then return build_report(community, day, caller.name) end
  local rec, scope, gcode = linli.store_get("waste_daily", day, community)
  if not rec then
    if gcode == "LINLI_ENOENT" then
      return fail("no report of " .. community .. " for " .. day .. " (waste report build "
                  .. args[2] .. " " .. day .. ")", "LINLI_ENOENT")
    end
    return nil, scope, gcode
  end
  rec.community = scope
  return rec
end

local function stats_cmd(args)
  if #args > 0 then return fail("usage: waste stats") end
  local np, nb, nl = 0, 0, 0
  for _ in pairs(points) do np = np + 1 end
  for _ in pairs(bin_point) do nb = nb + 1 end
  for _ in pairs(latest) do nl = nl + 1 end
  return { points = np, bins = nb, bins_heard = nl, readings = stats.readings,
           raised = stats.raised, cleared = stats.cleared, raise_failed = stats.raise_failed,
           reports_built = stats.reports_built, threshold = threshold_default,
           checkins_per_day = per_day_default, over_minutes = over_minutes,
           report_hour = report_hour }
end

local SETTINGS = {
  threshold = { 50, 100, "a fill level of 50 to 100 %" },
  checkins_per_day = { 0, 24, "a number of 0 to 24" },
  over_minutes = { 0, 1440, "a number of minutes from 0 to 1440" },
  report_hour = { 0, 23, "an hour of 0 to 23" },
}

plugin {
  name = "waste",
  version = "0.1.0",
  sdk = "1.1",
  family = "governance",
  description = "垃圾分类督导: collection points, bins' fill levels and overflow alarms, "
    .. "grid workers' check-ins, a daily report per community",
  capabilities = {
    "store.read:waste_points", "store.read:waste_checkins", "store.write:waste_checkins",
    "store.read:waste_daily", "store.write:waste_daily", "store.read:grid_workers",
    "device.read:trash_bin", "bus.subscribe:dev/trash_bin/+/fill_level",
    "bus.publish:alarmreq/raise", "bus.publish:alarmreq/clear",
  },
  init = function()
    local conf = linli.plugin_config() or {}
    local values = {}
    for k, v in pairs(conf) do
      local s = SETTINGS[k]
      if not s then
        return false, "plugins.waste: unknown setting '" .. tostring(k)
          .. "' (settings: threshold, checkins_per_day, over_minutes, report_hour)"
      end
      if math.type(v) ~= "integer" or v < s[1] or v > s[2] then
        return false, "plugins.waste." .. k .. ": " .. tostring(v) .. " is not " .. s[3]
      end
      values[k] = v
    end
    threshold_default = values.threshold or threshold_default
    per_day_default = values.checkins_per_day or per_day_default
    over_minutes = values.over_minutes or over_minutes
    report_hour = values.report_hour or report_hour
    load_points()
    assert(linli.store_watch("waste_points", on_point_change))
    assert(linli.subscribe("dev/trash_bin/+/fill_level", on_fill))
    assert(linli.timer_add(MIN_MS, MIN_MS, tick))
    assert(linli.timer_add(next_morning(), 0, morning))
    assert(linli.cmd_register("points", "[--community C]",
      "collection points (投放点) with their bins' fill and today's check-ins", points_cmd))
    assert(linli.cmd_register("checkin", "POINT sorted|mixed|overflowing [--photo REF] "
      .. "[--note TEXT] [--community C]", "a grid worker's check-in at a point (督导打卡)",
      checkin_cmd))
    assert(linli.cmd_register("report", "build|show COMMUNITY [YYYY-MM-DD]",
      "a community's daily report (日报; default: yesterday)", report_cmd))
    assert(linli.cmd_register("stats", "", "the app's counters and settings", stats_cmd))
  end,
}
