"""Integration tests of the alarms plugin (plugins/alarms/), through a real linlid.

The node is the street hefei/baohe/binhu with the real catalog, the alarms plugin granted
exactly what it declares, and a script plugin `raiser` that sends alarmreq/raise requests
from Lua (as a family plugin or a rule would). The console runs as a street administrator;
other accounts are made per case.
"""
import json
import os
import shutil
import signal
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from harness import (BUILD, SRC, Daemon, check, eq, finish, main,  # noqa: E402
                     plugin_meta, wait_for, write)
from luakit import ENC, keeper  # noqa: E402
from test_http import api as http_api, free_port  # noqa: E402

ALARMS_SO = os.path.join(BUILD, "plugins", "alarms", "alarms.so")
CATALOG = os.path.join(SRC, "catalog")
STREET = "hefei/baohe/binhu"
YUELAN = STREET + "/yuelan"
QIMING = STREET + "/qiming"
PASSWORD = "Another-Passw0rd-1"

# The raiser's Lua: RAISE(n, payload, scope) sends n requests in one turn and keeps the
# answers in ANSWERS (id, status, err).
RAISER = keeper(name="raiser", caps=("bus.publish:alarmreq/raise", "bus.publish:alarmreq/clear"),
               prelude=ENC + """
ANSWERS = {}
function CLEAR(payload, scope)
  local ok, msg, code = linli.request("alarmreq/clear", scope, payload, 10000,
    function(r, status, code)
      ANSWERS[#ANSWERS + 1] = r and { id = r.id, cleared = r.cleared }
                               or { status = status, code = code }
    end)
  if not ok then return nil, msg, code end
  return 1
end
function RAISE(n, payload, scope)
  for i = 1, n do
    local ok, msg, code = linli.request("alarmreq/raise", scope, payload, 10000,
      function(r, status, code)
        ANSWERS[#ANSWERS + 1] = r and { id = r.id, created = r.created, count = r.count,
                                        shelved = r.shelved, shelf = r.shelf }
                                 or { status = status, code = code }
      end)
    if not ok then return nil, msg, code end
  end
  return n
end
""")

# The catalog's alarms before the two-flag state (what older nodes stored).
OLD_ALARMS = """dataset = {
  name = "alarms"; title_zh = "告警"; title_en = "Alarms"; owner = "emergency_management";
  family = "safety"; level = "community"; sharing = "conditional"; source = "community";
  restricted = false;
  fields = (
    { name = "topic"; type = "string"; required = true; indexed = true; max_len = 256; },
    { name = "event"; type = "string"; required = true; indexed = true; max_len = 64; },
    { name = "severity"; type = "enum"; required = true; indexed = true;
      values = [ "critical", "major", "minor", "info" ]; },
    { name = "status"; type = "enum"; required = true; indexed = true;
      values = [ "raised", "acknowledged", "cleared" ]; },
    { name = "device"; type = "ref"; ref = "devices"; indexed = true; },
    { name = "rule"; type = "string"; max_len = 128; },
    { name = "message"; type = "string"; max_len = 1024; },
    { name = "location"; type = "geo"; },
    { name = "grid"; type = "ref"; ref = "grids"; indexed = true; },
    { name = "raised_at"; type = "time"; required = true; indexed = true; },
    { name = "acknowledged_at"; type = "time"; },
    { name = "acknowledged_by"; type = "string"; max_len = 64; },
    { name = "cleared_at"; type = "time"; },
    { name = "incident"; type = "ref"; ref = "incidents"; }
  );
};
"""


def js(v):
    return json.dumps(v, ensure_ascii=False)


class node:
    """A street linlid with the alarms plugin and the raiser script plugin."""

    def __init__(self, d=None, catalog=CATALOG, plugin=True, extra=""):
        self.d = d or Daemon()
        self.pdir = os.path.join(self.d.dir, "plugins")
        scripts = os.path.join(self.d.dir, "scripts")
        os.makedirs(os.path.join(scripts, "apps"), exist_ok=True)
        os.makedirs(os.path.join(scripts, "rules"), exist_ok=True)
        os.makedirs(self.pdir, exist_ok=True)
        if plugin:
            shutil.copyfile(ALARMS_SO, os.path.join(self.pdir, "alarms.so"))
            write(os.path.join(scripts, "apps", "raiser.lua"), RAISER)
        self.d.write_config(node=STREET, level="street", name="滨湖",
                            extra=f'plugin_dirs = [ "{self.pdir}" ];\n'
                                  f'catalog_dir = "{catalog}";\n'
                                  f'script_dirs = [ "{scripts}" ];\n'
                                  'lua = { time_ms = 5000; };\n' + extra)
        self.d.grant_declared(self.pdir)
        self.d.grant_scripts(os.path.join(scripts, "apps"))

    def __enter__(self):
        try:
            self.d.start()
            admin(self.d)
            return self.d
        except BaseException:
            self.d.cleanup()
            raise

    def __exit__(self, etype, *rest):
        finish(self.d, etype)


def clocked(n):
    """Node n whose linlid starts (and restarts) with --test-clock."""
    start = n.d.start
    n.d.start = lambda **kw: start(args=("--test-clock",))
    return n


