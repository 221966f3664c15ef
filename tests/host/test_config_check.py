"""The full check of config.json on the host (kpnthings_tools.config_check): each mistake names
its field, no message ever holds the secret, and what passes reads the same on the board."""

import json

import pytest

from kpnthings import config as board_check
from kpnthings.config import ConfigError, load_config, unknown_keys
from kpnthings_tools import actuators_check, config_check, mqtt_check, sensors_check
from kpnthings_tools.config_check import validate

ROOT = config_check.build.repo_root()

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
    with pytest.raises(ConfigError) as info:
        validate(cfg, board)
    msg = str(info.value)
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


# -- the host and the board read a config alike --------------------------------------------------


def _example_configs():
    """Every config in examples/ and the demo's, as a whole config for each board."""
    out = []
    for path in sorted((ROOT / "examples").glob("*.json")):
        extra = json.loads(path.read_text())
        for board in ("esp32", "pico_w", "unix"):
            cfg = dict(GOOD, board=board, url="https://prod.dm.kpnthings.com", ca_file="ca.der")
            cfg.update(_pico_pins(extra) if board == "pico_w" else extra)
            out.append(("%s on %s" % (path.name, board), cfg))
    from kpnthings_tools import demo

    demo_cfg = demo.demo_config(GOOD["dvnuuid"], SECRET, "http://127.0.0.1:1", 3, 1)
    out.append(("demo", demo_cfg))
    mqtt_cfg = dict(demo_cfg, transport="mqtt", mqtt_host="127.0.0.1", mqtt_tls=False)
    mqtt_cfg.update(mqtt_password="pw-" + SECRET[:8], mqtt_uplink_topic="kpn/{dvnuuid}/up")
    out.append(("mqtt", mqtt_cfg))
    return out


def _pico_pins(extra):
    """The sensors example moved onto pins a Pico W has (its ADC is GP26-28)."""
    moved = {4: 15, 13: 16, 21: 4, 22: 5, 34: 26, 35: 27, 26: 10, 27: 11}
    sensors = []
    for entry in extra.get("sensors", []):
        entry = json.loads(json.dumps(entry))
        if "pin" in entry:
            entry["pin"] = moved[entry["pin"]]
        if "i2c" in entry:
            entry["i2c"] = {k: moved[v] for k, v in entry["i2c"].items()}
        sensors.append(entry)
    return dict(extra, sensors=sensors)


@pytest.mark.parametrize(
    ("name", "cfg"), _example_configs(), ids=lambda x: x if isinstance(x, str) else ""
)
def test_every_example_reads_the_same_on_host_and_board(name, cfg):
    board = config_check.board_module(cfg["board"])
    checked = validate(cfg, board)
    assert checked == board_check.validate(cfg, board), name
    # A config deployed as checked (defaults and names filled in) reads the same again.
    assert board_check.validate(checked, board) == checked, name
    assert unknown_keys(cfg) == []


def test_a_disagreement_between_the_checks_is_refused(monkeypatch):
    from kpnthings.sensors import schema

    kinds = dict(schema.KINDS)
    kinds["dht22"] = (("airTemperature", "humidity"), {})
    monkeypatch.setattr(schema, "KINDS", kinds)
    msg = error(with_(board="unix", sensors=[{"type": "dht22", "pin": 4}]))
    assert msg.startswith("sensors:") and "reads this key differently" in msg


# -- check_file and `kpnthings check-config` -----------------------------------------------------


def _write(tmp_path, cfg, name="config.json"):
    path = tmp_path / name
    path.write_text(json.dumps(cfg))
    return path


def test_check_file_checks_pins_against_the_named_board(tmp_path):
    path = _write(tmp_path, with_(sensors=[{"type": "analog", "pin": 25}]))
    with pytest.raises(ConfigError) as info:
        config_check.check_file(path)
    assert "cannot read analog values" in str(info.value)  # esp32: 25 is no ADC1 pin
    path = _write(tmp_path, with_(board="unix", sensors=[{"type": "dht22", "pin": 4}]))
    checked, unknown = config_check.check_file(path)
    assert checked["sensors"][0]["names"] == ["temperature", "humidity"] and unknown == []
    with pytest.raises(ConfigError) as info:
        config_check.check_file(path, board="esp32")
    assert str(info.value) == "board: the config is for unix, not esp32"


