-- Top-level code that never ends: the load is stopped and refused.
while true do end
rule { name = "endless_load", on = "x/y", run = function() end }
