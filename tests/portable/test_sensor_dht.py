"""The DHT22 / DHT11 driver over the firmware's dht module, simulated (tests/fakes/simbus.py): what
it reads, how often it asks, and the errors it counts without stopping the loop."""

from _sensor_rig import by_name, rig, simbus

from kpnthings import sensors


def _dht_rig(kind="dht22", temperature=21.5, humidity=55.0):
    world = simbus.World()
    dev = world.add_dht(4, simbus.SimDHT(kind, temperature, humidity))
    world, drivers = rig([{"type": kind, "pin": 4}], world)
    return world, dev, drivers


def test_dht22_reads_temperature_and_humidity():
    _world, _dev, drivers = _dht_rig(temperature=-12.3, humidity=87.6)
    readings, errors = sensors.read_all(drivers)
    assert errors == 0
    assert readings == [("temperature", -12.3, "Cel"), ("humidity", 87.6, "%RH")]


def test_dht11_reads_whole_numbers():
    _world, _dev, drivers = _dht_rig("dht11", 23, 41)
    readings, _ = sensors.read_all(drivers)
    assert readings == [("temperature", 23, "Cel"), ("humidity", 41, "%RH")]


def test_dht22_is_not_asked_more_often_than_every_two_seconds():
    world, dev, drivers = _dht_rig()
    first, _ = sensors.read_all(drivers)
    dev.temperature = 30.0
    world.clock.advance(1000)
    again, _ = sensors.read_all(drivers)
    assert again == first and dev.reads == 1
    world.clock.advance(1000)
    later, _ = sensors.read_all(drivers)
    assert by_name(later)["temperature"] == (30.0, "Cel") and dev.reads == 2


def test_dht22_checksum_error_is_counted_and_the_loop_goes_on():
    world = simbus.World()
    dev = world.add_dht(4, simbus.SimDHT("dht22", 21.5, 55.0))
    world.levels[14] = 1
    entries = [{"type": "dht22", "pin": 4}, {"type": "digital", "pin": 14, "name": "door"}]
    world, drivers = rig(entries, world)
    dev.fail_next("checksum", 1)
    readings, errors = sensors.read_all(drivers)
    assert errors == 1
    assert readings == [("door", True, None)]  # the other sensor still reports
    assert "checksum error" in drivers[0].last_error and "sensors[0] (dht22)" in (
        drivers[0].last_error
    )
    world.clock.advance(2000)  # next cycle: tried again, and it answers
    readings, errors = sensors.read_all(drivers)
    assert errors == 0 and by_name(readings)["temperature"] == (21.5, "Cel")


def test_dht22_timeout_and_absent_sensor_are_errors():
    world, dev, drivers = _dht_rig()
    dev.fail_next("timeout")
    for _ in range(3):
        readings, errors = sensors.read_all(drivers)
        assert (readings, errors) == ([], 1)
        assert "timeout" in drivers[0].last_error
        world.clock.advance(2000)
    assert dev.reads == 3  # every cycle tries again
    _world2, drivers2 = rig([{"type": "dht22", "pin": 4}])  # nothing wired to the pin
    assert sensors.read_all(drivers2) == ([], 1)


def test_dht22_frame_that_passes_the_checksum_but_is_empty_is_rejected():
    _world, _dev, drivers = _dht_rig(temperature=0.0, humidity=0.0)
    assert sensors.read_all(drivers) == ([], 1)
    assert "empty frame" in drivers[0].last_error
