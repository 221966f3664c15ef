"""What the sensor driver tests share: the simulated buses and pins (tests/fakes/simbus.py), loaded
on every runtime, and drivers built on them from config entries."""

import sys

from _support import data_path
from kpnthings import sensors

# The stand-ins the drivers import (tests/fakes): MicroPython has the folder first on its path.
# CPython loads each by path, the ones not loaded yet (another test file may have loaded simbus
# alone): the whole folder on sys.path would also expose its machine.py and network.py to every
# later test in the session.
_FAKES = ("sim_dht", "sim_onewire", "sim_i2c", "simbus", "_onewire", "onewire", "ds18x20", "dht")
if sys.implementation.name == "micropython":
    import simbus
else:
    import importlib.util

    for _name in _FAKES:
        if _name in sys.modules:
            continue
        _spec = importlib.util.spec_from_file_location(_name, data_path("../fakes/%s.py" % _name))
        _mod = importlib.util.module_from_spec(_spec)
        sys.modules[_name] = _mod
        _spec.loader.exec_module(_mod)
    simbus = sys.modules["simbus"]


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
