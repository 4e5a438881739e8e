"""Integration tests of the SDK and the .so plugin loader, through a real linlid.

The test plugins are built by meson in tests/plugins/ (LINLI_TP_DIR). Refused
plugins carry an ELF constructor that prints "CONSTRUCTOR RAN <name>": its
absence from the daemon's log proves that none of their code ran.
"""
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import (  # noqa: E402
    SDK, SDK_MAJOR, SDK_MINOR,
    BUILD, LINLI, SRC, Daemon, TestFailure, by_name, check, eq, finish, main)

TP = os.path.abspath(os.environ.get("LINLI_TP_DIR", os.path.join(BUILD, "tests", "plugins")))


def tp(name):
    return os.path.join(TP, name + ".so")


class running:
    """A daemon whose plugin dir holds the given files: {file name: test plugin}."""

    def __init__(self, files=None, extra_dirs=(), start=True):
        self.d = Daemon()
        self.pdir = os.path.join(self.d.dir, "plugins")
        os.makedirs(self.pdir)
        for dst, src in (files or {}).items():
            put(self.pdir, dst, src)
        dirs = ", ".join(f'"{p}"' for p in [self.pdir, *extra_dirs])
        self.d.write_config(extra=f"plugin_dirs = [ {dirs} ];\n")
        self.d.grant_declared(self.pdir, *extra_dirs)  # the admin approves what they declare
        self.start = start

    def __enter__(self):
        if self.start:
            self.d.start()
        self.d.pdir = self.pdir
        return self.d

    def __exit__(self, etype, *rest):
        finish(self.d, etype)  # a clean stop after a case that passed


def put(pdir, dst, src):
    """Copy test plugin `src` to pdir/dst (in place, like `cp`, keeping the inode)."""
    path = os.path.join(pdir, dst)
    if src is None:
        with open(path, "w") as f:
            f.write("this is a text file, not a shared object\n")
    else:
        shutil.copyfile(tp(src), path)
    return path


def private_copies(d):
    """The plugins whose private copy linlid holds open (memfds named linli-NAME.N.so)."""
    names = []
    fds = f"/proc/{d.proc.pid}/fd"
    for fd in os.listdir(fds):
        try:
            target = os.readlink(os.path.join(fds, fd))
        except OSError:
            continue
        if target.startswith("/memfd:linli-"):
            names.append(target[len("/memfd:linli-"):].rsplit(".", 2)[0])
    return sorted(names)


def by_file(rows):
    return {os.path.basename(r["file"]): r for r in rows}


def fails(d, *args, name=None, needle=None, input=None):
    rc, out, err = d.cli(*args, input=input)
    check(rc == 1, f"linli {' '.join(args)} should fail, got rc {rc}: {out}")
    if name:
        eq(out["name"], name, f"error name of {args}")
    if needle:
        check(needle in out["error"], f"{args}: {needle!r} not in {out['error']!r}")
    return out


def log_index(d, needle):
    i = d.logtext().find(needle)
    check(i >= 0, f"log lacks {needle!r}:\n{d.logtext()}")
    return i


def case_good_plugin_runs():
    with running({"good.so": "tp_good"}) as d:
        rows = d.ok("plugins", "list")
        eq(len(rows), 1, "plugins listed")
        g = rows[0]
        eq((g["name"], g["state"], g["version"], g["family"], g["order"], g["reason"]),
           ("good", "running", "1.0.0", "custom", 1, None), "row")
        eq(g["file"], os.path.join(d.pdir, "good.so"), "file")
        eq(d.ok("status")["plugins"], 1, "status plugins")
        info = d.ok("plugins", "info", "good")
        eq(info["description"], "A well-formed test plugin (测试)", "description")
        eq(info["capabilities"], ["bus.publish:good/#", "store.read:residents"], "caps")
        eq(info["sdk"], SDK, "sdk")
        eq(info["scope"], "hefei", "scope")
        # The private copy: a sealed in-memory file of linlid, opened by path.
        check(os.readlink(info["loaded_from"]).startswith("/memfd:linli-good."),
              info["loaded_from"])
        with open(info["loaded_from"], "rb") as f, open(os.path.join(d.pdir, "good.so"), "rb") as g:
            eq(f.read() == g.read(), True, "the copy holds the checked bytes")
        kinds = [r["kind"] for r in info["resources"]]
        eq(kinds.count("command"), 5, f"commands in {info['resources']}")
        eq(kinds.count("timer"), 1, "timers")
        check({"kind": "command", "what": "good hello"} in info["resources"], info)

        r = d.ok("good", "hello", "张三")
        eq(r["greeting"], "hello, 张三", "greeting")
        eq((r["plugin"], r["scope"], r["ok"], r["ratio"], r["nothing"]),
           ("good", "hefei", True, 0.5, None), "fields")
        eq(r["tags"], ["社区", 7], "array")
        eq(r["sdk"]["major"], 1, "nested map")
        check(abs(r["now"] - time.time() * 1000) < 60000, f"time {r['now']}")
        fails(d, "good", "hello", "a", "b", name="LINLI_EINVAL", needle="usage: good hello")
        out = d.ok("good", "echo", "--stdin", input='{"a": [1, {"b": "文"}], "c": 2.5}')
        eq(out, {"a": [1, {"b": "文"}], "c": 2.5}, "echo")
        fails(d, "good", "echo", "--stdin", input='{"a": ', name="LINLI_EINVAL",
              needle="malformed JSON")
        fails(d, "good", "fail", name="LINLI_EPERM", needle="good fail: this command always fails")
        check(any(c["command"] == "good echo" for c in d.ok("help")), "help lists good echo")

        d.wait_log("good: tick 1")
        d.ok("good", "once")
        d.wait_log("good: one-shot timer fired (from a command)")
        eq(len(d.ok("plugins", "info", "good")["resources"]), 6, "one-shot forgotten")
        d.ok("good", "drop")
        fails(d, "good", "hello", name="LINLI_ENOENT", needle="unknown subcommand 'good hello'")
        eq(len(d.ok("plugins", "info", "good")["resources"]), 4, "after drop")
        eq(d.stop(), 0, "exit code")
        check("good: fini after" in d.logtext(), d.logtext())
        check(not os.path.exists(os.path.join(d.data, "plugins.run")), "nothing on disk")


