"""kpnthings.deepsleep on every runtime: the state kept in RTC memory (written, read back, and
refused when it is not ours), the clock trusted from it, and one wake's decision, with a machine
module put in sys.modules whose deepsleep() records the time asked and returns (the firmware end
to end, one process a wake, is tests/host/test_firmware_deepsleep.py)."""

import sys

from _device_support import CONFIG, Board, MemOutbox, Result, Transport

from _support import KeptModules
from kpnthings import clock, deepsleep

NOW = clock.MIN_VALID + 86400


class _RTC:
    def __init__(self, machine):
        self.m = machine

    def memory(self, data=None):
        if data is None:
            return self.m.kept
        self.m.kept = bytes(data)
        return None


class Machine:
    """machine as deepsleep uses it: RTC().memory(), reset_cause(), deepsleep(ms)."""

    DEEPSLEEP_RESET = 4
    PWRON_RESET = 1

    def __init__(self, cause=4, kept=b""):
        self.cause = cause
        self.kept = kept
        self.slept = []

    def RTC(self):
        return _RTC(self)

    def reset_cause(self):
        return self.cause

    def deepsleep(self, ms):
        self.slept.append(ms)


class _Time:
    def __init__(self, t):
        self.t = t

    def time(self):
        return self.t

    def gmtime(self, t=0):
        return (1970, 1, 1, 0, 0, 0, 3, 1)


def _with_machine(machine, fn, *args):
    old = sys.modules.get("machine")
    sys.modules["machine"] = machine
    try:
        return fn(*args)
    finally:
        if old is None:
            del sys.modules["machine"]
        else:
            sys.modules["machine"] = old


def _state(cycle=1, next_send=4, ntp_at=NOW - 60, hold_at=0, good=1, health=0):
    # boots, cycle, next_send, ntp_at, hold_at, undated_at, good, tries, auth, health
    return [cycle, cycle, next_send, ntp_at, hold_at, 0, good, 0, 0, health]


def _wake(machine, config, transport, outbox, now=NOW, polls=None):
    """configure() then one Device.run() on `machine`: (device, clock, logs)."""
    logs = []
    c = clock.Clock(trusted=False, time_module=_Time(now))

    def link_ready():
        polls.append(1)
        return True

    def run():
        deepsleep.configure(config, c, logs.append)
        dev = deepsleep.Device(
            config,
            Board(),
            transport,
            None,
            outbox=outbox,
            now=c.unix_time,
            log=logs.append,
            clock_trusted=lambda: c.trusted,
            sleep_ms=lambda ms: None,
            link_ready=None if polls is None else link_ready,
        )
        dev.run(cycles=config.get("cycles"), interval_s=60)
        return dev

    return _with_machine(machine, run), c, logs


def _kept(machine):
    return deepsleep.read_memory(machine)


def test_rtc_memory_is_read_back_and_refused_when_it_is_not_ours():
    m = Machine()
    st = [3, 17, 20, NOW, NOW + 5, 0, 1, 2, 0, -4]  # health: minus the boot count, signed
    deepsleep.write_memory(m, st)
    assert len(m.kept) < 2048 and deepsleep.read_memory(m) == st
    torn = bytearray(m.kept)
    torn[9] ^= 1
    for other in (b"", bytes(torn), b"XXXX" + m.kept[4:], m.kept[:-1]):
        m.kept = other
        assert deepsleep.read_memory(m) is None


def test_the_clock_is_trusted_from_the_rtc_only_if_ntp_set_it_less_than_resync_ago():
    with KeptModules():
        for st, now, resync_h, trusted in (
            (_state(), NOW, None, True),
            (_state(ntp_at=NOW - 13 * 3600), NOW, None, False),  # 12 h by default
            (_state(ntp_at=NOW - 13 * 3600), NOW, 24, True),
            (_state(ntp_at=NOW - 13 * 3600), NOW, 0, True),  # 0: never again
            (_state(good=0), NOW, None, False),
            (_state(), clock.MIN_VALID - 1, None, False),  # an RTC before the build's day
            (None, NOW, None, False),  # a power-on: nothing kept
        ):
            m = Machine()
            if st is not None:
                deepsleep.write_memory(m, st)
            c = clock.Clock(trusted=False, time_module=_Time(now))
            cfg = dict(CONFIG, ntp_resync_h=resync_h)
            _with_machine(m, deepsleep.configure, cfg, c, lambda line: None)
            assert (c.trusted is True) == trusted, (st, now, resync_h)
            assert deepsleep._state[0] == (st[0] + 1 if st else 1)  # this boot counted


