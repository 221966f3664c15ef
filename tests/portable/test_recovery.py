"""A link that says it is up but carries nothing (issue 17, finding 4): after link_drop_after
uplinks in a row with no answer at all the device drops Wi-Fi for a fresh association; after
reset_after_drops such drops, or reset_after_h hours without an accepted uplink, it resets the
board. The outbox is on flash, so a reset loses nothing."""

from kpnthings import compat
from kpnthings.device import Device

UUID = "0b7f8c3e-5a2d-4c1e-9f6a-2d3e4f5a6b7c"


class Result:
    def __init__(self, status, outcome, error=None):
        self.status = status
        self.outcome = outcome
        self.downlink = []
        self.error = error


NO_ANSWER = Result(None, "retry", "timed out")  # DNS, TCP, TLS or the reply: nothing came
BUSY = Result(503, "retry", "HTTP 503")  # the server answered: the link works
OK = Result(200, "accepted")


class Script:
    def __init__(self, *results):
        self.results = list(results)

    def send(self, body):
        return self.results.pop(0) if self.results else OK


class Board:
    CLOCK_TRUSTED = True

    def read_sensors(self):
        return [("temperature", 21.5, "Cel")]


def _device(transport, **config):
    cfg = {"dvnuuid": UUID, "interval_s": 60}
    cfg.update(config)
    events = []
    dev = Device(
        cfg,
        Board(),
        transport,
        None,
        log=events.append,
        sleep_ms=lambda ms: None,
        link_ready=lambda: True,  # the driver says connected, whatever the air does
        link_drop=lambda: events.append("DROP"),
        reset=lambda: events.append("RESET"),
    )
    return dev, events


def _cycles(dev, n):
    for _ in range(n):
        dev.retry_now()  # skip the backoff wait: each cycle tries
        dev.cycle()


def test_uplinks_without_an_answer_while_the_link_is_up_drop_it_for_a_fresh_association():
    dev, events = _device(Script(*[NO_ANSWER] * 7))
    _cycles(dev, 7)
    assert events.count("DROP") == 2  # after the 3rd and the 6th
    assert "RESET" not in events
    assert any("reconnecting" in str(e) for e in events), events


def test_an_answer_of_any_kind_means_the_link_works():
    dev, events = _device(Script(NO_ANSWER, NO_ANSWER, BUSY, NO_ANSWER, NO_ANSWER, BUSY))
    _cycles(dev, 6)
    assert "DROP" not in events


def test_reconnects_that_bring_nothing_back_reset_the_board():
    dev, events = _device(Script(*[NO_ANSWER] * 20), link_drop_after=2, reset_after_drops=3)
    _cycles(dev, 6)
    assert events.count("DROP") == 2
    assert events.count("RESET") == 1 and events.index("RESET") > events.index("DROP")
    assert any("resetting the board" in str(e) for e in events), events


def test_an_accepted_uplink_starts_the_count_again():
    script = Script(*([NO_ANSWER] * 2 + [OK]) * 4)
    dev, events = _device(script, link_drop_after=2, reset_after_drops=2)
    _cycles(dev, 12)
    assert events.count("DROP") == 4 and "RESET" not in events


def test_zero_turns_each_off():
    dev, events = _device(Script(*[NO_ANSWER] * 10), link_drop_after=0)
    _cycles(dev, 10)
    assert "DROP" not in events and "RESET" not in events


def test_hours_without_an_accepted_uplink_reset_the_board_even_while_the_link_is_down():
    now = [5000]
    saved = compat.ticks_ms
    compat.ticks_ms = lambda: now[0]
    try:
        dev, events = _device(Script(OK), reset_after_h=2)
        dev.cycle()  # accepted
        dev.link_ready = lambda: False  # then nothing goes out at all
        now[0] += 2 * 3600 * 1000 - 1000
        dev.cycle()
        assert "RESET" not in events
        now[0] += 2000
        dev.cycle()  # a board resets here; the fake returns, and the count starts again
        assert events.count("RESET") == 1, events
        assert "no uplink accepted for 2 h" in events[events.index("RESET") - 1]
    finally:
        compat.ticks_ms = saved
