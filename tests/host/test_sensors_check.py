"""The host's full check of the config's sensors list (kpnthings_tools.sensors_check): every kind
of mistake stops the deploy with a message that names the entry, its type and the field; good
lists come back normalised and uniquely named, exactly as the board's short check names them."""

import pytest

from kpnthings import sensors
from kpnthings.sensors import SensorConfigError
from kpnthings_tools.sensors_check import validate

ESP32_PINS = set(range(0, 6)) | set(range(12, 20)) | {21, 22, 23, 25, 26, 27} | set(range(32, 40))
ESP32_ADC = set(range(32, 40))


def _error(entries, pins=ESP32_PINS, **kw):
    with pytest.raises(SensorConfigError) as info:
        validate(entries, pins, **kw)
    return str(info.value)


def _names(entries, **kw):
    names = [n for entry in validate(entries, ESP32_PINS, **kw) for n in entry["names"]]
    # The board names them the same way (it trusts the host for repeats and reserved pins).
    board_kw = {k: v for k, v in kw.items() if k != "reserved_pins"}
    on_board = sensors.validate(entries, ESP32_PINS, **board_kw)
    assert [n for entry in on_board for n in entry["names"]] == names
    return names


def test_config_error_is_a_value_error():
    # config_check turns ValueErrors from its checks into one-line messages.
    assert issubclass(SensorConfigError, ValueError)


def test_sensors_must_be_a_list_of_objects():
    assert 'field "sensors"' in _error({"type": "dht22", "pin": 4})
    msg = _error([{"type": "dht22", "pin": 4}, "dht22"])
    assert msg.startswith("sensors[1]") and "must be an object" in msg


def test_unknown_type_names_the_entry_and_lists_known_types():
    msg = _error([{"type": "dht22", "pin": 4}, {"type": "dht21", "pin": 5}])
    assert msg.startswith('sensors[1]: field "type"')
    assert "'dht21'" in msg and "bme280" in msg and "ds18b20" in msg
    assert 'field "type"' in _error([{"pin": 4}])
    assert 'field "type"' in _error([{"type": ["dht22"], "pin": 4}])


def test_missing_pin():
    assert _error([{"type": "ds18b20"}]) == 'sensors[0] (ds18b20): field "pin": missing'


def test_pin_the_board_lacks():
    msg = _error([{"type": "digital", "pin": 14}, {"type": "dht22", "pin": 6}])
    assert msg == 'sensors[1] (dht22): field "pin": this board has no pin 6'
    # An I2C pin is checked the same way, and named by its field.
    msg = _error([{"type": "bme280", "i2c": {"sda": 21, "scl": 24}}])
    assert msg.startswith('sensors[0] (bme280): field "i2c.scl"') and "no pin 24" in msg


def test_pin_of_the_wrong_type():
    for bad in (4.0, True, None, "", [4]):
        msg = _error([{"type": "digital", "pin": bad}], pins=None)
        assert msg.startswith('sensors[0] (digital): field "pin": must be a GPIO number'), msg


def test_named_pins_are_accepted_where_the_board_has_them():
    out = validate([{"type": "digital", "pin": "GP15"}], {"GP15", "LED"})
    assert out[0]["pin"] == "GP15"


def test_unknown_field_is_a_typo_not_ignored():
    msg = _error([{"type": "dht22", "pim": 4, "pin": 4}])
    assert msg.startswith('sensors[0] (dht22): field "pim": not a setting of dht22')


def test_two_sensors_on_one_pin():
    msg = _error([{"type": "dht22", "pin": 4}, {"type": "digital", "pin": 4}])
    assert msg == ('sensors[1] (digital): field "pin": pin 4 is already used by sensors[0] (dht22)')


def test_a_sensor_on_an_i2c_pin():
    bme = {"type": "bme280", "i2c": {"sda": 21, "scl": 22}}
    msg = _error([bme, {"type": "counter", "pin": 22}])
    assert msg == 'sensors[1] (counter): field "pin": pin 22 is already used by sensors[0] (bme280)'
    msg = _error([{"type": "counter", "pin": 21}, bme])
    assert msg.startswith('sensors[1] (bme280): field "i2c.sda": pin 21 is already used')


def test_i2c_sensors_share_a_bus_at_different_addresses():
    out = validate(
        [
            {"type": "bme280", "i2c": {"sda": 21, "scl": 22}, "address": 0x76},
            {"type": "bmp280", "i2c": {"sda": 21, "scl": 22}, "address": 0x77},
        ],
        ESP32_PINS,
    )
    assert [e["address"] for e in out] == [118, 119]


