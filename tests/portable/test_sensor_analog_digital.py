"""The analog and digital input drivers over simulated pins (tests/fakes/simbus.py): scaling,
clamping, attenuation, inversion and pulls."""

from _sensor_rig import by_name, rig, simbus

from kpnthings import sensors


def test_analog_scales_to_the_configured_unit():
    world = simbus.World()
    world.adc[34] = 2048 << 4  # mid-scale, as read_u16 reports a 12-bit converter
    entries = [
        {"type": "analog", "pin": 34, "name": "soilMoisture", "unit": "%RH",
         "scale": [0, 4095, 0, 100]},
    ]  # fmt: skip
    world, drivers = rig(entries, world)
    readings, errors = sensors.read_all(drivers)
    assert errors == 0
    assert readings == [("soilMoisture", round(2048 * 100 / 4095, 4), "%RH")]
    assert world.adc_reads == 4  # the default averaging


def test_analog_battery_divider_and_clamp():
    world = simbus.World()
    world.adc[35] = 0xFFFF
    entries = [
        {"type": "analog", "pin": 35, "name": "batteryVoltage", "unit": "V", "bits": 16,
         "scale": [0, 65535, 0, 6.6], "samples": 1},
        {"type": "analog", "pin": 34, "name": "level", "scale": [1000, 3000, 0, 100],
         "clamp": True},
    ]  # fmt: skip
    world.adc[34] = 4000 << 4  # beyond in_max: clamped to out_max
    world, drivers = rig(entries, world)
    got = by_name(sensors.read_all(drivers)[0])
    assert got["batteryVoltage"] == (6.6, "V")
    assert got["level"] == (100, None)


def test_analog_without_scale_reports_raw_and_sets_esp32_attenuation():
    world = simbus.World()
    world.adc[36] = 1234 << 4
    world, drivers = rig([{"type": "analog", "pin": 36, "atten": 11}], world)
    assert sensors.read_all(drivers)[0] == [("analog", 1234, None)]
    assert drivers[0]._adc.attenuation == simbus.SimADC.ATTN_11DB


def test_analog_attenuation_is_ignored_where_the_port_has_none():
    world = simbus.World()
    world.adc[26] = 1000 << 4
    machine = world.machine()

    class PicoADC(simbus.SimADC):  # rp2: no atten() and no ATTN_* constants
        _world = world
        atten = None
        ATTN_11DB = None

    machine.ADC = PicoADC
    drivers = sensors.build(
        [{"type": "analog", "pin": 26, "atten": 11}], None, machine, world.clock
    )
    assert sensors.read_all(drivers) == ([("analog", 1000, None)], 0)
    assert drivers[0]._adc.attenuation is None


def test_digital_input_reports_a_boolean():
    world = simbus.World()
    entries = [
        {"type": "digital", "pin": 14, "name": "door", "pull": "up"},
        {"type": "digital", "pin": 15, "name": "presence", "invert": True},
    ]
    world, drivers = rig(entries, world)
    # Nothing drives 14: its pull-up holds it high. 15 floats low, inverted: True.
    assert sensors.read_all(drivers)[0] == [("door", True, None), ("presence", True, None)]
    world.set_level(14, 0)
    world.set_level(15, 1)
    assert sensors.read_all(drivers)[0] == [("door", False, None), ("presence", False, None)]
