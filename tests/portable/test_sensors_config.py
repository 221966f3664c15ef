"""The board's short check of the config's sensors list (kpnthings.sensors.schema): every field a
driver reads is checked and named when wrong, pins must be the board's, and good entries come
back with their defaults and names, raw or already checked, as the drivers need them.

The host's full check (unknown fields, shared pins, repeated names...) has its own tests:
tests/host/test_sensors_check.py."""

from _support import raises
from kpnthings import sensors
from kpnthings.sensors import SensorConfigError, validate

ESP32_PINS = set(range(0, 6)) | set(range(12, 20)) | {21, 22, 23, 25, 26, 27} | set(range(32, 40))
ESP32_ADC = set(range(32, 40))
BUS = {"sda": 21, "scl": 22}


def _error(entries, pins=ESP32_PINS, adc=None, rules=None):
    return str(raises(SensorConfigError, validate, entries, pins, adc, None, rules))


class Rules:
    """A board's pin rules (boards/<board>_pins.py), as the check reads them."""

    AVOID = {1: "UART0 TX", "X": "the board's own"}
    INPUT_ONLY = NO_PULL = {34, 35}
    STRAPPING = {12: ("up", "it boots wrong"), 0: ("down", "it waits")}
    WARN = {16: "maybe taken"}


def _one(entry, adc=None):
    return validate([entry], ESP32_PINS, adc)[0]


def test_config_error_is_a_value_error():
    # config.py turns ValueErrors from its hooks into boot-stopping messages.
    assert issubclass(SensorConfigError, ValueError)


def test_every_default_a_driver_reads_is_filled_in():
    assert _one({"type": "dht22", "pin": 4}) == {
        "type": "dht22",
        "pin": 4,
        "names": ["temperature", "humidity"],
    }
    assert _one({"type": "ds18b20", "pin": 13})["rom"] is None
    assert _one({"type": "bme280", "i2c": BUS}) == {
        "type": "bme280",
        "i2c": {"sda": 21, "scl": 22, "id": None, "freq": 100000},
        "address": 118,
        "names": ["temperature", "humidity", "pressure"],
    }
    assert _one({"type": "analog", "pin": 34}) == {
        "type": "analog",
        "pin": 34,
        "unit": None,
        "bits": 12,
        "scale": None,
        "samples": 4,
        "atten": None,
        "clamp": False,
        "names": ["analog"],
    }
    assert _one({"type": "digital", "pin": 14}) == {
        "type": "digital",
        "pin": 14,
        "pull": None,
        "invert": False,
        "names": ["digital"],
    }
    assert _one({"type": "counter", "pin": 27}) == {
        "type": "counter",
        "pin": 27,
        "pull": "up",
        "edge": "falling",
        "debounce_ms": 0,
        "names": ["counter"],
    }


def test_values_are_put_as_the_drivers_read_them():
    assert _one({"type": "bme280", "i2c": BUS, "address": "0x77"})["address"] == 119
    assert _one({"type": "bmp280", "i2c": BUS, "address": "118"})["address"] == 118
    rom = _one({"type": "ds18b20", "pin": 5, "rom": "28:FF:00:00:00:00:02:BB"})["rom"]
    assert rom == "28ff0000000002bb"
    scale = _one({"type": "analog", "pin": 34, "scale": (0, 4095, 0, 3.3)})["scale"]
    assert scale == [0, 4095, 0, 3.3]


def test_names_given_and_default_names_with_suffixes():
    entries = [
        {"type": "dht22", "pin": 4},
        {"type": "analog", "pin": 34, "name": "temperature", "unit": "Cel"},
        {"type": "bme280", "i2c": BUS, "name": "indoor"},
        {"type": "ds18b20", "pin": 5},
        {"type": "dht11", "pin": 15, "names": ["airTemp", "airHum"]},
        {"type": "counter", "pin": 16},
    ]
    names = [e["names"] for e in validate(entries, ESP32_PINS, None, ["counter"])]
    assert names == [
        ["temperature2", "humidity"],
        ["temperature"],
        ["indoorTemperature", "indoorHumidity", "indoorPressure"],
        ["temperature3"],
        ["airTemp", "airHum"],
        ["counter2"],  # "counter" is an actuator's
    ]


