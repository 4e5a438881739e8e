"""Integration tests of the store and the catalog through a real linlid and the real linli.

Covers the console's data/store/catalog commands, schema errors, scopes, pagination,
backup and restore, damaged data files, a bad catalog, map growth, a full disk (a small
tmpfs, when this runs as root), and the crash test: kill -9 during a storm of
acknowledged writes, then every acknowledged write is there after the restart.
"""
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import LINLI, LINLID, SRC, Daemon, TestFailure, check, eq, main  # noqa: E402

STORM = os.environ.get("STORM", os.path.join(SRC, "build", "tests", "storm"))
CATALOG = os.path.join(SRC, "catalog")
YUELAN = "hefei/baohe/binhu/yuelan"
YUELAN2 = "hefei/baohe/binhu/yuelan2"
STREET = "hefei/baohe/binhu"
RESIDENT = {"name": "张三", "id_number": "340104199001011234", "gender": "male",
            "birth_date": "1990-01-01", "residence_type": "registered"}


def store_daemon(node=YUELAN, level="community", sync=False, map_mb=None, catalog=CATALOG,
                 data=None, extra=""):
    d = Daemon()
    if data:
        d.data = data
    store = f"sync = {'true' if sync else 'false'};" + (
        f" map_size_mb = {map_mb};" if map_mb else "")
    d.write_config(text=(f'node = {{ path = "{node}"; level = "{level}"; }};\n'
                         f'data_dir = "{d.data}";\n'
                         f'log_level = "debug";\n'
                         f'catalog_dir = "{catalog}";\n'
                         f'control = {{ listen = [ "{d.sock}" ]; }};\n'
                         f'store = {{ {store} }};\n' + extra))
    return d


class running:
    def __init__(self, **kw):
        self.d = store_daemon(**kw)

    def __enter__(self):
        try:
            return self.d.start()
        except BaseException:
            self.d.cleanup()  # __exit__ does not run when __enter__ fails
            raise

    def __exit__(self, *exc):
        self.d.cleanup()


def js(v):
    return json.dumps(v, ensure_ascii=False)


def put(d, dataset, rec, *args):
    return d.ok("data", "put", dataset, *args, json.dumps(rec, ensure_ascii=False))


def text_of(d, *args, env=None):
    """`linli ARGS` for people (no --json): its stdout."""
    e = dict(os.environ, LINLI_SESSION=d.session, **(env or {}))
    r = subprocess.run([LINLI, "--socket", d.sock, *args], capture_output=True, text=True,
                       env=e, stdin=subprocess.DEVNULL)
    eq(r.returncode, 0, f"linli {args}: {r.stderr}")
    return r.stdout


def cols(s):
    """Terminal columns s takes (a CJK character two)."""
    import unicodedata
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)


def case_console_output_is_for_people():
    """Without --json: a record as aligned fields (nested ones indented), times in local ISO
    8601 (--utc in UTC), numbers without binary noise, tables aligned by display width with
    CJK text, an empty list said so; --json keeps the raw values."""
    with running() as d:
        put(d, "parking_spaces", {"code": "P-1", "lot": "悦澜东区地下停车场", "kind": "public",
                                  "occupied": True, "occupied_since": 1767225600000,
                                  "fee_per_hour": 0.1,
                                  "location": {"lat": 31.7, "lon": 117.3}}, "--id", "p1")
        put(d, "parking_spaces", {"code": "P-22", "lot": "East lot", "kind": "private",
                                  "fee_per_hour": 2.5}, "--id", "p2")
        out = text_of(d, "data", "get", "parking_spaces", "p1", env={"TZ": "Asia/Shanghai"})
        lines = out.splitlines()
        check("occupied_since  2026-01-01T08:00:00+08:00" in out, out)
        check(any(ln.split() == ["fee_per_hour", "0.1"] for ln in lines), out)
        i = lines.index("location")
        eq([lines[i + 1].split(), lines[i + 2].split()], [["lat", "31.7"], ["lon", "117.3"]],
           "a nested record, indented")
        check(lines[i + 1].startswith("  lat"), out)
        # Field values start in one column.
        starts = {len(ln) - len(ln.split(None, 1)[1]) for ln in lines
                  if not ln.startswith(" ") and len(ln.split(None, 1)) == 2}
        eq(len(starts), 1, f"aligned fields: {out}")
        out = text_of(d, "--utc", "data", "get", "parking_spaces", "p1")
        check("occupied_since  2026-01-01T00:00:00Z" in out, out)
        raw = d.ok("data", "get", "parking_spaces", "p1")
        eq((raw["occupied_since"], raw["fee_per_hour"]), (1767225600000, 0.1), "--json is raw")
        # A table: the column after `lot` starts at one display column in every row.
        out = text_of(d, "data", "query", "parking_spaces")
        rows = [ln for ln in out.splitlines() if "P-1" in ln or "P-22" in ln]
        eq(len(rows), 2, out)
        at = set()
        for ln, lot in zip(rows, ("悦澜东区地下停车场", "East lot")):
            check(lot in ln, ln)
            after = ln.index(lot) + len(lot)
            at.add(cols(ln[:after]) + (len(ln[after:]) - len(ln[after:].lstrip(" "))))
        eq(len(at), 1, f"columns aligned by display width: {out}")
        check("2.5" in out and "2.50000" not in out, out)
        empty = text_of(d, "data", "query", "parking_spaces", "--where", "kind=ev")
        check(empty.splitlines()[0].split() == ["records", "(none)"], f"an empty list: {empty!r}")


def case_shell_completes_words_and_live_values():
    """The interactive shell (on a pty, as a person types): tab completes the first word
    from linlid's commands, the second from that command's words, then live values (here
    dataset names), without duplicates."""
    import pty
    import select
    with running() as d:
        pid, fd = pty.fork()
        if pid == 0:  # the child: linli's shell on the pty
            os.execve(LINLI, [LINLI, "--socket", d.sock],
                      dict(os.environ, LINLI_SESSION=d.session, TERM="dumb"))
        seen = b""

        def typed(keys, want, timeout=10):
            nonlocal seen
            os.write(fd, keys)
            end = time.time() + timeout
            while want not in seen and time.time() < end:
                r, _, _ = select.select([fd], [], [], 0.2)
                if r:
                    try:
                        seen += os.read(fd, 4096)
                    except OSError:
                        break
            check(want in seen, f"after {keys!r}: {want!r} not in {seen[-400:]!r}")
        try:
            typed(b"", b"linli> ")
            typed(b"dat\t", b"data ")
            typed(b"qu\t", b"data query ")
            typed(b"parking_sp\t", b"data query parking_spaces ")  # parking_s: two datasets
            typed(b"\x15plugins l\t", b"plugins list ")  # ^U: a new line of words
            typed(b"\x15help accounts pa\t", b"help accounts passwd ")
            typed(b"\x15quit\n", b"quit")
            _, status = os.waitpid(pid, 0)
            eq(os.waitstatus_to_exitcode(status), 0, "the shell ends with quit")
        finally:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            os.close(fd)


