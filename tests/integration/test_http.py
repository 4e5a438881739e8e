"""Integration tests of the HTTP open-data API, driven by curl against a real linlid."""
import json
import os
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import Daemon, check, eq, main  # noqa: E402


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class api:
    """A linlid with the HTTP API on a free port."""

    def __init__(self, extra=""):
        self.port = free_port()
        self.d = Daemon(extra=f'http = {{ listen = "http://127.0.0.1:{self.port}"; '
                              f'max_body = 2048; }};\n' + extra)

    def __enter__(self):
        self.d.start()
        return self

    def __exit__(self, *exc):
        self.d.cleanup()

    def curl(self, method, path, body=None, key=None, headers=()):
        """Return (status, parsed JSON body or raw text, headers text)."""
        args = ["curl", "-s", "-S", "-D", "-", "-X", method, "--max-time", "20",
                f"http://127.0.0.1:{self.port}{path}"]
        if key:
            args += ["-H", f"Authorization: Bearer {key}"]
        for h in headers:
            args += ["-H", h]
        if body is not None:
            args += ["-H", "Content-Type: application/json", "--data-binary", "@-"]
        r = subprocess.run(args, input=body.encode() if isinstance(body, str) else body,
                           capture_output=True, timeout=30)
        out = r.stdout.decode(errors="replace")
        head, _, text = out.partition("\r\n\r\n")
        status = int(head.split()[1]) if head.startswith("HTTP/") else 0
        try:
            parsed = json.loads(text) if text else None
        except json.JSONDecodeError:
            parsed = text
        return status, parsed, head


def case_health():
    with api() as a:
        st, body, head = a.curl("GET", "/api/v1/health")
        eq(st, 200, "health status")
        eq(body["status"], "ok", "health body")
        eq(body["node"], "hefei", "node")
        check("application/json" in head, head)


def case_unknown_path_and_method():
    with api() as a:
        st, body, _ = a.curl("GET", "/api/v1/nothing/here")
        eq(st, 404, "unknown path")
        eq(body["error"]["status"], 404, "error body")
        st, body, _ = a.curl("DELETE", "/api/v1/health")
        eq(st, 405, "wrong method")
        st, body, _ = a.curl("GET", "/api/v1/%zz")
        eq(st, 400, "bad escape")


def case_oversized_body_413():
    with api() as a:
        st, body, head = a.curl("POST", "/api/v1/health", body="x" * 5000)
        eq(st, 413, "oversized body")
        check("exceeds the limit of 2048 bytes" in body["error"]["message"], body)
        check("Payload Too Large" in head, head)
        # The server is unharmed.
        eq(a.curl("GET", "/api/v1/health")[0], 200, "health after 413")


if __name__ == "__main__":
    sys.exit(main(dict(globals())))
