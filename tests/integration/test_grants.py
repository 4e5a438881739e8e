"""Admin grants of capabilities, through a real linlid and the real console.

A plugin (.so or script) or a rule acts only with the capabilities it declares
*and* an admin granted: a declared capability without a grant refuses the load
with a message naming it and the command that grants it; revoking one that a
running plugin or rule declared stops it at once. Grants live in the store
(the `grants` system dataset), survive restarts, and every change is audited.
"""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import (  # noqa: E402
    BUILD, LINLID, SRC, Daemon, by_name, check, eq, finish, main, plugin_meta)

TP = os.path.abspath(os.environ.get("LINLI_TP_DIR", os.path.join(BUILD, "tests", "plugins")))
GOOD_CAPS = ["bus.publish:good/#", "store.read:residents"]

# A script plugin that requires the .so plugin `good`, and declares one capability.
NEEDER = """plugin {
  name = "needer", version = "1.0.0", sdk = "1.0", family = "custom",
  description = "requires good", capabilities = { "bus.publish:needer/#" },
  requires = { "good" },
}
"""

RULE = """rule {
  name = "relay", on = "test/in/#",
  capabilities = { "bus.publish:test/out/#" },
  run = function(e) assert(linli.publish("test/out/x", { n = e.n })) end,
}
"""


class node:
    """A city linlid with the catalog, tp_good in its plugin dir, and a script dir."""

    def __init__(self, apps=None, rules=None):
        self.d = Daemon()
        d = self.d
        d.pdir = os.path.join(d.dir, "plugins")
        d.scripts = os.path.join(d.dir, "scripts")
        os.makedirs(d.pdir)
        for sub in ("apps", "rules"):
            os.makedirs(os.path.join(d.scripts, sub))
        shutil.copyfile(os.path.join(TP, "tp_good.so"), os.path.join(d.pdir, "tp_good.so"))
        for name, text in (apps or {}).items():
            with open(os.path.join(d.scripts, "apps", name), "w") as f:
                f.write(text)
        for name, text in (rules or {}).items():
            with open(os.path.join(d.scripts, "rules", name), "w") as f:
                f.write(text)
        d.write_config(extra=f'catalog_dir = "{SRC}/catalog";\n'
                             f'plugin_dirs = [ "{d.pdir}" ];\nscript_dirs = [ "{d.scripts}" ];\n')

    def __enter__(self):
        return self.d.start()

    def __exit__(self, etype, *rest):
        finish(self.d, etype)  # a clean stop after a case that passed


def fails(d, *args, name=None, needle=None, input=None):
    rc, out, err = d.cli(*args, input=input)
    check(rc != 0, f"linli {' '.join(args)} should fail: {out}")
    if name:
        eq(out["name"], name, f"error name of {args}")
    if needle:
        check(needle in out["error"], f"{args}: {needle!r} not in {out['error']!r}")
    return out


def audit(d, action):
    return [a for a in d.ok("audit", "--action", action, "--limit", "1000")]


def case_ungranted_plugin_is_refused_before_its_code_runs():
    with node() as d:
        row = by_name(d.ok("plugins", "list"))["good"]
        eq(row["state"], "refused", "state")
        for c in GOOD_CAPS:
            check(c in row["reason"], f"{c} named in {row['reason']!r}")
        check("linli plugins grant good" in row["reason"], row["reason"])
        check("'linli plugins install FILE --grant'" in row["reason"], row["reason"])
        check("tp_good.so: refused: plugin 'good' declares capabilities no admin granted" in
              d.logtext(), "the refusal is logged")
        check("CONSTRUCTOR RAN" not in d.logtext(), "none of its code ran")
        eq(d.ok("status")["plugins"], 0, "nothing runs")
        # The listing shows what waits for an admin, before anything is granted.
        row = by_name(d.ok("plugins", "grants"))["good"]
        eq((row["granted"], sorted(row["missing"])), ([], sorted(GOOD_CAPS)), "listed")
        # One of two granted: still refused, and the message names only the missing one.
        g = d.ok("plugins", "grant", "good", "store.read:residents")
        eq(g["granted"], ["store.read:residents"], "granted")
        eq(g["missing"], ["bus.publish:good/#"], "missing")
        fails(d, "plugins", "enable", "good", name="LINLI_EPERM",
              needle="no admin granted: bus.publish:good/# (")
        # All granted: it starts.
        g = d.ok("plugins", "grant", "good", "bus.publish:good/#")
        eq(g["missing"], [], "nothing missing")
        check("'linli plugins enable good' starts it" in g["state"], g["state"])
        eq(d.ok("plugins", "enable", "good")["state"], "running", "running")
        entries = audit(d, "plugins.grant")
        eq([(a["who"], a["object"], a["detail"]) for a in entries],
           [("admin", "plugin:good", "store.read:residents"),
            ("admin", "plugin:good", "bus.publish:good/#")], "audited")


