"""Drive a real linlid for integration tests.

Daemon() writes a config into a fresh temp dir, starts `linlid --foreground`,
waits until `linli status` answers, and stops it. cli() runs the real `linli`
console. Binaries come from the environment meson sets (LINLID, LINLI, CTLRAW).
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

LINLID = os.environ.get("LINLID", "build/host/linlid")
LINLI = os.environ.get("LINLI", "build/host/linli")
CTLRAW = os.environ.get("CTLRAW", "build/tests/ctlraw")
SRC = os.environ.get("LINLI_SRC", os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
BUILD = os.environ.get("LINLI_BUILD", os.path.join(SRC, "build"))
COMMUNITY = "hefei/baohe/binhu/yuelan"  # the community node of the family plugins' tests


def _sdk_version():
    """The SDK version (major, minor) of the sources, from linli/version.h."""
    want = {}
    with open(os.path.join(SRC, "sdk", "include", "linli", "version.h")) as f:
        for line in f:
            w = line.split()
            if len(w) == 3 and w[0] == "#define" and w[1] in ("LINLI_SDK_MAJOR", "LINLI_SDK_MINOR"):
                want[w[1]] = int(w[2])
    return want["LINLI_SDK_MAJOR"], want["LINLI_SDK_MINOR"]


SDK_MAJOR, SDK_MINOR = _sdk_version()
SDK = f"{SDK_MAJOR}.{SDK_MINOR}"


class TestFailure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def eq(got, want, what=""):
    if got != want:
        raise TestFailure(f"{what}: got {got!r}, want {want!r}")


def finish(d, etype):
    """End a case's daemon: after a case that raised nothing, a clean stop (exit 0, no
    sanitizer report in its log); the temp dir goes in every case."""
    try:
        if etype is None and d.proc:
            eq(d.stop(), 0, "linlid exit code")
            log = d.logtext()
            # (stop() counts nng 1.5.2's exit race as a clean stop: its report is no error)
            check(("Sanitizer" not in log and "runtime error" not in log) or
                  nng_exit_race(log), log[-3000:])
        elif d.proc and d.proc.poll() is not None and d.proc.returncode:
            d.print_log(f"the case failed; linlid had ended ({exit_text(d.proc.returncode)})")
        elif os.environ.get("LINLI_IT_SHOWLOG"):
            d.print_log("the case failed (LINLI_IT_SHOWLOG)")
    finally:
        d.cleanup()


class PluginNode:
    """A community linlid (悦澜社区) whose plugin dir holds copies of `sos`, each granted
    what it declares; `conf` is the text of the plugins.NAME group (configure() rewrites
    it, for a reload), `groups` more groups of `plugins` (e.g. sim's); with clock, the
    test clock. `with PluginNode(...) as d` starts it and gives the Daemon."""

    def __init__(self, name, sos, conf="", clock=False, groups="", catalog=None):
        self.name, self.groups = name, groups
        self.d = Daemon(node=COMMUNITY, level="community", name="悦澜社区")
        self.pdir = os.path.join(self.d.dir, "plugins")
        os.makedirs(self.pdir)
        for so in sos:
            shutil.copyfile(so, os.path.join(self.pdir, os.path.basename(so)))
        self.extra = (f'catalog_dir = "{catalog or os.path.join(SRC, "catalog")}";\n'
                      f'plugin_dirs = [ "{self.pdir}" ];\n')
        self.configure(conf)
        self.d.grant_declared(self.pdir)
        self.args = ("--test-clock",) if clock else ()

    def configure(self, conf):
        self.d.write_config(node=COMMUNITY, level="community", name="悦澜社区",
                            extra=self.extra + f"plugins = {{ {self.name} = {{ {conf} }}; "
                                               f"{self.groups} }};\n")

    def __enter__(self):
        try:
            self.d.start(args=self.args)
            return self.d
        except BaseException:
            self.d.cleanup()
            raise

    def __exit__(self, etype, *rest):
        finish(self.d, etype)


def canonical_addr(addr):
    """The console's key for a control address: an ipc:// path absolute, its dir resolved."""
    if not addr.startswith("ipc://"):
        return addr
    path = os.path.abspath(addr[6:])
    return "ipc://" + os.path.join(os.path.realpath(os.path.dirname(path)),
                                   os.path.basename(path))


def session_in(path, addr):
    """The session {"user", "token"} a console's session file keeps for the daemon at addr
    (sessions are kept by the daemon's node id; addrs maps canonical addresses to it)."""
    with open(path) as f:
        s = json.load(f)
    return s["nodes"][s["addrs"][canonical_addr(addr)]]


def nng_exit_race(log):
    """True when `log` (one run of linlid, stopped cleanly) ends in a LeakSanitizer report
    that holds nothing but nng's own objects leaked in a cycle: no direct leak (a block
    nothing points to, which is what our code leaking anything looks like), every indirect
    block allocated inside libnng (or inside mbedtls, nng's TLS), and no other sanitizer error. That is nng 1.5.2 (Debian
    12) losing a listener and its pipes when a connection races the socket's close (about
    1 stop in 50 with clients connecting, also with nng_fini and without our listener
    close first); the objects are nng's, freed by no one, and only at exit."""
    i = log.rfind("ERROR: LeakSanitizer: detected memory leaks")
    if i < 0 or "ERROR: AddressSanitizer" in log or "runtime error:" in log:
        return False
    blocks = [b for b in log[i:].split("\n\n") if "leak of" in b]
    # With a TLS listener the cycle holds nng's TLS engine's objects too: blocks allocated in
    # mbedtls, whose stacks the sanitizer's fast unwinder cuts inside libmbedcrypto (no frame
    # pointers there), so they name no libnng frame; still indirect, still nng's.
    return (any("libnng.so" in b for b in blocks) and
            all(b.lstrip().startswith("Indirect leak of") and
                ("libnng.so" in b or "libmbed" in b) for b in blocks))


def exit_text(rc):
    """A Popen returncode in words: "status 3", "signal SIGABRT"."""
    if rc is not None and rc < 0:
        try:
            return f"signal {signal.Signals(-rc).name}"
        except ValueError:
            return f"signal {-rc}"
    return f"status {rc}"


def wait_for(fn, what, timeout=10):
    """fn() until it returns something true (returned), or fail naming `what`."""
    end = time.time() + timeout
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    raise TestFailure(f"timed out waiting for {what}")


def by_name(rows):
    """Rows of a listing by their "name" (rows without one are left out)."""
    return {r["name"]: r for r in rows if r.get("name")}


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def plugin_meta(path):
    """(name, [capabilities]) from a plugin's .linli_plugin block (struct
    linli_plugin_meta, 1.0 layout), or None when the file has no valid block."""
    with open(path, "rb") as f:
        data = f.read()
    i = data.find(b"LINLIPM\0")
    while i >= 0:
        if int.from_bytes(data[i + 8:i + 12], "little") == 7280:
            def text(off, n):
                return data[i + off:i + off + n].split(b"\0")[0].decode()
            caps = [text(1136 + 96 * k, 96) for k in range(64)]
            return text(16, 32), [c for c in caps if c]
        i = data.find(b"LINLIPM\0", i + 1)
    return None


_cli_calls = 0
LEAK_EVERY = int(os.environ.get("LINLI_IT_LEAK_EVERY", "8"))


class Daemon:
    def __init__(self, node="hefei", level="city", name="合肥市", extra="", tmp=None):
        self.dir = tmp or tempfile.mkdtemp(prefix="linli-it-")
        self.data = os.path.join(self.dir, "data")
        self.sock = f"ipc://{self.dir}/ctl.sock"
        self.cfg = os.path.join(self.dir, "linli.cfg")
        self.logpath = os.path.join(self.dir, "linlid.log")
        self.proc = None
        self.session = None       # the admin's session token, after start()
        self.bootstrapped = False
        self.admin, self.password = "admin", "Linli-Test-Passw0rd"
        self.session_file = os.path.join(self.dir, "sessions.json")
        self.grants = {}          # "plugin:NAME" / "rule:NAME" -> capabilities, granted before start
        self.granted = set()
        self.write_config(node, level, name, extra)

    def grant(self, subject, *caps):
        """Have the admin grant capabilities to plugin:NAME or rule:NAME before the start
        (linlid --grant, as an operator provisioning a node would); "--all" grants every
        capability its file declares. Returns self."""
        self.grants.setdefault(subject, [])
        self.grants[subject] += [c for c in caps if c not in self.grants[subject]]
        return self

    def config_text(self, node, level, name, extra=""):
        return (f'node = {{ path = "{node}"; level = "{level}"; name = "{name}"; }};\n'
                f'data_dir = "{self.data}";\n'
                f'log_level = "debug";\n'
                f'control = {{ listen = [ "{self.sock}" ]; }};\n'
                f'store = {{ sync = false; }};\n'
                # Tests hash passwords with libsodium's minimum cost: production
                # keeps the interactive default.
                f'accounts = {{ pwhash = "min"; }};\n' + extra)

    def write_config(self, node="hefei", level="city", name="合肥市", extra="", text=None):
        with open(self.cfg, "w") as f:
            f.write(text if text is not None else self.config_text(node, level, name, extra))

    def bootstrap(self):
        """Create the first administrator (linlid --init-admin), once per data dir."""
        if self.bootstrapped:
            return
        r = subprocess.run([LINLID, "--config", self.cfg, "--init-admin", self.admin],
                           input=self.password + "\n", capture_output=True, text=True, timeout=60)
        # A start that is meant to fail (a bad config, a damaged store) fails here
        # too; the start itself then reports it, so this stays quiet.
        self.bootstrapped = r.returncode == 0 or "already has accounts" in r.stderr

    def grant_declared(self, *paths):
        """grant() every capability the .so plugins at paths (files or directories)
        declare, read from their metadata blocks: the admin approving what they ask."""
        for p in paths:
            if not os.path.exists(p):
                continue
            files = [os.path.join(p, f) for f in sorted(os.listdir(p))] if os.path.isdir(p) else [p]
            for f in files:
                meta = plugin_meta(f) if f.endswith(".so") else None
                if meta and meta[1]:
                    self.grant("plugin:" + meta[0], *meta[1])
        return self

    def grant_scripts(self, *dirs):
        """grant(KIND:NAME, "--all") for every script in dirs that declares capabilities
        (a file that does not load is skipped: linlid then finds no such name)."""
        import re
        for d in dirs:
            for f in sorted(os.listdir(d)) if os.path.isdir(d) else ():
                if not f.endswith(".lua"):
                    continue
                with open(os.path.join(d, f), errors="replace") as fh:
                    text = fh.read()
                m = re.search(r"\b(rule|plugin)\s*[{(]", text)
                n = re.search(r"\bname\s*=\s*[\"']([a-z][a-z0-9_]*)[\"']", text)
                if m and n and "capabilities" in text:
                    self.grants.setdefault(f"{m.group(1)}:{n.group(1)}", ["--all"])
        return self

    def provision(self):
        """Apply the grants given with grant() that are not applied yet (daemon stopped)."""
        for subject, caps in self.grants.items():
            todo = [c for c in caps if (subject, c) not in self.granted]
            if not todo:
                continue
            # "--all": every capability the plugin's or rule's file declares (linlid finds it).
            r = subprocess.run([LINLID, "--config", self.cfg, "--grant", subject, *todo],
                               capture_output=True, text=True, timeout=60)
            if r.returncode != 0 and not (todo == ["--all"] and " named " in r.stderr):
                raise TestFailure(f"linlid --grant {subject} {todo}: {r.stderr}")
            self.granted.update((subject, c) for c in todo)

    def login(self, user=None, password=None):
        """Log in with the real console; return the token (kept as self.session for the admin)."""
        user = user or self.admin
        env = dict(os.environ, LINLI_SESSION_FILE=self.session_file)
        env.pop("LINLI_SESSION", None)
        r = subprocess.run([LINLI, "--socket", self.sock, "login", user, "--password-stdin"],
                           input=(password or self.password) + "\n", capture_output=True,
                           text=True, env=env, timeout=60)
        if r.returncode != 0:
            raise TestFailure(f"login {user} failed: {r.stderr}")
        token = session_in(self.session_file, self.sock)["token"]
        if user == self.admin:
            self.session = token
            os.environ["LINLI_SESSION"] = token  # for tests that run linli themselves
        return token

    def account(self, user, role, node=None, grants=(), password="Another-Passw0rd-1", as_default=False):
        """Add an account as the admin, grant it, log it in; return its token.
        as_default makes it the session of cli() and of linli run by the test."""
        args = ["accounts", "add", user, "--role", role, "--stdin"]
        if node:
            args += ["--node", node]
        rc, out, err = self.cli(*args, input=password + "\n")
        if rc != 0:
            raise TestFailure(f"accounts add {user}: {err} {out}")
        for g in grants:
            rc, out, err = self.cli("accounts", "grant", user, g)
            if rc != 0:
                raise TestFailure(f"accounts grant {user} {g}: {err} {out}")
        token = self.login(user, password)
        if as_default:
            self.session = token
            os.environ["LINLI_SESSION"] = token
        return token

    def start(self, wait=True, args=()):
        self.bootstrap()
        if self.bootstrapped:
            self.provision()
        self.log = open(self.logpath, "ab")
        self.log_start = self.log.tell()
        self.proc = subprocess.Popen([LINLID, "--config", self.cfg, "--foreground", *args],
                                     stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=20):
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise TestFailure(f"linlid exited with {self.proc.returncode}:\n{self.logtext()}")
            r = subprocess.run([LINLI, "--socket", self.sock, "help"], capture_output=True)
            if r.returncode == 0:
                self.login()
                return
            time.sleep(0.05)
        raise TestFailure("linlid did not answer in time:\n" + self.logtext())

    def cli(self, *args, input=None, env=None):
        """Run `linli --json ARGS`; return (exit code, parsed JSON or None, stderr)."""
        e = dict(os.environ)
        if self.session:
            e["LINLI_SESSION"] = self.session
        if env:
            e.update(env)
        # Under ASan, LeakSanitizer's check at a process's exit costs ~0.15 s: over the
        # suite's thousands of console calls, minutes. Every LEAK_EVERY-th call keeps it
        # (and every daemon's own check at its stop): a leak on a path the console takes
        # again and again is still caught, a one-off path by its own case.
        global _cli_calls
        _cli_calls += 1
        if _cli_calls % LEAK_EVERY:
            e["ASAN_OPTIONS"] = e.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
        # No input: stdin is /dev/null, never the test runner's (a command that reads a
        # pipe, like `rules test`, would wait on it).
        io = {"input": input.encode() if isinstance(input, str) else input} \
            if input is not None else {"stdin": subprocess.DEVNULL}
        r = subprocess.run([LINLI, "--socket", self.sock, "--json", *args], capture_output=True,
                           env=e, timeout=60, **io)
        out = None
        if r.stdout.strip():
            try:
                out = json.loads(r.stdout)
            except json.JSONDecodeError:
                out = r.stdout.decode()
        return r.returncode, out, r.stderr.decode()

    def ok(self, *args, **kw):
        rc, out, err = self.cli(*args, **kw)
        if rc != 0:
            raise TestFailure(f"linli {' '.join(args)} failed ({rc}): {err}\n{out}")
        return out

    def req(self, argv, **extra):
        """A hand-made request map carrying the admin's session."""
        return mp(dict({"argv": argv, "session": self.session}, **extra))

    def raw(self, data=None, zeros=None, timeout_ms=None):
        """Send raw bytes with ctlraw; return (exit code, parsed reply)."""
        args = [CTLRAW, self.sock] + (["--zeros", str(zeros)] if zeros is not None else [])
        if timeout_ms:
            args += ["--timeout", str(timeout_ms)]
        limit = (timeout_ms or 15000) / 1000 + 15
        try:
            r = subprocess.run(args, input=data or b"", capture_output=True, timeout=limit)
        except subprocess.TimeoutExpired:
            # No reply and not even a clean timeout (nng can sit in close while a
            # dropped peer's bytes drain): for the caller that is "no reply".
            return 3, {"nng_error": "no reply, killed"}
        return r.returncode, json.loads(r.stdout) if r.stdout.strip() else None

    def kill_with(self, sig):
        self.proc.send_signal(sig)

    def print_stacks(self):
        """Every thread's stack of the running daemon (gdb, when installed) on stderr: where
        a stop that never ends is stuck."""
        gdb = shutil.which("gdb")
        if not gdb:
            return
        try:
            r = subprocess.run([gdb, "-p", str(self.proc.pid), "-batch", "-nx", "-ex",
                                "thread apply all bt"], capture_output=True, text=True,
                               timeout=60)
            sys.stderr.write("==== linlid's threads (gdb):\n" + r.stdout[-20000:] + "\n")
        except (subprocess.TimeoutExpired, OSError) as e:
            sys.stderr.write(f"==== no stacks: {e}\n")

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Stop the daemon with sig; its exit status. A stop that is not clean (a signal
        exit, a non-zero status, a timeout) prints the daemon's log, so that a failure
        seen only once, on a loaded machine, leaves its evidence in the test's output."""
        if not self.proc or self.proc.poll() is not None:
            rc = self.proc.returncode if self.proc else None
            if rc:
                self.print_log(f"linlid had already ended ({exit_text(rc)}) when told to stop")
            return rc
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.print_stacks()
            self.proc.kill()
            self.proc.wait()
            self.print_log(f"linlid did not stop within {timeout} s of {sig.name}")
            raise TestFailure("linlid did not stop on signal:\n" + self.logtext())
        if rc != 0 and nng_exit_race(self.run_log()):
            sys.stderr.write(f"linlid ended with {exit_text(rc)} on {sig.name}: LeakSanitizer "
                             "found only nng's own objects, in a cycle, after a clean stop "
                             "(nng 1.5.2's listener/pipe shutdown race); counted as a clean "
                             f"stop, the report is in {self.logpath}\n")
            return 0
        if rc != 0:
            self.print_log(f"linlid ended with {exit_text(rc)} on {sig.name}")
        return rc

    def run_log(self):
        """The log of this run of linlid only (the file is appended across restarts)."""
        try:
            with open(self.logpath, "rb") as f:
                f.seek(getattr(self, "log_start", 0))
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def print_log(self, why, limit=200000):
        """Print why and the daemon's log (its last `limit` bytes) to stderr, once per run."""
        if getattr(self, "_printed", None) is self.proc:
            return
        self._printed = self.proc
        log = self.logtext()
        cut = f"[... {len(log) - limit} bytes before]\n" if len(log) > limit else ""
        sys.stderr.write(f"==== {why}; its log ({self.logpath}):\n{cut}{log[-limit:]}"
                         f"==== end of the log of linlid pid {self.proc.pid}\n")
        sys.stderr.flush()

    def logtext(self):
        try:
            with open(self.logpath, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_log(self, needle, timeout=10):
        end = time.time() + timeout
        while time.time() < end:
            if needle in self.logtext():
                return
            time.sleep(0.05)
        raise TestFailure(f"log never said {needle!r}:\n{self.logtext()}")

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def main(cases):
    """`script --list` prints case names; `script CASE` runs one; no args runs all."""
    names = [n[5:] for n in cases if n.startswith("case_")]
    if sys.argv[1:] == ["--list"]:
        print("\n".join(names))
        return 0
    todo = sys.argv[1:] or names
    failed = 0
    for n in todo:
        fn = cases.get("case_" + n)
        if not fn:
            print(f"no case {n}")
            return 2
        t0 = time.time()
        try:
            fn()
            print(f"ok {n} ({time.time() - t0:.2f}s)")
        except Exception as e:  # report any failure, including asserts in helpers
            failed += 1
            if not isinstance(e, TestFailure):  # a bug of the test itself: where
                import traceback
                traceback.print_exc()
            print(f"FAIL {n}: {type(e).__name__}: {e}")
    return 1 if failed else 0


def mp(v):
    """A minimal MessagePack encoder for hand-made requests (dict, list, str, int, bool, None, bytes)."""
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if -32 <= v < 0:
            return (v & 0xFF).to_bytes(1, "big")
        return b"\xd3" + v.to_bytes(8, "big", signed=True)
    if isinstance(v, str):
        b = v.encode()
        return (bytes([0xA0 | len(b)]) if len(b) < 32 else b"\xda" + len(b).to_bytes(2, "big")) + b
    if isinstance(v, bytes):
        return b"\xc5" + len(v).to_bytes(2, "big") + v
    if isinstance(v, list):
        return b"\xdc" + len(v).to_bytes(2, "big") + b"".join(mp(x) for x in v)
    if isinstance(v, dict):
        return b"\xde" + len(v).to_bytes(2, "big") + b"".join(mp(k) + mp(x) for k, x in v.items())
    raise TypeError(type(v))
