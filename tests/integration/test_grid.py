"""Integration tests of the grid plugin (plugins/grid): the incident workflow through a real
linlid at the city node with the real catalog — every legal move, illegal moves refused with
the state and the allowed moves, duties and the handler checked, a grid worker kept to their
grids, deadlines in working time with the test clock (a weekend, a street's make-up day), a
record of the first workflow migrated, a case opened by a bus request (incidentreq/report),
KPIs from the per-day aggregates against a hand-counted fixture, the overdue list.
"""
import datetime
import json
import os
import shutil
import sys
import zoneinfo

sys.path.insert(0, os.path.dirname(__file__))
from harness import BUILD, SRC, Daemon, check, eq, finish, main, wait_for, write  # noqa: E402
from luakit import keeper  # noqa: E402
from test_http import api as http_api, free_port  # noqa: E402

GRID_SO = os.path.join(BUILD, "plugins", "grid", "grid.so")
ALARMS_SO = os.path.join(BUILD, "plugins", "alarms", "alarms.so")
TDRV_SO = os.path.join(os.path.abspath(os.environ.get(
    "LINLI_TP_DIR", os.path.join(BUILD, "tests", "plugins"))), "tp_driver.so")
CATALOG = os.path.join(SRC, "catalog")
STREET = "hefei/baohe/binhu"
YUELAN = STREET + "/yuelan"
G01, G02 = YUELAN + "/g01", YUELAN + "/g02"
QIMING = STREET + "/qiming"  # a sibling community
OTHER_G = "hefei/baohe/fanhua/jinxiu/g01"  # a grid of another street
ZONE = zoneinfo.ZoneInfo("Asia/Shanghai")
HOUR = 3600 * 1000
PASSWORD = "Another-Passw0rd-1"


def js(v):
    return json.dumps(v, ensure_ascii=False)


def local_ms(*args):
    """ms of a local (Asia/Shanghai, the node's zone) date and time."""
    return int(datetime.datetime(*args, tzinfo=ZONE).timestamp() * 1000)


class node:
    """A linlid at the city with the grid plugin (and script apps), started with the
    test clock; the console is the city's administrator."""

    def __init__(self, apps=None, alarms=False, extra="", tdrv=False):
        self.d = Daemon()
        pdir = os.path.join(self.d.dir, "plugins")
        scripts = os.path.join(self.d.dir, "scripts")
        os.makedirs(os.path.join(scripts, "apps"))
        os.makedirs(pdir)
        shutil.copyfile(GRID_SO, os.path.join(pdir, "grid.so"))
        if alarms:
            shutil.copyfile(ALARMS_SO, os.path.join(pdir, "alarms.so"))
        if tdrv:
            shutil.copyfile(TDRV_SO, os.path.join(pdir, "tp_driver.so"))
        for fname, text in (apps or {}).items():
            write(os.path.join(scripts, "apps", fname), text)
        self.d.write_config(extra=f'plugin_dirs = [ "{pdir}" ];\n'
                                  f'script_dirs = [ "{scripts}" ];\n'
                                  f'catalog_dir = "{CATALOG}";\n' + extra)
        self.d.grant_declared(pdir)
        self.d.grant_scripts(os.path.join(scripts, "apps"))

    def __enter__(self):
        try:
            return self.d.start(args=("--test-clock",))
        except BaseException:
            self.d.cleanup()
            raise

    def __exit__(self, etype, *rest):
        finish(self.d, etype)


def report(d, grid=G01, category="environment", title="暴露垃圾", *fields, env=None):
    rc, out, err = d.cli("grid", "report", grid, category, title, *fields, env=env)
    check(rc == 0, f"report: {err}")
    eq(out["status"], "reported", "a new case")
    return out["id"]


def move(d, verb, case, *args, env=None):
    rc, out, err = d.cli("grid", verb, case, *args, env=env)
    check(rc == 0, f"grid {verb} {case}: {err}")
    return out


def refused(d, needle, verb, *args, env=None, code=None):
    rc, out, err = d.cli("grid", verb, *args, env=env)
    check(rc != 0, f"grid {verb} {args} should be refused: {out}")
    check(needle in err, f"{needle!r} not in {err!r}")
    if code:
        eq(out["name"], code, f"grid {verb} {args}: code")
    return err


def near(got, want, what):
    """A time or duration computed at the test clock's `now`, which runs on by the
    milliseconds the test takes: equal to want, give or take 10 s."""
    check(abs(got - want) < 10000, f"{what}: got {got}, want {want} (diff {got - want} ms)")


def status(d, case):
    return d.ok("grid", "show", case)["status"]


def set_clock(d, when):
    """Move the test clock forward and log in again (sessions follow the clock)."""
    d.ok("clock", "set", when)
    d.login()


def case_every_legal_move():
    """Every move of the table, made in order along four cases; each is recorded in
    incident_moves with who, from, to and its note, and the table command prints them."""
    with node() as d:
        table = d.ok("grid", "table")
        eq(len(table), 19, "moves in the table")
        a = report(d, G01, "environment", "楼道堆物", "building=3栋", "photos=p-1,p-2")
        path = [("verify", "verifying"), ("file", "filed"), ("dispatch", "dispatched", "h1"),
                ("return", "returned"), ("dispatch", "dispatched", "h1"),
                ("accept", "processing"), ("extend", "extension"),
                ("approve", "processing", "4h"), ("extend", "extension"),
                ("approve", "processing", "1d"), ("shelve", "shelved"),
                ("resume", "processing"), ("feedback", "feedback"), ("check", "checking"),
                ("rework", "rework"), ("accept", "processing"), ("feedback", "feedback"),
                ("check", "checking"), ("close", "closed")]
        for verb, to, *arg in path:
            r = move(d, verb, a, *arg, f"note {verb}")
            eq(r["to"], to, f"{verb} of case a")
        b = report(d, G02, "safety_hazard", "井盖缺失")
        for verb, to, *arg in [("file", "filed"), ("dispatch", "dispatched", "h2"),
                               ("accept", "processing"), ("shelve", "shelved"),
                               ("close", "closed")]:
            eq(move(d, verb, b, *arg)["to"], to, f"{verb} of case b")
        c = report(d, G01, "dispute", "邻里纠纷")
        eq(move(d, "void", c)["to"], "void", "void a reported case")
        e = report(d, G01, "other", "重复上报")
        move(d, "verify", e)
        eq(move(d, "void", e)["to"], "void", "void a case being verified")
        made = {(m["from"], m["verb"], m["to"]) for case in (a, b, c, e)
                for m in d.ok("grid", "show", case)["moves"] if m["verb"] != "report"}
        eq(made, {(m["from"], m["verb"], m["to"]) for m in table}, "every move of the table made")
        shown = d.ok("grid", "show", a)
        eq((shown["status"], shown["extensions"], shown["reworks"], shown["handler"],
            shown["building"], shown["allowed"]), ("closed", 2, 1, "h1", "3栋", ""), "case a")
        check("step_deadline" not in shown, "a closed case has no deadline")
        moves = shown["moves"]
        eq(len(moves), 1 + len(path), "history: the report and every move")
        eq((moves[0]["verb"], moves[0]["to"], moves[0]["who"]), ("report", "reported", "admin"),
           "the report")
        eq((moves[-1]["from"], moves[-1]["to"], moves[-1]["note"]), ("checking", "closed",
                                                                     "note close"), "the last")
        q = d.ok("data", "query", "incident_moves", "--where", f"incident={a}", "--limit", "100")
        eq(q["count"], 1 + len(path), "incident_moves records")
        listed = {r["id"]: r["status"] for r in d.ok("grid", "list")}
        eq(listed, {a: "closed", b: "closed", c: "void", e: "void"}, "list")
        eq([r["id"] for r in d.ok("grid", "list", "status=void")], sorted([c, e]),
           "list by status")


