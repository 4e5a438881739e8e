-- Memory errors caught by the script: it gets nothing, and the budget ends it.
rule { name = "memory_pcall", on = "test/escape",
  run = function()
    while true do pcall(function() local s = "x"; while true do s = s .. s end end) end
  end }
