rule { name = "memory_concat", on = "test/escape",
  run = function() local s = "x"; while true do s = s .. s end end }
