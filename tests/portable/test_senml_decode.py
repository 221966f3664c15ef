"""SenML decoding (RFC 8428 section 4.6): resolution rules, every rejection, hostile input."""

from _support import Skip, message, raises
from kpnthings import senml
from kpnthings.senml import SenMLError, decode

NOW = 1700000000
_DEEP = "nested deeper than a SenML pack"


def _msg(exc):
    return str(exc.args[0]) if exc.args else ""


def _one(text, now=None):
    recs = decode(text, now=now)
    assert len(recs) == 1, recs
    return recs[0]


# ---- resolution ----


def test_base_name_is_prefixed_and_carried_until_replaced():
    recs = decode('[{"bn":"a:","n":"x","v":1},{"n":"y","v":2},{"bn":"b:","n":"x","v":3},{"v":4}]')
    assert [r["n"] for r in recs] == ["a:x", "a:y", "b:x", "b:"]


def test_name_alone_without_base_name():
    assert _one('[{"n":"urn:dev:ow:1","v":1}]') == {"n": "urn:dev:ow:1", "v": 1}


def test_unit_falls_back_to_base_unit_and_is_absent_without_one():
    recs = decode('[{"bu":"A","n":"a","v":1},{"n":"b","u":"V","v":2},{"n":"c","vs":"x"}]')
    assert recs[0]["u"] == "A"
    assert recs[1]["u"] == "V"
    assert recs[2]["u"] == "A"
    assert "u" not in _one('[{"n":"a","v":1}]')


def test_base_value_adds_to_v_only():
    recs = decode('[{"bv":10,"n":"a","v":1},{"n":"b","v":-2.5},{"n":"c","vs":"x"}]')
    assert recs[0]["v"] == 11
    assert isinstance(recs[0]["v"], int)
    assert recs[1]["v"] == 7.5
    assert recs[2] == {"n": "c", "vs": "x"}


def test_base_sum_adds_to_sum_and_sum_alone_is_a_record():
    recs = decode('[{"bs":100,"n":"e","s":5},{"n":"f","s":1,"v":2},{"n":"g","v":3}]')
    assert recs[0] == {"n": "e", "s": 105}
    assert recs[1] == {"n": "f", "s": 101, "v": 2}
    assert "s" not in recs[2]


def test_every_value_kind():
    recs = decode(
        '[{"n":"a","v":1.5},{"n":"b","vs":"x"},{"n":"c","vb":true},{"n":"d","vb":false},'
        '{"n":"e","vd":"aGkgCg"}]'
    )
    assert recs[0]["v"] == 1.5
    assert recs[1]["vs"] == "x"
    assert recs[2]["vb"] is True
    assert recs[3]["vb"] is False
    assert recs[4]["vd"] == b"hi \n"


def test_vd_accepts_padding_and_the_url_alphabet():
    for text, raw in [
        ("", b""),
        ("aA", b"h"),
        ("aA==", b"h"),
        ("aG8", b"ho"),
        ("aG8=", b"ho"),
        ("aG9p", b"hoi"),
        ("-_-_", b"\xfb\xff\xbf"),
        ("aGFsbG9vb29vISE=", b"hallooooo!!"),
    ]:
        assert _one('[{"n":"d","vd":"%s"}]' % text)["vd"] == raw, text


def test_vd_rejects_what_is_not_base64url():
    for text in ["a", "aGk=Cg==", "aG8==", "aA=", "aA===", "+/+/", "aG 9p", "aGk\\n", "\\u00e9A"]:
        e = raises(SenMLError, decode, '[{"n":"d","vd":"%s"}]' % text)
        assert _msg(e) == "record 0: field 'vd': not base64url", (text, _msg(e))


def test_base_time_and_relative_time():
    recs = decode('[{"bt":1000000000,"n":"a","v":1},{"n":"b","t":-5,"v":1},{"n":"c","t":7,"v":1}]')
    assert [r["t"] for r in recs] == [1000000000, 999999995, 1000000007]
    assert isinstance(recs[0]["t"], int)


