rule { name = "memory_rep", on = "test/escape",
  run = function() return #string.rep("x", 1 << 30) end }
