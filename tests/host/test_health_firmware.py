"""Health records end to end (docs/health.md): the firmware on the MicroPython unix port, against
the local emulator, which checks every pack's token against its exact bytes. The whole set
arrives in the first uplink of each boot, the changing part every health_every cycles after,
none at all with 0; the boot count goes up by one a boot."""

import pytest
from test_firmware_e2e import device, run_firmware, values_by_message, write_config

__all__ = ("device",)  # the fixture, shared with test_firmware_e2e

WHOLE = ("heapFree", "heapLargest", "uptime", "bootCount", "firmware", "outboxDepth")
EVERY = ("heapFree", "heapLargest", "uptime", "outboxDepth", "deadLetters")
ALL = WHOLE + ("resetCause", "droppedReadings", "deadLetters", "wifiRssi", "lastError")


def _boot(tmp_path, device, env, **config):
    proc = run_firmware(write_config(tmp_path, device, **config), env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert device["secret"] not in proc.stdout + proc.stderr
    return proc.stdout


@pytest.mark.parametrize("runtime", ["boards-package", "mpy-xtensawin"])
def test_health_in_the_first_uplink_of_each_boot_then_every_n_cycles(
    tmp_path, device, runtime, request
):
    env = None
    if runtime != "boards-package":
        request.getfixturevalue("mpy_built")
        env = request.getfixturevalue("mp_env")(runtime)
    out = _boot(tmp_path, device, env, cycles=5, health_every=2)
    assert out.count("-> 200 accepted") == 5, out
    msgs = values_by_message(device)
    assert [m[0] for m in msgs] == ["accepted"] * 5
    first = msgs[0][1]
    for name in WHOLE + ("droppedReadings", "deadLetters"):
        assert name in first, (name, first)
    assert first["bootCount"] == 1
    assert first["firmware"] == __import__("kpnthings").__version__
    # the outbox holds the cycle's readings (the unix board's 3) until KPN accepts them
    assert first["outboxDepth"] == 3 and first["deadLetters"] == 0
    assert 0 < first["heapLargest"] <= first["heapFree"]
    assert "temperature" in first  # in the same signed pack as the readings
    for i in (2, 4):  # cycles 3 and 5
        for name in EVERY:
            assert name in msgs[i][1], (i, name)
        assert "bootCount" not in msgs[i][1] and "firmware" not in msgs[i][1]
    for i in (1, 3):
        assert not [n for n in ALL if n in msgs[i][1]], msgs[i][1]
    # A second boot over the same flash: counted once more.
    out = _boot(tmp_path, device, env, cycles=1, health_every=2)
    assert values_by_message(device)[5][1]["bootCount"] == 2


def test_health_every_0_sends_none(tmp_path, device):
    _boot(tmp_path, device, None, cycles=4, health_every=0)
    msgs = values_by_message(device)
    assert len(msgs) == 4
    for _, vals in msgs:
        assert "temperature" in vals
        assert not [n for n in ALL if n in vals], vals
    assert not (tmp_path / "outbox" / "boots").exists()


def test_default_is_every_60_cycles_after_the_first(tmp_path, device):
    _boot(tmp_path, device, None, cycles=3)
    msgs = values_by_message(device)
    assert "bootCount" in msgs[0][1] and "uptime" in msgs[0][1]
    assert not [n for n in ALL if n in msgs[1][1] or n in msgs[2][1]]
