"""Integration tests of the devices in the Lua API (linli.dev_*), through a real linlid.

A community node (hefei/baohe/binhu/yuelan) runs the simulated fleet
(plugins/sim, one device per class, stepped by hand with `linli sim step`),
the test driver tdrv (tests/plugins/tp_driver.c: a device at address "slow"
never answers a command), the C application devapp (tp_devapp.c: device.read
of doors, device.command of smoke detectors) and Lua scripts:

- a script plugin `keeper` whose console command `run` runs the Lua code sent
  with --stdin inside the plugin's own state and replies {r1, r2, r3, n}: so
  every linli.* call in it is checked as keeper's;
- rules `probe` (and others) that run the code of each test/<name> event as the
  rule and print `<name> TAG => JSON` to the daemon log.

Both define a global `answer(tag)`: a dev_command callback that prints
`answer TAG => {"r": result, "err": message, "code": code, "req": id}`.
"""
import calendar
import functools
import json
import os
import re
import shutil
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from luakit import ENC  # noqa: E402
from luakit import keeper as luakit_keeper, probe_rule as luakit_probe_rule  # noqa: E402
from harness import (  # noqa: E402
    BUILD, SRC, Daemon, TestFailure, check, eq, finish, main, wait_for, write)

TP = os.path.abspath(os.environ.get("LINLI_TP_DIR", os.path.join(BUILD, "tests", "plugins")))
SIM = os.path.join(BUILD, "plugins", "sim", "sim.so")
CATALOG = os.path.join(SRC, "catalog")
COMMUNITY = "hefei/baohe/binhu/yuelan"
SIBLING = "hefei/baohe/binhu/tianehu"

# The callback maker, global in every script here beside luakit's enc.
PRELUDE = ENC + r"""
function answer(tag)
  return function(r, err, code, req)
    print("answer " .. tag .. " => " .. enc({ r = r, err = err, code = code, req = req }))
  end
end
"""
probe_rule = functools.partial(luakit_probe_rule, prelude=PRELUDE)
keeper = functools.partial(luakit_keeper, prelude=PRELUDE)


DOOR_CAPS = ("device.read:door", "device.command:door")
MANUAL = {"per_class": 1, "auto": "false", "thread": "false"}


class node:
    """A community linlid with the catalog, sim, tdrv, devapp and the given scripts."""

    def __init__(self, apps=None, rules=None, so=("tp_driver", "tp_devapp"), conf=None):
        self.d = Daemon(node=COMMUNITY, level="community")
        self.scripts = os.path.join(self.d.dir, "scripts")
        pdir = os.path.join(self.d.dir, "plugins")
        for sub in ("apps", "rules"):
            os.makedirs(os.path.join(self.scripts, sub))
        os.makedirs(pdir)
        for fname, text in (apps or {}).items():
            write(os.path.join(self.scripts, "apps", fname), text)
        for fname, text in (rules or {}).items():
            write(os.path.join(self.scripts, "rules", fname), text)
        for p in so:
            shutil.copyfile(os.path.join(TP, p + ".so"), os.path.join(pdir, p + ".so"))
        shutil.copyfile(SIM, os.path.join(pdir, "sim.so"))
        sim = "".join(f" {k} = {v};" for k, v in MANUAL.items())
        self.conf = dict(conf or {})
        self.d.write_config(node=COMMUNITY, level="community", name="悦澜",
                            extra=f'catalog_dir = "{CATALOG}";\n'
                                  f'plugin_dirs = [ "{pdir}" ];\n'
                                  f'script_dirs = [ "{self.scripts}" ];\n'
                                  f"plugins = {{ sim = {{{sim} }};"
                                  + "".join(f" {n} = {{ {c} }};" for n, c in self.conf.items())
                                  + " };\n"
                                  # Not about the clock: a generous time limit keeps the
                                  # loaded sanitizer build from tripping it (loops are
                                  # stopped by the instruction budget); the bad calls
                                  # in a row must not fault keeper either.
                                  "lua = { time_ms = 5000; max_errors = 1000; };\n")
        # The admin approves what the plugins and scripts declare.
        self.d.grant_declared(pdir)
        self.d.grant_scripts(*(os.path.join(self.scripts, sub) for sub in ("apps", "rules")))

    def __enter__(self):
        try:
            self.d.start()
            self.d.scripts = self.scripts
            wait_for(lambda: len(self.d.ok("devices", "list")) >= 16, "the sim fleet")
            self.d.ok("sim", "step", "2")
            return self.d
        except BaseException:
            self.d.cleanup()
            raise

    def __exit__(self, etype, *rest):
        finish(self.d, etype)  # a clean stop after a case that passed


def js(v):
    return json.dumps(v, ensure_ascii=False)


