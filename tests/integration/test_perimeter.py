"""Integration tests of the perimeter plugin (plugins/perimeter/), through a real linlid.

The node is the community hefei/baohe/binhu/yuelan with the real catalog (or a copy of it
with another plugin index), the alarms and perimeter plugins granted exactly what they
declare, and the test driver tdrv (tests/plugins/tp_driver.c), whose console commands post
readings and raise events the way a fence, a manhole cover, a trash bin or a camera would.
Every alarm is read back from the alarms plugin (`linli alarms list`), so each case runs the
whole path: device -> HAL -> bus -> perimeter -> alarmreq/raise|clear -> alarms -> store.
"""
import os
import shutil
import signal
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from harness import BUILD, SRC, PluginNode, check, eq, main, plugin_meta, wait_for  # noqa: E402

TP = os.path.abspath(os.environ.get("LINLI_TP_DIR", os.path.join(BUILD, "tests", "plugins")))
SOS = [os.path.join(BUILD, "plugins", "alarms", "alarms.so"),
       os.path.join(BUILD, "plugins", "perimeter", "perimeter.so"),
       os.path.join(TP, "tp_driver.so")]
SIM = os.path.join(BUILD, "plugins", "sim", "sim.so")
CATALOG = os.path.join(SRC, "catalog")
YUELAN = "hefei/baohe/binhu/yuelan"
CLASSES = ["efence", "manhole", "trash_bin", "camera"]


def node(conf="", clock=False, sim=None, catalog=CATALOG):
    """A community linlid with alarms, perimeter and tdrv; `conf` is plugins.perimeter."""
    return PluginNode("perimeter", SOS + ([SIM] if sim else []), conf, clock,
                      f"sim = {{ {sim} }};" if sim else "", catalog)


def add(d, dev, cls):
    return d.ok("devices", "add", dev, cls, "tdrv", "ok")


def event(d, dev, name, n=1, **data):
    for _ in range(n):
        eq(d.ok("tdrv", "event", dev, name, *[f"{k}={v}" for k, v in data.items()])["rc"], 0,
           f"event {name} of {dev}")


def post(d, dev, res, typ, value):
    eq(d.ok("tdrv", "post", dev, res, typ, str(value))["rc"], 0, f"{res} of {dev}")


def stats(d):
    return d.ok("perimeter", "stats")


def alarms(d):
    """Every alarm in the store (active or cleared), by (source, type): the latest."""
    rows = d.ok("alarms", "list", "--limit", "1000")["alarms"]
    return {(a["source"], a["type"]): a for a in sorted(rows, key=lambda a: a["id"])}


def raised(d, want, what):
    """Wait until perimeter's raises answered per type are `want` (others 0); the alarms."""
    full = {t: want.get(t, 0) for t in stats(d)["raised"]}
    wait_for(lambda: stats(d)["raised"] == full, what)
    return alarms(d)


def set_clock(d, when):
    """Move the test clock forward (local time) and log in again (sessions follow it)."""
    d.ok("clock", "set", when)
    d.login()


