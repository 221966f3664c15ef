"""The ESP32's pin rules at boot (issue 17, finding 10): a sensor or actuator on a pin that cannot
do its job, or that stops the board booting, is refused by the check every boot runs
(kpnthings.wiring.configure, with the real boards/esp32.py), in one line that names the entry,
the field, the pin and why. Before, every config below booted: the sensor then read nothing,
or the board stopped coming up after its next reset."""

import json
import os
import sys

from _support import data_path, is_micropython, raises
from kpnthings.config import ConfigError

CONFIG = {
    "dvnuuid": "0b7f8c3e-5a2d-4c1e-9f6a-2d3e4f5a6b7c",
    "secret": "Zq81hLw0PpX4vR9tTnY6uB2eKj7sDc3MfA5g",
    "url": "http://127.0.0.1:8080",
    "board": "esp32",
    "wifi_ssid": "home",
    "wifi_password": "correct-horse-battery",
}
BUS = {"sda": 21, "scl": 22}


def _configure(sensors=None, actuators=None):
    """wiring.configure, as a boot runs it, on a config.json with these sensors and actuators."""
    from kpnthings import wiring

    cfg = dict(CONFIG)
    if sensors is not None:
        cfg["sensors"] = sensors
    if actuators is not None:
        cfg["actuators"] = actuators
    path = "/tmp/kpn-pin-rules-%d.json" % (id(cfg) & 0xFFFFFF)
    with open(path, "w") as f:
        json.dump(cfg, f)
    # CPython has no `boards` package on its path (the MicroPython runs have the board files).
    root = None if is_micropython() else data_path("../..")
    if root:
        sys.path.insert(0, root)
    logs = []
    try:
        cfg = wiring.configure(path, logs.append)[0]
        # The rules are read for the check only: the loop must not keep their texts in its heap.
        assert not [k for k in sys.modules if k[-10:] == "esp32_pins"], sorted(sys.modules)
        return cfg
    finally:
        os.remove(path)
        if root:
            sys.path.remove(root)
            for name in [k for k in sys.modules if k == "boards" or k[:7] == "boards."]:
                del sys.modules[name]


def _refused(sensors=None, actuators=None):
    return str(raises(ConfigError, _configure, sensors, actuators))


def _check(entry, field, pin, why):
    msg = _refused([{"type": "dht22", "pin": 4}, entry])
    head = 'sensors[1] (%s): field "%s": pin %d ' % (entry["type"], field, pin)
    assert msg.startswith(head), msg
    assert why in msg, (why, msg)


def test_a_pull_on_a_pin_without_pull_resistors():
    # GPIO34-39 have no pull-up or pull-down: a counter (pulled up by default) would float.
    why = "no pull resistors"
    _check({"type": "counter", "pin": 36}, "pin", 36, why)
    _check({"type": "counter", "pin": 39, "pull": "down"}, "pin", 39, why)
    _check({"type": "digital", "pin": 34, "pull": "up"}, "pin", 34, why)


def test_a_bus_on_an_input_only_pin():
    # DHT, 1-Wire and I2C drive their line: GPIO34-39 have no output driver.
    why = "input only"
    _check({"type": "dht22", "pin": 34}, "pin", 34, why)
    _check({"type": "dht11", "pin": 35}, "pin", 35, why)
    _check({"type": "ds18b20", "pin": 39}, "pin", 39, why)
    _check({"type": "bme280", "i2c": {"sda": 36, "scl": 22}}, "i2c.sda", 36, why)
    _check({"type": "bmp280", "i2c": {"sda": 21, "scl": 37}}, "i2c.scl", 37, why)


def test_the_uart0_pins():
    # GPIO1 and 3 carry the REPL: mpremote (and so deploy) reaches the board through them.
    _check({"type": "digital", "pin": 3}, "pin", 3, "UART0 RX")
    _check({"type": "counter", "pin": 1}, "pin", 1, "UART0 TX")
    msg = _refused(actuators={"relay": {"type": "digital", "pin": 3}})
    assert msg.startswith("actuators.relay.pin: pin 3 ") and "UART0 RX" in msg, msg


def test_a_pulled_up_sensor_on_gpio12():
    # MTDI is read at reset: held high, the chip selects 1.8 V flash and does not boot.
    why = "1.8 V flash"
    _check({"type": "counter", "pin": 12}, "pin", 12, why)
    _check({"type": "digital", "pin": 12, "pull": "up"}, "pin", 12, why)
    _check({"type": "dht22", "pin": 12}, "pin", 12, why)
    _check({"type": "ds18b20", "pin": 12}, "pin", 12, why)
    _check({"type": "bme280", "i2c": {"sda": 12, "scl": 22}}, "i2c.sda", 12, why)


def test_a_pulled_down_sensor_on_gpio0():
    # GPIO0 held low at reset starts the serial bootloader instead of the firmware.
    _check({"type": "digital", "pin": 0, "pull": "down"}, "pin", 0, "bootloader")


def test_the_flash_pins_say_why():
    msg = _refused([{"type": "digital", "pin": 6}])
    assert msg.startswith('sensors[0] (digital): field "pin": pin 6 ') and "flash" in msg, msg


def test_what_works_on_those_pins_still_boots():
    cfg = _configure(
        [
            {"type": "analog", "pin": 34},  # ADC on an input-only pin
            {"type": "digital", "pin": 35},  # an input without a pull
            {"type": "counter", "pin": 36, "pull": None},  # with its own resistor
            {"type": "counter", "pin": 12, "pull": "down"},  # low at reset: boots
            {"type": "digital", "pin": 0, "pull": "up"},  # the BOOT button
            {"type": "dht22", "pin": 4},
            {"type": "ds18b20", "pin": 13},
            {"type": "bme280", "i2c": BUS},
            # GPIO16/17 drive the PSRAM on WROVER modules only: the board cannot tell which it
            # is, so the host warns (kpnthings check-config, deploy) and the board boots.
            {"type": "digital", "pin": 16},
        ],
        {"led": {"type": "digital", "pin": 2}, "fan": {"type": "pwm", "pin": 17}},
    )
    assert [e["pin"] for e in cfg["sensors"] if "pin" in e] == [34, 35, 36, 12, 0, 4, 13, 16]
    assert sorted(cfg["actuators"]) == ["fan", "led"]
