"""Integration tests of the MQTT device driver (plugins/mqtt/), through a real linlid and a
real Mosquitto broker.

Each case starts `mosquitto` on a free loopback port (a minimal mosquitto.conf in the temp
dir: one listener on 127.0.0.1, anonymous, no persistence) and a community linlid with the
real catalog and mqtt.so, granted what it declares. Devices are played with the broker's own
clients (mosquitto_pub / mosquitto_sub), as a vendor's firmware would speak: readings and
events up, commands down, results up, the last will for availability. Without mosquitto the
cases FAIL (tools/setup installs it); nothing is skipped.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import (BUILD, SRC, Daemon, TestFailure, check, eq, finish, main,  # noqa: E402
                     plugin_meta, wait_for)

MQTT_SO = os.path.join(BUILD, "plugins", "mqtt", "mqtt.so")
ALARMS_SO = os.path.join(BUILD, "plugins", "alarms", "alarms.so")
MQTT_SIM = os.path.join(SRC, "tools", "mqtt-sim")
CATALOG = os.path.join(SRC, "catalog")
DYNSEC_SO = "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"
YUELAN = "hefei/baohe/binhu/yuelan"


def tool(name):
    for d in (os.environ.get("PATH", "").split(os.pathsep) + ["/usr/sbin", "/usr/bin"]):
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    raise TestFailure(f"{name} is not installed: run tools/setup (Debian packages mosquitto, "
                      "mosquitto-clients); the mqtt tests need a real broker")


class broker:
    """A real mosquitto on a free loopback port, in its own temp dir."""

    def __init__(self, dynsec=False, tls=False, logs=False):
        self.dynsec, self.tls, self.logs = dynsec, tls, logs
        self.admin_pw = "admin-" + os.urandom(6).hex()

    def __enter__(self):
        exe = tool("mosquitto")
        self.pub_exe, self.sub_exe = tool("mosquitto_pub"), tool("mosquitto_sub")
        self.dir = tempfile.mkdtemp(prefix="linli-mqtt-")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        conf = os.path.join(self.dir, "mosquitto.conf")
        # Persistence on: a broker restart keeps the QoS 1 messages queued for linlid.
        text = (f"listener {self.port} 127.0.0.1\npersistence true\n"
                f"persistence_location {self.dir}/\nlog_dest stderr\n")
        if self.logs:  # its log on $SYS/broker/log/# too, and every level to a file
            self.debug_log = os.path.join(self.dir, "debug.log")
            text += f"log_dest topic\nlog_dest file {self.debug_log}\nlog_type all\n"
        if os.getuid() == 0:
            text += "user root\n"  # else mosquitto drops to 'mosquitto' and cannot write here
        if self.tls:  # TLS only, with client certificates
            self.pki = make_pki(self.dir)
            text += (f"cafile {self.pki}/ca.crt\ncertfile {self.pki}/server.crt\n"
                     f"keyfile {self.pki}/server.key\nrequire_certificate true\n")
        if self.dynsec:
            # Debian's dynamic-security plugin with one admin: linlid's own account.
            js = os.path.join(self.dir, "dynsec.json")
            r = subprocess.run([tool("mosquitto_ctrl"), "dynsec", "init", js, "admin",
                                self.admin_pw], capture_output=True, text=True, timeout=10)
            eq(r.returncode, 0, f"mosquitto_ctrl dynsec init: {r.stderr}")
            text += (f"plugin {DYNSEC_SO}\nplugin_opt_config_file {js}\n"
                     "allow_anonymous false\n")
        else:
            text += "allow_anonymous true\n"
        with open(conf, "w") as f:
            f.write(text)
        self.conf, self.exe = conf, exe
        self.log = open(os.path.join(self.dir, "mosquitto.log"), "w")
        self.run()
        return self

    def restart(self):
        """Stop (SIGTERM: mosquitto saves its persistence file) and start again."""
        self.proc.terminate()
        self.proc.wait(timeout=5)
        self.run()

    def run(self):
        self.proc = subprocess.Popen([self.exe, "-c", self.conf], stdout=self.log,
                                     stderr=self.log)

        def up():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return True
            except OSError:
                check(self.proc.poll() is None, f"mosquitto ended: {self.logtext()}")
                return False
        wait_for(up, "mosquitto listening", timeout=5)

    def logtext(self):
        with open(os.path.join(self.dir, "mosquitto.log")) as f:
            return f.read()

    def tls_args(self):
        return ["--cafile", f"{self.pki}/ca.crt", "--cert", f"{self.pki}/client.crt", "--key",
                f"{self.pki}/client.key"] if self.tls else []

    def linlid_tls(self):
        """The plugins.mqtt keys of linlid's TLS to this broker."""
        return (f'cafile = "{self.pki}/ca.crt"; certfile = "{self.pki}/client.crt"; '
                f'keyfile = "{self.pki}/client.key";') if self.tls else ""

    def try_pub(self, topic, payload, client="dev-pub", user=None, pw=None, *extra):
        auth = ["-u", user, "-P", pw] if user else []
        auth += self.tls_args()
        return subprocess.run([self.pub_exe, "-h", "127.0.0.1", "-p", str(self.port), "-i",
                               client, *auth, "-t", topic, "-m", payload, *extra],
                              capture_output=True, text=True, timeout=10)

    def pub(self, topic, payload, client="dev-pub", user=None, pw=None, *extra):
        r = self.try_pub(topic, payload, client, user, pw, *extra)
        eq(r.returncode, 0, f"mosquitto_pub {topic}: {r.stderr}")

    def sub(self, client, topic, *extra, user=None, pw=None):
        """A device's command subscription (debug output, so SUBACK can be waited for)."""
        auth = (["-u", user, "-P", pw] if user else []) + self.tls_args()
        p = subprocess.Popen(["stdbuf", "-oL", self.sub_exe, "-h", "127.0.0.1", "-p",
                              str(self.port), "-i", client, *auth, "-t", topic, "-d", *extra],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(50):
            line = p.stdout.readline()
            check(line, "mosquitto_sub ended before subscribing")
            if "SUBACK" in line:
                p.granted = p.stdout.readline().strip()  # "Subscribed (mid: 1): QOS"
                return p
        raise TestFailure("mosquitto_sub: no SUBACK")

    def __exit__(self, *rest):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def make_pki(top):
    """A CA, a server certificate for 127.0.0.1 and a client certificate (EC P-256)."""
    d = os.path.join(top, "pki")
    os.makedirs(d)
    ext = os.path.join(d, "san.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")

    def ossl(*args):
        r = subprocess.run(["openssl", *args], cwd=d, capture_output=True, text=True,
                           timeout=20)
        eq(r.returncode, 0, f"openssl {args[0]}: {r.stderr}")
    ossl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key")
    ossl("req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=linli-test-ca", "-days", "2",
         "-out", "ca.crt")
    for n in ("server", "client"):
        ossl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{n}.key")
        ossl("req", "-new", "-key", f"{n}.key", "-subj", "/CN=127.0.0.1", "-out", f"{n}.csr")
        ossl("x509", "-req", "-in", f"{n}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", f"{n}.crt")
    return d


class node:
    """A community linlid with mqtt.so; `mqtt` is the body of the plugins.mqtt group."""

    def __init__(self, mqtt, alarms=False):
        self.d = Daemon(node=YUELAN, level="community", name="悦澜社区")
        self.pdir = os.path.join(self.d.dir, "plugins")
        os.makedirs(self.pdir)
        check(os.path.exists(MQTT_SO), f"{MQTT_SO} is not built")
        shutil.copyfile(MQTT_SO, os.path.join(self.pdir, "mqtt.so"))
        if alarms:  # the alarms plugin, and the test clock to reach alarm_after
            shutil.copyfile(ALARMS_SO, os.path.join(self.pdir, "alarms.so"))
        self.args = ("--test-clock",) if alarms else ()
        self.d.write_config(node=YUELAN, level="community", name="悦澜社区",
                            extra=f'catalog_dir = "{CATALOG}";\n'
                                  f'plugin_dirs = [ "{self.pdir}" ];\n'
                                  f"plugins = {{ mqtt = {{ {mqtt} }}; }};\n")
        self.d.grant_declared(self.pdir)

    def __enter__(self):
        try:
            self.d.start(args=self.args)
            return self.d
        except BaseException:
            self.d.cleanup()
            raise

    def __exit__(self, etype, *rest):
        finish(self.d, etype)


def connected(b, extra="", alarms=False):
    return node(f'host = "127.0.0.1"; port = {b.port}; client_id = "linlid-test"; '
                f"keepalive = 10; {b.linlid_tls()} {extra}", alarms)


def status(d):
    return d.ok("mqtt", "status")


def dev_status(d, id_):
    return next(x for x in status(d)["devices"] if x["id"] == id_)


def readings(d, id_):
    """{resource: row} of the resources of id_ that have a value."""
    return {x["resource"]: x for x in d.ok("devices", "readings", id_) if x["value"] is not None}


def drain(d, sid):
    out = []
    for _ in range(20):
        rep = d.ok("events", "next", str(sid), "--wait", "300")
        if not rep["events"]:
            break
        out += rep["events"]
    return out


def wait_connected(d):
    wait_for(lambda: status(d)["broker"]["connected"], "linlid connected to the broker", 5)


def case_readings_events_and_bad_payloads():
    """Readings and an event published by a device arrive through the HAL (latest values,
    the bus, the journal); bad payloads of each kind are refused, counted and stored nowhere.
    All over TLS with client certificates (the broker takes nothing else)."""
    with broker(tls=True) as b, connected(b, f'dedup_file = "{b.dir}/mqtt.seen";') as d:
        wait_connected(d)
        st = status(d)
        eq((st["broker"]["tls"], st["broker"]["client_certificate"]), (True, True), "TLS")
        r = subprocess.run([b.pub_exe, "-h", "127.0.0.1", "-p", str(b.port), "-t", "x", "-m",
                            "y"], capture_output=True, text=True, timeout=10)
        check(r.returncode != 0, f"no plain MQTT on the TLS listener: {r.stderr}")
        eq(st["subscriptions"], ["linli/dev/+/up", "linli/dev/+/result", "linli/dev/+/status"],
           "subscriptions")
        eq((st["broker"]["port"], st["broker"]["client_id"]), (b.port, "linlid-test"), "broker")
        d.ok("devices", "add", "sm-1", "smoke", "mqtt", "smoke-001")
        d.ok("devices", "add", "door-1", "door", "mqtt", "door-001")
        # An address that cannot be a client id is refused when the HAL opens it.
        d.ok("devices", "add", "sm-bad", "smoke", "mqtt", "a/b")
        wait_for(lambda: "is not an MQTT client id" in d.logtext(), "bad address logged")
        sid = d.ok("events", "subscribe", "dev/#")["id"]
        t = 1764900000000
        b.pub("linli/dev/smoke-001/up", json.dumps(
            {"readings": {"battery": 80, "smoke_density": 0.5, "sensitivity": "high"},
             "time": t}))
        b.pub("linli/dev/smoke-001/up", json.dumps({"event": "alarm", "data": {"room": "3-201"}}))
        b.pub("linli/dev/door-001/up", json.dumps({"readings": {"state": "open"}}))
        rd = wait_for(lambda: (lambda r: r if len(r) == 3 else None)(
            readings(d, "sm-1")), "three readings")
        eq({k: v["value"] for k, v in rd.items()},
           {"battery": 80, "smoke_density": 0.5, "sensitivity": "high"}, "latest values")
        eq(rd["battery"]["time"], "2025-12-05T02:00:00.000Z", "the device's time is kept")
        wait_for(lambda: readings(d, "door-1").get("state", {}).get("value") == "open",
                 "door reading")
        evs = wait_for(lambda: (lambda e: e if any("/event/alarm" in x["topic"] for x in e)
                                else None)(drain(d, sid)), "the alarm event on the bus")
        alarm = next(x for x in evs if x["topic"] == "dev/smoke/sm-1/event/alarm")
        eq((alarm["payload"]["severity"], alarm["payload"]["data"]), ("critical", {"room": "3-201"}),
           "alarm payload")
        j = [e for e in d.ok("events", "journal")["events"]
             if e["topic"] == "dev/smoke/sm-1/event/alarm"]
        eq(len(j), 1, "the event is journaled")
        # Bad payloads: not JSON, unknown resource, wrong type, out of range, wrong shape,
        # an unknown event; each refused and counted, none stored or published.
        for p in ("not json {", "[1, 2]", json.dumps({"readings": {"smell": 3}}),
                  json.dumps({"readings": {"battery": "full"}}),
                  json.dumps({"readings": {"battery": 101}}),
                  json.dumps({"readings": {"battery": {"v": 1}}}),
                  json.dumps({"hello": 1}), json.dumps({"readings": {"battery": 5}, "time": "x"}),
                  json.dumps({"event": "party"})):
            b.pub("linli/dev/smoke-001/up", p)
        b.pub("linli/dev/nobody-001/up", json.dumps({"readings": {"battery": 1}}))
        wait_for(lambda: dev_status(d, "sm-1")["messages"] == 11, "every message counted")
        show = wait_for(lambda: (lambda s: s if s["refused"]["event"] == 1 else None)(
            d.ok("devices", "show", "sm-1")), "the HAL's refusals")
        eq(show["refused"], {"unknown": 1, "type": 1, "range": 1, "event": 1}, "HAL refusals")
        eq(show["readings"], 3, "only the good readings were taken")
        ds = dev_status(d, "sm-1")
        eq(ds["refused"], {"not_json": 2, "bad_shape": 3, "bad_result": 0}, "driver refusals")
        eq((ds["readings"], ds["events"]), (6, 2), "handed to the HAL (which refused 3 and 1)")
        st = status(d)
        eq(st["totals"]["unknown_address"], 1, "a message of no device")
        eq((st["totals"]["not_json"], st["totals"]["bad_shape"]), (2, 3), "totals")
        eq({k: v["value"] for k, v in readings(d, "sm-1").items()},
           {"battery": 80, "smoke_density": 0.5, "sensitivity": "high"}, "nothing bad stored")
        later = drain(d, sid)
        eq([e["topic"] for e in later if e["topic"].startswith("dev/smoke/sm-1/")
            and "/event/" not in e["topic"]], [], "no bad reading published")
        log = wait_for(lambda: (lambda t: t if "(bad_shape)" in t else None)(d.logtext()),
                       "refusals logged")
        eq(log.count("device sm-1 (address 'smoke-001'): message refused (not_json)"), 1,
           "logged once")
        check("is not a JSON object" in log or "not a JSON object" in log, "the reason")
        # mqtt status needs an operator whose jurisdiction holds the node.
        viewer = d.account("viewer1", "viewer", node=YUELAN)
        rc, out, err = d.cli("mqtt", "status", env={"LINLI_SESSION": viewer})
        check(rc != 0 and "mqtt.status" in err, f"a viewer is refused: {rc} {err}")
        op = d.account("op1", "operator", node=YUELAN)
        rc, out, err = d.cli("mqtt", "status", env={"LINLI_SESSION": op})
        eq((rc, out and out["totals"]["unknown_address"]), (0, 1), f"an operator reads it: {err}")
        # An event with the device's id ("id", or the MQTT 5 user property event-id) is
        # taken once: the id is remembered (dedup_file) before the event is acknowledged.
        up = "linli/dev/smoke-001/up"
        b.pub(up, json.dumps({"event": "alarm", "id": "ev-1", "data": {"room": "e1"}}),
              "smoke-001", None, None, "-q", "1")
        wait_for(lambda: dev_status(d, "sm-1")["events"] == 3, "the event with an id")
        b.pub(up, json.dumps({"event": "alarm", "id": "bad id", "data": {"room": "x"}}),
              "smoke-001", None, None, "-q", "1")
        wait_for(lambda: dev_status(d, "sm-1")["refused"]["bad_shape"] == 4, "a bad event id")
        # QoS 1: events published while linlid is down (killed -9) wait in its persistent
        # session at the broker, through a broker restart too; none is lost. ev-1 again (its
        # acknowledgement lost to the kill, the device sends it again) and ev-2 twice (once
        # by payload id, once by MQTT 5 user property) are journaled once.
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait()
        for i in range(3):
            b.pub(up, json.dumps({"event": "alarm", "data": {"room": f"q{i}"}}), "smoke-001",
                  None, None, "-q", "1")
        b.pub(up, json.dumps({"event": "alarm", "id": "ev-1", "data": {"room": "e1"}}),
              "smoke-001", None, None, "-q", "1")
        b.pub(up, json.dumps({"event": "alarm", "id": "ev-2", "data": {"room": "e2"}}),
              "smoke-001", None, None, "-q", "1")
        b.restart()
        b.pub(up, json.dumps({"event": "alarm", "data": {"room": "e2"}}), "smoke-001", None,
              None, "-q", "1", "-V", "mqttv5", "-D", "publish", "user-property", "event-id",
              "ev-2")
        for i in range(3, 5):
            b.pub(up, json.dumps({"event": "alarm", "data": {"room": f"q{i}"}}), "smoke-001",
                  None, None, "-q", "1")
        d.start()

        def rooms():
            return [e["payload"]["data"]["room"] for e in d.ok("events", "journal")["events"]
                    if e["topic"] == "dev/smoke/sm-1/event/alarm"]
        got = wait_for(lambda: (lambda r: r if len(r) >= 8 else None)(rooms()),
                       "the queued QoS 1 events after the restarts", 8)
        st = wait_for(lambda: (lambda x: x if x["totals"]["messages"] == 8 else None)(
            status(d)), "every queued message")
        eq(rooms(), ["3-201", "e1", "q0", "q1", "q2", "e2", "q3", "q4"], "each once, in order")
        eq((st["totals"]["events"], st["totals"]["events_not_committed"],
            st["totals"]["unknown_address"], st["totals"]["duplicates"]), (6, 0, 0, 2),
           "taken after the devices were open; two redeliveries dropped")
        eq((st["dedup"]["file"], st["dedup"]["errors"], st["dedup"]["lines"]),
           (f"{b.dir}/mqtt.seen", 0, 2), "the window on disk")
        with open(f"{b.dir}/mqtt.seen") as f:
            eq(f.read(), "smoke-001 ev-1\nsmoke-001 ev-2\n", "one line per event id taken")


def case_commands_round_trip_timeout_and_last_will():
    """A command goes down as JSON with an id and its result comes back to the console; a
    device's refusal comes back as an error; an unanswered command times out (its late result
    answers nothing) and results of no command are refused; the last will and 'online' move
    the device's availability in the HAL at once."""
    with broker() as b, connected(b, "reconnect_max = 1; alarm_after = 60;", alarms=True) as d:
        wait_connected(d)
        d.ok("devices", "add", "sm-1", "smoke", "mqtt", "smoke-001")
        wait_for(lambda: any(x["id"] == "sm-1" for x in status(d)["devices"]), "device open")
        sid = d.ok("events", "subscribe", "dev/smoke/sm-1/event/#")["id"]
        dev = b.sub("smoke-001", "linli/dev/smoke-001/cmd", "--will-topic",
                    "linli/dev/smoke-001/status", "--will-payload", "offline")
        try:
            b.pub("linli/dev/smoke-001/status", "online")
            wait_for(lambda: dev_status(d, "sm-1")["status"] == "online", "online")

            def command(*args):
                out = {}
                th = threading.Thread(target=lambda: out.update(
                    r=d.cli("devices", "command", "sm-1", *args)))
                th.start()
                while True:
                    line = dev.stdout.readline()
                    check(line, "mosquitto_sub ended")
                    if line.startswith("{"):
                        return json.loads(line), th, out

            cmd, th, out = command("set_sensitivity", "level=low")
            eq((cmd["command"], cmd["args"]), ("set_sensitivity", {"level": "low"}), "command")
            check(isinstance(cmd["id"], str) and cmd["id"], f"an id: {cmd}")
            b.pub("linli/dev/smoke-001/result",
                  json.dumps({"id": cmd["id"], "ok": True, "result": {"level": "low"}}))
            th.join(10)
            rc, res, err = out["r"]
            eq(rc, 0, f"command answered: {err}")
            eq((res["result"], res["request"]), ({"level": "low"}, int(cmd["id"])), "the result")
            # The device refuses one.
            cmd, th, out = command("self_test")
            eq(cmd["args"], {}, "no args")
            b.pub("linli/dev/smoke-001/result",
                  json.dumps({"id": cmd["id"], "ok": False, "error": "battery too low"}))
            th.join(10)
            rc, res, err = out["r"]
            check(rc == 1 and "battery too low" in err, f"the device's error: {rc} {err}")
            # No answer: a timeout; the late result is refused and counted.
            cmd, th, out = command("reset", "--timeout", "500")
            th.join(10)
            rc, res, err = out["r"]
            check(rc == 1 and "did not answer 'reset' within 500 ms" in err, f"timeout: {rc} {err}")
            # Its late result reaches the kernel, which drops it (the console was answered);
            # a result with no id, or an id of no command, is refused by the driver.
            b.pub("linli/dev/smoke-001/result", json.dumps({"id": cmd["id"], "ok": True}))
            b.pub("linli/dev/smoke-001/result", json.dumps({"ok": True}))
            b.pub("linli/dev/smoke-001/result", json.dumps({"id": "999999", "ok": True}))
            wait_for(lambda: dev_status(d, "sm-1")["refused"]["bad_result"] == 2,
                     "id-less and unknown results refused")
            st = wait_for(lambda: (lambda s: s if s["totals"]["results"] == 3 else None)(
                status(d)), "the late result")
            eq(st["totals"]["commands"], 3, "commands sent")
            eq(d.ok("devices", "show", "sm-1")["commands_pending"], 0, "nothing pending")
            check(" reset by person 'admin' of hefei/baohe/binhu/yuelan: ok" not in d.logtext(),
                  "the late result did not answer the timed-out command")
        finally:
            dev.send_signal(signal.SIGKILL)  # gone without a DISCONNECT: the broker sends the will
            dev.wait()
        wait_for(lambda: dev_status(d, "sm-1")["status"] == "offline", "the last will")
        check(dev_status(d, "sm-1")["status_time"] > 0, "when")
        # The HAL's availability follows the status at once, not after the heartbeat (300 s).
        show = wait_for(lambda: (lambda s: s if s["state"] == "unavailable" else None)(
            d.ok("devices", "show", "sm-1")), "unavailable by the last will")
        log = d.logtext()
        check("device sm-1 (smoke) unavailable: its driver says so: MQTT status 'offline'" in log,
              "the reason is logged")
        avail = [e for e in drain(d, sid) if e["topic"].startswith("dev/smoke/sm-1/event/")]
        eq([e["topic"].rsplit("/", 1)[1] for e in avail], ["online", "unavailable"],
           "each change published once")
        b.pub("linli/dev/smoke-001/status", "online")
        wait_for(lambda: d.ok("devices", "show", "sm-1")["state"] == "online", "online again")
        b.pub("linli/dev/smoke-001/status", "offlin")  # a prefix of offline is not it
        wait_for(lambda: dev_status(d, "sm-1")["refused"]["bad_shape"] == 1, "a bad status")
        eq(d.ok("devices", "show", "sm-1")["state"], "online", "a bad status changes nothing")
        # MQTT 5 (linlid connects with it): a command carries the result topic as its
        # response topic and its id as correlation data; a v5 device (tools/mqtt-sim --v5)
        # answers there with the correlation data only, no "id" in the payload.
        eq(status(d)["broker"]["protocol"], "mqttv5", "linlid speaks MQTT 5")
        d.ok("devices", "add", "door-1", "door", "mqtt", "door-002")
        sim = subprocess.Popen([MQTT_SIM, "--port", str(b.port), "--address", "door-002",
                                "--v5", "--linger", "6"], stdout=subprocess.PIPE, text=True)
        try:
            eq(json.loads(sim.stdout.readline()), {"connected": "door-002"}, "mqtt-sim --v5")
            rc, res, err = d.cli("devices", "command", "door-1", "open", "seconds=5")
            eq((rc, res and res["result"]), (0, {"done": "open", "args": {"seconds": 5}}),
               f"the v5 device's result, by correlation data: {err}")
            got = json.loads(sim.stdout.readline())
            eq((got["response_topic"], got["correlation"], got["command"]["command"]),
               ("linli/dev/door-002/result", str(res["request"]), "open"),
               "response topic and correlation data")
        finally:
            sim.terminate()
            sim.wait(5)
        eq(dev_status(d, "door-1")["results"], 1, "the v5 result counted")
        # A v5 result whose correlation data names no waiting command, or whose payload id
        # disagrees with it, is refused (bad_result) and answers nothing.
        v5 = ("-V", "mqttv5", "-D", "publish", "correlation-data")
        b.pub("linli/dev/door-002/result", json.dumps({"ok": True}), "door-002", None, None,
              *v5, "424242")
        b.pub("linli/dev/door-002/result", json.dumps({"id": "1", "ok": True}), "door-002",
              None, None, *v5, "2")
        ref = wait_for(lambda: (lambda r: r if r["bad_result"] == 2 else None)(
            dev_status(d, "door-1")["refused"]), "v5 results of no command refused")
        eq((ref["not_json"], ref["bad_shape"]), (0, 0), "refused as results")
        log = wait_for(lambda: (lambda t: t if "door-1 (address 'door-002'): message refused "
                                "(bad_result)" in t else None)(d.logtext()), "logged")
        check("a result for no command of this device waiting" in log, "the reason")
        # The broker goes away: retried; after alarm_after (60 s of the test clock) an alarm
        # through the alarms plugin, cleared when linlid is connected again.
        b.proc.terminate()
        b.proc.wait()
        st = wait_for(lambda: (lambda s: s if not s["connected"] and s.get("lost_since")
                                else None)(status(d)["broker"]), "the loss seen")
        eq((st["alarm"], st["alarms_raised"]), (False, 0), "no alarm before alarm_after")
        d.ok("clock", "advance", "30s")
        time.sleep(0.6)
        eq(status(d)["broker"]["alarm"], False, "none at 30 s")
        d.ok("clock", "advance", "31s")
        wait_for(lambda: status(d)["broker"]["alarms_raised"] == 1, "the alarm raised")

        def lost():
            return [a for a in d.ok("alarms", "list")["alarms"]
                    if (a["type"], a["source"]) == ("mqtt_broker_lost", "plugin:mqtt")]
        a = lost()
        eq((len(a), a[0]["severity"], a[0]["scope"]), (1, "major", YUELAN), "one alarm")
        det = d.ok("alarms", "show", a[0]["id"])["details"]
        check(f"the MQTT broker 127.0.0.1:{b.port} has been out of reach for" in det, det)
        b.run()
        wait_connected(d)
        wait_for(lambda: status(d)["broker"]["alarms_cleared"] == 1, "the alarm cleared")
        eq(status(d)["broker"]["alarm"], False, "no alarm up")
        check(d.ok("alarms", "show", a[0]["id"])["state"].startswith("cleared"), "cleared")


def case_one_broker_account_per_device():
    """With accounts = true, linlid (a dynamic-security admin) gives each device its own
    broker account when it is added (username = client id = ADDRESS, password = its secret)
    and a role for its own topics only: a wrong password, another client id or no account is
    refused; a device's publish on another device's topic never arrives and its subscription
    to another's commands is refused; rekey and remove cut the device off at once."""
    with broker(dynsec=True, logs=True) as b, connected(
            b, f'username = "admin"; password = "{b.admin_pw}"; accounts = true; '
               f'broker_log_file = "{b.debug_log}";') as d:
        wait_connected(d)
        eq(status(d)["accounts"]["managed"], True, "accounts managed")
        # linlid gives its own account the role to publish commands (the broker kicks it
        # once for that; it reconnects with the role).
        wait_for(lambda: (lambda s: s["broker"]["connected"] and s["accounts"]["role_ready"])(
            status(d)), "linlid's own role", 5)
        add = d.ok("devices", "add", "sm-1", "smoke", "mqtt", "smoke-001")
        sec = add["secret"]
        check("driver_error" not in add, f"the driver took the secret: {add}")
        sec2 = d.ok("devices", "add", "door-1", "door", "mqtt", "door-001")["secret"]
        # Two accounts (7 commands each: role, 4 ACLs, client, password), all answered.
        ac = wait_for(lambda: (lambda a: a if a["answers_ok"] == 14 else None)(
            status(d)["accounts"]), "the broker answered every account command", 5)
        eq((ac["sent"], ac["queued"], ac["errors"], ac["last_error"]), (2, 0, 0, ""), "accounts")
        up = "linli/dev/smoke-001/up"
        b.pub(up, json.dumps({"readings": {"battery": 80}}), "smoke-001", "smoke-001", sec)
        wait_for(lambda: readings(d, "sm-1").get("battery", {}).get("value") == 80,
                 "the device's own reading")
        for client, user, pw, what in (("smoke-001", "smoke-001", "wrong", "a wrong password"),
                                       ("smoke-001", "smoke-001", sec2, "another's secret"),
                                       ("other-id", "smoke-001", sec, "another client id"),
                                       ("smoke-001", None, None, "no account")):
            r = b.try_pub(up, json.dumps({"readings": {"battery": 1}}), client, user, pw)
            check(r.returncode != 0 and "not authorised" in r.stderr,
                  f"{what} is refused: {r.returncode} {r.stderr}")
        # The broker's log lines of those refusals reach mqtt status through its log topic
        # (Mosquitto 2.0.11 names no client id in them: "<unknown>").
        bl = wait_for(lambda: (lambda x: x if x["denials"] == 4 else None)(
            status(d)["broker_log"]), "the broker's refusal lines", 5)
        eq((bl["topics"], bl["denials_no_device"], bl["file"], bl["file_error"]),
           (["$SYS/broker/log/N", "$SYS/broker/log/W", "$SYS/broker/log/E"], 4, b.debug_log,
            ""), "the broker's log")
        eq([x.split(": ", 1)[1] for x in bl["lines"]],
           ["Client <unknown> disconnected, not authorised."] * 4, "its lines")
        # Another device's topic: dropped by the broker (an MQTT 5 client hears why: PUBACK
        # 0x87); the broker logs it at level debug, only in its file, which linlid follows.
        r = b.try_pub("linli/dev/door-001/up", json.dumps({"readings": {"state": "open"}}),
                      "smoke-001", "smoke-001", sec, "-V", "mqttv5", "-q", "1")
        check("publish 1 failed: not authorized" in (r.stdout + r.stderr).lower(),
              f"the MQTT 5 reason code: {r.returncode} {r.stdout} {r.stderr}")
        bl = wait_for(lambda: (lambda x: x if x["denials"] == 5 else None)(
            status(d)["broker_log"]), "the denial line", 5)
        check(bl["lines"][-1].endswith("Denied PUBLISH from smoke-001 (d0, q1, r0, m1, "
                                       "'linli/dev/door-001/up', ... (31 bytes))"),
              f"the denial line with the client id: {bl['lines'][-1]}")
        eq((dev_status(d, "sm-1")["broker_denials"], dev_status(d, "door-1")["broker_denials"],
            bl["denials_no_device"]), (1, 0, 4), "counted on the device that published")
        b.pub(up, json.dumps({"readings": {"battery": 81}}), "smoke-001", "smoke-001", sec)
        wait_for(lambda: readings(d, "sm-1").get("battery", {}).get("value") == 81,
                 "the device's next reading")
        eq((dev_status(d, "door-1")["messages"], readings(d, "door-1")), (0, {}),
           "nothing arrived on the other device's topic")
        eq(status(d)["totals"]["unknown_address"], 0, "nor anywhere else")
        spy = b.sub("smoke-001", "linli/dev/door-001/cmd", user="smoke-001", pw=sec)
        spy.kill()
        spy.wait()
        check(spy.granted.endswith(": 128"), f"another's commands refused: {spy.granted}")
        # Its own commands: linlid's role may publish them; the result comes back.
        dev = b.sub("smoke-001", "linli/dev/smoke-001/cmd", user="smoke-001", pw=sec)
        eq(dev.granted.rsplit(": ", 1)[1], "0", "its own command topic")
        out = {}
        th = threading.Thread(target=lambda: out.update(
            r=d.cli("devices", "command", "sm-1", "self_test")))
        th.start()
        line = ""
        while not line.startswith("{"):
            line = dev.stdout.readline()
            check(line, "mosquitto_sub ended before the command")
        cmd = json.loads(line)
        b.pub("linli/dev/smoke-001/result", json.dumps({"id": cmd["id"], "ok": True}),
              "smoke-001", "smoke-001", sec)
        th.join(10)
        eq(out["r"][0], 0, f"the command's result: {out['r']}")
        # Rekey: the connected device is kicked at once; the old secret no longer works.
        new = d.ok("devices", "rekey", "sm-1")["secret"]
        try:
            dev.wait(timeout=5)
        except subprocess.TimeoutExpired:
            dev.kill()
            raise TestFailure("the device with the old secret was not cut off at rekey")
        wait_for(lambda: status(d)["accounts"]["answers_ok"] == 21, "rekey answered", 5)
        r = b.try_pub(up, json.dumps({"readings": {"battery": 1}}), "smoke-001", "smoke-001", sec)
        check(r.returncode != 0 and "not authorised" in r.stderr, f"old secret: {r.stderr}")
        b.pub(up, json.dumps({"readings": {"battery": 82}}), "smoke-001", "smoke-001", new)
        wait_for(lambda: readings(d, "sm-1").get("battery", {}).get("value") == 82,
                 "a reading with the new secret")
        # Remove: cut off at once, the account gone.
        dev = b.sub("smoke-001", "linli/dev/smoke-001/cmd", user="smoke-001", pw=new)
        d.ok("devices", "remove", "sm-1")
        try:
            dev.wait(timeout=5)
        except subprocess.TimeoutExpired:
            dev.kill()
            raise TestFailure("the removed device was not cut off")
        wait_for(lambda: status(d)["accounts"]["answers_ok"] == 23, "remove answered", 5)
        r = b.try_pub(up, json.dumps({"readings": {"battery": 1}}), "smoke-001", "smoke-001", new)
        check(r.returncode != 0 and "not authorised" in r.stderr, f"removed: {r.stderr}")
        # The other device, played by tools/mqtt-sim on its own account: an event (QoS 1),
        # a reading, and the answer to a command.
        sim = subprocess.Popen([MQTT_SIM, "--port", str(b.port), "--address", "door-001",
                                "--user", "door-001", "--password", sec2, "--event", "forced",
                                "--reading", "state=open", "--reading", "passes_today=3",
                                "--linger", "6"], stdout=subprocess.PIPE, text=True)
        try:
            eq(json.loads(sim.stdout.readline()), {"connected": "door-001"}, "mqtt-sim")
            wait_for(lambda: readings(d, "door-1").get("passes_today", {}).get("value") == 3,
                     "the other device is untouched")
            eq(readings(d, "door-1")["state"]["value"], "open", "its reading")
            rc, res, err = d.cli("devices", "command", "door-1", "open", "seconds=5")
            eq((rc, res and res["result"]), (0, {"done": "open", "args": {"seconds": 5}}),
               f"mqtt-sim answered: {err}")
            j = [e for e in d.ok("events", "journal")["events"]
                 if e["topic"] == "dev/door/door-1/event/forced"]
            eq(len(j), 1, "its QoS 1 event, journaled")
        finally:
            sim.terminate()
            sim.wait(5)
        # A gateway speaks for its children (CHILD@GATEWAY): its account gets the child's
        # topics, and loses them when the child is removed.
        gw = d.ok("devices", "add", "gw-1", "kiosk", "mqtt", "gw-001")["secret"]
        d.ok("devices", "add", "sm-9", "smoke", "mqtt", "smoke-009@gw-001")
        wait_for(lambda: status(d)["accounts"]["answers_ok"] == 35, "gateway and child", 5)
        eq(dev_status(d, "sm-9")["address"], "smoke-009", "the child's topic level")
        b.pub("linli/dev/smoke-009/up", json.dumps({"readings": {"battery": 77}}), "gw-001",
              "gw-001", gw)
        wait_for(lambda: readings(d, "sm-9").get("battery", {}).get("value") == 77,
                 "the child's reading through its gateway")
        v5 = ("-V", "mqttv5", "-q", "1")
        r = b.try_pub("linli/dev/smoke-009/up", "{}", "door-001", "door-001", sec2, *v5)
        check("not authorized" in (r.stdout + r.stderr).lower(), f"not another's: {r.stderr}")
        d.ok("devices", "remove", "sm-9")
        wait_for(lambda: status(d)["accounts"]["answers_ok"] == 39, "child removed", 5)
        r = b.try_pub("linli/dev/smoke-009/up", "{}", "gw-001", "gw-001", gw, *v5)
        check("not authorized" in (r.stdout + r.stderr).lower(),
              f"the gateway lost the removed child: {r.stdout} {r.stderr}")
        eq(status(d)["accounts"]["errors"], 0, "no account errors")
        # The broker's denials, counted per device; the ring keeps the last 32 lines.
        wait_for(lambda: [dev_status(d, x)["broker_denials"] for x in ("door-1", "gw-1")] ==
                 [1, 1], "the gateway case's denials, on the devices that published")
        before = status(d)["broker_log"]
        r = subprocess.run([b.pub_exe, "-h", "127.0.0.1", "-p", str(b.port), "-i", "door-001",
                            "-u", "door-001", "-P", sec2, "-V", "mqttv5", "-q", "1", "-t",
                            "linli/dev/smoke-009/up", "-l"], input="".join(
                                f"{i:02d}\n" for i in range(40)), capture_output=True,
                           text=True, timeout=10)
        eq(r.stderr.lower().count("failed: not authorized"), 40, f"40 refused: {r.stderr}")
        bl = wait_for(lambda: (lambda x: x if x["denials"] == before["denials"] + 40 else None)(
            status(d)["broker_log"]), "every denial", 5)
        eq((len(bl["lines"]), bl["keep"], bl["denials_no_device"]),
           (32, 32, before["denials_no_device"]), "the ring")
        check(all("Denied PUBLISH from door-001" in x and "'linli/dev/smoke-009/up'" in x
                  for x in bl["lines"]), "the last 32 lines are door-001's")
        eq([dev_status(d, x)["broker_denials"] for x in ("door-1", "gw-1")], [41, 1],
           "door-001's and the gateway's denials")
        for text, where in ((d.logtext(), "linlid's log"), (b.logtext(), "the broker's log")):
            for x in (sec, sec2, new, gw):
                check(x not in text, f"a secret in {where}")


def case_bad_config_is_refused_naming_file_and_key():
    """A bad plugins.mqtt group stops the plugin at load with the file and key named; the
    broker gone at start is retried, not fatal."""
    tmp = tempfile.mkdtemp(prefix="linli-mqtt-pki-")
    try:
        bad_configs(make_pki(tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bad_configs(pki):
    for bad, needle in (
            ("port = 0;", "linli.cfg: plugins.mqtt.port: must be a TCP port, 1 to 65535"),
            ('client_id = "a/b";', "linli.cfg: plugins.mqtt.client_id: 'a/b' must not contain"),
            ('password = "x";', "linli.cfg: plugins.mqtt.password: is given without a username"),
            ("hots = 1;", "linli.cfg: plugins.mqtt.hots: unknown key (it takes host, port"),
            ("accounts = true;", "linli.cfg: plugins.mqtt.accounts: needs username and "
                                 "password: linlid's own account on the broker"),
            ('broker_log_file = "mosquitto.log";',
             "linli.cfg: plugins.mqtt.broker_log_file: 'mosquitto.log' must be an absolute path"),
            ('dedup_file = "seen";',
             "linli.cfg: plugins.mqtt.dedup_file: 'seen' must be an absolute path"),
            (f'dedup_file = "{pki}/ca.crt";',
             f"linli.cfg: plugins.mqtt.dedup_file: '{pki}/ca.crt' line 2 is not 'ADDRESS "
             "EVENT-ID'"),
            ("reconnect_min = 5; reconnect_max = 2;",
             "linli.cfg: plugins.mqtt.reconnect_max: must be at least reconnect_min (5 s)"),
            (f'cafile = "{pki}/nope.crt";',
             f"linli.cfg: plugins.mqtt.cafile: '{pki}/nope.crt' is not a readable PEM "
             "certificate file"),
            (f'cafile = "{pki}/ca.crt"; certfile = "{pki}/client.crt"; '
             f'keyfile = "{pki}/server.key";',
             f"linli.cfg: plugins.mqtt.keyfile: '{pki}/server.key' is not the private key of "
             f"the certificate in '{pki}/client.crt'")):
        with node(bad) as d:
            info = d.ok("plugins", "info", "mqtt")
            check(info["state"] == "failed" and needle in info["reason"], f"{bad}: {info}")
            out = d.cli("devices", "add", "sm-1", "smoke", "mqtt", "smoke-001")
            check(out[0] == 1 and "no driver 'mqtt' is loaded" in out[2], f"{out}")
    with socket.socket() as s:  # a port where no broker listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with node(f'port = {port}; broker_log_file = "{pki}/no-such.log";') as d:
        eq(d.ok("plugins", "info", "mqtt")["state"], "running", "no broker is not fatal")
        bl = wait_for(lambda: (lambda x: x if x["file_error"] else None)(
            status(d)["broker_log"]), "the log file's error")
        eq(bl["file_error"], f"cannot open '{pki}/no-such.log': No such file or directory",
           "a missing broker log file is shown, and retried")
        wait_for(lambda: "cannot read the broker's log file (broker_log_file): cannot open"
                 in d.logtext(), "and logged")
        # The plugin index asks exactly what mqtt.so declares.
        name, caps = plugin_meta(MQTT_SO)
        entry = d.ok("catalog", "show", "plugin", "mqtt")
        eq((name, entry["version"], entry["sdk"], entry["family"]),
           ("mqtt", "0.1.0", "1.1", "driver"), "index entry")
        eq(sorted(entry["capabilities"]), sorted(caps), "the index lists what mqtt.so declares")
        st = status(d)["broker"]
        eq((st["connected"], st["port"], st["client_id"], st["host"]),
           (False, port, "linlid", "127.0.0.1"), "not connected; the defaults")
        d.ok("devices", "add", "sm-1", "smoke", "mqtt", "smoke-001")
        out = d.cli("devices", "command", "sm-1", "reset")
        check(out[0] == 1, f"a command with no broker fails at once: {out}")


if __name__ == "__main__":
    sys.exit(main(globals()))
