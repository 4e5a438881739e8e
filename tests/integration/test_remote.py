"""Integration tests of remote control: the control socket on tcp:// and tls+tcp://.

Each case starts a real linlid listening on ipc://, tcp://127.0.0.1:PORT and
tls+tcp://127.0.0.1:PORT with a certificate made by `openssl` at test time,
and talks to it with the real `linli` console and with raw sockets that
misbehave on purpose: garbage instead of the SP handshake, connections that
stall before or after it, a half-sent message, a client that never reads.
"""
import os
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import LINLI, LINLID, Daemon, TestFailure, check, eq, main, mp  # noqa: E402

SP_REQ = b"\x00SP\x00\x00\x30\x00\x00"  # SP header of a req0 peer
SP_REP = b"\x00SP\x00\x00\x31\x00\x00"  # what linlid's rep0 socket answers
HANDSHAKE_S = 10  # nng's tcp transport, and linlid's watch for tls, allow a handshake 10 s


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def openssl(*args, cwd):
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        raise TestFailure(f"openssl {' '.join(args)}: {r.stderr}")


class Pki:
    """A CA, a server certificate for `localhost`, one for `ctl.example`, and an unrelated CA."""

    def __init__(self, d):
        self.d = d
        for ca in ("ca", "wrongca"):
            openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", f"{ca}.key", "-out", f"{ca}.pem", "-days", "2",
                    "-subj", f"/CN=linli test {ca}", cwd=d)
        self.server("srv", "localhost", "DNS:localhost,IP:127.0.0.1")
        self.server("other", "ctl.example", "DNS:ctl.example")

    def server(self, name, cn, san):
        with open(os.path.join(self.d, f"{name}.ext"), "w") as f:
            f.write(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n")
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=self.d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile",
                f"{name}.ext", cwd=self.d)

    def path(self, name):
        return os.path.join(self.d, name)


class Remote(Daemon):
    """A linlid with ipc, tcp and tls+tcp listeners on loopback."""

    def __init__(self, cert="srv", idle_ms=None, workers=None, tls_files=None):
        self.tmp = tempfile.mkdtemp(prefix="linli-remote-")
        self.pki = Pki(self.tmp)
        self.tcp_port, self.tls_port = free_port(), free_port()
        self.tcp = f"tcp://127.0.0.1:{self.tcp_port}"
        self.tls = f"tls+tcp://127.0.0.1:{self.tls_port}"
        self.tls_name = f"tls+tcp://localhost:{self.tls_port}"
        cert_file, key_file = tls_files or (self.pki.path(cert + ".pem"), self.pki.path(cert + ".key"))
        ctl = f'tls_cert = "{cert_file}"; tls_key = "{key_file}"; '
        if idle_ms:
            ctl += f"idle_timeout_ms = {idle_ms}; "
        if workers:
            ctl += f"workers = {workers}; "
        self.ctl_extra = ctl
        super().__init__(tmp=self.tmp)

    def config_text(self, node, level, name, extra=""):
        return (f'node = {{ path = "{node}"; level = "{level}"; name = "{name}"; }};\n'
                f'data_dir = "{self.data}";\n'
                f'log_level = "debug";\n'
                f'control = {{ listen = [ "{self.sock}", "{self.tcp}", "{self.tls}" ]; '
                f'{self.ctl_extra}}};\n'
                f'store = {{ sync = false; }};\n' + extra)

    def console(self, addr, *args, env=None, timeout=60):
        """Run `linli --socket ADDR ARGS` with LINLI_TLS_* cleared unless given in env."""
        e = {k: v for k, v in os.environ.items() if not k.startswith("LINLI_TLS")}
        e.update(env or {})
        return subprocess.run([LINLI, "--socket", addr, *args], capture_output=True, text=True,
                              env=e, timeout=timeout)

    def timed_status(self, addr, *args):
        t0 = time.monotonic()
        r = self.console(addr, *args, "--json", "status", timeout=30)
        dt = time.monotonic() - t0
        if r.returncode != 0:
            raise TestFailure(f"status over {addr} failed ({r.returncode}): {r.stderr}")
        check('"node": "hefei"' in r.stdout, r.stdout)
        return dt


