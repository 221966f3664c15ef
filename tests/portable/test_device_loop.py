"""The device loop on the host: pack contents, the bt rule, downlinks applied and echoed, cycles
run and slept between (at rest, or keeping the connection), and what it logs."""

import os

from _device_support import BN, CONFIG, NOW, Board, Result, Transport, make, values


def test_pack_has_base_name_bt_and_readings():
    dev, tr, _, logs, _ = make()
    result = dev.cycle()
    assert result.outcome == "accepted"
    pack = tr.pack(0)
    assert pack[0]["bn"] == BN
    assert pack[0]["bt"] == NOW  # an integer: the fraction is dropped
    assert isinstance(pack[0]["bt"], int)
    assert values(pack) == {"temperature": 21.5, "door": True, "counter": 7}
    units = dict((r["n"], r.get("u")) for r in pack if "n" in r)
    assert units["temperature"] == "Cel"
    assert all("t" not in r for r in pack)  # one reading time: all of it in bt
    assert "uplink 1: 3 readings + 0 states" in logs[0]
    assert "200 accepted" in logs[0]


def test_no_bt_when_the_clock_is_not_trusted():
    dev, tr, _, _, _ = make(trusted=False)
    dev.cycle()
    pack = tr.pack(0)
    assert pack[0]["bn"] == BN
    assert all("bt" not in r and "t" not in r for r in pack)
    trusted = [False]
    dev.clock_trusted = lambda: trusted[0]
    dev.cycle()
    assert "bt" not in tr.pack(1)[0]
    trusted[0] = True  # NTP has set the clock
    dev.cycle()
    assert tr.pack(2)[0]["bt"] == NOW


def test_downlink_applied_then_state_echoed_in_next_uplink():
    downlink = [{"n": BN + "led", "vb": True}, {"n": BN + "fan", "v": 50}]
    dev, tr, pins, logs, _ = make(Result(200, "accepted", downlink))
    dev.cycle()
    assert pins == [("LED", 1), (5, 32768)]
    assert "[kpn] downlink led = True applied" in logs
    assert "[kpn] downlink fan = 50 applied" in logs
    assert "led" not in values(tr.pack(0))
    dev.cycle()
    echoed = values(tr.pack(1))
    assert echoed["led"] is True
    assert echoed["fan"] == 50
    assert "3 readings + 2 states" in logs[-1]


def test_bad_downlink_refused_and_logged_good_one_applied():
    downlink = [{"n": BN + "fan", "v": 500}, {"n": BN + "led", "v": 1}, {"n": BN + "x", "v": 1}]
    dev, _, pins, logs, _ = make(Result(200, "accepted", downlink))
    dev.cycle()
    assert pins == [("LED", 1)]
    assert any(line.startswith("[kpn] downlink fan refused: out of range") for line in logs)
    assert "[kpn] downlink x refused: unknown actuator" in logs


def test_downlink_ignored_unless_accepted():
    downlink = [{"n": BN + "led", "vb": True}]
    dev, _, pins, logs, _ = make(Result(401, "unauthorized", downlink, "HTTP 401"))
    dev.cycle()
    assert pins == []
    assert "401 unauthorized (HTTP 401)" in logs[0]


def test_failing_sensor_does_not_stop_the_loop():
    board = Board()
    board.fail = True
    dev, tr, _, logs, _ = make(board=board)
    assert dev.cycle() is None  # nothing to send, nothing sent
    assert tr.bodies == []
    assert "[kpn] sensors failed: OSError: sensor absent" in logs
    board.fail = False
    dev.cycle()
    assert len(tr.bodies) == 1


def test_run_counts_cycles_and_sleeps_between_them():
    dev, tr, _, _, sleeps = make()
    assert dev.run(cycles=3) == 3
    assert len(tr.bodies) == 3
    # Two pauses of at most interval_s (2 s) each, less the time the cycle took, in slices of
    # at most one second; none after the last cycle.
    assert all(0 < s <= 1000 for s in sleeps)
    assert sum(sleeps) <= 4000


def test_run_says_when_the_next_cycle_is_due():
    # Issue 19: with the default interval a quickstart shows one uplink, then a silent minute.
    dev, _, _, logs, _ = make(config=dict(CONFIG, interval_s=60))
    assert dev.run(cycles=3) == 3
    assert logs.count("[kpn] next cycle in 60 s") == 2, logs  # none after the last cycle
    assert logs.index("[kpn] next cycle in 60 s") > 0  # after the cycle's own lines
    dev, _, _, logs, _ = make(config=dict(CONFIG, interval_s=60, log_level="warning"))
    assert dev.run(cycles=2) == 2
    assert logs == []  # an info line: a quiet board stays quiet


def test_sleep_is_sliced_and_feeds_the_watchdog_seam():
    dev, _, _, _, sleeps = make()
    feeds = []
    dev.feed = lambda: feeds.append(1)
    dev.sleep(2500)
    assert sleeps == [1000, 1000, 500]
    assert len(feeds) == 3
    dev.sleep(-5)  # a cycle that overran its interval: no sleep at all
    assert sleeps == [1000, 1000, 500]


