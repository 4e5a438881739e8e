"""Signed bundles through a real linlid: keys made and bundles built with linli-bundle, trusted
with `linli trust`, sent over a tcp:// console in chunks, verified, installed under
data_dir/bundles, upgraded, rolled back, removed; every refusal named (unsigned, unknown key,
a flipped byte, a removed key, a catalog fragment), uploads bounded."""
import base64
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from harness import (  # noqa: E402
    BUILD, LINLI, LINLID, SRC, Daemon, by_name, check, eq, finish, main, wait_for)

TP = os.path.abspath(os.environ.get("LINLI_TP_DIR", os.path.join(BUILD, "tests", "plugins")))
TOOL = os.path.join(BUILD, "host", "linli-bundle")


def tool(*args, cwd):
    r = subprocess.run([TOOL, *args], capture_output=True, text=True, cwd=cwd, timeout=60)
    eq(r.returncode, 0, f"linli-bundle {' '.join(args)}: {r.stderr}")
    return r.stdout


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node(Daemon):
    """A linlid with a tcp:// listener beside ipc://, a plugin dir, the test clock."""

    def __init__(self, max_request=None, node="hefei", level="city", name="合肥市", extra=""):
        self.tcp = f"tcp://127.0.0.1:{free_port()}"
        self.max_request = max_request
        super().__init__()
        self.pdir = os.path.join(self.dir, "plugins")
        self.sdir = os.path.join(self.dir, "scripts")
        for sub in (self.pdir, self.sdir + "/apps", self.sdir + "/rules"):
            os.makedirs(sub)
        self.write_config(node, level, name, extra=f'plugin_dirs = [ "{self.pdir}" ];\n'
                                                   f'script_dirs = [ "{self.sdir}" ];\n' + extra)

    def config_text(self, node, level, name, extra=""):
        ctl = f'listen = [ "{self.sock}", "{self.tcp}" ]'
        if getattr(self, "max_request", None):
            ctl += f"; max_request = {self.max_request}"
        return super().config_text(node, level, name, extra).replace(
            f'listen = [ "{self.sock}" ]', ctl)

    def remote(self, *args):
        """`linli --socket tcp://... --json ARGS` with the admin's session: (rc, out, err)."""
        env = dict(os.environ, LINLI_SESSION=self.session)
        r = subprocess.run([LINLI, "--socket", self.tcp, "--json", *args], capture_output=True,
                           text=True, env=env, timeout=60, stdin=subprocess.DEVNULL)
        import json
        return r.returncode, json.loads(r.stdout) if r.stdout.strip() else None, r.stderr


def refused(d, needle, *args, name=None):
    rc, out, err = d.cli(*args)
    check(rc == 1, f"linli {' '.join(args)} should fail: {out}")
    msg = out["error"] if isinstance(out, dict) else err
    check(needle in msg, f"{args}: {needle!r} not in {msg!r}")
    if name:
        eq(out["name"], name, f"error name of {args}")
    return msg


def retar(src, dst, edit):
    """Copy bundle src to dst, each member's bytes through edit(name, bytes) (None drops it)."""
    with tarfile.open(src) as t, tarfile.open(dst, "w") as o:
        for m in t.getmembers():
            data = edit(m.name, t.extractfile(m).read())
            if data is None:
                continue
            info = tarfile.TarInfo(m.name)
            info.size = len(data)
            o.addfile(info, io.BytesIO(data))


HI_LUA = """plugin {
  name = "hi", version = "0.2.0", sdk = "1.1", family = "custom",
  description = "a Lua plugin from a bundle", capabilities = {},
  init = function()
    assert(linli.cmd_register("ping", "", "answers pong", function() return { pong = true } end))
  end,
}
"""


