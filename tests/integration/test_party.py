"""Integration tests of the party-building application (scripts/apps/party.lua), the
repo's own file run as a script plugin by a real linlid at the community node
hefei/baohe/binhu/yuelan with the real catalog: its console commands end to end,
attendance rates against a hand-counted fixture, masking for each role, the monthly
reminder on the test clock (once, and not again after a restart) and its refusals.
"""
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import SRC, Daemon, check, eq, finish, main, wait_for  # noqa: E402

YUELAN = "hefei/baohe/binhu/yuelan"
APP = os.path.join(SRC, "scripts", "apps", "party.lua")
PASSWORD = "Another-Passw0rd-1"


class node:
    """linlid at YUELAN running party.lua (granted what it declares, as an admin would)."""

    def __init__(self, extra="", test_clock=False):
        self.d = Daemon(node=YUELAN, level="community")
        self.args = ("--test-clock",) if test_clock else ()
        apps = os.path.join(self.d.dir, "scripts", "apps")
        os.makedirs(apps)
        shutil.copyfile(APP, os.path.join(apps, "party.lua"))
        self.d.write_config(node=YUELAN, level="community", name="悦澜社区",
                            extra=f'catalog_dir = "{os.path.join(SRC, "catalog")}";\n'
                                  f'script_dirs = [ "{os.path.dirname(apps)}" ];\n'
                                  f'lua = {{ time_ms = 5000; }};\n{extra}')
        self.d.grant_scripts(apps)

    def __enter__(self):
        try:
            return self.d.start(args=self.args)
        except BaseException:
            self.d.cleanup()
            raise

    def __exit__(self, etype, *rest):
        finish(self.d, etype)


def party(d, *args, token=None):
    """`linli party ARGS` as the admin (or the account of `token`); its reply."""
    return d.ok("party", *args, env={"LINLI_SESSION": token} if token else None)


def refused(d, args, name, text, token=None):
    """`linli party ARGS` fails with code `name` and a message holding `text`."""
    rc, out, err = d.cli("party", *args, env={"LINLI_SESSION": token} if token else None)
    check(rc == 1 and isinstance(out, dict) and out.get("name") == name
          and text in out.get("error", ""),
          f"linli party {' '.join(args)}: want {name} {text!r}, got {rc} {out} {err}")


def seed(d):
    """The fixture: two branches, seven members (one transferred out), four meetings."""
    party(d, "branch", "add", "b1", "第一党支部", "founded_at=2001-07-01")
    party(d, "branch", "add", "b2", "第二党支部", "kind=branch")
    m = {}
    for key, branch, name, extra in (
            ("m1", "b1", "王建国", ["phone=13800000001", "membership=full"]),
            ("m2", "b1", "李红", ["id_number=340104196510011234", "joined_at=1990-07-01"]),
            ("m3", "b1", "张伟", ["position=组织委员"]),
            ("m4", "b1", "赵敏", ["status=transferred_out"]),
            ("m5", "b2", "陈静", []), ("m6", "b2", "刘洋", []), ("m7", "b2", "孙丽", [])):
        m[key] = party(d, "member", "add", branch, name, *extra)["id"]
    a = {}
    for key, branch, kind, date in (("a1", "b1", "支部党员大会", "2026-01-10T19:30"),
                                    ("a2", "b1", "党课", "2026-01-20"),
                                    ("a3", "b1", "committee_meeting", "2026-02-05"),
                                    ("a4", "b2", "党小组会", "2026-01-15")):
        r = party(d, "activity", "add", branch, kind, date)
        eq(r["expected"], 3, f"{key}: the branch's active members are expected")
        a[key] = r["id"]
    return m, a


