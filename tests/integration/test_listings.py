"""Integration tests: every listing shows only the caller's jurisdiction, and every
command that takes --scope defaults to the caller's own node.

A real linlid serves the city of a tree whose siblings share prefixes (communities
`yuelan` and `yuelan2` of the street `binhu`, and the street `binhu2` beside it); each
community publishes its own events, adds its own devices and feeds a rule and a script
plugin that fail with the event's payload in their message. Then each account lists:
the journal, subscriptions, event counters, devices, rules, plugins, status and audit.
"""
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import (  # noqa: E402
    BUILD, LINLI, SRC, Daemon, by_name, check, eq, finish, main, write)

TP = os.path.abspath(os.environ.get("LINLI_TP_DIR", os.path.join(BUILD, "tests", "plugins")))
CITY = "hefei"
STREET = "hefei/baohe/binhu"
STREET2 = "hefei/baohe/binhu2"
Y = "hefei/baohe/binhu/yuelan"
Y2 = "hefei/baohe/binhu/yuelan2"
L2 = "hefei/baohe/binhu2/lake"
PW = "Listing-Test-Passw0rd"

# The shipped tree plus the siblings with shared prefixes.
EXTRA_NODES = [(Y2, "340111010091", "悦澜二社区"), (STREET2, "340111091", "滨湖二街道"),
               (L2, "340111091001", "湖畔社区")]

# Fails for every alarm, quoting its payload: its log holds what each community sent.
TATTLE_RULE = """rule {
  name = "tattle", on = "alarm/#",
  run = function(e) error("rule saw " .. tostring(e.tag)) end,
}
"""
TATTLE_APP = """plugin {
  name = "tattleapp", version = "1.0.0", sdk = "1.0", family = "custom",
  description = "fails for every alarm, quoting it",
  capabilities = { "bus.subscribe:alarm/#" },
  init = function()
    assert(linli.subscribe("alarm/#", function(e) error("app saw " .. tostring(e.tag)) end))
  end,
}
"""


class city:
    """The city node with the extended tree, tdrv, the rule and the script plugin, and
    an account per role and place: tokens in self.t (name -> token)."""

    def __init__(self):
        self.d = Daemon(node=CITY, level="city")
        d = self.d
        cat = os.path.join(d.dir, "catalog")
        shutil.copytree(os.path.join(SRC, "catalog"), cat)
        tree = os.path.join(cat, "tree.cfg")
        with open(tree) as f:
            text = f.read().rstrip()
        check(text.endswith(");"), "tree.cfg ends its list")
        nodes = "".join(f',\n  {{ path = "{p}"; code = "{c}"; name = "{n}"; }}'
                        for p, c, n in EXTRA_NODES)
        write(tree, text[:-2].rstrip() + nodes + "\n);\n")
        self.pdir = os.path.join(d.dir, "plugins")
        os.makedirs(self.pdir)
        shutil.copyfile(os.path.join(TP, "tp_driver.so"), os.path.join(self.pdir, "tp_driver.so"))
        scripts = os.path.join(d.dir, "scripts")
        for sub, name, text in (("rules", "tattle.lua", TATTLE_RULE),
                                ("apps", "tattleapp.lua", TATTLE_APP)):
            os.makedirs(os.path.join(scripts, sub))
            write(os.path.join(scripts, sub, name), text)
        d.write_config(node=CITY, level="city", name="合肥市",
                       extra=f'catalog_dir = "{cat}";\n'
                             f'plugin_dirs = [ "{self.pdir}" ];\n'
                             f'script_dirs = [ "{scripts}" ];\n')
        d.grant_declared(self.pdir)
        d.grant_scripts(os.path.join(scripts, "rules"), os.path.join(scripts, "apps"))

    def __enter__(self):
        d = self.d
        d.start()
        self.t = {}
        for name, role, node in (("adm_y", "admin", Y), ("adm_y2", "admin", Y2),
                                 ("op_y", "operator", Y), ("op_y2", "operator", Y2),
                                 ("st_b", "admin", STREET), ("st_b2", "admin", STREET2),
                                 ("op_l2", "operator", L2),
                                 ("aud_y", "auditor", Y), ("aud_y2", "auditor", Y2)):
            self.t[name] = d.account(name.replace("_", "-"), role, node=node, password=PW)
        return self

    def __exit__(self, etype, *rest):
        finish(self.d, etype)

    def cli(self, who, *args, input=None):
        env = {"LINLI_SESSION": self.t[who]} if who != "admin" else None
        return self.d.cli(*args, input=input, env=env)

    def ok(self, who, *args, input=None):
        rc, out, err = self.cli(who, *args, input=input)
        check(rc == 0, f"{who}: linli {' '.join(args)} failed ({rc}): {err} {out}")
        return out

    def refused(self, who, *args, name="LINLI_EPERM"):
        rc, out, err = self.cli(who, *args)
        check(rc == 1 and isinstance(out, dict) and out.get("name") == name,
              f"{who}: linli {' '.join(args)} should be {name}: {rc} {out} {err}")
        return out

    def shell(self, who, lines):
        """Many commands in one console process, as `who`."""
        env = dict(os.environ, LINLI_SESSION=self.t[who])
        r = subprocess.run([LINLI, "--socket", self.d.sock], input="\n".join(lines) + "\nquit\n",
                           capture_output=True, text=True, timeout=120, env=env)
        eq(r.returncode, 0, f"shell as {who}: {r.stderr[-500:]}")
        check("linli: " not in r.stderr, f"a command failed in the shell: {r.stderr[-500:]}")


