"""A 400 for a pack of many readings (issue 18, item 2): the pack is split and the halves are
sent again, so only the readings KPN refuses reach the dead-letter store, and the requests this
costs stay within a bound (about 2 log2(n) per bad reading, at most split_requests a flush)."""

import json
import os

from kpnthings.compat import ticks_ms
from kpnthings.device import Device
from kpnthings.outbox import Outbox

UUID = "0b7f8c3e-5a2d-4c1e-9f6a-2d3e4f5a6b7c"


class Result:
    def __init__(self, status, outcome):
        self.status = status
        self.outcome = outcome
        self.downlink = []
        self.error = None if status == 200 else "HTTP %s" % status


class Kpn:
    """Refuses (400) every pack that holds a reading named in `refused`, as KPN refuses a pack
    with one record it cannot store; accepts the rest and keeps what it accepted."""

    def __init__(self, refused, down=False):
        self.refused = refused
        self.down = down
        self.requests = 0
        self.stored = []

    def send(self, body):
        self.requests += 1
        if self.down:
            return Result(None, "retry")
        names = [r.get("n") for r in json.loads(bytes(body))]
        if any(n in self.refused for n in names):
            return Result(400, "malformed")
        self.stored.extend(n for n in names if n)
        return Result(200, "accepted")


class Board:
    CLOCK_TRUSTED = True

    def read_sensors(self):
        return []


def _run(names, kpn, **config):
    where = "/tmp/kpn-test-isolate-%d" % ticks_ms()
    box = Outbox(where, max_bytes=65536)
    box.extend([{"n": name, "v": 1} for name in names])
    cfg = {"dvnuuid": UUID, "interval_s": 60, "max_body": 4096}
    cfg.update(config)
    logs = []
    dev = Device(cfg, Board(), kpn, None, outbox=box, log=logs.append, sleep_ms=lambda ms: None)
    try:
        dev.cycle()
        return logs, [r["n"] for r in box.dead_letters()], len(box)
    finally:
        for name in os.listdir(where):
            os.remove(where + "/" + name)
        os.rmdir(where)


def test_one_refused_reading_in_thirty_costs_itself_only():
    names = ["r%d" % i for i in range(30)]
    names[17] = "bad"
    kpn = Kpn({"bad"})
    _, dead, left = _run(names, kpn)
    assert dead == ["bad"], dead
    assert left == 0
    assert sorted(kpn.stored) == sorted(n for n in names if n != "bad")
    # the whole pack, then halves down to the one: 1 + 2 log2(30), rounded up
    assert kpn.requests <= 1 + 2 * 5, kpn.requests
    print("30 readings, 1 refused: %d requests" % kpn.requests)


def test_three_refused_readings_cost_a_few_requests_each():
    names = ["r%d" % i for i in range(30)]
    for i in (0, 12, 29):
        names[i] = "bad%d" % i
    kpn = Kpn({"bad0", "bad12", "bad29"})
    _, dead, left = _run(names, kpn)
    assert dead == ["bad0", "bad12", "bad29"], dead
    assert left == 0 and len(kpn.stored) == 27
    assert kpn.requests <= 1 + 3 * 2 * 5, kpn.requests


def test_the_requests_a_flush_spends_on_splitting_are_bounded():
    names = ["bad%d" % i for i in range(30)]  # every reading refused: the worst case
    kpn = Kpn(set(names))
    logs, dead, left = _run(names, kpn, split_requests=6)
    assert kpn.requests == 1 + 6
    assert len(dead) + left == 30 and left > 0  # the rest waits for the next cycle
    assert any("split" in line for line in logs), logs


def test_a_single_refused_reading_is_dead_lettered_as_before():
    kpn = Kpn({"bad"})
    _, dead, left = _run(["bad"], kpn)
    assert dead == ["bad"] and left == 0 and kpn.requests == 1


def test_a_refused_extra_record_costs_no_reading():
    # The pack's droppedReadings or state records may be what KPN refuses: the readings go
    # alone once, and none of them is dead-lettered for it.
    from kpnthings.downlink import Actuators

    names = ["r%d" % i for i in range(10)]
    kpn = Kpn({"led"})  # the actuator's state record
    where = "/tmp/kpn-test-isolate-extra-%d" % ticks_ms()
    box = Outbox(where, max_bytes=65536)
    box.extend([{"n": name, "v": 1} for name in names])
    acts = Actuators({"led": {"type": "digital", "pin": 2}}, pin_factory=lambda k, p, e: None)
    acts._state["led"] = True  # a downlink drove it: its state goes in every pack
    cfg = {"dvnuuid": UUID, "interval_s": 60, "max_body": 4096}
    dev = Device(cfg, Board(), kpn, acts, outbox=box, log=lambda x: None, sleep_ms=lambda ms: 0)
    try:
        dev.cycle()
        assert len(box) == 0 and box.dead_count == 0
        assert sorted(kpn.stored) == sorted(names) and kpn.requests == 2
    finally:
        for name in os.listdir(where):
            os.remove(where + "/" + name)
        os.rmdir(where)
