"""Integration tests of the Lua API (linli.*) and of script plugins, through a real linlid.

Script plugins live in <script_dir>/apps/NAME.lua and are entries of the same
plugin registry as the .so test plugins (LINLI_TP_DIR): same states, same
`linli plugins` commands, requirements across both kinds. Their linli.* calls
and those of rules are checked like a C plugin's table calls.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import (  # noqa: E402
    SDK_MAJOR, SDK_MINOR,
    BUILD, LINLI, SRC, Daemon, TestFailure, by_name, check, eq, finish, main, wait_for, write)

TP = os.path.abspath(os.environ.get("LINLI_TP_DIR", os.path.join(BUILD, "tests", "plugins")))

ECHO = """-- a script plugin that uses every kind of resource
plugin {
  name = "echo", version = "1.0.0", sdk = "1.0", family = "custom",
  description = "echoes test/in/# as test/out/#",
  capabilities = { "bus.subscribe:test/in/#", "bus.publish:test/out/#",
                   "bus.publish:test/in/self", "bus.publish:test/tick" },
  init = function()
    assert(linli.subscribe("test/in/#", function(e, topic, meta)
      local last = topic:match("[^/]+$")
      assert(linli.publish("test/out/" .. last, { n2 = e.n * 2, from = meta.publisher,
        seq = meta.seq, version = VERSION }, meta.scope))
    end))
    assert(linli.cmd_register("hello", "[NAME]", "say hello", function(args, input)
      return { greeting = "hello, " .. (args[1] or "world"), plugin = linli.plugin_name(),
               scope = linli.plugin_scope(), input = input, version = VERSION }
    end))
    assert(linli.cmd_register("try", "WHAT", "try a call it may not make", function(args)
      local r = {}
      if args[1] == "forbidden" then
        r.ok, r.err, r.code = linli.publish("alarm/x", {})
      elseif args[1] == "outside" then
        r.ok, r.err, r.code = linli.publish("test/out/x", {}, "shanghai")
      elseif args[1] == "subwide" then
        r.ok, r.err, r.code = linli.subscribe("#", function() end)
      elseif args[1] == "twice" then
        r.ok, r.err, r.code = linli.cmd_register("hello", "", "", function() end)
      end
      return r
    end))
    assert(linli.cmd_register("fail", "", "always fails", function()
      return nil, "this command always fails", "LINLI_EPERM"
    end))
    assert(linli.cmd_register("self", "", "publish to its own subscription", function()
      return { seq = linli.publish("test/in/self", { n = 4 }) }
    end))
    ticks = 0
    timer = linli.timer_add(30, 30, function()
      ticks = ticks + 1
      if ticks % 5 == 0 then assert(linli.publish("test/tick", { ticks = ticks })) end
    end)
    assert(linli.cmd_register("ticks", "", "timer ticks so far", function()
      return { ticks = ticks, now = linli.time_now_ms() }
    end))
    assert(linli.cmd_register("stop", "", "cancel the timer", function()
      local ok = linli.timer_cancel(timer)
      local again, err, code = linli.timer_cancel(timer)
      return { ok = ok, again = again, code = code }
    end))
  end,
  fini = function() linli.log("info", "echo fini, version " .. VERSION) end,
}
VERSION = 1
"""

SPIN = """plugin {
  name = "spinner", version = "1.0.0", sdk = "1.0", family = "custom",
  description = "loops when asked",
  capabilities = { "bus.subscribe:spin/#" },
  init = function()
    assert(linli.subscribe("spin/#", function() end))
    linli.timer_add(20, 20, function() n = (n or 0) + 1 end)
    linli.cmd_register("spin", "", "loop forever", function()
      while true do pcall(function() while true do end end) end
    end)
    linli.cmd_register("count", "", "", function() return { n = n } end)
  end,
  fini = function() while true do end end,
  -- A small budget: spent in well under the time limit, however busy the machine.
  limits = { instructions = 200000 },
}
"""


class running:
    """A daemon with script plugins ({file: text}), rules, and .so test plugins ({file: tp})."""

    def __init__(self, apps=None, rules=None, so=None, extra=""):
        self.d = Daemon()
        self.scripts = os.path.join(self.d.dir, "scripts")
        self.pdir = os.path.join(self.d.dir, "plugins")
        for sub in ("apps", "rules"):
            os.makedirs(os.path.join(self.scripts, sub))
        os.makedirs(self.pdir)
        for name, text in (apps or {}).items():
            write(os.path.join(self.scripts, "apps", name), text)
        for name, text in (rules or {}).items():
            write(os.path.join(self.scripts, "rules", name), text)
        for name, src in (so or {}).items():
            shutil.copyfile(os.path.join(TP, src + ".so"), os.path.join(self.pdir, name))
        self.d.write_config(extra=f'script_dirs = [ "{self.scripts}" ];\n'
                                  f'plugin_dirs = [ "{self.pdir}" ];\n{extra}')
        # The admin approves what the plugins and rules declare.
        self.d.grant_declared(self.pdir)
        self.d.grant_scripts(*(os.path.join(self.scripts, sub) for sub in ("apps", "rules")))

    def __enter__(self):
        self.d.scripts = self.scripts
        self.d.apps = os.path.join(self.scripts, "apps")
        self.d.pdir = self.pdir
        return self.d.start()

    def __exit__(self, etype, *rest):
        finish(self.d, etype)  # a clean stop after a case that passed


def by_file(rows):
    return {os.path.basename(r["file"]): r for r in rows}


def fails(d, *args, name=None, needle=None, input=None):
    rc, out, err = d.cli(*args, input=input)
    check(rc == 1, f"linli {' '.join(args)} should fail, got rc {rc}: {out}")
    if name:
        eq(out["name"], name, f"error name of {args}")
    if needle:
        check(needle in out["error"], f"{args}: {needle!r} not in {out['error']!r}")
    return out


def tail(d, pattern, count, seconds):
    """`linli events tail PATTERN --json`, at most `count` events or `seconds`."""
    return subprocess.Popen([LINLI, "--socket", d.sock, "--json", "events", "tail", pattern,
                             "--count", str(count), "--seconds", str(seconds)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def tail_lines(p):
    out, _ = p.communicate(timeout=60)
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def subs(d):
    return d.ok("status")["bus_subscriptions"]


def wait_subs(d, n):
    for _ in range(200):
        if subs(d) >= n:
            return
        time.sleep(0.05)
    raise TestFailure(f"never {n} subscriptions: {d.ok('status')}")


def case_script_plugin_subscribes_publishes_commands_timer():
    with running(apps={"echo.lua": ECHO}) as d:
        rows = d.ok("plugins", "list")
        eq(len(rows), 1, "listed")
        r = rows[0]
        eq((r["name"], r["kind"], r["state"], r["version"], r["family"], r["order"], r["reason"]),
           ("echo", "lua", "running", "1.0.0", "custom", 1, None), "row")
        eq(r["file"], os.path.join(d.apps, "echo.lua"), "file")
        eq(d.ok("status")["plugins"], 1, "status counts it")
        # Subscribe and publish: seen with events tail.
        base = subs(d)
        t = tail(d, "test/out/#", 2, 20)
        wait_subs(d, base + 1)
        d.ok("publish", "test/in/a", '{"n": 21}')
        d.ok("publish", "test/in/b", '{"n": 5}', "--scope", "hefei/baohe")
        ev = tail_lines(t)
        eq([e["topic"] for e in ev], ["test/out/a", "test/out/b"], "answers in order")
        eq([e["payload"]["n2"] for e in ev], [42, 10], "payload table in, table out")
        eq({e["publisher"] for e in ev}, {"echo"}, "publisher is the plugin")
        eq(ev[0]["payload"]["from"], "console", "meta.publisher")
        eq(ev[1]["scope"], "hefei/baohe", "the event's scope is kept")
        # Console commands: linli <plugin> <cmd>.
        h = d.ok("echo", "hello", "张三")
        eq((h["greeting"], h["plugin"], h["scope"]), ("hello, 张三", "echo", "hefei"), "hello")
        eq(d.ok("echo", "hello", "--stdin", input="体")["input"], "体", "--stdin input")
        fails(d, "echo", "fail", name="LINLI_EPERM", needle="echo fail: this command always fails")
        check(any(c["command"] == "echo hello" and c["summary"] == "say hello"
                  for c in d.ok("help")), "help lists echo hello")
        eq(d.ok("echo", "try", "twice")["code"], "LINLI_EEXIST", "a command twice")
        # The timer ticks, and its callback may publish.
        t = tail(d, "test/tick", 1, 10)
        ev = tail_lines(t)
        eq(len(ev), 1, "a timer callback published")
        check(ev[0]["payload"]["ticks"] % 5 == 0, ev)
        wait_for(lambda: d.ok("echo", "ticks")["ticks"] >= 3, "3 ticks")
        check(abs(d.ok("echo", "ticks")["now"] - time.time() * 1000) < 60000, "time_now_ms")
        # Every resource is listed by plugins info.
        info = d.ok("plugins", "info", "echo")
        eq((info["kind"], info["sdk"], info["scope"]), ("lua", "1.0", "hefei"), "info")
        kinds = sorted(x["kind"] for x in info["resources"])
        eq(kinds, ["command"] * 6 + ["subscription", "timer"], f"resources {info['resources']}")
        check(any(x["kind"] == "subscription" and x["what"].endswith(" to test/in/#")
                  for x in info["resources"]), info)
        eq(info["script"]["state"], "ready", "script state")
        stop = d.ok("echo", "stop")
        eq((stop["ok"], stop.get("again"), stop["code"]), (True, None, "LINLI_ENOENT"), "cancel")
        n = d.ok("echo", "ticks")["ticks"]
        time.sleep(0.2)
        eq(d.ok("echo", "ticks")["ticks"], n, "no tick after timer_cancel")
        eq(len(d.ok("plugins", "info", "echo")["resources"]), 7, "timer gone")
        eq(d.stop(), 0, "stop")
        check("echo fini, version 1" in d.logtext(), "fini ran at stop")


def case_publishing_to_itself_is_queued():
    """A command that publishes to the script's own subscription: delivered after it returns."""
    with running(apps={"echo.lua": ECHO}) as d:
        t = tail(d, "test/out/self", 1, 10)
        wait_subs(d, 2)
        seq = d.ok("echo", "self")["seq"]
        ev = tail_lines(t)
        eq(len(ev), 1, "the script heard its own event")
        eq((ev[0]["payload"]["n2"], ev[0]["payload"]["seq"]), (8, seq), "answered its own event")


