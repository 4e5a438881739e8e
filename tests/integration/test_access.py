"""Integration tests of the access plugin (plugins/access/), through a real linlid.

The node is the community hefei/baohe/binhu/yuelan with the real catalog, the alarms and
access plugins granted exactly what they declare, and the test driver tdrv
(tests/plugins/tp_driver.c), whose console commands post a door's readings (`state`,
`passes_today`) and raise its events (card_ok, card_denied, face_ok, forced, ...) with
details such as holder=ID. Every alarm is read back from the alarms plugin, so each case
runs the whole path: device -> HAL -> bus -> access -> alarmreq/raise -> alarms -> store.
"""
import json
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import BUILD, SRC, PluginNode, check, eq, main, plugin_meta, wait_for  # noqa: E402

TP = os.path.abspath(os.environ.get("LINLI_TP_DIR", os.path.join(BUILD, "tests", "plugins")))
SOS = [os.path.join(BUILD, "plugins", "alarms", "alarms.so"),
       os.path.join(BUILD, "plugins", "access", "access.so"),
       os.path.join(TP, "tp_driver.so")]
CATALOG = os.path.join(SRC, "catalog")
YUELAN = "hefei/baohe/binhu/yuelan"
TYPES = ("door_forced", "door_held_open", "tailgating", "repeated_denials", "watchlist_hit")


def node(access="", clock=False):
    """A community linlid with alarms, access and tdrv; `access` is the plugins.access group."""
    return PluginNode("access", SOS, access, clock)


def door(d, dev, *opts):
    return d.ok("devices", "add", dev, "door", "tdrv", "ok", *opts)


def event(d, dev, name, *kv, n=1):
    for _ in range(n):
        eq(d.ok("tdrv", "event", dev, name, *kv)["rc"], 0, f"event {name} of {dev}")


def post(d, dev, res, kind, value):
    eq(d.ok("tdrv", "post", dev, res, kind, str(value))["rc"], 0, f"{res} of {dev}")


def stats(d):
    return d.ok("access", "stats")


def alarms(d, *args):
    """The alarms in the store, by (source, type)."""
    return {(a["source"], a["type"]): a for a in d.ok("alarms", "list", *args)["alarms"]}


def raised(d, want, what):
    """Wait until access's raises answered per type are `want` (others 0); the alarms."""
    full = {t: want.get(t, 0) for t in TYPES}
    wait_for(lambda: stats(d)["raised"] == full, what)
    return alarms(d)


