"""Micro-benchmarks that run on the MicroPython unix port (kpnthings_tools.bench drives them).

    micropython bench/mp_bench.py ours|baseline wire|cpu|heap

ours:     kpnthings.senml.Pack + encode + kpnthings.auth.message_token (name checks included);
          also the firmware's path (reading dicts through kpnthings.batch.write_pack into the
          device's body buffer + token)
baseline: micropython-senml (KPN's library as published in micropython-lib): SenmlPack +
          SenmlRecord + to_json, then the same SHA-256 token with hashlib
Prints one JSON object.
"""

import gc
import hashlib
import json
import sys
import time
from binascii import hexlify

UUID = "5e3a0f7c-1b2d-4c6e-9f80-1234567890ab"
BN = "urn:dev:DVNUUID:" + UUID + ":"
SECRET = "72J3wD2bd49jnMI8S31j2L3vZldH3rSS"
BT = 1700000000
# The reference reading set: three sensors with their KPN names and units.
READINGS = (("temperature", "Cel", 21.5), ("humidity", "%RH", 55.3), ("batteryVoltage", "V", 3.71))
CYCLES = 10
PERIOD_S = 60


def batch_readings():
    """10 cycles x 3 sensors, one cycle a minute, values drifting like real sensors."""
    out = []
    for c in range(CYCLES):
        for i, (n, u, v) in enumerate(READINGS):
            out.append((n, u, round(v + (c * (i + 1)) * 0.1, 2), BT + c * PERIOD_S))
    return out


def ours_single():
    from kpnthings.auth import message_token
    from kpnthings.senml import Pack

    p = Pack(BN, BT)
    for n, u, v in READINGS:
        p.add(n, v, u)
    body = p.encode()
    return body, message_token(body, SECRET)


def ours_batch(readings=None):
    # What the device sends: the outbox's readings through kpnthings.batch (base fields merged
    # into the first record, bt from the earliest reading, integer offsets).
    from kpnthings.batch import build_pack

    if readings is None:
        readings = batch_readings()
    records = [{"n": n, "u": u, "v": v, "t": t} for n, u, v, t in readings]
    body, used = build_pack(BN, records, 1 << 16)
    assert used == len(records)
    return body


def ours_device_single():
    return ours_batch([(n, u, v, BT) for n, u, v in READINGS])


# The device's body buffer: allocated once at boot (kpnthings.device.Device.build), reused.
BODY = bytearray(1024)


def ours_device_signed():
    # The firmware's own path for one cycle: the outbox's reading dicts through batch.write_pack
    # into the device's one body buffer (base fields merged into the first record), then the
    # token over those bytes.
    from kpnthings.auth import message_token
    from kpnthings.batch import write_pack

    records = [{"n": n, "u": u, "v": v, "t": BT} for n, u, v in READINGS]
    end, _ = write_pack(BODY, BN, records)
    body = memoryview(BODY)[:end]
    return body, message_token(body, SECRET)


def baseline_single():
    from senml import SenmlPack, SenmlRecord

    p = SenmlPack(BN)
    p.base_time = BT
    for n, u, v in READINGS:
        p.add(SenmlRecord(n, unit=u, value=v))
    body = p.to_json().encode()
    h = hashlib.sha256(body)
    h.update(SECRET)
    return body, hexlify(h.digest()).decode()


def baseline_build_to_json():
    from senml import SenmlPack, SenmlRecord

    p = SenmlPack(BN)
    p.base_time = BT
    for n, u, v in READINGS:
        p.add(SenmlRecord(n, unit=u, value=v))
    return p.to_json()


def baseline_batch():
    from senml import SenmlPack, SenmlRecord

    p = SenmlPack(BN)
    for n, u, v, t in batch_readings():
        p.add(SenmlRecord(n, unit=u, value=v, time=t))
    return p.to_json().encode()


def json_dumps_single():
    rows = [{"bn": BN, "bt": BT}] + [{"n": n, "u": u, "v": v} for n, u, v in READINGS]
    return json.dumps(rows).encode()


def json_dumps_batch():
    rows = [{"bn": BN}] + [{"n": n, "u": u, "v": v, "t": t} for n, u, v, t in batch_readings()]
    return json.dumps(rows).encode()


def _us_per_call(fn, n):
    best = None
    for _ in range(5):
        gc.collect()
        t0 = time.ticks_us()
        for _ in range(n):
            fn()
        dt = time.ticks_diff(time.ticks_us(), t0)
        if best is None or dt < best:
            best = dt
    return best / n


def _bytes_per_call(fn, n=20):
    fn()  # first call pays for imports and caches; measure the steady state
    gc.collect()
    gc.disable()
    try:
        a = gc.mem_alloc()
        for _ in range(n):
            fn()
        b = gc.mem_alloc()
    finally:
        gc.enable()
    return (b - a) // n


def main():
    impl, what = sys.argv[1], sys.argv[2]
    single = ours_single if impl == "ours" else baseline_single
    if what == "wire":
        body, token = single()
        batch = ours_batch() if impl == "ours" else baseline_batch()
        out = {"single": body.decode(), "batch": batch.decode(), "token": token}
        if impl == "ours":
            out["pack_single"] = out["single"]  # Pack.encode: base fields in a record of their own
            out["single"] = ours_device_single().decode()
        if impl == "baseline":
            out["json_dumps_single"] = json_dumps_single().decode()
            out["json_dumps_batch"] = json_dumps_batch().decode()
    elif what == "cpu":
        single()
        out = {"us_per_message": _us_per_call(single, 300)}
        if impl == "ours":
            out["us_device_path"] = _us_per_call(ours_device_signed, 300)
    elif what == "heap":
        out = {"bytes_per_message": _bytes_per_call(single)}
        if impl == "ours":
            out["bytes_device_path"] = _bytes_per_call(ours_device_signed)
        if impl == "baseline":
            out["bytes_build_to_json"] = _bytes_per_call(baseline_build_to_json)
    else:
        raise SystemExit("unknown measure " + what)
    print(json.dumps(out))


main()
