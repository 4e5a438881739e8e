"""Integration tests of the street's e-bike charging safety app (电动车充电安全,
scripts/apps/ebike/): a C plugin built out of tree against the SDK only (its own
meson.build, PKG_CONFIG_PATH at the build dir's meson-uninstalled, as a vendor builds),
packed and signed into a bundle by linli-bundle (the project's `bundle` target), trusted
with `linli trust add`, installed with --grant over the console into a real linlid at the
street node hefei/baohe/binhu (two communities, 悦澜 and 启明) with the real catalog, the
alarms and grid plugins and the test driver playing cameras and smoke detectors; the test
clock. A bad setting is refused naming the key; an e-bike in a stairwell raises one alarm
per camera per cool-down whatever the frames; smoke in the same building soon after
escalates with a grid case; each caller sees its own community; another street is refused.
"""
import fcntl
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import BUILD, SRC, Daemon, check, eq, finish, main, wait_for  # noqa: E402

STREET = "hefei/baohe/binhu"
YUELAN, QIMING = STREET + "/yuelan", STREET + "/qiming"
OTHER = "hefei/baohe/fanhua/jinxiu"  # a community of another street
APP = os.path.join(SRC, "scripts", "apps", "ebike")
TOOL = os.path.join(BUILD, "host", "linli-bundle")
SOS = [os.path.join(BUILD, "plugins", "alarms", "alarms.so"),
       os.path.join(BUILD, "plugins", "grid", "grid.so"),
       os.path.join(os.path.abspath(os.environ.get(
           "LINLI_TP_DIR", os.path.join(BUILD, "tests", "plugins"))), "tp_driver.so")]
SIM = os.path.join(BUILD, "plugins", "sim", "sim.so")
PW = "Another-Passw0rd-1"
GOOD = 'grid = "g01"; cooldown_min = 30; escalate_min = 10;'


def sh(argv, env=None):
    r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300,
                       stdin=subprocess.DEVNULL)
    eq(r.returncode, 0, f"{' '.join(argv)}: {r.stdout}{r.stderr}")
    return r.stdout


def sanitize():
    """The sanitizers of this build, for the app's own build (an ASan linlid: an ASan app)."""
    import json
    with open(os.path.join(BUILD, "meson-info", "intro-buildoptions.json")) as f:
        opts = {o["name"]: o["value"] for o in json.load(f)}
    san = opts.get("b_sanitize", "none")
    san = ",".join(san) if isinstance(san, list) else san
    return [] if san in ("none", "") else [f"-Db_sanitize={san}", "-Db_lundef=false"]


