"""The device loop on the host: pack contents, the bt rule, downlinks applied and echoed."""

import json
import os

from _support import Skip
from kpnthings.device import Device
from kpnthings.downlink import Actuators

UUID = "0b7f8c3e-5a2d-4c1e-9f6a-2d3e4f5a6b7c"
BN = "urn:dev:DVNUUID:" + UUID + ":"
CONFIG = {"dvnuuid": UUID, "interval_s": 2}
NOW = 1700000000


class Result:
    def __init__(self, status, outcome, downlink=None, error=None):
        self.status = status
        self.outcome = outcome
        self.downlink = downlink or []
        self.error = error


class Transport:
    """Records every body sent; answers from a script of Results (then 200 accepted)."""

    def __init__(self, *results):
        self.bodies = []
        self.results = list(results)

    def send(self, body):
        self.bodies.append(bytes(body))
        if self.results:
            return self.results.pop(0)
        return Result(200, "accepted")

    def pack(self, i):
        return json.loads(self.bodies[i])


class Board:
    CLOCK_TRUSTED = True
    fail = False

    def read_sensors(self):
        if self.fail:
            raise OSError("sensor absent")
        return [("temperature", 21.5, "Cel"), ("door", True, None), ("counter", 7, None)]


ACTUATORS = {
    "led": {"type": "digital", "pin": "LED"},
    "fan": {"type": "pwm", "pin": 5, "min": 0, "max": 100},
}


def make(*results, trusted=True, board=None, outbox=None, config=CONFIG, actuators=ACTUATORS):
    pins = []

    class Out:
        def __init__(self, pin):
            self.pin = pin

        def value(self, v):
            pins.append((self.pin, v))

        def duty_u16(self, d):
            pins.append((self.pin, d))

    acts = Actuators(actuators, pin_factory=lambda kind, pin, entry: Out(pin))
    transport = Transport(*results)
    logs = []
    sleeps = []
    dev = Device(
        config,
        board or Board(),
        transport,
        acts,
        outbox=outbox,
        now=lambda: NOW + 0.75,
        log=logs.append,
        clock_trusted=trusted,
        sleep_ms=sleeps.append,
    )
    return dev, transport, pins, logs, sleeps


def values(pack):
    """name -> value of the records after the first (base) fields are resolved by name."""
    out = {}
    for rec in pack:
        for key in ("v", "vb", "vs"):
            if key in rec:
                out[rec["n"]] = rec[key]
    return out


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


class _Queued(list):
    def close(self):
        pass


class MemOutbox:
    """The Outbox interface, in RAM, to test the device's policy (not the storage)."""

    def __init__(self):
        self.items = []
        self.dead = []
        self.dropped = 0

    def __len__(self):
        return len(self.items)

    def append(self, rec):
        self.items.append(dict(rec))

    def extend(self, records):
        self.writes = getattr(self, "writes", 0) + 1
        for rec in records:
            self.append(rec)
        return []

    def queued(self):
        return _Queued([dict(r) for r in self.items])

    def ack(self, n):
        del self.items[:n]

    def dead_letter(self, n):
        self.dead.extend(self.items[:n])
        del self.items[:n]

    def clear_dropped(self, n):
        self.dropped -= n


def test_outbox_keeps_readings_until_accepted():
    box = MemOutbox()
    dev, tr, _, _, _ = make(
        Result(None, "retry", None, "connection refused"),
        Result(404, "unknown device", None, "HTTP 404"),
        outbox=box,
    )
    dev.cycle()
    assert len(box) == 3
    dev.retry_now()  # skip the backoff wait (tested below)
    dev.cycle()
    assert len(box) == 6
    dev.retry_now()
    dev.cycle()  # accepted: the backlog goes out too
    assert len(box) == 0
    sent = [r["n"] for r in tr.pack(len(tr.bodies) - 1) if "n" in r]
    assert sent.count("temperature") >= 1


def _next_try_s(line):
    # "... next try in N s; ..." -> N
    return int(line.split("next try in ")[1].split(" ")[0])


