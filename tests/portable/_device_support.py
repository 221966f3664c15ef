"""What the device-loop tests share (they run under CPython and MicroPython alike): a Device built
on a scripted Transport, a Board whose sensors read alike every cycle, the actuators it drives, and
MemOutbox, the Outbox interface in RAM."""

import json

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
