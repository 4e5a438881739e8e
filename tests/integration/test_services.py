"""Integration tests of the services plugin (plugins/services): service items and the
application workflow through a real linlid at the city node with the real catalog — every
legal move and a table of illegal ones (refused with the state and the allowed moves,
audited, nothing written), 补正 stopping the promised deadline in working time with the
test clock, bad items and bad submissions refused naming what is wrong with nothing stored.
"""
import datetime
import json
import os
import shutil
import sys
import zoneinfo

sys.path.insert(0, os.path.dirname(__file__))
from harness import BUILD, SRC, Daemon, check, eq, finish, main, wait_for  # noqa: E402
from test_http import api as http_api, free_port  # noqa: E402

SERVICES_SO = os.path.join(BUILD, "plugins", "services", "services.so")
ALARMS_SO = os.path.join(BUILD, "plugins", "alarms", "alarms.so")
CATALOG = os.path.join(SRC, "catalog")
STREET = "hefei/baohe/binhu"
YUELAN = STREET + "/yuelan"
ZONE = zoneinfo.ZoneInfo("Asia/Shanghai")
HOUR = 3600 * 1000
CAL_2027 = {"year": 2027, "hours": "09:00-12:00,13:30-17:30", "weekend": "6,7",
            "holidays": "2027-01-01", "workdays": ""}
BIRTH = "34010400WJ-GG-0001"   # 生育登记: promised 2 working days, two form fields
ELDER = "34010400MZ-GG-0007"   # 高龄津贴
RESIDE = "34010400GA-XK-0003"  # 居住证: suspended


def js(v):
    return json.dumps(v, ensure_ascii=False)


def local_ms(*args):
    return int(datetime.datetime(*args, tzinfo=ZONE).timestamp() * 1000)


def near(got, want, what):
    """A time computed at the test clock's `now`, which runs on while the test runs."""
    check(abs(got - want) < 10000, f"{what}: got {got}, want {want} (diff {got - want} ms)")


class node:
    """A linlid at the city with the services plugin, on the test clock; the console is
    the city's administrator."""

    def __init__(self, http=False, alarms=False):
        self.d = Daemon()
        pdir = os.path.join(self.d.dir, "plugins")
        os.makedirs(pdir)
        shutil.copyfile(SERVICES_SO, os.path.join(pdir, "services.so"))
        if alarms:  # the alarms desk, which raises the overdue alarms
            shutil.copyfile(ALARMS_SO, os.path.join(pdir, "alarms.so"))
        web = ""
        if http:  # the open-data API, and test_http's curl on its port
            self.d.web = object.__new__(http_api)
            self.d.web.port = free_port()
            web = (f'http = {{ listen = "http://127.0.0.1:{self.d.web.port}"; '
                   f'rate_limit = 1000; }};\n')
        self.d.write_config(extra=f'plugin_dirs = [ "{pdir}" ];\n'
                                  f'catalog_dir = "{CATALOG}";\n' + web)
        self.d.grant_declared(pdir)

    def __enter__(self):
        try:
            return self.d.start(args=("--test-clock",))
        except BaseException:
            self.d.cleanup()
            raise

    def __exit__(self, etype, *rest):
        finish(self.d, etype)


def items(d):
    d.ok("services", "items", "add", "hefei", BIRTH, "生育登记", "卫健委", "promised_days=2",
         "statutory_days=5", "visits=0", "form_fields=child_name, due_date",
         "materials=身份证\n结婚证", "category=health", "handling_level=community")
    d.ok("services", "items", "add", "hefei", ELDER, "高龄津贴", "民政局", "promised_days=5",
         "visits=1")
    d.ok("services", "items", "add", "hefei", RESIDE, "居住证", "公安局", "status=suspended")


def apply(d, item=ELDER, *fields, env=None):
    fields = fields or ("applicant_name=张三", "applicant_id_number=340104195001010011")
    rc, out, err = d.cli("services", "apply", YUELAN, item, *fields, env=env)
    check(rc == 0, f"apply: {err}")
    eq(out["status"], "submitted", "a new application")
    return out["id"]


def move(d, verb, app, *args, env=None):
    rc, out, err = d.cli("services", verb, app, *args, env=env)
    check(rc == 0, f"services {verb} {app}: {err}")
    return out


def refused(d, needle, *args, env=None, code=None):
    rc, out, err = d.cli("services", *args, env=env)
    check(rc != 0, f"services {args} should be refused: {out}")
    check(needle in err, f"{needle!r} not in {err!r}")
    if code:
        eq(out["name"], code, f"services {args}: code")
    return err


def stored(d, dataset):
    return d.ok("data", "query", dataset, "--limit", "1000")["count"]


