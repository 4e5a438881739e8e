-- scripts/apps/circle.lua — 智慧生活圈, the living circle: a community's own Lua application.
--
-- The directory of nearby services — the `businesses` a community lists (listed = true,
-- status active or unset) with what they offer (`service`), their opening hours, public
-- phone and location — searched by kind and by walking distance from a building of the
-- community (its location: the houses of that building that have one) or from a point.
-- Served to the console (`linli circle near|kinds|check`) and over HTTP to API keys granted
-- it (GET /api/v1/apps/circle/near?building=3&kind=pharmacy&within=800&open=true): a kiosk
-- in the community hall holds such a key.
--
-- Written against the public linli.* API only (sdk/lua-api.md). Every command and route
-- acts as its caller (SDK 1.1): a community's operator or key finds the businesses and
-- buildings within its jurisdiction only. Nothing it reads is sensitive (a legal
-- representative's name and phone are never read: the shop's own `service_phone` is shown).
--
-- Settings (plugins.circle in linli.cfg): within_m (default 1000: the 15-minute walk of
-- the 15分钟生活圈), limit (default 20 places in an answer).

local DEFAULT_WITHIN, DEFAULT_LIMIT = 1000, 20
local within_default, limit_default = DEFAULT_WITHIN, DEFAULT_LIMIT

