rule { name = "pattern_gsub", on = "test/escape",
  run = function()
    local ok = pcall(string.gsub, string.rep("a", 50000), "(.-)(.-)(.-)(.-)b", "%1")
    return string.match(string.rep("a", 100000), "^(a*)*b")
  end }