def _cli(capsys, *argv):
    from kpnthings_tools import cli

    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_check_config_prints_ok_or_the_field(capsys, tmp_path):
    good = _write(tmp_path, with_(intervall_s=5))
    code, out, err = _cli(capsys, "check-config", str(good))
    assert (code, out) == (0, "ok\n")
    assert "intervall_s" in err  # a warning, not a refusal
    bad = _write(tmp_path, with_(wifi_password="Qx7Wp3z", secret=SECRET[:-1] + "!"), "bad.json")
    code, out, err = _cli(capsys, "check-config", str(bad))
    assert code == 1 and out == ""
    assert err.startswith("kpnthings: config %s: secret:" % bad) and err.count("\n") == 1
    code, out, err = _cli(capsys, "check-config", str(good), "--board", "pico_w")
    assert code == 1 and "board:" in err
    code, out, err = _cli(capsys, "check-config", str(tmp_path / "absent.json"))
    assert code == 1 and "cannot read" in err
    for text in (out, err):
        assert SECRET[:12] not in text and WIFI_PW not in text and "Qx7Wp3z" not in text


def test_demo_and_host_run_name_a_bad_config_before_the_firmware_starts(tmp_path, capfd):
    from kpnthings_tools import demo, emulator, host_run

    typo = {"sensors": [{"type": "dht22", "pin": 4, "pim": 1}]}
    with pytest.raises(demo.DemoError, match='sensors\\[0\\] \\(dht22\\): field "pim"'):
        demo.check_config(demo.demo_config(GOOD["dvnuuid"], SECRET, "http://h", 3, 1, typo))

    emu = emulator.Emulator(":memory:", [(GOOD["dvnuuid"].lower(), SECRET)], log=lambda x: None)
    server = emu.serve("127.0.0.1", 0)
    try:
        # Two sensors named alike: the board would boot it (it trusts the host on names)...
        twice = [{"type": "digital", "pin": 4, "name": "door"}] * 2
        cfg = with_(board="unix", url=server.url, cycles=1, interval_s=1, sensors=twice)
        path = _write(tmp_path, cfg)
        assert host_run.main([str(path)]) == 1
        out = capfd.readouterr().out
        assert out.startswith("config error (%s): sensors[1] (digital): field " % path), out
        assert "uplink" not in out  # the firmware never started
        # ...and does, when asked to skip the host's check.
        assert host_run.main([str(path), "--no-check"]) == 0
        out = capfd.readouterr().out
        assert "config error" not in out and "[kpn] uplink 1:" in out
    finally:
        server.shutdown()
    assert SECRET not in out and WIFI_PW not in out


# -- the two checks never disagree on a config the host accepts -----------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

# Mostly values a driver takes, some it does not: the host must refuse, or agree with the board.
_PINS = st.sampled_from([4, 5, 13, 15, 21, 22, 26, 27, 32, 34, 35, 99, "LED", "", 4.0, True])
_SETTINGS = {
    "rom": [None, "28ff0000000001aa", "28:FF:00:00:00:00:02:BB", "3aff0000000001aa", "28ff"],
    "address": [118, 119, "0x77", "118", 0x40, 118.0],
    "unit": [None, "V", "%RH", "", 5],
    "bits": [8, 12, 16, 20, 12.0],
    "scale": [None, [0, 4095, 0, 1], (0, 255, -1, 1), [1, 1, 0, 1], [0, 65535, 0, 1]],
    "samples": [1, 4, 64, 0],
    "atten": [None, 0, 2.5, 6, 11, 6.0, 3, False],
    "clamp": [True, False, 1],
    "invert": [True, False, 1],
    "pull": [None, "up", "down", 1],
    "edge": ["rising", "falling", "both", "up"],
    "debounce_ms": [0, 20, 1000, 1001, 2.5],
    "name": ["door", "indoor", "temperature", "counter", "led", "sensorErrors", "", "a b", 5],
    "names": [["a", "b"], ["x"], ["t2", "h2", "p2"], "ab"],
    "pim": [4],  # a typo
}
KINDS_ALL = ("dht22", "dht11", "ds18b20", "bme280", "bmp280", "analog", "digital", "counter")


@st.composite
def _sensor(draw):
    kind = draw(st.sampled_from(KINDS_ALL))
    entry = {"type": kind}
    if kind.startswith("bm"):
        entry["i2c"] = {"sda": draw(_PINS), "scl": draw(_PINS)}
    else:
        entry["pin"] = draw(_PINS)
    # The fields this type takes, now and then one it does not.
    fields = [f for f in sensors_check._FIELDS[kind] if f in _SETTINGS] + ["pim"]
    for field in draw(st.lists(st.sampled_from(fields), max_size=3, unique=True)):
        entry[field] = draw(st.sampled_from(_SETTINGS[field]))
    return entry


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sensors=st.lists(_sensor(), max_size=4),
    board=st.sampled_from(["esp32", "pico_w", "unix"]),
    actuators=st.sampled_from(
        [None, {}, {"door": {"type": "digital", "pin": 5}}, {"fan": {"type": "pwm", "pin": 27}}]
    ),
)
def test_what_the_host_accepts_the_board_reads_alike(sensors, board, actuators):
    cfg = with_(board=board, sensors=sensors, actuators=actuators)
    module = config_check.board_module(board)
    try:
        checked = validate(cfg, module)
    except ConfigError as e:
        assert "reads this key differently" not in str(e), str(e)
        return
    assert board_check.validate(cfg, module) == checked
    assert board_check.validate(checked, module) == checked


