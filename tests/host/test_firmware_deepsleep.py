"""Issue 20, part 3: the deep-sleep duty cycle end to end. firmware/main.py runs on the unix port
against the local emulator, one process per wake: tests/fakes/machine.py's deepsleep() keeps RTC
memory in a file (KPN_FAKE_RTC), sleeps the time asked and ends the process, and the next process
boots as a wake (reset_cause() DEEPSLEEP_RESET), from main.py, as a board does.

The board (written here) is the ESP32's shape on the unix board's pins: Wi-Fi (the fake network,
which prints "[wifi] connecting to" when the radio is asked to join), a clock that only NTP or
an RTC kept through the reset makes good, and one reading a wake: a counter kept in a file, one
more at each reading, so a reading lost or sent twice shows. NTP is a stand-in that answers
(the host's clock is right) and prints @@NTP, unless a file named ntp-fails exists.
"""

import json
import subprocess

import pytest

from kpnthings import auth
from kpnthings_tools import demo, emulator, provision

TIMEOUT_S = 60

NTPTIME = '''"""ntptime stand-in: answers, setting nothing (the host's clock is right), unless
./ntp-fails exists."""
import os

host = "pool.ntp.org"
timeout = 1


def settime():
    print("@@NTP")
    try:
        os.stat("ntp-fails")
    except OSError:
        return
    raise OSError(110)
'''

BOARD = """try:
    from boards.unix import PINS, OUTPUT_PINS, ACTUATORS
except ImportError:  # the harness's flat layout of the board files
    from unix import PINS, OUTPUT_PINS, ACTUATORS
import machine

HAS_WIFI = True
CLOCK_TRUSTED = False


def rtc_kept():  # as boards/esp32.py
    return machine.reset_cause() in (machine.DEEPSLEEP_RESET, machine.WDT_RESET, machine.SOFT_RESET)


def read_sensors():
    try:
        with open("count") as f:
            n = int(f.read())
    except OSError:
        n = 0
    n += 1
    with open("count", "w") as f:
        f.write(str(n))
    import sys

    print("@@READ %d network loaded: %s" % (n, "network" in sys.modules))
    return [("counter", n, None)]
"""


@pytest.fixture
def device(tmp_path):
    dvnuuid = provision.new_dvnuuid()
    secret = provision.new_secret()
    emu = emulator.Emulator(":memory:", [(dvnuuid, secret)], log=lambda line: None)
    server = emu.serve("127.0.0.1", 0)
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "ntptime.py").write_text(NTPTIME)
    (extra / "sleepboard.py").write_text(BOARD)
    try:
        yield {"dvnuuid": dvnuuid, "secret": secret, "emu": emu, "url": server.url, "dir": tmp_path}
    finally:
        server.shutdown()


def write_config(dev, **changes):
    cfg = {
        "dvnuuid": dev["dvnuuid"],
        "secret": dev["secret"],
        "url": dev["url"],
        "board": "sleepboard",
        "wifi_ssid": "home",
        "wifi_password": "pw-secret-123",
        "interval_s": 1,
        "timeout_s": 2,
        "retry_base_s": 1,
        "retry_cap_s": 2,
        "sleep": "deep",
    }
    cfg.update(changes)
    path = dev["dir"] / "config.json"
    path.write_text(json.dumps(cfg))
    return path