def publish_each(c):
    """Each community's operator publishes one alarm in its own community (no --scope)."""
    seqs = {}
    for who, tag in (("op_y", "Y-secret"), ("op_y2", "Y2-secret"), ("op_l2", "L2-secret")):
        out = c.ok(who, "publish", "alarm/raised", json.dumps({"tag": tag}))
        seqs[tag] = out["seq"]
    eq(c.ok("op_y", "publish", "alarm/raised", "{}")["scope"], Y, "publish defaults to own")
    return seqs


def journal_tags(c, who, *args):
    page = c.ok(who, "events", "journal", *args)
    return [(e["scope"], e["payload"].get("tag")) for e in page["events"] if e["payload"]]


def case_journal_shows_each_jurisdiction_its_own():
    with city() as c:
        publish_each(c)
        eq(journal_tags(c, "op_y"), [(Y, "Y-secret")], "yuelan sees yuelan only")
        eq(journal_tags(c, "op_y2"), [(Y2, "Y2-secret")], "yuelan2 sees yuelan2 only")
        eq(journal_tags(c, "st_b"), [(Y, "Y-secret"), (Y2, "Y2-secret")], "binhu: both")
        eq(journal_tags(c, "st_b2"), [(L2, "L2-secret")], "binhu2 is not binhu")
        eq(journal_tags(c, "admin"), [(Y, "Y-secret"), (Y2, "Y2-secret"), (L2, "L2-secret")],
           "the city sees all")
        eq(journal_tags(c, "st_b", "--scope", Y2), [(Y2, "Y2-secret")], "--scope narrows")
        c.refused("op_y", "events", "journal", "--scope", Y2)
        c.refused("op_y", "events", "journal", "--scope", STREET)


def case_journal_pages_past_hidden_events():
    with city() as c:
        first = c.ok("op_y", "publish", "alarm/raised", '{"tag": "Y-1"}')["seq"]
        # 250 events of the sibling, then one more of yuelan's.
        c.shell("op_y2", [f"publish alarm/raised '{{\"tag\": \"h{i}\"}}'" for i in range(250)])
        last = c.ok("op_y", "publish", "alarm/raised", '{"tag": "Y-2"}')["seq"]
        c.ok("op_y2", "publish", "alarm/raised", '{"tag": "after"}')
        eq(len(c.ok("admin", "events", "journal", "--limit", "1000")["events"]), 253, "all in")
        # One event a page: a page reads at most 100 rows, so yuelan's second event
        # comes after pages that hold nothing but move the cursor on.
        after, tags, pages = 0, [], 0
        while True:
            page = c.ok("op_y", "events", "journal", "--limit", "1", "--after", str(after))
            pages += 1
            check(pages < 20, f"paging does not progress: {page}")
            tags += [e["payload"]["tag"] for e in page["events"]]
            check(page["next"] >= after, page)
            if not page["more"]:
                break
            check(page["next"] > after, f"no progress from {after}: {page}")
            after = page["next"]
        eq(tags, ["Y-1", "Y-2"], "every own event, in order, no other")
        check(pages >= 4, f"empty pages moved past the hidden events ({pages} pages)")
        # The last page stops at the last event shown: how many hidden ones follow
        # it is not told.
        eq(page["next"], last, "the end of the journal is not revealed")
        eq(c.ok("op_y", "events", "journal", "--after", str(first))["events"][0]["seq"], last,
           "a full page skips the sibling's events")


