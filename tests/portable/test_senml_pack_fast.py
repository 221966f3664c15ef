"""senml.Pack's fast way (cached heads, text made at add) and merged base fields, on every runtime.

The host property test compares them with senml.encode on CPython; this runs fixed cases under
MicroPython too, from the .py sources and the .mpy files, cold and warm.
"""

from _pack_reference import pack_records

from _support import raises
from kpnthings import batch, senml
from kpnthings.senml import Pack, SenMLError, encode

BN = "urn:dev:DVNUUID:5e3a0f7c-1b2d-4c6e-9f80-1234567890ab:"
ROWS = [
    ("temperature", 43 / 2, "Cel", None),
    ("humidity", 553 / 10, "%RH", -60),
    ("batteryVoltage", 371 / 100, "V", 0),
    ("count", 7, None, 5),
    ("door", True, None, None),
    ("big", 10**19, None, None),
    ("cold", -1 / 4, "Cel", None),
]


def _records(base, rows, merge):
    recs = []
    for n, v, u, t in rows:
        r = {"n": n, "vb" if type(v) is bool else "v": v, "u": u, "t": t}
        recs.append(r)
    if merge:
        recs[0].update(base)
        return recs
    return [base] + recs


def test_pack_fast_way_writes_what_encode_writes_cold_and_warm():
    for merge in (False, True):
        want = encode(_records({"bn": BN, "bt": 1700000000}, ROWS, merge))
        for _ in range(3):
            p = Pack(BN, 1700000000, merge=merge)
            for n, v, u, t in ROWS:
                p.add(n, v, u, t)
            assert p.encode() == want


def test_pack_fast_way_at_float32():
    old = senml.FLOAT32
    senml.FLOAT32 = True
    try:
        want = encode(_records({"bn": BN}, ROWS[:3], False))
        for _ in range(2):
            p = Pack(BN)
            for n, v, u, t in ROWS[:3]:
                p.add(n, v, u, t)
            assert p.encode() == want
    finally:
        senml.FLOAT32 = old


def test_a_long_pack_is_joined_as_it_grows_and_stays_the_same():
    rows = [("temperature", 20 + i / 4, None, i * 60) for i in range(40)]
    want = encode(_records({"bn": BN, "bt": 1700000000, "bu": "Cel"}, rows, True))
    for warm in (False, True):
        p = Pack(BN, 1700000000, "Cel", merge=True)
        for n, v, u, t in rows:
            p.add(n, v, u, t)
        if warm:
            assert len(p._parts) < 40  # joined on the way, not some 120 pieces
        assert p.encode() == want


def test_refusals_name_the_same_record_on_the_fast_way():
    p = Pack(BN).add("temperature", 21.5, "Cel")
    p.encode()  # warm
    e = raises(SenMLError, Pack(BN).add("temperature", 21.5, "Cel").add("bad name", 1).encode)
    assert str(e).startswith("record 2: field 'n': ")
    e = raises(SenMLError, Pack(BN).add("temperature", float("inf"), "Cel").encode)
    assert str(e).startswith("record 1: field 'v': ")
    raises(SenMLError, Pack(BN, merge=True).encode)


def test_batch_fast_encode_is_the_dict_encode():
    readings = [
        {"n": n, "u": u, "v": v, "t": 1700000000 + 60 * i}
        for i, (n, v, u, _) in enumerate(ROWS[:3])
    ]
    extra = [{"n": "led", "vb": True}]
    want = encode(pack_records(BN, readings, extra))
    for _ in range(2):
        assert batch.build_pack(BN, readings, 1024, extra) == (want, 3)
    # One byte short: the last reading is left for the next pack, never a cut body.
    body, used = batch.build_pack(BN, readings, len(want) - 1, extra)
    assert used == 2 and body == encode(pack_records(BN, readings[:2], extra))
    body, used = batch.build_pack(BN, readings, 1024, extra)
    assert (body, used) == (want, 3)
