"""Integration tests of the charging plugin (plugins/charging/), through a real linlid.

The node is the community hefei/baohe/binhu/yuelan with the real catalog, the alarms and
charging plugins granted exactly what they declare, and the test driver tdrv
(tests/plugins/tp_driver.c): `tdrv event CH status_notification connector=N status=S ...`
plays a charger's OCPP 1.6 StatusNotification. Alarms are read back from the alarms plugin.
"""
import collections
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import (BUILD, SRC, Daemon, check, eq, finish, main, plugin_meta,  # noqa: E402
                     wait_for)

TP = os.path.abspath(os.environ.get("LINLI_TP_DIR", os.path.join(BUILD, "tests", "plugins")))
SOS = [os.path.join(BUILD, "plugins", "alarms", "alarms.so"),
       os.path.join(BUILD, "plugins", "charging", "charging.so"),
       os.path.join(TP, "tp_driver.so")]
CATALOG = os.path.join(SRC, "catalog")
YUELAN = "hefei/baohe/binhu/yuelan"

# OCPP 1.6 (section 4.9): the states a connector may go to from each state, in the order
# the plugin's log lists them.
ALL = ["Available", "Preparing", "Charging", "SuspendedEVSE", "SuspendedEV", "Finishing",
       "Reserved", "Unavailable", "Faulted"]
LEGAL = {
    "Available": ["Preparing", "Charging", "SuspendedEV", "SuspendedEVSE", "Reserved",
                  "Unavailable", "Faulted"],
    "Preparing": ["Available", "Charging", "SuspendedEV", "SuspendedEVSE", "Finishing",
                  "Faulted"],
    "Charging": ["Available", "SuspendedEV", "SuspendedEVSE", "Finishing", "Unavailable",
                 "Faulted"],
    "SuspendedEV": ["Available", "Charging", "SuspendedEVSE", "Finishing", "Unavailable",
                    "Faulted"],
    "SuspendedEVSE": ["Available", "Charging", "SuspendedEV", "Finishing", "Unavailable",
                      "Faulted"],
    "Finishing": ["Available", "Preparing", "Unavailable", "Faulted"],
    "Reserved": ["Available", "Preparing", "Unavailable", "Faulted"],
    "Unavailable": ["Available", "Preparing", "Charging", "SuspendedEV", "SuspendedEVSE",
                    "Faulted"],
    "Faulted": ["Available", "Preparing", "Charging", "SuspendedEV", "SuspendedEVSE",
                "Finishing", "Reserved", "Unavailable"],
}
SESSION = {"Charging", "SuspendedEV", "SuspendedEVSE"}


SIM = os.path.join(BUILD, "plugins", "sim", "sim.so")


class node:
    def __init__(self, cfg="", clock=True, sim=None):
        self.d = Daemon(node=YUELAN, level="community", name="悦澜社区")
        self.pdir = os.path.join(self.d.dir, "plugins")
        os.makedirs(self.pdir)
        for so in SOS + ([SIM] if sim else []):
            shutil.copyfile(so, os.path.join(self.pdir, os.path.basename(so)))
        more = f" sim = {{ {sim} }};" if sim else ""
        self.d.write_config(node=YUELAN, level="community", name="悦澜社区",
                            extra=(f'catalog_dir = "{CATALOG}";\n'
                                   f'plugin_dirs = [ "{self.pdir}" ];\n'
                                   f"plugins = {{ charging = {{ {cfg} }};{more} }};\n"))
        self.d.grant_declared(self.pdir)
        self.args = ("--test-clock",) if clock else ()

    def __enter__(self):
        try:
            self.d.start(args=self.args)
            return self.d
        except BaseException:
            self.d.cleanup()
            raise

    def __exit__(self, etype, *rest):
        finish(self.d, etype)


def status(d, ch, conn, st, *more):
    eq(d.ok("tdrv", "event", ch, "status_notification", f"connector={conn}", f"status={st}",
            *more)["rc"], 0, f"{ch}/{conn} {st}")


def stats(d):
    return d.ok("charging", "stats")


def conns(d, ch):
    return {c["connector"]: c for c in d.ok("charging", "piles", ch)["piles"][0]["connectors"]}