@pytest.mark.parametrize("board", ["esp32", "pico_w", "unix"])
def test_what_new_device_writes_passes_check_config(capsys, tmp_path, board):
    path = tmp_path / ("%s.json" % board)
    argv = ["new-device", "--board", board, "--config-out", str(path)]
    if board != "unix":
        argv += ["--wifi-ssid", "bench", "--wifi-password", "bench-pw-123", "--ca-file", "ca.der"]
    code, _, err = _cli(capsys, *argv)
    assert code == 0, err
    assert _cli(capsys, "check-config", str(path), "--board", board) == (0, "ok\n", "")


# -- the ESP32's pin rules (issue 17, finding 10) ------------------------------------------------

# (entry, field, pin, why): each of these passed `kpnthings check-config` before; the board then
# read nothing from the sensor, or stopped booting after its next reset.
ESP32_PIN_MISTAKES = [
    ({"type": "counter", "pin": 36}, "pin", 36, "no pull resistors"),
    ({"type": "digital", "pin": 39, "pull": "up"}, "pin", 39, "no pull resistors"),
    ({"type": "dht22", "pin": 34}, "pin", 34, "input only"),
    ({"type": "ds18b20", "pin": 35}, "pin", 35, "input only"),
    ({"type": "bme280", "i2c": {"sda": 36, "scl": 22}}, "i2c.sda", 36, "input only"),
    ({"type": "digital", "pin": 3}, "pin", 3, "UART0 RX"),
    ({"type": "counter", "pin": 12}, "pin", 12, "1.8 V flash"),
    ({"type": "dht22", "pin": 12}, "pin", 12, "1.8 V flash"),
    ({"type": "digital", "pin": 0, "pull": "down"}, "pin", 0, "bootloader"),
]


@pytest.mark.parametrize(("entry", "field", "pin", "why"), ESP32_PIN_MISTAKES)
def test_check_config_refuses_esp32_pins_that_cannot_work(capsys, tmp_path, entry, field, pin, why):
    path = _write(tmp_path, with_(sensors=[{"type": "dht22", "pin": 4}, entry]))
    code, out, err = _cli(capsys, "check-config", str(path))
    head = 'kpnthings: config %s: sensors[1] (%s): field "%s": pin %d ' % (
        path,
        entry["type"],
        field,
        pin,
    )
    assert (code, out) == (1, ""), err
    assert err.startswith(head) and why in err and err.count("\n") == 1, err


def test_check_config_refuses_an_actuator_on_uart0(capsys, tmp_path):
    path = _write(tmp_path, with_(actuators={"relay": {"type": "digital", "pin": 1}}))
    code, out, err = _cli(capsys, "check-config", str(path))
    assert (code, out) == (1, ""), err
    assert "actuators.relay.pin: pin 1 " in err and "UART0 TX" in err, err


def test_check_config_warns_about_the_wrover_psram_pins(capsys, tmp_path):
    # The board file cannot tell a WROOM module (GPIO16/17 free) from a WROVER (its PSRAM):
    # the host says so, and the config still passes.
    sensors = [{"type": "digital", "pin": 16}, {"type": "dht22", "pin": 4}]
    actuators = {"led": {"type": "digital", "pin": 2}, "fan": {"type": "pwm", "pin": 17}}
    path = _write(tmp_path, with_(sensors=sensors, actuators=actuators))
    code, out, err = _cli(capsys, "check-config", str(path))
    assert (code, out) == (0, "ok\n"), err
    lines = err.splitlines()
    assert len(lines) == 2, err
    assert lines[0].startswith(
        'kpnthings: warning: config %s: sensors[0] (digital): field "pin": ' % path
    )
    assert "pin 16 " in lines[0] and "WROVER" in lines[0] and "PSRAM" in lines[0]
    assert lines[1].startswith("kpnthings: warning: config %s: actuators.fan.pin: pin 17 " % path)
    # pico_w and unix have no such rules.
    path = _write(tmp_path, with_(board="unix", sensors=sensors, actuators=actuators), "u.json")
    assert _cli(capsys, "check-config", str(path)) == (0, "ok\n", "")


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
