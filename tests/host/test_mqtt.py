"""The MQTT uplink against a real Mosquitto broker on 127.0.0.1, under CPython and MicroPython.

Each test starts its own broker (tests/host/mqtt_broker.py) and runs tests/host/mqtt_driver.py in
a subprocess, on CPython (PYTHONPATH=lib) or on the MicroPython unix port (MICROPYPATH=lib:.frozen),
so the very same library code meets the broker on both. A paho-mqtt observer stands beside the
device: it sees what arrived and publishes downlinks.
"""

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from mqtt_broker import PASSWORD, Broker, Observer, mosquitto_path

from kpnthings import auth

ROOT = Path(__file__).resolve().parents[2]
DRIVER = str(Path(__file__).resolve().parent / "mqtt_driver.py")
MICROPYTHON = str(Path(sys.executable).parent / "micropython")
UUID = "5e3a0f7c-1b2d-4c6e-9f80-1234567890ab"
SECRET = "Zq8TnV3kLp2RwX9yHb4mJc7dFg5sAe6u"
RUNTIMES = ("cpython", "micropython")
BN = b'[{"bn":"urn:dev:DVNUUID:%s:",' % UUID.encode()

pytestmark = pytest.mark.skipif(
    mosquitto_path() is None or shutil.which("mosquitto_passwd") is None,
    reason="needs Debian's mosquitto package (apt-get install -y mosquitto)",
)


@pytest.fixture
def broker(tmp_path):
    folder = tmp_path / "broker"
    folder.mkdir()
    b = Broker(folder).start()
    yield b
    b.close()


@pytest.fixture
def observer(broker):
    o = Observer(broker, "kpn/#")
    yield o
    o.close()


def device_cfg(broker, tls=False, password=PASSWORD, **extra):
    cfg = {
        "dvnuuid": UUID,
        "secret": SECRET,
        "timeout_s": 2,
        "mqtt_host": "127.0.0.1",
        "mqtt_port": broker.tls_port if tls else broker.port,
        "mqtt_tls": tls,
        "mqtt_username": broker.user,
        "mqtt_password": password,
        "mqtt_uplink_topic": "kpn/{dvnuuid}/up",
        "mqtt_downlink_topic": "kpn/{dvnuuid}/down",
        "mqtt_keepalive_s": 30,
    }
    cfg.update(extra)
    return cfg


class Driver:
    """The driver script in a subprocess; its JSON lines arrive on a queue."""

    def __init__(self, runtime, spec, tmp_path):
        path = tmp_path / ("spec-%s.json" % runtime)
        path.write_text(json.dumps(spec))
        env = dict(os.environ)
        if runtime == "cpython":
            cmd = [sys.executable, DRIVER, str(path)]
            env["PYTHONPATH"] = str(ROOT / "lib")
        else:
            cmd = [MICROPYTHON, DRIVER, str(path)]
            env["MICROPYPATH"] = "lib:.frozen"
        self.p = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines = []
        self.q = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.p.stdout:
            self.lines.append(line)
            self.q.put(line)
        self.q.put(None)

    def event(self, timeout=40):
        try:
            line = self.q.get(timeout=timeout)
        except queue.Empty:
            self.p.kill()
            pytest.fail("driver silent for %ss; stderr:\n%s" % (timeout, self.p.stderr.read()))
        if line is None:
            self.p.wait(10)
            pytest.fail(
                "driver ended (rc %s); stderr:\n%s" % (self.p.returncode, self.p.stderr.read())
            )
        return json.loads(line)

    def go(self):
        self.p.stdin.write("go\n")
        self.p.stdin.flush()

    def finish(self):
        self.p.stdin.close()
        rc = self.p.wait(30)
        err = self.p.stderr.read()
        assert rc == 0, err
        return "".join(self.lines) + err

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(10)


@pytest.fixture
def run_driver(tmp_path):
    started = []

    def start(runtime, spec):
        d = Driver(runtime, spec, tmp_path)
        started.append(d)
        return d

    yield start
    for d in started:
        d.close()


