"""Integration tests of the living circle (智慧生活圈, scripts/apps/circle.lua), the repo's
own file run as a script plugin by a real linlid at the community node
hefei/baohe/binhu/yuelan with the real catalog: nearby services by kind, walking distance
from a building and opening hours (the test clock), from the console and over HTTP to an
API key as a kiosk holds it; the data an operator should fix; refusals naming what is
wrong; bad settings stopping the app with a reason.
"""
import json
import math
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import SRC, Daemon, check, eq, finish, main  # noqa: E402
from test_http import api as http_api, free_port  # noqa: E402

YUELAN = "hefei/baohe/binhu/yuelan"
APP = os.path.join(SRC, "scripts", "apps", "circle.lua")
B3 = (31.8206, 117.2272)  # building 3 of 悦澜: the mean of its houses' locations


class node:
    """linlid at YUELAN running circle.lua (granted what it declares, as an admin would)."""

    def __init__(self, extra=""):
        self.d = Daemon(node=YUELAN, level="community")
        apps = os.path.join(self.d.dir, "scripts", "apps")
        os.makedirs(apps)
        shutil.copyfile(APP, os.path.join(apps, "circle.lua"))
        self.d.write_config(node=YUELAN, level="community", name="悦澜社区",
                            extra=f'catalog_dir = "{os.path.join(SRC, "catalog")}";\n'
                                  f'script_dirs = [ "{os.path.dirname(apps)}" ];\n{extra}')
        self.d.grant_scripts(apps)

    def __enter__(self):
        try:
            return self.d.start(args=("--test-clock",))
        except BaseException:
            self.d.cleanup()
            raise

    def __exit__(self, etype, *rest):
        finish(self.d, etype)


def metres(a, b):
    """The haversine distance in m, computed here independently of the app."""
    p = math.pi / 180
    h = (math.sin((b[0] - a[0]) * p / 2) ** 2 +
         math.cos(a[0] * p) * math.cos(b[0] * p) * math.sin((b[1] - a[1]) * p / 2) ** 2)
    return 2 * 6371008.8 * math.asin(math.sqrt(h))


def north(m):
    return (B3[0] + m / 111195.0, B3[1])


def east(m):
    return (B3[0], B3[1] + m / (111195.0 * math.cos(B3[0] * math.pi / 180)))


# id: (service, hours, location, extra fields)
PLACES = {
    "ph-near": ("pharmacy", "08:00-21:00", north(200), {}),
    "ph-24h": ("pharmacy", "24h", north(700), {}),
    "sm-night": ("supermarket", "07:00-11:30, 22:00-02:00", east(400), {}),
    "canteen": ("canteen", "8-20", east(150), {}),  # hours that do not parse
    "clinic-far": ("clinic", "08:00-17:00", north(3000), {}),
    "ph-unlisted": ("pharmacy", "24h", north(100), {"listed": False}),
    "ph-closed": ("pharmacy", "24h", north(300), {"status": "deregistered"}),
    "barber": ("barber", "09:00-20:00", None, {}),  # no location
}


def seed(d):
    for i, (dl, dn) in enumerate(((0.0001, 0.0), (-0.0001, 0.0), (0.0, 0.0002), (0.0, -0.0002))):
        d.ok("data", "put", "houses", "--scope", YUELAN, "--id", f"h3-{i}",
             f'{{"address":"悦澜3栋{i}","building":"3","room":"{i}01",'
             f'"location":{{"lat":{B3[0] + dl},"lon":{B3[1] + dn}}}}}')
    d.ok("data", "put", "houses", "--scope", YUELAN, "--id", "h9",
         '{"address":"悦澜9栋","building":"9","room":"101"}')  # a building with no location
    for n, (pid, (svc, hours, loc, extra)) in enumerate(PLACES.items()):
        rec = {"name": pid, "credit_code": f"91340100MA2{n:07d}", "service": svc,
               "hours": hours, "service_phone": "0551-6500000" + str(n), "listed": True,
               "legal_rep": "某某", "legal_rep_phone": "13900000000"}
        if loc:
            rec["location"] = {"lat": loc[0], "lon": loc[1]}
        rec.update(extra)
        d.ok("data", "put", "businesses", "--scope", YUELAN, "--id", pid,
             json.dumps(rec, ensure_ascii=False))