def run(d, code, plugin="keeper"):
    """Run Lua code inside script plugin `plugin`; its results as {r1, r2, r3, n}."""
    return d.ok(plugin, "run", "--stdin", input=code)


def run_raises(d, code, needle, plugin="keeper"):
    """Lua code that raises inside `plugin`: the console command fails with the error."""
    rc, out, err = d.cli(plugin, "run", "--stdin", input=code)
    check(rc == 1, f"should raise: {code!r}: {out}")
    check(needle in err, f"{needle!r} not in {err!r}")
    return err


_tags = iter(range(1, 1 << 30))


def tag():
    return f"t{next(_tags)}"


def logged(d, needle, timeout=15):
    """The JSON printed after `needle` in the daemon log (waits for it)."""
    end = time.time() + timeout
    while time.time() < end:
        for line in d.logtext().splitlines():
            if needle in line:
                return json.loads(line.split(needle, 1)[1])
        time.sleep(0.05)
    raise TestFailure(f"the log never said {needle!r}:\n{d.logtext()[-3000:]}")


def probe(d, code, rule="probe"):
    """Run Lua code inside rule `rule` (one event); its results as {r1, r2, r3, n}."""
    t = tag()
    d.ok("publish", f"test/{rule}", js({"tag": t, "code": code}))
    return logged(d, f"{rule}: {rule} {t} => ")


def answer(d, t, who):
    """What the callback made by answer(t) in script `who` got: {r, err, code, req}."""
    got = logged(d, f"{who}: answer {t} => ")
    return {k: got.get(k) for k in ("r", "err", "code", "req")}


def refused(r, code, needle):
    check(r.get("r1") is None, f"should be refused: {r}")
    eq(r.get("r3"), code, f"code ({r.get('r2')})")
    check(needle in r.get("r2", ""), f"{needle!r} not in {r.get('r2')!r}")
    return r["r2"]


def ms(rfc3339):
    """'2026-01-01T00:00:00.123Z' as ms since the epoch."""
    secs, frac = rfc3339.rstrip("Z").split(".")
    return calendar.timegm(time.strptime(secs, "%Y-%m-%dT%H:%M:%S")) * 1000 + int(frac)


def readings(d, dev):
    return {r["resource"]: r for r in d.ok("devices", "readings", dev)}


def audit(d, **filters):
    args = ["audit", "--limit", "1000"]
    for k, v in filters.items():
        args += [f"--{k}", v]
    rows = d.ok(*args)
    return rows if isinstance(rows, list) else rows.get("entries", [])


# ---------------------------------------------------------------------------------------


