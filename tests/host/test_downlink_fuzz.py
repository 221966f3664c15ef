"""Hostile downlinks (issue 5.3): hypothesis drives the whole downlink path.

An HTTP answer whose body is a (mostly near-valid) SenML downlink pack goes through the real
client over a fake transport, and Result.downlink is applied to an allow-list of actuators whose
pins record every call (tests/portable/_downlink_case.py); every body a 2xx answer delivered
also goes through the MQTT downlink path (MQTTTransport), which must do exactly the same.
10 000 generated cases in all. For each one:

- nothing raises: the client returns a Result, Actuators.apply a list of results;
- an oracle written here, independently of kpnthings.downlink, says for every decoded record
  whether it is valid for the allow-list and which pin call it must cause; the pins must see
  exactly those calls (same pin, same value, same order) and nothing else;
- every refused record comes back with ok False and a reason;
- a pack built only from well-formed parts must decode to the records the oracle resolves
  (base name and base value applied), so "no pin touched" never hides "nothing decoded";
- a non-2xx answer, an undecodable pack, or one above the response cap touches no pin;
- memory stays bounded for inputs at and above the caps (tracemalloc).

`python tests/host/test_downlink_fuzz.py --write-corpus` regenerates
tests/data/downlink_corpus.json (deterministic), which tests/portable/test_downlink_corpus.py
replays under CPython, MicroPython from source and the .mpy builds.
"""

import functools
import json
import math
import sys
import tracemalloc
from fractions import Fraction
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "portable"))

import _downlink_case as case  # noqa: E402

from kpnthings import client, downlink, senml  # noqa: E402

CORPUS = HERE.parent / "data" / "downlink_corpus.json"
BN = case.BN
SPEC = case.SPEC
FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
NAME_RE_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-:./_")

# --- the oracle: what a record must do, decided without kpnthings.downlink --------------------


def _number(x):
    return type(x) in (int, float) and x == x and x not in (math.inf, -math.inf)


def _local(full):
    """The actuator name a resolved record addresses, or None if it is not for this device."""
    if full.startswith(BN):
        return full[len(BN) :]
    return None if ":" in full else full


def _duty(entry, v):
    """The exact (rational) duty cycle for v; the device must round it to the nearest u16."""
    lo, hi = Fraction(entry["min"]), Fraction(entry["max"])
    return (Fraction(v) - lo) / (hi - lo) * 65535


def expected_calls(record):
    """The pin calls a record may cause: [] (refused) or a list of acceptable [pin, op, arg]
    calls (the pwm ones as (pin, "duty", exact Fraction)). A record holding several value
    labels (only hand-fed records can) may be refused or applied by either reading."""
    if type(record) is not dict:
        return [None]
    full = record.get("n", "")
    if type(full) is not str:
        return [None]
    name = _local(full)
    entry = SPEC.get(name) if name is not None else None
    if entry is None or any(k in record for k in ("vs", "vd", "s")):
        return [None]
    pin = entry["pin"]
    out = []
    if entry["type"] == "digital":
        low = entry.get("active_low", False)
        if "vb" in record:
            if type(record["vb"]) is bool:
                out.append([pin, "value", 1 if record["vb"] != low else 0])
            if "v" not in record:
                return out or [None]
        if "v" in record:
            v = record["v"]
            if _number(v) and v in (0, 1):
                out.append([pin, "value", 1 if (v == 1) != low else 0])
            elif "vb" not in record:
                return [None]
        return out + ([None] if "vb" in record and "v" in record else []) or [None]
    if "vb" in record:
        return [None]
    v = record.get("v")
    if _number(v) and entry["min"] <= v <= entry["max"]:
        return [[pin, "duty", _duty(entry, v)]]
    return [None]


