"""Time quality (issue 18, items 1 and 5): a pack whose times did not all come from a clock NTP
had set says how they were obtained, and a pack without times counts its readings.

- `{"n":"timeQuality","v":1}`: some times were dated from ticks (taken before NTP set the clock);
- `{"n":"timeQuality","v":2}`: some came from an RTC kept through a reset (no NTP yet);
- `{"n":"undatedReadings","v":N}`: a pack without times; KPN stamps its N readings on arrival;
- no such record: every time came from NTP's clock.
The real Outbox on the host's filesystem, ticks and clocks driven by the test."""

import os

from _support import AcceptingKpn
from kpnthings import compat
from kpnthings.device import Device
from kpnthings.outbox import Outbox

UUID = "0b7f8c3e-5a2d-4c1e-9f6a-2d3e4f5a6b7c"
WALL = 1800000000  # the true time when the test's ticks start
RTC_AHEAD_S = 7  # how far an RTC kept through a reset has drifted


class World:
    """Driven ticks, the true time, and what the clock says: "none" (not set), "rtc" (kept
    through a reset: RTC_AHEAD_S off) or "ntp"."""

    def __init__(self):
        self.ms = 5000
        self.clock = "none"

    def ticks(self):
        return self.ms

    def wall(self):
        return WALL + self.ms / 1000

    def now(self):
        return self.wall() + (RTC_AHEAD_S if self.clock == "rtc" else 0)

    def trusted(self):
        return {"none": False, "rtc": 2, "ntp": True}[self.clock]


class Board:
    """Each call's readings are counters numbered in order: the test knows when each was
    taken (`taken`, true time) and how the clock stood then (`clock`)."""

    def __init__(self, world, per_call=1):
        self.world = world
        self.per_call = per_call
        self.taken = []
        self.clock = []

    def read_sensors(self):
        out = []
        for _ in range(self.per_call):
            out.append(("counter", len(self.taken), None))
            self.taken.append(self.world.wall())
            self.clock.append(self.world.clock)
        return out


def _device(world, board, where, max_body=1024, transport=None, wait=None):
    cfg = {"dvnuuid": UUID, "interval_s": 60, "max_body": max_body}
    if wait is not None:
        cfg["undated_wait_s"] = wait
    return Device(
        cfg,
        board,
        transport or AcceptingKpn(),
        None,
        outbox=Outbox(where, max_bytes=65536),
        now=world.now,
        log=lambda line: None,
        clock_trusted=world.trusted,
        sleep_ms=lambda ms: None,
    )


def _cleanup(where):
    try:
        names = os.listdir(where)
    except OSError:
        return
    for name in names:
        os.remove(where + "/" + name)
    os.rmdir(where)


class Run:
    """A test's world, with ticks_ms patched and an outbox folder removed afterwards."""

    def __init__(self, tag):
        self.world = World()
        self.saved = compat.ticks_ms
        self.where = "/tmp/kpn-test-quality-%s-%d" % (tag, self.saved())

    def __enter__(self):
        compat.ticks_ms = self.world.ticks
        _cleanup(self.where)
        return self

    def __exit__(self, *exc):
        compat.ticks_ms = self.saved
        _cleanup(self.where)
        return False


def _cycles(dev, world, n, link_up):
    dev.link_ready = None if link_up else (lambda: False)
    for _ in range(n):
        dev.cycle()
        world.ms += 60000


def notes(pack):
    """(name, value) of the pack's time records: timeQuality or undatedReadings."""
    return [(r["n"], r["v"]) for r in pack if r["n"] in ("timeQuality", "undatedReadings")]


def readings(pack):
    """(counter number, resolved time or None) of each reading in the pack."""
    bt = pack[0].get("bt")
    out = []
    for r in pack:
        if r["n"] == "counter":
            out.append((r["v"], None if bt is None else bt + r.get("t", 0)))
    return out


def test_readings_dated_from_ticks_say_so_and_ntp_packs_say_nothing():
    with Run("ticks") as run:
        w = run.world
        board = Board(w)
        dev = _device(w, board, run.where)
        _cycles(dev, w, 3, link_up=False)  # no network, no NTP: three readings queue
        w.clock = "ntp"
        _cycles(dev, w, 1, link_up=True)
        _cycles(dev, w, 1, link_up=True)
        first, second = dev.transport.packs
        assert notes(first) == [("timeQuality", 1)], first
        assert [n for n, _ in readings(first)] == [0, 1, 2, 3]
        for n, t in readings(first):
            assert abs(t - board.taken[n]) <= 1, (n, t, board.taken[n])
        assert notes(second) == [] and "bt" in second[0], second  # NTP's time only


