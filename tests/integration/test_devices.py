"""Integration tests of the device layer (HAL) through a real linlid.

Drivers are real .so plugins: the simulated fleet (plugins/sim) and the test
driver tdrv (tests/plugins/tp_driver.c), whose devices behave by address
(ok, fail, failN, slow, err) and whose console commands post readings and
events the way a device would. devapp (tests/plugins/tp_devapp.c) is an
application holding device.read:door and device.command:smoke only.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import (  # noqa: E402
    BUILD, LINLID, SRC, Daemon, TestFailure, check, eq, finish, main, wait_for)

TP = os.path.abspath(os.environ.get("LINLI_TP_DIR", os.path.join(BUILD, "tests", "plugins")))
SIM = os.path.join(BUILD, "plugins", "sim", "sim.so")
CATALOG = os.path.join(SRC, "catalog")
COMMUNITY = "hefei/baohe/binhu/yuelan"


class node:
    """A daemon with the catalog, the given plugins and a sim section."""

    def __init__(self, plugins=("tp_driver",), sim=None, path=COMMUNITY, level="community",
                 extra=""):
        self.d = Daemon(node=path, level=level)
        self.pdir = os.path.join(self.d.dir, "plugins")
        os.makedirs(self.pdir)
        for p in plugins:
            shutil.copyfile(os.path.join(TP, p + ".so"), os.path.join(self.pdir, p + ".so"))
        if sim is not None:
            shutil.copyfile(SIM, os.path.join(self.pdir, "sim.so"))
        conf = ""
        if sim is not None:
            body = "".join(f" {k} = {v};" for k, v in sim.items())
            conf = f"plugins = {{ sim = {{{body} }}; }};\n"
        self.d.write_config(node=path, level=level, name="n",
                            extra=f'catalog_dir = "{CATALOG}";\n'
                                  f'plugin_dirs = [ "{self.pdir}" ];\n' + conf + extra)
        self.d.grant_declared(self.pdir)  # the admin approves what they declare

    def __enter__(self):
        self.d.start()
        return self.d

    def __exit__(self, etype, *rest):
        finish(self.d, etype)  # a clean stop after a case that passed


MANUAL = {"per_class": 1, "auto": "false", "thread": "false"}


def fails(d, *args, needle=None, name=None):
    rc, out, err = d.cli(*args)
    check(rc == 1, f"linli {' '.join(args)} should fail, got {rc}: {out}")
    if needle:
        check(needle in err, f"linli {' '.join(args)}: {needle!r} not in {err!r}")
    if name:
        check(name in err or (isinstance(out, dict) and out.get("name") == name),
              f"{name} not in {err!r}")
    return err


def add(d, id_, cls, drv, addr, *opts):
    out = d.ok("devices", "add", id_, cls, drv, addr, *opts)
    return out


def show(d, id_):
    return d.ok("devices", "show", id_)


def post(d, id_, res, ty, val):
    return d.ok("tdrv", "post", id_, res, ty, str(val))["rc"]


def drain(d, sid, rounds=20):
    """Every event queued for external subscription sid, in order."""
    out = []
    for _ in range(rounds):
        rep = d.ok("events", "next", str(sid), "--wait", "300")
        if not rep["events"]:
            break
        out += rep["events"]
    return out


def count(log, needle):
    return log.count(needle)


# ---- the simulated fleet ----

def case_sim_fleet_live_in_devices_list():
    with node(plugins=(), sim={"per_class": 2, "tick_ms": 100}) as d:
        rows = wait_for(lambda: (lambda r: r if all(x["state"] == "online" and x["readings"] > 0
                                                     for x in r) else None)(
            d.ok("devices", "list")), "every sim device online")
        eq(len(rows), 36, "18 classes x 2")
        eq(len({r["class"] for r in rows}), 18, "every catalog class")
        check(all(r["driver"] == "sim" and r["scope"] == COMMUNITY for r in rows), rows[0])
        check(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", rows[0]["last_seen"]),
              rows[0]["last_seen"])
        ids = [r["id"] for r in rows]
        eq(ids, sorted(ids), "sorted by id")
        page = d.ok("devices", "list", "--limit", "5")
        eq([r["id"] for r in page], ids[:5], "first page")
        page = d.ok("devices", "list", "--limit", "5", "--after", ids[4])
        eq([r["id"] for r in page], ids[5:10], "next page")
        eq([r["id"] for r in d.ok("devices", "list", "--class", "door", "--state", "online")],
           ["sim-door-001", "sim-door-002"], "filtered")
        check("sim-smoke-001" in ids and "sim-water_meter-002" in ids, ids)
        # Readings: every readable resource has a value of its class.
        rd = {r["resource"]: r for r in d.ok("devices", "readings", "sim-electric_meter-001")}
        eq(set(rd), {"reading", "power", "voltage", "current", "power_factor", "relay"}, "meter")
        check(all(r["value"] is not None for r in rd.values()), rd)
        eq(rd["reading"]["unit"], "kWh", "unit from the class")
        check(rd["relay"]["value"] in ("on", "off"), rd["relay"])
        # Meters count up.
        first = rd["reading"]["value"]
        time.sleep(0.5)
        later = {r["resource"]: r for r in d.ok("devices", "readings",
                                                 "sim-electric_meter-001")}["reading"]["value"]
        check(later > first, f"meter did not count up: {first} -> {later}")
        s = show(d, "sim-door-001")
        eq(s["state"], "online", "show state")
        eq(s["open"], True, "open")
        eq(s["heartbeat_s"], 120, "class heartbeat")
        eq(s["commands"], ["open", "lock", "set_mode"], "class commands")
        eq(s["credential"], "none", "discovered devices have no credential yet")
        st = d.ok("sim", "status")
        eq(st["devices"], 36, "sim status")
        eq(st["mode"], "thread", "default: its own thread")
        check(d.ok("devices", "stats")["readings"] > 0, "stats")


def case_sim_commands_and_writes():
    with node(plugins=(), sim=MANUAL) as d:
        d.ok("sim", "step", "2")
        r = d.ok("devices", "command", "sim-door-001", "open", "seconds=5")
        eq(r["result"], {"unlocked_for_s": 5, "ok": True}, "door open")
        eq(r["device"], "sim-door-001", "reply names the device")
        r = d.ok("devices", "command", "sim-locker-001", "reserve", "size=small", "hours=2")
        check(1 <= r["result"]["compartment"] <= 1000, r)
        d.ok("devices", "command", "sim-smoke-001", "reset")
        d.ok("devices", "command", "sim-electric_meter-001", "relay_off")
        r = d.ok("devices", "command", "sim-gate-001", "open")
        eq(r["result"], {"barrier": "open", "ok": True}, "the gate's barrier lifts")
        d.ok("sim", "step", "1")
        rd = {x["resource"]: x["value"] for x in d.ok("devices", "readings",
                                                       "sim-electric_meter-001")}
        eq(rd["relay"], "off", "the relay command took effect")
        barrier = lambda: {x["resource"]: x["value"] for x in  # noqa: E731
                           d.ok("devices", "readings", "sim-gate-001")}["barrier"]
        eq(barrier(), "open", "open for a round")
        eq(rd["power"], 0.0, "no power with the relay off")
        r = d.ok("devices", "set", "sim-door-001", "open_time=9")
        eq(r["result"], {"written": ["open_time"]}, "write")
        d.ok("sim", "step", "1")
        rd = {x["resource"]: x["value"] for x in d.ok("devices", "readings", "sim-door-001")}
        eq(rd["open_time"], 9, "written value reported back")
        eq(barrier(), "closed", "then closed again")
        # Bad arguments are refused before anything is sent.
        fails(d, "devices", "command", "sim-door-001", "open", needle="argument 'seconds'")
        fails(d, "devices", "command", "sim-door-001", "open", "seconds=500",
              needle="500 is outside 1..60 s")
        fails(d, "devices", "command", "sim-door-001", "open", "seconds=x",
              needle="'x' is not an integer")
        fails(d, "devices", "command", "sim-door-001", "open", "seconds=5", "force=1",
              needle="unknown argument 'force'")
        fails(d, "devices", "command", "sim-door-001", "fly", needle="no command 'fly'")
        fails(d, "devices", "command", "sim-locker-001", "reserve", "size=huge", "hours=1",
              needle="'huge' is not one of small, medium, large")
        fails(d, "devices", "set", "sim-door-001", "state=open", needle="no writable resource")
        fails(d, "devices", "command", "nosuch", "open", needle="no device 'nosuch'")
        log = d.logtext()
        check("audit: device.command #1 sim-door-001 (door at hefei/baohe/binhu/yuelan) open "
              "{\"seconds\":5} by person 'admin'" in log, log[-2000:])
        check(re.search(r"audit: device.command #1 sim-door-001 open by .*: ok in \d+ ms", log),
              "audit of the result")
        sent = d.ok("audit", "--action", "device.command")
        rows = sent if isinstance(sent, list) else sent.get("entries", [])
        check(any(e["who"] == "admin" and e["object"] == "sim-door-001" and
                  e["detail"].startswith("#1 open {\"seconds\":5}") for e in rows), rows)
        res = d.ok("audit", "--action", "device.command.result")
        rows = res if isinstance(res, list) else res.get("entries", [])
        check(any(e["object"] == "sim-door-001" and e["detail"].startswith("#1 open: ok in")
                  for e in rows), rows)


def case_sim_rate_from_its_thread():
    # rate: readings per second across the fleet, paced by the simulator's own thread.
    with node(plugins=(), sim={"per_class": 5, "rate": 5000, "tick_ms": 50}) as d:
        wait_for(lambda: d.ok("sim", "status")["readings"] > 0, "first readings")
        a, t0 = d.ok("sim", "status")["readings"], time.time()
        time.sleep(2)
        b, t1 = d.ok("sim", "status")["readings"], time.time()
        rate = (b - a) / (t1 - t0)
        check(3500 < rate < 6500, f"rate 5000 configured, {rate:.0f}/s measured")
        st = d.ok("devices", "stats")
        eq((st["shed"], st["refused"]), (0, 0), "nothing shed or refused")
        check(st["readings"] >= b, "the kernel took them all")


def sequence(seed, rounds=3):
    """The (topic, value) sequence a fresh daemon's sim emits for `rounds` rounds."""
    with node(plugins=(), sim={"per_class": 2, "auto": "false", "thread": "false",
                               "seed": seed}) as d:
        wait_for(lambda: len(d.ok("devices", "list")) == 36, "discovery")
        sid = d.ok("events", "subscribe", "dev/#")["id"]
        out = d.ok("sim", "step", str(rounds))
        evs = drain(d, sid)
        seq = []
        for e in evs:
            p = e["payload"]
            if e["topic"].split("/")[3] == "event":
                if p["event"] in ("online", "unavailable"):
                    continue  # availability, stamped with wall time
                seq.append((e["topic"], json.dumps(p["data"], sort_keys=True)))
            else:
                seq.append((e["topic"], p["value"]))
        eq(len([s for s in seq if "/event/" not in s[0]]), out["readings"], "all readings seen")
        return seq


