-- C functions whose loop length a script chooses: each is bounded or charged.
rule { name = "c_loops", on = "test/escape",
  run = function(e)
    assert(string.rep("", 1e15) == "" and string.rep("", 1e15, "") == "")
    assert(string.find(string.rep("a", 1 << 20), string.rep("a", 1 << 19) .. "b", 1, true) == nil)
    if e.step == "move" then return table.move({}, 1, 1e15, 2) end
    if e.step == "insert" then
      return table.insert(setmetatable({}, { __len = function() return 1e15 end }), 1, "x")
    end
    if e.step == "concat" then
      return table.concat(setmetatable({}, { __index = function() return "" end }), "", 1, 1e12)
    end
  end }
