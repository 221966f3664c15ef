"""Configured sensors end to end: firmware/main.py on the MicroPython unix port reads the sensors
of examples/sensors.json through their simulated buses (tests/fakes/simbus.py) and the local
KPN Things emulator stores correctly named, unit-tagged readings; sensors that do not answer
are counted in sensorErrors while the loop goes on.

The unix board gets its simulated buses from a ``sensor_machine(entries)`` hook. The test runs a
copy of boards/ with the hook below appended, so it proves the firmware path whether or not the
board file carries the hook yet (a later definition simply wins).
"""

import json
import re
import shutil
from pathlib import Path

from kpnthings_tools import demo

ROOT = Path(__file__).resolve().parents[2]

HOOK_WIRED = '''

def sensor_machine(entries):
    """The sensors config.json lists, simulated behind their pins (tests/fakes/simbus.py)."""
    import simbus  # on MICROPYPATH with the other fakes

    from kpnthings import compat

    return simbus.world_for(entries, compat).machine()
'''

# Nothing wired behind any pin or bus: every DHT, DS18B20 and BME280 read fails.
HOOK_UNWIRED = """

def sensor_machine(entries):
    import simbus

    from kpnthings import compat

    return simbus.World(compat).machine()
"""


def _run(tmp_path, monkeypatch, hook, cycles=3):
    boards = tmp_path / "boards"
    shutil.copytree(ROOT / "boards", boards)
    with open(boards / "unix.py", "a") as f:
        f.write(hook)
    monkeypatch.setattr(demo, "MICROPYPATH", [tmp_path, *demo.MICROPYPATH])
    extra = json.loads((ROOT / "examples" / "sensors.json").read_text())
    rc, transcript = demo.run_demo(
        cycles=cycles, interval_s=1, extra_config=extra, out=lambda s: None
    )
    return rc, transcript.lines


def _stored(lines):
    """The records of each message the emulator stored, as {name: 'value unit'} dicts."""
    out = []
    for line in lines:
        m = re.match(r"  #\d+ 200 accepted: (.*?)(   <-.*)?$", line)
        if m:
            fields = {}
            for part in m.group(1).split(", "):
                name, _, value = part.partition("=")
                fields[name] = value
            out.append(fields)
    return out


def test_example_sensors_reach_kpn_things_named_and_unit_tagged(tmp_path, monkeypatch):
    rc, lines = _run(tmp_path, monkeypatch, HOOK_WIRED)
    assert rc == 0, "\n".join(lines)
    assert not [line for line in lines if "sensor failed" in line]
    stored = _stored(lines)
    assert len(stored) == 3
    for fields in stored:
        assert "sensorErrors" not in fields
        assert fields["temperature"] == "21.3 Cel"  # dht22
        assert fields["humidity"] == "48.0 %RH"
        assert fields["waterTemperature"] == "19.5 Cel"  # ds18b20, configured name
        # bme280: Bosch's worked example sits in the simulated chip's registers.
        assert fields["temperature2"] == "25.08 Cel"
        assert fields["pressure"] == "100653.25 Pa"
        assert fields["humidity2"].endswith(" %RH")
        assert fields["soilMoisture"].endswith(" %RH")
        assert fields["batteryVoltage"].endswith(" V")
        assert fields["door"] == "true"
        assert re.fullmatch(r"\d+", fields["counter"])
    # The simulated water meter keeps pulsing: the cumulative count grows.
    counts = [int(f["counter"]) for f in stored]
    assert counts == sorted(counts) and counts[-1] > counts[0]


def test_sensors_that_do_not_answer_are_counted_and_the_loop_goes_on(tmp_path, monkeypatch):
    rc, lines = _run(tmp_path, monkeypatch, HOOK_UNWIRED)
    assert rc == 0, "\n".join(lines)  # every uplink accepted, the downlink applied
    stored = _stored(lines)
    assert len(stored) == 3
    for fields in stored:
        assert fields["sensorErrors"] == "3"  # dht22, ds18b20, bme280
        assert "door" in fields and "soilMoisture" in fields and "counter" in fields
        assert "waterTemperature" not in fields and "pressure" not in fields
    failed = " ".join(line for line in lines if "sensor failed" in line)
    assert "sensors[0] (dht22): dht22: timeout" in failed
    assert "sensors[1] (ds18b20)" in failed
    assert "sensors[2] (bme280): bme280 at 0x76: no answer" in failed
