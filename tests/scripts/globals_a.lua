-- Two scripts with the same global names: each sees only its own.
rule { name = "globals_a", on = "test/globals",
  when = function() return secret == 42 and shared.owner == "a" end,
  run = function() secret = 42; shared = { owner = "a" } end }