def case_door_alarms_under_a_burst():
    """Forced (a burst folds into one alarm), held open (cleared when the door closes),
    tailgating (passes no card or face covers), repeated denials; stats; who may read
    them; the plugin index asks exactly what access.so declares."""
    cfg = ("held_open_s = 30; pass_window_s = 10; denials = 3; denials_window_s = 60; "
           "forced_on_open = true;")
    with node(cfg, clock=True) as d:
        door(d, "dr-1", "--building", "3", "--floor", "1")
        door(d, "dr-2", "--building", "3")
        door(d, "dr-9")  # no building
        # A burst of forced events: one alarm, every event counted.
        event(d, "dr-1", "forced", n=6)
        got = raised(d, {"door_forced": 6}, "six forced events")
        a = got[("device:dr-1", "door_forced")]
        eq((a["count"], a["severity"], a["scope"]), (6, "major", YUELAN), "folded into one")
        eq(d.ok("alarms", "show", a["id"])["details"],
           "the door reports it was forced at door dr-1 (building 3)", "where")
        # Held open: open for 30 s raises, closing clears it through alarmreq/clear. (A card
        # just before the opening: not forced.)
        event(d, "dr-2", "card_ok", "holder=r-1")
        post(d, "dr-2", "state", "str", "open")
        d.ok("clock", "advance", "20s")
        eq(stats(d)["raised"]["door_held_open"], 0, "open 20 s: not yet")
        eq(stats(d)["doors_open"], 1, "one door open")
        d.ok("clock", "advance", "11s")
        got = raised(d, {"door_forced": 6, "door_held_open": 1}, "open for 31 s")
        check(("device:dr-2", "door_forced") not in got, "opened with a card: not forced")
        held = got[("device:dr-2", "door_held_open")]
        eq((held["severity"], held["count"]), ("minor", 1), "held open")
        check(d.ok("alarms", "show", held["id"])["details"].startswith(
            "open for 3"), "details say how long")
        doors = {x["id"]: x for x in d.ok("access", "doors")["doors"]}
        eq(sorted(doors), ["dr-1", "dr-2", "dr-9"], "every door")
        eq((doors["dr-2"]["state"], doors["dr-2"]["alarms"], doors["dr-2"]["building"]),
           ("open", ["door_held_open"], "3"), "dr-2 as the console shows it")
        post(d, "dr-2", "state", "str", "closed")
        wait_for(lambda: stats(d)["cleared"]["door_held_open"] == 1, "closed: cleared")
        eq(d.ok("alarms", "show", held["id"])["state"], "cleared_unacknowledged",
           "cleared by its source; an operator still acknowledges it")
        h = d.ok("alarms", "history", held["id"])["history"]
        check(any(x["action"] == "cleared" and x["by"] == "plugin:access" and
                  x["why"] == "the door closed" for x in h), f"who cleared it: {h}")
        # forced_on_open: an opening with no card or face within 10 s is a forced door.
        post(d, "dr-9", "state", "str", "open")
        post(d, "dr-9", "state", "str", "closed")
        d.ok("clock", "advance", "3s")
        got = raised(d, {"door_forced": 7, "door_held_open": 1}, "opened without a card")
        eq(d.ok("alarms", "show", got[("device:dr-9", "door_forced")]["id"])["details"],
           "opened with no valid card or face within 10 s at door dr-9", "details")
        # Tailgating: each valid card or face covers one pass within 10 s.
        post(d, "dr-9", "passes_today", "int", 40)  # the first count is the baseline
        event(d, "dr-9", "card_ok", "holder=r-100")
        post(d, "dr-9", "passes_today", "int", 41)  # covered by the card
        event(d, "dr-9", "face_ok", "holder=r-101")
        post(d, "dr-9", "passes_today", "int", 44)  # one covered, two not
        d.ok("clock", "advance", "3s")
        got = raised(d, {"door_forced": 7, "door_held_open": 1, "tailgating": 1},
                     "two passes uncovered")
        tg = got[("device:dr-9", "tailgating")]
        eq((tg["severity"], tg["count"]), ("major", 1), "tailgating")
        eq(d.ok("alarms", "show", tg["id"])["details"],
           "2 passes with no valid card or face within 10 s at door dr-9", "details")
        # A card long before the pass covers nothing.
        event(d, "dr-9", "card_ok", "holder=r-102")
        d.ok("clock", "advance", "11s")
        post(d, "dr-9", "passes_today", "int", 45)
        d.ok("clock", "advance", "3s")
        got = raised(d, {"door_forced": 7, "door_held_open": 1, "tailgating": 2},
                     "a stale card covers nothing")
        eq(got[("device:dr-9", "tailgating")]["count"], 2, "the same alarm, again")
        # Repeated denials: 3 within 60 s raise; 2 are nothing; a new window starts after.
        event(d, "dr-1", "card_denied", "holder=r-7", n=2)
        d.ok("clock", "advance", "61s")
        event(d, "dr-1", "card_denied", "holder=r-7")
        event(d, "dr-1", "face_denied", "holder=r-7")
        eq(stats(d)["raised"]["repeated_denials"], 0, "two within the window: nothing")
        event(d, "dr-1", "face_denied", "holder=r-7")
        got = raised(d, {"door_forced": 7, "door_held_open": 1, "tailgating": 2,
                         "repeated_denials": 1}, "three denials within 60 s")
        rd = got[("device:dr-1", "repeated_denials")]
        eq(d.ok("alarms", "show", rd["id"])["details"],
           "3 denied cards or faces within 60 s at door dr-1 (building 3)", "details")
        st = stats(d)
        eq((sum(st["failed"].values()), st["watchlist"]["hits"]), (0, 0), "none failed")
        eq((st["config"]["held_open_s"], st["config"]["denials"],
            st["config"]["severity"]["door_forced"]), (30, 3, "major"), "the configuration")
        # 15 door events and each door's first word, its "online"; 4 states, 4 counts
        eq((st["events"], st["readings"]), (18, 8), "events and readings seen")
        check(st["device_reads"] <= 6, f"a burst is not a read of devices per event: {st}")
        # The command acts as its caller: access.stats needs an operator.
        viewer = d.account("viewer1", "viewer", node=YUELAN)
        rc, out, err = d.cli("access", "stats", env={"LINLI_SESSION": viewer})
        check(rc != 0 and "access.stats" in err, f"a viewer is refused: {rc} {err}")
        op = d.account("op1", "operator", node=YUELAN)
        rc, out, err = d.cli("access", "stats", env={"LINLI_SESSION": op})
        eq((rc, out and out["raised"]["door_forced"]), (0, 7), f"an operator reads them: {err}")
        # The plugin index asks exactly what access.so declares, all it was granted.
        name, caps = plugin_meta(SOS[1])
        entry = d.ok("catalog", "show", "plugin", "access")
        eq((name, entry["version"], entry["sdk"], entry["requires"]),
           ("access", "1.0.0", "1.1", ["alarms"]), "index entry")
        eq(sorted(entry["capabilities"]), sorted(caps), "the index lists what access.so declares")