def test_i2c_sensors_on_one_bus_at_one_address():
    bme = {"type": "bme280", "i2c": {"sda": 21, "scl": 22}}
    msg = _error([bme, dict(bme)])
    assert msg.startswith('sensors[1] (bme280): field "address": address 118 is already used')
    assert "sensors[0]" in msg


def test_i2c_sensors_sharing_a_pin_with_other_bus_settings():
    a = {"type": "bme280", "i2c": {"sda": 21, "scl": 22}}
    b = {"type": "bme280", "i2c": {"sda": 21, "scl": 22, "freq": 400000}, "address": 119}
    msg = _error([a, b])
    assert 'sensors[1] (bme280): field "i2c.sda"' in msg and "same sda, scl, id and freq" in msg
    swapped = {"type": "bme280", "i2c": {"sda": 22, "scl": 21}, "address": 119}
    assert "already used by sensors[0]" in _error([a, swapped])


def test_bad_i2c_settings():
    def entry(bus):
        return [{"type": "bme280", "i2c": bus}]

    assert 'field "i2c": must be {"sda"' in _error(entry(None))
    assert 'field "i2c": must be {"sda"' in _error(entry({"sda": 21}))
    assert 'field "i2c": sda and scl must be different' in _error(entry({"sda": 21, "scl": 21}))
    assert 'field "i2c.speed"' in _error(entry({"sda": 21, "scl": 22, "speed": 1}))
    assert 'field "i2c.freq"' in _error(entry({"sda": 21, "scl": 22, "freq": 5}))
    assert 'field "i2c.id"' in _error(entry({"sda": 21, "scl": 22, "id": "0"}))


def test_bad_address():
    for bad in (0x40, 0, "0x40", "x", True, 118.0, None):
        msg = _error([{"type": "bme280", "i2c": {"sda": 21, "scl": 22}, "address": bad}])
        assert msg.startswith('sensors[0] (bme280): field "address": must be 118 (0x76) or 119'), (
            bad
        )


def test_address_defaults_to_0x76_and_takes_hex_text():
    bus = {"sda": 21, "scl": 22}
    assert validate([{"type": "bme280", "i2c": bus}], ESP32_PINS)[0]["address"] == 0x76
    out = validate([{"type": "bme280", "i2c": bus, "address": "0x77"}], ESP32_PINS)
    assert out[0]["address"] == 0x77


def test_bad_scale():
    def scale_error(scale, **extra):
        entry = {"type": "analog", "pin": 34, "scale": scale}
        entry.update(extra)
        return _error([entry])

    for bad in (
        [0, 4095, 0],
        [0, 4095, 0, "100"],
        "0-4095",
        [0, 4095, 0, True],
        [0, 4095, 0, None],
    ):
        msg = scale_error(bad)
        assert msg.startswith('sensors[0] (analog): field "scale": must be [in_min, in_max'), bad
    assert "in_min and in_max must differ" in scale_error([100, 100, 0, 1])
    assert "12-bit raw range 0..4095" in scale_error([0, 65535, 0, 100])
    # With 16 bits the same scale is fine.
    entry = {"type": "analog", "pin": 34, "scale": [0, 65535, 0, 100], "bits": 16}
    assert validate([entry], ESP32_PINS)[0]["scale"] == [0, 65535, 0, 100]


def test_bad_analog_settings():
    def error(**extra):
        entry = {"type": "analog", "pin": 34}
        entry.update(extra)
        return _error([entry])

    assert 'field "bits"' in error(bits=20)
    assert 'field "samples"' in error(samples=0)
    assert 'field "atten"' in error(atten=3)
    assert 'field "clamp"' in error(clamp="yes")
    assert 'field "unit"' in error(unit="")
    assert 'field "unit"' in error(unit=5)


def test_analog_pin_without_adc():
    msg = _error([{"type": "analog", "pin": 25}], adc_pins=ESP32_ADC)
    assert msg.startswith('sensors[0] (analog): field "pin": pin 25 cannot read analog values')
    assert "32, 33" in msg
    assert validate([{"type": "analog", "pin": 34}], ESP32_PINS, ESP32_ADC)[0]["pin"] == 34