def case_sim_reproducible_with_a_fixed_seed():
    a = sequence(7)
    b = sequence(7)
    c = sequence(8)
    check(len(a) > 200, f"only {len(a)} readings")
    eq(a, b, "same seed, same sequence")
    check(a != c, "another seed gave the same sequence")
    eq([t for t, _ in a if "/event/" not in t], [t for t, _ in c if "/event/" not in t],
       "same fleet: the same reading topics in the same order")


def case_sim_config_errors_refuse_its_start():
    with node(plugins=(), sim={"per_class": 1, "bogus": 1}) as d:
        p = {r["name"]: r for r in d.ok("plugins", "list")}["sim"]
        eq(p["state"], "failed", "bad key")
        check("plugins.sim: unknown key 'bogus'" in p["reason"], p["reason"])
        eq(d.ok("devices", "list"), [], "no device")
    with node(plugins=(), sim={"classes": '[ "door", "teleporter" ]'}) as d:
        p = {r["name"]: r for r in d.ok("plugins", "list")}["sim"]
        check("'teleporter' is not a device class" in p["reason"], p["reason"])
    with node(plugins=(), sim={"per_class": 2, "classes": '[ "door", "smoke" ]',
                               "auto": "false"}) as d:
        rows = wait_for(lambda: d.ok("devices", "list") or None, "devices")
        eq(sorted(r["id"] for r in rows), ["sim-door-001", "sim-door-002", "sim-smoke-001",
                                           "sim-smoke-002"], "only the configured classes")
    with node(plugins=(), sim={"scope": '[ "hefei/baohe/binhu/yuelan", "" ]'}) as d:
        p = {r["name"]: r for r in d.ok("plugins", "list")}["sim"]
        check("plugins.sim.scope: element 2 must be a jurisdiction path string" in p["reason"],
              p["reason"])
    # A street's fleet in its communities (the demo's): per_class of each class in each
    # scope, numbered on — 001-002 in the first, 003-004 in the second.
    A, B = "hefei/baohe/binhu/yuelan", "hefei/baohe/binhu/qiming"
    with node(plugins=(), path="hefei/baohe/binhu", level="street",
              sim={"per_class": 2, "classes": '[ "door" ]', "auto": "false",
                   "scope": f'[ "{A}", "{B}" ]'}) as d:
        rows = wait_for(lambda: len(d.ok("devices", "list")) == 4 and d.ok("devices", "list"),
                        "devices")
        eq(sorted((r["id"], r["scope"]) for r in rows),
           [("sim-door-001", A), ("sim-door-002", A), ("sim-door-003", B), ("sim-door-004", B)],
           "the fleet in both communities")