def case_every_legal_move_and_illegal_ones_refused():
    """Every move of the table, made along six applications, each recorded in
    application_moves with who, from, to and why; a table of illegal moves refused with
    the state and the moves allowed from it, audited as denied, writing nothing; a viewer
    cannot accept."""
    with node() as d:
        items(d)
        table = d.ok("services", "table")
        eq(len(table), 11, "moves in the table")
        a, b, c, e, f, g = (apply(d) for _ in range(6))
        paths = {
            a: [("accept", "accepted"), ("request", "supplement_required", "缺户口簿"),
                ("supply", "accepted", "已补户口簿"), ("process", "processing"),
                ("request", "supplement_required", "缺照片"), ("supply", "accepted"),
                ("process", "processing"), ("finish", "completed", "准予发放,每月200元")],
            b: [("reject", "rejected", "不属于本社区受理范围")],
            c: [("withdraw", "withdrawn")],
            e: [("accept", "accepted"), ("withdraw", "withdrawn")],
            f: [("accept", "accepted"), ("request", "supplement_required", "缺证明"),
                ("withdraw", "withdrawn")],
            g: [("accept", "accepted"), ("process", "processing"), ("withdraw", "withdrawn")],
        }
        for app, path in paths.items():
            for verb, to, *why in path:
                eq(move(d, verb, app, *why)["to"], to, f"{verb} of {app}")
        made = {(m["from"], m["verb"], m["to"]) for app in paths
                for m in d.ok("services", "show", app)["moves"] if m["verb"] != "submit"}
        eq(made, {(m["from"], m["verb"], m["to"]) for m in table}, "every move of the table")
        shown = d.ok("services", "show", a)
        eq((shown["status"], shown["result"], shown["handler"], shown["allowed"],
            shown["supplement"]), ("completed", "准予发放,每月200元", "admin", "", "缺照片"),
           "application a")
        check("completed_at" in shown and "accepted_at" in shown, shown)
        eq([(m["verb"], m["who"]) for m in shown["moves"]][:2],
           [("submit", "admin"), ("accept", "admin")], "history with who")
        eq(shown["moves"][-1].get("note"), "准予发放,每月200元", "the result recorded")
        eq(d.ok("services", "show", b)["reason"], "不属于本社区受理范围", "the reason")
        eq(stored(d, "application_moves"), 6 + sum(len(p) for p in paths.values()),
           "application_moves: the submissions and every move")
        # Illegal moves: the state and the allowed moves named; nothing written.
        h = apply(d)
        i = apply(d)
        move(d, "accept", i)
        move(d, "request", i, "缺材料")
        illegal = [
            (h, "process", f"application {h} is submitted: cannot process: allowed: "
                           "accept → accepted, reject → rejected, withdraw → withdrawn"),
            (h, "supply", f"application {h} is submitted: cannot supply"),
            (i, "process", f"application {i} is supplement_required: cannot process: "
                           "allowed: supply → accepted, withdraw → withdrawn"),
            (i, "accept", f"application {i} is supplement_required: cannot accept"),
            (a, "withdraw", f"application {a} is completed: cannot withdraw: no move is "
                            "allowed"),
            (b, "accept", f"application {b} is rejected: cannot accept: no move is allowed"),
            (c, "process", f"application {c} is withdrawn: cannot process: no move"),
            (g, "finish", f"application {g} is withdrawn: cannot finish"),
        ]
        before = stored(d, "application_moves")
        for app, verb, needle in illegal:
            extra = ("x",) if verb == "finish" else ()
            refused(d, needle, verb, app, *extra, code="LINLI_ESTATE")
        refused(d, "usage: services reject ID REASON", "reject", h)
        refused(d, "usage: services request ID MATERIALS", "request", h)
        refused(d, "usage: services finish ID RESULT", "finish", h)
        refused(d, "application nosuch: no such application within your reach", "accept",
                "nosuch")
        eq(stored(d, "application_moves"), before, "refused moves write nothing")
        eq(d.ok("services", "show", i)["status"], "supplement_required", "i unchanged")
        rows = d.ok("audit", "--via", "plugin:services", "--result", "denied", "--limit",
                    "100")
        denied = [r for r in rows if r["action"] == "services.move"]
        eq(len(denied), len(illegal), "each illegal move audited as denied")
        check(any(f"application {a} is completed" in (r.get("detail") or "") for r in denied),
              denied)
        # Least roles: a viewer reads but does not accept; an operator does.
        viewer = d.account("viewer1", "viewer", node=YUELAN)
        op = d.account("op", "operator", node=YUELAN)
        d.login()
        refused(d, "services.intake", "accept", h, env={"LINLI_SESSION": viewer})
        eq(d.ok("services", "show", h, env={"LINLI_SESSION": viewer})["status"], "submitted",
           "a viewer reads")
        r = move(d, "accept", h, env={"LINLI_SESSION": op})
        check(r.get("deadline", 0) > 0, f"the city's item read for a community operator: {r}")
        op_app = apply(d, env={"LINLI_SESSION": op})
        eq(d.ok("services", "show", op_app)["moves"][0]["who"], "op", "submitted by op")
        eq(d.ok("services", "show", h)["moves"][-1]["who"], "op", "the move as the caller")
        moved = {(e["who"], e["object"], e.get("detail")) for e in d.ok(
            "audit", "--via", "plugin:services", "--result", "allowed", "--limit", "1000")
            if e["action"] == "services.move"}
        check(("op", h, "accept: submitted → accepted") in moved, f"op's accept: {moved}")
        check(("admin", a, "finish: processing → completed: 准予发放,每月200元") in moved, moved)
        check(("admin", b, "reject: submitted → rejected: 不属于本社区受理范围") in moved, moved)
        eq(len([x for x in moved if x[0] == "admin" and x[2].startswith("submit: item ")]), 8,
           "each submission audited")
        listed = {r["id"]: r["status"] for r in d.ok("services", "list")}
        eq(len(listed), 9, "list")
        eq(sorted(r["id"] for r in d.ok("services", "list", "status=withdrawn")),
           sorted([c, e, f, g]), "list by status")
        refused(d, "'status=nosuch': unknown filter or state", "list", "status=nosuch")
        # The plugin sees the applicant masked; its moves keep the stored values.
        off = d.account("officer", "operator", node=YUELAN, grants=("sensitive:applications",))
        stored_a = d.ok("data", "get", "applications", a, env={"LINLI_SESSION": off})
        eq((stored_a["applicant_name"], stored_a["applicant_id_number"]),
           ("张三", "340104195001010011"), "the applicant's fields kept through the moves")