def settled(d):
    """The stats once the notifications stop coming (after a `sim step`)."""
    last = None
    for _ in range(100):
        st = stats(d)
        if last is not None and st["notifications"] == last:
            return st
        last = st["notifications"]
        time.sleep(0.1)
    raise AssertionError("the notifications kept coming")


def walk():
    """A walk from Available over every legal change at least once (the shortest way to
    the next state that has a change not yet taken)."""
    todo = {(f, t) for f, ts in LEGAL.items() for t in ts}
    at, path = "Available", []
    while todo:
        nxt = sorted(t for f, t in todo if f == at)
        if nxt:
            t = nxt[0]
        else:  # the shortest way to a state with a change left
            prev, q = {at: None}, collections.deque([at])
            while q:
                s = q.popleft()
                if any(f == s for f, _ in todo):
                    break
                for t2 in LEGAL[s]:
                    if t2 not in prev:
                        prev[t2] = s
                        q.append(t2)
            while prev[s] != at:
                s = prev[s]
            t = s
        todo.discard((at, t))
        path.append((at, t))
        at = t
    return path


def case_every_state_change_legal_and_illegal():
    """One connector walks every legal OCPP 1.6 change (53) and, at each state, is sent
    every status that state cannot go to (19): those are counted, logged with what is
    allowed, and not applied; repeats change nothing; a bad notification is refused naming
    the field; each entry into and exit from charging opens and closes a session."""
    with node() as d:
        d.ok("devices", "add", "ch-1", "charger", "tdrv", "ok")
        status(d, "ch-1", 1, "Available")
        tried, illegal, opened = set(), 0, 0
        for f, t in walk():
            if f not in tried:
                tried.add(f)
                for bad in (s for s in ALL if s != f and s not in LEGAL[f]):
                    status(d, "ch-1", 1, bad)
                    illegal += 1
                    d.wait_log(f"charger ch-1 connector 1: {f} -> {bad} is not an OCPP 1.6 "
                               f"transition, not applied (allowed from {f}: "
                               f"{', '.join(LEGAL[f])})")
            status(d, "ch-1", 1, t)
            opened += f not in SESSION and t in SESSION
        changes = len(walk()) + 1
        check(len(tried) == 9, f"every state visited: {tried}")
        eq(illegal, 19, "the illegal changes of OCPP 1.6")
        wait_for(lambda: stats(d)["changes"] == changes, "every legal change applied")
        st = stats(d)
        eq((st["illegal"], st["sessions_opened"]), (19, opened), "counted")
        check(st["sessions_closed"] in (opened, opened - 1), st)
        last = walk()[-1][1]
        eq(conns(d, "ch-1")[1]["status"], last, "where the walk ended")
        # A repeat changes nothing but the error code; a bad one is refused.
        status(d, "ch-1", 1, last, "error_code=WeakSignal")
        wait_for(lambda: stats(d)["repeats"] == 1, "a repeat")
        eq(conns(d, "ch-1")[1]["error_code"], "WeakSignal", "the error code kept")
        for args, why in ((("connector=0", "status=Available"), "connector: not a whole "
                           "number 1 to 16"),
                          (("connector=1", "status=Charged"), "status: not an OCPP 1.6 status"),
                          (("connector=1", "status=Faulted", "meter_kwh=-3"),
                           "meter_kwh: not a number of kWh at least 0")):
            d.ok("tdrv", "event", "ch-1", "status_notification", *args)
            d.wait_log(f"charger ch-1: status_notification ignored: {why}")
        eq(stats(d)["bad"], 3, "three bad ones")
        eq(stats(d)["changes"], changes, "none applied")