def case_refusals_name_file_and_reason():
    files = {"major.so": "tp_major", "minor.so": "tp_minor", "size.so": "tp_size",
             "nodesc.so": "tp_nodesc", "notelf.so": None, "good.so": "tp_good",
             "good_again.so": "tp_dup", "status.so": "tp_status"}
    with running(files, extra_dirs=["/nonexistent/linli-plugins"]) as d:
        rows = by_file(d.ok("plugins", "list"))
        eq(len(rows), len(files), "every file listed")
        want = {
            "major.so": f"built for SDK {SDK_MAJOR + 1}.{SDK_MINOR}; this linlid takes SDK 1.x plugins",
            "minor.so": f"built for SDK 1.{SDK_MINOR + 1}, newer than this linlid's SDK {SDK}",
            "size.so": f"descriptor size 1234 is not the size of an SDK {SDK} descriptor",
            "nodesc.so": "no plugin descriptor (no .linli_plugin section",
            "notelf.so": "not an ELF file",
            "good_again.so": f"duplicate name 'good': already provided by {d.pdir}/good.so",
            "status.so": "name 'status' is a kernel command word",
        }
        for f, reason in want.items():
            r = rows[f]
            eq(r["state"], "refused", f"{f} state")
            check(reason in r["reason"], f"{f}: {reason!r} not in {r['reason']!r}")
            # One log line per refusal, naming the file and the reason.
            lines = [ln for ln in d.logtext().splitlines() if f"{d.pdir}/{f}: refused:" in ln]
            eq(len(lines), 1, f"log lines for {f}")
            check(reason in lines[0], lines[0])
        eq(rows["major.so"]["name"], "major", "a refused plugin keeps its name")
        eq(rows["notelf.so"]["name"], None, "no name from a text file")
        eq(rows["good.so"]["state"], "running", "the good one runs on")
        log = d.logtext()
        for n in ("major", "minor", "badsize", "nodesc", "good", "status"):
            check(f"CONSTRUCTOR RAN {n}" not in log, f"code of refused {n} ran:\n{log}")
        check("plugin dir /nonexistent/linli-plugins" in log, "missing dir logged")
        eq(d.ok("good", "hello")["greeting"], "hello, world", "daemon carries on")
        info = d.ok("plugins", "info", "notelf.so")
        eq((info["state"], info["reason"]), ("refused", "not an ELF file"), "info by file")
        eq(d.ok("plugins", "info", "major")["sdk"], f"{SDK_MAJOR + 1}.{SDK_MINOR}", "sdk of a refused plugin")
        fails(d, "plugins", "enable", "major", name="LINLI_EINVAL", needle=f"built for SDK {SDK_MAJOR + 1}.{SDK_MINOR}")
        fails(d, "plugins", "enable", "notelf.so", name="LINLI_EINVAL", needle="no plugin name")
        check("CONSTRUCTOR RAN major" not in d.logtext(), "enable ran refused code")
        eq(d.ok("status")["plugins"], 1, "status")