def test_transient_failures_back_off_exponentially_and_keep_readings():
    box = MemOutbox()
    fail = Result(None, "retry", None, "connection refused")
    dev, tr, _, logs, _ = make(fail, fail, fail, outbox=box)
    waits = []
    for _ in range(3):
        dev.cycle()  # sends, fails, starts a wait
        sent = len(tr.bodies)
        dev.cycle()  # inside the wait: nothing is sent, the readings are queued
        assert len(tr.bodies) == sent
        waits.append(_next_try_s(logs[-1]))
        dev.retry_now()
    assert len(box) == 18  # every reading kept
    # Equal jitter: the n-th wait lies in [c/2, c] with c = 10 s * 2**n, capped at 600 s.
    assert 5 <= waits[0] <= 10 and 10 <= waits[1] <= 20 and 20 <= waits[2] <= 40, waits
    assert "backing off after retry" in logs[-1]
    dev.cycle()  # accepted: the whole backlog goes out, and the backoff starts over
    assert len(box) == 0
    assert dev._retry.attempt == 0


def test_unauthorized_keeps_data_waits_long_and_signals():
    box = MemOutbox()
    dev, tr, _, logs, _ = make(Result(401, "unauthorized", None, "HTTP 401"), outbox=box)
    shown = []
    dev.signal = shown.append
    dev.cycle()
    assert shown == ["unauthorized"]
    assert len(box) == 3
    refused = [line for line in logs if "refused the device (unauthorized)" in line]
    assert refused and "Portal" in refused[0]
    dev.cycle()
    assert len(tr.bodies) == 1  # no second try inside the long wait
    assert 900 <= _next_try_s(logs[-1]) <= 990
    assert len(box) == 6


def test_outbox_malformed_pack_is_split_and_reports_dropped():
    box = MemOutbox()
    box.dropped = 5
    dev, tr, _, _, _ = make(Result(400, "malformed", None, "HTTP 400"), outbox=box)
    dev.cycle()
    # The 400 may be for an extra record (droppedReadings here): the readings went again
    # alone and were accepted (tests/portable/test_isolate.py has the splitting itself).
    assert len(box.dead) == 0 and len(box) == 0 and len(tr.bodies) == 2
    assert "droppedReadings" not in values(tr.pack(1))
    assert box.dropped == 5  # not accepted, so still to report
    dev.cycle()
    assert values(tr.pack(len(tr.bodies) - 1))["droppedReadings"] == 5
    assert box.dropped == 0


def test_link_down_sends_nothing_and_keeps_readings_in_the_outbox():
    box = MemOutbox()
    dev, tr, _, logs, _ = make(outbox=box)
    up = [False]
    dev.link_ready = lambda: up[0]
    assert dev.cycle() is None
    assert tr.bodies == [] and len(box) == 3
    assert "[kpn] uplink 1: network down, 3 readings queued" in logs
    up[0] = True
    assert dev.cycle().outcome == "accepted"
    assert len(box) == 0
    names = [r["n"] for r in tr.pack(0) if "n" in r]
    assert names.count("temperature") == 2  # both cycles' readings went out together


def test_a_raising_network_driver_keeps_every_reading():
    # A CYW43 stuck in a state where every call raises EPERM: the cycle still stores its
    # readings, sends nothing, and the loop goes on (it used to lose all of them).
    box = MemOutbox()
    dev, tr, _, logs, _ = make(outbox=box)
    broken = [True]

    def link_ready():
        if broken[0]:
            raise OSError(1)
        return True

    dev.link_ready = link_ready
    for _ in range(3):
        assert dev.cycle() is None
    assert tr.bodies == [] and len(box) == 9
    failed = [line for line in logs if line.startswith("[kpn] network check failed: OSError")]
    assert len(failed) == 3, logs
    broken[0] = False
    assert dev.cycle().outcome == "accepted"
    assert len(box) == 0
    names = [r["n"] for r in tr.pack(0) if "n" in r]
    assert names.count("temperature") == 4


