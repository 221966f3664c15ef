"""The full check of config.json on the host (kpnthings_tools.config_check): each mistake names
its field, no message ever holds the secret; what only the host checks (names, unknown fields,
MQTT text, the board's name), the device's name and its previous identities. That what passes
reads the same on the board is test_config_check_alike.py; check_file, `kpnthings check-config`
and the ESP32's pin rules are test_config_check_cli.py."""

import pytest
from _config_support import GOOD, SECRET, error, with_

from kpnthings import config as board_check
from kpnthings.config import ConfigError, load_config, unknown_keys
from kpnthings_tools import actuators_check, mqtt_check
from kpnthings_tools.config_check import validate


class Board:
    HAS_WIFI = True
    PINS = {1, 2, 3, 4}
    OUTPUT_PINS = {1, 2, 3}


class HostBoard:
    HAS_WIFI = False
    PINS = {"LED", 5}


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


def test_ca_files_are_checked_as_the_board_reads_them():
    # The next root beside the current one, before the server switches (issue 19).
    cfg = validate(with_(ca_file="ca.der", ca_files=["ca-next.der"]))
    assert cfg["ca_files"] == ["ca-next.der"]
    assert unknown_keys(with_(ca_files=["ca-next.der"])) == []
    for bad in ("ca-next.der", [], [""], [3]):
        assert error(with_(ca_files=bad)).startswith("ca_files: must be a list of DER")
    assert "twice" in error(with_(ca_file="ca.der", ca_files=["ca.der"]))
    assert "twice" in error(with_(ca_files=["a.der", "a.der"]))
    msg = error(with_(ca_file="ca.der", ca_files=["a.der", "b.der", "c.der"]))
    assert msg.startswith("ca_files: at most 3 CA files") and "memory" in msg
    assert validate(with_(ca_files=["a.der", "b.der", "c.der"]))["ca_file"] is None


def test_non_object_config_refused():
    assert error([1, 2]).startswith("config:")


def test_unknown_keys_are_listed_not_refused():
    cfg = with_(intervall_s=5, _comment="hi", sensors=None, mqtt_host="h", outbox_dir="/q")
    assert validate(cfg)["intervall_s"] == 5
    assert unknown_keys(cfg) == ["intervall_s"]


def test_load_config_errors():
    with pytest.raises(ConfigError, match="cannot read"):
        load_config("/nonexistent/config.json")


def test_mqtt_keys_are_checked_in_full():
    msg = error(with_(transport="mqtt", mqtt_password=SECRET))
    assert msg.startswith("mqtt_host:") and "Portal" in msg
    merged = validate(with_(transport="mqtt", mqtt_host="h", mqtt_uplink_topic="up/{dvnuuid}"))
    assert merged["mqtt_uplink_topic"] == "up/" + merged["dvnuuid"]


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


# -- what only the host checks -------------------------------------------------------------------


def test_actuator_names_and_unknown_fields_are_the_hosts():
    def spec_error(spec):
        with pytest.raises(ValueError) as info:
            actuators_check.validate_spec(spec)
        return str(info.value)

    assert "led.freq" in spec_error({"led": {"type": "digital", "pin": 2, "freq": 5}})
    assert "a:b" in spec_error({"a:b": {"type": "digital", "pin": 2}})
    # The board drives them as the host checked them: same normalised spec.
    spec = {"a": {"type": "digital", "pin": 1}, "b": {"type": "pwm", "pin": 3, "max": 1.5}}
    from kpnthings import downlink_spec

    assert actuators_check.validate_spec(spec) == downlink_spec.validate_spec(spec)
    assert "actuators.led.x" in error(
        with_(actuators={"led": {"type": "digital", "pin": 2, "x": 1}})
    )


def test_mqtt_text_is_the_hosts():
    def mqtt_error(**changes):
        cfg = {"dvnuuid": GOOD["dvnuuid"], "mqtt_host": "broker.test", "mqtt_uplink_topic": "up"}
        cfg.update(changes)
        with pytest.raises(ValueError) as info:
            mqtt_check.validate(cfg)
        return str(info.value)

    assert mqtt_error(mqtt_host="mqtts://broker.test").startswith("mqtt_host:")
    assert mqtt_error(mqtt_uplink_topic="kpn/{token}").startswith("mqtt_uplink_topic:")
    assert mqtt_error(mqtt_downlink_topic="down/{token}").startswith("mqtt_downlink_topic:")
    assert mqtt_error(mqtt_client_id="a\nb").startswith("mqtt_client_id:")


def test_board_name_and_retry_order_are_the_hosts():
    assert error(with_(board="ESP 32")).startswith("board:")
    assert error(with_(retry_base_s=60, retry_cap_s=10)).startswith("retry_cap_s:")
    # The board reads both as given: it loads boards.<name> or says there is none.
    assert board_check.validate(with_(board="ESP 32"))["board"] == "ESP 32"


# -- the device's name and its previous identities (issue 19) -----------------------------------


def test_a_device_name_is_checked_as_text_for_people_and_read_alike_on_the_board():
    # Issue 19: `new-device --name` writes "name"; the board carries it unread, the host
    # checks it is a label a dashboard and a CSV can show.
    cfg = validate(with_(name="Kitchen sensor 2"))
    assert cfg["name"] == "Kitchen sensor 2"
    assert unknown_keys(with_(name="x")) == []
    for bad in ("", "x" * 65, "two\nlines", 7, ["a"]):
        assert error(with_(name=bad)).startswith("name: must be"), bad


