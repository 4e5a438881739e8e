"""Integration tests of the parking plugin (plugins/parking/), through a real linlid.

The node is the community hefei/baohe/binhu/yuelan with the real catalog, the alarms and
parking plugins granted exactly what they declare, and the test driver tdrv
(tests/plugins/tp_driver.c): `tdrv event GATE entry plate=... lot=... time=...` plays a
car-park gate (class gate), `tdrv post SENSOR occupied bool true` a parking sensor. Fees
are read from the records the plugin writes; alarms from the alarms plugin: device -> HAL
-> bus -> parking -> alarmreq/raise -> alarms -> store. The test clock drives the timers.
"""
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import (BUILD, SRC, Daemon, check, eq, finish, main, plugin_meta,  # noqa: E402
                     wait_for)

TP = os.path.abspath(os.environ.get("LINLI_TP_DIR", os.path.join(BUILD, "tests", "plugins")))
SOS = [os.path.join(BUILD, "plugins", "alarms", "alarms.so"),
       os.path.join(BUILD, "plugins", "parking", "parking.so"),
       os.path.join(TP, "tp_driver.so")]
CATALOG = os.path.join(SRC, "catalog")
YUELAN = "hefei/baohe/binhu/yuelan"
MIN = 60 * 1000
HOUR = 60 * MIN
TARIFF = "per_hour = 5.0; free_minutes = 15; daily_cap = 40.0; paid_grace_minutes = 10;"
# Plates: each case's vehicles; none may reach the log, an alarm or a masked reader.
PLATES = {k: f"皖A{k}{n:04d}" for n, k in enumerate("ABCDEFGHMNOPQRSTUVWXY", start=1)}
# Lot P3 has a tariff of its own (8 yuan an hour after 30 free minutes; the node's cap).
LOT_TARIFF = ' tariffs = ( { lot = "P3"; per_hour = 8.0; free_minutes = 30; } );'


class node:
    """A community linlid with alarms, parking and tdrv; `cfg` is the plugins.parking group."""

    def __init__(self, cfg=TARIFF, clock=True):
        self.d = Daemon(node=YUELAN, level="community", name="悦澜社区")
        self.pdir = os.path.join(self.d.dir, "plugins")
        os.makedirs(self.pdir)
        for so in SOS:
            shutil.copyfile(so, os.path.join(self.pdir, os.path.basename(so)))
        self.extra = (f'catalog_dir = "{CATALOG}";\n'
                      f'plugin_dirs = [ "{self.pdir}" ];\n')
        self.configure(cfg)
        self.d.grant_declared(self.pdir)
        self.args = ("--test-clock",) if clock else ()

    def configure(self, cfg):
        self.d.write_config(node=YUELAN, level="community", name="悦澜社区",
                            extra=self.extra + f"plugins = {{ parking = {{ {cfg} }}; }};\n")

    def __enter__(self):
        try:
            self.d.start(args=self.args)
            return self.d
        except BaseException:
            self.d.cleanup()
            raise

    def __exit__(self, etype, *rest):
        finish(self.d, etype)


def gate(d, ev, plate, at_ms, gid="g-1", lot="P1", *more):
    """Gate gid reports an entry or exit seen at at_ms (sent as Unix seconds)."""
    args = [f"lot={lot}", f"time={at_ms / 1000:.3f}", "plate_colour=blue", *more]
    if plate is not None:
        args.insert(0, f"plate={plate}")
    eq(d.ok("tdrv", "event", gid, ev, *args)["rc"], 0, f"{ev} at {gid}")


def stats(d):
    return d.ok("parking", "stats")


def sessions(d, **where):
    """The sessions as a clerk granted the plates reads them."""
    if not hasattr(d, "seer"):
        d.seer = d.account("clerk", "operator", node=YUELAN,
                           grants=("sensitive:parking_sessions",))
    args = []
    for k, v in where.items():
        args += [f"--{k}", v]
    return d.ok("parking", "sessions", *args, env={"LINLI_SESSION": d.seer})["sessions"]