def case_signed_bundle_over_tcp_upgrade_rollback_remove():
    tmp = tempfile.mkdtemp(prefix="linli-bundle-")
    d = Node(max_request=512 * 1024)  # chunks of 381 KiB: the console asks the node
    try:
        tool("keygen", "vendor", cwd=tmp)
        tool("keygen", "other", cwd=tmp)
        with open(os.path.join(tmp, "pad.bin"), "wb") as f:
            f.write(os.urandom(900 * 1024))  # three chunks of 384 KiB
        for v in ("1", "2"):
            out = tool("build", "--plugin", os.path.join(TP, f"tp_reload_v{v}.so"), "--vendor",
                       "示例科技 Example", "--key", "vendor.sec", "--file", "pad.bin",
                       "-o", f"v{v}.bundle", cwd=tmp)
            check(f"reloadme {v}.0.0, signed with key" in out, out)
        tool("build", "--plugin", os.path.join(TP, "tp_reload_v1.so"), "--vendor", "x",
             "--key", "other.sec", "-o", "other.bundle", cwd=tmp)
        tool("build", "--plugin", os.path.join(TP, "tp_reload_v1.so"), "--vendor", "x",
             "--unsigned", "-o", "unsigned.bundle", cwd=tmp)
        tool("build", "--plugin", os.path.join(TP, "tp_dep_b.so"), "--vendor", "x",
             "--unsigned", "-o", "dep_b.bundle", cwd=tmp)
        with open(os.path.join(tmp, "hi.lua"), "w") as f:
            f.write(HI_LUA)
        tool("build", "--plugin", "hi.lua", "--name", "hi", "--version", "0.2.0", "--vendor",
             "x", "--unsigned", "-o", "hi.bundle", cwd=tmp)
        hidir = os.path.join(tmp, "hi-dir")  # the development form: a plain directory
        with tarfile.open(os.path.join(tmp, "hi.bundle")) as t:
            t.extractall(hidir)
        b = {n: os.path.join(tmp, n + ".bundle") for n in
             ("v1", "v2", "other", "unsigned", "dep_b", "flipped", "fragment")}

        def flip(name, data):
            if name == "reloadme.so":
                data = bytearray(data)
                data[len(data) // 2] ^= 0x01
            return bytes(data)
        retar(b["v1"], b["flipped"], flip)
        retar(b["unsigned"], b["fragment"], lambda n, data: data + b"fragment datasets/x.cfg\n"
              if n == "manifest" else data)
        pub = open(os.path.join(tmp, "vendor.pub")).read()
        raw = base64.b64decode(pub.splitlines()[1])
        key_id = hashlib.blake2b(raw[10:]).digest()[:8].hex()
        eq(raw[2:10].hex(), key_id, "the key id: the first 8 bytes of BLAKE2b of the key")
        shutil.copyfile(os.path.join(TP, "tp_dep_a.so"), os.path.join(d.pdir, "dep_a.so"))
        d.start(args=("--test-clock",))

        # Trust: over tcp://, the key file read by the console.
        rc, out, err = d.remote("trust", "add", "vendor", os.path.join(tmp, "vendor.pub"))
        eq((rc, out), (0, {"name": "vendor", "key_id": key_id}), err)
        eq(d.ok("trust", "list"), [{"name": "vendor", "key_id": key_id}], "trust list")
        refused(d, "a key named 'vendor' is trusted already", "trust", "add", "vendor",
                os.path.join(tmp, "other.pub"), name="LINLI_EEXIST")
        with open(os.path.join(tmp, "bad.pub"), "w") as f:
            f.write("ssh-ed25519 AAAA not ours\n")
        refused(d, "the key: not a public key file", "trust", "add", "bad",
                os.path.join(tmp, "bad.pub"), name="LINLI_EINVAL")
        refused(d, "its second line is not the base64 of a public key", "trust", "add", "sec",
                os.path.join(tmp, "vendor.sec"))
        check(f"\nvendor {key_id} {raw[10:].hex()}\n" in
              open(os.path.join(d.data, "trusted.keys")).read(), "kept in data_dir")

        # Refusals, each named; nothing of them installed.
        refused(d, "is unsigned (no manifest.sig): refused; an admin may install it with "
                "--unsigned", "plugins", "install", b["unsigned"], name="LINLI_EPERM")
        refused(d, "which this node does not trust", "plugins", "install", b["other"],
                name="LINLI_EPERM")
        refused(d, "reloadme.so differs from its manifest (BLAKE2b-256 mismatch: a changed "
                "byte?)", "plugins", "install", b["flipped"], name="LINLI_ECORRUPT")
        refused(d, "'fragment': not supported; a bundle brings datasets", "plugins", "install",
                b["fragment"], "--unsigned", name="LINLI_ENOTSUP")
        check("reloadme" not in by_name(d.ok("plugins", "list")), "nothing installed")
        check(not os.path.exists(os.path.join(d.data, "bundles", "reloadme", "1.0.0")),
              "no files left")

        # Signed, over tcp:// in chunks: it runs, from data_dir/bundles.
        rc, row, err = d.remote("plugins", "install", b["v1"])
        eq(rc, 0, err)
        eq((row["name"], row["state"], row["version"]), ("reloadme", "running", "1.0.0"), row)
        vdir = os.path.join(d.data, "bundles", "reloadme", "1.0.0")
        eq(row["file"], os.path.join(vdir, "reloadme.so"), "installed apart")
        eq(d.ok("reloadme", "version")["variant"], 1, "v1 answers")
        info = d.ok("plugins", "info", "reloadme")
        eq((info["bundle"], info["signed_by"]), (vdir, f"vendor ({key_id})"), "info")
        refused(d, "is installed already", "plugins", "install", b["v1"], name="LINLI_EEXIST")

        # Upgrade: a higher version replaces it; lower or equal refused; rollback.
        # (by hand this time: plugins upload begin/chunk, then the upload's @ID)
        data = open(b["v2"], "rb").read()
        up = d.ok("plugins", "upload", "begin", str(len(data)),
                  hashlib.blake2b(data, digest_size=32).hexdigest())
        eq(up["chunk_max"], (512 * 1024 - 4096) // 4 * 3, "chunk size under max_request")
        off = 0
        while off < len(data):
            part = data[off:off + up["chunk_max"]]
            got = d.ok("plugins", "upload", "chunk", up["id"], str(off), "--stdin",
                       input=base64.b64encode(part))
            off += len(part)
            eq((got["received"], got["size"]), (off, len(data)), "received")
        check(len(data) > 2 * up["chunk_max"], "three chunks")
        row = d.ok("plugins", "upgrade", "@" + up["id"])
        eq((row["state"], row["version"]), ("running", "2.0.0"), "upgraded")
        refused(d, f"no upload '{up['id']}'", "plugins", "upgrade", "@" + up["id"])
        eq(d.ok("reloadme", "version")["variant"], 2, "v2 answers")
        refused(d, "2.0.0 is not above the installed 2.0.0", "plugins", "upgrade", b["v2"],
                name="LINLI_EVERSION")
        refused(d, "1.0.0 is not above the installed 2.0.0", "plugins", "upgrade", b["v1"],
                name="LINLI_EVERSION")
        row = d.ok("plugins", "rollback", "reloadme")
        eq((row["state"], row["version"]), ("running", "1.0.0"), "rolled back")
        eq(d.ok("reloadme", "version")["variant"], 1, "v1 answers again")
        refused(d, "not installed from a bundle", "plugins", "remove", "dep_a")
        # A Lua plugin from an unsigned bundle directory, allowed by the admin.
        row = d.ok("plugins", "install", hidir, "--unsigned")
        eq((row["name"], row["kind"], row["state"]), ("hi", "lua", "running"), "lua bundle")
        eq(d.ok("hi", "ping"), {"pong": True}, "it answers")

        # A restart loads the current version again, verified again; offline provisioning
        # (linlid --grant) finds the installed bundle too.
        eq(d.stop(), 0, "stop")
        r = subprocess.run([LINLID, "--config", d.cfg, "--grant", "plugin:reloadme", "--all"],
                           capture_output=True, text=True, timeout=60)
        eq((r.returncode, r.stdout.strip()),
           (0, "plugin:reloadme declares no capability: nothing to grant"), r.stderr)
        d.start(args=("--test-clock",))
        eq(d.ok("reloadme", "version")["variant"], 1, "current kept across a restart")

        # A removed key verifies nothing: installs refused, and at the next start.
        d.ok("trust", "remove", "vendor")
        eq(d.ok("trust", "list"), [], "no key")
        refused(d, "which this node does not trust", "plugins", "upgrade", b["v2"])
        eq(d.stop(), 0, "stop")
        d.start(args=("--test-clock",))
        row = by_name(d.ok("plugins", "list"))["reloadme"]
        eq(row["state"], "refused", "signed by a removed key")
        check(f"signed with key {key_id}, which this node does not trust" in row["reason"], row)
        eq(d.ok("hi", "ping"), {"pong": True}, "the one installed unsigned loads on")

        # Unsigned with --unsigned (audited); a plugin requiring it stops when it is removed.
        row = d.ok("plugins", "install", b["dep_b"], "--unsigned")
        eq((row["name"], row["state"]), ("dep_b", "running"), "unsigned, allowed")
        eq(d.ok("plugins", "info", "dep_b")["signed_by"], "unsigned", "said")
        eq(d.ok("plugins", "enable", "dep_a")["state"], "running", "dep_a on dep_b")
        out = d.ok("plugins", "remove", "dep_b", "--purge")
        eq((out["name"], out["purged"], out["stopped"]), ("dep_b", True, ["dep_a"]), out)
        rows = by_name(d.ok("plugins", "list"))
        check("dep_b" not in rows, "removed")
        eq((rows["dep_a"]["state"], rows["dep_a"]["reason"]),
           ("blocked", "requires 'dep_b', which was removed"), "dep_a says why")
        check(not os.path.exists(os.path.join(d.data, "bundles", "dep_b")), "purged")
        d.ok("plugins", "remove", "reloadme")
        check(os.path.isdir(vdir), "without --purge its files stay")
        check(not os.path.exists(os.path.join(d.data, "bundles", "reloadme", "current")),
              "but it no longer loads")
        acts = [(r["action"], r["object"], r.get("detail")) for r in
                d.ok("audit", "--limit", "200") if r["action"].startswith(("plugins.", "trust."))]
        for want in [("trust.add", "key:vendor", f"key id {key_id}"),
                     ("plugins.install", "plugin:reloadme", f"1.0.0, signed by vendor ({key_id})"),
                     ("plugins.upgrade", "plugin:reloadme",
                      f"1.0.0 -> 2.0.0, signed by vendor ({key_id})"),
                     ("plugins.rollback", "plugin:reloadme", "2.0.0 -> 1.0.0"),
                     ("trust.remove", "key:vendor", f"key id {key_id}"),
                     ("plugins.install", "plugin:dep_b", "1.0.0, unsigned, allowed with --unsigned"),
                     ("plugins.remove", "plugin:dep_b", "1.0.0, files purged")]:
            check(want in acts, f"audited {want}: {acts}")
        denied = [(r["action"], r["result"], r.get("detail") or "") for r in
                  d.ok("audit", "--limit", "200") if r["object"] == "plugin:reloadme"
                  and r["result"] == "denied"]
        for needle in ("is unsigned", "which this node does not trust",
                       "reloadme.so differs from its manifest"):
            check(any(a == "plugins.install" and needle in det for a, _, det in denied),
                  f"refusal audited as denied: {needle!r} in {denied}")

        # Uploads are bounded, in order, the caller's own, dropped when abandoned.
        h = hashlib.blake2b(b"x" * 10, digest_size=32).hexdigest()
        refused(d, "HASH must be the BLAKE2b-256", "plugins", "upload", "begin", "10", "zz")
        refused(d, "over the limit of a bundle", "plugins", "upload", "begin",
                str(65 << 20), h, name="LINLI_E2BIG")
        ids = [d.ok("plugins", "upload", "begin", "10", h)["id"] for _ in range(4)]
        refused(d, "4 uploads are open already", "plugins", "upload", "begin", "10", h,
                name="LINLI_ELIMIT")
        rc, out, err = d.cli("plugins", "upload", "chunk", ids[0], "5")
        check(rc == 1 and "offset 5, but 0 bytes came so far" in out["error"], out)
        d.ok("plugins", "upload", "abort", ids[1])
        refused(d, "is not whole: 0 of 10 bytes", "plugins", "install", "@" + ids[0])
        d.ok("clock", "advance", "301s")
        refused(d, f"no upload '{ids[2]}'", "plugins", "install", "@" + ids[2],
                name="LINLI_ENOENT")
        d.ok("plugins", "upload", "begin", "10", h)  # room again
    finally:
        finish(d, sys.exc_info()[0])
        shutil.rmtree(tmp, ignore_errors=True)


STREET = "hefei/baohe/binhu"
COMM_A, COMM_B = STREET + "/yuelan", STREET + "/qiming"  # two communities of the tree

# A community app: what it does on its own account in init (store, bus), and two commands
# run as the caller. B is the sibling community it must never reach.
SCOPED_LUA = """local own, heard = {}, linli.array()
plugin {
  name = "commapp", version = "VER", sdk = "1.1", family = "custom",
  description = "a community's own app", capabilities = {
    "store.read:grids", "store.write:grids", "bus.subscribe:commapp/#", "bus.publish:commapp/#" },
  init = function()
    own.scope, own.field = linli.plugin_scope(), linli.scope
    local id, err = linli.store_put("grids", { code = "g01", name = "一网格" })
    own.put_default = id and select(2, linli.store_get("grids", id)) or err
    own.put_b = select(2, linli.store_put("grids", { code = "g02", name = "二网格" }, "@B@"))
    own.read_b = select(2, linli.store_get("grids", "x", "@B@"))
    own.pub_b = select(2, linli.publish("commapp/x", { n = 1 }, "@B@"))
    assert(linli.subscribe("commapp/#", function(e, topic, meta)
      heard[#heard + 1] = topic .. "@" .. meta.scope
    end))
    assert(linli.publish("commapp/self", { n = 2 }))  -- at its scope
    assert(linli.cmd_register("state", "", "what it did", function()
      return { own = own, heard = heard, version = "VER", scope = linli.plugin_scope() }
    end))
    assert(linli.cmd_register("put", "SCOPE", "a grid at SCOPE, as the caller", function(args)
      local id, err, code = linli.store_put("grids", { code = "g03", name = "三网格" }, args[1])
      if not id then return nil, err, code end
      return { id = id }
    end))
  end,
}
""".replace("@B@", COMM_B)


def case_scoped_plugin_acts_only_in_its_subtree():
    """`plugins install BUNDLE --scope <node>/a` at a street node with communities a and b:
    the plugin reads, writes, hears and publishes at a only (its own account and as a
    caller), b is refused naming its scope; bad scopes refused; the scope survives a
    restart, an upgrade and a rollback."""
    tmp = tempfile.mkdtemp(prefix="linli-scope-")
    d = Node(node=STREET, level="street", name="滨湖街道",
             extra=f'catalog_dir = "{os.path.join(SRC, "catalog")}";\n')
    try:
        for v in ("0.1.0", "0.2.0"):
            with open(os.path.join(tmp, "commapp.lua"), "w") as f:
                f.write(SCOPED_LUA.replace("VER", v))
            caps = [w for c in ("store.read:grids", "store.write:grids",
                                "bus.subscribe:commapp/#", "bus.publish:commapp/#")
                    for w in ("--capability", c)]
            tool("build", "--plugin", "commapp.lua", "--name", "commapp", "--version", v,
                 "--sdk", "1.1", *caps, "--vendor", "街道", "--unsigned", "-o",
                 f"commapp-{v}.bundle", cwd=tmp)
        b1, b2 = (os.path.join(tmp, f"commapp-{v}.bundle") for v in ("0.1.0", "0.2.0"))
        d.start(args=("--test-clock",))

        # Bad scopes: named, with the node; nothing installed.
        refused(d, f"--scope hefei/baohe/other is outside this node {STREET}", "plugins",
                "install", "--scope", "hefei/baohe/other", b1, "--unsigned", "--grant",
                name="LINLI_EPERM")
        refused(d, "--scope 'Bad//x' is not a node path", "plugins", "install", b1,
                "--scope", "Bad//x", "--unsigned", name="LINLI_EINVAL")
        refused(d, "option '--scope' needs a value", "plugins", "install", b1, "--unsigned",
                "--scope")
        check("commapp" not in by_name(d.ok("plugins", "list")), "nothing installed")

        # --scope before the local FILE.bundle: the console still uploads the file.
        row = d.ok("plugins", "install", "--scope", COMM_A, b1, "--unsigned", "--grant")
        eq((row["name"], row["state"], row["scope"]), ("commapp", "running", COMM_A), row)
        eq(d.ok("plugins", "info", "commapp")["scope"], COMM_A, "info shows it")
        eq(by_name(d.ok("plugins", "list"))["commapp"]["scope"],
           COMM_A, "list shows it")
        check(f"commapp {COMM_A}\n" in open(os.path.join(d.data, "plugins.scopes")).read(),
              "kept in data_dir/plugins.scopes")
        d.ok("publish", "commapp/ping", '{"to": "a"}', "--scope", COMM_A)
        d.ok("publish", "commapp/ping", '{"to": "b"}', "--scope", COMM_B)
        d.ok("publish", "commapp/ping", '{"to": "street"}', "--scope", STREET)
        st = wait_for(lambda: (lambda s: s if len(s["heard"]) >= 2 else None)(
            d.ok("commapp", "state")), "events heard")
        own = st["own"]
        eq((own["scope"], own["field"], st["scope"]), (COMM_A, COMM_A, COMM_A),
           "plugin_scope() and linli.scope")
        eq(own["put_default"], COMM_A, "a write without a scope lands at its scope")
        outside = f"plugin 'commapp' of {COMM_A} may not act on {COMM_B}: outside its " \
                  "jurisdiction"
        for k in ("put_b", "read_b", "pub_b"):
            check(outside in own[k], f"{k} refused naming its scope: {own[k]!r}")
        eq(sorted(st["heard"]), [f"commapp/ping@{COMM_A}", f"commapp/self@{COMM_A}"],
           "it hears a's events (and its own, at a), never b's or the street's")
        # As the caller (the street's admin): narrowed to a.
        eq(len(d.ok("commapp", "put", COMM_A)["id"]) > 0, True, "the admin through it, at a")
        msg = refused(d, outside, "commapp", "put", COMM_B, name="LINLI_EPERM")
        rows = d.ok("data", "query", "grids", "--scope", STREET)["records"]
        got = sorted((r["scope"], r.get("record", r).get("code")) for r in rows)
        eq(got, [(COMM_A, "g01"), (COMM_A, "g03")], f"nothing at b ({msg})")
        # A caller of community b has no jurisdiction where it acts: refused.
        bob = d.account("bob", "operator", node=COMM_B)
        rc, out, err = d.cli("commapp", "state", env={"LINLI_SESSION": bob})
        check(rc == 1 and f"has no jurisdiction where plugin 'commapp' acts (its scope "
              f"{COMM_A})" in (out or {}).get("error", err), f"b's operator refused: {out} {err}")

        # A C plugin installed from its file: api->plugin_scope answers its scope.
        row = d.ok("plugins", "install", os.path.join(TP, "tp_good.so"), "--grant",
                   f"--scope={COMM_B}")
        eq((row["state"], row["scope"]), ("running", COMM_B), "a .so for community b")
        eq(d.ok("good", "hello")["scope"], COMM_B, "api->plugin_scope")
        # A driver installed for community a: a device it finds is a's.
        eq(d.ok("plugins", "install", os.path.join(TP, "tp_driver.so"), "--grant", "--scope",
                COMM_A)["scope"], COMM_A, "a driver for a")
        eq(d.ok("tdrv", "found", "f-1", "door", "ok")["name"], "LINLI_OK", "found")
        eq(d.ok("devices", "show", "f-1")["scope"], COMM_A, "a found device is at its scope")
        # A device of b is never bound to it, whoever adds it; one of a is.
        rc, out, err = d.cli("devices", "add", "b-1", "door", "tdrv", "ok", "--scope", COMM_B)
        check(rc == 1 and f"driver tdrv acts only in {COMM_A} (installed with --scope)" in err,
              f"a device of b for a's driver: {rc} {out} {err}")
        eq(d.ok("devices", "add", "a-1", "door", "tdrv", "ok", "--scope", COMM_A)["scope"],
           COMM_A, "a device of a")

        # Kept across a restart, an upgrade (without --scope) and a rollback.
        eq(d.stop(), 0, "stop")
        d.start(args=("--test-clock",))
        eq(by_name(d.ok("plugins", "list"))["commapp"]["scope"], COMM_A, "after a restart")
        eq(d.ok("good", "hello")["scope"], COMM_B, "the .so's after a restart")
        eq(d.ok("commapp", "state")["own"]["field"], COMM_A, "linli.scope after a restart")
        row = d.ok("plugins", "upgrade", b2, "--unsigned")
        eq((row["version"], row["scope"]), ("0.2.0", COMM_A), "kept by an upgrade")
        eq((d.ok("commapp", "state")["version"], d.ok("commapp", "state")["scope"]),
           ("0.2.0", COMM_A), "the new version acts at a")
        row = d.ok("plugins", "rollback", "commapp")
        eq((row["version"], row["scope"]), ("0.1.0", COMM_A), "kept by a rollback")
        d.ok("plugins", "remove", "commapp")
        check("commapp" not in open(os.path.join(d.data, "plugins.scopes")).read(),
              "forgotten when removed")
        # The file is checked at every start: a scope outside the node keeps it from starting.
        eq(d.stop(), 0, "stop")
        with open(os.path.join(d.data, "plugins.scopes"), "w") as f:
            f.write(f"good hefei/baohe/other\ntdrv {COMM_B}\n")
        d.start(args=("--test-clock",))
        rows = by_name(d.ok("plugins", "list"))
        eq((rows["good"]["state"], rows["tdrv"]["scope"]), ("failed", COMM_B), rows)
        check(f"--scope hefei/baohe/other is outside this node {STREET}" in
              rows["good"]["reason"], rows["good"]["reason"])
        # It fails closed: a plugin listed twice, or on a line that is not NAME SCOPE, does
        # not start (never at the node's scope); a file that cannot be read stops them all.
        eq(d.stop(), 0, "stop")
        with open(os.path.join(d.data, "plugins.scopes"), "w") as f:
            f.write(f"good {COMM_A}\ngood {COMM_B}\ntdrv\n")
        d.start(args=("--test-clock",))
        rows = by_name(d.ok("plugins", "list"))
        eq((rows["good"]["state"], rows["tdrv"]["state"]), ("failed", "failed"), rows)
        check("'<unreadable>' is not a node path" in rows["good"]["reason"],
              rows["good"]["reason"])
        check("good: listed twice" in d.logtext() and "tdrv: not 'NAME SCOPE'" in d.logtext(),
              "the log names the lines")
        eq(d.stop(), 0, "stop")
        os.remove(os.path.join(d.data, "plugins.scopes"))
        os.mkdir(os.path.join(d.data, "plugins.scopes"))  # read fails (EISDIR), not ENOENT
        d.start(args=("--test-clock",))
        rows = by_name(d.ok("plugins", "list"))
        eq({r["state"] for r in rows.values()}, {"failed"}, rows)
        check("no plugin starts unscoped" in rows["good"]["reason"], rows["good"]["reason"])
    finally:
        finish(d, sys.exc_info()[0])
        shutil.rmtree(tmp, ignore_errors=True)


YUELAN = "hefei/baohe/binhu/yuelan"

VISITS = """dataset = { name = "visits"; title_zh = "来访"; title_en = "Visits";
  owner = "acme"; family = "public_services"; level = "community";
  sharing = "shared"; source = "community";%s
  fields = ( { name = "who"; type = "string"; indexed = true; },
    { name = "n"; type = "integer"; }%s ); };
"""

DS_LUA = """plugin {
  name = "%(name)s", version = "%(version)s", sdk = "1.1", family = "custom",
  description = "a Lua plugin with a dataset of its own",
  capabilities = { "store.read:%(name)s__visits", "store.write:%(name)s__visits" },
  init = function()
    assert(linli.cmd_register("add", "ID WHO N", "a visit", function(args)
      local id, err = linli.store_put("%(name)s__visits", { who = args[2], n = tonumber(args[3]) },
                                      "%(scope)s", args[1])
      if not id then return nil, err end
      return { id = id }
    end))
    assert(linli.cmd_register("get", "ID", "a visit", function(args)
      local r, scope = linli.store_get("%(name)s__visits", args[1])
      if not r then return nil, scope end
      return r
    end))
  end,
}
"""


TAGS = """dataset = { name = "tags"; title_zh = "标签"; title_en = "Tags"; owner = "acme";
  family = "public_services"; level = "community"; sharing = "shared"; source = "community";
  fields = ( { name = "label"; type = "string"; } ); };
"""


def ds_bundle(tmp, name, version, extra_key="", extra_field="", out=None, fields=None,
              tags=False, lua=None):
    """An unsigned bundle: Lua plugin NAME with dataset file visits.cfg (NAME__visits);
    tags: also tags.cfg (NAME__tags)."""
    src = os.path.join(tmp, f"{name}-{version}")
    os.makedirs(src, exist_ok=True)
    with open(os.path.join(src, f"{name}.lua"), "w") as f:
        f.write(lua or DS_LUA % {"name": name, "version": version, "scope": YUELAN})
    with open(os.path.join(src, "visits.cfg"), "w") as f:
        text = VISITS % (extra_key, extra_field)
        if fields:
            text = text[:text.index("fields = (")] + fields
        f.write(text)
    more = ()
    if tags:
        with open(os.path.join(src, "tags.cfg"), "w") as f:
            f.write(TAGS)
        more = ("--dataset", "tags.cfg")
    out = out or os.path.join(tmp, f"{name}-{version}.bundle")
    tool("build", "--plugin", f"{name}.lua", "--name", name, "--version", version, "--vendor",
         "x", "--unsigned", "--capability", f"store.read:{name}__visits", "--capability",
         f"store.write:{name}__visits", "--dataset", "visits.cfg", *more, "-o", out, cwd=src)
    return out


def case_bundle_datasets_namespaced_upgraded_removed():
    """A bundle brings a dataset (NAME__visits): its Lua plugin and `data put/get` use it
    without an admin editing the catalog; two bundles' `visits` kept apart; a bad fragment
    refused with its file and line; it survives a restart; an upgrade adds a field; remove
    keeps the data, --purge takes dataset and records away."""
    tmp = tempfile.mkdtemp(prefix="linli-bundle-ds-")
    d = Node()
    try:
        acme1 = ds_bundle(tmp, "acme", "1.0.0")
        beta1 = ds_bundle(tmp, "beta", "1.0.0")
        bad = ds_bundle(tmp, "bad", "1.0.0", extra_key="\n  colour = \"blue\";")
        kern = os.path.join(tmp, "kern.bundle")
        shutil.copytree(os.path.join(tmp, "bad-1.0.0"), os.path.join(tmp, "kern-1.0.0"))
        with open(os.path.join(tmp, "kern-1.0.0", "accounts.cfg"), "w") as f:
            f.write((VISITS % ("", "")).replace('"visits"', '"accounts"'))
        tool("build", "--plugin", "bad.lua", "--name", "bad", "--version", "1.0.0", "--vendor",
             "x", "--unsigned", "--capability", "store.read:bad__visits", "--capability",
             "store.write:bad__visits", "--dataset", "accounts.cfg", "-o", kern,
             cwd=os.path.join(tmp, "kern-1.0.0"))
        d.start(args=("--test-clock",))

        # Installed with --grant: the dataset is in the catalog, the plugin writes and reads it.
        row = d.ok("plugins", "install", acme1, "--unsigned", "--grant")
        eq((row["name"], row["kind"], row["state"]), ("acme", "lua", "running"), row)
        shown = d.ok("catalog", "show", "dataset", "acme__visits")
        check("who" in str(shown) and "n" in str(shown), shown)
        eq(d.ok("acme", "add", "v1", "alice", "3")["id"], "v1", "the plugin writes")
        eq(d.ok("acme", "get", "v1")["who"], "alice", "and reads")
        d.ok("data", "put", "acme__visits", "--scope", YUELAN, "--id", "v2",
             '{"who": "bob", "n": 1}')
        eq(d.ok("data", "get", "acme__visits", "v2")["who"], "bob", "data put/get on it")
        eq(d.ok("acme", "get", "v2")["who"], "bob", "the plugin sees the console's record")
        refused(d, "no dataset 'visits'", "data", "get", "visits", "v1")

        # A second vendor's `visits`: another dataset; the same ids kept apart.
        d.ok("plugins", "install", beta1, "--unsigned", "--grant")
        eq(d.ok("beta", "add", "v1", "carol", "9")["id"], "v1", "beta writes its v1")
        eq(d.ok("beta", "get", "v1")["who"], "carol", "beta's v1")
        eq(d.ok("acme", "get", "v1")["who"], "alice", "acme's v1 untouched")

        # Refused: a bad fragment (file and line), a kernel dataset's name; nothing left.
        msg = refused(d, "bundle bad 1.0.0: bad/visits.cfg:4: dataset: unknown key 'colour'", "plugins",
                      "install", bad, "--unsigned", "--grant")
        refused(d, "bad/accounts.cfg:1: dataset: name: 'accounts' is a dataset of the catalog",
                "plugins", "install", kern, "--unsigned", "--grant")
        check("bad" not in by_name(d.ok("plugins", "list")), msg)
        refused(d, "no dataset", "catalog", "show", "dataset", "bad__visits")

        # Kept across a restart: the catalog made again from the installed bundles.
        eq(d.stop(), 0, "stop")
        d.start(args=("--test-clock",))
        eq(d.ok("acme", "get", "v1")["who"], "alice", "acme's data after a restart")
        eq(d.ok("beta", "get", "v1")["who"], "carol", "beta's too")

        # Upgrade with an added field: the old records stay, the new field is usable.
        acme2 = ds_bundle(tmp, "acme", "1.1.0", tags=True,
                          extra_field=',\n    { name = "note"; type = "string"; }')
        row = d.ok("plugins", "upgrade", acme2, "--unsigned", "--grant")
        eq((row["state"], row["version"]), ("running", "1.1.0"), row)
        d.ok("data", "put", "acme__visits", "--scope", YUELAN, "--id", "v3",
             '{"who": "dan", "n": 2, "note": "new field"}')
        eq(d.ok("data", "get", "acme__visits", "v3")["note"], "new field", "the new field")
        eq(d.ok("acme", "get", "v1")["who"], "alice", "old records kept")
        d.ok("data", "put", "acme__tags", "--scope", YUELAN, "--id", "t1", '{"label": "x"}')

        # Rollback returns the catalog: 1.0.0's schema must accept the stored records (a
        # field 1.1.0 added stays in them), else refused naming record and field.
        refused(d, "acme 1.1.0 -> 1.0.0: refused: version 1.0.0's schema does not accept the "
                "stored records: acme__visits: record v3 at " + YUELAN + " does not fit",
                "plugins", "rollback", "acme")
        msg = refused(d, "field 'note'", "plugins", "rollback", "acme")
        eq(by_name(d.ok("plugins", "list"))["acme"]["version"], "1.1.0", msg)
        eq(d.ok("data", "get", "acme__visits", "v3")["note"], "new field", "nothing changed")
        d.ok("data", "del", "acme__visits", "v3")
        d.ok("plugins", "rollback", "acme")
        eq(by_name(d.ok("plugins", "list"))["acme"]["version"], "1.0.0", "rolled back")
        check("note" not in str(d.ok("catalog", "show", "dataset", "acme__visits")),
              "1.0.0's schema again")
        refused(d, "field 'note': not in the schema", "data", "put", "acme__visits",
                "--scope", YUELAN, "--id", "v9", '{"who": "x", "n": 1, "note": "y"}')
        # tags, which 1.0.0 lacks, stays with its records (as remove keeps it), restarted too
        eq(d.ok("data", "get", "acme__tags", "t1")["label"], "x", "a kept dataset")
        eq(d.stop(), 0, "stop")
        d.start(args=("--test-clock",))
        eq(d.ok("data", "get", "acme__tags", "t1")["label"], "x", "kept across a restart")
        check("note" not in str(d.ok("catalog", "show", "dataset", "acme__visits")),
              "1.0.0's schema after a restart")
        row = d.ok("plugins", "upgrade", acme2, "--unsigned", "--grant")
        eq(row["version"], "1.1.0", row)
        d.ok("data", "put", "acme__visits", "--scope", YUELAN, "--id", "v3",
             '{"who": "dan", "n": 2, "note": "new field"}')

        # A removed or retyped field is refused, naming it, until --migrate says what the
        # stored records get; then they are rewritten (in one transaction).
        acme3 = ds_bundle(tmp, "acme", "1.2.0", tags=True, fields='fields = (\n'
                          '    { name = "who"; type = "string"; indexed = true; },\n'
                          '    { name = "note"; type = "integer"; indexed = true; } ); };\n')
        up = ("plugins", "upgrade", acme3, "--unsigned", "--grant")
        refused(d, "field 'visits.n' (acme__visits) is removed in the new version: refused; "
                "--migrate visits.n=drop drops it from the stored records", *up)
        refused(d, "field 'visits.note' (acme__visits) changes type from string to integer",
                *up, "--migrate", "visits.n=drop")
        refused(d, "--migrate visits.zzz=drop: no field of that name is removed or retyped",
                *up, "--migrate", "visits.n=drop", "--migrate", "visits.note=default:0",
                "--migrate", "visits.zzz=drop")
        refused(d, "record v1 at " + YUELAN + " does not fit the new schema: acme__visits: "
                "field 'note': must be an integer", *up,
                "--migrate", "visits.n=drop", "--migrate", "visits.note=default:seven")
        eq(d.ok("data", "get", "acme__visits", "v3")["n"], 2, "nothing migrated by a refusal")
        # A plugin refused after the migrations were accepted migrates nothing either: the
        # plugin is checked before the records are rewritten.
        broken = ds_bundle(tmp, "acme", "1.2.0", tags=True, lua="plugin {",
                           out=os.path.join(tmp, "acme-broken.bundle"),
                           fields='fields = (\n'
                           '    { name = "who"; type = "string"; indexed = true; },\n'
                           '    { name = "note"; type = "integer"; indexed = true; } ); };\n')
        rc, out, err = d.cli("plugins", "upgrade", broken, "--unsigned", "--grant", "--migrate",
                             "visits.n=drop", "--migrate", "visits.note=default:7")
        check(rc == 1 and "refused" in err, f"a broken plugin: {rc} {err}")
        v3 = d.ok("data", "get", "acme__visits", "v3")
        eq((v3["n"], v3["note"]), (2, "new field"), "nothing migrated for a refused plugin")
        eq(d.ok("plugins", "info", "acme")["version"], "1.1.0", "still 1.1.0")
        row = d.ok(*up, "--migrate", "visits.n=drop", "--migrate", "visits.note=default:7")
        eq(row["version"], "1.2.0", row)
        for rid, who in (("v1", "alice"), ("v2", "bob"), ("v3", "dan")):
            rec = d.ok("data", "get", "acme__visits", rid)
            eq((rec["who"], rec["note"], "n" in rec), (who, 7, False), f"{rid} migrated")
        eq(d.ok("data", "query", "acme__visits", "--where", "note=7")["count"], 3,
           "the new index built")
        nods = os.path.join(tmp, "acme-nods.bundle")  # 1.3.0 without its dataset
        src = os.path.join(tmp, "acme-1.2.0")
        with open(os.path.join(src, "acme.lua"), "w") as f:
            f.write(DS_LUA.replace('"%(version)s"', '"1.3.0"') % {"name": "acme",
                                                                  "scope": YUELAN})
        tool("build", "--plugin", "acme.lua", "--name", "acme", "--version", "1.3.0",
             "--vendor", "x", "--unsigned", "--capability", "store.read:acme__visits",
             "--capability", "store.write:acme__visits", "-o", nods, cwd=src)
        refused(d, "the new version of acme no longer brings dataset 'visits' (acme__visits)",
                "plugins", "upgrade", nods, "--unsigned", "--grant")
        # A field it adds as required, which the stored records lack: refused, naming them.
        req = ds_bundle(tmp, "acme", "1.3.0", tags=True, out=os.path.join(tmp, "acme-req.bundle"),
                        fields='fields = (\n'
                        '    { name = "who"; type = "string"; indexed = true; },\n'
                        '    { name = "note"; type = "integer"; indexed = true; },\n'
                        '    { name = "room"; type = "string"; required = true; } ); };\n')
        refused(d, "the new version's schema does not accept the stored records", "plugins",
                "upgrade", req, "--unsigned", "--grant")
        rc, out, err = d.cli("plugins", "upgrade", req, "--unsigned", "--grant")
        check("'room'" in err, err)

        # A new version whose init fails after its migrations ran: the records stay migrated
        # and the catalog keeps the new schema (never the old one over them); the old version
        # runs on; the upgrade again (no --migrate: nothing is left to migrate) installs it.
        g1 = ds_bundle(tmp, "gamma", "1.0.0")
        d.ok("plugins", "install", g1, "--unsigned", "--grant")
        d.ok("data", "put", "gamma__visits", "--scope", YUELAN, "--id", "g1",
             '{"who": "eve", "n": 3}')
        one = 'fields = (\n    { name = "who"; type = "string"; indexed = true; } ); };\n'
        bad_init = ('plugin { name = "gamma", version = "1.1.0", sdk = "1.1", family = "custom",'
                    ' description = "fails", capabilities = { "store.read:gamma__visits",'
                    ' "store.write:gamma__visits" }, init = function() error("boom") end }\n')
        g2 = ds_bundle(tmp, "gamma", "1.1.0", fields=one, lua=bad_init)
        rc, out, err = d.cli("plugins", "upgrade", g2, "--unsigned", "--grant", "--migrate",
                             "visits.n=drop")
        check(rc == 1 and "the stored records were migrated" in err, f"init fails: {rc} {err}")
        eq("n" in d.ok("data", "get", "gamma__visits", "g1"), False, "migrated")
        check('"n"' not in json.dumps(d.ok("catalog", "show", "dataset", "gamma__visits")),
              "the new schema kept")
        eq(d.ok("plugins", "info", "gamma")["version"], "1.0.0", "the old one runs on")
        g3 = ds_bundle(tmp, "gamma", "1.1.0", fields=one, out=os.path.join(tmp, "gamma-ok.bundle"))
        eq(d.ok("plugins", "upgrade", g3, "--unsigned", "--grant")["version"], "1.1.0", "again")
        eq(d.ok("data", "get", "gamma__visits", "g1")["who"], "eve", "the record")

        # remove keeps the data and its schema; --purge takes both away.
        out = d.ok("plugins", "remove", "acme")
        eq((out["purged"], out["purged_records"]), (False, 0), out)
        eq(d.ok("data", "get", "acme__visits", "v1")["who"], "alice", "kept without --purge")
        out = d.ok("plugins", "remove", "beta", "--purge")
        eq((out["purged"], out["purged_records"]), (True, 1), out)
        refused(d, "no dataset 'beta__visits'", "data", "get", "beta__visits", "v1")
        refused(d, "no dataset", "catalog", "show", "dataset", "beta__visits")
        eq(d.stop(), 0, "stop")
        d.start(args=("--test-clock",))
        eq(d.ok("data", "get", "acme__visits", "v3")["note"], 7, "kept, restarted")
        refused(d, "no dataset 'beta__visits'", "data", "get", "beta__visits", "v1")
        acts = [(r["action"], r["object"], r.get("detail")) for r in
                d.ok("audit", "--limit", "200") if r["action"] == "plugins.remove"]
        check(("plugins.remove", "plugin:beta",
               "1.0.0, files purged, 1 datasets purged (1 records)") in acts, acts)
    finally:
        finish(d, sys.exc_info()[0])
        shutil.rmtree(tmp, ignore_errors=True)


METER = """device_class = {
  name = "meter"; title_zh = "表"; title_en = "Meter"; heartbeat = 600;%s
  resources = ( { name = "level"; type = "integer"; min = 0; max = 100; access = "r"; }%s );
  events = ( { name = "low"; severity = "minor"; } );
};
"""

METER_LUA = """plugin {
  name = "%(name)s", version = "%(version)s", sdk = "1.1", family = "custom",
  description = "a Lua plugin bringing a device class",
  capabilities = { "bus.subscribe:dev/%(name)s__meter/#" },
  init = function() end,
}
"""


def dev_bundle(tmp, name, version, extra_key="", extra_res="", file="meter.cfg"):
    """An unsigned bundle: Lua plugin NAME with device-class file meter.cfg (NAME__meter)."""
    src = os.path.join(tmp, f"dev-{name}-{version}")
    os.makedirs(src, exist_ok=True)
    with open(os.path.join(src, f"{name}.lua"), "w") as f:
        f.write(METER_LUA % {"name": name, "version": version})
    text = METER % (extra_key, extra_res)
    if file != "meter.cfg":
        text = text.replace('"meter"', '"%s"' % file[:-4])
    with open(os.path.join(src, file), "w") as f:
        f.write(text)
    out = os.path.join(tmp, f"dev-{name}-{version}.bundle")
    tool("build", "--plugin", f"{name}.lua", "--name", name, "--version", version, "--vendor",
         "x", "--unsigned", "--capability", f"bus.subscribe:dev/{name}__meter/#",
         "--device", file, "-o", out, cwd=src)
    return out


def case_bundle_device_class_added_read_upgraded_purged():
    """A bundle brings a device class (NAME__meter): devices of it are added with tdrv at
    once, readings are checked against its resources; a bad fragment is refused with file
    and line, a kernel class name too; it survives a restart; an upgrade's class reaches new
    devices while those added before keep theirs; --purge is refused while devices use it."""
    tmp = tempfile.mkdtemp(prefix="linli-bundle-dev-")
    d = Node(node=YUELAN, level="community", name="悦澜社区",
             extra=f'catalog_dir = "{os.path.join(SRC, "catalog")}";\n')
    try:
        h1 = dev_bundle(tmp, "hello", "1.0.0")
        bad = dev_bundle(tmp, "bad", "1.0.0", extra_key='\n  colour = "blue";')
        kern = dev_bundle(tmp, "kern", "1.0.0", file="door.cfg")
        d.start(args=("--test-clock",))
        row = d.ok("plugins", "install", h1, "--unsigned", "--grant")
        eq((row["name"], row["state"]), ("hello", "running"), row)
        shown = d.ok("catalog", "show", "device", "hello__meter")
        check("level" in str(shown) and "low" in str(shown), shown)
        d.ok("plugins", "install", os.path.join(TP, "tp_driver.so"), "--grant")
        out = d.ok("devices", "add", "d1", "hello__meter", "tdrv", "ok")
        eq(d.ok("devices", "show", "d1")["class"], "hello__meter", out)
        eq(d.ok("tdrv", "post", "d1", "level", "int", "50")["rc"], 0, "a reading")
        eq(d.ok("tdrv", "post", "d1", "level", "int", "500")["name"], "LINLI_ESCHEMA",
           "over its max: refused")
        eq(d.ok("tdrv", "post", "d1", "temp", "int", "5")["name"], "LINLI_ENOENT",
           "no such resource")
        rd = {r["resource"]: r for r in d.ok("devices", "readings", "d1")}
        eq(rd["level"]["value"], 50, rd)

        # Refused with bundle, file and line: a bad fragment; a kernel class's name.
        refused(d, "bundle bad 1.0.0: bad/meter.cfg:3: device_class: unknown key 'colour'",
                "plugins", "install", bad, "--unsigned", "--grant")
        refused(d, "kern/door.cfg:1: device_class: name: 'door' is a device class of the "
                "catalog", "plugins", "install", kern, "--unsigned", "--grant")
        refused(d, "no device class 'bad__meter'", "devices", "add", "d9", "bad__meter",
                "tdrv", "ok")

        # An upgrade adds a resource: a new device has it; d1 keeps the class it was
        # added with (its readings still checked, nothing dangling).
        h2 = dev_bundle(tmp, "hello", "1.1.0", extra_res=',\n    { name = "temp"; '
                        'type = "integer"; access = "r"; }')
        eq(d.ok("plugins", "upgrade", h2, "--unsigned", "--grant")["version"], "1.1.0")
        check("temp" in str(d.ok("catalog", "show", "device", "hello__meter")), "1.1.0's")
        d.ok("devices", "add", "d2", "hello__meter", "tdrv", "ok")
        eq(d.ok("tdrv", "post", "d2", "temp", "int", "21")["rc"], 0, "the new resource")
        eq(d.ok("tdrv", "post", "d1", "level", "int", "60")["rc"], 0, "d1 still read")
        eq(d.ok("tdrv", "post", "d1", "level", "int", "-1")["name"], "LINLI_ESCHEMA", "checked")
        # rollback returns 1.0.0's class (d2 keeps its own); upgraded again
        d.ok("plugins", "rollback", "hello")
        check("temp" not in str(d.ok("catalog", "show", "device", "hello__meter")), "1.0.0's")
        eq(d.ok("tdrv", "post", "d2", "temp", "int", "22")["rc"], 0, "d2 keeps its class")
        d.ok("plugins", "upgrade", h2, "--unsigned", "--grant")

        # --purge refused while devices use the class, naming them; nothing removed.
        refused(d, "plugins remove hello --purge: refused: 2 devices use hello's device "
                "classes: d1 (hello__meter), d2 (hello__meter)", "plugins", "remove",
                "hello", "--purge")
        eq(by_name(d.ok("plugins", "list"))["hello"]["state"], "running", "still installed")

        # Kept across a restart: the class from the installed bundle, the devices with it.
        eq(d.stop(), 0, "stop")
        d.start(args=("--test-clock",))
        eq(d.ok("devices", "show", "d1")["class"], "hello__meter", "d1 after a restart")
        eq(d.ok("tdrv", "post", "d1", "temp", "int", "20")["rc"], 0, "now of 1.1.0's class")
        eq(d.ok("tdrv", "post", "d1", "level", "int", "101")["name"], "LINLI_ESCHEMA", "max")
        for i in ("d1", "d2"):
            d.ok("devices", "remove", i)
        d.ok("plugins", "remove", "hello", "--purge")
        refused(d, "no device", "catalog", "show", "device", "hello__meter")
        refused(d, "no device class 'hello__meter'", "devices", "add", "d3", "hello__meter",
                "tdrv", "ok")
    finally:
        finish(d, sys.exc_info()[0])
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(dict(globals())))