def case_commands_and_rates():
    """Branches, members, meetings and attendance through the console; rates per branch
    and month against the fixture counted by hand:
      b1  2026-01: a1 3 of 3, a2 1 of 3 (m2 on leave)  -> 4/6
          2026-02: a3 2 of 3 (m1 recorded twice)       -> 2/3
          all:                                         -> 6/9
      b2  2026-01: a4 1 of 3                           -> 1/3"""
    with node() as d:
        m, a = seed(d)
        eq(party(d, "attend", a["a1"], m["m1"], m["m2"], m["m3"])["attended"], 3, "a1")
        party(d, "attend", a["a2"], m["m1"])
        r = party(d, "attend", a["a2"], m["m2"], "--leave")
        eq((r["attended"], r["status"], r["expected"]), (1, "leave", 3), "a leave is no attendance")
        party(d, "attend", a["a3"], m["m1"], m["m2"])
        eq(party(d, "attend", a["a3"], m["m1"])["attended"], 2, "recorded twice, counted once")
        party(d, "attend", a["a4"], m["m5"])

        def rates(*args):
            return {r["branch"]: (r["meetings"], r["attended"], r["expected"], r.get("rate"))
                    for r in party(d, "rates", *args)}
        eq(rates("--month", "2026-01"), {"b1": (2, 4, 6, 0.6667), "b2": (1, 1, 3, 0.3333)},
           "January")
        eq(rates("--month", "2026-02"), {"b1": (1, 2, 3, 0.6667), "b2": (0, 0, 0, None)},
           "February")
        eq(rates(), {"b1": (3, 6, 9, 0.6667), "b2": (1, 1, 3, 0.3333)}, "all months")
        eq(rates("--branch", "b2", "--month", "2026-01"), {"b2": (1, 1, 3, 0.3333)}, "one branch")

        acts = party(d, "activity", "list", "--branch", "b1", "--month", "2026-01")
        eq([(x["kind"], x["kind_zh"], x["date"], x["attended"], x["expected"]) for x in acts],
           [("branch_meeting", "支部党员大会", "2026-01-10T19:30", 3, 3),
            ("party_lecture", "党课", "2026-01-20T00:00", 1, 3)], "b1's January meetings")
        eq(len(party(d, "activity", "list")), 4, "every meeting")
        eq({b["id"]: (b["name"], b["members"]) for b in party(d, "branch", "list")},
           {"b1": ("第一党支部", 3), "b2": ("第二党支部", 3)}, "branches, active members")
        rows = party(d, "member", "list", "--branch", "b1")
        eq(sorted(r["status"] for r in rows), ["active"] * 3 + ["transferred_out"], "b1's")
        eq(len(party(d, "member", "list")), 7, "every member")
        eq(len(party(d, "member", "list", "--status", "transferred_out")), 1, "by status")
        s = party(d, "member", "show", m["m2"])
        eq((s["branch"], s["attended"], s["leave"], s["joined_at"]), ("b1", 2, 1, "1990-07-01"),
           "m2's record and attendance")
        # What the app stored is plain catalog data: the console reads it too.
        rec = d.ok("data", "get", "party_activities", a["a1"])
        eq((rec["attendees"], rec["expected"], rec["kind"]), (3, 3, "branch_meeting"), "stored")
        eq(d.ok("data", "get", "party_branches", "b1")["founded_at"], 993916800000,
           "founded_at is local midnight (2001-07-01T00:00+08:00)")


def case_masking_per_role():
    """A member's personal fields come masked to a viewer, an operator and an admin
    without the grant, in clear to an operator granted sensitive:party_members; every
    read is audited under the caller via plugin:party; a viewer cannot write."""
    with node() as d:
        party(d, "branch", "add", "b1", "第一党支部")
        mid = party(d, "member", "add", "b1", "李红", "id_number=340104196510011234",
                    "phone=13812345678")["id"]
        viewer = d.account("v1", "viewer", node=YUELAN)
        op = d.account("op1", "operator", node=YUELAN)
        seer = d.account("op2", "operator", node=YUELAN, grants=("sensitive:party_members",))
        masked = ("李*", "340***********1234", "138****5678")
        clear = ("李红", "340104196510011234", "13812345678")
        for who, tok, want in (("viewer", viewer, masked), ("operator", op, masked),
                               ("admin", None, masked), ("granted operator", seer, clear)):
            s = party(d, "member", "show", mid, token=tok)
            eq((s["name"], s["id_number"], s["phone"]), want, f"{who}: show")
            rows = party(d, "member", "list", token=tok)
            eq((rows[0]["name"], rows[0]["phone"]), (want[0], want[2]), f"{who}: list")
        rows = [r for r in d.ok("audit", "--via", "plugin:party", "--limit", "1000")
                if r.get("action") == "data.read" and r.get("object") == "party_members"]
        seen = {(r["who"], r["result"]) for r in rows}
        for want in (("v1", "masked"), ("op1", "masked"), ("op2", "allowed")):
            check(want in seen, f"{want} not audited: {seen}")
        # Writes need the role of party.manage: a viewer is refused before anything is done.
        refused(d, ("member", "add", "b1", "王五"), "LINLI_EPERM",
                "needs role operator or above; 'v1' is viewer", token=viewer)
        refused(d, ("branch", "add", "b9", "第九党支部"), "LINLI_EPERM", "'v1' is viewer",
                token=viewer)
        eq(len(party(d, "member", "list")), 1, "nothing stored")
        check(party(d, "member", "add", "b1", "王五", token=op)["id"], "an operator adds")