def by_plate(d):
    """Every session by plate (the admin reads plates in clear)."""
    return {s["plate"]: s for s in sessions(d)}


def fails(d, *args, want, env=None):
    rc, out, err = d.cli(*args, env=env)
    check(rc != 0 and want in err, f"linli {' '.join(args)}: want {want!r}, got {rc} {err} {out}")
    return err


def put(d, dataset, rec, *args):
    return d.ok("data", "put", dataset, *args, json.dumps(rec, ensure_ascii=False))


def now_ms(d):
    return d.ok("clock")["now_ms"]


def no_plate_in(text, what):
    for p in PLATES.values():
        check(p not in text, f"plate {p} in {what}")


def case_sessions_fees_at_tariff_boundaries_late_uploads_and_passes():
    """Entries and exits from a gate: fees at the tariff's boundaries, computed on the gate's
    times (15 min free, 16 min one hour, 60 min one hour, 61 min two, 30 h and 48 h against
    the daily cap); a fee owed holds the exit until `parking pay`, which allows it; a payment
    covers paid_grace_minutes; an offline gate's late records keep the gate's time apart from
    the sync time and close the session even unpaid; a monthly pass parks free in its lot
    only; bad events are refused naming the gate and the field; plates never reach the log,
    the audit details or a reader without the grant. Lot P3 has a tariff of its own (the
    node's for the rest); paying a held exit opens the gate that held it (as the payer)."""
    with node(TARIFF + LOT_TARIFF) as d:
        d.ok("devices", "add", "g-1", "gate", "tdrv", "ok")
        d.ok("devices", "add", "g-2", "gate", "tdrv", "ok")
        n = now_ms(d) // 1000 * 1000 - 5 * MIN  # the exits' time, a little in the past
        P = PLATES
        stays = {"A": 15 * MIN, "B": 16 * MIN, "C": 60 * MIN, "D": 61 * MIN,
                 "E": 30 * HOUR, "F": 48 * HOUR}
        for k, dur in stays.items():
            gate(d, "entry", P[k], n - dur)
        wait_for(lambda: stats(d)["entries"] == 6, "six entries")
        open_ = by_plate(d)
        s = open_[P["B"]]
        eq((s["state"], s["billing"], s["lot"], s["entry_gate"], s["plate_colour"],
            s["entered_at"], s["scope"]), ("parked", "tariff", "P1", "g-1", "blue",
                                           n - 16 * MIN, YUELAN), "an open session")
        check(s["entry_synced_at"] >= n, "synced when it arrived")
        for k in stays:
            gate(d, "exit", P[k], n, "g-2")
        wait_for(lambda: stats(d)["exits"] + stats(d)["exits_held"] == 6, "six exits")
        got = by_plate(d)
        want = {"A": 0, "B": 5, "C": 5, "D": 10, "E": 40 + 30, "F": 80}
        eq({k: got[P[k]]["fee"] for k in stays}, want, "fees at the boundaries")
        eq({k: got[P[k]]["state"] for k in stays},
           {"A": "exited", **{k: "parked" for k in "BCDEF"}}, "only the free stay left")
        eq((got[P["A"]]["exited_at"], got[P["A"]]["exit_gate"]), (n, "g-2"), "the exit")
        eq(got[P["B"]]["exit_held_at"], n, "B held at the barrier")
        st = stats(d)
        eq((st["exits"], st["exits_held"], st["open_sessions"]), (1, 5, 5), "counted")
        # Pay B at the barrier: exit allowed, then its exit within the grace closes it.
        sid = got[P["B"]]["id"]
        paid = d.ok("parking", "pay", sid)
        eq((paid["fee"], paid["state"]), (5, "exit_allowed"), "paid at the barrier")
        eq((paid["gate"], paid["gate_open"]), ("g-2", "sent"), "the gate that held it opens")
        wait_for(lambda: stats(d)["gate_opens"] == 1, "the gate answered")
        eq(by_plate(d)[P["B"]]["held_gate"], "g-2", "the gate that held it")
        cmds = json.dumps(d.ok("audit", "--action", "device.command", "--limit", "100"))
        check("g-2" in cmds and "open" in cmds, f"the open audited: {cmds}")
        eq(paid["exit_by"] - paid["paid_at"], 10 * MIN, "grace")
        gate(d, "exit", P["B"], now_ms(d), "g-2")
        wait_for(lambda: d.ok("parking", "show", sid)["state"] == "exited", "B exits")
        eq(d.ok("parking", "show", sid)["paid"], 5, "paid kept")
        fails(d, "parking", "pay", sid, want=f"session {sid} has exited")
        fails(d, "parking", "pay", "nope", want="nope")
        # G pays before leaving (paid), then dawdles past the grace: held again for the rest.
        gate(d, "entry", P["G"], n - 50 * MIN)
        wait_for(lambda: P["G"] in by_plate(d), "G in")
        g = by_plate(d)[P["G"]]["id"]
        eq(d.ok("parking", "pay", g)["state"], "paid", "paid inside")
        shown = d.ok("parking", "show", g)
        eq((shown["paid"], shown["owed"]), (5, 0), "nothing owed within the grace")
        d.ok("clock", "advance", "11m")
        d.login()
        eq(d.ok("parking", "show", g)["owed"], 5, "the second hour owed after the grace")
        gate(d, "exit", P["G"], now_ms(d), "g-2")
        wait_for(lambda: d.ok("parking", "show", g).get("exit_held_at"), "G held")
        eq((d.ok("parking", "show", g)["state"], d.ok("parking", "show", g)["fee"]),
           ("paid", 10), "held for the rest")
        # A gate offline for hours uploads late: the gate's times kept, the sync time apart.
        t = now_ms(d)
        gate(d, "entry", P["H"], t - 3 * HOUR, "g-1", "P1", "offline=true")
        wait_for(lambda: P["H"] in by_plate(d), "H in, late")
        gate(d, "exit", P["H"], t - 1 * HOUR, "g-2", "P1", "offline=true")
        wait_for(lambda: by_plate(d)[P["H"]]["state"] == "exited", "H out, late")
        h = by_plate(d)[P["H"]]
        eq((h["entered_at"], h["exited_at"], h["fee"]), (t - 3 * HOUR, t - HOUR, 10),
           "the gate's times, the fee over them")
        check(h["entry_synced_at"] >= t and h["exit_synced_at"] >= h["entry_synced_at"],
              f"the sync times are the node's: {h}")
        check("paid" not in h, "exited unpaid: the arrears show")
        st = stats(d)
        eq((st["late_entries"], st["late_exits"]), (1, 1), "late records counted")
        # A monthly pass: free in its lot, not in another one.
        put(d, "parking_passes", {"plate": P["M"], "lot": "P1", "valid_from": t - 24 * HOUR,
                                  "valid_until": t + 24 * HOUR, "house": "3-1-502"},
            "--id", "pass-1")
        wait_for(lambda: stats(d)["passes"] == 1, "the pass followed")
        gate(d, "entry", P["M"], t - 5 * HOUR)
        gate(d, "entry", P["M"], t - 5 * HOUR, "g-1", "P2")
        wait_for(lambda: len([s for s in sessions(d) if s["plate"] == P["M"]]) == 2, "M in twice")
        gate(d, "exit", P["M"], t)
        gate(d, "exit", P["M"], t, "g-2", "P2")
        wait_for(lambda: stats(d)["exits_held"] == 7, "M held in P2")
        m = {s["lot"]: s for s in sessions(d) if s["plate"] == P["M"]}
        eq((m["P1"]["billing"], m["P1"]["pass"], m["P1"]["fee"], m["P1"]["state"]),
           ("monthly", "pass-1", 0, "exited"), "free with the pass")
        eq((m["P2"]["billing"], m["P2"]["fee"], m["P2"]["state"]), ("tariff", 25, "parked"),
           "charged in another lot")
        # Lot P3's own tariff: 30 free minutes, 8 an hour, the node's cap of 40 a day.
        p3 = {"R": 31 * MIN, "S": 30 * MIN, "T": 30 * HOUR, "U": 61 * MIN}
        for k, dur in p3.items():
            gate(d, "entry", P[k], t - dur, "g-1", "P3")
        wait_for(lambda: all(P[k] in by_plate(d) for k in p3), "in P3")
        for k in p3:
            gate(d, "exit", P[k], t, "g-2", "P3")
        wait_for(lambda: all("fee" in by_plate(d)[P[k]] for k in p3), "out of P3")
        got = by_plate(d)
        eq({k: got[P[k]]["fee"] for k in p3}, {"R": 8, "S": 0, "T": 80, "U": 16},
           "P3's tariff at its boundaries")
        eq(got[P["S"]]["state"], "exited", "free within P3's 30 minutes")
        eq(d.ok("parking", "pay", got[P["R"]]["id"])["gate"], "g-2", "R pays")
        wait_for(lambda: stats(d)["gate_opens"] == 2, "the gate opened for R")
        tariffs = stats(d)["config"]["tariffs"]
        eq(tariffs, [{"lot": "P3", "per_hour": 8, "free_minutes": 30, "daily_cap": 40}],
           "the lots' tariffs")
        # Bad events: refused, counted, the log names gate and field, never the plate.
        gate(d, "exit", P["N"], t)  # never entered
        gate(d, "entry", P["O"], t, "g-1", "")
        gate(d, "entry", None, t)
        eq(d.ok("tdrv", "event", "g-1", "entry", f"plate={P['P']}", "lot=P1",
                "time=tomorrow")["rc"], 0, "sent")
        gate(d, "entry", P["Q"], t + 2 * HOUR)
        wait_for(lambda: stats(d)["bad_events"] == 4, "four bad events")
        eq(stats(d)["unmatched_exits"], 1, "the exit with no entry")
        d.wait_log("gate g-1: entry event ignored: lot: missing, empty or longer than 64 bytes")
        d.wait_log("gate g-1: entry event ignored: plate: missing, empty or longer")
        d.wait_log("gate g-1: entry event ignored: time: not Unix seconds")
        d.wait_log("gate g-1: entry event ignored: time: more than 5 minutes ahead")
        d.wait_log("gate g-1: an exit from lot P1 with no open session there")
        # A visitor registered for 4 h in P1: its stay there is free for 120 minutes
        # (visitor_free_minutes); an unregistered one pays, as does the visitor in P2.
        v = d.ok("parking", "visitor", P["V"], "--lot", "P1", "--hours", "4", "--house",
                 "3-1-502")
        eq((v["lot"], v["valid_until"] - v["valid_from"], v["free_minutes"]),
           ("P1", 4 * HOUR, 120), "registered")
        wait_for(lambda: stats(d)["visitors"] == 1, "the registration followed")
        t2 = now_ms(d)
        for k, lot in (("V", "P1"), ("W", "P1"), ("V", "P2")):
            gate(d, "entry", P[k], t2, "g-1", lot)
        wait_for(lambda: stats(d)["visitor_entries"] == 1, "one visitor's entry")
        d.ok("clock", "advance", "110m")
        d.login()
        t3 = now_ms(d)
        for k, lot in (("V", "P1"), ("W", "P1"), ("V", "P2")):
            gate(d, "exit", P[k], t3, "g-2", lot)
        vis = lambda: {(s["plate"], s["lot"]): s for s in sessions(d)  # noqa: E731
                       if s["plate"] in (P["V"], P["W"])}
        wait_for(lambda: all("fee" in s for s in vis().values()) and len(vis()) == 3,
                 "the three out or held")
        got = vis()
        eq({k: (s["billing"], s["fee"], s["state"]) for k, s in got.items()},
           {(P["V"], "P1"): ("visitor", 0, "exited"), (P["W"], "P1"): ("tariff", 10, "parked"),
            (P["V"], "P2"): ("tariff", 10, "parked")}, "the visitor's free time, in P1 only")
        eq(got[(P["V"], "P1")]["visitor"], v["visitor"], "the registration named")
        reg = d.ok("data", "get", "parking_visitors", v["visitor"])
        eq(reg["registered_by"], "admin", "who registered it")
        check(reg["plate"] != P["V"] and reg["house"] != "3-1-502",
              f"plate and house masked without sensitive:parking_visitors: {reg}")
        fails(d, "parking", "visitor", P["X"], "--lot", "P1", want="--hours: the visit's "
              "window, whole hours 1 to 168")
        err = fails(d, "parking", "visitor", P["X"], "extra", "--hours", "2", want="usage:")
        check(P["X"] not in err, "the plate is not echoed")
        # Readers: an operator without the grant sees plates masked, a viewer cannot pay.
        op = d.account("op1", "operator", node=YUELAN)
        rows = d.ok("parking", "sessions", "--state", "exited", env={"LINLI_SESSION": op})
        check(rows["count"] >= 4, rows)
        for r in rows["sessions"]:
            check(r["plate"].startswith("皖") and "*" in r["plate"], f"masked: {r['plate']}")
        viewer = d.account("v1", "viewer", node=YUELAN)
        fails(d, "parking", "pay", g, want="parking.pay", env={"LINLI_SESSION": viewer})
        fails(d, "parking", "visitor", P["X"], "--hours", "2", want="parking.visitor",
              env={"LINLI_SESSION": viewer})
        check(d.ok("parking", "sessions", env={"LINLI_SESSION": viewer})["count"] > 0,
              "a viewer lists")
        # The bus: a reader without sensitive:devices gets the gate's events masked.
        ev = [e for e in d.ok("events", "journal", "--limit", "1000",
                              env={"LINLI_SESSION": op})["events"]
              if e["topic"].startswith("dev/gate/")]
        check(len(ev) >= 20, f"gate events in the journal: {len(ev)}")
        no_plate_in(json.dumps(ev, ensure_ascii=False), "the journal as an operator reads it")
        audit = json.dumps(d.ok("audit", "--limit", "5000"), ensure_ascii=False)
        check("parking.pay" in audit, "payments audited")
        d.stop()
        no_plate_in(d.logtext(), "the log")
        name, caps = plugin_meta(SOS[1])
        eq(name, "parking", "plugin name")