def boot(dev, env=None):
    """One boot (a wake, or the power-on when no RTC file exists): its stdout."""
    path = dev["dir"] / "config.json"
    env = env or demo.firmware_env(path, extra_path=[dev["dir"] / "extra"])
    env["KPN_FAKE_RTC"] = str(dev["dir"] / "rtc")
    proc = subprocess.run(
        [demo.micropython_binary(), str(demo.FIRMWARE)],
        cwd=str(dev["dir"]),
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "Traceback" not in out, out
    assert dev["secret"] not in out
    return proc.stdout


def run_wakes(dev, limit=30, env=None):
    """Boot until the firmware says it is done (its last cycle returns): the stdout of each."""
    outs = []
    while len(outs) < limit:
        out = boot(dev, env)
        outs.append(out)
        if "[boot] done after" in out:
            return outs
        assert "[machine] deepsleep" in out, out
    raise AssertionError("no end after %d boots" % limit)


def stored(dev):
    """counter value -> the time the emulator stored (None: none sent), and accepted messages."""
    bn = auth.base_name(dev["dvnuuid"])
    messages = [m for m in dev["emu"].messages(dev["dvnuuid"]) if m["outcome"] == "accepted"]
    out = {}
    for m in messages:
        timed = "bt" in json.loads(m["body"])[0]
        for rec in m["records"]:
            if rec["n"] == bn + "counter":
                assert rec["v"] not in out, "counter %d stored twice" % rec["v"]
                out[rec["v"]] = rec["t"] if timed else None
    return out, messages


def counters(messages, dev):
    """How many counter readings each message carried (health records, on by default, beside)."""
    bn = auth.base_name(dev["dvnuuid"])
    return [sum(1 for r in m["records"] if r["n"] == bn + "counter") for m in messages]


def health_names(message, dev):
    """The health records a message carried (docs/health.md), by name without the base name."""
    bn = auth.base_name(dev["dvnuuid"])
    names = ("bootCount", "resetCause", "uptime", "firmware", "outboxDepth", "deadLetters")
    return {
        r["n"][len(bn) :]: r.get("v", r.get("vs"))
        for r in message["records"]
        if r["n"][len(bn) :] in names
    }


def wifi_started(out):
    return "[wifi] connecting to" in out


def test_each_wake_boots_from_main_and_sends_every_third_cycle_losing_nothing(device):
    write_config(device, cycles=7, send_every_cycles=3)
    outs = run_wakes(device)
    assert len(outs) == 7  # one boot per cycle
    assert all(out.count("[boot] kpnthings") == 1 for out in outs)
    # Sends: the power-on wake, then every third cycle, and the last; Wi-Fi in those alone.
    sending = [i + 1 for i, out in enumerate(outs) if "-> 200 accepted" in out]
    assert sending == [1, 4, 7], outs
    assert [i + 1 for i, out in enumerate(outs) if wifi_started(out)] == sending
    for i in (2, 3, 5, 6):
        assert "[sleep] cycle %d: stored" % i in outs[i - 1], outs[i - 1]
        # Not even the WLAN object was made (tests/fakes/network.py never imported).
        assert "@@READ %d network loaded: False" % i in outs[i - 1], outs[i - 1]
    # Every reading once, in the order taken, across the sleeps.
    values, messages = stored(device)
    assert sorted(values) == list(range(1, 8)), values
    assert counters(messages, device) == [1, 3, 3], messages
    # Health (every 60 cycles by default): the whole set once, after the power-on; a wake is
    # not a boot to it, so no later send carries one, and the boot count stays 1.
    assert health_names(messages[0], device)["bootCount"] == 1
    assert [bool(health_names(m, device)) for m in messages] == [True, False, False]
    # The clock: NTP once, at the power-on wake; every later wake trusts the RTC.
    assert sum(out.count("@@NTP") for out in outs) == 1
    assert "trusted from the RTC" not in outs[0]
    assert all("[clock] trusted from the RTC after a deep sleep" in out for out in outs[1:])
    assert all(values[n] is not None for n in values)  # each dated by the clock
    assert all(m["time_source"] == "ntp" for m in messages), messages
    # The cycle number ran on through the sleeps, and the last wake says so.
    assert "[boot] done after 7 cycles" in outs[-1]


def test_readings_of_wakes_without_a_send_wait_through_a_failing_server(device):
    # The server is unreachable for the first wakes that send: every reading stays in the
    # outbox across the sleeps and goes once it is back, none lost, none twice.
    good_url = device["url"]
    write_config(device, cycles=6, send_every_cycles=2, url="http://127.0.0.1:9")
    outs = [boot(device), boot(device), boot(device)]
    assert all("[machine] deepsleep" in out for out in outs)
    assert "-> 200 accepted" not in "".join(outs)
    assert device["emu"].messages(device["dvnuuid"]) == []
    write_config(device, cycles=6, send_every_cycles=2, url=good_url)
    outs += run_wakes(device)
    values, _ = stored(device)
    assert sorted(values) == list(range(1, 7)), (values, outs)
    assert "[boot] done after 6 cycles" in outs[-1]


def test_the_backoff_of_a_failed_send_holds_the_radio_off_across_wakes(device):
    write_config(
        device,
        cycles=20,
        send_every_cycles=1,
        url="http://127.0.0.1:9",
        retry_base_s=4,
        retry_cap_s=8,
    )
    outs = [boot(device) for _ in range(4)]
    assert wifi_started(outs[0]) and "no answer retry" in outs[0], outs[0]
    # The first retry waits 2-4 s: the next wakes (1 s apart) store without Wi-Fi.
    assert not wifi_started(outs[1]) and "[sleep] cycle 2: stored" in outs[1], outs[1]


def test_a_power_on_forgets_the_rtc_and_asks_ntp_again(device):
    write_config(device, cycles=2)
    run_wakes(device)
    (device["dir"] / "rtc").unlink()  # a power cut: RTC memory and the clock's word are gone
    write_config(device, cycles=2)
    outs = run_wakes(device)
    assert "@@NTP" in outs[0] and "trusted from the RTC" not in outs[0]
    assert "[boot] done after 2 cycles" in outs[-1]


def test_a_clock_ntp_never_set_keeps_every_wake_sending_until_it_is(device):
    (device["dir"] / "ntp-fails").write_text("")
    # As an ESP32's RTC after a power cut (2000-01-01): a time before the build's day, never
    # believed, however many deep sleeps it runs through.
    with open(device["dir"] / "extra" / "sleepboard.py", "a") as f:
        f.write("import kpnthings.clock\nkpnthings.clock.MIN_VALID = 2**40\n")
    write_config(device, cycles=3, send_every_cycles=5, undated_wait_s=0)
    outs = run_wakes(device)
    assert all(wifi_started(out) for out in outs)  # due while the clock is not good
    assert all("trusted from the RTC" not in out for out in outs)
    values, _ = stored(device)
    assert sorted(values) == [1, 2, 3] and set(values.values()) == {None}


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"sleep": "hibernate"}, 'sleep: must be "deep" or "light"'),
        ({"sleep": "dee"}, 'sleep: must be "deep" or "light"'),
        ({"sleep": True}, 'sleep: must be "deep" or "light"'),
        ({"board": "unix"}, 'sleep: must be "light" on this board'),
        ({"send_every_cycles": 0}, "send_every_cycles: must be a whole number"),
    ],
)
def test_a_bad_sleep_config_stops_the_boot_naming_the_field(device, changes, says):
    write_config(device, **changes)
    path = device["dir"] / "config.json"
    env = demo.firmware_env(path, extra_path=[device["dir"] / "extra"])
    env["KPN_FAKE_RTC"] = str(device["dir"] / "rtc")
    proc = subprocess.run(
        [demo.micropython_binary(), str(demo.FIRMWARE)],
        cwd=str(device["dir"]),
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert says in proc.stdout, proc.stdout
    assert "[machine] deepsleep" not in proc.stdout and not wifi_started(proc.stdout)


@pytest.mark.parametrize("runtime", ["micropython-src", "mpy-xtensawin"])
def test_the_duty_cycle_runs_from_the_files_a_board_gets(device, runtime, request):
    # The library as .mpy for the ESP32 (and from .py on the harness's path), as deployed.
    if runtime.startswith("mpy-"):
        request.getfixturevalue("mpy_built")
    env = request.getfixturevalue("mp_env")(runtime, extra_path=[str(device["dir"] / "extra")])
    env["KPN_CONFIG"] = str(write_config(device, cycles=4, send_every_cycles=2))
    outs = run_wakes(device, env=env)
    assert [i + 1 for i, out in enumerate(outs) if wifi_started(out)] == [1, 3, 4]
    values, messages = stored(device)
    assert sorted(values) == [1, 2, 3, 4] and counters(messages, device) == [1, 2, 1]


def test_health_falls_due_by_cycles_across_wakes_and_only_a_reset_sends_the_whole_set(device):
    # health_every 3 with a send every third wake: the power-on's whole set at cycle 1, the
    # changing part at cycles 4 and 7 (counted across the sleeps in RTC memory); the boot count
    # file is written at the power-on only, never by a wake.
    write_config(device, cycles=7, send_every_cycles=3, health_every=3)
    outs = run_wakes(device)
    _, messages = stored(device)
    assert counters(messages, device) == [1, 3, 3]
    sets = [health_names(m, device) for m in messages]
    assert sets[0]["bootCount"] == 1 and "firmware" in sets[0], sets[0]
    for later in sets[1:]:
        assert "uptime" in later and "outboxDepth" in later, later
        assert "bootCount" not in later and "firmware" not in later, later
    boots = list(device["dir"].rglob("boots"))  # beside the outbox
    assert len(boots) == 1 and boots[0].read_text() == "1", (boots, outs)
    # A reset that is not a wake (the RTC file gone: a power cut) is a boot again: the whole
    # set, and the count goes to 2.
    (device["dir"] / "rtc").unlink()
    write_config(device, cycles=1, health_every=3)
    boot(device)
    _, messages = stored(device)
    assert health_names(messages[-1], device)["bootCount"] == 2
