"""SenML numbers (RFC 8428): integers, float text (shortest round trip, float32 and float64
paths) and the values no JSON number can hold. The rest of encoding: test_senml_encode.py.

Floats are built by exact operations (int / int, struct from bits), never from literals:
MicroPython's float parser can be one unit off, and the point is the same float everywhere.
Where the float32 matters, from bits: mpy-cross folds 1 / 3 into the literal 0.3333333333333333,
which the rp2 firmware reads as 0.3333333 (0x3eaaaaaa), not as its own 1 / 3 (0x3eaaaaab).
"""

import binascii
import json
import struct

from _support import Skip, is_micropython, message, raises
from kpnthings import batch, senml, senml_text
from kpnthings.senml import Pack, SenMLError, encode, format_float


def _d(hexbits):
    return struct.unpack(">d", binascii.unhexlify(hexbits))[0]


def _f32(hexbits):
    return struct.unpack(">f", binascii.unhexlify(hexbits))[0]


def test_integers_stay_integers():
    for x, text in [
        (0, "0"),
        (-5, "-5"),
        (2**31, "2147483648"),
        (2**53 + 1, "9007199254740993"),
        (10**19, "10000000000000000000"),
        (-(10**20) + 1, "-99999999999999999999"),
    ]:
        assert encode([{"n": "i", "v": x}]) == b'[{"n":"i","v":' + text.encode() + b"}]", x


def test_integers_beyond_1e20_are_refused():
    e = raises(SenMLError, encode, [{"n": "i", "v": 10**20}])
    assert "record 0: field 'v'" in message(e)
    raises(SenMLError, encode, [{"n": "i", "v": 1, "t": -(10**20)}])


def test_bool_is_not_a_number():
    e = raises(SenMLError, encode, [{"n": "i", "v": True}])
    assert message(e) == "record 0: field 'v': must be a number"
    raises(SenMLError, encode, [{"n": "i", "v": 1, "t": False}])


def test_float_text_is_shortest_round_trip():
    cases = [
        (97 / 10, "9.7"),  # the unix port's repr gives 9.699999999999999
        (1 / 10, "0.1"),
        (3 / 10, "0.3"),
        (1 / 10 + 2 / 10, "0.30000000000000004"),
        (2 / 3, "0.6666666666666666"),
        (1 / 10**7, "1e-07"),
        (1 / 10**4, "0.0001"),
        (12 / 10**5, "0.00012"),
        (-1 / 4, "-0.25"),
        (1234567 / 1000, "1234.567"),
        (-1234567 / 1000, "-1234.567"),
        (_d("3ee4f8b588e368f1"), "1e-05"),
        (_d("444b1ae4d6e2ef50"), "1e+21"),
        (_d("4480f0cf064dd592"), "1e+22"),
        (_d("44b52d02c7e14af6"), "1e+23"),
        (_d("4341c37937e08000"), "1e+16"),
        (float(10**15), "1000000000000000.0"),
        (21.0, "21.0"),
        (1500.0, "1500.0"),
        (123456789.0, "123456789.0"),
        (-0.0, "-0.0"),
        (0.0, "0.0"),
        (-43 / 2, "-21.5"),
        (134773 / 10**8, "0.00134773"),  # MicroPython reads "0.00134773" one unit off
        (_d("0000000000000001"), "5e-324"),
        (_d("0010000000000000"), "2.2250738585072014e-308"),
        (_d("7fefffffffffffff"), "1.7976931348623157e+308"),
        (float(2**53), "9007199254740992.0"),
        (float(2**60), "1.152921504606847e+18"),
    ]
    if senml_text._NATIVE32:
        raise Skip("64-bit float cases; this runtime has 32-bit floats")
    for x, text in cases:
        assert format_float(x) == text, (text, format_float(x))
        if not is_micropython():  # a correct reader; MicroPython's can be one unit off
            assert float(text) == x, text
        body = encode([{"n": "f", "v": x}])
        assert body == b'[{"n":"f","v":' + text.encode() + b"}]", text


def test_float_text_reads_back_exactly_through_json():
    if senml_text._NATIVE32:
        raise Skip("64-bit floats only")
    for x in (97 / 10, 1 / 3, 1234567 / 1000, _d("7fefffffffffffff"), -(2**-30)):
        back = json.loads(encode([{"n": "f", "v": x}]))[0]["v"]
        assert back == x and isinstance(back, float), x


