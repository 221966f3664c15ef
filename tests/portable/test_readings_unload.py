"""What the loop keeps after boot besides the device: the board's readings merged with the
config's sensors (kpnthings.sensors.Readings), and kpnthings.unload."""

import sys

import kpnthings


class Board:
    CLOCK_TRUSTED = True

    def __init__(self, fail=False):
        self.fail = fail

    def read_sensors(self):
        if self.fail:
            raise OSError("bus")
        return [("temperature", 20.0, "Cel"), ("led", 1, None)]


class Sensor:
    def __init__(self, readings, error=None):
        self.readings = readings
        self.error = error

    def read(self):
        if self.error:
            raise OSError(self.error)
        return list(self.readings)


def test_readings_merge_board_and_sensors_and_count_errors():
    from kpnthings.sensors import Readings

    logged = []
    r = Readings(Board(), [Sensor([("temperature", 21.5, "Cel")])], logged.append)
    assert r.CLOCK_TRUSTED is True
    assert r.read_sensors() == [("led", 1, None), ("temperature", 21.5, "Cel")]
    dht = Sensor([], "timeout")
    dht.label = "sensors[0] (dht)"
    r = Readings(Board(fail=True), [Sensor([("humidity", 40, "%RH")]), dht], logged.append)
    out = r.read_sensors()
    assert out == [("humidity", 40, "%RH"), ("sensorErrors", 2, None)]
    failed = [x for x in logged if x.startswith("[kpn] sensor failed: sensors[0] (dht): ")]
    assert len(failed) == 1 and failed[0].endswith("timeout"), logged
    assert any(line.startswith("[kpn] board sensors failed") for line in logged)


def test_unload_drops_the_module_and_the_package_attribute():
    probe = Sensor([])  # stands in for a module object (MicroPython cannot make one by hand)
    sys.modules["kpnthings._unload_probe"] = probe
    setattr(kpnthings, "_unload_probe", probe)  # noqa: B010 - as an import binds it
    kpnthings.unload("_unload_probe", "not_loaded")
    assert "kpnthings._unload_probe" not in sys.modules
    assert not hasattr(kpnthings, "_unload_probe")
