"""Downlink records drive only declared actuators, with values that fit them."""

from _support import raises
from kpnthings.downlink import Actuators, ActuatorSpecError, validate_spec

BN = "urn:dev:DVNUUID:0b7f8c3e-5a2d-4c1e-9f6a-2d3e4f5a6b7c:"
SPEC = {
    "led": {"type": "digital", "pin": 2},
    "relay": {"type": "digital", "pin": 4, "active_low": True},
    "fan": {"type": "pwm", "pin": 5, "freq": 1000, "min": 0, "max": 100},
}


class FakeOut:
    def __init__(self, log, kind, pin):
        self.log = log
        self.kind = kind
        self.pin = pin

    def value(self, v):
        self.log.append((self.pin, "value", v))

    def duty_u16(self, d):
        self.log.append((self.pin, "duty", d))


def make(spec=SPEC):
    log = []
    created = []

    def factory(kind, pin, entry):
        created.append((kind, pin))
        return FakeOut(log, kind, pin)

    return Actuators(spec, pin_factory=factory), log, created


def rec(name, **value):
    r = {"n": BN + name}
    r.update(value)
    return r


def test_digital_vb_and_v_switch_the_pin():
    acts, log, created = make()
    res = acts.apply([rec("led", vb=True)], BN)
    assert res == [("led", True, "")]
    assert log == [(2, "value", 1)]
    assert created == [("digital", 2)]
    acts.apply([rec("led", v=0)], BN)
    acts.apply([rec("led", v=1.0)], BN)
    assert log[1:] == [(2, "value", 0), (2, "value", 1)]
    assert created == [("digital", 2)]  # created once, lazily


def test_active_low_inverts_the_level():
    acts, log, _ = make()
    acts.apply([rec("relay", vb=True), rec("relay", vb=False)], BN)
    assert log == [(4, "value", 0), (4, "value", 1)]
    assert acts.state("relay") is False


def test_pwm_maps_range_to_duty_u16():
    acts, log, _ = make()
    res = acts.apply([rec("fan", v=0), rec("fan", v=50), rec("fan", v=100), rec("fan", v=12.5)])
    assert [r[1] for r in res] == [True, True, True, True]
    assert log == [(5, "duty", 0), (5, "duty", 32768), (5, "duty", 65535), (5, "duty", 8192)]


def test_pwm_with_offset_range():
    acts, log, _ = make({"dim": {"type": "pwm", "pin": 7, "freq": 500, "min": 10, "max": 20}})
    acts.apply([rec("dim", v=15)], BN)
    assert log == [(7, "duty", 32768)]


def check_refused(record, reason_start):
    acts, log, created = make()
    res = acts.apply([record], BN)
    assert len(res) == 1, res
    assert res[0][1] is False, res
    assert res[0][2].startswith(reason_start), res
    assert log == [] and created == [], "a refused record touched a pin"
    assert acts.state_records() == []


def test_each_invalid_kind_is_refused_without_touching_a_pin():
    check_refused(rec("door", vb=True), "unknown actuator")
    check_refused({"n": "urn:dev:DVNUUID:other-device:led", "vb": True}, "not for this device")
    check_refused({"n": "urn:dev:IMEI:123:led", "vb": True}, "not for this device")
    check_refused(rec("led", vs="on"), "wrong type")
    check_refused(rec("led", vd="AQ"), "wrong type")
    check_refused(rec("led", vb=1), "wrong type")
    check_refused(rec("led", v=2), "out of range")
    check_refused(rec("led", v=0.5), "out of range")
    check_refused(rec("led", v=float("nan")), "wrong type")
    check_refused(rec("led"), "no value")
    check_refused(rec("led", s=1), "wrong type")
    check_refused(rec("fan", vb=True), "wrong type")
    check_refused(rec("fan", vs="50"), "wrong type")
    check_refused(rec("fan", v=101), "out of range")
    check_refused(rec("fan", v=-1), "out of range")
    check_refused(rec("fan", v=float("nan")), "wrong type")
    check_refused(rec("fan", v=float("inf")), "out of range")
    check_refused(rec("fan"), "no value")


def test_one_bad_record_does_not_stop_the_good_ones():
    acts, log, _ = make()
    records = [rec("led", vb=True), rec("fan", v=500), rec("nope", v=1), rec("fan", v=25)]
    res = acts.apply(records, BN)
    assert [(n, ok) for n, ok, _ in res] == [
        ("led", True),
        ("fan", False),
        ("nope", False),
        ("fan", True),
    ]
    assert log == [(2, "value", 1), (5, "duty", 16384)]


def test_names_without_base_name_argument():
    acts, log, _ = make()
    res = acts.apply([rec("led", vb=True), {"n": "led", "vb": False}])
    assert [r[1] for r in res] == [True, True]
    assert log == [(2, "value", 1), (2, "value", 0)]


def test_state_records_echo_driven_actuators():
    acts, _, _ = make()
    assert acts.state_records() == []
    acts.apply([rec("led", v=1), rec("fan", v=40)], BN)
    assert acts.state_records() == [("fan", 40), ("led", True)]


def test_pin_error_is_reported_not_raised():
    def factory(kind, pin, entry):
        raise OSError("no such pin")

    acts = Actuators({"led": {"type": "digital", "pin": 2}}, pin_factory=factory)
    assert acts.apply([{"n": "led", "vb": True}]) == [("led", False, "pin error: no such pin")]
    assert acts.state_records() == []


def test_spec_defaults_filled_in():
    spec = validate_spec({"a": {"type": "digital", "pin": 1}, "b": {"type": "pwm", "pin": 3}})
    assert spec["a"]["active_low"] is False
    assert spec["b"]["freq"] == 1000 and spec["b"]["min"] == 0 and spec["b"]["max"] == 100


def spec_error(spec, valid_pins=None):
    return str(raises(ActuatorSpecError, validate_spec, spec, valid_pins))


def test_bad_spec_names_the_actuator_and_field():
    # The board's short check; names and unknown fields: tests/host/test_config_check.py.
    assert "actuators:" in spec_error([])
    assert "led" in spec_error({"led": 2})
    assert "led.type" in spec_error({"led": {"type": "servo", "pin": 2}})
    assert "led.pin" in spec_error({"led": {"type": "digital"}})
    assert "led.pin" in spec_error({"led": {"type": "digital", "pin": True}})
    assert "led.pin" in spec_error({"led": {"type": "digital", "pin": 99}}, {1, 2})
    assert "led.active_low" in spec_error({"led": {"type": "digital", "pin": 2, "active_low": 1}})
    assert "fan.freq" in spec_error({"fan": {"type": "pwm", "pin": 2, "freq": 0}})
    assert "fan.min" in spec_error({"fan": {"type": "pwm", "pin": 2, "min": "0"}})
    assert "fan.max" in spec_error({"fan": {"type": "pwm", "pin": 2, "min": 5, "max": 5}})
    msg = spec_error({"a": {"type": "digital", "pin": 2}, "b": {"type": "digital", "pin": 2}})
    assert "b.pin" in msg and "already used by a" in msg
    assert isinstance(raises(ValueError, validate_spec, {"x": 1}), ActuatorSpecError)
