-- A coroutine that yields forever, resumed forever; and one looping inside.
rule { name = "coroutine_forever", on = "test/escape",
  run = function()
    coroutine.resume(coroutine.create(function() while true do end end))
    local co = coroutine.wrap(function() while true do coroutine.yield() end end)
    while true do co() end
  end }
