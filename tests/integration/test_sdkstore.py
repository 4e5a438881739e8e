"""Integration tests of the store members of the SDK function table, through a real linlid.

The test plugin tp_store (tests/plugins/tp_store.c) runs at the street node
hefei/baohe/binhu with capabilities store.read+write on residents and grids and
store.read on incidents, without the grant to see sensitive fields (tp_store_sens,
the same code, has it). Each of its console commands makes the store calls it
names and replies with the return code, the LINLI_E name, api->store_last_error
and the results, so these cases see exactly what a plugin sees. The console runs
as an administrator granted "sensitive", so that it shows what is stored.
"""
import json
import os
import re
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import (BUILD, SRC, Daemon, TestFailure, check, eq, finish, main,  # noqa: E402
                     wait_for)

TP = os.path.abspath(os.environ.get("LINLI_TP_DIR", os.path.join(BUILD, "tests", "plugins")))
CATALOG = os.path.join(SRC, "catalog")
DISTRICT = "hefei/baohe"
STREET = "hefei/baohe/binhu"
YUELAN = STREET + "/yuelan"
TIANEHU = STREET + "/tianehu"
QIMING = STREET + "/qiming"  # a community of the tree (accounts live on it)
OTHER = "hefei/baohe/other/c1"  # a community of a sibling street
RESIDENT = {"name": "张三", "id_number": "340104199001011234", "gender": "male",
            "birth_date": "1990-01-01", "residence_type": "registered"}
GRID = {"code": "g01", "name": "一网格"}
# What tp_store sees of RESIDENT: its sensitive fields masked.
MASKED = {"name": "张*", "id_number": "340***********1234"}
SYSTEM = {"accounts", "sessions", "audit", "apikeys", "grants"}


def js(v):
    return json.dumps(v, ensure_ascii=False)


class node:
    """A linlid at `path` with the real catalog and tp_store in its plugin dir."""

    def __init__(self, path=STREET, level="street", d=None, plugins=("tp_store",)):
        self.d = d or Daemon()
        pdir = os.path.join(self.d.dir, "plugins")
        os.makedirs(pdir, exist_ok=True)
        for name in plugins:
            shutil.copyfile(os.path.join(TP, name + ".so"), os.path.join(pdir, name + ".so"))
        self.path, self.level = path, level
        self.d.write_config(node=path, level=level, name="测试",
                            extra=f'plugin_dirs = [ "{pdir}" ];\ncatalog_dir = "{CATALOG}";\n')
        self.d.grant_declared(pdir)  # the admin approves what they declare

    def __enter__(self):
        try:
            self.d.start()
            see_all(self.d, "reader_" + self.level, self.path)
            return self.d
        except BaseException:
            self.d.cleanup()
            raise

    def __exit__(self, etype, *rest):
        finish(self.d, etype)  # a clean stop after a case that passed


def see_all(d, user="reader", node=STREET, password="Another-Passw0rd-1"):
    """Make the console act as an administrator of `node` who sees sensitive
    fields (created on first use; the data dir keeps it across restarts)."""
    rc, out, err = d.cli("accounts", "add", user, "--role", "admin", "--node", node, "--stdin",
                         input=password + "\n")
    if rc == 0:
        d.ok("accounts", "grant", user, "sensitive")
    else:
        check("exists" in err, f"accounts add {user}: {err}")
    d.session = d.login(user, password)
    os.environ["LINLI_SESSION"] = d.session


def tp(d, *args, plugin="tp_store"):
    return d.ok(plugin, *args)


def ok(d, *args, plugin="tp_store"):
    """A tp_store call that must succeed; returns its reply."""
    r = tp(d, *args, plugin=plugin)
    check(r["rc"] >= 0 and r["error"] == "", f"tp_store {' '.join(args)}: {r}")
    return r


def refused(d, name, needle, *args):
    r = tp(d, *args)
    eq(r["name"], name, f"code of tp_store {' '.join(args)} ({r['error']})")
    check(needle in r["error"], f"{needle!r} not in {r['error']!r}")
    return r


def count(d, dataset):
    return d.ok("data", "query", dataset, "--limit", "1000")["count"]


def user_records(d):
    """Records of the catalog's datasets (not the kernel's accounts, audit, ...)."""
    st = d.ok("store", "stats")["datasets"]
    return sum(v for k, v in st.items() if k not in SYSTEM)


