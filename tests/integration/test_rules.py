"""Integration tests of the Lua rules through a real linlid and the real console.

Rules are loaded from script_dirs at start, checked, installed, tested, reloaded
and removed with `linli rules ...`; a rule that breaks a limit is stopped,
reported faulted by `rules list`, and nothing else is hurt.
"""
import datetime
import json
import os
import shutil
import subprocess
import sys
import time
import zoneinfo

sys.path.insert(0, os.path.dirname(__file__))
from harness import (  # noqa: E402
    BUILD, LINLID, SDK, SRC, Daemon, by_name, check, eq, finish, main, wait_for)

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


# ---- the rules shipped in scripts/rules/ (installed to <datadir>/linli/scripts/rules) ----

SHIPPED = os.path.join(SRC, "scripts", "rules")
YUELAN = "hefei/baohe/binhu/yuelan"
G01 = YUELAN + "/g01"
TP = os.path.abspath(os.environ.get("LINLI_TP_DIR", os.path.join(BUILD, "tests", "plugins")))


def shipped_files():
    files = sorted(f for f in os.listdir(SHIPPED) if f.endswith(".lua"))
    check(len(files) >= 3, f"scripts/rules/: {files}")
    return files


class shipped:
    """The community 悦澜 with the alarms and grid plugins, the test driver tdrv and, in its
    script dir, every rule of scripts/rules/, each granted what it declares; test clock."""

    def __init__(self):
        self.d = Daemon(node=YUELAN, level="community", name="悦澜社区")
        pdir = os.path.join(self.d.dir, "plugins")
        rules = os.path.join(self.d.dir, "scripts", "rules")
        os.makedirs(pdir)
        os.makedirs(rules)
        for so in (os.path.join(BUILD, "plugins", "alarms", "alarms.so"),
                   os.path.join(BUILD, "plugins", "grid", "grid.so"),
                   os.path.join(TP, "tp_driver.so")):
            shutil.copyfile(so, os.path.join(pdir, os.path.basename(so)))
        for f in shipped_files():
            shutil.copyfile(os.path.join(SHIPPED, f), os.path.join(rules, f))
        self.d.write_config(node=YUELAN, level="community", name="悦澜社区",
                            extra=f'catalog_dir = "{os.path.join(SRC, "catalog")}";\n'
                                  f'plugin_dirs = [ "{pdir}" ];\n'
                                  f'script_dirs = [ "{os.path.dirname(rules)}" ];\n')
        self.d.grant_declared(pdir)
        self.d.grant_scripts(rules)

    def __enter__(self):
        try:
            return self.d.start(args=("--test-clock",))
        except BaseException:
            self.d.cleanup()
            raise

    def __exit__(self, etype, *rest):
        finish(self.d, etype)


def case_shipped_rules_check_and_load():
    """Every file of scripts/rules/ (a new one too) passes `rules check`, is named after its
    rule, declares what it uses, and loads ready on a node that granted it."""
    with shipped() as d:
        files = shipped_files()
        rows = by_name(d.ok("rules", "list"))
        for f in files:
            path = os.path.join(SHIPPED, f)
            out = d.ok("rules", "check", path)
            check(out["result"].startswith("ok"), f"{f}: {out}")
            with open(path) as fh:
                d.ok("rules", "check", f, "--stdin", input=fh.read())  # as a remote console
            name = f[:-4]
            check(name in rows, f"{f} loaded as rule {name}: {sorted(rows)}")
            eq((rows[name]["state"], rows[name].get("problem") or ""), ("ready", ""), f)
            show = d.ok("rules", "show", name)
            check(show.get("description"), f"{name} says what it does")
            for cap in show["capabilities"]:
                check(cap.split(":")[0] in ("store.read", "bus.publish", "device.read"),
                      f"{name} declares {cap}: nothing that writes or commands")
        eq(sorted(rows), sorted(f[:-4] for f in files), "no other rule")
        # The sources name their request topics: alarms and grid serve them here.
        eq(d.ok("rules", "show", "smoke_forced_door")["capabilities"],
           ["store.read:devices", "bus.publish:alarmreq/raise"], "smoke_forced_door")


def alarms_of(d, typ):
    return [a for a in d.ok("alarms", "list")["alarms"] if a["type"] == typ]


def event(d, dev, name, *kv):
    eq(d.ok("tdrv", "event", dev, name, *kv)["rc"], 0, f"event {name} of {dev}")