def case_supplement_stops_the_clock():
    """The promised limit (2 working days) runs from 受理 in working time; 补正 stops it
    (no deadline while supplement_required, the working time left kept) and supply runs
    it on with what was left; the wait is counted in paused_ms, across a weekend."""
    with node() as d:
        d.ok("data", "put", "work_calendar", "--scope", "hefei", "--id", "2027", js(CAL_2027))
        items(d)
        d.ok("clock", "set", "2027-01-11T10:00")  # a Monday
        d.login()
        a = apply(d, BIRTH, "applicant_name=李四", "applicant_id_number=340104199001010022",
                  "child_name=小明", "due_date=2027-03-01", "channel=kiosk",
                  "materials=身份证、结婚证")
        eq(d.ok("services", "show", a)["form"], "child_name=小明\ndue_date=2027-03-01\n",
           "the form fields")
        r = move(d, "accept", a)
        near(r["deadline"], local_ms(2027, 1, 13, 10, 0), "2 working days from Mon 10:00")
        d.ok("clock", "set", "2027-01-11T11:00")
        d.login()
        r = move(d, "request", a, "缺出生医学证明")
        near(r["left_ms"], 13 * HOUR, "13 working hours left")
        shown = d.ok("services", "show", a)
        check("deadline" not in shown, f"the clock stopped: {shown}")
        eq(shown["status"], "supplement_required", "waiting")
        d.ok("clock", "set", "2027-01-15T16:00")  # Friday: past the first deadline
        d.login()
        r = move(d, "supply", a, "已补交")
        # 13 h from Fri 16:00: 1.5 h Friday, the weekend skipped, 7 h Monday, 4.5 h Tuesday
        near(r["deadline"], local_ms(2027, 1, 19, 15, 0), "the hours left, from supply")
        shown = d.ok("services", "show", a)
        near(shown["paused_ms"], 31 * HOUR + HOUR // 2, "Mon 11:00 to Fri 16:00 waited")
        check("paused_since" not in shown and "left_ms" not in shown, shown)
        eq(shown["moves"][-1]["deadline"], r["deadline"], "the move records the deadline")
        r = move(d, "process", a)
        eq(r["deadline"], shown["deadline"], "processing keeps the deadline")
        # An item without a promised limit: accepted without a deadline, and told so.
        b = apply(d, ELDER)
        d.ok("data", "put", "service_items", "--scope", "hefei", "--id", "34010400MZ-GG-0008",
             js({"code": "34010400MZ-GG-0008", "name": "残疾人证", "department": "残联",
                 "status": "active"}))
        c = apply(d, "34010400MZ-GG-0008")
        r = move(d, "accept", c)
        check("deadline" not in r and "has no promised_days" in r.get("warning", ""), r)
        r = move(d, "accept", b)
        check("warning" not in r, r)
        near(r["deadline"], local_ms(2027, 1, 22, 16, 0), "5 working days from Fri 16:00")


def case_bad_items_and_submissions_refused_with_nothing_stored():
    """A code not in the national style, visits other than 0 or 1, a promised limit over
    the statutory one: refused naming the field. An unknown item, an inactive item, a
    missing applicant or form field, an unknown field: refused, and nothing stored."""
    with node() as d:
        items(d)
        for code, why in [("3401040MZ-GG-0007", "does not begin with an area code of 8"),
                          ("34010400mz-GG-0007", "2-4 capital letters of the department"),
                          ("34010400MZ-G-0007", "2 capital letters of the type"),
                          ("34010400MZ-GG-007", "a sequence of 4 digits"),
                          ("34010400MZ-GG-00071", "a sequence of 4 digits")]:
            err = refused(d, f"items add: field 'code': '{code}' is not a national item code",
                          "items", "add", "hefei", code, "n", "dep", code="LINLI_EINVAL")
            check(why in err, f"{why!r} not in {err!r}")
        refused(d, "field 'visits': '2' is not 0 or 1", "items", "add", "hefei",
                "34010400MZ-GG-0009", "n", "dep", "visits=2")
        refused(d, "field 'promised_days': 'x' is not a number", "items", "add", "hefei",
                "34010400MZ-GG-0009", "n", "dep", "promised_days=x")
        refused(d, "field 'promised_days': 9 is longer than the statutory 5", "items", "add",
                "hefei", "34010400MZ-GG-0009", "n", "dep", "promised_days=9",
                "statutory_days=5")
        refused(d, "field 'category': 'weather' is not one of", "items", "add", "hefei",
                "34010400MZ-GG-0009", "n", "dep", "category=weather")
        codes = sorted(r["code"] for r in d.ok("services", "items"))
        eq(codes, sorted([BIRTH, ELDER, RESIDE]), "only the good items stored")
        ok = ("applicant_name=王五", "applicant_id_number=340104198001010033")
        refused(d, f"service item '34010400MZ-GG-0999': no such item at {YUELAN} or above",
                "apply", YUELAN, "34010400MZ-GG-0999", *ok, code="LINLI_ENOENT")
        refused(d, f"service item '{RESIDE}' (居住证) is suspended, not active", "apply",
                YUELAN, RESIDE, *ok, code="LINLI_ESTATE")
        refused(d, "missing field 'applicant_name'", "apply", YUELAN, ELDER,
                "applicant_id_number=340104198001010033", code="LINLI_EINVAL")
        refused(d, "missing field 'applicant_id_number'", "apply", YUELAN, ELDER,
                "applicant_name=王五", "applicant_id_number=")
        refused(d, "items add: 'statutory_day=5' is not FIELD=VALUE", "items", "add", "hefei",
                "34010400MZ-GG-0009", "n", "dep", "statutory_day=5")
        refused(d, f"missing form field 'due_date' of item {BIRTH} (生育登记 needs "
                   "child_name, due_date)", "apply", YUELAN, BIRTH, *ok, "child_name=小明")
        refused(d, f"missing material '结婚证' of item {BIRTH} (生育登记 requires: 身份证,"
                   "结婚证;", "apply", YUELAN, BIRTH, *ok, "child_name=小明",
                "due_date=2027-03-01", "materials=身份证", code="LINLI_EINVAL")
        refused(d, f"missing material '身份证' of item {BIRTH}", "apply", YUELAN, BIRTH,
                *ok, "child_name=小明", "due_date=2027-03-01", code="LINLI_EINVAL")
        refused(d, f"'colour=red' is not FIELD=VALUE with an applicant field or a form field "
                   f"of item {BIRTH} (child_name, due_date)", "apply", YUELAN, BIRTH, *ok,
                "child_name=小明", "due_date=2027-03-01", "colour=red")
        refused(d, "field 'channel': 'fax' is not one of", "apply", YUELAN, ELDER, *ok,
                "channel=fax")
        refused(d, "usage: services apply SCOPE ITEM", "apply", YUELAN)
        eq(stored(d, "applications"), 0, "no application stored")
        eq(stored(d, "application_moves"), 0, "no move stored")
        # The same submission, right, is taken.
        apply(d, BIRTH, *ok, "child_name=小明", "due_date=2027-03-01",
              "materials=结婚证，身份证, 户口簿")
        eq((stored(d, "applications"), stored(d, "application_moves")), (1, 1), "one stored")


QIMING = STREET + "/qiming"


def blake2b_hex(token):
    import hashlib
    return hashlib.blake2b(token.encode(), digest_size=32).hexdigest()


def case_http_submit_and_the_applicants_token():
    """A kiosk (an HTTP client with its own machine key) lists the active items and
    submits through POST /api/v1/applications, which the kernel hands to the plugin: bad
    submissions refused naming what is wrong (unknown item 400, inactive 409, missing
    applicant or form field, a non-string, malformed JSON, a key without the route) with
    nothing stored; a good one returns the id and a 128-bit token shown once — only its
    hash is stored. POST /api/v1/applications/status with the token in the body gives that
    application's state and notice and nothing else; another applicant's token gives the
    other application, a wrong or malformed token 404, a sibling community's key 404, the
    token never travels in the URL. After 办结 the applicant evaluates by token, once."""
    with node(http=True) as d:
        web = d.web
        items(d)
        kiosk = d.ok("apikeys", "add", "kiosk-01", "--resources", "app:services", "--scope",
                     YUELAN, "--role", "operator")["key"]
        app3 = d.ok("apikeys", "add", "app3", "--resources", "app:services/status,"
                    "app:services/items", "--scope", YUELAN)["key"]
        sibling = d.ok("apikeys", "add", "kiosk-qm", "--resources", "app:services", "--scope",
                       QIMING, "--role", "operator")["key"]
        other = d.ok("apikeys", "add", "reader", "--datasets", "residents", "--scope",
                     YUELAN)["key"]
        st, body, _ = web.curl("GET", "/api/v1/apps/services/items", key=app3)
        eq((st, sorted(x["code"] for x in body["items"])), (200, sorted([BIRTH, ELDER])),
           f"the active items: {body}")
        birth = next(x for x in body["items"] if x["code"] == BIRTH)
        eq((birth["name"], birth["promised_days"], birth["form_fields"]),
           ("生育登记", 2, "child_name, due_date"), "an item as the kiosk shows it")

        def post(path, obj, k=kiosk):
            text = obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False)
            return web.curl("POST", path, key=k, body=text)

        person = {"applicant_name": "张三", "applicant_id_number": "340104195001010011"}
        good = dict(person, item=BIRTH, child_name="小明", due_date="2027-03-01",
                    channel="kiosk", materials="身份证\n结婚证")
        bad = [
            (dict(good, item="34010400MZ-GG-0999"), 400,
             f"service item '34010400MZ-GG-0999': no such item at {YUELAN} or above"),
            (dict(good, item=RESIDE), 409, f"service item '{RESIDE}' (居住证) is suspended"),
            ({k: v for k, v in good.items() if k != "applicant_name"}, 400,
             "missing field 'applicant_name'"),
            ({k: v for k, v in good.items() if k != "due_date"}, 400,
             f"missing form field 'due_date' of item {BIRTH}"),
            (dict(good, materials="身份证"), 400,
             f"missing material '结婚证' of item {BIRTH}"),
            (dict(good, applicant_phone=13800000000), 400,
             "field 'applicant_phone': a string expected"),
            (dict(good, colour="red"), 400, "'colour=red' is not FIELD=VALUE"),
            ({k: v for k, v in good.items() if k != "item"}, 400, "field 'item': missing"),
            (dict(good, channel="fax"), 400, "field 'channel': 'fax' is not one of"),
            ("{not json", 400, "malformed JSON"),
            ("[1, 2]", 400, "the body must be a JSON object"),
        ]
        for obj, want, needle in bad:
            st, body, _ = post("/api/v1/applications", obj)
            eq(st, want, f"{obj}: {body}")
            check(needle in body["error"]["message"], f"{needle!r} not in {body}")
        eq(post("/api/v1/applications", good, k=app3)[0], 403, "a key without the route")
        eq(post("/api/v1/applications", good, k=other)[0], 403, "a key without app:services")
        eq(web.curl("GET", "/api/v1/applications", key=kiosk)[0], 405, "GET: not a route")
        eq((stored(d, "applications"), stored(d, "application_moves")), (0, 0),
           "nothing stored by the refused submissions")
        # A good submission: the id and the token, once; only the hash is kept.
        st, sub, _ = post("/api/v1/applications", good)
        eq((st, sub["status"], sub["item"], sub["scope"]), (201, "submitted", BIRTH, YUELAN),
           f"submitted: {sub}")
        a, tok = sub["id"], sub["token"]
        check(len(tok) == 32 and int(tok, 16) >= 0, f"128 bits in hex: {tok}")
        raw = d.ok("data", "get", "applications", a)
        eq((raw["token_hash"], raw["channel"]), (blake2b_hex(tok), "kiosk"), "the hash kept")
        check(tok not in json.dumps(raw) and tok not in json.dumps(d.ok("services", "show", a)),
              "the token itself is stored nowhere")
        check("token_hash" not in d.ok("services", "show", a), "show leaves the hash out")
        eq(d.ok("services", "show", a)["moves"][0]["who"], "apikey:kiosk-01", "the kiosk")
        st, sub2, _ = post("/api/v1/apps/services/applications",
                           dict(person, item=ELDER, applicant_name="李四"))
        eq(st, 201, f"the same route under /api/v1/apps/services: {sub2}")
        b, tok2 = sub2["id"], sub2["token"]
        check(tok2 != tok, "a token per application")
        # The token reads its own application and nothing else.
        st, got, _ = post("/api/v1/applications/status", {"token": tok}, k=app3)
        eq((st, got["id"], got["status"], got["notice"], got["item_name"]),
           (200, a, "submitted", "已提交,等待受理", "生育登记"), f"by token: {got}")
        check(not any(k.startswith("applicant") for k in got) and "张三" not in json.dumps(
            got, ensure_ascii=False) and "token_hash" not in got, f"no applicant field: {got}")
        eq(post("/api/v1/applications/status", {"token": tok2})[1]["id"], b, "token 2: b")
        for wrong in ("0" * 32, tok[:-1] + ("0" if tok[-1] != "0" else "1"), "x", tok.upper(),
                      "340104195001010011"):
            st, got, _ = post("/api/v1/applications/status", {"token": wrong})
            eq((st, got["error"]["message"]), (404, "no application for this token"),
               f"token {wrong!r}")
        st, got, _ = post("/api/v1/applications/status", {"token": tok}, k=sibling)
        eq((st, got["error"]["message"]), (404, "no application for this token"),
           "a sibling community's kiosk")
        st, got, _ = post("/api/v1/applications/status", {})
        check(st == 400 and "field 'token': missing" in got["error"]["message"], got)
        eq(web.curl("GET", f"/api/v1/applications/status?token={tok}", key=kiosk)[0], 405,
           "never in the URL")
        move(d, "accept", a)
        move(d, "request", a, "缺出生医学证明")
        got = post("/api/v1/applications/status", {"token": tok})[1]
        eq((got["status"], got["notice"]), ("supplement_required", "请补正材料: 缺出生医学证明"),
           "the notice")
        move(d, "supply", a)
        move(d, "process", a)
        got = post("/api/v1/applications/evaluate", {"token": tok, "score": 5})
        check(got[0] == 409 and "once completed" in got[1]["error"]["message"], got)
        move(d, "finish", a, "准予登记")
        got = post("/api/v1/applications/status", {"token": tok})[1]
        eq((got["notice"], got["can_evaluate"]), ("已办结: 准予登记", True), "completed")
        st, got, _ = post("/api/v1/applications/evaluate", {"token": tok, "score": 9})
        check(st == 400 and "field 'score': '9' is not a score 1-5" in got["error"]["message"],
              got)
        st, got, _ = post("/api/v1/applications/evaluate",
                          {"token": tok, "score": 4, "comment": "办事快"})
        eq((st, got["evaluation"], got["can_evaluate"]), (200, 4, False), f"evaluated: {got}")
        st, got, _ = post("/api/v1/applications/evaluate", {"token": tok, "score": 1})
        check(st == 409 and "evaluated already" in got["error"]["message"], f"once: {got}")
        eq(post("/api/v1/applications/evaluate", {"token": tok2, "score": 1}, k=app3)[0], 403,
           "a key without the evaluate route")
        shown = d.ok("services", "show", a)
        eq((shown["evaluation"], shown["evaluation_comment"], shown["moves"][-1]["verb"]),
           (4, "办事快", "evaluate"), "the evaluation kept")
        audit = d.ok("audit", "--via", "plugin:services", "--limit", "1000")
        check(any(e["who"] == "apikey:kiosk-01" and e["action"] == "services.move" and
                  e["object"] == a for e in audit), "the kiosk's submission audited")
        check(not any(tok in json.dumps(e, ensure_ascii=False) for e in audit),
              "no token in the audit")