def case_grant_all_and_broad_grants():
    with node() as d:
        g = d.ok("plugins", "grant", "good", "--all")
        eq(sorted(g["granted"]), sorted(GOOD_CAPS), "--all grants what it declares")
        d.ok("plugins", "revoke", "good", "--all")
        eq(d.ok("plugins", "grants", "good")["granted"], [], "--all revokes everything")
        # A broader grant covers narrower declarations: store.read covers store.read:residents,
        # bus.publish:good/# covers itself, a '+' filter does not cover '#'.
        d.ok("plugins", "grant", "good", "store.read", "bus.publish:good/+")
        fails(d, "plugins", "enable", "good", name="LINLI_EPERM",
              needle="no admin granted: bus.publish:good/# (")
        d.ok("plugins", "grant", "good", "bus.publish:#")
        eq(d.ok("plugins", "enable", "good")["state"], "running", "covered by broad grants")


def case_revoke_stops_a_running_plugin_and_its_dependents():
    with node(apps={"needer.lua": NEEDER}) as d:
        d.stop()
        d.grant("plugin:good", *GOOD_CAPS).grant("plugin:needer", "bus.publish:needer/#")
        d.start()
        rows = by_name(d.ok("plugins", "list"))
        eq((rows["good"]["state"], rows["needer"]["state"]), ("running", "running"), "both run")
        g = d.ok("plugins", "revoke", "good", "store.read:residents")
        check(g["state"].startswith("refused: ") and "store.read:residents" in g["state"],
              g["state"])
        rows = by_name(d.ok("plugins", "list"))
        eq(rows["good"]["state"], "refused", "stopped at once")
        check("a grant was revoked" in rows["good"]["reason"], rows["good"]["reason"])
        eq(rows["needer"]["state"], "blocked", "its dependent stopped too")
        eq(d.ok("status")["plugins"], 0, "nothing runs")
        eq(audit(d, "plugins.revoke")[0]["detail"], "store.read:residents", "audited")
        # Granted again, both come back with enable.
        d.ok("plugins", "grant", "good", "store.read:residents")
        d.ok("plugins", "enable", "good")
        eq(d.ok("plugins", "enable", "needer")["state"], "running", "dependent back")


def case_grants_survive_a_restart_and_are_kept_in_the_store():
    with node() as d:
        d.ok("plugins", "grant", "good", *GOOD_CAPS)
        d.stop()
        d.start()
        eq(by_name(d.ok("plugins", "list"))["good"]["state"], "running", "granted at start")
        # The grants dataset is the kernel's: no data command reaches it.
        rc, out, err = d.cli("data", "query", "grants")
        check(rc != 0, f"data query grants: {out}")
        eq(d.ok("store", "stats")["datasets"].get("grants"), 1, "one record")


def case_bad_grant_requests():
    with node() as d:
        fails(d, "plugins", "grant", "good", "store.raed:residents", name="LINLI_EINVAL",
              needle="unknown capability 'store.raed:residents'")
        fails(d, "plugins", "grant", "good", "bus.publish:a/#/b", name="LINLI_EINVAL",
              needle="is not a topic filter")
        fails(d, "plugins", "grant", "good", "net.connect:x", name="LINLI_EINVAL",
              needle="takes no argument")
        fails(d, "plugins", "grant", "Bad-Name", "store.read", name="LINLI_EINVAL",
              needle="is not a plugin name")
        fails(d, "plugins", "grant", "good", name="LINLI_EINVAL", needle="usage")
        fails(d, "plugins", "grant", "nosuch", "--all", name="LINLI_ENOENT",
              needle="no plugin named 'nosuch'")
        fails(d, "plugins", "revoke", "good", "store.read:residents", name="LINLI_ENOENT",
              needle="holds no grant 'store.read:residents'")
        # Granting ahead of an install is allowed: the name need not be known yet.
        eq(d.ok("plugins", "grant", "later", "store.read:grids")["state"], "not installed",
           "pre-granted")
        # Nothing bad was stored.
        eq(d.ok("plugins", "grants", "good")["granted"], [], "good holds nothing")
        rows = by_name(d.ok("plugins", "grants"))
        eq(sorted(rows), ["good", "later"], "the one pre-granted and the one that declares")
        eq((rows["good"]["granted"], sorted(rows["good"]["missing"])), ([], sorted(GOOD_CAPS)),
           "good: nothing granted, both missing")
        eq((rows["later"]["granted"], rows["later"]["state"]), (["store.read:grids"],
                                                               "not installed"), "later")


