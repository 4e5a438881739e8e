#!/usr/bin/env python3
"""tools/bench federation — four tiers linked over NATS, as tools/tiers makes them (TLS
between the servers, one account per node), every linlid syncing each commit:

  federation.records      changes per second from a community committed at the city
                          through street and district (each a durable LMDB commit on four
                          nodes, each a JetStream message on three servers); beside it the
                          community's own write rate alone (the raw side: what it commits
                          with nothing going up)
  federation.lost         after a cut of the community's link (BENCH_FED_CUT_S, default 60)
  federation.duplicates   under a steady write load, then healed: records the city lacks or
                          holds in another version than the community, and changes any hop
                          applied more than once (both must be 0)
  federation.heal_s       seconds from the heal until the city holds everything

Each line is `federation.METRIC: VALUE UNIT`, as the other benches print.
"""
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.environ.get("BENCH_ROOT") or os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
BUILD = os.environ.get("BENCH_BUILD") or os.path.join(ROOT, "build-bench")
os.environ.setdefault("LINLID", os.path.join(BUILD, "host", "linlid"))
os.environ.setdefault("LINLI", os.path.join(BUILD, "host", "linli"))
os.environ.setdefault("LINLI_SRC", ROOT)
os.environ.setdefault("LINLI_BUILD", BUILD)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from harness import Daemon  # noqa: E402
from test_federation import CATALOG, held, server, up  # noqa: E402

N = int(os.environ.get("BENCH_FED_N", "20000"))
CUT_S = float(os.environ.get("BENCH_FED_CUT_S", "60"))
LOAD_PER_S = int(os.environ.get("BENCH_FED_LOAD", "200"))
CITY, DIST, STREET, COMM = ("hefei", "hefei/baohe", "hefei/baohe/binhu",
                            "hefei/baohe/binhu/yuelan")
TREE = [(CITY, "city"), (DIST, "district"), (STREET, "street"), (COMM, "community")]


def put(d, recs):
    d.ok("data", "put", "grids", "--scope", COMM, "--stdin", "--id-field", "code",
         input=json.dumps(recs))


def child(d, node):
    kids = [c for c in d.ok("federation", "status")["children"] if c["node"] == node]
    return kids[0] if kids else {"changes": 0, "applied": 0, "duplicates": 0}


def at_city(ds):
    """Changes the city applied from the district (each one a change made below)."""
    return child(ds[CITY], DIST)["changes"]


def wait(fn, what, timeout):
    end = time.time() + timeout
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    raise SystemExit(f"bench federation: timed out waiting for {what}")


def main():
    tmp = tempfile.mkdtemp(prefix="linli-bench-fed-")
    base = 41000 + (os.getpid() % 200) * 50
    r = subprocess.run([os.path.join(ROOT, "tools", "tiers"), "init", tmp,
                        *sum((["--node", f"{p}:{lv}"] for p, lv in TREE), []),
                        "--base-port", str(base), "--status-ms", "1000"],
                       capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"bench federation: tools/tiers init: {r.stderr}")
    dirs = {p: os.path.join(tmp, p.replace("/", "-")) for p, _ in TREE}
    servers = [server(p.rsplit("/", 1)[-1], conf=os.path.join(dirs[p], "nats.conf"),
                      port=base + 10 * i) for i, (p, _) in enumerate(TREE)]
    ds = {}
    try:
        for p, lv in TREE:
            d = Daemon(node=p, level=lv, name=p)
            fed = open(os.path.join(dirs[p], "federation.cfg")).read()
            # durable: every commit synced (the tests' daemons run unsynced)
            d.write_config(text=d.config_text(p, lv, p, CATALOG + fed).replace(
                "store = { sync = false; };", "store = { sync = true; };"))
            ds[p] = d
            d.start()
        comm = ds[COMM]
        # 1. a burst: N records as fast as the community takes them
        t0 = time.time()
        for i in range(0, N, 500):
            put(comm, [{"code": f"b{j:06d}", "name": f"v1-{j}", "households": j}
                       for j in range(i, min(N, i + 500))])
        t_local = time.time() - t0
        wait(lambda: at_city(ds) >= N, "the burst at the city", 600)
        t_city = time.time() - t0
        print(f"federation.records: {N / t_city:.0f} changes/s (community to city, {N} in "
              f"{t_city:.2f} s; the community alone commits {N / t_local:.0f}/s: ratio "
              f"{t_local / t_city:.2f})")
        # 2. a steady load through a cut of the community's link, then healed
        stop = threading.Event()
        made = [0]

        def load():
            k = 0
            while not stop.is_set():
                recs = [{"code": f"s{(k + j) % 5000:06d}", "name": f"v{k + j}"}
                        for j in range(LOAD_PER_S // 10)]
                put(comm, recs)
                k += len(recs)
                made[0] += len(recs)
                time.sleep(0.1)
        th = threading.Thread(target=load)
        th.start()
        time.sleep(3)
        leaf = servers[3]
        leaf.stop()
        time.sleep(CUT_S)
        stop.set()
        th.join()
        backlog = up(comm)["unsent"]
        leaf.start()
        t_heal = time.time()
        total = up(comm)["last"]
        # the city has everything once every hop applied what the hop below it numbered
        wait(lambda: child(ds[STREET], COMM)["applied"] >= total and
             child(ds[DIST], STREET)["applied"] >= up(ds[STREET])["last"] and
             child(ds[CITY], DIST)["applied"] >= up(ds[DIST])["last"],
             "the city caught up", 600)
        heal_s = time.time() - t_heal
        want, got = held(comm, COMM), held(ds[CITY], COMM)
        lost = sum(1 for k, v in want.items() if got.get(k) != v) + \
            sum(1 for k in got if k not in want)
        dups = 0
        for parent, kid in ((STREET, COMM), (DIST, STREET), (CITY, DIST)):
            c = child(ds[parent], kid)
            dups += max(0, c["changes"] - up(ds[kid])["last"])
        print(f"federation.lost: {lost} records ({len(want)} held at the community, "
              f"{made[0]} changes under load, {CUT_S:.0f} s cut)")
        print(f"federation.duplicates: {dups} changes applied twice (over three hops)")
        print(f"federation.heal_s: {heal_s:.2f} s (a backlog of {backlog} changes after "
              f"{CUT_S:.0f} s cut at {LOAD_PER_S}/s)")
    finally:
        for d in reversed(list(ds.values())):
            try:
                d.stop()
            except Exception:
                pass
            d.cleanup()
        for s in servers:
            s.close()
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