class running:
    def __init__(self, **kw):
        self.d = Remote(**kw)

    def __enter__(self):
        return self.d.start()

    def __exit__(self, *exc):
        self.d.cleanup()


# ---- raw clients ----


class Raw:
    """One connection to linlid's control port, driven byte by byte."""

    def __init__(self, port, tls_ca=None, server_name="localhost"):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        if tls_ca:
            ctx = ssl.create_default_context(cafile=tls_ca)
            s = ctx.wrap_socket(s, server_hostname=server_name)
        self.s = s

    def send(self, b):
        self.s.sendall(b)

    def recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise TestFailure(f"connection closed after {len(buf)} of {n} bytes")
            buf += chunk
        return buf

    def handshake(self):
        self.send(SP_REQ)
        eq(self.recv_exact(8), SP_REP, "SP header from linlid")

    def request(self, body, rid=1):
        msg = struct.pack(">I", 0x80000000 | rid) + body
        self.send(struct.pack(">Q", len(msg)) + msg)

    def reply(self):
        n = struct.unpack(">Q", self.recv_exact(8))[0]
        data = self.recv_exact(n)
        return struct.unpack(">I", data[:4])[0] & 0x7FFFFFFF, data[4:]

    def closed_within(self, seconds):
        """Read (and discard) until linlid closes; return the time it took, or None."""
        end = time.monotonic() + seconds
        t0 = time.monotonic()
        while time.monotonic() < end:
            self.s.settimeout(max(0.05, end - time.monotonic()))
            try:
                if not self.s.recv(65536):
                    return time.monotonic() - t0
            except (socket.timeout, TimeoutError):
                return None
            except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
                return time.monotonic() - t0
        return None

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def unpack_reply(body):
    """Decode linlid's reply map enough for the tests: ok, name, error."""
    # A tiny MessagePack reader for the few types a reply uses.
    pos = 0

    def rd():
        nonlocal pos
        b = body[pos]
        pos += 1
        if b <= 0x7F:
            return b
        if 0x80 <= b <= 0x8F:
            return {rd(): rd() for _ in range(b & 0x0F)}
        if 0x90 <= b <= 0x9F:
            return [rd() for _ in range(b & 0x0F)]
        if 0xA0 <= b <= 0xBF:
            n = b & 0x1F
        elif b in (0xD9, 0xDA, 0xDB):
            k = {0xD9: 1, 0xDA: 2, 0xDB: 4}[b]
            n = int.from_bytes(body[pos:pos + k], "big")
            pos += k
        elif b == 0xC0:
            return None
        elif b in (0xC2, 0xC3):
            return b == 0xC3
        elif b >= 0xE0:
            return b - 0x100
        elif b in (0xD0, 0xD1, 0xD2, 0xD3):
            k = {0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8}[b]
            v = int.from_bytes(body[pos:pos + k], "big", signed=True)
            pos += k
            return v
        elif b in (0xCC, 0xCD, 0xCE, 0xCF):
            k = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}[b]
            v = int.from_bytes(body[pos:pos + k], "big")
            pos += k
            return v
        elif b in (0xCA, 0xCB):
            k = 4 if b == 0xCA else 8
            v = struct.unpack(">f" if k == 4 else ">d", body[pos:pos + k])[0]
            pos += k
            return v
        elif b in (0xDE, 0xDF):
            k = 2 if b == 0xDE else 4
            n = int.from_bytes(body[pos:pos + k], "big")
            pos += k
            return {rd(): rd() for _ in range(n)}
        elif b in (0xDC, 0xDD):
            k = 2 if b == 0xDC else 4
            n = int.from_bytes(body[pos:pos + k], "big")
            pos += k
            return [rd() for _ in range(n)]
        else:
            raise TestFailure(f"unexpected MessagePack byte 0x{b:02x}")
        s = body[pos:pos + n].decode()
        pos += n
        return s

    return rd()


# ---- TLS: verification both ways ----


