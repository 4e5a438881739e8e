-- A well-behaved rule run after every escape attempt: it must still work.
count = 0
rule {
  name = "witness",
  on = "dev/smoke/+/event/alarm",
  description = "counts alarms above a threshold",
  when = function(e, topic)
    return e.kind == "alarm" and e.value > 10 and topic:match("^dev/smoke/") ~= nil
  end,
  run = function(e)
    count = count + 1
    assert(("abc"):upper() == "ABC", "string methods changed")
    assert(string.find("hello world", "o w", 1, true) == 5)
    assert(select(2, ("a,b,c"):gsub(",", ";")) == 2)
    if e.expect and count ~= e.expect then error("count is " .. count) end
  end,
}
