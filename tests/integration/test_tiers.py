"""Integration tests of the tier permission model: accounts, sessions, lockout,
masking, audit, and the permission matrix — all against a real linlid serving
the city of the shipped jurisdiction tree (two districts, each two streets of
two communities with grids)."""
import glob
import json
import os
import secrets
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import (LINLI, LINLID, SRC, Daemon, TestFailure, check, eq, main, session_in,  # noqa: E402
                     wait_for)

CITY = "hefei"
DIST = "hefei/baohe"
DIST2 = "hefei/shushan"
STREET = "hefei/baohe/binhu"
STREET2 = "hefei/baohe/fanhua"
COMM = "hefei/baohe/binhu/yuelan"
COMM2 = "hefei/baohe/binhu/qiming"
GRID = "hefei/baohe/binhu/yuelan/g01"
GRID2 = "hefei/baohe/binhu/yuelan/g02"
PW = "Tier-Test-Passw0rd"

RESIDENT = {"name": "张三", "id_number": "340104199001011234", "phone": "13812345678",
            "gender": "male"}


class city:
    def __init__(self, extra=""):
        self.d = Daemon(node=CITY, level="city",
                        extra=f'catalog_dir = "{SRC}/catalog";\n' + extra)

    def __enter__(self):
        return self.d.start()

    def __exit__(self, *exc):
        self.d.cleanup()


def as_(d, token, *args, input=None):
    """Run `linli --json ARGS` with another account's session."""
    return d.cli(*args, input=input, env={"LINLI_SESSION": token})


def denied(d, token, *args, input=None, name="LINLI_EPERM"):
    rc, out, err = as_(d, token, *args, input=input)
    check(rc == 1 and isinstance(out, dict) and out.get("name") == name,
          f"{args} should be {name}: rc {rc} {out} {err}")
    return out


def allowed(d, token, *args, input=None):
    rc, out, err = as_(d, token, *args, input=input)
    check(rc == 0, f"{args} should be allowed: {out} {err}")
    return out


def case_login_whoami_logout():
    with city() as d:
        me = d.ok("whoami")
        eq((me["user"], me["role"], me["scope"], me["level"]), ("admin", "admin", CITY, "city"),
           "whoami")
        tok = d.account("op1", "operator", node=COMM)
        me = allowed(d, tok, "whoami")
        eq((me["user"], me["role"], me["scope"]), ("op1", "operator", COMM), "op1")
        allowed(d, tok, "logout")
        out = denied(d, tok, "whoami", name="LINLI_EAUTH")
        check("unknown session" in out["error"], out)
        # No session at all: only login and help answer.
        env = {"LINLI_SESSION": ""}
        rc, out, _ = d.cli("status", env=env)
        eq(out["name"], "LINLI_EAUTH", "status without a session")
        check("not logged in" in out["error"], out)
        rc, out, _ = d.cli("help", env=env)
        eq(rc, 0, "help without a session")


def case_sessions_are_kept_by_the_daemons_node_id():
    """Two daemons both typed `ipc://./ctl.sock` from their own directories keep their own
    sessions in one session file; one daemon reached by two spellings is one; logout
    forgets it everywhere; the earlier file format is still read."""
    d1, d2 = Daemon(node=CITY, level="city"), Daemon(node=DIST, level="district", name="包河区")
    sfile = os.path.join(d1.dir, "one-person.json")

    def console(d, *args, addr="ipc://./ctl.sock", cwd=None, sf=sfile, inp=None):
        env = dict(os.environ, LINLI_SESSION_FILE=sf)
        env.pop("LINLI_SESSION", None)
        r = subprocess.run([os.path.abspath(LINLI), "--socket", addr, "--json", *args],
                           cwd=cwd or d.dir, input=inp, capture_output=True, text=True,
                           env=env, timeout=60)
        return r.returncode, json.loads(r.stdout) if r.stdout.strip() else None, r.stderr

    try:
        d1.write_config(node=CITY, level="city")
        d2.write_config(node=DIST, level="district", name="包河区")
        d1.start()
        d2.start()
        ids = {}
        for d in (d1, d2):
            rc, out, err = console(d, "login", d.admin, "--password-stdin", inp=d.password + "\n")
            eq(rc, 0, f"login: {err}")
            check(len(out["node_id"]) == 32 and "hefei" not in out["node_id"], out)
            eq(d.ok("status")["node_id"], out["node_id"], "status names the same id")
            ids[d] = out["node_id"]
        check(ids[d1] != ids[d2], "two daemons, two ids")
        # The same typed address from each directory: each its own daemon, neither logged out.
        eq(console(d1, "whoami")[1]["scope"], CITY, "d1 by ./ctl.sock")
        eq(console(d2, "whoami")[1]["scope"], DIST, "d2 by ./ctl.sock")
        # Another spelling of d1's address is d1, without a new login.
        other = f"ipc://{d1.dir}/../{os.path.basename(d1.dir)}/ctl.sock"
        eq(console(d1, "whoami", addr=other, cwd="/")[1]["scope"], CITY, "d1 by " + other)
        eq(session_in(sfile, d2.sock)["user"], d2.admin, "kept under d2's node id")
        # The id outlives a restart; logout by one spelling forgets every spelling.
        eq(d1.stop(), 0, "stop d1")
        d1.start()
        eq(d1.ok("status")["node_id"], ids[d1], "the same id after a restart")
        eq(console(d1, "whoami")[1]["scope"], CITY, "the session still holds after a restart")
        eq(console(d1, "logout", addr=d1.sock, cwd="/")[0], 0, "logout by the absolute address")
        rc, out, _ = console(d1, "whoami")
        eq((rc, out["name"]), (1, "LINLI_EAUTH"), "d1 forgotten under ./ctl.sock too")
        eq(console(d2, "whoami")[1]["scope"], DIST, "d2 keeps its session")
        # A session file of the earlier format (keyed by the address as typed) still works.
        old = os.path.join(d1.dir, "old.json")
        with open(old, "w") as f:
            json.dump({d2.sock: {"user": d2.admin, "token": d2.session}}, f)
        eq(console(d2, "whoami", addr=d2.sock, sf=old)[1]["scope"], DIST, "old format read")
        # A damaged node_id file stops the start, naming it; removed, a new id is made.
        eq(d1.stop(), 0, "stop d1")
        idfile = os.path.join(d1.data, "node_id")
        with open(idfile, "w") as f:
            f.write("not-an-id\n")
        r = subprocess.run([LINLID, "--config", d1.cfg, "--foreground"], capture_output=True,
                           text=True, timeout=60)
        check(r.returncode != 0 and f"{idfile}: not a node id" in r.stderr, r.stderr[-2000:])
        os.unlink(idfile)
        d1.start()
        check(d1.ok("status")["node_id"] not in (ids[d1], ids[d2]), "a new id")
    finally:
        for d in (d1, d2):
            if d.proc and d.proc.poll() is None:
                d.stop()
            d.cleanup()


