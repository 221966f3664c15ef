"""The actuator allow-list's short check on the board, run once at boot (config or board spec).

Kept apart from kpnthings.downlink so that a board drops it once the spec is checked: the loop
only needs the checked copy. It checks what driving a pin needs: the type, a pin of the board's
output set, used once and not one the board keeps free (the ESP32's UART0: its pin rules), the
PWM frequency and range (min below max), and fills in the defaults. Actuator names and unknown
fields are checked on the host before deploy (kpnthings_tools.actuators_check): a name a
downlink cannot spell is never driven.
"""

from kpnthings.downlink import ActuatorSpecError


def _bad(name, key, what):
    return ActuatorSpecError("actuators.%s.%s: must be %s" % (name, key, what))


def validate_spec(spec, valid_pins=None, rules=None):
    """Check an actuator spec and return a normalised copy (defaults filled in).

    valid_pins, when given, is the board's set of pins that can drive an output; rules, its pin
    rules (boards/esp32_pins.py), whose AVOID maps the pins kept free of anything to why.
    """
    if type(spec) is not dict:
        raise ActuatorSpecError("actuators: must be an object of name -> actuator")
    out = {}
    used = {}
    for name in sorted(spec):
        e = spec[name]
        kind = e.get("type") if type(e) is dict else None
        if kind not in ("digital", "pwm"):
            raise _bad(name, "type", '"digital" or "pwm"')
        pin = e.get("pin")
        why = rules.AVOID.get(pin) if rules and type(pin) in (int, str) else None
        if why:
            raise ActuatorSpecError(
                "actuators.%s.pin: pin %r must stay free: %s" % (name, pin, why)
            )
        if type(pin) not in (int, str) or (valid_pins is not None and pin not in valid_pins):
            raise _bad(name, "pin", "an output pin of this board")
        if pin in used:
            raise _bad(name, "pin", "a pin not already used by " + used[pin])
        used[pin] = name
        out[name] = n = {"type": kind, "pin": pin}
        if kind == "digital":
            n["active_low"] = x = e.get("active_low", False)
            if type(x) is not bool:
                raise _bad(name, "active_low", "true or false")
            continue
        n["freq"] = x = e.get("freq", 1000)
        if type(x) is not int or not 1 <= x <= 40000000:
            raise _bad(name, "freq", "a whole number of Hz, 1-40000000")
        for key, x in (("min", 0), ("max", 100)):
            n[key] = x = e.get(key, x)
            if type(x) not in (int, float) or x != x:
                raise _bad(name, key, "a number (or left out)")
        if not n["min"] < n["max"]:
            raise _bad(name, "max", "a number above min")
    return out