def bundle():
    """Build the app out of tree with meson against the SDK of this build only, sign it with
    a street's key: (bundle, public key). Both cases share one build per source version
    (BUILD/tests/ebike-bundle/<hash>, made under a lock)."""
    h = hashlib.sha256()
    for f in sorted(os.listdir(APP)):
        with open(os.path.join(APP, f), "rb") as fp:
            h.update(f.encode() + b"\0" + fp.read())
    h.update(" ".join(sanitize()).encode())
    for hdr in sorted(os.listdir(os.path.join(SRC, "sdk", "include", "linli"))):
        with open(os.path.join(SRC, "sdk", "include", "linli", hdr), "rb") as fp:
            h.update(fp.read())
    base = os.path.join(BUILD, "tests", "ebike-bundle")
    os.makedirs(base, exist_ok=True)
    out = os.path.join(base, h.hexdigest()[:16])
    with open(os.path.join(base, "lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(os.path.join(out, "ebike.bundle")):
            for old in os.listdir(base):  # builds of older sources
                if old != "lock":
                    shutil.rmtree(os.path.join(base, old), ignore_errors=True)
            proj = os.path.join(out, "src")  # a copy: nothing of the checkout is reachable
            shutil.copytree(APP, proj)
            env = {k: v for k, v in os.environ.items() if not k.startswith("PKG_CONFIG")}
            env["PKG_CONFIG_PATH"] = os.path.join(BUILD, "meson-uninstalled")
            sh([TOOL, "keygen", "binhu", "-o", out])
            b = os.path.join(out, "b")
            sh(["meson", "setup", b, proj, "-Dwerror=true", *sanitize(),
                f"-Dsigning_key={os.path.join(out, 'binhu.sec')}",
                "-Dvendor=滨湖街道"], env=env)
            sh(["ninja", "-C", b], env=env)
            sh(["meson", "compile", "-C", b, "bundle"], env=env)
            so = os.path.join(b, "ebike.so")
            eq(sh(["nm", "-D", "--defined-only", so]).split()[-1], "linli_plugin_descriptor",
               "the descriptor is the one symbol it exports")
            undef = sh(["nm", "-D", "--undefined-only", so])
            check("linli" not in undef, f"no kernel symbol: {undef}")
            shutil.copyfile(os.path.join(b, "ebike.bundle"), os.path.join(out, "ebike.bundle"))
    bun = os.path.join(out, "ebike.bundle")
    out_v = sh([TOOL, "verify", bun, "--key", os.path.join(out, "binhu.pub")])
    check("ebike 0.1.0 by 滨湖街道" in out_v and "signature verified" in out_v, out_v)
    return bun, os.path.join(out, "binhu.pub")


class node:
    """linlid at the street with alarms, grid and tdrv; ebike installed from its bundle."""

    def __init__(self, conf=GOOD, sim=False):
        self.bundle, self.pub = bundle()
        self.sim = (f'sim = {{ per_class = 2; classes = [ "camera" ]; auto = false; seed = 1; '
                    f'scope = "{YUELAN}"; }};') if sim else ""
        self.d = Daemon(node=STREET, level="street", name="滨湖街道")
        self.pdir = os.path.join(self.d.dir, "plugins")
        os.makedirs(self.pdir)
        for so in SOS + ([SIM] if sim else []):
            shutil.copyfile(so, os.path.join(self.pdir, os.path.basename(so)))
        self.configure(conf)
        self.d.grant_declared(self.pdir)

    def configure(self, conf):
        self.d.write_config(node=STREET, level="street", name="滨湖街道",
                            extra=f'catalog_dir = "{os.path.join(SRC, "catalog")}";\n'
                                  f'plugin_dirs = [ "{self.pdir}" ];\n'
                                  f'plugins = {{ ebike = {{ {conf} }}; {self.sim} }};\n')

    def __enter__(self):
        try:
            d = self.d.start(args=("--test-clock",))
            d.ok("clock", "set", "2027-03-10T23:00:00+08:00")
            d.login()
            d.ok("trust", "add", "binhu", self.pub)
            return d
        except BaseException:
            self.d.cleanup()
            raise

    def __exit__(self, etype, *rest):
        finish(self.d, etype)


def hup(d, n, conf):
    """Rewrite plugins.ebike and have linlid read it again (SIGHUP)."""
    seen = d.logtext().count("config: reloaded")
    n.configure(conf)
    d.kill_with(signal.SIGHUP)
    wait_for(lambda: d.logtext().count("config: reloaded") > seen, "the reload")


def install(d, b):
    r = d.ok("plugins", "install", b, "--grant")
    eq((r["name"], r["version"]), ("ebike", "0.1.0"), f"installed: {r}")
    return r


def state(d):
    return {p["name"]: p for p in d.ok("plugins", "list")}["ebike"]


def seed(d):
    """Grids, cameras and detectors in both communities (building 3 of 悦澜 has both)."""
    d.ok("data", "put", "grids", "--scope", YUELAN, "--id", "g02",
         '{"code": "g02", "name": "悦澜二网格"}')
    for dev, cls, scope, opts in (
            ("cam-1", "camera", YUELAN, ["--building", "3"]),
            ("cam-2", "camera", QIMING, []),               # its events say the building
            ("sd-1", "smoke", YUELAN, ["--building", "3", "--grid", "g02"]),
            ("sd-2", "smoke", YUELAN, ["--building", "5"]),
            ("sd-3", "smoke", QIMING, ["--building", "1"])):
        d.ok("devices", "add", dev, cls, "tdrv", "ok", "--scope", scope, *opts)


def frame(d, cam, zone, *kv):
    eq(d.ok("tdrv", "event", cam, "ebike_entry", f"zone={zone}", *kv)["rc"], 0, cam)


def stats(d, token=None):
    return d.ok("ebike", "stats", env={"LINLI_SESSION": token} if token else None)


def alarms(d):
    """Active and past alarms of the app: (type, source) -> (scope, severity, count)."""
    rows = d.ok("data", "query", "alarms", "--scope", STREET, "--limit", "1000")["records"]
    return {(a["type"], a["source"]): (a["scope"], a["severity"], a.get("count"))
            for a in rows if a["type"].startswith("ebike_")}


def refused(d, args, name, text, token=None):
    rc, out, err = d.cli(*args, env={"LINLI_SESSION": token} if token else None)
    msg = out.get("error", "") if isinstance(out, dict) else err
    check(rc == 1 and (not name or isinstance(out, dict) and out.get("name") == name)
          and text in msg,
          f"linli {' '.join(args)}: want {name} {text!r}, got {rc} {out} {err}")


def case_signed_bundle_alarms_once_and_escalates_with_a_grid_case():
    """Built out of tree and signed; an install with a bad setting refused naming the key,
    then with the settings fixed (SIGHUP) installed and running. At 23:00 (night) five frames of cam-1's e-bike in building 3's
    stairwell raise one ebike_indoor alarm (critical at night); a parking-zone frame none;
    smoke in building 5 nothing; smoke in building 3 within 10 min escalates: ebike_fire
    (critical) and a grid case in the detector's grid g02, linked to the alarm; its second
    alarm no second escalation. After the cool-down cam-1 raises again."""
    n = node(conf='night_from = 25;')
    with n as d:
        for bad, needle in (
                (None, "linli.cfg: plugins.ebike.night_from: must be an hour, 0 to 23"),
                ('category = "arson";', "plugins.ebike.category: 'arson' is not a category of "
                                        "incidents (environment, public_order"),
                ('zones = [ "Stair well" ];', "plugins.ebike.zones: entry 1: a zone name"),
                ('colour = "red";', "plugins.ebike.colour: unknown key (it takes zones")):
            if bad:
                hup(d, n, bad)
            rc, out, err = d.cli("plugins", "install", n.bundle, "--grant")
            msg = out.get("error", "") if isinstance(out, dict) else err
            check(rc == 1 and needle in msg, f"{bad}: want {needle!r}: {rc} {out} {err}")
            check("ebike" not in {p["name"] for p in d.ok("plugins", "list")}
                  or state(d)["state"] != "running", "not started with a bad setting")
        hup(d, n, GOOD)
        install(d, n.bundle)
        wait_for(lambda: state(d)["state"] == "running", "running once the settings are good")
        check(d.ok("plugins", "info", "ebike")["signed_by"].startswith("binhu ("), "signer")
        seed(d)
        for _ in range(5):
            frame(d, "cam-1", "stairwell")
        frame(d, "cam-1", "parking")
        wait_for(lambda: stats(d)["raised"]["ebike_indoor"] == 1, "one alarm for five frames")
        st = stats(d)
        eq((st["events"], st["ignored_zone"], st["raised"]["ebike_fire"]), (6, 1, 0), "counted")
        eq(alarms(d), {("ebike_indoor", "device:cam-1"): (YUELAN, "critical", 1)},
           "at the camera's community, critical at night")
        # Smoke in another building: nothing; in building 3 four minutes on: escalated.
        d.ok("clock", "advance", "4m")
        eq(d.ok("tdrv", "event", "sd-2", "alarm")["rc"], 0, "sd-2")
        eq(d.ok("tdrv", "event", "sd-1", "alarm")["rc"], 0, "sd-1")
        wait_for(lambda: stats(d)["cases_opened"] == 1, "the grid case")
        eq(d.ok("tdrv", "event", "sd-1", "alarm")["rc"], 0, "sd-1 again")
        wait_for(lambda: stats(d)["smoke_events"] == 3, "smoke heard")
        st = stats(d)
        eq((st["raised"]["ebike_fire"], st["cases_opened"], st["cases_failed"]), (1, 1, 0),
           "one escalation per building per cool-down")
        al = alarms(d)
        eq(al[("ebike_fire", "plugin:ebike/building/3")], (YUELAN, "critical", 1), "ebike_fire")
        fire = [a for a in d.ok("data", "query", "alarms", "--scope", YUELAN)["records"]
                if a["type"] == "ebike_fire"][0]
        # 240 s of test clock, and the wall clock's second or two it runs on meanwhile.
        check(re.fullmatch(r"alarm of smoke detector sd-1 in building 3, 24\d s after camera "
                           r"cam-1 saw an e-bike enter the stairwell", fire["details"]),
              fire["details"])
        cases = d.ok("data", "query", "incidents", "--scope", YUELAN)["records"]
        eq([(c["scope"], c["category"], c["channel"], c["source_alarm"], c["building"])
            for c in cases], [(YUELAN + "/g02", "fire", "alarm", fire["id"], "3")],
           "the case in sd-1's grid, linked to the alarm")
        # Within the cool-down more frames raise nothing; after it, one more.
        d.ok("clock", "advance", "20m")
        frame(d, "cam-1", "stairwell")
        d.ok("clock", "advance", "7m")
        frame(d, "cam-1", "lift")
        wait_for(lambda: stats(d)["raised"]["ebike_indoor"] == 2, "again after 31 min")
        eq(stats(d)["communities"][YUELAN],
           {"detections": 7, "alarms": 2, "night_alarms": 2, "smoke": 3, "escalations": 1,
            "cases": 1}, "悦澜's counters")


def case_status_per_caller_day_rules_readings_and_another_street():
    """Daytime rules (day_alarm false: detections counted, no alarm), a smoke_density
    reading crossing the threshold escalates once per crossing into the settings' grid,
    `ebike status` per building for the street, a community's account sees its own
    community, another community and another street are refused."""
    n = node(conf='grid = "g01"; day_alarm = false; night_from = 22; night_until = 6; '
                  'severity = "minor";', sim=True)
    with n as d:
        install(d, n.bundle)
        wait_for(lambda: state(d)["state"] == "running", "running")
        # The simulator's two cameras in 悦澜 see an e-bike now and then (sim.c, ebike_entry):
        # each raises once within the cool-down, however many it sees.
        d.ok("sim", "step", "1000")
        wait_for(lambda: stats(d)["raised"]["ebike_indoor"] == 2, "the simulated cameras")
        sim_events = stats(d)["events"]
        check(sim_events > 2, f"more sightings than alarms: {sim_events}")
        seed(d)
        frame(d, "cam-2", "corridor", "building=1")       # 23:00, night: an alarm
        wait_for(lambda: stats(d)["raised"]["ebike_indoor"] == 3, "night alarm")
        d.ok("tdrv", "post", "sd-3", "smoke_density", "float", "0.2")
        d.ok("clock", "advance", "5m")
        d.ok("tdrv", "post", "sd-3", "smoke_density", "float", "3.5")   # crossing: escalate
        d.ok("tdrv", "post", "sd-3", "smoke_density", "float", "4.0")   # still over
        wait_for(lambda: stats(d)["cases_opened"] == 1, "the case of the reading")
        cases = d.ok("data", "query", "incidents", "--scope", QIMING)["records"]
        eq([c["scope"] for c in cases], [QIMING + "/g01"], "the settings' grid")
        eq(stats(d)["smoke_readings"], 3, "readings heard")
        # The next day at 10:00: no alarm by day, the detection counted.
        d.ok("clock", "set", "2027-03-11T10:00:00+08:00")
        d.login()  # the session of last night has expired
        frame(d, "cam-1", "stairwell")
        frame(d, "cam-2", "lift", "building=2")
        wait_for(lambda: stats(d)["events"] == sim_events + 3, "events heard")
        eq(stats(d)["raised"]["ebike_indoor"], 3, "no alarm by day with day_alarm false")
        s = d.ok("ebike", "status")
        eq((s["scope"], s["day"]), (STREET, "2027-03-11"), "today at the street")
        eq(sorted((b["community"], b["building"], b["detections"], b["night"], b["alarms"])
                  for b in s["buildings"]),
           [(QIMING, "2", 1, 0, 0), (YUELAN, "3", 1, 0, 0)], "today's per building")
        # A 启明 operator: its own community; 悦澜 and another street refused.
        q = d.account("q1", "operator", node=QIMING, password=PW)
        s = d.ok("ebike", "status", env={"LINLI_SESSION": q})
        eq([(b["community"], b["building"]) for b in s["buildings"]], [(QIMING, "2")], "own")
        eq(list(stats(d, q)["communities"]), [QIMING], "its own counters only")
        refused(d, ["ebike", "status", "yuelan"], "LINLI_EPERM",
                f"{YUELAN} is outside your jurisdiction ({QIMING})", token=q)
        refused(d, ["ebike", "status", OTHER], "LINLI_EPERM",
                f"'{OTHER}' is outside this street ({STREET}): the app acts only in its scope")
        refused(d, ["ebike", "status", "a", "b"], "LINLI_EINVAL", "usage: ebike status")
        v = d.account("v1", "viewer", node=QIMING, password=PW)
        refused(d, ["ebike", "stats"], "LINLI_EPERM", "ebike.stats", token=v)
        # Another street's camera: the node refuses its events' scope; nothing reaches the app.
        outside = f"may not act on {OTHER}: outside its jurisdiction"
        refused(d, ["devices", "add", "cam-9", "camera", "tdrv", "ok", "--scope", OTHER],
                "LINLI_EPERM", outside)
        refused(d, ["publish", "dev/camera/cam-9/event/ebike_entry",
                    '{"data": {"zone": "stairwell"}}', "--scope", OTHER], "LINLI_EPERM", outside)
        # The same event inside the street does reach it (so the refusal above is the scope's).
        d.ok("publish", "dev/camera/cam-9/event/ebike_entry", '{"data": {"zone": "stairwell"}}',
             "--scope", YUELAN)
        wait_for(lambda: stats(d)["events"] == sim_events + 4, "the event inside the street")
        eq(stats(d)["outside"], 0, "nothing from outside the install scope")


if __name__ == "__main__":
    sys.exit(main(globals()))