def case_forged_and_expired_tokens():
    # session_ttl_s needs its own config: the harness's accounts group sets pwhash only.
    d = Daemon(node=CITY, level="city")
    d.write_config(text=d.config_text(CITY, "city", "x").replace(
        'accounts = { pwhash = "min"; };', 'accounts = { pwhash = "min"; session_ttl_s = 1; };'))
    try:
        d.start()
        tok = d.session
        time.sleep(1.6)
        out = denied(d, tok, "status", name="LINLI_EAUTH")
        check("session expired" in out["error"], out)
        d.login()
        out = denied(d, secrets.token_hex(32), "status", name="LINLI_EAUTH")
        check("unknown session" in out["error"], out)
        out = denied(d, "not-a-token", "status", name="LINLI_EAUTH")
        check("invalid session token" in out["error"], out)
    finally:
        d.cleanup()


def case_wrong_password_lockout_and_enable():
    d = Daemon(node=CITY, level="city")
    d.write_config(text=d.config_text(CITY, "city", "x").replace(
        'accounts = { pwhash = "min"; };',
        'accounts = { pwhash = "min"; lockout_attempts = 3; lockout_s = 600; };')
        + f'catalog_dir = "{SRC}/catalog";\n')
    try:
        d.start()
        d.account("zhang", "viewer", node=COMM, password=PW)
        for i in range(3):
            try:
                d.login("zhang", "Wrong-Passw0rd-x")
                raise AssertionError("a wrong password logged in")
            except TestFailure as e:
                check("wrong user or password" in str(e), str(e))
        try:
            d.login("zhang", PW)
            raise AssertionError("a locked account logged in")
        except TestFailure as e:
            check("locked until" in str(e), str(e))
        log = d.ok("audit", "--who", "zhang", "--action", "login")
        eq([e["result"] for e in log], ["allowed"] + ["denied"] * 4,
           "audit: the first login, then the four refused attempts")
        d.ok("accounts", "enable", "zhang")
        d.login("zhang", PW)
        # An unknown user fails the same way as a wrong password.
        try:
            d.login("nobody", PW)
            raise AssertionError("unknown user logged in")
        except TestFailure as e:
            check("wrong user or password" in str(e), str(e))
    finally:
        d.cleanup()


def case_disabled_account():
    with city() as d:
        tok = d.account("li", "operator", node=STREET)
        allowed(d, tok, "status")
        d.ok("accounts", "disable", "li")
        out = denied(d, tok, "status", name="LINLI_EAUTH")
        check("disabled" in out["error"], out)
        try:
            d.login("li", "Another-Passw0rd-1")
            raise AssertionError("disabled account logged in")
        except TestFailure as e:
            check("disabled" in str(e), str(e))
        rc, out, _ = d.cli("accounts", "disable", "admin")
        check(rc == 1 and "your own account" in out["error"], out)


def case_password_policy_and_names():
    with city() as d:
        for pw, why in [("short", "shorter than 10"), ("wangwu-2024-secret", "contains the username"),
                        ("aaaaaaaaaaaa", "one character repeated")]:
            rc, out, _ = d.cli("accounts", "add", "wangwu", "--role", "viewer", "--stdin",
                               input=pw + "\n")
            check(rc == 1 and why in out["error"], f"{pw}: {out}")
        rc, out, _ = d.cli("accounts", "add", "Bad Name", "--role", "viewer", "--stdin",
                           input=PW + "\n")
        check(rc == 1 and "bad user name" in out["error"], out)
        d.account("wangwu", "viewer", node=COMM)
        rc, out, _ = d.cli("accounts", "add", "wangwu", "--role", "viewer", "--stdin",
                           input=PW + "\n")
        eq(out["name"], "LINLI_EEXIST", "one person, one account")