def case_refused_capability_and_scope():
    with running(apps={"echo.lua": ECHO}) as d:
        base = subs(d)
        r = d.ok("echo", "try", "forbidden")
        eq((r.get("ok"), r["code"]), (None, "LINLI_EPERM"), "undeclared topic")
        eq(r["err"], "plugin 'echo' holds no granted capability bus.publish:alarm/x", "why")
        r = d.ok("echo", "try", "outside")
        eq(r["code"], "LINLI_EPERM", "outside scope")
        check("may not act on shanghai: outside its jurisdiction" in r["err"], r)
        r = d.ok("echo", "try", "subwide")
        eq(r["code"], "LINLI_EPERM", "wider subscription")
        eq(subs(d), base, "no subscription made")
        log = d.logtext()
        check("echo: publish alarm/x: plugin 'echo' holds no granted capability" in log, log)
        check("echo: subscribe #: plugin 'echo' holds no granted capability bus.subscribe:#"
              in log, log)
        # An init that asks for what it did not declare fails like a C init.
        write(os.path.join(d.apps, "greedy.lua"), """plugin {
  name = "greedy", version = "1.0.0", sdk = "1.0", family = "custom", description = "d",
  capabilities = {},
  init = function()
    local id, err = linli.subscribe("alarm/#", function() end)
    if not id then return false, err end
  end,
}""")
        d.stop()
        d.start()
        g = d.ok("plugins", "info", "greedy")
        eq(g["state"], "failed", "greedy state")
        check("init returned false: plugin 'greedy' holds no granted capability "
              "bus.subscribe:alarm/#" in g["reason"], g["reason"])
        eq((g["resources"], g["script"]), ([], None), "nothing of it remains")


