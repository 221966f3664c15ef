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

import json
import sys
import tracemalloc
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "portable"))

import _downlink_case as case  # noqa: E402
import _fuzz_corpus  # noqa: E402
from _downlink_fuzz_oracle import check_applied, check_decoded  # noqa: E402
from _downlink_fuzz_packs import answers, junk_records, pack  # noqa: E402

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
@given(pack(), answers)
def test_downlink_path_touches_pins_only_for_valid_records(p, answer):
    body, resolved = p
    status, framing = answer
    run_checked(body, status, framing, resolved if status < 300 and status != 204 else None)


@settings(FUZZ, max_examples=2000)
@given(pack())
def test_clean_packs_decode_and_apply_exactly(p):
    body, resolved = p
    run_checked(body, resolved=resolved)


@settings(FUZZ, max_examples=1000)
@given(junk_records, st.sampled_from([BN, None, "", case.OTHER_BN]))
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

    def entry(drawn):
        (body, _), answer = drawn
        if len(body) > 1500:
            return None
        return _entry("generated", body, *answer)

    def signature(e):
        return (
            e["outcome"],
            (e["error"] or "")[:40],
            tuple(sorted(set((a[1], a[2].split(":")[0]) for a in e["applied"]))),
        )

    strategy = st.tuples(pack(), answers)
    _fuzz_corpus.add_generated(cases, strategy, entry, signature, per_signature, examples)
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
    _fuzz_corpus.main(sys.argv[1:], build_corpus, CORPUS, __doc__)