def circle(d, *args):
    return d.ok("circle", *args)


def refused(d, args, name, text):
    rc, out, err = d.cli("circle", *args)
    check(rc == 1 and isinstance(out, dict) and out.get("name") == name
          and text in out.get("error", ""),
          f"linli circle {' '.join(args)}: want {name} {text!r}, got {rc} {out} {err}")


def at(d, when):
    d.ok("clock", "set", when)
    d.login()


def case_nearby_by_kind_distance_and_hours():
    with node() as d:
        seed(d)
        at(d, "2026-12-07T10:00")
        r = circle(d, "near", "3")
        ids = [p["id"] for p in r["places"]]
        # Within the default 1000 m, listed and active, nearest first; the far clinic, the
        # unlisted and the deregistered pharmacy and the place with no location are not.
        eq(ids, ["canteen", "ph-near", "sm-night", "ph-24h"], "near 3")
        eq(r["total"], 4, "total")
        for p in r["places"]:
            want = metres(B3, PLACES[p["id"]][2])
            check(abs(p["distance_m"] - want) <= 2, f"{p['id']}: {p['distance_m']} m, want {want}")
            check("legal_rep" not in p and "legal_rep_phone" not in p, f"no person: {p}")
        eq([p.get("open_now") for p in r["places"]], [None, True, True, True], "open at 10:00")
        eq(r["places"][1]["phone"], "0551-65000000", "the shop's public phone")
        eq(r["places"][1]["service_zh"], "药店", "the kind in Chinese")
        eq([p["id"] for p in circle(d, "near", "3", "--kind", "pharmacy")["places"]],
           ["ph-near", "ph-24h"], "pharmacies")
        eq([p["id"] for p in circle(d, "near", "3", "--within", "500")["places"]],
           ["canteen", "ph-near", "sm-night"], "within 500 m")
        eq([p["id"] for p in circle(d, "near", "3", "--within", "5000", "--limit", "2")
            ["places"]], ["canteen", "ph-near"], "limit")
        eq(circle(d, "near", "3", "--within", "5000")["total"], 5, "the clinic within 5 km")
        eq(circle(d, "near", "3", "--kind", "bank")["places"], [], "no bank: an empty list")
        # Opening hours on the node's clock: at 12:00 the night market's morning is over;
        # at 23:30 and 01:30 its night range (past midnight) holds.
        eq([p["id"] for p in circle(d, "near", "3", "--open")["places"]],
           ["ph-near", "sm-night", "ph-24h"], "open at 10:00")
        at(d, "2026-12-07T12:00")
        eq([p["id"] for p in circle(d, "near", "3", "--open")["places"]],
           ["ph-near", "ph-24h"], "open at 12:00")
        at(d, "2026-12-07T23:30")
        eq([p["id"] for p in circle(d, "near", "3", "--open")["places"]],
           ["sm-night", "ph-24h"], "open at 23:30")
        at(d, "2026-12-08T01:30")
        eq([p["id"] for p in circle(d, "near", "3", "--open")["places"]],
           ["sm-night", "ph-24h"], "open at 01:30")
        # From a point instead of a building.
        pt = north(700)
        eq([p["id"] for p in circle(d, "near", "--at", f"{pt[0]},{pt[1]}", "--within", "100")
            ["places"]], ["ph-24h"], "from a point")
        # What an operator should fix.
        chk = circle(d, "check")
        eq(chk["listed"], 7, "listed places (the unlisted one is not)")
        eq(sorted((p["id"], p["field"]) for p in chk["problems"]),
           [("barber", "location"), ("canteen", "hours")], f"problems: {chk}")
        check("'8-20' is not a range HH:MM-HH:MM" in
              [p for p in chk["problems"] if p["id"] == "canteen"][0]["problem"], chk)
        # Refusals name what is wrong.
        refused(d, ["near", "7"], "LINLI_ENOENT", "no building '7'")
        refused(d, ["near", "9"], "LINLI_ENOENT", "building '9' has no house with a location")
        refused(d, ["near", "3", "--kind", "spa"], "LINLI_EINVAL",
                "--kind: 'spa' is not one of bank, barber,")
        refused(d, ["near", "3", "--within", "far"], "LINLI_EINVAL",
                "--within: 'far' is not a distance of 1 to 50000 m")
        refused(d, ["near", "3", "--limit", "0"], "LINLI_EINVAL", "--limit: '0' is not a number")
        refused(d, ["near", "3", "--at", "1,2"], "LINLI_EINVAL", "give --building or --at")
        refused(d, ["near", "--at", "91,2"], "LINLI_EINVAL", "'91,2' is not a point lat,lon")
        refused(d, ["near"], "LINLI_EINVAL", "say where from")
        refused(d, ["near", "3", "--radius", "5"], "LINLI_EINVAL", "unknown option --radius")
        refused(d, ["check", "x"], "LINLI_EINVAL", "usage: circle check")
        eq(len(circle(d, "kinds")), 16, "kinds")