def case_put_get_update_delete():
    with node() as d:
        # A new record with a time-ordered id made by the store.
        r = ok(d, "put", "residents", YUELAN, "-", js(RESIDENT))
        rid = r["id"]
        check(r["created"] and re.fullmatch(r"[0-9a-f]{16}-[0-9a-f]{10}", rid), r)
        g = ok(d, "get", "residents", rid)
        eq(g["scope"], YUELAN, "scope of the record")
        eq((g["record"]["name"], g["record"]["id_number"]), (MASKED["name"], MASKED["id_number"]),
           "sensitive fields masked without the grant")
        eq(g["record"]["birth_date"], 631152000000, "time normalised to ms")
        # The console sees what the plugin wrote, and the plugin what the console wrote.
        eq(d.ok("data", "get", "residents", rid)["id_number"], RESIDENT["id_number"], "console")
        c = d.ok("data", "put", "residents", "--scope", TIANEHU, js(dict(RESIDENT, name="李四")))
        eq(ok(d, "get", "residents", c["id"], TIANEHU)["record"]["name"], "李*", "console's")
        # An id of our own: created, then replaced whole.
        r = ok(d, "put", "residents", YUELAN, "r-1", js(RESIDENT))
        check(r["created"] and r["id"] == "r-1", r)
        r = ok(d, "put", "residents", YUELAN, "r-1", js(dict(RESIDENT, gender="female",
                                                              phone=None)))
        check(not r["created"], r)
        eq(ok(d, "get", "residents", "r-1")["record"]["gender"], "female", "replaced")
        # Ids are unique per scope: another scope of the subtree may hold r-1 too.
        r = ok(d, "put", "residents", TIANEHU, "r-1", js(dict(RESIDENT, name="王五")))
        check(r["created"] and r["id"] == "r-1", r)
        # A scope given is the record's own: each finds its record.
        eq(ok(d, "get", "residents", "r-1", TIANEHU)["record"]["name"], "王*", "tianehu's r-1")
        eq(ok(d, "get", "residents", "r-1", YUELAN)["record"]["gender"], "female", "yuelan's")
        # Without a scope, within the plugin's subtree: two records, so the scope is asked for.
        refused(d, "LINLI_EINVAL", f"residents: 2 records have id 'r-1' in scope {STREET} "
                f"(at {TIANEHU}, {YUELAN}); give the scope of the one you mean",
                "get", "residents", "r-1")
        ok(d, "del", "residents", "r-1", TIANEHU)
        # get at a scope that does not hold it.
        refused(d, "LINLI_ENOENT", f"residents: no record 'r-1' at scope {TIANEHU}",
                "get", "residents", "r-1", TIANEHU)
        eq(tp(d, "get", "residents", "nope")["rec_null"], True, "*rec NULL on failure")
        # Read-modify-write: create, increment, keep, delete.
        u = ok(d, "update", "grids", "g-1", YUELAN, "incr", "population", js(GRID))
        eq(u["old"], None, "no old record")
        for _ in range(3):
            ok(d, "update", "grids", "g-1", "-", "incr", "population")
        g = ok(d, "get", "grids", "g-1")
        eq((g["record"]["population"], g["record"]["code"], g["scope"]), (4, "g01", YUELAN),
           "incremented")
        u = ok(d, "update", "grids", "g-1", "-", "keep")
        eq(u["old"]["population"], 4, "keep sees the record")
        u = ok(d, "update", "grids", "g-1", "-", "replace", js({"code": "g09", "name": "九"}))
        eq(ok(d, "get", "grids", "g-1")["record"], {"code": "g09", "name": "九"}, "replaced")
        ok(d, "update", "grids", "g-1", "-", "delete")
        refused(d, "LINLI_ENOENT", "grids: no record 'g-1'", "get", "grids", "g-1")
        ok(d, "update", "grids", "g-1", YUELAN, "delete")  # deleting nothing is no error
        ok(d, "update", "grids", "g-1", YUELAN, "keep")
        refused(d, "LINLI_ENOENT", "no record 'g-1'", "get", "grids", "g-1")
        # The callback's own error comes back with its message; nothing is written.
        refused(d, "LINLI_EBUSY", "tp_store refuses to update g-2",
                "update", "grids", "g-2", YUELAN, "fail")
        refused(d, "LINLI_EINVAL", "returned 0 without a record",
                "update", "grids", "g-2", YUELAN, "nothing")
        refused(d, "LINLI_ENOENT", "no record 'g-2'", "get", "grids", "g-2")
        # Inside the callback the store can be read but not written.
        ok(d, "update", "grids", "g-3", YUELAN, "incr", "population", js(GRID))
        u = ok(d, "update", "grids", "g-3", "-", "nested")
        eq((u["inner"]["put"], u["inner"]["delete"], u["inner"]["update"], u["inner"]["get"]),
           (-18, -18, -18, 0), "writes refused inside an update, reads allowed")
        check("not allowed inside a store_update callback" in u["inner"]["put_error"], u)
        eq(ok(d, "get", "grids", "g-3")["record"]["population"], 1, "nothing written inside")
        # Delete.
        ok(d, "del", "residents", rid)
        refused(d, "LINLI_ENOENT", f"no record '{rid}'", "del", "residents", rid)
        refused(d, "LINLI_ENOENT", f"no record '{rid}'", "get", "residents", rid)
        eq(count(d, "residents"), 2, "residents left")
        # Bad arguments are named.
        refused(d, "LINLI_EINVAL", "bad id 'a/b'", "get", "residents", "a/b")
        refused(d, "LINLI_EINVAL", "bad scope", "get", "residents", "x", "A//b")
        refused(d, "LINLI_EINVAL", "the record must be a map", "put", "residents", YUELAN, "-",
                "[1, 2]")
        refused(d, "LINLI_EINVAL", "no dataset given", "get", "-", "x")
        # The last error stays until the next store call, which clears it on success.
        refused(d, "LINLI_ENOENT", "no record 'zz'", "get", "residents", "zz")
        check("no record 'zz'" in tp(d, "lasterr")["error"], "kept")
        ok(d, "get", "residents", "r-1")
        eq(tp(d, "lasterr")["error"], "", "cleared by a success")


def case_scan_pages_filters_and_early_stop():
    with node() as d:
        made = []
        for i in range(25):
            scope = YUELAN if i % 5 else TIANEHU
            kind = "floating" if i % 3 == 0 else "registered"
            r = ok(d, "put", "residents", scope, "-",
                   js(dict(RESIDENT, name=f"居民{i}", residence_type=kind, house="h-1")))
            made.append((r["id"], scope, kind))
        by_id = {i: (s, k) for i, s, k in made}
        # Every record, in pages of 10, following the cursors.
        p = ok(d, "pages", "residents", "limit=10")
        eq(p["page_sizes"], [10, 10, 5], "page sizes")
        want = sorted(made, key=lambda m: (m[1] + "/", m[0]))  # key order: scope, then id
        eq(p["ids"], [m[0] for m in want], "every record once, in key order")
        # One page with its rows; its cursor continues.
        s = ok(d, "scan", "residents", "limit=10")
        eq(s["count"], 10, "rows")
        eq([r["id"] for r in s["rows"]], p["ids"][:10], "first page")
        row = s["rows"][0]
        eq(row["scope"], by_id[row["id"]][0], "a row's scope")
        eq(row["record"]["residence_type"], by_id[row["id"]][1], "a row's record")
        check(row["record"]["name"] == "居**", row)  # masked
        s2 = ok(d, "scan", "residents", "limit=10", f"cursor={s['cursor']}")
        eq([r["id"] for r in s2["rows"]], p["ids"][10:20], "second page")
        # A subtree: only its records.
        y = ok(d, "pages", "residents", f"scope={YUELAN}", "limit=7")
        eq(sorted(y["ids"]), sorted(i for i, sc, _ in made if sc == YUELAN), "yuelan only")
        # Equality filters on indexed fields, alone, together, and with a scope.
        f = ok(d, "pages", "residents", "where=residence_type=floating", "limit=3")
        eq(sorted(f["ids"]), sorted(i for i, _, k in made if k == "floating"), "filtered")
        f = ok(d, "pages", "residents", "where=residence_type=floating", f"scope={TIANEHU}",
               "where=house=h-1", "limit=2")
        eq(sorted(f["ids"]), sorted(i for i, sc, k in made if k == "floating" and sc == TIANEHU),
           "two filters and a scope")
        eq(ok(d, "scan", "residents", "where=residence_type=overseas")["count"], 0, "no match")
        # The callback ends a page early: the cursor continues right after its row.
        s = ok(d, "scan", "residents", "limit=10", "stop=3")
        eq(s["count"], 4, "rows handed over")
        s2 = ok(d, "scan", "residents", "limit=10", f"cursor={s['cursor']}")
        eq([r["id"] for r in s["rows"] + s2["rows"]], p["ids"][:14], "resumed after the stop")
        s = ok(d, "scan", "residents", "limit=30", "stop=24")
        eq((s["count"], s["cursor"]), (25, ""), "a stop at the last row: no cursor")
        r = refused(d, "LINLI_EBUSY", "row callback returned -10", "scan", "residents",
                    "limit=10", "fail=2")
        eq(len(r["rows"]), 3, "rows before the failure")
        s2 = ok(d, "scan", "residents", "limit=10", f"cursor={r['cursor']}")
        eq(s2["rows"][0]["id"], p["ids"][3], "a cursor after the failing row")
        # The row callback may write: the page was read before it runs.
        w = ok(d, "scan", "residents", "limit=25", "write=1")
        eq(w["count"], 25, "rows of a writing scan")
        grids = d.ok("data", "query", "grids", "--limit", "100")["records"]
        eq(sorted(g["name"] for g in grids), sorted(p["ids"]), "a grid per row")
        eq({g["scope"] for g in grids}, {YUELAN, TIANEHU}, "at the rows' scopes")
        # Refusals name what is wrong.
        refused(d, "LINLI_EINVAL", "not indexed", "scan", "residents", "where=gender=male")
        refused(d, "LINLI_EINVAL", "no field 'nope'", "scan", "residents", "where=nope=1")
        yc = ok(d, "scan", "residents", f"scope={YUELAN}", "limit=1")["cursor"]
        refused(d, "LINLI_EINVAL", "does not belong to this query", "scan", "residents",
                f"scope={TIANEHU}", f"cursor={yc}")
        refused(d, "LINLI_EINVAL", "does not belong to this query", "scan", "residents",
                "cursor=bm90IGEgY3Vyc29y")
        refused(d, "LINLI_EINVAL", "limit 10001 is above 10000", "scan", "residents",
                "limit=10001")
        refused(d, "LINLI_EINVAL", "9 filters", "scan", "residents",
                *["where=residence_type=floating"] * 9)
        refused(d, "LINLI_EINVAL", "set it to sizeof(struct linli_query)", "badquery")
        refused(d, "LINLI_EPERM", "no granted capability store.read:nope", "scan", "nope")