def case_receipt_evaluation_and_deadlines_on_the_test_clock():
    """The receipt (受理回执) of an accepted application: the item, the applicant masked,
    accepted at, the promised deadline, never the token. On the test clock the deadline
    timer warns once at 80% of the promised time and, past the deadline, records the
    application overdue and escalated (督办) to its street, once; services overdue and
    stats show them; the alarms plugin raises its overdue alarm once, cleared at 办结; the
    counter takes the applicant's evaluation once, after 办结."""
    with node(alarms=True) as d:
        d.ok("data", "put", "work_calendar", "--scope", "hefei", "--id", "2027", js(CAL_2027))
        items(d)
        d.ok("clock", "set", "2027-01-11T10:00")  # a Monday
        d.login()
        rc, sub, err = d.cli("services", "apply", YUELAN, BIRTH, "applicant_name=李四",
                             "applicant_id_number=340104199001010022", "child_name=小明",
                             "due_date=2027-03-01", "materials=身份证\n结婚证")
        check(rc == 0 and len(sub["token"]) == 32, f"a token at the counter too: {sub} {err}")
        a = sub["id"]
        refused(d, f"receipt: application {a} is submitted: a receipt (受理回执) is printed "
                   "once it is accepted", "receipt", a, code="LINLI_ESTATE")
        move(d, "accept", a)
        text = d.ok("services", "receipt", a)["receipt"]
        for want in ("受理回执", f"办件编号: {a}", f"事项: 生育登记 ({BIRTH})", "承办部门: 卫健委",
                     "申请人: 李*  证件号码: **************0022", "受理时间: 2027-01-11 10:0",
                     "承诺办结: 2027-01-13 10:0", "(承诺 2 个工作日)", "本回执不含查询码"):
            check(want in text, f"{want!r} not in the receipt:\n{text}")
        check("李四" not in text and "340104199001010022" not in text and sub["token"] not in
              text, f"nothing in clear:\n{text}")
        refused(d, "usage: services receipt ID", "receipt")
        eq(d.ok("services", "overdue"), [], "nothing due on Monday")
        # Tuesday 16:00: 11.5 of 14 working hours used (82%): warned once.
        d.ok("clock", "set", "2027-01-12T16:00")
        d.login()
        b = apply(d, ELDER)
        move(d, "accept", b)  # 5 working days from now: not due
        d.ok("clock", "set", "2027-01-12T16:05")
        d.login()
        due = d.ok("services", "overdue")
        eq([(x["id"], x["level"]) for x in due], [(a, "warning")], f"warned: {due}")
        check(80 <= due[0]["percent"] < 100, due)
        warns = [m for m in d.ok("services", "show", a)["moves"] if m["verb"] == "warn"]
        eq(len(warns), 1, "one warning recorded")
        eq((warns[0]["who"], warns[0]["from"], warns[0]["to"]),
           ("plugin:services", "accepted", "accepted"), "the warning's move")
        check("% of the promised time used" in warns[0]["note"], warns)
        # Wednesday 11:00: past Wednesday 10:00, overdue and escalated to the street, once.
        d.ok("clock", "set", "2027-01-13T11:00")
        d.login()
        d.ok("clock", "set", "2027-01-13T11:30")
        d.login()
        due = d.ok("services", "overdue")
        eq([(x["id"], x["level"]) for x in due], [(a, "overdue")], f"overdue: {due}")
        shown = d.ok("services", "show", a)
        over = [m for m in shown["moves"] if m["verb"] == "overdue"]
        eq(len(over), 1, f"one overdue move after two ticks: {shown['moves']}")
        check(f"escalated (督办) to {STREET}" in over[0]["note"], over)
        eq((shown["escalated_to"], len([m for m in shown["moves"] if m["verb"] == "warn"])),
           (STREET, 1), "escalated, still one warning")
        check(any(e["action"] == "services.overdue" and e["object"] == a for e in d.ok(
            "audit", "--limit", "1000")), "the escalation audited")
        src = f"record:applications/{a}"
        over = wait_for(lambda: [x for x in d.ok("alarms", "list", "--active")["alarms"]
                                 if x["type"] == "application_overdue"] or None,
                        "the overdue alarm")
        eq([(x["source"], x["severity"], x["scope"]) for x in over], [(src, "major", YUELAN)],
           f"one overdue alarm after two ticks: {over}")
        check(STREET in over[0]["details"] and "张" not in over[0]["details"], over)
        wait_for(lambda: d.ok("services", "show", a).get("alarm_for"), "its answer recorded")
        # 办结 late; the evaluation at the counter, once, after 办结 only.
        move(d, "process", a)
        refused(d, "it is evaluated (好差评) once completed", "evaluate", a, "5",
                code="LINLI_ESTATE")
        move(d, "finish", a, "准予登记")
        wait_for(lambda: not [x for x in d.ok("alarms", "list", "--active")["alarms"]
                              if x["type"] == "application_overdue"], "cleared at 办结")
        refused(d, "field 'score': 'six' is not a score 1-5", "evaluate", a, "six")
        refused(d, "usage: services evaluate ID SCORE", "evaluate", a)
        eq(d.ok("services", "evaluate", a, "3", "慢了一天")["evaluation"], 3, "evaluated")
        refused(d, "evaluated already (once only)", "evaluate", a, "5", code="LINLI_EEXIST")
        stats = d.ok("services", "stats")
        eq((stats["total"], stats["by_status"]["completed"], stats["by_status"]["accepted"],
            stats["overdue"], stats["escalated"], stats["completed_late"],
            stats["completed_on_time"], stats["evaluated"], stats["average_score"]),
           (2, 1, 1, 0, 1, 1, 0, 1, 3.0), f"stats: {stats}")
        eq(d.ok("services", "stats", "scope=" + QIMING)["total"], 0, "a sibling's stats")
        refused(d, "usage: services stats [scope=PATH]", "stats", "nosuch")