def test_reading_too_large_for_any_pack_is_dead_lettered_not_stuck():
    try:
        import kpnthings.batch  # noqa: F401
    except ImportError:
        raise Skip("needs kpnthings.batch") from None
    box = MemOutbox()
    box.append({"n": "note", "vs": "x" * 300})
    dev, tr, _, logs, _ = make(outbox=box)
    dev.max_body = 250
    dev.cycle()
    assert [r["n"] for r in box.dead] == ["note"]
    assert "[kpn] reading note larger than max_body: dead-lettered" in logs
    assert len(box) == 0 and len(tr.bodies) >= 1


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


def test_with_the_real_outbox_on_this_filesystem():
    import os

    from kpnthings.compat import ticks_ms
    from kpnthings.outbox import Outbox

    where = "/tmp/kpn-test-device-%d" % ticks_ms()
    try:
        box = Outbox(where, max_bytes=8192)
        dev, tr, _, _, _ = make(Result(None, "retry", None, "refused"), outbox=box)
        dev.cycle()
        assert len(box) == 3
        dev.retry_now()
        dev.cycle()  # accepted: both cycles' readings in one pack, then acknowledged
        assert len(box) == 0
        names = [r["n"] for r in tr.pack(1) if "n" in r]
        assert names.count("temperature") == 2
        assert len(Outbox(where, max_bytes=8192)) == 0  # the ack is on flash
    finally:
        for name in os.listdir(where):
            os.remove(where + "/" + name)
        os.rmdir(where)


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


def test_now_may_say_none_for_an_untrusted_clock():
    dev, tr, _, _, _ = make(trusted=True)
    dev.now = lambda: None  # the shape of clock.Clock.now before NTP
    dev.cycle()
    assert all("bt" not in r and "t" not in r for r in tr.pack(0))


class FlakyOutbox(MemOutbox):
    full = False

    def extend(self, records):
        if self.full:
            raise OSError(28)  # ENOSPC: flash full
        refused = []
        for rec in records:
            if rec["n"] == "counter":  # what OutboxError is
                refused.append((rec, ValueError("record counter is invalid")))
            else:
                self.append(rec)
        return refused


def test_a_full_flash_costs_the_store_not_the_send():
    box = FlakyOutbox()
    box.full = True
    dev, tr, _, logs, _ = make(outbox=box)
    dev.cycle()
    sent = values(tr.pack(0))
    assert sent["temperature"] == 21.5 and sent["door"] is True and sent["counter"] == 7
    failed = [line for line in logs if line.startswith("[kpn] outbox append failed (")]
    assert len(failed) == 1 and failed[0].endswith(": 3 readings not stored"), logs
    assert len(box) == 0


def test_a_reading_the_outbox_refuses_is_dropped_and_logged_the_others_go():
    box = FlakyOutbox()
    dev, tr, _, logs, _ = make(outbox=box)
    dev.cycle()
    sent = values(tr.pack(0))
    assert sent["temperature"] == 21.5 and sent["door"] is True
    assert "counter" not in sent
    assert "[kpn] reading counter dropped: record counter is invalid" in logs
    assert dev.refused == 1
    assert len(box) == 0


def test_a_cycle_stores_its_readings_in_one_write():
    # Issue 17, finding 6: on LittleFS each write to a file costs about one block erase.
    box = MemOutbox()
    dev, _, _, _, _ = make(Result(None, "retry", None, "refused"), outbox=box)
    dev.cycle()  # three readings, one send that fails: all three stay queued
    dev.cycle()  # backing off: stored without a send
    assert len(box) == 6
    assert box.writes == 2


def _fake_machine():
    """tests/fakes/machine.py with its event log emptied; Skip where it is not the machine
    module (CPython has none, and only MICROPYPATH puts the fake first)."""
    try:
        import machine  # tests/fakes/machine.py, first on MICROPYPATH
    except ImportError:
        raise Skip("the machine fake is on MICROPYPATH only") from None
    if not hasattr(machine, "events"):
        raise Skip("the built-in machine module is not the fake")
    machine.reset_events()
    return machine


