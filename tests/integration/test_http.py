"""Integration tests of the HTTP open-data API, driven by curl against a real linlid."""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from harness import BUILD, LINLI, SRC, Daemon, TestFailure, check, eq, finish, main  # noqa: E402


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class api:
    """A linlid with the HTTP API on a free port."""

    def __init__(self, extra="", rate=50, max_body=2048, http_extra="", rules=None):
        self.port = free_port()
        self.d = Daemon()
        if rules:  # {file name: text}, in a script dir of the daemon's own
            scripts = os.path.join(self.d.dir, "scripts")
            os.makedirs(os.path.join(scripts, "rules"))
            for name, text in rules.items():
                with open(os.path.join(scripts, "rules", name), "w") as f:
                    f.write(text)
            extra += f'script_dirs = [ "{scripts}" ];\n'
        self.d.write_config(extra=f'http = {{ listen = "http://127.0.0.1:{self.port}"; '
                                  f'max_body = {max_body}; rate_limit = {rate}; {http_extra} }};\n'
                                  f'catalog_dir = "{SRC}/catalog";\n' + extra)

    def __enter__(self):
        self.d.start()
        return self

    def __exit__(self, etype, *rest):
        finish(self.d, etype)  # a clean stop after a case that passed

    def curl(self, method, path, body=None, key=None, headers=(), max_time=20):
        """Return (status, parsed JSON body or raw text, headers text)."""
        args = ["curl", "-s", "-S", "-D", "-", "-X", method, "--max-time", str(max_time),
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


def case_partial_bodies_never_freeze():
    """Clients that send part of a body and go away, or stall, cost the node nothing:
    health and the control socket keep answering, stalls are cut after
    http.body_timeout_ms, and SIGTERM still ends linlid."""
    with api(max_body=200000, http_extra="body_timeout_ms = 1000;") as a:
        head = (b"POST /api/v1/applications HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
        partial = head + b'{"applicant_name": "' + b"x" * 1000

        def healthy(what):
            t0 = time.time()
            st = a.curl("GET", "/api/v1/health", max_time=5)[0]
            took = time.time() - t0
            check(st == 200 and took < 1.0, f"{what}: health {st} after {took:.2f}s")

        stalled = []
        for i in range(40):
            s = socket.create_connection(("127.0.0.1", a.port), timeout=5)
            s.sendall(partial)
            if i % 2:
                s.close()  # abandoned mid-body
            else:
                stalled.append(s)  # stays, sending nothing more
            if i % 8 == 7:
                healthy(f"after {i + 1} partial bodies")
        t0 = time.time()
        rc, out, err = a.d.cli("status")
        check(rc == 0 and time.time() - t0 < 5, f"status: {rc} {err}")
        # The stalled ones are cut once the body timeout passes: the server closes them.
        for s in stalled:
            try:
                got = s.recv(4096)
            except (ConnectionResetError, socket.timeout) as e:
                got = e
            check(got == b"" or isinstance(got, ConnectionResetError),
                  f"a stalled body was not cut: {got!r}")
            s.close()
        healthy("after the stalls were cut")
        # Each one is audited: abandoned (400) and stalled (408) bodies alike.
        log = a.d.ok("audit", "--who", "http:anonymous", "--action", "http.POST",
                     "--limit", "1000")
        eq(sorted(e["detail"][:3] for e in log), ["400"] * 20 + ["408"] * 20,
           "every partial body audited")
        # Stalled again, then SIGTERM: linlid ends, and cleanly.
        stalled = [socket.create_connection(("127.0.0.1", a.port), timeout=5) for _ in range(10)]
        for s in stalled:
            s.sendall(partial)
        for _ in range(10):
            s = socket.create_connection(("127.0.0.1", a.port), timeout=5)
            s.sendall(partial)
            s.close()
        healthy("before SIGTERM")
        t0 = time.time()
        eq(a.d.stop(timeout=10), 0, "linlid exit code")
        check(time.time() - t0 < 5, f"SIGTERM took {time.time() - t0:.1f}s")
        for s in stalled:
            s.close()


def raw_request(port, data, timeout=5):
    """Send raw bytes as a request; return (status, headers text, body bytes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        got = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            got += chunk
            head, sep, body = got.partition(b"\r\n\r\n")
            if sep and b"content-length:" in head.lower():
                n = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                if len(body) >= n:
                    break
    head, _, body = got.partition(b"\r\n\r\n")
    status = int(head.split()[1]) if head.startswith(b"HTTP/") else 0
    return status, head.decode(errors="replace"), body


def json_error(status, head, body, what, want=None):
    """The answer is an error with the JSON body every error has; returns its message."""
    check(status >= 400 and (want is None or status in want), f"{what}: status {status}")
    try:
        j = json.loads(body)
    except ValueError:
        raise TestFailure(f"{what}: {status} without a JSON body: {head!r} {body!r}")
    eq(j["error"]["status"], status, f"{what}: status in the body")
    check(isinstance(j["error"]["message"], str) and j["error"]["message"], f"{what}: {j}")
    return j["error"]["message"]


def case_malformed_requests_have_json_bodies():
    """Every error has a JSON body, whatever bytes the request held, and each request
    that reaches linlid's handler is audited: the audit escapes what is not UTF-8."""
    with api() as a:
        k = key(a.d, "probe", "residents")
        auth = f"Authorization: Bearer {k}\r\n".encode()

        def get(target, extra=b""):
            return raw_request(a.port, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n" + extra
                               + b"Connection: close\r\n\r\n")

        # (target, send the key?, status, who the audit names): a malformed target is
        # refused before the key is looked at.
        reaching = [
            (b"/api/v1/%ff%fe", False, 400, "http:anonymous"),
            (b"/api/v1/datasets/%c0%ae%c0%ae/records", True, 400, "http:anonymous"),
            (b"/api/v1/%zz", False, 400, "http:anonymous"),
            (b"/api/v1/%00", False, 400, "http:anonymous"),
            (b"/api/v1/health?x=%ff", False, 400, "http:anonymous"),
            (b"/api/v1/datasets/residents/records?where=name%3d%ff%fe", True, 400,
             "http:anonymous"),
            (b"/api/v1/datasets/%e5%bc%a0/records", True, 404, "apikey:probe"),
            (b"/api/v1/nothing/%e5%bc%a0", False, 404, "http:anonymous"),
            (b"/api/v1/datasets", False, 401, "http:anonymous"),
        ]
        for target, with_key, want, _ in reaching:
            st, head, body = get(target, auth if with_key else b"")
            msg = json_error(st, head, body, target, (want,))
            check("application/json" in head, head)
            if b"%ff%fe" in target:  # the decoded bytes are escaped, never dropped
                check("%ff%fe" in msg, f"{target}: {msg}")
        # Refused bodies and wrong methods: JSON too.
        st, head, body = raw_request(a.port, b"POST /api/v1/applications HTTP/1.1\r\nHost: x\r\n"
                                     b"Content-Length: 12x\r\n\r\n")
        json_error(st, head, body, "bad Content-Length", (400,))
        st, head, body = raw_request(a.port, b"POST /api/v1/%ff HTTP/1.1\r\nHost: x\r\n"
                                     b"Transfer-Encoding: chunked\r\n\r\n")
        json_error(st, head, body, "chunked on a bad path", (400, 411))
        st, head, body = get(b"/api/v1/health", b"X: y\r\n")
        eq(st, 200, "health")
        st, head, body = raw_request(a.port, b"DELETE /api/v1/health HTTP/1.1\r\nHost: x\r\n"
                                     b"Connection: close\r\n\r\n")
        json_error(st, head, body, "wrong method", (405,))
        # What nng answers itself (never reaches the handler): still the JSON shape.
        for req, want in [(b"GET /api/v1/health HTTP/1.1\r\n\r\n", 400),       # no Host
                          (b"GET /api/v1/health HTTP/2.0\r\nHost: x\r\n\r\n", 505),
                          (b"GET x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404)]:
            st, head, body = raw_request(a.port, req)
            json_error(st, head, body, req, (want,))
        # nng's parser drops a request line or header with a byte below 0x20 or above
        # 0x7f without an answer (our code never sees it); the node is unharmed.
        for req in [b"GET /api/v1/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
                    b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX: \xc0\xae\r\n\r\n"]:
            eq(raw_request(a.port, req)[0], 0, f"{req}: dropped by nng")
        eq(a.curl("GET", "/api/v1/health")[0], 200, "health after raw bytes")
        # Each request that reached the handler is in the audit log, escaped, none lost.
        check("cannot record" not in a.d.logtext(), "an audit entry was dropped")
        log = a.d.ok("audit", "--action", "http.GET", "--limit", "1000")
        got = sorted((e["who"], e["detail"][:3]) for e in log if e["result"] == "denied")
        want = sorted((w, str(st)) for _, _, st, w in reaching)
        eq(got, want, "each refused GET audited once")
        objects = [e.get("object", "") for e in log]
        check("/api/v1/%ff%fe" in objects and "张" in objects, objects)
        eq(len([e for e in a.d.ok("audit", "--action", "http.DELETE") if e["detail"].startswith("405")]),
           1, "the wrong method audited")
        eq(len([e for e in a.d.ok("audit", "--action", "http.POST")]), 2, "refused bodies audited")


def case_audit_keeps_entries_whatever_they_hold():
    """The audit writer escapes what is not UTF-8 instead of dropping the entry: failed
    logins under names that are stray bytes, or cut inside a character, are on record."""
    with api() as a:
        d = a.d
        long_name = "张三李四王五赵六钱七孙八周九吴十".encode()[:40] + b"\xe5"
        for user in [b"\xff\xfe", long_name]:
            r = subprocess.run([LINLI, "--socket", d.sock, "login", user, "--password-stdin"],
                               input=b"wrong\n", capture_output=True, timeout=60)
            eq(r.returncode, 1, f"login {user!r}")
        denied = d.ok("audit", "--action", "login", "--result", "denied")
        eq(sorted(e["who"] for e in denied), ["\\xff\\xfe", "张三李四王五赵六钱七\\xe5\\xad"],
           "both failed logins on record, escaped")
        check("cannot record" not in d.logtext(), d.logtext()[-2000:])


COMM = "hefei/baohe/binhu/yuelan"
COMM2 = "hefei/baohe/binhu/qiming"
RESIDENT = {"name": "张三", "id_number": "340104199001011234", "phone": "13812345678",
            "gender": "male"}


def key(d, name, datasets, scope=COMM):
    return d.ok("apikeys", "add", name, "--datasets", datasets, "--scope", scope)["key"]


def case_api_keys_and_errors():
    with api() as a:
        d = a.d
        k = key(d, "app1", "residents,parking_spaces,applications")
        eq(len(k), 64, "a 256-bit key")
        # 401: none, wrong, and (later) revoked keys.
        eq(a.curl("GET", "/api/v1/datasets")[0], 401, "no key")
        st, body, _ = a.curl("GET", "/api/v1/datasets", key="0" * 64)
        eq(st, 401, "wrong key")
        check("unknown or revoked" in body["error"]["message"], body)
        # The catalog part this key may read.
        st, body, _ = a.curl("GET", "/api/v1/datasets", key=k)
        eq(st, 200, "datasets")
        eq(sorted(x["name"] for x in body["datasets"]),
           ["applications", "parking_spaces", "residents"], "the key's shareable datasets")
        # A non-shareable dataset can never be on a key; a system one does not exist here.
        rc, out, _ = d.cli("apikeys", "add", "bad", "--datasets", "watchlist")
        check(rc == 1 and "not shared" in out["error"], out)
        st, body, _ = a.curl("GET", "/api/v1/datasets/accounts/records", key=k)
        eq(st, 404, "system dataset invisible")
        st, body, _ = a.curl("GET", "/api/v1/datasets/watchlist/records", key=k)
        eq(st, 403, "not shared")
        st, body, _ = a.curl("GET", "/api/v1/datasets/houses/records", key=k)
        eq(st, 403, "shareable but not on the key")
        st, body, _ = a.curl("GET", "/api/v1/datasets/nosuch/records", key=k)
        eq(st, 404, "unknown dataset")
        # Records: masked, scope-limited, paged.
        d.ok("data", "put", "residents", "--scope", COMM, json.dumps(RESIDENT, ensure_ascii=False))
        d.ok("data", "put", "residents", "--scope", COMM2, json.dumps(RESIDENT, ensure_ascii=False))
        st, body, _ = a.curl("GET", "/api/v1/datasets/residents/records", key=k)
        eq((st, body["count"]), (200, 1), "only the key's community")
        rec = body["records"][0]
        eq((rec["id_number"], rec["phone"], rec["name"]), ("340***********1234", "138****5678", "张*"),
           "masked for a key")
        st, one, _ = a.curl("GET", f"/api/v1/datasets/residents/records/{rec['id']}", key=k)
        eq((st, one["id_number"]), (200, "340***********1234"), "one record, masked")
        st, body, _ = a.curl("GET", "/api/v1/datasets/residents/records/nope", key=k)
        eq(st, 404, "unknown record")
        st, body, _ = a.curl("GET", f"/api/v1/datasets/residents/records?scope={COMM2}", key=k)
        eq(st, 403, "a key for another scope")
        check("outside the key's jurisdiction" in body["error"]["message"], body)
        st, body, _ = a.curl("GET", "/api/v1/datasets/residents/records?limit=0", key=k)
        eq(st, 400, "bad limit")
        st, body, _ = a.curl("GET", "/api/v1/datasets/residents/records?where=nofield=1", key=k)
        eq(st, 400, "filter on a field that is not indexed")
        # Devices are not on this key; every request audited.
        st, body, _ = a.curl("GET", "/api/v1/devices", key=k)
        eq(st, 403, "devices without devices:CLASS")
        log = d.ok("audit", "--who", "apikey:app1", "--limit", "1000")
        check(len(log) >= 10, f"{len(log)} audit entries")
        check({"masked", "denied", "allowed"} <= {e["result"] for e in log}, log)
        # Revoked: 401 from then on.
        d.ok("apikeys", "revoke", "app1")
        eq(a.curl("GET", "/api/v1/datasets", key=k)[0], 401, "revoked")
        eq([x["revoked"] for x in d.ok("apikeys", "list")], [True], "list shows it revoked")


def case_same_id_in_two_scopes():
    """Ids are unique per (dataset, scope): a key over both scopes is asked for ?scope=
    (409, naming only its own scopes), a key over one of them never learns of the other."""
    with api() as a:
        d = a.d
        street = "hefei/baohe/binhu"
        both = key(d, "street", "residents", scope=street)
        one = key(d, "comm2", "residents", scope=COMM2)
        body = json.dumps(RESIDENT, ensure_ascii=False)
        d.ok("data", "put", "residents", "--scope", COMM, "--id", "r2", body)
        d.ok("data", "put", "residents", "--scope", COMM2, "--id", "r2", body)
        st, got, _ = a.curl("GET", "/api/v1/datasets/residents/records/r2", key=both)
        eq(st, 409, f"an id two scopes hold: {got}")
        msg = got["error"]["message"]
        check(COMM in msg and COMM2 in msg and "?scope=" in msg, msg)
        for scope in (COMM, COMM2):
            st, got, _ = a.curl("GET", f"/api/v1/datasets/residents/records/r2?scope={scope}",
                                key=both)
            eq((st, got["scope"]), (200, scope), "exact address")
        st, got, _ = a.curl("GET", "/api/v1/datasets/residents/records/r2", key=one)
        eq((st, got["scope"]), (200, COMM2), "within the key's own scope: one record")
        st, got, _ = a.curl("GET", "/api/v1/datasets/residents/records/r2?scope=" + COMM, key=one)
        eq(st, 403, "a sibling's scope")
        check(COMM2 not in json.dumps(got) or "outside" in json.dumps(got), got)
        d.ok("data", "del", "residents", "r2", "--scope", COMM2)
        st, got, _ = a.curl("GET", "/api/v1/datasets/residents/records/r2", key=one)
        eq(st, 404, "gone from the key's scope")
        check(COMM not in json.dumps(got), f"nothing names the sibling: {got}")


def case_post_application_is_the_services_plugins():
    """POST /api/v1/applications belongs to the services plugin (test_services covers it):
    on a node without the plugin the kernel stores nothing itself — 503 naming the
    plugin, the refusal audited; an oversized body is still 413 before any of that."""
    with api() as a:
        d = a.d
        k = d.ok("apikeys", "add", "kiosk", "--resources", "app:services", "--scope", COMM,
                 "--role", "operator")["key"]
        app = {"item": "34010400MZ-GG-0007", "applicant_name": "李四",
               "applicant_id_number": "340104199001015678"}
        for path in ("/api/v1/applications", "/api/v1/applications/status"):
            st, body, _ = a.curl("POST", path, key=k, body=json.dumps(app, ensure_ascii=False))
            eq(st, 503, f"{path} without the plugin: {body}")
            eq(body["error"]["message"], f"{path} is served by the services plugin, which is "
               "not running here (nothing was stored)", "the message")
        eq(d.ok("data", "query", "applications")["count"], 0, "nothing stored")
        st, body, _ = a.curl("POST", "/api/v1/applications", key=k, body="x" * 5000)
        eq(st, 413, "too large")
        eq(a.curl("POST", "/api/v1/applications", body=json.dumps(app))[0], 401, "no key")
        rows = d.ok("audit", "--limit", "100")
        check(any(r.get("object") == "app:services" and r["result"] == "denied" for r in rows),
              f"the refusal audited: {rows[:5]}")


def sim_api(per_class=3, **kw):
    """An api() whose node has the simulated fleet: per_class devices of every catalog
    class at COMM, registered at start and quiet (no readings on a clock)."""
    a = api(extra=f'plugin_dirs = [ "{os.path.join(BUILD, "plugins", "sim")}" ];\n'
                  f'plugins = {{ sim = {{ per_class = {per_class}; auto = false; '
                  f'thread = false; scope = "{COMM}"; }}; }};\n', **kw)
    a.d.grant("plugin:sim", "--all")
    return a


def pages(a, path, k, limit, field):
    """Follow a list's cursor to the end with ?limit=; return the rows and the page sizes."""
    rows, sizes, cursor = [], [], None
    while True:
        q = f"{path}{'&' if '?' in path else '?'}limit={limit}"
        if cursor:
            q += "&cursor=" + urllib.parse.quote(cursor, safe="")
        st, body, _ = a.curl("GET", q, key=k)
        eq(st, 200, f"{q}: {body}")
        rows += body[field]
        sizes.append(len(body[field]))
        check(len(body[field]) <= limit, f"{q}: a page over the limit")
        cursor = body.get("cursor")
        if not cursor:
            return rows, sizes
        check(len(sizes) < 100, "the cursor never ends")


def case_keys_bounded_by_resources():
    """A key reads what it was issued for: devices only with devices:CLASS, of those
    classes only, without their driver addresses or credentials, page by page."""
    with sim_api() as a:
        d = a.d
        every = d.ok("devices", "list", "--scope", COMM)
        classes = {x["class"] for x in every}
        check({"parking", "door"} <= classes and len(every) >= 3 * len(classes), every)
        # The key: parking_spaces and applications, no devices.
        k = key(d, "app1", "parking_spaces,applications")
        st, body, _ = a.curl("GET", "/api/v1/devices", key=k)
        eq(st, 403, f"devices without devices:CLASS: {body}")
        check("devices:CLASS" in body["error"]["message"], body)
        st, body, _ = a.curl("GET", "/api/v1/datasets/devices/records", key=k)
        eq(st, 403, "the registry is not a dataset for keys")
        # devices:parking: parking devices only, public fields only, paged.
        park = d.ok("apikeys", "add", "park", "--resources", "dataset:parking_spaces,devices:parking",
                    "--scope", COMM)
        eq(park["resources"], ["dataset:parking_spaces", "devices:parking"], "issued for")
        rows, sizes = pages(a, "/api/v1/devices", park["key"], 2, "devices")
        eq(sorted(x["id"] for x in rows),
           sorted(x["id"] for x in every if x["class"] == "parking"), "the parking devices")
        eq(sizes, [2, 1], "two pages of at most 2")
        for x in rows:
            eq(set(x) - {"id", "scope", "class", "name", "state", "last_seen"}, set(),
               f"public fields only: {x}")
        st, body, _ = a.curl("GET", "/api/v1/devices?class=door", key=park["key"])
        eq(st, 403, "another class")
        st, body, _ = a.curl("GET", "/api/v1/devices?limit=1001", key=park["key"])
        eq(st, 400, "a page is at most 1000")
        st, body, _ = a.curl("GET", "/api/v1/datasets/residents/records", key=park["key"])
        eq(st, 403, "no dataset:residents")
        # Two classes: pages filtered, every one within the limit, nothing else.
        two = d.ok("apikeys", "add", "two", "--resources", "devices:parking,devices:door",
                   "--scope", COMM)["key"]
        rows, sizes = pages(a, "/api/v1/devices", two, 4, "devices")
        eq(sorted(x["id"] for x in rows),
           sorted(x["id"] for x in every if x["class"] in ("parking", "door")), "two classes")
        rows, _ = pages(a, "/api/v1/devices?class=door", two, 2, "devices")
        eq({x["class"] for x in rows}, {"door"}, "?class=")
        # devices:* sees every class; the datasets list pages too.
        allk = d.ok("apikeys", "add", "all", "--resources", "devices:*", "--datasets",
                    "parking_spaces,houses,residents", "--scope", COMM)["key"]
        rows, _ = pages(a, "/api/v1/devices", allk, 1000, "devices")
        eq(len(rows), len(every), "devices:*")
        names, sizes = pages(a, "/api/v1/datasets", allk, 2, "datasets")
        eq(sorted(x["name"] for x in names), ["houses", "parking_spaces", "residents"],
           "datasets, paged")
        eq(sizes, [2, 1], "dataset pages")
        # Resources that are not, refused when the key is issued.
        for args, needle in [
                (["--resources", "datasets:x"], "unknown kind (one of dataset:NAME, devices:CLASS"),
                (["--resources", "dataset:nosuch"], "dataset:nosuch: no such dataset"),
                (["--resources", "devices:toaster"], "devices:toaster: no such device class"),
                (["--resources", "dataset:watchlist"], "not shared"),
                (["--resources", "dataset:devices"], "read as devices:CLASS"),
                (["--resources", "metrics:x"], "metrics takes no name"),
                (["--datasets", "devices:parking"], "use --resources"),
                ([], "usage: apikeys add NAME --resources")]:
            rc, out, err = d.cli("apikeys", "add", "bad", *args, "--scope", COMM)
            check(rc == 1 and needle in err, f"{args}: {rc} {err}")
        # Kinds whose endpoints come later are issued, listed, and give nothing today.
        later = d.ok("apikeys", "add", "later", "--resources", "app:alarms/active,metrics,screen",
                     "--scope", COMM)
        eq(later["resources"], ["app:alarms/active", "metrics", "screen"], "later kinds")
        eq(a.curl("GET", "/api/v1/devices", key=later["key"])[0], 403, "no devices")
        listed = {x["name"]: x["resources"] for x in d.ok("apikeys", "list")}
        eq(listed["park"], ["dataset:parking_spaces", "devices:parking"], "list")
        eq(listed["app1"], ["dataset:parking_spaces", "dataset:applications"], "--datasets")
        eq(listed["all"], ["devices:*", "dataset:parking_spaces", "dataset:houses",
                           "dataset:residents"], "both options")


def case_sensitive_filters_refused():
    """An API key sees sensitive fields masked, so it may not filter on them either:
    where= on one is a 403 naming the field, audited as denied; others still work."""
    with api() as a:
        d = a.d
        k = key(d, "reader", "residents")
        d.ok("data", "put", "residents", "--scope", COMM, json.dumps(RESIDENT, ensure_ascii=False))
        for where in ["id_number=340104199001011234", "id_number=0", "name=x",
                      "residence_type=registered&where=id_number=1"]:
            st, body, _ = a.curl("GET", f"/api/v1/datasets/residents/records?where={where}", key=k)
            eq(st, 403, f"where={where}: {body}")
            field = where.split("&where=")[-1].split("=")[0]
            check(f"field '{field}' of residents is sensitive" in body["error"]["message"], body)
        st, body, _ = a.curl("GET", "/api/v1/datasets/residents/records?where=residence_type=floating",
                             key=k)
        eq((st, body["count"]), (200, 0), "a filter on a field that is not sensitive")
        denied = [e for e in d.ok("audit", "--who", "apikey:reader", "--result", "denied")
                  if "is sensitive" in e.get("detail", "")]
        eq(len(denied), 4, "each refused filter audited")
        check("id_number" in denied[0]["detail"] or "id_number" in denied[-1]["detail"], denied)


def case_refusals_audited_within_the_rate():
    """Refused requests need no key, so they are itemised in the audit up to
    http.rate_limit per second per principal and counted beyond: a flood of them
    cannot write to the store at line rate, and none goes unaccounted."""
    with api(rate=5) as a:
        n = 40
        for _ in range(n):
            raw_request(a.port, b"GET /api/v1/nothing HTTP/1.1\r\nHost: x\r\n"
                                b"Connection: close\r\n\r\n")
        time.sleep(1.2)  # the bucket refills: the next refusal carries the count
        raw_request(a.port, b"GET /api/v1/nothing HTTP/1.1\r\nHost: x\r\n"
                            b"Connection: close\r\n\r\n")
        log = a.d.ok("audit", "--who", "http:anonymous", "--limit", "1000")
        itemised = [e for e in log if e["action"] == "http.GET"]
        counted = [e for e in log if e["action"] == "http.refused"]
        check(len(itemised) < n // 2, f"{len(itemised)} itemised of {n + 1}")
        eq(len(counted), 1, f"one count: {counted}")
        held = int(counted[0]["detail"].split()[0])
        eq(len(itemised) + held, n + 1, "every refusal itemised or counted")


def case_rate_limit_429():
    with api(rate=5) as a:
        k = key(a.d, "busy", "residents")
        # Sockets, not a curl process per request: a slow (sanitizer) build must still
        # send them faster than the bucket refills.
        req = (f"GET /api/v1/datasets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {k}\r\n"
               "Connection: close\r\n\r\n").encode()
        answers = [raw_request(a.port, req) for _ in range(12)]
        codes = [x[0] for x in answers]
        check(codes.count(429) >= 3 and codes[0] == 200, codes)
        head = answers[codes.index(429)][1]
        check("Retry-After: 1" in head, head)
        time.sleep(1.2)
        eq(a.curl("GET", "/api/v1/datasets", key=k)[0], 200, "allowed again after a second")


DESK_APP = """
plugin { name = "desk", version = "1.0.0", sdk = "1.1", family = "custom", description = "d",
  capabilities = { "store.read:grids", "store.write:grids" },
  init = function()
    assert(linli.action_declare("desk.file", "operator"))
    assert(linli.route_register("hello", "GET", "hello/{}", function(req)
      return { name = req.params[1], who = req.caller.name, kind = req.caller.kind,
               role = req.caller.role, scope = req.caller.scope, q = req.query.q,
               resources = req.caller.resources }
    end))
    assert(linli.route_register("file", "POST", "grids", function(req)
      local id, err, code = linli.store_put("grids", req.body, req.caller.scope)
      if not id then return nil, err, code end
      return { id = id }, 201
    end))
    assert(linli.route_require("file", "desk.file"))
    assert(linli.route_register("teapot", "GET", "teapot", function(req)
      return nil, "short and stout", "LINLI_EBUSY", 418
    end))
    local bad = select(2, linli.route_register("x", "PATCH", "a", function() end))
    assert(bad:find("method 'PATCH' is none of"), bad)
    bad = select(2, linli.route_register("y", "GET", "a/../b", function() end))
    assert(bad:find("'..' segment"), bad)
  end }
"""


def case_plugin_routes_pass_the_key_check():
    """A plugin's routes under /api/v1/apps/<plugin>/: the kernel's key check, rate limit,
    audit and JSON errors; the resource app:PLUGIN[/ROUTE]; the handler acts as the key."""
    import tempfile
    scripts = tempfile.mkdtemp(prefix="linli-it-apps-")
    os.makedirs(os.path.join(scripts, "apps"))
    with open(os.path.join(scripts, "apps", "desk.lua"), "w") as f:
        f.write(DESK_APP)
    a = api(extra=f'script_dirs = [ "{scripts}" ];\n')
    a.d.grant_scripts(os.path.join(scripts, "apps"))
    with a:
        d = a.d
        all_ = d.ok("apikeys", "add", "all", "--resources", "app:desk", "--scope", COMM)["key"]
        hello = d.ok("apikeys", "add", "hello", "--resources", "app:desk/hello",
                     "--scope", COMM)["key"]
        none = d.ok("apikeys", "add", "none", "--resources", "dataset:grids", "--scope",
                    COMM)["key"]
        op = d.ok("apikeys", "add", "op", "--resources", "app:desk", "--scope", COMM,
                  "--role", "operator")
        eq(op["role"], "operator", "an operator key")
        roles = {x["name"]: x["role"] for x in d.ok("apikeys", "list")}
        eq((roles["op"], roles["all"]), ("operator", "viewer"), "apikeys list shows the role")
        op = op["key"]
        rc, _, err = d.cli("apikeys", "add", "boss", "--resources", "app:desk", "--role", "admin")
        check(rc != 0 and "a key is a viewer (the default) or an operator" in err, err)
        st, body, _ = a.curl("GET", "/api/v1/apps/desk/hello/%E5%BC%A0?q=1", key=hello)
        eq(st, 200, f"hello: {body}")
        eq((body["name"], body["who"], body["kind"], body["role"], body["scope"], body["q"]),
           ("张", "apikey:hello", "machine", "viewer", COMM, "1"), "the request and the key")
        eq(body["resources"], ["app:desk/hello"], "its resources")
        # No key, a key without the resource, a key for another route of the plugin.
        eq(a.curl("GET", "/api/v1/apps/desk/hello/x")[0], 401, "no key")
        st, body, _ = a.curl("GET", "/api/v1/apps/desk/hello/x", key=none)
        eq(st, 403, "no app resource")
        check("may not reach app:desk/hello" in body["error"]["message"], body)
        st, body, _ = a.curl("POST", "/api/v1/apps/desk/grids", body="{}", key=hello)
        eq(st, 403, "app:desk/hello does not reach file")
        # Unknown plugin or path: 404; a known path with another method: 405.
        eq(a.curl("GET", "/api/v1/apps/nosuch/x", key=all_)[0], 404, "no such plugin")
        eq(a.curl("GET", "/api/v1/apps/desk/nothing", key=all_)[0], 404, "no such route")
        eq(a.curl("DELETE", "/api/v1/apps/desk/hello/x", key=all_)[0], 405, "method")
        # The route's action and acting as the key: a viewer key is refused by the action,
        # an operator key writes at its scope.
        grid = json.dumps({"code": "g09", "name": "九网格"}, ensure_ascii=False)
        st, body, _ = a.curl("POST", "/api/v1/apps/desk/grids", body=grid, key=all_)
        eq(st, 403, f"a viewer key: {body}")
        check("needs role operator or above" in body["error"]["message"], body)
        st, body, _ = a.curl("POST", "/api/v1/apps/desk/grids", body=grid, key=op)
        eq(st, 201, f"an operator key: {body}")
        eq(d.ok("data", "get", "grids", body["id"])["name"], "九网格", "stored at its scope")
        st, body, _ = a.curl("POST", "/api/v1/apps/desk/grids", body='{"code": 1', key=op)
        eq(st, 400, "malformed body")
        check("malformed JSON" in body["error"]["message"], body)
        st, body, _ = a.curl("POST", "/api/v1/apps/desk/grids", body='{"code": "g10"}', key=op)
        eq(st, 400, f"the schema's refusal: {body}")
        check("name" in body["error"]["message"], body)
        st, body, _ = a.curl("GET", "/api/v1/apps/desk/teapot", key=all_)
        eq((st, body["error"]["message"]), (418, "short and stout"), "the handler's status")
        # Every request is audited under its key.
        rows = d.ok("audit", "--who", "apikey:op", "--limit", "100")
        got = {(e["object"], e["result"]) for e in rows if e["action"].startswith("http.")}
        check(("app:desk/file", "allowed") in got, got)
        rows = d.ok("audit", "--who", "apikey:none", "--limit", "100")
        check(any(e.get("object") == "app:desk/hello" and e["result"] == "denied"
                  for e in rows), rows)
        info = d.ok("plugins", "info", "desk")
        check({"kind": "route", "what": "file: POST /api/v1/apps/desk/grids, needs desk.file"}
              in info["resources"], info["resources"])


def case_a_c_plugin_route():
    import shutil
    tp = os.path.abspath(os.environ.get("LINLI_TP_DIR", os.path.join(BUILD, "tests",
                                                                     "plugins")))
    import tempfile
    pdir = tempfile.mkdtemp(prefix="linli-it-tp-")
    shutil.copyfile(os.path.join(tp, "tp_store.so"), os.path.join(pdir, "tp_store.so"))
    a = api(extra=f'plugin_dirs = [ "{pdir}" ];\n')
    a.d.grant_declared(pdir)
    with a:
        k = a.d.ok("apikeys", "add", "k", "--resources", "app:tp_store/echo",
                   "--scope", COMM)["key"]
        st, body, _ = a.curl("GET", "/api/v1/apps/tp_store/echo/a%20b?x=%E4%B8%80", key=k)
        eq(st, 202, f"the handler's status: {body}")
        eq(body, {"param": "a b", "route": "echo", "path": "echo/a b", "key": "apikey:k",
                  "x": "一"}, "the request as the plugin saw it")
        st, body, _ = a.curl("GET", "/api/v1/apps/tp_store/echo/a?fail=1", key=k)
        eq((st, body["error"]["message"]), (409, "asked to fail"), "LINLI_EEXIST is 409")


def case_range_filters():
    """where= takes <, <=, >, >= on indexed numbers and times (since SDK 1.1), beside
    FIELD=VALUE; bad ones are a 400 naming the field, a sensitive field a 403."""
    with api() as a:
        d = a.d
        k = key(d, "ranges", "applications")
        for i, t in enumerate(("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z",
                               "2026-01-03T00:00:00Z")):
            d.ok("data", "put", "applications", "--scope", COMM, "--id", f"a-{i}",
                 json.dumps({"item": "s-1", "applicant_name": "张三",
                             "applicant_id_number": RESIDENT["id_number"],
                             "status": "submitted" if i else "accepted", "submitted_at": t}))
        path = "/api/v1/datasets/applications/records"
        for where, want in (("submitted_at%3E=2026-01-02T00:00:00Z", ["a-1", "a-2"]),
                            ("submitted_at<1767312000000", ["a-0"]),
                            ("submitted_at%3Cnow&where=status=submitted", ["a-1", "a-2"]),
                            ("submitted_at>1767225600000&where=submitted_at<=1767398400000",
                             ["a-1", "a-2"])):
            st, body, _ = a.curl("GET", f"{path}?where={where}", key=k)
            eq((st, sorted(r["id"] for r in body.get("records", []))), (200, want),
               f"where={where}: {body}")
        for where, st_want, needle in (
                ("status<x", 400, "field 'status' is of type enum: ranges"),
                ("submitted_at~1", 400, "where must be FIELD=VALUE, FIELD<VALUE"),
                ("submitted_at>=soon", 400, "field 'submitted_at': 'soon' is not a time"),
                ("completed_at<now", 400, "field 'completed_at' is not indexed"),
                ("applicant_id_number>1", 403,
                 "field 'applicant_id_number' of applications is sensitive")):
            st, body, _ = a.curl("GET", f"{path}?where={where}", key=k)
            eq(st, st_want, f"where={where}: {body}")
            check(needle in body["error"]["message"], f"{needle!r} in {body}")


def prometheus_parser():
    """The Prometheus text parser of Debian's python3-prometheus-client (pure Python: found
    under /usr/lib/python3/dist-packages whichever python3 runs the tests)."""
    try:
        from prometheus_client import parser
    except ImportError:
        sys.path.append("/usr/lib/python3/dist-packages")
        from prometheus_client import parser
    return parser


def scrape(a, k):
    """GET /metrics with key k, parsed: {(name, labels as a sorted tuple): value}."""
    st, body, head = a.curl("GET", "/metrics", key=k)
    eq(st, 200, f"metrics: {body}")
    check("text/plain; version=0.0.4" in head, head)
    samples = {}
    for fam in prometheus_parser().text_string_to_metric_families(body):
        for s in fam.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def case_metrics_in_the_prometheus_format():
    """GET /metrics: the node's figures, parsed by a real Prometheus parser and checked
    against what the console says; only a metrics key over the whole node reads them,
    refusals are audited, scrapes are not."""
    with sim_api(per_class=2, rules={"spin.lua": SPIN}) as a:
        d = a.d
        node = d.ok("status")["node"]
        mk = d.ok("apikeys", "add", "prom", "--resources", "metrics", "--scope", node)["key"]
        narrow = d.ok("apikeys", "add", "promc", "--resources", "metrics", "--scope", COMM)["key"]
        data = key(d, "data1", "residents")
        st, body, _ = a.curl("GET", "/metrics", key=narrow)
        check(st == 403 and "whole node's" in body["error"]["message"], (st, body))
        st, body, _ = a.curl("GET", "/metrics", key=data)
        check(st == 403 and "may not read metrics" in body["error"]["message"], (st, body))
        eq(a.curl("GET", "/metrics")[0], 401, "no key")
        for i in range(3):
            d.ok("data", "put", "residents", "--scope", COMM, "--id", f"r{i}", json.dumps(RESIDENT))
        rc, _, err = d.cli("rules", "test", "spin")
        check(rc == 1 and "instruction budget exhausted" in err, err)

        m = scrape(a, mk)
        info = [lab for (n, lab) in m if n == "linli_info"]
        eq(dict(info[0])["node"], node, "linli_info names the node")
        check(m[("linli_store_records", ())] >= 3, "the three residents are stored")
        check(m[("linli_store_commits_total", ())] >= 1, "commits counted")
        devices = d.ok("devices", "list")
        eq(m[("linli_hal_devices", ())], len(devices), "devices as `devices list` has them")
        plugins = d.ok("plugins", "list")
        eq(m[("linli_plugins", (("state", "running"),))],
           sum(1 for p in plugins if p["state"] == "running"), "running plugins")
        eq(m[("linli_lua_rules", (("state", "faulted"),))], 1, "the faulted rule")
        eq(m[("linli_lua_faults_total", (("rule", "spin"),))], 1, "its fault")
        check(m[("linli_lua_calls_total", (("rule", "spin"),))] >= 1, "its call")
        eq(m[("linli_lua_depth_drops_total", (("rule", "spin"),))], 0, "no deep chain")
        check(("linli_bus_events_delayed_total", ()) in m, "the bus's late deliveries")
        eq(m[("linli_http_responses_total", (("code", "403"),))], 2, "the two refusals")
        eq(m[("linli_http_responses_total", (("code", "401"),))], 1, "the missing key")
        check(m[("linli_data_dir_free_bytes", ())] > 0, "free disk")
        # Counters move: one more write and one more scrape.
        before = m[("linli_store_writes_total", ())]
        d.ok("data", "put", "residents", "--scope", COMM, "--id", "r9", json.dumps(RESIDENT))
        m2 = scrape(a, mk)
        check(m2[("linli_store_writes_total", ())] > before, "writes counted")
        eq(m2[("linli_http_responses_total", (("code", "200"),))], 1, "the first scrape")
        # Refusals audited under their keys; a scrape is not.
        rows = d.ok("audit", "--limit", "1000")
        got = [(r["who"], r["result"]) for r in rows if r.get("object") == "metrics"]
        eq(sorted(got), [("apikey:data1", "denied"), ("apikey:promc", "denied")],
           "only the refusals are audited")


SPIN = """rule {
  name = "spin",
  on = "test/spin",
  when = function(e) while true do end end,
  run = function() end,
  limits = { instructions = 200000 },
}
"""


def case_health_says_what_is_degraded():
    """Health: ok, then degraded naming a faulted rule and a failed plugin; a disk below
    http.health_min_free_mb; the OpenAPI document as built."""
    with api(rules={"spin.lua": SPIN}) as a:
        d = a.d
        st, body, _ = a.curl("GET", "/api/v1/health")
        eq((st, body["status"], body["degraded"]), (200, "ok", []), "healthy")
        d.cli("rules", "test", "spin")
        st, body, _ = a.curl("GET", "/api/v1/health")
        eq((st, body["status"]), (200, "degraded"), "a faulted rule degrades")
        eq(body["degraded"], [{"part": "rule", "name": "spin", "state": "faulted"}], body)
        st, text, head = a.curl("GET", "/api/v1/openapi.yaml")
        eq(st, 200, "openapi")
        check("application/yaml" in head, head)
        with open(os.path.join(SRC, "sdk", "openapi.yaml"), encoding="utf-8") as f:
            eq(text, f.read(), "the document served is sdk/openapi.yaml")
    free = os.statvfs(BUILD)
    need_mb = free.f_bavail * free.f_frsize // (1 << 20) + 1024
    with api(http_extra=f"health_min_free_mb = {need_mb};") as a:
        st, body, _ = a.curl("GET", "/api/v1/health")
        eq(body["status"], "degraded", "little disk")
        disk = [x for x in body["degraded"] if x["part"] == "disk"]
        check(len(disk) == 1 and disk[0]["min_free_bytes"] == need_mb << 20
              and disk[0]["free_bytes"] < disk[0]["min_free_bytes"], body)
    pdir = tempfile.mkdtemp(prefix="linli-health-")
    try:
        shutil.copy(os.path.join(BUILD, "tests", "plugins", "tp_failinit.so"), pdir)
        with api(extra=f'plugin_dirs = [ "{pdir}" ];\n') as a:
            st, body, _ = a.curl("GET", "/api/v1/health")
            eq((body["status"], body["degraded"]),
               ("degraded", [{"part": "plugin", "name": "failinit", "state": "failed"}]),
               "a plugin whose init failed")
    finally:
        shutil.rmtree(pdir)


if __name__ == "__main__":
    sys.exit(main(dict(globals())))
