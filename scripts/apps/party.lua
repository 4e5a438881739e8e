-- scripts/apps/party.lua — 智慧党建, party building: a community's own Lua application.
--
-- Members (party_members, their personal fields masked by the kernel for callers without
-- the grant), branches (party_branches: the record id is the branch's code), 三会一课
-- meetings (party_activities) with who attended (party_attendance), attendance rates per
-- branch, and a reminder (party/reminder) for a branch that has held no meeting this month
-- by the reminder day (plugins.party.reminder_day in linli.cfg, default the 25th).
--
-- Written against the public linli.* API only (sdk/lua-api.md). Every command acts as its
-- caller (SDK 1.1): what the caller may not read or write, the app cannot either; writes
-- also need the caller to hold the role of the action party.manage (operator or above).
-- The reminder timer acts as the plugin itself and keeps the month it reminded a branch
-- for in the branch's record, so a restart never reminds twice.

local MANAGE = "party.manage"
local HOUR_MS = 3600 * 1000

-- 三会一课: the four kinds of meeting, the catalog's enum value and the Chinese name.
local KINDS = {
  { "branch_meeting", "支部党员大会" },
  { "committee_meeting", "支委会" },
  { "group_meeting", "党小组会" },
  { "party_lecture", "党课" },
}
local KIND_OF, KIND_ZH, KIND_NAMES = {}, {}, {}
for _, k in ipairs(KINDS) do
  KIND_OF[k[1]], KIND_OF[k[2]], KIND_ZH[k[1]] = k[1], k[1], k[2]
  KIND_NAMES[#KIND_NAMES + 1] = k[1] .. " (" .. k[2] .. ")"
end
KIND_NAMES = table.concat(KIND_NAMES, ", ")

local reminder_day = 25 -- set in init from the plugin's config

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

-- Words and options: `spec.flags` names the --options that take a value, `spec.bools`
-- those that take none, `spec.keys` the KEY=VALUE fields allowed. Returns the positional
-- words, the options and the fields, or nil and a message naming what is wrong.
local function parse(args, spec)
  local pos, opts, fields = {}, {}, {}
  local i = 1
  while i <= #args do
    local a = args[i]
    if a:sub(1, 2) == "--" then
      local name = a:sub(3)
      if spec.flags and spec.flags[name] then
        if args[i + 1] == nil then return nil, "option --" .. name .. " needs a value" end
        opts[name] = args[i + 1]
        i = i + 1
      elseif spec.bools and spec.bools[name] then
        opts[name] = true
      else
        return nil, "unknown option " .. a
      end
    elseif a:find("=", 1, true) and spec.keys then
      local k, v = a:match("^([%w_]+)=(.*)$")
      if not k or not spec.keys[k] then
        local names = {}
        for n in pairs(spec.keys) do names[#names + 1] = n end
        table.sort(names)
        return nil, "unknown field '" .. (k or a) .. "' (fields: " .. table.concat(names, ", ")
          .. ")"
      end
      fields[k] = v
    else
      pos[#pos + 1] = a
    end
    i = i + 1
  end
  return pos, opts, fields
end

-- A local date (YYYY-MM-DD, optionally THH:MM or " HH:MM") in the node's zone, as ms.
local function parse_date(text, what)
  local y, m, d, rest = tostring(text):match("^(%d%d%d%d)-(%d%d)-(%d%d)(.*)$")
  local hh, mm = 0, 0
  if rest and rest ~= "" then
    hh, mm = rest:match("^[T ](%d%d):(%d%d)$")
  end
  if not y or not hh then
    return nil, what .. ": '" .. tostring(text) .. "' is not a date (YYYY-MM-DD or "
      .. "YYYY-MM-DDTHH:MM, local time)"
  end
  local ms, err = linli.time_from_local{ year = tonumber(y), month = tonumber(m),
                                         day = tonumber(d), hour = tonumber(hh),
                                         minute = tonumber(mm) }
  if not ms then return nil, what .. ": '" .. text .. "' is not a date: " .. err end
  return ms
end

-- A month YYYY-MM: its first instant and the first of the next month.
local function parse_month(text)
  local y, m = tostring(text):match("^(%d%d%d%d)-(%d%d)$")
  y, m = tonumber(y), tonumber(m)
  if not y or m < 1 or m > 12 then
    return nil, "--month: '" .. tostring(text) .. "' is not a month (YYYY-MM)"
  end
  local from = assert(linli.time_from_local{ year = y, month = m, day = 1 })
  local to = assert(linli.time_from_local{ year = m == 12 and y + 1 or y,
                                            month = m == 12 and 1 or m + 1, day = 1 })
  return from, to
end

local function month_of(ms)
  local t = linli.time_local(ms)
  return string.format("%04d-%02d", t.year, t.month), t
end

local function date_text(ms)
  local t = linli.time_local(ms)
  return string.format("%04d-%02d-%02dT%02d:%02d", t.year, t.month, t.day, t.hour, t.minute)
end

-- The branch of code `code`, or a refusal naming it.
local function branch_get(code)
  local b, scope, code2 = linli.store_get("party_branches", code)
  if not b then
    if code2 == "LINLI_ENOENT" then
      return nil, "no branch '" .. code .. "' (linli party branch list)", "LINLI_ENOENT"
    end
    return nil, scope, code2
  end
  return b, scope
end

-- The active members of a branch (at its scope): rows.
local function branch_members(code, scope)
  local rows, err, c = scan_all{ dataset = "party_members", scope = scope,
                                 where = { branch = code } }
  if not rows then return nil, err, c end
  local active = {}
  for _, r in ipairs(rows) do
    if (r.record.status or "active") == "active" then active[#active + 1] = r end
  end
  return active, rows
end

-- The meetings of a branch (at its scope) between from (inclusive) and to (exclusive).
local function meetings(code, scope, from, to)
  local q = { dataset = "party_activities", scope = scope, where = { branch = code } }
  if from then q.range = { { "start_at", ">=", from }, { "start_at", "<", to } } end
  local rows, err, c = scan_all(q)
  if not rows then return nil, err, c end
  local out = {}
  for _, r in ipairs(rows) do
    if KIND_ZH[r.record.kind] then out[#out + 1] = r end
  end
  table.sort(out, function(a, b) return a.record.start_at < b.record.start_at end)
  return out
end

-- [--branch B] [--month YYYY-MM] of `activity list` and `rates`: the branches (rows
-- {id, scope, record}: one, or every one) and the month's bounds (nil: every month).
local function select_meetings(args, cmd)
  local pos, opts = parse(args, { flags = { branch = true, month = true } })
  if not pos then return fail(opts) end
  if #pos > 0 then return fail("usage: " .. cmd .. " [--branch B] [--month YYYY-MM]") end
  local sel = { month = opts.month }
  if opts.month then
    local from, to = parse_month(opts.month)
    if not from then return fail(to) end
    sel.from, sel.to = from, to
  end
  if opts.branch then
    local b, scope, c = branch_get(opts.branch)
    if not b then return nil, scope, c end
    sel.branches = { { id = opts.branch, scope = scope, record = b } }
  else
    local rows, e, c = scan_all{ dataset = "party_branches" }
    if not rows then return nil, e, c end
    sel.branches = rows
  end
  return sel
end

local function may_manage(caller, scope)
  return linli.caller_may(caller, MANAGE, scope)
end

-- ---- members ----

local MEMBER_KEYS = { id_number = true, phone = true, gender = true, membership = true,
                      status = true, joined_at = true, position = true, grid = true,
                      resident = true }

local function member_row(r)
  local m = r.record
  return { id = r.id, scope = r.scope, name = m.name, branch = m.branch,
           id_number = m.id_number, phone = m.phone, gender = m.gender,
           membership = m.membership, status = m.status or "active",
           joined_at = m.joined_at and date_text(m.joined_at):sub(1, 10), position = m.position,
           grid = m.grid }
end

local function member_add(pos, fields, caller)
  if #pos ~= 2 then return fail("usage: member add BRANCH NAME [field=value...]") end
  local code, name = pos[1], pos[2]
  local b, scope, c = branch_get(code)
  if not b then return nil, scope, c end
  local ok, err, ec = may_manage(caller, scope)
  if not ok then return nil, err, ec end
  if (b.status or "active") ~= "active" then
    return fail("branch '" .. code .. "' is " .. b.status .. ": no new members", "LINLI_ESTATE")
  end
  local rec = { name = name, branch = code, status = "active" }
  for k, v in pairs(fields) do rec[k] = v end
  if fields.joined_at then
    local ms, e = parse_date(fields.joined_at, "joined_at")
    if not ms then return fail(e) end
    rec.joined_at = ms
  end
  local id, e2, c2 = linli.store_put("party_members", rec, scope)
  if not id then return nil, e2, c2 end
  return { id = id, branch = code, scope = scope }
end

local function member_cmd(args, input, caller)
  local verb = table.remove(args, 1)
  if verb == "add" then
    local pos, opts, fields = parse(args, { keys = MEMBER_KEYS })
    if not pos then return fail(opts) end
    return member_add(pos, fields, caller)
  elseif verb == "list" then
    local pos, opts = parse(args, { flags = { branch = true, status = true } })
    if not pos then return fail(opts) end
    if #pos > 0 then return fail("usage: member list [--branch B] [--status S]") end
    local where
    if opts.branch then
      local b, e, c = branch_get(opts.branch)
      if not b then return nil, e, c end
      where = { branch = opts.branch }
    end
    if opts.status then where = where or {}; where.status = opts.status end
    local rows, e, c = scan_all{ dataset = "party_members", where = where }
    if not rows then return nil, e, c end
    local out = linli.array()
    for i, r in ipairs(rows) do out[i] = member_row(r) end
    return out
  elseif verb == "show" then
    if #args ~= 1 then return fail("usage: member show ID") end
    local m, scope, c = linli.store_get("party_members", args[1])
    if not m then
      if c == "LINLI_ENOENT" then return fail("no member '" .. args[1] .. "'", c) end
      return nil, scope, c
    end
    local row = member_row{ id = args[1], scope = scope, record = m }
    local att, e, c2 = scan_all{ dataset = "party_attendance", scope = scope,
                                 where = { member = args[1] } }
    if not att then return nil, e, c2 end
    row.attended, row.leave = 0, 0
    for _, a in ipairs(att) do
      if a.record.status == "present" then row.attended = row.attended + 1
      else row.leave = row.leave + 1 end
    end
    return row
  end
  return fail("usage: member add|list|show ...")
end

-- ---- branches ----

local function branch_cmd(args, input, caller)
  local verb = table.remove(args, 1)
  if verb == "add" then
    local pos, opts, fields = parse(args, { flags = { scope = true },
                                            keys = { kind = true, secretary = true,
                                                     founded_at = true, grid = true } })
    if not pos then return fail(opts) end
    if #pos ~= 2 then
      return fail("usage: branch add CODE NAME [--scope PATH] [field=value...]")
    end
    -- Where it is kept: --scope (a community of the street node it runs on), else the
    -- caller's own scope.
    local at = opts.scope
    local code, name = pos[1], pos[2]
    if not code:match("^[A-Za-z0-9][A-Za-z0-9_.:-]*$") or #code > 48 then
      return fail("branch code '" .. code .. "' is not an id ([A-Za-z0-9][A-Za-z0-9_.:-]*, "
        .. "at most 48 bytes)")
    end
    local ok, e, c = may_manage(caller, at)
    if not ok then return nil, e, c end
    local old, oscope = linli.store_get("party_branches", code, at)
    if old then
      return fail("branch '" .. code .. "' exists already (" .. old.name .. " at " .. oscope
        .. ")", "LINLI_EEXIST")
    end
    local rec = { name = name, kind = fields.kind or "branch", status = "active",
                  grid = fields.grid }
    if fields.founded_at then
      local ms, e2 = parse_date(fields.founded_at, "founded_at")
      if not ms then return fail(e2) end
      rec.founded_at = ms
    end
    if fields.secretary then
      local m = linli.store_get("party_members", fields.secretary, at)
      if not m then return fail("secretary: no member '" .. fields.secretary .. "'",
                                "LINLI_ENOENT") end
      rec.secretary = fields.secretary
    end
    local id, e3, c3 = linli.store_put("party_branches", rec, at, code)
    if not id then return nil, e3, c3 end
    return { id = id, name = name, scope = at }
  elseif verb == "list" then
    if #args > 0 then return fail("usage: branch list") end
    local rows, e, c = scan_all{ dataset = "party_branches" }
    if not rows then return nil, e, c end
    local out = linli.array()
    for i, r in ipairs(rows) do
      local active = branch_members(r.id, r.scope) or {}
      out[i] = { id = r.id, scope = r.scope, name = r.record.name, kind = r.record.kind,
                 status = r.record.status or "active", secretary = r.record.secretary,
                 members = #active, reminded_month = r.record.reminded_month }
    end
    return out
  end
  return fail("usage: branch add|list ...")
end

-- ---- activities and attendance ----

local function activity_row(r)
  local a = r.record
  return { id = r.id, branch = a.branch, kind = a.kind, kind_zh = KIND_ZH[a.kind],
           title = a.title, date = date_text(a.start_at), status = a.status,
           expected = a.expected or 0, attended = a.attendees or 0, venue = a.venue }
end

local function activity_cmd(args, input, caller)
  local verb = table.remove(args, 1)
  if verb == "add" then
    local pos, opts, fields = parse(args, { keys = { title = true, venue = true,
                                                    summary = true, status = true } })
    if not pos then return fail(opts) end
    if #pos ~= 3 then return fail("usage: activity add BRANCH KIND DATE [field=value...]") end
    local b, scope, c = branch_get(pos[1])
    if not b then return nil, scope, c end
    local ok, e, ec = may_manage(caller, scope)
    if not ok then return nil, e, ec end
    local kind = KIND_OF[pos[2]]
    if not kind then
      return fail("kind '" .. pos[2] .. "' is not one of " .. KIND_NAMES)
    end
    local at, de = parse_date(pos[3], "date")
    if not at then return fail(de) end
    local active, me, mc = branch_members(pos[1], scope)
    if not active then return nil, me, mc end
    local rec = { branch = pos[1], kind = kind, start_at = at, expected = #active,
                  attendees = 0, title = fields.title or (KIND_ZH[kind] .. " " .. pos[3]),
                  venue = fields.venue, summary = fields.summary,
                  status = fields.status or (at <= linli.time_now_ms() and "completed"
                                             or "planned") }
    local id, e2, c2 = linli.store_put("party_activities", rec, scope)
    if not id then return nil, e2, c2 end
    return { id = id, branch = pos[1], kind = kind, date = date_text(at),
             expected = #active }
  elseif verb == "list" then
    local sel, e0, c0 = select_meetings(args, "activity list")
    if not sel then return nil, e0, c0 end
    local branches, from, to = sel.branches, sel.from, sel.to
    local out = linli.array()
    for _, b in ipairs(branches) do
      local rows, e, c = meetings(b.id, b.scope, from, to)
      if not rows then return nil, e, c end
      for _, r in ipairs(rows) do out[#out + 1] = activity_row(r) end
    end
    return out
  end
  return fail("usage: activity add|list ...")
end

-- attend ACTIVITY MEMBER... [--leave]: all or nothing.
local function attend_cmd(args, input, caller)
  local pos, opts = parse(args, { bools = { leave = true } })
  if not pos then return fail(opts) end
  if #pos < 2 then return fail("usage: attend ACTIVITY MEMBER... [--leave]") end
  local act_id = table.remove(pos, 1)
  local act, scope, c = linli.store_get("party_activities", act_id)
  if not act then
    if c == "LINLI_ENOENT" then return fail("no activity '" .. act_id .. "'", c) end
    return nil, scope, c
  end
  local ok, e, ec = may_manage(caller, scope)
  if not ok then return nil, e, ec end
  if act.status == "cancelled" then
    return fail("activity '" .. act_id .. "' was cancelled", "LINLI_ESTATE")
  end
  if act.start_at > linli.time_now_ms() then
    return fail("activity '" .. act_id .. "' is on " .. date_text(act.start_at)
      .. ", still to come: attendance is recorded once it is held", "LINLI_ESTATE")
  end
  -- Check every member before writing anything.
  local seen = {}
  for _, mid in ipairs(pos) do
    local m, mscope, mc = linli.store_get("party_members", mid, scope)
    if not m then
      if mc == "LINLI_ENOENT" then return fail("no member '" .. mid .. "'", mc) end
      return nil, mscope, mc
    end
    if m.branch ~= act.branch then
      return fail("member '" .. mid .. "' is not a member of branch '" .. act.branch
        .. "' (its branch is '" .. tostring(m.branch) .. "')")
    end
    seen[mid] = true
  end
  local rows, se, sc = scan_all{ dataset = "party_attendance", scope = scope,
                                 where = { activity = act_id } }
  if not rows then return nil, se, sc end
  local row_of = {}
  for _, r in ipairs(rows) do row_of[r.record.member] = r.id end
  local status, now = opts.leave and "leave" or "present", linli.time_now_ms()
  local recorded = 0
  for mid in pairs(seen) do
    local id, pe, pc = linli.store_put("party_attendance",
                                       { activity = act_id, member = mid, branch = act.branch,
                                         status = status, recorded_at = now }, scope,
                                       row_of[mid])
    if not id then return nil, pe, pc end
    row_of[mid] = id
    recorded = recorded + 1
  end
  -- Count again from what is stored now: recording someone twice counts them once.
  local present = 0
  rows, se, sc = scan_all{ dataset = "party_attendance", scope = scope,
                           where = { activity = act_id, status = "present" } }
  if not rows then return nil, se, sc end
  present = #rows
  local expected
  local uok, ue, uc = linli.store_update("party_activities", act_id, function(old)
    if not old then return nil, "activity '" .. act_id .. "' was deleted", "LINLI_ENOENT" end
    old.attendees = present
    -- A member who joined after the meeting was planned was expected all the same.
    old.expected = math.max(old.expected or 0, present)
    expected = old.expected
    return old
  end, scope)
  if not uok then return nil, ue, uc end
  return { activity = act_id, recorded = recorded, status = status, attended = present,
           expected = expected }
end

-- rates [--branch B] [--month YYYY-MM]: attended / expected member-meetings per branch,
-- counting the meetings held (not cancelled, not in the future).
local function rates_cmd(args, input, caller)
  local sel, e0, c0 = select_meetings(args, "rates")
  if not sel then return nil, e0, c0 end
  local branches, from, to, month = sel.branches, sel.from, sel.to, sel.month
  local now, out = linli.time_now_ms(), linli.array()
  for _, b in ipairs(branches) do
    local rows, e, c = meetings(b.id, b.scope, from, to)
    if not rows then return nil, e, c end
    local held, expected, attended = 0, 0, 0
    for _, r in ipairs(rows) do
      if r.record.status ~= "cancelled" and r.record.start_at <= now then
        held = held + 1
        expected = expected + (r.record.expected or 0)
        attended = attended + (r.record.attendees or 0)
      end
    end
    out[#out + 1] = { branch = b.id, name = b.record.name, month = month,
                      meetings = held, expected = expected, attended = attended,
                      rate = expected > 0 and math.floor(attended * 10000 / expected + 0.5)
                        / 10000 or nil }
  end
  return out
end

-- ---- reminders (a timer: acts as the plugin) ----

-- A branch that has held no meeting this month by the reminder day is reminded once
-- for the month; the month is kept in its record (reminded_month) before the reminder
-- goes out, so that neither a restart nor a clock that runs backwards (a real clock
-- after a test clock) reminds it twice, or for an older month.
local function check_reminders()
  local now = linli.time_now_ms()
  local month, t = month_of(now)
  if t.day < reminder_day then return end
  local from = assert(linli.time_from_local{ year = t.year, month = t.month, day = 1 })
  local rows, err = scan_all{ dataset = "party_branches" }
  if not rows then
    linli.log("warn", "reminders: cannot read the branches: " .. tostring(err))
    return
  end
  local due = {}
  for _, r in ipairs(rows) do
    local b = r.record
    if (b.status or "active") == "active" and (b.reminded_month or "") < month then
      local ms, merr = meetings(r.id, r.scope, from, now + 1)
      if not ms then
        linli.log("warn", "reminders: branch " .. r.id .. ": " .. tostring(merr))
      else
        local held = false
        for _, m in ipairs(ms) do
          if m.record.status ~= "cancelled" then held = true end
        end
        if not held then
          local ok, uerr = linli.store_update("party_branches", r.id, function(old)
            if not old then return "keep" end
            old.reminded_month = month
            return old
          end, r.scope)
          if ok then
            due[#due + 1] = { branch = r.id, name = b.name, month = month,
                              reminder_day = reminder_day, scope = r.scope }
          else
            linli.log("warn", "reminders: branch " .. r.id .. ": " .. tostring(uerr))
          end
        end
      end
    end
  end
  if #due == 0 then return end
  -- Published once the months are stored: a reminder is never sent twice.
  assert(linli.store_on_commit(function(ok, cerr)
    if not ok then
      linli.log("warn", "reminders not kept, so not sent: " .. tostring(cerr))
      return
    end
    for _, d in ipairs(due) do
      local seq, perr = linli.publish("party/reminder", d, d.scope)
      if seq then
        linli.log("info", "reminded branch " .. d.branch .. " of its meeting for " .. d.month)
      else
        linli.log("warn", "reminder for branch " .. d.branch .. " not sent: " .. tostring(perr))
      end
    end
  end))
end

plugin {
  name = "party",
  version = "0.1.0",
  sdk = "1.1",
  family = "governance",
  description = "Party building: members, branches, 三会一课 meetings, attendance rates, "
    .. "missed-meeting reminders",
  capabilities = {
    "store.read:party_members", "store.write:party_members", "sensitive:party_members",
    "store.read:party_branches", "store.write:party_branches",
    "store.read:party_activities", "store.write:party_activities",
    "store.read:party_attendance", "store.write:party_attendance",
    "bus.publish:party/#",
  },
  init = function()
    local conf = linli.plugin_config() or {}
    for k in pairs(conf) do
      if k ~= "reminder_day" then
        return false, "plugins.party: unknown setting '" .. tostring(k)
          .. "' (settings: reminder_day)"
      end
    end
    local day = conf.reminder_day
    if day ~= nil then
      if math.type(day) ~= "integer" or day < 1 or day > 28 then
        return false, "plugins.party.reminder_day: " .. tostring(day)
          .. " is not a day of the month from 1 to 28"
      end
      reminder_day = day
    end
    assert(linli.action_declare(MANAGE, "operator", nil, nil,
                                "add party members, branches, meetings and attendance"))
    assert(linli.cmd_register("member", "add BRANCH NAME [field=value...] | list "
      .. "[--branch B] [--status S] | show ID", "party members (党员)", member_cmd))
    assert(linli.cmd_register("branch", "add CODE NAME [field=value...] | list",
                              "party branches (党组织)", branch_cmd))
    assert(linli.cmd_register("activity", "add BRANCH KIND DATE [field=value...] | list "
      .. "[--branch B] [--month YYYY-MM]", "三会一课 meetings", activity_cmd))
    assert(linli.cmd_register("attend", "ACTIVITY MEMBER... [--leave]",
                              "record who attended a meeting", attend_cmd))
    assert(linli.cmd_register("rates", "[--branch B] [--month YYYY-MM]",
                              "attendance rate per branch", rates_cmd))
    -- Now, then every hour: the day of the month is the node's local day.
    assert(linli.timer_add(0, HOUR_MS, check_reminders))
  end,
}
