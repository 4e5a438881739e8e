"""Integration tests of the lockers plugin (plugins/lockers/), through a real linlid.

The node is the community hefei/baohe/binhu/yuelan with the real catalog, the alarms and
lockers plugins granted exactly what they declare, and the test driver tdrv
(tests/plugins/tp_driver.c): a locker at address "ok" answers `open` at once, one at "err"
answers every command with "jammed"; `tdrv event` raises a locker's events. Alarms are
read back from the alarms plugin: device -> HAL -> bus -> lockers -> alarmreq/raise ->
alarms -> store. The node secret lives in <tmp>/node.secret, beside (not in) the data dir.
"""
import hashlib
import hmac
import os
import re
import shutil
import signal
import stat
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import (BUILD, SRC, Daemon, check, eq, finish, main, plugin_meta,  # noqa: E402
                     wait_for)

TP = os.path.abspath(os.environ.get("LINLI_TP_DIR", os.path.join(BUILD, "tests", "plugins")))
SOS = [os.path.join(BUILD, "plugins", "alarms", "alarms.so"),
       os.path.join(BUILD, "plugins", "lockers", "lockers.so"),
       os.path.join(TP, "tp_driver.so")]
CATALOG = os.path.join(SRC, "catalog")
YUELAN = "hefei/baohe/binhu/yuelan"
SIM = os.path.join(BUILD, "plugins", "sim", "sim.so")
TYPES = ("parcel_overdue", "code_lockout", "compartment_left_open", "compartment_jammed",
         "locker_forced", "locker_full")


class node:
    """A community linlid with alarms, lockers and tdrv; `cfg` is the plugins.lockers group
    after secret_file (secret=False: none)."""

    def __init__(self, cfg="", clock=False, secret=True, sim=None):
        self.d = Daemon(node=YUELAN, level="community", name="悦澜社区")
        self.secret = os.path.join(self.d.dir, "node.secret")
        self.pdir = os.path.join(self.d.dir, "plugins")
        os.makedirs(self.pdir)
        for so in SOS + ([SIM] if sim else []):
            shutil.copyfile(so, os.path.join(self.pdir, os.path.basename(so)))
        self.extra = (f'catalog_dir = "{CATALOG}";\n'
                      f'plugin_dirs = [ "{self.pdir}" ];\n')
        self.sim = f" sim = {{ {sim} }};" if sim else ""
        self.configure(cfg, secret)
        self.d.grant_declared(self.pdir)
        self.args = ("--test-clock",) if clock else ()

    def configure(self, cfg, secret=True):
        sf = f'secret_file = "{self.secret}"; ' if secret else ""
        self.d.write_config(node=YUELAN, level="community", name="悦澜社区",
                            extra=self.extra +
                            f"plugins = {{ lockers = {{ {sf}{cfg} }};{self.sim} }};\n")

    def __enter__(self):
        try:
            self.d.start(args=self.args)
            return self.d
        except BaseException:
            self.d.cleanup()
            raise

    def __exit__(self, etype, *rest):
        finish(self.d, etype)


def locker(d, dev, addr="ok"):
    return d.ok("devices", "add", dev, "locker", "tdrv", addr)


def deposit(d, dev, comp, house="3-1-502", *more):
    return d.ok("lockers", "deposit", dev, str(comp), "--house", house, *more)


def fails(d, *args, want):
    """Run linli ARGS, which must fail with `want` in its message; the message."""
    rc, out, err = d.cli(*args)
    check(rc != 0 and want in err, f"linli {' '.join(args)}: want {want!r}, got {rc} {err} {out}")
    return err


def stats(d):
    return d.ok("lockers", "stats")


def raised(d, want, what):
    """Wait until the raises answered per type are `want` (others 0); the alarms by
    (source, type)."""
    full = {t: want.get(t, 0) for t in TYPES}
    wait_for(lambda: stats(d)["raised"] == full, what)
    return {(a["source"], a["type"]): a for a in d.ok("alarms", "list")["alarms"]}


def advance(d, dur):
    """Move the test clock on (a move may end sessions: log in again)."""
    d.ok("clock", "advance", dur)
    d.login()


def state_of(d, parcel):
    return d.ok("lockers", "show", parcel)["state"]


def files_holding(root, needle):
    """The files under root whose bytes hold needle."""
    hits = []
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = os.path.join(dirpath, n)
            with open(p, "rb") as f:
                if needle in f.read():
                    hits.append(p)
    return hits