def case_tls_status_with_ca():
    with running() as d:
        ca = d.pki.path("ca.pem")
        r = d.console(d.tls_name, "--tls-ca", ca, "--json", "status")
        eq(r.returncode, 0, f"status over {d.tls_name}: {r.stderr}")
        check('"node": "hefei"' in r.stdout, r.stdout)
        # The CA from the environment, and the --opt=value spelling.
        r = d.console(d.tls_name, "status", env={"LINLI_TLS_CA": ca})
        eq(r.returncode, 0, f"status with LINLI_TLS_CA: {r.stderr}")
        r = d.console(d.tls_name, f"--tls-ca={ca}", "status")
        eq(r.returncode, 0, f"status with --tls-ca=: {r.stderr}")
        # A command with input goes over TLS like any other: a malformed one gets its error.
        r = d.console(d.tls_name, "--tls-ca", ca, "no-such-command")
        eq(r.returncode, 1, "unknown command over tls")
        check("unknown command" in r.stderr, r.stderr)
        # tcp:// is still there, unencrypted, and ipc:// too.
        r = d.console(d.tcp, "--json", "status")
        eq(r.returncode, 0, f"status over {d.tcp}: {r.stderr}")
        check('"node": "hefei"' in r.stdout, r.stdout)
        d.ok("status")


def case_tls_wrong_ca_refused():
    with running() as d:
        r = d.console(d.tls_name, "--tls-ca", d.pki.path("wrongca.pem"), "status")
        eq(r.returncode, 1, "rc with a CA that did not sign the server's certificate")
        eq(r.stdout, "", "output of a refused console")
        check("TLS verification of linlid at" in r.stderr and "wrongca.pem" in r.stderr,
              r.stderr)
        # Without any CA option, the system bundle does not know our test CA either.
        r = d.console(d.tls_name, "status")
        eq(r.returncode, 1, "rc without --tls-ca")
        check("TLS verification" in r.stderr or "needs a CA certificate" in r.stderr, r.stderr)
        # A CA file that is missing or not PEM is said to be so.
        r = d.console(d.tls_name, "--tls-ca", d.pki.path("nope.pem"), "status")
        eq(r.returncode, 1, "rc with a missing CA file")
        check("cannot load CA certificates from" in r.stderr and "nope.pem" in r.stderr,
              r.stderr)
        r = d.console(d.tls_name, "--tls-ca", d.cfg, "status")
        eq(r.returncode, 1, "rc with a CA file that is not PEM")
        check("not a PEM certificate file" in r.stderr, r.stderr)
        # Nothing was harmed: the right CA still works.
        d.timed_status(d.tls_name, "--tls-ca", d.pki.path("ca.pem"))


def case_tls_server_name():
    # The server presents a certificate for ctl.example, reached as 127.0.0.1.
    with running(cert="other") as d:
        ca = d.pki.path("ca.pem")
        r = d.console(d.tls, "--tls-ca", ca, "status")
        eq(r.returncode, 1, "rc when the certificate names another host")
        check("TLS verification" in r.stderr and "'127.0.0.1'" in r.stderr, r.stderr)
        r = d.console(d.tls, "--tls-ca", ca, "--tls-server-name", "wrong.example", "status")
        eq(r.returncode, 1, "rc with a wrong --tls-server-name")
        check("'wrong.example'" in r.stderr, r.stderr)
        d.timed_status(d.tls, "--tls-ca", ca, "--tls-server-name", "ctl.example")
        d.timed_status(d.tls, "--tls-ca", ca, "--tls-server-name=ctl.example")
        r = d.console(d.tls, "status", env={"LINLI_TLS_CA": ca,
                                            "LINLI_TLS_SERVER_NAME": "ctl.example"})
        eq(r.returncode, 0, f"status with LINLI_TLS_SERVER_NAME: {r.stderr}")


