"""SenML encoding (RFC 8428): byte-exact output, float text, escaping, and every refusal.

Floats are built by exact operations (int / int, struct from bits), never from literals:
MicroPython's float parser can be one unit off, and the point is the same float everywhere.
Where the float32 matters, from bits: mpy-cross folds 1 / 3 into the literal 0.3333333333333333,
which the rp2 firmware reads as 0.3333333 (0x3eaaaaaa), not as its own 1 / 3 (0x3eaaaaab).
"""

import binascii
import json
import struct

from _support import Skip, is_micropython, raises
from kpnthings import batch, senml, senml_text
from kpnthings.senml import Pack, SenMLError, encode, format_float

BN = "urn:dev:DVNUUID:5e3a0f7c-1b2d-4c6e-9f80-1234567890ab:"


def _d(hexbits):
    return struct.unpack(">d", binascii.unhexlify(hexbits))[0]


def _f32(hexbits):
    return struct.unpack(">f", binascii.unhexlify(hexbits))[0]


def _msg(exc):
    return str(exc.args[0]) if exc.args else ""


# ---- byte-exact packs ----


def test_pack_kpn_example_is_byte_exact():
    body = Pack(BN, 1700000000).add("temperature", 43 / 2, "Cel").encode()
    assert body == (
        b'[{"bn":"urn:dev:DVNUUID:5e3a0f7c-1b2d-4c6e-9f80-1234567890ab:","bt":1700000000},'
        b'{"n":"temperature","u":"Cel","v":21.5}]'
    )
    assert isinstance(body, bytes)


def test_pack_picks_the_value_field_by_type():
    p = Pack("dev:")
    p.add("i", 7).add("f", 97 / 10).add("b", True).add("off", False).add("s", "hi")
    p.add("d", b"hi \n").add("ba", bytearray(b"\x00\xff\xfe"))
    assert p.encode() == (
        b'[{"bn":"dev:"},{"n":"i","v":7},{"n":"f","v":9.7},{"n":"b","vb":true},'
        b'{"n":"off","vb":false},{"n":"s","vs":"hi"},{"n":"d","vd":"aGkgCg"},'
        b'{"n":"ba","vd":"AP_-"}]'
    )


def test_pack_without_base_fields_has_no_base_record():
    assert Pack().add("a:b", 1).encode() == b'[{"n":"a:b","v":1}]'


def test_pack_with_every_base_field_and_record_field():
    p = Pack(BN, 1700000000, "Cel")
    p.add("t1", 20, time=-60).add("energy", sum=1234, unit="Wh").add("t2", 21, "Cel", 5, 3)
    assert p.encode() == (
        b'[{"bn":"' + BN.encode() + b'","bt":1700000000,"bu":"Cel"},'
        b'{"n":"t1","v":20,"t":-60},{"n":"energy","u":"Wh","s":1234},'
        b'{"n":"t2","u":"Cel","v":21,"s":3,"t":5}]'
    )


def test_encode_writes_all_fields_in_rfc_order_whatever_the_dict_order():
    want = (
        b'[{"bn":"a:","bt":1,"bu":"V","bv":2,"bs":3,"bver":10,"n":"x","u":"A",'
        b'"v":4,"s":5,"t":6,"ut":7}]'
    )
    labels = ["bn", "bt", "bu", "bv", "bs", "bver", "n", "u", "v", "s", "t", "ut"]
    values = ["a:", 1, "V", 2, 3, 10, "x", "A", 4, 5, 6, 7]
    forward = {}
    backward = {}
    for j in range(len(labels)):
        forward[labels[j]] = values[j]
    for j in range(len(labels) - 1, -1, -1):
        backward[labels[j]] = values[j]
    assert encode([forward]) == want
    assert encode([backward]) == want
    # Rotations of the insertion order too.
    for shift in range(1, len(labels)):
        r = {}
        for j in range(len(labels)):
            k = labels[(j + shift) % len(labels)]
            r[k] = values[labels.index(k)]
        assert encode([r]) == want


