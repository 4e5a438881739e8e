"""Integration tests of the waste-sorting supervision app (垃圾分类督导, scripts/apps/waste.lua),
the repo's own file installed with `linli plugins install FILE --grant` into a real linlid at
the street node hefei/baohe/binhu (two communities below it, 悦澜 and 启明) with the real
catalog, the alarms plugin and the test driver posting the bins' fill readings; the test
clock. Overflow alarms once per overflow, check-ins by two grid workers of two communities,
the daily report built by the morning timer and on demand with its numbers counted here,
each community kept to its own, another street refused, bad input refused naming it.
"""
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import BUILD, SRC, Daemon, check, eq, finish, main, wait_for  # noqa: E402

STREET = "hefei/baohe/binhu"
YUELAN, QIMING = STREET + "/yuelan", STREET + "/qiming"
OTHER = "hefei/baohe/fanhua/jinxiu"  # a community of another street
APP = os.path.join(SRC, "scripts", "apps", "waste.lua")
ALARMS_SO = os.path.join(BUILD, "plugins", "alarms", "alarms.so")
TDRV_SO = os.path.join(os.path.abspath(os.environ.get(
    "LINLI_TP_DIR", os.path.join(BUILD, "tests", "plugins"))), "tp_driver.so")
PW = "Another-Passw0rd-1"


def js(v):
    return json.dumps(v, ensure_ascii=False)


class node:
    """linlid at the street with alarms and tdrv; waste.lua installed from scripts/apps."""

    def __init__(self, conf="over_minutes = 15;", install=True):
        self.install = install
        self.d = Daemon(node=STREET, level="street", name="滨湖街道")
        pdir = os.path.join(self.d.dir, "plugins")
        self.scripts = os.path.join(self.d.dir, "scripts")
        os.makedirs(pdir)
        os.makedirs(os.path.join(self.scripts, "apps"))
        for so in (ALARMS_SO, TDRV_SO):
            shutil.copyfile(so, os.path.join(pdir, os.path.basename(so)))
        self.d.write_config(node=STREET, level="street", name="滨湖街道",
                            extra=f'catalog_dir = "{os.path.join(SRC, "catalog")}";\n'
                                  f'plugin_dirs = [ "{pdir}" ];\n'
                                  f'script_dirs = [ "{self.scripts}" ];\n'
                                  f'plugins = {{ waste = {{ {conf} }}; }};\n')
        self.d.grant_declared(pdir)

    def __enter__(self):
        try:
            d = self.d.start(args=("--test-clock",))
            d.ok("clock", "set", "2027-03-10T08:00")
            d.login()
            if not self.install:
                return d
            r = d.ok("plugins", "install", APP, "--grant")
            check(os.path.exists(os.path.join(self.scripts, "apps", "waste.lua")),
                  f"installed into the script dir: {r}")
            state = {p["name"]: p for p in d.ok("plugins", "list")}.get("waste", {})
            if state.get("state") != "running":
                d.ok("plugins", "enable", "waste")
            return d
        except BaseException:
            self.d.cleanup()
            raise

    def __exit__(self, etype, *rest):
        finish(self.d, etype)


def put(d, dataset, scope, id, rec):
    d.ok("data", "put", dataset, "--scope", scope, "--id", id, js(rec))