def test_status_led_flashes_and_restores_the_led():
    machine = _fake_machine()
    from kpnthings import status_led

    machine.Pin(7, machine.Pin.OUT).value(1)  # the led actuator was switched on
    status_led.ON_MS = status_led.OFF_MS = 0
    status_led.show(7, "unauthorized")
    levels = [v for pin, kind, v in machine.events if pin == 7]
    assert levels[1:] == [1, 0, 1, 0, 1, 0, 1], levels  # 3 flashes, then the old level back
    assert machine.states[7] == 1
    del machine.events[:]
    status_led.show(7, "accepted")  # no pattern: the pin is not touched
    assert machine.events == []
    assert status_led.FLASHES["unknown device"] == 4


def test_a_refused_device_blinks_the_configured_led_and_never_a_sensor_pin():
    # Issue 17 #9: the ESP32 board blinked GPIO2 even when the config had moved the LED and put
    # a sensor on GPIO2. The blink now follows the config's `led` actuator, or does nothing.
    machine = _fake_machine()
    from kpnthings import status_led
    from kpnthings.device import led_signal
    from kpnthings.downlink import Actuators

    status_led.ON_MS = status_led.OFF_MS = 0
    spec = Actuators({"led": {"type": "digital", "pin": 4, "active_low": True}}).spec
    status_led.show_on(spec["led"], "unknown device")
    assert {pin for pin, _, _ in machine.events} == {4}
    levels = [v for pin, kind, v in machine.events if pin == 4]
    assert levels == [0, 1] * 4 + [0], levels  # active low: on is 0; then its old level
    for led in (None, {"type": "pwm", "pin": 5, "min": 0, "max": 100}):
        del machine.events[:]
        status_led.show_on(led, "unauthorized")
        assert machine.events == [], led

    seen = []

    class Board:
        def signal(self, outcome, led=None):
            seen.append((outcome, led))

    signal = led_signal(Board(), spec["led"])
    signal("unauthorized")
    assert seen == [("unauthorized", spec["led"])]
    assert led_signal(object(), spec["led"]) is None  # a board without a signal shows nothing


class BadReadings(Board):
    def read_sensors(self):
        inf = float("inf")
        return [
            ("temperature", float("nan"), "Cel"),
            ("pressure", inf, "Pa"),
            ("depth", -inf, "m"),
            ("bad name!", 1, None),
            ("", 2, None),
            ("_hidden", 3, None),
            ("counter", 7, None),
        ]


def test_a_reading_that_cannot_be_sent_is_refused_when_taken_and_the_rest_go():
    # Issue 17 #3: a NaN (a driver, a float32 overflow) or a bad name was stored, then every
    # pack build raised and nothing went up for hours.
    from kpnthings.device import reading_record

    for name, value in (("t", float("nan")), ("t", float("inf")), ("a b", 1), ("", 1), ("-x", 1)):
        try:
            reading_record(name, value)
        except ValueError:
            continue
        raise AssertionError("accepted %r = %r" % (name, value))
    assert reading_record("a-b:c.d/e_f", 1.5) == {"n": "a-b:c.d/e_f", "v": 1.5}
    dev, tr, _, logs, _ = make(board=BadReadings())
    dev.cycle()
    dev.cycle()
    assert [r["n"] for r in tr.pack(1) if "n" in r] == ["counter"]
    assert len([x for x in logs if x.startswith("[kpn] reading skipped")]) == 12
    assert dev.refused == 12 and "[kpn] reading skipped (12 since boot): " in logs[-2], logs


