"""CPU per message on the emulated RP2040, in CPU cycles (kpnthings_tools.bench_rp2 runs it).

Set before it runs: IMPL ("ours" or "baseline") and N (messages per figure). Each figure is N
messages between two @@MARK lines, which the runner stamps with the emulated CPU's cycle count;
an empty loop between two marks gives the cost of the loop and the marks, to subtract. The
reference data and the three paths are those of bench/mp_bench.py:

ours, "firmware": a cycle's readings (dicts, as the outbox gives them) through
                  kpnthings.batch.write_pack into the device's one body buffer, then
                  kpnthings.auth.message_token over that buffer
ours, "pack":     kpnthings.senml.Pack, add x 3, encode, then message_token
baseline:         micropython-senml (SenmlPack, SenmlRecord, to_json), then SHA-256 with hashlib
Each path's body and token are printed once (@@BODY, @@TOKEN) for the host to check.
"""

import gc
import hashlib
import time
from binascii import hexlify

UUID = "5e3a0f7c-1b2d-4c6e-9f80-1234567890ab"
BN = "urn:dev:DVNUUID:" + UUID + ":"
SECRET = "72J3wD2bd49jnMI8S31j2L3vZldH3rSS"
BT = 1700000000
READINGS = (("temperature", "Cel", 21.5), ("humidity", "%RH", 55.3), ("batteryVoltage", "V", 3.71))


# The device's body buffer: allocated once at boot (kpnthings.device.Device.build), reused.
BODY = bytearray(1024)


def ours_firmware():
    from kpnthings.auth import message_token
    from kpnthings.batch import write_pack

    records = [{"n": n, "u": u, "v": v, "t": BT} for n, u, v in READINGS]
    end, _ = write_pack(BODY, BN, records)
    body = memoryview(BODY)[:end]
    return body, message_token(body, SECRET)


def ours_pack():
    from kpnthings.auth import message_token
    from kpnthings.senml import Pack

    p = Pack(BN, BT)
    for n, u, v in READINGS:
        p.add(n, v, u)
    body = p.encode()
    return body, message_token(body, SECRET)


def baseline():
    from senml import SenmlPack, SenmlRecord

    p = SenmlPack(BN)
    p.base_time = BT
    for n, u, v in READINGS:
        p.add(SenmlRecord(n, unit=u, value=v))
    body = p.to_json().encode()
    h = hashlib.sha256(body)
    h.update(SECRET)
    return body, hexlify(h.digest()).decode()


def nothing():
    return None


def timed(label, fn, n):
    out = fn()  # the first call pays for imports: measure the steady state
    if out is not None:
        print("@@BODY", label, bytes(out[0]).decode())
        print("@@TOKEN", label, out[1])
    fn()
    gc.collect()
    print("@@MARK %s-start" % label)
    t0 = time.ticks_us()
    for _ in range(n):
        fn()
    dt = time.ticks_diff(time.ticks_us(), t0)
    print("@@MARK %s-end" % label)
    print("@@US", label, dt)


timed("empty", nothing, N)  # noqa: F821 (set by the runner)
if IMPL == "ours":  # noqa: F821
    timed("firmware", ours_firmware, N)  # noqa: F821
    timed("pack", ours_pack, N)  # noqa: F821
else:
    timed("baseline", baseline, N)  # noqa: F821
