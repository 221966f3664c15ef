"""Downlink commands to pins, through an allow-list of actuators.

A KPN downlink is a SenML pack; each record names an actuator (`led`) after the device's base
name. Only actuators declared in the spec can be driven, and only with values that fit them:
a digital output takes `vb` true/false or `v` 0/1, a PWM output takes `v` within its declared
range. Everything else is refused with a reason before any pin is touched, and one bad record
never stops the good ones. The actuators' states go back in the next uplink, so the Portal sees
that a command took effect.

What a board holds between cycles is only `Actuators` with its states: the spec check
(kpnthings.downlink_spec) runs at boot, and the code that applies a downlink
(kpnthings.downlink_apply) is loaded when one arrives.
"""


class ActuatorSpecError(ValueError):
    """The actuator spec (from config or board) is invalid; the message names the field."""


def validate_spec(spec, valid_pins=None):
    """Check an actuator spec and return a normalised copy (defaults filled in).

    valid_pins, when given, is the board's set of pins that can drive an output.
    """
    from kpnthings.downlink_spec import validate_spec

    return validate_spec(spec, valid_pins)


class Actuators:
    """The allow-list of outputs a downlink may drive; pins are created on first use."""

    def __init__(self, spec, pin_factory=None, valid_pins=None):
        self.spec = validate_spec(spec, valid_pins)
        # pin_factory(kind, pin, entry) -> object with value(x) (digital) or duty_u16(d) (pwm);
        # None: machine.Pin / machine.PWM (kpnthings.downlink_apply).
        self._factory = pin_factory
        self._outputs = {}
        self._state = {}

    def names(self):
        return sorted(self.spec)

    def apply(self, records, base_name=None):
        """Apply downlink records; return a list of (name, ok, reason), one per record."""
        from kpnthings import downlink_apply

        return downlink_apply.apply(self, records, base_name)

    def state(self, name):
        """The last value applied to actuator `name`, or None if it was never driven."""
        return self._state.get(name)

    def state_records(self):
        """(name, value) for every actuator driven so far: digital as bool, pwm as number.

        Actuators never driven are left out: their pin state is not known (a pin this code never
        configured may float), and reporting "off" would be a guess.
        """
        return [(name, self._state[name]) for name in sorted(self._state)]