def case_failed_init_leaves_nothing():
    with running({"failinit.so": "tp_failinit", "good.so": "tp_good"}) as d:
        f = d.ok("plugins", "info", "failinit")
        eq(f["state"], "failed", "state")
        check("init returned LINLI_ECONFIG (bad configuration): cannot find the thing it needs"
              in f["reason"], f["reason"])
        eq((f["resources"], f["order"], f["loaded_from"]), ([], 0, None), "nothing left")
        fails(d, "failinit", "hello", name="LINLI_ENOENT", needle="unknown command 'failinit'")
        check(not any(c["command"].startswith("failinit") for c in d.ok("help")), "help")
        time.sleep(0.6)  # the timers were due after 100 and 150 ms
        log = d.logtext()
        check("TIMER FIRED" not in log, "a timer of the failed init fired")
        check("FINI MUST NOT RUN" not in log, "fini ran after a failed init")
        check(f"{d.pdir}/failinit.so: failinit failed: init returned" in log, log)
        eq(d.ok("status")["plugins"], 1, "only good counts")
        eq(private_copies(d), ["good"], "one private copy (good)")
        # enable retries (and fails the same way), still leaving nothing.
        fails(d, "plugins", "enable", "failinit", name="LINLI_ECONFIG",
              needle="cannot find the thing")
        time.sleep(0.3)
        check("TIMER FIRED" not in d.logtext(), "timer after enable")
        eq(d.ok("good", "hello")["plugin"], "good", "daemon fine")


def case_requires_orders_init_and_fini():
    # dep_a.so sorts first but requires dep_b: dep_b must be initialised first.
    with running({"dep_a.so": "tp_dep_a", "dep_b.so": "tp_dep_b"}) as d:
        rows = by_name(d.ok("plugins", "list"))
        eq((rows["dep_b"]["order"], rows["dep_a"]["order"]), (1, 2), "init order")
        eq([r["name"] for r in d.ok("plugins", "list")], ["dep_a", "dep_b"], "list: scan order")
        check(log_index(d, "dep_b: init dep_b") < log_index(d, "dep_a: init dep_a"), "log order")
        # Their constructors did run: the marker works (see the refusal cases).
        check("CONSTRUCTOR RAN dep_a" in d.logtext(), "constructor marker")
        eq(d.ok("plugins", "info", "dep_a")["requires"], ["dep_b"], "requires")
        eq(d.ok("plugins", "info", "dep_b")["required_by"], ["dep_a"], "required_by")
        fails(d, "plugins", "disable", "dep_b", name="LINLI_EBUSY",
              needle="'dep_a' requires it")
        eq(d.ok("dep_b", "ping")["pong"], "dep_b", "still running")
        eq(d.stop(), 0, "stop")
        check(log_index(d, "dep_a: fini dep_a") < log_index(d, "dep_b: fini dep_b"),
              "fini in reverse order")


def case_blocked_and_reload_under_dependents():
    with running({"dep_a.so": "tp_dep_a", "dep_b.so": "tp_dep_b"}) as d:
        # Reloading a required plugin leaves its dependents running.
        eq(d.ok("plugins", "reload", "dep_b")["state"], "running", "reload dep_b")
        eq(by_name(d.ok("plugins", "list"))["dep_a"]["state"], "running", "dep_a")
        eq(d.ok("dep_a", "ping")["pong"], "dep_a", "dep_a answers")
        # A new version that would close a cycle is refused; the old one runs on.
        loads = d.logtext().count("CONSTRUCTOR RAN dep_b")
        eq(loads, 2, "dep_b loaded twice (start, reload)")
        put(d.pdir, "dep_b.so", "tp_dep_b_cyc")
        fails(d, "plugins", "reload", "dep_b", name="LINLI_EINVAL",
              needle="dependency cycle: dep_b requires 'dep_a', which requires dep_b")
        eq(d.ok("dep_b", "ping")["pong"], "dep_b", "old dep_b answers")
        eq(d.logtext().count("CONSTRUCTOR RAN dep_b"), loads, "the cyclic version was loaded")
        put(d.pdir, "dep_b.so", "tp_dep_b")
        # Blocked: a requirement that is not running.
        d.ok("plugins", "disable", "dep_a")
        d.ok("plugins", "disable", "dep_b")
        fails(d, "plugins", "enable", "dep_a", name="LINLI_ESTATE",
              needle="dep_a requires 'dep_b', which is disabled")
        row = by_name(d.ok("plugins", "list"))["dep_a"]
        eq(row["state"], "blocked", "blocked after enable")
        d.stop()
        d.start()
        row = by_name(d.ok("plugins", "list"))["dep_a"]
        eq((row["state"], row["reason"]), ("blocked", "requires 'dep_b', which is disabled"),
           "blocked at start")
        check(f"{d.pdir}/dep_a.so: dep_a not started: requires 'dep_b'" in d.logtext(), "log")
        d.ok("plugins", "enable", "dep_b")
        eq(d.ok("plugins", "enable", "dep_a")["state"], "running", "enable in order")


