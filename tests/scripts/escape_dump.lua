rule { name = "escape_dump", on = "test/escape",
  run = function()
    assert(("").dump == nil, "string.dump reachable through a method")
    return string.dump(function() end)
  end }