def case_plugin_and_rule_read_and_command_devices():
    apps = {"keeper.lua": keeper(caps=DOOR_CAPS + ("device.read:electric_meter",))}
    rules = {"probe.lua": probe_rule(caps=DOOR_CAPS)}
    with node(apps=apps, rules=rules) as d:
        show = d.ok("devices", "show", "sim-door-001")
        # dev_info: the registry entry, as `devices show` has it (nil fields are absent).
        want = {k: v for k, v in show.items() if v is not None}
        for who, r in (("keeper", run(d, "return linli.dev_info('sim-door-001')")),
                       ("probe", probe(d, "return linli.dev_info('sim-door-001')"))):
            eq(r["r1"], want, f"dev_info as {who}")
        eq((want["class"], want["scope"], want["driver"], want["state"]),
           ("door", COMMUNITY, "sim", "online"), "the entry")
        # dev_get: the latest good value and its time, as `devices readings` has them.
        rd = readings(d, "sim-door-001")
        for res in ("state", "lock", "mode", "open_time", "passes_today"):
            for who, r in (("keeper", run(d, f"return linli.dev_get('sim-door-001', '{res}')")),
                           ("probe", probe(d, f"return linli.dev_get('sim-door-001', '{res}')"))):
                eq((r["r1"], r["r2"]), (rd[res]["value"], ms(rd[res]["time"])),
                   f"dev_get {res} as {who}")
        r = run(d, "local v = linli.dev_get('sim-door-001', 'open_time') return math.type(v)")
        eq(r["r1"], "integer", "an integer resource is an integer")
        # Every resource at once: {resource = {value =, time =}}.
        rd = readings(d, "sim-electric_meter-001")
        r = run(d, "return linli.dev_get('sim-electric_meter-001')")
        eq(r["r1"], {k: {"value": v["value"], "time": ms(v["time"])} for k, v in rd.items()},
           "dev_get of every resource")
        check(isinstance(r["r1"]["relay"]["value"], str) and
              isinstance(r["r1"]["power"]["value"], float), r["r1"])

        # dev_command: the sim answers, the callback gets the result and the request id.
        t = tag()
        r = run(d, f"return linli.dev_command('sim-door-001', 'open', {{ seconds = 5 }}, 0, "
                   f"answer('{t}'))")
        req = r["r1"]
        check(isinstance(req, int) and req > 0, f"a request id: {r}")
        eq(answer(d, t, "keeper"), {"r": {"unlocked_for_s": 5, "ok": True}, "err": None,
                                    "code": None, "req": req}, "the plugin's callback")
        t = tag()
        r = probe(d, f"return linli.dev_command('sim-door-001', 'set_mode', "
                     f"{{ mode = 'always_open' }}, 2000, answer('{t}'))")
        req2 = r["r1"]
        check(isinstance(req2, int) and req2 > req, f"another request id: {r}")
        got = answer(d, t, "probe")
        eq((got["err"], got["code"], got["req"]), (None, None, req2), "the rule's callback")
        eq(got["r"], {"ok": True}, "the rule's result")
        # Its effect, once the simulator reports again.
        d.ok("sim", "step", "1")
        rd = readings(d, "sim-door-001")
        eq((rd["mode"]["value"], rd["lock"]["value"]), ("always_open", "unlocked"),
           "the door stays open")
        eq(run(d, "return linli.dev_get('sim-door-001', 'mode')")["r1"], "always_open",
           "dev_get sees it")
        # Sent and answered are audited as the script's, like a C plugin's command.
        rows = audit(d, action="device.command")
        got = {(e.get("via", e["who"]), e["object"], e["result"], e["detail"].split(" ")[1]) for e in rows}
        check(("plugin:keeper", "sim-door-001", "allowed", "open") in got, got)
        check(("rule:probe", "sim-door-001", "allowed", "set_mode") in got, got)
        rows = audit(d, action="device.command.result")
        check(any(e.get("via", e["who"]) == "rule:probe" and e["detail"].startswith(f"#{req2} set_mode: ok")
                  for e in rows), rows)
        log = d.logtext()
        check(f"device.command #{req} sim-door-001 (door at {COMMUNITY}) open "
              "{\"seconds\":5} by plugin 'keeper': sent" in log, log[-3000:])
        check(f"device.command #{req2} sim-door-001 (door at {COMMUNITY}) set_mode "
              "{\"mode\":\"always_open\"} by rule 'probe': sent" in log, log[-3000:])
        # Nothing is pending any more.
        eq(d.ok("devices", "show", "sim-door-001")["commands_pending"], 0, "pending")
        eq([r for r in d.ok("plugins", "info", "keeper")["resources"]
            if r["kind"] == "device command"], [], "keeper holds no command")


def case_undeclared_capability_refused_and_audited_like_a_c_plugin():
    apps = {"keeper.lua": keeper(caps=("device.read:door", "device.command:smoke"))}
    rules = {"probe.lua": probe_rule(caps=("device.read:door", "device.command:smoke"))}
    with node(apps=apps, rules=rules) as d:
        # Declared: fine. (keeper and probe hold what the C plugin devapp holds.)
        eq(run(d, "return linli.dev_get('sim-door-001', 'state')")["r1"], "closed", "read")
        eq(d.ok("devapp", "get", "sim-door-001", "state")["value"], "closed", "C read")
        # Not declared: refused with the C plugin's code, audited and logged alike.
        cases = [
            ("return linli.dev_info('sim-smoke-001')", "device.read:smoke", "device.read",
             ("devapp", "info", "sim-smoke-001")),
            ("return linli.dev_get('sim-smoke-001', 'battery')", "device.read:smoke",
             "device.read", ("devapp", "get", "sim-smoke-001", "battery")),
            ("return linli.dev_get('sim-smoke-001')", "device.read:smoke", "device.read",
             ("devapp", "get", "sim-smoke-001")),
            ("return linli.dev_command('sim-door-001', 'open', { seconds = 3 }, 0, "
             "function() print('never') end)", "device.command:door", "device.command",
             ("devapp", "cmd", "sim-door-001", "open", "seconds=3")),
        ]
        for code, cap, action, cargs in cases:
            for who, r in (("plugin 'keeper'", run(d, code)), ("rule 'probe'", probe(d, code))):
                refused(r, "LINLI_EPERM", f"{who} holds no granted capability {cap}")
            eq(d.ok(*cargs)["name"], "LINLI_EPERM", f"the C plugin is refused alike: {cargs}")
        r = run(d, "return linli.dev_command('sim-door-001', 'open', { seconds = 3 }, 0, "
                   "function() end)")
        eq(r["r2"], "dev_command sim-door-001: plugin 'keeper' holds no granted capability "
                    "device.command:door", "the whole message")
        # Every denial is in the audit log as the script's (and devapp's), object = the class.
        rows = audit(d, result="denied")
        got = {(e.get("via", e["who"]), e["action"], e.get("object")) for e in rows}
        for who in ("plugin:keeper", "rule:probe", "plugin:devapp"):
            for want in ((who, "device.read", "smoke"), (who, "device.command", "door")):
                check(want in got, f"{want} not audited: {got}")
        details = {e["detail"].replace(e.get("via", e["who"]).split(":")[1], "X") for e in rows
                   if e["action"] == "device.command"}
        check(len({x.replace("plugin 'X'", "'X'").replace("rule 'X'", "'X'")
                   for x in details}) == 1, f"one reason, whoever asks: {details}")
        log = d.logtext()
        for who in ("plugin 'keeper'", "rule 'probe'", "plugin 'devapp'"):
            check(f"device.command of device sim-door-001 by {who} denied: {who} holds no "
                  "granted capability device.command:door" in log, f"{who}: {log[-3000:]}")
            check(f"device.read of device sim-smoke-001 by {who} denied" in log, who)
        check("never" not in log, "no callback of a refused command")
        eq(len(re.findall(r"device\.command #\d+ sim-door-001", log)), 0, "nothing was sent")
        # A device of a sibling community cannot even be registered at this node, so no
        # script here can reach one: it does not exist for them.
        rc, out, err = d.cli("devices", "add", "sib-door", "door", "sim", "sim:door:9",
                             "--scope", SIBLING)
        check(rc == 1 and "outside its jurisdiction" in err, err)
        refused(run(d, "return linli.dev_info('sib-door')"), "LINLI_ENOENT",
                "dev_info: no device 'sib-door'")
        # A capability kind scripts do not have is refused when the rule is checked.
        bad = probe_rule("bad", caps=("hal.driver:x",))
        rc, out, err = d.cli("rules", "check", "bad.lua", "--stdin", input=bad)
        check(rc == 1 and "hal.driver is for C plugins" in err, err)
        bad = probe_rule("bad", caps=("device.command",))
        rc, out, err = d.cli("rules", "check", "bad.lua", "--stdin", input=bad)
        check(rc == 1 and "'device.command' needs an argument" in err, err)