def case_watchlist_hit_masked_for_an_operator_clear_for_a_granted_role():
    """A card or face of a watchlist entry: a row of watch_hits, an alarm whose source is
    the row and whose details name no one, access/watch_hit with ids only. An operator
    sees the hit masked; an account granted the sensitive data sees who it was."""
    with node() as d:
        door(d, "dr-1", "--building", "5")
        wl = json.dumps({"name": "张三", "id_number": "340104199001011234",
                         "category": "other", "face_id": "face-778", "card_no": "C-9001",
                         "alert_on_access": True})
        d.ok("data", "put", "watchlist", "--scope", YUELAN, "--id", "w-1", wl)
        old = json.dumps({"name": "李四", "id_number": "340104199001015678",
                          "category": "other", "card_no": "C-4000",
                          "valid_until": 1000})  # long expired
        d.ok("data", "put", "watchlist", "--scope", YUELAN, "--id", "w-2", old)
        sub = d.ok("events", "subscribe", "access/#")["id"]
        event(d, "dr-1", "card_ok", "holder=C-4000")  # an expired entry: no hit
        event(d, "dr-1", "card_ok", "holder=r-5")     # nobody of the watchlist
        event(d, "dr-1", "face_ok", "holder=face-778", "score=0.93")
        got = raised(d, {"watchlist_hit": 1}, "one hit")
        eq(len(got), 1, "one alarm")
        (src, typ), a = next(iter(got.items()))
        check(src.startswith("record:watch_hits/"), f"the source is the hit: {src}")
        hit = src.split("/", 1)[1]
        shown = d.ok("alarms", "show", a["id"])
        eq((shown["severity"], shown["details"]),
           ("critical", "restricted: watchlist hit at door dr-1 (building 5)"),
           "the alarm names no one")
        text = json.dumps(shown, ensure_ascii=False)
        for secret in ("张三", "w-1", "face-778", "3401"):
            check(secret not in text, f"{secret} not in the alarm: {text}")
        # The hit as the admin (no sensitive grant) sees it: masked, the alarm noted.
        row = wait_for(lambda: (lambda r: r if r.get("alarm") else None)(
            d.ok("data", "get", "watch_hits", hit)), "the alarm noted on the hit")
        eq((row["device"], row["kind"], row["building"], row["score"], row["seen_by"],
            row["alarm"]), ("dr-1", "face", "5", 0.93, "plugin:access", a["id"]), "the hit")
        eq((row["person"], row["matched"]), ("w**", "fac*-778"), "masked")
        # access/watch_hit carries ids only.
        evs = d.ok("events", "next", str(sub), "--wait", "2000")["events"]
        eq([(e["topic"], e["payload"]) for e in evs],
           [("access/watch_hit", {"hit": hit, "device": "dr-1", "building": "5"})],
           "ids only")
        # An operator: the alarm without a name, the hit and the entry masked.
        op = d.account("op1", "operator", node=YUELAN)
        rc, out, err = d.cli("alarms", "show", a["id"], env={"LINLI_SESSION": op})
        eq((rc, out and out["details"]), (0, shown["details"]), f"the operator's alarm {err}")
        ohit = d.ok("data", "get", "watch_hits", hit, env={"LINLI_SESSION": op})
        eq((ohit["person"], ohit["matched"]), ("w**", "fac*-778"), "masked for the operator")
        owl = d.ok("data", "get", "watchlist", "w-1", env={"LINLI_SESSION": op})
        check(owl["name"] != "张三" and "3401041990" not in owl["id_number"], owl)
        # An account granted the watchlist's and its hits' sensitive fields sees who it was.
        sec = d.account("sec1", "operator", node=YUELAN,
                        grants=("sensitive:watchlist", "sensitive:watch_hits"))
        shit = d.ok("data", "get", "watch_hits", hit, env={"LINLI_SESSION": sec})
        eq((shit["person"], shit["matched"]), ("w-1", "face-778"), "clear for the granted")
        swl = d.ok("data", "get", "watchlist", shit["person"], env={"LINLI_SESSION": sec})
        eq((swl["name"], swl["id_number"]), ("张三", "340104199001011234"), "who it was")
        rows = d.ok("audit", "--action", "data.read", "--limit", "1000")
        reads = {(r["who"], r["result"]) for r in rows if r["object"].startswith("watch")}
        check({("op1", "masked"), ("sec1", "allowed")} <= reads, f"reads audited: {reads}")
        # The door's own watchlist_hit event of someone this node does not list: an alarm
        # from the door, no row.
        event(d, "dr-1", "watchlist_hit", "holder=face-unknown")
        got = raised(d, {"watchlist_hit": 2}, "the door's own hit")
        check(("device:dr-1", "watchlist_hit") in got, f"from the door: {sorted(got)}")
        st = stats(d)
        eq((st["watchlist"]["hits"], st["watchlist"]["unmatched_door_hits"]), (1, 1), "hits")
        eq(d.ok("data", "query", "watch_hits")["count"], 1, "one row")


