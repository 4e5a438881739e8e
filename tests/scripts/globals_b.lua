rule { name = "globals_b", on = "test/globals",
  run = function()
    if secret ~= nil or shared ~= nil then error("escaped: saw another script's globals") end
    secret = "b"; shared = { owner = "b" }
  end }