def case_schema_violation_reaches_the_plugin():
    with node() as d:
        ok(d, "put", "residents", YUELAN, "r-1", js(RESIDENT))
        cases = [
            ({"name": "x"}, "residents: field 'id_number': required"),
            (dict(RESIDENT, gender="x"),
             "residents: field 'gender': 'x' is not one of male, female"),
            (dict(RESIDENT, age=3), "residents: field 'age': not in the schema of residents"),
            (dict(RESIDENT, birth_date="yesterday"),
             "residents: field 'birth_date': 'yesterday' is not an RFC 3339 time"),
        ]
        for rec, want in cases:
            for rid in ("-", "r-1", "r-2"):
                refused(d, "LINLI_ESCHEMA", want, "put", "residents", YUELAN, rid, js(rec))
        # A scope above the dataset's level.
        refused(d, "LINLI_EINVAL", "residents records live at the community level",
                "put", "residents", "-", "-", js(RESIDENT))
        # Through read-modify-write: the whole update is refused.
        ok(d, "update", "grids", "g-1", YUELAN, "incr", "population", js(GRID))
        refused(d, "LINLI_ESCHEMA", "grids: field 'population'",
                "update", "grids", "g-1", "-", "bad", "population")
        refused(d, "LINLI_ESCHEMA", "grids: field 'code': required",
                "update", "grids", "g-2", YUELAN, "incr", "population")
        # Nothing of it was stored; what was there is intact.
        eq(count(d, "residents"), 1, "residents")
        eq(ok(d, "get", "residents", "r-1")["record"]["gender"], "male", "r-1 intact")
        eq(ok(d, "get", "grids", "g-1")["record"]["population"], 1, "g-1 intact")
        eq(count(d, "grids"), 1, "grids")
        eq(user_records(d), 2, "records in the store")


def case_undeclared_dataset_and_foreign_scope_refused():
    # First, a district node stores records in two streets; then the street's node
    # runs on a copy of those data.
    keep = tempfile.mkdtemp(prefix="linli-it-keep-")
    try:
        with node(DISTRICT, "district") as dd:
            for scope, rid in ((YUELAN, "mine"), (OTHER, "theirs")):
                dd.ok("data", "put", "residents", "--scope", scope, "--id", rid, js(RESIDENT))
            dd.ok("data", "put", "businesses", "--scope", YUELAN, "--id", "b-1",
                  js({"name": "小店", "credit_code": "91340100MA2N0XXX1X",
                      "kind": "individual_business"}))
            eq(dd.stop(), 0, "district stops")
            shutil.copytree(dd.data, os.path.join(keep, "data"))
        e = Daemon()
        shutil.copytree(os.path.join(keep, "data"), e.data)
    finally:
        shutil.rmtree(keep, ignore_errors=True)
    with node(STREET, "street", d=e) as d:
        # Its own subtree: fine. The sibling street's record does not exist for it.
        eq(ok(d, "get", "residents", "mine")["scope"], YUELAN, "own")
        refused(d, "LINLI_ENOENT", "no record 'theirs' in scope hefei/baohe/binhu",
                "get", "residents", "theirs")
        eq(ok(d, "pages", "residents")["ids"], ["mine"], "a scan never shows a sibling's")
        refused(d, "LINLI_ENOENT", "no record 'theirs'", "del", "residents", "theirs")
        # Naming a sibling's or the parent's scope is refused.
        for scope in (OTHER, "hefei/baohe/other", DISTRICT, "hefei"):
            refused(d, "LINLI_EPERM", f"may not act on {scope}: outside its jurisdiction",
                    "get", "residents", "theirs", scope)
            refused(d, "LINLI_EPERM", "outside its jurisdiction",
                    "put", "residents", scope, "-", js(RESIDENT))
            refused(d, "LINLI_EPERM", "outside its jurisdiction", "scan", "residents",
                    f"scope={scope}")
            refused(d, "LINLI_EPERM", "outside its jurisdiction", "del", "residents", "theirs",
                    scope)
            refused(d, "LINLI_EPERM", "outside its jurisdiction",
                    "update", "residents", "theirs", scope, "keep")
        # A sibling's id is free here: taking it tells nothing of the sibling.
        r = ok(d, "put", "residents", YUELAN, "theirs", js(RESIDENT))
        check(r["created"] and r["error"] == "", r)
        eq(ok(d, "get", "residents", "theirs")["scope"], YUELAN, "ours, found by id alone")
        ok(d, "update", "residents", "theirs", "-", "keep")
        ok(d, "del", "residents", "theirs", YUELAN)
        # A dataset it did not declare, or declared for reading only.
        refused(d, "LINLI_EPERM", "holds no granted capability store.read:businesses",
                "get", "businesses", "b-1")
        refused(d, "LINLI_EPERM", "store.read:businesses", "scan", "businesses")
        refused(d, "LINLI_EPERM", "holds no granted capability store.write:businesses",
                "put", "businesses", YUELAN, "-", js({"name": "x"}))
        refused(d, "LINLI_EPERM", "store.write:businesses", "del", "businesses", "b-1")
        eq(ok(d, "scan", "incidents")["count"], 0, "incidents may be read")
        refused(d, "LINLI_EPERM", "holds no granted capability store.write:incidents",
                "put", "incidents", YUELAN + "/g01", "-", js({"title": "t"}))
        refused(d, "LINLI_EPERM", "store.write:incidents",
                "update", "incidents", "i-1", YUELAN + "/g01", "keep")
        # The device registry is written by the device layer alone, whatever a plugin holds.
        refused(d, "LINLI_EPERM", "written by the kernel's 'devices' layer only",
                "put", "devices", YUELAN, "-", js({"class": "door", "driver": "x",
                                                   "address": "a"}))
        check("tp_store: store_put businesses: plugin 'tp_store' holds no granted capability"
              in d.logtext(), "refusals are logged under the plugin's name")
        denied = [(a["action"], a.get("object")) for a in d.ok("audit", "--limit", "1000")
                  if a.get("via", a["who"]) == "plugin:tp_store" and a["result"] == "denied"]
        for want in (("data.write", "businesses"), ("data.read", "businesses"),
                     ("data.write", "incidents")):
            check(want in denied, f"{want} not audited as denied: {denied}")
        # Nothing changed.
        eq(d.ok("data", "get", "businesses", "b-1")["name"], "小店", "b-1 intact")
        eq(count(d, "residents"), 1, "the street sees one resident")
        eq(user_records(d), 3, "records in the store")


