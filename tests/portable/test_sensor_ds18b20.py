"""The DS18B20 driver over the firmware's onewire and ds18x20 modules, simulated
(tests/fakes/simbus.py): conversions, several sensors on one pin, and every bus fault."""

from _sensor_rig import rig, simbus

from kpnthings import sensors


def _ds_rig(*devices, entries=None):
    world = simbus.World()
    for dev in devices:
        world.add_ds18b20(5, dev)
    world, drivers = rig(entries or [{"type": "ds18b20", "pin": 5}], world)
    return world, drivers


def test_ds18b20_first_read_waits_for_a_conversion_then_pipelines():
    dev = simbus.SimDS18B20(1, 23.5)
    world, drivers = _ds_rig(dev)
    start = world.clock.now
    readings, errors = sensors.read_all(drivers)
    assert (readings, errors) == ([("temperature", 23.5, "Cel")], 0)  # not the power-on 85
    assert world.clock.now - start >= 750
    # The next conversion was started at the end of the read; after an interval the read does
    # not wait at all and reports the temperature of that conversion.
    dev.temperature = 24.0
    world.clock.advance(5000)
    start = world.clock.now
    readings, errors = sensors.read_all(drivers)
    assert readings == [("temperature", 24.0, "Cel")] and world.clock.now == start
    assert dev.conversions == 3


def test_ds18b20_interval_shorter_than_a_conversion_never_waits_again():
    dev = simbus.SimDS18B20(1, 20.0)
    world, drivers = _ds_rig(dev)
    assert sensors.read_all(drivers)[0] == [("temperature", 20.0, "Cel")]  # waited once
    dev.temperature = 21.0
    start = world.clock.now
    world.clock.advance(500)  # the next conversion is still running
    assert sensors.read_all(drivers)[0] == [("temperature", 20.0, "Cel")]  # the finished one
    world.clock.advance(500)
    assert sensors.read_all(drivers)[0] == [("temperature", 21.0, "Cel")]
    assert world.clock.now - start == 1000  # no read slept
    assert dev.conversions == 3  # the running conversion was not restarted midway


def test_ds18b20_negative_and_fractional_temperatures():
    dev = simbus.SimDS18B20(1, -10.125)
    _world, drivers = _ds_rig(dev)
    assert sensors.read_all(drivers)[0] == [("temperature", -10.125, "Cel")]


def test_ds18b20_crc_error_is_counted_and_retried():
    dev = simbus.SimDS18B20(1, 19.0)
    world, drivers = _ds_rig(dev)
    dev.fail = "crc"
    assert sensors.read_all(drivers) == ([], 1)
    assert "CRC error" in drivers[0].last_error
    dev.fail = None
    world.clock.advance(1000)
    assert sensors.read_all(drivers) == ([("temperature", 19.0, "Cel")], 0)


def test_ds18b20_absent_is_an_error_not_a_crash():
    _world, drivers = _ds_rig()  # nothing on the bus
    assert sensors.read_all(drivers) == ([], 1)
    assert "no DS18x20" in drivers[0].last_error


def test_ds18b20_unplugged_mid_run_then_back():
    dev = simbus.SimDS18B20(1, 19.0)
    world, drivers = _ds_rig(dev)
    assert sensors.read_all(drivers)[1] == 0
    dev.fail = "absent"
    dev.power_cycle()
    world.clock.advance(1000)
    assert sensors.read_all(drivers) == ([], 1)
    assert "no presence pulse" in drivers[0].last_error
    dev.fail = None
    world.clock.advance(1000)
    # The power-on value is not reported: the driver converts again before reading.
    assert sensors.read_all(drivers) == ([("temperature", 19.0, "Cel")], 0)


def test_ds18b20_reset_between_conversion_and_read_is_not_a_reading():
    dev = simbus.SimDS18B20(1, 19.0)
    world, drivers = _ds_rig(dev)
    assert sensors.read_all(drivers)[1] == 0
    dev.power_cycle()  # a brown-out while the pipelined conversion ran
    world.clock.advance(1000)
    assert sensors.read_all(drivers) == ([], 1)
    assert "power-on value 85" in drivers[0].last_error
    world.clock.advance(1000)
    assert sensors.read_all(drivers) == ([("temperature", 19.0, "Cel")], 0)


def test_ds18b20_several_on_one_pin_by_rom():
    a = simbus.SimDS18B20(0x0A0B0C, 18.5)
    b = simbus.SimDS18B20(0x0D0E0F, 22.25)
    rom_hex = "".join("%02x" % x for x in b.rom)
    entries = [
        {"type": "ds18b20", "pin": 5, "rom": rom_hex, "name": "water"},
        {"type": "ds18b20", "pin": 5, "rom": "".join("%02x" % x for x in a.rom), "name": "air"},
    ]
    world, drivers = _ds_rig(a, b, entries=entries)
    start = world.clock.now
    readings, errors = sensors.read_all(drivers)
    assert errors == 0
    assert readings == [("water", 22.25, "Cel"), ("air", 18.5, "Cel")]
    assert world.clock.now - start == 750  # one conversion serves both: one wait, not two
    assert drivers[0]._bus is drivers[1]._bus
    # Next cycles: each entry's convert (SKIP ROM) restarts both sensors; neither may end up
    # reporting a stale value because of the other's pipelining.
    for water, air in ((30.0, 10.0), (31.5, 9.5)):
        b.temperature = water
        a.temperature = air
        world.clock.advance(5000)
        start = world.clock.now
        assert sensors.read_all(drivers) == ([("water", water, "Cel"), ("air", air, "Cel")], 0)
        assert world.clock.now == start


def test_ds18b20_search_finds_a_sensor_among_several():
    a = simbus.SimDS18B20(0x010203, 18.5)
    b = simbus.SimDS18B20(0x040506, 22.25)
    _world, drivers = _ds_rig(a, b)
    readings, errors = sensors.read_all(drivers)
    assert errors == 0 and readings[0][1] in (18.5, 22.25)
    found = drivers[0]._bus.ds.scan()
    assert sorted(bytes(r) for r in found) == sorted([a.rom, b.rom])
