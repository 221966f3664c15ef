"""What the sensor driver tests share: the simulated buses and pins (tests/fakes/simbus.py), loaded
on every runtime, and drivers built on them from config entries."""

import sys

from _support import data_path

try:
    import simbus
except ImportError:  # CPython: tests/fakes is not on the path (MicroPython has it first)
    # Load just the stand-ins the drivers import, by path: the whole folder on sys.path would
    # also expose its machine.py and network.py to every later test in the session.
    import importlib.util

    for _name in (
        "sim_dht",
        "sim_onewire",
        "sim_i2c",
        "simbus",
        "_onewire",
        "onewire",
        "ds18x20",
        "dht",
    ):
        _spec = importlib.util.spec_from_file_location(_name, data_path("../fakes/%s.py" % _name))
        _mod = importlib.util.module_from_spec(_spec)
        sys.modules[_name] = _mod
        _spec.loader.exec_module(_mod)
    import simbus

from kpnthings import sensors

PINS = set(range(0, 40))


def rig(entries, world=None):
    """Validated entries, a simulated world, and the drivers built on it."""
    world = world or simbus.World()
    drivers = sensors.build(sensors.validate(entries, PINS), None, world.machine(), world.clock)
    return world, drivers


def by_name(readings):
    """{name: (value, unit)} of a read_all()'s readings; a name given twice fails the test."""
    out = {}
    for name, value, unit in readings:
        assert name not in out, "duplicate reading name " + name
        out[name] = (value, unit)
    return out