def case_refusals_are_reported_like_so():
    apps = {
        "bad_manifest.lua": "plugin { name = 'bad_manifest', sdk = '1.0', family = 'custom',"
                            " description = 'd', capabilities = {} }",
        "newer.lua": "plugin { name = 'newer', version = '1.0.0', sdk = '1.9', family = 'custom',"
                     " description = 'd', capabilities = {} }",
        "syntax.lua": "plugin {\n  name = 'syntax',\n  init = function(\n}\n",
        "missing.lua": "plugin { name = 'missing', version = '1.0.0', sdk = '1.0', family = 'custom',"
                       " description = 'd', capabilities = {}, requires = { 'nosuch' } }",
        "cyc_x.lua": "plugin { name = 'cyc_x', version = '1.0.0', sdk = '1.0', family = 'custom',"
                     " description = 'd', capabilities = {}, requires = { 'cyc_y' } }",
        "cyc_y.lua": "plugin { name = 'cyc_y', version = '1.0.0', sdk = '1.0', family = 'custom',"
                     " description = 'd', capabilities = {}, requires = { 'cyc_x' } }",
        "status.lua": "plugin { name = 'status', version = '1.0.0', sdk = '1.0', family = 'custom',"
                      " description = 'd', capabilities = {} }",
        "rule.lua": "rule { name = 'r', on = 'a/b', run = function() end }",
        "badcap.lua": "plugin { name = 'badcap', version = '1.0.0', sdk = '1.0', family = 'custom',"
                      " description = 'd', capabilities = { 'bus.publish:#/x' } }",
        "good.lua": "plugin { name = 'good', version = '1.0.0', sdk = '1.0', family = 'custom',"
                    " description = 'a duplicate of the .so', capabilities = {} }",
        "loops.lua": "while true do end",
        "long.lua": "plugin { name = '" + "n" * 40 + "', version = '1.0.0', sdk = '1.0',"
                    " family = 'custom', description = 'd', capabilities = {} }",
        "ok.lua": "plugin { name = 'ok', version = '1.0.0', sdk = '1.0', family = 'custom',"
                  " description = 'd', capabilities = {} }",
    }
    with running(apps=apps, so={"good.so": "tp_good"}) as d:
        rows = by_file(d.ok("plugins", "list"))
        eq(len(rows), len(apps) + 1, "every file listed")
        want = {
            "bad_manifest.lua": "bad_manifest.lua:1: plugin 'bad_manifest': version must be a "
                                "string (got nothing)",
            "newer.lua": f"plugin 'newer': needs SDK 1.9, this host offers {SDK_MAJOR}.{SDK_MINOR}",
            "syntax.lua": "syntax.lua:4:",
            "missing.lua": "requires 'nosuch', which is not installed",
            "cyc_x.lua": "dependency cycle among",
            "cyc_y.lua": "dependency cycle among",
            "status.lua": "name 'status' is a kernel command word",
            "rule.lua": "declares a rule where a plugin is expected",
            "badcap.lua": "capabilities[1]: capability 'bus.publish:#/x': '#/x' is not a topic",
            "good.lua": f"duplicate name 'good': already provided by {d.pdir}/good.so",
            # Stopped by its budget, or by the time limit first on a loaded machine.
            "loops.lua": ("loops.lua:1: instruction budget exhausted",
                          "loops.lua:1: time limit exceeded"),
            "long.lua": f"plugin name '{'n' * 40}' is longer than 31 bytes",
        }
        for f, reason in want.items():
            r = rows[f]
            eq((r["state"], r["kind"]), ("refused", "lua"), f"{f} state")
            reasons = reason if isinstance(reason, tuple) else (reason,)
            check(any(x in r["reason"] for x in reasons), f"{f}: {reason!r} not in {r['reason']!r}")
            lines = [ln for ln in d.logtext().splitlines()
                     if f"{d.apps}/{f}: refused:" in ln]
            eq(len(lines), 1, f"one log line for {f}")
        eq(rows["newer.lua"]["name"], None, "no name from a refused manifest")
        eq((rows["ok.lua"]["state"], rows["good.so"]["state"]), ("running", "running"), "others")
        eq(d.ok("status")["plugins"], 2, "two run")
        fails(d, "plugins", "enable", "newer.lua", name="LINLI_EINVAL", needle="no plugin name")
        fails(d, "plugins", "enable", "cyc_x", name="LINLI_ESTATE",
              needle="cyc_x requires 'cyc_y', which is refused")


