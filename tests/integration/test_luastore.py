"""Integration tests of the store in the Lua API (linli.store_*), through a real linlid.

A street node (hefei/baohe/binhu) runs with the real catalog, a script plugin
`keeper` and rules. keeper's console command `run` runs the Lua code sent with
--stdin inside the plugin's own state (so every linli.* call in it is checked as
keeper's) and replies {r1, r2, r3, n}: the values the code returned. A rule
`probe` does the same for the code of each event on test/probe, as the rule,
and prints `probe TAG => JSON` to the daemon log. The C test plugin tp_store
(tests/plugins/tp_store.c) runs beside them where a case compares a script's
refusals with a C plugin's. The console acts as an administrator granted
"sensitive", so that it shows what is stored.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from luakit import keeper, probe_rule  # noqa: E402
from harness import (  # noqa: E402
    BUILD, SRC, Daemon, TestFailure, by_name, check, eq, finish, main, wait_for, write)

TP = os.path.abspath(os.environ.get("LINLI_TP_DIR", os.path.join(BUILD, "tests", "plugins")))
CATALOG = os.path.join(SRC, "catalog")
DISTRICT = "hefei/baohe"
STREET = "hefei/baohe/binhu"
YUELAN = STREET + "/yuelan"
TIANEHU = STREET + "/tianehu"
OTHER = "hefei/baohe/other/c1"  # a community of a sibling street
RESIDENT = {"name": "张三", "id_number": "340104199001011234", "gender": "male",
            "birth_date": "1990-01-01", "residence_type": "registered",
            "phone": "13812345678"}
MASKED = {"name": "张*", "id_number": "340***********1234", "phone": "138****5678"}
GRID = {"code": "g01", "name": "一网格"}

KEEPER_CAPS = ("store.read:residents", "store.write:residents", "store.read:grids",
               "store.write:grids", "store.read:incidents", "store.read:households",
               "store.read:alarms")


def js(v):
    return json.dumps(v, ensure_ascii=False)


def lua(v):
    """A Python value as a Lua constructor."""
    if v is None:
        return "nil"
    if v is True or v is False:
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # a valid Lua string for these texts
    if isinstance(v, list):
        return "{" + ", ".join(lua(x) for x in v) + "}"
    return "{" + ", ".join(f"[{json.dumps(k)}] = {lua(x)}" for k, x in v.items()) + "}"


class node:
    """A linlid at `path` with the real catalog, script plugins, rules and .so test plugins."""

    def __init__(self, path=STREET, level="street", apps=None, rules=None, so=(), d=None,
                 extra=""):
        self.d = d or Daemon()
        self.scripts = os.path.join(self.d.dir, "scripts")
        pdir = os.path.join(self.d.dir, "plugins")
        for sub in ("apps", "rules"):
            os.makedirs(os.path.join(self.scripts, sub), exist_ok=True)
        os.makedirs(pdir, exist_ok=True)
        for fname, text in (apps or {}).items():
            write(os.path.join(self.scripts, "apps", fname), text)
        for fname, text in (rules or {}).items():
            write(os.path.join(self.scripts, "rules", fname), text)
        for name in so:
            shutil.copyfile(os.path.join(TP, name + ".so"), os.path.join(pdir, name + ".so"))
        self.path, self.level = path, level
        self.d.write_config(node=path, level=level, name="测试",
                            extra=f'plugin_dirs = [ "{pdir}" ];\ncatalog_dir = "{CATALOG}";\n'
                                  f'script_dirs = [ "{self.scripts}" ];\n'
                                  # No test here is about the clock: a generous time limit
                                  # keeps the loaded sanitizer build from tripping it.
                                  f'lua = {{ time_ms = 5000; }};\n{extra}')
        # The admin approves what the plugins and scripts declare.
        self.d.grant_declared(pdir)
        self.d.grant_scripts(*(os.path.join(self.scripts, sub) for sub in ("apps", "rules")))

    def __enter__(self):
        try:
            self.d.start()
            see_all(self.d, "reader_" + self.level, self.path)
            self.d.scripts = self.scripts
            return self.d
        except BaseException:
            self.d.cleanup()
            raise

    def __exit__(self, etype, *rest):
        finish(self.d, etype)  # a clean stop after a case that passed


def see_all(d, user, node, password="Another-Passw0rd-1"):
    """Make the console act as an administrator of `node` who sees sensitive fields."""
    rc, out, err = d.cli("accounts", "add", user, "--role", "admin", "--node", node, "--stdin",
                         input=password + "\n")
    if rc == 0:
        d.ok("accounts", "grant", user, "sensitive")
    else:
        check("exists" in err, f"accounts add {user}: {err}")
    d.session = d.login(user, password)
    os.environ["LINLI_SESSION"] = d.session


def run(d, code, plugin="keeper"):
    """Run Lua code inside script plugin `plugin`; its results as {r1, r2, r3, n}."""
    return d.ok(plugin, "run", "--stdin", input=code)


_tags = iter(range(1, 1 << 30))


def probe(d, code, rule="probe"):
    """Run Lua code inside rule `rule` (one event); its results as {r1, r2, r3, n}."""
    tag = f"t{next(_tags)}"
    needle = f"{rule}: {rule} {tag} => "
    d.ok("publish", f"test/{rule}", js({"tag": tag, "code": code}))
    end = time.time() + 15
    while time.time() < end:
        for line in d.logtext().splitlines():
            if needle in line:
                return json.loads(line.split(needle, 1)[1])
        if f"{rule}:{tag}:" in d.logtext():  # the code raised: its error is logged
            raise TestFailure(f"rule {rule} failed on {code!r}:\n{d.logtext()[-3000:]}")
        time.sleep(0.05)
    raise TestFailure(f"rule {rule} never answered {code!r}:\n{d.logtext()[-3000:]}")


def refused(r, code, needle):
    """A result {r1 = nil, r2 = message, r3 = code}."""
    check(r.get("r1") is None, f"should be refused: {r}")
    eq(r.get("r3"), code, f"code ({r.get('r2')})")
    check(needle in r.get("r2", ""), f"{needle!r} not in {r.get('r2')!r}")
    return r["r2"]


def count(d, dataset):
    return d.ok("data", "query", dataset, "--limit", "1000")["count"]


def console_get(d, dataset, rid):
    return d.ok("data", "get", dataset, rid)


# ---------------------------------------------------------------------------------------


def case_plugin_and_rule_read_and_write_within_scope():
    rules = {"probe.lua": probe_rule(caps=("store.read:residents", "store.write:grids",
                                           "store.read:grids"))}
    with node(apps={"keeper.lua": keeper(caps=KEEPER_CAPS)}, rules=rules) as d:
        # The script plugin writes a record of its own id, and a new one with a fresh id.
        r = run(d, f"return linli.store_put('residents', {lua(RESIDENT)}, '{YUELAN}', 'r-1')")
        eq((r["r1"], r["r2"]), ("r-1", True), "put r-1: id, created")
        r = run(d, f"return linli.store_put('residents', {lua(RESIDENT)}, '{TIANEHU}')")
        fresh = r["r1"]
        check(r["r2"] is True and re.fullmatch(r"[0-9a-f]{16}-[0-9a-f]{10}", fresh),
              f"a time-ordered id with the node's: {r}")
        # The console sees what it wrote, in clear.
        c = console_get(d, "residents", "r-1")
        eq((c["id_number"], c["gender"]), (RESIDENT["id_number"], "male"), "stored")
        # Replaced whole; created is false.
        r = run(d, f"return linli.store_put('residents', {lua(dict(RESIDENT, gender='female'))},"
                   f" '{YUELAN}', 'r-1')")
        eq((r["r1"], r["r2"]), ("r-1", False), "replaced")
        # get: the record as a table and its scope (masked: no sensitive grant).
        r = run(d, "return linli.store_get('residents', 'r-1')")
        eq(r["r2"], YUELAN, "scope of r-1")
        eq({k: r["r1"][k] for k in MASKED}, MASKED, "sensitive fields masked")
        eq((r["r1"]["gender"], r["r1"]["birth_date"]), ("female", 631152000000),
           "fields in clear, a time as ms")
        r = run(d, f"return linli.store_get('residents', '{fresh}', '{TIANEHU}')")
        eq(r["r2"], TIANEHU, "get at its scope")
        refused(run(d, f"return linli.store_get('residents', 'r-1', '{TIANEHU}')"),
                "LINLI_ENOENT", f"residents: no record 'r-1' at scope {TIANEHU}")
        # Ids are unique per scope: TIANEHU may hold an r-1 of its own.
        r = run(d, f"return linli.store_put('residents', {lua(RESIDENT)}, '{TIANEHU}', 'r-1')")
        eq((r["r1"], r["r2"]), ("r-1", True), "the same id at another scope")
        refused(run(d, "return linli.store_get('residents', 'r-1')"), "LINLI_EINVAL",
                f"residents: 2 records have id 'r-1' in scope {STREET} (at {TIANEHU}, {YUELAN});"
                " give the scope of the one you mean")
        eq(run(d, f"return linli.store_delete('residents', 'r-1', '{TIANEHU}')")["r1"], True,
           "deleted at its scope")
        # The rule reads what the plugin wrote, and writes what the plugin then reads.
        r = probe(d, "local rec, scope = linli.store_get('residents', 'r-1')\n"
                     "return rec.gender, scope, rec.id_number")
        eq((r["r1"], r["r2"], r["r3"]), ("female", YUELAN, MASKED["id_number"]), "rule get")
        r = probe(d, f"return linli.store_put('grids', {lua(GRID)}, '{YUELAN}', 'g-1')")
        eq((r["r1"], r["r2"]), ("g-1", True), "rule put")
        r = run(d, "local g = linli.store_get('grids', 'g-1') return g.name, g.code")
        eq((r["r1"], r["r2"]), ("一网格", "g01"), "the plugin reads the rule's record")
        eq(console_get(d, "grids", "g-1")["name"], "一网格", "the console too")
        # A rule's read-modify-write.
        r = probe(d, "return linli.store_update('grids', 'g-1', function(old)\n"
                     "  old.population = (old.population or 0) + 5 return old end)")
        eq(r.get("r1"), True, f"rule update: {r}")
        eq(console_get(d, "grids", "g-1")["population"], 5, "updated")
        # Delete (the plugin may; then it is gone for everyone).
        r = run(d, "return linli.store_delete('residents', 'r-1')")
        eq(r["r1"], True, "deleted")
        refused(run(d, "return linli.store_delete('residents', 'r-1')"), "LINLI_ENOENT",
                "no record 'r-1'")
        refused(probe(d, "return linli.store_get('residents', 'r-1')"), "LINLI_ENOENT",
                "no record 'r-1'")
        rc, out, err = d.cli("data", "get", "residents", "r-1")
        check(rc == 1 and "no record" in err, f"the console no longer sees r-1: {err}")
        eq(count(d, "residents"), 1, "one resident left")
        # A bad argument type is a Lua error in the script, with its line.
        rc, out, err = d.cli("keeper", "run", "--stdin", input="return linli.store_get({}, 'x')")
        check(rc == 1 and "keeper:1: bad argument #1 to" in err and "store_get" in err, err)
        rc, out, err = d.cli("keeper", "run", "--stdin",
                             input="return linli.store_put('residents', 'not a table')")
        check(rc == 1 and "bad argument #2 to" in err and "(table expected" in err, err)
        # A record that cannot be converted names the path of the bad value.
        refused(run(d, "return linli.store_put('residents', { name = 'x', f = print },"
                       f" '{YUELAN}')"), "LINLI_ETYPE", "store_put residents: the record: "
                "value.f: cannot convert a function")
        refused(run(d, f"return linli.store_put('residents', {{ 1, 2 }}, '{YUELAN}')"),
                "LINLI_EINVAL", "store_put residents: the record must be a map")
        # Not while the file loads.
        early = os.path.join(d.dir, "early.lua")
        write(early, "local ok, err = pcall(linli.store_get, 'residents', 'x')\nEARLY = err\n" +
              keeper("early", caps=KEEPER_CAPS))
        d.ok("plugins", "install", early, "--grant")
        check("linli.store_get: not available while the file loads" in
              run(d, "return EARLY", plugin="early")["r1"], "refused while loading")


def case_rule_outside_its_scope_is_refused_like_a_c_plugin():
    # The city's node stores residents in two streets; the street node then runs on a copy
    # (whose first administrator, `admin`, is then the city's: it reads every audit entry).
    keep = tempfile.mkdtemp(prefix="linli-it-keep-")
    try:
        with node("hefei", "city") as dd:
            for scope, rid in ((YUELAN, "mine"), (OTHER, "theirs")):
                dd.ok("data", "put", "residents", "--scope", scope, "--id", rid, js(RESIDENT))
            eq(dd.stop(), 0, "the city's node stops")
            shutil.copytree(dd.data, os.path.join(keep, "data"))
        e = Daemon()
        shutil.copytree(os.path.join(keep, "data"), e.data)
    finally:
        shutil.rmtree(keep, ignore_errors=True)
    rules = {"probe.lua": probe_rule(caps=("store.read:residents", "store.write:residents"))}
    with node(STREET, "street", d=e, rules=rules, so=("tp_store",)) as d:
        # Its own subtree: fine. The sibling street's record does not exist for it.
        r = probe(d, "return linli.store_get('residents', 'mine')")
        eq(r["r2"], YUELAN, "own record")
        msg = refused(probe(d, "return linli.store_get('residents', 'theirs')"), "LINLI_ENOENT",
                      f"no record 'theirs' in scope {STREET}")
        check("other" not in msg, f"names no foreign scope: {msg}")
        r = probe(d, "local rows = linli.store_scan{ dataset = 'residents' }\n"
                     "local ids = {} for i, row in ipairs(rows) do ids[i] = row.id end\n"
                     "return ids")
        eq(r["r1"], ["mine"], "a scan never shows a sibling's record")
        # Naming a sibling's or a parent's scope is refused, as it is for a C plugin:
        # the same code, the same message but for who is refused.
        same = lambda m: m.replace("plugin 'tp_store'", "rule 'probe'")  # noqa: E731
        for scope in (OTHER, "hefei/baohe/other", DISTRICT, "hefei"):
            calls = [
                (f"return linli.store_get('residents', 'theirs', '{scope}')",
                 ("get", "residents", "theirs", scope)),
                (f"return linli.store_put('residents', {lua(RESIDENT)}, '{scope}')",
                 ("put", "residents", scope, "-", js(RESIDENT))),
                (f"return linli.store_scan{{ dataset = 'residents', scope = '{scope}' }}",
                 ("scan", "residents", f"scope={scope}")),
                (f"return linli.store_delete('residents', 'theirs', '{scope}')",
                 ("del", "residents", "theirs", scope)),
                ("return linli.store_update('residents', 'theirs', function(o) return 'keep' end,"
                 f" '{scope}')", ("update", "residents", "theirs", scope, "keep")),
            ]
            for code, cargs in calls:
                r = probe(d, code)
                msg = refused(r, "LINLI_EPERM", f"rule 'probe' of {STREET} may not act on "
                                                f"{scope}: outside its jurisdiction")
                c = d.ok("tp_store", *cargs)
                eq((c["name"], same(c["error"])), ("LINLI_EPERM", msg),
                   f"the C plugin is refused alike ({cargs[0]} on {scope})")
        # A sibling's id is free here: taking it tells nothing of the sibling.
        r = probe(d, f"return linli.store_put('residents', {lua(RESIDENT)}, '{YUELAN}',"
                     " 'theirs')")
        eq((r["r1"], r["r2"]), ("theirs", True), f"created: {r}")
        eq(probe(d, "return linli.store_delete('residents', 'theirs')").get("r1"), True,
           "and deleted, found by id within its subtree")
        # Every refusal is audited as the rule's (at the scope it aimed at: read as the
        # city's administrator), and logged under its name.
        d.login()
        denied = [(a["action"], a.get("detail", "")) for a in d.ok("audit", "--limit", "1000")
                  if a.get("via", a["who"]) == "rule:probe" and a["result"] == "denied"]
        for scope in (OTHER, DISTRICT, "hefei"):
            for action in ("data.read", "data.write", "data.delete"):
                check(any(a == action and f"may not act on {scope}:" in det
                          for a, det in denied), f"{action} on {scope} not audited: {denied}")
        log = d.logtext()
        check(f"probe: store_get residents: rule 'probe' of {STREET} may not act on {OTHER}"
              in log, "the refusal is logged under the rule's name")
        # Nothing changed, here or in the sibling street.
        eq(count(d, "residents"), 2, "the city sees both residents")
        for rid in ("mine", "theirs"):
            c = console_get(d, "residents", rid)
            eq((c["gender"], c["residence_type"]), ("male", "registered"), f"{rid} intact")


def case_undeclared_dataset_refused():
    rules = {"probe.lua": probe_rule(caps=("store.read:residents", "store.read:accounts",
                                           "store.write:audit"))}
    with node(apps={"keeper.lua": keeper(caps=KEEPER_CAPS)}, rules=rules) as d:
        d.ok("data", "put", "residents", "--scope", YUELAN, "--id", "r-1", js(RESIDENT))
        d.ok("data", "put", "businesses", "--scope", YUELAN, "--id", "b-1",
             js({"name": "小店", "credit_code": "91340100MA2N0XXX1X",
                 "kind": "individual_business"}))
        eq(probe(d, "return linli.store_get('residents', 'r-1')")["r2"], YUELAN, "declared")
        # A dataset the rule did not declare, or declared for reading only.
        refused(probe(d, "return linli.store_get('businesses', 'b-1')"), "LINLI_EPERM",
                "rule 'probe' holds no granted capability store.read:businesses")
        refused(probe(d, "return linli.store_scan{ dataset = 'grids' }"), "LINLI_EPERM",
                "rule 'probe' holds no granted capability store.read:grids")
        refused(probe(d, f"return linli.store_put('residents', {lua(RESIDENT)}, '{YUELAN}')"),
                "LINLI_EPERM", "rule 'probe' holds no granted capability store.write:residents")
        refused(probe(d, "return linli.store_delete('residents', 'r-1')"), "LINLI_EPERM",
                "store.write:residents")
        refused(probe(d, "return linli.store_update('residents', 'r-1', function(o) return o "
                         "end)"), "LINLI_EPERM", "store.write:residents")
        # The kernel's own datasets are out of reach whatever the capabilities.
        refused(probe(d, "return linli.store_get('accounts', 'admin')"), "LINLI_EPERM",
                "store_get: dataset 'accounts' is kept by the kernel itself")
        refused(probe(d, "return linli.store_put('audit', { x = 1 })"), "LINLI_EPERM",
                "kept by the kernel itself")
        # The same for the script plugin.
        refused(run(d, "return linli.store_get('businesses', 'b-1')"), "LINLI_EPERM",
                "plugin 'keeper' holds no granted capability store.read:businesses")
        refused(run(d, "return linli.store_put('incidents', { title = 't' },"
                       f" '{YUELAN}/g01')"), "LINLI_EPERM",
                "plugin 'keeper' holds no granted capability store.write:incidents")
        refused(run(d, "return linli.store_scan{ dataset = 'sessions' }"), "LINLI_EPERM",
                "kept by the kernel itself")
        refused(run(d, "return linli.store_get('nosuch', 'x')"), "LINLI_EPERM",
                "no granted capability store.read:nosuch")
        denied = {(a.get("via", a["who"]), a["action"], a.get("object")) for a in
                  d.ok("audit", "--limit", "1000") if a["result"] == "denied"}
        for want in (("rule:probe", "data.read", "businesses"),
                     ("rule:probe", "data.write", "residents"),
                     ("plugin:keeper", "data.read", "businesses"),
                     ("plugin:keeper", "data.write", "incidents")):
            check(want in denied, f"{want} not audited: {denied}")
        # Capabilities a rule declares are checked by `rules check`.
        bad = probe_rule("bad", caps=("store.read",))
        rc, out, err = d.cli("rules", "check", "bad.lua", "--stdin", input=bad)
        check(rc == 1 and "'store.read' needs an argument" in err, err)
        bad = probe_rule("bad", caps=("sensitive:Not-a-name",))
        rc, out, err = d.cli("rules", "check", "bad.lua", "--stdin", input=bad)
        check(rc == 1 and "'Not-a-name' is not a name" in err, err)
        # Nothing changed.
        eq(console_get(d, "businesses", "b-1")["name"], "小店", "b-1 intact")
        eq(count(d, "residents"), 1, "residents")


def case_sensitive_fields_masked_without_the_grant():
    rules = {"probe.lua": probe_rule(caps=("store.read:residents", "store.write:residents")),
             "seer.lua": probe_rule("seer", caps=("store.read:residents",
                                                  "sensitive:residents")),
             "wide.lua": probe_rule("wide", caps=("store.read:residents", "sensitive"))}
    with node(rules=rules) as d:
        d.ok("data", "put", "residents", "--scope", YUELAN, "--id", "r-1", js(RESIDENT))
        code = "local r = linli.store_get('residents', 'r-1') return r.name, r.id_number, r.phone"
        r = probe(d, code)
        eq((r["r1"], r["r2"], r["r3"]), (MASKED["name"], MASKED["id_number"], MASKED["phone"]),
           "masked without the grant")
        for rule in ("seer", "wide"):
            r = probe(d, code, rule=rule)
            eq((r["r1"], r["r2"], r["r3"]),
               (RESIDENT["name"], RESIDENT["id_number"], RESIDENT["phone"]), f"{rule} sees all")
        scan = ("local rows = linli.store_scan{ dataset = 'residents' }\n"
                "return rows[1].record.id_number, #rows")
        eq(probe(d, scan)["r1"], MASKED["id_number"], "a scan masks too")
        eq(probe(d, scan, rule="seer")["r1"], RESIDENT["id_number"], "a scan with the grant")
        # A filter on a sensitive field would tell its masked digits: it needs the grant.
        filt = ("return linli.store_scan{{ dataset = 'residents', where = {{ id_number = '{}' }} }}")
        for v in (RESIDENT["id_number"], "340104199001019999"):
            refused(probe(d, filt.format(v)), "LINLI_EPERM",
                    "store_scan residents: field 'id_number' is sensitive: filtering on it needs "
                    "the grant to read it in clear")
        hits = "local rows = assert(" + filt.format(RESIDENT["id_number"])[7:] + ") return #rows"
        eq(probe(d, hits, rule="seer")["r1"], 1, "with the grant: a hit")
        # An update without the grant sees the masks and never writes them back.
        r = probe(d, "local seen\n"
                     "local ok, err = linli.store_update('residents', 'r-1', function(old)\n"
                     "  seen = old.id_number old.gender = 'female' return old end)\n"
                     "return ok, seen, err")
        eq((r["r1"], r["r2"]), (True, MASKED["id_number"]), f"the function saw the mask: {r}")
        c = console_get(d, "residents", "r-1")
        eq((c["gender"], c["name"], c["id_number"], c["phone"]),
           ("female", RESIDENT["name"], RESIDENT["id_number"], RESIDENT["phone"]),
           "stored values kept")
        # A sensitive field it changes is written as it left it.
        probe(d, "return linli.store_update('residents', 'r-1', function(old)\n"
                 "  old.name = '李四' old.phone = nil return old end)")
        c = console_get(d, "residents", "r-1")
        eq((c["name"], c["id_number"], "phone" in c), ("李四", RESIDENT["id_number"], False),
           "changed and dropped fields written")
        # Every read is audited, masked or allowed, under the rule's name.
        seen = {(a.get("via", a["who"]), a["result"], a.get("detail")) for a in d.ok("audit", "--limit", "1000")
                if a.get("action") == "data.read" and a.get("via", a["who"]).startswith("rule:")}
        for want in (("rule:probe", "masked", "r-1"), ("rule:seer", "allowed", "r-1"),
                     ("rule:wide", "allowed", "r-1"), ("rule:probe", "masked", "scan"),
                     ("rule:seer", "allowed", "scan"),
                     ("rule:probe", "denied", "filter on sensitive field id_number"),
                     ("rule:seer", "allowed", "filter on sensitive field id_number")):
            check(want in seen, f"{want} not audited: {seen}")


def case_read_modify_write_is_atomic():
    tally = """rule {
  name = "tally", on = "dev/water_meter/+/reading",
  capabilities = { "store.read:grids", "store.write:grids" },
  run = function(e)
    assert(linli.store_update("grids", e.grid, function(old)
      old = old or { code = e.grid, name = "auto" }
      old.population = (old.population or 0) + 1
      return old
    end, e.scope))
  end,
}
"""
    counter = keeper(caps=KEEPER_CAPS)
    rules = {"tally.lua": tally,
             "probe.lua": probe_rule(caps=("store.read:grids", "store.write:grids",
                                           "store.write:residents"))}
    with node(apps={"keeper.lua": counter}, rules=rules) as d:
        # The rule counts events; the plugin counts the same record from a timer meanwhile.
        r = run(d, """
