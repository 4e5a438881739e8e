rule { name = "escape_require", on = "test/escape",
  run = function() assert(dofile == nil and loadfile == nil); return require("io") end }