def seed(d):
    """Two communities: grids, grid workers w1 (悦澜) and w2 (启明), points and bins."""
    for c in (YUELAN, QIMING):
        put(d, "grids", c, "g01", {"code": "g01", "name": "第一网格"})
    put(d, "grid_workers", YUELAN, "gw1", {"name": "王芳", "phone": "13800000001",
                                          "account": "w1", "grid": "g01", "status": "active"})
    put(d, "grid_workers", QIMING, "gw2", {"name": "李强", "phone": "13800000002",
                                          "account": "w2", "grid": "g01", "status": "active"})
    put(d, "waste_points", YUELAN, "p1", {"name": "东门投放点", "bins": "tb-1,tb-2",
                                         "keeper": "张三", "keeper_phone": "13900000001"})
    put(d, "waste_points", YUELAN, "p2", {"name": "北区投放点", "bins": "tb-3",
                                         "threshold": 90, "checkins_per_day": 2})
    put(d, "waste_points", QIMING, "p1", {"name": "启明一号点", "bins": "tb-4",
                                         "checkins_per_day": 1})
    put(d, "waste_points", QIMING, "p9", {"name": "启明九号点", "bins": "tb-5"})
    for dev, c in (("tb-1", YUELAN), ("tb-2", YUELAN), ("tb-3", YUELAN), ("tb-4", QIMING),
                   ("tb-5", QIMING)):
        d.ok("devices", "add", dev, "trash_bin", "tdrv", "ok", "--scope", c)
    wait_for(lambda: d.ok("waste", "stats")["bins"] == 5, "the points' cache")
    w1 = d.account("w1", "operator", node=YUELAN, password=PW)
    w2 = d.account("w2", "operator", node=QIMING, password=PW)
    return w1, w2


class Feed:
    """Posts fill readings through tdrv and keeps them, to count the report here."""

    def __init__(self, d):
        self.d, self.n, self.seen = d, 0, {}

    def post(self, **fills):
        for dev, v in fills.items():
            dev = dev.replace("_", "-")
            eq(self.d.ok("tdrv", "post", dev, "fill_level", "int", str(v))["rc"], 0, dev)
            self.seen.setdefault(dev, []).append(v)
            self.n += 1
        wait_for(lambda: self.d.ok("waste", "stats")["readings"] == self.n, "readings heard")

    def advance(self, minutes):
        self.d.ok("clock", "advance", f"{minutes}m")


def waste(d, *args, token=None):
    return d.ok("waste", *args, env={"LINLI_SESSION": token} if token else None)


def refused(d, args, name, text, token=None):
    rc, out, err = d.cli("waste", *args, env={"LINLI_SESSION": token} if token else None)
    check(rc == 1 and isinstance(out, dict) and out.get("name") == name
          and text in out.get("error", ""),
          f"linli waste {' '.join(args)}: want {name} {text!r}, got {rc} {out} {err}")


def query(d, dataset, scope=STREET):
    return d.ok("data", "query", dataset, "--scope", scope, "--limit", "1000")["records"]


def overflow_alarms(d):
    return sorted(((a["source"], a["scope"], a["active"], a.get("count"))
                   for a in query(d, "alarms")
                   if a.get("type") == "waste_overflow"))