def case_deposit_and_pickup_the_code_never_in_clear():
    """A deposit shows an 8-digit code once and stores HMAC-SHA256(secret, "LOCKER:CODE")
    under a 0600 secret file outside the data dir; the right code opens the compartment
    through the HAL and marks the parcel picked up, a wrong one is refused and audited; a
    jammed compartment leaves the parcel deposited. Neither the data dir, nor the log,
    nor the audit holds a code; an operator without the grant sees the phone masked. Only
    a courier (the duty lockers.courier; admins need none) deposits."""
    with node("code_digits = 8;") as d:
        locker(d, "lk-1")
        locker(d, "lk-err", "err")
        # The secret: made at first start, 0600, 64 hex digits, outside the data dir.
        sf = os.path.join(d.dir, "node.secret")
        mode = stat.S_IMODE(os.stat(sf).st_mode)
        eq(mode, 0o600, "the secret file's mode")
        secret = open(sf).read().strip()
        eq(len(bytes.fromhex(secret)), 32, "32 random bytes in hex")
        check(not sf.startswith(d.data + os.sep), "outside the data dir")
        d.wait_log("parcel lockers: made the node secret " + sf)
        got = deposit(d, "lk-1", 3, "3-1-502", "--phone", "13800001111")
        code, parcel = got["code"], got["parcel"]
        check(len(code) == 8 and code.isdigit(), f"an 8-digit code: {got}")
        eq((got["locker"], got["compartment"], got["scope"]), ("lk-1", 3, YUELAN), "where")
        eq(got["free_until"] - got["deposited_at"], 24 * 3600 * 1000, "free for 24 h")
        rec = d.ok("data", "get", "parcels", parcel)
        want = hmac.new(bytes.fromhex(secret), f"lk-1:{code}".encode(), hashlib.sha256).hexdigest()
        eq(rec["code_hmac"], want, "the record keeps HMAC-SHA256(secret, 'lk-1:CODE')")
        eq((rec["state"], rec["compartment"], rec["courier"], rec["reminders"]),
           ("deposited", 3, "admin", 0), "the record")
        check("code" not in rec, f"no code field: {rec}")
        shown = d.ok("lockers", "show", parcel)
        check("code_hmac" not in shown and shown["overdue"] is False, f"show: {shown}")
        # Refusals name what is wrong.
        fails(d, "lockers", "deposit", "lk-1", "3", "--house", "1-1", want="compartment 3 of "
              f"locker lk-1 holds parcel {parcel} already")
        fails(d, "lockers", "deposit", "lk-1", "0", "--house", "1-1",
              want="COMPARTMENT: '0' is not a number 1 to 1000")
        fails(d, "lockers", "deposit", "lk-1", "4", want="--house: give the recipient's house")
        fails(d, "lockers", "deposit", "lk-9", "4", "--house", "1-1", want="locker lk-9: ")
        # A wrong code: refused, counted; the parcel stays.
        wrong = f"{(int(code) + 1) % 10**8:08d}"
        err = fails(d, "lockers", "pickup", "lk-1", wrong,
                    want="wrong code (1 of 5 within 600 s) for locker lk-1")
        check(wrong not in err, "the refusal does not repeat the code")
        eq(state_of(d, parcel), "deposited", "still there")
        # The right code: the compartment opens (the driver answers), then picked_up.
        got = d.ok("lockers", "pickup", "lk-1", code)
        eq((got["parcel"], got["compartment"], got["state"]), (parcel, 3, "opening"), "opening")
        wait_for(lambda: state_of(d, parcel) == "picked_up", "picked up")
        check(d.ok("lockers", "show", parcel)["picked_up_at"] >= rec["deposited_at"], "when")
        fails(d, "lockers", "pickup", "lk-1", code, want="wrong code (1 of 5")  # used once
        # A jammed compartment: the open fails, the parcel stays deposited.
        j = deposit(d, "lk-err", 7)
        d.ok("lockers", "pickup", "lk-err", j["code"])
        wait_for(lambda: stats(d)["pickups_failed"] == 1, "the open failed")
        eq(state_of(d, j["parcel"]), "deposited", "a jammed compartment keeps the parcel")
        st = stats(d)
        eq((st["deposits"], st["pickups"], st["wrong_codes"]), (2, 1, 2), "counters")
        # The audit: deposits, pickups allowed / denied / failed, never a code.
        all_audit = d.ok("audit", "--limit", "5000")
        acts = sorted((r["action"], r["result"]) for r in all_audit
                      if r["action"].startswith("lockers."))
        eq(acts, [("lockers.deposit", "allowed")] * 2 + [("lockers.pickup", "allowed")] +
           [("lockers.pickup", "denied")] * 3, "audited")
        check(any("compartment 7 did not open: jammed" in r.get("detail", "")
                  for r in all_audit), "the jammed open audited")
        check(all(r.get("via") == "plugin:lockers" for r in all_audit
                  if r["action"] == "lockers.deposit"), "deposits filed under the caller")
        all_audit = str(all_audit)
        opened = d.ok("audit", "--action", "device.command", "--limit", "100")
        check(len(opened) >= 2, f"the opens are audited as device commands: {opened}")
        # An operator without the sensitive grant: the phone masked, the caller acting.
        op = d.account("op1", "operator", node=YUELAN)
        rows = d.ok("lockers", "list", "--locker", "lk-1", env={"LINLI_SESSION": op})["parcels"]
        eq(len(rows), 1, "one parcel at lk-1")
        check(rows[0]["phone"] != "13800001111" and "code_hmac" not in rows[0],
              f"masked for an operator: {rows[0]}")
        viewer = d.account("v1", "viewer", node=YUELAN)
        rc, out, err = d.cli("lockers", "deposit", "lk-1", "5", "--house", "1",
                             env={"LINLI_SESSION": viewer})
        check(rc != 0 and "lockers.deposit" in err, f"a viewer may not deposit: {err}")
        # Deposits are a courier's: an operator without the duty may not; holding
        # lockers.courier it may, and is the parcel's courier.
        rc, out, err = d.cli("lockers", "deposit", "lk-1", "5", "--house", "1",
                             env={"LINLI_SESSION": op})
        check(rc != 0 and "action lockers.deposit needs the duty lockers.courier, which 'op1' "
              "does not hold" in err, f"an operator without the duty: {err}")
        d.ok("accounts", "assign", "op1", "lockers.courier")
        courier = d.login("op1", "Another-Passw0rd-1")
        c = d.ok("lockers", "deposit", "lk-1", "5", "--house", "1-2-301",
                 env={"LINLI_SESSION": courier})
        eq((d.ok("data", "get", "parcels", c["parcel"])["courier"], c["compartment"]),
           ("op1", 5), "the courier's deposit")
        codes = [code, j["code"], c["code"]]
        d.stop()
        # Nowhere in clear: not in the data dir (the HMAC is: the grep works), the log,
        # the audit.
        check(files_holding(d.data, want.encode()), "the HMAC is found in the store files")
        for c in codes:
            eq(files_holding(d.data, c.encode()), [], f"code {c} in the data dir")
            check(c not in d.logtext(), f"code {c} in the log")
            check(c not in all_audit, f"code {c} in the audit")
        # The plugin index asks exactly what lockers.so declares.
        name, caps = plugin_meta(SOS[1])
        eq(name, "lockers", "plugin name")