def case_commands_default_to_the_callers_scope():
    with city() as c:
        # Devices: added, listed and counted in the caller's community without --scope.
        out = c.ok("adm_y", "devices", "add", "door-y", "door", "tdrv", "ok")
        eq(out["scope"], Y, "devices add defaults to own")
        c.ok("adm_y2", "devices", "add", "door-y2", "door", "tdrv", "ok")
        eq([r["id"] for r in c.ok("op_y", "devices", "list")], ["door-y"], "devices list")
        eq(c.ok("op_y", "devices", "stats")["scope"], Y, "devices stats")
        eq(c.ok("op_y", "events", "subscribe", "#")["scope"], Y, "events subscribe")
        eq(c.ok("op_y", "publish", "alarm/raised", "{}")["scope"], Y, "publish")
        eq([e["scope"] for e in c.ok("op_y", "events", "journal")["events"]], [Y], "journal")
        c.refused("op_y2", "data", "query", "residents", "--scope", Y)  # audited at yuelan2
        rows = c.ok("aud_y2", "audit", "--result", "denied")
        check(rows and all(r["scope"] == Y2 for r in rows), f"audit defaults to own: {rows}")
        eq(c.ok("aud_y", "audit", "--who", "op-y2"), [], "yuelan's auditor: not yuelan2's")
        c.refused("aud_y", "audit", "--limit", "5x", name="LINLI_EINVAL")
        # The street admin's default is its street: both communities.
        eq(sorted(r["id"] for r in c.ok("st_b", "devices", "list")), ["door-y", "door-y2"],
           "the street's devices")


def case_devices_listings_stay_in_the_jurisdiction():
    with city() as c:
        c.ok("adm_y", "devices", "add", "door-y", "door", "tdrv", "ok")
        c.ok("adm_y2", "devices", "add", "door-y2", "door", "tdrv", "ok")
        c.ok("admin", "tdrv", "post", "door-y2", "passes_today", "int", "7")
        eq([r["id"] for r in c.ok("op_y2", "devices", "list")], ["door-y2"], "yuelan2")
        eq(c.ok("st_b2", "devices", "list"), [], "binhu2 is not binhu")
        # A sibling's device is answered as absent, and its place is not named.
        for sub in ("show", "readings"):
            out = c.refused("op_y", "devices", sub, "door-y2", name="LINLI_ENOENT")
            check("no device 'door-y2'" in out["error"] and Y2 not in out["error"], out)
            eq(c.refused("op_y", "devices", sub, "door-nope", name="LINLI_ENOENT")["error"],
               out["error"].replace("door-y2", "door-nope"), "absent and hidden look alike")
        out = c.refused("adm_y", "devices", "command", "door-y2", "open", name="LINLI_ENOENT")
        check(Y2 not in out["error"], out)
        c.refused("adm_y", "devices", "remove", "door-y2", name="LINLI_ENOENT")
        eq(c.ok("op_y2", "devices", "show", "door-y2")["scope"], Y2, "its own shows")
        # The refusals are still audited, in the refused caller's jurisdiction.
        rows = c.ok("aud_y", "audit", "--who", "op-y", "--result", "denied")
        check(any(r["object"] == "door" for r in rows), rows)
        # Counts cover the caller's devices; the layer's own counters the node's only.
        sy = c.ok("op_y", "devices", "stats")
        eq((sy["devices"], sy["readings"]), (1, 0), "yuelan's counts")
        check("commands" not in sy and "drivers" not in sy, sy)
        eq(c.ok("op_y2", "devices", "stats")["readings"], 1, "yuelan2's counts")
        sc = c.ok("admin", "devices", "stats")
        eq((sc["devices"], sc["readings"]), (2, 1), "the city's counts")
        check("commands" in sc and "drivers" in sc, sc)


