"""Integration tests of the watch plugin (plugins/watch/), through a real linlid.

The node is the community hefei/baohe/binhu/yuelan with the real catalog and the alarms and
watch plugins granted exactly what they declare, started with the test clock. The test
writes the watchlist, grid_workers and watch_hits rows itself with `linli data put` as the
node's admin (data.write covers every dataset of its jurisdiction, restricted ones too):
watch_hits is written by the access plugin in service, and the test needs none of its code.
Callers are real accounts logged in with the real console: a viewer, an operator, a grid
worker (an operator account named by an active grid_workers record, as the grid plugin has
them) and an officer granted sensitive:watchlist.
"""
import datetime
import json
import os
import signal
import sys
import time
import zoneinfo

sys.path.insert(0, os.path.dirname(__file__))
from harness import BUILD, SRC, PluginNode, check, eq, main, plugin_meta, wait_for  # noqa: E402

SOS = [os.path.join(BUILD, "plugins", "alarms", "alarms.so"),
       os.path.join(BUILD, "plugins", "watch", "watch.so")]
CATALOG = os.path.join(SRC, "catalog")
YUELAN = "hefei/baohe/binhu/yuelan"
PASSWORD = "Another-Passw0rd-1"
ZONE = zoneinfo.ZoneInfo("Asia/Shanghai")
# Accounts of every case: role, grants.
PEOPLE = {"v1": ("viewer", ()), "op1": ("operator", ()), "w1": ("operator", ()),
          "w2": ("operator", ()), "off": ("operator", ("sensitive:watchlist",))}


def local_ms(*args):
    """ms of a local (Asia/Shanghai, the node's zone) date and time."""
    return int(datetime.datetime(*args, tzinfo=ZONE).timestamp() * 1000)


def js(v):
    return json.dumps(v, ensure_ascii=False)


def node(watch=""):
    """A community linlid with alarms and watch (and `watch`, the plugins.watch group)."""
    return PluginNode("watch", SOS, watch, clock=True)


def seed(d, clock="2027-03-01T09:00"):
    """The clock set first (a move may end sessions; None: the real one), then two grid
    workers, two people on the watchlist (p1 supervised by gw1 = account w1, p2 by gw2 =
    w2), the accounts."""
    if clock:
        d.ok("clock", "set", clock)
        d.login()
    for gw, acct, grid in (("gw1", "w1", "g01"), ("gw2", "w2", "g02")):
        d.ok("data", "put", "grid_workers", "--scope", YUELAN, "--id", gw,
             js({"name": "王五", "phone": "13800000000", "account": acct, "grid": grid,
                 "status": "active"}))
    d.ok("data", "put", "watchlist", "--scope", YUELAN, "--id", "p1",
         js({"name": "张三", "id_number": "340104199001011234", "phone": "13912345678",
             "category": "drug_rehab", "risk_level": "high", "supervisor": "gw1",
             "card_no": "C-77", "face_id": "F-1", "house": "h-3-501"}))
    d.ok("data", "put", "watchlist", "--scope", YUELAN, "--id", "p2",
         js({"name": "李四", "id_number": "340104198502025678", "category": "mental_health",
             "risk_level": "low", "supervisor": "gw2"}))
    for user, (role, grants) in PEOPLE.items():
        d.account(user, role, node=YUELAN, grants=grants, password=PASSWORD)
    d.login()


def as_(d, user, *args):
    """`linli watch ARGS` as `user`, freshly logged in (a clock move ends sessions)."""
    tok = d.login(user, PASSWORD) if user != "admin" else d.login()
    return d.cli("watch", *args, env={"LINLI_SESSION": tok})


def ok_as(d, user, *args):
    rc, out, err = as_(d, user, *args)
    check(rc == 0, f"watch {' '.join(args)} as {user}: {err}")
    return out


def refused_as(d, user, needle, *args, code="LINLI_EPERM"):
    rc, out, err = as_(d, user, *args)
    check(rc != 0 and isinstance(out, dict) and out.get("name") == code and needle in err,
          f"watch {' '.join(args)} as {user}: want {code} with {needle!r}: {rc} {err}")
    return err


