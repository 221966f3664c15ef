"""ECDSA P-256 signature check for a release manifest, in pure Python (docs/updates.md says why).

The digest is SHA-256 of the manifest's exact bytes, taken by the board's C hashlib; this module
does the curve arithmetic only: Jacobian coordinates (a = -3), Shamir's trick for u1*G + u2*Q
with G, Q and G+Q affine, and no inverse mod p at the end: x(R) = X / Z^2 is compared as
X == r * Z^2 (and (r + n) * Z^2 when r + n < p), so the one inverse mod n (of s) and the one
mod p (to make G+Q affine) are pow(x, m - 2, m): pow(x, -1, m) is not on every MicroPython.
Loaded only while an update is checked, then unloaded.
"""

from kpnthings.compat import const

_P = const(0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF)
_N = const(0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551)
_B = const(0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B)
_GX = const(0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296)
_GY = const(0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5)


def _dbl(x, y, z):
    # dbl-2001-b (a = -3): 3M + 5S
    if not z or not y:
        return 1, 1, 0
    d = z * z % _P
    g = y * y % _P
    b = x * g % _P
    a = 3 * (x - d) * (x + d) % _P
    x3 = (a * a - 8 * b) % _P
    z = ((y + z) * (y + z) - g - d) % _P
    return x3, (a * (4 * b - x3) - 8 * g * g) % _P, z


def _add(x, y, z, u, v):
    # Jacobian (x, y, z) + affine (u, v), madd-2004-hmv: 8M + 3S. Equal points double, opposite
    # points give infinity (z = 0), which a crafted signature can reach: neither is left out.
    if not z:
        return u, v, 1
    zz = z * z % _P
    h = (u * zz - x) % _P
    r = (v * zz * z - y) % _P
    if not h:
        return _dbl(x, y, z) if not r else (1, 1, 0)
    hh = h * h % _P
    hhh = h * hh % _P
    x1 = x * hh % _P
    x3 = (r * r - hhh - 2 * x1) % _P
    return x3, (r * (x1 - x3) - y * hhh) % _P, z * h % _P


def _affine(x, y, z):
    i = pow(z, _P - 2, _P)
    ii = i * i % _P
    return x * ii % _P, y * ii * i % _P


def public_point(key):
    """(x, y) of a 65-byte uncompressed key (04 || x || y), checked on the curve; else ValueError
    naming the key."""
    if len(key) != 65 or key[0] != 4:
        raise ValueError("public key must be 65 bytes, 04 || x || y")
    x = int.from_bytes(key[1:33], "big")
    y = int.from_bytes(key[33:], "big")
    if x >= _P or y >= _P or (y * y - x * x * x + 3 * x - _B) % _P:
        raise ValueError("public key is not a point of P-256")
    return x, y


def verify(digest, signature, key):
    """True when signature (64 bytes, r || s) is key's ECDSA P-256 signature of digest (the
    32-byte SHA-256 of the signed bytes); False for any other signature. ValueError when key is
    not a P-256 public key."""
    qx, qy = public_point(key)
    if len(signature) != 64 or len(digest) != 32:
        return False
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    if not 0 < r < _N or not 0 < s < _N:
        return False
    w = pow(s, _N - 2, _N)
    e = int.from_bytes(digest, "big") % _N
    u1 = e * w % _N
    u2 = r * w % _N
    x, y, z = _add(_GX, _GY, 1, qx, qy)
    if z:
        both = _affine(x, y, z)
    else:  # Q = -G: G + Q is infinity, and u1 * G + u2 * Q adds nothing for those bits
        both = None
    x, y, z = 1, 1, 0
    for i in range(255, -1, -1):
        x, y, z = _dbl(x, y, z)
        bits = (u1 >> i & 1) | (u2 >> i & 1) << 1
        if bits == 1:
            x, y, z = _add(x, y, z, _GX, _GY)
        elif bits == 2:
            x, y, z = _add(x, y, z, qx, qy)
        elif bits == 3 and both:
            x, y, z = _add(x, y, z, both[0], both[1])
    if not z:
        return False
    zz = z * z % _P
    # x(R) mod n == r: x(R) < p < 2n, so x(R) is r or r + n
    return x == r * zz % _P or (r + _N < _P and x == (r + _N) * zz % _P)
