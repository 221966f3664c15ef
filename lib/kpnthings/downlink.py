"""Downlink commands to pins, through an allow-list of actuators.

A KPN downlink is a SenML pack; each record names an actuator (`led`) after the device's base
name. Only actuators declared in the spec can be driven, and only with values that fit them:
a digital output takes `vb` true/false or `v` 0/1, a PWM output takes `v` within its declared
range. Everything else is refused with a reason before any pin is touched, and one bad record
never stops the good ones. The actuators' states go back in the next uplink, so the Portal sees
that a command took effect.
"""

try:
    from typing import Any, Callable  # noqa: F401
except ImportError:
    pass

_DEVICE_PREFIX = "urn:dev:DVNUUID:"
_NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._/"
_KEYS = {
    "digital": ("type", "pin", "active_low"),
    "pwm": ("type", "pin", "freq", "min", "max"),
}


class ActuatorSpecError(ValueError):
    """The actuator spec (from config or board) is invalid; the message names the field."""


def _err(field, msg):
    return ActuatorSpecError("actuators." + field + ": " + msg)


def _is_number(x):
    # bool is an int subclass on both runtimes, but true/false is not a number here.
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _valid_name(name):
    if not isinstance(name, str) or not name or len(name) > 64:
        return False
    for c in name:
        if c not in _NAME_CHARS:
            return False
    return name[0] not in "-._/"


def validate_spec(spec, valid_pins=None):
    """Check an actuator spec and return a normalised copy (defaults filled in).

    valid_pins, when given, is the board's set of pins that can drive an output.
    """
    if not isinstance(spec, dict):
        raise ActuatorSpecError("actuators: must be an object of name -> actuator")
    out = {}
    used = {}
    for name in sorted(spec):
        if not _valid_name(name):
            raise _err(
                repr(name)[:40],
                "names are 1-64 letters, digits or - . _ / (no colon), starting with a letter "
                "or digit",
            )
        entry = spec[name]
        if not isinstance(entry, dict):
            raise _err(name, "must be an object with a type and a pin")
        kind = entry.get("type")
        if kind not in _KEYS:
            raise _err(name + ".type", 'must be "digital" or "pwm", got %r' % (kind,))
        for key in entry:
            if key not in _KEYS[kind]:
                raise _err(name + "." + str(key), "unknown field for a %s actuator" % kind)
        pin = entry.get("pin")
        if pin is None or isinstance(pin, bool) or not isinstance(pin, (int, str)):
            raise _err(name + ".pin", "must be a GPIO number or a pin name")
        if valid_pins is not None and pin not in valid_pins:
            raise _err(name + ".pin", "the board has no output pin %r" % (pin,))
        if pin in used:
            raise _err(name + ".pin", "pin %r is already used by %s" % (pin, used[pin]))
        used[pin] = name
        norm = {"type": kind, "pin": pin}
        if kind == "digital":
            active_low = entry.get("active_low", False)
            if not isinstance(active_low, bool):
                raise _err(name + ".active_low", "must be true or false")
            norm["active_low"] = active_low
        else:
            freq = entry.get("freq", 1000)
            if not isinstance(freq, int) or isinstance(freq, bool) or not 1 <= freq <= 40000000:
                raise _err(name + ".freq", "must be an integer frequency in Hz (1-40000000)")
            lo = entry.get("min", 0)
            hi = entry.get("max", 100)
            if not _is_number(lo) or lo != lo:
                raise _err(name + ".min", "must be a number")
            if not _is_number(hi) or hi != hi:
                raise _err(name + ".max", "must be a number")
            if not lo < hi:
                raise _err(name + ".max", "must be greater than min")
            norm["freq"] = freq
            norm["min"] = lo
            norm["max"] = hi
        out[name] = norm
    return out


def _machine_factory(kind, pin, entry):
    """Create the real output: machine.Pin for digital, machine.PWM for PWM."""
    import machine

    if kind == "digital":
        return machine.Pin(pin, machine.Pin.OUT)
    pwm = machine.PWM(machine.Pin(pin))
    pwm.freq(entry["freq"])
    return pwm


