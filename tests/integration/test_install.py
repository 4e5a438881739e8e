"""`meson install` into a temporary DESTDIR: everything where a Debian admin looks, and a
node that runs from the installed files alone (binaries, config, plugins, catalog), its
systemd unit valid, its man pages matching the code, its bash completion answering."""
import glob
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import BUILD, SRC, Daemon, check, eq, main  # noqa: E402


def install():
    """(destdir, prefix) of a fresh `meson install` of this build."""
    dest = tempfile.mkdtemp(prefix="linli-dest-")
    r = subprocess.run(["meson", "install", "-C", BUILD, "--destdir", dest, "--no-rebuild",
                        "--quiet"], capture_output=True, text=True, timeout=600)
    eq(r.returncode, 0, f"meson install: {r.stdout}{r.stderr}")
    found = glob.glob(os.path.join(dest, "**", "bin", "linlid"), recursive=True)
    eq(len(found), 1, f"one installed linlid: {found}")
    prefix = os.path.dirname(os.path.dirname(found[0]))[len(dest):]
    return dest, prefix


def installed(dest, path):
    return os.path.join(dest, path.lstrip("/"))


def value(cfg, key):
    """The string value of `key = "...";` in the config text."""
    line = next(ln for ln in cfg.splitlines() if ln.strip().startswith(key + " "))
    return line.split('"')[1]


