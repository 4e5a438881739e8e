rule { name = "memory_table", on = "test/escape",
  run = function() local t, i = {}, 0; while true do i = i + 1; t[i] = { i } end end }