def refused(d, *args, input=None):
    """Run a command that must fail; return its JSON error."""
    rc, out, err = d.cli(*args, input=input)
    eq(rc, 1, f"exit code of linli {' '.join(args)}")
    check(isinstance(out, dict) and out.get("ok") is False, f"not an error reply: {out}")
    check(out["error"] in err, f"stderr does not carry the error: {err}")
    return out


def all_ids(d, dataset, *args, limit=100):
    """Page through a query; return the ids in order and the number of pages."""
    ids, cursor, pages = [], None, 0
    while True:
        extra = ["--cursor", cursor] if cursor else []
        page = d.ok("data", "query", dataset, "--limit", str(limit), *args, *extra)
        pages += 1
        eq(page["count"], len(page["records"]), "count")
        check(len(page["records"]) <= limit, "page larger than its limit")
        ids += [r["id"] for r in page["records"]]
        cursor = page["cursor"]
        if not cursor:
            return ids, pages


def run_storm(d, log, *args):
    r = subprocess.run([STORM, d.sock, log, *args], capture_output=True, text=True, timeout=120)
    eq(r.returncode, 0, f"storm: {r.stderr}")
    return r.stdout


def read_ids(log):
    with open(log) as f:
        return [line.strip() for line in f if line.strip()]


# ---- the data commands ----

def case_put_get_del():
    with running() as d:
        # Reads of sensitive fields in clear need the grant (masking is tested in test_tiers).
        d.account("reader", "admin", grants=["sensitive"], as_default=True)
        r = d.ok("data", "put", "residents", "--stdin", input=json.dumps(RESIDENT))
        # A store-made id: time and sequence (hex), then the node's id.
        check(r["created"] and r["scope"] == YUELAN and
              re.fullmatch(r"[0-9a-f]{16}-[0-9a-f]{10}", r["id"]), r)
        rid = r["id"]
        got = d.ok("data", "get", "residents", rid)
        eq(got["id"], rid, "id")
        eq(got["scope"], YUELAN, "scope")
        eq(got["name"], "张三", "name")
        eq(got["birth_date"], 631152000000, "time normalised to ms")
        # A record given as a trailing argument, with an id of our own; then replaced.
        h = put(d, "houses", {"address": "悦澜路1号", "building": "1", "room": "101",
                              "location": {"lat": 31.8, "lon": 117.2}}, "--id", "h-101")
        check(h["created"] and h["id"] == "h-101", h)
        h = put(d, "houses", {"address": "悦澜路1号", "building": "2", "room": "101"},
                "--id", "h-101")
        check(not h["created"], h)
        eq(d.ok("data", "get", "houses", "h-101")["building"], "2", "replaced")
        check("location" not in d.ok("data", "get", "houses", "h-101"), "old field kept")
        eq(d.ok("data", "del", "houses", "h-101"), {"id": "h-101", "deleted": True}, "del")
        e = refused(d, "data", "get", "houses", "h-101")
        eq(e["name"], "LINLI_ENOENT", "code")
        check("houses: no record 'h-101'" in e["error"], e["error"])
        e = refused(d, "data", "del", "houses", "h-101")
        eq(e["name"], "LINLI_ENOENT", "code")
        # Usage errors.
        check("no record" in refused(d, "data", "put", "houses")["error"], "no input")
        check("unknown option '--scoop'" in
              refused(d, "data", "get", "houses", "x", "--scoop", YUELAN)["error"], "option")
        check("not JSON" in refused(d, "data", "put", "houses", "{oops")["error"], "bad JSON")
        check("no dataset 'nope'" in refused(d, "data", "put", "nope", "{}")["error"], "dataset")


def case_put_many_in_one_commit_or_none():
    """`data put DATASET --stdin` with a JSON array: every record checked before any is
    written (a refused one is named by its place, and nothing is stored); the ids from
    --id-field or made by the store; one acknowledgement after the commit."""
    with running() as d:
        houses = [{"address": "悦澜路1号", "building": "1", "room": str(100 + i)}
                  for i in range(1, 6)]
        r = d.ok("data", "put", "houses", "--stdin", "--id-field", "room",
                 input=json.dumps(houses, ensure_ascii=False))
        eq((r["ids"], r["count"], r["created"], r["scope"]),
           (["101", "102", "103", "104", "105"], 5, 5, YUELAN), r)
        eq(d.ok("data", "get", "houses", "103")["room"], "103", "stored under its field")
        r = d.ok("data", "put", "houses", "--stdin", input=json.dumps(houses[:2]))
        check(r["count"] == 2 and all(re.fullmatch(r"[0-9a-f]{16}-[0-9a-f]{10}", i)
                                      for i in r["ids"]), r)
        # Refused, and nothing of the batch stored: each kind named where it is.
        bad = houses[:3] + [dict(houses[0], floor=201)]
        for inp, args, want in (
                (json.dumps(bad), [], "element 4: houses: field 'floor': 201 is above max 200 "
                                      "(nothing written)"),
                (json.dumps(houses[:1] + [7]), [], "houses: element 2 is not a record"),
                (json.dumps([{"address": "a", "building": "1"}]), ["--id-field", "room"],
                 "houses: element 1 has no string field 'room' for its id"),
                ("[{", [], "houses: the records are not JSON: line 1 column 2"),
                (json.dumps(houses), ["--id", "x"], "--id names one record; for an array use "
                                                   "--id-field FIELD"),
                (json.dumps(houses[0]), ["--id-field", "room"],
                 "--id-field goes with a JSON array of records")):
            e = refused(d, "data", "put", "houses", "--stdin", *args, input=inp)
            check(want in e["error"], f"{e['error']!r} lacks {want!r}")
        eq(d.ok("data", "query", "houses")["count"], 7, "only the two accepted batches")