def test_encode_writes_base_fields_as_given_and_skips_none():
    recs = [{"bn": "x:", "n": "a", "v": 1, "u": None}, {"n": "b", "vs": "s", "t": None}]
    assert encode(recs) == b'[{"bn":"x:","n":"a","v":1},{"n":"b","vs":"s"}]'
    assert encode(({"n": "a", "v": 1},)) == b'[{"n":"a","v":1}]'


def test_encode_output_has_no_whitespace_and_parses_as_json():
    body = Pack(BN, 1700000000).add("a", 1).add("b", "x y").encode()
    assert b" " not in body.replace(b"x y", b"")
    assert b"\n" not in body
    assert json.loads(body)[2]["vs"] == "x y"


def test_sum_only_record_is_allowed():
    assert encode([{"n": "energy", "s": 12}]) == b'[{"n":"energy","s":12}]'


def test_base_only_record_needs_no_value():
    assert encode([{"bn": "a:", "bt": 5}, {"n": "x", "v": 1}]) == (
        b'[{"bn":"a:","bt":5},{"n":"x","v":1}]'
    )


def test_vd_is_base64url_without_padding():
    cases = [
        (b"", ""),
        (b"h", "aA"),
        (b"ho", "aG8"),
        (b"hoi", "aG9p"),
        (b"hoihoi\x00", "aG9paG9pAA"),
        (b"\xfb\xff\xbf", "-_-_"),
    ]
    for raw, text in cases:
        want = b'[{"n":"d","vd":"' + text.encode() + b'"}]'
        assert encode([{"n": "d", "vd": raw}]) == want, raw
        assert encode([{"n": "d", "vd": memoryview(raw)}]) == want, raw


# ---- integers and floats ----


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
    assert "record 0: field 'v'" in _msg(e)
    raises(SenMLError, encode, [{"n": "i", "v": 1, "t": -(10**20)}])


def test_bool_is_not_a_number():
    e = raises(SenMLError, encode, [{"n": "i", "v": True}])
    assert _msg(e) == "record 0: field 'v': must be a number"
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
            assert _msg(e).startswith("record 0: field '%s': " % k), _msg(e)
            assert "finite" in _msg(e)


# ---- strings ----


def test_strings_are_escaped_by_hand_and_valid_utf8():
    s = 'q"b\\c\n\t\x01\x1f\x7f/\u00e9\u20ac\U0001f600'
    body = encode([{"n": "a", "vs": s, "u": 'u"'}])
    assert body == (
        b'[{"n":"a","u":"u\\"","vs":"q\\"b\\\\c\\u000a\\u0009\\u0001\\u001f\x7f/'
        + "\u00e9\u20ac\U0001f600".encode()
        + b'"}]'
    )
    assert body.decode("utf-8")
    assert json.loads(body)[0]["vs"] == s


def test_empty_string_value():
    assert encode([{"n": "a", "vs": ""}]) == b'[{"n":"a","vs":""}]'


def test_lone_surrogate_is_refused():
    try:
        bad = chr(0xD800)
    except ValueError:
        raise Skip("this runtime cannot hold a lone surrogate") from None
    e = raises(SenMLError, encode, [{"n": "a", "vs": "x" + bad}])
    assert _msg(e).startswith("record 0: field 'vs': "), _msg(e)


def test_string_caches_stay_bounded():
    for i in range(200):
        encode([{"n": "n%d" % i, "u": "u%d" % i, "vs": "s%d" % i}])
    assert len(senml_text._QC) <= 32
    assert len(senml_text._NC) <= 32
    # A long value is written but not kept alive by the cache.
    long = "x" * 5000
    assert encode([{"n": "a", "vs": long}]).count(b"x") == 5000
    assert long not in senml_text._QC
    long_name = "n" * 500
    assert encode([{"n": long_name, "v": 1}])
    assert long_name not in senml_text._NC


# ---- KPN C library defects (STYLE.md): regression tests ----