def audit(d, *args):
    d.login()
    return d.ok("audit", *args)


def case_masking_for_each_role():
    """What a viewer, an operator, a grid worker and a granted officer each see of the
    watchlist and of the hits, every read audited under the caller via plugin:watch."""
    with node() as d:
        seed(d)
        d.ok("data", "put", "watch_hits", "--scope", YUELAN, "--id", "h1",
             js({"person": "p1", "device": "door-3", "kind": "card", "matched": "C-77",
                 "score": 0.97, "at": "2027-02-27T08:15:00+08:00", "building": "3",
                 "alarm": "a-1", "seen_by": "plugin:access"}))
        clear = {"p1": ("张三", "drug_rehab"), "p2": ("李四", "mental_health")}
        masked = {"p1": ("张*", "***"), "p2": ("李*", "***")}
        for user, want in (("v1", masked), ("op1", masked), ("admin", masked),
                           ("w1", {"p1": masked["p1"]}), ("w2", {"p2": masked["p2"]}),
                           ("off", clear)):
            rows = ok_as(d, user, "list")
            eq({r["id"]: (r["name"], r["category"]) for r in rows}, want, f"list as {user}")
            check(all(r["scope"] == YUELAN and "id_number" not in r for r in rows), rows)
        house = {r["id"]: r.get("house") for r in ok_as(d, "off", "list")}
        eq(house, {"p1": "h-3-501", "p2": None}, "the officer sees where p1 lives")
        eq({r["id"]: r.get("house") for r in ok_as(d, "v1", "list")},
           {"p1": "***", "p2": None}, "a viewer does not")
        eq([r["id"] for r in ok_as(d, "off", "list", "risk=high")], ["p1"], "a filter")
        # show: the kernel masks what the catalog marks, the plugin hides the rest.
        p = ok_as(d, "v1", "show", "p1")
        eq((p["name"], p["id_number"], p["phone"], p["category"], p["risk_level"]),
           ("张*", "340***********1234", "139****5678", "***", "high"), "a viewer's p1")
        eq((p["card_no"], p["face_id"], p["house"]), ("***", "***", "***"), "hidden")
        p = ok_as(d, "off", "show", "p1")
        eq((p["name"], p["id_number"], p["phone"], p["category"], p["card_no"]),
           ("张三", "340104199001011234", "13912345678", "drug_rehab", "C-77"), "in clear")
        eq(ok_as(d, "w1", "show", "p1")["name"], "张*", "the worker's own person, masked")
        refused_as(d, "w1", "no watchlist person 'p2' within reach", "show", "p2",
                   code="LINLI_ENOENT")
        refused_as(d, "w1", "no watchlist person 'p9' within reach", "show", "p9",
                   code="LINLI_ENOENT")
        # A grid_worker account of grid g01 reaches only its grid: no one of the community.
        d.account("g1", "grid_worker", node=YUELAN + "/g01", password=PASSWORD)
        eq(ok_as(d, "g1", "list"), [], "a grid account lists no one of the community")
        refused_as(d, "g1", "no watchlist person 'p1' within reach", "show", "p1",
                   code="LINLI_ENOENT")
        # Hits: that one exists (when, its alarm) for everyone; who and where only for the
        # granted officer (matched stays masked: it needs sensitive:watch_hits too).
        for user in ("v1", "op1", "w1", "admin"):
            eq(ok_as(d, user, "hits"),
               [{"id": "h1", "scope": YUELAN, "at": local_ms(2027, 2, 27, 8, 15), "alarm": "a-1",
                 "restricted": True}], f"hits as {user}")
        h = ok_as(d, "off", "hits")
        eq(len(h), 1, "one hit")
        eq({k: h[0].get(k) for k in ("person", "name", "category", "device", "building",
                                     "kind", "score", "matched", "seen_by")},
           {"person": "p1", "name": "张三", "category": "drug_rehab", "device": "door-3",
            "building": "3", "kind": "card", "score": 0.97, "matched": "C***",
            "seen_by": "plugin:access"}, "the officer's hit")
        eq(ok_as(d, "off", "hits", "--since", "2027-02-28"), [], "--since leaves it out")
        eq(ok_as(d, "v1", "due"), [], "nothing scheduled")
        refused_as(d, "v1", "action watch.stats needs role operator", "stats")
        # Every read was audited under its caller, via the plugin: masked or in clear.
        got = {}
        for e in audit(d, "--via", "plugin:watch"):
            got.setdefault(e["who"], set()).add((e["action"], e["object"], e["result"]))
        for user in ("v1", "op1", "w1", "admin"):
            for obj in ("watchlist", "watch_hits"):
                check(("data.read", obj, "masked") in got[user], f"{user} {obj}: {got[user]}")
        check(("watch.due", "watch_schedules", "allowed") in got["v1"], got["v1"])
        check(("data.read", "watchlist", "allowed") in got["off"], got["off"])
        check(("data.read", "watch_hits", "masked") in got["off"], got["off"])
        check(not any(r == "allowed" for a, o, r in got["v1"] if a == "data.read"),
              f"a viewer never reads in clear: {got['v1']}")
        # The plugin index asks exactly what watch.so declares, nothing forces access in.
        name, caps = plugin_meta(SOS[1])
        entry = d.ok("catalog", "show", "plugin", "watch")
        eq((name, entry["version"], entry["sdk"], entry["requires"]),
           ("watch", "1.0.0", "1.1", ["alarms"]), "index entry")
        eq(sorted(entry["capabilities"]), sorted(caps), "the index lists what watch.so declares")