def case_overflow_once_checkins_and_the_daily_report():
    """Readings over the day: tb-1 stays over 80 % for 15 min -> one alarm whatever the
    readings after; back under -> cleared; over again -> a second alarm. tb-3 over 85 but
    under its point's 90: none. tb-4 in 启明: its own alarm in 启明. Check-ins by w1 and w2.
    The morning timer builds 2027-03-10's reports at 01:00 the next day; the numbers are
    counted here from what was posted and checked in."""
    with node() as d:
        w1, w2 = seed(d)
        f = Feed(d)
        f.post(tb_1=50, tb_2=70, tb_3=85, tb_4=20)
        f.advance(10)
        f.post(tb_1=85, tb_3=88, tb_4=99)          # 08:10: tb-1 and tb-4 over
        f.advance(10)
        f.post(tb_1=90)                            # 08:20: 10 min over, no alarm
        eq(overflow_alarms(d), [], "10 min over: none yet")
        f.advance(10)                              # 08:30: 20 min over
        f.post(tb_1=95, tb_2=60)
        f.post(tb_1=97)
        want1 = ("device:tb-1", YUELAN, True, 1)
        want4 = ("device:tb-4", QIMING, True, 1)
        wait_for(lambda: overflow_alarms(d) == sorted([want1, want4]),
                 "tb-1's and tb-4's overflow alarms")
        a = [x for x in query(d, "alarms", YUELAN)
             if x.get("source") == "device:tb-1"][0]
        check(a["details"].startswith("bin tb-1 at point p1 (东门投放点) at or over 80% for "),
              f"details: {a['details']}")
        check("13900000001" not in d.logtext() and "张三" not in d.logtext(), "keeper not logged")
        pts = waste(d, "points", token=w1)
        eq([(p["scope"], p["id"], p["threshold"], p["checkins_per_day"]) for p in pts],
           [(YUELAN, "p1", 80, 2), (YUELAN, "p2", 90, 2)], "w1 sees 悦澜's points only")
        eq([(b["id"], b["fill"], b["over"], b["alarm"]) for b in pts[0]["bins"]],
           [("tb-1", 97, True, True), ("tb-2", 60, False, False)], "p1's bins")
        eq([(b["id"], b["fill"], b["over"], b["alarm"]) for b in pts[1]["bins"]],
           [("tb-3", 88, False, False)], "p2's bin: under its own threshold 90")
        check("keeper" not in pts[0] and "keeper_phone" not in pts[0], "no keeper shown")
        eq(len(waste(d, "points")), 4, "the street's admin sees every point")
        # Back under: cleared; over again for 15 min: a second alarm.
        f.advance(5)
        f.post(tb_1=30)                            # emptied
        wait_for(lambda: ("device:tb-1", YUELAN, False, 1) in overflow_alarms(d), "cleared")
        f.post(tb_1=82)
        f.advance(16)
        f.post(tb_1=88)
        wait_for(lambda: overflow_alarms(d).count(want1) == 1
                 and ("device:tb-1", YUELAN, False, 1) in overflow_alarms(d), "a second alarm")
        st = waste(d, "stats")
        eq((st["raised"], st["cleared"], st["raise_failed"]), (3, 1, 0), "raised, cleared")
        # Check-ins: w1 twice at p1 and once at p2 (悦澜), w2 once at 启明's p1.
        r = waste(d, "checkin", "p1", "sorted", token=w1)
        eq((r["scope"], r["worker"], r["day"], r["checkins_today"], r["expected"]),
           (YUELAN, "gw1", "2027-03-10", 1, 2), "w1 at p1")
        r = waste(d, "checkin", "p1", "混投", "--photo", "oss://bin/p1/0830.jpg", token=w1)
        eq((r["status"], r["checkins_today"]), ("mixed", 2), "the Chinese word; counted")
        waste(d, "checkin", "p2", "overflowing", "--note", "北区满溢", token=w1)
        r = waste(d, "checkin", "p1", "sorted", token=w2)
        eq((r["scope"], r["worker"], r["checkins_today"], r["expected"]),
           (QIMING, "gw2", 1, 1), "w2 at 启明's own p1")
        ck = d.ok("data", "get", "waste_checkins", r["id"], "--scope", QIMING)
        eq((ck["point"], ck["account"], ck["status"], ck["day"]), ("p1", "w2", "sorted",
                                                                   "2027-03-10"), "stored")
        eq([p["checkins_today"] for p in waste(d, "points", token=w1)], [2, 1], "today's")
        # The next morning at 01:00 the timer builds 2027-03-10's reports.
        d.ok("clock", "set", "2027-03-11T00:59")
        d.login()
        refused(d, ("report", "show", "yuelan", "2027-03-10"), "LINLI_ENOENT",
                "no report of " + YUELAN + " for 2027-03-10")
        d.ok("clock", "set", "2027-03-11T01:01")
        d.login()
        d.wait_log("built the daily report of " + QIMING + " for 2027-03-10")
        d.wait_log("built the daily report of " + YUELAN + " for 2027-03-10")
        w1 = d.login("w1", PW)

        def count(bins, thresholds):
            means = [sum(f.seen[b]) / len(f.seen[b]) for b in bins if b in f.seen]
            return {"bins_reporting": len(means), "readings": sum(len(f.seen[b]) for b in bins),
                    "fill_avg": round(sum(means) / len(means), 1),
                    "fill_max": max(max(f.seen[b]) for b in bins),
                    "bins_over": sum(max(f.seen[b]) >= thresholds[b] for b in bins)}
        want = dict(count(["tb-1", "tb-2", "tb-3"], {"tb-1": 80, "tb-2": 80, "tb-3": 90}),
                    day="2027-03-10", points=2, bins=3, overflows=2, checkins=3, expected=4,
                    points_short=1, problems=2, mixed=1, overflowing=1, problem_points="p1,p2",
                    community=YUELAN, built_by="plugin:waste")
        eq((want["readings"], want["fill_max"], want["bins_over"]), (12, 97, 1), "by hand")
        eq(want["fill_avg"], round(((50 + 85 + 90 + 95 + 97 + 30 + 82 + 88) / 8
                                    + (70 + 60) / 2 + (85 + 88) / 2) / 3, 1), "by hand")
        rep = waste(d, "report", "show", "yuelan", "2027-03-10", token=w1)
        eq({k: rep.get(k) for k in want}, want, "悦澜's report of 2027-03-10")
        rep = waste(d, "report", "show", QIMING, "2027-03-10")
        eq({k: rep.get(k) for k in ("points", "bins", "bins_reporting", "fill_avg", "fill_max",
                                    "bins_over", "overflows", "checkins", "expected",
                                    "points_short", "problems")},
           {"points": 2, "bins": 2, "bins_reporting": 1, "fill_avg": 59.5, "fill_max": 99,
            "bins_over": 1, "overflows": 1, "checkins": 1, "expected": 3, "points_short": 1,
            "problems": 0}, "启明's report")
        # Built again on demand as w1: the same numbers, built by w1.
        rep = waste(d, "report", "build", "yuelan", "2027-03-10", token=w1)
        eq({k: rep.get(k) for k in want}, dict(want, built_by="w1"), "rebuilt by w1")
        eq(d.ok("data", "get", "waste_daily", "2027-03-10", "--scope", YUELAN)["built_by"],
           "w1", "stored under the day's id")