local SERVICES = {
  supermarket = "超市", convenience_store = "便利店", fresh_market = "菜市场",
  pharmacy = "药店", clinic = "诊所", canteen = "长者食堂", barber = "理发",
  laundry = "洗衣", repair = "维修", housekeeping = "家政", elderly_daycare = "日间照料",
  childcare = "托育", express = "快递驿站", bank = "银行", restaurant = "餐馆", other = "其他",
}
local SERVICE_NAMES = {}
for k in pairs(SERVICES) do SERVICE_NAMES[#SERVICE_NAMES + 1] = k end
table.sort(SERVICE_NAMES)
SERVICE_NAMES = table.concat(SERVICE_NAMES, ", ")

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

-- ---- opening hours ----

-- "HH:MM" as minutes of the day (24:00 allowed as an end), or nil.
local function minutes(text, is_end)
  local h, m = text:match("^(%d%d?):(%d%d)$")
  h, m = tonumber(h), tonumber(m)
  if not h or m > 59 or h > 24 or (h == 24 and (m ~= 0 or not is_end)) then return nil end
  return h * 60 + m
end

-- Opening hours as a list of {from, to} minute ranges (to < from: past midnight), or nil
-- and what is wrong. "24h" is the whole day.
local function parse_hours(text)
  if type(text) ~= "string" or text == "" then return nil, "no opening hours" end
  if text == "24h" then return { { 0, 24 * 60 } } end
  local ranges = {}
  for part in (text .. ","):gmatch("([^,]*),") do
    part = part:match("^%s*(.-)%s*$")
    local a, b = part:match("^([%d:]+)%s*%-%s*([%d:]+)$")
    local from, to = a and minutes(a), b and minutes(b, true)
    if not from or not to or from == to then
      return nil, "'" .. part .. "' is not a range HH:MM-HH:MM (in \"" .. text .. "\")"
    end
    ranges[#ranges + 1] = { from, to }
  end
  return ranges
end

-- Is a place with these hours open at local minute-of-day `m`? nil when the hours are bad.
local function open_at(hours, m)
  local ranges = parse_hours(hours)
  if not ranges then return nil end
  for _, r in ipairs(ranges) do
    if r[1] < r[2] then
      if m >= r[1] and m < r[2] then return true end
    elseif m >= r[1] or m < r[2] then -- past midnight: 22:00-02:00
      return true
    end
  end
  return false
end

-- ---- places and distances ----

local R = 6371008.8 -- the Earth's mean radius, m

-- The great-circle distance between two {lat, lon}, in m (haversine).
local function distance(a, b)
  local rad = math.pi / 180
  local dlat, dlon = (b.lat - a.lat) * rad, (b.lon - a.lon) * rad
  local h = math.sin(dlat / 2) ^ 2 +
    math.cos(a.lat * rad) * math.cos(b.lat * rad) * math.sin(dlon / 2) ^ 2
  return 2 * R * math.asin(math.min(1, math.sqrt(h)))
end

-- "lat,lon" as a point, or nil and what is wrong.
local function parse_point(text)
  local la, lo = tostring(text):match("^%s*(%-?[%d.]+)%s*,%s*(%-?[%d.]+)%s*$")
  la, lo = tonumber(la), tonumber(lo)
  if not la or la < -90 or la > 90 or lo < -180 or lo > 180 then
    return nil, "'" .. tostring(text) .. "' is not a point lat,lon (degrees)"
  end
  return { lat = la, lon = lo }
end

-- Where building `b` stands: the mean location of its houses that have one, within the
-- caller's jurisdiction (or at `scope` and below). A building of the same name in two
-- communities is ambiguous: the caller names the community.
local function building_at(b, scope)
  local rows, e, c = scan_all{ dataset = "houses", scope = scope, where = { building = b } }
  if not rows then return nil, e, c end
  local per, scopes = {}, {}
  for _, r in ipairs(rows) do
    local loc = r.record.location
    if loc then
      local p = per[r.scope]
      if not p then
        p = { lat = 0, lon = 0, n = 0 }
        per[r.scope] = p
        scopes[#scopes + 1] = r.scope
      end
      p.lat, p.lon, p.n = p.lat + loc.lat, p.lon + loc.lon, p.n + 1
    end
  end
  if #scopes == 0 then
    if #rows > 0 then
      return fail("building '" .. b .. "' has no house with a location (houses.location)",
                  "LINLI_ENOENT")
    end
    return fail("no building '" .. b .. "' in the houses of " .. (scope or "this jurisdiction"),
                "LINLI_ENOENT")
  end
  if #scopes > 1 then
    table.sort(scopes)
    return fail("building '" .. b .. "' is in " .. #scopes .. " communities ("
                .. table.concat(scopes, ", ") .. "): name one with scope", "LINLI_EINVAL")
  end
  local p = per[scopes[1]]
  return { lat = p.lat / p.n, lon = p.lon / p.n }, scopes[1]
end

-- The places near a point. q: {at, within, service, open, scope, limit}. Rows sorted by
-- distance: {id, name, service, service_zh, hours, open_now, phone, address, distance_m}.
local function near(q)
  local where = { listed = true }
  if q.service then where.service = q.service end
  local rows, e, c = scan_all{ dataset = "businesses", scope = q.scope, where = where }
  if not rows then return nil, e, c end
  local now = linli.time_local()
  local minute = now.hour * 60 + now.minute
  local out = linli.array()
  for _, r in ipairs(rows) do
    local b = r.record
    local st = b.status or "active"
    if st == "active" and b.location then
      local d = distance(q.at, b.location)
      if d <= q.within then
        local open = open_at(b.hours, minute)
        if not q.open or open then
          out[#out + 1] = {
            id = r.id, scope = r.scope, name = b.name, service = b.service,
            service_zh = SERVICES[b.service or "other"], hours = b.hours,
            open_now = open, phone = b.service_phone, address = b.address,
            distance_m = math.floor(d + 0.5),
          }
        end
      end
    end
  end
  table.sort(out, function(x, y)
    if x.distance_m ~= y.distance_m then return x.distance_m < y.distance_m end
    return x.id < y.id
  end)
  local total = #out
  for i = #out, q.limit + 1, -1 do out[i] = nil end
  return { places = out, total = total, within_m = q.within, at = q.at }
end

-- The query of `near` from named values (console options or HTTP parameters), each a
-- string; `where` names them in errors ("--" for options, "" for parameters).
local function near_query(v, where)
  local q = { within = within_default, limit = limit_default, scope = v.scope }
  if v.building and v.at then
    return fail("give " .. where .. "building or " .. where .. "at, not both")
  end
  if v.building then
    local at, scope, c = building_at(v.building, v.scope)
    if not at then return nil, scope, c end
    q.at, q.scope = at, q.scope or scope
  elseif v.at then
    local at, e = parse_point(v.at)
    if not at then return fail(where .. "at: " .. e) end
    q.at = at
  else
    return fail("say where from: " .. where .. "building B or " .. where .. "at LAT,LON")
  end
  if v.kind then
    if not SERVICES[v.kind] then
      return fail(where .. "kind: '" .. v.kind .. "' is not one of " .. SERVICE_NAMES)
    end
    q.service = v.kind
  end
  if v.within then
    local w = tonumber(v.within)
    if not w or w ~= w or w <= 0 or w > 50000 then
      return fail(where .. "within: '" .. v.within .. "' is not a distance of 1 to 50000 m")
    end
    q.within = w
  end
  if v.limit then
    local n = math.tointeger(tonumber(v.limit))
    if not n or n < 1 or n > 200 then
      return fail(where .. "limit: '" .. v.limit .. "' is not a number of 1 to 200")
    end
    q.limit = n
  end
  if v.open ~= nil then
    if v.open == true or v.open == "true" or v.open == "1" then q.open = true
    elseif v.open == "false" or v.open == "0" then q.open = false
    else return fail(where .. "open: '" .. tostring(v.open) .. "' is not true or false") end
  end
  return q
end

-- ---- console ----

local NEAR_FLAGS = { kind = true, within = true, limit = true, scope = true, at = true }

local function near_cmd(args)
  local v = {}
  local i = 1
  while i <= #args do
    local a = args[i]
    local name = a:match("^%-%-(.+)$")
    if name == "open" then
      v.open = true
    elseif name and NEAR_FLAGS[name] then
      if args[i + 1] == nil then return fail("option --" .. name .. " needs a value") end
      v[name] = args[i + 1]
      i = i + 1
    elseif name then
      return fail("unknown option " .. a .. " (--kind, --within, --limit, --open, --scope, --at)")
    elseif v.building then
      return fail("usage: circle near BUILDING|--at LAT,LON [--kind K] [--within M] [--open]")
    else
      v.building = a
    end
    i = i + 1
  end
  local q, e, c = near_query(v, "--")
  if not q then return nil, e, c end
  return near(q)
end

local function kinds_cmd(args)
  if #args > 0 then return fail("usage: circle kinds") end
  local out = linli.array()
  for k, zh in pairs(SERVICES) do out[#out + 1] = { kind = k, name_zh = zh } end
  table.sort(out, function(a, b) return a.kind < b.kind end)
  return out
end

-- Listed places an operator should fix: no location, hours that do not parse, no service.
local function check_cmd(args)
  if #args > 0 then return fail("usage: circle check") end
  local rows, e, c = scan_all{ dataset = "businesses", where = { listed = true } }
  if not rows then return nil, e, c end
  local problems = linli.array()
  for _, r in ipairs(rows) do
    local b = r.record
    local function add(field, what)
      problems[#problems + 1] = { id = r.id, scope = r.scope, name = b.name, field = field,
                                  problem = what }
    end
    if not b.location then add("location", "no location: never found by distance") end
    if not b.service then add("service", "no service kind: found only without --kind") end
    local ok, why = parse_hours(b.hours)
    if not ok then add("hours", why .. ": never shown as open") end
  end
  return { listed = #rows, problems = problems }
end

-- ---- HTTP ----

local PARAMS = { building = true, at = true, kind = true, within = true, limit = true,
                 open = true, scope = true }

local function near_route(req)
  local v = {}
  for k, val in pairs(req.query or {}) do
    if not PARAMS[k] then
      return nil, "unknown parameter '" .. tostring(k) .. "' (building, at, kind, within, "
        .. "limit, open, scope)", "LINLI_EINVAL", 400
    end
    v[k] = tostring(val)
  end
  local q, e, c = near_query(v, "")
  if not q then return nil, e, c end
  return near(q)
end

plugin {
  name = "circle",
  version = "1.0.0",
  sdk = "1.1",
  family = "public_services",
  description = "智慧生活圈: nearby services (businesses listed in the living circle) by kind, "
    .. "distance from a building and opening hours, for the console, kiosks and HTTP keys",
  capabilities = { "store.read:businesses", "store.read:houses" },
  init = function()
    local conf = linli.plugin_config() or {}
    for k, v in pairs(conf) do
      if k == "within_m" then
        if math.type(v) ~= "integer" or v < 1 or v > 50000 then
          return false, "plugins.circle.within_m: " .. tostring(v)
            .. " is not a distance of 1 to 50000 m"
        end
        within_default = v
      elseif k == "limit" then
        if math.type(v) ~= "integer" or v < 1 or v > 200 then
          return false, "plugins.circle.limit: " .. tostring(v) .. " is not a number of 1 to 200"
        end
        limit_default = v
      else
        return false, "plugins.circle: unknown setting '" .. tostring(k)
          .. "' (settings: within_m, limit)"
      end
    end
    assert(linli.cmd_register("near", "BUILDING|--at LAT,LON [--kind K] [--within M] "
      .. "[--limit N] [--open] [--scope COMMUNITY]",
      "nearby services by distance from a building (智慧生活圈)", near_cmd))
    assert(linli.cmd_register("kinds", "", "the kinds of service a place may offer", kinds_cmd))
    assert(linli.cmd_register("check", "",
      "listed places with no location, no kind or hours that do not parse", check_cmd))
    assert(linli.route_register("near", "GET", "near", near_route))
  end,
}