def test_a_wake_that_is_not_due_stores_and_sleeps_without_touching_the_link():
    with KeptModules():
        m, box, transport, polls = Machine(), MemOutbox(), Transport(), []
        deepsleep.write_memory(m, _state(cycle=1, next_send=4))
        cfg = dict(CONFIG, send_every_cycles=3)
        dev, c, logs = _wake(m, cfg, transport, box, polls=polls)
        assert c.trusted is True and transport.bodies == [] and polls == []
        assert len(box) == 3 and dev.cycles_done == 2
        assert len(m.slept) == 1 and 59000 <= m.slept[0] <= 60000
        kept = _kept(m)
        assert kept[1] == 2 and kept[2] == 4  # cycle 2 done; the send still at cycle 4
        assert "[sleep] cycle 2: stored, 3 readings queued; sending at cycle 4" in logs


def test_a_due_wake_sends_what_earlier_wakes_stored_and_schedules_the_next_send():
    with KeptModules():
        m, box, transport, polls = Machine(), MemOutbox(), Transport(), []
        for i in range(6):  # two earlier wakes' readings
            box.append({"n": "counter", "v": i, "t": NOW - 120})
        deepsleep.write_memory(m, _state(cycle=3, next_send=4))
        _wake(m, dict(CONFIG, send_every_cycles=3), transport, box, polls=polls)
        assert len(transport.bodies) == 1 and polls  # the link was brought up
        assert len(transport.pack(0)) == 9 and len(box) == 0
        kept = _kept(m)
        assert kept[1] == 4 and kept[2] == 7 and kept[4] == 0


def test_a_failed_send_holds_the_next_wakes_off_the_radio():
    with KeptModules():
        m, box = Machine(), MemOutbox()
        deepsleep.write_memory(m, _state(cycle=3, next_send=4))
        cfg = dict(CONFIG, send_every_cycles=1, retry_base_s=100, retry_cap_s=200)
        failing = Transport(Result(None, "retry", error="timed out"))
        _wake(m, cfg, failing, box, polls=[])
        kept = _kept(m)
        assert NOW + 50 <= kept[4] <= NOW + 101 and kept[7] == 1  # the backoff, carried
        polls, transport = [], Transport()
        _wake(m, cfg, transport, box, now=NOW + 10, polls=polls)  # due by cycle, but held
        assert polls == [] and transport.bodies == [] and len(box) == 6
        polls = []
        _wake(m, cfg, transport, box, now=kept[4], polls=polls)  # the hold is over
        assert polls and len(transport.bodies) == 1 and len(box) == 0
        assert _kept(m)[4] == 0 and _kept(m)[7] == 0


def test_the_first_wake_after_a_power_on_sends_and_the_last_one_does_not_sleep():
    with KeptModules():
        m, box, transport = Machine(cause=Machine.PWRON_RESET), MemOutbox(), Transport()
        cfg = dict(CONFIG, send_every_cycles=10, undated_wait_s=0)  # no clock: they go undated
        _wake(m, cfg, transport, box)
        assert len(transport.bodies) == 1 and _kept(m)[0:3] == [1, 1, 11]
        m.cause = Machine.DEEPSLEEP_RESET
        m.slept = []
        _wake(m, dict(cfg, cycles=2), transport, box)
        assert len(transport.bodies) == 2 and m.slept == []  # the last cycle sends, then ends


def test_the_wait_for_ntp_runs_over_wakes_then_the_readings_go_undated():
    with KeptModules():
        m, box, transport = Machine(cause=Machine.PWRON_RESET), MemOutbox(), Transport()
        cfg = dict(CONFIG, undated_wait_s=120)
        _wake(m, cfg, transport, box)  # no NTP: the readings wait, and the wait's start is kept
        assert transport.bodies == [] and len(box) == 3 and _kept(m)[5] == NOW
        m.cause = Machine.DEEPSLEEP_RESET
        _wake(m, cfg, transport, box, now=NOW + 60)  # due (no clock), still waiting
        assert transport.bodies == [] and len(box) == 6
        _wake(m, cfg, transport, box, now=NOW + 121)  # the wait is over across the wakes
        assert len(transport.bodies) == 1 and len(box) == 0
        assert not [r for r in transport.pack(0) if "t" in r or "bt" in r]  # undated


def test_a_cycle_that_raises_still_ends_in_the_sleep_and_backs_off():
    class Broken(Transport):
        def send(self, body):
            raise RuntimeError("a bug")

    with KeptModules():
        m, box = Machine(), MemOutbox()
        deepsleep.write_memory(m, _state(cycle=3, next_send=4))
        cfg = dict(CONFIG, retry_base_s=100, retry_cap_s=200)
        _, _, logs = _wake(m, cfg, Broken(), box)
        assert "[kpn] cycle 4 failed: RuntimeError: a bug" in logs
        assert len(m.slept) == 1 and len(box) == 3  # asleep, the readings kept
        kept = _kept(m)
        assert kept[1] == 4 and NOW + 50 <= kept[4] <= NOW + 101


def test_the_link_is_made_at_its_first_poll_only():
    link = deepsleep.connect_wifi({"wifi_ssid": "home", "wifi_password": "pw-secret-123"})
    assert link._wifi is None and link.state == "down"
    link.drop()  # nothing to drop yet
    assert link._wifi is None
