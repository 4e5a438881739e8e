"""Integration tests of retention: the journal and the audit log are trimmed by age and size
from a timer, never past a journal holder, holds expire with an alarm, the audit log keeps
what the law asks (with an alarm when the size cap would cut it), plain reads are folded
into counted audit entries, telemetry-like events are not journaled, and `status` shows
each system dataset's size, oldest entry and write rate. Caps are tiny and ages are in
seconds (the _kb and _s keys), so each case runs in seconds."""
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from harness import LINLI, LINLID, SRC, Daemon, check, eq, finish, main, wait_for  # noqa: E402


def daemon(retention, extra="", accounts=""):
    d = Daemon(extra=f'catalog_dir = "{SRC}/catalog";\n'
                     f'retention = {{ tick_ms = 50; {retention} }};\n' + extra)
    if accounts:
        with open(d.cfg) as f:
            text = f.read()
        d.write_config(text=text.replace('pwhash = "min";', f'pwhash = "min"; {accounts}'))
    return d


class running:
    def __init__(self, retention, extra="", accounts=""):
        self.d = daemon(retention, extra, accounts)

    def __enter__(self):
        try:
            return self.d.start()
        except BaseException:
            self.d.cleanup()
            raise

    def __exit__(self, etype, *exc):
        finish(self.d, etype)


def shell(d, lines):
    """Run many console commands through one interactive `linli` (stdin is not a tty)."""
    env = dict(os.environ, LINLI_SESSION=d.session, HOME=d.dir)
    r = subprocess.run([LINLI, "--socket", d.sock], input="\n".join(lines) + "\n",
                       capture_output=True, text=True, env=env, timeout=120)
    eq(r.returncode, 0, f"linli shell: {r.stderr[-2000:]}")
    return r.stdout


def publish_many(d, n, topic="alarm/raised", pad=100):
    """Publish n records of consequence; return the journal's last seq after them."""
    before = d.ok("status")["events_consequence"]
    out = shell(d, [f"publish {topic} '" + json.dumps({"i": i, "pad": "x" * pad}) + "'"
                    for i in range(n)])
    eq(d.ok("status")["events_consequence"] - before, n, f"published: {out[-500:]}")
    return journal(d)["last_seq"]


def datasets(d):
    return d.ok("status")["datasets"]


def journal(d):
    return datasets(d)["journal"]


def seqs(d):
    return [e["seq"] for e in d.ok("events", "journal", "--limit", "10000")["events"]]


def alarm_events(d, sid, condition, timeout=15):
    """Poll subscription sid until an alarm/system/retention with `condition` arrives."""
    got = []

    def poll():
        rep = d.ok("events", "next", str(sid), "--wait", "500")
        got.extend(e for e in rep["events"] if e["topic"] == "alarm/system/retention" and
                   e["payload"]["condition"] == condition)
        return got
    return wait_for(poll, f"alarm {condition}", timeout)


def case_bad_retention_config_refused_with_file_and_line():
    d = Daemon(extra="retention = {\n  journal = {\n    max_kb = \"small\";\n  };\n};\n")
    try:
        r = subprocess.run([LINLID, "--config", d.cfg, "--check-config"], capture_output=True,
                           text=True, timeout=30)
        eq(r.returncode, 2, "exit code")
        check(f"{d.cfg}:9: retention.journal.max_kb: must be an integer" in r.stderr, r.stderr)
        d.write_config(extra="retention = {\n  audit = { max_age_days = 30; };\n};\n")
        r = subprocess.run([LINLID, "--config", d.cfg, "--check-config"], capture_output=True,
                           text=True, timeout=30)
        eq(r.returncode, 2, "exit code")
        check(f"{d.cfg}:8: retention.audit.max_age_days: 2592000 s is below "
              "retention.audit.min_age" in r.stderr, r.stderr)
        d.write_config(extra="retention = {\n  journal = { max_age_dayz = 3; };\n};\n")
        r = subprocess.run([LINLID, "--config", d.cfg, "--check-config"], capture_output=True,
                           text=True, timeout=30)
        eq(r.returncode, 2, "exit code")
        check(f"{d.cfg}:8: retention.journal.max_age_dayz: unknown key" in r.stderr, r.stderr)
    finally:
        d.cleanup()


def case_journal_trimmed_by_size_from_the_front():
    with running("journal = { max_kb = 16; };") as d:
        last = publish_many(d, 300)
        j = wait_for(lambda: (lambda j: j if j["bytes"] <= 16384 else None)(journal(d)),
                     "the journal under 16 KiB")
        check(j["entries"] < 300 and j["trimmed"] > 0, j)
        eq(j["last_seq"], last, "the newest entries stay")
        s = seqs(d)
        eq(s, list(range(s[0], last + 1)), "trimmed from the front, no gaps")
        check(s[0] > 1, s[:3])


