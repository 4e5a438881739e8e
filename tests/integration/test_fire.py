"""Integration tests of the fire plugin (plugins/fire/), through a real linlid.

The node is the community hefei/baohe/binhu/yuelan with the real catalog, the alarms and
fire plugins granted exactly what they declare, and the test driver tdrv
(tests/plugins/tp_driver.c), whose console commands post readings and raise events the
way a smoke detector, hydrant or gas meter would. Every alarm is read back from the alarms
plugin (`linli alarms list`), so each case runs the whole path: device -> HAL -> bus ->
fire -> alarmreq/raise -> alarms -> store.
"""
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import BUILD, SRC, PluginNode, check, eq, main, plugin_meta, wait_for  # noqa: E402

TP = os.path.abspath(os.environ.get("LINLI_TP_DIR", os.path.join(BUILD, "tests", "plugins")))
SOS = [os.path.join(BUILD, "plugins", "alarms", "alarms.so"),
       os.path.join(BUILD, "plugins", "fire", "fire.so"),
       os.path.join(TP, "tp_driver.so")]
SIM = os.path.join(BUILD, "plugins", "sim", "sim.so")
CATALOG = os.path.join(SRC, "catalog")
YUELAN = "hefei/baohe/binhu/yuelan"


def node(fire="", clock=False, sim=None):
    """A community linlid with alarms, fire and tdrv; `fire` is the plugins.fire group."""
    return PluginNode("fire", SOS + ([SIM] if sim else []), fire, clock,
                      f"sim = {{ {sim} }};" if sim else "")


def add(d, dev, cls, *opts):
    return d.ok("devices", "add", dev, cls, "tdrv", "ok", *opts)


def event(d, dev, name, n=1):
    for _ in range(n):
        eq(d.ok("tdrv", "event", dev, name)["rc"], 0, f"event {name} of {dev}")


def post(d, dev, res, value):
    eq(d.ok("tdrv", "post", dev, res, "float", str(value))["rc"], 0, f"{res} of {dev}")


def stats(d):
    return d.ok("fire", "stats")


def active(d):
    """The alarms in the store, by (source, type)."""
    return {(a["source"], a["type"]): a for a in d.ok("alarms", "list")["alarms"]}


def raised(d, want, what):
    """Wait until fire's raises answered per type are `want` (others 0); the alarms."""
    full = {t: want.get(t, 0) for t in stats(d)["raised"]}
    wait_for(lambda: stats(d)["raised"] == full, what)
    return active(d)


def case_each_trigger_raises_one_alarm_under_a_burst():
    with node() as d:
        add(d, "sd-1", "smoke", "--building", "3", "--floor", "5")
        add(d, "hy-1", "hydrant")
        add(d, "gm-1", "gas_meter")
        event(d, "sd-1", "alarm", 8)
        event(d, "hy-1", "leak", 4)
        event(d, "hy-1", "low_pressure", 3)
        event(d, "gm-1", "gas_leak", 5)
        event(d, "gm-1", "abnormal_flow")  # not fire's: seen, never raised
        event(d, "sd-1", "low_battery")
        got = raised(d, {"smoke": 8, "hydrant_leak": 4, "hydrant_low_pressure": 3,
                         "gas_leak": 5}, "every event raised")
        eq(sorted(got), sorted([("device:sd-1", "smoke"), ("device:hy-1", "hydrant_leak"),
                                ("device:hy-1", "hydrant_low_pressure"),
                                ("device:gm-1", "gas_leak")]), "one alarm per trigger")
        eq({k: (a["count"], a["severity"], a["scope"]) for k, a in got.items()},
           {("device:sd-1", "smoke"): (8, "major", YUELAN),
            ("device:hy-1", "hydrant_leak"): (4, "minor", YUELAN),
            ("device:hy-1", "hydrant_low_pressure"): (3, "major", YUELAN),
            ("device:gm-1", "gas_leak"): (5, "critical", YUELAN)}, "the burst folded")
        eq(d.ok("data", "query", "alarms")["count"], 4, "four rows in the store")
        a = d.ok("alarms", "show", got[("device:sd-1", "smoke")]["id"])
        eq(a["details"], "smoke detector alarm (building 3, floor 5)", "where it is")
        st = stats(d)
        # 22 events and each device's first word, its "online"
        eq((st["events"], sum(st["failed"].values())), (25, 0), "events seen, none failed")
        eq(st["config"]["smoke_density"], 1.0, "the defaults")
        # Where a device is comes from the (audited) devices dataset once per change of its
        # record (going online is one; a last_seen write-back, each 60 s, may be another),
        # not once per event.
        check(st["device_reads"] <= 9, f"a burst is not a read per event: {st}")
        print(f"  22 events of 3 devices: {st['device_reads']} reads of devices")
        # The command acts as its caller: fire.stats needs an operator.
        viewer = d.account("viewer1", "viewer", node=YUELAN)
        rc, out, err = d.cli("fire", "stats", env={"LINLI_SESSION": viewer})
        check(rc != 0 and "fire.stats" in err, f"a viewer is refused: {rc} {err}")
        op = d.account("op1", "operator", node=YUELAN)
        rc, out, err = d.cli("fire", "stats", env={"LINLI_SESSION": op})
        eq((rc, out and out["events"]), (0, 25), f"an operator reads them: {err}")
        # The plugin index asks exactly what fire.so declares, all it was granted.
        name, caps = plugin_meta(SOS[1])
        entry = d.ok("catalog", "show", "plugin", "fire")
        eq((entry["version"], entry["sdk"], entry["requires"]), ("1.0.0", "1.1", ["alarms"]),
           "index entry")
        eq(sorted(entry["capabilities"]), sorted(caps), "the index lists what fire.so declares")