def test_raw_and_checked_entries_read_the_same():
    entries = [
        {"type": "dht22", "pin": 4},
        {"type": "bme280", "i2c": BUS, "name": "indoor", "address": "0x76"},
        {"type": "analog", "pin": 34, "scale": [0, 4095, 0, 3.3], "unit": "V"},
        {"type": "counter", "pin": 15, "debounce_ms": 20},
        {"type": "ds18b20", "pin": 13, "rom": "28-ff-00-00-00-00-01-aa"},
    ]
    once = validate(entries, ESP32_PINS, ESP32_ADC)
    assert validate(once, ESP32_PINS, ESP32_ADC) == once
    assert "names" not in entries[0] and entries[1]["name"] == "indoor"  # input left alone


def test_type_and_shape():
    assert _error({"type": "dht22", "pin": 4}).startswith("sensors: must be a list")
    for bad in ("dht22", {"pin": 4}, {"type": "dht21", "pin": 4}, {"type": ["dht22"]}):
        msg = _error([{"type": "dht22", "pin": 4}, bad])
        assert msg.startswith('sensors[1]: field "type": must be one of analog, bme280'), msg


def test_pins_must_be_the_boards():
    msg = _error([{"type": "digital", "pin": 14}, {"type": "dht22", "pin": 6}])
    assert msg == 'sensors[1] (dht22): field "pin": this board has no pin 6'
    msg = _error([{"type": "bme280", "i2c": {"sda": 21, "scl": 24}}])
    assert msg == 'sensors[0] (bme280): field "i2c.scl": this board has no pin 24'
    for bad in (4.0, True, None, "", [4]):
        msg = _error([{"type": "digital", "pin": bad}], pins=None)
        assert msg.startswith('sensors[0] (digital): field "pin": must be a GPIO number'), msg
    assert _error([{"type": "ds18b20"}]).startswith('sensors[0] (ds18b20): field "pin": must be')
    assert validate([{"type": "digital", "pin": "GP15"}], {"GP15", "LED"})[0]["pin"] == "GP15"
    msg = _error([{"type": "analog", "pin": 25}], adc=ESP32_ADC)
    assert msg == 'sensors[0] (analog): field "pin": this board cannot read analog values on it'


