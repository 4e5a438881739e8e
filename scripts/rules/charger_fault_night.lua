-- charger_fault_night: a charger fault at night (22:00 to 06:00 in the node's time
-- zone, at the event's time) raises an alarm through `alarmreq/raise` (the alarms plugin), type
-- `charger_fault_night`, source the charger (`device:ID`), at the charger's scope:
-- e-bikes and cars charging unattended while people sleep. `overheat` is critical,
-- `fault`, `overcurrent` and an OCPP status_notification with status `Faulted`
-- are major. By day this rule raises nothing.
--
-- The charging plugin, where it runs, raises its own alarms for every fault, day and
-- night (charger_fault, charger_overheat, connector_faulted); this rule adds one of
-- its own type at night, so that the node can escalate or open cases for night faults
-- apart (plugins.alarms.escalate / incident, type charger_fault_night), and it works
-- on a node without the charging plugin.
--
-- Install: linli rules install /ABS/PATH/charger_fault_night.lua --grant
-- Change NIGHT_FROM / NIGHT_TO below (local hours, 0-23) to suit the site.
local NIGHT_FROM, NIGHT_TO = 22, 6

local SEVERITY = { fault = "major", overcurrent = "major", overheat = "critical",
                   status_notification = "major" }

-- The local time of the event: its time on the node's clock (or the device's own).
local function event_local(e)
  if math.type(e.time) == "integer" then return linli.time_local(e.time) end
  return linli.time_local()
end

local function night(hour)
  if NIGHT_FROM > NIGHT_TO then return hour >= NIGHT_FROM or hour < NIGHT_TO end
  return hour >= NIGHT_FROM and hour < NIGHT_TO
end

rule {
  name = "charger_fault_night",
  on = "dev/charger/+/event/+",
  description = "a charger fault between " .. NIGHT_FROM .. ":00 and " .. NIGHT_TO
    .. ":00 raises an alarm",
  capabilities = { "device.read:charger", "bus.publish:alarmreq/raise" },
  when = function(e, topic)
    local name = topic:match("/event/([^/]+)$")
    if not SEVERITY[name] then return false end
    local data = e.data or {}                   -- a device event: { device, event, data }
    if name == "status_notification" and data.status ~= "Faulted" then return false end
    local t = event_local(e)
    return t ~= nil and night(t.hour)
  end,
  run = function(e, topic)
    local charger, name = topic:match("^dev/charger/([^/]+)/event/([^/]+)$")
    local info = linli.dev_info(charger)
    if not info then return end
    local t = event_local(e)
    local data = e.data or {}
    local details = string.format("charger %s: %s at %02d:%02d", charger,
      name == "status_notification" and ("connector " .. tostring(data.connector) .. " "
        .. tostring(data.error_code or "Faulted")) or name, t.hour, t.minute)
    assert(linli.request("alarmreq/raise", info.scope,
      { type = "charger_fault_night", source = "device:" .. charger,
        severity = SEVERITY[name], details = details }, 5000,
      function(r, status, code)
        if r then linli.log("info", ("alarm %s raised for charger %s"):format(r.id, charger))
        else linli.log("warn", ("charger %s: alarm not raised: %s (%s)"):format(
                         charger, tostring(status), tostring(code))) end
      end))
  end,
}