def case_a_joint_item_closes_only_when_every_co_handler_is_done():
    """A joint item (联办) names its co-handling departments: 办结 is refused naming the
    parts still awaited (audited, nothing written) until each co-handler's part is
    recorded — once each, only while processing, only by a co-handler of the item."""
    with node() as d:
        items(d)
        joint = "34010400RS-GG-0012"
        d.ok("services", "items", "add", "hefei", joint, "退休一件事", "人社局",
             "promised_days=10", "co_handlers=医保局, 公积金中心")
        eq({r["code"]: r.get("co_handlers") for r in d.ok("services", "items")}[joint],
           "医保局, 公积金中心", "the co-handlers listed")
        a, b, plain = apply(d, joint), apply(d, joint), apply(d, ELDER)
        for app in (a, plain):
            move(d, "accept", app)
            move(d, "process", app)
        move(d, "accept", b)
        refused(d, f"part: item {ELDER} of application {plain} is not a joint item (联办)",
                "part", plain, "医保局", code="LINLI_ESTATE")
        refused(d, f"part: application {b} is accepted: a co-handler's part is recorded "
                   "while it is processing", "part", b, "医保局", code="LINLI_ESTATE")
        refused(d, f"part: '税务局' is not a co-handler of item {joint} (co-handlers: 医保局, "
                   "公积金中心)", "part", a, "税务局", code="LINLI_EINVAL")
        refused(d, "usage: services part ID DEPARTMENT", "part", a)
        before = stored(d, "application_moves")
        refused(d, f"application {a} is a joint item (联办): cannot finish before every "
                   "co-handler's part is done: waiting for 医保局,公积金中心", "finish", a, "准予",
                code="LINLI_ESTATE")
        eq(stored(d, "application_moves"), before, "a refused finish writes nothing")
        r = d.ok("services", "part", a, "医保局", "医保关系已转移")
        eq((r["parts_done"], r["waiting"]), ("医保局", "公积金中心"), "one part done")
        refused(d, f"part: application {a}: 医保局's part is done already", "part", a, "医保局",
                code="LINLI_EEXIST")
        refused(d, "waiting for 公积金中心", "finish", a, "准予", code="LINLI_ESTATE")
        eq(d.ok("services", "part", a, "公积金中心")["waiting"], "", "every part done")
        eq(move(d, "finish", a, "准予退休")["to"], "completed", "办结 once all are done")
        eq(move(d, "finish", plain, "准予")["to"], "completed", "a plain item is not held")
        shown = d.ok("services", "show", a)
        eq((shown["status"], shown["parts_done"]), ("completed", "医保局,公积金中心"), "a")
        eq([(m["verb"], m.get("note")) for m in shown["moves"] if m["verb"] == "part"],
           [("part", "医保局: 医保关系已转移"), ("part", "公积金中心")], "the parts' moves")
        denied = [e for e in d.ok("audit", "--via", "plugin:services", "--result", "denied",
                                  "--limit", "100") if "joint item" in (e.get("detail") or "")]
        eq(len(denied), 2, "each refused finish audited")


