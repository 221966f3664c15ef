"""Issue 18, items 1 and 5, end to end: firmware/main.py on the unix port, against the emulator,
on a simulated Wi-Fi board whose clock is not set until NTP answers.

The unix port has no ntptime: a stand-in on an extra path (written here) fails until a file
named ntp-ok is in the firmware's working folder, then succeeds without setting anything (the
host's clock is right). The board writes that file once it has taken QUEUED readings, and
prints the true time of each reading, which the test compares with what the emulator stored.
"""

import json
import subprocess

import pytest

from kpnthings import auth
from kpnthings_tools import demo, emulator, provision

TIMEOUT_S = 90
INTERVAL_S = 2
QUEUED = 4  # readings taken while NTP fails

NTPTIME = '''"""ntptime stand-in: a timeout until ./ntp-ok exists, then success, setting nothing."""
import os

host = "pool.ntp.org"
timeout = 1


def settime():
    try:
        os.stat("ntp-ok")
    except OSError:
        raise OSError(110)  # ETIMEDOUT, as a lost UDP answer
'''

# A board like the ESP32 on the unix board's pins. It asks NTP every cycle (a board asks 10 s,
# 20 s, 40 s ... after boot): kpnthings.app's retry interval, read at boot after the board.
BOARD = """from boards.unix import PINS, OUTPUT_PINS, ACTUATORS
import time
from kpnthings import clock

HAS_WIFI = True
CLOCK_TRUSTED = False
clock.NTP_RETRY_MS = 500
_n = [0]


def read_sensors():
    _n[0] += 1
    if _n[0] > %(queued)d:
        open("ntp-ok", "w").close()  # NTP answers from this reading on
    print("@@READ %%d %%d" %% (_n[0], time.time_ns() // 1000000))
    return [("counter", _n[0], None)]
%(extra)s"""


@pytest.fixture
def device():
    dvnuuid = provision.new_dvnuuid()
    secret = provision.new_secret()
    emu = emulator.Emulator(":memory:", [(dvnuuid, secret)], log=lambda line: None)
    server = emu.serve("127.0.0.1", 0)
    try:
        yield {"dvnuuid": dvnuuid, "secret": secret, "emu": emu, "url": server.url}
    finally:
        server.shutdown()


