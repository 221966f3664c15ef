"""The fast ways of building a body write exactly the bytes of the checked way (hypothesis).

senml.Pack turns readings of the usual shape into JSON as they are added (cached heads per
sensor); kpnthings.batch writes its packs straight into a buffer instead of a dict per record.
Both must give byte for byte what senml.encode gives for the same records, with cold and with
warm caches, at the host's float width and at float32; and refuse what encode refuses, naming
the same record (when a record has several faults, which one is named first may differ).
"""

import math
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpnthings import batch, senml
from kpnthings.senml import Pack, SenMLError, encode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "portable"))
from _pack_reference import pack_records

MANY = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
# Mostly valid names from a small set (so caches hit), sometimes anything.
names = st.one_of(
    st.sampled_from(["temperature", "humidity", "batteryVoltage", "led", "a:b", "x"]),
    st.builds(lambda a, b: a + b, st.sampled_from(_ALNUM), st.text(_ALNUM + "-:./_", max_size=8)),
    st.text(max_size=6),
)
units = st.one_of(st.none(), st.sampled_from(["Cel", "%RH", "V", "/", ""]), st.text(max_size=4))
floats = st.floats(allow_nan=True, allow_infinity=True)
values = st.one_of(
    st.none(),
    st.integers(-(10**21), 10**21),
    floats,
    st.booleans(),
    st.text(max_size=5),
    st.binary(max_size=5),
)
times = st.one_of(st.none(), st.integers(-(10**21), 10**21), floats)
base_names = st.one_of(
    st.none(),
    st.sampled_from(["urn:dev:DVNUUID:5e3a0f7c-1b2d-4c6e-9f80-1234567890ab:", "", "d:"]),
    names,
)
adds = st.lists(
    st.tuples(names, values, units, times, st.one_of(st.none(), st.integers(-5, 5), floats)),
    max_size=5,
)


def _batch_all(bn, recs, extra):
    # The whole run must fit (a large buffer): the bytes, or the error that names the record.
    body, used = batch.build_pack(bn, recs, 1 << 16, extra)
    assert used == len(recs)
    return body


def _outcome(fn):
    try:
        return fn()
    except SenMLError as e:
        return ("error", str(e).split(":")[0])  # "record 3", or the pack-level message


def _records(bn, bt, bu, rows, merge):
    recs = []
    for name, value, unit, t, s in rows:
        r = {"n": name, "u": unit, "t": t, "s": s}
        if value is not None:
            r[senml._VK[type(value)]] = value
        recs.append(r)
    base = {"bn": bn, "bt": bt, "bu": bu}
    if bn is None and bt is None and bu is None:
        return recs
    if merge and recs:
        recs[0].update(base)
        return recs
    return [base] + recs


def _pack(bn, bt, bu, rows, merge):
    p = Pack(bn, bt, bu, merge=merge)
    for row in rows:
        p.add(*row)
    return p.encode()


@MANY
@given(base_names, st.one_of(st.none(), st.integers(0, 2**40), floats), units, adds, st.booleans())
def test_pack_writes_what_encode_writes(bn, bt, bu, rows, merge):
    has_base = not (bn is None and bt is None and bu is None)
    for f32 in (None, True):
        senml.FLOAT32 = f32
        try:
            want = _outcome(lambda: encode(_records(bn, bt, bu, rows, merge)))
            if merge and has_base and not rows:
                want = ("error", "a pack needs at least one record")  # merged: nothing to open
            for _ in range(2):  # cold, then warm caches
                assert _outcome(lambda: _pack(bn, bt, bu, rows, merge)) == want
        finally:
            senml.FLOAT32 = None


readings = st.lists(
    st.tuples(
        st.sampled_from(["temperature", "humidity", "batteryVoltage", "door", "bad name"]),
        st.sampled_from(["v", "vb", "vs", "vd"]),
        st.one_of(
            st.integers(-100, 10**12), st.floats(-1e6, 1e6), st.booleans(), st.text(max_size=3)
        ),
        st.one_of(st.none(), st.sampled_from(["Cel", "%RH", "V"])),
    ),
    min_size=1,
    max_size=6,
)


@MANY
@given(
    readings,
    st.booleans(),
    st.integers(0, 600),
    st.lists(st.sampled_from(["led", "droppedReadings"]), max_size=2),
)
def test_batch_writes_what_the_dict_records_encode_to(rows, timed, step, extra_names):
    bn = "urn:dev:DVNUUID:5e3a0f7c-1b2d-4c6e-9f80-1234567890ab:"
    recs = []
    for i, (name, key, value, unit) in enumerate(rows):
        r = {"n": name, key: value}
        if unit is not None:
            r["u"] = unit
        if timed:
            r["t"] = 1700000000 + (i * step) % 1000
        recs.append(r)
    extra = [{"n": n, "v": 1} for n in extra_names]
    want = _outcome(lambda: encode(pack_records(bn, recs, extra)))
    for _ in range(2):  # cold, then warm head cache
        assert _outcome(lambda: _batch_all(bn, recs, extra)) == want


def test_a_float_time_and_float_values_keep_their_text():
    # Cases the fast way leaves to the checked way, spelled out.
    p = Pack("d:", 1.5).add("x", 2.5, time=0.25).add("y", -0.0).add("z", math.pi)
    assert p.encode() == b'[{"bn":"d:","bt":1.5},{"n":"x","v":2.5,"t":0.25},' + (
        b'{"n":"y","v":-0.0},{"n":"z","v":3.141592653589793}]'
    )


@MANY
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["temperature", "humidity", "door"]),
            st.one_of(st.integers(-100, 10**6), st.floats(-1e3, 1e3)),
            st.one_of(st.none(), st.sampled_from(["Cel", "%RH", ""])),
            st.integers(-300, 300),
        ),
        min_size=1,
        max_size=8,
    ),
    st.lists(
        st.sampled_from([("led", None), ("droppedReadings", None), ("fan", "%"), ("x", "")]),
        max_size=2,
    ),
    st.integers(20, 700),
)
def test_batch_takes_the_most_readings_that_fit(rows, extra_rows, limit):
    # Any order of times (a clock stepped back), any mix of units: the pack for the first k
    # readings changes its bt and bu with k, and write_pack must still find the largest k whose
    # pack fits, with exactly the bytes senml.encode makes of it, and put that pack back after
    # a reading that did not fit.
    bn = "urn:dev:DVNUUID:5e3a0f7c-1b2d-4c6e-9f80-1234567890ab:"
    recs = []
    for name, value, unit, dt in rows:
        r = {"n": name, "v": value, "t": 1700000000 + dt}
        if unit is not None:
            r["u"] = unit
        recs.append(r)
    extra = []
    for name, unit in extra_rows:
        r = {"n": name, "v": 1}
        if unit is not None:
            r["u"] = unit
        extra.append(r)
    best = (b"", 0)
    for k in range(len(recs), -1, -1):
        body = encode(pack_records(bn, recs[:k], extra)) if k or extra else b""
        if len(body) <= limit:
            best = (body, k)
            break
    assert batch.build_pack(bn, recs, limit, extra) == best