def case_schema_violations_refused():
    with running() as d:
        cases = [
            ({"name": "x"}, "residents: field 'id_number': required"),
            (dict(RESIDENT, gender="x"), "residents: field 'gender': 'x' is not one of male, female"),
            (dict(RESIDENT, age=3), "residents: field 'age': not in the schema of residents"),
            (dict(RESIDENT, name="x" * 65), "residents: field 'name': 65 bytes, longer than max_len 64"),
            (dict(RESIDENT, birth_date="yesterday"), "residents: field 'birth_date': 'yesterday' is not an RFC 3339 time"),
            (dict(RESIDENT, house="a/b"), "residents: field 'house': 'a/b' is not a record id of houses"),
            (dict(RESIDENT, id="x"), "residents: field 'id': not a field"),
        ]
        for rec, want in cases:
            e = refused(d, "data", "put", "residents", json.dumps(rec, ensure_ascii=False))
            eq(e["name"], "LINLI_ESCHEMA", f"code for {rec}")
            check(want in e["error"], f"{e['error']!r} lacks {want!r}")
        e = refused(d, "data", "put", "houses", json.dumps(
            {"address": "a", "building": "1", "room": "1", "floor": 201}))
        check("houses: field 'floor': 201 is above max 200" in e["error"], e["error"])
        e = refused(d, "data", "put", "houses", json.dumps(
            {"address": "a", "building": "1", "room": "1", "location": {"lat": 99, "lon": 1}}))
        check("houses: field 'location': lat 99 is outside -90..90" in e["error"], e["error"])
        e = refused(d, "data", "put", "incidents", json.dumps({"title": "t"}))
        check("incidents records live at the grid level" in e["error"], e["error"])
        # Nothing of it was stored.
        eq(d.ok("data", "query", "residents")["count"], 0, "residents stored")
        eq(user_datasets(d.ok("store", "stats")), {}, "no records of any catalog dataset")


def case_scopes_never_cross():
    with running(node=STREET, level="street") as d:
        for scope in (YUELAN, YUELAN + "/g01", YUELAN2, STREET + "/yue"):
            put(d, "residents", dict(RESIDENT, name=scope), "--scope", scope)
        # A street sees its whole subtree.
        eq(len(d.ok("data", "query", "residents")["records"]), 4, "street query")
        got = d.ok("data", "query", "residents", "--scope", YUELAN)["records"]
        eq(sorted(r["scope"] for r in got), [YUELAN, YUELAN + "/g01"], "yuelan query")
        got = d.ok("data", "query", "residents", "--scope", YUELAN2)["records"]
        eq([r["scope"] for r in got], [YUELAN2], "yuelan2 query")
        got = d.ok("data", "query", "residents", "--scope", YUELAN,
                   "--where", "residence_type=registered")["records"]
        eq(len(got), 2, "filtered yuelan query")
        rid = got[0]["id"]
        eq(refused(d, "data", "get", "residents", rid, "--scope", YUELAN2)["name"],
           "LINLI_ENOENT", "get across siblings")
    with running() as d:  # a community node: its siblings are out of reach
        e = refused(d, "data", "put", "residents", "--scope", YUELAN2, json.dumps(RESIDENT))
        eq(e["name"], "LINLI_EPERM", "code")
        check(f"of {YUELAN} may not act on {YUELAN2}: outside its jurisdiction" in e["error"],
              e["error"])
        eq(refused(d, "data", "query", "residents", "--scope", STREET)["name"], "LINLI_EPERM",
           "query above the node")
        check("bad --scope" in refused(d, "data", "query", "residents", "--scope", "A//b")["error"],
              "bad scope")


def as_(d, token, *args, input=None):
    """Run `linli --json ARGS` with another account's session; (exit code, JSON, stderr)."""
    return d.cli(*args, input=input, env={"LINLI_SESSION": token})


def case_same_id_at_a_sibling_tells_nothing():
    """Issue 12, defect 5: siblings with a shared prefix hold the same id; a community
    admin's writes and lookups answer alike whatever the sibling holds, and never name it."""
    with running(node="hefei", level="city") as d:
        for rid in ("r2", "r3"):
            put(d, "residents", dict(RESIDENT, residence_type="floating"), "--scope", YUELAN2,
                "--id", rid)
        cadmin = d.account("cadmin", "admin", node=YUELAN)
        answers = []

        def run(want_rc, *args):
            rc, out, err = as_(d, cadmin, *args)
            answers.append(f"{out} {err}")
            eq(rc, want_rc, f"exit code of {args}: {out} {err}")
            return out

        # Writing r2 in its own community: created, as if the sibling held nothing.
        r = run(0, "data", "put", "residents", "--scope", YUELAN, "--id", "r2", js(RESIDENT))
        eq((r["id"], r["scope"], r["created"]), ("r2", YUELAN, True), "created at yuelan")
        r = run(0, "data", "put", "residents", "--id", "r2",
                js(dict(RESIDENT, residence_type="overseas")))
        eq((r["scope"], r["created"]), (YUELAN, False), "replaced: its own scope by default")
        eq(run(0, "data", "get", "residents", "r2")["residence_type"], "overseas", "by id")
        eq(run(0, "data", "get", "residents", "r2", "--scope", YUELAN)["scope"], YUELAN,
           "at its address")
        # Not found reads the same whether the sibling holds the id (r3) or nobody does (r9).
        for cmd in ("get", "del"):
            for extra in ((), ("--scope", YUELAN)):
                e3 = run(1, "data", cmd, "residents", "r3", *extra)
                e9 = run(1, "data", cmd, "residents", "r9", *extra)
                eq((e3["name"], e3["error"].replace("'r3'", "'ID'")),
                   (e9["name"], e9["error"].replace("'r9'", "'ID'")),
                   f"{cmd} {extra}: r3 and r9 alike")
                eq(e3["name"], "LINLI_ENOENT", "not found")
        # Several records in its own subtree: the scope is asked for, naming only its own.
        d.ok("data", "put", "residents", "--scope", YUELAN + "/g01", "--id", "r2", js(RESIDENT))
        want = (f"residents: 2 records have id 'r2' in scope {YUELAN} (at {YUELAN}, "
                f"{YUELAN}/g01); give the scope of the one you mean with --scope PATH")
        for cmd in ("get", "del"):
            e = run(1, "data", cmd, "residents", "r2")
            eq((e["name"], e["error"]), ("LINLI_EINVAL", want), f"{cmd} of an ambiguous id")
        run(0, "data", "del", "residents", "r2", "--scope", YUELAN + "/g01")
        run(0, "data", "del", "residents", "r2")
        eq(run(1, "data", "get", "residents", "r2")["name"], "LINLI_ENOENT", "both gone")
        # The sibling's records are untouched, and no answer ever named the sibling.
        for rid in ("r2", "r3"):
            eq(d.ok("data", "get", "residents", rid, "--scope", YUELAN2)["residence_type"],
               "floating", f"yuelan2's {rid}")
        for a in answers:
            check("yuelan2" not in a, f"an answer names the sibling: {a}")


