rule {
  name = 'probe', on = 'dev/smoke/+/event/alarm',
  capabilities = { 'store.read:residents' },
  when = function(e) return e.value > 10 end,
  limits = { instructions = 1000, time_ms = 10 },
  run = function(e) linli.log('x') end,
}
