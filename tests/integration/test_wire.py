"""Integration tests of what arrives as bytes: sizes declared on the wire (issue 12, defect 11).

msgpack-c allocates an array's or map's slots as soon as it reads the header,
so every size a request declares must be bounded by the bytes that follow it
before the request reaches the unpacker.
"""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import Daemon, check, eq, main, mp  # noqa: E402


class running:
    def __init__(self, **kw):
        self.d = Daemon(**kw)

    def __enter__(self):
        return self.d.start()

    def __exit__(self, *exc):
        self.d.cleanup()


def case_declared_sizes_refused_daemon_serves():
    """The 5-byte map32 request (4 billion entries: 256 GiB for msgpack-c), and every
    other count or length a request declares beyond its bytes, get a clear LINLI_EPROTO
    reply; the daemon (ASan build included) keeps answering."""
    with running() as d:
        def refused(data, needle):
            rc, rep = d.raw(data)
            eq(rc, 0, f"{data[:12]!r}: a reply expected, the daemon must not die")
            eq(rep["ok"], False, needle)
            eq(rep["name"], "LINLI_EPROTO", needle)
            check(needle in rep["error"], f"wanted '{needle}' in: {rep['error']}")

        refused(b"\xdf\xff\xff\xff\xff",
                "not MessagePack (5 bytes): byte 0: map 32 declares 4294967295 entries")
        refused(b"\xdd\xff\xff\xff\xff\x01", "array 32 declares 4294967295 elements")
        refused(b"\xde\xff\xff", "map 16 declares 65535 entries")
        refused(b"\xdc\xff\xff\x01\x02", "array 16 declares 65535 elements")
        # The same, nested inside an honest-looking request.
        head = b"\x82\xa4argv" + mp(["status"]) + b"\xa5input"
        refused(head + b"\xdb\xff\xff\xff\xff", "str 32 declares 4294967295 bytes")
        refused(head + b"\xc6\xff\xff\xff\xf0xx", "bin 32 declares 4294967280 bytes")
        refused(head + b"\xc9\x7f\xff\xff\xff\x01", "ext 32 declares")
        refused(b"\x81\xa4argv\xdd\x00\x10\x00\x00\xa6status", "array 32 declares 1048576")
        refused(head + b"\x91" * 7 + b"\x90", "nested deeper than 8 levels")
        st = d.ok("status")
        check(st["malformed_requests"] >= 9, f"malformed count {st['malformed_requests']}")
        # A request whose sizes are true is served as before.
        rc, rep = d.raw(d.req(["status"]))
        eq(rep["ok"], True, f"status: {rep}")
        big = b"x" * 70000
        rc, rep = d.raw(b"\x82" + mp("argv") + mp(["help"]) + mp("input") + b"\xdb"
                        + struct.pack(">I", len(big)) + big)
        eq(rep["ok"], True, f"help with a str 32 input: {rep}")
        eq(d.proc.poll(), None, "daemon alive")


if __name__ == "__main__":
    sys.exit(main(dict(globals())))