def case_password_never_stored_in_clear():
    needle = "Needle-Passw0rd-" + secrets.token_hex(4)
    with city() as d:
        tok = d.account("secretive", "operator", node=COMM, password=needle)
        allowed(d, tok, "whoami")
        rc, out, err = d.cli("accounts", "passwd", "secretive", "--stdin", input="short\n")
        check(rc == 1, "weak new password refused")
        d.ok("store", "backup", os.path.join(d.dir, "bk"))
        d.stop()
        blobs = []
        for path in glob.glob(os.path.join(d.dir, "**", "*"), recursive=True):
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    blobs.append((path, f.read()))
        check(any(p.endswith("data.mdb") for p, _ in blobs), "no store file to search")
        for path, b in blobs:
            check(needle.encode() not in b, f"the password is in {path}")
            if not path.endswith("sessions.json"):  # the console's own file keeps tokens
                check(tok.encode() not in b, f"a session token is in {path}")
        check(b"$argon2id$" in b"".join(b for p, b in blobs if p.endswith("data.mdb")),
              "no Argon2id hash stored")


def case_machine_account():
    with city() as d:
        out = d.ok("accounts", "add", "sd-0042", "--role", "operator", "--node", COMM,
                   "--machine")
        eq(out["kind"], "machine", "kind")
        secret = out["secret"]
        eq(len(secret), 64, "a 256-bit secret")
        tok = d.login("sd-0042", secret)
        me = allowed(d, tok, "whoami")
        eq((me["kind"], me["scope"]), ("machine", COMM), "the machine's identity")
        rows = {r["user"]: r for r in d.ok("accounts", "list")}
        check("secret" not in json.dumps(rows) and "argon2" not in json.dumps(rows), rows)


def case_admins_manage_their_subtree_only():
    with city() as d:
        st = d.account("streetadmin", "admin", node=STREET)
        allowed(d, st, "accounts", "add", "c1", "--role", "operator", "--node", COMM, "--stdin",
                input=PW + "\n")
        allowed(d, st, "accounts", "add", "g1", "--role", "grid_worker", "--node", GRID,
                "--stdin", input=PW + "\n")
        denied(d, st, "accounts", "add", "c2", "--role", "operator", "--node",
               "hefei/baohe/fanhua/jinxiu", "--stdin", input=PW + "\n")
        denied(d, st, "accounts", "add", "c3", "--role", "operator", "--node", DIST, "--stdin",
               input=PW + "\n")
        rc, out, _ = as_(d, st, "accounts", "add", "c4", "--role", "grid_worker", "--node", COMM,
                         "--stdin", input=PW + "\n")
        check(rc == 1 and "does not exist at the community level" in out["error"], out)
        rc, out, _ = as_(d, st, "accounts", "add", "c5", "--role", "operator", "--node",
                         "hefei/baohe/binhu/nowhere", "--stdin", input=PW + "\n")
        check(rc == 1 and "not in the jurisdiction tree" in out["error"], out)
        users = {r["user"] for r in allowed(d, st, "accounts", "list")}
        eq(users, {"streetadmin", "c1", "g1"}, "a street admin lists its subtree")
        denied(d, st, "accounts", "disable", "admin")
        allowed(d, st, "accounts", "disable", "c1")
        op = d.account("opx", "operator", node=STREET)
        denied(d, op, "accounts", "list")


def case_taken_user_name_hides_where():
    """User names are one namespace per node, so a taken one is refused; where it lives
    is told only inside the caller's subtree."""
    with city() as d:
        d.account("zhang", "operator", node=COMM)
        other = d.account("admin2", "admin", node=COMM2)
        rc, out, _ = as_(d, other, "accounts", "add", "zhang", "--role", "operator", "--stdin",
                         input=PW + "\n")
        check(rc == 1 and out["name"] == "LINLI_EEXIST", out)
        check("taken" in out["error"] and COMM not in out["error"], out["error"])
        street = d.account("admin3", "admin", node=STREET)
        rc, out, _ = as_(d, street, "accounts", "add", "zhang", "--role", "operator", "--stdin",
                         input=PW + "\n")
        check(rc == 1 and COMM in out["error"], f"within the subtree it is named: {out}")


def case_masking_per_role_and_audit():
    with city() as d:
        d.ok("data", "put", "residents", "--scope", COMM, json.dumps(RESIDENT, ensure_ascii=False))
        viewer = d.account("viewer1", "viewer", node=COMM)
        reader = d.account("reader1", "operator", node=COMM, grants=["sensitive:residents"])
        wide = d.account("reader2", "viewer", node=STREET, grants=["sensitive"])
        masked = allowed(d, viewer, "data", "query", "residents")["records"][0]
        eq((masked["name"], masked["id_number"], masked["phone"], masked["gender"]),
           ("张*", "340***********1234", "138****5678", "male"), "masked for a viewer")
        for tok in (reader, wide):
            clear = allowed(d, tok, "data", "query", "residents")["records"][0]
            eq((clear["name"], clear["id_number"]), ("张三", RESIDENT["id_number"]), "clear")
        one = allowed(d, viewer, "data", "get", "residents", masked["id"])
        eq(one["id_number"], "340***********1234", "get is masked too")
        d.ok("accounts", "revoke", "reader1", "sensitive:residents")
        again = allowed(d, reader, "data", "query", "residents")["records"][0]
        eq(again["phone"], "138****5678", "masked again after the revoke")
        log = d.ok("audit", "--action", "data.read", "--scope", STREET)
        results = {(e["who"], e["result"]) for e in log}
        check({("viewer1", "masked"), ("reader1", "allowed"), ("reader2", "allowed")} <= results,
              results)


