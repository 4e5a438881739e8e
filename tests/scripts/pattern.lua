-- A pattern that backtracks for minutes in stock Lua.
rule { name = "pattern", on = "test/escape",
  run = function() return string.find(string.rep("a", 100000), ".-.-.-.-.-.-.-.-.-b") end }