def door_rule(name, caps):
    caps = ", ".join(f'"{c}"' for c in caps)
    return f"""
rule {{
  name = "{name}", on = "dev/door/+/event/#", capabilities = {{ {caps} }},
  run = function(e) print("{name} saw " .. e.event .. " holder=" .. tostring(e.data.holder)) end,
}}
"""


def case_door_holder_masked_for_lua_without_the_grant():
    apps = {"keeper.lua": keeper(caps=("bus.subscribe:dev/door/#",))}
    rules = {"doormask.lua": door_rule("doormask", ("bus.subscribe:dev/door/#",)),
             "doorclear.lua": door_rule("doorclear", ("bus.subscribe:dev/door/#",
                                                      "sensitive:devices"))}
    with node(apps=apps, rules=rules) as d:
        d.ok("devices", "add", "d-new", "door", "tdrv", "ok")
        run(d, 'return linli.subscribe("dev/door/d-new/event/#", function(e, topic, meta) '
               'print("keeper saw " .. e.event .. " holder=" .. tostring(e.data.holder) .. '
               '" reason=" .. tostring(e.data.reason)) end)')
        eq(d.ok("tdrv", "event", "d-new", "face_denied", "holder=R01234", "reason=unknown")["rc"],
           0, "event")
        d.wait_log("keeper saw face_denied holder=R***** reason=unknown")
        d.wait_log("doormask saw face_denied holder=R*****")
        d.wait_log("doorclear saw face_denied holder=R01234")
        # device_classes says which fields are personal.
        r = run(d, "for _, c in ipairs(linli.device_classes()) do if c.name == 'door' then "
                   "local m = {} for _, e in ipairs(c.events) do m[e.name] = e.sensitive or "
                   "false end return m end end")
        eq(r["r1"]["card_ok"], [{"name": "holder", "mask": "name"}], "card_ok's holder")
        eq(r["r1"]["forced"], False, "forced marks nothing")
        log = d.logtext()
        check("keeper saw face_denied holder=R01234" not in log and
              "doormask saw face_denied holder=R01234" not in log, "never in clear")