def case_file_stops_growing_under_a_steady_load():
    """The trimmed pages are reused: 2000 more events of ~330 bytes (650 KB) after the
    journal reached its cap leave data.mdb's used pages where they were, give or take."""
    with running("journal = { max_kb = 64; };") as d:
        used = []
        for _ in range(5):
            publish_many(d, 500, pad=200)
            wait_for(lambda: journal(d)["bytes"] <= 65536, "the journal under its cap")
            used.append(d.ok("store", "stats")["used_bytes"])
        check(used[-1] - used[0] <= 8 * 4096, f"used bytes per round: {used}")


def case_journal_trimmed_by_age():
    with running("journal = { max_age_s = 1; };") as d:
        publish_many(d, 20)
        wait_for(lambda: journal(d)["entries"] == 0, "old entries trimmed")
        seq = d.ok("publish", "alarm/raised", '{"fresh": true}')["seq"]
        eq(seqs(d), [seq], "a young entry is kept")


def case_journal_never_trimmed_past_a_holder_and_holds_expire():
    with running("journal = { max_age_s = 1; max_hold_s = 4; };") as d:
        sid = d.ok("events", "subscribe", "alarm/system/#")["id"]
        first = d.ok("publish", "alarm/raised", '{"i": 0}')["seq"]
        rep = d.ok("events", "hold", "reader1", str(first + 1))
        eq((rep["name"], rep["seq"]), ("reader1", first + 1), "hold registered")
        last = publish_many(d, 4)
        # Entries up to the holder's position go; those after it stay.
        wait_for(lambda: seqs(d) == list(range(first + 2, last + 1)), "trimmed up to the hold")
        holds = d.ok("events", "holds")
        eq([(h["name"], h["seq"]) for h in holds], [("reader1", first + 1)], "listed")
        eq(seqs(d), list(range(first + 2, last + 1)), "still kept while held")
        # A bad name or seq is refused; another reader holds nothing here.
        rc, out, _ = d.cli("events", "hold", "bad name", "3")
        check(rc == 1 and "bad name" in out["error"], out)
        rc, out, _ = d.cli("events", "hold", "r2", "-3")
        check(rc == 1 and "not a seq" in out["error"], out)
        # After max_hold the hold is released with an alarm, and trimming goes on.
        a = alarm_events(d, sid, "hold_expired")
        check("reader1" in a[0]["payload"]["detail"], a)
        eq(d.ok("events", "holds"), [], "released")
        wait_for(lambda: all(s > last for s in seqs(d)), "trimmed past the old position")
        check("holder 'reader1'" in d.logtext(), "logged")


def case_release_and_holder_survives_restart():
    with running("journal = { max_age_s = 1; };") as d:
        first = d.ok("publish", "alarm/raised", '{"i": 0}')["seq"]
        d.ok("events", "hold", "keeper", str(first - 1))
        d.ok("publish", "alarm/raised", '{"i": 1}')
        eq(d.stop(), 0, "stop")
        d.start()
        eq([h["name"] for h in d.ok("events", "holds")], ["keeper"], "kept in the store")
        # Past max_age the entries are due: the holder has blocked their trimming a while.
        wait_for(lambda: d.ok("events", "holds")[0]["blocking_s"] >= 1, "the hold blocking")
        eq(len(seqs(d)), 2, "held across the restart")
        d.ok("events", "release", "keeper")
        wait_for(lambda: seqs(d) == [], "trimmed once released")
        rc, out, _ = d.cli("events", "release", "keeper")
        check(rc == 1 and "no holder 'keeper'" in out["error"], out)


def case_telemetry_like_events_are_delivered_not_journaled():
    with running("") as d:
        sid = d.ok("events", "subscribe", "dev/#")["id"]
        d.ok("publish", "dev/door/d1/event/card_ok", '{"card": "c1"}')
        forced = d.ok("publish", "dev/door/d1/event/forced", '{"x": 1}')["seq"]
        got = d.ok("events", "next", str(sid), "--wait", "2000")["events"]
        eq(sorted(e["topic"] for e in got), ["dev/door/d1/event/card_ok",
                                               "dev/door/d1/event/forced"], "both delivered")
        eq(seqs(d), [forced], "only the one that matters is journaled")
        door = d.ok("catalog", "show", "device", "door")
        eq({e["name"] for e in door["events"] if e.get("journal") is False},
           {"card_ok", "face_ok"}, "the catalog says which")


def audit_count(d, **kw):
    args = ["audit", "--limit", "10000"]
    for k, v in kw.items():
        args += [f"--{k}", v]
    return d.ok(*args)