def case_shipped_rules_fire_on_device_events():
    """Loaded from the script dir, each shipped rule fires on a simulated device event and
    stays quiet when its condition does not hold: smoke and a forced door in one building
    within 5 min (not in another building, not 6 min apart); a full bin opens one case per
    bin in its grid until that case is void; a charger fault raises only at night. Each
    part ends with an event of another device through the same rule: once its effect shows,
    everything the rule did before it has been handled, so the counts are final."""
    with shipped() as d:
        d.ok("data", "put", "grids", "--scope", YUELAN, "--id", "g01",
             json.dumps({"code": "g01", "name": "悦澜第一网格"}))
        for dev, cls, *opts in (("sd-1", "smoke", "--building", "3"),
                                ("sd-2", "smoke", "--building", "5"),
                                ("dr-1", "door", "--building", "3"),
                                ("dr-2", "door", "--building", "5"),
                                ("tb-1", "trash_bin", "--grid", "g01"),
                                ("tb-2", "trash_bin", "--grid", "g01"),
                                ("ch-1", "charger"), ("ch-2", "charger")):
            d.ok("devices", "add", dev, cls, "tdrv", "ok", *opts)
        # Smoke and a forced door: another building, then 6 min apart, then within 5 min;
        # last, building 5's pair.
        event(d, "dr-2", "forced")
        event(d, "sd-1", "alarm")
        d.ok("clock", "advance", "6m")
        event(d, "dr-1", "forced")
        event(d, "sd-1", "alarm")
        event(d, "dr-2", "forced")
        event(d, "sd-2", "alarm")
        got = wait_for(lambda: (lambda a: a if len(a) == 2 else None)(
            {a["source"]: a for a in alarms_of(d, "smoke_forced_door")}), "both buildings")
        eq({k: (a["severity"], a["scope"], a["count"]) for k, a in got.items()},
           {"device:sd-1": ("critical", YUELAN, 1), "device:sd-2": ("critical", YUELAN, 1)},
           "one alarm per building's pair, none for the others")
        eq(d.ok("alarms", "show", got["device:sd-1"]["id"])["details"],
           "building 3: smoke detector sd-1 alarmed and door dr-1 was forced within 5 min",
           "details: the building and device ids")
        # A full bin opens a case in its grid; again while it is open: none; after: one.
        event(d, "tb-1", "full", "fill_level=95")
        event(d, "tb-1", "full")
        event(d, "tb-2", "full")
        cases = wait_for(lambda: (lambda c: c if len(c) >= 2 else None)(d.ok("grid", "list")),
                         "the cases of the full bins")
        eq(sorted((c["title"], c["scope"], c["category"], c["status"]) for c in cases),
           [("垃圾箱满溢: tb-1 (95%)", G01, "environment", "reported"),
            ("垃圾箱满溢: tb-2", G01, "environment", "reported")], "one case per bin")
        c = d.ok("grid", "show", [x["id"] for x in cases if "tb-1" in x["title"]][0])
        eq((c["channel"], c["moves"][0]["who"]), ("rule", "rule trash_bin_full"), "by the rule")
        d.wait_log(f"case {c['id']} opened in {G01} for full bin tb-1")
        d.ok("grid", "void", c["id"], "emptied")
        event(d, "tb-1", "full")
        wait_for(lambda: len(d.ok("grid", "list")) == 3, "a new case once the first is void")
        # A charger fault by day: nothing; at night: an alarm; last, ch-2's.
        zone = zoneinfo.ZoneInfo("Asia/Shanghai")
        for hour in (12, 23):
            now = datetime.datetime.fromtimestamp(d.ok("clock")["now_ms"] / 1000, zone)
            at = now.replace(hour=hour, minute=30, second=0, microsecond=0)
            if at <= now:
                at += datetime.timedelta(days=1)
            d.ok("clock", "set", at.isoformat())
            d.login()  # a day's jump ends the admin's session
            if hour == 12:
                event(d, "ch-1", "fault")
                event(d, "ch-1", "status_notification", "status=Faulted")
        event(d, "ch-1", "status_notification", "status=Available")
        event(d, "ch-1", "fault")
        event(d, "ch-1", "overheat")
        event(d, "ch-1", "status_notification", "status=Faulted", "connector=2",
              "error_code=GroundFailure")
        event(d, "ch-2", "overcurrent")
        got = wait_for(lambda: (lambda a: a if len(a) == 2 else None)(
            {a["source"]: a for a in alarms_of(d, "charger_fault_night")}), "night faults")
        eq({k: (a["severity"], a["count"], a["scope"]) for k, a in got.items()},
           {"device:ch-1": ("major", 3, YUELAN), "device:ch-2": ("major", 1, YUELAN)},
           "the night's three of ch-1 folded (none by day, none for Available), ch-2's")
        eq(d.ok("alarms", "show", got["device:ch-1"]["id"])["details"],
           "charger ch-1: fault at 23:30", "details: its first raise")
        h = [x["action"] for x in d.ok("alarms", "history", got["device:ch-1"]["id"])["history"]]
        eq(h.count("severity"), 2, f"major -> critical (overheat) -> major: {h}")
        check(len([x for x in d.logtext().splitlines() if "raised for charger ch-1" in x]) == 3,
              "three answers for ch-1")


if __name__ == "__main__":
    sys.exit(main(globals()))
