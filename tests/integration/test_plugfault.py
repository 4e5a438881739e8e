"""A C plugin that harms the node, through a real linlid (issue 14, item 5).

tests/plugins/tp_fault.c is plugin `fault`: as linli.cfg says, its init spins
forever or calls exit(), or a timer of it writes through NULL; its commands
sleep or call exit(). The watchdog must name it and its handler, SIGTERM must
still end a stuck daemon, exit() from it must not look like a clean stop, and
a plugin that kills linlid at every start must be quarantined.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import (  # noqa: E402
    BUILD, LINLI, LINLID, Daemon, TestFailure, by_name, check, eq, finish, main)

TP = os.path.abspath(os.environ.get("LINLI_TP_DIR", os.path.join(BUILD, "tests", "plugins")))
WARN_MS, GRACE_MS = 300, 1500


def fault_daemon(mode="", extra=""):
    """A daemon whose plugin dir holds tp_fault.so, configured with `mode`."""
    d = Daemon()
    d.pdir = os.path.join(d.dir, "plugins")
    os.makedirs(d.pdir)
    shutil.copyfile(os.path.join(TP, "tp_fault.so"), os.path.join(d.pdir, "fault.so"))
    configure(d, mode, extra)
    return d


def configure(d, mode, extra=""):
    d.write_config(extra=f'plugin_dirs = [ "{d.pdir}" ];\n'
                         f'plugins = {{ fault = {{ mode = "{mode}"; }}; }};\n'
                         f'watchdog = {{ warn_ms = {WARN_MS}; stop_grace_ms = {GRACE_MS}; }};\n'
                         + extra)


def died(d, timeout=60):
    """Wait for a daemon that is meant to end by itself: (exit status, its log). Its log
    is moved aside, so that what follows (and finish) reads only the next start's."""
    try:
        rc = d.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        raise TestFailure(f"linlid did not end within {timeout} s:\n{d.logtext()}")
    log = d.logtext()
    n = len([f for f in os.listdir(d.dir) if f.startswith("linlid.log.")])
    os.rename(d.logpath, f"{d.logpath}.{n}")
    d.proc = None
    return rc, log


def fault_row(d):
    return by_name(d.ok("plugins", "list"))["fault"]


def case_watchdog_names_a_slow_command():
    d = fault_daemon()
    etype = None
    try:
        d.start()
        eq(fault_row(d)["state"], "running", "fault runs")
        t0 = time.time()
        d.ok("fault", "nap", "1200")  # the kernel thread waits 1.2 s in the plugin
        check(time.time() - t0 >= 1.2, "the nap was short")
        d.wait_log("plugin fault has been running its command 'fault nap' for ")
        d.wait_log("plugin fault: its command 'fault nap' returned after about ")
        check(f"(watchdog.warn_ms = {WARN_MS})" in d.logtext(), "the limit is named")
        # A short call is not logged.
        d.ok("fault", "nap", "50")
        time.sleep(0.4)
        eq(d.logtext().count("has been running"), 1, "only the long call was logged")
        # A clean stop leaves no death behind.
        eq(d.stop(), 0, "clean stop")
        d.start()
        eq(d.ok("plugins", "info", "fault")["deaths"], 0, "deaths after a clean stop")
        check("died while" not in d.logtext(), d.logtext())
    except BaseException as e:
        etype = type(e)
        raise
    finally:
        finish(d, etype)


def case_stuck_init_is_named_and_sigterm_ends_it():
    d = fault_daemon("spin_init")
    etype = None
    try:
        d.start(wait=False)
        d.wait_log("plugin fault has been running its init for", timeout=30)
        time.sleep(0.2)
        check(d.proc.poll() is None, "linlid still runs")
        t0 = time.time()
        d.proc.send_signal(signal.SIGTERM)
        rc, log = died(d, timeout=GRACE_MS / 1000 + 20)
        took = time.time() - t0
        eq(rc, 4, "exit status of a stuck stop")
        check(GRACE_MS / 1000 - 0.2 <= took <= GRACE_MS / 1000 + 5, f"ended after {took:.1f} s")
        check(re.search(r"error kernel: not stopped \d+\.\d s after SIGTERM \(watchdog\."
                        rf"stop_grace_ms = {GRACE_MS}\): plugin fault has been running its "
                        r"init for \d+\.\d s; ending linlid with status 4", log), log)
        check("ending linlid with status 4" in log, log)
        # The plugin it ended in counts a death at the next start.
        configure(d, "")
        d.start()
        eq(d.ok("plugins", "info", "fault")["deaths"], 1, "deaths")
        check("died while plugin fault ran its init: death 1; at 3 it is quarantined"
              in d.logtext(), d.logtext())
        eq(fault_row(d)["state"], "running", "one death is not a quarantine")
    except BaseException as e:
        etype = type(e)
        raise
    finally:
        finish(d, etype)