OLD = "1C8F9D4F-6B3E-4D2F-8A7B-3E4F5A6B7C8D"


OLD_SECRET = "Yw72kQm3NpR8sTz1VbX5cLd9Hf4Gj6Ae0Ku"


def _olds(*entries):
    return with_(previous_identities=list(entries))


def test_previous_identities_are_checked_in_full_and_read_alike_on_the_board():
    # Issue 19: an earlier identity's readings go out under it, over HTTP(S) only.
    old = {"dvnuuid": OLD, "secret": OLD_SECRET}
    cfg = validate(_olds(old))
    assert cfg["previous_identities"] == [{"dvnuuid": OLD.lower(), "secret": OLD_SECRET}]
    assert unknown_keys(_olds(old)) == []
    cases = [
        ([], "must be a list of the identities"),
        ([OLD], "must be a list of the identities"),
        ([old] * 5, "at most 4 identities"),
        ([dict(old, name="x")], "[0]: unknown field 'name'"),
        ([{"dvnuuid": OLD}], "[0]: secret missing"),
        ([{"secret": OLD_SECRET}], "[0]: dvnuuid missing"),
        ([dict(old, secret="short1")], "[0]: secret must be 30-100"),
        ([dict(old, secret=OLD_SECRET + "-")], "[0]: secret may hold only letters and digits"),
        ([dict(old, dvnuuid="nope")], "[0]: dvnuuid must be a UUID"),
        ([dict(old, dvnuuid=GOOD["dvnuuid"].lower())], "[0]: dvnuuid is this config's own"),
        ([old, dict(old, dvnuuid=OLD.lower())], "[1]: dvnuuid is named twice"),
    ]
    for entries, what in cases:
        msg = error(_olds(*entries))
        assert msg.startswith("previous_identities") and what in msg, (what, msg)
        assert OLD_SECRET not in msg, msg
    msg = error(
        dict(
            _olds(old),
            transport="mqtt",
            mqtt_host="broker.example",
            mqtt_uplink_topic="kpn/{dvnuuid}/up",
        )
    )
    assert msg.startswith("previous_identities: only the http transport") and "MQTT" in msg, msg


def test_sleep_is_checked_on_both_sides_and_deep_refused_where_the_rtc_does_not_survive_it():
    from kpnthings_tools.config_check import board_module

    esp32, pico_w = board_module("esp32"), board_module("pico_w")
    for value, kept in (("deep", "deep"), ("light", None), (None, None)):
        cfg = with_(sleep=value) if value else with_()
        host = validate(cfg, esp32)
        assert host.get("sleep") == kept  # kept set for deep only, as the board keeps it
        assert board_check.validate(cfg, esp32)["sleep"] == kept
    assert validate(with_(sleep="deep", send_every_cycles=10), esp32)["send_every_cycles"] == 10
    for bad in ("hibernate", "Deep", "dee", "", True, 1, ["deep"]):
        for check in (validate, board_check.validate):
            with pytest.raises(ConfigError) as e:
                check(with_(sleep=bad), esp32)
            assert str(e.value).startswith("sleep: must be "), (bad, str(e.value))
    # A Pico W's deepsleep() loses the clock and RAM: refused by both, saying why.
    for check in (validate, board_check.validate):
        with pytest.raises(ConfigError) as e:
            check(with_(sleep="deep"), pico_w)
        assert str(e.value).startswith('sleep: must be "light" on this board'), str(e.value)
    assert validate(with_(sleep="light"), pico_w).get("sleep") is None
    assert error(with_(send_every_cycles=5)).startswith("send_every_cycles: only with")
    for bad in (0, 10001, 2.5, "10"):
        with pytest.raises(ConfigError) as e:
            board_check.validate(with_(sleep="deep", send_every_cycles=bad), esp32)
        assert str(e.value).startswith("send_every_cycles: must be a whole number")
    assert unknown_keys(with_(sleep="deep", send_every_cycles=3)) == []


def test_health_every_is_checked_as_the_board_checks_it():
    assert validate(GOOD)["health_every"] == 60
    assert validate(with_(health_every=0))["health_every"] == 0
    for bad in (-1, 2.5, "60", True, 1 << 21):
        with pytest.raises(ConfigError) as e:
            validate(with_(health_every=bad))
        assert str(e.value) == "health_every: must be a whole number from 0 to 1048576"
    with pytest.raises(ConfigError, match="health_every"):
        board_check.validate(with_(health_every=-1))


def test_update_and_deep_sleep_are_refused_together_on_both_sides():
    # An update counts boots for its rollback and polls at boot; every deep-sleep wake is a boot.
    from kpnthings_tools.config_check import board_module

    esp32 = board_module("esp32")
    cfg = with_(sleep="deep", update={"url": "https://updates.example/offer", "key": "k.pub"})
    for check in (validate, board_check.validate):
        with pytest.raises(ConfigError) as e:
            check(cfg, esp32)
        assert str(e.value).startswith('update: must be left out with "sleep": "deep"'), e.value
    light = dict(cfg, sleep="light")
    assert board_check.validate(light, esp32)["update"]