def case_lockdown_and_release_act_as_the_caller_and_are_audited():
    """`access lockdown B` sends set_mode always_locked and lock to each door of building
    B through the HAL as its caller, audited; release sends set_mode normal; a viewer is
    refused; an alarm type in lockdown_on locks the building down by itself."""
    with node('lockdown_on = [ "door_forced" ];') as d:
        door(d, "dr-1", "--building", "7")
        door(d, "dr-2", "--building", "7")
        door(d, "dr-3", "--building", "8")
        door(d, "dr-4", "--building", "9")
        op = d.account("op1", "operator", node=YUELAN)
        viewer = d.account("viewer1", "viewer", node=YUELAN)
        rc, out, err = d.cli("access", "lockdown", "7", env={"LINLI_SESSION": viewer})
        check(rc != 0 and "access.lockdown" in err, f"a viewer is refused: {err}")
        rc, out, err = d.cli("access", "lockdown", "42", env={"LINLI_SESSION": op})
        check(rc != 0 and "no door of building 42" in err, f"no such building: {err}")
        rc, out, err = d.cli("access", "lockdown", env={"LINLI_SESSION": op})
        check(rc != 0 and "give the building" in err, f"no building: {err}")
        rc, out, err = d.cli("access", "release", "7", "--why", "x", env={"LINLI_SESSION": op})
        check(rc != 0 and "unexpected '--why'" in err, f"release takes no --why: {err}")
        rc, out, err = d.cli("access", "lockdown", "7", "--scope", "hefei/baohe/binhu/other",
                             env={"LINLI_SESSION": op})
        check(rc != 0 and "outside its jurisdiction" in err, f"a sibling's building: {err}")
        out = d.ok("access", "lockdown", "7", "--why", "drill", env={"LINLI_SESSION": op})
        eq((out["doors"], out["mode"], sorted(x["door"] for x in out["sent"]), out["failed"]),
           (2, "always_locked", ["dr-1", "dr-2"], []), "both doors of building 7")
        wait_for(lambda: stats(d)["commands"]["done"] == 4, "four commands answered")
        doors = {x["id"]: x for x in d.ok("access", "doors", "--building", "7")["doors"]}
        eq({k: v["command"] for k, v in doors.items()},
           {"dr-1": "lock: done", "dr-2": "lock: done"}, "the last command of each")
        rows = d.ok("audit", "--via", "plugin:access", "--limit", "1000")
        mine = [(r["action"], r["object"]) for r in rows if r["who"] == "op1"]
        for want in (("access.lockdown", "building 7"), ("device.command", "dr-1"),
                     ("device.command", "dr-2")):
            check(want in mine, f"{want} audited under op1 via plugin:access: {mine}")
        lk = [r for r in rows if r["action"] == "access.lockdown"]
        check(lk and "2 of 2 doors sent; drill" in lk[0]["detail"], f"detail: {lk}")
        cmds = [r["detail"] for r in rows if r["action"] == "device.command" and
                r["object"] == "dr-1"]
        check(any("set_mode" in c and "always_locked" in c for c in cmds) and
              any(" lock " in c for c in cmds), f"set_mode and lock sent to dr-1: {cmds}")
        eq(stats(d)["locked_down"], [{"scope": YUELAN, "building": "7"}], "locked down")
        out = d.ok("access", "release", "7", env={"LINLI_SESSION": op})
        eq((out["mode"], len(out["sent"])), ("normal", 2), "released")
        wait_for(lambda: stats(d)["commands"]["done"] == 6, "two more answered")
        eq(stats(d)["locked_down"], [], "nothing locked down")
        check(any(r["action"] == "access.release" and r["who"] == "op1" for r in
                  d.ok("audit", "--via", "plugin:access", "--limit", "1000")), "release audited")
        # A forced door of building 8 locks building 8 down by itself, as the plugin.
        event(d, "dr-3", "forced")
        raised(d, {"door_forced": 1}, "forced")
        wait_for(lambda: stats(d)["commands"]["done"] == 8, "building 8 locked down")
        st = stats(d)
        eq((st["locked_down"], st["commands"]["lockdowns"], st["commands"]["releases"]),
           ([{"scope": YUELAN, "building": "8"}], 2, 1), "by the alarm")
        auto = [r for r in d.ok("audit", "--action", "access.lockdown", "--limit", "100")
                if r["object"] == "building 8"]
        check(auto and auto[0]["who"] == "plugin:access" and
              "alarm door_forced at door dr-3" in auto[0]["detail"], f"audited: {auto}")
        event(d, "dr-3", "forced")  # locked already: no second lockdown
        raised(d, {"door_forced": 2}, "forced again")
        eq(stats(d)["commands"]["lockdowns"], 2, "once per building")


