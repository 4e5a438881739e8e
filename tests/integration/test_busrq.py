"""Integration tests of request/reply over the bus (SDK 1.1: serve, unserve, reply, request,
request_cancel; linli.serve ... in Lua), through a real linlid.

The C test plugins rpcsrv (serves rpc/#) and rpccli (requests on rpc/#) of
tests/plugins/tp_rpc.c, and the script plugin `keeper` (luakit) that runs the Lua code it is
sent as itself: a reply with a status and a record, a later reply from a timer, a failure,
a timeout, no server, the server disabled while a request waits (the requester is told at
once, not at the timeout), cancelling, the permission refusals, and the tracking of servers
and requests (`plugins info`)."""
import functools
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(__file__))
from luakit import ENC, keeper as luakit_keeper  # noqa: E402
from harness import BUILD, Daemon, check, eq, finish, main, wait_for, write  # noqa: E402

TP = os.path.abspath(os.environ.get("LINLI_TP_DIR", os.path.join(BUILD, "tests", "plugins")))

# answer(tag): a request callback that prints `answer TAG => {...}` to the daemon log.
PRELUDE = ENC + r"""
function answer(tag)
  return function(r, st, code, id)
    print("answer " .. tag .. " => " .. enc({ r = r, st = st, code = code, id = id }))
  end
end
"""
keeper = functools.partial(luakit_keeper, prelude=PRELUDE)

ESTATE, ETIMEDOUT, ENOENT, EPERM, EEXIST = -18, -9, -3, -5, -4


class node:
    """A linlid with rpcsrv, rpccli and the given script plugins."""

    def __init__(self, so=("tp_rpcsrv", "tp_rpccli"), apps=None):
        self.d = Daemon()
        pdir = os.path.join(self.d.dir, "plugins")
        self.scripts = os.path.join(self.d.dir, "scripts")
        for sub in ("apps", "rules"):
            os.makedirs(os.path.join(self.scripts, sub))
        os.makedirs(pdir)
        for p in so:
            shutil.copyfile(os.path.join(TP, p + ".so"), os.path.join(pdir, p + ".so"))
        for fname, text in (apps or {}).items():
            write(os.path.join(self.scripts, "apps", fname), text)
        self.d.write_config(extra=f'plugin_dirs = [ "{pdir}" ];\n'
                                  f'script_dirs = [ "{self.scripts}" ];\n'
                                  "lua = { time_ms = 5000; max_errors = 1000; };\n")
        self.d.grant_declared(pdir)
        self.d.grant_scripts(os.path.join(self.scripts, "apps"))

    def __enter__(self):
        try:
            return self.d.start()
        except BaseException:
            self.d.cleanup()
            raise

    def __exit__(self, etype, *rest):
        finish(self.d, etype)


def answers(d, n, what):
    return wait_for(lambda: (lambda a: a if len(a) >= n else None)(d.ok("rpccli", "answers")),
                    what)


def lua_answer(d, tag):
    """The JSON printed by answer(tag) in the daemon log."""
    needle = f"answer {tag} => "
    d.wait_log(needle)
    line = [x for x in d.logtext().splitlines() if needle in x][-1]
    a = json.loads(line.split(needle, 1)[1])
    return {k: a.get(k) for k in ("r", "st", "code", "id")}  # enc drops nil fields


def run(d, code):
    return d.ok("keeper", "run", "--stdin", input=code)


def resources(d, plugin):
    return json.dumps(d.ok("plugins", "info", plugin))


def case_reply_with_status_and_record():
    with node() as d:
        r = d.ok("rpccli", "send", "rpc/echo")
        eq(r["rc"], 0, "request sent")
        a = answers(d, 1, "the echo's answer")[0]
        eq(a["id"], r["id"], "answer to the request sent")
        eq(a["status"], 0, "status")
        eq(a["rec"], {"n2": 42, "requester": "rpccli", "scope": "hefei"}, "record")
        eq(a["err"], "", "no message")
        eq(d.ok("rpcsrv", "served")["requester"], "rpccli", "server saw the requester")
        # A server's failure reaches the requester with its code and message.
        d.ok("rpccli", "send", "rpc/fail")
        a = answers(d, 2, "the failure")[1]
        eq((a["status"], a["rec"], a["err"]), (ENOENT, None, "no such alarm"), "failure")
        # Answered requests are resources no more.
        check("request " not in resources(d, "rpccli"), resources(d, "rpccli"))
        check("server" in resources(d, "rpcsrv") and "rpc/#" in resources(d, "rpcsrv"),
              resources(d, "rpcsrv"))


def case_async_reply_after_a_timer():
    with node() as d:
        r = d.ok("rpccli", "send", "rpc/later", "20000", "-", "3000")
        eq(r["rc"], 0, "sent")
        # Pending: a tracked resource of the requester until it is answered.
        check(f"request {r['id']} on rpc/later" in resources(d, "rpccli"),
              resources(d, "rpccli"))
        a = answers(d, 1, "the later answer")[0]
        eq((a["status"], a["rec"]), (7, {"late": True}), "status and record from the timer")
        check(a["ms"] >= 2900, f"answered after the server's timer, not before: {a}")