def marker(d, sid, n):
    """Publish party/marker {n} and read the subscription up to it: the reminders
    published before the marker (the marker is published after the clock's reply, which
    comes once the due timers have run)."""
    d.ok("publish", "party/marker", f'{{"n": {n}}}')
    got = []

    def upto():
        for e in d.ok("events", "next", str(sid), "--wait", "2000")["events"]:
            if e["topic"] == "party/marker" and e["payload"].get("n") == n:
                return True
            got.append(e)
        return False
    wait_for(upto, f"marker {n}")
    return [(e["payload"]["branch"], e["payload"]["month"]) for e in got
            if e["topic"] == "party/reminder"]


def case_reminder_once_a_month_on_the_test_clock():
    """A branch with no meeting held this month is reminded on the 25th (local day), once;
    not before, not again later that month, not again after a restart; and again the next
    month. A branch that held its meeting is not reminded."""
    n = node(test_clock=True)
    with n as d:
        party(d, "branch", "add", "b1", "第一党支部")
        party(d, "branch", "add", "b2", "第二党支部")
        party(d, "activity", "add", "b2", "支委会", "2027-03-10T19:00")
        party(d, "activity", "add", "b1", "党课", "2027-03-28T19:00")  # not held by the 25th
        sid = d.ok("events", "subscribe", "party/#")["id"]

        def clock(*args):
            d.ok("clock", *args)
            d.login()  # the admin's session follows the clock
        clock("set", "2027-03-24T23:30")
        eq(marker(d, sid, 1), [], "the 24th: no reminder yet")
        clock("set", "2027-03-25T00:30")
        eq(marker(d, sid, 2), [("b1", "2027-03")], "the 25th: b1, which held no meeting")
        d.wait_log("party: reminded branch b1 of its meeting for 2027-03")
        clock("advance", "1h")
        clock("advance", "1d")
        eq(marker(d, sid, 3), [], "once a month")
        eq({b["id"]: b.get("reminded_month") for b in party(d, "branch", "list")},
           {"b1": "2027-03", "b2": None}, "kept in the branch")
        eq(d.stop(), 0, "stopped")
        d.start(args=n.args)
        sid = d.ok("events", "subscribe", "party/#")["id"]
        clock("set", "2027-03-27T09:00")
        eq(marker(d, sid, 4), [], "not again after a restart")
        clock("set", "2027-04-25T08:00")
        eq(sorted(marker(d, sid, 5)), [("b1", "2027-04"), ("b2", "2027-04")], "next month")
        check(d.logtext().count("party: reminded branch b1") == 2, "b1 reminded twice in all")


def case_reminder_day_is_a_setting():
    """plugins.party.reminder_day moves the day; a bad one stops the app with a reason."""
    with node(extra="plugins = { party = { reminder_day = 3; }; };\n", test_clock=True) as d:
        party(d, "branch", "add", "b1", "第一党支部")
        sid = d.ok("events", "subscribe", "party/#")["id"]
        d.ok("clock", "set", "2027-05-02T12:00")
        d.login()
        eq(marker(d, sid, 1), [], "the 2nd")
        d.ok("clock", "set", "2027-05-03T00:10")
        d.login()
        eq(marker(d, sid, 2), [("b1", "2027-05")], "the 3rd")
    for conf, text in (("reminder_day = 31;", "31 is not a day of the month from 1 to 28"),
                       ("reminder_day = \"25\";", "25 is not a day of the month"),
                       ("remind_day = 3;", "unknown setting 'remind_day'")):
        with node(extra=f"plugins = {{ party = {{ {conf} }}; }};\n") as d:
            row = {p["name"]: p for p in d.ok("plugins", "list")}["party"]
            check(row["state"] == "failed" and text in row.get("reason", ""), f"{conf}: {row}")


