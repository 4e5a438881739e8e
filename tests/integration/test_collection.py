"""Integration tests of unified data collection (plugins/collection, 一表同享) through a
real linlid at the city node with the real catalog: a form that asks a lower tier to
re-collect a field the city holds and shares is refused when it is defined (and when it
is used, had it been stored another way), naming the field and the dataset; bad
definitions refused with nothing stored; a community operator opens the street's form for
an elder pre-filled from the resident record, and a submission writes back only the
fields that changed, logs who and which form, is refused as a conflict when the record
changed since the revision it was made from, and bad values are refused with nothing
written; the report gives the share pre-filled against collected.
"""
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import BUILD, SRC, Daemon, check, eq, finish, main  # noqa: E402

SO = os.path.join(BUILD, "plugins", "collection", "collection.so")
STREET = "hefei/baohe/binhu"
YUELAN = STREET + "/yuelan"
ELDER_FIELDS = ("resident.name,resident.gender,resident.phone,lives_alone,care_level,"
                "emergency_contact_name,emergency_contact_phone")


class node:
    """A linlid at the city with the collection plugin; the console is the city's admin."""

    def __init__(self):
        self.d = Daemon()
        pdir = os.path.join(self.d.dir, "plugins")
        os.makedirs(pdir)
        shutil.copyfile(SO, os.path.join(pdir, "collection.so"))
        self.d.write_config(extra=f'plugin_dirs = [ "{pdir}" ];\n'
                                  f'catalog_dir = "{os.path.join(SRC, "catalog")}";\n')
        self.d.grant_declared(pdir)

    def __enter__(self):
        try:
            return self.d.start()
        except BaseException:
            self.d.cleanup()
            raise

    def __exit__(self, etype, *rest):
        finish(self.d, etype)


def js(v):
    return json.dumps(v, ensure_ascii=False)


def refused(d, args, name, text, env=None):
    rc, out, err = d.cli("collection", *args, env=env)
    check(rc == 1 and isinstance(out, dict) and out.get("name") == name
          and text in out.get("error", ""),
          f"collection {' '.join(args)}: want {name} {text!r}, got {rc} {out} {err}")


def submissions(d):
    """The collection_submissions records (each with its scope), oldest first."""
    rows = d.ok("data", "query", "collection_submissions", "--limit", "1000")["records"]
    return sorted(rows, key=lambda s: s["at"])


def seed(d):
    d.ok("data", "put", "residents", "--scope", YUELAN, "--id", "r1",
         js({"name": "王秀英", "id_number": "340104194501011234", "gender": "female",
             "phone": "13900000001"}))
    d.ok("data", "put", "elders", "--scope", YUELAN, "--id", "e1",
         js({"resident": "r1", "lives_alone": False, "care_level": "partial_care",
             "emergency_contact_name": "王强", "emergency_contact_phone": "13900000002",
             "health_notes": "高血压"}))


def case_a_form_that_re_collects_a_shared_field_is_refused():
    with node() as d:
        seed(d)
        refused(d, ["form", "add", STREET, "f-res", "residents", "name,phone", "居民信息"],
                "LINLI_EPERM", "field 'name' is held by dataset 'residents', which the city "
                "collects and shares down (source city, sharing conditional): a form at "
                f"{STREET} may show it pre-filled through a ref but never collect it again")
        for args, name, text in (
                (["elders", "nope"], "LINLI_EINVAL",
                 "field 'nope': dataset 'elders' has no such field"),
                (["elders", "resident.nope"], "LINLI_EINVAL",
                 "field 'resident.nope': dataset 'residents' has no field 'nope'"),
                (["elders", "care_level.name"], "LINLI_EINVAL",
                 "'care_level' is not a ref field of dataset 'elders'"),
                (["elders", "lives_alone,,care_level"], "LINLI_EINVAL", "an empty name"),
                (["elders", "lives_alone,lives_alone"], "LINLI_EINVAL", "'lives_alone' twice"),
                (["watchlist", "name"], "LINLI_EPERM", "dataset 'watchlist' is restricted"),
                (["nosuch", "a"], "LINLI_EINVAL", "dataset 'nosuch': no such dataset"),
                (["alarms", "type"], "LINLI_EPERM", "dataset 'alarms' is not one collection "
                                                    "may write")):
            refused(d, ["form", "add", STREET, "f-x"] + args + ["表"], name, text)
        refused(d, ["form", "add", STREET, "f-x", "elders"], "LINLI_EINVAL", "usage:")
        eq(d.ok("collection", "form", "list"), [], "nothing stored by the refusals")
        # The city collects what it holds: the same fields in a form at the city are fine.
        r = d.ok("collection", "form", "add", "hefei", "f-city", "residents", "name,phone",
                 "人口信息")
        eq((r["collected"], r["prefilled"]), (2, 0), "the city's own form")
        # A good form at the street: the resident's fields through the ref, pre-filled.
        r = d.ok("collection", "form", "add", STREET, "f-elder", "elders", ELDER_FIELDS,
                 "老年人信息采集")
        eq((r["prefilled"], r["collected"]), (3, 4), f"f-elder: {r}")
        eq([(f["field"], f["mode"], f["dataset"]) for f in r["fields"]][:4],
           [("resident.name", "prefill", "residents"), ("resident.gender", "prefill",
                                                        "residents"),
            ("resident.phone", "prefill", "residents"), ("lives_alone", "collect", "elders")],
           "fields")
        eq(sorted(f["code"] for f in d.ok("collection", "form", "list")),
           ["f-city", "f-elder"], "listed")
        # A form stored another way (data put) that re-collects a shared field is refused
        # when it is used, and shown as a problem in the report.
        d.ok("data", "put", "collection_forms", "--scope", STREET, "--id", "f-sneak",
             js({"code": "f-sneak", "title": "t", "target_dataset": "residents",
                 "field_names": "phone", "status": "published"}))
        refused(d, ["open", "f-sneak", "r1"], "LINLI_EPERM",
                "form 'f-sneak': field 'phone' is held by dataset 'residents'")
        rep = {r["form"]: r for r in d.ok("collection", "report")}
        check("field 'phone' is held by dataset 'residents'" in rep["f-sneak"]["problem"], rep)
        eq((rep["f-elder"]["prefilled"], rep["f-elder"]["collected"]), (3, 4), "report")