def case_sensitive_fields_masked_audited_and_kept_by_updates():
    with node(plugins=("tp_store", "tp_store_sens")) as d:
        rec = dict(RESIDENT, phone="13812345678")
        ok(d, "put", "residents", YUELAN, "r-1", js(rec))  # writing needs no grant
        masked = dict(MASKED, phone="138****5678")
        g = ok(d, "get", "residents", "r-1")["record"]
        eq({k: g[k] for k in masked}, masked, "masked for tp_store")
        eq((g["gender"], g["residence_type"]), ("male", "registered"), "the rest in clear")
        s = ok(d, "get", "residents", "r-1", plugin="tp_store_sens")["record"]
        eq({k: s[k] for k in masked}, {k: rec[k] for k in masked}, "clear with the grant")
        row = ok(d, "scan", "residents")["rows"][0]["record"]
        eq(row["id_number"], masked["id_number"], "a scan masks too")
        row = ok(d, "scan", "residents", plugin="tp_store_sens")["rows"][0]["record"]
        eq(row["id_number"], rec["id_number"], "a scan with the grant")
        # A filter on a sensitive field would tell its masked digits: it needs the grant.
        wrong = "id_number=340104199001019999"
        for w in (f"where=id_number={rec['id_number']}", "where=" + wrong):
            refused(d, "LINLI_EPERM", "store_scan residents: field 'id_number' is sensitive: "
                    "filtering on it needs the grant to read it in clear", "scan", "residents",
                    w)
            refused(d, "LINLI_EPERM", "field 'id_number' is sensitive", "scan", "residents",
                    "where=residence_type=registered", w)
        eq(ok(d, "scan", "residents", f"where=id_number={rec['id_number']}",
              plugin="tp_store_sens")["count"], 1, "with the grant: a hit")
        eq(ok(d, "scan", "residents", "where=" + wrong, plugin="tp_store_sens")["count"], 0,
           "with the grant: a miss")
        # Every read is audited, allowed or masked.
        audit = d.ok("audit", "--limit", "1000")
        mine = [(a.get("via", a["who"]), a["result"], a.get("detail")) for a in audit
                if a.get("action") == "data.read" and a.get("via", a["who"]).startswith("plugin:")]
        for want in (("plugin:tp_store", "masked", "r-1"), ("plugin:tp_store_sens", "allowed", "r-1"),
                     ("plugin:tp_store", "masked", "scan"),
                     ("plugin:tp_store_sens", "allowed", "scan"),
                     ("plugin:tp_store", "denied", "filter on sensitive field id_number"),
                     ("plugin:tp_store_sens", "allowed", "filter on sensitive field id_number")):
            check(want in mine, f"{want} not audited: {mine}")
        eq(sum(1 for m in mine if m == ("plugin:tp_store", "denied",
                                        "filter on sensitive field id_number")), 4,
           "every refused filter audited")
        # An update without the grant sees the masks, and never writes them back.
        u = ok(d, "update", "residents", "r-1", "-", "set", "gender", "female")
        eq(u["old"]["name"], masked["name"], "the callback saw the mask")
        s = ok(d, "get", "residents", "r-1", plugin="tp_store_sens")["record"]
        eq((s["gender"], s["name"], s["id_number"], s["phone"]),
           ("female", rec["name"], rec["id_number"], rec["phone"]), "stored values kept")
        # A sensitive field it changes or drops is written as it left it.
        ok(d, "update", "residents", "r-1", "-", "set", "name", "李四")
        ok(d, "update", "residents", "r-1", "-", "drop", "phone")
        s = ok(d, "get", "residents", "r-1", plugin="tp_store_sens")["record"]
        eq((s["name"], s["id_number"], "phone" in s), ("李四", rec["id_number"], False),
           "changed and dropped fields written")
        # The kernel's own datasets are out of reach, whatever the capabilities.
        for args in (("get", "accounts", "admin"), ("scan", "audit"), ("scan", "sessions"),
                     ("put", "accounts", "-", "-", js({"x": 1}))):
            refused(d, "LINLI_EPERM", "is kept by the kernel itself", *args)
            r = tp(d, *args, plugin="tp_store_sens")
            eq(r["name"], "LINLI_EPERM", f"tp_store_sens {args}")
            check("kept by the kernel itself" in r["error"], r)