def case_overdue_visit_reminds_the_grid_worker():
    """A schedule past due: one reminder per overdue period, raised through alarms at the
    person's scope naming the grid worker and no one else; the worker's visit clears it
    and sets the next due date. The test clock moves the days."""
    with node('severity = "major";') as d:
        seed(d, "2027-03-01T09:00")
        s = ok_as(d, "op1", "schedule", "p1", "7d", "2027-03-05")
        eq((s["every_days"], s["supervisor"], s["overdue"]), (7, "gw1", False), "scheduled")
        eq(ok_as(d, "op1", "schedule", "p2")["every_days"], 30, "every_days by default")
        eq([r["person"] for r in ok_as(d, "w1", "due")], ["p1"], "w1's visits due in 7 days")
        d.ok("clock", "advance", "3d14h")  # 2027-03-04T23:00: not yet
        eq(ok_as(d, "admin", "stats")["reminders"], 0, "nothing before it is due")
        d.login()
        d.ok("clock", "advance", "1d2h")  # 2027-03-06T01:00: overdue since 03-05 00:00
        wait_for(lambda: ok_as(d, "admin", "stats")["reminders"] == 1, "the first reminder")
        d.login()
        alarms = d.ok("alarms", "list")["alarms"]
        eq(len(alarms), 1, f"one alarm: {alarms}")
        a = alarms[0]
        eq((a["type"], a["source"], a["severity"], a["scope"], a["count"]),
           ("watch_visit_overdue", "record:watch_schedules/p1", "major", YUELAN, 1), "raised")
        eq(a["details"], "a watch visit is overdue since 2027-03-05 (every 7 days; overdue "
           "period 1): reminding grid worker gw1 (account w1)", "whom it reminds")
        check("张" not in json.dumps(a, ensure_ascii=False), "the alarm names no one watched")
        due = ok_as(d, "w1", "due")
        eq([(r["person"], r["overdue"], r["days_overdue"], r["alarm"]) for r in due],
           [("p1", True, 1, a["id"])], "w1 sees it overdue")
        # The tick runs each minute: a period reminds once, the next period once more.
        d.login()
        d.ok("clock", "advance", "2d")
        d.login()
        d.ok("clock", "advance", "1h")
        eq(ok_as(d, "admin", "stats")["reminders"], 1, "one reminder for the first period")
        d.login()
        d.ok("clock", "advance", "5d")  # 2027-03-13T02:00: the second period
        wait_for(lambda: ok_as(d, "admin", "stats")["reminders"] == 2, "the second reminder")
        d.login()
        eq([(x["id"], x["count"]) for x in d.ok("alarms", "list")["alarms"]], [(a["id"], 2)],
           "folded into the one alarm")
        # The grid worker visits: recorded as the worker, the alarm cleared, due again in 7 d.
        v = ok_as(d, "w1", "visit", "p1", "在家，情绪稳定")
        eq((v["person"], v["by"], v["scope"]), ("p1", "w1", YUELAN), "the visit")
        eq(v["next_due"] - v["at"], 7 * 86400000, "next due a period on")
        wait_for(lambda: ok_as(d, "admin", "stats")["cleared"] == 1, "the clear sent")
        d.login()
        shown = wait_for(lambda: (lambda x: x if x["state"] == "cleared_unacknowledged"
                                  else None)(d.ok("alarms", "show", a["id"])), "cleared")
        h = d.ok("alarms", "history", a["id"])["history"]
        check(any(x["action"] == "cleared" and x["by"] == "plugin:watch"
                  and x["why"] == "visited by w1" for x in h), f"cleared by its source: {h}")
        eq(shown["count"], 2, "two reminders")
        p = ok_as(d, "w1", "show", "p1")
        eq((p["schedule"]["visits"], p["schedule"]["overdue"], p["schedule"]["last_visit"]),
           (1, False, v["at"]), "the schedule after the visit")
        eq([(x["by"], x["notes"]) for x in p["visits"]], [("w1", "***")],
           "notes are health data: masked without sensitive:watch_visits")
        eq([(r["person"], r["overdue"], r["due"]) for r in ok_as(d, "w1", "due")],
           [("p1", False, v["next_due"])], "due again in 7 days, not overdue")
        eq(ok_as(d, "w1", "due", "within=6d"), [], "nothing within 6 days")
        d.login()
        d.ok("accounts", "grant", "off", "sensitive:watch_visits")
        eq([x["notes"] for x in ok_as(d, "off", "show", "p1")["visits"]], ["在家，情绪稳定"],
           "in clear with the grant")
        eq(ok_as(d, "admin", "stats")["failed"], 0, "no raise failed")
        # The visits were read under each caller: masked for w1, in clear for the officer.
        got = {(e["who"], e["result"]) for e in audit(d, "--via", "plugin:watch")
               if e["action"] == "data.read" and e["object"] == "watch_visits"}
        eq(got, {("w1", "masked"), ("off", "allowed")}, "reads of watch_visits")


