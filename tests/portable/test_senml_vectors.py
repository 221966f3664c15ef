"""The shared vectors (copied into tests/data): RFC 8428 and KPN packs, and message tokens."""

import binascii

from _support import load_json
from kpnthings import senml, senml_text


def _close(a, b, key):
    # Values and times come from JSON text parsed on this runtime. MicroPython's float parser
    # can be one unit off, and boards have 32-bit floats (a Unix time is then good to ~128 s).
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if senml_text._NATIVE32:
            tol = 256 if key == "t" else 1e-6 * max(1.0, abs(b))
        else:
            tol = 1e-4 if key == "t" else 1e-12 * max(1.0, abs(b))
        return abs(a - b) <= tol
    return a == b


def _check_vector(vec):
    got = senml.decode(vec["pack"], now=vec["now"])
    want = vec["resolved"]
    assert len(got) == len(want), (vec["name"], got)
    for i in range(len(want)):
        g = got[i]
        w = dict(want[i])
        if "vd_hex" in w:
            w["vd"] = binascii.unhexlify(w.pop("vd_hex"))
        assert sorted(g) == sorted(w), (vec["name"], i, sorted(g), sorted(w))
        for k in w:
            assert _close(g[k], w[k], k), (vec["name"], i, k, g[k], w[k])


def test_every_decode_vector_resolves_as_rfc_8428_says():
    vectors = load_json("senml-decode.json")["vectors"]
    assert len(vectors) >= 10
    for vec in vectors:
        _check_vector(vec)


def test_decode_vectors_also_from_bytes():
    for vec in load_json("senml-decode.json")["vectors"]:
        a = senml.decode(vec["pack"].encode(), now=vec["now"])
        b = senml.decode(vec["pack"], now=vec["now"])
        assert len(a) == len(b)
        for i in range(len(a)):
            assert sorted(a[i]) == sorted(b[i])
            for k in a[i]:
                assert a[i][k] == b[i][k]


def test_kpn_vector_keeps_uppercase_exponent_and_padded_vd():
    vec = next(v for v in load_json("senml-decode.json")["vectors"] if v["name"].startswith("KPN"))
    got = senml.decode(vec["pack"], now=vec["now"])
    assert got[-1]["vd"] == b"hallooooo!!"
    assert got[1]["t"] - got[0]["t"] == 10


def test_token_vectors():
    from kpnthings.auth import message_token

    vectors = load_json("token.json")["vectors"]
    assert len(vectors) >= 4
    for vec in vectors:
        assert message_token(vec["body"], vec["secret"]) == vec["token"]
        assert message_token(vec["body"].encode(), vec["secret"]) == vec["token"]


def test_our_encoding_is_the_body_of_the_kpn_token_vector():
    # The third token vector is the body KPN documents; our Pack must produce it byte for byte,
    # so the token we sign is the token KPN computes.
    vec = load_json("token.json")["vectors"][2]
    pack = senml.Pack("urn:dev:DVNUUID:5e3a0f7c-1b2d-4c6e-9f80-1234567890ab:", 1700000000)
    pack.add("temperature", 43 / 2, "Cel")
    body = pack.encode()
    assert body == vec["body"].encode()
    from kpnthings.auth import message_token

    assert message_token(body, vec["secret"]) == vec["token"]
