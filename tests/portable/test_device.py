"""The device loop's retry policy: readings kept in the outbox until accepted, transient failures
backing off, 401/403/404 waiting long and blinking the LED, a link that is down or a network driver
that raises costing no reading. The pack and the loop are test_device_loop.py, readings that
cannot be sent test_device_readings.py, the answers to downlinks test_device_answers.py."""

from _device_support import MemOutbox, Result, make, values

from _support import Skip


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