def check_applied(records, outcome):
    """Compare what the pins saw with the oracle; returns the number of pin calls."""
    pins, applied, state = outcome["pins"], outcome["applied"], outcome["state"]
    assert len(applied) == len(records)
    calls = iter(pins)
    last = {}
    for record, (name, ok, reason) in zip(records, applied, strict=True):
        allowed = expected_calls(record)
        assert isinstance(ok, bool) and isinstance(reason, str)
        if not ok:
            assert None in allowed, ("refused a valid record", record, reason)
            assert reason, ("refused without a reason", record)
            continue
        assert reason == ""
        call = next(calls, None)
        assert call is not None, ("reported applied, touched no pin", record)
        good = False
        for want in allowed:
            if want is None or want[:2] != call[:2]:
                continue
            if want[1] == "duty":
                good = type(call[2]) is int and 0 <= call[2] <= 65535
                good = good and abs(call[2] - want[2]) <= Fraction(1, 2) + Fraction(1, 10**9)
            else:
                good = call[2] == want[2]
            if good:
                break
        assert good, ("pin touched with a wrong value or for an invalid record", record, call)
        last[name] = record["vb"] if "vb" in record else record["v"]
    assert next(calls, None) is None, "a pin was touched without a record applied"
    # state_records(): the last applied value of every driven actuator, sorted by name.
    assert [n for n, _ in state] == sorted(last)
    for n, v in state:
        want = last[n]
        if SPEC[n]["type"] == "digital":
            assert v is (want if type(want) is bool else want == 1)
        else:
            assert v == want
    return len(pins)


def check_decoded(records):
    """Whatever decode lets through is a well-formed resolved record."""
    for r in records:
        assert type(r) is dict
        assert type(r["n"]) is str and r["n"] and set(r["n"]) <= NAME_RE_CHARS
        assert r["n"][0].isalnum()
        vals = [k for k in ("v", "vs", "vb", "vd") if k in r]
        assert len(vals) == 1 or (not vals and "s" in r), r
        for k in ("v", "s", "t"):
            if k in r:
                assert _number(r[k]), r


# --- strategies: near-valid downlink packs -----------------------------------------------------

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


_answer = st.one_of(
    st.just((200, "length")),
    st.sampled_from(
        [(200, "length"), (200, "chunked"), (201, "length"), (202, "length"), (204, "length")]
    ),
    st.sampled_from([(400, "length"), (401, "length"), (404, "length"), (503, "length")]),
)


# --- running one case -----------------------------------------------------------------------


def run_checked(body, status=200, framing="length", resolved=None, cap=4096):
    out = case.run(body, status, framing, cap)
    assert case.SECRET not in out["result_repr"] and case.SECRET not in str(out["error"])
    if out["outcome"] != client.ACCEPTED or not (200 <= status < 300):
        # Only a 2xx answer may carry a downlink that is acted on.
        assert out["pins"] == [] and out["applied"] == [] and out["downlink"] == []
        return out
    records = out["downlink"]
    if out["error"]:
        assert out["error"].startswith("downlink refused: ")
        assert records == [] and out["pins"] == []
    check_decoded(records)
    if resolved is not None:
        assert not out["error"], (body, out["error"])
        assert records == case.plain(resolved), body
    # The oracle sees the records as decoded (bytes for vd, as Actuators gets them).
    raw = [dict(r, vd=b"") if "vd" in r else r for r in records]
    check_applied(raw, out)
    if status != 204:
        # The MQTT downlink path must do exactly what the HTTP one did with the same pack.
        mq = case.run_mqtt(body)
        for key in ("error", "downlink", "applied", "pins", "state"):
            assert mq[key] == out[key], (key, body, mq[key], out[key])
        assert case.SECRET not in mq["result_repr"]
    return out


# 6500 + 2000 + 1000 + 500 = 10 000 generated cases.


@settings(FUZZ, max_examples=6500)
@given(pack(), _answer)
def test_downlink_path_touches_pins_only_for_valid_records(p, answer):
    body, resolved = p
    status, framing = answer
    run_checked(body, status, framing, resolved if status < 300 and status != 204 else None)


