"""Integration tests of time in SDK 1.1 through a real linlid: the node's time zone
(`time_zone` in linli.cfg, never the process's TZ), local calendar time in Lua and C
(tests/plugins/tp_time.c), and the test clock (`linlid --test-clock`, `linli clock`) that
moves the kernel's timers and times forward without sleeping.

Expected instants were computed with Python's zoneinfo: 1796466900123 is
2026-12-05T10:35:00.123Z, Saturday 18:35 in Shanghai.
"""
import os
import shutil
import signal
import subprocess
import sys
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

sys.path.insert(0, os.path.dirname(__file__))
from harness import (  # noqa: E402
    BUILD, LINLID, SRC, Daemon, check, eq, finish, main, wait_for, write)
from luakit import keeper  # noqa: E402

TP = os.path.abspath(os.environ.get("LINLI_TP_DIR", os.path.join(BUILD, "tests", "plugins")))
DAY = 86400000
INSTANT = 1796466900123
SHANGHAI = {"year": 2026, "month": 12, "day": 5, "hour": 18, "minute": 35, "second": 0,
            "ms": 123, "weekday": 6, "yearday": 339, "utc_offset_s": 28800, "dst": False}

# A script plugin with a day's timer, one of two days and an hourly one.
DAILY = f"""
plugin {{
  name = "daily", version = "1.0.0", sdk = "1.0", family = "custom",
  description = "timers of a day, two days and an hour", capabilities = {{}},
  init = function()
    FIRED, LAST, TWO, TICKS = 0, 0, 0, 0
    START = linli.time_now_ms()
    assert(linli.timer_add(86400000, 0, function()
      FIRED = FIRED + 1
      LAST = linli.time_now_ms()
    end))
    assert(linli.timer_add(2 * 86400000, 0, function() TWO = TWO + 1 end))
    assert(linli.timer_add(3600000, 3600000, function() TICKS = TICKS + 1 end))
    assert(linli.cmd_register("state", "", "the timers so far", function()
      return {{ fired = FIRED, last = LAST, two = TWO, ticks = TICKS, start = START }}
    end))
  end,
}}
"""


class node:
    """A daemon (with --test-clock unless told otherwise) running the script plugins
    `apps` ({file: text}) and the C plugin timecheck."""

    def __init__(self, extra="", apps=None, test_clock=True, node="hefei", level="city",
                 env=None):
        self.d = Daemon(node=node, level=level, extra=extra)
        self.args = ("--test-clock",) if test_clock else ()
        self.env = env or {}
        self.scripts = os.path.join(self.d.dir, "scripts")
        pdir = os.path.join(self.d.dir, "plugins")
        os.makedirs(os.path.join(self.scripts, "apps"))
        os.makedirs(pdir)
        for name, text in (apps or {}).items():
            write(os.path.join(self.scripts, "apps", name), text)
        shutil.copyfile(os.path.join(TP, "tp_time.so"), os.path.join(pdir, "tp_time.so"))
        self.d.write_config(node=node, level=level,
                            extra=f'script_dirs = [ "{self.scripts}" ];\n'
                                  f'plugin_dirs = [ "{pdir}" ];\n{extra}')

    def __enter__(self):
        saved = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        try:
            return self.d.start(args=self.args)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def __exit__(self, etype, *rest):
        finish(self.d, etype)


def refused(d, args, name, text, token=None):
    rc, out, err = d.cli(*args, env={"LINLI_SESSION": token} if token else None)
    check(rc == 1 and isinstance(out, dict) and out.get("name") == name
          and text in out.get("error", ""), f"linli {' '.join(args)}: {rc} {out} {err}")
    return out


def advance(d, duration):
    """`clock advance`, then log in again: the admin's session (8 h) follows the clock."""
    out = d.ok("clock", "advance", duration)
    d.login()
    return out


def run(d, code):
    """Run Lua code as the script plugin `keeper`; its first three results."""
    return d.ok("keeper", "run", "--stdin", input=code)