def case_a_kiosk_key_searches_over_http_and_bad_settings_stop_the_app():
    port = free_port()
    with node(extra=f'http = {{ listen = "http://127.0.0.1:{port}"; }};\n'
                    'plugins = { circle = { within_m = 500; limit = 10; }; };\n') as d:
        web = object.__new__(http_api)
        web.port = port
        seed(d)
        at(d, "2026-12-07T10:00")
        kiosk = d.ok("apikeys", "add", "kiosk-hall", "--resources", "app:circle", "--scope",
                     YUELAN)["key"]
        st, body, _ = web.curl("GET", "/api/v1/apps/circle/near?building=3&kind=pharmacy", key=kiosk)
        eq((st, [p["id"] for p in body["places"]]), (200, ["ph-near"]),
           f"within_m = 500 from the settings: {body}")
        eq(body["within_m"], 500, "the setting")
        st, body, _ = web.curl("GET", "/api/v1/apps/circle/near?building=3&within=1000&open=true",
                               key=kiosk)
        eq((st, [p["id"] for p in body["places"]]), (200, ["ph-near", "sm-night", "ph-24h"]),
           f"open within 1000 m: {body}")
        st, body, _ = web.curl("GET", "/api/v1/apps/circle/near?building=3&colour=red", key=kiosk)
        check(st == 400 and "unknown parameter 'colour'" in body["error"]["message"], body)
        st, body, _ = web.curl("GET", "/api/v1/apps/circle/near?building=3&kind=spa", key=kiosk)
        check(st == 400 and "kind: 'spa' is not one of" in body["error"]["message"], body)
        st, body, _ = web.curl("GET", "/api/v1/apps/circle/near?building=7", key=kiosk)
        check(st == 404 and "no building '7'" in body["error"]["message"], (st, body))
        eq(web.curl("GET", "/api/v1/apps/circle/near?building=3")[0], 401, "no key")
        other = d.ok("apikeys", "add", "screen", "--resources", "app:alarms", "--scope",
                     YUELAN)["key"]
        eq(web.curl("GET", "/api/v1/apps/circle/near?building=3", key=other)[0], 403,
           "a key not granted the app")
    for conf, text in (("within_m = 0;", "plugins.circle.within_m: 0 is not a distance"),
                       ("limit = \"5\";", "plugins.circle.limit: 5 is not a number"),
                       ("radius = 3;", "unknown setting 'radius'")):
        with node(extra=f"plugins = {{ circle = {{ {conf} }}; }};\n") as d:
            row = {p["name"]: p for p in d.ok("plugins", "list")}["circle"]
            check(row["state"] == "failed" and text in row.get("reason", ""), f"{conf}: {row}")


if __name__ == "__main__":
    sys.exit(main({k: v for k, v in globals().items() if k.startswith("case_")}))