def case_an_item_handled_above_is_handled_by_the_street():
    """上报件: accepting an application for an item whose handling level is the street
    hands it to the street — recorded as a report_up move, audited — and from then on only
    the street moves it on (a community operator is refused naming the handling scope);
    the applicant's community keeps the counter's moves (withdraw) and the record, where
    the applicant's token reads it."""
    with node() as d:
        items(d)
        up = "34010400MZ-XK-0021"
        d.ok("services", "items", "add", "hefei", up, "特困人员认定", "民政局",
             "promised_days=20", "handling_level=street")
        comm = d.account("yl-svc", "operator", node=YUELAN)
        street = d.account("bh-svc", "operator", node=STREET)
        ce, se = {"LINLI_SESSION": comm}, {"LINLI_SESSION": street}
        a, b, plain = apply(d, up, env=ce), apply(d, up, env=ce), apply(d, ELDER, env=ce)
        r = move(d, "accept", a, env=ce)
        eq((r["to"], r["handling_scope"]), ("accepted", STREET), "accepted, handled above")
        eq(move(d, "accept", plain, env=ce).get("handling_scope"), None, "a community item")
        refused(d, f"application {a} is 上报件: handled at {STREET}, not at {YUELAN}",
                "process", a, env=ce, code="LINLI_EPERM")
        eq(move(d, "process", plain, env=ce)["to"], "processing", "the community's own")
        eq(move(d, "process", a, env=se)["to"], "processing", "the street processes it")
        eq(move(d, "finish", a, "认定为特困人员", env=se)["to"], "completed", "and finishes it")
        shown = d.ok("services", "show", a)
        eq((shown["scope"], shown["handling_scope"], shown["handler"]),
           (YUELAN, STREET, "bh-svc"), "kept where submitted, handled by the street")
        eq([(m["verb"], m.get("note")) for m in shown["moves"] if m["verb"] == "report_up"],
           [("report_up", STREET)], "the report-up move")
        move(d, "accept", b, env=ce)
        eq(move(d, "withdraw", b, env=ce)["to"], "withdrawn", "the counter withdraws it")
        audited = [e for e in d.ok("audit", "--via", "plugin:services", "--limit", "200")
                   if "上报件, handled at " + STREET in (e.get("detail") or "")]
        eq(len(audited), 2, "each report-up audited")