def case_occupancy_fire_lane_and_overstay_raise_alarms():
    """Occupancy per lot live from the spaces' sensors (unknown until a sensor is heard), per
    kind, within the caller's jurisdiction; a vehicle on a fire lane for fire_lane_grace_s
    raises fire_lane_blocked once (again after it left and came back); a session parked over
    overstay_hours raises parking_overstay once, naming the session, never the plate; the
    open sessions survive a restart and their exits still match."""
    cfg = TARIFF + " overstay_hours = 2; fire_lane_grace_s = 60;"
    n = node(cfg)
    with n as d:
        d.ok("devices", "add", "g-1", "gate", "tdrv", "ok")
        for i in range(1, 5):
            d.ok("devices", "add", f"ps-{i}", "parking", "tdrv", "ok")
        spaces = [("sp-1", "P1", "public", "ps-1"), ("sp-2", "P1", "monthly", "ps-2"),
                  ("sp-3", "P1", "fire_lane", "ps-3"), ("sp-4", "P2", "visitor", "ps-4"),
                  ("sp-5", "P2", "ev", None)]
        for sid, lot, kind, sensor in spaces:
            rec = {"code": sid.upper(), "lot": lot, "kind": kind}
            if sid == "sp-1":
                rec["plate"] = PLATES["C"]  # from an older source: sensitive, kept
            if sensor:
                rec["sensor"] = sensor
            put(d, "parking_spaces", rec, "--id", sid)
        wait_for(lambda: stats(d)["spaces"] == 5, "the spaces followed")
        occ = {x["lot"]: x for x in d.ok("parking", "occupancy")["lots"]}
        eq((occ["P1"]["spaces"], occ["P1"]["unknown"], occ["P2"]["unknown"]), (3, 3, 2),
           "nothing heard yet")
        for s, v in (("ps-1", "true"), ("ps-2", "false"), ("ps-3", "true"), ("ps-4", "true")):
            eq(d.ok("tdrv", "post", s, "occupied", "bool", v)["rc"], 0, s)
        wait_for(lambda: stats(d)["sensor_readings"] == 4, "readings heard")
        # Written back to the spaces (the plugin's own account), only where they changed.
        heard = now_ms(d)
        wait_for(lambda: stats(d)["spaces_written"] == 4, "four spaces written")
        sp = {s: d.ok("data", "get", "parking_spaces", s) for s in
              ("sp-1", "sp-2", "sp-3", "sp-4", "sp-5")}
        eq({k: v.get("occupied") for k, v in sp.items()},
           {"sp-1": True, "sp-2": False, "sp-3": True, "sp-4": True, "sp-5": None},
           "parking_spaces.occupied")
        check(all(heard - 10000 <= sp[k]["occupied_since"] <= heard for k in ("sp-1", "sp-4")),
              f"occupied_since when heard: {sp}")
        check("occupied_since" not in sp["sp-2"], sp["sp-2"])
        check(sp["sp-1"]["plate"] != PLATES["C"], "a space's plate is masked without the grant")
        seer = d.account("spaces", "operator", node=YUELAN, grants=("sensitive:parking_spaces",))
        eq(d.ok("data", "get", "parking_spaces", "sp-1", env={"LINLI_SESSION": seer})["plate"],
           PLATES["C"], "the plate kept through the plugin's masked write")
        eq(d.ok("tdrv", "post", "ps-1", "occupied", "bool", "true")["rc"], 0, "again")
        wait_for(lambda: stats(d)["sensor_readings"] == 5, "the repeat heard")
        eq(stats(d)["spaces_written"], 4, "a repeat writes nothing")
        occ = {x["lot"]: x for x in d.ok("parking", "occupancy")["lots"]}
        eq({k: (v["spaces"], v["occupied"], v["free"], v["unknown"]) for k, v in occ.items()},
           {"P1": (3, 2, 1, 0), "P2": (2, 1, 0, 1)}, "occupancy per lot")
        eq(occ["P1"]["occupied_by_kind"], {"public": 1, "monthly": 0, "fire_lane": 1}, "by kind")
        one = d.ok("parking", "occupancy", "P2")["lots"]
        eq([x["lot"] for x in one], ["P2"], "one lot")
        fails(d, "parking", "occupancy", "P9", want="lot P9: no parking space of it within")
        fails(d, "parking", "occupancy", "--scope", "hefei/baohe/binhu/lvzhou",
              want="outside your jurisdiction")
        other = d.account("gw", "grid_worker", node=YUELAN + "/g01")
        eq(d.ok("parking", "occupancy", env={"LINLI_SESSION": other})["lots"], [],
           "a grid worker sees none of the community's spaces")
        # The fire lane: not before the grace, once after it.
        d.ok("clock", "advance", "30s")
        eq(stats(d)["raised"]["fire_lane_blocked"], 0, "within the grace")
        t = now_ms(d)
        gate(d, "entry", PLATES["A"], t - 10 * MIN)
        gate(d, "entry", PLATES["B"], t - 30 * MIN)
        wait_for(lambda: stats(d)["entries"] == 2, "two in")
        d.ok("clock", "advance", "31s")
        wait_for(lambda: stats(d)["raised"]["fire_lane_blocked"] == 1, "the fire lane alarm")
        d.login()
        alarms = {(a["source"], a["type"]): a for a in d.ok("alarms", "list")["alarms"]}
        a = alarms[("record:parking_spaces/sp-3", "fire_lane_blocked")]
        eq((a["severity"], a["scope"]), ("major", YUELAN), "the alarm")
        det = d.ok("alarms", "show", a["id"])["details"]
        check(det.startswith("a vehicle on fire lane space SP-3 of lot P1 for ") and
              det.endswith(" s (sensor ps-3)"), det)
        d.ok("clock", "advance", "2m")
        d.login()
        eq(stats(d)["raised"]["fire_lane_blocked"], 1, "once while it stays")

        def active(t):
            return [a for a in d.ok("alarms", "list", "--active")["alarms"] if a["type"] == t]
        # The vehicle leaves the fire lane: its alarm clears.
        d.ok("tdrv", "post", "ps-3", "occupied", "bool", "false")
        wait_for(lambda: not active("fire_lane_blocked"), "the fire-lane alarm cleared")
        wait_for(lambda: d.ok("data", "get", "parking_spaces", "sp-3")["occupied"] is False,
                 "sp-3 free again in the store")
        check("occupied_since" not in d.ok("data", "get", "parking_spaces", "sp-3"), "no since")
        # Overstay: over two hours parked (A), B left in time.
        gate(d, "exit", PLATES["B"], now_ms(d))
        wait_for(lambda: stats(d)["exits_held"] == 1, "B held")
        sid = {s["plate"]: s["id"] for s in sessions(d)}[PLATES["B"]]
        d.ok("parking", "pay", sid)
        gate(d, "exit", PLATES["B"], now_ms(d))
        wait_for(lambda: stats(d)["exits"] == 1, "B out")
        d.stop()
        d.start(args=n.args)  # the open session survives a restart
        eq(stats(d)["open_sessions"], 1, "A still open after the restart")
        d.ok("clock", "advance", "2h")
        d.login()
        wait_for(lambda: stats(d)["raised"]["parking_overstay"] == 1, "the overstay alarm")
        a_id = {s["plate"]: s["id"] for s in sessions(d)}[PLATES["A"]]
        alarms = {(a["source"], a["type"]): a for a in d.ok("alarms", "list")["alarms"]}
        a = alarms[(f"record:parking_sessions/{a_id}", "parking_overstay")]
        eq(a["severity"], "minor", "overstay severity")
        eq(d.ok("alarms", "show", a["id"])["details"],
           f"session {a_id} has been parked in lot P1 for 2 h (over 2 h)", "details")
        wait_for(lambda: d.ok("parking", "show", a_id).get("overstay_alarmed"), "noted")
        d.ok("clock", "advance", "1h")
        d.login()
        eq(stats(d)["raised"]["parking_overstay"], 1, "once per session")
        # The fire lane taken again: a new alarm (the first was cleared).
        d.ok("tdrv", "post", "ps-3", "occupied", "bool", "true")
        d.ok("clock", "advance", "61s")
        d.login()
        # (the counters started again with the restart)
        wait_for(lambda: stats(d)["raised"]["fire_lane_blocked"] == 1, "raised again")
        eq([a["count"] for a in active("fire_lane_blocked")], [1], "a new alarm")
        fl = [a for a in d.ok("alarms", "list")["alarms"] if a["type"] == "fire_lane_blocked"]
        eq(len(fl), 2, "the cleared one and the new one")
        # After the restart the exit of A still matches its session.
        gate(d, "exit", PLATES["A"], now_ms(d))
        wait_for(lambda: d.ok("parking", "show", a_id).get("exit_held_at"), "A held")
        eq(d.ok("parking", "show", a_id)["fee"], 20, "3 h 14 m and some: four started hours")
        eq(len(active("parking_overstay")), 1, "still overstaying while held")
        d.ok("parking", "pay", a_id)
        gate(d, "exit", PLATES["A"], now_ms(d))
        wait_for(lambda: not active("parking_overstay"), "the overstay cleared when A left")
        all_alarms = json.dumps(d.ok("alarms", "list"), ensure_ascii=False)
        no_plate_in(all_alarms, "the alarms")
        d.stop()
        no_plate_in(d.logtext(), "the log")