def case_smoke_density_held_for_n_seconds():
    with node("smoke_for_s = 60; normal_for_s = 60; pressure_for_s = 60;", clock=True) as d:
        add(d, "sd-1", "smoke")
        add(d, "hy-1", "hydrant")
        post(d, "sd-1", "smoke_density", 5.0)
        post(d, "hy-1", "pressure", 0.05)
        d.ok("clock", "advance", "5s")
        post(d, "sd-1", "smoke_density", 6.0)  # still over, not yet 60 s
        # (the test clock runs on from the real one: "not yet" keeps a margin for slow builds)
        st = stats(d)
        eq((st["readings"], sum(st["raised"].values()), st["watching"]), (3, 0, 2),
           "below 60 s: nothing")
        eq(active(d), {}, "no alarm yet")
        d.ok("clock", "advance", "56s")
        got = raised(d, {"smoke_density": 1, "hydrant_low_pressure": 1}, "held 61 s")
        sd = got[("device:sd-1", "smoke_density")]
        eq((sd["count"], sd["severity"]), (1, "major"), "one alarm")
        eq(d.ok("alarms", "show", sd["id"])["details"],
           "smoke density 6.00 dB/m over 1.00 for 60 s", "details")
        # More readings over the threshold: the same excursion, nothing more.
        for v in (7.0, 8.0, 9.5):
            post(d, "sd-1", "smoke_density", v)
        d.ok("clock", "advance", "90s")
        eq(stats(d)["raised"]["smoke_density"], 1, "latched while over")
        # Back to normal for 60 s: counted, its alarm cleared by the source (the operator
        # still acknowledges it); the next excursion is a new alarm.
        post(d, "sd-1", "smoke_density", 0.05)
        d.ok("clock", "advance", "10s")
        eq(stats(d)["normal"]["smoke_density"], 0, "not normal long enough")
        eq(d.ok("alarms", "show", sd["id"])["state"], "active_unacknowledged", "still active")
        d.ok("clock", "advance", "51s")
        wait_for(lambda: stats(d)["cleared"]["smoke_density"] == 1, "normal for 60 s")
        d.wait_log("smoke_density of device sd-1 at hefei/baohe/binhu/yuelan back to normal "
                   "for 60 s: clearing its alarm")
        shown = d.ok("alarms", "show", sd["id"])
        eq(shown["state"], "cleared_unacknowledged", "cleared by its source")
        h = d.ok("alarms", "history", sd["id"])["history"]
        check(any(x["action"] == "cleared" and x["by"] == "plugin:fire" for x in h), h)
        post(d, "sd-1", "smoke_density", 4.0)
        d.ok("clock", "advance", "61s")
        raised(d, {"smoke_density": 2, "hydrant_low_pressure": 1}, "a second excursion")
        again = [a for a in d.ok("alarms", "list", "--active")["alarms"]
                 if (a["source"], a["type"]) == ("device:sd-1", "smoke_density")]
        eq(len(again), 1, "one active")
        check(again[0]["id"] != sd["id"] and again[0]["count"] == 1, f"a new alarm: {again}")
        # A short spike is nothing; high pressure has its own type.
        post(d, "hy-1", "pressure", 2.2)
        post(d, "hy-1", "pressure", 0.4)
        d.ok("clock", "advance", "61s")
        wait_for(lambda: stats(d)["normal"]["hydrant_low_pressure"] == 1, "low pressure over")
        eq(stats(d)["raised"]["hydrant_high_pressure"], 0, "a spike is nothing")
        post(d, "hy-1", "pressure", 2.2)
        d.ok("clock", "advance", "61s")
        got = raised(d, {"smoke_density": 2, "hydrant_low_pressure": 1,
                         "hydrant_high_pressure": 1}, "high pressure")
        eq(got[("device:hy-1", "hydrant_high_pressure")]["severity"], "minor", "severity")