def case_visit_refused_outside_the_workers_people():
    """Only the grid worker who supervises a person records a visit; every other caller is
    refused with a reason and audited as denied; bad requests name what is wrong. Then a
    reminder answered before a restart is not raised again after it (the real clock: a
    restart ends the test clock's offset)."""
    with node() as d:
        seed(d, clock=None)
        ok_as(d, "admin", "schedule", "p2", "14d")
        refused_as(d, "w1", "grid worker 'w1' does not supervise 'p2': only its supervising "
                   "grid worker records a visit", "visit", "p2")
        refused_as(d, "op1", "'op1' is not a grid worker here (no active grid_workers record "
                   "names the account)", "visit", "p1")
        refused_as(d, "admin", "'admin' is not a grid worker here", "visit", "p1")
        refused_as(d, "v1", "action watch.visit needs role grid_worker or above; 'v1' is "
                   "viewer", "visit", "p1")
        refused_as(d, "w1", "no watchlist person 'p9' within reach", "visit", "p9",
                   code="LINLI_ENOENT")
        refused_as(d, "v1", "action watch.schedule needs role operator", "schedule", "p1")
        # A grid worker who left (status) supervises no one any more.
        d.ok("data", "put", "grid_workers", "--scope", YUELAN, "--id", "gw2",
             js({"name": "赵六", "phone": "13800000001", "account": "w2", "grid": "g02",
                 "status": "left"}))
        refused_as(d, "w2", "'w2' is not a grid worker here", "visit", "p2")
        d.login()
        eq(d.ok("data", "query", "watch_visits")["count"], 0, "no visit was recorded")
        sched = ok_as(d, "admin", "show", "p2")["schedule"]
        eq((sched.get("visits"), sched["overdue"]), (None, False), "the schedule untouched")
        # Each refusal is in the audit log under the caller.
        denied = {(e["who"], e["action"]) for e in audit(d, "--result", "denied")}
        for want in (("w1", "watch.visit"), ("op1", "watch.visit"), ("admin", "watch.visit"),
                     ("v1", "watch.visit"), ("v1", "watch.schedule"), ("w2", "watch.visit")):
            check(want in denied, f"{want} not audited: {denied}")
        # The supervising worker may; bad requests are refused naming the argument.
        eq(ok_as(d, "w1", "visit", "p1")["by"], "w1", "w1 visits p1 (no schedule: recorded)")
        for args, needle in (
                (("schedule", "p1", "0d"), "interval '0d': give whole days, 1d to 366d"),
                (("schedule", "p1", "7d", "2027-02-30"), "first due: '2027-02-30' is not a "
                 "date or time"),
                (("schedule",), "usage: watch schedule PERSON [EVERY [FIRST-DUE]]"),
                (("list", "colour=red"), "'colour=red': unknown filter"),
                (("due", "within=1y"), "within '1y': give whole days"),
                (("hits", "--since", "yesterday"), "--since: 'yesterday' is not a date")):
            refused_as(d, "admin", needle, *args, code="LINLI_EINVAL")
        # p1 due a day ago: one overdue period, reminded once; a restart reminds no more.
        yesterday = str(int(time.time() * 1000) - 86400000)
        eq(ok_as(d, "admin", "schedule", "p1", "7d", yesterday)["overdue"], True, "overdue")
        d.ok("clock", "advance", "1m")  # the tick runs before the reply
        wait_for(lambda: ok_as(d, "admin", "stats")["reminders"] == 1, "the reminder")
        eq(d.stop(), 0, "a clean stop")
        d.start(args=("--test-clock",))
        d.ok("clock", "advance", "1m")
        st = ok_as(d, "admin", "stats")
        eq((st["reminders"], st["in_flight"], st["failed"]), (0, 0, 0), "nothing raised again")
        d.login()
        eq([(a["source"], a["count"]) for a in d.ok("alarms", "list")["alarms"]],
           [("record:watch_schedules/p1", 1)], "the one reminder")


