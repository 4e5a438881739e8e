rule { name = "escape_loadlib", on = "test/escape",
  run = function() return package.loadlib("libc.so.6", "system") end }