def case_prefill_write_back_only_changed_fields_and_conflicts():
    with node() as d:
        seed(d)
        d.ok("collection", "form", "add", STREET, "f-elder", "elders", ELDER_FIELDS, "老年人信息")
        # The community's elder-care operator reads elders' contacts in clear (the grant),
        # residents' fields masked.
        op = d.account("yl-op", "operator", node=YUELAN, grants=("sensitive:elders",))
        env = {"LINLI_SESSION": op}
        # The community operator finds the street's form (the plugin's cache, not the
        # caller's reach) and sees the resident's fields pre-filled as it may see them.
        o = d.ok("collection", "open", "f-elder", "e1", env=env)
        fields = {f["field"]: f for f in o["fields"]}
        mine = d.ok("data", "get", "residents", "r1", env=env)
        for k in ("name", "gender", "phone"):
            eq(fields["resident." + k].get("value"), mine.get(k), f"resident.{k} pre-filled")
            eq(fields["resident." + k]["mode"], "prefill", k)
        check(mine["name"] != "王秀英", f"the name comes masked to the operator: {mine}")
        eq((fields["lives_alone"]["value"], fields["care_level"]["value"]),
           (False, "partial_care"), "the elder's own values")
        eq(o["scope"], YUELAN, "the record's scope")
        rev = o["rev"]
        check(len(rev) == 16, rev)
        # Bad submissions: nothing written, nothing logged.
        for args, name, text in (
                (["resident.name=李四"], "LINLI_EPERM",
                 "field 'resident.name' is read-only in form 'f-elder': dataset 'residents'"),
                (["lives_alone=maybe"], "LINLI_EINVAL",
                 "field 'lives_alone': 'maybe' is not true or false"),
                (["care_level=flying"], "LINLI_ESCHEMA", "'flying' is not one of"),
                (["health_notes=x"], "LINLI_EINVAL", "field 'health_notes' is not in form"),
                (["lives_alone"], "LINLI_EINVAL", "'lives_alone' is not FIELD=VALUE"),
                (["care_level=self_care", "care_level=full_care"], "LINLI_EINVAL", "twice")):
            refused(d, ["submit", "f-elder", "e1", rev] + args, name, text, env=env)
        refused(d, ["submit", "f-elder", "e9", rev, "lives_alone=true"], "LINLI_ENOENT",
                "elders record 'e9': no such record", env=env)
        refused(d, ["submit", "f-nope", "e1", rev, "lives_alone=true"], "LINLI_ENOENT",
                "no form 'f-nope'", env=env)
        eq(d.ok("data", "get", "elders", "e1")["care_level"], "partial_care", "unchanged")
        eq(submissions(d), [], "no submission logged")
        # A submission writes only what changed.
        r = d.ok("collection", "submit", "f-elder", "e1", rev, "lives_alone=是",
                 "care_level=self_care", "emergency_contact_name=王强", env=env)
        eq((r["result"], r["changed"], r["unchanged"]),
           ("applied", ["lives_alone", "care_level"], 1), f"applied: {r}")
        e1 = d.ok("data", "get", "elders", "e1", env=env)
        eq((e1["lives_alone"], e1["care_level"], e1["health_notes"],
            e1["emergency_contact_phone"]), (True, "self_care", "高血压", "13900000002"),
           "written back: only the changed fields; the rest intact")
        check(r["rev"] != rev, "a new revision")
        eq(d.ok("collection", "open", "f-elder", "e1", env=env)["rev"], r["rev"],
           "the revision a new open gives")
        # The same submission against the old revision: a conflict, nothing overwritten.
        refused(d, ["submit", "f-elder", "e1", rev, "care_level=full_care"], "LINLI_ESTATE",
                f"conflict: elders record 'e1' changed since revision {rev}", env=env)
        eq(d.ok("data", "get", "elders", "e1")["care_level"], "self_care", "not overwritten")
        # A change by another way (the console) is a conflict too.
        d.ok("data", "put", "elders", "--scope", YUELAN, "--id", "e1",
             js({k: v for k, v in dict(e1, care_level="full_care").items()
                 if k not in ("id", "scope")}))
        refused(d, ["submit", "f-elder", "e1", r["rev"], "lives_alone=false"], "LINLI_ESTATE",
                "conflict", env=env)
        rev2 = d.ok("collection", "open", "f-elder", "e1", env=env)["rev"]
        u = d.ok("collection", "submit", "f-elder", "e1", rev2, "care_level=full_care",
                 env=env)
        eq((u["result"], u["changed"], u["rev"]), ("unchanged", [], rev2), "nothing changed")
        # The provenance, as the caller.
        subs = submissions(d)
        eq([(s["result"], s["by"], s["form"], s["record"]) for s in subs],
           [("applied", "yl-op", "f-elder", "e1"), ("conflict", "yl-op", "f-elder", "e1"),
            ("conflict", "yl-op", "f-elder", "e1"), ("unchanged", "yl-op", "f-elder", "e1")],
           "submissions")
        eq(subs[0]["changed"], "lives_alone,care_level", "which fields")
        eq({s["scope"] for s in subs}, {YUELAN}, "logged at the record's scope")
        rep = d.ok("collection", "report", "f-elder", env=env)[0]
        eq((rep["fields"], rep["prefilled"], rep["collected"], rep["submissions"],
            rep["applied"], rep["conflict"], rep["unchanged"], rep["fields_written"]),
           (7, 3, 4, 4, 1, 2, 1, 2), f"report: {rep}")
        check(abs(rep["prefilled_share"] - 3 / 7) < 1e-9, rep)
        # A viewer reads but may not submit.
        v = d.account("yl-viewer", "viewer", node=YUELAN)
        refused(d, ["submit", "f-elder", "e1", rev2, "lives_alone=true"], "LINLI_EPERM",
                "collection.submit", env={"LINLI_SESSION": v})
        # Two communities of the street each hold an elder 'e1' and a resident 'r1': the
        # city's admin names the record's scope (--scope), and its resident is the one of the
        # same community (a ref is read at the record's own scope, then above it).
        QIMING = STREET + "/qiming"
        d.ok("data", "put", "residents", "--scope", QIMING, "--id", "r1",
             js({"name": "赵德明", "id_number": "340104194108230015", "gender": "male"}))
        d.ok("data", "put", "elders", "--scope", QIMING, "--id", "e1",
             js({"resident": "r1", "lives_alone": True, "care_level": "self_care",
                 "emergency_contact_phone": "13900000031"}))
        refused(d, ["open", "f-elder", "e1"], "LINLI_EINVAL", "2 records have id 'e1'")
        refused(d, ["open", "f-elder", "e1", "--scope"], "LINLI_EINVAL",
                "open: --scope needs one path")
        q = d.ok("collection", "open", "f-elder", "e1", "--scope", QIMING)
        qf = {f["field"]: f.get("value") for f in q["fields"]}
        eq((q["scope"], qf["resident.gender"], qf["care_level"]), (QIMING, "male", "self_care"),
           f"qiming's e1 and its own r1: {q}")
        y = d.ok("collection", "open", "f-elder", "e1", "--scope", YUELAN)
        eq({f["field"]: f.get("value") for f in y["fields"]}["resident.gender"], "female",
           "yuelan's r1")
        u = d.ok("collection", "submit", "f-elder", "e1", q["rev"], "care_level=partial_care",
                 "--scope", QIMING)
        eq(u["result"], "applied", f"submitted at qiming: {u}")
        eq(d.ok("data", "get", "elders", "e1", "--scope", QIMING)["care_level"], "partial_care",
           "qiming's e1 written")
        eq(d.ok("data", "get", "elders", "e1", "--scope", YUELAN)["care_level"], "full_care",
           "yuelan's e1 untouched")


if __name__ == "__main__":
    sys.exit(main({k: v for k, v in globals().items() if k.startswith("case_")}))
