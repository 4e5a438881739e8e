plugin { name = 'good', version = '1.0.0', sdk = '1.0', family = 'custom', description = 'd',
  capabilities = { 'store.read:residents', 'bus.publish:alarm/#' }, requires = { 'alarms' },
  init = function() end, fini = function() end }