def test_bad_digital_and_counter_settings():
    assert 'sensors[0] (digital): field "pull"' in _error(
        [{"type": "digital", "pin": 4, "pull": 1}]
    )
    assert 'field "invert"' in _error([{"type": "digital", "pin": 4, "invert": 1}])
    assert 'sensors[0] (counter): field "edge"' in _error(
        [{"type": "counter", "pin": 4, "edge": "up"}]
    )
    assert 'field "debounce_ms"' in _error([{"type": "counter", "pin": 4, "debounce_ms": -1}])
    assert 'field "debounce_ms"' in _error([{"type": "counter", "pin": 4, "debounce_ms": 2.5}])


def test_ds18b20_sharing_a_pin_needs_a_rom_each():
    a = {"type": "ds18b20", "pin": 5}
    msg = _error([a, dict(a)])
    assert msg.startswith('sensors[1] (ds18b20): field "rom"') and "its rom" in msg
    one = {"type": "ds18b20", "pin": 5, "rom": "28ff0000000001aa"}
    two = {"type": "ds18b20", "pin": 5, "rom": "28:FF:00:00:00:00:02:bb"}
    out = validate([one, two], ESP32_PINS)
    assert out[1]["rom"] == "28ff0000000002bb"
    assert "already reads this rom" in _error([one, dict(one)])
    # A one-wire pin is still exclusive against other sensor types.
    assert "already used by sensors[0] (ds18b20)" in _error([one, {"type": "digital", "pin": 5}])


def test_bad_rom():
    for bad in ("28ff", "zz" * 8, 28):
        assert 'field "rom": must be' in _error([{"type": "ds18b20", "pin": 5, "rom": bad}])
    msg = _error([{"type": "ds18b20", "pin": 5, "rom": "3aff0000000001aa"}])
    assert "family code 3a is not a DS18x20" in msg


def test_pin_used_by_an_actuator():
    msg = _error([{"type": "digital", "pin": 2}], reserved_pins=[2])
    assert msg == 'sensors[0] (digital): field "pin": pin 2 is already used by an actuator'


def test_default_names_follow_kpn_and_get_suffixes():
    entries = [
        {"type": "dht22", "pin": 4},
        {"type": "ds18b20", "pin": 5},
        {"type": "bme280", "i2c": {"sda": 21, "scl": 22}},
        {"type": "ds18b20", "pin": 18},
        {"type": "counter", "pin": 15},
        {"type": "counter", "pin": 16},
    ]
    assert _names(entries) == [
        "temperature",
        "humidity",
        "temperature2",
        "temperature3",
        "humidity2",
        "pressure",
        "temperature4",
        "counter",
        "counter2",
    ]


def test_configured_names_win_and_defaults_step_around_them():
    entries = [
        {"type": "dht22", "pin": 4},
        {"type": "analog", "pin": 34, "name": "temperature", "unit": "Cel"},
        {"type": "analog", "pin": 35, "name": "batteryVoltage", "unit": "V"},
        {"type": "digital", "pin": 14, "name": "door"},
    ]
    assert _names(entries) == ["temperature2", "humidity", "temperature", "batteryVoltage", "door"]


def test_a_multi_reading_sensor_name_prefixes_its_readings():
    entries = [{"type": "bme280", "i2c": {"sda": 21, "scl": 22}, "name": "indoor"}]
    assert _names(entries) == ["indoorTemperature", "indoorHumidity", "indoorPressure"]
    entries = [{"type": "dht22", "pin": 4, "names": ["airTemp", "airHum"]}]
    assert _names(entries) == ["airTemp", "airHum"]


def test_bad_names():
    for bad in ("door open", "-door", "", "t" * 64, 5, "tempé"):
        msg = _error([{"type": "digital", "pin": 14, "name": bad}])
        assert msg.startswith('sensors[0] (digital): field "name"') and "SenML name" in msg, bad
    msg = _error([{"type": "dht22", "pin": 4, "name": "a", "names": ["b", "c"]}])
    assert 'field "names": give "name" or "names", not both' in msg
    msg = _error([{"type": "dht22", "pin": 4, "names": ["t"]}])
    assert 'field "names": must list 2 names: temperature, humidity' in msg


