rule { name = "recursion", on = "test/escape",
  run = function()
    local function f(n) return 1 + f(n + 1) end
    return f(1)
  end }
