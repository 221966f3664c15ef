"""Batching: byte-exact packs, integer bt and t offsets, the bu rule, the body size cap."""

from _support import raises
from kpnthings.batch import build_pack
from kpnthings.senml import decode

BN = "urn:dev:DVNUUID:5e3a0f7c-1b2d-4c6e-9f80-1234567890ab:"
T0 = 1760000000


def _temp(i, t=T0, u="Cel"):
    r = {"n": "temperature", "v": 20 + i / 4}
    if u is not None:
        r["u"] = u
    if t is not None:
        r["t"] = t + 60 * i
    return r


def test_timed_readings_get_integer_bt_offsets_and_bu():
    records = [_temp(0), _temp(1), _temp(2)]
    body, used = build_pack(BN, records, 1000)
    assert used == 3
    assert body == (
        b'[{"bn":"' + BN.encode() + b'","bt":1760000000,"bu":"Cel","n":"temperature","v":20.0},'
        b'{"n":"temperature","v":20.25,"t":60},'
        b'{"n":"temperature","v":20.5,"t":120}]'
    )
    resolved = decode(body)
    assert [r["t"] for r in resolved] == [T0, T0 + 60, T0 + 120]
    assert [r["u"] for r in resolved] == ["Cel", "Cel", "Cel"]
    assert [r["v"] for r in resolved] == [20.0, 20.25, 20.5]


def test_units_that_differ_stay_per_record():
    records = [
        {"n": "temperature", "u": "Cel", "v": 21, "t": T0},
        {"n": "humidity", "u": "%RH", "v": 40, "t": T0},
        {"n": "door", "vb": True, "t": T0 + 5},
    ]
    body, used = build_pack(BN, records, 1000)
    assert used == 3
    assert body == (
        b'[{"bn":"' + BN.encode() + b'","bt":1760000000,"n":"temperature","u":"Cel","v":21},'
        b'{"n":"humidity","u":"%RH","v":40},{"n":"door","vb":true,"t":5}]'
    )


def test_bt_is_the_earliest_reading_even_if_not_first():
    records = [_temp(0, T0 + 100), {"n": "temperature", "u": "Cel", "v": 1, "t": T0}]
    body, used = build_pack(BN, records, 1000)
    assert used == 2
    assert body == (
        b'[{"bn":"' + BN.encode() + b'","bt":1760000000,"bu":"Cel","n":"temperature","v":20.0,'
        b'"t":100},{"n":"temperature","v":1}]'
    )
    assert [r["t"] for r in decode(body)] == [T0 + 100, T0]


def test_untimed_readings_go_without_bt_and_never_mix_with_timed_ones():
    records = [_temp(0, None), _temp(1, None), _temp(2), _temp(3)]
    body, used = build_pack(BN, records, 1000)
    assert used == 2
    assert body == (
        b'[{"bn":"' + BN.encode() + b'","bu":"Cel","n":"temperature","v":20.0},'
        b'{"n":"temperature","v":20.25}]'
    )
    assert all("t" not in r for r in decode(body))
    body, used = build_pack(BN, records[2:] + [_temp(9, None)], 1000)
    assert used == 2
    assert b'"bt":1760000120' in body


def test_extra_records_are_appended_and_take_part_in_the_unit_rule():
    records = [_temp(0), _temp(1)]
    extra = [{"n": "droppedReadings", "v": 17}]
    body, used = build_pack(BN, records, 1000, extra)
    assert used == 2
    assert body == (
        b'[{"bn":"' + BN.encode() + b'","bt":1760000000,"n":"temperature","u":"Cel","v":20.0},'
        b'{"n":"temperature","u":"Cel","v":20.25,"t":60},'
        b'{"n":"droppedReadings","v":17,"t":60}]'
    )
    extra = [{"n": "led", "vb": True, "t": T0 + 90}]
    body, _ = build_pack(BN, records, 1000, extra)
    assert body.endswith(b'{"n":"led","vb":true,"t":90}]')
    body, _ = build_pack(BN, [_temp(0, None)], 1000, [{"n": "led", "vb": False}])
    assert body.endswith(b'"n":"temperature","u":"Cel","v":20.0},{"n":"led","vb":false}]')


def test_single_reading_keeps_its_own_unit():
    body, used = build_pack(BN, [_temp(0)], 1000)
    assert used == 1
    assert body == (
        b'[{"bn":"' + BN.encode() + b'","bt":1760000000,"n":"temperature","u":"Cel","v":20.0}]'
    )


def test_size_cap_is_never_exceeded_and_uses_as_many_readings_as_fit():
    records = [_temp(i) for i in range(40)]
    full, n_all = build_pack(BN, records, 100000)
    assert n_all == 40
    dropped = [{"n": "droppedReadings", "v": 3}]
    for limit in (len(full), len(full) - 1, 700, 300, 160):
        body, used = build_pack(BN, records, limit, dropped)
        assert 1 <= used <= 40
        assert len(body) <= limit, (limit, len(body))
        if used < 40:  # one more would not have fitted
            more, _ = build_pack(
                BN, records[: used + 1], 100000, [{"n": "droppedReadings", "v": 3}]
            )
            assert len(more) > limit
        assert len(decode(body)) == used + 1


def test_nothing_fits_or_nothing_to_send():
    records = [_temp(0)]
    body, used = build_pack(BN, records, 20)
    assert (body, used) == (b"", 0)
    extra = [{"n": "led", "vb": True}]
    body, used = build_pack(BN, [], 1000, extra)
    assert used == 0
    assert body == b'[{"bn":"' + BN.encode() + b'","n":"led","vb":true}]'
    assert build_pack(BN, [], 1000) == (b"", 0)


def test_value_kinds_and_float_text_match_senml():
    records = [
        {"n": "ratio", "v": 9.7, "t": T0},
        {"n": "msg", "vs": "hi", "t": T0},
        {"n": "raw", "vd": b"hoi", "t": T0},
    ]
    body, used = build_pack(BN, records, 1000)
    assert used == 3
    assert b'"v":9.7}' in body  # not 9.699999999999999, on every runtime
    assert b'{"n":"msg","vs":"hi"}' in body
    assert b'{"n":"raw","vd":"aG9p"}' in body


def test_a_record_without_value_is_refused():
    raises(ValueError, build_pack, BN, [{"n": "x", "t": T0}], 1000)