def case_filter_on_a_sensitive_field_needs_the_grant():
    """Issue 12, defect 4: a viewer who sees 340***********1234 must not be able to guess
    the hidden digits by counting the hits of a filter."""
    with running(node="hefei", level="city") as d:
        put(d, "residents", RESIDENT, "--scope", YUELAN)
        put(d, "residents", dict(RESIDENT, id_number="340104199001015678"), "--scope", YUELAN)
        viewer = d.account("viewer1", "viewer", node=YUELAN)
        reader = d.account("reader1", "viewer", node=YUELAN, grants=["sensitive:residents"])
        rc, out, _ = as_(d, viewer, "data", "query", "residents")
        eq(sorted(r["id_number"] for r in out["records"]),
           ["340***********1234", "340***********5678"], "the viewer sees masks")
        right, wrong = RESIDENT["id_number"], "340104199001019234"
        for guess in (right, wrong):
            for extra in ((), ("--where", "residence_type=registered")):
                rc, out, err = as_(d, viewer, "data", "query", "residents", *extra,
                                   "--where", f"id_number={guess}")
                eq((rc, out["name"]), (1, "LINLI_EPERM"), f"refused: {out}")
                check("residents: field 'id_number' is sensitive: filtering on it needs the "
                      "grant to read it in clear" in out["error"], out["error"])
                check("count" not in out and "records" not in out, out)
        # With the grant: it works, and is audited like a clear read.
        for guess, n in ((right, 1), (wrong, 0)):
            rc, out, err = as_(d, reader, "data", "query", "residents", "--where",
                               f"id_number={guess}")
            eq((rc, out["count"]), (0, n), f"granted filter {guess}: {err}")
        audit = [(a["who"], a["result"], a.get("detail"))
                 for a in d.ok("audit", "--action", "data.read", "--limit", "1000")]
        eq(audit.count(("viewer1", "denied", "filter on sensitive field id_number")), 4,
           f"every refused filter audited: {audit}")
        eq(audit.count(("reader1", "allowed", "filter on sensitive field id_number")), 2,
           f"every granted filter audited: {audit}")


def to_format_1(src, dst):
    """Write the format-4 store of directory `src` as linlid 1 kept it into directory
    `dst`, with lmdb-utils: no checksums (the 8 bytes in front of every value but meta
    "format"), the ids table `dataset \\0 id -> scope`, meta "format" = "linli-store 1"
    and no node id, no change log (its tables: empty here); records, indexes, counts and
    journal as they are."""
    dump = subprocess.run(["mdb_dump", "-a", src], capture_output=True, check=True).stdout
    lines = dump.decode().splitlines()
    i, names = 0, []
    while i < len(lines):
        hdr = []
        while lines[i] != "HEADER=END":
            hdr.append(lines[i])
            i += 1
        i += 1
        pairs = []
        while lines[i] != "DATA=END":
            pairs.append((bytes.fromhex(lines[i].strip()), bytes.fromhex(lines[i + 1].strip())))
            i += 2
        i += 1
        name = next(h.split("=", 1)[1] for h in hdr if h.startswith("database="))
        names.append(name)
        if name in ("outbox", "fedin", "fedq", "downlog", "downkey"):
            eq(pairs, [], f"table {name} empty (no federation here)")
            continue
        pairs = [(k, v if name == "meta" and k == b"format" else v[8:]) for k, v in pairs]
        if name == "ids":
            pairs = [(ds + b"\0" + rid, scope[:-1])
                     for ds, rid, scope in (k.split(b"\0", 2) for k, _ in pairs)]
        elif name == "meta":
            pairs = [(k, b"linli-store 1" if k == b"format" else v)
                     for k, v in pairs if k != b"node"]
        text = "\n".join(hdr + ["HEADER=END"] + [f" {k.hex()}\n {v.hex()}"
                                                 for k, v in sorted(pairs)] + ["DATA=END", ""])
        subprocess.run(["mdb_load", "-s", name, dst], input=text.encode(), check=True)
    eq(sorted(names), ["downkey", "downlog", "fedin", "fedq", "ids", "idx", "journal", "meta",
                       "outbox", "rec"],
       "tables dumped")


def case_format_1_store_is_migrated_at_start():
    """A data dir of linlid 1 (store format 1, ids unique per dataset: tools/demo's var/
    holds one) starts: every record is found, and ids are per scope from then on."""
    old = os.path.join(tempfile.mkdtemp(prefix="linli-it-f1-"), "data")
    try:
        with running(node=STREET, level="street") as d:
            made = {}
            for i, scope in enumerate((YUELAN, YUELAN, YUELAN + "/g01", YUELAN2)):
                r = put(d, "residents", dict(RESIDENT, residence_type="floating" if i % 2
                                             else "registered"), "--scope", scope)
                made[r["id"]] = scope
            put(d, "residents", RESIDENT, "--scope", YUELAN2, "--id", "r-1")
            put(d, "houses", {"address": "悦澜路1号", "building": "1", "room": "101"},
                "--scope", YUELAN, "--id", "h-101")
            made["r-1"] = YUELAN2
            before = user_datasets(d.ok("store", "stats"))
            eq(d.stop(), 0, "stop")
            os.makedirs(old)
            to_format_1(d.data, old)
            d2 = store_daemon(node=STREET, level="street", data=old)
            d2.bootstrapped = True  # it has its admin: linlid itself is the first to open it
            try:
                d2.start()
                d2.wait_log("migrated from format 'linli-store 1' to 'linli-store 2'")
                d2.wait_log("migrated from format 'linli-store 2' to 'linli-store 3' (a "
                            "checksum on every entry) in the same transaction: 10 records, ")
                d2.wait_log("migrated from format 'linli-store 3' to 'linli-store 4' (the "
                            "federation's change log: tables outbox, fedin and fedq, empty)")
                d2.wait_log("migrated from format 'linli-store 4' to 'linli-store 5' (the "
                            "federation's down log: tables downlog and downkey)")
                check("records kept (" in d2.logtext() and "residents 5" in d2.logtext(),
                      d2.logtext())
                eq(user_datasets(d2.ok("store", "stats")), before, "every dataset's count")
                for rid, scope in made.items():
                    eq(d2.ok("data", "get", "residents", rid)["scope"], scope, f"{rid} by id")
                    d2.ok("data", "get", "residents", rid, "--scope", scope)
                eq(d2.ok("data", "get", "houses", "h-101")["building"], "1", "a house")
                eq(d2.ok("data", "query", "residents", "--where",
                         "residence_type=floating")["count"], 2, "indexes kept")
                # Per scope from now on: yuelan takes r-1 too, and deletes keep the ids tidy.
                r = put(d2, "residents", RESIDENT, "--scope", YUELAN, "--id", "r-1")
                check(r["created"], r)
                d2.ok("data", "del", "residents", "r-1", "--scope", YUELAN2)
                eq(d2.stop(), 0, "stop after the migration")
                # A second start has nothing to migrate.
                d2.start()
                eq(d2.logtext().count("migrated from format 'linli-store 1'"), 1, "once")
                eq(d2.logtext().count("migrated from format 'linli-store 2'"), 1, "once")
                eq(d2.ok("data", "get", "residents", "r-1")["scope"], YUELAN, "r-1 at yuelan")
                eq(d2.ok("data", "query", "residents", "--limit", "1000")["count"], 5, "residents")
                eq(d2.stop(), 0, "stop")
            finally:
                d2.cleanup()
    finally:
        shutil.rmtree(os.path.dirname(old), ignore_errors=True)


