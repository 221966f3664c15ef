"""The firmware boots from exactly the module set a deploy plan copies, and nothing else: for
every example config, https, MQTT (without a broker and against mosquitto, also over TLS), and
with the deployed CA files verifying a server that switched roots."""

import json
import os
import shutil
import ssl
import subprocess

import pytest
from _deploy_support import MICROPYTHON, ROOT, _assert_booted_clean, _free_port, _module_dests

from kpnthings_tools import demo, deploy, emulator, modules, provision

# -- the firmware boots from exactly the set a plan copies ----------------------------------------


def _lay_out(plan, folder):
    """The board's filesystem after the plan's .mpy way: every file at its destination."""
    for item in plan.items:
        target = folder / item.dest
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(item.src, target)
    return folder


def _boot(folder, timeout=60):
    """firmware main.py from the laid-out folder: the library comes from folder/lib and nowhere
    else (only the fake machine/network/sensor buses and the port's frozen modules beside it)."""
    env = {k: v for k, v in os.environ.items() if k not in ("KPN_CONFIG", "MICROPYPATH")}
    env["MICROPYPATH"] = "%s:%s:.frozen" % (ROOT / "tests" / "fakes", folder / "lib")
    return subprocess.run(
        [MICROPYTHON, "main.py"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _plan_for(tmp_path, config):
    cfg = tmp_path / "device.json"
    cfg.write_text(json.dumps(config))
    return deploy.make_plan(
        "unix", cfg, dry_run=True, romfs="no", build_dir=tmp_path / "build", resume=True
    )


EXAMPLES = sorted((ROOT / "examples").glob("*.json"))


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_config_boots_from_its_module_set(tmp_path, example):
    """The example's keys merged into the demo's HTTP config for the unix board (as `make demo
    DEMO_CONFIG=...`), deployed as the plan says, run against the local emulator."""
    if not MICROPYTHON:
        pytest.skip("micropython (unix port) not found in the venv")
    extra = json.loads(example.read_text())
    ident = provision.new_identity("example")
    emu = emulator.Emulator(":memory:", [(ident.dvnuuid, ident.secret)], log=lambda line: None)
    server = emu.serve("127.0.0.1", 0)
    try:
        config = demo.demo_config(ident.dvnuuid, ident.secret, server.url, 2, 1, extra)
        plan = _plan_for(tmp_path, config)
        assert [i.dest for i in plan.library_items()] == _module_dests(config)
        run = _boot(_lay_out(plan, tmp_path / "board"))
        _assert_booted_clean(run, 2)
        messages = emu.messages(ident.dvnuuid)
        assert [m["outcome"] for m in messages] == ["accepted", "accepted"], run.stdout
        # Every sensor the example names was read through its driver from the deployed set.
        bodies = " ".join(m["body"] for m in messages)
        for entry in extra.get("sensors", ()):
            if "name" in entry:
                assert '"%s"' % entry["name"] in bodies, (entry, bodies)
        assert "sensorErrors" not in bodies, run.stdout
    finally:
        server.shutdown()
    assert ident.secret not in run.stdout + run.stderr


def test_the_https_set_is_the_http_set_that_boots():
    """The TLS code lives in the same modules as plain HTTP, so the HTTP boots above cover the
    HTTPS set; the ESP32 and Pico W sets differ from the unix one only by the board's imports."""
    ident = provision.new_identity("x")
    https = provision.build_config(ident, board="unix")
    http = dict(https, url="http://127.0.0.1:1", ca_file=None)
    assert https["url"].startswith("https://")
    assert dict(modules.module_set(https)).keys() == dict(modules.module_set(http)).keys()


def _mqtt_config(tmp_path, broker_port, user="u", password="p"):
    ident = provision.new_identity("mqtt")
    return ident, {
        "dvnuuid": ident.dvnuuid,
        "secret": ident.secret,
        "board": "unix",
        "interval_s": 1,
        "cycles": 2,
        "timeout_s": 2,
        "transport": "mqtt",
        "mqtt_host": "127.0.0.1",
        "mqtt_port": broker_port,
        "mqtt_tls": False,
        "mqtt_username": user,
        "mqtt_password": password,
        "mqtt_uplink_topic": "kpn/{dvnuuid}/up",
        "mqtt_downlink_topic": "kpn/{dvnuuid}/down",
    }


def test_an_mqtt_config_boots_from_its_module_set_without_a_broker(tmp_path):
    """Nothing listens on the port: the firmware boots, tries to connect, keeps its readings in
    the outbox and ends cleanly after its cycles, all from the MQTT module set."""
    if not MICROPYTHON:
        pytest.skip("micropython (unix port) not found in the venv")
    ident, config = _mqtt_config(tmp_path, _free_port())
    plan = _plan_for(tmp_path, config)
    assert any(i.dest == "lib/kpnthings/mqtt.mpy" for i in plan.items)
    run = _boot(_lay_out(plan, tmp_path / "board"))
    _assert_booted_clean(run, 2)
    assert "mqtt 127.0.0.1:%d" % config["mqtt_port"] in run.stdout
    assert "retry" in run.stdout and "accepted" not in run.stdout, run.stdout
    assert list((tmp_path / "board" / "outbox").iterdir()), "readings were not kept"
    assert ident.secret not in run.stdout + run.stderr


def test_an_mqtt_config_boots_from_its_module_set_against_mosquitto(tmp_path):
    from mqtt_broker import Broker, mosquitto_path

    if not MICROPYTHON:
        pytest.skip("micropython (unix port) not found in the venv")
    if mosquitto_path() is None or shutil.which("mosquitto_passwd") is None:
        pytest.skip("needs Debian's mosquitto package; the broker-less MQTT boot above still ran")
    folder = tmp_path / "broker"
    folder.mkdir()
    broker = Broker(folder).start()
    try:
        ident, config = _mqtt_config(tmp_path, broker.port, broker.user, broker.password)
        run = _boot(_lay_out(_plan_for(tmp_path, config), tmp_path / "board"))
    finally:
        broker.close()
    _assert_booted_clean(run, 2)
    assert run.stdout.count("-> accepted") == 2, run.stdout
    assert ident.secret not in run.stdout + run.stderr


def test_the_deployed_ca_files_verify_a_server_that_switched_roots(tmp_path):
    """ca_file holds the root the server used (A), ca_files the one it switched to (B): the
    board laid out from the plan verifies the server over HTTPS with B (issue 19)."""
    from kpnthings_tools.bench import pki

    if not MICROPYTHON:
        pytest.skip("micropython (unix port) not found in the venv")
    chains = pki.make_chains(tmp_path / "pki")
    shutil.copy(chains["rsa"].ca_der, tmp_path / "ca.der")
    shutil.copy(chains["ec"].ca_der, tmp_path / "ca-next.der")
    ident = provision.new_identity("next-root")
    emu = emulator.Emulator(":memory:", [(ident.dvnuuid, ident.secret)], log=lambda line: None)
    server = emu.serve(tls_cert=str(chains["ec"].cert), tls_key=str(chains["ec"].key))
    try:
        config = demo.demo_config(ident.dvnuuid, ident.secret, server.url, 2, 1)
        config.update(ca_file="ca.der", ca_files=["ca-next.der"])
        plan = _plan_for(tmp_path, config)
        assert [i.dest for i in plan.items if i.kind == "ca"] == ["ca.der", "ca-next.der"]
        run = _boot(_lay_out(plan, tmp_path / "board"))
        _assert_booted_clean(run, 2)
        assert [m["outcome"] for m in emu.messages(ident.dvnuuid)] == ["accepted"] * 2
    finally:
        server.shutdown()


def test_an_mqtt_tls_config_trusts_its_ca_files_against_mosquitto(tmp_path):
    """The broker's CA in ca_files, an unrelated root in ca_file: MQTT over TLS gets both."""
    import trustme
    from mqtt_broker import Broker, mosquitto_path

    if not MICROPYTHON:
        pytest.skip("micropython (unix port) not found in the venv")
    if mosquitto_path() is None or shutil.which("mosquitto_passwd") is None:
        pytest.skip("needs Debian's mosquitto package")
    folder = tmp_path / "broker"
    folder.mkdir()
    broker = Broker(folder).start()
    try:
        ident, config = _mqtt_config(tmp_path, broker.tls_port, broker.user, broker.password)
        other = ssl.PEM_cert_to_DER_cert(trustme.CA().cert_pem.bytes().decode())
        (tmp_path / "ca.der").write_bytes(other)
        shutil.copy(broker.ca_der_path, tmp_path / "broker-ca.der")
        config.update(mqtt_tls=True, ca_file="ca.der", ca_files=["broker-ca.der"])
        run = _boot(_lay_out(_plan_for(tmp_path, config), tmp_path / "board"))
    finally:
        broker.close()
    _assert_booted_clean(run, 2)
    assert run.stdout.count("bytes -> accepted") == 2, run.stdout
    assert ident.secret not in run.stdout + run.stderr
