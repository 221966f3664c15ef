"""Hypothesis strategies for test_downlink_fuzz.py: downlink packs, mostly near-valid, written
as raw JSON text so that what json.dumps cannot produce (NaN, 1e999, duplicate labels) reaches the
device as a server could send it; the answers that carry them; and records no decoder would let
through, for Actuators.apply on its own.

Imports tests/portable/_downlink_case, so tests/portable must be on sys.path (the test puts it
there).
"""

import functools
import json

import _downlink_case as case
from hypothesis import strategies as st

BN = case.BN

# Raw JSON text for a value, so that NaN, Infinity, 1e999, huge and oddly written numbers,
# which json.dumps cannot produce, reach the device as a server could send them.
_RAW_NUMBERS = [
    "0",
    "1",
    "0.0",
    "1.0",
    "-0.0",
    "1e0",
    "1E0",
    "10E-1",
    "2",
    "-1",
    "50",
    "50.5",
    "100",
    "100.0",
    "100.0001",
    "-0.5",
    "7.5",
    "-2.5",
    "-2.5000001",
    "7.4999999",
    "1e308",
    "-1e308",
    "1e999",
    "-1e999",
    "1e-320",
    "99999999999999999999",
    "100000000000000000000",
    "123456789012345678901234567890",
    "NaN",
    "Infinity",
    "-Infinity",
    "nan",
    "01",
    "1.",
    ".5",
    "+1",
    "0x10",
    "1" * 80,
]
_RAW_OTHER = [
    "true",
    "false",
    "null",
    '"true"',
    '"1"',
    '"on"',
    '"NaN"',
    '"Infinity"',
    '""',
    '"AQID"',
    '"AQ=="',
    '"***"',
    "[1]",
    "[]",
    '{"v":1}',
    "{}",
    '"\\u0000"',
    '"\\ud800"',
    "[[[[1]]]]",
]
_raw_value = st.one_of(
    st.sampled_from(_RAW_NUMBERS),
    st.sampled_from(_RAW_OTHER),
    st.integers(-200, 200).map(str),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6).map(repr),
    st.text(max_size=8).map(json.dumps),
)
_names = st.sampled_from(
    [
        "led",
        "led",
        "fan",
        "fan",
        "relay",
        "dimmer",
        "door",
        "LED",
        "Led",
        "led ",
        " led",
        "",
        "led:x",
        "x:led",
        "led/1",
        "fan.speed",
        "l\u00e9d",
        "led\u0000",
        "led\\u0000",
        "_led",
        "-led",
        "a" * 70,
        BN + "led",
        case.OTHER_BN + "led",
        "urn:dev:DVNUUID:other:led",
    ]
)
_bns = st.sampled_from(
    [
        None,
        None,
        BN,
        BN,
        BN.upper(),
        BN[:-1],
        case.OTHER_BN,
        "urn:dev:DVNUUID:",
        "",
        "urn:dev:IMEI:123456789012345:",
        "led",
        "x" * 200,
    ]
)
_VALUE_LABELS = ["vb", "vb", "v", "v", "v", "vs", "vd", "s"]
_EXTRA = st.sampled_from(
    [
        ("u", '"%"'),
        ("t", "0"),
        ("t", "-5"),
        ("bt", "1700000000"),
        ("bv", "1"),
        ("bv", "0.5"),
        ("bv", "1e308"),
        ("bver", "10"),
        ("bver", "11"),
        ("bu", '"%"'),
        ("ut", "60"),
        ("foo", '"bar"'),
        ("x_", "1"),
        ("n", '"door"'),  # a duplicate name label: the last one counts
        ("vb", "true"),  # a second value label, or a duplicate
        ("v", "1"),
        ("v", "101"),
    ]
)


@functools.lru_cache(maxsize=None)
def _ints(lo, hi):
    # Strategies are built once: building them per draw costs more than running a case.
    return st.integers(lo, hi)


@functools.lru_cache(maxsize=None)
def _pick(*options):
    return st.sampled_from(options)


_BOOLS = st.booleans()
_GOOD_NUMBER = st.one_of(
    st.sampled_from(["0", "1", "50", "100", "0.5", "-2.5", "7.5", "101", "-1", "2"]),
    st.integers(-300, 300).map(str),
    st.floats(-500, 500, allow_nan=False).map(repr),
)
_EXTRAS = st.lists(_EXTRA, max_size=2)


def _good_value(label, draw):
    """A value of the right SenML type for label (the record stays decodable)."""
    if label == "vb":
        return json.dumps(draw(_BOOLS))
    if label in ("v", "s"):
        return draw(_GOOD_NUMBER)
    if label == "vs":
        return json.dumps(draw(_pick("on", "off", "1", "true", "")))
    return json.dumps(draw(_pick("AQID", "", "AA", "_-8")))


