"""Integration tests of federation's first step (host/fed.c): two tiers as two linlids, each
with its own real nats-server (Debian's), the community's a leaf node of the street's.

The street's server runs JetStream in domain `street` and listens for leaf nodes; the
community's runs JetStream in domain `yuelan` and connects to it as a leaf. Each linlid talks
to its own server only. The community sends its status up (into the street's JetStream); the
street keeps the stream of its children and shows them in `federation status`. Without
nats-server the cases FAIL (tools/setup installs it); nothing is skipped.
"""
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import (BUILD, SRC, Daemon, TestFailure, check, eq, finish, main,  # noqa: E402
                     wait_for, write)

STREET = "hefei/baohe/binhu"
YUELAN = STREET + "/yuelan"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class server:
    """A real nats-server with JetStream on loopback, in its own temp dir (or on a
    configuration tools/tiers wrote: conf and port given)."""

    def __init__(self, name, domain=None, leaf_listen=None, leaf_remote=None, conf=None,
                 port=None):
        exe = shutil.which("nats-server") or "/usr/bin/nats-server"
        if not os.access(exe, os.X_OK):
            raise TestFailure("nats-server is not installed: run tools/setup (Debian package "
                              "nats-server); the federation tests need a real server")
        self.exe, self.name = exe, name
        self.dir = tempfile.mkdtemp(prefix=f"linli-nats-{name}-")
        self.port = port or free_port()
        text = (f'listen: 127.0.0.1:{self.port}\nserver_name: {name}\n'
                f'jetstream {{ store_dir: "{self.dir}/js", domain: {domain} }}\n')
        if leaf_listen:
            text += f"leafnodes {{ listen: 127.0.0.1:{leaf_listen} }}\n"
        if leaf_remote:
            text += (f'leafnodes {{ remotes = [ {{ url: "nats-leaf://127.0.0.1:{leaf_remote}" }} ]'
                     f', reconnect: 1 }}\n')
        self.conf = conf or os.path.join(self.dir, "nats.conf")
        if not conf:
            with open(self.conf, "w") as f:
                f.write(text)
        self.proc = None
        self.start()

    def start(self):
        self.log = open(os.path.join(self.dir, "nats.log"), "ab")
        self.proc = subprocess.Popen([self.exe, "-c", self.conf], stdout=self.log,
                                     stderr=self.log, stdin=subprocess.DEVNULL)

        def up():
            check(self.proc.poll() is None, f"nats-server {self.name} ended: {self.logtext()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return True
            except OSError:
                return False
        wait_for(up, f"nats-server {self.name} listening", timeout=10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.log.close()

    def logtext(self):
        with open(os.path.join(self.dir, "nats.log"), errors="replace") as f:
            return f.read()[-2000:]

    def publish(self, subject, payload, user=None, password=None):
        """A plain NATS client's publish (the wire protocol), as anyone on the server could
        (or as user)."""
        auth = f',"user":"{user}","pass":"{password}"' if user else ""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.recv(4096)  # INFO
            s.sendall(b'CONNECT {"verbose":false,"pedantic":false' + auth.encode() + b'}\r\n' +
                      f"PUB {subject} {len(payload)}\r\n".encode() + payload + b"\r\nPING\r\n")
            buf = b""
            while b"PONG" not in buf:
                buf += s.recv(4096)

    def request(self, subject, payload=b""):
        """A NATS request (the wire protocol): the reply's payload."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.recv(4096)  # INFO
            s.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\nSUB _INBOX.t 1\r\n' +
                      f"PUB {subject} _INBOX.t {len(payload)}\r\n".encode() + payload +
                      b"\r\n")
            buf = b""
            while True:
                i = buf.find(b"MSG _INBOX.t 1 ")
                if i >= 0 and b"\r\n" in buf[i:]:
                    head, rest = buf[i:].split(b"\r\n", 1)
                    n = int(head.split()[-1])
                    if len(rest) >= n:
                        return rest[:n]
                chunk = s.recv(65536)
                check(chunk, f"no reply to {subject}")
                buf += chunk

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def mp_map(d):
    """A small MessagePack map of str -> str|int (what a forger would send)."""
    out = bytes([0x80 | len(d)])
    for k, v in d.items():
        for x in (k, v):
            if isinstance(x, str):
                b = x.encode()
                out += bytes([0xa0 | len(b)]) + b if len(b) < 32 else bytes([0xd9, len(b)]) + b
            else:
                out += bytes([0xcf]) + x.to_bytes(8, "big")
    return out


CITY_RULE = """-- pushed down by the city: smoke above a level
rule {
  name = "city_smoke",
  on = "dev/smoke/+/event/alarm",
  when = function(e) return e.level ~= nil and e.level > 3 end,
  run = function(e, topic) print("city rule: " .. topic) end,
}
"""


def mp_obj(v):
    """MessagePack of a JSON-like value (str, int, None, list, dict): what a forger packs."""
    if v is None:
        return b"\xc0"
    if isinstance(v, bool):
        return b"\xc3" if v else b"\xc2"
    if isinstance(v, int):
        return b"\xcf" + v.to_bytes(8, "big")
    if isinstance(v, str):
        b = v.encode()
        return (bytes([0xa0 | len(b)]) if len(b) < 32 else bytes([0xd9, len(b)])) + b
    if isinstance(v, list):
        return bytes([0x90 | len(v)]) + b"".join(mp_obj(x) for x in v)
    return bytes([0x80 | len(v)]) + b"".join(mp_obj(k) + mp_obj(x) for k, x in v.items())


def fed_cfg(url_port, parent=None):
    text = f'federation = {{ url = "nats://127.0.0.1:{url_port}"; status_ms = 300; stale_ms = 1500;'
    if parent:
        text += f' parent_domain = "{parent}";'
    return text + " };\n"


@contextlib.contextmanager
def running(servers, daemons, tmp=None):
    """The case's body with its servers and daemons: on a failure the servers' logs are
    printed; whatever happens each daemon is finished (a clean stop checked when the body
    passed), the servers stopped and tmp removed."""
    etype = None
    try:
        yield
    except BaseException as e:
        etype = type(e)
        for s in servers:
            print(f"--- nats-server {s.name}:\n{s.logtext()}")
        raise
    finally:
        errors = []
        for d in daemons:
            try:
                finish(d, etype)
            except Exception as e:  # the next ones still stop
                errors.append(e)
        for s in servers:
            s.close()
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        if errors and etype is None:
            raise errors[0]


def child_of(d, node):
    kids = [c for c in d.ok("federation", "status")["children"] if c["node"] == node]
    return kids[0] if kids else None


def case_a_communitys_status_reaches_its_street_and_a_cut_heals():
    """The community's status arrives at the street (level, version, sequence); the street's
    link consumes its children's stream; the community's own server stopped: the community
    says it is cut, the street shows it stale; the server back: fresh again, later sequence.
    A forged status (another node than its subject names, or not MessagePack) is refused and
    counted at the street."""
    leaf_port = free_port()
    hub = server("street", "street", leaf_listen=leaf_port)
    leaf = server("yuelan", "yuelan", leaf_remote=leaf_port)
    street = Daemon(node=STREET, level="street", name="滨湖街道", extra=fed_cfg(hub.port))
    comm = Daemon(node=YUELAN, level="community", name="悦澜社区",
                  extra=fed_cfg(leaf.port, "street"))
    with running([hub, leaf], [comm, street]):
        street.start()
        comm.start()
        c = wait_for(lambda: child_of(street, YUELAN), "the community's status at the street",
                     timeout=20)
        eq((c["level"], c["name"], c["stale"]), ("community", "悦澜社区", False), c)
        check(c["version"] and c["sdk"] and c["seq"] >= 1, c)
        st = street.ok("federation", "status")
        eq((st["connected"], st["consuming"], st["parent_domain"], st["refused"]),
           (True, True, None, 0), st)
        # A work queue: what the street took is gone from its server (a stream that never
        # grows), however many statuses came.
        wait_for(lambda: street.ok("federation", "status")["received"] >= 5, "five statuses")
        info = json.loads(hub.request("$JS.API.STREAM.INFO.LINLI_UP"))
        eq(info["config"]["retention"], "workqueue", info)
        check(info["state"]["messages"] <= 2 and info["state"]["last_seq"] >= 5, info["state"])
        cs = comm.ok("federation", "status")
        eq((cs["connected"], cs["parent_domain"], cs["up_subject"]),
           (True, "street", "linli.up.hefei.baohe.binhu.yuelan.status"), cs)
        check(cs["published"] >= 1 and cs["children"] == [], cs)

        # Forged: a status naming another node than its subject, and bytes that are no map.
        hub.publish("linli.up.hefei.baohe.binhu.yuelan.status",
                    mp_map({"node": STREET + "/qiming", "level": "community", "seq": 1}))
        hub.publish("linli.up.hefei.baohe.binhu.yuelan.status", b"\xc1not msgpack")
        wait_for(lambda: street.ok("federation", "status")["refused"] == 2, "both refused")
        street.wait_log("refused a message on linli.up.hefei.baohe.binhu.yuelan.status: node "
                        "'hefei/baohe/binhu/qiming' is not a child")
        eq([k["node"] for k in street.ok("federation", "status")["children"]], [YUELAN],
           "no child made by the forgery")

        # Cut: the community's own server goes away.
        seq0 = child_of(street, YUELAN)["seq"]
        leaf.stop()
        wait_for(lambda: not comm.ok("federation", "status")["connected"], "the community cut")
        wait_for(lambda: child_of(street, YUELAN)["stale"], "stale at the street", timeout=10)
        # The street restarted meanwhile knows its child at once (data_dir/federation/children).
        eq(street.stop(), 0, "street stop")
        street.start()
        c = child_of(street, YUELAN)
        check(c and c["name"] == "悦澜社区" and c["stale"] and c["seq"] >= seq0, c)
        street.wait_log("1 children known from")
        # Healed: the same server again (its JetStream dir kept).
        leaf.start()
        wait_for(lambda: comm.ok("federation", "status")["connected"], "the community back",
                 timeout=20)
        wait_for(lambda: not child_of(street, YUELAN)["stale"] and
                 child_of(street, YUELAN)["seq"] > seq0, "fresh again at the street", timeout=20)


def case_one_account_per_node_a_community_cannot_speak_for_its_sibling():
    """On the configuration tools/tiers writes (TLS between the servers, each child's leaf
    mapped by its certificate to an account of its own that may send only its own subtree
    up): the community's status reaches the street; a publish on its sibling's subject,
    made with the community's own credentials on its own server, never reaches the street
    (dropped by the street's server: no child appears, nothing even to refuse). Then the
    community is decommissioned at the street (nothing more taken, its data kept, across a
    restart) and its credential revoked (tools/tiers revoke: the street's server reloaded
    refuses its leaf link)."""
    tiers_dir = tempfile.mkdtemp(prefix="linli-tiers-")
    base = 20000 + (os.getpid() % 400) * 100
    r = subprocess.run([os.path.join(SRC, "tools", "tiers"), "init", tiers_dir, "--node",
                        f"{STREET}:street", "--node", f"{YUELAN}:community", "--base-port",
                        str(base), "--status-ms", "300"], capture_output=True, text=True)
    eq(r.returncode, 0, r.stderr)
    sdir, cdir = (os.path.join(tiers_dir, p.replace("/", "-")) for p in (STREET, YUELAN))
    hub = server("street", conf=os.path.join(sdir, "nats.conf"), port=base)
    leaf = server("yuelan", conf=os.path.join(cdir, "nats.conf"), port=base + 10)
    fed = {d: open(os.path.join(d, "federation.cfg")).read() for d in (sdir, cdir)}
    street = Daemon(node=STREET, level="street", name="滨湖街道", extra=CATALOG + fed[sdir])
    comm = Daemon(node=YUELAN, level="community", name="悦澜社区", extra=CATALOG + fed[cdir])
    with running([hub, leaf], [comm, street], tiers_dir):
        street.start()
        comm.start()
        c = wait_for(lambda: child_of(street, YUELAN), "the community's status over TLS",
                     timeout=20)
        eq((c["level"], c["stale"]), ("community", False), c)
        pw = fed[cdir].split("linlid:")[1].split("@")[0]
        cs = comm.ok("federation", "status")
        check("@" not in cs["url"] and pw not in cs["url"], f"no credential shown: {cs}")
        check(pw not in comm.logtext(), "no credential in the log")
        # The community's own credentials, its own server, its sibling's subject.
        seq0 = child_of(street, YUELAN)["seq"]
        leaf.publish(f"linli.up.{STREET.replace('/', '.')}.qiming.status",
                     mp_map({"node": STREET + "/qiming", "level": "community", "seq": 1}),
                     user="linlid", password=pw)
        wait_for(lambda: child_of(street, YUELAN)["seq"] >= seq0 + 3,
                 "three more of the community's own statuses after it")
        st = street.ok("federation", "status")
        eq(([k["node"] for k in st["children"]], st["refused"]), ([YUELAN], 0),
           "the forged one never reached the street")

        # Decommissioned: the street takes nothing more from it (its data kept) ...
        grids(comm, 1, tag="before")
        wait_for(lambda: "g0000" in held(street), "a record before")
        r = street.ok("federation", "decommission", YUELAN)
        eq(r["decommissioned"], True, r)
        rc, _, err = street.cli("federation", "decommission", STREET + "/a/b")
        check(rc != 0 and "a direct child of " + STREET in err, err)
        grids(comm, 1, start=1, tag="after")
        wait_for(lambda: street.ok("federation", "status")["refused"] > 0, "refused now")
        street.wait_log(f"node '{YUELAN}' is decommissioned here (its data kept)")
        eq(sorted(held(street)), ["g0000"], "kept, nothing new")
        eq(child_of(street, YUELAN)["decommissioned"], True, "shown")
        eq(street.stop(), 0, "street stop")
        street.start()
        eq(child_of(street, YUELAN)["decommissioned"], True, "across a restart")
        # ... and its credential is revoked: its server's leaf link is refused at the street.
        r = subprocess.run([os.path.join(SRC, "tools", "tiers"), "revoke", tiers_dir, YUELAN],
                           capture_output=True, text=True)
        eq(r.returncode, 0, r.stderr)
        check("its server reloaded" in r.stdout, r.stdout)
        # nats-server 2.9 keeps a live leaf link across a reload: the next connection is the
        # one refused (here: the street's server restarted).
        hub.stop()
        hub.start()
        seq1 = child_of(street, YUELAN)["seq"]
        wait_for(lambda: "no JetStream answers" in comm.ok("federation", "status")["last_error"],
                 "the community's link refused", timeout=20)
        time.sleep(2)  # several status periods, the leaf retrying every second
        cs = comm.ok("federation", "status")
        check(cs["connected"] and "no JetStream answers" in cs["last_error"], cs)
        eq(child_of(street, YUELAN)["seq"], seq1, "no status after the revocation")


CATALOG = f'catalog_dir = "{os.path.join(SRC, "catalog")}";\n'


def grids(d, n, start=0, tag="v1", scope=YUELAN):
    """n grid records g{start}.. at scope, in one batch (data put --stdin with an array)."""
    recs = [{"code": f"g{i:04d}", "name": f"{tag}-{i}", "households": i}
            for i in range(start, start + n)]
    d.ok("data", "put", "grids", "--scope", scope, "--stdin", "--id-field", "code",
         input=json.dumps(recs))


def held(d, scope=YUELAN):
    """grid code -> name, as a node holds them under scope."""
    out, cursor = {}, None
    while True:
        r = d.ok("data", "query", "grids", "--scope", scope, "--limit", "1000",
                 *(["--cursor", cursor] if cursor else []))
        out.update({x["code"]: x["name"] for x in r["records"]})
        cursor = r.get("cursor")
        if not cursor:
            return out


def up(d):
    return d.ok("federation", "status")["up"]


def case_changes_go_up_once_and_in_order_through_cuts_and_restarts():
    """The community's changes to datasets that go up (grids here) reach the street and are
    stored there under the community's scope: every change once, the last one winning; the
    community's change log is released once the street has applied it. A cut while the
    community keeps writing, the community restarted while cut, the street killed (-9) while
    it applies: when all is back, the street holds exactly what the community holds, its
    duplicates and gaps counted, nothing lost."""
    leaf_port = free_port()
    hub = server("street", "street", leaf_listen=leaf_port)
    leaf = server("yuelan", "yuelan", leaf_remote=leaf_port)
    street = Daemon(node=STREET, level="street", name="滨湖街道", extra=CATALOG + fed_cfg(hub.port))
    comm = Daemon(node=YUELAN, level="community", name="悦澜社区",
                  extra=CATALOG + fed_cfg(leaf.port, "street"))
    with running([hub, leaf], [comm, street]):
        street.start()
        comm.start()
        grids(comm, 200)
        eq(up(comm)["last"], 200, "one change log entry per record")
        wait_for(lambda: len(held(street)) == 200, "200 grids at the street", timeout=20)
        eq(held(street), held(comm), "the same records")
        wait_for(lambda: up(comm)["unsent"] == 0 and up(comm)["parent_applied"] == 200,
                 "the change log released once applied")
        kid = child_of(street, YUELAN)
        eq((kid["applied"], kid["changes"], kid["gaps"], kid["quarantined"]),
           (200, 200, 0, 0), kid)
        # A node without a parent keeps no change log.
        eq((up(street)["kept"], up(street)["last"]), (False, 0), up(street))

        # Cut: the community's server is gone; it keeps writing (updates, new, deletes).
        leaf.stop()
        wait_for(lambda: not comm.ok("federation", "status")["connected"], "cut")
        grids(comm, 150, start=100, tag="v2")  # 100 updated, 50 new
        for i in range(0, 20):
            comm.ok("data", "del", "grids", f"g{i:04d}", "--scope", YUELAN)
        u = up(comm)
        eq((u["last"], u["unsent"]), (370, 170), u)
        check(u["oldest_unsent_age_s"] >= 0 and u["bytes"] > 0, u)
        # Restarted while cut: the change log is in the store.
        eq(comm.stop(), 0, "community stop")
        comm.start()
        eq((up(comm)["last"], up(comm)["unsent"]), (370, 170), "kept across the restart")
        grids(comm, 10, start=300, tag="v3")
        leaf.start()
        wait_for(lambda: held(street) == held(comm), "the street caught up after the cut",
                 timeout=30)
        eq(len(held(street)), 240, "200 + 50 new + 10 new - 20 deleted")
        eq(held(street)["g0150"], "v2-150", "the last change wins")
        wait_for(lambda: up(comm)["unsent"] == 0, "released")

        # The street killed while it applies a burst: everything arrives once after it is back.
        last = up(comm)["last"]
        for b in range(2):  # 10,000 changes in two commits: the street takes seconds to
            grids(comm, 5000, start=10000 + 5000 * b, tag="v4")  # apply them, 512 a message
        # the street's word as the community hears it: it has committed part of the burst
        seen = wait_for(lambda: (lambda a: a if a > last else 0)(up(comm)["parent_applied"]),
                        "the burst started", timeout=20)
        street.proc.kill()
        street.proc.wait()
        check(seen < last + 10000, f"killed while it applied ({seen - last} of 10000 seen)")
        grids(comm, 100, start=2000, tag="v5")
        street.start()
        wait_for(lambda: held(street) == held(comm), "the street caught up after kill -9",
                 timeout=40)
        kid = child_of(street, YUELAN)
        eq((kid["applied"], kid["gaps"], kid["lost"], kid["quarantined"]),
           (up(comm)["last"], kid["gaps"], 0, 0), kid)
        wait_for(lambda: up(comm)["unsent"] == 0, "released after the kill")

        # The community's store replaced (a new disk, an older backup): its numbering starts
        # again below what the street applied; the street's word moves it past, nothing new
        # is taken for a repeat.
        eq(comm.stop(), 0, "community stop")
        shutil.rmtree(comm.data)
        os.makedirs(comm.data)
        comm.bootstrapped = False
        comm.start()
        grids(comm, 2, start=7000, tag="new")
        wait_for(lambda: {"g7000", "g7001"} <= set(held(street)), "the new store's changes",
                 timeout=20)
        # (its two changes renumbered, or none when the street's word came first)
        comm.wait_log("more than this store numbered (")
        comm.wait_log(": replaced or restored): its ")


def case_a_change_that_cannot_be_applied_is_quarantined_and_the_rest_flows():
    """The street's catalog wants a field the community's grids lack (a schema mismatch):
    those changes are quarantined at the street with the store's reason, the community's
    other changes flow past them; `federation quarantine` lists them, drop removes one,
    retry applies one once the street's catalog takes it (and refuses while it does not)."""
    tmp = tempfile.mkdtemp(prefix="linli-fedq-")
    cat = os.path.join(tmp, "catalog")
    shutil.copytree(os.path.join(SRC, "catalog"), cat)
    gpath = os.path.join(cat, "datasets", "grids.cfg")
    orig = open(gpath).read()
    strict = orig.replace('{ name = "population"; type = "integer"; min = 0; }',
                          '{ name = "population"; type = "integer"; min = 0; required = true; }')
    check(strict != orig, "the street's grids want a population")
    write(gpath, strict)
    leaf_port = free_port()
    hub = server("street", "street", leaf_listen=leaf_port)
    leaf = server("yuelan", "yuelan", leaf_remote=leaf_port)
    street = Daemon(node=STREET, level="street", name="滨湖街道",
                    extra=f'catalog_dir = "{cat}";\n' + fed_cfg(hub.port))
    comm = Daemon(node=YUELAN, level="community", name="悦澜社区",
                  extra=CATALOG + fed_cfg(leaf.port, "street"))
    with running([hub, leaf], [comm, street], tmp):
        street.start()
        comm.start()
        grids(comm, 3)  # no population: refused by the street's schema
        comm.ok("data", "put", "grids", "--scope", YUELAN, "--id", "g9000",
                json.dumps({"code": "g9000", "name": "ok", "population": 5}))
        wait_for(lambda: "g9000" in held(street), "the good one past the bad ones", timeout=20)
        eq(sorted(held(street)), ["g9000"], "only the good one applied")
        kid = child_of(street, YUELAN)
        eq((kid["applied"], kid["quarantined"]), (4, 3), kid)
        # The versions exchanged with the status: the street says which schema differs.
        kid = wait_for(lambda: (lambda k: k if k and k["schema_differs"] else None)(
            child_of(street, YUELAN)), "the differing schema named")
        eq(kid["schema_differs"], "grids", kid)
        street.wait_log("hefei/baohe/binhu/yuelan's catalog differs from this node's for grids")
        q = street.ok("federation", "quarantine")
        eq(q["count"], 3, q)
        e = q["quarantined"][0]
        eq((e["from"], e["dataset"], e["scope"], e["record"]), (YUELAN, "grids", YUELAN, "g0000"),
           e)
        check("cannot be applied here" in e["reason"] and "population" in e["reason"], e)
        ids = [x["id"] for x in q["quarantined"]]
        rc, _, err = street.cli("federation", "quarantine", "retry", str(ids[0]))
        check(rc != 0 and "still cannot be applied; it stays" in err, err)
        eq(street.ok("federation", "quarantine")["count"], 3, "still three")
        street.ok("federation", "quarantine", "drop", str(ids[1]))
        rc, _, err = street.cli("federation", "quarantine", "drop", "x1")
        check(rc != 0 and "usage: federation quarantine" in err, err)
        rc, _, err = street.cli("federation", "quarantine", "drop", str(ids[1]))
        check(rc != 0 and f"no quarantined change {ids[1]}" in err, err)
        # The street's catalog takes them now: a retry applies one.
        eq(street.stop(), 0, "street stop")
        write(gpath, orig)
        street.start()
        street.ok("federation", "quarantine", "retry", str(ids[0]))
        wait_for(lambda: (lambda k: k and k["seen_at"] and not k["schema_differs"])(
            child_of(street, YUELAN)), "the catalogs agree again")
        eq(sorted(held(street)), ["g0000", "g9000"], "the retried one applied")
        eq([x["id"] for x in street.ok("federation", "quarantine")["quarantined"]], [ids[2]],
           "one left")
        audit = street.ok("audit", "--limit", "100")
        audit = audit if isinstance(audit, list) else audit.get("entries", [])
        check([a for a in audit if a.get("action") == "federation.drop"], f"audited: {audit}")


def case_a_full_change_log_raises_an_alarm_before_it_drops_and_counts_the_drop():
    """A community cut from its street keeps its changes; at half its
    federation.outbox_max the alarms plugin holds a federation_backlog alarm; beyond it the
    oldest are dropped, counted and shown — never silently. When the link heals, what was
    kept goes up (the street names the dropped ones lost instead of waiting for them) and the
    alarm is cleared."""
    leaf_port = free_port()
    hub = server("street", "street", leaf_listen=leaf_port)
    leaf = server("yuelan", "yuelan", leaf_remote=leaf_port)
    street = Daemon(node=STREET, level="street", name="滨湖街道", extra=CATALOG + fed_cfg(hub.port))
    d = Daemon(node=YUELAN, level="community", name="悦澜社区")
    pdir = os.path.join(d.dir, "plugins")
    os.makedirs(pdir)
    shutil.copyfile(os.path.join(BUILD, "plugins", "alarms", "alarms.so"),
                    os.path.join(pdir, "alarms.so"))
    d.write_config(node=YUELAN, level="community", name="悦澜社区",
                   extra=CATALOG + f'plugin_dirs = [ "{pdir}" ];\n' +
                   fed_cfg(leaf.port, "street").replace("};", "outbox_max = 20; };"))
    d.grant_declared(pdir)
    with running([hub, leaf], [d, street]):
        street.start()
        leaf.stop()
        d.start()
        grids(d, 9)
        eq((up(d)["unsent"], up(d)["backlog_alarm"]), (9, False), up(d))
        grids(d, 2, start=9)
        wait_for(lambda: up(d)["backlog_alarm"], "the backlog alarm at half")

        def alarm(active=True):
            rows = d.ok("data", "query", "alarms", "--limit", "50")["records"]
            return [a for a in rows if a.get("type") == "federation_backlog" and
                    a.get("active") == active]
        a = wait_for(alarm, "the alarm held by the alarms plugin")[0]
        check(a["severity"] == "major" and "11 unsent changes" in a.get("details", ""), a)
        grids(d, 15, start=100)
        u = up(d)
        # 26 grids, and the alarm itself with its history (alarms go up too)
        eq((u["unsent"], u["dropped"], u["last"]), (20, u["last"] - 20, 28), u)
        dropped = u["dropped"]
        d.wait_log(f"unsent changes dropped (up to {dropped}): federation.outbox_max (20) "
                   f"reached; {dropped} dropped in all")
        # Healed: the twenty kept go up, the dropped ones are named lost at the street.
        leaf.start()
        wait_for(lambda: up(d)["unsent"] == 0 and not up(d)["backlog_alarm"],
                 "the kept ones sent and the alarm cleared", timeout=30)
        kid = child_of(street, YUELAN)
        check(kid["lost"] == dropped and kid["last_gap"].startswith(f"1..{dropped} lost"), kid)
        eq(held(street), {k: v for k, v in held(d).items() if k in held(street)}, "same")
        check("g0114" in held(street) and "g0000" not in held(street), held(street))
        wait_for(lambda: alarm(active=False), "the alarm cleared at the community")


def case_four_tiers_the_city_sees_both_communities_its_rule_runs_below_a_forged_scope_is_refused():
    """Five nodes as tools/tiers makes them (city, district, street, two communities; TLS
    between the servers, one account per node): each community's alarm and grids reach the
    city hop by hop, the last change of a record winning there; the city sees both
    communities, the street too, a community never its sibling's. A rule pushed at the city
    is installed on every node below (kept across a restart, taken once), each node's word
    seen at the city and none pending; a rule that does not load is refused at the push.
    A community that sends
    (with its own credentials, on its own subject) a change scoped to its sibling is refused
    at the street: quarantined, counted, audited, never stored."""
    city, dist, qiming = "hefei", "hefei/baohe", STREET + "/qiming"
    tree = [(city, "city"), (dist, "district"), (STREET, "street"), (YUELAN, "community"),
            (qiming, "community")]
    tiers_dir = tempfile.mkdtemp(prefix="linli-tiers5-")
    base = 30000 + (os.getpid() % 500) * 60
    r = subprocess.run([os.path.join(SRC, "tools", "tiers"), "init", tiers_dir,
                        *sum((["--node", f"{p}:{lv}"] for p, lv in tree), []),
                        "--base-port", str(base), "--status-ms", "300"],
                       capture_output=True, text=True)
    eq(r.returncode, 0, r.stderr)
    dirs = {p: os.path.join(tiers_dir, p.replace("/", "-")) for p, _ in tree}
    servers = [server(p.rsplit("/", 1)[-1], conf=os.path.join(dirs[p], "nats.conf"),
                      port=base + 10 * i) for i, (p, _) in enumerate(tree)]
    fed = {p: open(os.path.join(dirs[p], "federation.cfg")).read() for p, _ in tree}
    pdir = os.path.join(tiers_dir, "yuelan-plugins")  # yuelan runs the grid plugin
    os.makedirs(pdir)
    shutil.copyfile(os.path.join(BUILD, "plugins", "grid", "grid.so"),
                    os.path.join(pdir, "grid.so"))
    ds = {p: Daemon(node=p, level=lv, name=p, extra=CATALOG + fed[p] +
                    f'script_dirs = [ "{dirs[p]}/scripts" ];\n' +
                    (f'plugin_dirs = [ "{pdir}" ];\n' if p == YUELAN else ""))
          for p, lv in tree}
    ds[YUELAN].grant_declared(pdir)
    with running(servers, list(ds.values()), tiers_dir):
        for d in ds.values():
            d.start()
        alarm = {"type": "smoke", "source": "device:sd-1", "severity": "critical",
                 "active": True, "acknowledged": False, "first_at": "2026-12-06T10:00:00Z"}
        ds[YUELAN].ok("data", "put", "alarms", "--scope", YUELAN, "--id", "a-1",
                      json.dumps(alarm))
        for v in range(1, 6):  # one record changed five times: the last one wins
            grids(ds[YUELAN], 1, tag=f"v{v}")
        grids(ds[qiming], 3, start=500, tag="q", scope=qiming)
        ds[YUELAN].ok("data", "put", "alarms", "--scope", YUELAN, "--id", "a-1",
                      json.dumps(dict(alarm, acknowledged=True)))

        def at_city():
            a = ds[city].cli("data", "get", "alarms", "a-1", "--scope", YUELAN)[1]
            return (a or {}).get("acknowledged") and held(ds[city], "hefei") == {
                "g0000": "v5-0", "g0500": "q-500", "g0501": "q-501", "g0502": "q-502"}
        wait_for(at_city, "both communities' records at the city, the last change winning",
                 timeout=30)
        eq(len(held(ds[STREET], STREET)), 4, "the street holds its two communities'")
        eq(held(ds[YUELAN], YUELAN), {"g0000": "v5-0"}, "yuelan holds its own")
        eq(held(ds[qiming], qiming), {"g0500": "q-500", "g0501": "q-501", "g0502": "q-502"},
           "qiming holds its own")
        for a, b in ((YUELAN, qiming), (qiming, YUELAN)):  # and never its sibling's
            rc, _, err = ds[a].cli("data", "query", "grids", "--scope", b)
            check(rc != 0 and "outside its jurisdiction" in err, err)
        eq(ds[YUELAN].ok("federation", "status")["children"], [], "no children below")
        for p in (dist, STREET):  # every hop applied and passed on what came from below
            kids = ds[p].ok("federation", "status")["children"]
            check(all(k["applied"] >= 1 and k["gaps"] == 0 and k["quarantined"] == 0
                      for k in kids if k["applied"]), kids)
        c = ds[city].ok("federation", "status")
        eq([k["node"] for k in c["children"]], [dist], "the city's child is the district")
        for p in (YUELAN, qiming, STREET, dist):
            wait_for(lambda: up(ds[p])["unsent"] == 0, f"{p}'s change log released")

        # A rule pushed at the city runs on every node below; every node's word seen there.
        r = ds[city].ok("federation", "push", "city_smoke.lua", "--stdin", input=CITY_RULE)
        eq(r["rule"], "city_smoke", r)

        def all_said():
            down = ds[city].ok("federation", "status")["down"]
            return down if down and sorted(down[0]["applied"]) == sorted(ds) and \
                not down[0]["pending"] and not down[0]["failed"] else None
        down = wait_for(all_said, "every node's word on the rule at the city", timeout=30)
        eq(down[0]["hash"], r["hash"], down)
        for p in (YUELAN, qiming):
            eq(ds[p].ok("rules", "test", "city_smoke", input='{"level": 5}')["matched"], True,
               f"the city's rule runs at {p}")
            eq(ds[p].ok("federation", "status")["down"][0]["applied"], [p], "its own word")
        st = ds[STREET].ok("federation", "status")["down"][0]
        eq((sorted(st["applied"]), st["pending"]), (sorted([STREET, YUELAN, qiming]), []), st)
        # A community restarted keeps what came down; the rule is not taken twice.
        eq(ds[qiming].stop(), 0, "qiming stop")
        ds[qiming].start()
        eq(ds[qiming].ok("rules", "test", "city_smoke", input='{"level": 5}')["matched"], True,
           "after a restart")
        eq(ds[qiming].logtext().count("rule city_smoke from above installed"), 1, "taken once")
        rc, _, err = ds[city].cli("federation", "push", "bad.lua", "--stdin", input="rule {")
        check(rc != 0 and "bad.lua" in err, err)

        # Datasets that come down: the city's records reach every node below, a record
        # scoped to a subtree only that subtree; a reader below sees the records kept above
        # it (those at that scope itself, never a sibling's); a deletion follows.
        item = {"code": "SI-001", "name": "高龄津贴", "department": "民政"}
        ds[city].ok("data", "put", "service_items", "--scope", city, "--id", "si-1",
                    json.dumps(item))
        ds[city].ok("data", "put", "service_items", "--scope", "hefei/shushan", "--id", "si-x",
                    json.dumps(dict(item, code="SI-X")))
        ds[city].ok("data", "put", "service_items", "--scope", qiming, "--id", "si-q",
                    json.dumps(dict(item, code="SI-Q")))
        ds[city].ok("data", "put", "incident_categories", "--scope", city, "--id", "environment",
                    json.dumps({"name": "暴露垃圾", "file_minutes": 77, "finish_minutes": 120}))
        year = time.localtime().tm_year  # every minute of every day a working one
        ds[city].ok("data", "put", "work_calendar", "--scope", city, "--id", str(year),
                    json.dumps({"year": year, "hours": "00:00-24:00", "weekend": ""}))

        def codes(d, scope):
            rc, r, _ = d.cli("data", "query", "service_items", "--scope", scope)
            return sorted(x["code"] for x in r["records"]) if rc == 0 else None
        wait_for(lambda: codes(ds[YUELAN], city) == ["SI-001"] and
                 codes(ds[qiming], qiming) == ["SI-Q"] and
                 ds[YUELAN].cli("data", "get", "work_calendar", str(year), "--scope", city)[0] == 0,
                 "the city's items, category and calendar at both communities", timeout=30)
        eq(ds[YUELAN].ok("data", "get", "incident_categories", "environment", "--scope",
                         city)["finish_minutes"], 120, "a category from the city")
        eq(ds[YUELAN].ok("data", "get", "work_calendar", str(year), "--scope", city)["year"], year,
           "the calendar")
        eq(codes(ds[YUELAN], YUELAN), [], "nothing of qiming's at yuelan")
        eq(codes(ds[dist], dist), ["SI-Q"], "the district holds what lies within it")
        eq(codes(ds[dist], city), ["SI-001"], "and the city's own, not below it")
        rc, _, err = ds[dist].cli("data", "get", "service_items", "si-x", "--scope",
                                  "hefei/shushan")
        check(rc != 0, f"a sibling district's item never came down: {err}")
        rc, _, err = ds[YUELAN].cli("data", "put", "service_items", "--scope", city, "--id",
                                    "si-2", json.dumps(item))
        check(rc != 0 and "outside" in err, f"read above, never written: {err}")
        for p in (STREET, YUELAN, qiming):
            fp = ds[p].ok("federation", "status")["from_parent"]
            check(fp["applied"] > 0 and fp["quarantined"] == 0 and fp["forged"] == 0, fp)
        ds[city].ok("data", "del", "service_items", "si-1", "--scope", city)
        wait_for(lambda: codes(ds[YUELAN], city) == [], "the deletion at yuelan", timeout=30)
        kids = ds[STREET].ok("federation", "status")["children"]
        wait_for(lambda: all(k["down_behind"] == 0 for k in
                             ds[STREET].ok("federation", "status")["children"]),
                 f"the street's children have its down log: {kids}")
        # A parent that sends down what is not its own: yuelan's scope for qiming, refused.
        fp = ds[YUELAN].ok("federation", "status")["from_parent"]
        spw = fed[STREET].split("linlid:")[1].split("@")[0]
        forged = {"o": STREET, "q": 1, "d": "service_items", "s": qiming, "i": "si-f",
                  "t": 1, "r": None}
        msg = mp_obj({"n": STREET, "a": fp["applied"], "b": fp["applied"] + 1000000,
                      "e": [[fp["applied"] + 1000000, forged]]})
        servers[2].publish(f"linli.down.{YUELAN.replace('/', '.')}.data", msg, user="linlid",
                           password=spw)
        fp = wait_for(lambda: (lambda x: x if x["forged"] else None)(
            ds[YUELAN].ok("federation", "status")["from_parent"]),
            "the forged entry refused at yuelan")
        q = ds[YUELAN].ok("federation", "quarantine")["quarantined"]
        check(len(q) == 1 and q[0]["reason"].startswith(
            f"forged: scope '{qiming}' is neither above nor within this node"), q)
        # its word went past the street's log with it: the street has it take all again
        ds[city].ok("data", "put", "service_items", "--scope", city, "--id", "si-3",
                    json.dumps(dict(item, code="SI-003")))
        wait_for(lambda: codes(ds[YUELAN], city) == ["SI-003"], "a word past the log healed",
                 timeout=30)
        check("taking all of it again" in ds[YUELAN].logtext(), "said so")

        # The city's operator acts on what yuelan owns: the command runs there, as them, and
        # its change comes back up like any other.
        g = {"code": "g0777", "name": "from-the-city", "households": 7}
        r = ds[city].ok("federation", "exec", YUELAN, "data", "put", "grids", "--scope", YUELAN,
                        "--id", "g0777", json.dumps(g))
        eq(r.get("id"), "g0777", f"the answer from yuelan: {r}")
        eq(held(ds[YUELAN], YUELAN).get("g0777"), "from-the-city", "written at yuelan")
        wait_for(lambda: held(ds[city], "hefei").get("g0777") == "from-the-city",
                 "the change back up at the city", timeout=30)
        check("a command from hefei runs here as " in ds[YUELAN].logtext(), "said at yuelan")
        rc, _, err = ds[city].cli("federation", "exec", YUELAN, "data", "put", "grids",
                                  "--scope", qiming, "--id", "g0778", json.dumps(g))
        check(rc != 0 and f"at {YUELAN}" in err and "outside" in err,
              f"gated at yuelan as any command there: {err}")
        # 上级交办: a task handed down by the city's account, the case yuelan's; its deadline
        # from the city's category and calendar, read by yuelan's grid plugin from above.
        r = ds[city].ok("federation", "exec", YUELAN, "grid", "report", YUELAN + "/g01",
                        "environment", "清理楼道堆物", "channel=higher_tier")
        case = ds[YUELAN].ok("data", "get", "incidents", r["id"])
        check(case["handed_down_by"].startswith(f"{city} (") and case["channel"] ==
              "higher_tier", case)
        eq(case["step_deadline"] - case["step_started"], 77 * 60000,
           f"the city's 77 minutes in the city's calendar: {case}")
        # its move at yuelan (the city's operator again, down): the case and its move up, in
        # order — the city holds the case as filed once the move is there
        ds[city].ok("federation", "exec", YUELAN, "grid", "file", r["id"])

        def moved_at_city():
            rc, m, _ = ds[city].cli("data", "query", "incident_moves", "--scope", YUELAN + "/g01",
                                    "--where", f"incident={r['id']}")
            verbs = sorted(x["verb"] for x in m["records"]) if not rc else []
            if "file" not in verbs:
                return None
            c = ds[city].ok("data", "get", "incidents", r["id"], "--scope", YUELAN + "/g01")
            return (c["status"], verbs)
        eq(wait_for(moved_at_city, "the case and its move at the city", timeout=30),
           ("filed", ["file", "report"]), "the moves and the case they moved, at the city")
        rc, _, err = ds[STREET].cli("federation", "exec", "hefei/baohe/other", "status")
        check(rc != 0 and "not a node below" in err, err)
        rc, _, err = ds[YUELAN].cli("federation", "exec", qiming, "status")
        check(rc != 0 and "not a node below" in err, err)

        # Forged: yuelan's own credentials, its own subject, a change scoped to qiming.
        applied = child_of(ds[STREET], YUELAN)["applied"]
        entry = {"o": YUELAN, "q": 999, "d": "grids", "s": qiming, "i": "g0666", "t": 1,
                 "r": None}
        pw = fed[YUELAN].split("linlid:")[1].split("@")[0]
        msg = mp_obj({"n": YUELAN, "a": applied + 1, "b": applied, "e": [entry]})
        servers[3].publish(f"linli.up.{YUELAN.replace('/', '.')}.changes", msg,
                           user="linlid", password=pw)
        kid = wait_for(lambda: (lambda k: k if k["forged"] else None)(
            child_of(ds[STREET], YUELAN)), "the forged change refused at the street")
        eq((kid["forged"], kid["quarantined"]), (1, 1), kid)
        q = ds[STREET].ok("federation", "quarantine")["quarantined"]
        check(len(q) == 1 and q[0]["reason"].startswith(
            f"forged: scope '{qiming}' is outside the sender's subtree {YUELAN}"), q)
        audit = ds[STREET].ok("audit", "--limit", "100")
        audit = audit if isinstance(audit, list) else audit.get("entries", [])
        check([a for a in audit if a.get("action") == "federation.apply" and
               a.get("result") == "denied"], f"audited: {audit}")
        eq(held(ds[STREET], qiming).get("g0666"), None, "never stored")

        # A node speaking another federation protocol is refused, with a clear status.
        old = mp_obj({"node": YUELAN, "level": "community", "name": "old", "version": "0.0.1",
                      "sdk": "1.0", "seq": 1, "proto": 1})
        servers[3].publish(f"linli.up.{YUELAN.replace('/', '.')}.status", old, user="linlid",
                           password=pw)
        ds[STREET].wait_log(f"{YUELAN} refused: it speaks federation protocol 1 (linlid "
                            "0.0.1), this node 2")

        # Grants come down: the city approves grid's capabilities for its whole jurisdiction;
        # yuelan's admin adds to them, never takes from them; the city's revoke stops it there.
        decl = ds[YUELAN].ok("plugins", "grants", "grid")["declared"]
        ds[city].ok("plugins", "grant", "grid", *decl)
        g = wait_for(lambda: (lambda x: x if sorted(x["granted_above"]) == sorted(decl) else None)(
            ds[YUELAN].ok("plugins", "grants", "grid")), "the city's grants at yuelan", timeout=30)
        eq(g["granted_at"], city, g)
        ds[YUELAN].ok("plugins", "revoke", "grid", "--all")  # its own: the city's still cover

        def grid_state():
            return {p["name"]: p for p in ds[YUELAN].ok("plugins", "list")}["grid"]["state"]
        eq(grid_state(), "running", "running on the city's grants")
        rc, _, err = ds[YUELAN].cli("plugins", "revoke", "grid", decl[0])
        check(rc != 0 and f"is granted by the tier above ({city})" in err, err)
        ds[city].ok("plugins", "revoke", "grid", decl[0])
        wait_for(lambda: grid_state() == "refused", "grid stopped by the city's revoke",
                 timeout=30)

        # A read of sensitive fields in clear at yuelan: its audit entry goes up to the city.
        ds[YUELAN].ok("data", "put", "residents", "--scope", YUELAN, json.dumps(
            {"name": "张三", "id_number": "340104199001011234", "phone": "13812345678",
             "gender": "male"}))
        ds[YUELAN].account("reader1", "operator", node=YUELAN, grants=["sensitive:residents"],
                           as_default=True)
        eq(ds[YUELAN].ok("data", "query", "residents")["records"][0]["name"], "张三", "clear")

        def read_at_city():
            log = ds[city].ok("audit", "--action", "data.read", "--scope", YUELAN)
            log = log if isinstance(log, list) else log.get("entries", [])
            return [e for e in log if e.get("who") == "reader1" and e.get("result") == "allowed"]
        wait_for(read_at_city, "the sensitive read's audit entry at the city", timeout=30)
        # The city's deletion of si-1, which every child has by now, left its down log.
        wait_for(lambda: ds[city].ok("federation", "status")["down_log"]["trimmed"] >= 1,
                 "the deletion trimmed at the city", timeout=30)


def case_federation_config_is_checked_and_absent_by_default():
    """A node without a federation group says so; a bad url, domain or TLS file is refused
    at start naming the file and the key, and the store is not touched."""
    d = Daemon(node=YUELAN, level="community", name="悦澜社区")
    etype = None
    try:
        d.start()
        rc, _, err = d.cli("federation", "status")
        check(rc != 0 and "no federation link (no federation group in " + d.cfg in err, err)
        d.stop()
        for extra, want in (
                ('federation = { url = "http://127.0.0.1:4222"; };',
                 "federation.url: 'http://127.0.0.1:4222' is not nats://HOST:PORT"),
                ('federation = { url = "nats://127.0.0.1:4222"; parent_domain = "a.b"; };',
                 "federation.parent_domain: 'a.b' is not a JetStream domain"),
                ('federation = { url = "nats://127.0.0.1:4222"; ca = "/nonexistent/ca.pem"; };',
                 "federation.ca: cannot read '/nonexistent/ca.pem'"),
                ('federation = { status_ms = 50; };',
                 "federation.status_ms: 50 is outside 100..3600000"),
                ('federation = { };', "federation.url: missing")):
            d.write_config(node=YUELAN, level="community", name="悦澜社区", extra=extra + "\n")
            r = subprocess.run([os.environ["LINLID"], "--config", d.cfg, "--check-config"],
                               capture_output=True, text=True, timeout=30)
            check(r.returncode != 0 and want in r.stderr and d.cfg in r.stderr,
                  f"{extra}: {r.stderr}")
    except BaseException as e:
        etype = type(e)
        raise
    finally:
        finish(d, etype)


if __name__ == "__main__":
    sys.exit(main(globals()))