def case_installed_node_runs_from_its_installed_files():
    dest, prefix = install()
    d = None
    try:
        etc = "/etc" if prefix == "/usr" else prefix + "/etc"
        for rel in ("bin/linli", "bin/linlid", "lib/systemd/system/linlid.service",
                    "lib/systemd/system/linli-backup.service",
                    "lib/systemd/system/linli-backup.timer", "lib/tmpfiles.d/linli.conf",
                    "lib/sysusers.d/linli.conf", "share/bash-completion/completions/linli",
                    "share/linli/catalog/tree.cfg", "share/linli/catalog/datasets/alarms.cfg",
                    "share/linli/scripts/apps/party.lua", "share/linli/web/index.html",
                    "share/linli/web/vendor/echarts/echarts.min.js",
                    "share/linli/web/vendor/echarts/LICENSE"):
            check(os.path.isfile(installed(dest, prefix + "/" + rel)), f"installed {rel}")
        # Every rule admins can start from (scripts/rules/, a new file too) and every Lua
        # application (scripts/apps/) is installed.
        for sub in ("rules", "apps"):
            files = sorted(f for f in os.listdir(os.path.join(SRC, "scripts", sub))
                           if f.endswith(".lua"))
            check(files, f"scripts/{sub}/ holds scripts")
            for f in files:
                rel = f"share/linli/scripts/{sub}/" + f
                check(os.path.isfile(installed(dest, prefix + "/" + rel)),
                      f"installed {rel} (list it in scripts/meson.build)")
        if shutil.which("scdoc"):
            for page in ("man1/linli.1", "man5/linli.cfg.5", "man8/linlid.8"):
                check(os.path.isfile(installed(dest, f"{prefix}/share/man/{page}")), page)
        cfgpath = installed(dest, etc + "/linli/linli.cfg")
        with open(cfgpath) as f:
            cfg = f.read()
        # The installed config names the installed places; its plugin dir holds the plugins.
        plugdirs = cfg.split("plugin_dirs = [")[1].split("]")[0].replace('"', "").split(",")
        state, plugindir = value(cfg, "data_dir"), plugdirs[1].strip()
        eq(plugdirs[0].strip(), state + "/plugins", "installs go to the state dir first")
        for so in ("alarms.so", "grid.so"):
            check(os.path.isfile(installed(dest, plugindir + "/" + so)), f"{plugindir}/{so}")
        catalog = value(cfg, "catalog_dir")
        check(os.path.isdir(installed(dest, catalog + "/datasets")), catalog)
        unit = open(installed(dest, prefix + "/lib/systemd/system/linlid.service")).read()
        check(f"ExecStart={prefix}/bin/linlid --config {etc}/linli/linli.cfg --foreground"
              in unit and "Type=notify" in unit and f"ReadWritePaths={state}" in unit, unit)
        if shutil.which("systemd-analyze"):
            local = os.path.join(dest, "linlid.service")
            with open(local, "w") as f:
                f.write(unit.replace(f"{prefix}/bin/", installed(dest, prefix + "/bin/")))
            r = subprocess.run(["systemd-analyze", "verify", "--man=no", "--generators=no",
                                "--recursive-errors=no", local], capture_output=True, text=True)
            eq((r.returncode, r.stdout + r.stderr), (0, ""), "systemd-analyze verify")

        # A node from the installed files: the installed config with this test's places.
        harness.LINLID = installed(dest, prefix + "/bin/linlid")
        harness.LINLI = installed(dest, prefix + "/bin/linli")
        d = Daemon(node="hefei/baohe/binhu", level="street", name="滨湖街道")
        mine = os.path.join(d.dir, "state")
        for sub in ("plugins", "scripts/rules", "scripts/apps"):  # what tmpfiles.d makes
            os.makedirs(os.path.join(mine, sub))
        text = cfg.replace(f'"{state}', f'"{mine}').replace(
            f'"{plugindir}"', f'"{installed(dest, plugindir)}"').replace(
            f'"{catalog}"', f'"{installed(dest, catalog)}"').replace(
            'pwhash           = "interactive";', 'pwhash = "min";')
        lines = [ln for ln in text.splitlines() if not ln.strip().startswith("listen ")]
        i = lines.index("control = {")
        text = "\n".join(lines[:i + 1] + [f'  listen = [ "{d.sock}" ];'] + lines[i + 1:]) + "\n"
        check(f'"{mine}"' in text and 'pwhash = "min"' in text, "the test's places")
        d.write_config(text=text)
        r = subprocess.run([harness.LINLID, "--config", d.cfg, "--check-config"],
                           capture_output=True, text=True)
        eq(r.returncode, 0, r.stdout + r.stderr)
        d.start()
        # No plugin granted yet: only the kernel's commands, which linli(1) lists.
        rows = {p["name"]: p for p in d.ok("plugins", "list")}
        eq(rows["alarms"]["state"], "refused", "ungranted")
        check(rows["alarms"]["file"].startswith(installed(dest, plugindir)), rows["alarms"])
        helpjson = os.path.join(d.dir, "help.json")
        r = subprocess.run([harness.LINLI, "--socket", d.sock, "--json", "help"],
                           capture_output=True, text=True)
        with open(helpjson, "w") as f:
            f.write(r.stdout)
        tool = os.path.join(SRC, "dist", "man", "reference.py")
        r = subprocess.run([sys.executable, tool, "check",
                            os.path.join(SRC, "dist", "man", "linli.1.scd"), "commands"],
                           input=r.stdout, capture_output=True, text=True)
        eq((r.returncode, r.stderr), (0, ""), "linli(1) lists the commands linli help does")
        with open(os.path.join(SRC, "host", "config.c")) as f:
            r = subprocess.run([sys.executable, tool, "check",
                                os.path.join(SRC, "dist", "man", "linli.cfg.5.scd"), "keys"],
                               input=f.read(), capture_output=True, text=True)
        eq((r.returncode, r.stderr), (0, ""), "linli.cfg(5) lists the keys config.c knows")
        eq(d.stop(), 0, "stop")
        # Granted, the installed alarms plugin runs from the installed dir.
        d.grant("plugin:alarms", "--all")
        d.start()
        eq({p["name"]: p for p in d.ok("plugins", "list")}["alarms"]["state"], "running", "alarms")
        eq(d.ok("alarms", "list")["count"], 0, "its command answers")
        # The installed bash completion: the daemon's own words and live values.
        comp = installed(dest, prefix + "/share/bash-completion/completions/linli")

        def complete(*words):
            script = (f'source "{comp}"; COMP_WORDS=(linli {" ".join(words)} ""); '
                      f'COMP_CWORD={len(words) + 1}; _linli; echo "${{COMPREPLY[@]}}"')
            env = dict(os.environ, PATH=os.path.dirname(harness.LINLI) + ":" + os.environ["PATH"],
                       LINLI_SOCKET=d.sock, LINLI_SESSION=d.session)
            r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env)
            return r.stdout.split()
        words = complete()
        check({"status", "data", "alarms", "plugins"} <= set(words), words)
        eq(len(words), len(set(words)), "no duplicates")
        check({"get", "put", "query", "del"} == set(complete("data")), complete("data"))
        check({"alarms", "residents", "devices"} <= set(complete("data", "get")), "datasets")
        check("alarms" in complete("plugins", "show"), "plugin names")
    finally:
        if d:
            if d.proc and d.proc.poll() is None:
                d.stop()
            d.cleanup()
        shutil.rmtree(dest, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(dict(globals())))
