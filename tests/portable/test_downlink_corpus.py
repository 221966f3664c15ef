"""Replays the saved hostile-downlink corpus (tests/data/downlink_corpus.json) on every runtime.

Each case is an HTTP answer carrying a downlink pack, found by the hypothesis fuzzer
(tests/host/test_downlink_fuzz.py, which also checked it against an independent oracle) or
written by hand, with what CPython made of it: the Result, the records decoded, the verdict on
every record, every call on a pin, and the echoed state. MicroPython must do exactly the same,
so no runtime can touch a pin that CPython's oracle-checked run did not.

One documented difference: error texts may differ (MicroPython's repr and dict order pick
another first complaint), so on MicroPython only refused-or-not is compared for `error`. Bodies
that only MicroPython's lax json.loads would take (`01`, `1.`, trailing commas, overlong UTF-8)
are refused by senml.decode's own syntax check there, exactly as CPython refuses them.
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
        for key in keys:
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
    checked = 0
    for case in _cases():
        want = case["expect"]
        if want["outcome"] != "accepted" or case["status"] == 204:
            continue
        got = run_mqtt(binascii.unhexlify(case["body"]))
        for key in ("applied", "pins", "state"):
            assert _same(got[key], want[key]), (case["name"], key, got[key], want[key])
        assert (got["error"] is None) == (want["error"] is None), case["name"]
        assert SECRET not in got["result_repr"]
        checked += 1
        gc.collect()
    assert checked >= 80
