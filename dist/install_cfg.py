#!/usr/bin/env python3
"""The installed /etc/linli/linli.cfg: host/linli.example.cfg (written for a Debian
install) with its paths replaced by the ones this build installs to.

  install_cfg.py IN OUT STATEDIR SOCKET PLUGINDIR CATALOGDIR SYSCONFDIR
"""
import sys

src, out, statedir, socket, plugindir, catalogdir, sysconfdir = sys.argv[1:]
with open(src) as f:
    text = f.read()
for old, new in (("ipc:///run/linli/linlid.sock", socket),
                 ("/usr/lib/linli/plugins", plugindir),
                 ("/usr/share/linli/catalog", catalogdir),
                 ("/var/lib/linli", statedir),
                 ("/etc/linli", sysconfdir + "/linli")):
    if old not in text:
        sys.exit(f"install_cfg.py: {src} no longer names {old}: update the replacements")
    text = text.replace(old, new)
text = text.replace("# linli.cfg — an example configuration for a street node.",
                    "# linli.cfg — this node's configuration (installed from the example):\n"
                    "# set node = { ... } to the node this machine serves, then\n"
                    "# `linlid --check-config` and `systemctl enable --now linlid`.", 1)
with open(out, "w") as f:
    f.write(text)
