rule { name = "escape_debug", on = "test/escape",
  run = function() return debug.getregistry() end }