def case_cycle_refuses_every_member():
    files = {"cyc_a.so": "tp_cyc_a", "cyc_b.so": "tp_cyc_b", "cyc_c.so": "tp_cyc_c",
             "dep_b.so": "tp_dep_b", "self.so": "tp_self"}
    with running(files) as d:
        rows = by_name(d.ok("plugins", "list"))
        for n in ("cyc_a", "cyc_b"):
            eq(rows[n]["state"], "refused", n)
            check("dependency cycle among" in rows[n]["reason"] and "cyc_a" in rows[n]["reason"]
                  and "cyc_b" in rows[n]["reason"], rows[n]["reason"])
        eq(rows["cyc_c"]["state"], "refused", "dependent of a cycle")
        check("requires 'cyc_a', which was refused" in rows["cyc_c"]["reason"],
              rows["cyc_c"]["reason"])
        eq((rows["selfish"]["state"], rows["selfish"]["reason"]), ("refused", "requires itself"),
           "self")
        eq(rows["dep_b"]["state"], "running", "unrelated plugin runs")
        log = d.logtext()
        for n in ("cyc_a", "cyc_b", "cyc_c", "selfish"):
            check(f"CONSTRUCTOR RAN {n}" not in log, f"{n} ran")
            check(f"{d.pdir}/{n if n != 'selfish' else 'self'}.so: refused:" in log, n)


def case_missing_requirement():
    with running({"missing.so": "tp_missing"}) as d:
        m = d.ok("plugins", "info", "missing")
        eq(m["state"], "refused", "state")
        eq(m["reason"], "requires 'nosuch', which is not installed", "reason")
        check("CONSTRUCTOR RAN missing" not in d.logtext(), "code ran")
        check(f"{d.pdir}/missing.so: refused: requires 'nosuch'" in d.logtext(), "log")
        eq(d.ok("status")["plugins"], 0, "status")


def case_reload_good_then_failing():
    with running({"reloadme.so": "tp_reload_v1"}) as d:
        eq(d.ok("reloadme", "version")["variant"], 1, "v1")
        order1 = d.ok("plugins", "info", "reloadme")["order"]
        put(d.pdir, "reloadme.so", "tp_reload_v2")  # over the file, in place
        row = d.ok("plugins", "reload", "reloadme")
        eq((row["state"], row["version"]), ("running", "2.0.0"), "row after reload")
        eq(d.ok("reloadme", "version")["variant"], 2, "v2 answers")
        check(log_index(d, "reloadme: variant 2 init") < log_index(d, "reloadme: variant 1 fini"),
              "new init before old fini")
        info = d.ok("plugins", "info", "reloadme")
        check(info["order"] > order1, "new order")
        eq(sorted(r["kind"] for r in info["resources"]), ["command", "timer"], "resources")
        eq(private_copies(d), ["reloadme"], "old private copy removed")

        put(d.pdir, "reloadme.so", "tp_reload_v3")
        fails(d, "plugins", "reload", "reloadme", name="LINLI_EIO",
              needle="reload of reloadme failed, reloadme 2.0.0 keeps running")
        out = fails(d, "plugins", "reload", "reloadme")
        check("variant 3 always fails" in out["error"], out["error"])
        eq(d.ok("reloadme", "version")["variant"], 2, "v2 still answers")
        row = by_name(d.ok("plugins", "list"))["reloadme"]
        eq((row["state"], row["version"], row["reason"]), ("running", "2.0.0", None), "row")
        check("variant 3 init" in d.logtext() and "variant 2 fini" not in d.logtext(), "log")
        eq(len(d.ok("plugins", "info", "reloadme")["resources"]), 2, "v3's things removed")

        put(d.pdir, "reloadme.so", None)  # not even a plugin now
        fails(d, "plugins", "reload", "reloadme", name="LINLI_EINVAL", needle="not an ELF file")
        put(d.pdir, "reloadme.so", "tp_good")  # another plugin's file
        fails(d, "plugins", "reload", "reloadme", needle="now holds plugin 'good'")
        eq(d.ok("reloadme", "version")["variant"], 2, "v2 survives bad files")
        eq(d.stop(), 0, "stop")
        check("reloadme: variant 2 fini" in d.logtext(), "fini at stop")


def case_disable_enable_survive_restart():
    with running({"good.so": "tp_good"}) as d:
        d.wait_log("good: tick 1")
        row = d.ok("plugins", "disable", "good")
        eq((row["state"], row["reason"]), ("disabled", "disabled by an admin"), "row")
        fails(d, "good", "hello", name="LINLI_ENOENT")
        eq(d.ok("status")["plugins"], 0, "status")
        ticks = d.logtext().count("good: tick")
        time.sleep(0.8)
        eq(d.logtext().count("good: tick"), ticks, "ticks after disable")
        with open(os.path.join(d.data, "plugins.disabled")) as f:
            check("good" in f.read().split(), "state file")
        eq(d.stop(), 0, "stop")
        d.start()
        row = by_name(d.ok("plugins", "list"))["good"]
        eq((row["state"], row["reason"]), ("disabled", "disabled by an admin"), "after restart")
        fails(d, "good", "hello", name="LINLI_ENOENT")
        eq(d.ok("plugins", "enable", "good")["state"], "running", "enable")
        eq(d.ok("good", "hello")["plugin"], "good", "answers")
        eq(d.ok("plugins", "enable", "good")["state"], "running", "enable twice is fine")
        eq(d.stop(), 0, "stop")
        d.start()
        eq(by_name(d.ok("plugins", "list"))["good"]["state"], "running", "enabled survives")
        fails(d, "plugins", "disable", "nosuch", name="LINLI_ENOENT", needle="no plugin named")