def test_an_rtc_kept_through_a_reset_is_used_and_said_until_ntp_answers():
    with Run("rtc") as run:
        w = run.world
        w.clock = "rtc"
        board = Board(w)
        dev = _device(w, board, run.where)
        _cycles(dev, w, 2, link_up=False)  # boot A: the RTC's time, queued
        dev = _device(w, board, run.where)  # boot B: a watchdog reset, the RTC kept again
        _cycles(dev, w, 2, link_up=False)
        _cycles(dev, w, 1, link_up=True)  # NTP still silent: the RTC's times go, and say so
        pack = dev.transport.packs[-1]
        assert notes(pack) == [("timeQuality", 2)], pack
        assert [n for n, _ in readings(pack)] == [0, 1, 2, 3, 4]
        for n, t in readings(pack):
            assert t - board.taken[n] == RTC_AHEAD_S, (n, t, board.taken[n])
        _cycles(dev, w, 2, link_up=False)  # boot B goes on with the RTC, then NTP answers
        w.clock = "ntp"
        _cycles(dev, w, 1, link_up=True)
        pack = dev.transport.packs[-1]
        # Boot B's readings are dated again from their ticks, now on NTP's time.
        assert notes(pack) == [("timeQuality", 1)], pack
        assert [n for n, _ in readings(pack)] == [5, 6, 7]
        for n, t in readings(pack):
            assert abs(t - board.taken[n]) <= 1, (n, t, board.taken[n])


def test_readings_without_a_time_are_counted_in_the_pack_that_carries_them():
    with Run("undated") as run:
        w = run.world
        board = Board(w, per_call=3)
        dev = _device(w, board, run.where)
        _cycles(dev, w, 2, link_up=False)  # boot A: six readings, never to be dated
        w.clock = "ntp"
        dev = _device(w, board, run.where)  # boot B: NTP answers at once
        _cycles(dev, w, 1, link_up=True)
        untimed, timed = dev.transport.packs
        assert "bt" not in untimed[0] and notes(untimed) == [("undatedReadings", 6)], untimed
        assert [t for _, t in readings(untimed)] == [None] * 6
        assert notes(timed) == [] and [n for n, _ in readings(timed)] == [6, 7, 8], timed


def _weakest(board, numbers):
    # What the record must say of a pack holding these readings (None: nothing, NTP's time).
    kinds = [board.clock[n] for n in numbers]
    if "rtc" in kinds:
        return 2
    return 1 if "none" in kinds else None


def _drain(dev, w):
    dev.link_ready = None
    for _ in range(200):
        if not len(dev.outbox):
            return
        dev.cycle()
        w.ms += 60000
    raise AssertionError("the outbox never drained")


def test_every_pack_says_exactly_what_it_holds_at_every_max_body():
    # The record takes room: a reading it pushes out of the pack may be the one that made the
    # pack weak (then it says what is left), and a count is written for the readings that
    # fit beside it, across a digit boundary (9 and 10 readings) too: at these sizes 130 of 245
    # packs lose a reading to the record, 4 cross the boundary, 3 lose the one that made them
    # weak.
    sizes = list(range(256, 700, 9)) + [1024, 2048]
    for max_body in sizes:
        with Run("sizes") as run:
            w = run.world
            board = Board(w, per_call=4)
            dev = _device(w, board, run.where, max_body=max_body)
            _cycles(dev, w, 3, link_up=False)  # boot A, clock never set: 12 undated
            w.clock = "ntp"
            dev = _device(w, board, run.where, max_body=max_body)
            _cycles(dev, w, 2, link_up=False)  # boot B, NTP's time: 8 readings
            w.clock = "none"
            dev = _device(w, board, run.where, max_body=max_body)  # boot C
            _cycles(dev, w, 5, link_up=False)  # 20 readings to date from ticks
            w.clock = "ntp"
            _drain(dev, w)
            seen = []
            sent = dev.transport
            for i, pack in enumerate(sent.packs):
                assert len(sent.bodies[i]) <= max_body, (max_body, len(sent.bodies[i]))
                numbers = [n for n, _ in readings(pack)]
                seen += numbers
                if "bt" not in pack[0]:
                    want = [("undatedReadings", len(numbers))] if numbers else []
                else:
                    q = _weakest(board, numbers)
                    want = [("timeQuality", q)] if q and numbers else []
                    if notes(pack) == [("timeQuality", 0)]:  # see flush._describe
                        want = notes(pack)
                assert notes(pack) == want, (max_body, pack)
            assert seen == list(range(len(board.taken))), (max_body, seen)


# -- the wait for NTP (config undated_wait_s) -------------------------------------------------


def _held_device(run, wait=None, outbox=True, link_up=True):
    w = run.world
    cfg = {"dvnuuid": UUID, "interval_s": 30}
    if wait is not None:
        cfg["undated_wait_s"] = wait
    logs = []
    dev = Device(
        cfg,
        Board(w),
        AcceptingKpn(),
        None,
        outbox=Outbox(run.where, max_bytes=65536) if outbox else None,
        now=w.now,
        log=logs.append,
        clock_trusted=w.trusted,
        sleep_ms=lambda ms: None,
    )
    dev.link_ready = None if link_up else (lambda: False)
    return dev, logs


def _every_30_s(dev, w, n):
    for _ in range(n):
        dev.cycle()
        w.ms += 30000