def _values(payloads):
    return [json.loads(p)[0]["v"] for p in payloads]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_publish_then_downlink(runtime, broker, observer, run_driver, tmp_path):
    d = run_driver(runtime, {"scenario": "publish_downlink", "cfg": device_cfg(broker)})
    first = d.event()
    assert first["outcome"] == "accepted" and first["downlink"] == [] and first["status"] is None
    assert observer.wait_for(lambda ps: 1 in _values(ps))
    assert observer.messages[0][0] == "kpn/%s/up" % UUID
    # The payload is the very pack the device built: compact SenML, byte for byte.
    assert (
        observer.payloads()[0]
        == b'[{"bn":"urn:dev:DVNUUID:%s:","n":"counter","v":1}]' % UUID.encode()
    )

    observer.publish(
        "kpn/%s/down" % UUID, b'[{"bn":"urn:dev:DVNUUID:%s:","n":"led","vb":true}]' % UUID.encode()
    )
    d.go()
    second = d.event()
    assert second["outcome"] == "accepted"
    assert second["downlink"] == [[["n", "urn:dev:DVNUUID:%s:led" % UUID], ["vb", True]]], second

    observer.publish(
        "kpn/%s/down" % UUID, b'[{"bn":"urn:dev:DVNUUID:%s:","n":"pwm","v":0.5}]' % UUID.encode()
    )
    d.go()
    polled = d.event()
    assert polled["downlink"] == [[["n", "urn:dev:DVNUUID:%s:pwm" % UUID], ["v", 0.5]]], polled
    d.finish()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_broker_killed_mid_stream_loses_nothing(runtime, broker, observer, run_driver, tmp_path):
    n = 40
    time.sleep(1.5)  # the broker autosaves every second: the observer's session is on disk now
    spec = {
        "scenario": "stream",
        "cfg": device_cfg(broker),
        "n": n,
        "outbox": str(tmp_path / ("outbox-" + runtime)),
        "pace_ms": 50,
    }
    d = run_driver(runtime, spec)
    acked = 0
    while acked < 8:
        if d.event()["event"] == "acked":
            acked += 1
    broker.kill()  # SIGKILL, mid-stream
    time.sleep(1.0)
    broker.start()
    events = []
    while True:
        ev = d.event(timeout=90)
        events.append(ev)
        if ev["event"] == "done":
            break
    done = events[-1]
    assert done["acked"] == list(range(n))  # every reading, in order, acked once
    assert done["queued"] == 0
    assert done["retries"] >= 1, "the outage was never noticed"
    assert done["connects"] >= 2, "the device never reconnected"
    assert any(ev["event"] == "retry" and ev["queued"] >= 1 for ev in events)
    # Every reading reached the other side (duplicates allowed: at-least-once).
    assert observer.wait_for(lambda ps: set(_values(ps)) >= set(range(n)), timeout=20), sorted(
        set(_values(observer.payloads()))
    )
    d.finish()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_stalled_broker_deadlines_fire(runtime, broker, run_driver, tmp_path):
    cfg = device_cfg(broker, timeout_s=1.5, mqtt_keepalive_s=2)
    d = run_driver(runtime, {"scenario": "stalled", "cfg": cfg})
    assert d.event()["outcome"] == "accepted"

    broker.pause()  # SIGSTOP: TCP still accepted by the kernel, but nothing ever answers
    d.go()
    r = d.event()
    assert r["outcome"] == "retry"
    assert "PUBACK" in r["error"] or "timed out" in r["error"], r
    assert r["connected"] is False  # a link in an unknown state is not reused

    broker.resume()
    d.go()
    assert d.event() == {"event": "reconnected", "connected": True}

    broker.pause()  # now only keepalive pings are in flight: the half-open link is found
    d.go()
    h = d.event()
    assert h["error"] and h["error"].startswith("MQTTTimeout") and "half-open" in h["error"], h
    assert h["connected"] is False
    broker.resume()
    d.finish()


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_connect_to_stalled_broker_times_out(runtime, tls, broker, run_driver, tmp_path):
    broker.pause()  # the kernel still completes the TCP handshake; TLS and CONNACK never come
    spec = {
        "scenario": "send_once",
        "cfg": device_cfg(broker, tls=tls, timeout_s=1.5),
        "ca": broker.ca_der_path,
        "outbox": str(tmp_path / "outbox"),
    }
    d = run_driver(runtime, spec)
    r = d.event()
    assert r["outcome"] == "retry", r
    assert "timed out" in r["error"], r
    if not tls:
        assert "CONNACK" in r["error"], r
    assert r["queued"] == 1
    broker.resume()
    d.finish()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_wrong_password_clear_error_and_data_kept(runtime, broker, observer, run_driver, tmp_path):
    wrong = "wrong-password-Xy7"
    spec = {
        "scenario": "send_once",
        "cfg": device_cfg(broker, password=wrong),
        "outbox": str(tmp_path / "outbox"),
    }
    d = run_driver(runtime, spec)
    r = d.event()
    assert r["outcome"] == "unauthorized", r
    assert "credentials" in r["error"] and ("CONNACK 5" in r["error"] or "CONNACK 4" in r["error"])
    assert r["queued"] == 1  # the reading stays in the outbox
    text = d.finish()
    assert wrong not in text
    time.sleep(0.3)
    assert observer.payloads() == []


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_tls_with_test_ca(runtime, broker, observer, run_driver, tmp_path):
    spec = {
        "scenario": "send_once",
        "cfg": device_cfg(broker, tls=True),
        "ca": broker.ca_der_path,
        "outbox": str(tmp_path / "outbox-ok"),
    }
    d = run_driver(runtime, spec)
    r = d.event()
    assert r["outcome"] == "accepted", r
    assert r["queued"] == 0
    d.finish()
    assert observer.wait_for(lambda ps: 7 in _values(ps))


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_tls_wrong_ca_refused(runtime, broker, observer, run_driver, tmp_path):
    import ssl

    import trustme

    other = tmp_path / "other-ca.der"
    other.write_bytes(ssl.PEM_cert_to_DER_cert(trustme.CA().cert_pem.bytes().decode()))
    spec = {
        "scenario": "send_once",
        "cfg": device_cfg(broker, tls=True),
        "ca": str(other),
        "outbox": str(tmp_path / "outbox-bad"),
    }
    d = run_driver(runtime, spec)
    r = d.event()
    assert r["outcome"] == "retry", r
    assert "TLS" in r["error"] or "certificate" in r["error"].lower(), r
    assert r["queued"] == 1
    d.finish()
    time.sleep(0.3)
    assert observer.payloads() == []


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_oversized_retained_downlink_dropped_every_connection(
    runtime, broker, observer, run_driver
):
    # Issue 17 #13: Mosquitto sends a retained message again after every SUBACK; one over the
    # client's 2 KB max_packet used to close each connection, so no uplink ever got through.
    down = "kpn/%s/down" % UUID
    observer.publish(down, b"[" + b"Q" * 5000 + b"]", retain=True)
    d = run_driver(runtime, {"scenario": "oversized", "cfg": device_cfg(broker)})
    events = []
    while len([e for e in events if e["event"] == "result"]) < 2:
        events.append(d.event())
    logs = [e["line"] for e in events if e["event"] == "log"]
    results = [e for e in events if e["event"] == "result"]
    assert [r["outcome"] for r in results] == ["accepted", "accepted"], results
    assert results[0]["oversized"] == 1 and results[1]["oversized"] == 2
    assert results[1]["connects"] == 2
    assert len(logs) == 2 and "5051-byte PUBLISH (topic 45 bytes)" in logs[0], logs
    up = "kpn/%s/up" % UUID
    assert observer.wait_for(
        lambda _: {1, 2} <= set(_values([p for t, p in list(observer.messages) if t == up]))
    )
    observer.publish(down, BN + b'"n":"led","vb":true}]')
    d.go()
    polled = d.event()
    assert polled["downlink"] == [[["n", "urn:dev:DVNUUID:%s:led" % UUID], ["vb", True]]], polled
    assert "QQQ" not in d.finish()


@pytest.mark.parametrize("mode", ("topic", "wrapper"))
def test_token_as_configured(mode, broker, observer, run_driver, tmp_path):
    cfg = device_cfg(broker, mqtt_token=True, mqtt_token_in=mode)
    if mode == "topic":
        cfg["mqtt_uplink_topic"] = "kpn/{dvnuuid}/up/{token}"
    spec = {"scenario": "send_once", "cfg": cfg, "outbox": str(tmp_path / "outbox")}
    d = run_driver("micropython", spec)
    assert d.event()["outcome"] == "accepted"
    d.finish()
    assert observer.wait_for(lambda ps: len(ps) == 1)
    topic, payload = observer.messages[0]
    body = b'[{"bn":"urn:dev:DVNUUID:%s:","n":"counter","v":7}]' % UUID.encode()
    token = auth.message_token(body, SECRET)
    if mode == "topic":
        assert topic == "kpn/%s/up/%s" % (UUID, token)
        assert payload == body
    else:
        assert json.loads(payload) == {"token": token, "body": json.loads(body)}
        assert payload == b'{"token":"%s","body":%s}' % (token.encode(), body)
