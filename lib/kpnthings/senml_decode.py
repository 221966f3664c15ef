"""SenML decode (RFC 8428 section 4.6): a downlink pack into resolved records.

Kept apart from kpnthings.senml (the encoder every uplink uses) because a board needs it only
when a response carries a body: the transports import it then and drop it again
(kpnthings.senml.decode is the same function, imported on first call). Every bad or hostile
input becomes `SenMLError`.
"""

import json
import sys

from kpnthings.senml_check import _KIND, _NOVAL, _ONE, _ROLE, MAX_INPUT, _check
from kpnthings.senml_text import _ALNUM, SenMLError, _err, _name, _surrogate


def _scan(data):
    # Linear, string-aware check before json.loads: a SenML pack nests two levels (an array of
    # objects with scalar values), deep nesting exhausts MicroPython's parser stack, and long
    # digit runs make big-integer parsing cost quadratic time.
    if "\\" not in data:
        # No escapes: the text outside strings is every other piece between quotes, and C-level
        # counts prove the bounds for any ordinary pack.
        parts = data.split('"')
        out = "".join([parts[i] for i in range(0, len(parts), 2)])
        if out.count("[") > 1:
            raise SenMLError(_DEEP)
        for piece in out.split("}"):
            if piece.count("{") > 1:
                raise SenMLError(_DEEP)
        for piece in out.split(","):
            if len(piece) > 64:
                break
        else:
            return
    depth = 0
    run = 0
    instr = esc = False
    # Byte by byte: on MicroPython, walking a str interns each distinct character for good, so
    # a downlink's characters would stay in the heap. Every byte of a multi-byte UTF-8
    # character is >= 0x80, so none is taken for a quote, bracket or digit.
    for c in data.encode():
        if instr:
            if esc:
                esc = False
            elif c == 92:  # backslash
                esc = True
            elif c == 34:  # quote
                instr = False
        elif 48 <= c <= 57:  # digit
            run += 1
            if run > 64:
                raise SenMLError("number too long")
        else:
            run = 0
            if c == 34:
                instr = True
            elif c == 91 or c == 123:  # [ {
                depth += 1
                if depth > 2:
                    raise SenMLError(_DEEP)
            elif c == 93 or c == 125:  # ] }
                depth -= 1


def _bad_utf8(b):
    # What MicroPython's str(b, "utf-8") lets through: bytes that never occur in UTF-8, and
    # overlong or out-of-range sequences (E0 80..9F, F0 80..8F, F4 90..BF).
    for x in (0xC0, 0xC1, 0xF5, 0xF6, 0xF7, 0xF8, 0xF9, 0xFA, 0xFB, 0xFC, 0xFD, 0xFE, 0xFF):
        if x in b:
            return True
    for lead, lo, hi in ((0xE0, 0x80, 0x9F), (0xF0, 0x80, 0x8F), (0xF4, 0x90, 0xBF)):
        i = b.find(bytes((lead,)))
        while i >= 0:
            if i + 1 < len(b) and lo <= b[i + 1] <= hi:
                return True
            i = b.find(bytes((lead,)), i + 1)
    return False


def _num_ok(t):
    # JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
    if t[:1] == "-":
        t = t[1:]
    m, _, e = t.replace("E", "e").partition("e")
    i, dot, f = m.partition(".")
    if not i.isdigit() or (len(i) > 1 and i[0] == "0") or (dot and not f.isdigit()):
        return False
    if _:
        if e[:1] in ("+", "-"):
            e = e[1:]
        return e.isdigit()
    return True


def _strict(data):
    # MicroPython's json.loads accepts what JSON does not ([01], [1.], trailing commas): check
    # the text outside strings first, so both runtimes refuse the same inputs.
    if "\\" in data:
        data = data.replace("\\\\", "").replace('\\"', "")
    parts = data.split('"')
    # Each string becomes the token "\x01", so what is left is the pack's syntax.
    out = "\x01".join([parts[i] for i in range(0, len(parts), 2)])
    for c in " \t\r\n":
        out = out.replace(c, "")
    for bad in (",]", ",}", "[,", "{,", ",,", ":,", ",:", "::"):
        if bad in out:
            raise SenMLError("input is not JSON")
    for c in "[]{},:":
        out = out.replace(c, " ")
    for t in out.split():
        if t not in ("\x01", "true", "false", "null") and not _num_ok(t):
            raise SenMLError("input is not JSON")


_LAX_JSON = sys.implementation.name == "micropython"
_DEEP = "nested deeper than a SenML pack"
_VALUES = ("v", "vs", "vb", "vd")
_B64URL = _ALNUM + "-_"