def case_exit_from_a_plugin_is_logged_and_not_zero():
    d = fault_daemon("exit_init")
    etype = None
    try:
        d.start(wait=False)
        rc, log = died(d)
        eq(rc, 3, "exit status after exit(0) in init")
        check("error plugins: plugin fault called exit(0) in its init: ending linlid with "
              "status 3" in log, log)
        check(" stopped" not in log.split("called exit(0)")[1], "it looked like a stop")
        # exit(7) in a command handler: the same, naming the command.
        configure(d, "")
        d.start()
        eq(d.ok("plugins", "info", "fault")["deaths"], 1, "exit counts as a death")
        # The console waits for an answer that never comes: it is not waited for.
        cli = subprocess.Popen([LINLI, "--socket", d.sock, "fault", "exit", "7"],
                               env=dict(os.environ, LINLI_SESSION=d.session),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            rc, log = died(d)
        finally:
            cli.kill()
            cli.wait()
        eq(rc, 3, "exit status after exit(7) in a command")
        check("plugin fault called exit(7) in its command 'fault exit': ending linlid with "
              "status 3" in log, log)
        d.start()
        eq(d.ok("plugins", "info", "fault")["deaths"], 2, "deaths")
    except BaseException as e:
        etype = type(e)
        raise
    finally:
        finish(d, etype)


def case_crash_loop_quarantines_the_plugin():
    d = fault_daemon("segv_timer")
    etype = None
    try:
        for n in (1, 2, 3):
            d.start(wait=False)
            rc, log = died(d)
            check(rc != 0, f"start {n}: linlid survived a write through NULL ({rc})")
            check("fault: about to write through a NULL pointer" in log, log)
            if n > 1:
                check(re.search(rf"died while plugin fault ran its timer \d+: death {n - 1};",
                                log), log)
        # The fourth start: three deaths, so it is not started; linlid runs without it.
        d.start()
        log = d.logtext()
        check(re.search(r"died while plugin fault ran its timer \d+: 3 deaths, it is "
                        r"quarantined until 'linli plugins enable fault'", log), log)
        row = fault_row(d)
        eq(row["state"], "quarantined", "state")
        check(re.fullmatch(r"linlid died 3 times while it ran \(the last time in its timer "
                           r"\d+\); 'linli plugins enable fault' starts it again",
                           row["reason"]), row["reason"])
        info = d.ok("plugins", "info", "fault")
        eq((info["state"], info["deaths"], info["resources"]), ("quarantined", 3, []), "info")
        check("fault: init" not in log, "its init ran")
        time.sleep(0.5)  # its timer was due 200 ms after init
        eq(d.ok("status")["plugins"], 0, "status")
        with open(os.path.join(d.data, "plugins.deaths")) as f:
            check(re.search(r"\nfault 3 its timer \d+\n", f.read()), "plugins.deaths")
        fails = d.cli("fault", "nap", "1")
        eq(fails[0], 1, "its commands are gone")
        # Quarantine survives a restart; an admin's enable clears it.
        eq(d.stop(), 0, "stop")
        configure(d, "")  # the admin fixed what made it crash
        d.start()
        eq(fault_row(d)["state"], "quarantined", "after a restart")
        row = d.ok("plugins", "enable", "fault")
        eq((row["state"], row["reason"]), ("running", None), "enable")
        eq(d.ok("plugins", "info", "fault")["deaths"], 0, "enable clears the count")
        check("fault: its count of linlid's deaths is cleared" in d.logtext(), d.logtext())
        eq(d.stop(), 0, "stop")
        d.start()
        eq(fault_row(d)["state"], "running", "cleared for good")
        eq(d.ok("plugins", "info", "fault")["deaths"], 0, "deaths")
    except BaseException as e:
        etype = type(e)
        raise
    finally:
        finish(d, etype)


def case_watchdog_config_refusals():
    d = Daemon()
    try:
        for text, needle in (
                ("watchdog = { warn_ms = 50; };", "watchdog.warn_ms: 50 is below 100 (0 turns "
                                                  "it off)"),
                ("watchdog = { stop_grace_ms = -1; };", "watchdog.stop_grace_ms: -1 is outside "
                                                        "0..3600000"),
                ("watchdog = { warn_ms = \"1s\"; };", "watchdog.warn_ms"),
                ("watchdog = { grace = 1; };", "watchdog.grace")):
            d.write_config(extra=text + "\n")
            r = subprocess.run([LINLID, "--config", d.cfg, "--check-config"],
                               capture_output=True, text=True, timeout=30)
            eq(r.returncode, 2, f"--check-config of {text}")
            check(f"{d.cfg}:7: {needle}" in r.stderr, f"{needle!r} not in {r.stderr!r}")
        d.write_config(extra="watchdog = { warn_ms = 0; stop_grace_ms = 0; };\n")
        r = subprocess.run([LINLID, "--config", d.cfg, "--check-config"],
                           capture_output=True, text=True, timeout=30)
        eq(r.returncode, 0, f"0 turns them off: {r.stderr}")
    finally:
        d.cleanup()


if __name__ == "__main__":
    sys.exit(main(dict(globals())))