def test_times_below_2_pow_28_are_relative_to_now():
    recs = decode('[{"n":"a","t":-60,"v":1},{"n":"b","t":0,"v":1},{"n":"c","v":1}]', now=NOW)
    assert [r["t"] for r in recs] == [NOW - 60, NOW, NOW]
    recs = decode('[{"bt":-10,"n":"a","v":1},{"n":"b","t":3,"v":1}]', now=NOW)
    assert [r["t"] for r in recs] == [NOW - 10, NOW - 7]
    # 2**28 itself is absolute.
    assert _one('[{"n":"a","t":268435456,"v":1}]', now=NOW)["t"] == 268435456
    assert _one('[{"n":"a","t":268435455,"v":1}]', now=NOW)["t"] == 268435455 + NOW


def test_without_now_times_stay_as_given_and_no_time_means_no_t():
    assert _one('[{"n":"a","t":-5,"v":1}]')["t"] == -5
    assert "t" not in _one('[{"n":"a","v":1}]')
    assert _one('[{"n":"a","v":1}]', now=NOW)["t"] == NOW


def test_update_time_passes_through():
    assert _one('[{"n":"a","v":1,"ut":60}]')["ut"] == 60


def test_base_only_records_yield_nothing():
    assert decode('[{"bn":"a:","bt":5}]') == []
    recs = decode('[{"bn":"a:"},{"n":"x","v":1},{"bu":"V"},{"n":"y","v":2}]')
    assert [(r["n"], r.get("u")) for r in recs] == [("a:x", None), ("a:y", "V")]


def test_uppercase_exponents_and_whitespace_are_accepted():
    rec = _one(' [ { "bt" : 1.58565075E9 , "n" : "a" , "v" : 2E+1 } ] ')
    assert rec["v"] == 20
    assert abs(rec["t"] - 1585650750) < 256


def test_unknown_labels_are_ignored():
    assert _one('[{"n":"a","v":1,"foo":1,"bar":"x","baz":null}]') == {"n": "a", "v": 1}


def test_structured_values_are_refused_even_under_unknown_labels():
    # SenML JSON values are scalars; refusing nesting at any size keeps the rule uniform.
    _rejects('[{"n":"a","v":1,"foo":{"x":1}}]', "nested deeper than a SenML pack")
    _rejects('[{"n":"a","v":1,"foo":[1]}]', "nested deeper than a SenML pack")


def test_input_kinds():
    text = '[{"n":"a","v":1}]'
    for data in (text, text.encode(), bytearray(text.encode()), memoryview(text.encode())):
        assert decode(data) == [{"n": "a", "v": 1}]


def test_unicode_strings_decode():
    rec = _one('[{"n":"a","vs":"\\u00e9\\"\\n","u":"\u20ac"}]'.encode())
    assert rec["vs"] == '\u00e9"\n'
    assert rec["u"] == "\u20ac"


def test_encode_then_decode_round_trip():
    p = senml.Pack("dev:", 1700000000, "Cel")
    p.add("a", 43 / 2).add("b", "x").add("c", True).add("d", b"\x00\x01").add("e", 3, "V", -5, 7)
    recs = decode(p.encode())
    assert recs == [
        {"n": "dev:a", "u": "Cel", "v": 21.5, "t": 1700000000},
        {"n": "dev:b", "u": "Cel", "vs": "x", "t": 1700000000},
        {"n": "dev:c", "u": "Cel", "vb": True, "t": 1700000000},
        {"n": "dev:d", "u": "Cel", "vd": b"\x00\x01", "t": 1700000000},
        {"n": "dev:e", "u": "V", "v": 3, "s": 7, "t": 1699999995},
    ]


# ---- rejections: only SenMLError, naming record and field ----