def case_each_event_raises_one_alarm_and_the_device_clears_it():
    with node() as d:
        for dev, cls in (("ef-1", "efence"), ("mh-1", "manhole"), ("tb-1", "trash_bin"),
                         ("cam-1", "camera")):
            add(d, dev, cls)
        event(d, "ef-1", "cut", 2)
        event(d, "ef-1", "tamper")
        event(d, "ef-1", "fault")  # not an alarm here: counted
        event(d, "mh-1", "opened", 3)
        event(d, "mh-1", "tilted", 2)
        event(d, "mh-1", "overflow")
        event(d, "tb-1", "full", 2)
        event(d, "tb-1", "fire")
        event(d, "cam-1", "fire_lane_blocked", 2)
        for name in ("loitering", "fall", "intrusion", "crowd", "video_loss"):
            event(d, "cam-1", name)
        got = raised(d, {"fence_cut": 2, "fence_tamper": 1, "manhole_open": 3,
                         "manhole_tilt": 2, "trash_full": 2, "trash_fire": 1,
                         "fire_lane_blocked": 2, "loitering": 1, "fall": 1,
                         "camera_intrusion": 1}, "every mapped event raised")
        eq({k: (a["count"], a["severity"], a["scope"]) for k, a in got.items()},
           {("device:ef-1", "fence_cut"): (2, "critical", YUELAN),
            ("device:ef-1", "fence_tamper"): (1, "major", YUELAN),
            ("device:mh-1", "manhole_open"): (3, "major", YUELAN),
            ("device:mh-1", "manhole_tilt"): (2, "major", YUELAN),
            ("device:tb-1", "trash_full"): (2, "warning", YUELAN),
            ("device:tb-1", "trash_fire"): (1, "critical", YUELAN),
            ("device:cam-1", "fire_lane_blocked"): (2, "major", YUELAN),
            ("device:cam-1", "loitering"): (1, "minor", YUELAN),
            ("device:cam-1", "fall"): (1, "critical", YUELAN),
            ("device:cam-1", "camera_intrusion"): (1, "major", YUELAN)},
           "one alarm per device and type, bursts folded, severities as configured")
        eq(d.ok("data", "query", "alarms")["count"], 10, "ten rows in the store")
        eq(d.ok("alarms", "show", got[("device:cam-1", "fire_lane_blocked")]["id"])["details"],
           "camera analytics: fire_lane_blocked", "a camera's details")
        eq(d.ok("alarms", "show", got[("device:mh-1", "manhole_open")]["id"])["details"],
           "manhole cover opened", "a manhole's details")
        st = stats(d)
        # 20 events and each device's first word, its "online" (seen, neither kind)
        eq((st["events"], st["unmapped"], sum(st["failed"].values())), (24, 4, 0),
           "events seen; fault, overflow, crowd, video_loss counted, not raised")
        eq((st["classes"], st["skipped"]), (CLASSES, {}), "every class is perimeter's")

        # The device says it is over: the lid reads closed, the cover is level, the bin
        # was emptied; each clears its alarm (the operator still acknowledges it).
        post(d, "mh-1", "lid", "str", "open")
        post(d, "tb-1", "fill_level", "int", 80)
        post(d, "mh-1", "tilt_angle", "float", 12.5)  # over level_deg (5): still tilted
        post(d, "mh-1", "lid", "str", "closed")
        post(d, "mh-1", "tilt_angle", "float", 3.0)
        post(d, "tb-1", "fill_level", "int", 20)
        wait_for(lambda: stats(d)["cleared"] == dict(
            {t: 0 for t in stats(d)["cleared"]}, manhole_open=1, manhole_tilt=1,
            trash_full=1), "three cleared by their device")
        d.wait_log("manhole_open of device mh-1 at hefei/baohe/binhu/yuelan: the lid reads "
                   "closed, clearing its alarm")
        now = alarms(d)
        eq({k: a["state"] for k, a in now.items() if a["state"] != "active_unacknowledged"},
           {("device:mh-1", "manhole_open"): "cleared_unacknowledged",
            ("device:mh-1", "manhole_tilt"): "cleared_unacknowledged",
            ("device:tb-1", "trash_full"): "cleared_unacknowledged"}, "only those cleared")
        h = d.ok("alarms", "history", got[("device:mh-1", "manhole_tilt")]["id"])["history"]
        check(any(x["action"] == "cleared" and x["by"] == "plugin:perimeter" and
                  x["why"] == "tilt 3.0 deg, level (at most 5.0)" for x in h), h)
        # Closed again is nothing new; opened again is a new alarm.
        post(d, "mh-1", "lid", "str", "closed")
        event(d, "mh-1", "opened")
        got2 = raised(d, {"fence_cut": 2, "fence_tamper": 1, "manhole_open": 4,
                          "manhole_tilt": 2, "trash_full": 2, "trash_fire": 1,
                          "fire_lane_blocked": 2, "loitering": 1, "fall": 1,
                          "camera_intrusion": 1}, "opened again")
        again = got2[("device:mh-1", "manhole_open")]
        check(again["id"] != got[("device:mh-1", "manhole_open")]["id"] and
              again["count"] == 1 and again["state"] == "active_unacknowledged", again)
        eq(stats(d)["cleared"]["manhole_open"], 1, "a second 'closed' cleared nothing")
        # After a restart the plugin has not seen mh-1: its first "closed" still clears the
        # alarm raised before (quietly: the log names only clears of alarms seen raised).
        eq(d.stop(), 0, "clean stop")
        d.start()
        post(d, "mh-1", "lid", "str", "closed")
        wait_for(lambda: stats(d)["cleared"]["manhole_open"] == 1, "cleared after a restart")
        eq(d.ok("alarms", "show", again["id"])["state"], "cleared_unacknowledged", "that one")
        post(d, "mh-1", "tilt_angle", "float", 1.0)  # its alarm was cleared: none active
        post(d, "tb-1", "fill_level", "int", 10)
        eq(d.ok("alarms", "show", got[("device:tb-1", "trash_fire")]["id"])["state"],
           "active_unacknowledged", "a fire is the operator's to clear")
        st = stats(d)
        eq((st["cleared"]["manhole_tilt"], st["cleared"]["trash_full"], st["readings"]),
           (0, 0, 3), "none active, nothing counted")
        eq((d.logtext().count("clearing its alarm"), d.run_log().count("clearing its alarm")),
           (3, 0), "the three before the restart logged, none after it")

        # The command acts as its caller: perimeter.stats needs an operator.
        viewer = d.account("viewer1", "viewer", node=YUELAN)
        rc, out, err = d.cli("perimeter", "stats", env={"LINLI_SESSION": viewer})
        check(rc != 0 and "perimeter.stats" in err, f"a viewer is refused: {rc} {err}")
        op = d.account("op1", "operator", node=YUELAN)
        rc, out, err = d.cli("perimeter", "stats", env={"LINLI_SESSION": op})
        eq((rc, out and out["readings"]), (0, 3), f"an operator reads them: {err}")
        # The plugin index asks exactly what perimeter.so declares, all it was granted,
        # and gives it its four classes.
        name, caps = plugin_meta(SOS[1])
        entry = d.ok("catalog", "show", "plugin", "perimeter")
        eq((entry["version"], entry["sdk"], entry["requires"], entry["classes"]),
           ("1.0.0", "1.1", ["alarms"], CLASSES), "index entry")
        eq(sorted(entry["capabilities"]), sorted(caps), "the index lists what it declares")
        eq([d.ok("catalog", "show", "device", c).get("plugin") for c in CLASSES + ["smoke"]],
           ["perimeter"] * 4 + ["fire"], "each class says its plugin")