# ---- the registry ----

def case_add_show_remove_and_the_registry_survives_restart():
    with node() as d:
        out = add(d, "door-1", "door", "tdrv", "ok", "--name", "东门", "--heartbeat", "30",
                  "--poll", "state=60,passes_today=300")
        check(re.fullmatch(r"[0-9a-f]{64}", out["secret"]), out)
        secret = out["secret"]
        eq(out["open"], True, "opened at once")
        s = show(d, "door-1")
        eq((s["class"], s["driver"], s["address"], s["name"], s["scope"]),
           ("door", "tdrv", "ok", "东门", COMMUNITY), "show")
        eq((s["heartbeat_s"], s["poll"], s["credential"], s["state"]),
           (30, "state=60,passes_today=300", "set", "unavailable"), "show 2")
        # The machine credential: only a hash is kept, the secret checks out.
        eq(d.ok("tdrv", "auth", "door-1", secret)["name"], "LINLI_OK", "right secret")
        eq(d.ok("tdrv", "auth", "door-1", "0" * 64)["name"], "LINLI_EAUTH", "wrong secret")
        # The registry is written by the device layer only: a record written around it would
        # not reach the running registry.
        for args in (("data", "put", "devices", '{"class": "door", "driver": "tdrv", '
                      '"address": "x"}'), ("data", "del", "devices", "door-1")):
            rc, out, err = d.cli(*args)
            check(rc != 0 and out["name"] == "LINLI_EPERM" and
                  "written by linlid's 'devices' commands only" in out["error"], (args, out))
        eq(show(d, "door-1")["address"], "ok", "the entry is intact")
        # Its hash is a sensitive field: masked unless the reader holds the grant (audited).
        eq(d.ok("data", "get", "devices", "door-1")["credential"], "***", "masked")
        tok = d.account("keeper", "admin", node=COMMUNITY, grants=("sensitive:devices",))
        rc, rec, err = d.cli("data", "get", "devices", "door-1", env={"LINLI_SESSION": tok})
        check(rc == 0 and rec["credential"].startswith("blake2b:") and
              secret not in json.dumps(rec), rec)
        # rekey: a new secret, the old one stops working.
        new = d.ok("devices", "rekey", "door-1")["secret"]
        check(new != secret, "a new secret")
        eq(d.ok("tdrv", "auth", "door-1", secret)["name"], "LINLI_EAUTH", "old secret")
        eq(d.ok("tdrv", "auth", "door-1", new)["name"], "LINLI_OK", "new secret")
        add(d, "smoke-1", "smoke", "tdrv", "ok")
        eq(post(d, "smoke-1", "battery", "int", 80), 0, "a reading")
        d.stop()
        with open(os.path.join(d.data, "data.mdb"), "rb") as f:
            blob = f.read()
        check(secret.encode() not in blob and new.encode() not in blob, "secret in the store")
        d.start()
        rows = {r["id"]: r for r in d.ok("devices", "list")}
        eq(sorted(rows), ["door-1", "smoke-1"], "registry after restart")
        eq(rows["smoke-1"]["state"], "online", "state kept across the restart")
        check(rows["smoke-1"]["last_seen"] is not None, "last_seen written back")
        eq(d.ok("tdrv", "auth", "door-1", new)["name"], "LINLI_OK", "credential kept")
        eq(d.ok("devices", "remove", "door-1"), {"id": "door-1", "removed": True}, "remove")
        fails(d, "devices", "show", "door-1", needle="no device 'door-1'")
        d.stop()
        d.start()
        eq([r["id"] for r in d.ok("devices", "list")], ["smoke-1"], "removal is durable")
        log = d.logtext()
        check("audit: device.manage: device door-1 (door) added at" in log, "audit add")
        check("audit: device.manage: device door-1 (door) at hefei/baohe/binhu/yuelan removed"
              in log, "audit remove")