def local_text(ms, zone):
    return datetime.fromtimestamp(ms // 1000, ZoneInfo(zone)).isoformat()


# ---- the test clock ----

def case_one_day_timer_fires_after_clock_advance():
    """`clock advance 1d` fires a Lua and a C timer of one day at once, without sleeping;
    an hourly interval timer fires once, not 24 times, then goes on from the new now; a
    timer of two days waits for the next day; the reply comes after they have fired."""
    with node(apps={"daily.lua": DAILY}) as d:
        d.ok("timecheck", "arm", str(DAY))
        st = d.ok("daily", "state")
        eq((st["fired"], st["two"], st["ticks"]), (0, 0, 0), "before")
        c0 = d.ok("clock")
        eq((c0["offset_ms"], c0["time_zone"]), (0, "Asia/Shanghai"), "clock at start")
        eq(c0["local"], local_text(c0["now_ms"], "Asia/Shanghai"), "local text")

        out = d.ok("clock", "advance", "1d")
        eq((out["advanced_ms"], out["offset_ms"]), (DAY, DAY), "advanced")
        check(out["now_ms"] >= c0["now_ms"] + DAY, out)
        # The admin's session of 8 h has expired with the day: sessions follow the clock.
        refused(d, ("whoami",), "LINLI_EAUTH", "session expired")
        d.login()
        st = d.ok("daily", "state")
        eq((st["fired"], st["two"], st["ticks"]), (1, 0, 1), "after a day")
        check(st["last"] >= st["start"] + DAY, f"time_now_ms in the timer follows: {st}")
        c = d.ok("timecheck", "fired")
        eq(c["fired"], 1, "the C plugin's timer")
        check(c["at"] >= c0["now_ms"] + DAY and c["now"] >= c["at"], c)
        # Status shows the node's zone and its local time, a day on.
        s = d.ok("status")
        eq(s["time_zone"], "Asia/Shanghai", "status zone")
        check(s["local_time"].endswith("+08:00")
              and s["local_time"] >= local_text(c0["now_ms"] + DAY, "Asia/Shanghai"), s)

        advance(d, "1d")
        st = d.ok("daily", "state")
        eq((st["fired"], st["two"], st["ticks"]), (1, 1, 2), "after two days (one-shots once)")
        advance(d, "30m")
        eq(d.ok("daily", "state")["ticks"], 2, "the hourly timer runs from the jump")
        advance(d, "30m")
        eq(d.ok("daily", "state")["ticks"], 3, "an hour after the jump")
        eq(d.ok("clock")["offset_ms"], 2 * DAY + 3600000, "offset")
        # Each move is logged and audited under the admin's name.
        d.wait_log("test clock moved by admin: advance 1d: +86400000 ms")
        rows = d.ok("audit", "--who", "admin", "--action", "store.admin")
        moved = [r for r in rows if r.get("object") == "clock"]
        eq(len(moved), 4, f"audited moves {moved}")


def case_clock_set_and_refusals():
    """`clock set` takes ISO 8601 (local, Z or an offset) or ms; the clock only moves
    forward; bad times and durations are refused naming them; only the node's admin may
    move it (a district admin on the city node is refused, and audited)."""
    with node() as d:
        dadm = d.account("dadm", "admin", node="hefei/baohe")
        op = d.account("op", "operator")
        for tok in (dadm, op):
            refused(d, ("clock", "advance", "1d"), "LINLI_EPERM",
                    "'clock' acts on the whole node hefei", token=tok)
            refused(d, ("clock",), "LINLI_EPERM", "'clock' acts on the whole node", token=tok)
        rows = d.ok("audit", "--who", "dadm", "--result", "denied")
        check(any(r.get("object") == "clock" for r in rows), f"the refusal is audited: {rows}")
        now = d.ok("clock")["now_ms"]
        refused(d, ("clock", "advance", "-1h"), "LINLI_EINVAL", "only moves forward")
        refused(d, ("clock", "advance", "90"), "LINLI_EINVAL", "90 needs a unit")
        refused(d, ("clock", "advance", "soon"), "LINLI_EINVAL", "'soon' is not a duration")
        refused(d, ("clock", "advance", "3651d"), "LINLI_EINVAL", "longer than 3650 days")
        refused(d, ("clock", "set", "2020-01-01T00:00:00Z"), "LINLI_EINVAL",
                "is before the kernel's now")
        refused(d, ("clock", "set", "2030-02-30"), "LINLI_EINVAL", "'2030-02-30' is not")
        refused(d, ("clock", "set", "tomorrow"), "LINLI_EINVAL", "'tomorrow' is not a time")
        refused(d, ("clock", "turn"), "LINLI_EINVAL", "usage: clock [set TIME | advance")
        eq(d.ok("clock")["offset_ms"], 0, "nothing moved by refusals")
        # 2030-01-01T08:00 local is 00:00Z in Shanghai.
        out = d.ok("clock", "set", "2030-01-01T08:00")
        d.login()
        check(out["utc"].startswith("2030-01-01T00:00:0") and
              out["local"].startswith("2030-01-01T08:00:0"), out)
        check(out["advanced_ms"] >= 1893456000000 - now - 5000, out)
        out = d.ok("clock", "set", "2030-01-02T00:00:00+08:00")
        d.login()
        check(out["utc"].startswith("2030-01-01T16:00:0"), out)
        out = d.ok("clock", "set", str(1893456000000 + 2 * DAY))
        d.login()
        check(out["utc"].startswith("2030-01-03T00:00:0"), out)


def case_clock_refused_without_the_flag():
    """Without --test-clock the clock is the real one: `clock` in every form is refused
    saying so, and the time is untouched. (HTTP has no command path to reach it.)"""
    with node(test_clock=False) as d:
        for args in (("clock",), ("clock", "advance", "1d"), ("clock", "set", "2030-01-01")):
            refused(d, args, "LINLI_ENOTSUP", "linlid runs without --test-clock")
        st = d.ok("status")
        eq(st["time_zone"], "Asia/Shanghai", "status zone")
        now = int(datetime.now(timezone.utc).timestamp() * 1000)
        r = d.ok("timecheck", "fired")["now"]
        check(abs(r - now) < 60000, f"time_now_ms is the real time: {r} vs {now}")


def case_kernel_deadlines_follow_the_clock():
    """The kernel's own deadlines and times follow the clock: journal entries older than
    30 days go, a holder keeping them is released after its 7 days of grace with an alarm,
    and what is published after the jump carries the new time."""
    extra = f'catalog_dir = "{SRC}/catalog";\nretention = {{ tick_ms = 50; }};\n'
    with node(extra=extra) as d:
        first = d.ok("publish", "alarm/raised", '{"i": 0}')["seq"]
        d.ok("events", "hold", "reader1", str(first))  # keeps what follows `first`
        second = d.ok("publish", "alarm/raised", '{"i": 1}')["seq"]
        seqs = lambda: [e["seq"] for e in d.ok("events", "journal")["events"]]  # noqa: E731
        eq(seqs(), [first, second], "both kept: young")
        advance(d, "31d")
        wait_for(lambda: seqs() == [second], "the old entry before the hold trimmed")
        eq([h["name"] for h in d.ok("events", "holds")], ["reader1"], "still held")
        advance(d, "6d")
        eq(seqs(), [second], "held for 6 days")
        d.ok("publish", "alarm/raised", '{"i": 2}')
        ev = d.ok("events", "journal")["events"][-1]
        check(ev["time"] >= d.ok("clock")["now_ms"] - 60000, f"published at the new time: {ev}")
        advance(d, "2d")
        wait_for(lambda: d.ok("events", "holds") == [], "the hold released after its grace")
        wait_for(lambda: second not in seqs(), "trimmed past the released hold")
        d.wait_log("holder 'reader1'")


# ---- local calendar time ----

KEEPER = keeper(prelude="LOADZONE = linli.time_zone()  -- while the file loads\n")


def case_time_local_in_shanghai():
    """The default zone is Asia/Shanghai whatever TZ linlid starts with: a known instant
    gives +08:00 fields in Lua and in C; local times convert back; invalid dates are
    refused with LINLI_EINVAL naming them; local midnights."""
    with node(apps={"keeper.lua": KEEPER}, env={"TZ": "America/New_York"}) as d:
        r = run(d, f"return LOADZONE, linli.time_zone(), linli.time_local({INSTANT})")
        eq((r["r1"], r["r2"]), ("Asia/Shanghai", "Asia/Shanghai"), "zone")
        eq(r["r3"], SHANGHAI, "time_local")
        eq(d.ok("timecheck", "zone")["zone"], "Asia/Shanghai", "C time_zone")
        eq(d.ok("timecheck", "local", str(INSTANT)), SHANGHAI, "C time_local")
        r = run(d, "return linli.time_from_local({ year = 2026, month = 12, day = 5, "
                   "hour = 18, minute = 35, ms = 123 }), linli.time_from_local(linli.time_local("
                   f"{INSTANT}))")
        eq((r["r1"], r["r2"]), (INSTANT, INSTANT), "time_from_local")
        eq(d.ok("timecheck", "from", "2026", "12", "5", "18", "35", "0", "123")["ms"], INSTANT,
           "C time_from_local")
        # Midnights: 2026-12-05T00:00+08:00, the next, the one before.
        r = run(d, f"return linli.time_day_start({INSTANT}), linli.time_day_start({INSTANT}, 1),"
                   f" linli.time_day_start({INSTANT}, -1)")
        eq((r["r1"], r["r2"], r["r3"]), (1796400000000, 1796400000000 + DAY,
                                         1796400000000 - DAY), "time_day_start")
        eq(d.ok("timecheck", "daystart", str(INSTANT), "1")["ms"], 1796400000000 + DAY,
           "C time_day_start")
        # Refusals.
        for code, msg in (
                ("{ year = 2025, month = 2, day = 29 }", "2025-02-29 00:00:00.000 is not a date"),
                ("{ year = 2026, month = 4, day = 31 }", "2026-04-31"),
                ("{ year = 2026, month = 1, day = 1, hour = 24 }", "is not a date and time"),
                ("{ year = 2026, month = 2 }", "field 'day' is missing"),
                ("{ year = 2026, month = 1.5, day = 1 }", "field 'month' must be an integer"),
                ("{ year = 2026, month = 1, day = '1' }", "field 'day' must be an integer")):
            r = run(d, f"return linli.time_from_local({code})")
            check("r1" not in r and msg in r.get("r2", "") and r.get("r3") == "LINLI_EINVAL",
                  f"{code}: {r}")
        r = run(d, "return linli.time_local(1 << 62)")
        check("r1" not in r and "outside the years 1..9999" in r["r2"]
              and r["r3"] == "LINLI_EINVAL", r)
        r = run(d, "return pcall(linli.time_local, 1, 2)")
        check(r["r1"] is False and "no value expected" in r["r2"], r)
        refused(d, ("timecheck", "from", "2025", "2", "29", "0", "0", "0", "0"),
                "LINLI_EINVAL", "time_from_local: invalid argument")
        eq(d.ok("timecheck", "small"), {"local": -1, "from": -1, "daystart_null": -1},
           "C: a struct below the 1.1 size, and no out, are LINLI_EINVAL")


def case_berlin_across_summer_time():
    """time_zone = "Europe/Berlin": +02:00 in summer and +01:00 in winter; the hour skipped
    in March moves forward, the hour repeated in October gives the earlier instant, the day
    of the change has 23 hours; the clock and status show Berlin time."""
    summer, winter = 1751371200000, 1751371200000 - 180 * DAY  # 2025-07-01T12:00Z, January
    with node(extra='time_zone = "Europe/Berlin";\n',
              apps={"keeper.lua": keeper()}) as d:
        eq(d.ok("status")["time_zone"], "Europe/Berlin", "status")
        c = d.ok("clock")
        eq(c["local"], local_text(c["now_ms"], "Europe/Berlin"), "clock's local text")
        r = run(d, f"return linli.time_local({summer}), linli.time_local({winter})")
        eq((r["r1"]["hour"], r["r1"]["utc_offset_s"], r["r1"]["dst"]), (14, 7200, True), "July")
        eq((r["r2"]["hour"], r["r2"]["utc_offset_s"], r["r2"]["dst"]), (13, 3600, False),
           "January")
        r = run(d, "return linli.time_from_local({ year = 2025, month = 3, day = 30, hour = 2, "
                   "minute = 30 }), linli.time_from_local({ year = 2025, month = 10, day = 26, "
                   "hour = 2, minute = 30 })")
        eq((r["r1"], r["r2"]), (1743298200000, 1761438600000), "skipped and repeated hour")
        eq(d.ok("timecheck", "local", "1743298200000")["hour"], 3, "02:30 became 03:30")
        r = run(d, "local d0 = linli.time_day_start(1743328800000) "
                   "return d0, linli.time_day_start(1743328800000, 1) - d0")
        eq((r["r1"], r["r2"]), (1743289200000, 23 * 3600000), "the 23-hour day")
        eq(d.ok("timecheck", "daystart", "1743328800000", "0")["ms"], 1743289200000, "C")


# ---- the zone in the config ----

def zone_line(d):
    with open(d.cfg) as f:
        return next(i for i, l in enumerate(f, 1) if l.startswith("time_zone"))


def case_bad_zone_refused_naming_the_line():
    """An unknown zone is a config error naming the file, line, key and value: at
    --check-config, at start (exit 2), and on SIGHUP, which keeps the running zone; a
    good new zone then takes effect at once, in Lua and in C."""
    d = Daemon(extra='\ntime_zone = "Mars/Olympus";\n')
    try:
        want = (f"{d.cfg}:{zone_line(d)}: time_zone: 'Mars/Olympus' is not a time zone: "
                "no such zone file /usr/share/zoneinfo/Mars/Olympus")
        r = subprocess.run([LINLID, "--config", d.cfg, "--check-config"], capture_output=True,
                           text=True, timeout=60)
        check(r.returncode == 2 and want in r.stderr, f"{r.returncode} {r.stderr}")
        d.start(wait=False, args=("--test-clock",))  # --init-admin fails the same way
        eq(d.proc.wait(60), 2, "exit code of a start with a bad zone")
        check(want in d.logtext(), d.logtext())
    finally:
        d.cleanup()

    with node(extra='time_zone = "Europe/Berlin";\n', apps={"keeper.lua": keeper()}) as d:
        text = open(d.cfg).read()
        write(d.cfg, text.replace('"Europe/Berlin"', '"Asia/Atlantis"'))
        d.kill_with(signal.SIGHUP)
        d.wait_log(f"reload refused, keeping the running configuration: {d.cfg}:"
                   f"{zone_line(d)}: time_zone: 'Asia/Atlantis' is not a time zone")
        eq(d.ok("status")["time_zone"], "Europe/Berlin", "kept after a refused reload")
        eq(run(d, "return linli.time_zone()")["r1"], "Europe/Berlin", "Lua after refusal")
        write(d.cfg, text.replace('"Europe/Berlin"', '"Asia/Tokyo"'))
        d.kill_with(signal.SIGHUP)
        wait_for(lambda: d.ok("status")["time_zone"] == "Asia/Tokyo", "the new zone")
        d.wait_log("time_zone Europe/Berlin -> Asia/Tokyo")
        eq(run(d, "return linli.time_zone()")["r1"], "Asia/Tokyo", "Lua")
        eq(d.ok("timecheck", "zone")["zone"], "Asia/Tokyo", "C")
        eq(d.ok("timecheck", "local", str(INSTANT))["utc_offset_s"], 32400, "Tokyo's offset")
        check(d.ok("status")["local_time"].endswith("+09:00"), "status local time")


if __name__ == "__main__":
    sys.exit(main(globals()))
