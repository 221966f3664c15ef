"""The sensor drivers as the device loop uses them, all together over simulated buses and pins
(tests/fakes/simbus.py): read_all goes on past any failure, a full bench of every type, drivers
imported only when used, and the board's hooks. Each driver family has its own test_sensor_*.py."""

import sys

from _sensor_rig import PINS, by_name, rig, simbus

from _support import raises
from kpnthings import sensors


def test_read_all_keeps_going_past_any_failure():
    class Broken:
        label = "sensors[0] (broken)"

        def read(self):
            raise RuntimeError("bug")

    class Fine:
        def read(self):
            return [("ok", 1, None)]

    broken, fine = Broken(), Fine()
    assert sensors.read_all([broken, fine, broken]) == ([("ok", 1, None)], 2)
    assert broken.last_error == "sensors[0] (broken): RuntimeError: bug"
    assert fine.last_error is None


def test_bme280_bus_that_cannot_be_opened_is_a_read_error_not_a_boot_failure():
    world = simbus.World()
    machine = world.machine()
    del machine.SoftI2C  # a port without software I2C, say
    entries = [
        {"type": "bme280", "i2c": {"sda": 21, "scl": 22}},
        {"type": "digital", "pin": 14, "name": "door"},
    ]
    drivers = sensors.build(entries, None, machine, world.clock)
    for _ in range(2):
        readings, errors = sensors.read_all(drivers)
        assert (readings, errors) == ([("door", False, None)], 1)
        assert "cannot open the I2C bus" in drivers[0].last_error


def test_a_full_bench_with_every_type():
    entries = [
        {"type": "dht22", "pin": 4},
        {"type": "ds18b20", "pin": 5},
        {"type": "bme280", "i2c": {"sda": 21, "scl": 22}, "address": 118},
        {"type": "analog", "pin": 34, "name": "soilMoisture", "unit": "%RH",
         "scale": [0, 4095, 0, 100]},
        {"type": "digital", "pin": 14, "name": "door"},
        {"type": "counter", "pin": 15, "name": "counter"},
    ]  # fmt: skip
    world = simbus.world_for(entries)
    drivers = sensors.build(entries, None, world.machine(), world.clock)  # raw entries are fine
    world.meters.clear()  # world_for's own meter would add pulses as the clock moves
    world.pulse(15, 7)
    readings, errors = sensors.read_all(drivers)
    assert errors == 0
    got = by_name(readings)
    assert sorted(got) == [
        "counter",
        "door",
        "humidity",
        "humidity2",
        "pressure",
        "soilMoisture",
        "temperature",
        "temperature2",
        "temperature3",
    ]
    units = {"temperature": "Cel", "humidity": "%RH", "pressure": "Pa", "counter": None}
    for name, (_value, unit) in got.items():
        base = name.rstrip("23")
        if base in units:
            assert unit == units[base], name
    assert got["counter"] == (7, None) and got["door"] == (True, None)
    assert got["temperature3"] == (25.08, "Cel")


def test_drivers_are_imported_only_when_used():
    for name in ("bme280", "dht", "ds18b20", "analog", "counter"):
        sys.modules.pop("kpnthings.sensors." + name, None)
    _world, _drivers = rig([{"type": "digital", "pin": 14}])
    assert "kpnthings.sensors.digital" in sys.modules
    for name in ("bme280", "dht", "ds18b20", "analog", "counter"):
        assert "kpnthings.sensors." + name not in sys.modules, name


def test_a_board_can_supply_simulated_buses_for_its_sensors():
    # The unix board's hook: build() hands it the validated entries, it returns a machine.
    # World and drivers must share one clock (the demo uses kpnthings.compat for both).
    clock = simbus.SimClock()

    class Board:
        PINS = PINS
        seen = []

        @staticmethod
        def sensor_machine(entries):
            Board.seen.append([e["type"] for e in entries])
            return simbus.world_for(entries, clock).machine()

    entries = [{"type": "digital", "pin": 14}, {"type": "bme280", "i2c": {"sda": 21, "scl": 22}}]
    drivers = sensors.build(entries, Board, clock=clock)
    assert Board.seen == [["digital", "bme280"]]
    readings, errors = sensors.read_all(drivers)
    assert errors == 0 and by_name(readings)["temperature"] == (25.08, "Cel")


def test_build_checks_raw_entries_against_the_board():
    class Board:
        PINS = {1, 2}

    e = raises(sensors.SensorConfigError, sensors.build, [{"type": "digital", "pin": 14}], Board)
    assert "no pin 14" in str(e)


def test_build_gives_the_boot_time_checks_back_to_the_heap():
    rig([{"type": "digital", "pin": 14}])
    assert "kpnthings.sensors.schema" not in sys.modules
    assert not hasattr(sensors, "schema")
    # ...and they come back whenever needed again.
    assert sensors.validate([{"type": "digital", "pin": 14}], PINS)[0]["names"] == ["digital"]


def test_build_of_nothing_needs_no_machine():
    assert sensors.build([], None) == []