def test_a_stored_reading_the_writer_refuses_is_dead_lettered_alone():
    # Issue 17 #3, second half: a record already on flash (an older firmware stored it) that
    # the writer refuses costs itself only; the readings before and after it are sent.
    from kpnthings.compat import ticks_ms
    from kpnthings.outbox import Outbox

    where = "/tmp/kpn-test-refused-%d" % ticks_ms()
    box = Outbox(where, max_bytes=16384)
    try:
        for i in range(5):
            box.append({"n": "early", "v": i, "t": NOW - 600 + i})
        box.append({"n": "broken", "v": float("nan"), "t": NOW - 300})
        box.append({"n": "late", "v": 1, "t": NOW - 200})
        dev, tr, _, logs, _ = make(outbox=box)
        dev.cycle()
        sent = [[r.get("n") for r in tr.pack(i)] for i in range(len(tr.bodies))]
        names = [n for pack in sent for n in pack if n]
        assert names.count("early") == 5 and names.count("late") == 1, sent
        assert "broken" not in names
        assert names[-3:] == ["temperature", "door", "counter"]  # this cycle's readings too
        assert len(box) == 0 and box.dead_count == 1
        assert any(x.startswith("[kpn] stored reading refused") for x in logs), logs
    finally:
        for name in os.listdir(where):
            os.remove(where + "/" + name)
        os.rmdir(where)


# -- the answer to a downlink (issue 19): applied or refused, in the next uplink, once ----------


def answer(pack):
    """The vs of the pack's `downlink` record, or None when it has none."""
    said = [r["vs"] for r in pack if r.get("n") == "downlink"]
    assert len(said) <= 1, pack
    return said[0] if said else None


def test_the_next_uplink_answers_each_downlink_command_and_the_one_after_does_not():
    downlink = [
        {"n": BN + "led", "vb": True},
        {"n": BN + "relay", "vb": True},
        {"n": BN + "fan", "vs": "banana"},
    ]
    dev, tr, pins, _, _ = make(Result(200, "accepted", downlink))
    dev.cycle()
    assert answer(tr.pack(0)) is None  # the pack that fetched the downlink predates it
    dev.cycle()
    assert answer(tr.pack(1)) == (
        "led=applied; relay=refused: unknown actuator;"
        " fan=refused: wrong type: vs given, pwm wants v"
    )
    assert values(tr.pack(1))["led"] is True  # the state echo goes on beside it
    dev.cycle()
    assert answer(tr.pack(2)) is None  # accepted once: gone
    assert pins == [("LED", 1)]


def test_an_answer_waits_through_failed_uplinks_and_leaves_with_the_accepted_one():
    box = MemOutbox()
    fail = Result(None, "retry", None, "connection refused")
    dev, tr, _, _, _ = make(Result(200, "accepted", [{"n": BN + "led", "v": 2}]), fail, outbox=box)
    dev.cycle()
    dev.cycle()  # refused by the network: the answer stays
    assert answer(tr.pack(1)) == "led=refused: out of range: v must be 0 or 1, got 2"
    dev.retry_now()
    dev.cycle()
    assert answer(tr.pack(2)) == "led=refused: out of range: v must be 0 or 1, got 2"
    dev.cycle()
    assert answer(tr.pack(3)) is None


def test_the_answer_to_a_downlink_is_replaced_by_the_answer_to_the_next_one():
    # One downlink per accepted uplink: the uplink that carries one answer may fetch the next
    # downlink, whose answer then goes in the uplink after it.
    dev, tr, _, _, _ = make(
        Result(200, "accepted", [{"n": BN + "led", "vb": True}]),
        Result(200, "accepted", [{"n": BN + "door", "vb": True}]),
    )
    dev.cycle()
    dev.cycle()
    dev.cycle()
    dev.cycle()
    assert [answer(tr.pack(i)) for i in range(4)] == [
        None,
        "led=applied",
        "door=refused: unknown actuator",
        None,
    ]


def test_a_malformed_pack_takes_its_answer_with_it():
    # KPN refused the pack the answer was in (its readings go to the dead-letter store): the
    # answer is not sent again, so an answer can never keep a queue refusing.
    box = MemOutbox()
    dev, tr, _, _, _ = make(
        Result(200, "accepted", [{"n": BN + "led", "vb": True}]),
        Result(400, "malformed", None, "HTTP 400"),
        outbox=box,
    )
    dev.cycle()
    dev.cycle()
    assert answer(tr.pack(1)) == "led=applied"
    # The readings went again alone and were accepted (tests/portable/test_isolate.py); the
    # answer went with the refused pack.
    assert box.dead == [] and len(box) == 0 and answer(tr.pack(2)) is None
    dev.cycle()
    assert all(answer(tr.pack(i)) is None for i in range(2, len(tr.bodies)))


