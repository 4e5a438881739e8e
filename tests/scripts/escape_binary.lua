-- A binary chunk is refused whether the mode asks for it or not.
rule { name = "escape_binary", on = "test/escape",
  run = function()
    local f, e = load("\27LuaT\0\25\147\r\n\26\n")
    assert(f == nil and e:find("binary chunk", 1, true), "binary chunk loaded")
    local g = load("return 1 + 1")
    assert(g() == 2, "text chunks must load")
    return load("\27LuaT\0", "x", "b")
  end }