def case_audit_visible_upward_only():
    with city() as d:
        op = d.account("commop", "operator", node=COMM)
        denied(d, op, "data", "query", "residents", "--scope", COMM2)   # a sibling
        denied(d, op, "data", "query", "residents", "--scope", STREET)  # the parent
        aud = d.account("streetaud", "auditor", node=STREET)
        aud2 = d.account("otheraud", "auditor", node=STREET2)
        viewer = d.account("commview", "viewer", node=COMM)
        rows = allowed(d, aud, "audit", "--who", "commop", "--result", "denied")
        eq(len(rows), 2, f"the street auditor sees its community's denials: {rows}")
        check(all("outside its jurisdiction" in r["detail"] for r in rows), rows)
        eq(allowed(d, aud2, "audit", "--who", "commop"), [], "a sibling street sees nothing")
        denied(d, viewer, "audit")
        denied(d, aud, "audit", "--scope", DIST)
        rc, out, _ = d.cli("audit", "--since", "yesterday")
        check(rc == 1 and "RFC 3339" in out["error"], out)


def case_subscriptions_belong_to_their_account():
    with city() as d:
        a = d.account("suba", "operator", node=COMM)
        b = d.account("subb", "operator", node=COMM2)
        sid = str(allowed(d, a, "events", "subscribe", "#")["id"])
        allowed(d, a, "publish", "alarm/raised", '{"i": 1}')
        out = denied(d, b, "events", "next", sid, "--wait", "0", name="LINLI_ENOENT")
        check("no external subscription" in out["error"], out)
        denied(d, b, "events", "unsubscribe", sid, name="LINLI_ENOENT")
        got = allowed(d, a, "events", "next", sid, "--wait", "0")
        eq([e["topic"] for e in got["events"]], ["alarm/raised"], "the owner polls its own")
        # A sibling community's account never sees the other's events either.
        sid_b = str(allowed(d, b, "events", "subscribe", "#")["id"])
        allowed(d, a, "publish", "alarm/raised", '{"i": 2}')
        eq(allowed(d, b, "events", "next", sid_b, "--wait", "0")["events"], [], "sideways")


def case_tree_and_roles():
    with city() as d:
        tree = d.ok("tier", "tree")
        eq(len(tree), 31, "the city sees every node")
        op = d.account("treeop", "operator", node=STREET)
        mine = allowed(d, op, "tier", "tree")
        eq(sorted(n["path"] for n in mine),
           sorted([STREET, COMM, COMM2, GRID, GRID2, COMM2 + "/g01", COMM2 + "/g02"]),
           "a street sees its subtree")
        eq({n["level"] for n in mine}, {"street", "community", "grid"}, "levels")
        roles = {r["role"]: r["may"] for r in d.ok("tier", "roles")}
        eq(roles["grid_worker"]["data.write"], "grid", "grid workers write at grids only")
        check("accounts.manage" not in roles["operator"], roles["operator"])


def case_readme_role_table_matches_the_code():
    """The role table in README.md is the one linlid enforces."""
    with open(os.path.join(SRC, "README.md"), encoding="utf-8") as f:
        text = f.read().split("## Accounts and permissions", 1)[1]
    # The section's first table: its rows run from the header to the first other line.
    rows = text.splitlines()
    start = next(i for i, ln in enumerate(rows) if ln.startswith("| action "))
    lines = []
    for ln in rows[start:]:
        if not ln.startswith("|"):
            break
        lines.append(ln)
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    eq(head[0], "action", "table header")
    abbr = {"C": "city", "D": "district", "S": "street", "M": "community", "G": "grid"}
    doc = {}
    for l in lines[1:]:
        cells = [c.strip() for c in l.strip("|").split("|")]
        if set(cells[0]) <= set("-"):
            continue
        for role, cell in zip(head[1:], cells[1:]):
            if cell != "–":
                doc.setdefault(role, {})[cells[0]] = " ".join(abbr[x] for x in cell.split())
    with city() as d:
        code = {r["role"]: r["may"] for r in d.ok("tier", "roles")}
    eq(doc, code, "README role table vs linli tier roles")


# ---- node-wide commands and the command table ----

def gates(d):
    return {g["command"]: g for g in d.ok("tier", "gates")}