def case_fence_crossings_follow_the_schedule_and_cameras_their_table():
    conf = ('zones = { gate = [ "08:00", "18:00" ]; yard = [ "07:30", "07:30" ]; }; '
            'camera_events = { loitering = { severity = "major"; }; '
            'fall = { type = "person_fall"; severity = "critical"; }; };')
    with node(conf, clock=True) as d:
        for dev in ("ef-1", "ef-2", "ef-3"):
            add(d, dev, "efence")
        add(d, "cam-1", "camera")
        set_clock(d, "2030-03-01T12:00")  # local time: noon
        event(d, "ef-1", "crossing", 2)  # no zone: the default hours, 22:00-06:00
        event(d, "ef-1", "crossing", zone="north")  # a zone without hours of its own
        event(d, "ef-2", "crossing", zone="gate")  # 08:00-18:00
        event(d, "ef-3", "crossing", zone="yard")  # all day
        event(d, "ef-1", "cut")  # a cut is never out of hours
        got = raised(d, {"fence_crossing": 2, "fence_cut": 1}, "noon")
        eq(stats(d)["outside_schedule"], 3, "the night-only crossings counted, not raised")
        eq(sorted(k for k in got if k[1] == "fence_crossing"),
           [("device:ef-2", "fence_crossing"), ("device:ef-3", "fence_crossing")], "by zone")
        eq(d.ok("alarms", "show", got[("device:ef-2", "fence_crossing")]["id"])["details"],
           "fence crossing in zone gate (watched 08:00-18:00)", "details name the zone")
        set_clock(d, "2030-03-01T23:30")
        event(d, "ef-1", "crossing")
        event(d, "ef-1", "crossing", zone="north")
        event(d, "ef-2", "crossing", zone="gate")
        set_clock(d, "2030-03-02T05:59")
        event(d, "ef-1", "crossing")
        set_clock(d, "2030-03-02T06:00")  # the end is not in the hours
        event(d, "ef-1", "crossing")
        got = raised(d, {"fence_crossing": 5, "fence_cut": 1}, "night")
        eq(stats(d)["outside_schedule"], 5, "gate at night, ef-1 at 06:00")
        eq(got[("device:ef-1", "fence_crossing")]["count"], 3, "ef-1's night crossings")
        eq(d.ok("alarms", "show", got[("device:ef-1", "fence_crossing")]["id"])["details"],
           "fence crossing (watched 22:00-06:00)", "the default hours")
        c = stats(d)["config"]
        eq((c["crossing_hours"], c["zones"]),
           (["22:00", "06:00"], {"gate": "08:00-18:00", "yard": "07:30-07:30"}), "hours")
        # The camera's events by name, through the configured table only.
        for name in ("loitering", "fall", "fire_lane_blocked", "intrusion", "loitering"):
            event(d, "cam-1", name)
        got = raised(d, {"fence_crossing": 5, "fence_cut": 1, "loitering": 2,
                         "person_fall": 1}, "the camera table")
        eq({k: (a["count"], a["severity"]) for k, a in got.items() if k[0] == "device:cam-1"},
           {("device:cam-1", "loitering"): (2, "major"),
            ("device:cam-1", "person_fall"): (1, "critical")}, "as the table says")
        st = stats(d)
        eq(st["unmapped"], 2, "fire_lane_blocked and intrusion are not in this table")
        eq(st["config"]["camera_events"],
           {"loitering": {"type": "loitering", "severity": "major"},
            "fall": {"type": "person_fall", "severity": "critical"}}, "the table in force")