def case_bad_registry_input_is_refused_clearly():
    with node() as d:
        add(d, "door-1", "door", "tdrv", "ok")
        cases = [
            (("door-2", "teleporter", "tdrv", "ok"), "no device class 'teleporter'"),
            (("door-2", "door", "mqtt", "ok"), "no driver 'mqtt' is loaded (loaded: tdrv)"),
            (("bad id!", "door", "tdrv", "ok"), "bad device id 'bad id!'"),
            (("door-1", "door", "tdrv", "ok"), "device 'door-1' is registered already"),
            (("door-2", "door", "tdrv", ""), "the address must be 1..256 bytes"),
            (("door-2", "door", "tdrv", "ok", "--poll", "state=0"), "poll: 'state=0' is not"),
            (("door-2", "door", "tdrv", "ok", "--poll", "smell=5"),
             "class door has no readable resource 'smell'"),
            (("door-2", "door", "tdrv", "ok", "--heartbeat", "0"), "--heartbeat '0'"),
            (("door-2", "door", "tdrv", "ok", "--scope", "hefei/baohe/binhu/other"),
             "outside its jurisdiction"),
            (("door-2", "door", "tdrv", "ok", "--scope", "Hefei//x"), "scope 'Hefei//x'"),
            (("door-2", "door", "tdrv"), "usage: devices add"),
            (("door-2", "door", "tdrv", "ok", "--colour", "red"), "unknown option '--colour'"),
        ]
        for args, needle in cases:
            fails(d, "devices", "add", *args, needle=needle)
        eq([r["id"] for r in d.ok("devices", "list")], ["door-1"], "nothing else registered")
        eq(d.ok("data", "query", "devices")["count"], 1, "nothing else stored")
        # A grid of the community is a device's scope too (scope: community or grid).
        add(d, "door-g", "door", "tdrv", "ok", "--scope", COMMUNITY + "/g03")
        eq(show(d, "door-g")["scope"], COMMUNITY + "/g03", "grid scope")
        eq([r["id"] for r in d.ok("devices", "list", "--scope", COMMUNITY + "/g03")], ["door-g"],
           "list of one grid")
        fails(d, "devices", "list", "--state", "sleepy", needle="is not online or unavailable")
        fails(d, "devices", "readings", "nosuch", needle="no device 'nosuch'")
        fails(d, "devices", "remove", needle="usage: devices remove ID")


# ---- readings ----