def case_bad_config_refused_at_start_and_on_sighup():
    """A bad plugins.access group stops the plugin at load, naming file and key (alarms runs
    on); on SIGHUP a bad one is refused and logged, and the running values stay."""
    for bad, needle in (
            ("held_open_s = 0;",
             "linli.cfg: plugins.access.held_open_s: must be whole seconds, 1 to 86400"),
            ('severity = { smoke = "major"; };',
             "linli.cfg: plugins.access.severity.smoke: not an alarm type of access"),
            ('lockdown_on = [ "fire" ];',
             "linli.cfg: plugins.access.lockdown_on: 'fire' is not an alarm type of access"),
            ("hold_s = 60;",
             "linli.cfg: plugins.access.hold_s: unknown key (it takes held_open_s")):
        with node(bad) as d:
            info = d.ok("plugins", "info", "access")
            check(info["state"] == "failed" and needle in info["reason"], f"{bad}: {info}")
            eq(d.ok("plugins", "info", "alarms")["state"], "running", "alarms runs on")
    n = node('denials = 4; severity = { door_forced = "critical"; };')
    with n as d:
        eq(stats(d)["config"]["denials"], 4, "configured")
        refusals = (
            ("denials = 4; denials_window_s = 0;",
             "denials_window_s: must be whole seconds, 1 to 86400"),
            ('pass_window_s = "10";', "pass_window_s: must be whole seconds, 1 to 600"),
            ('severity = { tailgating = "loud"; };',
             "severity.tailgating: must be one of critical, major, minor, warning, "
             "indeterminate"))
        for k, (bad, needle) in enumerate(refusals, 1):
            n.configure(bad)
            d.kill_with(signal.SIGHUP)
            d.wait_log("access: reload refused, keeping the running configuration: linli.cfg: "
                       "plugins.access." + needle)
            wait_for(lambda: stats(d)["refused_reloads"] == k, f"refusal {k} counted")
        c = stats(d)["config"]
        eq((c["denials"], c["denials_window_s"], c["severity"]["door_forced"]),
           (4, 60, "critical"), "the old one runs")
        door(d, "dr-1")
        event(d, "dr-1", "forced")
        eq(raised(d, {"door_forced": 1}, "raised")[("device:dr-1", "door_forced")]["severity"],
           "critical", "with the running severity")
        n.configure("denials = 2; denials_window_s = 30;")
        d.kill_with(signal.SIGHUP)
        wait_for(lambda: stats(d)["config"]["denials_window_s"] == 30, "the good one applied")
        d.wait_log("access: configuration reloaded from linli.cfg (plugins.access)")
        c = stats(d)["config"]
        eq((c["denials"], c["severity"]["door_forced"]), (2, "major"), "defaults return")
        eq(stats(d)["refused_reloads"], len(refusals), "no new refusal")
        event(d, "dr-1", "card_denied", "holder=r-1", n=2)
        raised(d, {"door_forced": 1, "repeated_denials": 1}, "two denials now raise")


if __name__ == "__main__":
    sys.exit(main(globals()))