def admin(d, user="street_admin"):
    """The console acts as an administrator of the street (made on first use)."""
    rc, out, err = d.cli("accounts", "add", user, "--role", "admin", "--node", STREET,
                         "--stdin", input=PASSWORD + "\n")
    check(rc == 0 or "exists" in err, f"accounts add {user}: {err}")
    d.session = d.login(user, PASSWORD)
    os.environ["LINLI_SESSION"] = d.session


def lua(d, code):
    """Run Lua code in the raiser; its results {r1, r2, r3, n}."""
    return d.ok("raiser", "run", "--stdin", input=code)


def answers(d, n):
    """Wait until the raiser holds n answers; return them."""
    return wait_for(lambda: (lambda a: a if len(a) >= n else None)(
        lua(d, "return ANSWERS")["r1"] or []), f"{n} answers")


def request(d, payload, scope=YUELAN):
    """One alarmreq/raise from the raiser; its answer."""
    before = len(lua(d, "return ANSWERS")["r1"] or [])
    r = lua(d, f"return RAISE(1, {lua_table(payload)}, {json.dumps(scope)})")
    eq(r["r1"], 1, f"request sent: {r}")
    return answers(d, before + 1)[before]


def clear(d, payload, scope=YUELAN):
    """One alarmreq/clear from the raiser; its answer."""
    before = len(lua(d, "return ANSWERS")["r1"] or [])
    r = lua(d, f"return CLEAR({lua_table(payload)}, {json.dumps(scope)})")
    eq(r["r1"], 1, f"request sent: {r}")
    return answers(d, before + 1)[before]


