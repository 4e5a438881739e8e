-- smoke_forced_door: a smoke alarm and a forced door in the same building within
-- WINDOW_MIN minutes (either first) raise one critical alarm, type
-- `smoke_forced_door`, through `alarmreq/raise` (the alarms plugin), at the
-- community of the devices: someone may be trapped, or a break-in came with a fire.
--
-- Where a device is comes from the devices dataset: its `building`
-- (`linli devices add ID smoke DRIVER ADDR --building 3`); a device without one is
-- ignored. Buildings are told apart per community. The alarm's source is the
-- detector (`device:ID`): each detector's alarm is one active alarm, repeats fold.
-- Its details name the building and the two device ids, never a person.
--
-- Install: linli rules install /ABS/PATH/smoke_forced_door.lua --grant
-- Change WINDOW_MIN below to suit the site (whole minutes).
local WINDOW_MIN = 5
local WINDOW_MS = WINDOW_MIN * 60 * 1000

-- "community|building" -> { smoke = { at = ms, dev = id }, door = { at = ms, dev = id } }
local seen = {}

local function community_of(scope)
  return scope:match("^([^/]+/[^/]+/[^/]+/[^/]+)") or scope
end

-- Forget what no event can pair with any more (bounded by the buildings that had one).
local function forget(now)
  for key, s in pairs(seen) do
    local keep = false
    for _, hit in pairs(s) do
      if now - hit.at <= WINDOW_MS then keep = true end
    end
    if not keep then seen[key] = nil end
  end
end

rule {
  name = "smoke_forced_door",
  on = "dev/+/+/event/+",
  description = "a smoke alarm and a forced door in one building within "
    .. WINDOW_MIN .. " minutes raise a critical alarm",
  capabilities = { "store.read:devices", "bus.publish:alarmreq/raise" },
  when = function(e, topic)
    return topic:find("^dev/smoke/[^/]+/event/alarm$") ~= nil
        or topic:find("^dev/door/[^/]+/event/forced$") ~= nil
  end,
  run = function(e, topic)
    local class, dev = topic:match("^dev/([^/]+)/([^/]+)/")
    local rec, scope = linli.store_get("devices", dev)
    if not rec or not rec.building or rec.building == "" then return end
    -- The event's time (the node's clock when the device layer took it, or the device's
    -- own), not the time this rule runs: a busy node pairs what happened, not when it was
    -- handled.
    local now = math.type(e.time) == "integer" and e.time or linli.time_now_ms()
    forget(now)
    local community = community_of(scope)
    local key = community .. "|" .. rec.building
    local s = seen[key] or {}
    seen[key] = s
    s[class] = { at = now, dev = dev }
    local other = s[class == "smoke" and "door" or "smoke"]
    if not other or math.abs(now - other.at) > WINDOW_MS then return end
    local smoke, door = s.smoke.dev, s.door.dev
    local details = string.format("building %s: smoke detector %s alarmed and door %s was "
      .. "forced within %d min", rec.building, smoke, door, WINDOW_MIN)
    assert(linli.request("alarmreq/raise", community,
      { type = "smoke_forced_door", source = "device:" .. smoke, severity = "critical",
        details = details }, 5000,
      function(r, status, code)
        if r then linli.log("info", ("alarm %s raised: building %s of %s"):format(
                              r.id, rec.building, community))
        else linli.log("warn", ("alarm for building %s of %s not raised: %s (%s)"):format(
                         rec.building, community, tostring(status), tostring(code))) end
      end))
  end,
}
