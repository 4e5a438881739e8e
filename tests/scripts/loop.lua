rule { name = "loop", on = "test/escape", run = function() while true do end end }
