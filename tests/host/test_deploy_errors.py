"""`kpnthings deploy`: every user error, clear and before anything is copied (a wrong board or
port, a bad config named by its field and never with the secret, the ESP32's pin rules, the CA
files an https or MQTT-over-TLS config needs)."""

import json
import shutil
import ssl

import pytest
from _deploy_support import _cli, _error, _write_config

from kpnthings_tools import deploy

# -- clear errors ------------------------------------------------------------------------------


@pytest.fixture
def esp32_config(tmp_path):
    path = tmp_path / "device.json"
    config = _write_config(path, "esp32")  # https, ca_file ca.der: the secure default
    return path, config


def test_wrong_board(tmp_path, esp32_config, ca_der):
    msg = _error(tmp_path, board="esp8266", config_path=esp32_config[0], port="/dev/x", ca=ca_der)
    assert "esp8266" in msg and "esp32" in msg and "pico_w" in msg


def test_config_for_another_board(tmp_path, esp32_config, ca_der):
    msg = _error(tmp_path, board="pico_w", config_path=esp32_config[0], dry_run=True, ca=ca_der)
    assert '"board": "esp32"' in msg and "pico_w" in msg


def test_missing_port(tmp_path, esp32_config, ca_der):
    msg = _error(tmp_path, config_path=esp32_config[0], ca=ca_der)
    assert "--port is required" in msg


def test_port_that_does_not_exist(tmp_path, esp32_config, ca_der):
    msg = _error(tmp_path, config_path=esp32_config[0], port="/dev/ttyNOPE42", ca=ca_der)
    assert "/dev/ttyNOPE42 does not exist" in msg


def test_ampy_cannot_use_a_socket(tmp_path, esp32_config, ca_der):
    msg = _error(
        tmp_path, config_path=esp32_config[0], port="socket://127.0.0.1:9", ca=ca_der, tool="ampy"
    )
    assert "ampy" in msg and "--tool mpremote" in msg


def test_missing_config(tmp_path, ca_der):
    msg = _error(tmp_path, config_path=tmp_path / "nope.json", dry_run=True, ca=ca_der)
    assert "nope.json not found" in msg


def test_bad_config_names_the_field_and_never_the_secret(tmp_path, ca_der):
    cfg = tmp_path / "device.json"
    config = _write_config(cfg, "esp32")
    config["interval_s"] = "often"
    cfg.write_text(json.dumps(config))
    msg = _error(tmp_path, config_path=cfg, dry_run=True, ca=ca_der)
    assert "interval_s" in msg and config["secret"] not in msg
    config["interval_s"] = 60
    config["secret"] = config["secret"][:20] + "!" + config["secret"][21:]
    cfg.write_text(json.dumps(config))
    msg = _error(tmp_path, config_path=cfg, dry_run=True, ca=ca_der)
    assert "secret" in msg and config["secret"] not in msg
    cfg.write_text('{"dvnuuid": ')
    assert "JSON" in _error(tmp_path, config_path=cfg, dry_run=True, ca=ca_der)


def test_esp32_pin_rules_refuse_or_warn_before_anything_is_copied(tmp_path, ca_der, capsys):
    # Issue 17 #10: deploy runs the full check with the board's pin rules (boards/esp32_pins.py).
    cfg = tmp_path / "device.json"
    config = _write_config(cfg, "esp32")
    config["sensors"] = [{"type": "counter", "pin": 36}]
    cfg.write_text(json.dumps(config))
    msg = _error(tmp_path, config_path=cfg, dry_run=True, ca=ca_der)
    assert 'sensors[0] (counter): field "pin": pin 36 has no pull resistors' in msg, msg
    config["sensors"] = [{"type": "digital", "pin": 16}]  # free on WROOM, PSRAM on WROVER
    cfg.write_text(json.dumps(config))
    deploy.make_plan("esp32", cfg, dry_run=True, ca=ca_der, build_dir=tmp_path / "b")
    err = capsys.readouterr().err
    assert err.startswith("kpnthings deploy: warning: config %s: sensors[0] (digital)" % cfg)
    assert "pin 16 may not be free" in err and "WROVER" in err


def test_https_without_ca_is_refused_unless_insecure(tmp_path, esp32_config, ca_der):
    msg = _error(tmp_path, config_path=esp32_config[0], dry_run=True)
    assert "--ca" in msg and "tls_insecure" in msg
    insecure = tmp_path / "insecure.json"
    _write_config(insecure, "esp32", tls_insecure=True)
    plan = deploy.make_plan("esp32", insecure, dry_run=True, build_dir=tmp_path / "b")
    assert "ca.der" not in [i.dest for i in plan.items]


def test_ca_beside_the_config_is_found(tmp_path, esp32_config, ca_der):
    shutil.copy(ca_der, esp32_config[0].parent / "ca.der")
    plan = deploy.make_plan("esp32", esp32_config[0], dry_run=True, build_dir=tmp_path / "b")
    assert [i.src for i in plan.items if i.dest == "ca.der"] == [esp32_config[0].parent / "ca.der"]


def test_pem_or_junk_ca_is_refused(tmp_path, esp32_config, ca_der):
    pem = tmp_path / "ca.pem"
    pem.write_text(ssl.DER_cert_to_PEM_cert(ca_der.read_bytes()))
    msg = _error(tmp_path, config_path=esp32_config[0], dry_run=True, ca=pem)
    assert "PEM" in msg and "openssl x509" in msg and "-outform DER" in msg
    junk = tmp_path / "junk.der"
    junk.write_bytes(b"hello")
    assert "not a DER certificate" in _error(
        tmp_path, config_path=esp32_config[0], dry_run=True, ca=junk
    )
    assert "not found" in _error(
        tmp_path, config_path=esp32_config[0], dry_run=True, ca=tmp_path / "none.der"
    )


