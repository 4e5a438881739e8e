rule { name = "escape_io", on = "test/escape",
  run = function() return io.open("/etc/passwd"):read("a") end }
