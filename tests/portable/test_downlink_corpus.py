"""Replays the saved hostile-downlink corpus (tests/data/downlink_corpus.json) on every runtime.

Each case is an HTTP answer carrying a downlink pack, found by the hypothesis fuzzer
(tests/host/test_downlink_fuzz.py, which also checked it against an independent oracle) or
written by hand, with what CPython made of it: the Result, the records decoded, the verdict on
every record, every call on a pin, and the echoed state. MicroPython must do exactly the same,
so no runtime can touch a pin that CPython's oracle-checked run did not.

Two documented differences (docs/DEVELOPING.md): error texts may differ (MicroPython's repr
and dict order pick another first complaint), so on MicroPython only refused-or-not is compared
for `error`; and a few bodies that CPython refuses as bad JSON or bad UTF-8 (`01`, `1.`,
trailing commas, overlong UTF-8) decode on MicroPython's lax parser: those cases carry
`expect_micropython`, what the equivalent well-formed body does (the same valid record).
"""

import binascii
import gc

from _downlink_case import SECRET, run, run_mqtt

from _support import is_micropython, load_json


def _cases():
    cases = load_json("downlink_corpus.json")["cases"]
    assert len(cases) >= 80
    return cases


def _same(a, b):
    # Numbers decoded from JSON text may differ in the last bit between runtimes' float parsers
    # (DEVELOPING.md); everything else must be identical.
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, bool) or isinstance(b, bool):
            return False
        return a == b or abs(a - b) <= 1e-12 * max(abs(a), abs(b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))  # noqa: B905 (MicroPython has no strict=)
    if isinstance(a, dict) and isinstance(b, dict):
        return sorted(a) == sorted(b) and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _replay(keys):
    mp = is_micropython()
    for case in _cases():
        got = run(binascii.unhexlify(case["body"]), case["status"], case["framing"])
        want = case["expect"]
        lax = case.get("expect_micropython") if mp else None
        for key in keys:
            if lax is not None:
                if key in lax:
                    assert _same(got[key], lax[key]), (case["name"], key, got[key], lax[key])
                continue
            if key == "error" and mp:
                same = (got[key] is None) == (want[key] is None)
                assert same, (case["name"], got[key], want[key])
                assert got[key] is None or got[key].split(":")[0] == want[key].split(":")[0]
                continue
            assert _same(got[key], want[key]), (case["name"], key, got[key], want[key])
        assert SECRET not in got["result_repr"]
        gc.collect()


def test_pins_touched_exactly_as_on_cpython():
    _replay(("pins", "state"))


def test_every_record_gets_the_same_verdict():
    _replay(("applied",))


def test_result_and_decoded_records_match():
    _replay(("outcome", "status", "error", "downlink"))


def test_mqtt_downlink_path_does_the_same():
    # The same packs as MQTT PUBLISH payloads: same records, verdicts and pin calls.
    mp = is_micropython()
    checked = 0
    for case in _cases():
        want = case["expect"]
        if want["outcome"] != "accepted" or case["status"] == 204:
            continue
        got = run_mqtt(binascii.unhexlify(case["body"]))
        lax = case.get("expect_micropython") if mp else None
        for key in ("applied", "pins", "state"):
            exp = lax[key] if lax is not None else want[key]
            assert _same(got[key], exp), (case["name"], key, got[key], exp)
        assert (got["error"] is None) == (want["error"] is None or lax is not None), case["name"]
        assert SECRET not in got["result_repr"]
        checked += 1
        gc.collect()
    assert checked >= 80