def test_ca_file_must_point_where_deploy_puts_it(tmp_path, ca_der):
    cfg = tmp_path / "device.json"
    _write_config(cfg, "esp32", ca_file="certs/kpn.der")
    msg = _error(tmp_path, config_path=cfg, dry_run=True, ca=ca_der)
    assert '"ca_file": "ca.der"' in msg


def _ca_files_config(path, board="esp32", **keys):
    """A config from new-device with `keys` set on top (None removes the key)."""
    config = _write_config(path, board)
    for key, value in keys.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    path.write_text(json.dumps(config))
    return config


def test_ca_files_are_copied_beside_the_config(tmp_path, ca_der):
    # The next root, deployed beside the current one before the server switches (issue 19).
    cfg = tmp_path / "device.json"
    _ca_files_config(cfg, ca_files=["ca-next.der"])
    shutil.copy(ca_der, tmp_path / "ca.der")
    shutil.copy(ca_der, tmp_path / "ca-next.der")
    plan = deploy.make_plan(
        "esp32", cfg, port="/dev/ttyUSB0", dry_run=True, build_dir=tmp_path / "b"
    )
    cas = [(i.src, i.dest) for i in plan.items if i.kind == "ca"]
    assert cas == [(tmp_path / "ca.der", "ca.der"), (tmp_path / "ca-next.der", "ca-next.der")]
    [argv] = plan.commands()
    assert argv[-6:] == ["fs", "cp", str(tmp_path / "ca-next.der"), ":ca-next.der", "+", "reset"]
    # ca_files alone is a CA for https: no --ca needed, and none is invented.
    _ca_files_config(cfg, ca_file=None, ca_files=["ca-next.der"])
    plan = deploy.make_plan(
        "esp32", cfg, port="/dev/ttyUSB0", dry_run=True, build_dir=tmp_path / "b"
    )
    assert [i.dest for i in plan.items if i.kind == "ca"] == ["ca-next.der"]


def test_the_brokers_own_ca_is_copied_beside_the_config(tmp_path, ca_der):
    # mqtt_ca_file (the broker's CA, when it is not ca_file's) was never copied: an MQTT config
    # that used it stopped at boot with "mqtt_ca_file: cannot read".
    cfg = tmp_path / "device.json"
    _ca_files_config(
        cfg,
        ca_file=None,
        transport="mqtt",
        mqtt_host="broker.example",
        mqtt_uplink_topic="kpn/{dvnuuid}/up",
        mqtt_ca_file="broker-ca.der",
    )
    shutil.copy(ca_der, tmp_path / "broker-ca.der")
    plan = deploy.make_plan(
        "esp32", cfg, port="/dev/ttyUSB0", dry_run=True, build_dir=tmp_path / "b"
    )
    assert [(i.src, i.dest) for i in plan.items if i.kind == "ca"] == [
        (tmp_path / "broker-ca.der", "broker-ca.der")
    ]
    _ca_files_config(
        cfg,
        ca_file=None,
        transport="mqtt",
        mqtt_host="broker.example",
        mqtt_uplink_topic="kpn/{dvnuuid}/up",
        mqtt_ca_file="certs/broker.der",
    )
    msg = _error(tmp_path, config_path=cfg, dry_run=True)
    assert "mqtt_ca_file" in msg and "ending in .der, without folders" in msg, msg


def test_ca_files_must_be_der_files_beside_the_config(tmp_path, ca_der):
    cfg = tmp_path / "device.json"
    shutil.copy(ca_der, tmp_path / "ca.der")
    for name in ("certs/next.der", "../next.der", "next.pem", ".next.der", "config.json"):
        _ca_files_config(cfg, ca_files=[name])
        msg = _error(tmp_path, config_path=cfg, dry_run=True)
        assert "ca_files" in msg and "ending in .der, without folders" in msg, (name, msg)
    _ca_files_config(cfg, ca_files=["next.der"])
    msg = _error(tmp_path, config_path=cfg, dry_run=True)
    assert "ca_files: CA file %s not found" % (tmp_path / "next.der") in msg
    (tmp_path / "next.der").write_text(ssl.DER_cert_to_PEM_cert(ca_der.read_bytes()))
    msg = _error(tmp_path, config_path=cfg, dry_run=True)
    assert "is PEM" in msg and "-outform DER" in msg
    (tmp_path / "next.der").write_bytes(ca_der.read_bytes()[:-20])  # a download cut short
    assert "is not DER certificates" in _error(tmp_path, config_path=cfg, dry_run=True)
    # --ca goes to ca.der: a ca_files entry of that name would be overwritten.
    _ca_files_config(cfg, ca_files=["ca.der"], ca_file=None, tls_insecure=True)
    msg = _error(tmp_path, config_path=cfg, dry_run=True, ca=ca_der)
    assert "ca_files: ca.der is where ca_file's CA goes" in msg


def test_cli_reports_errors_on_stderr_with_status_2(tmp_path):
    proc = _cli(
        "deploy", "--board", "esp32", "--config", str(tmp_path / "missing.json"), "--dry-run"
    )
    assert proc.returncode == 2
    assert "missing.json not found" in proc.stderr and proc.stdout == ""