def case_sessions_energy_faults_and_utilisation():
    """A session's energy from the connector's meter and its duration on the test clock;
    two connectors of one pile at once; a Faulted connector closes its session failed with
    the error code and raises connector_faulted (major, the connector as source); overheat
    and fault events of the pile raise charger_overheat (critical) and charger_fault;
    utilisation per pile; a session open across a restart is resumed and closed with its
    energy; the index gives the class charger to charging."""
    n = node()
    with n as d:
        d.ok("devices", "add", "ch-2", "charger", "tdrv", "ok")
        status(d, "ch-2", 1, "Available", "meter_kwh=100.0")
        status(d, "ch-2", 2, "Available", "meter_kwh=5.5")
        status(d, "ch-2", 1, "Preparing")
        status(d, "ch-2", 1, "Charging", "meter_kwh=100.0")
        status(d, "ch-2", 2, "Charging", "meter_kwh=5.5")
        wait_for(lambda: stats(d)["sessions_opened"] == 2, "two sessions")
        d.ok("clock", "advance", "20m")
        status(d, "ch-2", 1, "SuspendedEV", "meter_kwh=106.2")
        status(d, "ch-2", 1, "Charging")
        d.ok("clock", "advance", "10m")
        status(d, "ch-2", 2, "Faulted", "error_code=GroundFailure", "meter_kwh=9.75")
        status(d, "ch-2", 1, "Finishing", "meter_kwh=112.345")
        wait_for(lambda: stats(d)["sessions_closed"] == 2, "both closed")
        d.login()
        rows = d.ok("charging", "sessions", "--charger", "ch-2")["sessions"]
        by = {r["connector"]: r for r in rows}
        one, two = by[1], by[2]
        eq((one["state"], one["energy_kwh"], one["meter_start_kwh"], one["meter_stop_kwh"]),
           ("completed", 12.345, 100.0, 112.345), "the session's energy")
        check(1800 <= one["duration_s"] <= 1815 and
              one["duration_s"] == (one["ended_at"] - one["started_at"]) // 1000,
              f"30 min: {one}")
        eq((two["state"], two["stop_reason"], two["error_code"], two["energy_kwh"]),
           ("failed", "fault", "GroundFailure", 4.25), "the faulted one")
        eq(d.ok("charging", "sessions", "--state", "failed")["count"], 1, "by state")
        d.ok("tdrv", "event", "ch-2", "overheat")
        d.ok("tdrv", "event", "ch-2", "fault")
        wait_for(lambda: stats(d)["raised"] == {"connector_faulted": 1, "charger_overheat": 1,
                                                "charger_fault": 1}, "three alarms")
        al = {(a["source"], a["type"]): a for a in d.ok("alarms", "list")["alarms"]}
        a = al[("plugin:charging/ch-2/2", "connector_faulted")]
        eq((a["severity"], d.ok("alarms", "show", a["id"])["details"]),
           ("major", "connector 2 of charger ch-2 Faulted: GroundFailure"), "faulted")
        eq(al[("device:ch-2", "charger_overheat")]["severity"], "critical", "overheat")
        eq(al[("device:ch-2", "charger_fault")]["severity"], "major", "fault")
        # Utilisation: both connectors watched ~30 min; 1 charged 20 + 10, 2 charged 30.
        pile = d.ok("charging", "piles", "ch-2")["piles"][0]
        check(0.8 < pile["utilisation"] <= 1.0, f"utilisation: {pile}")
        eq((pile["sessions"], pile["energy_kwh"]), (2, 16.595), "per pile")
        c = {x["connector"]: x for x in pile["connectors"]}
        eq((c[1]["status"], c[2]["status"], c[2]["error_code"]),
           ("Finishing", "Faulted", "GroundFailure"), "connectors")
        d.ok("clock", "advance", "30m")
        d.login()
        u = d.ok("charging", "piles", "ch-2")["piles"][0]["utilisation"]
        check(0.4 < u < 0.6, f"half the time idle since: {u}")
        rc, out, err = d.cli("charging", "piles", "ch-9")
        check(rc != 0 and "charger ch-9: no status heard from it" in err, err)
        # A session open across a restart: resumed, then closed with its energy.
        status(d, "ch-2", 3, "Charging", "meter_kwh=50.0")
        wait_for(lambda: stats(d)["sessions_opened"] == 3, "a third session")
        d.stop()
        d.start(args=n.args)
        eq(stats(d)["sessions_resumed"], 1, "resumed at start")
        status(d, "ch-2", 3, "Finishing", "meter_kwh=60.5")
        wait_for(lambda: stats(d)["sessions_closed"] == 1, "closed after the restart")
        three = {r["connector"]: r for r in d.ok("charging", "sessions", "--charger",
                                                 "ch-2")["sessions"]}[3]
        eq((three["state"], three["energy_kwh"]), ("completed", 10.5), "its energy")
        eq(d.ok("charging", "sessions", "--state", "charging")["count"], 0, "none left open")
        entry = d.ok("catalog", "show", "device", "charger")
        eq(entry.get("plugin"), "charging", "the index gives the class to charging")
        check("status_notification" in {e["name"] for e in entry["events"]}, entry["events"])
        check("state" in {r["name"] for r in entry["resources"]}, "the old state kept")
        name, caps = plugin_meta(SOS[1])
        idx = d.ok("catalog", "show", "plugin", "charging")
        eq(sorted(idx["capabilities"]), sorted(caps), "the index lists what charging.so "
           "declares")