def _run(tmp_path, dev, cycles, queued=QUEUED, extra="", **config):
    extra_path = tmp_path / "extra"
    extra_path.mkdir()
    (extra_path / "ntptime.py").write_text(NTPTIME)
    (extra_path / "timeboard.py").write_text(BOARD % {"queued": queued, "extra": extra})
    cfg = {
        "dvnuuid": dev["dvnuuid"],
        "secret": dev["secret"],
        "url": dev["url"],
        "board": "timeboard",
        "wifi_ssid": "home",
        "wifi_password": "pw-secret-123",
        "interval_s": INTERVAL_S,
        "cycles": cycles,
    }
    cfg.update(config)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    env = dict(demo.firmware_env(path, extra_path=[extra_path]), KPN_CONFIG=str(path))
    proc = subprocess.run(
        [demo.micropython_binary(), str(demo.FIRMWARE)],
        cwd=str(tmp_path),
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    taken = {}
    for line in proc.stdout.splitlines():
        if line.startswith("@@READ "):
            n, ms = line.split()[1:]
            taken[int(n)] = int(ms) / 1000
    return proc.stdout, taken


def _stored(dev):
    """counter number -> the time the emulator stored it with (None: arrival), and the
    accepted messages."""
    bn = auth.base_name(dev["dvnuuid"])
    messages = [m for m in dev["emu"].messages(dev["dvnuuid"]) if m["outcome"] == "accepted"]
    stored = {}
    for m in messages:
        timed = "bt" in json.loads(m["body"])[0]
        for rec in m["records"]:
            if rec["n"] == bn + "counter":
                assert rec["v"] not in stored, "counter %d stored twice" % rec["v"]
                stored[rec["v"]] = rec["t"] if timed else None
    return stored, messages


def test_readings_queued_while_ntp_fails_are_stored_with_their_true_times(tmp_path, device):
    cycles = QUEUED + 2
    out, taken = _run(tmp_path, device, cycles)
    assert out.count("[clock] not set") >= QUEUED, out
    assert "[clock] set by NTP" in out, out
    assert out.count("waiting for NTP to date the readings") == QUEUED, out
    stored, messages = _stored(device)
    assert sorted(stored) == list(range(1, cycles + 1)), (stored, out)
    errors = [stored[n] - taken[n] for n in range(1, QUEUED + 1)]
    spacing = [stored[n + 1] - stored[n] - INTERVAL_S for n in range(1, QUEUED)]
    print(
        "dated %d of %d queued readings; time error %s s; spacing error %s s"
        % (sum(1 for n in range(1, QUEUED + 1) if stored[n] is not None), QUEUED, errors, spacing)
    )
    assert all(abs(e) <= 1 for e in errors), (errors, stored, taken)
    assert all(abs(e) <= 1 for e in spacing), (spacing, stored)
    # The pack that carried them says they were dated from ticks; the next is NTP's alone.
    first = messages[0]
    assert first["time_source"] == "ticks" and first["undated"] == 0, first["body"]
    assert messages[-1]["time_source"] == "ntp", messages[-1]["body"]
    info = device["emu"].device_info(device["dvnuuid"])
    assert info["time_source"] == "ntp" and info["undated_readings"] == 0


def test_readings_go_without_a_time_and_counted_when_ntp_never_answers(tmp_path, device):
    cycles = 5
    out, _ = _run(tmp_path, device, cycles, queued=99, undated_wait_s=3)
    assert "[clock] set by NTP" not in out
    stored, messages = _stored(device)
    assert sorted(stored) == list(range(1, cycles + 1)) and set(stored.values()) == {None}
    assert all(m["time_source"] == "none" for m in messages), messages
    assert sum(m["undated"] for m in messages) == cycles
    assert len(messages) < cycles  # the first readings waited 3 s for NTP, then went together
    assert device["emu"].device_info(device["dvnuuid"])["undated_readings"] == cycles


RTC_KEPT = """

def rtc_kept():  # as an ESP32 after a watchdog reset: the RTC ran on
    return True
"""

# As RTC_KEPT, and the clock shows a time before the firmware's build day: never believed.
RTC_BEFORE_BUILD = (
    RTC_KEPT
    + """
import kpnthings.clock
kpnthings.clock.MIN_VALID = 2**40
"""
)


def test_an_rtc_kept_through_the_reset_dates_readings_until_ntp_answers(tmp_path, device):
    cycles = QUEUED + 2
    out, taken = _run(tmp_path, device, cycles, extra=RTC_KEPT)
    assert "[clock] the RTC kept its time through the reset" in out, out
    assert "waiting for NTP" not in out  # a clock it believes: nothing waits
    stored, messages = _stored(device)
    assert sorted(stored) == list(range(1, cycles + 1))
    assert all(abs(stored[n] - taken[n]) <= 1 for n in stored), (stored, taken)
    sources = [m["time_source"] for m in messages]
    # Sent each cycle on the RTC's word, until NTP answers: then NTP's.
    assert sources == ["rtc"] * QUEUED + ["ntp"] * (cycles - QUEUED), sources


def test_an_rtc_before_the_build_day_is_not_believed(tmp_path, device):
    out, _ = _run(tmp_path, device, 3, queued=99, extra=RTC_BEFORE_BUILD, undated_wait_s=0)
    assert "the RTC kept its time" not in out and "[clock] not set" in out, out
    stored, messages = _stored(device)
    assert set(stored.values()) == {None} and len(stored) == 3
    assert [m["undated"] for m in messages] == [1, 1, 1]
