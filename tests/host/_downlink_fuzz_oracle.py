"""The oracle of test_downlink_fuzz.py: what a downlink record must do to the actuators of
tests/portable/_downlink_case.py, decided here without kpnthings.downlink, and the checks that
compare a run with it.

Imports tests/portable/_downlink_case, so tests/portable must be on sys.path (the test puts it
there).
"""

import math
from fractions import Fraction

import _downlink_case as case

BN = case.BN
SPEC = case.SPEC
NAME_RE_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-:./_")


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
