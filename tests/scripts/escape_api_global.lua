rule { name = "escape_api_global", on = "test/escape",
  run = function()
    assert(not pcall(rawset, _G, "linli", {}), "rawset replaced linli")
    linli = {}
  end }
