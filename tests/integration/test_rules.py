"""Integration tests of the Lua rules through a real linlid and the real console.

Rules are loaded from script_dirs at start, checked, installed, tested, reloaded
and removed with `linli rules ...`; a rule that breaks a limit is stopped,
reported faulted by `rules list`, and nothing else is hurt.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import LINLID, SDK, Daemon, by_name, check, eq, main  # noqa: E402

GOOD = """-- smoke alarms above a threshold
rule {
  name = "smoke_high",
  on = "dev/smoke/+/event/alarm",
  when = function(e) return e.level ~= nil and e.level > 3 end,
  run = function(e, topic) print("alarm from " .. topic) end,
}
"""

LOOP = """rule {
  name = "spin",
  on = "dev/+/+/event/#",
  when = function(e) while true do pcall(function() while true do end end) end end,
  run = function() end,
  -- A small budget: spent in well under the time limit, however busy the machine.
  limits = { instructions = 200000 },
}
"""

PATTERN = """rule {
  name = "regex",
  on = "test/pattern",
  when = function(e)
    return string.find(string.rep("a", 100000), ".-.-.-.-.-.-.-.-.-b") ~= nil
  end,
  run = function() end,
}
"""


class running:
    def __init__(self, lua="", rules=None, **kw):
        self.d = Daemon(**kw)
        self.scripts = os.path.join(self.d.dir, "scripts")
        os.makedirs(os.path.join(self.scripts, "rules"))
        for name, text in (rules or {}).items():
            with open(os.path.join(self.scripts, "rules", name), "w") as f:
                f.write(text)
        self.d.write_config(extra=f'script_dirs = [ "{self.scripts}" ];\n{lua}\n')
        self.d.grant_scripts(os.path.join(self.scripts, "rules"))

    def __enter__(self):
        self.d.scripts = self.scripts
        return self.d.start()

    def __exit__(self, *exc):
        self.d.cleanup()


def rule_file(d, name):
    return os.path.join(d.scripts, "rules", name)


def fails(d, *args, want, input=None):
    rc, out, err = d.cli(*args, input=input)
    check(rc == 1, f"linli {' '.join(args)} should fail: {rc} {out} {err}")
    check(want in err, f"linli {' '.join(args)}: want {want!r} in {err!r}")
    return err


def case_check_good_and_bad():
    # A generous time limit: the endless loop below must meet the instruction budget
    # first even in the sanitizer build on a loaded machine.
    with running(lua="lua = { time_ms = 5000; };") as d:
        path = os.path.join(d.dir, "good.lua")
        with open(path, "w") as f:
            f.write(GOOD)
        out = d.ok("rules", "check", path)
        check(out["result"].startswith("ok"), out)
        d.ok("rules", "check", "x.lua", "--stdin", input=GOOD)
        # Syntax error: file and line.
        fails(d, "rules", "check", "bad.lua", "--stdin", input="rule {\n name = 'x',\n on = \n",
              want="bad.lua:4:")
        # Declaration problems name the file and the rule's line.
        fails(d, "rules", "check", "b.lua", "--stdin",
              input="\nrule { name = 'b', on = 'dev/#/x', run = print }",
              want="b.lua:2: rule 'b': on: bad topic pattern 'dev/#/x'")
        fails(d, "rules", "check", "b.lua", "--stdin",
              input="rule { name = 'b', on = 'a/b', when = 3, run = print }",
              want="when must be a function (got number)")
        fails(d, "rules", "check", "b.lua", "--stdin", input="rule { on = 'a/b', run = print }",
              want="b.lua:1: rule: missing name")
        # Manifest and limit problems.
        fails(d, "rules", "check", "p.lua", "--stdin",
              input="plugin { name = 'p', version = '1.0.0', sdk = '1.9', family = 'safety',"
                    " description = 'd', capabilities = {} }",
              want=f"needs SDK 1.9, this host offers {SDK}")
        fails(d, "rules", "check", "l.lua", "--stdin",
              input="rule { name = 'l', on = 'a', run = print, limits = { time_ms = 9000 } }",
              want="limits.time_ms = 9000 is above this node's limit 5000")
        fails(d, "rules", "check", "loop.lua", "--stdin", input="while true do end",
              want="loop.lua:1: instruction budget exhausted")
        # The daemon cannot read the console's directory.
        fails(d, "rules", "check", "relative.lua", want="give an absolute path")
        fails(d, "rules", "check", os.path.join(d.dir, "missing.lua"), want="cannot open")
        # Nothing was installed by any of this.
        eq(d.ok("rules", "list"), [], "rules after checks")


def case_list_at_start_with_broken():
    rules = {"a_good.lua": GOOD,
             "b_broken.lua": "rule {\n  name = 'broken',\n  on = 'x/y',\n  run = function(\n}\n"}
    with running(rules=rules) as d:
        rows = by_name(d.ok("rules", "list"))
        eq(set(rows), {"smoke_high", "b_broken"}, "rules loaded")
        eq(rows["smoke_high"]["state"], "ready", "good state")
        eq(rows["smoke_high"]["on"], "dev/smoke/+/event/alarm", "on")
        eq(rows["b_broken"]["state"], "broken", "broken state")
        check("b_broken.lua:5:" in rows["b_broken"]["problem"], rows["b_broken"])
        log = d.ok("rules", "log", "b_broken")
        eq(len(log), 1, "broken log")
        check(log[0]["where"].endswith("b_broken.lua:5"), log)
        eq(log[0]["kind"], "fault", "log kind")
        show = d.ok("rules", "show", "smoke_high")
        eq(show["source"], GOOD, "source")
        eq(show["limits"]["time_ms"], 200, "default time limit")
        eq(show["scope"], "hefei", "scope is the node's")
        d.wait_log("rule smoke_high loaded from")
        # Text output prints a table with the state.
        r = subprocess.run([os.environ.get("LINLI", "build/host/linli"), "--socket", d.sock,
                            "rules", "list"], capture_output=True, text=True)
        check("broken" in r.stdout and "ready" in r.stdout, r.stdout)


def case_test_event():
    with running(rules={"good.lua": GOOD}) as d:
        out = d.ok("rules", "test", "smoke_high", "--stdin", input='{"level": 5}')
        eq(out, {"topic": "dev/smoke/test/event/alarm", "matched": True, "ran": False}, "dry")
        out = d.ok("rules", "test", "smoke_high", "dev/smoke/s7/event/alarm", "--run", "--stdin",
                   input='{"level": 5}')
        eq(out["ran"], True, "ran")
        d.wait_log("smoke_high: alarm from dev/smoke/s7/event/alarm")
        out = d.ok("rules", "test", "smoke_high", "--stdin", input='{"level": 1}')
        eq(out["matched"], False, "low level")
        # A pipe is read without --stdin; nothing piped (/dev/null) is the event {}.
        out = d.ok("rules", "test", "smoke_high", input='{"level": 5}')
        eq(out["matched"], True, "the piped event, without --stdin")
        out = d.ok("rules", "test", "smoke_high", input='{"level": 1}')
        eq(out["matched"], False, "the piped low level, without --stdin")
        fails(d, "rules", "test", "smoke_high", input="[1,", want="event:")
        out = d.ok("rules", "test", "smoke_high")
        eq(out["matched"], False, "no event piped: {}, no level")
        fails(d, "rules", "test", "smoke_high", "dev/door/1/event/alarm",
              want="does not match the rule's on 'dev/smoke/+/event/alarm'")
        fails(d, "rules", "test", "smoke_high", "--stdin", input="[1,", want="event:")
        fails(d, "rules", "test", "nosuch", want="no rule named 'nosuch'")
        # A runtime error is reported with file and line and logged.
        fails(d, "rules", "test", "smoke_high", "--stdin", input='{"level": "high"}',
              want="good.lua:5: attempt to compare")
        log = d.ok("rules", "log", "smoke_high")
        check(log[-1]["where"].endswith("good.lua:5") and log[-1]["kind"] == "error", log)
        d.wait_log("warn script: smoke_high: ")  # an operator's attention: warn, not info
        check(any("warn script: smoke_high:" in ln and "good.lua:5: attempt to compare" in ln
                  for ln in d.logtext().splitlines()), "the runtime error at warn")


def case_faulted_is_reported_and_others_go_on():
    with running(rules={"good.lua": GOOD}) as d:
        d.ok("rules", "install", "spin.lua", "--stdin", input=LOOP)
        t0 = time.time()
        fails(d, "rules", "test", "spin", want="instruction budget exhausted")
        check(time.time() - t0 < 5, "the endless loop was not stopped in time")
        rows = by_name(d.ok("rules", "list"))
        eq(rows["spin"]["state"], "faulted", "spin state")
        check("instruction budget exhausted" in rows["spin"]["problem"], rows["spin"])
        eq(rows["smoke_high"]["state"], "ready", "the other rule")
        fails(d, "rules", "test", "spin", want="is faulted")
        # The other rule and the daemon go on.
        eq(d.ok("rules", "test", "smoke_high", "--stdin", input='{"level": 9}')["matched"], True,
           "other rule")
        d.ok("status")
        d.wait_log("spin faulted, stopped until reloaded")
        # Fix it: install the corrected version, it runs again.
        fixed = LOOP.replace("while true do pcall(function() while true do end end) end",
                             "return e.ok == true")
        d.ok("rules", "install", "spin.lua", "--stdin", input=fixed)
        eq(by_name(d.ok("rules", "list"))["spin"]["state"], "ready", "fixed")
        eq(d.ok("rules", "test", "spin", "--stdin", input='{"ok": true}')["matched"], True, "fixed")


def case_pathological_pattern_stopped():
    with running(lua="lua = { instructions = 1000000000000L; time_ms = 300; };") as d:
        d.ok("rules", "install", "regex.lua", "--stdin", input=PATTERN)
        t0 = time.time()
        fails(d, "rules", "test", "regex", want="time limit exceeded (300 ms per call)")
        took = time.time() - t0
        check(took < 3, f"pattern ran {took:.1f}s")
        eq(by_name(d.ok("rules", "list"))["regex"]["state"], "faulted", "regex state")
        d.ok("status")


def case_reload_broken_keeps_old():
    with running(rules={"good.lua": GOOD}) as d:
        path = rule_file(d, "good.lua")
        with open(path, "w") as f:
            f.write(GOOD.replace("e.level > 3", "e.level >"))
        err = fails(d, "rules", "reload", "smoke_high", want="good.lua:5:")
        check("unexpected symbol" in err, err)
        show = d.ok("rules", "show", "smoke_high")
        eq(show["source"], GOOD, "old source kept")
        eq(show["state"], "ready", "old version still ready")
        eq(d.ok("rules", "test", "smoke_high", "--stdin", input='{"level": 5}')["matched"], True,
           "old version runs")
        log = d.ok("rules", "log", "smoke_high")
        check("reload refused, the old version keeps running" in log[-1]["message"], log)
        # Reload all: same refusal.
        fails(d, "rules", "reload", want="good.lua:5:")
        # Fixed on disk: the reload swaps.
        with open(path, "w") as f:
            f.write(GOOD.replace("e.level > 3", "e.level > 7"))
        eq(d.ok("rules", "reload", "smoke_high"), {"reloaded": ["smoke_high"]}, "reload")
        eq(d.ok("rules", "test", "smoke_high", "--stdin", input='{"level": 5}')["matched"], False,
           "new version runs")
        eq(d.ok("rules", "reload"), {"reloaded": ["smoke_high"]}, "reload all")


def case_install_remove_and_restart():
    with running() as d:
        out = d.ok("rules", "install", "mine.lua", "--stdin", input=GOOD)
        eq(out["name"], "smoke_high", "installed name")
        eq(out["file"], rule_file(d, "smoke_high.lua"), "installed file")
        with open(out["file"]) as f:
            eq(f.read(), GOOD, "file text")
        # A broken replacement is refused and changes nothing.
        fails(d, "rules", "install", "mine.lua", "--stdin",
              input=GOOD.replace('run = function(e, topic) print("alarm from " .. topic) end',
                                 "run = 3"),
              want="run must be a function")
        with open(out["file"]) as f:
            eq(f.read(), GOOD, "file unchanged after a refused install")
        # Installed rules survive a restart.
        d.stop()
        d.start()
        eq([r["name"] for r in d.ok("rules", "list")], ["smoke_high"], "after restart")
        eq(d.ok("rules", "remove", "smoke_high")["removed"], "smoke_high", "remove")
        check(not os.path.exists(out["file"]), "file deleted")
        eq(d.ok("rules", "list"), [], "empty")
        fails(d, "rules", "remove", "smoke_high", want="no rule named 'smoke_high'")


def case_install_without_script_dirs():
    d = Daemon()
    try:
        d.start()
        fails(d, "rules", "install", "x.lua", "--stdin", input=GOOD, want="no script_dirs")
    finally:
        d.cleanup()


def case_bad_lua_config():
    with running() as d:
        d.write_config(extra=f'script_dirs = [ "{d.scripts}" ];\nlua = {{\n  time_ms = 0;\n}};\n')
        r = subprocess.run([LINLID, "--config", d.cfg, "--check-config"], capture_output=True,
                           text=True)
        eq(r.returncode, 2, "exit code")
        line = next(i for i, l in enumerate(open(d.cfg), 1) if "time_ms" in l)
        check(f"{d.cfg}:{line}: lua.time_ms: 0 is outside 1..60000" in r.stderr, r.stderr)


def case_rules_run_on_bus_events():
    with running(rules={"good.lua": GOOD}) as d:
        d.ok("rules", "install", "spin.lua", "--stdin", input=LOOP)
        d.ok("publish", "dev/smoke/sd-7/event/alarm", '{"level": 9}')
        d.wait_log("smoke_high: alarm from dev/smoke/sd-7/event/alarm")
        d.ok("publish", "dev/smoke/sd-8/event/alarm", '{"level": 1}')  # when is false
        # The looping rule got the event too: stopped and faulted, nothing else hurt.
        d.wait_log("spin faulted, stopped until reloaded")
        rows = by_name(d.ok("rules", "list"))
        eq(rows["spin"]["state"], "faulted", "spin after a bus event")
        eq(rows["smoke_high"]["state"], "ready", "smoke_high")
        eq(rows["smoke_high"]["calls"], 3, "when twice, run once")
        d.ok("publish", "dev/smoke/sd-9/event/alarm", '{"level": 5}')
        d.wait_log("smoke_high: alarm from dev/smoke/sd-9/event/alarm")
        check("alarm from dev/smoke/sd-8" not in d.logtext(), "run called for a false when")
        # A removed rule hears nothing more.
        d.ok("rules", "remove", "smoke_high")
        d.ok("publish", "dev/smoke/sd-10/event/alarm", '{"level": 5}')
        d.ok("status")
        check("sd-10" not in d.logtext(), "a removed rule still ran")


if __name__ == "__main__":
    sys.exit(main(globals()))