def case_illegal_moves_refused_with_state_and_allowed_moves():
    with node() as d:
        a = report(d)
        b = report(d)
        move(d, "file", b)
        c = report(d)
        move(d, "void", c)
        table = [
            (a, "accept", f"case {a} is reported: cannot accept: allowed: verify → verifying, "
                          "file → filed, void → void"),
            (a, "close", f"case {a} is reported: cannot close: allowed: verify"),
            (b, "void", f"case {b} is filed: cannot void: allowed: dispatch → dispatched"),
            (b, "verify", f"case {b} is filed: cannot verify: allowed: dispatch → dispatched"),
            (c, "file", f"case {c} is void: cannot file: no move is allowed"),
        ]
        for case, verb, needle in table:
            refused(d, needle, verb, case, code="LINLI_ESTATE")
        move(d, "dispatch", b, "h1")
        refused(d, f"case {b} is dispatched: cannot feedback: allowed: accept → processing, "
                   "return → returned", "feedback", b)
        move(d, "accept", b)
        move(d, "extend", b)
        refused(d, "'1w' is not a working duration such as 90m, 4h or 2d", "approve", b, "1w")
        eq(status(d, b), "extension", "a refused approve changes nothing")
        # Usage and input errors name what is wrong.
        refused(d, "usage: grid dispatch ID HANDLER", "dispatch", b)
        refused(d, "usage: grid approve ID DURATION", "approve", b)
        refused(d, "case nosuch: no such case within your reach", "file", "nosuch")
        refused(d, f"'{YUELAN}' is not a grid", "report", YUELAN, "environment", "t")
        refused(d, "'colour=red' is not FIELD=VALUE with a field of", "report", G01,
                "environment", "t", "colour=red")
        refused(d, "field 'category': 'weather' is not one of", "report", G01, "weather", "t")
        # Refused moves write nothing.
        eq(len(d.ok("grid", "show", a)["moves"]), 1, "only the report")
        # Illegal moves are audited, under the caller, with the message.
        rows = [r for r in d.ok("audit", "--via", "plugin:grid", "--result", "denied",
                                "--limit", "1000") if r["action"] == "grid.move"]
        eq(sorted((r["object"], r["detail"].split(": cannot ")[1].split(":")[0]) for r in rows),
           sorted([(a, "accept"), (a, "close"), (b, "void"), (b, "verify"), (c, "file"),
                   (b, "feedback")]), f"the illegal moves audited: {rows}")
        check(all(r["who"] == d.ok("whoami")["user"] for r in rows), rows)


def case_duties_and_the_handler():
    """Each move needs its duty (admins need none); only the handler dispatched to
    handles; a second extension needs the tier above; refusals are audited under the
    caller, and each move is recorded with who made it."""
    with node() as d:
        op = d.account("op", "operator", node=YUELAN)
        h1 = d.account("h1", "operator", node=YUELAN)
        h2 = d.account("h2", "operator", node=YUELAN)
        lead = d.account("lead", "operator", node=YUELAN)
        boss = d.account("boss", "operator", node=STREET)
        d.login()
        a = report(d, env={"LINLI_SESSION": op})
        refused(d, "action grid.intake needs the duty grid.intake, which 'op' does not hold",
                "file", a, env={"LINLI_SESSION": op})
        d.ok("accounts", "assign", "op", "grid.intake")
        move(d, "file", a, env={"LINLI_SESSION": op})
        refused(d, "needs the duty grid.dispatcher", "dispatch", a, "h1",
                env={"LINLI_SESSION": op})
        d.ok("accounts", "assign", "op", "grid.dispatcher")
        move(d, "dispatch", a, "h1", env={"LINLI_SESSION": op})
        for u in ("h1", "h2"):
            d.ok("accounts", "assign", u, "grid.handler")
        refused(d, f"case {a} is dispatched to 'h1', not to 'h2'", "accept", a,
                env={"LINLI_SESSION": h2})
        move(d, "accept", a, env={"LINLI_SESSION": h1})
        move(d, "extend", a, env={"LINLI_SESSION": h1})
        refused(d, "needs the duty grid.shift_lead", "approve", a, "2h",
                env={"LINLI_SESSION": lead})
        d.ok("accounts", "assign", "lead", "grid.shift_lead")
        move(d, "approve", a, "2h", env={"LINLI_SESSION": lead})
        move(d, "extend", a, env={"LINLI_SESSION": h1})
        d.ok("accounts", "assign", "lead", "grid.leader")
        refused(d, "action grid.approve_above is taken at street level or above; 'lead' sits "
                   "at community", "approve", a, "2h", env={"LINLI_SESSION": lead})
        d.ok("accounts", "assign", "boss", "grid.leader")
        move(d, "approve", a, "2h", env={"LINLI_SESSION": boss})
        eq(status(d, a), "processing", "after the second extension")
        # A community operator does not reach another street's grid.
        refused(d, "outside", "report", OTHER_G, "environment", "t", env={"LINLI_SESSION": op})
        rows = d.ok("audit", "--result", "denied", "--limit", "1000")
        got = {(r["who"], r["action"]) for r in rows}
        for want in (("op", "grid.intake"), ("op", "grid.dispatch"), ("lead", "grid.approve"),
                     ("lead", "grid.approve_above")):
            check(want in got, f"{want} not in {got}")
        who = [m["who"] for m in d.ok("grid", "show", a)["moves"]]
        eq(who, ["op", "op", "op", "h1", "h1", "lead", "h1", "boss"], "who made each move")


def case_grid_worker_acts_only_in_their_grids():
    with node() as d:
        w1 = d.account("w1", "operator", node=YUELAN)
        d.login()
        d.ok("data", "put", "grid_workers", "--scope", YUELAN, "--id", "gw1",
             js({"name": "王五", "phone": "13800000000", "account": "w1", "grid": "g01",
                 "status": "active"}))
        w = {"LINLI_SESSION": w1}
        mine = report(d, G01, env=w)
        refused(d, f"grid worker 'w1' works in grids g01 of {YUELAN}, not in g02", "report", G02,
                "environment", "t", env=w)
        other = report(d, G02)
        refused(d, "not in g02", "show", other, env=w)
        d.ok("accounts", "assign", "w1", "grid.intake")
        refused(d, "not in g02", "file", other, env=w)
        move(d, "file", mine, env=w)
        rc, listed, err = d.cli("grid", "list", env=w)
        eq([r["id"] for r in listed], [mine], "a grid worker lists only their grids")
        eq(len(d.ok("grid", "list")), 2, "the admin sees both")
        # A second grid given to the worker: the case there is theirs too.
        d.ok("data", "put", "grid_workers", "--scope", YUELAN, "--id", "gw2",
             js({"name": "王五", "phone": "13800000000", "account": "w1", "grid": "g02"}))
        eq(move(d, "file", other, env=w)["to"], "filed", "g02 after it was assigned")