def case_only_an_admin_over_the_node_grants():
    with node() as d:
        d.ok("plugins", "grant", "good", "store.read:residents")
        d.account("op", "operator")
        d.account("street_admin", "admin", node="hefei/baohe/binhu")
        d.account("watcher", "viewer")
        for user in ("op", "street_admin"):
            tok = d.login(user, "Another-Passw0rd-1")
            for args in (("plugins", "grant", "good", "bus.publish:good/#"),
                         ("plugins", "revoke", "good", "store.read:residents"),
                         ("plugins", "enable", "good"),
                         ("rules", "grant", "relay", "bus.publish:test/out/#")):
                rc, out, err = d.cli(*args, env={"LINLI_SESSION": tok})
                check(rc != 0 and out["name"] == "LINLI_EPERM", f"{user} {args}: {out}")
        # A viewer may read what is granted.
        tok = d.login("watcher", "Another-Passw0rd-1")
        rc, out, err = d.cli("plugins", "grants", "good", env={"LINLI_SESSION": tok})
        eq((rc, out["granted"]), (0, ["store.read:residents"]), "viewer reads grants")
        eq(d.ok("plugins", "grants", "good")["granted"], ["store.read:residents"], "unchanged")
        denied = [a for a in d.ok("audit", "--result", "denied", "--limit", "1000")
                  if a["action"] in ("plugin.manage", "rules.manage")]
        check(len(denied) >= 8, f"denials audited: {denied}")


def case_install_needs_grants_or_grant_flag():
    with node() as d:
        os.remove(os.path.join(d.pdir, "tp_good.so"))
        d.stop()
        d.start()
        src = os.path.join(TP, "tp_good.so")
        fails(d, "plugins", "install", src, name="LINLI_EPERM",
              needle="no admin granted: bus.publish:good/# store.read:residents")
        check(not os.path.exists(os.path.join(d.pdir, "good.so")), "nothing installed")
        row = d.ok("plugins", "install", src, "--grant")
        eq(row["state"], "running", "installed with --grant")
        eq(sorted(d.ok("plugins", "grants", "good")["granted"]), sorted(GOOD_CAPS), "granted")
        eq(audit(d, "plugins.grant")[0]["who"], "admin", "the installing admin granted")


def case_script_plugin_needs_grants():
    with node(apps={"needer.lua": NEEDER}) as d:
        row = by_name(d.ok("plugins", "list"))["needer"]
        eq(row["state"], "refused", "ungranted script plugin refused")
        check("no admin granted: bus.publish:needer/#" in row["reason"], row["reason"])
        d.ok("plugins", "grant", "good", "--all")
        d.ok("plugins", "enable", "good")
        d.ok("plugins", "grant", "needer", "--all")
        eq(d.ok("plugins", "enable", "needer")["state"], "running", "granted script runs")


def case_a_new_version_asking_for_more_is_refused_and_the_old_runs_on():
    v1 = NEEDER.replace('requires = { "good" },', "")
    v2 = v1.replace('version = "1.0.0"', 'version = "2.0.0"').replace(
        '{ "bus.publish:needer/#" }', '{ "bus.publish:needer/#", "store.read:residents" }')
    with node(apps={"needer.lua": v1}) as d:
        d.ok("plugins", "grant", "needer", "--all")
        eq(d.ok("plugins", "enable", "needer")["version"], "1.0.0", "v1 runs")
        with open(os.path.join(d.scripts, "apps", "needer.lua"), "w") as f:
            f.write(v2)
        fails(d, "plugins", "reload", "needer", needle="no admin granted: store.read:residents")
        row = by_name(d.ok("plugins", "list"))["needer"]
        eq((row["state"], row["version"]), ("running", "1.0.0"), "the old version runs on")
        d.ok("plugins", "grant", "needer", "store.read:residents")
        eq(d.ok("plugins", "reload", "needer")["version"], "2.0.0", "granted, v2 runs")