def case_read_modify_write_is_atomic_and_survives_restart():
    d = Daemon()
    with node(d=d):
        ok(d, "put", "residents", YUELAN, "r-1", js(RESIDENT))
        n = 301
        eq(tp(d, "count", "grids", "g-c", YUELAN, str(n), "population", js(GRID))["rc"], 0,
           "count started")
        # Meanwhile the console writes other records of the same dataset.
        for i in range(20):
            d.ok("data", "put", "grids", "--scope", TIANEHU, "--id", f"x-{i}",
                 js(dict(GRID, population=i)))
        end = time.time() + 60
        while True:
            st = tp(d, "countstat")
            if not st["running"]:
                break
            check(time.time() < end, f"the count never ended: {st}")
            time.sleep(0.05)
        eq((st["done"], st["failures"]), (n, 0), f"updates ({st})")
        eq(ok(d, "get", "grids", "g-c")["record"]["population"], n, "the counter")
        eq(d.ok("data", "get", "grids", "g-c")["population"], n, "the counter (console)")
        # Every tick asked for a commit notice, and every notice said 0.
        for _ in range(100):
            st = tp(d, "countstat")
            if st["commits"] == st["notices_asked"]:
                break
            time.sleep(0.05)
        eq((st["commits"], st["commit_failures"]), (st["notices_asked"], 0), f"notices {st}")
        check(st["notices_asked"] == (n + 1) // 2, st)
        # A commit notice after a put; none without a pending write.
        c = ok(d, "commit", "residents", YUELAN, js(dict(RESIDENT, name="王五")))
        eq((c["on_commit"], c["told_before_reply"]), (0, 0), "asked, not told yet")
        d.wait_log(f"tp_store: committed {c['id']}: rc 0")
        eq(tp(d, "commitstat")["told"], 1, "told once")
        refused(d, "LINLI_ESTATE", "no write is pending", "lonely")
        eq(d.stop(), 0, "clean stop")
        check("a commit notice without a write" not in d.logtext(), "lonely was never called")
        # After a restart everything is there.
        d.start()
        see_all(d, "reader_street")
        eq(ok(d, "get", "grids", "g-c")["record"]["population"], n, "counter after restart")
        eq(d.ok("data", "get", "residents", c["id"])["name"], "王五", "committed put")
        eq(ok(d, "get", "residents", "r-1")["scope"], YUELAN, "first put")
        eq(len(ok(d, "pages", "grids")["ids"]), 21, "grids after restart")


def case_commit_notice_of_a_stopped_plugin_is_dropped():
    d = Daemon()
    with node(d=d):
        # fini writes and asks for a notice; the commit comes after the plugin is gone.
        ok(d, "finiarm", "residents", YUELAN, js(dict(RESIDENT, name="停用")))
        d.ok("plugins", "disable", "tp_store")
        d.wait_log("tp_store: fini: put ")
        check("tp_store: fini: put" in d.logtext() and "on_commit rc 0" in d.logtext(),
              d.logtext())
        d.ok("plugins", "enable", "tp_store")
        eq(len(ok(d, "pages", "residents")["ids"]), 1, "the fini write is there")
        # The same at shutdown: fini's write is committed by the store's close.
        ok(d, "finiarm", "residents", YUELAN, js(dict(RESIDENT, name="关机")))
        eq(d.stop(), 0, "clean stop")
        check("a commit notice after fini" not in d.logtext(), d.logtext())
        d.start()
        see_all(d, "reader_street")
        names = sorted(r["name"] for r in d.ok("data", "query", "residents")["records"])
        eq(names, ["停用", "关机"], "both fini writes survived")


# ---- SDK 1.1: the caller ----

def as_user(d, token, *args, plugin="tp_store"):
    """tp_store ARGS run by the account whose session is `token`: (exit code, reply, stderr)."""
    return d.cli(plugin, *args, env={"LINLI_SESSION": token})


def reply_of(d, token, *args, plugin="tp_store"):
    rc, out, err = as_user(d, token, *args, plugin=plugin)
    check(rc == 0, f"tp_store {' '.join(args)}: {err}")
    return out


def case_a_command_acts_as_its_caller():
    """A plugin command runs with the intersection of the plugin's grants and the
    caller's rights: narrowed or refused exactly as `data` commands are, masked and
    audited under the caller."""
    with node(plugins=("tp_store", "tp_store_sens")) as d:
        d.ok("data", "put", "residents", "--scope", YUELAN, "--id", "y1", js(RESIDENT))
        d.ok("data", "put", "residents", "--scope", TIANEHU, "--id", "t1", js(RESIDENT))
        viewer = d.account("viewer1", "viewer", node=STREET)
        op_y = d.account("op_y", "operator", node=YUELAN)
        admin_s = d.account("admin_s", "admin", node=STREET)  # no sensitive grant
        # The caller, as the handler sees it.
        w = reply_of(d, op_y, "whoami")
        eq((w["kind"], w["name"], w["role"], w["scope"], w["level"], w["key"]),
           ("person", "op_y", "operator", YUELAN, "community", False), "the caller")
        eq(w["grants"], [], "no grants")
        eq(reply_of(d, d.session, "whoami")["grants"], ["sensitive"], "the console's grants")
        # A viewer reads through the plugin but cannot write through it, as with `data put`.
        eq(reply_of(d, viewer, "get", "residents", "y1")["scope"], YUELAN, "viewer reads")
        r = reply_of(d, viewer, "put", "residents", YUELAN, "-", js(RESIDENT))
        eq(r["name"], "LINLI_EPERM", f"viewer writes through the plugin: {r}")
        check("role viewer at street level may not data.write" in r["error"] and
              "through plugin 'tp_store'" in r["error"], r["error"])
        rc, _, err = d.cli("data", "put", "residents", "--scope", YUELAN, js(RESIDENT),
                           env={"LINLI_SESSION": viewer})
        check(rc != 0 and "may not data.write" in err, f"the same through data put: {err}")
        # A community operator: its own community, never the sibling's.
        eq(reply_of(d, op_y, "get", "residents", "y1")["scope"], YUELAN, "own community")
        r = reply_of(d, op_y, "get", "residents", "t1")
        eq(r["name"], "LINLI_ENOENT", f"a NULL scope is the caller's subtree: {r}")
        r = reply_of(d, op_y, "get", "residents", "t1", TIANEHU)
        eq(r["name"], "LINLI_EPERM", f"the sibling named: {r}")
        eq(reply_of(d, op_y, "pages", "residents")["ids"], ["y1"], "a scan is narrowed")
        r = reply_of(d, op_y, "put", "residents", YUELAN, "y2", js(RESIDENT))
        eq((r["name"], r["created"]), ("LINLI_OK", True), f"operator writes its own: {r}")
        # Masking: in clear only when both the plugin and the caller hold the grant.
        eq(reply_of(d, d.session, "get", "residents", "y1", plugin="tp_store_sens")
           ["record"]["id_number"], RESIDENT["id_number"], "both hold it")
        eq(reply_of(d, admin_s, "get", "residents", "y1", plugin="tp_store_sens")
           ["record"]["id_number"], MASKED["id_number"], "the caller does not")
        eq(reply_of(d, d.session, "get", "residents", "y1")["record"]["id_number"],
           MASKED["id_number"], "the plugin does not")
        # Audited under the caller, naming the plugin.
        rows = d.ok("audit", "--via", "plugin:tp_store", "--limit", "1000")
        got = {(a["who"], a["action"], a["result"]) for a in rows}
        for want in (("viewer1", "data.write", "denied"), ("op_y", "data.read", "denied"),
                     ("op_y", "data.read", "masked")):
            check(want in got, f"{want} not in {got}")
        check(all(not a["who"].startswith("plugin:") for a in rows), rows)
        sens = d.ok("audit", "--via", "plugin:tp_store_sens", "--limit", "100")
        got = {(a["who"], a["result"]) for a in sens if a["action"] == "data.read"}
        check(("admin_s", "masked") in got and ("reader_street", "allowed") in got, got)
        # Timers and other callbacks act as the plugin itself: tp_store's commit notice.
        eq(ok(d, "commit", "residents", YUELAN, js(RESIDENT))["rc"], 0, "commit asked")


def case_plugin_actions_roles_levels_duties():
    with node(STREET, "street") as d:
        viewer = d.account("viewer1", "viewer", node=STREET)
        op_s = d.account("op_s", "operator", node=STREET)
        op_y = d.account("op_y", "operator", node=YUELAN)
        # Declarations: listed with what needs them; bad ones refused with a reason.
        info = d.ok("plugins", "info", "tp_store")
        whats = [r["what"] for r in info["resources"] if r["kind"] == "action"]
        eq(sorted(w.split(":")[0] for w in whats), ["tp_store.ack", "tp_store.approve"],
           f"actions: {whats}")
        check("tp_store.approve: operator or above, at street level or above, duty "
              "tp_store.checker: approve a case" in whats, whats)
        check({"kind": "command", "what": "tp_store ack, needs tp_store.ack"}
              in info["resources"], info["resources"])
        log = d.logtext()
        for needle in ("action 'other.x': a name 'tp_store.WORD'",
                       "least role 'boss' is none of viewer",
                       "action tp_store.ack is declared already",
                       "cmd_require ack tp_store.nosuch: no such action"):
            check(needle in log, needle)
        # cmd_require: a viewer never reaches the handler.
        rc, out, err = as_user(d, viewer, "ack")
        check(rc != 0 and "tp_store.ack: action tp_store.ack needs role operator or above; "
              "'viewer1' is viewer" in err, err)
        eq(reply_of(d, op_y, "ack")["acked_by"], "op_y", "an operator passes")
        # caller_may: level, then duty; an admin needs no duty.
        r = reply_of(d, op_y, "approve", YUELAN)
        eq(r["name"], "LINLI_EPERM", "a community operator")
        check("taken at street level or above; 'op_y' sits at community" in r["error"], r)
        r = reply_of(d, op_s, "approve", YUELAN)
        check(r["name"] == "LINLI_EPERM" and "needs the duty tp_store.checker" in r["error"], r)
        rc, _, err = d.cli("accounts", "assign", "op_s", "Bad Duty!")
        check(rc != 0 and "bad duty 'Bad Duty!'" in err, err)
        eq(d.ok("accounts", "assign", "op_s", "tp_store.checker")["duties"], "tp_store.checker",
           "assigned")
        eq(reply_of(d, op_s, "approve", YUELAN)["name"], "LINLI_OK", "with the duty")
        eq(d.cli("whoami", env={"LINLI_SESSION": op_s})[1]["duties"], ["tp_store.checker"],
           "whoami shows duties")
        r = reply_of(d, op_s, "approve", "hefei/baohe")
        check(r["name"] == "LINLI_EPERM" and "outside its jurisdiction" in r["error"], r)
        eq(reply_of(d, d.session, "approve", YUELAN)["name"], "LINLI_OK", "an admin")
        # Duty holders: whom to dispatch to, within the caller's reach.
        d.account("op_t", "operator", node=QIMING)
        d.ok("accounts", "assign", "op_t", "tp_store.checker")
        h = reply_of(d, d.session, "holders", "tp_store.checker")
        eq(sorted((x["user"], x["scope"]) for x in h["holders"]),
           [("op_s", STREET), ("op_t", QIMING)], "holders in the street")
        h = reply_of(d, op_y, "holders", "tp_store.checker")
        eq(h["holders"], [], "the community operator's reach")
        eq(reply_of(d, op_y, "holders", "tp_store.checker", QIMING)["name"], "LINLI_EPERM",
           "a sibling's")
        eq(reply_of(d, d.session, "holders", "no good")["name"], "LINLI_EINVAL", "bad duty")
        d.ok("accounts", "unassign", "op_s", "tp_store.checker")
        eq(reply_of(d, op_s, "approve", YUELAN)["name"], "LINLI_EPERM", "unassigned")
        # A caller kept past its handler is refused, never followed.
        d.ok("tp_store", "keep")
        wait_for(lambda: d.ok("tp_store", "stale")["name"] != "pending", "the timer")
        r = d.ok("tp_store", "stale")
        check(r["name"] == "LINLI_ESTATE" and "not the caller of the request being served"
              in r["error"], r)
        # Refusals are audited under the caller.
        rows = d.ok("audit", "--result", "denied", "--limit", "1000")
        got = {(a["who"], a["action"]) for a in rows}
        for want in (("viewer1", "tp_store.ack"), ("op_y", "tp_store.approve"),
                     ("op_s", "tp_store.approve")):
            check(want in got, f"{want} not in {got}")


def case_plugin_files_its_own_audit_entries():
    """api->audit: under the caller via the plugin while serving one, under the plugin from
    a timer; bad actions, results and scopes refused, nothing filed for them."""
    with node(STREET, "street") as d:
        op_y = d.account("op_y", "operator", node=YUELAN)
        eq(reply_of(d, op_y, "note", "tp_store.move", YUELAN + "/g01", "i-7", "denied",
                    "case i-7 is dispatched: cannot close")["name"], "LINLI_OK", "filed")
        eq(reply_of(d, d.session, "note", "tp_store.move", "-", "i-8", "allowed")["name"],
           "LINLI_OK", "at the caller's scope")
        eq(reply_of(d, op_y, "note", "tp_store.move", "-", "i-9", "failed",
                    "no door answered")["name"], "LINLI_OK", "a failure is filed too")
        for args, name in ((("other.move", "-", "x", "allowed"), "LINLI_EINVAL"),
                           (("tp_store.Move!", "-", "x", "allowed"), "LINLI_EINVAL"),
                           (("tp_store.move", "-", "x", "maybe"), "LINLI_EINVAL"),
                           (("tp_store.move", "not a scope", "x", "failed"), "LINLI_EINVAL"),
                           (("tp_store.move", QIMING, "x", "failed"), "LINLI_EPERM"),
                           (("tp_store.move", "-", "x" * 600, "failed"), "LINLI_EINVAL")):
            eq(reply_of(d, op_y, "note", *args)["name"], name, f"note {args[:2]}")
        log = d.logtext()
        for needle in ("audit: action 'other.move': a name 'tp_store.WORD'",
                       "audit: result 'maybe' is none of allowed, denied, failed",
                       f"audit: scope {QIMING} is outside the caller's jurisdiction"):
            check(needle in log, needle)
        d.ok("tp_store", "keep")
        wait_for(lambda: d.ok("tp_store", "stale")["name"] != "pending", "the timer")
        rows = [a for a in d.ok("audit", "--via", "plugin:tp_store", "--limit", "1000")
                if a["action"] == "tp_store.move"]
        got = sorted((a["who"], a["scope"], a.get("object"), a["result"]) for a in rows)
        me = d.ok("whoami")["user"]
        eq(got, sorted([(me, STREET, "i-8", "allowed"),
                        ("op_y", YUELAN + "/g01", "i-7", "denied"),
                        ("op_y", YUELAN, "i-9", "failed")]),
           "the three entries, no refused one")
        check(any("cannot close" in (a.get("detail") or "") for a in rows), rows)
        mine = [a for a in d.ok("audit", "--who", "plugin:tp_store", "--limit", "1000")
                if a["action"] == "tp_store.timer"]
        eq([(a["object"], a["result"]) for a in mine], [("stale", "allowed")],
           "from a timer, under the plugin")


def case_a_1_0_plugin_binary_still_loads_and_works():
    """tp_store built against the frozen SDK 1.0 headers (tests/sdk-1.0): its smaller
    request and query structs are read by their size, and it acts as its caller too."""
    with node(plugins=("tp_store_v10",)) as d:
        info = d.ok("plugins", "info", "tp_store")
        eq((info["state"], info["sdk"]), ("running", "1.0"), "a 1.0 plugin runs")
        r = ok(d, "put", "residents", YUELAN, "-", js(RESIDENT))
        eq(ok(d, "get", "residents", r["id"])["record"]["id_number"], MASKED["id_number"],
           "get")
        p = ok(d, "scan", "residents", "where=residence_type=registered")
        eq(p["count"], 1, "scan with a filter")
        rc, _, err = d.cli("tp_store", "whoami")
        check(rc != 0 and "unknown subcommand" in err, err)
        viewer = d.account("viewer1", "viewer", node=STREET)
        eq(reply_of(d, viewer, "put", "residents", YUELAN, "-", js(RESIDENT))["name"],
           "LINLI_EPERM", "a 1.0 plugin acts as its caller too")


def case_range_filters():
    """Ranges on indexed times through store_scan, paged, bounded by the scope, with the
    sensitive-field rule of equality filters; the same through the console."""
    with node() as d:
        d.ok("data", "put", "grids", "--scope", YUELAN, "--id", "g1", js(GRID))
        now = int(time.time() * 1000)
        hour = 3600 * 1000
        # due in -3h .. +2h; status handling except i-0; one in a sibling community
        for i, (due, status) in enumerate(((-3, "reported"), (-2, "handling"),
                                          (-1, "handling"), (1, "handling"), (2, "handling"))):
            d.ok("data", "put", "incidents", "--scope", YUELAN + "/g01", "--id", f"i-{i}",
                 js({"title": "t", "category": "environment", "status": status, "grid": "g1",
                     "reported_at": now - 5 * hour, "step_deadline": now + due * hour}))
        d.ok("data", "put", "incidents", "--scope", TIANEHU + "/g01", "--id", "t-0",
             js({"title": "t", "category": "environment", "status": "handling", "grid": "g1",
                 "reported_at": now - 5 * hour, "step_deadline": now - 4 * hour}))

        def ids(*args, scope=None):
            got, cursor = [], None
            while True:
                a = list(args) + ["limit=1"] + ([f"scope={scope}"] if scope else [])
                r = ok(d, "scan", "incidents", *a + ([f"cursor={cursor}"] if cursor else []))
                got += [row["id"] for row in r["rows"]]
                cursor = r.get("cursor")
                if not cursor:
                    return got

        # Overdue: walked by the deadline's index, earliest first, page by page.
        eq(ids("range=step_deadline<now"), ["t-0", "i-0", "i-1", "i-2"], "overdue")
        eq(ids("range=step_deadline<now", scope=YUELAN), ["i-0", "i-1", "i-2"],
           "overdue within yuelan only")
        eq(ids("range=step_deadline<now", "where=status=handling"), ["t-0", "i-1", "i-2"],
           "overdue and handling: by the status's index, then scope and id")
        eq(ids(f"range=step_deadline>={now - 2 * hour}", f"range=step_deadline<={now + hour}"),
           ["i-1", "i-2", "i-3"], "between two bounds")
        eq(ids(f"range=step_deadline>{now + 2 * hour}"), [], "none after the last")
        # A 1.0 plugin's query is smaller: the kernel reads no range from it.
        eq(len(ok(d, "scan", "incidents", "range=step_deadline<0", "size=1.0")["rows"]), 6,
           "the 1.0 size: the whole dataset, the range members unread")
        # Refusals name the field and the reason.
        for arg, name, needle in (
                ("range=step_deadline!=now", "LINLI_EINVAL",
                 "field 'step_deadline': '!=' is not a range operator"),
                ("range=status>handling", "LINLI_EINVAL",
                 "field 'status' is of type enum: ranges (<, <=, >, >=) take integer, float "
                 "and time fields"),
                ("range=close_deadline<now", "LINLI_EINVAL", "field 'close_deadline' is not indexed"),
                ("range=step_deadline<soon", "LINLI_EINVAL",
                 "field 'step_deadline': 'soon' is not a time"),
                ("range=reporter_phone>1", "LINLI_EPERM",
                 "incidents: field 'reporter_phone' is sensitive: filtering on it needs the "
                 "grant")):
            refused(d, name, needle, "scan", "incidents", arg)
        audit = d.ok("audit", "--limit", "1000")
        mine = [(a.get("via", a["who"]), a["result"], a.get("detail")) for a in audit
                if a.get("action") == "data.read" and a.get("via", a["who"]).startswith("plugin:")]
        want = ("plugin:tp_store", "denied", "filter on sensitive field reporter_phone")
        check(want in mine, f"{want} not audited: {mine}")
        # The console: --where takes the same operators.
        q = d.ok("data", "query", "incidents", "--where", "step_deadline<now", "--where",
                 "status=handling", "--scope", STREET)
        eq([r["id"] for r in q["records"]], ["t-0", "i-1", "i-2"], "console overdue")
        q = d.ok("data", "query", "incidents", "--where", f"step_deadline>={now}", "--limit", "1")
        eq(([r["id"] for r in q["records"]], bool(q["cursor"])), (["i-3"], True), "console page")
        q = d.ok("data", "query", "incidents", "--where", f"step_deadline>={now}", "--limit", "1",
                 "--cursor", q["cursor"])
        eq(([r["id"] for r in q["records"]], q.get("cursor")), (["i-4"], None), "console page 2")
        for arg, needle in (("step_deadline~now", "--where 'step_deadline~now' is not FIELD=VALUE, "
                             "FIELD<VALUE"),
                            ("status<=handling", "field 'status' is of type enum: ranges"),
                            ("step_deadline>=x", "field 'step_deadline': 'x' is not a time")):
            rc, out, err = d.cli("data", "query", "incidents", "--where", arg)
            check(rc != 0 and needle in err, f"data query --where {arg}: {rc} {out} {err}")
        # A viewer without the sensitive grant: refused, and audited as denied.
        rc, out, err = d.cli("data", "query", "incidents", "--where", "reporter_phone>=1")
        check(rc != 0 and "field 'reporter_phone' is not indexed" in err,
              f"the admin sees it in clear: its range gets as far as the index: {err}")
        viewer = d.account("viewer1", "viewer", node=STREET)
        rc, out, err = d.cli("data", "query", "incidents", "--where", "reporter_phone>=1",
                             env={"LINLI_SESSION": viewer})
        check(rc != 0 and "field 'reporter_phone' is sensitive" in err, f"{rc} {out} {err}")
        check(any(a.get("who") == "viewer1" and a["result"] == "denied"
                  and a.get("detail") == "filter on sensitive field reporter_phone"
                  for a in d.ok("audit", "--limit", "1000")), "the viewer's range audited denied")


def watch_ok(d, *args):
    """A tp_watch call that must succeed; returns its reply."""
    r = d.ok("tp_watch", *args)
    check(r["rc"] >= 0 and r["error"] == "", f"tp_watch {' '.join(args)}: {r}")
    return r


def case_change_notices_after_commit():
    """tp_watch (a street's plugin) is told of every committed change in its subtree,
    whoever made it, once, in order; its watches are tracked resources."""
    with node(plugins=("tp_watch",)) as d:
        wres = watch_ok(d, "watch", "residents")["id"]
        wgrid = watch_ok(d, "watch", "grids")["id"]
        check(wres > 0 and wgrid > wres, "ids")
        info = d.ok("plugins", "info", "tp_watch")["resources"]
        for w in (f"store watch {wres} of residents", f"store watch {wgrid} of grids"):
            check({"kind": "store watch", "what": w} in info, f"{w} in {info}")
        d.ok("data", "put", "residents", "--scope", YUELAN, "--id", "r-1", js(RESIDENT))
        d.ok("data", "put", "residents", "--scope", YUELAN, "--id", "r-1",
             js(dict(RESIDENT, gender="female")))
        d.ok("data", "del", "residents", "r-1")
        d.ok("data", "put", "grids", "--scope", TIANEHU, "--id", "g-1", js(GRID))
        d.ok("data", "put", "businesses", "--scope", YUELAN, "--id", "b-1",
             js({"name": "小店", "credit_code": "91340100MA2N0XXX1X",
                 "kind": "individual_business"}))  # not watched
        heard = []
        wait_for(lambda: heard.extend(watch_ok(d, "heard")["heard"]) or len(heard) >= 4,
                 "four changes")
        eq(heard, [f"created residents {YUELAN} r-1", f"updated residents {YUELAN} r-1",
                   f"deleted residents {YUELAN} r-1", f"created grids {TIANEHU} g-1"],
           "what was told")
        # Refusals name the reason.
        for ds, name, needle in (
                ("incidents", "LINLI_EPERM", "holds no granted capability store.read:incidents"),
                ("accounts", "LINLI_EPERM", "dataset 'accounts' is kept by the kernel itself"),
                ("nope", "LINLI_ENOENT", "no dataset 'nope' in the catalog")):
            r = d.ok("tp_watch", "watch", ds)
            eq(r["name"], name, r["error"])
            check(needle in r["error"], f"{needle!r} not in {r['error']!r}")
        # One that stops itself at its first change; unwatch.
        watch_ok(d, "once", "residents")
        watch_ok(d, "unwatch", str(wres))
        eq(d.ok("tp_watch", "unwatch", str(wres))["name"], "LINLI_ENOENT", "unwatched already")
        for i in range(2):
            d.ok("data", "put", "residents", "--scope", YUELAN, "--id", f"r-{i + 2}",
                 js(RESIDENT))
        d.wait_log("once: unwatch rc 0")
        eq(d.logtext().count("heard once "), 1, "told once, then it stopped")
        eq(watch_ok(d, "heard")["heard"], [f"created residents {YUELAN} r-2"], "only the once")
        # A watcher's own write is not told back to it (no loop), but to the others.
        watch_ok(d, "echo", "grids")
        d.ok("data", "put", "grids", "--scope", YUELAN, "--id", "g-2", js(GRID))
        heard = []
        wait_for(lambda: heard.extend(watch_ok(d, "heard")["heard"]) or len(heard) >= 3,
                 "the echo's notice")
        eq(sorted(heard), sorted([f"created grids {YUELAN} g-2", f"created grids {YUELAN} g-2",
                                  f"created grids {YUELAN} echo"]), "the echo heard by the other")
        eq(d.logtext().count("echo: put rc 0"), 1, "the echo watcher did not hear itself")
        eq(d.ok("data", "get", "grids", "echo", "--scope", YUELAN)["name"], "g-2", "echo stored")
        # Disable removes every watch; the next instance starts with none.
        d.ok("plugins", "disable", "tp_watch")
        d.ok("data", "put", "grids", "--scope", YUELAN, "--id", "g-3", js(GRID))
        d.ok("plugins", "enable", "tp_watch")
        eq([r for r in d.ok("plugins", "info", "tp_watch")["resources"]
            if r["kind"] == "store watch"], [], "no watch left")
        d.ok("data", "put", "grids", "--scope", YUELAN, "--id", "g-4", js(GRID))
        eq(watch_ok(d, "heard")["heard"], [], "nothing told to the new instance")
        check(f"{YUELAN} g-3" not in d.logtext(), "nothing told while disabled")


def case_dataset_schema_and_list():
    with node(plugins=("tp_watch",)) as d:
        s = watch_ok(d, "schema", "residents")["schema"]
        eq((s["name"], s["level"], s["title_en"]), ("residents", "community", s["title_en"]), "head")
        cat = d.ok("catalog", "show", "dataset", "residents")
        eq((s["title_zh"], s["sharing"], s["owner"], s["family"]),
           (cat["title_zh"], cat["sharing"], cat["owner"], cat["family"]), "as the catalog has it")
        fields = {f["name"]: f for f in s["fields"]}
        eq([f["name"] for f in s["fields"]], [f["name"] for f in cat["fields"]], "every field")
        eq(fields["id_number"]["sensitive"], "id_number", "a mask kind")
        eq(fields["gender"]["sensitive"], False, "not sensitive")
        eq(fields["gender"]["values"], ["male", "female"], "enum values")
        for f in cat["fields"]:
            g = fields[f["name"]]
            eq((g["type"], g["required"], g["indexed"]), (f["type"], f["required"], f["indexed"]),
               f["name"])
        lst = watch_ok(d, "datasets")["datasets"]
        names = [x["name"] for x in lst]
        check("residents" in names and "incidents" in names, names)
        check(not set(names) & SYSTEM, f"system datasets listed: {names}")
        eq(sorted(lst[0]), ["level", "name", "sharing", "title_en", "title_zh"], "an entry")
        for ds, name, needle in (("accounts", "LINLI_EPERM", "kept by the kernel itself"),
                                 ("nope", "LINLI_ENOENT", "no dataset 'nope' in the catalog")):
            r = d.ok("tp_watch", "schema", ds)
            eq(r["name"], name, r["error"])
            check(needle in r["error"], r["error"])


if __name__ == "__main__":
    sys.exit(main(dict(globals())))
