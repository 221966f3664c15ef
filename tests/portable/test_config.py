"""config.json validation: each mistake names its field, and no message ever holds the secret."""

import sys

from _support import raises
from kpnthings.config import ConfigError, load_config, unknown_keys, validate

SECRET = "Zq81hLw0PpX4vR9tTnY6uB2eKj7sDc3MfA5g"
WIFI_PW = "correct-horse-battery"
GOOD = {
    "dvnuuid": "0B7F8C3E-5A2D-4C1E-9F6A-2D3E4F5A6B7C",
    "secret": SECRET,
    "url": "http://127.0.0.1:8080/",
    "board": "esp32",
    "wifi_ssid": "home",
    "wifi_password": WIFI_PW,
    "interval_s": 30,
}


class Board:
    HAS_WIFI = True
    PINS = {1, 2, 3, 4}
    OUTPUT_PINS = {1, 2, 3}


class HostBoard:
    HAS_WIFI = False
    PINS = {"LED", 5}


def with_(**changes):
    cfg = dict(GOOD)
    for k, v in changes.items():
        if v is KeyError:
            del cfg[k]
        else:
            cfg[k] = v
    return cfg


def error(cfg, board=None):
    msg = str(raises(ConfigError, validate, cfg, board))
    assert SECRET not in msg, msg
    assert WIFI_PW not in msg, msg
    return msg


def test_good_config_gets_defaults():
    cfg = validate(GOOD)
    assert cfg["dvnuuid"] == "0b7f8c3e-5a2d-4c1e-9f6a-2d3e4f5a6b7c"  # lowercased
    assert cfg["url"] == "http://127.0.0.1:8080"  # trailing slash dropped
    assert cfg["cycles"] is None
    assert cfg["timeout_s"] == 5
    assert cfg["tls_insecure"] is False
    assert cfg["ca_file"] is None
    assert cfg["log_level"] == "info"
    assert cfg["actuators"] is None
    assert "interval_s" in cfg and cfg["interval_s"] == 30
    assert GOOD["dvnuuid"] == "0B7F8C3E-5A2D-4C1E-9F6A-2D3E4F5A6B7C"  # the input is not changed


def test_unix_board_needs_no_wifi():
    cfg = with_(board="unix", wifi_ssid=KeyError, wifi_password=KeyError)
    assert validate(cfg, HostBoard)["wifi_ssid"] == ""
    assert validate(cfg)["board"] == "unix"


def test_each_bad_field_is_named():
    cases = [
        ("dvnuuid", with_(dvnuuid=KeyError)),
        ("dvnuuid", with_(dvnuuid="not-a-uuid")),
        ("dvnuuid", with_(dvnuuid=12)),
        ("secret", with_(secret=KeyError)),
        ("secret", with_(secret="short")),
        ("secret", with_(secret=SECRET + "!")),
        ("secret", with_(secret=None)),
        ("board", with_(board=KeyError)),
        ("board", with_(board="ESP 32")),
        ("board", with_(board=3)),
        ("url", with_(url="ftp://example.com")),
        ("url", with_(url="https://")),
        ("url", with_(url=None)),
        ("wifi_ssid", with_(wifi_ssid=KeyError)),
        ("wifi_ssid", with_(wifi_ssid="x" * 33)),
        ("wifi_password", with_(wifi_password="short")),
        ("wifi_password", with_(wifi_password=12345678)),
        ("interval_s", with_(interval_s=0)),
        ("interval_s", with_(interval_s=1.5)),
        ("interval_s", with_(interval_s="60")),
        ("interval_s", with_(interval_s=True)),
        ("cycles", with_(cycles=0)),
        ("cycles", with_(cycles="3")),
        ("timeout_s", with_(timeout_s=0)),
        ("timeout_s", with_(timeout_s=8)),
        ("timeout_s", with_(timeout_s=float("nan"))),
        ("ca_file", with_(ca_file="")),
        ("ca_file", with_(ca_file=5)),
        ("tls_insecure", with_(tls_insecure="yes")),
        ("log_level", with_(log_level="loud")),
        ("transport", with_(transport="carrier-pigeon")),
        ("actuators", with_(actuators=[1])),
        ("actuators.led.pin", with_(actuators={"led": {"type": "digital", "pin": 4}})),
        ("actuators.led.type", with_(actuators={"led": {"type": "servo", "pin": 2}})),
    ]
    for field, cfg in cases:
        msg = error(cfg, Board)
        assert msg.startswith(field + ":") or msg.startswith(field + " "), (field, msg)


def test_secret_never_in_message_even_when_misplaced():
    # A user pastes the secret into the wrong field: the message must still not show it.
    msg = error(with_(url="ftp://" + SECRET))
    assert msg.startswith("url:")
    msg = error(with_(secret=SECRET + "-x"))
    assert msg.startswith("secret:") and "character 37" in msg


def test_actuators_are_normalised_against_the_board():
    cfg = validate(with_(actuators={"led": {"type": "digital", "pin": 2}}), Board)
    assert cfg["actuators"] == {"led": {"type": "digital", "pin": 2, "active_low": False}}


def test_non_object_config_refused():
    assert error([1, 2]).startswith("config:")


def test_unknown_keys_are_listed_not_refused():
    cfg = with_(intervall_s=5, _comment="hi", sensors=None, mqtt_host="h", outbox_dir="/q")
    assert validate(cfg)["intervall_s"] == 5
    assert unknown_keys(cfg) == ["intervall_s"]


def test_load_config_errors():
    assert "cannot read" in str(raises(ConfigError, load_config, "/nonexistent/config.json"))


class FakeMqtt:
    calls = []

    @staticmethod
    def validate_config(cfg):
        FakeMqtt.calls.append(cfg["transport"])
        if "mqtt_host" not in cfg:
            raise ValueError("mqtt_host: missing (required for transport mqtt); secret " + SECRET)


def test_extension_hook_is_called_and_scrubbed():
    saved = sys.modules.get("kpnthings.mqtt")
    sys.modules["kpnthings.mqtt"] = FakeMqtt
    try:
        msg = error(with_(transport="mqtt"))
        assert msg.startswith("mqtt_host:"), msg
        assert "***" in msg
        assert validate(with_(transport="mqtt", mqtt_host="h"))["mqtt_host"] == "h"
        assert FakeMqtt.calls == ["mqtt", "mqtt"]
    finally:
        if saved is None:
            del sys.modules["kpnthings.mqtt"]
        else:
            sys.modules["kpnthings.mqtt"] = saved


class SensorBoard:
    HAS_WIFI = False
    PINS = {1, 2, "LED"}
    ACTUATORS = {"led": {"type": "digital", "pin": 2}}


def test_sensors_hook_checks_entries_against_board_and_actuators():
    base = with_(board="unix")
    ok = validate(with_(board="unix", sensors=[{"type": "dht22", "pin": 1}]), SensorBoard)
    assert ok["sensors"][0]["names"] == ["temperature", "humidity"]
    assert "sensors[0]" in error(dict(base, sensors=[{"type": "dht22", "pin": 2}]), SensorBoard)
    assert "sensors[0]" in error(dict(base, sensors=[{"type": "nope", "pin": 1}]), SensorBoard)
    clash = [{"type": "digital", "pin": 1, "name": "led"}]
    assert "already used by an actuator" in error(dict(base, sensors=clash), SensorBoard)