def needs(name, req, caps="{}", extra=""):
    return (f"plugin {{ name = '{name}', version = '1.0.0', sdk = '1.0', family = 'custom',"
            f" description = 'needs {req}', capabilities = {caps}, requires = {{ '{req}' }},"
            f" {extra} }}\n")


def case_requirements_across_kinds():
    # A script plugin requiring a .so one, and a .so one (dep_a) requiring a script (dep_b).
    apps = {"a_needbus.lua": needs("needbus", "tp_bus", extra="init = function()"
                                   " linli.log('info', 'needbus init') end"),
            "dep_b.lua": "plugin { name = 'dep_b', version = '2.0.0', sdk = '1.0', family ="
                         " 'custom', description = 'a script dep_b', capabilities = {},"
                         " init = function() linli.log('info', 'dep_b init') end,"
                         " fini = function() linli.log('info', 'dep_b fini') end }"}
    with running(apps=apps, so={"tp_bus.so": "tp_bus", "dep_a.so": "tp_dep_a"}) as d:
        rows = by_name(d.ok("plugins", "list"))
        eq({n: (r["kind"], r["state"]) for n, r in rows.items()},
           {"needbus": ("lua", "running"), "dep_b": ("lua", "running"),
            "tp_bus": ("so", "running"), "dep_a": ("so", "running")}, "all run")
        check(rows["tp_bus"]["order"] < rows["needbus"]["order"], "the .so first")
        check(rows["dep_b"]["order"] < rows["dep_a"]["order"], "the script first")
        eq(d.ok("plugins", "info", "tp_bus")["required_by"], ["needbus"], "required_by")
        eq(d.ok("plugins", "info", "dep_b")["required_by"], ["dep_a"], "required_by")
        fails(d, "plugins", "disable", "tp_bus", name="LINLI_EBUSY", needle="'needbus' requires it")
        fails(d, "plugins", "disable", "dep_b", name="LINLI_EBUSY", needle="'dep_a' requires it")
        d.ok("plugins", "disable", "needbus")
        d.ok("plugins", "disable", "tp_bus")
        fails(d, "plugins", "enable", "needbus", name="LINLI_ESTATE",
              needle="needbus requires 'tp_bus', which is disabled")
        eq(by_name(d.ok("plugins", "list"))["needbus"]["state"], "blocked", "blocked")
        d.ok("plugins", "enable", "tp_bus")
        eq(d.ok("plugins", "enable", "needbus")["state"], "running", "enabled in order")
        eq(d.stop(), 0, "stop")
        log = d.logtext()
        check(log.index("dep_a: fini dep_a") < log.index("dep_b fini"), "fini in reverse order")
    # Without the .so, the script plugin is refused like a .so would be.
    with running(apps={"needbus.lua": needs("needbus", "tp_bus")}) as d:
        r = d.ok("plugins", "info", "needbus")
        eq((r["state"], r["reason"]), ("refused", "requires 'tp_bus', which is not installed"),
           "missing .so")