@settings(FUZZ, max_examples=2000)
@given(pack())
def test_clean_packs_decode_and_apply_exactly(p):
    body, resolved = p
    run_checked(body, resolved=resolved)


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
_junk_records = st.lists(
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


@settings(FUZZ, max_examples=1000)
@given(_junk_records, st.sampled_from([BN, None, "", case.OTHER_BN]))
def test_apply_survives_records_that_never_passed_decode(records, base_name):
    # Defence in depth: Actuators.apply on its own, fed what no decoder would produce.
    log = []
    acts = downlink.Actuators(
        SPEC, pin_factory=lambda kind, pin, entry: case.RecordingPin(log, kind, pin)
    )
    applied = acts.apply(records, base_name)
    if base_name != BN:
        # The oracle resolves names against the device's own base name only.
        for (_, ok, _), r in zip(applied, records, strict=True):
            if ok:
                assert type(r) is dict and type(r.get("n")) is str
        return
    out = {"pins": log, "applied": [list(a) for a in applied], "state": acts.state_records()}
    check_applied(records, out)


class FlakyPin(case.RecordingPin):
    def value(self, x):
        raise OSError(5, "EIO")

    def duty_u16(self, d):
        raise ValueError("duty out of range")


@settings(FUZZ, max_examples=500)
@given(pack())
def test_a_failing_pin_is_a_refusal_not_a_crash(p):
    body, _ = p
    r = client.Result(200, client.ACCEPTED)
    try:
        r.downlink = list(senml.decode(body))
    except senml.SenMLError:
        return
    acts = downlink.Actuators(SPEC, pin_factory=lambda kind, pin, entry: FlakyPin([], kind, pin))
    for _name, ok, reason in acts.apply(r.downlink, BN):
        assert not ok and reason
    assert acts.state_records() == []


# --- hand-picked cases, each with its exact expectation ----------------------------------------


def test_hand_picked_cases():
    def one(body, **kw):
        return case.run(body.encode() if isinstance(body, str) else body, **kw)

    out = one('[{"bn":"%s","n":"led","vb":true},{"n":"fan","v":50}]' % BN)
    assert out["pins"] == [[2, "value", 1], [5, "duty", 32768]]
    assert out["state"] == [["fan", 50], ["led", True]]
    # Active low: "on" drives the pin low.
    assert one('[{"n":"relay","vb":true}]')["pins"] == [[4, "value", 0]]
    # Another device's base name, and an unknown actuator: refused, nothing touched.
    out = one(
        '[{"bn":"%s","n":"led","vb":true},{"bn":"%s","n":"door","vb":true}]'
        % (
            case.OTHER_BN,
            BN,
        )
    )
    assert out["pins"] == []
    assert [a[1:] for a in out["applied"]] == [
        [False, "not for this device"],
        [False, "unknown actuator"],
    ]
    # Wrong types and ranges are refused with a reason; the good record still applies.
    out = one('[{"n":"led","vs":"on"},{"n":"fan","v":100.5},{"n":"led","v":2},{"n":"fan","v":0}]')
    assert out["pins"] == [[5, "duty", 0]]
    assert [a[1] for a in out["applied"]] == [False, False, False, True]
    assert all(a[2] for a in out["applied"][:3])
    # Non-finite numbers never reach a pin: the whole pack is refused.
    for bad in ("NaN", "Infinity", "-Infinity", "1e999"):
        out = one('[{"n":"fan","v":%s},{"n":"led","vb":true}]' % bad)
        assert out["pins"] == [] and out["error"].startswith("downlink refused"), bad
    # bv is added to v (RFC 8428): 0.5 + 0.5 = 1 switches the led on.
    assert one('[{"bv":0.5},{"n":"led","v":0.5}]')["pins"] == [[2, "value", 1]]
    # A downlink in a refused (non-2xx) answer is never applied.
    assert one('[{"n":"led","vb":true}]', status=400)["pins"] == []
    # The float PWM range: -2.5 is 0, 7.5 is 65535, 2.5 is the middle.
    out = one('[{"n":"dimmer","v":-2.5},{"n":"dimmer","v":7.5},{"n":"dimmer","v":2.5}]')
    assert out["pins"] == [["GP15", "duty", 0], ["GP15", "duty", 65535], ["GP15", "duty", 32768]]


# --- bounded memory --------------------------------------------------------------------------


def _peak(fn):
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_large_downlinks_use_bounded_memory():
    rec = b'{"n":"led","vb":true},{"n":"fan","v":12.5},{"n":"door","vs":"x"},'
    fits = b"[" + rec * ((senml.MAX_INPUT - 200) // len(rec)) + b'{"n":"led","v":0}]'
    assert senml.MAX_INPUT - 300 < len(fits) <= senml.MAX_INPUT
    cases = [
        # At the decoder's limit with a cap that lets it through: ~750 records applied.
        (fits, 16384, "accepted"),
        # Above the decoder's limit: refused without parsing.
        (fits[:-1] + b"," + rec[:-1] * 4 + b"]", 32768, "refused"),
        # Above the client's default cap: the answer is refused, not buffered.
        (fits, 4096, "retry"),
        # Deep nesting and long digit runs at the limit.
        (b"[" * 16000, 16384, "refused"),
        (b'[{"n":"fan","v":' + b"1" * 16000 + b"}]", 16384, "refused"),
    ]
    for body, cap, kind in cases:
        out = {}

        def go(body=body, cap=cap, out=out):
            out.update(case.run(body, cap=cap))

        peak = _peak(go)
        if kind == "accepted":
            assert not out["error"] and len(out["pins"]) > 400
            check_applied(out["downlink"], out)
        elif kind == "refused":
            assert out["error"].startswith("downlink refused") and out["pins"] == []
        else:
            assert out["outcome"] == client.RETRY and out["pins"] == []
        # A few times the input, never a function of what a hostile server could send.
        assert peak < 1024 * 1024, (kind, len(body), peak)


# --- the corpus ------------------------------------------------------------------------------

_SEEDS = [
    ("led on", '[{"bn":"%s","n":"led","vb":true}]' % BN),
    ("led on without bn", '[{"n":"led","vb":true}]'),
    ("led v 1", '[{"n":"led","v":1}]'),
    ("led v 1.0 and 0", '[{"n":"led","v":1.0},{"n":"led","v":0}]'),
    ("relay active low", '[{"n":"relay","vb":true},{"n":"relay","vb":false}]'),
    ("fan pwm", '[{"n":"fan","v":50},{"n":"fan","v":0},{"n":"fan","v":100}]'),
    (
        "dimmer float range",
        '[{"n":"dimmer","v":-2.5},{"n":"dimmer","v":2.5},{"n":"dimmer","v":7.5}]',
    ),
    ("fan out of range", '[{"n":"fan","v":100.0001},{"n":"fan","v":-1}]'),
    ("led v 2", '[{"n":"led","v":2}]'),
    ("led vs", '[{"n":"led","vs":"on"}]'),
    ("led vd", '[{"n":"led","vd":"AQ"}]'),
    ("led sum", '[{"n":"led","s":1}]'),
    ("fan vb", '[{"n":"fan","vb":true}]'),
    ("unknown door", '[{"n":"door","vb":true}]'),
    ("other device", '[{"bn":"%s","n":"led","vb":true}]' % case.OTHER_BN),
    ("other device in n", '[{"n":"%sled","vb":true}]' % case.OTHER_BN),
    (
        "bn change mid pack",
        '[{"bn":"%s","n":"led","vb":true},{"bn":"%s","n":"led","vb":false}]' % (BN, case.OTHER_BN),
    ),
    ("bn without colon", '[{"bn":"%s","n":"led","vb":true}]' % BN[:-1]),
    ("bad then good", '[{"n":"led","vs":"x"},{"n":"door","v":1},{"n":"led","vb":true}]'),
    ("bv added", '[{"bv":0.5},{"n":"led","v":0.5}]'),
    ("NaN", '[{"n":"fan","v":NaN}]'),
    ("Infinity", '[{"n":"fan","v":Infinity}]'),
    ("1e999", '[{"n":"fan","v":1e999}]'),
    ("huge int", '[{"n":"fan","v":123456789012345678901234567890}]'),
    ("string NaN", '[{"n":"fan","v":"NaN"}]'),
    ("vb string", '[{"n":"led","vb":"true"}]'),
    ("vb null", '[{"n":"led","vb":null}]'),
    ("v and vb", '[{"n":"led","v":1,"vb":true}]'),
    ("duplicate vb", '[{"n":"led","vb":false,"vb":true}]'),
    ("duplicate n", '[{"n":"door","n":"led","vb":true}]'),
    ("nested value", '[{"n":"led","vb":[true]}]'),
    ("nested deep", "[" * 50 + "]" * 50),
    ("object not array", '{"n":"led","vb":true}'),
    ("empty array", "[]"),
    ("empty body", ""),
    ("whitespace body", " \r\n"),
    ("must understand label", '[{"n":"led","vb":true,"x_":1}]'),
    ("bver 11", '[{"bver":11,"n":"led","vb":true}]'),
    ("bad name chars", '[{"n":"led ","vb":true}]'),
    ("unicode name", '[{"n":"l\\u00e9d","vb":true}]'),
    ("NUL in name", '[{"n":"led\\u0000","vb":true}]'),
    ("lone surrogate", '[{"n":"led","vs":"\\ud800"}]'),
    ("lax json 01", '[{"n":"led","v":01}]'),
    ("lax json 1.", '[{"n":"led","v":1.}]'),
    ("lax json true key", "[{true:1}]"),
    ("trailing comma", '[{"n":"led","vb":true},]'),
    ("trailing comma in record", '[{"n":"led","vb":true,}]'),
    ("uppercase E", '[{"n":"fan","v":5E1}]'),
    ("padded vd to pwm", '[{"n":"fan","vd":"AQ=="}]'),
]
_SEED_BYTES = [
    ("bad utf-8", b'[{"n":"led","vb":true,"u":"\xff"}]'),
    ("cesu surrogate", b'[{"n":"led","vs":"\xed\xa0\x80"}]'),
    ("overlong slash", b'[{"n":"led\xc0\xaf","vb":true}]'),
    ("overlong utf-8 in unit", b'[{"n":"led","vb":true,"u":"\xc0\xaf"}]'),
    ("bom", b'\xef\xbb\xbf[{"n":"led","vb":true}]'),
    ("over the cap", b"[" + b'{"n":"led","vb":true},' * 200 + b'{"n":"fan","v":1}]'),
]
_SEED_STATUS = [
    ("400 with a downlink", '[{"n":"led","vb":true}]', 400),
    ("401 with a downlink", '[{"n":"led","vb":true}]', 401),
    ("503 with a downlink", '[{"n":"led","vb":true}]', 503),
    ("201 with a downlink", '[{"n":"led","vb":true}]', 201),
]


def _entry(name, body, status=200, framing="length"):
    out = run_checked(body, status, framing)
    keys = ("outcome", "status", "error", "downlink", "applied", "pins", "state")
    entry = {
        "name": name,
        "body": body.hex(),
        "status": status,
        "framing": framing,
        "expect": {k: out[k] for k in keys},
    }
    return entry


def build_corpus(per_signature=2, examples=3000):
    """Seeds plus generated cases: a couple for each distinct signature of what happened."""
    cases = [_entry(n, b.encode()) for n, b in _SEEDS]
    cases += [_entry(n, b) for n, b in _SEED_BYTES]
    cases += [_entry(n, b.encode(), s) for n, b, s in _SEED_STATUS]
    seen = {}

    @settings(FUZZ, max_examples=examples, suppress_health_check=list(HealthCheck))
    @given(pack(), _answer)
    def explore(p, answer):
        body, _ = p
        if len(body) > 1500:
            return
        d = _entry("generated", body, *answer)
        e = d["expect"]
        sig = (
            e["outcome"],
            (e["error"] or "")[:40],
            tuple(sorted(set((a[1], a[2].split(":")[0]) for a in e["applied"]))),
        )
        if seen.get(sig, 0) < per_signature:
            seen[sig] = seen.get(sig, 0) + 1
            d["name"] = "generated %d" % len(cases)
            cases.append(d)

    explore()
    return {
        "about": "HTTP answers carrying downlink packs, and what the client and the actuator "
        "allow-list (tests/portable/_downlink_case.py) made of them on CPython; written by "
        "tests/host/test_downlink_fuzz.py --write-corpus",
        "cases": cases,
    }


def test_corpus_matches_cpython_behaviour_and_the_oracle():
    corpus = json.loads(CORPUS.read_text())
    assert len(corpus["cases"]) >= 80
    for c in corpus["cases"]:
        again = _entry(c["name"], bytes.fromhex(c["body"]), c["status"], c["framing"])
        assert again["expect"] == c["expect"], c["name"]


if __name__ == "__main__":
    if sys.argv[1:] == ["--write-corpus"]:
        corpus = build_corpus()
        CORPUS.write_text(json.dumps(corpus, indent=1, sort_keys=True) + "\n")
        print("wrote %d cases to %s" % (len(corpus["cases"]), CORPUS))
    else:
        print(__doc__)
