-- Finalizers run with hooks off: a looping __gc could never be stopped.
rule { name = "escape_gc", on = "test/escape",
  run = function()
    assert(not pcall(collectgarbage), "collectgarbage() must be refused")
    assert(type(collectgarbage("count")) == "number")
    setmetatable({}, { __gc = function() while true do end end })
  end }
