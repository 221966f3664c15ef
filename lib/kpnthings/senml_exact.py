"""The exact shortest-text search for floats that kpnthings.senml_text's fast path cannot prove
(more digits than an exact float holds, far exponents), with integers only. Loaded for such a
float and unloaded after. It writes the text with the caller's formatter (senml_text's `_fmt`),
handed in rather than imported, so that this module depends on nothing of the package.
"""

import struct


def exact(neg, x, f32, _fmt):
    # Same search with exact integers, for what the fast path cannot prove (more digits than
    # an exact float holds, far exponents). Runtime float formatting is not used: MicroPython's
    # differs from CPython's in the 17th digit, and identical bytes everywhere is the point.
    if f32:
        b = struct.unpack("<I", struct.pack("<f", x))[0]
        fb, bias = 23, 150
    else:
        b = struct.unpack("<Q", struct.pack("<d", x))[0]
        fb, bias = 52, 1075
    f = b & ((1 << fb) - 1)
    ex = b >> fb
    m = f | (1 << fb) if ex else f
    e = ex - bias if ex else 1 - bias
    # x = m * 2**e; in units of 2**(e-2) the values that read back as x lie between 4m - lo
    # and 4m + 2 (ends included when m is even: ties round to even). Just above a power of
    # two the gap below is half as wide.
    lo = 1 if f == 0 and ex > 1 else 2
    n = -int((e + fb + 1) * 0.30103) - 1
    while True:
        p = 10 ** abs(n)
        num = m << e if e > 0 else m
        den = 1 if e > 0 else 1 << -e
        if n > 0:
            num *= p
        else:
            den *= p
        d0, r = divmod(num, den)
        if 2 * r > den or (2 * r == den and d0 & 1):
            d0 += 1
        # As in the fast path, above a power of two the next candidate up may also fit.
        for d in (d0, d0 + 1) if lo == 1 else (d0,):
            if d:
                a = d << (2 - e) if e < 2 else d
                bb = 1 << (e - 2) if e > 2 else 1
                if n < 0:
                    a *= p
                else:
                    bb *= p
                lo_ok = a > (4 * m - lo) * bb or (m & 1 == 0 and a == (4 * m - lo) * bb)
                hi_ok = a < (4 * m + 2) * bb or (m & 1 == 0 and a == (4 * m + 2) * bb)
                if lo_ok and hi_ok:
                    s = str(d)
                    return _fmt(neg, s, len(s) - 1 - n)
        n += 1