def case_bad_arguments_are_named():
    apps = {"keeper.lua": keeper(caps=DOOR_CAPS + ("device.read:locker",
                                                   "device.command:locker"))}
    with node(apps=apps) as d:
        d.ok("devices", "add", "d-new", "door", "tdrv", "ok")
        d.ok("devices", "add", "d-slow", "door", "tdrv", "slow")
        fn = "function() print('never') end"
        # Wrong types raise, naming the argument.
        for code, needle in (
                ("linli.dev_info()", "bad argument #1 to 'dev_info' (string expected, got no "
                                     "value)"),
                ("linli.dev_get({}, 'state')", "bad argument #1 to 'dev_get' (string "
                                               "expected, got table)"),
                ("linli.dev_get('sim-door-001', true)", "bad argument #2 to 'dev_get' (string "
                                                        "expected, got boolean)"),
                (f"linli.dev_command('sim-door-001', 'open', 'seconds=5', 0, {fn})",
                 "bad argument #3 to 'dev_command' (table or nil expected, got string)"),
                (f"linli.dev_command('sim-door-001', 'open', {{ seconds = 5 }}, 'soon', {fn})",
                 "bad argument #4 to 'dev_command' (number expected, got string)"),
                (f"linli.dev_command('sim-door-001', 'open', {{ seconds = 5 }}, -1, {fn})",
                 "bad argument #4 to 'dev_command' (timeout_ms must be >= 0"),
                ("linli.dev_command('sim-door-001', 'open', { seconds = 5 }, 0)",
                 "bad argument #5 to 'dev_command' (function expected, got no value)"),
                ("linli.dev_command('sim-door-001', 'open', { seconds = 5 }, 0, 'cb')",
                 "bad argument #5 to 'dev_command' (function expected, got string)")):
            run_raises(d, code, needle)
        # Unknown device, resource, command; no value yet: LINLI_ENOENT, each its message.
        refused(run(d, "return linli.dev_info('nosuch')"), "LINLI_ENOENT",
                "dev_info: no device 'nosuch'")
        refused(run(d, "return linli.dev_get('nosuch', 'state')"), "LINLI_ENOENT",
                "dev_get: no device 'nosuch'")
        refused(run(d, "return linli.dev_get('sim-door-001', 'smell')"), "LINLI_ENOENT",
                "dev_get sim-door-001: class door has no such resource 'smell' (it has: "
                "state, lock, mode, open_time, passes_today)")
        refused(run(d, "return linli.dev_get('d-new', 'state')"), "LINLI_ENOENT",
                "dev_get d-new: no value of 'state' yet (the device has not reported it)")
        eq(run(d, "return linli.dev_get('d-new')")["r1"], {}, "no value of any resource yet")
        refused(run(d, f"return linli.dev_command('nosuch', 'open', {{}}, 0, {fn})"),
                "LINLI_ENOENT", "dev_command: no device 'nosuch'")
        refused(run(d, f"return linli.dev_command('sim-door-001', '', {{}}, 0, {fn})"),
                "LINLI_EINVAL", "dev_command sim-door-001: no command given")
        refused(run(d, f"return linli.dev_command('sim-door-001', 'fly', {{}}, 0, {fn})"),
                "LINLI_ENOENT", "dev_command sim-door-001 fly: class door has no command 'fly' "
                "(it has: open, lock, set_mode)")
        # A bad argument table: refused before anything is sent, naming the argument.
        for args, code, needle in (
                ("{}", "LINLI_ESCHEMA", "door open: argument 'seconds' (integer) is missing"),
                ("nil", "LINLI_ESCHEMA", "door open: argument 'seconds' (integer) is missing"),
                ("{ seconds = 500 }", "LINLI_ESCHEMA", "'seconds': 500 is outside 1..60 s"),
                ("{ seconds = 'x' }", "LINLI_ESCHEMA", "'seconds': 'x' is a string, not an "
                                                       "integer"),
                ("{ seconds = 5, force = true }", "LINLI_ESCHEMA", "unknown argument 'force'"),
                ("{ 5 }", "LINLI_EINVAL", "dev_command sim-door-001 open: arguments must be a "
                                          "map"),
                ("{ seconds = function() end }", "LINLI_ETYPE",
                 "dev_command sim-door-001 open: args: value.seconds: cannot convert a "
                 "function")):
            refused(run(d, f"return linli.dev_command('sim-door-001', 'open', {args}, 0, {fn})"),
                    code, needle)
        refused(run(d, "return linli.dev_command('sim-locker-001', 'reserve', "
                       f"{{ size = 'huge', hours = 1 }}, 0, {fn})"), "LINLI_ESCHEMA",
                "'huge' is not one of small, medium, large")
        refused(run(d, f"return linli.dev_command('sim-door-001', 'lock', {{}}, 600001, {fn})"),
                "LINLI_EINVAL", "dev_command sim-door-001 lock: timeout 600001 ms is above "
                                "600000 ms")
        log = d.logtext()
        check("never" not in log, "no callback of a refused command")
        eq(len(re.findall(r"device\.command #\d+ ", log)), 0, "nothing was sent")
        # A command the device does not answer in time: fn gets the timeout.
        t = tag()
        t0 = time.time()
        req = run(d, f"return linli.dev_command('d-slow', 'lock', nil, 300, answer('{t}'))")["r1"]
        eq(answer(d, t, "keeper"), {"r": None, "err": "device d-slow did not answer 'lock' "
                                                      "within 300 ms",
                                    "code": "LINLI_ETIMEDOUT", "req": req}, "timed out")
        check(0.25 < time.time() - t0 < 8, f"took {time.time() - t0:.2f}s")
        check(re.search(rf"device.command #{req} d-slow lock by plugin 'keeper': "
                        "LINLI_ETIMEDOUT", d.logtext()), "the timeout is audited")
        # A device that goes away before answering: fn hears it.
        t = tag()
        req = run(d, f"return linli.dev_command('d-slow', 'lock', {{}}, 5000, "
                     f"answer('{t}'))")["r1"]
        d.ok("devices", "remove", "d-slow")
        got = answer(d, t, "keeper")
        eq((got["r"], got["code"], got["req"]), (None, "LINLI_ESTATE", req), "removed")
        check("it was removed before answering 'lock'" in got["err"], got)