DONE = 0
local t
t = linli.timer_add(10, 10, function()  -- at least lua.min_timer_ms (10)
  for i = 1, 2 do
    assert(linli.store_update("grids", "g-1", function(old)
      old = old or { code = "g-1", name = "auto" }
      old.population = (old.population or 0) + 1
      return old
    end, "%s"))
    DONE = DONE + 1
  end
  if DONE >= 200 then linli.timer_cancel(t) end
end)
return t""" % YUELAN)
        check(r["r1"], r)
        n = 150
        for i in range(n):
            d.ok("publish", f"dev/water_meter/m{i}/reading",
                 js({"grid": "g-1", "scope": YUELAN, "liters": i}))
        end = time.time() + 60
        while True:
            done = run(d, "return DONE")["r1"]
            pop = console_get(d, "grids", "g-1").get("population")
            if done >= 200 and pop == n + 200:
                break
            check(time.time() < end, f"never counted up: done {done}, population {pop}")
            time.sleep(0.1)
        eq(by_name(d.ok("rules", "list"))["tally"]["state"], "ready", "the rule is fine")
        # keep, delete, and a refusal with its own message and code.
        r = probe(d, "return linli.store_update('grids', 'g-1', function(old) return 'keep' end)")
        eq(r["r1"], True, "keep")
        r = probe(d, "return linli.store_update('grids', 'g-1', function(old)\n"
                     "  return nil, 'population frozen', 'LINLI_EBUSY' end)")
        refused(r, "LINLI_EBUSY", "population frozen")
        r = probe(d, "return linli.store_update('grids', 'g-1', function(old)\n"
                     "  return nil, 'no code given' end)")
        refused(r, "LINLI_EINVAL", "no code given")
        for ret, needle in (("nil", "returned nil: return a table, \"keep\" or \"delete\""),
                            ("'maybe'", "returned 'maybe'"), ("42", "returned number"),
                            ("{ 1, 2 }", "returned an array")):
            r = probe(d, "return linli.store_update('grids', 'g-1', function(old)"
                         f" return {ret} end)")
            refused(r, "LINLI_EINVAL", needle)
        # Writes inside the function are refused; reads are fine.
        r = probe(d, "local inner = {}\n"
                     "assert(linli.store_update('grids', 'g-1', function(old)\n"
                     "  inner.get = linli.store_get('grids', 'g-1').population\n"
                     "  local _, m, c = linli.store_put('grids', { code = 'x', name = 'x' },"
                     f" '{YUELAN}')\n"
                     "  inner.put = c inner.msg = m\n"
                     "  _, _, inner.delete = linli.store_delete('grids', 'g-1')\n"
                     "  _, _, inner.update = linli.store_update('grids', 'g-2', function()"
                     " return 'keep' end)\n"
                     "  return 'keep' end))\n"
                     "return inner")
        i = r["r1"]
        eq((i["get"], i["put"], i["delete"], i["update"]),
           (n + 200, "LINLI_ESTATE", "LINLI_ESTATE", "LINLI_ESTATE"), f"inside: {i}")
        check("not allowed inside a store_update callback" in i["msg"], i)
        # An error raised inside the function: nothing written, the error reaches the caller.
        r = probe(d, "local ok, err = pcall(linli.store_update, 'grids', 'g-1', function(old)\n"
                     "  old.population = 0\n"
                     "  error('changed my mind') end)\n"
                     "return ok, err")
        check(r["r1"] is False and "changed my mind" in r["r2"], r)
        # A function that loops: the rule is stopped by its budget, nothing is written.
        r = probe(d, "return linli.store_update('grids', 'g-1', function(old) return 'delete'"
                     " end, nil)")  # the deletion works (then the record comes back below)
        eq(r["r1"], True, "delete")
        rc, out, err = d.cli("data", "get", "grids", "g-1")
        check(rc == 1, "deleted")
        r = probe(d, f"return linli.store_put('grids', {lua(dict(GRID, population=7))},"
                     f" '{YUELAN}', 'g-1')")
        eq(r["r1"], "g-1", "back")
        d.ok("publish", "test/probe", js({"tag": "loop", "code":
             "return linli.store_update('grids', 'g-1', function(old)\n"
             "  old.population = 0 while true do end end)"}))
        wait_for(lambda: by_name(d.ok("rules", "list"))["probe"]["state"] == "faulted",
                 "the looping rule faulted", timeout=15)
        check("instruction budget exhausted" in by_name(d.ok("rules", "list"))["probe"]["problem"],
              d.ok("rules", "list"))
        eq(console_get(d, "grids", "g-1")["population"], 7, "nothing written by the stopped call")
        d.ok("rules", "reload", "probe")
        eq(probe(d, "return linli.store_get('grids', 'g-1').population")["r1"], 7, "reloaded")
        d.stop()
        d.start()
        see_all(d, "reader_street", STREET)
        eq(console_get(d, "grids", "g-1")["population"], 7, "after a restart")


def case_schema_violations_are_reported_and_nothing_stored():
    rules = {"probe.lua": probe_rule(caps=("store.read:residents", "store.write:residents",
                                           "store.read:grids", "store.write:grids"))}
    with node(apps={"keeper.lua": keeper(caps=KEEPER_CAPS)}, rules=rules) as d:
        d.ok("data", "put", "residents", "--scope", YUELAN, "--id", "r-1", js(RESIDENT))
        cases = [
            ({"name": "x"}, "residents: field 'id_number': required"),
            (dict(RESIDENT, gender="x"),
             "residents: field 'gender': 'x' is not one of male, female"),
            (dict(RESIDENT, age=3), "residents: field 'age': not in the schema of residents"),
            (dict(RESIDENT, birth_date="yesterday"),
             "residents: field 'birth_date': 'yesterday' is not an RFC 3339 time"),
        ]
        for rec, want in cases:
            for rid in ("nil", "'r-1'", "'r-2'"):
                code = f"return linli.store_put('residents', {lua(rec)}, '{YUELAN}', {rid})"
                refused(run(d, code), "LINLI_ESCHEMA", want)
                refused(probe(d, code), "LINLI_ESCHEMA", want)
        # A scope above the dataset's level.
        refused(probe(d, f"return linli.store_put('residents', {lua(RESIDENT)})"),
                "LINLI_EINVAL", "residents records live at the community level")
        # Through read-modify-write: the whole update is refused.
        d.ok("data", "put", "grids", "--scope", YUELAN, "--id", "g-1",
             js(dict(GRID, population=3)))
        refused(probe(d, "return linli.store_update('grids', 'g-1', function(old)\n"
                         "  old.population = 'many' return old end)"), "LINLI_ESCHEMA",
                "grids: field 'population'")
        refused(run(d, "return linli.store_update('grids', 'g-2', function(old)\n"
                       f"  return {{ name = 'no code' }} end, '{YUELAN}')"), "LINLI_ESCHEMA",
                "grids: field 'code': required")
        refused(run(d, "return linli.store_update('grids', 'g-1', function(old)\n"
                       "  old.population = -1 return old end)"), "LINLI_ESCHEMA",
                "grids: field 'population'")
        # Nothing of it was stored; what was there is intact.
        eq(count(d, "residents"), 1, "residents")
        c = console_get(d, "residents", "r-1")
        eq((c["gender"], c["id_number"]), ("male", RESIDENT["id_number"]), "r-1 intact")
        eq(console_get(d, "grids", "g-1")["population"], 3, "g-1 intact")
        eq(count(d, "grids"), 1, "grids")


def case_scan_pages_filters_and_budget():
    scanner = keeper("scanner", caps=("store.read:residents",),
                     extra="limits = { instructions = 60000 },")
    small = keeper("small", caps=("store.read:residents", "store.write:residents"),
                   extra="limits = { memory_kb = 256 },")
    rules = {"probe.lua": probe_rule(caps=("store.read:residents",))}
    with node(apps={"keeper.lua": keeper(caps=KEEPER_CAPS), "scanner.lua": scanner,
                    "small.lua": small}, rules=rules) as d:
        r = run(d, f"""
