-- The strings' metatable is locked: its __index cannot be reached or changed.
rule { name = "escape_getmetatable_string", on = "test/escape",
  when = function() return ("x"):upper() == "X" end,
  run = function()
    assert(getmetatable("") == "locked")
    assert(not pcall(setmetatable, "", {}))
    getmetatable("").__index.upper = function() return "pwned" end
  end }