def case_bad_readings_are_refused_counted_and_logged_once():
    with node() as d:
        add(d, "sm-1", "smoke", "tdrv", "ok")
        sid = d.ok("events", "subscribe", "dev/smoke/#")["id"]
        good = [("battery", "int", 80), ("smoke_density", "float", 0.5),
                ("temperature", "int", 21), ("sensitivity", "str", "high")]
        bad = [("battery", "str", "full", "type"), ("battery", "float", 50.5, "type"),
               ("sensitivity", "int", 2, "type"), ("battery", "bool", "true", "type"),
               ("battery", "int", 101, "range"), ("battery", "int", -1, "range"),
               ("smoke_density", "float", 10.5, "range"), ("smoke_density", "nan", 0, "range"),
               ("sensitivity", "str", "extreme", "range"), ("smell", "int", 1, "unknown")]
        for res, ty, v in good:
            eq(post(d, "sm-1", res, ty, v), 0, f"good {res}")
        for _ in range(3):  # repeated: counted every time, logged once per kind
            for res, ty, v, kind in bad:
                rc = post(d, "sm-1", res, ty, v)
                check(rc in (-11, -3), f"bad {res} {ty} {v}: rc {rc}")
        s = show(d, "sm-1")
        eq(s["readings"], 4, "good ones")
        eq(s["refused"], {"unknown": 3, "type": 12, "range": 15, "event": 0}, "refusals")
        eq(post(d, "sm-1", "battery", "int", 100), 0, "the max is in range")
        evs = [e for e in drain(d, sid) if "/event/" not in e["topic"]]
        eq([(e["topic"], e["payload"]["value"]) for e in evs],
           [("dev/smoke/sm-1/battery", 80), ("dev/smoke/sm-1/smoke_density", 0.5),
            ("dev/smoke/sm-1/temperature", 21.0), ("dev/smoke/sm-1/sensitivity", "high"),
            ("dev/smoke/sm-1/battery", 100)], "only good readings were published")
        check(isinstance(evs[2]["payload"]["value"], float), "an integer for a float slot "
              "is published as a float")
        rd = {r["resource"]: r["value"] for r in d.ok("devices", "readings", "sm-1")}
        eq(rd, {"smoke_density": 0.5, "temperature": 21.0, "battery": 100,
                "sensitivity": "high"}, "latest values")
        log = d.logtext()
        eq(count(log, "device sm-1 (smoke): reading of"), 3, "one log line per kind")
        check("reading of 'battery': 'full' is a string, not an integer" in log, "type msg")
        check("reading of 'battery': 101 is outside 0..100 %" in log, "range msg")
        check("class smoke has no such resource 'smell'" in log, "unknown msg")
        # An unknown event of the class: refused and counted too.
        eq(d.ok("tdrv", "event", "sm-1", "party")["name"], "LINLI_ESCHEMA", "unknown event")
        eq(d.ok("tdrv", "event", "sm-1", "alarm")["name"], "LINLI_OK", "alarm")
        eq(show(d, "sm-1")["refused"]["event"], 1, "event refusal counted")
        # A device that is not this driver's, or none at all.
        eq(post(d, "nosuch", "battery", "int", 1), -3, "unknown device")


def case_events_are_records_of_consequence():
    with node() as d:
        add(d, "door-1", "door", "tdrv", "ok")
        eq(d.ok("tdrv", "event", "door-1", "forced")["name"], "LINLI_OK", "event")
        j = [e for e in d.ok("events", "journal")["events"] if e["topic"] == "dev/door/door-1/event/forced"]
        eq(len(j), 1, "journaled before delivery")
        p = j[0]["payload"]
        eq((p["device"], p["class"], p["event"], p["severity"], p["data"]),
           ("door-1", "door", "forced", "major", {"n": 1}), "payload")


def case_door_holder_is_masked_without_the_grant():
    """A door event's holder (catalog: sensitive, mask name) is stored in clear and masked for
    every reader without sensitive:devices: plugins, the console's subscriptions and journal."""
    with node(plugins=("tp_driver", "tp_doorwatch", "tp_doorclear")) as d:
        add(d, "door-1", "door", "tdrv", "ok")
        viewer = d.account("watcher", "viewer", node=COMMUNITY)
        reader = d.account("reader", "viewer", node=COMMUNITY, grants=("sensitive:devices",))
        as_ = lambda tok: {"LINLI_SESSION": tok}  # noqa: E731

        def ok_as(tok, *args):
            rc, out, err = d.cli(*args, env=as_(tok))
            eq(rc, 0, f"linli {' '.join(args)}: {err}")
            return out

        sv = ok_as(viewer, "events", "subscribe", "dev/door/#")["id"]
        sr = ok_as(reader, "events", "subscribe", "dev/door/#")["id"]
        eq(d.ok("tdrv", "event", "door-1", "card_denied", "holder=R01234", "reason=expired")["name"],
           "LINLI_OK", "event")
        eq(d.ok("tdrv", "event", "door-1", "forced", "holder=R07777")["name"], "LINLI_OK",
           "an event that marks nothing")

        def held(events, ev):
            return [e["payload"]["data"] for e in events if e["payload"]["event"] == ev]

        # The console: subscriptions.
        got_v = ok_as(viewer, "events", "next", str(sv), "--wait", "2000")["events"]
        got_r = ok_as(reader, "events", "next", str(sr), "--wait", "2000")["events"]
        eq(held(got_v, "card_denied"), [{"n": 1, "holder": "R*****", "reason": "expired"}],
           "masked for the viewer, other details kept")
        eq(held(got_r, "card_denied"), [{"n": 1, "holder": "R01234", "reason": "expired"}],
           "clear with sensitive:devices")
        eq(held(got_v, "forced"), [{"n": 1, "holder": "R07777"}], "forced marks nothing")
        # The console: the journal, stored in clear, masked when read.
        j_v = ok_as(viewer, "events", "journal")["events"]
        j_r = ok_as(reader, "events", "journal")["events"]
        eq(held(j_v, "card_denied"), [{"n": 1, "holder": "R*****", "reason": "expired"}],
           "journal masked for the viewer")
        eq(held(j_r, "card_denied"), [{"n": 1, "holder": "R01234", "reason": "expired"}],
           "journal clear with the grant")
        eq([e["seq"] for e in j_v], [e["seq"] for e in j_r], "the same rows, only masked")
        # The admin holds no sensitive grant either.
        eq(held(d.ok("events", "journal")["events"], "card_denied")[0]["holder"], "R*****",
           "admin without the grant")
        # Reads of personal fields are audited: in clear as allowed, masked as masked.
        rows = d.ok("audit", "--action", "data.read")
        rows = rows if isinstance(rows, list) else rows.get("entries", [])
        got = {(e.get("who"), e["action"], e["result"]) for e in rows
               if e.get("object") == "devices" and "events journal" in e.get("detail", "")}
        check(any(w and "reader" in w and r == "allowed" for w, a, r in got), f"audit: {got}")
        check(any(w and "watcher" in w and r == "masked" for w, a, r in got), f"audit: {got}")
        # Plugins: doorwatch without the grant, doorclear with it.
        d.wait_log("doorwatch saw card_denied holder=R*****")
        d.wait_log("doorclear saw card_denied holder=R01234")
        check("doorwatch saw card_denied holder=R01234" not in d.logtext(), "never in clear")
        d.wait_log("doorwatch saw forced holder=R07777")