def case_reload_to_broken_keeps_old():
    with running(apps={"echo.lua": ECHO}) as d:
        path = os.path.join(d.apps, "echo.lua")
        base = subs(d)
        order = d.ok("plugins", "info", "echo")["order"]
        # A syntax error: refused, the old one runs on.
        write(path, ECHO.replace("VERSION = 1", "VERSION = = 2"))
        fails(d, "plugins", "reload", "echo", name="LINLI_EINVAL", needle="echo.lua:52: unexpected symbol")
        check("reload of echo refused, echo 1.0.0 keeps running" in d.logtext(), d.logtext())
        eq(d.ok("echo", "hello")["version"], 1, "old version answers")
        # An init that fails: the new one is rolled back, the old one's commands come back.
        write(path, ECHO.replace("VERSION = 1", "VERSION = 2").replace(
            "init = function()", "init = function() assert(linli.cmd_register('extra', '', '',"
            " function() end)); error('not today')", 1))
        out = fails(d, "plugins", "reload", "echo", name="LINLI_EINVAL",
                    needle="reload of echo failed, echo 1.0.0 keeps running: init failed:")
        check("echo.lua:" in out["error"] and "not today" in out["error"], out)
        eq(d.ok("echo", "hello")["version"], 1, "old version still answers")
        fails(d, "echo", "extra", name="LINLI_ENOENT")
        eq(subs(d), base, "the failed one's subscription is gone")
        t = tail(d, "test/out/#", 1, 10)
        wait_subs(d, base + 1)
        d.ok("publish", "test/in/x", '{"n": 1}')
        eq(tail_lines(t)[0]["payload"]["version"], 1, "old subscription delivers")
        # A good version: swapped, the old one's fini ran after the new init.
        write(path, ECHO.replace("VERSION = 1", "VERSION = 2").replace("1.0.0", "1.1.0"))
        row = d.ok("plugins", "reload", "echo")
        eq((row["state"], row["version"], row["kind"]), ("running", "1.1.0", "lua"), "reloaded")
        eq(d.ok("echo", "hello")["version"], 2, "new version answers")
        check("echo fini, version 1" in d.logtext(), "old fini")
        info = d.ok("plugins", "info", "echo")
        check(info["order"] > order, "new order")
        eq(len(info["resources"]), 8, "resources not doubled")
        eq(subs(d), base, "subscriptions not doubled")


def case_faulted_plugin_is_reported():
    with running(apps={"spin.lua": SPIN, "echo.lua": ECHO}) as d:
        base = subs(d)
        wait_for(lambda: d.ok("spinner", "count").get("n"), "ticks")
        t0 = time.time()
        fails(d, "spinner", "spin", name="LINLI_ELIMIT", needle="instruction budget exhausted")
        check(time.time() - t0 < 5, "the loop was stopped in time")
        r = by_name(d.ok("plugins", "list"))["spinner"]
        eq((r["state"], r["kind"]), ("faulted", "lua"), "faulted in plugins list")
        check("spin.lua:9: instruction budget exhausted" in r["reason"], r["reason"])
        info = d.ok("plugins", "info", "spinner")
        eq((info["resources"], info["order"]), ([], 0), "everything it made is gone")
        eq(info["script"]["state"], "faulted", "script state")
        eq(info["script"]["log"][-1]["kind"], "fault", "its log")
        eq(subs(d), base - 1, "its subscription is gone")
        fails(d, "spinner", "count", name="LINLI_ENOENT")
        eq(d.ok("status")["plugins"], 1, "one runs")
        check("plugins: spinner faulted, 4 resource(s) it held removed" in d.logtext(),
              d.logtext())
        # The others go on.
        eq(d.ok("echo", "hello")["greeting"], "hello, world", "echo unharmed")
        # Reload restarts it.
        eq(d.ok("plugins", "reload", "spinner")["state"], "running", "reloaded")
        eq(subs(d), base, "subscription back")
        wait_for(lambda: d.ok("spinner", "count").get("n"), "ticks again")
        # A fini that loops is stopped, and the plugin is disabled all the same.
        row = d.ok("plugins", "disable", "spinner")
        eq(row["state"], "disabled", "disabled")
        eq((d.ok("plugins", "info", "spinner")["resources"], subs(d)), ([], base - 1),
           "nothing of it remains")
        check("spin.lua:13: instruction budget exhausted" in d.logtext(), "fini stopped")


def case_nothing_remains_after_unload():
    rule = """rule {
  name = "watch", on = "test/rule/#", capabilities = { "bus.subscribe:test/extra/#" },
  run = function(e)
    if e.sub then assert(linli.subscribe("test/extra/#", function() end)) end
    if e.timer then assert(linli.timer_add(10, 10, function() end)) end
    if e.loop then while true do end end
  end,
}
"""
    with running(apps={"echo.lua": ECHO}, rules={"watch.lua": rule}) as d:
        base = subs(d)
        d.ok("plugins", "disable", "echo")
        eq(subs(d), base - 1, "disable drops the plugin's subscription")
        eq(d.ok("status")["plugins"], 0, "none running")
        d.ok("plugins", "enable", "echo")
        eq(subs(d), base, "enable brings it back")
        # A rule's subscriptions made in run go with the rule.
        d.ok("publish", "test/rule/a", '{"sub": true}')
        d.ok("publish", "test/rule/b", '{"sub": true}')
        wait_for(lambda: subs(d) == base + 2, "rule subscriptions")
        d.ok("rules", "remove", "watch")
        eq(subs(d), base - 1, "the rule's own and its run's subscriptions are gone")
        # Reinstalled, then faulted: nothing of it remains either.
        # Removing it withdrew its grants: reinstalling needs them again.
        rc, out, err = d.cli("rules", "install", "watch.lua", "--stdin", input=rule)
        check(rc != 0 and "no admin granted: bus.subscribe:test/extra/#" in err, (rc, err))
        d.ok("rules", "install", "watch.lua", "--stdin", "--grant", input=rule)
        eq(subs(d), base, "reinstalled")
        d.ok("publish", "test/rule/c", '{"sub": true, "timer": true}')
        wait_for(lambda: subs(d) == base + 1, "rule subscription")
        d.ok("publish", "test/rule/d", '{"loop": true}')
        wait_for(lambda: by_name(d.ok("rules", "list"))["watch"]["state"] == "faulted", "fault")
        eq(subs(d), base - 1, "a faulted rule holds nothing")
        d.ok("rules", "reload", "watch")
        eq(subs(d), base, "reloaded")


