"""Integration tests of the bus over a real linlid: `linli events tail` in one process while
`linli publish` runs in others, the long poll and its cursor, scope filtering across
processes, shedding of telemetry (never of records of consequence) at an external
subscriber, backlog overflow, idle expiry, the waiter cap, bad input, and shutdown with a
poll pending."""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import LINLI, Daemon, TestFailure, check, eq, main, mp  # noqa: E402


class running:
    def __init__(self, **kw):
        self.d = Daemon(**kw)

    def __enter__(self):
        return self.d.start()

    def __exit__(self, *exc):
        self.d.cleanup()


def tail_proc(d, *args, json_out=True):
    argv = [LINLI, "--socket", d.sock] + (["--json"] if json_out else []) + ["events", "tail",
                                                                          *args]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_external_subs(d, n, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        subs = d.ok("events", "list") or []
        ext = [s for s in subs if s["owner"] == "external"]
        if len(ext) >= n:
            return ext
        time.sleep(0.05)
    raise TestFailure(f"{n} external subscription(s) never appeared: {d.ok('events', 'list')}")


def publish(d, topic, payload, scope=None):
    args = ["publish", topic, json.dumps(payload)] + (["--scope", scope] if scope else [])
    return d.ok(*args)


def shell(d, lines):
    """Run many commands in one console process (the interactive shell reads stdin)."""
    r = subprocess.run([LINLI, "--socket", d.sock], input="\n".join(lines) + "\nquit\n",
                       capture_output=True, text=True, timeout=60)
    eq(r.returncode, 0, f"shell rc: {r.stderr}")
    return r


def case_tail_json_with_publish_from_other_processes():
    with running() as d:
        t = tail_proc(d, "alarm/#", "--count", "3", "--scope", "hefei/baohe")
        try:
            wait_external_subs(d, 1)
            publish(d, "alarm/raised", {"n": 1, "where": "baohe"}, "hefei/baohe")
            publish(d, "alarm/raised", {"n": 2}, "hefei/shushan")          # sibling: never
            publish(d, "dev/meter/m1/reading/power", {"n": 3}, "hefei/baohe")  # other topic
            publish(d, "alarm/raised", {"n": 4}, "hefei")                  # parent: not within
            publish(d, "alarm/cleared", {"n": 5}, "hefei/baohe/binhu")     # child: yes
            publish(d, "incident/reported", {"n": 6}, "hefei/baohe")       # other topic
            publish(d, "alarm/raised", {"n": 7, "nested": {"a": [1, 2.5, None, True]}},
                    "hefei/baohe")
            out, err = t.communicate(timeout=20)
        finally:
            if t.poll() is None:
                t.kill()
                t.communicate()
        eq(t.returncode, 0, f"tail rc ({err})")
        lines = [json.loads(x) for x in out.splitlines()]
        eq([e["payload"]["n"] for e in lines], [1, 5, 7], "events tailed")
        eq([e["topic"] for e in lines], ["alarm/raised", "alarm/cleared", "alarm/raised"], "topics")
        eq([e["scope"] for e in lines], ["hefei/baohe", "hefei/baohe/binhu", "hefei/baohe"],
           "scopes")
        eq(lines[2]["payload"]["nested"], {"a": [1, 2.5, None, True]}, "payload round trip")
        check(all(e["publisher"] == "console" and e["class"] == "consequence" for e in lines),
              lines)
        check(lines[0]["seq"] < lines[1]["seq"] < lines[2]["seq"], "seq order")
        check(abs(lines[0]["time"] / 1000 - time.time()) < 60, "wall clock time")
        # The tail unsubscribed on its way out.
        eq([s for s in d.ok("events", "list") or [] if s["owner"] == "external"], [],
           "subscription left behind")


def case_tail_text_lines():
    with running() as d:
        t = tail_proc(d, "--count", "2", json_out=False)
        try:
            wait_external_subs(d, 1)
            publish(d, "dev/smoke/sd-0042/event/alarm", {"smoke": 0.42})
            publish(d, "dev/smoke/sd-0042/reading/temp", {"c": 21})
            out, err = t.communicate(timeout=20)
        finally:
            if t.poll() is None:
                t.kill()
        eq(t.returncode, 0, err)
        lines = out.splitlines()
        eq(len(lines), 2, out)
        check("consequence" in lines[0] and "dev/smoke/sd-0042/event/alarm" in lines[0]
              and '{"smoke":0.42}' in lines[0] and "hefei" in lines[0], lines[0])
        check("telemetry" in lines[1] and "reading/temp" in lines[1], lines[1])


def case_tail_stops_on_seconds_and_ctrl_c():
    with running() as d:
        t0 = time.time()
        t = tail_proc(d, "--seconds", "1")
        out, _ = t.communicate(timeout=20)
        eq(t.returncode, 0, "tail --seconds rc")
        eq(out, "", "nothing published, nothing printed")
        check(0.9 < time.time() - t0 < 5, f"--seconds 1 took {time.time() - t0:.1f}s")
        t = tail_proc(d)
        wait_external_subs(d, 1)
        t0 = time.time()
        t.send_signal(signal.SIGINT)
        t.communicate(timeout=20)
        eq(t.returncode, 0, "tail rc after Ctrl-C")
        check(time.time() - t0 < 3, "Ctrl-C took too long")
        eq([s for s in d.ok("events", "list") or [] if s["owner"] == "external"], [],
           "subscription left behind after Ctrl-C")
        r = subprocess.run([LINLI, "--socket", d.sock, "events", "tail", "--count", "0"],
                           capture_output=True, text=True)
        eq(r.returncode, 2, "bad --count is a usage error")


def case_long_poll_wakes_and_cursor_resends():
    with running() as d:
        sid = d.ok("events", "subscribe", "alarm/#")["id"]
        t0 = time.time()
        p = subprocess.Popen([LINLI, "--socket", d.sock, "--json", "events", "next", str(sid),
                              "--wait", "10000"], stdout=subprocess.PIPE, text=True)
        time.sleep(0.4)
        seq = publish(d, "alarm/raised", {"x": 1})["seq"]
        out, _ = p.communicate(timeout=20)
        rep = json.loads(out)
        check(time.time() - t0 < 5, "long poll did not wake on publish")
        eq([e["seq"] for e in rep["events"]], [seq], "woken with the event")
        eq(rep["cursor"], seq, "cursor")
        # Not acknowledged (cursor 0): sent again. Acknowledged: gone.
        rep = d.ok("events", "next", str(sid), "0", "--wait", "0")
        eq([e["seq"] for e in rep["events"]], [seq], "resent after a lost reply")
        rep = d.ok("events", "next", str(sid), str(seq), "--wait", "0")
        eq(rep["events"], [], "acknowledged events are not sent again")
        # Without a cursor, what was sent before counts as received.
        publish(d, "alarm/raised", {"x": 2})
        publish(d, "alarm/raised", {"x": 3})
        rep = d.ok("events", "next", str(sid), "--max", "1", "--wait", "0")
        eq([e["payload"]["x"] for e in rep["events"]], [2], "--max 1")
        eq(rep["queued"], 1, "one left")
        rep = d.ok("events", "next", str(sid), "--wait", "0")
        eq([e["payload"]["x"] for e in rep["events"]], [3], "the next one")
        # A timed-out poll answers empty after about --wait.
        t0 = time.time()
        rep = d.ok("events", "next", str(sid), "--wait", "300")
        eq(rep["events"], [], "empty after the wait")
        check(0.25 < time.time() - t0 < 3, f"--wait 300 took {time.time() - t0:.2f}s")
        d.ok("events", "unsubscribe", str(sid))
        rc, out, err = d.cli("events", "next", str(sid))
        eq(rc, 1, "next after unsubscribe")
        check("no external subscription" in err, err)


def case_shed_telemetry_at_subscriber_never_alarms():
    extra = "bus = { subscriber_queue = 4; subscriber_backlog = 1000; };\n"
    with running(extra=extra) as d:
        sid = d.ok("events", "subscribe", "#")["id"]
        lines = []
        for i in range(10):
            lines.append(f'publish sensor/t{i} \'{{"i": {i}}}\'')
            if i < 6:
                lines.append(f'publish alarm/raised \'{{"i": {i}}}\'')
        shell(d, lines)
        rep = d.ok("events", "next", str(sid), "--wait", "0")
        topics = [e["topic"] for e in rep["events"]]
        # t0 a0 t1 a1 fill the queue of 4; every later telemetry event is shed, every
        # later alarm still queued.
        eq(topics, ["sensor/t0", "alarm/raised", "sensor/t1"] + ["alarm/raised"] * 5,
           "queued events")
        eq(rep["lost"], 8, "lost telemetry counted for the subscriber")
        seqs = [e["seq"] for e in rep["events"]]
        eq(seqs, sorted(seqs), "in order")
        fams = {f["family"]: f for f in d.ok("events", "stats")}
        eq(fams["#"]["subscriber_shed"], 8, "family '#' subscriber_shed")
        eq(fams["#"]["published"], 10, "telemetry published")
        eq(fams["alarm/#"]["subscriber_shed"], 0, "alarms never shed")
        eq(fams["alarm/#"]["published"], 6, "alarms published")
        eq(fams["alarm/#"]["class"], "consequence", "class")
        st = d.ok("status")
        eq(st["events_shed"], 8, "status events_shed")
        eq(st["events_published"], 16, "status events_published")
        eq(st["events_consequence"], 6, "status events_consequence")
        eq(st["bus_journal"], True, "the store journals records of consequence")
        jr = d.ok("events", "journal")["events"]
        eq([e["topic"] for e in jr], ["alarm/raised"] * 6, "exactly the alarms are journaled")
        eq([e["payload"]["i"] for e in jr], list(range(6)), "journal in publication order")
        ext = [s for s in d.ok("events", "list") if s["id"] == sid][0]
        eq(ext["lost"], 8, "events list lost")
        # Text status shows the counters too.
        r = subprocess.run([LINLI, "--socket", d.sock, "status"], capture_output=True, text=True)
        check("events_shed" in r.stdout, r.stdout)


def case_backlog_overflow_closes_subscription():
    extra = "bus = { subscriber_queue = 4; subscriber_backlog = 6; };\n"
    with running(extra=extra) as d:
        sid = d.ok("events", "subscribe", "alarm/#")["id"]
        shell(d, [f'publish alarm/raised \'{{"i": {i}}}\'' for i in range(8)])
        rc, out, err = d.cli("events", "next", str(sid), "--wait", "0")
        eq(rc, 1, "poll of an overflowed subscription fails")
        eq(out["name"], "LINLI_ELIMIT", "error code")
        check("fell behind" in err and "subscribe again" in err, err)
        d.wait_log("closed: it fell behind")
        rc, out, err = d.cli("events", "next", str(sid))
        eq(out["name"], "LINLI_ENOENT", "gone after the error was reported")


def case_idle_subscription_expires():
    with running(extra="bus = { subscriber_idle_s = 1; };\n") as d:
        sid = d.ok("events", "subscribe")["id"]
        keep = d.ok("events", "subscribe")["id"]
        for _ in range(5):  # polling keeps one alive
            time.sleep(0.5)
            d.ok("events", "next", str(keep), "--wait", "0")
        rc, out, err = d.cli("events", "next", str(sid))
        eq(rc, 1, "expired subscription")
        check("expired after 1 s" in err, err)
        d.wait_log(f"external subscription {sid} ('#') expired")
        d.ok("events", "next", str(keep), "--wait", "0")


def case_waiters_capped_so_commands_still_run():
    d = Daemon()
    try:
        d.write_config(text=d.config_text("hefei", "city", "x").replace(
            "control = {", "control = { workers = 3;"))
        d.start()
        a = d.ok("events", "subscribe")["id"]
        b = d.ok("events", "subscribe")["id"]
        p = subprocess.Popen([LINLI, "--socket", d.sock, "--json", "events", "next", str(a),
                              "--wait", "10000"], stdout=subprocess.PIPE, text=True)
        time.sleep(0.4)
        t0 = time.time()
        rep = d.ok("events", "next", str(b), "--wait", "10000")
        eq(rep["busy"], True, "second long poll told to come back")
        check(time.time() - t0 < 2, "busy reply was not immediate")
        d.ok("status")  # other commands are still served
        publish(d, "alarm/x", {})
        rep = json.loads(p.communicate(timeout=20)[0])
        eq(len(rep["events"]), 1, "the waiting poll got the event")
    finally:
        d.cleanup()


def case_configured_families():
    extra = 'bus = { consequence = [ "sensor/#" ]; telemetry = [ "dev/+/+/reading/#" ]; };\n'
    with running(extra=extra) as d:
        sid = d.ok("events", "subscribe")["id"]
        publish(d, "sensor/t", {})
        publish(d, "alarm/raised", {})
        publish(d, "dev/m/1/reading/kw", {})
        rep = d.ok("events", "next", str(sid), "--wait", "0")
        eq({e["topic"]: e["class"] for e in rep["events"]},
           {"sensor/t": "consequence", "alarm/raised": "telemetry",
            "dev/m/1/reading/kw": "telemetry"}, "classes")
        eq([f["family"] for f in d.ok("events", "stats")],
           ["sensor/#", "dev/+/+/reading/#", "#"], "families")


def case_bad_input_is_refused_clearly():
    with running(node="hefei/baohe", level="district") as d:
        def refused(args, name, needle, input=None):
            rc, out, err = d.cli(*args, input=input)
            eq(rc, 1, f"{args} rc")
            eq(out["name"], name, f"{args} code")
            check(needle in err, f"{args}: {err}")

        refused(["publish", "alarm/x", "{bad"], "LINLI_EINVAL", "malformed JSON at line 1")
        refused(["publish", "alarm/x", "[1, 2]"], "LINLI_EINVAL", "must be a JSON object")
        refused(["publish", "alarm/+", "{}"], "LINLI_EINVAL", "topic 'alarm/+': wildcards")
        refused(["publish", "a//b", "{}"], "LINLI_EINVAL", "empty level")
        refused(["publish", "alarm/x", "{}", "--scope", "hefei/shushan"], "LINLI_EPERM",
                "may not act on hefei/shushan: outside its jurisdiction")
        refused(["publish", "alarm/x", "{}", "--scope", "hefei"], "LINLI_EPERM", "outside")
        refused(["publish", "alarm/x", "{}", "--scope", "Bad"], "LINLI_EINVAL", "scope 'Bad'")
        refused(["publish", "alarm/x"], "LINLI_EINVAL", "usage: publish TOPIC")
        refused(["publish", "alarm/x", "{}", "--scope"], "LINLI_EINVAL", "--scope needs a value")
        refused(["publish", "alarm/x", "--stdin"], "LINLI_E2BIG", "exceeds 262144 bytes",
                input=json.dumps({"blob": "x" * 300000}))
        refused(["events", "subscribe", "a/#/b"], "LINLI_EINVAL", "'#' must be the last level")
        refused(["events", "subscribe", "#", "--scope", "hefei"], "LINLI_EPERM", "outside")
        refused(["events", "next", "99"], "LINLI_ENOENT", "no external subscription 99")
        refused(["events", "next", "abc"], "LINLI_EINVAL", "subscription id 'abc'")
        sid = d.ok("events", "subscribe")["id"]
        refused(["events", "next", str(sid), "x1"], "LINLI_EINVAL", "cursor 'x1'")
        refused(["events", "next", str(sid), "--wait", "99999"], "LINLI_EINVAL", "--wait")
        # The console runs `events tail` itself; the daemon refuses it with a hint.
        rc, rep = d.raw(d.req(["events", "tail"]))
        eq(rep["name"], "LINLI_ENOTSUP", "raw events tail")
        eq(d.ok("status")["events_published"], 0, "nothing published by bad requests")
        # A good one from stdin, at a sub-scope.
        rep = d.ok("publish", "alarm/x", "--scope", "hefei/baohe/binhu", "--stdin",
                   input='{"ok": true}')
        eq(rep["scope"], "hefei/baohe/binhu", "scope")
        rep = d.ok("events", "next", str(sid), "--wait", "0")
        eq(rep["events"][0]["payload"], {"ok": True}, "stdin payload")


def case_tail_reports_lost_telemetry():
    with running(extra="bus = { subscriber_queue = 4; };\n") as d:
        t = tail_proc(d, "--count", "4")
        try:
            wait_external_subs(d, 1)
            t.send_signal(signal.SIGSTOP)  # a slow subscriber
            shell(d, [f'publish sensor/t{i} \'{{"i": {i}}}\'' for i in range(10)])
            t.send_signal(signal.SIGCONT)
            out, err = t.communicate(timeout=20)
        finally:
            if t.poll() is None:
                t.send_signal(signal.SIGCONT)
                t.kill()
        eq(t.returncode, 0, err)
        eq([json.loads(x)["payload"]["i"] for x in out.splitlines()], [0, 1, 2, 3], "kept")
        check("6 telemetry events lost" in err, err)


def case_reload_applies_bus_limits():
    with running(extra="bus = { subscriber_queue = 4; };\n") as d:
        sid = d.ok("events", "subscribe")["id"]
        d.write_config(extra='bus = { subscriber_queue = 100; consequence = [ "alarm/#" ]; };\n')
        d.kill_with(signal.SIGHUP)
        d.wait_log("reloaded")
        check("bus.consequence/bus.telemetry changed: takes effect on restart" in d.logtext(),
              d.logtext())
        shell(d, [f'publish sensor/t{i} {{}}' for i in range(10)])
        rep = d.ok("events", "next", str(sid), "--wait", "0")
        eq(len(rep["events"]), 10, "the larger queue applies at once")
        eq(rep["lost"], 0, "nothing lost")
        # The families did not change: incident/# is still a record of consequence.
        publish(d, "incident/x", {})
        rep = d.ok("events", "next", str(sid), "--wait", "0")
        eq(rep["events"][0]["class"], "consequence", "families change on restart only")


def case_shutdown_with_pending_poll():
    with running() as d:
        sid = d.ok("events", "subscribe")["id"]
        p = subprocess.Popen([LINLI, "--socket", d.sock, "--json", "events", "next", str(sid),
                              "--wait", "20000"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        time.sleep(0.4)
        t0 = time.time()
        eq(d.stop(signal.SIGTERM), 0, "clean exit with a poll pending")
        check(time.time() - t0 < 5, "shutdown waited for the poll")
        p.communicate(timeout=30)
        check("ERROR: AddressSanitizer" not in d.logtext(), d.logtext())


def case_journal_survives_kill9_and_seq_goes_on():
    with running() as d:
        acked = []
        for i in range(20):
            acked.append(d.ok("publish", "alarm/raised", f'{{"i": {i}}}')["seq"])
            d.ok("publish", "sensor/t", f'{{"i": {i}}}')  # telemetry: not journaled
        d.ok("publish", "incident/reported", '{"x": 1}', "--scope", "hefei/baohe")
        # kill -9 right after the last acknowledgement: everything acked is on disk.
        d.proc.kill()
        d.proc.wait()
        d.start()
        jr = d.ok("events", "journal", "--limit", "1000")["events"]
        eq([e["seq"] for e in jr if e["topic"] == "alarm/raised"], acked, "acked alarms kept")
        eq(jr[-1]["topic"], "incident/reported", "incident kept")
        eq(jr[-1]["scope"], "hefei/baohe", "scope kept")
        check(all(e["topic"] != "sensor/t" for e in jr), "telemetry is not journaled")
        # Numbering goes on after the journal: no seq is used twice.
        nxt = d.ok("publish", "alarm/raised", '{"i": 99}')["seq"]
        check(nxt > jr[-1]["seq"], f"seq {nxt} repeats one of the journal's")
        after = d.ok("events", "journal", "--after", str(jr[-1]["seq"]))
        eq([e["seq"] for e in after["events"]], [nxt], "--after pages the journal")
        eq((after["next"], after["more"]), (nxt, False), "the journal's end")
        rc, out, err = d.cli("events", "journal", "--limit", "0")
        eq(rc, 1, "bad limit refused")
        check("--limit" in out["error"], out)


def case_journal_shows_only_own_jurisdiction():
    d = Daemon(node="hefei/baohe", level="district")
    try:
        d.start()
        d.ok("publish", "alarm/raised", '{"i": 1}', "--scope", "hefei/baohe/binhu")
        eq(len(d.ok("events", "journal")["events"]), 1, "own journal entry")
        eq(d.stop(), 0, "stop")
        # The same data served as the sibling district: baohe's admin is outside it.
        d.write_config(node="hefei/shushan", level="district")
        d.start()
        rc, out, _ = d.cli("events", "journal")
        check(rc == 1 and "outside this node's jurisdiction 'hefei/shushan'" in out["error"], out)
        eq(d.stop(), 0, "stop")
        # As the city: everything shows.
        d.write_config(node="hefei", level="city")
        d.start()
        eq([e["scope"] for e in d.ok("events", "journal")["events"]], ["hefei/baohe/binhu"],
           "city sees all")
    finally:
        d.cleanup()

if __name__ == "__main__":
    sys.exit(main(dict(globals())))