def case_driver_thread_waits_for_the_commit():
    """dev_event_wait (SDK 1.1): from a driver's thread it returns once the event is committed
    to the journal; refusals come back to the thread; on the kernel thread, and while the
    plugin stops, it is refused at once."""
    with node() as d:
        add(d, "door-1", "door", "tdrv", "ok")
        eq(d.ok("tdrv", "waitk", "door-1", "forced")["name"], "LINLI_ESTATE", "kernel thread")
        d.wait_log("dev_event_wait: called on the kernel thread")

        def wait_n(n):
            return wait_for(lambda: (lambda w: w if w["done"] >= n else None)(
                d.ok("tdrv", "waited")), f"wait {n} returned")

        eq(d.ok("tdrv", "waitev", "door-1", "forced", "holder=R00042")["rc"], 0, "started")
        eq(wait_n(1)["name"], "LINLI_OK", "committed")
        j = [e for e in d.ok("events", "journal")["events"]
             if e["topic"] == "dev/door/door-1/event/forced"]
        eq(len(j), 1, "the event is in the journal")
        eq(j[0]["payload"]["data"], {"holder": "R00042"}, "with its details")
        d.ok("tdrv", "waitev", "door-1", "party")
        eq(wait_n(2)["name"], "LINLI_ESCHEMA", "an unknown event, told to the thread")
        d.ok("tdrv", "waitev", "nosuch", "forced")
        eq(wait_n(3)["name"], "LINLI_ENOENT", "an unknown device")
        d.ok("tdrv", "waitev", "door-1", "card_ok")
        eq(wait_n(4)["name"], "LINLI_OK", "an event the journal does not keep: at once")
        # Stopping: the thread's wait during fini is refused, so fini's join never blocks.
        d.ok("plugins", "disable", "tdrv")
        d.wait_log("tdrv: fini: dev_event_wait from a thread -> LINLI_ESTATE")


def case_readings_from_a_driver_thread():
    with node() as d:
        add(d, "w-1", "wearable", "tdrv", "ok")
        d.ok("tdrv", "thread", "w-1", "steps", "20000")
        wait_for(lambda: show(d, "w-1")["readings"] == 20000, "20000 readings from a thread")
        rd = {r["resource"]: r["value"] for r in d.ok("devices", "readings", "w-1")}
        eq(rd["steps"], 19999, "the last posted value is the latest (order kept)")
        eq(show(d, "w-1")["refused"]["range"], 0, "none refused")


def case_poll_schedule_reads_the_device():
    with node() as d:
        add(d, "tb-1", "trash_bin", "tdrv", "ok", "--poll", "fill_level=1,waste_type=1")
        wait_for(lambda: show(d, "tb-1")["readings"] >= 4, "polled readings", timeout=6)
        rd = {r["resource"]: r["value"] for r in d.ok("devices", "readings", "tb-1")}
        check(isinstance(rd["fill_level"], int), rd)
        eq(rd["waste_type"], "recyclable", "enum poll value")
        eq(rd["battery"], None, "not polled")


# ---- availability ----

def case_availability_transitions_logged_once():
    with node() as d:
        add(d, "sm-1", "smoke", "tdrv", "ok", "--heartbeat", "1")
        sid = d.ok("events", "subscribe", "dev/+/+/event/#")["id"]
        eq(show(d, "sm-1")["state"], "unavailable", "never heard from yet")
        post(d, "sm-1", "battery", "int", 90)
        eq(show(d, "sm-1")["state"], "online", "first reading")
        wait_for(lambda: show(d, "sm-1")["state"] == "unavailable", "missed heartbeat", 5)
        time.sleep(1.2)  # more sweeps: still one transition
        post(d, "sm-1", "battery", "int", 89)
        eq(show(d, "sm-1")["state"], "online", "online again on its next reading")
        wait_for(lambda: show(d, "sm-1")["state"] == "unavailable", "missed again", 5)
        evs = [e["topic"].rsplit("/", 1)[1] for e in drain(d, sid)]
        eq(evs, ["online", "unavailable", "online", "unavailable"], "published transitions")
        log = d.logtext()
        eq(count(log, "device sm-1 (smoke) unavailable: silent for"), 2, "unavailable logged")
        eq(count(log, "device sm-1 (smoke) online: heard from it again"), 1, "online logged")
        eq(d.ok("data", "get", "devices", "sm-1")["state"], "unavailable", "state stored")