def _rejects(text, msg=None, prefix=None):
    e = raises(SenMLError, decode, text)
    if msg is not None:
        assert _msg(e) == msg, (text, _msg(e))
    if prefix is not None:
        assert _msg(e).startswith(prefix), (text, _msg(e))
    return e


def test_not_json_not_array_or_empty():
    for text in ("", "x", "[", '[{"n":"a","v":1}', "{}", '{"n":"a"}', "1", '"x"', "null", "[]"):
        e = raises(SenMLError, decode, text)
        assert _msg(e) in ("input is not JSON", "pack must be a non-empty JSON array"), _msg(e)


def test_lax_json_of_micropython_is_still_refused():
    # MicroPython's json.loads parses these; CPython's does not. Both must end in SenMLError.
    for text in ('[{true:1,"n":"a","v":1}]', '[{1:1,"n":"a","v":1}]', '[{"n":"a","v":1,null:2}]'):
        _rejects(text)


def test_records_must_be_objects():
    _rejects('[{"n":"a","v":1},1]', "record 1: must be a JSON object")
    _rejects('[{"n":"a","v":1},"x"]', "record 1: must be a JSON object")
    _rejects("[1]", "record 0: must be a JSON object")
    _rejects("[null]", "record 0: must be a JSON object")


def test_wrong_field_types():
    cases = [
        ('"n":1,"v":1', "n", "must be a string"),
        ('"n":"a","u":1,"v":1', "u", "must be a string"),
        ('"bn":1,"n":"a","v":1', "bn", "must be a string"),
        ('"bu":true,"n":"a","v":1', "bu", "must be a string"),
        ('"n":"a","v":"1"', "v", "must be a number"),
        ('"n":"a","v":true', "v", "must be a number"),
        ('"n":"a","v":null', "v", "must be a number"),
        ('"n":"a","vs":1', "vs", "must be a string"),
        ('"n":"a","vb":1', "vb", "must be a boolean"),
        ('"n":"a","vb":"true"', "vb", "must be a boolean"),
        ('"n":"a","vd":1', "vd", "must be a string"),
        ('"n":"a","s":"1"', "s", "must be a number"),
        ('"n":"a","v":1,"t":"now"', "t", "must be a number"),
        ('"n":"a","v":1,"ut":"60"', "ut", "must be a number"),
        ('"bt":"0","n":"a","v":1', "bt", "must be a number"),
        ('"bv":false,"n":"a","v":1', "bv", "must be a number"),
        ('"bs":"0","n":"a","s":1', "bs", "must be a number"),
    ]
    for body, field, text in cases:
        _rejects('[{"n":"ok","v":1},{%s}]' % body, "record 1: field '%s': %s" % (field, text))


def test_two_values_or_none():
    for body in (
        '"n":"a","v":1,"vs":"x"',
        '"n":"a","vb":true,"vd":"aA"',
        '"n":"a","v":1,"vb":true',
    ):
        _rejects(
            "[{%s}]" % body, "record 0: field 'v': a record holds exactly one of v, vs, vb, vd"
        )
    for body in ('"n":"a"', '"n":"a","u":"V"', '"n":"a","t":5', '"bn":"a:","ut":5'):
        _rejects(
            '[{"n":"ok","v":1},{%s}]' % body,
            "record 1: field 'v': record has no value (v, vs, vb, vd) and no sum (s)",
        )


def test_bad_names():
    _rejects('[{"n":"a b","v":1}]', "record 0: field 'n': name 'a b' is not a valid SenML name")
    _rejects(
        '[{"bn":"a:"},{"n":"b c","v":1}]',
        "record 1: field 'n': name 'a:b c' is not a valid SenML name",
    )
    _rejects('[{"bn":"-a","v":1}]', "record 0: field 'bn': name '-a' is not a valid SenML name")
    _rejects('[{"v":1}]', "record 0: field 'bn': name '' is not a valid SenML name")
    _rejects('[{"n":"","v":1}]', "record 0: field 'n': name '' is not a valid SenML name")
    _rejects('[{"n":"t\\u00e9mp","v":1}]', prefix="record 0: field 'n': name ")
    _rejects('[{"n":"a\\u0000","v":1}]', prefix="record 0: field 'n': name ")


