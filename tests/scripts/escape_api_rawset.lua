rule { name = "escape_api_rawset", on = "test/escape",
  run = function() rawset(linli, "log", print) end }