def case_refusals_store_nothing():
    """Bad input is refused naming what is wrong, and nothing is stored."""
    with node() as d:
        m, a = seed(d)
        future = party(d, "activity", "add", "b1", "党课", "2099-07-01T19:00")["id"]
        before = (party(d, "member", "list"), party(d, "activity", "list"),
                  party(d, "branch", "list"))
        for args, name, text in (
                (("member", "add", "zz", "王五"), "LINLI_ENOENT", "no branch 'zz'"),
                (("member", "add", "b1", "王五", "colour=red"), "LINLI_EINVAL",
                 "unknown field 'colour' (fields: gender, grid, id_number,"),
                (("member", "add", "b1", "王五", "gender=x"), "LINLI_ESCHEMA",
                 "party_members: field 'gender': 'x' is not one of male, female"),
                (("member", "add", "b1", "王五", "joined_at=1990-13-01"), "LINLI_EINVAL",
                 "joined_at: '1990-13-01' is not a date"),
                (("member", "add", "b1"), "LINLI_EINVAL", "usage: member add BRANCH NAME"),
                (("member", "show", "nosuch"), "LINLI_ENOENT", "no member 'nosuch'"),
                (("member", "list", "--branch", "zz"), "LINLI_ENOENT", "no branch 'zz'"),
                (("member", "fly"), "LINLI_EINVAL", "usage: member add|list|show"),
                (("branch", "add", "b1", "又一个"), "LINLI_EEXIST",
                 "branch 'b1' exists already (第一党支部"),
                (("branch", "add", "b 1", "x"), "LINLI_EINVAL", "branch code 'b 1' is not an id"),
                (("branch", "add", "b3", "x", "--scope", "hefei/baohe/binhu/qiming"), "LINLI_EPERM",
                 "outside"),
                (("branch", "add", "b3", "x", "--scope"), "LINLI_EINVAL",
                 "option --scope needs a value"),
                (("branch", "add", "b3", "x", "kind=club"), "LINLI_ESCHEMA",
                 "party_branches: field 'kind': 'club' is not one of"),
                (("branch", "add", "b3", "x", "secretary=nosuch"), "LINLI_ENOENT",
                 "secretary: no member 'nosuch'"),
                (("activity", "add", "zz", "党课", "2026-03-01"), "LINLI_ENOENT", "no branch 'zz'"),
                (("activity", "add", "b1", "茶话会", "2026-03-01"), "LINLI_EINVAL",
                 "kind '茶话会' is not one of branch_meeting (支部党员大会), committee_meeting"),
                (("activity", "add", "b1", "党课", "2026-02-30"), "LINLI_EINVAL",
                 "date: '2026-02-30' is not a date"),
                (("activity", "add", "b1", "党课", "yesterday"), "LINLI_EINVAL",
                 "date: 'yesterday' is not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM"),
                (("activity", "add", "b1", "党课", "2026-03-01T25:00"), "LINLI_EINVAL",
                 "is not a date"),
                (("activity", "list", "--month", "2026-13"), "LINLI_EINVAL",
                 "--month: '2026-13' is not a month (YYYY-MM)"),
                (("attend", a["a1"], m["m1"], m["m5"]), "LINLI_EINVAL",
                 f"member '{m['m5']}' is not a member of branch 'b1' (its branch is 'b2')"),
                (("attend", a["a1"], m["m1"], "nosuch"), "LINLI_ENOENT", "no member 'nosuch'"),
                (("attend", "nosuch", m["m1"]), "LINLI_ENOENT", "no activity 'nosuch'"),
                (("attend", future, m["m1"]), "LINLI_ESTATE",
                 "is on 2099-07-01T19:00, still to come: attendance is recorded once it is held"),
                (("attend", a["a1"]), "LINLI_EINVAL", "usage: attend ACTIVITY MEMBER"),
                (("attend", a["a1"], m["m1"], "--late"), "LINLI_EINVAL", "unknown option --late"),
                (("rates", "--month", "March"), "LINLI_EINVAL", "'March' is not a month"),
                (("rates", "--branch"), "LINLI_EINVAL", "option --branch needs a value"),
                (("rates", "--branch", "zz"), "LINLI_ENOENT", "no branch 'zz'")):
            refused(d, args, name, text)
        eq((party(d, "member", "list"), party(d, "activity", "list"),
            party(d, "branch", "list")), before, "nothing stored")
        eq([(r["attended"], r["meetings"]) for r in party(d, "rates")], [(0, 3), (0, 1)],
           "no attendance recorded; a meeting still to come is not counted")
        eq(d.ok("data", "query", "party_attendance")["count"], 0, "no attendance record")
        # --scope keeps a branch where it is given (a street node's community, here a grid).
        eq(party(d, "branch", "add", "b3", "网格支部", "--scope", YUELAN + "/g01"),
           {"id": "b3", "name": "网格支部", "scope": YUELAN + "/g01"}, "a branch at a grid")
        eq(d.ok("data", "get", "party_branches", "b3", "--scope", YUELAN + "/g01")["name"],
           "网格支部", "kept there")


if __name__ == "__main__":
    sys.exit(main(globals()))