def node_wide_args(d, command):
    """Harmless arguments for a node-wide command: a refusal must come before they matter."""
    return {
        "store backup": [os.path.join(d.dir, "bk-" + secrets.token_hex(4))],
        "plugins enable": ["nosuch"], "plugins disable": ["nosuch"], "plugins reload": ["nosuch"],
        "plugins install": ["/nonexistent/nosuch.so"],
        "plugins grant": ["nosuch", "store.read"], "plugins revoke": ["nosuch", "store.read"],
        "rules check": ["/nonexistent/nosuch.lua"], "rules install": ["/nonexistent/nosuch.lua"],
        "rules remove": ["nosuch"], "rules test": ["nosuch"],
        "rules grant": ["nosuch", "store.read"], "rules revoke": ["nosuch", "store.read"],
    }.get(command, [])


def case_node_wide_commands_need_the_node():
    """On a city node with sibling districts, streets and communities, every node-wide
    command (store backup and stats above all) is refused to a street admin and a
    community admin below it, audited; the city's own admin passes the gate."""
    with city() as d:
        street = d.account("stadmin", "admin", node=STREET)
        comm = d.account("cmadmin", "admin", node=COMM)
        wide = sorted(c for c, g in gates(d).items() if g["reach"] == "node-wide")
        check({"store backup", "store stats", "plugins install", "rules install"} <= set(wide),
              wide)
        city_may = {r["role"]: r["may"] for r in d.ok("tier", "roles")}["admin"]
        for cmd in wide:
            args = cmd.split() + node_wide_args(d, cmd)
            for tok in (street, comm):
                out = denied(d, tok, *args)
                check(f"'{cmd}' acts on the whole node {CITY}" in out["error"], out)
            rc, out, err = d.cli(*args)
            action = gates(d)[cmd]["action"]
            if "city" in city_may.get(action, ""):
                check(rc == 0 or out.get("name") != "LINLI_EPERM",
                      f"the city's admin may {cmd}: {out} {err}")
            else:  # the role table keeps it from the city level (device.manage)
                eq(out.get("name"), "LINLI_EPERM", f"{cmd} by the city admin")
        for who in ("stadmin", "cmadmin"):
            rows = d.ok("audit", "--who", who, "--result", "denied", "--limit", "1000")
            eq(sorted(r["object"] for r in rows), wide, f"the refusals of {who} are audited")
        # status: which node answers, to everyone; the node's figures to its own accounts.
        mine = allowed(d, comm, "status")
        eq(sorted(mine), sorted(["node", "node_id", "level", "name", "version", "uptime_s",
                                 "plugins", "time_zone", "local_time"]), "status")
        check({"store_bytes", "data_dir", "requests"} <= set(d.ok("status")), "the node's own")


def case_store_backup_by_the_node_admin_only():
    with city() as d:
        comm = d.account("cmadmin", "admin", node=COMM)
        target = os.path.join(d.dir, "copy")
        denied(d, comm, "store", "backup", target)
        check(not os.path.exists(os.path.join(target, "data.mdb")), "no copy was written")
        denied(d, comm, "store", "stats")
        d.ok("store", "backup", target)
        check(os.path.exists(os.path.join(target, "data.mdb")), "the node admin's copy")
        check(d.ok("store", "stats")["records"] > 0, "the node admin's stats")


def readme_command_table():
    """README's table of console commands: {command: (action, reach)}."""
    with open(os.path.join(SRC, "README.md"), encoding="utf-8") as f:
        text = f.read().split("## linli, the console", 1)[1].split("\n## ", 1)[0]
    rows = [[c.strip() for c in l.strip().strip("|").split("|")]
            for l in text.splitlines() if l.startswith("| ")]
    eq(rows[0], ["command", "action", "reach"], "the README command table's header")
    return {r[0].strip("`"): (r[1], r[2]) for r in rows[1:] if not set(r[0]) <= set("-")}


def case_readme_command_table_matches_the_gates():
    """Every command linlid offers is in README's table with the action and reach its
    gate enforces, and every gate is a command linlid offers."""
    doc = readme_command_table()
    with city() as d:
        code = {c: (g["action"], g["reach"]) for c, g in gates(d).items()}
        offered = {c["command"] for c in d.ok("help")}
    eq(offered, set(code), "help vs tier gates (a kernel command without a gate row?)")
    eq(doc, code, "README command table vs tier gates")


# ---- sessions end for good ----

NEWPW = "Brand-New-Passw0rd-2"


def ended(d, tok, why):
    out = denied(d, tok, "whoami", name="LINLI_EAUTH")
    check("session ended" in out["error"] and why in out["error"], out)


def case_own_password_change_ends_sessions():
    with city() as d:
        tok = d.account("pw1", "operator", node=COMM)
        other = d.login("pw1", "Another-Passw0rd-1")  # a second session of the same person
        out = allowed(d, tok, "accounts", "passwd", "pw1", "--stdin", input=NEWPW + "\n")
        eq(out["sessions_ended"], 2, "both sessions")
        ended(d, tok, "password")
        ended(d, other, "password")
        fresh = d.login("pw1", NEWPW)
        eq(allowed(d, fresh, "whoami")["user"], "pw1", "a new login works")


def case_admin_password_change_ends_sessions():
    with city() as d:
        tok = d.account("pw2", "operator", node=COMM)
        st = d.account("stadm", "admin", node=STREET)
        allowed(d, st, "accounts", "passwd", "pw2", "--stdin", input=NEWPW + "\n")
        ended(d, tok, "password of 'pw2' was changed")
        allowed(d, st, "whoami")  # the admin's own session goes on
        eq(allowed(d, d.login("pw2", NEWPW), "whoami")["user"], "pw2", "new login")