def case_the_simulated_kiosks_submit_end_to_end():
    """tools/kiosk-sim, as tools/demo runs it: kiosks with their own key list the items,
    submit applications (stored with channel kiosk, by the kiosk's key, the item's form
    fields filled) and show the resident only a slip with the token's first characters; a
    missing key file is refused naming it."""
    import re
    import subprocess
    with node(http=True) as d:
        items(d)
        key = d.ok("apikeys", "add", "kiosk-hall-1", "--resources", "app:services", "--scope",
                   YUELAN, "--role", "operator")["key"]
        kf = os.path.join(d.dir, "kiosk.key")
        with open(kf, "w") as f:
            f.write(key + "\n")
        sim = os.path.join(SRC, "tools", "kiosk-sim")
        url = f"http://127.0.0.1:{d.web.port}"

        def run(count):
            r = subprocess.run([sys.executable, sim, "--url", url, "--key-file", kf, "--every",
                                "0.1", "--kiosks", "2", "--count", str(count), "--seed", "7"],
                               capture_output=True, text=True, timeout=60)
            eq(r.returncode, 0, f"kiosk-sim: {r.stdout} {r.stderr}")
            return r.stdout
        out = run(3)
        apps = d.ok("services", "list")
        eq(len(apps), 3, f"three applications: {out}")
        for a in apps:
            shown = d.ok("services", "show", a["id"])
            eq((shown["channel"], shown["status"], shown["scope"]), ("kiosk", "submitted", YUELAN),
               "submitted at a kiosk")
            check(a["id"] in out, f"{a['id']} reported by the kiosk: {out}")
            eq(shown["moves"][0]["who"], "apikey:kiosk-hall-1", "by the kiosk's own key")
            if shown["item"] == BIRTH:
                check("child_name=小宝" in shown["form"] and "due_date=2027-03-01" in shown["form"],
                      f"the item's form fields: {shown}")
        check(BIRTH in {a["item"] for a in apps}, f"生育登记 among them (its materials): {apps}")
        eq(len(re.findall(r"token [0-9a-f]{6}…", out)), 3, f"a slip each: {out}")
        check(not re.search(r"[0-9a-f]{20}", out), f"never a whole token: {out}")
        check("refused" not in out and ": 404" not in out, f"its status requests: {out}")
        # A bad key file is refused naming it; a key without the routes is reported.
        r = subprocess.run([sys.executable, sim, "--url", url, "--key-file", kf + ".nope"],
                           capture_output=True, text=True, timeout=30)
        check(r.returncode != 0 and "kiosk.key.nope" in r.stderr, r.stderr)


if __name__ == "__main__":
    sys.exit(main(dict(globals())))