def case_query_pages_and_filters():
    with running() as d:
        log = os.path.join(d.dir, "acked")
        out = run_storm(d, log, "--sockets", "5", "--max", "50")
        check("acked 250 refused 0" in out, out)
        acked = read_ids(log)
        ids, pages = all_ids(d, "alarms", limit=100)
        eq(pages, 3, "pages")
        eq(sorted(ids), sorted(acked), "every record once")
        eq(ids, sorted(ids), "time-ordered ids come back in order")
        ids, pages = all_ids(d, "alarms", "--where", "active=true", "--where",
                             "severity=major", limit=64)
        eq(len(ids), 250, "filtered")
        eq(pages, 4, "filtered pages")
        eq(d.ok("data", "query", "alarms", "--where", "severity=minor")["count"], 0, "no minor")
        e = refused(d, "data", "query", "alarms", "--where", "details=x")
        check("field 'details' is not indexed" in e["error"], e["error"])
        e = refused(d, "data", "query", "alarms", "--where", "severity=awful")
        check("'awful' is not one of critical, major, minor, warning, indeterminate"
              in e["error"], e["error"])
        page = d.ok("data", "query", "alarms", "--limit", "10")
        e = refused(d, "data", "query", "alarms", "--where", "active=true", "--cursor",
                    page["cursor"])
        check("the cursor does not belong to this query" in e["error"], e["error"])
        check("--limit" in refused(d, "data", "query", "alarms", "--limit", "0")["error"], "limit")
        # Index upkeep through the console: acknowledge one alarm.
        one = d.ok("data", "get", "alarms", acked[0])
        del one["id"], one["scope"]
        one["active"] = False
        put(d, "alarms", one, "--id", acked[0])
        eq(d.ok("data", "query", "alarms", "--where", "active=false")["records"][0]["id"],
           acked[0], "new index value")
        eq(len(all_ids(d, "alarms", "--where", "active=true")[0]), 249, "old index value gone")
        d.ok("data", "del", "alarms", acked[0])
        eq(d.ok("data", "query", "alarms", "--where", "active=false")["count"], 0,
           "deleted from the index")


SYSTEM = {"accounts", "sessions", "audit", "apikeys", "grants"}


def user_datasets(stats):
    """Per-dataset counts without the kernel's own (accounts, sessions, audit...)."""
    return {k: v for k, v in stats["datasets"].items() if k not in SYSTEM}


def case_big_records_page_by_size():
    with running() as d:
        boundary = "x" * 60000
        for i in range(20):
            put(d, "grids", {"code": f"g{i:02d}", "name": f"网格{i}", "boundary": boundary})
        page = d.ok("data", "query", "grids", "--limit", "1000")
        check(0 < page["count"] < 20 and page["cursor"], f"page of {page['count']}")
        ids, pages = all_ids(d, "grids", limit=1000)
        eq(len(set(ids)), 20, "every record once")
        check(pages >= 3, f"{pages} pages")
        e = refused(d, "data", "put", "grids", json.dumps({"code": "g", "name": "n",
                                                            "boundary": "y" * 70000}))
        check("grids: field 'boundary': 70000 bytes, longer than max_len 65536" in e["error"],
              e["error"])


def case_stats_status_and_group_commit():
    with running(sync=True) as d:
        log = os.path.join(d.dir, "acked")
        st0 = d.ok("store", "stats")
        run_storm(d, log, "--sockets", "8", "--max", "100")
        st = d.ok("store", "stats")
        eq(st["records"] - st0["records"], 800, "records")
        eq(user_datasets(st), {"alarms": 800}, "per dataset")
        eq(st["durability"], "sync", "durability")
        check(st["writes"] - st0["writes"] == 800, st)
        # Eight clients at once: writes of one loop batch share one commit.
        check(st["commits"] < st["writes"], f"no group commit: {st}")
        check(st["file_bytes"] > 0 and st["used_bytes"] <= st["map_bytes"], st)
        check(d.ok("status")["store_bytes"] == st["file_bytes"], "status store_bytes")
        # Group commit across turns, with the defaults: a batch stays open while more is
        # queued (a write's own wake-up is, so every batch of these was kept open a turn).
        g = st["group_commit"]
        eq((g["max_writes"], g["max_ms"]), (50000, 250), "group commit bounds")
        check(g["kept_open_turns"] - st0["group_commit"]["kept_open_turns"] >= 1, st)
        # A lone write on the idle node: acknowledged after a commit of its own.
        put(d, "residents", RESIDENT)
        st1 = d.ok("store", "stats")
        eq(st1["commits"] - st["commits"], 1, "commits of a lone write")
        eq(st1["group_commit"]["last_batch"], 1, "the lone write's batch")


