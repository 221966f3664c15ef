"""SenML encoding (RFC 8428): byte-exact output, escaping, the KPN C library's defects, and every
refusal. Integers and float text: test_senml_numbers.py.
"""

import json

from _support import Skip, message, raises
from kpnthings import senml_text
from kpnthings.senml import Pack, SenMLError, encode

BN = "urn:dev:DVNUUID:5e3a0f7c-1b2d-4c6e-9f80-1234567890ab:"

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
    assert message(e).startswith("record 0: field 'vs': "), message(e)


def test_encoding_keeps_no_strings_alive():
    # Strings kept between packs sit amid each pack's garbage on a board, holes a later large
    # block cannot use; the pack writer keeps each sensor's own head (kpnthings.batch) instead.
    for i in range(50):
        assert encode([{"n": "n%d" % i, "u": "u%d" % i, "vs": "s%d" % i}]) == (
            b'[{"n":"n%d","u":"u%d","vs":"s%d"}]' % (i, i, i)
        )
    caches = [
        k for k, v in senml_text.__dict__.items() if type(v) is dict and not k.startswith("__")
    ]
    assert caches == [], caches
    long = "x" * 5000
    assert encode([{"n": "a", "vs": long}]).count(b"x") == 5000


def _cjk(k, count=500):
    # `count` distinct characters, made from their UTF-8 bytes: chr() would intern them.
    raw = bytearray()
    for i in range(count):
        cp = 0x4E00 + count * k + i
        raw += bytes((0xE0 | cp >> 12, 0x80 | (cp >> 6) & 0x3F, 0x80 | cp & 0x3F))
    return str(raw, "utf-8")


def test_distinct_characters_leave_nothing_in_the_heap():
    # On MicroPython, walking a str character by character (for, max, min) interns each
    # distinct character for good: a downlink or a value full of distinct characters grew the
    # heap by about 8 KB a time, without end (the decoder's scan walked the text when it held
    # an escape; the writer's quoting walked every string).
    import gc

    if not hasattr(gc, "mem_alloc"):
        raise Skip("CPython interns no characters")
    from kpnthings.senml_decode import decode

    def once(k):
        text = _cjk(k)
        got = decode(('[{"n":"x","vs":"a\\n%s"}]' % text).encode())
        assert got[0]["vs"] == "a\n" + text
        assert encode([{"n": "x", "vs": text + '"'}]).endswith(b'\\""}]')

    once(0)  # the modules' own first-use allocations
    gc.collect()
    before = gc.mem_alloc()
    for k in range(1, 4):
        once(k)
    gc.collect()
    grown = gc.mem_alloc() - before
    assert grown < 1024, grown


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
        want = "record 0: field 'n': name %r is not a valid SenML name" % n
        assert message(e) == want, message(e)


def test_name_is_checked_after_concatenation():
    assert encode([{"bn": "urn:x:", "n": "-ok", "v": 1}])
    e = raises(SenMLError, encode, [{"bn": "a:"}, {"n": "x"}, {"n": "a b", "v": 1}])
    assert message(e).startswith("record 1: field 'v': ")
    e = raises(SenMLError, encode, [{"bn": "a:"}, {"n": "ok", "v": 1}, {"n": "a b", "v": 1}])
    assert message(e) == "record 2: field 'n': name 'a:a b' is not a valid SenML name"
    e = raises(SenMLError, encode, [{"bn": "bad base:"}, {"n": "x", "v": 1}])
    assert message(e) == "record 1: field 'n': name 'bad base:x' is not a valid SenML name"
    e = raises(SenMLError, encode, [{"bn": "-bad", "v": 1}])
    assert message(e) == "record 0: field 'bn': name '-bad' is not a valid SenML name"


def test_a_record_needs_a_name():
    e = raises(SenMLError, encode, [{"v": 1}])
    assert message(e) == "record 0: field 'bn': name '' is not a valid SenML name"


def test_exactly_one_value_unless_sum():
    e = raises(SenMLError, encode, [{"n": "a", "v": 1, "vs": "x"}])
    assert message(e) == "record 0: field 'vs': a record holds exactly one of v, vs, vb, vd"
    e = raises(SenMLError, encode, [{"n": "a", "v": 1}, {"n": "a", "vb": True, "vd": b"x"}])
    assert message(e).startswith("record 1: field 'vd': ")
    for rec in ({"n": "a"}, {"n": "a", "u": "V"}, {"n": "a", "t": 1}, {"bn": "a:", "ut": 5}):
        e = raises(SenMLError, encode, [rec])
        assert (
            message(e) == "record 0: field 'v': record has no value (v, vs, vb, vd) and no sum (s)"
        )
    e = raises(SenMLError, Pack(BN).add("x").encode)
    assert message(e).startswith("record 1: field 'v': ")


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
        assert message(e) == "record 1: field '%s': %s" % (field, text), (rec, message(e))


def test_mixed_bver_is_refused():
    assert encode([{"bver": 10, "n": "a", "v": 1}, {"bver": 10, "n": "b", "v": 1}])
    e = raises(SenMLError, encode, [{"bver": 10, "n": "a", "v": 1}, {"bver": 9, "n": "b", "v": 1}])
    assert message(e) == "record 1: field 'bver': differs from an earlier bver"


def test_pack_shape_is_checked():
    for bad in ([], (), None, {"n": "a", "v": 1}, "x"):
        e = raises(SenMLError, encode, bad)
        assert message(e) == "a pack needs at least one record"
    e = raises(SenMLError, encode, [{"n": "a", "v": 1}, ["n", "b"]])
    assert message(e) == "record 1: must be a dict"
    e = raises(SenMLError, encode, [{"n": "a", "v": 1}, {}])
    assert message(e) == "record 1: is empty"
    raises(SenMLError, Pack().encode)


def test_pack_record_head_cache_follows_base_name_unit_and_kind():
    # Pack reuses the checked '"n":..,"u":..,"v":' head of a sensor; it must not outlive what
    # it was checked against.
    assert Pack("a:").add("-t", 1, "V").encode() == b'[{"bn":"a:"},{"n":"-t","u":"V","v":1}]'
    e = raises(SenMLError, Pack().add("-t", 1, "V").encode)
    assert message(e) == "record 0: field 'n': name '-t' is not a valid SenML name"
    assert Pack("a:").add("-t", 2, "A").encode() == b'[{"bn":"a:"},{"n":"-t","u":"A","v":2}]'
    assert Pack("a:").add("-t", 2).encode() == b'[{"bn":"a:"},{"n":"-t","v":2}]'
    assert Pack("a:").add("-t", "x").encode() == b'[{"bn":"a:"},{"n":"-t","vs":"x"}]'
    assert Pack("a:").add("-t", sum=3).encode() == b'[{"bn":"a:"},{"n":"-t","s":3}]'
    e = raises(SenMLError, Pack("a:").add("-t", 1, 5).encode)
    assert message(e) == "record 1: field 'u': must be a string"
    e = raises(SenMLError, Pack("a:").add(7, 1).encode)
    assert message(e) == "record 1: field 'n': must be a string"


def test_pack_add_refuses_unsupported_value_types_at_once():
    p = Pack(BN).add("a", 1)
    e = raises(SenMLError, p.add, "b", [1, 2])
    assert message(e) == "record 2: field 'v': value must be int, float, bool, str or bytes"
    e = raises(SenMLError, Pack().add, "b", {"x": 1})
    assert message(e).startswith("record 0: field 'v': ")


def test_senml_error_is_a_value_error():
    assert issubclass(SenMLError, ValueError)
    raises(ValueError, encode, [])