def case_bad_config_refused_at_start_and_on_sighup():
    for bad, needle in (
            ('crossing_hours = [ "22:00" ];',
             'linli.cfg: plugins.perimeter.crossing_hours: must be [ "HH:MM", "HH:MM" ] in '
             'local time'),
            ("night_only = true;",
             "linli.cfg: plugins.perimeter.night_only: unknown key (it takes crossing_hours, "
             "zones, level_deg, empty_below, severity, camera_events)")):
        with node(bad) as d:
            info = d.ok("plugins", "info", "perimeter")
            check(info["state"] == "failed" and needle in info["reason"], f"{bad}: {info}")
            eq(d.ok("plugins", "info", "alarms")["state"], "running", "alarms runs on")
    n = node('severity = { trash_full = "minor"; };')
    with n as d:
        eq(stats(d)["config"]["severity"]["trash_full"], "minor", "configured")
        for bad, needle in (
                ('zones = { gate = [ "25:00", "06:00" ]; };',
                 'plugins.perimeter.zones.gate: must be [ "HH:MM", "HH:MM" ]'),
                ('zones = { Gate = [ "08:00", "18:00" ]; };',
                 "plugins.perimeter.zones.Gate: a zone name must be [a-z][a-z0-9_]*"),
                ("level_deg = 91.0;", "plugins.perimeter.level_deg: must be a number 0 to 90"),
                ("empty_below = 0;",
                 "plugins.perimeter.empty_below: must be a whole percent, 1 to 100"),
                ('severity = { trash_full = "urgent"; };',
                 "plugins.perimeter.severity.trash_full: must be one of critical, major, "
                 "minor, warning, indeterminate"),
                ('severity = { loitering = "major"; };',
                 "plugins.perimeter.severity.loitering: not an alarm type of perimeter"),
                ('camera_events = { dance = { severity = "major"; }; };',
                 "plugins.perimeter.camera_events.dance: not an event of device class camera "
                 "(intrusion, loitering, fire_smoke, crowd, video_loss, tamper, "
                 "fire_lane_blocked, fall, ebike_entry)"),
                ('camera_events = { fall = { type = "Fall!"; severity = "major"; }; };',
                 "plugins.perimeter.camera_events.fall.type: an alarm type must be"),
                ('camera_events = { fall = { type = "fall"; }; };',
                 "plugins.perimeter.camera_events.fall.severity: must be one of"),
                ('camera_events = { fall = { kind = "fall"; severity = "major"; }; };',
                 "plugins.perimeter.camera_events.fall: unknown key 'kind'")):
            n.configure(bad)
            d.kill_with(signal.SIGHUP)
            d.wait_log("perimeter: reload refused, keeping the running configuration: "
                       "linli.cfg: " + needle)
        st = stats(d)
        eq((st["refused_reloads"], st["config"]["severity"]["trash_full"]), (10, "minor"),
           "each refused once, the running values stay")
        add(d, "tb-1", "trash_bin")
        event(d, "tb-1", "full")
        eq(raised(d, {"trash_full": 1}, "raised")[("device:tb-1", "trash_full")]["severity"],
           "minor", "with the running severity")
        n.configure('empty_below = 30; crossing_hours = [ "20:00", "07:00" ];')
        d.kill_with(signal.SIGHUP)
        wait_for(lambda: stats(d)["config"]["empty_below"] == 30, "the good one applied")
        c = stats(d)["config"]
        eq((c["crossing_hours"], c["severity"]["trash_full"]), (["20:00", "07:00"], "warning"),
           "applied, the defaults return")
        eq(stats(d)["refused_reloads"], 10, "no new refusal")
        post(d, "tb-1", "fill_level", "int", 40)  # not under 30 now: still full
        post(d, "tb-1", "fill_level", "int", 25)
        wait_for(lambda: stats(d)["cleared"]["trash_full"] == 1, "emptied under 30 %")
        d.wait_log("trash_full of device tb-1 at hefei/baohe/binhu/yuelan: fill level 25%, "
                   "under 30%, clearing its alarm")