# ---- commands ----

def case_command_result_error_and_timeout():
    with node() as d:
        add(d, "d-ok", "door", "tdrv", "ok")
        add(d, "d-slow", "door", "tdrv", "slow")
        add(d, "d-err", "door", "tdrv", "err")
        add(d, "d-fail", "door", "tdrv", "fail")
        r = d.ok("devices", "command", "d-ok", "set_mode", "mode=always_open")
        eq(r["result"], {"echo": "set_mode", "args": {"mode": "always_open"}}, "driver's result")
        t0 = time.time()
        err = fails(d, "devices", "command", "d-slow", "lock", "--timeout", "300",
                    needle="device d-slow did not answer 'lock' within 300 ms")
        check(0.25 < time.time() - t0 < 5, f"timeout took {time.time() - t0:.2f}s")
        fails(d, "devices", "command", "d-err", "lock", needle="jammed")
        fails(d, "devices", "command", "d-fail", "lock", needle="device d-fail is not open")
        fails(d, "devices", "command", "d-ok", "lock", "--timeout", "0", needle="--timeout '0'")
        # The default timeout answers too (10 s) — and a remove fails what is pending.
        p = subprocess.Popen([os.environ.get("LINLI", "build/host/linli"), "--socket", d.sock,
                              "devices", "command", "d-slow", "lock"],
                             stderr=subprocess.PIPE, text=True)
        time.sleep(0.3)
        eq(show(d, "d-slow")["commands_pending"], 1, "pending")
        d.ok("devices", "remove", "d-slow")
        _, e = p.communicate(timeout=10)
        eq(p.returncode, 1, "failed when its device went away")
        check("it was removed before answering 'lock'" in e, e)
        st = d.ok("devices", "stats")
        eq(st["timeouts"], 1, "timeouts counted")
        log = d.logtext()
        check(re.search(r"audit: device.command #\d+ d-slow lock by .*: LINLI_ETIMEDOUT", log),
              "timeout audited")
        check(re.search(r"audit: device.command #\d+ d-err lock by .*: LINLI_EIO: jammed", log),
              "error audited")


def case_command_refused_to_a_city_admin():
    # The city node's admin may read devices but not command them (one level, one permission).
    sim = {"per_class": 1, "auto": "false", "thread": "false", "scope": f'"{COMMUNITY}"'}
    with node(plugins=(), sim=sim, path="hefei", level="city") as d:
        rows = wait_for(lambda: d.ok("devices", "list") or None, "the fleet at the community")
        check(all(r["scope"] == COMMUNITY for r in rows), rows[0])
        d.ok("devices", "show", "sim-door-001")
        err = fails(d, "devices", "command", "sim-door-001", "open", "seconds=3",
                    name="LINLI_EPERM")
        check("role admin at city level may not device.command" in err, err)
        fails(d, "devices", "set", "sim-door-001", "open_time=3",
              needle="may not device.command")
        fails(d, "devices", "add", "x", "door", "sim", "sim:door:9", "--scope", COMMUNITY,
              needle="role admin at city level may not device.manage")
        fails(d, "devices", "remove", "sim-door-001", needle="may not device.manage")
        log = d.logtext()
        check("audit: device.command sim-door-001 open by person 'admin' of hefei: denied" in log,
              log[-3000:])
        check("device.command #" not in log, "nothing was sent")
        denied = d.ok("audit", "--action", "device.command", "--result", "denied")
        check(any(e.get("object") == "door" and "may not device.command" in e.get("detail", "")
                  for e in (denied if isinstance(denied, list) else denied.get("entries", []))),
              f"the denial is in the audit log: {denied}")


def case_command_refused_to_a_plugin_without_the_capability():
    with node(plugins=("tp_devapp",), sim=MANUAL) as d:
        d.ok("sim", "step", "1")
        r = d.ok("devapp", "cmd", "sim-door-001", "open", "seconds=3")
        eq(r["name"], "LINLI_EPERM", "device.command:door not granted")
        r = d.ok("devapp", "cmd", "sim-smoke-001", "reset")
        eq(r["name"], "LINLI_OK", "device.command:smoke granted")
        d.wait_log(f"devapp: answer #{r['request']} rc LINLI_OK result {{\"ok\":true}}")
        eq(d.ok("devapp", "get", "sim-door-001", "state")["value"], "closed", "device.read:door")
        eq(d.ok("devapp", "get", "sim-smoke-001", "battery")["name"], "LINLI_EPERM",
           "no device.read:smoke")
        eq(d.ok("devapp", "info", "sim-door-001")["class"], "door", "info")
        eq(d.ok("devapp", "cmd", "sim-smoke-001", "fly")["name"], "LINLI_ENOENT", "no command")
        log = d.logtext()
        check("device.command of device sim-door-001 by plugin 'devapp' denied: plugin 'devapp' "
              "holds no granted capability device.command:door" in log, log[-3000:])
        # The plugin served the console's account: filed under it, naming the plugin.
        rows = d.ok("audit", "--action", "device.command")
        rows = rows if isinstance(rows, list) else rows.get("entries", [])
        rows = [e for e in rows if e.get("via") == "plugin:devapp"]
        check(rows and all(not e["who"].startswith("plugin:") for e in rows),
              f"under the caller: {rows}")
        got = {(e["action"], e["result"], e.get("object")) for e in rows}
        check(("device.command", "denied", "door") in got, f"denial audited: {got}")
        check(("device.command", "allowed", "sim-smoke-001") in got, f"command audited: {got}")