def test_labels_ending_in_underscore_are_refused():
    _rejects('[{"n":"a","v":1,"foo_":1}]', prefix="record 0: field 'foo_': ")
    _rejects('[{"n":"a","v":1},{"bn_":"x","n":"b","v":1}]', prefix="record 1: field 'bn_': ")
    _rejects('[{"_":1,"n":"a","v":1}]', prefix="record 0: field '_': ")


def test_bver():
    assert decode('[{"bver":10,"n":"a","v":1},{"bver":10,"n":"b","v":1}]')
    assert decode('[{"bver":5,"n":"a","v":1}]')
    _rejects('[{"bver":11,"n":"a","v":1}]', prefix="record 0: field 'bver': ")
    _rejects('[{"bver":"10","n":"a","v":1}]', prefix="record 0: field 'bver': ")
    _rejects('[{"bver":10.0,"n":"a","v":1}]', prefix="record 0: field 'bver': ")
    _rejects(
        '[{"bver":10,"n":"a","v":1},{"bver":9,"n":"b","v":1}]',
        "record 1: field 'bver': differs from an earlier bver",
    )
    # bver above 10 in a base-only record still refuses the whole pack.
    _rejects('[{"n":"a","v":1},{"bver":12}]', prefix="record 1: field 'bver': ")


def test_non_finite_and_huge_numbers():
    _rejects('[{"n":"a","v":1e999}]', prefix="record 0: field 'v': ")
    _rejects('[{"n":"a","v":-1E400}]', prefix="record 0: field 'v': ")
    _rejects('[{"n":"a","v":1,"t":1e999}]', prefix="record 0: field 't': ")
    _rejects('[{"n":"a","v":100000000000000000000}]', "record 0: field 'v': integer out of range")
    _rejects('[{"n":"a","s":1,"bs":-100000000000000000000}]', prefix="record 0: field 'bs': ")
    # Each finite, the sum is not.
    _rejects('[{"bv":1e308,"n":"a","v":1e308}]', prefix="record 0: field 'v': ")
    _rejects('[{"n":"a","v":NaN}]')
    _rejects('[{"n":"a","v":Infinity}]')


# ---- hostile input: bounded work, SenMLError only ----


# A string with an escape sends the pre-scan down its character-by-character path.
_ESC = '{"n":"e","vs":"\\""},'


def _deep(text):
    # Beyond the input cap the length check answers first; either way only SenMLError.
    _rejects(text, _DEEP if len(text) <= senml.MAX_INPUT else None)


def test_deep_nesting():
    for depth in (3, 50, 2000, 8000, 16000):
        for head in ("", _ESC):
            _deep("[" + head + "[" * depth + "]" * depth + "]")
            _deep("[" + head + "[" * depth)
            _deep("[" + head + '{"n":"a","v":' + "[" * depth + "]" * depth + "}]")
            _deep("[" + head + '{"a":' * depth + "1" + "}" * depth + "]")
        _deep('{"a":' * depth + "1" + "}" * depth)


def test_long_digit_runs_are_refused_before_parsing():
    for n in (65, 300, 5000, 16000):
        for head in ("", _ESC):
            _rejects("[" + head + '{"n":"a","v":' + "1" * n + "}]")
            _rejects("[" + head + '{"n":"a","v":0.' + "1" * n + "}]")
    # 64 digits pass the scan (and then fail the range check) on both paths.
    for head in ("", _ESC):
        _rejects("[" + head + '{"n":"a","v":' + "1" * 64 + "}]", prefix="record ")
        assert decode("[" + head + '{"n":"a","v":0.' + "1" * 63 + "}]")[-1]["v"] > 0.1


