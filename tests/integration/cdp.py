"""A tiny Chrome DevTools Protocol client over the standard library (a WebSocket of our own:
the tests run on a Python that has no websocket package), and headless Chromium to drive."""
import base64
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request


def chromium_path():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


class WebSocket:
    def __init__(self, url, timeout=20):
        m = re.match(r"ws://([^:/]+):(\d+)(/.*)", url)
        self.sock = socket.create_connection((m.group(1), int(m.group(2))), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {m.group(3)} HTTP/1.1\r\nHost: {m.group(1)}:{m.group(2)}\r\n"
                           f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            b = self.sock.recv(1)
            if not b:
                raise OSError("websocket handshake: connection closed")
            head += b
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise OSError(f"websocket handshake: {head!r}")

    def _read(self, n):
        data = b""
        while len(data) < n:
            b = self.sock.recv(n - len(data))
            if not b:
                raise OSError("websocket closed")
            data += b
        return data

    def send(self, text):
        payload = text.encode()
        n = len(payload)
        head = bytes([0x81])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def recv(self):
        """One whole message (text), fragments joined; pings answered."""
        parts = b""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            data = self._read(n)
            op = b0 & 0x0F
            if op == 0x9:  # ping: pong
                self.sock.sendall(bytes([0x8A, 0x80 | len(data)]) + b"\0\0\0\0" + data)
                continue
            if op == 0x8:
                raise OSError("websocket closed by the browser")
            parts += data
            if b0 & 0x80:
                return parts.decode()

    def close(self):
        self.sock.close()


class Browser:
    """Headless Chromium with one page; call(method, **params), events kept in self.events."""

    def __init__(self, width=1920, height=1080):
        self.dir = tempfile.mkdtemp(prefix="linli-chromium-")
        args = [chromium_path(), "--headless=new", "--disable-gpu", "--no-first-run",
                "--no-default-browser-check", "--ignore-certificate-errors",
                "--remote-debugging-port=0", f"--user-data-dir={self.dir}",
                f"--window-size={width},{height}", "--hide-scrollbars", "about:blank"]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        port = None
        end = time.time() + 30
        while time.time() < end and port is None:
            line = self.proc.stderr.readline().decode(errors="replace")
            if not line and self.proc.poll() is not None:
                break
            m = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
            if m:
                port = int(m.group(1))
        if port is None:
            self.close()
            raise OSError("chromium did not start its DevTools endpoint")
        pages = []
        while time.time() < end and not pages:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
                pages = [t for t in json.load(r) if t["type"] == "page"]
        self.ws = WebSocket(pages[0]["webSocketDebuggerUrl"])
        self.next_id = 0
        self.events = []

    def call(self, method, **params):
        self.next_id += 1
        my = self.next_id
        self.ws.send(json.dumps({"id": my, "method": method, "params": params}))
        while True:
            m = json.loads(self.ws.recv())
            if m.get("id") == my:
                if "error" in m:
                    raise OSError(f"{method}: {m['error']}")
                return m.get("result", {})
            if "method" in m:
                self.events.append(m)

    def js(self, expr):
        """Evaluate expr in the page (awaiting a promise); its value."""
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise OSError(f"js {expr[:80]!r}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait(self, expr, what, timeout=10, step=0.02):
        """Wait until expr is truthy; (its value, seconds waited)."""
        t0 = time.time()
        while True:
            v = self.js(expr)
            if v:
                return v, time.time() - t0
            if time.time() - t0 > timeout:
                raise OSError(f"timed out waiting for {what}")
            time.sleep(step)

    def close(self):
        try:
            if getattr(self, "ws", None):
                self.ws.close()
        finally:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            shutil.rmtree(self.dir, ignore_errors=True)