# ---- drivers ----

def case_driver_that_fails_to_open_is_retried():
    with node() as d:
        out = add(d, "d-fail", "door", "tdrv", "fail")
        eq(out["open"], False, "not open")
        eq(out["open_error"], "simulated open failure of fail", "the driver's reason")
        add(d, "d-2", "door", "tdrv", "fail2")
        s = show(d, "d-2")
        eq((s["open"], s["state"]), (False, "unavailable"), "failed open")
        # Retried after 1 s, then 2 s: open on the third attempt.
        wait_for(lambda: show(d, "d-2")["open"], "retries", timeout=8)
        eq(show(d, "d-2")["open_error"], None, "error cleared")
        d.wait_log("device d-2 (door): opened after 2 failed attempt(s)")
        time.sleep(1.5)
        log = d.logtext()
        eq(count(log, "driver tdrv cannot open 'fail'"), 1, "a failing open is logged once")
        check(d.ok("tdrv", "opens")["opens"] == 1, "only d-2 opened")


def case_driver_with_a_wrong_ops_table_size_is_refused():
    with node(plugins=("tp_driver", "tp_badops", "tp_nocap")) as d:
        p = {r["name"]: r for r in d.ok("plugins", "list")}
        eq(p["tdrv"]["state"], "running", "good driver")
        eq(p["badops"]["state"], "failed", "wrong size")
        check(re.search(r"driver badops: ops table of \d+ bytes is not the size of an SDK 1\.\d+ "
                        r"ops table \(\d+ bytes\): rebuild the driver against SDK 1\.\d+",
                        p["badops"]["reason"]), p["badops"]["reason"])
        eq(p["nocap"]["state"], "failed", "no capability")
        check("holds no granted capability hal.driver:nocap" in p["nocap"]["reason"],
              p["nocap"]["reason"])
        fails(d, "devices", "add", "x", "door", "badops", "ok", needle="no driver 'badops'")
        info = d.ok("plugins", "info", "tdrv")
        check({"kind": "driver", "what": "driver tdrv"} in info["resources"], info["resources"])


def case_disable_and_enable_a_driver():
    with node() as d:
        add(d, "sm-1", "smoke", "tdrv", "ok")
        d.ok("plugins", "disable", "tdrv")
        s = show(d, "sm-1")
        eq((s["open"], s["driver_loaded"]), (False, False), "closed with its driver")
        fails(d, "devices", "command", "sm-1", "reset", needle="driver tdrv is not loaded")
        d.ok("plugins", "enable", "tdrv")
        wait_for(lambda: show(d, "sm-1")["open"], "reopened")
        # A reload keeps the devices: closed by the old instance, opened by the new.
        d.ok("plugins", "reload", "tdrv")
        wait_for(lambda: show(d, "sm-1")["open"], "open after reload")
        eq(post(d, "sm-1", "battery", "int", 50), 0, "the new instance drives it")


def case_discovered_device_outside_the_node_is_refused():
    with node() as d:
        eq(d.ok("tdrv", "found", "f-1", "door", "ok")["name"], "LINLI_OK", "found")
        eq(show(d, "f-1")["open"], True, "opened")
        eq(d.ok("tdrv", "found", "f-1", "door", "ok")["name"], "LINLI_EEXIST", "again")
        eq(d.ok("tdrv", "found", "f-2", "teleporter", "ok")["name"], "LINLI_ENOENT", "class")


def case_demo_config_is_valid():
    """tools/demo runs the embedded default from the source tree: it must validate there."""
    r = subprocess.run([LINLID, "--demo", "--check-config"], capture_output=True, text=True,
                       cwd=SRC)
    eq(r.returncode, 0, r.stdout + r.stderr)
    # --print-config prints it: a street node with two communities (README, "The demo").
    r = subprocess.run([LINLID, "--print-config"], capture_output=True, text=True)
    eq(r.returncode, 0, r.stderr)
    check('path = "hefei/baohe/binhu";' in r.stdout and 'level = "street";' in r.stdout and
          '"hefei/baohe/binhu/qiming"' in r.stdout, r.stdout)
    cfg = os.path.join(SRC, ".print-config-test.cfg")
    try:
        with open(cfg, "w") as f:
            f.write(r.stdout)
        r2 = subprocess.run([LINLID, "--config", cfg, "--check-config"], capture_output=True,
                            text=True, cwd=SRC)
        eq(r2.returncode, 0, "what --print-config prints is a valid config: " + r2.stderr)
    finally:
        os.unlink(cfg)


if __name__ == "__main__":
    sys.exit(main(dict(globals())))