def case_install():
    with running({}) as d:
        eq(d.ok("plugins", "list"), [], "empty")
        row = d.ok("plugins", "install", tp("tp_good"), "--grant")
        eq((row["name"], row["state"], row["file"]),
           ("good", "running", os.path.join(d.pdir, "good.so")), "installed row")
        check(os.path.exists(os.path.join(d.pdir, "good.so")), "copied")
        eq(d.ok("good", "hello")["plugin"], "good", "runs")
        fails(d, "plugins", "install", tp("tp_good"), name="LINLI_EEXIST",
              needle="already installed")
        fails(d, "plugins", "install", "tp_good.so", name="LINLI_EINVAL",
              needle="give an absolute path")
        bad = os.path.join(d.dir, "bad.so")
        put(d.dir, "bad.so", None)
        fails(d, "plugins", "install", bad, name="LINLI_EINVAL", needle="not an ELF file")
        fails(d, "plugins", "install", tp("tp_failinit"), name="LINLI_ECONFIG",
              needle="did not start, so it was not installed")
        fails(d, "plugins", "install", tp("tp_dep_a"), name="LINLI_ESTATE",
              needle="requires 'dep_b', which is not installed")
        fails(d, "plugins", "install", tp("tp_major"), name="LINLI_EINVAL",
              needle=f"built for SDK {SDK_MAJOR + 1}.{SDK_MINOR}")
        eq(sorted(os.listdir(d.pdir)), ["good.so"], "nothing else copied")
        eq([r["name"] for r in d.ok("plugins", "list")], ["good"], "list")
        d.ok("plugins", "install", tp("tp_dep_b"))
        eq(d.ok("plugins", "install", tp("tp_dep_a"))["order"], 3, "dep_a after dep_b")
        check("CONSTRUCTOR RAN major" not in d.logtext(), "refused install ran code")
        eq(d.ok("status")["plugins"], 3, "status")
        d.stop()
        d.start()  # installed plugins load from the plugin dir at start
        eq(sorted(r["name"] for r in d.ok("plugins", "list") if r["state"] == "running"),
           ["dep_a", "dep_b", "good"], "after restart")


def case_no_plugin_dirs():
    d = Daemon()
    try:
        d.start()
        eq(d.ok("plugins", "list"), [], "nothing")
        fails(d, "plugins", "install", tp("tp_good"), name="LINLI_ECONFIG",
              needle="no plugin_dirs configured")
    finally:
        d.cleanup()


def case_console_errors():
    with running({"good.so": "tp_good"}) as d:
        fails(d, "plugins", "info", "nosuch", name="LINLI_ENOENT",
              needle="no plugin named 'nosuch'; see 'plugins list'")
        fails(d, "plugins", "info", name="LINLI_EINVAL", needle="usage: plugins info NAME")
        fails(d, "plugins", "reload", "good", "extra", name="LINLI_EINVAL")
        fails(d, "plugins", name="LINLI_EINVAL", needle="needs a subcommand")
        fails(d, "plugins", "frobnicate", name="LINLI_ENOENT")
        d.ok("plugins", "disable", "good")
        fails(d, "plugins", "reload", "good", name="LINLI_ESTATE",
              needle="'good' is not running (disabled); use 'plugins enable good'")
        # The text form prints a table.
        r = subprocess.run([LINLI, "--socket", d.sock, "plugins", "list"], capture_output=True,
                           text=True)
        eq(r.returncode, 0, "text rc")
        check("good" in r.stdout and "disabled" in r.stdout, r.stdout)


def libc_exports():
    libc = subprocess.run(["cc", "-print-file-name=libc.so.6"], capture_output=True,
                          text=True).stdout.strip()
    out = subprocess.run(["nm", "-D", "--defined-only", libc], capture_output=True, text=True,
                         check=True).stdout
    return {line.split()[-1].split("@")[0] for line in out.splitlines() if line.strip()}