def test_a_downlink_the_board_cannot_read_is_answered_as_refused():
    dev, tr, _, _, _ = make(
        Result(200, "accepted", None, "downlink refused: not a SenML pack (JSON array)")
    )
    dev.cycle()
    dev.cycle()
    assert answer(tr.pack(1)) == "refused: not a SenML pack (JSON array)"


def test_a_flood_of_bad_commands_gets_a_bounded_answer():
    downlink = [{"n": BN + "x%d" % i, "vb": True} for i in range(200)]
    dev, tr, _, logs, _ = make(Result(200, "accepted", downlink))
    dev.cycle()
    assert len([x for x in logs if "refused: unknown actuator" in x]) == 200  # each logged
    dev.cycle()
    said = answer(tr.pack(1))
    # At most a quarter of max_body (1024 by default) and 200 characters; whole answers, the
    # rest counted.
    assert said == "; ".join(
        ["x%d=refused: unknown actuator" % i for i in range(6)] + ["and 194 more"]
    )
    assert len(said) <= 200 and len(tr.bodies[1]) <= dev.max_body
    # A command whose answer alone is too long is counted, not cut.
    dev, tr, _, _, _ = make(Result(200, "accepted", [{"n": BN + "n" * 200, "vb": True}]))
    dev.cycle()
    dev.cycle()
    assert answer(tr.pack(1)) == "and 1 more"
    # The smallest max_body (256) leaves 64 characters.
    dev, tr, _, _, _ = make(Result(200, "accepted", downlink), config=dict(CONFIG, max_body=256))
    dev.cycle()
    dev.cycle()
    said = answer(tr.pack(1))
    assert said == "x0=refused: unknown actuator; and 199 more", said


def test_an_answer_that_leaves_no_room_in_max_body_is_dropped_not_the_uplink():
    # At the smallest max_body, six actuator states, the droppedReadings count and the answer
    # do not fit beside the base fields: the answer goes (said in the log), the readings, the
    # states and the count still go up.
    spec = dict(("out%d" % i, {"type": "digital", "pin": i}) for i in range(6))
    downlink = [{"n": BN + name, "vb": True} for name in sorted(spec)]
    box = MemOutbox()
    dev, tr, _, logs, _ = make(
        Result(200, "accepted", downlink),
        outbox=box,
        config=dict(CONFIG, max_body=256),
        actuators=spec,
    )
    dev.cycle()
    assert dev._answer.startswith("out0=applied; out1=applied; ")
    box.dropped = 50000  # the outbox overflowed meanwhile
    dev.cycle()
    assert "[kpn] downlink answer dropped: no room in max_body" in logs
    assert len(tr.bodies) >= 2 and answer(tr.pack(1)) is None
    sent = values(tr.pack(1))
    assert sent["out5"] is True and sent["droppedReadings"] == 50000
    assert dev._answer is None
    dev.cycle()
    assert all(answer(tr.pack(i)) is None for i in range(len(tr.bodies)))
    assert "temperature" in values(tr.pack(2))  # and the readings go on


def test_an_answer_the_pack_writer_cannot_write_never_stops_the_uplinks():
    # The decoder's message quotes the hostile text, here a lone surrogate, which has no UTF-8
    # form: an answer holding it would make every later pack fail to build.
    error = "downlink refused: record 0: field 'n': name '\ud800' is not a valid SenML name"
    box = MemOutbox()
    dev, tr, _, logs, _ = make(Result(200, "accepted", None, error), outbox=box)
    dev.cycle()
    dev.cycle()
    assert answer(tr.pack(1)) == "refused: unreadable (see the board's log)"
    assert len(box) == 0 and len(tr.bodies) == 2
    assert not any("failed" in line for line in logs), logs