def case_rules_need_grants():
    with node(rules={"relay.lua": RULE}) as d:
        rows = by_name(d.ok("rules", "list"))
        eq(rows["relay"]["state"], "broken", "ungranted rule not loaded")
        eq(d.ok("rules", "grants"), [], "a broken rule declares nothing that is known")
        check("no admin granted: bus.publish:test/out/#" in rows["relay"]["problem"] and
              "linli rules grant relay" in rows["relay"]["problem"] and
              "'linli rules install FILE --grant'" in rows["relay"]["problem"],
              rows["relay"]["problem"])
        # check reports the missing grant without installing anything.
        out = d.ok("rules", "check", "relay.lua", "--stdin", input=RULE)
        check("no admin granted: bus.publish:test/out/#" in out["grants"], out)
        d.ok("rules", "grant", "relay", "bus.publish:test/out/#")
        d.ok("rules", "reload", "relay")
        eq(by_name(d.ok("rules", "list"))["relay"]["state"], "ready", "granted rule runs")
        eq([(r["name"], r["granted"], r["missing"]) for r in d.ok("rules", "grants")],
           [("relay", ["bus.publish:test/out/#"], [])], "rules grants")
        d.ok("publish", "test/in/a", '{"n": 1}')
        # Revoked: faulted at once, with the reason in its log.
        g = d.ok("rules", "revoke", "relay", "bus.publish:test/out/#")
        check(g["state"].startswith("faulted: "), g["state"])
        eq(by_name(d.ok("rules", "list"))["relay"]["state"], "faulted", "stopped")
        check(any("a grant was revoked" in e["message"] for e in d.ok("rules", "log", "relay")),
              "in its log")
        # Removing a rule withdraws its grants; install without them is refused, --grant works.
        d.ok("rules", "grant", "relay", "bus.publish:test/out/#")
        eq(d.ok("rules", "remove", "relay")["grants_revoked"], True, "removed")
        eq(d.ok("rules", "grants", "relay")["granted"], [], "its grants went with it")
        fails(d, "rules", "install", "relay.lua", "--stdin", input=RULE, name="LINLI_EPERM",
              needle="no admin granted")
        eq(d.ok("rules", "install", "relay.lua", "--stdin", "--grant", input=RULE)["state"],
           "ready", "installed with --grant")


def case_offline_grant_command():
    with node(rules={"relay.lua": RULE}) as d:
        d.stop()

        def linlid(*args):
            return subprocess.run([LINLID, "--config", d.cfg, *args], capture_output=True,
                                  text=True, timeout=60)
        r = linlid("--grant", "plugin:good", "bogus.cap")
        check(r.returncode == 1 and "unknown capability 'bogus.cap'" in r.stderr, r.stderr)
        r = linlid("--grant", "good", "store.read")
        check(r.returncode == 1 and "plugin:NAME or rule:NAME" in r.stderr, r.stderr)
        r = linlid("--grant", "plugin:nosuch", "--all")
        check(r.returncode == 1 and "no plugin named 'nosuch'" in r.stderr, r.stderr)
        r = linlid("--grant", "plugin:good")
        check(r.returncode == 2 and "name at least one capability" in r.stderr, r.stderr)
        r = linlid("--grant", "plugin:good", "--all")
        eq(r.returncode, 0, r.stderr)
        check("plugin:good now holds: bus.publish:good/# store.read:residents" in r.stdout,
              r.stdout)
        eq(linlid("--grant", "rule:relay", "--all").returncode, 0, "rule --all")
        d.start()
        eq(by_name(d.ok("plugins", "list"))["good"]["state"], "running", "good runs")
        eq(by_name(d.ok("rules", "list"))["relay"]["state"], "ready", "relay runs")
        who = {a["who"] for a in audit(d, "plugins.grant") + audit(d, "rules.grant")}
        eq(who, {"linlid --grant"}, "audited as the local administrator")


def case_metadata_reader_matches_the_loader():
    """The harness reads declared capabilities from the ELF block; check it against linlid."""
    with node() as d:
        d.ok("plugins", "grant", "good", "--all")
        d.ok("plugins", "enable", "good")
        eq(plugin_meta(os.path.join(d.pdir, "tp_good.so")),
           ("good", d.ok("plugins", "info", "good")["capabilities"]), "same as plugins info")


if __name__ == "__main__":
    sys.exit(main(globals()))
