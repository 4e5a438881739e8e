"""Lua fixtures shared by the Lua integration tests: a JSON encoder for what scripts print,
a rule that runs the code of each event it hears, and a script plugin whose command `run`
runs the code it is sent — each as itself, so a test reaches linli.* as a rule or a plugin.
"""

# `enc(v)`: a value as JSON text (records included), global in the script.
ENC = r"""
function enc(v)
  local t = type(v)
  if t == "nil" then return "null" end
  if t == "boolean" then return tostring(v) end
  if t == "number" then
    return math.type(v) == "integer" and string.format("%d", v) or string.format("%.17g", v)
  end
  if t == "string" then
    return '"' .. (v:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end))
      .. '"'
  end
  if t ~= "table" then return '"<' .. t .. '>"' end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  local out = {}
  if #keys == #v and (#keys > 0 or getmetatable(v) == "linli.array") then
    for i = 1, #v do out[i] = enc(v[i]) end
    return "[" .. table.concat(out, ",") .. "]"
  end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do out[#out + 1] = enc(tostring(k)) .. ":" .. enc(v[k]) end
  return "{" .. table.concat(out, ",") .. "}"
end
"""


def caps_list(caps):
    return ", ".join(f'"{c}"' for c in caps)


def probe_rule(name="probe", caps=(), extra="", prelude=ENC):
    """A rule that runs the code of each test/<name> event as itself and prints
    `<name> <tag> => <JSON of its first three results>`."""
    return prelude + f"""
rule {{
  name = "{name}", on = "test/{name}",
  capabilities = {{ {caps_list(caps)} }},
  {extra}
  run = function(e)
    local f = assert(load(e.code, "={name}:" .. e.tag))
    local r = table.pack(f())
    print("{name} " .. e.tag .. " => " .. enc({{ r1 = r[1], r2 = r[2], r3 = r[3], n = r.n }}))
  end,
}}
"""


def keeper(name="keeper", caps=(), extra="", prelude=""):
    """A script plugin whose command `run` runs the Lua code on stdin as the plugin."""
    return prelude + f"""
plugin {{
  name = "{name}", version = "1.0.0", sdk = "1.0", family = "custom",
  description = "runs the code it is given, as itself",
  capabilities = {{ {caps_list(caps)} }},
  {extra}
  init = function()
    assert(linli.cmd_register("run", "", "run the Lua code on stdin", function(args, input)
      local f = assert(load(input, "={name}"))
      local r = table.pack(f())
      return {{ r1 = r[1], r2 = r[2], r3 = r[3], n = r.n }}
    end))
  end,
}}
"""
