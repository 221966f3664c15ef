"""The actuator allow-list's full check, on the host (kpnthings_tools.config_check).

Everything the board's short check (kpnthings.downlink_spec) looks at, with longer messages, and
what the board trusts: actuator names (a SenML name a downlink can address: letters, digits and
- . _ /, no colon) and unknown fields (a typo such as "active-low" would be ignored there).
"""

from kpnthings.downlink import ActuatorSpecError

_NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._/"
_KEYS = {
    "digital": ("type", "pin", "active_low"),
    "pwm": ("type", "pin", "freq", "min", "max"),
}


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


def validate_spec(spec, valid_pins=None, avoid=None):
    """Check an actuator spec and return a normalised copy (defaults filled in).

    valid_pins, when given, is the board's set of pins that can drive an output; avoid, the
    pins it keeps free of anything, with the reason (boards/<board>_pins.py's AVOID).
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
        why = avoid.get(pin) if avoid else None
        if why:
            raise _err(name + ".pin", "pin %r must stay free: %s" % (pin, why))
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