def test_input_size_is_capped_and_configurable():
    big = '[{"n":"a","vs":"' + "x" * senml.MAX_INPUT + '"}]'
    _rejects(big, prefix="input longer than")
    _rejects(big.encode(), prefix="input longer than")
    old = senml.MAX_INPUT
    senml.MAX_INPUT = 10
    try:
        _rejects('[{"n":"a","v":1}]', prefix="input longer than 10")
    finally:
        senml.MAX_INPUT = old
    # Long strings under the cap are fine.
    assert len(decode('[{"n":"a","vs":"' + "x" * 10000 + '"}]')[0]["vs"]) == 10000


def test_invalid_utf8_is_refused():
    for raw in (
        b'[{"n":"a","vs":"\xff"}]',
        b'[{"n":"a","vs":"\xc3"}]',
        b'[{"n":"a","vs":"\xed\xa0\x80"}]',  # a surrogate in UTF-8 form (CESU)
        b"\x80",
    ):
        _rejects(raw, "input is not valid UTF-8")


def test_wrong_input_type():
    for bad in (None, 5, ["x"], {"n": "a"}):
        _rejects(bad, "input must be bytes or str")


def test_many_records_with_strings_holding_brackets_pass_the_scan():
    # The pre-scan counts nesting outside strings only.
    recs = ",".join(['{"n":"a%d","vs":"[[[{{{\\"]]]"}' % i for i in range(40)])
    got = decode("[" + recs + "]")
    assert len(got) == 40
    assert got[0]["vs"] == '[[[{{{"]]]'


def test_truncated_packs():
    text = '[{"bn":"a:","bt":1700000000},{"n":"temperature","u":"Cel","v":21.5}]'
    for i in range(len(text)):
        _rejects(text[:i])


def test_json_that_only_a_lax_parser_takes_is_refused_everywhere():
    # MicroPython's json.loads takes all of these; CPython's refuses them. decode must refuse
    # them on every runtime, with SenMLError.
    for bad in (
        '[{"n":"a","v":01}]',
        '[{"n":"a","v":1.}]',
        '[{"n":"a","v":.5}]',
        '[{"n":"a","v":1e}]',
        '[{"n":"a","v":-}]',
        '[{"n":"a","v":1},]',
        '[{"n":"a","v":1,}]',
        '[,{"n":"a","v":1}]',
        '[{"n":"a",,"v":1}]',
        '[{"n":"a","v"::1}]',
        '[{"n":"a","v":True}]',
        b'[{"n":"a","u":"\xc0\xaf","v":1}]',
        b'[{"n":"a","u":"\xe0\x80\xaf","v":1}]',
        b'[{"n":"a","u":"\xf0\x80\x80\xaf","v":1}]',
        b'[{"n":"a","u":"\xf4\x90\x80\x80","v":1}]',
    ):
        raises(SenMLError, decode, bad)
    # ... while what JSON allows still decodes: exponents, signs, escapes, white space.
    got = decode(' [ {"n" : "a" , "v" : -1.5E+2 } , {"n":"c","vs":"x\\"]\\\\,:"} ] ')
    assert got[0]["v"] == -150.0 and got[1]["vs"] == 'x"]\\,:'
    assert decode(b'[{"n":"a","vs":"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"}]')[0]["vs"] == "é€😀"


def test_a_str_with_a_lone_surrogate_is_refused_as_bytes_are():
    # Only a str given to decode() can hold one (a board decodes bytes): refused the same way
    # as its CESU bytes, with SenMLError, never the runtime's own encoding error.
    try:
        bad = chr(0xD800)
    except ValueError:
        raise Skip("this runtime cannot hold a lone surrogate") from None
    for text in ('[{"n":"x","vs":"a\\n%s"}]' % bad, '[{"n":"x","vs":"a%s"}]' % bad):
        e = raises(SenMLError, decode, text)
        assert message(e) == "input is not valid UTF-8", message(e)