def test_kpn_defect_body_complete_when_bn_and_bu_both_set():
    # KPN's C library counted one byte short with bn and bu both set: the body lost its "]".
    body = Pack(BN, 1700000000, "Cel").add("temperature", 43 / 2).encode()
    want = (
        b'[{"bn":"' + BN.encode() + b'","bt":1700000000,"bu":"Cel"},{"n":"temperature","v":21.5}]'
    )
    assert body == want
    assert len(body) == len(want)
    assert body.endswith(b"}]")
    assert json.loads(body)[1]["v"] == 21.5
    assert Pack(BN, None, "Cel").add("x", 1).encode().endswith(b"}]")


def test_kpn_defect_unit_slash_is_not_doubled():
    # KPN's C library wrote the unit "/" as "//".
    body = Pack(BN, None, "/").add("heat", 1, "/").encode()
    assert b'"bu":"/"' in body
    assert b'"u":"/"' in body
    assert b"//" not in body
    assert json.loads(body)[1]["u"] == "/"


# ---- validation: every refusal names the record and field ----


def test_names_must_match_the_rfc_pattern():
    ok = ["a", "A", "0", "a-b:c.d/e_f", "urn:dev:ow:10e2073a01080063"]
    for n in ok:
        assert encode([{"n": n, "v": 1}])
    for n in ["a b", "-a", "_a", ".a", ":a", "/a", "t\u00e9mp", "a\n", "a,b", 'a"b', "a\\b"]:
        e = raises(SenMLError, encode, [{"n": n, "v": 1}])
        assert _msg(e) == "record 0: field 'n': name %r is not a valid SenML name" % n, _msg(e)


def test_name_is_checked_after_concatenation():
    assert encode([{"bn": "urn:x:", "n": "-ok", "v": 1}])
    e = raises(SenMLError, encode, [{"bn": "a:"}, {"n": "x"}, {"n": "a b", "v": 1}])
    assert _msg(e).startswith("record 1: field 'v': ")
    e = raises(SenMLError, encode, [{"bn": "a:"}, {"n": "ok", "v": 1}, {"n": "a b", "v": 1}])
    assert _msg(e) == "record 2: field 'n': name 'a:a b' is not a valid SenML name"
    e = raises(SenMLError, encode, [{"bn": "bad base:"}, {"n": "x", "v": 1}])
    assert _msg(e) == "record 1: field 'n': name 'bad base:x' is not a valid SenML name"
    e = raises(SenMLError, encode, [{"bn": "-bad", "v": 1}])
    assert _msg(e) == "record 0: field 'bn': name '-bad' is not a valid SenML name"


def test_a_record_needs_a_name():
    e = raises(SenMLError, encode, [{"v": 1}])
    assert _msg(e) == "record 0: field 'bn': name '' is not a valid SenML name"


def test_exactly_one_value_unless_sum():
    e = raises(SenMLError, encode, [{"n": "a", "v": 1, "vs": "x"}])
    assert _msg(e) == "record 0: field 'vs': a record holds exactly one of v, vs, vb, vd"
    e = raises(SenMLError, encode, [{"n": "a", "v": 1}, {"n": "a", "vb": True, "vd": b"x"}])
    assert _msg(e).startswith("record 1: field 'vd': ")
    for rec in ({"n": "a"}, {"n": "a", "u": "V"}, {"n": "a", "t": 1}, {"bn": "a:", "ut": 5}):
        e = raises(SenMLError, encode, [rec])
        assert _msg(e) == "record 0: field 'v': record has no value (v, vs, vb, vd) and no sum (s)"
    e = raises(SenMLError, Pack(BN).add("x").encode)
    assert _msg(e).startswith("record 1: field 'v': ")