def test_each_setting_a_driver_reads_is_checked():
    def field_of(entry):
        msg = _error([entry])
        assert msg.startswith("sensors[0] (%s): field " % entry["type"]), msg
        assert ": must " in msg, msg
        return msg.split('"')[1]

    cases = [
        ({"type": "bme280"}, "i2c"),
        ({"type": "bme280", "i2c": [21, 22]}, "i2c"),
        ({"type": "bme280", "i2c": {"sda": 21}}, "i2c.scl"),
        ({"type": "bme280", "i2c": dict(BUS, id="0")}, "i2c.id"),
        ({"type": "bme280", "i2c": dict(BUS, freq=5)}, "i2c.freq"),
        ({"type": "bme280", "i2c": BUS, "address": 0x40}, "address"),
        ({"type": "bme280", "i2c": BUS, "address": "x"}, "address"),
        ({"type": "bme280", "i2c": BUS, "address": True}, "address"),
        ({"type": "bme280", "i2c": BUS, "address": 118.0}, "address"),
        ({"type": "ds18b20", "pin": 5, "rom": "28ff"}, "rom"),
        ({"type": "ds18b20", "pin": 5, "rom": "zz" * 8}, "rom"),
        ({"type": "ds18b20", "pin": 5, "rom": 28}, "rom"),
        ({"type": "analog", "pin": 34, "bits": 20}, "bits"),
        ({"type": "analog", "pin": 34, "bits": 12.0}, "bits"),
        ({"type": "analog", "pin": 34, "samples": 0}, "samples"),
        ({"type": "analog", "pin": 34, "atten": 3}, "atten"),
        ({"type": "analog", "pin": 34, "atten": False}, "atten"),
        ({"type": "analog", "pin": 34, "clamp": "yes"}, "clamp"),
        ({"type": "analog", "pin": 34, "clamp": 1}, "clamp"),
        ({"type": "analog", "pin": 34, "unit": ""}, "unit"),
        ({"type": "analog", "pin": 34, "unit": 5}, "unit"),
        ({"type": "analog", "pin": 34, "scale": [0, 4095, 0]}, "scale"),
        ({"type": "analog", "pin": 34, "scale": [0, 4095, 0, "1"]}, "scale"),
        ({"type": "analog", "pin": 34, "scale": [0, 4095, 0, True]}, "scale"),
        ({"type": "analog", "pin": 34, "scale": [100, 100, 0, 1]}, "scale"),
        ({"type": "analog", "pin": 34, "scale": "0-4095"}, "scale"),
        ({"type": "digital", "pin": 4, "pull": 1}, "pull"),
        ({"type": "digital", "pin": 4, "invert": 1}, "invert"),
        ({"type": "counter", "pin": 4, "edge": "up"}, "edge"),
        ({"type": "counter", "pin": 4, "debounce_ms": -1}, "debounce_ms"),
        ({"type": "counter", "pin": 4, "debounce_ms": 2.5}, "debounce_ms"),
        ({"type": "digital", "pin": 4, "name": 5}, "name"),
        ({"type": "digital", "pin": 4, "name": ""}, "name"),
        ({"type": "dht22", "pin": 4, "names": ["t"]}, "names"),
        ({"type": "dht22", "pin": 4, "names": ["t", 5]}, "names"),
    ]
    for entry, field in cases:
        assert field_of(entry) == field, (entry, field)


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


def test_pin_rules_per_sensor_type():
    def msg(entry):
        return _error([entry], rules=Rules).split(": ", 1)[1]

    # Buses drive their line and hold it high with a resistor; inputs may ask for a pull.
    assert msg({"type": "dht22", "pin": 34}) == (
        'field "pin": pin 34 is input only, and a dht22 drives its line'
    )
    assert msg({"type": "bme280", "i2c": {"sda": 21, "scl": 35}}) == (
        'field "i2c.scl": pin 35 is input only, and a bme280 drives its line'
    )
    assert msg({"type": "counter", "pin": 35}) == (
        'field "pin": pin 35 has no pull resistors, so pull "up" does nothing: wire one, set'
        ' "pull": null'
    )
    assert 'pull "down"' in msg({"type": "digital", "pin": 34, "pull": "down"})
    assert msg({"type": "digital", "pin": 1}) == 'field "pin": pin 1 must stay free: UART0 TX'
    assert msg({"type": "digital", "pin": "X"}) == (
        "field \"pin\": pin 'X' must stay free: the board's own"
    )
    assert "pin 1 must stay free" in _error([{"type": "analog", "pin": 1}], None, None, Rules)
    assert (
        msg({"type": "counter", "pin": 12})
        == 'field "pin": pin 12 cannot be pulled up: it boots wrong'
    )
    assert msg({"type": "ds18b20", "pin": 12}) == (
        'field "pin": pin 12 cannot be pulled up (a ds18b20 line is): it boots wrong'
    )
    assert msg({"type": "digital", "pin": 0, "pull": "down"}) == (
        'field "pin": pin 0 cannot be pulled down: it waits'
    )
    # What those pins can do passes, and the checked entries pass again unchanged.
    entries = [
        {"type": "analog", "pin": 34},
        {"type": "digital", "pin": 35},
        {"type": "counter", "pin": 12, "pull": "down"},
        {"type": "digital", "pin": 0, "pull": "up"},
        {"type": "counter", "pin": 16},  # WARN is the host's to say
        {"type": "dht22", "pin": 4},
    ]
    once = validate(entries, ESP32_PINS, ESP32_ADC, None, Rules)
    assert validate(once, ESP32_PINS, ESP32_ADC, None, Rules) == once
    assert once == validate(entries, ESP32_PINS, ESP32_ADC)  # the rules refuse, never change