def case_the_clock_stops_while_the_reporter_is_awaited():
    """Verifying with the reporter: `grid await` stops the step's clock (no deadline, not
    overdue however long it waits), `grid answered` runs it on with the working time that
    was left, and the wait is left out of the step's worked time; a move ends a wait."""
    with node() as d:
        d.ok("data", "put", "work_calendar", "--scope", "hefei", "--id", "2027", js(CAL_2027))
        d.ok("data", "put", "incident_categories", "--scope", "hefei", "--id", "environment",
             js({"name": "暴露垃圾", "file_minutes": 120, "respond_minutes": 120,
                 "finish_days": 1, "check_minutes": 60}))
        set_clock(d, "2027-01-11T09:00")  # Monday
        a, b = report(d, G01), report(d, G01)
        for case in (a, b):
            move(d, "verify", case)
        near(d.ok("grid", "show", a)["step_deadline"], local_ms(2027, 1, 11, 11, 0), "2 h")
        set_clock(d, "2027-01-11T10:00")
        r = d.ok("grid", "await", a, "等待举报人补充照片")
        eq((r["status"], r["awaiting_reporter"]), ("verifying", True), "awaited")
        near(r["left_ms"], HOUR, "1 working hour was left")
        check("step_deadline" not in d.ok("grid", "show", a), "the clock stopped")
        refused(d, f"case {a} awaits the reporter already", "await", a, code="LINLI_ESTATE")
        move(d, "file", b)
        refused(d, f"case {b} is filed: the reporter is awaited only while verifying (核实) "
                   "or checking (核查)", "await", b, code="LINLI_ESTATE")
        set_clock(d, "2027-01-12T10:00")  # a working day later: a is not overdue
        check(a not in [x["id"] for x in d.ok("grid", "overdue")], "not overdue while waiting")
        r = d.ok("grid", "answered", a, "照片已补充")
        near(r["step_deadline"], local_ms(2027, 1, 12, 11, 0), "the hour left, from now")
        refused(d, f"case {a} does not await the reporter", "answered", a, code="LINLI_ESTATE")
        set_clock(d, "2027-01-12T10:30")
        r = move(d, "file", a)
        near(r["step_deadline"], local_ms(2027, 1, 12, 11, 0), "filed keeps the deadline")
        near(r["worked_ms"], HOUR + HOUR // 2, "8.5 working hours less the 7 waited")
        verbs = [m["verb"] for m in d.ok("grid", "show", a)["moves"]]
        check(verbs[-3:] == ["await", "answered", "file"], verbs)
        # A move ends a wait: its clock runs on from there.
        c = report(d, G01)
        move(d, "verify", c)
        d.ok("grid", "await", c)
        set_clock(d, "2027-01-12T13:30")
        r = move(d, "file", c)
        near(r["step_deadline"], local_ms(2027, 1, 12, 15, 30), "its 2 h, from 13:30")
        check("awaiting_since" not in d.ok("data", "get", "incidents", c), "the wait ended")


def case_the_citys_categories_and_calendar_serve_a_community_operator():
    """The categories and calendars kept at the city (reference data, inherited down) are
    read by the plugin on its own account: a change seen first by a community operator's
    command still gives that case the city's limits."""
    with node() as d:
        set_clock(d, "2027-01-11T09:00")  # Monday; a move of the clock ends sessions
        op = d.account("op", "operator", node=YUELAN)
        d.ok("accounts", "assign", "op", "grid.intake")
        d.login()
        d.ok("data", "put", "work_calendar", "--scope", "hefei", "--id", "2027", js(CAL_2027))
        d.ok("data", "put", "incident_categories", "--scope", "hefei", "--id", "environment",
             js({"name": "暴露垃圾", "file_minutes": 120, "respond_minutes": 120,
                 "finish_days": 1, "check_minutes": 60}))
        a = report(d, env={"LINLI_SESSION": op})
        near(d.ok("grid", "show", a)["step_deadline"], local_ms(2027, 1, 11, 11, 0),
             "the city's 2 h intake limit")
        d.ok("data", "put", "incident_categories", "--scope", "hefei", "--id", "environment",
             js({"name": "暴露垃圾", "file_minutes": 60, "respond_minutes": 120,
                 "finish_days": 1, "check_minutes": 60}))
        b = report(d, env={"LINLI_SESSION": op})
        near(d.ok("grid", "show", b)["step_deadline"], local_ms(2027, 1, 11, 10, 0),
             "the changed limit, read when the operator reported")

def case_a_task_handed_down_from_the_street():
    """上级交办: a street operator hands a task down to a grid; it enters as reported with
    channel higher_tier and who handed it down. A community operator cannot claim to be
    the tier above."""
    with node() as d:
        st = d.account("st", "operator", node=STREET)
        op = d.account("op", "operator", node=YUELAN)
        d.login()
        case = report(d, G01, "environment", "清理楼道堆物", "channel=higher_tier",
                      "description=区里督办: 3号楼", env={"LINLI_SESSION": st})
        rec = d.ok("data", "get", "incidents", case)
        eq((rec["status"], rec["channel"], rec["handed_down_by"], rec["reporter"]),
           ("reported", "higher_tier", f"{STREET} (st)", "st"), "handed down")
        err = refused(d, "channel=higher_tier (上级交办) is for a street, district or city "
                         f"account; op is at {YUELAN}", "report", G01, "environment", "t",
                      "channel=higher_tier", env={"LINLI_SESSION": op}, code="LINLI_EPERM")
        check("上级交办" in err, err)
        mine = report(d, G01, "environment", "t", env={"LINLI_SESSION": op})
        check("handed_down_by" not in d.ok("data", "get", "incidents", mine), "a plain report")


CAL_2027 = {"year": 2027, "hours": "09:00-12:00,13:30-17:30", "weekend": "6,7",
            "holidays": "2027-01-01", "workdays": ""}


def case_deadlines_in_working_time_across_a_weekend():
    """The test clock on a Friday afternoon: the response deadline skips the weekend; a
    street's own calendar (a make-up Saturday) overrides the city's for its grids; the
    time worked in a step is working time; next year's missing calendar is warned of."""
    with node() as d:
        d.ok("data", "put", "work_calendar", "--scope", "hefei", "--id", "2027", js(CAL_2027))
        d.ok("data", "put", "work_calendar", "--scope", "hefei/baohe/fanhua", "--id", "2027",
             js(dict(CAL_2027, workdays="2027-01-09")))
        d.ok("data", "put", "incident_categories", "--scope", "hefei", "--id", "environment",
             js({"name": "暴露垃圾", "file_minutes": 30, "respond_minutes": 120,
                 "finish_days": 1, "check_minutes": 60}))
        set_clock(d, "2027-01-08T16:30")  # a Friday
        now = local_ms(2027, 1, 8, 16, 30)
        a = report(d, G01)
        b = report(d, OTHER_G)
        near(d.ok("grid", "show", a)["step_deadline"], local_ms(2027, 1, 8, 17, 0),
             "file within 30 working minutes")
        for case in (a, b):
            move(d, "file", case)
        r = move(d, "dispatch", a, "h1")
        near(r["step_deadline"], local_ms(2027, 1, 11, 10, 0),
             "respond in 2 working hours: 1 on Friday, 1 on Monday")
        check("warning" not in r, r)
        near(d.ok("grid", "show", a)["close_deadline"], local_ms(2027, 1, 12, 10, 0),
             "close: 2 h + 1 working day (7 h)")
        near(move(d, "dispatch", b, "h1")["step_deadline"], local_ms(2027, 1, 9, 10, 0),
             "fanhua street works on Saturday 9 January (its make-up day)")
        d.wait_log("work_calendar: no calendar for 2028 yet")
        set_clock(d, "2027-01-11T10:00")  # Monday
        r = move(d, "accept", a)
        near(r["worked_ms"], 2 * HOUR, "dispatched for 2 working hours over the weekend")
        near(r["step_deadline"], local_ms(2027, 1, 12, 10, 0), "finish in 1 working day")
        near(move(d, "extend", a)["worked_ms"], 0, "next to no working time passed")
        r = move(d, "approve", a, "3h")
        near(r["step_deadline"], local_ms(2027, 1, 11, 14, 30), "3 working hours over lunch")
        check(now < r["step_deadline"], "the clock moved")
        # The calendar changes while linlid runs: the next deadline follows it.
        d.ok("data", "put", "work_calendar", "--scope", "hefei", "--id", "2027",
             js(dict(CAL_2027, hours="08:00-12:00")))
        r = move(d, "feedback", a)
        near(r["step_deadline"], local_ms(2027, 1, 11, 11, 0), "check in 1 h, on the new hours")
        # A deadline reaching a year without a calendar is computed, and warned of.
        set_clock(d, "2027-12-31T11:30")
        c = report(d, G01)
        move(d, "file", c)
        r = move(d, "dispatch", c, "h1")
        near(r["step_deadline"], local_ms(2028, 1, 3, 9, 30), "weekends only in 2028")
        check("no working calendar for 2028" in r["warning"], r)
        # A street's calendar with a date that does not exist: named in the log, its year's
        # holidays not used (the city's are not either: the street's record overrides them).
        d.ok("data", "put", "work_calendar", "--scope", "hefei/shushan/sanlijie", "--id", "2027",
             js(dict(CAL_2027, holidays="2027-02-30", hours="9-17")))
        report(d, "hefei/shushan/sanlijie/anhua/g01")
        d.wait_log("work_calendar 2027 at hefei/shushan/sanlijie: holidays 2027: '2027-02-30' "
                   "is not a date YYYY-MM-DD")
        d.wait_log("work_calendar 2027 at hefei/shushan/sanlijie: hours: period 1 '9-17' is not "
                   "HH:MM-HH:MM (default used)")
        # A new year takes its own record's hours.
        d.ok("data", "put", "work_calendar", "--scope", "hefei", "--id", "2028",
             js(dict(CAL_2027, year=2028, hours="10:00-12:00", holidays="")))
        set_clock(d, "2028-01-03T09:00")  # a Monday
        c = report(d, G01)
        near(d.ok("grid", "show", c)["step_deadline"], local_ms(2028, 1, 3, 10, 30),
             "30 working minutes from 10:00, 2028's hours")


def case_a_first_workflow_record_is_read_and_migrated():
    """Records stored under the old incidents states stay valid; the plugin reads
    accepted/handling/verifying as filed/processing/checking and writes the new ones."""
    with node() as d:
        old = {"title": "t", "category": "environment", "grid": "g01",
               "reported_at": "2026-01-05T09:00:00+08:00"}
        for i, st in enumerate(("accepted", "handling", "verifying")):
            d.ok("data", "put", "incidents", "--scope", G01, "--id", f"old-{i}",
                 js(dict(old, status=st)))
        eq([status(d, f"old-{i}") for i in range(3)], ["filed", "processing", "checking"],
           "read in the new workflow")
        eq(move(d, "dispatch", "old-0", "h1")["from"], "filed", "moved from filed")
        eq(move(d, "feedback", "old-1")["to"], "feedback", "from processing")
        eq(move(d, "close", "old-2")["to"], "closed", "from checking")
        rec = d.ok("data", "get", "incidents", "old-1", "--scope", G01)
        eq((rec["status"], rec["workflow"]), ("feedback", 2), "stored in the new workflow")
        # A new-workflow verifying stays verifying.
        n = report(d)
        move(d, "verify", n)
        eq(status(d, n), "verifying", "new verifying")


def kpi(d, *args, env=None):
    rc, out, err = d.cli("grid", "kpi", *args, env=env)
    check(rc == 0, f"grid kpi {args}: {err}")
    return out


def counts(row):
    keys = ("reported", "filed", "closed", "closed_on_time", "voided", "reworks")
    return tuple(row[k] for k in keys)


def case_kpis_per_day_against_a_hand_counted_fixture():
    """Cases moved with the test clock across two days: A closed on time, B reworked and
    closed late the next day, C voided, D dispatched to h2, E reported on day 2, F in
    another street. The per-day aggregates are summed by `grid kpi` over a period, by grid,
    community, street, handler and category; a community operator and a grid worker see
    only their reach; bad arguments are refused. The same KPIs over HTTP for a dashboard."""
    port = free_port()
    with node(extra=f'http = {{ listen = "http://127.0.0.1:{port}"; }};\n') as d:
        d.ok("data", "put", "work_calendar", "--scope", "hefei", "--id", "2027", js(CAL_2027))
        d.ok("data", "put", "incident_categories", "--scope", "hefei", "--id", "environment",
             js({"name": "暴露垃圾", "respond_minutes": 120, "finish_days": 1}))
        set_clock(d, "2027-01-11T09:00")  # Monday: day 1
        a, b, c = (report(d, G01) for _ in range(3))
        dd = report(d, G02, "dispute", "邻里纠纷")
        report(d, OTHER_G)  # F: another street
        set_clock(d, "2027-01-11T09:30")  # intake: 0.5 h for the files and the void
        for case in (a, b, dd):
            move(d, "file", case)
        move(d, "void", c)
        for case, h in ((a, "h1"), (b, "h1"), (dd, "h2")):
            move(d, "dispatch", case, h)
        set_clock(d, "2027-01-11T10:00")  # respond: 0.5 h each
        for case in (a, b, dd):
            move(d, "accept", case)
        set_clock(d, "2027-01-11T11:00")  # process: 1 h each
        for case in (a, b):
            move(d, "feedback", case)
            move(d, "check", case)
        near(d.ok("grid", "show", a)["close_deadline"], local_ms(2027, 1, 12, 11, 30),
             "dispatched 09:30 + 2 h + 7 h")
        move(d, "close", a)   # on time
        move(d, "rework", b)  # counted against h1
        set_clock(d, "2027-01-12T14:00")  # day 2: B reworked for 5 h + 3.5 h
        move(d, "accept", b)
        for verb in ("feedback", "check", "close"):
            move(d, verb, b)  # closed after 11:30: late
        report(d, G02, "fire", "烟感")  # E
        # One record per (day, grid, category, handler), not one per case or move.
        eq(d.ok("data", "query", "incident_kpis", "--limit", "100")["count"], 7,
           "day 1: G01 environment/-, G01 environment/h1, G02 dispute/-, G02 dispute/h2, "
           "F's; day 2: G01 environment/h1, G02 fire/-")

        both = kpi(d, "2027-01-11", "2027-01-12")
        eq((both["from"], both["to"]), ("2027-01-11", "2027-01-12"), "the period")
        t = both["total"]
        eq(counts(t), (6, 3, 2, 1, 1, 1), "reported, filed, closed, on time, voided, reworks")
        check(abs(t["close_rate"] - 2 / 3) < 1e-9, f"结案率 2 of 3: {t}")
        eq(t["on_time_rate"], 0.5, "按期结案率: A on time, B late")
        near(t["mean_intake_ms"], 4 * HOUR // 2 // 7, "4 × 0.5 h over 7 intake moves")
        near(t["mean_respond_ms"], HOUR // 2, "0.5 h to accept")
        near(t["mean_process_ms"], (1 + 1 + 8.5 + 0) * HOUR / 4, "A 1 h, B 1 h, 8.5 h, 0")
        near(t["mean_check_ms"], 0, "checked at once")
        check("groups" not in both, "no groups without by=")

        day1 = kpi(d, "2027-01-11", "2027-01-11")["total"]
        eq(counts(day1), (5, 3, 1, 1, 1, 1), "day 1")
        eq(day1["on_time_rate"], 1.0, "day 1: A closed on time")
        day2 = kpi(d, "2027-01-12")  # TO defaults to today
        eq((day2["to"], counts(day2["total"])), ("2027-01-12", (1, 0, 1, 0, 0, 0)), "day 2")
        check("close_rate" not in day2["total"], "no 结案率 without a filed case")
        month = kpi(d)
        eq((month["from"], month["to"], counts(month["total"])),
           ("2027-01-01", "2027-01-31", counts(t)), "default: this month")

        def groups(by, *args, env=None):
            r = kpi(d, "2027-01-11", "2027-01-12", f"by={by}", *args, env=env)
            eq(r["by"], by, "by")
            return {g["key"]: counts(g) for g in r["groups"]}

        eq(groups("grid"), {G01: (3, 2, 2, 1, 1, 1), G02: (2, 1, 0, 0, 0, 0),
                            OTHER_G: (1, 0, 0, 0, 0, 0)}, "by grid")
        eq(groups("community"), {YUELAN: (5, 3, 2, 1, 1, 1),
                                 "hefei/baohe/fanhua/jinxiu": (1, 0, 0, 0, 0, 0)},
           "by community")
        eq(groups("street"), {STREET: (5, 3, 2, 1, 1, 1),
                              "hefei/baohe/fanhua": (1, 0, 0, 0, 0, 0)}, "by street")
        eq(groups("category"), {"environment": (4, 2, 2, 1, 1, 1), "dispute": (1, 1, 0, 0, 0, 0),
                                "fire": (1, 0, 0, 0, 0, 0)}, "by category")
        eq(groups("handler"), {"-": (6, 3, 0, 0, 1, 0), "h1": (0, 0, 2, 1, 0, 1),
                               "h2": (0, 0, 0, 0, 0, 0)}, "by handler")
        h = {g["key"]: g for g in kpi(d, "2027-01-11", "2027-01-12", "by=handler")["groups"]}
        near(h["h2"]["mean_respond_ms"], HOUR // 2, "h2 took 0.5 h to accept D")
        eq(groups("grid", f"scope={G02}"), {G02: (2, 1, 0, 0, 0, 0)}, "scope=")

        # A caller's reach: a community operator sees their community, a grid worker their grid.
        op = d.account("op", "operator", node=YUELAN)
        w1 = d.account("w1", "operator", node=YUELAN)
        d.login()
        d.ok("data", "put", "grid_workers", "--scope", YUELAN, "--id", "gw1",
             js({"name": "王五", "phone": "13800000000", "account": "w1", "grid": "g01",
                 "status": "active"}))
        eq(groups("grid", env={"LINLI_SESSION": op}), {G01: (3, 2, 2, 1, 1, 1),
                                                     G02: (2, 1, 0, 0, 0, 0)},
           "the community operator")
        eq(groups("grid", env={"LINLI_SESSION": w1}), {G01: (3, 2, 2, 1, 1, 1)},
           "the grid worker of g01")
        rc, out, err = d.cli("grid", "kpi", "scope=hefei/baohe/fanhua",
                             env={"LINLI_SESSION": op})
        check(rc != 0 and "may not act on hefei/baohe/fanhua: outside its jurisdiction" in err,
              f"another street refused: {out} {err}")
        eq(kpi(d, "2026-01-01", "2026-12-31", "by=grid")["groups"], [], "a year without cases")

        # Bad arguments, each named.
        for args, needle in (
                (("2027-02-30",), "kpi: FROM '2027-02-30' is not a date YYYY-MM-DD"),
                (("2027-01-01", "12/01/2027"), "kpi: TO '12/01/2027' is not a date YYYY-MM-DD"),
                (("2027-01-12", "2027-01-11"), "kpi: FROM 2027-01-12 is after TO 2027-01-11"),
                (("2027-02-01",), "kpi: FROM 2027-02-01 is after TO 2027-01-12 (today"),
                (("by=month",), "kpi: 'by=month': by is one of grid, community, street, "
                                "handler, category"),
                (("colour=red",), "usage: grid kpi [FROM [TO]] [by=grid|community|street|"
                                  "handler|category] [scope=PATH] (dates YYYY-MM-DD; default: "
                                  "this month) ('colour=red': unknown argument)"),
                (("2027-01-01", "2027-01-02", "2027-01-03"), "'2027-01-03': unknown argument")):
            refused(d, needle, "kpi", *args, code="LINLI_EINVAL")

        # GET /api/v1/apps/grid/kpi: the console's figures, acting as the key (its scope).
        web = object.__new__(http_api)
        web.port = port
        key = d.ok("apikeys", "add", "dash", "--resources", "app:grid/kpi", "--scope",
                   YUELAN)["key"]
        url = "/api/v1/apps/grid/kpi?from=2027-01-11&to=2027-01-12&by=grid"
        st, body, _ = web.curl("GET", url, key=key)
        eq(st, 200, f"kpi over HTTP: {body}")
        eq(body, kpi(d, "2027-01-11", "2027-01-12", "by=grid", env={"LINLI_SESSION": op}),
           "the same figures as the console, at the key's reach")
        st, body, _ = web.curl("GET", url + f"&scope={G02}", key=key)
        eq([g["key"] for g in body["groups"]], [G02], "scope=")
        for q, needle in (("?colour=red", "kpi: unknown parameter 'colour'"),
                          ("?from=2027-02-30", "kpi: FROM '2027-02-30' is not a date"),
                          ("?to=2027-01-12", "kpi: 'to' needs 'from'"),
                          ("?by=month", "by is one of grid")):
            st, body, _ = web.curl("GET", "/api/v1/apps/grid/kpi" + q, key=key)
            check(st == 400 and needle in body["error"]["message"], f"{q}: {st} {body}")
        st, body, _ = web.curl("GET", url + "&scope=hefei/baohe/fanhua", key=key)
        check(st == 403 and "outside its jurisdiction" in body["error"]["message"], body)
        other = d.ok("apikeys", "add", "other", "--resources", "app:alarms", "--scope",
                     YUELAN)["key"]
        eq(web.curl("GET", url, key=other)[0], 403, "a key without app:grid")
        eq(web.curl("GET", url)[0], 401, "no key")


def case_overdue_lists_warnings_and_overdue_cases_earliest_first():
    """The test clock on a Monday: a dispatched case (2 working hours to accept) is listed
    as a warning past 80% and as overdue past its deadline; a reported case (30 minutes to
    file) is overdue sooner; closed cases never appear; a community operator sees only
    their community; a bad argument is refused."""
    with node() as d:
        d.ok("data", "put", "work_calendar", "--scope", "hefei", "--id", "2027", js(CAL_2027))
        d.ok("data", "put", "incident_categories", "--scope", "hefei", "--id", "environment",
             js({"name": "暴露垃圾", "file_minutes": 30, "respond_minutes": 120}))
        set_clock(d, "2027-01-11T09:00")
        a = report(d, G01)
        move(d, "file", a)
        move(d, "dispatch", a, "h1")  # accept by 11:00
        b = report(d, G02)              # file by 09:30
        c = report(d, OTHER_G)          # another street
        done = report(d, G01)
        for verb, *arg in (("file",), ("dispatch", "h1"), ("accept",), ("feedback",),
                           ("check",), ("close",)):
            move(d, verb, done, *arg)
        eq(d.ok("grid", "overdue"), [], "nothing past 80% at 09:00")
        set_clock(d, "2027-01-11T09:25")  # b at 83% of 30 min, a at 21%
        eq([(r["id"], r["level"], r["percent"]) for r in d.ok("grid", "overdue")],
           [(b, "warning", 83), (c, "warning", 83)], "b and c warned")
        set_clock(d, "2027-01-11T10:40")  # a at 83% of 2 h; b, c overdue
        rows = d.ok("grid", "overdue")
        eq([(r["id"], r["level"], r.get("percent")) for r in rows],
           [(b, "overdue", None), (c, "overdue", None), (a, "warning", 83)],
           "earliest deadline first")
        near(rows[2]["step_deadline"], local_ms(2027, 1, 11, 11, 0), "a's deadline")
        eq((rows[2]["status"], rows[2]["scope"]), ("dispatched", G01), "a's row")
        set_clock(d, "2027-01-11T11:01")
        eq([(r["id"], r["level"]) for r in d.ok("grid", "overdue", f"scope={YUELAN}")],
           [(b, "overdue"), (a, "overdue")], "scope=: the community's cases")
        op = d.account("op", "operator", node=YUELAN)
        d.login()
        rc, out, err = d.cli("grid", "overdue", env={"LINLI_SESSION": op})
        check(rc == 0, err)
        eq([r["id"] for r in out], [b, a], "the community operator's reach")
        refused(d, "usage: grid overdue [scope=PATH] ('late': unknown argument)", "overdue",
                "late", code="LINLI_EINVAL")


def escalations(d, case):
    """The warnings and 督办 recorded in a case's history: (verb, note) in order."""
    return [(m["verb"], m["note"]) for m in d.ok("grid", "show", case)["moves"]
            if m["verb"] in ("warn", "supervise")]


def alarm_raised(d, case, n):
    """Wait until case holds n raised alarms; the case."""
    return wait_for(lambda: (lambda c: c if c.get("alarm_raised") == n else None)(
        d.ok("grid", "show", case)), f"case {case}: {n} alarms raised")


def restart(d):
    """A clean stop and a start with the test clock: it runs on the real clock again."""
    eq(d.stop(), 0, "clean stop")
    d.start(args=("--test-clock",))


def case_overdue_is_supervised_and_alarmed_each_period_across_restarts():
    """A dispatched case (2 working hours to accept, Monday 09:00-11:00): warned once past
    80%; at 11:00 a 督办 to the street and an alarm (record:incidents/ID); a restart at the
    same period adds nothing; the next period (2 working hours later, over lunch) a second,
    the alarm's count 2; stopped over two more periods, both recorded at the start.
    The street's operator sees it under `grid supervised`, a sibling community's does not.
    A category with escalate_minutes and escalate_alarm false: 督办 each 30 minutes, no
    alarm."""
    with node(alarms=True) as d:
        d.ok("data", "put", "work_calendar", "--scope", "hefei", "--id", "2027", js(CAL_2027))
        d.ok("data", "put", "incident_categories", "--scope", "hefei", "--id", "environment",
             js({"name": "暴露垃圾", "file_minutes": 30, "respond_minutes": 120}))
        d.ok("data", "put", "incident_categories", "--scope", "hefei", "--id", "dispute",
             js({"name": "纠纷", "respond_minutes": 120, "escalate_minutes": 30,
                 "escalate_alarm": False}))
        set_clock(d, "2027-01-11T09:00")  # a Monday
        a = report(d, G01)
        b = report(d, G02, "dispute", "邻里纠纷")
        for case in (a, b):
            move(d, "file", case)
            move(d, "dispatch", case, "h1")  # accept by 11:00
        set_clock(d, "2027-01-11T10:00")
        eq(escalations(d, a), [], "50%: nothing")
        set_clock(d, "2027-01-11T10:40")
        eq(escalations(d, a), [("warn", "warning: 83% of the step's time limit used")],
           "warned past 80%")
        set_clock(d, "2027-01-11T10:50")
        eq(len(escalations(d, a)), 1, "warned once")
        set_clock(d, "2027-01-11T11:01")
        c = alarm_raised(d, a, 1)
        eq(escalations(d, a)[1:], [("supervise", f"督办 1 to {STREET}: overdue in dispatched "
                                                 "since the step's deadline (period 1)")],
           "the first 督办")
        eq((c["supervisions"], c["overdue_periods"], c["escalated_to"]), (1, 1, "street"),
           "the case's count")
        alarm = d.ok("alarms", "show", c["alarm"])
        eq((alarm["type"], alarm["source"], alarm["scope"], alarm["count"], alarm["state"]),
           ("incident_overdue", f"record:incidents/{a}", G01, 1, "active_unacknowledged"),
           "the alarm")
        check(f"case {a} '暴露垃圾' overdue (dispatched): 督办 1 to {STREET}" in alarm["details"],
              alarm)
        eq(escalations(d, b)[-1][0], "supervise", "b supervised too")
        check("alarm" not in d.ok("grid", "show", b), "no alarm for b's category")

        # The street's operator sees the supervision, the sibling community's does not.
        boss = d.account("boss", "operator", node=STREET)
        qop = d.account("qop", "operator", node=QIMING)
        d.login()
        rc, rows, err = d.cli("grid", "supervised", env={"LINLI_SESSION": boss})
        check(rc == 0, err)
        eq(sorted((r["id"], r["to"], r["supervisions"]) for r in rows),
           sorted([(a, STREET, 1), (b, STREET, 1)]), "the street operator's list")
        eq(next(r for r in rows if r["id"] == a)["alarm"], c["alarm"], "with the alarm")
        rc, shown, err = d.cli("grid", "show", a, env={"LINLI_SESSION": boss})
        check(rc == 0, err)
        eq([(m["verb"], m["who"]) for m in shown["moves"]][-2:],
           [("warn", "plugin:grid"), ("supervise", "plugin:grid")], "and its history")
        rc, rows, err = d.cli("grid", "supervised", env={"LINLI_SESSION": qop})
        check(rc == 0, err)
        eq(rows, [], "a sibling community's operator sees none")
        rc, rows, err = d.cli("grid", "show", a, env={"LINLI_SESSION": qop})
        check(rc != 0, f"nor the case: {rows}")
        eq([r["id"] for r in d.ok("grid", "supervised", f"scope={G02}")], [b], "scope=")

        # A restart in the same period: nothing again.
        restart(d)
        set_clock(d, "2027-01-11T11:20")
        eq(len(escalations(d, a)), 2, "no second 督办 in the same period")
        # The next period: 11:00 + 2 working hours (12:00-13:30 is lunch) = 14:30.
        set_clock(d, "2027-01-11T14:20")
        eq(len(escalations(d, a)), 2, "not before 14:30")
        set_clock(d, "2027-01-11T14:31")
        c = alarm_raised(d, a, 2)
        eq((escalations(d, a)[-1], c["supervisions"]),
           (("supervise", f"督办 2 to {STREET}: overdue in dispatched since the step's "
                          "deadline (period 2)"), 2), "the second 督办")
        eq(d.ok("alarms", "show", c["alarm"])["count"], 2, "the alarm's count")
        # Stopped over two periods: 16:30, and Tuesday 10:00 (17:30 ends Monday's hours).
        restart(d)
        set_clock(d, "2027-01-12T10:31")
        c = alarm_raised(d, a, 4)
        eq([n for v, n in escalations(d, a)][-2:],
           [f"督办 {i} to {STREET}: overdue in dispatched since the step's deadline "
            f"(period {i})" for i in (3, 4)], "the periods missed while stopped")
        eq((c["supervisions"], d.ok("alarms", "show", c["alarm"])["count"]), (4, 4), "counts")
        eq(d.ok("grid", "show", b)["supervisions"], 1 + (60 + 240 + 91) // 30,
           "b every 30 working minutes: 11:00-12:00, 13:30-17:30, 09:00-10:31")
        # A new step starts its own clock: accepting ends the supervision of the step.
        move(d, "accept", a)
        set_clock(d, "2027-01-12T10:40")
        eq(len(escalations(d, a)), 5, "nothing new in the new step")
        # The alarm and the case show each other; closing the case clears the alarm.
        eq((alarm_of(d, c)["incident"], c["alarm"]), (a, c["alarm"]), "linked both ways")
        for verb in ("feedback", "check", "close"):
            move(d, verb, a)
        cleared = wait_for(lambda: (lambda x: x if not x["active"] else None)(alarm_of(d, c)),
                           "the alarm cleared")
        eq(cleared["state"], "cleared_unacknowledged", "cleared")
        h = d.ok("alarms", "history", c["alarm"])["history"][-1]
        eq((h["action"], h["by"], h["why"]), ("cleared", "plugin:grid",
                                              f"case {a}: close by admin"), "who cleared it")
        eq([r["id"] for r in d.ok("grid", "supervised")], [b], "a closed case is not listed")


def alarm_of(d, case):
    return d.ok("alarms", "show", case["alarm"])


def case_voiding_an_overdue_case_clears_its_alarm():
    """Two reported cases past their intake limit (30 working minutes) raise their alarms;
    voiding one clears its alarm. The other's alarm is cleared by hand: the next period
    raises a new one, linked to the case; filing keeps the report's deadline and its periods;
    closing clears the latest alarm."""
    with node(alarms=True) as d:
        d.ok("data", "put", "work_calendar", "--scope", "hefei", "--id", "2027", js(CAL_2027))
        set_clock(d, "2027-01-11T09:00")
        a, b = report(d, G01), report(d, G02)
        set_clock(d, "2027-01-11T09:31")
        ca, cb = alarm_raised(d, a, 1), alarm_raised(d, b, 1)
        eq(alarm_of(d, ca)["incident"], a, "the alarm names the case")
        d.ok("alarms", "clear", cb["alarm"], "seen")
        set_clock(d, "2027-01-11T10:01")  # the next period: 30 minutes more
        cb2 = alarm_raised(d, b, 2)
        check(cb2["alarm"] != cb["alarm"], "a new alarm after the hand clear")
        ca = alarm_raised(d, a, 2)
        eq((alarm_of(d, cb2)["count"], alarm_of(d, ca)["count"]), (1, 2),
           "a new alarm for b, a's folds")
        op = d.account("op", "operator", node=YUELAN)  # voids as a community operator
        d.login()
        d.ok("accounts", "assign", "op", "grid.intake")
        eq(move(d, "void", a, "duplicate", env={"LINLI_SESSION": op})["to"], "void", "void")
        wait_for(lambda: not alarm_of(d, ca)["active"], "a's alarm cleared")
        eq(d.ok("alarms", "history", ca["alarm"])["history"][-1]["why"],
           f"case {a}: void by op", "why")
        d.ok("alarms", "clear", cb2["alarm"], "seen again")
        eq(move(d, "file", b)["to"], "filed", "filing needs no alarm")
        set_clock(d, "2027-01-11T10:20")
        eq(d.ok("grid", "show", b)["supervisions"], 2, "filed: the report's deadline and periods")
        set_clock(d, "2027-01-11T10:31")
        cb3 = alarm_raised(d, b, 3)
        eq((cb3["supervisions"], escalations(d, b)[-1][1]),
           (3, f"督办 3 to {STREET}: overdue in filed since the step's deadline (period 3)"),
           "the third period, filed")
        eq(move(d, "dispatch", b, "h1")["to"], "dispatched", "dispatched: a new deadline")
        eq(move(d, "accept", b)["to"], "processing", "accepted")
        for verb in ("feedback", "check", "close"):
            move(d, verb, b)
        wait_for(lambda: not alarm_of(d, cb3)["active"], "b's third alarm cleared at the close")
        eq([r["id"] for r in d.ok("grid", "supervised")], [], "nothing under 督办")


REQUESTER = keeper(name="opener", caps=("bus.publish:incidentreq/report",), prelude="""
function answer(tag)
  return function(r, st, code)
    print("answer " .. tag .. " => " .. tostring(r and r.id) .. " " .. tostring(st) .. " "
          .. tostring(code))
  end
end
""")


def case_a_rule_or_plugin_opens_a_case_by_request():
    with node(apps={"opener.lua": REQUESTER}) as d:
        d.ok("opener", "run", "--stdin", input=f"""
          return linli.request("incidentreq/report", "{G01}",
            {{ title = "烟感告警", category = "fire" }}, 0, answer("ok"))""")
        d.wait_log("answer ok => ")
        line = [x for x in d.logtext().splitlines() if "answer ok => " in x][-1]
        case = line.split("answer ok => ")[1].split()[0]
        c = d.ok("grid", "show", case)
        eq((c["status"], c["channel"], c["scope"], c["moves"][0]["who"]),
           ("reported", "device", G01, "plugin:opener"), "opened by the plugin")
        d.ok("opener", "run", "--stdin", input=f"""
          return linli.request("incidentreq/report", "{YUELAN}",
            {{ title = "t", category = "fire" }}, 0, answer("bad"))""")
        d.wait_log("answer bad => ")
        line = [x for x in d.logtext().splitlines() if "answer bad => " in x][-1]
        check(f"'{YUELAN}' is not a grid" in line and "LINLI_EINVAL" in line, line)


ALARM_CASES = """plugins = { alarms = {
  escalate = { door_forced = [ 60, 120 ]; };
  incident = { smoke = { category = "fire"; };
               door_forced = { category = "public_order"; at = "supervised"; grid = "g02"; }; };
}; };
"""


def alarm_case(d, alarm):
    """Wait until alarm names its case; the case."""
    a = wait_for(lambda: (lambda r: r if r.get("incident") else None)(
        d.ok("alarms", "show", alarm)), f"alarm {alarm} opens a case")
    return d.ok("grid", "show", a["incident"])


def case_an_alarm_opens_a_case_and_the_case_clears_it():
    """plugins.alarms.incident as data: smoke (at raised) from a device of grid g01 opens one
    case there at once, channel alarm, linked both ways, and a repeat opens no second;
    door_forced (at supervised) from a device the store does not know opens its case in the
    configured grid g02 only at the ladder's second step, an acknowledged one never. Closing
    the smoke case and voiding the door case clear their alarms. A raise while the grid
    plugin is absent gets its case at the next start with it; asking twice for one alarm
    (incidentreq/report with source_alarm) answers the same case."""
    pdir = None
    with node(alarms=True, extra=ALARM_CASES, tdrv=True) as d:
        pdir = os.path.join(d.dir, "plugins")
        d.ok("data", "put", "grids", "--scope", YUELAN, "--id", "g01",
             js({"code": "g01", "name": "悦澜一网格"}))
        admin = d.account("yl", "admin", node=YUELAN)
        d.login()
        rc, out, err = d.cli("devices", "add", "smk-1", "smoke", "tdrv", "ok", "--grid", "g01",
                             env={"LINLI_SESSION": admin})
        check(rc == 0, f"devices add: {err}")
        s = d.ok("alarms", "raise", "smoke", "device:smk-1", YUELAN, "major", "3栋 2楼 烟感")["id"]
        c = alarm_case(d, s)
        eq((c["status"], c["channel"], c["scope"], c["category"], c["source_alarm"],
            c["description"], c["moves"][0]["who"]),
           ("reported", "alarm", G01, "fire", s, "3栋 2楼 烟感", "plugin:alarms"),
           "the case the smoke alarm opened")
        h = d.ok("alarms", "history", s)["history"][-1]
        eq((h["action"], h["to"], h["by"]), ("incident", c["id"], "plugin:alarms"), "history")
        eq(d.ok("alarms", "raise", "smoke", "device:smk-1", YUELAN, "major")["count"], 2,
           "a repeat folds")
        door = d.ok("alarms", "raise", "door_forced", "device:door-9", YUELAN, "major")["id"]
        acked = d.ok("alarms", "raise", "door_forced", "device:door-8", YUELAN, "major")["id"]
        d.ok("alarms", "ack", acked)
        d.ok("clock", "advance", "70s")
        wait_for(lambda: d.ok("alarms", "show", door).get("escalation") == 1, "re-notified")
        check("incident" not in d.ok("alarms", "show", door), "no case before 督办")
        d.ok("clock", "advance", "60s")
        cd = alarm_case(d, door)
        eq((cd["scope"], cd["category"], cd["source_alarm"]), (G02, "public_order", door),
           "the door's case, in the configured grid")
        eq(len(d.ok("grid", "list")), 2, "one case per alarm: the repeat opened none")
        check("incident" not in d.ok("alarms", "show", acked), "acknowledged: no case")
        for verb, *args in (("file",), ("dispatch", "h1"), ("accept",), ("feedback",),
                            ("check",), ("close",)):
            move(d, verb, c["id"], *args)
        wait_for(lambda: not d.ok("alarms", "show", s)["active"], "closing clears the alarm")
        eq(d.ok("alarms", "history", s)["history"][-1]["why"],
           f"case {c['id']}: close by admin", "why")
        move(d, "void", cd["id"], "a drill")
        wait_for(lambda: not d.ok("alarms", "show", door)["active"], "voiding clears it")
        eq(d.ok("alarms", "stats")["cases_opened"], 2, "counted")
        # Without the grid plugin: no case, and the log says why; with it again, the case.
        eq(d.stop(), 0, "stop")
        os.rename(os.path.join(pdir, "grid.so"), os.path.join(d.dir, "grid.so.off"))
        d.start(args=("--test-clock",))
        s2 = d.ok("alarms", "raise", "smoke", "device:smk-1", YUELAN, "critical")["id"]
        check(s2 != s, "a new alarm: the first is cleared")
        d.wait_log(f"alarm {s2}: no case opened: incidentreq/report at {G01}")
        eq(d.stop(), 0, "stop")
        os.rename(os.path.join(d.dir, "grid.so.off"), os.path.join(pdir, "grid.so"))
        d.start(args=("--test-clock",))
        c2 = alarm_case(d, s2)
        eq((c2["scope"], c2["source_alarm"]), (G01, s2), "opened at the start")
        eq([x["action"] for x in d.ok("alarms", "history", s2)["history"]],
           ["raised", "incident"], "asked once it could be")
    with node(alarms=True, apps={"opener.lua": REQUESTER}, extra=ALARM_CASES) as d:
        gas = d.ok("alarms", "raise", "gas", "device:g-1", YUELAN, "minor")["id"]
        opened = []
        for tag in ("one", "two"):
            d.ok("opener", "run", "--stdin", input=f"""
              return linli.request("incidentreq/report", "{G01}",
                {{ title = "t", category = "fire", channel = "alarm",
                   source_alarm = "{gas}" }}, 0, answer("{tag}"))""")
            d.wait_log(f"answer {tag} => ")
            line = [x for x in d.logtext().splitlines() if f"answer {tag} => " in x][-1]
            opened.append(line.split(f"answer {tag} => ")[1].split()[0])
        eq(opened[0], opened[1], "asked twice: one case")
    with node(alarms=True, extra="plugins = { alarms = { incident = { smoke = { category = "
              "\"fire\"; at = \"soon\"; }; }; }; };\n") as d:
        info = d.ok("plugins", "info", "alarms")
        check(info["state"] == "failed" and "plugins.alarms.incident.smoke.at: 'soon' is not "
              "raised, renotified or supervised" in info["reason"], info)


if __name__ == "__main__":
    sys.exit(main(dict(globals())))