class Actuators:
    """The allow-list of outputs a downlink may drive; pins are created on first use."""

    def __init__(self, spec, pin_factory=None, valid_pins=None):
        self.spec = validate_spec(spec, valid_pins)
        # pin_factory(kind, pin, entry) -> object with value(x) (digital) or duty_u16(d) (pwm).
        self._factory = pin_factory or _machine_factory
        self._outputs = {}
        self._state = {}

    def names(self):
        return sorted(self.spec)

    def _local_name(self, full, base_name):
        if base_name:
            if full.startswith(base_name):
                return full[len(base_name) :]
            if ":" in full:
                return None
            return full
        if full.startswith(_DEVICE_PREFIX):
            rest = full[len(_DEVICE_PREFIX) :]
            i = rest.find(":")
            return rest[i + 1 :] if i >= 0 else None
        return None if ":" in full else full

    def _check(self, record, entry):
        """Return (value to apply, "") or (None, reason); touches nothing."""
        for bad in ("vs", "vd", "s"):
            if bad in record:
                return None, "wrong type: %s given, %s wants %s" % (
                    bad,
                    entry["type"],
                    "vb or v 0/1" if entry["type"] == "digital" else "v",
                )
        if entry["type"] == "digital":
            if "vb" in record:
                vb = record["vb"]
                if not isinstance(vb, bool):
                    return None, "wrong type: vb must be true or false"
                return vb, ""
            if "v" in record:
                v = record["v"]
                if not _is_number(v) or v != v:
                    return None, "wrong type: v must be 0 or 1"
                if v == 0 or v == 1:
                    return v == 1, ""
                return None, "out of range: v must be 0 or 1, got %r" % (v,)
            return None, "no value: digital wants vb or v"
        if "vb" in record:
            return None, "wrong type: vb given, pwm wants v"
        if "v" not in record:
            return None, "no value: pwm wants v"
        v = record["v"]
        if not _is_number(v) or v != v:
            return None, "wrong type: v must be a number"
        if not entry["min"] <= v <= entry["max"]:
            return None, "out of range: v must be within [%r, %r], got %r" % (
                entry["min"],
                entry["max"],
                v,
            )
        return v, ""

    def _drive(self, name, entry, value):
        out = self._outputs.get(name)  # type: Any
        if out is None:
            out = self._factory(entry["type"], entry["pin"], entry)
            self._outputs[name] = out
        if entry["type"] == "digital":
            out.value(1 if value != entry["active_low"] else 0)
        else:
            lo = entry["min"]
            span = entry["max"] - lo
            out.duty_u16(int((value - lo) * 65535 / span + 0.5))
        self._state[name] = value

    def apply(self, records, base_name=None):
        """Apply downlink records; return a list of (name, ok, reason), one per record."""
        results = []
        for record in records or ():
            full = record.get("n", "") if isinstance(record, dict) else ""
            if not isinstance(full, str):
                full = ""
            name = self._local_name(full, base_name)
            if name is None:
                results.append((full, False, "not for this device"))
                continue
            entry = self.spec.get(name)
            if entry is None:
                results.append((name, False, "unknown actuator"))
                continue
            value, reason = self._check(record, entry)
            if reason:
                results.append((name, False, reason))
                continue
            try:
                self._drive(name, entry, value)
            except (OSError, ValueError, TypeError) as e:
                results.append((name, False, "pin error: %s" % (e,)))
                continue
            results.append((name, True, ""))
        return results

    def state(self, name):
        """The last value applied to actuator `name`, or None if it was never driven."""
        return self._state.get(name)

    def state_records(self):
        """(name, value) for every actuator driven so far: digital as bool, pwm as number.

        Actuators never driven are left out: their pin state is not known (a pin this code never
        configured may float), and reporting "off" would be a guess.
        """
        return [(name, self._state[name]) for name in sorted(self._state)]