def case_rule_publish_checks():
    rule = """rule {
  name = "relay", on = "test/rule/#",
  capabilities = { "bus.publish:test/out/#" },
  run = function(e, topic)
    local seq = assert(linli.publish("test/out/relay", { got = e.n, by = linli.plugin_name() }))
    local ok, err, code = linli.publish("alarm/x", { n = e.n })
    print("undeclared:", ok, code, err)
    ok, err, code = linli.publish("test/out/far", {}, "shanghai")
    print("outside:", ok, code, err)
    ok, err, code = linli.subscribe("alarm/#", function() end)
    print("subscribe:", ok, code, err)
    print("cmd:", pcall(linli.cmd_register, "x", "", "", function() end))
  end,
}
"""
    with running(rules={"relay.lua": rule}) as d:
        t = tail(d, "#", 3, 2)
        wait_subs(d, 2)
        d.ok("publish", "test/rule/a", '{"n": 7}')
        ev = tail_lines(t)
        topics = [e["topic"] for e in ev]
        eq(topics[:2], ["test/rule/a", "test/out/relay"], f"relayed: {topics}")
        check("alarm/x" not in topics and "test/out/far" not in topics, f"refused: {topics}")
        eq(ev[1]["payload"], {"got": 7, "by": "relay"}, "payload")
        eq(ev[1]["publisher"], "rule relay", "publisher")
        d.wait_log("relay: cmd:")
        log = d.logtext()
        check("relay: undeclared:\tnil\tLINLI_EPERM\trule 'relay' holds no granted capability "
              "bus.publish:alarm/x" in log, log)
        check("relay: publish alarm/x: rule 'relay' holds no granted capability" in log, log)
        check("relay: outside:\tnil\tLINLI_EPERM\trule 'relay' of hefei may not act on "
              "shanghai: outside its jurisdiction" in log, log)
        check("relay: subscribe:\tnil\tLINLI_EPERM\trule 'relay' holds no granted capability "
              "bus.subscribe:alarm/#" in log, log)
        check("relay: cmd:\tfalse\t" in log and "only script plugins have console commands"
              in log, log)
        eq(by_name(d.ok("rules", "list"))["relay"]["state"], "ready", "refusals are not errors")
        eq(d.ok("rules", "show", "relay")["capabilities"], ["bus.publish:test/out/#"], "show")
        # A declaration with a bad capability is refused by check and install.
        bad = rule.replace("bus.publish:test/out/#", "bus.publish")
        rc, out, err = d.cli("rules", "check", "bad.lua", "--stdin", input=bad)
        check(rc == 1 and "rule 'relay': capabilities[1]: 'bus.publish' needs an argument" in err,
              err)


def case_faulted_rule_is_reported():
    rule = """rule {
  name = "hog", on = "test/hog",
  run = function() local t = {} while true do t[#t + 1] = string.rep("x", 1000) end end,
}
"""
    with running(rules={"hog.lua": rule}, extra="lua = { memory_kb = 1024; };\n") as d:
        base = subs(d)
        d.ok("publish", "test/hog", "{}")
        wait_for(lambda: by_name(d.ok("rules", "list"))["hog"]["state"] == "faulted", "fault")
        r = by_name(d.ok("rules", "list"))["hog"]
        check("memory limit reached" in r["problem"], r)
        eq(subs(d), base - 1, "its subscription is gone")
        d.ok("status")


def case_install_script_plugin():
    with running() as d:
        src = os.path.join(d.dir, "echo.lua")
        write(src, ECHO)
        row = d.ok("plugins", "install", src, "--grant")
        eq((row["name"], row["kind"], row["state"], row["file"]),
           ("echo", "lua", "running", os.path.join(d.apps, "echo.lua")), "installed")
        with open(os.path.join(d.apps, "echo.lua")) as f:
            eq(f.read(), ECHO, "copied")
        eq(d.ok("echo", "hello")["plugin"], "echo", "runs")
        fails(d, "plugins", "install", src, name="LINLI_EEXIST", needle="already installed")
        bad = os.path.join(d.dir, "bad.lua")
        write(bad, "plugin { name = 'bad' }")
        fails(d, "plugins", "install", bad, name="LINLI_EINVAL", needle="version must be a string")
        fails(d, "plugins", "install", os.path.join(d.dir, "nosuch.lua"), name="LINLI_EINVAL",
              needle="cannot open")
        check(sorted(os.listdir(d.apps)) == ["echo.lua"], os.listdir(d.apps))
        d.stop()
        d.start()
        eq(by_name(d.ok("plugins", "list"))["echo"]["state"], "running", "after restart")


