rule { name = "escape_api", on = "test/escape",
  run = function() linli.log = function() end end }