def case_timeout():
    with node() as d:
        r = d.ok("rpccli", "send", "rpc/never", "300")
        eq(r["rc"], 0, "sent")
        a = answers(d, 1, "the timeout")[0]
        eq(a["status"], ETIMEDOUT, "LINLI_ETIMEDOUT")
        check("in time" in a["err"], a)
        check(a["ms"] >= 290, f"not before the timeout: {a}")
        # Exactly once: nothing more arrives.
        d.ok("rpccli", "send", "rpc/echo")
        eq(len(answers(d, 2, "a second answer")), 2, "one answer per request")
        bad = d.cli("rpccli", "send", "rpc/echo", "600001")[1]
        eq(bad["rc"], -1, "a timeout above 600 s is LINLI_EINVAL")


def case_no_server():
    with node(so=("tp_rpccli",)) as d:
        eq(d.ok("rpccli", "send", "rpc/echo")["rc"], ENOENT, "nobody serves: at once")
        d.wait_log("request rpc/echo: nobody serves it at 'hefei'")
        eq(d.ok("rpccli", "answers"), [], "and no callback")


def case_server_disabled_while_pending():
    with node() as d:
        r = d.ok("rpccli", "send", "rpc/never", "60000")
        eq(r["rc"], 0, "sent")
        wait_for(lambda: d.ok("rpcsrv", "served")["served"] == 1, "delivered")
        d.ok("plugins", "disable", "rpcsrv")
        a = answers(d, 1, "the requester told at once")[0]
        eq(a["status"], ESTATE, "LINLI_ESTATE")
        check("rpcsrv stopped serving rpc/# before it replied" in a["err"], a)
        check(a["ms"] < 30000, f"at once, not at the timeout: {a}")
        eq(d.ok("rpccli", "send", "rpc/echo")["rc"], ENOENT, "no server after the disable")
        d.ok("plugins", "enable", "rpcsrv")
        eq(d.ok("rpccli", "send", "rpc/echo")["rc"], 0, "served again after enable")
        eq(answers(d, 2, "echo")[1]["status"], 0, "echo answered")
        # Unserving does the same for what waits.
        d.ok("rpccli", "send", "rpc/never", "60000")
        wait_for(lambda: d.ok("rpcsrv", "served")["served"] == 2, "delivered")
        eq(d.ok("rpcsrv", "unserve")["rc"], 0, "unserve")
        eq(answers(d, 3, "unserved")[2]["status"], ESTATE, "unserve answers what waits")
        eq(d.ok("rpcsrv", "unserve")["rc"], ENOENT, "second unserve")


def case_requester_stops_while_pending():
    with node() as d:
        d.ok("rpccli", "send", "rpc/later", "20000", "-", "3000")
        wait_for(lambda: d.ok("rpcsrv", "served")["served"] == 1, "delivered")
        d.ok("plugins", "reload", "rpccli")
        # The late reply finds no request: refused, logged by the server.
        d.wait_log("late reply")
        eq(d.ok("rpccli", "answers"), [], "the new instance got no answer")
        # Cancel: the callback never runs.
        r = d.ok("rpccli", "send", "rpc/never", "500")
        eq(d.ok("rpccli", "cancel", str(r["id"]))["rc"], 0, "cancel")
        eq(d.ok("rpccli", "cancel", str(r["id"]))["rc"], ENOENT, "cancel twice")
        d.ok("rpccli", "send", "rpc/echo")
        a = answers(d, 1, "echo")
        eq([x["status"] for x in a], [0], "only the echo answered, never the cancelled one")


def case_permissions_and_clashes():
    with node() as d:
        eq(d.ok("rpccli", "send", "alarm/x")["rc"], EPERM, "request without bus.publish")
        d.wait_log("no granted capability bus.publish:alarm/x")
        eq(d.ok("rpccli", "send", "rpc/echo", "0", "shanghai")["rc"], EPERM,
           "scope outside the requester's jurisdiction")
        eq(d.ok("rpcsrv", "wide")["rc"], EPERM, "serving # without bus.subscribe:#")
        eq(d.ok("rpcsrv", "again")["rc"], EEXIST, "the same pattern twice")
        d.wait_log("serve rpc/#: rpcsrv serves it already")
        # A request in a child scope reaches the node's server with that scope.
        d.ok("rpccli", "send", "rpc/echo", "0", "hefei/baohe")
        eq(answers(d, 1, "child scope")[0]["rec"]["scope"], "hefei/baohe", "scope carried")


LUA_SRV = keeper(name="keeper", caps=("bus.subscribe:alarm/#", "bus.publish:rpc/#",
                                      "bus.publish:alarm/#"))