def case_two_detectors_in_a_building_are_critical():
    with node("building_window_s = 60;", clock=True) as d:
        add(d, "sd-1", "smoke", "--building", "3", "--floor", "5")
        add(d, "sd-2", "smoke", "--building", "3", "--floor", "6")
        add(d, "sd-3", "smoke", "--building", "4")
        add(d, "sd-4", "smoke", "--building", "4")
        add(d, "sd-9", "smoke")  # no building: never counted
        eq((d.ok("data", "get", "devices", "sd-1")["building"],
            d.ok("data", "get", "devices", "sd-1")["floor"]), ("3", 5), "stored")
        rc, out, err = d.cli("devices", "add", "sd-x", "smoke", "tdrv", "ok", "--floor", "999")
        check(rc != 0 and "--floor '999'" in err, f"a bad floor is refused: {err}")
        event(d, "sd-1", "alarm")
        event(d, "sd-3", "alarm")
        event(d, "sd-9", "alarm")
        event(d, "sd-1", "alarm")  # the same detector again: still one
        raised(d, {"smoke": 4}, "three detectors, one building each")
        check(not any(t == "fire_confirmed" for _, t in active(d)), "no fire confirmed yet")
        event(d, "sd-2", "alarm")
        got = raised(d, {"smoke": 5, "fire_confirmed": 1}, "two detectors of building 3")
        f = got[("plugin:fire/building/3", "fire_confirmed")]
        eq((f["severity"], f["count"], f["scope"]), ("critical", 1, YUELAN), "critical")
        eq(d.ok("alarms", "show", f["id"])["details"],
           "2 detectors of building 3 within 60 s: sd-2, sd-1", "which")
        # Outside the window, building 4's second detector is alone.
        d.ok("clock", "advance", "61s")
        event(d, "sd-4", "alarm")
        raised(d, {"smoke": 6, "fire_confirmed": 1}, "sd-4 alone in its window")
        eq(stats(d)["detectors_in_window"], 1, "the old hits were forgotten")


def case_a_device_gone_unavailable_is_its_own_alarm():
    with node() as d:
        add(d, "gm-1", "gas_meter", "--heartbeat", "1")
        add(d, "sd-1", "smoke", "--heartbeat", "1")
        post(d, "gm-1", "flow", 0.5)
        post(d, "sd-1", "temperature", 21.0)
        got = raised(d, {"device_unavailable": 2}, "both went silent")
        eq({k: (a["severity"], a["count"]) for k, a in got.items()},
           {("device:gm-1", "device_unavailable"): ("warning", 1),
            ("device:sd-1", "device_unavailable"): ("warning", 1)}, "one each")
        eq(d.ok("alarms", "show", got[("device:gm-1", "device_unavailable")]["id"])["details"],
           "gas_meter gm-1 stopped reporting (unavailable)", "details")
        post(d, "gm-1", "flow", 0.4)  # back online: counted, its alarm cleared
        wait_for(lambda: stats(d)["cleared"]["device_unavailable"] == 1, "online again")
        eq(stats(d)["normal"]["device_unavailable"], 1, "counted")
        gm = d.ok("alarms", "show", got[("device:gm-1", "device_unavailable")]["id"])
        eq(gm["state"], "cleared_unacknowledged", "cleared by its source")
        eq(d.ok("alarms", "show", got[("device:sd-1", "device_unavailable")]["id"])["state"],
           "active_unacknowledged", "the other stays")