def case_plugins_export_only_the_descriptor():
    """The plugin links no kernel symbol and exports nothing but its descriptor."""
    libc = libc_exports()
    check("snprintf" in libc, "libc symbols")
    for name in ("tp_good", "tp_dep_a", "tp_reload_v1"):
        und = subprocess.run(["nm", "-D", "--undefined-only", tp(name)], capture_output=True,
                             text=True, check=True).stdout.split("\n")
        for line in filter(None, und):
            parts = line.split()
            sym, kind = parts[-1], parts[-2]
            ok = (sym.split("@")[0] in libc or kind in ("w", "v") or sym.startswith("__asan")
                  or sym.startswith("__ubsan") or sym.startswith("__sanitizer")
                  or sym.startswith("__lsan"))
            check(ok, f"{name}: undefined symbol {sym} is not from libc")
            check(not sym.startswith(("linli_", "plug_", "cmd_", "kernel_", "record_")),
                  f"{name} needs kernel symbol {sym}")
        defined = subprocess.run(["nm", "-D", "--defined-only", tp(name)], capture_output=True,
                                 text=True, check=True).stdout.split()
        exported = [s for s in defined if s.startswith("linli")]
        eq(exported, ["linli_plugin_descriptor"], f"{name} exports")
        check(not any(s.startswith(("simple_", "good_", "cmd_", "tick")) for s in defined),
              f"{name} exports internals: {defined}")