DESK = """
plugin { name = "desk", version = "1.0.0", sdk = "1.1", family = "custom", description = "d",
  capabilities = { "bus.publish:desk/#" },
  init = function()
    assert(linli.action_declare("desk.ack", "operator", nil, nil, "acknowledge"))
    assert(linli.action_declare("desk.close", "operator", "district", "desk.lead"))
    local bad = {}
    bad[1] = select(2, linli.action_declare("alarms.x", "operator"))
    bad[2] = select(2, linli.action_declare("desk.y", "chief"))
    bad[3] = select(2, linli.action_declare("desk.z", "viewer", "planet"))
    bad[4] = select(2, linli.action_declare("desk.ack", "viewer"))
    local kept
    local stale
    linli.cmd_register("who", "", "", function(args, input, caller)
      return { kind = caller.kind, name = caller.name, role = caller.role, scope = caller.scope,
               level = caller.level, duties = table.concat(caller.duties, " "), bad = bad }
    end)
    linli.cmd_register("ack", "", "", function(args, input, caller) return { by = caller.name } end)
    assert(linli.cmd_require("ack", "desk.ack"))
    linli.cmd_register("close", "SCOPE", "", function(args, input, caller)
      local ok, msg, code = linli.caller_may(caller, "desk.close", args[1])
      if not ok then return nil, msg, code end
      return { closed = args[1] }
    end)
    linli.cmd_register("forged", "", "", function(args, input, caller)
      local copy = {}
      for k, v in pairs(caller) do copy[k] = v end
      copy.role = "admin"
      return { r = { linli.caller_may(copy, "desk.ack") } }
    end)
    linli.cmd_register("keep", "", "", function(args, input, caller)
      kept = caller
      linli.timer_add(0, 0, function() stale = { linli.caller_may(kept, "desk.ack") } end)
    end)
    linli.cmd_register("stale", "", "", function() return { r = stale } end)
    linli.cmd_register("holders", "DUTY", "", function(args)
      return { r = { linli.duty_holders(args[1], args[2]) } }
    end)
    linli.cmd_register("shout", "", "", function()
      return { r = { linli.publish("desk/shout", { x = 1 }) } }
    end)
    linli.cmd_register("note", "ACTION SCOPE RESULT", "", function(args)
      local scope = args[2] ~= "-" and args[2] or nil
      return { r = { linli.audit(args[1], scope, "case-1", args[3], "from Lua") } }
    end)
  end }
"""


def lua_ret(r):
    """`{ f() }` of a Lua function returning nil, msg, code packs as {"2": msg, "3": code}."""
    return [None, r.get("2"), r.get("3")] if isinstance(r, dict) else r


def case_script_plugin_serves_its_caller():
    """The Lua mirror of SDK 1.1's caller members: the handler's caller, its actions, duties,
    and acting as the caller."""
    with running(apps={"desk.lua": DESK}) as d:
        w = d.ok("desk", "who")
        eq((w["kind"], w["name"], w["role"], w["scope"], w["level"], w["duties"]),
           ("person", "admin", "admin", "hefei", "city", ""), "the console's admin")
        for i, needle in enumerate(["a name 'desk.WORD'", "least role 'chief'",
                                    "level 'planet' is none of", "declared already"]):
            check(needle in w["bad"][i], f"{needle!r} not in {w['bad'][i]!r}")
        viewer = d.account("v1", "viewer", node="hefei/baohe")
        op_c = d.account("op_c", "operator", node="hefei/baohe/binhu/yuelan")
        op_d = d.account("op_d", "operator", node="hefei/baohe")

        def as_(tok, *args):
            return d.cli("desk", *args, env={"LINLI_SESSION": tok})

        rc, _, err = as_(viewer, "ack")
        check(rc == 1 and "needs role operator or above; 'v1' is viewer" in err, err)
        eq(as_(op_c, "ack")[1]["by"], "op_c", "an operator acks")
        rc, _, err = as_(op_c, "close", "hefei/baohe/binhu/yuelan")
        check(rc == 1 and "'op_c' sits at community" in err, err)
        rc, _, err = as_(op_d, "close", "hefei/baohe/binhu")
        check(rc == 1 and "needs the duty desk.lead" in err, err)
        d.ok("accounts", "assign", "op_d", "desk.lead")
        eq(as_(op_d, "close", "hefei/baohe/binhu")[1]["closed"], "hefei/baohe/binhu", "duty")
        rc, _, err = as_(op_d, "close", "hefei/shushan")
        check(rc == 1 and "outside its jurisdiction" in err, err)
        eq(as_(op_d, "who")[1]["duties"], "desk.lead", "the caller's duties")
        # A table that is not the handler's caller is no caller.
        r = lua_ret(as_(viewer, "forged")[1]["r"])
        eq(r[2], "LINLI_ESTATE", f"a forged caller: {r}")
        d.ok("desk", "keep")
        wait_for(lambda: d.ok("desk", "stale").get("r"), "the timer")
        eq(lua_ret(d.ok("desk", "stale")["r"])[2], "LINLI_ESTATE",
           "a kept caller outside its handler")
        h = d.ok("desk", "holders", "desk.lead")["r"][0]
        eq([(x["user"], x["scope"]) for x in h], [("op_d", "hefei/baohe")], "holders")
        check(as_(op_c, "holders", "desk.lead")[1]["r"][0] in ([], {}), "the caller's reach")
        # Acting as the caller: a viewer cannot publish through the plugin; an operator can.
        r = lua_ret(as_(viewer, "shout")[1]["r"])
        check(r[0] is None and "may not events.publish" in r[1], f"viewer: {r}")
        check(as_(op_d, "shout")[1]["r"][0], "operator publishes")
        rows = d.ok("audit", "--via", "plugin:desk", "--result", "denied")
        check(any(a["who"] == "v1" and a["action"] == "events.publish" for a in rows), rows)
        # linli.audit: filed under the caller via the app; refusals say why, file nothing.
        eq(as_(op_c, "note", "desk.move", "-", "denied")[1]["r"], [True], "filed")
        r = lua_ret(as_(op_c, "note", "desk.move", "hefei/baohe", "denied")[1]["r"])
        check(r[2] == "LINLI_EPERM" and "outside the caller's jurisdiction" in r[1], r)
        r = lua_ret(d.ok("desk", "note", "other.move", "-", "allowed")["r"])
        check(r[2] == "LINLI_EINVAL" and "a name 'desk.WORD'" in r[1], r)
        rows = [a for a in d.ok("audit", "--via", "plugin:desk") if a["action"] == "desk.move"]
        eq([(a["who"], a["scope"], a["object"], a["result"], a["detail"]) for a in rows],
           [("op_c", "hefei/baohe/binhu/yuelan", "case-1", "denied", "from Lua")], "the entry")