def case_wrong_codes_lock_the_locker_out():
    """max_attempts wrong codes within attempt_window_s: that locker refuses every code,
    the right one too, for lockout_s (audited, alarm code_lockout); other lockers go on;
    after the lockout the right code opens; the window slides on the test clock."""
    cfg = "max_attempts = 3; attempt_window_s = 60; lockout_s = 300;"
    with node(cfg, clock=True) as d:
        locker(d, "lk-1")
        locker(d, "lk-2")
        a = deposit(d, "lk-1", 1)
        b = deposit(d, "lk-2", 1)
        bad = f"{(int(a['code']) + 1) % 10**6:06d}"
        for k in (1, 2):
            fails(d, "lockers", "pickup", "lk-1", bad, want=f"wrong code ({k} of 3 within 60 s)")
        d.ok("clock", "advance", "61s")  # the two fall out of the window
        fails(d, "lockers", "pickup", "lk-1", "12ab", want="wrong code (1 of 3")  # not digits
        fails(d, "lockers", "pickup", "lk-1", bad, want="wrong code (2 of 3")
        fails(d, "lockers", "pickup", "lk-1", bad,
              want="wrong code; 3 wrong pickup codes within 60 s at locker lk-1: codes "
                   "refused for 300 s")
        got = raised(d, {"code_lockout": 1}, "the lockout raised")
        al = got[("device:lk-1", "code_lockout")]
        eq((al["severity"], al["scope"]), ("minor", YUELAN), "the lockout alarm")
        # Locked out: the right code is refused too, and said so.
        err = fails(d, "lockers", "pickup", "lk-1", a["code"], want="locker lk-1 refuses pickup "
                    "codes for ")
        # The test clock runs on with the real one: a slow run may take a second off.
        m = re.search(r"for (\d+) s more after 3 wrong codes", err)
        check(m and 280 <= int(m.group(1)) <= 300, f"how long: {err}")
        eq(state_of(d, a["parcel"]), "deposited", "not opened while locked out")
        # Another locker is not locked out.
        d.ok("lockers", "pickup", "lk-2", b["code"])
        wait_for(lambda: state_of(d, b["parcel"]) == "picked_up", "lk-2 opens")
        st = stats(d)
        lk = {x["locker"]: x for x in st["lockers"]}
        eq((lk["lk-1"]["locked_out"], lk["lk-1"]["lockouts"], lk["lk-2"]["locked_out"]),
           (True, 1, False), "per locker")
        eq((st["wrong_codes"], st["refused_locked_out"]), (5, 1), "counted")
        d.ok("clock", "advance", "270s")
        fails(d, "lockers", "pickup", "lk-1", a["code"], want="refuses pickup codes for ")
        d.ok("clock", "advance", "31s")
        d.ok("lockers", "pickup", "lk-1", a["code"])
        wait_for(lambda: state_of(d, a["parcel"]) == "picked_up", "lk-1 opens after the lockout")
        denied = [r for r in d.ok("audit", "--action", "lockers.pickup", "--limit", "100")
                  if r["result"] == "denied"]
        eq(len(denied), 7, f"five wrong codes and two refusals while locked out: {denied}")
        check(any("codes refused for 300 s" in r.get("detail", "") for r in denied),
              f"the lockout audited: {denied}")


