rule { name = "escape_setmetatable_g", on = "test/escape",
  run = function()
    assert(getmetatable(_G) == "locked")
    assert(getmetatable(linli) == "locked" and getmetatable(string) == "locked")
    assert(not pcall(setmetatable, linli, nil), "linli's metatable removed")
    assert(next(linli) == nil, "the proxy must be empty")
    local n = 0
    for k, v in pairs(linli) do n = n + 1 end
    assert(n > 0, "pairs must see the API")
    setmetatable(_G, nil)
  end }
