-- The script catches the budget error and tries to go on: it must not.
rule { name = "loop_pcall", on = "test/escape",
  run = function()
    while true do
      local ok, e = pcall(function() while true do end end)
      xpcall(function() while true do end end, function() while true do end end)
      caught = e
    end
  end }