def _vd(i, s):
    body = s.rstrip("=")
    pad = len(s) - len(body)
    if body.strip(_B64URL) or len(body) % 4 == 1 or pad > 2 or (pad and len(s) % 4):
        raise _err(i, "vd", "not base64url")
    import binascii

    body = body.replace("-", "+").replace("_", "/")
    try:
        return binascii.a2b_base64(body + "=" * (-len(body) % 4))
    except Exception:
        raise _err(i, "vd", "not base64url") from None


def decode(data, now=None, max_input=MAX_INPUT):
    """Parse a SenML JSON pack (bytes or str) into resolved records (RFC 8428 section 4.6).

    Each record is a dict with n, u (if any), one of v/vs/vb/vd (vd as bytes), s (if a sum),
    t (if the pack gives a time or `now` is given; times below 2**28 are relative to `now`),
    and ut. Any bad or hostile input raises SenMLError and nothing else.
    """
    if isinstance(data, (bytes, bytearray, memoryview)):
        if len(data) > max_input:
            raise SenMLError("input longer than %d bytes" % max_input)
        try:
            # MicroPython lets CESU surrogates (ED A0..BF) through; they are not UTF-8 either.
            if b"\xed" in data and _surrogate(bytes(data)):
                raise ValueError
            if _LAX_JSON and _bad_utf8(bytes(data)):
                raise ValueError
            data = str(data, "utf-8")
        except Exception:
            raise SenMLError("input is not valid UTF-8") from None
    elif not isinstance(data, str):
        raise SenMLError("input must be bytes or str")
    elif _surrogate(data):  # a lone surrogate is no text, in a str as in bytes (CESU)
        raise SenMLError("input is not valid UTF-8")
    if len(data) > max_input:
        raise SenMLError("input longer than %d characters" % max_input)
    _scan(data)
    if _LAX_JSON:
        _strict(data)
    try:
        pack = json.loads(data)
    except Exception:  # ValueError, and RecursionError/MemoryError on deep nesting
        raise SenMLError("input is not JSON") from None
    if not isinstance(pack, list) or not pack:
        raise SenMLError("pack must be a non-empty JSON array")
    bn = ""
    bu = bt = bv = bs = ver = None  # None, not 0: 0 + -0.0 would lose the sign
    out = []
    for i, r in enumerate(pack):
        if type(r) is not dict:
            raise SenMLError("record %d: must be a JSON object" % i)
        nvals = 0
        meas = False
        for k in r:
            if type(k) is not str:  # MicroPython's json.loads lets {true:1} through
                raise SenMLError("input is not JSON")
            if k[-1:] == "_":  # RFC 8428 section 4.4: must-understand labels
                raise _err(i, k, "label ending in '_' is not understood")
            if k in _KIND:
                if k == "vd":
                    if type(r[k]) is not str:
                        raise _err(i, k, "must be a string")
                else:
                    _check(i, k, r[k])
                role = _ROLE[k]
                if role:
                    meas = True
                    if role == 2:
                        nvals += 1
        x = r.get("bver")
        if x is not None:
            if ver is not None and x != ver:
                raise _err(i, "bver", "differs from an earlier bver")
            ver = x
        bn = r.get("bn", bn)
        bu = r.get("bu", bu)
        bt = r.get("bt", bt)
        bv = r.get("bv", bv)
        bs = r.get("bs", bs)
        if nvals > 1:
            raise _err(i, "v", _ONE)
        if not meas:
            continue  # base fields only
        if not nvals and "s" not in r:
            raise _err(i, "v", _NOVAL)
        n = r.get("n")
        _name(i, "bn" if n is None else "n", bn, n or "")
        rec = {"n": bn + (n or "")}
        u = r.get("u", bu)
        if u is not None:
            rec["u"] = u
        for k in _VALUES:
            if k in r:
                x = r[k]
                if k == "v" and bv is not None:
                    x += bv
                elif k == "vd":
                    x = _vd(i, x)
                rec[k] = x
        if "s" in r:
            x = r["s"]
            rec["s"] = x if bs is None else bs + x
        t = r.get("t")
        if bt is not None:
            t = bt if t is None else bt + t
        if t is None:
            t = now
        elif now is not None and t < 268435456:  # 2**28: RFC 8428 section 4.5.3
            t += now
        if t is not None:
            rec["t"] = t
        if "ut" in r:
            rec["ut"] = r["ut"]
        for k in ("v", "s", "t"):
            if k in rec and rec[k] - rec[k]:
                raise _err(i, k, "sum with the base value is not finite")
        out.append(rec)
    return out