# Long enough that no command times out before its sender is stopped, even when each
# console call takes a second on a loaded machine under ASan (it then would be answered).
WAIT_MS = 5000


def case_pending_commands_of_a_stopped_script_are_never_answered():
    rules = {"probe.lua": probe_rule(caps=DOOR_CAPS),
             "other.lua": probe_rule("other", caps=DOOR_CAPS)}
    apps = {"keeper.lua": keeper(caps=DOOR_CAPS)}
    with node(apps=apps, rules=rules) as d:
        d.ok("devices", "add", "d-slow", "door", "tdrv", "slow")
        send = "return linli.dev_command('d-slow', 'lock', {{}}, {ms}, answer('{t}'))"
        # A rule removed, a rule reloaded, a plugin disabled, a plugin reloaded while
        # their commands wait: cancelled in the HAL, the callbacks never called.
        tags, reqs = [], []
        for how in ("remove", "reload", "disable", "reload-plugin"):
            t = tag()
            tags.append(t)
            if how in ("remove", "reload"):
                reqs.append(probe(d, send.format(ms=WAIT_MS, t=t),
                                  rule="probe" if how == "remove" else "other")["r1"])
            else:
                reqs.append(run(d, send.format(ms=WAIT_MS, t=t))["r1"])
            eq(d.ok("devices", "show", "d-slow")["commands_pending"], 1, f"pending ({how})")
            if how == "disable":
                info = d.ok("plugins", "info", "keeper")["resources"]
                check({"kind": "device command",
                       "what": f"device command #{reqs[-1]} lock to d-slow"} in info, info)
            if how == "remove":
                d.ok("rules", "remove", "probe")
            elif how == "reload":
                d.ok("rules", "reload", "other")
            elif how == "disable":
                d.ok("plugins", "disable", "keeper")
                d.ok("plugins", "enable", "keeper")
            else:
                d.ok("plugins", "reload", "keeper")
            eq(d.ok("devices", "show", "d-slow")["commands_pending"], 0, f"cancelled ({how})")
        time.sleep(WAIT_MS / 1000 + 0.5)  # past every timeout
        log = d.logtext()
        whos = ("rule 'probe'", "rule 'other'", "plugin 'keeper'", "plugin 'keeper'")
        for t, req, who in zip(tags, reqs, whos):
            check(f"answer {t} =>" not in log, f"a stopped script was called back: {t}")
            check(f"device.command #{req} d-slow lock by {who}: abandoned by its sender" in log,
                  f"#{req} abandoned: {log[-3000:]}")
        eq(d.ok("devices", "stats")["timeouts"], 0, "none of them timed out")
        # The survivors still work.
        t = tag()
        probe(d, f"return linli.dev_command('sim-door-001', 'lock', {{}}, 0, answer('{t}'))",
              rule="other")
        eq(answer(d, t, "other")["r"], {"ok": True}, "the reloaded rule is answered")
        t = tag()
        run(d, f"return linli.dev_command('sim-door-001', 'lock', {{}}, 0, answer('{t}'))")
        eq(answer(d, t, "keeper")["r"], {"ok": True}, "the reloaded plugin is answered")