@st.composite
def record(draw, clean):
    """(pairs, resolved-or-None): a record as (label, raw JSON) pairs; for a clean record also
    the plain values, so the oracle can resolve it."""
    pairs = []
    plain = {}
    if draw(_ints(0, 5)) or clean:
        name = draw(_names)
        if clean:
            name = draw(_pick("led", "fan", "relay", "dimmer", "door", "lamp"))
        pairs.append(("n", json.dumps(name)))
        plain["n"] = name
    label = draw(_pick(*_VALUE_LABELS))
    if clean or draw(_ints(0, 2)):
        raw = _good_value(label, draw)
    else:
        raw = draw(_raw_value)
    pairs.append((label, raw))
    if clean:
        plain[label] = json.loads(raw)
    if not clean:
        for extra in draw(_EXTRAS):
            pairs.insert(draw(_ints(0, len(pairs))), extra)
    return pairs, plain


@st.composite
def pack(draw):
    """(body bytes, clean records or None): clean means every part is well formed."""
    clean = draw(_ints(0, 3)) == 0
    n = draw(_ints(0 if not clean else 1, 6))
    recs = [draw(record(clean)) for _ in range(n)]
    bn = draw(_pick(None, BN, BN)) if clean else draw(_bns)
    head = []
    if bn is not None:
        head.append(("bn", json.dumps(bn)))
    bv = None
    if clean and draw(_ints(0, 4)) == 0:
        bv = draw(_pick(1, -1, 0.5))
        head.append(("bv", json.dumps(bv)))
    if head:
        if recs and draw(_BOOLS):
            recs[0] = (head + recs[0][0], recs[0][1])
        else:
            recs.insert(0, (head, None))
    text = "[" + ",".join("{" + ",".join('"%s":%s' % kv for kv in p) + "}" for p, _ in recs) + "]"
    if not clean:
        text = _mangle_text(draw, text)
    body = text.encode("utf-8")
    if not clean:
        body = _mangle_bytes(draw, body)
    resolved = None
    if clean:
        resolved = _resolve([p for _, p in recs], bn, bv)
    return body, resolved


def _resolve(plains, bn, bv):
    """RFC 8428 resolution of a clean pack: bn + n, v + bv."""
    out = []
    for p in plains:
        if p is None:
            continue
        r = {"n": (bn or "") + p["n"]}
        for k in ("v", "vs", "vb", "vd", "s"):
            if k in p:
                x = p[k]
                if k == "v" and bv is not None:
                    x = x + bv
                if k == "vd":
                    x = {"AQID": b"\x01\x02\x03", "": b"", "AA": b"\x00", "_-8": b"\xff\xef"}[x]
                r[k] = x
        out.append(r)
    return out


def _mangle_text(draw, text):
    how = draw(_pick(*(["none"] * 6 + ["pretty", "dup", "wrap", "deep", "trail", "cut"])))
    if how == "pretty":
        return text.replace(",", ",\n ").replace("{", "{ ")
    if how == "dup" and text != "[]":
        return text[:-1] + "," + text[1:]  # every record twice
    if how == "wrap":
        return '{"pack":' + text + "}"
    if how == "deep":
        return "[" * draw(_ints(2, 200)) + text + "]" * draw(_ints(0, 200))
    if how == "trail":
        return text + draw(_pick(",", " x", "]", "\u0000", "[]"))
    if how == "cut":
        return text[: draw(_ints(0, len(text)))]
    return text


def _mangle_bytes(draw, body):
    how = draw(_pick(*(["none"] * 8 + ["bad-utf8", "bom", "flip", "big"])))
    if how == "bad-utf8":
        bad = draw(_pick(b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\x80"))
        i = draw(_ints(0, len(body)))
        return body[:i] + bad + body[i:]
    if how == "bom":
        return b"\xef\xbb\xbf" + body
    if how == "flip" and body:
        i = draw(_ints(0, len(body) - 1))
        return body[:i] + bytes([body[i] ^ draw(_ints(1, 255))]) + body[i + 1 :]
    if how == "big":  # near and above the response cap (4096)
        rec = b'{"n":"led","vb":true},'
        count = draw(_ints(150, 260))
        return b"[" + rec * count + b'{"n":"fan","v":1}]'
    return body


answers = st.one_of(
    st.just((200, "length")),
    st.sampled_from(
        [(200, "length"), (200, "chunked"), (201, "length"), (202, "length"), (204, "length")]
    ),
    st.sampled_from([(400, "length"), (401, "length"), (404, "length"), (503, "length")]),
)


_json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(),
        st.sampled_from(["led", "fan", "relay", "dimmer", "door", BN + "led", BN + "fan"]),
        st.text(max_size=6),
        st.binary(max_size=4),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner)
    ),
    max_leaves=4,
)
junk_records = st.lists(
    st.one_of(
        st.dictionaries(
            st.sampled_from(["n", "v", "vb", "vs", "vd", "s", "u", "t", "bn", "x"]),
            _json_values,
            max_size=4,
        ),
        _json_values,
    ),
    max_size=6,
)