def lua_table(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    return "{" + ", ".join(f"[{json.dumps(k)}] = {lua_table(x)}" for k, x in v.items()) + "}"


def alarms(d, *args):
    return d.ok("alarms", *args)


def refused(d, needle, *args, token=None):
    rc, out, err = d.cli("alarms", *args, env={"LINLI_SESSION": token} if token else None)
    check(rc != 0, f"alarms {' '.join(args)} was not refused: {out}")
    check(needle in err, f"{needle!r} not in {err!r}")
    return err


def journal(d, prefix="alarm/"):
    return [e for e in d.ok("events", "journal", "--limit", "1000")["events"]
            if e["topic"].startswith(prefix)]


SMOKE = {"type": "smoke", "source": "device:sd-1", "severity": "major",
         "details": "smoke in stairwell 2"}


def case_a_burst_of_raises_is_one_alarm():
    with node() as d:
        # 200 raises of one source and type in one Lua turn: one alarm, count 200.
        eq(lua(d, f"return RAISE(200, {lua_table(SMOKE)}, {json.dumps(YUELAN)})")["r1"], 200,
           "sent")
        got = answers(d, 200)
        ids = {a.get("id") for a in got}
        eq(len(ids), 1, f"one alarm id for 200 raises: {got[:3]}")
        eq(sum(1 for a in got if a.get("created")), 1, "created once")
        eq([a["count"] for a in got], list(range(1, 201)), "counts in order")
        (aid,) = ids
        rows = d.ok("data", "query", "alarms", "--limit", "1000")["records"]
        eq(len(rows), 1, "one row")
        r = wait_for(lambda: (lambda x: x if x["count"] == 200 else None)(
            d.ok("data", "get", "alarms", aid)), "count 200 stored")
        eq((r["type"], r["source"], r["severity"], r["active"], r["acknowledged"], r["device"],
            r["details"], r["scope"]),
           ("smoke", "device:sd-1", "major", True, False, "sd-1", "smoke in stairwell 2", YUELAN),
           "the alarm")
        check(r["last_at"] >= r["first_at"], r)
        st = alarms(d, "stats")
        eq((st["raised"], st["folded"], st["active"]), (1, 199, 1), "stats")
        check(st["writes"] <= 5, f"199 repeats written in a few writes: {st}")
        print(f"  200 raises in one turn: 1 alarm, {st['writes']} store writes")
        # A millisecond apart: from the console, one at a time.
        for _ in range(2):
            r = alarms(d, "raise", "smoke", "device:sd-1", YUELAN, "major")
            eq((r["id"], r["created"]), (aid, False), "a repeat from the console")
        eq(alarms(d, "show", aid)["count"], 202, "count after two more")
        # Another source or type is another alarm.
        other = alarms(d, "raise", "smoke", "device:sd-2", YUELAN, "major")
        check(other["created"] and other["id"] != aid, other)
        other = alarms(d, "raise", "gas", "device:sd-1", YUELAN, "major")
        check(other["created"] and other["id"] != aid, other)
        # One raised event per new alarm, none per repeat, the scope on the event.
        raised = journal(d, "alarm/smoke/raised")
        eq(len(raised), 2, f"raised events: {raised}")
        eq((raised[0]["scope"], raised[0]["payload"]["id"], raised[0]["payload"]["state"]),
           (YUELAN, aid, "active_unacknowledged"), "the event")
        h = alarms(d, "history", aid)["history"]
        eq([x["action"] for x in h], ["raised"], "one history entry for a burst")
        eq(h[0]["by"], "plugin:raiser", "raised by the script plugin")
        # The plugin index asks exactly what the plugin declares, and that is all it was granted.
        name, caps = plugin_meta(ALARMS_SO)
        entry = d.ok("catalog", "show", "plugin", "alarms")
        eq((entry["version"], entry["sdk"]), ("1.1.0", "1.1"), "index entry")
        eq(sorted(entry["capabilities"]), sorted(caps), "the index lists what alarms.so declares")
        info = d.ok("plugins", "info", name)
        eq(info["state"], "running", "running with exactly its declared capabilities")


def case_a_repeat_with_another_severity_changes_it():
    with node() as d:
        a = request(d, SMOKE)
        b = request(d, dict(SMOKE, severity="critical"))
        c = request(d, dict(SMOKE, severity="minor"))
        eq(len({a["id"], b["id"], c["id"]}), 1, "one alarm")
        eq(alarms(d, "show", a["id"])["severity"], "minor", "down again")
        h = alarms(d, "history", a["id"])["history"]
        eq([(x["action"], x.get("from"), x.get("to")) for x in h],
           [("raised", None, "major"), ("severity", "major", "critical"),
            ("severity", "critical", "minor")], "recorded")
        sev = [e["payload"]["severity"] for e in journal(d, "alarm/smoke/raised")]
        eq(sev, ["major", "critical", "minor"], "each change published")


def case_every_lifecycle_move_and_the_illegal_ones():
    with node() as d:
        a = alarms(d, "raise", "door_forced", "device:door-1", YUELAN, "critical", "door", "3")
        aid = a["id"]
        eq(alarms(d, "show", aid)["details"], "door 3", "details")
        eq(alarms(d, "show", aid)["state"], "active_unacknowledged", "raised")
        r = alarms(d, "ack", aid, "on", "my", "way")
        eq((r["state"], r["acknowledged"]), ("active_acknowledged", True), "acked")
        refused(d, f"alarm {aid} is active_acknowledged: cannot ack it", "ack", aid)
        r = alarms(d, "assign", aid, "li_wei", "night", "shift")
        eq(r["assignee"], "li_wei", "assigned")
        r = alarms(d, "clear", aid, "door", "closed")
        eq((r["state"], r["active"]), ("cleared_acknowledged", False), "cleared")
        check(r["cleared_at"] >= r["acknowledged_at"] >= r["first_at"], r)
        refused(d, f"alarm {aid} is cleared_acknowledged: cannot clear it", "clear", aid)
        refused(d, f"alarm {aid} is cleared_acknowledged: cannot ack it", "ack", aid)
        refused(d, f"alarm {aid} is cleared_acknowledged: cannot assign it", "assign", aid,
                "li_wei")
        h = alarms(d, "history", aid)["history"]
        eq([(x["action"], x.get("from"), x.get("to"), x.get("why")) for x in h],
           [("raised", None, "critical", "door 3"),
            ("acked", "active_unacknowledged", "active_acknowledged", "on my way"),
            ("assigned", "", "li_wei", "night shift"),
            ("cleared", "active_acknowledged", "cleared_acknowledged", "door closed")],
           "history")
        check(all(x["by"] == "street_admin" for x in h), h)
        # The other way round: cleared first, acknowledged after.
        b = alarms(d, "raise", "door_forced", "device:door-1", YUELAN, "critical")["id"]
        check(b != aid, "a raise after the clear is a new alarm")
        eq(alarms(d, "clear", b)["state"], "cleared_unacknowledged", "cleared first")
        eq(alarms(d, "assign", b, "wang")["assignee"], "wang", "assign while cleared")
        eq(alarms(d, "ack", b)["state"], "cleared_acknowledged", "acked after")
        # Notes.
        n = alarms(d, "note", b, "checked", "on", "site")
        eq((n["text"], n["by"]), ("checked on site", "street_admin"), "note")
        eq([x["text"] for x in alarms(d, "show", b)["notes"]], ["checked on site"], "notes")
        # Each move published with the alarm's scope.
        topics = [(e["topic"], e["scope"]) for e in journal(d)]
        eq(topics, [("alarm/door_forced/" + w, YUELAN) for w in
                    ("raised", "acked", "assigned", "cleared", "raised", "cleared", "assigned",
                     "acked")], "events")
        # Listing and filters.
        c = alarms(d, "raise", "gas", "device:g-1", YUELAN, "warning")["id"]
        eq([x["id"] for x in alarms(d, "list", "--active")["alarms"]], [c], "active")
        eq(sorted(x["id"] for x in alarms(d, "list")["alarms"]), sorted([aid, b, c]), "all")
        eq([x["id"] for x in alarms(d, "list", "--severity", "critical")["alarms"]], [aid, b],
           "by severity")
        eq(alarms(d, "list", "--scope", QIMING)["count"], 0, "by scope")
        refused(d, "--severity: 'awful' is not one of critical, major, minor, warning, "
                "indeterminate", "list", "--severity", "awful")
        refused(d, "list: unknown argument '--colour'", "list", "--colour")
        refused(d, "no alarm nope here", "ack", "nope")
        # Cleared behind the plugin's back (data put): a raise with another severity, which
        # is written at once, finds it cleared and makes a new alarm.
        x = alarms(d, "raise", "gas", "device:g-7", YUELAN, "minor")["id"]
        rec = d.ok("data", "get", "alarms", x)
        del rec["id"], rec["scope"]
        d.ok("data", "put", "alarms", "--scope", YUELAN, "--id", x, js(dict(rec, active=False)))
        r = alarms(d, "raise", "gas", "device:g-7", YUELAN, "major")
        check(r["created"] and r["id"] != x, f"a new alarm: {r}")


def case_a_community_operator_sees_and_acks_only_its_own():
    with node() as d:
        y = alarms(d, "raise", "smoke", "device:sd-1", YUELAN, "major")["id"]
        q = alarms(d, "raise", "smoke", "device:sd-9", QIMING, "major")["id"]
        op_y = d.account("op_y", "operator", node=YUELAN)
        viewer = d.account("viewer1", "viewer", node=STREET)
        rc, out, err = d.cli("alarms", "list", env={"LINLI_SESSION": op_y})
        eq((rc, [x["id"] for x in out["alarms"]]), (0, [y]), f"op_y lists its own: {err}")
        refused(d, f"no alarm {q} here", "show", q, token=op_y)
        refused(d, f"no alarm {q} here", "ack", q, token=op_y)
        refused(d, f"no alarm {q} here", "history", q, token=op_y)
        rc, out, err = d.cli("alarms", "ack", y, env={"LINLI_SESSION": op_y})
        eq((rc, out and out["state"]), (0, "active_acknowledged"), f"op_y acks its own: {err}")
        eq(alarms(d, "history", y)["history"][-1]["by"], "op_y", "acked by op_y")
        eq([(e["scope"], e["payload"]["by"]) for e in journal(d, "alarm/smoke/acked")],
           [(YUELAN, "op_y")], "published for yuelan, by op_y")
        # Raising for a sibling's community is refused too.
        refused(d, "alarms.raise", "raise", "smoke", "device:x", QIMING, "minor", token=op_y)
        # A viewer sees both and acts on none.
        rc, out, err = d.cli("alarms", "list", env={"LINLI_SESSION": viewer})
        eq(sorted(x["id"] for x in out["alarms"]), sorted([y, q]), "the viewer lists")
        err = refused(d, "alarms.ack", "ack", q, token=viewer)
        check("viewer" in err, err)
        refused(d, "alarms.clear", "clear", q, token=viewer)
        refused(d, "alarms.assign", "assign", q, "x", token=viewer)
        eq(alarms(d, "show", q)["state"], "active_unacknowledged", "untouched")


def case_bad_raises_are_refused_with_clear_errors():
    with node() as d:
        for payload, needle in (
                ({"source": "device:a", "severity": "major"}, "missing type"),
                (dict(SMOKE, type="Smoke!"), "type 'Smoke!' must be [a-z][a-z0-9_]*"),
                (dict(SMOKE, severity="awful"), "severity 'awful' is not one of critical, "
                 "major, minor, warning, indeterminate"),
                ({"type": "smoke", "source": "device:a"}, "missing severity"),
                ({"type": "smoke", "severity": "major"}, "missing source"),
                (dict(SMOKE, source="door-1"), "source 'door-1' is not KIND:NAME"),
                (dict(SMOKE, source="device:a b"), "source 'device:a b': 'a b' is not a device id"),
                (dict(SMOKE, colour="red"), "unknown field 'colour'"),
                (dict(SMOKE, severity=3), "field 'severity' must be a string"),
                (dict(SMOKE, details="x" * 1025), "details: 1025 bytes, longer than 1024")):
            a = request(d, payload)
            eq(a.get("code"), "LINLI_EINVAL", f"{payload}: {a}")
            check(f"alarmreq/raise: {needle}" in a["status"], f"{needle!r} not in {a}")
        # A scope above the dataset's level: the store's reason.
        a = request(d, SMOKE, scope=STREET)
        check("alarms records live at the community level" in a["status"], a)
        refused(d, "usage: alarms raise TYPE SOURCE SCOPE SEVERITY", "raise", "smoke")
        refused(d, "severity 'info' is not one of", "raise", "smoke", "device:a", YUELAN,
                "info")
        refused(d, "'NO ONE' is not an account name", "assign", "x", "NO ONE")
        eq(d.ok("data", "query", "alarms")["count"], 0, "nothing stored")


def case_a_clear_request_clears_the_active_alarm_of_a_source_and_type():
    """alarmreq/clear {type, source, why} at the alarm's scope clears it as the requester
    (history, alarm/<type>/cleared); the next raise is a new alarm; a raise may name the
    incident it is about. What is not active, or not well formed, is refused by name."""
    with node() as d:
        aid = request(d, SMOKE)["id"]
        request(d, SMOKE)  # a folded repeat is written before the clear
        other = request(d, dict(SMOKE, source="device:sd-2"))["id"]
        r = clear(d, {"type": "smoke", "source": "device:sd-1", "why": "smoke gone"})
        eq(r, {"id": aid, "cleared": True}, "the answer")
        a = alarms(d, "show", aid)
        eq((a["state"], a["count"]), ("cleared_unacknowledged", 2), "cleared, count kept")
        eq(alarms(d, "show", other)["state"], "active_unacknowledged", "another source stays")
        h = alarms(d, "history", aid)["history"][-1]
        eq((h["action"], h["by"], h["from"], h["to"], h["why"]),
           ("cleared", "plugin:raiser", "active_unacknowledged", "cleared_unacknowledged",
            "smoke gone"), "history")
        ev = journal(d, "alarm/smoke/cleared")
        eq([(e["payload"]["id"], e["payload"]["by"]) for e in ev], [(aid, "plugin:raiser")],
           "published")
        again = request(d, SMOKE)
        check(again["created"] and again["id"] != aid, f"a new alarm after the clear: {again}")
        eq(alarms(d, "stats")["active"], 2, "the new one and the other")
        no_why = clear(d, {"type": "smoke", "source": "device:sd-2"})
        eq(no_why["id"], other, "without why")
        eq(alarms(d, "history", other)["history"][-1]["why"], "cleared by request", "why")
        # An alarm about an incident (a case's 督办) names it.
        case = request(d, dict(SMOKE, type="incident_overdue", source="record:incidents/c-1",
                               incident="c-1"))["id"]
        eq(alarms(d, "show", case)["incident"], "c-1", "the case it is about")
        for payload, scope, code, needle in (
                ({"type": "smoke", "source": "device:sd-1"}, QIMING, "LINLI_ENOENT",
                 f"no active alarm of type smoke from device:sd-1 at {QIMING}"),
                ({"type": "gas", "source": "device:sd-1"}, YUELAN, "LINLI_ENOENT",
                 f"no active alarm of type gas from device:sd-1 at {YUELAN}"),
                ({"type": "smoke", "source": "device:sd-2"}, YUELAN, "LINLI_ENOENT",
                 "no active alarm of type smoke from device:sd-2"),
                ({"source": "device:sd-1"}, YUELAN, "LINLI_EINVAL", "missing type"),
                ({"type": "Smoke!", "source": "device:sd-1"}, YUELAN, "LINLI_EINVAL",
                 "type 'Smoke!' must be [a-z][a-z0-9_]*"),
                ({"type": "smoke"}, YUELAN, "LINLI_EINVAL", "missing source"),
                ({"type": "smoke", "source": "sd-1"}, YUELAN, "LINLI_EINVAL",
                 "source 'sd-1' is not KIND:NAME"),
                ({"type": "smoke", "source": "device:sd-1", "colour": "red"}, YUELAN,
                 "LINLI_EINVAL", "unknown field 'colour' (it takes type, source, why, id)"),
                ({"type": 3, "source": "device:sd-1"}, YUELAN, "LINLI_EINVAL",
                 "field 'type' must be a string"),
                ({"type": "smoke", "source": "device:sd-1", "why": "x" * 513}, YUELAN,
                 "LINLI_EINVAL", "why: 513 bytes, longer than 512")):
            a = clear(d, payload, scope)
            eq(a.get("code"), code, f"{payload}: {a}")
            check(f"alarmreq/clear: {needle}" in a["status"], f"{needle!r} not in {a}")
        eq(alarms(d, "show", again["id"])["state"], "active_unacknowledged", "nothing cleared")
        a = request(d, dict(SMOKE, incident="no/such"))
        check(a.get("code") == "LINLI_EINVAL" and
              "alarmreq/raise: incident 'no/such' is not a record id" in a["status"], a)


def case_old_alarms_are_migrated_at_start():
    old_cat = os.path.join(tempfile.mkdtemp(prefix="linli-it-cat-"), "catalog")
    shutil.copytree(CATALOG, old_cat)
    write(os.path.join(old_cat, "datasets", "alarms.cfg"), OLD_ALARMS)
    d = Daemon()
    try:
        # A node of the earlier catalog, without the plugin, stores alarms in the old shape.
        node(d=d, catalog=old_cat, plugin=False)
        d.start()
        admin(d)
        old = {  # ids of our own
            "a-raised": {"topic": "dev/smoke/sd-7/event/alarm", "event": "alarm",
                         "severity": "info", "status": "raised", "device": "sd-7",
                         "raised_at": "2026-01-01T00:00:00Z", "message": "smoke"},
            "a-acked": {"topic": "rules/x", "event": "Door Forced", "severity": "major",
                        "status": "acknowledged", "rule": "doors",
                        "raised_at": "2026-01-02T00:00:00Z",
                        "acknowledged_at": "2026-01-02T00:05:00Z",
                        "acknowledged_by": "li_wei", "location": {"lat": 31.7, "lon": 117.3}},
            "a-cleared": {"topic": "dev/hydrant/h-2/event/low_pressure",
                          "event": "low_pressure", "severity": "critical",
                          "status": "cleared", "raised_at": "2026-01-03T00:00:00Z",
                          "cleared_at": "2026-01-03T01:00:00Z"},
        }
        for aid, rec in old.items():
            d.ok("data", "put", "alarms", "--scope", YUELAN, "--id", aid, js(rec))
        eq(d.stop(), 0, "stop the old node")
    except BaseException:
        d.cleanup()
        shutil.rmtree(os.path.dirname(old_cat), ignore_errors=True)
        raise
    try:
        # The new catalog and the plugin: migrated at start, none refused.
        with node(d=d) as d:
            check("migrated 3 alarms stored under the earlier definition" in d.logtext(),
                  d.logtext()[-2000:])
            r = d.ok("data", "get", "alarms", "a-raised")
            eq({k: r.get(k) for k in ("type", "source", "severity", "active", "acknowledged",
                                      "first_at", "last_at", "details", "device", "count")},
               {"type": "alarm", "source": "device:sd-7", "severity": "indeterminate",
                "active": True, "acknowledged": False, "first_at": 1767225600000,
                "last_at": 1767225600000, "details": "smoke", "device": "sd-7", "count": 1},
               "a raised alarm")
            check("status" not in r and "raised_at" not in r, r)
            r = d.ok("data", "get", "alarms", "a-acked")
            eq((r["type"], r["source"], r["active"], r["acknowledged"], r["location"]),
               ("door_forced", "rule:doors", True, True, {"lat": 31.7, "lon": 117.3}),
               "an acknowledged one")
            h = alarms(d, "history", "a-acked")["history"]
            eq([(x["action"], x["by"]) for x in h],
               [("migrated", "plugin:alarms"), ("acked", "li_wei")], "who acknowledged it")
            r = d.ok("data", "get", "alarms", "a-cleared")
            eq((r["source"], r["active"], r["acknowledged"], r["severity"]),
               ("device:h-2", False, False, "critical"), "a cleared one")
            eq(alarms(d, "show", "a-cleared")["state"], "cleared_unacknowledged", "its state")
            # The migrated active alarm takes the repeats of its source and type.
            r = alarms(d, "raise", "alarm", "device:sd-7", YUELAN, "indeterminate")
            eq((r["id"], r["created"], r["count"]), ("a-raised", False, 2), "folded into it")
            eq(alarms(d, "ack", "a-raised")["state"], "active_acknowledged", "acked")
            eq(d.stop(), 0, "stop")
            # A second start has nothing to migrate.
            d.start()
            admin(d)
            eq(d.logtext().count("migrated 3 alarms"), 1, "migrated once")
            eq(alarms(d, "show", "a-raised")["state"], "active_acknowledged", "kept")
    finally:
        shutil.rmtree(os.path.dirname(old_cat), ignore_errors=True)


def case_state_survives_restart_and_kill_9():
    with node() as d:
        a = request(d, SMOKE)["id"]
        lua(d, f"return RAISE(9, {lua_table(SMOKE)}, {json.dumps(YUELAN)})")
        eq(answers(d, 10)[-1]["count"], 10, "folded")
        b = alarms(d, "raise", "gas", "device:g-1", YUELAN, "minor")["id"]
        c = alarms(d, "raise", "leak", "device:w-1", YUELAN, "warning")["id"]
        alarms(d, "ack", b)
        alarms(d, "clear", c)
        wait_for(lambda: d.ok("data", "get", "alarms", a)["count"] == 10, "count written")
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait()
        d.start()
        admin(d)
        eq(alarms(d, "stats")["active"], 2, "two active alarms loaded")
        st = {x["id"]: (x["state"], x["count"]) for x in alarms(d, "list")["alarms"]}
        eq(st, {a: ("active_unacknowledged", 10), b: ("active_acknowledged", 1),
                c: ("cleared_unacknowledged", 1)}, "states after kill -9")
        # Repeats still fold into the alarms that were active; a cleared one is done.
        eq(request(d, SMOKE)["id"], a, "folds after the restart")
        eq(alarms(d, "show", a)["count"], 11, "count")
        r = alarms(d, "raise", "leak", "device:w-1", YUELAN, "warning")
        check(r["created"] and r["id"] != c, r)
        eq(d.stop(), 0, "clean stop")
        d.start()
        admin(d)
        eq(alarms(d, "show", a)["count"], 11, "after a clean restart")


def case_auto_expiry_per_type_also_after_a_restart():
    cfg = "plugins = { alarms = { expire_s = { smoke = 60; door_forced = 600; }; }; };\n"
    with clocked(node(extra=cfg)) as d:
        s = alarms(d, "raise", "smoke", "device:sd-1", YUELAN, "major")["id"]
        g = alarms(d, "raise", "gas", "device:g-1", YUELAN, "minor")["id"]
        d.ok("clock", "advance", "50s")
        alarms(d, "raise", "smoke", "device:sd-1", YUELAN, "major")  # a repeat: 60 s more
        d.ok("clock", "advance", "40s")
        eq(alarms(d, "show", s)["state"], "active_unacknowledged", "raised again 40 s ago")
        d.ok("clock", "advance", "21s")
        wait_for(lambda: alarms(d, "show", s)["state"] == "cleared_unacknowledged",
                 "the smoke alarm expired")
        eq(alarms(d, "show", g)["state"], "active_unacknowledged", "gas does not expire")
        h = alarms(d, "history", s)["history"][-1]
        eq((h["action"], h["by"], h["why"]), ("cleared", "plugin:alarms",
                                              "expired: not raised for 60 s"), "history")
        eq([e["payload"]["by"] for e in journal(d, "alarm/smoke/cleared")], ["plugin:alarms"],
           "published")
        # An alarm raised before a restart expires after it, from its stored last time.
        dr = alarms(d, "raise", "door_forced", "device:door-1", YUELAN, "critical")["id"]
        eq(d.stop(), 0, "stop")
        d.start()
        admin(d)
        # (the restart runs on the real clock again: 111 s behind the stored last time)
        d.ok("clock", "advance", "590s")
        eq(alarms(d, "show", dr)["state"], "active_unacknowledged", "not yet")
        d.ok("clock", "advance", "130s")
        wait_for(lambda: alarms(d, "show", dr)["state"] == "cleared_unacknowledged",
                 "the door alarm expired after the restart")
        eq(alarms(d, "stats")["expired"], 1, "counted since the start")
    # A bad setting stops the plugin with the key named; linlid runs on.
    for bad, needle in (("expire_s = { smoke = \"1h\"; };",
                         "plugins.alarms.expire_s.smoke: must be whole seconds, 1 to 7776000"),
                        ("expire_s = { Smoke = 5; };",
                         "plugins.alarms.expire_s.Smoke: not an alarm type"),
                        ("expire = 5;",
                         "plugins.alarms.expire: unknown key (it takes expire_s, escalate, flood, incident)")):
        with node(extra=f"plugins = {{ alarms = {{ {bad} }}; }};\n") as d:
            info = d.ok("plugins", "info", "alarms")
            check(info["state"] == "failed" and needle in info["reason"], f"{bad}: {info}")


def case_escalation_ladder_per_type_resumes_after_a_restart():
    cfg = "plugins = { alarms = { escalate = { smoke = [ 300, 900 ]; gas = [ 60 ]; }; }; };\n"
    with clocked(node(extra=cfg)) as d:
        s = alarms(d, "raise", "smoke", "device:sd-1", YUELAN, "major")["id"]
        g = alarms(d, "raise", "gas", "device:g-1", YUELAN, "minor")["id"]
        k = alarms(d, "raise", "gas", "device:g-2", YUELAN, "minor")["id"]
        lk = alarms(d, "raise", "leak", "device:w-1", YUELAN, "minor")["id"]
        alarms(d, "ack", k)  # acknowledged: never escalated
        # (the test clock runs on from the real one: "not yet" keeps a margin for slow builds)
        d.ok("clock", "advance", "240s")
        wait_for(lambda: alarms(d, "show", g).get("escalation") == 1, "gas re-notified")
        eq(alarms(d, "show", s).get("escalation"), None, "smoke not yet")
        d.ok("clock", "advance", "61s")
        wait_for(lambda: alarms(d, "show", s).get("escalation") == 1, "smoke re-notified")
        h = alarms(d, "history", s)["history"][-1]
        eq((h["action"], h["from"], h["to"], h["why"], h["by"]),
           ("escalated", "0", "1", "unacknowledged for 300 s: re-notified", "plugin:alarms"),
           "history")
        ev = [(e["payload"]["id"], e["payload"]["escalation"], e["scope"])
              for e in journal(d, "alarm/")
              if e["topic"].endswith("/escalated")]
        eq(sorted(ev), sorted([(g, 1, YUELAN), (s, 1, YUELAN)]), "published")
        eq((alarms(d, "show", k).get("escalation"), alarms(d, "show", lk).get("escalation")),
           (None, None), "acknowledged, or a type without a ladder")
        # The next step comes after a restart, from the stored first time.
        eq(d.stop(), 0, "stop")
        d.start()
        admin(d)
        d.ok("clock", "advance", "905s")
        wait_for(lambda: alarms(d, "show", s).get("escalation") == 2, "smoke supervised")
        eq(alarms(d, "history", s)["history"][-1]["why"],
           "unacknowledged for 900 s: supervised by the tier above (督办)", "why")
        eq(alarms(d, "show", g)["escalation"], 1, "gas has one step only")
        eq(alarms(d, "stats")["escalated"], 1, "escalations since the start")
    with node(extra="plugins = { alarms = { escalate = { smoke = [ 900, 300 ]; }; }; };\n") as d:
        info = d.ok("plugins", "info", "alarms")
        check(info["state"] == "failed" and "plugins.alarms.escalate.smoke: must be [ RENOTIFY_S ]"
              in info["reason"], info)


def case_a_flood_of_new_alarms_becomes_one_summary_alarm():
    cfg = "plugins = { alarms = { flood = { smoke = [ 3, 600 ]; }; }; };\n"
    with clocked(node(extra=cfg)) as d:
        got = [alarms(d, "raise", "smoke", f"device:sd-{i}", YUELAN, "major") for i in range(6)]
        check(all(r["created"] for r in got[:4]), f"3 alarms, then the summary: {got}")
        summary = got[3]["id"]
        eq([r["id"] for r in got[3:]], [summary] * 3, "the rest fold into the summary")
        s = alarms(d, "show", summary)
        eq((s["source"], s["type"], s["count"]), ("plugin:alarms", "smoke", 3), "summary")
        check(s["details"].startswith("flood: more new smoke alarms at " + YUELAN), s)
        # Repeats of the three are repeats, not new alarms; another scope has its own window.
        eq(alarms(d, "raise", "smoke", "device:sd-0", YUELAN, "major")["id"], got[0]["id"],
           "a repeat folds as ever")
        check(alarms(d, "raise", "smoke", "device:sd-9", QIMING, "major")["created"], "qiming")
        eq(d.ok("data", "query", "alarms")["count"], 5, "3 + the summary + qiming's")
        eq(alarms(d, "stats")["flooded"], 3, "raises folded into the summary")
        # After the window, new alarms are single again.
        d.ok("clock", "advance", "601s")
        r = alarms(d, "raise", "smoke", "device:sd-7", YUELAN, "major")
        check(r["created"] and r["id"] != summary, r)
    with node(extra="plugins = { alarms = { flood = { smoke = [ 0, 60 ]; }; }; };\n") as d:
        info = d.ok("plugins", "info", "alarms")
        check(info["state"] == "failed" and "plugins.alarms.flood.smoke: must be [ N, WINDOW_S ]"
              in info["reason"], info)


def case_shelving_a_type_or_source_for_a_window():
    with clocked(node()) as d:
        sh = alarms(d, "shelve", "type", "smoke", YUELAN, "1h", "fire", "drill")
        eq((sh["type"], sh["why"], sh["by"], sh["scope"]), ("smoke", "fire drill",
                                                            "street_admin", YUELAN), "shelf")
        eq([(e["scope"], e["payload"]["id"]) for e in journal(d, "alarm/smoke/shelved")],
           [(YUELAN, sh["id"])], "published")
        a = request(d, SMOKE)
        eq((a.get("shelved"), a.get("shelf"), a.get("id")), (True, sh["id"], None),
           f"a raise under the shelf: {a}")
        check(request(d, SMOKE, scope=QIMING)["created"], "another community is not shelved")
        check(request(d, dict(SMOKE, type="gas"))["created"], "another type is not shelved")
        src = alarms(d, "shelve", "source", "device:g-9", STREET, "10m", "maintenance")
        eq(alarms(d, "raise", "gas", "device:g-9", YUELAN, "minor")["shelf"], src["id"],
           "a source shelved for the whole street")
        eq(sorted(x["id"] for x in alarms(d, "shelves")), sorted([sh["id"], src["id"]]),
           "shelves")
        eq(d.ok("data", "query", "alarms", "--where", "type=smoke")["count"], 1, "only qiming's")
        # Who may shelve: an operator in its own community only; a viewer never.
        op_y = d.account("op_y", "operator", node=YUELAN)
        viewer = d.account("viewer1", "viewer", node=STREET)
        refused(d, "alarms.shelve", "shelve", "type", "gas", QIMING, "1h", "x", token=op_y)
        refused(d, "alarms.shelve", "shelve", "type", "gas", YUELAN, "1h", "x", token=viewer)
        rc, out, err = d.cli("alarms", "shelve", "type", "leak", YUELAN, "1h", "pipe", "work",
                             env={"LINLI_SESSION": op_y})
        eq(rc, 0, f"op_y shelves its own community: {err}")
        # Bad shelves.
        refused(d, "shelve: 'colour' is not type or source", "shelve", "colour", "x", YUELAN,
                "1h", "y")
        refused(d, "'forever' is not a duration of 1 s to 30 d", "shelve", "type", "gas",
                YUELAN, "forever", "y")
        refused(d, "'31d' is not a duration", "shelve", "type", "gas", YUELAN, "31d", "y")
        refused(d, "usage: alarms shelve", "shelve", "type", "gas", YUELAN, "1h")
        # Shelves survive a restart, end at their time, and can be ended early.
        eq(d.stop(), 0, "stop")
        d.start()
        admin(d)
        eq(request(d, SMOKE).get("shelf"), sh["id"], "still shelved after a restart")
        d.ok("clock", "advance", "11m")
        check(alarms(d, "raise", "gas", "device:g-9", YUELAN, "minor")["created"],
              "the source's shelf ended")
        alarms(d, "unshelve", sh["id"])
        check(request(d, SMOKE)["created"], "unshelved")
        refused(d, "no shelf nope here", "unshelve", "nope")
        eq(alarms(d, "stats")["shelved"], 1, "raises dropped since the start")


def case_http_read_endpoints_act_as_the_key():
    port = free_port()
    with node(extra=f'http = {{ listen = "http://127.0.0.1:{port}"; }};\n') as d:
        web = object.__new__(http_api)  # test_http's curl, on this node's port
        web.port = port
        y = alarms(d, "raise", "smoke", "device:sd-1", YUELAN, "major")["id"]
        q = alarms(d, "raise", "smoke", "device:sd-9", QIMING, "critical")["id"]
        c = alarms(d, "raise", "gas", "device:g-1", YUELAN, "minor")["id"]
        alarms(d, "ack", y)
        alarms(d, "clear", c)
        key = d.ok("apikeys", "add", "screen", "--resources", "app:alarms", "--scope",
                   YUELAN)["key"]
        st, body, _ = web.curl("GET", "/api/v1/apps/alarms/alarms?active=true", key=key)
        eq((st, [x["id"] for x in body["alarms"]]), (200, [y]), f"active at yuelan: {body}")
        st, body, _ = web.curl("GET", "/api/v1/apps/alarms/alarms?severity=minor", key=key)
        eq([(x["id"], x["state"]) for x in body["alarms"]], [(c, "cleared_unacknowledged")],
           "by severity")
        st, body, _ = web.curl("GET", f"/api/v1/apps/alarms/alarms/{y}", key=key)
        eq((st, body["state"], body["scope"]), (200, "active_acknowledged", YUELAN), "show")
        st, body, _ = web.curl("GET", f"/api/v1/apps/alarms/alarms/{y}/history", key=key)
        eq([x["action"] for x in body["history"]], ["raised", "acked"], "history")
        st, body, _ = web.curl("GET", f"/api/v1/apps/alarms/alarms/{q}", key=key)
        eq(st, 404, f"a sibling's alarm is not found: {body}")
        st, body, _ = web.curl("GET", "/api/v1/apps/alarms/alarms?colour=red", key=key)
        check(st == 400 and "unknown parameter 'colour'" in body["error"]["message"], body)
        st, body, _ = web.curl("GET", "/api/v1/apps/alarms/alarms?severity=awful", key=key)
        check(st == 400 and "'awful' is not one of" in body["error"]["message"], body)
        only = d.ok("apikeys", "add", "wall", "--resources", "app:alarms/list", "--scope",
                    YUELAN)["key"]
        eq(web.curl("GET", "/api/v1/apps/alarms/alarms", key=only)[0], 200, "its route")
        eq(web.curl("GET", f"/api/v1/apps/alarms/alarms/{y}", key=only)[0], 403, "not show")
        eq(web.curl("GET", "/api/v1/apps/alarms/alarms")[0], 401, "no key")


if __name__ == "__main__":
    sys.exit(main(dict(globals())))