def case_disable_then_enable_keeps_old_sessions_dead():
    with city() as d:
        tok = d.account("dis1", "operator", node=COMM)
        d.ok("accounts", "disable", "dis1")
        ended(d, tok, "disabled")
        d.ok("accounts", "enable", "dis1")
        ended(d, tok, "disabled")
        eq(allowed(d, d.login("dis1", "Another-Passw0rd-1"), "whoami")["user"], "dis1",
           "a new login after enable")


def case_role_and_node_change_end_sessions():
    with city() as d:
        tok = d.account("mv1", "operator", node=COMM)
        out = d.ok("accounts", "set", "mv1", "--role", "viewer")
        eq((out["role"], out["sessions_ended"]), ("viewer", 1), "set --role")
        ended(d, tok, "role of 'mv1' changed to viewer")
        tok = d.login("mv1", "Another-Passw0rd-1")
        eq(allowed(d, tok, "whoami")["role"], "viewer", "the new role")
        out = d.ok("accounts", "set", "mv1", "--node", COMM2)
        eq((out["scope"], out["sessions_ended"]), (COMM2, 1), "set --node")
        ended(d, tok, f"moved to {COMM2}")
        tok = d.login("mv1", "Another-Passw0rd-1")
        eq(allowed(d, tok, "whoami")["scope"], COMM2, "the new node")
        # A name only changes nothing that a session stands on.
        d.ok("accounts", "set", "mv1", "--name", "王五")
        eq(allowed(d, tok, "whoami")["user"], "mv1", "a rename keeps the session")
        rows = {r["user"]: r for r in d.ok("accounts", "list")}
        eq((rows["mv1"]["scope"], rows["mv1"]["name"]), (COMM2, "王五"), "listed")
        log = d.ok("audit", "--action", "accounts.set", "--scope", STREET)
        check(any("role operator->viewer" in e["detail"] for e in log), log)


def case_remove_ends_sessions_and_a_new_namesake_gets_none():
    with city() as d:
        tok = d.account("rm1", "operator", node=COMM)
        out = d.ok("accounts", "remove", "rm1")
        eq(out["sessions_ended"], 1, "remove")
        ended(d, tok, "removed")
        try:
            d.login("rm1", "Another-Passw0rd-1")
            raise AssertionError("a removed account logged in")
        except TestFailure as e:
            check("wrong user or password" in str(e), str(e))
        check("rm1" not in {r["user"] for r in d.ok("accounts", "list")}, "gone from the list")
        d.account("rm1", "operator", node=COMM)
        ended(d, tok, "removed")
        log = d.ok("audit", "--action", "accounts.remove")
        eq([(e["who"], e["object"]) for e in log], [("admin", "rm1")], "audited")


def case_accounts_set_and_remove_stay_in_the_subtree():
    with city() as d:
        st = d.account("stadm2", "admin", node=STREET)
        d.account("c1", "operator", node=COMM)
        d.account("far", "operator", node="hefei/baohe/fanhua/jinxiu")
        denied(d, st, "accounts", "set", "c1", "--node", STREET2)      # out of its subtree
        denied(d, st, "accounts", "set", "c1", "--node", DIST, "--role", "admin")  # above itself
        denied(d, st, "accounts", "set", "far", "--role", "viewer")     # a sibling's account
        denied(d, st, "accounts", "remove", "far")
        rc, out, _ = as_(d, st, "accounts", "set", "c1", "--node", GRID)
        check(rc == 1 and "does not exist at the grid level" in out["error"], out)
        rc, out, _ = as_(d, st, "accounts", "set", "stadm2", "--role", "viewer")
        check(rc == 1 and "your own account" in out["error"], out)
        rc, out, _ = as_(d, st, "accounts", "remove", "stadm2")
        check(rc == 1 and "your own account" in out["error"], out)
        rc, out, _ = as_(d, st, "accounts", "set", "c1")
        check(rc == 1 and "usage: accounts set" in out["error"], out)
        rc, out, _ = as_(d, st, "accounts", "set", "c1", "--node", COMM2, "--name", "名" * 22)
        check(rc == 1 and "longer than 64 bytes" in out["error"], out)
        eq({r["user"]: r["scope"] for r in allowed(d, st, "accounts", "list")}["c1"], COMM,
           "a refused set moves nothing")
        allowed(d, st, "accounts", "set", "c1", "--node", COMM2, "--role", "viewer")
        allowed(d, st, "accounts", "remove", "c1")
        # The node's last administrator can be neither removed nor demoted nor moved.
        for args in (["remove", "admin"], ["set", "admin", "--role", "operator"],
                     ["set", "admin", "--node", DIST]):
            rc, out, _ = d.cli("accounts", *args)
            check(rc == 1 and f"last administrator of {CITY}" in out["error"], (args, out))
        d.account("admin2", "admin", node=CITY)
        rc, out, _ = d.cli("accounts", "remove", "admin")
        check(rc == 1 and "your own account" in out["error"], out)
        denials = d.ok("audit", "--who", "stadm2", "--result", "denied")
        eq(len(denials), 4, f"the subtree refusals are audited: {denials}")


