rule { name = "escape_string_lib", on = "test/escape",
  run = function() string.upper = function() return "pwned" end end }