def case_bad_config_refused_at_start_and_on_sighup():
    for bad, needle in (
            ("every_days = 0;", "linli.cfg: plugins.watch.every_days: must be whole days, "
             "1 to 366"),
            ('severity = "loud";', "linli.cfg: plugins.watch.severity: must be one of "
             "critical, major, minor, warning, indeterminate"),
            ("remind_s = 60;", "linli.cfg: plugins.watch.remind_s: unknown key (it takes "
             "every_days, severity)")):
        with node(bad) as d:
            info = d.ok("plugins", "info", "watch")
            check(info["state"] == "failed" and needle in info["reason"], f"{bad}: {info}")
            eq(d.ok("plugins", "info", "alarms")["state"], "running", "alarms runs on")
    n = node("every_days = 10;")
    with n as d:
        eq(d.ok("watch", "stats")["config"], {"every_days": 10, "severity": "minor"}, "in force")
        n.configure('every_days = 10; severity = "awful";')
        d.kill_with(signal.SIGHUP)
        d.wait_log("watch: reload refused, keeping the running configuration: linli.cfg: "
                   "plugins.watch.severity: must be one of critical")
        st = d.ok("watch", "stats")
        eq((st["config"]["every_days"], st["refused_reloads"]), (10, 1), "the old one runs")
        n.configure('every_days = 14; severity = "warning";')
        d.kill_with(signal.SIGHUP)
        wait_for(lambda: d.ok("watch", "stats")["config"]["every_days"] == 14, "applied")
        eq(d.ok("watch", "stats")["config"]["severity"], "warning", "both keys")


if __name__ == "__main__":
    sys.exit(main(globals()))
