"""Time from ticks (issue 18, item 1): a reading taken before the clock is set keeps its
ticks_ms and the boot's identity; once the clock is set in the same boot it is sent with its
true time, the clock's time less the ticks since, the wrap of ticks_ms included. Readings of an
earlier boot cannot be dated, and go without a time as before."""

import os

from _support import AcceptingKpn, is_micropython
from kpnthings import compat
from kpnthings.device import Device
from kpnthings.outbox import Outbox

UUID = "0b7f8c3e-5a2d-4c1e-9f6a-2d3e4f5a6b7c"
NOW = 1760000000
MICROPYTHON = is_micropython()
# ticks_ms wraps here: 2**30 on the boards' 32-bit ports, 2**62 on the 64-bit unix port.
PERIOD = compat.ticks_add(0, -1) + 1 if MICROPYTHON else 0


class Ticks:
    """ticks_ms the test moves; on MicroPython it starts 90 s before the wrap."""

    def __init__(self):
        self.start = PERIOD - 90000 if MICROPYTHON else 1000
        self.elapsed = 0

    def __call__(self):
        t = self.start + self.elapsed
        return t % PERIOD if MICROPYTHON else t


class Board:
    def read_sensors(self):
        return [("temperature", 21.5, "Cel")]


def times(pack, name="temperature"):
    """The resolved time of each record named `name` (None without one)."""
    bt = pack[0].get("bt")
    return [None if bt is None else bt + r.get("t", 0) for r in pack if r.get("n") == name]


def _cleanup(where):
    for name in os.listdir(where):
        os.remove(where + "/" + name)
    os.rmdir(where)


def _device(ticks, where, clock):
    box = Outbox(where, max_bytes=65536)
    dev = Device(
        {"dvnuuid": UUID, "interval_s": 60},
        Board(),
        AcceptingKpn(),
        None,
        outbox=box,
        now=lambda: NOW + ticks.elapsed / 1000 - 600 if clock["set"] else None,
        log=lambda line: None,
        clock_trusted=lambda: clock["set"],
        sleep_ms=lambda ms: None,
    )
    return dev, box


def test_readings_taken_before_the_clock_was_set_get_their_true_time():
    ticks = Ticks()
    saved = compat.ticks_ms
    compat.ticks_ms = ticks
    where = "/tmp/kpn-test-ticks-%d" % saved()
    clock = {"set": False}
    try:
        dev, box = _device(ticks, where, clock)
        dev.link_ready = lambda: False  # no network, no NTP: the readings queue
        for _ in range(4):
            dev.cycle()
            ticks.elapsed += 60000
        assert len(box) == 4
        clock["set"] = True  # NTP answered: now() is right from here on
        dev.link_ready = None
        dev.cycle()
        sent = [t for pack in dev.transport.packs for t in times(pack)]
        now = NOW + ticks.elapsed / 1000 - 600
        expected = [now - 240, now - 180, now - 120, now - 60, now]
        assert len(sent) == 5 and None not in sent, sent
        assert all(abs(sent[i] - expected[i]) <= 1 for i in range(5)), (sent, expected)
    finally:
        compat.ticks_ms = saved
        _cleanup(where)


def test_readings_of_an_earlier_boot_stay_without_a_time():
    ticks = Ticks()
    saved = compat.ticks_ms
    compat.ticks_ms = ticks
    where = "/tmp/kpn-test-ticks-boot-%d" % saved()
    clock = {"set": False}
    try:
        dev, _ = _device(ticks, where, clock)
        dev.link_ready = lambda: False
        dev.cycle()  # queued by this boot, untimed
        dev2, _ = _device(ticks, where, clock)  # a reset: a new boot, the same outbox
        clock["set"] = True
        ticks.elapsed += 60000
        dev2.cycle()
        packs = dev2.transport.packs
        sent = [t for pack in packs for t in times(pack)]
        assert sent[0] is None and sent[-1] is not None, sent  # the old one cannot be dated
    finally:
        compat.ticks_ms = saved
        _cleanup(where)


class _AnswerLost:
    status = None
    outcome = "retry"
    downlink = []
    error = "connection closed before any response"


class LosesFirstAnswer(AcceptingKpn):
    """KPN stores every pack; the device hears nothing of the first."""

    def send(self, body):
        accepted = AcceptingKpn.send(self, body)
        return _AnswerLost() if len(self.packs) == 1 else accepted


def test_a_pack_sent_again_gives_its_readings_the_same_times():
    # The duplicate of a reading dated from ticks must carry the time KPN stored first, or it
    # cannot be told from a new reading. The RTC's second and ticks_ms are out of phase (here by
    # 0.5 s), and the two sends are 0.3 and 0.7 s into a second: a time worked out afresh for
    # each pack came out one second apart.
    ticks = Ticks()
    saved = compat.ticks_ms
    compat.ticks_ms = ticks
    where = "/tmp/kpn-test-ticks-again-%d" % saved()
    clock = {"set": False}
    try:
        box = Outbox(where, max_bytes=65536)
        dev = Device(
            {"dvnuuid": UUID, "interval_s": 60},
            Board(),
            LosesFirstAnswer(),
            None,
            outbox=box,
            now=lambda: NOW + (ticks.elapsed + 500) / 1000 - 600 if clock["set"] else None,
            log=lambda line: None,
            clock_trusted=lambda: clock["set"],
            sleep_ms=lambda ms: None,
        )
        dev.link_ready = lambda: False
        for _ in range(4):
            dev.cycle()
            ticks.elapsed += 60000
        ticks.elapsed += 300
        clock["set"] = True
        dev.link_ready = None
        dev.cycle()  # stored by KPN, the answer lost: kept, and backing off
        assert len(box) == 5
        ticks.elapsed += 60400  # past the backoff
        dev.cycle()
        assert len(box) == 0
        first, again = (times(pack) for pack in dev.transport.packs)
        assert len(first) == 5 and None not in first, first
        assert again[:5] == first, (first, again)
    finally:
        compat.ticks_ms = saved
        _cleanup(where)