def case_sighup_switches_durability():
    with running(sync=False) as d:
        eq(d.ok("store", "stats")["durability"], "nosync", "before")
        text = open(d.cfg).read().replace(
            "sync = false;", "sync = true; group_max = 100; group_commit_ms = 0;")
        d.write_config(text=text)
        d.kill_with(signal.SIGHUP)
        d.wait_log("reloaded")
        st = d.ok("store", "stats")
        eq(st["durability"], "sync", "after SIGHUP")
        g = st["group_commit"]
        eq((g["max_writes"], g["max_ms"]), (100, 0), "group commit bounds after SIGHUP")
        put(d, "residents", RESIDENT)
        # group_commit_ms = 0: no batch is kept open past its turn.
        eq(d.ok("store", "stats")["group_commit"]["kept_open_turns"], g["kept_open_turns"],
           "kept open with group_commit_ms = 0")
        # A bad bound in a reload is refused, naming the file and line; the old ones stay.
        d.write_config(text=text.replace("group_max = 100;", "group_max = 0;"))
        d.kill_with(signal.SIGHUP)
        d.wait_log("store.group_max: 0 is outside 1..1000000")
        eq(d.ok("store", "stats")["group_commit"]["max_writes"], 100, "after a bad reload")


def case_catalog_list_show():
    # The repo's Lua apps in a script dir: the catalog lists the plugins this node has (in any
    # state: not granted here, they are refused), not every entry of catalog/plugins.cfg.
    with running(extra=f'script_dirs = [ "{os.path.join(SRC, "scripts")}" ];\n') as d:
        rows = d.ok("catalog", "list")
        shipped = len([f for f in os.listdir(os.path.join(CATALOG, "datasets"))
                       if f.endswith(".cfg")])
        check(shipped >= 27, f"{shipped} dataset files")
        apps = sorted(f[:-4] for f in os.listdir(os.path.join(SRC, "scripts", "apps"))
                      if f.endswith(".lua"))
        eq(sorted(r["name"] for r in d.ok("catalog", "list", "plugins")), apps,
           "only the plugins the node has")
        eq(len(rows), shipped + 6 + 18 + len(apps), "entries (6: the built-in system datasets)")
        eq(len(d.ok("catalog", "list", "devices")), 18, "device classes")
        r = d.ok("catalog", "show", "residents")
        eq(r["kind"], "dataset", "kind")
        eq(r["title_zh"], "居民信息", "title")
        f = {x["name"]: x for x in r["fields"]}
        eq(f["id_number"]["sensitive"], "id_number", "sensitive")
        check(f["house"]["indexed"] and f["house"]["ref"] == "houses", f["house"])
        eq(d.ok("catalog", "show", "smoke")["kind"], "device", "device")
        e = refused(d, "catalog", "show", "alarms")
        check("'alarms' names a dataset and a plugin" in e["error"], e["error"])
        eq(d.ok("catalog", "show", "plugin", "alarms")["kind"], "plugin", "plugin")
        eq(refused(d, "catalog", "show", "nope")["name"], "LINLI_ENOENT", "missing")
        # The node-wide record count is shown to accounts whose jurisdiction covers the node.
        put(d, "residents", RESIDENT, "--scope", YUELAN + "/g02")
        eq(d.ok("catalog", "show", "residents")["records"], 1, "the node's admin sees the count")
        grid = d.account("gridop", "grid_worker", node=YUELAN + "/g01")
        rc, out, err = as_(d, grid, "catalog", "show", "residents")
        eq(rc, 0, err)
        check("records" not in out and out["name"] == "residents", f"a grid sees no count: {out}")


def case_bad_catalog_stops_the_daemon():
    tmp = tempfile.mkdtemp(prefix="linli-cat-")
    try:
        cat = os.path.join(tmp, "catalog")
        shutil.copytree(CATALOG, cat)
        path = os.path.join(cat, "datasets", "elders.cfg")
        text = open(path).read().replace('ref = "residents"', 'ref = "residentz"')
        open(path, "w").write(text)
        line = next(i + 1 for i, l in enumerate(text.splitlines()) if "residentz" in l)
        d = store_daemon(catalog=cat)
        try:
            d.start(wait=False)
            rc = d.proc.wait(20)
            eq(rc, 2, "exit code")
            want = f"{path}:{line}: field 'resident': ref: no dataset 'residentz' in the catalog"
            check(want in d.logtext(), d.logtext())
            check(not os.path.exists(os.path.join(d.data, "data.mdb")), "store opened anyway")
        finally:
            d.cleanup()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---- backup, damage, growth, a full disk ----

def case_backup_while_serving_and_restore():
    with running() as d:
        d.account("reader", "admin", grants=["sensitive"], as_default=True)
        for i in range(20):
            put(d, "residents", dict(RESIDENT, name=f"before{i}"))
        backup = os.path.join(d.dir, "backup")
        log = os.path.join(d.dir, "acked")
        storm = subprocess.Popen([STORM, d.sock, log, "--sockets", "4", "--max", "150"],
                                 stdout=subprocess.PIPE, text=True)
        time.sleep(0.2)
        r = d.ok("store", "backup", backup)
        eq(r["file"], os.path.join(backup, "data.mdb"), "file")
        out, _ = storm.communicate(timeout=120)
        check("acked 600 refused 0" in out, f"writes during the backup: {out}")
        check(os.path.getsize(r["file"]) > 0, "empty backup")
        e = refused(d, "store", "backup", backup)
        check("already exists" in e["error"], e["error"])
        check("absolute" in refused(d, "store", "backup", "rel/dir")["error"], "relative")
        put(d, "residents", dict(RESIDENT, name="after"))
        eq(d.stop(), 0, "stop")
        # Restore: a linlid whose data_dir holds the copy.
        r2 = store_daemon(data=backup)
        try:
            r2.start()
            r2.session = r2.login("reader", "Another-Passw0rd-1")  # accounts come back too
            names = [x["name"] for x in r2.ok("data", "query", "residents")["records"]]
            eq(sorted(names), sorted(f"before{i}" for i in range(20)), "restored residents")
            got = r2.ok("data", "query", "alarms", "--limit", "1000")["count"]
            check(got <= 600, got)
            r2.ok("data", "put", "residents", json.dumps(RESIDENT))  # it serves writes
            eq(r2.stop(), 0, "stop the restored daemon")
        finally:
            r2.cleanup()


# ---- integrity: checksums, verify, recovery ----

PW = "Clerk-Passw0rd-14"


def verify_stopped(d):
    """`linlid --verify` on d's store (daemon stopped): (exit code, stdout + stderr)."""
    r = subprocess.run([LINLID, "--config", d.cfg, "--verify"], capture_output=True, text=True,
                       timeout=120)
    return r.returncode, r.stdout + r.stderr