def test_forced_float32_path():
    old = senml.FLOAT32
    senml.FLOAT32 = True
    try:
        cases = [
            (97 / 10, "9.7"),
            (1 / 10, "0.1"),
            (_f32("3eaaaaab"), "0.33333334"),  # 1 / 3
            (2153 / 100, "21.53"),
            (43 / 2, "21.5"),
            (float(16777217), "16777216.0"),
            (1 / 10**7, "1e-07"),
            (_d("47efffffe0000000"), "3.4028235e+38"),
            (-0.0, "-0.0"),
            (float(10**10), "10000000000.0"),
            (float(2**60), "1.1529215e+18"),
            # The smallest float32 subnormal, from its bits: the rp2 port flushes it to 0 when
            # it converts the double.
            (_f32("00000001"), "1e-45"),
        ]
        for x, text in cases:
            assert format_float(x) == text, (text, format_float(x))
        body = Pack().add("t", 2153 / 100).encode()
        assert body == b'[{"n":"t","v":21.53}]'
        # Beyond float32 range: not finite once rounded to float32.
        raises(SenMLError, format_float, _d("48078287f49c4a1d"))
    finally:
        senml.FLOAT32 = old
    assert senml.FLOAT32 is old


def test_float32_text_on_the_boards_own_path():
    # A board formats its native float32 values with FLOAT32 None, a path of its own: it wrote
    # 3.3999999521443642e+38 for 3.4e38 and 0.0 for 1e-45 (issue 17, finding 14). This runs
    # that path on a float32 runtime (the emulated RP2040) and the forced one elsewhere: both
    # must give the shortest text that reads back to the float32, the same bytes.
    cases = [
        ("7f7fc99e", "3.4e+38"),
        ("7f7fffff", "3.4028235e+38"),
        ("ff7fffff", "-3.4028235e+38"),
        ("5d800000", "1.1529215e+18"),  # 2**60
        ("4e92a09f", "1230000000.0"),  # 1.23e9
        ("501502f9", "10000000000.0"),  # 1e10
        ("4b800000", "16777216.0"),  # 2**24
        ("4b800001", "16777218.0"),
        ("47f1205a", "123456.7"),
        ("3eaaaaab", "0.33333334"),
        ("0da24260", "1e-30"),
        ("4423a8b3", "654.6359"),  # x * 10**4 rounds up past the half in float32
        ("00000001", "1e-45"),  # subnormals: the RP2040 compares them equal to 0
        ("80000001", "-1e-45"),
        ("007fffff", "1.1754942e-38"),
        ("00800000", "1.1754944e-38"),
        ("80000000", "-0.0"),
        ("00000000", "0.0"),
        ("41ac3d71", "21.53"),
    ]
    old = senml.FLOAT32
    senml.FLOAT32 = None if senml_text._NATIVE32 else True
    try:
        for h, text in cases:
            x = _f32(h)
            assert format_float(x) == text, (h, text, format_float(x))
            v = text.encode()
            assert encode([{"n": "t", "v": x}]) == b'[{"n":"t","v":' + v + b"}]", h
            body = Pack().add("t", x).add("t", x).encode()  # checked, then the cached way
            assert body == b'[{"n":"t","v":' + v + b'},{"n":"t","v":' + v + b"}]", h
            if senml_text._NATIVE32:  # batch writes at the runtime's width only
                body = b'[{"bn":"d:","n":"t","v":' + v + b"}]"
                assert batch.build_pack("d:", [{"n": "t", "v": x}], 64) == (body, 1), h
    finally:
        senml.FLOAT32 = old


def test_forced_float64_path():
    if senml_text._NATIVE32:
        raise Skip("a 32-bit float runtime cannot hold 64-bit floats")
    old = senml.FLOAT32
    senml.FLOAT32 = False
    try:
        assert format_float(1 / 3) == "0.3333333333333333"
    finally:
        senml.FLOAT32 = old


def test_float32_is_detected_from_the_runtime():
    assert senml_text._NATIVE32 == (1.0 + 2.0**-30 == 1.0)
    assert senml.FLOAT32 is None


def test_nan_and_infinities_are_refused():
    inf = float("inf")
    for bad in (inf, -inf, inf - inf):
        raises(SenMLError, format_float, bad)
        for k in ("v", "s", "t", "ut", "bt", "bv", "bs"):
            rec = {"n": "x", "v": 1}
            rec[k] = bad
            e = raises(SenMLError, encode, [rec])
            assert message(e).startswith("record 0: field '%s': " % k), message(e)
            assert "finite" in message(e)