def case_overdue_reminders_on_the_test_clock():
    """A parcel still deposited free_hours after its deposit: alarm parcel_overdue
    (warning, source the parcel), reminders counted in the record; one more every
    remind_every_hours, one for a clock that jumps several periods; none for a parcel
    picked up or returned in time."""
    with node("free_hours = 2; remind_every_hours = 1;", clock=True) as d:
        locker(d, "lk-1")
        p = deposit(d, "lk-1", 4)["parcel"]
        advance(d, "30m")
        q = deposit(d, "lk-1", 5)  # picked up in time
        r = deposit(d, "lk-1", 6)["parcel"]  # returned to the courier in time
        advance(d, "89m")  # p: 1 h 59 m
        eq(stats(d)["reminders"], 0, "within the free period")
        d.ok("lockers", "pickup", "lk-1", q["code"])
        wait_for(lambda: state_of(d, q["parcel"]) == "picked_up", "q picked up")
        d.ok("lockers", "return", r)
        eq(state_of(d, r), "returned", "r returned")
        fails(d, "lockers", "return", r, want=f"parcel {r} is returned, not deposited")
        advance(d, "2m")  # p: 2 h 1 m
        got = raised(d, {"parcel_overdue": 1}, "the first reminder")
        a = got[(f"record:parcels/{p}", "parcel_overdue")]
        eq((a["severity"], a["count"], a["scope"]), ("warning", 1, YUELAN), "the alarm")
        eq(d.ok("alarms", "show", a["id"])["details"],
           f"parcel {p} in locker lk-1 compartment 4 not picked up 2 h after its deposit "
           "(free for 2 h): reminder 1", "details")
        rec = d.ok("data", "get", "parcels", p)
        eq(rec["reminders"], 1, "noted in the record")
        check(d.ok("lockers", "show", p)["overdue"], "show says overdue")
        advance(d, "30m")
        eq(stats(d)["reminders"], 1, "once per period")
        advance(d, "31m")  # p: 3 h 2 m
        got = raised(d, {"parcel_overdue": 2}, "the second reminder")
        eq(got[(f"record:parcels/{p}", "parcel_overdue")]["count"], 2, "folded into one alarm")
        advance(d, "5h")  # p: 8 h 2 m, a jump of five periods: one reminder
        raised(d, {"parcel_overdue": 3}, "one reminder for a jump")
        eq(d.ok("data", "get", "parcels", p)["reminders"], 7, "periods owed noted")
        advance(d, "2m")
        eq(stats(d)["reminders"], 3, "no more within the period")
        eq(len(d.ok("alarms", "list")["alarms"]), 1, "none for the parcels taken in time")