def try_login(d, user, password):
    """Log in with the real console: (exit code, stderr)."""
    env = dict(os.environ, LINLI_SESSION_FILE=os.path.join(d.dir, "s-" + user))
    env.pop("LINLI_SESSION", None)
    r = subprocess.run([LINLI, "--socket", d.sock, "login", user, "--password-stdin"],
                       input=password + "\n", capture_output=True, text=True, env=env,
                       timeout=60)
    return r.returncode, r.stderr


def damage_value(path, key_re, rng, inside=None, span=24):
    """Write random bytes into the value of every copy of the record whose rec key matches
    `key_re` in the file's data pages (an LMDB leaf node: the key, then its value): at
    random places within `span` bytes after `inside` in the value, or after the value's
    first 8 bytes. Returns how many copies were damaged."""
    with open(path, "rb") as f:
        data = bytearray(f.read())
    hits = 0
    for m in re.finditer(key_re, bytes(data)):
        at = m.end() + 8
        if inside:
            i = data.find(inside, m.end(), m.end() + 400)
            if i < 0:
                continue
            at = i + len(inside)
        for _ in range(3):
            j = at + rng.randrange(span)
            data[j] ^= 1 + rng.randrange(255)
        hits += 1
    with open(path, "r+b") as f:
        f.write(data)
    return hits


def rec_key_re(dataset, rid):
    return re.escape(dataset.encode()) + rb"\x00[a-z0-9/]+/\x00" + re.escape(rid.encode())


def case_store_verify_clean_reports_zero():
    """`linli store verify` walks a clean store beside the running daemon: 0 damaged, the
    counts of every table; a viewer may not run it; `linlid --verify` agrees."""
    with running() as d:
        for i in range(20):
            put(d, "residents", dict(RESIDENT, name=f"居民{i}"), "--scope", YUELAN)
        r = d.ok("store", "verify")
        eq(r["damaged"], 0, f"damaged: {r}")
        eq(r["verdict"], "clean", "verdict")
        eq(r["format"], 5, "format")
        check(r["checksums"], r)
        eq(r["first_damaged"], [], "named")
        st = d.ok("store", "stats")
        eq(r["entries"]["records"], st["records"], "records walked")
        eq(r["entries"]["index_entries"], st["index_entries"], "index entries walked")
        eq(r["entries"]["id_entries"], st["records"], "an ids entry per record")
        d.account("viewer1", "viewer", node=YUELAN, as_default=True)
        e = refused(d, "store", "verify")
        eq(e["name"], "LINLI_EPERM", f"a viewer: {e}")
        d.session = None
        eq(d.stop(), 0, "stop")
        rc, out = verify_stopped(d)
        eq(rc, 0, f"linlid --verify: {out}")
        check("every checksum checked" in out and "clean: 0 damaged" in out, out)


def case_random_bytes_in_data_pages_are_caught():
    """Random bytes written into records' values in data.mdb (two accounts' password
    hashes, two residents' ethnicity): `linlid --verify` exits 1 naming each; linlid then
    serves no wrong record — a login either works or says the store is damaged, never
    "wrong user or password", and a damaged resident is refused, never shown changed;
    a backup restored as the README says is clean again."""
    rng = random.Random(14)
    with running() as d:
        users = ["clerk1", "clerk2", "clerk3"]
        for u in users:
            d.account(u, "viewer", node=YUELAN, password=PW)
        d.session = None
        d.login()
        want = {}
        for i in range(12):
            rid = f"r-{i:03d}"
            rec = dict(RESIDENT, ethnicity=f"QZX{i:03d}")
            put(d, "residents", rec, "--scope", YUELAN, "--id", rid)
            want[rid] = rec["ethnicity"]
        backup = os.path.join(d.dir, "backup")
        d.ok("store", "backup", backup)
        eq(d.stop(), 0, "stop")
        path = os.path.join(d.data, "data.mdb")
        for u in users[:2]:
            check(damage_value(path, rec_key_re("accounts", u), rng,
                               inside=b"$argon2id$v=19$", span=40) >= 1, f"{u} not found")
        for rid in ("r-003", "r-007"):
            check(damage_value(path, rec_key_re("residents", rid), rng, inside=b"QZX",
                               span=3) >= 1, f"{rid} not found")
        rc, out = verify_stopped(d)
        eq(rc, 1, f"linlid --verify exit: {out}")
        for name in ("accounts, scope " + YUELAN + ", id 'clerk1'",
                     "accounts, scope " + YUELAN + ", id 'clerk2'",
                     "residents, scope " + YUELAN + ", id 'r-003'",
                     "residents, scope " + YUELAN + ", id 'r-007'"):
            check(f"damaged: record dataset {name}: its checksum does not match" in out,
                  f"--verify does not name {name}:\n{out}")
        check("DAMAGED: 4 entries" in out and "restore a backup" in out, out)

        d.start()
        for u in users:
            rc, err = try_login(d, u, PW)
            check("wrong user or password" not in err, f"{u}: a damaged store said {err}")
            if u in users[:2]:
                eq(rc, 1, f"{u} logged in with a damaged hash")
                check("is damaged" in err and "clerk" in err, f"{u}: {err}")
            else:
                eq(rc, 0, f"{u}: {err}")
        for rid, name in want.items():
            rc, out, err = d.cli("data", "get", "residents", rid)
            if rid in ("r-003", "r-007"):
                eq(rc, 1, f"{rid} served: {out}")
                check("is damaged" in out["error"] and f"id '{rid}'" in out["error"], out)
                eq(out["name"], "LINLI_ECORRUPT", out)
            else:
                eq((rc, out["ethnicity"]), (0, name), f"{rid}")
        rc, out, err = d.cli("data", "query", "residents", "--limit", "100")
        check(rc == 1 and "is damaged" in out["error"], f"a query served damaged rows: {out}")
        r = d.ok("store", "verify")
        eq(r["damaged"], 4, f"store verify: {r}")
        eq(len(r["first_damaged"]), 4, "named")
        check("DAMAGED" in r["verdict"], r)
        eq(d.stop(), 0, "stop")

        # Recovery as the README says: stopped, the backup's data.mdb in place, verified.
        shutil.move(path, path + ".damaged")
        os.remove(os.path.join(d.data, "lock.mdb"))
        shutil.copy(os.path.join(backup, "data.mdb"), path)
        rc, out = verify_stopped(d)
        eq(rc, 0, f"the backup verifies clean: {out}")
        d.start()
        for u in users:
            eq(try_login(d, u, PW)[0], 0, f"{u} after the restore")
        eq(d.ok("data", "get", "residents", "r-003")["ethnicity"], "QZX003", "r-003 restored")