def test_duplicate_and_reserved_names():
    entries = [
        {"type": "digital", "pin": 14, "name": "door"},
        {"type": "digital", "pin": 15, "name": "door"},
    ]
    msg = _error(entries)
    assert msg == (
        "sensors[1] (digital): field \"name\": name 'door' is already used by sensors[0] (digital)"
    )
    msg = _error([{"type": "digital", "pin": 14, "name": "led"}], reserved_names=["led"])
    assert "already used by an actuator" in msg
    assert "device loop" in _error([{"type": "counter", "pin": 14, "name": "sensorErrors"}])
    # The answer to a downlink (issue 19) is the loop's record too.
    assert "device loop" in _error([{"type": "digital", "pin": 14, "name": "downlink"}])
    assert "device loop" in _error([{"type": "digital", "pin": 14, "name": "droppedReadings"}])
    # So are the records that say how a pack's times were obtained (issue 18, item 5).
    for name in ("timeQuality", "undatedReadings"):
        assert "device loop" in _error([{"type": "analog", "pin": 34, "name": name}])
    # Defaults step around actuator names too.
    out = validate([{"type": "counter", "pin": 14}], ESP32_PINS, reserved_names=["counter"])
    assert out[0]["names"] == ["counter2"]


def test_validate_is_idempotent_and_leaves_its_input_alone():
    entries = [
        {"type": "dht22", "pin": 4},
        {"type": "bme280", "i2c": {"sda": 21, "scl": 22}, "name": "indoor"},
        {"type": "analog", "pin": 34, "scale": [0, 4095, 0, 3.3], "unit": "V"},
        {"type": "counter", "pin": 15, "debounce_ms": 20},
    ]
    once = validate(entries, ESP32_PINS, ESP32_ADC)
    twice = validate(once, ESP32_PINS, ESP32_ADC)
    assert once == twice
    # The board's short check reads raw and checked entries alike, and as the host does.
    assert sensors.validate(entries, ESP32_PINS, ESP32_ADC) == once
    assert sensors.validate(once, ESP32_PINS, ESP32_ADC) == once
    assert "names" not in entries[0] and entries[1]["name"] == "indoor"
    assert once[2]["bits"] == 12 and once[2]["samples"] == 4 and once[3]["pull"] == "up"


def test_known_types():
    assert sensors.types() == [
        "analog",
        "bme280",
        "bmp280",
        "counter",
        "dht11",
        "dht22",
        "digital",
        "ds18b20",
    ]


class Rules:
    """A board's pin rules (boards/<board>_pins.py), as both checks read them."""

    AVOID = {1: "UART0 TX"}
    INPUT_ONLY = NO_PULL = {34, 35}
    STRAPPING = {12: ("up", "it boots wrong"), 0: ("down", "it waits")}
    WARN = {16: "maybe taken"}


def test_pin_rules_refuse_alike_on_the_host_and_the_board():
    cases = [
        ({"type": "dht22", "pin": 34}, "pin 34 is input only, and a dht22 drives its line"),
        ({"type": "ds18b20", "pin": 35}, "pin 35 is input only"),
        ({"type": "bmp280", "i2c": {"sda": 34, "scl": 22}}, "pin 34 is input only"),
        ({"type": "counter", "pin": 34}, 'pin 34 has no pull resistors, so pull "up"'),
        ({"type": "digital", "pin": 35, "pull": "down"}, 'pull "down" does nothing'),
        ({"type": "digital", "pin": 1}, "pin 1 must stay free: UART0 TX"),
        ({"type": "bme280", "i2c": {"sda": 21, "scl": 1}}, "pin 1 must stay free: UART0 TX"),
        ({"type": "counter", "pin": 12}, "pin 12 cannot be pulled up: it boots wrong"),
        ({"type": "dht11", "pin": 12}, "pin 12 cannot be pulled up (a dht11 line is)"),
        ({"type": "digital", "pin": 0, "pull": "down"}, "pin 0 cannot be pulled down: it waits"),
    ]
    for entry, why in cases:
        host = _error([entry], pin_rules=Rules)
        with pytest.raises(SensorConfigError) as info:
            sensors.validate([entry], ESP32_PINS, None, None, Rules)
        assert host == str(info.value), (host, str(info.value))
        assert why in host, (why, host)
    # An avoided pin says why, even where the board's pin set lacks it.
    assert "must stay free" in _error([{"type": "digital", "pin": 1}], pins={4}, pin_rules=Rules)
    entries = [
        {"type": "analog", "pin": 34},
        {"type": "digital", "pin": 35},
        {"type": "counter", "pin": 12, "pull": "down"},
        {"type": "counter", "pin": 16},
        {"type": "digital", "pin": 0, "pull": "up"},
    ]
    once = validate(entries, ESP32_PINS, ESP32_ADC, pin_rules=Rules)
    assert once == validate(entries, ESP32_PINS, ESP32_ADC)
    assert sensors.validate(entries, ESP32_PINS, ESP32_ADC, None, Rules) == once
