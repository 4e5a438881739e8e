rule { name = "escape_os_execute", on = "test/escape",
  run = function()
    assert(os.time() > 0 and os.date("%Y") and os.clock() >= 0 and os.difftime(2, 1) == 1)
    assert(os.getenv == nil and os.exit == nil and os.remove == nil and os.tmpname == nil)
    return os.execute("touch /tmp/linli-escaped")
  end }
