"""State records and counters describe now (issue 18, item 4): in a backlog flush they carry the
current time, or no time, and go only in the pack that holds the newest readings. Before, each
pack stamped them with its own newest reading's time: an LED's new state was reported hours
before it was switched."""

from _support import AcceptingKpn
from kpnthings.device import Device
from kpnthings.downlink import Actuators

UUID = "0b7f8c3e-5a2d-4c1e-9f6a-2d3e4f5a6b7c"
NOW = 1760000000
HOURS_AGO = NOW - 8 * 3600


class _Queued(list):
    def close(self):
        pass


class Box:
    """The Outbox interface in RAM, with a backlog taken 8 hours ago."""

    def __init__(self, records):
        self.items = list(records)
        self.dropped = 3

    def __len__(self):
        return len(self.items)

    def extend(self, records):
        self.items.extend(dict(r) for r in records)
        return []

    def queued(self):
        return _Queued(dict(r) for r in self.items)

    def ack(self, n):
        del self.items[:n]

    def dead_letter(self, n):
        del self.items[:n]

    def clear_dropped(self, n):
        self.dropped -= n


class Board:
    def read_sensors(self):
        return [("temperature", 21.5, "Cel")]


def resolved(pack):
    """(name, absolute time or None) of each record, SenML's bt + t resolved."""
    bt = pack[0].get("bt")
    out = []
    for r in pack:
        t = r.get("t")
        out.append((r["n"], None if bt is None and t is None else (bt or 0) + (t or 0)))
    return out


def _device(trusted):
    acts = Actuators({"led": {"type": "digital", "pin": 2}}, pin_factory=lambda k, p, e: None)
    acts._state["led"] = True  # switched by a downlink just now
    box = Box({"n": "old", "v": i, "t": HOURS_AGO + i} for i in range(40))
    # undated_wait_s 0: without a clock the readings go at once, not after a wait for NTP.
    cfg = {"dvnuuid": UUID, "interval_s": 60, "max_body": 600, "undated_wait_s": 0}
    dev = Device(
        cfg,
        Board(),
        AcceptingKpn(),
        acts,
        outbox=box,
        now=lambda: NOW + 0.5,
        log=lambda line: None,
        clock_trusted=trusted,
        sleep_ms=lambda ms: None,
    )
    return dev


def test_extras_carry_the_current_time_and_go_with_the_newest_readings_only():
    dev = _device(True)
    dev.cycle()
    packs = dev.transport.packs
    assert len(packs) > 1
    for pack in packs[:-1]:
        names = [n for n, _ in resolved(pack)]
        assert "led" not in names and "droppedReadings" not in names, names
    last = dict(resolved(packs[-1]))
    assert last["led"] == NOW and last["droppedReadings"] == NOW, resolved(packs[-1])
    assert last["temperature"] == NOW


def test_without_a_clock_the_extras_carry_no_time():
    dev = _device(False)
    dev.cycle()
    last = dev.transport.packs[-1]
    recs = dict((r["n"], r) for r in last)
    # The newest readings are this cycle's, untimed: the last pack has no bt, nor do extras.
    assert "bt" not in last[0] and "t" not in recs["led"], last