def case_linli_table_is_the_api():
    """The Lua API mirrors the table and refuses to act while a file loads."""
    app = """local names = {}
for k in pairs(linli) do names[#names + 1] = k end
table.sort(names)
NAMES = table.concat(names, " ")
local ok, err = pcall(linli.publish, "test/out/x", {})
LOADERR = err
plugin { name = "names", version = "1.0.0", sdk = "1.0", family = "custom",
  description = "d", capabilities = {},
  init = function()
    linli.cmd_register("names", "", "", function()
      local marked = linli.array({ 1, 2 })
      marked[3] = nil
      local ok, aerr = pcall(linli.array, setmetatable({}, {}))
      local back = linli.array(linli.array())
      return { names = NAMES, loaderr = LOADERR, name = linli.plugin_name(), major = linli.major,
               minor = linli.minor, empty = linli.array(), plain = {}, pair = marked,
               mt = getmetatable(back), again = back, aerr = aerr,
               mixed = (function() local t = linli.array(); t.x = 1; return t end)() }
    end)
  end }
"""
    with running(apps={"names.lua": app}) as d:
        r = d.ok("names", "names")
        # The 1.0 members are all there; the rest is what linli.lua declares (below).
        check(set(["cmd_register", "cmd_unregister", "dev_command", "dev_get", "dev_info",
                   "device_classes", "log", "major", "minor", "plugin_config", "plugin_name",
                   "plugin_scope", "publish", "scope", "set_error", "store_delete", "store_get",
                   "store_on_commit", "store_put", "store_scan", "store_update", "subscribe",
                   "time_now_ms", "timer_add", "timer_cancel", "unsubscribe"])
              <= set(r["names"].split()), f"linli.*: {r['names']}")
        check("linli.publish: not available while the file loads" in r["loaderr"], r)
        eq((r["name"], r["major"], r["minor"]), ("names", SDK_MAJOR, SDK_MINOR), "fields")
        # linli.array: an empty list is packed as [], a plain empty table as {}.
        eq((r["empty"], r["plain"], r["pair"], r["again"], r["mixed"], r["mt"]),
           ([], {}, [1, 2], [], {"x": 1}, "linli.array"), "linli.array")
        check("linli.array: the table already has a metatable" in r["aerr"], r["aerr"])
        # The editor definitions and the reference describe exactly this table.
        with open(os.path.join(SRC, "sdk", "lua", "linli.lua")) as f:
            text = f.read()
        declared = set(re.findall(r"^function linli\.(\w+)\(", text, re.M))
        declared |= set(re.findall(r"^---@field (\w+) ", text.split("linli = {}")[0]
                                   .split("---@class linli\n")[1], re.M))
        eq(sorted(declared), r["names"].split(), "sdk/lua/linli.lua declares linli.*")
        with open(os.path.join(SRC, "sdk", "lua-api.md")) as f:
            doc = f.read()
        for n in r["names"].split():
            check(f"linli.{n}" in doc, f"sdk/lua-api.md lacks linli.{n}")
        # Its examples are valid declarations.
        blocks = re.findall(r"```lua\n(.*?)```", doc, re.S)
        check(len(blocks) >= 5, f"examples in sdk/lua-api.md: {len(blocks)}")
        for i, b in enumerate(blocks):
            d.ok("rules", "check", f"example{i}.lua", "--stdin", input=b)


if __name__ == "__main__":
    sys.exit(main(dict(globals())))