def case_fault_inside_a_callback_faults_only_its_script():
    spin = "function() while true do end end"
    rules = {"probe.lua": probe_rule(caps=DOOR_CAPS),
             "other.lua": probe_rule("other", caps=DOOR_CAPS)}
    apps = {"keeper.lua": keeper(caps=DOOR_CAPS),
            "bystander.lua": keeper("bystander", caps=DOOR_CAPS)}
    with node(apps=apps, rules=rules) as d:
        d.ok("devices", "add", "d-slow", "door", "tdrv", "slow")
        # The rule: a command answered at once, whose callback never ends; and one pending.
        probe(d, "return linli.dev_command('d-slow', 'lock', {}, 3000, function() "
                 "print('late') end)")
        probe(d, f"return linli.dev_command('sim-door-001', 'lock', {{}}, 0, {spin})")
        rules_ = wait_for(lambda: (lambda r: r if r["probe"]["state"] == "faulted" else None)(
            {x["name"]: x for x in d.ok("rules", "list")}), "the rule faulted")
        check("instruction" in rules_["probe"]["problem"] or "budget" in rules_["probe"]["problem"],
              rules_["probe"])
        eq(rules_["other"]["state"], "ready", "the other rule")
        eq(d.ok("devices", "show", "d-slow")["commands_pending"], 0,
           "the faulted rule's pending command was cancelled")
        # The plugin alike.
        run(d, "return linli.dev_command('d-slow', 'lock', {}, 3000, function() "
               "print('late') end)")
        run(d, f"return linli.dev_command('sim-door-001', 'lock', {{}}, 0, {spin})")
        plugs = wait_for(lambda: (lambda p: p if p["keeper"]["state"] == "faulted" else None)(
            {x["name"]: x for x in d.ok("plugins", "list")}), "the plugin faulted")
        eq((plugs["bystander"]["state"], plugs["sim"]["state"], plugs["tdrv"]["state"]),
           ("running", "running", "running"), "the others run on")
        eq(d.ok("devices", "show", "d-slow")["commands_pending"], 0,
           "the faulted plugin's pending command was cancelled")
        time.sleep(3.3)
        check("late" not in d.logtext(), "a faulted script was called back")
        # Everyone else still works, through the same device.
        t = tag()
        probe(d, f"return linli.dev_command('sim-door-001', 'lock', {{}}, 0, answer('{t}'))",
              rule="other")
        eq(answer(d, t, "other")["r"], {"ok": True}, "the other rule")
        t = tag()
        run(d, f"return linli.dev_command('sim-door-001', 'lock', {{}}, 0, answer('{t}'))",
            plugin="bystander")
        eq(answer(d, t, "bystander")["r"], {"ok": True}, "the other plugin")
        eq(d.ok("devices", "show", "sim-door-001")["state"], "online", "the door")
        # Started again, the plugin works.
        d.ok("plugins", "reload", "keeper")
        eq(run(d, "return linli.dev_get('sim-door-001', 'lock')")["r1"], "locked", "reloaded")


# A plugins.NAME section with every kind of value libconfig has, and what it reads as.
CONF = ('level = 3; ratio = 0.25; name = "悦澜"; on = true; big = 9000000000L; '
        'nested = { a = 1; deeper = { list = ( 1, "two", { x = 3; } ); }; }; '
        'arr = [ 4, 5, 6 ]; empty = { };')
CONF_READ = {"level": 3, "ratio": 0.25, "name": "悦澜", "on": True, "big": 9000000000,
             "nested": {"a": 1, "deeper": {"list": [1, "two", {"x": 3}]}}, "arr": [4, 5, 6],
             "empty": {}}


