"""update_verify: ECDSA P-256 signatures made on the host by `cryptography`
(tests/data/update_vectors.json) are accepted; a flip of any bit of the message, the signature or
the key is refused, and so are r or s out of [1, n - 1] and keys off the curve."""

import hashlib

from _support import load_json, raises
from kpnthings import update_verify

_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF


def _vectors():
    out = []
    for v in load_json("update_vectors.json")["vectors"]:
        out.append(tuple(bytes.fromhex(v[k]) for k in ("key", "message", "sig")))
    return out


def _ok(key, msg, sig):
    return update_verify.verify(hashlib.sha256(msg).digest(), sig, key)


def _flip(data, bit):
    b = bytearray(data)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


def test_good_signatures_accepted():
    vectors = _vectors()
    assert len(vectors) >= 6
    for key, msg, sig in vectors:
        assert _ok(key, msg, sig) is True


def test_signature_of_another_message_or_key_refused():
    vectors = _vectors()
    for i, (key, msg, sig) in enumerate(vectors):
        other_key, other_msg, other_sig = vectors[(i + 1) % len(vectors)]
        assert _ok(other_key, msg, sig) is False
        assert _ok(key, msg, other_sig) is False
        if other_msg != msg:
            assert _ok(key, other_msg, sig) is False


def test_every_flipped_signature_bit_refused():
    key, msg, sig = _vectors()[2]
    for bit in range(512):
        assert _ok(key, msg, _flip(sig, bit)) is False, bit


def test_every_flipped_message_bit_refused():
    key, msg, sig = _vectors()[2]
    assert len(msg) >= 20
    for bit in range(len(msg) * 8):
        assert _ok(key, _flip(msg, bit), sig) is False, bit


def test_every_flipped_key_bit_refused():
    key, msg, sig = _vectors()[2]
    for bit in range(8, 520):  # the first byte is the 04 prefix, below
        try:
            assert _ok(_flip(key, bit), msg, sig) is False, bit
        except ValueError as e:  # most flips leave the curve: refused as no key at all
            assert "P-256" in str(e), bit
    for bit in range(8):
        raises(ValueError, _ok, _flip(key, bit), msg, sig)


def test_r_and_s_out_of_range_refused():
    key, msg, sig = _vectors()[0]
    r = sig[:32]
    s = sig[32:]
    bad = (0, _N, _N + 1, (1 << 256) - 1)
    for x in bad:
        assert _ok(key, msg, x.to_bytes(32, "big") + s) is False
        assert _ok(key, msg, r + x.to_bytes(32, "big")) is False
    # r + n would name the same x(R) if x(R) >= n: still not a valid r
    r_int = int.from_bytes(r, "big")
    if r_int + _N < (1 << 256):
        assert _ok(key, msg, (r_int + _N).to_bytes(32, "big") + s) is False


def test_wrong_lengths_refused():
    key, msg, sig = _vectors()[0]
    digest = hashlib.sha256(msg).digest()
    assert update_verify.verify(digest, sig[:-1], key) is False
    assert update_verify.verify(digest, sig + b"\0", key) is False
    assert update_verify.verify(digest[:-1], sig, key) is False
    e = raises(ValueError, update_verify.verify, digest, sig, key[:-1])
    assert "65 bytes" in str(e)


def test_keys_off_the_curve_or_out_of_range_refused():
    key = _vectors()[0][0]
    x = key[1:33]
    raises(ValueError, update_verify.public_point, b"\x04" + x + b"\0" * 32)
    raises(ValueError, update_verify.public_point, b"\x04" + _P.to_bytes(32, "big") + key[33:])
    raises(ValueError, update_verify.public_point, b"\x02" + x + key[33:])
    assert update_verify.public_point(key) == (
        int.from_bytes(x, "big"),
        int.from_bytes(key[33:], "big"),
    )
