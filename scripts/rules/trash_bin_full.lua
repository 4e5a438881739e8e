-- trash_bin_full: a full trash bin (device class `trash_bin`, event `full`) opens a
-- grid case (category `environment`, channel `rule`) through `incidentreq/report`
-- (the grid plugin), in the bin's grid: the device's scope when it is a grid,
-- else the grid its record names (`linli devices add ID trash_bin ... --grid g01`)
-- within its community. A bin with no grid known opens nothing (logged).
--
-- One open case per bin at a time: while the case this rule opened for a bin is
-- still open (not closed or void), a bin reporting full again opens none.
--
-- Install: linli rules install /ABS/PATH/trash_bin_full.lua --grant
local open_case = {}   -- bin id -> { id = case id, scope = grid }

local function depth(scope)
  local n = 1
  for _ in scope:gmatch("/") do n = n + 1 end
  return n
end

-- The grid path of a device record at `scope`, or nil.
local function grid_of(rec, scope)
  if depth(scope) == 5 then return scope end
  if depth(scope) ~= 4 or not rec.grid then return nil end
  local g = linli.store_get("grids", rec.grid, scope)
  local code = (g and g.code) or rec.grid
  if not code:find("^[a-z0-9_-]+$") then return nil end
  return scope .. "/" .. code
end

-- Is the case still open? (A case we cannot read any more is not.)
local function still_open(c)
  if c.id == "pending" then return true end    -- asked, not answered yet
  local rec = linli.store_get("incidents", c.id, c.scope)
  return rec ~= nil and rec.status ~= "closed" and rec.status ~= "void"
end

rule {
  name = "trash_bin_full",
  on = "dev/trash_bin/+/event/full",
  description = "a full trash bin opens a grid case in its grid",
  capabilities = { "store.read:devices", "store.read:grids", "store.read:incidents",
                   "bus.publish:incidentreq/report" },
  run = function(e, topic)
    local bin = topic:match("^dev/trash_bin/([^/]+)/")
    if open_case[bin] and still_open(open_case[bin]) then return end
    local rec, scope = linli.store_get("devices", bin)
    if not rec then return end
    local grid = grid_of(rec, scope)
    if not grid then
      linli.log("warn", ("bin %s at %s is full: no grid known (devices add --grid)"):format(
                  bin, scope))
      return
    end
    local level = e.data and e.data.fill_level   -- a device event: { device, event, data }
    local fill = level and (" (" .. tostring(level) .. "%)") or ""
    open_case[bin] = { id = "pending", scope = grid }
    assert(linli.request("incidentreq/report", grid,
      { title = "垃圾箱满溢: " .. bin .. fill, category = "environment",
        description = "trash bin " .. bin .. " reported full" .. fill,
        building = rec.building }, 5000,
      function(r, status, code)
        if r then
          open_case[bin] = { id = r.id, scope = grid }
          linli.log("info", ("case %s opened in %s for full bin %s"):format(r.id, grid, bin))
        else
          open_case[bin] = nil
          linli.log("warn", ("no case for full bin %s in %s: %s (%s)"):format(
                      bin, grid, tostring(status), tostring(code)))
        end
      end))
  end,
}