def test_field_types_are_checked():
    cases = [
        ({"n": 5, "v": 1}, "n", "must be a string"),
        ({"n": "a", "u": 5, "v": 1}, "u", "must be a string"),
        ({"bn": b"a", "n": "a", "v": 1}, "bn", "must be a string"),
        ({"n": "a", "bu": 1, "v": 1}, "bu", "must be a string"),
        ({"n": "a", "v": "1"}, "v", "must be a number"),
        ({"n": "a", "v": None, "vs": 1}, "vs", "must be a string"),
        ({"n": "a", "vb": 1}, "vb", "must be a boolean"),
        ({"n": "a", "vd": "aGk"}, "vd", "must be bytes"),
        ({"n": "a", "v": 1, "t": "now"}, "t", "must be a number"),
        ({"n": "a", "v": 1, "bt": [1]}, "bt", "must be a number"),
        ({"n": "a", "s": "1"}, "s", "must be a number"),
        ({"n": "a", "v": 1, "bver": 11}, "bver", "must be an integer from 1 to 10"),
        ({"n": "a", "v": 1, "bver": True}, "bver", "must be an integer from 1 to 10"),
        ({"n": "a", "v": 1, "bver": "10"}, "bver", "must be an integer from 1 to 10"),
        ({"n": "a", "v": 1, "foo": 1}, "foo", "unknown field"),
        ({"n": "a", "v": 1, "foo_": 1}, "foo_", "unknown field"),
    ]
    for rec, field, text in cases:
        e = raises(SenMLError, encode, [{"n": "ok", "v": 1}, rec])
        assert _msg(e) == "record 1: field '%s': %s" % (field, text), (rec, _msg(e))


def test_mixed_bver_is_refused():
    assert encode([{"bver": 10, "n": "a", "v": 1}, {"bver": 10, "n": "b", "v": 1}])
    e = raises(SenMLError, encode, [{"bver": 10, "n": "a", "v": 1}, {"bver": 9, "n": "b", "v": 1}])
    assert _msg(e) == "record 1: field 'bver': differs from an earlier bver"


def test_pack_shape_is_checked():
    for bad in ([], (), None, {"n": "a", "v": 1}, "x"):
        e = raises(SenMLError, encode, bad)
        assert _msg(e) == "a pack needs at least one record"
    e = raises(SenMLError, encode, [{"n": "a", "v": 1}, ["n", "b"]])
    assert _msg(e) == "record 1: must be a dict"
    e = raises(SenMLError, encode, [{"n": "a", "v": 1}, {}])
    assert _msg(e) == "record 1: is empty"
    raises(SenMLError, Pack().encode)


def test_pack_record_head_cache_follows_base_name_unit_and_kind():
    # Pack reuses the checked '"n":..,"u":..,"v":' head of a sensor; it must not outlive what
    # it was checked against.
    assert Pack("a:").add("-t", 1, "V").encode() == b'[{"bn":"a:"},{"n":"-t","u":"V","v":1}]'
    e = raises(SenMLError, Pack().add("-t", 1, "V").encode)
    assert _msg(e) == "record 0: field 'n': name '-t' is not a valid SenML name"
    assert Pack("a:").add("-t", 2, "A").encode() == b'[{"bn":"a:"},{"n":"-t","u":"A","v":2}]'
    assert Pack("a:").add("-t", 2).encode() == b'[{"bn":"a:"},{"n":"-t","v":2}]'
    assert Pack("a:").add("-t", "x").encode() == b'[{"bn":"a:"},{"n":"-t","vs":"x"}]'
    assert Pack("a:").add("-t", sum=3).encode() == b'[{"bn":"a:"},{"n":"-t","s":3}]'
    e = raises(SenMLError, Pack("a:").add("-t", 1, 5).encode)
    assert _msg(e) == "record 1: field 'u': must be a string"
    e = raises(SenMLError, Pack("a:").add(7, 1).encode)
    assert _msg(e) == "record 1: field 'n': must be a string"


def test_pack_add_refuses_unsupported_value_types_at_once():
    p = Pack(BN).add("a", 1)
    e = raises(SenMLError, p.add, "b", [1, 2])
    assert _msg(e) == "record 2: field 'v': value must be int, float, bool, str or bytes"
    e = raises(SenMLError, Pack().add, "b", {"x": 1})
    assert _msg(e).startswith("record 0: field 'v': ")


def test_senml_error_is_a_value_error():
    assert issubclass(SenMLError, ValueError)
    raises(ValueError, encode, [])