def case_lua_serve_and_request():
    with node(apps={"keeper.lua": LUA_SRV}) as d:
        # A Lua server: a rule raising an alarm learns its id (sync), a later reply, a failure.
        r = run(d, """
          ALARMS, PENDING = 0, {}
          return linli.serve("alarm/+", function(rq)
            if rq.topic == "alarm/raise" then
              ALARMS = ALARMS + 1
              return 0, { id = "A" .. ALARMS, by = rq.requester, kind = rq.payload.kind }
            elseif rq.topic == "alarm/clear" then
              PENDING[#PENDING + 1] = rq.id
              linli.timer_add(100, 0, function()
                for _, id in ipairs(PENDING) do assert(linli.reply(id, 3, { cleared = true })) end
                PENDING = {}
              end)
              return
            end
            return nil, "no such alarm", "LINLI_ENOENT"
          end)
        """)
        check(isinstance(r["r1"], int) and r["r1"] > 0, r)
        # The Lua requester gets the C server's reply; the C requester the Lua server's.
        eq(run(d, 'return type(linli.request("rpc/echo", nil, { n = 4 }, 0, answer("c")))')["r1"],
           "number", "request id")
        a = lua_answer(d, "c")
        eq((a["r"], a["st"], a["code"]), ({"n2": 8, "requester": "keeper", "scope": "hefei"},
                                           0, None), "Lua requester, C server")
        run(d, 'return linli.request("rpc/fail", nil, nil, 0, answer("f"))')
        eq(lua_answer(d, "f")["st"], "no such alarm", "the failure: nil, message, code")
        eq(lua_answer(d, "f")["code"], "LINLI_ENOENT", "its code")
        run(d, 'return linli.request("rpc/never", nil, nil, 200, answer("t"))')
        eq(lua_answer(d, "t")["code"], "LINLI_ETIMEDOUT", "Lua timeout")
        eq(run(d, 'return linli.request("other/x", nil, nil, 0, answer("n"))')["r3"],
           "LINLI_EPERM", "no capability for the topic")
        eq(run(d, 'return linli.request("alarm/raise", "shanghai", nil, 0, answer("n"))')["r3"],
           "LINLI_EPERM", "outside the jurisdiction")
        eq(run(d, 'return linli.serve("rpc/#", function() end)')["r3"], "LINLI_EPERM",
           "serving without bus.subscribe")
        eq(run(d, 'return linli.reply(999999, 0, {})')["r3"], "LINLI_ENOENT", "reply to nothing")
        # Lua asks Lua: the alarm's id comes back; a later clear comes from the timer.
        run(d, 'return linli.request("alarm/raise", nil, { kind = "smoke" }, 0, answer("s"))')
        a = lua_answer(d, "s")
        eq((a["r"], a["st"]), ({"id": "A1", "by": "keeper", "kind": "smoke"}, 0), "sync reply")
        run(d, 'return linli.request("alarm/clear", nil, { id = "A1" }, 0, answer("l"))')
        a = lua_answer(d, "l")
        eq((a["r"], a["st"]), ({"cleared": True}, 3), "async reply")
        run(d, 'return linli.request("alarm/other", nil, nil, 0, answer("e"))')
        eq(lua_answer(d, "e")["code"], "LINLI_ENOENT", "a Lua server's failure")
        check("server" in resources(d, "keeper"), resources(d, "keeper"))
        # A pending Lua request, cancelled: never called back.
        r = run(d, 'local id = linli.request("rpc/never", nil, nil, 300, answer("x")) '
                   'return linli.request_cancel(id), linli.request_cancel(id)')
        eq((r["r1"], r["r3"]), (True, "no such pending request of this script"),
           "cancel once; the second finds nothing")
        run(d, 'return linli.request("rpc/never", nil, nil, 600, answer("y"))')
        eq(lua_answer(d, "y")["code"], "LINLI_ETIMEDOUT", "a later request times out")
        check("answer x =>" not in d.logtext(), "the cancelled one (300 ms) was never answered")
        eq(run(d, 'return linli.unserve(424242)')["r3"], "LINLI_ENOENT", "unserve unknown")


def case_lua_server_reloaded_while_pending():
    with node(apps={"keeper.lua": LUA_SRV}) as d:
        run(d, 'return linli.serve("alarm/+", function(rq) end)')  # never replies
        eq(d.ok("rpccli", "send", "alarm/x", "60000")["rc"], EPERM, "rpccli may not ask alarm/")
        run(d, 'return linli.request("alarm/wait", nil, nil, 60000, answer("w"))')
        d.ok("plugins", "reload", "keeper")
        # The request's owner went away with the old instance: never called back; the
        # server went too. The new instance serves nothing.
        eq(run(d, 'return linli.request("alarm/raise", nil, nil, 0, answer("z"))')["r3"],
           "LINLI_ENOENT", "the old server is gone")
        check("answer w =>" not in d.logtext(), "a dropped request is never answered")


if __name__ == "__main__":
    sys.exit(main(dict(globals())))