def case_bad_config_is_refused_naming_the_key():
    """A bad plugins.parking group stops the plugin at load naming file and key (alarms runs
    on); on SIGHUP a bad one is refused and the running tariff stays; the catalog index lists
    what parking.so declares; the gate class is in the catalog with its sensitive plate."""
    import signal
    n = node()
    with n as d:
        name, caps = plugin_meta(SOS[1])
        idx = d.ok("catalog", "show", "plugin", "parking")
        eq((idx["version"], idx["sdk"], idx["requires"]), ("1.0.0", "1.1", ["alarms"]), "index")
        eq(sorted(idx["capabilities"]), sorted(caps), "the index lists what parking.so declares")
        g = d.ok("catalog", "show", "device", "gate")
        evs = {e["name"]: e for e in g["events"]}
        check({"entry", "exit"} <= set(evs), f"gate events: {g['events']}")
        ds = {f["name"]: f for f in d.ok("catalog", "show", "parking_sessions")["fields"]}
        eq(ds["plate"]["sensitive"], "name", "the plate is sensitive")
        sp = {f["name"]: f for f in d.ok("catalog", "show", "parking_spaces")["fields"]}
        check({"monthly", "visitor", "fire_lane"} <= set(sp["kind"]["values"]), sp["kind"])
        eq(sp["plate"]["sensitive"], "name", "a space's plate is sensitive")
        vs = {f["name"]: f for f in d.ok("catalog", "show", "parking_visitors")["fields"]}
        eq((vs["plate"]["sensitive"], vs["house"]["sensitive"]), ("name", "address"), "visitors")
        n.configure("per_hour = 5.0; daily_cap = 2.0;")
        d.kill_with(signal.SIGHUP)
        d.wait_log("parking: reload refused, keeping the running configuration: linli.cfg: "
                   "plugins.parking.daily_cap: 2 is below per_hour 5")
        eq(stats(d)["config"]["daily_cap"], 40, "the old tariff runs")
        for bad, needle in (
                ('tariffs = ( { lot = "P3"; per_hour = 8.0; daily_cap = 2.0; } );',
                 "plugins.parking.tariffs.[1].daily_cap: 2 is below per_hour 8"),
                ('tariffs = ( { lot = "P3"; }, { lot = "P3"; per_hour = 1.0; } );',
                 "plugins.parking.tariffs.[2].lot: 'P3' has a tariff already (entry 1)")):
            n.configure(bad)
            d.kill_with(signal.SIGHUP)
            d.wait_log("parking: reload refused, keeping the running configuration: linli.cfg: "
                       + needle)
        eq(stats(d)["config"]["tariffs"], [], "none applied")
        n.configure("per_hour = 6.0;")
        d.kill_with(signal.SIGHUP)
        wait_for(lambda: stats(d)["config"]["per_hour"] == 6, "a good reload applies")
    for bad, needle in (
            ("free_minutes = -1;", "linli.cfg: plugins.parking.free_minutes: must be whole "
             "minutes, 0 to 1440"),
            ("per_hour = \"five\";", "linli.cfg: plugins.parking.per_hour: must be a number"),
            ("tariff = 3;", "linli.cfg: plugins.parking.tariff: unknown key"),
            ("severity = { parking_overstay = \"loud\"; };", "plugins.parking.severity")):
        with node(bad, clock=False) as d:
            info = d.ok("plugins", "info", "parking")
            check(info["state"] == "failed" and needle in info["reason"], f"{bad}: {info}")
            eq(d.ok("plugins", "info", "alarms")["state"], "running", "alarms runs on")


if __name__ == "__main__":
    sys.exit(main(globals()))