def test_readings_wait_for_a_late_ntp_answer_and_go_dated():
    with Run("hold") as run:
        w = run.world
        dev, logs = _held_device(run)  # undated_wait_s: 120 by default
        _every_30_s(dev, w, 3)  # 0, 30, 60 s: NTP silent, nothing sent
        assert dev.transport.packs == [] and len(dev.outbox) == 3
        assert "waiting for NTP to date the readings, at most 120 s more" in logs[0], logs
        assert "at most 60 s more; 3 readings queued" in logs[2], logs
        w.clock = "ntp"  # at 90 s NTP answers: the wait ends at once
        _every_30_s(dev, w, 1)
        (pack,) = dev.transport.packs
        assert notes(pack) == [("timeQuality", 1)], pack
        assert [n for n, t in readings(pack)] == [0, 1, 2, 3]
        assert all(abs(t - dev.board.taken[n]) <= 1 for n, t in readings(pack)), pack


def test_after_the_wait_they_go_without_a_time_and_are_counted():
    with Run("expired") as run:
        w = run.world
        dev, _ = _held_device(run, wait=60)
        _every_30_s(dev, w, 2)  # 0 and 30 s: held
        assert dev.transport.packs == []
        _every_30_s(dev, w, 1)  # 60 s: the wait is over, NTP never answered
        (pack,) = dev.transport.packs
        assert "bt" not in pack[0] and notes(pack) == [("undatedReadings", 3)], pack
        _every_30_s(dev, w, 1)  # and from now on each cycle sends, counted
        assert notes(dev.transport.packs[-1]) == [("undatedReadings", 1)]
        w.clock = "ntp"
        _every_30_s(dev, w, 1)
        assert notes(dev.transport.packs[-1]) == [] and "bt" in dev.transport.packs[-1][0]


def test_the_wait_starts_when_the_network_is_first_up():
    # NTP cannot answer before there is a network: a board that boots into a Wi-Fi outage
    # still waits undated_wait_s for NTP once the link is back.
    with Run("linkup") as run:
        w = run.world
        dev, _ = _held_device(run, wait=60, link_up=False)
        _every_30_s(dev, w, 20)  # ten minutes without a network
        dev.link_ready = None
        _every_30_s(dev, w, 2)  # the link is back: 60 s more for NTP
        assert dev.transport.packs == [] and len(dev.outbox) == 22
        w.clock = "ntp"
        _every_30_s(dev, w, 1)
        packs = dev.transport.packs
        assert sum(len(readings(p)) for p in packs) == 23
        assert all(notes(p) == [("timeQuality", 1)] for p in packs), packs
        assert all(t is not None for p in packs for _, t in readings(p))


def test_no_wait_when_turned_off_without_an_outbox_or_with_a_clock():
    for wait, outbox, clock in ((0, True, "none"), (None, False, "none"), (None, True, "rtc")):
        with Run("nohold") as run:
            run.world.clock = clock
            dev, _ = _held_device(run, wait=wait, outbox=outbox)
            _every_30_s(dev, run.world, 1)
            (pack,) = dev.transport.packs
            if clock == "rtc":
                assert notes(pack) == [("timeQuality", 2)], pack
            elif outbox:
                assert notes(pack) == [("undatedReadings", 1)], pack
            else:  # sent as taken, without an outbox (its flash failed): no notes
                assert "bt" not in pack[0] and notes(pack) == [], pack


class _Counting(AcceptingKpn):
    """Also notes how many readings the board had taken at each send."""

    def __init__(self, board):
        AcceptingKpn.__init__(self)
        self.board = board
        self.taken_at_send = []

    def send(self, body):
        self.taken_at_send.append(len(self.board.taken))
        return AcceptingKpn.send(self, body)


def test_states_still_ride_only_the_pack_with_the_newest_readings():
    # The record may leave room for fewer readings than the pack had: then the pack is no
    # longer the one with the newest readings, and the actuator's state waits for that one.
    # Readings that never get a time (undatedReadings), and readings dated from ticks.
    from kpnthings.downlink import Actuators

    for clock in ("none", "ntp"):
        for max_body in range(256, 520, 11):
            with Run("states") as run:
                w = run.world
                board = Board(w, per_call=3)
                dev = _device(w, board, run.where, max_body, _Counting(board), wait=0)
                acts = Actuators(
                    {"led": {"type": "digital", "pin": 2}}, pin_factory=lambda k, p, e: None
                )
                acts._state["led"] = True
                dev.actuators = acts
                _cycles(dev, w, 4, link_up=False)  # 12 readings before the clock is set
                w.clock = clock
                _drain(dev, w)
                sent = dev.transport
                for i, pack in enumerate(sent.packs):
                    if "led" in [r["n"] for r in pack]:
                        numbers = [n for n, _ in readings(pack)]
                        newest = sent.taken_at_send[i] - 1
                        assert numbers and numbers[-1] == newest, (clock, max_body, pack)
                # (A state left out of a pack waits for the next cycle's, as before.)
                assert notes(sent.packs[0]), (clock, max_body, sent.packs)