def case_the_plugin_index_decides_which_plugin_maps_a_class():
    """Two plugins claiming one class stop the load naming both; a class the index gives
    to another plugin is skipped by perimeter with a warning."""
    tmp = tempfile.mkdtemp(prefix="linli-cat-")
    try:
        cat = os.path.join(tmp, "catalog")
        shutil.copytree(CATALOG, cat)
        path = os.path.join(cat, "plugins.cfg")
        text = open(path).read()
        mine = '    classes = [ "efence", "manhole", "trash_bin", "camera" ];'
        check(mine in text and '    classes = [ "door" ];' in text, "the shipped index")
        both = text.replace('    classes = [ "door" ];', '    classes = [ "door", "camera" ];')
        open(path, "w").write(both)
        lines = both.splitlines()
        at = {n: next(i + 1 for i, l in enumerate(lines) if f'name = "{n}";' in l)
              for n in ("access", "perimeter")}
        n = node(catalog=cat)
        try:
            n.d.start(wait=False)
            eq(n.d.proc.wait(20), 2, "linlid refuses the catalog")
            want = (f"{path}:{at['perimeter']}: plugin 'perimeter': classes: device class "
                    f"'camera' is claimed by plugin 'access' (line {at['access']}) and plugin "
                    "'perimeter'; one plugin turns a class's events into alarms")
            check(want in n.d.logtext(), n.d.logtext())
        finally:
            n.d.cleanup()
        open(path, "w").write(both.replace(mine, mine.replace(', "camera"', "")))
        with node(catalog=cat) as d:
            d.wait_log("perimeter: device class camera: the plugin index gives it to plugin "
                       "'access' (classes in plugins.cfg); its events are not raised here")
            eq(d.ok("catalog", "show", "device", "camera")["plugin"], "access", "the index")
            st = stats(d)
            eq((st["classes"], st["skipped"]), (CLASSES[:3], {"camera": "access"}), "skipped")
            add(d, "cam-1", "camera")
            add(d, "mh-1", "manhole")
            event(d, "cam-1", "fall")
            event(d, "cam-1", "fire_lane_blocked")
            event(d, "mh-1", "opened")
            got = raised(d, {"manhole_open": 1}, "the manhole only")
            eq(sorted(got), [("device:mh-1", "manhole_open")], "no camera alarm")
            # cam-1's events never reach perimeter: mh-1's two ("online", "opened") do.
            eq((stats(d)["events"], stats(d)["unmapped"]), (2, 0), "not subscribed")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def case_the_simulated_fleet_raises_perimeter_alarms():
    """What tools/demo shows: the sim driver's fences, manhole covers, trash bins and
    cameras raise alarms through perimeter (crossings all day here), every mapped event
    counted in one alarm per device and type at a time, the others counted unmapped."""
    sim = ('per_class = 2; classes = [ "efence", "manhole", "trash_bin", "camera" ]; '
           'seed = 7; auto = false; thread = false;')
    with node('crossing_hours = [ "00:00", "00:00" ];', sim=sim) as d:
        out = d.ok("sim", "step", "3000")
        check(out["events"] > 0, f"the fleet raised events: {out}")
        mapped = {("efence", "crossing"): "fence_crossing", ("efence", "cut"): "fence_cut",
                  ("efence", "tamper"): "fence_tamper", ("manhole", "opened"): "manhole_open",
                  ("manhole", "tilted"): "manhole_tilt", ("trash_bin", "full"): "trash_full",
                  ("trash_bin", "fire"): "trash_fire",
                  ("camera", "fire_lane_blocked"): "fire_lane_blocked",
                  ("camera", "loitering"): "loitering", ("camera", "fall"): "fall",
                  ("camera", "intrusion"): "camera_intrusion",
                  ("camera", "fire_smoke"): "camera_fire_smoke"}
        want, pairs, unmapped = {}, set(), 0
        after = 0
        while True:
            page = d.ok("events", "journal", "--after", str(after), "--limit", "1000")["events"]
            if not page:
                break
            for e in page:
                _, cls, dev, *rest = e["topic"].split("/")
                if rest[:1] != ["event"] or rest[-1] in ("online", "unavailable"):
                    continue
                t = mapped.get((cls, rest[-1]))
                if t:
                    want[t] = want.get(t, 0) + 1
                    pairs.add((f"device:{dev}", t))
                else:
                    unmapped += 1
            after = page[-1]["seq"]
        check(sum(want.values()) > 0, f"perimeter events in 3000 rounds: {want}")
        raised(d, want, "every perimeter event of the fleet raised")
        rows = d.ok("alarms", "list", "--limit", "1000")["alarms"]
        eq({(a["source"], a["type"]) for a in rows}, pairs, "alarms of the devices and types")
        eq(sum(a["count"] for a in rows), sum(want.values()), "every event counted")
        st = stats(d)
        eq(st["unmapped"], unmapped, "the other events counted, not raised")
        # What the fleet's readings cleared was cleared by perimeter, one alarm at a time.
        cleared = [a for a in rows if a["state"].startswith("cleared")]
        eq(len(cleared), sum(st["cleared"].values()), "cleared by their devices")
        active = [(a["source"], a["type"]) for a in rows if a["state"].startswith("active")]
        eq(len(active), len(set(active)), "one active alarm per device and type")
        print(f"  3000 rounds of 8 devices: {sum(want.values())} perimeter events, "
              f"{len(rows)} alarms, {len(cleared)} cleared, {unmapped} unmapped "
              f"{sorted(want.items())}")


if __name__ == "__main__":
    sys.exit(main(globals()))