def start_refused(d, want):
    d.start(wait=False)
    rc = d.proc.wait(20)
    check(rc not in (0, None) and rc > 0, f"linlid exit {rc} (a signal is a crash)")
    check(want in d.logtext(), f"log lacks {want!r}:\n{d.logtext()}")


def case_not_lmdb_file_refused():
    d = store_daemon()
    try:
        os.makedirs(d.data)
        path = os.path.join(d.data, "data.mdb")
        junk = b"this is a spreadsheet, not a database\n" * 500
        with open(path, "wb") as f:
            f.write(junk)
        start_refused(d, f"store: {path} is not an LMDB data file (bad magic)")
        with open(path, "rb") as f:
            eq(f.read(), junk, "the file was touched")
    finally:
        d.cleanup()


def case_truncated_data_file_refused():
    with running() as d:
        log = os.path.join(d.dir, "acked")
        run_storm(d, log, "--sockets", "4", "--max", "500")
        eq(d.stop(), 0, "stop")
        path = os.path.join(d.data, "data.mdb")
        size = os.path.getsize(path)
        check(size > 200000, f"small store: {size}")
        os.truncate(path, size // 2)
        start_refused(d, f"store: {path} is truncated: {size // 2} bytes")
        os.truncate(path, 4096)
        d.proc = None
        start_refused(d, f"store: {path}")


def case_map_grows_from_1mib():
    with running(map_mb=1) as d:
        eq(d.ok("store", "stats")["map_bytes"], 1 << 20, "initial map")
        log = os.path.join(d.dir, "acked")
        out = run_storm(d, log, "--sockets", "4", "--max", "1500")
        check("acked 6000 refused 0" in out, out)
        st = d.ok("store", "stats")
        check(st["map_grows"] >= 2 and st["map_bytes"] >= 4 << 20, st)
        eq(sum(user_datasets(st).values()), 6000, "records")
        check("map grew from 1 to 2 MiB" in d.logtext(), "no growth logged")
        eq(d.stop(), 0, "stop")
        d.start()
        eq(sum(user_datasets(d.ok("store", "stats")).values()), 6000, "after restart")


def case_full_disk_loses_nothing_committed():
    if os.geteuid() != 0:
        print("skipped: mounting a small tmpfs needs root")
        sys.exit(77)
    d = store_daemon(map_mb=1)
    mnt = d.data
    os.makedirs(mnt)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", mnt],
                       capture_output=True, text=True)
    if r.returncode != 0:
        d.cleanup()
        print(f"skipped: cannot mount a tmpfs: {r.stderr.strip()}")
        sys.exit(77)
    try:
        d.start()
        # Fill the disk but for a few hundred records' room, so the writes that reach the
        # end are few (each is a console process: under ASan a fill from empty took 100 s).
        st = os.statvfs(mnt)
        room = st.f_bavail * st.f_frsize - 1024 * 1024
        if room > 0:
            with open(os.path.join(mnt, "filler"), "wb") as f:
                f.write(b"\0" * room)
        rec = {"type": "t", "source": "plugin:e", "severity": "major", "active": True,
               "acknowledged": False, "first_at": 1, "details": "m" * 1000}
        acked, error = [], None
        for _ in range(5000):
            rc, out, err = d.cli("data", "put", "alarms", json.dumps(rec))
            if rc != 0:
                error = out
                break
            acked.append(out["id"])
        check(error is not None, "the disk never filled")
        eq(error["name"], "LINLI_EFULL", f"code: {error}")
        check("the disk is full" in error["error"] and
              "everything committed before is intact" in error["error"], error["error"])
        check(len(acked) > 100, f"only {len(acked)} writes fitted")
        print(f"  {len(acked)} writes fitted, then: {error['error']}")
        # The daemon goes on serving, and every acknowledged write is there.
        st = d.ok("store", "stats")
        eq(sum(user_datasets(st).values()), len(acked), "records after the full disk")
        ids, _ = all_ids(d, "alarms", limit=1000)
        eq(sorted(ids), sorted(acked), "acknowledged writes")
        eq(d.stop(), 0, "stop")
        d.start()  # and it starts again on the full disk
        eq(sum(user_datasets(d.ok("store", "stats")).values()), len(acked), "after restart")
        eq(d.stop(), 0, "stop")
    finally:
        if d.proc and d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()
        subprocess.run(["umount", mnt])
        d.cleanup()


# ---- the crash test ----

def case_kill9_during_storm_keeps_every_acked_write():
    with running(sync=True) as d:
        log = os.path.join(d.dir, "acked")
        storm = subprocess.Popen([STORM, d.sock, log, "--sockets", "8"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # Let acknowledged writes pile up, then kill the daemon in the middle of them.
        end = time.time() + 30
        while time.time() < end and (not os.path.exists(log) or len(read_ids(log)) < 1500):
            time.sleep(0.05)
        # The storm's batches are kept open across turns (group commit) as it dies.
        g = d.ok("store", "stats")["group_commit"]
        check(g["kept_open_turns"] > 0 and g["max_ms"] > 0, f"group commit: {g}")
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait()
        out, err = storm.communicate(timeout=60)
        acked = read_ids(log)
        check(len(acked) >= 1500, f"only {len(acked)} acknowledged writes: {out} {err}")
        eq(len(set(acked)), len(acked), "duplicate ids")
        d.start()
        present, _ = all_ids(d, "alarms", limit=1000)
        missing = set(acked) - set(present)
        check(not missing, f"{len(missing)} of {len(acked)} acknowledged writes lost, "
                           f"e.g. {sorted(missing)[:3]}")
        print(f"  killed with {len(acked)} writes acknowledged; {len(present)} present after "
              "the restart")
        # Writes that were committed but whose reply was lost may be there too; no more.
        check(len(present) - len(acked) <= 8 * 2, f"{len(present)} present, {len(acked)} acked")
        eq(sum(user_datasets(d.ok("store", "stats")).values()), len(present), "stats")
        put(d, "residents", RESIDENT)  # it serves on


if __name__ == "__main__":
    sys.exit(main({k: v for k, v in globals().items() if k.startswith("case_")}))