def case_plugin_config_and_device_classes_are_the_c_members():
    apps = {"keeper.lua": keeper(caps=DOOR_CAPS), "plain.lua": keeper("plain")}
    rules = {"probe.lua": probe_rule(caps=DOOR_CAPS)}
    # keeper and the C plugin devapp have the same section; plain has none.
    with node(apps=apps, rules=rules, conf={"keeper": CONF, "devapp": CONF}) as d:
        # plugin_config: the plugin's own section, nested groups, lists and arrays included.
        r = run(d, "return linli.plugin_config()")
        eq(r["r1"], CONF_READ, "keeper's plugins.keeper")
        eq(d.ok("devapp", "config"), CONF_READ, "the C member reads the same")
        r = run(d, "local c = linli.plugin_config() return math.type(c.big), "
                   "math.type(c.ratio), #c.nested.deeper.list")
        eq((r["r1"], r["r2"], r["r3"]), ("integer", "float", 3), "Lua types")
        # A table of its own: changing it changes nothing for the next call.
        r = run(d, "local c = linli.plugin_config() c.level = 99 c.nested.a = 7 "
                   "return linli.plugin_config().level, linli.plugin_config().nested.a")
        eq((r["r1"], r["r2"]), (3, 1), "a fresh table each call")
        eq(run(d, "return linli.plugin_config()", plugin="plain")["r1"], {}, "no section: {}")
        r = run(d, "return next(linli.plugin_config()) == nil", plugin="plain")
        eq(r["r1"], True, "an empty table")
        # A rule has no plugin config (plugins.NAME is read by plugins only), even if named.
        refused(probe(d, "return linli.plugin_config()"), "LINLI_ESTATE",
                "plugin_config: rule 'probe' has no plugin config (plugins.NAME of linli.cfg "
                "is read by plugins only)")
        # Read again after a SIGHUP, like the C member's.
        with open(d.cfg) as f:
            text = f.read()
        with open(d.cfg, "w") as f:
            f.write(text.replace(CONF, "level = 4; plain = true;", 1))
        d.kill_with(signal.SIGHUP)
        wait_for(lambda: "config: reloaded" in d.logtext(), "the reload")
        eq(run(d, "return linli.plugin_config()")["r1"], {"level": 4, "plain": True},
           "after SIGHUP")
        eq(d.ok("devapp", "config"), CONF_READ, "devapp's section is unchanged")

        # device_classes: the C member's array, as a table of tables.
        mine = run(d, "return linli.device_classes()")["r1"]
        # (An empty list stays a list, [] — linli.array's mark — as C's is.)
        eq(mine, d.ok("devapp", "classes"), "Lua and C read the same classes")
        # (A rule prints what it got on one log line: the names and one class will do.)
        r = probe(d, "local names = {}\n"
                     "for i, c in ipairs(linli.device_classes()) do names[i] = c.name end\n"
                     "return names")
        eq(r["r1"], [c["name"] for c in mine], "a rule reads them too")
        r = probe(d, "for _, c in ipairs(linli.device_classes()) do\n"
                     "  if c.name == 'smoke' then return c end end")
        eq(r["r1"], {c["name"]: c for c in mine}["smoke"], "one of them")
        # ... and they are the catalog's, as the console lists and shows them.
        listed = [c["name"] for c in d.ok("catalog", "list", "devices")]
        eq([c["name"] for c in mine], listed, "every class, in the catalog's order")
        by = {c["name"]: c for c in mine}
        for name in ("door", "smoke", "electric_meter"):
            show, c = d.ok("catalog", "show", "device", name), by[name]
            eq((c["title_en"], c["title_zh"], c["heartbeat"]),
               (show["title_en"], show["title_zh"], show["heartbeat_s"]), f"{name}: titles")
            keys = ("name", "type", "access", "unit", "min", "max", "values")
            eq(c["resources"], [{k: f[k] for k in keys if k in f} for f in show["resources"]],
               f"{name}: resources")
            eq(c["commands"], [{"name": x["name"],
                                "args": [{k: f[k] for k in keys if k in f} for f in x["args"]]}
                               for x in show["commands"]], f"{name}: commands")
            eq(c["events"], show["events"], f"{name}: events")
        r = run(d, "local all = linli.device_classes() return #all, all[1].name, "
                   "math.type(all[1].heartbeat)")
        eq((r["r1"], r["r2"], r["r3"]), (len(listed), listed[0], "integer"), "an array")

        # Bad arguments raise, naming them; keeper goes on.
        for code, needle in (
                ("linli.plugin_config('keeper')", "bad argument #1 to 'plugin_config' (no value "
                                                  "expected, got string: it takes no arguments)"),
                ("linli.device_classes(1)", "bad argument #1 to 'device_classes' (no value "
                                            "expected, got number: it takes no arguments)"),
                ("linli.device_classes(nil)", "bad argument #1 to 'device_classes' (no value "
                                              "expected, got nil: it takes no arguments)")):
            run_raises(d, code, needle)
        # Not while the file loads.
        early = os.path.join(d.dir, "early.lua")
        write(early, "EARLY = select(2, pcall(linli.device_classes))\n"
                     "EARLY2 = select(2, pcall(linli.plugin_config))\n" + keeper("early"))
        d.ok("plugins", "install", early)
        r = run(d, "return EARLY, EARLY2", plugin="early")
        check("linli.device_classes: not available while the file loads" in r["r1"], r)
        check("linli.plugin_config: not available while the file loads" in r["r2"], r)
        eq(d.ok("plugins", "info", "keeper")["state"], "running", "keeper")


def case_the_reference_example_of_store_on_commit_works():
    """sdk/lua-api.md's smoke_alarm rule keeps the alarm, then announces it once kept."""
    with open(os.path.join(SRC, "sdk", "lua-api.md")) as f:
        example = [b for b in re.findall(r"```lua\n(.*?)```", f.read(), re.S)
                   if 'name = "smoke_alarm"' in b]
    eq(len(example), 1, "the example")
    listen = PRELUDE + """
rule { name = "listen", on = "notice/alarm/#",
  run = function(e, topic) print("heard " .. topic .. " " .. enc(e)) end }
"""
    with node(rules={"smoke_alarm.lua": example[0], "listen.lua": listen}) as d:
        d.ok("publish", "dev/smoke/sim-smoke-001/event/alarm", "{}")
        heard = logged(d, "listen: heard notice/alarm/stored ")
        rows = d.ok("data", "query", "alarms")["records"]
        eq(len(rows), 1, "one alarm kept")
        eq(heard, {"alarm": rows[0]["id"], "device": "sim-smoke-001"}, "announced once kept")
        eq((rows[0]["scope"], rows[0]["active"], rows[0]["acknowledged"]), (COMMUNITY, True, False),
           "the alarm")


if __name__ == "__main__":
    sys.exit(main(dict(globals())))