def sh(args, **kw):
    r = subprocess.run(args, capture_output=True, text=True, timeout=600, **kw)
    if r.returncode != 0:
        raise TestFailure(f"{' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r.stdout


# The fields of sdk/template/greetings.cfg, as written there.
GREETING_FIELDS = """{ name = "who"; type = "string"; required = true; indexed = true; max_len = 64; },
    { name = "at";  type = "time";   required = true; }"""


def case_template_builds_out_of_tree():
    """Build sdk/template with pkg-config only, against an SDK installed to a temp prefix and
    against the checkout (build/meson-uninstalled); run both builds in a real linlid."""
    tmp = tempfile.mkdtemp(prefix="linli-sdk-")
    try:
        prefix = os.path.join(tmp, "prefix")
        sh(["meson", "setup", os.path.join(tmp, "b"), SRC, f"--prefix={prefix}",
            "-Dtests=false"])
        # The SDK: headers, .pc, and linli-bundle (built alone: it needs nothing of the kernel).
        sh(["ninja", "-C", os.path.join(tmp, "b"), "host/linli-bundle"])
        sh(["meson", "install", "-C", os.path.join(tmp, "b"), "--no-rebuild", "--tags", "devel"])
        bundle_tool = os.path.join(prefix, "bin", "linli-bundle")
        check(os.path.exists(bundle_tool), "linli-bundle installed with the SDK")
        pcs = glob.glob(os.path.join(prefix, "**", "linli-sdk.pc"), recursive=True)
        eq(len(pcs), 1, "one linli-sdk.pc")
        check(os.path.exists(os.path.join(prefix, "include", "linli", "linli.h")), "headers")
        check(os.path.exists(os.path.join(prefix, "share", "linli", "lua", "linli.lua")),
              "Lua definitions")
        check(os.path.exists(os.path.join(prefix, "share", "doc", "linli", "lua-api.md")),
              "Lua API doc")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PKG_CONFIG")}
        env["PKG_CONFIG_PATH"] = os.path.dirname(pcs[0])
        cflags = sh(["pkg-config", "--cflags", "linli-sdk"], env=env)
        check(f"-I{prefix}/include" in cflags and "-fvisibility=hidden" in cflags, cflags)
        eq(sh(["pkg-config", "--libs", "linli-sdk"], env=env).strip(), "", "no libs")
        eq(sh(["pkg-config", "--modversion", "linli-sdk"], env=env).strip(), SDK, "version")
        # A copy outside the source tree, so nothing can reach ../include.
        proj = os.path.join(tmp, "hello")
        shutil.copytree(os.path.join(SRC, "sdk", "template"), proj)
        # The vendor's key, and the template's bundle target signing with it.
        sh([bundle_tool, "keygen", "acme", "-o", tmp])
        sh(["meson", "setup", os.path.join(tmp, "hb"), proj,
            f"-Dsigning_key={os.path.join(tmp, 'acme.sec')}", "-Dvendor=Acme 智慧社区"], env=env)
        sh(["ninja", "-C", os.path.join(tmp, "hb")], env=env)
        so = os.path.join(tmp, "hb", "hello.so")
        check(os.path.exists(so), "hello.so built")
        sh(["meson", "compile", "-C", os.path.join(tmp, "hb"), "bundle"], env=env)
        bundle = os.path.join(tmp, "hb", "hello.bundle")
        out = sh([bundle_tool, "verify", bundle, "--key", os.path.join(tmp, "acme.pub")])
        check("hello 1.0.0 by Acme 智慧社区" in out and "signature verified" in out, out)
        # Against a checkout, nothing installed: the build dir's uninstalled .pc takes the
        # headers from the source tree (pkg-config prefers linli-sdk-uninstalled.pc).
        env["PKG_CONFIG_PATH"] = os.path.join(BUILD, "meson-uninstalled")
        cflags = sh(["pkg-config", "--cflags", "linli-sdk"], env=env).split()
        eq(cflags, [f"-I{os.path.join(SRC, 'sdk', 'include')}", "-fvisibility=hidden"],
           "the checkout's include path")
        eq(sh(["pkg-config", "--modversion", "linli-sdk"], env=env).strip(), SDK, "version")
        check(sh(["pkg-config", "--variable=plugindir", "linli-sdk"], env=env).strip()
              .endswith("/linli/plugins"), "plugindir (the template installs there)")
        proj2 = os.path.join(tmp, "hello-co")
        shutil.copytree(os.path.join(SRC, "sdk", "template"), proj2)
        sh(["meson", "setup", os.path.join(tmp, "cb"), proj2], env=env)
        sh(["ninja", "-C", os.path.join(tmp, "cb")], env=env)
        so2 = os.path.join(tmp, "cb", "hello.so")
        check(os.path.exists(so2), "hello.so built against the checkout")
        with running({}) as d:
            shutil.copyfile(so, os.path.join(d.pdir, "hello.so"))
            d.stop()
            d.grant_declared(d.pdir)  # the admin approves bus.publish:hello/#
            d.start()
            row = by_name(d.ok("plugins", "list"))["hello"]
            eq((row["state"], row["version"]), ("running", "1.0.0"), "template runs")
            r = d.ok("hello", "greet", "王五")
            eq((r["greeting"], r["from"], r["scope"], r["count"]),
               ("hello, 王五", "hello", "hefei", 1), "greet")
            eq(d.ok("hello", "greet")["count"], 2, "state kept")
            # The one built against the checkout replaces it: a new init, then the old fini.
            shutil.copyfile(so2, os.path.join(d.pdir, "hello.so"))
            d.ok("plugins", "reload", "hello")
            check(by_name(d.ok("plugins", "list"))["hello"]["state"] == "running", "reloaded")
            eq(d.ok("hello", "greet", "赵六")["count"], 1, "the checkout's build answers")
            check("hello: bye after 2 greeting(s)" in d.logtext(), "the installed one's fini")
            # A command that acts as its caller: an operator notes, a viewer may not.
            eq(d.ok("hello", "note", "早上好")["by"], "admin", "the admin notes")
            viewer = d.account("v1", "viewer")
            rc, _, err = d.cli("hello", "note", "x", env={"LINLI_SESSION": viewer})
            check(rc == 1 and "action hello.note needs role operator or above" in err, err)
            check(f"hello: ready at hefei (SDK {SDK})" in d.logtext(), d.logtext())
            # Copied into a plugin dir, not installed from its bundle: no dataset of its own.
            rc, out, err = d.cli("hello", "remember", "王五")
            check(rc == 1 and "install hello's bundle: it brings the dataset" in err, err)
            d.stop()
            check("hello: bye after 1 greeting(s)" in d.logtext(), "fini")
        # The signed bundle installs, from a console on tcp://, on a node that trusts the
        # vendor's key.
        import test_bundle
        d = test_bundle.Node()
        try:
            d.start()
            rc, out, err = d.remote("trust", "add", "acme", os.path.join(tmp, "acme.pub"))
            eq(rc, 0, err)
            rc, row, err = d.remote("plugins", "install", bundle, "--grant")
            eq(rc, 0, err)
            eq((row["name"], row["state"], row["version"]), ("hello", "running", "1.0.0"),
               "the template's bundle runs")
            check(d.ok("plugins", "info", "hello")["signed_by"].startswith("acme ("), "signer")
            eq(d.ok("hello", "greet", "王五")["greeting"], "hello, 王五", "it answers")
            # The dataset the bundle brings (greetings.cfg): hello__greetings, used by the plugin.
            kept = d.ok("hello", "remember", "王五")
            eq(kept["dataset"], "hello__greetings", kept)
            eq(d.ok("data", "get", "hello__greetings", kept["id"])["who"], "王五", "kept")

            def variant(version, fields):
                """The template at another version with greetings.cfg's fields replaced."""
                p = os.path.join(tmp, "hello-" + version)
                shutil.copytree(os.path.join(SRC, "sdk", "template"), p)
                for f, old, new in (("hello.c", '.version = "1.0.0"', f'.version = "{version}"'),
                                    ("greetings.cfg", GREETING_FIELDS, fields)):
                    with open(os.path.join(p, f), encoding="utf-8") as fp:
                        text = fp.read()
                    check(old in text, f"{f} holds {old!r}")
                    with open(os.path.join(p, f), "w", encoding="utf-8") as fp:
                        fp.write(text.replace(old, new))
                b = os.path.join(tmp, "b-" + version)
                sh(["meson", "setup", b, p, f"-Dsigning_key={os.path.join(tmp, 'acme.sec')}",
                    "-Dvendor=Acme 智慧社区"], env=env)
                sh(["meson", "compile", "-C", b, "bundle"], env=env)
                return os.path.join(b, "hello.bundle")

            # An upgrade adds a field: the record kept, the field usable at once ...
            up = variant("1.1.0", GREETING_FIELDS + ',\n    { name = "mood"; type = "string"; }')
            rc, row, err = d.remote("plugins", "upgrade", up)
            eq(rc, 0, f"upgrade: {err}")
            eq(row["version"], "1.1.0", row)
            d.ok("data", "put", "hello__greetings", "--id", "g2",
                 '{"who": "赵六", "at": "2026-12-01T08:00:00Z", "mood": "好"}')
            eq(d.ok("data", "get", "hello__greetings", kept["id"])["who"], "王五", "kept across")
            # ... one that drops a field is refused, naming it; nothing changes.
            bad = variant("1.2.0", GREETING_FIELDS.split(",\n")[0])
            rc, out, err = d.remote("plugins", "upgrade", bad)
            check(rc == 1 and "field 'greetings.at' (hello__greetings) is removed" in err
                  and "--migrate greetings.at=drop" in err, f"a removed field: {rc} {err}")
            eq(d.ok("plugins", "info", "hello")["version"], "1.1.0", "still 1.1.0")
            eq(d.ok("data", "get", "hello__greetings", "g2")["mood"], "好", "nothing changed")
            # remove keeps the data; remove --purge takes the dataset and its records.
            rc, out, err = d.remote("plugins", "remove", "hello", "--purge")
            eq(rc, 0, err)
            rc, out, err = d.cli("data", "get", "hello__greetings", kept["id"])
            check(rc == 1, f"purged: {out} {err}")
        finally:
            finish(d, sys.exc_info()[0])

    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def tail_json(d, pattern, count, seconds):
    """Start `linli events tail PATTERN --json` for at most `seconds`; return the process."""
    return subprocess.Popen([LINLI, "--socket", d.sock, "--json", "events", "tail", pattern,
                             "--count", str(count), "--seconds", str(seconds)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def tail_lines(p):
    out, err = p.communicate(timeout=60)
    return [json.loads(l) for l in out.splitlines() if l.strip()]


def wait_subscribers(d, n):
    for _ in range(200):
        if d.ok("status")["bus_subscriptions"] >= n:
            return
        time.sleep(0.05)
    raise TestFailure(f"never {n} subscriptions: {d.ok('status')}")


def case_plugin_bus_subscribe_and_publish():
    with running({"tp_bus.so": "tp_bus"}) as d:
        base = d.ok("status")["bus_subscriptions"]
        eq(base >= 1, True, "the plugin's subscription exists")
        t = tail_json(d, "test/out/#", 2, 20)
        wait_subscribers(d, base + 1)
        d.ok("publish", "test/in/a", '{"n": 21}')
        d.ok("publish", "test/in/b", '{"n": 5}', "--scope", "hefei/baohe")
        ev = tail_lines(t)
        eq([e["topic"] for e in ev], ["test/out/a", "test/out/b"], "plugin answers in order")
        eq([e["payload"]["n2"] for e in ev], [42, 10], "payload read and written via records")
        eq({e["publisher"] for e in ev}, {"tp_bus"}, "publisher is the plugin")
        eq(ev[1]["scope"], "hefei/baohe", "the event's scope is kept")
        # What it did not declare, or outside its jurisdiction, is refused.
        for what in ("forbidden", "outside", "subwide"):
            eq(d.ok("tp_bus", what)["rc"], -5, f"{what} must be LINLI_EPERM")
        check("no granted capability bus.publish:alarm/x" in d.logtext(), d.logtext())
        check("outside its jurisdiction" in d.logtext(), "scope refusal logged")
        info = d.ok("plugins", "info", "tp_bus")
        check("subscription" in json.dumps(info) and "test/in/#" in json.dumps(info), info)
        # A handler error is logged with the plugin's name; delivery goes on.
        d.ok("publish", "test/in/c", '{"m": 1}')
        d.wait_log("tp_bus")
        # Disable removes the subscription; enable brings it back.
        d.ok("plugins", "disable", "tp_bus")
        eq(d.ok("status")["bus_subscriptions"], base - 1, "subscription gone with disable")
        d.ok("plugins", "enable", "tp_bus")
        eq(d.ok("status")["bus_subscriptions"], base, "subscription back with enable")
        # Unsubscribing from the plugin's own command stops the answers.
        eq(d.ok("tp_bus", "stop")["rc"], 0, "unsubscribe")
        eq(d.ok("tp_bus", "stop")["rc"], -3, "second unsubscribe: LINLI_ENOENT")
        t = tail_json(d, "test/out/#", 1, 2)
        wait_subscribers(d, base)
        d.ok("publish", "test/in/d", '{"n": 1}')
        eq(tail_lines(t), [], "no answer after unsubscribe")


if __name__ == "__main__":
    sys.exit(main(dict(globals())))