def case_each_community_its_own_and_bad_input_refused():
    """A community account reads and writes its own community only; a point of a sibling
    is refused as outside the caller's jurisdiction; another street's community is refused
    by the app; not a grid worker, unknown point, bad status, a day that is not a date,
    a community that is not one: each refused naming what and where. Nothing stored."""
    with node() as d:
        w1, w2 = seed(d)
        refused(d, ("checkin", "p9", "sorted"), "LINLI_EPERM",
                "point 'p9' is outside your jurisdiction (" + YUELAN + ")", token=w1)
        refused(d, ("checkin", "p1", "sorted", "--community", "qiming"), "LINLI_EPERM",
                "--community: " + QIMING + " is outside your jurisdiction (" + YUELAN + ")",
                token=w1)
        refused(d, ("checkin", "nosuch", "sorted"), "LINLI_ENOENT",
                "unknown point 'nosuch' in " + YUELAN + " (waste_points)", token=w1)
        refused(d, ("checkin", "p1", "dirty"), "LINLI_EINVAL",
                "status: 'dirty' is not one of sorted (分类正确), mixed (混投), overflowing",
                token=w1)
        refused(d, ("checkin", "p1", "sorted", "--community", "qiming"), "LINLI_EPERM",
                "'admin' is not a grid worker of " + QIMING + " (no grid_workers record there")
        refused(d, ("checkin", "p1", "sorted", "--when", "x"), "LINLI_EINVAL",
                "unknown option --when", token=w1)
        refused(d, ("checkin", "p1", "sorted", "--community", OTHER), "LINLI_EPERM",
                "--community: '" + OTHER + "' is outside this street (" + STREET + ")")
        eq(query(d, "waste_checkins"), [], "nothing stored")
        # Points and reports: each community its own.
        eq([p["id"] for p in waste(d, "points", token=w2)], ["p1", "p9"], "w2: 启明's")
        # A point's bins that are not this community's trash bins are shown as such.
        d.ok("devices", "add", "dr-1", "door", "tdrv", "ok", "--scope", YUELAN)
        put(d, "waste_points", YUELAN, "p3", {"name": "西门投放点", "bins": "tb-4, tb-x,dr-1"})
        p3 = [p for p in waste(d, "points", "--community", "yuelan") if p["id"] == "p3"][0]
        eq([(b["id"], b.get("problem")) for b in p3["bins"]],
           [("tb-4", "the device is at " + QIMING + ", not in " + YUELAN),
            ("tb-x", "dev_info: no device 'tb-x'"), ("dr-1", "not a trash_bin device")],
           "p3's bins")
        p1 = [p for p in waste(d, "points", token=w1) if p["id"] == "p1"][0]
        eq([(b["id"], b.get("problem")) for b in p1["bins"]], [("tb-1", None), ("tb-2", None)],
           "p1's bins are 悦澜's trash bins")
        refused(d, ("points", "--community", "yuelan"), "LINLI_EPERM",
                "--community: " + YUELAN + " is outside your jurisdiction (" + QIMING + ")",
                token=w2)
        refused(d, ("points", "--community", OTHER), "LINLI_EPERM", "outside this street")
        waste(d, "report", "build", "qiming", "2027-03-09", token=w2)
        eq(waste(d, "report", "show", "qiming", "2027-03-09", token=w2)["checkins"], 0, "w2's")
        refused(d, ("report", "show", "qiming", "2027-03-09"), "LINLI_EPERM",
                "community: " + QIMING + " is outside your jurisdiction (" + YUELAN + ")",
                token=w1)
        refused(d, ("report", "build", "qiming", "2027-03-09"), "LINLI_EPERM", "outside",
                token=w1)
        refused(d, ("report", "show", OTHER, "2027-03-09"), "LINLI_EPERM",
                "community: '" + OTHER + "' is outside this street")
        refused(d, ("report", "show", "yuelan", "2027-02-30"), "LINLI_EINVAL",
                "day: '2027-02-30' is not a date")
        refused(d, ("report", "build", "yuelan", "yesterday"), "LINLI_EINVAL",
                "day: 'yesterday' is not a date (YYYY-MM-DD)")
        refused(d, ("report", "show", "Yue Lan"), "LINLI_EINVAL",
                "community: 'Yue Lan' is not a community of " + STREET)
        refused(d, ("report", "show", "yuelan", "2027-03-09"), "LINLI_ENOENT",
                "no report of " + YUELAN + " for 2027-03-09 (waste report build")
        refused(d, ("report", "list"), "LINLI_EINVAL", "usage: waste report build|show")
        # A grid worker who left checks in nowhere.
        put(d, "grid_workers", YUELAN, "gw1", {"name": "王芳", "phone": "13800000001",
                                              "account": "w1", "grid": "g01", "status": "left"})
        refused(d, ("checkin", "p1", "sorted"), "LINLI_EPERM",
                "'w1' is not a grid worker of " + YUELAN, token=w1)
        eq(query(d, "waste_checkins"), [], "still nothing stored")
        # Another street's account does not exist here.
        rc, out, err = d.cli("accounts", "add", "x1", "--role", "operator", "--node", OTHER,
                             "--stdin", input=PW + "\n")
        check(rc != 0, f"an account of another street: {rc} {out} {err}")


def case_bad_settings_stop_the_app_with_a_reason():
    """A setting out of range or unknown: the app does not start, so `plugins install`
    refuses it, saying which setting and why; nothing is left running."""
    for conf, why in (("threshold = 30;",
                       "plugins.waste.threshold: 30 is not a fill level of 50 to 100 %"),
                      ("report_hour = 24;", "plugins.waste.report_hour: 24 is not an hour"),
                      ("thresold = 80;", "plugins.waste: unknown setting 'thresold' (settings: "
                                         "threshold, checkins_per_day, over_minutes, "
                                         "report_hour)")):
        with node(conf=conf, install=False) as d:
            rc, out, err = d.cli("plugins", "install", APP, "--grant")
            check(rc == 1 and why in out.get("error", "")
                  and "did not start, so it was not installed" in out["error"],
                  f"{conf}: {rc} {out} {err}")
            check("waste" not in [p["name"] for p in d.ok("plugins", "list")], f"{conf}: listed")
            rc, out, err = d.cli("waste", "stats")
            check(rc != 0, f"{conf}: no waste command: {out} {err}")

if __name__ == "__main__":
    sys.exit(main(globals()))