def case_bad_config_refused_at_start_and_on_sighup():
    for bad, needle in (
            ("smoke_density = 20.0;",
             "linli.cfg: plugins.fire.smoke_density: must be a number 0.01 to 10 (dB/m)"),
            ('smoke_for_s = "10s";',
             "linli.cfg: plugins.fire.smoke_for_s: must be whole seconds, 1 to 86400"),
            ("pressure_low = 1.0; pressure_high = 0.5;",
             "linli.cfg: plugins.fire.pressure_high: 0.5 MPa must be above pressure_low (1)"),
            ('severity = { smoke = "loud"; };',
             "linli.cfg: plugins.fire.severity.smoke: must be one of critical, major, minor"),
            ('severity = { flood = "major"; };',
             "linli.cfg: plugins.fire.severity.flood: not an alarm type of fire"),
            ("window_s = 60;",
             "linli.cfg: plugins.fire.window_s: unknown key (it takes smoke_density")):
        with node(bad) as d:
            info = d.ok("plugins", "info", "fire")
            check(info["state"] == "failed" and needle in info["reason"], f"{bad}: {info}")
            eq(d.ok("plugins", "info", "alarms")["state"], "running", "alarms runs on")
    n = node('smoke_density = 2.5; severity = { smoke = "critical"; };')
    with n as d:
        eq(stats(d)["config"]["smoke_density"], 2.5, "configured")
        n.configure('smoke_density = 2.5; smoke_for_s = 0;')
        d.kill_with(signal.SIGHUP)
        d.wait_log("fire: reload refused, keeping the running configuration: linli.cfg: "
                   "plugins.fire.smoke_for_s: must be whole seconds, 1 to 86400")
        c = stats(d)["config"]
        eq((c["smoke_for_s"], c["severity"]["smoke"]), (10, "critical"), "the old one runs")
        eq(stats(d)["refused_reloads"], 1, "refused once")
        add(d, "sd-1", "smoke")
        event(d, "sd-1", "alarm")
        eq(raised(d, {"smoke": 1}, "raised")[("device:sd-1", "smoke")]["severity"], "critical",
           "with the running severity")
        n.configure('smoke_density = 3.0; smoke_for_s = 30;')
        d.kill_with(signal.SIGHUP)
        wait_for(lambda: stats(d)["config"]["smoke_for_s"] == 30, "the good one applied")
        c = stats(d)["config"]
        eq((c["smoke_density"], c["severity"]["smoke"]), (3.0, "major"), "defaults return")
        eq(stats(d)["refused_reloads"], 1, "no new refusal")


def case_the_simulated_fleet_raises_fire_alarms():
    """What tools/demo shows: the sim driver's detectors, hydrants and gas meters raise
    alarms through fire, one per device and type, every event counted."""
    sim = ('per_class = 2; classes = [ "smoke", "hydrant", "gas_meter" ]; seed = 7; '
           'auto = false; thread = false;')
    with node(sim=sim) as d:
        out = d.ok("sim", "step", "3000")
        check(out["events"] > 0, f"the fleet raised events: {out}")
        mapped = {("smoke", "alarm"): "smoke", ("hydrant", "low_pressure"):
                  "hydrant_low_pressure", ("hydrant", "leak"): "hydrant_leak",
                  ("gas_meter", "gas_leak"): "gas_leak"}
        want, pairs = {}, set()
        after = 0
        while True:
            page = d.ok("events", "journal", "--after", str(after), "--limit", "1000")["events"]
            if not page:
                break
            for e in page:
                _, cls, dev, *rest = e["topic"].split("/")
                t = mapped.get((cls, rest[-1])) if rest[:1] == ["event"] else None
                if t:
                    want[t] = want.get(t, 0) + 1
                    pairs.add((f"device:{dev}", t))
            after = page[-1]["seq"]
        check(sum(want.values()) > 0, f"fire events in 3000 rounds: {want}")
        eq(stats(d)["watching"], 0, "no reading left past a threshold (nothing else to come)")
        got = raised(d, want, "every fire event of the fleet raised")
        eq(sorted(got), sorted(pairs), "one alarm per device and type")
        eq(sum(a["count"] for a in got.values()), sum(want.values()), "every event counted")
        print(f"  3000 rounds of 6 devices: {sum(want.values())} fire events, "
              f"{len(got)} alarms {sorted(want.items())}")


if __name__ == "__main__":
    sys.exit(main(globals()))
