"""firmware/main.py with "transport": "mqtt" on the MicroPython unix port, against Mosquitto.

The whole device over MQTT: readings go through the outbox as the same signed SenML packs, a
downlink on the subscribed topic passes the same allow-list as over HTTPS (one good command, one
refused), switches the fake pin, and the next uplink echoes the actuator's state and answers the
downlink.
"""

import json
import subprocess

import pytest
from mqtt_broker import Broker, Observer
from test_mqtt import pytestmark  # noqa: F401 - the same mosquitto skip applies

from kpnthings import auth
from kpnthings_tools import demo, provision

TIMEOUT_S = 60


@pytest.fixture
def broker(tmp_path):
    folder = tmp_path / "broker"
    folder.mkdir()
    b = Broker(folder).start()
    yield b
    b.close()


@pytest.mark.parametrize("runtime", ["micropython-src", "mpy-armv6m"])
def test_firmware_over_mqtt_downlink_and_state_echo(runtime, broker, tmp_path, request):
    dvnuuid = provision.new_dvnuuid()
    secret = provision.new_secret()
    bn = auth.base_name(dvnuuid)
    observer = Observer(broker, "kpn/%s/up" % dvnuuid)
    try:
        # Retained, so the firmware finds it as soon as it subscribes.
        down = [{"bn": bn, "n": "led", "vb": True}, {"n": "door", "vb": True}]
        observer.publish("kpn/%s/down" % dvnuuid, json.dumps(down).encode(), retain=True)
        cfg = {
            "dvnuuid": dvnuuid,
            "secret": secret,
            "board": "unix",
            "interval_s": 1,
            "cycles": 3,
            "transport": "mqtt",
            "mqtt_host": "127.0.0.1",
            "mqtt_port": broker.port,
            "mqtt_tls": False,
            "mqtt_username": broker.user,
            "mqtt_password": broker.password,
            "mqtt_uplink_topic": "kpn/{dvnuuid}/up",
            "mqtt_downlink_topic": "kpn/{dvnuuid}/down",
        }
        path = tmp_path / "config.json"
        path.write_text(json.dumps(cfg))
        if runtime.startswith("mpy-"):
            request.getfixturevalue("mpy_built")
        env = dict(request.getfixturevalue("mp_env")(runtime), KPN_CONFIG=str(path))
        proc = subprocess.run(
            [demo.micropython_binary(), str(demo.FIRMWARE)],
            cwd=str(tmp_path),
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
        out = proc.stdout
        assert proc.returncode == 0, out + proc.stderr
        assert out.count("-> accepted") == 3, out
        assert "[kpn] downlink led = True applied" in out
        assert "[kpn] downlink door refused" in out
        assert out.index("uplink 1:") < out.index("[pin] LED -> 1") < out.index("uplink 2:")
        assert secret not in out + proc.stderr
        assert broker.password not in out + proc.stderr
        assert observer.wait_for(lambda ps: len(ps) >= 3)
        packs = [json.loads(p) for p in observer.payloads()]
        assert all(p[0]["bn"] == bn for p in packs)
        names = [{r["n"]: r.get("vb") for r in p} for p in packs]
        assert "led" not in names[0]
        assert all(n.get("led") is True for n in names[1:]), names
        assert all("door" not in n for n in names)
        # The next publish answers the downlink (issue 19), and only that one.
        said = [next((r["vs"] for r in p if r.get("n") == "downlink"), None) for p in packs]
        assert said[:3] == [None, "led=applied; door=refused: unknown actuator", None], said
    finally:
        observer.c.publish("kpn/%s/down" % dvnuuid, b"", qos=1, retain=True)  # clear it
        observer.close()
