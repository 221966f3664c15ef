"""Health records' bytes on the wire, from the packs the library itself builds (kpnthings_tools
.bench.health drives this on the MicroPython unix port).

    micropython bench/health_bench.py OUTBOX_DIR

The real Device, outbox and pack writer run HOURS hours of cycles at config.DEFAULTS' interval_s,
with the health records at config.DEFAULTS' health_every and then off, over one reading set; the
clock and ticks_ms are simulated, so uptime has the digits it would have. Prints one JSON object:
the bytes of every body with and without health, the first set of a boot and the sets after.
"""

import json
import os
import sys

from kpnthings import compat
from kpnthings.config import DEFAULTS
from kpnthings.device import Device
from kpnthings.outbox import Outbox

UUID = "5e3a0f7c-1b2d-4c6e-9f80-1234567890ab"
HOURS = 4
READINGS = (("temperature", 21.5, "Cel"), ("humidity", 55.3, "%RH"), ("batteryVoltage", 3.71, "V"))


class Board:
    def read_sensors(self):
        return list(READINGS)


class Result:
    status = 200
    outcome = "accepted"
    downlink = ()
    error = None


class Transport:
    def __init__(self):
        self.sizes = []

    def send(self, body):
        self.sizes.append(len(body))
        return Result()


def _clear(path):
    try:
        for name in os.listdir(path):
            os.remove(path + "/" + name)
    except OSError:
        os.mkdir(path)


def run(where, every):
    interval = DEFAULTS["interval_s"]
    now = [1700000000]
    compat.ticks_ms = lambda: (now[0] - 1700000000) * 1000 + 5000
    _clear(where)
    config = {"dvnuuid": UUID, "interval_s": interval, "health_every": every}
    tr = Transport()
    dev = Device(config, Board(), tr, None, outbox=Outbox(where), now=lambda: now[0])
    dev.clock_trusted = True
    for _ in range(HOURS * 3600 // interval + 1):
        dev.cycle()
        now[0] += interval
    return tr.sizes


def main():
    where = sys.argv[1]
    every = DEFAULTS["health_every"]
    on = run(where, every)
    off = run(where, 0)
    _clear(where)
    os.rmdir(where)
    extra = [on[i] - off[i] for i in range(len(on))]  # (MicroPython's zip has no strict)
    print(
        json.dumps(
            {
                "interval_s": DEFAULTS["interval_s"],
                "health_every": every,
                "hours": HOURS,
                "packs": len(on),
                "bytes_on": sum(on),
                "bytes_off": sum(off),
                "first_set_bytes": extra[0],
                "sets_after": [x for x in extra[1:] if x],
                "health_bytes_per_hour": (sum(extra) - extra[0]) // HOURS,
                "readings_bytes_per_hour": sum(off) // HOURS,
            }
        )
    )


main()
