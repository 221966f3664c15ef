"""The JSON text of SenML values, shared by every encoder: floats, strings and names.

`format_float` writes the shortest decimal text that reads back to the same float, identical on
every runtime (a float32 board writes what the host's float32 simulation writes); `_q` makes a
JSON string literal; `_name` checks a SenML name (RFC 8428 section 4.5.1). kpnthings.senml (the
pack API) and kpnthings.batch (the firmware's pack writer) both use these, so a board's uplink
needs only this module and the writer.
"""

# 1 + 2**-30 rounds to 1 only when floats have a 24-bit mantissa (ESP32, rp2 builds).
_NATIVE32 = 1.0 + 2.0**-30 == 1.0
# Powers of ten that are exact floats (10**22 is the largest exact double), built from ints so
# that no libm pow() rounding can make runtimes differ. The ints are not kept: from 10**10 on
# each is a big integer on a 32-bit board, and the fast path needs one 10**n, a small one.
_P = [float(10**i) for i in range(23)]
_BIG = 10**20  # larger integers are refused both ways: bounded work, and no JSON reader chokes
_NBIG = -_BIG  # a constant: writing -_BIG in a check would allocate a big integer each time

_INF = float("inf")
_NINF = -_INF  # a constant: -_INF in a check would allocate a float each time
# Largest exact integer candidate and most decimals tried, at the native float width.
_LIM = (16777216, 10) if _NATIVE32 else (9007199254740992, 22)
_NAMECH = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-:./_"
_ALNUM = _NAMECH[:62]


class SenMLError(ValueError):
    """A pack that cannot be encoded or decoded; the message names the record and field."""


def _err(i, k, msg):
    return SenMLError("record %d: field '%s': %s" % (i, k, msg))


def _r32(x):
    import struct

    try:
        return struct.unpack("f", struct.pack("f", x))[0]
    except OverflowError:  # beyond float32 range: refused as not finite
        return x * 1e308


def _fmt(neg, digits, k):
    # Place the point the way CPython's repr does: plain notation for 1e-4 <= |x| < 1e16.
    digits = digits.rstrip("0")
    n = len(digits)
    if -4 <= k < 16:
        if k >= n - 1:
            s = digits + "0" * (k - n + 1) + ".0"
        elif k >= 0:
            s = digits[: k + 1] + "." + digits[k + 1 :]
        else:
            s = "0." + "0" * (-k - 1) + digits
    else:
        s = (
            digits[0]
            + ("." + digits[1:] if n > 1 else "")
            + ("e-%02d" % -k if k < 0 else "e+%02d" % k)
        )
    return "-" + s if neg else s


