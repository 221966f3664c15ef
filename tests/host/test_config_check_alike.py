"""The host's full check of config.json and the board's short one read a config alike: every
example config, a disagreement refused, and a property test that drives the two with random
sensor lists (the host must refuse a config, or agree with the board)."""

import json

import pytest
from _config_support import GOOD, SECRET, error, with_
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpnthings import config as board_check
from kpnthings.config import ConfigError, unknown_keys
from kpnthings_tools import build, config_check, sensors_check
from kpnthings_tools.config_check import validate

ROOT = build.repo_root()


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


# -- the two checks never disagree on a config the host accepts -----------------------------------

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
