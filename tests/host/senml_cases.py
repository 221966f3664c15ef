"""Packs and floats that must encode to the same bytes under CPython and MicroPython.

Imported by test_senml_cross_runtime.py on CPython and run by the MicroPython unix port
(`import senml_cases; senml_cases.main()`), which prints one line per case: label, then the hex
of the bytes (or ERR and the message). Every float is built from its bits or by exact
arithmetic, never parsed from a literal: MicroPython's parser can be one unit off, and the
question here is how each runtime *writes* the same float.
"""

import binascii
import struct

from kpnthings import senml

BN = "urn:dev:DVNUUID:5e3a0f7c-1b2d-4c6e-9f80-1234567890ab:"


def _d(hexbits):
    return struct.unpack(">d", binascii.unhexlify(hexbits))[0]


def _packs():
    P = senml.Pack
    yield "kpn", P(BN, 1700000000).add("temperature", 43 / 2, "Cel")
    yield "kinds", P(BN).add("i", -7).add("b", True).add("s", "hi").add("d", b"\x00\xfb\xff")
    yield (
        "floats",
        (
            P(BN, 1700000000, "Cel")
            .add("a", 97 / 10)
            .add("b", 1 / 3)
            .add("c", 1 / 10 + 2 / 10)
            .add("d", -0.0)
            .add("e", 134773 / 10**8)
            .add("f", 1 / 10**7)
            .add("g", _d("444b1ae4d6e2ef50"))
            .add("h", _d("7fefffffffffffff"))
            .add("i", _d("0000000000000001"))
            .add("j", float(2**60))
            .add("k", 1500.0)
        ),
    )
    yield "unicode", P(BN).add("s", "\u00e9\u20ac\U0001f600 caf\u00e9", "\u00b0C")
    yield "escapes", P(BN).add("s", 'q"b\\c\n\r\t\x00\x01\x1f\x7f/').add("t", "")
    yield "time", P(BN, 1700000000).add("a", 1, time=-60).add("e", sum=12345, unit="Wh")
    yield "slash", P(BN, None, "/").add("heat", 1, "/")
    yield "bigints", P().add("a:x", 10**19).add("a:y", -(2**63)).add("a:z", 2**53 + 1)


def _records():
    yield (
        "all-fields",
        [
            {
                "ut": 7,
                "t": 6,
                "s": 5,
                "v": 4 / 7,
                "u": "A",
                "n": "x",
                "bver": 10,
                "bs": 3,
                "bv": 2,
                "bu": "V",
                "bt": 1,
                "bn": "a:",
            }
        ],
    )
    yield "bad-name", [{"bn": "a:"}, {"n": "ok", "v": 1}, {"n": "a b", "v": 1}]
    yield "two-values", [{"n": "a", "v": 1, "vs": "x"}]
    yield "nan", [{"n": "a", "v": _d("7ff8000000000000")}]


def _floats(count):
    # A 64-bit LCG over bit patterns (exact integer arithmetic on both runtimes), mixed with
    # sensor-like decimals made by one exact division.
    seed = 12345
    mask = 0xFFFFFFFFFFFFFFFF
    for _ in range(count):
        seed = (seed * 6364136223846793005 + 1442695040888963407) & mask
        x = struct.unpack("<d", struct.pack("<Q", seed))[0]
        if x == x and x - x == 0:
            yield x
        yield ((seed >> 11) % 2000001 - 1000000) / 10 ** ((seed >> 40) % 9)
        yield struct.unpack("<f", struct.pack("<I", (seed >> 17) & 0x7F7FFFFF))[0]


def iter_lines(count=700):
    """The case lines, identical on every runtime (the test compares them)."""
    for label, pack in _packs():
        yield label + " " + binascii.hexlify(pack.encode()).decode()
    for label, recs in _records():
        try:
            yield label + " " + binascii.hexlify(senml.encode(recs)).decode()
        except senml.SenMLError as e:
            yield label + " ERR " + str(e)
    old = senml.FLOAT32
    try:
        for i, x in enumerate(_floats(count)):
            senml.FLOAT32 = None
            a = senml.format_float(x)
            senml.FLOAT32 = True
            try:
                b = senml.format_float(x)
            except senml.SenMLError:
                b = "ERR"
            yield "f%d %s %s" % (i, a, b)
    finally:
        senml.FLOAT32 = old


def lines(count=700):
    return list(iter_lines(count))


def main():
    # One line at a time: the unix port's default heap is small.
    for line in iter_lines():
        print(line)


_FUZZ_BASE = (
    b'[{"bn":"urn:dev:DVNUUID:x:","bt":1.58565075E9},{"n":"temperature","v":20.5,"u":"Cel"},'
    b'{"n":"b","vb":true},{"n":"m","vs":"Ac\\"t"},{"n":"i","vd":"aGFsbG9vb29vISE="}]',
    b'[{"bn":"a:","bver":10,"bu":"A","bv":1,"bs":2},{"n":"x","s":1,"t":-5,"ut":3}]',
)
_FUZZ_TOKENS = (
    b"[", b"]", b"{", b"}", b'"', b"\\", b"\\u", b"\\ud800", b"1e999", b"-", b"0", b".", b"E",
    b"null", b"true", b",", b":", b'"v":', b'"vd":"', b'"bver":11', b"\xff", b"\xed\xa0\x80",
    b"\xc3", b"NaN", b"9" * 70, b"[" * 40,
)  # fmt: skip


def fuzz(count, seed=7):
    """Yield (input, exception name) for every mutated pack that decode ends in anything but
    SenMLError. Deterministic (integer LCG), so both runtimes try the same inputs."""
    mask = 0xFFFFFFFFFFFFFFFF

    def rnd(n):
        nonlocal seed
        seed = (seed * 6364136223846793005 + 1442695040888963407) & mask
        return (seed >> 33) % n

    for _ in range(count):
        b = _FUZZ_BASE[rnd(2)]
        for _ in range(1 + rnd(4)):
            i = rnd(len(b) + 1)
            op = rnd(3)
            if op == 0 and i < len(b):
                b = b[:i] + bytes([rnd(256)]) + b[i + 1 :]
            elif op == 1 and i < len(b):
                b = b[:i] + b[i + 1 :]
            else:
                b = b[:i] + _FUZZ_TOKENS[rnd(len(_FUZZ_TOKENS))] + b[i:]
        inputs = [b]
        try:
            inputs.append(b.decode())  # the str path too, when the bytes are UTF-8
        except UnicodeError:
            pass
        for data in inputs:
            try:
                senml.decode(data, now=1700000000)
            except senml.SenMLError:
                pass
            except Exception as e:  # the defect this hunts for
                yield data, type(e).__name__


def fuzz_main(count=20000):
    bad = 0
    for data, name in fuzz(count):
        bad += 1
        if bad <= 5:
            print("OTHER", name, repr(data))
    print("fuzz-other", bad)
