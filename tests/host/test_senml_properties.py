"""Property tests (hypothesis, CPython) for kpnthings.senml.

- encode then decode gives back the records RFC 8428 section 4.6 resolves;
- decode raises nothing but SenMLError, whatever bytes or JSON it is given;
- float text is the shortest that reads back, at float64 and at forced float32.
"""

import json
import math
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpnthings import senml
from kpnthings.senml import Pack, SenMLError, decode, encode, format_float

MANY = settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
name_tail = st.text(alphabet=_ALNUM + "-:./_", max_size=20)
names = st.builds(lambda a, b: a + b, st.sampled_from(_ALNUM), name_tail)
finite = st.floats(allow_nan=False, allow_infinity=False)
ints = st.integers(min_value=-(10**20) + 1, max_value=10**20 - 1)
numbers = st.one_of(ints, finite)
values = st.one_of(numbers, st.booleans(), st.text(max_size=30), st.binary(max_size=30))
times = st.one_of(st.none(), st.integers(-(2**40), 2**40), finite)


def _same(a, b):
    if isinstance(b, float):
        return isinstance(a, float) and a == b and math.copysign(1, a) == math.copysign(1, b)
    return type(a) is type(b) and a == b


@st.composite
def packs(draw):
    bn = draw(st.one_of(st.none(), names))
    bt = draw(st.one_of(st.none(), st.integers(0, 2**40), finite))
    bu = draw(st.one_of(st.none(), st.text(max_size=8)))
    adds = draw(
        st.lists(
            st.tuples(
                names if bn is None else name_tail,
                st.one_of(st.none(), values),
                st.one_of(st.none(), st.text(max_size=8)),
                times,
                st.one_of(st.none(), numbers),
            ),
            min_size=1,
            max_size=6,
        )
    )
    return bn, bt, bu, adds


@MANY
@given(packs())
def test_pack_encode_then_decode_resolves_every_record(spec):
    bn, bt, bu, adds = spec
    p = Pack(bn, bt, bu)
    for name, value, unit, t, s in adds:
        if value is None and s is None:
            s = 0
        if bn is None and name == "":
            name = "x"
        p.add(name, value, unit, t, s)
    body = p.encode()
    assert body.decode("utf-8")
    assert json.loads(body)  # valid JSON
    try:
        got = decode(body)
    except SenMLError as e:
        # bt + t can overflow a float: the decoder refuses a non-finite time, nothing else.
        assert "field 't'" in str(e), str(e)
        assert bt is not None
        assert any(t is not None and math.isinf(bt + t) for _, _, _, t, _ in adds)
        return
    assert len(got) == len(adds)
    for rec, (name, value, unit, t, s) in zip(got, adds, strict=True):
        if value is None and s is None:
            s = 0
        if bn is None and name == "":
            name = "x"
        assert rec["n"] == (bn or "") + name
        u = unit if unit is not None else bu
        assert rec.get("u") == u
        if value is not None:
            key = {bool: "vb", str: "vs", bytes: "vd"}.get(type(value), "v")
            assert _same(rec[key], value), (rec, value)
        else:
            assert not set(rec) & {"v", "vs", "vb", "vd"}
        if s is not None:
            assert _same(rec["s"], s)
        if bt is None and t is None:
            assert "t" not in rec
        else:
            assert rec["t"] == (bt if bt is not None else 0) + (t if t is not None else 0)


@MANY
@given(st.lists(st.dictionaries(st.sampled_from(senml._ORDER), values, min_size=1), min_size=1))
def test_encode_refuses_only_with_senml_error_and_decode_accepts_what_encode_writes(recs):
    try:
        body = encode(recs)
    except SenMLError as e:
        assert str(e)
        return
    decode(body)  # must not raise: what we write, we read


def _decode_only_senml_error(data):
    try:
        decode(data)
    except SenMLError:
        pass


@MANY
@given(st.binary(max_size=300))
def test_decode_arbitrary_bytes(data):
    _decode_only_senml_error(data)


@MANY
@given(st.text(max_size=300))
def test_decode_arbitrary_text(data):
    _decode_only_senml_error(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)
labels = st.sampled_from(senml._ORDER + ("foo", "bar_", "_", "n_", "bver"))
scalars = st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=12)
record_like = st.dictionaries(labels, scalars | json_values, max_size=6)


@MANY
@given(json_values)
def test_decode_arbitrary_json(value):
    _decode_only_senml_error(json.dumps(value))


@MANY
@given(st.lists(record_like, max_size=5))
def test_decode_almost_senml(recs):
    _decode_only_senml_error(json.dumps(recs))
    _decode_only_senml_error(json.dumps(recs).encode())


@MANY
@given(packs(), st.data())
def test_decode_mutated_valid_packs(spec, data):
    bn, bt, bu, adds = spec
    p = Pack(bn, bt, bu)
    for name, value, unit, t, _ in adds:
        p.add(name or "x", value if value is not None else 1, unit, t)
    try:
        body = bytearray(p.encode())
    except SenMLError:
        return
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(body) - 1))
        op = data.draw(st.integers(0, 2))
        if op == 0:
            body[i] = data.draw(st.integers(0, 255))
        elif op == 1:
            del body[i]
        else:
            body[i:i] = data.draw(st.sampled_from([b"[", b"{", b"]", b"}", b'"', b"\\", b"9" * 70]))
        if not body:
            return
    _decode_only_senml_error(bytes(body))


@settings(max_examples=5000, deadline=None)
@given(finite)
def test_float_text_is_cpython_repr(x):
    # CPython's repr is the shortest text that reads back; ours must be exactly that.
    assert format_float(x) == repr(x)


def _r32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


@settings(max_examples=3000, deadline=None)
@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_forced_float32_text_is_shortest_round_trip(x):
    old = senml.FLOAT32
    senml.FLOAT32 = True
    try:
        s = format_float(x)
    finally:
        senml.FLOAT32 = old
    assert _r32(float(s)) == x
    digits = s.split("e")[0].lstrip("-").replace(".", "").strip("0") or "0"
    for p in range(1, len(digits)):
        shorter = "%.*g" % (p, x)
        try:
            assert _r32(float(shorter)) != x, (x, s, shorter)
        except OverflowError:  # beyond float32 range, so not x either
            pass