local base = {lua(dict(RESIDENT, house="h-1"))}
local n = 0
for i = 1, 300 do
  base.name = "居民" .. i
  base.residence_type = i % 3 == 0 and "floating" or "registered"
  assert(linli.store_put("residents", base, i % 5 == 0 and "{TIANEHU}" or "{YUELAN}"))
  n = n + 1
end
return n""")
        eq(r["r1"], 300, "300 residents")
        # Every record, in pages of 70, following the cursors.
        r = run(d, """
local cursor, ids, pages = nil, {}, {}
repeat
  local rows
  rows, cursor = assert(linli.store_scan{ dataset = "residents", limit = 70, cursor = cursor })
  pages[#pages + 1] = #rows
  for _, row in ipairs(rows) do ids[#ids + 1] = row.scope .. " " .. row.id end
until not cursor
return pages, ids""")
        eq(r["r1"], [70, 70, 70, 70, 20], "page sizes")
        ids = r["r2"]
        eq(len(set(ids)), 300, "every record once")
        eq(ids, sorted(ids, key=lambda s: (s.split(" ")[0] + "/", s.split(" ")[1])),
           "in key order")
        # A row: id, scope and the (masked) record.
        r = run(d, "local rows, cursor = linli.store_scan{ dataset = 'residents', limit = 1 }\n"
                   "return rows[1], #rows, cursor")
        row = r["r1"]
        eq(sorted(row), ["id", "record", "scope"], "a row's fields")
        check(row["record"]["name"].startswith("居") and row["record"]["name"].endswith("*"),
              row)
        check(isinstance(r["r3"], str) and r["r3"], "a cursor for the next page")
        # Filters on indexed fields, with a scope.
        r = run(d, "local rows = assert(linli.store_scan{ dataset = 'residents', limit = 1000,\n"
                   "  where = { residence_type = 'floating' } }) return #rows")
        eq(r["r1"], 100, "floating")
        r = run(d, "local rows = assert(linli.store_scan{ dataset = 'residents',"
                   f" scope = '{TIANEHU}', where = {{ residence_type = 'floating',"
                   " house = 'h-1' } }) return #rows")
        eq(r["r1"], 20, "two filters and a scope")
        # A filter's value may be a string, a number or a boolean.
        d.ok("data", "put", "grids", "--scope", YUELAN, "--id", "g-5", js(dict(GRID, code="g5")))
        d.ok("data", "put", "households", "--scope", YUELAN, "--id", "h-1",
             js({"head_name": "张三", "head_id_number": RESIDENT["id_number"], "house": "h-1",
                 "low_income": True}))
        d.ok("data", "put", "alarms", "--scope", YUELAN, "--id", "a-1",
             js({"topic": "dev/smoke/s1/event/alarm", "type": "smoke", "source": "device:s1",
                 "severity": "major", "active": True, "acknowledged": False,
                 "first_at": "2026-01-01T00:00:00Z"}))
        for ds, where, n in (("grids", "code = 'g5'", 1), ("households", "low_income = true", 1),
                             ("households", "low_income = 'true'", 1),
                             ("households", "low_income = false", 0),
                             ("alarms", "first_at = 1767225600000", 1),
                             ("alarms", "first_at = '2026-01-01T08:00:00+08:00'", 1),
                             ("alarms", "first_at = 1767225600001", 0)):
            r = run(d, f"local rows = assert(linli.store_scan{{ dataset = '{ds}',"
                       f" where = {{ {where} }} }}) return #rows")
            eq(r["r1"], n, f"{ds} where {where}")
        # Paging with a filter (the cursor belongs to the query).
        r = run(d, """
local cursor, n = nil, 0
repeat
  local rows
  rows, cursor = assert(linli.store_scan{ dataset = "residents", limit = 30, cursor = cursor,
    where = { residence_type = "registered" } })
  n = n + #rows
until not cursor
return n""")
        eq(r["r1"], 200, "registered, over pages")
        # Refusals name what is wrong; a malformed query is a Lua error.
        refused(run(d, "return linli.store_scan{ dataset = 'residents', where = { gender = 'male' } }"),
                "LINLI_EINVAL", "not indexed")
        refused(run(d, "return linli.store_scan{ dataset = 'residents', limit = 10001 }"),
                "LINLI_EINVAL", "limit 10001 is above 10000")
        refused(run(d, "return linli.store_scan{ dataset = 'residents',"
                       " cursor = 'bm90IGEgY3Vyc29y' }"),
                "LINLI_EINVAL", "does not belong to this query")
        many = ", ".join(f"f{i} = 1" for i in range(9))
        refused(run(d, f"return linli.store_scan{{ dataset = 'residents', where = {{ {many} }} }}"),
                "LINLI_EINVAL", "more than 8 filters")
        for code, needle in (("{ datset = 'residents' }", "unknown query field 'datset'"),
                             ("{ }", "dataset must be a string"),
                             ("{ dataset = 'residents', limit = -1 }", "limit must be an integer"),
                             ("{ dataset = 'residents', where = { x = {} } }",
                              "where.x: a string, number or boolean"),
                             ("{ dataset = 'residents', where = 'x' }", "where must be a table")):
            r = run(d, f"return pcall(function() return linli.store_scan{code} end)")
            check(r["r1"] is False and needle in r["r2"], f"{code}: {r}")
        # A large result is charged to the script's budget, row by row.
        r = probe(d, "return #linli.store_scan{ dataset = 'residents', limit = 300 }")
        eq(r["r1"], 300, "the rule's page")
        units = d.ok("rules", "show", "probe")["stats"]["last_units"]
        check(units >= 300 * 20, f"a page of 300 rows cost {units} units")
        r = run(d, "return #linli.store_scan{ dataset = 'residents', limit = 300 }", "scanner")
        eq(r["r1"], 300, "within the scanner's budget (60000 units per call)")
        rc, out, err = d.cli("scanner", "run", "--stdin", input="""
local n = 0
for i = 1, 1000 do n = n + #linli.store_scan{ dataset = "residents", limit = 300 } end
return n""")
        check(rc == 1 and "instruction budget exhausted" in err, err)
        info = d.ok("plugins", "info", "scanner")
        eq(info["state"], "faulted", "the scanner faulted")
        check("instruction budget exhausted" in info["script"]["log"][-1]["message"], info)
        # A page that does not fit in the script's memory stops it, and nothing leaks.
        eq(run(d, "return #linli.store_scan{ dataset = 'residents', limit = 5 }", "small")["r1"],
           5, "a small page fits")
        rc, out, err = d.cli("small", "run", "--stdin", input="""
local pages = {}
for i = 1, 100 do pages[i] = linli.store_scan{ dataset = "residents", limit = 300 } end""")
        check(rc == 1 and "memory limit reached" in err, err)
        eq(d.ok("plugins", "info", "small")["state"], "faulted", "out of memory: faulted")
        d.ok("plugins", "reload", "small")
        # The same inside an update function: nothing is written.
        rid = run(d, "return linli.store_scan{ dataset = 'residents', limit = 1 }[1].id")["r1"]
        rc, out, err = d.cli("small", "run", "--stdin", input=f"""
return linli.store_update("residents", "{rid}", function(old)
  old.gender = "female"
  local t = {{}}
  for i = 1, 1e7 do t[i] = string.rep("x", 100) .. i end
  return old
end)""")
        check(rc == 1 and "memory limit reached" in err, err)
        eq(console_get(d, "residents", rid)["gender"], "male", "nothing written")
        # The others go on.
        eq(run(d, "return #linli.store_scan{ dataset = 'residents', limit = 300 }")["r1"], 300,
           "keeper unharmed")


def case_on_commit_runs_once_the_batch_is_durable():
    rules = {"probe.lua": probe_rule(caps=("store.read:grids", "store.write:grids"))}
    with node(apps={"keeper.lua": keeper(caps=KEEPER_CAPS)}, rules=rules) as d:
        # Nothing written in this batch: nothing to wait for.
        refused(run(d, "return linli.store_on_commit(function() print('never') end)"),
                "LINLI_ESTATE", "store_on_commit: no write is pending (what was written is "
                "committed already)")
        # After a write: true at once, fn(true) once the batch has committed (after the
        # command's code returned), once for each call.
        put = "assert(linli.store_put('grids', {rec}, '{scope}', '{rid}'))\n"
        r = run(d, put.format(rec=lua(GRID), scope=YUELAN, rid="g-1") +
                "COMMITS = {}\n"
                "local function note(...)\n"
                "  COMMITS[#COMMITS + 1] = { n = select('#', ...), ok = (...),\n"
                "    seen = linli.store_get('grids', 'g-1') ~= nil }\n"
                "end\n"
                "local a, b = linli.store_on_commit(note), linli.store_on_commit(note)\n"
                "return a, b, #COMMITS")
        eq((r["r1"], r["r2"], r["r3"]), (True, True, 0), "registered, not yet called")
        eq(run(d, "return COMMITS")["r1"], [{"n": 1, "ok": True, "seen": True}] * 2,
           "each fn called once, with true")
        eq(run(d, "return #COMMITS")["r1"], 2, "and never again")
        # A rule alike: its fn runs after its run has returned.
        r = probe(d, put.format(rec=lua(dict(GRID, code="g02")), scope=YUELAN, rid="g-2") +
                  "return linli.store_on_commit(function(...)\n"
                  "  print('probe committed', select('#', ...), ...) end)")
        eq(r["r1"], True, "the rule's call")
        d.wait_log("probe: probe committed\t1\ttrue")
        log = d.logtext()
        check(log.index("probe: probe t") < log.index("probe: probe committed"), log[-2000:])
        refused(probe(d, "return linli.store_on_commit(function() end)"), "LINLI_ESTATE",
                "no write is pending")
        # Durable when fn ran: still there after linlid is killed.
        d.proc.kill()
        d.proc.wait()
        d.start()
        see_all(d, "reader_street", STREET)
        eq(console_get(d, "grids", "g-1")["name"], GRID["name"], "g-1 after a kill")
        eq(console_get(d, "grids", "g-2")["code"], "g02", "g-2 after a kill")
        # fn runs like any handler: one that never ends faults its script, after the commit.
        run(d, put.format(rec=lua(GRID), scope=YUELAN, rid="g-3") +
            "return linli.store_on_commit(function() while true do end end)")
        wait_for(lambda: by_name(d.ok("plugins", "list"))["keeper"]["state"] == "faulted",
                 "keeper faulted", timeout=15)
        d.ok("plugins", "reload", "keeper")
        # Bad arguments raise, naming them.
        for code, needle in (
                ("linli.store_on_commit()", "bad argument #1 to 'store_on_commit' (function "
                                            "expected, got no value)"),
                ("linli.store_on_commit('print')", "bad argument #1 to 'store_on_commit' "
                                                   "(function expected, got string)"),
                ("linli.store_on_commit(print, 'junk')", "bad argument #2 to 'store_on_commit' "
                                                         "(no value expected, got string: it "
                                                         "takes only fn)")):
            rc, out, err = d.cli("keeper", "run", "--stdin", input=code)
            check(rc == 1 and needle in err, f"{code}: {err}")


def case_on_commit_of_a_stopped_script_is_never_called():
    rules = {"probe.lua": probe_rule(caps=("store.read:grids", "store.write:grids"))}
    with node(apps={"keeper.lua": keeper(caps=KEEPER_CAPS)}, rules=rules) as d:
        # Each writes, asks to hear of the commit, then breaks its budget in the same call:
        # it is faulted (everything it made released) before the batch commits.
        code = ("assert(linli.store_put('grids', {rec}, '{scope}', '{rid}'))\n"
                "assert(linli.store_on_commit(function() print('{who} late') end))\n"
                "while true do end")
        rc, out, err = d.cli("keeper", "run", "--stdin",
                             input=code.format(rec=lua(GRID), scope=YUELAN, rid="g-1",
                                               who="keeper"))
        check(rc == 1 and "instruction budget" in err, err)
        d.ok("publish", "test/probe", js({"tag": "spin", "code": code.format(
            rec=lua(dict(GRID, code="g02")), scope=YUELAN, rid="g-2", who="probe")}))
        wait_for(lambda: by_name(d.ok("rules", "list"))["probe"]["state"] == "faulted",
                 "probe faulted", timeout=15)
        eq(by_name(d.ok("plugins", "list"))["keeper"]["state"], "faulted", "keeper")
        # Their writes stay made (a fault undoes nothing stored) and are committed ...
        eq(count(d, "grids"), 2, "both records")
        d.ok("data", "put", "grids", "--scope", YUELAN, "--id", "g-9", js(GRID))
        time.sleep(0.5)
        # ... but neither fn was ever called.
        log = d.logtext()
        check("keeper late" not in log and "probe late" not in log, log[-3000:])
        # Started again, both hear their commits.
        d.ok("plugins", "reload", "keeper")
        d.ok("rules", "reload", "probe")
        run(d, "assert(linli.store_put('grids', { code = 'g4', name = 'x' }, "
               f"'{YUELAN}', 'g-4'))\n"
               "return linli.store_on_commit(function(ok) print('keeper again', ok) end)")
        probe(d, "assert(linli.store_put('grids', { code = 'g5', name = 'x' }, "
                 f"'{YUELAN}', 'g-5'))\n"
                 "return linli.store_on_commit(function(ok) print('probe again', ok) end)")
        d.wait_log("keeper: keeper again\ttrue")
        d.wait_log("probe: probe again\ttrue")


def case_range_filters():
    with node(apps={"keeper.lua": keeper(caps=KEEPER_CAPS)}) as d:
        for i, t in enumerate(("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z",
                               "2026-01-03T00:00:00Z", "2099-01-01T00:00:00Z")):
            d.ok("data", "put", "alarms", "--scope", YUELAN if i % 2 else TIANEHU, "--id", f"a-{i}",
                 js({"topic": "dev/smoke/s1/event/alarm", "type": "smoke",
                     "source": "device:s1", "severity": "major", "active": bool(i),
                     "acknowledged": False, "first_at": t}))

        def ids(query):
            r = run(d, f"""
local ids, cursor = {{}}, nil
repeat
  local rows
  rows, cursor = assert(linli.store_scan{{ dataset = "alarms", limit = 1, cursor = cursor,
    {query} }})
  for _, row in ipairs(rows) do ids[#ids + 1] = row.id end
until not cursor
return ids""")
            return r["r1"] or []

        # Positional {field, op, value} and named entries; numbers, RFC 3339 and "now".
        eq(ids("range = { { 'first_at', '<', 'now' } }"), ["a-0", "a-1", "a-2"], "before now")
        eq(ids("range = { { field = 'first_at', op = '>=', value = 1767312000000 } }"),
           ["a-1", "a-2", "a-3"], "from 2026-01-02")
        eq(ids("range = { { 'first_at', '>', '2026-01-01T08:00:00+08:00' },"
               " { 'first_at', '<=', '2026-01-03T00:00:00Z' } }"), ["a-1", "a-2"], "between")
        eq(ids(f"scope = '{YUELAN}', range = {{ {{ 'first_at', '<', 'now' }} }}"), ["a-1"],
           "within yuelan")
        eq(ids("where = { active = true }, range = { { 'first_at', '<', 'now' } }"),
           ["a-2", "a-1"], "with an equality: by its index (scope, then id)")
        # Refusals: returned like the C member's, or a Lua error for a malformed query.
        refused(run(d, "return linli.store_scan{ dataset = 'alarms',"
                       " range = { { 'first_at', '=<', 1 } } }"),
                "LINLI_EINVAL", "field 'first_at': '=<' is not a range operator")
        refused(run(d, "return linli.store_scan{ dataset = 'alarms',"
                       " range = { { 'severity', '<', 'major' } } }"),
                "LINLI_EINVAL", "field 'severity' is of type enum: ranges")
        refused(run(d, "return linli.store_scan{ dataset = 'residents',"
                       " range = { { 'id_number', '>', '1' } } }"),
                "LINLI_EPERM", "field 'id_number' is sensitive")
        many = ", ".join("{ 'first_at', '>', 1 }" for _ in range(9))
        refused(run(d, f"return linli.store_scan{{ dataset = 'alarms', range = {{ {many} }} }}"),
                "LINLI_EINVAL", "more than 8 filters in range")
        for code, needle in (("{ dataset = 'alarms', range = 'x' }", "range must be a list"),
                             ("{ dataset = 'alarms', range = { 'x' } }",
                              "range[1] must be a table {field, op, value}"),
                             ("{ dataset = 'alarms', range = { { 'first_at', '<' } } }",
                              "range[1].value must be a string or a number"),
                             ("{ dataset = 'alarms', range = { { 'first_at', 1, 2 } } }",
                              "range[1].op must be a string")):
            r = run(d, f"return pcall(function() return linli.store_scan{code} end)")
            check(r["r1"] is False and needle in r["r2"], f"{code}: {r}")


def case_store_watch_and_schema():
    apps = {"keeper.lua": keeper(caps=KEEPER_CAPS),
            "reader.lua": keeper("reader", caps=("catalog.read", "store.read:residents"))}
    with node(apps=apps) as d:
        r = run(d, "HEARD = {}\n"
                   "return linli.store_watch('residents', function(c)\n"
                   "  HEARD[#HEARD + 1] = c.kind .. ' ' .. c.dataset .. ' ' .. c.scope .. ' ' .. c.id\n"
                   "end)")
        wid = r["r1"]
        check(isinstance(wid, int) and wid > 0, f"an id: {r}")
        info = d.ok("plugins", "info", "keeper")["resources"]
        check({"kind": "store watch", "what": f"store watch {wid} of residents"} in info, info)
        d.ok("data", "put", "residents", "--scope", YUELAN, "--id", "r-1", js(RESIDENT))
        d.ok("data", "put", "residents", "--scope", YUELAN, "--id", "r-1",
             js(dict(RESIDENT, gender="female")))
        d.ok("data", "del", "residents", "r-1")
        # The script's own write outside its watcher counts too.
        run(d, f"return linli.store_put('residents', {lua(RESIDENT)}, '{TIANEHU}', 'own')")
        def heard():
            return run(d, "return HEARD")["r1"] or []

        wait_for(lambda: len(heard()) >= 4, "four changes")
        eq(heard(), [f"created residents {YUELAN} r-1", f"updated residents {YUELAN} r-1",
                   f"deleted residents {YUELAN} r-1", f"created residents {TIANEHU} own"],
           "told after each commit, in order")
        r = run(d, f"return linli.store_unwatch({wid})")
        eq(r["r1"], True, "unwatched")
        refused(run(d, f"return linli.store_unwatch({wid})"), "LINLI_ENOENT", "no such watch")
        d.ok("data", "put", "residents", "--scope", YUELAN, "--id", "r-2", js(RESIDENT))
        d.ok("data", "put", "residents", "--scope", YUELAN, "--id", "r-3", js(RESIDENT))
        eq(len(heard()), 4, "nothing after unwatch")
        for ds, code, needle in (("businesses", "LINLI_EPERM",
                                  "holds no granted capability store.read:businesses"),
                                 ("sessions", "LINLI_EPERM", "kept by the kernel itself"),
                                 ("nope", "LINLI_ENOENT", "no dataset 'nope'")):
            refused(run(d, f"return linli.store_watch('{ds}', function() end)"), code, needle)
        r = run(d, "return pcall(linli.store_watch, 'residents')")
        check(r["r1"] is False and "function expected" in r["r2"], r)
        # A reload removes the old instance's watches.
        run(d, "return linli.store_watch('residents', function() end)")
        d.ok("plugins", "reload", "keeper")
        eq([x for x in d.ok("plugins", "info", "keeper")["resources"]
            if x["kind"] == "store watch"], [], "no watch after reload")
        # Schemas need catalog.read.
        refused(run(d, "return linli.dataset_schema('residents')"), "LINLI_EPERM",
                "holds no granted capability catalog.read")
        refused(run(d, "return linli.datasets()"), "LINLI_EPERM",
                "holds no granted capability catalog.read")
        s = run(d, "return linli.dataset_schema('residents')", "reader")["r1"]
        cat = d.ok("catalog", "show", "dataset", "residents")
        eq([f["name"] for f in s["fields"]], [f["name"] for f in cat["fields"]], "fields")
        eq({f["name"]: f["sensitive"] for f in s["fields"]}["id_number"], "id_number", "mask")
        eq((s["level"], s["sharing"]), (cat["level"], cat["sharing"]), "level and sharing")
        refused(run(d, "return linli.dataset_schema('apikeys')", "reader"), "LINLI_EPERM",
                "kept by the kernel itself")
        refused(run(d, "return linli.dataset_schema('nope')", "reader"), "LINLI_ENOENT",
                "no dataset 'nope'")
        names = [x["name"] for x in run(d, "return linli.datasets()", "reader")["r1"]]
        check("residents" in names and "apikeys" not in names, names)


def case_a_lost_batch_tells_no_watcher():
    """A batch lost to a full disk tells nothing: what a watch heard is exactly what was
    stored (a small tmpfs as the data dir; needs root)."""
    if os.geteuid() != 0:
        print("skipped: mounting a small tmpfs needs root")
        sys.exit(77)
    d = Daemon()
    os.makedirs(d.data)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", d.data],
                       capture_output=True, text=True)
    if r.returncode != 0:
        d.cleanup()
        print(f"skipped: cannot mount a tmpfs: {r.stderr.strip()}")
        sys.exit(77)
    try:
        caps = ("store.read:alarms", "store.write:alarms")
        with node(apps={"keeper.lua": keeper(caps=caps)}, d=d) as d:
            run(d, "HEARD = {}\n"
                   "return linli.store_watch('alarms', function(c) HEARD[#HEARD + 1] = c.id end)")
            fill = f"""
for i = 1, 100 do
  assert(linli.store_put("alarms", {{ type = "t", source = "plugin:e", severity = "major",
    active = true, acknowledged = false, first_at = 1, details = string.rep("m", 1000) }},
    "{YUELAN}"))
end
return true"""
            for _ in range(60):  # 100 KB a batch; the 2 MB fill long before
                run(d, fill)
                if "batch lost" in d.logtext():
                    break
            check("batch lost" in d.logtext() and "the disk is full" in d.logtext(),
                  "no batch was lost")
            heard = run(d, "return HEARD")["r1"]
            stored, cursor = [], None
            while True:
                q = d.ok("data", "query", "alarms", "--limit", "1000",
                         *(["--cursor", cursor] if cursor else []))
                stored += [x["id"] for x in q["records"]]
                cursor = q.get("cursor")
                if not cursor:
                    break
            check(len(stored) >= 100 and len(stored) % 100 == 0, f"{len(stored)} stored")
            eq(sorted(heard), sorted(stored), "heard exactly what was stored")
            print(f"  {len(stored)} stored and heard, then: a batch lost")
    finally:
        if d.proc and d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()
        subprocess.run(["umount", d.data])
        d.cleanup()


if __name__ == "__main__":
    sys.exit(main(dict(globals())))