def case_subscriptions_and_counters_of_the_bus():
    with city() as c:
        sy = c.ok("op_y", "events", "subscribe", "alarm/#")["id"]
        sy2 = c.ok("op_y2", "events", "subscribe", "alarm/#")["id"]
        sb = c.ok("st_b", "events", "subscribe", "alarm/#")["id"]
        publish_each(c)
        rows = {r["id"]: r for r in c.ok("op_y", "events", "list")}
        check(sy in rows and sy2 not in rows, f"a sibling's subscription shows: {rows}")
        check(sb not in rows, f"the street account's subscription shows: {rows}")
        street = {r["id"]: r for r in c.ok("st_b", "events", "list")}
        check(sy in street and sy2 in street and sb in street, f"the street's: {street}")
        eq(rows[sy]["delivered"], 2, "its own subscription's counters")
        node = [r for r in rows.values() if r["scope"] == CITY]
        check(node and all(r["delivered"] is None for r in node),
              f"node-level subscriptions show without counters: {node}")
        allrows = {r["id"]: r for r in c.ok("admin", "events", "list")}
        check(sy in allrows and sy2 in allrows, allrows)
        check(all(r["delivered"] is not None for r in allrows.values()), allrows)
        out = c.refused("op_y", "events", "stats")
        check("acts on the whole node" in out["error"], out)
        check(c.ok("admin", "events", "stats"), "the city sees the counters")
        st = c.ok("op_y", "status")
        eq(st["node"], CITY, "the node shows")
        check("requests" not in st and "events_published" not in st and "data_dir" not in st,
              st)
        check(c.ok("admin", "status")["events_published"] >= 4, "the city's counters")


def case_rule_and_plugin_logs_stay_in_the_jurisdiction():
    with city() as c:
        publish_each(c)

        def lines(who, *args):
            return [(e["scope"], e["message"].split(" saw ")[-1]) for e in c.ok(who, *args)]

        eq(lines("op_y", "rules", "log", "tattle"), [(Y, "Y-secret"), (Y, "nil")], "yuelan")
        eq(lines("op_y2", "rules", "log", "tattle"), [(Y2, "Y2-secret")], "yuelan2")
        eq(lines("st_b2", "rules", "log", "tattle"), [(L2, "L2-secret")], "binhu2")
        eq(len(lines("admin", "rules", "log", "tattle")), 4, "the city sees every line")
        # Names and states for everyone, counters for the node's jurisdiction.
        r = by_name(c.ok("op_y", "rules", "list"))["tattle"]
        eq((r["state"], r["calls"], r["errors"]), ("ready", None, None), "rules list")
        eq(c.ok("op_y", "rules", "show", "tattle")["stats"]["calls"], None, "rules show")
        eq(by_name(c.ok("admin", "rules", "list"))["tattle"]["errors"], 4, "city counters")
        # The script plugin: the same for `plugins info`.
        info = c.ok("op_y2", "plugins", "info", "tattleapp")
        eq(info["state"], "running", "plugins info")
        eq([e["message"].split(" saw ")[-1] for e in info["script"]["log"]], ["Y2-secret"],
           "the plugin's log")
        eq(info["script"]["calls"], None, "its counters")
        check(any(p["name"] == "tattleapp" for p in c.ok("op_y2", "plugins", "list")),
              "plugins list names it")
        eq(len(c.ok("admin", "plugins", "info", "tattleapp")["script"]["log"]), 4, "city")


def case_a_fault_is_shown_where_its_event_was():
    with city() as c:
        rule = os.path.join(c.d.dir, "scripts", "rules", "tattle.lua")
        write(rule, TATTLE_RULE.replace('on = "alarm/#",', 'on = "alarm/#", limits = { max_errors = 1 },'))
        c.ok("admin", "rules", "reload", "tattle")
        c.ok("op_y2", "publish", "alarm/raised", '{"tag": "Y2-fault"}')
        mine = by_name(c.ok("op_y2", "rules", "list"))["tattle"]
        check(mine["state"] == "faulted" and "Y2-fault" in mine["problem"], mine)
        theirs = by_name(c.ok("op_y", "rules", "list"))["tattle"]
        check(theirs["state"] == "faulted" and "Y2-fault" not in theirs["problem"] and
              "not shown" in theirs["problem"], theirs)
        check("not shown" in c.ok("op_y", "rules", "show", "tattle")["problem"], "rules show")
        check("Y2-fault" in c.ok("st_b", "rules", "show", "tattle")["problem"], "the street's")


if __name__ == "__main__":
    sys.exit(main(dict(globals())))