def case_long_poll_ends_with_its_session():
    """A poll parked before the password change answers with the session's end, not with
    the events published after it."""
    with city() as d:
        tok = d.account("poller", "operator", node=COMM)
        sid = str(allowed(d, tok, "events", "subscribe", "alarm/#")["id"])
        base = d.ok("status")["connections"]
        env = dict(os.environ, LINLI_SESSION=tok)
        poll = subprocess.Popen([LINLI, "--socket", d.sock, "--json", "events", "next", sid,
                                 "--wait", "20000"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env, text=True)
        try:
            wait_for(lambda: d.ok("status")["connections"] > base, "the poll's connection")
            d.ok("accounts", "passwd", "poller", "--stdin", input=NEWPW + "\n")
            d.ok("publish", "alarm/raised", '{"secret": 1}', "--scope", COMM)
            out, err = poll.communicate(timeout=30)
        finally:
            if poll.poll() is None:
                poll.kill()
        reply = json.loads(out)
        check(poll.returncode == 1 and reply.get("name") == "LINLI_EAUTH" and
              "session ended" in reply.get("error", ""), f"{reply} {err}")


def case_login_in_flight_does_not_undo_a_disable():
    """A login verifies the password on a thread (Argon2id; here at the moderate cost, most
    of a second); a disable that lands meanwhile wins: the account stays disabled and no
    session of it lives on (the login used to write back the account it had read before
    the hash ran: enabled again)."""
    with city() as d:
        d.account("racer", "operator", node=COMM)
        d.stop()
        d.write_config(text=d.config_text(CITY, "city", "x").replace(
            'pwhash = "min"', 'pwhash = "moderate"') + f'catalog_dir = "{SRC}/catalog";\n')
        d.start()
        d.ok("accounts", "passwd", "racer", "--stdin", input=NEWPW + "\n")  # a slow hash
        base = d.ok("status")["connections"]
        env = dict(os.environ, LINLI_SESSION_FILE=os.path.join(d.dir, "racer.json"))
        login = subprocess.Popen([LINLI, "--socket", d.sock, "login", "racer", "--password-stdin"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=env, text=True)
        try:
            login.stdin.write(NEWPW + "\n")
            login.stdin.close()
            wait_for(lambda: d.ok("status")["connections"] > base, "the login's connection")
            d.ok("accounts", "disable", "racer")
            login.wait(timeout=60)
        finally:
            if login.poll() is None:
                login.kill()
        err = login.stderr.read()
        rows = {r["user"]: r for r in d.ok("accounts", "list")}
        eq(rows["racer"]["disabled"], True, f"the disable holds (login: {err.strip()})")
        if login.returncode == 0:  # it was done before the disable: its session ended with it
            ended(d, session_in(env["LINLI_SESSION_FILE"], d.sock)["token"], "disabled")
        else:
            check("changed during the login" in err or "disabled" in err, err)


def case_moved_account_polls_no_old_subscription():
    with city() as d:
        tok = d.account("mover", "operator", node=COMM)
        sid = str(allowed(d, tok, "events", "subscribe", "#")["id"])
        d.ok("accounts", "set", "mover", "--node", COMM2)
        d.ok("publish", "alarm/raised", '{"in": "yuelan"}', "--scope", COMM)
        tok = d.login("mover", "Another-Passw0rd-1")
        # The subscription ended with the sessions it was made in.
        denied(d, tok, "events", "next", sid, "--wait", "0", name="LINLI_ENOENT")
        check(f"external subscription {sid} ('#') of mover ended with its sessions: account "
              f"'mover' was moved to {COMM2}" in d.logtext(), d.logtext()[-2000:])


# ---- the permission matrix ----
#
# Expected leave, written down from the role table in README.md (not computed
# by linlid's own code): role -> action -> the levels at which that role may
# take it. The scope rule on top: only inside one's own subtree.
C, D, S, M, G = "city", "district", "street", "community", "grid"
EXPECT = {
    "admin":       {"data.read": {C, D, S, M}, "data.write": {C, D, S, M},
                    "data.delete": {C, D, S, M}, "events.publish": {C, D, S, M},
                    "events.subscribe": {C, D, S, M}, "audit.read": {C, D, S, M},
                    "accounts.manage": {C, D, S, M}},
    "operator":    {"data.read": {C, D, S, M}, "data.write": {C, D, S, M},
                    "data.delete": {S, M}, "events.publish": {C, D, S, M},
                    "events.subscribe": {C, D, S, M}, "audit.read": set(),
                    "accounts.manage": set()},
    "auditor":     {"data.read": {C, D, S, M}, "data.write": set(), "data.delete": set(),
                    "events.publish": set(), "events.subscribe": {C, D, S, M},
                    "audit.read": {C, D, S, M}, "accounts.manage": set()},
    "viewer":      {"data.read": {C, D, S, M}, "data.write": set(), "data.delete": set(),
                    "events.publish": set(), "events.subscribe": {C, D, S, M},
                    "audit.read": set(), "accounts.manage": set()},
    "grid_worker": {"data.read": {G}, "data.write": {G}, "data.delete": set(),
                    "events.publish": {G}, "events.subscribe": {G}, "audit.read": set(),
                    "accounts.manage": set()},
}

NODES = {C: CITY, D: DIST, S: STREET, M: COMM, G: GRID}
TARGETS = {  # level -> {target kind: path}
    C: {"own": CITY, "child": DIST},
    D: {"own": DIST, "child": STREET, "sibling": DIST2, "parent": CITY},
    S: {"own": STREET, "child": COMM, "sibling": STREET2, "parent": DIST, "city": CITY},
    M: {"own": COMM, "child": GRID, "sibling": COMM2, "parent": STREET, "city": CITY},
    G: {"own": GRID, "sibling": GRID2, "parent": COMM, "city": CITY},
}
ITEM = {"code": "X-1", "name": "事项", "department": "civil_affairs"}


def command(action, target):
    """The console command that takes `action` at `target`."""
    return {
        # grids: not a dataset that comes down (service_items is: read above, test_federation)
        "data.read": ["data", "query", "grids", "--scope", target],
        "data.write": ["data", "put", "service_items", "--scope", target,
                       json.dumps(ITEM, ensure_ascii=False)],
        "data.delete": ["data", "del", "service_items", "no-such-id", "--scope", target],
        "events.publish": ["publish", "matrix/test", '{"a": 1}', "--scope", target],
        "events.subscribe": ["events", "subscribe", "matrix/#", "--scope", target],
        "audit.read": ["audit", "--scope", target, "--limit", "1"],
        "accounts.manage": ["accounts", "list", "--scope", target],
    }[action]


def case_permission_matrix():
    with city() as d:
        tokens = {}
        for role in EXPECT:
            for level, node in NODES.items():
                valid = (role == "grid_worker") == (level == G)
                if valid:
                    tokens[(role, level)] = d.account(f"m-{role}-{level}"[:32].replace("_", "-"),
                                                      role, node=node)
        cases = wrong = 0
        failures = []
        for (role, level), tok in tokens.items():
            for action, levels in EXPECT[role].items():
                for kind, target in TARGETS[level].items():
                    expect_allow = level in levels and kind in ("own", "child") or (
                        level in levels and kind == "city" and level == C)
                    rc, out, err = as_(d, tok, *command(action, target))
                    got_perm_denied = rc == 1 and isinstance(out, dict) and \
                        out.get("name") == "LINLI_EPERM"
                    cases += 1
                    if got_perm_denied == expect_allow:
                        wrong += 1
                        failures.append(f"{role}@{level} {action} on {kind} ({target}): "
                                        f"expected {'allow' if expect_allow else 'deny'}, got "
                                        f"{out if rc else 'allowed'}")
        print(f"{cases} permission cases, {wrong} wrong")
        check(cases >= 400, f"only {cases} cases")
        check(not failures, "\n".join(failures[:20]))


def case_permission_matrix_through_a_c_plugin():
    """A C plugin acts with the scope of its node and its declared capabilities:
    tp_store (store.read/write of residents and grids, read of incidents) on a
    node of every level, against own, child, sibling, parent and city targets."""
    import shutil
    tp = os.path.abspath(os.environ.get("LINLI_TP_DIR", os.path.join(SRC, "build", "tests",
                                                                         "plugins")))
    person = json.dumps(RESIDENT, ensure_ascii=False)
    actions = {
        "read residents": (lambda t: ["tp_store", "scan", "residents", f"scope={t}"], True),
        "write residents": (lambda t: ["tp_store", "put", "residents", t, "-", person], True),
        "write incidents": (lambda t: ["tp_store", "put", "incidents", t, "-", "{}"], False),
    }
    cases, failures = 0, []
    for level in (C, D, S, M):
        node = NODES[level]
        d = Daemon(node=node, level=level)
        pdir = os.path.join(d.dir, "plugins")
        os.makedirs(pdir)
        shutil.copyfile(os.path.join(tp, "tp_store.so"), os.path.join(pdir, "tp_store.so"))
        d.write_config(node=node, level=level,
                       extra=f'catalog_dir = "{SRC}/catalog";\nplugin_dirs = [ "{pdir}" ];\n')
        d.grant_declared(pdir)  # the admin approves what tp_store declares
        try:
            d.start()
            for name, (cmd, declared) in actions.items():
                for kind, target in TARGETS[level].items():
                    out = d.ok(*cmd(target))
                    expect_allow = declared and (kind in ("own", "child"))
                    denied_ = out.get("name") == "LINLI_EPERM"
                    cases += 1
                    if denied_ == expect_allow:
                        failures.append(f"plugin at {level} {name} on {kind} ({target}): "
                                        f"got {out.get('name')} {out.get('error')}")
            denials = d.ok("audit", "--via", "plugin:tp_store", "--result", "denied",
                           "--limit", "1000", "--scope", node)
            check(len(denials) >= 1, f"no audited plugin denial at {node}")
        finally:
            d.cleanup()
    print(f"{cases} plugin permission cases, {len(failures)} wrong")
    eq(cases, 48, "cases: 16 targets over 4 node levels x 3 actions")
    check(not failures, "\n".join(failures[:20]))


if __name__ == "__main__":
    sys.exit(main(dict(globals())))