def case_audit_kept_for_min_age_with_an_alarm_over_the_cap():
    with running("audit = { min_age_s = 3600; max_age_s = 7200; max_kb = 1; };") as d:
        sid = d.ok("events", "subscribe", "alarm/system/#")["id"]
        shell(d, ["data query residents"] * 30)  # a sensitive read each: audited one by one
        n = len(audit_count(d))
        check(n >= 30, n)
        a = alarm_events(d, sid, "audit_over_cap")
        eq(a[0]["payload"]["state"], "raised", "raised")
        st = datasets(d)["audit"]
        check(st["over_cap_alarm"] and st["bytes_est"] > 1024, st)
        eq(st["trimmed"], 0, "nothing younger than min_age is cut")
        check(len(audit_count(d)) >= n, "kept")
        check(d.logtext().count("kept, not cut") == 1, "logged once")


def case_audit_trimmed_by_size_once_past_min_age():
    with running("audit = { min_age_s = 1; max_age_s = 3600; max_kb = 4; };") as d:
        shell(d, ["data query residents"] * 40)  # ~15 KB of audit entries
        # Younger than min_age they are kept (and the alarm may be raised); past it the
        # oldest are cut down to the cap and the alarm is cleared.
        st = wait_for(lambda: (lambda a: a if a["trimmed"] > 0 and a["bytes_est"] <= 4096 and
                                not a["over_cap_alarm"] else None)(datasets(d)["audit"]),
                      "the audit log under its cap")
        check(st["entries"] < 40, st)


def case_audit_trimmed_by_age_past_min_age():
    with running("audit = { min_age_s = 1; max_age_s = 2; };") as d:
        shell(d, ["data query residents"] * 10)
        wait_for(lambda: datasets(d)["audit"]["trimmed"] >= 10, "old audit entries trimmed")
        d.ok("data", "query", "residents")
        check(any(e["action"] == "data.read" for e in audit_count(d)), "a young entry is kept")


def http_get(port, path, key):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                 headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def case_http_reads_are_folded_into_counted_audit_entries():
    port = free_port()
    with running("audit = { aggregate_s = 1; };",
                 f'http = {{ listen = "http://127.0.0.1:{port}"; rate_limit = 100000; }};\n') as d:
        key = d.ok("apikeys", "add", "app1", "--datasets", "parking_spaces",
                   "--scope", "hefei")["key"]
        codes = [http_get(port, "/api/v1/datasets/parking_spaces/records", key)
                 for _ in range(200)]
        eq(set(codes), {200}, "reads")
        denied = [http_get(port, "/api/v1/datasets/residents/records", key) for _ in range(3)]
        eq(denied, [403] * 3, "denials")

        # parking_spaces.plate is sensitive: a key without the grant reads it masked, and
        # those reads are what is folded.
        def folded():
            rows = [e for e in audit_count(d, who="apikey:app1") if e["result"] == "masked"]
            return rows if sum(e.get("count", 1) for e in rows) == 200 else None
        rows = wait_for(folded, "the folded entries")
        check(len(rows) <= 20, f"{len(rows)} entries for 200 reads")
        check(any(e.get("count", 1) > 1 and e["first"] <= e["time"] for e in rows), rows)
        eq(len(audit_count(d, who="apikey:app1", result="denied")), 3, "denials one by one")


def case_expired_sessions_are_deleted():
    with running("", accounts="session_ttl_s = 1;") as d:  # deleted 4 TTLs after expiry
        first = datasets(d)["sessions"]["oldest"]
        # Three people who log in once and never again: a login deletes only its own
        # user's expired sessions, so theirs go by the timer alone.
        for i in range(3):
            d.login()  # the admin's session lasts a second: a fresh one for each add
            d.account(f"once{i}", "viewer")

        def purged():
            rc, out, _ = d.cli("status")
            if rc != 0:  # our session expired too: log in again to ask
                d.login()
                return None
            s = out["datasets"]["sessions"]
            return s if s["expired_deleted"] >= 3 else None
        s = wait_for(purged, "expired sessions deleted", timeout=20)
        check(s["oldest"] > first, f"the first sessions are gone: {s}, first {first}")


def case_status_shows_size_oldest_and_rate():
    with running("") as d:
        before = datasets(d)
        for name in ("audit", "journal", "sessions", "accounts", "apikeys", "grants",
                     "journal_holders"):
            check(name in before, f"{name} in {sorted(before)}")
        check(before["sessions"]["entries"] >= 1 and before["sessions"]["oldest"], before)
        eq(before["journal"]["entries"], 0, "empty journal")
        eq(before["journal"]["oldest"], None, "no oldest entry")
        publish_many(d, 40)
        after = wait_for(lambda: (lambda s: s if s["journal"]["writes_per_min"] > 0 else None)(
            datasets(d)), "a write rate")
        eq(after["journal"]["entries"], 40, "entries")
        check(after["journal"]["bytes"] > 0 and after["journal"]["oldest"], after["journal"])
        check(after["audit"]["entries"] >= before["audit"]["entries"], after["audit"])


if __name__ == "__main__":
    sys.exit(main(dict(globals())))