def case_compartment_events_alarms_and_bad_config_refused():
    """A locker's door_left_open and jammed (new events of the class) and forced become
    alarms naming the compartment; deposited is a record only. door_closed of the last
    compartment left open clears compartment_left_open (one of two closing does not); the
    simulator's lockers close what they left open. A bad plugins.lockers group
    (no secret_file, codes of 5 digits, an unknown key, a secret file others may read)
    stops the plugin at load naming file and key; on SIGHUP another secret_file is
    refused and the running one stays."""
    n = node()
    with n as d:
        locker(d, "lk-1")
        for ev, kv in (("door_left_open", "compartment=4"), ("jammed", "compartment=9"),
                       ("forced", "x=1"), ("deposited", "compartment=2")):
            eq(d.ok("tdrv", "event", "lk-1", ev, kv)["rc"], 0, ev)
        got = raised(d, {"compartment_left_open": 1, "compartment_jammed": 1,
                         "locker_forced": 1}, "three alarms")
        for (t, sev, det) in (("compartment_left_open", "minor",
                               "compartment 4 of locker lk-1 left open"),
                              ("compartment_jammed", "major", "compartment 9 of locker lk-1 jammed"),
                              ("locker_forced", "major", "locker lk-1 reports it was forced")):
            a = got[("device:lk-1", t)]
            eq((a["severity"], d.ok("alarms", "show", a["id"])["details"]), (sev, det), t)
        eq(stats(d)["events"], 5, "four events and the locker's online")
        # Two compartments left open: the alarm stays until both are closed.
        def active():
            return [a for a in d.ok("alarms", "list", "--active")["alarms"]
                    if a["type"] == "compartment_left_open"]
        for ev, comp in (("door_left_open", 6), ("door_closed", 4)):
            eq(d.ok("tdrv", "event", "lk-1", ev, f"compartment={comp}")["rc"], 0, ev)
        wait_for(lambda: stats(d)["doors_closed"] == 1, "one closed")
        eq(len(active()), 1, "compartment 6 is still open")
        eq(active()[0]["count"], 2, "the second left open folded into it")
        eq(d.ok("tdrv", "event", "lk-1", "door_closed", "compartment=6")["rc"], 0, "closed")
        wait_for(lambda: not active(), "the left-open alarm cleared when the last closed")
        eq(stats(d)["failed"]["compartment_left_open"], 0, "nothing failed")
        entry = d.ok("catalog", "show", "device", "locker")
        eq(entry.get("plugin"), "lockers", "the index gives the class to lockers")
        check({"door_left_open", "jammed", "door_closed"} <= {e["name"] for e in
                                                            entry["events"]},
              f"the class has the new events: {entry['events']}")
        name, caps = plugin_meta(SOS[1])
        idx = d.ok("catalog", "show", "plugin", "lockers")
        eq((idx["version"], idx["sdk"], idx["requires"]), ("1.0.0", "1.1", ["alarms"]), "index")
        eq(sorted(idx["capabilities"]), sorted(caps), "the index lists what lockers.so declares")
        # SIGHUP: another secret_file is refused, the running values stay.
        n.secret = os.path.join(d.dir, "other.secret")
        n.configure("code_digits = 7;")
        d.kill_with(signal.SIGHUP)
        d.wait_log("lockers: reload refused, keeping the running configuration: linli.cfg: "
                   "plugins.lockers.secret_file: cannot change while linlid runs")
        eq(stats(d)["config"]["code_digits"], 6, "the old one runs")
        check(not os.path.exists(n.secret), "no other secret made")
    for bad, secret, needle in (
            ("", False, "linli.cfg: plugins.lockers.secret_file: required: the path of the file"),
            ("code_digits = 5;", True,
             "linli.cfg: plugins.lockers.code_digits: must be a whole number, 6 to 8"),
            ("free_days = 3;", True, "linli.cfg: plugins.lockers.free_days: unknown key"),
            ("", "0644", "may be read by others than its owner (chmod 600 it)")):
        m = node(bad, secret=bool(secret))
        if secret == "0644":
            with open(m.secret, "w") as f:
                f.write("ab" * 32 + "\n")
            os.chmod(m.secret, 0o644)
        with m as d:
            info = d.ok("plugins", "info", "lockers")
            check(info["state"] == "failed" and needle in info["reason"], f"{bad}: {info}")
            eq(d.ok("plugins", "info", "alarms")["state"], "running", "alarms runs on")
    # The simulator's lockers close what they leave open: raised, then cleared.
    with node(sim='per_class = 4; classes = [ "locker" ]; auto = false; seed = 2;') as d:
        wait_for(lambda: len(d.ok("devices", "list")) == 4, "four simulated lockers")
        d.ok("sim", "step", "1500")
        d.ok("sim", "step", "12")
        wait_for(lambda: stats(d)["raised"]["compartment_left_open"] >= 1 and
                 stats(d)["doors_closed"] >= 1, "left open and closed")
        check(stats(d)["doors_closed"] >= stats(d)["raised"]["compartment_left_open"],
              stats(d))
        wait_for(lambda: not [a for a in d.ok("alarms", "list", "--active")["alarms"]
                              if a["type"] == "compartment_left_open"], "all closed again")


if __name__ == "__main__":
    sys.exit(main(globals()))