def case_bad_tls_config_refuses_start():
    tmp = tempfile.mkdtemp(prefix="linli-remote-pki-")
    pki = Pki(tmp)
    with open(pki.path("srv.pem")) as f:
        good = f.read()
    with open(pki.path("trunc.pem"), "w") as f:
        f.write(good[:len(good) // 2])
    with open(pki.path("garbage.pem"), "w") as f:
        f.write("this is not PEM\n")
    r = subprocess.run(["openssl", "ec", "-in", pki.path("srv.key"), "-aes256", "-passout",
                        "pass:secret", "-out", pki.path("enc.key")], capture_output=True)
    eq(r.returncode, 0, "openssl ec -aes256")
    p = pki.path
    bad = [
        ((p("missing.pem"), p("srv.key")), "control.tls_cert: cannot read", "missing.pem"),
        ((p("srv.pem"), p("missing.key")), "control.tls_key: cannot read", "missing.key"),
        ((tmp, p("srv.key")), "control.tls_cert: cannot read", "Is a directory"),
        ((p("trunc.pem"), p("srv.key")), "control.tls_cert:", "not a valid PEM certificate"),
        ((p("garbage.pem"), p("srv.key")), "control.tls_cert:", "holds no PEM certificate"),
        ((p("srv.key"), p("srv.key")), "control.tls_cert:", "holds no PEM certificate"),
        ((p("srv.pem"), p("garbage.pem")), "control.tls_key:", "holds no PEM private key"),
        ((p("srv.pem"), p("srv.pem")), "control.tls_key:", "holds no PEM private key"),
        ((p("srv.pem"), p("enc.key")), "control.tls_key:", "is encrypted"),
        ((p("srv.pem"), p("other.key")), "control.tls_key:",
         "is not the private key of the certificate in"),
    ]
    try:
        for files, key, why in bad:
            d = Remote(tls_files=files)
            try:
                r = subprocess.run([LINLID, "--config", d.cfg, "--check-config"],
                                   capture_output=True, text=True, timeout=20)
                eq(r.returncode, 2, f"--check-config rc with {files}")
                check(key in r.stderr and why in r.stderr and d.cfg in r.stderr,
                      f"{files}: {r.stderr}")
                r = subprocess.run([LINLID, "--config", d.cfg, "--foreground"],
                                   capture_output=True, text=True, timeout=20)
                eq(r.returncode, 2, f"start rc with {files}")
                check(key in r.stderr and why in r.stderr, f"{files}: {r.stderr}")
                check(not os.path.exists(d.data), "data dir created for a refused config")
                rr = d.console(d.tcp, "status")
                eq(rr.returncode, 1, "a refused daemon answers nothing")
            finally:
                d.cleanup()
        # A tls+tcp:// listener without certificate and key is a config error too.
        d = Remote()
        try:
            good = d.ctl_extra
            d.ctl_extra = ""
            d.write_config()
            r = subprocess.run([LINLID, "--config", d.cfg, "--check-config"], capture_output=True,
                               text=True, timeout=20)
            eq(r.returncode, 2, "rc without tls_cert")
            check("needs control.tls_cert and control.tls_key" in r.stderr, r.stderr)
            d.ctl_extra = good + "idle_timeout_ms = 5; "
            d.write_config()
            r = subprocess.run([LINLID, "--config", d.cfg, "--check-config"], capture_output=True,
                               text=True, timeout=20)
            eq(r.returncode, 2, "rc with idle_timeout_ms = 5")
            check("control.idle_timeout_ms: 5 is outside 100..86400000" in r.stderr, r.stderr)
        finally:
            d.cleanup()
    finally:
        subprocess.run(["rm", "-rf", tmp])


# ---- robustness: garbage, stalls, partial messages ----


def case_garbage_is_dropped():
    with running() as d:
        ca = d.pki.path("ca.pem")
        # Not the SP handshake: an HTTP request on the tcp port, random bytes on both ports.
        for port, data in ((d.tcp_port, b"GET / HTTP/1.0\r\n\r\n"),
                           (d.tcp_port, os.urandom(64)),
                           (d.tls_port, b"GET / HTTP/1.0\r\n\r\n"),
                           (d.tls_port, os.urandom(64))):
            c = Raw(port)
            c.send(data)
            dt = c.closed_within(5)
            c.close()
            check(dt is not None, f"linlid kept a connection that sent {data[:16]!r} on {port}")
        # The SP header of the wrong protocol (pub0 instead of req0) is refused too.
        c = Raw(d.tcp_port)
        c.send(b"\x00SP\x00\x00\x20\x00\x00")
        check(c.closed_within(5) is not None, "a pub0 peer was kept")
        c.close()
        # Garbage after a good handshake: a body that is not MessagePack gets LINLI_EPROTO...
        for c in (Raw(d.tcp_port), Raw(d.tls_port, tls_ca=ca)):
            c.handshake()
            c.request(b"\xc1\xc1garbage", rid=7)
            rid, body = c.reply()
            eq(rid, 7, "request id echoed")
            rep = unpack_reply(body)
            eq(rep.get("ok"), False, "ok of a garbage request")
            eq(rep.get("name"), "LINLI_EPROTO", f"name of the error: {rep}")
            # ...and the same connection still serves a good request.
            c.request(mp({"v": 1, "argv": ["status"], "session": d.session}), rid=8)
            rid, body = c.reply()
            eq(rid, 8, "request id of the next request")
            eq(unpack_reply(body).get("ok"), True, "ok after the garbage")
            c.close()
        # A message without SP's request id is not REQ: nng drops the connection.
        c = Raw(d.tcp_port)
        c.handshake()
        c.send(struct.pack(">Q", 2) + b"\x01\x02")
        check(c.closed_within(5) is not None, "a message without a request id was kept")
        c.close()
        # A length header beyond control.max_request closes the connection at once.
        c = Raw(d.tcp_port)
        c.handshake()
        c.send(struct.pack(">Q", 1 << 40))
        check(c.closed_within(5) is not None, "a 1 TiB length header was kept")
        c.close()
        st = d.ok("status")
        check(st["malformed_requests"] >= 2, f"malformed requests not counted: {st}")
        eq(st["listener_restarts"], 0, f"a listener had to be restarted: {st}")
        d.timed_status(d.tls_name, "--tls-ca", ca)


def stall_kinds(d):
    """Open one connection of each stalled kind; return [(name, Raw, cut_by)]."""
    ca = d.pki.path("ca.pem")
    out = []
    c = Raw(d.tcp_port)
    out.append(("tcp: nothing sent", c, "handshake"))
    c = Raw(d.tcp_port)
    c.send(SP_REQ[:3])
    out.append(("tcp: half an SP header", c, "handshake"))
    c = Raw(d.tcp_port)
    c.handshake()
    out.append(("tcp: handshake, then nothing", c, "idle"))
    c = Raw(d.tcp_port)
    c.handshake()
    c.send(struct.pack(">Q", 100)[:5])
    out.append(("tcp: half a length header", c, "idle"))
    c = Raw(d.tcp_port)
    c.handshake()
    c.send(struct.pack(">Q", 100) + b"\x80\x00\x00\x01\x82")
    out.append(("tcp: 5 of 100 bytes of a message", c, "idle"))
    # TLS: a TCP connection that never starts TLS, one that finished TLS but not SP, ...
    c = Raw(d.tls_port)
    out.append(("tls: nothing sent", c, "handshake"))
    c = Raw(d.tls_port)
    c.send(b"\x16\x03\x01\x00\xc8\x01")  # the first bytes of a ClientHello
    out.append(("tls: half a ClientHello", c, "handshake"))
    c = Raw(d.tls_port, tls_ca=ca)
    out.append(("tls: TLS done, no SP header", c, "handshake"))
    c = Raw(d.tls_port, tls_ca=ca)
    c.handshake()
    c.send(struct.pack(">Q", 100) + b"\x80\x00")
    out.append(("tls: 2 of 100 bytes of a message", c, "idle"))
    return out


def case_stalled_clients_do_not_block_others():
    with running(idle_ms=60000) as d:
        ca = d.pki.path("ca.pem")
        base = [d.timed_status(d.tcp), d.timed_status(d.tls_name, "--tls-ca", ca)]
        conns = []
        for _ in range(5):
            conns += stall_kinds(d)
        worst = {"tcp": 0.0, "tls": 0.0}
        for _ in range(5):
            worst["tcp"] = max(worst["tcp"], d.timed_status(d.tcp))
            worst["tls"] = max(worst["tls"], d.timed_status(d.tls_name, "--tls-ca", ca))
            d.ok("status")
        print(f"status with {len(conns)} stalled connections open: worst tcp "
              f"{worst['tcp'] * 1000:.0f} ms, tls {worst['tls'] * 1000:.0f} ms "
              f"(before: {base[0] * 1000:.0f}, {base[1] * 1000:.0f} ms)")
        check(worst["tcp"] < 1.0 and worst["tls"] < 1.0, f"status was slow: {worst}")
        # The 4 kinds past the SP handshake are connections linlid counts (and the ipc console).
        st = d.ok("status")
        check(st["connections"] >= 5 * 4 and st["connections_cut"] == 0, f"status: {st}")
        # None of them was cut yet: a 60 s idle limit, and nng's 10 s handshake limit not reached.
        for name, c, _ in conns[:9]:
            check(c.closed_within(0.05) is None, f"{name}: cut too early")
        # SIGTERM with all of them still open: a clean, prompt exit.
        t0 = time.monotonic()
        eq(d.stop(), 0, "exit code on SIGTERM with stalled connections open")
        check(time.monotonic() - t0 < 5, f"stop took {time.monotonic() - t0:.1f} s")
        for _, c, _ in conns:
            c.close()


def case_stalled_clients_are_cut():
    with running(idle_ms=1000) as d:
        kinds = stall_kinds(d)
        t0 = time.monotonic()
        results = {}

        def watch(name, c):
            results[name] = c.closed_within(HANDSHAKE_S + 8)

        threads = [threading.Thread(target=watch, args=(n, c)) for n, c, _ in kinds]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        report = []
        for name, c, by in kinds:
            dt = results[name]
            report.append(f"{name}: {'kept' if dt is None else f'cut after {dt:.1f} s'}")
            check(dt is not None, f"{name}: never cut ({by})")
            if by == "idle":
                # idle_timeout_ms = 1000, checked every 250 ms; generous for a loaded machine.
                check(0.8 <= dt <= 5, f"{name}: cut after {dt:.2f} s, want about 1 s")
            else:
                check(dt <= HANDSHAKE_S + 5, f"{name}: cut after {dt:.2f} s")
            c.close()
        print("; ".join(report), f"(all in {time.monotonic() - t0:.1f} s)")
        d.wait_log("idle for 1000 ms")
        d.wait_log("no TLS and SP handshake within 10000 ms")
        st = d.ok("status")
        # 4 idle, 2 inside TLS; the one between TLS and SP is nng's or the watch's, whichever
        # comes first.
        check(6 <= st["connections_cut"] <= 7, f"connections cut by linlid: {st}")
        # Cutting them did not upset nng's listeners (no restart by the probe): both serve.
        eq(st["listener_restarts"], 0, f"listener restarts: {st}")
        d.timed_status(d.tcp)
        d.timed_status(d.tls_name, "--tls-ca", d.pki.path("ca.pem"))
        check("closed connection" in d.logtext() and "from 127.0.0.1:" in d.logtext(),
              d.logtext()[-2000:])
        d.ok("status")


def case_active_connection_is_kept():
    # A connection that completes requests more often than the idle limit is never cut,
    # and one with a request in progress longer than the limit is not cut either.
    with running(idle_ms=500) as d:
        c = Raw(d.tcp_port)
        c.handshake()
        for i in range(12):
            c.request(mp({"v": 1, "argv": ["status"], "session": d.session}), rid=i + 1)
            rid, body = c.reply()
            eq(rid, i + 1, "request id")
            eq(unpack_reply(body).get("ok"), True, "status ok")
            time.sleep(0.25)
        # `events next --wait 1500` holds its request for 1.5 s: longer than the idle limit.
        c.request(mp({"v": 1, "argv": ["events", "subscribe", "#"], "session": d.session}), rid=100)
        sub = unpack_reply(c.reply()[1])
        eq(sub.get("ok"), True, f"subscribe: {sub}")
        sid = str(sub["data"]["id"])
        t0 = time.monotonic()
        c.request(mp({"v": 1, "argv": ["events", "next", sid, "0", "--wait", "1500"], "session": d.session}), rid=101)
        rid, body = c.reply()
        eq(rid, 101, "request id of the long poll")
        check(time.monotonic() - t0 >= 1.2, "the long poll did not wait")
        eq(unpack_reply(body).get("ok"), True, "long poll answered")
        # Now idle: cut within about the limit.
        check(c.closed_within(4) is not None, "idle connection kept")
        c.close()


def case_request_waiting_for_a_worker_is_not_idle():
    # The one worker is held by a long poll for 2.5 s, longer than the 500 ms idle limit.
    # A console whose request waits for a worker meanwhile must be answered, not cut.
    with running(idle_ms=500, workers=1) as d:
        polls = []
        for i in range(1):
            c = Raw(d.tcp_port)
            c.handshake()
            c.request(mp({"v": 1, "argv": ["events", "subscribe", "#"], "session": d.session}), rid=1)
            sub = unpack_reply(c.reply()[1])
            eq(sub.get("ok"), True, f"subscribe: {sub}")
            polls.append((c, str(sub["data"]["id"])))
        t0 = time.monotonic()
        for c, sid in polls:
            c.request(mp({"v": 1, "argv": ["events", "next", sid, "0", "--wait", "2500"], "session": d.session}), rid=2)
        time.sleep(0.2)
        dt = d.timed_status(d.tcp)
        check(dt >= 1.5, f"status answered in {dt:.2f} s: the workers were not busy")
        for c, _ in polls:
            eq(unpack_reply(c.reply()[1]).get("ok"), True, "long poll answered")
            c.close()
        print(f"status waited {dt:.1f} s for a worker ({time.monotonic() - t0:.1f} s in all)")
        check("closed connection" not in d.logtext(), d.logtext()[-2000:])


def case_idle_console_shell_reconnects():
    # The interactive shell keeps one connection; when linlid cuts it for idling,
    # the next command reconnects without the user noticing.
    with running(idle_ms=300) as d:
        p = subprocess.Popen([LINLI, "--socket", d.tcp], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        p.stdin.write("status\n")
        p.stdin.flush()
        time.sleep(1.5)
        d.wait_log("idle for 300 ms")
        p.stdin.write("status\nquit\n")
        p.stdin.flush()
        out, err = p.communicate(timeout=30)
        eq(p.returncode, 0, f"shell rc: {err}")
        eq(out.count("hefei"), 2, f"two status outputs: {out} {err}")
        check("failed" not in err, err)


def case_client_not_reading_replies_is_cut():
    # One connection pipelines requests and never reads a reply: linlid's replies back
    # up in its socket. It may hold at most half the workers; the rest keep serving,
    # and the connection is closed.
    with running(idle_ms=3000, workers=8) as d:
        c = Raw(d.tcp_port)
        c.handshake()
        c.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        help_req = mp({"v": 1, "argv": ["help"], "session": d.session})
        stop = threading.Event()
        sent = [0]

        def flood():
            try:
                while not stop.is_set():
                    c.request(help_req, rid=sent[0] % 1000 + 1)
                    sent[0] += 1
            except OSError:
                pass

        t = threading.Thread(target=flood, daemon=True)
        t.start()
        time.sleep(1.0)
        worst = max(d.timed_status(d.tcp) for _ in range(5))
        print(f"status while a client floods without reading ({sent[0]} requests sent): "
              f"worst {worst * 1000:.0f} ms")
        check(worst < 1.0, f"status took {worst:.2f} s")
        d.wait_log("closed connection", timeout=15)
        check("requests in progress at once" in d.logtext() or
              "not taking its replies" in d.logtext(), d.logtext()[-2000:])
        stop.set()
        c.close()
        t.join(5)
        d.ok("status")


def case_many_tls_consoles():
    with running() as d:
        ca = d.pki.path("ca.pem")
        n = 20
        e = {k: v for k, v in os.environ.items() if not k.startswith("LINLI_TLS")}
        t0 = time.monotonic()
        procs = [subprocess.Popen([LINLI, "--socket", d.tls_name, "--tls-ca", ca, "--json",
                                   "status"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env=e) for _ in range(n)]
        outs = [p.communicate(timeout=60) for p in procs]
        dt = time.monotonic() - t0
        for p, (out, err) in zip(procs, outs):
            eq(p.returncode, 0, f"a concurrent console failed: {err}")
            check('"node": "hefei"' in out, out)
        print(f"{n} concurrent tls+tcp consoles answered in {dt:.2f} s")
        # And as many at once over tcp while stalled connections sit on both ports.
        stalls = stall_kinds(d)
        procs = [subprocess.Popen([LINLI, "--socket", addr, "--tls-ca", ca, "status"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=e) for addr in [d.tcp, d.tls_name] * (n // 2)]
        for p in procs:
            out, err = p.communicate(timeout=60)
            eq(p.returncode, 0, f"a concurrent console failed: {err}")
        for _, c, _ in stalls:
            c.close()


if __name__ == "__main__":
    sys.exit(main(dict(globals())))