def test_run_goes_on_after_a_cycle_raises():
    class Boom:
        calls = 0

        def send(self, body):
            Boom.calls += 1
            raise RuntimeError("bug")

    dev, _, _, logs, _ = make()
    dev.transport = Boom()
    assert dev.run(cycles=2, interval_s=1) == 2
    assert Boom.calls == 2
    assert "[kpn] cycle 1 failed: RuntimeError: bug" in logs


def test_log_level_warning_keeps_only_problems():
    downlink = [{"n": BN + "led", "vb": True}, {"n": BN + "x", "v": 1}]
    dev, _, _, logs, _ = make(
        Result(200, "accepted", downlink),
        Result(503, "retry", None, "x"),
        config=dict(CONFIG, log_level="warning"),
    )
    dev.cycle()
    dev.cycle()
    assert logs == [
        "[kpn] downlink x refused: unknown actuator",
        "[kpn] uplink 2: 3 readings + 1 states, %d bytes -> 503 retry (x)"
        % len(dev.transport.bodies[1]),
    ]


def test_an_uplink_without_a_status_says_what_happened_not_none():
    # Issue 19: a request nobody answered printed "-> None retry (timed out)"; an MQTT uplink,
    # which never has an HTTP status, printed "-> None accepted".
    dev, tr, _, logs, _ = make(
        Result(None, "retry", None, "timed out"), Result(None, "accepted"), Result(200, "accepted")
    )
    for _ in range(3):
        dev.retry_now()
        dev.cycle()
    sizes = [len(b) for b in tr.bodies]
    said = "[kpn] uplink 1: 3 readings + 0 states, %d bytes -> no answer retry (timed out)"
    assert said % sizes[0] in logs, logs
    assert "[kpn] uplink 2: 3 readings + 0 states, %d bytes -> accepted" % sizes[1] in logs, logs
    assert "[kpn] uplink 3: 3 readings + 0 states, %d bytes -> 200 accepted" % sizes[2] in logs
    assert not [line for line in logs if "None" in line], logs


def test_now_may_say_none_for_an_untrusted_clock():
    dev, tr, _, _, _ = make(trusted=True)
    dev.now = lambda: None  # the shape of clock.Clock.now before NTP
    dev.cycle()
    assert all("bt" not in r and "t" not in r for r in tr.pack(0))


class RestingTransport(Transport):
    rests = 0

    def rest(self):
        self.rests += 1


def test_a_long_idle_wait_is_spent_at_rest_and_the_next_cycle_loads_the_send_path_again():
    import sys

    from kpnthings.compat import ticks_ms
    from kpnthings.outbox import Outbox

    where = "/tmp/kpn-test-rest-%d" % ticks_ms()
    box = Outbox(where, max_bytes=8192)
    try:
        # interval 60 s, idle_close_s left at its default (30 s): the device rests each time
        dev, _, _, _, sleeps = make(outbox=box, config=dict(CONFIG, interval_s=60))
        tr = dev.transport = RestingTransport()
        assert dev.idle_close_ms == 30000
        assert dev.run(cycles=3) == 3
        assert tr.rests == 2  # before each of the two waits, none after the last cycle
        assert sum(sleeps) > 100000  # and the waits themselves were kept
        # What only sending needs is gone until the next cycle sends, which loads it again.
        dev.rest()
        assert tr.rests == 3 and dev._body is None
        for name in ("flush", "batch", "senml_text", "outbox_read"):
            assert "kpnthings." + name not in sys.modules, name
        dev.cycle()
        assert "kpnthings.flush" in sys.modules
        assert len(tr.bodies) == 4 and len(box) == 0
        names = [r["n"] for r in tr.pack(3) if "n" in r]
        assert names == ["temperature", "door", "counter"]
    finally:
        for name in os.listdir(where):
            os.remove(where + "/" + name)
        os.rmdir(where)


def test_a_short_idle_wait_keeps_the_connection_and_the_send_path():
    dev, _, _, _, _ = make(config=dict(CONFIG, interval_s=2, idle_close_s=30))
    tr = dev.transport = RestingTransport()
    assert dev.run(cycles=3) == 3
    assert tr.rests == 0 and dev._body is not None
    # idle_close_s 0: rest before every wait, however short
    dev, _, _, _, _ = make(config=dict(CONFIG, interval_s=2, idle_close_s=0))
    tr = dev.transport = RestingTransport()
    assert dev.run(cycles=3) == 3
    assert tr.rests == 2 and len(tr.bodies) == 3


def test_a_transport_whose_rest_fails_costs_a_log_line_not_the_loop():
    class Broken(Transport):
        def rest(self):
            raise OSError(9, "EBADF")

    dev, _, _, logs, _ = make(config=dict(CONFIG, interval_s=60))
    dev.transport = Broken()
    assert dev.run(cycles=2) == 2
    assert len(dev.transport.bodies) == 2
    assert any("[kpn] rest failed: OSError" in line for line in logs), logs