def case_simulated_piles_report_each_connector():
    """The simulator keeps one state per connector: sim-charger-002 (two connectors, 双枪)
    reports both, each on its own (its own sessions, meter register), sim-charger-001 its
    one; start_session/stop_session act on the connector named; every change the simulator
    makes is a legal OCPP 1.6 one; a connector the pile lacks is refused naming it."""
    sim = 'per_class = 2; classes = [ "charger" ]; auto = false; seed = 3;'
    with node(sim=sim) as d:
        wait_for(lambda: len(d.ok("devices", "list")) == 2, "two simulated piles")
        d.ok("sim", "step", "1")
        wait_for(lambda: stats(d)["changes"] == 3, "three connectors told their status")
        eq(sorted(conns(d, "sim-charger-002")), [1, 2], "both connectors of the pile")
        eq(sorted(conns(d, "sim-charger-001")), [1], "one connector")
        for ch, n in (("sim-charger-001", 1), ("sim-charger-002", 2)):
            rd = {r["resource"]: r["value"] for r in d.ok("devices", "readings", ch)}
            eq(rd["connectors"], n, f"{ch}: the class resource connectors")
        before = conns(d, "sim-charger-002")
        check(before[2]["status"] in ("Available", "Preparing"), before)
        r = d.ok("devices", "command", "sim-charger-002", "start_session", "connector=2",
                 "session=T1")
        eq((r["result"]["connector"], r["result"]["state"]), (2, "plugged"), r)
        rc, out, err = d.cli("devices", "command", "sim-charger-001", "start_session",
                             "connector=2", "session=T2")
        check(rc != 0 and "connector 2: the charger has 1" in err, err)
        d.ok("sim", "step", "1")
        wait_for(lambda: conns(d, "sim-charger-002")[2]["status"] == "Charging",
                 "connector 2 charges")
        eq(d.ok("charging", "sessions", "--charger", "sim-charger-002", "--state",
                "charging")["sessions"][0]["connector"], 2, "its session")
        d.ok("sim", "step", "5")
        d.ok("devices", "command", "sim-charger-002", "stop_session", "connector=2")
        d.ok("sim", "step", "1")
        wait_for(lambda: conns(d, "sim-charger-002")[2]["status"] in ("Finishing",
                                                                      "Available"),
                 "connector 2 stopped")
        rows = d.ok("charging", "sessions", "--charger", "sim-charger-002")["sessions"]
        two = [x for x in rows if x["connector"] == 2 and x["state"] == "completed"]
        check(len(two) == 1 and two[0]["energy_kwh"] > 0, rows)
        # Hours of the fleet: each connector of the pile charges on its own.
        d.ok("sim", "step", "900")
        st = settled(d)
        eq((st["illegal"], st["bad"]), (0, 0), "the simulator's changes are all legal")
        rows = d.ok("charging", "sessions", "--charger", "sim-charger-002")["sessions"]
        by = collections.defaultdict(list)
        for x in rows:
            by[x["connector"]].append(x)
        eq(sorted(by), [1, 2], "sessions on both connectors")
        check(len(by[1]) >= 2 and len(by[2]) >= 3, {k: len(v) for k, v in by.items()})
        check({x["started_at"] for x in by[1]} != {x["started_at"] for x in by[2]},
              "the connectors start apart")
        done = [x for x in rows if x["state"] == "completed"]
        check(done and all(x["meter_stop_kwh"] >= x["meter_start_kwh"] for x in done), done)
        one = {x["connector"] for x in d.ok("charging", "sessions", "--charger",
                                            "sim-charger-001")["sessions"]}
        eq(one, {1}, "the single connector's sessions")
        c = conns(d, "sim-charger-002")
        check(c[1]["status"] in ALL and c[2]["status"] in ALL, c)


if __name__ == "__main__":
    sys.exit(main(globals()))