def format_float(x, f32=None):
    """Shortest decimal text that reads back to the float x at the runtime precision.

    9.7 gives "9.7" on every runtime (the unix port's repr gives 9.699999999999999). With
    float32 (native, or FLOAT32 = True) x is first rounded to float32 and the shortest text that
    reads back to that float32 is returned. NaN and infinities raise SenMLError. `f32` True or
    False forces the float32 or float64 path (kpnthings.senml.FLOAT32 passes it).
    """
    if f32 is None and 0 < x < _INF:
        # A positive finite float at native precision (most readings) skips the set-up below,
        # which would come to the same values.
        f32 = _NATIVE32
        host32 = neg = False
        lim, top = _LIM
    else:
        if f32 is None:
            f32 = _NATIVE32
        host32 = f32 and not _NATIVE32
        if host32:
            x = _r32(x)
        if not _NINF < x < _INF:  # comparisons allocate nothing; x - x would (a boxed float)
            raise SenMLError("%r is not a finite number" % x)
        if x == 0:
            # Or a float32 subnormal on the RP2040: its float routines flush them, so they
            # compare equal to 0 there, yet a reader keeps one (1e-45 reads back). Bits tell.
            import struct

            neg = str(x)[0] == "-"
            x = abs(x)  # a sign flip, which keeps a subnormal
            if any(struct.pack("f", x)):
                return _exact(neg, x, True)
            return "-0.0" if neg else "0.0"
        neg = x < 0
        if neg:
            x = -x
        lim, top = (16777216, 10) if f32 else (9007199254740992, 22)
    # Fast path: d / 10**n with d and 10**n both exact floats is one correctly rounded IEEE
    # division, i.e. exactly what a correct reader computes from the text "d e-n". So it proves
    # the round trip without trusting the runtime's float parser, which on MicroPython can be
    # one unit off. Candidates with n < 0 are never needed here: below 2**53 (2**24) a float
    # that equals an integer is that integer, and the trailing zeros are stripped anyway.
    if x >= lim:  # too large for an exact candidate (and for any fraction)
        return _exact(neg, x, f32)
    if x == int(x):  # n = 0: an integer, no float to allocate
        return "%s%d.0" % ("-" if neg else "", int(x))
    p = _P
    n = 1
    while n <= top:
        # Rounded to float32 as a board rounds it (it can cross a half and miss the candidate,
        # and the exact search then writes the text), so the simulation takes the board's steps.
        d = round(_r32(x * p[n]) if host32 else x * p[n])
        if d >= lim:
            break
        if d:
            y = d / p[n]
            if host32:
                y = _r32(y)
            if y < x:
                # Just above a power of two the gap below x is half the gap above, so the
                # candidate above may read back as x when the nearer one below does not.
                d += 1
                y = d / p[n]
                if host32:
                    y = _r32(y)
            if y == x:
                # Common shapes in one %-format each (heap per message counts on a board).
                sign = "-" if neg else ""
                if d % 10:
                    if x >= 1:
                        q = 10**n
                        return "%s%d.%0*d" % (sign, d // q, n, d % q)
                    if d * 10000 >= 10**n:  # x >= 1e-4: plain notation
                        return "%s0.%0*d" % (sign, n, d)
                s = str(d)
                return _fmt(neg, s, len(s) - 1 - n)
        n += 1
    return _exact(neg, x, f32)


def _exact(neg, x, f32):
    # Floats the fast path cannot prove (far exponents, more digits than an exact float holds)
    # are rare in readings: a board loads their exact search the first time it meets one.
    from kpnthings.senml_exact import exact

    return exact(neg, x, f32, _fmt)


def _q(s, i=0, k="vs"):
    # JSON string literal. Not cached: the pack writer keeps each sensor's quoted name and unit
    # (kpnthings.batch), and a cache here kept small strings alive amid the pack's garbage,
    # holes that the downlink parser's bytecode could not use (2.5 KB more for a full cycle).
    # Only the UTF-8 bytes are looked at one by one: on MicroPython, taking a str apart (for,
    # max, min, s[i]) interns each distinct character for good, so the characters of every
    # value ever written would pile up in the heap.
    try:
        b = s.encode()
    except UnicodeError:  # CPython: a lone surrogate
        b = b"\xed\xa0"
    # A lone surrogate has no UTF-8 form (MicroPython would write CESU bytes ED A0..BF).
    if b"\xed" in b and _surrogate(b):
        raise _err(i, k, "string holds a lone surrogate, not valid UTF-8")
    if b'"' in b or b"\\" in b or (b and min(b) < 32):
        s = s.replace("\\", "\\\\").replace('"', '\\"')
        for c in range(32):
            if bytes((c,)) in b:
                s = s.replace(chr(c), "\\u%04x" % c)  # at most 32 names, the controls
    return '"' + s + '"'


def _name(i, k, bn, n):
    # ^[A-Za-z0-9][A-Za-z0-9\-:./_]*$ on bn + n, without building bn + n.
    c = bn[:1] or n[:1]
    # strip() leaves nothing exactly when only name characters are there (one C-level call,
    # as MicroPython's re cannot express the class).
    if c == "" or c not in _ALNUM or bn.strip(_NAMECH) or n.strip(_NAMECH):
        raise _err(i, k, "name %r is not a valid SenML name" % (bn + n))


def _surrogate(x):
    if isinstance(x, str):
        try:
            x = x.encode()
        except UnicodeError:
            return True
    i = x.find(b"\xed")
    while i >= 0:
        if i + 1 < len(x) and x[i + 1] >= 0xA0:
            return True
        i = x.find(b"\xed", i + 1)
    return False
