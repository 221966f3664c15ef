"""The watchdog over a whole cycle: the longest time between two feeds, on a clock the test
drives (issue 17, finding 1).

A board's watchdog resets it when two feeds are further apart than its timeout (at most about
8.3 s on the RP2040). These tests run the real Device, flush, outbox and clock.clock_checker on a
fake clock: NTP and every POST advance it by what a slow network costs, and a fake WDT notes the
clock at each feed. Every module reads the time through kpnthings.compat, so the clock is
swapped there.
"""

import os

from kpnthings import compat
from kpnthings.clock import clock_checker
from kpnthings.device import Device
from kpnthings.outbox import Outbox
from kpnthings.watchdog import Watchdog

UUID = "0b7f8c3e-5a2d-4c1e-9f6a-2d3e4f5a6b7c"
RP2_LIMIT_MS = 8300
POST_MS = 2500  # a healthy but slow server
NTP_MS = 2000  # the Clock's own NTP timeout


class FakeTime:
    """ticks_ms that only moves when the test says so."""

    def __init__(self):
        self.now = 1000

    def ticks_ms(self):
        return self.now

    def advance(self, ms):
        self.now += ms


class HardwareWDT:
    """machine.WDT that notes each feed's time; `gaps` are the times between feeds."""

    def __init__(self, clock):
        self.clock = clock
        self.fed = []

    def make(self, timeout):
        self.timeout = timeout
        self.fed.append(self.clock.now)  # arming starts the countdown
        return self

    def feed(self):
        self.fed.append(self.clock.now)

    def longest_gap(self, until):
        times = self.fed + [until]
        return max(times[i + 1] - times[i] for i in range(len(times) - 1))


class Result:
    def __init__(self, status, outcome):
        self.status = status
        self.outcome = outcome
        self.downlink = []
        self.error = None


class SlowServer:
    """Every POST takes POST_MS and is accepted."""

    def __init__(self, clock):
        self.clock = clock
        self.bodies = 0

    def send(self, body):
        self.clock.advance(POST_MS)
        self.bodies += 1
        return Result(200, "accepted")


class Board:
    CLOCK_TRUSTED = False

    def read_sensors(self):
        return [("temperature", 21.5, "Cel"), ("humidity", 40.25, "%RH"), ("counter", 7, None)]


class Link:
    state = "up"


class NtpClock:
    """clock.clock_checker's clock: sync() takes NTP_MS of the test's time."""

    def __init__(self, time):
        self.time = time
        self.trusted = False
        self.last_error = None
        self.syncs = 0

    def sync(self):
        self.time.advance(NTP_MS)
        self.trusted = True
        self.syncs += 1
        return True

    def now(self):
        return 1700000000 if self.trusted else None


def _patched_ticks(time):
    saved = compat.ticks_ms
    compat.ticks_ms = time.ticks_ms
    return saved


def _cleanup(where):
    try:
        for name in os.listdir(where):
            os.remove(where + "/" + name)
        os.rmdir(where)
    except OSError:
        pass


def _device(time, where, wdt, logs):
    cfg = {"dvnuuid": UUID, "interval_s": 60, "timeout_s": 5, "max_body": 400}
    hw = HardwareWDT(time)

    class Machine:
        WDT = hw.make

    watchdog = Watchdog(wdt, machine_module=Machine)
    ntp = NtpClock(time)
    link = Link()
    box = Outbox(where, max_bytes=65536)
    dev = Device(
        cfg,
        Board(),
        SlowServer(time),
        None,
        outbox=box,
        now=ntp.now,
        log=logs.append,
        clock_trusted=clock_checker(ntp, link, watchdog, retry_ms=0),
        sleep_ms=time.advance,
        feed=watchdog,
    )
    return dev, box, hw, link


def _backlog(dev, link, cycles):
    """Cycles with the network down: their readings wait in the outbox."""
    link.state = "down"
    dev.link_ready = lambda: False
    for _ in range(cycles):
        dev.cycle()
    link.state = "up"
    dev.link_ready = None


def test_a_backlog_over_a_slow_server_is_flushed_without_starving_the_watchdog():
    time = FakeTime()
    saved = _patched_ticks(time)
    where = "/tmp/kpn-test-wdt-cycle-%d" % saved()
    logs = []
    try:
        dev, box, hw, link = _device(time, where, RP2_LIMIT_MS, logs)
        _backlog(dev, link, 12)  # 36 readings: at max_body 400, more packs than one cycle sends
        queued = len(box)
        start = time.now
        dev.cycle()  # NTP, then the backlog: 4 packs at 2.5 s each
        sent = dev.transport.bodies
        assert sent == 4, logs  # the flush still sends as much as it did
        assert len(box) < queued
        gap = hw.longest_gap(time.now)
        print("longest gap between feeds: %d ms over a %d ms cycle" % (gap, time.now - start))
        assert gap < RP2_LIMIT_MS, gap
        assert gap <= POST_MS, gap  # a feed between every two steps: NTP, each pack
    finally:
        compat.ticks_ms = saved
        _cleanup(where)


def test_the_flush_stops_when_less_than_one_timeout_is_left_before_the_watchdog():
    time = FakeTime()
    saved = _patched_ticks(time)
    where = "/tmp/kpn-test-wdt-stop-%d" % saved()
    logs = []
    try:
        dev, box, _, link = _device(time, where, 6000, logs)
        _backlog(dev, link, 2)
        dev.clock_trusted = True
        dev.feed()
        time.advance(1500)  # 4.5 s left, below one timeout_s (5 s): a POST could outlast it
        queued = len(box)
        dev.cycle()
        assert dev.transport.bodies == 0
        assert len(box) == queued + 3  # nothing lost: this cycle's readings wait too
        assert "watchdog" in logs[-1], logs
        dev.feed()  # fed: the next cycle has the watchdog's whole timeout again
        dev.cycle()
        assert dev.transport.bodies >= 1
    finally:
        compat.ticks_ms = saved
        _cleanup(where)


def test_a_watchdog_is_a_feed_callable_that_knows_the_time_left():
    time = FakeTime()
    saved = _patched_ticks(time)
    try:
        hw = HardwareWDT(time)

        class Machine:
            WDT = hw.make

        w = Watchdog(8000, machine_module=Machine)
        assert w.ms_left() == 8000
        time.advance(3000)
        assert w.ms_left() == 5000
        w()
        assert w.ms_left() == 8000 and hw.fed == [1000, 4000]
        time.advance(9000)
        assert w.ms_left() < 0  # overdue: a real board would have reset by now
        assert Watchdog(None).ms_left() is None
    finally:
        compat.ticks_ms = saved
